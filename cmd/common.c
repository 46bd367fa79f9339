/* Error reporting, argument parsing, output and JSON for the CLI. */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <inttypes.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cmd.h"
#include "pyxray/common.h"
#include "pyxray/error.h"
#include "pyxray/heap.h"
#include "pyxray/target.h"
#include "pyxray/python.h"

/* ---- UTF-8 and escaping ------------------------------------------------ */

enum u8_kind {
	U8_TEXT,      /* printable as is */
	U8_CONTROL,   /* C0, DEL or C1: cp holds it */
	U8_FORMAT,    /* a bidi or line control that reorders or breaks what
			 a terminal shows (U+200E-200F, U+2028-202E,
			 U+2066-2069, U+FEFF): escaped like a control */
	U8_SURROGATE, /* a lone surrogate (U+D800-U+DFFF) encoded in 3 bytes */
	U8_INVALID,   /* one byte that starts no valid UTF-8 sequence */
};

/* The character at p (p[0] != 0): its kind, code point (the byte for
 * U8_INVALID) and length in bytes.  Overlong forms and code points past
 * U+10FFFF are invalid; the terminating NUL never passes as a continuation
 * byte, so no read goes past it. */
static size_t u8_next(const unsigned char *p, uint32_t *cp, enum u8_kind *k)
{
	static const uint32_t min[5] = { 0, 0, 0x80, 0x800, 0x10000 };
	unsigned char c = p[0];
	size_t n;
	uint32_t v;

	if (c < 0x80) {
		*cp = c;
		*k = c < 0x20 || c == 0x7f ? U8_CONTROL : U8_TEXT;
		return 1;
	}
	if (c >= 0xc2 && c <= 0xdf)
		n = 2, v = c & 0x1f;
	else if (c >= 0xe0 && c <= 0xef)
		n = 3, v = c & 0x0f;
	else if (c >= 0xf0 && c <= 0xf4)
		n = 4, v = c & 0x07;
	else
		goto invalid;
	for (size_t i = 1; i < n; i++) {
		if ((p[i] & 0xc0) != 0x80)
			goto invalid;
		v = v << 6 | (p[i] & 0x3f);
	}
	if (v < min[n] || v > 0x10ffff)
		goto invalid;
	*cp = v;
	if (v >= 0xd800 && v <= 0xdfff)
		*k = U8_SURROGATE;
	else if (v == 0x200e || v == 0x200f || (v >= 0x2028 && v <= 0x202e) ||
		 (v >= 0x2066 && v <= 0x2069) || v == 0xfeff)
		*k = U8_FORMAT;
	else
		*k = v <= 0x9f ? U8_CONTROL : U8_TEXT;
	return n;
invalid:
	*cp = c;
	*k = U8_INVALID;
	return 1;
}

/* One character of s escaped for a terminal into out (at least 7 bytes):
 * its length; *used is the bytes of s it stands for. */
static size_t escape_one(const unsigned char *s, char *out, size_t *used)
{
	enum u8_kind k;
	uint32_t cp;

	*used = u8_next(s, &cp, &k);
	switch (k) {
	case U8_TEXT:
		memcpy(out, s, *used);
		return *used;
	case U8_SURROGATE:
	case U8_FORMAT:
		return (size_t)snprintf(out, 7, "\\u%04x", (unsigned)cp);
	default:
		return (size_t)snprintf(out, 7, "\\x%02x", (unsigned)cp);
	}
}

void print_safe(FILE *out, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t used;
	char e[8];

	while (p && *p) {
		fwrite(e, 1, escape_one(p, e, &used), out);
		p += used;
	}
}

size_t cmd_escape(char *buf, size_t n, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t o = 0, used, w;
	char e[8];

	if (n == 0)
		return 0;
	while (p && *p) {
		w = escape_one(p, e, &used);
		if (o + w > n - 1)
			break;
		memcpy(buf + o, e, w);
		o += w;
		p += used;
	}
	buf[o] = '\0';
	return o;
}

void json_str(FILE *out, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	enum u8_kind k;
	uint32_t cp;
	size_t n;

	if (!s) {
		fputs("null", out);
		return;
	}
	fputc('"', out);
	for (; *p; p += n) {
		n = u8_next(p, &cp, &k);
		switch (k) {
		case U8_TEXT:
			if (*p == '"' || *p == '\\')
				fputc('\\', out);
			fwrite(p, 1, n, out);
			break;
		case U8_CONTROL:
			if (cp == '\n')
				fputs("\\n", out);
			else if (cp == '\r')
				fputs("\\r", out);
			else if (cp == '\t')
				fputs("\\t", out);
			else
				fprintf(out, "\\u%04x", (unsigned)cp);
			break;
		case U8_SURROGATE:
		case U8_FORMAT:
			fprintf(out, "\\u%04x", (unsigned)cp);
			break;
		case U8_INVALID:
			fprintf(out, "\\u%04x", 0xdc00u | cp);
			break;
		}
	}
	fputc('"', out);
}

