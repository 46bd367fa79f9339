/* pyxray census: objects by type, counts and sizes; growth over time. */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cmd.h"
#include "pyxray/census.h"
#include "pyxray/error.h"
#include "pyxray/memory_report.h"
#include "pyxray/suspects.h"
#include "pyxray/target.h"
#include "pyxray/python.h"

#define DEFAULT_TOP 25

void help_census(FILE *out)
{
	fprintf(out,
		"Usage: pyxray census PID|CORE [OPTIONS]\n"
		"\n"
		"Count the objects of PID by type, with their sizes as sys.getsizeof\n"
		"says: every object the garbage collector tracks, and every untracked\n"
		"object (str, int, float, bytes, ...) they refer to, each once.  The\n"
		"target is stopped while its heap is copied (a few large reads);\n"
		"the counting runs on the copy.  Totals: objects, bytes, and the RSS\n"
		"placed as 'pyxray memory' places it (pymalloc arenas and their free\n"
		"space, glibc malloc in use, free and mmapped, thread stacks, mapped\n"
		"files, what is unexplained): a second, short stop, for the allocators\n"
		"only.  On a core, or where it cannot be placed, the RSS minus the\n"
		"object bytes, with the reason.\n"
		"\n"
		"Options:\n"
		"  --top N            the N biggest types (default %d; 0: all)\n"
		"  --sort bytes|count|retained\n"
		"                     order of the table (default bytes; retained\n"
		"                     only with --retained)\n"
		"  --retained         a retained-size column: what all the instances of\n"
		"                     a type keep alive.  The table then comes from the\n"
		"                     object graph (the dominators 'pyxray suspects'\n"
		"                     computes; a slower walk, more memory): every\n"
		"                     type, with its own size and count\n"
		"  --no-placement     do not place the RSS: one stop only (the RSS\n"
		"                     minus the object bytes instead)\n"
		"  --interval S       take two censuses S seconds apart and show what\n"
		"                     grew (like objgraph.show_growth)\n"
		"  --save FILE.pxh    save the census to FILE.pxh, for 'pyxray diff'\n"
		"  --json             one JSON object instead of text\n"
		"  --tracked-only     skip the untracked objects (faster)\n"
		PYX_CMD_CAPTURE_OPTS_HELP
		PYX_CMD_PYTHON_OPTS_HELP
		PYX_CMD_CORE_OPTS_HELP
		"  -v, --verbose      diagnostics on stderr\n"
		"  -h, --help         this help\n"
		"\n"
		"JSON: {\"pid\",\"python_version\",\"pause_ms\" (every stop),\n"
		"\"copy_pause_ms\",\"placement_pause_ms\",\"walk_ms\",\"buffer_ms\",\n"
		"\"gc_objects\",\"objects\",\n"
		"\"bytes\",\"rss_bytes\",\"unexplained_bytes\",\"memory\":{\"available\",\"why\",\n"
		"\"rss_bytes\",\"python\",\"pymalloc\",\"malloc\",\"mappings\",\n"
		"\"unexplained_bytes\",...} (the keys of 'pyxray memory --json'),\n"
		"\"types\":[{\"type\",\"count\",\"bytes\",\"tracked\",\"tracked_bytes\",\n"
		"\"reached\",\"reached_bytes\"}], ...}; with --interval, \"growth\":[{\"type\",\n"
		"\"count\",\"delta\",\"bytes\",\"delta_bytes\"}] too; with --retained,\n"
		"\"types\":[{\"type\",\"count\",\"bytes\",\"retained\"}].\n",
		DEFAULT_TOP);
}

/* RSS minus the object bytes: the line before memory's accounting, kept
 * where the RSS cannot be placed (why says why; "" with --no-placement). */
