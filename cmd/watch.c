/* pyxray watch: light censuses repeated over time; the shape of the memory
 * curve, the types that grow and whether they leak, who holds the growth;
 * exported to a Prometheus textfile, statsd and an SVG plot. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <netdb.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cmd.h"
#include "pyxray/census.h"
#include "pyxray/error.h"
#include "pyxray/memory_report.h"
#include "pyxray/python.h"
#include "pyxray/refs.h"
#include "pyxray/target.h"
#include "pyxray/watch.h"

#define DEFAULT_INTERVAL 1.0
#define DEFAULT_TOP 10
#define DEFAULT_BUDGET 1.0     /* percent of the wall time */
#define DEFAULT_HOLDERS 3
#define DEFAULT_EXAMPLES 3
#define DEFAULT_MIN_GROWTH 10
#define MAX_SKIPPED 3          /* samples in a row that failed: give up */
#define STATSD_DATAGRAM 1400   /* bytes: under a common path MTU */

void help_watch(FILE *out)
{
	fprintf(out,
		"Usage: pyxray watch PID [--interval S] [--count N | --duration D]\n"
		"                    [OPTIONS]\n"
		"\n"
		"Take a light census of PID every S seconds (GC-tracked objects by\n"
		"type, RSS, pymalloc arenas; the target is stopped only while its\n"
		"heap is copied) and follow the curve: its shape (flat, sawtooth,\n"
		"early-growth, surge, leak), each type's growth rate and whether it\n"
		"leaks (grows steadily across the window, not only from the first\n"
		"sample to the last, and does not return to its baseline).  At the\n"
		"end, for each leaking type: who holds the objects born during the\n"
		"watch (retention paths, as 'pyxray refs' gives them).  Ctrl-C ends\n"
		"the watch with the summary.  In a terminal the view is redrawn in\n"
		"place; otherwise one line per sample.\n"
		"\n"
		"Each sample also places the RSS as 'pyxray memory' does (one more\n"
		"short stop, for the allocators, smaps and the page map): Python\n"
		"objects, pymalloc, glibc malloc, stacks, files, shared memory,\n"
		"unexplained; each category's curve is classified and the summary\n"
		"says where the memory grows (in C, in Python objects, ...).\n"
		"\n"
		"Options:\n"
		"  --interval S       seconds between samples (default %g)\n"
		"  --count N          stop after N samples\n"
		"  --duration D       stop after D seconds (default: until Ctrl-C)\n"
		"  --full             count the untracked objects too (str, int...:\n"
		"                     a full census each sample; slower)\n"
		"  --top N            types shown and exported (default %d)\n"
		"  --pause-budget P   keep the target's pauses under P%% of the wall\n"
		"                     time: the interval backs off when a census\n"
		"                     costs more (default %g; 0: never back off)\n"
		"  --min-growth N     the least growth over the window, in objects,\n"
		"                     that can be a leak (default %d)\n"
		"  --holders N        explain the N biggest leaks (default %d; 0: no\n"
		"                     baseline, no retention paths)\n"
		"  --examples K       newborn objects traced per leaking type\n"
		"                     (default %d; one 'refs' pass each)\n"
		"  --json             one JSON object per sample, then a summary line\n"
		"  --prometheus FILE  write FILE in the node_exporter textfile format\n"
		"                     after every sample (atomically: a temporary\n"
		"                     file renamed)\n"
		"  --statsd HOST:PORT send gauges over UDP after every sample\n"
		"  --statsd-prefix P  metric name prefix (default pyxray.PID)\n"
		"  --svg FILE         at the end, a plot of RSS, the Python heap and\n"
		"                     the top types, the shape marked (--plot too)\n"
		"  --no-live          one line per sample even in a terminal\n"
		"  --nonblocking      never stop the target: each sample copies the\n"
		"                     heap while it runs (torn reads tolerated, counts\n"
		"                     approximate; tracked objects only; no --holders;\n"
		"                     no memory categories)\n"
		"  --no-categories    do not place the RSS: one stop a sample (the\n"
		"                     census's), no memory by category\n"
		PYX_CMD_CAPTURE_OPTS_HELP
		PYX_CMD_PYTHON_OPTS_HELP
		"  -v, --verbose      diagnostics on stderr\n"
		"  -h, --help         this help\n"
		"\n"
		"JSON per sample: {\"sample\",\"t\",\"time\",\"rss_bytes\",\"arena_bytes\",\n"
		"\"objects\",\"bytes\",\"pause_ms\",\"census_pause_ms\",\"walk_ms\",\n"
		"\"interval_s\",\"memory\":{CATEGORY:bytes},\"changed\":[{\"type\",\"count\",\n"
		"\"delta\",\"bytes\",\"delta_bytes\"}]}; last line: {\"summary\":true,\n"
		"\"pattern\",\"rss_pattern\",\"memory\":{\"place\",\"verdict\",\n"
		"\"categories\"},\"growing\":[{\"type\",\"count_per_s\",\"bytes_per_s\",\n"
		"\"first\",\"last\",\"leak\"}],\"holders\":[...],\"ended\",...}.\n"
		"See docs/watch.md.\n",
		DEFAULT_INTERVAL, DEFAULT_TOP, DEFAULT_BUDGET, DEFAULT_MIN_GROWTH,
		DEFAULT_HOLDERS, DEFAULT_EXAMPLES);
}

/* ---- Ctrl-C: end the watch, not pyxray ------------------------------- */

/* A stop request: the loop ends after the sample in progress (a census
 * keeps the target stopped only for its copy, bounded by the deadline, and
 * always resumes it).  The first SIGINT/SIGTERM is ours; the handlers of
 * cmd/signals.c are put back at once, so a second one detaches and exits
 * as for every other command. */
static volatile sig_atomic_t stop_signal;
static struct sigaction old_int, old_term;

static void on_stop(int sig)
{
	stop_signal = sig;
	sigaction(SIGINT, &old_int, NULL);
	sigaction(SIGTERM, &old_term, NULL);
}

static void catch_stop(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_stop;
	sigfillset(&sa.sa_mask);
	/* No SA_RESTART: the sleep between samples ends at once. */
	sigaction(SIGINT, &sa, &old_int);
	sigaction(SIGTERM, &sa, &old_term);
}

static void release_stop(void)
{
	if (!stop_signal) {
		sigaction(SIGINT, &old_int, NULL);
		sigaction(SIGTERM, &old_term, NULL);
	}
}

/* ---- state ------------------------------------------------------------ */

struct watch_opts {
	double interval, duration, budget, min_growth;
	long count;
	size_t top, holders, examples;
	bool json, live, full, nonblocking, no_categories;
	const char *prom, *statsd, *statsd_prefix, *svg;
	const char *debug_dir;
};

struct statsd {
	int fd;
	char prefix[256];
	bool warned;
};

struct state {
	struct watch_opts o;
	struct pyx_python *py;
	struct pyx_target *tgt;
	struct pyx_census_opts copts;
	struct pyx_watch *w;
	struct pyx_census *prev;
	struct pyx_watch_baseline *base;
	struct pyx_watch_growth *g;  /* as of the last sample */
	size_t ng;
	struct pyx_watch_curve heap, rss;
	struct pyx_watch_where where;
	/* Memory by category: off (why), and the parts a sample could not
	 * read, each said once on stderr and kept for the summary. */
	const char *place_off;
	char place_error[300], why_objects[300], why_pymalloc[300];
	char why_malloc[300], why_mmapped[300], why_maps[300];
	/* libc's malloc state and pymalloc's statics, found once */
	struct pyx_memory_found mfound;
	struct statsd sd;
	int pid;
	double start_mono, cur_interval, pause_total_ms, pause_max_ms;
	double base_pause_ms;
	bool backed_off, prom_warned;
	bool out_closed;  /* stdout failed (a reader gone: head, a closed
			     pipe): the watch ends, no more stops */
	const char *ended;
};

static double mono_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static char *hb(double b, char *buf, size_t n)
{
	return (char *)cmd_human_bytes(b, buf, n);
}

/* A signed size: "+1.2 KiB", "-300 B". */
static char *shb(double b, char *buf, size_t n)
{
	if (n < 2)
		return buf;
	buf[0] = '+';
	cmd_human_bytes(b, buf + (b >= 0), n - 1);
	return buf;
}

/* The curves and the growth, from the samples so far. */
static int analyse(struct state *s)
{
	size_t n = s->w->nsamples;
	double *t = malloc((n + 1) * sizeof(*t)), *y = malloc((n + 1) * sizeof(*y));
	size_t m;
	int err;

	if (!t || !y) {
		free(t);
		free(y);
		return -PYX_E_NOMEM;
	}
	m = pyx_watch_series(s->w, PYX_WATCH_HEAP_BYTES, t, y);
	pyx_watch_classify(t, y, m, 0, &s->heap);
	m = pyx_watch_series(s->w, PYX_WATCH_RSS_BYTES, t, y);
	pyx_watch_classify(t, y, m, 0, &s->rss);
	free(t);
	free(y);
	free(s->g);
	s->g = NULL;
	s->ng = 0;
	if ((err = pyx_watch_growth(s->w, s->o.min_growth, &s->g, &s->ng)))
		return err;
	return pyx_watch_where(s->w, s->ng && s->g[0].leak, &s->where);
}

/* ---- output per sample ------------------------------------------------ */

static const struct pyx_watch_sample *last_sample(const struct state *s)
{
	return &s->w->samples[s->w->nsamples - 1];
}

static bool cat_known(const struct pyx_watch_sample *x, enum pyx_watch_cat c)
{
	return x->cat_known & (1u << c);
}

/* C's allocations: malloc in use (+ its mmapped blocks); -1 unknown. */
static double c_bytes(const struct pyx_watch_sample *x)
{
	if (!cat_known(x, PYX_WCAT_MALLOC_IN_USE))
		return -1;
	return (double)x->cat[PYX_WCAT_MALLOC_IN_USE] +
	       (cat_known(x, PYX_WCAT_MALLOC_MMAPPED) ?
		(double)x->cat[PYX_WCAT_MALLOC_MMAPPED] : 0);
}

/* A category's growth as words: "glibc malloc in use grows +1.0 MiB/s
 * (tau 0.97)". */
static size_t grows(char *buf, size_t n, const char *what,
		    const struct pyx_watch_curve *c)
{
	char a[32];
	/* "Python objects grow", "glibc malloc in use grows". */
	int k = snprintf(buf, n, "%s %s %s/s (tau %.2f)", what,
			 strcmp(what, "Python objects") ? "grows" : "grow",
			 shb(c->trend.slope, a, sizeof(a)), c->trend.tau);

	return k < 0 ? 0 : (size_t)k >= n ? n - 1 : (size_t)k;
}

/* The objects grow by a type's count when their bytes do not (a slope of
 * 0 B/s would say they are flat). */
static size_t python_grows(char *buf, size_t n,
			   const struct pyx_watch_curve *py)
{
	if (py->shape == PYX_SHAPE_LEAK)
		return grows(buf, n, "Python objects", py);
	return (size_t)snprintf(buf, n, "Python objects leak (types grow "
				"steadily)");
}

