/* pymalloc read from outside: arenas, pools and size classes, the numbers
 * sys._debugmallocstats() prints (docs/memory.md).
 *
 * Where the allocator's state lives changed over versions:
 *  - 3.8-3.11: file-static variables of Objects/obmalloc.c (arenas,
 *    maxarenas, narenas_currently_allocated, ...), LOCAL symbols found in
 *    .symtab only.  A stripped build (Debian's /usr/bin/python3.11) has
 *    none: then a signature scan of the interpreter's writable data finds
 *    them (pyx_pymalloc_scan(), below: what it checks, and its limits);
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
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pyxray/memory.h"
#include "pyxray/memory_report.h"
#include "pyxray/symbols.h"
#include "pyxray/target.h"

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
#define PH_NEXTPOOL 16
#define PH_PREVPOOL 24
#define PH_ARENAINDEX 32
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

/* One arena's carved pools, as _PyObject_DebugMallocStats counts them.
 * Their headers are read at once (pyx_mem_read_ranges(): one system call
 * for the arena, where one a pool through the page cache made the
 * placement's stop of a 5 M-object heap, 41 k pools, ~60 ms longer). */
static int walk_arena(struct pyx_mem *mem, const struct pyx_pymalloc_where *w,
		      pyx_addr_t base, pyx_addr_t pool_address,
		      struct pyx_pymalloc *out, uint64_t *used)
{
	uint64_t mask = w->pool_size - 1;
	pyx_addr_t p = base, end = base + w->arena_size;
	struct pyx_mem_range *r = NULL;
	uint8_t *hb = NULL;
	size_t n;
	int err = 0;

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
	/* at most arena_size / pool_size: the geometry checked by the
	 * caller, not the target's numbers */
	n = (size_t)((pool_address - p) / w->pool_size);
	if (!n)
		return 0;
	r = calloc(n, sizeof(*r));
	hb = malloc(n * POOL_HEADER);
	if (!r || !hb) {
		err = -PYX_E_NOMEM;
		goto out;
	}
	for (size_t i = 0; i < n; i++)
		r[i] = (struct pyx_mem_range){ p + i * w->pool_size,
					       hb + i * POOL_HEADER,
					       POOL_HEADER, false };
	if ((err = pyx_mem_read_ranges(mem, r, n)))
		goto out;
	for (size_t i = 0; i < n; i++, p += w->pool_size) {
		const uint8_t *h = hb + i * POOL_HEADER;
		uint32_t count, szidx, nextoff, maxnext, size, cap;

		if (r[i].failed) {
			err = pyx_err_set(PYX_E_BAD_MEMORY, "pymalloc pool at "
					  PYX_PRIaddr ": unreadable", p);
			goto out;
		}
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
out:
	free(r);
	free(hb);
	return err;
}

int pyx_pymalloc_walk(struct pyx_mem *mem, const struct pyx_pymalloc_where *w,
		      struct pyx_pymalloc *out)
{
	uint64_t arenas, narenas, v, seen = 0, bytes, most;
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
	/* Arenas do not overlap: no more of them than the target's readable
	 * memory holds (else each, an arena named again or at another
	 * offset, would cost the stop a read of its pools: the target names
	 * up to 16 M of them). */
	most = pyx_mem_readable_bytes(mem) / w->arena_size + 1;
	if (most == 1)
		most = UINT64_MAX; /* no maps: the count's bound alone */
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
		if (++seen > narenas + 1024 || seen > most ||
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


/* ---- without symbols: the signature scan ------------------------------
 *
 * 3.8-3.11 keep pymalloc's state in file-static variables of obmalloc.c
 * that only .symtab names.  Their values say what they are:
 *
 *  - usedpools (.data: it is initialised) is 32 pairs of pointers, one per
 *    size class, the head of a ring of pool headers whose nextpool and
 *    prevpool fields the pair is: a class with no pool in use points at
 *    itself (both words are &usedpools[2i] - 16), any other at pool headers
 *    (pool-aligned) whose size class is i, with at least one block in use,
 *    the last block where the geometry puts it, whose prevpool (the first)
 *    and nextpool (the last) come back to the pair.  One table only.
 *  - arenas (.bss) points at the array of arena_object: for every pool
 *    usedpools lists, the entry of its arenaindex is the arena holding it
 *    (address <= pool, the pool below the next one to carve).  One word
 *    only, in the object's writable data.
 *  - around arenas (the same translation unit's statics: within
 *    SCAN_WINDOW bytes in every build checked, in two different orders),
 *    maxarenas: a 32-bit power of two >= 16 (the array starts at 16 and
 *    doubles), above every index that usedpools' pools and the statics
 *    that point into the array (unused_arena_objects, usable_arenas,
 *    nfp2lasta) name, over which every entry in use is an arena_object
 *    that holds together; and narenas_currently_allocated, which equals
 *    the number of entries in use, preceded by narenas_highwater and
 *    ntimes_arena_allocated (n <= highwater <= ntimes; that order and
 *    adjacency hold in every build checked: pyenv 3.8-3.11, Debian's
 *    3.11).  Where several maxarenas fit, glibc's chunk header before the
 *    array (its malloc'ed size) decides; one pair only.
 *
 * Limits: a process whose pymalloc has no pool in use (PYTHONMALLOC=malloc,
 * or nothing allocated) gives nothing to find arenas by; nor does one
 * stopped while a thread was changing a pool list (try again).  More than
 * SCAN_MAX_ARRAY arena slots, writable data over SCAN_MAX_BYTES, or more
 * than SCAN_MAX_TRIED candidate pointers: not found.  A build whose
 * compiler split obmalloc.c's statics apart, or did not keep the three
 * counters adjacent, is not recognised.  Every failure says why.
 */

#define SCAN_MAX_BYTES (UINT64_C(64) << 20)
#define SCAN_MAX_REGIONS 16
/* Candidate arenas pointers whose arena_objects are read. */
#define SCAN_MAX_TRIED 65536
/* usedpools candidates whose pool headers are read. */
#define SCAN_MAX_TABLES 64
#define SCAN_WINDOW 4096
/* 2^18 arena slots (256 GiB of 1 MiB arenas): at most 12 MiB read. */
#define SCAN_MAX_ARRAY (UINT32_C(1) << 18)
/* usedpools: 2 * ((NB_SMALL_SIZE_CLASSES + 7) / 8) * 8 pointers, 32
 * classes of 16 bytes up to 512 on every 64-bit 3.8-3.11. */
#define SCAN_CLASSES 32
#define USEDPOOLS_BYTES (SCAN_CLASSES * 16)

struct scan_region {
	pyx_addr_t start;
	size_t len;
	uint8_t *buf;
};

struct scan {
	struct pyx_mem *mem;
	const struct pyx_pymalloc_where *w;
	struct scan_region r[SCAN_MAX_REGIONS];
	size_t nr;
	/* the pools usedpools lists: each class's first and last */
	pyx_addr_t pool[2 * SCAN_CLASSES];
	uint32_t pool_arena[2 * SCAN_CLASSES];
	size_t npools;
	/* where a malloc'ed array can be: anonymous writable mappings and
	 * [heap], sorted */
	const struct pyx_range *anon;
	size_t nanon;
	char *why;
	size_t whylen;
};

static uint64_t word_at(const uint8_t *b, size_t off)
{
	uint64_t v;

	memcpy(&v, b + off, 8);
	return v;
}

static int scan_fail(struct scan *s, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static int scan_fail(struct scan *s, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(s->why, s->whylen, fmt, ap);
	va_end(ap);
	return -PYX_E_NOT_SUPPORTED;
}

/* A read of the target: a miss is an answer (false), not an error, but for
 * a process that is gone or no memory. */
static int scan_read(struct scan *s, pyx_addr_t a, void *buf, size_t n,
		     bool *ok)
{
	int err = pyx_mem_read(s->mem, a, buf, n);

	*ok = err == 0;
	if (err == -PYX_E_EXITED || err == -PYX_E_NOMEM)
		return err;
	pyx_err_clear();
	return 0;
}

static bool in_anon(const struct scan *s, pyx_addr_t a, uint64_t len)
{
	size_t lo = 0, hi = s->nanon;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (a >= s->anon[mid].end)
			lo = mid + 1;
		else if (a < s->anon[mid].start)
			hi = mid;
		else
			return s->anon[mid].end - a >= len;
	}
	return false;
}

static bool in_regions(const struct scan *s, pyx_addr_t a)
{
	for (size_t k = 0; k < s->nr; k++)
		if (a >= s->r[k].start && a - s->r[k].start < s->r[k].len)
			return true;
	return false;
}

/* The table's shape alone, from the copy: each pair points at itself or at
 * two pool-aligned addresses. */
static bool usedpools_shape(const uint8_t *b, pyx_addr_t at, uint64_t pool_size)
{
	for (unsigned i = 0; i < SCAN_CLASSES; i++) {
		uint64_t next = word_at(b, 16 * i), prev = word_at(b, 16 * i + 8);
		pyx_addr_t self = at + 16 * i - 16;

		if (next == self && prev == self)
			continue;
		if (!next || !prev || (next & (pool_size - 1)) ||
		    (prev & (pool_size - 1)) || next == self || prev == self)
			return false;
	}
	return true;
}

/* The pools the table lists: read, each must be a pool of its class in use
 * whose link comes back to the table.  Records them in s. */
static int usedpools_check(struct scan *s, const uint8_t *b, pyx_addr_t at,
			   bool *ok)
{
	const struct pyx_pymalloc_where *w = s->w;
	int err;

	s->npools = 0;
	*ok = false;
	for (unsigned i = 0; i < SCAN_CLASSES; i++) {
		pyx_addr_t self = at + 16 * i - 16;
		uint32_t size = (i + 1) * w->alignment;

		for (unsigned end = 0; end < 2; end++) {
			pyx_addr_t p = word_at(b, 16 * i + 8 * end);
			uint32_t count, szidx, ai, maxnext;
			uint8_t h[POOL_HEADER];
			bool got;

			if (p == self)
				break; /* an empty class */
			if (end == 1 && p == word_at(b, 16 * i))
				break; /* one pool: first and last */
			if ((err = scan_read(s, p, h, sizeof(h), &got)))
				return err;
			if (!got)
				return 0;
			memcpy(&count, h + PH_COUNT, 4);
			memcpy(&szidx, h + PH_SZIDX, 4);
			memcpy(&ai, h + PH_ARENAINDEX, 4);
			memcpy(&maxnext, h + PH_MAXNEXTOFFSET, 4);
			if (count == 0 || szidx != i ||
			    count > (w->pool_size - POOL_HEADER) / size ||
			    maxnext != w->pool_size - size ||
			    ai >= SCAN_MAX_ARRAY ||
			    word_at(h, end ? PH_NEXTPOOL : PH_PREVPOOL) != self)
				return 0;
			s->pool[s->npools] = p;
			s->pool_arena[s->npools++] = ai;
		}
	}
	*ok = true;
	return 0;
}

static int find_usedpools(struct scan *s, pyx_addr_t *found)
{
	unsigned tables = 0, tried = 0;
	pyx_addr_t first = 0;
	int err;

	for (size_t k = 0; k < s->nr; k++) {
		const struct scan_region *r = &s->r[k];

		for (size_t off = 0; off + USEDPOOLS_BYTES <= r->len; off += 8) {
			pyx_addr_t at = r->start + off;
			bool ok;

			if (!usedpools_shape(r->buf + off, at, s->w->pool_size))
				continue;
			if (++tried > SCAN_MAX_TABLES)
				return scan_fail(s, "more than %d tables look like "
						 "pymalloc's usedpools",
						 SCAN_MAX_TABLES);
			/* The pools of the first table found are kept: a
			 * second one is refused below anyway. */
			if (tables) {
				size_t keep = s->npools;
				pyx_addr_t kp[2 * SCAN_CLASSES];
				uint32_t ka[2 * SCAN_CLASSES];

				memcpy(kp, s->pool, sizeof(kp));
				memcpy(ka, s->pool_arena, sizeof(ka));
				err = usedpools_check(s, r->buf + off, at, &ok);
				memcpy(s->pool, kp, sizeof(kp));
				memcpy(s->pool_arena, ka, sizeof(ka));
				s->npools = keep;
			} else {
				err = usedpools_check(s, r->buf + off, at, &ok);
			}
			if (err)
				return err;
			if (!ok)
				continue;
			if (tables++ == 0)
				first = at;
			else
				return scan_fail(s, "two tables hold pymalloc's "
						 "usedpools signature (at "
						 PYX_PRIaddr " and " PYX_PRIaddr
						 ")", first, at);
		}
	}
	if (!tables)
		return scan_fail(s, "no table holds pymalloc's usedpools "
				 "signature");
	if (!s->npools)
		return scan_fail(s, "pymalloc's usedpools (at " PYX_PRIaddr
				 ") lists no pool in use: nothing to find its "
				 "arenas by (PYTHONMALLOC=malloc?)", first);
	*found = first;
	return 0;
}

/* Whether the arena_object array at a holds every pool usedpools lists. */
static int arenas_holds_pools(struct scan *s, pyx_addr_t a, bool *ok)
{
	const struct pyx_pymalloc_where *w = s->w;
	int err;

	*ok = false;
	for (size_t j = 0; j < s->npools; j++) {
		uint64_t ao[3], lo, pa;
		uint32_t nfree, ntotal;
		bool got;

		if ((err = scan_read(s, a + (uint64_t)s->pool_arena[j] * AO_SIZE,
				     ao, sizeof(ao), &got)))
			return err;
		if (!got)
			return 0;
		lo = ao[0];
		pa = ao[1];
		nfree = (uint32_t)ao[2];
		ntotal = (uint32_t)(ao[2] >> 32);
		if (!lo || lo + w->arena_size < lo || s->pool[j] < lo ||
		    s->pool[j] + w->pool_size > pa || pa > lo + w->arena_size ||
		    nfree > ntotal || ntotal > w->arena_size / w->pool_size)
			return 0;
	}
	*ok = true;
	return 0;
}

static int find_arenas(struct scan *s, pyx_addr_t *at, pyx_addr_t *array)
{
	uint64_t tried = 0;
	size_t hits = 0;
	int err;

	for (size_t k = 0; k < s->nr; k++) {
		const struct scan_region *r = &s->r[k];

		for (size_t off = 0; off + 8 <= r->len; off += 8) {
			pyx_addr_t a = word_at(r->buf, off);
			bool ok;

			/* A malloc'ed array: aligned, in anonymous memory
			 * (not the statics' own .bss), long enough for the
			 * first pool's entry. */
			if (!a || (a & 7) || in_regions(s, a) ||
			    !in_anon(s, a, ((uint64_t)s->pool_arena[0] + 1) *
						   AO_SIZE))
				continue;
			if (++tried > SCAN_MAX_TRIED)
				return scan_fail(s, "more than %d pointers to try "
						 "as pymalloc's arenas",
						 SCAN_MAX_TRIED);
			if ((err = arenas_holds_pools(s, a, &ok)))
				return err;
			if (!ok)
				continue;
			if (hits++)
				return scan_fail(s, "two words could be pymalloc's "
						 "arenas (at " PYX_PRIaddr " and "
						 PYX_PRIaddr ")", *at,
						 r->start + off);
			*at = r->start + off;
			*array = a;
		}
	}
	pyx_err_clear();
	if (!hits)
		return scan_fail(s, "no pointer holds the arenas of the %zu pools "
				 "pymalloc's usedpools lists", s->npools);
	return 0;
}

struct maxcand {
	uint32_t m;
	pyx_addr_t at;          /* the nearest to arenas that holds it */
	bool ok;                /* the array holds together up to m */
	uint64_t count;         /* entries in use below m */
};

static int cmp_maxcand(const void *a, const void *b)
{
	const struct maxcand *x = a, *y = b;

	return x->m < y->m ? -1 : x->m > y->m;
}

static uint64_t dist(pyx_addr_t a, pyx_addr_t b)
{
	return a > b ? a - b : b - a;
}

/* Read the array once up to the largest candidate: for each candidate m,
 * whether every entry below it in use is an arena_object that holds
 * together, and how many are in use. */
static int check_array(struct scan *s, pyx_addr_t array, struct maxcand *mc,
		       size_t nm)
{
	const struct pyx_pymalloc_where *w = s->w;
	uint64_t count = 0;
	uint32_t base = 0, have = 0;
	size_t j = 0;
	uint8_t *ao = malloc((size_t)AO_CHUNK * AO_SIZE);
	int err = 0;

	if (!ao)
		return -PYX_E_NOMEM;
	for (uint32_t i = 0;; i++) {
		const uint8_t *e;
		uint64_t lo, pa;
		uint32_t nfree, ntotal;
		bool got;

		while (j < nm && mc[j].m == i) {
			mc[j].ok = true;
			mc[j].count = count;
			j++;
		}
		if (j == nm)
			break;
		/* Read on, never past the next candidate at once: the
		 * memory after a short array may be unreadable. */
		if (i - base >= have) {
			uint32_t n = mc[j].m - i < AO_CHUNK ? mc[j].m - i
							    : AO_CHUNK;

			if ((err = scan_read(s, array + (uint64_t)i * AO_SIZE, ao,
					     (size_t)n * AO_SIZE, &got)))
				break;
			if (!got)
				break; /* the larger candidates stay refused */
			base = i;
			have = n;
		}
		e = ao + (size_t)(i - base) * AO_SIZE;
		memcpy(&lo, e + AO_ADDRESS, 8);
		if (!lo)
			continue;
		memcpy(&pa, e + AO_POOL_ADDRESS, 8);
		memcpy(&nfree, e + AO_NFREEPOOLS, 4);
		memcpy(&ntotal, e + AO_NTOTALPOOLS, 4);
		if (lo + w->arena_size < lo || pa < lo || pa > lo + w->arena_size ||
		    nfree > ntotal || ntotal > w->arena_size / w->pool_size)
			break; /* not an arena: the array ends before i */
		count++;
	}
	free(ao);
	return err;
}

/* maxarenas and the three counters, near arenas. */
static int find_counts(struct scan *s, const struct scan_region *r,
		       pyx_addr_t at, pyx_addr_t array,
		       struct pyx_pymalloc_where *out)
{
	pyx_addr_t lo = at - r->start > SCAN_WINDOW ? at - SCAN_WINDOW : r->start;
	pyx_addr_t hi = r->start + r->len - at > SCAN_WINDOW + 8 ?
				at + SCAN_WINDOW + 8 : r->start + r->len;
	const uint8_t *b = r->buf + (lo - r->start);
	size_t len = hi - lo, nm = 0, ntrip = 0, npairs = 0, pm;
	struct maxcand mc[32];
	pyx_addr_t trip[64], pt;
	struct {
		size_t k, t;
	} pairs[64];
	uint64_t min_m = 0;
	int err;

	/* Every index usedpools' pools name is below maxarenas. */
	for (size_t j = 0; j < s->npools; j++)
		if (s->pool_arena[j] + UINT64_C(1) > min_m)
			min_m = s->pool_arena[j] + UINT64_C(1);
	/* maxarenas: 16 << k, 32 bits. */
	for (size_t off = (4 - (lo & 3)) & 3; off + 4 <= len; off += 4) {
		uint32_t v;
		size_t k;

		memcpy(&v, b + off, 4);
		if (v < 16 || v > SCAN_MAX_ARRAY || (v & (v - 1)) || v < min_m)
			continue;
		for (k = 0; k < nm && mc[k].m != v; k++)
			;
		if (k == nm) {
			if (nm == PYX_ARRAY_SIZE(mc))
				continue; /* cannot happen: 15 powers of two */
			mc[nm].m = v;
			mc[nm].at = lo + off;
			mc[nm].ok = false;
			mc[nm++].count = 0;
		} else if (dist(lo + off, at) < dist(mc[k].at, at)) {
			mc[k].at = lo + off;
		}
	}
	if (!nm)
		return scan_fail(s, "no 32-bit power of two near pymalloc's "
				 "arenas (at " PYX_PRIaddr ") can be maxarenas "
				 "(at least %" PRIu64 ")", at, min_m);
	qsort(mc, nm, sizeof(mc[0]), cmp_maxcand);
	if ((err = check_array(s, array, mc, nm)))
		return err;
	for (size_t k = 0; k < nm; k++)
		pyx_debug("pymalloc scan: maxarenas %u at " PYX_PRIaddr ": %s, "
			  "%" PRIu64 " in use", mc[k].m, mc[k].at,
			  mc[k].ok ? "fits" : "refused", mc[k].count);
	/* The pairs: a maxarenas whose array holds together; the counters
	 * narenas_highwater, ntimes_arena_allocated,
	 * narenas_currently_allocated (n <= highwater <= ntimes), whose n is
	 * the entries in use below it. */
	for (size_t off = (8 - (lo & 7)) & 7; off + 24 <= len; off += 8) {
		uint64_t hw = word_at(b, off), nt = word_at(b, off + 8),
			 n = word_at(b, off + 16);
		bool some = false;

		if (n < 1 || n > hw || hw > nt)
			continue;
		for (size_t k = 0; k < nm; k++) {
			if (!mc[k].ok || mc[k].count != n)
				continue;
			if (npairs == PYX_ARRAY_SIZE(pairs))
				return scan_fail(s, "more than %zu (maxarenas, "
						 "narenas_currently_allocated) "
						 "pairs fit pymalloc's arenas "
						 "(at " PYX_PRIaddr ")",
						 PYX_ARRAY_SIZE(pairs), at);
			pairs[npairs].k = k;
			pairs[npairs++].t = ntrip;
			some = true;
		}
		if (some) {
			pyx_debug("pymalloc scan: counters at " PYX_PRIaddr ": %"
				  PRIu64 " now, %" PRIu64 " at most, %" PRIu64
				  " ever", lo + off, n, hw, nt);
			trip[ntrip++] = lo + off;
		}
	}
	if (npairs > 1) {
		/* Ties (entries past the array that read as unused):
		 * statics that point into the array (unused_arena_objects,
		 * usable_arenas, nfp2lasta) name indices below maxarenas;
		 * glibc's chunk header before the array says its malloc'ed
		 * size, 48 * maxarenas rounded up (mmapped: to a page).  A
		 * hint that would refuse every pair is not taken. */
		uint64_t above = 0, h, chunk = 0;

		for (size_t off = (8 - (lo & 7)) & 7; off + 8 <= len; off += 8) {
			uint64_t v = word_at(b, off), idx;

			if (lo + off == at || v < array || (v - array) % AO_SIZE)
				continue;
			idx = (v - array) / AO_SIZE;
			if (idx < mc[nm - 1].m && idx + 1 > above)
				above = idx + 1;
		}
		/* size | NON_MAIN_ARENA 4 | IS_MMAPPED 2 | PREV_INUSE 1 */
		if (pyx_mem_read_u64(s->mem, array - 8, &h) == 0 &&
		    (h & ~UINT64_C(7)) > 16)
			chunk = (h & ~UINT64_C(7)) - ((h & 2) ? 16 : 8);
		pyx_err_clear();
		for (int hint = 0; hint < 2 && npairs > 1; hint++) {
			size_t keep = 0;

			for (size_t i = 0; i < npairs; i++) {
				uint64_t m = mc[pairs[i].k].m;
				bool fit = hint == 0 ? m >= above :
					   chunk >= m * AO_SIZE &&
					   chunk < 2 * m * AO_SIZE;

				keep += fit;
			}
			if (!keep)
				continue;
			for (size_t i = 0, o = 0; i < npairs; i++) {
				uint64_t m = mc[pairs[i].k].m;
				bool fit = hint == 0 ? m >= above :
					   chunk >= m * AO_SIZE &&
					   chunk < 2 * m * AO_SIZE;

				if (fit)
					pairs[o++] = pairs[i];
			}
			npairs = keep;
		}
	}
	if (npairs != 1) {
		if (!npairs)
			return scan_fail(s, "no maxarenas near pymalloc's arenas "
					 "(at " PYX_PRIaddr ") fits an array "
					 "and a narenas_currently_allocated",
					 at);
		return scan_fail(s, "%zu (maxarenas, narenas_currently_allocated)"
				 " pairs fit pymalloc's arenas (at " PYX_PRIaddr
				 ")", npairs, at);
	}
	pm = pairs[0].k;
	pt = trip[pairs[0].t];
	out->arenas_ptr = at;
	out->maxarenas = mc[pm].at;
	out->highwater = pt;
	out->ntimes = pt + 8;
	out->narenas = pt + 16;
	pyx_debug("pymalloc by signature: arenas at " PYX_PRIaddr " (array "
		  PYX_PRIaddr "), maxarenas %u at " PYX_PRIaddr ", %" PRIu64
		  " arenas at " PYX_PRIaddr, at, array, mc[pm].m, mc[pm].at,
		  mc[pm].count, out->narenas);
	return 0;
}

int pyx_pymalloc_scan(struct pyx_mem *mem, const struct pyx_range *regions,
		      size_t nregions, const struct pyx_range *anon,
		      size_t nanon, struct pyx_pymalloc_where *w, char *why,
		      size_t whylen)
{
	struct scan s = { .mem = mem, .w = w, .anon = anon, .nanon = nanon,
			  .why = why, .whylen = whylen };
	pyx_addr_t table = 0, at = 0, array = 0;
	uint64_t total = 0;
	size_t k;
	int err = 0;

	if (whylen)
		why[0] = 0;
	if (!w->pool_size || (w->pool_size & (w->pool_size - 1)) ||
	    w->alignment != 16 || w->arena_size < w->pool_size)
		return pyx_err_set(PYX_E_INTERNAL, "pymalloc geometry");
	for (size_t i = 0; i < nregions && s.nr < SCAN_MAX_REGIONS; i++) {
		struct scan_region *r = &s.r[s.nr];
		uint64_t len = regions[i].end - regions[i].start;

		if (regions[i].end <= regions[i].start || len > SCAN_MAX_BYTES ||
		    total + len > SCAN_MAX_BYTES) {
			err = scan_fail(&s, "the writable data to scan exceeds "
					"%" PRIu64 " MiB", SCAN_MAX_BYTES >> 20);
			goto out;
		}
		r->start = regions[i].start;
		r->len = (size_t)len;
		r->buf = malloc(r->len);
		if (!r->buf) {
			err = -PYX_E_NOMEM;
			goto out;
		}
		if ((err = pyx_mem_read_direct(mem, r->start, r->buf, r->len))) {
			free(r->buf);
			if (err == -PYX_E_EXITED || err == -PYX_E_NOMEM)
				goto out;
			pyx_err_clear();
			err = 0;
			continue;
		}
		total += len;
		s.nr++;
	}
	if (!s.nr) {
		err = scan_fail(&s, "no writable data of the interpreter to scan");
		goto out;
	}
	if ((err = find_usedpools(&s, &table)) ||
	    (err = find_arenas(&s, &at, &array)))
		goto out;
	for (k = 0; k < s.nr; k++)
		if (at >= s.r[k].start && at - s.r[k].start < s.r[k].len)
			break;
	if ((err = find_counts(&s, &s.r[k], at, array, w)))
		goto out;
	pyx_debug("pymalloc by signature: usedpools at " PYX_PRIaddr
		  " (%zu pools in use listed)", table, s.npools);
out:
	for (k = 0; k < s.nr; k++)
		free(s.r[k].buf);
	return err;
}

static bool force_scan(void)
{
#ifdef PYX_TEST_HOOKS
	/* Test hook: ignore .symtab for pymalloc, as on a stripped build. */
	const char *e = getenv("PYX_TEST_PYMALLOC_SCAN");

	return e && strcmp(e, "1") == 0;
#else
	return false;
#endif
}

/* The writable mappings of the object that holds obmalloc (where
 * _PyRuntime is: the executable, or libpython), and the anonymous mapping
 * right after the last of them (the rest of its .bss), scanned: 0 with w's
 * addresses set, -PYX_E_NOT_SUPPORTED with why, or an error. */
static int locate_by_scan(struct pyx_python *py, struct pyx_pymalloc_where *w,
			  char *why, size_t nwhy)
{
	struct pyx_range r[SCAN_MAX_REGIONS], *anon;
	const struct pyx_map *maps;
	const char *bin = py->info.binary;
	size_t n, nr = 0, nanon = 0;
	int err;

	maps = pyx_target_maps(py->tgt, &n);
	anon = malloc((n ? n : 1) * sizeof(*anon));
	if (!anon)
		return -PYX_E_NOMEM;
	for (size_t i = 0; i < n; i++) {
		const struct pyx_map *m = &maps[i];

		if (m->r && m->w && m->p &&
		    (!m->path || !m->path[0] || strcmp(m->path, "[heap]") == 0)) {
			anon[nanon].start = m->start;
			anon[nanon++].end = m->end;
		}
	}
	for (size_t i = 0; i < n && nr < PYX_ARRAY_SIZE(r); i++) {
		const struct pyx_map *m = &maps[i];
		bool ours = m->path && strcmp(m->path, bin) == 0;
		bool bss = !ours && i > 0 && maps[i - 1].path &&
			   strcmp(maps[i - 1].path, bin) == 0 &&
			   (!m->path || !m->path[0]) &&
			   m->start == maps[i - 1].end;

		if ((ours || bss) && m->r && m->w) {
			r[nr].start = m->start;
			r[nr++].end = m->end;
		}
	}
	err = pyx_pymalloc_scan(py->mem, r, nr, anon, nanon, w, why, nwhy);
	free(anon);
	return err;
}

/* In the stop: the state found before it (f), else scanned now. */
static int read_by_scan(struct pyx_python *py, struct pyx_pymalloc_where *w,
			const struct pyx_pymalloc_found *f,
			struct pyx_pymalloc *out)
{
	const char *bin = py->info.binary;
	char why[200];
	int err = 0;

	if (f && f->scanned) {
		/* the statics' addresses: the same for the process's life */
		w->arenas_ptr = f->w.arenas_ptr;
		w->maxarenas = f->w.maxarenas;
		w->narenas = f->w.narenas;
		w->ntimes = f->w.ntimes;
		w->highwater = f->w.highwater;
	} else {
		err = locate_by_scan(py, w, why, sizeof(why));
	}
	if (err == -PYX_E_NOT_SUPPORTED) {
		char buf[512];

		out->available = false;
		snprintf(buf, sizeof(buf), "%.120s has no symbols for pymalloc's "
			 "static state (stripped), and the signature scan did not "
			 "find it: %s", bin, why);
		snprintf(out->why, sizeof(out->why), "%.255s", buf);
		pyx_err_clear();
		return 0;
	}
	if (err)
		return err;
	snprintf(out->method, sizeof(out->method), "signature scan");
	return pyx_pymalloc_walk(py->mem, w, out);
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

/* Where the state is found: each interpreter's (3.12+), .symtab's statics,
 * or the signature scan (3.8-3.11 stripped). */
enum path { P_NONE, P_INTERP, P_SYMBOLS, P_SCAN };

static enum path path_of(struct pyx_python *py, struct pyx_pymalloc_where *w)
{
	const struct geometry *g = geometry_of(py);

	if (!g || (py->k.arena_size && py->k.arena_size != g->arena_size))
		return P_NONE;
	w->arena_size = g->arena_size;
	w->pool_size = g->pool_size;
	w->alignment = 16;
	if (pyx_layout_has(&py->layout, PYX_L_IS_OBMALLOC) &&
	    pyx_layout_has(&py->layout, PYX_L_OBM_NARENAS))
		return P_INTERP;
	if (!force_scan() &&
	    pyx_elf_lookup(py->elf, "arenas", &w->arenas_ptr, NULL) == 0 &&
	    pyx_elf_lookup(py->elf, "maxarenas", &w->maxarenas, NULL) == 0 &&
	    pyx_elf_lookup(py->elf, "narenas_currently_allocated", &w->narenas,
			   NULL) == 0) {
		if (pyx_elf_lookup(py->elf, "ntimes_arena_allocated", &w->ntimes,
				   NULL))
			w->ntimes = 0;
		if (pyx_elf_lookup(py->elf, "narenas_highwater", &w->highwater,
				   NULL))
			w->highwater = 0;
		return P_SYMBOLS;
	}
	return P_SCAN;
}

int pyx_pymalloc_find(struct pyx_python *py, struct pyx_pymalloc_found *f)
{
	char why[200];
	int err;

	memset(f, 0, sizeof(*f));
	if (path_of(py, &f->w) != P_SCAN)
		return 0;
	f->needed = true;
	/* The target runs: a pool relinked under the scan fails a check
	 * (not found: scanned again in the stop), never passes a wrong one
	 * (one match of several independent facts). */
	err = locate_by_scan(py, &f->w, why, sizeof(why));
	if (err == -PYX_E_NOMEM || err == -PYX_E_EXITED)
		return err;
	if (err)
		pyx_debug("pymalloc: not found before the stop: %s", why);
	pyx_err_clear();
	f->scanned = err == 0;
	return 0;
}

int pyx_pymalloc_read(struct pyx_python *py, struct pyx_pymalloc *out)
{
	return pyx_pymalloc_read_found(py, NULL, out);
}

int pyx_pymalloc_read_found(struct pyx_python *py,
			    const struct pyx_pymalloc_found *f,
			    struct pyx_pymalloc *out)
{
	const struct geometry *g = geometry_of(py);
	struct pyx_pymalloc_where w = { 0 };
	enum path path;
	int err;

	memset(out, 0, sizeof(*out));
	path = path_of(py, &w);
	if (!g) {
		unavailable(out, "pymalloc's layout is unknown for Python %.32s",
			    py->info.version);
		return 0;
	}
	if (path == P_NONE) {
		unavailable(out, "pymalloc's arena size for Python %s disagrees "
			    "with the ABI row", py->info.version);
		return 0;
	}
	if (path == P_INTERP) {
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
			snprintf(out->method, sizeof(out->method),
				 "interpreter state");
		}
		if (!out->states)
			unavailable(out, "%s", "no interpreter has an obmalloc "
				    "state (PYTHONMALLOC=malloc or mimalloc?)");
		return 0;
	}
	/* <= 3.11: file-static variables, in .symtab only; without them
	 * (stripped), found by their signatures. */
	if (path == P_SYMBOLS) {
		snprintf(out->method, sizeof(out->method), "symbols");
		return pyx_pymalloc_walk(py->mem, &w, out);
	}
	return read_by_scan(py, &w, f, out);
}
