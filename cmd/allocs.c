/* pyxray allocs: where the memory was allocated: tracemalloc's traces, read
 * from outside; without tracemalloc, an estimate by sampling. */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "pyxray/allocs.h"
#include "pyxray/error.h"
#include "pyxray/python.h"
#include "pyxray/target.h"

#define DEFAULT_TOP 10

void help_allocs(FILE *out)
{
	fprintf(out,
		"Usage: pyxray allocs PID|CORE [OPTIONS]\n"
		"\n"
		"Where the memory of PID was allocated, from tracemalloc's own traces,\n"
		"read from outside (no code runs in the target): the top allocation\n"
		"sites with their size and count, grouped as tracemalloc's\n"
		"Snapshot.statistics() groups them.  The target must run tracemalloc\n"
		"(PYTHONTRACEMALLOC=N, python -X tracemalloc=N, or tracemalloc.start(N)\n"
		"in it); it is stopped while its traces are read.\n"
		"\n"
		"Options:\n"
		"  --by lineno|filename|traceback\n"
		"                     group by the allocating line (default), its file,\n"
		"                     or the whole traceback\n"
		"  --top N            the N biggest sites (default %d; 0: all)\n"
		"  --save FILE        save every traceback to FILE, for\n"
		"                     'pyxray diff BEFORE AFTER' (Snapshot.compare_to)\n"
		"  --sample SECONDS   without tracemalloc: sample the RSS and the Python\n"
		"                     stacks (not stopping the target) for SECONDS and\n"
		"                     charge the growth to the lines that ran: an\n"
		"                     estimate\n"
		"  --interval-ms MS   the sampling period (default 5)\n"
		"  --json             one JSON object instead of text\n"
		"  --deadline-ms MS   give up if the threads do not stop within MS\n"
		"                     (default 2000); the target is always resumed\n"
		PYX_CMD_PYTHON_OPTS_HELP
		PYX_CMD_CORE_OPTS_HELP
		"  -v, --verbose      diagnostics on stderr\n"
		"  -h, --help         this help\n"
		"\n"
		"JSON: {\"pid\",\"python_version\",\"pause_ms\",\"tracemalloc\":true,\n"
		"\"traced_bytes\",\"peak_bytes\",\"traceback_limit\",\"traces\",\"by\",\n"
		"\"sites\":[{\"file\",\"line\",\"bytes\",\"count\",\"traceback\":[{\"file\",\n"
		"\"line\"}]}]}, the traceback's most recent call first; with --sample:\n"
		"{\"pid\",\"tracemalloc\":false,\"estimate\":true,\"samples\",\"seconds\",\n"
		"\"rss_first\",\"rss_last\",\"lines\":[{\"file\",\"line\",\"function\",\n"
		"\"grew\",\"shrank\",\"samples\"}]}.\n"
		"Exit 17 (not supported) when the target does not trace.\n",
		DEFAULT_TOP);
}

static const char *by_name(enum pyx_allocs_by by)
{
	return by == PYX_ALLOCS_BY_FILENAME ? "filename"
	     : by == PYX_ALLOCS_BY_TRACEBACK ? "traceback" : "lineno";
}

static void print_site(const struct pyx_allocs_stat *s, enum pyx_allocs_by by)
{
	if (!s->file) {
		printf("<no frame>");
		return;
	}
	print_safe(stdout, s->file);
	if (by != PYX_ALLOCS_BY_FILENAME)
		printf(":%" PRIu32, s->line);
}

static void json_frames(const struct pyx_allocs_traceback *tb)
{
	printf("[");
	for (uint32_t i = 0; tb && i < tb->nframe; i++) {
		printf("%s{\"file\":", i ? "," : "");
		json_str(stdout, tb->frames[i].file);
		printf(",\"line\":%" PRIu32 "}", tb->frames[i].line);
	}
	printf("]");
}