static void print_rss_fallback(int64_t rss, int64_t arenas, uint64_t bytes,
			       const char *why, bool skipped)
{
	char a[32], b[32], d[32];

	if (rss < 0) {
		if (!skipped) {
			printf("RSS: unknown (");
			print_safe(stdout, why);
			printf(")\n");
		}
		return;
	}
	printf("RSS: %s", cmd_human_bytes((double)rss, a, sizeof(a)));
	if (arenas >= 0)
		printf("; pymalloc arenas: %s",
		       cmd_human_bytes((double)arenas, b, sizeof(b)));
	printf("; not explained by Python objects: %s",
	       cmd_human_bytes((double)rss - (double)bytes, d, sizeof(d)));
	if (!skipped) {
		printf(" (");
		print_safe(stdout, why);
		printf(")");
	}
	printf("\n");
}

static void print_totals(const struct pyx_census *c,
			 const struct pyx_memory_report *r, const char *why,
			 bool skipped)
{
	char a[32];

	printf("\nObjects: %" PRIu64 " (%" PRIu64 " tracked by the GC, %" PRIu64
	       " reached from them), %s\n", c->objects, c->gc_objects,
	       c->reached_objects, cmd_human_bytes((double)c->bytes, a, sizeof(a)));
	if (r)
		cmd_rss_lines(r);
	else
		print_rss_fallback(c->rss_bytes, c->arena_bytes, c->bytes, why,
				   skipped);
	if (c->truncated)
		printf("Warning: the heap copy hit its bound (%s of writable "
		       "memory left out): counts are partial; see --max-copy\n",
		       cmd_human_bytes((double)c->skipped_bytes, a, sizeof(a)));
	if (c->bad_objects || c->bad_refs)
		printf("Skipped %" PRIu64 " objects and %" PRIu64 " references "
		       "that did not read as Python objects\n", c->bad_objects,
		       c->bad_refs);
	if (c->damaged_lists || c->bad_objects)
		printf("Partial result: the heap is damaged (%" PRIu64 " GC lists "
		       "cut short at a bad link, the objects after it not "
		       "counted; %" PRIu64 " damaged objects)\n",
		       c->damaged_lists, c->bad_objects);
}

/* "Paused the target for T ms": every stop, the heap copies' (two with
 * --interval) and the placement's. */
static void print_pause(double copy_ms, int copies,
			const struct pyx_memory_report *r)
{
	int stops = copies + (r ? 1 : 0);

	if (stops > 1)
		printf("Paused the target for %.1f ms in %s stops: %.1f ms to "
		       "copy the heap%s (", copy_ms + cmd_rss_pause_ms(r),
		       stops == 2 ? "two" : "three", copy_ms,
		       copies == 2 ? " twice" : "");
	else
		printf("Paused the target for %.1f ms (", copy_ms);
}

static void print_header(const struct pyx_census *c, const char *binary,
			 double copy_ms, int copies,
			 const struct pyx_memory_report *r)
{
	char a[32];

	cmd_print_process(c->pid, c->python_version, binary);
	print_pause(copy_ms, copies, r);
	printf("copied %s of heap in %" PRIu64 " reads%s)",
	       cmd_human_bytes((double)c->copied_bytes, a, sizeof(a)),
	       c->copy_reads, c->attempts > 1 ? ", after waiting for the GC" : "");
	if (r)
		printf(", %.1f ms to place the RSS", cmd_rss_pause_ms(r));
	printf("; counted in %.1f ms", c->walk_ms);
	if (c->jobs > 1)
		printf(" on %u threads", c->jobs);
	printf("\n");
}

static void print_table(const struct pyx_census *c, size_t top,
			enum pyx_census_sort by)
{
	size_t n = top && top < c->ntypes ? top : c->ntypes;
	char a[32];

	printf("\n%12s %12s  %s\n", "objects", "total size", "type");
	for (size_t i = 0; i < n; i++) {
		const struct pyx_census_type *t = &c->types[i];

		printf("%12" PRIu64 " %12s  ", t->count,
		       cmd_human_bytes((double)t->bytes, a, sizeof(a)));
		print_safe(stdout, t->name);
		printf("\n");
	}
	if (n < c->ntypes)
		printf("(the top %zu of %zu types by %s; --top 0 for all)\n", n,
		       c->ntypes, by == PYX_CENSUS_BY_COUNT ? "count" : "size");
}

