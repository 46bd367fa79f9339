/* pyxray refs: who keeps objects alive, grouped by retention path. */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "pyxray/allocs.h"
#include "pyxray/error.h"
#include "pyxray/target.h"
#include "pyxray/python.h"
#include "pyxray/refs.h"
#include "pyxray/suspects.h"

#define DEFAULT_CHAINS 10
#define DEFAULT_DEPTH 64

void help_refs(FILE *out)
{
	fprintf(out,
		"Usage: pyxray refs PID|CORE --type NAME | --addr 0xADDR|@ID [OPTIONS]\n"
		"\n"
		"Why are these objects still alive?  The shortest paths from the roots\n"
		"(sys.modules, the sys and builtins dicts, every thread's frames and\n"
		"locals, then objects held from outside the Python heap) to every object\n"
		"of type NAME (as 'pyxray census' names it: __main__.Session, dict), or\n"
		"to one object, with each edge named: dict key, attribute, item, local\n"
		"variable, __defaults__, __self__, lru_cache entry... Objects of NAME are\n"
		"grouped by the shape of their path, biggest first.  Objects no root\n"
		"reaches are garbage awaiting collection (piling up if gc is disabled).\n"
		"Edges marked (inferred) are words of a type pyxray does not know that\n"
		"hold an object's address.  The target is stopped only to copy its heap,\n"
		"as for a census; the graph is built on the copy.\n"
		"\n"
		"Options:\n"
		"  --type NAME        the objects of this type\n"
		"  --addr 0xADDR      this object; also lists its direct referrers\n"
		"  --addr @ID         the object of a heap snapshot's node id (DevTools\n"
		"                     shows it as @ID): one more heap copy, to give the\n"
		"                     ids as 'pyxray snapshot' would now; an id from an\n"
		"                     older snapshot finds the same object while it\n"
		"                     lives (unless an id collision moved it)\n"
		"  --chains N         the N biggest groups (default %d; 0: all)\n"
		"  --max-depth D      paths longer than D are counted, not shown\n"
		"                     (default %d)\n"
		"  --retained         also what each group's objects keep alive (the\n"
		"                     bytes and objects that would be freed with\n"
		"                     them: the dominator tree of the whole object\n"
		"                     graph, as 'pyxray suspects' computes it; costs\n"
		"                     its time and memory)\n"
		"  --json             one JSON object instead of text\n"
		"  --dot FILE         the paths as a Graphviz graph in FILE\n"
		PYX_CMD_CAPTURE_OPTS_HELP
		PYX_CMD_PYTHON_OPTS_HELP
		PYX_CMD_CORE_OPTS_HELP
		"  -v, --verbose      diagnostics on stderr\n"
		"  -h, --help         this help\n"
		"\n"
		"An unknown type name is a usage error (exit 2) that suggests close\n"
		"names; so is an address that is not an object pyxray found, and an\n"
		"@ID that no object of the heap has now.\n"
		"When the target runs tracemalloc, each group says where its example\n"
		"object was allocated (\"allocated_at\" in JSON, else null).\n"
		"JSON: {\"pid\",\"target\",\"addr\",\"snapshot_id\",\"targets\",\"bytes\",\n"
		"\"groups\":[{\"count\",\"bytes\",\n"
		"\"allocated_at\",\"root\",\"inferred\",\"path\":[{\"type\",\"holder\",\"edge\",\"addr\",\"inferred\"}]}],\n"
		"\"unreachable\",\"unreachable_bytes\",\"too_deep\",\"referrers\":[{\"addr\",\n"
		"\"type\",\"edge\",\"inferred\"}],\"gc_garbage\",...}; path goes from the target's\n"
		"holder to the root.  With --retained, \"retained_bytes\" and\n"
		"\"retained_objects\" in each group and at the top (all the targets).\n",
		DEFAULT_CHAINS, DEFAULT_DEPTH);
}

/* "dict value ['k'] of dict" then "__dict__ of X": one line,
 * "attribute 'k' of X" (global of a module, class attribute). */
