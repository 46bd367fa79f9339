/* pyx_suspects_take: retained sizes and the accumulation points. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "pyxray/suspects.h"
#include "dominators.h"
#include "internal.h"
#include "pages.h"
#include "referents.h"

#define DEFAULT_TOP 10
#define DEFAULT_SHARE 0.01
/* Down the dominator tree while one child holds this much of its parent. */
#define DESCEND_SHARE 0.8
#define MAX_HOLDS 8
#define MAX_TYPES 20
#define MAX_CANDIDATES (1u << 20)

struct owner {
	uint32_t dict, owner;
};

struct tret {
	uint32_t type;
	uint64_t count, bytes, retained;
};

struct ctx {
	const struct pyx_refs_graph *g;
	struct pyx_refs_graph *search; /* g, its search left to do */
	struct pyx_pages *pages; /* the graph's: every big array */
	size_t keep;             /* of it: what the dominators on may use */
	struct pyx_dom *d;
	uint32_t *koff, *kids;
	uint64_t thr;
	struct owner *owners;    /* __dict__ of a module, class, function */
	size_t nowners;
	uint32_t *lidom;         /* by leaf: its immediate dominator */
	uint32_t *loff, *lkid;   /* the leaves node v dominates: lkid[loff[v]
				    ..loff[v + 1]); the virtual root's: row n */
	uint64_t *size;          /* by node: its own bytes and its leaves' */
	uint64_t lunreached, lunreached_bytes; /* leaves no root reaches */
	uint32_t *nleaves;       /* by node: its leaves */
	struct tret *tsum, *tleaf; /* by type id: its nodes', its leaves'
				    count, bytes and retained bytes */
	size_t ntypes;           /* their entries: the graph's types */
	size_t max_types;        /* per-type rows kept (o->types) */
	unsigned jobs;
	double share;            /* min_share */
	size_t top;
	const struct pyx_suspects_opts *o;
};

static bool is_root(const struct ctx *c, uint32_t v)
{
	return c->g->parent[v] == v;
}

static int cmp_owner(const void *a, const void *b)
{
	const struct owner *x = a, *y = b;

	return x->dict < y->dict ? -1 : x->dict > y->dict;
}

/* Which dicts are the __dict__ of a module, a class or a function. */
static int find_owners(struct ctx *c)
{
	const struct pyx_refs_graph *g = c->g;
	size_t cap = 0;
	char lab[64];

	for (uint32_t v = 0; v < g->n; v++) {
		enum pyx_kind k = pyx_refs_graph_typeinfo(g, v)->kind;

		if (k != PYX_K_MODULE && k != PYX_K_TYPE && k != PYX_K_FUNCTION)
			continue;
		for (uint64_t e = g->off[v]; e < g->off[v + 1]; e++) {
			if (g->kind[e] == PYX_REF_FIELD) {
				pyx_refs_graph_label(g, v, e, lab, sizeof(lab));
				if (strcmp(lab, "__dict__") != 0)
					continue;
			} else if (g->kind[e] != PYX_REF_DICT) {
				continue;
			}
			if (c->nowners == cap) {
				size_t n = cap ? cap * 2 : 1024;
				struct owner *o = realloc(c->owners, n * sizeof(*o));

				if (!o)
					return -PYX_E_NOMEM;
				c->owners = o;
				cap = n;
			}
			c->owners[c->nowners].dict = g->dst[e];
			c->owners[c->nowners++].owner = v;
		}
	}
	/* qsort() wants an array, even of nothing */
	if (c->nowners > 1)
		qsort(c->owners, c->nowners, sizeof(*c->owners), cmp_owner);
	return 0;
}

/* The module, class or function whose __dict__ v is, or PYX_DOM_NONE. */
static uint32_t owner_of(const struct ctx *c, uint32_t v)
{
	struct owner key = { v, 0 }, *o;

	/* bsearch() wants an array, even of nothing */
	o = c->nowners ? bsearch(&key, c->owners, c->nowners, sizeof(key),
				 cmp_owner) : NULL;
	return o ? o->owner : PYX_DOM_NONE;
}

/* A module, a class, a function and their dicts, a root dict (sys.modules,
 * builtins), a frame, a code object, an lru_cache wrapper, a bound method:
 * they hold what the program defines, never the accumulation itself. */
