/* Unit tests of lib/sizes.c: the sys.getsizeof rules of each version,
 * against what each CPython's sys.getsizeof returned for the same objects
 * (measured on the pyenv builds 3.8.18 ... 3.13.0; struct sizes from their
 * DWARF). */
#include <check.h>
#include <stdlib.h>

#include "referents.h"

#include "unit.h"

#define GC PYX_TPFLAGS_HAVE_GC
#define MD PYX_TPFLAGS_MANAGED_DICT
#define MW PYX_TPFLAGS_MANAGED_WEAKREF

/* Compact str states: kind in bits 2-4, compact 5, ascii 6. */
#define ST_ASCII ((1u << 2) | (1u << 5) | (1u << 6))
#define ST_KIND(k) (((unsigned)(k) << 2) | (1u << 5))

struct version {
	const char *name;
	struct pyx_size_rules r;
	/* sys.getsizeof of ... */
	uint64_t int0, int1, int2_100;
	uint64_t s_abc, s_e_acute, s_euro, s_emoji;
	bool e_acute_utf8; /* the literal's UTF-8 was cached (3.12+) */
	uint64_t list0, list10, dict0, dict1, set0, set10;
	uint64_t deque0, deque100, deque_basic;
	uint64_t type_int, inst, inst_basic, tuple3, bytes3, flt;
};

#define R38 .gc_head = 16, .long_digit_off = 24, .sz_ascii = 48,              \
	    .sz_compact = 72, .sz_unicode = 80, .wstr = true, .dk_header = 40, \
	    .sz_setentry = 16, .sz_block = 528, .blocklen = 64

static const struct version versions[] = {
	{ "3.8", { R38, .sz_type = 416, .sz_heap_type = 880 },
	  24, 28, 40, 52, 74, 76, 80, false, 56, 136, 64, 232, 216, 728,
	  624, 1152, 80, 416, 48, 32, 64, 36, 24 },
	{ "3.9", { R38, .sz_type = 408, .sz_heap_type = 880 },
	  24, 28, 40, 52, 74, 76, 80, false, 56, 136, 64, 232, 216, 728,
	  624, 1152, 80, 408, 48, 32, 64, 36, 24 },
	{ "3.10", { R38, .sz_type = 408, .sz_heap_type = 888 },
	  24, 28, 40, 52, 74, 76, 80, false, 56, 136, 64, 232, 216, 728,
	  624, 1152, 80, 408, 48, 32, 64, 36, 24 },
	{ "3.11", { .gc_head = 16, .preheader_flags = MD,
		    .static_type_gc_head = true, .int_min_digits = 1,
		    .long_digit_off = 24, .sz_ascii = 48, .sz_compact = 72,
		    .sz_unicode = 80, .wstr = true, .sz_type = 408,
		    .sz_heap_type = 904, .dk_header = 32,
		    .split_usable_from_keys = true, .sz_setentry = 16,
		    .sz_block = 528, .blocklen = 64 },
	  28, 28, 40, 52, 74, 76, 80, false, 56, 136, 64, 184, 216, 728,
	  760, 1288, 216, 424, 56, 24, 64, 36, 24 },
	{ "3.12", { .gc_head = 16, .preheader_flags = MD | MW,
		    .static_type_gc_head = true, .int_min_digits = 1,
		    .long_digit_off = 24, .long_tag = true, .sz_ascii = 40,
		    .sz_compact = 56, .sz_unicode = 64, .sz_type = 416,
		    .sz_heap_type = 920, .dk_header = 32,
		    .split_usable_from_keys = true, .sz_setentry = 16,
		    .sz_block = 528, .blocklen = 64 },
	  28, 28, 40, 44, 61, 60, 64, true, 56, 136, 64, 184, 216, 728,
	  760, 1288, 216, 432, 48, 16, 64, 36, 24 },
	{ "3.13", { .gc_head = 16, .preheader_flags = MD | MW,
		    .int_min_digits = 1, .long_digit_off = 24, .long_tag = true,
		    .sz_ascii = 40, .sz_compact = 56, .sz_unicode = 64,
		    .sz_type = 416, .sz_heap_type = 928, .dk_header = 32,
		    .split_usable_from_keys = true, .sz_setentry = 16,
		    .sz_block = 528, .blocklen = 64 },
	  28, 28, 40, 44, 61, 60, 64, true, 56, 136, 64, 184, 216, 728,
	  760, 1288, 216, 416, 48, 16, 64, 36, 24 },
};

static uint64_t gc_pre(const struct pyx_size_rules *r)
{
	return pyx_size_preheader(r, GC, false, 0, false);
}

START_TEST(test_int)
{
	const struct version *v = &versions[_i];

	ck_assert_uint_eq(pyx_size_int(&v->r, 0), v->int0);
	ck_assert_uint_eq(pyx_size_int(&v->r, 1), v->int1);
	ck_assert_uint_eq(pyx_size_int(&v->r, 4), v->int2_100); /* 2**100 */
	/* float, bytes, tuple: the default rule */
	ck_assert_uint_eq(pyx_size_var(24, 0, 0), v->flt);
	ck_assert_uint_eq(pyx_size_var(33, 1, 3), v->bytes3);
	ck_assert_uint_eq(pyx_size_var(24, 8, 3) + gc_pre(&v->r), v->tuple3);
	ck_assert_uint_eq(pyx_size_var(24, 8, -3), pyx_size_var(24, 8, 3));
}
END_TEST

