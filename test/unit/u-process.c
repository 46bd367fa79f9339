/* Unit tests of lib/process.c: maps, stopping and resuming forked children
 * (with threads, thread churn, signals, a group-stop, another tracer, a
 * thread that cannot stop), emergency resume, and what the kernel does
 * when the tracer is SIGKILLed. */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "process_private.h"
#include "pyxray/common.h"
#include "pyxray/error.h"
#include "pyxray/memory.h"
#include "pyxray/process.h"
#include "pyxray/target.h"
#include "pyxray/memory.h"

#include "unit.h"

#define MAXT 16

/* ---- helpers ---------------------------------------------------------- */

struct shared {
	volatile int ready;
	volatile int nthreads;
	volatile pid_t tids[MAXT];
	volatile uint64_t selfs[MAXT];
	volatile int sigcount;
	volatile int go;
	volatile int spawned;
	volatile pid_t helper_ready;
	volatile int sent, flood_done;
};

static struct shared *sh;
static pid_t target_for_helper;

static void shared_new(void)
{
	sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE,
		  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ck_assert_ptr_ne(sh, MAP_FAILED);
	memset((void *)sh, 0, sizeof(*sh));
}


static void wait_flag(volatile int *flag, int want)
{
	for (int i = 0; i < 3000 && *flag < want; i++)
		msleep(1);
	ck_assert_int_ge(*flag, want);
}



/* The tids of /proc/PID/task. */
static int list_tasks(pid_t pid, pid_t *out, int max)
{
	char path[64];
	struct dirent *de;
	DIR *d;
	int n = 0;

	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	d = opendir(path);
	if (!d)
		return 0;
	while ((de = readdir(d)) && n < max)
		if (de->d_name[0] >= '0' && de->d_name[0] <= '9')
			out[n++] = (pid_t)atoi(de->d_name);
	closedir(d);
	return n;
}

static char tstate(pid_t pid, pid_t tid)
{
	char path[64], buf[512] = "", *p;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/task/%d/stat", (int)pid,
		 (int)tid);
	f = fopen(path, "r");
	if (!f)
		return 0;
	if (!fgets(buf, sizeof(buf), f))
		buf[0] = '\0';
	fclose(f);
	p = strrchr(buf, ')');
	return p && p[1] == ' ' ? p[2] : 0;
}

static bool is_traced_state(char c)
{
	return c == 't';
}

/* Whether any thread of pid is in a tracing stop (or, with T, any stop). */
static bool any_stopped(pid_t pid, bool also_T)
{
	pid_t t[1024];
	int n = list_tasks(pid, t, 1024);

	for (int i = 0; i < n; i++) {
		char c = tstate(pid, t[i]);

		if (c == 't' || (also_T && c == 'T'))
			return true;
	}
	return false;
}

/* Wait up to 1 s for no thread to be stopped. */
static bool settles_running(pid_t pid, bool also_T)
{
	for (int i = 0; i < 1000; i++) {
		if (!any_stopped(pid, also_T))
			return true;
		msleep(1);
	}
	return false;
}

static bool all_traced(pid_t pid)
{
	pid_t t[1024];
	int n = list_tasks(pid, t, 1024);

	for (int i = 0; i < n; i++)
		if (!is_traced_state(tstate(pid, t[i])))
			return false;
	return n > 0;
}

/* ---- children --------------------------------------------------------- */

static void sig_handler(int sig)
{
	__sync_fetch_and_add(&sh->sigcount, 1);
}

static void *worker(void *arg)
{
	int i = (int)(intptr_t)arg;
	char name[16];

	snprintf(name, sizeof(name), "worker%d", i);
	pthread_setname_np(pthread_self(), name);
	sh->tids[i] = (pid_t)syscall(SYS_gettid);
	sh->selfs[i] = (uint64_t)pthread_self();
	__sync_fetch_and_add(&sh->nthreads, 1);
	for (;;)
		msleep(1);
	return NULL;
}

static void *short_lived(void *arg)
{
	__sync_fetch_and_add(&sh->spawned, 1);
	return NULL;
}

