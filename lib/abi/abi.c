/* The ABI table: which family reads which CPython version, the operations
 * the families share, and the builds no family reads (free-threaded). */
#include <stdio.h>
#include <string.h>

#include "abi.h"
#include "field.h"

/* One row per supported minor version, oldest first.  A new release: its
 * row here (and its family file), then its layout table (docs/abi.md). */
static const struct pyx_abi *const abi_table[] = {
	&pyx_abi_3_8,  &pyx_abi_3_9,  &pyx_abi_3_10,
	&pyx_abi_3_11, &pyx_abi_3_12, &pyx_abi_3_13,
	&pyx_abi_3_14, &pyx_abi_3_15,
};

const struct pyx_abi *pyx_abi_for(int major, int minor)
{
	for (size_t i = 0; i < PYX_ARRAY_SIZE(abi_table); i++)
		if (abi_table[i]->major == major && abi_table[i]->minor == minor)
			return abi_table[i];
	return NULL;
}

void pyx_abi_range(int *oldest_minor, int *newest_minor)
{
	*oldest_minor = abi_table[0]->minor;
	*newest_minor = abi_table[PYX_ARRAY_SIZE(abi_table) - 1]->minor;
}

int pyx_abi_select(struct pyx_python *py)
{
	const struct pyx_abi *abi = pyx_abi_for(py->info.major, py->info.minor);

	if (!abi) {
		int lo, hi;

		pyx_abi_range(&lo, &hi);
		return pyx_err_set(PYX_E_UNSUPPORTED_VERSION, "Python %d.%d "
				   "(%s): pyxray reads 3.%d to 3.%d",
				   py->info.major, py->info.minor,
				   py->info.binary[0] ? py->info.binary : "?",
				   lo, hi);
	}
	py->abi = abi;
	py->k = abi->k;
	return 0;
}

/* ---- shared operations ------------------------------------------------ */

pyx_addr_t pyx_abi_untag_identity(uint64_t ref)
{
	return ref;
}

int pyx_abi_frame_position(struct pyx_python *py, pyx_addr_t code,
			   uint64_t instr, bool generator,
			   struct pyx_abi_frame *f)
{
	uint64_t ft = 0;
	pyx_addr_t first;
	int err;

	if (!pyx_layout_has(&py->layout, PYX_L_CO_CODE_ADAPTIVE))
		return pyx_err_set(PYX_E_LAYOUT, "layout has no "
				   "PyCodeObject.co_code_adaptive");
	/* _co_firsttraceable is not among 3.14+'s debug offsets: without it
	 * (a version newer than known, read through them alone) no frame
	 * is taken for incomplete. */
	if (pyx_layout_has(&py->layout, PYX_L_CO_FIRSTTRACEABLE) &&
	    (err = pyx_read_field_n(py, code, PYX_L_CO_FIRSTTRACEABLE, 4, &ft)))
		return err;
	first = code + (uint64_t)pyx_off(py, PYX_L_CO_CODE_ADAPTIVE);
	if (!generator && instr < first + 2 * (uint64_t)(int64_t)(int32_t)ft) {
		f->kind = PYX_FRAME_INCOMPLETE;
		return 0;
	}
	f->kind = PYX_FRAME_PYTHON;
	if (instr >= first && instr - first < (1u << 30))
		f->lasti = (int)((instr - first) / 2) * 2;
	return 0;
}

/* GIL builds up to 3.13: ob_refcnt is a Py_ssize_t at 0 (its low 32 bits
 * negative as an int32 mark an immortal, 3.12+), ob_type follows. */
int pyx_abi_header_decode_gil(const struct pyx_python *py, const uint64_t *w,
			      size_t nwords, struct pyx_obj_header *h)
{
	int32_t off = py->layout.v[PYX_L_OB_TYPE];

	memset(h, 0, sizeof(*h));
	if (off == PYX_OFF_NONE || off < 8 || (off & 7) ||
	    (size_t)off / 8 >= nwords)
		return pyx_err_set(PYX_E_LAYOUT, "no PyObject.ob_type in the "
				   "layout, or past the header");
	h->refcnt = w[0];
	h->immortal = py->k.immortals && (int32_t)(uint32_t)w[0] < 0;
	h->type = w[off / 8];
	return 0;
}

int pyx_abi_obj_header(struct pyx_python *py, pyx_addr_t obj,
		       struct pyx_obj_header *h)
{
	uint64_t w[4];
	int32_t off = pyx_off(py, PYX_L_OB_TYPE);
	size_t n;
	int err;

