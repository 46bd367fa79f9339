/* Pages faulted in ahead of a writer (see ahead.h). */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <time.h>

#include "ahead.h"

#define PAGE 4096
#define LEAD_DEFAULT (1u << 20)
/* One call's bytes: small enough that the toucher keeps up with every
 * area, big enough that the calls cost little (a call per 64 pages). */
#define STEP (256u << 10)

bool pyx_ahead_room_is_free(void)
{
	static int mode = -1; /* atomic: 0 free, 1 not */
	int m = __atomic_load_n(&mode, __ATOMIC_RELAXED);

	if (m < 0) {
		FILE *f = fopen("/proc/sys/vm/overcommit_memory", "re");
		struct rlimit as;
		int v = 0;

		/* unreadable: as by default (heuristic overcommit) */
		if (f) {
			if (fscanf(f, "%d", &v) != 1)
				v = 0;
			fclose(f);
		}
		m = v == 2;
		/* a bound on the address space (ulimit -v): room counts */
		if (getrlimit(RLIMIT_AS, &as) == 0 && as.rlim_cur != RLIM_INFINITY)
			m = 1;
		__atomic_store_n(&mode, m, __ATOMIC_RELAXED);
	}
	return m == 0;
}

void pyx_ahead_init(struct pyx_ahead *a, size_t lead)
{
	memset(a, 0, sizeof(*a));
	a->lead = lead ? lead : LEAD_DEFAULT;
}

int pyx_ahead_add(struct pyx_ahead *a, void *base, size_t elem, size_t cap,
		  size_t filled)
{
	struct pyx_ahead_area *r;

	if (!a || !base || !elem || a->narea >= PYX_AHEAD_MAX)
		return -1;
	r = &a->area[a->narea];
	r->base = base;
	r->elem = elem;
	r->cap = cap;
	r->filled = filled < cap ? filled : cap;
	r->done = r->filled;
	r->goal = 0;
	return (int)a->narea++;
}

int pyx_ahead_add_goal(struct pyx_ahead *a, void *base, size_t elem,
		       size_t cap)
{
	int i = pyx_ahead_add(a, base, elem, cap, 0);

	if (i >= 0)
		a->area[i].goal = 1;
	return i;
}

void pyx_ahead_publish(struct pyx_ahead *a, int i, size_t n)
{
	if (a && i >= 0 && (unsigned)i < a->narea)
		__atomic_store_n(&a->area[i].filled, n, __ATOMIC_RELAXED);
}

void pyx_ahead_stop(struct pyx_ahead *a)
{
	if (a)
		__atomic_store_n(&a->stop, 1, __ATOMIC_RELEASE);
}

/* Elements [from, to) of r in memory; false if the kernel cannot. */
static bool populate(const struct pyx_ahead_area *r, size_t from, size_t to)
{
	uintptr_t lo = (uintptr_t)r->base + from * r->elem;
	uintptr_t hi = (uintptr_t)r->base + to * r->elem;

	lo &= ~(uintptr_t)(PAGE - 1);
	hi = (hi + PAGE - 1) & ~(uintptr_t)(PAGE - 1);
	/* ENOMEM (a hole: the area was given back meanwhile) or EFAULT:
	 * the writer faults its own pages, as without a toucher */
#ifdef MADV_POPULATE_WRITE
	return madvise((void *)lo, hi - lo, MADV_POPULATE_WRITE) == 0 ||
	       errno != EINVAL;
#else
	(void)lo;
	(void)hi;
	return false;
#endif
}

/* One step for area r if it wants one: true if it took it. */
static bool step_area(struct pyx_ahead *a, struct pyx_ahead_area *r,
		      bool *can)
{
	size_t filled = __atomic_load_n(&r->filled, __ATOMIC_RELAXED);
	size_t lead = a->lead / r->elem + 1, step = STEP / r->elem + 1;
	size_t goal, end;

	if (r->goal) {
		goal = filled < r->cap ? filled : r->cap;
	} else {
		if (filled >= r->cap)
			return false; /* full */
		if (r->done < filled)
			r->done = filled; /* the writer went past */
		goal = r->cap - filled > lead ? filled + lead : r->cap;
	}
	if (r->done >= goal)
		return false;
	end = goal - r->done > step ? r->done + step : goal;
	*can = populate(r, r->done, end);
	r->done = end;
	return true;
}

void pyx_ahead_touch(struct pyx_ahead *a)
{
	/* the lead (1 MiB) lasts the writer some ms: a look every half */
	const struct timespec nap = { 0, 500000 };
	bool can = true;

	if (!a)
		return;
	while (can && !__atomic_load_n(&a->stop, __ATOMIC_ACQUIRE)) {
		bool busy = false;

		/* the writer's lead first; then a step for a later writer */
		for (unsigned i = 0; i < a->narea && can; i++)
			if (!a->area[i].goal && step_area(a, &a->area[i], &can))
				busy = true;
		for (unsigned i = 0; i < a->narea && can && !busy; i++)
			if (a->area[i].goal && step_area(a, &a->area[i], &can))
				busy = true;
		if (!busy)
			nanosleep(&nap, NULL);
	}
}

size_t pyx_ahead_trim(struct pyx_ahead *a, int i, const void *base, size_t n)
{
	struct pyx_ahead_area *r;
	uintptr_t lo, hi, end;

	if (!a || i < 0 || (unsigned)i >= a->narea || a->area[i].base != base)
		return 0;
	r = &a->area[i];
	if (!r->goal && n < r->filled)
		n = r->filled; /* (a goal area's is no count) */
	/* past the room it had: it grew in place (the toucher stayed in) */
	if (r->done <= n || n > r->cap)
		return 0;
	/* the page of the last element filled stays; the toucher's last
	 * page goes, unless the area ends in it (what follows the area in
	 * that page is not the area's) */
	lo = (uintptr_t)r->base + n * r->elem;
	hi = (uintptr_t)r->base + r->done * r->elem;
	lo = (lo + PAGE - 1) & ~(uintptr_t)(PAGE - 1);
	hi = (hi + PAGE - 1) & ~(uintptr_t)(PAGE - 1);
	end = ((uintptr_t)r->base + r->cap * r->elem) & ~(uintptr_t)(PAGE - 1);
	if (hi > end)
		hi = end;
	r->done = n;
	if (hi <= lo || madvise((void *)lo, hi - lo, MADV_DONTNEED))
		return 0;
	return hi - lo;
}
