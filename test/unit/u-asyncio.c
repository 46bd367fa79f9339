/* Unit tests of lib/abi/asyncio.c and lib/stacks/locals.c's rendering on
 * fake objects in a buffer (the "target"), read through a memory source
 * that serves only that buffer, with each version's built-in layout table.
 * The readers must refuse what is corrupt (a set mask of -1, a sequence
 * longer than its mapping, a value stack pointer far off) without reading
 * outside the buffer, and render what is sound as Python's repr() does. */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "asyncio.h"
#include "pyxray/layout.h"
#include "pyxray/memory.h"
#include "walk.h"

#include "unit.h"
#include "fake_target.h"

static struct pyx_python *fake_py(int minor)
{
	return fake_python(minor, 0);
}

static void free_py(struct pyx_python *py)
{
	fake_python_free(py);
}

static uint64_t *fake_type(struct pyx_python *py, const char *name,
			   uint64_t flags)
{
	uint64_t *tp = take(128), *s = take(8);

	strcpy((char *)s, name);
	put_n(py, tp, PYX_L_OB_TYPE, py->types.type, 8);
	put_n(py, tp, PYX_L_TP_NAME, A(s), 8);
	put_n(py, tp, PYX_L_TP_FLAGS, flags, 8);
	return tp;
}

START_TEST(set_and_seq)
{
	struct pyx_python *py = fake_py(8 + _i);
	uint64_t *tp = fake_type(py, "set", 0), *ltp = fake_type(py, "list", 0);
	uint64_t *set = take(32), *key = take(4), *list = take(8), *items = take(4);
	int32_t small = py->layout.v[PYX_L_SET_SMALLTABLE];
	pyx_addr_t out[8];
	size_t n;

	py->types.set = A(tp);
	py->types.list = A(ltp);
	put_n(py, set, PYX_L_OB_TYPE, A(tp), 8);
	put_n(py, set, PYX_L_SET_TABLE, A(set) + (uint64_t)small, 8);
	set[small / 8 + 2 * 3] = A(key);
	put_n(py, set, PYX_L_SET_MASK, 7, 8);
	pyx_mem_invalidate(py->mem);
	ck_assert_int_eq(pyx_set_keys(py, A(set), out, 8, &n), 0);
	ck_assert_uint_eq(n, 1);
	ck_assert_uint_eq(out[0], A(key));
	/* mask -1 (mask + 1 wraps), not a power of two, far too big */
	put_n(py, set, PYX_L_SET_MASK, UINT64_MAX, 8);
	pyx_mem_invalidate(py->mem);
	ck_assert_int_eq(pyx_set_keys(py, A(set), out, 8, &n), -PYX_E_BAD_MEMORY);
	put_n(py, set, PYX_L_SET_MASK, 6, 8);
	pyx_mem_invalidate(py->mem);
	ck_assert_int_eq(pyx_set_keys(py, A(set), out, 8, &n), -PYX_E_BAD_MEMORY);
	put_n(py, set, PYX_L_SET_MASK, (UINT64_C(1) << 40) - 1, 8);
	pyx_mem_invalidate(py->mem);
	ck_assert_int_eq(pyx_set_keys(py, A(set), out, 8, &n), -PYX_E_BAD_MEMORY);
	/* a table at the end of the mapping: refused by the read, no more */
	put_n(py, set, PYX_L_SET_MASK, 1023, 8);
	put_n(py, set, PYX_L_SET_TABLE, A(arena) + sizeof(arena) - 64, 8);
	pyx_mem_invalidate(py->mem);
	ck_assert_int_ne(pyx_set_keys(py, A(set), out, 8, &n), 0);
	/* a list: a size read from the target bounds nothing we copy */
	put_n(py, list, PYX_L_OB_TYPE, A(ltp), 8);
	put_n(py, list, PYX_L_LIST_ITEM, A(items), 8);
	items[0] = A(key);
	items[1] = A(set);
	put_n(py, list, PYX_L_OB_SIZE, 2, 8);
	pyx_mem_invalidate(py->mem);
	ck_assert_int_eq(pyx_seq_items(py, A(list), out, 8, &n), 0);
	ck_assert_uint_eq(n, 2);
	ck_assert_uint_eq(out[1], A(set));
	ck_assert_int_eq(pyx_seq_items(py, A(list), out, 1, &n), 0);
	ck_assert_uint_eq(n, 2); /* one copied, two said */
	put_n(py, list, PYX_L_OB_SIZE, UINT64_MAX, 8);
	pyx_mem_invalidate(py->mem);
	ck_assert_int_eq(pyx_seq_items(py, A(list), out, 8, &n),
			 -PYX_E_BAD_MEMORY);
	put_n(py, list, PYX_L_OB_SIZE, UINT64_C(1) << 40, 8);
	pyx_mem_invalidate(py->mem);
	ck_assert_int_eq(pyx_seq_items(py, A(list), out, 8, &n),
			 -PYX_E_BAD_MEMORY);
	free_py(py);
}
END_TEST