/* Where the memory grows, in words. */
static void verdict(const struct state *s, char *buf, size_t n)
{
	const struct pyx_watch_where *wh = &s->where;
	const struct pyx_watch_curve *py = &wh->cat[PYX_WCAT_PYTHON_OBJECTS];
	bool in_use = wh->known[PYX_WCAT_MALLOC_IN_USE] &&
		      wh->cat[PYX_WCAT_MALLOC_IN_USE].shape == PYX_SHAPE_LEAK;
	bool mm = wh->known[PYX_WCAT_MALLOC_MMAPPED] &&
		  wh->cat[PYX_WCAT_MALLOC_MMAPPED].shape == PYX_SHAPE_LEAK;
	const char *py_state;
	size_t k = 0;
	char a[32];

	buf[0] = '\0';
	if (!wh->known[PYX_WCAT_PYTHON_OBJECTS] || py->shape == PYX_SHAPE_UNKNOWN)
		py_state = "are not known";
	else
		py_state = "do not grow steadily";
	switch (wh->place) {
	case PYX_PLACE_C:
		if (in_use)
			k += grows(buf + k, n - k, "glibc malloc in use",
				   &wh->cat[PYX_WCAT_MALLOC_IN_USE]);
		if (mm)
			k += grows(buf + k, n - k, k ? " and its mmapped memory" :
				   "glibc malloc's mmapped memory",
				   &wh->cat[PYX_WCAT_MALLOC_MMAPPED]);
		if (!k)
			k += grows(buf, n, "glibc malloc (in use and mmapped)",
				   &wh->c);
		if (py->shape == PYX_SHAPE_FLAT)
			snprintf(buf + k, n - k, " while Python objects are flat: "
				 "a leak in C (an extension or a library), not in "
				 "Python objects");
		else
			snprintf(buf + k, n - k, " while Python objects %s (%s): "
				 "a leak in C (an extension or a library), not in "
				 "Python objects", py_state,
				 pyx_watch_shape_name(py->shape));
		break;
	case PYX_PLACE_PYTHON:
		k += python_grows(buf, n, py);
		if (k >= n)
			k = n - 1;
		if (wh->c_known && wh->c.shape == PYX_SHAPE_LEAK)
			k += (size_t)snprintf(buf + k, n - k, ", glibc malloc with "
					      "them (%s/s, no faster: their "
					      "buffers)", shb(wh->c.trend.slope,
							      a, sizeof(a)));
		if (k >= n)
			k = n - 1;
		snprintf(buf + k, n - k, ": a leak in Python objects");
		break;
	case PYX_PLACE_PYTHON_AND_C:
		k += python_grows(buf, n, py);
		if (k >= n)
			k = n - 1;
		k += grows(buf + k, n - k, " and glibc malloc (in use and mmapped)",
			   &wh->c);
		snprintf(buf + k, n - k, ", much faster: a leak in C as well, or "
			 "memory the objects hold that is not counted (untracked "
			 "str, bytes: --full counts them)");
		break;
	case PYX_PLACE_PYMALLOC:
		k += grows(buf, n, "pymalloc arenas",
			   &wh->cat[PYX_WCAT_PYMALLOC_ARENAS]);
		snprintf(buf + k, n - k, " while their blocks in use do not: "
			 "fragmentation (arenas kept by a few live blocks)");
		break;
	case PYX_PLACE_STACKS:
		k += grows(buf, n, "thread stacks", &wh->cat[PYX_WCAT_STACKS]);
		snprintf(buf + k, n - k, ": threads that are started and never "
			 "end");
		break;
	case PYX_PLACE_FILES:
		k += grows(buf, n, "mapped files", &wh->cat[PYX_WCAT_FILES]);
		snprintf(buf + k, n - k, ": files mapped and kept");
		break;
	case PYX_PLACE_SHMEM:
		grows(buf, n, "shared memory", &wh->cat[PYX_WCAT_SHMEM]);
		break;
	case PYX_PLACE_UNEXPLAINED:
		k += grows(buf, n, "anonymous memory no allocator accounts for",
			   &wh->cat[PYX_WCAT_UNEXPLAINED]);
		snprintf(buf + k, n - k, ": another allocator, or a library's own "
			 "mappings");
		break;
	case PYX_PLACE_NONE:
		snprintf(buf, n, "no category grows steadily");
		break;
	default:
		if (s->place_off)
			snprintf(buf, n, "not followed (%s)", s->place_off);
		else
			snprintf(buf, n, "fewer than %d samples placed: no verdict",
				 PYX_WATCH_MIN_SAMPLES);
	}
}

static void print_line(const struct state *s, const struct pyx_census_delta *d)
{
	const struct pyx_watch_sample *x = last_sample(s);
	char a[32], b[32];
	size_t shown = 0;

	printf("[%4" PRIu64 "] %8.2f s  ", s->w->taken, x->t);
	if (x->rss_bytes >= 0)
		printf("RSS %s  ", hb((double)x->rss_bytes, a, sizeof(a)));
	printf("heap %s  %" PRIu64 " objects  ",
	       hb((double)x->bytes, b, sizeof(b)), x->objects);
	if (c_bytes(x) >= 0)
		printf("malloc %s  ", hb(c_bytes(x), b, sizeof(b)));
	printf("pause %.1f ms", x->pause_ms);
	for (size_t i = 0; d && i < d->ntypes && shown < 3; i++) {
		if (d->types[i].dcount <= 0)
			break;
		printf("%s%+" PRId64 " ", shown ? ", " : "  ", d->types[i].dcount);
		print_safe(stdout, d->types[i].name);
		shown++;
	}
	printf("\n");
}

static void json_sample(const struct state *s, const struct pyx_census_delta *d)
{
	const struct pyx_watch_sample *x = last_sample(s);
	size_t n = d ? d->ntypes : 0;

	if (s->o.top && n > s->o.top)
		n = s->o.top;
	printf("{\"sample\":%" PRIu64 ",\"t\":%.3f,\"time\":%.6f,\"rss_bytes\":",
	       s->w->taken, x->t, x->time);
	cmd_json_i64_or_null(x->rss_bytes);
	printf(",\"arena_bytes\":");
	cmd_json_i64_or_null(x->arena_bytes);
	printf(",\"objects\":%" PRIu64 ",\"bytes\":%" PRIu64
	       ",\"gc_objects\":%" PRIu64 ",\"gc_bytes\":%" PRIu64
	       ",\"pause_ms\":%.3f,\"census_pause_ms\":%.3f,\"walk_ms\":%.3f"
	       ",\"interval_s\":%.3f,\"partial\":%s,\"approximate\":%s,"
	       "\"memory\":",
	       x->objects, x->bytes, x->gc_objects, x->gc_bytes, x->pause_ms,
	       x->census_pause_ms, x->walk_ms, s->cur_interval,
	       x->partial ? "true" : "false",
	       s->o.nonblocking ? "true" : "false");
	if (x->cat_known) {
		/* Every category, null where a part could not be read. */
		for (int i = 0; i < PYX_WCAT_COUNT; i++) {
			printf("%s\"%s\":", i ? "," : "{",
			       pyx_watch_cat_key((enum pyx_watch_cat)i));
			if (cat_known(x, (enum pyx_watch_cat)i))
				printf("%" PRId64, x->cat[i]);
			else
				printf("null");
		}
		printf("}");
	} else {
		printf("null");
	}
	printf(",\"nchanged\":%zu,\"changed\":[", d ? d->ntypes : 0);
	for (size_t i = 0; i < n; i++) {
		const struct pyx_census_change *c = &d->types[i];

		printf("%s{\"type\":", i ? "," : "");
		json_str(stdout, c->name);
		printf(",\"count\":%" PRIu64 ",\"delta\":%" PRId64
		       ",\"bytes\":%" PRIu64 ",\"delta_bytes\":%" PRId64 "}",
		       c->count, c->dcount, c->bytes, c->dbytes);
	}
	printf("]}\n");
}

static int term_rows(void)
{
	struct winsize ws;

	if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_row > 0)
		return ws.ws_row;
	return 24;
}

static void print_live(const struct state *s)
{
	const struct pyx_watch_sample *x = last_sample(s);
	/* The categories take up to 14 lines. */
	int spare = term_rows() - 10 - (x->cat_known ? 14 : 0);
	size_t rows = (size_t)(spare > 2 ? spare : 2);
	size_t n = s->ng < s->o.top ? s->ng : s->o.top, shown = 0;
	char a[32], b[32], c[32];

	if (n > rows)
		n = rows;
	/* Home and clear, then the frame: redrawn in place. */
	printf("\033[H\033[2J");
	printf("pyxray watch  PID %d  Python ", s->pid);
	print_safe(stdout, pyx_python_info(s->py)->version);
	printf("  sample %" PRIu64 "  %.1f s  every %g s%s  pause %.1f ms "
	       "(%.2f%%)\n\n", s->w->taken, x->t, s->cur_interval,
	       s->backed_off ? " (backed off)" : "", x->pause_ms,
	       x->t > 0 ? s->pause_total_ms / 10 / x->t : 0);
	if (x->rss_bytes >= 0)
		printf("RSS          %12s  %12s/s  %s\n",
		       hb((double)x->rss_bytes, a, sizeof(a)),
		       shb(s->rss.trend.slope, b, sizeof(b)),
		       pyx_watch_shape_name(s->rss.shape));
	printf("Python heap  %12s  %12s/s  %s\n", hb((double)x->bytes, a, sizeof(a)),
	       shb(s->heap.trend.slope, b, sizeof(b)),
	       pyx_watch_shape_name(s->heap.shape));
	printf("Objects      %12" PRIu64 "\n", x->objects);
	if (x->arena_bytes >= 0)
		printf("Arenas       %12s\n", hb((double)x->arena_bytes, a, sizeof(a)));
	if (x->cat_known) {
		/* The categories that hold memory, with their rates so far. */
		printf("\n");
		for (int i = 0; i < PYX_WCAT_COUNT; i++) {
			const struct pyx_watch_curve *cv = &s->where.cat[i];

			if (!cat_known(x, (enum pyx_watch_cat)i) ||
			    (!x->cat[i] && !(s->where.known[i] &&
					     cv->amplitude > 0)))
				continue;
			printf("%-28s %12s  %12s/s  %s\n",
			       pyx_watch_cat_label((enum pyx_watch_cat)i),
			       hb((double)x->cat[i], a, sizeof(a)),
			       shb(s->where.known[i] ? cv->trend.slope : 0, b,
				   sizeof(b)),
			       s->where.known[i] ? pyx_watch_shape_name(cv->shape)
			       : "unknown");
		}
		if (s->where.place != PYX_PLACE_UNKNOWN) {
			char v[600];

			verdict(s, v, sizeof(v));
			printf("Where it grows: %s\n", v);
		}
	}
	printf("\n%10s %12s %12s %12s  %s\n", "objects", "objects/s", "size",
	       "bytes/s", "type");
	for (size_t i = 0; i < s->ng && shown < n; i++) {
		const struct pyx_watch_growth *g = &s->g[i];
		const struct pyx_watch_type *t = &s->w->types[g->type];

		if (g->count_per_s <= 0 && g->bytes_per_s <= 0)
			continue;
		printf("%10" PRIu64 " %+12.1f %12s %12s  ",
		       t->count[s->w->nsamples - 1], g->count_per_s,
		       hb((double)t->bytes[s->w->nsamples - 1], a, sizeof(a)),
		       shb(g->bytes_per_s, c, sizeof(c)));
		print_safe(stdout, g->name);
		printf("%s\n", g->leak ? "   LEAK" : "");
		shown++;
	}
	if (!shown)
		printf("(no type grows)\n");
	printf("\nCtrl-C ends the watch with a summary.\n");
}

/* ---- Prometheus textfile ---------------------------------------------- */

static void prom_label(FILE *f, const char *v)
{
	char buf[1024];

	cmd_escape(buf, sizeof(buf), v);
	for (const char *p = buf; *p; p++) {
		if (*p == '\\' || *p == '"')
			fputc('\\', f);
		fputc(*p, f);
	}
}

