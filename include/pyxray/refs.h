/* Who keeps objects alive: retention paths from the roots to the targets.
 *
 * pyx_refs_take() stops the target, copies its heap (as the census does),
 * resumes it, and then, on the copy, builds the object graph of every
 * GC-tracked object (labelled edges, object indices, compressed rows),
 * finds the roots (sys.modules, the sys and builtins dicts, every thread's
 * frames and their locals, then whatever is held from outside the heap:
 * refcount above the references the graph explains), runs a breadth-first
 * search from them, and groups the targets by the shape of their shortest
 * path: the sequence of (holder type, edge label).  Targets no root reaches
 * are garbage awaiting collection.
 *
 * Memory, besides the heap copy: a node takes 20 bytes (address, type id,
 * its row's offset) and 4 more for a tracked one (its refcount; the whole
 * graph on a live copy keeps it in the copy instead, in the _gc_prev word
 * of the object's GC header, which the walk has read), an edge 9 (target
 * id, kind, label: a number, or the index of a key's address or a name in
 * a table of the distinct ones), a leaf of the whole graph 12 (type, first
 * referrer, size) and another referrer 8; the search 14 a node (parent,
 * parent edge, depth) and a queue of 4 a node while it runs; the whole
 * graph 4 a node more (sizes), 8 once the copy is released.  A node is
 * found by its id, written in its copied ob_refcnt with 16 bits of its
 * address (no address table).  On the 5 M heap (5.0 M tracked objects,
 * 628 MiB copied): refs peaks at 904 MiB for 5.0 M nodes and 6.4 M edges;
 * suspects (release_copy) at 900 MiB, the copy and the graph of 9.5 M
 * objects and 14.4 M references as the threads' shares are merged.  The
 * copy's pages, once released, hold what suspects allocates after (the
 * search, the dominators, the report: lib/heap/pages.h), not fresh ones.
 *
 * The whole graph's rows (pyx_refs_graph_take()) are read on the threads
 * of capture.jobs, in shares of consecutive rows: the same graph on any
 * number of threads (node ids, edges, labels: docs/refs.md).
 */
#ifndef PYXRAY_REFS_H
#define PYXRAY_REFS_H

#include <stdbool.h>
#include <stdint.h>

#include "pyxray/common.h"
#include "pyxray/heap.h"

