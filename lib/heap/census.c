/* pyx_census_take: stop, copy the heap, resume, count the copy. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include "pyxray/census.h"
#include "internal.h"
#include "pyxray/heap.h"
#include "referents.h"

/* No container in a sane heap is bigger; a bigger one is corrupt. */
#define MAX_ITEMS (1u << 28)

/* A set of addresses (the untracked objects counted so far): open
 * addressing, 0 is empty, at most half full. */
struct addr_set {
	uint64_t *v;
	size_t cap, n;
};

static inline size_t addr_hash(uint64_t a, size_t cap)
{
	return (size_t)(((a >> 4) * UINT64_C(0x9E3779B97F4A7C15)) >> 17) &
	       (cap - 1);
}

static int set_grow(struct addr_set *s)
{
	size_t cap = s->cap ? s->cap * 2 : 1u << 10;
	uint64_t *v = calloc(cap, sizeof(*v));

	if (!v)
		return -PYX_E_NOMEM;
	for (size_t i = 0; i < s->cap; i++) {
		size_t h;

		if (!s->v[i])
			continue;
		for (h = addr_hash(s->v[i], cap); v[h]; h = (h + 1) & (cap - 1))
			;
		v[h] = s->v[i];
	}
	free(s->v);
	s->v = v;
	s->cap = cap;
	return 0;
}

/* 1 if added, 0 if present, or an error. */
static inline int set_add(struct addr_set *s, uint64_t a)
{
	size_t h;
	int err;

	if ((s->n + 1) * 2 > s->cap && (err = set_grow(s)))
		return err;
	for (h = addr_hash(a, s->cap); s->v[h]; h = (h + 1) & (s->cap - 1))
		if (s->v[h] == a)
			return 0;
	s->v[h] = a;
	s->n++;
	return 1;
}

struct counts {
	uint64_t tracked, tracked_bytes, reached, reached_bytes;
};

struct shared;

/* One thread's walk: its own counts, stack and type cache; with several
 * threads, what they share is in *sh (NULL with one). */
struct walk {
	struct shared *sh;
	struct pyx_python *py;
	struct pyx_types *types;
	const struct pyx_size_rules *rules;
	struct counts *c;
	size_t nc;
	struct addr_set seen;
	uint64_t *stack; /* reached containers still to expand */
	size_t nstack, capstack;
	bool tracked_only;
	uint64_t bad_objects, bad_refs;
	unsigned ticks; /* expansions since the last look at sh->e.err */
	struct pyx_type_cache tcache;
};

static int counts_grow(struct walk *w, size_t id)
{
	size_t nc = w->nc ? w->nc * 2 : 1024;
	struct counts *c;

	while (nc <= id)
		nc *= 2;
	c = realloc(w->c, nc * sizeof(*c));
	if (!c)
		return -PYX_E_NOMEM;
	memset(c + w->nc, 0, (nc - w->nc) * sizeof(*c));
	w->c = c;
	w->nc = nc;
	return 0;
}

static inline int counts_for(struct walk *w, const struct pyx_typeinfo *ti,
			     struct counts **out)
{
	int err;

	if (ti->id >= w->nc && (err = counts_grow(w, ti->id)))
		return err;
	*out = &w->c[ti->id];
	return 0;
}

#define SEEN_BIT (UINT64_C(1) << 63)

static inline int type_info(struct walk *w, pyx_addr_t tp,
			    const struct pyx_typeinfo **ti)
{
	return pyx_types_get_cached(w->types, &w->tcache, tp, ti);
}

static int type_of(struct walk *w, pyx_addr_t obj,
		   const struct pyx_typeinfo **ti)
{
	uint64_t tp;
	int err;

	if ((err = pyx_heap_obj_type(w->py, obj, &tp)))
		return err;
	return type_info(w, tp, ti);
}

/* What the walk needs of a referent's head: its type, whether the GC
 * tracks it, and whether it was counted already.  One look-up in the copy
 * covers [obj - 16, obj + 16): PyGC_Head (if any), ob_refcnt, ob_type. */
struct head {
	uint64_t *w;   /* the copy of obj - 16, or NULL */
	uint64_t tp;
};

