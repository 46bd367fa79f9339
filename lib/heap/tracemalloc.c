/* tracemalloc's traces, read from outside (include/pyxray/allocs.h).
 *
 * Where tracemalloc keeps its state:
 *   3.8-3.11  static variables of Modules/_tracemalloc.c (tracemalloc_traces,
 *             tracemalloc_domains from 3.9, tracemalloc_traced_memory,
 *             tracemalloc_peak_traced_memory) and _Py_tracemalloc_config,
 *             found by symbol (pyx_python_symbol(): the DWARF file's symbol
 *             tables; a stripped build has only the config's);
 *   3.12+     _PyRuntime.tracemalloc.
 * Its hashtable (_Py_hashtable_t): buckets of singly linked entries.  3.8's
 * entries hold the key and the data inline (key_size, data_size bytes after
 * the entry header) and one table holds every domain (a pointer_t key, the
 * pointer and the domain, once a second domain was used); 3.9+ entries hold
 * a key and a value pointer, domain 0's traces in one table and the others
 * in a table per domain (the domains table).  A trace (trace_t) is a size
 * and a traceback; tracebacks are interned, so the traceback pointer is the
 * traceback's identity.  A traceback is nframe packed frames (filename,
 * lineno), the most recent first; 3.15 names the file by a C string.
 *
 * Every count read from the target is bounded before use, every chain is
 * bounded by its table's entry count (a longer chain is a cycle or a table
 * changing under the read: the table is cut and the result marked partial).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../abi/abi.h"
#include "../abi/object.h"
#include "pyxray/allocs.h"
#include "pyxray/stacks.h"
#include "pyxray/target.h"

#define MAX_BUCKETS (1ull << 31)
#define MAX_FRAMES 65535        /* nframe is a uint16_t from 3.9 */
#define MAX_DOMAINS 65536
#define MAX_FILE 4096           /* bytes of a file name kept */
#define DEFAULT_MAX_TRACES 100000000ull
#define BUCKET_CHUNK 1024
#define SAVE_MAGIC "pyxray-allocs 1"

/* ---- a map of 64-bit keys to indices (open addressing) ---------------- */

struct u64map {
	uint64_t *key;
	uint32_t *val;
	size_t cap, n; /* cap a power of two; key 0 is never stored */
};

static uint64_t mix64(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdull;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ull;
	x ^= x >> 33;
	return x;
}

static void u64map_free(struct u64map *m)
{
	free(m->key);
	free(m->val);
	memset(m, 0, sizeof(*m));
}

static int u64map_grow(struct u64map *m)
{
	size_t cap = m->cap ? m->cap * 2 : 1024;
	uint64_t *key = calloc(cap, sizeof(*key));
	uint32_t *val = calloc(cap, sizeof(*val));

	if (!key || !val) {
		free(key);
		free(val);
		return -PYX_E_NOMEM;
	}
	for (size_t i = 0; i < m->cap; i++) {
		size_t j;

		if (!m->key[i])
			continue;
		for (j = mix64(m->key[i]) & (cap - 1); key[j]; j = (j + 1) & (cap - 1))
			;
		key[j] = m->key[i];
		val[j] = m->val[i];
	}
	free(m->key);
	free(m->val);
	m->key = key;
	m->val = val;
	m->cap = cap;
	return 0;
}

/* The slot of k: *found says whether it holds k, else it is where k goes. */
static size_t u64map_slot(const struct u64map *m, uint64_t k, bool *found)
{
	size_t j;

	for (j = mix64(k) & (m->cap - 1); m->key[j]; j = (j + 1) & (m->cap - 1))
		if (m->key[j] == k) {
			*found = true;
			return j;
		}
	*found = false;
	return j;
}

static bool u64map_get(const struct u64map *m, uint64_t k, uint32_t *v)
{
	bool found;
	size_t j;

	if (!m->cap || !k)
		return false;
	j = u64map_slot(m, k, &found);
	if (found)
		*v = m->val[j];
	return found;
}

static int u64map_put(struct u64map *m, uint64_t k, uint32_t v)
{
	bool found;
	size_t j;
	int err;

	if (!k)
		return -PYX_E_INTERNAL;
	if ((m->n + 1) * 2 > m->cap && (err = u64map_grow(m)))
		return err;
	j = u64map_slot(m, k, &found);
	if (!found) {
		m->key[j] = k;
		m->n++;
	}
	m->val[j] = v;
	return 0;
}

/* ---- interned strings ------------------------------------------------- */

struct pool {
	char **s;
	size_t n, cap;
	struct u64map byhash; /* hash of the text -> index (collisions probe
				 the next hash) */
	struct pyx_allocs_frame *frames; /* every traceback's frames */
	size_t nframes, capframes;
};

static uint64_t text_hash(const char *s, uint64_t salt)
{
	uint64_t h = 1469598103934665603ull ^ salt;

	for (; *s; s++)
		h = (h ^ (uint8_t)*s) * 1099511628211ull;
	return h ? h : 1;
}

static void pool_free(struct pool *p)
{
	if (!p)
		return;
	for (size_t i = 0; i < p->n; i++)
		free(p->s[i]);
	free(p->s);
	free(p->frames);
	u64map_free(&p->byhash);
	free(p);
}

static int pool_intern(struct pool *p, const char *text, const char **out)
{
	for (uint64_t salt = 0; salt < 64; salt++) {
		uint64_t h = text_hash(text, salt);
		uint32_t i;
		int err;

		if (u64map_get(&p->byhash, h, &i)) {
			if (strcmp(p->s[i], text) == 0) {
				*out = p->s[i];
				return 0;
			}
			continue;
		}
		if (p->n == p->cap) {
			size_t cap = p->cap ? p->cap * 2 : 64;
			char **s = realloc(p->s, cap * sizeof(*s));

			if (!s)
				return -PYX_E_NOMEM;
			p->s = s;
			p->cap = cap;
		}
		if (p->n >= UINT32_MAX || !(p->s[p->n] = strdup(text)))
			return -PYX_E_NOMEM;
		if ((err = u64map_put(&p->byhash, h, (uint32_t)p->n))) {
			free(p->s[p->n]);
			return err;
		}
		*out = p->s[p->n++];
		return 0;
	}
	return -PYX_E_NOMEM; /* 64 colliding hashes: not text */
}

/* Frames are appended to one array; tracebacks point into it once it is
 * complete (pool_fix_frames), as it moves while it grows. */
static int pool_add_frames(struct pool *p, size_t n, size_t *first)
{
	if (p->nframes + n > p->capframes) {
		size_t cap = p->capframes ? p->capframes : 256;
		struct pyx_allocs_frame *f;

		while (cap < p->nframes + n)
			cap *= 2;
		if (!(f = realloc(p->frames, cap * sizeof(*f))))
			return -PYX_E_NOMEM;
		p->frames = f;
		p->capframes = cap;
	}
	*first = p->nframes;
	p->nframes += n;
	return 0;
}

struct priv {
	struct pool *pool;
	size_t captb;
	size_t *first_frame; /* of each tb, in pool->frames */
	size_t capptrs;
};

static struct priv *priv_of(const struct pyx_allocs *a)
{
	return a->priv;
}

static int new_allocs(struct pyx_allocs **out)
{
	struct pyx_allocs *a = calloc(1, sizeof(*a));
	struct priv *p = calloc(1, sizeof(*p));

	*out = NULL;
	if (!a || !p || !(p->pool = calloc(1, sizeof(*p->pool)))) {
		free(a);
		if (p)
			free(p->pool);
		free(p);
		return -PYX_E_NOMEM;
	}
	a->priv = p;
	*out = a;
	return 0;
}

