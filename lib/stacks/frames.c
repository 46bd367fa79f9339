/* Walking a thread's Python frames: PyFrameObject chains (3.8-3.10) and
 * _PyInterpreterFrame chains (3.11+), with line numbers. */
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
	int firsttraceable; /* code units; 3.11+ */
	uint8_t *table;
	size_t table_len;
	int code_len;       /* bytes of bytecode, for line ranges */
	bool ok;
};

#define CODE_CACHE_SLOTS 1024 /* power of two */

struct pyx_code_cache {
	struct code_info slot[CODE_CACHE_SLOTS];
};

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

static int load_code(struct pyx_python *py, pyx_addr_t code,
		     struct code_info *ci)
{
	uint64_t filename, name, qualname = 0, table, first, ft = 0;
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
	if (pyx_layout_has(&py->layout, PYX_L_CO_FIRSTTRACEABLE) &&
	    (err = pyx_read_field_n(py, code, PYX_L_CO_FIRSTTRACEABLE, 4, &ft)))
		return err;
	ci->firstlineno = (int)(int32_t)first;
	ci->firsttraceable = (int)(int32_t)ft;
	if (!(ci->name = read_str_dup(py, name, &err)) ||
	    !(ci->file = read_str_dup(py, filename, &err)))
		return err ? err : -PYX_E_NOMEM;
	ci->function = qualname ? read_str_dup(py, qualname, &err)
				: strdup(ci->name);
	if (!ci->function)
		return err ? err : -PYX_E_NOMEM;
	/* A table of 16 MiB would be a 8M-instruction function: garbage. */
	if ((err = pyx_bytes_read(py, table, 16u << 20, &ci->table,
				  &ci->table_len)))
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
	err = load_code(py, code, ci);
	if (err) {
		code_info_release(ci);
		return err;
	}
	memcpy(ci->fingerprint, fp, sizeof(fp));
	*out = ci;
	return 0;
}

static enum pyx_linetable_kind table_kind(const struct pyx_python *py)
{
	int v = pyx_py_ver(py);

