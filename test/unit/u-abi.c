/* Unit tests of the ABI layer (lib/abi/abi.c, abi_py*.c): the table of
 * versions, each row's constants against the rules they replaced, the
 * operations that need no target, and the refusal of free-threaded builds
 * from each of its signals (no free-threaded build exists on this machine:
 * a fake _Py_DebugOffsets head, a layout with ob_tid, file names).
 */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <unistd.h>

#include "abi.h"
#include "pyxray/memory.h"
#include "reader.h"

#include "unit.h"

/* The constants as python.c's set_version_consts() set them before the
 * ABI rows existed: each row must say the same. */
static void old_consts(int v, struct pyx_version_consts *k)
{
	memset(k, 0, sizeof(*k));
	k->interp_frames = v >= 311;
	k->shim_frames = v >= 312;
	if (v >= 311)
		k->managed_dict_word = 3;
	if (v == 311)
		k->managed_values_word = 4;
	k->tagged_dict_or_values = v == 312;
	k->inline_values = v >= 313;
	k->int_min_digits = v >= 311;
	if (v == 311)
		k->preheader_flags = PYX_TPFLAGS_MANAGED_DICT;
	else if (v >= 312)
		k->preheader_flags = PYX_TPFLAGS_MANAGED_DICT |
				     PYX_TPFLAGS_MANAGED_WEAKREF;
	k->static_type_gc_head = v == 311 || v == 312;
	k->arena_size = v >= 310 ? 1u << 20 : 1u << 18;
	k->obmalloc_ptr = v >= 313;
	/* what heap code decided by version or layout until now */
	k->gen_frame_completed = v == 311 ? 1 : v == 312 ? 3 : v >= 313 ? 4 : 0;
	k->gc_in_runtime = v == 308;
	k->immortals = v >= 312;
	/* a suspended generator's delegate (lib/abi/asyncio.c) */
	k->gen_yf_opcode = v <= 310 ? 72 : 0;
	k->gen_resume_opcode = v == 311 || v == 312 ? 151 : 0;
	k->gen_resume_quick_opcode = v == 311 ? 150 : 0;
	k->gen_yf_by_state = v >= 313;
	k->gen_yf_state_lo = k->gen_yf_state_hi = v >= 313 ? -1 : 0;
	/* tracemalloc (lib/heap/tracemalloc.c) */
	k->tm_statics = v <= 311;
	k->tm_inline_entries = v == 308;
}

START_TEST(table_rows)
{
	int lo, hi;

	pyx_abi_range(&lo, &hi);
	ck_assert_int_eq(lo, 8);
	ck_assert_int_eq(hi, 15);
	for (int minor = 0; minor < 20; minor++) {
		const struct pyx_abi *a = pyx_abi_for(3, minor);

		if (minor < 8 || minor > 15) {
			ck_assert_msg(a == NULL, "3.%d has a row", minor);
			continue;
		}
		ck_assert_msg(a != NULL, "3.%d has no row", minor);
		ck_assert_int_eq(a->major, 3);
		ck_assert_int_eq(a->minor, minor);
		ck_assert_str_eq(a->family, minor <= 10 ? "py38" : minor <= 13
					    ? "py311" : "py314");
		ck_assert_ptr_nonnull(a->ops);
		ck_assert_ptr_nonnull(a->ops->first_frame);
		ck_assert_ptr_nonnull(a->ops->step_frame);
		ck_assert_ptr_nonnull(a->ops->gil_holder);
		ck_assert_ptr_nonnull(a->ops->untag);
		ck_assert_ptr_nonnull(a->ops->header_decode);
		ck_assert_ptr_nonnull(a->ops->long_digits);
		ck_assert_ptr_nonnull(a->ops->str_data);
		ck_assert_ptr_nonnull(a->ops->gc_lists);
		ck_assert_int_eq(a->linetable, minor <= 9 ? PYX_LT_LNOTAB
					       : minor == 10 ? PYX_LT_LINETABLE
							     : PYX_LT_LOCATIONS);
		if (minor <= 10)
			ck_assert_int_eq(a->lasti_unit, minor == 10 ? 2 : 1);
	}
	ck_assert_ptr_null(pyx_abi_for(2, 7));
	ck_assert_ptr_null(pyx_abi_for(4, 0));
	ck_assert_ptr_null(pyx_abi_for(0, 0));
}
END_TEST

