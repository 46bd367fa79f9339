/* pyxray memory: the RSS placed (docs/memory.md).
 *
 * A census first (its own stop, copy, resume: Python objects by its rules),
 * then one more stop, only while the allocators' state, the threads' stack
 * pointers, /proc/PID/smaps and the page map of the ranges placed are read.
 *
 * Placement, mapping by mapping (smaps' Rss):
 *  - [heap] and the thread arenas' heaps: glibc malloc;
 *  - pymalloc's arenas, glibc's mmapped chunks (a chunk header with
 *    IS_MMAPPED at a resident page that no other range claims): inside
 *    anonymous mappings, which the kernel merges when adjacent, so their
 *    resident pages are counted in /proc/PID/pagemap (bit 63), range by
 *    range; without the page map, a mapping's Rss is split by their share
 *    of its size (resident_exact false);
 *  - the mapping holding a thread's stack pointer (and [stack]): stacks;
 *  - shared mappings, /dev/shm, memfd, SysV: shared memory;
 *  - other file mappings: by file; [vdso] and friends: special;
 *  - the rest of the anonymous memory: unexplained.
 *
 * smaps and the page map come from the target (pyx_target_smaps(),
 * pyx_target_resident()), which reads them through the pinned process; a
 * core or an image has neither and says so.
 *
 * The claims are sorted once and swept along the mappings (both in address
 * order): each mapping looks only at the claims that can meet it.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/user.h>
#include <unistd.h> /* usleep: the hold test hook */

#include "pyxray/census.h"
#include "pyxray/memory.h"
#include "pyxray/memory_report.h"
#include "pyxray/target.h"

#include "reader.h"

#define PAGE 4096
/* Pages probed for mmapped chunk headers, at most (a bound on the pause). */
#define MAX_PROBES 65536
#define MAX_VMAS 1000000

struct vma {
	pyx_addr_t start, end;
	char perms[5];
	char *path;
	uint64_t rss;
};

enum kind { K_NONE, K_PYMALLOC, K_HEAP, K_MMAP, K_STACK };

/* A range some owner claims, inside anonymous memory. */
struct claim {
	pyx_addr_t start, end;
	enum kind kind;
};

struct ctx {
	struct pyx_memory_report *r;
	struct pyx_target *tgt;
	struct pyx_mem *mem;
	bool no_pagemap;      /* the page map failed once: not asked again */
	struct claim *c;
	size_t nc, capc;
	pyx_addr_t *maxend;   /* maxend[i]: the highest end of c[0..i] */
	size_t sweep;         /* first claim that may meet the next mapping */
	pyx_addr_t *sp;       /* the threads' stack pointers */
	int *tids;
	size_t nsp;
	uint64_t probes;
};

void pyx_memory_free(struct pyx_memory_report *r)
{
	if (!r)
		return;
	pyx_pymalloc_free(&r->pymalloc);
	pyx_cmalloc_free(&r->malloc);
	for (size_t i = 0; i < r->nfiles; i++)
		free(r->files[i].path);
	free(r->files);
	free(r->stacks);
	free(r);
}

static void free_vmas(struct vma *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i].path);
	free(v);
}

struct vmas {
	struct vma *v;
	size_t n, cap;
};

static int add_vma(void *arg, const struct pyx_smaps_entry *e)
{
	struct vmas *l = arg;

	if (l->n == l->cap) {
		size_t nc = l->cap ? l->cap * 2 : 256;
		struct vma *nv;

		if (nc > MAX_VMAS || !(nv = realloc(l->v, nc * sizeof(*nv))))
			return pyx_err_set(PYX_E_NOMEM, "out of memory");
		l->v = nv;
		l->cap = nc;
	}
	l->v[l->n] = (struct vma){ .start = e->start, .end = e->end,
				   .rss = e->rss_bytes };
	snprintf(l->v[l->n].perms, sizeof(l->v[l->n].perms), "%s", e->perms);
	if (!(l->v[l->n].path = strdup(e->path)))
		return pyx_err_set(PYX_E_NOMEM, "out of memory");
	l->n++;
	return 0;
}

/* Each mapping's header line and its Rss, from the target. */
static int read_smaps(struct pyx_target *tgt, struct vma **out, size_t *n)
{
	struct vmas l = { 0 };
	int err = pyx_target_smaps(tgt, add_vma, &l);

	if (err) {
		free_vmas(l.v, l.n);
		*out = NULL;
		*n = 0;
		return err;
	}
	*out = l.v;
	*n = l.n;
	return 0;
}