static void *spawner(void *arg)
{
	for (;;) {
		pthread_t t[4];

		for (int i = 0; i < 4; i++)
			pthread_create(&t[i], NULL, short_lived, NULL);
		for (int i = 0; i < 4; i++)
			pthread_join(t[i], NULL);
	}
	return NULL;
}

static void *vforker(void *arg)
{
	while (!sh->go)
		msleep(1);
	/* The vfork parent waits (killable, not interruptible by ptrace)
	 * until the child exits: a thread that cannot stop. */
	pid_t c = vfork();

	if (c == 0) {
		struct timespec ts = { 0, 700 * 1000000L };

		syscall(SYS_nanosleep, &ts, NULL);
		syscall(SYS_exit, 0);
	}
	if (c > 0)
		waitpid(c, NULL, 0);
	for (;;)
		msleep(1);
	return NULL;
}

/* arg: number of workers; flags in the high bits. */
#define WITH_SPAWNER 0x100
#define WITH_VFORKER 0x200
static void child_threads(void *arg)
{
	int flags = (int)(intptr_t)arg, n = flags & 0xff;
	struct sigaction sa;
	pthread_t t;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = sig_handler;
	sa.sa_flags = SA_RESTART;
	sigaction(SIGRTMIN, &sa, NULL);
	sh->tids[0] = (pid_t)syscall(SYS_gettid);
	sh->selfs[0] = (uint64_t)pthread_self();
	sh->nthreads = 1;
	for (int i = 1; i <= n; i++)
		pthread_create(&t, NULL, worker, (void *)(intptr_t)i);
	if (flags & WITH_SPAWNER)
		pthread_create(&t, NULL, spawner, NULL);
	if (flags & WITH_VFORKER)
		pthread_create(&t, NULL, vforker, NULL);
	while (sh->nthreads < n + 1)
		msleep(1);
	sh->ready = 1;
}

static pid_t spawn_threads(int flags)
{
	pid_t pid;

	shared_new();
	pid = spawn(child_threads, (void *)(intptr_t)flags);
	wait_flag(&sh->ready, 1);
	return pid;
}

/* ---- tests: open, maps, paths ------------------------------------------ */

START_TEST(test_open_missing)
{
	struct pyx_proc *proc = (void *)1;

	ck_assert_int_eq(pyx_proc_open(99999999, &proc), -PYX_E_NO_PROCESS);
	ck_assert_ptr_null(proc);
	ck_assert_str_eq(pyx_err_detail(), "no process with PID 99999999");
	ck_assert_int_eq(pyx_proc_open(0, &proc), -PYX_E_NO_PROCESS);
	ck_assert_int_eq(pyx_proc_open(-5, &proc), -PYX_E_NO_PROCESS);
	pyx_proc_free(NULL);
}
END_TEST

static void child_exit(void *arg)
{
	_exit(0);
}

START_TEST(test_open_zombie_and_thread)
{
	struct pyx_proc *proc;
	pid_t pid = spawn(child_exit, NULL);

	for (int i = 0; i < 2000 && tstate(pid, pid) != 'Z'; i++)
		msleep(1);
	ck_assert_int_eq(pyx_proc_open(pid, &proc), -PYX_E_NO_PROCESS);
	reap(pid);

	pid = spawn_threads(2);
	ck_assert_int_eq(pyx_proc_open(sh->tids[1], &proc), -PYX_E_NO_PROCESS);
	ck_assert_ptr_nonnull(strstr(pyx_err_detail(), "is a thread of"));
	reap(pid);
}
END_TEST