static void prom_metric(FILE *f, const char *name, const char *help,
			const char *type)
{
	fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* The types a export names: the top N by bytes now, and the top N growing
 * (leaks first): at most 2N, so the label set stays bounded. */
static size_t export_types(const struct state *s, size_t *idx, size_t max)
{
	size_t n = 0, k = s->w->nsamples - 1, nt = s->w->ntypes;
	size_t top = s->o.top ? s->o.top : DEFAULT_TOP;
	bool *taken = calloc(nt ? nt : 1, sizeof(*taken));

	if (!taken)
		return 0;
	for (size_t r = 0; r < top && r < nt && n < max; r++) {
		size_t best = nt;

		for (size_t i = 0; i < nt; i++)
			if (!taken[i] && s->w->types[i].bytes[k] &&
			    (best == nt || s->w->types[i].bytes[k] >
						   s->w->types[best].bytes[k]))
				best = i;
		if (best == nt)
			break;
		taken[best] = true;
		idx[n++] = best;
	}
	for (size_t i = 0, r = 0; i < s->ng && r < top && n < max; i++) {
		if (!(s->g[i].count_per_s > 0) && !s->g[i].leak)
			continue;
		r++;
		if (!taken[s->g[i].type]) {
			taken[s->g[i].type] = true;
			idx[n++] = s->g[i].type;
		}
	}
	free(taken);
	return n;
}

static const struct pyx_watch_growth *growth_of(const struct state *s,
						size_t type)
{
	for (size_t i = 0; i < s->ng; i++)
		if (s->g[i].type == type)
			return &s->g[i];
	return NULL;
}

/* Memory by category: one family each, a category label (12 values at
 * most: bounded). */
static void prom_memory(FILE *f, const struct state *s)
{
	static const enum pyx_watch_place places[] = {
		PYX_PLACE_UNKNOWN, PYX_PLACE_NONE, PYX_PLACE_C, PYX_PLACE_PYTHON,
		PYX_PLACE_PYTHON_AND_C, PYX_PLACE_PYMALLOC, PYX_PLACE_STACKS,
		PYX_PLACE_FILES, PYX_PLACE_SHMEM, PYX_PLACE_UNEXPLAINED,
	};
	const struct pyx_watch_sample *x = last_sample(s);
	const struct pyx_watch_where *wh = &s->where;

	prom_metric(f, "pyxray_memory_bytes", "Memory by category, as 'pyxray "
		    "memory' places it (allocators' figures for pymalloc and "
		    "glibc malloc, resident bytes for the rest).", "gauge");
	for (int i = 0; i < PYX_WCAT_COUNT; i++)
		if (cat_known(x, (enum pyx_watch_cat)i))
			fprintf(f, "pyxray_memory_bytes{pid=\"%d\",category=\"%s\"} %"
				PRId64 "\n", s->pid,
				pyx_watch_cat_key((enum pyx_watch_cat)i), x->cat[i]);
	prom_metric(f, "pyxray_memory_growth_bytes_per_second", "Growth of a "
		    "memory category over the watch (Theil-Sen slope).", "gauge");
	for (int i = 0; i < PYX_WCAT_COUNT; i++)
		if (cat_known(x, (enum pyx_watch_cat)i))
			fprintf(f, "pyxray_memory_growth_bytes_per_second{pid=\"%d\","
				"category=\"%s\"} %.6g\n", s->pid,
				pyx_watch_cat_key((enum pyx_watch_cat)i),
				wh->known[i] ? wh->cat[i].trend.slope : 0.0);
	prom_metric(f, "pyxray_memory_leak", "1 if a memory category grows "
		    "steadily (the leak verdict).", "gauge");
	for (int i = 0; i < PYX_WCAT_COUNT; i++)
		if (cat_known(x, (enum pyx_watch_cat)i))
			fprintf(f, "pyxray_memory_leak{pid=\"%d\",category=\"%s\"} "
				"%d\n", s->pid,
				pyx_watch_cat_key((enum pyx_watch_cat)i),
				wh->known[i] && wh->cat[i].shape == PYX_SHAPE_LEAK);
	prom_metric(f, "pyxray_memory_growth_place", "Where the memory grows: "
		    "1 for the current verdict.", "gauge");
	for (size_t i = 0; i < sizeof(places) / sizeof(places[0]); i++)
		fprintf(f, "pyxray_memory_growth_place{pid=\"%d\",place=\"%s\"} "
			"%d\n", s->pid, pyx_watch_place_name(places[i]),
			wh->place == places[i]);
}

static int write_prom(struct state *s)
{
	static const enum pyx_watch_shape shapes[] = {
		PYX_SHAPE_UNKNOWN, PYX_SHAPE_FLAT, PYX_SHAPE_SAWTOOTH,
		PYX_SHAPE_EARLY_GROWTH, PYX_SHAPE_SURGE, PYX_SHAPE_LEAK,
		PYX_SHAPE_IRREGULAR,
	};
	const struct pyx_watch_sample *x = last_sample(s);
	size_t k = s->w->nsamples - 1, idx[2 * 1024], n;
	char tmp[PATH_MAX];
	FILE *f;
	int fd, err = 0;

	if (snprintf(tmp, sizeof(tmp), "%s.%d.tmp", s->o.prom, (int)getpid()) >=
	    (int)sizeof(tmp))
		return pyx_err_set(PYX_E_IO, "%s: name too long", s->o.prom);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (fd < 0 || !(f = fdopen(fd, "w"))) {
		err = pyx_err_set(PYX_E_IO, "%s: %s", tmp, strerror(errno));
		if (fd >= 0)
			close(fd);
		return err;
	}
	if (x->rss_bytes >= 0) {
		prom_metric(f, "pyxray_rss_bytes",
			    "Resident set size of the watched process.", "gauge");
		fprintf(f, "pyxray_rss_bytes{pid=\"%d\"} %" PRId64 "\n", s->pid,
			x->rss_bytes);
	}
	prom_metric(f, "pyxray_python_heap_bytes", "Bytes of the Python objects "
		    "counted (sys.getsizeof), GC-tracked ones unless --full.",
		    "gauge");
	fprintf(f, "pyxray_python_heap_bytes{pid=\"%d\"} %" PRIu64 "\n", s->pid,
		x->bytes);
	prom_metric(f, "pyxray_python_objects", "Python objects counted.",
		    "gauge");
	fprintf(f, "pyxray_python_objects{pid=\"%d\"} %" PRIu64 "\n", s->pid,
		x->objects);
	if (x->arena_bytes >= 0) {
		prom_metric(f, "pyxray_pymalloc_arena_bytes",
			    "Bytes in pymalloc arenas.", "gauge");
		fprintf(f, "pyxray_pymalloc_arena_bytes{pid=\"%d\"} %" PRId64
			"\n", s->pid, x->arena_bytes);
	}
	prom_metric(f, "pyxray_python_heap_growth_bytes_per_second",
		    "Growth of the Python heap over the watch (Theil-Sen slope).",
		    "gauge");
	fprintf(f, "pyxray_python_heap_growth_bytes_per_second{pid=\"%d\"} %.6g\n",
		s->pid, s->heap.trend.slope);
	prom_metric(f, "pyxray_pause_seconds", "How long the last sample "
		    "stopped the target (the census and the allocators).",
		    "gauge");
	fprintf(f, "pyxray_pause_seconds{pid=\"%d\"} %.6f\n", s->pid,
		x->pause_ms / 1e3);
	prom_metric(f, "pyxray_census_pause_seconds", "How long the last "
		    "sample's census stopped the target.", "gauge");
	fprintf(f, "pyxray_census_pause_seconds{pid=\"%d\"} %.6f\n", s->pid,
		x->census_pause_ms / 1e3);
	if (x->cat_known)
		prom_memory(f, s);
	prom_metric(f, "pyxray_samples_total", "Censuses taken by this watch.",
		    "counter");
	fprintf(f, "pyxray_samples_total{pid=\"%d\"} %" PRIu64 "\n", s->pid,
		s->w->taken);
	prom_metric(f, "pyxray_last_sample_timestamp_seconds",
		    "Unix time of the last census.", "gauge");
	fprintf(f, "pyxray_last_sample_timestamp_seconds{pid=\"%d\"} %.3f\n",
		s->pid, x->time);
	prom_metric(f, "pyxray_memory_pattern", "The shape of the Python heap's "
		    "curve: 1 for the current one.", "gauge");
	for (size_t i = 0; i < sizeof(shapes) / sizeof(shapes[0]); i++)
		fprintf(f, "pyxray_memory_pattern{pid=\"%d\",pattern=\"%s\"} %d\n",
			s->pid, pyx_watch_shape_name(shapes[i]),
			s->heap.shape == shapes[i]);
	n = export_types(s, idx, sizeof(idx) / sizeof(idx[0]));
	prom_metric(f, "pyxray_type_objects", "Objects of a type (the top types "
		    "by size and by growth).", "gauge");
	for (size_t i = 0; i < n; i++) {
		fprintf(f, "pyxray_type_objects{pid=\"%d\",type=\"", s->pid);
		prom_label(f, s->w->types[idx[i]].name);
		fprintf(f, "\"} %" PRIu64 "\n", s->w->types[idx[i]].count[k]);
	}
	prom_metric(f, "pyxray_type_bytes", "Bytes of the objects of a type.",
		    "gauge");
	for (size_t i = 0; i < n; i++) {
		fprintf(f, "pyxray_type_bytes{pid=\"%d\",type=\"", s->pid);
		prom_label(f, s->w->types[idx[i]].name);
		fprintf(f, "\"} %" PRIu64 "\n", s->w->types[idx[i]].bytes[k]);
	}
	prom_metric(f, "pyxray_type_growth_objects_per_second",
		    "Growth rate of a type's count over the watch.", "gauge");
	for (size_t i = 0; i < n; i++) {
		const struct pyx_watch_growth *g = growth_of(s, idx[i]);

		fprintf(f, "pyxray_type_growth_objects_per_second{pid=\"%d\","
			"type=\"", s->pid);
		prom_label(f, s->w->types[idx[i]].name);
		fprintf(f, "\"} %.6g\n", g ? g->count_per_s : 0.0);
	}
	prom_metric(f, "pyxray_type_leak", "1 if the type grows steadily "
		    "(the leak verdict).", "gauge");
	for (size_t i = 0; i < n; i++) {
		const struct pyx_watch_growth *g = growth_of(s, idx[i]);

		fprintf(f, "pyxray_type_leak{pid=\"%d\",type=\"", s->pid);
		prom_label(f, s->w->types[idx[i]].name);
		fprintf(f, "\"} %d\n", g && g->leak);
	}
	if (fflush(f) || ferror(f))
		err = pyx_err_set(PYX_E_IO, "%s: %s", tmp, strerror(errno));
	if (fclose(f) && !err)
		err = pyx_err_set(PYX_E_IO, "%s: %s", tmp, strerror(errno));
	if (!err && rename(tmp, s->o.prom))
		err = pyx_err_set(PYX_E_IO, "rename to %s: %s", s->o.prom,
				  strerror(errno));
	if (err)
		unlink(tmp);
	return err;
}

/* ---- statsd ------------------------------------------------------------ */

static int statsd_open(struct statsd *sd, const char *hostport,
		       const char *prefix, int pid)
{
	char host[256];
	const char *port, *colon = strrchr(hostport, ':');
	struct addrinfo hints, *res = NULL, *ai;
	size_t hl;
	int rc;

	sd->fd = -1;
	if (!colon || !colon[1] || colon == hostport)
		return cmd_usage("watch", "--statsd takes HOST:PORT, not '%s'",
				 hostport), -PYX_E_USAGE;
	port = colon + 1;
	hl = (size_t)(colon - hostport);
	if (hostport[0] == '[' && hl >= 2 && hostport[hl - 1] == ']') {
		hostport++; /* [::1]:8125 */
		hl -= 2;
	}
	if (hl >= sizeof(host))
		return cmd_usage("watch", "--statsd: host name too long"),
		       -PYX_E_USAGE;
	memcpy(host, hostport, hl);
	host[hl] = '\0';
	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_DGRAM;
	if ((rc = getaddrinfo(host, port, &hints, &res)))
		return pyx_err_set(PYX_E_IO, "--statsd %s: %s", hostport,
				   gai_strerror(rc));
	for (ai = res; ai; ai = ai->ai_next) {
		sd->fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC,
				ai->ai_protocol);
		if (sd->fd < 0)
			continue;
		if (connect(sd->fd, ai->ai_addr, ai->ai_addrlen) == 0)
			break;
		close(sd->fd);
		sd->fd = -1;
	}
	freeaddrinfo(res);
	if (sd->fd < 0)
		return pyx_err_set(PYX_E_IO, "--statsd %s: %s", hostport,
				   strerror(errno));
	if (prefix)
		snprintf(sd->prefix, sizeof(sd->prefix), "%s", prefix);
	else
		snprintf(sd->prefix, sizeof(sd->prefix), "pyxray.%d", pid);
	return 0;
}

