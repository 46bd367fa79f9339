/* Line-number tables of CPython code objects (3.8 to 3.13).
 *
 * The table bytes were copied out of a process we do not trust, so every
 * read is bounded by the table length, every sum is checked for overflow,
 * and a malformed entry ends the decoding instead of being guessed at.
 *
 * All three formats are decoded by one iterator that yields raw entries:
 * a byte range [start, end) of the bytecode and its line (-1 for none).
 * Entries may be zero-width (lnotab and 3.10 tables use them to carry large
 * line deltas); the consumers skip those, as CPython does.
 */
#include <limits.h>
#include <stdbool.h>

#include "pyxray/linetable.h"

struct lt_iter {
	enum pyx_linetable_kind kind;
	const uint8_t *p, *end;
	int64_t line; /* line after the entries consumed so far */
	int64_t addr; /* end of the last entry, in bytes */
	bool tail_done; /* lnotab: the open-ended last range was yielded */
};

struct lt_entry {
	int64_t start, end;
	int line;
};

enum { LT_END = 0, LT_ENTRY = 1, LT_CORRUPT = -1 };

static void lt_init(struct lt_iter *it, enum pyx_linetable_kind kind,
		    const uint8_t *table, size_t len, int firstlineno)
{
	static const uint8_t empty[1];

	/* no table: decode an empty one, so no pointer arithmetic on NULL */
	if (!table) {
		table = empty;
		len = 0;
	}
	it->kind = kind;
	it->p = table;
	it->end = table + len;
	it->line = firstlineno;
	it->addr = 0;
	it->tail_done = false;
}

static bool line_ok(int64_t line)
{
	return line > INT_MIN && line <= INT_MAX;
}

/* Objects/lnotab_notes.txt: pairs (addr increment u8, line increment i8);
 * the line applies from the address reached *after* the increment, so the
 * range before it keeps the previous line.  After the last pair the line
 * holds to the end of the code: yield that as an open-ended range.  A
 * trailing odd byte is ignored, as PyCode_Addr2Line does. */
static int lt_next_lnotab(struct lt_iter *it, struct lt_entry *e)
{
	if (it->end - it->p >= 2) {
		e->start = it->addr;
		e->end = it->addr + it->p[0];
		e->line = (int)it->line;
		it->addr = e->end;
		it->line += (int8_t)it->p[1];
		it->p += 2;
		if (it->addr > INT_MAX || !line_ok(it->line))
			return LT_CORRUPT;
		return LT_ENTRY;
	}
	if (it->tail_done)
		return LT_END;
	it->tail_done = true;
	e->start = it->addr;
	e->end = INT_MAX;
	e->line = (int)it->line;
	return LT_ENTRY;
}

/* 3.10 co_linetable: pairs (byte delta u8, line delta i8), line delta -128
 * meaning "no line" for that range without touching the running line. */
static int lt_next_linetable(struct lt_iter *it, struct lt_entry *e)
{
	int8_t ldelta;

	if (it->end - it->p < 2)
		return LT_END;
	e->start = it->addr;
	e->end = it->addr + it->p[0];
	ldelta = (int8_t)it->p[1];
	it->p += 2;
	it->addr = e->end;
	if (it->addr > INT_MAX)
		return LT_CORRUPT;
	if (ldelta == -128) {
		e->line = -1;
		return LT_ENTRY;
	}
	it->line += ldelta;
	if (!line_ok(it->line))
		return LT_CORRUPT;
	e->line = (int)it->line;
	return LT_ENTRY;
}

/* Objects/locations.md varint: 6-bit chunks, least significant first, 0x40
 * set on all but the last.  A byte with bit 7 set starts the next entry, so
 * it cannot be part of a varint; running into one or off the end of the
 * table, or needing more than 32 bits, is a corrupt table. */
static bool read_varint(const uint8_t **pp, const uint8_t *end, uint32_t *out)
{
	const uint8_t *p = *pp;
	uint64_t val = 0;
	unsigned shift = 0;
	uint8_t b;

	do {
		if (p >= end || shift > 30)
			return false;
		b = *p++;
		if (b & 0x80)
			return false;
		val |= (uint64_t)(b & 0x3f) << shift;
		shift += 6;
	} while (b & 0x40);
	if (val > UINT32_MAX)
		return false;
	*pp = p;
	*out = (uint32_t)val;
	return true;
}

/* 3.11+ location table: an entry starts with a byte with bit 7 set;
 * (b >> 3) & 15 is its code and (b & 7) + 1 the code units it covers. */