static bool is_namespace(const struct ctx *c, uint32_t v)
{
	const struct pyx_typeinfo *ti = pyx_refs_graph_typeinfo(c->g, v);
	uint32_t p;

	switch (ti->kind) {
	case PYX_K_MODULE:
	case PYX_K_TYPE:
	case PYX_K_FUNCTION:
	case PYX_K_CODE:
	case PYX_K_FRAME:
	case PYX_K_LRU:
	case PYX_K_METHOD:
	case PYX_K_CELL:
		return true;
	case PYX_K_DICT:
		if (is_root(c, v) || owner_of(c, v) != PYX_DOM_NONE)
			return true;
		/* a frame's or a function's globals, builtins, locals */
		p = c->g->parent[v];
		if (p >= c->g->n || p == v ||
		    c->g->kind[c->g->pedge[v]] != PYX_REF_FIELD)
			return false;
		{
			char lab[64];

			pyx_refs_graph_label(c->g, p, c->g->pedge[v], lab,
					     sizeof(lab));
			return strcmp(lab, "f_globals") == 0 ||
			       strcmp(lab, "f_builtins") == 0 ||
			       strcmp(lab, "f_locals") == 0 ||
			       strcmp(lab, "__globals__") == 0 ||
			       strcmp(lab, "__builtins__") == 0;
		}
	default:
		return false;
	}
}

static int add_suspect(struct pyx_suspects *r, uint32_t v, size_t *cap)
{
	struct pyx_suspect *p;

	if (r->nsuspects == *cap) {
		size_t n = *cap ? *cap * 2 : 16;

		if (!(p = realloc(r->suspects, n * sizeof(*p))))
			return -PYX_E_NOMEM;
		r->suspects = p;
		*cap = n;
	}
	p = &r->suspects[r->nsuspects++];
	memset(p, 0, sizeof(*p));
	p->addr = v; /* the node, until described */
	return 0;
}

/* The accumulation points: candidates are the namespaces' children (and the
 * virtual root's) that retain at least thr; each goes down while one child
 * holds most of it. */
static int find(struct ctx *c, struct pyx_suspects *r)
{
	uint32_t *queue = pyx_pages_alloc(c->pages,
					  MAX_CANDIDATES * sizeof(*queue));
	size_t nq = 0, cap = 0;
	uint32_t n = c->g->n;
	int err = 0;

	if (!queue)
		return -PYX_E_NOMEM;
	for (uint32_t k = c->koff[n]; k < c->koff[n + 1] && nq < MAX_CANDIDATES; k++)
		if (c->d->retained[c->kids[k]] >= c->thr)
			queue[nq++] = c->kids[k];
	while (nq && !err) {
		uint32_t v = queue[--nq];

		for (;;) {
			uint32_t big = PYX_DOM_NONE;

			/* is_namespace() reads v's path: the search that
			 * far */
			if ((err = pyx_refs_graph_search_to(c->search, v)))
				break;
			if (is_namespace(c, v)) {
				for (uint32_t k = c->koff[v]; k < c->koff[v + 1] &&
				     nq < MAX_CANDIDATES; k++)
					if (c->d->retained[c->kids[k]] >= c->thr)
						queue[nq++] = c->kids[k];
				break;
			}
			for (uint32_t k = c->koff[v]; k < c->koff[v + 1]; k++)
				if (big == PYX_DOM_NONE || c->d->retained[c->kids[k]] >
				    c->d->retained[big])
					big = c->kids[k];
			if (big != PYX_DOM_NONE && (double)c->d->retained[big] >=
			    DESCEND_SHARE * (double)c->d->retained[v]) {
				v = big;
				continue;
			}
			err = add_suspect(r, v, &cap);
			break;
		}
	}
	pyx_pages_free(c->pages, queue);
	return err;
}

static int cmp_suspect(const void *a, const void *b)
{
	const struct pyx_suspect *x = a, *y = b;

	if (x->retained_bytes != y->retained_bytes)
		return x->retained_bytes < y->retained_bytes ? 1 : -1;
	return x->addr < y->addr ? -1 : x->addr > y->addr;
}

struct tcount {
	uint32_t type;
	uint64_t count, bytes;
};

static int cmp_tcount(const void *a, const void *b)
{
	const struct tcount *x = a, *y = b;

	if (x->bytes != y->bytes)
		return x->bytes < y->bytes ? 1 : -1;
	return x->type < y->type ? -1 : x->type > y->type;
}

/* The leaves u dominates, by type. */
static void leaf_holds(const struct ctx *c, uint32_t u, struct tcount *t,
		       size_t nt)
{
	for (uint32_t k = c->loff[u]; k < c->loff[u + 1]; k++) {
		uint32_t l = c->lkid[k], ty = c->g->leaf_type[l];

		if (ty < nt) {
			t[ty].type = ty;
			t[ty].count++;
			t[ty].bytes += c->g->leaf_size[l];
		}
	}
}