static bool merged(const struct pyx_refs_step *a, const struct pyx_refs_step *b,
		   char *buf, size_t n)
{
	const char *k = a->edge + strlen("dict value [");

	if (strncmp(a->edge, "dict value ['", 13) != 0 ||
	    strcmp(a->type, "dict") != 0 || strcmp(b->edge, "__dict__") != 0)
		return false;
	snprintf(buf, n, "%s %.*s of  %s",
		 strncmp(b->holder, "module ", 7) == 0 ? "global"
		 : strncmp(b->holder, "class ", 6) == 0 ? "class attribute"
		 : "attribute", (int)(strlen(k) - 1), k, b->holder);
	return true;
}

static void print_group(const struct pyx_refs_group *g, const char *type,
			bool retained)
{
	char raw[512], head[1024], b[32], rb[32], line[1024];
	int w;

	/* Target strings: line is printed with print_safe(), head escaped
	 * first so that its width is what the terminal shows. */
	if (retained)
		snprintf(raw, sizeof(raw), "%" PRIu64 " x %s (%s; retain %s in %"
			 PRIu64 " objects)", g->count, type,
			 cmd_human_bytes((double)g->bytes, b, sizeof(b)),
			 cmd_human_bytes((double)g->retained_bytes, rb,
					 sizeof(rb)), g->retained_objects);
	else
		snprintf(raw, sizeof(raw), "%" PRIu64 " x %s (%s)", g->count,
			 type, cmd_human_bytes((double)g->bytes, b, sizeof(b)));
	w = (int)cmd_escape(head, sizeof(head), raw);
	for (size_t i = 0; i < g->npath; i++) {
		const struct pyx_refs_step *st = &g->path[i];

		if (i + 1 < g->npath && merged(st, &g->path[i + 1], line,
					       sizeof(line)))
			i++;
		else if (strcmp(st->type, "dict") == 0 ||
			 strcmp(st->holder, st->type) == 0)
			snprintf(line, sizeof(line), "%s of  %s at " PYX_PRIaddr,
				 st->edge, st->holder, st->addr);
		else
			snprintf(line, sizeof(line), "%s of  %s", st->edge,
				 st->holder);
		/* The module's entry in sys.modules: one line with the root. */
		if (i + 1 == g->npath && strcmp(g->root, "sys.modules") == 0 &&
		    strncmp(st->edge, "dict value [", 12) == 0) {
			printf("%-*s  <- root: sys.modules", w, head);
			print_safe(stdout, st->edge + 11);
			printf("\n");
			return;
		}
		printf("%-*s  <- ", w, head);
		print_safe(stdout, line);
		printf("\n");
		head[0] = '\0';
	}
	printf("%-*s  <- root: ", w, head);
	print_safe(stdout, g->root);
	printf("\n");
}

/* Where tracemalloc says an object was allocated, when the target runs
 * it: the traces are read after the heap copy (a second, short pause),
 * so an object freed in between has none. */
static struct pyx_allocs *allocs_if_tracing(struct pyx_python *py)
{
	struct pyx_allocs_opts o = { .keep_pointers = true };
	struct pyx_allocs *a = NULL;
	bool on = false;
	int n;

	if (pyx_allocs_status(py, &on, &n) || !on || pyx_allocs_take(py, &o, &a)) {
		pyx_err_clear();
		return NULL;
	}
	return a;
}

static const struct pyx_allocs_frame *
allocated_at(struct pyx_python *py, const struct pyx_allocs *al, pyx_addr_t obj)
{
	const struct pyx_allocs_traceback *tb =
		al ? pyx_allocs_object_site(py, al, obj) : NULL;

	return tb && tb->nframe && tb->frames[0].file ? &tb->frames[0] : NULL;
}

static void json_addr(pyx_addr_t a)
{
	printf("\"" PYX_PRIaddr "\"", a);
}

