/* Walking a thread's Python frames, with line numbers.  What a frame is in
 * each version (PyFrameObject, _PyInterpreterFrame, shim frames...) is the
 * ABI layer's business (lib/abi/abi.h): this walker only follows the
 * chain, bounded and cycle-checked, and decodes the code objects. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "object.h"
#include "pyxray/linetable.h"
#include "walk.h"

/* What a frame needs from its code object, read once per code object. */
struct code_info {
	pyx_addr_t addr;
	uint64_t fingerprint[4]; /* name, filename, line table, first line */
	char *function, *name, *file;
	int firstlineno;
	uint8_t *table;
	size_t table_len;
	bool table_skipped; /* too big for the code, or over the budget */
	bool ok;
};

#define CODE_CACHE_SLOTS 1024 /* power of two */
/* The most a line table may hold per byte of bytecode.  A 3.11+ location
 * entry covers 1 to 8 code units (2 bytes each) in at most ~20 bytes; a
 * 3.8-3.10 table has 2 bytes per (address, line) step, more only for line
 * jumps of hundreds of lines: LINETABLE_SLACK covers those in small code. */
#define LINETABLE_PER_CODE_BYTE 16u
#define LINETABLE_SLACK 256u
#define LINETABLE_MAX (16u << 20)
/* Line tables copied in one walk, in all: past this, frames get line 0.
 * Many code objects may name one huge table (the target chooses). */
#define LINETABLE_BUDGET (64u << 20)

struct pyx_code_cache {
	struct code_info slot[CODE_CACHE_SLOTS];
	size_t table_bytes; /* copied so far, against LINETABLE_BUDGET */
	size_t tables_skipped;
	bool locals;        /* read each frame's locals as it is walked */
};

void pyx_code_cache_want_locals(struct pyx_code_cache *c, bool on)
{
	c->locals = on;
}

int pyx_code_cache_new(struct pyx_code_cache **out)
{
	*out = calloc(1, sizeof(**out));
	return *out ? 0 : -PYX_E_NOMEM;
}

static void code_info_release(struct code_info *ci)
{
	free(ci->function);
	free(ci->name);
	free(ci->file);
	free(ci->table);
	memset(ci, 0, sizeof(*ci));
}

void pyx_code_cache_free(struct pyx_code_cache *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < CODE_CACHE_SLOTS; i++)
		code_info_release(&c->slot[i]);
	free(c);
}

static char *read_str_dup(struct pyx_python *py, pyx_addr_t obj, int *err)
{
	char buf[4096];

	*err = pyx_str_read(py, obj, buf, sizeof(buf));
	return *err ? NULL : strdup(buf);
}

/* How many bytes of bytecode the code object has, for the bound on its
 * line table: 3.11+ keep it inline (ob_size counts 2-byte code units),
 * 3.8-3.10 in a bytes object (co_code).  0 if it cannot be read. */
static uint64_t code_bytes(struct pyx_python *py, pyx_addr_t code)
{
	uint64_t n = 0, bytes;

	if (pyx_layout_has(&py->layout, PYX_L_CO_CODE_ADAPTIVE)) {
		if (pyx_read_field(py, code, PYX_L_OB_SIZE, &n))
			return 0;
		return n > LINETABLE_MAX ? LINETABLE_MAX : n * 2;
	}
	if (!pyx_layout_has(&py->layout, PYX_L_CO_CODE) ||
	    pyx_read_field(py, code, PYX_L_CO_CODE, &bytes) ||
	    pyx_read_field(py, bytes, PYX_L_OB_SIZE, &n))
		return 0;
	return n > LINETABLE_MAX ? LINETABLE_MAX : n;
}

/* Copy the code object's line table if it is no bigger than its code can
 * need and the walk's budget allows; else leave it out (its frames get
 * line 0): a target can point any number of code objects at one huge
 * bytes object, and each copy would be made while it is stopped. */
