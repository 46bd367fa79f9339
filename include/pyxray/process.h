/* A target process: its maps, its threads, stopping and resuming it.
 *
 * This is the live-process backend of a target (pyxray/target.h): only
 * lib/target calls it; the layers above see the target.
 *
 * Lifecycle: pyx_proc_open() -> [pyx_proc_stop() ... pyx_proc_resume()]* ->
 * pyx_proc_free().  pyx_proc_free() resumes the target if it is stopped, and
 * pyx_proc_emergency_resume() does the same from a signal handler, so no
 * exit path of a program using this module leaves the target stopped.
 */
#ifndef PYXRAY_PROCESS_H
#define PYXRAY_PROCESS_H

#include <stdbool.h>
#include <sys/types.h>

#include "pyxray/common.h"
#include "pyxray/maps.h"

#ifdef __cplusplus
extern "C" {
#endif

struct pyx_proc;


/* Open pid: checks it exists and reads its maps; does not stop it.
 * Errors: -PYX_E_NO_PROCESS, -PYX_E_PERMISSION, -PYX_E_NOMEM. */
int pyx_proc_open(pid_t pid, struct pyx_proc **out);
/* Resume the target if stopped, then free everything.  NULL is a no-op. */
void pyx_proc_free(struct pyx_proc *proc);

pid_t pyx_proc_pid(const struct pyx_proc *proc);

/* Re-read /proc/PID/maps (the target may have mapped more since open).
 * Arrays returned before stay valid until pyx_proc_free(). */
int pyx_proc_refresh_maps(struct pyx_proc *proc);
/* The maps, sorted by start; valid until pyx_proc_free(). */
const struct pyx_map *pyx_proc_maps(const struct pyx_proc *proc, size_t *n);
/* The map containing addr, or NULL. */
const struct pyx_map *pyx_proc_find_map(const struct pyx_proc *proc,
					pyx_addr_t addr);

/* A path of the target's mount namespace, seen from here: "/proc/PID/root"
 * + path, so a containerised target's files are found.  Writes at most n
 * bytes; returns -PYX_E_IO if it does not fit. */
int pyx_proc_path(const struct pyx_proc *proc, const char *path, char *buf,
		  size_t n);

/* Stop every thread: PTRACE_SEIZE + PTRACE_INTERRUPT, re-scanning
 * /proc/PID/task until no new thread appears.  If all threads are not
 * stopped within deadline_ms, everything is resumed and -PYX_E_TIMEOUT is
 * returned.  Errors: -PYX_E_PERMISSION (detail names CAP_SYS_PTRACE and
 * ptrace_scope), -PYX_E_BUSY (another tracer), -PYX_E_EXITED, -PYX_E_TIMEOUT.
 * On any error the target is left running. */
int pyx_proc_stop(struct pyx_proc *proc, int deadline_ms);
/* Detach from every thread; the target runs again.  Idempotent. */
int pyx_proc_resume(struct pyx_proc *proc);
bool pyx_proc_is_stopped(const struct pyx_proc *proc);
/* Total time the target has been kept stopped by this proc, in ns
 * (including a pause in progress). */
uint64_t pyx_proc_pause_ns(const struct pyx_proc *proc);

/* The thread ids (kernel TIDs).  While stopped: exactly the stopped
 * threads.  Otherwise: a fresh read of /proc/PID/task.  Valid until the
 * next call on proc. */
const pid_t *pyx_proc_threads(struct pyx_proc *proc, size_t *n);
/* The thread's TLS base (x86_64 fs_base, which glibc makes pthread_self()),
 * so a pthread_t can be mapped to a TID.  Needs the thread stopped:
 * -PYX_E_NOT_SUPPORTED otherwise. */
int pyx_proc_thread_tls(const struct pyx_proc *proc, pid_t tid,
			pyx_addr_t *out);
/* The thread's /proc/PID/task/TID/comm, without the newline. */
int pyx_proc_thread_comm(const struct pyx_proc *proc, pid_t tid, char *buf,
			 size_t n);

/* Whether the target is in pyxray's own PID namespace (else its thread ids
 * differ from the host's: a container). */
bool pyx_proc_same_pidns(const struct pyx_proc *proc);
/* The TID of host_tid as the target's own PID namespace numbers it (the
 * last NSpid field), so that a container's thread ids can be shown beside
 * the host's.  Equal to host_tid when the namespaces are the same. */
int pyx_proc_ns_tid(const struct pyx_proc *proc, pid_t host_tid, pid_t *ns_tid);
/* The reverse: the host TID of a thread the target knows as ns_tid (what
 * gettid() returned inside the container).  -PYX_E_NO_PROCESS if none. */
int pyx_proc_host_tid(struct pyx_proc *proc, pid_t ns_tid, pid_t *host_tid);

/* The target's resident set size (VmRSS) in bytes, -1 if unknown. */
int64_t pyx_proc_rss_bytes(const struct pyx_proc *proc);
/* Whether the target has exited (gone, or a zombie): tells a read that
 * failed because of that from one that failed otherwise. */
bool pyx_proc_gone(const struct pyx_proc *proc);

/* The thread's general registers (x86_64 struct user_regs_struct) into
 * regs, regs_size bytes at most.  Needs the thread stopped. */
int pyx_proc_thread_regs(const struct pyx_proc *proc, pid_t tid, void *regs,
			 size_t regs_size);

/* Async-signal-safe: detach every thread of every stopped proc (or proc
 * being stopped), handing back a signal a thread had dequeued.  For
 * SIGINT/SIGTERM handlers; the handler then exits.  Returns how many
 * threads were seized: 0 means no target was stopped, and the signal can
 * have its usual effect.  Must run on the thread that stopped the procs
 * (ptrace requests from another thread fail). */
int pyx_proc_emergency_resume(void);

#ifdef __cplusplus
}
#endif
#endif
