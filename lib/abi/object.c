/* Reading str, bytes, int, dict and instance attributes from the target. */
#include <stdlib.h>
#include <string.h>

#include "object.h"

/* No legitimate dict in a stack walk or a name lookup is bigger; a census
 * passes its own bound. */
#define PYX_MAX_STR_CHARS (1u << 20)
#define PYX_MAX_DICT_ENTRIES_HARD (1u << 26)

int pyx_obj_type(struct pyx_python *py, pyx_addr_t obj, pyx_addr_t *type)
{
	int err;

	*type = 0;
	if (obj == 0 || (obj & 7))
		return pyx_err_set(PYX_E_BAD_MEMORY, "bad object address "
				   PYX_PRIaddr, obj);
	err = pyx_read_field(py, obj, PYX_L_OB_TYPE, type);
	if (!err && (*type == 0 || (*type & 7)))
		return pyx_err_set(PYX_E_BAD_MEMORY, "object " PYX_PRIaddr
				   " has a bad type pointer", obj);
	return err;
}

bool pyx_obj_is(struct pyx_python *py, pyx_addr_t obj, pyx_addr_t tp,
		unsigned long subclass_flag)
{
	pyx_addr_t t;
	uint64_t flags;

	if (pyx_obj_type(py, obj, &t))
		return false;
	if (t == tp)
		return true;
	return subclass_flag &&
	       pyx_read_field(py, t, PYX_L_TP_FLAGS, &flags) == 0 &&
	       (flags & subclass_flag);
}

static size_t utf8_put(char *out, uint32_t c)
{
	if (c < 0x80) {
		out[0] = (char)c;
		return 1;
	}
	if (c < 0x800) {
		out[0] = (char)(0xc0 | (c >> 6));
		out[1] = (char)(0x80 | (c & 0x3f));
		return 2;
	}
	if (c < 0x10000) {
		out[0] = (char)(0xe0 | (c >> 12));
		out[1] = (char)(0x80 | ((c >> 6) & 0x3f));
		out[2] = (char)(0x80 | (c & 0x3f));
		return 3;
	}
	if (c > 0x10ffff)
		c = 0xfffd;
	out[0] = (char)(0xf0 | (c >> 18));
	out[1] = (char)(0x80 | ((c >> 12) & 0x3f));
	out[2] = (char)(0x80 | ((c >> 6) & 0x3f));
	out[3] = (char)(0x80 | (c & 0x3f));
	return 4;
}

/* Where a str's characters are, how many and how wide: PEP 393 (3.3+). */
int pyx_str_data_pep393(struct pyx_python *py, pyx_addr_t obj,
			pyx_addr_t *data, uint64_t *len, unsigned *kind)
{
	uint64_t state;
	int err;

	*data = *len = 0;
	*kind = 1;
	if (!pyx_obj_is(py, obj, py->types.str, PYX_TPFLAGS_UNICODE_SUBCLASS))
		return pyx_err_set(PYX_E_BAD_MEMORY, "object " PYX_PRIaddr
				   " is not a str", obj);
	if ((err = pyx_read_field(py, obj, PYX_L_STR_LENGTH, len)) ||
	    (err = pyx_read_field_n(py, obj, PYX_L_STR_STATE, 4, &state)))
		return err;
	/* state bits (all versions here): interned 0-1, kind 2-4, compact 5,
	 * ascii 6. */
	*kind = (unsigned)(state >> 2) & 7;
	if (*kind != 1 && *kind != 2 && *kind != 4)
		return pyx_err_set(PYX_E_BAD_MEMORY, "str " PYX_PRIaddr
				   " has kind %u", obj, *kind);
	if (*len > (1ull << 40))
		return pyx_err_set(PYX_E_BAD_MEMORY, "str " PYX_PRIaddr
				   " has length %" PRIu64, obj, *len);
	if (state & (1u << 5)) {
		bool ascii = state & (1u << 6);

		*data = obj + (uint64_t)pyx_off(py, ascii ? PYX_L_SZ_ASCII
						      : PYX_L_SZ_COMPACT);
		return 0;
	}
	return pyx_read_field(py, obj, PYX_L_STR_LEGACY_DATA, data);
}

