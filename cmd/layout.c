/* pyxray layout: the struct offsets of a CPython build, from its DWARF. */
#include <stdio.h>
#include <string.h>

#include "cmd.h"
#include "pyxray/error.h"
#include "pyxray/layout.h"
#include "pyxray/symbols.h"

void help_layout(FILE *out)
{
	fprintf(out,
		"Usage: pyxray layout --from-dwarf FILE [--table X.Y.Z]\n"
		"\n"
		"Print every struct offset and size pyxray uses, as read from the DWARF\n"
		"of FILE (a libpython, a static python executable or its .debug file):\n"
		"one line per entry, NAME STRUCT MEMBER VALUE, -1 where the build has no\n"
		"such field.  With --table, print it as a built-in table for\n"
		"lib/layout_tables.c instead (scripts/gen-layout-tables.sh does this for\n"
		"every build on the machine).\n");
}

enum {
	OPT_FROM_DWARF = CMD_OPT_OWN,
	OPT_TABLE,
};

static const struct cmd_opt layout_opts[] = {
	CMD_OPTS_HELP,
	{ "--from-dwarf", NULL, OPT_FROM_DWARF, true },
	{ "--table", NULL, OPT_TABLE, true },
	CMD_OPTS_END
};

int do_layout(int argc, char **argv)
{
	struct cmd_args args = CMD_ARGS("layout", argc, argv);
	struct pyx_layout l;
	int major = 0, minor = 0, micro = 0, id, err;
	const char *file = NULL, *table = NULL, *val;

	while ((id = cmd_next(&args, layout_opts, &val)) != CMD_ARG_END) {
		switch (id) {
		case CMD_ARG_ERROR:
			return 2;
		case CMD_OPT_HELP:
			help_layout(stdout);
			return 0;
		case OPT_FROM_DWARF:
			file = val;
			break;
		case OPT_TABLE:
			table = val;
			break;
		default:
			return cmd_usage("layout", "unexpected argument '%s'", val);
		}
	}
	if (!file)
		return cmd_usage("layout", "expected --from-dwarf FILE");
	if (table && sscanf(table, "%d.%d.%d", &major, &minor, &micro) != 3)
		return cmd_usage("layout", "--table takes a version X.Y.Z, not '%s'",
				 table);
	if ((err = pyx_layout_from_dwarf(&l, file)))
		return cmd_fail(err);
	if (table) {
		struct pyx_elf *elf;
		char build_id[64] = "";

		if ((err = pyx_elf_open(file, 0, &elf)))
			return cmd_fail(err);
		pyx_elf_build_id(elf, build_id, sizeof(build_id));
		pyx_elf_free(elf);
		pyx_layout_print_table(&l, major, minor, micro, build_id, stdout);
		printf("/* row: { %d, %d, %d, \"%s\", \"%s\", t_%d_%d_%d_%.8s }, */\n",
		       major, minor, micro, build_id, file, major, minor, micro,
		       build_id);
		return 0;
	}
	for (int i = 0; i < PYX_L__COUNT; i++)
		printf("%-22s %-22s %-28s %d\n", pyx_layout_name(i),
		       pyx_layout_struct(i),
		       pyx_layout_member(i) ? pyx_layout_member(i) : "sizeof",
		       l.v[i] == PYX_OFF_NONE ? -1 : l.v[i]);
	return 0;
}