/* What v retains, by type (v itself left out). */
static int holds(struct ctx *c, uint32_t v, struct pyx_suspect *s)
{
	size_t nt = pyx_refs_graph_ntypes(c->g), nh = 0;
	struct tcount *t = calloc(nt ? nt : 1, sizeof(*t));
	uint32_t *stack = pyx_pages_alloc(c->pages,
					  ((size_t)c->d->retained_count[v] + 1) *
					  sizeof(*stack));
	size_t sp = 0;
	int err = 0;

	if (!t || !stack) {
		err = -PYX_E_NOMEM;
		goto out;
	}
	for (uint32_t k = c->koff[v]; k < c->koff[v + 1]; k++)
		stack[sp++] = c->kids[k];
	leaf_holds(c, v, t, nt);
	while (sp) {
		uint32_t u = stack[--sp], ty = c->g->type[u];

		if (ty < nt) {
			t[ty].type = ty;
			t[ty].count++;
			t[ty].bytes += c->g->size[u];
		}
		leaf_holds(c, u, t, nt);
		/* the subtree of v has retained_count[v] nodes: room */
		for (uint32_t k = c->koff[u]; k < c->koff[u + 1]; k++)
			stack[sp++] = c->kids[k];
	}
	if (nt > 1)
		qsort(t, nt, sizeof(*t), cmp_tcount);
	s->holds = calloc(MAX_HOLDS, sizeof(*s->holds));
	if (!s->holds) {
		err = -PYX_E_NOMEM;
		goto out;
	}
	for (size_t i = 0; i < nt && nh < MAX_HOLDS && t[i].count; i++) {
		s->holds[nh].type = strdup(pyx_refs_graph_type_name(c->g, t[i].type));
		if (!s->holds[nh].type) {
			err = -PYX_E_NOMEM;
			break;
		}
		s->holds[nh].count = t[i].count;
		s->holds[nh++].bytes = t[i].bytes;
	}
	s->nholds = nh;
out:
	free(t);
	pyx_pages_free(c->pages, stack);
	return err;
}

static bool holds_type(const struct pyx_suspect *s, const char *name,
		       uint64_t *count)
{
	for (size_t i = 0; i < s->nholds; i++)
		if (strcmp(s->holds[i].type, name) == 0) {
			if (count)
				*count = s->holds[i].count;
			return true;
		}
	return false;
}

/* 'k' out of "dict value ['k']": into buf, or false. */
static bool str_key(const char *edge, char *buf, size_t n)
{
	size_t len;

	if (strncmp(edge, "dict value ['", 13) != 0)
		return false;
	len = strlen(edge + 13);
	if (len < 2 || strcmp(edge + 13 + len - 2, "']") != 0)
		return false;
	snprintf(buf, n, "%.*s", (int)(len - 2), edge + 13);
	return true;
}

/* The function an lru_cache wrapper (node w) wraps, described. */
static void lru_wrapped(struct ctx *c, uint32_t w, char *buf, size_t n)
{
	char lab[128];

	buf[0] = '\0';
	if (w >= c->g->n)
		return;
	for (uint64_t e = c->g->off[w]; e < c->g->off[w + 1]; e++) {
		pyx_refs_graph_label(c->g, w, e, lab, sizeof(lab));
		if (strcmp(lab, "__wrapped__") == 0) {
			pyx_refs_graph_describe(c->g, c->g->dst[e], buf, n);
			return;
		}
	}
}

