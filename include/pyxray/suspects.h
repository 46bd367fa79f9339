/* What holds the memory: dominators, retained sizes, leak suspects, and
 * heap snapshots for Chrome DevTools (docs/suspects.md).
 *
 * pyx_suspects_take() builds the whole object graph (refs' graph with every
 * object a node: pyx_refs_graph_take()), computes its dominator tree from a
 * virtual root joined to every root, the retained size of every object
 * (what would be freed with it) and reports the accumulation points, as
 * Eclipse MAT defines them: from each object that retains at least
 * min_share of the heap, down the dominator tree while one child holds
 * most of it, past modules, classes, functions and their dicts, to the
 * container whose many children together hold the memory.  The heap copy
 * is released once the roots are found (what the report's labels read of
 * it is taken first), so the dominators never share the memory with it,
 * and the caller's o->meanwhile (cmd: the RSS placement's stop) runs beside
 * them.
 *
 * pyx_heapsnapshot_write() writes the same graph as a V8 .heapsnapshot
 * (the JSON that Chrome DevTools' Memory panel loads).
 */
#ifndef PYXRAY_SUSPECTS_H
#define PYXRAY_SUSPECTS_H

#include <stdbool.h>
#include <stdint.h>

#include "pyxray/common.h"
#include "pyxray/heap.h"
#include "pyxray/refs.h"

#ifdef __cplusplus
extern "C" {
#endif

struct pyx_python;
struct pyx_suspects;

struct pyx_suspects_opts {
	size_t top;        /* suspects kept, biggest first (0: 10) */
	double min_share;  /* of the heap a suspect retains (0: 0.01) */
	size_t types;      /* per-type rows kept, by retained size (0: 20;
			      SIZE_MAX: every type the graph has) */
	struct pyx_heap_capture_opts capture;
	/* Optional: called once the graph is built and the heap copy
	 * released, with r's figures of the graph (pid, pause, objects,
	 * heap_bytes, rss_bytes...; no suspects yet, and roots and
	 * unreachable*, which the computation beside sets, not to be read
	 * before it returns), on the calling thread
	 * while the dominators and the report are computed on another (with
	 * jobs > 1; else before them): the caller's own work with the target,
	 * such as a second stop (none of that computation reads the target).
	 * A negative return is pyx_suspects_take()'s error. */
	int (*meanwhile)(void *arg, const struct pyx_suspects *r);
	void *meanwhile_arg;
};

struct pyx_suspect_hold {
	char *type;
	uint64_t count, bytes;
};

struct pyx_suspect {
	uint64_t retained_bytes, retained_objects;
	double share;              /* of heap_bytes */
	char *type;                /* the holder: the accumulating object */
	pyx_addr_t addr;
	char *description;         /* "class attribute 'registry' of
				      __main__.Handler" */
	struct pyx_refs_step *path; /* shortest path, holder first, as refs */
	size_t npath;
	char *root;
	struct pyx_suspect_hold *holds; /* what it retains, by type, biggest
					   first (itself not included) */
	size_t nholds;
	const char *pattern;       /* a known leak shape, or NULL */
};

struct pyx_suspects_type {
	char *name;
	uint64_t count, bytes;     /* instances, their own sizes */
	uint64_t retained;         /* what all its instances retain */
};

struct pyx_suspects {
	int pid;
	char python_version[32];
	double pause_ms, walk_ms;
	uint64_t copied_bytes, copy_reads;
	uint64_t objects, edges, inferred_edges, roots;
	uint64_t heap_bytes;       /* sys.getsizeof sum of every object */
	uint64_t unreachable, unreachable_bytes; /* no root reaches them */
	int64_t rss_bytes;         /* -1 unknown */
	uint64_t garbage;          /* len(gc.garbage) */
	bool truncated, partial;
	uint64_t damaged_lists, bad_objects;
	double min_share;
	struct pyx_suspect *suspects;
	size_t nsuspects;
	struct pyx_suspects_type *types; /* by retained size, biggest first */
	size_t ntypes;
};

/* Errors: those of pyx_refs_take(). */
int pyx_suspects_take(struct pyx_python *py, const struct pyx_suspects_opts *o,
		      struct pyx_suspects **out);
void pyx_suspects_free(struct pyx_suspects *s);

struct pyx_heapsnapshot_opts {
	struct pyx_heap_capture_opts capture;
};

struct pyx_heapsnapshot_info {
	int pid;
	char python_version[32];
	double pause_ms, walk_ms;
	uint64_t objects;          /* graph nodes (the file has 2 more:
				      the synthetic root and garbage) */
	uint64_t nodes, edges, strings;
	uint64_t weak_edges;       /* weak reference -> referent (in edges) */
	uint64_t self_bytes;       /* sum of the nodes' self sizes */
	uint64_t file_bytes;
	uint64_t id_collisions;    /* ids moved off their hash */
	uint64_t unreachable;
	bool partial;
};

/* Write path atomically (a temporary file renamed).  -PYX_E_IO if it
 * cannot be written; else the errors of pyx_refs_take(). */
int pyx_heapsnapshot_write(struct pyx_python *py,
			   const struct pyx_heapsnapshot_opts *o,
			   const char *path,
			   struct pyx_heapsnapshot_info *info);
/* The snapshot id of an address: what the file gives the object at a
 * (before any collision moved it; info says how many were moved). */
uint32_t pyx_heapsnapshot_id(pyx_addr_t a);
/* The object whose id a snapshot of the heap taken now would give: takes
 * the snapshot's graph (a heap capture) and assigns the ids as the writer
 * does, collisions included.  *addr is 0 when no object has that id (not
 * an error).  Errors: those of pyx_refs_take(). */
int pyx_heapsnapshot_find_id(struct pyx_python *py,
			     const struct pyx_heapsnapshot_opts *o, uint32_t id,
			     pyx_addr_t *addr);

#ifdef __cplusplus
}
#endif
#endif
