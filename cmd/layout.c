/* pyxray layout: the struct offsets of a CPython build, from its DWARF. */
#include <string.h>

#include "cmd.h"
#include "pyxray/error.h"
#include "pyxray/layout.h"

void help_layout(FILE *out)
{
	fprintf(out,
		"Usage: pyxray layout --from-dwarf FILE\n"
		"\n"
		"Print every struct offset and size pyxray uses, as read from the DWARF\n"
		"of FILE (a libpython or a static python executable): one line per entry,\n"
		"NAME STRUCT MEMBER VALUE, with -1 for fields this build does not have.\n");
}

int do_layout(int argc, char **argv)
{
	struct pyx_layout l;
	int err;

	if (argc == 2 && strcmp(argv[1], "--help") == 0) {
		help_layout(stdout);
		return 0;
	}
	if (argc != 3 || strcmp(argv[1], "--from-dwarf") != 0)
		return cmd_usage("layout", "expected --from-dwarf FILE");
	if ((err = pyx_layout_from_dwarf(&l, argv[2])))
		return cmd_fail(err);
	for (int i = 0; i < PYX_L__COUNT; i++)
		printf("%-22s %-22s %-28s %d\n", pyx_layout_name(i),
		       pyx_layout_struct(i),
		       pyx_layout_member(i) ? pyx_layout_member(i) : "sizeof",
		       l.v[i] == PYX_OFF_NONE ? -1 : l.v[i]);
	return 0;
}