static int read_head(struct walk *w, pyx_addr_t obj, struct head *h)
{
	int err;

	if (obj & 7)
		return pyx_err_set(PYX_E_BAD_MEMORY, "object " PYX_PRIaddr
				   " is not aligned", obj);
	h->w = pyx_heap_wwords(w->py->mem, obj - 16, 32);
	if (h->w) {
		h->tp = h->w[3];
		return 0;
	}
	if ((err = pyx_read_field(w->py, obj, PYX_L_OB_TYPE, &h->tp)))
		return err;
	return 0;
}

/* Whether a referent is on a GC list (then the walk counts it). */
static bool is_tracked(struct walk *w, pyx_addr_t obj,
		       const struct pyx_typeinfo *ti, const struct head *h)
{
	uint64_t next;

	if (!ti->gc)
		return false;
	if (ti->kind == PYX_K_TYPE) {
		const struct pyx_typeinfo *self;

		/* Static types have no PyGC_Head in front of them. */
		if (type_info(w, obj, &self) ||
		    !(self->flags & PYX_TPFLAGS_HEAPTYPE))
			return false;
	}
	if (h->w)
		next = h->w[0];
	else if (pyx_mem_read_u64(w->py->mem, obj - 16, &next))
		return false;
	return next != 0;
}

/* Count each untracked object once: 1 the first time, 0 after.  Objects
 * in the heap copy carry the mark in their copied ob_refcnt (bit 63, which
 * no refcount reaches in 3.8-3.13; in 3.14+'s split refcount the top bit of
 * ob_flags, which CPython leaves unused (IMMORTAL 1, STATICALLY_ALLOCATED
 * 4) and the u32 count excludes): no table, no extra cache miss.  The few
 * outside the copy go to a set.  Nothing reads a count from the copy after
 * the census marks it (the refs walker takes a copy of its own, and writes
 * its node ids there, after decoding the refcount). */
static int shared_mark(struct walk *w, pyx_addr_t obj, uint64_t *rc);

static inline int mark(struct walk *w, pyx_addr_t obj, struct head *h)
{
	uint64_t *rc = h->w ? &h->w[2] : pyx_heap_wwords(w->py->mem, obj, 8);

	if (w->sh)
		return shared_mark(w, obj, rc);
	if (!rc)
		return set_add(&w->seen, obj);
	if (*rc & SEEN_BIT)
		return 0;
	*rc |= SEEN_BIT;
	return 1;
}

static bool has_referents(enum pyx_kind k)
{
	return k != PYX_K_STR && k != PYX_K_BYTES && k != PYX_K_INT &&
	       k != PYX_K_FLOAT && k != PYX_K_BYTEARRAY;
}

/* A damaged object: counted once, its referents skipped, the walk goes
 * on.  Running out of memory or the process ends the walk. */
static int damaged(struct walk *w, int err, pyx_addr_t obj,
		   const struct pyx_typeinfo *ti, bool *bad)
{
	if (err == -PYX_E_NOMEM || err == -PYX_E_EXITED)
		return err;
	pyx_debug("object " PYX_PRIaddr " (%s): %s", obj,
		  ti ? ti->name : "no type", pyx_err_detail());
	pyx_err_clear();
	if (!*bad)
		w->bad_objects++;
	*bad = true;
	return 0;
}

static int on_ref(void *ctx, const struct pyx_ref *r)
{
	struct walk *w = ctx;
	const struct pyx_typeinfo *ti;
	struct counts *c;
	struct head h;
	uint64_t size;
	bool bad = false;
	int err;

	if (r->target & 7) {
		w->bad_refs++;
		return 0;
	}
	if ((err = read_head(w, r->target, &h)) ||
	    (err = type_info(w, h.tp, &ti))) {
		if (err == -PYX_E_NOMEM || err == -PYX_E_EXITED)
			return err;
		w->bad_refs++;
		return 0;
	}
	if (is_tracked(w, r->target, ti, &h))
		return 0;
	if ((err = mark(w, r->target, &h)) <= 0)
		return err;
	if ((err = pyx_obj_sizeof(w->py, w->rules, r->target, ti, &size))) {
		if ((err = damaged(w, err, r->target, ti, &bad)))
			return err;
		size = ti->basicsize + ti->preheader;
	}
	if ((err = counts_for(w, ti, &c)))
		return err;
	c->reached++;
	c->reached_bytes += size;
	if (!has_referents(ti->kind))
		return 0;
	if (w->nstack == w->capstack) {
		size_t cap = w->capstack ? w->capstack * 2 : 4096;
		uint64_t *s = realloc(w->stack, cap * sizeof(*s));

		if (!s)
			return -PYX_E_NOMEM;
		w->stack = s;
		w->capstack = cap;
	}
	/* bit 0 (objects are aligned): already counted as damaged */
	w->stack[w->nstack++] = r->target | bad;
	return 0;
}