START_TEST(row_consts)
{
	for (int minor = 8; minor <= 13; minor++) {
		struct pyx_version_consts want;
		const struct pyx_abi *a = pyx_abi_for(3, minor);

		old_consts(300 + minor, &want);
		ck_assert_msg(memcmp(&want, &a->k, sizeof(want)) == 0,
			      "3.%d: the row's constants differ from the old "
			      "rules", minor);
	}
}
END_TEST

START_TEST(select_sets_k)
{
	struct pyx_python *py = calloc(1, sizeof(*py));

	ck_assert_ptr_nonnull(py);
	py->info.major = 3;
	py->info.minor = 12;
	ck_assert_int_eq(pyx_abi_select(py), 0);
	ck_assert_ptr_eq(py->abi, pyx_abi_for(3, 12));
	ck_assert(memcmp(&py->k, &py->abi->k, sizeof(py->k)) == 0);
	py->info.minor = 16;
	ck_assert_int_eq(pyx_abi_select(py), -PYX_E_UNSUPPORTED_VERSION);
	ck_assert_msg(strstr(pyx_err_detail(), "3.8 to 3.15") != NULL, "%s",
		      pyx_err_detail());
	free(py);
}
END_TEST

START_TEST(untag_identity)
{
	/* 3.8-3.13 keep PyObject pointers in frames: no tag to strip. */
	for (int minor = 8; minor <= 13; minor++) {
		const struct pyx_abi *a = pyx_abi_for(3, minor);

		ck_assert_uint_eq(a->ops->untag(0x7f0012345678), 0x7f0012345678);
		ck_assert_uint_eq(a->ops->untag(0x7f0012345679), 0x7f0012345679);
		ck_assert_uint_eq(a->ops->untag(0), 0);
	}
}
END_TEST

static struct pyx_python *fake_py(int minor)
{
	struct pyx_python *py = calloc(1, sizeof(*py));

	ck_assert_ptr_nonnull(py);
	pyx_layout_init(&py->layout);
	py->info.major = 3;
	py->info.minor = minor;
	ck_assert_int_eq(pyx_abi_select(py), 0);
	return py;
}

START_TEST(header_decode)
{
	struct pyx_python *py = fake_py(12);
	struct pyx_obj_header h;
	uint64_t w[2] = { 0xffffffffu, 0x5000 };

	ck_assert_int_eq(py->abi->ops->header_decode(py, w, 2, &h),
			 -PYX_E_LAYOUT); /* no ob_type in the layout */
	py->layout.v[PYX_L_OB_TYPE] = 8;
	ck_assert_int_eq(py->abi->ops->header_decode(py, w, 1, &h),
			 -PYX_E_LAYOUT); /* ob_type past the words given */
	ck_assert_int_eq(py->abi->ops->header_decode(py, w, 2, &h), 0);
	ck_assert_uint_eq(h.type, 0x5000);
	ck_assert_uint_eq(h.refcnt, 0xffffffffu);
	ck_assert(h.immortal);
	w[0] = 3;
	ck_assert_int_eq(py->abi->ops->header_decode(py, w, 2, &h), 0);
	ck_assert(!h.immortal);
	free(py);

	/* 3.11 has no immortal objects: a huge count is a count. */
	py = fake_py(11);
	py->layout.v[PYX_L_OB_TYPE] = 8;
	w[0] = 0xffffffffu;
	ck_assert_int_eq(py->abi->ops->header_decode(py, w, 2, &h), 0);
	ck_assert(!h.immortal);
	free(py);
}
END_TEST

