/* Unit tests of lib/heap/referents.c, sizes.c and heap.c on hostile input:
 * fake objects and GC lists in a buffer (the "target"), read through a
 * memory source that serves only that buffer, with each version's built-in
 * layout table.  Every count a fake object carries is corrupt in one way
 * (a set mask of -1, a list longer than its mapping, a negative tuple
 * size, a deque whose blocks end early); the walkers must refuse the
 * object (-PYX_E_BAD_MEMORY) without reading or allocating past it.  A GC
 * list that does not link back must end there and be counted, and the
 * walk go on. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "pyxray/heap.h"
#include "pyxray/layout.h"
#include "pyxray/memory.h"
#include "referents.h"

#include "unit.h"
#include "fake_target.h"

static void put(struct pyx_python *py, uint64_t *obj, enum pyx_layout_id id,
		uint64_t v)
{
	ck_assert_int_eq(py->layout.v[id] % 8, 0);
	put_n(py, obj, id, v, 8);
}

/* A 4-byte field (C int) of a fake object. */
static void put32(struct pyx_python *py, uint64_t *obj, enum pyx_layout_id id,
		  uint32_t v)
{
	int32_t off = py->layout.v[id];

	ck_assert_int_ne(off, PYX_OFF_NONE);
	memcpy((uint8_t *)obj + off, &v, 4);
}

static struct pyx_python *fake_py(int minor)
{
	return fake_python(minor, 0);
}

static void free_py(struct pyx_python *py)
{
	fake_python_free(py);
}

/* A static type object named name. */
static uint64_t *fake_type(struct pyx_python *py, const char *name,
			   uint64_t basicsize, uint64_t itemsize, uint64_t flags)
{
	uint64_t *tp = take(128), *s = take(8);

	strcpy((char *)s, name);
	put(py, tp, PYX_L_OB_TYPE, py->types.type);
	put(py, tp, PYX_L_TP_NAME, A(s));
	put(py, tp, PYX_L_TP_BASICSIZE, basicsize);
	put(py, tp, PYX_L_TP_ITEMSIZE, itemsize);
	put(py, tp, PYX_L_TP_FLAGS, flags);
	return tp;
}

struct seen {
	uint64_t n;
	pyx_addr_t last;
};

/* Count inferred edges too (words that hold an aligned address). */
static bool count_inferred = true;

static int count(void *ctx, const struct pyx_ref *r)
{
	struct seen *s = ctx;

	if (!count_inferred && r->kind == PYX_REF_INFERRED)
		return 0;
	s->n++;
	s->last = r->target;
	return 0;
}

static int refs_of(struct pyx_python *py, const uint64_t *obj,
		   const uint64_t *tp, struct seen *s, uint64_t *size)
{
	struct pyx_types *t;
	const struct pyx_typeinfo *ti;
	int err, serr;

	memset(s, 0, sizeof(*s));
	pyx_mem_invalidate(py->mem); /* the test wrote to the "target" */
	ck_assert_int_eq(pyx_types_new(py, &t), 0);
	ck_assert_int_eq(pyx_types_get(t, A(tp), &ti), 0);
	err = pyx_referents_ex(t, A(obj), ti, 1u << 28, PYX_REFERENTS_FULL,
			       count, s);
	serr = pyx_obj_sizeof(py, pyx_types_rules(t), A(obj), ti, size);
	if (serr)
		*size = UINT64_MAX;
	pyx_types_free(t);
	return err;
}