void pyx_allocs_free(struct pyx_allocs *a)
{
	struct priv *p;

	if (!a)
		return;
	p = a->priv;
	if (p) {
		pool_free(p->pool);
		free(p->first_frame);
		free(p);
	}
	free(a->tb);
	free(a->ptrs);
	free(a);
}

/* A new traceback of nframe frames (filled by the caller at *frames). */
static int add_tb(struct pyx_allocs *a, uint32_t nframe, uint32_t total,
		  size_t *index, struct pyx_allocs_frame **frames)
{
	struct priv *p = priv_of(a);
	size_t first;
	int err;

	if (a->ntb == p->captb) {
		size_t cap = p->captb ? p->captb * 2 : 256;
		struct pyx_allocs_traceback *tb = realloc(a->tb, cap * sizeof(*tb));
		size_t *ff;

		if (!tb)
			return -PYX_E_NOMEM;
		a->tb = tb;
		if (!(ff = realloc(p->first_frame, cap * sizeof(*ff))))
			return -PYX_E_NOMEM;
		p->first_frame = ff;
		p->captb = cap;
	}
	if (a->ntb >= UINT32_MAX)
		return -PYX_E_NOMEM;
	if ((err = pool_add_frames(p->pool, nframe, &first)))
		return err;
	a->tb[a->ntb] = (struct pyx_allocs_traceback){ .nframe = nframe,
						       .total_nframe = total };
	p->first_frame[a->ntb] = first;
	*frames = p->pool->frames + first;
	*index = a->ntb++;
	return 0;
}

static void fix_frames(struct pyx_allocs *a)
{
	struct priv *p = priv_of(a);

	for (size_t i = 0; i < a->ntb; i++)
		a->tb[i].frames = a->tb[i].nframe ? p->pool->frames +
						    p->first_frame[i] : NULL;
}

static int add_ptr(struct pyx_allocs *a, pyx_addr_t ptr, uint32_t tb)
{
	struct priv *p = priv_of(a);

	if (a->nptrs == p->capptrs) {
		size_t cap = p->capptrs ? p->capptrs * 2 : 1024;
		struct pyx_allocs_ptr *v = realloc(a->ptrs, cap * sizeof(*v));

		if (!v)
			return -PYX_E_NOMEM;
		a->ptrs = v;
		p->capptrs = cap;
	}
	a->ptrs[a->nptrs++] = (struct pyx_allocs_ptr){ ptr, tb };
	return 0;
}

/* ---- where the state is ----------------------------------------------- */

struct tm_where {
	pyx_addr_t tracing, max_nframe; /* int fields */
	pyx_addr_t traced, peak;        /* size_t */
	pyx_addr_t traces, domains;     /* _Py_hashtable_t * variables */
};

static pyx_addr_t at(pyx_addr_t base, int32_t off)
{
	return base + (uint64_t)(int64_t)off;
}

/* The config alone (enough to say whether it traces): a stripped 3.8-3.11
 * exports _Py_tracemalloc_config in .dynsym. */
static int where_config(struct pyx_python *py, struct tm_where *w)
{
	const struct pyx_layout *l = &py->layout;
	pyx_addr_t config;
	int err;

	memset(w, 0, sizeof(*w));
	if (!py->k.tm_statics) {
		if (!pyx_layout_has(l, PYX_L_RT_TM_TRACING) ||
		    !pyx_layout_has(l, PYX_L_RT_TM_MAX_NFRAME) || !py->info.runtime)
			return pyx_err_set(PYX_E_LAYOUT, "the layout of %s has no "
					   "_PyRuntime.tracemalloc",
					   l->source_file);
		w->tracing = at(py->info.runtime, l->v[PYX_L_RT_TM_TRACING]);
		w->max_nframe = at(py->info.runtime, l->v[PYX_L_RT_TM_MAX_NFRAME]);
		return 0;
	}
	if (!pyx_layout_has(l, PYX_L_TMC_TRACING) ||
	    !pyx_layout_has(l, PYX_L_TMC_MAX_NFRAME))
		return pyx_err_set(PYX_E_LAYOUT, "the layout of %s has no "
				   "_PyTraceMalloc_Config", l->source_file);
	if ((err = pyx_python_symbol(py, PYX_L_SYM_TM_CONFIG, &config)))
		return err;
	w->tracing = at(config, l->v[PYX_L_TMC_TRACING]);
	w->max_nframe = at(config, l->v[PYX_L_TMC_MAX_NFRAME]);
	return 0;
}

static int where_tables(struct pyx_python *py, struct tm_where *w)
{
	const struct pyx_layout *l = &py->layout;
	static const enum pyx_layout_id rt[] = {
		PYX_L_RT_TM_TRACED, PYX_L_RT_TM_PEAK, PYX_L_RT_TM_TRACES,
		PYX_L_RT_TM_DOMAINS,
	};
	int err;

	if (!py->k.tm_statics) {
		for (size_t i = 0; i < PYX_ARRAY_SIZE(rt); i++)
			if (!pyx_layout_has(l, rt[i]))
				return pyx_err_set(PYX_E_LAYOUT, "the layout of "
						   "%s has no _PyRuntime."
						   "tracemalloc tables",
						   l->source_file);
		w->traced = at(py->info.runtime, l->v[PYX_L_RT_TM_TRACED]);
		w->peak = at(py->info.runtime, l->v[PYX_L_RT_TM_PEAK]);
		w->traces = at(py->info.runtime, l->v[PYX_L_RT_TM_TRACES]);
		w->domains = at(py->info.runtime, l->v[PYX_L_RT_TM_DOMAINS]);
		return 0;
	}
	/* Static variables: only a symbol table names them. */
	if ((err = pyx_python_symbol(py, PYX_L_SYM_TM_TRACES, &w->traces)) ||
	    (err = pyx_python_symbol(py, PYX_L_SYM_TM_TRACED, &w->traced)) ||
	    (err = pyx_python_symbol(py, PYX_L_SYM_TM_PEAK, &w->peak)))
		return pyx_err_set(PYX_E_NOT_SUPPORTED, "tracemalloc is on, but "
				   "its traces are static variables of "
				   "_tracemalloc.c that only a symbol table "
				   "names, and %s has none (%s): install its "
				   "debug symbols (python%d.%d-dbg) or give "
				   "--debug-dir DIR", py->info.binary[0] ?
				   py->info.binary : "the interpreter",
				   pyx_layout_member(PYX_L_SYM_TM_TRACES),
				   py->info.major, py->info.minor);
	/* 3.8 keeps every domain in the one table. */
	if (!py->k.tm_inline_entries &&
	    (err = pyx_python_symbol(py, PYX_L_SYM_TM_DOMAINS, &w->domains)))
		return err;
	return 0;
}

static int read_i32(struct pyx_python *py, pyx_addr_t addr, int32_t *v)
{
	int err = pyx_mem_read(py->mem, addr, v, sizeof(*v));

	if (err)
		*v = 0;
	return err;
}

int pyx_allocs_status(struct pyx_python *py, bool *tracing, int *max_nframe)
{
	struct tm_where w;
	int32_t t, n;
	int err;

	*tracing = false;
	*max_nframe = 0;
	if ((err = where_config(py, &w)) ||
	    (err = read_i32(py, w.tracing, &t)) ||
	    (err = read_i32(py, w.max_nframe, &n)))
		return err;
	*tracing = t != 0;
	*max_nframe = n;
	return 0;
}

/* ---- the walk --------------------------------------------------------- */

