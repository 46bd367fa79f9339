/* pyx_heapsnapshot_write: the object graph as a V8 .heapsnapshot, the JSON
 * Chrome DevTools' Memory panel loads (docs/suspects.md has the format).
 *
 * The file is streamed: "snapshot" (meta, node and edge counts), then
 * "nodes" (7 numbers a node), "edges" (3 numbers an edge, a node's edges
 * right after the previous node's, to_node = node index * 7), empty trace,
 * sample and location arrays, and last "strings" (every name, once), which
 * is the only part kept in memory until the end.  Node 0 is a synthetic
 * root holding every root of the graph; the objects no root reaches hang
 * under a second synthetic node, "(unreachable: garbage awaiting
 * collection)", so that every node is reachable as DevTools expects.
 *
 * A weak reference (weakref.ref, proxies and their subclasses) gets a
 * "weak" edge named "target" (V8's name for a WeakRef's target) to its
 * referent, read from the heap copy (PyWeakReference.wr_object): refs'
 * graph has none, since it never retains, and DevTools leaves weak edges
 * out of its dominators.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pyxray/suspects.h"
#include "field.h"
#include "referents.h"
#include "typeinfo.h"

#define NODE_FIELDS 7
enum { T_HIDDEN, T_ARRAY, T_STRING, T_OBJECT, T_CODE, T_CLOSURE, T_REGEXP,
       T_NUMBER, T_NATIVE, T_SYNTHETIC };
enum { E_CONTEXT, E_ELEMENT, E_PROPERTY, E_INTERNAL, E_HIDDEN, E_SHORTCUT,
       E_WEAK };
#define ROOT_ID 1u
#define GARBAGE_ID 3u
#define MAX_NAME 1024

/* ---- the string table ---------------------------------------------------- */

struct strtab {
	char **s;
	size_t n, cap;
	uint32_t *hash;  /* index + 1; 0 empty */
	size_t hcap;
};

static uint64_t str_hash(const char *s)
{
	uint64_t h = 1469598103934665603ULL;

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return h;
}

static int strtab_grow(struct strtab *t)
{
	size_t cap = t->hcap ? t->hcap * 2 : 1u << 12;
	uint32_t *h = calloc(cap, sizeof(*h));

	if (!h)
		return -PYX_E_NOMEM;
	for (size_t i = 0; i < t->n; i++) {
		size_t k = str_hash(t->s[i]) & (cap - 1);

		while (h[k])
			k = (k + 1) & (cap - 1);
		h[k] = (uint32_t)i + 1;
	}
	free(t->hash);
	t->hash = h;
	t->hcap = cap;
	return 0;
}

/* The index of s in the table, added if new. */
static int strtab_id(struct strtab *t, const char *s, uint32_t *id)
{
	size_t k;
	int err;

	if ((t->n + 1) * 2 > t->hcap && (err = strtab_grow(t)))
		return err;
	for (k = str_hash(s) & (t->hcap - 1); t->hash[k]; k = (k + 1) & (t->hcap - 1))
		if (strcmp(t->s[t->hash[k] - 1], s) == 0) {
			*id = t->hash[k] - 1;
			return 0;
		}
	if (t->n >= UINT32_MAX - 1)
		return pyx_err_set(PYX_E_NOMEM, "too many strings");
	if (t->n == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 1024;
		char **v = realloc(t->s, cap * sizeof(*v));

		if (!v)
			return -PYX_E_NOMEM;
		t->s = v;
		t->cap = cap;
	}
	if (!(t->s[t->n] = strdup(s)))
		return -PYX_E_NOMEM;
	t->hash[k] = (uint32_t)t->n + 1;
	*id = (uint32_t)t->n++;
	return 0;
}

static void strtab_free(struct strtab *t)
{
	for (size_t i = 0; i < t->n; i++)
		free(t->s[i]);
	free(t->s);
	free(t->hash);
}

/* A JSON string from target text: valid UTF-8 passes, '"', '\\', C0, DEL
 * and C1 controls are escaped, a byte that is not UTF-8 (or a surrogate
 * encoded as UTF-8) becomes U+FFFD. */
