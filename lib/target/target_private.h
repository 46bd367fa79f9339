/* The body of struct pyx_target and the backend interface: what a live
 * process, a synthetic image or a core file implements.  Private to
 * lib/target and its tests. */
#ifndef PYX_TARGET_PRIVATE_H
#define PYX_TARGET_PRIVATE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "pyxray/memory.h"
#include "pyxray/target.h"

struct pyx_proc;

/* A live target pinned down while it was stopped (or, for commands that
 * never stop it, at open): who it was and with which credentials.  Files
 * opened as the target after it runs again (sources, read while printing)
 * use this snapshot and these fds only, never what /proc/PID says by then:
 * the target may have exec'd a setuid binary since, or exited and its PID
 * been reused. */
struct pyx_target_pin {
	bool valid;
	int pidfd;           /* pidfd_open(); -1 where the kernel has none */
	int rootfd, cwdfd;   /* O_PATH of /proc/PID/root and /proc/PID/cwd */
	uint64_t start_time; /* /proc/PID/stat's starttime (field 22) */
	uid_t fsuid;
	gid_t fsgid;
	gid_t *groups;       /* sorted */
	size_t ngroups;
	uint64_t cap_eff;
	dev_t userns_dev;    /* /proc/PID/ns/user */
	ino_t userns_ino;
	bool same_userns;    /* the target's user namespace is ours */
};

/* Take a pin of pid (releases what p held first); p->valid says whether it
 * worked.  0 or -errno. */
int pyx_pin_take(pid_t pid, struct pyx_target_pin *p);
void pyx_pin_release(struct pyx_target_pin *p);
/* 0 if pid is still the process p pinned (same start time, not exited)
 * with the credentials and user namespace p recorded; -ESRCH if it is not
 * that process any more, -EPERM if its credentials changed. */
int pyx_pin_check(const struct pyx_target_pin *p, pid_t pid);
/* The pin the process backend took on the last stop (or at open). */
const struct pyx_target_pin *pyx_proc_pin(const struct pyx_proc *proc);
/* The target's pin; NULL for a backend that has none. */
const struct pyx_target_pin *pyx_target_pin(const struct pyx_target *t);

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
	/* A live process's /proc/PID/smaps and page map (pyxray/target.h);
	 * NULL: not a live process. */
	int (*smaps)(void *be,
		     int (*fn)(void *arg, const struct pyx_smaps_entry *e),
		     void *arg);
	int (*resident)(void *be, pyx_addr_t start, pyx_addr_t end,
			uint64_t *bytes);
	const struct pyx_target_pin *(*pin)(void *be);
	/* A backend that resolves the files it maps itself (a core: its
	 * NT_FILE note, --exe, --sysroot, build-ids): pyx_target_open_mapped()
	 * is this.  NULL: the resolver's way (map_files, the target's root). */
	int (*open_mapped)(void *be, const char *path, int *fd, char *local,
			   size_t n);
	/* Whose credentials PYX_OPEN_AS_TARGET opens with, for a backend
	 * without a pin (a core: its NT_PRPSINFO's).  -ENOTSUP: none. */
	int (*creds)(void *be, uid_t *uid, gid_t *gid);
	/* Where separate debug files are looked up first when the caller
	 * names no directory (a core's --debug-dir); NULL: none. */
	const char *(*debug_dir)(void *be);
	const struct pyx_core_info *(*core_info)(void *be);
};

/* The backend's hooks above, NULL-safe (files.c). */
int pyx_target_be_open_mapped(const struct pyx_target *t, const char *path,
			      int *fd, char *local, size_t n, bool *handled);
int pyx_target_be_creds(const struct pyx_target *t, uid_t *uid, gid_t *gid);
const char *pyx_target_be_debug_dir(const struct pyx_target *t);

/* Open path inside the tree of rootfd (an O_PATH directory) as the target
 * would resolve it (no escape by "..", symlinks or magic links), for
 * reading, regular files only.  An fd or -errno (files.c). */
int pyx_open_in_root(int rootfd, const char *path);

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