/* The holder in words and the leak shape, from its path and holdings. */
static int describe_suspect(struct ctx *c, uint32_t v, struct pyx_suspect *s)
{
	const struct pyx_refs_step *p;
	char desc[2048], key[512], fn[300];
	const char *scope = NULL;
	bool cachey = false;
	uint64_t nmeth = 0, nlru = 0;
	uint32_t o = PYX_DOM_NONE;
	int err;

	/* the search only as far as v (its path) */
	if ((err = pyx_refs_graph_search_to(c->search, v)) ||
	    (err = pyx_refs_graph_path(c->g, v, &s->path, &s->npath, &s->root)))
		return err;
	p = s->path;
	if (!s->npath) {
		snprintf(desc, sizeof(desc), "root: %s", s->root ? s->root
			 : "none (unreachable)");
	} else if (strcmp(p[0].type, "dict") == 0 &&
		   str_key(p[0].edge, key, sizeof(key)) &&
		   ((o = owner_of(c, c->g->parent[v])) !=
		    PYX_DOM_NONE || (s->npath > 1 &&
				     strcmp(p[1].edge, "__dict__") == 0))) {
		char who[512];
		enum pyx_kind k = PYX_K_OTHER;

		if (o != PYX_DOM_NONE) {
			pyx_refs_graph_describe(c->g, o, who, sizeof(who));
			k = pyx_refs_graph_typeinfo(c->g, o)->kind;
		} else {
			snprintf(who, sizeof(who), "%s", p[1].holder);
		}
		if (k == PYX_K_MODULE)
			scope = "global";
		else if (k == PYX_K_TYPE)
			scope = "class attribute";
		snprintf(desc, sizeof(desc), "%s '%s' of %s",
			 scope ? scope : "attribute", key,
			 k == PYX_K_TYPE && strncmp(who, "class ", 6) == 0
			 ? who + 6 : who);
		cachey = strcasestr(key, "cache") || strcasestr(key, "memo");
	} else if (s->npath > 1 && strcmp(p[0].type, "tuple") == 0 &&
		   (strcmp(p[1].edge, "__defaults__") == 0 ||
		    strcmp(p[1].edge, "__kwdefaults__") == 0)) {
		snprintf(desc, sizeof(desc), "default argument (%s of "
			 "%s) of %s", p[0].edge, p[1].edge, p[1].holder);
	} else if (strcmp(p[0].edge, "__kwdefaults__") == 0) {
		snprintf(desc, sizeof(desc), "keyword defaults of %s",
			 p[0].holder);
	} else if (strcmp(p[0].type, "functools._lru_cache_wrapper") == 0 &&
		   strcmp(p[0].edge, "cache") == 0) {
		lru_wrapped(c, c->g->parent[v], fn, sizeof(fn));
		snprintf(desc, sizeof(desc), "cache of the lru_cache wrapper "
			 "of %s", fn[0] ? fn : "a function");
	} else {
		snprintf(desc, sizeof(desc), "%s of %s", p[0].edge, p[0].holder);
		if (str_key(p[0].edge, key, sizeof(key)))
			cachey = strcasestr(key, "cache") ||
				 strcasestr(key, "memo");
	}
	if (!(s->description = strdup(desc)))
		return -PYX_E_NOMEM;
	/* the shape, most telling first */
	holds_type(s, "method", &nmeth);
	holds_type(s, "functools._lru_list_elem", &nlru);
	if (s->npath > 1 && (strcmp(p[1].edge, "__defaults__") == 0 ||
			     strcmp(p[1].edge, "__kwdefaults__") == 0))
		s->pattern = "mutable default argument";
	else if (s->npath && strcmp(p[0].edge, "__kwdefaults__") == 0)
		s->pattern = "mutable default argument";
	else if (s->npath && strcmp(p[0].edge, "cache") == 0 &&
		 strcmp(p[0].type, "functools._lru_cache_wrapper") == 0)
		s->pattern = nlru ? "lru_cache (bounded: big entries)"
			     : "unbounded cache: lru_cache(maxsize=None)";
	else if (holds_type(s, "frame", NULL) || holds_type(s, "traceback", NULL))
		s->pattern = "stored exceptions/tracebacks keep frames and "
			     "their locals alive";
	else if (s->root && strstr(s->root, "gc.garbage"))
		s->pattern = "gc.garbage: uncollectable objects (or "
			     "gc.DEBUG_SAVEALL)";
	else if (nmeth && s->nholds && nmeth * 2 >= s->holds[0].count)
		s->pattern = "bound methods held by an emitter (observer list)";
	else if (cachey && strcmp(pyx_refs_graph_typeinfo(c->g, v)->name,
				  "dict") == 0)
		s->pattern = "unbounded cache: a dict used as a cache";
	else if (scope && scope[0] == 'c')
		s->pattern = "container at class scope (grows with the "
			     "process)";
	else if (scope)
		s->pattern = "container at module scope (grows with the "
			     "process)";
	return 0;
}

static int cmp_tret(const void *a, const void *b)
{
	const struct tret *x = a, *y = b;

	if (x->retained != y->retained)
		return x->retained < y->retained ? 1 : -1;
	return x->type < y->type ? -1 : x->type > y->type;
}

/* n objects (type and size by object) counted and summed by type into a
 * new table of nt entries (NULL: out of memory); with dom (by object),
 * each retaining itself unless its dominator is PYX_DOM_NONE.  Into two
 * tables, every other object to each: a run of one type is then two
 * chains of read-modify-writes, not one (5 M nodes: 16 -> 10 ms). */
static struct tret *sum_types(size_t nt, const uint32_t *type,
			      const uint64_t *size, const uint32_t *dom,
			      size_t n)
{
	struct tret *t = calloc(nt ? 2 * nt : 1, sizeof(*t)), *u;
	size_t i = 0;

	if (!t)
		return NULL;
	u = t + nt;
	for (; i + 1 < n; i += 2) {
		uint32_t a = type[i], b = type[i + 1];

		if (a < nt) {
			t[a].count++;
			t[a].bytes += size[i];
			if (dom && dom[i] != PYX_DOM_NONE)
				t[a].retained += size[i];
		}
		if (b < nt) {
			u[b].count++;
			u[b].bytes += size[i + 1];
			if (dom && dom[i + 1] != PYX_DOM_NONE)
				u[b].retained += size[i + 1];
		}
	}
	if (i < n && type[i] < nt) {
		t[type[i]].count++;
		t[type[i]].bytes += size[i];
		if (dom && dom[i] != PYX_DOM_NONE)
			t[type[i]].retained += size[i];
	}
	for (size_t k = 0; k < nt; k++) {
		t[k].count += u[k].count;
		t[k].bytes += u[k].bytes;
		t[k].retained += u[k].retained;
	}
	return t;
}