int pyx_str_read(struct pyx_python *py, pyx_addr_t obj, char *buf, size_t n)
{
	pyx_addr_t data;
	uint64_t len;
	unsigned kind;
	size_t chars, o = 0;
	uint8_t *raw;
	int err;

	if (n == 0)
		return -PYX_E_INTERNAL;
	buf[0] = '\0';
	if ((err = py->abi->ops->str_data(py, obj, &data, &len, &kind)))
		return err;
	/* Never more characters than could fit as UTF-8. */
	chars = len < n ? (size_t)len : n - 1;
	if (chars > PYX_MAX_STR_CHARS)
		chars = PYX_MAX_STR_CHARS;
	if (chars == 0)
		return 0;
	raw = malloc(chars * kind);
	if (!raw)
		return -PYX_E_NOMEM;
	err = pyx_mem_read(py->mem, data, raw, chars * kind);
	for (size_t i = 0; !err && i < chars; i++) {
		uint32_t c = kind == 1 ? raw[i]
			   : kind == 2 ? ((uint16_t *)raw)[i]
				       : ((uint32_t *)raw)[i];
		char tmp[4];
		size_t w = utf8_put(tmp, c);

		if (o + w > n - 1)
			break;
		memcpy(buf + o, tmp, w);
		o += w;
	}
	buf[o] = '\0';
	free(raw);
	return err;
}

bool pyx_str_equals(struct pyx_python *py, pyx_addr_t obj, const char *s)
{
	size_t slen = strlen(s);
	char buf[256];

	pyx_addr_t data;
	uint64_t len, chars = 0;
	unsigned kind;

	if (slen >= sizeof(buf))
		return false;
	/* Same number of characters first: a cut read of a longer str could
	 * otherwise equal s. */
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		chars += (*p & 0xc0) != 0x80;
	if (py->abi->ops->str_data(py, obj, &data, &len, &kind) ||
	    len != chars)
		return false;
	if (pyx_str_read(py, obj, buf, sizeof(buf)))
		return false;
	return strcmp(buf, s) == 0;
}

int pyx_bytes_read(struct pyx_python *py, pyx_addr_t obj, size_t max,
		   uint8_t **data, size_t *len)
{
	uint64_t size;
	int err;

	*data = NULL;
	*len = 0;
	if (!pyx_obj_is(py, obj, py->types.bytes, 1UL << 27))
		return pyx_err_set(PYX_E_BAD_MEMORY, "object " PYX_PRIaddr
				   " is not bytes", obj);
	if ((err = pyx_read_field(py, obj, PYX_L_OB_SIZE, &size)))
		return err;
	if (size > max)
		return pyx_err_set(PYX_E_BAD_MEMORY, "bytes " PYX_PRIaddr
				   " has size %" PRIu64 " (max %zu)", obj, size,
				   max);
	/* The size came from the target: the bytes must be there before a
	 * buffer is allocated for them. */
	if (!pyx_mem_valid(py->mem, obj + (uint64_t)pyx_off(py, PYX_L_BYTES_SVAL),
			   size))
		return pyx_err_set(PYX_E_BAD_MEMORY, "bytes " PYX_PRIaddr
				   ": %" PRIu64 " bytes not mapped", obj, size);
	*data = malloc(size ? size : 1);
	if (!*data)
		return -PYX_E_NOMEM;
	err = pyx_mem_read(py->mem, obj + (uint64_t)pyx_off(py, PYX_L_BYTES_SVAL),
			   *data, size);
	if (err) {
		free(*data);
		*data = NULL;
		return err;
	}
	*len = size;
	return 0;
}

int pyx_long_digits_ob_size(struct pyx_python *py, pyx_addr_t obj,
			    uint64_t *ndigits, bool *negative)
{
	uint64_t size;
	int err;

	*ndigits = 0;
	*negative = false;
	if ((err = pyx_read_field(py, obj, PYX_L_OB_SIZE, &size)))
		return err;
	*negative = (int64_t)size < 0;
	*ndigits = *negative ? -size : size;
	return 0;
}

