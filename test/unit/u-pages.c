/* Unit tests of lib/heap/pages.c: the arena over the heap copy's pages
 * (alignment, pops of the last blocks, the malloc fallback when full or
 * without an arena, calloc of dirty pages, trim, threads), the dominators
 * in an arena (the same results as with malloc), and the hand-over of a
 * copy's buffer (pyx_mem_snapshot_release_pages). */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "dominators.h"
#include "image.h"
#include "internal.h"
#include "pages.h"
#include "pyxray/memory.h"
#include "pyxray/target.h"

#include "unit.h"

#define MIB (1u << 20)
/* The arena's step for a block of n bytes: 64-byte aligned, and a red
 * zone after each under AddressSanitizer. */
#if defined(__SANITIZE_ADDRESS__)
#define RZ 64
#else
#define RZ 0
#endif
#define STEP(n) ((((size_t)(n) ? (size_t)(n) : 1) + 63) / 64 * 64 + RZ)

static void *map(size_t len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	ck_assert_ptr_ne(p, MAP_FAILED);
	return p;
}

static bool inside(const void *p, const void *base, size_t len)
{
	return (const uint8_t *)p >= (const uint8_t *)base &&
	       (const uint8_t *)p < (const uint8_t *)base + len;
}

/* Whether [p, p + len) is mapped (mincore fails with ENOMEM if not). */
static bool mapped(const void *p, size_t len)
{
	unsigned char v[64];

	ck_assert_uint_le(len, 64 * 4096);
	return mincore((void *)p, len, v) == 0;
}

START_TEST(bump_and_pop)
{
	uint8_t *buf = map(MIB);
	struct pyx_pages *pp;
	struct pyx_pages_stats st;
	uint8_t *a, *b, *c, *d;

	memset(buf, 0xab, MIB);
	pp = pyx_pages_new(buf, MIB, MIB);
	ck_assert_ptr_nonnull(pp);
	a = pyx_pages_alloc(pp, 10);
	b = pyx_pages_alloc(pp, 100);
	ck_assert_ptr_eq(a, buf);
	ck_assert_ptr_eq(b, buf + STEP(10)); /* 64-byte aligned */
	ck_assert_uint_eq((uintptr_t)b % 64, 0);
	/* the last block popped: its bytes given out again */
	pyx_pages_free(pp, b);
	c = pyx_pages_alloc(pp, 1000);
	ck_assert_ptr_eq(c, b);
	/* a block under a live one only marked... */
	d = pyx_pages_alloc(pp, 64);
	ck_assert_ptr_eq(d, c + STEP(1000));
	pyx_pages_free(pp, c);
	ck_assert_ptr_eq(pyx_pages_alloc(pp, 1), d + STEP(64));
	pyx_pages_free(pp, d + STEP(64));
	/* ...and popped with the one above it */
	pyx_pages_free(pp, d);
	pyx_pages_get_stats(pp, &st);
	ck_assert_uint_eq(st.used, STEP(10));
	ck_assert_uint_eq(st.peak, STEP(10) + STEP(1000) + STEP(64) + STEP(1));
	ck_assert_ptr_eq(pyx_pages_alloc(pp, 0), buf + STEP(10));
	/* a pointer never given out: nothing moves */
	pyx_pages_free(pp, a + 8);
	pyx_pages_get_stats(pp, &st);
	ck_assert_uint_eq(st.used, STEP(10) + STEP(0));
	ck_assert_uint_eq(st.fallbacks, 0);
	pyx_pages_release(pp, 1);
}
END_TEST

