/* The object graph as the heap walkers see it: what each type is (a cache
 * of type facts, by type address), what an object refers to (a visitor over
 * its referents, each edge labelled), and how big it is (sys.getsizeof).
 *
 * Library-private.  The census counts with it; the refs walker (issue 4)
 * builds its graph with the same visitor and extends it (frames,
 * generators, tracebacks...): add a kind and its case in pyx_referents().
 */
#ifndef PYX_REFERENTS_H
#define PYX_REFERENTS_H

#include <stdbool.h>
#include <stdint.h>

#include "object.h"
#include "pyxray/memory.h"

/* Words of the heap copy at addr, for 8-byte loads in place: NULL where
 * pyx_mem_snapshot_ptr() has none, or where the copy of addr is not
 * 8-aligned (an image's ranges may start anywhere); the caller then reads
 * through pyx_mem_read(). */
static inline const uint64_t *pyx_heap_words(struct pyx_mem *mem,
					     pyx_addr_t addr, size_t len)
{
	const void *p = pyx_mem_snapshot_ptr(mem, addr, len);

	return ((uintptr_t)p & 7) ? NULL : p;
}

static inline uint64_t *pyx_heap_wwords(struct pyx_mem *mem, pyx_addr_t addr,
					size_t len)
{
	void *p = pyx_mem_snapshot_wptr(mem, addr, len);

	return ((uintptr_t)p & 7) ? NULL : p;
}

/* What the walkers know how to read.  A type's kind is that of its nearest
 * known base (tp_base chain): a subclass of list is laid out as a list. */
enum pyx_kind {
	PYX_K_INVALID, /* not a type object: a corrupt pointer */
	PYX_K_OTHER,   /* unknown C type: tp_members only */
	PYX_K_OBJECT,  /* instances of classes based on object */
	PYX_K_STR,
	PYX_K_BYTES,
	PYX_K_BYTEARRAY,
	PYX_K_INT,
	PYX_K_FLOAT,
	PYX_K_TUPLE,
	PYX_K_LIST,
	PYX_K_DICT,
	PYX_K_SET,     /* set and frozenset */
	PYX_K_TYPE,
	PYX_K_MODULE,
	PYX_K_FUNCTION,
	PYX_K_CELL,
	PYX_K_METHOD,
	PYX_K_CFUNCTION,
	PYX_K_CODE,
	PYX_K_DEQUE,
	PYX_K_LRU,      /* functools._lru_cache_wrapper */
	PYX_K_LRU_ELEM, /* functools._lru_list_elem */
	/* Read in full (PYX_REFERENTS_FULL) by the refs walker; the census
	 * treats them as PYX_K_OTHER. */
	PYX_K_FRAME,
	PYX_K_TRACEBACK,
	PYX_K_EXCEPTION, /* BaseException and subclasses */
	PYX_K_WEAKREF,   /* weak references and proxies: wr_object is weak */
	PYX_K_GENERATOR, /* generators, coroutines, async generators */
	PYX_K_BUFFERED,  /* _io.Buffered{Reader,Writer,Random}: __sizeof__
			    adds the buffer */
};

/* Facts about one type object, read once. */
struct pyx_typeinfo {
	pyx_addr_t addr;
	enum pyx_kind kind;
	uint64_t flags;       /* tp_flags */
	uint64_t basicsize, itemsize;
	int64_t dictoffset;
	bool gc;              /* instances carry a PyGC_Head (HAVE_GC) */
	bool has_dict;        /* instances may have a __dict__ or values */
	uint32_t preheader;   /* bytes before an instance sys.getsizeof adds
			         (type objects: decided per object) */
	uint32_t nslots;      /* object members (__slots__, T_OBJECT*) */
	int32_t *slots;       /* their offsets, over the tp_base chain */
	char **slot_names;    /* their names (an entry may be NULL) */
	char *name;           /* tp_name, or module.qualname for classes */
	uint32_t id;          /* 0, 1, 2...: index for per-type arrays */
};

struct pyx_types;

int pyx_types_new(struct pyx_python *py, struct pyx_types **out);
void pyx_types_free(struct pyx_types *t);
/* The facts of the type at tp.  A pointer that is not a type object gets
 * an entry of kind PYX_K_INVALID (cached too) and -PYX_E_BAD_MEMORY.
 * Entries stay valid until pyx_types_free(). */
