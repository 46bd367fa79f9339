/* The 3.11-3.13 ABI family: _PyInterpreterFrame chains in per-thread data
 * stacks, several per C call (3.11: is_entry marks the last of a run;
 * 3.12+: a shim frame owned by the C stack does); the instruction pointer
 * (prev_instr to 3.12, instr_ptr in 3.13) is an address in
 * co_code_adaptive; the PEP 626 location table; managed dicts before the
 * object (3.11+), tagged dict-or-values (3.12), inline values (3.13);
 * int sign in ob_size (3.11) or lv_tag (3.12+); immortal objects (3.12+). */
#include <string.h>

#include "abi.h"
#include "object.h"

/* enum _frameowner */
#define OWNED_BY_GENERATOR 1
#define OWNED_BY_CSTACK 3 /* 3.12, 3.13: the shim frame of a C->Python call */

static int first_frame(struct pyx_python *py, pyx_addr_t tstate,
		       pyx_addr_t *frame)
{
	uint64_t cframe;
	int err;

	*frame = 0;
	/* 3.13: tstate->current_frame; 3.11, 3.12: through the C frame. */
	if (pyx_layout_has(&py->layout, PYX_L_TS_CURRENT_FRAME))
		return pyx_read_field(py, tstate, PYX_L_TS_CURRENT_FRAME, frame);
	if ((err = pyx_read_field(py, tstate, PYX_L_TS_CFRAME, &cframe)) ||
	    !cframe)
		return err;
	return pyx_read_field(py, cframe, PYX_L_CFRAME_CURRENT_FRAME, frame);
}

static int step_frame(struct pyx_python *py, pyx_addr_t frame,
		      struct pyx_abi_frame *f)
{
	uint64_t code, instr, owner, is_entry = 0, prev;
	int err;

	memset(f, 0, sizeof(*f));
	f->lasti = -1;
	if ((err = pyx_read_field(py, frame, PYX_L_IF_CODE, &code)) ||
	    (err = pyx_read_field(py, frame, PYX_L_IF_INSTR, &instr)) ||
	    (err = pyx_read_field_n(py, frame, PYX_L_IF_OWNER, 1, &owner)))
		return err;
	if (pyx_layout_has(&py->layout, PYX_L_IF_IS_ENTRY) &&
	    (err = pyx_read_field_n(py, frame, PYX_L_IF_IS_ENTRY, 1, &is_entry)))
		return err;
	if ((err = pyx_read_field(py, frame, PYX_L_IF_PREVIOUS, &prev)))
		return err;
	f->previous = prev;
	code = py->abi->ops->untag(code);
	if (py->k.shim_frames && owner == OWNED_BY_CSTACK) {
		f->kind = PYX_FRAME_SHIM;
		f->entry = true;
		return 0;
	}
	if (!code || !pyx_obj_is(py, code, py->types.code, 0)) {
		f->kind = PYX_FRAME_OTHER;
		return 0;
	}
	f->code = code;
	f->entry = is_entry != 0;
	/* Incomplete frames are being set up or torn down: CPython itself
	 * hides them (_PyFrame_IsIncomplete).  Hidden, one may still end a C
	 * call's run of frames (3.11 is_entry): entry says so. */
	return pyx_abi_frame_position(py, code, instr,
				      owner == OWNED_BY_GENERATOR, f);
}

static const struct pyx_abi_ops ops_311 = {
	.first_frame = first_frame,
	.step_frame = step_frame,
	.gil_holder = pyx_abi_gil_holder_runtime,
	.untag = pyx_abi_untag_identity,
	.header_decode = pyx_abi_header_decode_gil,
	.long_digits = pyx_long_digits_ob_size,
	.str_data = pyx_str_data_pep393,
	.gc_lists = pyx_abi_gc_lists_generational,
};

static const struct pyx_abi_ops ops_312 = {
	.first_frame = first_frame,
	.step_frame = step_frame,
	.gil_holder = pyx_abi_gil_holder_interp,
	.untag = pyx_abi_untag_identity,
	.header_decode = pyx_abi_header_decode_gil,
	.long_digits = pyx_long_digits_tag,
	.str_data = pyx_str_data_pep393,
	.gc_lists = pyx_abi_gc_lists_generational,
};

const struct pyx_abi pyx_abi_3_11 = {
	.major = 3, .minor = 11, .family = "py311", .ops = &ops_311,
	.linetable = PYX_LT_LOCATIONS, .lasti_unit = 2,
	.k = {
		.interp_frames = true,
		.gen_frame_completed = 1,
		.managed_dict_word = 3, /* obj[-3]: dict, before PyGC_Head */
		.managed_values_word = 4,
		.int_min_digits = 1,
		.preheader_flags = PYX_TPFLAGS_MANAGED_DICT,
		.static_type_gc_head = true,
		.arena_size = 1u << 20,
		.gen_resume_opcode = 151,
		.gen_resume_quick_opcode = 150,
		.tm_statics = true,
	},
};

const struct pyx_abi pyx_abi_3_12 = {
	.major = 3, .minor = 12, .family = "py311", .ops = &ops_312,
	.linetable = PYX_LT_LOCATIONS, .lasti_unit = 2,
	.k = {
		.interp_frames = true,
		.shim_frames = true,
		.gen_frame_completed = 3,
		.managed_dict_word = 3,
		.tagged_dict_or_values = true,
		.int_min_digits = 1,
		.preheader_flags = PYX_TPFLAGS_MANAGED_DICT |
				   PYX_TPFLAGS_MANAGED_WEAKREF,
		.static_type_gc_head = true,
		.immortals = true,
		.arena_size = 1u << 20,
		.gen_resume_opcode = 151,
	},
};

const struct pyx_abi pyx_abi_3_13 = {
	.major = 3, .minor = 13, .family = "py311", .ops = &ops_312,
	.linetable = PYX_LT_LOCATIONS, .lasti_unit = 2,
	.k = {
		.interp_frames = true,
		.shim_frames = true,
		.gen_frame_completed = 4,
		.managed_dict_word = 3,
		.inline_values = true,
		.int_min_digits = 1,
		.preheader_flags = PYX_TPFLAGS_MANAGED_DICT |
				   PYX_TPFLAGS_MANAGED_WEAKREF,
		.immortals = true,
		.arena_size = 1u << 20,
		.obmalloc_ptr = true,
		/* FRAME_SUSPENDED_YIELD_FROM */
		.gen_yf_by_state = true,
		.gen_yf_state_lo = -1,
		.gen_yf_state_hi = -1,
	},
};