START_TEST(test_maps)
{
	char path[] = "/tmp/pyx map test (x) XXXXXX";
	struct pyx_proc *proc;
	const struct pyx_map *maps, *m;
	size_t n, len;
	char page[4096];
	void *p;
	int fd, local = 0;

	fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	memset(page, 'a', sizeof(page));
	ck_assert_int_eq(write(fd, page, sizeof(page)), (int)sizeof(page));
	p = mmap(NULL, sizeof(page), PROT_READ, MAP_PRIVATE, fd, 0);
	ck_assert_ptr_ne(p, MAP_FAILED);
	close(fd);

	ck_assert_int_eq(pyx_proc_open(getpid(), &proc), 0);
	ck_assert_int_eq(pyx_proc_pid(proc), getpid());
	maps = pyx_proc_maps(proc, &n);
	ck_assert_uint_gt(n, 5);
	for (size_t i = 1; i < n; i++)
		ck_assert_uint_le(maps[i - 1].end, maps[i].start);
	m = pyx_proc_find_map(proc, (uintptr_t)p + 10);
	ck_assert_ptr_nonnull(m);
	ck_assert_str_eq(m->path, path);
	ck_assert(m->r && !m->w && m->p);
	ck_assert_uint_eq(m->start, (uintptr_t)p);
	ck_assert_uint_gt(m->inode, 0);
	m = pyx_proc_find_map(proc, (uintptr_t)&msleep);
	ck_assert(m && m->x && m->path[0] == '/');
	m = pyx_proc_find_map(proc, (uintptr_t)&local);
	ck_assert(m && m->w && strcmp(m->path, "[stack]") == 0);
	ck_assert_ptr_null(pyx_proc_find_map(proc, 0));
	ck_assert_ptr_null(pyx_proc_find_map(proc, UINT64_MAX));

	unlink(path);
	ck_assert_int_eq(pyx_proc_refresh_maps(proc), 0);
	m = pyx_proc_find_map(proc, (uintptr_t)p);
	ck_assert_ptr_nonnull(m);
	len = strlen(m->path);
	ck_assert_uint_gt(len, 10);
	ck_assert_str_eq(m->path + len - 10, " (deleted)");
	ck_assert_int_eq(strncmp(m->path, path, strlen(path)), 0);
	munmap(p, sizeof(page));
	pyx_proc_free(proc);
}
END_TEST

START_TEST(test_path_comm)
{
	struct pyx_proc *proc;
	char buf[64], exp[64], small[12];
	pid_t pid = spawn_threads(2);

	ck_assert_int_eq(pyx_proc_open(pid, &proc), 0);
	ck_assert_int_eq(pyx_proc_path(proc, "/usr/lib/x.so", buf, sizeof(buf)),
			 0);
	snprintf(exp, sizeof(exp), "/proc/%d/root/usr/lib/x.so", (int)pid);
	ck_assert_str_eq(buf, exp);
	ck_assert_int_eq(pyx_proc_path(proc, "a.py", buf, sizeof(buf)), 0);
	snprintf(exp, sizeof(exp), "/proc/%d/cwd/a.py", (int)pid);
	ck_assert_str_eq(buf, exp);
	ck_assert_int_eq(pyx_proc_path(proc, "/usr/lib/x.so", small,
				       sizeof(small)),
			 -PYX_E_IO);
	ck_assert_str_eq(small, "");

	ck_assert_int_eq(pyx_proc_thread_comm(proc, sh->tids[2], buf,
					      sizeof(buf)),
			 0);
	ck_assert_str_eq(buf, "worker2");
	ck_assert_int_eq(pyx_proc_thread_comm(proc, sh->tids[2], small, 4), 0);
	ck_assert_str_eq(small, "wor");
	ck_assert_int_eq(pyx_proc_thread_comm(proc, 99999999, buf, sizeof(buf)),
			 -PYX_E_NO_PROCESS);
	pyx_proc_free(proc);
	reap(pid);
}
END_TEST

/* ---- tests: stop and resume -------------------------------------------- */

static bool contains(const pid_t *v, size_t n, pid_t x)
{
	for (size_t i = 0; i < n; i++)
		if (v[i] == x)
			return true;
	return false;
}