struct walk {
	struct pyx_python *py;
	struct pyx_allocs *a;
	const struct pyx_allocs_opts *o;
	struct u64map tbmap;   /* remote traceback -> tb index */
	struct u64map fnmap;   /* remote file name -> pool index + 1... */
	const char **fnames;   /* ...its interned text */
	size_t nfnames, capfnames;
	uint64_t max_traces;
	/* layout */
	int32_t ht_nentries, ht_nbuckets, ht_buckets, ht_key_size, ht_data_size;
	int32_t e_next, e_key, e_value, entry_size, ptr_domain, pointer_size;
	int32_t t_size, t_tb, trace_size;
	int32_t tb_nframe, tb_total, tb_frames, f_file, f_line, frame_size;
	bool nframe_u16;
	char *buf;             /* MAX_FILE */
	uint8_t *frames;       /* MAX_FRAMES frames */
};

static int check_layout(struct walk *w)
{
	const struct pyx_layout *l = &w->py->layout;
	static const enum pyx_layout_id need[] = {
		PYX_L_HT_NENTRIES, PYX_L_HT_NBUCKETS, PYX_L_HT_BUCKETS,
		PYX_L_HTE_NEXT, PYX_L_TM_TRACE_SIZE, PYX_L_TM_TRACE_TRACEBACK,
		PYX_L_TM_TB_NFRAME, PYX_L_TM_TB_FRAMES, PYX_L_TM_FRAME_FILENAME,
		PYX_L_TM_FRAME_LINENO, PYX_L_SZ_TM_FRAME,
	};
	static const enum pyx_layout_id need38[] = {
		PYX_L_HT_KEY_SIZE, PYX_L_HT_DATA_SIZE, PYX_L_SZ_HT_ENTRY,
		PYX_L_SZ_TM_TRACE,
	};
	static const enum pyx_layout_id need39[] = {
		PYX_L_HTE_KEY, PYX_L_HTE_VALUE,
	};
	const enum pyx_layout_id *more = w->py->k.tm_inline_entries ? need38 : need39;
	size_t nmore = w->py->k.tm_inline_entries ? PYX_ARRAY_SIZE(need38)
						  : PYX_ARRAY_SIZE(need39);

	for (size_t i = 0; i < PYX_ARRAY_SIZE(need) + nmore; i++) {
		enum pyx_layout_id id = i < PYX_ARRAY_SIZE(need)
					? need[i] : more[i - PYX_ARRAY_SIZE(need)];
		int32_t v = l->v[id];

		if (v == PYX_OFF_NONE || v < 0 || v > 4096)
			return pyx_err_set(PYX_E_LAYOUT, "the layout of %s has "
					   "no %s%s%s (tracemalloc)",
					   l->source_file, pyx_layout_struct(id),
					   pyx_layout_member(id) ? "." : "",
					   pyx_layout_member(id) ?
					   pyx_layout_member(id) : "");
	}
	w->ht_nentries = l->v[PYX_L_HT_NENTRIES];
	w->ht_nbuckets = l->v[PYX_L_HT_NBUCKETS];
	w->ht_buckets = l->v[PYX_L_HT_BUCKETS];
	w->ht_key_size = l->v[PYX_L_HT_KEY_SIZE];
	w->ht_data_size = l->v[PYX_L_HT_DATA_SIZE];
	w->e_next = l->v[PYX_L_HTE_NEXT];
	w->e_key = l->v[PYX_L_HTE_KEY];
	w->e_value = l->v[PYX_L_HTE_VALUE];
	w->entry_size = l->v[PYX_L_SZ_HT_ENTRY];
	w->ptr_domain = l->v[PYX_L_TM_PTR_DOMAIN];
	w->pointer_size = l->v[PYX_L_SZ_TM_POINTER];
	w->t_size = l->v[PYX_L_TM_TRACE_SIZE];
	w->t_tb = l->v[PYX_L_TM_TRACE_TRACEBACK];
	w->trace_size = l->v[PYX_L_SZ_TM_TRACE];
	w->tb_nframe = l->v[PYX_L_TM_TB_NFRAME];
	w->tb_total = l->v[PYX_L_TM_TB_TOTAL_NFRAME];
	w->tb_frames = l->v[PYX_L_TM_TB_FRAMES];
	w->f_file = l->v[PYX_L_TM_FRAME_FILENAME];
	w->f_line = l->v[PYX_L_TM_FRAME_LINENO];
	w->frame_size = l->v[PYX_L_SZ_TM_FRAME];
	/* 3.9+: uint16_t nframe, total_nframe; 3.8: int nframe. */
	w->nframe_u16 = w->tb_total != PYX_OFF_NONE;
	if (w->frame_size < 12 || w->frame_size > 64 ||
	    w->f_file + 8 > w->frame_size || w->f_line + 4 > w->frame_size ||
	    w->t_size + 8 > 64 || w->t_tb + 8 > 64)
		return pyx_err_set(PYX_E_LAYOUT, "tracemalloc's frame or trace "
				   "layout in %s is not what pyxray reads",
				   l->source_file);
	if (w->py->k.tm_inline_entries &&
	    (w->entry_size < 16 || w->entry_size > 64 || w->trace_size != 16))
		return pyx_err_set(PYX_E_LAYOUT, "3.8's hashtable entry layout "
				   "in %s is not what pyxray reads",
				   l->source_file);
	return 0;
}

static const char *file_name(struct walk *w, pyx_addr_t obj)
{
	struct priv *p = priv_of(w->a);
	const char *text = NULL;
	uint32_t i;
	int err;

	if (!obj)
		return NULL;
	if (u64map_get(&w->fnmap, obj, &i) && i < w->nfnames)
		return w->fnames[i];
	if (w->py->k.tm_c_filenames)
		err = pyx_mem_read_cstr(w->py->mem, obj, w->buf, MAX_FILE);
	else
		err = pyx_str_read(w->py, obj, w->buf, MAX_FILE);
	if (err == -PYX_E_NOMEM)
		return NULL;
	if (err)
		snprintf(w->buf, MAX_FILE, "<unreadable>");
	if (pool_intern(p->pool, w->buf, &text))
		return NULL;
	if (w->nfnames == w->capfnames) {
		size_t cap = w->capfnames ? w->capfnames * 2 : 256;
		const char **v = realloc(w->fnames, cap * sizeof(*v));

		if (!v)
			return NULL;
		w->fnames = v;
		w->capfnames = cap;
	}
	if (u64map_put(&w->fnmap, obj, (uint32_t)w->nfnames))
		return NULL;
	w->fnames[w->nfnames++] = text;
	return text;
}

/* The traceback at tb as an index of a->tb, read once. */
static int traceback(struct walk *w, pyx_addr_t tb, uint32_t *index)
{
	struct pyx_allocs_frame *frames;
	uint8_t head[4] = { 0 };
	uint32_t nframe, total;
	size_t ix;
	int err;

	if (u64map_get(&w->tbmap, tb, index))
		return 0;
	if (!tb || (tb & 7))
		return pyx_err_set(PYX_E_BAD_MEMORY, "bad traceback pointer "
				   PYX_PRIaddr, tb);
	if (w->nframe_u16) {
		uint16_t n16, t16;

		if ((err = pyx_mem_read(w->py->mem, at(tb, w->tb_nframe), &n16, 2)) ||
		    (err = pyx_mem_read(w->py->mem, at(tb, w->tb_total), &t16, 2)))
			return err;
		nframe = n16;
		total = t16;
	} else {
		int32_t n;

		if ((err = pyx_mem_read(w->py->mem, at(tb, w->tb_nframe), head, 4)))
			return err;
		memcpy(&n, head, 4);
		if (n < 0 || n > MAX_FRAMES)
			return pyx_err_set(PYX_E_BAD_MEMORY, "traceback "
					   PYX_PRIaddr " has %d frames", tb, n);
		nframe = total = (uint32_t)n;
	}
	if (total < nframe)
		total = nframe;
	if (nframe && (err = pyx_mem_read(w->py->mem, at(tb, w->tb_frames),
					  w->frames,
					  (size_t)nframe * (size_t)w->frame_size)))
		return err;
	if ((err = add_tb(w->a, nframe, total, &ix, &frames)))
		return err;
	for (uint32_t i = 0; i < nframe; i++) {
		const uint8_t *f = w->frames + (size_t)i * (size_t)w->frame_size;
		uint64_t file;
		uint32_t line;

		memcpy(&file, f + w->f_file, 8);
		memcpy(&line, f + w->f_line, 4);
		frames[i].line = line;
		frames[i].file = file_name(w, file);
		if (!frames[i].file)
			frames[i].file = "<unknown>";
	}
	*index = (uint32_t)ix;
	return u64map_put(&w->tbmap, tb, *index);
}

