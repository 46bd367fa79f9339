/* asyncio tasks: every task of every event loop of a target, with its
 * state, its coroutine chain, the future it waits on, the tasks that await
 * it, and the thread whose loop runs it.
 *
 * Collected while the target is stopped, by pyx_stacks_collect() with
 * opts.tasks (include/pyxray/stacks.h): s->tasks.  Found where asyncio keeps
 * them: asyncio.tasks' _all_tasks (3.8-3.11) or _scheduled_tasks and
 * _eager_tasks (3.12+), and from 3.14 each thread's (and the interpreter's)
 * list of C tasks.  Both the C _asyncio.Task and the pure-Python Task.
 */
#ifndef PYXRAY_TASKS_H
#define PYXRAY_TASKS_H

#include <stdbool.h>
#include <stddef.h>

#include "pyxray/common.h"

#ifdef __cplusplus
extern "C" {
#endif

enum pyx_task_state {
	PYX_TASK_PENDING,
	PYX_TASK_CANCELLED,
	PYX_TASK_DONE,
	PYX_TASK_UNKNOWN,
};

/* "pending", "cancelled", "done", "unknown". */
const char *pyx_task_state_name(enum pyx_task_state s);

/* One coroutine (or generator) of a task's await chain. */
struct pyx_coro_frame {
	char *function;   /* co_qualname (3.11+) or co_name */
	char *file;       /* co_filename */
	int line;         /* where it is suspended, 0 if unknown */
};

struct pyx_task {
	pyx_addr_t addr;
	char *name;               /* get_name() */
	enum pyx_task_state state;
	bool python_impl;         /* the pure-Python Task, not _asyncio's */
	struct pyx_coro_frame *stack; /* innermost first: the coroutine the
				     task runs last */
	size_t nstack;
	pyx_addr_t awaiting;      /* the future it waits on (_fut_waiter), 0 */
	char *awaiting_type;      /* its type's name, NULL if none */
	size_t *awaited_by;       /* indexes into pyx_tasks.tasks[] of the
				     tasks that wait on it: through
				     _fut_waiter, gather, TaskGroup, shield */
	size_t nawaited_by;
	pyx_addr_t loop;          /* its event loop */
	bool has_thread;          /* the loop runs in a thread: */
	uint64_t thread_id;       /* its threading.get_ident() */
	char *error;              /* why part of it could not be read */
};

struct pyx_tasks {
	struct pyx_task *tasks;
	size_t n;
	char *error;              /* why the list may be incomplete, or NULL */
	bool asyncio_imported;    /* some interpreter has asyncio.tasks in
				     sys.modules (no task is then no surprise
				     if false) */
};

void pyx_tasks_free(struct pyx_tasks *t);

#ifdef __cplusplus
}
#endif
#endif
