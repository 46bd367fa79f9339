/* Library-private: the thread and frame walkers behind pyx_stacks_collect. */
#ifndef PYX_WALK_H
#define PYX_WALK_H

#include "abi.h"
#include "pyxray/stacks.h"
#include "reader.h"

struct pyx_code_cache;

int pyx_code_cache_new(struct pyx_code_cache **out);
void pyx_code_cache_free(struct pyx_code_cache *c);

/* Fill t->frames from the thread state's frame chain.  A walk that fails
 * part-way keeps the frames read so far and sets t->error; only an
 * -PYX_E_EXITED or -PYX_E_NOMEM is returned. */
int pyx_frames_walk(struct pyx_python *py, struct pyx_code_cache *cc,
		    pyx_addr_t tstate, size_t max_depth, struct pyx_thread *t);

/* Every thread state of every interpreter, with GIL holder, names and
 * frames.  stopped says whether thread registers can be read. */
int pyx_threads_walk(struct pyx_python *py, struct pyx_code_cache *cc,
		     size_t max_depth, bool stopped, struct pyx_stacks *s);

/* Thread names from threading._active, read after the target resumed
 * (names are not worth pausing it for), then pyx_threads_resolve_tids(). */
void pyx_threads_name(struct pyx_python *py, struct pyx_stacks *s);
/* Fill native_id (host) and ns_native_id (target's namespace) from
 * whichever is known; idempotent. */
void pyx_threads_resolve_tids(struct pyx_python *py, struct pyx_stacks *s);

void pyx_thread_release(struct pyx_thread *t);

#endif
