/* Coroutines, generators, and asyncio's tasks and futures (asyncio.h).
 * Which version does what is in the ABI rows' constants (py->k) and the
 * layout; this file only reads. */
#include <stdio.h>
#include <string.h>

#include "asyncio.h"
#include "object.h"

/* The most a chain of base types may be: deeper is a corrupt chain. */
#define MAX_BASES 64
/* A value stack deeper than this is not a suspended generator's. */
#define MAX_STACK_SLOTS (1u << 20)
/* Sets are read in chunks of slots; a bigger table is not one we read. */
#define SET_MAX_SLOTS (1u << 22)
#define SET_CHUNK 256

/* ---- generators ------------------------------------------------------- */

/* 3.11+: the generator's embedded frame; its state says whether it lives
 * and, from 3.13, whether it waits in yield from / await. */
static int gen_iframe(struct pyx_python *py, pyx_addr_t gen,
		      struct pyx_gen_info *gi)
{
	const struct pyx_version_consts *k = &py->k;
	pyx_addr_t f = gen + (uint64_t)pyx_off(py, PYX_L_GEN_IFRAME);
	uint64_t st, ref = 0;
	int err;

	if ((err = pyx_read_field_n(py, gen, PYX_L_GEN_FRAME_STATE, 1, &st)))
		return err;
	if (!k->gen_frame_completed || (int8_t)st >= k->gen_frame_completed)
		return 0;
	gi->frame = f;
	if (k->gen_yf_by_state) {
		if ((int8_t)st < k->gen_yf_state_lo ||
		    (int8_t)st > k->gen_yf_state_hi)
			return 0;
	} else if (k->gen_resume_opcode) {
		uint64_t instr, next;

		/* 3.11, 3.12 (_PyGen_yf): the instruction after prev_instr
		 * resumes after a yield from / await (RESUME oparg >= 2). */
		if ((err = pyx_read_field(py, f, PYX_L_IF_INSTR, &instr)) ||
		    (err = pyx_mem_read(py->mem, instr + 2, &next, 2)))
			return err;
		next &= 0xffff;
		if (((next & 0xff) != (uint64_t)k->gen_resume_opcode &&
		     (next & 0xff) != (uint64_t)k->gen_resume_quick_opcode) ||
		    (next >> 8) < 2)
			return 0;
	} else {
		return 0;
	}
	if (pyx_layout_has(&py->layout, PYX_L_IF_STACKPOINTER)) {
		uint64_t sp, base = f + (uint64_t)pyx_off(py, PYX_L_IF_LOCALSPLUS);
		uint64_t slot = 8 * (uint64_t)(k->gen_yield_from_slot > 0
						? k->gen_yield_from_slot : 1);

		if (!pyx_layout_has(&py->layout, PYX_L_IF_LOCALSPLUS))
			return 0;
		if ((err = pyx_read_field(py, f, PYX_L_IF_STACKPOINTER, &sp)))
			return err;
		/* Within the frame's own stack, above its locals' start. */
		if (sp < base + slot || sp - base > 8ull * MAX_STACK_SLOTS ||
		    (sp & 7))
			return 0;
		if ((err = pyx_mem_read_u64(py->mem, sp - slot, &ref)))
			return err;
	} else if (pyx_layout_has(&py->layout, PYX_L_IF_STACKTOP) &&
		   pyx_layout_has(&py->layout, PYX_L_IF_LOCALSPLUS)) {
		uint64_t top;

		/* 3.11-3.13: stacktop counts slots from localsplus. */
		if ((err = pyx_read_field_n(py, f, PYX_L_IF_STACKTOP, 4, &top)))
			return err;
		if ((int32_t)top < 1 || top > MAX_STACK_SLOTS)
			return 0;
		if ((err = pyx_mem_read_u64(py->mem, f +
				(uint64_t)pyx_off(py, PYX_L_IF_LOCALSPLUS) +
				8 * (top - 1), &ref)))
			return err;
	}
	gi->delegate = pyx_abi_untag(py, ref);
	return 0;
}

/* 3.8-3.10: gi_frame, a frame object; the delegate is on top of its value
 * stack when the next instruction is YIELD_FROM (_PyGen_yf). */
static int gen_frame_object(struct pyx_python *py, pyx_addr_t gen,
			    struct pyx_gen_info *gi)
{
	struct pyx_abi_frame fr;
	uint64_t f, code, bytes, size, op = 0, top = 0, vs = 0;
	int err;