/* A metric path component: Graphite splits on '.', statsd on ':' and '|'. */
static void statsd_name(char *out, size_t n, const char *in)
{
	size_t o = 0;

	for (; *in && o + 1 < n; in++) {
		unsigned char c = (unsigned char)*in;

		out[o++] = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
				   (c >= '0' && c <= '9') || c == '_' || c == '-'
			   ? (char)c : '_';
	}
	out[o] = '\0';
}

struct dgram {
	struct statsd *sd;
	char buf[STATSD_DATAGRAM];
	size_t len;
};

static void dgram_flush(struct dgram *d)
{
	if (d->len && send(d->sd->fd, d->buf, d->len, MSG_DONTWAIT) < 0 &&
	    !d->sd->warned) {
		/* UDP is fire and forget; say once that nobody listens. */
		fprintf(stderr, "pyxray: warning: statsd: %s (further errors "
			"not shown)\n", strerror(errno));
		d->sd->warned = true;
	}
	d->len = 0;
}

static void gauge(struct dgram *d, const char *name, double v)
{
	char line[512];
	/* Whole numbers (bytes, counts) in full: %.6g would round 14833472
	 * bytes to 14833500. */
	int n = v == floor(v) && fabs(v) < 1e15 ?
		snprintf(line, sizeof(line), "%s.%s:%.0f|g", d->sd->prefix, name, v) :
		snprintf(line, sizeof(line), "%s.%s:%.6g|g", d->sd->prefix, name, v);

	if (n < 0 || (size_t)n >= sizeof(line))
		return;
	if (d->len + (size_t)n + 1 > sizeof(d->buf))
		dgram_flush(d);
	if (d->len)
		d->buf[d->len++] = '\n';
	memcpy(d->buf + d->len, line, (size_t)n);
	d->len += (size_t)n;
}

static void send_statsd(struct state *s)
{
	const struct pyx_watch_sample *x = last_sample(s);
	struct dgram d = { .sd = &s->sd };
	size_t k = s->w->nsamples - 1, idx[2 * 1024], n;
	char nm[256], key[320];

	if (x->rss_bytes >= 0)
		gauge(&d, "rss_bytes", (double)x->rss_bytes);
	gauge(&d, "heap_bytes", (double)x->bytes);
	gauge(&d, "objects", (double)x->objects);
	if (x->arena_bytes >= 0)
		gauge(&d, "arena_bytes", (double)x->arena_bytes);
	gauge(&d, "pause_ms", x->pause_ms);
	gauge(&d, "census_pause_ms", x->census_pause_ms);
	for (int i = 0; i < PYX_WCAT_COUNT; i++)
		if (cat_known(x, (enum pyx_watch_cat)i)) {
			snprintf(key, sizeof(key), "memory.%s.bytes",
				 pyx_watch_cat_key((enum pyx_watch_cat)i));
			gauge(&d, key, (double)x->cat[i]);
		}
	{
		size_t leaks = 0;

		for (size_t i = 0; i < s->ng; i++)
			leaks += s->g[i].leak;
		gauge(&d, "leaking_types", (double)leaks);
	}
	n = export_types(s, idx, sizeof(idx) / sizeof(idx[0]));
	for (size_t i = 0; i < n; i++) {
		statsd_name(nm, sizeof(nm), s->w->types[idx[i]].name);
		snprintf(key, sizeof(key), "types.%s.objects", nm);
		gauge(&d, key, (double)s->w->types[idx[i]].count[k]);
		snprintf(key, sizeof(key), "types.%s.bytes", nm);
		gauge(&d, key, (double)s->w->types[idx[i]].bytes[k]);
	}
	dgram_flush(&d);
}

/* ---- who holds the growth --------------------------------------------- */

struct holder_path {
	unsigned count;
	struct pyx_refs *r;     /* the first example's answer: groups[0] */
	char *sig;
};

struct holder {
	struct pyx_watch_newborn nb;
	struct holder_path paths[PYX_WATCH_MAX_EXAMPLES];
	size_t npaths;
	unsigned traced, gone, unreachable, failed;
	const char *error;      /* the last refs error, if any */
};

/* An example's label without its index or int key, as refs' groups. */
static void generic_edge(const char *e, char *out, size_t n)
{
	const char *b = strrchr(e, '[');
	size_t i = b ? 1 : 0;

	if (b) {
		if (b[i] == '-')
			i++;
		while (b[i] >= '0' && b[i] <= '9')
			i++;
	}
	if (b && i > 1 && b[i] == ']' && b[i + 1] == '\0') {
		if (strncmp(e, "item [", 6) == 0)
			snprintf(out, n, "item");
		else
			snprintf(out, n, "%.*s[<int key>]", (int)(b - e), e);
		return;
	}
	snprintf(out, n, "%s", e);
}

static char *path_sig(const struct pyx_refs_group *g)
{
	size_t cap = 256, len = 0;
	char *s = malloc(cap), edge[512];

	if (!s)
		return NULL;
	s[0] = '\0';
	for (size_t i = 0; i <= g->npath; i++) {
		const char *a = i < g->npath ? g->path[i].holder : "root";
		const char *b = i < g->npath ? edge : g->root;
		size_t need;

		if (i < g->npath)
			generic_edge(g->path[i].edge, edge, sizeof(edge));
		need = strlen(a) + strlen(b ? b : "") + 3;
		if (len + need >= cap) {
			char *ns;

			cap = (len + need) * 2;
			if (!(ns = realloc(s, cap))) {
				free(s);
				return NULL;
			}
			s = ns;
		}
		len += (size_t)sprintf(s + len, "%s\t%s\n", a, b ? b : "");
	}
	return s;
}

static void trace_examples(struct state *s, struct holder *h)
{
	for (size_t e = 0; e < h->nb.nexamples && !stop_signal; e++) {
		struct pyx_refs_opts ro = { .addr = h->nb.examples[e],
					    .max_groups = 1 };
		struct pyx_refs *r = NULL;
		uint64_t p0;
		char *sig;
		size_t p;
		int err;

		ro.capture = s->copts.capture;
		h->traced++;
		/* each trace is a stop of its own: in the pause reported */
		p0 = pyx_target_pause_ns(s->tgt);
		err = pyx_refs_take(s->py, &ro, &r);
		s->pause_total_ms += (double)(pyx_target_pause_ns(s->tgt) - p0) / 1e6;
		if (err) {
			/* Freed since the walk that found it: not an error. */
			if (err == -PYX_E_USAGE) {
				h->gone++;
			} else {
				h->failed++;
				h->error = pyx_strerror(err);
			}
			pyx_err_clear();
			continue;
		}
		if (!r->ngroups) {
			h->unreachable += r->unreachable > 0;
			h->gone += r->unreachable == 0;
			pyx_refs_free(r);
			continue;
		}
		if (!(sig = path_sig(&r->groups[0]))) {
			pyx_refs_free(r);
			continue;
		}
		for (p = 0; p < h->npaths; p++)
			if (strcmp(h->paths[p].sig, sig) == 0)
				break;
		if (p < h->npaths) {
			h->paths[p].count++;
			free(sig);
			pyx_refs_free(r);
			continue;
		}
		h->paths[p].count = 1;
		h->paths[p].r = r;
		h->paths[p].sig = sig;
		h->npaths++;
	}
}

/* Find the newborn objects of the leaking types and trace examples. */
static int find_holders(struct state *s, struct holder **out, size_t *nout)
{
	struct holder *h;
	size_t n = 0;
	double pause = 0;
	int err;

	*out = NULL;
	*nout = 0;
	for (size_t i = 0; i < s->ng && n < s->o.holders; i++)
		n += s->g[i].leak;
	if (!n || !s->base)
		return 0;
	if (!(h = calloc(n, sizeof(*h))))
		return -PYX_E_NOMEM;
	{
		struct pyx_watch_newborn nb[64];
		size_t m = n < 64 ? n : 64;

		for (size_t i = 0, j = 0; j < m; i++)
			if (s->g[i].leak) {
				memset(&nb[j], 0, sizeof(nb[j]));
				nb[j].name = s->g[i].name;
				nb[j++].nexamples = s->o.examples;
			}
		err = pyx_watch_newborn(s->py, &s->copts.capture, s->base, nb, m,
					&pause);
		s->pause_total_ms += pause;
		for (size_t j = 0; j < m; j++)
			h[j].nb = nb[j];
		n = m;
	}
	if (err) {
		free(h);
		return err;
	}
	for (size_t i = 0; i < n && !stop_signal; i++)
		trace_examples(s, &h[i]);
	*out = h;
	*nout = n;
	return 0;
}

static void free_holders(struct holder *h, size_t n)
{
	for (size_t i = 0; h && i < n; i++)
		for (size_t p = 0; p < h[i].npaths; p++) {
			pyx_refs_free(h[i].paths[p].r);
			free(h[i].paths[p].sig);
		}
	free(h);
}

/* "dict value ['k'] of dict" then "__dict__ of X": "attribute 'k' of X",
 * as 'pyxray refs' says it. */
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

static void print_path(const struct pyx_refs_group *g, const char *indent)
{
	char line[1100], edge[512];

	for (size_t i = 0; i < g->npath; i++) {
		const struct pyx_refs_step *st = &g->path[i];

		if (i + 1 < g->npath && merged(st, &g->path[i + 1], line,
					       sizeof(line))) {
			i++;
		} else if (i + 1 == g->npath && strcmp(g->root, "sys.modules") == 0 &&
			   strncmp(st->edge, "dict value [", 12) == 0) {
			/* The module's entry: one line with the root. */
			printf("%s<- root: sys.modules", indent);
			print_safe(stdout, st->edge + 11);
			printf("\n");
			return;
		} else {
			generic_edge(st->edge, edge, sizeof(edge));
			snprintf(line, sizeof(line), "%s of  %s", edge, st->holder);
		}
		printf("%s<- ", indent);
		print_safe(stdout, line);
		printf("\n");
	}
	printf("%s<- root: ", indent);
	print_safe(stdout, g->root);
	printf("%s\n", g->inferred ? "  (a link is inferred)" : "");
}

