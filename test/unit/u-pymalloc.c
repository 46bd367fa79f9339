/* pymalloc read from outside, on synthetic memory: arenas, pools, classes,
 * the damage checks; the signature scan that finds 3.8-3.11's state
 * without symbols. */
#include <stdlib.h>
#include <string.h>

#include "pyxray/error.h"
#include "pyxray/memory.h"
#include "pyxray/memory_report.h"
#include "unit.h"

#define BASE UINT64_C(0x10000000)
#define SIZE (UINT64_C(4) << 20)
#define ARENA (UINT64_C(1) << 20)
#define POOL (UINT64_C(16) << 10)

static uint8_t *img;

static int img_read(void *ctx, pyx_addr_t a, void *buf, size_t len)
{
	(void)ctx;
	if (a < BASE || a + len > BASE + SIZE || a + len < a)
		return -PYX_E_BAD_MEMORY;
	memcpy(buf, img + (a - BASE), len);
	return 0;
}

static const struct pyx_map img_map = { BASE, BASE + SIZE, 0, 0, 0, 0,
					true, true, false, true, "" };

static const struct pyx_map *img_maps(void *ctx, size_t *n)
{
	(void)ctx;
	*n = 1;
	return &img_map;
}

static void *at(pyx_addr_t a)
{
	return img + (a - BASE);
}

static void put64(pyx_addr_t a, uint64_t v) { memcpy(at(a), &v, 8); }
static void put32(pyx_addr_t a, uint32_t v) { memcpy(at(a), &v, 4); }

static void pool(pyx_addr_t p, uint32_t szidx, uint32_t count)
{
	uint32_t size = (szidx + 1) * 16;

	put32(p + 0, count);
	put32(p + 32, 0);
	put32(p + 36, szidx);
	put32(p + 40, 48 + size * count);
	put32(p + 44, (uint32_t)POOL - size);
}

static void arena_object(pyx_addr_t ao, pyx_addr_t addr, pyx_addr_t pool_address,
			 uint32_t nfree, uint32_t ntotal)
{
	put64(ao + 0, addr);
	put64(ao + 8, pool_address);
	put32(ao + 16, nfree);
	put32(ao + 20, ntotal);
}

static struct pyx_pymalloc_where where = {
	BASE, BASE + 8, BASE + 16, BASE + 24, BASE + 32, ARENA, POOL, 16 };

/* Two arenas: one pool-aligned with three carved pools (one empty), one
 * a page off (alignment lost, 63 pools) with one pool and a damaged one. */
static struct pyx_mem *build(void)
{
	struct pyx_mem_source src = { .read = img_read, .maps = img_maps };
	struct pyx_mem *mem;
	pyx_addr_t a0 = BASE + ARENA, a1 = BASE + 2 * ARENA + 4096;
	pyx_addr_t p1 = a1 - 4096 + POOL;

	img = calloc(1, SIZE);
	ck_assert_ptr_nonnull(img);
	put64(BASE, BASE + 0x1000);
	put32(BASE + 8, 4);
	put64(BASE + 16, 2);
	put64(BASE + 24, 5);
	put64(BASE + 32, 3);
	pool(a0, 0, 10);
	pool(a0 + POOL, 3, 0);
	pool(a0 + 2 * POOL, 31, 7);
	arena_object(BASE + 0x1000, a0, a0 + 3 * POOL, 62, 64);
	pool(p1, 1, 5);
	pool(p1 + POOL, 99, 1);
	arena_object(BASE + 0x1000 + 2 * 48, a1, p1 + 2 * POOL, 61, 63);
	ck_assert_int_eq(pyx_mem_new(&src, &mem), 0);
	return mem;
}

static uint64_t cap(uint32_t size)
{
	return (POOL - 48) / size;
}