START_TEST(test_stop_resume)
{
	struct pyx_proc *proc;
	const pid_t *tids;
	pid_t listed[64];
	size_t n;
	int nl;
	uint64_t t0, pause1, tls;
	pid_t pid = spawn_threads(3);

	ck_assert_int_eq(pyx_proc_open(pid, &proc), 0);
	/* Not stopped: threads is a /proc read; tls refused. */
	tids = pyx_proc_threads(proc, &n);
	ck_assert_uint_eq(n, 4);
	ck_assert_int_eq(pyx_proc_thread_tls(proc, pid, &tls),
			 -PYX_E_NOT_SUPPORTED);
	ck_assert(!pyx_proc_is_stopped(proc));
	ck_assert_uint_eq(pyx_proc_pause_ns(proc), 0);

	t0 = pyx_now_ns();
	ck_assert_int_eq(pyx_proc_stop(proc, 1000), 0);
	ck_assert_uint_lt(pyx_now_ns() - t0, 500000000u);
	ck_assert(pyx_proc_is_stopped(proc));
	ck_assert_int_eq(pyx_proc_stop(proc, 1000), 0); /* idempotent */
	ck_assert(all_traced(pid));
	tids = pyx_proc_threads(proc, &n);
	nl = list_tasks(pid, listed, 64);
	ck_assert_uint_eq(n, 4);
	ck_assert_int_eq(nl, 4);
	ck_assert_int_eq(tids[0], pid);
	for (int i = 0; i < 4; i++) {
		ck_assert(contains(tids, n, listed[i]));
		ck_assert(contains(tids, n, sh->tids[i]));
		ck_assert_int_eq(pyx_proc_thread_tls(proc, sh->tids[i], &tls),
				 0);
#ifdef __x86_64__
		ck_assert_uint_eq(tls, sh->selfs[i]);
#endif
	}
	ck_assert_int_eq(pyx_proc_thread_tls(proc, 99999999, &tls),
			 -PYX_E_NOT_SUPPORTED);
	ck_assert_uint_gt(pyx_proc_pause_ns(proc), 0);

	ck_assert_int_eq(pyx_proc_resume(proc), 0);
	ck_assert(!pyx_proc_is_stopped(proc));
	ck_assert(settles_running(pid, true));
	pause1 = pyx_proc_pause_ns(proc);
	ck_assert_uint_gt(pause1, 0);
	ck_assert_int_eq(pyx_proc_resume(proc), 0); /* idempotent */
	msleep(2);
	ck_assert_uint_eq(pyx_proc_pause_ns(proc), pause1);

	/* Again: the pause adds up; free resumes. */
	ck_assert_int_eq(pyx_proc_stop(proc, 1000), 0);
	ck_assert(all_traced(pid));
	pyx_proc_free(proc);
	ck_assert(settles_running(pid, true));
	reap(pid);
}
END_TEST

START_TEST(test_memory_while_stopped)
{
	struct pyx_target *proc;
	struct pyx_mem *mem;
	uint64_t v;
	pid_t pid = spawn_threads(1);

	ck_assert_int_eq(pyx_target_open_pid(pid, &proc), 0);
	mem = pyx_target_mem(proc);
	ck_assert_ptr_nonnull(mem);
	ck_assert_int_eq(pyx_target_stop(proc, 1000), 0);
	/* sh is MAP_SHARED: the same value here and there. */
	ck_assert_int_eq(pyx_mem_read_u64(mem, (uintptr_t)&sh->selfs[1], &v),
			 0);
	ck_assert_uint_eq(v, sh->selfs[1]);
	pyx_target_free(proc);
	reap(pid);
}
END_TEST

START_TEST(test_thread_churn)
{
	struct pyx_proc *proc;
	pid_t listed[1024];
	pid_t pid = spawn_threads(2 | WITH_SPAWNER);

	wait_flag(&sh->spawned, 50);
	ck_assert_int_eq(pyx_proc_open(pid, &proc), 0);
	for (int round = 0; round < 30; round++) {
		const pid_t *tids;
		size_t n;
		int nl, spawned;

		ck_assert_int_eq(pyx_proc_stop(proc, 2000), 0);
		tids = pyx_proc_threads(proc, &n);
		ck_assert_uint_ge(n, 4);
		spawned = sh->spawned;
		nl = list_tasks(pid, listed, 1024);
		for (int i = 0; i < nl; i++) {
			char c = tstate(pid, listed[i]);

			if (c == 'Z' || c == 'X' || c == 0)
				continue; /* exited meanwhile */
			ck_assert_msg(c == 't' && contains(tids, n, listed[i]),
				      "round %d: thread %d state %c", round,
				      (int)listed[i], c);
		}
		for (size_t i = 0; i < n; i++)
			ck_assert_int_eq(tstate(pid, tids[i]), 't');
		msleep(1);
		ck_assert_int_eq(sh->spawned, spawned); /* really stopped */
		ck_assert_int_eq(pyx_proc_resume(proc), 0);
	}
	ck_assert(settles_running(pid, true));
	pyx_proc_free(proc);
	reap(pid);
}
END_TEST

