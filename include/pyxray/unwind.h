/* Native (machine code) stacks of a target's threads.
 *
 * Two halves, so the target is stopped only for the first:
 *   - an unwinder (lib/native/unwind.c) turns a stopped thread's registers
 *     and stack into raw program counters, with the call frame information
 *     (.eh_frame) of the files the target maps;
 *   - a symbolizer (lib/native/native.c) turns a program counter into
 *     function, library and source line, inlined calls included.  It reads
 *     the ELF and DWARF files, not the process, so it runs after resume.
 *
 * Both read the target only through pyxray/target.h: its memory, its maps,
 * a thread's registers, and files through the resolver (pyxray/files.h),
 * so a container's files are its own, and any backend with memory, maps
 * and registers can be unwound.  Both use libdwfl.
 */
#ifndef PYXRAY_UNWIND_H
#define PYXRAY_UNWIND_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "pyxray/common.h"

#ifdef __cplusplus
extern "C" {
#endif

struct pyx_target;
struct pyx_unwinder;
struct pyx_symbolizer;

/* Native frames per thread pyx_stacks_collect follows at most: before
 * 3.11 each Python call is three or four C frames deep, so this is some
 * 250 Python frames, and a loop in a corrupt stack stops here. */
#define PYX_UNWIND_MAX_FRAMES 1024

/* One raw frame, innermost first. */
struct pyx_unwind_frame {
	pyx_addr_t pc;
	/* pc is the instruction being executed (the innermost frame, or one
	 * interrupted by a signal); otherwise it is a return address, and
	 * the call is the instruction before it. */
	bool precise;
};

/* One unwinder serves every thread of tgt (not owned: it must outlive
 * the unwinder); its caches are shared between them.  -PYX_E_NOMEM. */
int pyx_unwinder_new(struct pyx_target *tgt, struct pyx_unwinder **out);
void pyx_unwinder_free(struct pyx_unwinder *u);

/* Load the unwind table of the file holding pc now, so that the first
 * unwind through it does not: call it before stopping the target, for the
 * files every stack goes through (libc, the interpreter).  Best effort. */
int pyx_unwinder_warm(struct pyx_unwinder *u, pyx_addr_t pc);

/* Unwind thread tid, which must be stopped (pyx_target_stop), into at most
 * max frames of out; *n is how many were filled, also on error.  Returns 0
 * when the walk reached the outermost frame.  Errors: -PYX_E_EXITED (the
 * thread is gone), -PYX_E_NOT_SUPPORTED (not stopped, or more than max
 * frames: out holds the first max), -PYX_E_BAD_MEMORY (the unwinder got
 * lost part-way: out holds the frames before). */
int pyx_unwind_thread(struct pyx_unwinder *u, pid_t tid,
		      struct pyx_unwind_frame *out, size_t max, size_t *n);

/* A native frame, symbolized.  Strings are malloc'ed, owned by whoever
 * holds the frame (pyx_native_frame_release). */
struct pyx_native_frame {
	pyx_addr_t address; /* the pc (a return address but innermost) */
	char *function;     /* NULL if no symbol covers the address */
	char *library;      /* the target's path of the ELF file, NULL if
			       none ("[vdso]" for the vDSO) */
	char *file;         /* source file, NULL without line info */
	int line;           /* 0 if unknown */
	bool inlined;       /* a call inlined at address: the frame after it
			       (same address) is the function it is inlined in */
	bool eval;          /* CPython's evaluation loop: it runs Python
			       frames (set by the stacks merge) */
};

void pyx_native_frame_release(struct pyx_native_frame *f);

/* A symbolizer for tgt's maps as they are now (call
 * pyx_target_refresh_maps() first if they may be stale); files are opened
 * lazily, at the first lookup in them.  -PYX_E_NOMEM, -PYX_E_INTERNAL
 * (libdwfl failed). */
int pyx_symbolizer_new(struct pyx_target *tgt, struct pyx_symbolizer **out);
void pyx_symbolizer_free(struct pyx_symbolizer *sy);

/* Load the symbols and debug info of the file holding pc now (the first
 * lookup in it would).  A symbolizer is not thread-safe, but distinct ones
 * can be used from distinct threads: this can run on one thread while
 * another uses a second symbolizer.  -PYX_E_NOT_SUPPORTED if no file
 * holds pc. */
int pyx_symbolizer_preload(struct pyx_symbolizer *sy, pyx_addr_t pc);

/* Append the frames of one raw frame to *frames (grown as needed, *cap
 * its capacity): the calls inlined at the address, innermost first, then
 * the function they are inlined in.  At least one frame is appended; an
 * address nothing is known about gives one frame with function NULL.
 * -PYX_E_NOMEM only. */
int pyx_symbolize(struct pyx_symbolizer *sy, const struct pyx_unwind_frame *raw,
		  struct pyx_native_frame **frames, size_t *n, size_t *cap);

#ifdef __cplusplus
}
#endif
#endif