static void json_census_fields(const struct pyx_census *c, size_t top,
			       double copy_ms,
			       const struct pyx_memory_report *r,
			       const char *why)
{
	size_t n = top && top < c->ntypes ? top : c->ntypes;

	printf("\"pid\":%d,\"python_version\":", c->pid);
	json_str(stdout, c->python_version);
	printf(",\"python_binary\":");
	json_str(stdout, c->python_binary);
	printf(",\"time\":%.6f,\"walk_ms\":%.3f,\"buffer_ms\":%.3f,"
	       "\"gc_objects\":%" PRIu64 ",\"gc_bytes\":%" PRIu64
	       ",\"reached_objects\":%" PRIu64 ",\"reached_bytes\":%" PRIu64
	       ",\"objects\":%" PRIu64 ",\"bytes\":%" PRIu64,
	       c->time, c->walk_ms, c->buffer_ms, c->gc_objects, c->gc_bytes,
	       c->reached_objects, c->reached_bytes, c->objects, c->bytes);
	cmd_rss_json_totals(copy_ms, 0, c->rss_bytes, c->bytes, r);
	cmd_rss_json(r, why);
	printf(",\"arena_bytes\":");
	cmd_json_i64_or_null(c->arena_bytes);
	printf(",\"copied_bytes\":%" PRIu64 ",\"copy_reads\":%" PRIu64
	       ",\"truncated\":%s,\"partial\":%s,\"damaged_lists\":%" PRIu64
	       ",\"interpreters\":%" PRIu64
	       ",\"permanent_generation\":%" PRIu64 ",\"bad_objects\":%" PRIu64
	       ",\"bad_refs\":%" PRIu64 ",\"attempts\":%d,\"jobs\":%u"
	       ",\"ntypes\":%zu,\"types\":[",
	       c->copied_bytes, c->copy_reads, c->truncated ? "true" : "false",
	       c->partial ? "true" : "false", c->damaged_lists,
	       c->interpreters, c->permanent, c->bad_objects, c->bad_refs,
	       c->attempts, c->jobs, c->ntypes);
	for (size_t i = 0; i < n; i++) {
		const struct pyx_census_type *t = &c->types[i];

		printf("%s{\"type\":", i ? "," : "");
		json_str(stdout, t->name);
		printf(",\"count\":%" PRIu64 ",\"bytes\":%" PRIu64
		       ",\"tracked\":%" PRIu64 ",\"tracked_bytes\":%" PRIu64
		       ",\"reached\":%" PRIu64 ",\"reached_bytes\":%" PRIu64 "}",
		       t->count, t->bytes, t->tracked, t->tracked_bytes,
		       t->reached, t->reached_bytes);
	}
	printf("]");
}

void cmd_print_growth_json(const struct pyx_census_delta *d, size_t top)
{
	size_t n = top && top < d->ntypes ? top : d->ntypes;

	printf("\"dobjects\":%" PRId64 ",\"dbytes\":%" PRId64
	       ",\"dgc_objects\":%" PRId64 ",\"drss_bytes\":%" PRId64
	       ",\"growth\":[", d->dobjects, d->dbytes, d->dgc_objects,
	       d->drss_bytes);
	for (size_t i = 0; i < n; i++) {
		const struct pyx_census_change *t = &d->types[i];

		printf("%s{\"type\":", i ? "," : "");
		json_str(stdout, t->name);
		printf(",\"count\":%" PRIu64 ",\"delta\":%" PRId64
		       ",\"bytes\":%" PRIu64 ",\"delta_bytes\":%" PRId64 "}",
		       t->count, t->dcount, t->bytes, t->dbytes);
	}
	printf("]");
}

void cmd_print_growth(const struct pyx_census_delta *d, size_t top,
		      enum pyx_census_sort by)
{
	size_t n = top && top < d->ntypes ? top : d->ntypes;
	char a[32], b[32];

