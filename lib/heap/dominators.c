/* Dominators: semi-NCA, iterative (see dominators.h). */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "pyxray/error.h"
#include "dominators.h"

#define UNSEEN UINT32_MAX

/* Depth-first preorder from the virtual root (number 0): pre[] by node,
 * vert[] and parent[] by number, *count the numbers used.  Bit e of
 * other[] is set for each edge e that is not a tree edge (its target seen
 * before; not for a self-loop): the only edges preds() needs. */
static int dfs(const struct pyx_dom_graph *g, struct pyx_pages *pp,
	       uint32_t *pre, uint32_t *vert, uint32_t *parent,
	       uint64_t *other, uint32_t *count)
{
	size_t n1 = (size_t)g->n + 1;
	uint32_t *snode = pyx_pages_alloc(pp, n1 * sizeof(*snode));
	uint64_t *sedge = pyx_pages_alloc(pp, n1 * sizeof(*sedge));
	uint32_t num = 1;

	if (!snode || !sedge) {
		pyx_pages_free(pp, snode);
		pyx_pages_free(pp, sedge);
		return -PYX_E_NOMEM;
	}
	vert[0] = UNSEEN;
	parent[0] = 0;
	for (uint32_t r = 0; r < g->nroots; r++) {
		uint32_t root = g->roots[r];
		size_t sp = 0;

		if (root >= g->n || pre[root] != UNSEEN)
			continue;
		pre[root] = num;
		vert[num] = root;
		parent[num++] = 0;
		snode[sp] = root;
		sedge[sp++] = g->off[root];
		while (sp) {
			uint32_t v = snode[sp - 1], w;
			uint64_t e = sedge[sp - 1];

			if (e >= g->off[v + 1]) {
				sp--;
				continue;
			}
			sedge[sp - 1] = e + 1;
			w = g->dst[e];
			if (w >= g->n)
				continue;
			if (pre[w] != UNSEEN) {
				if (w != v)
					other[e >> 6] |= 1ull << (e & 63);
				continue;
			}
			pre[w] = num;
			vert[num] = w;
			parent[num++] = pre[v];
			/* each node is pushed once: sp <= n */
			snode[sp] = w;
			sedge[sp++] = g->off[w];
		}
	}
	pyx_pages_free(pp, snode);
	pyx_pages_free(pp, sedge);
	*count = num;
	return 0;
}

/* The edges dfs() marked in other[], in the order of the edges, as the
 * numbers of their source and target: the sources' come sequentially
 * from pre[] (edges are rows by node), only the targets' are random
 * reads, and only for the edges that are no tree edge (a fifth of a
 * Python heap's).  Start with *it zeroed; false at the end. */
struct other_it {
	uint64_t word;   /* the bits of other[i - 1] not yet taken */
	uint64_t i;
	uint32_t v;      /* the source node of the last edge */
};

static inline bool other_next(const struct pyx_dom_graph *g,
			      const uint32_t *pre, const uint64_t *other,
			      struct other_it *it, uint32_t *src,
			      uint32_t *dst)
{
	uint64_t nw = (g->off[g->n] + 63) / 64, e;

	while (!it->word) {
		if (it->i >= nw)
			return false;
		it->word = other[it->i++];
	}
	e = (it->i - 1) * 64 + (uint64_t)__builtin_ctzll(it->word);
	it->word &= it->word - 1;
	while (g->off[it->v + 1] <= e)
		it->v++;
	*src = pre[it->v];
	*dst = pre[g->dst[e]];
	return true;
}

/* Predecessors by number, as rows: rsrc[roff[w]..roff[w+1]) are the
 * numbers of the nodes with an edge to w (0: the virtual root), less w's
 * tree parent (the semidominator's starting value: its edge would change
 * nothing) and w itself. */
