/* pyxray suspects: what holds the memory: dominators, retained sizes, and
 * the accumulation points (MAT's leak suspects). */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "pyxray/allocs.h"
#include "pyxray/error.h"
#include "pyxray/memory_report.h"
#include "pyxray/python.h"
#include "pyxray/suspects.h"
#include "pyxray/target.h"

#define DEFAULT_TOP 10
#define DEFAULT_SHARE_PCT 1.0

void help_suspects(FILE *out)
{
	fprintf(out,
		"Usage: pyxray suspects PID [OPTIONS]\n"
		"\n"
		"What is holding the memory?  Builds the object graph of PID as 'pyxray\n"
		"refs' does (same roots, same edges; weak references never retain), with\n"
		"every object a node, computes its dominator tree and the retained size\n"
		"of every object (what would be freed with it), and reports the leak\n"
		"suspects as Eclipse MAT does: the accumulation points, the deepest\n"
		"objects that still hold most of the memory of the objects above them.\n"
		"A module, class or function is never the suspect: the report goes down\n"
		"to the container that accumulates (the dict in a class attribute, the\n"
		"list in a function's defaults, the cache of an lru_cache wrapper).\n"
		"For each: the holder, its retained bytes and objects and share of the\n"
		"Python heap, the path from a root, what it holds, and the leak shape\n"
		"when it is a known one.  The target is stopped to copy its heap, then\n"
		"once more, shortly, to place the RSS as 'pyxray memory' does (Python\n"
		"objects, pymalloc, glibc malloc, stacks, files, unexplained): when\n"
		"Python objects are a small part of it, the note names the biggest part.\n"
		"\n"
		"Options:\n"
		"  --top N            the N biggest suspects (default %d)\n"
		"  --min-share P      a suspect retains at least P%% of the heap\n"
		"                     (default %.0f)\n"
		"  --no-placement     do not place the RSS: one stop only (the note then\n"
		"                     compares the Python heap with the RSS alone)\n"
		"  --json             one JSON object instead of text\n"
		PYX_CMD_CAPTURE_OPTS_HELP
		PYX_CMD_PYTHON_OPTS_HELP
		"  -v, --verbose      diagnostics on stderr\n"
		"  -h, --help         this help\n"
		"\n"
		"JSON: {\"pid\",\"python_version\",\"pause_ms\" (every stop),\"copy_pause_ms\",\n"
		"\"placement_pause_ms\",\"traces_pause_ms\",\"heap_bytes\",\"rss_bytes\",\n"
		"\"unexplained_bytes\",\"memory\":{...} (as census's: the keys of 'pyxray\n"
		"memory --json'),\"suspects\":\n"
		"[{\"retained_bytes\",\"retained_objects\",\"share\",\"holder\":{\"type\",\n"
		"\"addr\",\"description\",\"allocated_at\"},\"path\":[{\"type\",\"holder\",\"edge\",\"addr\"}],\n"
		"\"root\",\"holds\":[{\"type\",\"count\",\"bytes\"}],\"pattern\"}],\"types\":\n"
		"[{\"type\",\"count\",\"bytes\",\"retained\"}],\"unreachable\",...}; path goes\n"
		"from the holder's holder to the root.  allocated_at: {\"file\",\"line\"}\n"
		"where tracemalloc says the holder was allocated, when the target runs\n"
		"it (one more short stop, in \"traces_pause_ms\"), else null.\n",
		DEFAULT_TOP, DEFAULT_SHARE_PCT);
}

static void json_addr(pyx_addr_t a)
{
	printf("\"" PYX_PRIaddr "\"", a);
}

/* Where tracemalloc says an object was allocated, when the target runs
 * it: the traces are read after the heap copy (a short stop of their own),
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

/* The stop tracemalloc's traces took (0: none read, or a core). */
static double traces_ms(const struct pyx_allocs *al)
{
	return al ? al->pause_ms : 0;
}