static void print_holders(const struct holder *h, size_t n)
{
	if (!n)
		return;
	printf("\nWho holds the growth (objects born during the watch):\n");
	for (size_t i = 0; i < n; i++) {
		const struct holder *x = &h[i];

		printf("\n  ");
		print_safe(stdout, x->nb.name);
		printf(": %" PRIu64 " of the %" PRIu64 " tracked now were born "
		       "during the watch", x->nb.newborn, x->nb.count);
		if (!x->traced) {
			printf("; none left to trace\n");
			continue;
		}
		printf("; %u traced\n", x->traced);
		for (size_t p = 0; p < x->npaths; p++) {
			printf("    %u of %u:\n", x->paths[p].count, x->traced);
			print_path(&x->paths[p].r->groups[0], "      ");
		}
		if (x->unreachable)
			printf("    %u of %u: unreachable (garbage awaiting "
			       "collection)\n", x->unreachable, x->traced);
		if (x->gone)
			printf("    %u of %u: freed before it was traced\n",
			       x->gone, x->traced);
		if (x->failed)
			printf("    %u of %u: not traced (%s)\n", x->failed,
			       x->traced, x->error);
	}
}

static void json_holders(const struct holder *h, size_t n)
{
	printf(",\"holders\":[");
	for (size_t i = 0; i < n; i++) {
		const struct holder *x = &h[i];

		printf("%s{\"type\":", i ? "," : "");
		json_str(stdout, x->nb.name);
		printf(",\"count\":%" PRIu64 ",\"newborn\":%" PRIu64
		       ",\"traced\":%u,\"unreachable\":%u,\"gone\":%u,"
		       "\"failed\":%u,\"paths\":[", x->nb.count, x->nb.newborn,
		       x->traced, x->unreachable, x->gone, x->failed);
		for (size_t p = 0; p < x->npaths; p++) {
			const struct pyx_refs_group *g = &x->paths[p].r->groups[0];
			char edge[512];

			printf("%s{\"count\":%u,\"root\":", p ? "," : "",
			       x->paths[p].count);
			json_str(stdout, g->root);
			printf(",\"inferred\":%s,\"path\":[",
			       g->inferred ? "true" : "false");
			for (size_t k = 0; k < g->npath; k++) {
				generic_edge(g->path[k].edge, edge, sizeof(edge));
				printf("%s{\"type\":", k ? "," : "");
				json_str(stdout, g->path[k].type);
				printf(",\"holder\":");
				json_str(stdout, g->path[k].holder);
				printf(",\"edge\":");
				json_str(stdout, edge);
				printf("}");
			}
			printf("]}");
		}
		printf("]}");
	}
	printf("]");
}

/* ---- the summary ------------------------------------------------------ */

static bool shown_growth(const struct pyx_watch_growth *g)
{
	return g->leak || g->count_per_s > 0 || g->bytes_per_s > 0;
}

static void print_curve(const char *what, const struct pyx_watch_curve *c,
			double first, double last)
{
	char a[32], b[32], d[32];

	printf("%s: %s, %s -> %s (%s/s)", what, pyx_watch_shape_name(c->shape),
	       hb(first, a, sizeof(a)), hb(last, b, sizeof(b)),
	       shb(c->trend.slope, d, sizeof(d)));
	if (c->shape == PYX_SHAPE_LEAK)
		printf(", steady: tau %.2f, R^2 %.2f", c->trend.tau, c->trend.r2);
	printf("\n");
}

/* The first and last known value of a category. */
static bool cat_ends(const struct state *s, int c, double *first, double *last)
{
	bool any = false;

	for (size_t k = 0; k < s->w->nsamples; k++) {
		const struct pyx_watch_sample *x = &s->w->samples[k];

		if (!cat_known(x, (enum pyx_watch_cat)c))
			continue;
		if (!any)
			*first = (double)x->cat[c];
		*last = (double)x->cat[c];
		any = true;
	}
	return any;
}

static const char *cat_why(const struct state *s, int c)
{
	if (s->place_off)
		return s->place_off;
	switch (c) {
	case PYX_WCAT_PYTHON_OBJECTS:
		return s->why_objects;
	case PYX_WCAT_PYMALLOC_ARENAS:
	case PYX_WCAT_PYMALLOC_USED:
	case PYX_WCAT_PYMALLOC_FREE:
	case PYX_WCAT_PYMALLOC_EMPTY:
		return s->why_pymalloc;
	case PYX_WCAT_MALLOC_MMAPPED:
		if (s->why_mmapped[0])
			return s->why_mmapped;
		/* fall through */
	case PYX_WCAT_MALLOC_IN_USE:
	case PYX_WCAT_MALLOC_FREE:
		return s->why_malloc;
	default:
		return s->why_maps;
	}
}

static void print_categories(const struct state *s)
{
	char a[32], b[32], d[32], v[600];
	bool header = false;

	if (s->place_off) {
		printf("Memory by category: not followed (%s)\n", s->place_off);
		return;
	}
	for (int i = 0; i < PYX_WCAT_COUNT; i++) {
		const struct pyx_watch_curve *c = &s->where.cat[i];
		double first = 0, last = 0;

		if (!cat_ends(s, i, &first, &last))
			continue;
		if (!header)
			printf("\nMemory by category (as 'pyxray memory' places "
			       "it; %zu samples placed):\n", s->where.n);
		header = true;
		printf("  %-28s %-12s %10s -> %-10s %12s/s",
		       pyx_watch_cat_label((enum pyx_watch_cat)i),
		       s->where.known[i] ? pyx_watch_shape_name(c->shape) : "unknown",
		       hb(first, a, sizeof(a)), hb(last, b, sizeof(b)),
		       shb(s->where.known[i] ? c->trend.slope : 0, d, sizeof(d)));
		if (c->shape == PYX_SHAPE_LEAK)
			printf("  tau %.2f", c->trend.tau);
		printf("\n");
	}
	if (!header) {
		/* The error's detail can name the target's files: escaped. */
		printf("\nMemory by category: no sample placed%s",
		       s->place_error[0] ? ": " : "");
		print_safe(stdout, s->place_error);
		printf("\n");
		return;
	}
	for (int i = 0; i < PYX_WCAT_COUNT; i++)
		if (!s->where.known[i] && cat_why(s, i)[0] &&
		    (i == PYX_WCAT_PYTHON_OBJECTS || i == PYX_WCAT_PYMALLOC_ARENAS ||
		     i == PYX_WCAT_MALLOC_IN_USE || i == PYX_WCAT_MALLOC_MMAPPED ||
		     i == PYX_WCAT_STACKS)) {
			/* One line a part (pymalloc, malloc, mmapped, maps). */
			printf("  (%s%s: ", pyx_watch_cat_label((enum pyx_watch_cat)i),
			       i == PYX_WCAT_PYMALLOC_ARENAS ? " and the rest of "
			       "pymalloc" : i == PYX_WCAT_STACKS ? ", files, "
			       "shared memory, unexplained" : "");
			print_safe(stdout, cat_why(s, i));
			printf(")\n");
		}
	verdict(s, v, sizeof(v));
	printf("Where it grows: %s\n", v);
}

static void print_summary(const struct state *s, const struct holder *h,
			  size_t nh)
{
	const struct pyx_watch_sample *f = &s->w->samples[0], *x = last_sample(s);
	size_t n = 0, leaks = 0;
	char a[32];

	printf("\nWatched PID %d for %.1f s: %" PRIu64 " samples, every %g s",
	       s->pid, x->t, s->w->taken, s->o.interval);
	if (s->backed_off)
		printf(" (backed off to %.3g s to keep pauses under %g%%)",
		       s->cur_interval, s->o.budget);
	printf("; the target was paused %.1f ms in all (%.2f%% of the time), "
	       "at most %.1f ms a sample\n", s->pause_total_ms,
	       x->t > 0 ? s->pause_total_ms / 10 / x->t : 0, s->pause_max_ms);
	if (s->w->halvings)
		printf("(the series kept %zu of them, evenly spread)\n",
		       s->w->nsamples);
	if (s->o.nonblocking)
		printf("Counts are approximate: taken without stopping the target "
		       "(--nonblocking)\n");
	print_curve(s->o.full ? "Python heap (all objects)" :
		    "Python heap (GC-tracked objects)", &s->heap,
		    (double)f->bytes, (double)x->bytes);
	if (x->rss_bytes >= 0 && f->rss_bytes >= 0)
		print_curve("RSS", &s->rss, (double)f->rss_bytes,
			    (double)x->rss_bytes);
	if (s->heap.shape == PYX_SHAPE_UNKNOWN)
		printf("(fewer than %d samples: no shape, no leak verdict)\n",
		       PYX_WATCH_MIN_SAMPLES);
	print_categories(s);
	for (size_t i = 0; i < s->ng; i++) {
		const struct pyx_watch_growth *g = &s->g[i];

		if (!shown_growth(g))
			continue;
		leaks += g->leak;
		if (s->o.top && n >= s->o.top)
			continue;
		if (!n++)
			printf("\n%10s %10s %12s %12s  %-7s  %s\n", "first", "last",
			       "objects/s", "bytes/s", "verdict", "type");
		printf("%10" PRIu64 " %10" PRIu64 " %+12.1f %12s  %-7s  ",
		       g->first, g->last, g->count_per_s,
		       shb(g->bytes_per_s, a, sizeof(a)), g->leak ? "LEAK" : "");
		print_safe(stdout, g->name);
		printf("\n");
	}
	if (!n)
		printf("\nNo type grew.\n");
	if (leaks)
		printf("\nLeaking: %zu type%s (steady growth across the window)\n",
		       leaks, leaks > 1 ? "s" : "");
	else if (s->heap.shape != PYX_SHAPE_UNKNOWN)
		printf("\nNo type leaks (none grew steadily across the window).\n");
	print_holders(h, nh);
}

static void json_trend(const char *key, const struct pyx_watch_curve *c,
		       double first, double last)
{
	printf(",\"%s\":{\"pattern\":\"%s\",\"first\":%.0f,\"last\":%.0f,"
	       "\"bytes_per_s\":%.3f,\"tau\":%.4f,\"r2\":%.4f}", key,
	       pyx_watch_shape_name(c->shape), first, last, c->trend.slope,
	       c->trend.tau, c->trend.r2);
}

static void json_memory(const struct state *s)
{
	const struct pyx_watch_where *wh = &s->where;
	char v[600];

	verdict(s, v, sizeof(v));
	printf(",\"memory\":{\"followed\":%s,\"off\":",
	       s->place_off ? "false" : "true");
	json_str(stdout, s->place_off);
	printf(",\"error\":");
	json_str(stdout, s->place_error[0] ? s->place_error : NULL);
	printf(",\"placed\":%zu,\"place\":\"%s\",\"verdict\":", wh->n,
	       pyx_watch_place_name(wh->place));
	json_str(stdout, v);
	printf(",\"categories\":{");
	for (int i = 0; i < PYX_WCAT_COUNT; i++) {
		const struct pyx_watch_curve *c = &wh->cat[i];
		double first = 0, last = 0;

		printf("%s\"%s\":", i ? "," : "",
		       pyx_watch_cat_key((enum pyx_watch_cat)i));
		if (!cat_ends(s, i, &first, &last) || !wh->known[i]) {
			printf("{\"known\":false,\"why\":");
			json_str(stdout, cat_why(s, i)[0] ? cat_why(s, i) :
				 "fewer than 2 samples placed");
			printf("}");
			continue;
		}
		printf("{\"known\":true,\"pattern\":\"%s\",\"first\":%.0f,"
		       "\"last\":%.0f,\"bytes_per_s\":%.3f,\"tau\":%.4f,"
		       "\"r2\":%.4f,\"leak\":%s}", pyx_watch_shape_name(c->shape),
		       first, last, c->trend.slope, c->trend.tau, c->trend.r2,
		       c->shape == PYX_SHAPE_LEAK ? "true" : "false");
	}
	printf("},\"c\":");
	if (wh->c_known)
		printf("{\"pattern\":\"%s\",\"bytes_per_s\":%.3f,\"tau\":%.4f,"
		       "\"r2\":%.4f,\"leak\":%s}", pyx_watch_shape_name(wh->c.shape),
		       wh->c.trend.slope, wh->c.trend.tau, wh->c.trend.r2,
		       wh->c.shape == PYX_SHAPE_LEAK ? "true" : "false");
	else
		printf("null");
	printf("}");
}