static bool stopped(struct shared *sh);
#define STOPPED 1 /* a walk's return: stopped for another thread's error */

/* Referents of obj (bad: already counted as damaged), then of every
 * untracked container found under it. */
static inline __attribute__((always_inline)) int
expand(struct walk *w, pyx_addr_t obj, const struct pyx_typeinfo *ti,
		  bool bad)
{
	int err = pyx_referents(w->types, obj, ti, MAX_ITEMS, on_ref, w);

	for (;;) {
		if (err && (err = damaged(w, err, obj, ti, &bad)))
			return err;
		if (!w->nstack)
			return 0;
		/* Another thread failed: stop soon, even inside a big tree. */
		if (w->sh && !(++w->ticks & 1023) && stopped(w->sh))
			return STOPPED;
		obj = w->stack[--w->nstack];
		bad = obj & 1;
		obj &= ~(uint64_t)1;
		ti = NULL;
		if ((err = type_of(w, obj, &ti)))
			continue;
		err = pyx_referents(w->types, obj, ti, MAX_ITEMS, on_ref, w);
	}
}

/* Count a tracked object; *ti stays NULL if it has no type (damaged). */
static inline __attribute__((always_inline)) int
count_tracked(struct walk *w, pyx_addr_t obj,
			 const struct pyx_typeinfo **ti, bool *bad)
{
	struct counts *c;
	uint64_t size;
	int err;

	if ((err = type_of(w, obj, ti))) {
		*ti = NULL;
		return damaged(w, err, obj, NULL, bad);
	}
	if ((err = pyx_obj_sizeof(w->py, w->rules, obj, *ti, &size))) {
		if ((err = damaged(w, err, obj, *ti, bad)))
			return err;
		size = (*ti)->basicsize + (*ti)->preheader;
	}
	if ((err = counts_for(w, *ti, &c)))
		return err;
	c->tracked++;
	c->tracked_bytes += size;
	return 0;
}

static int on_tracked(void *ctx, pyx_addr_t obj, const struct pyx_heap_where *where)
{
	struct walk *w = ctx;
	const struct pyx_typeinfo *ti = NULL;
	bool bad = false;
	int err;

	(void)where;
	if ((err = count_tracked(w, obj, &ti, &bad)) || !ti || w->tracked_only)
		return err;
	return expand(w, obj, ti, bad);
}

/* ---- on several threads ------------------------------------------------ */

/* The calling thread walks the GC lists and counts the tracked objects
 * (the list's links are next to them: one cache miss a node), and hands
 * them in chunks, in list order, to every thread (itself included) to
 * count what they reach.  Handing the walk itself out does not pay: a
 * linked list is followed one miss at a time, and the object's memory
 * would then be fetched twice (measured: 10% more CPU).  The counts of a
 * type do not depend on who counts: each untracked object is counted by
 * the one thread that marks it first (an atomic or on its copied
 * ob_refcnt), with the size it has for everyone, and the rows are merged
 * by type name at the end. */
#define CHUNK 4096         /* objects: 32 KiB, a few ms of counting */
#define QUEUED_PER_JOB 4   /* over this, the list walker counts a chunk */
/* Below this a default census counts on one thread: a small heap is
 * counted in a few ms, less than starting threads is worth (and fuzzing
 * runs thousands of them). */
#define PARALLEL_MIN_HEAP (UINT64_C(32) << 20)

struct chunk {
	size_t n;
	uint64_t obj[CHUNK];
};

struct shared {
	pthread_mutex_t lock;
	pthread_cond_t more;   /* a chunk queued, the end, or an error */
	struct chunk **q;      /* a ring of qcap */
	size_t qcap, qhead, qn;
	bool done;             /* the list walk has queued its last chunk */
	struct pyx_share_err e; /* the first error (e.err atomic) */
	pthread_mutex_t seen_lock;
	struct addr_set seen;  /* untracked objects outside the copy */
	struct chunk *fill;    /* the chunk the list walk is filling */
	struct walk *walks;    /* [0]: the calling thread */
	uint64_t max;          /* the list walk's bound */
	struct pyx_heap_stats *hs;
#ifdef PYX_TEST_HOOKS
	unsigned fail_at;      /* PYX_TEST_CENSUS_FAIL: the chunk that fails */
	unsigned chunks;       /* atomic: chunks started */
#endif
};

