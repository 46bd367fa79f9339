/* Coroutines, generators and asyncio's tasks and futures, as the target
 * holds them: what the task walker (lib/stacks/tasks.c) needs to know of a
 * version.  The C Task and Future of _asyncio (TaskObj, FutureObj) are
 * described by the layout (PYX_L_TASK_*, PYX_L_FUT_*: _asyncio's DWARF, or
 * the version's built-in table); the pure-Python ones by their attributes.
 *
 * Library-private.
 */
#ifndef PYX_ASYNCIO_H
#define PYX_ASYNCIO_H

#include <stdbool.h>
#include <stdint.h>

#include "reader.h"

/* What a suspended generator, coroutine or async generator is doing. */
struct pyx_gen_info {
	pyx_addr_t frame;    /* its frame (PyFrameObject to 3.10, the embedded
				_PyInterpreterFrame from 3.11), 0 if it has
				finished */
	pyx_addr_t delegate; /* what it awaits or yields from (cr_await,
				gi_yieldfrom), 0 if none */
};
/* The caller has checked gen is a generator, coroutine or async generator. */
int pyx_gen_inspect(struct pyx_python *py, pyx_addr_t gen,
		    struct pyx_gen_info *gi);

/* What kind of awaitable an object is, by the names of its type and bases
 * (a hostile target can name a type anything: every read that follows is
 * checked as for any object). */
enum pyx_aw_kind {
	PYX_AW_OTHER,
	PYX_AW_C_TASK,     /* _asyncio.Task or a subclass */
	PYX_AW_PY_TASK,    /* asyncio.tasks.Task (pure Python) or a subclass */
	PYX_AW_C_FUTURE,   /* _asyncio.Future or a subclass (gather's) */
	PYX_AW_PY_FUTURE,  /* asyncio.futures.Future (pure Python) ... */
	PYX_AW_CORO,       /* coroutine */
	PYX_AW_GEN,        /* generator */
	PYX_AW_ASYNC_GEN,  /* async_generator */
	PYX_AW_ASEND,      /* async_generator_asend: its generator */
	PYX_AW_CORO_WRAPPER, /* coroutine_wrapper (coro.__await__()) */
	PYX_AW_FUTURE_ITER,  /* _asyncio.FutureIter: its future */
};

static inline bool pyx_aw_is_task(enum pyx_aw_kind k)
{
	return k == PYX_AW_C_TASK || k == PYX_AW_PY_TASK;
}

static inline bool pyx_aw_is_future(enum pyx_aw_kind k)
{
	return k == PYX_AW_C_TASK || k == PYX_AW_PY_TASK ||
	       k == PYX_AW_C_FUTURE || k == PYX_AW_PY_FUTURE;
}

/* The kind of a type (an object's ob_type); names[] gets the most derived
 * type's name ("_GatheringFuture"), for messages. */
int pyx_aw_kind_of_type(struct pyx_python *py, pyx_addr_t type,
			enum pyx_aw_kind *kind, char *name, size_t n);
/* Whether type or one of its bases is named name (tp_name, the part after
 * the last dot for static types). */
bool pyx_type_named(struct pyx_python *py, pyx_addr_t type, const char *name);

enum pyx_fut_state {
	PYX_FUT_PENDING,
	PYX_FUT_CANCELLED,
	PYX_FUT_FINISHED,
	PYX_FUT_UNKNOWN,
};

/* A future or task (kind from pyx_aw_kind_of_type). */
struct pyx_fut_info {
	enum pyx_fut_state state;
	pyx_addr_t loop;
	pyx_addr_t callback0;   /* C futures: the first callback, inline */
	pyx_addr_t callbacks;   /* a list of (callback, context) tuples, 0 */
	pyx_addr_t awaited_by;  /* 3.14+ C: a task, or a set of them, 0 */
	bool awaited_by_is_set;
	/* tasks: */
	pyx_addr_t coro;
	pyx_addr_t waiter;      /* _fut_waiter: the future it waits on */
	pyx_addr_t name;        /* a str; 3.13+ C tasks: an int N for
				   "Task-N" until the name is asked for */
};
int pyx_fut_read(struct pyx_python *py, pyx_addr_t obj, enum pyx_aw_kind kind,
		 struct pyx_fut_info *fi);

/* Fill the layout's _asyncio entries (TaskObj, FutureObj) where the build's
 * DWARF had none (pyenv: they are in _asyncio.so's): from the built-in table
 * of the same minor version (TaskObj is the same in every build of one).
 * Idempotent.  -PYX_E_LAYOUT if no table has them. */
int pyx_asyncio_layout(struct pyx_python *py);

/* A tuple's or list's items: at most max, into items; *n their count
 * (which may exceed max: only max are copied). */
int pyx_seq_items(struct pyx_python *py, pyx_addr_t seq, pyx_addr_t *items,
		  size_t max, size_t *n);
/* A set's or frozenset's keys (dummies skipped), at most max. */
int pyx_set_keys(struct pyx_python *py, pyx_addr_t set, pyx_addr_t *keys,
		 size_t max, size_t *n);

#endif