static const struct pyx_allocs_frame *
allocated_at(struct pyx_python *py, const struct pyx_allocs *al, pyx_addr_t obj)
{
	const struct pyx_allocs_traceback *tb =
		al ? pyx_allocs_object_site(py, al, obj) : NULL;

	return tb && tb->nframe && tb->frames[0].file ? &tb->frames[0] : NULL;
}

static void print_json(const struct pyx_suspects *r, struct pyx_python *py,
		       const struct pyx_allocs *al,
		       const struct pyx_memory_report *m, const char *why)
{
	printf("{\"pid\":%d,\"python_version\":", r->pid);
	json_str(stdout, r->python_version);
	cmd_rss_json_totals(r->pause_ms, traces_ms(al), r->rss_bytes,
			    r->heap_bytes, m);
	printf(",\"traces_pause_ms\":%.3f", traces_ms(al));
	cmd_rss_json(m, why);
	printf(",\"walk_ms\":%.3f,\"objects\":%" PRIu64
	       ",\"edges\":%" PRIu64 ",\"inferred_edges\":%" PRIu64
	       ",\"roots\":%" PRIu64 ",\"heap_bytes\":%" PRIu64
	       ",\"unreachable\":%" PRIu64 ",\"unreachable_bytes\":%" PRIu64
	       ",\"gc_garbage\":%" PRIu64
	       ",\"truncated\":%s,\"partial\":%s,\"damaged_lists\":%" PRIu64
	       ",\"bad_objects\":%" PRIu64 ",\"min_share\":%.6f,\"suspects\":[",
	       r->walk_ms, r->objects, r->edges, r->inferred_edges,
	       r->roots, r->heap_bytes, r->unreachable, r->unreachable_bytes,
	       r->garbage, r->truncated ? "true" : "false",
	       r->partial ? "true" : "false", r->damaged_lists, r->bad_objects,
	       r->min_share);
	for (size_t i = 0; i < r->nsuspects; i++) {
		const struct pyx_suspect *s = &r->suspects[i];

		printf("%s{\"retained_bytes\":%" PRIu64 ",\"retained_objects\":%"
		       PRIu64 ",\"share\":%.6f,\"holder\":{\"type\":", i ? "," : "",
		       s->retained_bytes, s->retained_objects, s->share);
		json_str(stdout, s->type);
		printf(",\"addr\":");
		json_addr(s->addr);
		printf(",\"description\":");
		json_str(stdout, s->description);
		{
			const struct pyx_allocs_frame *at =
				allocated_at(py, al, s->addr);

			printf(",\"allocated_at\":");
			if (at) {
				printf("{\"file\":");
				json_str(stdout, at->file);
				printf(",\"line\":%" PRIu32 "}", at->line);
			} else {
				printf("null");
			}
		}
		printf("},\"path\":[");
		for (size_t j = 0; j < s->npath; j++) {
			printf("%s{\"type\":", j ? "," : "");
			json_str(stdout, s->path[j].type);
			printf(",\"holder\":");
			json_str(stdout, s->path[j].holder);
			printf(",\"edge\":");
			json_str(stdout, s->path[j].edge);
			printf(",\"addr\":");
			json_addr(s->path[j].addr);
			printf(",\"inferred\":%s}", s->path[j].inferred ? "true"
									: "false");
		}
		printf("],\"root\":");
		json_str(stdout, s->root);
		printf(",\"holds\":[");
		for (size_t j = 0; j < s->nholds; j++) {
			printf("%s{\"type\":", j ? "," : "");
			json_str(stdout, s->holds[j].type);
			printf(",\"count\":%" PRIu64 ",\"bytes\":%" PRIu64 "}",
			       s->holds[j].count, s->holds[j].bytes);
		}
		printf("],\"pattern\":");
		json_str(stdout, s->pattern);
		printf("}");
	}
	printf("],\"types\":[");
	for (size_t i = 0; i < r->ntypes; i++) {
		printf("%s{\"type\":", i ? "," : "");
		json_str(stdout, r->types[i].name);
		printf(",\"count\":%" PRIu64 ",\"bytes\":%" PRIu64 ",\"retained\":%"
		       PRIu64 "}", r->types[i].count, r->types[i].bytes,
		       r->types[i].retained);
	}
	printf("]}\n");
}

