/* Python stacks of every thread of every interpreter.
 *
 * pyx_stacks_collect() stops the target (unless nonblocking), copies what it
 * needs, resumes it, and returns plain data owned by the caller, released
 * with pyx_stacks_free().
 *
 * With opts.native it also unwinds every stopped thread's machine stack
 * (include/pyxray/unwind.h) while the target is stopped, symbolizes it after
 * the target runs again, and merges each thread's native and Python frames
 * into one stack: the Python frames take the place of the native frame of
 * the evaluation loop that runs them.
 */
#ifndef PYXRAY_STACKS_H
#define PYXRAY_STACKS_H

#include <stdbool.h>
#include <stddef.h>

#include "pyxray/common.h"
#include "pyxray/tasks.h"
#include "pyxray/unwind.h"

#ifdef __cplusplus
extern "C" {
#endif

struct pyx_python;

/* One argument or local of a frame (opts.locals), rendered safely: the
 * strings are the target's, unescaped (escape them for any output). */
enum pyx_local_kind {
	PYX_LOCAL_ARG,
	PYX_LOCAL_LOCAL,
	PYX_LOCAL_CELL,
	PYX_LOCAL_FREE,
};
struct pyx_local {
	char *name;
	enum pyx_local_kind kind;
	char *type;  /* type(value).__name__ */
	char *repr;  /* a bounded repr of str, bytes, int, float, bool, None;
			containers as "<list len=3>"; else "<T at 0xADDR>" */
};
/* "arg", "local", "cell", "free". */
const char *pyx_local_kind_name(enum pyx_local_kind k);

struct pyx_frame {
	char *function;     /* co_qualname (3.11+) or co_name */
	char *name;         /* co_name */
	char *file;         /* co_filename */
	int line;           /* -1 if unknown */
	pyx_addr_t code;    /* the code object */
	pyx_addr_t frame;   /* PyFrameObject or _PyInterpreterFrame */
	bool entry;         /* first Python frame of a C call into the eval
			       loop (3.11+: is_entry / after a shim frame) */
	struct pyx_local *locals; /* with opts.locals: bound names only */
	size_t nlocals;
	char *locals_error; /* why locals are missing or cut short, or NULL */
};

/* One frame of a merged stack. */
struct pyx_stack_entry {
	bool native;  /* index is into native[], else into frames[] */
	size_t index;
};

struct pyx_thread {
	uint64_t thread_id;     /* pthread_t, threading.get_ident() */
	int64_t native_id;      /* kernel TID as the host numbers it, -1 if
				   unknown */
	int64_t ns_native_id;   /* the same thread's TID in the target's PID
				   namespace (a container's gettid()); equal
				   to native_id outside containers */
	pyx_addr_t interp;      /* its PyInterpreterState, 0 if none */
	char *name;             /* threading's name, or NULL; for a thread
				   without a thread state, its comm */
	bool holds_gil;
	int64_t interp_id;
	pyx_addr_t tstate;      /* 0: a thread Python does not know (only
				   with native; thread_id is its TLS base) */
	struct pyx_frame *frames; /* innermost first */
	size_t nframes;
	char *error;            /* why the walk stopped early, or NULL */
	/* With opts.native: */
	struct pyx_native_frame *native; /* innermost first, inlined calls
					    included */
	size_t nnative;
	struct pyx_stack_entry *merged; /* every Python frame and every native
					   frame but the evaluation loop's
					   that stand for Python frames */
	size_t nmerged;
	char *native_error;     /* why native frames are missing or cut
				   short, or why they and the Python frames
				   do not pair up; or NULL */
};

struct pyx_stacks {
	struct pyx_thread *threads;
	size_t nthreads;
	double pause_ms;        /* how long the target was kept stopped */
	uint64_t read_syscalls; /* memory reads made */
	int attempts;           /* nonblocking: reads until consistent */
	struct pyx_tasks *tasks; /* with opts.tasks, else NULL */
};

struct pyx_stacks_opts {
	bool nonblocking;   /* read without stopping the target */
	int deadline_ms;    /* max time to stop all threads (default 2000) */
#ifdef PYX_TEST_HOOKS
	int hold_ms;        /* stay stopped this long: test builds only */
#endif
	size_t max_depth;   /* frames per thread (default 4096) */
	bool native;        /* native frames too, and threads without a
			       Python thread state; not with nonblocking */
	bool locals;        /* each frame's arguments and locals */
	bool tasks;         /* every asyncio task (s->tasks) */
};

/* Errors: those of pyx_target_stop(), -PYX_E_BAD_MEMORY (nonblocking reads
 * that never agreed), -PYX_E_EXITED, -PYX_E_USAGE (native and nonblocking).
 * A thread that cannot be unwound (it exited, say) is not an error: its
 * native_error says why. */
int pyx_stacks_collect(struct pyx_python *py, const struct pyx_stacks_opts *o,
		       struct pyx_stacks **out);
void pyx_stacks_free(struct pyx_stacks *s);

#ifdef __cplusplus
}
#endif
#endif
