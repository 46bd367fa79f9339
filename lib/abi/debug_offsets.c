/* The offsets CPython 3.13+ publishes about itself: _Py_DebugOffsets, the
 * first member of _PyRuntime (Include/internal/pycore_debug_offsets.h).  A
 * stable protocol for out-of-process tools, but not a self-describing one:
 * the struct has no size field, and every release inserts fields inside
 * its groups (3.13: 584 bytes, 3.14: 760, 3.15: 888).  The format is chosen
 * by the version it carries; what it says goes into the same struct
 * pyx_layout as DWARF and the built-in tables.  The section is writable:
 * every value is bounded by the size of the struct it is an offset in. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "pyxray/layout.h"
#include "pyxray/memory.h"

/* What a value is relative to, for its bound. */
enum base {
	B_NONE,    /* a size: bounded by 16 MiB only */
	B_RUNTIME, B_INTERP, B_THREAD, B_FRAME, B_CODE, B_OBJECT, B_TYPE,
	B_HEAPTYPE, B_TUPLE, B_LIST, B_SET, B_DICT, B_LONG, B_BYTES, B_STR,
	B_GC, B_GEN,
	B_GIL,     /* inside the interpreter, made relative to its _gil */
	B__COUNT,
};

struct entry {
	enum pyx_layout_id id;
	uint16_t at;  /* offset in _Py_DebugOffsets */
	enum base base;
};

struct format {
	int minor;           /* 3.13, 3.14, 3.15 */
	uint16_t size;       /* sizeof(_Py_DebugOffsets) */
	uint16_t size_at[B__COUNT]; /* where each base struct's size is; 0:
				       no size carried */
	uint16_t gil_at;     /* interpreter_state.gil_runtime_state */
	const struct entry *e;
	size_t n;
};

#define E(id, at, base) { PYX_L_##id, at, base }

static const struct entry e313[] = {
	E(RT_FINALIZING, 32, B_RUNTIME), E(RT_INTERP_HEAD, 40, B_RUNTIME),
	E(IS_ID, 56, B_INTERP), E(IS_NEXT, 64, B_INTERP),
	E(IS_TSTATE_HEAD, 72, B_INTERP), E(IS_GC, 80, B_INTERP),
	E(IS_MODULES, 88, B_INTERP), E(IS_SYSDICT, 96, B_INTERP),
	E(IS_BUILTINS, 104, B_INTERP), E(IS_CEVAL_GIL, 112, B_INTERP),
	E(IS_GIL, 120, B_INTERP), E(GIL_LOCKED, 136, B_GIL),
	E(GIL_LAST_HOLDER, 144, B_GIL),
	E(TS_NEXT, 168, B_THREAD), E(TS_INTERP, 176, B_THREAD),
	E(TS_CURRENT_FRAME, 184, B_THREAD), E(TS_THREAD_ID, 192, B_THREAD),
	E(TS_NATIVE_THREAD_ID, 200, B_THREAD),
	E(SZ_INTERP_FRAME, 224, B_NONE), E(IF_PREVIOUS, 232, B_FRAME),
	E(IF_CODE, 240, B_FRAME), E(IF_INSTR, 248, B_FRAME),
	E(IF_OWNER, 264, B_FRAME),
	E(SZ_CODE, 272, B_NONE), E(CO_FILENAME, 280, B_CODE),
	E(CO_NAME, 288, B_CODE), E(CO_QUALNAME, 296, B_CODE),
	E(CO_LINETABLE, 304, B_CODE), E(CO_FIRSTLINENO, 312, B_CODE),
	E(CO_CODE_ADAPTIVE, 344, B_CODE),
	E(OB_TYPE, 360, B_OBJECT), E(SZ_TYPE, 368, B_NONE),
	E(TP_NAME, 376, B_TYPE), E(TP_FLAGS, 392, B_TYPE),
	E(TUPLE_ITEM, 408, B_TUPLE), E(LIST_ITEM, 432, B_LIST),
	E(DICT_KEYS, 456, B_DICT), E(DICT_VALUES, 464, B_DICT),
	E(LONG_TAG, 496, B_LONG), E(LONG_DIGIT, 504, B_LONG),
	E(OB_SIZE, 520, B_BYTES), E(BYTES_SVAL, 528, B_BYTES),
	E(STR_STATE, 544, B_STR), E(STR_LENGTH, 552, B_STR),
	E(SZ_ASCII, 560, B_NONE),
};

