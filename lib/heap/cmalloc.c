/* glibc malloc read from outside: mallinfo2()'s numbers per arena
 * (docs/memory.md).
 *
 * The state: main_arena and mp_ in libc's .data.  With symbols (libc's
 * .symtab or its debug file, found by build-id like the interpreter's) their
 * addresses and sizes are known, and the sizes say the layout; without them
 * pyxray scans libc's writable data for their signatures:
 *  - main_arena: 127 bins whose empty ones point at themselves (an empty bin
 *    i's fd and bk are &bins[2i-2] - 16), followed by the arena ring (next)
 *    that comes back to it;
 *  - mp_: n_mmaps_max at its default (65536) and sbrk_base at the start of
 *    [heap] (or 0 without one), a mmapped_mem that is whole pages.
 * Then, as __libc_mallinfo2() does, for each arena of the ring: the top
 * chunk, every fastbin (singly linked, mangled by safe-linking since 2.32)
 * and every bin (doubly linked: each node's fd must point back), free bytes
 * summed; in use is system_mem minus that.  Every pointer is checked (16-byte
 * aligned, readable), every size (a chunk is no bigger than its arena), every
 * list bounded by what the arena can hold; a list that fails a check ends
 * there and the arena is marked partial.
 *
 * Layouts (x86_64): struct malloc_state has its bins at 112 (2.27-2.42:
 * mutex, flags, have_fastchunks, fastbinsY[10] at 16, top, last_remainder),
 * 24 (2.43+, fastbins removed) or 104 (2.26); after the bins always come
 * binmap[4], next, next_free, attached_threads, system_mem, max_system_mem.
 * struct malloc_par: see mp_layouts[].  A thread arena's heaps are 64 MiB
 * aligned, each starting with a heap_info {ar_ptr, prev, size, ...}.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pyxray/files.h"
#include "pyxray/memory.h"
#include "pyxray/memory_report.h"
#include "pyxray/symbols.h"
#include "pyxray/target.h"

#include "internal.h"

#define NBINS 128
#define BINS_BYTES ((NBINS * 2 - 2) * 8)   /* 2032 */
/* From the start of bins: */
#define ST_NEXT (BINS_BYTES + 16)           /* after binmap[4] */
#define ST_SYSTEM_MEM (ST_NEXT + 24)
#define ST_TAIL (ST_NEXT + 40)              /* end of the struct */
#define MINSIZE 32
#define SIZE_BITS 7
#define IS_MMAPPED 2
#define HEAP_MAX (UINT64_C(64) << 20)
#define MAX_HEAPS 4096
/* No arena holds more than this (sanity bound on system_mem). */
#define MAX_SYSTEM_MEM (UINT64_C(1) << 46)

static const struct mp_layout {
	int id;
	uint32_t size;          /* sizeof(struct malloc_par) */
	uint32_t n_mmaps, n_mmaps_max, mmapped_mem, sbrk_base;
	int safe_linking;
} mp_layouts[] = {
	/* 2.26-2.34: tunables, then n_mmaps... (safe-linking from 2.32) */
	{ PYX_MP_226, 112, 40, 44, 56, 72, -1 },
	/* 2.35-2.41: thp_pagesize, hp_pagesize, hp_flags first */
	{ PYX_MP_235, 136, 60, 64, 80, 96, 1 },
	/* later: thp_mode before thp_pagesize, tcache_small_bins */
	{ PYX_MP_242, 136, 68, 72, 88, 104, 1 },
};

static const struct mp_layout *mp_layout_of(int id)
{
	for (size_t i = 0; i < PYX_ARRAY_SIZE(mp_layouts); i++)
		if (mp_layouts[i].id == id)
			return &mp_layouts[i];
	return NULL;
}

void pyx_cmalloc_free(struct pyx_cmalloc *m)
{
	if (!m)
		return;
	free(m->arenas);
	free(m->heaps);
	m->arenas = NULL;
	m->heaps = NULL;
	m->narenas = m->nheaps = 0;
}

static uint64_t word(const uint8_t *b, size_t off)
{
	uint64_t v;

	memcpy(&v, b + off, 8);
	return v;
}

