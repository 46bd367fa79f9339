/* pyxray diff: growth between two saved censuses. */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "pyxray/allocs.h"
#include "pyxray/census.h"
#include "pyxray/error.h"

void help_diff(FILE *out)
{
	fprintf(out,
		"Usage: pyxray diff BEFORE.pxh AFTER.pxh [OPTIONS]\n"
		"\n"
		"Compare two censuses saved with 'pyxray census PID --save FILE.pxh':\n"
		"per type, the objects and bytes in AFTER and how they changed since\n"
		"BEFORE, biggest growth first.  Both must come from the same Python\n"
		"version.  The file format is documented in docs/snapshot-format.md.\n"
		"\n"
		"Options:\n"
		"  --top N            the N types that grew most (default 25; 0: all)\n"
		"  --sort count|bytes growth in objects (default) or in bytes\n"
		"  --json             {\"before\":{...},\"after\":{...},\"growth\":[{\"type\",\n"
		"                     \"count\",\"delta\",\"bytes\",\"delta_bytes\"}]}\n"
		"  -h, --help         this help\n"
		"\n"
		"Two files saved with 'pyxray allocs PID --save FILE' are compared as\n"
		"tracemalloc's Snapshot.compare_to() compares: per allocation site, the\n"
		"size and count in AFTER and their changes since BEFORE, biggest change\n"
		"first.  --by lineno|filename|traceback groups the sites (default\n"
		"lineno); --top N (default 10; 0: all).  JSON: {\"before\",\"after\",\n"
		"\"by\",\"sites\":[{\"file\",\"line\",\"bytes\",\"count\",\"delta_bytes\",\n"
		"\"delta_count\",\"traceback\":[{\"file\",\"line\"}]}]}.\n");
}

static void json_side(const char *key, const char *path,
		      const struct pyx_census *c)
{
	printf("\"%s\":{\"file\":", key);
	json_str(stdout, path);
	printf(",\"pid\":%d,\"python_version\":", c->pid);
	json_str(stdout, c->python_version);
	printf(",\"time\":%.6f,\"gc_objects\":%" PRIu64 ",\"objects\":%" PRIu64
	       ",\"bytes\":%" PRIu64 ",\"rss_bytes\":", c->time, c->gc_objects,
	       c->objects, c->bytes);
	if (c->rss_bytes >= 0)
		printf("%" PRId64 "}", c->rss_bytes);
	else
		printf("null}");
}

enum {
	OPT_TOP = CMD_OPT_OWN,
	OPT_SORT,
	OPT_BY,
};

static const struct cmd_opt diff_opts[] = {
	CMD_OPTS_HELP,
	CMD_OPTS_JSON,
	{ "--top", NULL, OPT_TOP, true },
	{ "--sort", NULL, OPT_SORT, true },
	{ "--by", NULL, OPT_BY, true },
	CMD_OPTS_END
};

/* ---- two saved allocs (tracemalloc's traces): compare_to() ------------ */

static const char *allocs_by_name(enum pyx_allocs_by by)
{
	return by == PYX_ALLOCS_BY_FILENAME ? "filename"
	     : by == PYX_ALLOCS_BY_TRACEBACK ? "traceback" : "lineno";
}

static void allocs_json_side(const char *key, const char *path,
			     const struct pyx_allocs *a)
{
	printf("\"%s\":{\"file\":", key);
	json_str(stdout, path);
	printf(",\"pid\":%d,\"python_version\":", a->pid);
	json_str(stdout, a->python_version);
	printf(",\"time\":%.6f,\"traced_bytes\":%" PRIu64 ",\"peak_bytes\":%"
	       PRIu64 ",\"traces\":%" PRIu64 "}", a->time, a->traced_bytes,
	       a->peak_bytes, a->ntraces);
}