static void gc_layout(struct pyx_python *py)
{
	py->layout.v[PYX_L_GC_GENERATIONS] = 24;
	py->layout.v[PYX_L_GC_GENERATION0] = 96;
	py->layout.v[PYX_L_SZ_GC_GENERATION] = 24;
	py->layout.v[PYX_L_GC_PERMANENT] = 104;
	py->layout.v[PYX_L_GCH_NEXT] = 0;
}

START_TEST(gc_lists)
{
	struct pyx_python *py = fake_py(12);
	struct pyx_gc_lists g;

	ck_assert_int_eq(pyx_abi_gc_lists(py, 0x10000, &g), -PYX_E_LAYOUT);
	gc_layout(py);
	py->layout.v[PYX_L_IS_GC] = 0x1000;
	ck_assert_int_eq(pyx_abi_gc_lists(py, 0x10000, &g), 0);
	ck_assert_uint_eq(g.state, 0x11000);
	ck_assert_int_eq(g.ngenerations, 3);
	ck_assert_uint_eq(g.n, 4);
	for (int i = 0; i < 3; i++) {
		ck_assert_uint_eq(g.list[i].head, 0x11000 + 24 + 24 * i);
		ck_assert_int_eq(g.list[i].generation, i);
	}
	ck_assert_uint_eq(g.list[3].head, 0x11000 + 104);
	ck_assert_int_eq(g.list[3].generation, PYX_GC_PERMANENT);
	/* a corrupt layout cannot make more lists than there is room for */
	py->layout.v[PYX_L_GC_GENERATION0] = 24 + 24 * 100;
	ck_assert_int_eq(pyx_abi_gc_lists(py, 0x10000, &g), 0);
	ck_assert_uint_le(g.n, PYX_GC_MAX_LISTS);
	free(py);

	/* 3.8: one GC state in the runtime, whatever the interpreter */
	py = fake_py(8);
	gc_layout(py);
	py->info.runtime = 0x20000;
	ck_assert_int_eq(pyx_abi_gc_lists(py, 0x10000, &g), -PYX_E_LAYOUT);
	py->layout.v[PYX_L_RT_GC] = 344;
	ck_assert_int_eq(pyx_abi_gc_lists(py, 0x10000, &g), 0);
	ck_assert_uint_eq(g.state, 0x20000 + 344);
	ck_assert_uint_eq(g.n, 4);
	free(py);
}
END_TEST

/* ---- 3.14+ (abi_py314.c) ---------------------------------------------- */

START_TEST(rows_314)
{
	const struct pyx_abi *a14 = pyx_abi_for(3, 14), *a15 = pyx_abi_for(3, 15);

	ck_assert(a14->k.interp_frames && a14->k.shim_frames &&
		  a14->k.immortals && a14->k.inline_values && a14->k.stackrefs);
	ck_assert(a15->k.stackrefs && a15->k.base_frames && !a14->k.base_frames);
	/* 3.14: CREATED -3 .. EXECUTING 0, COMPLETED 1; 3.15: CREATED 0 ..
	 * EXECUTING 4, CLEARED 5 (no COMPLETED) */
	ck_assert_int_eq(a14->k.gen_frame_completed, 1);
	ck_assert_int_eq(a15->k.gen_frame_completed, 5);
	ck_assert_int_eq(a14->k.gen_yield_from_slot, 1);
	ck_assert_int_eq(a15->k.gen_yield_from_slot, 2);
	for (int minor = 8; minor <= 13; minor++)
		ck_assert(!pyx_abi_for(3, minor)->k.stackrefs);
}
END_TEST

