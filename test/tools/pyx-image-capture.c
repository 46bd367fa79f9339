/* Record a synthetic image (lib/target/image.h) from a live CPython, and
 * replay one: the fuzzer's seeds (test/fuzz/corpus) and the replay check
 * (test/integration/test_image_once.py).
 *
 * Usage:
 *   pyx-image-capture PID -o IMAGE [--type NAME] [--budget BYTES]
 *                     [--grain BYTES] [--layout MODE]
 *   pyx-image-capture --replay IMAGE [--type NAME]
 *
 * Capture attaches (pyx_target_open_pid, pyx_python_open), stops the target
 * for the whole capture, and runs the stacks walk, a census and refs of
 * --type on a recording target: a target over the live one whose memory
 * source records what the walkers read, in blocks of --grain bytes (8).
 * The image holds exactly what they read, so replaying it gives the same
 * results.  Then it resumes the target and writes the image with the facts.
 *
 * Seeds must stay small for the fuzzer: past --budget bytes recorded after
 * the stacks walk (40 KiB; 0: no bound) the recorder cuts the GC lists where the walk is
 * (the node read becomes its list's last, a list not begun yet is empty),
 * so the image is a smaller heap that is still consistent, and past four
 * times the budget it refuses new blocks as unmapped memory.
 *
 * Two details make the recording exact rather than page-sized:
 *  - the page cache asks its source for whole 4 KiB pages and, when one
 *    fails, for the bytes wanted: the recorder refuses a whole-page read
 *    once, and serves the retry;
 *  - the heap copy reads every writable mapping whole: the recording
 *    target shows the live maps as read-only, plus one writable page of
 *    its own, so the copy holds that page and every other read comes
 *    through the recorder.
 *
 * Both modes print the walkers' results in the same text form (stdout),
 * which the replay check compares.  Exit 0, or 1 with a message.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "abi.h"
#include "reader.h"
#include "facts.h"
#include "image.h"
#include "pyxray/census.h"
#include "pyxray/error.h"
#include "pyxray/heap.h"
#include "pyxray/memory.h"
#include "pyxray/python.h"
#include "pyxray/refs.h"
#include "pyxray/stacks.h"
#include "pyxray/tasks.h"
#include "pyxray/symbols.h"
#include "pyxray/target.h"
#include "target_private.h"

#define PAGE 4096u
/* The recording target's own writable mapping, past the end of user space
 * (no live mapping is there): all the heap copy holds.  The census bounds
 * its walk by the bytes copied (32 per object), hence its size. */
#define DUMMY_PAGE UINT64_C(0x800000000000)
#define DUMMY_LEN (UINT64_C(64) << 20)

/* ---- the recorder --------------------------------------------------------- */

struct block {
	uint64_t nr;     /* address / grain */
	size_t off;      /* its bytes in rec->store */
	unsigned flags;  /* PYX_IMAGE_* of its mapping */
	size_t map;      /* index of its mapping: ranges never span two */
};

struct rec {
	struct pyx_target *live;
	struct pyx_mem *live_mem;
	struct pyx_map *maps;   /* the live maps, read-only, + DUMMY_PAGE */
	size_t nmaps;
	pid_t *tids;
	pyx_addr_t *tls;
	size_t nthreads;
	pid_t pid;
	uint64_t grain;
	uint64_t soft, hard;    /* budgets in bytes (0: none)... */
	uint64_t base;          /* ...past what the stacks walk read */
	pyx_addr_t heads[64];   /* the GC list heads */
	size_t nheads;
	pyx_addr_t chain_head, chain_before; /* the list being walked */
	uint64_t heads_seen;    /* bit i: heads[i] was read */
	bool frozen;            /* the first walk is over: no more cuts */
	uint64_t cuts;          /* GC links rewritten */
	/* Recorded blocks: an open-addressing table of indices into v. */
	struct block *v;
	size_t n, cap;
	uint32_t *table;        /* index + 1, 0: empty */
	size_t tcap;            /* power of two */
	uint8_t *store;
	size_t store_len, store_cap;
	pyx_addr_t refused;     /* the whole page refused once */
	uint64_t refusals;      /* reads refused by the budget */
};