static bool stopped(struct shared *sh)
{
	return __atomic_load_n(&sh->e.err, __ATOMIC_RELAXED) != 0;
}

/* Record the first error and wake every thread that waits for work. */
static void fail(struct shared *sh, int err)
{
	int zero = 0;

	pthread_mutex_lock(&sh->lock);
	if (__atomic_compare_exchange_n(&sh->e.err, &zero, err, false,
					__ATOMIC_RELAXED, __ATOMIC_RELAXED))
		snprintf(sh->e.detail, sizeof(sh->e.detail), "%s",
			 pyx_err_detail());
	pthread_cond_broadcast(&sh->more);
	pthread_mutex_unlock(&sh->lock);
}

static int shared_mark(struct walk *w, pyx_addr_t obj, uint64_t *rc)
{
	struct shared *sh = w->sh;
	int r;

	if (!rc) {
		pthread_mutex_lock(&sh->seen_lock);
		r = set_add(&sh->seen, obj);
		pthread_mutex_unlock(&sh->seen_lock);
		return r;
	}
	/* Most objects are reached once: a plain load first spares the
	 * locked instruction for those seen already. */
	if (__atomic_load_n(rc, __ATOMIC_RELAXED) & SEEN_BIT)
		return 0;
	return !(__atomic_fetch_or(rc, SEEN_BIT, __ATOMIC_RELAXED) & SEEN_BIT);
}

/* Expand the chunk's objects (counted by the list walk): 0, STOPPED, or
 * an error (negative). */
static int count_chunk(struct walk *w, const struct chunk *ch)
{
	const struct pyx_typeinfo *ti;
	int err;

#ifdef PYX_TEST_HOOKS
	/* Test hook: one thread runs out of memory (the others must stop,
	 * and the error and its detail come back from the call). */
	if (w->sh->fail_at && __atomic_add_fetch(&w->sh->chunks, 1,
			__ATOMIC_RELAXED) == w->sh->fail_at)
		return pyx_err_set(PYX_E_NOMEM, "test hook: a census thread "
				   "ran out of memory at chunk %u",
				   w->sh->fail_at);
#endif
	for (size_t i = 0; i < ch->n; i++) {
		pyx_addr_t obj = ch->obj[i] & ~(uint64_t)1;

		if (stopped(w->sh))
			return STOPPED;
		/* The list walk read this type, and it is in the table:
		 * this cannot fail but for want of memory. */
		if ((err = type_of(w, obj, &ti))) {
			if (err == -PYX_E_NOMEM || err == -PYX_E_EXITED)
				return err;
			pyx_err_clear();
			continue;
		}
		if ((err = expand(w, obj, ti, ch->obj[i] & 1)))
			return err;
	}
	return 0;
}

/* Count chunks until there are no more (or an error). */
static void *worker(void *arg)
{
	struct walk *w = arg;
	struct shared *sh = w->sh;

	for (;;) {
		struct chunk *ch;
		int err;

		pthread_mutex_lock(&sh->lock);
		while (!sh->qn && !sh->done && !stopped(sh))
			pthread_cond_wait(&sh->more, &sh->lock);
		if (!sh->qn || stopped(sh)) {
			pthread_mutex_unlock(&sh->lock);
			return NULL;
		}
		ch = sh->q[sh->qhead];
		sh->qhead = (sh->qhead + 1) % sh->qcap;
		sh->qn--;
		pthread_mutex_unlock(&sh->lock);
		err = count_chunk(w, ch);
		free(ch);
		if (err < 0)
			fail(sh, err);
		if (err)
			return NULL;
	}
}

/* Queue the full chunk; with the queue full (the counting lags behind
 * the list walk), count it here: the chunks in memory stay bounded. */