static const struct entry e314[] = {
	E(SZ_RUNTIME, 24, B_NONE),
	E(RT_FINALIZING, 32, B_RUNTIME), E(RT_INTERP_HEAD, 40, B_RUNTIME),
	E(SZ_INTERP, 48, B_NONE),
	E(IS_ID, 56, B_INTERP), E(IS_NEXT, 64, B_INTERP),
	E(IS_TSTATE_HEAD, 72, B_INTERP), E(IS_THREADS_MAIN, 80, B_INTERP),
	E(IS_GC, 88, B_INTERP), E(IS_MODULES, 96, B_INTERP),
	E(IS_SYSDICT, 104, B_INTERP), E(IS_BUILTINS, 112, B_INTERP),
	E(IS_CEVAL_GIL, 120, B_INTERP), E(IS_GIL, 128, B_INTERP),
	E(GIL_LOCKED, 144, B_GIL), E(GIL_LAST_HOLDER, 152, B_GIL),
	E(SZ_THREAD, 176, B_NONE),
	E(TS_NEXT, 192, B_THREAD), E(TS_INTERP, 200, B_THREAD),
	E(TS_CURRENT_FRAME, 208, B_THREAD), E(TS_THREAD_ID, 216, B_THREAD),
	E(TS_NATIVE_THREAD_ID, 224, B_THREAD),
	E(SZ_INTERP_FRAME, 248, B_NONE), E(IF_PREVIOUS, 256, B_FRAME),
	E(IF_CODE, 264, B_FRAME), E(IF_INSTR, 272, B_FRAME),
	E(IF_LOCALSPLUS, 280, B_FRAME), E(IF_OWNER, 288, B_FRAME),
	E(IF_STACKPOINTER, 296, B_FRAME),
	E(SZ_CODE, 312, B_NONE), E(CO_FILENAME, 320, B_CODE),
	E(CO_NAME, 328, B_CODE), E(CO_QUALNAME, 336, B_CODE),
	E(CO_LINETABLE, 344, B_CODE), E(CO_FIRSTLINENO, 352, B_CODE),
	E(CO_VARNAMES, 368, B_CODE), E(CO_LOCALSPLUSKINDS, 376, B_CODE),
	E(CO_CODE_ADAPTIVE, 384, B_CODE),
	E(OB_TYPE, 408, B_OBJECT), E(SZ_TYPE, 416, B_NONE),
	E(TP_NAME, 424, B_TYPE), E(TP_FLAGS, 440, B_TYPE),
	E(TUPLE_ITEM, 456, B_TUPLE), E(OB_SIZE, 464, B_TUPLE),
	E(LIST_ITEM, 480, B_LIST),
	E(SET_TABLE, 512, B_SET), E(SET_MASK, 520, B_SET),
	E(DICT_KEYS, 536, B_DICT), E(DICT_VALUES, 544, B_DICT),
	E(LONG_TAG, 576, B_LONG), E(LONG_DIGIT, 584, B_LONG),
	E(BYTES_SVAL, 608, B_BYTES),
	E(STR_STATE, 624, B_STR), E(STR_LENGTH, 632, B_STR),
	E(SZ_ASCII, 640, B_NONE),
	E(SZ_GC_STATE, 648, B_NONE), E(GC_COLLECTING, 656, B_GC),
	E(GEN_IFRAME, 680, B_GEN), E(GEN_FRAME_STATE, 688, B_GEN),
};