static int one_trace(struct walk *w, pyx_addr_t ptr, bool domain0,
		     uint64_t size, pyx_addr_t tb)
{
	uint32_t ix = 0;
	int err;

	if ((err = traceback(w, tb, &ix))) {
		if (err == -PYX_E_NOMEM || err == -PYX_E_EXITED)
			return err;
		w->a->skipped++;
		w->a->partial = true;
		return 0;
	}
	w->a->tb[ix].bytes += size;
	w->a->tb[ix].count++;
	w->a->ntraces++;
	w->a->nbytes += size;
	if (!domain0)
		w->a->domain_traces++;
	if (w->o->keep_pointers && domain0 && (err = add_ptr(w->a, ptr, ix)))
		return err;
	return 0;
}

/* One entry of a traces table; *next is the chain's next entry. */
static int trace_entry(struct walk *w, pyx_addr_t e, uint64_t key_size,
		       bool domain0, pyx_addr_t *next)
{
	uint8_t b[128];
	uint64_t ptr, size, tb, v;
	int err;

	if (w->py->k.tm_inline_entries) {
		/* header, key (ptr[, domain]), trace_t: one read */
		size_t len = (size_t)w->entry_size + key_size + 16;
		uint32_t domain = 0;

		if ((err = pyx_mem_read(w->py->mem, e, b, len)))
			return err;
		memcpy(next, b + w->e_next, 8);
		memcpy(&ptr, b + w->entry_size, 8);
		if (key_size > 8)
			memcpy(&domain, b + w->entry_size + w->ptr_domain, 4);
		memcpy(&size, b + w->entry_size + key_size + w->t_size, 8);
		memcpy(&tb, b + w->entry_size + key_size + w->t_tb, 8);
		return one_trace(w, ptr, domain == 0, size, tb);
	}
	if ((err = pyx_read_field(w->py, e, PYX_L_HTE_NEXT, next)) ||
	    (err = pyx_read_field(w->py, e, PYX_L_HTE_KEY, &ptr)) ||
	    (err = pyx_read_field(w->py, e, PYX_L_HTE_VALUE, &v)))
		return err;
	if (!v || (v & 7))
		return pyx_err_set(PYX_E_BAD_MEMORY, "bad trace pointer "
				   PYX_PRIaddr, v);
	if ((err = pyx_mem_read(w->py->mem, v, b, 16)))
		return err;
	memcpy(&size, b + w->t_size, 8);
	memcpy(&tb, b + w->t_tb, 8);
	return one_trace(w, ptr, domain0, size, tb);
}

struct table {
	uint64_t nentries, nbuckets, key_size;
	pyx_addr_t buckets;
};

static int table_head(struct walk *w, pyx_addr_t ht, struct table *t)
{
	int err;

	memset(t, 0, sizeof(*t));
	if (!ht || (ht & 7))
		return pyx_err_set(PYX_E_BAD_MEMORY, "bad hashtable pointer "
				   PYX_PRIaddr, ht);
	if ((err = pyx_read_field(w->py, ht, PYX_L_HT_NENTRIES, &t->nentries)) ||
	    (err = pyx_read_field(w->py, ht, PYX_L_HT_NBUCKETS, &t->nbuckets)) ||
	    (err = pyx_read_field(w->py, ht, PYX_L_HT_BUCKETS, &t->buckets)))
		return err;
	if (t->nbuckets == 0 || t->nbuckets > MAX_BUCKETS ||
	    (t->buckets & 7) || !t->buckets ||
	    !pyx_mem_valid(w->py->mem, t->buckets, t->nbuckets * 8))
		return pyx_err_set(PYX_E_BAD_MEMORY, "hashtable " PYX_PRIaddr
				   ": %" PRIu64 " buckets at " PYX_PRIaddr,
				   ht, t->nbuckets, t->buckets);
	if (t->nentries > w->max_traces)
		return pyx_err_set(PYX_E_NOMEM, "hashtable " PYX_PRIaddr " holds "
				   "%" PRIu64 " entries, more than the %" PRIu64
				   " pyxray reads", ht, t->nentries,
				   w->max_traces);
	if (w->py->k.tm_inline_entries) {
		uint64_t ks, ds;

		if ((err = pyx_read_field(w->py, ht, PYX_L_HT_KEY_SIZE, &ks)) ||
		    (err = pyx_read_field(w->py, ht, PYX_L_HT_DATA_SIZE, &ds)))
			return err;
		if ((ks != 8 && (w->pointer_size == PYX_OFF_NONE ||
				 ks != (uint64_t)w->pointer_size ||
				 w->ptr_domain == PYX_OFF_NONE ||
				 w->ptr_domain + 4 > w->pointer_size)) ||
		    ds != (uint64_t)w->trace_size)
			return pyx_err_set(PYX_E_BAD_MEMORY, "hashtable "
					   PYX_PRIaddr ": key size %" PRIu64
					   ", data size %" PRIu64, ht, ks, ds);
		t->key_size = ks;
	}
	return 0;
}

/* Visit every entry of a table: fn(w, entry, &next) per entry.  A chain
 * longer than the table's entry count is a cycle (or the table changed):
 * the walk stops there and the result is partial. */
typedef int (*entry_fn)(struct walk *w, pyx_addr_t e, const struct table *t,
			void *arg, pyx_addr_t *next);

static int table_walk(struct walk *w, const struct table *t, entry_fn fn,
		      void *arg)
{
	uint64_t visited = 0, *bucket;
	int err = 0;

	/* Its own buffer: a domain's table is walked inside the domains'. */
	if (!(bucket = malloc(BUCKET_CHUNK * sizeof(*bucket))))
		return -PYX_E_NOMEM;
	for (uint64_t b0 = 0; b0 < t->nbuckets; b0 += BUCKET_CHUNK) {
		uint64_t nb = t->nbuckets - b0 < BUCKET_CHUNK ? t->nbuckets - b0
							      : BUCKET_CHUNK;

		if ((err = pyx_mem_read(w->py->mem, t->buckets + b0 * 8,
					bucket, nb * 8)))
			goto out;
		for (uint64_t i = 0; i < nb; i++) {
			pyx_addr_t e = bucket[i], next = 0;

			while (e) {
				if (++visited > t->nentries || (e & 7)) {
					w->a->partial = true;
					pyx_debug("tracemalloc: a chain past the "
						  "table's %" PRIu64 " entries, "
						  "or misaligned: cut",
						  t->nentries);
					goto out;
				}
				err = fn(w, e, t, arg, &next);
				if (err == -PYX_E_NOMEM || err == -PYX_E_EXITED)
					goto out;
				if (err) {
					/* The link is lost with the entry. */
					w->a->skipped++;
					w->a->partial = true;
					err = 0;
					break;
				}
				e = next;
			}
		}
	}
	if (visited < t->nentries) {
		pyx_debug("tracemalloc: %" PRIu64 " of the table's %" PRIu64
			  " entries found", visited, t->nentries);
		w->a->partial = true;
	}
out:
	free(bucket);
	return err;
}

