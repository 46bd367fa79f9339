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

#ifdef __cplusplus
}
#endif
#endif
