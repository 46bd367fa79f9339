/* Unit tests of lib/linetable.c: hand-made tables of each kind, corrupt
 * and truncated tables, and random bytes fed to every decoder (run these
 * under ASan/UBSan: each table sits in a buffer of exactly its length).
 * The real proof against each CPython is test/integration/test_linetable.py.
 */
#include <check.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pyxray/linetable.h"

#include "unit.h"

#define A2L(kind, t, first, addr)                                              \
	pyx_linetable_addr2line(kind, t, sizeof(t), first, addr)

struct want {
	int addr, line;
};

static void check_lines(enum pyx_linetable_kind kind, const uint8_t *t,
			size_t len, int first, const struct want *w, size_t n)
{
	for (size_t i = 0; i < n; i++)
		ck_assert_msg(pyx_linetable_addr2line(kind, t, len, first,
						      w[i].addr) == w[i].line,
			      "addr %d: got %d, want %d", w[i].addr,
			      pyx_linetable_addr2line(kind, t, len, first,
						      w[i].addr),
			      w[i].line);
}

static void check_ranges(enum pyx_linetable_kind kind, const uint8_t *t,
			 size_t len, int first, int code_len,
			 const struct pyx_line_range *w, int n)
{
	struct pyx_line_range got[32];

	ck_assert_int_le(n, 32);
	ck_assert_int_eq(pyx_linetable_ranges(kind, t, len, first, code_len,
					      got, 32), n);
	for (int i = 0; i < n; i++) {
		ck_assert_msg(got[i].start == w[i].start &&
				      got[i].end == w[i].end &&
				      got[i].line == w[i].line,
			      "range %d: got (%d, %d, %d), want (%d, %d, %d)",
			      i, got[i].start, got[i].end, got[i].line,
			      w[i].start, w[i].end, w[i].line);
	}
	/* no room: still the count, and nothing written */
	ck_assert_int_eq(pyx_linetable_ranges(kind, t, len, first, code_len,
					      NULL, 0), n);
}

/* ---- 3.8/3.9 lnotab ---------------------------------------------------- */

/* Objects/lnotab_notes.txt's example: a line jump of 300 is three pairs,
 * an address jump of 300 two. */
static const uint8_t lnotab[] = { 6,   1, 44, 5,   255, 0,  45,
				  127, 0, 127, 0, 46, 11, 1 };

START_TEST(lnotab_lines)
{
	static const struct want w[] = {
		{ -5, 1 },    { -1, 1 },    { 0, 1 },	  { 5, 1 },
		{ 6, 2 },     { 49, 2 },    { 50, 7 },	  { 304, 7 },
		{ 305, 7 },   { 349, 7 },   { 350, 307 }, { 360, 307 },
		{ 361, 308 }, { 9999, 308 }, /* past the end: last line */
	};

	check_lines(PYX_LT_LNOTAB, lnotab, sizeof(lnotab), 1, w,
		    sizeof(w) / sizeof(w[0]));
}
END_TEST

START_TEST(lnotab_ranges)
{
	static const struct pyx_line_range full[] = {
		{ 0, 6, 1 }, { 6, 50, 2 }, { 50, 350, 7 }, { 350, 361, 307 },
		{ 361, 370, 308 },
	};
	static const struct pyx_line_range cut[] = {
		{ 0, 6, 1 }, { 6, 50, 2 }, { 50, 100, 7 },
	};

	check_ranges(PYX_LT_LNOTAB, lnotab, sizeof(lnotab), 1, 370, full, 5);
	check_ranges(PYX_LT_LNOTAB, lnotab, sizeof(lnotab), 1, 100, cut, 3);
	check_ranges(PYX_LT_LNOTAB, lnotab, sizeof(lnotab), 1, 0, NULL, 0);
}
END_TEST

START_TEST(lnotab_signed)
{
	/* 3.8+: line increments are signed (a for loop jumping back) */
	static const uint8_t t[] = { 2, 3, 4, 0xfe, 2, 0x80 };
	static const struct want w[] = {
		{ 0, 10 }, { 1, 10 }, { 2, 13 }, { 5, 13 },
		{ 6, 11 }, { 7, 11 }, { 8, -117 },
	};
	static const struct pyx_line_range r[] = {
		{ 0, 2, 10 }, { 2, 6, 13 }, { 6, 8, 11 }, { 8, 10, -117 },
	};

	check_lines(PYX_LT_LNOTAB, t, sizeof(t), 10, w, 7);
	check_ranges(PYX_LT_LNOTAB, t, sizeof(t), 10, 10, r, 4);
}
END_TEST

