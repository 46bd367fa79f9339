/* sys.getsizeof, from outside: each type's __sizeof__ plus the pre-header
 * (PyGC_Head, managed dict and weakref words) sys.getsizeof adds.
 *
 * The rules are CPython's own (the __sizeof__ methods in Objects/,
 * Python/sysmodule.c _PySys_GetSizeOf); what differs between versions
 * comes from the layout (struct sizes, fields present) or from
 * struct pyx_version_consts, never from a version test here.  Types with a
 * __sizeof__ of their own that are not handled (io buffers, OrderedDict,
 * classes defining __sizeof__ in Python) get the default rule,
 * tp_basicsize + |ob_size| * tp_itemsize.
 */
#include <string.h>

#include "sizes.h"

#define PTR 8u
/* A count or size read from the target past this is corrupt: no object
 * is a TiB, and below it no rule's arithmetic can wrap. */
#define MAX_FIELD (UINT64_C(1) << 40)

void pyx_size_rules_init(struct pyx_size_rules *r, const struct pyx_python *py)
{
	const struct pyx_layout *l = &py->layout;
	int32_t block = l->v[PYX_L_SZ_DEQUE_BLOCK];

	memset(r, 0, sizeof(*r));
	r->gc_head = (uint32_t)l->v[PYX_L_SZ_GC_HEAD];
	r->preheader_flags = py->k.preheader_flags;
	r->static_type_gc_head = py->k.static_type_gc_head;
	r->int_min_digits = py->k.int_min_digits;
	r->long_digit_off = (uint32_t)l->v[PYX_L_LONG_DIGIT];
	r->long_tag = pyx_layout_has(l, PYX_L_LONG_TAG);
	r->sz_ascii = (uint32_t)l->v[PYX_L_SZ_ASCII];
	r->sz_compact = (uint32_t)l->v[PYX_L_SZ_COMPACT];
	r->sz_unicode = (uint32_t)l->v[PYX_L_SZ_UNICODE];
	r->wstr = pyx_layout_has(l, PYX_L_STR_WSTR);
	r->sz_type = (uint32_t)l->v[PYX_L_SZ_TYPE];
	r->sz_heap_type = (uint32_t)l->v[PYX_L_SZ_HEAP_TYPE];
	r->dk_header = (uint32_t)l->v[PYX_L_DK_INDICES];
	/* 3.11 made the keys table log2-sized and split values as long as
	 * the shared keys' nentries + usable. */
	r->split_usable_from_keys = pyx_layout_has(l, PYX_L_DK_LOG2_SIZE);
	r->sz_setentry = (uint32_t)l->v[PYX_L_SZ_SETENTRY];
	/* block = leftlink, data[BLOCKLEN], rightlink */
	if (block != PYX_OFF_NONE && block > 16) {
		r->sz_block = (uint32_t)block;
		r->blocklen = ((uint32_t)block - 2 * PTR) / PTR;
	}
}

uint64_t pyx_size_preheader(const struct pyx_size_rules *r, uint64_t tp_flags,
			    bool is_type_object, uint64_t obj_flags,
			    bool exact_type)
{
	if (is_type_object && !(obj_flags & PYX_TPFLAGS_HEAPTYPE) &&
	    !r->static_type_gc_head) {
		/* <= 3.10: type's tp_is_gc says a static type is no GC
		 * object; 3.13+: sys.getsizeof skips the pre-header of a
		 * static type (whose type is exactly type). */
		if (!r->preheader_flags || exact_type)
			return 0;
	}
	return ((tp_flags & PYX_TPFLAGS_HAVE_GC) ? r->gc_head : 0) +
	       ((tp_flags & r->preheader_flags) ? 2 * PTR : 0);
}

uint64_t pyx_size_var(uint64_t basicsize, uint64_t itemsize, int64_t ob_size)
{
	uint64_t n = ob_size < 0 ? -(uint64_t)ob_size : (uint64_t)ob_size;

	return basicsize + (itemsize ? n * itemsize : 0);
}

