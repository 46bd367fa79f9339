/* The RSS placed with memory's accounting, as census, suspects and memory
 * print it (docs/memory.md): the placement on a census already taken, its
 * lines, and the one JSON writer of a memory report ('memory --json' and
 * the "memory" object of census and suspects). */
#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "pyxray/census.h"
#include "pyxray/error.h"
#include "pyxray/memory_report.h"
#include "pyxray/python.h"
#include "pyxray/suspects.h"
#include "pyxray/target.h"

static void json_why(const char *key, bool ok, const char *why)
{
	printf("\"%s\":", key);
	if (ok)
		printf("null");
	else
		json_str(stdout, why);
}

static void json_pymalloc(const struct pyx_pymalloc *p, bool classes)
{
	printf("\"pymalloc\":{\"available\":%s,", p->available ? "true" : "false");
	json_why("why", p->available, p->why);
	printf(",\"method\":");
	json_str(stdout, p->available && p->method[0] ? p->method : NULL);
	if (p->available) {
		printf(",\"arena_size\":%" PRIu64 ",\"pool_size\":%" PRIu64
		       ",\"states\":%" PRIu64 ",\"arenas\":%" PRIu64
		       ",\"arenas_allocated_total\":%" PRIu64
		       ",\"arenas_highwater\":%" PRIu64 ",\"arena_bytes\":%" PRIu64
		       ",\"pools_used\":%" PRIu64 ",\"pools_empty\":%" PRIu64
		       ",\"used_bytes\":%" PRIu64 ",\"free_bytes\":%" PRIu64
		       ",\"empty_pool_bytes\":%" PRIu64
		       ",\"pool_header_bytes\":%" PRIu64
		       ",\"quantization_bytes\":%" PRIu64
		       ",\"alignment_bytes\":%" PRIu64 ",\"sparse_arenas\":%" PRIu64
		       ",\"sparse_arena_bytes\":%" PRIu64
		       ",\"sparse_used_bytes\":%" PRIu64 ",\"bad_pools\":%" PRIu64
		       ",\"fragmentation\":%.4f",
		       p->arena_size, p->pool_size, p->states, p->arenas,
		       p->arenas_total, p->arenas_highwater, p->arena_bytes,
		       p->pools_used, p->pools_empty, p->used_bytes, p->free_bytes,
		       p->empty_pool_bytes, p->pool_header_bytes,
		       p->quantization_bytes, p->alignment_bytes, p->arenas_sparse,
		       p->sparse_arena_bytes, p->sparse_used_bytes, p->bad_pools,
		       p->arena_bytes ? 1.0 - (double)p->used_bytes /
						      (double)p->arena_bytes : 0.0);
		if (classes) {
			bool first = true;

			printf(",\"classes\":[");
			for (uint32_t i = 0; i < p->nclasses; i++) {
				const struct pyx_pymalloc_class *c = &p->classes[i];

				if (!c->pools)
					continue;
				printf("%s{\"class\":%u,\"size\":%u,\"pools\":%" PRIu64
				       ",\"blocks_used\":%" PRIu64
				       ",\"blocks_free\":%" PRIu64 "}",
				       first ? "" : ",", i, c->size, c->pools,
				       c->blocks_used, c->blocks_free);
				first = false;
			}
			printf("]");
		}
	}
	printf("}");
}

