/* Unwinding stopped threads with libdwfl, over pyxray's own target reader.
 *
 * libdwfl is told nothing of a process: dwfl_attach_state() gets callbacks
 * of ours, so memory comes from pyx_mem (cached), the first frame's
 * registers from pyx_target_thread_regs(), and the ELF files (for their
 * .eh_frame) from the file resolver, which reaches what the target maps
 * inside its own root.  Nothing here opens a path the target names in
 * pyxray's mount namespace, and nothing needs a pid: the same unwinder can
 * serve any backend with memory, maps and registers (a core file).
 *
 * One Dwfl serves every thread of the target, so what libdwfl learns about
 * a file (its call frame information, sorted) is learnt once.  It is kept
 * apart from the symbolizer's, which loads separate debug files: this one
 * never does (find_debuginfo finds nothing), because it works while the
 * target is stopped and .eh_frame is what unwinding needs.
 */
#include <dwarf.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/user.h>
#include <unistd.h>

#include "internal.h"
#include "native.h"
#include "pyxray/files.h"
#include "pyxray/memory.h"
#include "pyxray/target.h"
#include "pyxray/unwind.h"

/* ---- libdwfl over the target's files (shared with the symbolizer) ------- */

int pyx_dwfl_find_elf(Dwfl_Module *mod, void **userdata, const char *name,
		      Dwarf_Addr base, char **file_name, Elf **elfp)
{
	struct pyx_dwfl_files *df = *userdata;
	char path[PATH_MAX + 64];
	int fd;

	(void)base;
	if (strcmp(name, "[vdso]") == 0) {
		Dwarf_Addr start, end;
		void *img, **imgs;

		/* Not a file: a copy of its pages makes one. */
		dwfl_module_info(mod, NULL, &start, &end, NULL, NULL, NULL, NULL);
		if (end <= start || end - start > (1u << 20) ||
		    !(img = malloc(end - start)))
			return -1;
		imgs = realloc(df->images, (df->nimages + 1) * sizeof(*imgs));
		if (!imgs ||
		    pyx_mem_read_direct(pyx_target_mem(df->tgt), start, img,
					end - start)) {
			if (imgs)
				df->images = imgs;
			free(img);
			return -1;
		}
		df->images = imgs;
		df->images[df->nimages++] = img;
		*elfp = elf_memory(img, end - start);
		return -1;
	}
	/* The resolver's way to the file the target maps (its root, its
	 * map_files): never the path as pyxray's namespace sees it. */
	if (pyx_target_open_mapped(df->tgt, name, &fd, path, sizeof(path))) {
		pyx_err_clear();
		return -1;
	}
	/* file_name names it (libdwfl's messages, our find_debuginfo's
	 * lookup); the fd is what is read. */
	if (!(*file_name = strdup(path))) {
		close(fd);
		return -1;
	}
	return fd;
}

void pyx_dwfl_files_release(struct pyx_dwfl_files *df)
{
	for (size_t i = 0; i < df->nimages; i++)
		free(df->images[i]);
	free(df->images);
	df->images = NULL;
	df->nimages = 0;
}

static bool usable_path(const char *p)
{
	size_t n = strlen(p);

	if (strcmp(p, "[vdso]") == 0)
		return true;
	/* A deleted file is reached through map_files by the resolver. */
	if (pyx_path_is_deleted(p))
		n -= strlen(" (deleted)");
	return p[0] == '/' && n > 1;
}

static void report(Dwfl *dwfl, struct pyx_dwfl_files *df, const char *path,
		   pyx_addr_t low, pyx_addr_t high)
{
	Dwfl_Module *mod = dwfl_report_module(dwfl, path, low, high);
	void **ud;

	if (mod && dwfl_module_info(mod, &ud, NULL, NULL, NULL, NULL, NULL,
				    NULL))
		*ud = df;
}

/* One module per run of consecutive maps of one file.  libdwfl takes the
 * load bias from the module's start, so a run must begin with the map of
 * file offset 0 (where the first PT_LOAD is) or it is left out. */
void pyx_dwfl_report_maps(Dwfl *dwfl, struct pyx_dwfl_files *df)
{
	const struct pyx_map *maps, *first = NULL;
	pyx_addr_t high = 0;
	size_t n;

	maps = pyx_target_maps(df->tgt, &n);
	dwfl_report_begin(dwfl);
	for (size_t i = 0; i <= n; i++) {
		const struct pyx_map *m = i < n ? &maps[i] : NULL;

		if (m && first && strcmp(m->path, first->path) == 0 &&
		    m->start >= high) {
			high = m->end;
			continue;
		}
		if (first && first->offset == 0)
			report(dwfl, df, first->path, first->start, high);
		first = NULL;
		if (m && usable_path(m->path)) {
			first = m;
			high = m->end;
		}
	}
	dwfl_report_end(dwfl, NULL, NULL);
}

/* ---- the unwinder -------------------------------------------------------- */

