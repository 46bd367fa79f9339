/* Library-private: the native half of pyx_stacks_collect (lib/native.c).
 *
 *   pyx_native_new()     before the stop: unwinder, fresh maps
 *   pyx_native_unwind()  while stopped: raw pcs of every stopped thread
 *   pyx_native_finish()  after resume: symbols, then the merge
 */
#ifndef PYX_NATIVE_H
#define PYX_NATIVE_H

#include <stdbool.h>

#include "pyxray/stacks.h"
#include "pyxray/unwind.h"

struct pyx_native;
struct pyx_python;

int pyx_native_new(struct pyx_python *py, struct pyx_native **out);
void pyx_native_free(struct pyx_native *n);

/* Unwind every stopped thread; threads of s without a stopped TID get a
 * native_error, stopped TIDs without a thread state are added to s.
 * Errors: -PYX_E_NOMEM only: a thread that cannot be unwound is noted. */
int pyx_native_unwind(struct pyx_native *n, struct pyx_stacks *s);

/* Symbolize what pyx_native_unwind() found and merge each thread's
 * stacks.  -PYX_E_NOMEM only. */
int pyx_native_finish(struct pyx_native *n, struct pyx_stacks *s);

/* Free what --native added to t (pyx_thread_release does the rest). */
void pyx_native_thread_release(struct pyx_thread *t);

/* Whether a native function is CPython's evaluation loop. */
bool pyx_native_is_eval(const char *function);

/* Merge t->native (eval flags set) and t->frames into t->merged, innermost
 * first.  one_per_eval: each eval-loop frame runs exactly one Python frame
 * (3.8-3.10); else a run of Python frames up to and including the next
 * one with entry set (3.11+).  Python frames never paired are put last;
 * a disagreement is appended to t->native_error.  -PYX_E_NOMEM only. */
int pyx_native_merge(struct pyx_thread *t, bool one_per_eval);

#endif
