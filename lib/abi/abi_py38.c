/* The 3.8-3.10 ABI family: one PyFrameObject per Python call, chained by
 * f_back from tstate->frame; f_lasti counts bytes (3.8, 3.9) or code units
 * (3.10); co_lnotab (3.8, 3.9) or co_linetable (3.10); int sign in
 * ob_size; dicts at tp_dictoffset; the GC state in _PyRuntime (3.8) or in
 * each interpreter (3.9, 3.10). */
#include <string.h>

#include "abi.h"
#include "object.h"

static int first_frame(struct pyx_python *py, pyx_addr_t tstate,
		       pyx_addr_t *frame)
{
	return pyx_read_field(py, tstate, PYX_L_TS_FRAME, frame);
}

static int step_frame(struct pyx_python *py, pyx_addr_t frame,
		      struct pyx_abi_frame *f)
{
	uint64_t code, lasti, lineno, trace, back;
	int64_t a;
	int err;

	memset(f, 0, sizeof(*f));
	if ((err = pyx_read_field(py, frame, PYX_L_FO_CODE, &code)) ||
	    (err = pyx_read_field_n(py, frame, PYX_L_FO_LASTI, 4, &lasti)) ||
	    (err = pyx_read_field_n(py, frame, PYX_L_FO_LINENO, 4, &lineno)) ||
	    (err = pyx_read_field(py, frame, PYX_L_FO_TRACE, &trace)) ||
	    (err = pyx_read_field(py, frame, PYX_L_FO_BACK, &back)))
		return err;
	f->kind = PYX_FRAME_PYTHON;
	f->code = code;
	f->previous = back;
	f->entry = true; /* every frame object is its own eval call */
	/* PyFrame_GetLineNumber: f_lineno is authoritative only while
	 * tracing (3.8, 3.9) or when set (3.10). */
	if (py->abi->minor <= 9 ? trace != 0 : (int32_t)lineno != 0) {
		f->has_line = true;
		f->line = (int)(int32_t)lineno;
	}
	/* A value that would overflow an int is no offset at all. */
	a = (int64_t)(int32_t)lasti * py->abi->lasti_unit;
	f->lasti = a < INT32_MIN || a > INT32_MAX ? -1 : (int)a;
	return 0;
}

static const struct pyx_abi_ops ops = {
	.first_frame = first_frame,
	.step_frame = step_frame,
	.gil_holder = pyx_abi_gil_holder_runtime,
	.untag = pyx_abi_untag_identity,
	.header_decode = pyx_abi_header_decode_gil,
	.long_digits = pyx_long_digits_ob_size,
	.str_data = pyx_str_data_pep393,
	.gc_lists = pyx_abi_gc_lists_generational,
};

const struct pyx_abi pyx_abi_3_8 = {
	.major = 3, .minor = 8, .family = "py38", .ops = &ops,
	.linetable = PYX_LT_LNOTAB, .lasti_unit = 1,
	.k = {
		.gc_in_runtime = true,
		.arena_size = 1u << 18,
		.gen_yf_opcode = 72,
		.tm_statics = true,
		.tm_inline_entries = true,
	},
};

const struct pyx_abi pyx_abi_3_9 = {
	.major = 3, .minor = 9, .family = "py38", .ops = &ops,
	.linetable = PYX_LT_LNOTAB, .lasti_unit = 1,
	.k = {
		.arena_size = 1u << 18,
		.gen_yf_opcode = 72,
		.tm_statics = true,
	},
};

const struct pyx_abi pyx_abi_3_10 = {
	.major = 3, .minor = 10, .family = "py38", .ops = &ops,
	.linetable = PYX_LT_LINETABLE, .lasti_unit = 2,
	.k = {
		.arena_size = 1u << 20,
		.gen_yf_opcode = 72,
		.tm_statics = true,
	},
};