START_TEST(set_mask)
{
	int minor = 8 + _i;
	struct pyx_python *py = fake_py(minor);
	uint64_t *tp = fake_type(py, "set", 200, 0, PYX_TPFLAGS_HAVE_GC);
	uint64_t *set = take(32), *key = take(4), size;
	struct seen s;
	int32_t small = py->layout.v[PYX_L_SET_SMALLTABLE];

	py->types.set = A(tp);
	put(py, set, PYX_L_OB_TYPE, A(tp));
	put(py, set, PYX_L_SET_TABLE, A(set) + (uint64_t)small);
	set[small / 8 + 2 * 3] = A(key);
	set[small / 8 + 2 * 5] = A(key);
	/* sane: 8 slots, two keys */
	put(py, set, PYX_L_SET_MASK, 7);
	ck_assert_int_eq(refs_of(py, set, tp, &s, &size), 0);
	ck_assert_uint_eq(s.n, 2);
	ck_assert_uint_eq(s.last, A(key));
	ck_assert_uint_ne(size, UINT64_MAX);
	/* mask -1: mask + 1 wraps to 0 (was: the table read as empty,
	 * then looped over 2^64 entries) */
	put(py, set, PYX_L_SET_MASK, UINT64_MAX);
	ck_assert_int_eq(refs_of(py, set, tp, &s, &size), -PYX_E_BAD_MEMORY);
	ck_assert_uint_eq(s.n, 0);
	ck_assert_uint_eq(size, UINT64_MAX);
	/* a table bigger than the limit, and one not a power of 2 */
	put(py, set, PYX_L_SET_MASK, (UINT64_C(1) << 40) - 1);
	ck_assert_int_eq(refs_of(py, set, tp, &s, &size), -PYX_E_BAD_MEMORY);
	put(py, set, PYX_L_SET_MASK, 6);
	ck_assert_int_eq(refs_of(py, set, tp, &s, &size), -PYX_E_BAD_MEMORY);
	/* a sane mask, a table past the end of the mapping */
	put(py, set, PYX_L_SET_MASK, 1023);
	put(py, set, PYX_L_SET_TABLE, A(arena) + sizeof(arena) - 64);
	ck_assert_int_eq(refs_of(py, set, tp, &s, &size), -PYX_E_BAD_MEMORY);
	ck_assert_uint_eq(reads_outside, 0); /* refused before any read */
	free_py(py);
}
END_TEST

START_TEST(list_tuple_sizes)
{
	int minor = 8 + _i;
	struct pyx_python *py = fake_py(minor);
	uint64_t *ltp = fake_type(py, "list", 40, 0, PYX_TPFLAGS_HAVE_GC);
	uint64_t *ttp = fake_type(py, "tuple", 24, 8, PYX_TPFLAGS_HAVE_GC);
	uint64_t *list = take(8), *items = take(4), *tup = take(8), size;
	struct seen s;

	py->types.list = A(ltp);
	py->types.tuple = A(ttp);
	put(py, list, PYX_L_OB_TYPE, A(ltp));
	put(py, list, PYX_L_LIST_ITEM, A(items));
	put(py, list, PYX_L_LIST_ALLOCATED, 4);
	items[0] = A(tup);
	put(py, list, PYX_L_OB_SIZE, 1);
	ck_assert_int_eq(refs_of(py, list, ltp, &s, &size), 0);
	ck_assert_uint_eq(s.n, 1);
	/* 2^28 - 1 items, the array runs out of the mapping: refused before
	 * a 2 GiB buffer is allocated for it */
	put(py, list, PYX_L_OB_SIZE, (1u << 28) - 1);
	ck_assert_int_eq(refs_of(py, list, ltp, &s, &size), -PYX_E_BAD_MEMORY);
	ck_assert_uint_eq(s.n, 0);
	ck_assert_uint_eq(reads_outside, 0);
	/* negative sizes */
	put(py, list, PYX_L_OB_SIZE, UINT64_MAX);
	ck_assert_int_eq(refs_of(py, list, ltp, &s, &size), -PYX_E_BAD_MEMORY);
	put(py, list, PYX_L_OB_SIZE, 1);
	put(py, list, PYX_L_LIST_ALLOCATED, UINT64_MAX);
	ck_assert_int_eq(refs_of(py, list, ltp, &s, &size), 0);
	ck_assert_uint_eq(size, UINT64_MAX); /* its size is refused */
	/* misaligned items */
	put(py, list, PYX_L_LIST_ALLOCATED, 4);
	put(py, list, PYX_L_LIST_ITEM, A(items) + 3);
	ck_assert_int_eq(refs_of(py, list, ltp, &s, &size), -PYX_E_BAD_MEMORY);

	put(py, tup, PYX_L_OB_TYPE, A(ttp));
	put(py, tup, PYX_L_OB_SIZE, UINT64_MAX); /* -1 */
	ck_assert_int_eq(refs_of(py, tup, ttp, &s, &size), -PYX_E_BAD_MEMORY);
	ck_assert_uint_eq(s.n, 0);
	put(py, tup, PYX_L_OB_SIZE, UINT64_C(1) << 27); /* past the mapping */
	ck_assert_int_eq(refs_of(py, tup, ttp, &s, &size), -PYX_E_BAD_MEMORY);
	ck_assert_uint_eq(reads_outside, 0);
	free_py(py);
}
END_TEST