static int preds(const struct pyx_dom_graph *g, struct pyx_pages *pp,
		 const uint32_t *pre, const uint64_t *other, uint32_t count,
		 uint64_t **proff, uint32_t **prsrc)
{
	uint64_t *roff = pyx_pages_calloc(pp, (size_t)count + 1,
					  sizeof(*roff)), total = 0;
	uint32_t *rsrc;
	struct other_it it = { 0 };
	uint32_t src, dst;

	if (!roff)
		return -PYX_E_NOMEM;
	while (other_next(g, pre, other, &it, &src, &dst))
		roff[dst + 1]++;
	for (uint32_t r = 0; r < g->nroots; r++)
		if (g->roots[r] < g->n)
			roff[pre[g->roots[r]] + 1]++;
	for (uint32_t i = 1; i <= count; i++)
		roff[i] += roff[i - 1];
	total = roff[count];
	rsrc = pyx_pages_alloc(pp, (total ? total : 1) * sizeof(*rsrc));
	if (!rsrc) {
		pyx_pages_free(pp, roff);
		return -PYX_E_NOMEM;
	}
	/* fill: roff[w] runs to the start of w + 1, then shifts back */
	memset(&it, 0, sizeof(it));
	while (other_next(g, pre, other, &it, &src, &dst))
		rsrc[roff[dst]++] = src;
	for (uint32_t r = 0; r < g->nroots; r++)
		if (g->roots[r] < g->n)
			rsrc[roff[pre[g->roots[r]]]++] = 0;
	memmove(roff + 1, roff, (size_t)count * sizeof(*roff));
	roff[0] = 0;
	*proff = roff;
	*prsrc = rsrc;
	return 0;
}

/* Lengauer-Tarjan's EVAL over the forest of the numbers above last (those
 * are linked to their parents): the number of least semidominator on the
 * forest path from v up to (not including) its tree's root, compressing
 * the path on the way.  Iterative: stack has room for every number. */
static uint32_t eval(uint32_t v, uint32_t last, uint32_t *anc, uint32_t *label,
		     const uint32_t *semi, uint32_t *stack)
{
	size_t sp = 0;
	uint32_t x = v;

	if (v < last)
		return v;
	while (anc[x] >= last) {
		stack[sp++] = x;
		x = anc[x];
	}
	while (sp) {
		uint32_t y = stack[--sp], p = anc[y];

		if (semi[label[p]] < semi[label[y]])
			label[y] = label[p];
		anc[y] = anc[p];
	}
	return label[v];
}

int pyx_dom_compute(const struct pyx_dom_graph *g, struct pyx_dom **out)
{
	return pyx_dom_compute_in(g, NULL, out);
}

int pyx_dom_compute_in(const struct pyx_dom_graph *g, struct pyx_pages *pp,
		       struct pyx_dom **out)
{
	size_t n1 = (size_t)g->n + 1;
	uint32_t *pre = NULL, *vert = NULL, *parent = NULL, *semi = NULL,
		 *label = NULL, *anc = NULL, *stack = NULL, *rsrc = NULL;
	uint64_t *roff = NULL, *other = NULL;
	uint32_t count = 0;
	struct pyx_dom *d;
	int err = -PYX_E_NOMEM;

