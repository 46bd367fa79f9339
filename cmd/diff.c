/* pyxray diff: growth between two saved censuses. */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
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
		"  -h, --help         this help\n");
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
};

static const struct cmd_opt diff_opts[] = {
	CMD_OPTS_HELP,
	CMD_OPTS_JSON,
	{ "--top", NULL, OPT_TOP, true },
	{ "--sort", NULL, OPT_SORT, true },
	CMD_OPTS_END
};

int do_diff(int argc, char **argv)
{
	struct cmd_args args = CMD_ARGS("diff", argc, argv);
	struct pyx_census *a = NULL, *b = NULL;
	struct pyx_census_delta *d = NULL;
	enum pyx_census_sort by = PYX_CENSUS_BY_COUNT;
	const char *files[2] = { NULL, NULL };
	bool json = false, top_set = false;
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
