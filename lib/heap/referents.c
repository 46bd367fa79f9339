/* Type facts and referents: what an object is and what it refers to. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "abi.h"
#include "referents.h"

#define MAX_BASE_DEPTH 64    /* tp_base chains are short; a loop is corrupt */
#define MAX_MEMBERS 4096     /* PyMemberDef entries per type, bases included */
/* Words read at once: a container's items, a set's table (2 words an
 * entry); more is a corrupt count (the walkers' max_items is below). */
#define MAX_WORDS (UINT64_C(1) << 29)
#define MAX_LOCALS (1u << 20) /* a frame's locals, cells and free vars */
#define T_OBJECT 6
#define T_OBJECT_EX 16
#define PYX_TPFLAGS_TYPE_SUBCLASS (1UL << 31)

/* The type table is shared by the threads of a walk.  Look-ups take no
 * lock: entries are never moved (segments that double in size), a hash
 * table that grows is replaced (the old one kept until pyx_types_free(),
 * at most as much again), and each word is published with a release store
 * after what it points at.  Inserting (rare: a walk meets a few thousand
 * types) takes the mutex. */
#define SEG0_SHIFT 8     /* segment k holds 256 << k entries */
#define NSEGS 24         /* 4 G entries: more than a uint32_t id */

struct slot_table {
	struct slot_table *older; /* replaced tables, freed at the end */
	size_t n;                 /* power of 2 */
	uint32_t s[];             /* open addressing: id + 1, 0 = empty */
};

struct pyx_types {
	struct pyx_python *py;
	struct pyx_size_rules rules;
	pthread_mutex_t lock;            /* inserts */
	struct pyx_typeinfo **seg[NSEGS];
	size_t n;                        /* entries published (atomic) */
	struct slot_table *slots;        /* atomic */
	pyx_addr_t set_dummy;
};

static inline struct pyx_typeinfo **entry(const struct pyx_types *t, size_t id)
{
	unsigned k = 63u - (unsigned)__builtin_clzll((id >> SEG0_SHIFT) + 1);

	return &t->seg[k][id - ((((size_t)1 << k) - 1) << SEG0_SHIFT)];
}

static struct slot_table *slot_table_new(size_t n)
{
	struct slot_table *st = calloc(1, sizeof(*st) + n * sizeof(st->s[0]));

	if (st)
		st->n = n;
	return st;
}

static inline size_t hash_addr(pyx_addr_t a)
{
	return (size_t)((a >> 3) * UINT64_C(0x9E3779B97F4A7C15) >> 20);
}

int pyx_types_new(struct pyx_python *py, struct pyx_types **out)
{
	struct pyx_types *t = calloc(1, sizeof(*t));
	pyx_addr_t dummy;

	*out = NULL;
	if (!t)
		return -PYX_E_NOMEM;
	t->py = py;
	pyx_size_rules_init(&t->rules, py);
	t->slots = slot_table_new(1024);
	if (!t->slots || pthread_mutex_init(&t->lock, NULL)) {
		free(t->slots);
		free(t);
		return -PYX_E_NOMEM;
	}
	/* The deleted-entry marker of sets: a pointer variable (no ELF file:
	 * a synthetic image). */
	if (py->elf && pyx_elf_lookup(py->elf, "_PySet_Dummy", &dummy, NULL) == 0)
		pyx_mem_read_u64(py->mem, dummy, &t->set_dummy);
	pyx_err_clear();
	*out = t;
	return 0;
}

static void free_slots(struct pyx_typeinfo *ti)
{
	for (uint32_t i = 0; ti->slot_names && i < ti->nslots; i++)
		free(ti->slot_names[i]);
	free(ti->slot_names);
	free(ti->slots);
	ti->slot_names = NULL;
	ti->slots = NULL;
	ti->nslots = 0;
}

void pyx_types_free(struct pyx_types *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < t->n; i++) {
		struct pyx_typeinfo *ti = *entry(t, i);

		free_slots(ti);
		free(ti->name);
		free(ti);
	}
	for (unsigned k = 0; k < NSEGS; k++)
		free(t->seg[k]);
	for (struct slot_table *st = t->slots, *o; st; st = o) {
		o = st->older;
		free(st);
	}
	pthread_mutex_destroy(&t->lock);
	free(t);
}

size_t pyx_types_count(const struct pyx_types *t)
{
	return __atomic_load_n(&t->n, __ATOMIC_ACQUIRE);
}

const struct pyx_typeinfo *pyx_types_at(const struct pyx_types *t, size_t id)
{
	return id < pyx_types_count(t) ? *entry(t, id) : NULL;
}

const struct pyx_size_rules *pyx_types_rules(const struct pyx_types *t)
{
	return &t->rules;
}

struct pyx_python *pyx_types_python(const struct pyx_types *t)
{
	return t->py;
}

/* Under t->lock. */
static int insert(struct pyx_types *t, struct pyx_typeinfo *ti)
{
	struct slot_table *st = t->slots;
	struct pyx_typeinfo **e;
	size_t id = t->n, mask;
	unsigned k;

	/* The segments hold (2^NSEGS - 1) << SEG0_SHIFT ids, fewer than a
	 * uint32_t counts. */
	if (id >= ((((size_t)1 << NSEGS) - 1) << SEG0_SHIFT))
		return -PYX_E_NOMEM;
	k = 63u - (unsigned)__builtin_clzll((id >> SEG0_SHIFT) + 1);
	if (!t->seg[k] &&
	    !(t->seg[k] = calloc((size_t)1 << (k + SEG0_SHIFT), sizeof(*t->seg[k]))))
		return -PYX_E_NOMEM;
	if ((id + 1) * 2 > st->n) {
		size_t ns = st->n * 2;
		struct slot_table *nt = slot_table_new(ns);

		if (!nt)
			return -PYX_E_NOMEM;
		for (size_t i = 0; i < id; i++) {
			size_t h = hash_addr((*entry(t, i))->addr) & (ns - 1);

			while (nt->s[h])
				h = (h + 1) & (ns - 1);
			nt->s[h] = (uint32_t)i + 1;
		}
		/* Readers may still probe the old table: it stays. */
		nt->older = st;
		__atomic_store_n(&t->slots, nt, __ATOMIC_RELEASE);
		st = nt;
	}
	mask = st->n - 1;
	ti->id = (uint32_t)id;
	ti->match = -1;
	e = entry(t, id);
	__atomic_store_n(e, ti, __ATOMIC_RELEASE);
	for (size_t h = hash_addr(ti->addr) & mask;; h = (h + 1) & mask) {
		if (!st->s[h]) {
			__atomic_store_n(&st->s[h], ti->id + 1, __ATOMIC_RELEASE);
			break;
		}
	}
	__atomic_store_n(&t->n, id + 1, __ATOMIC_RELEASE);
	return 0;
}

