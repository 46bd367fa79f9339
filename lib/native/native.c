/* Native stacks: symbols with libdwfl, and the merge with Python frames.
 *
 * The symbolizer reports each file mapped in the target to libdwfl as a
 * module at the address it is mapped at, and opens it only when a lookup
 * first needs it, through the file resolver (the vDSO is copied from
 * memory); separate debug files are found by the resolver too.  Results
 * are cached per pc: threads of one process share most of them.
 */
#include <dwarf.h>
#include <elfutils/libdwfl.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "native.h"
#include "pyxray/files.h"
#include "pyxray/symbols.h"
#include "reader.h"

/* ---- symbolizer -------------------------------------------------------- */

struct sym_entry {
	pyx_addr_t pc;
	bool precise, used;
	size_t first, n; /* frames pool[first, first + n) */
};

struct pyx_symbolizer {
	struct pyx_dwfl_files files; /* first: the modules' userdata */
	Dwfl *dwfl;
	Dwfl_Callbacks cb;
	struct sym_entry *tab; /* open addressing, capacity a power of 2 */
	size_t tabcap, tabused;
	struct pyx_native_frame *pool;
	size_t npool, poolcap;
};

void pyx_native_frame_release(struct pyx_native_frame *f)
{
	free(f->function);
	free(f->library);
	free(f->file);
	memset(f, 0, sizeof(*f));
}

/* Separate debug files, as the resolver finds them: by build-id, then by
 * .gnu_debuglink, under the target's /usr/lib/debug and ours, then beside
 * the file as gdb looks; never one whose build-id differs.  Not libdwfl's
 * standard search: it falls back to debuginfod, which loads a network
 * client and may download for minutes. */
static int find_debuginfo(Dwfl_Module *mod, void **userdata, const char *name,
			  Dwarf_Addr base, const char *file_name,
			  const char *debuglink, GElf_Word crc, char **out)
{
	struct pyx_dwfl_files *df = *userdata;
	char local[PATH_MAX];
	struct pyx_elf *elf;
	struct stat main_st, st;
	int fd, rc;

	(void)mod, (void)base, (void)file_name, (void)debuglink, (void)crc;
	/* The file the target maps, reached again by the resolver (an fd,
	 * checked by device and inode): file_name is only a name. */
	if (pyx_target_open_mapped(df->tgt, name, &fd, NULL, 0) ||
	    fstat(fd, &main_st) != 0 || pyx_elf_open_fd(fd, name, 0, &elf)) {
		pyx_err_clear();
		return -1;
	}
	/* The debug file's fd is the very file whose build-id was checked:
	 * libdwfl reads it, never a name. */
	rc = pyx_target_open_debug_file(df->tgt, elf, name, NULL, &fd, local,
					sizeof(local), NULL, 0);
	pyx_elf_free(elf);
	pyx_err_clear();
	if (rc)
		return -1;
	/* Its own debug file (a debuglink naming itself): nothing more. */
	if (fstat(fd, &st) != 0 || (st.st_dev == main_st.st_dev &&
				    st.st_ino == main_st.st_ino) ||
	    !(*out = strdup(local))) {
		close(fd);
		return -1;
	}
	return fd;
}

int pyx_symbolizer_new(struct pyx_target *tgt, struct pyx_symbolizer **out)
{
	struct pyx_symbolizer *sy;

	*out = NULL;
	sy = calloc(1, sizeof(*sy));
	if (!sy)
		return pyx_err_set(PYX_E_NOMEM, "out of memory");
	sy->files.tgt = tgt;
	sy->cb.find_elf = pyx_dwfl_find_elf;
	sy->cb.find_debuginfo = find_debuginfo;
	sy->dwfl = dwfl_begin(&sy->cb);
	if (!sy->dwfl) {
		free(sy);
		return pyx_err_set(PYX_E_INTERNAL, "libdwfl: %s",
				   dwfl_errmsg(-1));
	}
	pyx_dwfl_report_maps(sy->dwfl, &sy->files);
	*out = sy;
	return 0;
}