START_TEST(test_stats)
{
	struct pyx_mem *mem = build();
	struct pyx_pymalloc p = { 0 };

	ck_assert_int_eq(pyx_pymalloc_walk(mem, &where, &p), 0);
	ck_assert(p.available);
	ck_assert_uint_eq(p.arenas, 2);
	ck_assert_uint_eq(p.arena_bytes, 2 * ARENA);
	ck_assert_uint_eq(p.arenas_total, 5);
	ck_assert_uint_eq(p.arenas_highwater, 3);
	ck_assert_uint_eq(p.pools_used, 3);
	ck_assert_uint_eq(p.pools_empty, 62 + 61);
	ck_assert_uint_eq(p.bad_pools, 1);
	ck_assert_uint_eq(p.used_bytes, 10 * 16 + 7 * 512 + 5 * 32);
	ck_assert_uint_eq(p.free_bytes, (cap(16) - 10) * 16 +
			  (cap(512) - 7) * 512 + (cap(32) - 5) * 32);
	ck_assert_uint_eq(p.alignment_bytes, POOL);
	ck_assert_uint_eq(p.pool_header_bytes, 3 * 48);
	ck_assert_uint_eq(p.quantization_bytes, (POOL - 48) % 16 +
			  (POOL - 48) % 512 + (POOL - 48) % 32);
	ck_assert_uint_eq(p.classes[0].blocks_used, 10);
	ck_assert_uint_eq(p.classes[31].pools, 1);
	ck_assert_uint_eq(p.classes[1].blocks_free, cap(32) - 5);
	ck_assert_uint_eq(p.arenas_sparse, 2);
	ck_assert_uint_eq(p.narena_addr, 2);
	pyx_pymalloc_free(&p);
	pyx_mem_free(mem);
	free(img);
}
END_TEST

START_TEST(test_damage)
{
	struct pyx_mem *mem = build();
	struct pyx_pymalloc p = { 0 };

	/* An arena array longer than the memory holds: refused before
	 * anything is allocated for it. */
	put32(BASE + 8, 0x7fffffff);
	ck_assert_int_eq(pyx_pymalloc_walk(mem, &where, &p), -PYX_E_BAD_MEMORY);
	pyx_pymalloc_free(&p);
	pyx_mem_free(mem);
	free(img);

	/* pool_address outside its arena. */
	mem = build();
	memset(&p, 0, sizeof(p));
	put64(BASE + 0x1000 + 8, BASE + 3 * ARENA + 4096);
	ck_assert_int_eq(pyx_pymalloc_walk(mem, &where, &p), -PYX_E_BAD_MEMORY);
	pyx_pymalloc_free(&p);
	pyx_mem_free(mem);
	free(img);

	/* More free pools than the arena has. */
	mem = build();
	memset(&p, 0, sizeof(p));
	put32(BASE + 0x1000 + 16, 65);
	ck_assert_int_eq(pyx_pymalloc_walk(mem, &where, &p), -PYX_E_BAD_MEMORY);
	pyx_pymalloc_free(&p);
	pyx_mem_free(mem);
	free(img);

	/* Nothing allocated yet (or PYTHONMALLOC=malloc): zero arenas. */
	mem = build();
	memset(&p, 0, sizeof(p));
	put64(BASE, 0);
	ck_assert_int_eq(pyx_pymalloc_walk(mem, &where, &p), 0);
	ck_assert_uint_eq(p.arenas, 0);
	pyx_pymalloc_free(&p);
	pyx_mem_free(mem);
	free(img);
}
END_TEST

/* A hostile arena array: maxarenas and arenas are the target's to write.
 * A huge mapping (untouched pages cost the target nothing) read as zeros;
 * the largest single read is recorded. */
#define BIG UINT64_C(0x7f0000000000)
#define BIG_ENTRIES (UINT32_C(1) << 22) /* 192 MiB of arena_objects */

static size_t big_max_read;

static int big_read(void *ctx, pyx_addr_t a, void *buf, size_t len)
{
	(void)ctx;
	if (a >= BIG && a + len <= BIG + (uint64_t)BIG_ENTRIES * 48 &&
	    a + len > a) {
		if (len > big_max_read)
			big_max_read = len;
		memset(buf, 0, len);
		return 0;
	}
	return img_read(ctx, a, buf, len);
}

static const struct pyx_map big_maps_v[] = {
	{ BASE, BASE + SIZE, 0, 0, 0, 0, true, true, false, true, "" },
	{ BIG, BIG + (uint64_t)BIG_ENTRIES * 48, 0, 0, 0, 0, true, true,
	  false, true, "" },
};

static const struct pyx_map *big_maps(void *ctx, size_t *n)
{
	(void)ctx;
	*n = 2;
	return big_maps_v;
}

