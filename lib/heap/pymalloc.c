/* pymalloc read from outside: arenas, pools and size classes, the numbers
 * sys._debugmallocstats() prints (docs/memory.md).
 *
 * Where the allocator's state lives changed over versions:
 *  - 3.8-3.11: file-static variables of Objects/obmalloc.c (arenas,
 *    maxarenas, narenas_currently_allocated, ...), LOCAL symbols found in
 *    .symtab only: a stripped build without its debug file has none;
 *  - 3.12: struct _obmalloc_state embedded in the interpreter
 *    (interp->obmalloc); 3.13+: a pointer to it, often shared with the main
 *    interpreter.  Its mgmt part is found from the layout's
 *    mgmt.narenas_currently_allocated, as pyx_heap_arena_bytes() does.
 *
 * The obmalloc structs' offsets below are not in the ABI layer's field list
 * (include/pyxray/layout.h): they are stable over 3.8-3.15 on 64-bit
 * (checked against CPython's Objects/obmalloc.c and
 * Include/internal/pycore_obmalloc.h, and the DWARF of the pyenv 3.8-3.13
 * builds and Debian's 3.14d/3.15d with gdb's ptype /o), so they are kept
 * here as one table; they belong in lib/abi's layout once it has room.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pyxray/memory.h"
#include "pyxray/memory_report.h"
#include "pyxray/symbols.h"

#include "reader.h"

/* struct arena_object (48 bytes). */
#define AO_SIZE 48
#define AO_ADDRESS 0
#define AO_POOL_ADDRESS 8
#define AO_NFREEPOOLS 16
#define AO_NTOTALPOOLS 20
/* struct pool_header (48 bytes; POOL_OVERHEAD with 16-byte alignment). */
#define POOL_HEADER 48
#define PH_COUNT 0
#define PH_SZIDX 36
#define PH_NEXTOFFSET 40
#define PH_MAXNEXTOFFSET 44
/* struct _obmalloc_mgmt (3.12+), from narenas_currently_allocated: arenas
 * 0, maxarenas 8, unused_arena_objects 16, usable_arenas 24, nfp2lasta[65]
 * 32, narenas_currently_allocated 552, ntimes_arena_allocated 560,
 * narenas_highwater 568. */
#define MGMT_NARENAS 552

/* No process has more arenas: 16 M arenas are 4 TiB of 256 KiB arenas
 * (3.8, 3.9), 16 TiB of 1 MiB ones.  maxarenas is the target's to write;
 * the address space (2^47 / 256 KiB = 2^29) is no bound on the pause. */
#define MAX_ARENAS (UINT64_C(1) << 24)
/* arena_objects read at once (192 KiB). */
#define AO_CHUNK 4096

static const struct geometry {
	int minor_lo, minor_hi;
	uint64_t arena_size, pool_size;
} geometries[] = {
	/* 3.8, 3.9: 256 KiB arenas of 4 KiB pools; 16-byte alignment. */
	{ 8, 9, UINT64_C(256) << 10, UINT64_C(4) << 10 },
	/* 3.10+: with the radix tree (64-bit), 1 MiB arenas, 16 KiB pools. */
	{ 10, 15, UINT64_C(1) << 20, UINT64_C(16) << 10 },
};

void pyx_pymalloc_free(struct pyx_pymalloc *p)
{
	if (!p)
		return;
	free(p->arena_addr);
	p->arena_addr = NULL;
	p->narena_addr = 0;
}

static int read_u32(struct pyx_mem *mem, pyx_addr_t a, uint32_t *v)
{
	return pyx_mem_read(mem, a, v, sizeof(*v));
}

static int add_arena(struct pyx_pymalloc *out, pyx_addr_t a, size_t *cap)
{
	if (out->narena_addr == *cap) {
		size_t n = *cap ? *cap * 2 : 64;
		pyx_addr_t *v = realloc(out->arena_addr, n * sizeof(*v));

		if (!v)
			return -PYX_E_NOMEM;
		out->arena_addr = v;
		*cap = n;
	}
	out->arena_addr[out->narena_addr++] = a;
	return 0;
}