START_TEST(test_signals_not_lost)
{
	struct pyx_proc *proc;
	union sigval val = { 0 };
	pid_t pid = spawn_threads(2);
	int rounds = 60;

	ck_assert_int_eq(pyx_proc_open(pid, &proc), 0);
	for (int i = 0; i < rounds; i++) {
		ck_assert_int_eq(sigqueue(pid, SIGRTMIN, val), 0);
		if (i % 3 == 1)
			msleep(1);
		ck_assert_int_eq(pyx_proc_stop(proc, 1000), 0);
		if (i % 3 == 2)
			ck_assert_int_eq(sigqueue(pid, SIGRTMIN, val), 0);
		ck_assert_int_eq(pyx_proc_resume(proc), 0);
	}
	for (int i = 0; i < 2000 && sh->sigcount < rounds + rounds / 3; i++)
		msleep(1);
	ck_assert_int_eq(sh->sigcount, rounds + rounds / 3);
	fprintf(stderr, "u-process: %d signals, %llu handed back from "
			"signal-delivery-stops\n",
		sh->sigcount,
		(unsigned long long)pyx_proc_test_reinjected(proc));
	pyx_proc_free(proc);
	reap(pid);
}
END_TEST

static void flooder(void *arg)
{
	union sigval val = { 0 };
	uint64_t end;

	while (!sh->go)
		msleep(1);
	end = pyx_now_ns() + 300000000u;
	while (pyx_now_ns() < end) {
		if (sigqueue(target_for_helper, SIGRTMIN, val) == 0)
			sh->sent++;
		else
			msleep(1); /* queue full */
	}
	sh->flood_done = 1;
}

/* Signals arriving all the time: some are dequeued by a thread between
 * PTRACE_SEIZE and PTRACE_INTERRUPT (a signal-delivery-stop); none may be
 * lost. */
START_TEST(test_signal_flood)
{
	struct pyx_proc *proc;
	pid_t pid = spawn_threads(3), fl;
	int cycles = 0;

	target_for_helper = pid;
	fl = spawn(flooder, NULL);
	ck_assert_int_eq(pyx_proc_open(pid, &proc), 0);
	sh->go = 1;
	while (!sh->flood_done) {
		/* Every other cycle, widen the SEIZE..INTERRUPT window. */
		pyx_proc_test_set_seize_delay(cycles % 2 ? 500 : 0);
		ck_assert_int_eq(pyx_proc_stop(proc, 1000), 0);
		ck_assert(all_traced(pid));
		ck_assert_int_eq(pyx_proc_resume(proc), 0);
		cycles++;
	}
	pyx_proc_test_set_seize_delay(0);
	for (int i = 0; i < 2000 && sh->sigcount < sh->sent; i++)
		msleep(1);
	ck_assert_int_eq(sh->sigcount, sh->sent);
	ck_assert_uint_gt(pyx_proc_test_reinjected(proc), 0);
	fprintf(stderr, "u-process: flood: %d cycles, %d signals, %llu handed "
			"back from signal-delivery-stops\n",
		cycles, sh->sent,
		(unsigned long long)pyx_proc_test_reinjected(proc));
	pyx_proc_free(proc);
	reap(fl);
	reap(pid);
}
END_TEST