static size_t hash_slot(const struct rec *r, uint64_t nr)
{
	return (size_t)((nr * UINT64_C(0x9E3779B97F4A7C15)) >> 20) &
	       (r->tcap - 1);
}

static struct block *find_block(struct rec *r, uint64_t nr)
{
	for (size_t i = hash_slot(r, nr);; i = (i + 1) & (r->tcap - 1)) {
		uint32_t k = r->table[i];

		if (!k)
			return NULL;
		if (r->v[k - 1].nr == nr)
			return &r->v[k - 1];
	}
}

static int grow(struct rec *r)
{
	size_t ncap = r->tcap * 2;
	uint32_t *t = calloc(ncap, sizeof(*t));

	if (!t)
		return -1;
	free(r->table);
	r->table = t;
	r->tcap = ncap;
	for (size_t k = 0; k < r->n; k++) {
		size_t i = hash_slot(r, r->v[k].nr);

		while (r->table[i])
			i = (i + 1) & (r->tcap - 1);
		r->table[i] = (uint32_t)(k + 1);
	}
	return 0;
}

/* Read block nr from the live target and keep it. */
static struct block *add_block(struct rec *r, uint64_t nr)
{
	pyx_addr_t addr = nr * r->grain;
	const struct pyx_map *m = pyx_target_find_map(r->live, addr);
	struct block *b;
	size_t i;

	if (!m || !m->r || addr + r->grain > m->end)
		return NULL;
	if (r->n == r->cap) {
		size_t ncap = r->cap ? r->cap * 2 : 1024;
		struct block *v = realloc(r->v, ncap * sizeof(*v));

		if (!v)
			return NULL;
		r->v = v;
		r->cap = ncap;
	}
	if ((r->n + 1) * 2 > r->tcap && grow(r))
		return NULL;
	if (r->store_cap - r->store_len < r->grain) {
		size_t ncap = r->store_cap ? r->store_cap * 2 : 1 << 20;
		uint8_t *s = realloc(r->store, ncap);

		if (!s)
			return NULL;
		r->store = s;
		r->store_cap = ncap;
	}
	if (pyx_mem_read(r->live_mem, addr, r->store + r->store_len,
			 (size_t)r->grain))
		return NULL;
	b = &r->v[r->n];
	b->nr = nr;
	b->off = r->store_len;
	b->flags = (m->r ? PYX_IMAGE_R : 0) | (m->w ? PYX_IMAGE_W : 0) |
		   (m->x ? PYX_IMAGE_X : 0);
	b->map = (size_t)(m - pyx_target_maps(r->live, &i));
	r->store_len += r->grain;
	for (i = hash_slot(r, nr); r->table[i]; i = (i + 1) & (r->tcap - 1))
		;
	r->table[i] = (uint32_t)(++r->n);
	return b;
}

/* The store's copy of the 8-byte word at addr (8-aligned: one block), or
 * NULL if it was not recorded. */
static uint64_t *stored_word(struct rec *r, pyx_addr_t addr)
{
	struct block *b = find_block(r, addr / r->grain);

	return b ? (uint64_t *)(r->store + b->off + addr % r->grain) : NULL;
}

static int head_index(const struct rec *r, pyx_addr_t addr)
{
	for (size_t i = 0; i < r->nheads; i++)
		if (r->heads[i] == addr)
			return (int)i;
	return -1;
}

/* The heap walk reads each GC header ({_gc_next, _gc_prev}) as 16 bytes:
 * a list head, then nodes whose _gc_prev is the node before.  Past the
 * soft budget, the node read now becomes the list's last (its _gc_next
 * points back at the head) and a head read now starts an empty list, so
 * the image holds a smaller heap that is still consistent.  The first walk
 * (the census) decides: a head read twice means the next walk has begun,
 * and the lists are left as the first one saw them. */