static const struct entry e315[] = {
	E(SZ_RUNTIME, 24, B_NONE),
	E(RT_FINALIZING, 32, B_RUNTIME), E(RT_INTERP_HEAD, 40, B_RUNTIME),
	E(SZ_INTERP, 48, B_NONE),
	E(IS_ID, 56, B_INTERP), E(IS_NEXT, 64, B_INTERP),
	E(IS_TSTATE_HEAD, 72, B_INTERP), E(IS_THREADS_MAIN, 80, B_INTERP),
	E(IS_GC, 88, B_INTERP), E(IS_MODULES, 96, B_INTERP),
	E(IS_SYSDICT, 104, B_INTERP), E(IS_BUILTINS, 112, B_INTERP),
	E(IS_CEVAL_GIL, 120, B_INTERP), E(IS_GIL, 128, B_INTERP),
	E(GIL_LOCKED, 144, B_GIL), E(GIL_LAST_HOLDER, 152, B_GIL),
	E(SZ_THREAD, 176, B_NONE),
	E(TS_NEXT, 192, B_THREAD), E(TS_INTERP, 200, B_THREAD),
	E(TS_CURRENT_FRAME, 208, B_THREAD), E(TS_BASE_FRAME, 216, B_THREAD),
	E(TS_THREAD_ID, 240, B_THREAD), E(TS_NATIVE_THREAD_ID, 248, B_THREAD),
	E(SZ_INTERP_FRAME, 312, B_NONE), E(IF_PREVIOUS, 320, B_FRAME),
	E(IF_CODE, 328, B_FRAME), E(IF_INSTR, 336, B_FRAME),
	E(IF_LOCALSPLUS, 344, B_FRAME), E(IF_OWNER, 352, B_FRAME),
	E(IF_STACKPOINTER, 360, B_FRAME),
	E(SZ_CODE, 376, B_NONE), E(CO_FILENAME, 384, B_CODE),
	E(CO_NAME, 392, B_CODE), E(CO_QUALNAME, 400, B_CODE),
	E(CO_LINETABLE, 408, B_CODE), E(CO_FIRSTLINENO, 416, B_CODE),
	E(CO_VARNAMES, 432, B_CODE), E(CO_LOCALSPLUSKINDS, 440, B_CODE),
	E(CO_CODE_ADAPTIVE, 448, B_CODE),
	E(OB_TYPE, 472, B_OBJECT), E(SZ_TYPE, 480, B_NONE),
	E(TP_NAME, 488, B_TYPE), E(TP_FLAGS, 504, B_TYPE),
	E(TP_BASICSIZE, 512, B_TYPE), E(TP_DICTOFFSET, 520, B_TYPE),
	E(SZ_HEAP_TYPE, 528, B_NONE), E(HT_CACHED_KEYS, 536, B_HEAPTYPE),
	E(TUPLE_ITEM, 552, B_TUPLE), E(OB_SIZE, 560, B_TUPLE),
	E(LIST_ITEM, 576, B_LIST),
	E(SET_TABLE, 608, B_SET), E(SET_MASK, 616, B_SET),
	E(DICT_KEYS, 632, B_DICT), E(DICT_VALUES, 640, B_DICT),
	E(LONG_TAG, 672, B_LONG), E(LONG_DIGIT, 680, B_LONG),
	E(BYTES_SVAL, 704, B_BYTES),
	E(STR_STATE, 720, B_STR), E(STR_LENGTH, 728, B_STR),
	E(SZ_ASCII, 736, B_NONE), E(SZ_COMPACT, 744, B_NONE),
	E(SZ_GC_STATE, 752, B_NONE), E(GC_COLLECTING, 760, B_GC),
	E(GEN_IFRAME, 808, B_GEN), E(GEN_FRAME_STATE, 816, B_GEN),
};

#undef E

/* Where each group's size is, per format (0: the format carries none). */
static const struct format formats[] = {
	{ 13, 584, {
		[B_RUNTIME] = 24, [B_INTERP] = 48, [B_THREAD] = 152,
		[B_FRAME] = 224, [B_CODE] = 272, [B_OBJECT] = 352,
		[B_TYPE] = 368, [B_TUPLE] = 400, [B_LIST] = 424,
		[B_DICT] = 448, [B_LONG] = 488, [B_BYTES] = 512,
		[B_STR] = 536, [B_GC] = 568, [B_GIL] = 48,
	  }, 120, e313, PYX_ARRAY_SIZE(e313) },
	{ 14, 760, {
		[B_RUNTIME] = 24, [B_INTERP] = 48, [B_THREAD] = 176,
		[B_FRAME] = 248, [B_CODE] = 312, [B_OBJECT] = 400,
		[B_TYPE] = 416, [B_TUPLE] = 448, [B_LIST] = 472,
		[B_SET] = 496, [B_DICT] = 528, [B_LONG] = 568,
		[B_BYTES] = 592, [B_STR] = 616, [B_GC] = 648, [B_GEN] = 664,
		[B_GIL] = 48,
	  }, 128, e314, PYX_ARRAY_SIZE(e314) },
	{ 15, 888, {
		[B_RUNTIME] = 24, [B_INTERP] = 48, [B_THREAD] = 176,
		[B_FRAME] = 312, [B_CODE] = 376, [B_OBJECT] = 464,
		[B_TYPE] = 480, [B_HEAPTYPE] = 528, [B_TUPLE] = 544,
		[B_LIST] = 568, [B_SET] = 592, [B_DICT] = 624, [B_LONG] = 664,
		[B_BYTES] = 688, [B_STR] = 712, [B_GC] = 752, [B_GEN] = 792,
		[B_GIL] = 48,
	  }, 128, e315, PYX_ARRAY_SIZE(e315) },
};