static void allocs_site(const struct pyx_allocs_stat *s, enum pyx_allocs_by by)
{
	if (!s->file) {
		printf("<no frame>");
		return;
	}
	print_safe(stdout, s->file);
	if (by != PYX_ALLOCS_BY_FILENAME)
		printf(":%" PRIu32, s->line);
}

static int diff_allocs(const char *files[2], enum pyx_allocs_by by, size_t top,
		       bool json)
{
	struct pyx_allocs *a = NULL, *b = NULL;
	struct pyx_allocs_stat *d = NULL;
	size_t n = 0, k;
	char b1[32], b2[32], b3[32];
	int err, ret = 0;

	if ((err = pyx_allocs_load(files[0], &a)) ||
	    (err = pyx_allocs_load(files[1], &b)) ||
	    (err = pyx_allocs_compare(b, a, by, &d, &n))) {
		ret = cmd_fail(err);
		goto out;
	}
	k = top && top < n ? top : n;
	if (json) {
		printf("{");
		allocs_json_side("before", files[0], a);
		printf(",");
		allocs_json_side("after", files[1], b);
		printf(",\"seconds\":%.3f,\"by\":\"%s\",\"dtraced_bytes\":%" PRId64
		       ",\"nsites\":%zu,\"sites\":[", b->time - a->time,
		       allocs_by_name(by),
		       (int64_t)(b->traced_bytes - a->traced_bytes), n);
		for (size_t i = 0; i < k; i++) {
			const struct pyx_allocs_traceback *tb = d[i].tb;

			printf("%s{\"file\":", i ? "," : "");
			json_str(stdout, d[i].file);
			printf(",\"line\":%" PRIu32 ",\"bytes\":%" PRIu64
			       ",\"count\":%" PRIu64 ",\"delta_bytes\":%" PRId64
			       ",\"delta_count\":%" PRId64 ",\"traceback\":[",
			       d[i].line, d[i].bytes, d[i].count, d[i].dbytes,
			       d[i].dcount);
			if (by == PYX_ALLOCS_BY_TRACEBACK) {
				for (uint32_t f = 0; tb && f < tb->nframe; f++) {
					printf("%s{\"file\":", f ? "," : "");
					json_str(stdout, tb->frames[f].file);
					printf(",\"line\":%" PRIu32 "}",
					       tb->frames[f].line);
				}
			} else if (d[i].file) {
				printf("{\"file\":");
				json_str(stdout, d[i].file);
				printf(",\"line\":%" PRIu32 "}", d[i].line);
			}
			printf("]}");
		}
		printf("]}\n");
		goto out;
	}
	printf("From ");
	print_safe(stdout, files[0]);
	printf(" (process %d, Python ", a->pid);
	print_safe(stdout, a->python_version);
	printf(") to ");
	print_safe(stdout, files[1]);
	printf(" (process %d), %.1f s later: traced %s -> %s\n", b->pid,
	       b->time - a->time,
	       cmd_human_bytes((double)a->traced_bytes, b1, sizeof(b1)),
	       cmd_human_bytes((double)b->traced_bytes, b2, sizeof(b2)));
	printf("\nTop %zu differences by %s:\n", k, allocs_by_name(by));
	for (size_t i = 0; i < k; i++) {
		printf("#%zu: ", i + 1);
		if (by == PYX_ALLOCS_BY_TRACEBACK)
			printf("%" PRIu64 " blocks", d[i].count);
		else
			allocs_site(&d[i], by);
		printf(": size=%s (%s%s), count=%" PRIu64 " (%+" PRId64 ")\n",
		       cmd_human_bytes((double)d[i].bytes, b1, sizeof(b1)),
		       d[i].dbytes > 0 ? "+" : "",
		       cmd_human_bytes((double)d[i].dbytes, b3, sizeof(b3)),
		       d[i].count, d[i].dcount);
		if (by == PYX_ALLOCS_BY_TRACEBACK && d[i].tb)
			for (uint32_t f = d[i].tb->nframe; f-- > 0;) {
				printf("    ");
				print_safe(stdout, d[i].tb->frames[f].file);
				printf(":%" PRIu32 "\n", d[i].tb->frames[f].line);
			}
	}
	if (k < n)
		printf("%zu other sites: --top 0 for all\n", n - k);
out:
	free(d);
	pyx_allocs_free(a);
	pyx_allocs_free(b);
	return ret;
}