static void gc_chain(struct rec *r, pyx_addr_t addr)
{
	uint64_t *next = stored_word(r, addr), *prev = stored_word(r, addr + 8);
	bool over = r->soft && r->store_len >= r->base + r->soft;
	int h = head_index(r, addr);

	if (!next || !prev || addr % 8 || r->frozen)
		return;
	if (h >= 0 && (r->heads_seen & (UINT64_C(1) << h))) {
		r->frozen = true;
		return;
	}
	if (h >= 0) {
		r->heads_seen |= UINT64_C(1) << h;
		r->chain_head = r->chain_before = addr;
		if (over && *next != addr) {
			*next = addr;
			r->cuts++;
		}
		return;
	}
	if (!r->chain_head || (*prev & ~(uint64_t)3) != r->chain_before)
		return;
	r->chain_before = addr;
	if (over && *next != r->chain_head) {
		*next = r->chain_head;
		r->cuts++;
	}
}

static int rec_read(void *ctx, pyx_addr_t addr, void *buf, size_t len)
{
	struct rec *r = ctx;
	uint8_t *dst = buf;
	uint64_t first, last, fresh = 0;

	if (addr >= DUMMY_PAGE && addr - DUMMY_PAGE < DUMMY_LEN &&
	    len <= DUMMY_LEN - (addr - DUMMY_PAGE)) {
		memset(buf, 0, len);
		return 0;
	}
	if (len == PAGE && addr % PAGE == 0 && r->refused != addr) {
		r->refused = addr;
		return pyx_err_set(PYX_E_BAD_MEMORY, "recorder: whole page");
	}
	r->refused = 0;
	if (!len || addr + len < addr)
		return pyx_err_set(PYX_E_BAD_MEMORY, "recorder: bad range");
	first = addr / r->grain;
	last = (addr + len - 1) / r->grain;
	for (uint64_t nr = first; nr <= last; nr++)
		fresh += !find_block(r, nr);
	if (fresh && r->hard &&
	    r->store_len + fresh * r->grain > r->base + r->hard) {
		r->refusals++;
		return pyx_err_set(PYX_E_BAD_MEMORY, "recorder: over budget");
	}
	for (uint64_t nr = first; nr <= last; nr++)
		if (!find_block(r, nr) && !add_block(r, nr))
			return pyx_err_set(PYX_E_BAD_MEMORY, "recorder: "
					   PYX_PRIaddr " unreadable",
					   nr * r->grain);
	if (len == 16)
		gc_chain(r, addr);
	for (uint64_t nr = first; nr <= last; nr++) {
		struct block *b = find_block(r, nr);
		pyx_addr_t bs = nr * r->grain;
		pyx_addr_t s = addr > bs ? addr : bs;
		pyx_addr_t e = addr + len < bs + r->grain ? addr + len :
							    bs + r->grain;

		memcpy(dst + (s - addr), r->store + b->off + (s - bs), e - s);
	}
	return 0;
}

static const struct pyx_map *rec_maps(void *ctx, size_t *n)
{
	struct rec *r = ctx;

	*n = r->nmaps;
	return r->maps;
}

static pid_t rec_pid(void *be)
{
	return ((struct rec *)be)->pid;
}

static const pid_t *rec_threads(void *be, size_t *n)
{
	struct rec *r = be;

	*n = r->nthreads;
	return r->tids;
}

static int rec_thread_tls(void *be, pid_t tid, pyx_addr_t *out)
{
	struct rec *r = be;

	for (size_t i = 0; i < r->nthreads; i++) {
		if (r->tids[i] == tid) {
			*out = r->tls[i];
			return 0;
		}
	}
	return pyx_err_set(PYX_E_NO_PROCESS, "no thread %d", (int)tid);
}

/* Freed by main, not by the target: the recording outlives it. */
static const struct pyx_target_ops rec_ops = {
	.name = "recorder",
	.kind = PYX_TARGET_IMAGE,
	.pid = rec_pid,
	.maps = rec_maps,
	.threads = rec_threads,
	.thread_tls = rec_thread_tls,
};

static char empty_path[] = "";

/* The GC list heads, as lib/heap/heap.c finds them: the ABI layer's lists
 * of each distinct GC state (3.8: the runtime's, shared). */
