/* sys.getsizeof, from outside (lib/heap/sizes.c).  Library-private. */
#ifndef PYX_SIZES_H
#define PYX_SIZES_H

#include <stdbool.h>
#include <stdint.h>

#include "object.h"
#include "typeinfo.h"

/* sys.getsizeof rules (lib/sizes.c): pure functions of fields already
 * read, so each rule is unit-tested per version without a process. */
struct pyx_size_rules {
	uint32_t gc_head;             /* sizeof(PyGC_Head) */
	unsigned long preheader_flags;
	bool static_type_gc_head;
	int int_min_digits;
	uint32_t long_digit_off;      /* offsetof(PyLongObject, ob_digit) */
	bool long_tag;                /* 3.12+: ndigits in lv_tag */
	uint32_t sz_ascii, sz_compact, sz_unicode;
	bool wstr;                    /* <= 3.11 */
	uint32_t sz_type, sz_heap_type;
	uint32_t dk_header;           /* offset of dk_indices */
	bool split_usable_from_keys;  /* 3.11+: nentries + usable values */
	uint32_t sz_setentry;
	uint32_t sz_block;            /* deque block */
	uint32_t blocklen;            /* items per block */
};
void pyx_size_rules_init(struct pyx_size_rules *r, const struct pyx_python *py);

/* What sys.getsizeof adds before an object of a type with these flags;
 * for a type object pass its own flags in obj_flags and whether its type
 * is exactly type. */
uint64_t pyx_size_preheader(const struct pyx_size_rules *r, uint64_t tp_flags,
			    bool is_type_object, uint64_t obj_flags,
			    bool exact_type);
uint64_t pyx_size_var(uint64_t basicsize, uint64_t itemsize, int64_t ob_size);
uint64_t pyx_size_list(uint64_t basicsize, uint64_t allocated);
uint64_t pyx_size_dict_keys(const struct pyx_size_rules *r,
			    const struct pyx_dict_keys *dk);
uint64_t pyx_size_dict(const struct pyx_size_rules *r, uint64_t basicsize,
		       bool split_values, const struct pyx_dict_keys *dk);
uint64_t pyx_size_set(const struct pyx_size_rules *r, uint64_t basicsize,
		      bool small_table, uint64_t mask);
/* state: PyASCIIObject.state; the flags say which extra buffers exist. */
uint64_t pyx_size_str(const struct pyx_size_rules *r, uint32_t state,
		      uint64_t length, bool legacy_data, bool utf8_extra,
		      uint64_t utf8_length, bool wstr_extra,
		      uint64_t wstr_length);
uint64_t pyx_size_int(const struct pyx_size_rules *r, uint64_t ndigits);
uint64_t pyx_size_deque(const struct pyx_size_rules *r, uint64_t basicsize,
			uint64_t leftindex, uint64_t len);
uint64_t pyx_size_type(const struct pyx_size_rules *r, bool heap,
		       uint64_t cached_keys_size);

/* sys.getsizeof(obj), reading what the rules need.  */
int pyx_obj_sizeof(struct pyx_python *py, const struct pyx_size_rules *r,
		   pyx_addr_t obj, const struct pyx_typeinfo *ti,
		   uint64_t *out);

#endif