	return v <= 309 ? PYX_LT_LNOTAB : v == 310 ? PYX_LT_LINETABLE
						   : PYX_LT_LOCATIONS;
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

/* f_lasti counts bytes (3.8, 3.9) or code units (3.10); a value from the
 * target that would overflow an int is no address at all. */
static int addr_of_lasti(int ver, int32_t lasti)
{
	int64_t a = ver == 310 ? (int64_t)lasti * 2 : lasti;

	return a < INT32_MIN || a > INT32_MAX ? -1 : (int)a;
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

/* 3.8-3.10: one PyFrameObject per Python call. */
static int walk_frame_objects(struct pyx_python *py, struct pyx_code_cache *cc,
			      pyx_addr_t tstate, size_t max, struct pyx_thread *t,
			      size_t *cap)
{
	uint64_t f, code, lasti, lineno, trace;
	int v = pyx_py_ver(py);
	int err;

	struct pyx_chain_check cyc = PYX_CHAIN_CHECK_INIT;

	if ((err = pyx_read_field(py, tstate, PYX_L_TS_FRAME, &f)))
		return err;
	for (size_t depth = 0; f && depth < max; depth++) {
		if (pyx_chain_cycles(&cyc, f))
			return pyx_err_set(PYX_E_BAD_MEMORY, "the frame chain "
					   "loops at " PYX_PRIaddr, f);
		struct code_info *ci;
		int line;

		if ((err = pyx_read_field(py, f, PYX_L_FO_CODE, &code)) ||
		    (err = pyx_read_field_n(py, f, PYX_L_FO_LASTI, 4, &lasti)) ||
		    (err = pyx_read_field_n(py, f, PYX_L_FO_LINENO, 4, &lineno)) ||
		    (err = pyx_read_field(py, f, PYX_L_FO_TRACE, &trace)) ||
		    (err = get_code(py, cc, code, &ci)))
			return err;
		/* PyFrame_GetLineNumber: f_lineno is authoritative only while
		 * tracing (3.8/3.9) or when set (3.10). */
		if (v <= 309 && trace)
			line = (int)(int32_t)lineno;
		else if (v == 310 && (int32_t)lineno != 0)
			line = (int)(int32_t)lineno;
		else
			line = pyx_linetable_addr2line(table_kind(py), ci->table,
					ci->table_len, ci->firstlineno,
					addr_of_lasti(v, (int32_t)lasti));
		if ((err = push_frame(t, cap, ci, f, line, true)))
			return err;
		if ((err = pyx_read_field(py, f, PYX_L_FO_BACK, &f)))
			return err;
	}
	return f ? cut_short(t, max) : 0;
}

#define OWNED_BY_GENERATOR 1
#define OWNED_BY_CSTACK 3 /* 3.12+: the shim frame of a C->Python call */

/* 3.11+: frames live in per-thread data stacks, several per C call. */
static int walk_interp_frames(struct pyx_python *py, struct pyx_code_cache *cc,
			      pyx_addr_t tstate, size_t max, struct pyx_thread *t,
			      size_t *cap)
{
	struct pyx_chain_check cyc = PYX_CHAIN_CHECK_INIT;
	uint64_t f, code, instr, owner, is_entry = 0;
	int err;

	if (pyx_layout_has(&py->layout, PYX_L_TS_CURRENT_FRAME)) {
		err = pyx_read_field(py, tstate, PYX_L_TS_CURRENT_FRAME, &f);
	} else {
		uint64_t cframe;

		err = pyx_read_field(py, tstate, PYX_L_TS_CFRAME, &cframe);
		if (!err && !cframe)
			return 0;
		if (!err)
			err = pyx_read_field(py, cframe, PYX_L_CFRAME_CURRENT_FRAME, &f);
	}
	if (err)
		return err;
	for (size_t depth = 0; f && depth < max; depth++) {
		struct code_info *ci;
		pyx_addr_t prev_f = f, first;

		if (pyx_chain_cycles(&cyc, f))
			return pyx_err_set(PYX_E_BAD_MEMORY, "the frame chain "
					   "loops at " PYX_PRIaddr, f);
		int line, lasti;

		if ((err = pyx_read_field(py, f, PYX_L_IF_CODE, &code)) ||
		    (err = pyx_read_field(py, f, PYX_L_IF_INSTR, &instr)) ||
		    (err = pyx_read_field_n(py, f, PYX_L_IF_OWNER, 1, &owner)))
			return err;
		if (pyx_layout_has(&py->layout, PYX_L_IF_IS_ENTRY) &&
		    (err = pyx_read_field_n(py, f, PYX_L_IF_IS_ENTRY, 1, &is_entry)))
			return err;
		if ((err = pyx_read_field(py, f, PYX_L_IF_PREVIOUS, &f)))
			return err;
		if (py->k.shim_frames && owner == OWNED_BY_CSTACK) {
			/* The frame below a shim was entered from C. */
			if (t->nframes)
				t->frames[t->nframes - 1].entry = true;
			continue;
		}
		if (!code || !pyx_obj_is(py, code, py->types.code, 0))
			continue; /* not Python code (3.13 executables) */
		if ((err = get_code(py, cc, code, &ci)))
			return err;
		first = code + (uint64_t)pyx_off(py, PYX_L_CO_CODE_ADAPTIVE);
		/* Incomplete frames are being set up or torn down: CPython
		 * itself hides them (_PyFrame_IsIncomplete). */
		if (owner != OWNED_BY_GENERATOR &&
		    instr < first + 2 * (uint64_t)ci->firsttraceable) {
			/* Hidden, but it may end a C call's run of frames
			 * (3.11 is_entry): the frame it called ends it now. */
			if (is_entry && t->nframes && !t->frames[t->nframes - 1].entry)
				t->frames[t->nframes - 1].entry = true;
			continue;
		}
		lasti = instr >= first && instr - first < (1u << 30)
			? (int)((instr - first) / 2) : -1;
		line = pyx_linetable_addr2line(PYX_LT_LOCATIONS, ci->table,
					       ci->table_len, ci->firstlineno,
					       lasti < 0 ? -1 : lasti * 2);
		if ((err = push_frame(t, cap, ci, prev_f, line, is_entry != 0)))
			return err;
	}
	return f ? cut_short(t, max) : 0;
}

int pyx_frames_walk(struct pyx_python *py, struct pyx_code_cache *cc,
		    pyx_addr_t tstate, size_t max_depth, struct pyx_thread *t)
{
	size_t cap = 0;
	int err;

	err = py->k.interp_frames
		? walk_interp_frames(py, cc, tstate, max_depth, t, &cap)
		: walk_frame_objects(py, cc, tstate, max_depth, t, &cap);
	if (err == -PYX_E_EXITED || err == -PYX_E_NOMEM)
		return err;
	if (err) {
		/* Keep what was read: a partial stack is still an answer. */
		t->error = strdup(pyx_err_detail()[0] ? pyx_err_detail()
						       : pyx_strerror(err));
	}
	return 0;
}
