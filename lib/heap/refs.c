/* pyx_refs_take: retention paths, on a heap copy taken as the census does. */
#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "pyxray/heap.h"
#include "pyxray/refs.h"
#include "pyxray/stacks.h"
#include "abi.h"
#include "ahead.h"
#include "dominators.h"
#include "internal.h"
#include "pages.h"
#include "referents.h"
#include "walk.h"

#define DEFAULT_MAX_DEPTH 64
#define DEFAULT_GROUPS 10
#define DEFAULT_REFERRERS 100
#define MAX_ITEMS (1u << 28)
#define NONE UINT32_MAX
#define ROOT_EDGE (UINT64_C(1) << 63) /* pedge of a root: | root id */
#define MAX_SUGGESTIONS 5
#define MAX_GARBAGE_TYPES 10
#define LEAF (UINT32_C(1) << 31) /* a slot's node: leaf id | LEAF */
#define LEAF_ROOT PYX_REFS_GRAPH_ROOT /* lowner of a leaf that is a root */
/* A node's id kept in its copied ob_refcnt: TAG | check(address) | id
 * (the LEAF bit for a leaf).  No refcount has bit 63 set (3.8-3.13: a
 * Py_ssize_t; 3.14+: the top bit of ob_flags, unused), nor, in a sane
 * heap, the 15 bits below it; only pyxray writes such a word, at the
 * start of the object it names, with 16 bits of that object's address
 * above the id: a word met at another address (a damaged heap's pointer
 * into an object, or a word the target wrote) fails the check, and the
 * check needs no look into the graph's arrays (which the rows' threads
 * grow apart, build_rows()).  PTAG marks a thread's own ids while the
 * rows are built on several threads. */
#define TAG_MASK UINT64_C(0xFFFF000000000000)
#define CHECK_MASK UINT64_C(0x0000FFFF00000000)
#define TAG UINT64_C(0xD1CE000000000000)
#define PTAG UINT64_C(0xD1CF000000000000)
#define RC_IMMORTAL UINT32_MAX /* rc[] of an immortal: never explained */

struct slot {
	pyx_addr_t addr;
	uint32_t node;
	uint32_t local;          /* node is a share's ref (build_rows()) */
};

/* An edge's aux, by kind: a number (an item's index, a local's, an
 * offset) or, for the kinds whose aux is a key's address or a name,
 * the index of that 64-bit value in the graph's table of them (each value
 * once: a heap has few names and keys for many edges). */
struct wslot {
	uint64_t v;
	uint32_t i;
};
#define WCACHE 256

/* The graph: nodes by index; out-edges of node i (tracked objects only)
 * are [off[i], off[i+1]) of dst/kind/aux.  9 bytes an edge; a node: 8
 * (addr) + 4 (type) + 8 (off), and 4 (rc) a tracked one.  An object's node
 * is found with the one read of its header that the walk makes anyway:
 * the node id is written in the copy (TAG above); objects outside the copy
 * (a core file's heap, read in place) are found in a small hash table. */
struct graph {
	struct pyx_mem *mem;
	pyx_addr_t *addr;
	uint32_t *type;          /* type id (pyx_types) */
	uint32_t *rc;            /* tracked nodes: the refcount less the
				    references the graph explains (so far) */
	size_t rccap;
	/* The whole graph: rc is kept in the copy instead, in the
	 * _gc_prev word of each tracked object's GC header (the walk has
	 * read the links; nothing reads them after), as an int64_t; what
	 * is left of it once every row is read, a bit a tracked node. */
	bool stash;
	uint64_t *outside;
	uint32_t *size;          /* sized: by node, sys.getsizeof, taken at
				    the node's first read (its header hot);
				    UINT32_MAX: in big[] */
	bool sized;
	uint64_t bytes;          /* sized: the sum of size, node by node */
	size_t n, cap, ntracked; /* tracked nodes first */
	size_t nrows, offcap;    /* nodes whose out-edges are known */
	struct slot *hash;       /* objects outside the copy: open
				    addressing; addr 0 is empty */
	size_t hcap, hn;
	uint64_t *off;
	uint32_t *dst;
	uint8_t *kind;
	uint32_t *aux;           /* wide_kind(): an index in wide[] */
	size_t ne, ecap;
	uint64_t *wide;          /* the values; wide[0] = 0 */
	uint8_t *wkey;           /* by value: a dict key (its label read
				    from the copy) */
	size_t nwide, wcap;
	struct wslot *whash;     /* value -> index, open addressing (v 0:
				    empty) */
	size_t whcap;
	struct wslot wcache[WCACHE]; /* the last values met, by hash */
	/* Leaves (the whole graph without leaf nodes): objects with no
	 * referents, kept apart with their first referrer; the other
	 * referrers as (leaf, node) pairs (pyx_refs_graph's leaf_*). */
	uint32_t *ltype, *lowner;
	uint32_t *lsize;         /* UINT32_MAX: in big[] */
	size_t nleaf, lcap;
	uint32_t *lpair;         /* 2 a pair: leaf, referrer */
	size_t npair, pcap;
	uint64_t leaf_edges, leaf_roots;
	/* After rows built on several threads (build_rows()): a share's
	 * ids (PTAG) to the graph's, by share. */
	struct pmap *pmap;
	unsigned npmap, lidbits;
	/* Sizes of 4 GiB and more, by id, in the order added (node ids and
	 * leaf ids grow): a size is 4 bytes in the build, where the copy
	 * and the graph together are the peak. */
	struct bigsz *bign, *bigl;
	size_t nbign, nbigl, capn, capl;
	/* While a toucher faults the node arrays in ahead of the GC walk
	 * (walk_lists()): it, and the areas of addr, type, size and rc in
	 * it (-1: none); else NULL.  And the areas the rows will fill,
	 * their goal so many thousandths of the nodes walked. */
	struct pyx_ahead *ahead;
	int ah[4];
	struct ahead_goal {
		int area;
		unsigned permille;
		size_t from;     /* no goal before so many nodes */
	} ahg[PYX_AHEAD_MAX];
	unsigned nahg;
};

struct bigsz {
	uint32_t id;
	uint64_t size;
};

struct pmap {
	uint32_t *node, *leaf;
	size_t nnode, nleaf;
};

struct root {
	char *desc;
};

struct refs {
	struct pyx_python *py;
	struct pyx_types *types;
	const struct pyx_refs_opts *o;
	struct graph g;
	uint32_t *parent;
	uint64_t *pedge;
	uint16_t *depth;
	struct root *roots;
	size_t nroots;
	uint64_t inferred;
	uint64_t max_edges;      /* a bound on the graph (from the copy) */
	uint64_t bad_objects, damaged_lists;
	uint32_t cur;            /* the node whose edges are being added */
	pthread_mutex_t hlock;   /* build_rows(): the hash table */
	uint32_t *fix;           /* stash mode: tracked nodes whose count the
				    untracked rows changed (outside_fix()) */
	size_t nfix, fixcap;
	int stop;                /* build_rows(): a share failed */
	bool untracked_targets;  /* the type may have untracked objects */
	bool all;                /* every referent is a node (the whole
				    graph: pyx_refs_graph_take) */
	uint64_t leaf_max;       /* with all: leaves smaller than this are
				    no nodes (0: every object a node) */
	double leaf_share;       /* pyx_refs_graph_opts' */
	/* The toucher of the walk (walk_lists()), and the shares it made
	 * ready for the rows (npre of them; NULL: none) */
	struct pyx_ahead ahead;
	struct part *pre;
	unsigned npre;
	struct pyx_dom *dom;     /* refs --retained: the dominator tree,
				    retained sizes with the leaves */
	/* The whole graph with release_copy: what the labels and the
	 * descriptions read from the copy is taken (memo) once the roots are
	 * found, then the copy is released before the search's arrays and
	 * everything after (dropped: label() and describe() answer from the
	 * memo and never read the target's memory again). */
	bool no_depth;           /* the whole graph: no depth[] */
	bool release;
	bool dropped;
	struct pyx_pages *pages; /* the copy's pages once dropped (NULL:
				    malloc): what is allocated after */
	struct memo_ent *memo;
	size_t memo_cap, memo_n;
	uint32_t *sroot;         /* the roots (node, root id) found before
				    the queue exists (release_copy) */
	uint64_t *seeded;        /* those nodes, a bit each, until parent
				    exists */
	size_t sroot_cap;
	struct pyx_type_cache tcache; /* the walk's and the untracked
				    rows' (one thread at a time) */
	bool defer;              /* pyx_refs_graph_opts.defer_search: the
				    search stops once the roots are seeded
				    (nsroot of them) */
	size_t nsroot;
};

struct memo_ent {
	uint64_t key;            /* MEMO_*(); 0: empty */
	char *text;
};

/* -v: how long each step took (t: when the last one ended). */
#define phase(what, t) pyx_debug_phase("graph", what, t)

static inline size_t hash_addr(pyx_addr_t a)
{
	return (size_t)(((a >> 4) * UINT64_C(0x9E3779B97F4A7C15)) >> 17);
}

static int hash_grow(struct graph *g)
{
	size_t cap = g->hcap ? g->hcap * 2 : 1024;
	struct slot *h = calloc(cap, sizeof(*h));

	if (!h)
		return -PYX_E_NOMEM;
	for (size_t j = 0; j < g->hcap; j++) {
		size_t k;

		if (!g->hash[j].addr)
			continue;
		k = hash_addr(g->hash[j].addr) & (cap - 1);
		while (h[k].addr)
			k = (k + 1) & (cap - 1);
		h[k] = g->hash[j];
	}
	free(g->hash);
	g->hash = h;
	g->hcap = cap;
	return 0;
}

static int hash_put(struct graph *g, pyx_addr_t a, uint32_t node)
{
	size_t k;
	int err;

	if ((g->hn + 1) * 4 > g->hcap * 3 && (err = hash_grow(g)))
		return err;
	for (k = hash_addr(a) & (g->hcap - 1); g->hash[k].addr;
	     k = (k + 1) & (g->hcap - 1))
		;
	g->hash[k].addr = a;
	g->hash[k].node = node;
	g->hn++;
	return 0;
}

/* The copy of an object's header (ob_refcnt, ob_type), writable, or NULL:
 * outside the copy, or not aligned (no object). */
static inline uint64_t *head_words(const struct graph *g, pyx_addr_t a)
{
	return (a & 7) ? NULL : pyx_heap_wwords(g->mem, a, 16);
}

/* The node or the leaf (id | LEAF) at a, or NONE; w: a's header in the
 * copy (head_words(); NULL: outside it, then the hash table). */
static inline uint64_t addr_check(pyx_addr_t a)
{
	return ((a >> 3) * UINT64_C(0x9E3779B97F4A7C15)) >> 48 << 32;
}

/* Whether word v is the tag (TAG or PTAG) of the object at a. */
static inline bool tag_is(uint64_t v, uint64_t tag, pyx_addr_t a)
{
	return (v & (TAG_MASK | CHECK_MASK)) == (tag | addr_check(a));
}

static inline uint32_t ptag_find(const struct graph *g, uint32_t ref);

static inline uint32_t slot_find_h(const struct graph *g, pyx_addr_t a,
				   uint64_t *w)
{
	if (w) {
		uint64_t v = w[0];
		uint32_t id = (uint32_t)v;

		if (tag_is(v, PTAG, a))
			return ptag_find(g, id);
		if (!tag_is(v, TAG, a))
			goto hash; /* not tagged, or hashed (create()) */
		if (id & LEAF)
			return (id & ~LEAF) < g->nleaf ? id : NONE;
		return id < g->n ? id : NONE;
	}
hash:
	if (!g->hn || !a)
		return NONE;
	for (size_t k = hash_addr(a) & (g->hcap - 1); g->hash[k].addr;
	     k = (k + 1) & (g->hcap - 1))
		if (g->hash[k].addr == a)
			return g->hash[k].node;
	return NONE;
}

/* The same, *pw set to a's header in the copy. */
static inline uint32_t slot_find_w(const struct graph *g, pyx_addr_t a,
				   uint64_t **pw)
{
	*pw = head_words(g, a);
	return slot_find_h(g, a, *pw);
}

static inline uint32_t slot_find(const struct graph *g, pyx_addr_t a)
{
	uint64_t *w;

	return slot_find_w(g, a, &w);
}

static inline uint32_t node_find(const struct graph *g, pyx_addr_t a)
{
	uint32_t v = slot_find(g, a);

	return v != NONE && (v & LEAF) ? NONE : v;
}

/* Make a (header w in the copy, or NULL) findable as id. */
static inline int slot_set(struct graph *g, pyx_addr_t a, uint64_t *w,
			   uint32_t id)
{
	if (w) {
		w[0] = TAG | addr_check(a) | id;
		return 0;
	}
	return hash_put(g, a, id);
}

/* Add node a (of type id type, header w: see slot_set; size when
 * g->sized). */
/* size in 4 bytes: itself, or UINT32_MAX and (id, size) in *big. */
static int size_put(struct bigsz **big, size_t *nbig, size_t *cap, uint32_t id,
		    uint64_t size, uint32_t *out)
{
	if (size < UINT32_MAX) {
		*out = (uint32_t)size;
		return 0;
	}
	if (*nbig == *cap) {
		size_t c = *cap ? 2 * *cap : 64;
		struct bigsz *b = realloc(*big, c * sizeof(*b));

		if (!b)
			return -PYX_E_NOMEM;
		*big = b;
		*cap = c;
	}
	(*big)[*nbig].id = id;
	(*big)[(*nbig)++].size = size;
	*out = UINT32_MAX;
	return 0;
}

