/* Census snapshot files (.pxh): saving and loading.
 *
 * Format version 2 (also in docs/snapshot-format.md).  UTF-8 text, lines
 * ending in "\n", fields separated by one TAB:
 *
 *   pyxray-heap-snapshot<TAB>2
 *   python_version<TAB>3.11.7
 *   python_binary<TAB>/usr/lib/libpython3.11.so.1.0
 *   pid<TAB>4242
 *   time<TAB>1700000000.123456          Unix time of the census
 *   pause_ms<TAB>12.345
 *   rss_bytes<TAB>N                     -1: unknown
 *   arena_bytes<TAB>N                   -1: unknown
 *   gc_objects<TAB>N
 *   gc_bytes<TAB>N
 *   reached_objects<TAB>N
 *   reached_bytes<TAB>N
 *   truncated<TAB>0|1                   the heap copy hit its bound
 *   tracked_only<TAB>0|1                untracked objects not counted
 *   partial<TAB>0|1                     some of the heap could not be read
 *   damaged_lists<TAB>N                 GC lists cut short at a bad link
 *   bad_objects<TAB>N                   objects that did not read as such
 *   types<TAB>K
 *   t<TAB>tracked<TAB>tracked_bytes<TAB>reached<TAB>reached_bytes<TAB>name
 *   ... K lines, names sorted (strcmp), distinct, no control characters
 *   end<TAB>XXXXXXXX                    CRC-32 (zlib's) of every byte before
 *                                       this line, 8 lowercase hex digits
 *
 * Keys come in this order, each once; a reader refuses anything else: an
 * unknown first line, another format version, a missing or extra key, a
 * number that does not parse, totals that do not match the rows, or a bad
 * checksum.  A later format version changes the number on the first line.
 * Version 1 is version 2 without the three damage lines: it is read too
 * (partial = truncated, no damage counts).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"
#include "pyxray/census.h"

#define PXH_MAGIC "pyxray-heap-snapshot"
#define PXH_VERSION 2
#define PXH_OLDEST 1   /* the oldest version read */
#define PXH_MAX_SIZE (256u << 20)  /* a file bigger than this is refused */
#define PXH_MAX_TYPES (1u << 22)
#define PXH_MAX_NAME 1024
#define PXH_MAX_COUNT (1ull << 62)

static uint32_t crc_table[256];

static void crc_init(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;

		for (int k = 0; k < 8; k++)
			c = c & 1 ? 0xedb88320u ^ (c >> 1) : c >> 1;
		crc_table[i] = c;
	}
}

static uint32_t crc32_of(const char *p, size_t n)
{
	uint32_t c = 0xffffffffu;

	if (!crc_table[1])
		crc_init();
	for (size_t i = 0; i < n; i++)
		c = crc_table[(c ^ (uint8_t)p[i]) & 0xff] ^ (c >> 8);
	return c ^ 0xffffffffu;
}

static bool name_ok(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > PXH_MAX_NAME)
		return false;
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return false;
	return true;
}