static void gc_heads(struct rec *r, struct pyx_python *py)
{
	pyx_addr_t interps[PYX_MAX_INTERPRETERS];
	struct pyx_gc_lists gl;
	size_t n = 0;

	if (pyx_python_interps(py, interps, PYX_MAX_INTERPRETERS, &n))
		n = 0;
	for (size_t i = 0; i < n; i++) {
		bool seen = false;

		if (pyx_abi_gc_lists(py, interps[i], &gl))
			continue;
		for (size_t j = 0; j < r->nheads; j++)
			seen |= r->heads[j] == gl.list[0].head;
		for (size_t l = 0; !seen && l < gl.n &&
				   r->nheads < PYX_ARRAY_SIZE(r->heads); l++)
			r->heads[r->nheads++] = gl.list[l].head;
	}
	pyx_err_clear();
}

/* With the live target stopped: its maps and threads, frozen. */
static int rec_init(struct rec *r, struct pyx_python *py, uint64_t grain,
		    uint64_t budget)
{
	const struct pyx_map *lm;
	const pid_t *tids;
	size_t n;

	struct pyx_target *live = pyx_python_target(py);

	memset(r, 0, sizeof(*r));
	gc_heads(r, py);
	r->live = live;
	r->live_mem = pyx_target_mem(live);
	r->pid = pyx_target_pid(live);
	r->grain = grain;
	r->soft = budget;
	r->hard = budget * 4; /* what the objects counted before the cut refer to */
	r->tcap = 4096;
	if (!(r->table = calloc(r->tcap, sizeof(*r->table))))
		return -PYX_E_NOMEM;
	lm = pyx_target_maps(live, &n);
	if (!(r->maps = calloc(n + 1, sizeof(*r->maps))))
		return -PYX_E_NOMEM;
	for (size_t i = 0; i < n; i++) {
		if (lm[i].end > DUMMY_PAGE)
			break;
		r->maps[r->nmaps] = lm[i];
		r->maps[r->nmaps].w = false; /* not copied: read through us */
		r->maps[r->nmaps].path = empty_path;
		r->nmaps++;
	}
	r->maps[r->nmaps++] = (struct pyx_map){ .start = DUMMY_PAGE,
						.end = DUMMY_PAGE + DUMMY_LEN,
						.r = true, .w = true, .p = true,
						.path = empty_path };
	tids = pyx_target_threads(live, &n);
	r->tids = calloc(n ? n : 1, sizeof(*r->tids));
	r->tls = calloc(n ? n : 1, sizeof(*r->tls));
	if (!r->tids || !r->tls)
		return -PYX_E_NOMEM;
	for (size_t i = 0; i < n; i++) {
		pyx_addr_t tls;

		if (pyx_target_thread_tls(live, tids[i], &tls))
			continue;
		r->tids[r->nthreads] = tids[i];
		r->tls[r->nthreads++] = tls;
	}
	pyx_err_clear();
	return 0;
}

static void rec_release(struct rec *r)
{
	free(r->maps);
	free(r->tids);
	free(r->tls);
	free(r->v);
	free(r->table);
	free(r->store);
}

static int cmp_block(const void *a, const void *b)
{
	const struct block *x = a, *y = b;

	return (x->nr > y->nr) - (x->nr < y->nr);
}

/* The blocks as image ranges: sorted, adjacent ones of one mapping merged
 * (their bytes moved next to each other in a new store). */
