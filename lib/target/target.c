/* The target: one interface over the backends (a live process here; a
 * synthetic image in image.c; a core file in core.c).  The live backend is the
 * process module (ptrace, /proc) and the memory module's own
 * process_vm_readv reader; this file joins them, so that neither calls the
 * other: process.c knows nothing of memory, memory.c nothing of processes,
 * and the page cache is dropped here on every stop and resume.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "pyxray/process.h"
#include "process_private.h"
#include "target_private.h"

int pyx_target_new(const struct pyx_target_ops *ops, void *be,
		   struct pyx_mem *mem, struct pyx_target **out)
{
	struct pyx_target *t;

	*out = NULL;
	t = calloc(1, sizeof(*t));
	if (!t) {
		if (ops->free)
			ops->free(be);
		pyx_mem_free(mem);
		return pyx_err_set(PYX_E_NOMEM, "out of memory");
	}
	t->ops = ops;
	t->be = be;
	t->mem = mem;
	*out = t;
	return 0;
}

void pyx_target_free(struct pyx_target *t)
{
	if (!t)
		return;
	/* The backend resumes a stopped process before it goes. */
	if (t->ops->free)
		t->ops->free(t->be);
	pyx_mem_free(t->mem);
	free(t);
}

/* ---- the live process ------------------------------------------------- */

static const struct pyx_map *proc_maps_cb(void *be, size_t *n)
{
	return pyx_proc_maps(be, n);
}

static int proc_refresh_cb(void *be)
{
	return pyx_proc_refresh_maps(be);
}

#define PROC_CB(ret, name, params, args)                                       \
	static ret proc_##name params { return pyx_proc_##name args; }
PROC_CB(pid_t, pid, (void *be), (be))
PROC_CB(int, path, (void *be, const char *p, char *buf, size_t n),
	(be, p, buf, n))
PROC_CB(int, stop, (void *be, int deadline_ms), (be, deadline_ms))
PROC_CB(int, resume, (void *be), (be))
PROC_CB(bool, is_stopped, (void *be), (be))
PROC_CB(uint64_t, pause_ns, (void *be), (be))
PROC_CB(const pid_t *, threads, (void *be, size_t *n), (be, n))
PROC_CB(int, thread_tls, (void *be, pid_t tid, pyx_addr_t *o), (be, tid, o))
PROC_CB(int, thread_regs, (void *be, pid_t tid, void *r, size_t n),
	(be, tid, r, n))
PROC_CB(int, thread_comm, (void *be, pid_t tid, char *buf, size_t n),
	(be, tid, buf, n))
PROC_CB(bool, same_pidns, (void *be), (be))
PROC_CB(int, ns_tid, (void *be, pid_t h, pid_t *o), (be, h, o))
PROC_CB(int, host_tid, (void *be, pid_t ns, pid_t *o), (be, ns, o))
PROC_CB(int64_t, rss_bytes, (void *be), (be))
PROC_CB(bool, gone, (void *be), (be))
PROC_CB(int, smaps, (void *be, int (*fn)(void *, const struct pyx_smaps_entry *),
		     void *arg), (be, fn, arg))
PROC_CB(int, resident, (void *be, pyx_addr_t s, pyx_addr_t e, uint64_t *b),
	(be, s, e, b))
#undef PROC_CB

static const struct pyx_target_pin *proc_pin_cb(void *be)
{
	return pyx_proc_pin(be);
}

static void proc_free_cb(void *be)
{
	pyx_proc_free(be);
}

