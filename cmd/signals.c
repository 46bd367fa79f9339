/* Signals: no signal that reaches pyxray may leave the target stopped, and
 * none may do more than its usual effect when no target is stopped.
 *
 * While a target is stopped (or being stopped), SIGINT, SIGTERM, SIGHUP,
 * SIGQUIT and the stop signals detach it, hand back the signals its
 * threads had dequeued, and exit with "interrupted" (11): Ctrl-Z would
 * otherwise keep the target stopped as long as pyxray.  Otherwise (pyxray
 * prints after resuming, or has not stopped anything yet) the signal does
 * what it does to any program: Ctrl-Z stops pyxray, Ctrl-C ends it. */
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "cmd.h"
#include "pyxray/error.h"
#include "pyxray/target.h"

/* The thread that stops targets: only it can detach them (ptrace). */
static volatile pid_t tracer_tid;

static void on_signal(int sig);

static const int sigs[] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT,
			    SIGTSTP, SIGTTIN, SIGTTOU };

static void install(int sig)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	/* A stop and continue in the middle of the output must not fail the
	 * write it interrupted (EINTR). */
	sa.sa_flags = SA_RESTART;
	sigfillset(&sa.sa_mask); /* one handler at a time */
	sigaction(sig, &sa, NULL);
}

/* The signal's default effect, from inside its handler. */
static void default_effect(int sig)
{
	sigset_t set, old;

	signal(sig, SIG_DFL);
	sigemptyset(&set);
	sigaddset(&set, sig);
	raise(sig); /* pending until unblocked */
	sigprocmask(SIG_UNBLOCK, &set, &old);
	/* A stop signal: we were stopped and are continued.  Catch it again,
	 * for the next stop of a target. */
	sigprocmask(SIG_SETMASK, &old, NULL);
	install(sig);
}

static void on_signal(int sig)
{
	static const char msg[] =
		"pyxray: error: interrupted: the target was detached and resumed\n";
	int saved = errno;
	pid_t self = (pid_t)syscall(SYS_gettid);

	if (tracer_tid && self != tracer_tid) {
		/* Another thread (a helper) caught it: the tracer must detach. */
		syscall(SYS_tgkill, getpid(), tracer_tid, sig);
		errno = saved;
		return;
	}
	if (pyx_target_emergency_resume() == 0) {
		default_effect(sig);
		errno = saved;
		return;
	}
	if (write(STDERR_FILENO, msg, sizeof(msg) - 1) < 0) {
		/* nothing left to do */
	}
	_exit(pyx_exit_code(PYX_E_INTERRUPTED));
}

void cmd_install_signal_handlers(void)
{
	/* SIGSTOP cannot be caught; SIGKILL needs nothing (the kernel
	 * detaches and the target resumes). */
	tracer_tid = (pid_t)syscall(SYS_gettid);
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		install(sigs[i]);
	/* Output to a closed pipe must not kill us while a target is stopped:
	 * we write only after resuming, but be safe. */
	signal(SIGPIPE, SIG_IGN);
}