static void print_json(const struct pyx_allocs *a, enum pyx_allocs_by by,
		       const struct pyx_allocs_stat *s, size_t n, size_t top)
{
	size_t k = top && top < n ? top : n;

	printf("{\"pid\":%d,\"python_version\":", a->pid);
	json_str(stdout, a->python_version);
	printf(",\"pause_ms\":%.3f,\"tracemalloc\":true,\"traced_bytes\":%"
	       PRIu64 ",\"peak_bytes\":%" PRIu64 ",\"traceback_limit\":%d,"
	       "\"traces\":%" PRIu64 ",\"traces_bytes\":%" PRIu64
	       ",\"domain_traces\":%" PRIu64 ",\"skipped\":%" PRIu64
	       ",\"partial\":%s,\"by\":\"%s\",\"nsites\":%zu,\"sites\":[",
	       a->pause_ms, a->traced_bytes, a->peak_bytes, a->max_nframe,
	       a->ntraces, a->nbytes, a->domain_traces, a->skipped,
	       a->partial ? "true" : "false", by_name(by), n);
	for (size_t i = 0; i < k; i++) {
		printf("%s{\"file\":", i ? "," : "");
		json_str(stdout, s[i].file);
		printf(",\"line\":%" PRIu32 ",\"bytes\":%" PRIu64 ",\"count\":%"
		       PRIu64 ",\"traceback\":", s[i].line, s[i].bytes,
		       s[i].count);
		/* lineno/filename: the group's frame; traceback: all. */
		if (by == PYX_ALLOCS_BY_TRACEBACK) {
			json_frames(s[i].tb);
		} else if (s[i].file) {
			printf("[{\"file\":");
			json_str(stdout, s[i].file);
			printf(",\"line\":%" PRIu32 "}]", s[i].line);
		} else {
			printf("[]");
		}
		printf("}");
	}
	printf("]}\n");
}

static void print_text(const struct pyx_allocs *a, const char *binary,
		       enum pyx_allocs_by by, const struct pyx_allocs_stat *s,
		       size_t n, size_t top)
{
	size_t k = top && top < n ? top : n;
	char b1[32], b2[32];

	cmd_print_process(a->pid, a->python_version, binary);
	printf("tracemalloc: %s traced now, peak %s; %" PRIu64 " traces, up to %d "
	       "frames each; paused the target for %.1f ms\n",
	       cmd_human_bytes((double)a->traced_bytes, b1, sizeof(b1)),
	       cmd_human_bytes((double)a->peak_bytes, b2, sizeof(b2)),
	       a->ntraces, a->max_nframe, a->pause_ms);
	if (a->partial)
		printf("Partial result: %" PRIu64 " traces could not be read "
		       "(a table changed or is damaged)\n", a->skipped);
	printf("\nTop %zu by %s:\n", k, by_name(by));
	for (size_t i = 0; i < k; i++) {
		double avg = s[i].count ? (double)s[i].bytes / (double)s[i].count : 0;

		printf("#%zu: ", i + 1);
		if (by == PYX_ALLOCS_BY_TRACEBACK)
			printf("%" PRIu64 " blocks", s[i].count);
		else
			print_site(&s[i], by);
		printf(": size=%s, count=%" PRIu64 ", average=%s\n",
		       cmd_human_bytes((double)s[i].bytes, b1, sizeof(b1)),
		       s[i].count, cmd_human_bytes(avg, b2, sizeof(b2)));
		if (by == PYX_ALLOCS_BY_TRACEBACK && s[i].tb) {
			/* As Traceback.format(): the oldest call first. */
			for (uint32_t f = s[i].tb->nframe; f-- > 0;) {
				printf("    ");
				print_safe(stdout, s[i].tb->frames[f].file);
				printf(":%" PRIu32 "\n", s[i].tb->frames[f].line);
			}
		}
	}
	if (k < n)
		printf("%zu other sites: --top 0 for all\n", n - k);
}