/* ---- errors ------------------------------------------------------------ */

int cmd_fail(int err)
{
	const char *detail = pyx_err_detail();
	const char *hint = pyx_errhint(err);

	/* The detail may name what the target controls (a path, a symbol). */
	fprintf(stderr, "pyxray: error: %s%s", pyx_strerror(err),
		detail[0] ? ": " : "");
	print_safe(stderr, detail);
	fprintf(stderr, "%s%s%s\n", hint[0] ? " (hint: " : "", hint,
		hint[0] ? ")" : "");
	return pyx_exit_code(err);
}

int cmd_usage(const char *cmd, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fprintf(stderr, "pyxray%s%s: error: ", cmd ? " " : "", cmd ? cmd : "");
	print_safe(stderr, msg);
	fprintf(stderr, " (hint: see 'pyxray %s%s--help')\n", cmd ? cmd : "",
		cmd ? " " : "");
	return pyx_exit_code(PYX_E_USAGE);
}

static void print_line(FILE *f, enum pyx_print_level level, const char *msg)
{
	fprintf(f, "pyxray: %s: ",
		level == PYX_WARN ? "warning" : level == PYX_INFO ? "info" : "debug");
	print_safe(f, msg);
	fputc('\n', f);
}

/* A line in one write: stderr has no buffer, and the escaping writes a
 * character at a time (a system call each, in the middle of a measured
 * phase with -v). */
static void print_stderr(enum pyx_print_level level, const char *msg)
{
	char *line = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&line, &len);

	if (!m) {
		print_line(stderr, level, msg);
		return;
	}
	print_line(m, level, msg);
	if (fclose(m) == 0)
		fwrite(line, 1, len, stderr);
	else
		print_line(stderr, level, msg);
	free(line);
}

static bool verbose_on;

void cmd_set_verbose(bool verbose)
{
	verbose_on = verbose;
	pyx_set_print(verbose ? print_stderr : NULL);
}

void cmd_python_warn(const struct pyx_python *py)
{
	const char *w = pyx_python_info(py)->warning;

	/* The library's pyx_warn() of it reached stderr with --verbose. */
	if (w[0] && !verbose_on)
		print_stderr(PYX_WARN, w);
}

/* ---- output ------------------------------------------------------------ */

/* Whether stdout is a pipe or socket nobody reads any more. */
static bool reader_gone(int err)
{
	struct pollfd p = { .fd = STDOUT_FILENO, .events = 0 };

	if (err == EPIPE)
		return true;
	return poll(&p, 1, 0) == 1 && (p.revents & POLLERR);
}

int cmd_finish_output(int ret)
{
	bool failed = ferror(stdout) != 0;
	int err = 0;

	errno = 0;
	if (fflush(stdout) != 0) {
		failed = true;
		err = errno;
	}
	/* Close it here, not at exit, so a late write error is seen. */
	errno = 0;
	if (fclose(stdout) != 0 && !err) {
		failed = true;
		err = errno;
	}
	if (!failed || ret != 0 || reader_gone(err))
		return ret;
	return cmd_fail(pyx_err_set(PYX_E_IO, "writing the output: %s",
				    strerror(err ? err : EIO)));
}

/* ---- arguments --------------------------------------------------------- */

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

/* The core's options, as cmd_next() and cmd_python_opt() found them. */
static struct {
	const char *exe, *sysroot, *debug_dir;
} core_opts;

/* Digits only: a PID; anything else names a core file. */
static bool all_digits(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (*s < '0' || *s > '9')
			return false;
	return true;
}

int cmd_parse_target(const char *cmd, const char *arg, struct cmd_target *t)
{
	struct stat st;
	pid_t pid = 0;

	if (!all_digits(arg) && arg[0] != '-' && stat(arg, &st) == 0) {
		if (!S_ISREG(st.st_mode))
			return -cmd_usage(cmd, "'%s' is not a process id nor a "
					  "core file (not a regular file)", arg);
		t->arg = arg;
		t->core = true;
		t->pid = 0;
		return 0;
	}
	if (!all_digits(arg))
		return -cmd_usage(cmd, "'%s' is not a process id, nor a core "
				  "file that exists", arg);
	if (cmd_parse_pid(cmd, arg, &pid))
		return -2;
	t->arg = arg;
	t->core = false;
	t->pid = pid;
	return 0;
}