static int load_table(struct pyx_python *py, struct pyx_code_cache *cc,
		      pyx_addr_t code, pyx_addr_t table, struct code_info *ci)
{
	uint64_t size, cap;
	int err;

	if ((err = pyx_read_field(py, table, PYX_L_OB_SIZE, &size)))
		return err;
	cap = LINETABLE_SLACK + LINETABLE_PER_CODE_BYTE * code_bytes(py, code);
	if (cap > LINETABLE_MAX)
		cap = LINETABLE_MAX;
	if (size > cap || size > LINETABLE_BUDGET - cc->table_bytes) {
		if (!cc->tables_skipped++)
			pyx_debug("line table of code " PYX_PRIaddr " skipped: "
				  "%" PRIu64 " bytes (its code allows %" PRIu64
				  ", %zu left of the walk's budget)", code, size,
				  cap, LINETABLE_BUDGET - cc->table_bytes);
		ci->table_skipped = true;
		return 0;
	}
	if ((err = pyx_bytes_read(py, table, (size_t)size, &ci->table,
				  &ci->table_len)))
		return err;
	cc->table_bytes += ci->table_len;
	return 0;
}

static int load_code(struct pyx_python *py, struct pyx_code_cache *cc,
		     pyx_addr_t code, struct code_info *ci)
{
	uint64_t filename, name, qualname = 0, table, first;
	int err;

	ci->addr = code;
	if (!pyx_obj_is(py, code, py->types.code, 0))
		return pyx_err_set(PYX_E_BAD_MEMORY, "object " PYX_PRIaddr
				   " is not a code object", code);
	if ((err = pyx_read_field(py, code, PYX_L_CO_FILENAME, &filename)) ||
	    (err = pyx_read_field(py, code, PYX_L_CO_NAME, &name)) ||
	    (err = pyx_read_field(py, code, PYX_L_CO_LINETABLE, &table)) ||
	    (err = pyx_read_field_n(py, code, PYX_L_CO_FIRSTLINENO, 4, &first)))
		return err;
	if (pyx_layout_has(&py->layout, PYX_L_CO_QUALNAME) &&
	    (err = pyx_read_field(py, code, PYX_L_CO_QUALNAME, &qualname)))
		return err;
	ci->firstlineno = (int)(int32_t)first;
	if (!(ci->name = read_str_dup(py, name, &err)) ||
	    !(ci->file = read_str_dup(py, filename, &err)))
		return err ? err : -PYX_E_NOMEM;
	ci->function = qualname ? read_str_dup(py, qualname, &err)
				: strdup(ci->name);
	if (!ci->function)
		return err ? err : -PYX_E_NOMEM;
	if ((err = load_table(py, cc, code, table, ci)))
		return err;
	ci->ok = true;
	return 0;
}

/* What identifies a code object's contents: a cached entry whose object
 * has been freed and its memory reused must not be believed. */
static int code_fingerprint(struct pyx_python *py, pyx_addr_t code,
			    uint64_t fp[4])
{
	int err;

	if ((err = pyx_read_field(py, code, PYX_L_CO_NAME, &fp[0])) ||
	    (err = pyx_read_field(py, code, PYX_L_CO_FILENAME, &fp[1])) ||
	    (err = pyx_read_field(py, code, PYX_L_CO_LINETABLE, &fp[2])) ||
	    (err = pyx_read_field_n(py, code, PYX_L_CO_FIRSTLINENO, 4, &fp[3])))
		return err;
	return 0;
}

static int get_code(struct pyx_python *py, struct pyx_code_cache *cc,
		    pyx_addr_t code, struct code_info **out)
{
	struct code_info *ci = &cc->slot[(code >> 4) & (CODE_CACHE_SLOTS - 1)];
	uint64_t fp[4];
	int err;

	if ((err = code_fingerprint(py, code, fp)))
		return err;
	if (ci->ok && ci->addr == code &&
	    memcmp(fp, ci->fingerprint, sizeof(fp)) == 0) {
		*out = ci;
		return 0;
	}
	code_info_release(ci);
	err = load_code(py, cc, code, ci);
	if (err) {
		code_info_release(ci);
		return err;
	}
	memcpy(ci->fingerprint, fp, sizeof(fp));
	*out = ci;
	return 0;
}

static int frame_line(struct pyx_python *py, const struct pyx_abi_frame *fr,
		      const struct code_info *ci)
{
	if (fr->has_line)
		return fr->line;
	if (ci->table_skipped)
		return 0; /* unknown: its line table was not read */
	return pyx_linetable_addr2line(pyx_abi_linetable(py), ci->table,
				       ci->table_len, ci->firstlineno,
				       fr->lasti);
}