static int traces_fn(struct walk *w, pyx_addr_t e, const struct table *t,
		     void *arg, pyx_addr_t *next)
{
	return trace_entry(w, e, t->key_size, arg == NULL, next);
}

static int traces_table(struct walk *w, pyx_addr_t ht, bool domain0)
{
	struct table t;
	int err;

	if ((err = table_head(w, ht, &t)))
		return err;
	return table_walk(w, &t, traces_fn, domain0 ? NULL : (void *)1);
}

static int domains_fn(struct walk *w, pyx_addr_t e, const struct table *t,
		      void *arg, pyx_addr_t *next)
{
	uint64_t traces;
	int err;

	(void)t;
	(void)arg;
	if ((err = pyx_read_field(w->py, e, PYX_L_HTE_NEXT, next)) ||
	    (err = pyx_read_field(w->py, e, PYX_L_HTE_VALUE, &traces)))
		return err;
	if ((err = traces_table(w, traces, false)) &&
	    err != -PYX_E_NOMEM && err != -PYX_E_EXITED) {
		w->a->partial = true;
		return 0;
	}
	return err;
}

static int ptr_cmp(const void *x, const void *y)
{
	const struct pyx_allocs_ptr *a = x, *b = y;

	return a->ptr < b->ptr ? -1 : a->ptr > b->ptr;
}

static int walk_all(struct walk *w, const struct tm_where *where)
{
	uint64_t traces = 0, domains = 0;
	int err;

	if ((err = pyx_mem_read_u64(w->py->mem, where->traced, &w->a->traced_bytes)) ||
	    (err = pyx_mem_read_u64(w->py->mem, where->peak, &w->a->peak_bytes)) ||
	    (err = pyx_mem_read_u64(w->py->mem, where->traces, &traces)))
		return err;
	if (where->domains &&
	    (err = pyx_mem_read_u64(w->py->mem, where->domains, &domains)))
		return err;
	if ((err = traces_table(w, traces, true)))
		return err;
	if (domains) {
		struct table t;

		if ((err = table_head(w, domains, &t)))
			return err;
		if (t.nentries > MAX_DOMAINS)
			return pyx_err_set(PYX_E_BAD_MEMORY, "%" PRIu64
					   " tracemalloc domains", t.nentries);
		if ((err = table_walk(w, &t, domains_fn, NULL)))
			return err;
	}
	return 0;
}

static int take(struct pyx_python *py, const struct pyx_allocs_opts *o,
		bool stop, struct pyx_allocs **out)
{
	static const struct pyx_allocs_opts defaults = { 0 };
	struct pyx_allocs *a = NULL;
	struct walk w = { 0 };
	struct tm_where where;
	struct timespec now;
	uint64_t pause0;
	bool tracing;
	int32_t t = 0, n = 0;
	int max_nframe, err;

	*out = NULL;
	o = o ? o : &defaults;
	/* Said before anything is stopped: off, or a build without the
	 * tables' symbols. */
	if ((err = pyx_allocs_status(py, &tracing, &max_nframe)))
		return err;
	if (!tracing)
		goto off;
	if ((err = where_config(py, &where)) || (err = where_tables(py, &where)))
		return err;
	if ((err = new_allocs(&a)))
		return err;
	w.py = py;
	w.a = a;
	w.o = o;
	w.max_traces = o->max_traces ? o->max_traces : DEFAULT_MAX_TRACES;
	if ((err = check_layout(&w)))
		goto out;
	w.buf = malloc(MAX_FILE);
	w.frames = malloc((size_t)MAX_FRAMES * (size_t)w.frame_size);
	if (!w.buf || !w.frames) {
		err = -PYX_E_NOMEM;
		goto out;
	}
	a->pid = py->tgt ? (int)pyx_target_pid(py->tgt) : 0;
	snprintf(a->python_version, sizeof(a->python_version), "%s",
		 py->info.version);
	clock_gettime(CLOCK_REALTIME, &now);
	a->time = (double)now.tv_sec + (double)now.tv_nsec / 1e9;
	pause0 = stop ? pyx_target_pause_ns(py->tgt) : 0;
	if (stop && (err = pyx_target_stop(py->tgt, o->deadline_ms)))
		goto out;
#ifdef PYX_TEST_HOOKS
	if (stop && o->hold_ms > 0) {
		struct timespec ts = { o->hold_ms / 1000,
				       (o->hold_ms % 1000) * 1000000L };

		nanosleep(&ts, NULL);
	}
#endif
	/* Stopped: it may have stopped tracing since. */
	if (!(err = read_i32(py, where.tracing, &t)) &&
	    !(err = read_i32(py, where.max_nframe, &n)) && t)
		err = walk_all(&w, &where);
	if (stop) {
		pyx_target_resume(py->tgt);
		a->pause_ms = (double)(pyx_target_pause_ns(py->tgt) - pause0) / 1e6;
	}
	if (err && err != -PYX_E_EXITED && py->tgt && pyx_target_gone(py->tgt))
		err = pyx_err_set(PYX_E_EXITED, "process %d exited while its "
				  "traces were read", a->pid);
	if (err)
		goto out;
	if (!t) {
		pyx_allocs_free(a);
		a = NULL;
		goto off;
	}
	a->max_nframe = n;
	fix_frames(a);
	if (a->nptrs)
		qsort(a->ptrs, a->nptrs, sizeof(*a->ptrs), ptr_cmp);
	*out = a;
	a = NULL;
out:
	u64map_free(&w.tbmap);
	u64map_free(&w.fnmap);
	free(w.fnames);
	free(w.buf);
	free(w.frames);
	pyx_allocs_free(a);
	return err;
off:
	return pyx_err_set(PYX_E_NOT_SUPPORTED, "tracemalloc is not tracing in "
			   "process %d: start the target with "
			   "PYTHONTRACEMALLOC=N (or python -X tracemalloc=N), "
			   "or call tracemalloc.start(N) in it, N frames per "
			   "traceback; without it, 'pyxray allocs PID --sample "
			   "SECONDS' estimates where memory grows",
			   py->tgt ? (int)pyx_target_pid(py->tgt) : 0);
}

int pyx_allocs_take(struct pyx_python *py, const struct pyx_allocs_opts *o,
		    struct pyx_allocs **out)
{
	return take(py, o, true, out);
}

int pyx_allocs_read(struct pyx_python *py, const struct pyx_allocs_opts *o,
		    struct pyx_allocs **out)
{
	return take(py, o, false, out);
}

/* ---- statistics, as Snapshot.statistics() and compare_to() ------------ */

int pyx_allocs_by_parse(const char *s, enum pyx_allocs_by *by)
{
	if (strcmp(s, "lineno") == 0)
		*by = PYX_ALLOCS_BY_LINENO;
	else if (strcmp(s, "filename") == 0)
		*by = PYX_ALLOCS_BY_FILENAME;
	else if (strcmp(s, "traceback") == 0)
		*by = PYX_ALLOCS_BY_TRACEBACK;
	else
		return -1;
	return 0;
}

static int file_cmp(const char *a, const char *b)
{
	if (a == b)
		return 0;
	if (!a || !b)
		return a ? 1 : -1;
	return strcmp(a, b);
}