/* Python objects are a small part of a big RSS (the C-extension leak):
 * say so, and name the biggest part that is not Python objects. */
static void rss_note(const struct pyx_suspects *r,
		     const struct pyx_memory_report *m)
{
	int64_t rss = m ? m->rss_bytes : r->rss_bytes;
	char what[160];
	uint64_t bytes;

	if (rss <= 0 || (double)r->heap_bytes >= 0.25 * (double)rss ||
	    (uint64_t)rss - r->heap_bytes < (64u << 20))
		return;
	printf("Note: Python objects are %.0f%% of the RSS: most of the memory "
	       "is not Python objects", 100.0 * (double)r->heap_bytes /
					 (double)rss);
	if (m) {
		cmd_rss_biggest(m, what, sizeof(what), &bytes);
		printf("; %s (see 'pyxray memory')\n", what);
	} else {
		printf(" (C extensions, native buffers, allocator free space); "
		       "see 'pyxray memory'\n");
	}
}

static void print_text(const struct pyx_suspects *r, const char *binary,
		       struct pyx_python *py, const struct pyx_allocs *al,
		       const struct pyx_memory_report *m, const char *why,
		       bool skipped)
{
	char a[32], b[32];

	cmd_print_process(r->pid, r->python_version, binary);
	if (m || traces_ms(al) > 0) {
		/* Every stop: the copy, the placement, tracemalloc's traces. */
		int stops = 1 + (m ? 1 : 0) + (traces_ms(al) > 0 ? 1 : 0);

		printf("Paused the target for %.1f ms in %s stops: %.1f ms to "
		       "copy the heap (copied %s in %" PRIu64 " reads)",
		       r->pause_ms + cmd_rss_pause_ms(m) + traces_ms(al),
		       stops == 2 ? "two" : "three", r->pause_ms,
		       cmd_human_bytes((double)r->copied_bytes, a, sizeof(a)),
		       r->copy_reads);
		if (m)
			printf(", %.1f ms to place the RSS", cmd_rss_pause_ms(m));
		if (traces_ms(al) > 0)
			printf(", %.1f ms to read tracemalloc's traces",
			       traces_ms(al));
	} else {
		printf("Paused the target for %.1f ms (copied %s of heap in %"
		       PRIu64 " reads)", r->pause_ms,
		       cmd_human_bytes((double)r->copied_bytes, a, sizeof(a)),
		       r->copy_reads);
	}
	printf("; graph of %" PRIu64 " objects and %" PRIu64 " references,"
	       " dominators and retained sizes in %.1f ms\n", r->objects,
	       r->edges, r->walk_ms);
	if (r->truncated)
		printf("Warning: the heap copy hit its bound: sizes may be "
		       "missing; see --max-copy\n");
	if (r->damaged_lists || r->bad_objects)
		printf("Partial result: the heap is damaged (%" PRIu64 " GC lists "
		       "cut short at a bad link, %" PRIu64 " damaged objects)\n",
		       r->damaged_lists, r->bad_objects);
	printf("Python heap: %s in %" PRIu64 " objects (sys.getsizeof)",
	       cmd_human_bytes((double)r->heap_bytes, a, sizeof(a)), r->objects);
	if (!m && r->rss_bytes > 0)
		printf("; RSS %s", cmd_human_bytes((double)r->rss_bytes, b,
						   sizeof(b)));
	if (!m && !skipped) {
		printf(" (");
		print_safe(stdout, why);
		printf(")");
	}
	printf("\n");
	if (m)
		cmd_rss_lines(m);
	rss_note(r, m);
	printf("\n");
	if (!r->nsuspects)
		printf("No object retains %.1f%% of the heap or more below the "
		       "modules and classes (--min-share)\n\n",
		       100 * r->min_share);
	for (size_t i = 0; i < r->nsuspects; i++) {
		const struct pyx_suspect *s = &r->suspects[i];

		printf("Suspect %zu: ", i + 1);
		print_safe(stdout, s->type);
		printf(" at " PYX_PRIaddr " retains %s (%.1f%% of the heap) in %"
		       PRIu64 " objects\n", s->addr,
		       cmd_human_bytes((double)s->retained_bytes, a, sizeof(a)),
		       100 * s->share, s->retained_objects);
		printf("  holder:  ");
		print_safe(stdout, s->description);
		printf("\n");
		{
			const struct pyx_allocs_frame *at =
				allocated_at(py, al, s->addr);

			if (at) {
				printf("  allocated at ");
				print_safe(stdout, at->file);
				printf(":%" PRIu32 " (tracemalloc)\n", at->line);
			}
		}
		if (s->pattern)
			printf("  pattern: %s\n", s->pattern);
		printf("  holds:  ");
		for (size_t j = 0; j < s->nholds && j < 5; j++) {
			printf("%s %" PRIu64 " x ", j ? "," : "", s->holds[j].count);
			print_safe(stdout, s->holds[j].type);
			printf(" (%s)", cmd_human_bytes((double)s->holds[j].bytes, a,
							sizeof(a)));
		}
		printf("%s\n", s->nholds ? "" : " nothing else");
		printf("  path:    ");
		for (size_t j = 0; j < s->npath; j++) {
			if (j)
				printf("           ");
			printf("<- ");
			print_safe(stdout, s->path[j].edge);
			printf(" of  ");
			print_safe(stdout, s->path[j].holder);
			if (strcmp(s->path[j].holder, s->path[j].type) == 0)
				printf(" at " PYX_PRIaddr, s->path[j].addr);
			printf("\n");
		}
		printf("%s<- root: ", s->npath ? "           " : "");
		print_safe(stdout, s->root ? s->root : "?");
		printf("\n\n");
	}
	if (r->unreachable)
		printf("%" PRIu64 " objects (%s) no root reaches: garbage awaiting "
		       "collection (piling up if gc is disabled)\n\n",
		       r->unreachable, cmd_human_bytes((double)r->unreachable_bytes,
							a, sizeof(a)));
	if (r->garbage)
		printf("gc.garbage holds %" PRIu64 " uncollectable objects\n\n",
		       r->garbage);
	if (r->ntypes) {
		printf("Retained by type (what all its instances keep alive):\n");
		printf("  %10s %10s %9s  %s\n", "retained", "own", "count", "type");
		for (size_t i = 0; i < r->ntypes && i < 10; i++) {
			printf("  %10s %10s %9" PRIu64 "  ",
			       cmd_human_bytes((double)r->types[i].retained, a,
					       sizeof(a)),
			       cmd_human_bytes((double)r->types[i].bytes, b,
					       sizeof(b)), r->types[i].count);
			print_safe(stdout, r->types[i].name);
			printf("\n");
		}
	}
}