/* One arena's carved pools, as _PyObject_DebugMallocStats counts them. */
static int walk_arena(struct pyx_mem *mem, const struct pyx_pymalloc_where *w,
		      pyx_addr_t base, pyx_addr_t pool_address,
		      struct pyx_pymalloc *out, uint64_t *used)
{
	uint64_t mask = w->pool_size - 1;
	pyx_addr_t p = base, end = base + w->arena_size;
	uint8_t h[POOL_HEADER];
	int err;

	*used = 0;
	if (p & mask) {
		out->alignment_bytes += w->pool_size;
		p = (p & ~mask) + w->pool_size;
	}
	/* pool_address is where the next pool would be carved: inside the
	 * arena, or its end; anything else is not an arena. */
	if (pool_address < p || pool_address > end)
		return pyx_err_set(PYX_E_BAD_MEMORY, "pymalloc arena at "
				   PYX_PRIaddr " has its next pool at " PYX_PRIaddr,
				   base, pool_address);
	for (; p + w->pool_size <= pool_address; p += w->pool_size) {
		uint32_t count, szidx, nextoff, maxnext, size, cap;

		if ((err = pyx_mem_read(mem, p, h, sizeof(h))))
			return err;
		memcpy(&count, h + PH_COUNT, 4);
		memcpy(&szidx, h + PH_SZIDX, 4);
		memcpy(&nextoff, h + PH_NEXTOFFSET, 4);
		memcpy(&maxnext, h + PH_MAXNEXTOFFSET, 4);
		if (count == 0)
			continue; /* empty: on the arena's freepools */
		if (szidx >= out->nclasses) {
			out->bad_pools++;
			pyx_debug("pymalloc pool at " PYX_PRIaddr ": size class "
				  "%u", p, szidx);
			continue;
		}
		size = (szidx + 1) * w->alignment;
		cap = (uint32_t)((w->pool_size - POOL_HEADER) / size);
		/* A pool's own geometry says it is one: the last block's
		 * offset, and no more blocks in use than fit. */
		if (count > cap || maxnext != w->pool_size - size ||
		    nextoff > maxnext + size) {
			out->bad_pools++;
			pyx_debug("pymalloc pool at " PYX_PRIaddr ": count %u "
				  "(of %u), maxnextoffset %u", p, count, cap,
				  maxnext);
			continue;
		}
		out->classes[szidx].pools++;
		out->classes[szidx].blocks_used += count;
		out->classes[szidx].blocks_free += cap - count;
		out->pools_used++;
		out->used_bytes += (uint64_t)count * size;
		out->free_bytes += (uint64_t)(cap - count) * size;
		out->pool_header_bytes += POOL_HEADER;
		out->quantization_bytes += (w->pool_size - POOL_HEADER) % size;
		*used += (uint64_t)count * size;
	}
	return 0;
}

int pyx_pymalloc_walk(struct pyx_mem *mem, const struct pyx_pymalloc_where *w,
		      struct pyx_pymalloc *out)
{
	uint64_t arenas, narenas, v, seen = 0, bytes;
	uint32_t maxarenas;
	uint8_t *ao = NULL;
	size_t cap = out->narena_addr;
	int err;

