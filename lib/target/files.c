/* The file resolver (pyxray/files.h): the one place that turns a path the
 * target maps or names into a file pyxray opens.
 *
 * pyxray runs as root and the target names the paths, so nothing here opens
 * a target's path as pyxray's own namespace would resolve it:
 *
 * - a path is resolved inside the target's root, as the kernel would for the
 *   target itself: openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS) from
 *   /proc/PID/root, so "..", absolute symlinks and magic links stay inside
 *   (without openat2: a walk of our own, one component at a time, with
 *   O_NOFOLLOW and at most 40 symlinks, as the kernel counts);
 * - a file shown to the user is opened with the target's credentials: a
 *   short-lived thread takes its fsuid, fsgid, groups and effective
 *   capabilities (credentials are per thread for the raw system calls) and
 *   dies with them, so pyxray's own never change;
 * - a file the target maps is reached through /proc/PID/map_files (right in
 *   a chroot, and for a file deleted or replaced since) and must be the file
 *   the maps line names, by device and inode.
 *
 * Library code: errors are -PYX_E_* with a detail; the helpers below return
 * 0 or -errno, and the detail is set once, by the public function.
 */
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/capability.h>
#include <linux/openat2.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "internal.h"
#include "pyxray/files.h"
#include "pyxray/symbols.h"
#include "pyxray/target.h"
#include "target_private.h"

/* openat2 (Linux 5.6) is in the headers of glibc 2.32+ only: the portable
 * binary is built against an older one. */
#ifndef SYS_openat2
#define SYS_openat2 __NR_openat2
#endif

#define MAX_LINKS 40		/* symlinks per resolution, as Linux's MAXSYMLINKS */
#define OPENAT2_RETRIES 8	/* EAGAIN: a rename raced the resolution */

static const char deleted_suffix[] = " (deleted)";

static int err_code(int eno)
{
	return eno == EACCES || eno == EPERM ? PYX_E_PERMISSION : PYX_E_IO;
}

bool pyx_path_is_deleted(const char *path)
{
	size_t len = strlen(path), dl = sizeof(deleted_suffix) - 1;

	return len > dl && strcmp(path + len - dl, deleted_suffix) == 0;
}

/* ---- resolution inside a root ----------------------------------------- */

/* Open canon (absolute, no ".", "..", or symlink: walk_in_root's output)
 * below rootfd, one component at a time, never following a symlink: if one
 * was put there since, ELOOP.  Returns an fd or -errno. */