START_TEST(calloc_clears)
{
	uint8_t *buf = map(MIB), *p;
	struct pyx_pages *pp;

	memset(buf, 0xcd, MIB);
	pp = pyx_pages_new(buf, MIB, MIB);
	p = pyx_pages_calloc(pp, 1000, 8);
	ck_assert_ptr_eq(p, buf);
	for (size_t i = 0; i < 8000; i++)
		ck_assert_uint_eq(p[i], 0);
	ck_assert_ptr_null(pyx_pages_calloc(pp, SIZE_MAX / 2, 4));
	ck_assert_ptr_null(pyx_pages_calloc(NULL, SIZE_MAX / 2, 4));
	/* dirtied, popped, and cleared again */
	memset(p, 0xef, 8000);
	pyx_pages_free(pp, p);
	p = pyx_pages_calloc(pp, 3, 7);
	ck_assert_ptr_eq(p, buf);
	for (size_t i = 0; i < 21; i++)
		ck_assert_uint_eq(p[i], 0);
	pyx_pages_release(pp, 1);
}
END_TEST

START_TEST(fallback)
{
	uint8_t *buf = map(64 * 1024), *a, *b, *c;
	struct pyx_pages *pp = pyx_pages_new(buf, 64 * 1024, 64 * 1024);
	struct pyx_pages_stats st;

	a = pyx_pages_alloc(pp, 60 * 1024 - 2 * RZ);
	ck_assert(inside(a, buf, 64 * 1024));
	/* does not fit: malloc, and free() on free */
	b = pyx_pages_alloc(pp, 8 * 1024);
	ck_assert(!inside(b, buf, 64 * 1024));
	memset(b, 1, 8 * 1024);
	c = pyx_pages_calloc(pp, 1, 4096 - RZ);
	ck_assert(inside(c, buf, 64 * 1024));
	ck_assert_uint_eq(c[4095 - RZ], 0);
	pyx_pages_get_stats(pp, &st);
	ck_assert_uint_eq(st.fallbacks, 1);
	ck_assert_uint_eq(st.fallback_bytes, 8 * 1024);
	pyx_pages_free(pp, b);
	pyx_pages_free(pp, c);
	pyx_pages_free(pp, a);
	pyx_pages_get_stats(pp, &st);
	ck_assert_uint_eq(st.used, 0);
	pyx_pages_release(pp, 1);
	/* no arena: plain malloc and free */
	a = pyx_pages_alloc(NULL, 100);
	c = pyx_pages_calloc(NULL, 10, 10);
	ck_assert(a && c);
	ck_assert_uint_eq(c[99], 0);
	pyx_pages_free(NULL, a);
	pyx_pages_free(NULL, c);
	pyx_pages_free(NULL, NULL);
	pyx_pages_trim(NULL, 0);
	pyx_pages_release(NULL, 2);
	ck_assert_ptr_null(pyx_pages_new(NULL, 0, 0));
}
END_TEST

START_TEST(trims)
{
	size_t len = 64 * 4096;
	uint8_t *buf = map(len), *a, *b;
	struct pyx_pages *pp;
	struct pyx_pages_stats st;

	/* past faulted: unmapped at once */
	pp = pyx_pages_new(buf, len, 10 * 4096 + 1);
	pyx_pages_get_stats(pp, &st);
	ck_assert_uint_eq(st.len, 11 * 4096);
	ck_assert(mapped(buf, 11 * 4096));
	ck_assert(!mapped(buf + 11 * 4096, 4096));
	ck_assert(!mapped(buf + len - 4096, 4096));
	a = pyx_pages_alloc(pp, 5000);
	/* room for 4096 more: the page after them stays, the rest goes */
	pyx_pages_trim(pp, STEP(5000) + 4096);
	pyx_pages_get_stats(pp, &st);
	ck_assert_uint_eq(st.len, 3 * 4096);
	ck_assert(mapped(buf, 3 * 4096));
	ck_assert(!mapped(buf + 3 * 4096, 4096));
	/* what was kept is used, then malloc */
	b = pyx_pages_alloc(pp, 4096);
	ck_assert(inside(b, buf, 3 * 4096));
	pyx_pages_free(pp, b);
	b = pyx_pages_alloc(pp, 3 * 4096);
	ck_assert(!inside(b, buf, len));
	pyx_pages_free(pp, b);
	/* more than is left: nothing given back; less than is used: what
	 * is used stays */
	pyx_pages_trim(pp, len);
	pyx_pages_get_stats(pp, &st);
	ck_assert_uint_eq(st.len, 3 * 4096);
	pyx_pages_trim(pp, 0);
	pyx_pages_get_stats(pp, &st);
	ck_assert_uint_eq(st.len, 2 * 4096);
	pyx_pages_free(pp, a);
	pyx_pages_release(pp, 1);
	/* nothing faulted: no arena, the buffer unmapped */
	buf = map(len);
	ck_assert_ptr_null(pyx_pages_new(buf, len, 0));
	ck_assert(!mapped(buf, 4096));
}
END_TEST