/* Resident bytes of [s, e) from the page map; -1 if it cannot be read. */
static int64_t resident(struct ctx *x, pyx_addr_t s, pyx_addr_t e)
{
	uint64_t b;

	if (x->no_pagemap)
		return -1;
	if (pyx_target_resident(x->tgt, s, e, &b)) {
		pyx_err_clear();
		x->no_pagemap = true;
		return -1;
	}
	return (int64_t)b;
}

static bool page_resident(struct ctx *x, pyx_addr_t p)
{
	return resident(x, p, p + PAGE) != 0;
}

static int claim(struct ctx *x, pyx_addr_t s, pyx_addr_t e, enum kind k)
{
	if (x->nc == x->capc) {
		size_t n = x->capc ? x->capc * 2 : 128;
		struct claim *v = realloc(x->c, n * sizeof(*v));

		if (!v)
			return -PYX_E_NOMEM;
		x->c = v;
		x->capc = n;
	}
	x->c[x->nc++] = (struct claim){ s, e, k };
	return 0;
}

static int cmp_claim(const void *a, const void *b)
{
	const struct claim *x = a, *y = b;

	return x->start < y->start ? -1 : x->start > y->start;
}

/* The claim containing p, from sorted claims; NULL. */
static const struct claim *claimed(const struct ctx *x, pyx_addr_t p)
{
	size_t lo = 0, hi = x->nc;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (x->c[mid].end <= p)
			lo = mid + 1;
		else if (x->c[mid].start > p)
			hi = mid;
		else
			return &x->c[mid];
	}
	return NULL;
}

/* glibc's mmapped chunks in an anonymous mapping: a header (prev_size 0,
 * size whole pages with IS_MMAPPED alone of the flag bits) at a resident
 * page that nothing else claims, the next one right after it. */
static int find_mmapped(struct ctx *x, const struct vma *v,
			struct claim **found, size_t *nfound, size_t *cap)
{
	pyx_addr_t p = v->start;

	while (p + PAGE <= v->end && x->probes < MAX_PROBES) {
		const struct claim *c = claimed(x, p);
		uint64_t h[2], size;

		if (c) {
			p = (c->end + PAGE - 1) & ~(uint64_t)(PAGE - 1);
			continue;
		}
		x->probes++;
		if (!page_resident(x, p) || pyx_mem_read(x->mem, p, h, sizeof(h))) {
			pyx_err_clear();
			p += PAGE;
			continue;
		}
		size = h[1] & ~(uint64_t)7;
		/* The mapping is whole pages; the chunk's size is too before
		 * glibc 2.43, which counts the bytes asked for (a multiple
		 * of 16) instead. */
		if (h[0] == 0 && (h[1] & 7) == 2 && size >= PAGE - 16 &&
		    !(size & 15) && size <= v->end - p) {
			size = (size + PAGE - 1) & ~(uint64_t)(PAGE - 1);
			if (*nfound == *cap) {
				size_t n = *cap ? *cap * 2 : 64;
				struct claim *nv = realloc(*found, n * sizeof(*nv));

				if (!nv)
					return -PYX_E_NOMEM;
				*found = nv;
				*cap = n;
			}
			(*found)[(*nfound)++] = (struct claim){ p, p + size, K_MMAP };
			p += size;
		} else {
			p += PAGE;
		}
	}
	return 0;
}

static bool is_shmem(const struct vma *v)
{
	/* A shared mapping of a regular file is that file's (its pages are
	 * the page cache's): shared memory is what has no file of its own. */
	return (v->perms[3] == 's' && (!v->path[0] ||
				       strncmp(v->path, "/dev/zero", 9) == 0)) ||
	       strncmp(v->path, "/dev/shm/", 9) == 0 ||
	       strncmp(v->path, "/memfd:", 7) == 0 ||
	       strncmp(v->path, "/SYSV", 5) == 0;
}

static int add_file(struct pyx_memory_report *r, const struct vma *v,
		    size_t *cap)
{
	for (size_t i = 0; i < r->nfiles; i++)
		if (strcmp(r->files[i].path, v->path) == 0) {
			r->files[i].rss_bytes += v->rss;
			r->files[i].size_bytes += v->end - v->start;
			r->files[i].mappings++;
			return 0;
		}
	if (r->nfiles == *cap) {
		size_t n = *cap ? *cap * 2 : 64;
		struct pyx_memory_file *nv = realloc(r->files, n * sizeof(*nv));

		if (!nv)
			return -PYX_E_NOMEM;
		r->files = nv;
		*cap = n;
	}
	r->files[r->nfiles] = (struct pyx_memory_file){
		strdup(v->path), v->rss, v->end - v->start, 1 };
	if (!r->files[r->nfiles].path)
		return -PYX_E_NOMEM;
	r->nfiles++;
	return 0;
}