START_TEST(untag_stackref)
{
	for (int minor = 14; minor <= 15; minor++) {
		const struct pyx_abi *a = pyx_abi_for(3, minor);

		/* tag 0 (counted), 1 (borrowed or immortal): the pointer */
		ck_assert_uint_eq(a->ops->untag(0x7f0012345670), 0x7f0012345670);
		ck_assert_uint_eq(a->ops->untag(0x7f0012345671), 0x7f0012345670);
		/* PyStackRef_NULL is 1; a tagged int (3) is no object */
		ck_assert_uint_eq(a->ops->untag(1), 0);
		ck_assert_uint_eq(a->ops->untag((42 << 2) | 3), 0);
		ck_assert_uint_eq(a->ops->untag(0), 0);
	}
}
END_TEST

START_TEST(header_decode_314)
{
	struct pyx_python *py = fake_py(14);
	struct pyx_obj_header h;
	/* None: ob_flags IMMORTAL|STATICALLY_ALLOCATED, ob_refcnt 0xC0000000 */
	uint64_t w[2] = { 0x00050000C0000000ull, 0x5000 };

	py->layout.v[PYX_L_OB_TYPE] = 8;
	ck_assert_int_eq(py->abi->ops->header_decode(py, w, 2, &h), 0);
	ck_assert_uint_eq(h.refcnt, 0xC0000000u);
	ck_assert(h.immortal);
	ck_assert_uint_eq(h.type, 0x5000);
	/* a mortal count: ob_flags and ob_overflow are not part of it */
	w[0] = 0x0000000100000007ull;
	ck_assert_int_eq(py->abi->ops->header_decode(py, w, 2, &h), 0);
	ck_assert_uint_eq(h.refcnt, 7);
	ck_assert(!h.immortal);
	free(py);
}
END_TEST

START_TEST(gc_lists_incremental)
{
	/* 3.14.0-3.14.4: young, old[2], permanent_generation */
	struct pyx_python *py = fake_py(14);
	struct pyx_gc_lists g;

	py->layout.v[PYX_L_GC_YOUNG] = 24;
	py->layout.v[PYX_L_SZ_GC_GENERATION] = 24;
	py->layout.v[PYX_L_GC_PERMANENT] = 96;
	py->layout.v[PYX_L_GCH_NEXT] = 0;
	py->layout.v[PYX_L_IS_GC] = 0x1000;
	ck_assert_int_eq(pyx_abi_gc_lists(py, 0x10000, &g), 0);
	ck_assert_int_eq(g.ngenerations, 3);
	ck_assert_uint_eq(g.n, 4);
	ck_assert_uint_eq(g.list[0].head, 0x11000 + 24);
	ck_assert_uint_eq(g.list[2].head, 0x11000 + 72);
	ck_assert_uint_eq(g.list[3].head, 0x11000 + 96);
	free(py);
}
END_TEST

/* _Py_DebugOffsets, read from this very process: a 3.14-format struct. */
static void put(uint8_t *b, size_t at, uint64_t v)
{
	memcpy(b + at, &v, 8);
}

static void fake_do_314(uint8_t *b, uint64_t version)
{
	memset(b, 0, 1024);
	memcpy(b, "xdebugpy", 8);
	put(b, 8, version);
	put(b, 24, 316616);  /* runtime_state.size */
	put(b, 32, 784);
	put(b, 40, 808);     /* interpreters_head */
	put(b, 48, 225864);  /* interpreter_state.size */
	put(b, 72, 7344);    /* threads_head */
	put(b, 128, 7784);   /* gil_runtime_state */
	put(b, 144, 7800);   /* locked */
	put(b, 152, 7792);   /* holder */
	put(b, 176, 832);    /* thread_state.size */
	put(b, 208, 72);     /* current_frame */
	put(b, 248, 88);     /* interpreter_frame.size */
	put(b, 288, 74);     /* owner */
	put(b, 312, 216);    /* code_object.size */
	put(b, 384, 208);    /* co_code_adaptive */
	put(b, 400, 16);
	put(b, 408, 8);      /* ob_type */
	/* the object groups: every offset 8, every size 1000 */
	for (size_t at = 416; at < 760; at += 8)
		put(b, at, 8);
	for (size_t i = 0; i < 10; i++)
		put(b, (size_t[]){ 416, 448, 472, 496, 528, 568, 592, 616, 648,
				   664 }[i], 1000);
	put(b, 448, 40);     /* tuple_object.size */
	put(b, 456, 32);     /* ob_item */
	put(b, 648, 264);    /* gc.size */
}

