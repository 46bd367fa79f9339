/* Shared by the pyxray subcommands. */
#ifndef PYX_CMD_H
#define PYX_CMD_H

#include <stdbool.h>
#include <stdio.h>
#include <sys/types.h>

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

/* JSON output. */
void json_str(FILE *out, const char *s);

/* The subcommands: each file defines its run and help. */
int do_stacks(int argc, char **argv);
void help_stacks(FILE *out);
int do_layout(int argc, char **argv);
void help_layout(FILE *out);

#endif
