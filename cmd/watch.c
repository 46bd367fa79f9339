/* pyxray watch: the memory curve over time: what grows, exported to monitoring.  A placeholder until the command lands. */
#include "cmd.h"
#include "pyxray/error.h"

void help_watch(FILE *out)
{
	fprintf(out, "Usage: pyxray watch PID [OPTIONS]\n\nthe memory curve over time: what grows, exported to monitoring.\n"
		"Not implemented yet.\n");
}

int do_watch(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	return cmd_usage("watch", "not implemented yet");
}
