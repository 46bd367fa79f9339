/* A target process: its maps, its threads, stopping and resuming it.
 *
 * Stopping uses PTRACE_SEIZE + PTRACE_INTERRUPT on every thread (never
 * PTRACE_ATTACH, which sends SIGSTOP and can leave a group-stop behind).
 * The rules that keep the target safe:
 *
 *  - a thread is only detached from a ptrace-stop; a thread that is seized
 *    but has not stopped yet (stuck in an uninterruptible wait when the
 *    deadline expires) cannot be detached, so it is kept as "pending" and
 *    released as soon as it stops (at the next call on the proc, or for up
 *    to 100 ms in pyx_proc_free()).  If pyxray exits meanwhile, the kernel
 *    detaches it and it runs on (tracer exit resumes PTRACE_SEIZEd tracees);
 *  - a real signal that arrives while we wait (a signal-delivery-stop) is
 *    remembered and handed back with PTRACE_DETACH, never swallowed; the
 *    emergency detach asks the kernel (PTRACE_GETSIGINFO) for one it has
 *    not been told of yet;
 *  - every seized thread is also published in a fixed-size registry of
 *    atomics, so pyx_proc_emergency_resume() can detach them from a signal
 *    handler without locks or allocation.
 *
 * ptrace requests must come from the thread that seized: a proc must be
 * stopped, read and resumed by one thread.  A signal handler calling
 * pyx_proc_emergency_resume() must run on it (pyxray's forwards a signal
 * another thread caught); elsewhere its PTRACE_DETACH fails (ESRCH), and
 * the _exit() that follows releases the threads, but a signal the tracer
 * had already waited for is then lost.
 */
#include <dirent.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"
#include "process_private.h"
#include "pyxray/process.h"
#include "target_private.h"

#ifndef PTRACE_EVENT_STOP
#define PTRACE_EVENT_STOP 128
#endif

enum task_state {
	TASK_PENDING, /* seized and interrupted, not in a ptrace-stop yet */
	TASK_STOPPED, /* in a ptrace-stop: may be read and detached */
};

struct task {
	pid_t tid;
	int sig;  /* signal to hand back on detach (signal-delivery-stop) */
	int slot; /* index in the emergency registry, or -1 */
	enum task_state state;
};

struct pyx_proc {
	pid_t pid;
	struct pyx_map *maps;
	size_t nmaps;

	bool stopped;
	struct task *tasks; /* seized threads, in the order found */
	size_t ntasks, cap_tasks;
	pid_t *skip; /* threads to ignore during one stop (zombies, gone) */
	size_t nskip, cap_skip;
	pid_t *known; /* scratch: sorted tids of tasks + skip */
	size_t cap_known;
	pid_t *scan; /* scratch: a read of /proc/PID/task */
	size_t cap_scan;
	pid_t *tids; /* pyx_proc_threads() result */
	size_t cap_tids;

	uint64_t pause_total, pause_start;
	uint64_t reinjected;
	struct pyx_target_pin pin; /* taken at open, again on every stop */
	/* Maps replaced by a refresh, freed with the proc: a caller may be
	 * walking an array when a read refreshes it (pyxray/memory.h). */
	struct retired {
		struct pyx_map *maps;
		size_t n;
	} *retired;
	size_t nretired, cap_retired;
	int pagemap; /* /proc/PID/pagemap through the pin; -1 not yet, -2 cannot */
};

/* ---- small helpers ---------------------------------------------------- */

/* Read a small file into buf (NUL-terminated).  Returns the length or
 * -errno. */
static ssize_t read_small(const char *path, char *buf, size_t n)
{
	size_t got = 0;
	int fd, e;

	if (n == 0)
		return -EINVAL;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	while (got + 1 < n) {
		ssize_t k = read(fd, buf + got, n - 1 - got);

		if (k < 0) {
			if (errno == EINTR)
				continue;
			e = errno;
			close(fd);
			return -e;
		}
		if (k == 0)
			break;
		got += (size_t)k;
	}
	close(fd);
	buf[got] = '\0';
	return (ssize_t)got;
}

/* kernel.yama.ptrace_scope, if Yama is there. */
static bool read_ptrace_scope(char *buf, size_t n)
{
	ssize_t k = read_small("/proc/sys/kernel/yama/ptrace_scope", buf, n);

	if (k <= 0)
		return false;
	buf[strcspn(buf, "\n")] = '\0';
	return true;
}

static int permission_error(pid_t pid, const char *what, int e)
{
	char scope[32];

	if (read_ptrace_scope(scope, sizeof(scope)))
		return pyx_err_set(PYX_E_PERMISSION,
				   "%s: %s; needs root or CAP_SYS_PTRACE, or the "
				   "same user as process %d with "
				   "kernel.yama.ptrace_scope=0 (it is %s)",
				   what, strerror(e), (int)pid, scope);
	return pyx_err_set(PYX_E_PERMISSION,
			   "%s: %s; needs root or CAP_SYS_PTRACE, or the same "
			   "user as process %d",
			   what, strerror(e), (int)pid);
}

/* The state letter of /proc/PID/task/TID/stat; 0 if the thread is gone,
 * '?' if it cannot be read. */
static char task_state_char(pid_t pid, pid_t tid)
{
	char path[64], buf[512], *p;

	ssize_t k;

	snprintf(path, sizeof(path), "/proc/%d/task/%d/stat", (int)pid,
		 (int)tid);
	k = read_small(path, buf, sizeof(buf));
	if (k == -ENOENT || k == -ESRCH)
		return 0;
	if (k <= 0)
		return '?'; /* cannot tell (EMFILE...): not "gone" */
	p = strrchr(buf, ')');
	if (!p || p[1] != ' ' || !p[2])
		return '?';
	return p[2];
}

/* A numeric field ("TracerPid", "Tgid") of a status file, or -1. */
static long status_field(const char *path, const char *name)
{
	char buf[4096], key[64], *p;
	size_t klen;

	if (read_small(path, buf, sizeof(buf)) <= 0)
		return -1;
	klen = (size_t)snprintf(key, sizeof(key), "%s:", name);
	for (p = buf; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
		if (strncmp(p, key, klen) == 0)
			return strtol(p + klen, NULL, 10);
	}
	return -1;
}

static void sleep_us(unsigned int us)
{
	struct timespec ts = { .tv_sec = us / 1000000u,
			       .tv_nsec = (long)(us % 1000000u) * 1000L };

	nanosleep(&ts, NULL); /* EINTR: just poll earlier */
}

static int cmp_pid(const void *a, const void *b)
{
	pid_t x = *(const pid_t *)a, y = *(const pid_t *)b;

	return (x > y) - (x < y);
}

/* Make room for n more elements of size sz in *arr (capacity *cap). */
static int grow(void *arr, size_t *cap, size_t need, size_t sz)
{
	void **p = arr;
	size_t ncap;
	void *q;

	if (need <= *cap)
		return 0;
	ncap = *cap ? *cap : 16;
	while (ncap < need)
		ncap *= 2;
	q = realloc(*p, ncap * sz);
	if (!q)
		return pyx_err_set(PYX_E_NOMEM, "out of memory (%zu bytes)",
				   ncap * sz);
	*p = q;
	*cap = ncap;
	return 0;
}

/* ---- the emergency registry ------------------------------------------- */

/* Every seized thread of every proc, published with atomic stores so that
 * a signal handler can detach them.  Slot value 0 is free. */