int cmd_target_arg(const char *cmd, const char *arg, struct cmd_target *t)
{
	if (t->arg)
		return -cmd_usage(cmd, "unexpected argument '%s'", arg);
	return cmd_parse_target(cmd, arg, t);
}

int cmd_open_target(struct cmd_target *t, struct pyx_target **out)
{
	struct pyx_core_opts o = {
		t->exe ? t->exe : core_opts.exe,
		t->sysroot ? t->sysroot : core_opts.sysroot,
		t->debug_dir ? t->debug_dir : core_opts.debug_dir,
	};
	const struct pyx_core_info *ci;
	int err;

	*out = NULL;
	if (!t->core) {
		if (o.exe || o.sysroot)
			return pyx_err_set(PYX_E_USAGE, "--exe and --sysroot are "
					   "for core files, not a live process "
					   "(PID %d)", (int)t->pid);
		err = pyx_target_open_pid(t->pid, out);
		if (!err)
			t->pid = pyx_target_pid(*out);
		return err;
	}
	if ((err = pyx_target_open_core(t->arg, &o, out)))
		return err;
	t->pid = pyx_target_pid(*out);
	ci = pyx_target_core_info(*out);
	if (ci && ci->truncated) {
		char msg[1024];

		snprintf(msg, sizeof(msg), "%s is truncated: %" PRIu64 " bytes "
			 "of the %" PRIu64 " its headers need; what it lacks "
			 "reads as missing memory, and results may be partial",
			 t->arg, ci->size, ci->needed);
		print_stderr(PYX_WARN, msg);
	}
	return 0;
}

int cmd_parse_int(const char *cmd, const char *opt, const char *arg, int min,
		  int max, int *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(arg, &end, 10);
	if (errno || end == arg || *end || v < min || v > max)
		return -cmd_usage(cmd, "%s takes an integer from %d to %d, not "
				  "'%s'", opt, min, max, arg);
	*out = (int)v;
	return 0;
}

int cmd_opt_int(const struct cmd_args *a, const char *val, int min, int max,
		int *out)
{
	return cmd_parse_int(a->cmd, a->opt ? a->opt->name : "the option",
			     val, min, max, out) ? -1 : 0;
}

/* The commands that open a target (cmd_open_target). */
static bool takes_target(const char *cmd)
{
	static const char *const names[] = { "stacks", "census", "refs",
					     "info", "suspects", "snapshot",
					     "tasks", "watch" };

	for (size_t i = 0; cmd && i < sizeof(names) / sizeof(names[0]); i++)
		if (!strcmp(cmd, names[i]))
			return true;
	return false;
}

static bool own_option(const struct cmd_opt *opts, const char *arg, size_t len)
{
	for (const struct cmd_opt *o = opts; o->name; o++)
		if (strlen(o->name) == len && !strncmp(arg, o->name, len))
			return true;
	return false;
}

int cmd_next(struct cmd_args *a, const struct cmd_opt *opts, const char **val)
{
	const char *arg, *eq;
	size_t len;

	*val = NULL;
	a->opt = NULL;
	if (a->next >= a->argc)
		return CMD_ARG_END;
	arg = a->argv[a->next++];
	if (!a->words_only && strcmp(arg, "--") == 0) {
		a->words_only = true;
		return cmd_next(a, opts, val);
	}
	/* "-" alone is a word, as for most tools. */
	if (a->words_only || arg[0] != '-' || !arg[1]) {
		*val = arg;
		return CMD_ARG_WORD;
	}
	eq = arg[1] == '-' ? strchr(arg, '=') : NULL;
	len = eq ? (size_t)(eq - arg) : strlen(arg);
	/* A core's --exe and --sysroot, for every command that opens a
	 * target, unless the command's table has them itself. */
	if (takes_target(a->cmd) && !own_option(opts, arg, len)) {
		static const struct cmd_opt core_table[] = {
			{ "--exe", NULL, 1, true },
			{ "--sysroot", NULL, 2, true },
		};

		for (size_t i = 0; i < sizeof(core_table) / sizeof(core_table[0]); i++) {
			const struct cmd_opt *o = &core_table[i];
			const char *v;

			if (strlen(o->name) != len || strncmp(arg, o->name, len))
				continue;
			a->opt = o;
			if (eq) {
				v = eq + 1;
			} else if (a->next < a->argc) {
				v = a->argv[a->next++];
			} else {
				cmd_usage(a->cmd, "%s needs a value", o->name);
				return CMD_ARG_ERROR;
			}
			if (!v[0]) {
				cmd_usage(a->cmd, "%s needs a %s", o->name,
					  o->id == 1 ? "file" : "directory");
				return CMD_ARG_ERROR;
			}
			if (o->id == 1)
				core_opts.exe = v;
			else
				core_opts.sysroot = v;
			return cmd_next(a, opts, val);
		}
	}
	for (const struct cmd_opt *o = opts; o->name; o++) {
		if (!((strlen(o->name) == len && !strncmp(arg, o->name, len)) ||
		      (o->alias && !eq && !strcmp(arg, o->alias))))
			continue;
		a->opt = o;
		if (!o->value) {
			if (eq) {
				cmd_usage(a->cmd, "%s takes no value", o->name);
				return CMD_ARG_ERROR;
			}
		} else if (eq) {
			*val = eq + 1;
		} else if (a->next < a->argc) {
			*val = a->argv[a->next++];
		} else {
			cmd_usage(a->cmd, "%s needs a value", o->name);
			return CMD_ARG_ERROR;
		}
		return o->id;
	}
	cmd_usage(a->cmd, "unknown option '%.*s'", (int)len, arg);
	return CMD_ARG_ERROR;
}

