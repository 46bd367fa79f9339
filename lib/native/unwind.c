/* Unwinding stopped threads with libunwind-ptrace.
 *
 * One address space serves every thread of the process, so what libunwind
 * learns about a pc (its register rules) is learnt once.  _UPT finds a pc's
 * ELF file and unwind table through /proc/PID/maps, which all threads
 * share, but keeps one file at a time: each switch between libc and
 * libpython would read the maps and map a file again.  So there is one
 * _UPT handle per file, and each keeps its own.
 *
 * Two accessors are replaced: memory goes through pyx_mem (cached,
 * process_vm_readv) instead of one PTRACE_PEEKDATA per word, and registers
 * come from one PTRACE_GETREGS per thread instead of one PTRACE_PEEKUSER
 * per register.  libunwind hands the accessors whichever _UPT handle is at
 * work, so the unwinder at work is found through a thread-local pointer:
 * unwinding is synchronous.
 */
#include <errno.h>
#include <libunwind-ptrace.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/user.h>
#include <unistd.h>

#include "internal.h"
#include "pyxray/memory.h"
#include "pyxray/target.h"
#include "pyxray/unwind.h"

/* More files than this in one stack share the last handle. */
#define MAX_UPT 64

struct upt_slot {
	char *path;
	void *upt;
};

struct pyx_unwinder {
	struct pyx_target *tgt;
	struct pyx_mem *mem;
	unw_addr_space_t as;
	void *upt;               /* passed to unw_init_remote */
	struct upt_slot slot[MAX_UPT];
	size_t nslots;
#if defined(__x86_64__)
	struct user_regs_struct regs; /* of the thread being unwound */
#endif
};

static _Thread_local struct pyx_unwinder *current;

static struct pyx_unwinder *working_on(unw_addr_space_t as)
{
	return current && current->as == as ? current : NULL;
}

static int acc_mem(unw_addr_space_t as, unw_word_t addr, unw_word_t *val,
		   int write, void *arg)
{
	struct pyx_unwinder *u = working_on(as);

	if (!u)
		return _UPT_access_mem(as, addr, val, write, arg);
	if (write)
		return -UNW_EINVAL; /* never: the target is only read */
	return pyx_mem_read(u->mem, addr, val, sizeof(*val)) ? -UNW_EINVAL : 0;
}

#if defined(__x86_64__)
/* libunwind's x86_64 register numbers, in order, to struct user_regs_struct. */
static const size_t reg_offset[] = {
	offsetof(struct user_regs_struct, rax),
	offsetof(struct user_regs_struct, rdx),
	offsetof(struct user_regs_struct, rcx),
	offsetof(struct user_regs_struct, rbx),
	offsetof(struct user_regs_struct, rsi),
	offsetof(struct user_regs_struct, rdi),
	offsetof(struct user_regs_struct, rbp),
	offsetof(struct user_regs_struct, rsp),
	offsetof(struct user_regs_struct, r8),
	offsetof(struct user_regs_struct, r9),
	offsetof(struct user_regs_struct, r10),
	offsetof(struct user_regs_struct, r11),
	offsetof(struct user_regs_struct, r12),
	offsetof(struct user_regs_struct, r13),
	offsetof(struct user_regs_struct, r14),
	offsetof(struct user_regs_struct, r15),
	offsetof(struct user_regs_struct, rip),
};
_Static_assert(UNW_X86_64_RIP == 16, "libunwind register numbering");
#endif

/* The _UPT handle for the file holding ip. */
static void *upt_for(struct pyx_unwinder *u, unw_word_t ip)
{
	const struct pyx_map *m = pyx_target_find_map(u->tgt, ip);
	struct upt_slot *sl;

	if (!m || !m->path[0])
		return u->upt;
	for (size_t i = 0; i < u->nslots; i++)
		if (strcmp(u->slot[i].path, m->path) == 0)
			return u->slot[i].upt;
	if (u->nslots == MAX_UPT)
		return u->upt;
	sl = &u->slot[u->nslots];
	if (!(sl->path = strdup(m->path)))
		return u->upt;
	if (!(sl->upt = _UPT_create(pyx_target_pid(u->tgt)))) {
		free(sl->path);
		return u->upt;
	}
	u->nslots++;
	return sl->upt;
}

static int acc_find_proc_info(unw_addr_space_t as, unw_word_t ip,
			      unw_proc_info_t *pi, int need_unwind_info,
			      void *arg)
{
	struct pyx_unwinder *u = working_on(as);

	return _UPT_find_proc_info(as, ip, pi, need_unwind_info,
				   u ? upt_for(u, ip) : arg);
}

static int acc_reg(unw_addr_space_t as, unw_regnum_t reg, unw_word_t *val,
		   int write, void *arg)
{
	struct pyx_unwinder *u = working_on(as);

	if (!u)
		return _UPT_access_reg(as, reg, val, write, arg);
	if (write)
		return -UNW_EREADONLYREG;
#if defined(__x86_64__)
	if (reg < 0 || (size_t)reg >= PYX_ARRAY_SIZE(reg_offset))
		return -UNW_EBADREG;
	memcpy(val, (const char *)&u->regs + reg_offset[reg], sizeof(*val));
	return 0;
#else
	return -UNW_EBADREG;
#endif
}

static int acc_fpreg(unw_addr_space_t as, unw_regnum_t reg, unw_fpreg_t *val,
		     int write, void *arg)
{
	return -UNW_EBADREG; /* unwinding needs none */
}

static int acc_resume(unw_addr_space_t as, unw_cursor_t *c, void *arg)
{
	return -UNW_EINVAL; /* never: pyxray does not run the target */
}

