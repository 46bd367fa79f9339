/* Unit tests of lib/heap/dominators.c: immediate dominators and retained
 * sizes on small graphs with known answers (diamonds, cycles, several
 * roots, unreachable nodes), on random graphs against a brute-force
 * definition (b is dominated by a when removing a cuts every path to b),
 * on a random graph of 150,000 nodes against Cooper, Harvey and Kennedy's
 * iterative algorithm, and on a chain of a million nodes (no recursion). */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "dominators.h"

#include "unit.h"

struct tg {
	uint32_t n;
	uint64_t off[64];
	uint32_t dst[512];
};

/* Rows from an edge list (a -> b pairs), in order of a. */
static void build(struct tg *t, uint32_t n, const uint32_t (*e)[2], size_t ne)
{
	size_t k = 0;

	t->n = n;
	for (uint32_t v = 0; v < n; v++) {
		t->off[v] = k;
		for (size_t i = 0; i < ne; i++)
			if (e[i][0] == v)
				t->dst[k++] = e[i][1];
	}
	t->off[n] = k;
}

static struct pyx_dom *dom(const struct tg *t, const uint32_t *roots,
			   uint32_t nroots)
{
	struct pyx_dom_graph g = { t->n, t->off, t->dst, roots, nroots,
				   NULL, 0 };
	struct pyx_dom *d;

	ck_assert_int_eq(pyx_dom_compute(&g, &d), 0);
	return d;
}

START_TEST(diamond)
{
	/* 0 -> 1, 2; 1 -> 3; 2 -> 3; 3 -> 4 */
	static const uint32_t e[][2] = { {0, 1}, {0, 2}, {1, 3}, {2, 3}, {3, 4} };
	static const uint64_t size[] = { 10, 20, 30, 40, 50 };
	uint32_t root = 0;
	struct tg t;
	struct pyx_dom *d;

	build(&t, 5, e, 5);
	d = dom(&t, &root, 1);
	ck_assert_uint_eq(d->nreach, 5);
	ck_assert_uint_eq(d->idom[0], PYX_DOM_ROOT);
	ck_assert_uint_eq(d->idom[1], 0);
	ck_assert_uint_eq(d->idom[2], 0);
	ck_assert_uint_eq(d->idom[3], 0);
	ck_assert_uint_eq(d->idom[4], 3);
	ck_assert_int_eq(pyx_dom_retain(d, size), 0);
	ck_assert_uint_eq(d->retained[0], 150);
	ck_assert_uint_eq(d->retained[1], 20);
	ck_assert_uint_eq(d->retained[3], 90);
	ck_assert_uint_eq(d->retained_count[3], 2);
	ck_assert_uint_eq(d->retained_count[0], 5);
	ck_assert_uint_eq(d->reached_bytes, 150);
	pyx_dom_free(d);
}
END_TEST

START_TEST(cycles_and_unreachable)
{
	/* 0 -> 1 -> 2 -> 3 -> 1 (a cycle entered at 1); 3 -> 4;
	 * 5 <-> 6 no root reaches; 6 -> 4 does not change 4's dominator. */
	static const uint32_t e[][2] = { {0, 1}, {1, 2}, {2, 3}, {3, 1},
					 {3, 4}, {5, 6}, {6, 5}, {6, 4},
					 {4, 4} };
	static const uint64_t size[] = { 1, 2, 4, 8, 16, 32, 64 };
	uint32_t root = 0;
	struct tg t;
	struct pyx_dom *d;

	build(&t, 7, e, 9);
	d = dom(&t, &root, 1);
	ck_assert_uint_eq(d->nreach, 5);
	ck_assert_uint_eq(d->idom[1], 0);
	ck_assert_uint_eq(d->idom[2], 1);
	ck_assert_uint_eq(d->idom[3], 2);
	ck_assert_uint_eq(d->idom[4], 3);
	ck_assert_uint_eq(d->idom[5], PYX_DOM_NONE);
	ck_assert_uint_eq(d->idom[6], PYX_DOM_NONE);
	ck_assert_int_eq(pyx_dom_retain(d, size), 0);
	ck_assert_uint_eq(d->retained[1], 30);
	ck_assert_uint_eq(d->retained[5], 0);
	ck_assert_uint_eq(d->reached_bytes, 31);
	pyx_dom_free(d);
}
END_TEST