static void print_text(const struct pyx_refs *r, const char *binary,
		       struct pyx_python *py, const struct pyx_allocs *al,
		       pyx_addr_t addr, int64_t snapshot_id)
{
	char a[32], b[32];

	cmd_print_process(r->pid, r->python_version, binary);
	/* one stop for the copy, one for the id's look-up, one for the
	 * traces: the pause is their sum */
	printf("Paused the target for %.1f ms%s (copied %s of heap in %" PRIu64
	       " reads); graph of %" PRIu64 " objects and %" PRIu64 " references"
	       " (%" PRIu64 " inferred) searched in %.1f ms\n", r->pause_ms,
	       snapshot_id >= 0 && al ? " in 3 stops" :
	       snapshot_id >= 0 || al ? " in 2 stops" : "",
	       cmd_human_bytes((double)r->copied_bytes, a, sizeof(a)),
	       r->copy_reads, r->objects, r->edges, r->inferred_edges, r->walk_ms);
	if (r->truncated)
		printf("Warning: the heap copy hit its bound: paths may be "
		       "missing; see --max-copy\n");
	if (r->damaged_lists || r->bad_objects)
		printf("Partial result: the heap is damaged (%" PRIu64 " GC lists "
		       "cut short at a bad link, %" PRIu64 " damaged objects): "
		       "paths may be missing\n", r->damaged_lists,
		       r->bad_objects);
	if (snapshot_id >= 0)
		printf("Heap snapshot id @%" PRId64 " is the object at "
		       PYX_PRIaddr " (ids as a snapshot taken just before "
		       "this copy gives them)\n", snapshot_id, addr);
	printf("\nTargets: %" PRIu64 " x ", r->targets);
	print_safe(stdout, r->target);
	printf(", %s", cmd_human_bytes((double)r->target_bytes, b, sizeof(b)));
	if (r->retained)
		printf("; they retain %s in %" PRIu64 " objects (dominators in "
		       "%.1f ms)", cmd_human_bytes((double)r->retained_bytes, a,
						  sizeof(a)),
		       r->retained_objects, r->retained_ms);
	printf("\n\n");
	for (size_t i = 0; i < r->ngroups; i++) {
		const struct pyx_allocs_frame *at =
			allocated_at(py, al, r->groups[i].example);

		print_group(&r->groups[i], r->target, r->retained);
		if (at) {
			printf("    (the one at " PYX_PRIaddr " allocated at ",
			       r->groups[i].example);
			print_safe(stdout, at->file);
			printf(":%" PRIu32 ", says tracemalloc)\n", at->line);
		}
		if (r->groups[i].inferred)
			printf("    (a link of this path is inferred: a word of an "
			       "object of unknown type holds the address)\n");
		printf("\n");
	}
	if (r->ngroups < r->ngroups_total)
		printf("(the %zu biggest of %zu paths; --chains 0 for all)\n\n",
		       r->ngroups, r->ngroups_total);
	if (r->unreachable) {
		printf("%" PRIu64 " x ", r->unreachable);
		print_safe(stdout, r->target);
		printf(" (%s) unreachable — garbage awaiting collection (no root "
		       "reaches them)\n\n",
		       cmd_human_bytes((double)r->unreachable_bytes, a, sizeof(a)));
	}
	if (r->too_deep) {
		printf("%" PRIu64 " x ", r->too_deep);
		print_safe(stdout, r->target);
		printf(" reached only by paths longer than --max-depth\n\n");
	}
	if (r->nreferrers) {
		printf("Direct referrers:\n");
		for (size_t i = 0; i < r->nreferrers; i++) {
			printf("  ");
			print_safe(stdout, r->referrers[i].edge);
			printf(" of  ");
			print_safe(stdout, r->referrers[i].type);
			printf(" at " PYX_PRIaddr "\n", r->referrers[i].addr);
		}
		printf("\n");
	}
	if (r->garbage) {
		printf("gc.garbage holds %" PRIu64 " uncollectable objects:",
		       r->garbage);
		for (size_t i = 0; i < r->ngarbage_types; i++) {
			printf("%s ", i ? "," : "");
			print_safe(stdout, r->garbage_types[i]);
		}
		printf("%s\n", r->garbage > r->ngarbage_types ? ", ..." : "");
	}
}