static int acc_proc_name(unw_addr_space_t as, unw_word_t ip, char *buf,
			 size_t n, unw_word_t *off, void *arg)
{
	return -UNW_ENOINFO; /* names come from the symbolizer */
}

int pyx_unwinder_new(struct pyx_target *tgt, struct pyx_unwinder **out)
{
	unw_accessors_t acc = _UPT_accessors; /* copied by libunwind */
	struct pyx_unwinder *u;

	*out = NULL;
	/* _UPT's lookups of unwind info, with our memory and registers. */
	acc.find_proc_info = acc_find_proc_info;
	acc.access_mem = acc_mem;
	acc.access_reg = acc_reg;
	acc.access_fpreg = acc_fpreg;
	acc.resume = acc_resume;
	acc.get_proc_name = acc_proc_name;
	u = calloc(1, sizeof(*u));
	if (!u)
		return pyx_err_set(PYX_E_NOMEM, "out of memory");
	u->tgt = tgt;
	u->mem = pyx_target_mem(tgt);
	u->as = unw_create_addr_space(&acc, 0);
	u->upt = _UPT_create(pyx_target_pid(tgt));
	if (!u->as || !u->upt) {
		pyx_unwinder_free(u);
		return pyx_err_set(PYX_E_NOMEM, "libunwind: cannot create an "
				   "address space");
	}
	unw_set_caching_policy(u->as, UNW_CACHE_GLOBAL);
	*out = u;
	return 0;
}

void pyx_unwinder_free(struct pyx_unwinder *u)
{
	if (!u)
		return;
	for (size_t i = 0; i < u->nslots; i++) {
		_UPT_destroy(u->slot[i].upt);
		free(u->slot[i].path);
	}
	if (u->upt)
		_UPT_destroy(u->upt);
	if (u->as)
		unw_destroy_addr_space(u->as);
	free(u);
}

int pyx_unwinder_warm(struct pyx_unwinder *u, pyx_addr_t pc)
{
	unw_proc_info_t pi;

	/* Whether pc has unwind info does not matter: the file's table is
	 * loaded either way.  Without unwind info asked, nothing to put. */
	memset(&pi, 0, sizeof(pi));
	current = u;
	_UPT_find_proc_info(u->as, pc, &pi, 0, upt_for(u, pc));
	current = NULL;
	return 0;
}

/* Fetch tid's registers; distinguish a thread that is gone from one that
 * is not stopped (both give ESRCH). */
static int load_regs(struct pyx_unwinder *u, pid_t tid)
{
#if defined(__x86_64__)
	char path[64];
	int e;

	if (ptrace(PTRACE_GETREGS, tid, NULL, &u->regs) == 0)
		return 0;
	e = errno;
	snprintf(path, sizeof(path), "/proc/%d/task/%d",
		 (int)pyx_target_pid(u->tgt), (int)tid);
	if (e == ESRCH && access(path, F_OK) != 0)
		return pyx_err_set(PYX_E_EXITED, "thread %d exited", (int)tid);
	if (e == ESRCH)
		return pyx_err_set(PYX_E_NOT_SUPPORTED, "thread %d is not "
				   "stopped", (int)tid);
	return pyx_err_set(PYX_E_IO, "ptrace(PTRACE_GETREGS, %d): %s",
			   (int)tid, strerror(e));
#else
	return pyx_err_set(PYX_E_NOT_SUPPORTED, "native unwinding is "
			   "supported on x86_64 only");
#endif
}

static int walk(struct pyx_unwinder *u, pid_t tid,
		struct pyx_unwind_frame *out, size_t max, size_t *n)
{
	unw_cursor_t c;
	unw_word_t pc, sp, prev_sp = 0;
	bool precise = true;
	int rc;

	if ((rc = load_regs(u, tid)))
		return rc;
	if ((rc = unw_init_remote(&c, u->as, u->upt)) < 0)
		return pyx_err_set(PYX_E_BAD_MEMORY, "thread %d: libunwind: "
				   "cannot start: %s", (int)tid, unw_strerror(rc));
	for (;;) {
		if (unw_get_reg(&c, UNW_REG_IP, &pc) < 0 ||
		    unw_get_reg(&c, UNW_REG_SP, &sp) < 0)
			return pyx_err_set(PYX_E_BAD_MEMORY, "thread %d: "
					   "libunwind: no pc in frame %zu",
					   (int)tid, *n);
		if (pc == 0)
			return 0; /* the outermost frame's return address */
		/* A stack grows down: a caller's frame never lies below
		 * its callee's.  Stops loops in corrupt stacks. */
		if (*n && sp < prev_sp)
			return pyx_err_set(PYX_E_BAD_MEMORY, "thread %d: stack "
					   "pointer went backwards at frame "
					   "%zu", (int)tid, *n);
		if (*n == max)
			return pyx_err_set(PYX_E_NOT_SUPPORTED, "thread %d: "
					   "cut at %zu native frames",
					   (int)tid, max);
		out[*n].pc = pc;
		out[*n].precise = precise;
		(*n)++;
		prev_sp = sp;
		/* The frame after a signal frame was interrupted, not
		 * calling: its pc is the instruction itself. */
		precise = unw_is_signal_frame(&c) > 0;
		rc = unw_step(&c);
		if (rc == 0)
			return 0;
		if (rc < 0)
			return pyx_err_set(PYX_E_BAD_MEMORY, "thread %d: "
					   "libunwind: stopped after %zu "
					   "frames: %s", (int)tid, *n,
					   unw_strerror(rc));
	}
}

int pyx_unwind_thread(struct pyx_unwinder *u, pid_t tid,
		      struct pyx_unwind_frame *out, size_t max, size_t *n)
{
	int rc;

	*n = 0;
	current = u;
	rc = walk(u, tid, out, max, n);
	current = NULL;
	return rc;
}