void pyx_symbolizer_free(struct pyx_symbolizer *sy)
{
	if (!sy)
		return;
	dwfl_end(sy->dwfl);
	pyx_dwfl_files_release(&sy->files);
	for (size_t i = 0; i < sy->npool; i++)
		pyx_native_frame_release(&sy->pool[i]);
	free(sy->pool);
	free(sy->tab);
	free(sy);
}

/* Append a frame; the strings are copied.  -PYX_E_NOMEM. */
static int push(struct pyx_native_frame **v, size_t *n, size_t *cap,
		pyx_addr_t address, const char *function, const char *library,
		const char *file, int line, bool inlined)
{
	struct pyx_native_frame *f;

	if (*n == *cap) {
		size_t ncap = *cap ? *cap * 2 : 32;
		struct pyx_native_frame *nv = realloc(*v, ncap * sizeof(*nv));

		if (!nv)
			return -PYX_E_NOMEM;
		*v = nv;
		*cap = ncap;
	}
	f = &(*v)[*n];
	memset(f, 0, sizeof(*f));
	f->address = address;
	f->line = line > 0 ? line : 0;
	f->inlined = inlined;
	if ((function && !(f->function = strdup(function))) ||
	    (library && !(f->library = strdup(library))) ||
	    (file && !(f->file = strdup(file)))) {
		pyx_native_frame_release(f);
		return -PYX_E_NOMEM;
	}
	(*n)++;
	return 0;
}

static bool is_function_scope(Dwarf_Die *die)
{
	int tag = dwarf_tag(die);

	return tag == DW_TAG_subprogram || tag == DW_TAG_inlined_subroutine ||
	       tag == DW_TAG_entry_point;
}

#define MAX_SCOPES 64

/* The scopes holding pc (a CU-relative address), innermost first, into
 * out: one walk down the physical nesting, into the children of just the
 * scope holding pc at each level.  (dwarf_getscopes walks the CU, and past
 * an inlined instance goes on in its abstract definition, so the callers
 * would take dwarf_getscopes_die: a second walk.)  Returns how many;
 * 0 if pc is in no function here. */
static int scopes_at(Dwarf_Die *cu, Dwarf_Addr pc, Dwarf_Die *out)
{
	Dwarf_Die chain[MAX_SCOPES], cur = *cu, child;
	int n = 0;

	while (n < MAX_SCOPES && dwarf_child(&cur, &child) == 0) {
		int found = 0;

		do {
			int tag = dwarf_tag(&child);

			if ((tag == DW_TAG_subprogram ||
			     tag == DW_TAG_inlined_subroutine ||
			     tag == DW_TAG_lexical_block ||
			     tag == DW_TAG_entry_point) &&
			    dwarf_haspc(&child, pc) > 0) {
				found = 1;
				break;
			}
		} while (dwarf_siblingof(&child, &child) == 0);
		if (!found)
			break;
		chain[n++] = cur = child;
	}
	for (int i = 0; i < n; i++)
		out[i] = chain[n - 1 - i];
	return n;
}

/* Resolve one pc into the pool: inlined calls first (each at the line
 * where the next inner one was called from), then the real function. */
