/* pyx_parallel: fork-join on a few threads, for the heap copy and walks. */
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"

struct start {
	void (*fn)(void *);
	void *arg;
};

static void *trampoline(void *p)
{
	struct start *s = p;

	s->fn(s->arg);
	return NULL;
}

void pyx_parallel(unsigned n, void (*fn)(void *), void *args, size_t size)
{
	pthread_t th[PYX_PARALLEL_MAX];
	struct start st[PYX_PARALLEL_MAX];
	bool started[PYX_PARALLEL_MAX] = { false };
	sigset_t all, old;

	if (!n)
		return;
	if (n > PYX_PARALLEL_MAX)
		n = PYX_PARALLEL_MAX;
	if (n > 1) {
		/* pyxray's handlers (SIGINT, SIGTERM: resume the target and
		 * exit) must run on the main thread, never on these. */
		sigfillset(&all);
		pthread_sigmask(SIG_SETMASK, &all, &old);
		for (unsigned i = 1; i < n; i++) {
			st[i] = (struct start){ fn, (char *)args + i * size };
			started[i] = pthread_create(&th[i], NULL, trampoline,
						    &st[i]) == 0;
		}
		pthread_sigmask(SIG_SETMASK, &old, NULL);
	}
	fn(args);
	/* A thread that could not be started: its share on this one. */
	for (unsigned i = 1; i < n; i++)
		if (!started[i])
			fn((char *)args + i * size);
	for (unsigned i = 1; i < n; i++)
		if (started[i])
			pthread_join(th[i], NULL);
}

int pyx_share_err_keep(struct pyx_share_err *e, int err)
{
	if (err < 0 && !e->err) {
		e->err = err;
		snprintf(e->detail, sizeof(e->detail), "%s", pyx_err_detail());
	}
	return err;
}

int pyx_share_err_raise(const struct pyx_share_err *e)
{
	if (!e->err)
		return 0;
	return pyx_err_set((enum pyx_error)-e->err, "%s", e->detail);
}

/* A cgroup's CPU quota in CPUs, rounded up; 0: none, or unreadable.
 * v2: cpu.max "QUOTA PERIOD" ("max" for none); v1: cpu.cfs_quota_us (-1
 * for none) and cpu.cfs_period_us. */
static unsigned quota_at(const char *dir, bool v2)
{
	char path[720], buf[64];
	long long quota = -1, period = 0;
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir,
		 v2 ? "cpu.max" : "cpu.cfs_quota_us");
	if (!(f = fopen(path, "re")))
		return 0;
	if (fgets(buf, sizeof(buf), f) &&
	    sscanf(buf, v2 ? "%lld %lld" : "%lld", &quota, &period) < 1)
		quota = -1;
	fclose(f);
	if (!v2) {
		snprintf(path, sizeof(path), "%s/cpu.cfs_period_us", dir);
		if (!(f = fopen(path, "re")))
			return 0;
		if (!fgets(buf, sizeof(buf), f) ||
		    sscanf(buf, "%lld", &period) != 1)
			period = 0;
		fclose(f);
	}
	if (quota <= 0 || period <= 0)
		return 0;
	quota = (quota + period - 1) / period;
	return quota > 1024 ? 1024 : (unsigned)quota;
}

/* The CPUs this process's cgroup quota gives it (the smallest along its
 * cgroup and those above it), or 0 for no quota or none readable.  In a
 * container limited to one CPU on a big host the CPU set still lists every
 * CPU: threads past the quota would be throttled, and the copy's while
 * the target is stopped. */
static unsigned cgroup_cpus(void)
{
	char line[512], v2rel[512], dir[640], *rel = NULL, *root = NULL;
	unsigned best = 0;
	bool v2 = false;
	FILE *f = fopen("/proc/self/cgroup", "re");

	if (!f)
		return 0;
	/* "0::/path" (v2), or "N:cpu,cpuacct:/path" (v1's cpu controller,
	 * which wins where both are there: v2 then has no cpu controller). */
	while (fgets(line, sizeof(line), f)) {
		char *ctl = strchr(line, ':'), *r;

		if (!ctl || !(r = strchr(ctl + 1, ':')))
			continue;
		*r++ = '\0';
		r[strcspn(r, "\n")] = '\0';
		ctl++;
		if (!strcmp(ctl, "cpu") || !strncmp(ctl, "cpu,", 4) ||
		    strstr(ctl, ",cpu,") ||
		    (strlen(ctl) > 4 && !strcmp(ctl + strlen(ctl) - 4, ",cpu"))) {
			root = "/sys/fs/cgroup/cpu";
			v2 = false;
			rel = r;
			break;
		}
		if (!*ctl && !rel) {
			/* v2's line is first or last: keep reading for v1's */
			snprintf(v2rel, sizeof(v2rel), "%s", r);
			root = "/sys/fs/cgroup";
			v2 = true;
			rel = v2rel;
		}
	}
	fclose(f);
	if (!rel || rel[0] != '/' || strstr(rel, "/..") ||
	    snprintf(dir, sizeof(dir), "%s%s", root, rel) >= (int)sizeof(dir))
		return 0;
	/* Up to the root, one level a step: bounded by the path's length. */
	for (;;) {
		unsigned n = quota_at(dir, v2);
		char *slash;

		if (n && (!best || n < best))
			best = n;
		if (strlen(dir) <= strlen(root) ||
		    !(slash = strrchr(dir, '/')) || slash < dir + strlen(root))
			break;
		*slash = '\0';
	}
	return best;
}

unsigned pyx_jobs(unsigned requested)
{
	cpu_set_t set;
	unsigned quota;
	int n;

	if (requested)
		return requested < PYX_PARALLEL_MAX ? requested : PYX_PARALLEL_MAX;
	if (sched_getaffinity(0, sizeof(set), &set) != 0)
		return 1;
	n = CPU_COUNT(&set);
	if ((quota = cgroup_cpus()) && (int)quota < n)
		n = (int)quota;
	return n < 1 ? 1 : n > PYX_JOBS_DEFAULT_MAX ? PYX_JOBS_DEFAULT_MAX :
						       (unsigned)n;
}