#define REG_MAX 65536
_Static_assert(ATOMIC_INT_LOCK_FREE == 2, "lock-free atomic int needed");
static _Atomic int reg_tid[REG_MAX];
static _Atomic int reg_sig[REG_MAX];
static _Atomic size_t reg_hint;

static int reg_add(pid_t tid)
{
	size_t start = atomic_load_explicit(&reg_hint, memory_order_relaxed);

	for (size_t i = 0; i < REG_MAX; i++) {
		size_t k = (start + i) % REG_MAX;
		int expect = 0;

		if (atomic_load_explicit(&reg_tid[k], memory_order_relaxed))
			continue;
		atomic_store(&reg_sig[k], 0);
		if (atomic_compare_exchange_strong(&reg_tid[k], &expect,
						   (int)tid)) {
			atomic_store_explicit(&reg_hint, k + 1,
					      memory_order_relaxed);
			return (int)k;
		}
	}
	return -1; /* full: the thread is still released when we exit */
}

static void reg_del(int slot, pid_t tid)
{
	int expect = (int)tid;

	if (slot < 0)
		return;
	/* Only if it is still ours (an emergency resume may have cleared it
	 * and another thread may have taken the slot since). */
	atomic_compare_exchange_strong(&reg_tid[slot], &expect, 0);
}

static void reg_set_sig(int slot, int sig)
{
	if (slot >= 0)
		atomic_store(&reg_sig[slot], sig);
}

/* The signal a thread in a ptrace-stop has dequeued and would lose on a
 * PTRACE_DETACH without it, or 0.  The kernel's siginfo tells a
 * signal-delivery-stop from our interrupt and from a group-stop, whose
 * si_code carries PTRACE_EVENT_STOP: this covers a stop nobody has waited
 * for yet, and one waited for just before the registry was told.  Only
 * system calls: async-signal-safe. */
static int dequeued_signal(pid_t tid)
{
	siginfo_t si;

	memset(&si, 0, sizeof(si));
	if (ptrace(PTRACE_GETSIGINFO, tid, NULL, &si) != 0)
		return 0; /* not stopped (still pending), or gone */
	if ((si.si_code >> 8) == PTRACE_EVENT_STOP)
		return 0;
	return si.si_signo > 0 && si.si_signo < NSIG ? si.si_signo : 0;
}

int pyx_proc_emergency_resume(void)
{
	int saved = errno, n = 0;

	for (size_t i = 0; i < REG_MAX; i++) {
		int tid, sig;

		if (!atomic_load_explicit(&reg_tid[i], memory_order_relaxed))
			continue;
		tid = atomic_exchange(&reg_tid[i], 0);
		if (tid <= 0)
			continue;
		n++;
		sig = atomic_load(&reg_sig[i]);
		if (!sig)
			sig = dequeued_signal((pid_t)tid);
		ptrace(PTRACE_DETACH, (pid_t)tid, NULL, (void *)(long)sig);
	}
	errno = saved;
	return n;
}

/* ---- maps ------------------------------------------------------------- */

static void free_maps(struct pyx_map *maps, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(maps[i].path);
	free(maps);
}

static int cmp_map(const void *a, const void *b)
{
	const struct pyx_map *x = a, *y = b;

	return (x->start > y->start) - (x->start < y->start);
}

/* One line of /proc/PID/maps, without its newline:
 * "start-end perms offset major:minor inode   path". */
static int parse_map_line(char *line, struct pyx_map *m)
{
	unsigned long long start, end, off, ino;
	unsigned int maj, mnr;
	char perms[8];
	int pos = -1;
	char *p;

	if (sscanf(line, "%llx-%llx %7s %llx %x:%x %llu%n", &start, &end,
		   perms, &off, &maj, &mnr, &ino, &pos) != 7 ||
	    pos < 0 || strlen(perms) != 4 || start >= end)
		return -1;
	p = line + pos;
	if (*p && *p != ' ' && *p != '\t')
		return -1;
	while (*p == ' ' || *p == '\t')
		p++;
	memset(m, 0, sizeof(*m));
	m->start = start;
	m->end = end;
	m->offset = off;
	m->inode = ino;
	m->dev_major = maj;
	m->dev_minor = mnr;
	m->r = perms[0] == 'r';
	m->w = perms[1] == 'w';
	m->x = perms[2] == 'x';
	m->p = perms[3] == 'p';
	m->path = strdup(p); /* paths may hold spaces; " (deleted)" kept */
	return m->path ? 0 : -2;
}

static int read_maps(pid_t pid, struct pyx_map **out, size_t *nout)
{
	struct pyx_map *maps = NULL;
	size_t n = 0, cap = 0;
	char path[64], *line = NULL;
	size_t linecap = 0;
	ssize_t len;
	FILE *f;
	int rc = 0;

	*out = NULL;
	*nout = 0;
	snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
	f = fopen(path, "re");
	if (!f) {
		int e = errno;

		if (e == ENOENT || e == ESRCH)
			return pyx_err_set(PYX_E_NO_PROCESS,
					   "no process with PID %d", (int)pid);
		if (e == EACCES || e == EPERM) {
			char what[96];

			snprintf(what, sizeof(what), "cannot read %s", path);
			return permission_error(pid, what, e);
		}
		return pyx_err_set(PYX_E_IO, "open %s: %s", path, strerror(e));
	}
	errno = 0;
	while ((len = getline(&line, &linecap, f)) >= 0) {
		if (len > 0 && line[len - 1] == '\n')
			line[--len] = '\0';
		if (len == 0)
			continue;
		if (n >= PYX_MAPS_MAX_LINES) {
			rc = pyx_err_set(PYX_E_FORMAT,
					 "%s: more than %u mappings; refused",
					 path, PYX_MAPS_MAX_LINES);
			goto out;
		}
		rc = grow(&maps, &cap, n + 1, sizeof(*maps));
		if (rc < 0)
			goto out;
		rc = parse_map_line(line, &maps[n]);
		if (rc == -2) {
			rc = pyx_err_set(PYX_E_NOMEM, "out of memory");
			goto out;
		}
		if (rc < 0) {
			rc = pyx_err_set(PYX_E_FORMAT, "%s: bad line %zu: '%.80s'",
					 path, n + 1, line);
			goto out;
		}
		n++;
		errno = 0;
	}
	if (ferror(f)) {
		int e = errno;

		if (e == ESRCH)
			rc = pyx_err_set(PYX_E_NO_PROCESS,
					 "no process with PID %d", (int)pid);
		else if (e == EACCES || e == EPERM)
			rc = permission_error(pid, "cannot read maps", e);
		else
			rc = pyx_err_set(PYX_E_IO, "read %s: %s", path,
					 strerror(e ? e : EIO));
		goto out;
	}
	/* The kernel prints them sorted; do not rely on it. */
	for (size_t i = 1; i < n; i++) {
		if (maps[i].start < maps[i - 1].start) {
			qsort(maps, n, sizeof(*maps), cmp_map);
			break;
		}
	}
out:
	free(line);
	fclose(f);
	if (rc < 0) {
		free_maps(maps, n);
		return rc;
	}
	*out = maps;
	*nout = n;
	return 0;
}

int pyx_proc_refresh_maps(struct pyx_proc *proc)
{
	struct pyx_map *maps;
	size_t n;
	int rc;

	if (!proc)
		return pyx_err_set(PYX_E_USAGE, "pyx_proc_refresh_maps: NULL");
	rc = read_maps(proc->pid, &maps, &n);
	if (rc < 0)
		return rc;
	if (proc->maps) {
		rc = grow(&proc->retired, &proc->cap_retired,
			  proc->nretired + 1, sizeof(*proc->retired));
		if (rc < 0) {
			free_maps(maps, n);
			return rc;
		}
		proc->retired[proc->nretired++] =
			(struct retired){ proc->maps, proc->nmaps };
	}
	proc->maps = maps;
	proc->nmaps = n;
	return 0;
}