static int key_cmp(const struct pyx_allocs_stat *a,
		   const struct pyx_allocs_stat *b, enum pyx_allocs_by by)
{
	int c;

	if (by != PYX_ALLOCS_BY_TRACEBACK) {
		if ((c = file_cmp(a->file, b->file)))
			return c;
		return a->line < b->line ? -1 : a->line > b->line;
	}
	if (a->tb->nframe != b->tb->nframe)
		return a->tb->nframe < b->tb->nframe ? -1 : 1;
	for (uint32_t i = 0; i < a->tb->nframe; i++) {
		const struct pyx_allocs_frame *x = &a->tb->frames[i],
					      *y = &b->tb->frames[i];

		if ((c = file_cmp(x->file, y->file)))
			return c;
		if (x->line != y->line)
			return x->line < y->line ? -1 : 1;
	}
	return 0;
}

static int key_qcmp(const void *x, const void *y, void *by)
{
	return key_cmp(x, y, *(const enum pyx_allocs_by *)by);
}

static int cmp_u64(uint64_t a, uint64_t b)
{
	return a < b ? -1 : a > b;
}

/* Biggest first; then by key, ascending, for a stable output. */
static int stat_qcmp(const void *x, const void *y, void *by)
{
	const struct pyx_allocs_stat *a = x, *b = y;
	int c;

	if ((c = cmp_u64(b->bytes, a->bytes)) || (c = cmp_u64(b->count, a->count)))
		return c;
	return key_cmp(a, b, *(const enum pyx_allocs_by *)by);
}

static uint64_t absd(int64_t v)
{
	return v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
}

static int diff_qcmp(const void *x, const void *y, void *by)
{
	const struct pyx_allocs_stat *a = x, *b = y;
	int c;

	if ((c = cmp_u64(absd(b->dbytes), absd(a->dbytes))) ||
	    (c = cmp_u64(b->bytes, a->bytes)) ||
	    (c = cmp_u64(absd(b->dcount), absd(a->dcount))) ||
	    (c = cmp_u64(b->count, a->count)))
		return c;
	return key_cmp(a, b, *(const enum pyx_allocs_by *)by);
}

/* Grouped by key, sorted by key. */
static int group(const struct pyx_allocs *a, enum pyx_allocs_by by,
		 struct pyx_allocs_stat **out, size_t *n)
{
	struct pyx_allocs_stat *s;
	size_t k = 0;

	*out = NULL;
	*n = 0;
	if (!(s = calloc(a->ntb ? a->ntb : 1, sizeof(*s))))
		return -PYX_E_NOMEM;
	for (size_t i = 0; i < a->ntb; i++) {
		const struct pyx_allocs_traceback *tb = &a->tb[i];

		if (!tb->count)
			continue;
		s[k] = (struct pyx_allocs_stat){
			.file = tb->nframe ? tb->frames[0].file : NULL,
			.line = tb->nframe && by != PYX_ALLOCS_BY_FILENAME
				? tb->frames[0].line : 0,
			.bytes = tb->bytes, .count = tb->count, .tb = tb,
		};
		k++;
	}
	qsort_r(s, k, sizeof(*s), key_qcmp, &by);
	*n = 0;
	for (size_t i = 0; i < k; i++) {
		if (*n && key_cmp(&s[*n - 1], &s[i], by) == 0) {
			s[*n - 1].bytes += s[i].bytes;
			s[*n - 1].count += s[i].count;
			continue;
		}
		s[(*n)++] = s[i];
	}
	*out = s;
	return 0;
}

int pyx_allocs_statistics(const struct pyx_allocs *a, enum pyx_allocs_by by,
			  struct pyx_allocs_stat **out, size_t *n)
{
	int err = group(a, by, out, n);

	if (err)
		return err;
	qsort_r(*out, *n, sizeof(**out), stat_qcmp, &by);
	return 0;
}

int pyx_allocs_compare(const struct pyx_allocs *now,
		       const struct pyx_allocs *old, enum pyx_allocs_by by,
		       struct pyx_allocs_stat **out, size_t *n)
{
	struct pyx_allocs_stat *a = NULL, *b = NULL, *d = NULL;
	size_t na, nb, i = 0, j = 0, k = 0;
	int err;

	*out = NULL;
	*n = 0;
	if ((err = group(now, by, &a, &na)) || (err = group(old, by, &b, &nb)))
		goto out;
	if (!(d = calloc(na + nb + 1, sizeof(*d)))) {
		err = -PYX_E_NOMEM;
		goto out;
	}
	while (i < na || j < nb) {
		int c = i == na ? 1 : j == nb ? -1 : key_cmp(&a[i], &b[j], by);

		if (c < 0) {
			d[k] = a[i++];
			d[k].dbytes = (int64_t)d[k].bytes;
			d[k].dcount = (int64_t)d[k].count;
		} else if (c > 0) {
			d[k] = b[j++];
			d[k].dbytes = -(int64_t)d[k].bytes;
			d[k].dcount = -(int64_t)d[k].count;
			d[k].bytes = d[k].count = 0;
		} else {
			d[k] = a[i];
			d[k].dbytes = (int64_t)(a[i].bytes - b[j].bytes);
			d[k].dcount = (int64_t)(a[i].count - b[j].count);
			i++;
			j++;
		}
		k++;
	}
	qsort_r(d, k, sizeof(*d), diff_qcmp, &by);
	*out = d;
	*n = k;
	d = NULL;
out:
	free(a);
	free(b);
	free(d);
	return err;
}

/* ---- objects ---------------------------------------------------------- */

const struct pyx_allocs_traceback *
pyx_allocs_object_site(struct pyx_python *py, const struct pyx_allocs *a,
		       pyx_addr_t obj)
{
	struct pyx_allocs_ptr key, *hit;
	pyx_addr_t tp;
	uint64_t flags, pre = 0;

	if (!a || !a->nptrs || pyx_obj_type(py, obj, &tp) ||
	    pyx_read_field(py, tp, PYX_L_TP_FLAGS, &flags))
		return NULL;
	/* tracemalloc's _PyType_PreHeaderSize(): the GC head, and the
	 * managed dict and weakref words before it. */
	if (flags & PYX_TPFLAGS_HAVE_GC) {
		int32_t gch = pyx_off(py, PYX_L_SZ_GC_HEAD);

		if (gch <= 0 || gch > 64)
			return NULL;
		pre += (uint64_t)gch;
	}
	if (flags & py->k.preheader_flags)
		pre += 16;
	if (obj < pre)
		return NULL;
	key.ptr = obj - pre;
	hit = bsearch(&key, a->ptrs, a->nptrs, sizeof(*a->ptrs), ptr_cmp);
	return hit && hit->tb < a->ntb ? &a->tb[hit->tb] : NULL;
}

/* ---- the file --------------------------------------------------------- */

/* A file name on one line: bytes below '!', DEL and '%' as %XX. */
static void put_name(FILE *f, const char *s)
{
	if (!s) {
		fputs("%", f); /* a lone '%': no name */
		return;
	}
	if (!*s)
		fputs("%00", f); /* never written otherwise: the empty name */
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c <= ' ' || c == 0x7f || c == '%')
			fprintf(f, "%%%02X", c);
		else
			fputc(c, f);
	}
}