START_TEST(several_roots)
{
	/* roots 0 and 1 both reach 2; 2 -> 3; 1 -> 4; 3 is a root too but
	 * already reached: still dominated by the virtual root only. */
	static const uint32_t e[][2] = { {0, 2}, {1, 2}, {2, 3}, {1, 4} };
	static const uint32_t roots[] = { 0, 1, 3 };
	struct tg t;
	struct pyx_dom *d;

	build(&t, 5, e, 4);
	d = dom(&t, roots, 3);
	ck_assert_uint_eq(d->idom[0], PYX_DOM_ROOT);
	ck_assert_uint_eq(d->idom[1], PYX_DOM_ROOT);
	ck_assert_uint_eq(d->idom[2], PYX_DOM_ROOT);
	ck_assert_uint_eq(d->idom[3], PYX_DOM_ROOT);
	ck_assert_uint_eq(d->idom[4], 1);
	pyx_dom_free(d);
}
END_TEST

/* Brute force: does a dominate b (every path from the roots to b passes
 * through a)?  Search from the roots without a. */
static int reach_without(const struct tg *t, const uint32_t *roots,
			 uint32_t nroots, uint32_t cut, uint32_t b)
{
	uint32_t stack[64], sp = 0;
	char seen[64] = { 0 };

	for (uint32_t r = 0; r < nroots; r++)
		if (roots[r] != cut && !seen[roots[r]]) {
			seen[roots[r]] = 1;
			stack[sp++] = roots[r];
		}
	while (sp) {
		uint32_t v = stack[--sp];

		if (v == b)
			return 1;
		for (uint64_t e = t->off[v]; e < t->off[v + 1]; e++) {
			uint32_t w = t->dst[e];

			if (w != cut && !seen[w]) {
				seen[w] = 1;
				stack[sp++] = w;
			}
		}
	}
	return 0;
}

START_TEST(random_graphs)
{
	unsigned seed = 12345;

	for (int round = 0; round < 300; round++) {
		uint32_t n = 2 + (uint32_t)(rand_r(&seed) % 40), ne, roots[4],
			 nroots = 1 + (uint32_t)(rand_r(&seed) % 3);
		uint32_t e[300][2];
		struct tg t;
		struct pyx_dom *d;

		ne = (uint32_t)(rand_r(&seed) % (3 * n));
		for (uint32_t i = 0; i < ne; i++) {
			e[i][0] = (uint32_t)(rand_r(&seed) % n);
			e[i][1] = (uint32_t)(rand_r(&seed) % n);
		}
		for (uint32_t r = 0; r < nroots; r++)
			roots[r] = (uint32_t)(rand_r(&seed) % n);
		build(&t, n, (const uint32_t (*)[2])e, ne);
		d = dom(&t, roots, nroots);
		for (uint32_t b = 0; b < n; b++) {
			int reached = reach_without(&t, roots, nroots, n, b);
			uint32_t want = PYX_DOM_ROOT;

			if (!reached) {
				ck_assert_uint_eq(d->idom[b], PYX_DOM_NONE);
				continue;
			}
			/* idom: the strict dominator that every other strict
			 * dominator dominates (the closest one) */
			for (uint32_t a = 0; a < n; a++) {
				int closest = 1;

				if (a == b || reach_without(&t, roots, nroots, a, b))
					continue;
				for (uint32_t c = 0; c < n && closest; c++)
					if (c != a && c != b &&
					    !reach_without(&t, roots, nroots, c, b) &&
					    reach_without(&t, roots, nroots, c, a))
						closest = 0;
				if (closest)
					want = a;
			}
			ck_assert_msg(d->idom[b] == want, "round %d n %u: idom(%u)"
				      " = %u, want %u", round, n, b, d->idom[b],
				      want);
		}
		pyx_dom_free(d);
	}
}
END_TEST