	if (d->ntypes == 0) {
		printf("\nNo type changed.\n");
		return;
	}
	printf("\n%12s %10s %12s %12s  %s\n", "objects", "delta", "total size",
	       "delta size", "type");
	for (size_t i = 0; i < n; i++) {
		const struct pyx_census_change *t = &d->types[i];

		printf("%12" PRIu64 " %+10" PRId64 " %12s %12s  ", t->count,
		       t->dcount, cmd_human_bytes((double)t->bytes, a, sizeof(a)),
		       cmd_human_bytes((double)t->dbytes, b, sizeof(b)));
		print_safe(stdout, t->name);
		printf("\n");
	}
	if (n < d->ntypes)
		printf("(the top %zu of %zu changed types by growth in %s; --top 0 "
		       "for all)\n", n, d->ntypes,
		       by == PYX_CENSUS_BY_BYTES ? "size" : "count");
	printf("\nTotal: %+" PRId64 " objects (%+" PRId64 " tracked), %s",
	       d->dobjects, d->dgc_objects,
	       cmd_human_bytes((double)d->dbytes, a, sizeof(a)));
	if (d->drss_bytes)
		printf("; RSS %s", cmd_human_bytes((double)d->drss_bytes, b,
						   sizeof(b)));
	printf("\n");
}

/* A census of the figures suspects has (pyx_memory_opts.census takes a
 * census: the object bytes and the pause are what it reads). */
void cmd_census_of_suspects(const struct pyx_suspects *r, struct pyx_census *c)
{
	memset(c, 0, sizeof(*c));
	c->pid = r->pid;
	snprintf(c->python_version, sizeof(c->python_version), "%s",
		 r->python_version);
	c->pause_ms = r->pause_ms;
	c->walk_ms = r->walk_ms;
	c->objects = r->objects;
	c->bytes = r->heap_bytes;
	c->rss_bytes = r->rss_bytes;
	c->arena_bytes = -1;
	c->truncated = r->truncated;
	c->partial = r->partial;
	c->damaged_lists = r->damaged_lists;
	c->bad_objects = r->bad_objects;
}

/* The order of census --retained's table (qsort has no context). */
static enum { SORT_RETAINED, SORT_BYTES, SORT_COUNT } retained_by;

static int cmp_retained(const void *a, const void *b)
{
	const struct pyx_suspects_type *x = a, *y = b;
	uint64_t u = x->retained, v = y->retained;

	if (retained_by == SORT_BYTES) {
		u = x->bytes;
		v = y->bytes;
	} else if (retained_by == SORT_COUNT) {
		u = x->count;
		v = y->count;
	}
	if (u != v)
		return u < v ? 1 : -1;
	return strcmp(x->name, y->name);
}

/* census --retained: the per-type table of the object graph (suspects'),
 * the types that retain the most, with census's columns. */
static void print_retained(const struct pyx_suspects *r, const char *binary,
			   size_t top, const struct pyx_memory_report *m,
			   const char *why, bool skipped)
{
	size_t n = top && top < r->ntypes ? top : r->ntypes;
	char a[32], b[32];

	cmd_print_process(r->pid, r->python_version, binary);
	print_pause(r->pause_ms, 1, m);
	printf("copied %s of heap in %" PRIu64 " reads)",
	       cmd_human_bytes((double)r->copied_bytes, a, sizeof(a)),
	       r->copy_reads);
	if (m)
		printf(", %.1f ms to place the RSS", cmd_rss_pause_ms(m));
	printf("; object graph of %" PRIu64 " objects and %" PRIu64
	       " references, retained sizes in %.1f ms\n", r->objects, r->edges,
	       r->walk_ms);
	printf("\n%12s %12s %12s  %s\n", "objects", "total size", "retained",
	       "type");
	for (size_t i = 0; i < n; i++) {
		const struct pyx_suspects_type *t = &r->types[i];

		printf("%12" PRIu64 " %12s %12s  ", t->count,
		       cmd_human_bytes((double)t->bytes, a, sizeof(a)),
		       cmd_human_bytes((double)t->retained, b, sizeof(b)));
		print_safe(stdout, t->name);
		printf("\n");
	}
	printf("(%zu of %zu types, by %s; retained: what all the type's "
	       "instances keep alive, from the object graph)\n", n, r->ntypes, retained_by == SORT_COUNT ? "count" :
	       retained_by == SORT_BYTES ? "size" : "retained size");
	printf("\nObjects: %" PRIu64 ", %s (sys.getsizeof)\n", r->objects,
	       cmd_human_bytes((double)r->heap_bytes, a, sizeof(a)));
	if (m)
		cmd_rss_lines(m);
	else
		print_rss_fallback(r->rss_bytes, -1, r->heap_bytes, why, skipped);
	if (r->truncated)
		printf("Warning: the heap copy hit its bound: sizes may be "
		       "missing; see --max-copy\n");
	if (r->damaged_lists || r->bad_objects)
		printf("Partial result: the heap is damaged (%" PRIu64 " GC lists "
		       "cut short at a bad link, %" PRIu64 " damaged objects)\n",
		       r->damaged_lists, r->bad_objects);
}