int pyx_long_digits_tag(struct pyx_python *py, pyx_addr_t obj,
			uint64_t *ndigits, bool *negative)
{
	uint64_t tag;
	int err;

	*ndigits = 0;
	*negative = false;
	if ((err = pyx_read_field(py, obj, PYX_L_LONG_TAG, &tag)))
		return err;
	*ndigits = tag >> 3;
	*negative = (tag & 3) == 2;
	return 0;
}

int pyx_long_read(struct pyx_python *py, pyx_addr_t obj, int64_t *out)
{
	uint32_t digits[3];
	uint64_t ndigits, v = 0;
	bool neg;
	int err;

	if (!pyx_obj_is(py, obj, py->types.long_, PYX_TPFLAGS_LONG_SUBCLASS))
		return pyx_err_set(PYX_E_BAD_MEMORY, "object " PYX_PRIaddr
				   " is not an int", obj);
	if ((err = py->abi->ops->long_digits(py, obj, &ndigits, &neg)))
		return err;
	if (ndigits > 3)
		return pyx_err_set(PYX_E_BAD_MEMORY, "int " PYX_PRIaddr
				   " does not fit in 64 bits", obj);
	if (ndigits && (err = pyx_mem_read(py->mem,
			obj + (uint64_t)pyx_off(py, PYX_L_LONG_DIGIT), digits,
			ndigits * 4)))
		return err;
	/* 30-bit digits, least significant first. */
	for (size_t i = ndigits; i-- > 0;) {
		if (v >> 34)
			return pyx_err_set(PYX_E_BAD_MEMORY, "int " PYX_PRIaddr
					   " does not fit in 64 bits", obj);
		v = (v << 30) | (digits[i] & 0x3fffffff);
	}
	if (v > INT64_MAX)
		return pyx_err_set(PYX_E_BAD_MEMORY, "int " PYX_PRIaddr
				   " does not fit in 64 bits", obj);
	*out = neg ? -(int64_t)v : (int64_t)v;
	return 0;
}

#define KEYS_VIEW 40

static int keys_field(struct pyx_python *py, const uint8_t *kv, pyx_addr_t keys,
		      enum pyx_layout_id id, size_t n, uint64_t *out)
{
	int32_t off = pyx_off(py, id);

	if (kv && off >= 0 && (size_t)off + n <= KEYS_VIEW) {
		*out = 0;
		memcpy(out, kv + off, n);
		return 0;
	}
	return pyx_read_field_n(py, keys, id, n, out);
}

static int read_keys(struct pyx_python *py, pyx_addr_t keys, size_t max,
		     struct pyx_dict_keys *dk)
{
	/* The header from the heap copy in one look-up, if there is one. */
	const uint8_t *kv = pyx_mem_snapshot_ptr(py->mem, keys, KEYS_VIEW);
	uint64_t v, index_bytes;
	int err;