static int submit(struct shared *sh)
{
	struct chunk *ch = sh->fill, *next;
	int err;

	if (stopped(sh))
		return STOPPED;
	if (!ch->n)
		return 0;
	pthread_mutex_lock(&sh->lock);
	if (sh->qn < sh->qcap && (next = malloc(sizeof(*next)))) {
		sh->q[(sh->qhead + sh->qn) % sh->qcap] = ch;
		sh->qn++;
		pthread_cond_signal(&sh->more);
		pthread_mutex_unlock(&sh->lock);
		next->n = 0;
		sh->fill = next;
		return 0;
	}
	pthread_mutex_unlock(&sh->lock);
	err = count_chunk(&sh->walks[0], ch);
	ch->n = 0;
	return err;
}

/* The list walker counts each tracked object (its memory is in its cache
 * now: the list's links are next to it) and queues it to be expanded. */
static int on_tracked_queue(void *ctx, pyx_addr_t obj,
			    const struct pyx_heap_where *where)
{
	struct shared *sh = ctx;
	const struct pyx_typeinfo *ti = NULL;
	bool bad = false;
	int err;

	(void)where;
	if ((err = count_tracked(&sh->walks[0], obj, &ti, &bad)) || !ti)
		return err;
	sh->fill->obj[sh->fill->n++] = obj | bad;
	return sh->fill->n == CHUNK ? submit(sh) : 0;
}

/* Add b's counts to a's. */
static int merge(struct walk *a, const struct walk *b)
{
	int err;

	if (b->nc > a->nc && (err = counts_grow(a, b->nc - 1)))
		return err;
	for (size_t i = 0; i < b->nc; i++) {
		a->c[i].tracked += b->c[i].tracked;
		a->c[i].tracked_bytes += b->c[i].tracked_bytes;
		a->c[i].reached += b->c[i].reached;
		a->c[i].reached_bytes += b->c[i].reached_bytes;
	}
	a->bad_objects += b->bad_objects;
	a->bad_refs += b->bad_refs;
	return 0;
}

/* One share of pyx_parallel(): the calling thread walks the lists, then
 * counts with the others. */
static void run_share(void *arg)
{
	struct walk *w = arg;
	struct shared *sh = w->sh;
	int err;

	if (w != &sh->walks[0]) {
		worker(w);
		return;
	}
	err = pyx_heap_walk(w->py, sh->max, on_tracked_queue, sh, sh->hs);
	if (!err)
		err = submit(sh);
	if (err < 0)
		fail(sh, err);
	pthread_mutex_lock(&sh->lock);
	sh->done = true;
	pthread_cond_broadcast(&sh->more);
	pthread_mutex_unlock(&sh->lock);
	if (!err)
		worker(w);
}

/* pyx_heap_walk() with on_tracked on jobs threads (the calling one
 * included); the counts end in *w. */
static int walk_threads(struct walk *w, unsigned jobs, uint64_t max,
			struct pyx_heap_stats *hs)
{
	struct shared sh = { .qcap = (size_t)jobs * QUEUED_PER_JOB,
			     .max = max, .hs = hs };
	int err = 0, werr;

	sh.walks = calloc(jobs, sizeof(*sh.walks));
	sh.q = calloc(sh.qcap, sizeof(*sh.q));
	sh.fill = malloc(sizeof(*sh.fill));
	if (!sh.walks || !sh.q || !sh.fill) {
		free(sh.walks);
		free(sh.q);
		free(sh.fill);
		return -PYX_E_NOMEM;
	}
	sh.fill->n = 0;
#ifdef PYX_TEST_HOOKS
	if (getenv("PYX_TEST_CENSUS_FAIL"))
		sh.fail_at = (unsigned)atoi(getenv("PYX_TEST_CENSUS_FAIL"));
#endif
	pthread_mutex_init(&sh.lock, NULL);
	pthread_mutex_init(&sh.seen_lock, NULL);
	pthread_cond_init(&sh.more, NULL);
	for (unsigned i = 0; i < jobs; i++)
		sh.walks[i] = (struct walk){ .sh = &sh, .py = w->py,
			.types = w->types, .rules = w->rules,
			.tracked_only = w->tracked_only };
	/* Every thread has joined on return, errors included. */
	pyx_parallel(jobs, run_share, sh.walks, sizeof(*sh.walks));