static void json_malloc(const struct pyx_cmalloc *m, bool lists)
{
	printf("\"malloc\":{\"available\":%s,", m->available ? "true" : "false");
	json_why("why", m->available, m->why);
	printf(",\"allocator\":\"glibc\",\"other_allocator\":");
	json_str(stdout, m->other[0] ? m->other : NULL);
	printf(",\"libc\":");
	json_str(stdout, m->libc[0] ? m->libc : NULL);
	if (m->available) {
		printf(",\"method\":");
		json_str(stdout, m->method);
		printf(",\"partial\":%s,\"arena_bytes\":%" PRIu64
		       ",\"in_use_bytes\":%" PRIu64 ",\"free_bytes\":%" PRIu64
		       ",\"fastbin_bytes\":%" PRIu64 ",\"free_chunks\":%" PRIu64
		       ",\"top_bytes\":%" PRIu64,
		       m->partial ? "true" : "false", m->arena_bytes,
		       m->in_use_bytes, m->free_bytes, m->fastbin_bytes,
		       m->free_chunks, m->top_bytes);
		printf(",\"mmapped_bytes\":");
		if (m->glibc_layout)
			printf("%" PRIu64 ",\"mmapped_blocks\":%" PRIu64,
			       m->mmapped_bytes, m->mmapped_blocks);
		else
			printf("null,\"mmapped_blocks\":null");
		printf(",\"narenas\":%zu", m->narenas);
		/* the per-arena list is memory's alone */
		if (lists)
			printf(",\"arenas\":[");
		for (size_t i = 0; lists && i < m->narenas; i++) {
			const struct pyx_cmalloc_arena *a = &m->arenas[i];

			printf("%s{\"address\":\"0x%" PRIx64 "\",\"main\":%s,"
			       "\"system_bytes\":%" PRIu64 ",\"in_use_bytes\":%" PRIu64
			       ",\"free_bytes\":%" PRIu64 ",\"top_bytes\":%" PRIu64
			       ",\"fastbin_bytes\":%" PRIu64 ",\"free_chunks\":%" PRIu64
			       ",\"heaps\":%u,\"partial\":%s}", i ? "," : "",
			       a->addr, a->main ? "true" : "false", a->system_bytes,
			       a->in_use_bytes, a->free_bytes, a->top_bytes,
			       a->fastbin_bytes, a->free_chunks, a->heaps,
			       a->partial ? "true" : "false");
		}
		if (lists)
			printf("]");
	}
	printf("}");
}

/* The report's figures as 'memory --json' gives them, "pause_ms" to
 * "unexplained_share", without braces: memory's own object, and census's
 * and suspects' "memory" (cmd_rss_json: lists false, no per-class,
 * per-arena, stack or file list, their counts kept).  One writer, so that
 * the keys cannot drift apart. */