	if ((err = pyx_read_field(py, gen, PYX_L_GEN_FRAME, &f)) || !f)
		return err;
	gi->frame = f;
	if (!py->k.gen_yf_opcode || !pyx_layout_has(&py->layout, PYX_L_CO_CODE))
		return 0;
	if ((err = pyx_abi_step_frame(py, f, &fr)))
		return err;
	if (fr.kind != PYX_FRAME_PYTHON || fr.lasti < 0)
		return 0; /* not started */
	code = fr.code;
	if ((err = pyx_read_field(py, code, PYX_L_CO_CODE, &bytes)) ||
	    (err = pyx_read_field(py, bytes, PYX_L_OB_SIZE, &size)))
		return err;
	if ((uint64_t)fr.lasti + 2 >= size)
		return 0;
	if ((err = pyx_mem_read(py->mem, bytes + (uint64_t)pyx_off(py,
				PYX_L_BYTES_SVAL) + (uint64_t)fr.lasti + 2,
				&op, 1)))
		return err;
	if (op != (uint64_t)py->k.gen_yf_opcode)
		return 0;
	if (pyx_layout_has(&py->layout, PYX_L_FO_STACKTOP)) {
		if ((err = pyx_read_field(py, f, PYX_L_FO_STACKTOP, &top)))
			return err;
		if (pyx_layout_has(&py->layout, PYX_L_FO_VALUESTACK) &&
		    (err = pyx_read_field(py, f, PYX_L_FO_VALUESTACK, &vs)))
			return err;
	} else if (pyx_layout_has(&py->layout, PYX_L_FO_STACKDEPTH) &&
		   pyx_layout_has(&py->layout, PYX_L_FO_VALUESTACK)) {
		uint64_t depth;

		if ((err = pyx_read_field(py, f, PYX_L_FO_VALUESTACK, &vs)) ||
		    (err = pyx_read_field_n(py, f, PYX_L_FO_STACKDEPTH, 4,
					    &depth)))
			return err;
		if ((int32_t)depth < 1 || depth > MAX_STACK_SLOTS)
			return 0;
		top = vs + 8 * depth;
	}
	if (!top || (top & 7) || top <= vs || top - vs > 8ull * MAX_STACK_SLOTS)
		return 0;
	return pyx_mem_read_u64(py->mem, top - 8, &gi->delegate);
}

int pyx_gen_inspect(struct pyx_python *py, pyx_addr_t gen,
		    struct pyx_gen_info *gi)
{
	memset(gi, 0, sizeof(*gi));
	if (pyx_layout_has(&py->layout, PYX_L_GEN_IFRAME))
		return gen_iframe(py, gen, gi);
	if (pyx_layout_has(&py->layout, PYX_L_GEN_FRAME))
		return gen_frame_object(py, gen, gi);
	return pyx_err_set(PYX_E_LAYOUT, "layout has no PyGenObject.gi_frame "
			   "or gi_iframe");
}

/* ---- types ------------------------------------------------------------ */

/* tp_name as the type has it: "module.Name" for a static type, the bare
 * name for a heap type. */
static int type_name(struct pyx_python *py, pyx_addr_t type, char *buf,
		     size_t n)
{
	uint64_t p;
	size_t len = n - 1;
	int err;

	buf[0] = '\0';
	if ((err = pyx_read_field(py, type, PYX_L_TP_NAME, &p)))
		return err;
	if (!p)
		return pyx_err_set(PYX_E_BAD_MEMORY, "type " PYX_PRIaddr
				   " has no name", type);
	/* What is mapped of it: a short name may end a mapping. */
	while (len > 0 && !pyx_mem_valid(py->mem, p, len))
		len /= 2;
	if (!len || (err = pyx_mem_read(py->mem, p, buf, len)))
		return err ? err : pyx_err_set(PYX_E_BAD_MEMORY, "type name "
					       "not mapped");
	buf[len] = '\0';
	return 0;
}

static const char *short_name(const char *full)
{
	const char *dot = strrchr(full, '.');

	return dot ? dot + 1 : full;
}