static void json_retained(const struct pyx_suspects *r, size_t top,
			  const struct pyx_memory_report *m, const char *why)
{
	size_t n = top && top < r->ntypes ? top : r->ntypes;

	printf("{\"pid\":%d,\"python_version\":", r->pid);
	json_str(stdout, r->python_version);
	printf(",\"retained_from\":\"object graph\",\"walk_ms\":%.3f,"
	       "\"objects\":%" PRIu64 ",\"bytes\":%" PRIu64 ",\"edges\":%" PRIu64,
	       r->walk_ms, r->objects, r->heap_bytes, r->edges);
	cmd_rss_json_totals(r->pause_ms, 0, r->rss_bytes, r->heap_bytes, m);
	cmd_rss_json(m, why);
	printf(",\"copied_bytes\":%" PRIu64 ",\"copy_reads\":%" PRIu64
	       ",\"truncated\":%s,\"partial\":%s,\"damaged_lists\":%" PRIu64
	       ",\"bad_objects\":%" PRIu64 ",\"ntypes\":%zu,\"types\":[",
	       r->copied_bytes, r->copy_reads, r->truncated ? "true" : "false",
	       r->partial ? "true" : "false", r->damaged_lists, r->bad_objects,
	       r->ntypes);
	for (size_t i = 0; i < n; i++) {
		printf("%s{\"type\":", i ? "," : "");
		json_str(stdout, r->types[i].name);
		printf(",\"count\":%" PRIu64 ",\"bytes\":%" PRIu64
		       ",\"retained\":%" PRIu64 "}", r->types[i].count,
		       r->types[i].bytes, r->types[i].retained);
	}
	printf("]}\n");
}

static int census_retained(struct pyx_python *py,
			   const struct pyx_census_opts *copts,
			   const char *debug_dir, bool skip, bool json,
			   size_t top, bool by_retained, enum pyx_census_sort by)
{
	/* every type: the table is sorted and cut here (--sort, --top) */
	struct pyx_suspects_opts so = { .capture = copts->capture,
					.types = SIZE_MAX };
	struct pyx_memory_report *m = NULL;
	struct pyx_suspects *r = NULL;
	struct pyx_census c;
	char why[256];
	int err;

	if ((err = pyx_suspects_take(py, &so, &r)))
		goto out;
	cmd_census_of_suspects(r, &c);
	if ((err = cmd_rss_place(py, &c, &copts->capture, debug_dir, skip, &m,
				 why, sizeof(why))))
		goto out;
	retained_by = by_retained ? SORT_RETAINED :
		      by == PYX_CENSUS_BY_COUNT ? SORT_COUNT : SORT_BYTES;
	if (r->ntypes)
		qsort(r->types, r->ntypes, sizeof(*r->types), cmp_retained);
	if (json)
		json_retained(r, top, m, why);
	else
		print_retained(r, pyx_python_info(py)->binary, top, m, why,
			       skip);
out:
	pyx_memory_free(m);
	pyx_suspects_free(r);
	return err;
}