#define DO_MAX_SIZE 888
#define MAX_VALUE (1u << 24)

uint64_t pyx_debug_offsets_present_version(uint64_t hex)
{
#ifdef PYX_TEST_HOOKS
	/* Test hook: present this build as another version ("3.16"), to
	 * test what pyxray does with a CPython newer than it knows. */
	const char *v = getenv("PYX_TEST_PRESENT_VERSION");
	unsigned major, minor;

	if (v && sscanf(v, "%u.%u", &major, &minor) == 2 && major < 256 &&
	    minor < 256)
		hex = (hex & 0xffff) | (uint64_t)major << 24 |
		      (uint64_t)minor << 16;
#endif
	return hex;
}

void pyx_debug_offsets_range(int *oldest_minor, int *newest_minor)
{
	*oldest_minor = formats[0].minor;
	*newest_minor = formats[PYX_ARRAY_SIZE(formats) - 1].minor;
}

/* What the readers read at an offset: its width (so that offset + width
 * stays inside the struct) and whether it is a pointer or a word, 8-byte
 * aligned in every build.  Embedded structs and arrays (the GIL, the GC
 * state, a frame, ob_sval, co_code_adaptive) need one byte at least. */
static unsigned field_width(enum pyx_layout_id id, bool *aligned)
{
	*aligned = false;
	switch (id) {
	case PYX_L_IS_GC:
	case PYX_L_IS_GIL:
	case PYX_L_TS_BASE_FRAME:
	case PYX_L_IF_OWNER:
	case PYX_L_CO_CODE_ADAPTIVE:
	case PYX_L_BYTES_SVAL:
	case PYX_L_GEN_IFRAME:
	case PYX_L_GEN_FRAME_STATE:
		return 1;
	case PYX_L_CO_FIRSTLINENO:
	case PYX_L_STR_STATE:
	case PYX_L_GIL_LOCKED:
	case PYX_L_GC_COLLECTING:
	case PYX_L_LONG_DIGIT:
		return 4;
	default:
		*aligned = true;
		return 8;
	}
}

static void note_diff(struct pyx_debug_offsets *d, enum pyx_layout_id id,
		      int32_t had, int32_t says)
{
	d->mismatches++;
	if (d->ndiff < PYX_ARRAY_SIZE(d->diff))
		d->diff[d->ndiff++] = (struct pyx_debug_offsets_diff){
			id, had, says };
}