static void print_json(const struct pyx_refs *r, struct pyx_python *py,
		       const struct pyx_allocs *al, pyx_addr_t addr,
		       int64_t snapshot_id)
{
	printf("{\"pid\":%d,\"python_version\":", r->pid);
	json_str(stdout, r->python_version);
	printf(",\"target\":");
	json_str(stdout, r->target);
	printf(",\"addr\":");
	if (addr)
		json_addr(addr);
	else
		printf("null");
	if (snapshot_id >= 0)
		printf(",\"snapshot_id\":%" PRId64, snapshot_id);
	else
		printf(",\"snapshot_id\":null");
	printf(",\"pause_ms\":%.3f,\"walk_ms\":%.3f,\"objects\":%" PRIu64
	       ",\"edges\":%" PRIu64 ",\"inferred_edges\":%" PRIu64
	       ",\"roots\":%" PRIu64 ",\"truncated\":%s,\"partial\":%s"
	       ",\"damaged_lists\":%" PRIu64 ",\"bad_objects\":%" PRIu64
	       ",\"targets\":%" PRIu64
	       ",\"bytes\":%" PRIu64 ",\"unreachable\":%" PRIu64
	       ",\"unreachable_bytes\":%" PRIu64 ",\"too_deep\":%" PRIu64
	       ",\"ngroups\":%zu,\"groups\":[", r->pause_ms, r->walk_ms,
	       r->objects, r->edges, r->inferred_edges, r->roots,
	       r->truncated ? "true" : "false", r->partial ? "true" : "false",
	       r->damaged_lists, r->bad_objects, r->targets, r->target_bytes,
	       r->unreachable, r->unreachable_bytes, r->too_deep,
	       r->ngroups_total);
	for (size_t i = 0; i < r->ngroups; i++) {
		const struct pyx_refs_group *g = &r->groups[i];

		printf("%s{\"count\":%" PRIu64 ",\"bytes\":%" PRIu64,
		       i ? "," : "", g->count, g->bytes);
		if (r->retained)
			printf(",\"retained_bytes\":%" PRIu64
			       ",\"retained_objects\":%" PRIu64,
			       g->retained_bytes, g->retained_objects);
		printf(",\"example\":");
		json_addr(g->example);
		{
			const struct pyx_allocs_frame *at =
				allocated_at(py, al, g->example);

			printf(",\"allocated_at\":");
			if (at) {
				printf("{\"file\":");
				json_str(stdout, at->file);
				printf(",\"line\":%" PRIu32 "}", at->line);
			} else {
				printf("null");
			}
		}
		printf(",\"root\":");
		json_str(stdout, g->root);
		printf(",\"inferred\":%s,\"path\":[", g->inferred ? "true" : "false");
		for (size_t j = 0; j < g->npath; j++) {
			const struct pyx_refs_step *st = &g->path[j];

			printf("%s{\"type\":", j ? "," : "");
			json_str(stdout, st->type);
			printf(",\"holder\":");
			json_str(stdout, st->holder);
			printf(",\"edge\":");
			json_str(stdout, st->edge);
			printf(",\"addr\":");
			json_addr(st->addr);
			printf(",\"inferred\":%s}", st->inferred ? "true" : "false");
		}
		printf("]}");
	}
	printf("],\"referrers\":[");
	for (size_t i = 0; i < r->nreferrers; i++) {
		printf("%s{\"addr\":", i ? "," : "");
		json_addr(r->referrers[i].addr);
		printf(",\"type\":");
		json_str(stdout, r->referrers[i].type);
		printf(",\"edge\":");
		json_str(stdout, r->referrers[i].edge);
		printf(",\"inferred\":%s}", r->referrers[i].inferred ? "true"
								       : "false");
	}
	printf("],\"gc_garbage\":%" PRIu64, r->garbage);
	if (r->retained)
		printf(",\"retained_bytes\":%" PRIu64 ",\"retained_objects\":%"
		       PRIu64 ",\"retained_ms\":%.3f", r->retained_bytes,
		       r->retained_objects, r->retained_ms);
	printf("}\n");
}

static void dot_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			fputc('\\', f);
		fputc(*s, f);
	}
	fputc('"', f);
}