static int open_canon(int rootfd, const char *canon, int oflags)
{
	const char *p = canon;
	int dfd, fd;

	dfd = openat(rootfd, ".", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return -errno;
	for (;;) {
		char comp[NAME_MAX + 1];
		size_t len;
		bool last;
		struct stat st;

		while (*p == '/')
			p++;
		if (!*p) {
			/* The root itself. */
			fd = openat(dfd, ".", oflags | O_CLOEXEC);
			close(dfd);
			return fd < 0 ? -errno : fd;
		}
		len = strcspn(p, "/");
		if (len > NAME_MAX) {
			close(dfd);
			return -ENAMETOOLONG;
		}
		memcpy(comp, p, len);
		comp[len] = '\0';
		p += len;
		while (*p == '/')
			p++;
		last = !*p;
		fd = openat(dfd, comp, (last ? oflags : O_PATH | O_DIRECTORY) |
			    O_NOFOLLOW | O_CLOEXEC);
		close(dfd);
		if (fd < 0)
			return -errno;
		if (last) {
			/* O_PATH | O_NOFOLLOW opens a symlink itself. */
			if ((oflags & O_PATH) &&
			    (fstat(fd, &st) != 0 || S_ISLNK(st.st_mode))) {
				close(fd);
				return -ELOOP;
			}
			return fd;
		}
		dfd = fd;
	}
}

/* Resolve path inside rootfd's tree as RESOLVE_IN_ROOT does: "/" and ".."
 * stop at the root, a symlink's target is read and resolved in the root
 * (absolute ones from the root), at most MAX_LINKS of them.  canon gets
 * the result: absolute, without ".", ".." or symlinks.  0 or -errno. */
static int walk_in_root(int rootfd, const char *path, char *canon, size_t cn)
{
	char todo[PATH_MAX], next[PATH_MAX], cand[PATH_MAX];
	const char *p;
	size_t clen = 0;
	int links = 0;

	if (cn < 2)
		return -ENAMETOOLONG;
	if (snprintf(todo, sizeof(todo), "%s", path) >= (int)sizeof(todo))
		return -ENAMETOOLONG;
	canon[0] = '\0';
	p = todo;
	while (*p) {
		size_t len;
		struct stat st;
		int fd;

		while (*p == '/')
			p++;
		if (!*p)
			break;
		len = strcspn(p, "/");
		if (len == 1 && p[0] == '.') {
			p += len;
			continue;
		}
		if (len == 2 && p[0] == '.' && p[1] == '.') {
			/* canon has no symlink: its parent is lexical. */
			char *slash = strrchr(canon, '/');

			if (slash)
				*slash = '\0';
			clen = strlen(canon);
			p += len;
			continue;
		}
		if (clen + 1 + len >= sizeof(cand) || clen + 1 + len >= cn)
			return -ENAMETOOLONG;
		memcpy(cand, canon, clen);
		cand[clen] = '/';
		memcpy(cand + clen + 1, p, len);
		cand[clen + 1 + len] = '\0';
		p += len;
		fd = open_canon(rootfd, cand, O_PATH);
		if (fd == -ELOOP) {
			/* The component is a symlink: open it, not its target. */
			char *slash = strrchr(cand, '/');
			char linkname[PATH_MAX];
			ssize_t got;
			int dfd;

			*slash = '\0';
			dfd = open_canon(rootfd, cand[0] ? cand : "/",
					 O_PATH | O_DIRECTORY);
			if (dfd < 0)
				return dfd;
			if (++links > MAX_LINKS) {
				close(dfd);
				return -ELOOP;
			}
			got = readlinkat(dfd, slash + 1, linkname,
					 sizeof(linkname) - 1);
			close(dfd);
			if (got < 0)
				return -errno;
			if (got == 0)
				return -ENOENT;
			linkname[got] = '\0';
			if (snprintf(next, sizeof(next), "%s/%s", linkname, p) >=
			    (int)sizeof(next))
				return -ENAMETOOLONG;
			memcpy(todo, next, sizeof(todo));
			p = todo;
			if (linkname[0] == '/') {
				canon[0] = '\0';
				clen = 0;
			}
			continue;
		}
		if (fd < 0)
			return fd;
		if (fstat(fd, &st) != 0) {
			int e = errno;

			close(fd);
			return -e;
		}
		close(fd);
		while (*p == '/')
			p++;
		if (*p && !S_ISDIR(st.st_mode))
			return -ENOTDIR;
		memcpy(canon, cand, clen + 1 + len + 1);
		clen += 1 + len;
	}
	if (!canon[0])
		snprintf(canon, cn, "/");
	return 0;
}

/* Open path inside rootfd's tree (see walk_in_root) with oflags; with
 * canon, also say which path that was.  An fd or -errno. */
static int open_in_root(int rootfd, const char *path, int oflags, char *canon,
			size_t cn)
{
	char buf[PATH_MAX];
	int fd, err;

	if (!canon) {
		struct open_how how = {
			.flags = (uint64_t)(oflags | O_CLOEXEC),
			.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
		};

		for (int i = 0; i < OPENAT2_RETRIES; i++) {
			fd = (int)syscall(SYS_openat2, rootfd, path, &how,
					  sizeof(how));
			if (fd >= 0)
				return fd;
			if (errno != EAGAIN)
				break;
		}
		if (errno != ENOSYS && errno != EAGAIN)
			return -errno;
		canon = buf;
		cn = sizeof(buf);
	}
	if ((err = walk_in_root(rootfd, path, canon, cn)))
		return err;
	return open_canon(rootfd, canon, oflags);
}

/* O_PATH fd -> a readable fd of the same file, if it is a regular file:
 * nothing else is even opened for reading (a FIFO would block, a device
 * act).  Permission is checked now, with the calling thread's
 * credentials.  Closes pfd.  An fd or -errno. */
static int reopen_regular(int pfd)
{
	char self[64];
	struct stat st;
	int fd;

	if (fstat(pfd, &st) != 0 || !S_ISREG(st.st_mode)) {
		close(pfd);
		return -EINVAL;
	}
	snprintf(self, sizeof(self), "/proc/thread-self/fd/%d", pfd);
	fd = open(self, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	fd = fd < 0 ? -errno : fd;
	close(pfd);
	return fd;
}

int pyx_open_in_root(int rootfd, const char *path)
{
	int fd = open_in_root(rootfd, path, O_PATH, NULL, 0);

	return fd < 0 ? fd : reopen_regular(fd);
}

/* ---- the target's root, cwd and credentials --------------------------- */

static int open_root(const struct pyx_target *t, int *rootfd)
{
	const struct pyx_target_pin *pin = pyx_target_pin(t);
	char root[64];
	int err;

	*rootfd = -1;
	if (pin && pin->valid) {
		/* The root pinned while the target was stopped: not that of
		 * whatever has its PID now. */
		*rootfd = fcntl(pin->rootfd, F_DUPFD_CLOEXEC, 0);
		if (*rootfd < 0)
			return pyx_err_set(PYX_E_IO, "the target's root: %s",
					   strerror(errno));
		return 0;
	}
	if ((err = pyx_target_path(t, "/", root, sizeof(root))))
		return err;
	*rootfd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (*rootfd < 0)
		return pyx_err_set(err_code(errno), "open %s: %s", root,
				   strerror(errno));
	return 0;
}

/* readlink() of the target's root ("root") or cwd ("cwd"), from the pinned
 * fds when there are, as a path of our namespace.  Length or -errno. */
static ssize_t target_link(const struct pyx_target *t, const char *which,
			   char *buf, size_t n)
{
	const struct pyx_target_pin *pin = pyx_target_pin(t);
	char link[64];
	ssize_t got;

	if (n < 2)
		return -ENAMETOOLONG;
	if (pin && pin->valid)
		snprintf(link, sizeof(link), "/proc/self/fd/%d",
			 strcmp(which, "root") == 0 ? pin->rootfd : pin->cwdfd);
	else
		snprintf(link, sizeof(link), "/proc/%d/%s",
			 (int)pyx_target_pid(t), which);
	got = readlink(link, buf, n - 1);
	if (got < 0)
		return -errno;
	buf[got] = '\0';
	return got;
}

/* Where the target's working directory is, as the target names it (inside
 * its root).  /proc/PID/cwd and /root read as paths of our namespace; the
 * candidate is kept only if it is, inside the root, the very directory
 * /proc/PID/cwd is.  A relative path is then that joined with it, and ".."
 * in it goes where it would go for the target. */
static int cwd_in_root(const struct pyx_target *t, int rootfd, char *out,
		       size_t n)
{
	const struct pyx_target_pin *pin = pyx_target_pin(t);
	char root[PATH_MAX], cwd[PATH_MAX];
	const char *in;
	struct stat a, b;
	ssize_t rl, cl;
	size_t len;
	int fd;

	if (pyx_target_kind(t) != PYX_TARGET_PROCESS)
		return -ENOTSUP;
	rl = target_link(t, "root", root, sizeof(root));
	cl = target_link(t, "cwd", cwd, sizeof(cwd));
	if (rl <= 0 || cl <= 0)
		return -ENOENT;
	len = strlen(root);
	if (strcmp(root, "/") == 0)
		in = cwd;
	else if (strncmp(cwd, root, len) == 0 && cwd[len] == '/')
		in = cwd + len;
	else if (strcmp(cwd, root) == 0)
		in = "/";
	else
		return -EXDEV;
	if (pin && pin->valid) {
		if (fstat(pin->cwdfd, &a) != 0)
			return -errno;
	} else {
		char link[64];

		snprintf(link, sizeof(link), "/proc/%d/cwd",
			 (int)pyx_target_pid(t));
		if ((fd = open(link, O_PATH | O_DIRECTORY | O_CLOEXEC)) < 0)
			return -errno;
		if (fstat(fd, &a) != 0) {
			close(fd);
			return -errno;
		}
		close(fd);
	}
	fd = open_in_root(rootfd, in, O_PATH | O_DIRECTORY, NULL, 0);
	if (fd < 0)
		return -EXDEV;
	if (fstat(fd, &b) != 0 || a.st_dev != b.st_dev || a.st_ino != b.st_ino) {
		close(fd);
		return -EXDEV;
	}
	close(fd);
	if (snprintf(out, n, "%s", in) >= (int)n)
		return -ENAMETOOLONG;
	return 0;
}

struct creds {
	uid_t fsuid;
	gid_t fsgid;
	const gid_t *groups; /* sorted, as the kernel keeps them */
	size_t ngroups;
	uint64_t cap_eff;
};

static int cmp_gid(const void *a, const void *b)
{
	gid_t x = *(const gid_t *)a, y = *(const gid_t *)b;

	return x < y ? -1 : x > y;
}

/* Whether the calling thread's credentials are now c's. */
static bool creds_taken(const struct creds *c)
{
	gid_t *have;
	int n;
	bool same;

	/* An invalid id changes nothing and returns the current one. */
	if ((uid_t)syscall(SYS_setfsuid, (uid_t)-1) != c->fsuid ||
	    (gid_t)syscall(SYS_setfsgid, (gid_t)-1) != c->fsgid)
		return false;
	n = getgroups(0, NULL);
	if (n < 0 || (size_t)n != c->ngroups)
		return false;
	if (n == 0)
		return true;
	if (!(have = malloc((size_t)n * sizeof(*have))))
		return false;
	same = getgroups(n, have) == n;
	if (same) {
		qsort(have, (size_t)n, sizeof(*have), cmp_gid);
		same = memcmp(have, c->groups, (size_t)n * sizeof(*have)) == 0;
	}
	free(have);
	return same;
}

/* The effective capabilities of the calling thread become the target's
 * (those we have): without CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH, the
 * kernel checks the file's mode and ACLs against the target's ids. */
static bool caps_taken(const struct creds *c)
{
	struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct d[_LINUX_CAPABILITY_U32S_3];

	if (syscall(SYS_capget, &h, d) != 0)
		return false;
	d[0].effective = d[0].permitted & (uint32_t)c->cap_eff;
	d[1].effective = d[1].permitted & (uint32_t)(c->cap_eff >> 32);
	return syscall(SYS_capset, &h, d) == 0;
}

struct open_job {
	const struct creds *creds; /* NULL: with pyxray's own */
	int rootfd;
	const char *path;
	unsigned flags;
	int fd;	    /* the result: an fd or -errno */
	bool creds_refused;
};

static void do_open(struct open_job *j)
{
	if (j->flags & PYX_OPEN_REGULAR) {
		j->fd = open_in_root(j->rootfd, j->path, O_PATH, NULL, 0);
		if (j->fd >= 0)
			j->fd = reopen_regular(j->fd);
	} else {
		j->fd = open_in_root(j->rootfd, j->path,
				     O_RDONLY | O_NOCTTY | O_NONBLOCK, NULL, 0);
	}
}

/* A thread of its own: the raw set*id system calls change the calling
 * thread's credentials only (glibc's wrappers would change every thread's),
 * and they end with it. */
static void *open_as_target(void *arg)
{
	struct open_job *j = arg;
	const struct creds *c = j->creds;

	/* Each may fail without privilege; what counts is the result. */
	syscall(SYS_setgroups, c->ngroups, c->groups);
	syscall(SYS_setfsgid, c->fsgid);
	syscall(SYS_setfsuid, c->fsuid);
	if (!creds_taken(c) || !caps_taken(c)) {
		j->creds_refused = true;
		j->fd = -EPERM;
		return NULL;
	}
	do_open(j);
	return NULL;
}

/* Open j->path with the credentials the target had when it was pinned
 * (stopped): never with what /proc/PID says now, which may be a setuid
 * binary it has exec'd since, or another process with its PID.  And, as a
 * second guard, not at all if they are no longer the same.  0, with the
 * result in j->fd, or -errno: -ESRCH (not the process pinned, or no pin),
 * -EPERM (its credentials changed). */
static int run_as_target(const struct pyx_target *t, struct open_job *j)
{
	const struct pyx_target_pin *pin = pyx_target_pin(t);
	struct creds c;
	sigset_t all, old;
	pthread_t th;
	pid_t pid = pyx_target_pid(t);
	int rc;

	if (pyx_target_kind(t) != PYX_TARGET_PROCESS) {
		/* A core: the user and group it ran as, no supplementary
		 * group, no capability (the core does not say them: less is
		 * shown, never more).  pyxray without the privilege to take
		 * them opens as its user, who can read no more than that. */
		if (pyx_target_be_creds(t, &c.fsuid, &c.fsgid))
			return -ENOTSUP;
		if (geteuid() != 0) {
			do_open(j);
			return 0;
		}
		c.groups = NULL;
		c.ngroups = 0;
		c.cap_eff = 0;
		pin = NULL;
		goto run;
	}
	if (!pin || !pin->valid)
		return -ESRCH;
	if ((rc = pyx_pin_check(pin, pid)))
		return rc;
	c.fsuid = pin->fsuid;
	c.fsgid = pin->fsgid;
	c.groups = pin->groups;
	c.ngroups = pin->ngroups;
	/* Capabilities held in another user namespace (a rootless
	 * container's root) are worth nothing on files of ours. */
	c.cap_eff = pin->same_userns ? pin->cap_eff : 0;
run:
	j->creds = &c;
	/* pyxray's signal handlers run in the main thread, never in this one. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = pthread_create(&th, NULL, open_as_target, j);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc == 0)
		pthread_join(th, NULL);
	else
		j->fd = -rc;
	/* Changed while we opened: what was opened is not shown. */
	if (pin && j->fd >= 0 && (rc = pyx_pin_check(pin, pid))) {
		close(j->fd);
		j->fd = -1;
		return rc;
	}
	return 0;
}

int pyx_target_open_file(const struct pyx_target *t, const char *path,
			 unsigned flags, int *fd)
{
	char full[PATH_MAX], cwd[PATH_MAX];
	struct open_job j = { .path = path, .flags = flags, .fd = -1 };
	int err;

	*fd = -1;
	if (!path[0] || strlen(path) >= PATH_MAX)
		return pyx_err_set(PYX_E_IO, "%.200s: bad path", path);
	if ((err = open_root(t, &j.rootfd)))
		return err;
	if (path[0] != '/') {
		if ((err = cwd_in_root(t, j.rootfd, cwd, sizeof(cwd)))) {
			err = pyx_err_set(PYX_E_IO, "%.200s: the target's working "
					  "directory is not inside its root: %s",
					  path, strerror(-err));
			goto out;
		}
		if (snprintf(full, sizeof(full), "%s/%s", cwd, path) >=
		    (int)sizeof(full)) {
			err = pyx_err_set(PYX_E_IO, "%.200s: path too long", path);
			goto out;
		}
		j.path = full;
	}
	if (flags & PYX_OPEN_AS_TARGET) {
		if ((err = run_as_target(t, &j))) {
			if (err == -EPERM)
				err = pyx_err_set(PYX_E_PERMISSION, "%.200s: the "
						  "target changed credentials "
						  "since it was read", path);
			else if (err == -ESRCH)
				err = pyx_err_set(PYX_E_PERMISSION, "%.200s: the "
						  "target is no longer the "
						  "process attached", path);
			else
				err = pyx_err_set(PYX_E_IO, "%.200s: the target's "
						  "credentials: %s", path,
						  strerror(-err));
			goto out;
		}
	} else {
		do_open(&j);
	}
	if (j.creds_refused)
		err = pyx_err_set(PYX_E_PERMISSION, "%.200s: cannot open as the "
				  "target's user", path);
	else if (j.fd == -EINVAL && (flags & PYX_OPEN_REGULAR))
		err = pyx_err_set(PYX_E_IO, "%.200s: not a regular file", path);
	else if (j.fd < 0)
		err = pyx_err_set(err_code(-j.fd), "open %.200s inside the "
				  "target's root%s: %s", path,
				  flags & PYX_OPEN_AS_TARGET ? " as the target" : "",
				  strerror(-j.fd));
	else
		*fd = j.fd;
out:
	close(j.rootfd);
	return err;
}

/* ---- mapped files ----------------------------------------------------- */

static const struct pyx_map *lowest_map(const struct pyx_target *t,
					const char *target_path)
{
	const struct pyx_map *maps, *lowest = NULL;
	size_t nmaps;

	maps = pyx_target_maps(t, &nmaps);
	for (size_t i = 0; i < nmaps; i++)
		if (maps[i].path && strcmp(maps[i].path, target_path) == 0 &&
		    (!lowest || maps[i].offset < lowest->offset))
			lowest = &maps[i];
	return lowest;
}

static bool is_mapped_file(const struct stat *st, const struct pyx_map *m)
{
	return st->st_ino == m->inode && major(st->st_dev) == m->dev_major &&
	       minor(st->st_dev) == m->dev_minor;
}

/* Open target_path inside the target's root (resolved: canon), for
 * reading, if it is a regular file and (m) the one mapped.  An fd or
 * -errno; -ESTALE: another file is there now. */
static int open_in_root_checked(int rootfd, const char *target_path,
				const struct pyx_map *m, char *canon, size_t cn)
{
	struct stat st;
	int fd;

	fd = open_in_root(rootfd, target_path, O_PATH, canon, cn);
	if (fd < 0)
		return fd;
	if (fstat(fd, &st) != 0 || (m && !is_mapped_file(&st, m))) {
		close(fd);
		return -ESTALE;
	}
	return reopen_regular(fd);
}

#ifdef PYX_TEST_HOOKS
static void (*test_after_check)(void *arg);
static void *test_after_check_arg;

void pyx_files_test_after_check(void (*fn)(void *arg), void *arg)
{
	test_after_check = fn;
	test_after_check_arg = arg;
}

/* Between the check of a file and its use by the caller: where a target
 * would swap a path component for a symlink. */
static void after_check(void)
{
	if (test_after_check)
		test_after_check(test_after_check_arg);
}
#else
static void after_check(void)
{
}
#endif

/* The file the target maps as target_path (or, not mapped, the path inside
 * its root): an fd for reading and a local path to the same file.  First
 * /proc/PID/map_files/START-END (root, or CAP_CHECKPOINT_RESTORE, may
 * follow those links), then the path inside the target's root: as the maps
 * spell it, and for a chroot (whose maps show the paths of our root) with
 * the root's own path taken off. */
static int reach_file(const struct pyx_target *t, const char *target_path,
		      int *fdp, char *local_arg, size_t n_arg)
{
	char local_buf[PATH_MAX + 64];
	char *local = local_arg ? local_arg : local_buf;
	size_t n = local_arg ? n_arg : sizeof(local_buf);
	const struct pyx_map *m = lowest_map(t, target_path);
	char tried[PATH_MAX + 128] = "", canon[PATH_MAX], root[PATH_MAX];
	const char *paths[2] = { target_path, NULL };
	int fd = -1, rootfd = -1, err = 0, eno = ENOENT;
	bool handled;

	*fdp = -1;
	/* A core finds its files itself (NT_FILE, --exe, --sysroot), checked
	 * by build-id: it has no map_files, and no device or inode to check
	 * against.  1: not one of its files. */
	err = pyx_target_be_open_mapped(t, target_path, fdp, local, n, &handled);
	if (handled && err <= 0) {
		if (!err)
			after_check();
		return err;
	}
	err = 0;
	if (handled)
		m = NULL;
	if (m && pyx_target_kind(t) == PYX_TARGET_PROCESS) {
		char mf[96];
		struct stat st;

		snprintf(mf, sizeof(mf), "/proc/%d/map_files/%" PRIx64 "-%" PRIx64,
			 (int)pyx_target_pid(t), m->start, m->end);
		fd = open(mf, O_PATH | O_CLOEXEC);
		if (fd < 0) {
			fd = -errno;
		} else if (fstat(fd, &st) != 0 || !is_mapped_file(&st, m)) {
			close(fd);
			fd = -ESTALE;
		} else {
			fd = reopen_regular(fd);
		}
		if (fd >= 0) {
			if (snprintf(local, n, "%s", mf) >= (int)n) {
				close(fd);
				return pyx_err_set(PYX_E_IO, "%s: path too long",
						   mf);
			}
			*fdp = fd;
			after_check();
			return 0;
		}
		eno = -fd;
		snprintf(tried, sizeof(tried), "%s: %s; ", mf,
			 eno == ESTALE ? "another file" : strerror(eno));
	}
	if (pyx_path_is_deleted(target_path)) {
		err = pyx_err_set(err_code(eno), "%.200s: %scannot reach the "
				  "deleted file", target_path, tried);
		goto out;
	}
	if ((err = open_root(t, &rootfd)))
		goto out;
	if (pyx_target_kind(t) == PYX_TARGET_PROCESS) {
		ssize_t rl = target_link(t, "root", root, sizeof(root));

		if (rl > 1) {
			if (strncmp(target_path, root, (size_t)rl) == 0 &&
			    target_path[rl] == '/')
				paths[1] = target_path + rl;
		}
	}
	for (size_t i = 0; i < 2 && paths[i]; i++) {
		fd = open_in_root_checked(rootfd, paths[i], m, canon,
					  sizeof(canon));
		if (fd >= 0)
			break;
		if (i == 0 || fd != -ENOENT)
			eno = -fd;
	}
	if (fd < 0) {
		err = pyx_err_set(err_code(eno), "%.200s: %sinside the target's "
				  "root: %s", target_path, tried,
				  eno == ESTALE ? "not the file mapped (replaced "
						  "since?)" : strerror(eno));
		goto out;
	}
	if ((err = pyx_target_path(t, canon, local, n))) {
		close(fd);
		goto out;
	}
	*fdp = fd;
	after_check();
out:
	if (rootfd >= 0)
		close(rootfd);
	return err;
}

int pyx_target_open_mapped(const struct pyx_target *t, const char *target_path,
			   int *fd, char *local, size_t n)
{
	return reach_file(t, target_path, fd, local, n);
}

int pyx_target_open_elf(const struct pyx_target *t, const char *target_path,
			struct pyx_elf **out)
{
	char local[PATH_MAX + 32];
	pyx_addr_t bias;
	int fd, err;

	*out = NULL;
	if ((err = reach_file(t, target_path, &fd, local, sizeof(local))))
		return err;
	/* Named by the target's path: what error details should say. */
	if ((err = pyx_elf_open_fd(fd, target_path, 0, out)))
		return err;
	if ((err = pyx_elf_bias(*out, t, target_path, &bias))) {
		pyx_elf_free(*out);
		*out = NULL;
	}
	return err;
}

/* ---- separate debug files --------------------------------------------- */

struct debug_candidate {
	char path[PATH_MAX];
	bool in_root; /* a path of the target's, else of pyxray's */
};

static void add_candidate(struct debug_candidate *c, size_t *nc, size_t max,
			  bool in_root, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));

static void add_candidate(struct debug_candidate *c, size_t *nc, size_t max,
			  bool in_root, const char *fmt, ...)
{
	va_list ap;
	int len;

	if (*nc == max)
		return;
	va_start(ap, fmt);
	len = vsnprintf(c[*nc].path, sizeof(c[*nc].path), fmt, ap);
	va_end(ap);
	if (len < 0 || len >= (int)sizeof(c[*nc].path))
		return;
	c[*nc].in_root = in_root;
	(*nc)++;
}

/* CRC-32 (IEEE 802.3, reflected), as .gnu_debuglink carries it. */
static uint32_t crc32_update(uint32_t crc, const uint8_t *p, size_t n)
{
	static uint32_t table[256];
	static bool ready;

	if (!ready) {
		for (uint32_t i = 0; i < 256; i++) {
			uint32_t c = i;

			for (int k = 0; k < 8; k++)
				c = c & 1 ? 0xedb88320u ^ (c >> 1) : c >> 1;
			table[i] = c;
		}
		ready = true;
	}
	crc = ~crc;
	while (n--)
		crc = table[(crc ^ *p++) & 0xff] ^ (crc >> 8);
	return ~crc;
}

/* The CRC-32 of the whole file open as fd (read with pread: the offset
 * stays).  0 or -errno. */
static int file_crc(int fd, uint32_t *out)
{
	uint8_t *buf = malloc(1u << 16);
	uint32_t crc = 0;
	off_t off = 0;
	int err = 0;

	if (!buf)
		return -ENOMEM;
	for (;;) {
		ssize_t got = pread(fd, buf, 1u << 16, off);

		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0) {
			err = -errno;
			break;
		}
		if (got == 0)
			break;
		crc = crc32_update(crc, buf, (size_t)got);
		off += got;
	}
	free(buf);
	*out = crc;
	return err;
}