static void json_out(FILE *f, const char *str)
{
	const unsigned char *s = (const unsigned char *)str;

	fputc('"', f);
	while (*s) {
		unsigned c = *s;
		size_t len = 0;

		if (c == '"' || c == '\\') {
			fputc('\\', f);
			fputc((int)c, f);
			s++;
			continue;
		}
		if (c < 0x20 || c == 0x7f) {
			fprintf(f, "\\u%04x", c);
			s++;
			continue;
		}
		if (c < 0x80) {
			fputc((int)c, f);
			s++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf)
			len = 2;
		else if (c >= 0xe0 && c <= 0xef)
			len = 3;
		else if (c >= 0xf0 && c <= 0xf4)
			len = 4;
		if (len) {
			uint32_t cp = c & (0xff >> (len + 1));
			size_t i;

			for (i = 1; i < len; i++) {
				if ((s[i] & 0xc0) != 0x80)
					break;
				cp = (cp << 6) | (s[i] & 0x3f);
			}
			if (i == len && !(len == 3 && cp < 0x800) &&
			    !(len == 4 && (cp < 0x10000 || cp > 0x10ffff)) &&
			    !(cp >= 0xd800 && cp <= 0xdfff)) {
				if (cp >= 0x80 && cp <= 0x9f)
					fprintf(f, "\\u%04x", cp);
				else
					fwrite(s, 1, len, f);
				s += len;
				continue;
			}
		}
		fputs("\\ufffd", f);
		s++;
	}
	fputc('"', f);
}

/* ---- ids ------------------------------------------------------------------ */

uint32_t pyx_heapsnapshot_id(pyx_addr_t a)
{
	uint64_t h = (a >> 3) * UINT64_C(0x9E3779B97F4A7C15);
	uint32_t id = (uint32_t)(h >> 33) | 1u; /* odd, below 2^31 */

	return id <= GARBAGE_ID ? id + 4 : id;
}

/* Ids are given in node order, and a collision takes the next free odd
 * id: an object's id depends on the nodes before it.  The writer and
 * pyx_heapsnapshot_find_id() both take them from ids_next(), which keeps
 * the order, on the graph of graph_take(): one rule, never two copies. */
struct idgen {
	uint32_t *v;         /* open addressing, 0 empty */
	size_t cap;
	uint32_t next;       /* the node whose id comes next */
	uint64_t collisions; /* ids moved off their hash */
};

static int ids_init(struct idgen *s, const struct pyx_refs_graph *g)
{
	memset(s, 0, sizeof(*s));
	s->cap = 1u << 10;
	while (s->cap < (size_t)g->n * 2 + 2)
		s->cap *= 2;
	if (!(s->v = calloc(s->cap, sizeof(*s->v))))
		return -PYX_E_NOMEM;
	return 0;
}

/* The id of node s->next (then the next node's): its hash, else the next
 * free odd one.  At most g->n calls. */
static uint32_t ids_next(struct idgen *s, const struct pyx_refs_graph *g)
{
	uint32_t id = pyx_heapsnapshot_id(g->addr[s->next++]);

	for (;;) {
		size_t k = ((size_t)id * 0x9E3779B1u) & (s->cap - 1);
		bool taken = false;

		for (; s->v[k]; k = (k + 1) & (s->cap - 1))
			if (s->v[k] == id) {
				taken = true;
				break;
			}
		if (!taken) {
			s->v[k] = id;
			return id;
		}
		s->collisions++;
		id = id + 2 >= (1u << 31) ? GARBAGE_ID + 2 : id + 2;
	}
}

static void ids_free(struct idgen *s)
{
	free(s->v);
	s->v = NULL;
}

/* The graph a snapshot is written from: every object a node (leaves are
 * objects DevTools must count and diff). */
static int graph_take(struct pyx_python *py,
		      const struct pyx_heapsnapshot_opts *o,
		      struct pyx_refs_graph **g)
{
	struct pyx_refs_graph_opts go = { .capture = o->capture };

	return pyx_refs_graph_take(py, &go, g);
}

/* ---- weak edges ----------------------------------------------------------- */

/* (weak reference, referent) node pairs, in node order: at most one a
 * weak reference.  Gathered once before the header (which has the edge
 * count), so that the node pass and the edge pass agree. */
struct weak {
	uint32_t *v;
	size_t n, cap;       /* pairs */
};