static int add_stack(struct pyx_memory_report *r, const struct vma *v, int tid,
		     uint32_t threads)
{
	struct pyx_memory_stack *nv = realloc(r->stacks,
					      (r->nstacks + 1) * sizeof(*nv));

	if (!nv)
		return -PYX_E_NOMEM;
	r->stacks = nv;
	nv[r->nstacks++] = (struct pyx_memory_stack){ v->start, v->end, tid,
						      threads, v->rss };
	r->stack_rss += v->rss;
	return 0;
}

static uint64_t *kind_rss(struct pyx_memory_report *r, enum kind k)
{
	switch (k) {
	case K_PYMALLOC: return &r->pymalloc_rss;
	case K_HEAP: return &r->malloc_heap_rss;
	case K_MMAP: return &r->malloc_mmap_rss;
	default: return &r->anon_other_rss;
	}
}

/* Sort the claims and index their running highest end, for the sweep. */
static int sort_claims(struct ctx *x)
{
	pyx_addr_t *m;

	qsort(x->c, x->nc, sizeof(*x->c), cmp_claim);
	m = realloc(x->maxend, (x->nc ? x->nc : 1) * sizeof(*m));
	if (!m)
		return pyx_err_set(PYX_E_NOMEM, "out of memory");
	x->maxend = m;
	for (size_t i = 0; i < x->nc; i++)
		m[i] = i && m[i - 1] > x->c[i].end ? m[i - 1] : x->c[i].end;
	x->sweep = 0;
	return 0;
}

/* An anonymous mapping: its claims' resident bytes, the rest unexplained.
 * Mappings come in address order: the claims before x->sweep all end at or
 * before this one's start (so before every later one's), and those from
 * the first that starts at or after its end on cannot meet it.  The claims
 * met are taken in the order of the whole list, so the sums are those of
 * a walk of every claim. */
static void place_anon(struct ctx *x, const struct vma *v)
{
	struct pyx_memory_report *r = x->r;
	uint64_t placed = 0, share[5] = { 0 };
	bool exact = true;

	while (x->sweep < x->nc && x->maxend[x->sweep] <= v->start)
		x->sweep++;
	for (size_t i = x->sweep; i < x->nc && x->c[i].start < v->end; i++) {
		const struct claim *c = &x->c[i];
		pyx_addr_t s = c->start > v->start ? c->start : v->start;
		pyx_addr_t e = c->end < v->end ? c->end : v->end;
		int64_t res;

		if (s >= e)
			continue;
		res = resident(x, s, e);
		if (res < 0) {
			exact = false;
			share[c->kind] += e - s;
			continue;
		}
		if (placed + (uint64_t)res > v->rss)
			res = (int64_t)(v->rss - placed);
		*kind_rss(r, c->kind) += (uint64_t)res;
		placed += (uint64_t)res;
	}
	if (!exact) {
		uint64_t size = v->end - v->start, left = v->rss - placed;

		r->resident_exact = false;
		for (int k = 0; k < 5; k++) {
			uint64_t b = size ? (uint64_t)((double)left * share[k] / size) : 0;

			*kind_rss(r, (enum kind)k) += b;
			placed += b;
		}
	}
	r->anon_other_rss += v->rss > placed ? v->rss - placed : 0;
}

static uint32_t sps_in(const struct ctx *x, const struct vma *v)
{
	uint32_t n = 0;

	for (size_t i = 0; i < x->nsp; i++)
		n += x->sp[i] >= v->start && x->sp[i] < v->end;
	return n;
}

static bool holds_sp(const struct ctx *x, const struct vma *v, int *tid)
{
	for (size_t i = 0; i < x->nsp; i++)
		if (x->sp[i] >= v->start && x->sp[i] < v->end) {
			*tid = x->tids[i];
			return true;
		}
	return false;
}