	/* The first error of any thread, with its detail (per thread). */
	err = pyx_share_err_raise(&sh.e);
	for (unsigned i = 0; i < jobs; i++) {
		if (!err && (werr = merge(w, &sh.walks[i])))
			err = werr;
		free(sh.walks[i].c);
		free(sh.walks[i].stack);
	}
	while (sh.qn) {
		free(sh.q[sh.qhead]);
		sh.qhead = (sh.qhead + 1) % sh.qcap;
		sh.qn--;
	}
	pthread_cond_destroy(&sh.more);
	pthread_mutex_destroy(&sh.seen_lock);
	pthread_mutex_destroy(&sh.lock);
	free(sh.seen.v);
	free(sh.fill);
	free(sh.q);
	free(sh.walks);
	return err;
}

/* Stop until the collector is idle, copy the heap, resume. */
static int copy_heap(struct pyx_python *py, const struct pyx_census_opts *o,
		     struct pyx_census *c)
{

	struct pyx_heap_capture_info ci;
	int err = pyx_heap_capture(py, &o->capture, &ci);

	c->attempts = ci.attempts;
	if (err)
		return err;
	c->rss_bytes = ci.rss_bytes;
	/* The census's moment is the stop, not its start: reserving the
	 * copy buffer before it can take long on a loaded host. */
	if (ci.time > 0)
		c->time = ci.time;
	c->copied_bytes = ci.copied_bytes;
	c->buffer_ms = ci.buffer_ms;
	c->heap_bytes = ci.heap_bytes;
	c->copy_reads = ci.copy_reads;
	c->truncated = ci.truncated;
	c->nonblocking = ci.nonblocking;
	c->skipped_bytes = ci.skipped_bytes;
	return 0;
}

static int cmp_name(const void *a, const void *b)
{
	return strcmp(((const struct pyx_census_type *)a)->name,
		      ((const struct pyx_census_type *)b)->name);
}

/* One row per type name (two classes may share one), with totals. */
static int collect(struct walk *w, struct pyx_census *c)
{
	size_t n = 0, out = 0;

	for (size_t i = 0; i < w->nc; i++)
		n += w->c[i].tracked || w->c[i].reached;
	c->types = calloc(n ? n : 1, sizeof(*c->types));
	if (!c->types)
		return -PYX_E_NOMEM;
	for (size_t i = 0; i < w->nc; i++) {
		const struct counts *k = &w->c[i];
		struct pyx_census_type *t;

		if (!k->tracked && !k->reached)
			continue;
		t = &c->types[c->ntypes++];
		t->name = strdup(pyx_types_at(w->types, i)->name);
		if (!t->name)
			return -PYX_E_NOMEM;
		t->tracked = k->tracked;
		t->tracked_bytes = k->tracked_bytes;
		t->reached = k->reached;
		t->reached_bytes = k->reached_bytes;
	}
	qsort(c->types, c->ntypes, sizeof(*c->types), cmp_name);
	for (size_t i = 0; i < c->ntypes; i++) {
		struct pyx_census_type *t = &c->types[i];

		if (out && strcmp(c->types[out - 1].name, t->name) == 0) {
			struct pyx_census_type *m = &c->types[out - 1];

			m->tracked += t->tracked;
			m->tracked_bytes += t->tracked_bytes;
			m->reached += t->reached;
			m->reached_bytes += t->reached_bytes;
			free(t->name);
		} else {
			c->types[out++] = *t;
		}
	}
	c->ntypes = out;
	for (size_t i = 0; i < c->ntypes; i++) {
		struct pyx_census_type *t = &c->types[i];

		t->count = t->tracked + t->reached;
		t->bytes = t->tracked_bytes + t->reached_bytes;
		c->gc_objects += t->tracked;
		c->gc_bytes += t->tracked_bytes;
		c->reached_objects += t->reached;
		c->reached_bytes += t->reached_bytes;
	}
	c->objects = c->gc_objects + c->reached_objects;
	c->bytes = c->gc_bytes + c->reached_bytes;
	return 0;
}

int pyx_census_take(struct pyx_python *py, const struct pyx_census_opts *opts,
		    struct pyx_census **out)
{
	struct pyx_census_opts o = opts ? *opts : (struct pyx_census_opts){ 0 };
	struct walk w = { .py = py };
	struct pyx_heap_stats hs;
	struct pyx_census *c;
	struct timeval tv;
	uint64_t pause0 = pyx_target_pause_ns(py->tgt), t0, arenas;
	unsigned jobs;
	int err;