START_TEST(test_group_stopped)
{
	struct pyx_proc *proc;
	pid_t pid = spawn_threads(1);

	kill(pid, SIGSTOP);
	for (int i = 0; i < 1000 && tstate(pid, pid) != 'T'; i++)
		msleep(1);
	ck_assert_int_eq(tstate(pid, pid), 'T');
	ck_assert_int_eq(pyx_proc_open(pid, &proc), 0);
	ck_assert_int_eq(pyx_proc_stop(proc, 1000), 0);
	ck_assert(all_traced(pid));
	ck_assert_int_eq(pyx_proc_resume(proc), 0);
	/* Still stopped by SIGSTOP, as before (each thread runs a moment
	 * to re-enter the group-stop). */
	ck_assert(settles_running(pid, false));
	for (int i = 0; i < 1000 && tstate(pid, pid) != 'T'; i++)
		msleep(1);
	ck_assert_int_eq(tstate(pid, pid), 'T');
	msleep(20);
	ck_assert_int_eq(tstate(pid, pid), 'T');
	ck_assert_int_eq(tstate(pid, sh->tids[1]), 'T');
	kill(pid, SIGCONT);
	ck_assert(settles_running(pid, true));
	pyx_proc_free(proc);
	reap(pid);
}
END_TEST

START_TEST(test_exited)
{
	struct pyx_proc *proc;
	pid_t pid = spawn_threads(1);

	ck_assert_int_eq(pyx_proc_open(pid, &proc), 0);
	reap(pid);
	ck_assert_int_eq(pyx_proc_stop(proc, 1000), -PYX_E_EXITED);
	ck_assert(!pyx_proc_is_stopped(proc));
	pyx_proc_free(proc);

	/* A zombie, not reaped yet. */
	pid = spawn_threads(2);
	ck_assert_int_eq(pyx_proc_open(pid, &proc), 0);
	kill(pid, SIGKILL);
	for (int i = 0; i < 2000 && tstate(pid, pid) != 'Z'; i++)
		msleep(1);
	ck_assert_int_eq(tstate(pid, pid), 'Z');
	ck_assert_int_eq(pyx_proc_stop(proc, 1000), -PYX_E_EXITED);
	ck_assert(!pyx_proc_is_stopped(proc));
	pyx_proc_free(proc);
	reap(pid);
}
END_TEST

START_TEST(test_stop_self)
{
	struct pyx_proc *proc;

	ck_assert_int_eq(pyx_proc_open(getpid(), &proc), 0);
	ck_assert_int_eq(pyx_proc_stop(proc, 1000), -PYX_E_PERMISSION);
	ck_assert(!pyx_proc_is_stopped(proc));
	pyx_proc_free(proc);
}
END_TEST

START_TEST(test_emergency)
{
	struct pyx_proc *proc;
	pid_t pid = spawn_threads(3);

	ck_assert_int_eq(pyx_proc_open(pid, &proc), 0);
	ck_assert_int_eq(pyx_proc_stop(proc, 1000), 0);
	ck_assert(all_traced(pid));
	ck_assert_int_eq(pyx_proc_emergency_resume(), 4);
	ck_assert(settles_running(pid, true));
	/* Nothing left: harmless, and says so. */
	ck_assert_int_eq(pyx_proc_emergency_resume(), 0);
	ck_assert_int_eq(pyx_proc_resume(proc), 0);
	/* The registry is reusable. */
	ck_assert_int_eq(pyx_proc_stop(proc, 1000), 0);
	ck_assert(all_traced(pid));
	ck_assert_int_eq(pyx_proc_resume(proc), 0);
	ck_assert(settles_running(pid, true));
	pyx_proc_free(proc);
	reap(pid);
}
END_TEST

/* The tracer of test_emergency_signal: a SIGTERM handler like pyxray's
 * detaches and exits; the stop is slowed between PTRACE_SEIZE and
 * PTRACE_INTERRUPT so that the target dequeues a signal while seized. */
static void on_term_emergency(int sig)
{
	pyx_proc_emergency_resume();
	_exit(0);
}

static void helper_slow_stop(void *arg)
{
	struct pyx_proc *proc;
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_term_emergency;
	sigfillset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	pyx_proc_test_set_seize_delay(5000000);
	if (pyx_proc_open(target_for_helper, &proc) == 0)
		(void)pyx_proc_stop(proc, 8000);
	_exit(1); /* not reached: SIGTERM comes during the delay */
}