static int add_heap(struct pyx_cmalloc *m, pyx_addr_t s, pyx_addr_t e)
{
	/* The capacity is the next power of two (8 at least): it grows when
	 * nheaps reaches one, not at every heap. */
	if (m->nheaps == 0 || (m->nheaps >= 8 && !(m->nheaps & (m->nheaps - 1)))) {
		size_t cap = m->nheaps ? m->nheaps * 2 : 8;
		struct pyx_range *v = realloc(m->heaps, cap * sizeof(*v));

		if (!v)
			return -PYX_E_NOMEM;
		m->heaps = v;
	}
	m->heaps[m->nheaps].start = s;
	m->heaps[m->nheaps].end = e;
	m->nheaps++;
	return 0;
}

/* The fd of a free chunk as stored: raw, or mangled by safe-linking with
 * the address of the fd field itself (glibc 2.32+: PROTECT_PTR). */
static pyx_addr_t reveal(pyx_addr_t pos, uint64_t v, bool mangled)
{
	return mangled ? (pos >> 12) ^ v : v;
}

/* A fastbin: singly linked, its chunks all of the bin's size.  Returns
 * false at the first link that does not check (the list ends there). */
static bool walk_fastbin(struct pyx_mem *mem, pyx_addr_t p, unsigned idx,
			 bool mangled, uint64_t *left, uint64_t *n,
			 uint64_t *bytes)
{
	struct pyx_chain_check cyc = PYX_CHAIN_CHECK_INIT;

	*n = *bytes = 0;
	while (p) {
		uint64_t h[3], size;

		/* A loop (a double free makes one: A -> B -> A) ends the
		 * list; left alone bounds it by system_mem / 32, which the
		 * target writes. */
		if (pyx_chain_cycles(&cyc, p))
			return false;
		if ((p & 15) || *left == 0 || pyx_mem_read(mem, p, h, sizeof(h))) {
			pyx_err_clear();
			return false;
		}
		size = h[1] & ~(uint64_t)SIZE_BITS;
		/* fastbin_index(): (size >> 4) - 2 */
		if (size < MINSIZE || (size >> 4) - 2 != idx)
			return false;
		(*left)--;
		(*n)++;
		*bytes += size;
		p = reveal(p + 16, h[2], mangled);
	}
	return true;
}

/* One arena, as int_mallinfo() sums it. */
static int walk_arena(struct pyx_mem *mem, const struct pyx_cmalloc_where *w,
		      pyx_addr_t a, const uint8_t *st,
		      struct pyx_cmalloc_arena *ar)
{
	uint32_t bo = w->bins_off;
	uint64_t sys = word(st, bo + ST_SYSTEM_MEM);
	pyx_addr_t top = word(st, bo - 16);
	uint64_t left, avail = 0, nblocks = 1, h[4];

	ar->addr = a;
	ar->system_bytes = sys;
	if (sys > MAX_SYSTEM_MEM)
		return pyx_err_set(PYX_E_BAD_MEMORY, "malloc arena at "
				   PYX_PRIaddr ": system_mem %" PRIu64, a, sys);
	/* No arena has more free chunks than it can hold. */
	left = sys / MINSIZE + 1;
	if (top && !(top & 7) && pyx_mem_read(mem, top, h, 16) == 0) {
		uint64_t ts = h[1] & ~(uint64_t)SIZE_BITS;

		if (ts <= sys) {
			ar->top_bytes = ts;
			avail += ts;
		} else {
			ar->partial = true;
		}
	} else {
		pyx_err_clear();
		ar->partial = true;
	}
	for (unsigned i = 0; i < w->nfastbins; i++) {
		pyx_addr_t p = word(st, w->fastbins_off + 8 * i);
		uint64_t n = 0, b = 0;
		bool ok;

		if (!p)
			continue;
		if (w->safe_linking >= 0) {
			ok = walk_fastbin(mem, p, i, w->safe_linking, &left, &n, &b);
		} else {
			uint64_t keep = left;

			ok = walk_fastbin(mem, p, i, true, &left, &n, &b);
			if (!ok) {
				left = keep;
				ok = walk_fastbin(mem, p, i, false, &left, &n, &b);
			}
		}
		if (!ok) {
			ar->partial = true;
			pyx_debug("malloc arena " PYX_PRIaddr ": fastbin %u "
				  "ends at a bad link", a, i);
		}
		ar->fastbin_bytes += b;
		ar->free_chunks += n;
	}
	avail += ar->fastbin_bytes;
	for (unsigned i = 1; i < NBINS; i++) {
		size_t off = bo + 16 * (i - 1);
		pyx_addr_t b = a + off - 16, q = b, p = word(st, off + 8);

		while (p != b) {
			uint64_t size;

			if (!p || (p & 15) || left == 0 ||
			    pyx_mem_read(mem, p, h, sizeof(h))) {
				pyx_err_clear();
				ar->partial = true;
				break;
			}
			size = h[1] & ~(uint64_t)SIZE_BITS;
			/* A bin is doubly linked: p->fd is where we came
			 * from; a chunk is no bigger than its arena. */
			if (h[2] != q || size < MINSIZE || size > sys) {
				ar->partial = true;
				pyx_debug("malloc arena " PYX_PRIaddr ": bin %u "
					  "ends at " PYX_PRIaddr, a, i, p);
				break;
			}
			left--;
			nblocks++;
			avail += size;
			q = p;
			p = h[3];
		}
	}
	if (avail > sys) {
		ar->partial = true;
		avail = sys;
	}
	ar->free_bytes = avail;
	ar->in_use_bytes = sys - avail;
	ar->free_chunks += nblocks;
	return 0;
}