/* Many blocks: the oldest past the tracked ones stay for good, the recent
 * ones still pop. */
START_TEST(many_blocks)
{
	uint8_t *buf = map(MIB), *p[1000];
	struct pyx_pages *pp = pyx_pages_new(buf, MIB, MIB);
	struct pyx_pages_stats st;

	for (int i = 0; i < 1000; i++) {
		p[i] = pyx_pages_alloc(pp, 64);
		ck_assert_ptr_eq(p[i], buf + STEP(64) * i);
	}
	for (int i = 999; i >= 0; i--)
		pyx_pages_free(pp, p[i]);
	pyx_pages_get_stats(pp, &st);
	ck_assert_uint_lt(st.used, 1000 * STEP(64));
	ck_assert_uint_gt(st.used, 0);
	ck_assert_ptr_eq(pyx_pages_alloc(pp, 64), buf + st.used);
	pyx_pages_release(pp, 1);
}
END_TEST

/* Released on two threads (an arena of 64 MiB or more): its pages given
 * back in two halves, then unmapped; what lies after it untouched. */
START_TEST(release_two_threads)
{
	size_t len = 96 * MIB;
	uint8_t *buf = map(len + 4096), *next = buf + len;
	struct pyx_pages *pp;
	uint8_t *a;

	memset(buf, 0x5a, len);
	next[0] = 0x77;
	pp = pyx_pages_new(buf, len, len);
	ck_assert_ptr_nonnull(pp);
	a = pyx_pages_alloc(pp, 80 * MIB);
	ck_assert(inside(a, buf, len));
	pyx_pages_free(pp, a);
	pyx_pages_release(pp, 2);
	ck_assert(!mapped(buf, 4096));
	ck_assert(!mapped(buf + len / 2, 4096));
	ck_assert(!mapped(buf + len - 4096, 4096));
	ck_assert(mapped(next, 4096));
	ck_assert_uint_eq(next[0], 0x77);
	munmap(next, 4096);
}
END_TEST

struct worker {
	struct pyx_pages *pp;
	int id;
	int bad;
	uint8_t *kept[700];
	size_t nkept;
};

static void work(void *arg)
{
	struct worker *w = arg;

	for (int i = 0; i < 2000; i++) {
		size_t n = 16 + (size_t)((i * 37 + w->id * 11) % 3000);
		uint8_t *p = pyx_pages_alloc(w->pp, n), *q;

		if (!p) {
			w->bad++;
			continue;
		}
		memset(p, w->id, n);
		q = pyx_pages_calloc(w->pp, 1, 100);
		for (size_t k = 0; q && k < 100; k++)
			w->bad += q[k] != 0;
		for (size_t k = 0; k < n; k++)
			w->bad += p[k] != (uint8_t)w->id;
		pyx_pages_free(w->pp, q);
		if (i % 3)
			pyx_pages_free(w->pp, p);
		else
			w->kept[w->nkept++] = p;
	}
}

/* Blocks given to several threads at once never overlap (each checks its
 * bytes), some from the arena, some from malloc once it is full. */