	*out = NULL;
	c = calloc(1, sizeof(*c));
	if (!c)
		return -PYX_E_NOMEM;
	c->pid = (int)pyx_target_pid(py->tgt);
	snprintf(c->python_version, sizeof(c->python_version), "%s",
		 py->info.version);
	snprintf(c->python_binary, sizeof(c->python_binary), "%s",
		 py->info.binary);
	gettimeofday(&tv, NULL);
	c->time = (double)tv.tv_sec + (double)tv.tv_usec / 1e6;
	c->rss_bytes = -1;
	c->arena_bytes = -1;

	/* The copy and its buffer's faults on as many threads as the
	 * counting (capture.jobs): --jobs 1 means one thread in all. */
	err = copy_heap(py, &o, c);
	c->pause_ms = (double)(pyx_target_pause_ns(py->tgt) - pause0) / 1e6;
	if (err)
		goto out;
	t0 = pyx_now_ns();
	if (pyx_heap_arena_bytes(py, &arenas) == 0)
		c->arena_bytes = (int64_t)arenas;
	pyx_err_clear();
	if ((err = pyx_types_new(py, &w.types)))
		goto out;
	w.rules = pyx_types_rules(w.types);
	w.tracked_only = o.tracked_only;
	c->tracked_only = o.tracked_only;
	/* Several threads only on a copy: a core is read in place, through
	 * a reader with state of its own.  Without the untracked objects the
	 * list walk is all the work (one thread, one miss a node). */
	jobs = o.capture.jobs ? pyx_heap_jobs(o.capture.jobs)
	       : c->heap_bytes < PARALLEL_MIN_HEAP ? 1 : pyx_heap_jobs(0);
	if (!pyx_mem_has_snapshot(py->mem) || o.tracked_only)
		jobs = 1;
	/* Every node takes 32 bytes at least (header and object). */
	if (jobs > 1)
		err = walk_threads(&w, jobs, c->heap_bytes / 32 + 1, &hs);
	else
		err = pyx_heap_walk(py, c->heap_bytes / 32 + 1, on_tracked, &w,
				    &hs);
	c->jobs = jobs;
	/* A process killed after its copy leaves the copy whole, but the
	 * walk reads the type names (in read-only memory, not copied) from
	 * it: gone, every static type would be "<type at ...>" in a result
	 * that looks complete. */
	if (!err && pyx_target_gone(py->tgt))
		err = pyx_err_set(PYX_E_EXITED, "process %d exited while its "
				  "heap was counted (type names are read from "
				  "it)", c->pid);
	if (err)
		goto out;
	c->interpreters = hs.interpreters;
	c->permanent = hs.permanent;
	c->bad_objects = w.bad_objects;
	c->bad_refs = w.bad_refs;
	c->damaged_lists = hs.damaged_lists;
	c->partial = c->truncated || c->damaged_lists || c->bad_objects ||
		     c->nonblocking;
	err = collect(&w, c);
	c->walk_ms = (double)(pyx_now_ns() - t0) / 1e6;
out:
	pyx_mem_snapshot_release(py->mem);
	pyx_types_free(w.types);
	free(w.c);
	free(w.seen.v);
	free(w.stack);
	if (err) {
		pyx_census_free(c);
		return err;
	}
	*out = c;
	return 0;
}

void pyx_census_free(struct pyx_census *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->ntypes; i++)
		free(c->types[i].name);
	free(c->types);
	free(c);
}

static int cmp_bytes(const void *a, const void *b)
{
	const struct pyx_census_type *x = a, *y = b;

	if (x->bytes != y->bytes)
		return x->bytes < y->bytes ? 1 : -1;
	if (x->count != y->count)
		return x->count < y->count ? 1 : -1;
	return strcmp(x->name, y->name);
}

static int cmp_count(const void *a, const void *b)
{
	const struct pyx_census_type *x = a, *y = b;

	if (x->count != y->count)
		return x->count < y->count ? 1 : -1;
	if (x->bytes != y->bytes)
		return x->bytes < y->bytes ? 1 : -1;
	return strcmp(x->name, y->name);
}

void pyx_census_sort(struct pyx_census *c, enum pyx_census_sort by)
{
	qsort(c->types, c->ntypes, sizeof(*c->types),
	      by == PYX_CENSUS_BY_COUNT ? cmp_count
	      : by == PYX_CENSUS_BY_BYTES ? cmp_bytes : cmp_name);
}