static int resolve(struct pyx_symbolizer *sy, const struct pyx_unwind_frame *raw)
{
	/* A return address is after the call: look up the call itself. */
	Dwarf_Addr a = raw->precise ? raw->pc : raw->pc - 1, bias;
	Dwfl_Module *mod = dwfl_addrmodule(sy->dwfl, a);
	const char *library = NULL, *symname = NULL, *file = NULL;
	Dwarf_Die *cu, scopes[MAX_SCOPES];
	Dwarf_Files *files = NULL;
	Dwfl_Line *ln;
	GElf_Off off;
	GElf_Sym sym;
	int line = 0, ns = 0, rc = 0;
	bool pushed = false;

	if (!mod)
		return push(&sy->pool, &sy->npool, &sy->poolcap, raw->pc, NULL,
			    NULL, NULL, 0, false);
	library = dwfl_module_info(mod, NULL, NULL, NULL, NULL, NULL, NULL,
				   NULL);
	symname = dwfl_module_addrinfo(mod, a, &off, &sym, NULL, NULL, NULL);
	if ((ln = dwfl_module_getsrc(mod, a)))
		file = dwfl_lineinfo(ln, NULL, &line, NULL, NULL, NULL);
	/* The physical nesting of the innermost scope: inlined instances
	 * up to the function they are inlined in. */
	if ((cu = dwfl_module_addrdie(mod, a, &bias)) &&
	    (ns = scopes_at(cu, a - bias, scopes)) > 0)
		dwarf_getsrcfiles(cu, &files, NULL);
	for (int i = 0; i < ns && !rc; i++) {
		Dwarf_Die *d = &scopes[i];
		Dwarf_Attribute attr;
		Dwarf_Word v;
		const char *name;

		if (!is_function_scope(d))
			continue;
		name = dwarf_diename(d);
		if (dwarf_tag(d) != DW_TAG_inlined_subroutine) {
			rc = push(&sy->pool, &sy->npool, &sy->poolcap, raw->pc,
				  name ? name : symname, library, file, line,
				  false);
			pushed = true;
			break;
		}
		rc = push(&sy->pool, &sy->npool, &sy->poolcap, raw->pc, name,
			  library, file, line, true);
		file = NULL;
		line = 0;
		if (files && dwarf_formudata(dwarf_attr(d, DW_AT_call_file,
							&attr), &v) == 0)
			file = dwarf_filesrc(files, v, NULL, NULL);
		if (dwarf_formudata(dwarf_attr(d, DW_AT_call_line, &attr),
				    &v) == 0)
			line = (int)v;
	}
	/* No DWARF function around the pc: the ELF symbol. */
	if (!rc && !pushed)
		rc = push(&sy->pool, &sy->npool, &sy->poolcap, raw->pc, symname,
			  library, file, line, false);
	return rc;
}

int pyx_symbolizer_preload(struct pyx_symbolizer *sy, pyx_addr_t pc)
{
	Dwfl_Module *mod = dwfl_addrmodule(sy->dwfl, pc);
	Dwarf_Addr bias;

	if (!mod)
		return pyx_err_set(PYX_E_NOT_SUPPORTED, "no file mapped at "
				   PYX_PRIaddr, pc);
	dwfl_module_getsymtab(mod);
	dwfl_module_addrdie(mod, pc, &bias); /* DWARF, and its CU index */
	return 0;
}

static size_t slot_of(const struct pyx_symbolizer *sy, pyx_addr_t pc,
		      bool precise)
{
	uint64_t h = (pc ^ precise) * 0x9e3779b97f4a7c15ull;
	size_t i = (size_t)(h >> 32) & (sy->tabcap - 1);

	while (sy->tab[i].used &&
	       (sy->tab[i].pc != pc || sy->tab[i].precise != precise))
		i = (i + 1) & (sy->tabcap - 1);
	return i;
}

static int grow_tab(struct pyx_symbolizer *sy)
{
	struct sym_entry *old = sy->tab;
	size_t oldcap = sy->tabcap;

	sy->tabcap = oldcap ? oldcap * 2 : 256;
	sy->tab = calloc(sy->tabcap, sizeof(*sy->tab));
	if (!sy->tab) {
		sy->tab = old;
		sy->tabcap = oldcap;
		return -PYX_E_NOMEM;
	}
	for (size_t i = 0; i < oldcap; i++)
		if (old[i].used)
			sy->tab[slot_of(sy, old[i].pc, old[i].precise)] = old[i];
	free(old);
	return 0;
}