int pyx_debug_offsets_apply(struct pyx_layout *out, struct pyx_mem *mem,
			    pyx_addr_t runtime, struct pyx_debug_offsets *d)
{
	struct pyx_layout copy = *out, *l = &copy; /* all or nothing */
	uint8_t buf[DO_MAX_SIZE];
	const struct format *f = NULL;
	uint64_t gil, ft;
	int major, minor, err;

	memset(d, 0, sizeof(*d));
	/* The head first: a runtime before 3.13 may be shorter than the
	 * biggest format. */
	if ((err = pyx_mem_read(mem, runtime, buf, 24)))
		return err;
	if (memcmp(buf, "xdebugpy", 8) != 0)
		return -PYX_E_NOT_SUPPORTED; /* before 3.13: no detail */
	memcpy(&d->version, buf + 8, 8);
	d->version = pyx_debug_offsets_present_version(d->version);
	memcpy(&ft, buf + 16, 8);
	major = (int)(d->version >> 24) & 0xff;
	minor = (int)(d->version >> 16) & 0xff;
	if (major != 3 || minor < formats[0].minor || (d->version >> 32))
		return pyx_err_set(PYX_E_NOT_SUPPORTED, "_Py_DebugOffsets of "
				   "version 0x%08" PRIx64 " not known",
				   d->version);
	if (ft != 0)
		return pyx_err_set(PYX_E_UNSUPPORTED_VERSION, "_Py_DebugOffsets "
				   "say free_threaded: not supported yet");
	for (size_t i = 0; i < PYX_ARRAY_SIZE(formats); i++)
		if (formats[i].minor <= minor)
			f = &formats[i];
	/* A newer release is read in the newest format known: only if the
	 * process then validates through it is it believed (the caller). */
	d->newer = f->minor != minor;
	d->format_minor = f->minor;
	if ((err = pyx_mem_read(mem, runtime, buf, f->size)))
		return err;

	{
		uint64_t size[B__COUNT] = { 0 };

		for (int b = 0; b < B__COUNT; b++) {
			if (!f->size_at[b])
				continue;
			memcpy(&size[b], buf + f->size_at[b], 8);
			if (size[b] == 0 || size[b] > MAX_VALUE)
				return pyx_err_set(PYX_E_LAYOUT,
						   "_Py_DebugOffsets: a struct "
						   "size of %" PRIu64 " bytes",
						   size[b]);
		}
		d->runtime_size = size[B_RUNTIME];
		d->interp_size = size[B_INTERP];
		d->thread_size = size[B_THREAD];
		d->gc_size = size[B_GC];
		memcpy(&gil, buf + f->gil_at, 8);
		if (gil >= size[B_INTERP])
			return pyx_err_set(PYX_E_LAYOUT, "_Py_DebugOffsets: the "
					   "GIL at %" PRIu64 " is past the "
					   "interpreter (%" PRIu64 " bytes)",
					   gil, size[B_INTERP]);
		for (size_t i = 0; i < f->n; i++) {
			const struct entry *e = &f->e[i];
			uint64_t v, bound;
			int32_t val;

			memcpy(&v, buf + e->at, 8);
			bound = e->base == B_NONE ? MAX_VALUE : size[e->base];
			if (e->base == B_GIL) {
				/* The layout has it relative to the GIL. */
				if (v < gil)
					goto bad;
				v -= gil;
				bound -= gil;
			}
			if (e->base == B_NONE) {
				if (v > bound)
					goto bad;
			} else {
				/* The whole field inside its struct, a
				 * pointer aligned: the readers load 8 bytes
				 * there, and the struct's end may be the
				 * end of the mapping. */
				bool aligned;
				unsigned w = field_width(e->id, &aligned);

				if (v >= bound || w > bound - v ||
				    (aligned && (v & 7)))
					goto bad;
			}
			val = (int32_t)v;
			if (l->v[e->id] != PYX_OFF_NONE && l->v[e->id] != val)
				note_diff(d, e->id, l->v[e->id], val);
			l->v[e->id] = val;
			d->filled++;
			continue;
bad:
			return pyx_err_set(PYX_E_LAYOUT, "_Py_DebugOffsets: %s = "
					   "%" PRIu64 " is not an offset in "
					   "its struct", pyx_layout_name(e->id),
					   v);
		}
	}
	/* Derived, not carried before 3.15: PyCompactUnicodeObject is
	 * PyASCIIObject plus utf8_length and utf8 (3.12+). */
	if (l->v[PYX_L_SZ_COMPACT] == PYX_OFF_NONE)
		l->v[PYX_L_SZ_COMPACT] = l->v[PYX_L_SZ_ASCII] + 16;
	*out = copy;
	return 0;
}

int pyx_layout_from_debug_offsets(struct pyx_layout *l, struct pyx_mem *mem,
				  pyx_addr_t runtime, int *filled,
				  int *mismatches)
{
	struct pyx_debug_offsets d;
	int err = pyx_debug_offsets_apply(l, mem, runtime, &d);

	*filled = d.filled;
	*mismatches = d.mismatches;
	for (size_t i = 0; i < d.ndiff; i++)
		pyx_warn("_Py_DebugOffsets says %s = %d, layout had %d",
			 pyx_layout_name(d.diff[i].id), d.diff[i].says,
			 d.diff[i].had);
	return err;
}