uint64_t pyx_size_list(uint64_t basicsize, uint64_t allocated)
{
	return basicsize + allocated * PTR;
}

uint64_t pyx_size_dict_keys(const struct pyx_size_rules *r,
			    const struct pyx_dict_keys *dk)
{
	/* USABLE_FRACTION(size) entries, whatever is in use. */
	return r->dk_header + dk->index_bytes + (2 * dk->size / 3) * dk->entry_size;
}

uint64_t pyx_size_dict(const struct pyx_size_rules *r, uint64_t basicsize,
		       bool split_values, const struct pyx_dict_keys *dk)
{
	uint64_t res = basicsize;

	if (split_values)
		res += (r->split_usable_from_keys ? dk->nentries + dk->usable
						  : 2 * dk->size / 3) * PTR;
	/* Shared keys are counted with the class (type.__sizeof__). */
	if (dk->refcnt == 1)
		res += pyx_size_dict_keys(r, dk);
	return res;
}

uint64_t pyx_size_set(const struct pyx_size_rules *r, uint64_t basicsize,
		      bool small_table, uint64_t mask)
{
	return basicsize + (small_table ? 0 : (mask + 1) * r->sz_setentry);
}

uint64_t pyx_size_str(const struct pyx_size_rules *r, uint32_t state,
		      uint64_t length, bool legacy_data, bool utf8_extra,
		      uint64_t utf8_length, bool wstr_extra,
		      uint64_t wstr_length)
{
	unsigned kind = (state >> 2) & 7;
	bool compact = state & (1u << 5), ascii = state & (1u << 6);
	uint64_t size;

	if (compact && ascii)
		size = r->sz_ascii + length + 1;
	else if (compact)
		size = r->sz_compact + (length + 1) * kind;
	else
		size = r->sz_unicode + (legacy_data ? (length + 1) * kind : 0);
	if (wstr_extra)
		size += (wstr_length + 1) * 4; /* wchar_t */
	if (utf8_extra)
		size += utf8_length + 1;
	return size;
}

uint64_t pyx_size_int(const struct pyx_size_rules *r, uint64_t ndigits)
{
	if (ndigits < (uint64_t)r->int_min_digits)
		ndigits = (uint64_t)r->int_min_digits;
	return r->long_digit_off + ndigits * 4;
}

uint64_t pyx_size_deque(const struct pyx_size_rules *r, uint64_t basicsize,
			uint64_t leftindex, uint64_t len)
{
	if (!r->blocklen)
		return basicsize;
	/* deque_sizeof: the blocks from leftindex to the last item. */
	return basicsize + (leftindex + len + r->blocklen - 1) / r->blocklen *
				   r->sz_block;
}

uint64_t pyx_size_type(const struct pyx_size_rules *r, bool heap,
		       uint64_t cached_keys_size)
{
	return heap ? r->sz_heap_type + cached_keys_size : r->sz_type;
}

/* ---- reading what the rules need ------------------------------------- */

/* The first VIEW bytes of the object being sized, from the heap copy:
 * most fields are read from there without a look-up each. */
#define VIEW 64
struct view {
	struct pyx_python *py;
	pyx_addr_t addr;
	const uint8_t *p; /* NULL: read field by field */
};

static int rd(const struct view *w, pyx_addr_t obj, enum pyx_layout_id id,
	      size_t n, uint64_t *v)
{
	int32_t off = pyx_off(w->py, id);

	if (w->p && obj == w->addr && off >= 0 && (size_t)off + n <= VIEW) {
		*v = 0;
		memcpy(v, w->p + off, n);
		return 0;
	}
	return pyx_read_field_n(w->py, obj, id, n, v);
}

