/* The body of struct pyx_target and the backend interface: what a live
 * process, a synthetic image or a core file implements.  Private to
 * lib/target and its tests. */
#ifndef PYX_TARGET_PRIVATE_H
#define PYX_TARGET_PRIVATE_H

#include "pyxray/memory.h"
#include "pyxray/target.h"

/* Every member may be NULL: the target then does what a target without
 * that ability does (stop pauses nothing, threads are none, rss unknown,
 * the call that needs it fails with -PYX_E_NOT_SUPPORTED). */
struct pyx_target_ops {
	const char *name; /* "process", "image", "core" */
	enum pyx_target_kind kind;
	void (*free)(void *be);
	pid_t (*pid)(void *be);
	int (*refresh_maps)(void *be);
	const struct pyx_map *(*maps)(void *be, size_t *n);
	int (*path)(void *be, const char *path, char *buf, size_t n);
	int (*stop)(void *be, int deadline_ms);
	int (*resume)(void *be);
	bool (*is_stopped)(void *be);
	uint64_t (*pause_ns)(void *be);
	const pid_t *(*threads)(void *be, size_t *n);
	int (*thread_tls)(void *be, pid_t tid, pyx_addr_t *out);
	int (*thread_regs)(void *be, pid_t tid, void *regs, size_t size);
	int (*thread_comm)(void *be, pid_t tid, char *buf, size_t n);
	bool (*same_pidns)(void *be);
	int (*ns_tid)(void *be, pid_t host_tid, pid_t *ns_tid);
	int (*host_tid)(void *be, pid_t ns_tid, pid_t *host_tid);
	int64_t (*rss_bytes)(void *be);
	bool (*gone)(void *be);
};

struct pyx_target {
	const struct pyx_target_ops *ops;
	void *be;             /* the backend's state, freed by ops->free */
	struct pyx_mem *mem;  /* reads through the backend's memory source */
};

/* Wrap a backend: takes ownership of be (freed by ops->free, also on
 * error) and of mem. */
int pyx_target_new(const struct pyx_target_ops *ops, void *be,
		   struct pyx_mem *mem, struct pyx_target **out);

#endif