static int rec_save(struct rec *r, const char *path,
		    const struct pyx_image_info *info, size_t *nranges)
{
	struct pyx_image_range *ranges = NULL;
	struct pyx_image_thread *threads = NULL;
	uint8_t *data = NULL;
	size_t nr = 0, off = 0;
	int err = -PYX_E_NOMEM;

	qsort(r->v, r->n, sizeof(*r->v), cmp_block);
	if (!(data = malloc(r->store_len ? r->store_len : 1)) ||
	    !(ranges = calloc(r->n ? r->n : 1, sizeof(*ranges))) ||
	    !(threads = calloc(r->nthreads ? r->nthreads : 1,
			       sizeof(*threads))))
		goto out;
	for (size_t i = 0; i < r->n; i++) {
		const struct block *b = &r->v[i];

		memcpy(data + off, r->store + b->off, (size_t)r->grain);
		if (nr && b->nr > 0 && r->v[i - 1].nr == b->nr - 1 &&
		    r->v[i - 1].map == b->map) {
			ranges[nr - 1].len += r->grain;
		} else {
			ranges[nr++] = (struct pyx_image_range){
				b->nr * r->grain, r->grain, b->flags,
				data + off };
		}
		off += r->grain;
	}
	for (size_t i = 0; i < r->nthreads; i++)
		threads[i] = (struct pyx_image_thread){ r->tids[i], r->tls[i] };
	err = pyx_image_save(path, info, threads, r->nthreads, ranges, nr);
	*nranges = nr;
out:
	free(ranges);
	free(threads);
	free(data);
	return err;
}

/* ---- the walkers, and what they found -------------------------------------- */

/* While capturing: the budgets count from the end of the stacks walk. */
static struct rec *recording;

struct run_opts {
	const char *type;
	bool census, refs;
};

static void print_stacks(const struct pyx_stacks *s)
{
	printf("stacks: %zu threads\n", s->nthreads);
	for (size_t i = 0; i < s->nthreads; i++) {
		const struct pyx_thread *t = &s->threads[i];

		printf("thread 0x%llx native %lld interp %lld gil %d name %s "
		       "frames %zu error %s\n",
		       (unsigned long long)t->thread_id,
		       (long long)t->native_id, (long long)t->interp_id,
		       t->holds_gil, t->name ? t->name : "-", t->nframes,
		       t->error ? t->error : "-");
		for (size_t j = 0; j < t->nframes; j++)
			printf("  frame %s %s:%d\n", t->frames[j].function,
			       t->frames[j].file, t->frames[j].line);
	}
}

static void print_census(struct pyx_census *c)
{
	pyx_census_sort(c, PYX_CENSUS_BY_NAME);
	printf("census: objects %llu bytes %llu gc %llu reached %llu types %zu "
	       "bad_objects %llu bad_refs %llu\n",
	       (unsigned long long)c->objects, (unsigned long long)c->bytes,
	       (unsigned long long)c->gc_objects,
	       (unsigned long long)c->reached_objects, c->ntypes,
	       (unsigned long long)c->bad_objects,
	       (unsigned long long)c->bad_refs);
	for (size_t i = 0; i < c->ntypes; i++)
		printf("  type %s count %llu bytes %llu\n", c->types[i].name,
		       (unsigned long long)c->types[i].count,
		       (unsigned long long)c->types[i].bytes);
}

static void print_refs(const struct pyx_refs *r)
{
	printf("refs %s: objects %llu edges %llu roots %llu targets %llu "
	       "unreachable %llu too_deep %llu groups %zu unknown %d\n",
	       r->target, (unsigned long long)r->objects,
	       (unsigned long long)r->edges, (unsigned long long)r->roots,
	       (unsigned long long)r->targets,
	       (unsigned long long)r->unreachable,
	       (unsigned long long)r->too_deep, r->ngroups, r->unknown_type);
	for (size_t i = 0; i < r->ngroups; i++) {
		const struct pyx_refs_group *g = &r->groups[i];

		printf("  group count %llu bytes %llu root %s:",
		       (unsigned long long)g->count,
		       (unsigned long long)g->bytes, g->root ? g->root : "-");
		for (size_t j = 0; j < g->npath; j++)
			printf(" [%s %s]", g->path[j].type, g->path[j].edge);
		printf("\n");
	}
}

/* The error is part of the result; its detail (addresses, which differ
 * between a live target and its image) goes to stderr. */
static void report_error(const char *walker, int err)
{
	printf("%s: error %s\n", walker, pyx_strerror(err));
	fprintf(stderr, "pyx-image-capture: %s: %s\n", walker,
		pyx_err_detail());
}

/* Run the three walkers on py and print what they found; a walker's error
 * is printed too (it is part of the result to compare). */
