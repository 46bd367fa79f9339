/* pyxray memory: where every byte of the RSS lives: Python objects,
 * pymalloc, glibc malloc, stacks, files, and what is left. */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "pyxray/error.h"
#include "pyxray/memory_report.h"
#include "pyxray/python.h"
#include "pyxray/target.h"

#define DEFAULT_TOP 8

void help_memory(FILE *out)
{
	fprintf(out,
		"Usage: pyxray memory PID [OPTIONS]\n"
		"\n"
		"Place every byte of PID's resident memory (RSS): Python objects (as\n"
		"'pyxray census' counts them), pymalloc's arenas and pools (the numbers\n"
		"sys._debugmallocstats() prints, with how much arena memory a few live\n"
		"blocks pin), glibc malloc per arena (mallinfo2()'s numbers: in use,\n"
		"free, top chunk, mmapped blocks), thread stacks, mapped files, shared\n"
		"memory, and the anonymous memory none of these accounts for.  The\n"
		"target is stopped while its heap is copied for the census, then once\n"
		"more while the allocators' state is read; never left stopped.\n"
		"\n"
		"Options:\n"
		"  --classes          pymalloc's size classes (pools, blocks in use, free)\n"
		"  --top N            the N files with the most resident bytes (default %d;\n"
		"                     0: all)\n"
		"  --no-objects       skip the census (no Python object bytes; faster)\n"
		"  --json             one JSON object instead of text\n"
		PYX_CMD_CAPTURE_OPTS_HELP
		PYX_CMD_PYTHON_OPTS_HELP
		"                     (and for libc's debug file)\n"
		"  -v, --verbose      diagnostics on stderr\n"
		"  -h, --help         this help\n"
		"\n"
		"JSON: {\"pid\",\"python_version\",\"pause_ms\",\"rss_bytes\",\"python\":\n"
		"{\"objects_bytes\",...},\"pymalloc\":{\"arena_bytes\",\"used_bytes\",\n"
		"\"free_bytes\",\"empty_pool_bytes\",...},\"malloc\":{\"in_use_bytes\",\n"
		"\"free_bytes\",\"mmapped_bytes\",\"arenas\":[...]},\"mappings\":{...},\n"
		"\"unexplained_bytes\",\"unexplained_share\"}; docs/memory.md.\n",
		DEFAULT_TOP);
}

static const char *hb(double b, char *buf, size_t n)
{
	return cmd_human_bytes(b, buf, n);
}

static int cmp_file(const void *a, const void *b)
{
	const struct pyx_memory_file *x = a, *y = b;

	return x->rss_bytes < y->rss_bytes ? 1 : x->rss_bytes > y->rss_bytes ? -1 : 0;
}

static double share(uint64_t part, uint64_t whole)
{
	return whole ? 100.0 * (double)part / (double)whole : 0;
}

static void json_report(const struct pyx_memory_report *r, bool classes,
			size_t top)
{
	printf("{\"pid\":%d,\"python_version\":", r->pid);
	json_str(stdout, r->python_version);
	printf(",");
	cmd_memory_json_fields(r, true, classes, top);
	printf("}\n");
}

static void line(const char *what, uint64_t bytes, uint64_t rss)
{
	char a[32];

	printf("  %-22s %10s  %5.1f%%\n", what, hb((double)bytes, a, sizeof(a)),
	       share(bytes, rss));
}