/* The leaves' counts, bytes and retained bytes by type (c->tleaf): a
 * leaf dominates nothing, and no instance of its type dominates it (those
 * have no referents either): it retains itself, if a root reaches it. */
static int type_leaves(struct ctx *c)
{
	const struct pyx_refs_graph *g = c->g;

	c->tleaf = sum_types(c->ntypes, g->leaf_type,
			     g->leaf_size, c->lidom, g->nleaf);
	return c->tleaf ? 0 : -PYX_E_NOMEM;
}

/* The nodes' counts and bytes by type, and the retained size of all
 * the nodes of each type (c->tsum; type_rows() adds the leaves'): those
 * no other instance of the type dominates (a depth-first walk of the
 * dominator tree counting, per type, the instances on the current
 * branch). */
static int type_retained(struct ctx *c, struct pyx_suspects *r)
{
	const struct pyx_refs_graph *g = c->g;
	size_t nt = c->ntypes;
	struct tret *t = sum_types(nt, g->type, g->size, NULL, g->n);
	uint32_t *active = calloc(nt ? nt : 1, sizeof(*active));
	uint32_t *snode = pyx_pages_alloc(c->pages, ((size_t)c->d->nreach + 1) *
					  sizeof(*snode));
	uint32_t *scur = pyx_pages_alloc(c->pages, ((size_t)c->d->nreach + 1) *
					 sizeof(*scur));
	size_t sp = 0;
	int err = 0;

	(void)r;
	c->tsum = t;
	if (!t || !active || !snode || !scur) {
		err = -PYX_E_NOMEM;
		goto out;
	}
	for (uint32_t k = c->koff[g->n]; k < c->koff[g->n + 1]; k++) {
		uint32_t v = c->kids[k];

		snode[0] = v;
		scur[0] = c->koff[v];
		sp = 1;
		if (g->type[v] < nt && !active[g->type[v]]++)
			t[g->type[v]].retained += c->d->retained[v];
		while (sp) {
			uint32_t u = snode[sp - 1], w;

			if (scur[sp - 1] >= c->koff[u + 1]) {
				if (g->type[u] < nt)
					active[g->type[u]]--;
				sp--;
				continue;
			}
			w = c->kids[scur[sp - 1]++];
			if (g->type[w] < nt && !active[g->type[w]]++)
				t[g->type[w]].retained += c->d->retained[w];
			snode[sp] = w;
			scur[sp++] = c->koff[w];
		}
	}
out:
	free(active);
	pyx_pages_free(c->pages, scur);
	pyx_pages_free(c->pages, snode);
	return err;
}

/* The types' rows of the report (c->tsum and c->tleaf, both taken). */
static int type_rows(struct ctx *c, struct pyx_suspects *r)
{
	const struct pyx_refs_graph *g = c->g;
	size_t nt = c->ntypes, ntop = 0;
	struct tret *t = c->tsum;

	for (size_t i = 0; i < nt; i++) {
		t[i].type = (uint32_t)i;
		t[i].count += c->tleaf[i].count;
		t[i].bytes += c->tleaf[i].bytes;
		t[i].retained += c->tleaf[i].retained;
	}
	if (nt > 1)
		qsort(t, nt, sizeof(*t), cmp_tret);
	/* every type: rows for the graph's types, no more (a bound of ours,
	 * not the target's) */
	if (c->max_types > nt)
		c->max_types = nt;
	r->types = calloc(c->max_types ? c->max_types : 1, sizeof(*r->types));
	if (!r->types)
		return -PYX_E_NOMEM;
	for (size_t i = 0; i < nt && ntop < c->max_types; i++) {
		struct pyx_suspects_type *y = &r->types[ntop];

		/* a type with no instance; one retaining nothing only when
		 * every type is asked for */
		if (!t[i].count || (!t[i].retained && c->max_types < nt))
			continue;

		if (!(y->name = strdup(pyx_refs_graph_type_name(g, t[i].type))))
			return -PYX_E_NOMEM;
		y->count = t[i].count;
		y->bytes = t[i].bytes;
		y->retained = t[i].retained;
		r->ntypes = ++ntop;
	}
	return 0;
}

/* The leaves under the tree of the nodes: each leaf's dominator, its bytes
 * and count added to that node's own (what the retained sizes need; the
 * rows of leaves by dominator come after, beside them: leaf_rows()). */