/* The entry of tp, without a lock: NULL if there is none yet (or it is
 * being inserted: the caller then looks again under the lock). */
static inline struct pyx_typeinfo *lookup(const struct pyx_types *t,
					  pyx_addr_t tp)
{
	const struct slot_table *st = __atomic_load_n(&t->slots, __ATOMIC_ACQUIRE);
	size_t mask = st->n - 1;
	uint32_t v;

	for (size_t h = hash_addr(tp) & mask;
	     (v = __atomic_load_n(&st->s[h], __ATOMIC_ACQUIRE));
	     h = (h + 1) & mask) {
		struct pyx_typeinfo *ti = __atomic_load_n(entry(t, v - 1),
							  __ATOMIC_ACQUIRE);

		if (ti->addr == tp)
			return ti;
	}
	return NULL;
}

/* What a type is: the kind of its nearest known base. */
static enum pyx_kind kind_of(struct pyx_types *t, pyx_addr_t tp)
{
	struct pyx_python *py = t->py;
	const struct pyx_known_types *k = &py->types;
	static const struct {
		const char *name;
		enum pyx_kind kind;
	} by_name[] = {
		/* module types, static or heap depending on the version */
		{ "collections.deque", PYX_K_DEQUE },
		{ "functools._lru_cache_wrapper", PYX_K_LRU },
		{ "functools._lru_list_elem", PYX_K_LRU_ELEM },
		{ "frame", PYX_K_FRAME },
		{ "traceback", PYX_K_TRACEBACK },
		{ "weakref", PYX_K_WEAKREF },
		{ "weakref.ReferenceType", PYX_K_WEAKREF },
		{ "weakproxy", PYX_K_WEAKREF },
		{ "weakref.ProxyType", PYX_K_WEAKREF },
		{ "weakcallableproxy", PYX_K_WEAKREF },
		{ "weakref.CallableProxyType", PYX_K_WEAKREF },
		{ "generator", PYX_K_GENERATOR },
		{ "coroutine", PYX_K_GENERATOR },
		{ "async_generator", PYX_K_GENERATOR },
		{ "_io.BufferedReader", PYX_K_BUFFERED },
		{ "_io.BufferedWriter", PYX_K_BUFFERED },
		{ "_io.BufferedRandom", PYX_K_BUFFERED },
		/* 3.15: a dict's layout, not a dict subclass */
		{ "frozendict", PYX_K_DICT },
	};
	uint64_t flags;

	/* Py_TPFLAGS_BASE_EXC_SUBCLASS: inherited by every exception class. */
	if (pyx_read_field(py, tp, PYX_L_TP_FLAGS, &flags) == 0 &&
	    (flags & (1UL << 30)))
		return PYX_K_EXCEPTION;

	for (int depth = 0; tp && depth < MAX_BASE_DEPTH; depth++) {
		char name[64];
		uint64_t base, np;

		if (tp == k->str) return PYX_K_STR;
		if (tp == k->bytes) return PYX_K_BYTES;
		if (tp == k->bytearray) return PYX_K_BYTEARRAY;
		if (tp == k->long_) return PYX_K_INT;
		if (tp == k->float_) return PYX_K_FLOAT;
		if (tp == k->tuple) return PYX_K_TUPLE;
		if (tp == k->list) return PYX_K_LIST;
		if (tp == k->dict) return PYX_K_DICT;
		if (tp == k->set || tp == k->frozenset) return PYX_K_SET;
		if (tp == k->type) return PYX_K_TYPE;
		if (tp == k->module) return PYX_K_MODULE;
		if (tp == k->function) return PYX_K_FUNCTION;
		if (tp == k->cell) return PYX_K_CELL;
		if (tp == k->method) return PYX_K_METHOD;
		if (tp == k->cfunction) return PYX_K_CFUNCTION;
		if (tp == k->code) return PYX_K_CODE;
		if (tp == k->object) return PYX_K_OBJECT;
		if (pyx_read_field(py, tp, PYX_L_TP_NAME, &np) == 0 && np &&
		    pyx_mem_read_cstr(py->mem, np, name, sizeof(name)) == 0)
			for (size_t i = 0; i < PYX_ARRAY_SIZE(by_name); i++)
				if (strcmp(name, by_name[i].name) == 0)
					return by_name[i].kind;
		if (pyx_read_field(py, tp, PYX_L_TP_BASE, &base))
			break;
		tp = base;
	}
	pyx_err_clear();
	return PYX_K_OTHER;
}

static int add_slot(struct pyx_typeinfo *ti, int64_t off, const char *name)
{
	int32_t *s;
	char **nm;

	for (uint32_t i = 0; i < ti->nslots; i++)
		if (ti->slots[i] == off)
			return 0;
	s = realloc(ti->slots, (ti->nslots + 1) * sizeof(*s));
	if (!s)
		return -PYX_E_NOMEM;
	ti->slots = s;
	nm = realloc(ti->slot_names, (ti->nslots + 1) * sizeof(*nm));
	if (!nm)
		return -PYX_E_NOMEM;
	ti->slot_names = nm;
	nm[ti->nslots] = name[0] ? strdup(name) : NULL;
	ti->slots[ti->nslots++] = (int32_t)off;
	return 0;
}

/* Object members (T_OBJECT, T_OBJECT_EX) of the types in the tp_base
 * chain: __slots__ of classes, and fields C types describe.  For the kinds
 * read field by field, only those of classes (heap types). */