START_TEST(test_str)
{
	const struct version *v = &versions[_i];
	const struct pyx_size_rules *r = &v->r;

	ck_assert_uint_eq(pyx_size_str(r, ST_ASCII, 3, true, false, 0, false, 0),
			  v->s_abc);
	ck_assert_uint_eq(pyx_size_str(r, ST_KIND(1), 1, true, v->e_acute_utf8,
				       2, false, 0), v->s_e_acute);
	ck_assert_uint_eq(pyx_size_str(r, ST_KIND(2), 1, true, false, 0, false, 0),
			  v->s_euro);
	ck_assert_uint_eq(pyx_size_str(r, ST_KIND(4), 1, true, false, 0, false, 0),
			  v->s_emoji);
	/* legacy (str subclass) strings: the object, then their data */
	ck_assert_uint_eq(pyx_size_str(r, 1u << 2, 5, true, false, 0, false, 0),
			  r->sz_unicode + 6);
	ck_assert_uint_eq(pyx_size_str(r, 1u << 2, 5, false, false, 0, false, 0),
			  r->sz_unicode);
	/* a wchar_t copy (3.11 and before) counts 4 bytes a character */
	ck_assert_uint_eq(pyx_size_str(r, ST_ASCII, 3, true, false, 0, true, 3),
			  v->s_abc + 16);
}
END_TEST

START_TEST(test_containers)
{
	const struct version *v = &versions[_i];
	const struct pyx_size_rules *r = &v->r;
	uint64_t gc = gc_pre(r);
	struct pyx_dict_keys empty = { .size = 8, .refcnt = 2, .index_bytes = 8,
				       .entry_size = 24 };
	struct pyx_dict_keys one = { .nentries = 1, .size = 8, .refcnt = 1,
				     .index_bytes = 8, .usable = 4,
				     .entry_size = r->split_usable_from_keys ? 16 : 24,
				     .kind = r->split_usable_from_keys ? 1 : 0 };

	ck_assert_uint_eq(pyx_size_list(40, 0) + gc, v->list0);
	ck_assert_uint_eq(pyx_size_list(40, 10) + gc, v->list10);
	/* {} shares the static empty keys: not counted */
	ck_assert_uint_eq(pyx_size_dict(r, 48, false, &empty) + gc, v->dict0);
	ck_assert_uint_eq(pyx_size_dict(r, 48, false, &one) + gc, v->dict1);
	/* split values: usable slots, or nentries + usable (3.11+) */
	ck_assert_uint_eq(pyx_size_dict(r, 48, true, &empty),
			  48 + 8 * (r->split_usable_from_keys ? 0 : 5));
	ck_assert_uint_eq(pyx_size_set(r, 200, true, 7) + gc, v->set0);
	ck_assert_uint_eq(pyx_size_set(r, 200, false, 31) + gc, v->set10);
	/* deque(): leftindex CENTER + 1 = 32; deque(range(100)) fills from
	 * leftindex 1 (a heuristic of deque_extend) */
	ck_assert_uint_eq(pyx_size_deque(r, v->deque_basic, 32, 0) + gc,
			  v->deque0);
	ck_assert_uint_eq(pyx_size_deque(r, v->deque_basic, 1, 100) + gc,
			  v->deque100);
	ck_assert_uint_eq(pyx_size_deque(r, v->deque_basic, 1, 63),
			  v->deque_basic + 528);
	ck_assert_uint_eq(pyx_size_deque(r, v->deque_basic, 1, 64),
			  v->deque_basic + 2 * 528);
}
END_TEST

START_TEST(test_types_and_instances)
{
	const struct version *v = &versions[_i];
	const struct pyx_size_rules *r = &v->r;
	uint64_t type_flags = GC | (1UL << 31); /* PyType_Type's own */
	uint64_t inst_flags = GC | PYX_TPFLAGS_HEAPTYPE | r->preheader_flags;

	/* getsizeof(int): a static type whose type is exactly type */
	ck_assert_uint_eq(pyx_size_type(r, false, 0) +
			  pyx_size_preheader(r, type_flags, true, 0, true),
			  v->type_int);
	/* a class: the heap type and its pre-header, in every version */
	ck_assert_uint_eq(pyx_size_preheader(r, type_flags, true,
					     PYX_TPFLAGS_HEAPTYPE, true), 16);
	ck_assert_uint_eq(pyx_size_type(r, true, 100), r->sz_heap_type + 100);
	/* an instance of a plain class with one attribute */
	ck_assert_uint_eq(v->inst_basic +
			  pyx_size_preheader(r, inst_flags, false, 0, false),
			  v->inst);
	/* no GC, no pre-header */
	ck_assert_uint_eq(pyx_size_preheader(r, 0, false, 0, false), 0);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("sizes");
	TCase *tc = tcase_create("rules");
	int n = (int)(sizeof(versions) / sizeof(versions[0]));

	tcase_add_loop_test(tc, test_int, 0, n);
	tcase_add_loop_test(tc, test_str, 0, n);
	tcase_add_loop_test(tc, test_containers, 0, n);
	tcase_add_loop_test(tc, test_types_and_instances, 0, n);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return pyx_unit_run(suite());
}