static int write_dot(const struct pyx_refs *r, const char *path)
{
	FILE *f = fopen(path, "we");

	if (!f)
		return pyx_err_set(PYX_E_IO, "cannot write %s: %s", path,
				   strerror(errno));
	fprintf(f, "digraph refs {\n  rankdir=BT;\n  node [shape=box];\n");
	for (size_t i = 0; i < r->ngroups; i++) {
		const struct pyx_refs_group *g = &r->groups[i];
		char lab[600];

		snprintf(lab, sizeof(lab), "%" PRIu64 " x %s", g->count, r->target);
		fprintf(f, "  t%zu [style=filled,fillcolor=\"#ffd0d0\",label=", i);
		dot_str(f, lab);
		fprintf(f, "];\n");
		for (size_t j = 0; j < g->npath; j++) {
			fprintf(f, "  n%" PRIx64 " [label=", g->path[j].addr);
			dot_str(f, g->path[j].holder);
			fprintf(f, "];\n");
			if (j == 0)
				fprintf(f, "  t%zu -> n%" PRIx64 " [label=", i,
					g->path[j].addr);
			else
				fprintf(f, "  n%" PRIx64 " -> n%" PRIx64 " [label=",
					g->path[j - 1].addr, g->path[j].addr);
			dot_str(f, g->path[j].edge);
			fprintf(f, "%s];\n", g->path[j].inferred ? ",style=dashed" : "");
		}
		fprintf(f, "  r%zu [shape=ellipse,label=", i);
		dot_str(f, g->root);
		fprintf(f, "];\n");
		if (g->npath)
			fprintf(f, "  n%" PRIx64 " -> r%zu;\n",
				g->path[g->npath - 1].addr, i);
		else
			fprintf(f, "  t%zu -> r%zu;\n", i, i);
	}
	if (r->unreachable)
		fprintf(f, "  unreachable [label=\"%" PRIu64 " unreachable "
			"(garbage)\",style=dashed];\n", r->unreachable);
	fprintf(f, "}\n");
	if (fclose(f) != 0)
		return pyx_err_set(PYX_E_IO, "writing %s failed", path);
	return 0;
}

static int parse_addr(const char *s, uint64_t *out)
{
	char *end;

	errno = 0;
	*out = strtoull(s, &end, 16);
	return errno || end == s || *end || !*out ? -1 : 0;
}

/* "@12345", as DevTools shows a node id: decimal digits only (strtoull
 * alone would take a sign or blanks), below 2^31 as every id is. */
static int parse_id(const char *s, int64_t *out)
{
	unsigned long long v;
	char *end;

	if (s[0] != '@' || s[1] < '0' || s[1] > '9')
		return -1;
	errno = 0;
	v = strtoull(s + 1, &end, 10);
	if (errno || *end || v >= (1ull << 31))
		return -1;
	*out = (int64_t)v;
	return 0;
}

enum {
	OPT_TYPE = CMD_OPT_OWN,
	OPT_ADDR,
	OPT_CHAINS,
	OPT_MAX_DEPTH,
	OPT_DOT,
	OPT_RETAINED,
};

static const struct cmd_opt refs_opts[] = {
	CMD_OPTS_HELP,
	CMD_OPTS_VERBOSE,
	CMD_OPTS_JSON,
	{ "--type", NULL, OPT_TYPE, true },
	{ "--addr", NULL, OPT_ADDR, true },
	{ "--chains", NULL, OPT_CHAINS, true },
	{ "--max-depth", NULL, OPT_MAX_DEPTH, true },
	{ "--dot", NULL, OPT_DOT, true },
	{ "--retained", NULL, OPT_RETAINED, false },
	CMD_OPTS_CAPTURE
	CMD_OPTS_PYTHON,
	CMD_OPTS_END
};