/* A percentage in (0, 100], "5", "0.5" or "5%". */
static int parse_share(const char *s, double *out)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (*end == '%')
		end++;
	if (errno || end == s || *end || !isfinite(v) || v <= 0 || v > 100)
		return -1;
	*out = v / 100;
	return 0;
}

/* The second stop (the RSS placed) and tracemalloc's traces: on this
 * thread, while the library computes the dominators on another. */
struct meanwhile {
	struct pyx_python *py;
	const struct pyx_heap_capture_opts *capture;
	const char *debug_dir;
	bool skip;
	struct pyx_memory_report *m;
	struct pyx_allocs *allocs;
	char why[256];
};

static int place_meanwhile(void *arg, const struct pyx_suspects *r)
{
	struct meanwhile *x = arg;
	struct pyx_census c;
	int err;

	cmd_census_of_suspects(r, &c);
	if ((err = cmd_rss_place(x->py, &c, x->capture, x->debug_dir, x->skip,
				 &x->m, x->why, sizeof(x->why))))
		return err;
	x->allocs = allocs_if_tracing(x->py);
	return 0;
}

enum {
	OPT_TOP = CMD_OPT_OWN,
	OPT_MIN_SHARE,
	OPT_NO_PLACEMENT,
};

static const struct cmd_opt suspects_opts[] = {
	CMD_OPTS_HELP,
	CMD_OPTS_VERBOSE,
	CMD_OPTS_JSON,
	{ "--top", NULL, OPT_TOP, true },
	{ "--min-share", NULL, OPT_MIN_SHARE, true },
	{ "--no-placement", NULL, OPT_NO_PLACEMENT, false },
	CMD_OPTS_CAPTURE
	CMD_OPTS_PYTHON,
	CMD_OPTS_END
};