/* The CRC .gnu_debuglink carries after the file name (padded to 4 bytes)
 * in the file the target maps as target_path, if that name is link.  0 or
 * -errno. */
static int debuglink_crc(const struct pyx_target *t, const char *target_path,
			 const char *link, uint32_t *crc)
{
	Elf *e;
	Elf_Scn *scn = NULL;
	size_t shstrndx;
	int fd, err = -ENOENT;

	if (reach_file(t, target_path, &fd, NULL, 0)) {
		pyx_err_clear();
		return -ENOENT;
	}
	elf_version(EV_CURRENT);
	if (!(e = elf_begin(fd, ELF_C_READ, NULL)) ||
	    elf_getshdrstrndx(e, &shstrndx) != 0)
		goto out;
	while ((scn = elf_nextscn(e, scn))) {
		GElf_Shdr sh;
		Elf_Data *d;
		const char *name;
		size_t len, at;

		if (!gelf_getshdr(scn, &sh) ||
		    !(name = elf_strptr(e, shstrndx, sh.sh_name)) ||
		    strcmp(name, ".gnu_debuglink") != 0)
			continue;
		if (!(d = elf_getdata(scn, NULL)) || !d->d_buf)
			break;
		len = strnlen(d->d_buf, d->d_size);
		at = (len + 4) & ~(size_t)3;
		if (len == d->d_size || at + 4 > d->d_size ||
		    strcmp(d->d_buf, link) != 0)
			break;
		memcpy(crc, (const uint8_t *)d->d_buf + at, 4);
		err = 0;
		break;
	}
out:
	if (e)
		elf_end(e);
	close(fd);
	return err;
}

