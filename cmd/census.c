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
		"target is stopped only while its heap is copied (a few large reads);\n"
		"the counting runs on the copy.  Totals: objects, bytes, the process's\n"
		"RSS, pymalloc arenas, and the RSS Python objects do not explain.\n"
		"\n"
		"Options:\n"
		"  --top N            the N biggest types (default %d; 0: all)\n"
		"  --sort bytes|count order of the table (default bytes)\n"
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
		"JSON: {\"pid\",\"python_version\",\"pause_ms\",\"gc_objects\",\"objects\",\n"
		"\"bytes\",\"rss_bytes\",\"types\":[{\"type\",\"count\",\"bytes\",\"tracked\",\n"
		"\"tracked_bytes\",\"reached\",\"reached_bytes\"}], ...}; with --interval,\n"
		"\"growth\":[{\"type\",\"count\",\"delta\",\"bytes\",\"delta_bytes\"}] too.\n",
		DEFAULT_TOP);
}

const char *cmd_human_bytes(double b, char *buf, size_t n)
{
	static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB" };
	double a = fabs(b);
	size_t u = 0;

	while (a >= 1024 && u + 1 < sizeof(units) / sizeof(units[0])) {
		a /= 1024;
		b /= 1024;
		u++;
	}
	if (u == 0)
		snprintf(buf, n, "%.0f B", b);
	else
		snprintf(buf, n, "%.1f %s", b, units[u]);
	return buf;
}

static void print_totals(const struct pyx_census *c)
{
	char a[32], b[32], d[32];

	printf("\nObjects: %" PRIu64 " (%" PRIu64 " tracked by the GC, %" PRIu64
	       " reached from them), %s\n", c->objects, c->gc_objects,
	       c->reached_objects, cmd_human_bytes((double)c->bytes, a, sizeof(a)));
	if (c->rss_bytes >= 0) {
		printf("RSS: %s", cmd_human_bytes((double)c->rss_bytes, a, sizeof(a)));
		if (c->arena_bytes >= 0)
			printf("; pymalloc arenas: %s",
			       cmd_human_bytes((double)c->arena_bytes, b, sizeof(b)));
		printf("; not explained by Python objects: %s\n",
		       cmd_human_bytes((double)c->rss_bytes - (double)c->bytes, d,
				       sizeof(d)));
	}
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

static void print_header(const struct pyx_census *c, const char *binary)
{
	char a[32];

	printf("Process %d: Python ", c->pid);
	print_safe(stdout, c->python_version);
	printf(" (");
	print_safe(stdout, binary);
	printf(")\n");
	printf("Paused the target for %.1f ms (copied %s of heap in %" PRIu64
	       " reads%s); counted in %.1f ms\n", c->pause_ms,
	       cmd_human_bytes((double)c->copied_bytes, a, sizeof(a)),
	       c->copy_reads, c->attempts > 1 ? ", after waiting for the GC" : "",
	       c->walk_ms);
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

static void json_census_fields(const struct pyx_census *c, size_t top)
{
	size_t n = top && top < c->ntypes ? top : c->ntypes;

	printf("\"pid\":%d,\"python_version\":", c->pid);
	json_str(stdout, c->python_version);
	printf(",\"python_binary\":");
	json_str(stdout, c->python_binary);
	printf(",\"time\":%.6f,\"pause_ms\":%.3f,\"walk_ms\":%.3f,"
	       "\"gc_objects\":%" PRIu64 ",\"gc_bytes\":%" PRIu64
	       ",\"reached_objects\":%" PRIu64 ",\"reached_bytes\":%" PRIu64
	       ",\"objects\":%" PRIu64 ",\"bytes\":%" PRIu64,
	       c->time, c->pause_ms, c->walk_ms, c->gc_objects, c->gc_bytes,
	       c->reached_objects, c->reached_bytes, c->objects, c->bytes);
	printf(",\"rss_bytes\":");
	if (c->rss_bytes >= 0)
		printf("%" PRId64 ",\"unexplained_bytes\":%" PRId64, c->rss_bytes,
		       c->rss_bytes - (int64_t)c->bytes);
	else
		printf("null,\"unexplained_bytes\":null");
	printf(",\"arena_bytes\":");
	if (c->arena_bytes >= 0)
		printf("%" PRId64, c->arena_bytes);
	else
		printf("null");
	printf(",\"copied_bytes\":%" PRIu64 ",\"copy_reads\":%" PRIu64
	       ",\"truncated\":%s,\"partial\":%s,\"damaged_lists\":%" PRIu64
	       ",\"interpreters\":%" PRIu64
	       ",\"permanent_generation\":%" PRIu64 ",\"bad_objects\":%" PRIu64
	       ",\"bad_refs\":%" PRIu64 ",\"attempts\":%d,\"ntypes\":%zu,\"types\":[",
	       c->copied_bytes, c->copy_reads, c->truncated ? "true" : "false",
	       c->partial ? "true" : "false", c->damaged_lists,
	       c->interpreters, c->permanent, c->bad_objects, c->bad_refs,
	       c->attempts, c->ntypes);
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
	double interval = -1;
	const char *val;
	bool json = false, top_set = false;
	int top = DEFAULT_TOP, id, err, ret = 0;
	struct cmd_target t = { 0 };

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
			else
				return cmd_usage("census", "--sort takes bytes or "
						 "count, not '%s'", val);
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

	if ((err = cmd_open_target(&t, &tgt)) ||
	    (err = pyx_python_open_opts(tgt, &popts, &py))) {
		ret = cmd_fail(err);
		goto out;
	}
	cmd_python_warn(py);
	/* A CPython newer than pyxray knows: its _Py_DebugOffsets carry no
	 * GC lists or type slots; refuse before stopping it. */
	if ((err = pyx_python_check_full(py, "census")) ||
	    (err = pyx_census_take(py, &copts, &c))) {
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
	pyx_census_sort(c, by);
	if (json) {
		printf("{");
		/* JSON lists every type unless --top says otherwise. */
		json_census_fields(c, top_set && !d ? (size_t)top : 0);
		if (d) {
			printf(",\"interval_s\":%g,", interval);
			cmd_print_growth_json(d, top_set ? (size_t)top : 0);
		}
		printf("}\n");
	} else {
		print_header(c, pyx_python_info(py)->binary);
		if (d) {
			printf("Growth over %g s:\n", interval);
			cmd_print_growth(d, (size_t)top, by);
		} else {
			print_table(c, (size_t)top, by);
		}
		print_totals(c);
		if (save) {
			printf("Saved to ");
			print_safe(stdout, save);
			printf("\n");
		}
	}
out:
	pyx_census_delta_free(d);
	pyx_census_free(c2);
	pyx_census_free(c);
	pyx_census_free(first);
	pyx_python_free(py);
	pyx_target_free(tgt);
	return ret;
}