/* The iterative algorithm of Cooper, Harvey and Kennedy (a node's
 * dominator is the intersection of its predecessors' in the tree so far,
 * in reverse postorder until nothing changes): an independent answer for
 * graphs too big for the brute force.  Node n is the virtual root; doms[v]
 * = n + 1 where no root reaches v. */
static uint32_t *chk(uint32_t n, const uint64_t *off, const uint32_t *dst,
		     const uint32_t *roots, uint32_t nroots)
{
	uint32_t vr = n, none = n + 1, *po = malloc((n + 1) * sizeof(*po)),
		 *order = malloc((n + 1) * sizeof(*order)),
		 *doms = malloc((n + 1) * sizeof(*doms)),
		 *st = malloc((n + 1) * sizeof(*st)), *poff, *pred, k = 0;
	uint64_t *cur = malloc((n + 1) * sizeof(*cur));
	size_t sp = 0;
	int changed = 1;

	ck_assert(po && order && doms && st && cur);
	/* predecessors, the virtual root's edges included */
	poff = calloc(n + 2, sizeof(*poff));
	ck_assert(poff);
	for (uint64_t e = 0; e < off[n]; e++)
		poff[dst[e] + 1]++;
	for (uint32_t r = 0; r < nroots; r++)
		poff[roots[r] + 1]++;
	for (uint32_t v = 0; v <= n; v++)
		poff[v + 1] += poff[v];
	pred = malloc((poff[n + 1] + 1) * sizeof(*pred));
	ck_assert(pred);
	{
		uint32_t *fill = malloc((n + 1) * sizeof(*fill));

		ck_assert(fill);
		memcpy(fill, poff, (n + 1) * sizeof(*fill));
		for (uint32_t v = 0; v < n; v++)
			for (uint64_t e = off[v]; e < off[v + 1]; e++)
				pred[fill[dst[e]]++] = v;
		for (uint32_t r = 0; r < nroots; r++)
			pred[fill[roots[r]]++] = vr;
		free(fill);
	}
	/* postorder numbers from the virtual root (iterative) */
	for (uint32_t v = 0; v <= n; v++)
		po[v] = none;
	po[vr] = none - 1; /* seen */
	st[sp] = vr;
	cur[sp++] = 0;
	while (sp) {
		uint32_t v = st[sp - 1], w;
		uint64_t end = v == vr ? nroots : off[v + 1] - off[v];

		if (cur[sp - 1] >= end) {
			po[v] = k;
			order[k++] = v;
			sp--;
			continue;
		}
		w = v == vr ? roots[cur[sp - 1]] : dst[off[v] + cur[sp - 1]];
		cur[sp - 1]++;
		if (po[w] != none)
			continue;
		po[w] = none - 1;
		st[sp] = w;
		cur[sp++] = 0;
	}
	for (uint32_t v = 0; v <= n; v++)
		doms[v] = none;
	doms[vr] = vr;
	while (changed) {
		changed = 0;
		for (uint32_t i = k - 1; i-- > 0;) { /* order[k - 1] is vr */
			uint32_t b = order[i], nd = none;

			for (uint32_t j = poff[b]; j < poff[b + 1]; j++) {
				uint32_t p = pred[j], x, y;

				if (doms[p] == none)
					continue;
				if (nd == none) {
					nd = p;
					continue;
				}
				for (x = p, y = nd; x != y;) {
					while (po[x] < po[y])
						x = doms[x];
					while (po[y] < po[x])
						y = doms[y];
				}
				nd = x;
			}
			if (doms[b] != nd) {
				doms[b] = nd;
				changed = 1;
			}
		}
	}
	free(po);
	free(order);
	free(st);
	free(cur);
	free(poff);
	free(pred);
	return doms;
}

/* A graph of 150,000 nodes (more numbers than one 16-bit pass of the
 * predecessors' radix sort holds): a random tree from node 0, then as
 * many random edges again (back edges, cross edges, self-loops, a few
 * nodes many point to, as instances to their class), two more roots. */