START_TEST(test_huge_array)
{
	struct pyx_mem_source src = { .read = big_read, .maps = big_maps };
	struct pyx_pymalloc p = { 0 };
	struct pyx_mem *mem;

	img = calloc(1, SIZE);
	ck_assert_ptr_nonnull(img);
	put64(BASE, BIG);
	put32(BASE + 8, BIG_ENTRIES);
	put64(BASE + 16, 0);
	ck_assert_int_eq(pyx_mem_new(&src, &mem), 0);
	big_max_read = 0;
	/* Mapped, all unused: no arena, and never one buffer for all of
	 * it (pyxray copied 192 MiB at once). */
	ck_assert_int_eq(pyx_pymalloc_walk(mem, &where, &p), 0);
	ck_assert_uint_eq(p.arenas, 0);
	ck_assert_uint_le(big_max_read, 1u << 20);
	pyx_pymalloc_free(&p);

	/* Past any process's arena count (16 M arenas): refused. */
	pyx_mem_free(mem);
	memset(&p, 0, sizeof(p));
	put32(BASE + 8, UINT32_C(1) << 25);
	ck_assert_int_eq(pyx_mem_new(&src, &mem), 0);
	ck_assert_int_eq(pyx_pymalloc_walk(mem, &where, &p), -PYX_E_BAD_MEMORY);
	pyx_pymalloc_free(&p);
	pyx_mem_free(mem);
	free(img);
}
END_TEST

/* ---- the signature scan (3.8-3.11 without symbols) ------------------- */

/* The interpreter's writable data [DATA, DATA_END) with usedpools at
 * TABLE and the statics around ARENAS as Debian's 3.11 lays them out
 * (highwater, ntimes, narenas, maxarenas, unused_arena_objects, arenas);
 * the arena array malloc'ed at ARRAY in anonymous memory, after a glibc
 * chunk header; the arenas of build(). */
#define DATA BASE
#define DATA_END (BASE + 0x10000)
#define TABLE (BASE + 0x2000)
#define ARENAS (BASE + 0x8000)
#define ANON DATA_END
#define ARRAY (ANON + 0x10)
#define NSLOTS 16

static uint64_t scan_bytes_read;

static int count_read(void *ctx, pyx_addr_t a, void *buf, size_t len)
{
	scan_bytes_read += len;
	return img_read(ctx, a, buf, len);
}

static const struct pyx_range data_range[] = { { DATA, DATA_END } };
static const struct pyx_range anon_range[] = { { ANON, BASE + SIZE } };

/* One used pool of class szidx at p, alone on its class's ring. */
static void used_pool(pyx_addr_t p, uint32_t szidx, uint32_t count,
		      uint32_t arenaindex)
{
	pyx_addr_t self = TABLE + 16 * szidx - 16;

	pool(p, szidx, count);
	put64(p + 16, self);
	put64(p + 24, self);
	put32(p + 32, arenaindex);
	put64(TABLE + 16 * szidx, p);
	put64(TABLE + 16 * szidx + 8, p);
}

/* An all-empty usedpools at t: every pair points at itself. */
static void empty_table(pyx_addr_t t)
{
	for (unsigned i = 0; i < 32; i++) {
		put64(t + 16 * i, t + 16 * i - 16);
		put64(t + 16 * i + 8, t + 16 * i - 16);
	}
}

static struct pyx_mem *scan_build(void)
{
	struct pyx_mem_source src = { .read = count_read, .maps = img_maps };
	struct pyx_mem *mem;
	pyx_addr_t a0 = BASE + ARENA, a1 = BASE + 2 * ARENA + 4096;
	pyx_addr_t p1 = a1 - 4096 + POOL;

	img = calloc(1, SIZE);
	ck_assert_ptr_nonnull(img);
	empty_table(TABLE);
	used_pool(a0, 0, 10, 0);
	pool(a0 + POOL, 3, 0);
	used_pool(a0 + 2 * POOL, 31, 7, 0);
	used_pool(p1, 1, 5, 1);
	put64(ARRAY - 8, (NSLOTS * 48 + 16) | 1);
	arena_object(ARRAY, a0, a0 + 3 * POOL, 62, 64);
	arena_object(ARRAY + 48, a1, p1 + POOL, 62, 63);
	for (unsigned i = 2; i < NSLOTS; i++) /* the unused list */
		put64(ARRAY + 48 * i + 32, i + 1 < NSLOTS ?
			      ARRAY + 48 * (i + 1) : 0);
	put64(ARENAS, ARRAY);
	put64(ARENAS - 8, ARRAY + 2 * 48);
	put32(ARENAS - 16, NSLOTS);
	put64(ARENAS - 24, 2);  /* narenas_currently_allocated */
	put64(ARENAS - 32, 5);  /* ntimes_arena_allocated */
	put64(ARENAS - 40, 3);  /* narenas_highwater */
	ck_assert_int_eq(pyx_mem_new(&src, &mem), 0);
	scan_bytes_read = 0;
	return mem;
}

static struct pyx_pymalloc_where scan_where(void)
{
	struct pyx_pymalloc_where w = { 0 };

	w.arena_size = ARENA;
	w.pool_size = POOL;
	w.alignment = 16;
	return w;
}