static void print_sampled(const struct pyx_allocs_sampled *r, size_t top,
			  bool json)
{
	size_t k = top && top < r->nlines ? top : r->nlines;
	char b1[32], b2[32], b3[32];

	if (json) {
		printf("{\"pid\":%d,\"python_version\":", r->pid);
		json_str(stdout, r->python_version);
		printf(",\"tracemalloc\":false,\"estimate\":true,\"seconds\":%.3f,"
		       "\"interval_ms\":%.3f,\"samples\":%" PRIu64 ",\"failed\":%"
		       PRIu64 ",\"idle\":%" PRIu64 ",\"rss_first\":%" PRId64
		       ",\"rss_last\":%" PRId64 ",\"idle_grew\":%" PRId64
		       ",\"lines\":[", r->seconds, r->interval_ms, r->samples,
		       r->failed, r->idle, r->rss_first, r->rss_last,
		       r->idle_grew);
		for (size_t i = 0; i < k; i++) {
			const struct pyx_allocs_sample_line *l = &r->lines[i];

			printf("%s{\"file\":", i ? "," : "");
			json_str(stdout, l->file);
			printf(",\"line\":%d,\"function\":", l->line);
			json_str(stdout, l->function);
			printf(",\"grew\":%" PRId64 ",\"shrank\":%" PRId64
			       ",\"samples\":%" PRIu64 "}", l->grew, l->shrank,
			       l->samples);
		}
		printf("]}\n");
		return;
	}
	printf("Process %d: Python ", r->pid);
	print_safe(stdout, r->python_version);
	printf("\nAn estimate (tracemalloc is off): %" PRIu64 " samples of the "
	       "RSS and the running Python line over %.1f s, every %.0f ms,\n"
	       "without stopping the target; each change of the RSS is charged "
	       "to the line running when it was seen.\n", r->samples, r->seconds,
	       r->interval_ms);
	printf("RSS %s -> %s (%s)\n",
	       cmd_human_bytes((double)r->rss_first, b1, sizeof(b1)),
	       cmd_human_bytes((double)r->rss_last, b2, sizeof(b2)),
	       cmd_human_bytes((double)(r->rss_last - r->rss_first), b3,
			       sizeof(b3)));
	if (r->failed)
		printf("%" PRIu64 " samples could not read the stacks\n", r->failed);
	printf("\n%12s %12s %8s  %s\n", "net", "grew", "samples", "line");
	for (size_t i = 0; i < k; i++) {
		const struct pyx_allocs_sample_line *l = &r->lines[i];

		printf("%12s %12s %8" PRIu64 "  ",
		       cmd_human_bytes((double)(l->grew + l->shrank), b1, sizeof(b1)),
		       cmd_human_bytes((double)l->grew, b2, sizeof(b2)), l->samples);
		print_safe(stdout, l->file);
		printf(":%d (", l->line);
		print_safe(stdout, l->function);
		printf(")\n");
	}
	printf("%12s %12s %8" PRIu64 "  (no Python line running)\n",
	       cmd_human_bytes((double)r->idle_grew, b1, sizeof(b1)), "",
	       r->idle);
	if (k < r->nlines)
		printf("%zu other lines: --top 0 for all\n", r->nlines - k);
}

static int parse_seconds(const char *arg, double *out)
{
	char *end;

	errno = 0;
	*out = strtod(arg, &end);
	if (errno || end == arg || *end || !(*out > 0) || *out > 86400)
		return -cmd_usage("allocs", "--sample takes seconds (above 0, at "
				  "most 86400), not '%s'", arg);
	return 0;
}

enum {
	OPT_BY = CMD_OPT_OWN,
	OPT_TOP,
	OPT_SAVE,
	OPT_SAMPLE,
	OPT_INTERVAL_MS,
};

static const struct cmd_opt allocs_opts[] = {
	CMD_OPTS_HELP,
	CMD_OPTS_VERBOSE,
	CMD_OPTS_JSON,
	{ "--by", NULL, OPT_BY, true },
	{ "--top", NULL, OPT_TOP, true },
	{ "--save", NULL, OPT_SAVE, true },
	{ "--sample", NULL, OPT_SAMPLE, true },
	{ "--interval-ms", NULL, OPT_INTERVAL_MS, true },
	{ "--deadline-ms", NULL, CMD_OPT_DEADLINE_MS, true },
	CMD_OPTS_HOLD
	CMD_OPTS_PYTHON,
	CMD_OPTS_END
};

