/* pyxray: a debugger for live CPython processes.  The table of commands. */
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "cmd.h"
#include "pyxray/layout.h"
#include "pyxray_version.h" /* PYX_VERSION, PYX_BUILD_DATE (scripts/version.sh) */

static const struct pyx_cmd commands[] = {
	{ "stacks", do_stacks, help_stacks,
	  "every thread's Python stack, like py-bt / py-spy dump" },
	{ "info", do_info, help_info,
	  "what Python a process runs, and how pyxray reads it" },
	{ "census", do_census, help_census,
	  "objects by type with counts and sizes; growth over time" },
	{ "refs", do_refs, help_refs,
	  "who keeps objects alive: retention paths from the roots" },
	{ "tasks", do_tasks, help_tasks,
	  "every asyncio task: its state, await chain and awaiters" },
	{ "suspects", do_suspects, help_suspects,
	  "what holds the memory: dominators, retained sizes, leak suspects" },
	{ "snapshot", do_snapshot, help_snapshot,
	  "write a heap snapshot that Chrome DevTools opens" },
	{ "watch", do_watch, help_watch,
	  "the memory curve over time: what grows, exported to monitoring" },
	{ "memory", do_memory, help_memory,
	  "where every byte of the RSS lives: objects, pymalloc, malloc, files" },
	{ "allocs", do_allocs, help_allocs,
	  "where the memory was allocated: tracemalloc's traces, from outside" },
	{ "diff", do_diff, help_diff,
	  "compare two censuses saved with 'census --save'" },
	{ "layout", do_layout, help_layout,
	  "print the struct offsets pyxray derives from a build's DWARF" },
};

static void usage(FILE *out)
{
	fprintf(out,
		"Usage: pyxray COMMAND PID [OPTIONS]\n"
		"       pyxray COMMAND --help | pyxray help COMMAND | pyxray --version\n"
		"\n"
		"Inspect a live CPython (3.8-3.15) process from outside: pyxray stops it\n"
		"for as short a time as it can, reads its memory, and never runs code in it.\n"
		"\n"
		"Commands:\n");
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(out, "  %-8s %s\n", commands[i].name, commands[i].summary);
	fprintf(out,
		"\n"
		"Exit codes: 0 ok, 2 usage, 3 no such process, 4 permission denied,\n"
		"5 not a Python process, 6 unsupported version, 7 no debug info,\n"
		"8 process exited, 9 inconsistent memory, 10 timeout, 11 interrupted,\n"
		"12 out of memory, 13 I/O error, 14 layout check failed, 15 already\n"
		"traced, 16 bad file format, 17 not supported, 18 the garbage collector\n"
		"kept running, 19 a core's file is of another build, 70 internal error.\n"
		"Output to a pipe closed early (pyxray ... | head) ends quietly, with\n"
		"the status the command would have had.\n"
		"Options that take a value take it as --opt VALUE or --opt=VALUE.\n");
}

/* --version: the tree's version, the build's date, and what the built-in
 * facts say pyxray reads (the layout tables, one per minor version, and the
 * _Py_DebugOffsets formats), so that a copied binary tells its reach. */
static void version(FILE *out)
{
	int lo = 0, hi = 0, dlo = 0, dhi = 0;

	for (size_t i = 0; i < pyx_layout_ntables; i++) {
		const struct pyx_layout_table *t = &pyx_layout_tables[i];

		if (t->major != 3)
			continue;
		if (!lo || t->minor < lo)
			lo = t->minor;
		if (t->minor > hi)
			hi = t->minor;
	}
	pyx_debug_offsets_range(&dlo, &dhi);
	fprintf(out, "pyxray %s\n", PYX_VERSION);
	fprintf(out, "built %s", PYX_BUILD_DATE);
#ifdef PYX_TEST_HOOKS
	fprintf(out, " (test build: test hooks in)");
#endif
	fprintf(out, "\nCPython 3.%d to 3.%d, x86_64 Linux", lo, hi);
	if (dlo && dhi)
		fprintf(out, "; a newer 3.x: stacks only, through its "
			"_Py_DebugOffsets (formats 3.%d to 3.%d)", dlo, dhi);
	fprintf(out, "\nbuilt-in layout tables:");
	for (size_t i = 0; i < pyx_layout_ntables; i++)
		fprintf(out, " %d.%d.%d", pyx_layout_tables[i].major,
			pyx_layout_tables[i].minor, pyx_layout_tables[i].micro);
	fprintf(out, "\n");
}

static const struct pyx_cmd *find_command(const char *name)
{
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (strcmp(name, commands[i].name) == 0)
			return &commands[i];
	return NULL;
}

static int run(int argc, char **argv)
{
	const struct pyx_cmd *c;

	if (argc < 2)
		return usage(stderr), 2;
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
	    strcmp(argv[1], "help") == 0) {
		/* "pyxray help COMMAND" is "pyxray COMMAND --help". */
		if (argc > 2 && strcmp(argv[1], "help") == 0) {
			if (!(c = find_command(argv[2])))
				return cmd_usage(NULL, "unknown command '%s'",
						 argv[2]);
			c->help(stdout);
			return 0;
		}
		usage(stdout);
		return 0;
	}
	if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "-V") == 0) {
		version(stdout);
		return 0;
	}
	if (!(c = find_command(argv[1])))
		return cmd_usage(NULL, "unknown command '%s'", argv[1]);
	cmd_install_signal_handlers();
	return c->run(argc - 1, argv + 1);
}

int main(int argc, char **argv)
{
	/* A reader that goes away ('pyxray stacks PID | head') makes writes
	 * fail with EPIPE, which cmd_finish_output() takes as a quiet end,
	 * instead of killing pyxray, even before the other handlers are in. */
	signal(SIGPIPE, SIG_IGN);
#ifdef M_MMAP_THRESHOLD
	/* Every block of 1 MiB or more mapped on its own, and unmapped when
	 * freed.  glibc's own threshold moves up to 32 MiB once such a block
	 * is freed; from then on blocks below it come from the heap and stay
	 * resident after their free: the peak would depend on the order of
	 * the frees before (refs on the 5 M heap: 904 or 923 MiB, the same
	 * work).  Fixed, a big array also grows in place (mremap: no copy). */
	mallopt(M_MMAP_THRESHOLD, 1 << 20);
#endif
	return cmd_finish_output(run(argc, argv));
}
