/* glibc malloc read from outside, on synthetic memory laid out as glibc
 * 2.35-2.42 lays it out: mallinfo2's sums, safe-linking, the damage checks. */
#include <stdlib.h>
#include <string.h>

#include "pyxray/error.h"
#include "pyxray/memory.h"
#include "pyxray/memory_report.h"
#include "unit.h"

#define BASE UINT64_C(0x10000000)
#define SIZE (UINT64_C(1) << 20)
#define MAIN (BASE + 0x100)
#define MP (BASE + 0x3000)
#define BINS (MAIN + 112)
#define SYS UINT64_C(0x21000)

static uint8_t *img;

static int img_read(void *ctx, pyx_addr_t a, void *buf, size_t len)
{
	(void)ctx;
	if (a < BASE || a + len > BASE + SIZE || a + len < a)
		return -PYX_E_BAD_MEMORY;
	memcpy(buf, img + (a - BASE), len);
	return 0;
}

static void put64(pyx_addr_t a, uint64_t v) { memcpy(img + (a - BASE), &v, 8); }
static void put32(pyx_addr_t a, uint32_t v) { memcpy(img + (a - BASE), &v, 4); }

static pyx_addr_t bin_at(unsigned i)
{
	return BINS + 16 * (i - 1) - 16;
}

static pyx_addr_t protect(pyx_addr_t pos, pyx_addr_t p, bool mangle)
{
	return mangle ? (pos >> 12) ^ p : p;
}

#define C1 (BASE + 0x10000)
#define C2 (BASE + 0x10100)
#define C3 (BASE + 0x11000)
#define TOP (BASE + 0x20000)

static struct pyx_cmalloc_where where = {
	MAIN, MP, 112, 10, 16, PYX_MP_235, 1, 0, 0 };

static struct pyx_mem *build(bool mangle)
{
	struct pyx_mem_source src = { .read = img_read };
	struct pyx_mem *mem;

	img = calloc(1, SIZE);
	ck_assert_ptr_nonnull(img);
	for (unsigned i = 1; i < 128; i++) {
		put64(BINS + 16 * (i - 1), bin_at(i));
		put64(BINS + 16 * (i - 1) + 8, bin_at(i));
	}
	put64(BINS - 16, TOP);                 /* top */
	put64(BINS + 2048, MAIN);              /* next: itself */
	put64(BINS + 2072, SYS);               /* system_mem */
	put64(TOP + 8, 0x1000 | 1);
	/* fastbin 0 (32 bytes): C1 -> C2 */
	put64(MAIN + 16, C1);
	put64(C1 + 8, 0x21);
	put64(C1 + 16, protect(C1 + 16, C2, mangle));
	put64(C2 + 8, 0x21);
	put64(C2 + 16, protect(C2 + 16, 0, mangle));
	/* the unsorted bin: C3 alone */
	put64(BINS, C3);
	put64(BINS + 8, C3);
	put64(C3 + 8, 0x400 | 1);
	put64(C3 + 16, bin_at(1));
	put64(C3 + 24, bin_at(1));
	/* mp_: 2 mmapped blocks */
	put32(MP + 60, 2);
	put32(MP + 64, 65536);
	put64(MP + 80, 0x42000);
	ck_assert_int_eq(pyx_mem_new(&src, &mem), 0);
	return mem;
}

static void done(struct pyx_mem *mem, struct pyx_cmalloc *m)
{
	pyx_cmalloc_free(m);
	pyx_mem_free(mem);
	free(img);
}

START_TEST(test_mallinfo)
{
	struct pyx_mem *mem = build(true);
	struct pyx_cmalloc m = { 0 };
	uint64_t free_b = 0x1000 + 64 + 0x400;

	ck_assert_int_eq(pyx_cmalloc_walk(mem, &where, &m), 0);
	ck_assert(m.available);
	ck_assert(!m.partial);
	ck_assert_uint_eq(m.narenas, 1);
	ck_assert_uint_eq(m.arena_bytes, SYS);
	ck_assert_uint_eq(m.free_bytes, free_b);
	ck_assert_uint_eq(m.in_use_bytes, SYS - free_b);
	ck_assert_uint_eq(m.fastbin_bytes, 64);
	ck_assert_uint_eq(m.top_bytes, 0x1000);
	ck_assert_uint_eq(m.free_chunks, 4);
	ck_assert_uint_eq(m.mmapped_blocks, 2);
	ck_assert_uint_eq(m.mmapped_bytes, 0x42000);
	done(mem, &m);
}
END_TEST

/* Before 2.32 the fd links are raw: with the version unknown (-1) each
 * fastbin is tried both ways, and only one fits. */
START_TEST(test_raw_links)
{
	struct pyx_mem *mem = build(false);
	struct pyx_cmalloc_where w = where;
	struct pyx_cmalloc m = { 0 };

	w.safe_linking = -1;
	ck_assert_int_eq(pyx_cmalloc_walk(mem, &w, &m), 0);
	ck_assert(!m.partial);
	ck_assert_uint_eq(m.fastbin_bytes, 64);
	done(mem, &m);
}
END_TEST