static int parse_seconds(const char *arg, double *out)
{
	char *end;

	errno = 0;
	*out = strtod(arg, &end);
	if (errno || end == arg || *end || !(*out >= 0) || *out > 86400 * 7)
		return -cmd_usage("census", "--interval takes seconds (0 to "
				  "604800), not '%s'", arg);
	return 0;
}

enum {
	OPT_TOP = CMD_OPT_OWN,
	OPT_SORT,
	OPT_INTERVAL,
	OPT_SAVE,
	OPT_TRACKED_ONLY,
	OPT_RETAINED,
	OPT_NO_PLACEMENT,
};

static const struct cmd_opt census_opts[] = {
	CMD_OPTS_HELP,
	CMD_OPTS_VERBOSE,
	CMD_OPTS_JSON,
	{ "--top", NULL, OPT_TOP, true },
	{ "--sort", NULL, OPT_SORT, true },
	{ "--interval", NULL, OPT_INTERVAL, true },
	{ "--save", NULL, OPT_SAVE, true },
	{ "--tracked-only", NULL, OPT_TRACKED_ONLY, false },
	{ "--retained", NULL, OPT_RETAINED, false },
	{ "--no-placement", NULL, OPT_NO_PLACEMENT, false },
	CMD_OPTS_CAPTURE
	CMD_OPTS_PYTHON,
	CMD_OPTS_END
};