/* A suspended coroutine's delegate: only from its own value stack, and
 * none from a stack pointer that is far off. */
START_TEST(gen_delegate)
{
	int minor = 11 + _i;
	struct pyx_python *py = fake_py(minor);
	uint8_t *gen = (uint8_t *)take(512);
	uint64_t *awaited = take(4);
	int32_t ifr = py->layout.v[PYX_L_GEN_IFRAME];
	int32_t lp = py->layout.v[PYX_L_IF_LOCALSPLUS];
	struct pyx_gen_info gi;
	uint8_t *frame = gen + ifr;
	uint64_t *slots = (uint64_t *)(frame + lp);
	int8_t yf = (int8_t)(py->k.gen_yf_by_state ? py->k.gen_yf_state_lo : -1);

	ck_assert_int_ne(ifr, PYX_OFF_NONE);
	/* two locals, then the awaited object on top of the stack */
	slots[2] = A(awaited);
	/* 3.15: stackpointer[-2] is the delegate, [-1] PyStackRef_NULL */
	slots[3] = minor >= 15 ? 1 : 0;
	if (pyx_layout_has(&py->layout, PYX_L_IF_STACKPOINTER))
		put_n(py, frame, PYX_L_IF_STACKPOINTER,
		    A(&slots[minor >= 15 ? 4 : 3]), 8);
	else
		put_n(py, frame, PYX_L_IF_STACKTOP, 3, 4);
	put_n(py, gen, PYX_L_GEN_FRAME_STATE, (uint8_t)yf, 1);
	if (py->k.gen_resume_opcode) {
		/* prev_instr, then RESUME 3 (after await) */
		uint8_t *code = (uint8_t *)take(8);

		code[2] = (uint8_t)py->k.gen_resume_opcode;
		code[3] = 3;
		put_n(py, frame, PYX_L_IF_INSTR, A(code), 8);
	}
	pyx_mem_invalidate(py->mem);
	ck_assert_int_eq(pyx_gen_inspect(py, A(gen), &gi), 0);
	ck_assert_uint_eq(gi.frame, A(frame));
	ck_assert_uint_eq(gi.delegate, A(awaited));
	/* a stack pointer or top far away: no delegate, no read outside */
	if (pyx_layout_has(&py->layout, PYX_L_IF_STACKPOINTER))
		put_n(py, frame, PYX_L_IF_STACKPOINTER, A(frame) + (1ull << 40), 8);
	else
		put_n(py, frame, PYX_L_IF_STACKTOP, 0x7fffffff, 4);
	pyx_mem_invalidate(py->mem);
	ck_assert_int_eq(pyx_gen_inspect(py, A(gen), &gi), 0);
	ck_assert_uint_eq(gi.delegate, 0);
	ck_assert_uint_eq(reads_outside, 0);
	/* finished: no frame */
	put_n(py, gen, PYX_L_GEN_FRAME_STATE, (uint8_t)py->k.gen_frame_completed, 1);
	pyx_mem_invalidate(py->mem);
	ck_assert_int_eq(pyx_gen_inspect(py, A(gen), &gi), 0);
	ck_assert_uint_eq(gi.frame, 0);
	free_py(py);
}
END_TEST