const struct pyx_map *pyx_proc_maps(const struct pyx_proc *proc, size_t *n)
{
	if (!proc) {
		if (n)
			*n = 0;
		return NULL;
	}
	if (n)
		*n = proc->nmaps;
	return proc->maps;
}

const struct pyx_map *pyx_proc_find_map(const struct pyx_proc *proc,
					pyx_addr_t addr)
{
	return proc ? pyx_maps_find(proc->maps, proc->nmaps, addr) : NULL;
}

/* ---- the pin: identity and credentials, taken while stopped ----------- */

#define PIN_MAX_GROUPS 65536 /* NGROUPS_MAX */

static int cmp_gid(const void *a, const void *b)
{
	gid_t x = *(const gid_t *)a, y = *(const gid_t *)b;

	return x < y ? -1 : x > y;
}

struct pin_creds {
	uid_t fsuid;
	gid_t fsgid;
	gid_t *groups;
	size_t ngroups;
	uint64_t cap_eff;
};

/* The 4th of "Uid:" and "Gid:" (fsuid, fsgid), "Groups:" (sorted) and
 * "CapEff:" of /proc/PID/status: what the kernel checks when the target
 * opens a file.  0 or -errno. */
static int read_creds(pid_t pid, struct pin_creds *c)
{
	char path[64], *line = NULL;
	size_t cap = 0;
	bool have_uid = false, have_gid = false, have_groups = false,
	     have_cap = false;
	FILE *f;
	int err = 0;

	memset(c, 0, sizeof(*c));
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	if (!(f = fopen(path, "re")))
		return -errno;
	while (getline(&line, &cap, f) > 0) {
		unsigned long v[4];
		unsigned long long cv;

		if (sscanf(line, "Uid: %lu %lu %lu %lu", &v[0], &v[1], &v[2],
			   &v[3]) == 4) {
			c->fsuid = (uid_t)v[3];
			have_uid = true;
		} else if (sscanf(line, "Gid: %lu %lu %lu %lu", &v[0], &v[1],
				  &v[2], &v[3]) == 4) {
			c->fsgid = (gid_t)v[3];
			have_gid = true;
		} else if (sscanf(line, "CapEff: %llx", &cv) == 1) {
			c->cap_eff = cv;
			have_cap = true;
		} else if (strncmp(line, "Groups:", 7) == 0) {
			char *q = line + 7, *end;

			have_groups = true;
			for (;;) {
				unsigned long g = strtoul(q, &end, 10);
				gid_t *ng;

				if (end == q)
					break;
				q = end;
				if (c->ngroups == PIN_MAX_GROUPS) {
					err = -E2BIG;
					goto out;
				}
				ng = realloc(c->groups,
					     (c->ngroups + 1) * sizeof(*ng));
				if (!ng) {
					err = -ENOMEM;
					goto out;
				}
				c->groups = ng;
				c->groups[c->ngroups++] = (gid_t)g;
			}
		}
	}
	if (!have_uid || !have_gid || !have_groups || !have_cap)
		err = -ENOENT;
	else if (c->ngroups)
		qsort(c->groups, c->ngroups, sizeof(*c->groups), cmp_gid);
out:
	if (err) {
		free(c->groups);
		c->groups = NULL;
		c->ngroups = 0;
	}
	free(line);
	fclose(f);
	return err;
}

/* starttime, field 22 of /proc/PID/stat (after the comm's last ')').
 * 0 or -errno. */
static int read_start_time(pid_t pid, uint64_t *out)
{
	char path[64], buf[1024], *p;
	ssize_t k;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	k = read_small(path, buf, sizeof(buf));
	if (k < 0)
		return (int)k;
	p = strrchr(buf, ')');
	if (!p)
		return -EINVAL;
	p++;
	/* Fields 3 (state) to 21 come before it. */
	for (int field = 3; field < 22; field++) {
		while (*p == ' ')
			p++;
		if (!*p)
			return -EINVAL;
		p += strcspn(p, " ");
	}
	while (*p == ' ')
		p++;
	if (*p < '0' || *p > '9')
		return -EINVAL;
	*out = strtoull(p, NULL, 10);
	return 0;
}

static int read_userns(pid_t pid, dev_t *dev, ino_t *ino)
{
	char path[64];
	struct stat st;

	snprintf(path, sizeof(path), "/proc/%d/ns/user", (int)pid);
	if (stat(path, &st) != 0)
		return -errno;
	*dev = st.st_dev;
	*ino = st.st_ino;
	return 0;
}

static int open_link(pid_t pid, const char *what)
{
	char path[64];
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, what);
	fd = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

void pyx_pin_release(struct pyx_target_pin *p)
{
	if (p->pidfd >= 0)
		close(p->pidfd);
	if (p->rootfd >= 0)
		close(p->rootfd);
	if (p->cwdfd >= 0)
		close(p->cwdfd);
	free(p->groups);
	memset(p, 0, sizeof(*p));
	p->pidfd = p->rootfd = p->cwdfd = -1;
}

int pyx_pin_take(pid_t pid, struct pyx_target_pin *p)
{
	struct pin_creds c;
	struct stat self;
	uint64_t again;
	int err;

	pyx_pin_release(p);
#ifdef SYS_pidfd_open
	/* Before anything else: what follows is checked to be of the
	 * process this fd holds (same start time, afterwards). */
	p->pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (p->pidfd < 0 && errno != ENOSYS)
		return -errno;
	if (p->pidfd >= 0)
		(void)fcntl(p->pidfd, F_SETFD, FD_CLOEXEC);
#else
	p->pidfd = -1;
#endif
	if ((err = read_start_time(pid, &p->start_time)) ||
	    (err = read_creds(pid, &c)))
		goto fail;
	p->fsuid = c.fsuid;
	p->fsgid = c.fsgid;
	p->groups = c.groups;
	p->ngroups = c.ngroups;
	p->cap_eff = c.cap_eff;
	if ((err = read_userns(pid, &p->userns_dev, &p->userns_ino)))
		goto fail;
	p->same_userns = stat("/proc/self/ns/user", &self) == 0 &&
			 self.st_dev == p->userns_dev &&
			 self.st_ino == p->userns_ino;
	if ((p->rootfd = open_link(pid, "root")) < 0) {
		err = p->rootfd;
		goto fail;
	}
	if ((p->cwdfd = open_link(pid, "cwd")) < 0) {
		err = p->cwdfd;
		goto fail;
	}
	/* Still the process the pidfd holds (not a new one with its PID)? */
	if ((err = read_start_time(pid, &again)))
		goto fail;
	if (again != p->start_time) {
		err = -ESRCH;
		goto fail;
	}
	p->valid = true;
	return 0;
fail:
	pyx_pin_release(p);
	return err;
}