START_TEST(large_random_graph)
{
	enum { N = 150000 };
	unsigned seed = 777;
	uint32_t ne = 0, roots[3] = { 0 }, *dst, *doms;
	uint64_t *off = calloc(N + 1, sizeof(*off));
	uint32_t (*e)[2] = malloc(3 * (size_t)N * sizeof(*e));
	struct pyx_dom_graph g;
	struct pyx_dom *d;

	ck_assert(off && e);
	for (uint32_t v = 1; v < N; v++) {
		e[ne][0] = (uint32_t)(rand_r(&seed) % v);
		e[ne++][1] = v;
	}
	for (uint32_t i = 0; i < N; i++) {
		uint32_t a = (uint32_t)(rand_r(&seed) % N);
		uint32_t b = rand_r(&seed) % 4 ? (uint32_t)(rand_r(&seed) % N)
					       : (uint32_t)(rand_r(&seed) % 16);

		e[ne][0] = a;
		e[ne++][1] = b;
	}
	roots[1] = (uint32_t)(rand_r(&seed) % N);
	roots[2] = (uint32_t)(rand_r(&seed) % N);
	/* rows by source: counting sort */
	for (uint32_t i = 0; i < ne; i++)
		off[e[i][0] + 1]++;
	for (uint32_t v = 0; v < N; v++)
		off[v + 1] += off[v];
	dst = malloc(ne * sizeof(*dst));
	ck_assert(dst);
	{
		uint64_t *fill = malloc(N * sizeof(*fill));

		ck_assert(fill);
		memcpy(fill, off, N * sizeof(*fill));
		for (uint32_t i = 0; i < ne; i++)
			dst[fill[e[i][0]]++] = e[i][1];
		free(fill);
	}
	g = (struct pyx_dom_graph){ N, off, dst, roots, 3, NULL, 0 };
	ck_assert_int_eq(pyx_dom_compute(&g, &d), 0);
	doms = chk(N, off, dst, roots, 3);
	for (uint32_t v = 0; v < N; v++) {
		uint32_t want = doms[v] == N + 1 ? PYX_DOM_NONE :
				doms[v] == N ? PYX_DOM_ROOT : doms[v];

		ck_assert_msg(d->idom[v] == want, "idom(%u) = %u, want %u", v,
			      d->idom[v], want);
	}
	ck_assert_uint_eq(d->nreach, N);
	free(doms);
	pyx_dom_free(d);
	free(dst);
	free(e);
	free(off);
}
END_TEST

START_TEST(deep_chain)
{
	/* 0 -> 1 -> ... -> N-1, and N-1 -> 0: a million deep, iteratively */
	const uint32_t n = 1000000;
	uint64_t *off = malloc((n + 1) * sizeof(*off)), *size;
	uint32_t *dst = malloc(n * sizeof(*dst)), root = 0, *koff, *kids;
	struct pyx_dom_graph g;
	struct pyx_dom *d;

	size = malloc(n * sizeof(*size));
	ck_assert(off && dst && size);
	for (uint32_t v = 0; v < n; v++) {
		off[v] = v;
		dst[v] = v + 1 < n ? v + 1 : 0;
		size[v] = 8;
	}
	off[n] = n;
	g = (struct pyx_dom_graph){ n, off, dst, &root, 1, NULL, 0 };
	ck_assert_int_eq(pyx_dom_compute(&g, &d), 0);
	ck_assert_uint_eq(d->nreach, n);
	for (uint32_t v = 1; v < n; v++)
		ck_assert_uint_eq(d->idom[v], v - 1);
	ck_assert_int_eq(pyx_dom_retain(d, size), 0);
	ck_assert_uint_eq(d->retained[0], 8ull * n);
	ck_assert_uint_eq(d->retained[n / 2], 8ull * (n - n / 2));
	ck_assert_uint_eq(d->retained_count[n - 1], 1);
	ck_assert_int_eq(pyx_dom_children(d, &koff, &kids), 0);
	ck_assert_uint_eq(koff[n + 1] - koff[n], 1);  /* the virtual root's */
	ck_assert_uint_eq(kids[koff[n]], 0);
	ck_assert_uint_eq(koff[6] - koff[5], 1);
	ck_assert_uint_eq(kids[koff[5]], 6);
	free(koff);
	free(kids);
	pyx_dom_free(d);
	/* A wide star under a hub that two roots share: the hub dominates
	 * nothing it does not hold alone. */
	free(off);
	free(dst);
	free(size);
}
END_TEST