static int attach_leaves(struct ctx *c)
{
	const struct pyx_refs_graph *g = c->g;
	size_t n = g->n, nl = g->nleaf;
	int err;

	c->lidom = pyx_pages_alloc(c->pages, nl * sizeof(*c->lidom));
	c->size = pyx_pages_alloc(c->pages, n * sizeof(*c->size));
	c->nleaves = pyx_pages_calloc(c->pages, n, sizeof(*c->nleaves));
	if (!c->lidom || !c->size || !c->nleaves)
		return -PYX_E_NOMEM;
	if ((err = pyx_dom_attach(c->d, g->nleaf, g->leaf_owner, g->leaf_pair,
				  g->nleaf_pair, c->lidom)))
		return err;
	if (n)
		memcpy(c->size, g->size, n * sizeof(*c->size));
	for (size_t l = 0; l < nl; l++) {
		uint32_t v = c->lidom[l];

		if (v == PYX_DOM_NONE) {
			c->lunreached++;
			c->lunreached_bytes += g->leaf_size[l];
			continue;
		}
		if (v == PYX_DOM_ROOT)
			continue;
		c->size[v] += g->leaf_size[l];
		c->nleaves[v]++;
	}
	return 0;
}

/* The rows of leaves by dominator (what holds() reads): a counting sort
 * of lidom, row v from loff[v], the virtual root's row n; and the leaves'
 * sums by type.  Reads lidom, writes only loff, lkid and tleaf. */
static int leaf_rows(struct ctx *c, struct pyx_suspects *r)
{
	const struct pyx_refs_graph *g = c->g;
	size_t n = g->n, nl = g->nleaf;
	int err;

	(void)r;
	c->loff = pyx_pages_calloc(c->pages, n + 3, sizeof(*c->loff));
	c->lkid = pyx_pages_alloc(c->pages, nl * sizeof(*c->lkid));
	if (!c->loff || !c->lkid)
		return -PYX_E_NOMEM;
	/* the leaves' sums by type too (~10 ms on the 5 M heap; this side
	 * of the step was ~7 ms the shorter, the describing step ~14 ms the
	 * shorter without them) */
	if ((err = type_leaves(c)))
		return err;
	for (size_t l = 0; l < nl; l++) {
		uint32_t v = c->lidom[l];

		if (v == PYX_DOM_NONE)
			continue;
		c->loff[(v == PYX_DOM_ROOT ? n : v) + 2]++;
	}
	for (size_t v = 2; v < n + 3; v++)
		c->loff[v] += c->loff[v - 1];
	for (size_t l = 0; l < nl; l++) {
		uint32_t v = c->lidom[l];

		if (v == PYX_DOM_NONE)
			continue;
		if (v == PYX_DOM_ROOT)
			v = (uint32_t)n;
		c->lkid[c->loff[v + 1]++] = (uint32_t)l;
	}
	return 0;
}

/* -v: how long each step took (t: when the last one ended). */
#define phase(what, t) pyx_debug_phase("suspects", what, t)

/* Two steps that share nothing they write, on two threads (jobs > 1) or
 * one after the other; each records its error in its own struct. */
struct step {
	int (*fn)(struct ctx *c, struct pyx_suspects *r);
	struct ctx *c;
	struct pyx_suspects *r;
	struct pyx_share_err e;
};

static void step_run(void *arg)
{
	struct step *t = arg;

	pyx_share_err_keep(&t->e, t->fn(t->c, t->r));
}

static int both(unsigned jobs, struct step *t)
{
	int err;

	if (jobs > 1) {
		pyx_parallel(2, step_run, t, sizeof(*t));
	} else {
		step_run(&t[0]);
		step_run(&t[1]);
	}
	return (err = pyx_share_err_raise(&t[0].e)) ? err :
						      pyx_share_err_raise(&t[1].e);
}

/* The leaves attached to the tree of the nodes (reads idom and order,
 * writes the ctx's lidom, size and nleaves). */
static int step_attach(struct ctx *c, struct pyx_suspects *r)
{
	(void)r;
	return attach_leaves(c);
}

/* The sizes become the retained sizes, in place (reads idom and order,
 * writes d's retained arrays). */
static int step_retain(struct ctx *c, struct pyx_suspects *r)
{
	(void)r;
	pyx_dom_retain_own(c->d, c->size, c->nleaves);
	c->size = NULL;
	c->nleaves = NULL;
	return 0;
}

static int step_dominators(struct ctx *c, struct pyx_suspects *r)
{
	const struct pyx_refs_graph *g = c->g;
	/* the roots the search would find (defer_search) */
	struct pyx_dom_graph dg = { g->n, g->off, g->dst, g->named_root,
				    g->nnamed_roots, g->outside_root,
				    g->noutside_roots };

	(void)r;
	if (!g->named_root) {
		dg.roots = g->root_node;
		dg.nroots = g->nroots;
	}
	return pyx_dom_compute_in(&dg, c->pages, &c->d);
}

/* The arena's pages the rest will not need given back (c->keep). */
static int step_trim(struct ctx *c, struct pyx_suspects *r)
{
	(void)r;
	pyx_pages_trim(c->pages, c->keep);
	return 0;
}