int pyx_pin_check(const struct pyx_target_pin *p, pid_t pid)
{
	struct pin_creds c;
	uint64_t start;
	dev_t dev = 0;
	ino_t ino = 0;
	bool same;

	if (!p->valid)
		return -ESRCH;
	if (p->pidfd >= 0) {
		/* A pidfd polls readable once its process has exited. */
		struct pollfd pfd = { .fd = p->pidfd, .events = POLLIN };

		if (poll(&pfd, 1, 0) != 0)
			return -ESRCH;
	}
	if (read_start_time(pid, &start) || start != p->start_time)
		return -ESRCH;
	if (read_userns(pid, &dev, &ino) || dev != p->userns_dev ||
	    ino != p->userns_ino)
		return -EPERM;
	if (read_creds(pid, &c))
		return -ESRCH;
	same = c.fsuid == p->fsuid && c.fsgid == p->fsgid &&
	       c.cap_eff == p->cap_eff && c.ngroups == p->ngroups &&
	       (!c.ngroups || memcmp(c.groups, p->groups,
				     c.ngroups * sizeof(*c.groups)) == 0);
	free(c.groups);
	return same ? 0 : -EPERM;
}

const struct pyx_target_pin *pyx_proc_pin(const struct pyx_proc *proc)
{
	return proc ? &proc->pin : NULL;
}

/* ---- open / free ------------------------------------------------------ */

int pyx_proc_open(pid_t pid, struct pyx_proc **out)
{
	struct pyx_proc *proc;
	char path[64];
	struct stat sb;
	long tgid;
	int rc;

	if (!out)
		return pyx_err_set(PYX_E_USAGE, "pyx_proc_open: NULL out");
	*out = NULL;
	if (pid <= 0)
		return pyx_err_set(PYX_E_NO_PROCESS, "no process with PID %d",
				   (int)pid);
	snprintf(path, sizeof(path), "/proc/%d", (int)pid);
	if (stat(path, &sb) != 0) {
		int e = errno;

		if (e == ENOENT || e == ESRCH)
			return pyx_err_set(PYX_E_NO_PROCESS,
					   "no process with PID %d", (int)pid);
		if (e == EACCES || e == EPERM)
			return permission_error(pid, "cannot stat /proc/PID",
						e);
		return pyx_err_set(PYX_E_IO, "stat %s: %s", path, strerror(e));
	}
	/* /proc/TID exists for every thread, though it is not listed. */
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	tgid = status_field(path, "Tgid");
	if (tgid > 0 && tgid != pid)
		return pyx_err_set(PYX_E_NO_PROCESS,
				   "PID %d is a thread of process %ld; use %ld",
				   (int)pid, tgid, tgid);

	proc = calloc(1, sizeof(*proc));
	if (!proc)
		return pyx_err_set(PYX_E_NOMEM, "out of memory");
	proc->pid = pid;
	proc->pin.pidfd = proc->pin.rootfd = proc->pin.cwdfd = -1;
	proc->pagemap = -1;
	rc = read_maps(pid, &proc->maps, &proc->nmaps);
	if (rc < 0)
		goto fail;
	if (proc->nmaps == 0) {
		char st = task_state_char(pid, pid);

		if (st == 'Z' || st == 'X' || st == 0) {
			rc = pyx_err_set(PYX_E_NO_PROCESS,
					 "process %d has exited (zombie)",
					 (int)pid);
			goto fail;
		}
	}
	/* For a command that never stops the target; each stop takes a new
	 * one.  Without a pin (the process is going) nothing is opened as
	 * the target. */
	if (pyx_pin_take(pid, &proc->pin))
		pyx_debug("process %d: cannot pin its identity and credentials",
			  (int)pid);
	*out = proc;
	return 0;
fail:
	free_maps(proc->maps, proc->nmaps);
	free(proc);
	return rc;
}

pid_t pyx_proc_pid(const struct pyx_proc *proc)
{
	return proc ? proc->pid : 0;
}


/* A relative path is taken relative to the target's working directory
 * ("/proc/PID/cwd/" + path), an absolute one to its root directory. */
int pyx_proc_path(const struct pyx_proc *proc, const char *path, char *buf,
		  size_t n)
{
	int len;

	if (!proc || !path || !buf || n == 0)
		return pyx_err_set(PYX_E_USAGE, "pyx_proc_path: bad arguments");
	if (path[0] == '/')
		len = snprintf(buf, n, "/proc/%d/root%s", (int)proc->pid, path);
	else
		len = snprintf(buf, n, "/proc/%d/cwd/%s", (int)proc->pid, path);
	if (len < 0 || (size_t)len >= n) {
		buf[0] = '\0';
		return pyx_err_set(PYX_E_IO,
				   "path of process %d too long (%zu bytes max): "
				   "%.200s",
				   (int)proc->pid, n, path);
	}
	return 0;
}

/* ---- threads ---------------------------------------------------------- */

/* Read /proc/PID/task into proc->scan. */
static int read_task_dir(struct pyx_proc *proc, size_t *n)
{
	char path[64];
	struct dirent *de;
	DIR *d;
	int rc = 0;

	*n = 0;
	snprintf(path, sizeof(path), "/proc/%d/task", (int)proc->pid);
	d = opendir(path);
	if (!d) {
		int e = errno;

		if (e == ENOENT || e == ESRCH)
			return pyx_err_set(PYX_E_EXITED, "process %d exited",
					   (int)proc->pid);
		if (e == EACCES || e == EPERM)
			return permission_error(proc->pid,
						"cannot read /proc/PID/task", e);
		return pyx_err_set(PYX_E_IO, "opendir %s: %s", path,
				   strerror(e));
	}
	for (;;) {
		char *end;
		long tid;

		errno = 0;
		de = readdir(d);
		if (!de) {
			if (errno == ENOENT || errno == ESRCH)
				rc = pyx_err_set(PYX_E_EXITED,
						 "process %d exited",
						 (int)proc->pid);
			else if (errno)
				rc = pyx_err_set(PYX_E_IO, "readdir %s: %s",
						 path, strerror(errno));
			break;
		}
		if (de->d_name[0] < '0' || de->d_name[0] > '9')
			continue;
		tid = strtol(de->d_name, &end, 10);
		if (*end || tid <= 0 || tid > INT_MAX)
			continue;
		if (*n >= PYX_MAX_THREADS) {
			rc = pyx_err_set(PYX_E_NOT_SUPPORTED,
					 "process %d has more than %d threads",
					 (int)proc->pid, PYX_MAX_THREADS);
			break;
		}
		rc = grow(&proc->scan, &proc->cap_scan, *n + 1,
			  sizeof(*proc->scan));
		if (rc < 0)
			break;
		proc->scan[(*n)++] = (pid_t)tid;
	}
	closedir(d);
	if (rc < 0)
		*n = 0;
	return rc;
}

static struct task *find_task(const struct pyx_proc *proc, pid_t tid)
{
	for (size_t i = 0; i < proc->ntasks; i++)
		if (proc->tasks[i].tid == tid)
			return &proc->tasks[i];
	return NULL;
}

/* Forget a task (the callers compact the array).  dead: the thread is
 * gone; reap it if it is a traced zombie (not the leader: its exit status
 * may belong to the real parent). */
static void forget_task(struct pyx_proc *proc, const struct task *t,
			bool dead)
{
	reg_del(t->slot, t->tid);
	if (dead && t->tid != proc->pid) {
		int st;

		while (waitpid(t->tid, &st, WNOHANG | __WALL) < 0 &&
		       errno == EINTR)
			;
	}
}

static int add_skip(struct pyx_proc *proc, pid_t tid)
{
	int rc = grow(&proc->skip, &proc->cap_skip, proc->nskip + 1,
		      sizeof(*proc->skip));

	if (rc < 0)
		return rc;
	proc->skip[proc->nskip++] = tid;
	return 0;
}

