/* A fake target for the walkers' unit tests (u-referents, u-asyncio,
 * u-tracemalloc): one mapping, an arena of FAKE_WORDS words in the test's
 * own memory, behind a pyx_mem source that serves only it and counts every
 * read that falls outside; and a python over it with a version's built-in
 * layout table.  A test builds fake objects in the arena with take() and
 * put_n(), then runs a walker on them. */
#ifndef PYX_FAKE_TARGET_H
#define PYX_FAKE_TARGET_H

#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "abi.h"
#include "pyxray/layout.h"
#include "pyxray/memory.h"

#define FAKE_WORDS (1u << 16)
#define FAKE_PAGE 4096u

static uint64_t arena[FAKE_WORDS] __attribute__((aligned(FAKE_PAGE)));
static size_t used;
static struct pyx_map arena_map;
static uint64_t reads_outside;

static const struct pyx_map *src_maps(void *ctx, size_t *n)
{
	(void)ctx;
	*n = 1;
	return &arena_map;
}

static int src_read(void *ctx, pyx_addr_t addr, void *buf, size_t len)
{
	pyx_addr_t lo = (pyx_addr_t)(uintptr_t)arena;

	(void)ctx;
	if (addr < lo || len > sizeof(arena) || addr - lo > sizeof(arena) - len) {
		reads_outside++;
		return pyx_err_set(PYX_E_BAD_MEMORY, "outside the arena");
	}
	memcpy(buf, (const uint8_t *)arena + (addr - lo), len);
	return 0;
}

/* n zeroed words of the arena, 16-aligned. */
static inline uint64_t *take(size_t n)
{
	uint64_t *p;

	used = (used + 1) & ~(size_t)1;
	ck_assert_uint_le(used + n, FAKE_WORDS);
	p = &arena[used];
	used += n;
	return p;
}

static inline pyx_addr_t A(const void *p)
{
	return (pyx_addr_t)(uintptr_t)p;
}

/* A field of width bytes of a fake object, at the layout's offset. */
static inline void put_n(struct pyx_python *py, void *obj,
			 enum pyx_layout_id id, uint64_t v, size_t width)
{
	int32_t off = py->layout.v[id];

	ck_assert_int_ne(off, PYX_OFF_NONE);
	memcpy((uint8_t *)obj + off, &v, width);
}

/* A python 3.minor over a zeroed arena whose first skip words stay unused;
 * its type object (its own type) is the first object. */
static inline struct pyx_python *fake_python(int minor, size_t skip)
{
	struct pyx_python *py = calloc(1, sizeof(*py));
	struct pyx_mem_source src = { .read = src_read, .maps = src_maps };
	uint64_t *meta;

	ck_assert_ptr_nonnull(py);
	memset(arena, 0, sizeof(arena));
	used = skip;
	reads_outside = 0;
	arena_map = (struct pyx_map){ .start = A(arena),
				      .end = A(arena) + sizeof(arena),
				      .r = true, .w = true, .p = true };
	py->info.major = 3;
	py->info.minor = minor;
	snprintf(py->info.version, sizeof(py->info.version), "3.%d.99", minor);
	ck_assert_int_eq(pyx_abi_select(py), 0);
	ck_assert_int_eq(pyx_layout_from_table(&py->layout, 3, minor, 99, NULL),
			 0);
	ck_assert_int_eq(pyx_mem_new(&src, &py->mem), 0);
	meta = take(128);
	put_n(py, meta, PYX_L_OB_TYPE, A(meta), 8);
	py->types.type = A(meta);
	return py;
}

static inline void fake_python_free(struct pyx_python *py)
{
	if (!py)
		return;
	pyx_mem_free(py->mem);
	free(py);
}

#endif
