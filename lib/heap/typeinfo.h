/* Facts about one type object, as the heap walkers keep them: shared by
 * the type cache (referents.c) and the sys.getsizeof rules (sizes.c).
 * Library-private; types only. */
#ifndef PYX_TYPEINFO_H
#define PYX_TYPEINFO_H

#include <stdbool.h>
#include <stdint.h>

#include "pyxray/common.h"

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
	/* The refs walk's question about the type (is it the target's?):
	 * -1 not asked yet; any thread may answer it, always the same way
	 * (a byte, loaded and stored atomically). */
	int8_t match;
};

#endif
