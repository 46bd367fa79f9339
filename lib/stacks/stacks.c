/* pyx_stacks_collect: stop, walk, resume. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "native.h"
#include "walk.h"

#define NONBLOCKING_ATTEMPTS 5

void pyx_stacks_free(struct pyx_stacks *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->nthreads; i++) {
		pyx_native_thread_release(&s->threads[i]);
		pyx_thread_release(&s->threads[i]);
	}
	free(s->threads);
	pyx_tasks_free(s->tasks);
	free(s);
}

static void stacks_clear(struct pyx_stacks *s)
{
	for (size_t i = 0; i < s->nthreads; i++) {
		pyx_native_thread_release(&s->threads[i]);
		pyx_thread_release(&s->threads[i]);
	}
	s->nthreads = 0;
	pyx_tasks_free(s->tasks);
	s->tasks = NULL;
}

static bool any_thread_error(const struct pyx_stacks *s)
{
	for (size_t i = 0; i < s->nthreads; i++)
		if (s->threads[i].error)
			return true;
	return false;
}

int pyx_stacks_collect(struct pyx_python *py, const struct pyx_stacks_opts *o,
		       struct pyx_stacks **out)
{
	struct pyx_stacks_opts opts = o ? *o : (struct pyx_stacks_opts){ 0 };
	struct pyx_code_cache *cc = NULL;
	struct pyx_native *nat = NULL;
	struct pyx_stacks *s;
	struct pyx_mem_stats st;
	int err = 0, attempts = opts.nonblocking ? NONBLOCKING_ATTEMPTS : 1;
	uint64_t pause0 = pyx_target_pause_ns(py->tgt);

	*out = NULL;
	if (!opts.deadline_ms)
		opts.deadline_ms = 2000;
	if (!opts.max_depth)
		opts.max_depth = 4096;
	/* Registers and stacks can only be read from stopped threads. */
	if (opts.native && opts.nonblocking)
		return pyx_err_set(PYX_E_USAGE, "native stacks need the target "
				   "stopped: not with nonblocking");
	s = calloc(1, sizeof(*s));
	if (!s || pyx_code_cache_new(&cc)) {
		free(s);
		return -PYX_E_NOMEM;
	}
	/* Set up before the stop, so the pause is only the unwinding. */
	if (opts.native && (err = pyx_native_new(py, &nat))) {
		pyx_code_cache_free(cc);
		free(s);
		return err;
	}
	/* Warm up before the stop: a walk while the target runs fills the
	 * code-object cache (each entry is checked again while stopped) and
	 * faults in our own memory, so the pause is only the reads that
	 * must be consistent. */
	if (!opts.nonblocking) {
		pyx_threads_walk(py, cc, opts.max_depth, false, s);
		pyx_err_clear();
	}
	/* Locals only where they are consistent with the stack: stopped. */
	pyx_code_cache_want_locals(cc, opts.locals);
	for (int a = 0; a < attempts; a++) {
		s->attempts = a + 1;
		stacks_clear(s);
		pyx_mem_invalidate(py->mem);
		if (!opts.nonblocking) {
			if ((err = pyx_target_stop(py->tgt, opts.deadline_ms)))
				break;
#ifdef PYX_TEST_HOOKS
			/* The tests that kill pyxray while it holds a target. */
			if (opts.hold_ms > 0) {
				struct timespec ts = { opts.hold_ms / 1000,
						       (opts.hold_ms % 1000) * 1000000L };

				nanosleep(&ts, NULL);
			}
#endif
		}
		err = pyx_threads_walk(py, cc, opts.max_depth, !opts.nonblocking, s);
		if (!err && opts.tasks)
			err = pyx_tasks_walk(py, cc, s, &s->tasks);
		if (!err && nat)
			err = pyx_native_unwind(nat, s);
		if (!opts.nonblocking)
			pyx_target_resume(py->tgt);
		/* A nonblocking read races the target: read again until a walk
		 * completes without an inconsistency. */
		if (!opts.nonblocking || err == -PYX_E_EXITED ||
		    (!err && !any_thread_error(s)))
			break;
	}
	pyx_mem_invalidate(py->mem);
	pyx_code_cache_free(cc);
	/* The target runs again: names and symbols need not pause it. */
	if (!err)
		pyx_threads_name(py, s);
	pyx_mem_invalidate(py->mem);
	if (!err && nat)
		err = pyx_native_finish(nat, s);
	pyx_native_free(nat);
	pyx_mem_get_stats(py->mem, &st);
	s->read_syscalls = st.syscalls;
	s->pause_ms = (double)(pyx_target_pause_ns(py->tgt) - pause0) / 1e6;
	if (err) {
		pyx_stacks_free(s);
		return err;
	}
	*out = s;
	return 0;
}
