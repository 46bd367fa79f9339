/* The offsets CPython 3.13 publishes about itself: _Py_DebugOffsets, the
 * first member of _PyRuntime (Include/internal/pycore_runtime.h).  Its own
 * format is a stable protocol for out-of-process tools; what it carries goes
 * into the same struct pyx_layout as DWARF and the built-in tables. */
#include <string.h>

#include "internal.h"
#include "pyxray/layout.h"
#include "pyxray/memory.h"

/* 3.13's _Py_DebugOffsets: where each value sits in it. */
#define DO_SIZE_313 584
#define DO_GIL_STATE 120 /* interpreter_state.gil_runtime_state */

static const struct {
	enum pyx_layout_id id;
	uint16_t at;          /* offset in _Py_DebugOffsets */
	bool rel_gil;         /* value is relative to the interpreter: make it
				 relative to the GIL struct, as the layout is */
} map313[] = {
	{ PYX_L_RT_INTERP_HEAD, 40, false },
	{ PYX_L_RT_FINALIZING, 32, false },
	{ PYX_L_IS_ID, 56, false },
	{ PYX_L_IS_NEXT, 64, false },
	{ PYX_L_IS_TSTATE_HEAD, 72, false },
	{ PYX_L_IS_GC, 80, false },
	{ PYX_L_IS_MODULES, 88, false },
	{ PYX_L_IS_SYSDICT, 96, false },
	{ PYX_L_IS_BUILTINS, 104, false },
	{ PYX_L_IS_CEVAL_GIL, 112, false },
	{ PYX_L_IS_GIL, 120, false },
	{ PYX_L_GIL_LOCKED, 136, true },
	{ PYX_L_GIL_LAST_HOLDER, 144, true },
	{ PYX_L_TS_NEXT, 168, false },
	{ PYX_L_TS_INTERP, 176, false },
	{ PYX_L_TS_CURRENT_FRAME, 184, false },
	{ PYX_L_TS_THREAD_ID, 192, false },
	{ PYX_L_TS_NATIVE_THREAD_ID, 200, false },
	{ PYX_L_SZ_INTERP_FRAME, 224, false },
	{ PYX_L_IF_PREVIOUS, 232, false },
	{ PYX_L_IF_CODE, 240, false },
	{ PYX_L_IF_INSTR, 248, false },
	{ PYX_L_IF_OWNER, 264, false },
	{ PYX_L_SZ_CODE, 272, false },
	{ PYX_L_CO_FILENAME, 280, false },
	{ PYX_L_CO_NAME, 288, false },
	{ PYX_L_CO_QUALNAME, 296, false },
	{ PYX_L_CO_LINETABLE, 304, false },
	{ PYX_L_CO_FIRSTLINENO, 312, false },
	{ PYX_L_CO_CODE_ADAPTIVE, 344, false },
	{ PYX_L_OB_TYPE, 360, false },
	{ PYX_L_SZ_TYPE, 368, false },
	{ PYX_L_TP_NAME, 376, false },
	{ PYX_L_TP_FLAGS, 392, false },
	{ PYX_L_TUPLE_ITEM, 408, false },
	{ PYX_L_LIST_ITEM, 432, false },
	{ PYX_L_DICT_KEYS, 456, false },
	{ PYX_L_DICT_VALUES, 464, false },
	{ PYX_L_LONG_TAG, 496, false },
	{ PYX_L_LONG_DIGIT, 504, false },
	{ PYX_L_OB_SIZE, 520, false },
	{ PYX_L_BYTES_SVAL, 528, false },
	{ PYX_L_STR_STATE, 544, false },
	{ PYX_L_STR_LENGTH, 552, false },
	{ PYX_L_SZ_ASCII, 560, false },
};

int pyx_layout_from_debug_offsets(struct pyx_layout *l, struct pyx_mem *mem,
				  pyx_addr_t runtime, int *filled,
				  int *mismatches)
{
	uint8_t d[DO_SIZE_313];
	uint64_t version, gil;
	int err;

	*filled = *mismatches = 0;
	if ((err = pyx_mem_read(mem, runtime, d, sizeof(d))))
		return err;
	if (memcmp(d, "xdebugpy", 8) != 0)
		return -PYX_E_NOT_SUPPORTED;
	memcpy(&version, d + 8, 8);
	/* Only 3.13's format is known here; 3.14 moved fields around. */
	if ((version >> 16) != 0x030d)
		return pyx_err_set(PYX_E_NOT_SUPPORTED, "_Py_DebugOffsets of "
				   "version 0x%08" PRIx64 " not known", version);
	memcpy(&gil, d + DO_GIL_STATE, 8);
	for (size_t i = 0; i < PYX_ARRAY_SIZE(map313); i++) {
		uint64_t v;
		int32_t val;

		memcpy(&v, d + map313[i].at, 8);
		if (map313[i].rel_gil)
			v -= gil;
		if (v > (1u << 24))
			return pyx_err_set(PYX_E_LAYOUT, "_Py_DebugOffsets: %s = %"
					   PRIu64 " is not an offset",
					   pyx_layout_name(map313[i].id), v);
		val = (int32_t)v;
		if (l->v[map313[i].id] != PYX_OFF_NONE &&
		    l->v[map313[i].id] != val) {
			pyx_warn("_Py_DebugOffsets says %s = %d, layout had %d",
				 pyx_layout_name(map313[i].id), val,
				 l->v[map313[i].id]);
			(*mismatches)++;
		}
		l->v[map313[i].id] = val;
		(*filled)++;
	}
	/* Derived, not carried: PyCompactUnicodeObject is PyASCIIObject plus
	 * utf8_length and utf8 (3.12+). */
	if (l->v[PYX_L_SZ_COMPACT] == PYX_OFF_NONE)
		l->v[PYX_L_SZ_COMPACT] = l->v[PYX_L_SZ_ASCII] + 16;
	return 0;
}