static int place(struct ctx *x)
{
	struct pyx_memory_report *r = x->r;
	struct claim *mm = NULL;
	struct vma *v = NULL;
	size_t nv = 0, nmm = 0, capmm = 0, capf = 0;
	int err, tid;

	if ((err = read_smaps(x->tgt, &v, &nv)))
		return err;
	/* Opens the page map now: resident_exact says whether it can be
	 * read even where no claim asks. */
	if (nv)
		(void)resident(x, v[0].start, v[0].start);
	for (size_t i = 0; i < r->pymalloc.narena_addr; i++)
		if ((err = claim(x, r->pymalloc.arena_addr[i],
				 r->pymalloc.arena_addr[i] + r->pymalloc.arena_size,
				 K_PYMALLOC)))
			goto out;
	for (size_t i = 0; i < r->malloc.nheaps; i++)
		if ((err = claim(x, r->malloc.heaps[i].start,
				 r->malloc.heaps[i].end, K_HEAP)))
			goto out;
	if ((err = sort_claims(x)))
		goto out;
	/* The mmapped chunks, in the anonymous private mappings that are no
	 * thread's stack. */
	if (r->malloc.available) {
		for (size_t i = 0; i < nv; i++)
			if (!v[i].path[0] && v[i].perms[0] == 'r' &&
			    v[i].perms[1] == 'w' && v[i].perms[3] == 'p' &&
			    v[i].rss && !holds_sp(x, &v[i], &tid) &&
			    (err = find_mmapped(x, &v[i], &mm, &nmm, &capmm)))
				goto out;
		for (size_t i = 0; i < nmm; i++)
			if ((err = claim(x, mm[i].start, mm[i].end, K_MMAP)))
				goto out;
		r->malloc_mmap_chunks = nmm;
		if ((err = sort_claims(x)))
			goto out;
	}
	r->rss_bytes = 0;
	for (size_t i = 0; i < nv; i++) {
		const struct vma *m = &v[i];

		r->rss_bytes += (int64_t)m->rss;
		if (strcmp(m->path, "[stack]") == 0) {
			if (!holds_sp(x, m, &tid))
				tid = 0;
			err = add_stack(r, m, tid, sps_in(x, m));
		} else if (strcmp(m->path, "[heap]") == 0) {
			r->malloc_heap_rss += m->rss;
		} else if (m->path[0] == '[') {
			r->special_rss += m->rss;
		} else if (is_shmem(m)) {
			r->shmem_rss += m->rss;
		} else if (m->path[0]) {
			r->file_rss += m->rss;
			err = add_file(r, m, &capf);
		} else if (holds_sp(x, m, &tid)) {
			err = add_stack(r, m, tid, sps_in(x, m));
		} else {
			place_anon(x, m);
		}
		if (err)
			goto out;
	}
	r->resident_exact = !x->no_pagemap;
	r->maps_available = true;
	r->unexplained_bytes = (int64_t)r->anon_other_rss;
	r->unexplained_share = r->rss_bytes > 0
		? (double)r->unexplained_bytes / (double)r->rss_bytes : 0;
out:
	free(mm);
	free_vmas(v, nv);
	return err;
}

static int stack_pointers(struct ctx *x, struct pyx_target *tgt)
{
	size_t n;
	const pid_t *t = pyx_target_threads(tgt, &n);

	if (!t || !n)
		return 0;
	x->sp = calloc(n, sizeof(*x->sp));
	x->tids = calloc(n, sizeof(*x->tids));
	if (!x->sp || !x->tids)
		return -PYX_E_NOMEM;
	for (size_t i = 0; i < n; i++) {
		struct user_regs_struct regs;

		if (pyx_target_thread_regs(tgt, t[i], &regs, sizeof(regs))) {
			pyx_err_clear();
			continue;
		}
		x->sp[x->nsp] = regs.rsp;
		x->tids[x->nsp++] = (int)t[i];
	}
	return 0;
}

static void why(char *buf, size_t n, const char *what)
{
	snprintf(buf, n, "%s: %s", what, pyx_err_detail());
	pyx_err_clear();
}

/* Errors that end the report: the target is gone, or cannot be stopped. */
static bool fatal(int err)
{
	return err == -PYX_E_EXITED || err == -PYX_E_NOMEM ||
	       err == -PYX_E_TIMEOUT || err == -PYX_E_PERMISSION ||
	       err == -PYX_E_BUSY || err == -PYX_E_INTERRUPTED;
}

int pyx_memory_take(struct pyx_python *py, const struct pyx_memory_opts *o,
		    struct pyx_memory_report **out)
{
	struct pyx_memory_report *r;
	struct ctx x = { .tgt = py->tgt };
	struct pyx_memory_found *local = NULL;
	struct pyx_memory_found *fd = o->found;
	struct pyx_census *c = NULL;
	uint64_t pause0;
	bool live = pyx_target_kind(py->tgt) == PYX_TARGET_PROCESS;
	int err = 0;