void cmd_memory_json_fields(const struct pyx_memory_report *r, bool lists,
			    bool classes, size_t top)
{
	size_t nf = top && top < r->nfiles ? top : r->nfiles;

	printf("\"pause_ms\":%.3f,\"census_pause_ms\":%.3f,\"rss_bytes\":",
	       r->pause_ms, r->census_pause_ms);
	cmd_json_i64_or_null(r->rss_bytes);
	printf(",\"vmrss_bytes\":");
	cmd_json_i64_or_null(r->vmrss_bytes);
	printf(",\"python\":{\"available\":%s,",
	       r->objects_available ? "true" : "false");
	json_why("why", r->objects_available, r->objects_why);
	if (r->objects_available)
		printf(",\"objects\":%" PRIu64 ",\"objects_bytes\":%" PRIu64
		       ",\"gc_objects\":%" PRIu64 ",\"gc_bytes\":%" PRIu64
		       ",\"partial\":%s", r->objects, r->objects_bytes,
		       r->gc_objects, r->gc_bytes,
		       r->objects_partial ? "true" : "false");
	else
		printf(",\"objects_bytes\":null");
	printf("},");
	json_pymalloc(&r->pymalloc, lists && classes);
	printf(",");
	json_malloc(&r->malloc, lists);
	printf(",\"mappings\":{\"available\":%s,",
	       r->maps_available ? "true" : "false");
	json_why("why", r->maps_available, r->maps_why);
	if (r->maps_available) {
		printf(",\"resident_exact\":%s,\"pymalloc_rss_bytes\":%" PRIu64
		       ",\"malloc_heap_rss_bytes\":%" PRIu64
		       ",\"malloc_mmap_rss_bytes\":%" PRIu64
		       ",\"malloc_mmap_chunks\":%" PRIu64
		       ",\"stack_rss_bytes\":%" PRIu64 ",\"file_rss_bytes\":%" PRIu64
		       ",\"shmem_rss_bytes\":%" PRIu64
		       ",\"special_rss_bytes\":%" PRIu64
		       ",\"anon_other_rss_bytes\":%" PRIu64 ",\"nstacks\":%zu"
		       ",\"nfiles\":%zu",
		       r->resident_exact ? "true" : "false", r->pymalloc_rss,
		       r->malloc_heap_rss, r->malloc_mmap_rss,
		       r->malloc_mmap_chunks, r->stack_rss, r->file_rss,
		       r->shmem_rss, r->special_rss, r->anon_other_rss,
		       r->nstacks, r->nfiles);
		if (lists) {
			printf(",\"stacks\":[");
			for (size_t i = 0; i < r->nstacks; i++)
				printf("%s{\"start\":\"0x%" PRIx64 "\",\"end\":\"0x%"
				       PRIx64 "\",\"tid\":%d,\"threads\":%u,"
				       "\"rss_bytes\":%" PRIu64 "}", i ? "," : "",
				       r->stacks[i].start, r->stacks[i].end,
				       r->stacks[i].tid, r->stacks[i].threads,
				       r->stacks[i].rss_bytes);
			printf("],\"files\":[");
			for (size_t i = 0; i < nf; i++) {
				printf("%s{\"path\":", i ? "," : "");
				json_str(stdout, r->files[i].path);
				printf(",\"rss_bytes\":%" PRIu64 ",\"size_bytes\":%"
				       PRIu64 ",\"mappings\":%u}",
				       r->files[i].rss_bytes,
				       r->files[i].size_bytes,
				       r->files[i].mappings);
			}
			printf("]");
		}
	}
	printf("},\"unexplained_bytes\":");
	if (r->maps_available)
		printf("%" PRId64 ",\"unexplained_share\":%.4f",
		       r->unexplained_bytes, r->unexplained_share);
	else
		printf("null,\"unexplained_share\":null");
}

/*
 * The RSS placed with memory's accounting (docs/memory.md), shared by
 * census and suspects: they have their census already, so
 * pyx_memory_take() takes its figures and stops the target once more, only
 * while it reads the allocators, smaps and the page map.
 */

/* 0 with *out set, or with *out NULL and why saying why it was not placed
 * (a core, --no-placement, a failure that leaves the census valid); a
 * negative code only when the command cannot go on. */
int cmd_rss_place(struct pyx_python *py, const struct pyx_census *c,
		  const struct pyx_heap_capture_opts *capture,
		  const char *debug_dir, bool skip,
		  struct pyx_memory_report **out, char *why, size_t nwhy)
{
	struct pyx_memory_opts mo = { 0 };
	int err;

	*out = NULL;
	why[0] = 0;
	if (skip) {
		snprintf(why, nwhy, "not placed (--no-placement)");
		return 0;
	}
	if (pyx_target_kind(pyx_python_target(py)) != PYX_TARGET_PROCESS) {
		snprintf(why, nwhy, "not a live process: no /proc/PID/smaps");
		return 0;
	}
	if (capture->nonblocking) {
		snprintf(why, nwhy, "not placed: it would stop the target");
		return 0;
	}
	mo.capture = *capture;
	mo.census = c;
	mo.debug_dir = debug_dir;
	err = pyx_memory_take(py, &mo, out);
	if (err == -PYX_E_NOMEM || err == -PYX_E_INTERRUPTED)
		return err;
	if (err) {
		/* The census stands: it was taken before this second stop. */
		snprintf(why, nwhy, "not placed: %s", pyx_err_detail());
		pyx_err_clear();
		return 0;
	}
	if (!(*out)->maps_available) {
		snprintf(why, nwhy, "not placed: %s", (*out)->maps_why);
		pyx_memory_free(*out);
		*out = NULL;
	}
	return 0;
}