	if (!w->arena_size || !w->pool_size || !w->alignment ||
	    w->pool_size > w->arena_size || (w->pool_size & (w->pool_size - 1)))
		return pyx_err_set(PYX_E_INTERNAL, "pymalloc geometry");
	out->available = true;
	out->arena_size = w->arena_size;
	out->pool_size = w->pool_size;
	out->alignment = w->alignment;
	out->nclasses = 512 / w->alignment;
	if (out->nclasses > PYX_PYMALLOC_CLASSES)
		out->nclasses = PYX_PYMALLOC_CLASSES;
	for (uint32_t i = 0; i < out->nclasses; i++)
		out->classes[i].size = (i + 1) * w->alignment;
	out->states++;
	if ((err = pyx_mem_read_u64(mem, w->arenas_ptr, &arenas)) ||
	    (err = read_u32(mem, w->maxarenas, &maxarenas)) ||
	    (err = pyx_mem_read_u64(mem, w->narenas, &narenas)))
		return err;
	if (w->ntimes && pyx_mem_read_u64(mem, w->ntimes, &v) == 0)
		out->arenas_total += v;
	if (w->highwater && pyx_mem_read_u64(mem, w->highwater, &v) == 0)
		out->arenas_highwater += v;
	pyx_err_clear();
	if (!arenas || !maxarenas)
		return 0; /* nothing allocated yet, or PYTHONMALLOC=malloc */
	if (maxarenas > MAX_ARENAS || narenas > maxarenas || (arenas & 7) ||
	    !pyx_mem_valid(mem, arenas, (size_t)maxarenas * AO_SIZE))
		return pyx_err_set(PYX_E_BAD_MEMORY, "pymalloc's arena array "
				   "at " PYX_PRIaddr " (%u entries, %" PRIu64
				   " arenas) is not readable", arenas,
				   maxarenas, narenas);
	/* In chunks: the array may be as long as the target says, not one
	 * buffer of maxarenas * 48 bytes. */
	ao = malloc((size_t)AO_CHUNK * AO_SIZE);
	if (!ao)
		return -PYX_E_NOMEM;
	for (uint32_t i = 0; i < maxarenas; i++) {
		const uint8_t *a = ao + (size_t)(i % AO_CHUNK) * AO_SIZE;
		uint64_t addr, pool_address, used;
		uint32_t nfree, ntotal;

		if (i % AO_CHUNK == 0) {
			uint32_t k = maxarenas - i < AO_CHUNK ? maxarenas - i
							      : AO_CHUNK;

			if ((err = pyx_mem_read(mem, arenas + (uint64_t)i * AO_SIZE,
						ao, (size_t)k * AO_SIZE)))
				goto out;
		}

		memcpy(&addr, a + AO_ADDRESS, 8);
		if (!addr)
			continue; /* an unused arena_object */
		memcpy(&pool_address, a + AO_POOL_ADDRESS, 8);
		memcpy(&nfree, a + AO_NFREEPOOLS, 4);
		memcpy(&ntotal, a + AO_NTOTALPOOLS, 4);
		if (++seen > narenas + 1024 ||
		    ntotal > w->arena_size / w->pool_size || nfree > ntotal ||
		    addr + w->arena_size < addr) {
			err = pyx_err_set(PYX_E_BAD_MEMORY, "pymalloc arena %u "
					  "at " PYX_PRIaddr ": %u free of %u "
					  "pools", i, addr, nfree, ntotal);
			goto out;
		}
		out->pools_empty += nfree;
		if ((err = walk_arena(mem, w, addr, pool_address, out, &used)) ||
		    (err = add_arena(out, addr, &cap)))
			goto out;
		if (used < w->arena_size / 4) {
			out->arenas_sparse++;
			out->sparse_arena_bytes += w->arena_size;
			out->sparse_used_bytes += used;
		}
	}
	if (seen != narenas)
		pyx_debug("pymalloc: %" PRIu64 " arenas in the array, %" PRIu64
			  " counted by narenas_currently_allocated", seen,
			  narenas);
	out->arenas += seen;
	if (__builtin_mul_overflow(seen, w->arena_size, &bytes))
		bytes = UINT64_MAX;
	out->arena_bytes += bytes;
	out->empty_pool_bytes = out->pools_empty * w->pool_size;
out:
	free(ao);
	return err;
}

static const struct geometry *geometry_of(const struct pyx_python *py)
{
	for (size_t i = 0; i < PYX_ARRAY_SIZE(geometries); i++)
		if (py->info.major == 3 && py->info.minor >= geometries[i].minor_lo &&
		    py->info.minor <= geometries[i].minor_hi)
			return &geometries[i];
	return NULL;
}