static void json_summary(const struct state *s, const struct holder *h,
			 size_t nh, const char *error)
{
	const struct pyx_watch_sample *f = &s->w->samples[0], *x = last_sample(s);
	size_t n = 0;
	bool first = true;

	printf("{\"summary\":true,\"pid\":%d,\"python_version\":", s->pid);
	json_str(stdout, pyx_python_info(s->py)->version);
	printf(",\"samples\":%" PRIu64 ",\"kept\":%zu,\"duration_s\":%.3f,"
	       "\"interval_s\":%g,\"effective_interval_s\":%.3f,\"full\":%s,"
	       "\"approximate\":%s,\"pattern\":\"%s\",\"rss_pattern\":",
	       s->w->taken, s->w->nsamples, x->t, s->o.interval,
	       s->cur_interval, s->o.full ? "true" : "false",
	       s->o.nonblocking ? "true" : "false",
	       pyx_watch_shape_name(s->heap.shape));
	if (x->rss_bytes >= 0 && f->rss_bytes >= 0)
		printf("\"%s\"", pyx_watch_shape_name(s->rss.shape));
	else
		printf("null");
	json_trend("heap", &s->heap, (double)f->bytes, (double)x->bytes);
	if (x->rss_bytes >= 0 && f->rss_bytes >= 0)
		json_trend("rss", &s->rss, (double)f->rss_bytes,
			   (double)x->rss_bytes);
	json_memory(s);
	printf(",\"pause_ms_total\":%.3f,\"pause_ms_max\":%.3f,"
	       "\"pause_share\":%.6f,\"baseline_pause_ms\":%.3f,\"growing\":[",
	       s->pause_total_ms, s->pause_max_ms,
	       x->t > 0 ? s->pause_total_ms / 1e3 / x->t : 0, s->base_pause_ms);
	for (size_t i = 0; i < s->ng; i++) {
		const struct pyx_watch_growth *g = &s->g[i];

		if (!shown_growth(g) || (s->o.top && n >= s->o.top && !g->leak))
			continue;
		n++;
		printf("%s{\"type\":", n > 1 ? "," : "");
		json_str(stdout, g->name);
		printf(",\"count_per_s\":%.4f,\"bytes_per_s\":%.3f,\"first\":%"
		       PRIu64 ",\"last\":%" PRIu64 ",\"first_bytes\":%" PRIu64
		       ",\"last_bytes\":%" PRIu64 ",\"leak\":%s,\"tau\":%.4f,"
		       "\"r2\":%.4f,\"why\":", g->count_per_s, g->bytes_per_s,
		       g->first, g->last, g->first_bytes, g->last_bytes,
		       g->leak ? "true" : "false", g->trend.tau, g->trend.r2);
		json_str(stdout, g->trend.why);
		printf("}");
	}
	printf("],\"leaks\":[");
	for (size_t i = 0; i < s->ng; i++)
		if (s->g[i].leak) {
			printf("%s", first ? "" : ",");
			json_str(stdout, s->g[i].name);
			first = false;
		}
	printf("]");
	json_holders(h, nh);
	printf(",\"ended\":\"%s\",\"error\":", s->ended);
	json_str(stdout, error);
	printf("}\n");
}

/* ---- SVG ------------------------------------------------------------- */

static void xml_text(FILE *f, const char *s)
{
	char buf[1024];

	cmd_escape(buf, sizeof(buf), s);
	for (const char *p = buf; *p; p++) {
		switch (*p) {
		case '&':
			fputs("&amp;", f);
			break;
		case '<':
			fputs("&lt;", f);
			break;
		case '>':
			fputs("&gt;", f);
			break;
		case '"':
			fputs("&quot;", f);
			break;
		default:
			fputc(*p, f);
		}
	}
}

#define SVG_W 960
#define SVG_X0 90
#define SVG_X1 (SVG_W - 250)

struct panel {
	double y0, y1, lo, hi, t1;
};

static double px(const struct panel *p, double t)
{
	return SVG_X0 + (p->t1 > 0 ? t / p->t1 : 0) * (SVG_X1 - SVG_X0);
}

static double py_(const struct panel *p, double v)
{
	double r = p->hi > p->lo ? (v - p->lo) / (p->hi - p->lo) : 0.5;

	return p->y1 - r * (p->y1 - p->y0);
}

static void svg_axes(FILE *f, const struct panel *p, const char *title,
		     bool bytes)
{
	char a[32], b[32];

	fprintf(f, "<rect x=\"%d\" y=\"%.0f\" width=\"%d\" height=\"%.0f\" "
		"fill=\"none\" stroke=\"#999\"/>\n", SVG_X0, p->y0,
		SVG_X1 - SVG_X0, p->y1 - p->y0);
	fprintf(f, "<text x=\"%d\" y=\"%.0f\" font-weight=\"bold\">", SVG_X0,
		p->y0 - 8);
	xml_text(f, title);
	fprintf(f, "</text>\n");
	if (bytes) {
		hb(p->hi, a, sizeof(a));
		hb(p->lo, b, sizeof(b));
	} else {
		snprintf(a, sizeof(a), "%.0f", p->hi);
		snprintf(b, sizeof(b), "%.0f", p->lo);
	}
	fprintf(f, "<text x=\"%d\" y=\"%.0f\" text-anchor=\"end\">%s</text>\n"
		"<text x=\"%d\" y=\"%.0f\" text-anchor=\"end\">%s</text>\n",
		SVG_X0 - 6, p->y0 + 12, a, SVG_X0 - 6, p->y1, b);
	fprintf(f, "<text x=\"%d\" y=\"%.0f\">0 s</text>\n<text x=\"%d\" "
		"y=\"%.0f\" text-anchor=\"end\">%.1f s</text>\n", SVG_X0,
		p->y1 + 16, SVG_X1, p->y1 + 16, p->t1);
}

static void svg_line(FILE *f, const struct panel *p, const double *t,
		     const double *y, size_t n, const char *color,
		     const char *name, int row, bool dashed)
{
	if (!n)
		return;
	fprintf(f, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2\"%s "
		"points=\"", color, dashed ? " stroke-dasharray=\"6,4\"" : "");
	for (size_t i = 0; i < n; i++)
		fprintf(f, "%s%.1f,%.1f", i ? " " : "", px(p, t[i]),
			py_(p, y[i]));
	fprintf(f, "\"/>\n");
	if (name) {
		fprintf(f, "<rect x=\"%d\" y=\"%.0f\" width=\"12\" height=\"12\" "
			"fill=\"%s\"/><text x=\"%d\" y=\"%.0f\">", SVG_X1 + 14,
			p->y0 + 4 + 18 * row, color, SVG_X1 + 32,
			p->y0 + 15 + 18 * row);
		xml_text(f, name);
		fprintf(f, "</text>\n");
	}
}

/* A third panel: memory by category (those that hold any), the verdict
 * written above it.  t and y hold nsamples. */
static void svg_memory(FILE *f, const struct state *s, double *t, double *y,
		       double t1)
{
	static const char *const colors[PYX_WCAT_COUNT] = {
		"#d62728", "#2ca02c", "#98df8a", "#bcbd22", "#dbdb8d", "#1f77b4",
		"#aec7e8", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#7f7f7f",
	};
	struct panel p = { 690, 930, INFINITY, -INFINITY, t1 };
	char v[600];
	int row = 0;

	for (int i = 0; i < PYX_WCAT_COUNT; i++) {
		size_t m = pyx_watch_cat_series(s->w, (enum pyx_watch_cat)i, t, y);

		for (size_t k = 0; k < m; k++)
			p.lo = fmin(p.lo, y[k]), p.hi = fmax(p.hi, y[k]);
	}
	if (!(p.hi >= p.lo))
		p.lo = 0, p.hi = 1;
	p.lo = fmin(p.lo, 0);
	verdict(s, v, sizeof(v));
	fprintf(f, "<text id=\"place\" x=\"%d\" y=\"650\" fill=\"%s\">Where it "
		"grows: ", SVG_X0, s->where.place == PYX_PLACE_C ||
		s->where.place == PYX_PLACE_PYTHON ||
		s->where.place == PYX_PLACE_PYTHON_AND_C ? "#d62728" : "#333");
	xml_text(f, v);
	fprintf(f, "</text>\n");
	svg_axes(f, &p, "Memory by category ('pyxray memory''s accounting)",
		 true);
	for (int i = 0; i < PYX_WCAT_COUNT; i++) {
		size_t m = pyx_watch_cat_series(s->w, (enum pyx_watch_cat)i, t, y);
		bool any = false;
		char name[128];

		for (size_t k = 0; k < m; k++)
			any |= y[k] != 0;
		if (!any)
			continue;
		snprintf(name, sizeof(name), "%s%s",
			 pyx_watch_cat_label((enum pyx_watch_cat)i),
			 s->where.known[i] &&
			 s->where.cat[i].shape == PYX_SHAPE_LEAK ? " (grows)" : "");
		svg_line(f, &p, t, y, m, colors[i], name, row++, false);
	}
}

