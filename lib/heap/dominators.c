/* Dominators: semi-NCA, iterative (see dominators.h). */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "pyxray/error.h"
#include "dominators.h"

#define UNSEEN UINT32_MAX

/* A predecessor as the semidominators want it: the target's number in
 * the high half (the sort key), the source's in the low one. */
#define PAIR(to, from) ((uint64_t)(to) << 32 | (from))
#define PAIR_TO(p) ((uint32_t)((p) >> 32))
#define PAIR_FROM(p) ((uint32_t)(p))

/* The depth-first search from one root, numbered from *num on (see
 * dfs()). */
static void dfs_from(const struct pyx_dom_graph *g, uint32_t root,
		     uint32_t *pre, uint32_t *vert, uint32_t *parent,
		     uint64_t *pair, uint64_t *npair, uint32_t *num,
		     uint32_t *snode, uint64_t *sedge)
{
	size_t sp = 0;

	pre[root] = *num;
	vert[*num] = root;
	parent[(*num)++] = 0;
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
				pair[(*npair)++] = PAIR(pre[w], pre[v]);
			continue;
		}
		pre[w] = *num;
		vert[*num] = w;
		parent[(*num)++] = pre[v];
		/* each node is pushed once: sp <= n */
		snode[sp] = w;
		sedge[sp++] = g->off[w];
	}
}

/* Depth-first preorder from the virtual root (number 0): pre[] by node,
 * vert[] and parent[] by number, *count the numbers used.  Each edge that
 * is no tree edge (its target seen before; not a self-loop) appended to
 * pair[] (room for every edge): the only predecessors the semidominators
 * need, as w's tree parent is where they start.  In a Python heap four
 * edges in five are tree edges, and the others go mostly to a few nodes
 * (an instance's class).  The roots first, then each of roots2 that they
 * did not reach; *named: the numbers the roots' searches used (below it,
 * a node the roots reach). */
static int dfs(const struct pyx_dom_graph *g, struct pyx_pages *pp,
	       uint32_t *pre, uint32_t *vert, uint32_t *parent,
	       uint64_t *pair, uint64_t *npair, uint32_t *count,
	       uint32_t *named)
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
	for (uint32_t r = 0; r < g->nroots; r++)
		if (g->roots[r] < g->n && pre[g->roots[r]] == UNSEEN)
			dfs_from(g, g->roots[r], pre, vert, parent, pair, npair,
				 &num, snode, sedge);
	*named = num;
	for (uint32_t r = 0; g->roots2 && r < g->nroots2; r++)
		if (g->roots2[r] < g->n && pre[g->roots2[r]] == UNSEEN)
			dfs_from(g, g->roots2[r], pre, vert, parent, pair,
				 npair, &num, snode, sedge);
	pyx_pages_free(pp, snode);
	pyx_pages_free(pp, sedge);
	*count = num;
	return 0;
}

/* pair[0..n) sorted by target number (a least-significant-digit radix
 * sort, 16 bits a pass, keys below count), with tmp of n entries; the
 * sorted array is *out (pair or tmp). */
static int sort_pairs(struct pyx_pages *pp, uint64_t *pair, uint64_t *tmp,
		      uint64_t n, uint32_t count, uint64_t **out)
{
	uint64_t *cnt = pyx_pages_alloc(pp, 65536 * sizeof(*cnt));
	uint64_t *from = pair, *to = tmp;

	if (!cnt)
		return -PYX_E_NOMEM;
	for (unsigned shift = 32; shift < 64 && (count - 1) >> (shift - 32);
	     shift += 16) {
		uint64_t sum = 0, *t;

		memset(cnt, 0, 65536 * sizeof(*cnt));
		for (uint64_t i = 0; i < n; i++)
			cnt[(from[i] >> shift) & 0xffff]++;
		for (size_t d = 0; d < 65536; d++) {
			uint64_t c = cnt[d];

			cnt[d] = sum;
			sum += c;
		}
		for (uint64_t i = 0; i < n; i++)
			to[cnt[(from[i] >> shift) & 0xffff]++] = from[i];
		t = from;
		from = to;
		to = t;
	}
	pyx_pages_free(pp, cnt);
	*out = from;
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
		 *label = NULL, *anc = NULL, *stack = NULL;
	uint64_t *pair = NULL, *tmp = NULL, *sorted = NULL, npair = 0;
	uint32_t count = 0, named = 0;
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
	/* room for every edge and root; with an arena, only what is
	 * written counts (its pages are in memory already) */
	pair = pyx_pages_alloc(pp, (size_t)(g->off[g->n] + g->nroots +
					    (g->roots2 ? g->nroots2 : 0) + 1) *
				   sizeof(*pair));
	if (!pre || !vert || !parent || !pair)
		goto out;
	memset(pre, 0xff, n1 * sizeof(*pre));
	if ((err = dfs(g, pp, pre, vert, parent, pair, &npair, &count,
		       &named)))
		goto out;
	/* the virtual root is a predecessor of every root (of those the
	 * search reached first, their tree parent too: harmless), and of
	 * each of roots2 the roots do not reach */
	for (uint32_t r = 0; r < g->nroots; r++)
		if (g->roots[r] < g->n) {
			pair[npair++] = PAIR(pre[g->roots[r]], 0);
			d->nroots++;
		}
	for (uint32_t r = 0; g->roots2 && r < g->nroots2; r++)
		if (g->roots2[r] < g->n && pre[g->roots2[r]] >= named) {
			pair[npair++] = PAIR(pre[g->roots2[r]], 0);
			d->nroots++;
		}
	err = -PYX_E_NOMEM;
	if (!(tmp = pyx_pages_alloc(pp, (size_t)(npair + 1) * sizeof(*tmp))))
		goto out;
	if ((err = sort_pairs(pp, pair, tmp, npair, count, &sorted)))
		goto out;
	/* numbers from here on: with malloc, pre's memory for what follows
	 * (an arena's would not be reused under the pairs) */
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
	 * linked (implicitly: anc[] starts as the tree parents); w's
	 * predecessors other than its parent end the sorted pairs left. */
	for (uint32_t w = count - 1; w >= 1; w--) {
		uint32_t s = parent[w];

		for (; npair && PAIR_TO(sorted[npair - 1]) >= w; npair--) {
			uint32_t v = PAIR_FROM(sorted[npair - 1]), c;

			if (PAIR_TO(sorted[npair - 1]) != w)
				continue;
			c = v <= w ? v : semi[eval(v, w + 1, anc, label, semi,
						   stack)];
			if (c < s)
				s = c;
		}
		semi[w] = s;
	}
	pyx_pages_free(pp, stack);
	stack = NULL;
	pyx_pages_free(pp, tmp);
	tmp = NULL;
	pyx_pages_free(pp, pair);
	pair = NULL;
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
	pyx_pages_free(pp, tmp);
	pyx_pages_free(pp, pair);
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
	d->unreached = d->unreached_bytes = 0;
	for (uint32_t v = 0; v < d->n; v++) {
		if (d->idom[v] == PYX_DOM_NONE) {
			d->unreached++;
			d->unreached_bytes += size[v];
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
