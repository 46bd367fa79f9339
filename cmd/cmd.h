/* Shared by the pyxray subcommands. */
#ifndef PYX_CMD_H
#define PYX_CMD_H

#include <stdbool.h>
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
/* Parse a non-negative integer option. */
int cmd_parse_int(const char *cmd, const char *opt, const char *arg, int *out);
/* SIGINT/SIGTERM/SIGHUP/SIGQUIT: resume every stopped target, then exit
 * with the "interrupted" code. */
void cmd_install_signal_handlers(void);
/* Library diagnostics to stderr (with --verbose). */
void cmd_set_verbose(bool verbose);

struct pyx_python_opts;
#define PYX_CMD_PYTHON_OPTS_HELP                                               \
	"  --layout MODE      where struct offsets come from: auto (DWARF, a\n"   \
	"                     separate debug file, _Py_DebugOffsets + built-in\n" \
	"                     table, built-in table), dwarf, table, debug-offsets\n" \
	"  --debug-dir DIR    look for separate debug files under DIR first\n"
/* If argv[0] is --layout or --debug-dir, store it in o: returns how many
 * arguments it used, 0 if argv[0] is not one of these, -1 after a usage
 * error was printed. */
int cmd_python_opt(const char *cmd, int argc, char **argv,
		   struct pyx_python_opts *o);

/* Text from the target (names, paths, source lines) on a terminal: control
 * characters escaped as \xNN, so a target cannot drive the terminal. */
void print_safe(FILE *out, const char *s);

struct pyx_heap_capture_opts;
#define PYX_CMD_CAPTURE_OPTS_HELP                                              \
	"  --max-copy MIB     bound the heap copy (default: 3/4 of the host's\n" \
	"                     available memory); past it, counts are partial\n" \
	"  --deadline-ms MS   give up if the threads do not stop within MS\n"    \
	"                     (default 2000); the target is always resumed\n"
/* --max-copy, --deadline-ms, --hold-ms (a test hook) for the commands that
 * copy the heap: as cmd_python_opt(). */
int cmd_capture_opt(const char *cmd, int argc, char **argv,
		    struct pyx_heap_capture_opts *o);

/* JSON output. */
void json_str(FILE *out, const char *s);

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
/* Shared by census and diff (cmd/census.c). */
const char *cmd_human_bytes(double bytes, char *buf, size_t n);
void cmd_print_growth(const struct pyx_census_delta *d, size_t top,
		      enum pyx_census_sort by);
void cmd_print_growth_json(const struct pyx_census_delta *d, size_t top);

#endif
