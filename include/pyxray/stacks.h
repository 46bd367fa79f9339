/* Python stacks of every thread of every interpreter.
 *
 * pyx_stacks_collect() stops the target (unless nonblocking), copies what it
 * needs, resumes it, and returns plain data owned by the caller, released
 * with pyx_stacks_free().
 */
#ifndef PYXRAY_STACKS_H
#define PYXRAY_STACKS_H

#include <stdbool.h>
#include <stddef.h>

#include "pyxray/common.h"

#ifdef __cplusplus
extern "C" {
#endif

struct pyx_python;

struct pyx_frame {
	char *function;     /* co_qualname (3.11+) or co_name */
	char *name;         /* co_name */
	char *file;         /* co_filename */
	int line;           /* -1 if unknown */
	pyx_addr_t code;    /* the code object */
	pyx_addr_t frame;   /* PyFrameObject or _PyInterpreterFrame */
	bool entry;         /* first Python frame of a C call into the eval
			       loop (3.11+: is_entry / after a shim frame) */
};

struct pyx_thread {
	uint64_t thread_id;     /* pthread_t, threading.get_ident() */
	int64_t native_id;      /* kernel TID, -1 if unknown */
	char *name;             /* threading's name, or NULL */
	bool holds_gil;
	int64_t interp_id;
	pyx_addr_t tstate;
	struct pyx_frame *frames; /* innermost first */
	size_t nframes;
	char *error;            /* why the walk stopped early, or NULL */
};

struct pyx_stacks {
	struct pyx_thread *threads;
	size_t nthreads;
	double pause_ms;        /* how long the target was kept stopped */
	uint64_t read_syscalls; /* memory reads made */
	int attempts;           /* nonblocking: reads until consistent */
};

struct pyx_stacks_opts {
	bool nonblocking;   /* read without stopping the target */
	int deadline_ms;    /* max time to stop all threads (default 2000) */
	int hold_ms;        /* test hook: stay stopped this long */
	size_t max_depth;   /* frames per thread (default 4096) */
};

/* Errors: those of pyx_proc_stop(), -PYX_E_BAD_MEMORY (nonblocking reads
 * that never agreed), -PYX_E_EXITED. */
int pyx_stacks_collect(struct pyx_python *py, const struct pyx_stacks_opts *o,
		       struct pyx_stacks **out);
void pyx_stacks_free(struct pyx_stacks *s);

#ifdef __cplusplus
}
#endif
#endif
