/* Library-private helpers shared by the modules in lib/. */
#ifndef PYX_INTERNAL_H
#define PYX_INTERNAL_H

#include <stdbool.h>

#include "pyxray/common.h"
#include "pyxray/error.h"

void pyx_print(enum pyx_print_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#define pyx_warn(...) pyx_print(PYX_WARN, __VA_ARGS__)
#define pyx_info(...) pyx_print(PYX_INFO, __VA_ARGS__)
#define pyx_debug(...) pyx_print(PYX_DEBUG, __VA_ARGS__)
/* -v: "who: what in N ms (peak M MiB)", the time since *t (set to now)
 * and the process's peak RSS so far: a walk's steps, each measured. */
void pyx_debug_phase(const char *who, const char *what, uint64_t *t);

#define PYX_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* Fork-join (lib/thread.c): fn(args + i * size) for each i in [0, n), at
 * most PYX_PARALLEL_MAX, i = 0 on the calling thread and the others on
 * threads of their own that block every signal (pyxray's handlers, which
 * resume the target, stay on the main thread); returns when all are done.
 * A share whose thread cannot be created runs on the caller, after its own:
 * the work is always done, only less in parallel.  fn must not fail
 * silently: it records its error in its own args. */
#define PYX_PARALLEL_MAX 64
void pyx_parallel(unsigned n, void (*fn)(void *), void *args, size_t size);
/* The error of a share run on another thread, with its detail (which is
 * per thread: pyx_err_detail() on the caller's would not have it).
 * pyx_share_err_keep(e, err) in the share records a negative err (the first
 * one kept) and returns err; pyx_share_err_raise(e) on the caller's thread
 * sets it as the caller's error and returns it (0: none). */
struct pyx_share_err {
	int err;
	char detail[512]; /* the size of pyx_err_detail()'s */
};
int pyx_share_err_keep(struct pyx_share_err *e, int err);
int pyx_share_err_raise(const struct pyx_share_err *e);
/* How many threads a job gets: requested (at most PYX_PARALLEL_MAX), or
 * with 0 the CPUs this process may run on (its CPU set, and its cgroup's
 * CPU quota), at most PYX_JOBS_DEFAULT_MAX (past that the copy and the
 * walks are bound by memory, not CPUs). */
#define PYX_JOBS_DEFAULT_MAX 16
unsigned pyx_jobs(unsigned requested);

/* Brent's cycle check for a chain of remote pointers (frames, thread
 * states): O(1) memory, catches a loop within twice its length.  A target
 * that frees and reuses nodes while it is read can make such loops. */
struct pyx_chain_check {
	pyx_addr_t mark;
	size_t power, steps;
};
#define PYX_CHAIN_CHECK_INIT { 0, 1, 0 }
static inline bool pyx_chain_cycles(struct pyx_chain_check *c, pyx_addr_t p)
{
	if (p == c->mark)
		return true;
	if (++c->steps == c->power) {
		c->mark = p;
		c->power *= 2;
		c->steps = 0;
	}
	return false;
}

#endif