int pyx_census_save(const struct pyx_census *c, const char *path)
{
	char *buf = NULL, tmp[4096];
	size_t len = 0;
	FILE *m = open_memstream(&buf, &len);
	FILE *f = NULL;
	struct pyx_census_type **sorted = NULL;
	int err = 0;

	if (!m)
		return -PYX_E_NOMEM;
	fprintf(m, PXH_MAGIC "\t%d\n", PXH_VERSION);
	fprintf(m, "python_version\t%s\n", c->python_version);
	fprintf(m, "python_binary\t%s\n", c->python_binary);
	fprintf(m, "pid\t%d\n", c->pid);
	fprintf(m, "time\t%.6f\n", c->time);
	fprintf(m, "pause_ms\t%.3f\n", c->pause_ms);
	fprintf(m, "rss_bytes\t%" PRId64 "\n", c->rss_bytes);
	fprintf(m, "arena_bytes\t%" PRId64 "\n", c->arena_bytes);
	fprintf(m, "gc_objects\t%" PRIu64 "\n", c->gc_objects);
	fprintf(m, "gc_bytes\t%" PRIu64 "\n", c->gc_bytes);
	fprintf(m, "reached_objects\t%" PRIu64 "\n", c->reached_objects);
	fprintf(m, "reached_bytes\t%" PRIu64 "\n", c->reached_bytes);
	fprintf(m, "truncated\t%d\n", c->truncated ? 1 : 0);
	fprintf(m, "tracked_only\t%d\n", c->tracked_only ? 1 : 0);
	fprintf(m, "partial\t%d\n", c->partial ? 1 : 0);
	fprintf(m, "damaged_lists\t%" PRIu64 "\n", c->damaged_lists);
	fprintf(m, "bad_objects\t%" PRIu64 "\n", c->bad_objects);
	fprintf(m, "types\t%zu\n", c->ntypes);
	/* Rows sorted by name, whatever order the caller sorted them in. */
	sorted = malloc((c->ntypes ? c->ntypes : 1) * sizeof(*sorted));
	if (!sorted) {
		fclose(m);
		free(buf);
		return -PYX_E_NOMEM;
	}
	for (size_t i = 0; i < c->ntypes; i++)
		sorted[i] = &c->types[i];
	for (size_t i = 1; i < c->ntypes; i++)
		for (size_t j = i; j > 0 &&
		     strcmp(sorted[j - 1]->name, sorted[j]->name) > 0; j--) {
			struct pyx_census_type *t = sorted[j];

			sorted[j] = sorted[j - 1];
			sorted[j - 1] = t;
		}
	for (size_t i = 0; i < c->ntypes; i++) {
		const struct pyx_census_type *t = sorted[i];

		fprintf(m, "t\t%" PRIu64 "\t%" PRIu64 "\t%" PRIu64 "\t%" PRIu64
			"\t%s\n", t->tracked, t->tracked_bytes, t->reached,
			t->reached_bytes, t->name);
	}
	free(sorted);
	if (fflush(m) || ferror(m)) {
		fclose(m);
		free(buf);
		return -PYX_E_NOMEM;
	}
	fprintf(m, "end\t%08" PRIx32 "\n", crc32_of(buf, len));
	fclose(m);

	if (snprintf(tmp, sizeof(tmp), "%s.tmp.%d", path, (int)getpid()) >=
	    (int)sizeof(tmp)) {
		free(buf);
		return pyx_err_set(PYX_E_IO, "path too long: %s", path);
	}
	f = fopen(tmp, "we");
	if (!f) {
		err = pyx_err_set(PYX_E_IO, "cannot write %s: %s", path,
				  strerror(errno));
	} else {
		if (fwrite(buf, 1, len, f) != len || fflush(f) ||
		    fsync(fileno(f)))
			err = pyx_err_set(PYX_E_IO, "cannot write %s: %s", path,
					  strerror(errno));
		if (fclose(f) && !err)
			err = pyx_err_set(PYX_E_IO, "cannot write %s: %s", path,
					  strerror(errno));
		if (!err && rename(tmp, path))
			err = pyx_err_set(PYX_E_IO, "cannot rename %s to %s: %s",
					  tmp, path, strerror(errno));
		if (err)
			unlink(tmp);
	}
	free(buf);
	return err;
}

/* ---- loading ----------------------------------------------------------- */

struct reader {
	const char *path;
	char *p, *end;
	size_t line;
};

static int bad(const struct reader *r, const char *what)
{
	return pyx_err_set(PYX_E_FORMAT, "%s: line %zu: %s (not a pyxray "
			   "snapshot, or corrupt)", r->path, r->line, what);
}

/* The next line, NUL-terminated in place; NULL at the end. */
static char *next_line(struct reader *r)
{
	char *s = r->p, *nl;

	if (r->p >= r->end)
		return NULL;
	nl = memchr(r->p, '\n', (size_t)(r->end - r->p));
	if (!nl)
		return NULL; /* the last line must end in a newline */
	*nl = '\0';
	r->p = nl + 1;
	r->line++;
	return s;
}

/* "key<TAB>value": the value, or NULL. */
static const char *keyed(struct reader *r, const char *key)
{
	char *s = next_line(r);
	size_t n = strlen(key);

	if (!s || strncmp(s, key, n) != 0 || s[n] != '\t')
		return NULL;
	return s + n + 1;
}

static bool parse_u64(const char *s, uint64_t *out)
{
	char *end;

	if (!*s || *s == '-' || *s == '+' || *s == ' ')
		return false;
	errno = 0;
	*out = strtoull(s, &end, 10);
	return !errno && !*end && *out <= PXH_MAX_COUNT;
}

static bool parse_i64(const char *s, int64_t *out)
{
	char *end;

	if (!*s || *s == ' ' || *s == '+')
		return false;
	errno = 0;
	*out = strtoll(s, &end, 10);
	return !errno && !*end && *out >= -1;
}

static bool parse_double(const char *s, double *out)
{
	char *end;

	if (!*s || *s == ' ')
		return false;
	errno = 0;
	*out = strtod(s, &end);
	return !errno && !*end && *out >= 0 && *out < 1e15;
}