/* The tree as rows (reads idom and order, writes koff and kids), and
 * which dicts are the namespaces' (reads the graph, writes c->owners). */
static int step_tree(struct ctx *c, struct pyx_suspects *r)
{
	int err;

	(void)r;
	if ((err = pyx_dom_children(c->d, &c->koff, &c->kids)))
		return err;
	return find_owners(c);
}

/* The top suspects described: what each holds, its path and holder. */
static int step_describe(struct ctx *c, struct pyx_suspects *r)
{
	const struct pyx_refs_graph *g = c->g;
	int err;

	for (size_t i = 0; i < r->nsuspects; i++) {
		struct pyx_suspect *s = &r->suspects[i];
		uint32_t v = (uint32_t)s->addr;

		s->addr = g->addr[v];
		s->retained_objects = c->d->retained_count[v];
		s->share = r->heap_bytes ? (double)s->retained_bytes /
					   (double)r->heap_bytes : 0;
		if (!(s->type = strdup(pyx_refs_graph_typeinfo(g, v)->name)))
			return -PYX_E_NOMEM;
		if ((err = holds(c, v, s)) || (err = describe_suspect(c, v, s)))
			return err;
	}
	return 0;
}

/* A bound on the bytes this file and the dominators hold in the arena at
 * once, beyond what the graph holds: during pyx_dom_compute_in() (vert,
 * pre, parent, the predecessors and their sorted copy, then semi, label,
 * anc, stack: 28 bytes a node, 16 an edge), or after it (order and idom, 8 a node; the
 * leaf rows and sizes, the tree, attach's pre: 28 a node and 8 a leaf;
 * type_retained()'s stacks, 8 a node, and holds()'s, 4 a node, twice when
 * the first is freed under the former; find()'s queue), each block
 * rounded up to 64 bytes.  Too small costs only speed (malloc beyond). */
static size_t peak_bytes(const struct pyx_refs_graph *g)
{
	uint64_t n = (uint64_t)g->n + 3, dom, after;

	dom = 28 * n + 16 * (g->ne + g->nroots + g->nnamed_roots +
			     g->noutside_roots);
	after = 52 * n + 8 * (uint64_t)g->nleaf +
		MAX_CANDIDATES * sizeof(uint32_t);
	/* 64 bytes a block, a few dozen blocks */
	return (size_t)((dom > after ? dom : after) + (64u << 10));
}

/* Everything after the graph: dominators, retained sizes, the suspects
 * and the types.  Reads the graph, never the target nor its copy (which
 * is released): it can run beside the caller's o->meanwhile. */
static int compute(struct ctx *c, struct pyx_suspects *r)
{
	const struct pyx_refs_graph *g = c->g;
	struct pyx_pages_stats ps;
	uint64_t t = pyx_now_ns();
	int err;

	/* the types' tables' entries: the graph's types (their table grows
	 * no more: labels and descriptions come from the memo now) */
	c->ntypes = pyx_refs_graph_ntypes(g);
	/* what the arena must still hold at most (it reuses what is freed):
	 * the dominators', then what the tree, the retained sizes and the
	 * walks keep at once (see each); the rest of the copy's pages go,
	 * while the dominators run */
	pyx_pages_get_stats(c->pages, &ps);
	c->keep = ps.used + peak_bytes(g);
	{
		struct step st[2] = { { .fn = step_dominators, .c = c, .r = r },
				      { .fn = step_trim, .c = c, .r = r } };

		if ((err = both(c->pages ? c->jobs : 1, st)))
			return err;
	}
	/* the roots, and below what no root reaches, as the dominators see
	 * them (the same as the search: the same roots); the search itself
	 * goes only as far as the report's paths need */
	r->roots = c->d->nroots + g->leaf_roots;
	phase("the dominators", &t);
	/* attach (~45 ms on the 5 M heap) beside the tree's rows and the
	 * namespaces (~47), then the sums up the tree (~28) beside the
	 * leaves' rows and their sums by type (~31) */
	{
		struct step st[2] = { { .fn = step_attach, .c = c, .r = r },
				      { .fn = step_tree, .c = c, .r = r } };

		if ((err = both(c->jobs, st)))
			return err;
	}
	{
		struct step st[2] = { { .fn = step_retain, .c = c, .r = r },
				      { .fn = leaf_rows, .c = c, .r = r } };

		if ((err = both(c->jobs, st)))
			return err;
	}
	r->unreachable = c->d->unreached + c->lunreached;
	r->unreachable_bytes = c->d->unreached_bytes + c->lunreached_bytes;
	/* the tree is in koff/kids from here on */
	pyx_dom_trim(c->d);
	phase("the leaves attached, the retained sizes, the tree", &t);
	c->thr = (uint64_t)(c->share * (double)r->heap_bytes);
	if (!c->thr)
		c->thr = 1;
	if ((err = find(c, r)))
		return err;
	for (size_t i = 0; i < r->nsuspects; i++) {
		uint32_t v = (uint32_t)r->suspects[i].addr;

		r->suspects[i].retained_bytes = c->d->retained[v];
	}
	/* nodes still in addr: sort by size, then describe the top ones */
	if (r->nsuspects > 1)
		qsort(r->suspects, r->nsuspects, sizeof(*r->suspects),
		      cmp_suspect);
	if (r->nsuspects > c->top)
		r->nsuspects = c->top;
	/* The copy is gone (release_copy): describing reads only the graph
	 * and its memo, as the types' walk does. */
	{
		struct step st[2] = { { .fn = step_describe, .c = c, .r = r },
				      { .fn = type_retained, .c = c, .r = r } };

		if (!(err = both(c->jobs, st)))
			err = type_rows(c, r);
	}
	phase("the suspects found and described, the types", &t);
	return err;
}

