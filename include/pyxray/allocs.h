/* Where the memory was allocated: tracemalloc's traces, read from outside.
 *
 * When the target runs tracemalloc (PYTHONTRACEMALLOC=N, -X tracemalloc=N or
 * tracemalloc.start(N)), every live memory block it tracks has a trace: its
 * size and the traceback (up to N frames) of the code that allocated it.
 * pyx_allocs_take() stops the target, reads every trace of every domain
 * (tracemalloc's own tables: 3.8-3.11 static variables of _tracemalloc.c,
 * found by symbol; 3.12+ _PyRuntime.tracemalloc), resumes it, and returns
 * the traces grouped by traceback.  pyx_allocs_statistics() then groups them
 * as tracemalloc's Snapshot.statistics() does, and pyx_allocs_compare() as
 * Snapshot.compare_to() does.  No code runs in the target.
 *
 * Without tracemalloc, pyx_allocs_sample() estimates where memory grows:
 * it samples the RSS and the Python stacks without stopping the target and
 * charges each change of the RSS to the line that was running.
 *
 * docs/allocs.md describes the tables read in each version, the file
 * format of pyx_allocs_save() and the limits.
 */
#ifndef PYXRAY_ALLOCS_H
#define PYXRAY_ALLOCS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pyxray/common.h"