bool pyx_type_named(struct pyx_python *py, pyx_addr_t type, const char *name)
{
	char buf[128];

	for (int i = 0; type && i < MAX_BASES; i++) {
		uint64_t base;

		if (type_name(py, type, buf, sizeof(buf)) == 0 &&
		    strcmp(short_name(buf), name) == 0)
			return true;
		if (pyx_read_field(py, type, PYX_L_TP_BASE, &base))
			break;
		type = base;
	}
	pyx_err_clear();
	return false;
}

int pyx_aw_kind_of_type(struct pyx_python *py, pyx_addr_t type,
			enum pyx_aw_kind *kind, char *name, size_t n)
{
	static const struct {
		const char *name;
		enum pyx_aw_kind kind;
	} exact[] = {
		{ "coroutine", PYX_AW_CORO },
		{ "generator", PYX_AW_GEN },
		{ "async_generator", PYX_AW_ASYNC_GEN },
		{ "async_generator_asend", PYX_AW_ASEND },
		{ "coroutine_wrapper", PYX_AW_CORO_WRAPPER },
		{ "_asyncio.FutureIter", PYX_AW_FUTURE_ITER },
	};
	bool c_task = false, c_fut = false, py_task = false, py_fut = false;
	char buf[128];
	int err;

	*kind = PYX_AW_OTHER;
	if (n)
		name[0] = '\0';
	if ((err = type_name(py, type, buf, sizeof(buf))))
		return err;
	if (n)
		snprintf(name, n, "%s", short_name(buf));
	for (size_t i = 0; i < PYX_ARRAY_SIZE(exact); i++)
		if (strcmp(buf, exact[i].name) == 0) {
			*kind = exact[i].kind;
			return 0;
		}
	/* The C types first: a subclass of _asyncio.Task may be named Task. */
	for (int i = 0; type && i < MAX_BASES; i++) {
		uint64_t base;

		if (i && (err = type_name(py, type, buf, sizeof(buf))))
			return err;
		c_task |= strcmp(buf, "_asyncio.Task") == 0;
		c_fut |= strcmp(buf, "_asyncio.Future") == 0;
		py_task |= strcmp(buf, "Task") == 0;
		py_fut |= strcmp(buf, "Future") == 0;
		if ((err = pyx_read_field(py, type, PYX_L_TP_BASE, &base)))
			return err;
		type = base;
	}
	*kind = c_task ? PYX_AW_C_TASK : c_fut ? PYX_AW_C_FUTURE
	      : py_task ? PYX_AW_PY_TASK : py_fut ? PYX_AW_PY_FUTURE
	      : PYX_AW_OTHER;
	return 0;
}

/* ---- futures and tasks ------------------------------------------------ */

static int read_opt(struct pyx_python *py, pyx_addr_t obj,
		    enum pyx_layout_id id, uint64_t *out)
{
	*out = 0;
	return pyx_layout_has(&py->layout, id) ? pyx_read_field(py, obj, id, out)
					       : 0;
}

/* An attribute of a pure-Python future: its instance's, else its class's
 * (Future._state is a class attribute until the state changes). */
static int py_attr(struct pyx_python *py, pyx_addr_t obj, const char *name,
		   pyx_addr_t *out)
{
	int err = pyx_obj_getattr_str(py, obj, name, out);
	pyx_addr_t tp;
	uint64_t mro, n;

	if (err != -PYX_E_NOT_SUPPORTED)
		return err;
	*out = 0;
	pyx_err_clear();
	if (pyx_obj_type(py, obj, &tp) ||
	    pyx_read_field(py, tp, PYX_L_TP_MRO, &mro) || !mro ||
	    !pyx_obj_is(py, mro, py->types.tuple, 0) ||
	    pyx_read_field(py, mro, PYX_L_OB_SIZE, &n)) {
		pyx_err_clear();
		return 0;
	}
	for (uint64_t i = 0; i < n && i < MAX_BASES; i++) {
		uint64_t t, dict;

		if (pyx_mem_read_u64(py->mem, mro + (uint64_t)pyx_off(py,
				PYX_L_TUPLE_ITEM) + 8 * i, &t) ||
		    pyx_read_field(py, t, PYX_L_TP_DICT, &dict) || !dict)
			continue;
		if (pyx_dict_get_str(py, dict, name, out) == 0)
			return 0;
	}
	*out = 0;
	pyx_err_clear();
	return 0;
}