/* PTRACE_SEIZE said EPERM: a zombie (skip it), another tracer (BUSY), or a
 * plain lack of permission. */
static int seize_eperm(struct pyx_proc *proc, pid_t tid)
{
	char path[64], comm[64] = "?";
	char st = task_state_char(proc->pid, tid);
	long tracer;

	if (st == 'Z' || st == 'X' || st == 0)
		return add_skip(proc, tid);
	snprintf(path, sizeof(path), "/proc/%d/task/%d/status", (int)proc->pid,
		 (int)tid);
	tracer = status_field(path, "TracerPid");
	if (tracer > 0) {
		snprintf(path, sizeof(path), "/proc/%ld/comm", tracer);
		if (read_small(path, comm, sizeof(comm)) > 0)
			comm[strcspn(comm, "\n")] = '\0';
		if (tracer == getpid() || tracer == (pid_t)syscall(SYS_gettid))
			return pyx_err_set(PYX_E_BUSY,
					   "thread %d of process %d is already "
					   "traced by this process",
					   (int)tid, (int)proc->pid);
		return pyx_err_set(PYX_E_BUSY,
				   "process %d is already traced by PID %ld "
				   "(%s)",
				   (int)proc->pid, tracer, comm);
	}
	if (proc->pid == getpid())
		return pyx_err_set(PYX_E_PERMISSION,
				   "a process cannot stop itself (PID %d)",
				   (int)proc->pid);
	{
		char what[96];

		snprintf(what, sizeof(what), "ptrace(PTRACE_SEIZE, %d)",
			 (int)tid);
		return permission_error(proc->pid, what, EPERM);
	}
}

/* Test hook: a pause between PTRACE_SEIZE and PTRACE_INTERRUPT, so that
 * tests can make signal-delivery-stops happen. */
static unsigned int test_seize_delay_us;

void pyx_proc_test_set_seize_delay(unsigned int us)
{
	test_seize_delay_us = us;
}

static int seize_one(struct pyx_proc *proc, pid_t tid)
{
	struct task *t;
	int rc, slot;

	if (proc->ntasks >= PYX_MAX_THREADS)
		return pyx_err_set(PYX_E_NOT_SUPPORTED,
				   "process %d has more than %d threads",
				   (int)proc->pid, PYX_MAX_THREADS);
	/* Room first: a seized thread must never go unrecorded. */
	rc = grow(&proc->tasks, &proc->cap_tasks, proc->ntasks + 1,
		  sizeof(*proc->tasks));
	if (rc < 0)
		return rc;
	/* Published before the seize: a signal handler that runs in between
	 * must know that a thread is (being) stopped. */
	slot = reg_add(tid);
	if (ptrace(PTRACE_SEIZE, tid, NULL, NULL) != 0) {
		int e = errno;

		reg_del(slot, tid);
		if (e == ESRCH) /* gone meanwhile */
			return add_skip(proc, tid);
		if (e == EPERM)
			return seize_eperm(proc, tid);
		return pyx_err_set(PYX_E_IO, "ptrace(PTRACE_SEIZE, %d): %s",
				   (int)tid, strerror(e));
	}
	t = &proc->tasks[proc->ntasks++];
	t->tid = tid;
	t->sig = 0;
	t->state = TASK_PENDING;
	t->slot = slot;
	if (t->slot < 0)
		pyx_debug("emergency registry full; thread %d not registered",
			  (int)tid);
	if (!proc->pause_start)
		proc->pause_start = pyx_now_ns();
	if (test_seize_delay_us)
		sleep_us(test_seize_delay_us);
	/* ESRCH: it exited after the seize; waitpid will tell. */
	(void)ptrace(PTRACE_INTERRUPT, tid, NULL, NULL);
	return 0;
}

/* Seize every thread of /proc/PID/task not seen yet; *nnew counts them. */
static int scan_and_seize(struct pyx_proc *proc, size_t *nnew)
{
	size_t n, nknown = 0;
	int rc;

	*nnew = 0;
	rc = read_task_dir(proc, &n);
	if (rc < 0)
		return rc;
	rc = grow(&proc->known, &proc->cap_known,
		  proc->ntasks + proc->nskip + 1, sizeof(*proc->known));
	if (rc < 0)
		return rc;
	for (size_t i = 0; i < proc->ntasks; i++)
		proc->known[nknown++] = proc->tasks[i].tid;
	for (size_t i = 0; i < proc->nskip; i++)
		proc->known[nknown++] = proc->skip[i];
	qsort(proc->known, nknown, sizeof(*proc->known), cmp_pid);
	for (size_t i = 0; i < n; i++) {
		pid_t tid = proc->scan[i];

		if (bsearch(&tid, proc->known, nknown, sizeof(*proc->known),
			    cmp_pid))
			continue;
		(*nnew)++;
		rc = seize_one(proc, tid);
		if (rc < 0)
			return rc;
	}
	return 0;
}

/* waitpid() every pending task once, without blocking.  *nrun: how many
 * are still running.  Returns true if the leader reported its exit (the
 * whole process is gone). */
static bool poll_tasks(struct pyx_proc *proc, size_t *nrun)
{
	bool leader_gone = false;
	size_t w = 0;

	*nrun = 0;
	for (size_t i = 0; i < proc->ntasks; i++) {
		struct task *t = &proc->tasks[i];
		pid_t r;
		int st = 0;

		if (t->state == TASK_PENDING) {
			do
				r = waitpid(t->tid, &st, WNOHANG | __WALL);
			while (r < 0 && errno == EINTR);
			if (r < 0) { /* ECHILD: no longer our tracee */
				if (t->tid == proc->pid &&
				    !task_state_char(proc->pid, proc->pid))
					leader_gone = true;
				forget_task(proc, t, false);
				continue;
			}
			if (r > 0 && (WIFEXITED(st) || WIFSIGNALED(st))) {
				/* A traced leader reports only when the
				 * group is empty. */
				if (t->tid == proc->pid)
					leader_gone = true;
				forget_task(proc, t, false);
				continue;
			}
			if (r > 0 && WIFSTOPPED(st)) {
				/* status>>16 == PTRACE_EVENT_STOP: our
				 * interrupt, or a group-stop (the kernel
				 * keeps it across detach).  0: a
				 * signal-delivery-stop: the signal was
				 * dequeued and is ours to hand back. */
				if ((st >> 16) == 0) {
					t->sig = WSTOPSIG(st);
					reg_set_sig(t->slot, t->sig);
				}
				t->state = TASK_STOPPED;
			} else {
				(*nrun)++; /* r == 0, or WIFCONTINUED */
			}
		}
		proc->tasks[w++] = *t;
	}
	proc->ntasks = w;
	return leader_gone;
}

/* Drop pending tasks that are zombies or gone (a zombie leader is never
 * reported while other threads live; a zombie never stops). */
static void drop_dead_pending(struct pyx_proc *proc)
{
	size_t w = 0;

	for (size_t i = 0; i < proc->ntasks; i++) {
		struct task *t = &proc->tasks[i];

		if (t->state == TASK_PENDING) {
			char st = task_state_char(proc->pid, t->tid);

			if (st == 'Z' || st == 'X' || st == 0) {
				(void)add_skip(proc, t->tid);
				forget_task(proc, t, true);
				continue;
			}
		}
		proc->tasks[w++] = *t;
	}
	proc->ntasks = w;
}