static void text_pymalloc(const struct pyx_pymalloc *p, bool classes)
{
	char a[32], b[32], c[32], d[32];

	printf("\npymalloc: ");
	if (!p->available) {
		printf("not read: ");
		print_safe(stdout, p->why);
		printf("\n");
		return;
	}
	printf("%" PRIu64 " arenas of %s = %s; %" PRIu64 " pools used, %" PRIu64
	       " empty (found by %s)\n", p->arenas,
	       hb((double)p->arena_size, a, sizeof(a)),
	       hb((double)p->arena_bytes, b, sizeof(b)), p->pools_used,
	       p->pools_empty, p->method[0] ? p->method : "?");
	printf("  blocks in use %s; free in used pools %s; empty pools %s;\n"
	       "  pool headers, quantization and alignment %s\n",
	       hb((double)p->used_bytes, a, sizeof(a)),
	       hb((double)p->free_bytes, b, sizeof(b)),
	       hb((double)p->empty_pool_bytes, c, sizeof(c)),
	       hb((double)(p->pool_header_bytes + p->quantization_bytes +
			   p->alignment_bytes), d, sizeof(d)));
	if (p->arena_bytes)
		printf("  Fragmentation: live blocks fill %.0f%% of the arenas; "
		       "%.0f%% of the arena memory is free but stays allocated\n"
		       "  (an arena goes back to the system only when all its "
		       "pools are empty).\n",
		       share(p->used_bytes, p->arena_bytes),
		       100 - share(p->used_bytes, p->arena_bytes));
	if (p->arenas_sparse)
		printf("  %" PRIu64 " arenas (%s) are pinned by a few blocks: %s "
		       "live in them, under a quarter of each.\n",
		       p->arenas_sparse,
		       hb((double)p->sparse_arena_bytes, a, sizeof(a)),
		       hb((double)p->sparse_used_bytes, b, sizeof(b)));
	if (p->bad_pools)
		printf("  Partial: %" PRIu64 " pools did not read as pools\n",
		       p->bad_pools);
	if (!classes)
		return;
	printf("\n  %5s %5s %10s %14s %13s\n", "class", "size", "num pools",
	       "blocks in use", "avail blocks");
	for (uint32_t i = 0; i < p->nclasses; i++) {
		const struct pyx_pymalloc_class *k = &p->classes[i];

		if (k->pools)
			printf("  %5u %5u %10" PRIu64 " %14" PRIu64 " %13" PRIu64
			       "\n", i, k->size, k->pools, k->blocks_used,
			       k->blocks_free);
	}
}

static void text_malloc(const struct pyx_cmalloc *m)
{
	char a[32], b[32], c[32], d[32];

	printf("\nglibc malloc: ");
	if (m->other[0]) {
		printf("(another allocator is loaded: ");
		print_safe(stdout, m->other);
		printf("; glibc's figures cover only what still goes through "
		       "glibc) ");
	}
	if (!m->available) {
		printf("not read: ");
		print_safe(stdout, m->why);
		printf("\n");
		return;
	}
	printf("%zu arena%s (%s)%s\n", m->narenas, m->narenas == 1 ? "" : "s",
	       m->method, m->partial ? ", partial: a free list ended at a bad "
	       "link" : "");
	printf("  in use %s, free %s (top chunks %s), from the system %s\n",
	       hb((double)m->in_use_bytes, a, sizeof(a)),
	       hb((double)m->free_bytes, b, sizeof(b)),
	       hb((double)m->top_bytes, c, sizeof(c)),
	       hb((double)m->arena_bytes, d, sizeof(d)));
	if (m->glibc_layout)
		printf("  large blocks served by mmap: %s in %" PRIu64 "\n",
		       hb((double)m->mmapped_bytes, a, sizeof(a)),
		       m->mmapped_blocks);
	else
		printf("  large blocks served by mmap: mp_ not found (see the "
		       "mappings below)\n");
	for (size_t i = 0; i < m->narenas; i++) {
		const struct pyx_cmalloc_arena *r = &m->arenas[i];

		printf("  %-6s 0x%-14" PRIx64 " in use %10s  free %10s  top %10s\n",
		       r->main ? "main" : "thread", r->addr,
		       hb((double)r->in_use_bytes, a, sizeof(a)),
		       hb((double)r->free_bytes, b, sizeof(b)),
		       hb((double)r->top_bytes, c, sizeof(c)));
	}
}

static void text_report(const struct pyx_memory_report *r, const char *binary,
			bool classes, size_t top)
{
	uint64_t rss = r->rss_bytes > 0 ? (uint64_t)r->rss_bytes : 0, bytes;
	const char *what;
	char a[32], b[32];

	printf("Process %d: Python ", r->pid);
	print_safe(stdout, r->python_version);
	printf(" (");
	print_safe(stdout, binary);
	printf(")\nPaused the target for %.1f ms (%.1f ms of it for the census)\n",
	       r->pause_ms, r->census_pause_ms);
	if (r->objects_available)
		printf("Python objects: %" PRIu64 " (%" PRIu64 " tracked by the GC), "
		       "%s: inside pymalloc's blocks and malloc's chunks below%s\n",
		       r->objects, r->gc_objects,
		       hb((double)r->objects_bytes, a, sizeof(a)),
		       r->objects_partial ? " (partial: damaged heap)" : "");
	else {
		printf("Python objects: ");
		print_safe(stdout, r->objects_why);
		printf("\n");
	}
	if (r->maps_available) {
		printf("\nRSS %s (VmRSS %s), placed:\n", hb((double)rss, a, sizeof(a)),
		       hb((double)r->vmrss_bytes, b, sizeof(b)));
		for (size_t i = 0; (what = cmd_rss_part(r, i, &bytes)); i++)
			line(what, bytes, rss);
		printf("  (unexplained: anonymous memory no allocator above "
		       "accounts for%s)\n", r->resident_exact ? "" :
		       "; resident bytes split by share: no page map");
	} else {
		printf("\nRSS: not placed: ");
		print_safe(stdout, r->maps_why);
		printf("\n");
	}
	text_pymalloc(&r->pymalloc, classes);
	text_malloc(&r->malloc);
	if (r->maps_available && r->nstacks) {
		printf("\nThread stacks: %zu, %s resident\n", r->nstacks,
		       hb((double)r->stack_rss, a, sizeof(a)));
	}
	if (r->maps_available && r->nfiles) {
		size_t n = top && top < r->nfiles ? top : r->nfiles;

		printf("\nMapped files (resident):\n");
		for (size_t i = 0; i < n; i++) {
			printf("  %10s  ", hb((double)r->files[i].rss_bytes, a,
					      sizeof(a)));
			print_safe(stdout, r->files[i].path);
			printf("\n");
		}
		if (n < r->nfiles)
			printf("  (the top %zu of %zu files; --top 0 for all)\n",
			       n, r->nfiles);
	}
}

