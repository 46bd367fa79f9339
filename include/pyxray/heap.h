/* The heap as the garbage collector sees it: every object on a GC list.
 *
 * pyx_heap_walk() visits every tracked object of every interpreter: the
 * generations and the permanent generation (gc.freeze()), from the GC state
 * in the runtime (3.8) or in each interpreter (3.9+).  It reads through the
 * memory module, so with a heap snapshot (pyx_mem_snapshot()) it walks a
 * consistent copy while the target runs.  Every list is bounded and checked
 * (each node's _gc_prev must point back at the node before it): a list that
 * is corrupt or cyclic, or that runs into unreadable memory, ends there (it
 * is counted in damaged_lists) and the walk goes on with the next list.
 */
#ifndef PYXRAY_HEAP_H
#define PYXRAY_HEAP_H

#include <stdbool.h>
#include <stdint.h>

#include "pyxray/common.h"

#ifdef __cplusplus
extern "C" {
#endif

struct pyx_python;

/* Where a tracked object was found. */
struct pyx_heap_where {
	int64_t interp_id;
	int generation; /* 0, 1, 2...; ngenerations: the permanent one */
	int ngenerations;
};

/* Return non-zero to stop the walk; a negative value is passed back. */
typedef int (*pyx_heap_fn)(void *ctx, pyx_addr_t obj,
			   const struct pyx_heap_where *where);

struct pyx_heap_stats {
	uint64_t objects;      /* tracked objects visited */
	uint64_t interpreters;
	uint64_t permanent;    /* of which in the permanent generation */
	uint64_t gc_states;    /* distinct GC states walked */
	/* Lists cut short at a link that does not point back, a bad or
	 * unreadable node, or past max_objects (a damaged or changing heap):
	 * the rest of such a list is not visited, the walk goes on with the
	 * next list, and the result is partial. */
	uint64_t damaged_lists;
	/* Of those, lists (or GC states) whose memory a bounded heap copy
	 * left out (--max-copy): cut the same way, and never an error, even
	 * with not one object visited. */
	uint64_t lost_in_copy;
};

/* How many threads a heap copy and walk run on: requested (at most 64),
 * or for 0 the CPUs this process may run on (its CPU set and its cgroup's
 * CPU quota), at least 1 and at most 16.  The one place that resolves a
 * --jobs option. */
unsigned pyx_heap_jobs(unsigned requested);

/* The state of the collector.  -PYX_E_NOT_SUPPORTED (detail says so) if
 * Python is finalizing; *collecting is set if a collection is running (its
 * objects are then on temporary lists: stop again a moment later). */
int pyx_heap_check(struct pyx_python *py, bool *collecting);

/* Visit every tracked object.  max_objects bounds the walk (0: 1 << 32).
 * A damaged list is not an error (stats->damaged_lists), but for a heap of
 * damaged lists only, with not one object visited (-PYX_E_BAD_MEMORY: more
 * likely a layout that does not fit; not when a bounded copy left memory
 * out: stats->lost_in_copy).  Errors: a GC state that cannot be
 * read, -PYX_E_EXITED, and what fn returns. */
int pyx_heap_walk(struct pyx_python *py, uint64_t max_objects, pyx_heap_fn fn,
		  void *ctx, struct pyx_heap_stats *stats);

/* A consistent copy of the heap: stop the target, wait out a running
 * collection (resume, sleep, stop again), copy every private writable
 * mapping, resume.  A target that cannot change (an image; a core) is a
 * consistent snapshot already: nothing is stopped, a collection it was
 * recorded in is -PYX_E_GC_BUSY at once, and only an image is copied (a
 * memcpy that makes the walk's reads zero-copy; a core is walked in
 * place).  Afterwards pyx_mem_read() on the python's memory is
 * served from the copy, so pyx_heap_walk() and every object reader work on
 * it while the target runs.  Shared by the census and refs. */
struct pyx_heap_capture_opts {
	int deadline_ms;   /* stopping the threads (0: 2000) */
	uint64_t max_copy; /* bound on the copy (0: 3/4 of MemAvailable) */
	int retries;       /* stops while the collector runs (0: 20) */
	bool nonblocking;  /* copy without stopping a live target: torn
			      reads are tolerated, the result is partial */
	unsigned jobs;     /* threads that copy and fault in the buffer,
			      and that walk the copy after (census, the
			      object graphs: the same result on any number;
			      0: pyx_heap_jobs(0)) */
#ifdef PYX_TEST_HOOKS
	int hold_ms;       /* test hook: stay stopped this long */
#endif
};
struct pyx_heap_capture_info {
	uint64_t copied_bytes, copy_reads, skipped_bytes;
	uint64_t skipped_mappings; /* mappings the bound left out */
	uint64_t heap_bytes; /* what the walkers read the heap from: the
				copy, or a core's writable memory (which is
				not copied): bounds the walks */
	bool truncated;     /* the bound left mappings out */
	bool nonblocking;   /* copied while the target ran: approximate */
	int attempts;       /* stops made */
	int64_t rss_bytes;  /* the target's RSS while stopped, -1 unknown */
	double time;        /* when the copy was taken (the stop): seconds
			       since the epoch; 0 unknown */
	double buffer_ms;   /* the copy's buffer made ready, the target
			       running (before the stop): mapped and faulted
			       in, or ~0 where an earlier capture's buffer
			       (watch, --interval) is big enough */
};
/* Errors: those of pyx_target_stop(); -PYX_E_EXITED; -PYX_E_NOT_SUPPORTED
 * (finalizing); -PYX_E_GC_BUSY (a collection at every stop);
 * -PYX_E_NOMEM.  The target is running again on every return. */
int pyx_heap_capture(struct pyx_python *py,
		     const struct pyx_heap_capture_opts *o,
		     struct pyx_heap_capture_info *info);

/* The default bound on a heap copy: 3/4 of what the host can give without
 * swapping (MemAvailable); 0 when unknown (no bound). */
uint64_t pyx_heap_default_max_copy(void);

/* Bytes in pymalloc arenas, summed over interpreters; -PYX_E_NOT_SUPPORTED
 * when the layout does not expose them (stripped 3.8-3.11, or
 * PYTHONMALLOC=malloc leaves none: 0). */
int pyx_heap_arena_bytes(struct pyx_python *py, uint64_t *bytes);

#ifdef __cplusplus
}
#endif
#endif