/* Detach every stopped task, handing back its signal. */
static void detach_stopped(struct pyx_proc *proc)
{
	size_t w = 0;

	for (size_t i = 0; i < proc->ntasks; i++) {
		struct task *t = &proc->tasks[i];

		if (t->state != TASK_STOPPED) {
			proc->tasks[w++] = *t;
			continue;
		}
		if (ptrace(PTRACE_DETACH, t->tid, NULL, (void *)(long)t->sig) ==
		    0) {
			if (t->sig)
				proc->reinjected++;
			forget_task(proc, t, false);
		} else if (errno == ESRCH) {
			/* Killed while stopped (SIGKILL), or released by
			 * pyx_proc_emergency_resume(). */
			forget_task(proc, t, true);
		} else {
			pyx_warn("ptrace(PTRACE_DETACH, %d): %s", (int)t->tid,
				 strerror(errno));
			forget_task(proc, t, false);
		}
	}
	proc->ntasks = w;
}

/* Release threads left pending by a stop that timed out, if they have
 * stopped since. */
static void release_pending(struct pyx_proc *proc)
{
	size_t nrun;

	if (proc->stopped || !proc->ntasks)
		return;
	(void)poll_tasks(proc, &nrun);
	drop_dead_pending(proc);
	detach_stopped(proc);
	proc->nskip = 0;
}

static void end_pause(struct pyx_proc *proc)
{
	if (proc->pause_start) {
		proc->pause_total += pyx_now_ns() - proc->pause_start;
		proc->pause_start = 0;
	}
}

/* After an error: detach what is stopped.  Threads interrupted a moment
 * ago normally stop within microseconds: wait up to 20 ms for them, so
 * that the target is left running; any still pending then are released
 * by a later call (see the top of this file). */
static int abort_stop(struct pyx_proc *proc, int rc)
{
	char detail[512];
	unsigned int us = 50;

	snprintf(detail, sizeof(detail), "%s", pyx_err_detail());
	proc->stopped = false;
	detach_stopped(proc);
	release_pending(proc);
	for (uint64_t end = pyx_now_ns() + 20000000u;
	     proc->ntasks && pyx_now_ns() < end;) {
		sleep_us(us);
		if (us < 2000)
			us *= 2;
		release_pending(proc);
	}
	end_pause(proc);
	proc->nskip = 0;
	/* Keep the detail of the error, whatever the cleanup recorded. */
	return pyx_err_set((enum pyx_error)-rc, "%s", detail);
}

static size_t count_pending(const struct pyx_proc *proc)
{
	size_t n = 0;

	for (size_t i = 0; i < proc->ntasks; i++)
		n += proc->tasks[i].state == TASK_PENDING;
	return n;
}

static int timeout_error(struct pyx_proc *proc, int deadline_ms)
{
	size_t npend = 0, total = proc->ntasks;
	pid_t first = 0;
	char st = '?';

	for (size_t i = 0; i < proc->ntasks; i++) {
		if (proc->tasks[i].state == TASK_PENDING) {
			if (!npend)
				first = proc->tasks[i].tid;
			npend++;
		}
	}
	if (first && task_state_char(proc->pid, first))
		st = task_state_char(proc->pid, first);
	return pyx_err_set(PYX_E_TIMEOUT,
			   "%zu of %zu threads of process %d did not stop "
			   "within %d ms (thread %d is in state '%c')",
			   npend, total, (int)proc->pid, deadline_ms,
			   (int)first, st);
}

int pyx_proc_stop(struct pyx_proc *proc, int deadline_ms)
{
	uint64_t t0, deadline, next_check;
	size_t nnew, nrun, nstopped;
	int rc;

	if (!proc)
		return pyx_err_set(PYX_E_USAGE, "pyx_proc_stop: NULL");
	if (proc->stopped)
		return 0;
	if (deadline_ms <= 0)
		deadline_ms = PYX_DEFAULT_DEADLINE_MS;
	t0 = pyx_now_ns();
	deadline = t0 + (uint64_t)deadline_ms * 1000000u;
	next_check = t0 + 2000000u;
	proc->nskip = 0;
	/* Threads still pending from a stop that timed out are seized and
	 * interrupted already: the pause starts now. */
	proc->pause_start = proc->ntasks ? t0 : 0;
	for (;;) {
		unsigned int us = 10;
		/* Whether every thread known was stopped before this scan
		 * began: then none of them can have started another one
		 * since, and a scan that finds nothing new is the last. */
		bool settled = proc->ntasks > 0 && !count_pending(proc);

		rc = scan_and_seize(proc, &nnew);
		if (rc < 0)
			goto fail;
		for (;;) {
			uint64_t now;

			if (poll_tasks(proc, &nrun)) {
				rc = pyx_err_set(PYX_E_EXITED,
						 "process %d exited",
						 (int)proc->pid);
				goto fail;
			}
			if (!nrun)
				break;
			now = pyx_now_ns();
			if (now >= deadline) {
				rc = timeout_error(proc, deadline_ms);
				goto fail;
			}
			if (now >= next_check) {
				drop_dead_pending(proc);
				next_check = now + 2000000u;
				continue;
			}
			if ((uint64_t)us * 1000u > deadline - now)
				us = (unsigned int)((deadline - now) / 1000u) + 1;
			sleep_us(us);
			if (us < 1000)
				us *= 2;
		}
		if (!nnew && (settled || !proc->ntasks))
			break; /* (nothing at all: it exited) */
		if (pyx_now_ns() >= deadline) {
			rc = timeout_error(proc, deadline_ms);
			goto fail;
		}
	}
	nstopped = proc->ntasks;
	if (!nstopped) {
		rc = pyx_err_set(PYX_E_EXITED, "process %d exited",
				 (int)proc->pid);
		goto fail;
	}
	proc->stopped = true;
	proc->nskip = 0;
	/* Now, while no thread of it runs: it cannot exec or change its
	 * credentials until we let it go.  The page map opened under the
	 * last pin is of the address space it had then (an exec since
	 * replaced it): opened again under this one. */
	if (proc->pagemap >= 0)
		close(proc->pagemap);
	proc->pagemap = -1;
	if (pyx_pin_take(proc->pid, &proc->pin))
		pyx_debug("process %d: cannot pin its identity and credentials",
			  (int)proc->pid);
	return 0;
fail:
	return abort_stop(proc, rc);
}

int pyx_proc_resume(struct pyx_proc *proc)
{
	if (!proc)
		return 0;
	if (proc->stopped) {
		proc->stopped = false;
		detach_stopped(proc);
	}
	release_pending(proc);
	end_pause(proc);
	return 0;
}

bool pyx_proc_is_stopped(const struct pyx_proc *proc)
{
	return proc && proc->stopped;
}

uint64_t pyx_proc_pause_ns(const struct pyx_proc *proc)
{
	uint64_t t;

	if (!proc)
		return 0;
	t = proc->pause_total;
	if (proc->pause_start)
		t += pyx_now_ns() - proc->pause_start;
	return t;
}

const pid_t *pyx_proc_threads(struct pyx_proc *proc, size_t *n)
{
	size_t k = 0;

	if (n)
		*n = 0;
	if (!proc || !n) {
		pyx_err_set(PYX_E_USAGE, "pyx_proc_threads: NULL");
		return NULL;
	}
	if (proc->stopped) {
		if (grow(&proc->tids, &proc->cap_tids, proc->ntasks + 1,
			 sizeof(*proc->tids)) < 0)
			return NULL;
		for (size_t i = 0; i < proc->ntasks; i++)
			if (proc->tasks[i].state == TASK_STOPPED)
				proc->tids[k++] = proc->tasks[i].tid;
	} else {
		release_pending(proc);
		if (read_task_dir(proc, &k) < 0)
			return NULL;
		if (grow(&proc->tids, &proc->cap_tids, k + 1,
			 sizeof(*proc->tids)) < 0)
			return NULL;
		memcpy(proc->tids, proc->scan, k * sizeof(*proc->tids));
	}
	*n = k;
	return proc->tids;
}