static int str_size(const struct view *py, const struct pyx_size_rules *r,
		    pyx_addr_t obj, uint64_t *out)
{
	uint64_t state, len, data = 0, utf8 = 0, utf8_len = 0, wstr = 0,
		 wstr_len = 0;
	bool compact, ascii, utf8_extra = false, wstr_extra = false;
	int err;

	if ((err = rd(py, obj, PYX_L_STR_STATE, 4, &state)) ||
	    (err = rd(py, obj, PYX_L_STR_LENGTH, 8, &len)))
		return err;
	compact = state & (1u << 5);
	ascii = state & (1u << 6);
	if (len > MAX_FIELD)
		return pyx_err_set(PYX_E_BAD_MEMORY, "str " PYX_PRIaddr
				   " has length %" PRIu64, obj, len);
	if (compact)
		data = obj + (ascii ? r->sz_ascii : r->sz_compact);
	else if ((err = rd(py, obj, PYX_L_STR_LEGACY_DATA, 8, &data)))
		return err;
	if (!(compact && ascii)) {
		if ((err = rd(py, obj, PYX_L_STR_UTF8, 8, &utf8)))
			return err;
		if (utf8 && utf8 != data) {
			utf8_extra = true;
			if ((err = rd(py, obj, PYX_L_STR_UTF8_LENGTH, 8, &utf8_len)))
				return err;
			if (utf8_len > MAX_FIELD)
				return pyx_err_set(PYX_E_BAD_MEMORY, "str "
						   PYX_PRIaddr " has a UTF-8 "
						   "length of %" PRIu64, obj,
						   utf8_len);
		}
	}
	if (r->wstr) {
		bool ready = state & (1u << 7);

		if ((err = rd(py, obj, PYX_L_STR_WSTR, 8, &wstr)))
			return err;
		if (wstr && (!ready || wstr != data)) {
			wstr_extra = true;
			if (compact && ascii)
				wstr_len = len;
			else if ((err = rd(py, obj, PYX_L_STR_WSTR_LENGTH, 8,
					   &wstr_len)))
				return err;
			if (wstr_len > MAX_FIELD)
				return pyx_err_set(PYX_E_BAD_MEMORY, "str "
						   PYX_PRIaddr " has a wstr "
						   "length of %" PRIu64, obj,
						   wstr_len);
		}
	}
	*out = pyx_size_str(r, (uint32_t)state, len, data != 0, utf8_extra,
			    utf8_len, wstr_extra, wstr_len);
	return 0;
}

static int dict_size(const struct view *py, const struct pyx_size_rules *r,
		     pyx_addr_t obj, uint64_t basicsize, uint64_t *out)
{
	uint64_t keys, values;
	struct pyx_dict_keys dk;
	int err;

	if ((err = rd(py, obj, PYX_L_DICT_KEYS, 8, &keys)) ||
	    (err = rd(py, obj, PYX_L_DICT_VALUES, 8, &values)))
		return err;
	if (!keys)
		return pyx_err_set(PYX_E_BAD_MEMORY, "dict " PYX_PRIaddr
				   " has no keys", obj);
	if ((err = pyx_dict_keys_read(py->py, keys, &dk)))
		return err;
	*out = pyx_size_dict(r, basicsize, values != 0, &dk);
	return 0;
}

/* 3.11+ generators and coroutines (gen_sizeof): the object up to its
 * frame's locals, then the code's locals and stack, whatever tp_basicsize
 * and ob_size say.  Before 3.11: the default rule. */
