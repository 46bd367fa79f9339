/* Error reporting, argument parsing and JSON for the CLI. */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmd.h"
#include "pyxray/common.h"
#include "pyxray/error.h"
#include "pyxray/heap.h"
#include "pyxray/target.h"
#include "pyxray/python.h"

int cmd_fail(int err)
{
	const char *detail = pyx_err_detail();
	const char *hint = pyx_errhint(err);

	fprintf(stderr, "pyxray: error: %s%s%s%s%s%s\n", pyx_strerror(err),
		detail[0] ? ": " : "", detail, hint[0] ? " (hint: " : "", hint,
		hint[0] ? ")" : "");
	return pyx_exit_code(err);
}

int cmd_usage(const char *cmd, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "pyxray%s%s: error: ", cmd ? " " : "", cmd ? cmd : "");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, " (hint: see 'pyxray %s%s--help')\n", cmd ? cmd : "",
		cmd ? " " : "");
	return pyx_exit_code(PYX_E_USAGE);
}

int cmd_parse_pid(const char *cmd, const char *arg, pid_t *pid)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(arg, &end, 10);
	if (errno || end == arg || *end || v <= 0 || v > 0x3fffffff)
		return -cmd_usage(cmd, "'%s' is not a process id", arg);
	*pid = (pid_t)v;
	return 0;
}

int cmd_parse_int(const char *cmd, const char *opt, const char *arg, int *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(arg, &end, 10);
	if (errno || end == arg || *end || v < 0 || v > 1000000000)
		return -cmd_usage(cmd, "%s takes a non-negative integer, not '%s'",
				  opt, arg);
	*out = (int)v;
	return 0;
}

static void print_stderr(enum pyx_print_level level, const char *msg)
{
	fprintf(stderr, "pyxray: %s: %s\n",
		level == PYX_WARN ? "warning" : level == PYX_INFO ? "info" : "debug",
		msg);
}

void cmd_set_verbose(bool verbose)
{
	pyx_set_print(verbose ? print_stderr : NULL);
}

void json_str(FILE *out, const char *s)
{
	if (!s) {
		fputs("null", out);
		return;
	}
	fputc('"', out);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		switch (*p) {
		case '"': fputs("\\\"", out); break;
		case '\\': fputs("\\\\", out); break;
		case '\n': fputs("\\n", out); break;
		case '\r': fputs("\\r", out); break;
		case '\t': fputs("\\t", out); break;
		default:
			if (*p < 0x20)
				fprintf(out, "\\u%04x", *p);
			else
				fputc(*p, out);
		}
	}
	fputc('"', out);
}

int cmd_python_opt(const char *cmd, int argc, char **argv,
		   struct pyx_python_opts *o)
{
	const char *a = argv[0], *val = NULL;
	size_t n;
	int used = 2, mode;

	if (strncmp(a, "--layout", 8) == 0 && (a[8] == '=' || !a[8]))
		n = 8;
	else if (strncmp(a, "--debug-dir", 11) == 0 && (a[11] == '=' || !a[11]))
		n = 11;
	else
		return 0;
	if (a[n] == '=') {
		val = a + n + 1;
		used = 1;
	} else if (argc > 1) {
		val = argv[1];
	} else {
		cmd_usage(cmd, "%.*s needs a value", (int)n, a);
		return -1;
	}
	if (n == 11) {
		o->debug_dir = val;
		return used;
	}
	mode = pyx_layout_mode_parse(val);
	if (mode < 0) {
		cmd_usage(cmd, "--layout takes auto, dwarf, table or "
			  "debug-offsets, not '%s'", val);
		return -1;
	}
	o->layout = (enum pyx_layout_mode)mode;
	return used;
}

void print_safe(FILE *out, const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; p && *p; p++) {
		if (*p < 0x20 || *p == 0x7f)
			fprintf(out, "\\x%02x", *p);
		else
			fputc(*p, out);
	}
}

int cmd_capture_opt(const char *cmd, int argc, char **argv,
		    struct pyx_heap_capture_opts *o)
{
	const char *a = argv[0];
	int *dst = NULL, mib;

	if (strcmp(a, "--max-copy") == 0)
		dst = &mib;
	else if (strcmp(a, "--deadline-ms") == 0)
		dst = &o->deadline_ms;
	else if (strcmp(a, "--hold-ms") == 0) /* test hook */
		dst = &o->hold_ms;
	else
		return 0;
	if (argc < 2) {
		cmd_usage(cmd, "%s needs a value", a);
		return -1;
	}
	if (cmd_parse_int(cmd, a, argv[1], dst))
		return -1;
	if (dst == &mib)
		o->max_copy = (uint64_t)mib << 20;
	return 2;
}