static int scan(struct pyx_mem *mem, struct pyx_pymalloc_where *w, char *why,
		size_t n)
{
	*w = scan_where();
	return pyx_pymalloc_scan(mem, data_range, 1, anon_range, 1, w, why, n);
}

static void scan_done(struct pyx_mem *mem)
{
	pyx_mem_free(mem);
	free(img);
}

START_TEST(test_scan_finds)
{
	struct pyx_mem *mem = scan_build();
	struct pyx_pymalloc_where w;
	struct pyx_pymalloc p = { 0 };
	char why[256];

	ck_assert_int_eq(scan(mem, &w, why, sizeof(why)), 0);
	ck_assert_uint_eq(w.arenas_ptr, ARENAS);
	ck_assert_uint_eq(w.maxarenas, ARENAS - 16);
	ck_assert_uint_eq(w.narenas, ARENAS - 24);
	ck_assert_uint_eq(w.ntimes, ARENAS - 32);
	ck_assert_uint_eq(w.highwater, ARENAS - 40);
	/* The state found walks as the symbols' would. */
	ck_assert_int_eq(pyx_pymalloc_walk(mem, &w, &p), 0);
	ck_assert_uint_eq(p.arenas, 2);
	ck_assert_uint_eq(p.arenas_total, 5);
	ck_assert_uint_eq(p.arenas_highwater, 3);
	ck_assert_uint_eq(p.pools_used, 3);
	ck_assert_uint_eq(p.used_bytes, 10 * 16 + 7 * 512 + 5 * 32);
	ck_assert_uint_eq(p.bad_pools, 0);
	pyx_pymalloc_free(&p);
	/* The data and the array, not the memory around. */
	ck_assert_uint_le(scan_bytes_read, (DATA_END - DATA) + 64 * 1024);
	scan_done(mem);

	/* pyenv's order: the counters, nfp2lasta, usable_arenas,
	 * unused_arena_objects, maxarenas, arenas. */
	mem = scan_build();
	memset(at(ARENAS - 40), 0, 40);
	put64(ARENAS - 8, 0);
	put32(ARENAS - 8, NSLOTS);
	put64(ARENAS - 16, ARRAY + 2 * 48);
	put64(ARENAS - 24, ARRAY + 48);
	put64(ARENAS - 568, 3);
	put64(ARENAS - 560, 5);
	put64(ARENAS - 552, 2);
	ck_assert_int_eq(scan(mem, &w, why, sizeof(why)), 0);
	ck_assert_uint_eq(w.maxarenas, ARENAS - 8);
	ck_assert_uint_eq(w.narenas, ARENAS - 552);
	ck_assert_uint_eq(w.highwater, ARENAS - 568);
	scan_done(mem);
}
END_TEST

START_TEST(test_scan_refuses_two)
{
	struct pyx_mem *mem = scan_build();
	struct pyx_pymalloc_where w;
	char why[256];

	/* A second usedpools (all classes empty) in the data. */
	empty_table(TABLE + 0x1000);
	ck_assert_int_eq(scan(mem, &w, why, sizeof(why)), -PYX_E_NOT_SUPPORTED);
	ck_assert_ptr_nonnull(strstr(why, "two tables"));
	scan_done(mem);

	/* A second word pointing at the array. */
	mem = scan_build();
	put64(DATA + 0x100, ARRAY);
	ck_assert_int_eq(scan(mem, &w, why, sizeof(why)), -PYX_E_NOT_SUPPORTED);
	ck_assert_ptr_nonnull(strstr(why, "two words"));
	scan_done(mem);

	/* Another power of two near arenas over unused slots (zeros after
	 * the array): glibc's chunk header says which is maxarenas ... */
	mem = scan_build();
	put32(ARENAS + 64, 2 * NSLOTS);
	ck_assert_int_eq(scan(mem, &w, why, sizeof(why)), 0);
	ck_assert_uint_eq(w.maxarenas, ARENAS - 16);
	scan_done(mem);

	/* ... without it (another allocator), and no static pointing past
	 * the first 16 slots: two answers, refused. */
	mem = scan_build();
	put32(ARENAS + 64, 2 * NSLOTS);
	put64(ARRAY - 8, 0);
	put64(ARENAS - 8, 0);
	ck_assert_int_eq(scan(mem, &w, why, sizeof(why)), -PYX_E_NOT_SUPPORTED);
	ck_assert_ptr_nonnull(strstr(why, "2 (maxarenas"));
	scan_done(mem);
}
END_TEST