static void unavailable(struct pyx_pymalloc *out, const char *fmt, const char *s)
{
	char buf[512];

	out->available = false;
	snprintf(buf, sizeof(buf), fmt, s);
	snprintf(out->why, sizeof(out->why), "%.255s", buf);
}

int pyx_pymalloc_read(struct pyx_python *py, struct pyx_pymalloc *out)
{
	const struct geometry *g = geometry_of(py);
	struct pyx_pymalloc_where w = { 0 };
	int err;

	memset(out, 0, sizeof(*out));
	if (!g) {
		unavailable(out, "pymalloc's layout is unknown for Python %.32s",
			    py->info.version);
		return 0;
	}
	w.arena_size = g->arena_size;
	w.pool_size = g->pool_size;
	w.alignment = 16;
	if (py->k.arena_size && py->k.arena_size != g->arena_size) {
		unavailable(out, "pymalloc's arena size for Python %s disagrees "
			    "with the ABI row", py->info.version);
		return 0;
	}
	if (pyx_layout_has(&py->layout, PYX_L_IS_OBMALLOC) &&
	    pyx_layout_has(&py->layout, PYX_L_OBM_NARENAS)) {
		pyx_addr_t seen[64], interps[PYX_MAX_INTERPRETERS];
		int64_t narenas_off = pyx_off(py, PYX_L_OBM_NARENAS);
		size_t ninterp, nseen = 0;

		if (narenas_off < MGMT_NARENAS) {
			unavailable(out, "obmalloc state layout of %s not known",
				    py->info.version);
			return 0;
		}
		if ((err = pyx_python_interps(py, interps, PYX_MAX_INTERPRETERS,
					      &ninterp)))
			return err;
		for (size_t i = 0; i < ninterp; i++) {
			pyx_addr_t st = interps[i] +
					(uint64_t)pyx_off(py, PYX_L_IS_OBMALLOC);
			pyx_addr_t mgmt;
			bool dup = false;

			if (py->k.obmalloc_ptr &&
			    (err = pyx_mem_read_u64(py->mem, st, &st)))
				return err;
			for (size_t j = 0; j < nseen; j++)
				dup |= seen[j] == st;
			if (!st || dup)
				continue;
			if (nseen < PYX_ARRAY_SIZE(seen))
				seen[nseen++] = st;
			mgmt = st + (uint64_t)narenas_off - MGMT_NARENAS;
			w.arenas_ptr = mgmt;
			w.maxarenas = mgmt + 8;
			w.narenas = mgmt + MGMT_NARENAS;
			w.ntimes = mgmt + MGMT_NARENAS + 8;
			w.highwater = mgmt + MGMT_NARENAS + 16;
			if ((err = pyx_pymalloc_walk(py->mem, &w, out)))
				return err;
		}
		if (!out->states)
			unavailable(out, "%s", "no interpreter has an obmalloc "
				    "state (PYTHONMALLOC=malloc or mimalloc?)");
		return 0;
	}
	/* <= 3.11: file-static variables, in .symtab only. */
	if (pyx_elf_lookup(py->elf, "arenas", &w.arenas_ptr, NULL) ||
	    pyx_elf_lookup(py->elf, "maxarenas", &w.maxarenas, NULL) ||
	    pyx_elf_lookup(py->elf, "narenas_currently_allocated", &w.narenas,
			   NULL)) {
		unavailable(out, "%.160s has no symbols for pymalloc's static state "
			    "(stripped; install its debug symbols)",
			    py->info.binary);
		return 0;
	}
	if (pyx_elf_lookup(py->elf, "ntimes_arena_allocated", &w.ntimes, NULL))
		w.ntimes = 0;
	if (pyx_elf_lookup(py->elf, "narenas_highwater", &w.highwater, NULL))
		w.highwater = 0;
	return pyx_pymalloc_walk(py->mem, &w, out);
}