static int weak_collect(struct pyx_python *py, const struct pyx_refs_graph *g,
			struct weak *w)
{
	uint64_t unread = 0;

	for (uint32_t v = 0; v < g->n; v++) {
		const struct pyx_typeinfo *ti = pyx_refs_graph_typeinfo(g, v);
		uint64_t obj;
		uint32_t to;

		if (!ti || ti->kind != PYX_K_WEAKREF)
			continue;
		if (pyx_read_field(py, g->addr[v], PYX_L_WR_OBJECT, &obj)) {
			pyx_err_clear();
			unread++;
			continue;
		}
		/* A dead reference points at None; a referent that is no
		 * node (a damaged word, an object the graph missed) gets no
		 * edge either. */
		to = pyx_refs_graph_find(g, obj);
		if (to == PYX_REFS_GRAPH_NONE || to >= g->n ||
		    strcmp(pyx_refs_graph_type_name(g, g->type[to]),
			   "NoneType") == 0)
			continue;
		if (w->n == w->cap) {
			size_t cap = w->cap ? w->cap * 2 : 256;
			uint32_t *p = realloc(w->v, cap * 2 * sizeof(*p));

			if (!p)
				return -PYX_E_NOMEM;
			w->v = p;
			w->cap = cap;
		}
		w->v[2 * w->n] = v;
		w->v[2 * w->n + 1] = to;
		w->n++;
	}
	if (unread)
		pyx_debug("heap snapshot: %" PRIu64 " weak references whose "
			  "referent could not be read: no weak edge", unread);
	return 0;
}

/* ---- edges ---------------------------------------------------------------- */

/* A property name from refs' label: the key or name inside quotes. */
static void edge_name(const char *label, char *buf, size_t n)
{
	static const char *const wrap[] = { "attribute '", "dict value ['",
					    "local '", "slot '" };

	for (size_t i = 0; i < sizeof(wrap) / sizeof(wrap[0]); i++) {
		size_t lw = strlen(wrap[i]), ll = strlen(label);
		size_t tail = wrap[i][lw - 2] == '[' ? 2 : 1;

		if (strncmp(label, wrap[i], lw) == 0 && ll >= lw + tail) {
			snprintf(buf, n, "%.*s", (int)(ll - lw - tail), label + lw);
			return;
		}
	}
	snprintf(buf, n, "%s", label);
}

static int edge_type(uint8_t kind)
{
	switch ((enum pyx_ref_kind)kind) {
	case PYX_REF_ITEM:
	case PYX_REF_SET_ITEM:
		return E_ELEMENT;
	case PYX_REF_LOCAL:
		return E_CONTEXT;
	case PYX_REF_INFERRED:
	case PYX_REF_TYPE:
	case PYX_REF_DICT_KEY:
		return E_INTERNAL;
	default:
		return E_PROPERTY;
	}
}

