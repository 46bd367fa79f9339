/* pyxray allocs: where the memory was allocated: tracemalloc's traces, from outside.  A placeholder until the command lands. */
#include "cmd.h"
#include "pyxray/error.h"

void help_allocs(FILE *out)
{
	fprintf(out, "Usage: pyxray allocs PID [OPTIONS]\n\nwhere the memory was allocated: tracemalloc's traces, from outside.\n"
		"Not implemented yet.\n");
}

int do_allocs(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	return cmd_usage("allocs", "not implemented yet");
}
