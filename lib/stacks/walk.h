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

/* Read each frame's arguments and locals as the walk goes (the target is
 * stopped: they are consistent with the stack). */
void pyx_code_cache_want_locals(struct pyx_code_cache *c, bool on);

/* A frame (PyFrameObject or _PyInterpreterFrame, a generator's included):
 * its function, file and line, malloc'ed.  -PYX_E_BAD_MEMORY if it is no
 * Python frame. */
int pyx_frame_describe(struct pyx_python *py, struct pyx_code_cache *cc,
		       pyx_addr_t frame, char **function, char **file,
		       int *line);

/* locals.c: f->locals from f->frame and f->code.  A read that fails part-way
 * keeps what it read and sets f->locals_error; only -PYX_E_EXITED and
 * -PYX_E_NOMEM are returned. */
int pyx_frame_locals(struct pyx_python *py, struct pyx_frame *f);
void pyx_frame_locals_release(struct pyx_frame *f);
/* The object in a frame's slot i (localsplus[i]; 0: self of a method). */
int pyx_frame_slot(struct pyx_python *py, pyx_addr_t frame, size_t i,
		   pyx_addr_t *obj);
/* type(obj).__name__ and a short, bounded repr (struct pyx_local). */
int pyx_value_render(struct pyx_python *py, pyx_addr_t obj, char *type,
		     size_t tn, char *repr, size_t rn);

/* tasks.c: every asyncio task, with the target stopped; s->threads are
 * walked (the loops' threads are found from their frames).  A walk that
 * fails part-way keeps the tasks read so far and sets out->error; only
 * -PYX_E_EXITED and -PYX_E_NOMEM are returned. */
int pyx_tasks_walk(struct pyx_python *py, struct pyx_code_cache *cc,
		   const struct pyx_stacks *s, struct pyx_tasks **out);

#endif