int pyx_proc_thread_regs(const struct pyx_proc *proc, pid_t tid, void *regs,
			 size_t regs_size)
{
	const struct task *t;

	if (!proc || !regs)
		return pyx_err_set(PYX_E_USAGE, "pyx_proc_thread_regs: NULL");
	t = find_task(proc, tid);
	if (!proc->stopped || !t || t->state != TASK_STOPPED)
		return pyx_err_set(PYX_E_NOT_SUPPORTED,
				   "thread %d of process %d is not stopped",
				   (int)tid, (int)proc->pid);
#if defined(__x86_64__)
	{
		struct user_regs_struct r;

		if (ptrace(PTRACE_GETREGS, tid, NULL, &r) != 0)
			return errno == ESRCH ?
				pyx_err_set(PYX_E_EXITED, "thread %d exited",
					    (int)tid) :
				pyx_err_set(PYX_E_IO,
					    "ptrace(PTRACE_GETREGS, %d): %s",
					    (int)tid, strerror(errno));
		memcpy(regs, &r, regs_size < sizeof(r) ? regs_size : sizeof(r));
		return 0;
	}
#else
	(void)regs_size;
	return pyx_err_set(PYX_E_NOT_SUPPORTED, "registers: x86_64 only");
#endif
}

int pyx_proc_thread_tls(const struct pyx_proc *proc, pid_t tid,
			pyx_addr_t *out)
{
	const struct task *t;

	if (!proc || !out)
		return pyx_err_set(PYX_E_USAGE, "pyx_proc_thread_tls: NULL");
	t = find_task(proc, tid);
	if (!proc->stopped || !t || t->state != TASK_STOPPED)
		return pyx_err_set(PYX_E_NOT_SUPPORTED,
				   "thread %d of process %d is not stopped",
				   (int)tid, (int)proc->pid);
#if defined(__x86_64__)
	{
		/* glibc makes fs_base pthread_self(). */
		struct user_regs_struct regs;
		int err = pyx_proc_thread_regs(proc, tid, &regs, sizeof(regs));

		if (err)
			return err;
		*out = (pyx_addr_t)regs.fs_base;
		return 0;
	}
#elif defined(__aarch64__)
	{
		/* The raw TPIDR_EL0; glibc puts struct pthread just below
		 * it on aarch64, so it is not pthread_self() there. */
		uint64_t tp = 0;
		struct iovec iov = { &tp, sizeof(tp) };

		if (ptrace(PTRACE_GETREGSET, tid, (void *)NT_ARM_TLS, &iov) !=
		    0) {
			if (errno == ESRCH)
				return pyx_err_set(PYX_E_EXITED,
						   "thread %d exited", (int)tid);
			return pyx_err_set(PYX_E_IO,
					   "ptrace(PTRACE_GETREGSET, %d): %s",
					   (int)tid, strerror(errno));
		}
		*out = (pyx_addr_t)tp;
		return 0;
	}
#else
	return pyx_err_set(PYX_E_NOT_SUPPORTED,
			   "thread TLS is not supported on this architecture");
#endif
}

int pyx_proc_thread_comm(const struct pyx_proc *proc, pid_t tid, char *buf,
			 size_t n)
{
	char path[64], comm[64];
	ssize_t k;

	if (!proc || !buf || n == 0)
		return pyx_err_set(PYX_E_USAGE, "pyx_proc_thread_comm: bad "
						"arguments");
	buf[0] = '\0';
	snprintf(path, sizeof(path), "/proc/%d/task/%d/comm", (int)proc->pid,
		 (int)tid);
	k = read_small(path, comm, sizeof(comm));
	if (k < 0) {
		if (k == -ENOENT || k == -ESRCH)
			return pyx_err_set(PYX_E_NO_PROCESS,
					   "no thread %d in process %d",
					   (int)tid, (int)proc->pid);
		if (k == -EACCES || k == -EPERM)
			return permission_error(proc->pid, "cannot read comm",
						(int)-k);
		return pyx_err_set(PYX_E_IO, "read %s: %s", path,
				   strerror((int)-k));
	}
	comm[strcspn(comm, "\n")] = '\0';
	snprintf(buf, n, "%s", comm);
	return 0;
}

int64_t pyx_proc_rss_bytes(const struct pyx_proc *proc)
{
	char path[64], buf[4096], *line;
	long long kib;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)proc->pid);
	if (read_small(path, buf, sizeof(buf)) < 0)
		return -1;
	line = strstr(buf, "\nVmRSS:");
	if (!line || sscanf(line + 7, " %lld", &kib) != 1)
		return -1;
	return (int64_t)kib * 1024;
}

/* /proc/PID/<what> for reading, kept only if the PID still names the
 * process pinned (same start time, same credentials) once it is open: the
 * fd then holds that process, never one that took its PID since.  An fd,
 * or a -PYX_E_* error with a detail. */
static int open_pinned(const struct pyx_proc *proc, const char *what)
{
	char path[64];
	int fd, e, rc;

	if (!proc->pin.valid)
		return pyx_err_set(PYX_E_EXITED, "process %d exited (not "
				   "pinned)", (int)proc->pid);
	snprintf(path, sizeof(path), "/proc/%d/%s", (int)proc->pid, what);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		e = errno;
		if (e == ENOENT || e == ESRCH)
			return pyx_err_set(PYX_E_EXITED, "process %d exited",
					   (int)proc->pid);
		if (e == EACCES || e == EPERM)
			return permission_error(proc->pid, path, e);
		return pyx_err_set(PYX_E_IO, "open %s: %s", path, strerror(e));
	}
	if ((rc = pyx_pin_check(&proc->pin, proc->pid))) {
		close(fd);
		if (rc == -EPERM)
			return pyx_err_set(PYX_E_PERMISSION, "process %d "
					   "changed its credentials; %s not "
					   "read", (int)proc->pid, path);
		return pyx_err_set(PYX_E_EXITED, "process %d exited",
				   (int)proc->pid);
	}
	return fd;
}

static int smaps_flush(struct pyx_smaps_entry *e, bool *have,
		       int (*fn)(void *, const struct pyx_smaps_entry *),
		       void *arg)
{
	if (!*have)
		return 0;
	*have = false;
	return fn(arg, e);
}