static int write_svg(const struct state *s, const char *path)
{
	static const char *const colors[] = { "#d62728", "#1f77b4", "#2ca02c",
					      "#9467bd", "#ff7f0e", "#8c564b" };
	size_t n = s->w->nsamples, shown = 0;
	double *t = calloc(n + 1, sizeof(*t)), *y = calloc(n + 1, sizeof(*y));
	double *y2 = calloc(n + 1, sizeof(*y2)), *y3 = calloc(n + 1, sizeof(*y3));
	struct panel p1 = { 60, 300, 0, 0, 0 }, p2 = { 360, 600, 0, 0, 0 };
	size_t nr, nh, na;
	char tmp[PATH_MAX], title[256];
	FILE *f = NULL;
	bool placed = false;
	int fd = -1, err = 0, height;

	if (!t || !y || !y2 || !y3) {
		err = -PYX_E_NOMEM;
		goto out;
	}
	if (snprintf(tmp, sizeof(tmp), "%s.%d.tmp", path, (int)getpid()) >=
	    (int)sizeof(tmp)) {
		err = pyx_err_set(PYX_E_IO, "%s: name too long", path);
		goto out;
	}
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (fd < 0 || !(f = fdopen(fd, "w"))) {
		err = pyx_err_set(PYX_E_IO, "%s: %s", tmp, strerror(errno));
		goto out;
	}
	fd = -1;
	p1.t1 = p2.t1 = last_sample(s)->t;
	nr = pyx_watch_series(s->w, PYX_WATCH_RSS_BYTES, t, y);
	nh = pyx_watch_series(s->w, PYX_WATCH_HEAP_BYTES, t, y2);
	na = pyx_watch_series(s->w, PYX_WATCH_ARENA_BYTES, t, y3);
	p1.lo = INFINITY;
	p1.hi = -INFINITY;
	for (size_t i = 0; i < nr; i++)
		p1.lo = fmin(p1.lo, y[i]), p1.hi = fmax(p1.hi, y[i]);
	for (size_t i = 0; i < nh; i++)
		p1.lo = fmin(p1.lo, y2[i]), p1.hi = fmax(p1.hi, y2[i]);
	for (size_t i = 0; i < na; i++)
		p1.lo = fmin(p1.lo, y3[i]), p1.hi = fmax(p1.hi, y3[i]);
	p1.lo = fmin(p1.lo, 0);
	for (size_t k = 0; k < n; k++)
		placed |= s->w->samples[k].cat_known != 0;
	height = placed ? 960 : 660;
	fprintf(f, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
		"<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" "
		"height=\"%d\" viewBox=\"0 0 %d %d\" font-family=\"sans-serif\" "
		"font-size=\"12\">\n<rect width=\"100%%\" height=\"100%%\" "
		"fill=\"white\"/>\n", SVG_W, height, SVG_W, height);
	snprintf(title, sizeof(title), "pyxray watch: PID %d, Python %s, %"
		 PRIu64 " samples over %.1f s", s->pid,
		 pyx_python_info(s->py)->version, s->w->taken, p1.t1);
	fprintf(f, "<title>");
	xml_text(f, title);
	fprintf(f, "</title>\n<text x=\"%d\" y=\"24\" font-size=\"16\">", SVG_X0);
	xml_text(f, title);
	fprintf(f, "</text>\n<text id=\"pattern\" x=\"%d\" y=\"24\" "
		"font-size=\"16\" font-weight=\"bold\" fill=\"%s\">shape: %s</text>\n",
		SVG_X1 + 14, s->heap.shape == PYX_SHAPE_LEAK ? "#d62728" : "#333",
		pyx_watch_shape_name(s->heap.shape));
	svg_axes(f, &p1, "Memory (RSS, Python heap, pymalloc arenas)", true);
	svg_line(f, &p1, t, y, nr, "#1f77b4", "RSS", 0, false);
	pyx_watch_series(s->w, PYX_WATCH_HEAP_BYTES, t, y2);
	svg_line(f, &p1, t, y2, nh, "#d62728", "Python heap", 1, false);
	pyx_watch_series(s->w, PYX_WATCH_ARENA_BYTES, t, y3);
	svg_line(f, &p1, t, y3, na, "#2ca02c", "pymalloc arenas", 2, false);
	if (nh >= 2 && s->heap.shape != PYX_SHAPE_UNKNOWN) {
		/* The heap's robust trend line: the shape marked. */
		double tt[2] = { 0, p1.t1 }, yy[2];
		double mid = y2[nh / 2] - s->heap.trend.slope * t[nh / 2];

		yy[0] = mid;
		yy[1] = mid + s->heap.trend.slope * p1.t1;
		fprintf(f, "<g id=\"trend\">\n");
		svg_line(f, &p1, tt, yy, 2, "#555", "heap trend", 3, true);
		fprintf(f, "</g>\n");
	}
	/* The top growing types, counts. */
	p2.lo = INFINITY;
	p2.hi = -INFINITY;
	for (size_t i = 0; i < s->ng && shown < 6; i++) {
		const struct pyx_watch_type *ty = &s->w->types[s->g[i].type];

		if (!shown_growth(&s->g[i]))
			continue;
		for (size_t k = 0; k < n; k++) {
			p2.lo = fmin(p2.lo, (double)ty->count[k]);
			p2.hi = fmax(p2.hi, (double)ty->count[k]);
		}
		shown++;
	}
	if (!shown)
		p2.lo = 0, p2.hi = 1;
	svg_axes(f, &p2, "Objects of the fastest-growing types", false);
	shown = 0;
	for (size_t k = 0; k < n; k++)
		t[k] = s->w->samples[k].t;
	for (size_t i = 0; i < s->ng && shown < 6; i++) {
		const struct pyx_watch_type *ty = &s->w->types[s->g[i].type];
		char name[300];

		if (!shown_growth(&s->g[i]))
			continue;
		for (size_t k = 0; k < n; k++)
			y[k] = (double)ty->count[k];
		snprintf(name, sizeof(name), "%s%s", ty->name,
			 s->g[i].leak ? " (LEAK)" : "");
		svg_line(f, &p2, t, y, n, colors[shown], name, (int)shown, false);
		shown++;
	}
	if (placed)
		svg_memory(f, s, t, y, last_sample(s)->t);
	fprintf(f, "</svg>\n");
	if (fflush(f) || ferror(f))
		err = pyx_err_set(PYX_E_IO, "%s: %s", tmp, strerror(errno));
	if (fclose(f) && !err)
		err = pyx_err_set(PYX_E_IO, "%s: %s", tmp, strerror(errno));
	f = NULL;
	if (!err && rename(tmp, path))
		err = pyx_err_set(PYX_E_IO, "rename to %s: %s", path,
				  strerror(errno));
	if (err)
		unlink(tmp);
out:
	if (f)
		fclose(f);
	if (fd >= 0)
		close(fd);
	free(t);
	free(y);
	free(y2);
	free(y3);
	return err;
}

/* ---- the loop --------------------------------------------------------- */

static int parse_double(const char *opt, const char *arg, double min,
			double max, double *out)
{
	char *end;

	errno = 0;
	*out = strtod(arg, &end);
	if (errno || end == arg || *end || !(*out >= min) || !(*out <= max))
		return cmd_usage("watch", "%s takes a number from %g to %g, not "
				 "'%s'", opt, min, max, arg);
	return 0;
}

/* Sleep until the monotonic time `until`, or a stop request. */
static void sleep_until(double until)
{
	while (!stop_signal) {
		double left = until - mono_s();
		struct timespec ts;

		if (left <= 0)
			return;
		ts.tv_sec = (time_t)left;
		ts.tv_nsec = (long)((left - (double)ts.tv_sec) * 1e9);
		nanosleep(&ts, NULL);
	}
}

static bool gone(int err)
{
	return err == -PYX_E_EXITED || err == -PYX_E_NO_PROCESS;
}

/* A part of memory's report that could not be read: said once. */
static void say_once(char *saved, size_t n, const char *what, const char *why)
{
	if (saved[0])
		return;
	snprintf(saved, n, "%s", why && *why ? why : "not read");
	fprintf(stderr, "pyxray: note: %s not followed: ", what);
	print_safe(stderr, saved);
	fprintf(stderr, "\n");
}

/* Place the sample's RSS with memory's accounting, given its census (one
 * more short stop, for the allocators).  A failure is said once; the
 * sample keeps the census's figures.  Returns the error only if the target
 * is gone. */
static int place(struct state *s, const struct pyx_census *c,
		 struct pyx_memory_report **out)
{
	struct pyx_memory_opts mo = { .capture = s->copts.capture,
				      .census = c,
				      .debug_dir = s->o.debug_dir,
				      .found = &s->mfound };
	struct pyx_memory_report *r = NULL;
	int err;

	*out = NULL;
	if ((err = pyx_memory_take(s->py, &mo, &r))) {
		if (gone(err))
			return err;
		if (!s->place_error[0]) {
			snprintf(s->place_error, sizeof(s->place_error), "%s%s%s",
				 pyx_strerror(err), *pyx_err_detail() ? ": " : "",
				 pyx_err_detail());
			fprintf(stderr, "pyxray: warning: sample %" PRIu64 ": the "
				"RSS could not be placed: ", s->w->taken + 1);
			print_safe(stderr, s->place_error);
			fprintf(stderr, "; the sample keeps the census's figures "
				"(further failures not shown)\n");
		}
		pyx_err_clear();
		return 0;
	}
	if (!r->objects_available)
		say_once(s->why_objects, sizeof(s->why_objects),
			 "Python objects", r->objects_why);
	if (!r->pymalloc.available)
		say_once(s->why_pymalloc, sizeof(s->why_pymalloc), "pymalloc",
			 r->pymalloc.why);
	if (!r->malloc.available)
		say_once(s->why_malloc, sizeof(s->why_malloc), "glibc malloc",
			 r->malloc.why);
	else if (!r->malloc.glibc_layout)
		say_once(s->why_mmapped, sizeof(s->why_mmapped),
			 "glibc malloc's mmapped blocks",
			 "mp_ not found (see docs/memory.md)");
	if (!r->maps_available)
		say_once(s->why_maps, sizeof(s->why_maps),
			 "the mappings (stacks, files, shared memory, "
			 "unexplained)", r->maps_why);
	*out = r;
	return 0;
}

/* One sample: census, series, output, exports.  *fatal: the watch ends. */
static int sample(struct state *s)
{
	struct pyx_census *c = NULL;
	struct pyx_census_delta *d = NULL;
	struct pyx_memory_report *r = NULL;
	double pause, place_ms = 0;
	int err, perr;

	if ((err = pyx_census_take(s->py, &s->copts, &c)))
		return err;
	if (!s->o.nonblocking) {
		/* The census's time is its stop: the heap it counts is that
		 * of the middle of the pause. */
		c->time += c->pause_ms / 2 / 1e3;
		if (s->w->nsamples && c->time < last_sample(s)->time)
			c->time = last_sample(s)->time;
	}
	if (!s->place_off) {
		uint64_t p0 = pyx_target_pause_ns(s->tgt);

		perr = place(s, c, &r);
		place_ms = (double)(pyx_target_pause_ns(s->tgt) - p0) / 1e6;
		if (gone(perr)) {
			err = perr;
			goto out;
		}
	}
	if ((err = pyx_watch_add(s->w, c)))
		goto out;
	if (r)
		pyx_watch_set_memory(s->w, r);
	else
		s->w->samples[s->w->nsamples - 1].pause_ms += place_ms;
	s->pause_total_ms += last_sample(s)->pause_ms;
	if (last_sample(s)->pause_ms > s->pause_max_ms)
		s->pause_max_ms = last_sample(s)->pause_ms;
	if (s->prev && pyx_census_delta(s->prev, c, PYX_CENSUS_BY_COUNT, &d))
		d = NULL; /* names only: no delta is not fatal */
	pyx_err_clear();
	if ((err = analyse(s)))
		goto out;
	/* Keep pauses under the budget: the next sample waits long enough
	 * (both stops of a sample count). */
	s->cur_interval = s->o.interval;
	pause = last_sample(s)->pause_ms;
	if (s->o.budget > 0 && pause / 1e3 > s->o.budget / 100 * s->o.interval) {
		s->cur_interval = pause / 1e3 / (s->o.budget / 100);
		if (!s->backed_off && !s->o.json && !s->o.live)
			fprintf(stderr, "pyxray: a sample paused the target %.1f ms: "
				"sampling every %.3g s to keep pauses under %g%% "
				"(--pause-budget)\n", pause, s->cur_interval,
				s->o.budget);
		s->backed_off = true;
	}
	if (s->o.json)
		json_sample(s, d);
	else if (s->o.live)
		print_live(s);
	else
		print_line(s, d);
	/* Nobody reads the samples any more: stopping the target again for
	 * them would be pause for nothing. */
	if (fflush(stdout) || ferror(stdout))
		s->out_closed = true;
	if (s->o.prom && (err = write_prom(s))) {
		/* The monitoring file is not the watch: say so once, go on. */
		if (!s->prom_warned)
			fprintf(stderr, "pyxray: warning: --prometheus: %s\n",
				pyx_err_detail());
		s->prom_warned = true;
		err = 0;
	}
	if (s->sd.fd >= 0)
		send_statsd(s);
	pyx_census_free(s->prev);
	s->prev = c;
	c = NULL;
out:
	pyx_memory_free(r);
	pyx_census_delta_free(d);
	pyx_census_free(c);
	return err;
}

enum {
	OPT_INTERVAL = CMD_OPT_OWN,
	OPT_COUNT,
	OPT_DURATION,
	OPT_FULL,
	OPT_TOP,
	OPT_BUDGET,
	OPT_MIN_GROWTH,
	OPT_HOLDERS,
	OPT_EXAMPLES,
	OPT_PROM,
	OPT_STATSD,
	OPT_STATSD_PREFIX,
	OPT_SVG,
	OPT_NO_LIVE,
	OPT_NONBLOCKING,
	OPT_NO_CATEGORIES,
};