/* The second stop's share of r->pause_ms. */
double cmd_rss_pause_ms(const struct pyx_memory_report *r)
{
	return r ? r->pause_ms - r->census_pause_ms : 0;
}

const char *cmd_rss_part(const struct pyx_memory_report *r, size_t i,
			 uint64_t *bytes)
{
	switch (i) {
	case 0:
		*bytes = r->pymalloc_rss;
		return "pymalloc arenas";
	case 1:
		*bytes = r->malloc_heap_rss;
		return "malloc heaps";
	case 2:
		*bytes = r->malloc_mmap_rss;
		return "malloc mmapped blocks";
	case 3:
		*bytes = r->stack_rss;
		return "thread stacks";
	case 4:
		*bytes = r->file_rss;
		return "mapped files";
	case 5:
		*bytes = r->shmem_rss;
		return "shared memory";
	case 6:
		*bytes = r->special_rss;
		return "kernel ([vdso]...)";
	case 7:
		*bytes = r->unexplained_bytes > 0 ? (uint64_t)r->unexplained_bytes
						  : 0;
		return "unexplained";
	default:
		*bytes = 0;
		return NULL;
	}
}

/* Two lines: where the RSS lives (memory's categories, resident bytes),
 * then what the allocators hold inside it, in memory's words. */
void cmd_rss_lines(const struct pyx_memory_report *r)
{
	const struct pyx_pymalloc *p = &r->pymalloc;
	const struct pyx_cmalloc *m = &r->malloc;
	uint64_t rss = r->rss_bytes > 0 ? (uint64_t)r->rss_bytes : 0, bytes;
	char a[32], b[32], c[32];
	const char *what;
	bool first = true;

	printf("RSS: %s placed: ", cmd_human_bytes((double)rss, a, sizeof(a)));
	for (size_t i = 0; (what = cmd_rss_part(r, i, &bytes)); i++) {
		bool last = !cmd_rss_part(r, i + 1, &(uint64_t){ 0 });

		/* a part with no page is left out; unexplained always said */
		if (!bytes && !last)
			continue;
		printf("%s%s %s", first ? "" : ", ", what,
		       cmd_human_bytes((double)bytes, a, sizeof(a)));
		if (last)
			printf(" (%.1f%%)", 100 * r->unexplained_share);
		first = false;
	}
	printf("\n");
	printf("  inside: Python objects %s; pymalloc ",
	       cmd_human_bytes((double)r->objects_bytes, a, sizeof(a)));
	if (p->available && p->arena_bytes)
		printf("blocks in use %s, free in used pools %s, empty pools %s "
		       "(fragmentation: %.0f%% of the arenas free but allocated)", cmd_human_bytes((double)p->used_bytes, a,
							 sizeof(a)),
		       cmd_human_bytes((double)p->free_bytes, b, sizeof(b)),
		       cmd_human_bytes((double)p->empty_pool_bytes, c, sizeof(c)),
		       100.0 - 100.0 * (double)p->used_bytes /
				       (double)p->arena_bytes);
	else if (p->available)
		printf("no arenas");
	else {
		printf("not read (");
		print_safe(stdout, p->why);
		printf(")");
	}
	printf("; glibc malloc ");
	if (m->available) {
		printf("in use %s, free %s",
		       cmd_human_bytes((double)m->in_use_bytes, a, sizeof(a)),
		       cmd_human_bytes((double)m->free_bytes, b, sizeof(b)));
		if (m->glibc_layout)
			printf(", mmapped %s",
			       cmd_human_bytes((double)m->mmapped_bytes, a,
					       sizeof(a)));
		if (m->partial)
			printf(" (partial)");
	} else {
		printf("not read (");
		print_safe(stdout, m->why);
		printf(")");
	}
	if (m->other[0]) {
		printf("; another allocator: ");
		print_safe(stdout, m->other);
	}
	printf("\n");
}

/* ,"memory":{...}: the keys of 'pyxray memory --json' for these figures,
 * from memory's own writer (no per-class, per-arena, file or stack
 * lists); {"available":false,"why"} when not placed. */