START_TEST(deque_blocks)
{
	int minor = 8 + _i;
	struct pyx_python *py = fake_py(minor);
	int32_t bsize = py->layout.v[PYX_L_SZ_DEQUE_BLOCK];
	uint64_t *tp = fake_type(py, "collections.deque", 1000, 0,
				 PYX_TPFLAGS_HAVE_GC);
	uint64_t *dq = take(64), *b1 = take((size_t)bsize / 8), *key = take(4);
	uint64_t size, blocklen = ((uint64_t)bsize - 16) / 8;
	struct seen s;

	ck_assert_int_gt(bsize, 16);
	put(py, dq, PYX_L_OB_TYPE, A(tp));
	put(py, dq, PYX_L_DEQUE_LEFTBLOCK, A(b1));
	put(py, dq, PYX_L_DEQUE_LEFTINDEX, blocklen - 2);
	put(py, dq, PYX_L_OB_SIZE, 2);
	b1[py->layout.v[PYX_L_BLOCK_DATA] / 8 + blocklen - 2] = A(key);
	b1[py->layout.v[PYX_L_BLOCK_DATA] / 8 + blocklen - 1] = A(key);
	ck_assert_int_eq(refs_of(py, dq, tp, &s, &size), 0);
	ck_assert_uint_eq(s.n, 2);
	/* more items than the blocks hold: the chain ends (rightlink 0) */
	put(py, dq, PYX_L_OB_SIZE, 1000);
	ck_assert_int_eq(refs_of(py, dq, tp, &s, &size), -PYX_E_BAD_MEMORY);
	/* a block that links to itself: bounded by the length */
	put(py, b1, PYX_L_BLOCK_RIGHTLINK, A(b1));
	ck_assert_int_eq(refs_of(py, dq, tp, &s, &size), 0);
	/* an index past the block, a negative length */
	put(py, dq, PYX_L_DEQUE_LEFTINDEX, blocklen);
	ck_assert_int_eq(refs_of(py, dq, tp, &s, &size), -PYX_E_BAD_MEMORY);
	put(py, dq, PYX_L_DEQUE_LEFTINDEX, 0);
	put(py, dq, PYX_L_OB_SIZE, UINT64_MAX);
	ck_assert_int_eq(refs_of(py, dq, tp, &s, &size), -PYX_E_BAD_MEMORY);
	ck_assert_uint_eq(size, UINT64_MAX);
	free_py(py);
}
END_TEST

START_TEST(bad_types)
{
	struct pyx_python *py = fake_py(11);
	uint64_t *tp = fake_type(py, "x", UINT64_C(1) << 30, 0, 0);
	uint64_t *tp2 = fake_type(py, "y", 16, 0, 0), *notmeta = take(128);
	struct pyx_types *t;
	const struct pyx_typeinfo *ti;

	ck_assert_int_eq(pyx_types_new(py, &t), 0);
	/* absurd sizes, a type whose type is not a type, a bad pointer */
	ck_assert_int_eq(pyx_types_get(t, A(tp), &ti), -PYX_E_BAD_MEMORY);
	ck_assert_int_eq(ti->kind, PYX_K_INVALID);
	put(py, tp2, PYX_L_OB_TYPE, A(notmeta));
	pyx_mem_invalidate(py->mem);
	ck_assert_int_eq(pyx_types_get(t, A(tp2), &ti), -PYX_E_BAD_MEMORY);
	ck_assert_int_eq(pyx_types_get(t, 0x13, &ti), -PYX_E_BAD_MEMORY);
	/* the bad ones are remembered as such */
	ck_assert_int_eq(pyx_types_get(t, A(tp), &ti), -PYX_E_BAD_MEMORY);
	pyx_types_free(t);
	free_py(py);
}
END_TEST

/* ---- GC lists ----------------------------------------------------------- */

struct walked {
	uint64_t n;
	pyx_addr_t obj[16];
};