static int lt_next_locations(struct lt_iter *it, struct lt_entry *e)
{
	const uint8_t *q;
	uint8_t b;
	int code;
	int64_t delta = 0;
	uint32_t u;

	if (it->p >= it->end)
		return LT_END;
	b = *it->p;
	if (!(b & 0x80))
		return LT_CORRUPT;
	code = (b >> 3) & 15;
	q = it->p + 1;
	if (code >= 10 && code <= 12) {
		delta = code - 10; /* one-line forms */
	} else if (code == 13 || code == 14) {
		/* no-column and long forms: signed varint line delta; the
		 * long form's end line and columns follow and are skipped */
		if (!read_varint(&q, it->end, &u))
			return LT_CORRUPT;
		delta = (u & 1) ? -(int64_t)(u >> 1) : (int64_t)(u >> 1);
	} /* 0-9 short forms: same line; 15: no location */
	it->line += delta;
	if (!line_ok(it->line))
		return LT_CORRUPT;
	e->start = it->addr;
	e->end = it->addr + ((b & 7) + 1) * 2;
	e->line = code == 15 ? -1 : (int)it->line;
	it->addr = e->end;
	if (it->addr > INT_MAX)
		return LT_CORRUPT;
	/* Skip the rest of the entry the way CPython does: to the next byte
	 * with bit 7 set. */
	it->p++;
	while (it->p < it->end && !(*it->p & 0x80))
		it->p++;
	return LT_ENTRY;
}

static int lt_next(struct lt_iter *it, struct lt_entry *e)
{
	switch (it->kind) {
	case PYX_LT_LNOTAB:
		return lt_next_lnotab(it, e);
	case PYX_LT_LINETABLE:
		return lt_next_linetable(it, e);
	case PYX_LT_LOCATIONS:
		return lt_next_locations(it, e);
	}
	return LT_CORRUPT;
}

static bool kind_ok(enum pyx_linetable_kind kind)
{
	return kind == PYX_LT_LNOTAB || kind == PYX_LT_LINETABLE ||
	       kind == PYX_LT_LOCATIONS;
}

int pyx_linetable_addr2line(enum pyx_linetable_kind kind,
			    const uint8_t *table, size_t len, int firstlineno,
			    int addr)
{
	struct lt_iter it;
	struct lt_entry e;

	if (addr < 0)
		return firstlineno;
	if (!kind_ok(kind))
		return -1;
	lt_init(&it, kind, table, len, firstlineno);
	/* The lnotab's last range is open-ended, so an address past the
	 * code still gets the last line, as in 3.8/3.9; 3.10+ give -1. */
	while (lt_next(&it, &e) == LT_ENTRY) {
		if (e.start <= addr && addr < e.end)
			return e.line;
	}
	return -1;
}

int pyx_linetable_ranges(enum pyx_linetable_kind kind, const uint8_t *table,
			 size_t len, int firstlineno, int code_len,
			 struct pyx_line_range *out, size_t max)
{
	struct lt_iter it;
	struct lt_entry e;
	struct pyx_line_range cur = { 0, 0, 0 };
	bool have = false;
	/* co_lines() merges adjacent entries with the same line in 3.12+
	 * (not in 3.10 or 3.11); merging is the useful form, and the lnotab
	 * splits long ranges into pairs that mean nothing on their own. */
	bool merge = kind != PYX_LT_LINETABLE;
	size_t n = 0;
	int rc;

	if (!kind_ok(kind) || code_len < 0 || (!table && len))
		return -1;
	/* pairs: an odd length is not a table CPython wrote */
	if (kind != PYX_LT_LOCATIONS && (len & 1))
		return -1;
	lt_init(&it, kind, table, len, firstlineno);
	while ((rc = lt_next(&it, &e)) == LT_ENTRY) {
		if (e.start >= code_len)
			break;
		if (e.end > code_len)
			e.end = code_len;
		if (e.end <= e.start)
			continue;
		if (have && merge && cur.line == e.line) {
			cur.end = (int)e.end;
			continue;
		}
		if (have) {
			if (n < max)
				out[n] = cur;
			n++;
		}
		cur.start = (int)e.start;
		cur.end = (int)e.end;
		cur.line = e.line;
		have = true;
	}
	if (rc == LT_CORRUPT)
		return -1;
	if (have) {
		if (n < max)
			out[n] = cur;
		n++;
	}
	return n > (size_t)INT_MAX ? -1 : (int)n;
}
