/* pyxray memory: where every byte of the RSS lives: objects, pymalloc, malloc, files.  A placeholder until the command lands. */
#include "cmd.h"
#include "pyxray/error.h"

void help_memory(FILE *out)
{
	fprintf(out, "Usage: pyxray memory PID [OPTIONS]\n\nwhere every byte of the RSS lives: objects, pymalloc, malloc, files.\n"
		"Not implemented yet.\n");
}

int do_memory(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	return cmd_usage("memory", "not implemented yet");
}