	memset(dk, 0, sizeof(*dk));
	if ((err = keys_field(py, kv, keys, PYX_L_DK_NENTRIES, 8, &dk->nentries)))
		return err;
	if (pyx_layout_has(&py->layout, PYX_L_DK_REFCNT) &&
	    (err = keys_field(py, kv, keys, PYX_L_DK_REFCNT, 8, &dk->refcnt)))
		return err;
	if (pyx_layout_has(&py->layout, PYX_L_DK_USABLE) &&
	    (err = keys_field(py, kv, keys, PYX_L_DK_USABLE, 8, &dk->usable)))
		return err;
	if (pyx_layout_has(&py->layout, PYX_L_DK_LOG2_SIZE)) {
		uint64_t kind, log2;

		/* 3.11+: indices take 1 << dk_log2_index_bytes bytes. */
		if ((err = keys_field(py, kv, keys, PYX_L_DK_LOG2_INDEX_BYTES,
					    1, &v)) ||
		    (err = keys_field(py, kv, keys, PYX_L_DK_LOG2_SIZE, 1,
					    &log2)) ||
		    (err = keys_field(py, kv, keys, PYX_L_DK_KIND, 1, &kind)))
			return err;
		if (v > 40 || log2 > 40)
			return pyx_err_set(PYX_E_BAD_MEMORY, "dict keys "
					   PYX_PRIaddr " corrupt", keys);
		index_bytes = 1ull << v;
		dk->size = 1ull << log2;
		dk->kind = (unsigned)kind;
		if (kind == 0) {
			dk->entry_size = (size_t)pyx_off(py, PYX_L_SZ_DICT_KEY_ENTRY);
			dk->key_off = 8;
			dk->value_off = 16;
		} else {
			dk->entry_size = (size_t)pyx_off(py, PYX_L_SZ_DICT_UNICODE_ENTRY);
			dk->key_off = 0;
			dk->value_off = 8;
		}
	} else {
		uint64_t size;

		if ((err = keys_field(py, kv, keys, PYX_L_DK_SIZE, 8, &size)))
			return err;
		if (size > (1ull << 40))
			return pyx_err_set(PYX_E_BAD_MEMORY, "dict keys "
					   PYX_PRIaddr " corrupt", keys);
		index_bytes = size * (size <= 0xff ? 1 : size <= 0xffff ? 2
				      : size <= 0xffffffffull ? 4 : 8);
		dk->size = size;
		dk->entry_size = (size_t)pyx_off(py, PYX_L_SZ_DICT_KEY_ENTRY);
		dk->key_off = 8;
		dk->value_off = 16;
	}
	if (dk->nentries > max || dk->nentries > PYX_MAX_DICT_ENTRIES_HARD ||
	    dk->nentries > dk->size)
		return pyx_err_set(PYX_E_BAD_MEMORY, "dict keys " PYX_PRIaddr
				   " has %" PRIu64 " entries", keys, dk->nentries);
	/* The entry geometry comes from the layout (a table, DWARF, or an
	 * image's facts): an entry too small for its key and value, or absent,
	 * would make every entry read run past the copy. */
	if (pyx_off(py, PYX_L_DK_INDICES) < 0 || dk->entry_size < 16 ||
	    dk->entry_size > 64 || dk->value_off + 8 > dk->entry_size ||
	    dk->key_off + 8 > dk->entry_size)
		return pyx_err_set(PYX_E_LAYOUT, "dict entry layout: %zu-byte "
				   "entries", dk->entry_size);
	dk->index_bytes = index_bytes;
	dk->entries = keys + (uint64_t)pyx_off(py, PYX_L_DK_INDICES) + index_bytes;
	return 0;
}

int pyx_dict_keys_read(struct pyx_python *py, pyx_addr_t keys,
		       struct pyx_dict_keys *dk)
{
	return read_keys(py, keys, PYX_MAX_DICT_ENTRIES_HARD, dk);
}

/* Visit entries of keys; values come from the entries (combined) or from
 * the array at values (split tables, managed and inline values). */
static int foreach_entries(struct pyx_python *py, pyx_addr_t keys,
			   pyx_addr_t values, bool keys_only, size_t max,
			   pyx_dict_fn fn, void *ctx)
{
	struct pyx_dict_keys dk;
	const uint8_t *ents;
	const uint64_t *vals = NULL;
	uint8_t *ents_buf = NULL;
	uint64_t *vals_buf = NULL;
	size_t elen;
	int err;

	if ((err = read_keys(py, keys, max, &dk)) || dk.nentries == 0)
		return err;
	elen = dk.nentries * dk.entry_size;
	/* From a heap copy (or a core held in place): no copy at all, and no
	 * maps check either, since the copy holds only mapped memory (the
	 * check cost a tenth of a census walk).  Else the count came from
	 * the target: the table must be mapped before anything is allocated
	 * for it. */
	ents = pyx_mem_snapshot_ptr(py->mem, dk.entries, elen);
	if (!ents) {
		if (!pyx_mem_valid(py->mem, dk.entries, elen))
			return pyx_err_set(PYX_E_BAD_MEMORY, "dict keys "
					   PYX_PRIaddr ": %zu bytes of entries "
					   "not mapped", keys, elen);
		ents = ents_buf = malloc(elen);
		if (!ents_buf)
			return -PYX_E_NOMEM;
		err = pyx_mem_read(py->mem, dk.entries, ents_buf, elen);
	}
	/* The values array is as long as the keys say (nentries came from
	 * the target, up to the hard bound): it must be aligned, and mapped
	 * before a buffer is allocated for it. */
	if (!err && values && (values & 7))
		err = pyx_err_set(PYX_E_BAD_MEMORY, "dict values " PYX_PRIaddr
				  " not aligned", values);
	if (!err && values)
		vals = pyx_mem_snapshot_ptr(py->mem, values, dk.nentries * 8);
	if (!err && values && !vals) {
		if (!pyx_mem_valid(py->mem, values, dk.nentries * 8))
			err = pyx_err_set(PYX_E_BAD_MEMORY, "dict values "
					  PYX_PRIaddr ": %" PRIu64
					  " values not mapped", values,
					  dk.nentries);
		else if (!(vals = vals_buf = malloc(dk.nentries * 8)))
			err = -PYX_E_NOMEM;
		else
			err = pyx_mem_read(py->mem, values, vals_buf,
					   dk.nentries * 8);
	}
	for (uint64_t i = 0; !err && i < dk.nentries; i++) {
		uint64_t key, value;

		memcpy(&key, ents + i * dk.entry_size + dk.key_off, 8);
		if (vals)
			memcpy(&value, vals + i, 8);
		else
			memcpy(&value, ents + i * dk.entry_size + dk.value_off, 8);
		if (key == 0 || (value == 0 && !keys_only))
			continue;
		err = fn(ctx, key, value);
	}
	free(ents_buf);
	free(vals_buf);
	return err;
}

