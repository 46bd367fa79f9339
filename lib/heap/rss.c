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
 * /proc/PID/smaps and pagemap are read here, by the PID: no target backend
 * has them yet (a live process only; a core or an image has no RSS).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/user.h>
#include <unistd.h>

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
	struct pyx_mem *mem;
	int pagemap;          /* fd, -1 */
	struct claim *c;
	size_t nc, capc;
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

/* /proc/PID/smaps: each mapping's header line and its Rss. */
static int read_smaps(int pid, struct vma **out, size_t *n)
{
	char path[64], *line = NULL;
	size_t cap = 0, len = 0, lcap = 0;
	struct vma *v = NULL;
	int err = 0;
	FILE *f;

	*out = NULL;
	*n = 0;
	snprintf(path, sizeof(path), "/proc/%d/smaps", pid);
	f = fopen(path, "re");
	if (!f)
		return pyx_err_set(errno == ENOENT ? PYX_E_EXITED : PYX_E_IO,
				   "%s: %s", path, strerror(errno));
	while (getline(&line, &lcap, f) > 0) {
		unsigned long long s, e, kb;
		char perms[8];
		int pos = 0;

		if (sscanf(line, "%llx-%llx %7s %*s %*s %*s %n", &s, &e, perms,
			   &pos) >= 3 && pos > 0) {
			char *p = line + pos, *nl = strchr(p, '\n');

			if (nl)
				*nl = 0;
			if (len == cap) {
				size_t nc = cap ? cap * 2 : 256;
				struct vma *nv;

				if (nc > MAX_VMAS ||
				    !(nv = realloc(v, nc * sizeof(*v)))) {
					err = -PYX_E_NOMEM;
					goto out;
				}
				v = nv;
				cap = nc;
			}
			memset(&v[len], 0, sizeof(v[len]));
			v[len].start = s;
			v[len].end = e;
			snprintf(v[len].perms, sizeof(v[len].perms), "%.4s", perms);
			v[len].path = strdup(p);
			if (!v[len].path) {
				err = -PYX_E_NOMEM;
				goto out;
			}
			len++;
		} else if (len && sscanf(line, "Rss: %llu kB", &kb) == 1) {
			v[len - 1].rss = (uint64_t)kb * 1024;
		}
	}
out:
	free(line);
	fclose(f);
	if (err) {
		free_vmas(v, len);
		return err;
	}
	*out = v;
	*n = len;
	return 0;
}

/* Resident pages of [s, e) from the page map; -1 if it cannot be read. */
static int64_t resident(struct ctx *x, pyx_addr_t s, pyx_addr_t e)
{
	uint64_t buf[512], total = 0;

	if (x->pagemap < 0)
		return -1;
	s &= ~(uint64_t)(PAGE - 1);
	while (s < e) {
		uint64_t pages = (e - s + PAGE - 1) / PAGE;
		size_t k = pages < 512 ? (size_t)pages : 512;
		ssize_t got = pread(x->pagemap, buf, k * 8, (off_t)(s / PAGE * 8));

		if (got != (ssize_t)(k * 8))
			return -1;
		for (size_t i = 0; i < k; i++)
			total += (buf[i] >> 63) & 1;
		s += (uint64_t)k * PAGE;
	}
	return (int64_t)(total * PAGE);
}

static bool page_resident(struct ctx *x, pyx_addr_t p)
{
	uint64_t e;

	if (x->pagemap < 0)
		return true;
	if (pread(x->pagemap, &e, 8, (off_t)(p / PAGE * 8)) != 8)
		return true;
	return (e >> 63) & 1;
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

/* An anonymous mapping: its claims' resident bytes, the rest unexplained. */
static void place_anon(struct ctx *x, const struct vma *v)
{
	struct pyx_memory_report *r = x->r;
	uint64_t placed = 0, share[5] = { 0 };
	bool exact = true;

	for (size_t i = 0; i < x->nc; i++) {
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

	if ((err = read_smaps(r->pid, &v, &nv)))
		return err;
	for (size_t i = 0; i < r->pymalloc.narena_addr; i++)
		if ((err = claim(x, r->pymalloc.arena_addr[i],
				 r->pymalloc.arena_addr[i] + r->pymalloc.arena_size,
				 K_PYMALLOC)))
			goto out;
	for (size_t i = 0; i < r->malloc.nheaps; i++)
		if ((err = claim(x, r->malloc.heaps[i].start,
				 r->malloc.heaps[i].end, K_HEAP)))
			goto out;
	qsort(x->c, x->nc, sizeof(*x->c), cmp_claim);
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
		qsort(x->c, x->nc, sizeof(*x->c), cmp_claim);
	}
	r->resident_exact = x->pagemap >= 0;
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
	struct ctx x = { .pagemap = -1 };
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
	r->pid = (int)pyx_target_pid(py->tgt);
	snprintf(r->python_version, sizeof(r->python_version), "%s",
		 py->info.version);
	r->rss_bytes = r->vmrss_bytes = -1;
	if (o->no_objects) {
		snprintf(r->objects_why, sizeof(r->objects_why),
			 "not counted (--no-objects)");
	} else {
		struct pyx_census_opts co = { .capture = o->capture };

		err = pyx_census_take(py, &co, &c);
		if (err && fatal(err))
			goto out;
		if (err) {
			why(r->objects_why, sizeof(r->objects_why),
			    "the census failed");
			err = 0;
		} else {
			r->objects_available = true;
			r->objects = c->objects;
			r->objects_bytes = c->bytes;
			r->gc_objects = c->gc_objects;
			r->gc_bytes = c->gc_bytes;
			r->objects_partial = c->partial;
			r->census_pause_ms = c->pause_ms;
		}
	}
	pause0 = pyx_target_pause_ns(py->tgt);
	if (live) {
		char path[64];

		snprintf(path, sizeof(path), "/proc/%d/pagemap", r->pid);
		x.pagemap = open(path, O_RDONLY | O_CLOEXEC);
		if ((err = pyx_target_stop(py->tgt, o->capture.deadline_ms)))
			goto out;
#ifdef PYX_TEST_HOOKS
		if (o->capture.hold_ms > 0)
			usleep((useconds_t)o->capture.hold_ms * 1000);
#endif
		if ((err = pyx_target_refresh_maps(py->tgt)))
			goto resume;
	}
	if ((err = pyx_pymalloc_read(py, &r->pymalloc))) {
		if (fatal(err))
			goto resume;
		r->pymalloc.available = false;
		why(r->pymalloc.why, sizeof(r->pymalloc.why),
		    "pymalloc's state cannot be read");
		pyx_pymalloc_free(&r->pymalloc);
	}
	if ((err = pyx_cmalloc_read(py->tgt, o->debug_dir, &r->malloc)))
		goto resume;
	if (!live) {
		snprintf(r->maps_why, sizeof(r->maps_why), "not a live process: "
			 "no /proc/PID/smaps");
		goto resume;
	}
	r->vmrss_bytes = pyx_target_rss_bytes(py->tgt);
	if ((err = stack_pointers(&x, py->tgt)))
		goto resume;
	if ((err = place(&x))) {
		if (fatal(err))
			goto resume;
		why(r->maps_why, sizeof(r->maps_why), "smaps");
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
	if (x.pagemap >= 0)
		close(x.pagemap);
	free(x.c);
	free(x.sp);
	free(x.tids);
	pyx_census_free(c);
	if (err) {
		pyx_memory_free(r);
		return err;
	}
	*out = r;
	return 0;
}