START_TEST(lnotab_empty_odd)
{
	static const uint8_t odd[] = { 4, 1, 9 };
	static const struct pyx_line_range r[] = { { 0, 12, 7 } };

	ck_assert_int_eq(pyx_linetable_addr2line(PYX_LT_LNOTAB, NULL, 0, 7, 0),
			 7);
	ck_assert_int_eq(pyx_linetable_addr2line(PYX_LT_LNOTAB, odd, 0, 7, 80),
			 7);
	check_ranges(PYX_LT_LNOTAB, odd, 0, 7, 12, r, 1);
	/* a trailing odd byte is ignored, as PyCode_Addr2Line does ... */
	ck_assert_int_eq(A2L(PYX_LT_LNOTAB, odd, 7, 3), 7);
	ck_assert_int_eq(A2L(PYX_LT_LNOTAB, odd, 7, 4), 8);
	ck_assert_int_eq(A2L(PYX_LT_LNOTAB, odd, 7, 400), 8);
	/* ... but it is not a table CPython wrote */
	ck_assert_int_eq(pyx_linetable_ranges(PYX_LT_LNOTAB, odd, sizeof(odd),
					      7, 12, NULL, 0), -1);
}
END_TEST

/* ---- 3.10 co_linetable ------------------------------------------------- */

/* A zero-width entry carrying a line delta, a no-line range (-128), a
 * negative delta and a long range split in two at 254 bytes. */
static const uint8_t linetable[] = { 6, 1, 0, 2, 10, 0x80, 4, 0xff,
				     254, 0, 10, 0 };

START_TEST(linetable_lines)
{
	static const struct want w[] = {
		{ -2, 5 },  { 0, 6 },	{ 5, 6 },   { 6, -1 },	{ 15, -1 },
		{ 16, 7 },  { 19, 7 },	{ 20, 7 },  { 273, 7 }, { 274, 7 },
		{ 283, 7 }, { 284, -1 }, { 9999, -1 },
	};

	check_lines(PYX_LT_LINETABLE, linetable, sizeof(linetable), 5, w,
		    sizeof(w) / sizeof(w[0]));
}
END_TEST

START_TEST(linetable_ranges)
{
	/* 3.10's co_lines() does not merge: neither do we */
	static const struct pyx_line_range r[] = {
		{ 0, 6, 6 },	 { 6, 16, -1 },	  { 16, 20, 7 },
		{ 20, 274, 7 }, { 274, 284, 7 },
	};
	static const struct pyx_line_range cut[] = {
		{ 0, 6, 6 }, { 6, 10, -1 },
	};

	check_ranges(PYX_LT_LINETABLE, linetable, sizeof(linetable), 5, 284,
		     r, 5);
	check_ranges(PYX_LT_LINETABLE, linetable, sizeof(linetable), 5, 10,
		     cut, 2);
	/* a table shorter than the code: the rest has no range */
	check_ranges(PYX_LT_LINETABLE, linetable, sizeof(linetable), 5, 500,
		     r, 5);
}
END_TEST

START_TEST(linetable_empty_odd)
{
	static const uint8_t odd[] = { 6, 1, 4 };

	ck_assert_int_eq(pyx_linetable_addr2line(PYX_LT_LINETABLE, odd, 0, 5,
						 0), -1);
	ck_assert_int_eq(pyx_linetable_ranges(PYX_LT_LINETABLE, odd, 0, 5, 10,
					      NULL, 0), 0);
	ck_assert_int_eq(A2L(PYX_LT_LINETABLE, odd, 5, 0), 6);
	ck_assert_int_eq(A2L(PYX_LT_LINETABLE, odd, 5, 6), -1);
	ck_assert_int_eq(pyx_linetable_ranges(PYX_LT_LINETABLE, odd,
					      sizeof(odd), 5, 10, NULL, 0),
			 -1);
}
END_TEST

/* ---- 3.11+ location table ---------------------------------------------- */

#define ENTRY(code, units) (0x80 | (code) << 3 | ((units) - 1))

static const uint8_t locations[] = {
	ENTRY(13, 1), 0x04,		 /* no columns, +2: line 12 */
	ENTRY(0, 3), 0x05,		 /* short form: same line */
	ENTRY(11, 2), 0x01, 0x02,	 /* one line, +1: 13 */
	ENTRY(15, 1),			 /* no location */
	ENTRY(14, 8), 0x07, 0x00, 0x01, 0x02, /* long, -3: 10 */
	ENTRY(13, 1), 0x50, 0x5c, 0x02,	 /* +5000 in three chunks */
	ENTRY(10, 1), 0x03, 0x04,	 /* one line, +0 */
};

START_TEST(locations_lines)
{
	static const struct want w[] = {
		{ -2, 10 }, { -1, 10 },	 { 0, 12 },    { 1, 12 },   { 2, 12 },
		{ 7, 12 },  { 8, 13 },	 { 11, 13 },   { 12, -1 },  { 13, -1 },
		{ 14, 10 }, { 29, 10 },	 { 30, 5010 }, { 33, 5010 }, { 34, -1 },
		{ INT_MAX, -1 },
	};

	check_lines(PYX_LT_LOCATIONS, locations, sizeof(locations), 10, w,
		    sizeof(w) / sizeof(w[0]));
}
END_TEST