static int step_meanwhile(struct ctx *c, struct pyx_suspects *r)
{
	return c->o->meanwhile(c->o->meanwhile_arg, r);
}

int pyx_suspects_take(struct pyx_python *py, const struct pyx_suspects_opts *o,
		      struct pyx_suspects **out)
{
	struct pyx_refs_graph_opts go = { .capture = o->capture };
	struct pyx_refs_graph *g = NULL;
	struct pyx_suspects *r;
	struct ctx c = { .max_types = o->types ? o->types : MAX_TYPES, .o = o };
	uint64_t t0;
	int err;

	*out = NULL;
	c.top = o->top ? o->top : DEFAULT_TOP;
	c.share = o->min_share > 0 ? o->min_share : DEFAULT_SHARE;
	c.jobs = pyx_heap_jobs(o->capture.jobs);
	go.leaf_share = c.share;
	/* the labels the report needs are taken before: the copy and the
	 * dominators are never in memory together */
	go.release_copy = true;
	/* the search only as far as the report's paths (compute()) */
	go.defer_search = true;
	if (!(r = calloc(1, sizeof(*r))))
		return -PYX_E_NOMEM;
	r->rss_bytes = -1;
	r->min_share = c.share;
	err = pyx_refs_graph_take(py, &go, &g);
	if (err)
		goto out;
	t0 = pyx_now_ns();
	c.g = g;
	c.search = g;
	c.pages = pyx_refs_graph_pages(g);
	r->pid = g->pid;
	memcpy(r->python_version, g->python_version, sizeof(r->python_version));
	r->pause_ms = g->pause_ms;
	r->copied_bytes = g->copied_bytes;
	r->copy_reads = g->copy_reads;
	r->objects = (uint64_t)g->n + g->nleaf;
	r->edges = g->ne + g->leaf_edges;
	r->inferred_edges = g->inferred_edges;
	r->heap_bytes = g->total_size;
	r->rss_bytes = g->rss_bytes;
	r->garbage = g->garbage;
	r->truncated = g->truncated;
	r->partial = g->partial;
	r->damaged_lists = g->damaged_lists;
	r->bad_objects = g->bad_objects;
	if (o->meanwhile) {
		/* the caller's work with the target on this thread (ptrace
		 * wants the thread that attached), the rest on another */
		struct step st[2] = { { .fn = step_meanwhile, .c = &c, .r = r },
				      { .fn = compute, .c = &c, .r = r } };

		err = both(c.jobs, st);
	} else {
		err = compute(&c, r);
	}
	r->walk_ms = g->build_ms + (double)(pyx_now_ns() - t0) / 1e6;
out:
	pyx_pages_free(c.pages, c.koff);
	pyx_pages_free(c.pages, c.kids);
	free(c.owners);
	free(c.tsum);
	free(c.tleaf);
	pyx_pages_free(c.pages, c.lidom);
	pyx_pages_free(c.pages, c.loff);
	pyx_pages_free(c.pages, c.lkid);
	pyx_pages_free(c.pages, c.size);
	pyx_pages_free(c.pages, c.nleaves);
	pyx_dom_free(c.d);
	pyx_refs_graph_free(g);
	if (err) {
		pyx_suspects_free(r);
		return err;
	}
	*out = r;
	return 0;
}

void pyx_suspects_free(struct pyx_suspects *r)
{
	if (!r)
		return;
	for (size_t i = 0; i < r->nsuspects; i++) {
		struct pyx_suspect *s = &r->suspects[i];

		free(s->type);
		free(s->description);
		pyx_refs_graph_path_free(s->path, s->npath, s->root);
		for (size_t j = 0; j < s->nholds; j++)
			free(s->holds[j].type);
		free(s->holds);
	}
	free(r->suspects);
	for (size_t i = 0; i < r->ntypes; i++)
		free(r->types[i].name);
	free(r->types);
	free(r);
}
