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
#include "sizes.h"
#include "typeinfo.h"

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

/* The type of the object at obj (ob_type, from the heap copy when it has
 * it).  The target chose obj: objects are 8-aligned (16 with pymalloc), so
 * a pointer that is not is no object, and no 8-byte load is made from it. */
static inline int pyx_heap_obj_type(struct pyx_python *py, pyx_addr_t obj,
				    uint64_t *tp)
{
	const uint64_t *p;

	if (obj & 7)
		return pyx_err_set(PYX_E_BAD_MEMORY, "object " PYX_PRIaddr
				   " is not aligned", obj);
	p = pyx_heap_words(py->mem, obj, 16);
	if (p) {
		*tp = p[1]; /* ob_type: after ob_refcnt in every GIL build */
		return 0;
	}
	return pyx_read_field(py, obj, PYX_L_OB_TYPE, tp);
}

struct pyx_types;

/* The rules of the types' Python (set up by pyx_types_new()). */
const struct pyx_size_rules *pyx_types_rules(const struct pyx_types *t);

int pyx_types_new(struct pyx_python *py, struct pyx_types **out);
void pyx_types_free(struct pyx_types *t);
/* The facts of the type at tp.  A pointer that is not a type object gets
 * an entry of kind PYX_K_INVALID (cached too) and -PYX_E_BAD_MEMORY.
 * Entries stay valid until pyx_types_free().  pyx_types_get, _count and
 * _at may be called from several threads at once (a look-up takes no
 * lock; a new type is built under the table's mutex), and so may
 * pyx_referents() where the memory reads are (pyx_mem_has_snapshot()).
 * Ids are given in the order types are first met: with several threads,
 * not the same from run to run (per-type results must not depend on them). */
int pyx_types_get(struct pyx_types *t, pyx_addr_t tp,
		  const struct pyx_typeinfo **out);
/* A caller's own direct-mapped cache in front of pyx_types_get(): a walk
 * meets few types, over and over (each look-up in the table is a chain of
 * loads: ~6 ns a node of the graph's walk, 5 M of them).  One per thread,
 * zeroed before use; it holds only what pyx_types_get() gave, valid as
 * long as the table. */
#define PYX_TYPE_CACHE 256
struct pyx_type_cache {
	struct {
		pyx_addr_t tp;
		const struct pyx_typeinfo *ti;
	} e[PYX_TYPE_CACHE];
};

static inline int pyx_types_get_cached(struct pyx_types *t,
				       struct pyx_type_cache *c, pyx_addr_t tp,
				       const struct pyx_typeinfo **ti)
{
	size_t i = (size_t)(tp >> 4) & (PYX_TYPE_CACHE - 1);
	int err;

	if (c->e[i].tp == tp && c->e[i].ti) {
		*ti = c->e[i].ti;
		return 0;
	}
	if ((err = pyx_types_get(t, tp, ti)))
		return err;
	c->e[i].tp = tp;
	c->e[i].ti = *ti;
	return 0;
}
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
int pyx_code_local_name(struct pyx_python *py, pyx_addr_t code, uint64_t i,
			char *buf, size_t n);

#endif