int do_diff(int argc, char **argv)
{
	struct cmd_args args = CMD_ARGS("diff", argc, argv);
	struct pyx_census *a = NULL, *b = NULL;
	struct pyx_census_delta *d = NULL;
	enum pyx_census_sort by = PYX_CENSUS_BY_COUNT;
	const char *files[2] = { NULL, NULL };
	enum pyx_allocs_by aby = PYX_ALLOCS_BY_LINENO;
	bool json = false, top_set = false, by_set = false;
	const char *val;
	int top = 25, nfiles = 0, id, err, ret = 0;

	while ((id = cmd_next(&args, diff_opts, &val)) != CMD_ARG_END) {
		switch (id) {
		case CMD_ARG_ERROR:
			return 2;
		case CMD_OPT_HELP:
			help_diff(stdout);
			return 0;
		case CMD_OPT_JSON:
			json = true;
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
				return cmd_usage("diff", "--sort takes bytes or "
						 "count, not '%s'", val);
			break;
		case OPT_BY:
			if (pyx_allocs_by_parse(val, &aby))
				return cmd_usage("diff", "--by takes lineno, "
						 "filename or traceback, not "
						 "'%s'", val);
			by_set = true;
			break;
		case CMD_ARG_WORD:
			if (nfiles == 2)
				return cmd_usage("diff", "unexpected argument '%s'",
						 val);
			files[nfiles++] = val;
			break;
		}
	}
	if (nfiles != 2)
		return cmd_usage("diff", "expected two snapshot files");
	/* Saved allocs (pyxray allocs --save) or censuses (.pxh): both files
	 * of one kind. */
	if (pyx_allocs_file_is(files[0]) || pyx_allocs_file_is(files[1])) {
		if (!pyx_allocs_file_is(files[0]) || !pyx_allocs_file_is(files[1]))
			return cmd_usage("diff", "one file is from 'pyxray "
					 "allocs --save', the other is not");
		return diff_allocs(files, aby, top_set ? (size_t)top
				   : json ? 0 : 10, json);
	}
	if (by_set)
		return cmd_usage("diff", "--by compares files of 'pyxray allocs "
				 "--save'; censuses compare by type");
	if ((err = pyx_census_load(files[0], &a)) ||
	    (err = pyx_census_load(files[1], &b))) {
		ret = cmd_fail(err);
		goto out;
	}
	pyx_census_sort(a, PYX_CENSUS_BY_NAME);
	pyx_census_sort(b, PYX_CENSUS_BY_NAME);
	if ((err = pyx_census_delta(a, b, by, &d))) {
		ret = cmd_fail(err);
		goto out;
	}
	if (json) {
		printf("{");
		json_side("before", files[0], a);
		printf(",");
		json_side("after", files[1], b);
		printf(",\"seconds\":%.3f,", b->time - a->time);
		cmd_print_growth_json(d, top_set ? (size_t)top : 0);
		printf("}\n");
	} else {
		/* Names and versions come from the files. */
		printf("From ");
		print_safe(stdout, files[0]);
		printf(" (process %d, Python ", a->pid);
		print_safe(stdout, a->python_version);
		printf(") to ");
		print_safe(stdout, files[1]);
		printf(" (process %d), %.1f s later:\n", b->pid, b->time - a->time);
		cmd_print_growth(d, (size_t)top, by);
	}
out:
	pyx_census_delta_free(d);
	pyx_census_free(a);
	pyx_census_free(b);
	return ret;
}