int do_refs(int argc, char **argv)
{
	struct cmd_args args = CMD_ARGS("refs", argc, argv);
	struct pyx_python_opts popts = { 0 };
	struct pyx_refs_opts o = { 0 };
	struct pyx_target *tgt = NULL;
	struct pyx_python *py = NULL;
	struct pyx_refs *r = NULL;
	struct pyx_allocs *allocs = NULL;
	const char *dot = NULL, *val;
	int64_t snapshot_id = -1;
	bool json = false;
	int chains = DEFAULT_CHAINS, depth = DEFAULT_DEPTH, id, err, ret = 0;
	struct cmd_target t = { 0 };
	pid_t pid = 0;

	while ((id = cmd_next(&args, refs_opts, &val)) != CMD_ARG_END) {
		switch (id) {
		case CMD_ARG_ERROR:
			return 2;
		case CMD_OPT_HELP:
			help_refs(stdout);
			return 0;
		case CMD_OPT_VERBOSE:
			cmd_set_verbose(true);
			break;
		case CMD_OPT_JSON:
			json = true;
			break;
		case OPT_TYPE:
			if (!val[0])
				return cmd_usage("refs", "--type needs a type name");
			o.type_name = val;
			break;
		case OPT_ADDR:
			o.addr = 0;
			snapshot_id = -1;
			if (val[0] == '@' ? parse_id(val, &snapshot_id)
					  : parse_addr(val, &o.addr))
				return cmd_usage("refs", "--addr takes a hex address "
						 "(0x7f...) or a heap snapshot id "
						 "(@12345, below 2^31), not '%s'",
						 val);
			break;
		case OPT_CHAINS:
			if (cmd_opt_int(&args, val, 0, INT_MAX, &chains))
				return 2;
			break;
		case OPT_MAX_DEPTH:
			if (cmd_opt_int(&args, val, 1, 65000, &depth))
				return 2;
			break;
		case OPT_RETAINED:
			o.retained = true;
			break;
		case OPT_DOT:
			if (!val[0])
				return cmd_usage("refs", "--dot needs a file name");
			dot = val;
			break;
		case CMD_ARG_WORD:
			if (cmd_target_arg("refs", val, &t))
				return 2;
			break;
		default:
			if (cmd_python_opt(&args, id, val, &popts) < 0 ||
			    cmd_capture_opt(&args, id, val, &o.capture) < 0)
				return 2;
		}
	}
	if (!t.arg)
		return cmd_usage("refs", "missing PID");
	if (!o.type_name == !(o.addr || snapshot_id >= 0))
		return cmd_usage("refs", "give one of --type NAME and --addr "
				 "0xADDR|@ID");
	o.max_depth = depth;
	o.max_groups = chains ? (size_t)chains : SIZE_MAX;
	if ((err = cmd_open_target(&t, &tgt)) ||
	    (err = pyx_python_open_opts(tgt, &popts, &py))) {
		ret = cmd_fail(err);
		goto out;
	}
	pid = t.pid;
	cmd_python_warn(py);
	/* As census: the heap needs more than _Py_DebugOffsets carry. */
	if ((err = pyx_python_check_full(py, "refs"))) {
		ret = cmd_fail(err);
		goto out;
	}
	if (snapshot_id >= 0) {
		struct pyx_heapsnapshot_opts so = { .capture = o.capture };

		if ((err = pyx_heapsnapshot_find_id(py, &so, (uint32_t)snapshot_id,
						    &o.addr))) {
			ret = cmd_fail(err);
			goto out;
		}
		if (!o.addr) {
			fprintf(stderr, "pyxray refs: error: no object has the "
				"heap snapshot id @%" PRId64 " in process %d now "
				"(hint: ids come from a snapshot of the heap of "
				"the moment: an object freed since has none; take "
				"'pyxray snapshot %d -o FILE' and use its ids)\n",
				snapshot_id, pid, pid);
			ret = pyx_exit_code(PYX_E_USAGE);
			goto out;
		}
	}
	if ((err = pyx_refs_take(py, &o, &r))) {
		ret = cmd_fail(err);
		goto out;
	}
	if (r->unknown_type) {
		fprintf(stderr, "pyxray refs: error: no object of type '");
		print_safe(stderr, o.type_name);
		fprintf(stderr, "' in process %d", pid);
		for (size_t i = 0; i < r->nsuggestions; i++) {
			fprintf(stderr, "%s'", i ? ", " : "; did you mean ");
			print_safe(stderr, r->suggestions[i]);
			fprintf(stderr, "'");
		}
		fprintf(stderr, "%s (hint: names as 'pyxray census %d' shows "
			"them)\n", r->nsuggestions ? "?" : "", pid);
		ret = pyx_exit_code(PYX_E_USAGE);
		goto out;
	}
	if (dot && (err = write_dot(r, dot))) {
		ret = cmd_fail(err);
		goto out;
	}
	allocs = allocs_if_tracing(py);
	/* The id's look-up and tracemalloc's traces each took a stop of their
	 * own: the pause reported is the target's whole pause. */
	if (pyx_target_pause_ns(tgt) / 1e6 > r->pause_ms)
		r->pause_ms = (double)pyx_target_pause_ns(tgt) / 1e6;
	if (json)
		print_json(r, py, allocs, o.addr, snapshot_id);
	else
		print_text(r, pyx_python_info(py)->binary, py, allocs, o.addr,
			   snapshot_id);
out:
	pyx_allocs_free(allocs);
	pyx_refs_free(r);
	pyx_python_free(py);
	pyx_target_free(tgt);
	return ret;
}