START_TEST(test_scan_damage)
{
	struct pyx_mem *mem = scan_build();
	struct pyx_pymalloc_where w;
	char why[256];

	/* A slot in use that is no arena (its next pool past its end). */
	arena_object(ARRAY + 5 * 48, BASE + 3 * ARENA, BASE + 5 * ARENA, 0, 1);
	ck_assert_int_eq(scan(mem, &w, why, sizeof(why)), -PYX_E_NOT_SUPPORTED);
	ck_assert_ptr_nonnull(strstr(why, "no maxarenas"));
	scan_done(mem);

	/* The count disagrees with the slots in use. */
	mem = scan_build();
	put64(ARENAS - 24, 3);
	ck_assert_int_eq(scan(mem, &w, why, sizeof(why)), -PYX_E_NOT_SUPPORTED);
	scan_done(mem);

	/* A pool's arena is not where its arenaindex says. */
	mem = scan_build();
	put32(BASE + ARENA + 32, 1);
	ck_assert_int_eq(scan(mem, &w, why, sizeof(why)), -PYX_E_NOT_SUPPORTED);
	ck_assert_ptr_nonnull(strstr(why, "no pointer holds"));
	scan_done(mem);

	/* A pool that does not link back to its class. */
	mem = scan_build();
	put64(BASE + ARENA + 24, TABLE);
	ck_assert_int_eq(scan(mem, &w, why, sizeof(why)), -PYX_E_NOT_SUPPORTED);
	ck_assert_ptr_nonnull(strstr(why, "usedpools"));
	scan_done(mem);

	/* maxarenas past the arena count pyxray scans (2^18): refused
	 * without reading 2^19 slots. */
	mem = scan_build();
	put32(ARENAS - 16, UINT32_C(1) << 19);
	ck_assert_int_eq(scan(mem, &w, why, sizeof(why)), -PYX_E_NOT_SUPPORTED);
	ck_assert_uint_le(scan_bytes_read, 1u << 20);
	scan_done(mem);

	/* Nothing in use (PYTHONMALLOC=malloc): said so. */
	mem = scan_build();
	empty_table(TABLE);
	ck_assert_int_eq(scan(mem, &w, why, sizeof(why)), -PYX_E_NOT_SUPPORTED);
	ck_assert_ptr_nonnull(strstr(why, "no pool in use"));
	scan_done(mem);
}
END_TEST

START_TEST(test_scan_garbage)
{
	struct pyx_mem *mem = scan_build();
	struct pyx_pymalloc_where w;
	struct pyx_range r[2] = { { DATA, DATA_END },
				  { BASE + 0x310000, BASE + SIZE } };
	char why[256];
	uint32_t x = 12345;

	/* Bytes at random: no table, and nothing read but the data. */
	for (size_t i = 0; i < DATA_END - DATA; i += 4) {
		x = x * 1103515245u + 12345u;
		memcpy(at(DATA + i), &x, 4);
	}
	ck_assert_int_eq(scan(mem, &w, why, sizeof(why)), -PYX_E_NOT_SUPPORTED);
	ck_assert_ptr_nonnull(strstr(why, "no table"));
	ck_assert_uint_le(scan_bytes_read, DATA_END - DATA);
	scan_done(mem);

	/* 120 000 words that all point into anonymous memory: the pointers
	 * tried are bounded. */
	mem = scan_build();
	for (pyx_addr_t a = r[1].start; a < r[1].end; a += 8)
		put64(a, ANON + 0x100 + ((a >> 3) & 0xfff) * 16);
	w = scan_where();
	ck_assert_int_eq(pyx_pymalloc_scan(mem, r, 2, anon_range, 1, &w, why,
					   sizeof(why)), -PYX_E_NOT_SUPPORTED);
	ck_assert_ptr_nonnull(strstr(why, "more than"));
	scan_done(mem);

	/* More writable data than the scan reads: refused, unread. */
	mem = scan_build();
	r[1].start = BASE + SIZE;
	r[1].end = BASE + SIZE + (UINT64_C(65) << 20);
	w = scan_where();
	ck_assert_int_eq(pyx_pymalloc_scan(mem, r, 2, anon_range, 1, &w, why,
					   sizeof(why)), -PYX_E_NOT_SUPPORTED);
	ck_assert_uint_le(scan_bytes_read, DATA_END - DATA);
	scan_done(mem);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("pymalloc");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_stats);
	tcase_add_test(tc, test_damage);
	tcase_add_test(tc, test_huge_array);
	tcase_add_test(tc, test_scan_finds);
	tcase_add_test(tc, test_scan_refuses_two);
	tcase_add_test(tc, test_scan_damage);
	tcase_add_test(tc, test_scan_garbage);
	suite_add_tcase(s, tc);
	return pyx_unit_run(s);
}
