/* Reading Python objects out of the target: the one place that knows how a
 * str, bytes, int, dict or instance is laid out in each version.  Every
 * reader validates the object's type and bounds every size it reads.
 *
 * Library-private: the stacks, census and refs walkers build on these.
 */
#ifndef PYX_OBJECT_H
#define PYX_OBJECT_H

#include <stdbool.h>
#include <stdint.h>

#include "abi.h"
#include "field.h"
#include "reader.h"

int pyx_obj_type(struct pyx_python *py, pyx_addr_t obj, pyx_addr_t *type);
/* Whether obj's type is tp or a subclass by the tp_flags bit given (0: exact). */
bool pyx_obj_is(struct pyx_python *py, pyx_addr_t obj, pyx_addr_t tp,
		unsigned long subclass_flag);

/* A str as UTF-8 into buf (always NUL-terminated, cut at n-1 bytes on a
 * character boundary).  -PYX_E_BAD_MEMORY if obj is not a str. */
int pyx_str_read(struct pyx_python *py, pyx_addr_t obj, char *buf, size_t n);
/* Compare a str with a C string without copying more than needed. */
bool pyx_str_equals(struct pyx_python *py, pyx_addr_t obj, const char *s);

/* A bytes object's contents, malloc'ed; at most max bytes (else
 * -PYX_E_BAD_MEMORY). */
int pyx_bytes_read(struct pyx_python *py, pyx_addr_t obj, size_t max,
		   uint8_t **data, size_t *len);

/* An int that fits in int64. */
int pyx_long_read(struct pyx_python *py, pyx_addr_t obj, int64_t *out);

/* Visit each (key, value) of a dict, in order; stops early when fn returns
 * non-zero (that value is returned).  At most max_entries are visited. */
typedef int (*pyx_dict_fn)(void *ctx, pyx_addr_t key, pyx_addr_t value);
int pyx_dict_foreach(struct pyx_python *py, pyx_addr_t dict,
		     size_t max_entries, pyx_dict_fn fn, void *ctx);
/* The same for an object the caller knows is laid out as a dict without
 * being a dict subclass (3.15's frozendict): no type check. */
int pyx_dict_like_foreach(struct pyx_python *py, pyx_addr_t obj,
			  size_t max_entries, pyx_dict_fn fn, void *ctx);
/* The value of a str key in a dict; -PYX_E_NOT_SUPPORTED if absent. */
int pyx_dict_get_str(struct pyx_python *py, pyx_addr_t dict, const char *key,
		     pyx_addr_t *value);

/* A dict keys table (PyDictKeysObject), every layout. */
struct pyx_dict_keys {
	pyx_addr_t entries;   /* the first entry */
	uint64_t nentries;    /* entries in use, deleted ones included */
	uint64_t size;        /* slots: dk_size, 1 << dk_log2_size */
	uint64_t index_bytes; /* bytes of the index table */
	uint64_t refcnt;      /* dk_refcnt: 1 unless shared */
	uint64_t usable;      /* dk_usable */
	unsigned kind;        /* 3.11+ dk_kind: 0 general, 1 unicode, 2 split */
	size_t entry_size;
	size_t key_off, value_off;
};
int pyx_dict_keys_read(struct pyx_python *py, pyx_addr_t keys,
		       struct pyx_dict_keys *dk);
/* Visit each key of a keys table with the value its entry holds, 0 for a
 * shared (split) table, whose values live in each instance. */
int pyx_dict_keys_foreach(struct pyx_python *py, pyx_addr_t keys,
			  size_t max_entries, pyx_dict_fn fn, void *ctx);

/* Where an instance's attributes are: its dict (*dict) or, without one,
 * its values array (*values: split, managed or inline values, keyed by
 * the type's ht_cached_keys); both 0 if it has neither.  tp and flags are
 * obj's type and its tp_flags. */
int pyx_obj_dict_or_values(struct pyx_python *py, pyx_addr_t obj,
			   pyx_addr_t tp, uint64_t flags, pyx_addr_t *dict,
			   pyx_addr_t *values);
/* Visit the (key, value) pairs of a values array of an instance of tp. */
int pyx_values_foreach(struct pyx_python *py, pyx_addr_t tp, pyx_addr_t values,
		       size_t max_entries, pyx_dict_fn fn, void *ctx);

/* Visit an instance's attributes (its __dict__ in whichever layout the
 * version uses: tp_dictoffset, managed dict, split values, inline values). */
int pyx_obj_foreach_attr(struct pyx_python *py, pyx_addr_t obj,
			 size_t max_entries, pyx_dict_fn fn, void *ctx);
/* One attribute by name; -PYX_E_NOT_SUPPORTED if absent. */
int pyx_obj_getattr_str(struct pyx_python *py, pyx_addr_t obj,
			const char *name, pyx_addr_t *value);

#endif