START_TEST(threads)
{
	uint8_t *buf = map(2 * MIB);
	struct pyx_pages *pp = pyx_pages_new(buf, 2 * MIB, 2 * MIB);
	static struct worker w[4];
	struct pyx_pages_stats st;

	for (int i = 0; i < 4; i++)
		w[i] = (struct worker){ .pp = pp, .id = i + 1 };
	pyx_parallel(4, work, w, sizeof(w[0]));
	for (int i = 0; i < 4; i++) {
		ck_assert_int_eq(w[i].bad, 0);
		/* what came from malloc is free()d */
		for (size_t k = 0; k < w[i].nkept; k++)
			pyx_pages_free(pp, w[i].kept[k]);
	}
	pyx_pages_get_stats(pp, &st);
	ck_assert_uint_gt(st.fallbacks, 0);
	ck_assert_uint_le(st.peak, 2 * MIB);
	pyx_pages_release(pp, 1);
}
END_TEST

/* Without a copy, nothing to hand over; bad arguments refused. */
START_TEST(release_pages_none)
{
	struct pyx_mem *mem;
	void *buf = (void *)1;
	size_t len = 1, faulted = 1;

	ck_assert_int_eq(pyx_mem_new_pid(getpid(), &mem), 0);
	ck_assert_int_eq(pyx_mem_snapshot_release_pages(mem, &buf, &len,
							&faulted), 0);
	ck_assert_ptr_null(buf);
	ck_assert_uint_eq(len, 0);
	ck_assert_uint_eq(faulted, 0);
	ck_assert_int_lt(pyx_mem_snapshot_release_pages(mem, NULL, &len,
							&faulted), 0);
	ck_assert_int_lt(pyx_mem_snapshot_release_pages(NULL, &buf, &len,
							&faulted), 0);
	pyx_mem_free(mem);
}
END_TEST

/* The dominators with an arena give what they give without one, whether
 * the arena holds everything, part of it (malloc beyond), or is dirty:
 * random graphs, leaves attached, retained sizes, the tree. */