static int on_obj(void *ctx, pyx_addr_t obj, const struct pyx_heap_where *w)
{
	struct walked *v = ctx;

	(void)w;
	if (v->n < 16)
		v->obj[v->n] = obj;
	v->n++;
	return 0;
}

static int walk(struct pyx_python *py, uint64_t max, struct walked *w,
		struct pyx_heap_stats *st)
{
	memset(w, 0, sizeof(*w));
	pyx_mem_invalidate(py->mem);
	return pyx_heap_walk(py, max, on_obj, w, st);
}

static void link_list(pyx_addr_t head, uint64_t **nodes, size_t n)
{
	uint64_t *h = (uint64_t *)(uintptr_t)head;
	pyx_addr_t before = head;

	for (size_t i = 0; i < n; i++) {
		uint64_t *b = (uint64_t *)(uintptr_t)before;

		b[0] = A(nodes[i]);
		nodes[i][1] = before;
		before = A(nodes[i]);
	}
	((uint64_t *)(uintptr_t)before)[0] = head;
	h[1] = before;
}

/* 3.8 keeps its one GC state in _PyRuntime. */
static pyx_addr_t gc_head_of(struct pyx_python *py, int gen)
{
	pyx_addr_t gc = py->info.runtime + (uint64_t)py->layout.v[PYX_L_RT_GC];

	if (gen < 0)
		return gc + (uint64_t)py->layout.v[PYX_L_GC_PERMANENT];
	return gc + (uint64_t)py->layout.v[PYX_L_GC_GENERATIONS] +
	       (uint64_t)gen * (uint64_t)py->layout.v[PYX_L_SZ_GC_GENERATION];
}

static struct pyx_python *gc_py(uint64_t **n, size_t count)
{
	struct pyx_python *py = fake_py(8);
	uint64_t *rt = take(2048), *interp = take(1024);

	/* The walk asks the ABI layer for each interpreter's lists: one
	 * interpreter (id 0, no next), sharing the runtime's GC state. */
	py->info.runtime = A(rt);
	put(py, rt, PYX_L_RT_INTERP_HEAD, A(interp));
	for (int g = -1; g < 3; g++)
		link_list(gc_head_of(py, g), NULL, 0);
	for (size_t i = 0; i < count; i++)
		n[i] = take(4); /* PyGC_Head, then the object */
	return py;
}

START_TEST(gc_damaged_list)
{
	uint64_t *n[6];
	struct pyx_python *py = gc_py(n, 6);
	struct pyx_heap_stats st;
	struct walked w = { 0 };

	/* generation 0: n0 n1 n2; the oldest: n3 n4 n5 */
	link_list(gc_head_of(py, 0), n, 3);
	link_list(gc_head_of(py, 2), n + 3, 3);
	ck_assert_int_eq(walk(py, 0, &w, &st), 0);
	ck_assert_uint_eq(w.n, 6);
	ck_assert_uint_eq(st.damaged_lists, 0);

	/* n1 does not point back: generation 0 ends after n0, the oldest
	 * is walked whole (was: -PYX_E_BAD_MEMORY, nothing counted) */
	n[1][1] = A(n[2]);
	ck_assert_int_eq(walk(py, 0, &w, &st), 0);
	ck_assert_uint_eq(w.n, 4);
	ck_assert_uint_eq(st.objects, 4);
	ck_assert_uint_eq(st.damaged_lists, 1);
	ck_assert_uint_eq(w.obj[0], A(n[0]) + 16);
	ck_assert_uint_eq(w.obj[1], A(n[3]) + 16);

	/* a node outside the mapping, a misaligned one */
	n[0][0] = 0x1000;
	n[4][0] = A(n[5]) + 4;
	ck_assert_int_eq(walk(py, 0, &w, &st), 0);
	ck_assert_uint_eq(w.n, 3);
	ck_assert_uint_eq(st.damaged_lists, 2);

	/* the bound: each list left is cut, no endless walk */
	ck_assert_int_eq(walk(py, 1, &w, &st), 0);
	ck_assert_uint_eq(w.n, 1);
	ck_assert_uint_eq(st.damaged_lists, 2);

	/* a cycle that misses the head: caught by the back link */
	n[4][0] = A(n[3]);
	ck_assert_int_eq(walk(py, 0, &w, &st), 0);
	ck_assert_uint_eq(w.n, 3);
	ck_assert_uint_eq(st.damaged_lists, 2);

	/* every list cut at its first node: more likely a layout that does
	 * not fit than a heap worth a partial result */
	n[3][1] = 0;
	n[0][1] = 0;
	ck_assert_int_eq(walk(py, 0, &w, &st),
			 -PYX_E_BAD_MEMORY);
	ck_assert_uint_eq(w.n, 0);
	free_py(py);
}
END_TEST

