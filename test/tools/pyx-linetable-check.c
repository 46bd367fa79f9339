/* Check lib/linetable.c against a corpus written by
 * fixtures/linetable_corpus.py: the running CPython's own PyCode_Addr2Line
 * answers (L records) and co_lines() ranges (R records).
 *
 * Usage: pyx-linetable-check CORPUS
 * Exit 0 only if at least one record was checked and none mismatched.
 *
 * 3.11's co_lines() yields one range per table entry, while 3.12+ merge
 * adjacent entries with the same line, and so does pyx_linetable_ranges
 * for location tables: for 3.11 the expected ranges are merged before the
 * comparison.  Every other version is compared exactly.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pyxray/linetable.h"

#define MAX_SHOWN 10

struct code_rec {
	enum pyx_linetable_kind kind;
	int firstlineno, code_len;
	uint8_t *table;
	size_t len;
	char name[256];
	long lineno; /* of the C record in the corpus */
	struct pyx_line_range *want;
	size_t nwant, cap;
};

static char version[32] = "?";
static unsigned long checked, mismatches, ranges_merged;

static void fail(long lineno, const char *name, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void fail(long lineno, const char *name, const char *fmt, ...)
{
	va_list ap;

	if (++mismatches > MAX_SHOWN)
		return;
	fprintf(stderr, "  mismatch (corpus line %ld, %s): ", lineno, name);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static bool parse_kind(const char *s, enum pyx_linetable_kind *kind)
{
	if (!strcmp(s, "lnotab"))
		*kind = PYX_LT_LNOTAB;
	else if (!strcmp(s, "linetable"))
		*kind = PYX_LT_LINETABLE;
	else if (!strcmp(s, "locations"))
		*kind = PYX_LT_LOCATIONS;
	else
		return false;
	return true;
}

/* "C kind firstlineno code_len table_len hex|- name"; tokenizes line. */
static bool parse_code(char *line, struct code_rec *c)
{
	char *save = NULL, *kind, *first, *clen, *tlen, *hex, *name;
	size_t i, n;

	strtok_r(line, " \n", &save);
	kind = strtok_r(NULL, " \n", &save);
	first = strtok_r(NULL, " \n", &save);
	clen = strtok_r(NULL, " \n", &save);
	tlen = strtok_r(NULL, " \n", &save);
	hex = strtok_r(NULL, " \n", &save);
	name = strtok_r(NULL, " \n", &save);
	if (!name || !parse_kind(kind, &c->kind))
		return false;
	c->firstlineno = atoi(first);
	c->code_len = atoi(clen);
	n = strtoul(tlen, NULL, 10);
	if (!strcmp(hex, "-"))
		hex = "";
	if (strlen(hex) != 2 * n)
		return false;
	free(c->table);
	c->table = malloc(n ? n : 1);
	if (!c->table)
		return false;
	for (i = 0; i < n; i++) {
		int hi = hexval(hex[2 * i]), lo = hexval(hex[2 * i + 1]);

		if (hi < 0 || lo < 0)
			return false;
		c->table[i] = (uint8_t)(hi << 4 | lo);
	}
	c->len = n;
	snprintf(c->name, sizeof(c->name), "%s", name);
	c->nwant = 0;
	return true;
}

static bool add_range(struct code_rec *c, int start, int end, int line)
{
	bool merge = !strcmp(version, "3.11");

	if (merge && c->nwant && c->want[c->nwant - 1].line == line &&
	    c->want[c->nwant - 1].end == start) {
		c->want[c->nwant - 1].end = end;
		ranges_merged++;
		return true;
	}
	if (c->nwant == c->cap) {
		size_t cap = c->cap ? 2 * c->cap : 64;
		void *p = realloc(c->want, cap * sizeof(*c->want));

		if (!p)
			return false;
		c->want = p;
		c->cap = cap;
	}
	c->want[c->nwant++] = (struct pyx_line_range){ start, end, line };
	return true;
}

/* Compare the R records gathered for the code object c. */
static void check_ranges(struct code_rec *c, unsigned long nrec)
{
	struct pyx_line_range *got;
	size_t room = c->nwant + 1, i;
	int n;

	if (!nrec)
		return;
	got = calloc(room, sizeof(*got));
	if (!got) {
		fail(c->lineno, c->name, "out of memory");
		return;
	}
	n = pyx_linetable_ranges(c->kind, c->table, c->len, c->firstlineno,
				 c->code_len, got, room);
	if (n < 0 || (size_t)n != c->nwant) {
		fail(c->lineno, c->name, "ranges: got %d ranges, want %zu", n,
		     c->nwant);
	} else {
		for (i = 0; i < c->nwant; i++) {
			if (got[i].start == c->want[i].start &&
			    got[i].end == c->want[i].end &&
			    got[i].line == c->want[i].line)
				continue;
			fail(c->lineno, c->name,
			     "range %zu: got (%d, %d, %d), want (%d, %d, %d)",
			     i, got[i].start, got[i].end, got[i].line,
			     c->want[i].start, c->want[i].end, c->want[i].line);
			break;
		}
	}
	/* a short buffer must still report the full count */
	if (c->nwant > 1 &&
	    pyx_linetable_ranges(c->kind, c->table, c->len, c->firstlineno,
				 c->code_len, got, 1) != (int)c->nwant)
		fail(c->lineno, c->name, "ranges: wrong count with max 1");
	free(got);
}

int main(int argc, char **argv)
{
	struct code_rec c = { 0 };
	unsigned long nrec_code = 0, nexpect = 0, nlines = 0;
	bool have_code = false, have_end = false, bad = false;
	char *line = NULL;
	size_t cap = 0;
	long lineno = 0;
	FILE *f;

	if (argc != 2) {
		fprintf(stderr, "usage: %s CORPUS\n", argv[0]);
		return 2;
	}
	f = fopen(argv[1], "r");
	if (!f) {
		fprintf(stderr, "%s: %s\n", argv[1], strerror(errno));
		return 2;
	}
	while (getline(&line, &cap, f) > 0) {
		int a, b, l;

		lineno++;
		switch (line[0]) {
		case 'V':
			if (sscanf(line, "V %31s", version) != 1)
				bad = true;
			break;
		case 'C':
			if (have_code)
				check_ranges(&c, nrec_code);
			c.lineno = lineno;
			have_code = parse_code(line, &c);
			if (!have_code)
				bad = true;
			nrec_code = 0;
			break;
		case 'L':
			if (!have_code || sscanf(line, "L %d %d", &a, &l) != 2) {
				bad = true;
				break;
			}
			nlines++;
			checked++;
			b = pyx_linetable_addr2line(c.kind, c.table, c.len,
						    c.firstlineno, a);
			if (b != l)
				fail(lineno, c.name, "addr %d: got line %d, want %d",
				     a, b, l);
			break;
		case 'R':
			if (!have_code ||
			    sscanf(line, "R %d %d %d", &a, &b, &l) != 3 ||
			    !add_range(&c, a, b, l)) {
				bad = true;
				break;
			}
			checked++;
			nrec_code++;
			break;
		case 'E':
			if (sscanf(line, "E %lu", &nexpect) != 1)
				bad = true;
			have_end = true;
			break;
		default:
			bad = true;
		}
		if (bad) {
			fprintf(stderr, "%s:%ld: bad record\n", argv[1], lineno);
			break;
		}
	}
	if (have_code && !bad)
		check_ranges(&c, nrec_code);
	fclose(f);
	free(line);
	free(c.table);
	free(c.want);
	if (!bad && (!have_end || nexpect != checked)) {
		fprintf(stderr, "%s: truncated corpus (%lu of %lu records)\n",
			argv[1], checked, nexpect);
		bad = true;
	}
	printf("linetable: %s: %lu records checked (%lu lines, %lu ranges%s), "
	       "%lu mismatches\n",
	       version, checked, nlines, checked - nlines,
	       ranges_merged ? ", co_lines entries merged as in 3.12+" : "",
	       mismatches);
	if (mismatches > MAX_SHOWN)
		fprintf(stderr, "  (%lu more mismatches not shown)\n",
			mismatches - MAX_SHOWN);
	return bad || mismatches || !checked ? 1 : 0;
}