START_TEST(dominators_in_arena)
{
	unsigned seed = 4242;

	for (int round = 0; round < 200; round++) {
		uint32_t n = 1 + (uint32_t)(rand_r(&seed) % 3000), ne, nr,
			 roots[8], nleaf, *owner, *pair, npair, *o1, *o2,
			 *koff1, *kids1, *koff2, *kids2;
		uint64_t *off = malloc(((size_t)n + 1) * sizeof(*off)), *s1, *s2;
		uint32_t *dst;
		size_t len = (size_t)(1 + rand_r(&seed) % 64) * 16 * 4096;
		uint8_t *buf = map(len);
		struct pyx_pages *pp;
		struct pyx_dom *d1, *d2;
		struct pyx_dom_graph g;

		memset(buf, 0x5a, len);
		pp = pyx_pages_new(buf, len, len);
		ne = (uint32_t)(rand_r(&seed) % (3 * n + 1));
		dst = malloc(((size_t)ne + 1) * sizeof(*dst));
		ck_assert(off && dst && pp);
		/* ne edges spread over the rows, some targets out of range */
		for (uint32_t v = 0, k = 0; v <= n; v++) {
			off[v] = k;
			while (v < n && k < ne &&
			       (v == n - 1 || rand_r(&seed) % 3 == 0))
				dst[k++] = (uint32_t)(rand_r(&seed) % (n + 2));
		}
		ne = (uint32_t)off[n];
		nr = 1 + (uint32_t)(rand_r(&seed) % 8);
		for (uint32_t r = 0; r < nr; r++)
			roots[r] = (uint32_t)(rand_r(&seed) % n);
		g = (struct pyx_dom_graph){ n, off, dst, roots, nr, NULL, 0 };
		ck_assert_int_eq(pyx_dom_compute(&g, &d1), 0);
		ck_assert_int_eq(pyx_dom_compute_in(&g, pp, &d2), 0);
		ck_assert_ptr_eq(d2->pages, pp);
		ck_assert_uint_eq(d1->nreach, d2->nreach);
		for (uint32_t v = 0; v < n; v++)
			ck_assert_uint_eq(d1->idom[v], d2->idom[v]);
		for (uint32_t i = 0; i < d1->nreach; i++)
			ck_assert_uint_eq(d1->order[i], d2->order[i]);
		/* leaves */
		nleaf = (uint32_t)(rand_r(&seed) % 100);
		npair = (uint32_t)(rand_r(&seed) % 200);
		owner = malloc((nleaf + 1) * sizeof(*owner));
		pair = malloc((2 * (size_t)npair + 1) * sizeof(*pair));
		o1 = malloc((nleaf + 1) * sizeof(*o1));
		o2 = pyx_pages_alloc(pp, nleaf * sizeof(*o2));
		for (uint32_t l = 0; l < nleaf; l++)
			owner[l] = rand_r(&seed) % 10 ? (uint32_t)(rand_r(&seed) % n)
						     : PYX_DOM_ROOT;
		for (uint32_t i = 0; i < npair; i++) {
			pair[2 * i] = nleaf ? (uint32_t)(rand_r(&seed) % nleaf) : 0;
			pair[2 * i + 1] = (uint32_t)(rand_r(&seed) % n);
		}
		ck_assert_int_eq(pyx_dom_attach(d1, nleaf, owner, pair,
						nleaf ? npair : 0, o1), 0);
		ck_assert_int_eq(pyx_dom_attach(d2, nleaf, owner, pair,
						nleaf ? npair : 0, o2), 0);
		for (uint32_t l = 0; l < nleaf; l++)
			ck_assert_uint_eq(o1[l], o2[l]);
		s1 = malloc((size_t)n * sizeof(*s1));
		s2 = pyx_pages_alloc(pp, (size_t)n * sizeof(*s2));
		for (uint32_t v = 0; v < n; v++)
			s1[v] = s2[v] = 1 + v % 97;
		ck_assert_int_eq(pyx_dom_retain(d1, s1), 0);
		ck_assert_int_eq(pyx_dom_retain(d2, s2), 0);
		ck_assert_int_eq(pyx_dom_children(d1, &koff1, &kids1), 0);
		ck_assert_int_eq(pyx_dom_children(d2, &koff2, &kids2), 0);
		for (uint32_t v = 0; v < n; v++) {
			ck_assert_uint_eq(d1->retained[v], d2->retained[v]);
			ck_assert_uint_eq(d1->retained_count[v],
					  d2->retained_count[v]);
		}
		ck_assert_uint_eq(d1->reached_bytes, d2->reached_bytes);
		for (uint32_t v = 0; v <= n + 1; v++)
			ck_assert_uint_eq(koff1[v], koff2[v]);
		for (uint32_t k = 0; k < d1->nreach; k++)
			ck_assert_uint_eq(kids1[k], kids2[k]);
		pyx_dom_trim(d2);
		pyx_pages_free(pp, kids2);
		pyx_pages_free(pp, koff2);
		pyx_pages_free(pp, s2);
		pyx_pages_free(pp, o2);
		pyx_dom_free(d2);
		pyx_pages_release(pp, 1);
		free(koff1);
		free(kids1);
		free(s1);
		free(o1);
		free(owner);
		free(pair);
		pyx_dom_free(d1);
		free(off);
		free(dst);
	}
}
END_TEST

#define RW_ADDR UINT64_C(0x7f0000001000)

/* A copy's buffer handed over: the copied bytes at its start, in memory;
 * with a reserved buffer, its whole length (the slack not faulted); the
 * copy gone (reads go to the source). */