/* 3.11+ generators: the size is the frame's, the locals and the value
 * stack are read while the frame lives (3.14+: tagged _PyStackRefs), and
 * the states come from the ABI row (3.15 renumbered them: EXECUTING is 4,
 * which the version ternary before took for COMPLETED). */
START_TEST(generators)
{
	int minor = 11 + _i;
	struct pyx_python *py = fake_py(minor);
	int32_t ifr = py->layout.v[PYX_L_GEN_IFRAME];
	int32_t lp = py->layout.v[PYX_L_IF_LOCALSPLUS];
	uint64_t *tp = fake_type(py, "generator", (uint64_t)(ifr + lp), 8,
				 PYX_TPFLAGS_HAVE_GC);
	uint64_t *code = take(64), *gen = take(64), *key = take(4);
	uint64_t *f, size, tag = py->k.stackrefs ? 1 : 0;
	struct seen s;

	ck_assert_int_ne(ifr, PYX_OFF_NONE);
	ck_assert_int_ne(lp, PYX_OFF_NONE);
	put(py, gen, PYX_L_OB_TYPE, A(tp));
	f = gen + ifr / 8;
	put(py, f, PYX_L_IF_CODE, A(code) | tag);
	put32(py, code, PYX_L_CO_NLOCALSPLUS, 2);
	put32(py, code, PYX_L_CO_STACKSIZE, 3);
	/* local 0: the key (borrowed on 3.14+), local 1: NULL; the stack:
	 * the delegate of a yield from, then a tagged int (3.14+) */
	f[lp / 8] = A(key) | tag;
	f[lp / 8 + 2] = A(key);
	f[lp / 8 + 3] = py->k.stackrefs ? (5 << 2) | 3 : 0;
	if (py->layout.v[PYX_L_IF_STACKPOINTER] != PYX_OFF_NONE)
		put(py, f, PYX_L_IF_STACKPOINTER, A(f) + (uint64_t)lp + 4 * 8);
	else
		put32(py, f, PYX_L_IF_STACKTOP, 4);
	count_inferred = false;
	/* state 0: live in every version (3.11-3.14 EXECUTING, 3.15
	 * CREATED) */
	ck_assert_int_eq(refs_of(py, gen, tp, &s, &size), 0);
	ck_assert_uint_eq(s.n, 2);
	ck_assert_uint_eq(s.last, A(key));
	/* + the PyGC_Head sys.getsizeof adds */
	ck_assert_uint_eq(size, (uint64_t)(ifr + lp) + 5 * 8 + 16);
	/* 4: 3.15's EXECUTING (live), 3.13/3.14's CLEARED */
	((uint8_t *)gen)[py->layout.v[PYX_L_GEN_FRAME_STATE]] = 4;
	ck_assert_int_eq(refs_of(py, gen, tp, &s, &size), 0);
	ck_assert_uint_eq(s.n, minor == 15 ? 2 : 0);
	/* a code object that says its stack is 2^30 deep: no size */
	put32(py, code, PYX_L_CO_STACKSIZE, UINT32_C(1) << 30);
	ck_assert_int_eq(refs_of(py, gen, tp, &s, &size), 0);
	ck_assert_uint_eq(size, UINT64_MAX);
	count_inferred = true;
	free_py(py);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("referents");
	TCase *tc = tcase_create("hostile");

	/* 3.8 ... 3.13: each version's table */
	tcase_add_loop_test(tc, set_mask, 0, 6);
	tcase_add_loop_test(tc, list_tuple_sizes, 0, 6);
	tcase_add_loop_test(tc, deque_blocks, 0, 6);
	tcase_add_test(tc, bad_types);
	tcase_add_test(tc, gc_damaged_list);
	/* 3.11 ... 3.15 */
	tcase_add_loop_test(tc, generators, 0, 5);
	suite_add_tcase(s, tc);
	return pyx_unit_run(s);
}