static int write_file(struct pyx_python *py, const struct pyx_refs_graph *g,
		      FILE *f, struct pyx_heapsnapshot_info *info)
{
	struct strtab st = { 0 };
	struct idgen ids = { 0 };
	struct weak weak = { 0 };
	uint32_t nodes = g->n + 1 + (g->unreachable ? 1 : 0), sid, gid, wid;
	uint64_t edges;
	size_t wk;
	char lab[MAX_NAME], name[MAX_NAME];
	int err;

	if ((err = ids_init(&ids, g)) || (err = weak_collect(py, g, &weak)))
		goto out;
	/* the root holds the roots and the garbage node, which holds the
	 * objects no root reaches */
	edges = g->ne + weak.n + g->nroots + (g->unreachable ? 1 : 0) +
		g->unreachable;
	/* strings 0, 1: V8 starts with "" too */
	if ((err = strtab_id(&st, "", &sid)) ||
	    (err = strtab_id(&st, "(Python roots)", &sid)) ||
	    (err = strtab_id(&st, "(unreachable: garbage awaiting collection)",
			     &gid)) ||
	    (err = strtab_id(&st, "target", &wid)))
		goto out;
	fprintf(f, "{\"snapshot\":{\"meta\":{\"node_fields\":[\"type\",\"name\","
		"\"id\",\"self_size\",\"edge_count\",\"trace_node_id\","
		"\"detachedness\"],\"node_types\":[[\"hidden\",\"array\","
		"\"string\",\"object\",\"code\",\"closure\",\"regexp\","
		"\"number\",\"native\",\"synthetic\",\"concatenated string\","
		"\"sliced string\",\"symbol\",\"bigint\",\"object shape\"],"
		"\"string\",\"number\",\"number\",\"number\",\"number\","
		"\"number\"],\"edge_fields\":[\"type\",\"name_or_index\","
		"\"to_node\"],\"edge_types\":[[\"context\",\"element\","
		"\"property\",\"internal\",\"hidden\",\"shortcut\",\"weak\"],"
		"\"string_or_number\",\"node\"],"
		"\"trace_function_info_fields\":[\"function_id\",\"name\","
		"\"script_name\",\"script_id\",\"line\",\"column\"],"
		"\"trace_node_fields\":[\"id\",\"function_info_index\",\"count\","
		"\"size\",\"children\"],\"sample_fields\":[\"timestamp_us\","
		"\"last_assigned_id\"],\"location_fields\":[\"object_index\","
		"\"script_id\",\"line\",\"column\"]},\"node_count\":%u,"
		"\"edge_count\":%" PRIu64 ",\"trace_function_count\":0},\n"
		"\"nodes\":[", nodes, edges);
	/* the synthetic root */
	fprintf(f, "%d,%u,%u,0,%u,0,0", T_SYNTHETIC, sid, ROOT_ID,
		g->nroots + (g->unreachable ? 1 : 0));
	wk = 0;
	for (uint32_t v = 0; v < g->n; v++) {
		uint64_t nedge = g->off[v + 1] - g->off[v];
		uint32_t tid;

		if (wk < weak.n && weak.v[2 * wk] == v) {
			nedge++;
			wk++;
		}
		if ((err = strtab_id(&st, pyx_refs_graph_type_name(g, g->type[v]),
				     &tid)))
			goto out;
		fprintf(f, ",\n%d,%u,%u,%" PRIu64 ",%" PRIu64 ",0,0", T_OBJECT,
			tid, ids_next(&ids, g), g->size[v], nedge);
		info->self_bytes += g->size[v];
	}
	info->id_collisions = ids.collisions;
	if (g->unreachable)
		fprintf(f, ",\n%d,%u,%u,0,%" PRIu64 ",0,0", T_SYNTHETIC, gid,
			GARBAGE_ID, g->unreachable);
	fprintf(f, "],\n\"edges\":[");
	{
		const char *sep = "";

		for (uint32_t r = 0; r < g->nroots; r++) {
			const char *d = pyx_refs_graph_root_desc(g, g->root_node[r]);
			uint32_t nid;

			if ((err = strtab_id(&st, d ? d : "root", &nid)))
				goto out;
			fprintf(f, "%s%d,%u,%" PRIu64, sep, E_SHORTCUT, nid,
				((uint64_t)g->root_node[r] + 1) * NODE_FIELDS);
			sep = ",\n";
		}
		if (g->unreachable) {
			fprintf(f, "%s%d,%u,%" PRIu64, sep, E_ELEMENT, g->nroots,
				((uint64_t)g->n + 1) * NODE_FIELDS);
			sep = ",\n";
		}
		wk = 0;
		for (uint32_t v = 0; v < g->n; v++) {
			for (uint64_t e = g->off[v]; e < g->off[v + 1]; e++) {
				int t = edge_type(g->kind[e]);
				uint64_t to = ((uint64_t)g->dst[e] + 1) * NODE_FIELDS;
				uint32_t nid;

				if (t == E_ELEMENT) {
					/* an index: a number, no string */
					fprintf(f, "%s%d,%" PRIu64 ",%" PRIu64, sep, t,
						(uint64_t)g->aux[e], to);
				} else {
					pyx_refs_graph_label(g, v, e, lab, sizeof(lab));
					edge_name(lab, name, sizeof(name));
					if ((err = strtab_id(&st, name, &nid)))
						goto out;
					fprintf(f, "%s%d,%u,%" PRIu64, sep, t, nid, to);
				}
				sep = ",\n";
			}
			/* after the node's own edges, as its count says */
			if (wk < weak.n && weak.v[2 * wk] == v) {
				fprintf(f, "%s%d,%u,%" PRIu64, sep, E_WEAK, wid,
					((uint64_t)weak.v[2 * wk + 1] + 1) *
						NODE_FIELDS);
				sep = ",\n";
				wk++;
			}
		}
		for (uint32_t v = 0, i = 0; v < g->n; v++)
			if (g->parent[v] == PYX_REFS_GRAPH_NONE) {
				fprintf(f, "%s%d,%u,%" PRIu64, sep, E_ELEMENT, i++,
					((uint64_t)v + 1) * NODE_FIELDS);
				sep = ",\n";
			}
	}
	fprintf(f, "],\n\"trace_function_infos\":[],\n\"trace_tree\":[],\n"
		"\"samples\":[],\n\"locations\":[],\n\"strings\":[");
	for (size_t i = 0; i < st.n; i++) {
		if (i)
			fputs(",\n", f);
		json_out(f, st.s[i]);
	}
	fputs("]}\n", f);
	info->nodes = nodes;
	info->edges = edges;
	info->weak_edges = weak.n;
	info->strings = st.n;
out:
	ids_free(&ids);
	free(weak.v);
	strtab_free(&st);
	return err;
}