/* Leaves (no out-edges) kept out of the graph and attached after it by
 * pyx_dom_attach(): the same immediate dominators and retained sizes as
 * with every leaf a node (random graphs, leaves shared, roots, referred to
 * by unreachable nodes only). */
START_TEST(leaves_attached)
{
	unsigned seed = 777;

	for (int round = 0; round < 500; round++) {
		uint32_t n = 1 + (uint32_t)(rand_r(&seed) % 30),
			 m = (uint32_t)(rand_r(&seed) % 30), ne, nle, roots[4],
			 nroots = 1 + (uint32_t)(rand_r(&seed) % 3), nr = 0,
			 owner[32], pair[2 * 200], npair = 0, out[32],
			 nodes_roots[4], extra[32] = { 0 };
		uint32_t e[300][2];
		uint64_t size[64], nsize[32];
		struct tg full, part;
		struct pyx_dom *df, *dp;

		ne = (uint32_t)(rand_r(&seed) % (3 * n));
		for (uint32_t i = 0; i < ne; i++) {
			e[i][0] = (uint32_t)(rand_r(&seed) % n);
			e[i][1] = (uint32_t)(rand_r(&seed) % n);
		}
		/* edges to leaves after: the nodes' rows come first */
		nle = m ? (uint32_t)(rand_r(&seed) % (2 * m + 1)) : 0;
		for (uint32_t i = 0; i < nle; i++) {
			e[ne + i][0] = (uint32_t)(rand_r(&seed) % n);
			e[ne + i][1] = n + (uint32_t)(rand_r(&seed) % m);
		}
		for (uint32_t r = 0; r < nroots; r++)
			roots[r] = (uint32_t)(rand_r(&seed) % (n + m));
		build(&full, n + m, (const uint32_t (*)[2])e, ne + nle);
		build(&part, n, (const uint32_t (*)[2])e, ne);
		for (uint32_t v = 0; v < n + m; v++)
			size[v] = 1 + (uint64_t)(rand_r(&seed) % 1000);
		/* the leaves' referrers in the order the graph meets them */
		for (uint32_t l = 0; l < m; l++)
			owner[l] = PYX_DOM_NONE;
		for (uint32_t v = 0; v < n; v++)
			for (uint64_t k = full.off[v]; k < full.off[v + 1]; k++) {
				uint32_t l = full.dst[k] - n;

				if (full.dst[k] < n)
					continue;
				if (owner[l] == PYX_DOM_NONE) {
					owner[l] = v;
				} else if (owner[l] != v) {
					pair[2 * npair] = l;
					pair[2 * npair++ + 1] = v;
				}
			}
		for (uint32_t r = 0; r < nroots; r++)
			if (roots[r] >= n)
				owner[roots[r] - n] = PYX_DOM_ROOT;
			else
				nodes_roots[nr++] = roots[r];
		df = dom(&full, roots, nroots);
		dp = dom(&part, nodes_roots, nr);
		ck_assert_int_eq(pyx_dom_attach(dp, m, owner, pair, npair, out), 0);
		for (uint32_t v = 0; v < n; v++) {
			ck_assert_uint_eq(dp->idom[v], df->idom[v]);
			nsize[v] = size[v];
		}
		for (uint32_t l = 0; l < m; l++) {
			ck_assert_msg(out[l] == df->idom[n + l], "round %d: leaf"
				      " %u: %u, want %u", round, l, out[l],
				      df->idom[n + l]);
			if (out[l] < n) {
				nsize[out[l]] += size[n + l];
				extra[out[l]]++;
			}
		}
		ck_assert_int_eq(pyx_dom_retain(df, size), 0);
		ck_assert_int_eq(pyx_dom_retain_ex(dp, nsize, extra), 0);
		for (uint32_t v = 0; v < n; v++) {
			if (df->idom[v] == PYX_DOM_NONE)
				continue;
			ck_assert_uint_eq(dp->retained[v], df->retained[v]);
			ck_assert_uint_eq(dp->retained_count[v],
					  df->retained_count[v]);
		}
		pyx_dom_free(df);
		pyx_dom_free(dp);
	}
}
END_TEST

