/* A target: what pyxray reads.  Today a live process; a synthetic image (for
 * unit tests and fuzzing) and a core file fill the same interface.
 *
 * This is the bottom layer of the library.  The layers above (CPython's ABI
 * in lib/abi, the walkers in lib/stacks, lib/heap and lib/native) read the
 * target only through it: its memory (pyx_target_mem(), a struct pyx_mem),
 * its maps, its threads and the files it maps or names.  Whether a target can
 * be stopped, and how, is the backend's business: stopping a core file or an
 * image succeeds at once and pauses nothing.
 *
 * Lifecycle: pyx_target_open_pid() -> [pyx_target_stop() ...
 * pyx_target_resume()]* -> pyx_target_free().  pyx_target_free() resumes a
 * stopped process, and pyx_proc_emergency_resume() does so from a signal
 * handler: no exit path leaves the target stopped.
 *
 * Errors are negative -PYX_E_* codes with a detail (pyxray/error.h).
 */
#ifndef PYXRAY_TARGET_H
#define PYXRAY_TARGET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "pyxray/common.h"
#include "pyxray/maps.h"

#ifdef __cplusplus
extern "C" {
#endif

struct pyx_target;
struct pyx_mem;

enum pyx_target_kind {
	PYX_TARGET_PROCESS, /* a live process, through ptrace and /proc */
	PYX_TARGET_IMAGE,   /* a synthetic image: tests and fuzzing */
	PYX_TARGET_CORE,    /* a core file */
};

/* Open a live process: checks it exists and reads its maps; does not stop
 * it.  Errors: -PYX_E_NO_PROCESS, -PYX_E_PERMISSION, -PYX_E_NOMEM. */
int pyx_target_open_pid(pid_t pid, struct pyx_target **out);
/* Open a core file (docs/core.md): an ELF core written by the kernel or
 * gdb's gcore, or one systemd-coredump compressed (zstd, lz4, xz: read
 * through a decompressed temporary copy).  Its memory is read in place
 * (the file is mapped); what the core left out of a file mapping is read
 * from that file, found by the core's NT_FILE note and checked by build-id.
 * Stopping it succeeds at once and pauses nothing.  Errors: -PYX_E_IO (the
 * file cannot be read), -PYX_E_FORMAT (not a core, or corrupt: the detail
 * says what and where), -PYX_E_UNSUPPORTED_VERSION (not x86_64),
 * -PYX_E_NOMEM. */
struct pyx_core_opts {
	const char *exe;       /* the executable, if not where the core says */
	const char *sysroot;   /* the files' root (a copy of the machine's) */
	const char *debug_dir; /* DIR/.build-id/xx/yyyy: files by build-id */
};
int pyx_target_open_core(const char *path, const struct pyx_core_opts *o,
			 struct pyx_target **out);

/* What a core says about the process it was made of. */
struct pyx_core_info {
	const char *path;        /* the core file, as given */
	const char *compression; /* "zstd", "lz4", "xz", or NULL */
	const char *writer;      /* "kernel" or "gdb" */
	pid_t pid;
	int signal;              /* what ended it (0: none: gcore) */
	uid_t uid;
	gid_t gid;
	char comm[17];           /* NT_PRPSINFO's pr_fname */
	char args[81];           /* NT_PRPSINFO's pr_psargs (cut by the kernel) */
	char executable[4096];   /* the main program's path, "" if unknown */
	int64_t time;            /* when written: seconds since the epoch
				    (systemd-coredump's name, else mtime) */
	size_t nthreads;
	uint64_t size;           /* bytes of the (decompressed) core */
	uint64_t needed;         /* bytes its headers say it holds */
	bool truncated;          /* size < needed: the rest reads as missing */
};
/* NULL unless t is a core. */
const struct pyx_core_info *pyx_target_core_info(const struct pyx_target *t);

/* Resume the target if stopped, then free everything.  NULL is a no-op. */
void pyx_target_free(struct pyx_target *t);

enum pyx_target_kind pyx_target_kind(const struct pyx_target *t);
/* The process id (as pyxray's PID namespace numbers it; a core's PID). */
pid_t pyx_target_pid(const struct pyx_target *t);
/* The memory reader (owned by the target). */
struct pyx_mem *pyx_target_mem(struct pyx_target *t);

/* Re-read the maps (the target may have mapped more since open).  A read
 * outside them re-reads them too, once per stop (pyxray/memory.h). */
int pyx_target_refresh_maps(struct pyx_target *t);
/* The maps, sorted by start; the array stays valid until
 * pyx_target_free() (a refresh makes a new one). */
const struct pyx_map *pyx_target_maps(const struct pyx_target *t, size_t *n);
const struct pyx_map *pyx_target_find_map(const struct pyx_target *t,
					  pyx_addr_t addr);

/* A path of the target's mount namespace, seen from here (for a live
 * process "/proc/PID/root" + path).  Writes at most n bytes. */
int pyx_target_path(const struct pyx_target *t, const char *path, char *buf,
		    size_t n);

/* Stop every thread within deadline_ms (<= 0: the default), or leave the
 * target running and fail (-PYX_E_TIMEOUT, -PYX_E_PERMISSION, -PYX_E_BUSY,
 * -PYX_E_EXITED).  The memory cache is dropped on every stop and resume;
 * what the target mapped since the maps were read (a new thread's stack,
 * a new arena) is readable: the first read outside them after the stop
 * re-reads them (pyxray/memory.h). */
int pyx_target_stop(struct pyx_target *t, int deadline_ms);
/* The target runs again.  Idempotent. */
int pyx_target_resume(struct pyx_target *t);
bool pyx_target_is_stopped(const struct pyx_target *t);
/* Total time this target has been kept stopped, in ns. */
uint64_t pyx_target_pause_ns(const struct pyx_target *t);

/* Thread ids (kernel TIDs, as pyxray's namespace numbers them); valid until
 * the next call on t. */
const pid_t *pyx_target_threads(struct pyx_target *t, size_t *n);
/* The thread's TLS base (x86_64 fs_base = pthread_self()).  A live thread
 * must be stopped (-PYX_E_NOT_SUPPORTED otherwise). */
int pyx_target_thread_tls(const struct pyx_target *t, pid_t tid,
			  pyx_addr_t *out);
/* The thread's general registers: x86_64 struct user_regs_struct, as bytes
 * (regs_size is its size); a live thread must be stopped. */
int pyx_target_thread_regs(const struct pyx_target *t, pid_t tid, void *regs,
			   size_t regs_size);
/* The thread's name (comm), without the newline. */
int pyx_target_thread_comm(const struct pyx_target *t, pid_t tid, char *buf,
			   size_t n);
/* Whether the target's thread ids are pyxray's (same PID namespace). */
bool pyx_target_same_pidns(const struct pyx_target *t);
/* host TID -> the TID in the target's own PID namespace, and back. */
int pyx_target_ns_tid(const struct pyx_target *t, pid_t host_tid,
		      pid_t *ns_tid);
int pyx_target_host_tid(struct pyx_target *t, pid_t ns_tid, pid_t *host_tid);

/* The resident set size in bytes, -1 if unknown. */
int64_t pyx_target_rss_bytes(const struct pyx_target *t);
/* One mapping of /proc/PID/smaps: its header line and its Rss. */
struct pyx_smaps_entry {
	pyx_addr_t start, end;
	char perms[5];        /* "rw-p" */
	uint64_t offset;
	const char *path;     /* "" for anonymous memory; the target's
				 spelling (escape before printing) */
	uint64_t rss_bytes;
};
/* Call fn for each mapping of a live target's /proc/PID/smaps, in address
 * order; a non-zero return from fn ends the walk and is returned.  Read
 * through the pinned process: a PID that now names another process is
 * never read (-PYX_E_EXITED).  Other targets: -PYX_E_NOT_SUPPORTED ("not a
 * live process"), nothing opened. */
int pyx_target_smaps(struct pyx_target *t,
		     int (*fn)(void *arg, const struct pyx_smaps_entry *e),
		     void *arg);
/* Resident bytes of [start, end) (start rounded down to a page): the
 * present pages of a live target's page map (bit 63), read through the
 * pinned process.  -PYX_E_NOT_SUPPORTED for other targets, or where the
 * page map cannot be read (*bytes then 0). */
int pyx_target_resident(struct pyx_target *t, pyx_addr_t start,
			pyx_addr_t end, uint64_t *bytes);

/* Whether the target has gone (exited, or a zombie): tells a read that
 * failed because of that from one that failed otherwise. */
bool pyx_target_gone(const struct pyx_target *t);

/* Async-signal-safe: let every stopped process (or one being stopped) run
 * again, with the signals its threads had dequeued.  For SIGINT and
 * SIGTERM handlers, on the thread that stops targets; the handler then
 * exits.  Returns how many threads it let go: 0 when no target was
 * stopped (the signal may then have its default effect). */
int pyx_target_emergency_resume(void);

#ifdef __cplusplus
}
#endif
#endif