static uint64_t size_get(const struct bigsz *big, size_t nbig, uint32_t id,
			 uint32_t v)
{
	size_t lo = 0, hi = nbig;

	if (v != UINT32_MAX)
		return v;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (big[mid].id == id)
			return big[mid].size;
		if (big[mid].id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return v;
}

static inline uint64_t node_size(const struct graph *g, uint32_t v)
{
	return size_get(g->bign, g->nbign, v, g->size[v]);
}

static inline uint64_t leaf_size(const struct graph *g, uint32_t l)
{
	return size_get(g->bigl, g->nbigl, l, g->lsize[l]);
}

/* Nodes pushed between two pyx_ahead_publish(): rare enough that the
 * toucher's reads of the count cost the walk nothing. */
#define AHEAD_EVERY 4096

static void ahead_publish(struct graph *g)
{
	for (unsigned i = 0; i < PYX_ARRAY_SIZE(g->ah); i++)
		pyx_ahead_publish(g->ahead, g->ah[i], g->n);
	for (unsigned i = 0; i < g->nahg; i++)
		pyx_ahead_publish(g->ahead, g->ahg[i].area,
				  g->n < g->ahg[i].from ? 0 :
				  g->n / 1000 * g->ahg[i].permille +
				  g->n % 1000 * g->ahg[i].permille / 1000);
}

/* Area base (cap elements of elem bytes) faulted in for the rows, up to
 * permille thousandths of the nodes walked once there are from; its index
 * (-1: none). */
static int ahead_goal(struct graph *g, void *base, size_t elem, size_t cap,
		      unsigned permille, size_t from)
{
	int i;

	if (g->nahg >= PYX_ARRAY_SIZE(g->ahg) ||
	    (i = pyx_ahead_add_goal(g->ahead, base, elem, cap)) < 0)
		return -1;
	g->ahg[g->nahg].area = i;
	g->ahg[g->nahg].from = from;
	g->ahg[g->nahg++].permille = permille;
	return i;
}

/* Room for want nodes in the node arrays (at least doubled). */
static int node_room(struct graph *g, size_t want)
{
	if (want > g->cap) {
		size_t cap = g->cap ? g->cap * 2 : 1u << 16;
		pyx_addr_t *v;
		uint32_t *t;

		if (cap < want)
			cap = want;
		if (!(v = realloc(g->addr, cap * sizeof(*v))))
			return -PYX_E_NOMEM;
		g->addr = v;
		if (!(t = realloc(g->type, cap * sizeof(*t))))
			return -PYX_E_NOMEM;
		g->type = t;
		if (g->sized) {
			uint32_t *z = realloc(g->size, cap * sizeof(*z));

			if (!z)
				return -PYX_E_NOMEM;
			g->size = z;
		}
		g->cap = cap;
	}
	return 0;
}

/* The node arrays cut to the nodes (walk_lists() gave them room for the
 * most: address space that would stay taken), and the row offsets to the
 * rows.  A cut that fails keeps the array as it is. */
static void node_shrink(struct graph *g)
{
	size_t n = g->n ? g->n : 1, rows = g->nrows + 2;
	void *p;

	if (g->cap > n) {
		if ((p = realloc(g->addr, n * sizeof(*g->addr))))
			g->addr = p;
		if ((p = realloc(g->type, n * sizeof(*g->type))))
			g->type = p;
		if (g->size && (p = realloc(g->size, n * sizeof(*g->size))))
			g->size = p;
		/* the smallest of what they hold now */
		g->cap = n;
	}
	if (g->rc && g->rccap > n &&
	    (p = realloc(g->rc, n * sizeof(*g->rc)))) {
		g->rc = p;
		g->rccap = n;
	}
	if (g->off && g->offcap > rows &&
	    (p = realloc(g->off, rows * sizeof(*g->off)))) {
		g->off = p;
		g->offcap = rows;
	}
}

/* Append a node (its id: g->n before), findable by nothing yet. */
static int node_push(struct graph *g, pyx_addr_t a, uint32_t type,
		     uint64_t size)
{
	int err;

	if (g->n >= LEAF - 1)
		return pyx_err_set(PYX_E_NOMEM, "more than 2G objects");
	if ((err = node_room(g, g->n + 1)))
		return err;
	g->addr[g->n] = a;
	g->type[g->n] = type;
	if (g->sized && (err = size_put(&g->bign, &g->nbign, &g->capn,
					(uint32_t)g->n, size, &g->size[g->n])))
		return err;
	g->bytes += size;
	g->n++;
	if (g->ahead && !(g->n % AHEAD_EVERY))
		ahead_publish(g);
	return 0;
}

static int node_add(struct graph *g, pyx_addr_t a, uint64_t *w, uint32_t type,
		    uint64_t size)
{
	int err = node_push(g, a, type, size);

	return err ? err : slot_set(g, a, w, (uint32_t)g->n - 1);
}

static inline bool wide_kind(uint8_t kind)
{
	switch ((enum pyx_ref_kind)kind) {
	case PYX_REF_DICT_VALUE:
	case PYX_REF_ATTR:
	case PYX_REF_FIELD:
	case PYX_REF_DICT:
	case PYX_REF_TYPE:
	case PYX_REF_MEMBER:
		return true;
	default:
		return false;
	}
}

bool pyx_refs_graph_aux_is_table(uint8_t kind)
{
	return wide_kind(kind);
}

/* Edge e's aux as edge_label() made it. */
static inline uint64_t edge_aux(const struct graph *g, uint64_t e)
{
	return wide_kind(g->kind[e]) ? g->wide[g->aux[e]] : g->aux[e];
}

static inline size_t wide_hash(uint64_t v)
{
	return (size_t)((v * UINT64_C(0x9E3779B97F4A7C15)) >> 20);
}

static int wide_grow(struct graph *g)
{
	size_t cap = g->whcap ? 2 * g->whcap : 1024;
	struct wslot *h = calloc(cap, sizeof(*h));

	if (!h)
		return -PYX_E_NOMEM;
	for (size_t j = 0; j < g->whcap; j++) {
		size_t k;

		if (!g->whash[j].v)
			continue;
		for (k = wide_hash(g->whash[j].v) & (cap - 1); h[k].v;
		     k = (k + 1) & (cap - 1))
			;
		h[k] = g->whash[j];
	}
	free(g->whash);
	g->whash = h;
	g->whcap = cap;
	return 0;
}

/* The index of value v in wide[], added if new. */
static int wide_id(struct graph *g, uint64_t v, uint32_t *id)
{
	struct wslot *c = &g->wcache[wide_hash(v) & (WCACHE - 1)];
	size_t k;
	int err;

	if (!g->wide) {
		if (!(g->wide = malloc(1024 * sizeof(*g->wide))) ||
		    !(g->wkey = calloc(1024, 1)))
			return -PYX_E_NOMEM;
		g->wcap = 1024;
		g->wide[g->nwide++] = 0;
	}
	if (!v) {
		*id = 0;
		return 0;
	}
	if (c->v == v) {
		*id = c->i;
		return 0;
	}
	if ((g->nwide + 1) * 2 > g->whcap && (err = wide_grow(g)))
		return err;
	for (k = wide_hash(v) & (g->whcap - 1); g->whash[k].v;
	     k = (k + 1) & (g->whcap - 1))
		if (g->whash[k].v == v) {
			*c = g->whash[k];
			*id = c->i;
			return 0;
		}
	if (g->nwide >= UINT32_MAX)
		return pyx_err_set(PYX_E_NOMEM, "more than 4G distinct names "
				   "and keys");
	if (g->nwide == g->wcap) {
		size_t cap = g->wcap ? 2 * g->wcap : 1024;
		uint64_t *w = realloc(g->wide, cap * sizeof(*w));
		uint8_t *f;

		if (!w)
			return -PYX_E_NOMEM;
		g->wide = w;
		if (!(f = realloc(g->wkey, cap)))
			return -PYX_E_NOMEM;
		memset(f + g->wcap, 0, cap - g->wcap);
		g->wkey = f;
		g->wcap = cap;
	}
	g->wide[g->nwide] = v;
	g->whash[k].v = v;
	g->whash[k].i = (uint32_t)g->nwide++;
	*c = g->whash[k];
	*id = c->i;
	return 0;
}

/* Room for cap edges in the edge arrays (at least as many as now). */
static int edge_room(struct graph *g, size_t cap)
{
	uint32_t *d = realloc(g->dst, cap * sizeof(*d));
	uint8_t *k;
	uint32_t *a;

	if (!d)
		return -PYX_E_NOMEM;
	g->dst = d;
	if (!(k = realloc(g->kind, cap)))
		return -PYX_E_NOMEM;
	g->kind = k;
	if (!(a = realloc(g->aux, cap * sizeof(*a))))
		return -PYX_E_NOMEM;
	g->aux = a;
	g->ecap = cap;
	return 0;
}

static int edge_add(struct graph *g, uint32_t dst, uint8_t kind, uint64_t aux)
{
	uint32_t a32 = 0;
	int err;

	if (wide_kind(kind)) {
		if ((err = wide_id(g, aux, &a32)))
			return err;
		if (kind == PYX_REF_DICT_VALUE || kind == PYX_REF_ATTR)
			g->wkey[a32] = 1;
	} else {
		/* indices and offsets inside one object */
		a32 = aux > UINT32_MAX ? UINT32_MAX : (uint32_t)aux;
	}
	if (g->ne == g->ecap &&
	    (err = edge_room(g, g->ecap ? g->ecap * 2 : 1u << 18)))
		return err;
	g->dst[g->ne] = dst;
	g->kind[g->ne] = kind;
	g->aux[g->ne++] = a32;
	return 0;
}

static void graph_free(struct graph *g)
{
	free(g->addr);
	free(g->type);
	free(g->rc);
	free(g->outside);
	free(g->size);
	free(g->hash);
	free(g->off);
	free(g->dst);
	free(g->kind);
	free(g->aux);
	free(g->wide);
	free(g->wkey);
	free(g->whash);
	free(g->ltype);
	free(g->lowner);
	free(g->lsize);
	free(g->lpair);
	free(g->bign);
	free(g->bigl);
	for (unsigned c = 0; c < g->npmap; c++) {
		free(g->pmap[c].node);
		free(g->pmap[c].leaf);
	}
	free(g->pmap);
}

/* Room for want leaves in the leaf arrays (at least doubled). */
static int leaf_room(struct graph *g, size_t want)
{
	if (want > g->lcap) {
		size_t cap = g->lcap ? g->lcap * 2 : 1u << 16;
		uint32_t *t;

		if (cap < want)
			cap = want;
		if (!(t = realloc(g->ltype, cap * sizeof(*t))))
			return -PYX_E_NOMEM;
		g->ltype = t;
		if (!(t = realloc(g->lowner, cap * sizeof(*t))))
			return -PYX_E_NOMEM;
		g->lowner = t;
		if (!(t = realloc(g->lsize, cap * sizeof(*t))))
			return -PYX_E_NOMEM;
		g->lsize = t;
		g->lcap = cap;
	}
	return 0;
}

/* Append a leaf (its id: g->nleaf before) with its first referrer. */
static int leaf_push(struct graph *g, uint32_t type, uint64_t size,
		     uint32_t owner)
{
	int err;

	if (g->nleaf >= LEAF - 1)
		return pyx_err_set(PYX_E_NOMEM, "more than 2G leaf objects");
	if ((err = leaf_room(g, g->nleaf + 1)))
		return err;
	g->ltype[g->nleaf] = type;
	g->lowner[g->nleaf] = owner;
	if ((err = size_put(&g->bigl, &g->nbigl, &g->capl, (uint32_t)g->nleaf,
			    size, &g->lsize[g->nleaf])))
		return err;
	g->nleaf++;
	return 0;
}

static int leaf_add(struct graph *g, pyx_addr_t a, uint64_t *w, uint32_t type,
		    uint64_t size, uint32_t owner)
{
	int err = leaf_push(g, type, size, owner);

	return err ? err : slot_set(g, a, w, (uint32_t)(g->nleaf - 1) | LEAF);
}

/* v, with room for one more element of size bytes (n used of *cap): v
 * itself, or v grown to twice its capacity (first at least), *cap
 * updated; NULL if out of memory (v is still the caller's). */
static void *room(void *v, size_t n, size_t *cap, size_t size, size_t first)
{
	size_t c;

	if (n < *cap)
		return v;
	c = *cap ? 2 * *cap : first;
	if (!(v = realloc(v, c * size)))
		return NULL;
	*cap = c;
	return v;
}

/* Node src refers to leaf l (besides its first referrer). */
static int pair_add(struct graph *g, uint32_t l, uint32_t src)
{
	uint32_t *p = room(g->lpair, g->npair, &g->pcap, 2 * sizeof(*p),
			   1u << 16);

	if (!p)
		return -PYX_E_NOMEM;
	g->lpair = p;
	g->lpair[2 * g->npair] = l;
	g->lpair[2 * g->npair++ + 1] = src;
	return 0;
}

/* Another referrer of leaf l (its first is lowner[l]). */
static int leaf_ref(struct graph *g, uint32_t l, uint32_t src)
{
	g->leaf_edges++;
	if (g->lowner[l] == src)
		return 0;
	return pair_add(g, l, src);
}

/* No referents whatever its contents (referents.c's default case with
 * no slots, no __class__ edge, no __dict__). */
static bool leaf_kind(const struct pyx_typeinfo *ti)
{
	switch (ti->kind) {
	case PYX_K_STR:
	case PYX_K_BYTES:
	case PYX_K_BYTEARRAY:
	case PYX_K_INT:
	case PYX_K_FLOAT:
		return !ti->nslots && !ti->has_dict &&
		       !(ti->flags & PYX_TPFLAGS_HEAPTYPE);
	default:
		return false;
	}
}

/* ---- the copy: the census's (pyx_heap_capture) ----------------------- */

static int copy_heap(struct pyx_python *py, const struct pyx_refs_opts *o,
		     struct pyx_refs *r)
{
	struct pyx_heap_capture_info ci;
	int err = pyx_heap_capture(py, &o->capture, &ci);

	if (err)
		return err;
	r->copied_bytes = ci.copied_bytes;
	r->heap_bytes = ci.heap_bytes;
	r->copy_reads = ci.copy_reads;
	r->truncated = ci.truncated;
	return 0;
}

/* ---- building the graph ----------------------------------------------- */

/* Whether ti is the target's type (refs --type): asked once a type, on
 * any thread (the answer kept in the type's entry). */
static int type_matches(struct refs *s, const struct pyx_typeinfo *ti)
{
	int8_t m = __atomic_load_n(&ti->match, __ATOMIC_RELAXED);

	if (m < 0) {
		m = s->o->type_name && strcmp(ti->name, s->o->type_name) == 0;
		__atomic_store_n(&((struct pyx_typeinfo *)ti)->match, m,
				 __ATOMIC_RELAXED);
	}
	return m;
}

static int obj_type(struct refs *s, pyx_addr_t obj,
		    const struct pyx_typeinfo **ti)
{
	uint64_t tp;
	int err;

	if ((err = pyx_heap_obj_type(s->py, obj, &tp)))
		return err;
	return pyx_types_get(s->types, tp, ti);
}

/* sys.getsizeof of the object at a, of type ti (its basic size when it
 * cannot be read). */
static uint64_t addr_size(struct refs *s, pyx_addr_t a,
			  const struct pyx_typeinfo *ti)
{
	uint64_t size;

	if (pyx_obj_sizeof(s->py, pyx_types_rules(s->types), a, ti, &size)) {
		pyx_err_clear();
		size = ti->basicsize + ti->preheader;
	}
	return size;
}

/* A header's words as the ABI reads them (3.14+: the u32 of the split
 * refcount, flags above it), never the raw word; false if they do not
 * decode. */
static bool header_of(struct refs *s, const uint64_t *w,
		      struct pyx_obj_header *h)
{
	uint64_t v[2] = { w[0], w[1] };

	if (s->py->abi->ops->header_decode(s->py, v, 2, h)) {
		pyx_err_clear();
		return false;
	}
	return true;
}

/* The refcount of a tracked object, read before its copied ob_refcnt
 * holds the node's id; RC_IMMORTAL for an immortal; 0 when it cannot be
 * read (then never held from outside). */
static uint32_t tracked_rc(struct refs *s, pyx_addr_t obj, const uint64_t *w)
{
	struct pyx_obj_header h;

	if (!w && !(w = pyx_heap_words(s->py->mem, obj, 16)))
		return 0;
	if (!header_of(s, w, &h))
		return 0;
	if (h.immortal)
		return RC_IMMORTAL;
	return h.refcnt >= RC_IMMORTAL ? RC_IMMORTAL - 1 : (uint32_t)h.refcnt;
}

/* Whether a header's first word decodes as a live object's refcount. */
static bool live_refcount(struct refs *s, const uint64_t *w)
{
	struct pyx_obj_header h;

	return header_of(s, w, &h) && (h.immortal || h.refcnt > 0);
}

#define STASH_IMMORTAL (INT64_MAX / 2) /* never explained away */

static inline int64_t stash_of(uint32_t rc)
{
	return rc == RC_IMMORTAL ? STASH_IMMORTAL : (int64_t)rc;
}

/* The stash of the object whose header in the copy is w (stash mode:
 * every tracked object's [obj - 8, obj + 16) is in one run of the copy). */
static inline int64_t *stash_at(uint64_t *w)
{
	return (int64_t *)(w - 1);
}

/* Leave stash mode (a tracked object whose GC header is not in the copy
 * next to it): the refcounts so far back into rc[]. */
static int unstash(struct refs *s)
{
	struct graph *g = &s->g;

	g->stash = false;
	g->rc = malloc((g->cap ? g->cap : 1) * sizeof(*g->rc));
	if (!g->rc)
		return -PYX_E_NOMEM;
	g->rccap = g->cap;
	for (size_t i = 0; i < g->n; i++) {
		uint64_t *w = pyx_heap_wwords(g->mem, g->addr[i] - 8, 24);
		int64_t v = w ? *(int64_t *)w : 0;

		g->rc[i] = v >= STASH_IMMORTAL ? RC_IMMORTAL : (uint32_t)v;
	}
	return 0;
}

static int on_tracked(void *ctx, pyx_addr_t obj, const struct pyx_heap_where *w)
{
	struct refs *s = ctx;
	struct graph *g = &s->g;
	const struct pyx_typeinfo *ti;
	uint64_t *h;
	uint32_t rc;
	int err;

	(void)w;
	if (g->stash) {
		/* obj's GC header precedes it: its _gc_prev, read by the walk
		 * already, keeps the refcount from here on */
		uint64_t *p = (obj & 7) ? NULL :
			      pyx_heap_wwords(g->mem, obj - 8, 24);

		if (!p && (err = unstash(s)))
			return err;
	}
	if (slot_find_w(g, obj, &h) != NONE) {
		/* a GC list that comes back to an object: damaged */
		pyx_debug("object " PYX_PRIaddr ": met twice on the GC lists",
			  obj);
		return 0;
	}
	if ((err = h ? pyx_types_get_cached(s->types, &s->tcache, h[1], &ti)
		     : obj_type(s, obj, &ti))) {
		if (err == -PYX_E_NOMEM || err == -PYX_E_EXITED)
			return err;
		/* not an object: no node */
		pyx_debug("object " PYX_PRIaddr ": %s", obj, pyx_err_detail());
		pyx_err_clear();
		s->bad_objects++;
		return 0;
	}
	rc = tracked_rc(s, obj, h);
	if ((err = node_add(g, obj, h, ti->id,
			    g->sized ? addr_size(s, obj, ti) : 0)))
		return err;
	if (g->stash) {
		*stash_at(h) = stash_of(rc);
		return 0;
	}
	if (g->n > g->rccap) {
		uint32_t *r = realloc(g->rc, g->cap * sizeof(*r));

		if (!r)
			return -PYX_E_NOMEM;
		g->rc = r;
		g->rccap = g->cap;
	}
	g->rc[g->n - 1] = rc;
	return 0;
}

/* The kind and aux an edge is stored with (label() reads them back). */
static void edge_label(const struct pyx_ref *ref, uint8_t *kind, uint64_t *aux)
{
	*kind = (uint8_t)ref->kind;
	*aux = ref->index;
	switch (ref->kind) {
	case PYX_REF_DICT_VALUE:
	case PYX_REF_ATTR:
		*aux = ref->key; /* the key's address */
		break;
	case PYX_REF_FIELD:
	case PYX_REF_DICT:
	case PYX_REF_TYPE:
		*aux = (uint64_t)(uintptr_t)ref->name;
		break;
	case PYX_REF_SLOT:
		/* by name: the type table (and its names) outlive the graph */
		if (ref->name) {
			*kind = PYX_REF_MEMBER;
			*aux = (uint64_t)(uintptr_t)ref->name;
		}
		break;
	default:
		break;
	}
}

/* The untracked object at a (header h, type ti, size when g->sized), met
 * for the first time: a node (0, *d), or a leaf (its reference counted) or
 * neither (1), or an error.  An untracked object is a node if it is a
 * target, or an untracked dict or tuple that may hold one (3.8-3.10
 * instance dicts of atoms are not tracked); in the whole graph, always. */
static int create(struct refs *s, pyx_addr_t a, uint64_t *h,
		  const struct pyx_typeinfo *ti, uint64_t size, uint32_t *d)
{
	struct graph *g = &s->g;
	int err;

	/* An untracked object is met through a pointer, which a damaged
	 * heap can aim into the middle of another object: its id then goes
	 * in the hash, not over a word of that other object's copy (which
	 * would make it read as damaged), unless the word is a live
	 * refcount (every object has one). */
	if (h && !live_refcount(s, h))
		h = NULL;
	if (!s->all && a != s->o->addr && (err = type_matches(s, ti)) <= 0) {
		if (err < 0)
			return err;
		if (ti->kind != PYX_K_DICT && ti->kind != PYX_K_TUPLE)
			return 1;
	}
	/* a target stays a node (refs --retained), and so does one that may
	 * be a suspect */
	if (s->leaf_max && leaf_kind(ti) && (s->o->type_name ||
	    a != s->o->addr) && (!s->o->type_name || !type_matches(s, ti)) &&
	    size < s->leaf_max) {
		g->leaf_edges++;
		return (err = leaf_add(g, a, h, ti->id, size, s->cur)) ? err : 1;
	}
	if ((err = node_add(g, a, h, ti->id, size)))
		return err;
	*d = (uint32_t)g->n - 1;
	return 0;
}

/* An edge of s->cur to node or leaf d. */
static int edge_to(struct refs *s, uint32_t d, uint8_t kind, uint64_t aux)
{
	if (d & LEAF) {
		if (kind == PYX_REF_INFERRED)
			s->inferred++;
		return leaf_ref(&s->g, d & ~LEAF, s->cur);
	}
	if (d == s->cur && kind == PYX_REF_INFERRED)
		return 0;
	if (kind == PYX_REF_INFERRED)
		s->inferred++;
	return edge_add(&s->g, d, kind, aux);
}

static int on_ref(void *ctx, const struct pyx_ref *ref)
{
	struct refs *s = ctx;
	struct graph *g = &s->g;
	uint64_t *h, size = 0, aux;
	uint32_t d = slot_find_w(g, ref->target, &h);
	uint8_t kind;
	int err;

	if (d == NONE) {
		const struct pyx_typeinfo *ti;

		if (ref->kind == PYX_REF_INFERRED || !s->untracked_targets)
			return 0;
		if (h ? pyx_types_get_cached(s->types, &s->tcache, h[1], &ti)
		      : obj_type(s, ref->target, &ti)) {
			pyx_err_clear();
			return 0;
		}
		if (g->sized)
			size = addr_size(s, ref->target, ti);
		if ((err = create(s, ref->target, h, ti, size, &d)))
			return err < 0 ? err : 0;
	}
	edge_label(ref, &kind, &aux);
	if (g->stash && h && d < g->ntracked && kind != PYX_REF_INFERRED) {
		uint32_t *f = room(s->fix, s->nfix, &s->fixcap, sizeof(*f), 1024);

		(*stash_at(h))--;
		if (!f)
			return -PYX_E_NOMEM;
		s->fix = f;
		s->fix[s->nfix++] = d;
	}
	return edge_to(s, d, kind, aux);
}

/* A sane heap has fewer references than words; past that, the objects
 * left are damaged (referents not read), not memory exhausted. */
static int on_ref_bounded(void *ctx, const struct pyx_ref *ref)
{
	struct refs *s = ctx;

	if (s->g.ne >= s->max_edges)
		return pyx_err_set(PYX_E_BAD_MEMORY, "more than %" PRIu64
				   " references: the graph is full",
				   s->max_edges);
	return on_ref(ctx, ref);
}

static uint64_t obj_size(struct refs *s, uint32_t v);

static int off_room(struct graph *g, size_t i)
{
	if (i + 2 > g->offcap) {
		size_t cap = g->n + 2 > 2 * g->offcap ? g->n + 2 : 2 * g->offcap;
		uint64_t *o = realloc(g->off, cap * sizeof(*o));

		if (!o)
			return -PYX_E_NOMEM;
		g->off = o;
		g->offcap = cap;
	}
	return 0;
}

/* Stash mode: which tracked nodes the heap does not explain (refcount
 * above the references from the graph, or immortal), a bit each, read
 * before the copy goes; on jobs threads, each its 64-node words. */
struct outside_share {
	struct graph *g;
	size_t lo, hi;
};

static void outside_run(void *arg)
{
	struct outside_share *o = arg;
	struct graph *g = o->g;

	/* one cache miss a node, with many in flight: each header is
	 * asked for AHEAD nodes before it is read */
	enum { AHEAD = 16 };
	uint64_t *ring[AHEAD] = { NULL };

	for (size_t i = o->lo; i < o->hi + AHEAD; i++) {
		uint64_t *w = ring[i % AHEAD];

		if (i >= o->lo + AHEAD && w && *(int64_t *)w > 0)
			g->outside[(i - AHEAD) / 64] |=
				UINT64_C(1) << ((i - AHEAD) % 64);
		ring[i % AHEAD] = NULL;
		if (i < o->hi &&
		    (ring[i % AHEAD] = pyx_heap_wwords(g->mem, g->addr[i] - 8,
						       24)))
			__builtin_prefetch(ring[i % AHEAD]);
	}
}

/* The bits of the tracked nodes whose refcount the rows decremented after
 * outside_run() read it (the untracked rows: s->fix), read again. */
static void outside_fix(struct refs *s)
{
	struct graph *g = &s->g;

	for (size_t k = 0; k < s->nfix; k++) {
		uint32_t i = s->fix[k];
		uint64_t *w = pyx_heap_wwords(g->mem, g->addr[i] - 8, 24);

		if (w && *(int64_t *)w > 0)
			g->outside[i / 64] |= UINT64_C(1) << (i % 64);
		else
			g->outside[i / 64] &= ~(UINT64_C(1) << (i % 64));
	}
}

static inline bool held_outside(const struct graph *g, size_t i)
{
	return g->stash ? (g->outside[i / 64] >> (i % 64)) & 1 : g->rc[i] != 0;
}

/* ---- the rows on several threads ---------------------------------------- */

/* The rows of the tracked nodes (most of the work: each object's
 * referents read, each referent's header looked at) are cut into shares
 * of consecutive rows, one a thread.  A share gives the objects it meets
 * first ids of its own (a ref: share << lidbits | local id, LEAF for a
 * leaf) and claims them with a compare-and-swap of the header in the copy
 * (PTAG); an object that several shares meet belongs to the lowest, which
 * takes it from a higher one (a steal, recorded).  The merge then numbers
 * every share's objects in share order: the ids, the edges and their
 * labels' table come out as one thread would have made them. */

#define STOLEN LEAF              /* a map entry: taken, by the ref below */
#define LOCAL LEAF               /* a share's edge: to a share's node */

#define PRE_AREAS 7

struct part {
	struct refs *s;
	struct graph g;          /* its edges (and their wide table), its
				    nodes and leaves by local id, and its
				    references to leaves (lpair: ref, node) */
	unsigned c;
	size_t lo, hi;           /* its rows */
	/* A thread's own share (even c, jobs > 1): the rows it has not
	 * taken yet, next << 32 | end (a thread done with its own may lower
	 * end: rows_steal()); a steal share (odd c): taken by a thread */
	uint64_t range;
	int taken;
	uint32_t cur;
	uint32_t *steal;         /* 2 a steal: the ref taken, the new ref */
	size_t nsteal, scap;
	uint64_t *hit;           /* part_find(): the tracked node's header */
	uint64_t *pend;          /* 2 a PEND edge: the word, its aux */
	size_t npend, pendcap;
	uint64_t inferred, bad_objects;
	uint64_t named;          /* references that name an object */
	struct pyx_type_cache tcache; /* its thread's */
	bool full;               /* more than s->max_edges of them */
	bool pre;                /* made ready by walk_lists(): its areas */
	int ah[PRE_AREAS];       /* in s->ahead: dst, kind, aux, ltype,
				    lowner, lsize, lpair (-1: none) */
	struct pyx_share_err e;
};

static inline uint32_t pref(const struct refs *s, unsigned c, uint32_t lid)
{
	return (uint32_t)c << s->g.lidbits | lid;
}

static inline unsigned pref_share(const struct graph *g, uint32_t ref)
{
	return (ref & ~LEAF) >> g->lidbits;
}

static inline uint32_t pref_lid(const struct graph *g, uint32_t ref)
{
	return ref & ((UINT32_C(1) << g->lidbits) - 1);
}

/* The final id of share c's local lid (leaf: of its leaves), from the
 * maps: NONE if out of range or not resolved (a damaged steal).  Share
 * 0's leaves keep their ids (no map). */
static uint32_t map_get(const struct graph *g, unsigned c, uint32_t lid,
			bool leaf)
{
	const struct pmap *m;
	uint32_t v;

	/* c comes from a word of the copy: a damaged heap's (refs, where
	 * no share exists and pmap is NULL, reads them too) */
	if (c >= g->npmap)
		return NONE;
	m = &g->pmap[c];
	if (lid >= (leaf ? m->nleaf : m->nnode))
		return NONE;
	if (leaf && !m->leaf)
		return lid;
	v = leaf ? m->leaf[lid] : m->node[lid];
	return v & STOLEN ? NONE : v;
}

/* A share's ref as the graph's id (LEAF for a leaf), or NONE. */
static inline uint32_t ptag_find(const struct graph *g, uint32_t ref)
{
	uint32_t v = map_get(g, pref_share(g, ref), pref_lid(g, ref),
			     ref & LEAF);

	return v == NONE ? NONE : v | (ref & LEAF);
}

/* Room for one more local node or leaf in share p (its arrays grow as
 * the graph's do); the entry is written, then published by the tag, then
 * counted (part_commit): a failed claim leaves nothing. */
static int part_room(struct part *p, bool leaf)
{
	struct graph *g = &p->g;
	size_t n = leaf ? g->nleaf : g->n;

	if (n + 1 >= (UINT32_C(1) << p->s->g.lidbits) - 1)
		return pyx_err_set(PYX_E_NOMEM, "more than %u new objects in "
				   "one thread's share of the heap",
				   (UINT32_C(1) << p->s->g.lidbits) - 2);
	return leaf ? leaf_room(g, g->nleaf + 1) : node_room(g, g->n + 1);
}

/* Write entry n (not counted yet) of share p: its ref, *ref. */
static void part_write(struct part *p, bool leaf, pyx_addr_t a, uint32_t type,
		       uint64_t size, uint32_t *ref)
{
	struct graph *g = &p->g;
	uint32_t z = size < UINT32_MAX ? (uint32_t)size : UINT32_MAX;

	if (leaf) {
		g->ltype[g->nleaf] = type;
		g->lsize[g->nleaf] = z;
		g->lowner[g->nleaf] = p->cur;
		*ref = pref(p->s, p->c, (uint32_t)g->nleaf) | LEAF;
	} else {
		g->addr[g->n] = a;
		g->type[g->n] = type;
		if (g->sized)
			g->size[g->n] = z;
		*ref = pref(p->s, p->c, (uint32_t)g->n);
	}
}

/* Count the entry written: sizes of 4 GiB and more go to big[] by local
 * id, as size_put() keeps them. */
static int part_commit(struct part *p, bool leaf, uint64_t size)
{
	struct graph *g = &p->g;
	uint32_t z;
	int err;

	if (leaf) {
		err = size_put(&g->bigl, &g->nbigl, &g->capl,
			       (uint32_t)g->nleaf, size, &z);
		g->nleaf += !err;
	} else {
		err = size_put(&g->bign, &g->nbign, &g->capn, (uint32_t)g->n,
			       size, &z);
		g->n += !err;
	}
	return err;
}

static int part_steal(struct part *p, uint32_t from, uint32_t to)
{
	uint32_t *v = room(p->steal, p->nsteal, &p->scap, 2 * sizeof(*v), 1024);

	if (!v)
		return -PYX_E_NOMEM;
	p->steal = v;
	p->steal[2 * p->nsteal] = from;
	p->steal[2 * p->nsteal++ + 1] = to;
	return 0;
}

/* What the untracked object at a (header words w, NULL: read in place)
 * becomes in the whole graph: a leaf (1), a node (0), or nothing (an
 * error: no object).  create()'s rule for pyx_refs_graph_take. */
#define PART_NONE 2 /* part_kind(): no node nor leaf (refs' targets) */

static int part_kind(struct refs *s, struct pyx_type_cache *tc, pyx_addr_t a,
		     const uint64_t *w, uint32_t *type, uint64_t *size)
{
	const struct pyx_typeinfo *ti;
	int err;

	if ((err = w ? pyx_types_get_cached(s->types, tc, w[1], &ti)
		     : obj_type(s, a, &ti)))
		return err;
	*type = ti->id;
	*size = s->g.sized ? addr_size(s, a, ti) : 0;
	/* refs --type or --addr: an untracked object is a node if it is a
	 * target, or a dict or tuple that may hold one */
	if (!s->all && a != s->o->addr && !type_matches(s, ti) &&
	    ti->kind != PYX_K_DICT && ti->kind != PYX_K_TUPLE)
		return PART_NONE;
	/* a target stays a node (refs --retained) */
	return s->leaf_max && leaf_kind(ti) && *size < s->leaf_max &&
	       (s->o->type_name || a != s->o->addr) &&
	       (!s->o->type_name || !type_matches(s, ti));
}

#define PEND (NONE - 1)      /* an inferred word at an object nobody met
				    yet: the merge decides */
#define KIND_PEND 0xFF       /* its edge's kind until then; aux: an
				    index in the share's pend[] */

/* The object at a, outside the copy or with no refcount to carry a tag:
 * in the graph's hash table, under its lock (rare).  As part_find(). */
static int part_hashed(struct part *p, pyx_addr_t a, bool inferred,
		       uint32_t *d, bool *fin)
{
	struct refs *s = p->s;
	struct graph *g = &s->g;
	struct slot *e = NULL;
	uint32_t type, r;
	uint64_t size;
	int err = 0, leaf;

	pthread_mutex_lock(&s->hlock);
	if (g->hn)
		for (size_t k = hash_addr(a) & (g->hcap - 1); g->hash[k].addr;
		     k = (k + 1) & (g->hcap - 1))
			if (g->hash[k].addr == a) {
				e = &g->hash[k];
				break;
			}
	if (e && !e->local) {
		/* a tracked node, the walk's */
		*fin = true;
		*d = !(e->node & LEAF) && e->node < g->ntracked ? e->node : NONE;
		goto out;
	}
	if (e && (inferred || pref_share(g, e->node) <= p->c)) {
		*d = e->node;
		goto out;
	}
	if (!e && inferred) {
		*d = PEND;
		goto out;
	}
	if (!e && !s->untracked_targets) {
		*d = NONE;
		goto out;
	}
	if ((leaf = part_kind(s, &p->tcache, a, NULL, &type, &size)) < 0 ||
	    leaf == PART_NONE) {
		pyx_err_clear();
		*d = NONE;
		goto out;
	}
	if ((err = part_room(p, leaf)))
		goto out;
	part_write(p, leaf, a, type, size, &r);
	if ((err = part_commit(p, leaf, size)))
		goto out;
	*d = r;
	if (e) {
		err = part_steal(p, e->node, r);
		e->node = r;
	} else if (!(err = hash_put(g, a, r))) {
		for (size_t k = hash_addr(a) & (g->hcap - 1);;
		     k = (k + 1) & (g->hcap - 1))
			if (g->hash[k].addr == a) {
				g->hash[k].local = 1;
				break;
			}
	}
out:
	pthread_mutex_unlock(&s->hlock);
	return err;
}

/* Where a reference of share p's current row goes: *d a node's id in the
 * graph (*fin: a tracked node, numbered by the walk), or a share's ref
 * (a node, or LEAF: a leaf), or NONE (no object), or PEND.  An object
 * met first is claimed for p; one a higher share holds is taken from it
 * (the lower share meets it first in row order).  An inferred word (a
 * guess: any word that hits an object) claims nothing: it is an edge if
 * some reference of the rows makes the object a node or a leaf. */
static int part_find(struct part *p, const struct pyx_ref *ref, uint32_t *d,
		     bool *fin)
{
	struct refs *s = p->s;
	pyx_addr_t a = ref->target;
	bool inferred = ref->kind == PYX_REF_INFERRED;
	uint64_t *w = head_words(&s->g, a);

	*fin = false;
	p->hit = NULL;
	if (!w)
		return part_hashed(p, a, inferred, d, fin);
	for (;;) {
		uint64_t v = __atomic_load_n(&w[0], __ATOMIC_ACQUIRE), hdr[2];
		uint32_t type = 0, r;
		uint64_t size = 0;
		int leaf, err;

		if (tag_is(v, TAG, a)) {
			r = (uint32_t)v;
			*fin = true;
			*d = !(r & LEAF) && r < s->g.ntracked ? r : NONE;
			p->hit = w;
			return 0;
		}
		if (tag_is(v, PTAG, a)) {
			r = (uint32_t)v;
			if (inferred || pref_share(&s->g, r) <= p->c) {
				*d = r;
				return 0;
			}
			leaf = part_kind(s, &p->tcache, a, w, &type, &size);
			if (leaf < 0 || leaf != !!(r & LEAF)) {
				pyx_err_clear();
				*d = r;
				return 0;
			}
		} else {
			if (inferred) {
				*d = PEND;
				return 0;
			}
			if (!s->untracked_targets) {
				*d = NONE;
				return 0;
			}
			hdr[0] = v;
			hdr[1] = w[1];
			if (!live_refcount(s, hdr))
				return part_hashed(p, a, inferred, d, fin);
			if ((leaf = part_kind(s, &p->tcache, a, w, &type, &size)) < 0 ||
			    leaf == PART_NONE) {
				pyx_err_clear();
				*d = NONE;
				return 0;
			}
		}
		if ((err = part_room(p, leaf)))
			return err;
		part_write(p, leaf, a, type, size, &r);
		if (__atomic_compare_exchange_n(&w[0], &v,
						PTAG | addr_check(a) | r, false,
						__ATOMIC_RELEASE,
						__ATOMIC_ACQUIRE)) {
			if ((err = part_commit(p, leaf, size)))
				return err;
			if (tag_is(v, PTAG, a) &&
			    (err = part_steal(p, (uint32_t)v, r)))
				return err;
			*d = r;
			return 0;
		}
		/* another share claimed it meanwhile: look again */
	}
}

static int part_pend(struct part *p, pyx_addr_t a, uint64_t aux)
{
	uint64_t *v = room(p->pend, p->npend, &p->pendcap, 2 * sizeof(*v), 256);

	if (!v)
		return -PYX_E_NOMEM;
	p->pend = v;
	p->pend[2 * p->npend] = a;
	p->pend[2 * p->npend++ + 1] = aux;
	return 0;
}

static int part_ref(void *ctx, const struct pyx_ref *ref)
{
	struct part *p = ctx;
	struct graph *g = &p->g;
	uint64_t aux;
	uint8_t kind;
	uint32_t d;
	bool fin;
	int err;

	if ((err = part_find(p, ref, &d, &fin)) || d == NONE)
		return err;
	/* The bound counts what does not depend on the threads' timing (a
	 * share's edges do: an inferred word is an edge or a leaf's pair as
	 * the object was met or not), and the whole graph fails past it
	 * (build_rows()): a cut at the limit would fall at another row on
	 * another number of threads. */
	if (++p->named > p->s->max_edges) {
		p->full = true;
		return pyx_err_set(PYX_E_BAD_MEMORY, "the graph is full");
	}
	edge_label(ref, &kind, &aux);
	if (d == PEND) {
		if ((err = part_pend(p, ref->target, aux)))
			return err;
		return edge_add(g, 0, KIND_PEND, p->npend - 1);
	}
	if (fin && d == p->cur && kind == PYX_REF_INFERRED)
		return 0;
	/* a reference the heap explains (g->rc, in the copy) */
	if (fin && p->hit && kind != PYX_REF_INFERRED && p->s->g.stash)
		__atomic_fetch_sub(stash_at(p->hit), 1, __ATOMIC_RELAXED);
	if (kind == PYX_REF_INFERRED)
		p->inferred++;
	if (fin)
		return edge_add(g, d, kind, aux);
	if (!(d & LEAF))
		return edge_add(g, LOCAL | d, kind, aux);
	g->leaf_edges++;
	/* its first referrer is its owner, not a pair (leaf_ref()); the
	 * ref may come from a word the target wrote (a PTAG it forged):
	 * checked against the share's leaves before it is read */
	if (pref_share(&p->s->g, d) == p->c &&
	    pref_lid(&p->s->g, d) < g->nleaf &&
	    g->lowner[pref_lid(&p->s->g, d)] == p->cur)
		return 0;
	return pair_add(g, d & ~LEAF, p->cur);
}

/* Rows [from, to) of share p; false when a share failed (s->stop). */
static bool part_rows(struct part *p, size_t from, size_t to)
{
	struct refs *s = p->s;
	struct graph *g = &s->g;

	for (size_t i = from; i < to; i++) {
		const struct pyx_typeinfo *ti = pyx_types_at(s->types, g->type[i]);
		int err;

		if (__atomic_load_n(&s->stop, __ATOMIC_RELAXED))
			return false;
		g->off[i] = p->g.ne;
		p->cur = (uint32_t)i;
		err = pyx_referents_ex(s->types, g->addr[i], ti, MAX_ITEMS,
				       PYX_REFERENTS_FULL, part_ref, p);
		if (err == -PYX_E_NOMEM || err == -PYX_E_EXITED || p->full) {
			if (!p->full)
				pyx_share_err_keep(&p->e, err);
			pyx_err_clear();
			__atomic_store_n(&s->stop, 1, __ATOMIC_RELAXED);
			return false;
		}
		if (err) {
			/* its edges read so far are kept */
			pyx_debug("object " PYX_PRIaddr " (%s): %s", g->addr[i],
				  ti->name, pyx_err_detail());
			pyx_err_clear();
			p->bad_objects++;
		}
	}
	return true;
}

static void part_run(void *arg)
{
	struct part *p = arg;

	part_rows(p, p->lo, p->hi);
}

/* A thread's own share is taken ROWS_BLOCK rows at a time (a
 * compare-and-swap of its range, a line no other thread writes but once),
 * so that a thread done early can cut the rows left in two (rows_steal). */
#define ROWS_BLOCK 256
#define RANGE(next, end) ((uint64_t)(next) << 32 | (uint32_t)(end))
#define RANGE_NEXT(r) ((size_t)((r) >> 32))
#define RANGE_END(r) ((size_t)(uint32_t)(r))

/* The shares' rows take unequal times (the first share meets the leaves
 * first and claims them: 280 ms against 225 for the second half of the
 * 5 M heap).  A thread done with its own share takes the second half of
 * what is left of the share with the most rows left, as that share's
 * steal share (c + 1: its rows lie between the two, so the shares stay
 * in row order and the merge numbers as one thread would).  One steal
 * a share, fewer than least rows none. */
static void rows_steal(struct part *pt, unsigned np, size_t least)
{
	for (;;) {
		struct part *v = NULL, *q;
		size_t left = 0, next, end, mid;
		uint64_t r;

		for (unsigned c = 0; c + 1 < np; c += 2) {
			r = __atomic_load_n(&pt[c].range, __ATOMIC_RELAXED);
			if (RANGE_END(r) > RANGE_NEXT(r) &&
			    RANGE_END(r) - RANGE_NEXT(r) > left &&
			    !__atomic_load_n(&pt[c + 1].taken, __ATOMIC_RELAXED)) {
				left = RANGE_END(r) - RANGE_NEXT(r);
				v = &pt[c];
			}
		}
		if (!v || left < 2 * least)
			return;
		q = v + 1;
		if (__atomic_exchange_n(&q->taken, 1, __ATOMIC_ACQ_REL))
			continue; /* another thread's, meanwhile */
		r = __atomic_load_n(&v->range, __ATOMIC_ACQUIRE);
		do {
			next = RANGE_NEXT(r);
			end = RANGE_END(r);
			if (end <= next || end - next < 2 * least)
				return; /* q stays empty */
			mid = next + (end - next) / 2;
		} while (!__atomic_compare_exchange_n(&v->range, &r,
						      RANGE(next, mid), false,
						      __ATOMIC_ACQ_REL,
						      __ATOMIC_ACQUIRE));
		/* rows [mid, end) are q's alone now */
		q->lo = mid;
		q->hi = end;
		pyx_debug("graph: rows %zu-%zu of share %u taken by another "
			  "thread", mid, end, v->c);
		part_rows(q, mid, end);
		return;
	}
}

struct rows_thread {
	struct part *pt;
	unsigned np, t;
	size_t least;
};

/* Thread t: its own share pt[2 t] a block at a time, then a steal. */
static void rows_thread_run(void *arg)
{
	struct rows_thread *a = arg;
	struct part *p = &a->pt[2 * a->t];
	uint64_t r = __atomic_load_n(&p->range, __ATOMIC_ACQUIRE);

	for (;;) {
		size_t next = RANGE_NEXT(r), end = RANGE_END(r), take;

		if (next >= end)
			break;
		take = end - next < ROWS_BLOCK ? end - next : ROWS_BLOCK;
		if (!__atomic_compare_exchange_n(&p->range, &r,
						 RANGE(next + take, end), false,
						 __ATOMIC_ACQ_REL,
						 __ATOMIC_ACQUIRE))
			continue; /* a steal lowered end: r is the new one */
		if (!part_rows(p, next, next + take))
			return;
		r = __atomic_load_n(&p->range, __ATOMIC_ACQUIRE);
	}
	rows_steal(a->pt, a->np, a->least);
}

static void part_free(struct part *p)
{
	graph_free(&p->g);
	free(p->steal);
	free(p->pend);
	p->steal = NULL;
	p->pend = NULL;
}

/* The first done bytes of the array at p (from malloc(), len bytes or
 * more) are read for the last time: their pages go back to the kernel as
 * the merge copies the shares into the graph, so that a share and its
 * copy are not in memory together.  The first page (the allocator's
 * header precedes p) is kept; what follows reads as zeros. */
static void drop_done(void *p, size_t done)
{
	uintptr_t lo = ((uintptr_t)p + 8191) & ~(uintptr_t)4095;
	uintptr_t hi = ((uintptr_t)p + done) & ~(uintptr_t)4095;

	if (p && hi > lo)
		(void)madvise((void *)lo, hi - lo, MADV_DONTNEED);
}

#define DROP_EVERY (1u << 16) /* entries merged between two drop_done() */

/* Number every share's objects in share order (a stolen one takes its
 * taker's id): the maps, and the nodes and leaves appended to the graph. */
static int merge_ids(struct refs *s, struct part *pt, unsigned np)
{
	struct graph *g = &s->g;
	int err;

	if (!(g->pmap = calloc(np, sizeof(*g->pmap))))
		return -PYX_E_NOMEM;
	g->npmap = np;
	for (unsigned c = 0; c < np; c++) {
		struct pmap *m = &g->pmap[c];

		m->nnode = pt[c].g.n;
		m->nleaf = pt[c].g.nleaf;
		m->node = malloc((m->nnode ? m->nnode : 1) * sizeof(*m->node));
		if (c)
			m->leaf = malloc((m->nleaf ? m->nleaf : 1) *
					 sizeof(*m->leaf));
		if (!m->node || (c && !m->leaf))
			return -PYX_E_NOMEM;
		memset(m->node, 0xff, m->nnode * sizeof(*m->node));
		if (c)
			memset(m->leaf, 0xff, m->nleaf * sizeof(*m->leaf));
	}
	for (unsigned c = 0; c < np; c++)
		for (size_t i = 0; i < pt[c].nsteal; i++) {
			uint32_t from = pt[c].steal[2 * i];
			uint32_t to = pt[c].steal[2 * i + 1];
			unsigned v = pref_share(g, from);
			uint32_t lid = pref_lid(g, from);
			struct pmap *m = &g->pmap[v];

			/* a steal is from a higher share */
			if (v <= c || v >= np)
				continue;
			if (from & LEAF) {
				/* v > 0: m->leaf exists */
				if (lid < m->nleaf)
					m->leaf[lid] = STOLEN | (to & ~LEAF);
			} else if (lid < m->nnode) {
				m->node[lid] = STOLEN | to;
			}
		}
	/* Share 0's leaves are the graph's first ones, as they are (nobody
	 * takes from the lowest share).  Its references to leaves are not:
	 * an inferred word takes nothing, and may name a higher share's
	 * (merge_rows() maps every share's). */
	g->ltype = pt[0].g.ltype;
	g->lowner = pt[0].g.lowner;
	g->lsize = pt[0].g.lsize;
	g->nleaf = pt[0].g.nleaf;
	g->lcap = pt[0].g.lcap;
	g->bigl = pt[0].g.bigl;
	g->nbigl = pt[0].g.nbigl;
	g->capl = pt[0].g.capl;
	g->leaf_edges = pt[0].g.leaf_edges;
	pt[0].g.ltype = pt[0].g.lowner = pt[0].g.lsize = NULL;
	pt[0].g.bigl = NULL;
	for (unsigned c = 0; c < np; c++) {
		struct graph *pg = &pt[c].g;
		struct pmap *m = &g->pmap[c];

		for (uint32_t l = 0; l < m->nnode; l++) {
			uint32_t v = m->node[l];

			if (v == NONE) {
				m->node[l] = (uint32_t)g->n;
				if ((err = node_push(g, pg->addr[l], pg->type[l],
						     !pg->sized ? 0 :
						     size_get(pg->bign, pg->nbign,
							      l, pg->size[l]))))
					return err;
			} else {
				/* the taker's share is lower: numbered */
				unsigned t = pref_share(g, v & ~STOLEN);

				m->node[l] = t < c ? map_get(g, t, pref_lid(g, v),
							     false) : NONE;
			}
		}
		for (uint32_t l = 0; l < m->nleaf && c; l++) {
			uint32_t v = m->leaf[l];

			if (l && !(l % DROP_EVERY)) {
				drop_done(pg->ltype, l * sizeof(*pg->ltype));
				drop_done(pg->lsize, l * sizeof(*pg->lsize));
				drop_done(pg->lowner, l * sizeof(*pg->lowner));
			}
			if (v == NONE) {
				m->leaf[l] = (uint32_t)g->nleaf;
				if ((err = leaf_push(g, pg->ltype[l],
						     size_get(pg->bigl, pg->nbigl,
							      l, pg->lsize[l]),
						     pg->lowner[l])))
					return err;
			} else {
				unsigned t = pref_share(g, v & ~STOLEN);

				m->leaf[l] = t < c ? map_get(g, t, pref_lid(g, v),
							     true) : NONE;
				/* its first referrer here is a referrer too */
				if (m->leaf[l] != NONE &&
				    pg->lowner[l] != g->lowner[m->leaf[l]] &&
				    (err = pair_add(g, m->leaf[l], pg->lowner[l])))
					return err;
			}
		}
	}
	/* The hash's entries the shares made, as ids */
	for (size_t k = 0; k < g->hcap; k++)
		if (g->hash[k].addr && g->hash[k].local) {
			g->hash[k].node = ptag_find(g, g->hash[k].node);
			g->hash[k].local = 0;
		}
	return 0;
}

/* Share p's rows appended to the graph: its edges with their ids and
 * labels the graph's, the inferred words decided, its leaves' referrers.
 * Share 0's edges and their labels' table become the graph's, in place
 * (the graph has none before): no second copy of them. */
static int merge_rows(struct refs *s, struct part *p)
{
	struct graph *g = &s->g, *pg = &p->g;
	bool adopt = p->c == 0;
	size_t out = 0, dropped = 0;
	int err;

	if (adopt) {
		g->dst = pg->dst;
		g->kind = pg->kind;
		g->aux = pg->aux;
		g->ecap = pg->ecap;
		g->wide = pg->wide;
		g->wkey = pg->wkey;
		g->nwide = pg->nwide;
		g->wcap = pg->wcap;
		g->whash = pg->whash;
		g->whcap = pg->whcap;
		memcpy(g->wcache, pg->wcache, sizeof(g->wcache));
		pg->dst = pg->aux = NULL;
		pg->kind = pg->wkey = NULL;
		pg->wide = NULL;
		pg->whash = NULL;
	}
	for (size_t i = p->lo; i < p->hi; i++) {
		uint64_t end = i + 1 < p->hi ? g->off[i + 1] : pg->ne;
		uint64_t e = g->off[i];

		g->off[i] = adopt ? out : g->ne;
		if (!adopt && e - dropped >= DROP_EVERY) {
			drop_done(pg->dst, e * sizeof(*pg->dst));
			drop_done(pg->kind, e);
			drop_done(pg->aux, e * sizeof(*pg->aux));
			dropped = e;
		}
		for (; e < end; e++) {
			uint8_t kind = adopt ? g->kind[e] : pg->kind[e];
			uint32_t d = adopt ? g->dst[e] : pg->dst[e];
			uint64_t aux = adopt ? g->aux[e] : pg->aux[e];

			if (kind == KIND_PEND) {
				pyx_addr_t a = aux < p->npend ? p->pend[2 * aux] : 0;

				aux = aux < p->npend ? p->pend[2 * aux + 1] : 0;
				kind = PYX_REF_INFERRED;
				if ((d = a ? slot_find(g, a) : NONE) == NONE ||
				    d == i)
					continue;
				p->inferred++;
				if (d & LEAF) {
					d &= ~LEAF;
					g->leaf_edges++;
					if (g->lowner[d] != i &&
					    (err = pair_add(g, d, (uint32_t)i)))
						return err;
					continue;
				}
				if (adopt) {
					/* the table is the graph's now; an
					 * offset as edge_add() keeps it */
					uint32_t a32 = aux > UINT32_MAX ?
						       UINT32_MAX : (uint32_t)aux;

					g->dst[out] = d;
					g->kind[out] = kind;
					g->aux[out++] = a32;
					continue;
				}
			} else {
				if (d & LOCAL)
					d = map_get(g, pref_share(g, d & ~LOCAL),
						    pref_lid(g, d & ~LOCAL), false);
				if (d == NONE)
					continue;
				if (adopt) {
					g->dst[out] = d;
					g->kind[out] = kind;
					g->aux[out++] = (uint32_t)aux;
					continue;
				}
				if (wide_kind(kind))
					aux = aux < pg->nwide ? pg->wide[aux] : 0;
			}
			if ((err = edge_add(g, d, kind, aux)))
				return err;
		}
	}
	if (adopt)
		g->ne = out;
	for (size_t i = 0; i < pg->npair; i++) {
		uint32_t r = pg->lpair[2 * i], src = pg->lpair[2 * i + 1];
		uint32_t l = map_get(g, pref_share(g, r), pref_lid(g, r), true);

		if (i && !(i % DROP_EVERY))
			drop_done(pg->lpair, 2 * i * sizeof(*pg->lpair));

		if (l != NONE && src != g->lowner[l] && (err = pair_add(g, l, src)))
			return err;
	}
	if (!adopt)
		g->leaf_edges += pg->leaf_edges;
	s->inferred += p->inferred;
	s->bad_objects += p->bad_objects;
	return 0;
}

/* After the shares' rows: the merge (role 0, on the calling thread) and,
 * in stash mode, beside it, which tracked nodes the heap does not explain
 * (role 1: none of what the merge writes). */
struct tail {
	struct refs *s;
	struct part *pt;
	unsigned np, role;
	uint64_t *t;
	struct pyx_share_err e;
};

static void tail_run(void *arg)
{
	struct tail *a = arg;
	struct refs *s = a->s;
	int err;

	if (a->role) {
		struct outside_share o = { &s->g, 0, s->g.ntracked };

		outside_run(&o);
		return;
	}
	err = merge_ids(s, a->pt, a->np);
	phase("the shares' objects numbered", a->t);
	for (unsigned c = 0; c < a->np && !err; c++)
		err = merge_rows(s, &a->pt[c]);
	phase("the shares' rows merged", a->t);
	pyx_share_err_keep(&a->e, err);
}

static void pre_free(struct refs *s);
static void part_trim(struct refs *s, struct part *p);
static size_t rows_least(const struct refs *s);

/* The tracked rows on jobs threads (jobs 1: the same code on this one,
 * for the same graph), then merged. */
static int build_rows(struct refs *s, unsigned jobs, uint64_t *t)
{
	struct graph *g = &s->g;
	struct part *pt;
	uint64_t total = 0, acc = 0, named = 0;
	unsigned bits = 0, np;
	size_t row = 0;
	int err = 0;

	/* a range holds two row numbers in 32 bits each */
	if (g->ntracked >= UINT32_MAX)
		jobs = 1;
	/* jobs > 1: each thread's share (even), and after each a steal
	 * share (odd) for the rows another thread may take from its end */
	np = jobs > 1 ? 2 * jobs : 1;
	while ((1u << bits) < np)
		bits++;
	g->lidbits = 31 - bits;
	if ((err = off_room(g, g->ntracked)))
		return err;
	if (!(pt = calloc(np, sizeof(*pt)))) {
		pre_free(s);
		return -PYX_E_NOMEM;
	}
	if (jobs > 1 && s->npre == jobs) {
		/* made ready by the walk (the toucher's): the threads' own */
		for (unsigned k = 0; k < jobs; k++) {
			pt[2 * k] = s->pre[k];
			pt[2 * k].c = 2 * k;
		}
		free(s->pre);
		s->pre = NULL;
		s->npre = 0;
	} else {
		pre_free(s);
	}
	/* shares of about the same bytes (an object's references grow with
	 * its size; the sum is the walk's: the tracked nodes are all the
	 * graph has yet), the last to the end: the steals even them out */
	total = g->sized && g->n == g->ntracked ? g->bytes : 0;
	for (unsigned c = 0; c < np; c++) {
		unsigned k = jobs > 1 ? c / 2 : c;
		uint64_t goal = total / jobs * (k + 1);

		pt[c].s = s;
		pt[c].c = c;
		pt[c].g.mem = g->mem;
		pt[c].g.sized = g->sized;
		pt[c].lo = row;
		if (!(c & 1) && k + 1 == jobs)
			row = g->ntracked;
		else if (!(c & 1) && !total)
			row += g->ntracked / jobs;
		else if (!(c & 1))
			while (row < g->ntracked && acc < goal)
				acc += node_size(g, (uint32_t)row++);
		pt[c].hi = row;
		pt[c].range = RANGE(pt[c].lo, pt[c].hi);
	}
	if (pthread_mutex_init(&s->hlock, NULL)) {
		for (unsigned c = 0; c < np; c++)
			part_free(&pt[c]);
		free(pt);
		return -PYX_E_NOMEM;
	}
	if (jobs > 1) {
		struct rows_thread a[PYX_PARALLEL_MAX];

		for (unsigned k = 0; k < jobs; k++)
			a[k] = (struct rows_thread){ pt, np, k,
						     rows_least(s) / 16 };
#ifdef PYX_TEST_HOOKS
		/* Test hook: the threads' work one after the other, the
		 * last thread's first: every object two shares meet is taken
		 * from the higher one, and each thread takes the end of a
		 * lower thread's share: the steals that threads make by
		 * chance, made every time. */
		if (getenv("PYX_TEST_SHARES_BACKWARD")) {
			for (unsigned k = jobs; k-- > 0;)
				rows_thread_run(&a[k]);
		} else
#endif
			pyx_parallel(jobs, rows_thread_run, a, sizeof(a[0]));
		/* what each thread's own share kept */
		for (unsigned c = 0; c < np; c += 2)
			pt[c].hi = RANGE_END(pt[c].range);
	} else {
		part_run(&pt[0]);
	}
	pthread_mutex_destroy(&s->hlock);
	for (unsigned c = 0; c < np; c++)
		part_trim(s, &pt[c]);
	phase("the tracked rows read", t);
	for (unsigned c = 0; c < np && !err; c++)
		err = pyx_share_err_raise(&pt[c].e);
	for (unsigned c = 0; c < np && !err; c++) {
		named += pt[c].named;
		if (pt[c].full || named > s->max_edges)
			/* A sane heap has fewer references than words */
			err = pyx_err_set(PYX_E_BAD_MEMORY, "more than %" PRIu64
					  " references from the GC's objects: "
					  "a damaged heap", s->max_edges);
	}
	if (!err && g->stash) {
		/* the nodes the merge appends have room now: g->addr, which
		 * the bits' thread reads, does not move under it */
		size_t more = 0;

		for (unsigned c = 0; c < np; c++)
			more += pt[c].g.n;
		g->outside = calloc(g->ntracked / 64 + 1, sizeof(*g->outside));
		if (!g->outside)
			err = -PYX_E_NOMEM;
		else
			err = node_room(g, g->n + more);
	}
	if (!err) {
		struct tail tl[2] = { { s, pt, np, 0, t, { 0 } },
				      { s, pt, np, 1, t, { 0 } } };

		if (g->stash && jobs > 1) {
			pyx_parallel(2, tail_run, tl, sizeof(tl[0]));
		} else {
			tail_run(&tl[0]);
			if (g->stash)
				tail_run(&tl[1]);
		}
		err = pyx_share_err_raise(&tl[0].e);
	}
	for (unsigned c = 0; c < np; c++)
		part_free(&pt[c]);
	free(pt);
	return err;
}


/* The GC walk (on_tracked()), and beside it, with a second thread, a
 * toucher faulting in the node arrays ahead of it (ahead.h; the walk
 * leaves the other cores idle, and a tenth of its time went to faults).
 * The arrays get room for the most objects the walk takes first (address
 * space only: a page is in memory once written, or touched), so that they
 * do not move while the toucher runs. */
struct walk_share {
	struct refs *s; /* NULL: the toucher */
	struct pyx_ahead *ahead;
	size_t max;
	struct pyx_heap_stats *hs;
	int err;
};

static void walk_share_run(void *arg)
{
	struct walk_share *w = arg;

	if (!w->s) {
		pyx_ahead_touch(w->ahead);
		return;
	}
	w->err = pyx_heap_walk(w->s->py, w->max, on_tracked, w->s, w->hs);
	pyx_ahead_stop(w->ahead);
}

static void pre_free(struct refs *s)
{
	for (unsigned c = 0; c < s->npre; c++)
		part_free(&s->pre[c]);
	free(s->pre);
	s->pre = NULL;
	s->npre = 0;
}

/* The fewest rows a share of the tracked rows has: a share of fewer rows
 * costs more than it saves; asked for (--jobs), shares down to a few
 * hundred rows (the tests). */
static size_t rows_least(const struct refs *s)
{
	size_t least = s->o->capture.jobs ? 256 : 65536;

#ifdef PYX_TEST_HOOKS
	/* Test hook: shares of fewer rows (the fuzzer's images hold a few
	 * hundred objects) */
	const char *hook = getenv("PYX_TEST_SHARE_ROWS");

	if (hook && atoi(hook) > 0)
		least = (size_t)atoi(hook);
#endif
	return least;
}

/* What the rows will fill, foreseen from the nodes walked: a share's
 * edges, leaves and leaves' other referrers, in thousandths of the nodes
 * (on the 5 M heap 1.32, 0.86 and 0.69 a tracked node: the forecast stays
 * below, so that a heap with fewer references has few pages faulted in
 * for nothing; those are given back when the rows are read). */
#define PRE_EDGES 1000
#define PRE_LEAVES 500
#define PRE_PAIRS 400

/* Share c of jobs made ready for the rows before the walk: its arrays
 * with room for the most rows it could have (address space only).
 * Returns false when out of memory (pre_free() frees what it made).
 * (The merge's arrays are not: faulted in during the walk, they would be
 * in memory beside the shares' at the peak, which the merge keeps level
 * by giving back a share's pages as it copies them.) */
static bool part_prepare(struct refs *s, struct part *p, unsigned c,
			 unsigned jobs, size_t max)
{
	struct graph *g = &s->g, *q = &p->g;
	size_t nodes = max / jobs + 1;

	p->s = s;
	p->c = c;
	q->mem = g->mem;
	q->sized = g->sized;
	if (edge_room(q, 2 * nodes))
		return false;
	if (s->all && (leaf_room(q, nodes) ||
		       !(q->lpair = malloc(nodes * 2 * sizeof(*q->lpair)))))
		return false;
	q->pcap = s->all ? nodes : 0;
	return true;
}

/* Share p's arrays the toucher's: their goals, a share's part of what the
 * walk foresees (jobs shares). */
static void part_ahead(struct refs *s, struct part *p, unsigned jobs)
{
	struct graph *g = &s->g, *q = &p->g;
	/* the rows are cut into jobs shares only past so many (else the
	 * shares made here go unused: nothing faulted in for them) */
	size_t from = rows_least(s) * (jobs - 1);
	void *const base[PRE_AREAS] = { q->dst, q->kind, q->aux, q->ltype,
					q->lowner, q->lsize, q->lpair };
	const size_t elem[PRE_AREAS] = { sizeof(*q->dst), sizeof(*q->kind),
					 sizeof(*q->aux), sizeof(*q->ltype),
					 sizeof(*q->lowner), sizeof(*q->lsize),
					 2 * sizeof(*q->lpair) };
	const size_t cap[PRE_AREAS] = { q->ecap, q->ecap, q->ecap, q->lcap,
					q->lcap, q->lcap, q->pcap };
	const unsigned permille[PRE_AREAS] = {
		PRE_EDGES, PRE_EDGES, PRE_EDGES, PRE_LEAVES, PRE_LEAVES,
		PRE_LEAVES, PRE_PAIRS };

	for (unsigned i = 0; i < PRE_AREAS; i++)
		p->ah[i] = base[i] ? ahead_goal(g, base[i], elem[i], cap[i],
						permille[i] / jobs, from) : -1;
	p->pre = true;
}

/* Share p's pages faulted in past what its rows filled, given back
 * (before the merge: the peak). */
static void part_trim(struct refs *s, struct part *p)
{
	struct graph *q = &p->g;
	const void *base[PRE_AREAS] = { q->dst, q->kind, q->aux, q->ltype,
					q->lowner, q->lsize, q->lpair };
	const size_t n[PRE_AREAS] = { q->ne, q->ne, q->ne, q->nleaf,
				      q->nleaf, q->nleaf, q->npair };

	for (unsigned i = 0; p->pre && i < PRE_AREAS; i++)
		pyx_ahead_trim(&s->ahead, p->ah[i], base[i], n[i]);
	p->pre = false;
}

static int walk_lists(struct refs *s, size_t max, unsigned jobs,
		      struct pyx_heap_stats *hs)
{
	struct graph *g = &s->g;
	struct pyx_ahead *ahead = &s->ahead;
	struct walk_share w[2] = { { s, ahead, max, hs, 0 },
				   { NULL, ahead, 0, NULL, 0 } };
	void *base[PYX_ARRAY_SIZE(g->ah)];
	const size_t elem[PYX_ARRAY_SIZE(g->ah)] = {
		sizeof(*g->addr), sizeof(*g->type), sizeof(*g->size),
		sizeof(*g->rc) };
	uint64_t *off;

	if (jobs < 2 || !pyx_ahead_room_is_free() || node_room(g, max))
		return pyx_heap_walk(s->py, max, on_tracked, s, hs);
	if (!g->stash && g->rccap < g->cap) {
		uint32_t *r = realloc(g->rc, g->cap * sizeof(*r));

		if (r) {
			g->rc = r;
			g->rccap = g->cap;
		}
	}
	base[0] = g->addr;
	base[1] = g->type;
	base[2] = g->sized ? g->size : NULL;
	base[3] = !g->stash && g->rccap >= g->cap ? g->rc : NULL;
	pyx_ahead_init(ahead, 0);
	g->ahead = ahead;
	for (unsigned i = 0; i < PYX_ARRAY_SIZE(g->ah); i++)
		g->ah[i] = pyx_ahead_add(ahead, base[i], elem[i], g->cap,
					 g->n);
	/* the rows' offsets, one a tracked node (known as walked) */
	if (g->offcap < max + 2 &&
	    (off = realloc(g->off, (max + 2) * sizeof(*off)))) {
		g->off = off;
		g->offcap = max + 2;
	}
	if (g->offcap >= max + 2)
		ahead_goal(g, g->off, sizeof(*g->off), g->offcap, 1000, 0);
	/* the shares' arrays, as many shares as the rows will have on a
	 * big heap (build_rows() takes them if so) */
	if (4 + 1 + PRE_AREAS * jobs <= PYX_AHEAD_MAX &&
	    (s->pre = calloc(jobs, sizeof(*s->pre)))) {
		s->npre = jobs;
		for (unsigned c = 0; c < jobs && s->pre; c++)
			if (!part_prepare(s, &s->pre[c], c, jobs, max))
				pre_free(s); /* none, then */
		for (unsigned c = 0; c < s->npre; c++)
			part_ahead(s, &s->pre[c], jobs);
	}
	pyx_parallel(2, walk_share_run, w, sizeof(w[0]));
	g->ahead = NULL;
	g->nahg = 0;
	/* what it faulted in past the last node (unstash() may have
	 * replaced rc: then not) */
	base[3] = g->rc;
	for (unsigned i = 0; i < PYX_ARRAY_SIZE(g->ah); i++)
		pyx_ahead_trim(ahead, g->ah[i], base[i], g->n);
	return w[0].err;
}

/* How far ahead of the untracked rows their objects are asked for. */
#define UNTRACKED_AHEAD 8

static int build_graph_do(struct refs *s, uint64_t heap_bytes)
{
	struct graph *g = &s->g;
	struct pyx_heap_stats hs;
	uint64_t t = pyx_now_ns();
	unsigned jobs;
	int err;

	g->mem = s->py->mem;
	/* the whole graph needs every size: read with the header */
	g->sized = s->all;
	/* the whole graph's refcounts in the copy */
	g->stash = s->all && pyx_mem_has_snapshot(g->mem);
	jobs = pyx_mem_has_snapshot(g->mem) ? pyx_heap_jobs(s->o->capture.jobs)
					    : 1;
	if ((err = walk_lists(s, heap_bytes / 32 + 1, jobs, &hs)))
		return err;
	s->damaged_lists = hs.damaged_lists;
	s->max_edges = heap_bytes / 8 + (1u << 20);
	phase("the GC lists walked", &t);
	g->ntracked = g->n;
	/* Objects of a type the GC tracks are all on its lists, but for
	 * tuples and dicts (untracked while they hold only atoms): only
	 * then look at every untracked referent's type. */
	s->untracked_targets = true;
	for (size_t i = 0; i < g->n && s->o->type_name; i++) {
		const struct pyx_typeinfo *ti = pyx_types_at(s->types, g->type[i]);

		if ((err = type_matches(s, ti)) < 0)
			return err;
		if (err) {
			s->untracked_targets = ti->kind == PYX_K_TUPLE ||
					       ti->kind == PYX_K_DICT;
			break;
		}
	}
	if (s->all)
		s->untracked_targets = true;
	/* Leaves no smaller than half the least share a suspect has stay
	 * nodes: a suspect retains at least 0.8 x min_share of the heap,
	 * which holds at least the tracked objects. */
	if (s->all && s->leaf_share > 0) {
		/* the tracked bytes (all: sized), summed as walked */
		uint64_t tracked = g->bytes;

		s->leaf_max = (uint64_t)(s->leaf_share * (double)tracked / 2);
	}
	/* The tracked rows on the threads (build_rows()); then, here, the
	 * untracked nodes' rows, appended as they are met (few: dicts and
	 * tuples of atoms), rows to g->n. */
	{
		size_t least = rows_least(s);

		if (jobs > g->ntracked / least + 1)
			jobs = (unsigned)(g->ntracked / least + 1);
		if ((err = build_rows(s, jobs, &t)))
			return err;
	}
	for (size_t i = g->ntracked; i < g->n; i++) {
		const struct pyx_typeinfo *ti = pyx_types_at(s->types, g->type[i]);
		/* one thread, one cache miss an object (231 k dicts and
		 * tuples on the 5 M heap): the object UNTRACKED_AHEAD rows
		 * on asked for now (25 -> 21 ms) */
		const uint64_t *ahead = i + UNTRACKED_AHEAD < g->n ?
			pyx_heap_words(g->mem, g->addr[i + UNTRACKED_AHEAD], 72) :
			NULL;

		if (ahead) {
			__builtin_prefetch(ahead);
			__builtin_prefetch(ahead + 8);
		}
		if ((err = off_room(g, i)))
			return err;
		g->off[i] = g->ne;
		s->cur = (uint32_t)i;
		err = pyx_referents_ex(s->types, g->addr[i], ti, MAX_ITEMS,
				       PYX_REFERENTS_FULL, on_ref_bounded, s);
		if (err == -PYX_E_NOMEM || err == -PYX_E_EXITED)
			return err;
		if (err) {
			/* its edges read so far are kept */
			pyx_debug("object " PYX_PRIaddr " (%s): %s", g->addr[i],
				  ti->name, pyx_err_detail());
			pyx_err_clear();
			s->bad_objects++;
		}
	}
	g->nrows = g->n;
	if (!g->off && !(g->off = calloc(1, sizeof(*g->off))))
		return -PYX_E_NOMEM;
	g->off[g->nrows] = g->ne;
	phase("the untracked rows read", &t);
	/* What the heap explains of each tracked object's refcount (stash
	 * mode: counted as the edges were added, read beside the merge) */
	if (g->stash)
		outside_fix(s);
	free(s->fix);
	s->fix = NULL;
	s->nfix = s->fixcap = 0;
	for (size_t e = 0; e < g->ne && !g->stash; e++) {
		uint32_t d = g->dst[e];

		if (d < g->ntracked && g->kind[e] != PYX_REF_INFERRED &&
		    g->rc[d] && g->rc[d] != RC_IMMORTAL)
			g->rc[d]--;
	}
	phase("the refcounts explained", &t);
	node_shrink(g);
	pyx_debug("graph: %zu nodes (%zu tracked), %zu edges, %zu leaves, %zu "
		  "more referrers of leaves, %zu distinct names and keys",
		  g->n, g->ntracked, g->ne, g->nleaf, g->npair, g->nwide);
	/* Type names are read from the process (read-only memory is not
	 * copied): gone since the copy, they would all be "<type at ...>". */
	if (pyx_target_gone(s->py->tgt))
		return pyx_err_set(PYX_E_EXITED, "process %d exited while its "
				   "object graph was built (type names are "
				   "read from it)", (int)pyx_target_pid(s->py->tgt));
	return 0;
}

/* The graph; the shares made ready for rows never read are freed on
 * every path. */
static int build_graph(struct refs *s, uint64_t heap_bytes)
{
	int err = build_graph_do(s, heap_bytes);

	pre_free(s);
	return err;
}

/* ---- roots and the search ---------------------------------------------- */

static int root_add(struct refs *s, const char *desc, uint32_t *id)
{
	struct root *v = realloc(s->roots, (s->nroots + 1) * sizeof(*v));

	if (!v)
		return -PYX_E_NOMEM;
	s->roots = v;
	if (!(v[s->nroots].desc = strdup(desc)))
		return -PYX_E_NOMEM;
	*id = (uint32_t)s->nroots++;
	return 0;
}

/* Make node a root (if no root holds it yet) and queue it.  With no queue
 * yet (release_copy: the roots are found on the copy, the search's arrays
 * come after it is released), the node and its root id wait in sroot. */
static inline bool is_seeded(const struct refs *s, uint32_t node)
{
	return s->parent ? s->parent[node] != NONE
			 : (s->seeded[node / 64] >> (node % 64)) & 1;
}

static int seed(struct refs *s, uint32_t node, uint32_t root, uint32_t *queue,
		size_t *nq)
{
	if (node == NONE || is_seeded(s, node))
		return 0;
	if (!queue) {
		if (*nq >= s->sroot_cap) {
			size_t cap = s->sroot_cap ? 2 * s->sroot_cap : 256;
			uint32_t *p = realloc(s->sroot, cap * 2 * sizeof(*p));

			if (!p)
				return -PYX_E_NOMEM;
			s->sroot = p;
			s->sroot_cap = cap;
		}
		s->sroot[2 * *nq] = node;
		s->sroot[2 * (*nq)++ + 1] = root;
		s->seeded[node / 64] |= UINT64_C(1) << (node % 64);
		return 0;
	}
	s->pedge[node] = ROOT_EDGE | root;
	if (s->depth)
		s->depth[node] = 0;
	s->parent[node] = node;
	queue[(*nq)++] = node;
	return 0;
}

static int seed_addr(struct refs *s, pyx_addr_t a, const char *desc,
		     uint32_t *queue, size_t *nq)
{
	uint32_t node = a ? slot_find(&s->g, a) : NONE, id;
	int err;

	if (node != NONE && (node & LEAF)) {
		/* a leaf root retains only itself: no root entry */
		if (s->g.lowner[node & ~LEAF] != LEAF_ROOT) {
			s->g.lowner[node & ~LEAF] = LEAF_ROOT;
			s->g.leaf_roots++;
		}
		return 0;
	}
	if (node == NONE || is_seeded(s, node))
		return 0;
	if ((err = root_add(s, desc, &id)))
		return err;
	return seed(s, node, id, queue, nq);
}

/* The search's step: node u's referents met for the first time get their
 * parent and join the queue (*nq entries). */
static inline void bfs_node(struct refs *s, uint32_t *queue, uint32_t u,
			    size_t *nq)
{
	struct graph *g = &s->g;

	if (u >= g->nrows)
		return;
	for (uint64_t e = g->off[u]; e < g->off[u + 1]; e++) {
		uint32_t v = g->dst[e];

		if (s->parent[v] != NONE)
			continue;
		s->parent[v] = u;
		s->pedge[v] = e;
		/* the whole graph has no use for depths */
		if (s->depth)
			s->depth[v] = s->depth[u] == UINT16_MAX
				      ? UINT16_MAX
				      : (uint16_t)(s->depth[u] + 1);
		queue[(*nq)++] = v;
	}
}

static void bfs(struct refs *s, uint32_t *queue, size_t head, size_t nq)
{
	while (head < nq)
		bfs_node(s, queue, queue[head++], &nq);
}

/* Thread frames: 3.8-3.10 frame objects are nodes; 3.11+ frames live in
 * the threads' data stacks, so their locals are the roots. */
static int seed_threads(struct refs *s, uint32_t *queue, size_t *nq)
{
	struct pyx_python *py = s->py;
	struct pyx_code_cache *cc = NULL;
	struct pyx_stacks *st = calloc(1, sizeof(*st));
	int err;

	if (!st)
		return -PYX_E_NOMEM;
	if ((err = pyx_code_cache_new(&cc)) ||
	    (err = pyx_threads_walk(py, cc, 4096, false, st)))
		goto out;
	for (size_t t = 0; t < st->nthreads; t++) {
		const struct pyx_thread *th = &st->threads[t];

		for (size_t i = 0; i < th->nframes; i++) {
			const struct pyx_frame *f = &th->frames[i];
			char desc[512];
			pyx_addr_t at;
			uint64_t n = 0;

			/* A frame object the GC tracks is a node; 3.8-3.10
			 * do not track a running frame that has not escaped,
			 * and 3.11+ frames live in the threads' data stacks:
			 * then their locals are the roots. */
			if (!py->k.interp_frames &&
			    node_find(&s->g, f->frame) != NONE) {
				snprintf(desc, sizeof(desc), "frame of %s() in "
					 "thread %" PRIu64 " (running)",
					 f->function, th->thread_id);
				if ((err = seed_addr(s, f->frame, desc, queue, nq)))
					goto out;
				continue;
			}
			if (pyx_frame_localsplus(py, f->frame, f->code, &at, &n)) {
				pyx_err_clear();
				continue;
			}
			for (uint64_t j = 0; j < n; j++) {
				char name[128];
				uint64_t v;

				if (pyx_mem_read_u64(py->mem, at + 8 * j, &v))
					break;
				/* 3.14+: a _PyStackRef (tag 1: borrowed) */
				v = pyx_abi_untag(py, v);
				if (!v || slot_find(&s->g, v) == NONE)
					continue;
				if (pyx_code_local_name(py, f->code, j, name,
							sizeof(name)))
					snprintf(name, sizeof(name), "#%" PRIu64, j);
				snprintf(desc, sizeof(desc), "local '%s' of %s() "
					 "in thread %" PRIu64 " (running)", name,
					 f->function, th->thread_id);
				if ((err = seed_addr(s, v, desc, queue, nq)))
					goto out;
			}
			pyx_err_clear();
		}
	}
out:
	pyx_stacks_free(st);
	pyx_code_cache_free(cc);
	if (err && err != -PYX_E_NOMEM) {
		/* Frames are one kind of root among several: go on. */
		pyx_debug("thread frames: %s", pyx_err_detail());
		pyx_err_clear();
		err = 0;
	}
	return err;
}

static pyx_addr_t garbage_list(struct pyx_python *py);
static void describe(struct refs *s, uint32_t node, char *buf, size_t n);
static void label(struct refs *s, uint32_t src, uint64_t e, bool generic,
		  char *buf, size_t n);
static bool key_text(struct refs *s, uint64_t aux, bool generic, char *k,
		     size_t nk);

/* ---- the copy released early (pyx_refs_graph_opts.release_copy) -------- */

/* Memo keys: a dict key's address (its text), an edge (a local's label), a
 * node (its description).  Addresses above 2^61 are no object: no key. */
#define MEMO_KEY(a) ((uint64_t)(a) << 2)
#define MEMO_LOCAL(e) (((uint64_t)(e) << 2) | 1)
#define MEMO_DESC(v) (((uint64_t)(v) << 2) | 2)
#define MEMO_TEXT 2048           /* longer than any caller's buffer */
#define KEY_TEXT 200             /* a key in a label, as label() reads it */

static inline size_t memo_hash(uint64_t k)
{
	k ^= k >> 33;
	k *= UINT64_C(0xff51afd7ed558ccd);
	k ^= k >> 33;
	return (size_t)k;
}

static const char *memo_get(const struct refs *s, uint64_t key)
{
	if (!s->memo_cap || !key)
		return NULL;
	for (size_t k = memo_hash(key) & (s->memo_cap - 1); s->memo[k].key;
	     k = (k + 1) & (s->memo_cap - 1))
		if (s->memo[k].key == key)
			return s->memo[k].text;
	return NULL;
}

/* text (len bytes, NULs inside allowed) under key, new. */
static int memo_put(struct refs *s, uint64_t key, const char *text, size_t len)
{
	size_t k;
	char *t;

	if ((s->memo_n + 1) * 2 > s->memo_cap) {
		size_t cap = s->memo_cap ? 2 * s->memo_cap : 1024;
		struct memo_ent *m = calloc(cap, sizeof(*m));

		if (!m)
			return -PYX_E_NOMEM;
		for (size_t j = 0; j < s->memo_cap; j++) {
			if (!s->memo[j].key)
				continue;
			for (k = memo_hash(s->memo[j].key) & (cap - 1); m[k].key;
			     k = (k + 1) & (cap - 1))
				;
			m[k] = s->memo[j];
		}
		free(s->memo);
		s->memo = m;
		s->memo_cap = cap;
	}
	if (!(t = malloc(len + 1)))
		return -PYX_E_NOMEM;
	memcpy(t, text, len);
	t[len] = '\0';
	for (k = memo_hash(key) & (s->memo_cap - 1); s->memo[k].key;
	     k = (k + 1) & (s->memo_cap - 1))
		;
	s->memo[k].key = key;
	s->memo[k].text = t;
	s->memo_n++;
	return 0;
}

static void memo_free(struct refs *s)
{
	for (size_t j = 0; j < s->memo_cap; j++)
		free(s->memo[j].text);
	free(s->memo);
	s->memo = NULL;
	s->memo_cap = s->memo_n = 0;
}

/* A dict key's memo: 's' and its text (a str), or 'o', the text of the
 * label, NUL, the text of the generic label. */
static int memo_key(struct refs *s, uint64_t aux)
{
	char t[2 * KEY_TEXT + 2];
	size_t len;

	if (key_text(s, aux, false, t + 1, KEY_TEXT)) {
		t[0] = 's';
		return memo_put(s, MEMO_KEY(aux), t, strlen(t));
	}
	t[0] = 'o';
	len = strlen(t) + 1;
	key_text(s, aux, true, t + len, KEY_TEXT);
	return memo_put(s, MEMO_KEY(aux), t, len + strlen(t + len));
}

/* What label() and describe() read from the copy, for every edge and node
 * that needs it: the keys of dict values and attributes (each key once:
 * the table of distinct values), the locals' names (frames' and
 * generators' edges), the descriptions of modules, classes, functions,
 * frames and code (then the copy can go). */
static int memo_build(struct refs *s)
{
	struct graph *g = &s->g;
	size_t nt = pyx_types_count(s->types);
	uint8_t *want = calloc(nt ? nt : 1, 1);
	char buf[MEMO_TEXT];
	int err = 0;

	if (!want)
		return -PYX_E_NOMEM;
	for (size_t i = 1; i < g->nwide && !err; i++)
		if (g->wkey[i] && !(g->wide[i] >> 61))
			err = memo_key(s, g->wide[i]);
	/* by type: 1 described, 2 locals (what label() reads for them) */
	for (size_t i = 0; i < nt; i++)
		switch (pyx_types_at(s->types, i)->kind) {
		case PYX_K_FRAME:
			want[i] = 3;
			break;
		case PYX_K_GENERATOR:
			want[i] = 2;
			break;
		case PYX_K_MODULE:
		case PYX_K_TYPE:
		case PYX_K_FUNCTION:
		case PYX_K_CODE:
			want[i] = 1;
			break;
		default:
			break;
		}
	/* the nodes' types were all in the table before: type[v] < nt (a
	 * class described now may add its own) */
	for (uint32_t v = 0; v < g->n && !err; v++) {
		uint8_t w = g->type[v] < nt ? want[g->type[v]] : 0;

		if (!w)
			continue;
		if (w & 1) {
			describe(s, v, buf, sizeof(buf));
			if ((err = memo_put(s, MEMO_DESC(v), buf, strlen(buf))))
				break;
		}
		if (!(w & 2) || v >= g->nrows)
			continue;
		for (uint64_t e = g->off[v]; e < g->off[v + 1] && !err; e++) {
			if (g->kind[e] != PYX_REF_LOCAL)
				continue;
			label(s, v, e, false, buf, sizeof(buf));
			err = memo_put(s, MEMO_LOCAL(e), buf, strlen(buf));
		}
	}
	free(want);
	return err;
}

/* The copy released, its pages kept for what comes after (s->pages): they
 * are in memory, where fresh ones would fault one by one. */
static int drop_copy(struct refs *s)
{
	void *buf;
	size_t len, faulted;
	int err;

	if ((err = pyx_mem_snapshot_release_pages(s->py->mem, &buf, &len,
						  &faulted)))
		return err;
	s->dropped = true;
	/* NULL (no copy: a core's heap; out of memory): malloc */
	s->pages = pyx_pages_new(buf, len, faulted);
	return 0;
}

/* With release_copy: the search's arrays, from the arena (the copy's
 * pages), the roots seeded in them (nq in sroot). */
static int search_arrays(struct refs *s, uint32_t **pqueue, size_t nq)
{
	struct graph *g = &s->g;
	uint32_t *queue;

	/* queue last: it is freed first, and its pages reused (but with
	 * defer_search: the arena's blocks after it stay) */
	s->parent = pyx_pages_alloc(s->pages, g->n * sizeof(*s->parent));
	s->pedge = pyx_pages_alloc(s->pages, g->n * sizeof(*s->pedge));
	*pqueue = queue = pyx_pages_alloc(s->pages, g->n * sizeof(*queue));
	if (!s->parent || !queue || !s->pedge)
		return -PYX_E_NOMEM;
	memset(s->parent, 0xff, g->n * sizeof(*s->parent));
	for (size_t i = 0; i < nq; i++) {
		queue[i] = s->sroot[2 * i];
		s->parent[queue[i]] = queue[i];
		s->pedge[queue[i]] = ROOT_EDGE | s->sroot[2 * i + 1];
	}
	free(s->sroot);
	s->sroot = NULL;
	s->sroot_cap = 0;
	free(s->seeded);
	s->seeded = NULL;
	return 0;
}

/* What the named roots do not reach but something outside the GC heap
 * holds (C statics, extension state, the interpreter): the collector's own
 * test, refcount > references from the heap; seeded in the queue (*nq),
 * under the root *ext (made at the first, NONE before).  Those held
 * outside are the tracked nodes that pass the test, or list (nlist of
 * them, in node order) when the test was taken before. */
static int seed_outside(struct refs *s, const uint32_t *list, size_t nlist,
			uint32_t *queue, size_t *nq, uint32_t *ext)
{
	struct graph *g = &s->g;
	size_t n = list ? nlist : g->ntracked;
	int err;

	for (size_t k = 0; k < n; k++) {
		uint32_t i = list ? list[k] : (uint32_t)k;

		/* refcount above the references from the heap, or immortal */
		if (s->parent[i] != NONE || (!list && !held_outside(g, i)))
			continue;
		if (*ext == NONE && (err = root_add(s, "held from outside the "
						     "Python heap (C code, the "
						     "interpreter)", ext)))
			return err;
		if ((err = seed(s, i, *ext, queue, nq)))
			return err;
	}
	return 0;
}

/* The search from the nq roots seeded in queue, then from what is held
 * from outside the Python heap that they do not reach.  Frees queue. */
static int search_run(struct refs *s, uint32_t *queue, size_t nq,
		      struct pyx_refs *r, uint64_t t)
{
	uint32_t ext = NONE;
	size_t head;
	int err = 0;

	bfs(s, queue, 0, nq);
	head = nq;
	if ((err = seed_outside(s, NULL, 0, queue, &nq, &ext)))
		goto out;
	bfs(s, queue, head, nq);
	r->roots = nq;
	phase("the search", &t);
out:
	pyx_pages_free(s->pages, queue);
	return err;
}

static int search(struct refs *s, struct pyx_refs *r)
{
	struct pyx_python *py = s->py;
	struct graph *g = &s->g;
	pyx_addr_t interps[64];
	uint32_t *queue;
	size_t nq = 0, ninterp = 0;
	uint64_t t = pyx_now_ns();
	int err;

	queue = NULL;
	if (s->release) {
		/* the roots in a bitmap: the arrays come after the copy */
		s->seeded = calloc(g->n / 64 + 1, sizeof(*s->seeded));
		if (!s->seeded)
			return -PYX_E_NOMEM;
	} else {
		s->parent = malloc((g->n ? g->n : 1) * sizeof(*s->parent));
		queue = malloc((g->n ? g->n : 1) * sizeof(*queue));
		s->pedge = malloc((g->n ? g->n : 1) * sizeof(*s->pedge));
		if (!s->no_depth)
			s->depth = malloc((g->n ? g->n : 1) * sizeof(*s->depth));
		if (!s->parent || !queue || !s->pedge ||
		    (!s->no_depth && !s->depth)) {
			free(queue);
			return -PYX_E_NOMEM;
		}
		memset(s->parent, 0xff, g->n * sizeof(*s->parent));
	}
	if ((err = pyx_python_interps(py, interps, 64, &ninterp)))
		goto out;
	for (size_t i = 0; i < ninterp; i++) {
		static const struct {
			enum pyx_layout_id id;
			const char *what;
		} named[] = {
			{ PYX_L_IS_MODULES, "sys.modules" },
			{ PYX_L_IS_SYSDICT, "the sys module's dict" },
			{ PYX_L_IS_BUILTINS, "the builtins dict" },
		};
		for (size_t k = 0; k < PYX_ARRAY_SIZE(named); k++) {
			uint64_t v;
			char desc[128];

			if (pyx_read_field(py, interps[i], named[k].id, &v))
				continue;
			snprintf(desc, sizeof(desc), "%s%s", named[k].what,
				 ninterp > 1 ? " (an interpreter)" : "");
			if ((err = seed_addr(s, v, desc, queue, &nq)))
				goto out;
		}
	}
	pyx_err_clear();
	if ((err = seed_threads(s, queue, &nq)) ||
	    (err = seed_addr(s, garbage_list(py), "gc.garbage (uncollectable, "
			     "or saved by gc.DEBUG_SAVEALL)", queue, &nq)))
		goto out;
	/* Every root the copy names is found: with release_copy, what the
	 * labels need of it is taken and it goes, before the search's
	 * arrays (its peak is the copy and the graph together). */
	phase("the roots", &t);
	if (s->release) {
		if ((err = memo_build(s)))
			goto out;
		phase("the labels taken", &t);
		if ((err = drop_copy(s)))
			goto out;
		phase("the copy released", &t);
	}
	if (s->defer) {
		/* pyx_refs_graph_search_to(): the queue is NULL (release) */
		s->nsroot = nq;
		return 0;
	}
	if (!queue && (err = search_arrays(s, &queue, nq)))
		goto out;
	return search_run(s, queue, nq, r, t);
out:
	pyx_pages_free(s->pages, queue);
	return err;
}

/* ---- labels and groups -------------------------------------------------- */

/* The code a frame object runs (3.8-3.10 f_code, 3.11+ f_frame->f_code). */
static uint64_t frame_code(struct pyx_python *py, pyx_addr_t frame)
{
	uint64_t code = 0, f;

	if (pyx_layout_has(&py->layout, PYX_L_FO_CODE))
		pyx_read_field(py, frame, PYX_L_FO_CODE, &code);
	else if (pyx_read_field(py, frame, PYX_L_FO_FRAME, &f) == 0 && f)
		pyx_iframe_code(py, f, &code);
	pyx_err_clear();
	return code;
}

/* A short description of an object: "module __main__", "class X",
 * "function f", "dict". */
static void describe(struct refs *s, uint32_t node, char *buf, size_t n)
{
	struct pyx_python *py = s->py;
	const struct pyx_typeinfo *ti = pyx_types_at(s->types, s->g.type[node]);
	pyx_addr_t a = s->g.addr[node];
	char name[256];
	uint64_t v;

	if (s->dropped) {
		/* the memo has every node described below, the rest are
		 * their type's name */
		const char *m = memo_get(s, MEMO_DESC(node));

		snprintf(buf, n, "%s", m ? m : ti->name);
		return;
	}
	switch (ti->kind) {
	case PYX_K_MODULE:
		if (pyx_read_field(py, a, PYX_L_MODULE_NAME, &v) == 0 &&
		    pyx_str_read(py, v, name, sizeof(name)) == 0) {
			snprintf(buf, n, "module %s", name);
			return;
		}
		break;
	case PYX_K_TYPE: {
		const struct pyx_typeinfo *self;

		if (pyx_types_get(s->types, a, &self) == 0) {
			snprintf(buf, n, "class %s", self->name);
			return;
		}
		break;
	}
	case PYX_K_FUNCTION:
		if (pyx_read_field(py, a, PYX_L_FUNC_QUALNAME, &v) == 0 &&
		    pyx_str_read(py, v, name, sizeof(name)) == 0) {
			snprintf(buf, n, "function %s", name);
			return;
		}
		break;
	case PYX_K_FRAME:
	case PYX_K_CODE:
		if (pyx_read_field(py, ti->kind == PYX_K_FRAME ? frame_code(py, a)
				   : a, PYX_L_CO_NAME, &v) == 0 &&
		    pyx_str_read(py, v, name, sizeof(name)) == 0) {
			snprintf(buf, n, "%s of %s()", ti->kind == PYX_K_FRAME
				 ? "frame" : "code", name);
			return;
		}
		break;
	default:
		break;
	}
	pyx_err_clear();
	snprintf(buf, n, "%s", ti->name);
}

static bool is_str(struct refs *s, pyx_addr_t a)
{
	return a && pyx_obj_is(s->py, a, s->py->types.str,
			       PYX_TPFLAGS_UNICODE_SUBCLASS);
}

/* The key of a dict value or an attribute, aux, in k: its text when it is
 * a str (true), else an int's value (not generic), "<type key>" or "?". */
static bool key_text(struct refs *s, uint64_t aux, bool generic, char *k,
		     size_t nk)
{
	struct pyx_python *py = s->py;
	const struct pyx_typeinfo *ti;
	int64_t iv;

	if (is_str(s, aux) && pyx_str_read(py, aux, k, nk) == 0) {
		pyx_err_clear();
		return true;
	}
	if (aux && pyx_obj_is(py, aux, py->types.long_, 0) && !generic &&
	    pyx_long_read(py, aux, &iv) == 0)
		snprintf(k, nk, "%" PRId64, iv);
	else if (aux && obj_type(s, aux, &ti) == 0)
		snprintf(k, nk, "<%s key>", ti->name);
	else
		snprintf(k, nk, "?");
	pyx_err_clear();
	return false;
}

/* The label of edge e out of node src; generic: without the index or the
 * int key, for a group (the shape keeps only what the label shows). */
static void label(struct refs *s, uint32_t src, uint64_t e, bool generic,
		  char *buf, size_t n)
{
	struct pyx_python *py = s->py;
	uint64_t aux = edge_aux(&s->g, e);
	char k[KEY_TEXT];

	switch ((enum pyx_ref_kind)s->g.kind[e]) {
	case PYX_REF_ITEM:
		if (generic)
			snprintf(buf, n, "item");
		else
			snprintf(buf, n, "item [%" PRIu64 "]", aux);
		return;
	case PYX_REF_DICT_KEY:
		snprintf(buf, n, "dict key");
		return;
	case PYX_REF_SET_ITEM:
		snprintf(buf, n, "set element");
		return;
	case PYX_REF_DICT_VALUE:
	case PYX_REF_ATTR: {
		const char *m = NULL;
		bool str;

		if (s->dropped) {
			/* no object above 2^61: "?" as key_text() says */
			m = aux >> 61 ? NULL : memo_get(s, MEMO_KEY(aux));
			str = m && m[0] == 's';
			/* not a str: the label, NUL, the generic label */
			snprintf(k, sizeof(k), "%s", !m ? "?" : str || !generic
				 ? m + 1 : m + strlen(m) + 1);
		} else {
			str = key_text(s, aux, generic, k, sizeof(k));
		}
		if (str)
			snprintf(buf, n, s->g.kind[e] == PYX_REF_ATTR
				 ? "attribute '%s'" : "dict value ['%s']", k);
		else
			snprintf(buf, n, "dict value [%s]", k);
		return;
	}
	case PYX_REF_DICT:
		snprintf(buf, n, "__dict__");
		return;
	case PYX_REF_SLOT:
		snprintf(buf, n, "slot at +%" PRIu64, aux);
		return;
	case PYX_REF_FIELD:
	case PYX_REF_TYPE:
		snprintf(buf, n, "%s", aux ? (const char *)(uintptr_t)aux : "?");
		return;
	case PYX_REF_LOCAL: {
		uint64_t code = 0;

		if (s->dropped) {
			const char *m = memo_get(s, MEMO_LOCAL(e));

			if (m)
				snprintf(buf, n, "%s", m);
			else
				snprintf(buf, n, "local '#%" PRIu64 "'", aux);
			return;
		}
		const struct pyx_typeinfo *ti = pyx_types_at(s->types,
							     s->g.type[src]);

		/* The code of the frame: again, from the frame. */
		if (ti->kind == PYX_K_FRAME)
			code = frame_code(py, s->g.addr[src]);
		else if (ti->kind == PYX_K_GENERATOR) {
			pyx_addr_t f = pyx_gen_frame(py, s->g.addr[src]);

			if (f && pyx_iframe_code(py, f, &code))
				code = 0;
		}
		if (!code || pyx_code_local_name(py, code, aux, k, sizeof(k)))
			snprintf(k, sizeof(k), "#%" PRIu64, aux);
		pyx_err_clear();
		snprintf(buf, n, "local '%s'", k);
		return;
	}
	case PYX_REF_INFERRED:
		snprintf(buf, n, "word at +%" PRIu64 " (inferred)", aux);
		return;
	case PYX_REF_MEMBER:
		/* __slots__ of a class; a C type's member reads as a field */
		snprintf(buf, n, (pyx_types_at(s->types, s->g.type[src])->flags &
				  PYX_TPFLAGS_HEAPTYPE) ? "slot '%s'" : "%s",
			 (const char *)(uintptr_t)aux);
		return;
	}
	snprintf(buf, n, "?");
}

/* The shape of an edge: what the generic label says. */
static uint64_t edge_shape(struct refs *s, uint64_t e)
{
	uint64_t aux = edge_aux(&s->g, e);

	switch ((enum pyx_ref_kind)s->g.kind[e]) {
	case PYX_REF_ITEM:
	case PYX_REF_DICT_KEY:
	case PYX_REF_SET_ITEM:
		return 0;
	case PYX_REF_DICT_VALUE:
	case PYX_REF_ATTR: {
		const struct pyx_typeinfo *ti;

		if (is_str(s, aux))
			return aux; /* interned keys: one address per name */
		pyx_err_clear();
		return aux && obj_type(s, aux, &ti) == 0 ? ti->addr : 1;
	}
	default:
		return aux;
	}
}

static inline uint64_t mix(uint64_t h, uint64_t v)
{
	h ^= v + UINT64_C(0x9E3779B97F4A7C15) + (h << 6) + (h >> 2);
	return h * UINT64_C(0xff51afd7ed558ccd);
}

static uint64_t path_shape(struct refs *s, uint32_t v)
{
	uint64_t h = 1469598103934665603ULL;

	while (!(s->pedge[v] & ROOT_EDGE)) {
		uint32_t u = s->parent[v];
		uint64_t e = s->pedge[v];

		h = mix(h, s->g.type[u]);
		h = mix(h, s->g.kind[e]);
		h = mix(h, edge_shape(s, e));
		v = u;
	}
	return mix(h, s->pedge[v]);
}

static char *dupstr(const char *a, int *err)
{
	char *p = strdup(a);

	if (!p)
		*err = -PYX_E_NOMEM;
	return p;
}

static int build_path(struct refs *s, uint32_t v, bool generic,
		      struct pyx_refs_group *gr)
{
	int err = 0;

	while (!(s->pedge[v] & ROOT_EDGE) && !err) {
		uint32_t u = s->parent[v];
		uint64_t e = s->pedge[v];
		struct pyx_refs_step *st, *p;
		char buf[512], h[512];

		p = realloc(gr->path, (gr->npath + 1) * sizeof(*p));
		if (!p)
			return -PYX_E_NOMEM;
		gr->path = p;
		st = &p[gr->npath++];
		memset(st, 0, sizeof(*st));
		label(s, u, e, generic, buf, sizeof(buf));
		describe(s, u, h, sizeof(h));
		st->addr = s->g.addr[u];
		st->inferred = s->g.kind[e] == PYX_REF_INFERRED;
		gr->inferred |= st->inferred;
		st->type = dupstr(pyx_types_at(s->types, s->g.type[u])->name, &err);
		st->edge = dupstr(buf, &err);
		st->holder = dupstr(h, &err);
		v = u;
	}
	if (!err)
		gr->root = dupstr(s->roots[s->pedge[v] & ~ROOT_EDGE].desc, &err);
	return err;
}

struct tgt {
	uint64_t shape, size;
	uint32_t node;
};

static int cmp_tgt(const void *a, const void *b)
{
	const struct tgt *x = a, *y = b;

	if (x->shape != y->shape)
		return x->shape < y->shape ? -1 : 1;
	return x->node < y->node ? -1 : x->node > y->node;
}

static int cmp_group(const void *a, const void *b)
{
	const struct pyx_refs_group *x = a, *y = b;

	if (x->bytes != y->bytes)
		return x->bytes < y->bytes ? 1 : -1;
	if (x->count != y->count)
		return x->count < y->count ? 1 : -1;
	return x->example < y->example ? -1 : x->example > y->example;
}

static uint64_t obj_size(struct refs *s, uint32_t v)
{
	if (s->g.sized)
		return node_size(&s->g, v);
	return addr_size(s, s->g.addr[v], pyx_types_at(s->types, s->g.type[v]));
}

/* ---- retained sizes (refs --retained) ------------------------------- */

/* The dominator tree of the whole graph from the roots the search found,
 * and every node's retained bytes and objects, its leaves included (as
 * suspects computes them). */
static int dominate(struct refs *s)
{
	struct graph *g = &s->g;
	size_t n = g->n;
	uint32_t *roots = malloc((n ? n : 1) * sizeof(*roots));
	uint64_t *size = malloc((n ? n : 1) * sizeof(*size));
	uint32_t *extra = calloc(n ? n : 1, sizeof(*extra));
	uint32_t *lidom = NULL, nr = 0;
	int err = -PYX_E_NOMEM;

	if (!roots || !size || !extra)
		goto out;
	for (uint32_t v = 0; v < n; v++) {
		size[v] = obj_size(s, v);
		if (s->parent[v] == v)
			roots[nr++] = v;
	}
	{
		struct pyx_dom_graph dg = { (uint32_t)n, g->off, g->dst, roots,
					    nr, NULL, 0 };

		if ((err = pyx_dom_compute(&dg, &s->dom)))
			goto out;
	}
	free(roots);
	roots = NULL;
	if (g->nleaf) {
		err = -PYX_E_NOMEM;
		if (!(lidom = malloc(g->nleaf * sizeof(*lidom))))
			goto out;
		if ((err = pyx_dom_attach(s->dom, (uint32_t)g->nleaf, g->lowner,
					  g->lpair, g->npair, lidom)))
			goto out;
		/* a leaf belongs to the subtree of its dominator */
		for (size_t l = 0; l < g->nleaf; l++)
			if (lidom[l] < n) {
				size[lidom[l]] += leaf_size(g, (uint32_t)l);
				extra[lidom[l]]++;
			}
	}
	pyx_dom_retain_own(s->dom, size, extra);
	size = NULL;
	extra = NULL;
	err = 0;
out:
	free(roots);
	free(size);
	free(extra);
	free(lidom);
	return err;
}

#define ALL_TARGETS (UINT32_MAX - 1) /* a target in no group (too deep) */

/* What each group's targets retain: the union of the subtrees they
 * dominate, each object once.  A depth-first walk of the dominator tree
 * keeps, per group, how many of its targets are on the current branch: a
 * target below another of its group adds nothing (its subtree is in the
 * other's).  The same for all the targets together.  v[i].shape is the
 * group of target v[i].node (gs not sorted yet). */
static int group_retained(struct refs *s, struct pyx_refs *r,
			  const uint32_t *targets, size_t nt,
			  const struct tgt *v, size_t n,
			  struct pyx_refs_group *gs, size_t ng)
{
	const struct pyx_dom *d = s->dom;
	size_t nn = s->g.n;
	uint32_t *gid = malloc((nn ? nn : 1) * sizeof(*gid));
	uint32_t *active = calloc(ng + 1, sizeof(*active));
	uint32_t *snode = malloc(((size_t)d->nreach + 1) * sizeof(*snode));
	uint32_t *scur = malloc(((size_t)d->nreach + 1) * sizeof(*scur));
	uint32_t *koff = NULL, *kids = NULL, all = 0;
	int err = -PYX_E_NOMEM;

	if (!gid || !active || !snode || !scur)
		goto out;
	if ((err = pyx_dom_children(d, &koff, &kids)))
		goto out;
	memset(gid, 0xff, nn * sizeof(*gid));
	for (size_t i = 0; i < nt; i++)
		gid[targets[i]] = ALL_TARGETS;
	for (size_t i = 0; i < n; i++)
		gid[v[i].node] = (uint32_t)v[i].shape;
	r->retained = true;
	for (uint32_t k = koff[nn]; k < koff[nn + 1]; k++) {
		size_t sp = 0;

		snode[sp] = kids[k];
		scur[sp++] = UINT32_MAX; /* not entered yet */
		while (sp) {
			uint32_t u = snode[sp - 1], c = gid[u], w;

			if (scur[sp - 1] == UINT32_MAX) {
				scur[sp - 1] = koff[u];
				if (c != NONE && c < ng && !active[c]++) {
					gs[c].retained_bytes += d->retained[u];
					gs[c].retained_objects +=
						d->retained_count[u];
				}
				if (c != NONE && !all++) {
					r->retained_bytes += d->retained[u];
					r->retained_objects += d->retained_count[u];
				}
			}
			if (scur[sp - 1] >= koff[u + 1]) {
				if (c != NONE) {
					if (c < ng)
						active[c]--;
					all--;
				}
				sp--;
				continue;
			}
			w = kids[scur[sp - 1]++];
			/* the tree has nreach nodes: sp <= nreach */
			snode[sp] = w;
			scur[sp++] = UINT32_MAX;
		}
	}
	err = 0;
out:
	free(gid);
	free(active);
	free(snode);
	free(scur);
	free(koff);
	free(kids);
	return err;
}

static int group(struct refs *s, struct pyx_refs *r, const uint32_t *targets,
		 size_t nt)
{
	struct tgt *v = malloc((nt ? nt : 1) * sizeof(*v));
	struct pyx_refs_group *gs = NULL;
	size_t n = 0, ng = 0, max = s->o->max_groups ? s->o->max_groups
						      : DEFAULT_GROUPS;
	uint64_t prev = 0;
	int err = 0;

	if (!v)
		return -PYX_E_NOMEM;
	for (size_t i = 0; i < nt; i++) {
		uint32_t t = targets[i];
		uint64_t size = obj_size(s, t);

		r->targets++;
		r->target_bytes += size;
		if (s->parent[t] == NONE) {
			r->unreachable++;
			r->unreachable_bytes += size;
			continue;
		}
		/* The whole graph is searched; longer paths are not shown. */
		if (s->depth[t] > s->o->max_depth) {
			r->too_deep++;
			continue;
		}
		v[n].shape = path_shape(s, t);
		v[n].size = size;
		v[n++].node = t;
	}
	qsort(v, n, sizeof(*v), cmp_tgt);
	gs = calloc(n ? n : 1, sizeof(*gs));
	if (!gs) {
		free(v);
		return -PYX_E_NOMEM;
	}
	for (size_t i = 0; i < n; i++) {
		if (!i || v[i].shape != prev)
			gs[ng++].example = s->g.addr[v[i].node];
		prev = v[i].shape;
		gs[ng - 1].count++;
		gs[ng - 1].bytes += v[i].size;
		/* the group of each target, for group_retained() */
		v[i].shape = ng - 1;
	}
	if (s->dom && (err = group_retained(s, r, targets, nt, v, n, gs, ng))) {
		free(v);
		free(gs);
		return err;
	}
	qsort(gs, ng, sizeof(*gs), cmp_group);
	r->ngroups_total = ng;
	if (ng > max)
		ng = max;
	for (size_t i = 0; i < ng && !err; i++)
		err = build_path(s, node_find(&s->g, gs[i].example),
				 gs[i].count > 1, &gs[i]);
	r->groups = gs;
	r->ngroups = ng;
	free(v);
	return err;
}

static int referrers(struct refs *s, struct pyx_refs *r, uint32_t target)
{
	struct graph *g = &s->g;
	size_t max = s->o->max_referrers ? s->o->max_referrers
					 : DEFAULT_REFERRERS;
	int err = 0;

	for (uint32_t u = 0; u < g->nrows && !err; u++)
		for (uint64_t e = g->off[u]; e < g->off[u + 1] && !err; e++) {
			struct pyx_refs_referrer *p;
			char buf[512];

			if (g->dst[e] != target || r->nreferrers >= max)
				continue;
			p = realloc(r->referrers, (r->nreferrers + 1) * sizeof(*p));
			if (!p)
				return -PYX_E_NOMEM;
			r->referrers = p;
			p = &p[r->nreferrers++];
			memset(p, 0, sizeof(*p));
			label(s, u, e, false, buf, sizeof(buf));
			p->addr = g->addr[u];
			p->inferred = g->kind[e] == PYX_REF_INFERRED;
			p->type = dupstr(pyx_types_at(s->types, g->type[u])->name,
					 &err);
			p->edge = dupstr(buf, &err);
		}
	return err;
}

/* The gc.garbage list of the main interpreter (3.8: of the runtime),
 * 0 if there is none. */
static pyx_addr_t garbage_list(struct pyx_python *py)
{
	pyx_addr_t gc, interps[1];
	uint64_t list;
	size_t ni;

	if (!pyx_layout_has(&py->layout, PYX_L_GC_GARBAGE))
		return 0;
	if (pyx_layout_has(&py->layout, PYX_L_IS_GC)) {
		if (pyx_python_interps(py, interps, 1, &ni) || !ni)
			return 0;
		gc = interps[0] + (uint64_t)pyx_off(py, PYX_L_IS_GC);
	} else {
		gc = py->info.runtime + (uint64_t)pyx_off(py, PYX_L_RT_GC);
	}
	if (pyx_read_field(py, gc, PYX_L_GC_GARBAGE, &list) || !list ||
	    !pyx_obj_is(py, list, py->types.list, 0))
		list = 0;
	pyx_err_clear();
	return list;
}

static int garbage(struct refs *s, struct pyx_refs *r)
{
	struct pyx_python *py = s->py;
	pyx_addr_t list = garbage_list(py);
	uint64_t n, items;
	int err = 0;

	if (!list || pyx_read_field(py, list, PYX_L_OB_SIZE, &n) ||
	    pyx_read_field(py, list, PYX_L_LIST_ITEM, &items) || n > MAX_ITEMS)
		goto out;
	r->garbage = n;
	for (uint64_t i = 0; i < n && i < MAX_GARBAGE_TYPES && !err; i++) {
		const struct pyx_typeinfo *ti;
		uint64_t o;
		char **p;

		if (pyx_mem_read_u64(py->mem, items + 8 * i, &o) ||
		    obj_type(s, o, &ti))
			break;
		if (!(p = realloc(r->garbage_types, (r->ngarbage_types + 1) *
				  sizeof(*p))))
			return -PYX_E_NOMEM;
		r->garbage_types = p;
		p[r->ngarbage_types++] = dupstr(ti->name, &err);
	}
out:
	pyx_err_clear();
	return err;
}

size_t pyx_refs_distance(const char *a, const char *b, size_t max)
{
	size_t la = strlen(a), lb = strlen(b), *row, best;

	if (la > 256 || lb > 256)
		return max + 1;
	if ((la > lb ? la - lb : lb - la) > max)
		return max + 1;
	row = malloc((lb + 1) * sizeof(*row));
	if (!row)
		return max + 1;
	for (size_t j = 0; j <= lb; j++)
		row[j] = j;
	for (size_t i = 1; i <= la; i++) {
		size_t diag = row[0];

		row[0] = i;
		for (size_t j = 1; j <= lb; j++) {
			size_t up = row[j];
			size_t c = diag + (tolower((unsigned char)a[i - 1]) !=
					   tolower((unsigned char)b[j - 1]));

			if (row[j - 1] + 1 < c)
				c = row[j - 1] + 1;
			if (up + 1 < c)
				c = up + 1;
			row[j] = c;
			diag = up;
		}
	}
	best = row[lb];
	free(row);
	return best;
}

/* Names of the types in the heap closest to what was asked for: those that
 * end with it after a '.', contain it, or are a few edits away. */
static int suggest(struct refs *s, struct pyx_refs *r)
{
	const char *want = s->o->type_name;
	size_t nt = pyx_types_count(s->types), lw = strlen(want);
	size_t best[MAX_SUGGESTIONS], nb = 0;
	size_t score[MAX_SUGGESTIONS];

	for (size_t i = 0; i < nt; i++) {
		const struct pyx_typeinfo *ti = pyx_types_at(s->types, i);
		size_t ln = strlen(ti->name), d, k;
		bool dup = false;

		if (ti->kind == PYX_K_INVALID)
			continue;
		for (k = 0; k < nb; k++)
			dup |= strcmp(pyx_types_at(s->types, best[k])->name,
				      ti->name) == 0;
		if (dup)
			continue;
		if (ln > lw && strcmp(ti->name + ln - lw, want) == 0 &&
		    ti->name[ln - lw - 1] == '.')
			d = 0;
		else if (strcasestr(ti->name, want))
			d = 1;
		else if (strrchr(ti->name, '.') &&
			 (d = pyx_refs_distance(strrchr(ti->name, '.') + 1, want,
						2)) <= 2)
			d += 1;
		else if ((d = pyx_refs_distance(ti->name, want, 3)) > 3)
			continue;
		else
			d += 1;
		/* insertion into the short sorted list */
		for (k = nb; k > 0 && score[k - 1] > d; k--)
			if (k < MAX_SUGGESTIONS) {
				best[k] = best[k - 1];
				score[k] = score[k - 1];
			}
		if (k < MAX_SUGGESTIONS) {
			best[k] = i;
			score[k] = d;
			if (nb < MAX_SUGGESTIONS)
				nb++;
		}
	}
	r->suggestions = calloc(nb ? nb : 1, sizeof(*r->suggestions));
	if (!r->suggestions)
		return -PYX_E_NOMEM;
	for (size_t k = 0; k < nb; k++) {
		int err = 0;

		r->suggestions[r->nsuggestions++] =
			dupstr(pyx_types_at(s->types, best[k])->name, &err);
		if (err)
			return err;
	}
	return 0;
}

int pyx_refs_take(struct pyx_python *py, const struct pyx_refs_opts *opts,
		  struct pyx_refs **out)
{
	struct pyx_refs_opts o = *opts;
	struct refs s = { .py = py, .o = &o };
	struct pyx_refs *r;
	uint64_t pause0 = pyx_target_pause_ns(py->tgt), t0;
	uint32_t *targets = NULL;
	size_t nt = 0;
	int err;

	*out = NULL;
	if (!o.max_depth)
		o.max_depth = DEFAULT_MAX_DEPTH;
	if (o.max_depth > 65000)
		o.max_depth = 65000;
	/* every object a node, but for the leaves (no referents), whose
	 * bytes go to their dominator */
	s.all = o.retained;
	s.leaf_max = o.retained ? UINT64_MAX : 0;
	if (!(r = calloc(1, sizeof(*r))))
		return -PYX_E_NOMEM;
	r->pid = (int)pyx_target_pid(py->tgt);
	snprintf(r->python_version, sizeof(r->python_version), "%s",
		 py->info.version);
	if (o.type_name)
		snprintf(r->target, sizeof(r->target), "%s", o.type_name);
	else
		snprintf(r->target, sizeof(r->target), PYX_PRIaddr, o.addr);
	err = copy_heap(py, &o, r);
	r->pause_ms = (double)(pyx_target_pause_ns(py->tgt) - pause0) / 1e6;
	if (err)
		goto out;
	t0 = pyx_now_ns();
	if ((err = pyx_types_new(py, &s.types)) ||
	    (err = build_graph(&s, r->heap_bytes)))
		goto out;
	/* leaves (refs --retained) are objects and references too */
	r->objects = s.g.n + s.g.nleaf;
	r->edges = s.g.ne + s.g.leaf_edges;
	r->inferred_edges = s.inferred;
	r->damaged_lists = s.damaged_lists;
	r->bad_objects = s.bad_objects;
	r->partial = r->truncated || r->damaged_lists || r->bad_objects;
	/* The targets, tracked or reached. */
	if (!(targets = malloc((s.g.n ? s.g.n : 1) * sizeof(*targets)))) {
		err = -PYX_E_NOMEM;
		goto out;
	}
	for (uint32_t i = 0; i < s.g.n; i++) {
		int m = o.type_name
			? type_matches(&s, pyx_types_at(s.types, s.g.type[i]))
			: s.g.addr[i] == o.addr;

		if (m < 0) {
			err = m;
			goto out;
		}
		if (m)
			targets[nt++] = i;
	}
	if (!nt && o.type_name) {
		r->unknown_type = true;
		err = suggest(&s, r);
		goto out;
	}
	if (!nt) {
		err = pyx_err_set(PYX_E_USAGE, PYX_PRIaddr " is not an object "
				  "pyxray found: not tracked by the GC nor "
				  "referred to by a tracked object", o.addr);
		goto out;
	}
	if (!o.type_name)
		snprintf(r->target, sizeof(r->target), "%s at " PYX_PRIaddr,
			 pyx_types_at(s.types, s.g.type[targets[0]])->name, o.addr);
	if ((err = search(&s, r)))
		goto out;
	if (o.retained) {
		uint64_t t1 = pyx_now_ns();

		if ((err = dominate(&s)))
			goto out;
		r->retained_ms = (double)(pyx_now_ns() - t1) / 1e6;
	}
	if ((err = group(&s, r, targets, nt)) || (err = garbage(&s, r)))
		goto out;
	if (!o.type_name)
		err = referrers(&s, r, targets[0]);
	r->walk_ms = (double)(pyx_now_ns() - t0) / 1e6;
out:
	pyx_mem_snapshot_release(py->mem);
	for (size_t i = 0; i < s.nroots; i++)
		free(s.roots[i].desc);
	free(s.roots);
	free(targets);
	free(s.parent);
	free(s.pedge);
	free(s.depth);
	free(s.sroot);
	free(s.seeded);
	pyx_dom_free(s.dom);
	graph_free(&s.g);
	pyx_types_free(s.types);
	if (err) {
		pyx_refs_free(r);
		return err;
	}
	*out = r;
	return 0;
}

void pyx_refs_free(struct pyx_refs *r)
{
	if (!r)
		return;
	for (size_t i = 0; i < r->ngroups; i++) {
		for (size_t j = 0; j < r->groups[i].npath; j++) {
			free(r->groups[i].path[j].type);
			free(r->groups[i].path[j].holder);
			free(r->groups[i].path[j].edge);
		}
		free(r->groups[i].path);
		free(r->groups[i].root);
	}
	free(r->groups);
	for (size_t i = 0; i < r->nreferrers; i++) {
		free(r->referrers[i].type);
		free(r->referrers[i].edge);
	}
	free(r->referrers);
	for (size_t i = 0; i < r->ngarbage_types; i++)
		free(r->garbage_types[i]);
	free(r->garbage_types);
	for (size_t i = 0; i < r->nsuggestions; i++)
		free(r->suggestions[i]);
	free(r->suggestions);
	free(r);
}

/* ---- the whole graph (dominators, suspects, heap snapshots) ------------- */

struct graph_priv {
	struct refs s;
	struct pyx_refs_opts o;
	uint64_t *size, *lsize;
	uint32_t *root_node;
	/* defer_search: the search's queue (its first entries the named
	 * roots, as seeded: the search only appends) and those held from
	 * outside; where the search is: queue[qhead, qn) to expand, from the
	 * named roots (qphase 0), then from what is held outside too (1),
	 * done (2); qext the root id of the latter */
	uint32_t *queue, *outside;
	size_t noutside, qhead, qn;
	int qphase;
	uint32_t qext;
};

/* 4-byte sizes (a, n of them, the big ones in big) as 8-byte ones.
 * Without an arena in place: from the last, each 8-byte entry covers
 * 4-byte ones already read; with one, into it (a is freed).  NULL when out
 * of memory (a is still the caller's). */
static uint64_t *widen(struct pyx_pages *pages, uint32_t *a, size_t n,
		       const struct bigsz *big, size_t nbig)
{
	uint64_t *w;
	const uint32_t *u;

	if (pages) {
		if (!(w = pyx_pages_alloc(pages, n * sizeof(*w))))
			return NULL;
		for (size_t i = 0; i < n; i++)
			w[i] = size_get(big, nbig, (uint32_t)i, a[i]);
		free(a);
		return w;
	}
	if (!(w = realloc(a, (n ? n : 1) * sizeof(*w))))
		return NULL;
	u = (const uint32_t *)w;
	for (size_t i = n; i-- > 0;)
		w[i] = size_get(big, nbig, (uint32_t)i, u[i]);
	return w;
}

static struct graph_priv *gpriv(const struct pyx_refs_graph *g)
{
	return g->priv;
}

/* pyx_refs_graph_take() once the roots are found: the nodes' sizes in 8
 * bytes and their sum, and, once the search is done (reach), the roots
 * and the unreachable nodes, with leaves false; or the same of the leaves
 * (true). */
struct finish {
	struct refs *s;
	struct graph_priv *p;
	bool leaves, reach;
	size_t nr;
	uint64_t total, unreachable, unreachable_bytes;
	struct pyx_share_err e;
};

static void finish_nodes(struct finish *f)
{
	struct refs *s = f->s;
	struct graph_priv *p = f->p;
	struct graph *gg = &s->g;

	if (!(p->size = widen(s->pages, gg->size, gg->n, gg->bign,
			      gg->nbign))) {
		pyx_share_err_keep(&f->e, -PYX_E_NOMEM);
		return;
	}
	gg->size = NULL;
	if (f->reach && !(p->root_node = pyx_pages_alloc(s->pages, gg->n *
						 sizeof(*p->root_node)))) {
		pyx_share_err_keep(&f->e, -PYX_E_NOMEM);
		return;
	}
	for (uint32_t v = 0; v < gg->n; v++) {
		f->total += p->size[v];
		if (!f->reach)
			continue;
		if (s->parent[v] == NONE) {
			f->unreachable++;
			f->unreachable_bytes += p->size[v];
		} else if (s->parent[v] == v) {
			p->root_node[f->nr++] = v;
		}
	}
}

static void finish_leaves(struct finish *f)
{
	struct refs *s = f->s;
	struct graph_priv *p = f->p;
	struct graph *gg = &s->g;
	uint8_t *reach;

	if (!(p->lsize = widen(s->pages, gg->lsize, gg->nleaf, gg->bigl,
			       gg->nbigl))) {
		pyx_share_err_keep(&f->e, -PYX_E_NOMEM);
		return;
	}
	gg->lsize = NULL;
	for (size_t l = 0; l < gg->nleaf; l++)
		f->total += p->lsize[l];
	if (!f->reach || !gg->nleaf)
		return;
	if (!(reach = pyx_pages_calloc(s->pages, gg->nleaf, 1))) {
		pyx_share_err_keep(&f->e, -PYX_E_NOMEM);
		return;
	}
	for (size_t l = 0; l < gg->nleaf; l++)
		reach[l] = gg->lowner[l] == LEAF_ROOT ||
			   s->parent[gg->lowner[l]] != NONE;
	for (size_t i = 0; i < gg->npair; i++)
		if (s->parent[gg->lpair[2 * i + 1]] != NONE)
			reach[gg->lpair[2 * i]] = 1;
	for (size_t l = 0; l < gg->nleaf; l++) {
		if (!reach[l]) {
			f->unreachable++;
			f->unreachable_bytes += p->lsize[l];
		}
	}
	pyx_pages_free(s->pages, reach);
}

static void finish_run(void *arg)
{
	struct finish *f = arg;

	if (f->leaves)
		finish_leaves(f);
	else
		finish_nodes(f);
}

/* defer_search: what the search needs allocated before the graph is
 * handed over (from the arena, under what the dominators take), and the
 * roots it will find (those held from outside listed while the
 * refcounts that tell them are there). */
static int defer_prepare(struct refs *s, struct graph_priv *p,
			 struct pyx_refs_graph *g)
{
	struct graph *gg = &s->g;
	size_t no = 0, cap = 0;
	int err;

	if ((err = search_arrays(s, &p->queue, s->nsroot)))
		return err;
	for (uint32_t i = 0; i < gg->ntracked; i++) {
		if (!held_outside(gg, i))
			continue;
		if (no == cap) {
			size_t c = cap ? 2 * cap : 1024;
			uint32_t *o = realloc(p->outside, c * sizeof(*o));

			if (!o)
				return -PYX_E_NOMEM;
			p->outside = o;
			cap = c;
		}
		p->outside[no++] = i;
	}
	g->nnamed_roots = (uint32_t)s->nsroot;
	g->named_root = p->queue;
	g->noutside_roots = (uint32_t)no;
	g->outside_root = p->outside;
	p->noutside = no;
	/* filled in as the search goes (pyx_refs_graph_search_to()) */
	g->parent = s->parent;
	g->pedge = s->pedge;
	p->qhead = 0;
	p->qn = s->nsroot;
	p->qphase = 0;
	p->qext = NONE;
	return 0;
}

/* The deferred search run until node v has its parent (or to its end):
 * node by node as search_run() goes, so each node gets the parent the
 * whole search gives it. */
static int search_to(struct refs *s, struct graph_priv *p, uint32_t v)
{
	int err;

	while (p->qphase < 2 && v < s->g.n && s->parent[v] == NONE) {
		if (p->qhead < p->qn) {
			bfs_node(s, p->queue, p->queue[p->qhead++], &p->qn);
			continue;
		}
		if (p->qphase == 1) {
			p->qphase = 2;
			break;
		}
		/* the named roots' search is over: those held outside, as
		 * defer_prepare() found them */
		if ((err = seed_outside(s, p->outside, p->noutside, p->queue,
					&p->qn, &p->qext)))
			return err;
		p->qphase = 1;
	}
	return 0;
}

int pyx_refs_graph_take(struct pyx_python *py,
			const struct pyx_refs_graph_opts *opts,
			struct pyx_refs_graph **out)
{
	struct pyx_heap_capture_info ci;
	struct pyx_refs_graph *g;
	struct graph_priv *p;
	struct pyx_refs dummy;
	struct refs *s;
	uint64_t pause0 = pyx_target_pause_ns(py->tgt), t0, t1;
	size_t nr = 0;
	int err;

	*out = NULL;
	g = calloc(1, sizeof(*g));
	p = calloc(1, sizeof(*p));
	if (!g || !p) {
		free(g);
		free(p);
		return -PYX_E_NOMEM;
	}
	g->priv = p;
	p->o.capture = opts->capture;
	p->o.max_depth = 65000;
	s = &p->s;
	s->py = py;
	s->o = &p->o;
	s->all = true;
	s->no_depth = true;
	s->release = opts->release_copy;
	s->defer = opts->release_copy && opts->defer_search;
	s->leaf_share = opts->leaf_share;
	g->pid = (int)pyx_target_pid(py->tgt);
	g->rss_bytes = -1;
	snprintf(g->python_version, sizeof(g->python_version), "%s",
		 py->info.version);
	err = pyx_heap_capture(py, &p->o.capture, &ci);
	g->pause_ms = (double)(pyx_target_pause_ns(py->tgt) - pause0) / 1e6;
	if (err)
		goto out;
	g->copied_bytes = ci.copied_bytes;
	g->copy_reads = ci.copy_reads;
	g->heap_bytes = ci.heap_bytes;
	g->truncated = ci.truncated;
	g->rss_bytes = ci.rss_bytes;
	t0 = pyx_now_ns();
	if ((err = pyx_types_new(py, &s->types)) ||
	    (err = build_graph(s, g->heap_bytes)))
		goto out;
	memset(&dummy, 0, sizeof(dummy));
	/* gc.garbage read on the copy, before the search may release it */
	if ((err = garbage(s, &dummy)))
		goto out;
	g->garbage = dummy.garbage;
	for (size_t i = 0; i < dummy.ngarbage_types; i++)
		free(dummy.garbage_types[i]);
	free(dummy.garbage_types);
	if ((err = search(s, &dummy)))
		goto out;
	t1 = pyx_now_ns();
	if (s->defer && (err = defer_prepare(s, p, g)))
		goto out;
	/* the sizes read with the nodes, in 8 bytes now that the copy is
	 * gone, the roots and what no root reaches (unless deferred): the
	 * nodes' on this thread, the leaves' on another */
	{
		struct finish f[2] = {
			{ .s = s, .p = p, .leaves = false, .reach = !s->defer },
			{ .s = s, .p = p, .leaves = true, .reach = !s->defer } };

		if (pyx_heap_jobs(opts->capture.jobs) > 1) {
			pyx_parallel(2, finish_run, f, sizeof(f[0]));
		} else {
			finish_run(&f[0]);
			finish_run(&f[1]);
		}
		if ((err = pyx_share_err_raise(&f[0].e)) ||
		    (err = pyx_share_err_raise(&f[1].e)))
			goto out;
		nr = f[0].nr;
		s->g.sized = false;
		g->total_size = f[0].total + f[1].total;
		g->unreachable = f[0].unreachable + f[1].unreachable;
		g->unreachable_bytes = f[0].unreachable_bytes +
				       f[1].unreachable_bytes;
		phase(s->defer ? "the sizes, the search's arrays" :
				 "the sizes, the roots", &t1);
	}
	/* The edge arrays cut to fit, before the dominators need their
	 * memory. */
	if (s->g.ne && s->g.ne < s->g.ecap) {
		void *d = realloc(s->g.dst, s->g.ne * sizeof(*s->g.dst));

		if (d)
			s->g.dst = d;
		if ((d = realloc(s->g.kind, s->g.ne)))
			s->g.kind = d;
		if ((d = realloc(s->g.aux, s->g.ne * sizeof(*s->g.aux))))
			s->g.aux = d;
		s->g.ecap = s->g.ne;
	}
	if (s->g.npair && s->g.npair < s->g.pcap) {
		void *d = realloc(s->g.lpair, s->g.npair * 2 * sizeof(*s->g.lpair));

		if (d) {
			s->g.lpair = d;
			s->g.pcap = s->g.npair;
		}
	}
	g->nleaf = (uint32_t)s->g.nleaf;
	g->leaf_type = s->g.ltype;
	g->leaf_size = p->lsize;
	g->leaf_owner = s->g.lowner;
	g->leaf_pair = s->g.lpair;
	g->nleaf_pair = s->g.npair;
	g->leaf_edges = s->g.leaf_edges;
	g->leaf_roots = s->g.leaf_roots;
	g->n = (uint32_t)s->g.n;
	g->ntracked = (uint32_t)s->g.ntracked;
	g->addr = s->g.addr;
	g->type = s->g.type;
	g->size = p->size;
	g->ne = s->g.ne;
	g->inferred_edges = s->inferred;
	g->off = s->g.off;
	g->dst = s->g.dst;
	g->kind = s->g.kind;
	g->aux = s->g.aux;
	if (!s->defer) {
		g->nroots = (uint32_t)nr;
		g->root_node = p->root_node;
		g->parent = s->parent;
		g->pedge = s->pedge;
	}
	g->damaged_lists = s->damaged_lists;
	g->bad_objects = s->bad_objects;
	g->partial = g->truncated || g->damaged_lists || g->bad_objects;
	g->build_ms = (double)(pyx_now_ns() - t0) / 1e6;
	/* refs' search state the graph does not need */
	free(s->depth);
	s->depth = NULL;
	free(s->g.rc);
	s->g.rc = NULL;
	s->g.rccap = 0;
out:
	if (err) {
		pyx_refs_graph_free(g);
		return err;
	}
	*out = g;
	return 0;
}

int pyx_refs_graph_search_to(struct pyx_refs_graph *g, uint32_t v)
{
	struct graph_priv *p = g ? gpriv(g) : NULL;

	if (!p || !p->s.defer)
		return 0;
	return search_to(&p->s, p, v);
}

void pyx_refs_graph_free(struct pyx_refs_graph *g)
{
	struct graph_priv *p;

	if (!g)
		return;
	p = gpriv(g);
	if (p) {
		struct refs *s = &p->s;

		if (s->py)
			pyx_mem_snapshot_release(s->py->mem);
		for (size_t i = 0; i < s->nroots; i++)
			free(s->roots[i].desc);
		free(s->roots);
		pyx_pages_free(s->pages, s->parent);
		pyx_pages_free(s->pages, s->pedge);
		free(s->depth);
		free(s->sroot);
		free(s->seeded);
		memo_free(s);
		graph_free(&s->g);
		pyx_types_free(s->types);
		pyx_pages_free(s->pages, p->size);
		pyx_pages_free(s->pages, p->lsize);
		pyx_pages_free(s->pages, p->root_node);
		pyx_pages_free(s->pages, p->queue);
		free(p->outside);
		/* last: what came from it is gone (the 5 M heap's: 475 MiB,
		 * its pages freed on two threads) */
		pyx_pages_release(s->pages, pyx_heap_jobs(p->o.capture.jobs));
		free(p);
	}
	free(g);
}

struct pyx_pages *pyx_refs_graph_pages(const struct pyx_refs_graph *g)
{
	return g && gpriv(g) ? gpriv(g)->s.pages : NULL;
}

const struct pyx_typeinfo *pyx_refs_graph_typeinfo(const struct pyx_refs_graph *g,
						   uint32_t v)
{
	return pyx_types_at(gpriv(g)->s.types, g->type[v]);
}

size_t pyx_refs_graph_ntypes(const struct pyx_refs_graph *g)
{
	return pyx_types_count(gpriv(g)->s.types);
}

const char *pyx_refs_graph_type_name(const struct pyx_refs_graph *g,
				     uint32_t type_id)
{
	return pyx_types_at(gpriv(g)->s.types, type_id)->name;
}

void pyx_refs_graph_label(const struct pyx_refs_graph *g, uint32_t src,
			  uint64_t e, char *buf, size_t n)
{
	label(&gpriv(g)->s, src, e, false, buf, n);
}

void pyx_refs_graph_describe(const struct pyx_refs_graph *g, uint32_t v,
			     char *buf, size_t n)
{
	describe(&gpriv(g)->s, v, buf, n);
}

const char *pyx_refs_graph_root_desc(const struct pyx_refs_graph *g, uint32_t v)
{
	const struct refs *s = &gpriv(g)->s;
	uint64_t id;

	if (v >= g->n || s->parent[v] != v)
		return NULL;
	id = s->pedge[v] & ~ROOT_EDGE;
	return id < s->nroots ? s->roots[id].desc : NULL;
}

uint32_t pyx_refs_graph_find(const struct pyx_refs_graph *g, pyx_addr_t a)
{
	const struct refs *s = &gpriv(g)->s;

	if (!a)
		return NONE;
	/* no copy to hold the ids: the nodes one by one (rare) */
	if (s->dropped) {
		for (uint32_t v = 0; v < g->n; v++)
			if (g->addr[v] == a)
				return v;
		return NONE;
	}
	return node_find(&s->g, a);
}

int pyx_refs_graph_path(const struct pyx_refs_graph *g, uint32_t v,
			struct pyx_refs_step **path, size_t *npath, char **root)
{
	struct pyx_refs_group gr;
	int err;

	*path = NULL;
	*npath = 0;
	*root = NULL;
	if (v >= g->n || g->parent[v] == NONE)
		return 0;
	memset(&gr, 0, sizeof(gr));
	err = build_path(&gpriv(g)->s, v, false, &gr);
	*path = gr.path;
	*npath = gr.npath;
	*root = gr.root;
	if (err) {
		pyx_refs_graph_path_free(gr.path, gr.npath, gr.root);
		*path = NULL;
		*npath = 0;
		*root = NULL;
	}
	return err;
}

void pyx_refs_graph_path_free(struct pyx_refs_step *path, size_t npath,
			      char *root)
{
	for (size_t j = 0; j < npath; j++) {
		free(path[j].type);
		free(path[j].holder);
		free(path[j].edge);
	}
	free(path);
	free(root);
}

int pyx_refs_graph_str(const struct pyx_refs_graph *g, pyx_addr_t a,
		       char *buf, size_t n)
{
	struct refs *s = &gpriv(g)->s;

	if (s->dropped)
		return pyx_err_set(PYX_E_BAD_MEMORY, "the heap copy is released");
	if (!is_str(s, a)) {
		pyx_err_clear();
		return -PYX_E_BAD_MEMORY;
	}
	return pyx_str_read(s->py, a, buf, n);
}