/* DWARF's x86_64 register numbers, in order, to struct user_regs_struct:
 * 0-15 the general registers, 16 the return address column (rip). */
#if defined(__x86_64__)
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
#define NREGS PYX_ARRAY_SIZE(reg_offset)
#define REG_SP 7
#define REG_PC 16
#else
#define NREGS 1
#endif

struct pyx_unwinder {
	struct pyx_dwfl_files files; /* first: the modules' userdata */
	struct pyx_mem *mem;
	Dwfl *dwfl;
	Dwfl_Callbacks cb;
	/* An ELF header that names the machine: libdwfl's unwinder takes
	 * the architecture from it, not from a file of the target. */
	Elf *arch;
	unsigned char ehdr[64];
	bool attached;
	Dwarf_Word regs[NREGS]; /* of the thread being unwound */
	pid_t tid;
};

static int no_debuginfo(Dwfl_Module *mod, void **userdata, const char *name,
			Dwarf_Addr base, const char *file_name,
			const char *debuglink, GElf_Word crc, char **out)
{
	(void)mod, (void)userdata, (void)name, (void)base, (void)file_name;
	(void)debuglink, (void)crc, (void)out;
	return -1;
}

/* Threads are named by pyx_unwind_thread(): libdwfl never lists them. */
static pid_t next_thread(Dwfl *dwfl, void *arg, void **thread_argp)
{
	(void)dwfl, (void)arg, (void)thread_argp;
	return 0;
}

static bool get_thread(Dwfl *dwfl, pid_t tid, void *arg, void **thread_argp)
{
	struct pyx_unwinder *u = arg;

	(void)dwfl;
	*thread_argp = u;
	return tid == u->tid;
}

static bool memory_read(Dwfl *dwfl, Dwarf_Addr addr, Dwarf_Word *result,
			void *arg)
{
	struct pyx_unwinder *u = arg;

	(void)dwfl;
	/* Refused before any system call if not mapped: a corrupt stack
	 * ends the walk with an error, nothing else. */
	return pyx_mem_read(u->mem, addr, result, sizeof(*result)) == 0;
}

static bool set_initial_registers(Dwfl_Thread *thread, void *arg)
{
	struct pyx_unwinder *u = arg;

#if defined(__x86_64__)
	if (!dwfl_thread_state_registers(thread, 0, NREGS, u->regs))
		return false;
	dwfl_thread_state_register_pc(thread, u->regs[REG_PC]);
	return true;
#else
	(void)thread, (void)u;
	return false;
#endif
}

static const Dwfl_Thread_Callbacks thread_callbacks = {
	.next_thread = next_thread,
	.get_thread = get_thread,
	.memory_read = memory_read,
	.set_initial_registers = set_initial_registers,
};

/* An in-memory ELF header of pyxray's own class, byte order and machine. */
static Elf *arch_elf(struct pyx_unwinder *u)
{
#if defined(__x86_64__)
	Elf64_Ehdr *h = (Elf64_Ehdr *)u->ehdr;

	_Static_assert(sizeof(u->ehdr) >= sizeof(Elf64_Ehdr), "ehdr");
	memcpy(h->e_ident, ELFMAG, SELFMAG);
	h->e_ident[EI_CLASS] = ELFCLASS64;
	h->e_ident[EI_DATA] = ELFDATA2LSB;
	h->e_ident[EI_VERSION] = EV_CURRENT;
	h->e_type = ET_CORE;
	h->e_machine = EM_X86_64;
	h->e_version = EV_CURRENT;
	h->e_ehsize = sizeof(*h);
	return elf_memory((char *)u->ehdr, sizeof(*h));
#else
	(void)u;
	return NULL;
#endif
}

int pyx_unwinder_new(struct pyx_target *tgt, struct pyx_unwinder **out)
{
	struct pyx_unwinder *u;

	*out = NULL;
#if !defined(__x86_64__)
	(void)tgt, (void)u;
	return pyx_err_set(PYX_E_NOT_SUPPORTED, "native unwinding is "
			   "supported on x86_64 only");
#else
	elf_version(EV_CURRENT);
	u = calloc(1, sizeof(*u));
	if (!u)
		return pyx_err_set(PYX_E_NOMEM, "out of memory");
	u->files.tgt = tgt;
	u->mem = pyx_target_mem(tgt);
	u->cb.find_elf = pyx_dwfl_find_elf;
	u->cb.find_debuginfo = no_debuginfo;
	if (!(u->dwfl = dwfl_begin(&u->cb)) || !(u->arch = arch_elf(u))) {
		pyx_unwinder_free(u);
		return pyx_err_set(PYX_E_NOMEM, "libdwfl: cannot set up an "
				   "unwinder: %s", dwfl_errmsg(-1));
	}
	pyx_dwfl_report_maps(u->dwfl, &u->files);
	if (!dwfl_attach_state(u->dwfl, u->arch, pyx_target_pid(tgt),
			       &thread_callbacks, u)) {
		int rc = pyx_err_set(PYX_E_INTERNAL, "libdwfl: cannot attach "
				     "the unwinder: %s", dwfl_errmsg(-1));

		pyx_unwinder_free(u);
		return rc;
	}
	u->attached = true;
	*out = u;
	return 0;
#endif
}