int pyx_frame_describe(struct pyx_python *py, struct pyx_code_cache *cc,
		       pyx_addr_t frame, char **function, char **file,
		       int *line)
{
	struct pyx_abi_frame fr;
	struct code_info *ci;
	int err;

	*function = *file = NULL;
	*line = 0;
	if ((err = pyx_abi_step_frame(py, frame, &fr)))
		return err;
	if (fr.kind != PYX_FRAME_PYTHON)
		return pyx_err_set(PYX_E_BAD_MEMORY, "frame " PYX_PRIaddr
				   " runs no Python code", frame);
	if ((err = get_code(py, cc, fr.code, &ci)))
		return err;
	*line = frame_line(py, &fr, ci);
	*function = strdup(ci->function);
	*file = strdup(ci->file);
	if (!*function || !*file) {
		free(*function);
		free(*file);
		*function = *file = NULL;
		return -PYX_E_NOMEM;
	}
	return 0;
}

static int push_frame(struct pyx_thread *t, size_t *cap,
		      const struct code_info *ci, pyx_addr_t frame, int line,
		      bool entry)
{
	struct pyx_frame *f;

	if (t->nframes == *cap) {
		size_t ncap = *cap ? *cap * 2 : 16;
		struct pyx_frame *n = realloc(t->frames, ncap * sizeof(*n));

		if (!n)
			return -PYX_E_NOMEM;
		t->frames = n;
		*cap = ncap;
	}
	f = &t->frames[t->nframes];
	memset(f, 0, sizeof(*f));
	f->function = strdup(ci->function);
	f->name = strdup(ci->name);
	f->file = strdup(ci->file);
	if (!f->function || !f->name || !f->file) {
		free(f->function);
		free(f->name);
		free(f->file);
		return -PYX_E_NOMEM;
	}
	f->line = line;
	f->code = ci->addr;
	f->frame = frame;
	f->entry = entry;
	t->nframes++;
	return 0;
}

/* The chain goes on past the bound: say so, never cut silently. */
static int cut_short(struct pyx_thread *t, size_t max)
{
	char msg[96];

	snprintf(msg, sizeof(msg), "cut at %zu frames (--max-depth, or the "
		 "walk's frame budget); outer frames not shown", max);
	free(t->error);
	t->error = strdup(msg);
	return 0;
}

static int walk_chain(struct pyx_python *py, struct pyx_code_cache *cc,
		      pyx_addr_t tstate, size_t max, struct pyx_thread *t,
		      size_t *cap)
{
	struct pyx_chain_check cyc = PYX_CHAIN_CHECK_INIT;
	pyx_addr_t f;
	int err;

	if ((err = pyx_abi_first_frame(py, tstate, &f)))
		return err;
	for (size_t depth = 0; f && depth < max; depth++) {
		struct pyx_abi_frame fr;
		struct code_info *ci;
		int line;

		if (pyx_chain_cycles(&cyc, f))
			return pyx_err_set(PYX_E_BAD_MEMORY, "the frame chain "
					   "loops at " PYX_PRIaddr, f);
		if ((err = pyx_abi_step_frame(py, f, &fr)))
			return err;
		if (fr.kind != PYX_FRAME_PYTHON) {
			/* Not shown; it may say the frame before it was
			 * entered from C. */
			if (fr.entry && t->nframes)
				t->frames[t->nframes - 1].entry = true;
			f = fr.previous;
			continue;
		}
		if ((err = get_code(py, cc, fr.code, &ci)))
			return err;
		line = frame_line(py, &fr, ci);
		if ((err = push_frame(t, cap, ci, f, line, fr.entry)))
			return err;
		if (cc->locals &&
		    (err = pyx_frame_locals(py, &t->frames[t->nframes - 1])))
			return err;
		f = fr.previous;
	}
	return f ? cut_short(t, max) : 0;
}

int pyx_frames_walk(struct pyx_python *py, struct pyx_code_cache *cc,
		    pyx_addr_t tstate, size_t max_depth, struct pyx_thread *t)
{
	size_t cap = 0;
	int err;

	err = walk_chain(py, cc, tstate, max_depth, t, &cap);
	if (err == -PYX_E_EXITED || err == -PYX_E_NOMEM)
		return err;
	if (err) {
		/* Keep what was read: a partial stack is still an answer. */
		t->error = strdup(pyx_err_detail()[0] ? pyx_err_detail()
						       : pyx_strerror(err));
	}
	return 0;
}