#define NEED(cond, what)                                                       \
	do {                                                                   \
		if (!(cond)) {                                                 \
			err = bad(&r, what);                                   \
			goto out;                                              \
		}                                                              \
	} while (0)

int pyx_census_load(const char *path, struct pyx_census **out)
{
	struct reader r = { path, NULL, NULL, 0 };
	struct pyx_census *c = NULL;
	char *data = NULL, *endline;
	const char *v;
	uint64_t u, ntypes, sum[4] = { 0 }, crc;
	int64_t i64;
	int version;
	size_t len = 0;
	long size;
	FILE *f;
	int err = 0;

	*out = NULL;
	f = fopen(path, "re");
	if (!f)
		return pyx_err_set(PYX_E_IO, "cannot open %s: %s", path,
				   strerror(errno));
	if (fseek(f, 0, SEEK_END) || (size = ftell(f)) < 0 ||
	    fseek(f, 0, SEEK_SET)) {
		fclose(f);
		return pyx_err_set(PYX_E_IO, "cannot read %s: %s", path,
				   strerror(errno));
	}
	if ((unsigned long)size > PXH_MAX_SIZE) {
		fclose(f);
		return pyx_err_set(PYX_E_FORMAT, "%s: %ld bytes: too big for "
				   "a pyxray snapshot", path, size);
	}
	data = malloc((size_t)size + 1);
	if (!data) {
		fclose(f);
		return -PYX_E_NOMEM;
	}
	len = fread(data, 1, (size_t)size, f);
	fclose(f);
	if (len != (size_t)size) {
		free(data);
		return pyx_err_set(PYX_E_IO, "cannot read %s", path);
	}
	data[len] = '\0';
	if (memchr(data, '\0', len)) {
		free(data);
		return pyx_err_set(PYX_E_FORMAT, "%s: binary data: not a pyxray "
				   "snapshot", path);
	}
	r.p = data;
	r.end = data + len;
	c = calloc(1, sizeof(*c));
	if (!c) {
		free(data);
		return -PYX_E_NOMEM;
	}

	/* The header, then the checksum before anything is parsed (parsing
	 * cuts lines in place): it tells corruption from a wrong guess. */
	if (len < sizeof(PXH_MAGIC) || memcmp(data, PXH_MAGIC "\t",
					     sizeof(PXH_MAGIC)) != 0) {
		r.line = 1;
		err = bad(&r, "no '" PXH_MAGIC "' header");
		goto out;
	}
	endline = NULL;
	for (char *p = r.end - 1; p > r.p; p--)
		if (p[-1] == '\n') {
			endline = p;
			break;
		}
	NEED(endline && len > 0 && data[len - 1] == '\n' &&
	     strncmp(endline, "end\t", 4) == 0, "no 'end' line: the file is cut short");
	{
		char *e;

		errno = 0;
		crc = strtoull(endline + 4, &e, 16);
		NEED(!errno && e == endline + 12 && *e == '\n',
		     "bad checksum line");
		if (crc != crc32_of(data, (size_t)(endline - data))) {
			err = pyx_err_set(PYX_E_FORMAT, "%s: checksum mismatch: "
					  "the file is corrupt", path);
			goto out;
		}
	}
	v = keyed(&r, PXH_MAGIC);
	NEED(v, "no '" PXH_MAGIC "' header");
	if (strlen(v) != 1 || v[0] < '0' + PXH_OLDEST ||
	    v[0] > '0' + PXH_VERSION) {
		err = pyx_err_set(PYX_E_FORMAT, "%s: snapshot format version "
				  "'%.20s'; this pyxray reads versions %d to %d",
				  path, v, PXH_OLDEST, PXH_VERSION);
		goto out;
	}
	version = v[0] - '0';
	NEED((v = keyed(&r, "python_version")) && *v &&
	     strlen(v) < sizeof(c->python_version), "bad python_version");
	snprintf(c->python_version, sizeof(c->python_version), "%s", v);
	NEED((v = keyed(&r, "python_binary")) &&
	     strlen(v) < sizeof(c->python_binary), "bad python_binary");
	snprintf(c->python_binary, sizeof(c->python_binary), "%s", v);
	NEED((v = keyed(&r, "pid")) && parse_u64(v, &u) && u > 0 && u < (1u << 30),
	     "bad pid");
	c->pid = (int)u;
	NEED((v = keyed(&r, "time")) && parse_double(v, &c->time), "bad time");
	NEED((v = keyed(&r, "pause_ms")) && parse_double(v, &c->pause_ms),
	     "bad pause_ms");
	NEED((v = keyed(&r, "rss_bytes")) && parse_i64(v, &i64), "bad rss_bytes");
	c->rss_bytes = i64;
	NEED((v = keyed(&r, "arena_bytes")) && parse_i64(v, &i64),
	     "bad arena_bytes");
	c->arena_bytes = i64;
	NEED((v = keyed(&r, "gc_objects")) && parse_u64(v, &c->gc_objects),
	     "bad gc_objects");
	NEED((v = keyed(&r, "gc_bytes")) && parse_u64(v, &c->gc_bytes),
	     "bad gc_bytes");
	NEED((v = keyed(&r, "reached_objects")) &&
	     parse_u64(v, &c->reached_objects), "bad reached_objects");
	NEED((v = keyed(&r, "reached_bytes")) && parse_u64(v, &c->reached_bytes),
	     "bad reached_bytes");
	NEED((v = keyed(&r, "truncated")) && (!strcmp(v, "0") || !strcmp(v, "1")),
	     "bad truncated");
	c->truncated = v[0] == '1';
	NEED((v = keyed(&r, "tracked_only")) &&
	     (!strcmp(v, "0") || !strcmp(v, "1")), "bad tracked_only");
	c->tracked_only = v[0] == '1';
	if (version >= 2) {
		NEED((v = keyed(&r, "partial")) &&
		     (!strcmp(v, "0") || !strcmp(v, "1")), "bad partial");
		c->partial = v[0] == '1';
		NEED((v = keyed(&r, "damaged_lists")) &&
		     parse_u64(v, &c->damaged_lists), "bad damaged_lists");
		NEED((v = keyed(&r, "bad_objects")) &&
		     parse_u64(v, &c->bad_objects), "bad bad_objects");
		NEED(c->partial == (c->truncated || c->damaged_lists ||
				    c->bad_objects),
		     "partial does not match truncated and the damage counts");
	} else {
		c->partial = c->truncated;
	}
	NEED((v = keyed(&r, "types")) && parse_u64(v, &ntypes) &&
	     ntypes <= PXH_MAX_TYPES, "bad types");
	c->types = calloc(ntypes ? ntypes : 1, sizeof(*c->types));
	if (!c->types) {
		err = -PYX_E_NOMEM;
		goto out;
	}
	for (uint64_t i = 0; i < ntypes; i++) {
		struct pyx_census_type *t = &c->types[i];
		char *s = next_line(&r), *fld[6];
		int nf = 0;

		NEED(s && s[0] == 't' && s[1] == '\t', "expected a type row");
		/* Five numbers, then the name (the rest of the line). */
		for (char *p = s; nf < 6;) {
			fld[nf++] = p;
			if (nf == 6)
				break;
			p = strchr(p, '\t');
			NEED(p, "short type row");
			*p++ = '\0';
		}
		NEED(parse_u64(fld[1], &t->tracked) &&
		     parse_u64(fld[2], &t->tracked_bytes) &&
		     parse_u64(fld[3], &t->reached) &&
		     parse_u64(fld[4], &t->reached_bytes), "bad number in a type row");
		NEED(name_ok(fld[5]), "bad type name");
		NEED(i == 0 || strcmp(c->types[i - 1].name, fld[5]) < 0,
		     "type rows not sorted or not distinct");
		t->name = strdup(fld[5]);
		if (!t->name) {
			err = -PYX_E_NOMEM;
			goto out;
		}
		c->ntypes++;
		t->count = t->tracked + t->reached;
		t->bytes = t->tracked_bytes + t->reached_bytes;
		/* totals that wrap could match a crafted header */
		NEED(!__builtin_add_overflow(sum[0], t->tracked, &sum[0]) &&
		     !__builtin_add_overflow(sum[1], t->tracked_bytes, &sum[1]) &&
		     !__builtin_add_overflow(sum[2], t->reached, &sum[2]) &&
		     !__builtin_add_overflow(sum[3], t->reached_bytes, &sum[3]),
		     "totals do not match the type rows");
	}
	NEED(sum[0] == c->gc_objects && sum[1] == c->gc_bytes &&
	     sum[2] == c->reached_objects && sum[3] == c->reached_bytes,
	     "totals do not match the type rows");
	NEED(r.p == endline, "extra lines before 'end'");
	c->objects = c->gc_objects + c->reached_objects;
	c->bytes = c->gc_bytes + c->reached_bytes;
out:
	free(data);
	if (err) {
		pyx_census_free(c);
		return err;
	}
	*out = c;
	return 0;
}