/* The memory layer caches pages: each read sees the bytes as they are. */
static int apply_do(struct pyx_layout *l, struct pyx_mem *mem, uint8_t *b,
		    struct pyx_debug_offsets *d)
{
	pyx_mem_invalidate(mem);
	return pyx_debug_offsets_apply(l, mem, (pyx_addr_t)b, d);
}

START_TEST(debug_offsets_314)
{
	static uint8_t b[1024];
	struct pyx_mem *mem;
	struct pyx_layout l;
	struct pyx_debug_offsets d;

	ck_assert_int_eq(pyx_mem_new_pid(getpid(), &mem), 0);
	fake_do_314(b, 0x030e0af0);
	pyx_layout_init(&l);
	ck_assert_int_eq(apply_do(&l, mem, b, &d), 0);
	ck_assert_int_eq(d.format_minor, 14);
	ck_assert(!d.newer);
	ck_assert_uint_eq(d.runtime_size, 316616);
	ck_assert_uint_eq(d.gc_size, 264);
	ck_assert_int_eq(l.v[PYX_L_RT_INTERP_HEAD], 808);
	ck_assert_int_eq(l.v[PYX_L_IS_TSTATE_HEAD], 7344);
	ck_assert_int_eq(l.v[PYX_L_GIL_LOCKED], 16);
	ck_assert_int_eq(l.v[PYX_L_GIL_LAST_HOLDER], 8);
	ck_assert_int_eq(l.v[PYX_L_TS_CURRENT_FRAME], 72);
	ck_assert_int_eq(l.v[PYX_L_IF_OWNER], 74);
	ck_assert_int_eq(l.v[PYX_L_CO_CODE_ADAPTIVE], 208);
	ck_assert_int_eq(l.v[PYX_L_TUPLE_ITEM], 32);
	ck_assert_int_eq(l.v[PYX_L_SZ_GC_STATE], 264);
	ck_assert_int_eq(d.mismatches, 0);

	/* against a layout that says otherwise: counted, and named */
	l.v[PYX_L_TS_CURRENT_FRAME] = 64;
	ck_assert_int_eq(apply_do(&l, mem, b, &d), 0);
	ck_assert_int_eq(d.mismatches, 1);
	ck_assert_int_eq(d.diff[0].id, PYX_L_TS_CURRENT_FRAME);
	ck_assert_int_eq(d.diff[0].had, 64);
	ck_assert_int_eq(d.diff[0].says, 72);

	/* newer than known: read in the newest format (3.15's) */
	put(b, 8, 0x031000f0);
	pyx_layout_init(&l);
	apply_do(&l, mem, b, &d);
	ck_assert(d.newer);
	ck_assert_int_eq(d.format_minor, 15);

	/* an offset past its struct: refused, and the layout untouched */
	fake_do_314(b, 0x030e0af0);
	put(b, 208, 832);    /* current_frame at thread_state.size */
	pyx_layout_init(&l);
	ck_assert_int_eq(apply_do(&l, mem, b, &d),
			 -PYX_E_LAYOUT);
	ck_assert_int_eq(l.v[PYX_L_RT_INTERP_HEAD], PYX_OFF_NONE);
	/* a pointer field whose 8 bytes end past its struct (it starts
	 * inside: 828 < 832) */
	fake_do_314(b, 0x030e0af0);
	put(b, 208, 828);
	pyx_layout_init(&l);
	ck_assert_int_eq(apply_do(&l, mem, b, &d), -PYX_E_LAYOUT);
	ck_assert_int_eq(l.v[PYX_L_RT_INTERP_HEAD], PYX_OFF_NONE);
	/* a pointer field not 8-byte aligned */
	fake_do_314(b, 0x030e0af0);
	put(b, 208, 76);
	ck_assert_int_eq(apply_do(&l, mem, b, &d), -PYX_E_LAYOUT);
	/* a 4-byte field may end at its struct's end, not past it; a 1-byte
	 * one (frame owner) need not be aligned */
	fake_do_314(b, 0x030e0af0);
	put(b, 352, 212);    /* co_firstlineno: 212 + 4 == 216 */
	ck_assert_int_eq(apply_do(&l, mem, b, &d), 0);
	put(b, 352, 213);
	ck_assert_int_eq(apply_do(&l, mem, b, &d), -PYX_E_LAYOUT);
	/* a GIL member before the GIL */
	fake_do_314(b, 0x030e0af0);
	put(b, 144, 7000);
	ck_assert_int_eq(apply_do(&l, mem, b, &d),
			 -PYX_E_LAYOUT);
	/* a struct size of zero or absurd */
	fake_do_314(b, 0x030e0af0);
	put(b, 176, 0);
	ck_assert_int_eq(apply_do(&l, mem, b, &d),
			 -PYX_E_LAYOUT);
	/* free-threaded, or no cookie, or a version before 3.13 */
	fake_do_314(b, 0x030e0af0);
	put(b, 16, 1);
	ck_assert_int_eq(apply_do(&l, mem, b, &d),
			 -PYX_E_UNSUPPORTED_VERSION);
	fake_do_314(b, 0x030c01f0);
	ck_assert_int_eq(apply_do(&l, mem, b, &d),
			 -PYX_E_NOT_SUPPORTED);
	fake_do_314(b, 0x030e0af0);
	b[0] = 'X';
	ck_assert_int_eq(apply_do(&l, mem, b, &d),
			 -PYX_E_NOT_SUPPORTED);
	pyx_mem_free(mem);
}
END_TEST