int pyx_symbolize(struct pyx_symbolizer *sy, const struct pyx_unwind_frame *raw,
		  struct pyx_native_frame **frames, size_t *n, size_t *cap)
{
	struct sym_entry *e;
	int rc;

	if (!sy)
		return push(frames, n, cap, raw->pc, NULL, NULL, NULL, 0, false);
	if (2 * (sy->tabused + 1) > sy->tabcap && (rc = grow_tab(sy)))
		return rc;
	e = &sy->tab[slot_of(sy, raw->pc, raw->precise)];
	if (!e->used) {
		size_t first = sy->npool;

		if ((rc = resolve(sy, raw)))
			return rc;
		*e = (struct sym_entry){ raw->pc, raw->precise, true, first,
					 sy->npool - first };
		sy->tabused++;
	}
	for (size_t i = e->first; i < e->first + e->n; i++) {
		const struct pyx_native_frame *f = &sy->pool[i];

		if ((rc = push(frames, n, cap, f->address, f->function,
			       f->library, f->file, f->line, f->inlined)))
			return rc;
	}
	return 0;
}

/* ---- the merge --------------------------------------------------------- */

bool pyx_native_is_eval(const char *function)
{
	static const char eval[] = "_PyEval_EvalFrameDefault";
	size_t n = sizeof(eval) - 1;

	/* gcc's split-off parts: _PyEval_EvalFrameDefault.cold */
	return function && strncmp(function, eval, n) == 0 &&
	       (function[n] == '\0' || function[n] == '.');
}