	*out = NULL;
	r = calloc(1, sizeof(*r));
	if (!r)
		return -PYX_E_NOMEM;
	x.r = r;
	x.mem = py->mem;
	/* ~4 KiB of paths: on the heap, not the stack */
	if (!fd && !(fd = local = calloc(1, sizeof(*fd)))) {
		free(r);
		return -PYX_E_NOMEM;
	}
	r->pid = (int)pyx_target_pid(py->tgt);
	snprintf(r->python_version, sizeof(r->python_version), "%s",
		 py->info.version);
	r->rss_bytes = r->vmrss_bytes = -1;
	if (o->no_objects) {
		snprintf(r->objects_why, sizeof(r->objects_why),
			 "not counted (--no-objects)");
	} else {
		const struct pyx_census *given = o->census;

		if (!given) {
			struct pyx_census_opts co = { .capture = o->capture };

			err = pyx_census_take(py, &co, &c);
			if (err && fatal(err))
				goto out;
			if (err) {
				why(r->objects_why, sizeof(r->objects_why),
				    "the census failed");
				err = 0;
			}
			given = c;
		}
		if (given) {
			r->objects_available = true;
			r->objects = given->objects;
			r->objects_bytes = given->bytes;
			r->gc_objects = given->gc_objects;
			r->gc_bytes = given->gc_bytes;
			r->objects_partial = given->partial;
			r->census_pause_ms = given->pause_ms;
		}
	}
	/* libc's symbols and debug file, and a stripped 3.8-3.11's pymalloc
	 * statics: found while the target runs, once for a caller that keeps
	 * them. */
	if (!fd->have_malloc) {
		if ((err = pyx_cmalloc_find(py->tgt, o->debug_dir, &fd->malloc)))
			goto out;
		fd->have_malloc = true;
	}
	if (!fd->have_pymalloc) {
		if ((err = pyx_pymalloc_find(py, &fd->pymalloc)))
			goto out;
		fd->have_pymalloc = !fd->pymalloc.needed ||
				    fd->pymalloc.scanned;
	}
	pause0 = pyx_target_pause_ns(py->tgt);
	if (live) {
		if ((err = pyx_target_stop(py->tgt, o->capture.deadline_ms)))
			goto out;
#ifdef PYX_TEST_HOOKS
		if (o->capture.hold_ms > 0)
			usleep((useconds_t)o->capture.hold_ms * 1000);
		/* Test hook: the placement fails inside its stop (what a
		 * failed read does), so that the callers' fallback and the
		 * resume on that path can be tested. */
		if (getenv("PYX_TEST_PLACE_FAIL") &&
		    strcmp(getenv("PYX_TEST_PLACE_FAIL"), "1") == 0) {
			err = pyx_err_set(PYX_E_IO, "test hook: the placement "
					  "failed in its stop");
			goto resume;
		}
#endif
		if ((err = pyx_target_refresh_maps(py->tgt)))
			goto resume;
	}
	if ((err = pyx_pymalloc_read_found(py, &fd->pymalloc, &r->pymalloc))) {
		if (fatal(err))
			goto resume;
		r->pymalloc.available = false;
		why(r->pymalloc.why, sizeof(r->pymalloc.why),
		    "pymalloc's state cannot be read");
		pyx_pymalloc_free(&r->pymalloc);
	}
	if ((err = pyx_cmalloc_walk_found(py->tgt, &fd->malloc, &r->malloc)))
		goto resume;
	if (live) {
		r->vmrss_bytes = pyx_target_rss_bytes(py->tgt);
		if ((err = stack_pointers(&x, py->tgt)))
			goto resume;
	}
	/* A core or an image: the target says it has no smaps, and opens
	 * nothing. */
	if ((err = place(&x))) {
		if (fatal(err))
			goto resume;
		if (err == -PYX_E_NOT_SUPPORTED) {
			snprintf(r->maps_why, sizeof(r->maps_why), "%s",
				 pyx_err_detail());
			pyx_err_clear();
		} else {
			why(r->maps_why, sizeof(r->maps_why), "smaps");
		}
		err = 0;
	}
resume:
	pyx_target_resume(py->tgt);
	if (err && err != -PYX_E_EXITED && pyx_target_gone(py->tgt))
		err = pyx_err_set(PYX_E_EXITED, "process %d exited while its "
				  "memory was read", r->pid);
	r->pause_ms = r->census_pause_ms +
		      (double)(pyx_target_pause_ns(py->tgt) - pause0) / 1e6;
out:
	free(x.c);
	free(x.maxend);
	free(x.sp);
	free(x.tids);
	pyx_census_free(c);
	free(local);
	if (err) {
		pyx_memory_free(r);
		return err;
	}
	*out = r;
	return 0;
}