	*out = NULL;
	if (!(d = calloc(1, sizeof(*d))))
		return -PYX_E_NOMEM;
	d->n = g->n;
	d->pages = pp;
	/* vert and pre first, under every temporary (with an arena, the
	 * temporaries are reused once freed when nothing lives above them):
	 * vert becomes the preorder, pre's block the idom array */
	vert = pyx_pages_alloc(pp, n1 * sizeof(*vert));
	pre = pyx_pages_alloc(pp, n1 * sizeof(*pre));
	parent = pyx_pages_alloc(pp, n1 * sizeof(*parent));
	other = pyx_pages_calloc(pp, (size_t)((g->off[g->n] + 63) / 64) + 1,
				 sizeof(*other));
	if (!pre || !vert || !parent || !other)
		goto out;
	memset(pre, 0xff, n1 * sizeof(*pre));
	if ((err = dfs(g, pp, pre, vert, parent, other, &count)) ||
	    (err = preds(g, pp, pre, other, count, &roff, &rsrc)))
		goto out;
	/* under roff and rsrc: marked free, reused when they are */
	pyx_pages_free(pp, other);
	other = NULL;
	/* numbers from here on: with malloc, pre's memory for what follows
	 * (an arena's would not be reused under roff and rsrc) */
	if (!pp) {
		free(pre);
		pre = NULL;
	}
	err = -PYX_E_NOMEM;
	semi = pyx_pages_alloc(pp, count * sizeof(*semi));
	label = pyx_pages_alloc(pp, count * sizeof(*label));
	anc = pyx_pages_alloc(pp, count * sizeof(*anc));
	stack = pyx_pages_alloc(pp, count * sizeof(*stack));
	if (!semi || !label || !anc || !stack)
		goto out;
	for (uint32_t i = 0; i < count; i++) {
		semi[i] = i;
		label[i] = i;
		anc[i] = parent[i];
	}
	/* Semidominators, in reverse preorder: the numbers above w are
	 * linked (implicitly: anc[] starts as the tree parents). */
	for (uint32_t w = count - 1; w >= 1; w--) {
		uint32_t s = parent[w];

		for (uint64_t k = roff[w]; k < roff[w + 1]; k++) {
			uint32_t v = rsrc[k], c;

			c = v <= w ? v : semi[eval(v, w + 1, anc, label, semi,
						   stack)];
			if (c < s)
				s = c;
		}
		semi[w] = s;
	}
	pyx_pages_free(pp, stack);
	stack = NULL;
	pyx_pages_free(pp, rsrc);
	rsrc = NULL;
	pyx_pages_free(pp, roff);
	roff = NULL;
	/* Immediate dominators: the nearest common ancestor of the parent
	 * and the semidominator in the tree built so far (in anc[]). */
	anc[0] = 0;
	for (uint32_t i = 1; i < count; i++) {
		uint32_t x = parent[i];

		while (x > semi[i])
			x = anc[x];
		anc[i] = x;
	}
	d->idom = pre ? pre : pyx_pages_alloc(pp, n1 * sizeof(*d->idom));
	pre = NULL;
	if (!d->idom)
		goto out;
	memset(d->idom, 0xff, n1 * sizeof(*d->idom));
	for (uint32_t i = 1; i < count; i++)
		d->idom[vert[i]] = anc[i] ? vert[anc[i]] : PYX_DOM_ROOT;
	d->nreach = count - 1;
	memmove(vert, vert + 1, (size_t)d->nreach * sizeof(*vert));
	d->order = vert;
	vert = NULL;
	err = 0;
out:
	/* the last allocated first: each frees its block for reuse */
	pyx_pages_free(pp, stack);
	pyx_pages_free(pp, anc);
	pyx_pages_free(pp, label);
	pyx_pages_free(pp, semi);
	pyx_pages_free(pp, rsrc);
	pyx_pages_free(pp, roff);
	pyx_pages_free(pp, other);
	pyx_pages_free(pp, parent);
	pyx_pages_free(pp, pre);
	pyx_pages_free(pp, vert);
	if (err) {
		pyx_dom_free(d);
		return err;
	}
	*out = d;
	return 0;
}

int pyx_dom_retain(struct pyx_dom *d, const uint64_t *size)
{
	return pyx_dom_retain_ex(d, size, NULL);
}

int pyx_dom_retain_ex(struct pyx_dom *d, const uint64_t *size,
		      const uint32_t *extra)
{
	size_t n1 = (size_t)d->n + 1;
	uint64_t *r = pyx_pages_alloc(d->pages, n1 * sizeof(*r));
	uint32_t *c = pyx_pages_calloc(d->pages, n1, sizeof(*c));

	if (!r || !c) {
		pyx_pages_free(d->pages, c);
		pyx_pages_free(d->pages, r);
		return -PYX_E_NOMEM;
	}
	if (d->n)
		memcpy(r, size, (size_t)d->n * sizeof(*r));
	if (extra && d->n)
		memcpy(c, extra, (size_t)d->n * sizeof(*c));
	pyx_dom_retain_own(d, r, c);
	return 0;
}

void pyx_dom_retain_own(struct pyx_dom *d, uint64_t *size, uint32_t *extra)
{
	pyx_pages_free(d->pages, d->retained);
	pyx_pages_free(d->pages, d->retained_count);
	d->retained = size;
	d->retained_count = extra;
	d->reached_bytes = 0;
	for (uint32_t v = 0; v < d->n; v++) {
		if (d->idom[v] == PYX_DOM_NONE) {
			size[v] = 0;
			extra[v] = 0;
		} else {
			extra[v]++;
		}
	}
	/* a node's dominators come before it in preorder */
	for (uint32_t i = d->nreach; i-- > 0;) {
		uint32_t v = d->order[i], p = d->idom[v];

		if (p == PYX_DOM_ROOT) {
			d->reached_bytes += size[v];
			continue;
		}
		size[p] += size[v];
		extra[p] += extra[v];
	}
}