int pyx_fut_read(struct pyx_python *py, pyx_addr_t obj, enum pyx_aw_kind kind,
		 struct pyx_fut_info *fi)
{
	bool task = pyx_aw_is_task(kind);
	uint64_t v;
	int err;

	memset(fi, 0, sizeof(*fi));
	fi->state = PYX_FUT_UNKNOWN;
	if (kind == PYX_AW_C_TASK || kind == PYX_AW_C_FUTURE) {
		if ((err = pyx_asyncio_layout(py)))
			return err;
		/* One macro lays out both (FutureObj_HEAD): a task's fields
		 * are the future's. */
		if ((err = pyx_read_field(py, obj, PYX_L_FUT_LOOP, &fi->loop)) ||
		    (err = pyx_read_field_n(py, obj, PYX_L_FUT_STATE, 4, &v)) ||
		    (err = pyx_read_field(py, obj, PYX_L_FUT_CALLBACK0,
					  &fi->callback0)) ||
		    (err = pyx_read_field(py, obj, PYX_L_FUT_CALLBACKS,
					  &fi->callbacks)) ||
		    (err = read_opt(py, obj, PYX_L_FUT_AWAITED_BY,
				    &fi->awaited_by)))
			return err;
		fi->state = v <= 2 ? (enum pyx_fut_state)v : PYX_FUT_UNKNOWN;
		if (fi->awaited_by) {
			if ((err = pyx_read_field_n(py, obj,
					PYX_L_FUT_AWAITED_BY_IS_SET, 1, &v)))
				return err;
			fi->awaited_by_is_set = v != 0;
		}
		if (!task)
			return 0;
		if ((err = pyx_read_field(py, obj, PYX_L_TASK_CORO, &fi->coro)) ||
		    (err = pyx_read_field(py, obj, PYX_L_TASK_FUT_WAITER,
					  &fi->waiter)) ||
		    (err = pyx_read_field(py, obj, PYX_L_TASK_NAME, &fi->name)))
			return err;
		return 0;
	}
	if (kind != PYX_AW_PY_TASK && kind != PYX_AW_PY_FUTURE)
		return pyx_err_set(PYX_E_BAD_MEMORY, "object " PYX_PRIaddr
				   " is not a future", obj);
	{
		pyx_addr_t state;

		if ((err = py_attr(py, obj, "_state", &state)) ||
		    (err = py_attr(py, obj, "_loop", &fi->loop)) ||
		    (err = py_attr(py, obj, "_callbacks", &fi->callbacks)))
			return err;
		if (state && pyx_str_equals(py, state, "PENDING"))
			fi->state = PYX_FUT_PENDING;
		else if (state && pyx_str_equals(py, state, "CANCELLED"))
			fi->state = PYX_FUT_CANCELLED;
		else if (state && pyx_str_equals(py, state, "FINISHED"))
			fi->state = PYX_FUT_FINISHED;
		/* 3.14+: future_add_to_awaited_by() keeps a set in the
		 * name-mangled attribute. */
		if ((err = py_attr(py, obj, "_Future__asyncio_awaited_by",
				   &fi->awaited_by)))
			return err;
		fi->awaited_by_is_set = fi->awaited_by != 0;
		if (!task)
			return 0;
		if ((err = py_attr(py, obj, "_coro", &fi->coro)) ||
		    (err = py_attr(py, obj, "_fut_waiter", &fi->waiter)) ||
		    (err = py_attr(py, obj, "_name", &fi->name)))
			return err;
	}
	return 0;
}

static const enum pyx_layout_id asyncio_ids[] = {
	PYX_L_TASK_LOOP, PYX_L_TASK_STATE, PYX_L_TASK_CALLBACK0,
	PYX_L_TASK_CALLBACKS, PYX_L_TASK_FUT_WAITER, PYX_L_TASK_CORO,
	PYX_L_TASK_NAME, PYX_L_TASK_AWAITED_BY, PYX_L_TASK_AWAITED_BY_IS_SET,
	PYX_L_TASK_NODE, PYX_L_FUT_LOOP, PYX_L_FUT_STATE, PYX_L_FUT_CALLBACK0,
	PYX_L_FUT_CALLBACKS, PYX_L_FUT_AWAITED_BY, PYX_L_FUT_AWAITED_BY_IS_SET,
	PYX_L_FUTITER_FUTURE,
};

