/* Error codes, messages, hints and exit codes from the one list in
 * include/pyxray/error.h. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <time.h>

#include "pyxray/common.h"
#include "pyxray/error.h"

static const struct {
	const char *msg;
	const char *hint;
	int exit_code;
} errtab[PYX_E__COUNT] = {
#define PYX_ERR_TAB_(name, code, m, h) [PYX_E_##name] = { m, h, code },
	PYX_ERRORS(PYX_ERR_TAB_)
#undef PYX_ERR_TAB_
};

static int err_index(int err)
{
	if (err < 0)
		err = -err;
	return err < PYX_E__COUNT ? err : PYX_E_INTERNAL;
}

const char *pyx_strerror(int err) { return errtab[err_index(err)].msg; }
const char *pyx_errhint(int err) { return errtab[err_index(err)].hint; }
int pyx_exit_code(int err) { return errtab[err_index(err)].exit_code; }

static _Thread_local char detail[512];

int pyx_err_set(enum pyx_error err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	return -(int)err;
}

const char *pyx_err_detail(void) { return detail; }
void pyx_err_clear(void) { detail[0] = '\0'; }

static pyx_print_fn print_fn;

pyx_print_fn pyx_set_print(pyx_print_fn fn)
{
	pyx_print_fn old = print_fn;

	print_fn = fn;
	return old;
}

/* Library-internal: hand a message to the callback, if any. */
void pyx_print(enum pyx_print_level level, const char *fmt, ...)
{
	char buf[1024];
	va_list ap;

	if (!print_fn)
		return;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	print_fn(level, buf);
}

uint64_t pyx_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void pyx_debug_phase(const char *who, const char *what, uint64_t *t)
{
	uint64_t now = pyx_now_ns();
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	/* pyx_print() itself, not internal.h's pyx_debug(): this file is
	 * what internal.h's helpers stand on, and does not include it */
	pyx_print(PYX_DEBUG, "%s: %s in %.1f ms (peak %ld MiB)", who, what,
		  (double)(now - *t) / 1e6, ru.ru_maxrss / 1024);
	*t = now;
}