static int run_walkers(struct pyx_python *py, const struct run_opts *o)
{
	struct pyx_stacks_opts so = { .max_depth = 256 };
	struct pyx_census_opts co = { .capture = { .max_copy = 1u << 30,
						   .retries = 1 } };
	struct pyx_refs_opts ro = { .type_name = o->type, .max_depth = 32,
				    .max_groups = 5, .max_referrers = 10,
				    .capture = co.capture };
	struct pyx_stacks *s = NULL;
	struct pyx_census *c = NULL;
	struct pyx_refs *r = NULL;
	int err, busy = 0;

	if ((err = pyx_stacks_collect(py, &so, &s)))
		report_error("stacks", err);
	else
		print_stacks(s);
	pyx_stacks_free(s);
	/* stacks --locals --async: the locals reader and the task walker
	 * (the fuzzer runs them too) */
	so.locals = so.tasks = true;
	s = NULL;
	if ((err = pyx_stacks_collect(py, &so, &s)))
		report_error("stacks --locals --async", err);
	else
		printf("stacks --locals --async: %zu threads, %zu tasks\n",
		       s->nthreads, s->tasks ? s->tasks->n : 0);
	pyx_stacks_free(s);
	if (recording)
		recording->base = recording->store_len;
	if (o->census) {
		if ((err = pyx_census_take(py, &co, &c)))
			report_error("census", err);
		else
			print_census(c);
		busy |= err == -PYX_E_GC_BUSY;
		pyx_census_free(c);
	}
	if (o->refs) {
		if ((err = pyx_refs_take(py, &ro, &r)))
			report_error("refs", err);
		else
			print_refs(r);
		busy |= err == -PYX_E_GC_BUSY;
		pyx_refs_free(r);
	}
	fflush(stdout);
	return busy;
}

/* ---- main ------------------------------------------------------------------ */

static int die(const char *what, int err)
{
	fprintf(stderr, "pyx-image-capture: %s: %s (%s)\n", what,
		pyx_strerror(err), pyx_err_detail());
	return 1;
}

static int replay(const char *path, const struct run_opts *o)
{
	struct pyx_image_info info;
	struct pyx_python_facts facts = { 0 };
	struct pyx_target *tgt;
	struct pyx_python *py;
	int err;

	if ((err = pyx_image_open_file(path, &tgt, &info)))
		return die(path, err);
	pyx_image_python_facts(&info, &facts);
	if ((err = pyx_python_open_facts(tgt, &facts, &py))) {
		pyx_target_free(tgt);
		return die("python", err);
	}
	if ((err = pyx_image_empty_elf(&py->elf))) {
		pyx_python_free(py);
		pyx_target_free(tgt);
		return die("elf", err);
	}
	run_walkers(py, o);
	pyx_python_free(py); /* frees the ELF */
	pyx_target_free(tgt);
	return 0;
}