int pyx_allocs_save(const struct pyx_allocs *a, const char *path)
{
	char tmp[4096];
	FILE *f;
	int fd, err = 0;

	if (snprintf(tmp, sizeof(tmp), "%s.XXXXXX", path) >= (int)sizeof(tmp))
		return pyx_err_set(PYX_E_IO, "%s: name too long", path);
	if ((fd = mkstemp(tmp)) < 0)
		return pyx_err_set(PYX_E_IO, "create %s: %s", tmp, strerror(errno));
	if (!(f = fdopen(fd, "w"))) {
		close(fd);
		unlink(tmp);
		return pyx_err_set(PYX_E_IO, "%s: %s", tmp, strerror(errno));
	}
	fprintf(f, "%s\npid %d\npython ", SAVE_MAGIC, a->pid);
	put_name(f, a->python_version);
	fprintf(f, "\ntime %.6f\ntraced %" PRIu64 "\npeak %" PRIu64
		"\nmax_nframe %d\ntraces %" PRIu64 "\nskipped %" PRIu64
		"\npartial %d\ntracebacks %zu\n", a->time, a->traced_bytes,
		a->peak_bytes, a->max_nframe, a->ntraces, a->skipped,
		a->partial ? 1 : 0, a->ntb);
	for (size_t i = 0; i < a->ntb; i++) {
		const struct pyx_allocs_traceback *tb = &a->tb[i];

		fprintf(f, "t %" PRIu64 " %" PRIu64 " %" PRIu32 " %" PRIu32 "\n",
			tb->bytes, tb->count, tb->total_nframe, tb->nframe);
		for (uint32_t k = 0; k < tb->nframe; k++) {
			fprintf(f, "f %" PRIu32 " ", tb->frames[k].line);
			put_name(f, tb->frames[k].file);
			fputc('\n', f);
		}
	}
	fputs("end\n", f);
	if (fflush(f) || ferror(f) || fsync(fileno(f)))
		err = pyx_err_set(PYX_E_IO, "write %s: %s", tmp, strerror(errno));
	if (fclose(f) && !err)
		err = pyx_err_set(PYX_E_IO, "write %s: %s", tmp, strerror(errno));
	if (!err && rename(tmp, path))
		err = pyx_err_set(PYX_E_IO, "rename %s to %s: %s", tmp, path,
				  strerror(errno));
	if (err)
		unlink(tmp);
	return err;
}

bool pyx_allocs_file_is(const char *path)
{
	char head[sizeof(SAVE_MAGIC)] = { 0 };
	FILE *f = fopen(path, "re");
	bool is;

	if (!f)
		return false;
	is = fread(head, 1, sizeof(head), f) == sizeof(head) &&
	     memcmp(head, SAVE_MAGIC "\n", sizeof(head)) == 0;
	fclose(f);
	return is;
}

static int hexval(char c)
{
	return c >= '0' && c <= '9' ? c - '0'
	     : c >= 'A' && c <= 'F' ? c - 'A' + 10
	     : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Undo put_name() in place; *none for the lone '%'. */
static int get_name(char *s, bool *none)
{
	char *o = s;

	*none = strcmp(s, "%") == 0;
	if (*none)
		return 0;
	while (*s) {
		if (*s == '%') {
			int h = hexval(s[1]), l = h < 0 ? -1 : hexval(s[2]);

			if (h < 0 || l < 0)
				return -1;
			*o++ = (char)(h * 16 + l);
			s += 3;
		} else {
			*o++ = *s++;
		}
	}
	*o = '\0';
	return 0;
}

struct loader {
	FILE *f;
	const char *path;
	char *line;
	size_t cap;
	unsigned long no;
};

static int next_line(struct loader *l)
{
	ssize_t n = getline(&l->line, &l->cap, l->f);

	l->no++;
	if (n <= 0 || l->line[n - 1] != '\n')
		return pyx_err_set(PYX_E_FORMAT, "%s:%lu: cut short", l->path,
				   l->no);
	l->line[n - 1] = '\0';
	if (memchr(l->line, '\0', (size_t)n - 1))
		return pyx_err_set(PYX_E_FORMAT, "%s:%lu: a NUL byte", l->path,
				   l->no);
	return 0;
}

static int bad_line(struct loader *l)
{
	return pyx_err_set(PYX_E_FORMAT, "%s:%lu: not an allocs file line",
			   l->path, l->no);
}

int pyx_allocs_load(const char *path, struct pyx_allocs **out)
{
	struct loader l = { .path = path };
	struct pyx_allocs *a = NULL;
	struct priv *p;
	char name[64], *v;
	unsigned long long ntb = 0;
	int partial = 0, err;

	*out = NULL;
	if (!(l.f = fopen(path, "re")))
		return pyx_err_set(PYX_E_IO, "open %s: %s", path, strerror(errno));
	if ((err = new_allocs(&a)))
		goto out;
	p = priv_of(a);
	if ((err = next_line(&l)))
		goto out;
	if (strcmp(l.line, SAVE_MAGIC) != 0) {
		err = pyx_err_set(PYX_E_FORMAT, "%s is not a file 'pyxray allocs "
				  "--save' wrote", path);
		goto out;
	}
	/* The header: "name value" lines up to "tracebacks N". */
	for (;;) {
		if ((err = next_line(&l)))
			goto out;
		v = strchr(l.line, ' ');
		if (!v || (size_t)(v - l.line) >= sizeof(name)) {
			err = bad_line(&l);
			goto out;
		}
		memcpy(name, l.line, (size_t)(v - l.line));
		name[v - l.line] = '\0';
		v++;
		if (strcmp(name, "pid") == 0) {
			if (sscanf(v, "%d", &a->pid) != 1)
				goto bad;
		} else if (strcmp(name, "python") == 0) {
			bool none;

			if (get_name(v, &none) || strlen(v) >= sizeof(a->python_version))
				goto bad;
			snprintf(a->python_version, sizeof(a->python_version), "%s", v);
		} else if (strcmp(name, "time") == 0) {
			if (sscanf(v, "%lf", &a->time) != 1)
				goto bad;
		} else if (strcmp(name, "traced") == 0) {
			if (sscanf(v, "%" SCNu64, &a->traced_bytes) != 1)
				goto bad;
		} else if (strcmp(name, "peak") == 0) {
			if (sscanf(v, "%" SCNu64, &a->peak_bytes) != 1)
				goto bad;
		} else if (strcmp(name, "max_nframe") == 0) {
			if (sscanf(v, "%d", &a->max_nframe) != 1)
				goto bad;
		} else if (strcmp(name, "skipped") == 0) {
			if (sscanf(v, "%" SCNu64, &a->skipped) != 1)
				goto bad;
		} else if (strcmp(name, "partial") == 0) {
			if (sscanf(v, "%d", &partial) != 1)
				goto bad;
			a->partial = partial != 0;
		} else if (strcmp(name, "tracebacks") == 0) {
			if (sscanf(v, "%llu", &ntb) != 1 || ntb > DEFAULT_MAX_TRACES)
				goto bad;
			break;
		} /* other names: a later version's; skipped */
	}
	for (unsigned long long i = 0; i < ntb; i++) {
		struct pyx_allocs_frame *frames;
		unsigned long long bytes, count;
		unsigned total, nframe;
		size_t ix;
		int used = 0;

		if ((err = next_line(&l)))
			goto out;
		if (sscanf(l.line, "t %llu %llu %u %u%n", &bytes, &count, &total,
			   &nframe, &used) != 4 || l.line[used] ||
		    nframe > MAX_FRAMES || total > MAX_FRAMES)
			goto bad;
		if ((err = add_tb(a, nframe, total, &ix, &frames)))
			goto out;
		a->tb[ix].bytes = bytes;
		a->tb[ix].count = count;
		a->ntraces += count;
		a->nbytes += bytes;
		for (unsigned k = 0; k < nframe; k++) {
			unsigned line;
			bool none;
			int off = 0;

			if ((err = next_line(&l)))
				goto out;
			if (sscanf(l.line, "f %u %n", &line, &off) != 1 || !off ||
			    get_name(l.line + off, &none))
				goto bad;
			/* frames may move: index it again after interning */
			frames = p->pool->frames + p->first_frame[ix];
			frames[k].line = line;
			if (none)
				frames[k].file = NULL;
			else if ((err = pool_intern(p->pool, l.line + off,
						    &frames[k].file)))
				goto out;
		}
	}
	if ((err = next_line(&l)))
		goto out;
	if (strcmp(l.line, "end") != 0)
		goto bad;
	fix_frames(a);
	*out = a;
	a = NULL;
	goto out;
bad:
	err = bad_line(&l);
out:
	free(l.line);
	fclose(l.f);
	pyx_allocs_free(a);
	return err;
}

/* ---- sampling without tracemalloc ------------------------------------- */

struct sample_acc {
	struct pyx_allocs_sample_line *v;
	size_t n, cap;
	struct u64map index;
};

static int sample_line(struct sample_acc *s, const char *file,
		       const char *function, int line, size_t *ix)
{
	char key[64];

	for (uint64_t salt = 0; salt < 64; salt++) {
		uint64_t h;
		uint32_t i;

		snprintf(key, sizeof(key), ":%d", line);
		h = mix64(text_hash(file ? file : "", salt) ^
			  text_hash(key, salt) * 31 ^
			  text_hash(function ? function : "", salt) * 7);
		h = h ? h : 1;
		if (u64map_get(&s->index, h, &i)) {
			const struct pyx_allocs_sample_line *l = &s->v[i];

			if (l->line == line && strcmp(l->file, file ? file : "") == 0 &&
			    strcmp(l->function, function ? function : "") == 0) {
				*ix = i;
				return 0;
			}
			continue;
		}
		if (s->n == s->cap) {
			size_t cap = s->cap ? s->cap * 2 : 64;
			struct pyx_allocs_sample_line *v =
				realloc(s->v, cap * sizeof(*v));

			if (!v)
				return -PYX_E_NOMEM;
			s->v = v;
			s->cap = cap;
		}
		s->v[s->n] = (struct pyx_allocs_sample_line){
			.file = strdup(file ? file : ""),
			.function = strdup(function ? function : ""),
			.line = line,
		};
		if (!s->v[s->n].file || !s->v[s->n].function) {
			free(s->v[s->n].file);
			free(s->v[s->n].function);
			return -PYX_E_NOMEM;
		}
		if (u64map_put(&s->index, h, (uint32_t)s->n))
			return -PYX_E_NOMEM;
		*ix = s->n++;
		return 0;
	}
	return -PYX_E_NOMEM;
}

static int line_qcmp(const void *x, const void *y)
{
	const struct pyx_allocs_sample_line *a = x, *b = y;
	int64_t na = a->grew + a->shrank, nb = b->grew + b->shrank;

	if (na != nb)
		return na > nb ? -1 : 1;
	if (a->grew != b->grew)
		return a->grew > b->grew ? -1 : 1;
	if (a->samples != b->samples)
		return a->samples > b->samples ? -1 : 1;
	return strcmp(a->file, b->file) ? strcmp(a->file, b->file)
					: a->line - b->line;
}

void pyx_allocs_sampled_free(struct pyx_allocs_sampled *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->nlines; i++) {
		free(s->lines[i].file);
		free(s->lines[i].function);
	}
	free(s->lines);
	free(s);
}