static const struct pyx_target_ops process_ops = {
	.name = "process",
	.kind = PYX_TARGET_PROCESS,
	.free = proc_free_cb,
	.pid = proc_pid,
	.refresh_maps = proc_refresh_cb,
	.maps = proc_maps_cb,
	.path = proc_path,
	.stop = proc_stop,
	.resume = proc_resume,
	.is_stopped = proc_is_stopped,
	.pause_ns = proc_pause_ns,
	.threads = proc_threads,
	.thread_tls = proc_thread_tls,
	.thread_regs = proc_thread_regs,
	.thread_comm = proc_thread_comm,
	.same_pidns = proc_same_pidns,
	.ns_tid = proc_ns_tid,
	.host_tid = proc_host_tid,
	.rss_bytes = proc_rss_bytes,
	.gone = proc_gone,
	.smaps = proc_smaps,
	.resident = proc_resident,
	.pin = proc_pin_cb,
};

int pyx_target_open_pid(pid_t pid, struct pyx_target **out)
{
	struct pyx_mem_source src = { 0 };
	struct pyx_proc *proc;
	struct pyx_mem *mem;
	int err;

	*out = NULL;
	if ((err = pyx_proc_open(pid, &proc)))
		return err;
	src.ctx = proc;
	src.maps = proc_maps_cb;
	src.refresh_maps = proc_refresh_cb;
	src.pid = pid;
	if ((err = pyx_mem_new(&src, &mem))) {
		pyx_proc_free(proc);
		return err;
	}
	return pyx_target_new(&process_ops, proc, mem, out);
}

/* ---- dispatch ----------------------------------------------------------- */

static int unsupported(const struct pyx_target *t, const char *what)
{
	return pyx_err_set(PYX_E_NOT_SUPPORTED, "%s: not available for a %s "
			   "target", what, t->ops->name);
}

enum pyx_target_kind pyx_target_kind(const struct pyx_target *t)
{
	return t->ops->kind;
}

pid_t pyx_target_pid(const struct pyx_target *t)
{
	return t && t->ops->pid ? t->ops->pid(t->be) : 0;
}

struct pyx_mem *pyx_target_mem(struct pyx_target *t)
{
	return t ? t->mem : NULL;
}

const struct pyx_target_pin *pyx_target_pin(const struct pyx_target *t)
{
	return t && t->ops->pin ? t->ops->pin(t->be) : NULL;
}

int pyx_target_refresh_maps(struct pyx_target *t)
{
	return t->ops->refresh_maps ? t->ops->refresh_maps(t->be) : 0;
}

const struct pyx_map *pyx_target_maps(const struct pyx_target *t, size_t *n)
{
	*n = 0;
	return t->ops->maps ? t->ops->maps(t->be, n) : NULL;
}

const struct pyx_map *pyx_target_find_map(const struct pyx_target *t,
					  pyx_addr_t addr)
{
	size_t n;
	const struct pyx_map *maps = pyx_target_maps(t, &n);

	return pyx_maps_find(maps, n, addr);
}

int pyx_target_path(const struct pyx_target *t, const char *path, char *buf,
		    size_t n)
{
	if (!t->ops->path)
		return unsupported(t, "file paths");
	return t->ops->path(t->be, path, buf, n);
}

int pyx_target_stop(struct pyx_target *t, int deadline_ms)
{
	int err = t->ops->stop ? t->ops->stop(t->be, deadline_ms) : 0;

	/* What was cached while it ran is stale, whether or not it stopped.
	 * So may the maps be; the new generation lets the first read outside
	 * them re-read them (pyx_mem_valid). */
	pyx_mem_invalidate(t->mem);
	return err;
}

int pyx_target_resume(struct pyx_target *t)
{
	int err;

	if (!t)
		return 0;
	err = t->ops->resume ? t->ops->resume(t->be) : 0;
	pyx_mem_invalidate(t->mem);
	return err;
}

bool pyx_target_is_stopped(const struct pyx_target *t)
{
	return t->ops->is_stopped ? t->ops->is_stopped(t->be) : false;
}

uint64_t pyx_target_pause_ns(const struct pyx_target *t)
{
	return t->ops->pause_ns ? t->ops->pause_ns(t->be) : 0;
}

