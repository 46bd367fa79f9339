/* An arena over pages already in memory: the heap copy's, once the copy is
 * released (pyx_mem_snapshot_release_pages()).
 *
 * What the whole graph allocates after the copy is gone (the search's
 * arrays, the dominators, the retained sizes, the tree: hundreds of MiB
 * on a big heap) would otherwise come from fresh mappings, a page fault
 * (zeroing, cgroup charge: ~2 us) for every 4 KiB, while the copy's pages,
 * all faulted in, are unmapped.  The arena hands those pages out instead.
 *
 * A bump allocator, 64-byte aligned, thread-safe (a mutex: suspects
 * allocates from two threads).  Freeing the most recent live block pops
 * it, and with it the blocks under it freed before (so temporaries are
 * reused); freeing any other block only marks it.  When the arena is full,
 * or NULL, allocations fall back to malloc() and their free() is free():
 * every caller works the same without an arena (refs, which keeps no copy
 * to recycle; a core's heap, read in place).  Arena memory is dirty:
 * pyx_pages_calloc() clears it.  Library-private.
 */
#ifndef PYX_PAGES_H
#define PYX_PAGES_H

#include <stddef.h>
#include <stdint.h>

struct pyx_pages;

/* An arena over buf (a private anonymous mapping of len bytes, of which
 * the first faulted are in memory), which it owns from here on: the part
 * past faulted is unmapped at once (it would fault like fresh memory, and
 * stay mapped where malloc would give it back).  NULL when buf is NULL or
 * out of memory (buf is then unmapped): allocations fall back to malloc. */
struct pyx_pages *pyx_pages_new(void *buf, size_t len, size_t faulted);
/* n bytes, 64-byte aligned; NULL when out of memory. */
void *pyx_pages_alloc(struct pyx_pages *pp, size_t n);
/* n * size bytes, zeroed; NULL on overflow or out of memory. */
void *pyx_pages_calloc(struct pyx_pages *pp, size_t n, size_t size);
/* p from pyx_pages_alloc/_calloc of pp (or NULL). */
void pyx_pages_free(struct pyx_pages *pp, void *p);
/* Nothing will be allocated past the first keep bytes of the arena (its
 * stats' used: nothing more): the pages above, neither in use nor to be,
 * are given back (unmapped), so that the copy's pages do not stay in
 * memory for nothing.  Later allocations still work (below keep, else
 * malloc).  May run beside allocations on other threads (the unmap takes
 * a while: ~0.2 ms a MiB). */
void pyx_pages_trim(struct pyx_pages *pp, size_t keep);
/* Unmap the arena: every block of it is gone (those from malloc are not
 * freed: their owners free them with pyx_pages_free() first).  Its pages
 * are freed first on up to jobs threads (MADV_DONTNEED: the address
 * space's lock shared; a munmap takes it alone, and freeing the pages is
 * most of its time: ~24 ms for 475 MiB on one thread). */
void pyx_pages_release(struct pyx_pages *pp, unsigned jobs);

struct pyx_pages_stats {
	size_t len;            /* bytes of the arena (after new, trim) */
	size_t used;           /* handed out and not popped */
	size_t peak;           /* the most ever used */
	size_t fallback_bytes; /* asked of malloc (arena full) */
	uint64_t fallbacks;
};
void pyx_pages_get_stats(struct pyx_pages *pp, struct pyx_pages_stats *out);

/* The whole graph's arena (lib/heap/refs.c): the copy's pages with
 * release_copy, else NULL.  Valid until pyx_refs_graph_free(), which
 * unmaps it: what is allocated from it must not outlive the graph. */
struct pyx_refs_graph;
struct pyx_pages *pyx_refs_graph_pages(const struct pyx_refs_graph *g);

#endif