/* ---- growth ------------------------------------------------------------ */

static int cmp_change_count(const void *a, const void *b)
{
	const struct pyx_census_change *x = a, *y = b;

	if (x->dcount != y->dcount)
		return x->dcount < y->dcount ? 1 : -1;
	if (x->dbytes != y->dbytes)
		return x->dbytes < y->dbytes ? 1 : -1;
	return strcmp(x->name, y->name);
}

static int cmp_change_bytes(const void *a, const void *b)
{
	const struct pyx_census_change *x = a, *y = b;

	if (x->dbytes != y->dbytes)
		return x->dbytes < y->dbytes ? 1 : -1;
	if (x->dcount != y->dcount)
		return x->dcount < y->dcount ? 1 : -1;
	return strcmp(x->name, y->name);
}

static const struct pyx_census_type *find_type(const struct pyx_census *c,
					       const char *name)
{
	size_t lo = 0, hi = c->ntypes;

	/* c is sorted by name (see pyx_census_delta). */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int d = strcmp(c->types[mid].name, name);

		if (d == 0)
			return &c->types[mid];
		if (d < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

static bool sorted_by_name(const struct pyx_census *c)
{
	for (size_t i = 1; i < c->ntypes; i++)
		if (strcmp(c->types[i - 1].name, c->types[i].name) >= 0)
			return false;
	return true;
}

int pyx_census_delta(const struct pyx_census *a, const struct pyx_census *b,
		     enum pyx_census_sort by, struct pyx_census_delta **out)
{
	struct pyx_census_delta *d;
	size_t cap = a->ntypes + b->ntypes;

	*out = NULL;
	if (strcmp(a->python_version, b->python_version) != 0)
		return pyx_err_set(PYX_E_UNSUPPORTED_VERSION, "the censuses "
				   "come from different Pythons (%s and %s): "
				   "their types cannot be compared",
				   a->python_version, b->python_version);
	if (a->tracked_only != b->tracked_only)
		return pyx_err_set(PYX_E_USAGE, "one census counted only the "
				   "objects the GC tracks (--tracked-only), the "
				   "other all: take both the same way");
	if (!sorted_by_name(a) || !sorted_by_name(b))
		return pyx_err_set(PYX_E_USAGE, "pyx_census_delta: censuses "
				   "must be sorted by name");
	d = calloc(1, sizeof(*d));
	if (!d || !(d->types = calloc(cap ? cap : 1, sizeof(*d->types)))) {
		free(d);
		return -PYX_E_NOMEM;
	}
	for (size_t i = 0; i < b->ntypes; i++) {
		const struct pyx_census_type *tb = &b->types[i];
		const struct pyx_census_type *ta = find_type(a, tb->name);
		struct pyx_census_change ch = {
			tb->name, tb->count, tb->bytes,
			(int64_t)tb->count - (ta ? (int64_t)ta->count : 0),
			(int64_t)tb->bytes - (ta ? (int64_t)ta->bytes : 0),
		};

		if (ch.dcount || ch.dbytes)
			d->types[d->ntypes++] = ch;
	}
	for (size_t i = 0; i < a->ntypes; i++) {
		const struct pyx_census_type *ta = &a->types[i];

		if (!find_type(b, ta->name))
			d->types[d->ntypes++] = (struct pyx_census_change){
				ta->name, 0, 0, -(int64_t)ta->count,
				-(int64_t)ta->bytes };
	}
	qsort(d->types, d->ntypes, sizeof(*d->types),
	      by == PYX_CENSUS_BY_BYTES ? cmp_change_bytes : cmp_change_count);
	d->dobjects = (int64_t)b->objects - (int64_t)a->objects;
	d->dbytes = (int64_t)b->bytes - (int64_t)a->bytes;
	d->dgc_objects = (int64_t)b->gc_objects - (int64_t)a->gc_objects;
	d->drss_bytes = a->rss_bytes >= 0 && b->rss_bytes >= 0
			? b->rss_bytes - a->rss_bytes : 0;
	*out = d;
	return 0;
}

void pyx_census_delta_free(struct pyx_census_delta *d)
{
	if (!d)
		return;
	free(d->types);
	free(d);
}