START_TEST(locations_ranges)
{
	/* merged like 3.12+'s co_lines() (3.11's yields one per entry) */
	static const struct pyx_line_range r[] = {
		{ 0, 8, 12 },	{ 8, 12, 13 },	 { 12, 14, -1 },
		{ 14, 30, 10 }, { 30, 34, 5010 },
	};
	static const uint8_t nolines[] = { ENTRY(15, 2), ENTRY(15, 1),
					   ENTRY(12, 1), 0, 0 };
	static const struct pyx_line_range r2[] = { { 0, 6, -1 }, { 6, 8, 3 } };

	check_ranges(PYX_LT_LOCATIONS, locations, sizeof(locations), 10, 34,
		     r, 5);
	check_ranges(PYX_LT_LOCATIONS, nolines, sizeof(nolines), 1, 8, r2, 2);
	ck_assert_int_eq(pyx_linetable_ranges(PYX_LT_LOCATIONS, locations, 0,
					      10, 34, NULL, 0), 0);
}
END_TEST

START_TEST(locations_corrupt)
{
	static const uint8_t trunc1[] = { ENTRY(13, 1) };
	static const uint8_t trunc2[] = { ENTRY(13, 1), 0x41 };
	static const uint8_t trunc3[] = { ENTRY(0, 1), 0x05, ENTRY(14, 1),
					  0x50 };
	static const uint8_t nohead[] = { 0x05, ENTRY(0, 1), 0x05 };
	static const uint8_t intohead[] = { ENTRY(13, 1), 0x42, ENTRY(0, 1) };
	static const uint8_t huge[] = { ENTRY(13, 1), 0x7f, 0x7f, 0x7f,
					0x7f, 0x7f, 0x7f, 0x7f, 0x01 };
	static const uint8_t overflow[] = { ENTRY(12, 1), 0, 0 };

	ck_assert_int_eq(A2L(PYX_LT_LOCATIONS, trunc1, 1, 0), -1);
	ck_assert_int_eq(A2L(PYX_LT_LOCATIONS, trunc2, 1, 0), -1);
	ck_assert_int_eq(A2L(PYX_LT_LOCATIONS, trunc3, 1, 0), 1);
	ck_assert_int_eq(A2L(PYX_LT_LOCATIONS, trunc3, 1, 2), -1);
	ck_assert_int_eq(A2L(PYX_LT_LOCATIONS, nohead, 1, 0), -1);
	ck_assert_int_eq(A2L(PYX_LT_LOCATIONS, intohead, 1, 0), -1);
	ck_assert_int_eq(A2L(PYX_LT_LOCATIONS, huge, 1, 0), -1);
	ck_assert_int_eq(A2L(PYX_LT_LOCATIONS, overflow, INT_MAX - 1, 0), -1);
	ck_assert_int_eq(A2L(PYX_LT_LOCATIONS, overflow, INT_MAX - 1, -1),
			 INT_MAX - 1);
#define RANGES(t) pyx_linetable_ranges(PYX_LT_LOCATIONS, t, sizeof(t), 1, \
				       100, NULL, 0)
	ck_assert_int_eq(RANGES(trunc1), -1);
	ck_assert_int_eq(RANGES(trunc2), -1);
	ck_assert_int_eq(RANGES(trunc3), -1);
	ck_assert_int_eq(RANGES(nohead), -1);
	ck_assert_int_eq(RANGES(intohead), -1);
	ck_assert_int_eq(RANGES(huge), -1);
#undef RANGES
}
END_TEST

/* ---- arguments --------------------------------------------------------- */

START_TEST(bad_arguments)
{
	struct pyx_line_range r[4];

	ck_assert_int_eq(pyx_linetable_addr2line((enum pyx_linetable_kind)7,
						 lnotab, sizeof(lnotab), 1, 0),
			 -1);
	ck_assert_int_eq(pyx_linetable_ranges((enum pyx_linetable_kind)7,
					      lnotab, sizeof(lnotab), 1, 10,
					      r, 4), -1);
	ck_assert_int_eq(pyx_linetable_ranges(PYX_LT_LNOTAB, lnotab,
					      sizeof(lnotab), 1, -1, r, 4), -1);
	/* NULL with a length is a caller bug: no read, no answer */
	ck_assert_int_eq(pyx_linetable_ranges(PYX_LT_LOCATIONS, NULL, 5, 1,
					      10, r, 4), -1);
	ck_assert_int_eq(pyx_linetable_addr2line(PYX_LT_LOCATIONS, NULL, 5, 1,
						 0), -1);
	ck_assert_int_eq(pyx_linetable_addr2line(PYX_LT_LNOTAB, NULL, 5, 3,
						 0), 3);
}
END_TEST