	memset(h, 0, sizeof(*h));
	if (obj == 0 || (obj & 7))
		return pyx_err_set(PYX_E_BAD_MEMORY, "bad object address "
				   PYX_PRIaddr, obj);
	if (off == PYX_OFF_NONE || off < 0 || off / 8 >= (int32_t)PYX_ARRAY_SIZE(w))
		return pyx_err_set(PYX_E_LAYOUT, "no PyObject.ob_type in the "
				   "layout");
	n = (size_t)off / 8 + 1;
	if ((err = pyx_mem_read(py->mem, obj, w, n * 8)) ||
	    (err = py->abi->ops->header_decode(py, w, n, h)))
		return err;
	if (h->type == 0 || (h->type & 7))
		return pyx_err_set(PYX_E_BAD_MEMORY, "object " PYX_PRIaddr
				   " has a bad type pointer", obj);
	return 0;
}

int pyx_abi_gc_lists(struct pyx_python *py, pyx_addr_t interp,
		     struct pyx_gc_lists *out)
{
	memset(out, 0, sizeof(*out));
	return py->abi->ops->gc_lists(py, interp, out);
}

/* generations[NUM_GENERATIONS] then, in 3.8-3.13, generation0 (a pointer
 * to generations[0]): the distance between them counts the generations. */
static int ngenerations(struct pyx_python *py)
{
	int32_t g = pyx_off(py, PYX_L_GC_GENERATIONS);
	int32_t g0 = pyx_off(py, PYX_L_GC_GENERATION0);
	int32_t sz = pyx_off(py, PYX_L_SZ_GC_GENERATION);
	/* In 64 bits: an absent entry (PYX_OFF_NONE) or an image's made-up
	 * layout must not overflow the difference. */
	int64_t d = (int64_t)g0 - (int64_t)g;

	if (g != PYX_OFF_NONE && g0 != PYX_OFF_NONE && sz > 0 && d > 0 &&
	    d % sz == 0 && d / sz < PYX_GC_MAX_LISTS)
		return (int)(d / sz);
	return 3;
}

int pyx_abi_gc_lists_generational(struct pyx_python *py, pyx_addr_t interp,
				  struct pyx_gc_lists *out)
{
	/* The incremental GC (3.14.0-3.14.4): young then old[2], laid out
	 * as three generations. */
	int32_t gens = pyx_layout_has(&py->layout, PYX_L_GC_GENERATIONS)
		       ? pyx_off(py, PYX_L_GC_GENERATIONS)
		       : pyx_off(py, PYX_L_GC_YOUNG);
	int32_t perm = pyx_off(py, PYX_L_GC_PERMANENT);
	int32_t size = pyx_off(py, PYX_L_SZ_GC_GENERATION);
	enum pyx_layout_id where = py->k.gc_in_runtime ? PYX_L_RT_GC : PYX_L_IS_GC;
	pyx_addr_t base = py->k.gc_in_runtime ? py->info.runtime : interp;
	int ngen = ngenerations(py);

	if (gens == PYX_OFF_NONE || perm == PYX_OFF_NONE || size <= 0 ||
	    !pyx_layout_has(&py->layout, PYX_L_GCH_NEXT) ||
	    !pyx_layout_has(&py->layout, where))
		return pyx_err_set(PYX_E_LAYOUT, "the layout of %s has no GC "
				   "lists (_gc_runtime_state)",
				   py->layout.source_file);
	if (!base)
		return pyx_err_set(PYX_E_BAD_MEMORY, "no interpreter");
	out->state = base + (uint64_t)(int64_t)pyx_off(py, where);
	out->ngenerations = ngen;
	for (int g = 0; g < ngen; g++)
		out->list[out->n++] = (struct pyx_gc_list){
			out->state + (uint64_t)(int64_t)gens +
				(uint64_t)g * (uint64_t)size, g };
	out->list[out->n++] = (struct pyx_gc_list){
		out->state + (uint64_t)(int64_t)perm, PYX_GC_PERMANENT };
	return 0;
}

/* 3.8-3.11: the runtime's current thread state holds the GIL; it is
 * cleared before the GIL is dropped. */
pyx_addr_t pyx_abi_gil_holder_runtime(struct pyx_python *py, pyx_addr_t interp)
{
	uint64_t holder;

	return pyx_read_field(py, py->info.runtime, PYX_L_RT_TSTATE_CURRENT,
			      &holder) ? 0 : holder;
}

/* 3.12+: each interpreter points at its GIL (its own or the main one);
 * last_holder holds it while locked. */