START_TEST(test_damage)
{
	struct pyx_mem *mem = build(true);
	struct pyx_cmalloc m = { 0 };

	/* A bin that loops on itself: its fd does not point back; cut. */
	put64(C3 + 24, C3);
	put64(C3 + 16, C3);
	ck_assert_int_eq(pyx_cmalloc_walk(mem, &where, &m), 0);
	ck_assert(m.partial);
	done(mem, &m);

	/* A fastbin chunk of the wrong size, and one pointing nowhere. */
	mem = build(true);
	memset(&m, 0, sizeof(m));
	put64(C2 + 8, 0x31);
	ck_assert_int_eq(pyx_cmalloc_walk(mem, &where, &m), 0);
	ck_assert(m.partial);
	ck_assert_uint_eq(m.fastbin_bytes, 32);
	done(mem, &m);

	/* A ring of arenas that never comes back: bounded. */
	mem = build(true);
	memset(&m, 0, sizeof(m));
	put64(BINS + 2048, BASE + 0x50000);
	ck_assert_int_eq(pyx_cmalloc_walk(mem, &where, &m), 0);
	ck_assert(m.partial);
	done(mem, &m);

	/* An absurd system_mem: not an arena. */
	mem = build(true);
	memset(&m, 0, sizeof(m));
	put64(BINS + 2072, UINT64_MAX);
	ck_assert_int_eq(pyx_cmalloc_walk(mem, &where, &m), -PYX_E_BAD_MEMORY);
	done(mem, &m);
}
END_TEST

/* A fastbin that loops (a double free: A -> B -> A) in an arena whose
 * system_mem allows 33 M chunks: the walk ends at the loop, each chunk
 * counted once, instead of going round until the bound. */
START_TEST(test_fastbin_cycle)
{
	struct pyx_mem *mem = build(true);
	struct pyx_cmalloc m = { 0 };

	put64(BINS + 2072, UINT64_C(1) << 30);
	put64(C2 + 16, protect(C2 + 16, C1, true));
	ck_assert_int_eq(pyx_cmalloc_walk(mem, &where, &m), 0);
	ck_assert(m.partial);
	ck_assert_uint_eq(m.fastbin_bytes, 64);
	ck_assert_uint_eq(m.free_chunks, 4);
	done(mem, &m);

	/* A chunk that points at itself, raw links tried both ways. */
	mem = build(false);
	memset(&m, 0, sizeof(m));
	{
		struct pyx_cmalloc_where w = where;

		w.safe_linking = -1;
		put64(BINS + 2072, UINT64_C(1) << 30);
		put64(C1 + 16, C1);
		ck_assert_int_eq(pyx_cmalloc_walk(mem, &w, &m), 0);
	}
	ck_assert(m.partial);
	ck_assert_uint_eq(m.fastbin_bytes, 32);
	done(mem, &m);
}
END_TEST

/* A thread arena (BASE + 0x40000) whose heap_info (at BASE, 64 MiB
 * aligned) names itself as its previous heap: one heap, not 4096 copies
 * (each then placed in the page map). */
#define TA (BASE + 0x40000)
#define TA_BINS (TA + 112)
#define TA_TOP (BASE + 0x30000)

START_TEST(test_heap_cycle)
{
	struct pyx_mem *mem = build(true);
	struct pyx_cmalloc m = { 0 };

	for (unsigned i = 1; i < 128; i++) {
		put64(TA_BINS + 16 * (i - 1), TA_BINS + 16 * (i - 1) - 16);
		put64(TA_BINS + 16 * (i - 1) + 8, TA_BINS + 16 * (i - 1) - 16);
	}
	put64(TA_BINS - 16, TA_TOP);
	put64(TA_BINS + 2048, MAIN);           /* next: back to main */
	put64(TA_BINS + 2072, 0x10000);        /* system_mem */
	put64(TA_TOP + 8, 0x1000 | 1);
	put64(BINS + 2048, TA);                /* main's next */
	put64(BASE + 0, TA);                   /* heap_info.ar_ptr */
	put64(BASE + 8, BASE);                 /* prev: itself */
	put64(BASE + 16, 0x80000);             /* size */
	ck_assert_int_eq(pyx_cmalloc_walk(mem, &where, &m), 0);
	ck_assert_uint_eq(m.narenas, 2);
	ck_assert_uint_eq(m.arenas[1].heaps, 1);
	ck_assert_uint_eq(m.nheaps, 1);
	ck_assert_uint_eq(m.heaps[0].start, BASE);
	ck_assert_uint_eq(m.heaps[0].end, BASE + 0x80000);
	done(mem, &m);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("cmalloc");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_mallinfo);
	tcase_add_test(tc, test_raw_links);
	tcase_add_test(tc, test_damage);
	tcase_add_test(tc, test_fastbin_cycle);
	tcase_add_test(tc, test_heap_cycle);
	suite_add_tcase(s, tc);
	return pyx_unit_run(s);
}