/* roots2 (refs' objects held from outside the heap): each is a root when
 * the roots do not reach it, so the tree is the one of the roots plus
 * those, given as roots, whatever the order and the duplicates. */
START_TEST(secondary_roots)
{
	unsigned seed = 4242;

	for (int round = 0; round < 500; round++) {
		uint32_t n = 2 + (uint32_t)(rand_r(&seed) % 40), ne;
		uint32_t roots[3], nroots = (uint32_t)(rand_r(&seed) % 3);
		uint32_t sec[6], nsec = (uint32_t)(rand_r(&seed) % 6);
		uint32_t all[9], nall = 0, e[120][2];
		struct pyx_dom_graph g;
		struct pyx_dom *d, *want;
		struct tg t;

		ne = (uint32_t)(rand_r(&seed) % (2 * n));
		for (uint32_t i = 0; i < ne; i++) {
			e[i][0] = (uint32_t)(rand_r(&seed) % n);
			e[i][1] = (uint32_t)(rand_r(&seed) % n);
		}
		build(&t, n, (const uint32_t (*)[2])e, ne);
		for (uint32_t r = 0; r < nroots; r++)
			roots[r] = all[nall++] = (uint32_t)(rand_r(&seed) % n);
		for (uint32_t r = 0; r < nsec; r++)
			sec[r] = (uint32_t)(rand_r(&seed) % n);
		/* the explicit set: the secondary roots the roots miss (the
		 * search from the roots only: every node they reach) */
		for (uint32_t r = 0; r < nsec; r++)
			if (!nroots || reach_without(&t, roots, nroots, n,
						     sec[r]) == 0)
				all[nall++] = sec[r];
		g = (struct pyx_dom_graph){ t.n, t.off, t.dst, roots, nroots,
					    sec, nsec };
		ck_assert_int_eq(pyx_dom_compute(&g, &d), 0);
		want = dom(&t, all, nall);
		ck_assert_uint_eq(d->nreach, want->nreach);
		/* the roots the virtual root holds: every entry given */
		ck_assert_uint_eq(d->nroots, nall);
		ck_assert_uint_eq(want->nroots, nall);
		for (uint32_t v = 0; v < n; v++)
			ck_assert_msg(d->idom[v] == want->idom[v],
				      "round %d: idom(%u) = %u, want %u", round,
				      v, d->idom[v], want->idom[v]);
		/* what no root reaches, and its bytes (node v: v + 1) */
		{
			uint64_t size[64], un = 0, unb = 0;

			for (uint32_t v = 0; v < n; v++) {
				size[v] = v + 1;
				if (d->idom[v] == PYX_DOM_NONE) {
					un++;
					unb += v + 1;
				}
			}
			ck_assert_int_eq(pyx_dom_retain(d, size), 0);
			ck_assert_uint_eq(d->unreached, un);
			ck_assert_uint_eq(d->unreached_bytes, unb);
			ck_assert_uint_eq(d->unreached, n - d->nreach);
		}
		pyx_dom_free(d);
		pyx_dom_free(want);
	}
}
END_TEST

START_TEST(empty)
{
	uint64_t off[1] = { 0 };
	struct pyx_dom_graph g = { 0, off, NULL, NULL, 0, NULL, 0 };
	struct pyx_dom *d;

	ck_assert_int_eq(pyx_dom_compute(&g, &d), 0);
	ck_assert_uint_eq(d->nreach, 0);
	ck_assert_int_eq(pyx_dom_retain(d, NULL), 0);
	pyx_dom_free(d);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("dominators");
	TCase *tc = tcase_create("dominators");

	tcase_add_test(tc, diamond);
	tcase_add_test(tc, cycles_and_unreachable);
	tcase_add_test(tc, several_roots);
	tcase_add_test(tc, random_graphs);
	tcase_add_test(tc, deep_chain);
	tcase_add_test(tc, large_random_graph);
	tcase_add_test(tc, leaves_attached);
	tcase_add_test(tc, secondary_roots);
	tcase_add_test(tc, empty);
	tcase_set_timeout(tc, 60);
	suite_add_tcase(s, tc);
	return pyx_unit_run(s);
}