int pyx_dict_keys_foreach(struct pyx_python *py, pyx_addr_t keys,
			  size_t max_entries, pyx_dict_fn fn, void *ctx)
{
	return foreach_entries(py, keys, 0, true, max_entries, fn, ctx);
}

int pyx_dict_foreach(struct pyx_python *py, pyx_addr_t dict,
		     size_t max_entries, pyx_dict_fn fn, void *ctx)
{
	if (!pyx_obj_is(py, dict, py->types.dict, PYX_TPFLAGS_DICT_SUBCLASS))
		return pyx_err_set(PYX_E_BAD_MEMORY, "object " PYX_PRIaddr
				   " is not a dict", dict);
	return pyx_dict_like_foreach(py, dict, max_entries, fn, ctx);
}

int pyx_dict_like_foreach(struct pyx_python *py, pyx_addr_t dict,
			  size_t max_entries, pyx_dict_fn fn, void *ctx)
{
	uint64_t keys, values;
	int err;

	if ((err = pyx_read_field(py, dict, PYX_L_DICT_KEYS, &keys)) ||
	    (err = pyx_read_field(py, dict, PYX_L_DICT_VALUES, &values)))
		return err;
	if (values && pyx_layout_has(&py->layout, PYX_L_DV_VALUES))
		values += (uint64_t)pyx_off(py, PYX_L_DV_VALUES);
	return foreach_entries(py, keys, values, false, max_entries, fn, ctx);
}

struct find_ctx {
	struct pyx_python *py;
	const char *key;
	pyx_addr_t value;
};

/* Returns 1 (stop) when found: not an error code. */
static int find_str_key(void *vctx, pyx_addr_t key, pyx_addr_t value)
{
	struct find_ctx *c = vctx;

	if (pyx_str_equals(c->py, key, c->key)) {
		c->value = value;
		return 1;
	}
	return 0;
}

int pyx_dict_get_str(struct pyx_python *py, pyx_addr_t dict, const char *key,
		     pyx_addr_t *value)
{
	struct find_ctx c = { py, key, 0 };
	int err = pyx_dict_foreach(py, dict, PYX_MAX_DICT_ENTRIES_HARD,
				   find_str_key, &c);

	if (err < 0)
		return err;
	if (err == 0)
		return -PYX_E_NOT_SUPPORTED;
	*value = c.value;
	return 0;
}