/* ---- free-threaded builds --------------------------------------------- */

#define FT_DETAIL "free-threaded build (Py_GIL_DISABLED): not supported yet"

static void debug_offsets_head(uint8_t *b, uint64_t version, uint64_t ft)
{
	memcpy(b, "xdebugpy", 8);
	memcpy(b + 8, &version, 8);
	memcpy(b + 16, &ft, 8);
}

static void assert_refused(const struct pyx_build_signals *s, const char *why)
{
	ck_assert_int_eq(pyx_abi_check_free_threaded(s),
			 -PYX_E_UNSUPPORTED_VERSION);
	ck_assert_msg(strstr(pyx_err_detail(), FT_DETAIL) != NULL, "%s",
		      pyx_err_detail());
	ck_assert_msg(strstr(pyx_err_detail(), why) != NULL, "%s",
		      pyx_err_detail());
}

START_TEST(ft_debug_offsets)
{
	uint8_t b[PYX_DEBUG_OFFSETS_HEAD];
	struct pyx_build_signals s = { .runtime_head = b,
				       .runtime_head_len = sizeof(b),
				       .binary = "/usr/lib/libpython3.13.so.1.0" };

	debug_offsets_head(b, 0x030d00f0, 1);
	assert_refused(&s, "free_threaded");
	debug_offsets_head(b, 0x030e0af0, 1); /* 3.14t */
	assert_refused(&s, "free_threaded");
	debug_offsets_head(b, 0x030d00f0, 0);
	ck_assert_int_eq(pyx_abi_check_free_threaded(&s), 0);
	/* the cookie alone, with no 3.13+ version beside it, is not believed */
	debug_offsets_head(b, 0x030c01f0, 1);
	ck_assert_int_eq(pyx_abi_check_free_threaded(&s), 0);
	debug_offsets_head(b, 0, 1);
	ck_assert_int_eq(pyx_abi_check_free_threaded(&s), 0);
	/* no cookie: a 3.8-3.12 runtime */
	debug_offsets_head(b, 0x030d00f0, 1);
	b[0] = 'X';
	ck_assert_int_eq(pyx_abi_check_free_threaded(&s), 0);
	/* too short to hold free_threaded */
	debug_offsets_head(b, 0x030d00f0, 1);
	s.runtime_head_len = 16;
	ck_assert_int_eq(pyx_abi_check_free_threaded(&s), 0);
}
END_TEST