#ifdef __cplusplus
extern "C" {
#endif

struct pyx_python;

struct pyx_refs_opts {
	const char *type_name;  /* targets: every object of this type... */
	pyx_addr_t addr;        /* ...or this one object */
	int max_depth;          /* longest path searched (default 64) */
	size_t max_groups;      /* groups kept, biggest first (default 10) */
	size_t max_referrers;   /* direct referrers listed (default 100) */
	/* Also what the targets retain (the dominator tree of the whole
	 * graph, as pyx_suspects_take() has it): every object is a node,
	 * which costs the memory and time of suspects. */
	bool retained;
	struct pyx_heap_capture_opts capture; /* stop, copy, resume */
};

/* One edge of a path, holder first: "<edge> of <holder>". */
struct pyx_refs_step {
	char *type;       /* the holder's type name */
	char *holder;     /* "module __main__", "class __main__.Handler" */
	char *edge;       /* "dict value [<int key>]", "local 'big'" */
	pyx_addr_t addr;  /* the holder */
	bool inferred;    /* a word of an unknown type that points at it */
};

struct pyx_refs_group {
	uint64_t count, bytes;
	pyx_addr_t example;     /* one target of the group */
	struct pyx_refs_step *path; /* from the target's holder to the root */
	size_t npath;
	char *root;             /* what holds the last holder */
	bool inferred;          /* some edge of the path is inferred */
	/* With opts.retained: what the group's targets keep alive, the union
	 * of the subtrees they dominate (each object once; the targets'
	 * own bytes included). */
	uint64_t retained_bytes, retained_objects;
};

struct pyx_refs_referrer {
	pyx_addr_t addr;
	char *type;
	char *edge;
	bool inferred;
};

struct pyx_refs {
	int pid;
	char python_version[32];
	char target[256];        /* the type name, or the address */
	double pause_ms, walk_ms;
	uint64_t copied_bytes, copy_reads;
	uint64_t heap_bytes;     /* the heap walked: the copy, or a core's
				    writable memory (not copied) */
	bool truncated;
	bool partial;            /* some of the heap could not be read:
				    truncated, damaged_lists or bad_objects;
				    paths may be missing */
	uint64_t damaged_lists;  /* GC lists cut short at a bad link: the
				    objects after it are not in the graph */
	uint64_t bad_objects;    /* damaged objects: not objects, or whose
				    referents could not be read (no edges) */
	uint64_t objects, edges, inferred_edges, roots;
	uint64_t targets, target_bytes;
	uint64_t unreachable, unreachable_bytes; /* no root reaches them */
	uint64_t too_deep;       /* reached only past max_depth */
	bool retained;           /* opts.retained: the retained_* are set */
	uint64_t retained_bytes, retained_objects; /* by all the targets
				    (each object once) */
	double retained_ms;      /* the dominators (in walk_ms) */
	struct pyx_refs_group *groups; /* biggest first */
	size_t ngroups, ngroups_total;
	struct pyx_refs_referrer *referrers; /* of the targets (--addr) */
	size_t nreferrers;
	uint64_t garbage;        /* len(gc.garbage) */
	char **garbage_types;    /* the types of its first few objects */
	size_t ngarbage_types;
	bool unknown_type;       /* no object has type_name: see suggestions */
	char **suggestions;      /* close type names in the heap */
	size_t nsuggestions;
};

/* A damaged heap is not an error: the graph holds what could be read, and
 * the result says it is partial.  Errors: those of the census (stop, copy,
 * no GC list that can be followed);
 * -PYX_E_USAGE if addr is not an object pyxray found.  An unknown type is
 * not an error: r->unknown_type is set with suggestions. */
int pyx_refs_take(struct pyx_python *py, const struct pyx_refs_opts *o,
		  struct pyx_refs **out);
void pyx_refs_free(struct pyx_refs *r);

/* Levenshtein distance, bounded: for "did you mean" (unit-tested). */
size_t pyx_refs_distance(const char *a, const char *b, size_t max);

/*
 * The whole object graph, for dominators, retained sizes, leak suspects and
 * heap snapshots (docs/suspects.md).  The same graph as pyx_refs_take()'s
 * (same roots, same labelled edges, weak references never followed), but
 * every object is a node: the GC-tracked ones first, then every object they
 * refer to (str, int, bytes, untracked tuples and dicts...), each once, with
 * its sys.getsizeof size.  The heap copy stays alive until
 * pyx_refs_graph_free() (labels and descriptions read from it), or with
 * release_copy until the roots are found.
 */
struct pyx_typeinfo;

struct pyx_refs_graph_opts {
	struct pyx_heap_capture_opts capture; /* stop, copy, resume */
	/* 0: every object is a node (heap snapshots).  Else objects with
	 * no referents (str, bytes, bytearray, int, float) smaller than
	 * leaf_share / 2 of the tracked objects' bytes are leaves, no
	 * nodes: for suspects, whose min_share it is (no leaf can be a
	 * suspect); nearly halves the nodes. */
	double leaf_share;
	/* The copy released once the roots are found, before the search and
	 * all that follows (suspects: the copy and the dominators are never
	 * in memory together; its pages, faulted in already, are recycled
	 * for what is allocated after: lib/heap/pages.h).  What labels
	 * and descriptions read of it is taken first:
	 * pyx_refs_graph_label(), _describe() and _path() give the same
	 * text; pyx_refs_graph_str() fails and _find() is slow (a scan).
	 * Nothing reads the target's memory afterwards. */
	bool release_copy;
	/* With release_copy: the search (its shortest paths, the roots held
	 * from outside) left to pyx_refs_graph_search_to(), which runs only
	 * as much of it as a node's path needs (suspects: the dominators
	 * need only the roots, which named_root and outside_root give);
	 * nroots, root_node and unreachable* stay unset, and parent and
	 * pedge fill in as the search goes. */
	bool defer_search;
};

#define PYX_REFS_GRAPH_NONE UINT32_MAX
#define PYX_REFS_GRAPH_ROOT (UINT32_MAX - 1) /* leaf_owner of a root */

struct pyx_refs_graph {
	int pid;
	char python_version[32];
	double pause_ms, build_ms;
	uint64_t copied_bytes, copy_reads, heap_bytes;
	int64_t rss_bytes;       /* the target's RSS while stopped, -1 */
	bool truncated, partial;
	uint64_t damaged_lists, bad_objects;
	uint32_t n;              /* nodes */
	uint32_t ntracked;       /* the first ntracked are on GC lists */
	const pyx_addr_t *addr;
	const uint32_t *type;    /* type id: pyx_refs_graph_typeinfo() */
	const uint64_t *size;    /* sys.getsizeof */
	uint64_t total_size;     /* their sum */
	uint64_t ne, inferred_edges;
	const uint64_t *off;     /* out-edges of v: [off[v], off[v + 1]) */
	const uint32_t *dst;
	const uint8_t *kind;     /* lib/heap/referents.h's enum pyx_ref_kind */
	const uint32_t *aux;     /* by kind: an item's index (a key or a
				    name: an index of refs.c's; read the
				    edge with pyx_refs_graph_label()) */
	/* The roots (refs' order of kinds; "held from outside" last), and the
	 * shortest path to every node: parent[v] (v itself for a root,
	 * PYX_REFS_GRAPH_NONE when no root reaches v) over edge pedge[v]. */
	uint32_t nroots;
	const uint32_t *root_node;
	const uint32_t *parent;
	const uint64_t *pedge;
	uint64_t unreachable, unreachable_bytes;
	/* defer_search: the named roots (sys.modules...), and the objects
	 * held from outside the Python heap, each a root if no named root
	 * reaches it (node order) */
	uint32_t nnamed_roots, noutside_roots;
	const uint32_t *named_root, *outside_root;
	uint64_t garbage;        /* len(gc.garbage) */
	/* Leaves (leaf_share): no node, no edge, but counted in total_size
	 * and unreachable.  Leaf l's first referrer is leaf_owner[l]
	 * (PYX_REFS_GRAPH_ROOT when l is a root); its other referrers are
	 * the pairs (leaf_pair[2i] = l, leaf_pair[2i + 1] = node). */
	uint32_t nleaf;
	const uint32_t *leaf_type;
	const uint64_t *leaf_size;
	const uint32_t *leaf_owner;
	const uint32_t *leaf_pair;
	uint64_t nleaf_pair;
	uint64_t leaf_edges;     /* references to leaves (not in ne) */
	uint64_t leaf_roots;     /* leaves that are roots (not in nroots) */
	void *priv;
};

/* Errors: those of pyx_refs_take(). */
int pyx_refs_graph_take(struct pyx_python *py,
			const struct pyx_refs_graph_opts *o,
			struct pyx_refs_graph **out);
void pyx_refs_graph_free(struct pyx_refs_graph *g);
/* With defer_search (else nothing): only as much of the search as gives
 * node v its parent (and every node on its path): parent and pedge hold,
 * for every node they give, what the whole search gives;
 * PYX_REFS_GRAPH_NONE for v once the search is over means no root
 * reaches it.  One thread at a time.  -PYX_E_NOMEM or 0. */
int pyx_refs_graph_search_to(struct pyx_refs_graph *g, uint32_t v);
/* The facts of node v's type (name, kind); valid until the graph is freed. */
const struct pyx_typeinfo *pyx_refs_graph_typeinfo(const struct pyx_refs_graph *g,
						   uint32_t v);
size_t pyx_refs_graph_ntypes(const struct pyx_refs_graph *g);
const char *pyx_refs_graph_type_name(const struct pyx_refs_graph *g,
				     uint32_t type_id);
/* Whether an edge of this kind keeps in aux an index of refs.c's table
 * of keys and names (its number follows the order the labels were met),
 * not a value of the edge's own (an item's index). */
bool pyx_refs_graph_aux_is_table(uint8_t kind);
/* Edge e (out of src) as refs labels it: "dict value ['k']", "item [3]". */
void pyx_refs_graph_label(const struct pyx_refs_graph *g, uint32_t src,
			  uint64_t e, char *buf, size_t n);
/* "module __main__", "class __main__.Handler", "function f", "dict". */
void pyx_refs_graph_describe(const struct pyx_refs_graph *g, uint32_t v,
			     char *buf, size_t n);
/* What holds root v ("sys.modules"), NULL if v is no root. */
const char *pyx_refs_graph_root_desc(const struct pyx_refs_graph *g,
				     uint32_t v);
/* The node at addr, PYX_REFS_GRAPH_NONE if none. */
uint32_t pyx_refs_graph_find(const struct pyx_refs_graph *g, pyx_addr_t a);
/* The shortest path from a root to v, as refs prints it (holder first):
 * *path (npath steps) and *root; free with pyx_refs_graph_path_free(). */
int pyx_refs_graph_path(const struct pyx_refs_graph *g, uint32_t v,
			struct pyx_refs_step **path, size_t *npath,
			char **root);
void pyx_refs_graph_path_free(struct pyx_refs_step *path, size_t npath,
			      char *root);
/* A str object's text (escaped by the caller), 0 or an error. */
int pyx_refs_graph_str(const struct pyx_refs_graph *g, pyx_addr_t a,
		       char *buf, size_t n);

#ifdef __cplusplus
}
#endif
#endif
