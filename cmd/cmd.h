/* Shared by the pyxray subcommands. */
#ifndef PYX_CMD_H
#define PYX_CMD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "pyxray/census.h"

struct pyx_cmd {
	const char *name;
	int (*run)(int argc, char **argv);
	void (*help)(FILE *out);
	const char *summary;
};

/* Print "pyxray: error: <message>: <detail> (hint: <hint>)" on one line of
 * stderr and return the exit code of err (a -PYX_E_* code). */
int cmd_fail(int err);
/* A usage error: one line, exit code 2. */
int cmd_usage(const char *cmd, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Parse a PID argument strictly. */
int cmd_parse_pid(const char *cmd, const char *arg, pid_t *pid);
/* What a reading command reads: a live process by its PID, or a core file
 * by its path (docs/core.md).  Every command that takes a PID parses and
 * opens it through these two, so a new kind of target is added here once.
 * The core's options (--exe FILE, --sysroot DIR; --debug-dir DIR, which
 * CMD_OPTS_PYTHON parses) are taken by cmd_next() and cmd_python_opt() for
 * every command that opens a target, and reach cmd_open_target() through
 * exe, sysroot and debug_dir when the command leaves those NULL. */
struct pyx_target;
struct cmd_target {
	const char *arg;       /* as given; NULL until parsed */
	pid_t pid;             /* the process's PID, set by cmd_open_target() */
	bool core;             /* arg is a core file, not a PID */
	const char *exe;       /* a core's executable (--exe) */
	const char *sysroot;   /* a core's files' root (--sysroot) */
	const char *debug_dir; /* files by build-id (--debug-dir) */
};
/* Parse arg into t: a PID (digits), else an existing file: a core.  0, or
 * -2 after a usage error (printed). */
int cmd_parse_target(const char *cmd, const char *arg, struct cmd_target *t);
/* The positional argument of a command that reads one target: the first
 * is parsed into t, a second is a usage error.  0 or -2 (printed). */
int cmd_target_arg(const char *cmd, const char *arg, struct cmd_target *t);
/* Open what t names; sets t->pid (a core's: the PID it had).  A truncated
 * core is opened, with a warning on stderr.  0 or a negative -PYX_E_*
 * code (--exe or --sysroot with a PID: -PYX_E_USAGE). */
int cmd_open_target(struct cmd_target *t, struct pyx_target **out);
/* Parse an integer option value in [min, max]; a usage error otherwise. */
int cmd_parse_int(const char *cmd, const char *opt, const char *arg, int min,
		  int max, int *out);
/* SIGINT/SIGTERM/SIGHUP/SIGQUIT: resume every stopped target, then exit
 * with the "interrupted" code. */
void cmd_install_signal_handlers(void);
/* Library diagnostics to stderr (with --verbose). */
void cmd_set_verbose(bool verbose);
struct pyx_python;
/* Right after a python is opened: the one-line warning the library has
 * about it (a CPython newer than pyxray knows), on stderr even without
 * --verbose, once (--verbose has shown it already). */
void cmd_python_warn(const struct pyx_python *py);

/* Flush and close stdout once a command is done; returns the exit code.  A
 * reader that went away (EPIPE: 'pyxray stacks PID | head -1') has what it
 * wanted: that ends quietly with ret.  Any other write error is reported
 * (if ret is 0) as an I/O error. */
int cmd_finish_output(int ret);

/*
 * Options.  Every command lists its options in a table and walks argv with
 * cmd_next(), so every option that takes a value takes it as "--opt VALUE"
 * or "--opt=VALUE", and options may come before or after the positional
 * arguments ("--" ends the options).
 */
struct cmd_opt {
	const char *name;   /* "--context" */
	const char *alias;  /* "-v", or NULL */
	int id;             /* > 0: what cmd_next() returns */
	bool value;         /* takes a value */
};

enum {
	CMD_ARG_END = 0,     /* no arguments left */
	CMD_ARG_ERROR = -1,  /* a usage error was printed: exit 2 */
	CMD_ARG_WORD = -2,   /* a positional argument, in *val */
	/* Options several commands share. */
	CMD_OPT_HELP = 1,
	CMD_OPT_VERBOSE,
	CMD_OPT_JSON,
	CMD_OPT_LAYOUT,
	CMD_OPT_DEBUG_DIR,
	CMD_OPT_MAX_COPY,
	CMD_OPT_DEADLINE_MS,
	CMD_OPT_HOLD_MS,
	CMD_OPT_JOBS,
	CMD_OPT_OWN,         /* the first id of a command's own options */
};

#define CMD_OPTS_HELP { "--help", "-h", CMD_OPT_HELP, false }
#define CMD_OPTS_VERBOSE { "--verbose", "-v", CMD_OPT_VERBOSE, false }
#define CMD_OPTS_JSON { "--json", NULL, CMD_OPT_JSON, false }
#define CMD_OPTS_PYTHON                                                        \
	{ "--layout", NULL, CMD_OPT_LAYOUT, true },                            \
	{ "--debug-dir", NULL, CMD_OPT_DEBUG_DIR, true }
/* --hold-ms keeps the target stopped for the tests that kill pyxray while it
 * holds one: it exists only in test builds (-DPYX_TEST_HOOKS=ON). */
#ifdef PYX_TEST_HOOKS
#define CMD_OPTS_HOLD { "--hold-ms", NULL, CMD_OPT_HOLD_MS, true },
#else
#define CMD_OPTS_HOLD
#endif
#define CMD_OPTS_CAPTURE                                                       \
	{ "--max-copy", NULL, CMD_OPT_MAX_COPY, true },                        \
	{ "--deadline-ms", NULL, CMD_OPT_DEADLINE_MS, true },                  \
	{ "--jobs", NULL, CMD_OPT_JOBS, true },                                \
	CMD_OPTS_HOLD
#define CMD_OPTS_END { NULL, NULL, 0, false }

struct cmd_args {
	const char *cmd;
	int argc;
	char **argv;
	int next;                  /* argv[next] is read next */
	bool words_only;           /* after "--" */
	const struct cmd_opt *opt; /* the option cmd_next() returned last */
};
#define CMD_ARGS(cmd, argc, argv) { (cmd), (argc), (argv), 1, false, NULL }

/* The next argument: an option id (with *val its value, or NULL), a
 * CMD_ARG_WORD (*val), CMD_ARG_END, or CMD_ARG_ERROR after a usage error
 * (unknown option, missing value, a value given to a flag). */
int cmd_next(struct cmd_args *a, const struct cmd_opt *opts, const char **val);
/* The value of the last option as an integer in [min, max]: 0, or -1 after
 * a usage error. */
int cmd_opt_int(const struct cmd_args *a, const char *val, int min, int max,
		int *out);

struct pyx_python_opts;
#define PYX_CMD_PYTHON_OPTS_HELP                                               \
	"  --layout MODE      where struct offsets come from: auto (DWARF, a\n"   \
	"                     separate debug file, _Py_DebugOffsets + built-in\n" \
	"                     table, built-in table), dwarf, table, debug-offsets\n" \
	"  --debug-dir DIR    look for separate debug files under DIR first\n"
/* CMD_OPTS_PYTHON: 1 if id is one of them (stored in o), 0 if not, -1 after
 * a usage error. */
int cmd_python_opt(const struct cmd_args *a, int id, const char *val,
		   struct pyx_python_opts *o);

/* The options of a core file (docs/core.md), for every command that takes
 * PID|CORE (cmd_open_target() reads them). */
#define PYX_CMD_CORE_OPTS_HELP                                                 \
	"  --exe FILE         a core's executable, if not where the core says\n" \
	"  --sysroot DIR      a core's files under DIR (copied from its machine)\n"

struct pyx_heap_capture_opts;
#define PYX_CMD_CAPTURE_OPTS_HELP                                              \
	"  --max-copy MIB     bound the heap copy (default: 3/4 of the host's\n" \
	"                     available memory); past it, counts are partial\n" \
	"  --deadline-ms MS   give up if the threads do not stop within MS\n"    \
	"                     (default 2000); the target is always resumed\n"    \
	"  --jobs N           threads for the copy and the walk over it (default:\n" \
	"                     the CPUs pyxray may use, at most 16); the same\n"  \
	"                     result on any number\n"
/* CMD_OPTS_CAPTURE, for the commands that copy the heap: as
 * cmd_python_opt(). */
int cmd_capture_opt(const struct cmd_args *a, int id, const char *val,
		    struct pyx_heap_capture_opts *o);
/* --deadline-ms and (test builds) --hold-ms, for a command that stops the
 * target: as cmd_python_opt(). */
int cmd_stop_opt(const struct cmd_args *a, int id, const char *val,
		 int *deadline_ms, int *hold_ms);
#ifdef PYX_TEST_HOOKS
#define CMD_HOLD_PTR(opts) (&(opts).hold_ms)
#else
#define CMD_HOLD_PTR(opts) ((int *)NULL)
#endif
/* The bounds of the integer options several commands share. */
#define CMD_DEADLINE_MS_MAX 600000
#define CMD_HOLD_MS_MAX 60000

/*
 * Text from the target (names, paths, source lines, type names, dict keys)
 * or from a file never reaches a terminal raw: print_safe() writes valid
 * UTF-8 only, with C0 controls, DEL and C1 controls (U+0080-U+009F: CSI is
 * U+009B) as \xNN, a lone surrogate (a str the target built with one,
 * encoded as ED A0..BF xx) as \uDXXX and a byte that is not UTF-8 as \xNN.
 */
void print_safe(FILE *out, const char *s);
/* The same escaping into buf (always terminated, cut only between
 * characters); returns the length written. */
size_t cmd_escape(char *buf, size_t n, const char *s);

/* A JSON string, NULL as null.  The output is ASCII-safe valid UTF-8: C0,
 * DEL and C1 controls as \u00XX; a lone surrogate as \uDXXX, as Python's
 * json.dumps writes one; a byte that is not UTF-8 as \uDCXX, the lone
 * surrogate Python's surrogateescape decodes it to (os.fsdecode), so a
 * consumer in Python gets back the exact bytes with os.fsencode(). */
void json_str(FILE *out, const char *s);
/* The first line of a report: "Process PID: Python VERSION (BINARY)",
 * the target's strings escaped. */
void cmd_print_process(int pid, const char *version, const char *binary);
/* A count or size, or null where it is unknown (negative). */
void cmd_json_i64_or_null(int64_t v);

/* The subcommands: each file defines its run and help. */
int do_stacks(int argc, char **argv);
void help_stacks(FILE *out);
int do_layout(int argc, char **argv);
void help_info(FILE *out);
int do_info(int argc, char **argv);
void help_layout(FILE *out);
int do_census(int argc, char **argv);
void help_census(FILE *out);
int do_diff(int argc, char **argv);
int do_refs(int argc, char **argv);
void help_refs(FILE *out);
void help_diff(FILE *out);
int do_tasks(int argc, char **argv);
void help_tasks(FILE *out);
int do_suspects(int argc, char **argv);
void help_suspects(FILE *out);
int do_snapshot(int argc, char **argv);
void help_snapshot(FILE *out);
int do_watch(int argc, char **argv);
void help_watch(FILE *out);
int do_memory(int argc, char **argv);
void help_memory(FILE *out);
int do_allocs(int argc, char **argv);
void help_allocs(FILE *out);
/* One asyncio task as text or JSON (cmd/tasks.c; stacks --async too). */
struct pyx_tasks;
void cmd_task_text(const struct pyx_tasks *ts, size_t i, const char *indent);
void cmd_task_json(const struct pyx_tasks *ts, size_t i);
/* "1.5 MiB" (cmd/common.c). */
const char *cmd_human_bytes(double bytes, char *buf, size_t n);

/* The RSS placed with memory's accounting (pyx_memory_take() on a census
 * already taken: one more short stop), as census and suspects print it;
 * defined in cmd/rss.c.  skip: not placed (--no-placement); a failure
 * that is not fatal fills why and returns 0 with *out NULL. */
struct pyx_memory_report;
struct pyx_suspects;
int cmd_rss_place(struct pyx_python *py, const struct pyx_census *c,
		  const struct pyx_heap_capture_opts *capture,
		  const char *debug_dir, bool skip,
		  struct pyx_memory_report **out, char *why, size_t nwhy);
double cmd_rss_pause_ms(const struct pyx_memory_report *r);
void cmd_rss_lines(const struct pyx_memory_report *r);
/* The RSS's parts as 'pyxray memory' names and orders them (memory's
 * table, census's and suspects' line): part i's name and resident bytes,
 * NULL past the last (unexplained). */
const char *cmd_rss_part(const struct pyx_memory_report *r, size_t i,
			 uint64_t *bytes);
void cmd_rss_json(const struct pyx_memory_report *r, const char *why);
/* memory --json's figures, "pause_ms" to "unexplained_share", no braces
 * (cmd/rss.c): lists false leaves out the per-class, per-arena, stack
 * and file lists (census's and suspects' "memory"). */
void cmd_memory_json_fields(const struct pyx_memory_report *r, bool lists,
			    bool classes, size_t top);
void cmd_rss_json_totals(double copy_pause_ms, double other_pause_ms,
			 int64_t rss, uint64_t bytes,
			 const struct pyx_memory_report *r);
void cmd_rss_biggest(const struct pyx_memory_report *r, char *buf, size_t n,
		     uint64_t *bytes);
/* suspects' figures as a census, for cmd_rss_place() (cmd/census.c). */
void cmd_census_of_suspects(const struct pyx_suspects *r, struct pyx_census *c);
void cmd_print_growth(const struct pyx_census_delta *d, size_t top,
		      enum pyx_census_sort by);
void cmd_print_growth_json(const struct pyx_census_delta *d, size_t top);

#endif