static int thread_heaps(struct pyx_mem *mem, pyx_addr_t a, pyx_addr_t top,
			struct pyx_cmalloc *m, uint32_t *nheaps)
{
	pyx_addr_t h = top & ~(HEAP_MAX - 1);
	size_t first = m->nheaps;
	int err;

	*nheaps = 0;
	for (int i = 0; h && i < MAX_HEAPS; i++) {
		uint64_t hi[3];

		if ((h & (HEAP_MAX - 1)) || pyx_mem_read(mem, h, hi, sizeof(hi))) {
			pyx_err_clear();
			return 0;
		}
		/* prev leads to older heaps, never back: a heap met again
		 * ends the list (each would be placed once more). */
		for (size_t k = first; k < m->nheaps; k++)
			if (m->heaps[k].start == h)
				return 0;
		/* heap_info: ar_ptr, prev, size */
		if (hi[0] != a || hi[2] > HEAP_MAX || hi[2] < 48)
			return 0;
		if ((err = add_heap(m, h, h + hi[2])))
			return err;
		(*nheaps)++;
		h = hi[1];
	}
	return 0;
}

int pyx_cmalloc_walk(struct pyx_mem *mem, const struct pyx_cmalloc_where *w,
		     struct pyx_cmalloc *out)
{
	size_t stlen = (size_t)w->bins_off + ST_TAIL;
	pyx_addr_t a = w->main_arena;
	uint8_t *st;
	int err = 0;

	if (w->bins_off < 24 || w->bins_off > 128 ||
	    w->fastbins_off + 8 * w->nfastbins > w->bins_off - 16)
		return pyx_err_set(PYX_E_INTERNAL, "malloc_state layout");
	st = malloc(stlen);
	if (!st)
		return -PYX_E_NOMEM;
	out->available = true;
	out->glibc_layout = w->mp_layout;
	if (w->sbrk_lo && (err = add_heap(out, w->sbrk_lo, w->sbrk_hi)))
		goto out;
	do {
		struct pyx_cmalloc_arena *ar, *v;
		bool main = a == w->main_arena;

		if (out->narenas >= PYX_CMALLOC_MAX_ARENAS || (a & 7)) {
			out->partial = true;
			break;
		}
		if ((err = pyx_mem_read(mem, a, st, stlen))) {
			if (main)
				goto out;
			/* A thread arena that cannot be read: the ring ends. */
			pyx_err_clear();
			err = 0;
			out->partial = true;
			break;
		}
		for (size_t i = 0; i < out->narenas; i++)
			if (out->arenas[i].addr == a) {
				out->partial = true; /* a ring without main */
				goto done;
			}
		v = realloc(out->arenas, (out->narenas + 1) * sizeof(*v));
		if (!v) {
			err = -PYX_E_NOMEM;
			goto out;
		}
		out->arenas = v;
		ar = &v[out->narenas++];
		memset(ar, 0, sizeof(*ar));
		ar->main = main;
		if ((err = walk_arena(mem, w, a, st, ar)))
			goto out;
		if (!main && (err = thread_heaps(mem, a, word(st, w->bins_off - 16),
						 out, &ar->heaps)))
			goto out;
		out->partial |= ar->partial;
		out->arena_bytes += ar->system_bytes;
		out->in_use_bytes += ar->in_use_bytes;
		out->free_bytes += ar->free_bytes;
		out->fastbin_bytes += ar->fastbin_bytes;
		out->free_chunks += ar->free_chunks;
		out->top_bytes += ar->top_bytes;
		a = word(st, w->bins_off + ST_NEXT);
	} while (a != w->main_arena);
done:
	if (w->mp) {
		const struct mp_layout *l = mp_layout_of(w->mp_layout);
		uint8_t mp[160];
		int32_t n;

		if (l && pyx_mem_read(mem, w->mp, mp, l->size) == 0) {
			memcpy(&n, mp + l->n_mmaps, 4);
			out->mmapped_blocks = n > 0 ? (uint64_t)n : 0;
			out->mmapped_bytes = word(mp, l->mmapped_mem);
		}
		pyx_err_clear();
	}
out:
	free(st);
	return err;
}