int pyx_proc_smaps(struct pyx_proc *proc,
		   int (*fn)(void *arg, const struct pyx_smaps_entry *e),
		   void *arg)
{
	struct pyx_smaps_entry cur = { 0 };
	char *line = NULL, *path = NULL;
	size_t lcap = 0, n = 0;
	bool have = false;
	int fd, rc = 0;
	FILE *f;

	if ((fd = open_pinned(proc, "smaps")) < 0)
		return fd;
	f = fdopen(fd, "re");
	if (!f) {
		close(fd);
		return pyx_err_set(PYX_E_NOMEM, "out of memory");
	}
	errno = 0;
	while (getline(&line, &lcap, f) > 0) {
		unsigned long long s, e, off, kb;
		char perms[8];
		int pos = 0;

		if (sscanf(line, "%llx-%llx %7s %llx %*s %*s %n", &s, &e, perms,
			   &off, &pos) >= 4 && pos > 0) {
			char *p = line + pos;

			if ((rc = smaps_flush(&cur, &have, fn, arg)))
				goto out;
			if (++n > PYX_SMAPS_MAX) {
				rc = pyx_err_set(PYX_E_FORMAT, "/proc/%d/smaps: "
						 "more than %u mappings",
						 (int)proc->pid, PYX_SMAPS_MAX);
				goto out;
			}
			p[strcspn(p, "\n")] = '\0';
			free(path);
			if (!(path = strdup(p))) {
				rc = pyx_err_set(PYX_E_NOMEM, "out of memory");
				goto out;
			}
			cur = (struct pyx_smaps_entry){ .start = s, .end = e,
							.offset = off,
							.path = path };
			snprintf(cur.perms, sizeof(cur.perms), "%.4s", perms);
			have = true;
		} else if (have && sscanf(line, "Rss: %llu kB", &kb) == 1) {
			cur.rss_bytes = (uint64_t)kb * 1024;
		}
	}
	if (ferror(f)) {
		rc = errno == ESRCH ? pyx_err_set(PYX_E_EXITED, "process %d "
						  "exited", (int)proc->pid)
				    : pyx_err_set(PYX_E_IO, "/proc/%d/smaps: "
						  "%s", (int)proc->pid,
						  strerror(errno));
		goto out;
	}
	rc = smaps_flush(&cur, &have, fn, arg);
out:
	free(path);
	free(line);
	fclose(f);
	return rc;
}

/* Present pages (bit 63 of each 8-byte entry), as smaps counts Rss. */
int pyx_proc_resident(struct pyx_proc *proc, uint64_t start, uint64_t end,
		      uint64_t *bytes)
{
	uint64_t buf[512], total = 0, s = start & ~(uint64_t)(PYX_MEM_PAGE - 1);

	*bytes = 0;
	if (proc->pagemap == -1) {
		int fd = open_pinned(proc, "pagemap");

		if (fd == -PYX_E_EXITED)
			return fd;
		proc->pagemap = fd < 0 ? -2 : fd;
	}
	if (proc->pagemap < 0)
		return pyx_err_set(PYX_E_NOT_SUPPORTED, "process %d: its page "
				   "map cannot be read", (int)proc->pid);
	/* The range is the caller's, made of the target's numbers: bounded
	 * like the heap copy's (16 M pages, 64 GiB). */
	if (end < start || (end - s) / PYX_MEM_PAGE > PYX_RESIDENT_MAX_PAGES)
		return pyx_err_set(PYX_E_BAD_MEMORY, "page map of " PYX_PRIaddr
				   "-" PYX_PRIaddr ": not a range pyxray reads",
				   start, end);
	while (s < end) {
		uint64_t pages = (end - s + PYX_MEM_PAGE - 1) / PYX_MEM_PAGE;
		size_t k = pages < PYX_ARRAY_SIZE(buf) ? (size_t)pages
						       : PYX_ARRAY_SIZE(buf);
		ssize_t got = pread(proc->pagemap, buf, k * 8,
				    (off_t)(s / PYX_MEM_PAGE * 8));

		if (got < 0 && errno == EINTR)
			continue;
		if (got != (ssize_t)(k * 8))
			return pyx_err_set(PYX_E_IO, "process %d: page map "
					   "of " PYX_PRIaddr " cannot be read",
					   (int)proc->pid, s);
		for (size_t i = 0; i < k; i++)
			total += (buf[i] >> 63) & 1;
		s += (uint64_t)k * PYX_MEM_PAGE;
	}
	*bytes = total * PYX_MEM_PAGE;
	return 0;
}

bool pyx_proc_gone(const struct pyx_proc *proc)
{
	char path[64], buf[512], *p;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)proc->pid);
	if (read_small(path, buf, sizeof(buf)) < 0)
		return true;
	p = strrchr(buf, ')');
	return !p || p[1] != ' ' || p[2] == 'Z' || p[2] == 'X';
}

bool pyx_proc_same_pidns(const struct pyx_proc *proc)
{
	char path[64], theirs[128], ours[128];
	ssize_t a, b;

	snprintf(path, sizeof(path), "/proc/%d/ns/pid", (int)proc->pid);
	a = readlink(path, theirs, sizeof(theirs) - 1);
	b = readlink("/proc/self/ns/pid", ours, sizeof(ours) - 1);
	if (a <= 0 || b <= 0)
		return true; /* cannot tell: assume the plain case */
	return a == b && memcmp(theirs, ours, (size_t)a) == 0;
}

int pyx_proc_ns_tid(const struct pyx_proc *proc, pid_t host_tid, pid_t *ns_tid)
{
	char path[64], buf[2048], *line;
	ssize_t k;

	snprintf(path, sizeof(path), "/proc/%d/task/%d/status", (int)proc->pid,
		 (int)host_tid);
	k = read_small(path, buf, sizeof(buf));
	if (k < 0)
		return pyx_err_set(PYX_E_NO_PROCESS, "no thread %d in process %d",
				   (int)host_tid, (int)proc->pid);
	*ns_tid = host_tid;
	line = strstr(buf, "\nNSpid:");
	if (line) {
		char *end = strchr(line + 1, '\n');
		char *last = NULL;

		if (end)
			*end = '\0';
		/* Fields go from the host's namespace to the innermost. */
		for (char *tok = strtok(line + 8, " \t"); tok; tok = strtok(NULL, " \t"))
			last = tok;
		if (last)
			*ns_tid = (pid_t)atoi(last);
	}
	return 0;
}

int pyx_proc_host_tid(struct pyx_proc *proc, pid_t ns_tid, pid_t *host_tid)
{
	const pid_t *tids;
	size_t n;

	tids = pyx_proc_threads(proc, &n);
	for (size_t i = 0; i < n; i++) {
		pid_t ns;

		if (pyx_proc_ns_tid(proc, tids[i], &ns) == 0 && ns == ns_tid) {
			*host_tid = tids[i];
			return 0;
		}
	}
	return pyx_err_set(PYX_E_NO_PROCESS, "no thread with namespace TID %d",
			   (int)ns_tid);
}

void pyx_proc_free(struct pyx_proc *proc)
{
	if (!proc)
		return;
	pyx_proc_resume(proc);
	/* Threads stuck when a stop timed out: give them a moment. */
	for (int i = 0; i < 100 && proc->ntasks; i++) {
		sleep_us(1000);
		release_pending(proc);
	}
	if (proc->ntasks)
		/* Their registry slots stay, so an emergency resume can
		 * still detach them; our exit releases them in any case. */
		pyx_warn("%zu threads of process %d are still seized (they "
			 "never stopped); they run on when this program exits",
			 proc->ntasks, (int)proc->pid);
	pyx_pin_release(&proc->pin);
	if (proc->pagemap >= 0)
		close(proc->pagemap);
	free_maps(proc->maps, proc->nmaps);
	for (size_t i = 0; i < proc->nretired; i++)
		free_maps(proc->retired[i].maps, proc->retired[i].n);
	free(proc->retired);
	free(proc->tasks);
	free(proc->skip);
	free(proc->known);
	free(proc->scan);
	free(proc->tids);
	free(proc);
}

uint64_t pyx_proc_test_reinjected(const struct pyx_proc *proc)
{
	return proc ? proc->reinjected : 0;
}

size_t pyx_proc_test_pending(const struct pyx_proc *proc)
{
	return proc ? count_pending(proc) : 0;
}
