/* Shared by the Check unit tests (test/unit/u-*.c): child processes that
 * cannot outlive the test, and the runner. */
#ifndef PYX_UNIT_H
#define PYX_UNIT_H

#include <check.h>
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static inline void msleep(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

/* Fork a child that runs fn() then sleeps until killed.  It dies with us
 * (PDEATHSIG) and after 20 s in any case. */
static inline pid_t spawn(void (*fn)(void *), void *arg)
{
	pid_t parent = getpid();
	pid_t pid = fork();

	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(1);
		alarm(20);
		if (fn)
			fn(arg);
		for (;;)
			pause();
	}
	return pid;
}

/* Kill and reap a child.  __WALL on any pid: a thread of it that we still
 * trace is a zombie only we can reap, and the kernel does not let the
 * leader go before it. */
static inline void reap(pid_t pid)
{
	kill(pid, SIGKILL);
	for (;;) {
		pid_t r = waitpid(-1, NULL, __WALL);

		if (r == pid || (r < 0 && errno != EINTR))
			break;
	}
}

/* Run a suite; the exit status says whether every test passed. */
static inline int pyx_unit_run(Suite *s)
{
	SRunner *sr = srunner_create(s);
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

#endif