static int gen_size(const struct view *w, pyx_addr_t obj,
		    const struct pyx_typeinfo *ti, uint64_t *out)
{
	struct pyx_python *py = w->py;
	pyx_addr_t code;
	uint64_t n, stack;
	int err;

	*out = ti->basicsize;
	if (!pyx_layout_has(&py->layout, PYX_L_GEN_IFRAME) ||
	    !pyx_layout_has(&py->layout, PYX_L_IF_LOCALSPLUS) ||
	    !pyx_layout_has(&py->layout, PYX_L_IF_CODE) ||
	    !pyx_layout_has(&py->layout, PYX_L_CO_NLOCALSPLUS) ||
	    !pyx_layout_has(&py->layout, PYX_L_CO_STACKSIZE))
		return 0;
	if ((err = pyx_iframe_code(py, obj + (uint64_t)pyx_off(py, PYX_L_GEN_IFRAME),
				   &code)) ||
	    (err = pyx_read_field_n(py, code, PYX_L_CO_NLOCALSPLUS, 4, &n)) ||
	    (err = pyx_read_field_n(py, code, PYX_L_CO_STACKSIZE, 4, &stack)))
		return err;
	/* int fields: a negative or huge one is corrupt */
	if (n > (1u << 20) || stack > (1u << 20))
		return pyx_err_set(PYX_E_BAD_MEMORY, "generator " PYX_PRIaddr
				   ": code " PYX_PRIaddr " has %" PRIu64
				   " locals and a stack of %" PRIu64, obj, code,
				   n, stack);
	*out = (uint64_t)pyx_off(py, PYX_L_GEN_IFRAME) +
	       (uint64_t)pyx_off(py, PYX_L_IF_LOCALSPLUS) + (n + stack) * PTR;
	return 0;
}