int cmd_python_opt(const struct cmd_args *a, int id, const char *val,
		   struct pyx_python_opts *o)
{
	int mode;

	switch (id) {
	case CMD_OPT_DEBUG_DIR:
		if (!val[0]) {
			cmd_usage(a->cmd, "--debug-dir needs a directory");
			return -1;
		}
		o->debug_dir = val;
		/* A core's files by build-id too. */
		core_opts.debug_dir = val;
		return 1;
	case CMD_OPT_LAYOUT:
		mode = pyx_layout_mode_parse(val);
		if (mode < 0) {
			cmd_usage(a->cmd, "--layout takes auto, dwarf, table or "
				  "debug-offsets, not '%s'", val);
			return -1;
		}
		o->layout = (enum pyx_layout_mode)mode;
		return 1;
	default:
		return 0;
	}
}

int cmd_stop_opt(const struct cmd_args *a, int id, const char *val,
		 int *deadline_ms, int *hold_ms)
{
	switch (id) {
	case CMD_OPT_DEADLINE_MS:
		return cmd_opt_int(a, val, 1, CMD_DEADLINE_MS_MAX,
				   deadline_ms) ? -1 : 1;
#ifdef PYX_TEST_HOOKS
	case CMD_OPT_HOLD_MS:
		return cmd_opt_int(a, val, 0, CMD_HOLD_MS_MAX, hold_ms) ? -1 : 1;
#endif
	default:
		(void)hold_ms;
		return 0;
	}
}

int cmd_capture_opt(const struct cmd_args *a, int id, const char *val,
		    struct pyx_heap_capture_opts *o)
{
	int mib = 0; /* gcc -O3 cannot see cmd_opt_int sets it */

	if (id == CMD_OPT_MAX_COPY) {
		/* 0 keeps the default bound. */
		if (cmd_opt_int(a, val, 0, 1 << 30, &mib))
			return -1;
		o->max_copy = (uint64_t)mib << 20;
		return 1;
	}
	if (id == CMD_OPT_JOBS) {
		int jobs = 0;

		if (cmd_opt_int(a, val, 1, 64, &jobs))
			return -1;
		o->jobs = (unsigned)jobs;
		return 1;
	}
	return cmd_stop_opt(a, id, val, &o->deadline_ms, CMD_HOLD_PTR(*o));
}

const char *cmd_human_bytes(double b, char *buf, size_t n)
{
	static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB" };
	double a = fabs(b);
	size_t u = 0;

	while (a >= 1024 && u + 1 < sizeof(units) / sizeof(units[0])) {
		a /= 1024;
		b /= 1024;
		u++;
	}
	if (u == 0)
		snprintf(buf, n, "%.0f B", b);
	else
		snprintf(buf, n, "%.1f %s", b, units[u]);
	return buf;
}

void cmd_json_i64_or_null(int64_t v)
{
	if (v >= 0)
		printf("%" PRId64, v);
	else
		printf("null");
}

void cmd_print_process(int pid, const char *version, const char *binary)
{
	printf("Process %d: Python ", pid);
	print_safe(stdout, version);
	printf(" (");
	print_safe(stdout, binary);
	printf(")\n");
}