static int collect_slots(struct pyx_types *t, struct pyx_typeinfo *ti)
{
	struct pyx_python *py = t->py;
	int32_t msize = pyx_off(py, PYX_L_SZ_MEMBER_DEF);
	bool all = ti->kind == PYX_K_OBJECT || ti->kind == PYX_K_OTHER ||
		   ti->kind >= PYX_K_FRAME;
	pyx_addr_t tp = ti->addr;
	int left = MAX_MEMBERS, err;

	if (msize == PYX_OFF_NONE || !pyx_layout_has(&py->layout, PYX_L_TP_MEMBERS) ||
	    !pyx_layout_has(&py->layout, PYX_L_MEMBER_TYPE))
		return 0;
	for (int depth = 0; tp && depth < MAX_BASE_DEPTH; depth++) {
		uint64_t members, flags, base;

		if ((err = pyx_read_field(py, tp, PYX_L_TP_MEMBERS, &members)) ||
		    (err = pyx_read_field(py, tp, PYX_L_TP_FLAGS, &flags)) ||
		    (err = pyx_read_field(py, tp, PYX_L_TP_BASE, &base)))
			return err;
		/* Bounded over the whole chain: add_slot() is quadratic. */
		for (int i = 0; members && (all || (flags & PYX_TPFLAGS_HEAPTYPE)) &&
				left > 0; i++, left--) {
			pyx_addr_t m = members + (uint64_t)i * (uint64_t)msize;
			uint64_t name, type, off;

			if ((err = pyx_mem_read_u64(py->mem, m, &name)))
				return err;
			if (!name)
				break;
			if ((err = pyx_read_field_n(py, m, PYX_L_MEMBER_TYPE, 4,
						    &type)) ||
			    (err = pyx_read_field(py, m, PYX_L_MEMBER_OFFSET, &off)))
				return err;
			if ((type == T_OBJECT || type == T_OBJECT_EX) &&
			    (int64_t)off >= 16 && off < ti->basicsize &&
			    !(off & 7)) {
				char mname[64];

				/* the name labels the refs walker's edges */
				if (pyx_mem_read_cstr(py->mem, name, mname,
						      sizeof(mname)))
					mname[0] = '\0';
				pyx_err_clear();
				if ((err = add_slot(ti, (int64_t)off, mname)))
					return err;
			}
		}
		tp = base;
	}
	return 0;
}

