/* Library-private: the native half of pyx_stacks_collect (lib/native.c).
 *
 *   pyx_native_new()     before the stop: unwinder, fresh maps
 *   pyx_native_unwind()  while stopped: raw pcs of every stopped thread
 *   pyx_native_finish()  after resume: symbols, then the merge
 */
#ifndef PYX_NATIVE_H
#define PYX_NATIVE_H

#include <elfutils/libdwfl.h>
#include <stdbool.h>

#include "pyxray/stacks.h"
#include "pyxray/unwind.h"

struct pyx_native;
struct pyx_python;
struct pyx_target;

/* libdwfl over the target's files, for the unwinder's and the symbolizer's
 * sessions (lib/native/unwind.c).  Every module's userdata points at one
 * pyx_dwfl_files: pyx_dwfl_find_elf() opens the file through the resolver
 * (pyxray/files.h) and makes the vDSO from a copy of its pages, kept here
 * until pyx_dwfl_files_release() (after dwfl_end). */
struct pyx_dwfl_files {
	struct pyx_target *tgt;
	void **images;
	size_t nimages;
};

int pyx_dwfl_find_elf(Dwfl_Module *mod, void **userdata, const char *name,
		      Dwarf_Addr base, char **file_name, Elf **elfp);
/* Report every file mapped in the target as a module at its address. */
void pyx_dwfl_report_maps(Dwfl *dwfl, struct pyx_dwfl_files *df);
void pyx_dwfl_files_release(struct pyx_dwfl_files *df);

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