int pyx_types_get(struct pyx_types *t, pyx_addr_t tp,
		  const struct pyx_typeinfo **out);
size_t pyx_types_count(const struct pyx_types *t);
struct pyx_python *pyx_types_python(const struct pyx_types *t);
const struct pyx_typeinfo *pyx_types_at(const struct pyx_types *t, size_t id);

/* Edges, labelled for the refs issue's paths. */
enum pyx_ref_kind {
	PYX_REF_ITEM,       /* list, tuple, deque item: index */
	PYX_REF_DICT_KEY,   /* a dict key: index is the entry */
	PYX_REF_DICT_VALUE, /* a dict value: key is its key */
	PYX_REF_SET_ITEM,   /* index is the slot */
	PYX_REF_ATTR,       /* instance attribute kept without a dict
			       (split, managed, inline values): key = name */
	PYX_REF_DICT,       /* the instance's __dict__ */
	PYX_REF_SLOT,       /* a member (__slots__): index = its offset */
	PYX_REF_FIELD,      /* a named C field: name ("__defaults__") */
	PYX_REF_TYPE,       /* a heap type's instance -> its class */
	PYX_REF_LOCAL,      /* a frame's fast local, cell or free variable:
			       index into localsplus, key the code object */
	PYX_REF_INFERRED,   /* a word of an unknown type that may be a
			       pointer: index = its offset */
	PYX_REF_MEMBER,     /* refs walker only: a PYX_REF_SLOT by name */
};

struct pyx_ref {
	enum pyx_ref_kind kind;
	pyx_addr_t target;
	uint64_t index;
	pyx_addr_t key;
	const char *name;
};

/* Return non-zero to stop; a negative value is an error passed back. */
typedef int (*pyx_ref_fn)(void *ctx, const struct pyx_ref *ref);

/* Visit what obj (of type ti) refers to.  NULL pointers are not visited;
 * other targets are not validated (the caller checks each is an object).
 * At most max_items per container.  -PYX_E_BAD_MEMORY for an object
 * that does not read as its type says. */
int pyx_referents(struct pyx_types *t, pyx_addr_t obj,
		  const struct pyx_typeinfo *ti, size_t max_items,
		  pyx_ref_fn fn, void *ctx);

/* The same, for the refs walker: frames (their locals), tracebacks and
 * exceptions by field, weak references without their referent, and every
 * word of a type pyxray does not know that may point at an object
 * (PYX_REF_INFERRED: the caller keeps those that are objects). */
#define PYX_REFERENTS_FULL 1u
int pyx_referents_ex(struct pyx_types *t, pyx_addr_t obj,
		     const struct pyx_typeinfo *ti, size_t max_items,
		     unsigned flags, pyx_ref_fn fn, void *ctx);

/* The name of local i of a frame running code ("x"), from co_varnames /
 * co_cellvars / co_freevars (3.8-3.10) or co_localsplusnames (3.11+). */
/* Where the fast locals (and cells, free variables) of a frame running
 * code are: a frame object (3.8-3.10) or a _PyInterpreterFrame (3.11+). */
int pyx_frame_localsplus(struct pyx_python *py, pyx_addr_t frame,
			 pyx_addr_t code, pyx_addr_t *at, uint64_t *n);
/* 3.11+: the frame embedded in a generator or coroutine, 0 when it has
 * completed (its locals are then stale words). */
pyx_addr_t pyx_gen_frame(struct pyx_python *py, pyx_addr_t gen);
/* The code object a _PyInterpreterFrame runs: f_executable (3.14+: a
 * tagged _PyStackRef, untagged here) or f_code. */
int pyx_iframe_code(struct pyx_python *py, pyx_addr_t frame, pyx_addr_t *code);
int pyx_code_local_name(struct pyx_python *py, pyx_addr_t code, uint64_t i,
			char *buf, size_t n);

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
/* The rules of the types' Python (set up by pyx_types_new()). */
const struct pyx_size_rules *pyx_types_rules(const struct pyx_types *t);

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
