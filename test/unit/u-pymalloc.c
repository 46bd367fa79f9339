/* pymalloc read from outside, on synthetic memory: arenas, pools, classes,
 * the damage checks. */
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

int main(void)
{
	Suite *s = suite_create("pymalloc");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_stats);
	tcase_add_test(tc, test_damage);
	tcase_add_test(tc, test_huge_array);
	suite_add_tcase(s, tc);
	return pyx_unit_run(s);
}