/* ---- finding the state ------------------------------------------------ */

static bool mp_plausible(const struct mp_layout *l, const uint8_t *b,
			 const struct pyx_cmalloc_where *w, bool strict)
{
	int32_t n, max;
	uint64_t mm = word(b, l->mmapped_mem), sb = word(b, l->sbrk_base);

	memcpy(&n, b + l->n_mmaps, 4);
	memcpy(&max, b + l->n_mmaps_max, 4);
	/* mmapped_mem sums whole pages, or (2.43+) chunk sizes, 16-byte
	 * multiples. */
	if (n < 0 || max < 0 || n > max || (mm & 15) || (n > 0) != (mm > 0) ||
	    mm > MAX_SYSTEM_MEM)
		return false;
	if (strict && (max != 65536 || word(b, 0) < 4096 || word(b, 16) < 4096))
		return false;
	/* sbrk_base: where [heap] begins, or nothing yet. */
	if (w->sbrk_lo)
		return sb == w->sbrk_lo;
	return strict ? sb == 0 : true;
}

/* An arena's bins at B: every bin either empty (points at itself) or
 * holding 16-byte aligned chunks on both ends; most large bins empty. */
static bool bins_at(const uint8_t *b, size_t off, pyx_addr_t base)
{
	pyx_addr_t B = base + off;
	unsigned empty = 0;

	for (unsigned i = 0; i < NBINS - 1; i++) {
		uint64_t fd = word(b, off + 16 * i), bk = word(b, off + 16 * i + 8);
		pyx_addr_t self = B + 16 * i - 16;

		if (fd == self && bk == self)
			empty++;
		else if (!fd || !bk || (fd & 15) || (bk & 15) || fd == self ||
			 bk == self)
			return false;
	}
	return empty >= 32;
}

/* Whether the ring of arenas from main (at S) comes back to it, reading
 * each arena's next at bins_off + ST_NEXT. */
static bool ring_closes(struct pyx_mem *mem, pyx_addr_t S, uint32_t bins_off,
			uint64_t first)
{
	pyx_addr_t a = first;

	for (int i = 0; i < PYX_CMALLOC_MAX_ARENAS; i++) {
		if (a == S)
			return true;
		if (!a || (a & 7) || pyx_mem_read_u64(mem, a + bins_off + ST_NEXT, &a)) {
			pyx_err_clear();
			return false;
		}
	}
	return false;
}

struct region {
	pyx_addr_t start;
	size_t len;
	uint8_t *buf;
};

static const uint32_t bins_offsets[] = { 112, 24, 104 };

static void set_bins(struct pyx_cmalloc_where *w, uint32_t bins_off)
{
	w->bins_off = bins_off;
	w->nfastbins = bins_off == 112 ? 10 : bins_off == 104 ? 10 : 0;
	w->fastbins_off = bins_off == 112 ? 16 : 8;
}

static bool scan_main_arena(struct pyx_mem *mem, const struct region *r,
			    size_t nr, struct pyx_cmalloc_where *w)
{
	for (size_t k = 0; k < nr; k++) {
		for (size_t off = 0; off + BINS_BYTES + 64 <= r[k].len; off += 8) {
			if (!bins_at(r[k].buf, off, r[k].start))
				continue;
			for (size_t j = 0; j < PYX_ARRAY_SIZE(bins_offsets); j++) {
				uint32_t bo = bins_offsets[j];
				pyx_addr_t S = r[k].start + off - bo;
				uint64_t next = word(r[k].buf, off + ST_NEXT);

				if (off < bo || !ring_closes(mem, S, bo, next))
					continue;
				w->main_arena = S;
				set_bins(w, bo);
				return true;
			}
		}
	}
	return false;
}

