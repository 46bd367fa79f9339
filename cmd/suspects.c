/* pyxray suspects: what holds the memory: dominators, retained sizes, leak suspects.  A placeholder until the command lands. */
#include "cmd.h"
#include "pyxray/error.h"

void help_suspects(FILE *out)
{
	fprintf(out, "Usage: pyxray suspects PID [OPTIONS]\n\nwhat holds the memory: dominators, retained sizes, leak suspects.\n"
		"Not implemented yet.\n");
}

int do_suspects(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	return cmd_usage("suspects", "not implemented yet");
}