void pyx_unwinder_free(struct pyx_unwinder *u)
{
	if (!u)
		return;
	if (u->dwfl)
		dwfl_end(u->dwfl);
	/* After dwfl_end: libdwfl's backend keeps the header until then. */
	if (u->arch)
		elf_end(u->arch);
	pyx_dwfl_files_release(&u->files);
	free(u);
}

int pyx_unwinder_warm(struct pyx_unwinder *u, pyx_addr_t pc)
{
	Dwfl_Module *mod = dwfl_addrmodule(u->dwfl, pc);
	Dwarf_Addr bias;

	/* Opens the file and indexes its .eh_frame_hdr. */
	if (mod)
		dwfl_module_eh_cfi(mod, &bias);
	return 0;
}

/* tid's registers into u->regs; tell a thread that is gone from a target
 * that is not stopped. */
static int load_regs(struct pyx_unwinder *u, pid_t tid)
{
#if defined(__x86_64__)
	struct pyx_target *tgt = u->files.tgt;
	struct user_regs_struct r;
	int rc;

	rc = pyx_target_thread_regs(tgt, tid, &r, sizeof(r));
	if (rc == -PYX_E_NOT_SUPPORTED && pyx_target_is_stopped(tgt))
		return pyx_err_set(PYX_E_EXITED, "thread %d exited (it is not "
				   "among the stopped threads)", (int)tid);
	if (rc)
		return rc;
	for (size_t i = 0; i < NREGS; i++)
		memcpy(&u->regs[i], (const char *)&r + reg_offset[i],
		       sizeof(u->regs[i]));
	u->tid = tid;
	return 0;
#else
	(void)u, (void)tid;
	return pyx_err_set(PYX_E_NOT_SUPPORTED, "native unwinding is "
			   "supported on x86_64 only");
#endif
}

struct walk {
	struct pyx_unwind_frame *out;
	size_t max, *n;
	pid_t tid;
	Dwarf_Word prev_sp;
	int rc;     /* why on_frame stopped the walk */
	bool ended; /* it stopped at the outermost frame */
};

static int on_frame(Dwfl_Frame *state, void *arg)
{
	struct walk *w = arg;
	Dwarf_Addr pc;
	Dwarf_Word sp;
	bool activation = false;

	/* activation: the pc is the instruction being executed (the
	 * innermost frame, or one a signal interrupted), not a return
	 * address. */
	if (!dwfl_frame_pc(state, &pc, &activation)) {
		w->rc = pyx_err_set(PYX_E_BAD_MEMORY, "thread %d: no pc in "
				    "frame %zu: %s", (int)w->tid, *w->n,
				    dwfl_errmsg(-1));
		return DWARF_CB_ABORT;
	}
	if (pc == 0) {
		w->ended = true; /* the outermost frame's return address */
		return DWARF_CB_ABORT;
	}
#if defined(__x86_64__)
	/* A stack grows down: a caller's frame never lies below its
	 * callee's.  Stops loops in corrupt stacks. */
	if (dwfl_frame_reg(state, REG_SP, &sp) == 0) {
		if (*w->n && sp < w->prev_sp) {
			w->rc = pyx_err_set(PYX_E_BAD_MEMORY, "thread %d: stack "
					    "pointer went backwards at frame "
					    "%zu", (int)w->tid, *w->n);
			return DWARF_CB_ABORT;
		}
		w->prev_sp = sp;
	}
#else
	(void)sp;
#endif
	if (*w->n == w->max) {
		w->rc = pyx_err_set(PYX_E_NOT_SUPPORTED, "thread %d: cut at %zu "
				    "native frames", (int)w->tid, w->max);
		return DWARF_CB_ABORT;
	}
	w->out[*w->n].pc = pc;
	w->out[*w->n].precise = activation;
	(*w->n)++;
	return DWARF_CB_OK;
}

int pyx_unwind_thread(struct pyx_unwinder *u, pid_t tid,
		      struct pyx_unwind_frame *out, size_t max, size_t *n)
{
	struct walk w = { out, max, n, tid, 0, 0, false };
	int rc;

	*n = 0;
	if ((rc = load_regs(u, tid)))
		return rc;
	rc = dwfl_getthread_frames(u->dwfl, tid, on_frame, &w);
	u->tid = 0;
	if (rc == 0 || w.ended)
		return 0;
	if (w.rc)
		return w.rc;
	if (*n == 0)
		return pyx_err_set(PYX_E_BAD_MEMORY, "thread %d: libdwfl: cannot "
				   "start: %s", (int)tid, dwfl_errmsg(-1));
	return pyx_err_set(PYX_E_BAD_MEMORY, "thread %d: libdwfl: stopped "
			   "after %zu frames: %s", (int)tid, *n, dwfl_errmsg(-1));
}