static bool scan_mp(const struct region *r, size_t nr,
		    struct pyx_cmalloc_where *w)
{
	pyx_addr_t found = 0;
	int layout = 0, hits = 0;

	for (size_t k = 0; k < nr; k++)
		for (size_t off = 0; off + 144 <= r[k].len; off += 8)
			for (size_t j = 0; j < PYX_ARRAY_SIZE(mp_layouts); j++)
				if (mp_plausible(&mp_layouts[j], r[k].buf + off, w,
						 true)) {
					found = r[k].start + off;
					layout = mp_layouts[j].id;
					hits++;
				}
	if (hits != 1)
		return false;
	w->mp = found;
	w->mp_layout = layout;
	return true;
}

static const char *base_name(const char *p)
{
	const char *s = strrchr(p, '/');

	return s ? s + 1 : p;
}

static bool is_libc(const char *path)
{
	const char *b = base_name(path);

	return strcmp(b, "libc.so.6") == 0 ||
	       (strncmp(b, "libc-2.", 7) == 0 && strstr(b, ".so"));
}

/* Other allocators, by the libraries mapped: named, never misread. */
static void other_allocators(const struct pyx_map *maps, size_t n,
			     struct pyx_cmalloc *m)
{
	static const char *const names[][2] = {
		{ "libjemalloc", "jemalloc" },
		{ "libtcmalloc", "tcmalloc" },
		{ "libmimalloc", "mimalloc" },
	};

	for (size_t i = 0; i < n; i++) {
		const char *b = base_name(maps[i].path ? maps[i].path : "");

		for (size_t j = 0; j < PYX_ARRAY_SIZE(names); j++)
			if (strncmp(b, names[j][0], strlen(names[j][0])) == 0) {
				snprintf(m->other, sizeof(m->other), "%s (%s)",
					 names[j][1], maps[i].path);
				return;
			}
	}
}

static void unavailable(struct pyx_cmalloc *m, const char *fmt, const char *s)
{
	char buf[1024];

	m->available = false;
	snprintf(buf, sizeof(buf), fmt, s);
	snprintf(m->why, sizeof(m->why), "%.255s", buf);
}

/* main_arena and mp_ by symbol: in libc, else in its debug file. */
static bool by_symbols(struct pyx_target *tgt, const char *libc,
		       const char *debug_dir, struct pyx_cmalloc_where *w,
		       uint64_t *mp_size)
{
	struct pyx_elf *elf = NULL, *dbg = NULL;
	uint64_t ma_size = 0;
	pyx_addr_t bias = 0;
	char local[4096], searched[1024];
	bool ok = false;
	int fd;

	if (pyx_target_open_elf(tgt, libc, &elf))
		goto out;
	if (pyx_elf_lookup(elf, "main_arena", &w->main_arena, &ma_size) == 0 &&
	    pyx_elf_lookup(elf, "mp_", &w->mp, mp_size) == 0) {
		ok = true;
		goto out;
	}
	if (pyx_elf_bias(elf, tgt, libc, &bias) ||
	    pyx_target_open_debug_file(tgt, elf, libc, debug_dir, &fd, local,
				       sizeof(local), searched, sizeof(searched)) ||
	    pyx_elf_open_fd(fd, local, bias, &dbg))
		goto out;
	ok = pyx_elf_lookup(dbg, "main_arena", &w->main_arena, &ma_size) == 0 &&
	     pyx_elf_lookup(dbg, "mp_", &w->mp, mp_size) == 0;
out:
	pyx_err_clear();
	pyx_elf_free(dbg);
	pyx_elf_free(elf);
	if (!ok)
		return false;
	switch (ma_size) {
	case 2200: set_bins(w, 112); break;
	case 2112: set_bins(w, 24); break;
	case 2192: set_bins(w, 104); break;
	default:
		pyx_debug("main_arena of %" PRIu64 " bytes: unknown layout",
			  ma_size);
		return false;
	}
	return true;
}

int pyx_cmalloc_find(struct pyx_target *tgt, const char *debug_dir,
		     struct pyx_cmalloc_found *f)
{
	size_t n;
	const struct pyx_map *maps = pyx_target_maps(tgt, &n);
	const char *libc = NULL;

	memset(f, 0, sizeof(*f));
	for (size_t i = 0; i < n && !libc; i++)
		if (maps[i].path && is_libc(maps[i].path))
			libc = maps[i].path;
	if (!libc)
		return 0;
	f->have_libc = true;
	snprintf(f->libc, sizeof(f->libc), "%s", libc);
	f->symbols = by_symbols(tgt, libc, debug_dir, &f->w, &f->mp_size);
	return 0;
}