/* Open one candidate for reading (regular files only); local: the path to
 * give libdw.  An fd or -errno. */
static int open_candidate(const struct pyx_target *t, int rootfd,
			  const struct debug_candidate *c, char *local,
			  size_t n)
{
	char canon[PATH_MAX];
	int fd;

	if (!c->in_root) {
		fd = open(c->path, O_PATH | O_CLOEXEC);
		if (fd < 0)
			return -errno;
		if ((fd = reopen_regular(fd)) >= 0 &&
		    snprintf(local, n, "%s", c->path) >= (int)n) {
			close(fd);
			return -ENAMETOOLONG;
		}
		return fd;
	}
	if (rootfd < 0)
		return -ENOENT;
	fd = open_in_root_checked(rootfd, c->path, NULL, canon, sizeof(canon));
	if (fd >= 0 && pyx_target_path(t, canon, local, n)) {
		close(fd);
		return -ENAMETOOLONG;
	}
	return fd;
}

int pyx_target_open_debug_file(const struct pyx_target *t,
			       const struct pyx_elf *elf,
			       const char *target_path, const char *debug_dir,
			       int *fdp, char *local, size_t n, char *searched,
			       size_t sn)
{
	struct debug_candidate *c;
	char link[256], bindir[PATH_MAX], bid[64] = "";
	uint32_t want_crc = 0;
	size_t nc = 0, used = 0;
	const size_t max = 8;
	char *slash;
	int rootfd = -1, err = -PYX_E_NO_DEBUG_INFO;

	*fdp = -1;
	if (searched && sn)
		searched[0] = '\0';
	if (!(c = calloc(max, sizeof(*c))))
		return pyx_err_set(PYX_E_NOMEM, "out of memory");
	if (!debug_dir)
		debug_dir = pyx_target_be_debug_dir(t);
	pyx_elf_build_id(elf, bid, sizeof(bid));
	pyx_elf_debuglink(elf, link, sizeof(link));
	/* A file name, nothing else: "../x" would leave the directories. */
	if (strchr(link, '/') || strcmp(link, ".") == 0 || strstr(link, ".."))
		link[0] = '\0';
	/* Without a build-id, the debuglink's CRC is what ties a candidate
	 * to this binary: any file with DWARF would do otherwise. */
	if (!bid[0] && link[0] && debuglink_crc(t, target_path, link, &want_crc))
		link[0] = '\0';
	snprintf(bindir, sizeof(bindir), "%s", target_path);
	slash = strrchr(bindir, '/');
	if (slash)
		*slash = '\0';
	if (open_root(t, &rootfd))
		pyx_err_clear();

	for (int d = 0; d < 3; d++) {
		/* The user's directory and pyxray's /usr/lib/debug are ours;
		 * the target's /usr/lib/debug is resolved inside its root. */
		const char *dir = d == 0 ? debug_dir : "/usr/lib/debug";
		bool in_root = d == 1;

		if (!dir)
			continue;
		if (strlen(bid) > 2)
			add_candidate(c, &nc, max, in_root, "%s/.build-id/%.2s/%s.debug",
				      dir, bid, bid + 2);
		if (link[0])
			add_candidate(c, &nc, max, in_root, "%s%s/%s", dir,
				      bindir, link);
	}
	if (link[0]) {
		/* Beside the binary, as gdb looks. */
		add_candidate(c, &nc, max, true, "%s/%s", bindir, link);
		add_candidate(c, &nc, max, true, "%s/.debug/%s", bindir, link);
	}

	for (size_t i = 0; i < nc; i++) {
		struct pyx_elf *e;
		char got[64] = "", here[PATH_MAX + 64];
		uint32_t crc;
		int fd, dfd;

		if (searched && used < sn)
			used += (size_t)snprintf(searched + used, sn - used,
						 "%s%s%s", used ? ", " : "",
						 c[i].in_root ? "(target) " : "",
						 c[i].path);
		fd = open_candidate(t, rootfd, &c[i], here, sizeof(here));
		if (fd < 0)
			continue;
		dfd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
		if (dfd < 0 || pyx_elf_open_fd(dfd, here, 0, &e)) {
			close(fd);
			continue;
		}
		pyx_elf_build_id(e, got, sizeof(got));
		if (pyx_elf_has_dwarf(e) &&
		    (bid[0] ? strcmp(got, bid) == 0
			    : file_crc(fd, &crc) == 0 && crc == want_crc) &&
		    snprintf(local, n, "%s", here) < (int)n) {
			pyx_elf_free(e);
			*fdp = fd;
			err = 0;
			break;
		}
		pyx_elf_free(e);
		close(fd);
	}
	if (rootfd >= 0)
		close(rootfd);
	free(c);
	pyx_err_clear();
	return err;
}

int pyx_target_find_debug_file(const struct pyx_target *t,
			       const struct pyx_elf *elf,
			       const char *target_path, const char *debug_dir,
			       char *local, size_t n, char *searched,
			       size_t sn)
{
	int fd, err;

	err = pyx_target_open_debug_file(t, elf, target_path, debug_dir, &fd,
					 local, n, searched, sn);
	if (!err)
		close(fd);
	return err;
}
