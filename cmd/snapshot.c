/* pyxray snapshot: the object graph as a heap snapshot that Chrome
 * DevTools' Memory panel opens (.heapsnapshot). */
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "pyxray/error.h"
#include "pyxray/python.h"
#include "pyxray/suspects.h"
#include "pyxray/target.h"

void help_snapshot(FILE *out)
{
	fprintf(out,
		"Usage: pyxray snapshot PID|CORE -o FILE.heapsnapshot [OPTIONS]\n"
		"\n"
		"Write the object graph of PID (as 'pyxray refs' builds it, every object\n"
		"a node) as a heap snapshot in the V8 format that Chrome DevTools opens:\n"
		"Memory tab, Load (or drag the file in).  One node per object, named by\n"
		"its type, its self size what sys.getsizeof says; edges named as refs\n"
		"names them (attributes and dict keys as properties, items as elements,\n"
		"frame locals as context variables, a weak reference's referent as a\n"
		"weak edge 'target', which retains nothing); a synthetic root holds the\n"
		"roots, another the objects no root reaches.  Node ids come from the\n"
		"objects' addresses, so the Comparison view matches objects across\n"
		"snapshots; 'pyxray refs PID --addr @ID' finds the object of an id.\n"
		"The target is stopped only to copy its heap.\n"
		"\n"
		"Options:\n"
		"  -o, --output FILE  where to write (replaced atomically)\n"
		"  --json             a JSON summary on stdout instead of text\n"
		PYX_CMD_CAPTURE_OPTS_HELP
		PYX_CMD_PYTHON_OPTS_HELP
		PYX_CMD_CORE_OPTS_HELP
		"  -v, --verbose      diagnostics on stderr\n"
		"  -h, --help         this help\n");
}

enum {
	OPT_OUTPUT = CMD_OPT_OWN,
};

static const struct cmd_opt snapshot_opts[] = {
	CMD_OPTS_HELP,
	CMD_OPTS_VERBOSE,
	CMD_OPTS_JSON,
	{ "--output", "-o", OPT_OUTPUT, true },
	CMD_OPTS_CAPTURE
	CMD_OPTS_PYTHON,
	CMD_OPTS_END
};

int do_snapshot(int argc, char **argv)
{
	struct cmd_args args = CMD_ARGS("snapshot", argc, argv);
	struct pyx_python_opts popts = { 0 };
	struct pyx_heapsnapshot_opts o = { 0 };
	struct pyx_heapsnapshot_info info;
	struct pyx_target *tgt = NULL;
	struct pyx_python *py = NULL;
	struct cmd_target t = { 0 };
	const char *val, *path = NULL;
	bool json = false;
	int id, err, ret = 0;
	char a[32], b[32];

	while ((id = cmd_next(&args, snapshot_opts, &val)) != CMD_ARG_END) {
		switch (id) {
		case CMD_ARG_ERROR:
			return 2;
		case CMD_OPT_HELP:
			help_snapshot(stdout);
			return 0;
		case CMD_OPT_VERBOSE:
			cmd_set_verbose(true);
			break;
		case CMD_OPT_JSON:
			json = true;
			break;
		case OPT_OUTPUT:
			if (!val[0])
				return cmd_usage("snapshot", "--output needs a "
						 "file name");
			path = val;
			break;
		case CMD_ARG_WORD:
			if (cmd_target_arg("snapshot", val, &t))
				return 2;
			break;
		default:
			if (cmd_python_opt(&args, id, val, &popts) < 0 ||
			    cmd_capture_opt(&args, id, val, &o.capture) < 0)
				return 2;
		}
	}
	if (!t.arg)
		return cmd_usage("snapshot", "missing PID");
	if (!path)
		return cmd_usage("snapshot", "missing -o FILE.heapsnapshot");
	if ((err = cmd_open_target(&t, &tgt)) ||
	    (err = pyx_python_open_opts(tgt, &popts, &py))) {
		ret = cmd_fail(err);
		goto out;
	}
	cmd_python_warn(py);
	if ((err = pyx_python_check_full(py, "snapshot")) ||
	    (err = pyx_heapsnapshot_write(py, &o, path, &info))) {
		ret = cmd_fail(err);
		goto out;
	}
	if (json) {
		printf("{\"pid\":%d,\"python_version\":", info.pid);
		json_str(stdout, info.python_version);
		printf(",\"file\":");
		json_str(stdout, path);
		printf(",\"pause_ms\":%.3f,\"walk_ms\":%.3f,\"objects\":%" PRIu64
		       ",\"nodes\":%" PRIu64 ",\"edges\":%" PRIu64
		       ",\"weak_edges\":%" PRIu64 ",\"strings\":%"
		       PRIu64 ",\"self_bytes\":%" PRIu64 ",\"file_bytes\":%" PRIu64
		       ",\"id_collisions\":%" PRIu64 ",\"unreachable\":%" PRIu64
		       ",\"partial\":%s}\n", info.pause_ms, info.walk_ms,
		       info.objects, info.nodes, info.edges, info.weak_edges,
		       info.strings,
		       info.self_bytes, info.file_bytes, info.id_collisions,
		       info.unreachable, info.partial ? "true" : "false");
	} else {
		printf("Process %d: Python ", info.pid);
		print_safe(stdout, info.python_version);
		printf("\nPaused the target for %.1f ms; wrote ", info.pause_ms);
		print_safe(stdout, path);
		printf(" (%s): %" PRIu64 " objects (%s), %" PRIu64 " edges (%"
		       PRIu64 " weak), in %.1f ms\n",
		       cmd_human_bytes((double)info.file_bytes, a, sizeof(a)),
		       info.objects,
		       cmd_human_bytes((double)info.self_bytes, b, sizeof(b)),
		       info.edges, info.weak_edges, info.walk_ms);
		if (info.partial)
			printf("Partial: the heap is damaged or the copy was "
			       "bounded; objects may be missing\n");
		printf("Open it in Chrome DevTools: Memory tab, Load.\n");
	}
out:
	pyx_python_free(py);
	pyx_target_free(tgt);
	return ret;
}