int do_suspects(int argc, char **argv)
{
	struct cmd_args args = CMD_ARGS("suspects", argc, argv);
	struct pyx_python_opts popts = { 0 };
	struct pyx_suspects_opts o = { 0 };
	struct pyx_target *tgt = NULL;
	struct pyx_python *py = NULL;
	struct pyx_suspects *r = NULL;
	struct meanwhile mw = { 0 };
	struct cmd_target t = { 0 };
	const char *val;
	bool json = false, skip = false;
	int top = DEFAULT_TOP, id, err, ret = 0;

	o.min_share = DEFAULT_SHARE_PCT / 100;
	while ((id = cmd_next(&args, suspects_opts, &val)) != CMD_ARG_END) {
		switch (id) {
		case CMD_ARG_ERROR:
			return 2;
		case CMD_OPT_HELP:
			help_suspects(stdout);
			return 0;
		case CMD_OPT_VERBOSE:
			cmd_set_verbose(true);
			break;
		case CMD_OPT_JSON:
			json = true;
			break;
		case OPT_TOP:
			if (cmd_opt_int(&args, val, 1, 100000, &top))
				return 2;
			break;
		case OPT_MIN_SHARE:
			if (parse_share(val, &o.min_share))
				return cmd_usage("suspects", "--min-share takes a "
						 "percentage in (0, 100], not "
						 "'%s'", val);
			break;
		case OPT_NO_PLACEMENT:
			skip = true;
			break;
		case CMD_ARG_WORD:
			if (cmd_target_arg("suspects", val, &t))
				return 2;
			break;
		default:
			if (cmd_python_opt(&args, id, val, &popts) < 0 ||
			    cmd_capture_opt(&args, id, val, &o.capture) < 0)
				return 2;
		}
	}
	if (!t.arg)
		return cmd_usage("suspects", "missing PID");
	o.top = (size_t)top;
	if ((err = cmd_open_target(&t, &tgt)) ||
	    (err = pyx_python_open_opts(tgt, &popts, &py))) {
		ret = cmd_fail(err);
		goto out;
	}
	cmd_python_warn(py);
	/* The RSS placed with memory's accounting: one more, short stop,
	 * taken while the dominators are computed (the heap copy is gone by
	 * then: the placement reads the target as it does after a census). */
	mw.py = py;
	mw.capture = &o.capture;
	mw.debug_dir = popts.debug_dir;
	mw.skip = skip;
	o.meanwhile = place_meanwhile;
	o.meanwhile_arg = &mw;
	if ((err = pyx_python_check_full(py, "suspects")) ||
	    (err = pyx_suspects_take(py, &o, &r))) {
		ret = cmd_fail(err);
		goto out;
	}
	if (json)
		print_json(r, py, mw.allocs, mw.m, mw.why);
	else
		print_text(r, pyx_python_info(py)->binary, py, mw.allocs, mw.m,
			   mw.why, skip);
out:
	pyx_memory_free(mw.m);
	pyx_allocs_free(mw.allocs);
	pyx_suspects_free(r);
	pyx_python_free(py);
	pyx_target_free(tgt);
	return ret;
}
