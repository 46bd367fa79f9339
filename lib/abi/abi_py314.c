/* The 3.14+ ABI family: _PyInterpreterFrame chains as in 3.13, but the
 * frame's code (f_executable) and its locals are tagged _PyStackRefs (the
 * low two bits: 0 a counted reference, 1 borrowed or immortal, 3 a tagged
 * int); entry frames are owned by the interpreter (3) or, in 3.14 only, the
 * C stack (4); 3.15 ends every chain at the thread state's base frame
 * (owner 3 too); the refcount is split (u32 ob_refcnt, u16 ob_overflow,
 * u16 ob_flags), immortal objects read 0xC0000000; generator states were
 * renumbered in 3.15 (CREATED 0 .. CLEARED 5, no COMPLETED).
 * Reference: shared/reference/cpython-3.14-3.15.md, measured on 3.14.10
 * and 3.15.2. */
#include <string.h>

#include "abi.h"
#include "object.h"

/* enum _frameowner */
#define OWNED_BY_GENERATOR 1
#define OWNED_BY_INTERPRETER 3 /* entry frames; 3.15's base frame */
#define OWNED_BY_CSTACK 4      /* 3.14 only */

/* _PyStackRef (GIL builds): the tag is the low two bits. */
#define STACKREF_TAG_MASK 3u
#define STACKREF_TAG_INT 3u

pyx_addr_t pyx_abi_untag_stackref(uint64_t ref)
{
	/* A tagged int is no object; bits == 1 is PyStackRef_NULL. */
	if ((ref & STACKREF_TAG_MASK) == STACKREF_TAG_INT)
		return 0;
	return ref & ~(uint64_t)STACKREF_TAG_MASK;
}

static int first_frame(struct pyx_python *py, pyx_addr_t tstate,
		       pyx_addr_t *frame)
{
	*frame = 0;
	return pyx_read_field(py, tstate, PYX_L_TS_CURRENT_FRAME, frame);
}

static int step_frame(struct pyx_python *py, pyx_addr_t frame,
		      struct pyx_abi_frame *f)
{
	uint64_t ref, instr, owner, prev;
	pyx_addr_t code;
	int err;

	memset(f, 0, sizeof(*f));
	f->lasti = -1;
	if ((err = pyx_read_field(py, frame, PYX_L_IF_CODE, &ref)) ||
	    (err = pyx_read_field(py, frame, PYX_L_IF_INSTR, &instr)) ||
	    (err = pyx_read_field_n(py, frame, PYX_L_IF_OWNER, 1, &owner)) ||
	    (err = pyx_read_field(py, frame, PYX_L_IF_PREVIOUS, &prev)))
		return err;
	f->previous = prev;
	/* Entry frames (one per C call into the eval loop) and 3.15's base
	 * frame: CPython counts them incomplete and never shows them. */
	if (owner == OWNED_BY_INTERPRETER || owner == OWNED_BY_CSTACK) {
		f->kind = PYX_FRAME_SHIM;
		f->entry = true;
		return 0;
	}
	code = pyx_abi_untag_stackref(ref);
	if (!code || !pyx_obj_is(py, code, py->types.code, 0)) {
		f->kind = PYX_FRAME_OTHER;
		return 0;
	}
	f->code = code;
	return pyx_abi_frame_position(py, code, instr,
				      owner == OWNED_BY_GENERATOR, f);
}

/* The split refcount: Py_REFCNT() is the u32 ob_refcnt (ob_overflow and
 * ob_flags above it are not part of it); immortal objects have its top
 * bit set (0xC0000000 when created). */
static int header_decode(const struct pyx_python *py, const uint64_t *w,
			 size_t nwords, struct pyx_obj_header *h)
{
	int32_t off = py->layout.v[PYX_L_OB_TYPE];

	memset(h, 0, sizeof(*h));
	if (off == PYX_OFF_NONE || off < 8 || (off & 7) ||
	    (size_t)off / 8 >= nwords)
		return pyx_err_set(PYX_E_LAYOUT, "no PyObject.ob_type in the "
				   "layout, or past the header");
	h->refcnt = (uint32_t)w[0];
	h->immortal = (int32_t)(uint32_t)w[0] < 0;
	h->type = w[off / 8];
	return 0;
}

static const struct pyx_abi_ops ops_314 = {
	.first_frame = first_frame,
	.step_frame = step_frame,
	.gil_holder = pyx_abi_gil_holder_interp,
	.untag = pyx_abi_untag_stackref,
	.header_decode = header_decode,
	.long_digits = pyx_long_digits_tag,
	.str_data = pyx_str_data_pep393,
	.gc_lists = pyx_abi_gc_lists_generational,
};

#define K_314_COMMON                                                           \
	.interp_frames = true,                                                 \
	.shim_frames = true,                                                   \
	.managed_dict_word = 3,                                                \
	.inline_values = true,                                                 \
	.int_min_digits = 1,                                                   \
	.preheader_flags = PYX_TPFLAGS_MANAGED_DICT |                          \
			   PYX_TPFLAGS_MANAGED_WEAKREF,                        \
	.immortals = true,                                                     \
	.stackrefs = true,                                                     \
	.arena_size = 1u << 20,                                                \
	.obmalloc_ptr = true

const struct pyx_abi pyx_abi_3_14 = {
	.major = 3, .minor = 14, .family = "py314", .ops = &ops_314,
	.linetable = PYX_LT_LOCATIONS, .lasti_unit = 2,
	.k = {
		K_314_COMMON,
		/* CREATED -3, SUSPENDED -2, SUSPENDED_YIELD_FROM -1,
		 * EXECUTING 0, COMPLETED 1, CLEARED 4 */
		.gen_frame_completed = 1,
		.gen_yield_from_slot = 1,
		.gen_yf_by_state = true,
		.gen_yf_state_lo = -1,
		.gen_yf_state_hi = -1,
	},
};

const struct pyx_abi pyx_abi_3_15 = {
	.major = 3, .minor = 15, .family = "py314", .ops = &ops_314,
	.linetable = PYX_LT_LOCATIONS, .lasti_unit = 2,
	.k = {
		K_314_COMMON,
		/* CREATED 0, SUSPENDED 1, SUSPENDED_YIELD_FROM 2 (3: its
		 * _LOCKED), EXECUTING 4, CLEARED 5 */
		.gen_frame_completed = 5,
		.gen_yield_from_slot = 2,
		.gen_yf_by_state = true,
		.gen_yf_state_lo = 2,
		.gen_yf_state_hi = 3,
		.base_frames = true,
		.tm_c_filenames = true,
	},
};