#ifdef __cplusplus
extern "C" {
#endif

struct pyx_python;

/* One frame of a traceback: the file (the target's co_filename, unescaped:
 * escape it for any output) and the line.  "<unknown>" and line 0 where
 * tracemalloc knew nothing (as tracemalloc itself says). */
struct pyx_allocs_frame {
	const char *file;    /* interned: equal names are equal pointers
				within one struct pyx_allocs */
	uint32_t line;
};

/* The traces that share one traceback. */
struct pyx_allocs_traceback {
	uint64_t bytes, count;
	uint32_t nframe;       /* frames[] kept (at most max_nframe) */
	uint32_t total_nframe; /* frames the stack had (3.9+; else nframe) */
	struct pyx_allocs_frame *frames; /* the most recent call first */
};

struct pyx_allocs_ptr {
	pyx_addr_t ptr;        /* a traced block (domain 0) */
	uint32_t tb;           /* its index in tb[] */
};

struct pyx_allocs {
	int pid;
	char python_version[32];
	double time;           /* when read, seconds since the epoch */
	double pause_ms;       /* how long the target was kept stopped */
	int max_nframe;        /* tracemalloc.get_traceback_limit() */
	uint64_t traced_bytes; /* tracemalloc.get_traced_memory()[0] */
	uint64_t peak_bytes;   /* [1] */
	uint64_t ntraces;      /* traces read */
	uint64_t nbytes;       /* their sizes' sum: traced_bytes when whole */
	uint64_t domain_traces; /* of them, traces of domains other than 0
				   (PyTraceMalloc_Track()) */
	uint64_t skipped;      /* traces not read (damaged entries) */
	bool partial;          /* some table could not be read whole */
	struct pyx_allocs_traceback *tb; /* by first appearance */
	size_t ntb;
	struct pyx_allocs_ptr *ptrs; /* with keep_pointers: sorted by ptr */
	size_t nptrs;
	void *priv;
};

struct pyx_allocs_opts {
	int deadline_ms;       /* to stop the threads (default 2000) */
	bool keep_pointers;    /* keep ptrs[]: pyx_allocs_object_site() */
	uint64_t max_traces;   /* refuse more traces (default 100 million) */
#ifdef PYX_TEST_HOOKS
	int hold_ms;           /* stay stopped this long: test builds only */
#endif
};

/* Whether the target traces now, read without stopping it: *tracing and
 * *max_nframe.  Errors: -PYX_E_NOT_SUPPORTED (a build without the symbols
 * of 3.8-3.11's static tables, detail set), -PYX_E_LAYOUT (a layout
 * without tracemalloc's state), -PYX_E_BAD_MEMORY, -PYX_E_EXITED. */
int pyx_allocs_status(struct pyx_python *py, bool *tracing, int *max_nframe);

/* Read every trace.  Errors: -PYX_E_NOT_SUPPORTED when tracemalloc is not
 * tracing (the detail says how to start it) or the build lacks the
 * symbols; -PYX_E_LAYOUT; those of pyx_target_stop(); -PYX_E_BAD_MEMORY
 * when a table's header cannot be read (a damaged entry further in is
 * skipped and counted: a->skipped, a->partial); -PYX_E_NOMEM. */
int pyx_allocs_take(struct pyx_python *py, const struct pyx_allocs_opts *o,
		    struct pyx_allocs **out);
/* The same without stopping the target: the caller has stopped it, or it
 * cannot change (a core file, an image).  pause_ms is 0. */
int pyx_allocs_read(struct pyx_python *py, const struct pyx_allocs_opts *o,
		    struct pyx_allocs **out);
void pyx_allocs_free(struct pyx_allocs *a);

/* Snapshot.statistics()'s key types. */
enum pyx_allocs_by {
	PYX_ALLOCS_BY_LINENO,    /* the most recent frame: file and line */
	PYX_ALLOCS_BY_FILENAME,  /* its file (line 0) */
	PYX_ALLOCS_BY_TRACEBACK, /* the whole traceback */
};
/* "lineno", "filename", "traceback" -> *by; -1 if none. */
int pyx_allocs_by_parse(const char *s, enum pyx_allocs_by *by);

struct pyx_allocs_stat {
	const char *file;      /* NULL for an empty traceback */
	uint32_t line;         /* 0 with BY_FILENAME */
	uint64_t bytes, count;
	const struct pyx_allocs_traceback *tb; /* BY_TRACEBACK: its frames;
						  else one of the group */
	/* pyx_allocs_compare(): the change since the older one */
	int64_t dbytes, dcount;
};

/* The statistics, sorted as Snapshot.statistics() sorts them: size, then
 * count, biggest first (then by file and line).  *out is malloc'ed;
 * pointers into a stay valid while a lives. */
int pyx_allocs_statistics(const struct pyx_allocs *a, enum pyx_allocs_by by,
			  struct pyx_allocs_stat **out, size_t *n);
/* Snapshot.compare_to(old, by): every group of now and of old, with its
 * size and count now (0 if gone) and their changes, sorted by |size
 * change|, size, |count change|, count, biggest first. */
int pyx_allocs_compare(const struct pyx_allocs *now,
		       const struct pyx_allocs *old, enum pyx_allocs_by by,
		       struct pyx_allocs_stat **out, size_t *n);

/* Save every traceback with its sizes (any grouping can be computed from
 * the file) to path, atomically.  -PYX_E_IO. */
int pyx_allocs_save(const struct pyx_allocs *a, const char *path);
/* Load a file pyx_allocs_save() wrote.  -PYX_E_IO, -PYX_E_FORMAT (not
 * such a file, or damaged: the detail says where), -PYX_E_NOMEM. */
int pyx_allocs_load(const char *path, struct pyx_allocs **out);
/* Whether path starts as pyx_allocs_save()'s files do. */
bool pyx_allocs_file_is(const char *path);

/* The traceback of the block that holds the object at obj (tracemalloc's
 * own rule: the object's address less its GC and pre-header words), from
 * a taken with keep_pointers; NULL if none is traced there. */
const struct pyx_allocs_traceback *
pyx_allocs_object_site(struct pyx_python *py, const struct pyx_allocs *a,
		       pyx_addr_t obj);

/* ---- without tracemalloc: sampling ------------------------------------ */

struct pyx_allocs_sample_line {
	char *file, *function;
	int line;
	int64_t grew;          /* RSS increases charged to it */
	int64_t shrank;        /* RSS decreases (negative or 0) */
	uint64_t samples;      /* samples that saw it running */
};

struct pyx_allocs_sampled {
	int pid;
	char python_version[32];
	double seconds;        /* how long it sampled */
	double interval_ms;    /* the period asked for */
	uint64_t samples;      /* samples taken (stacks and RSS read) */
	uint64_t failed;       /* stack reads that never agreed */
	uint64_t idle;         /* samples with no Python line running */
	int64_t rss_first, rss_last; /* bytes */
	int64_t idle_grew;     /* growth while no Python line ran */
	struct pyx_allocs_sample_line *lines; /* by growth, biggest first */
	size_t nlines;
};

/* Sample for seconds, every interval_ms (default 5), without stopping the
 * target: its RSS and the innermost Python frame of the thread holding
 * the GIL (or of every thread that runs Python, when none holds it).  The
 * change of the RSS since the previous sample is charged to the line that
 * runs now.  An estimate: what happens between two samples is charged to
 * what runs at the second.  Errors: -PYX_E_NOT_SUPPORTED (no RSS),
 * -PYX_E_EXITED (gone before the first sample), -PYX_E_NOMEM. */
int pyx_allocs_sample(struct pyx_python *py, double seconds,
		      double interval_ms, struct pyx_allocs_sampled **out);
void pyx_allocs_sampled_free(struct pyx_allocs_sampled *s);

#ifdef __cplusplus
}
#endif
#endif