/* Append "; why" (or "why") to *s; best effort. */
static void note(char **s, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void note(char **s, const char *fmt, ...)
{
	char buf[512], *n;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (!*s) {
		*s = strdup(buf);
		return;
	}
	if ((n = malloc(strlen(*s) + strlen(buf) + 3))) {
		sprintf(n, "%s; %s", *s, buf);
		free(*s);
		*s = n;
	}
}

int pyx_native_merge(struct pyx_thread *t, bool one_per_eval)
{
	size_t py = 0, evals = 0, runs = 0;

	free(t->merged);
	t->nmerged = 0;
	t->merged = malloc((t->nnative + t->nframes + 1) * sizeof(*t->merged));
	if (!t->merged)
		return -PYX_E_NOMEM;
	for (size_t i = 0; i < t->nnative; i++) {
		if (t->native[i].eval)
			evals++;
		if (!t->native[i].eval || py == t->nframes) {
			t->merged[t->nmerged++] =
				(struct pyx_stack_entry){ true, i };
			continue;
		}
		/* Innermost first: the eval loop's frame gives way to the
		 * Python frames from here to the one it was entered with. */
		while (py < t->nframes) {
			bool last = one_per_eval || t->frames[py].entry;

			t->merged[t->nmerged++] =
				(struct pyx_stack_entry){ false, py++ };
			if (last)
				break;
		}
	}
	for (size_t j = 0; j < t->nframes; j++)
		if (one_per_eval || t->frames[j].entry || j + 1 == t->nframes)
			runs++;
	/* Never drop a Python frame: those not paired go last. */
	for (; py < t->nframes; py++)
		t->merged[t->nmerged++] = (struct pyx_stack_entry){ false, py };
	if (evals != runs && t->nnative)
		note(&t->native_error, "%zu evaluation-loop frame%s for %zu "
		     "run%s of Python frames: %s", evals, evals == 1 ? "" : "s",
		     runs, runs == 1 ? "" : "s",
		     evals < runs ? "Python frames not paired are listed last"
				  : "some evaluation-loop frames are shown "
				    "as native frames");
	return 0;
}

/* ---- the stacks glue --------------------------------------------------- */

struct raw_stack {
	struct pyx_unwind_frame *f;
	size_t n;
	char *error;
	bool done;
};

/* libc is in every stack, and its debug info is a separate file, often
 * compressed: loading it is most of the symbolization's time.  A thread
 * loads it into a symbolizer of its own while the other files' lookups
 * are done.  Not during the stop: the target's threads need the CPUs to
 * stop and the pause would grow. */
struct pyx_native {
	struct pyx_python *py;
	struct pyx_unwinder *unw;
	struct raw_stack *raw; /* by index of the thread in s->threads */
	size_t nraw;
	struct pyx_symbolizer *sy;      /* every file but libc */
	struct pyx_symbolizer *sy_libc; /* NULL: libc is in sy */
	char *libc_path;
	pyx_addr_t libc_pc;
	pthread_t loader;
	bool loading;
};

static bool is_libc(const char *path)
{
	const char *b = strrchr(path, '/');

	b = b ? b + 1 : path;
	return strncmp(b, "libc.so", 7) == 0 || strncmp(b, "libc-", 5) == 0;
}

/* Every thread's stack runs through libc and the interpreter: load their
 * unwind tables before the stop rather than during it. */
static void warm(struct pyx_native *n)
{
	const struct pyx_map *maps;
	size_t nmaps;

	maps = pyx_target_maps(n->py->tgt, &nmaps);
	for (size_t i = 0; i < nmaps; i++) {
		if (!maps[i].x)
			continue;
		if (strcmp(maps[i].path, n->py->info.binary) == 0)
			pyx_unwinder_warm(n->unw, maps[i].start);
		if (is_libc(maps[i].path) && !n->libc_path) {
			pyx_unwinder_warm(n->unw, maps[i].start);
			n->libc_path = strdup(maps[i].path);
			n->libc_pc = maps[i].start;
		}
	}
}

static void *load_libc(void *arg)
{
	struct pyx_native *n = arg;

	pyx_symbolizer_preload(n->sy_libc, n->libc_pc);
	return NULL;
}

/* Symbolizers are set up before the stop. */
static int new_symbolizers(struct pyx_native *n)
{
	int rc;

	if ((rc = pyx_symbolizer_new(n->py->tgt, &n->sy)))
		return rc;
	if (!n->libc_path)
		return 0;
	return pyx_symbolizer_new(n->py->tgt, &n->sy_libc);
}

static void start_libc(struct pyx_native *n)
{
	/* Without a thread, the first lookup loads it: slower, not wrong. */
	if (n->sy_libc)
		n->loading = pthread_create(&n->loader, NULL, load_libc, n) == 0;
}

static void wait_libc(struct pyx_native *n)
{
	if (n->loading)
		pthread_join(n->loader, NULL);
	n->loading = false;
}

int pyx_native_new(struct pyx_python *py, struct pyx_native **out)
{
	struct pyx_native *n;
	int rc;

	*out = NULL;
	/* Threads and libraries created since the process was opened: their
	 * stacks and files must be in the maps the memory reader checks and
	 * the symbolizer reports. */
	if ((rc = pyx_target_refresh_maps(py->tgt)))
		return rc;
	if (!(n = calloc(1, sizeof(*n))))
		return pyx_err_set(PYX_E_NOMEM, "out of memory");
	n->py = py;
	if ((rc = pyx_unwinder_new(py->tgt, &n->unw))) {
		free(n);
		return rc;
	}
	warm(n);
	/* A symbolizer that cannot be set up leaves addresses unnamed:
	 * pyx_native_finish says so per thread. */
	if (new_symbolizers(n) == -PYX_E_NOMEM) {
		pyx_native_free(n);
		return -PYX_E_NOMEM;
	}
	pyx_err_clear();
	*out = n;
	return 0;
}

void pyx_native_free(struct pyx_native *n)
{
	if (!n)
		return;
	for (size_t i = 0; i < n->nraw; i++) {
		free(n->raw[i].f);
		free(n->raw[i].error);
	}
	free(n->raw);
	wait_libc(n);
	pyx_symbolizer_free(n->sy_libc);
	pyx_symbolizer_free(n->sy);
	pyx_unwinder_free(n->unw);
	free(n->libc_path);
	free(n);
}

void pyx_native_thread_release(struct pyx_thread *t)
{
	for (size_t i = 0; i < t->nnative; i++)
		pyx_native_frame_release(&t->native[i]);
	free(t->native);
	free(t->merged);
	free(t->native_error);
	t->native = NULL;
	t->merged = NULL;
	t->native_error = NULL;
	t->nnative = t->nmerged = 0;
}

/* A stopped thread without a Python thread state: a thread of its own,
 * named by its comm. */
static int add_native_thread(struct pyx_native *n, struct pyx_stacks *s,
			     pid_t tid)
{
	struct pyx_thread *nt, *t;
	pyx_addr_t tls = 0;
	char comm[64];

	nt = realloc(s->threads, (s->nthreads + 1) * sizeof(*nt));
	if (!nt)
		return -PYX_E_NOMEM;
	s->threads = nt;
	t = &s->threads[s->nthreads++];
	memset(t, 0, sizeof(*t));
	t->native_id = tid;
	t->ns_native_id = -1; /* resolved after the stop */
	t->interp_id = -1;
	if (pyx_target_thread_tls(n->py->tgt, tid, &tls) == 0)
		t->thread_id = tls;
	if (pyx_target_thread_comm(n->py->tgt, tid, comm, sizeof(comm)) == 0 &&
	    !(t->name = strdup(comm)))
		return -PYX_E_NOMEM;
	pyx_err_clear();
	return 0;
}

static int grow_raw(struct pyx_native *n, size_t want)
{
	struct raw_stack *r;

	if (want <= n->nraw)
		return 0;
	if (!(r = realloc(n->raw, want * sizeof(*r))))
		return -PYX_E_NOMEM;
	memset(r + n->nraw, 0, (want - n->nraw) * sizeof(*r));
	n->raw = r;
	n->nraw = want;
	return 0;
}

/* Python's threads by kernel id, so that each stopped TID is found in
 * log time: a process may have thousands. */
struct tid_index {
	int64_t tid;
	size_t i;
};

static int cmp_tid(const void *a, const void *b)
{
	const struct tid_index *x = a, *y = b;

	if (x->tid != y->tid)
		return x->tid < y->tid ? -1 : 1;
	return x->i < y->i ? -1 : x->i > y->i;
}

static int unwind_one(struct pyx_native *n, struct raw_stack *r, pid_t tid)
{
	struct pyx_unwind_frame *f;

	r->done = true;
	if (!(r->f = malloc(PYX_UNWIND_MAX_FRAMES * sizeof(*r->f))))
		return -PYX_E_NOMEM;
	/* A thread that cannot be unwound (one that is gone, say) keeps the
	 * frames read so far and says why. */
	if (pyx_unwind_thread(n->unw, tid, r->f, PYX_UNWIND_MAX_FRAMES, &r->n) &&
	    !(r->error = strdup(pyx_err_detail())))
		return -PYX_E_NOMEM;
	/* Keep what was used: 16 KiB a thread adds up. */
	if (r->n && (f = realloc(r->f, r->n * sizeof(*f))))
		r->f = f;
	return 0;
}

int pyx_native_unwind(struct pyx_native *n, struct pyx_stacks *s)
{
	struct tid_index *ix, key = { 0, 0 };
	const pid_t *tids;
	pid_t *copy = NULL;
	size_t ntids, nix = 0, npy = s->nthreads;
	int rc = 0;

	tids = pyx_target_threads(n->py->tgt, &ntids);
	if (!tids)
		return -PYX_E_NOMEM; /* stopped: its only failure */
	ix = malloc((npy + 1) * sizeof(*ix));
	copy = malloc((ntids + 1) * sizeof(*copy));
	if (!ix || !copy || (rc = grow_raw(n, npy))) {
		free(ix);
		free(copy);
		return -PYX_E_NOMEM;
	}
	memcpy(copy, tids, ntids * sizeof(*copy));
	for (size_t i = 0; i < npy; i++)
		if (s->threads[i].native_id >= 0)
			ix[nix++] = (struct tid_index){ s->threads[i].native_id, i };
	qsort(ix, nix, sizeof(*ix), cmp_tid);
	for (size_t k = 0; k < ntids && !rc; k++) {
		struct tid_index *hit;
		size_t lo = 0, hi = nix;

		/* The first entry of this TID (two thread states may share
		 * one: the native stack goes with the first). */
		key.tid = copy[k];
		while (lo < hi) {
			size_t mid = lo + (hi - lo) / 2;

			if (ix[mid].tid < key.tid)
				lo = mid + 1;
			else
				hi = mid;
		}
		hit = lo < nix && ix[lo].tid == key.tid ? &ix[lo] : NULL;
		if (hit) {
			rc = unwind_one(n, &n->raw[hit->i], copy[k]);
			continue;
		}
		if (!(rc = add_native_thread(n, s, copy[k])) &&
		    !(rc = grow_raw(n, s->nthreads)))
			rc = unwind_one(n, &n->raw[s->nthreads - 1], copy[k]);
	}
	free(ix);
	free(copy);
	return rc;
}

static struct pyx_symbolizer *symbolizer_for(struct pyx_native *n,
					     pyx_addr_t pc)
{
	const struct pyx_map *m;

	if (n->sy_libc && (m = pyx_target_find_map(n->py->tgt, pc)) &&
	    strcmp(m->path, n->libc_path) == 0)
		return n->sy_libc;
	return n->sy;
}

int pyx_native_finish(struct pyx_native *n, struct pyx_stacks *s)
{
	struct pyx_native_frame *scratch = NULL;
	size_t nscratch = 0, cap = 0;
	int rc = 0;

	/* Everything but libc first, while its debug info is loading. */
	start_libc(n);
	for (size_t i = 0; i < n->nraw && !rc; i++)
		for (size_t k = 0; k < n->raw[i].n && !rc; k++)
			if (n->sy && symbolizer_for(n, n->raw[i].f[k].pc) == n->sy)
				rc = pyx_symbolize(n->sy, &n->raw[i].f[k],
						   &scratch, &nscratch, &cap);
	for (size_t i = 0; i < nscratch; i++)
		pyx_native_frame_release(&scratch[i]);
	free(scratch);
	wait_libc(n);
	for (size_t i = 0; i < s->nthreads && !rc; i++) {
		struct pyx_thread *t = &s->threads[i];
		struct raw_stack *r = i < n->nraw ? &n->raw[i] : NULL;

		cap = 0;
		for (size_t k = 0; r && k < r->n && !rc; k++)
			rc = pyx_symbolize(symbolizer_for(n, r->f[k].pc),
					   &r->f[k], &t->native, &t->nnative,
					   &cap);
		if (rc)
			break;
		/* The eval loop is _PyEval_EvalFrameDefault and its .cold
		 * part: by name, or by address where only the build's debug
		 * file names it (a stripped build with its own table). */
		for (size_t k = 0; k < t->nnative; k++)
			t->native[k].eval =
				pyx_native_is_eval(t->native[k].function) ||
				(!t->native[k].function &&
				 pyx_python_eval_pc(n->py,
						    t->native[k].address));
		if (t->native_id < 0)
			note(&t->native_error, "no native frames: the "
			     "thread's kernel id is unknown");
		else if (!r || !r->done)
			note(&t->native_error, "no native frames: thread %lld "
			     "was not among the stopped threads, or its native "
			     "stack is shown with another thread state",
			     (long long)t->native_id);
		else if (r->error)
			note(&t->native_error, "%s", r->error);
		if (!n->sy)
			note(&t->native_error, "no symbols: libdwfl could not "
			     "be set up");
		rc = pyx_native_merge(t, !n->py->k.interp_frames);
	}
	return rc;
}