pyx_addr_t pyx_abi_gil_holder_interp(struct pyx_python *py, pyx_addr_t interp)
{
	uint64_t gil, locked, holder;

	if (pyx_read_field(py, interp, PYX_L_IS_CEVAL_GIL, &gil) || !gil ||
	    pyx_read_field_n(py, gil, PYX_L_GIL_LOCKED, 4, &locked) ||
	    pyx_read_field(py, gil, PYX_L_GIL_LAST_HOLDER, &holder))
		return 0;
	return (int32_t)locked == 1 ? holder : 0;
}

/* ---- free-threaded builds --------------------------------------------- */

/* "python3.13t", "libpython3.13t.so.1.0": the ABI flag 't' after the
 * version (3.13+ only: there is no free-threaded build before). */
static bool name_says_free_threaded(const char *path)
{
	const char *base = strrchr(path, '/');
	int major, minor, len = 0;

	base = base ? base + 1 : path;
	if (strncmp(base, "libpython", 9) == 0)
		base += 9;
	else if (strncmp(base, "python", 6) == 0)
		base += 6;
	else
		return false;
	if (sscanf(base, "%d.%d%n", &major, &minor, &len) != 2 || len <= 0)
		return false;
	return major == 3 && minor >= 13 && base[len] == 't';
}

int pyx_abi_check_free_threaded(const struct pyx_build_signals *s)
{
	const char *why = NULL;
	uint64_t version = 0, ft = 0;

	if (s->runtime_head && s->runtime_head_len >= PYX_DEBUG_OFFSETS_HEAD &&
	    memcmp(s->runtime_head, "xdebugpy", 8) == 0) {
		memcpy(&version, s->runtime_head + 8, 8);
		memcpy(&ft, s->runtime_head + 16, 8);
		/* A cookie is only believed with a 3.13+ version beside it. */
		if ((version >> 24) == 3 && ((version >> 16) & 0xff) >= 13 &&
		    ft != 0)
			why = "its _Py_DebugOffsets say free_threaded";
	}
	if (!why && s->layout && pyx_layout_has(s->layout, PYX_L_OB_TID))
		why = "its DWARF has PyObject.ob_tid";
	if (!why && s->binary && name_says_free_threaded(s->binary))
		why = "its name has the ABI flag 't'";
	if (!why)
		return 0;
	return pyx_err_set(PYX_E_UNSUPPORTED_VERSION, "free-threaded build "
			   "(Py_GIL_DISABLED): not supported yet (%s: %s)",
			   s->binary ? s->binary : "the interpreter", why);
}

/* The code object a _PyInterpreterFrame runs: f_executable (3.14+: a
 * tagged _PyStackRef, untagged here) or f_code. */
int pyx_iframe_code(struct pyx_python *py, pyx_addr_t frame, pyx_addr_t *code)
{
	uint64_t w;
	int err;

	*code = 0;
	if ((err = pyx_read_field(py, frame, PYX_L_IF_CODE, &w)))
		return err;
	*code = pyx_abi_untag(py, w);
	return 0;
}

/* ---- symbols of static variables --------------------------------------- */

int pyx_python_symbol(struct pyx_python *py, enum pyx_layout_id id,
		      pyx_addr_t *addr)
{
	const struct pyx_layout *l = &py->layout;
	const char *name = pyx_layout_member(id);
	uint64_t size = 0;

	*addr = 0;
	if (id < PYX_L_SYM__FIRST || id >= PYX_L__COUNT)
		return -PYX_E_INTERNAL;
	/* The layout's symbols are unbiased values of the file the DWARF
	 * came from: _PyRuntime's gives the bias (a page multiple). */
	if (pyx_layout_has(l, id) && pyx_layout_has(l, PYX_L_SYM_RUNTIME) &&
	    l->v[id] > 0 && py->info.runtime >= (pyx_addr_t)l->v[PYX_L_SYM_RUNTIME]) {
		pyx_addr_t bias = py->info.runtime -
				  (pyx_addr_t)l->v[PYX_L_SYM_RUNTIME];

		if (!(bias & 0xfff)) {
			*addr = bias + (pyx_addr_t)l->v[id];
			return 0;
		}
	}
	if (py->elf && pyx_elf_lookup(py->elf, name, addr, &size) == 0 && *addr)
		return 0;
	*addr = 0;
	return pyx_err_set(PYX_E_NOT_SUPPORTED, "no symbol %s in %s (a stripped "
			   "build: install its debug symbols)", name,
			   py->info.binary[0] ? py->info.binary : "the interpreter");
}