static const struct cmd_opt watch_opts[] = {
	CMD_OPTS_HELP,
	CMD_OPTS_VERBOSE,
	CMD_OPTS_JSON,
	{ "--interval", NULL, OPT_INTERVAL, true },
	{ "--count", NULL, OPT_COUNT, true },
	{ "--duration", NULL, OPT_DURATION, true },
	{ "--full", NULL, OPT_FULL, false },
	{ "--top", NULL, OPT_TOP, true },
	{ "--pause-budget", NULL, OPT_BUDGET, true },
	{ "--min-growth", NULL, OPT_MIN_GROWTH, true },
	{ "--holders", NULL, OPT_HOLDERS, true },
	{ "--examples", NULL, OPT_EXAMPLES, true },
	{ "--prometheus", NULL, OPT_PROM, true },
	{ "--statsd", NULL, OPT_STATSD, true },
	{ "--statsd-prefix", NULL, OPT_STATSD_PREFIX, true },
	{ "--svg", NULL, OPT_SVG, true },
	{ "--plot", NULL, OPT_SVG, true },
	{ "--no-live", NULL, OPT_NO_LIVE, false },
	{ "--nonblocking", NULL, OPT_NONBLOCKING, false },
	{ "--no-categories", NULL, OPT_NO_CATEGORIES, false },
	CMD_OPTS_CAPTURE
	CMD_OPTS_PYTHON,
	CMD_OPTS_END
};

static int parse(int argc, char **argv, struct watch_opts *o,
		 struct pyx_python_opts *popts, struct pyx_census_opts *copts,
		 struct cmd_target *t)
{
	struct cmd_args args = CMD_ARGS("watch", argc, argv);
	bool no_live = false, holders_set = false;
	const char *val;
	int id, v;

	o->interval = DEFAULT_INTERVAL;
	o->budget = DEFAULT_BUDGET;
	o->min_growth = DEFAULT_MIN_GROWTH;
	o->top = DEFAULT_TOP;
	o->holders = DEFAULT_HOLDERS;
	o->examples = DEFAULT_EXAMPLES;
	o->count = -1;
	o->duration = -1;
	while ((id = cmd_next(&args, watch_opts, &val)) != CMD_ARG_END) {
		switch (id) {
		case CMD_ARG_ERROR:
			return 2;
		case CMD_OPT_HELP:
			help_watch(stdout);
			return 1;
		case CMD_OPT_VERBOSE:
			cmd_set_verbose(true);
			break;
		case CMD_OPT_JSON:
			o->json = true;
			break;
		case OPT_INTERVAL:
			if (parse_double("--interval", val, 0.01, 86400, &o->interval))
				return 2;
			break;
		case OPT_COUNT:
			if (cmd_opt_int(&args, val, 1, INT_MAX, &v))
				return 2;
			o->count = v;
			break;
		case OPT_DURATION:
			if (parse_double("--duration", val, 0, 86400 * 365, &o->duration))
				return 2;
			break;
		case OPT_FULL:
			o->full = true;
			break;
		case OPT_TOP:
			if (cmd_opt_int(&args, val, 0, 1000, &v))
				return 2;
			o->top = (size_t)v;
			break;
		case OPT_BUDGET:
			if (parse_double("--pause-budget", val, 0, 100, &o->budget))
				return 2;
			break;
		case OPT_MIN_GROWTH:
			if (parse_double("--min-growth", val, 1, 1e12, &o->min_growth))
				return 2;
			break;
		case OPT_HOLDERS:
			if (cmd_opt_int(&args, val, 0, 64, &v))
				return 2;
			o->holders = (size_t)v;
			holders_set = true;
			break;
		case OPT_EXAMPLES:
			if (cmd_opt_int(&args, val, 1, PYX_WATCH_MAX_EXAMPLES, &v))
				return 2;
			o->examples = (size_t)v;
			break;
		case OPT_PROM:
		case OPT_SVG:
			if (!val[0])
				return cmd_usage("watch", "%s needs a file name",
						 id == OPT_PROM ? "--prometheus" : "--svg");
			*(id == OPT_PROM ? &o->prom : &o->svg) = val;
			break;
		case OPT_STATSD:
			o->statsd = val;
			break;
		case OPT_STATSD_PREFIX:
			if (!val[0] || strlen(val) > 200)
				return cmd_usage("watch", "--statsd-prefix takes 1 to "
						 "200 characters");
			o->statsd_prefix = val;
			break;
		case OPT_NO_LIVE:
			no_live = true;
			break;
		case OPT_NONBLOCKING:
			o->nonblocking = true;
			break;
		case OPT_NO_CATEGORIES:
			o->no_categories = true;
			break;
		case CMD_ARG_WORD:
			if (cmd_target_arg("watch", val, t))
				return 2;
			break;
		default:
			if (cmd_python_opt(&args, id, val, popts) < 0 ||
			    cmd_capture_opt(&args, id, val, &copts->capture) < 0)
				return 2;
		}
	}
	if (!t->arg)
		return cmd_usage("watch", "missing PID");
	if (o->count > 0 && o->duration >= 0)
		return cmd_usage("watch", "--count and --duration exclude each "
				 "other");
	if (o->nonblocking && o->full)
		return cmd_usage("watch", "--nonblocking counts the tracked objects "
				 "only: not with --full");
	/* Who holds the growth needs stops (the baseline, the refs passes):
	 * none without them. */
	if (o->nonblocking && !holders_set)
		o->holders = 0;
	if (o->nonblocking && o->holders)
		return cmd_usage("watch", "--nonblocking never stops the target: "
				 "--holders needs stops (use --holders 0)");
	o->debug_dir = popts->debug_dir;
	copts->tracked_only = !o->full;
	copts->capture.nonblocking = o->nonblocking;
	o->live = !o->json && !no_live && isatty(STDOUT_FILENO);
	return 0;
}

int do_watch(int argc, char **argv)
{
	struct state s = { .sd = { .fd = -1 }, .ended = "count" };
	struct pyx_python_opts popts = { 0 };
	struct pyx_target *tgt = NULL;
	struct cmd_target t = { 0 };
	struct holder *h = NULL;
	size_t nh = 0;
	const char *error = NULL;
	double start;
	int err = 0, ret = 0, skipped = 0, rc;

	if ((rc = parse(argc, argv, &s.o, &popts, &s.copts, &t)))
		return rc == 1 ? 0 : rc;
	if (s.o.statsd && (err = statsd_open(&s.sd, s.o.statsd,
					     s.o.statsd_prefix, 0)))
		return err == -PYX_E_USAGE ? 2 : cmd_fail(err);
	if ((err = cmd_open_target(&t, &tgt)) ||
	    (err = pyx_python_open_opts(tgt, &popts, &s.py))) {
		ret = cmd_fail(err);
		goto out;
	}
	s.pid = (int)t.pid;
	s.tgt = tgt;
	if (!s.o.statsd_prefix && s.sd.fd >= 0)
		snprintf(s.sd.prefix, sizeof(s.sd.prefix), "pyxray.%d", s.pid);
	cmd_python_warn(s.py);
	if ((err = pyx_python_check_full(s.py, "watch")) ||
	    (err = pyx_watch_new(0, 0, &s.w))) {
		ret = cmd_fail(err);
		goto out;
	}
	s.cur_interval = s.o.interval;
	if (s.o.no_categories)
		s.place_off = "--no-categories";
	else if (s.o.nonblocking)
		s.place_off = "--nonblocking: placing the RSS needs a stop";
	catch_stop();
	start = s.start_mono = mono_s();
	for (;;) {
		double t0 = mono_s();

		err = sample(&s);
		if (err == 0) {
			skipped = 0;
		} else if (gone(err) || s.w->nsamples == 0 ||
			   ++skipped >= MAX_SKIPPED) {
			break;
		} else {
			/* A stop that timed out, a collection at every
			 * attempt: this sample is lost, the watch goes on. */
			fprintf(stderr, "pyxray: warning: sample skipped: %s%s%s\n",
				pyx_strerror(err), *pyx_err_detail() ? ": " : "",
				pyx_err_detail());
			err = 0;
		}
		if (err == 0 && s.w->nsamples == 1 && !s.base && s.o.holders) {
			/* The objects alive at the start: those not among
			 * them at the end were born during the watch. */
			if ((err = pyx_watch_baseline_take(s.py, &s.copts.capture,
							   &s.base,
							   &s.base_pause_ms)))
				break;
			s.pause_total_ms += s.base_pause_ms;
		}
		if (stop_signal) {
			s.ended = "interrupted";
			break;
		}
		if (s.out_closed) {
			s.ended = "output closed";
			break;
		}
		if (s.o.count > 0 && (long)s.w->taken >= s.o.count)
			break;
		if (s.o.duration >= 0 &&
		    t0 + s.cur_interval > start + s.o.duration + 1e-3) {
			s.ended = "duration";
			break;
		}
		sleep_until(t0 + s.cur_interval);
		if (stop_signal) {
			s.ended = "interrupted";
			break;
		}
	}
	if (err && (!s.w || s.w->nsamples == 0)) {
		/* Not one sample: as for a census. */
		ret = cmd_fail(err);
		goto out;
	}
	if (err) {
		s.ended = gone(err) ? "exited" : "error";
		error = pyx_strerror(err);
		if (gone(err))
			fprintf(stderr, "pyxray: the target exited during the watch, "
				"after %" PRIu64 " samples: the summary covers "
				"those\n", s.w->taken);
		else
			fprintf(stderr, "pyxray: error: %s%s%s: the watch ends here; "
				"the summary covers %" PRIu64 " samples\n",
				pyx_strerror(err), *pyx_err_detail() ? ": " : "",
				pyx_err_detail(), s.w->taken);
		ret = pyx_exit_code(err);
	}
	if ((rc = analyse(&s))) {
		ret = cmd_fail(rc);
		goto out;
	}
	if (!gone(err) && s.o.holders && !stop_signal && !s.out_closed) {
		if (!s.o.json && !s.o.live && s.ng && s.g[0].leak)
			fprintf(stderr, "pyxray: tracing who holds the growth...\n");
		if ((rc = find_holders(&s, &h, &nh))) {
			if (!gone(rc))
				fprintf(stderr, "pyxray: warning: who holds the "
					"growth: %s%s%s\n", pyx_strerror(rc),
					*pyx_err_detail() ? ": " : "",
					pyx_err_detail());
			pyx_err_clear();
		}
	}
	release_stop();
	if (s.o.json)
		json_summary(&s, h, nh, error);
	else
		print_summary(&s, h, nh);
	if (s.o.prom && write_prom(&s) && !s.prom_warned)
		fprintf(stderr, "pyxray: warning: --prometheus: %s\n",
			pyx_err_detail());
	if (s.o.svg && (rc = write_svg(&s, s.o.svg))) {
		fprintf(stderr, "pyxray: warning: --svg: %s\n", pyx_err_detail());
		if (!ret)
			ret = pyx_exit_code(rc);
	}
	if (stop_signal && !s.o.json)
		fprintf(stderr, "pyxray: watch ended by %s\n",
			stop_signal == SIGTERM ? "SIGTERM" : "Ctrl-C");
out:
	release_stop();
	free_holders(h, nh);
	free(s.g);
	if (s.sd.fd >= 0)
		close(s.sd.fd);
	pyx_census_free(s.prev);
	pyx_watch_baseline_free(s.base);
	pyx_watch_free(s.w);
	pyx_python_free(s.py);
	pyx_target_free(tgt);
	return ret;
}
