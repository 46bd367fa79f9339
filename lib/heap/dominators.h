/* Dominators and retained sizes of an object graph (docs/suspects.md).
 *
 * The graph is given as rows (out-edges of node v: dst[off[v]..off[v+1]))
 * and a list of roots; a virtual root, above every node, has an edge to
 * each root.  Node a dominates node b when every path from the virtual root
 * to b goes through a: b's retained set is everything a dominates, what
 * would be freed with a.  pyx_dom_compute() is the semi-NCA algorithm
 * (Georgiadis; Lengauer-Tarjan's semidominators, then immediate dominators
 * as nearest common ancestors), iterative throughout: an explicit stack
 * for the depth-first search and for the path compression, so a chain of
 * millions of objects needs no deep C stack.
 *
 * Memory while it runs: 28 bytes a node and 16 for each edge that is no
 * edge of the search's tree (the predecessors the semidominators need,
 * sorted) at most, with room for 8 an edge reserved; what it keeps: 20 bytes a node (idom, preorder,
 * retained bytes and objects; pyx_dom_trim() frees the first two).
 * Its arrays come from the graph's arena (pages.h) when it has one:
 * allocated in the order that lets what it frees be reused.
 * Library-private.
 */
#ifndef PYX_DOMINATORS_H
#define PYX_DOMINATORS_H

#include <stdint.h>

#include "pages.h"

#define PYX_DOM_NONE UINT32_MAX      /* no root reaches the node */
#define PYX_DOM_ROOT (UINT32_MAX - 1) /* dominated only by the virtual root */

struct pyx_dom_graph {
	uint32_t n;
	const uint64_t *off;   /* n + 1 entries */
	const uint32_t *dst;   /* off[n] entries; a target >= n is skipped */
	const uint32_t *roots;
	uint32_t nroots;
	/* Roots only if the roots above do not reach them (the objects
	 * held from outside the Python heap: refs' search seeds those
	 * nothing named reaches), in this order; may be NULL. */
	const uint32_t *roots2;
	uint32_t nroots2;
};

struct pyx_dom {
	uint32_t n;
	uint32_t nreach;       /* nodes some root reaches */
	uint32_t *idom;        /* by node: its immediate dominator, or
				  PYX_DOM_ROOT, or PYX_DOM_NONE */
	uint32_t *order;       /* the reached nodes in depth-first preorder:
				  a node's dominators come before it */
	uint64_t *retained;    /* by node, after pyx_dom_retain(): bytes */
	uint32_t *retained_count; /* and objects (the node included) */
	uint64_t reached_bytes;   /* the retained size of the virtual root */
	uint32_t nroots;       /* the roots the virtual root holds: those of
				  roots and of roots2 it has (each given
				  once) */
	uint64_t unreached, unreached_bytes; /* after a retain: the nodes no
				  root reaches, and their sizes */
	struct pyx_pages *pages;  /* the graph's: the arrays above */
};

/* -PYX_E_NOMEM, or 0 with *out set. */
int pyx_dom_compute(const struct pyx_dom_graph *g, struct pyx_dom **out);
/* The same, every array of the computation and of the result from pp
 * (d->pages; NULL: malloc). */
int pyx_dom_compute_in(const struct pyx_dom_graph *g, struct pyx_pages *pp,
		       struct pyx_dom **out);
/* Retained bytes and objects from each node's own size (by node). */
int pyx_dom_retain(struct pyx_dom *d, const uint64_t *size);
/* The same, node v retaining extra[v] more objects (its leaves, whose
 * bytes size[v] includes). */
int pyx_dom_retain_ex(struct pyx_dom *d, const uint64_t *size,
		      const uint32_t *extra);
/* The same in place: size (by node: its own bytes) and extra (by node:
 * the objects it stands for besides itself), each of n entries from
 * pyx_pages_alloc(d->pages) (malloc() without an arena), become
 * d->retained and d->retained_count (owned by d: freed with it), with no
 * second copy of either.  Cannot fail. */
void pyx_dom_retain_own(struct pyx_dom *d, uint64_t *size, uint32_t *extra);
/* Leaves: objects with no out-edges kept out of the graph.  Leaf l is
 * referenced by owner[l] (a node, or PYX_DOM_ROOT for a root) and by the
 * nodes pair[2i + 1] of the pairs whose pair[2i] is l.  out[l]: its
 * immediate dominator, the nearest common dominator of its referrers
 * that some root reaches (PYX_DOM_NONE: none).  -PYX_E_NOMEM or 0. */
int pyx_dom_attach(const struct pyx_dom *d, uint32_t nleaf,
		   const uint32_t *owner, const uint32_t *pair, uint64_t npair,
		   uint32_t *out);
/* The dominator tree as rows: the children of node v are
 * kids[koff[v]..koff[v + 1]), those of the virtual root
 * kids[koff[n]..koff[n + 1]); each row in preorder.  Both from d->pages:
 * free them with pyx_pages_free(d->pages, ...) (free() without an arena). */
int pyx_dom_children(const struct pyx_dom *d, uint32_t **koff,
		     uint32_t **kids);
/* Free idom and order (8 bytes a node) once the retained sizes and the
 * children rows are taken: what uses neither needs no more. */
void pyx_dom_trim(struct pyx_dom *d);
void pyx_dom_free(struct pyx_dom *d);

#endif