int pyx_asyncio_layout(struct pyx_python *py)
{
	struct pyx_layout t;
	int err;

	if (pyx_layout_has(&py->layout, PYX_L_TASK_CORO) &&
	    pyx_layout_has(&py->layout, PYX_L_FUT_STATE))
		return 0;
	/* The table of another build of the same minor version: TaskObj is
	 * the same in all of them (no configure option changes it). */
	if ((err = pyx_layout_from_table(&t, py->info.major, py->info.minor,
					 py->info.micro, NULL)))
		return pyx_err_set(PYX_E_LAYOUT, "no layout of _asyncio's "
				   "TaskObj for Python %d.%d", py->info.major,
				   py->info.minor);
	for (size_t i = 0; i < PYX_ARRAY_SIZE(asyncio_ids); i++)
		if (!pyx_layout_has(&py->layout, asyncio_ids[i]))
			py->layout.v[asyncio_ids[i]] = t.v[asyncio_ids[i]];
	if (!pyx_layout_has(&py->layout, PYX_L_TASK_CORO) ||
	    !pyx_layout_has(&py->layout, PYX_L_FUT_STATE))
		return pyx_err_set(PYX_E_LAYOUT, "no layout of _asyncio's "
				   "TaskObj for Python %d.%d", py->info.major,
				   py->info.minor);
	return 0;
}

/* ---- containers ------------------------------------------------------- */

int pyx_seq_items(struct pyx_python *py, pyx_addr_t seq, pyx_addr_t *items,
		  size_t max, size_t *n)
{
	uint64_t size, base;
	size_t k;
	int err;

	*n = 0;
	if (pyx_obj_is(py, seq, py->types.tuple, 1UL << 26)) {
		base = seq + (uint64_t)pyx_off(py, PYX_L_TUPLE_ITEM);
	} else if (pyx_obj_is(py, seq, py->types.list, 1UL << 25)) {
		if ((err = pyx_read_field(py, seq, PYX_L_LIST_ITEM, &base)))
			return err;
	} else {
		return pyx_err_set(PYX_E_BAD_MEMORY, "object " PYX_PRIaddr
				   " is not a tuple or list", seq);
	}
	if ((err = pyx_read_field(py, seq, PYX_L_OB_SIZE, &size)))
		return err;
	if ((int64_t)size < 0 || size > (1ull << 32))
		return pyx_err_set(PYX_E_BAD_MEMORY, "sequence " PYX_PRIaddr
				   " has size %" PRIu64, seq, size);
	*n = (size_t)size;
	k = size < max ? (size_t)size : max;
	if (k && (err = pyx_mem_read(py->mem, base, items, k * 8)))
		return err;
	return 0;
}

int pyx_set_keys(struct pyx_python *py, pyx_addr_t set, pyx_addr_t *keys,
		 size_t max, size_t *n)
{
	uint64_t mask, table, entry = (uint64_t)pyx_off(py, PYX_L_SZ_SETENTRY);
	int err;

	*n = 0;
	if (!pyx_obj_is(py, set, py->types.set, 0) &&
	    !pyx_obj_is(py, set, py->types.frozenset, 0))
		return pyx_err_set(PYX_E_BAD_MEMORY, "object " PYX_PRIaddr
				   " is not a set", set);
	if ((err = pyx_read_field(py, set, PYX_L_SET_MASK, &mask)) ||
	    (err = pyx_read_field(py, set, PYX_L_SET_TABLE, &table)))
		return err;
	/* mask + 1 slots, a power of two: -1 would wrap to none. */
	if (mask >= SET_MAX_SLOTS || ((mask + 1) & mask) || entry < 16 ||
	    entry > 64)
		return pyx_err_set(PYX_E_BAD_MEMORY, "set " PYX_PRIaddr
				   " has mask %" PRIu64, set, mask);
	for (uint64_t i = 0; i <= mask && *n < max; i += SET_CHUNK) {
		uint8_t buf[SET_CHUNK * 64];
		uint64_t m = mask + 1 - i < SET_CHUNK ? mask + 1 - i : SET_CHUNK;

		if ((err = pyx_mem_read(py->mem, table + i * entry, buf,
					m * entry)))
			return err;
		for (uint64_t j = 0; j < m && *n < max; j++) {
			uint64_t key;

			memcpy(&key, buf + j * entry, 8);
			if (key && !(key & 7))
				keys[(*n)++] = key;
		}
	}
	return 0;
}