void cmd_rss_json(const struct pyx_memory_report *r, const char *why)
{
	printf(",\"memory\":{\"available\":%s,\"why\":", r ? "true" : "false");
	json_str(stdout, r ? NULL : why);
	if (r) {
		printf(",");
		cmd_memory_json_fields(r, false, false, 0);
	}
	printf("}");
}

/* The biggest part of the RSS that is not Python objects, in words
 * ("glibc malloc holds 177.0 MiB in use: C allocations, outside Python
 * objects"), for suspects' note; *bytes its size. */
void cmd_rss_biggest(const struct pyx_memory_report *r, char *buf, size_t n,
		     uint64_t *bytes)
{
	const struct pyx_pymalloc *p = &r->pymalloc;
	const struct pyx_cmalloc *m = &r->malloc;
	struct {
		uint64_t bytes;
		const char *fmt;
	} part[7];
	size_t np = 0, best = 0;
	char a[32];

	if (m->available) {
		/* Python objects bigger than pymalloc's 512 bytes (list and
		 * dict tables, long strs) are malloc's chunks too. */
		uint64_t c = m->in_use_bytes + (m->glibc_layout ? m->mmapped_bytes : 0);
		uint64_t pu = p->available ? p->used_bytes : 0;
		uint64_t big = r->objects_bytes > pu ? r->objects_bytes - pu : 0;

		part[np].bytes = c > big ? c - big : 0;
		part[np++].fmt = "glibc malloc holds %s in use: C allocations, "
				 "outside Python objects";
		part[np].bytes = m->free_bytes;
		part[np++].fmt = "glibc malloc holds %s free, not given back to "
				 "the system";
	}
	if (p->available) {
		part[np].bytes = r->pymalloc_rss > p->used_bytes
			? r->pymalloc_rss - p->used_bytes : 0;
		part[np++].fmt = "pymalloc's arenas hold %s free but allocated: "
				 "fragmentation (a few live blocks pin them)";
	}
	part[np].bytes = r->stack_rss;
	part[np++].fmt = "thread stacks hold %s";
	part[np].bytes = r->file_rss;
	part[np++].fmt = "mapped files hold %s (libraries, mmapped data)";
	part[np].bytes = r->shmem_rss;
	part[np++].fmt = "shared memory holds %s";
	part[np].bytes = r->unexplained_bytes > 0 ? (uint64_t)r->unexplained_bytes : 0;
	part[np++].fmt = "%s is anonymous memory no allocator accounts for";
	for (size_t i = 1; i < np; i++)
		if (part[i].bytes > part[best].bytes)
			best = i;
	snprintf(buf, n, part[best].fmt,
		 cmd_human_bytes((double)part[best].bytes, a, sizeof(a)));
	*bytes = part[best].bytes;
}

/* "pause_ms" (every stop: the copies', the placement's and other_pause_ms,
 * which the caller names), "copy_pause_ms", "placement_pause_ms",
 * "rss_bytes" (VmRSS at the copy) and "unexplained_bytes": memory's when
 * the RSS was placed, else the RSS minus the object bytes. */
void cmd_rss_json_totals(double copy_pause_ms, double other_pause_ms,
			 int64_t rss, uint64_t bytes,
			 const struct pyx_memory_report *r)
{
	printf(",\"pause_ms\":%.3f,\"copy_pause_ms\":%.3f,"
	       "\"placement_pause_ms\":%.3f,\"rss_bytes\":",
	       copy_pause_ms + cmd_rss_pause_ms(r) + other_pause_ms,
	       copy_pause_ms, cmd_rss_pause_ms(r));
	cmd_json_i64_or_null(rss);
	printf(",\"unexplained_bytes\":");
	if (r)
		printf("%" PRId64, r->unexplained_bytes);
	else if (rss >= 0)
		printf("%" PRId64, rss - (int64_t)bytes);
	else
		printf("null");
}