static const char *render(struct pyx_python *py, const void *obj)
{
	static char repr[160];
	char type[64];

	pyx_mem_invalidate(py->mem);
	ck_assert_int_eq(pyx_value_render(py, A(obj), type, sizeof(type), repr,
					  sizeof(repr)), 0);
	return repr;
}

static uint64_t *fake_float(struct pyx_python *py, uint64_t *tp, double v)
{
	uint64_t *f = take(4);

	put_n(py, f, PYX_L_OB_TYPE, A(tp), 8);
	memcpy((uint8_t *)f + py->layout.v[PYX_L_FLOAT_VAL], &v, 8);
	return f;
}

START_TEST(reprs)
{
	struct pyx_python *py = fake_py(12);
	uint64_t *ftp = fake_type(py, "float", 0);
	uint64_t *stp = fake_type(py, "str", 0);
	uint64_t *otp = fake_type(py, "mod.Thing", 0);
	uint64_t *s = take(16), *o = take(4);
	static const struct {
		double v;
		const char *want;
	} floats[] = {
		{ 0.1, "0.1" }, { 1e-7, "1e-07" }, { 1e16, "1e+16" },
		{ 1e15, "1000000000000000.0" }, { 3.0, "3.0" }, { -2.5, "-2.5" },
		{ 0.0001, "0.0001" }, { 123456789.125, "123456789.125" },
		{ 1.5e300, "1.5e+300" },
	};

	py->types.float_ = A(ftp);
	py->types.str = A(stp);
	for (size_t i = 0; i < PYX_ARRAY_SIZE(floats); i++)
		ck_assert_str_eq(render(py, fake_float(py, ftp, floats[i].v)),
				 floats[i].want);
	ck_assert_str_eq(render(py, fake_float(py, ftp, NAN)), "nan");
	ck_assert_str_eq(render(py, fake_float(py, ftp, -INFINITY)), "-inf");
	/* a compact ASCII str: quotes, a newline and a C1 control escaped */
	put_n(py, s, PYX_L_OB_TYPE, A(stp), 8);
	put_n(py, s, PYX_L_STR_LENGTH, 7, 8);
	put_n(py, s, PYX_L_STR_STATE, (1u << 2) | (1u << 5), 4);
	memcpy((uint8_t *)s + py->layout.v[PYX_L_SZ_COMPACT], "a'\n\x85\"b\\", 7);
	ck_assert_str_eq(render(py, s), "'a\\'\\n\\x85\"b\\\\'");
	/* a str that says it is 2^40 characters long: cut, never read whole */
	put_n(py, s, PYX_L_STR_LENGTH, UINT64_C(1) << 40, 8);
	{
		const char *r = render(py, s);

		ck_assert(strncmp(r, "'a\\'\\n\\x85", 10) == 0);
		ck_assert_str_eq(r + strlen(r) - 3, "...");
	}
	/* and 2^41: refused */
	put_n(py, s, PYX_L_STR_LENGTH, UINT64_C(1) << 41, 8);
	pyx_mem_invalidate(py->mem);
	ck_assert_int_eq(pyx_value_render(py, A(s), (char[64]){ 0 }, 64,
					  (char[160]){ 0 }, 160), -PYX_E_BAD_MEMORY);
	put_n(py, o, PYX_L_OB_TYPE, A(otp), 8);
	ck_assert(strncmp(render(py, o), "<Thing at 0x", 12) == 0);
	ck_assert_uint_eq(reads_outside, 0);
	free_py(py);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("asyncio");
	TCase *tc = tcase_create("hostile");

	tcase_add_loop_test(tc, set_and_seq, 0, 8);    /* 3.8 ... 3.15 */
	tcase_add_loop_test(tc, gen_delegate, 0, 5);   /* 3.11 ... 3.15 */
	tcase_add_test(tc, reprs);
	suite_add_tcase(s, tc);
	return pyx_unit_run(s);
}
