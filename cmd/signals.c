/* Signals: no signal that reaches pyxray may leave the target stopped. */
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "cmd.h"
#include "pyxray/error.h"
#include "pyxray/target.h"

static void on_signal(int sig)
{
	static const char msg[] =
		"pyxray: error: interrupted: the target was detached and resumed\n";

	pyx_target_emergency_resume();
	if (write(STDERR_FILENO, msg, sizeof(msg) - 1) < 0) {
		/* nothing left to do */
	}
	(void)sig;
	_exit(pyx_exit_code(PYX_E_INTERRUPTED));
}

void cmd_install_signal_handlers(void)
{
	/* Ctrl-Z would leave the target stopped as long as we are: treat the
	 * stop signals like an interrupt.  SIGSTOP cannot be caught; SIGKILL
	 * needs nothing (the kernel detaches and the target resumes). */
	static const int sigs[] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT,
				    SIGTSTP, SIGTTIN, SIGTTOU };
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigfillset(&sa.sa_mask); /* one handler at a time */
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		sigaction(sigs[i], &sa, NULL);
	/* Output to a closed pipe must not kill us while a target is stopped:
	 * we write only after resuming, but be safe. */
	signal(SIGPIPE, SIG_IGN);
}

