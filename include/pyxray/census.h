/* A heap census: objects by type, with counts and sys.getsizeof sizes.
 *
 * pyx_census_take() stops the target, copies its writable memory in a few
 * large reads (pyx_mem_snapshot()), resumes it, and then walks the copy:
 * every object on a GC list (tracked), and every object those refer to that
 * the collector does not track (reached: str, int, float, bytes, untracked
 * tuples and dicts...), each counted once.  The result is plain data; it can
 * be saved to and loaded from a .pxh file (docs/snapshot-format.md) and two
 * censuses compared with pyx_census_delta().
 */
#ifndef PYXRAY_CENSUS_H
#define PYXRAY_CENSUS_H

#include <stdbool.h>
#include <stdint.h>

#include "pyxray/common.h"
#include "pyxray/heap.h"

#ifdef __cplusplus
extern "C" {
#endif

struct pyx_python;

struct pyx_census_type {
	char *name;             /* "dict", "__main__.Session" */
	uint64_t count, bytes;  /* tracked + reached */
	uint64_t tracked, tracked_bytes;
	uint64_t reached, reached_bytes;
};

struct pyx_census {
	int pid;
	char python_version[32];
	char python_binary[4096];
	double time;            /* Unix time of the census */
	double pause_ms;        /* how long the target was stopped */
	double walk_ms;         /* the walk over the copy, target running */
	double buffer_ms;       /* the copy's buffer faulted in, before the
				   stop (pyx_heap_capture_info) */
	uint64_t gc_objects, gc_bytes;           /* tracked */
	uint64_t reached_objects, reached_bytes; /* reached from them */
	uint64_t objects, bytes;                 /* both */
	int64_t rss_bytes;      /* VmRSS, -1 unknown */
	int64_t arena_bytes;    /* pymalloc arenas, -1 unknown */
	uint64_t copied_bytes;  /* heap copy */
	uint64_t heap_bytes;    /* the heap walked: the copy, or a core's
				   writable memory (not copied) */
	uint64_t copy_reads;    /* read system calls for it */
	bool truncated;         /* the copy hit its bound: counts are partial */
	bool nonblocking;       /* copied while the target ran (no pause):
				   counts approximate, partial */
	bool tracked_only;      /* untracked objects were not counted */
	uint64_t skipped_bytes; /* writable memory not copied */
	uint64_t interpreters;
	uint64_t permanent;     /* tracked objects frozen by gc.freeze() */
	uint64_t bad_objects;   /* damaged objects: tracked ones, and reached
				   containers, that did not read as their type
				   says (counted with their type's basic size,
				   their referents skipped) */
	uint64_t bad_refs;      /* referents that were not objects */
	uint64_t damaged_lists; /* GC lists cut short at a bad link: the
				   objects after it were not counted */
	bool partial;           /* some of the heap could not be read:
				   truncated, damaged_lists or bad_objects */
	int attempts;           /* stops needed (the collector was running) */
	unsigned jobs;          /* threads that counted (1 on a core file, or
				   a small heap by default) */
	struct pyx_census_type *types;
	size_t ntypes;
};

struct pyx_census_opts {
	struct pyx_heap_capture_opts capture; /* stop, copy, resume */
	bool tracked_only;      /* skip the untracked objects (faster) */
};

/* A damaged heap is not an error: what can be read is counted, and the
 * result says it is partial.  Errors: those of pyx_heap_capture()
 * (pyx_target_stop()'s; -PYX_E_EXITED; -PYX_E_NOT_SUPPORTED if Python is
 * finalizing; -PYX_E_GC_BUSY if a collection was running at every
 * attempt); -PYX_E_BAD_MEMORY if no GC list can be followed at all (a
 * layout that does not fit); -PYX_E_NOMEM. */
int pyx_census_take(struct pyx_python *py, const struct pyx_census_opts *o,
		    struct pyx_census **out);
void pyx_census_free(struct pyx_census *c);

enum pyx_census_sort {
	PYX_CENSUS_BY_BYTES,
	PYX_CENSUS_BY_COUNT,
	PYX_CENSUS_BY_NAME,
};
void pyx_census_sort(struct pyx_census *c, enum pyx_census_sort by);

/* .pxh files: save is atomic (a temporary file renamed).  Load refuses a
 * file that is not a snapshot, is of another format version, or is
 * corrupt (-PYX_E_FORMAT, detail says where).  Version 1 files (before
 * the partial mark) load with partial = truncated and no damage counts. */
int pyx_census_save(const struct pyx_census *c, const char *path);
int pyx_census_load(const char *path, struct pyx_census **out);

/* Growth from a to b, per type name. */
struct pyx_census_change {
	const char *name;       /* borrowed from a or b */
	uint64_t count, bytes;  /* in b */
	int64_t dcount, dbytes; /* b - a */
};
struct pyx_census_delta {
	struct pyx_census_change *types;
	size_t ntypes;          /* types whose count or bytes changed */
	int64_t dobjects, dbytes, dgc_objects, drss_bytes;
};
/* Sorted by growth, largest first (count or bytes).  -PYX_E_UNSUPPORTED_
 * VERSION if a and b come from different Python versions. */
int pyx_census_delta(const struct pyx_census *a, const struct pyx_census *b,
		     enum pyx_census_sort by, struct pyx_census_delta **out);
void pyx_census_delta_free(struct pyx_census_delta *d);

#ifdef __cplusplus
}
#endif
#endif