int pyx_dom_children(const struct pyx_dom *d, uint32_t **pkoff,
		     uint32_t **pkids)
{
	size_t n2 = (size_t)d->n + 2;
	uint32_t *koff = pyx_pages_calloc(d->pages, n2 + 1, sizeof(*koff));
	uint32_t *kids = pyx_pages_alloc(d->pages, ((size_t)d->nreach + 1) *
					 sizeof(*kids));

	if (!koff || !kids) {
		pyx_pages_free(d->pages, kids);
		pyx_pages_free(d->pages, koff);
		return -PYX_E_NOMEM;
	}
	for (uint32_t i = 0; i < d->nreach; i++) {
		uint32_t p = d->idom[d->order[i]];

		koff[(p == PYX_DOM_ROOT ? d->n : p) + 1]++;
	}
	for (size_t i = 1; i <= n2; i++)
		koff[i] += koff[i - 1];
	for (uint32_t i = 0; i < d->nreach; i++) {
		uint32_t v = d->order[i], p = d->idom[v];

		kids[koff[p == PYX_DOM_ROOT ? d->n : p]++] = v;
	}
	memmove(koff + 1, koff, (n2 - 1) * sizeof(*koff));
	koff[0] = 0;
	*pkoff = koff;
	*pkids = kids;
	return 0;
}

void pyx_dom_trim(struct pyx_dom *d)
{
	pyx_pages_free(d->pages, d->idom);
	pyx_pages_free(d->pages, d->order);
	d->idom = NULL;
	d->order = NULL;
}

void pyx_dom_free(struct pyx_dom *d)
{
	if (!d)
		return;
	pyx_pages_free(d->pages, d->retained_count);
	pyx_pages_free(d->pages, d->retained);
	pyx_pages_free(d->pages, d->idom);
	pyx_pages_free(d->pages, d->order);
	free(d);
}

/* The nearest common ancestor of a and b (nodes some root reaches, or
 * PYX_DOM_ROOT) in the dominator tree: an ancestor comes before its
 * descendants in preorder, so the later of the two is no ancestor of the
 * other and climbs.  Bounded: each step moves one of them up the tree. */
static uint32_t nca(const struct pyx_dom *d, const uint32_t *pre, uint32_t a,
		    uint32_t b)
{
	while (a != b) {
		if (a == PYX_DOM_ROOT || b == PYX_DOM_ROOT)
			return PYX_DOM_ROOT;
		if (pre[a] > pre[b])
			a = d->idom[a];
		else
			b = d->idom[b];
	}
	return a;
}

int pyx_dom_attach(const struct pyx_dom *d, uint32_t nleaf,
		   const uint32_t *owner, const uint32_t *pair, uint64_t npair,
		   uint32_t *out)
{
	uint32_t *pre = pyx_pages_alloc(d->pages,
					((size_t)d->n + 1) * sizeof(*pre));

	if (!pre)
		return -PYX_E_NOMEM;
	for (uint32_t i = 0; i < d->nreach; i++)
		pre[d->order[i]] = i;
	for (uint32_t l = 0; l < nleaf; l++) {
		uint32_t o = owner[l];

		if (o == PYX_DOM_ROOT)
			out[l] = PYX_DOM_ROOT;
		else
			out[l] = o < d->n && d->idom[o] != PYX_DOM_NONE
				 ? o : PYX_DOM_NONE;
	}
	for (uint64_t i = 0; i < npair; i++) {
		uint32_t l = pair[2 * i], v = pair[2 * i + 1];

		if (l >= nleaf || v >= d->n || d->idom[v] == PYX_DOM_NONE ||
		    out[l] == PYX_DOM_ROOT)
			continue;
		out[l] = out[l] == PYX_DOM_NONE ? v : nca(d, pre, out[l], v);
	}
	pyx_pages_free(d->pages, pre);
	return 0;
}