static long tracer_of(pid_t pid)
{
	char path[64], buf[4096], *p;
	FILE *f;
	size_t k;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "r");
	if (!f)
		return -1;
	k = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[k] = '\0';
	p = strstr(buf, "TracerPid:");
	return p ? strtol(p + 10, NULL, 10) : -1;
}

/* A signal the target dequeued while seized (a signal-delivery-stop that
 * the tracer has not waited for yet) survives an emergency detach: it is
 * handed back, as the normal detach does. */
START_TEST(test_emergency_signal)
{
	union sigval val = { 0 };
	pid_t pid = spawn_threads(0), helper;

	target_for_helper = pid;
	helper = spawn(helper_slow_stop, NULL);
	for (int i = 0; i < 3000 && tracer_of(pid) != helper; i++)
		msleep(1);
	ck_assert_int_eq(tracer_of(pid), helper);
	ck_assert_int_eq(sh->sigcount, 0);
	/* Seized, still running: it dequeues the signal and stops. */
	ck_assert_int_eq(sigqueue(pid, SIGRTMIN, val), 0);
	for (int i = 0; i < 2000 && tstate(pid, pid) != 't'; i++)
		msleep(1);
	ck_assert_int_eq(tstate(pid, pid), 't');
	ck_assert_int_eq(sh->sigcount, 0);
	kill(helper, SIGTERM);
	ck_assert(settles_running(pid, true));
	for (int i = 0; i < 2000 && sh->sigcount < 1; i++)
		msleep(1);
	ck_assert_msg(sh->sigcount == 1, "the signal was lost (%d handled)",
		      sh->sigcount);
	reap(helper);
	reap(pid);
}
END_TEST

static void helper_seize(void *arg)
{
	if (ptrace(PTRACE_SEIZE, target_for_helper, NULL, NULL) == 0)
		sh->helper_ready = getpid();
}

START_TEST(test_busy)
{
	struct pyx_proc *proc;
	char exp[32];
	pid_t pid = spawn_threads(1), helper;

	target_for_helper = pid;
	helper = spawn(helper_seize, NULL);
	for (int i = 0; i < 2000 && !sh->helper_ready; i++)
		msleep(1);
	ck_assert_int_eq(sh->helper_ready, helper);
	ck_assert_int_eq(pyx_proc_open(pid, &proc), 0);
	ck_assert_int_eq(pyx_proc_stop(proc, 1000), -PYX_E_BUSY);
	snprintf(exp, sizeof(exp), "by PID %d", (int)helper);
	ck_assert_msg(strstr(pyx_err_detail(), exp), "%s", pyx_err_detail());
	ck_assert(!pyx_proc_is_stopped(proc));
	ck_assert(settles_running(pid, true));
	pyx_proc_free(proc);
	reap(helper);
	reap(pid);
}
END_TEST

static void helper_stop(void *arg)
{
	struct pyx_proc *proc;

	if (pyx_proc_open(target_for_helper, &proc) == 0 &&
	    pyx_proc_stop(proc, 1000) == 0)
		sh->helper_ready = getpid();
}

/* If pyxray is SIGKILLed while the target is stopped, the kernel detaches
 * the tracees and, as they were PTRACE_SEIZEd and interrupted (no
 * group-stop), they run on. */
START_TEST(test_tracer_sigkill)
{
	pid_t pid = spawn_threads(3), helper;

	target_for_helper = pid;
	helper = spawn(helper_stop, NULL);
	for (int i = 0; i < 2000 && !sh->helper_ready; i++)
		msleep(1);
	ck_assert_int_eq(sh->helper_ready, helper);
	ck_assert(all_traced(pid));
	reap(helper); /* SIGKILL */
	ck_assert(settles_running(pid, true));
	reap(pid);
}
END_TEST

/* A thread that cannot stop (vfork parent): TIMEOUT, the rest runs on,
 * and the stuck thread is released once it stops. */