int pyx_cmalloc_walk_found(struct pyx_target *tgt,
			   const struct pyx_cmalloc_found *f,
			   struct pyx_cmalloc *out)
{
	struct pyx_mem *mem = pyx_target_mem(tgt);
	struct pyx_cmalloc_where w = f->w;
	struct region r[8];
	size_t n, nr = 0;
	const struct pyx_map *maps = pyx_target_maps(tgt, &n);
	const char *libc = f->libc;
	uint64_t mp_size = f->mp_size;
	int err = 0;

	memset(out, 0, sizeof(*out));
	memset(r, 0, sizeof(r));
	other_allocators(maps, n, out);
	w.sbrk_lo = w.sbrk_hi = 0;
	for (size_t i = 0; i < n; i++) {
		const char *p = maps[i].path ? maps[i].path : "";

		if (strcmp(p, "[heap]") == 0) {
			w.sbrk_lo = maps[i].start;
			w.sbrk_hi = maps[i].end;
		}
	}
	if (!f->have_libc) {
		unavailable(out, "%s", "no glibc mapped (a static binary, "
			    "musl?)");
		return 0;
	}
	snprintf(out->libc, sizeof(out->libc), "%.255s", libc);
	if (f->symbols) {
		snprintf(out->method, sizeof(out->method), "libc symbols");
		w.mp_layout = 0;
		for (size_t j = 0; j < PYX_ARRAY_SIZE(mp_layouts); j++) {
			uint8_t b[160];

			if (mp_layouts[j].size != mp_size ||
			    pyx_mem_read(mem, w.mp, b, mp_size))
				continue;
			if (mp_plausible(&mp_layouts[j], b, &w, false)) {
				w.mp_layout = mp_layouts[j].id;
				break;
			}
		}
		pyx_err_clear();
		if (!w.mp_layout)
			w.mp = 0;
	} else {
		/* libc's writable data, and the anonymous mapping right
		 * after it (the rest of its .bss). */
		for (size_t i = 0; i < n && nr < PYX_ARRAY_SIZE(r); i++) {
			const struct pyx_map *m = &maps[i];
			bool ours = m->path && strcmp(m->path, libc) == 0;
			bool bss = !ours && i > 0 && maps[i - 1].path &&
				   strcmp(maps[i - 1].path, libc) == 0 &&
				   (!m->path || !m->path[0]) &&
				   m->start == maps[i - 1].end;

			if (!(ours || bss) || !m->w || !m->r ||
			    m->end - m->start > (1u << 20))
				continue;
			r[nr].start = m->start;
			r[nr].len = m->end - m->start;
			r[nr].buf = malloc(r[nr].len);
			if (!r[nr].buf) {
				err = -PYX_E_NOMEM;
				goto out;
			}
			if (pyx_mem_read(mem, m->start, r[nr].buf, r[nr].len)) {
				pyx_err_clear();
				free(r[nr].buf);
				continue;
			}
			nr++;
		}
		if (!scan_main_arena(mem, r, nr, &w)) {
			unavailable(out, "glibc's main_arena was not found in %.160s "
				    "(no symbols, and no signature matched)",
				    libc);
			goto out;
		}
		if (!scan_mp(r, nr, &w))
			w.mp = 0;
		snprintf(out->method, sizeof(out->method), "signature scan");
	}
	{
		const struct mp_layout *l = mp_layout_of(w.mp_layout);

		w.safe_linking = l ? l->safe_linking : -1;
	}
	if ((err = pyx_cmalloc_walk(mem, &w, out))) {
		if (err == -PYX_E_NOMEM)
			goto out;
		unavailable(out, "glibc's malloc state cannot be read: %.160s",
			    pyx_err_detail());
		pyx_err_clear();
		err = 0;
	}
out:
	for (size_t i = 0; i < nr; i++)
		free(r[i].buf);
	return err;
}

int pyx_cmalloc_read(struct pyx_target *tgt, const char *debug_dir,
		     struct pyx_cmalloc *out)
{
	struct pyx_cmalloc_found f;
	int err = pyx_cmalloc_find(tgt, debug_dir, &f);

	if (err) {
		memset(out, 0, sizeof(*out));
		return err;
	}
	return pyx_cmalloc_walk_found(tgt, &f, out);
}
