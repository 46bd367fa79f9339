/* pyxray snapshot: write a heap snapshot that Chrome DevTools opens.  A placeholder until the command lands. */
#include "cmd.h"
#include "pyxray/error.h"

void help_snapshot(FILE *out)
{
	fprintf(out, "Usage: pyxray snapshot PID [OPTIONS]\n\nwrite a heap snapshot that Chrome DevTools opens.\n"
		"Not implemented yet.\n");
}

int do_snapshot(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	return cmd_usage("snapshot", "not implemented yet");
}