START_TEST(release_pages_copy)
{
	static uint8_t rw[3 * 4096];
	struct pyx_image_info in;
	struct pyx_image_range r = { RW_ADDR, sizeof(rw),
				     PYX_IMAGE_R | PYX_IMAGE_W, rw };
	struct pyx_mem_snapshot_info si;
	struct pyx_target *t;
	struct pyx_mem *mem;
	struct pyx_pages *pp;
	uint8_t *img, *buf;
	size_t ilen, len, faulted;

	for (size_t i = 0; i < sizeof(rw); i++)
		rw[i] = (uint8_t)(i * 13);
	memset(&in, 0, sizeof(in));
	in.pid = 4242;
	in.major = 3;
	in.minor = 12;
	ck_assert_int_eq(pyx_image_encode(&in, NULL, 0, &r, 1, &img, &ilen), 0);
	ck_assert_int_eq(pyx_image_open_buffer(img, ilen, &t, NULL), 0);
	free(img);
	mem = pyx_target_mem(t);
	for (int reserve = 0; reserve < 2; reserve++) {
		if (reserve)
			ck_assert_int_eq(pyx_mem_snapshot_reserve(mem, sizeof(rw),
								  64 * 4096), 0);
		ck_assert_int_eq(pyx_mem_snapshot(mem, 0, &si), 0);
		ck_assert_uint_eq(si.bytes, sizeof(rw));
		ck_assert(pyx_mem_has_snapshot(mem));
		ck_assert_int_eq(pyx_mem_snapshot_release_pages(mem, (void **)&buf,
								&len, &faulted), 0);
		ck_assert(!pyx_mem_has_snapshot(mem));
		ck_assert_ptr_null(pyx_mem_snapshot_ptr(mem, RW_ADDR, 8));
		ck_assert_ptr_nonnull(buf);
		ck_assert_uint_eq(faulted, sizeof(rw));
		ck_assert_uint_eq(len, reserve ? sizeof(rw) + 64 * 4096
				       : sizeof(rw));
		ck_assert(memcmp(buf, rw, sizeof(rw)) == 0);
		/* the arena keeps the faulted part, unmaps the rest */
		pp = pyx_pages_new(buf, len, faulted);
		ck_assert_ptr_nonnull(pp);
		ck_assert(mapped(buf, sizeof(rw)));
		if (reserve)
			ck_assert(!mapped(buf + sizeof(rw), 4096));
		ck_assert_ptr_eq(pyx_pages_alloc(pp, 100), buf);
		pyx_pages_release(pp, 1);
		ck_assert(!mapped(buf, 4096));
	}
	pyx_target_free(t);
}
END_TEST

#if defined(__SANITIZE_ADDRESS__)
/* Under AddressSanitizer an overrun of an arena block is caught (the
 * red zone after it), as in malloc's memory: the test dies. */
START_TEST(overrun_caught)
{
	uint8_t *buf = map(MIB);
	struct pyx_pages *pp = pyx_pages_new(buf, MIB, MIB);
	volatile uint8_t *p = pyx_pages_alloc(pp, 100);

	(void)pyx_pages_alloc(pp, 100);
	p[100] = 1;
	pyx_pages_release(pp, 1);
}
END_TEST
#endif

int main(void)
{
	Suite *s = suite_create("pages");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, bump_and_pop);
	tcase_add_test(tc, calloc_clears);
	tcase_add_test(tc, fallback);
	tcase_add_test(tc, trims);
	tcase_add_test(tc, many_blocks);
	tcase_add_test(tc, release_two_threads);
	tcase_add_test(tc, threads);
	tcase_add_test(tc, release_pages_none);
	tcase_add_test(tc, release_pages_copy);
	tcase_add_test(tc, dominators_in_arena);
#if defined(__SANITIZE_ADDRESS__)
	tcase_add_exit_test(tc, overrun_caught, 1);
#endif
	suite_add_tcase(s, tc);
	return pyx_unit_run(s);
}