static void sleep_until(uint64_t t_ns)
{
	uint64_t now = pyx_now_ns();
	struct timespec ts;

	if (t_ns <= now)
		return;
	ts.tv_sec = (time_t)((t_ns - now) / 1000000000ull);
	ts.tv_nsec = (long)((t_ns - now) % 1000000000ull);
	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

int pyx_allocs_sample(struct pyx_python *py, double seconds,
		      double interval_ms, struct pyx_allocs_sampled **out)
{
	struct pyx_stacks_opts so = { .nonblocking = true, .max_depth = 512 };
	struct pyx_allocs_sampled *r;
	struct sample_acc acc = { 0 };
	uint64_t t0, end, period, tick;
	int64_t prev;
	int err = 0;

	*out = NULL;
	if (!(seconds > 0) || seconds > 86400)
		return pyx_err_set(PYX_E_USAGE, "sample for 0 to 86400 seconds");
	if (!(interval_ms > 0))
		interval_ms = 5;
	if (interval_ms < 1)
		interval_ms = 1;
	if (!(r = calloc(1, sizeof(*r))))
		return -PYX_E_NOMEM;
	r->pid = (int)pyx_target_pid(py->tgt);
	snprintf(r->python_version, sizeof(r->python_version), "%s",
		 py->info.version);
	r->interval_ms = interval_ms;
	if ((prev = pyx_target_rss_bytes(py->tgt)) < 0) {
		err = pyx_target_gone(py->tgt)
		      ? pyx_err_set(PYX_E_EXITED, "process %d exited", r->pid)
		      : pyx_err_set(PYX_E_NOT_SUPPORTED, "the RSS of process %d "
				    "cannot be read", r->pid);
		goto out;
	}
	r->rss_first = r->rss_last = prev;
	period = (uint64_t)(interval_ms * 1e6);
	t0 = pyx_now_ns();
	end = t0 + (uint64_t)(seconds * 1e9);
	for (tick = t0 + period; tick <= end; tick += period) {
		struct pyx_stacks *st = NULL;
		const struct pyx_frame *running[64];
		size_t nrunning = 0;
		int64_t rss, d;

		sleep_until(tick);
		if ((rss = pyx_target_rss_bytes(py->tgt)) < 0)
			break; /* gone: what was sampled stands */
		err = pyx_stacks_collect(py, &so, &st);
		if (err == -PYX_E_NOMEM)
			goto out;
		r->samples++;
		d = rss - prev;
		prev = rss;
		r->rss_last = rss;
		if (err) {
			/* Torn reads that never agreed: the RSS change is
			 * charged to nothing. */
			r->failed++;
			err = 0;
			r->idle_grew += d;
			continue;
		}
		/* The GIL holder runs Python; when none holds it, every
		 * thread in Python code may be running (a C call that
		 * released the GIL). */
		for (size_t i = 0; i < st->nthreads && nrunning < 64; i++)
			if (st->threads[i].holds_gil && st->threads[i].nframes)
				running[nrunning++] = &st->threads[i].frames[0];
		if (!nrunning) {
			r->idle++;
			r->idle_grew += d;
		}
		for (size_t i = 0; i < nrunning; i++) {
			size_t ix;

			if ((err = sample_line(&acc, running[i]->file,
					       running[i]->function,
					       running[i]->line, &ix))) {
				pyx_stacks_free(st);
				goto out;
			}
			acc.v[ix].samples++;
			/* Shared alike between the threads seen running. */
			if (d > 0)
				acc.v[ix].grew += d / (int64_t)nrunning;
			else
				acc.v[ix].shrank += d / (int64_t)nrunning;
		}
		pyx_stacks_free(st);
	}
	r->seconds = (double)(pyx_now_ns() - t0) / 1e9;
	if (acc.n)
		qsort(acc.v, acc.n, sizeof(*acc.v), line_qcmp);
	r->lines = acc.v;
	r->nlines = acc.n;
	acc.v = NULL;
	acc.n = 0;
	*out = r;
	r = NULL;
out:
	for (size_t i = 0; i < acc.n; i++) {
		free(acc.v[i].file);
		free(acc.v[i].function);
	}
	free(acc.v);
	u64map_free(&acc.index);
	pyx_allocs_sampled_free(r);
	return err;
}