enum {
	OPT_CLASSES = CMD_OPT_OWN,
	OPT_TOP,
	OPT_NO_OBJECTS,
};

static const struct cmd_opt memory_opts[] = {
	CMD_OPTS_HELP,
	CMD_OPTS_VERBOSE,
	CMD_OPTS_JSON,
	{ "--classes", NULL, OPT_CLASSES, false },
	{ "--top", NULL, OPT_TOP, true },
	{ "--no-objects", NULL, OPT_NO_OBJECTS, false },
	CMD_OPTS_CAPTURE
	CMD_OPTS_PYTHON,
	CMD_OPTS_END
};

int do_memory(int argc, char **argv)
{
	struct cmd_args args = CMD_ARGS("memory", argc, argv);
	struct pyx_python_opts popts = { 0 };
	struct pyx_memory_opts mopts = { 0 };
	struct pyx_memory_report *r = NULL;
	struct pyx_target *tgt = NULL;
	struct pyx_python *py = NULL;
	struct cmd_target t = { 0 };
	bool json = false, classes = false, top_set = false;
	int top = DEFAULT_TOP, id, err, ret = 0;
	const char *val;
	char why[256] = "";

	while ((id = cmd_next(&args, memory_opts, &val)) != CMD_ARG_END) {
		switch (id) {
		case CMD_ARG_ERROR:
			return 2;
		case CMD_OPT_HELP:
			help_memory(stdout);
			return 0;
		case CMD_OPT_VERBOSE:
			cmd_set_verbose(true);
			break;
		case CMD_OPT_JSON:
			json = true;
			break;
		case OPT_CLASSES:
			classes = true;
			break;
		case OPT_NO_OBJECTS:
			mopts.no_objects = true;
			break;
		case OPT_TOP:
			if (cmd_opt_int(&args, val, 0, INT_MAX, &top))
				return 2;
			top_set = true;
			break;
		case CMD_ARG_WORD:
			if (cmd_target_arg("memory", val, &t))
				return 2;
			break;
		default:
			if (cmd_python_opt(&args, id, val, &popts) < 0 ||
			    cmd_capture_opt(&args, id, val, &mopts.capture) < 0)
				return 2;
		}
	}
	if (!t.arg)
		return cmd_usage("memory", "missing PID");
	if ((err = cmd_open_target(&t, &tgt)) ||
	    (err = pyx_python_open_opts(tgt, &popts, &py))) {
		ret = cmd_fail(err);
		goto out;
	}
	cmd_python_warn(py);
	mopts.debug_dir = popts.debug_dir;
	/* The census needs the whole layout; without it the objects line
	 * says so and the rest is read all the same. */
	if (!mopts.no_objects && pyx_python_check_full(py, "memory")) {
		snprintf(why, sizeof(why), "not counted: %s", pyx_err_detail());
		pyx_err_clear();
		mopts.no_objects = true;
	}
	if ((err = pyx_memory_take(py, &mopts, &r))) {
		ret = cmd_fail(err);
		goto out;
	}
	if (why[0])
		snprintf(r->objects_why, sizeof(r->objects_why), "%s", why);
	if (r->nfiles)
		qsort(r->files, r->nfiles, sizeof(*r->files), cmp_file);
	if (json)
		json_report(r, classes, top_set ? (size_t)top : 0);
	else
		text_report(r, pyx_python_info(py)->binary, classes, (size_t)top);
out:
	pyx_memory_free(r);
	pyx_python_free(py);
	pyx_target_free(tgt);
	return ret;
}