int do_census(int argc, char **argv)
{
	struct cmd_args args = CMD_ARGS("census", argc, argv);
	struct pyx_python_opts popts = { 0 };
	struct pyx_census_opts copts = { 0 };
	struct pyx_target *tgt = NULL;
	struct pyx_python *py = NULL;
	struct pyx_census *c = NULL, *c2 = NULL, *first = NULL;
	struct pyx_census_delta *d = NULL;
	enum pyx_census_sort by = PYX_CENSUS_BY_BYTES;
	const char *save = NULL;
	double interval = -1, copy_ms;
	const char *val;
	struct pyx_memory_report *m = NULL;
	bool json = false, top_set = false, retained = false, skip = false;
	bool by_retained = false;
	int top = DEFAULT_TOP, id, err, ret = 0;
	struct cmd_target t = { 0 };
	char why[256] = "";

	while ((id = cmd_next(&args, census_opts, &val)) != CMD_ARG_END) {
		switch (id) {
		case CMD_ARG_ERROR:
			return 2;
		case CMD_OPT_HELP:
			help_census(stdout);
			return 0;
		case CMD_OPT_VERBOSE:
			cmd_set_verbose(true);
			break;
		case CMD_OPT_JSON:
			json = true;
			break;
		case OPT_TRACKED_ONLY:
			copts.tracked_only = true;
			break;
		case OPT_RETAINED:
			retained = true;
			break;
		case OPT_NO_PLACEMENT:
			skip = true;
			break;
		case OPT_TOP:
			if (cmd_opt_int(&args, val, 0, INT_MAX, &top))
				return 2;
			top_set = true;
			break;
		case OPT_SORT:
			if (strcmp(val, "bytes") == 0 || strcmp(val, "size") == 0)
				by = PYX_CENSUS_BY_BYTES;
			else if (strcmp(val, "count") == 0)
				by = PYX_CENSUS_BY_COUNT;
			else if (strcmp(val, "retained") == 0)
				by_retained = true;
			else
				return cmd_usage("census", "--sort takes bytes, "
						 "count or retained, not '%s'",
						 val);
			break;
		case OPT_INTERVAL:
			if (parse_seconds(val, &interval))
				return 2;
			break;
		case OPT_SAVE:
			if (!val[0])
				return cmd_usage("census", "--save needs a file name");
			save = val;
			break;
		case CMD_ARG_WORD:
			if (cmd_target_arg("census", val, &t))
				return 2;
			break;
		default:
			if (cmd_python_opt(&args, id, val, &popts) < 0 ||
			    cmd_capture_opt(&args, id, val, &copts.capture) < 0)
				return 2;
		}
	}
	if (!t.arg)
		return cmd_usage("census", "missing PID");
	if (by_retained && !retained)
		return cmd_usage("census", "--sort retained needs --retained");
	if (retained && (interval >= 0 || save || copts.tracked_only))
		return cmd_usage("census", "--retained takes its table from the "
				 "object graph: not with --interval, --save or "
				 "--tracked-only");

	if ((err = cmd_open_target(&t, &tgt)) ||
	    (err = pyx_python_open_opts(tgt, &popts, &py))) {
		ret = cmd_fail(err);
		goto out;
	}
	cmd_python_warn(py);
	/* A CPython newer than pyxray knows: its _Py_DebugOffsets carry no
	 * GC lists or type slots; refuse before stopping it. */
	if ((err = pyx_python_check_full(py, "census"))) {
		ret = cmd_fail(err);
		goto out;
	}
	if (retained) {
		if ((err = census_retained(py, &copts, popts.debug_dir, skip,
					   json, json && !top_set ? 0 : (size_t)top,
					   by_retained, by)))
			ret = cmd_fail(err);
		goto out;
	}
	if ((err = pyx_census_take(py, &copts, &c))) {
		ret = cmd_fail(err);
		goto out;
	}
	if (interval >= 0) {
		struct timespec ts = { (time_t)interval,
				       (long)((interval - (double)(time_t)interval) * 1e9) };

		/* Progress on stderr: the table comes after the second one. */
		fprintf(stderr, "pyxray: census 1 of 2 taken (%" PRIu64
			" objects); the next in %g s\n", c->objects, interval);
		fflush(stderr);
		while (nanosleep(&ts, &ts) && errno == EINTR)
			;
		pyx_census_sort(c, PYX_CENSUS_BY_NAME);
		if ((err = pyx_census_take(py, &copts, &c2)) ||
		    (pyx_census_sort(c2, PYX_CENSUS_BY_NAME),
		     err = pyx_census_delta(c, c2, by, &d))) {
			ret = cmd_fail(err);
			goto out;
		}
		/* Report the second census; d borrows names from both. */
		first = c;
		c = c2;
		c2 = NULL;
	}
	if (save && (err = pyx_census_save(c, save))) {
		ret = cmd_fail(err);
		goto out;
	}
	/* The RSS placed with memory's accounting: one more, short stop. */
	if ((err = cmd_rss_place(py, c, &copts.capture, popts.debug_dir, skip,
				 &m, why, sizeof(why)))) {
		ret = cmd_fail(err);
		goto out;
	}
	pyx_census_sort(c, by);
	/* Every stop in the pause: with --interval the first census's too. */
	copy_ms = c->pause_ms + (first ? first->pause_ms : 0);
	if (json) {
		printf("{");
		/* JSON lists every type unless --top says otherwise. */
		json_census_fields(c, top_set && !d ? (size_t)top : 0, copy_ms, m,
				   why);
		if (d) {
			printf(",\"interval_s\":%g,", interval);
			cmd_print_growth_json(d, top_set ? (size_t)top : 0);
		}
		printf("}\n");
	} else {
		print_header(c, pyx_python_info(py)->binary, copy_ms,
			     first ? 2 : 1, m);
		if (d) {
			printf("Growth over %g s:\n", interval);
			cmd_print_growth(d, (size_t)top, by);
		} else {
			print_table(c, (size_t)top, by);
		}
		print_totals(c, m, why, skip);
		if (save) {
			printf("Saved to ");
			print_safe(stdout, save);
			printf("\n");
		}
	}
out:
	pyx_memory_free(m);
	pyx_census_delta_free(d);
	pyx_census_free(c2);
	pyx_census_free(c);
	pyx_census_free(first);
	pyx_python_free(py);
	pyx_target_free(tgt);
	return ret;
}
