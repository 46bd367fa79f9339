/* pyx_parallel: fork-join on a few threads, for the heap copy and walks. */
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stddef.h>

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

unsigned pyx_jobs(unsigned requested)
{
	cpu_set_t set;
	int n;

	if (requested)
		return requested < PYX_PARALLEL_MAX ? requested : PYX_PARALLEL_MAX;
	if (sched_getaffinity(0, sizeof(set), &set) != 0)
		return 1;
	n = CPU_COUNT(&set);
	return n < 1 ? 1 : n > PYX_JOBS_DEFAULT_MAX ? PYX_JOBS_DEFAULT_MAX :
						       (unsigned)n;
}
