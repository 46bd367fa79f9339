/* Dominators: semi-NCA, iterative (see dominators.h). */
#include <stdlib.h>
#include <string.h>

#include "pyxray/error.h"
#include "dominators.h"

#define UNSEEN UINT32_MAX

/* Depth-first preorder from the virtual root (number 0): pre[] by node,
 * vert[] and parent[] by number.  Returns the count of numbers used. */
static int dfs(const struct pyx_dom_graph *g, uint32_t *pre, uint32_t *vert,
	       uint32_t *parent, uint32_t *count)
{
	uint32_t *snode = malloc(((size_t)g->n + 1) * sizeof(*snode));
	uint64_t *sedge = malloc(((size_t)g->n + 1) * sizeof(*sedge));
	uint32_t num = 1;

	if (!snode || !sedge) {
		free(snode);
		free(sedge);
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
			if (w >= g->n || pre[w] != UNSEEN)
				continue;
			pre[w] = num;
			vert[num] = w;
			parent[num++] = pre[v];
			/* each node is pushed once: sp <= n */
			snode[sp] = w;
			sedge[sp++] = g->off[w];
		}
	}
	free(snode);
	free(sedge);
	*count = num;
	return 0;
}

/* Predecessors by number, as rows: rsrc[roff[w]..roff[w+1]) are the
 * numbers of the nodes with an edge to w (0: the virtual root). */
static int preds(const struct pyx_dom_graph *g, const uint32_t *pre,
		 const uint32_t *vert, uint32_t count, uint64_t **proff,
		 uint32_t **prsrc)
{
	uint64_t *roff = calloc((size_t)count + 1, sizeof(*roff)), total = 0;
	uint32_t *rsrc;

	if (!roff)
		return -PYX_E_NOMEM;
	for (uint32_t i = 1; i < count; i++) {
		uint32_t v = vert[i];

		for (uint64_t e = g->off[v]; e < g->off[v + 1]; e++)
			if (g->dst[e] < g->n && g->dst[e] != v)
				roff[pre[g->dst[e]] + 1]++;
	}
	for (uint32_t r = 0; r < g->nroots; r++)
		if (g->roots[r] < g->n)
			roff[pre[g->roots[r]] + 1]++;
	for (uint32_t i = 1; i <= count; i++)
		roff[i] += roff[i - 1];
	total = roff[count];
	rsrc = malloc((total ? total : 1) * sizeof(*rsrc));
	if (!rsrc) {
		free(roff);
		return -PYX_E_NOMEM;
	}
	/* fill: roff[w] runs to the start of w + 1, then shifts back */
	for (uint32_t i = 1; i < count; i++) {
		uint32_t v = vert[i];

		for (uint64_t e = g->off[v]; e < g->off[v + 1]; e++)
			if (g->dst[e] < g->n && g->dst[e] != v)
				rsrc[roff[pre[g->dst[e]]]++] = i;
	}
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
	size_t n1 = (size_t)g->n + 1;
	uint32_t *pre = NULL, *vert = NULL, *parent = NULL, *semi = NULL,
		 *label = NULL, *anc = NULL, *stack = NULL, *rsrc = NULL;
	uint64_t *roff = NULL;
	uint32_t count = 0;
	struct pyx_dom *d;
	int err = -PYX_E_NOMEM;

	*out = NULL;
	if (!(d = calloc(1, sizeof(*d))))
		return -PYX_E_NOMEM;
	d->n = g->n;
	pre = malloc(n1 * sizeof(*pre));
	vert = malloc(n1 * sizeof(*vert));
	parent = malloc(n1 * sizeof(*parent));
	if (!pre || !vert || !parent)
		goto out;
	memset(pre, 0xff, n1 * sizeof(*pre));
	if ((err = dfs(g, pre, vert, parent, &count)) ||
	    (err = preds(g, pre, vert, count, &roff, &rsrc)))
		goto out;
	/* numbers from here on: pre's memory for what follows */
	free(pre);
	pre = NULL;
	err = -PYX_E_NOMEM;
	semi = malloc(count * sizeof(*semi));
	label = malloc(count * sizeof(*label));
	anc = malloc(count * sizeof(*anc));
	stack = malloc(count * sizeof(*stack));
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
	free(stack);
	stack = NULL;
	free(rsrc);
	rsrc = NULL;
	free(roff);
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
	d->idom = malloc(n1 * sizeof(*d->idom));
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
	free(pre);
	free(vert);
	free(parent);
	free(semi);
	free(label);
	free(anc);
	free(stack);
	free(rsrc);
	free(roff);
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
	uint64_t *r = malloc(n1 * sizeof(*r));
	uint32_t *c = calloc(n1, sizeof(*c));

	if (!r || !c) {
		free(r);
		free(c);
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
	free(d->retained);
	free(d->retained_count);
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
	uint32_t *koff = calloc(n2 + 1, sizeof(*koff));
	uint32_t *kids = malloc(((size_t)d->nreach + 1) * sizeof(*kids));

	if (!koff || !kids) {
		free(koff);
		free(kids);
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
	free(d->idom);
	free(d->order);
	d->idom = NULL;
	d->order = NULL;
}

void pyx_dom_free(struct pyx_dom *d)
{
	if (!d)
		return;
	free(d->idom);
	free(d->order);
	free(d->retained);
	free(d->retained_count);
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
	uint32_t *pre = malloc(((size_t)d->n + 1) * sizeof(*pre));

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
	free(pre);
	return 0;
}