static int capture(pid_t pid, const char *out, const struct run_opts *o,
		   uint64_t grain, uint64_t budget, int layout)
{
	struct pyx_python_opts popts = { .layout = layout };
	struct pyx_python_facts facts;
	struct pyx_image_info info;
	struct pyx_target *live = NULL, *rt = NULL;
	struct pyx_python *py = NULL, *rpy = NULL;
	struct rec r = { 0 };
	size_t nranges = 0;
	int err, ret = 1;

	if ((err = pyx_target_open_pid(pid, &live)))
		return die("attach", err);
	if ((err = pyx_python_open_opts(live, &popts, &py))) {
		ret = die("python", err);
		goto out;
	}
	pyx_python_get_facts(py, &facts);
	/* A collection running at the stop: let it finish, stop again. */
	for (int attempt = 0;; attempt++) {
		struct pyx_mem_source src = { 0 };
		struct pyx_mem *mem;
		bool busy;

		if ((err = pyx_target_stop(live, 2000))) {
			ret = die("stop", err);
			goto out;
		}
		if ((err = rec_init(&r, py, grain, budget))) {
			ret = die("recorder", err);
			goto out;
		}
		src.ctx = &r;
		src.maps = rec_maps;
		src.read = rec_read;
		src.pid = pid;
		if ((err = pyx_mem_new(&src, &mem)) ||
		    (err = pyx_target_new(&rec_ops, &r, mem, &rt)) ||
		    (err = pyx_python_open_facts(rt, &facts, &rpy)) ||
		    (err = pyx_image_empty_elf(&rpy->elf))) {
			ret = die("recording target", err);
			goto out;
		}
		recording = &r;
		printf("capture: pid %d python %s\n", (int)pid,
		       pyx_python_info(py)->version);
		busy = run_walkers(rpy, o);
		pyx_target_resume(live);
		if (!busy || attempt >= 5)
			break;
		pyx_python_free(rpy);
		pyx_target_free(rt);
		rpy = NULL;
		rt = NULL;
		rec_release(&r);
		printf("capture: the collector was running: again\n");
		usleep(20000);
	}
	if ((err = pyx_image_info_from_facts(&facts, pid, &info))) {
		ret = die("facts", err);
		goto out;
	}
	if ((err = rec_save(&r, out, &info, &nranges))) {
		ret = die(out, err);
		goto out;
	}
	fprintf(stderr, "pyx-image-capture: %s: %zu bytes of memory in %zu "
		"ranges, %zu threads, %llu GC links cut, %llu reads refused by "
		"the budget\n", out, r.store_len, nranges, r.nthreads,
		(unsigned long long)r.cuts, (unsigned long long)r.refusals);
	ret = 0;
out:
	pyx_python_free(rpy);
	pyx_target_free(rt);
	pyx_python_free(py);
	pyx_target_free(live); /* resumes it */
	rec_release(&r);
	return ret;
}

static void usage(void)
{
	fprintf(stderr,
		"usage: pyx-image-capture PID -o IMAGE [--type NAME] "
		"[--budget BYTES] [--grain BYTES] [--layout MODE] "
		"[--no-census] [--no-refs]\n"
		"       pyx-image-capture --replay IMAGE [--type NAME] "
		"[--no-census] [--no-refs]\n");
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "replay", required_argument, NULL, 'r' },
		{ "type", required_argument, NULL, 't' },
		{ "budget", required_argument, NULL, 'b' },
		{ "grain", required_argument, NULL, 'g' },
		{ "layout", required_argument, NULL, 'l' },
		{ "no-census", no_argument, NULL, 'C' },
		{ "no-refs", no_argument, NULL, 'R' },
		{ 0 }
	};
	struct run_opts o = { .type = "list", .census = true, .refs = true };
	const char *out = NULL, *img = NULL;
	unsigned long long budget = 40 << 10, grain = 8;
	int c, layout = PYX_LAYOUT_AUTO;
	long pid;

	while ((c = getopt_long(argc, argv, "o:", lo, NULL)) != -1) {
		switch (c) {
		case 'o':
			out = optarg;
			break;
		case 'r':
			img = optarg;
			break;
		case 't':
			o.type = optarg;
			break;
		case 'b':
			budget = strtoull(optarg, NULL, 0);
			break;
		case 'g':
			grain = strtoull(optarg, NULL, 0);
			break;
		case 'l':
			if ((layout = pyx_layout_mode_parse(optarg)) < 0) {
				usage();
				return 2;
			}
			break;
		case 'C':
			o.census = false;
			break;
		case 'R':
			o.refs = false;
			break;
		default:
			usage();
			return 2;
		}
	}
	/* Blocks never straddle a page, hence a mapping. */
	if (grain < 8 || grain > PAGE || PAGE % grain) {
		fprintf(stderr, "pyx-image-capture: --grain divides 4096\n");
		return 2;
	}
	if (img)
		return optind == argc ? replay(img, &o) : (usage(), 2);
	if (optind != argc - 1 || !out) {
		usage();
		return 2;
	}
	pid = strtol(argv[optind], NULL, 10);
	if (pid <= 0) {
		usage();
		return 2;
	}
	return capture((pid_t)pid, out, &o, grain, budget, layout);
}