int pyx_heapsnapshot_write(struct pyx_python *py,
			   const struct pyx_heapsnapshot_opts *o,
			   const char *path, struct pyx_heapsnapshot_info *info)
{
	struct pyx_refs_graph *g = NULL;
	char tmp[4096];
	uint64_t t0;
	FILE *f = NULL;
	int fd = -1, err;

	memset(info, 0, sizeof(*info));
	if (snprintf(tmp, sizeof(tmp), "%s.tmp.%d", path, (int)getpid()) >=
	    (int)sizeof(tmp))
		return pyx_err_set(PYX_E_IO, "path too long: %s", path);
	if ((err = graph_take(py, o, &g)))
		return err;
	t0 = pyx_now_ns();
	info->pid = g->pid;
	memcpy(info->python_version, g->python_version,
	       sizeof(info->python_version));
	info->pause_ms = g->pause_ms;
	info->objects = g->n;
	info->unreachable = g->unreachable;
	info->partial = g->partial;
	/* root writes where the user said: never through a planted link */
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
		  0600);
	if (fd < 0 || !(f = fdopen(fd, "w"))) {
		err = pyx_err_set(PYX_E_IO, "cannot write %s: %s", tmp,
				  strerror(errno));
		if (fd >= 0)
			close(fd);
		goto out;
	}
	setvbuf(f, NULL, _IOFBF, 1u << 20);
	/* the heap copy the weak edges are read from lives with the graph */
	err = write_file(py, g, f, info);
	if (!err && (fflush(f) || ferror(f) || fsync(fileno(f))))
		err = pyx_err_set(PYX_E_IO, "cannot write %s: %s", path,
				  strerror(errno));
	if (!err)
		info->file_bytes = (uint64_t)ftello(f);
	if (fclose(f) && !err)
		err = pyx_err_set(PYX_E_IO, "cannot write %s: %s", path,
				  strerror(errno));
	if (!err && rename(tmp, path))
		err = pyx_err_set(PYX_E_IO, "cannot rename %s to %s: %s", tmp,
				  path, strerror(errno));
	if (err)
		unlink(tmp);
	info->walk_ms = g->build_ms + (double)(pyx_now_ns() - t0) / 1e6;
out:
	pyx_refs_graph_free(g);
	return err;
}

int pyx_heapsnapshot_find_id(struct pyx_python *py,
			     const struct pyx_heapsnapshot_opts *o, uint32_t id,
			     pyx_addr_t *addr)
{
	struct pyx_refs_graph *g = NULL;
	struct idgen ids;
	int err;

	*addr = 0;
	/* even ids, and the synthetic nodes' 1 and 3, are no object's */
	if (!(id & 1) || id <= GARBAGE_ID || id >= (1u << 31))
		return 0;
	if ((err = graph_take(py, o, &g)))
		return err;
	if ((err = ids_init(&ids, g)))
		goto out;
	/* an id depends only on the nodes before it: stop at the first */
	while (ids.next < g->n) {
		uint32_t v = ids.next;

		if (ids_next(&ids, g) == id) {
			*addr = g->addr[v];
			break;
		}
	}
	ids_free(&ids);
out:
	pyx_refs_graph_free(g);
	return err;
}