int do_allocs(int argc, char **argv)
{
	struct cmd_args args = CMD_ARGS("allocs", argc, argv);
	struct pyx_python_opts popts = { 0 };
	struct pyx_allocs_opts aopts = { 0 };
	struct pyx_target *tgt = NULL;
	struct pyx_python *py = NULL;
	struct pyx_allocs *a = NULL;
	struct pyx_allocs_sampled *sampled = NULL;
	struct pyx_allocs_stat *stats = NULL;
	enum pyx_allocs_by by = PYX_ALLOCS_BY_LINENO;
	struct cmd_target t = { 0 };
	const char *save = NULL, *val;
	double sample = 0;
	bool json = false, top_set = false;
	int top = DEFAULT_TOP, interval_ms = 5, id, err, ret = 0;
	size_t n = 0;

	while ((id = cmd_next(&args, allocs_opts, &val)) != CMD_ARG_END) {
		switch (id) {
		case CMD_ARG_ERROR:
			return 2;
		case CMD_OPT_HELP:
			help_allocs(stdout);
			return 0;
		case CMD_OPT_VERBOSE:
			cmd_set_verbose(true);
			break;
		case CMD_OPT_JSON:
			json = true;
			break;
		case OPT_BY:
			if (pyx_allocs_by_parse(val, &by))
				return cmd_usage("allocs", "--by takes lineno, "
						 "filename or traceback, not "
						 "'%s'", val);
			break;
		case OPT_TOP:
			if (cmd_opt_int(&args, val, 0, INT_MAX, &top))
				return 2;
			top_set = true;
			break;
		case OPT_SAVE:
			if (!val[0])
				return cmd_usage("allocs", "--save needs a file name");
			save = val;
			break;
		case OPT_SAMPLE:
			if (parse_seconds(val, &sample))
				return 2;
			break;
		case OPT_INTERVAL_MS:
			if (cmd_opt_int(&args, val, 1, 60000, &interval_ms))
				return 2;
			break;
		case CMD_ARG_WORD:
			if (cmd_target_arg("allocs", val, &t))
				return 2;
			break;
		default:
			if (cmd_stop_opt(&args, id, val, &aopts.deadline_ms,
					 CMD_HOLD_PTR(aopts)) < 0 ||
			    cmd_python_opt(&args, id, val, &popts) < 0)
				return 2;
		}
	}
	if (!t.arg)
		return cmd_usage("allocs", "missing PID");
	if (sample > 0 && save)
		return cmd_usage("allocs", "--save saves tracemalloc's traces; "
				 "--sample has none");
	if ((err = cmd_open_target(&t, &tgt)) ||
	    (err = pyx_python_open_opts(tgt, &popts, &py))) {
		ret = cmd_fail(err);
		goto out;
	}
	cmd_python_warn(py);
	if (sample > 0) {
		if (t.core) {
			ret = cmd_usage("allocs", "--sample needs a live process, "
					"not a core file");
			goto out;
		}
		if (!json)
			fprintf(stderr, "pyxray: sampling process %d for %g s...\n",
				t.pid, sample);
		if ((err = pyx_allocs_sample(py, sample, interval_ms, &sampled))) {
			ret = cmd_fail(err);
			goto out;
		}
		print_sampled(sampled, top_set ? (size_t)top : json ? 0 : DEFAULT_TOP * 2,
			      json);
		goto out;
	}
	if ((err = pyx_python_check_full(py, "allocs")) ||
	    (err = pyx_allocs_take(py, &aopts, &a)) ||
	    (save && (err = pyx_allocs_save(a, save))) ||
	    (err = pyx_allocs_statistics(a, by, &stats, &n))) {
		ret = cmd_fail(err);
		goto out;
	}
	if (json) {
		print_json(a, by, stats, n, top_set ? (size_t)top : 0);
	} else {
		print_text(a, pyx_python_info(py)->binary, by, stats, n,
			   (size_t)top);
		if (save) {
			printf("Saved to ");
			print_safe(stdout, save);
			printf("\n");
		}
	}
out:
	free(stats);
	pyx_allocs_free(a);
	pyx_allocs_sampled_free(sampled);
	pyx_python_free(py);
	pyx_target_free(tgt);
	return ret;
}