START_TEST(ft_layout)
{
	struct pyx_layout l;
	struct pyx_build_signals s = { .layout = &l,
				       .binary = "/usr/bin/python3.13" };

	pyx_layout_init(&l);
	l.v[PYX_L_OB_TYPE] = 8;
	ck_assert_int_eq(pyx_abi_check_free_threaded(&s), 0);
	l.v[PYX_L_OB_TID] = 0; /* free-threaded: ob_tid first, ob_type at 24 */
	l.v[PYX_L_OB_TYPE] = 24;
	assert_refused(&s, "ob_tid");
}
END_TEST

START_TEST(ft_names)
{
	static const struct {
		const char *path;
		bool ft;
	} cases[] = {
		{ "/usr/lib/x86_64-linux-gnu/libpython3.13t.so.1.0", true },
		{ "/usr/bin/python3.13t", true },
		{ "/opt/py/bin/python3.14t", true },
		{ "/usr/bin/python3.13", false },
		{ "/usr/lib/libpython3.13.so.1.0", false },
		{ "/usr/bin/python3.11t", false }, /* no such build before 3.13 */
		{ "/usr/bin/pythonista", false },
		{ "/usr/bin/python3", false },
		{ "python3.13t", true },
		{ "", false },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct pyx_build_signals s = { .binary = cases[i].path };

		if (cases[i].ft)
			assert_refused(&s, "'t'");
		else
			ck_assert_msg(pyx_abi_check_free_threaded(&s) == 0,
				      "%s: refused", cases[i].path);
	}
	/* nothing at all: nothing to refuse */
	ck_assert_int_eq(pyx_abi_check_free_threaded(
				 &(struct pyx_build_signals){ 0 }), 0);
}
END_TEST

START_TEST(ft_facts)
{
	struct pyx_python_facts f;
	struct pyx_python *py = NULL;

	memset(&f, 0, sizeof(f));
	f.major = 3;
	f.minor = 13;
	pyx_layout_init(&f.layout);
	f.layout.v[PYX_L_OB_TID] = 0;
	ck_assert_int_eq(pyx_python_open_facts(NULL, &f, &py),
			 -PYX_E_UNSUPPORTED_VERSION);
	ck_assert_ptr_null(py);
	ck_assert(strstr(pyx_err_detail(), FT_DETAIL) != NULL);
	f.minor = 16;
	f.layout.v[PYX_L_OB_TID] = PYX_OFF_NONE;
	ck_assert_int_eq(pyx_python_open_facts(NULL, &f, &py),
			 -PYX_E_UNSUPPORTED_VERSION);
}
END_TEST

static Suite *abi_suite(void)
{
	Suite *s = suite_create("abi");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, table_rows);
	tcase_add_test(tc, row_consts);
	tcase_add_test(tc, select_sets_k);
	tcase_add_test(tc, untag_identity);
	tcase_add_test(tc, header_decode);
	tcase_add_test(tc, rows_314);
	tcase_add_test(tc, untag_stackref);
	tcase_add_test(tc, header_decode_314);
	tcase_add_test(tc, gc_lists_incremental);
	tcase_add_test(tc, debug_offsets_314);
	tcase_add_test(tc, gc_lists);
	tcase_add_test(tc, ft_debug_offsets);
	tcase_add_test(tc, ft_layout);
	tcase_add_test(tc, ft_names);
	tcase_add_test(tc, ft_facts);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return pyx_unit_run(abi_suite());
}