const pid_t *pyx_target_threads(struct pyx_target *t, size_t *n)
{
	*n = 0;
	return t->ops->threads ? t->ops->threads(t->be, n) : NULL;
}

int pyx_target_thread_tls(const struct pyx_target *t, pid_t tid,
			  pyx_addr_t *out)
{
	if (!t->ops->thread_tls)
		return unsupported(t, "thread TLS");
	return t->ops->thread_tls(t->be, tid, out);
}

int pyx_target_thread_regs(const struct pyx_target *t, pid_t tid, void *regs,
			   size_t regs_size)
{
	if (!t->ops->thread_regs)
		return unsupported(t, "thread registers");
	return t->ops->thread_regs(t->be, tid, regs, regs_size);
}

int pyx_target_thread_comm(const struct pyx_target *t, pid_t tid, char *buf,
			   size_t n)
{
	if (!t->ops->thread_comm)
		return unsupported(t, "thread names");
	return t->ops->thread_comm(t->be, tid, buf, n);
}

bool pyx_target_same_pidns(const struct pyx_target *t)
{
	return t->ops->same_pidns ? t->ops->same_pidns(t->be) : true;
}

int pyx_target_ns_tid(const struct pyx_target *t, pid_t host_tid,
		      pid_t *ns_tid)
{
	if (!t->ops->ns_tid) {
		*ns_tid = host_tid;
		return 0;
	}
	return t->ops->ns_tid(t->be, host_tid, ns_tid);
}

int pyx_target_host_tid(struct pyx_target *t, pid_t ns_tid, pid_t *host_tid)
{
	if (!t->ops->host_tid) {
		*host_tid = ns_tid;
		return 0;
	}
	return t->ops->host_tid(t->be, ns_tid, host_tid);
}

int64_t pyx_target_rss_bytes(const struct pyx_target *t)
{
	return t->ops->rss_bytes ? t->ops->rss_bytes(t->be) : -1;
}

bool pyx_target_gone(const struct pyx_target *t)
{
	return t->ops->gone ? t->ops->gone(t->be) : false;
}

/* Said the same way for every backend that is not a live process: the
 * memory command reports it as the reason. */
static int not_live(const struct pyx_target *t, const char *what)
{
	return pyx_err_set(PYX_E_NOT_SUPPORTED, "not a live process: a %s "
			   "target has no %s", t->ops->name, what);
}

int pyx_target_smaps(struct pyx_target *t,
		     int (*fn)(void *arg, const struct pyx_smaps_entry *e),
		     void *arg)
{
	if (!t->ops->smaps)
		return not_live(t, "/proc/PID/smaps");
	return t->ops->smaps(t->be, fn, arg);
}

int pyx_target_resident(struct pyx_target *t, pyx_addr_t start,
			pyx_addr_t end, uint64_t *bytes)
{
	*bytes = 0;
	if (!t->ops->resident)
		return not_live(t, "page map");
	return t->ops->resident(t->be, start, end, bytes);
}

int pyx_target_be_open_mapped(const struct pyx_target *t, const char *path,
			      int *fd, char *local, size_t n, bool *handled)
{
	*handled = t->ops->open_mapped != NULL;
	if (!*handled)
		return 0;
	return t->ops->open_mapped(t->be, path, fd, local, n);
}

int pyx_target_be_creds(const struct pyx_target *t, uid_t *uid, gid_t *gid)
{
	return t->ops->creds ? t->ops->creds(t->be, uid, gid) : -ENOTSUP;
}

const char *pyx_target_be_debug_dir(const struct pyx_target *t)
{
	return t->ops->debug_dir ? t->ops->debug_dir(t->be) : NULL;
}

const struct pyx_core_info *pyx_target_core_info(const struct pyx_target *t)
{
	return t && t->ops->core_info ? t->ops->core_info(t->be) : NULL;
}

int pyx_target_emergency_resume(void)
{
	return pyx_proc_emergency_resume();
}