START_TEST(test_timeout)
{
	struct pyx_proc *proc;
	pid_t pid = spawn_threads(2 | WITH_VFORKER), listed[64], stuck = 0;
	uint64_t t0, dt;
	const pid_t *tids;
	size_t n;
	int nl;

	ck_assert_int_eq(pyx_proc_open(pid, &proc), 0);
	sh->go = 1;
	for (int i = 0; i < 1000 && !stuck; i++) {
		nl = list_tasks(pid, listed, 64);
		for (int k = 0; k < nl; k++)
			if (tstate(pid, listed[k]) == 'D')
				stuck = listed[k];
		if (!stuck)
			msleep(1);
	}
	ck_assert_int_ne(stuck, 0);

	t0 = pyx_now_ns();
	ck_assert_int_eq(pyx_proc_stop(proc, 100), -PYX_E_TIMEOUT);
	dt = pyx_now_ns() - t0;
	ck_assert_uint_ge(dt, 100000000u);
	ck_assert_uint_lt(dt, 400000000u);
	ck_assert_ptr_nonnull(strstr(pyx_err_detail(), "1 of"));
	ck_assert(!pyx_proc_is_stopped(proc));
	ck_assert_uint_eq(pyx_proc_test_pending(proc), 1);
	ck_assert_uint_gt(pyx_proc_pause_ns(proc), 0);
	/* Every other thread runs. */
	nl = list_tasks(pid, listed, 64);
	for (int k = 0; k < nl; k++)
		if (listed[k] != stuck)
			ck_assert_int_ne(tstate(pid, listed[k]), 't');

	/* The vfork child exits after 700 ms: the thread traps... */
	for (int i = 0; i < 2000 && tstate(pid, stuck) != 't'; i++)
		msleep(1);
	ck_assert_int_eq(tstate(pid, stuck), 't');
	/* ...and is released by the next call. */
	tids = pyx_proc_threads(proc, &n);
	ck_assert_ptr_nonnull(tids);
	ck_assert_uint_eq(pyx_proc_test_pending(proc), 0);
	ck_assert(settles_running(pid, true));
	/* Stopping works again. */
	ck_assert_int_eq(pyx_proc_stop(proc, 1000), 0);
	ck_assert(all_traced(pid));
	pyx_proc_free(proc);
	ck_assert(settles_running(pid, true));
	reap(pid);
}
END_TEST

/* Same, but the proc is freed while the thread is still stuck: free waits
 * up to 100 ms, then leaves it; our exit would release it. */
START_TEST(test_timeout_free)
{
	struct pyx_proc *proc;
	pid_t pid = spawn_threads(1 | WITH_VFORKER), listed[64];
	bool stuck = false;

	ck_assert_int_eq(pyx_proc_open(pid, &proc), 0);
	sh->go = 1;
	for (int i = 0; i < 1000 && !stuck; i++) {
		int nl = list_tasks(pid, listed, 64);

		for (int k = 0; k < nl; k++)
			stuck = stuck || tstate(pid, listed[k]) == 'D';
		if (!stuck)
			msleep(1);
	}
	ck_assert(stuck);
	ck_assert_int_eq(pyx_proc_stop(proc, 50), -PYX_E_TIMEOUT);
	pyx_proc_free(proc);
	reap(pid);
}
END_TEST

static Suite *process_suite(void)
{
	Suite *s = suite_create("process");
	TCase *tc = tcase_create("core");

	tcase_set_timeout(tc, 10);
	tcase_add_test(tc, test_open_missing);
	tcase_add_test(tc, test_open_zombie_and_thread);
	tcase_add_test(tc, test_maps);
	tcase_add_test(tc, test_path_comm);
	tcase_add_test(tc, test_stop_resume);
	tcase_add_test(tc, test_memory_while_stopped);
	tcase_add_test(tc, test_thread_churn);
	tcase_add_test(tc, test_signals_not_lost);
	tcase_add_test(tc, test_signal_flood);
	tcase_add_test(tc, test_group_stopped);
	tcase_add_test(tc, test_exited);
	tcase_add_test(tc, test_stop_self);
	tcase_add_test(tc, test_emergency);
	tcase_add_test(tc, test_emergency_signal);
	tcase_add_test(tc, test_busy);
	tcase_add_test(tc, test_tracer_sigkill);
	tcase_add_test(tc, test_timeout);
	tcase_add_test(tc, test_timeout_free);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return pyx_unit_run(process_suite());
}