int pyx_obj_sizeof(struct pyx_python *py, const struct pyx_size_rules *r,
		   pyx_addr_t obj, const struct pyx_typeinfo *ti,
		   uint64_t *out)
{
	struct view vw = { py, obj, pyx_mem_snapshot_ptr(py->mem, obj, VIEW) };
	const struct view *w = &vw;
	uint64_t v, v2, pre, size = 0;
	int err = 0;

	pre = ti->preheader;
	switch (ti->kind) {
	case PYX_K_INVALID:
		return pyx_err_set(PYX_E_BAD_MEMORY, "object " PYX_PRIaddr
				   " has no type", obj);
	case PYX_K_STR:
		err = str_size(w, r, obj, &size);
		break;
	case PYX_K_INT:
		if (r->long_tag) {
			if (!(err = rd(w, obj, PYX_L_LONG_TAG, 8, &v)))
				v >>= 3;
		} else if (!(err = rd(w, obj, PYX_L_OB_SIZE, 8, &v))) {
			v = (int64_t)v < 0 ? -v : v;
		}
		if (!err && v > MAX_FIELD)
			err = pyx_err_set(PYX_E_BAD_MEMORY, "int " PYX_PRIaddr
					  " corrupt", obj);
		if (!err)
			size = pyx_size_int(r, v);
		break;
	case PYX_K_LIST:
		if (!(err = rd(w, obj, PYX_L_LIST_ALLOCATED, 8, &v)) &&
		    v > MAX_FIELD)
			err = pyx_err_set(PYX_E_BAD_MEMORY, "list " PYX_PRIaddr
					  " corrupt", obj);
		if (!err)
			size = pyx_size_list(ti->basicsize, v);
		break;
	case PYX_K_DICT:
		err = dict_size(w, r, obj, ti->basicsize, &size);
		break;
	case PYX_K_SET:
		if (!(err = rd(w, obj, PYX_L_SET_TABLE, 8, &v)) &&
		    !(err = rd(w, obj, PYX_L_SET_MASK, 8, &v2))) {
			if (v2 > MAX_FIELD)
				err = pyx_err_set(PYX_E_BAD_MEMORY, "set "
						  PYX_PRIaddr " corrupt", obj);
			else
				size = pyx_size_set(r, ti->basicsize,
					v == obj + (uint64_t)pyx_off(py, PYX_L_SET_SMALLTABLE),
					v2);
		}
		break;
	case PYX_K_BYTEARRAY:
		if (!(err = rd(w, obj, PYX_L_BYTEARRAY_ALLOC, 8, &v)) &&
		    v > MAX_FIELD)
			err = pyx_err_set(PYX_E_BAD_MEMORY, "bytearray "
					  PYX_PRIaddr " corrupt", obj);
		if (err)
			break;
		/* 3.15: the buffer is a bytes object (ob_bytes_object) and
		 * counted as one: its header, the bytes and the NUL. */
		if (v && pyx_layout_has(&py->layout, PYX_L_BYTEARRAY_BYTES_OBJECT))
			v += (uint64_t)pyx_off(py, PYX_L_BYTES_SVAL) + 1;
		size = ti->basicsize + v;
		break;
	case PYX_K_BUFFERED:
		/* buffered_sizeof: the object and its buffer, if any */
		size = ti->basicsize;
		if (!pyx_layout_has(&py->layout, PYX_L_BUFFERED_BUFFER) ||
		    !pyx_layout_has(&py->layout, PYX_L_BUFFERED_BUFFER_SIZE))
			break;
		if (!(err = rd(w, obj, PYX_L_BUFFERED_BUFFER, 8, &v)) && v &&
		    !(err = rd(w, obj, PYX_L_BUFFERED_BUFFER_SIZE, 8, &v2))) {
			if (v2 > MAX_FIELD)
				err = pyx_err_set(PYX_E_BAD_MEMORY, "buffered "
						  PYX_PRIaddr " corrupt", obj);
			else
				size += v2;
		}
		break;
	case PYX_K_GENERATOR:
		err = gen_size(w, obj, ti, &size);
		break;
	case PYX_K_DEQUE:
		if (!(err = rd(w, obj, PYX_L_DEQUE_LEFTINDEX, 8, &v)) &&
		    !(err = rd(w, obj, PYX_L_OB_SIZE, 8, &v2))) {
			if (v > MAX_FIELD || v2 > MAX_FIELD)
				err = pyx_err_set(PYX_E_BAD_MEMORY, "deque "
						  PYX_PRIaddr " corrupt", obj);
			else
				size = pyx_size_deque(r, ti->basicsize, v, v2);
		}
		break;
	case PYX_K_TYPE: {
		uint64_t flags, keys, ks = 0, mt;
		struct pyx_dict_keys dk;

		if ((err = rd(w, obj, PYX_L_TP_FLAGS, 8, &flags)) ||
		    (err = rd(w, obj, PYX_L_OB_TYPE, 8, &mt)))
			break;
		if (flags & PYX_TPFLAGS_HEAPTYPE) {
			if ((err = rd(w, obj, PYX_L_HT_CACHED_KEYS, 8, &keys)))
				break;
			if (keys) {
				if ((err = pyx_dict_keys_read(py, keys, &dk)))
					break;
				ks = pyx_size_dict_keys(r, &dk);
			}
		}
		size = pyx_size_type(r, flags & PYX_TPFLAGS_HEAPTYPE, ks);
		pre = pyx_size_preheader(r, ti->flags, true, flags,
					 mt == py->types.type);
		break;
	}
	case PYX_K_TUPLE:
	case PYX_K_BYTES:
	default:
		if (ti->itemsize) {
			if ((err = rd(w, obj, PYX_L_OB_SIZE, 8, &v)))
				break;
			/* Some types set tp_itemsize without an ob_size
			 * (3.11+ generators: their own __sizeof__). */
			if ((int64_t)v > (int64_t)(MAX_FIELD / ti->itemsize) ||
			    (int64_t)v < -(int64_t)(MAX_FIELD / ti->itemsize))
				v = 0;
			size = pyx_size_var(ti->basicsize, ti->itemsize,
					    (int64_t)v);
		} else {
			size = ti->basicsize;
		}
		break;
	}
	if (err)
		return err;
	/* The keys tables come from the dict reader: whatever they say,
	 * a size past the bound is a damaged object, not a total that
	 * wraps. */
	if (size > MAX_FIELD)
		return pyx_err_set(PYX_E_BAD_MEMORY, "object " PYX_PRIaddr
				   " (%s) would be %" PRIu64 " bytes: corrupt",
				   obj, ti->name, size);
	*out = size + pre;
	return 0;
}