/* "module.qualname" for a class, tp_name for a static type. */
static void type_name(struct pyx_types *t, struct pyx_typeinfo *ti,
		      char *buf, size_t n)
{
	struct pyx_python *py = t->py;
	uint64_t np, qual, dict;
	pyx_addr_t mod;
	char q[256], m[256];

	buf[0] = '\0';
	if ((ti->flags & PYX_TPFLAGS_HEAPTYPE) &&
	    pyx_read_field(py, ti->addr, PYX_L_HT_QUALNAME, &qual) == 0 &&
	    pyx_str_read(py, qual, q, sizeof(q)) == 0) {
		if (pyx_read_field(py, ti->addr, PYX_L_TP_DICT, &dict) == 0 &&
		    dict && pyx_dict_get_str(py, dict, "__module__", &mod) == 0 &&
		    pyx_str_read(py, mod, m, sizeof(m)) == 0)
			snprintf(buf, n, "%s.%s", m, q);
		else
			snprintf(buf, n, "%s", q);
	} else if (pyx_read_field(py, ti->addr, PYX_L_TP_NAME, &np) == 0 && np) {
		pyx_mem_read_cstr(py->mem, np, buf, n);
	}
	if (!buf[0])
		snprintf(buf, n, "<type at " PYX_PRIaddr ">", ti->addr);
	/* Names go into text files and tables: no control characters. */
	for (char *p = buf; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = '?';
	pyx_err_clear();
}

static int build(struct pyx_types *t, pyx_addr_t tp, struct pyx_typeinfo *ti)
{
	struct pyx_python *py = t->py;
	uint64_t mt, mflags, off;
	char name[512];
	int err;

	ti->addr = tp;
	ti->kind = PYX_K_INVALID;
	if (!tp || (tp & 7))
		return pyx_err_set(PYX_E_BAD_MEMORY, "bad type pointer "
				   PYX_PRIaddr, tp);
	/* A type object's type is type or a metaclass. */
	if ((err = pyx_read_field(py, tp, PYX_L_OB_TYPE, &mt)))
		return err;
	if (mt != py->types.type &&
	    (!mt || (mt & 7) || pyx_read_field(py, mt, PYX_L_TP_FLAGS, &mflags) ||
	     !(mflags & PYX_TPFLAGS_TYPE_SUBCLASS)))
		return pyx_err_set(PYX_E_BAD_MEMORY, PYX_PRIaddr
				   " is not a type object", tp);
	if ((err = pyx_read_field(py, tp, PYX_L_TP_FLAGS, &ti->flags)) ||
	    (err = pyx_read_field(py, tp, PYX_L_TP_BASICSIZE, &ti->basicsize)) ||
	    (err = pyx_read_field(py, tp, PYX_L_TP_ITEMSIZE, &ti->itemsize)) ||
	    (err = pyx_read_field(py, tp, PYX_L_TP_DICTOFFSET, &off)))
		return err;
	if (ti->basicsize > (1u << 24) || ti->itemsize > (1u << 16))
		return pyx_err_set(PYX_E_BAD_MEMORY, "type " PYX_PRIaddr
				   " has sizes %" PRIu64 "/%" PRIu64, tp,
				   ti->basicsize, ti->itemsize);
	ti->dictoffset = (int64_t)off;
	ti->gc = ti->flags & PYX_TPFLAGS_HAVE_GC;
	ti->has_dict = off != 0 || (py->k.managed_dict_word &&
				    (ti->flags & PYX_TPFLAGS_MANAGED_DICT));
	ti->preheader = (uint32_t)pyx_size_preheader(&t->rules, ti->flags,
						     false, 0, false);
	ti->kind = kind_of(t, tp);
	if ((err = collect_slots(t, ti)))
		return err;
	type_name(t, ti, name, sizeof(name));
	ti->name = strdup(name);
	return ti->name ? 0 : -PYX_E_NOMEM;
}

static int found(const struct pyx_typeinfo *ti, const struct pyx_typeinfo **out)
{
	*out = ti;
	if (ti->kind == PYX_K_INVALID)
		return pyx_err_set(PYX_E_BAD_MEMORY, PYX_PRIaddr
				   " is not a type object", ti->addr);
	return 0;
}

/* Build the entry of tp and insert it; under t->lock. */
static int add(struct pyx_types *t, pyx_addr_t tp,
	       const struct pyx_typeinfo **out)
{
	struct pyx_typeinfo *ti;
	int err, ins;

	ti = calloc(1, sizeof(*ti));
	if (!ti)
		return -PYX_E_NOMEM;
	err = build(t, tp, ti);
	if (err == -PYX_E_NOMEM) {
		free_slots(ti);
		free(ti);
		return err;
	}
	if (err) {
		/* Remember the bad pointer; keep the error detail. */
		char detail[256];

		snprintf(detail, sizeof(detail), "%s", pyx_err_detail());
		free_slots(ti);
		ti->kind = PYX_K_INVALID;
		free(ti->name);
		ti->name = strdup("<invalid type>");
		if (!ti->name || (ins = insert(t, ti))) {
			free(ti->name);
			free(ti);
			return -PYX_E_NOMEM;
		}
		*out = ti;
		return pyx_err_set(PYX_E_BAD_MEMORY, "%s", detail);
	}
	if ((ins = insert(t, ti))) {
		free_slots(ti);
		free(ti->name);
		free(ti);
		return ins;
	}
	*out = ti;
	return 0;
}

int pyx_types_get(struct pyx_types *t, pyx_addr_t tp,
		  const struct pyx_typeinfo **out)
{
	const struct pyx_typeinfo *ti = lookup(t, tp);
	int err;

	if (ti)
		return found(ti, out);
	/* Built under the lock: two threads meeting a new type at once
	 * must not both insert it (ids are per-type array indexes). */
	pthread_mutex_lock(&t->lock);
	ti = lookup(t, tp);
	if (ti) {
		pthread_mutex_unlock(&t->lock);
		return found(ti, out);
	}
	err = add(t, tp, out);
	pthread_mutex_unlock(&t->lock);
	return err;
}

/* ---- referents -------------------------------------------------------- */

/* n words at addr: from the snapshot, else copied into *buf.  n comes
 * from the target: the buffer is only allocated for a range that is
 * mapped. */
static int words(struct pyx_python *py, pyx_addr_t addr, uint64_t n,
		 const uint64_t **out, uint64_t **buf)
{
	*buf = NULL;
	*out = NULL;
	if (n == 0)
		return 0;
	if (n > MAX_WORDS || (addr & 7))
		return pyx_err_set(PYX_E_BAD_MEMORY, "%" PRIu64 " words at "
				   PYX_PRIaddr ": corrupt count or pointer", n,
				   addr);
	*out = pyx_heap_words(py->mem, addr, n * 8);
	if (*out)
		return 0;
	if (!pyx_mem_valid(py->mem, addr, n * 8))
		return pyx_err_set(PYX_E_BAD_MEMORY, "%" PRIu64 " words at "
				   PYX_PRIaddr ": not mapped", n, addr);
	*buf = malloc(n * 8);
	if (!*buf)
		return -PYX_E_NOMEM;
	*out = *buf;
	return pyx_mem_read(py->mem, addr, *buf, n * 8);
}

static int visit(pyx_ref_fn fn, void *ctx, enum pyx_ref_kind kind,
		 pyx_addr_t target, uint64_t index, pyx_addr_t key,
		 const char *name)
{
	struct pyx_ref r = { kind, target, index, key, name };

	if (!target)
		return 0;
	return fn(ctx, &r);
}

static int visit_array(struct pyx_python *py, pyx_addr_t items, uint64_t n,
		       size_t max, pyx_ref_fn fn, void *ctx)
{
	const uint64_t *v;
	uint64_t *buf;
	int err;

	if (n > max)
		return pyx_err_set(PYX_E_BAD_MEMORY, "container of %" PRIu64
				   " items (more than %zu)", n, max);
	if ((err = words(py, items, n, &v, &buf)) == 0)
		for (uint64_t i = 0; i < n && !err; i++)
			err = visit(fn, ctx, PYX_REF_ITEM, v[i], i, 0, NULL);
	free(buf);
	return err;
}

/* Named pointer fields: each layout entry present in this build. */
struct field {
	enum pyx_layout_id id;
	const char *name;
};

static int visit_fields(struct pyx_python *py, pyx_addr_t obj,
			const struct field *f, size_t n, pyx_ref_fn fn,
			void *ctx)
{
	int err = 0;

	for (size_t i = 0; i < n && !err; i++) {
		uint64_t v;

		if (!pyx_layout_has(&py->layout, f[i].id))
			continue;
		if ((err = pyx_read_field(py, obj, f[i].id, &v)))
			return err;
		err = visit(fn, ctx, PYX_REF_FIELD, v, 0, 0, f[i].name);
	}
	return err;
}

static const struct field function_fields[] = {
	{ PYX_L_FUNC_CODE, "__code__" },
	{ PYX_L_FUNC_GLOBALS, "__globals__" },
	{ PYX_L_FUNC_BUILTINS, "__builtins__" },
	{ PYX_L_FUNC_NAME, "__name__" },
	{ PYX_L_FUNC_QUALNAME, "__qualname__" },
	{ PYX_L_FUNC_DEFAULTS, "__defaults__" },
	{ PYX_L_FUNC_KWDEFAULTS, "__kwdefaults__" },
	{ PYX_L_FUNC_CLOSURE, "__closure__" },
	{ PYX_L_FUNC_DOC, "__doc__" },
	{ PYX_L_FUNC_DICT, "__dict__" },
	{ PYX_L_FUNC_MODULE, "__module__" },
	{ PYX_L_FUNC_ANNOTATIONS, "__annotations__" },
	{ PYX_L_FUNC_TYPEPARAMS, "__type_params__" },
};

static const struct field code_fields[] = {
	{ PYX_L_CO_CONSTS, "co_consts" },
	{ PYX_L_CO_NAMES, "co_names" },
	{ PYX_L_CO_VARNAMES, "co_varnames" },
	{ PYX_L_CO_FREEVARS, "co_freevars" },
	{ PYX_L_CO_CELLVARS, "co_cellvars" },
	{ PYX_L_CO_LOCALSPLUSKINDS, "co_localspluskinds" },
	{ PYX_L_CO_EXCEPTIONTABLE, "co_exceptiontable" },
	{ PYX_L_CO_FILENAME, "co_filename" },
	{ PYX_L_CO_NAME, "co_name" },
	{ PYX_L_CO_QUALNAME, "co_qualname" },
	{ PYX_L_CO_LINETABLE, "co_linetable" },
	{ PYX_L_CO_CODE, "co_code" },
};

static const struct field type_fields[] = {
	{ PYX_L_TP_DICT, "__dict__" },
	{ PYX_L_TP_MRO, "__mro__" },
	{ PYX_L_TP_BASES, "__bases__" },
	{ PYX_L_TP_BASE, "__base__" },
};

static const struct field heap_type_fields[] = {
	{ PYX_L_HT_NAME, "__name__" },
	{ PYX_L_HT_QUALNAME, "__qualname__" },
	{ PYX_L_HT_SLOTS, "__slots__" },
	{ PYX_L_HT_MODULE, "__module__ (C)" },
};

static const struct field module_fields[] = {
	{ PYX_L_MODULE_DICT, "__dict__" },
	{ PYX_L_MODULE_NAME, "__name__" },
};

static const struct field cell_fields[] = {
	{ PYX_L_CELL_REF, "cell_contents" },
};

static const struct field method_fields[] = {
	{ PYX_L_METHOD_FUNC, "__func__" },
	{ PYX_L_METHOD_SELF, "__self__" },
};

static const struct field cfunction_fields[] = {
	{ PYX_L_CFUNC_SELF, "__self__" },
	{ PYX_L_CFUNC_MODULE, "__module__" },
};

static const struct field lru_fields[] = {
	{ PYX_L_LRU_CACHE, "cache" },
	{ PYX_L_LRU_FUNC, "__wrapped__" },
};

static const struct field lru_elem_fields[] = {
	{ PYX_L_LRU_ELEM_KEY, "key" },
	{ PYX_L_LRU_ELEM_RESULT, "result" },
};

struct dict_visit {
	pyx_ref_fn fn;
	void *ctx;
	uint64_t i;
	bool attrs;
};

static int on_item(void *vctx, pyx_addr_t key, pyx_addr_t value)
{
	struct dict_visit *d = vctx;
	int err;

	if (d->attrs)
		return visit(d->fn, d->ctx, PYX_REF_ATTR, value, d->i++, key,
			     NULL);
	if ((err = visit(d->fn, d->ctx, PYX_REF_DICT_KEY, key, d->i++, 0, NULL)))
		return err;
	return visit(d->fn, d->ctx, PYX_REF_DICT_VALUE, value, 0, key, NULL);
}

/* Shared keys of a class: their names are referents of the class. */
static int on_key(void *vctx, pyx_addr_t key, pyx_addr_t value)
{
	struct dict_visit *d = vctx;

	(void)value;
	return visit(d->fn, d->ctx, PYX_REF_FIELD, key, d->i++, 0,
		     "shared key");
}

static int set_items(struct pyx_python *py, pyx_addr_t obj, size_t max,
		     pyx_ref_fn fn, void *ctx, pyx_addr_t dummy)
{
	uint64_t table, mask;
	const uint64_t *v;
	uint64_t *buf;
	int err;

	if ((err = pyx_read_field(py, obj, PYX_L_SET_TABLE, &table)) ||
	    (err = pyx_read_field(py, obj, PYX_L_SET_MASK, &mask)))
		return err;
	/* mask is table size - 1, a power of 2 less 1: -1 would wrap
	 * mask + 1 to 0, an empty table looped over 2^64 times. */
	if (mask >= max || mask >= MAX_WORDS / 2 || ((mask + 1) & mask))
		return pyx_err_set(PYX_E_BAD_MEMORY, "set " PYX_PRIaddr
				   " has mask %" PRId64 ": corrupt", obj,
				   (int64_t)mask);
	/* setentry {key, hash} */
	if ((err = words(py, table, 2 * (mask + 1), &v, &buf)) == 0)
		for (uint64_t i = 0; i <= mask && !err; i++)
			if (v[2 * i] != dummy)
				err = visit(fn, ctx, PYX_REF_SET_ITEM, v[2 * i],
					    i, 0, NULL);
	free(buf);
	return err;
}

static int deque_items(struct pyx_python *py, pyx_addr_t obj, size_t max,
		       pyx_ref_fn fn, void *ctx)
{
	int32_t bsize = pyx_off(py, PYX_L_SZ_DEQUE_BLOCK);
	uint64_t block, idx, len, blocklen;
	int err = 0;

	if (bsize == PYX_OFF_NONE || bsize <= 16)
		return 0;
	blocklen = ((uint64_t)bsize - 16) / 8;
	if ((err = pyx_read_field(py, obj, PYX_L_DEQUE_LEFTBLOCK, &block)) ||
	    (err = pyx_read_field(py, obj, PYX_L_DEQUE_LEFTINDEX, &idx)) ||
	    (err = pyx_read_field(py, obj, PYX_L_OB_SIZE, &len)))
		return err;
	if (len > max || idx >= blocklen)
		return pyx_err_set(PYX_E_BAD_MEMORY, "deque " PYX_PRIaddr
				   " corrupt", obj);
	for (uint64_t i = 0; i < len && !err;) {
		uint64_t n = blocklen - idx < len - i ? blocklen - idx : len - i;
		const uint64_t *v;
		uint64_t *buf;

		if (!block)
			return pyx_err_set(PYX_E_BAD_MEMORY, "deque " PYX_PRIaddr
					   " ends early", obj);
		err = words(py, block + (uint64_t)pyx_off(py, PYX_L_BLOCK_DATA) +
				idx * 8, n, &v, &buf);
		for (uint64_t j = 0; j < n && !err; j++)
			err = visit(fn, ctx, PYX_REF_ITEM, v[j], i + j, 0, NULL);
		free(buf);
		i += n;
		idx = 0;
		if (!err && i < len)
			err = pyx_read_field(py, block, PYX_L_BLOCK_RIGHTLINK,
					     &block);
	}
	return err;
}

#define FIELDS(f) f, PYX_ARRAY_SIZE(f)

static int tuple_item(struct pyx_python *py, pyx_addr_t tup, uint64_t i,
		      uint64_t *out)
{
	uint64_t n;
	int err;

	*out = 0;
	if (!tup || (err = pyx_read_field(py, tup, PYX_L_OB_SIZE, &n)))
		return tup ? err : 0;
	if (i >= n)
		return 0;
	return pyx_mem_read_u64(py->mem, tup + (uint64_t)pyx_off(py, PYX_L_TUPLE_ITEM) +
				8 * i, out);
}

static int tuple_len(struct pyx_python *py, pyx_addr_t tup, uint64_t *n)
{
	*n = 0;
	return tup ? pyx_read_field(py, tup, PYX_L_OB_SIZE, n) : 0;
}

int pyx_code_local_name(struct pyx_python *py, pyx_addr_t code, uint64_t i,
			char *buf, size_t n)
{
	uint64_t names, name = 0, nlocals, cells, ncells;
	int err;

	buf[0] = '\0';
	if ((err = pyx_read_field(py, code, PYX_L_CO_VARNAMES, &names)))
		return err;
	if (pyx_layout_has(&py->layout, PYX_L_CO_NLOCALSPLUS)) {
		err = tuple_item(py, names, i, &name);
	} else if ((err = pyx_read_field_n(py, code, PYX_L_CO_NLOCALS, 4,
					   &nlocals)) == 0) {
		/* localsplus: locals, then cell, then free variables */
		if (i < nlocals)
			err = tuple_item(py, names, i, &name);
		else if (!(err = pyx_read_field(py, code, PYX_L_CO_CELLVARS, &cells)) &&
			 !(err = tuple_len(py, cells, &ncells))) {
			if (i - nlocals < ncells) {
				err = tuple_item(py, cells, i - nlocals, &name);
			} else if (!(err = pyx_read_field(py, code, PYX_L_CO_FREEVARS,
							  &names)))
				err = tuple_item(py, names, i - nlocals - ncells,
						 &name);
		}
	}
	if (err)
		return err;
	if (!name)
		return pyx_err_set(PYX_E_BAD_MEMORY, "code " PYX_PRIaddr
				   " has no local %" PRIu64, code, i);
	return pyx_str_read(py, name, buf, n);
}

int pyx_frame_localsplus(struct pyx_python *py, pyx_addr_t frame,
			 pyx_addr_t code, pyx_addr_t *at, uint64_t *n)
{
	uint64_t a, b = 0, c = 0, cells, frees;
	int err;

	*at = 0;
	*n = 0;
	if (py->k.interp_frames) {
		if (!pyx_layout_has(&py->layout, PYX_L_IF_LOCALSPLUS))
			return pyx_err_set(PYX_E_LAYOUT, "no _PyInterpreterFrame."
					   "localsplus in the layout");
		if ((err = pyx_read_field_n(py, code, PYX_L_CO_NLOCALSPLUS, 4, n)))
			return err;
		*at = frame + (uint64_t)pyx_off(py, PYX_L_IF_LOCALSPLUS);
	} else {
		if (!pyx_layout_has(&py->layout, PYX_L_FO_LOCALSPLUS))
			return pyx_err_set(PYX_E_LAYOUT, "no PyFrameObject."
					   "f_localsplus in the layout");
		if ((err = pyx_read_field_n(py, code, PYX_L_CO_NLOCALS, 4, &a)) ||
		    (err = pyx_read_field(py, code, PYX_L_CO_CELLVARS, &cells)) ||
		    (err = tuple_len(py, cells, &b)) ||
		    (err = pyx_read_field(py, code, PYX_L_CO_FREEVARS, &frees)) ||
		    (err = tuple_len(py, frees, &c)))
			return err;
		/* each bounded first: their sum must not wrap */
		*n = a > MAX_LOCALS || b > MAX_LOCALS || c > MAX_LOCALS
		     ? UINT64_MAX : a + b + c;
		*at = frame + (uint64_t)pyx_off(py, PYX_L_FO_LOCALSPLUS);
	}
	if (*n > MAX_LOCALS) {
		uint64_t bad = *n;

		*n = 0;
		return pyx_err_set(PYX_E_BAD_MEMORY, "frame " PYX_PRIaddr
				   " has %" PRIu64 " locals", frame, bad);
	}
	return 0;
}

/* The fast locals of a frame object: [*lo, *hi) offsets from the frame,
 * the code in *code; also where the words worth scanning end (*end). */
static int frame_locals(struct pyx_python *py, pyx_addr_t obj,
			uint64_t basicsize, uint64_t *end, uint64_t *lo,
			uint64_t *hi, uint64_t *code)
{
	uint64_t n = 0, a, b, c, top = 0, stack_end = 0;
	int err;

	*lo = *hi = *code = 0;
	if (pyx_layout_has(&py->layout, PYX_L_FO_LOCALSPLUS)) {
		uint64_t cells, frees;

		/* 3.8-3.10: locals, cells, frees, then the value stack */
		if ((err = pyx_read_field(py, obj, PYX_L_FO_CODE, code)) ||
		    (err = pyx_read_field_n(py, *code, PYX_L_CO_NLOCALS, 4, &a)) ||
		    (err = pyx_read_field(py, *code, PYX_L_CO_CELLVARS, &cells)) ||
		    (err = tuple_len(py, cells, &b)) ||
		    (err = pyx_read_field(py, *code, PYX_L_CO_FREEVARS, &frees)) ||
		    (err = tuple_len(py, frees, &c)))
			return err;
		n = a > MAX_LOCALS || b > MAX_LOCALS || c > MAX_LOCALS
		    ? UINT64_MAX : a + b + c;
		*lo = (uint64_t)pyx_off(py, PYX_L_FO_LOCALSPLUS);
		/* A suspended generator's frame keeps its value stack (and
		 * the delegate of yield from / await) up to f_stacktop. */
		if (n <= MAX_LOCALS &&
		    pyx_layout_has(&py->layout, PYX_L_FO_STACKTOP) &&
		    (err = pyx_read_field(py, obj, PYX_L_FO_STACKTOP, &top)))
			return err;
		/* 3.10: f_valuestack[0 .. f_stackdepth) */
		if (n <= MAX_LOCALS &&
		    pyx_layout_has(&py->layout, PYX_L_FO_STACKDEPTH) &&
		    pyx_layout_has(&py->layout, PYX_L_FO_VALUESTACK)) {
			uint64_t vs, depth;

			if ((err = pyx_read_field(py, obj, PYX_L_FO_VALUESTACK,
						  &vs)) ||
			    (err = pyx_read_field_n(py, obj, PYX_L_FO_STACKDEPTH,
						    4, &depth)))
				return err;
			if (vs && depth > 0 && depth <= MAX_LOCALS)
				top = vs + 8 * depth;
		}
		if (n <= MAX_LOCALS && top > obj + *lo + 8 * n &&
		    top - obj <= *end)
			stack_end = (top - obj) & ~(uint64_t)7;
	} else if (pyx_layout_has(&py->layout, PYX_L_FO_FRAME) &&
		   pyx_layout_has(&py->layout, PYX_L_IF_LOCALSPLUS)) {
		uint64_t f, off = (uint64_t)pyx_off(py, PYX_L_IF_LOCALSPLUS);

		if ((err = pyx_read_field(py, obj, PYX_L_FO_FRAME, &f)))
			return err;
		/* A frame that outlived its call owns its data, inline:
		 * f_frame points inside the object's fixed part.  A running
		 * one points into the thread's data stack, which may lie
		 * just above the frame object yet is not its data (stale
		 * words there): the thread walk reads those locals. */
		if (f <= obj || f - obj > basicsize || f - obj > *end ||
		    off > *end - (f - obj)) {
			uint64_t stop = (uint64_t)pyx_off(py, PYX_L_FO_FRAME) + 16;

			*end = stop < *end ? stop : *end;
			return 0;
		}
		if ((err = pyx_iframe_code(py, f, code)) ||
		    (err = pyx_read_field_n(py, *code, PYX_L_CO_NLOCALSPLUS, 4, &n)))
			return err;
		*lo = f - obj + off;
	} else {
		return 0;
	}
	if (n > MAX_LOCALS)
		return pyx_err_set(PYX_E_BAD_MEMORY, "frame " PYX_PRIaddr
				   " has %" PRIu64 " locals", obj, n);
	*hi = *lo + 8 * n;
	/* The value stack above the locals may hold stale words: up to
	 * f_stacktop only, where it is known (3.8-3.10). */
	if (stack_end > *hi && stack_end < *end)
		*end = stack_end;
	else if (*hi < *end)
		*end = *hi;
	return 0;
}

pyx_addr_t pyx_gen_frame(struct pyx_python *py, pyx_addr_t gen)
{
	/* gi_frame_state at and past this: no live frame (3.15 renumbered
	 * the states: EXECUTING is 4 there) */
	int completed = py->k.gen_frame_completed;
	uint64_t st;

	if (!completed || !pyx_layout_has(&py->layout, PYX_L_GEN_IFRAME) ||
	    pyx_read_field_n(py, gen, PYX_L_GEN_FRAME_STATE, 1, &st)) {
		pyx_err_clear();
		return 0;
	}
	if ((int8_t)st >= completed)
		return 0;
	return gen + (uint64_t)pyx_off(py, PYX_L_GEN_IFRAME);
}

/* 3.11+ generators: the locals of the embedded frame, while it lives. */
static int gen_locals(struct pyx_python *py, pyx_addr_t obj, uint64_t *end,
		      uint64_t *lo, uint64_t *hi, uint64_t *code)
{
	pyx_addr_t f = pyx_gen_frame(py, obj);
	uint64_t n;
	int err;

	*lo = *hi = *code = 0;
	if (!pyx_layout_has(&py->layout, PYX_L_GEN_IFRAME))
		return 0; /* 3.8-3.10: gi_frame, a member */
	if (!f || !pyx_layout_has(&py->layout, PYX_L_IF_LOCALSPLUS)) {
		/* the fields before the frame only */
		*end = (uint64_t)pyx_off(py, PYX_L_GEN_IFRAME);
		return 0;
	}
	if ((err = pyx_iframe_code(py, f, code)) ||
	    (err = pyx_read_field_n(py, *code, PYX_L_CO_NLOCALSPLUS, 4, &n)))
		return err;
	if (n > MAX_LOCALS)
		return pyx_err_set(PYX_E_BAD_MEMORY, "generator " PYX_PRIaddr
				   " has %" PRIu64 " locals", obj, n);
	*lo = f - obj + (uint64_t)pyx_off(py, PYX_L_IF_LOCALSPLUS);
	*hi = *lo + 8 * n;
	*end = *hi;
	/* 3.14+: the value stack up to stackpointer holds references too;
	 * a generator suspended in yield from / await keeps its delegate
	 * there (stackpointer[-k.gen_yield_from_slot]). */
	if (pyx_layout_has(&py->layout, PYX_L_IF_STACKPOINTER)) {
		uint64_t sp;

		if ((err = pyx_read_field(py, f, PYX_L_IF_STACKPOINTER, &sp)))
			return err;
		if (sp > obj + *hi && sp - obj - *hi <= 8 * (uint64_t)MAX_LOCALS)
			*end = (sp - obj) & ~(uint64_t)7;
	} else if (pyx_layout_has(&py->layout, PYX_L_IF_STACKTOP)) {
		/* 3.11-3.13: stacktop counts slots from localsplus */
		uint64_t top;

		if ((err = pyx_read_field_n(py, f, PYX_L_IF_STACKTOP, 4, &top)))
			return err;
		if (top > n && top - n <= MAX_LOCALS)
			*end = *lo + 8 * top;
	}
	return 0;
}

static const struct field frame_fields[] = {
	{ PYX_L_FO_BACK, "f_back" },
	{ PYX_L_FO_CODE, "f_code" },
};

static const struct field traceback_fields[] = {
	{ PYX_L_TB_NEXT, "tb_next" },
	{ PYX_L_TB_FRAME, "tb_frame" },
};

static const struct field exception_fields[] = {
	{ PYX_L_EXC_ARGS, "args" },
	{ PYX_L_EXC_TRACEBACK, "__traceback__" },
	{ PYX_L_EXC_CONTEXT, "__context__" },
	{ PYX_L_EXC_CAUSE, "__cause__" },
};

#define MAX_SCAN_WORDS (1u << 22)

/* Every word of obj past its head: named fields, members, frame locals,
 * and the rest as inferred edges (the caller keeps those that hit an
 * object).  The instance dict word is left to the generic dict code. */
static int scan_words(struct pyx_python *py, pyx_addr_t obj,
		      const struct pyx_typeinfo *ti, pyx_ref_fn fn, void *ctx)
{
	const struct field *f = NULL;
	size_t nf = 0;
	uint64_t end = ti->basicsize, lo = 0, hi = 0, code = 0, size;
	const uint64_t *v;
	uint64_t *buf;
	int err = 0;

	/* Items of 8 bytes: pointers, if ob_size counts them.  Not every
	 * such type is a PyVarObject (3.11+ frames and generators are not):
	 * a count that does not fit is not scanned. */
	if (ti->itemsize == 8 && ti->kind != PYX_K_FRAME &&
	    ti->kind != PYX_K_GENERATOR) {
		if ((err = pyx_read_field(py, obj, PYX_L_OB_SIZE, &size)))
			return err;
		if ((int64_t)size < 0)
			size = (uint64_t)-(int64_t)size;
		if (size <= MAX_SCAN_WORDS)
			end += 8 * size;
	}
	switch (ti->kind) {
	case PYX_K_FRAME:
		f = frame_fields;
		nf = PYX_ARRAY_SIZE(frame_fields);
		/* the locals bound the scan (frame_locals) */
		end += 8 * (uint64_t)MAX_SCAN_WORDS / 2;
		if ((err = frame_locals(py, obj, ti->basicsize, &end, &lo, &hi,
					 &code)))
			return err;
		if (!hi && end > ti->basicsize)
			end = ti->basicsize;
		break;
	case PYX_K_GENERATOR:
		if ((err = gen_locals(py, obj, &end, &lo, &hi, &code)))
			return err;
		break;
	case PYX_K_TRACEBACK:
		f = traceback_fields;
		nf = PYX_ARRAY_SIZE(traceback_fields);
		break;
	case PYX_K_EXCEPTION:
		f = exception_fields;
		nf = PYX_ARRAY_SIZE(exception_fields);
		break;
	default:
		break;
	}
	end &= ~(uint64_t)7;
	if (end <= 16 || end / 8 > MAX_SCAN_WORDS)
		return 0;
	if ((err = words(py, obj, end / 8, &v, &buf)))
		goto out;
	for (uint64_t o = 16; o < end && !err; o += 8) {
		enum pyx_ref_kind kind = PYX_REF_INFERRED;
		const char *name = NULL;
		uint64_t index = o, w8;
		pyx_addr_t key = 0;

		if (ti->dictoffset > 0 && o == (uint64_t)ti->dictoffset)
			continue;
		if (o >= lo && o < hi) {
			kind = PYX_REF_LOCAL;
			index = (o - lo) / 8;
			key = code;
		} else if (hi && o >= hi) {
			kind = PYX_REF_FIELD;
			name = "value stack";
		} else {
			for (size_t i = 0; i < nf; i++)
				if (pyx_layout_has(&py->layout, f[i].id) &&
				    (uint64_t)pyx_off(py, f[i].id) == o) {
					kind = PYX_REF_FIELD;
					name = f[i].name;
				}
			for (uint32_t i = 0; kind == PYX_REF_INFERRED &&
					     i < ti->nslots; i++)
				if ((uint64_t)ti->slots[i] == o) {
					kind = PYX_REF_SLOT;
					name = ti->slot_names[i];
				}
		}
		w8 = v[o / 8];
		/* Frame slots are _PyStackRefs in 3.14+: tag 1 (borrowed,
		 * not in ob_refcnt) or 0; tagged ints read as 0. */
		if (hi && o >= lo)
			w8 = pyx_abi_untag(py, w8);
		if (w8 && !(w8 & 7))
			err = visit(fn, ctx, kind, w8, index, key, name);
	}
out:
	free(buf);
	return err;
}

int pyx_referents(struct pyx_types *t, pyx_addr_t obj,
		  const struct pyx_typeinfo *ti, size_t max_items,
		  pyx_ref_fn fn, void *ctx)
{
	return pyx_referents_ex(t, obj, ti, max_items, 0, fn, ctx);
}

int pyx_referents_ex(struct pyx_types *t, pyx_addr_t obj,
		     const struct pyx_typeinfo *ti, size_t max_items,
		     unsigned flags, pyx_ref_fn fn, void *ctx)
{
	struct pyx_python *py = t->py;
	struct dict_visit d = { fn, ctx, 0, false };
	uint64_t n, items, dict, values;
	bool generic_dict = ti->has_dict;
	int err = 0;

	switch (ti->kind) {
	case PYX_K_INVALID:
		return pyx_err_set(PYX_E_BAD_MEMORY, "object " PYX_PRIaddr
				   " has no type", obj);
	case PYX_K_TUPLE:
		if (!(err = pyx_read_field(py, obj, PYX_L_OB_SIZE, &n)))
			err = visit_array(py, obj + (uint64_t)pyx_off(py, PYX_L_TUPLE_ITEM),
					  n, max_items, fn, ctx);
		break;
	case PYX_K_LIST:
		if (!(err = pyx_read_field(py, obj, PYX_L_OB_SIZE, &n)) &&
		    !(err = pyx_read_field(py, obj, PYX_L_LIST_ITEM, &items)) && n)
			err = visit_array(py, items, n, max_items, fn, ctx);
		break;
	case PYX_K_DICT:
		err = pyx_dict_like_foreach(py, obj, max_items, on_item, &d);
		break;
	case PYX_K_SET:
		err = set_items(py, obj, max_items, fn, ctx, t->set_dummy);
		break;
	case PYX_K_DEQUE:
		err = deque_items(py, obj, max_items, fn, ctx);
		break;
	case PYX_K_TYPE: {
		uint64_t tflags, keys;

		generic_dict = false; /* tp_dictoffset is for instances */
		if ((err = visit_fields(py, obj, FIELDS(type_fields), fn, ctx)) ||
		    (err = pyx_read_field(py, obj, PYX_L_TP_FLAGS, &tflags)) ||
		    !(tflags & PYX_TPFLAGS_HEAPTYPE))
			break;
		if ((err = visit_fields(py, obj, FIELDS(heap_type_fields), fn,
					ctx)) ||
		    (err = pyx_read_field(py, obj, PYX_L_HT_CACHED_KEYS, &keys)))
			break;
		if (keys)
			err = pyx_dict_keys_foreach(py, keys, max_items, on_key,
						    &d);
		break;
	}
	case PYX_K_MODULE:
		generic_dict = false;
		err = visit_fields(py, obj, FIELDS(module_fields), fn, ctx);
		break;
	case PYX_K_FUNCTION:
		err = visit_fields(py, obj, FIELDS(function_fields), fn, ctx);
		break;
	case PYX_K_CELL:
		err = visit_fields(py, obj, FIELDS(cell_fields), fn, ctx);
		break;
	case PYX_K_METHOD:
		err = visit_fields(py, obj, FIELDS(method_fields), fn, ctx);
		break;
	case PYX_K_CFUNCTION:
		err = visit_fields(py, obj, FIELDS(cfunction_fields), fn, ctx);
		break;
	case PYX_K_CODE:
		err = visit_fields(py, obj, FIELDS(code_fields), fn, ctx);
		break;
	case PYX_K_LRU:
		err = visit_fields(py, obj, FIELDS(lru_fields), fn, ctx);
		break;
	case PYX_K_LRU_ELEM:
		err = visit_fields(py, obj, FIELDS(lru_elem_fields), fn, ctx);
		break;
	case PYX_K_OBJECT: /* C types based on object too: their fields */
	case PYX_K_GENERATOR:
	case PYX_K_OTHER:
	case PYX_K_BUFFERED:
	case PYX_K_FRAME:
	case PYX_K_TRACEBACK:
	case PYX_K_EXCEPTION:
		if (!(flags & PYX_REFERENTS_FULL))
			break;
		/* Every word, members included: no second visit of those. */
		if ((err = scan_words(py, obj, ti, fn, ctx)))
			return err;
		goto tail;
	default:
		break;
	}
	if (err)
		return err;
	for (uint32_t i = 0; i < ti->nslots && !err; i++) {
		uint64_t v;

		if ((err = pyx_mem_read_u64(py->mem, obj + (uint64_t)ti->slots[i],
					    &v)))
			return err;
		err = visit(fn, ctx, PYX_REF_SLOT, v, (uint64_t)ti->slots[i], 0,
			    ti->slot_names[i]);
	}
tail:
	if (!err && (ti->flags & PYX_TPFLAGS_HEAPTYPE))
		err = visit(fn, ctx, PYX_REF_TYPE, ti->addr, 0, 0, "__class__");
	if (err || !generic_dict)
		return err;
	if ((err = pyx_obj_dict_or_values(py, obj, ti->addr, ti->flags, &dict,
					  &values)))
		return err;
	if (dict)
		return visit(fn, ctx, PYX_REF_DICT, dict, 0, 0, "__dict__");
	if (values) {
		d.attrs = true;
		err = pyx_values_foreach(py, ti->addr, values, max_items,
					 on_item, &d);
	}
	return err;
}