/* ---- random bytes ------------------------------------------------------ */

static uint64_t rng_state;

static uint32_t rnd(void)
{
	/* xorshift64*: fixed seed, same tables on every run */
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return (uint32_t)((rng_state * 0x2545F4914F6CDD1DULL) >> 32);
}

/* Random tables of each kind, each in a heap buffer of exactly its size.
 * Whatever the bytes: no crash, ranges ordered inside [0, code_len), and
 * where ranges() succeeds addr2line() agrees with it at every address. */
START_TEST(random_tables)
{
	static const enum pyx_linetable_kind kinds[] = {
		PYX_LT_LNOTAB, PYX_LT_LINETABLE, PYX_LT_LOCATIONS
	};
	enum pyx_linetable_kind kind = kinds[_i];
	struct pyx_line_range *r = malloc(1024 * sizeof(*r));
	int corrupt = 0, decoded = 0;
#define A2L_N(a) pyx_linetable_addr2line(kind, t, len, first, a)

	ck_assert_ptr_nonnull(r);
	rng_state = 0x9e3779b97f4a7c15ULL + (uint64_t)_i;
	for (int iter = 0; iter < 4000; iter++) {
		size_t len = rnd() % 200, i;
		uint8_t *t = malloc(len ? len : 1);
		int first = (int)(rnd() % 2000) - 100, code_len, n, prev = 0;
		bool mostly_valid = rnd() % 2;

		ck_assert_ptr_nonnull(t);
		if (iter % 500 == 0)
			first = iter % 1000 ? INT_MAX - 3 : INT_MIN + 3;
		for (i = 0; i < len; i++) {
			t[i] = (uint8_t)rnd();
			/* half the location tables: entry-ish headers, short
			 * varints, so decoding gets somewhere */
			if (kind == PYX_LT_LOCATIONS && mostly_valid)
				t[i] = (rnd() % 3) ? (t[i] | 0x80) :
						     (t[i] & 0x3f);
		}
		code_len = (int)(rnd() % 1200);
		n = pyx_linetable_ranges(kind, t, len, first, code_len, r, 1024);
		ck_assert_int_le(n, 1024);
		if (n < 0) {
			corrupt++;
		} else {
			decoded++;
			for (int k = 0; k < n; k++) {
				ck_assert_int_ge(r[k].start, prev);
				ck_assert_int_lt(r[k].start, r[k].end);
				ck_assert_int_le(r[k].end, code_len);
				prev = r[k].end;
			}
			if (kind == PYX_LT_LNOTAB && code_len > 0) {
				/* the lnotab gives every address a line */
				ck_assert_int_eq(r[0].start, 0);
				ck_assert_int_eq(r[n - 1].end, code_len);
			}
			/* every range's edges, and the gaps between */
			for (int k = 0; k < n; k++) {
				ck_assert_int_eq(A2L_N(r[k].start), r[k].line);
				ck_assert_int_eq(A2L_N(r[k].end - 1),
						 r[k].line);
				if (k + 1 < n && r[k + 1].start > r[k].end)
					ck_assert_int_eq(A2L_N(r[k].end), -1);
			}
			if (n && r[n - 1].end < code_len)
				ck_assert_int_eq(A2L_N(r[n - 1].end), -1);
			if (!n && code_len)
				ck_assert_int_eq(A2L_N(0), -1);
		}
		for (int a = -3; a < 8; a++)
			(void)pyx_linetable_addr2line(kind, t, len, first,
						      a * 97);
		ck_assert_int_eq(pyx_linetable_addr2line(kind, t, len, first,
							 -1), first);
		free(t);
	}
	/* both outcomes exercised */
	ck_assert_int_gt(decoded, 100);
	if (kind != PYX_LT_LNOTAB)
		ck_assert_int_gt(corrupt, 100);
	free(r);
#undef A2L_N
}
END_TEST

static Suite *linetable_suite(void)
{
	Suite *s = suite_create("linetable");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, lnotab_lines);
	tcase_add_test(tc, lnotab_ranges);
	tcase_add_test(tc, lnotab_signed);
	tcase_add_test(tc, lnotab_empty_odd);
	tcase_add_test(tc, linetable_lines);
	tcase_add_test(tc, linetable_ranges);
	tcase_add_test(tc, linetable_empty_odd);
	tcase_add_test(tc, locations_lines);
	tcase_add_test(tc, locations_ranges);
	tcase_add_test(tc, locations_corrupt);
	tcase_add_test(tc, bad_arguments);
	tcase_add_loop_test(tc, random_tables, 0, 3);
	tcase_set_timeout(tc, 60);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return pyx_unit_run(linetable_suite());
}