int pyx_obj_dict_or_values(struct pyx_python *py, pyx_addr_t obj,
			   pyx_addr_t tp, uint64_t flags, pyx_addr_t *dictp,
			   pyx_addr_t *valuesp)
{
	const struct pyx_version_consts *k = &py->k;
	uint64_t dict = 0, values = 0;
	int err;

	*dictp = *valuesp = 0;
	if (k->managed_dict_word && (flags & PYX_TPFLAGS_MANAGED_DICT)) {
		uint64_t slot;

		if ((err = pyx_mem_read_u64(py->mem, obj - 8 * k->managed_dict_word,
					    &slot)))
			return err;
		if (k->tagged_dict_or_values && (slot & 1))
			values = slot + 1; /* 3.12: the word is values - 1 */
		else
			dict = slot;
		if (!dict && k->managed_values_word &&
		    (err = pyx_mem_read_u64(py->mem,
				obj - 8 * k->managed_values_word, &values)))
			return err;
		if (!dict && !values && k->inline_values &&
		    (flags & PYX_TPFLAGS_INLINE_VALUES)) {
			uint64_t basic, valid;

			if ((err = pyx_read_field(py, tp, PYX_L_TP_BASICSIZE, &basic)))
				return err;
			if (basic > (1u << 20))
				return pyx_err_set(PYX_E_BAD_MEMORY, "type "
						   PYX_PRIaddr " corrupt", tp);
			values = obj + basic;
			if ((err = pyx_read_field_n(py, values, PYX_L_DV_VALID,
						    1, &valid)))
				return err;
			if (!valid)
				values = 0;
		}
	} else {
		uint64_t off;

		if ((err = pyx_read_field(py, tp, PYX_L_TP_DICTOFFSET, &off)))
			return err;
		if (off == 0)
			return 0;
		if ((int64_t)off < 0) {
			/* Variable-size objects: counted from the end. */
			uint64_t basic, item, size;

			if ((err = pyx_read_field(py, tp, PYX_L_TP_BASICSIZE, &basic)) ||
			    (err = pyx_read_field(py, tp, PYX_L_TP_ITEMSIZE, &item)) ||
			    (err = pyx_read_field(py, obj, PYX_L_OB_SIZE, &size)))
				return err;
			if ((int64_t)size < 0)
				size = -size;
			if (basic > (1u << 20) || item > (1u << 20) ||
			    size > (1ull << 40))
				return pyx_err_set(PYX_E_BAD_MEMORY, "object "
						   PYX_PRIaddr " corrupt", obj);
			off += (basic + size * item + 7) & ~7ull;
		}
		if (off > (1u << 24))
			return pyx_err_set(PYX_E_BAD_MEMORY, "type " PYX_PRIaddr
					   " has a bad tp_dictoffset", tp);
		if ((err = pyx_mem_read_u64(py->mem, obj + off, &dict)))
			return err;
	}
	*dictp = dict;
	*valuesp = values;
	return 0;
}

int pyx_values_foreach(struct pyx_python *py, pyx_addr_t tp, pyx_addr_t values,
		       size_t max_entries, pyx_dict_fn fn, void *ctx)
{
	uint64_t keys;
	int err;

	/* Values without a dict: the keys are the class's shared keys. */
	if ((err = pyx_read_field(py, tp, PYX_L_HT_CACHED_KEYS, &keys)))
		return err;
	if (!keys)
		return 0;
	return foreach_entries(py, keys,
			       values + (uint64_t)pyx_off(py, PYX_L_DV_VALUES),
			       false, max_entries, fn, ctx);
}

int pyx_obj_foreach_attr(struct pyx_python *py, pyx_addr_t obj,
			 size_t max_entries, pyx_dict_fn fn, void *ctx)
{
	pyx_addr_t tp, dict, values;
	uint64_t flags;
	int err;

	if ((err = pyx_obj_type(py, obj, &tp)) ||
	    (err = pyx_read_field(py, tp, PYX_L_TP_FLAGS, &flags)) ||
	    (err = pyx_obj_dict_or_values(py, obj, tp, flags, &dict, &values)))
		return err;
	if (dict)
		return pyx_dict_foreach(py, dict, max_entries, fn, ctx);
	if (!values)
		return 0;
	return pyx_values_foreach(py, tp, values, max_entries, fn, ctx);
}

int pyx_obj_getattr_str(struct pyx_python *py, pyx_addr_t obj,
			const char *name, pyx_addr_t *value)
{
	struct find_ctx c = { py, name, 0 };
	int err = pyx_obj_foreach_attr(py, obj, 1u << 16, find_str_key, &c);

	if (err < 0)
		return err;
	if (err == 0)
		return -PYX_E_NOT_SUPPORTED;
	*value = c.value;
	return 0;
}
