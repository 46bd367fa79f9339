/* pyxray tasks: every asyncio task: its state, await chain and awaiters.  A placeholder until the command lands. */
#include "cmd.h"
#include "pyxray/error.h"

void help_tasks(FILE *out)
{
	fprintf(out, "Usage: pyxray tasks PID [OPTIONS]\n\nevery asyncio task: its state, await chain and awaiters.\n"
		"Not implemented yet.\n");
}

int do_tasks(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	return cmd_usage("tasks", "not implemented yet");
}
