/* A frame's arguments and locals, with a short and safe rendering of each
 * value: what py-spy dump --locals and gdb's py-locals show.  Only values
 * pyxray can render without running code get a repr (str, bytes, int,
 * float, bool, None); containers get their type and length; anything else
 * its type and address.  Every length read from the target is bounded. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "object.h"
#include "walk.h"

#define MAX_LOCALS_SHOWN 256  /* per frame; more is said in locals_error */
#define MAX_LOCALSPLUS 65536  /* a code object with more is corrupt */
#define REPR_MAX 160          /* bytes of a repr, "..." included */
#define STR_CHARS 128         /* characters of a str read for its repr */
#define BYTES_MAX 96          /* bytes of a bytes object read */
#define LONG_MAX_DIGITS 70    /* 30-bit digits: about 630 decimal digits */

/* co_localspluskinds (3.11+) */
#define KIND_ARG_MASK 0x0e /* CO_FAST_ARG_POS | _KW | _VAR */
#define KIND_HIDDEN 0x10
#define KIND_LOCAL 0x20
#define KIND_CELL 0x40
#define KIND_FREE 0x80
/* co_flags */
#define CO_VARARGS 0x04
#define CO_VARKEYWORDS 0x08

const char *pyx_local_kind_name(enum pyx_local_kind k)
{
	switch (k) {
	case PYX_LOCAL_ARG:
		return "arg";
	case PYX_LOCAL_CELL:
		return "cell";
	case PYX_LOCAL_FREE:
		return "free";
	default:
		return "local";
	}
}

/* ---- rendering -------------------------------------------------------- */

struct out {
	char *buf;
	size_t n, len;
	bool cut;
};

static void put(struct out *o, const char *s, size_t n)
{
	if (o->cut)
		return;
	/* Room for "..." and the NUL after it. */
	if (o->len + n + 4 > o->n) {
		o->cut = true;
		memcpy(o->buf + o->len, "...", 4);
		o->len += 3;
		return;
	}
	memcpy(o->buf + o->len, s, n);
	o->len += n;
	o->buf[o->len] = '\0';
}

/* The text goes on: "..." (put() always leaves room for it). */
static void ellipsis(struct out *o)
{
	if (o->cut)
		return;
	o->cut = true;
	memcpy(o->buf + o->len, "...", 4);
	o->len += 3;
}

static void puts_(struct out *o, const char *s)
{
	put(o, s, strlen(s));
}

static void put_utf8(struct out *o, uint32_t c)
{
	char b[4];
	size_t n;

	if (c < 0x80) {
		b[0] = (char)c;
		n = 1;
	} else if (c < 0x800) {
		b[0] = (char)(0xc0 | (c >> 6));
		b[1] = (char)(0x80 | (c & 0x3f));
		n = 2;
	} else if (c < 0x10000) {
		b[0] = (char)(0xe0 | (c >> 12));
		b[1] = (char)(0x80 | ((c >> 6) & 0x3f));
		b[2] = (char)(0x80 | (c & 0x3f));
		n = 3;
	} else {
		b[0] = (char)(0xf0 | (c >> 18));
		b[1] = (char)(0x80 | ((c >> 12) & 0x3f));
		b[2] = (char)(0x80 | ((c >> 6) & 0x3f));
		b[3] = (char)(0x80 | (c & 0x3f));
		n = 4;
	}
	put(o, b, n);
}

/* Not printable as str.isprintable() has it, for the characters a target
 * is likely to hold: controls, the Latin-1 and common Unicode spaces and
 * format characters, surrogates.  (Python's full table is not copied:
 * a rarer non-printable character is shown as itself, then escaped by the
 * output like any target string.) */
static bool unprintable(uint32_t c)
{
	return c < 0x20 || (c >= 0x7f && c <= 0xa0) || c == 0xad ||
	       c == 0x1680 || (c >= 0x2000 && c <= 0x200f) ||
	       (c >= 0x2028 && c <= 0x202f) || (c >= 0x205f && c <= 0x2064) ||
	       c == 0x3000 || (c >= 0xd800 && c <= 0xdfff) || c == 0xfeff ||
	       c > 0x10ffff;
}

static void put_char_escaped(struct out *o, uint32_t c, char quote)
{
	char b[16];

	if (c == '\\' || c == (uint32_t)quote) {
		b[0] = '\\';
		b[1] = (char)c;
		put(o, b, 2);
	} else if (c == '\n') {
		puts_(o, "\\n");
	} else if (c == '\r') {
		puts_(o, "\\r");
	} else if (c == '\t') {
		puts_(o, "\\t");
	} else if (unprintable(c)) {
		if (c < 0x100)
			snprintf(b, sizeof(b), "\\x%02x", c);
		else if (c < 0x10000)
			snprintf(b, sizeof(b), "\\u%04x", c);
		else
			snprintf(b, sizeof(b), "\\U%08x", c);
		puts_(o, b);
	} else {
		put_utf8(o, c);
	}
}

/* Python's quote: ' unless the text has ' and no ". */
static char pick_quote(const uint32_t *c, size_t n)
{
	bool sq = false, dq = false;

	for (size_t i = 0; i < n; i++) {
		sq |= c[i] == '\'';
		dq |= c[i] == '"';
	}
	return sq && !dq ? '"' : '\'';
}

static int render_str(struct pyx_python *py, pyx_addr_t obj, struct out *o)
{
	pyx_addr_t data;
	uint64_t len;
	unsigned kind;
	uint32_t c[STR_CHARS];
	uint8_t raw[STR_CHARS * 4];
	size_t n;
	char q[2] = { 0 };
	int err;

	if ((err = py->abi->ops->str_data(py, obj, &data, &len, &kind)))
		return err;
	n = len < STR_CHARS ? (size_t)len : STR_CHARS;
	if (n && (err = pyx_mem_read(py->mem, data, raw, n * kind)))
		return err;
	for (size_t i = 0; i < n; i++) {
		if (kind == 1)
			c[i] = raw[i];
		else if (kind == 2)
			c[i] = (uint32_t)raw[2 * i] | (uint32_t)raw[2 * i + 1] << 8;
		else
			memcpy(&c[i], raw + 4 * i, 4);
	}
	q[0] = pick_quote(c, n);
	puts_(o, q);
	for (size_t i = 0; i < n; i++)
		put_char_escaped(o, c[i], q[0]);
	if (len > n)
		ellipsis(o);
	if (!o->cut)
		puts_(o, q);
	return 0;
}

static int render_bytes(struct pyx_python *py, pyx_addr_t obj, struct out *o)
{
	uint64_t size;
	uint8_t b[BYTES_MAX];
	uint32_t c[BYTES_MAX];
	size_t n;
	char q[2] = { 0 }, esc[8];
	int err;

	if ((err = pyx_read_field(py, obj, PYX_L_OB_SIZE, &size)))
		return err;
	if ((int64_t)size < 0)
		return pyx_err_set(PYX_E_BAD_MEMORY, "bytes " PYX_PRIaddr
				   " has a negative size", obj);
	n = size < BYTES_MAX ? (size_t)size : BYTES_MAX;
	if (n && (err = pyx_mem_read(py->mem, obj + (uint64_t)pyx_off(py,
				PYX_L_BYTES_SVAL), b, n)))
		return err;
	for (size_t i = 0; i < n; i++)
		c[i] = b[i];
	q[0] = pick_quote(c, n);
	puts_(o, "b");
	puts_(o, q);
	for (size_t i = 0; i < n; i++) {
		if (b[i] == '\\' || b[i] == (uint8_t)q[0]) {
			esc[0] = '\\';
			esc[1] = (char)b[i];
			put(o, esc, 2);
		} else if (b[i] == '\n') {
			puts_(o, "\\n");
		} else if (b[i] == '\r') {
			puts_(o, "\\r");
		} else if (b[i] == '\t') {
			puts_(o, "\\t");
		} else if (b[i] < 0x20 || b[i] >= 0x7f) {
			snprintf(esc, sizeof(esc), "\\x%02x", b[i]);
			puts_(o, esc);
		} else {
			put(o, (const char *)&b[i], 1);
		}
	}
	if (size > n)
		ellipsis(o);
	if (!o->cut)
		puts_(o, q);
	return 0;
}

/* An int of any size up to LONG_MAX_DIGITS digits, in decimal. */
static int render_long(struct pyx_python *py, pyx_addr_t obj, struct out *o)
{
	uint32_t d[LONG_MAX_DIGITS];
	uint32_t limb[LONG_MAX_DIGITS * 30 / 29 + 2]; /* base 1e9 */
	size_t nl = 0;
	uint64_t nd;
	bool neg;
	char b[16];
	int err;

	if ((err = py->abi->ops->long_digits(py, obj, &nd, &neg)))
		return err;
	if (nd > LONG_MAX_DIGITS) {
		snprintf(b, sizeof(b), "%" PRIu64, nd * 30);
		puts_(o, "<int of about ");
		puts_(o, b);
		puts_(o, " bits>");
		return 0;
	}
	if (nd && (err = pyx_mem_read(py->mem, obj + (uint64_t)pyx_off(py,
				PYX_L_LONG_DIGIT), d, nd * 4)))
		return err;
	/* Horner from the most significant digit, in base 1e9 limbs. */
	for (size_t i = nd; i-- > 0;) {
		uint64_t carry = d[i] & 0x3fffffff;

		for (size_t j = 0; j < nl; j++) {
			uint64_t v = ((uint64_t)limb[j] << 30) + carry;

			limb[j] = (uint32_t)(v % 1000000000u);
			carry = v / 1000000000u;
		}
		while (carry && nl < PYX_ARRAY_SIZE(limb)) {
			limb[nl++] = (uint32_t)(carry % 1000000000u);
			carry /= 1000000000u;
		}
	}
	if (neg && nl)
		puts_(o, "-");
	if (!nl) {
		puts_(o, "0");
		return 0;
	}
	snprintf(b, sizeof(b), "%u", limb[nl - 1]);
	puts_(o, b);
	for (size_t j = nl - 1; j-- > 0;) {
		snprintf(b, sizeof(b), "%09u", limb[j]);
		puts_(o, b);
	}
	return 0;
}

/* repr(float): the shortest digits that read back as v; fixed notation
 * for exponents -4 to 15, else d.ddde+XX (Python's 'r' format). */
static void float_repr(double v, char *out, size_t n)
{
	char buf[40], digits[24];
	const char *p;
	size_t nd = 0, o = 0;
	int e, prec;

	if (isnan(v)) {
		snprintf(out, n, "nan");
		return;
	}
	if (isinf(v)) {
		snprintf(out, n, v < 0 ? "-inf" : "inf");
		return;
	}
	if (v == 0) {
		snprintf(out, n, signbit(v) ? "-0.0" : "0.0");
		return;
	}
	for (prec = 1; prec <= 17; prec++) {
		snprintf(buf, sizeof(buf), "%.*e", prec - 1, v);
		if (strtod(buf, NULL) == v)
			break;
	}
	p = buf;
	if (*p == '-')
		p++;
	for (; *p && *p != 'e'; p++)
		if (*p >= '0' && *p <= '9' && nd < sizeof(digits) - 1)
			digits[nd++] = *p;
	digits[nd] = '\0';
	e = *p == 'e' ? atoi(p + 1) : 0;
	while (nd > 1 && digits[nd - 1] == '0')
		digits[--nd] = '\0';
	char r[64];

	if (v < 0)
		r[o++] = '-';
	if (e >= -4 && e < 16) {
		if (e < 0) {
			r[o++] = '0';
			r[o++] = '.';
			for (int i = -1; i > e; i--)
				r[o++] = '0';
			for (size_t i = 0; i < nd; i++)
				r[o++] = digits[i];
		} else {
			for (int i = 0; i <= e; i++)
				r[o++] = (size_t)i < nd ? digits[i] : '0';
			r[o++] = '.';
			if ((size_t)e + 1 < nd)
				for (size_t i = (size_t)e + 1; i < nd; i++)
					r[o++] = digits[i];
			else
				r[o++] = '0';
		}
		r[o] = '\0';
	} else {
		r[o++] = digits[0];
		if (nd > 1) {
			r[o++] = '.';
			for (size_t i = 1; i < nd; i++)
				r[o++] = digits[i];
		}
		snprintf(r + o, sizeof(r) - o, "e%c%02d", e < 0 ? '-' : '+',
			 e < 0 ? -e : e);
	}
	snprintf(out, n, "%s", r);
}

/* type(obj).__name__: tp_name after its last dot. */
static int type_short_name(struct pyx_python *py, pyx_addr_t tp, char *buf,
			   size_t n)
{
	uint64_t p;
	char tmp[128];
	size_t len = sizeof(tmp) - 1;
	const char *dot;
	int err;

	if ((err = pyx_read_field(py, tp, PYX_L_TP_NAME, &p)))
		return err;
	while (p && len > 0 && !pyx_mem_valid(py->mem, p, len))
		len /= 2;
	if (!p || !len || (err = pyx_mem_read(py->mem, p, tmp, len)))
		return err ? err : pyx_err_set(PYX_E_BAD_MEMORY, "type "
					       PYX_PRIaddr " has no name", tp);
	tmp[len] = '\0';
	dot = strrchr(tmp, '.');
	snprintf(buf, n, "%s", dot ? dot + 1 : tmp);
	return 0;
}

int pyx_value_render(struct pyx_python *py, pyx_addr_t obj, char *type,
		     size_t tn, char *repr, size_t rn)
{
	struct out o = { repr, rn, 0, false };
	pyx_addr_t tp;
	uint64_t flags = 0, len, base = 0;
	char b[64];
	int err;

	type[0] = repr[0] = '\0';
	if (rn < 8)
		return -PYX_E_INTERNAL;
	if ((err = pyx_obj_type(py, obj, &tp)) ||
	    (err = type_short_name(py, tp, type, tn)))
		return err;
	if (tp == py->types.str)
		return render_str(py, obj, &o);
	if (tp == py->types.bytes)
		return render_bytes(py, obj, &o);
	if (tp == py->types.long_)
		return render_long(py, obj, &o);
	if (pyx_read_field(py, tp, PYX_L_TP_FLAGS, &flags))
		pyx_err_clear();
	/* bool by its name, but only the static one deriving from int: a
	 * class the target names "bool" is not shown as True or False. */
	if (strcmp(type, "bool") == 0 && (flags & PYX_TPFLAGS_LONG_SUBCLASS) &&
	    !(flags & PYX_TPFLAGS_HEAPTYPE) &&
	    pyx_read_field(py, tp, PYX_L_TP_BASE, &base))
		pyx_err_clear();
	if (strcmp(type, "bool") == 0 && base && base == py->types.long_) {
		uint64_t nd;
		bool neg;

		if ((err = py->abi->ops->long_digits(py, obj, &nd, &neg)))
			return err;
		puts_(&o, nd ? "True" : "False");
		return 0;
	}
	if (strcmp(type, "NoneType") == 0 && !(flags & PYX_TPFLAGS_HEAPTYPE)) {
		puts_(&o, "None");
		return 0;
	}
	if (tp == py->types.float_ && pyx_layout_has(&py->layout, PYX_L_FLOAT_VAL)) {
		double v;

		if ((err = pyx_mem_read(py->mem, obj + (uint64_t)pyx_off(py,
					PYX_L_FLOAT_VAL), &v, 8)))
			return err;
		float_repr(v, b, sizeof(b));
		puts_(&o, b);
		return 0;
	}
	len = UINT64_MAX;
	if (tp == py->types.list || tp == py->types.tuple)
		err = pyx_read_field(py, obj, PYX_L_OB_SIZE, &len);
	else if (tp == py->types.dict)
		err = pyx_read_field(py, obj, PYX_L_DICT_USED, &len);
	else if ((tp == py->types.set || tp == py->types.frozenset) &&
		 pyx_layout_has(&py->layout, PYX_L_SET_USED))
		err = pyx_read_field(py, obj, PYX_L_SET_USED, &len);
	if (err)
		return err;
	if (len != UINT64_MAX) {
		snprintf(b, sizeof(b), " len=%" PRId64 ">", (int64_t)len);
		puts_(&o, "<");
		puts_(&o, type);
		puts_(&o, b);
		return 0;
	}
	snprintf(b, sizeof(b), " at " PYX_PRIaddr ">", obj);
	puts_(&o, "<");
	puts_(&o, type);
	puts_(&o, b);
	return 0;
}

/* ---- a frame's slots -------------------------------------------------- */

/* Where a frame's localsplus (3.11+) or f_localsplus (to 3.10) starts. */
static int localsplus_base(struct pyx_python *py, pyx_addr_t frame,
			   pyx_addr_t *base)
{
	enum pyx_layout_id id = py->k.interp_frames ? PYX_L_IF_LOCALSPLUS
						    : PYX_L_FO_LOCALSPLUS;

	if (!pyx_layout_has(&py->layout, id))
		return pyx_err_set(PYX_E_LAYOUT, "layout has no %s.%s",
				   pyx_layout_struct(id), pyx_layout_member(id));
	*base = frame + (uint64_t)(int64_t)pyx_off(py, id);
	return 0;
}

int pyx_frame_slot(struct pyx_python *py, pyx_addr_t frame, size_t i,
		   pyx_addr_t *obj)
{
	pyx_addr_t base = 0;
	uint64_t w;
	int err;

	*obj = 0;
	if ((err = localsplus_base(py, frame, &base)) ||
	    (err = pyx_mem_read_u64(py->mem, base + 8 * (uint64_t)i, &w)))
		return err;
	*obj = pyx_abi_untag(py, w);
	return 0;
}

/* The names of a tuple of str, appended to names[]. */
static int tuple_names(struct pyx_python *py, pyx_addr_t tuple, char **names,
		       size_t max, size_t *n, size_t *count)
{
	uint64_t size;
	int err;

	*count = 0;
	if (!tuple)
		return 0;
	if (!pyx_obj_is(py, tuple, py->types.tuple, 0))
		return pyx_err_set(PYX_E_BAD_MEMORY, "names " PYX_PRIaddr
				   " are not a tuple", tuple);
	if ((err = pyx_read_field(py, tuple, PYX_L_OB_SIZE, &size)))
		return err;
	if (size > MAX_LOCALSPLUS || *n + size > max)
		return pyx_err_set(PYX_E_BAD_MEMORY, "a code object with %"
				   PRIu64 " names", size);
	for (uint64_t i = 0; i < size; i++) {
		uint64_t s;
		char buf[256];

		if ((err = pyx_mem_read_u64(py->mem, tuple + (uint64_t)pyx_off(py,
					PYX_L_TUPLE_ITEM) + 8 * i, &s)) ||
		    (err = pyx_str_read(py, s, buf, sizeof(buf))))
			return err;
		if (!(names[(*n)++] = strdup(buf)))
			return -PYX_E_NOMEM;
	}
	*count = (size_t)size;
	return 0;
}

struct slots {
	char **names;
	uint8_t *kinds; /* PYX_LOCAL_* + 1, 0: hidden */
	size_t n;
};

static void slots_free(struct slots *s)
{
	for (size_t i = 0; s->names && i < s->n; i++)
		free(s->names[i]);
	free(s->names);
	free(s->kinds);
}

/* 3.11+: co_localsplusnames and co_localspluskinds. */
/* How many of a code object's first names are its arguments. */
static int arg_count(struct pyx_python *py, pyx_addr_t code, size_t *nargs)
{
	uint64_t argc, kwc, flags;
	int err;

	if ((err = pyx_read_field_n(py, code, PYX_L_CO_ARGCOUNT, 4, &argc)) ||
	    (err = pyx_read_field_n(py, code, PYX_L_CO_KWONLYARGCOUNT, 4, &kwc)) ||
	    (err = pyx_read_field_n(py, code, PYX_L_CO_FLAGS, 4, &flags)))
		return err;
	*nargs = (size_t)(argc & 0xffff) + (size_t)(kwc & 0xffff) +
		 !!(flags & CO_VARARGS) + !!(flags & CO_VARKEYWORDS);
	return 0;
}

static int slots_311(struct pyx_python *py, pyx_addr_t code, struct slots *s)
{
	uint64_t n, names, kinds;
	uint8_t *k = NULL;
	size_t klen = 0, count, nargs;
	int err;

	if ((err = arg_count(py, code, &nargs)) ||
	    (err = pyx_read_field_n(py, code, PYX_L_CO_NLOCALSPLUS, 4, &n)) ||
	    (err = pyx_read_field(py, code, PYX_L_CO_VARNAMES, &names)) ||
	    (err = pyx_read_field(py, code, PYX_L_CO_LOCALSPLUSKINDS, &kinds)))
		return err;
	if ((int32_t)n < 0 || n > MAX_LOCALSPLUS)
		return pyx_err_set(PYX_E_BAD_MEMORY, "code " PYX_PRIaddr
				   " has %" PRIu64 " locals", code, n);
	if (!(s->names = calloc(n ? n : 1, sizeof(*s->names))) ||
	    !(s->kinds = calloc(n ? n : 1, 1)))
		return -PYX_E_NOMEM;
	if ((err = tuple_names(py, names, s->names, n, &s->n, &count)) ||
	    (err = pyx_bytes_read(py, kinds, n, &k, &klen)))
		goto out;
	if (count != n || klen != n) {
		err = pyx_err_set(PYX_E_BAD_MEMORY, "code " PYX_PRIaddr
				  ": %zu names, %zu kinds for %" PRIu64
				  " locals", code, count, klen, n);
		goto out;
	}
	/* The arguments come first (3.14 also marks them CO_FAST_ARG_*;
	 * 3.11-3.13 do not). */
	for (size_t i = 0; i < n; i++)
		s->kinds[i] = (k[i] & KIND_HIDDEN) ? 0
			    : (i < nargs || (k[i] & KIND_ARG_MASK))
			    ? PYX_LOCAL_ARG + 1
			    : (k[i] & KIND_CELL) ? PYX_LOCAL_CELL + 1
			    : (k[i] & KIND_FREE) ? PYX_LOCAL_FREE + 1
						 : PYX_LOCAL_LOCAL + 1;
out:
	free(k);
	return err;
}

/* 3.8-3.10: co_varnames (the first of them the arguments), then the cell
 * and free variables' cells. */
static int slots_38(struct pyx_python *py, pyx_addr_t code, struct slots *s)
{
	uint64_t nlocals, names, cells, frees;
	size_t max, a, b, c, nargs;
	int err;

	if ((err = pyx_read_field_n(py, code, PYX_L_CO_NLOCALS, 4, &nlocals)) ||
	    (err = pyx_read_field(py, code, PYX_L_CO_VARNAMES, &names)) ||
	    (err = pyx_read_field(py, code, PYX_L_CO_CELLVARS, &cells)) ||
	    (err = pyx_read_field(py, code, PYX_L_CO_FREEVARS, &frees)) ||
	    (err = arg_count(py, code, &nargs)))
		return err;
	if ((int32_t)nlocals < 0 || nlocals > MAX_LOCALSPLUS)
		return pyx_err_set(PYX_E_BAD_MEMORY, "code " PYX_PRIaddr
				   " has %" PRIu64 " locals", code, nlocals);
	max = 3 * MAX_LOCALSPLUS;
	if (!(s->names = calloc(max, sizeof(*s->names))) ||
	    !(s->kinds = calloc(max, 1)))
		return -PYX_E_NOMEM;
	if ((err = tuple_names(py, names, s->names, max, &s->n, &a)))
		return err;
	if (a != nlocals)
		return pyx_err_set(PYX_E_BAD_MEMORY, "code " PYX_PRIaddr
				   ": %zu names for %" PRIu64 " locals", code,
				   a, nlocals);
	for (size_t i = 0; i < a; i++)
		s->kinds[i] = i < nargs ? PYX_LOCAL_ARG + 1 : PYX_LOCAL_LOCAL + 1;
	if ((err = tuple_names(py, cells, s->names, max, &s->n, &b)))
		return err;
	for (size_t i = a; i < a + b; i++)
		s->kinds[i] = PYX_LOCAL_CELL + 1;
	if ((err = tuple_names(py, frees, s->names, max, &s->n, &c)))
		return err;
	for (size_t i = a + b; i < a + b + c; i++)
		s->kinds[i] = PYX_LOCAL_FREE + 1;
	return 0;
}

static void local_free(struct pyx_local *l)
{
	free(l->name);
	free(l->type);
	free(l->repr);
}

void pyx_frame_locals_release(struct pyx_frame *f)
{
	for (size_t i = 0; i < f->nlocals; i++)
		local_free(&f->locals[i]);
	free(f->locals);
	free(f->locals_error);
	f->locals = NULL;
	f->nlocals = 0;
	f->locals_error = NULL;
}

static int read_locals(struct pyx_python *py, struct pyx_frame *f)
{
	struct slots s = { 0 };
	pyx_addr_t base = 0;
	size_t cap = 0;
	int err;

	if ((err = localsplus_base(py, f->frame, &base)))
		return err;
	err = py->k.interp_frames ? slots_311(py, f->code, &s)
				  : slots_38(py, f->code, &s);
	if (err)
		goto out;
	if (!pyx_mem_valid(py->mem, base, 8 * s.n)) {
		err = pyx_err_set(PYX_E_BAD_MEMORY, "frame " PYX_PRIaddr
				  ": its %zu locals are not mapped", f->frame,
				  s.n);
		goto out;
	}
	for (size_t i = 0; i < s.n; i++) {
		enum pyx_local_kind kind;
		struct pyx_local *l;
		char type[128], repr[REPR_MAX];
		pyx_addr_t v, tp;
		uint64_t w;
		size_t j;

		if (!s.kinds[i])
			continue; /* hidden (3.12+: an inlined comprehension's) */
		kind = (enum pyx_local_kind)(s.kinds[i] - 1);
		if ((err = pyx_mem_read_u64(py->mem, base + 8 * i, &w)))
			goto out;
		if (!(v = pyx_abi_untag(py, w)))
			continue; /* unbound */
		/* A cell or free variable's slot holds its cell (once the
		 * frame has made it: before, the argument itself). */
		if ((kind != PYX_LOCAL_LOCAL) &&
		    pyx_obj_type(py, v, &tp) == 0 && tp == py->types.cell) {
			uint64_t ref;

			if ((err = pyx_read_field(py, v, PYX_L_CELL_REF, &ref)))
				goto out;
			if (!(v = ref))
				continue; /* an empty cell */
		}
		pyx_err_clear();
		if (pyx_value_render(py, v, type, sizeof(type), repr,
				     sizeof(repr))) {
			/* Unreadable: say what is known. */
			snprintf(repr, sizeof(repr), "<unreadable at "
				 PYX_PRIaddr ">", v);
			pyx_err_clear();
		}
		/* 3.8-3.10: an argument that is also a cell appears twice;
		 * its value is the cell's (as frame.f_locals has it). */
		for (j = 0; j < f->nlocals; j++)
			if (strcmp(f->locals[j].name, s.names[i]) == 0)
				break;
		if (j < f->nlocals) {
			l = &f->locals[j];
			free(l->type);
			free(l->repr);
			l->type = strdup(type);
			l->repr = strdup(repr);
			if (!l->type || !l->repr) {
				err = -PYX_E_NOMEM;
				goto out;
			}
			continue;
		}
		if (f->nlocals >= MAX_LOCALS_SHOWN) {
			err = pyx_err_set(PYX_E_BAD_MEMORY, "more than %d "
					  "locals: the rest not shown",
					  MAX_LOCALS_SHOWN);
			goto out;
		}
		if (f->nlocals == cap) {
			size_t ncap = cap ? cap * 2 : 8;
			struct pyx_local *nl = realloc(f->locals,
						       ncap * sizeof(*nl));

			if (!nl) {
				err = -PYX_E_NOMEM;
				goto out;
			}
			f->locals = nl;
			cap = ncap;
		}
		l = &f->locals[f->nlocals];
		l->kind = kind;
		l->name = strdup(s.names[i]);
		l->type = strdup(type);
		l->repr = strdup(repr);
		if (!l->name || !l->type || !l->repr) {
			local_free(l);
			err = -PYX_E_NOMEM;
			goto out;
		}
		f->nlocals++;
	}
out:
	slots_free(&s);
	return err;
}

int pyx_frame_locals(struct pyx_python *py, struct pyx_frame *f)
{
	int err = read_locals(py, f);

	if (err == -PYX_E_EXITED || err == -PYX_E_NOMEM)
		return err;
	if (err) {
		/* The locals read so far stay: a partial answer. */
		f->locals_error = strdup(pyx_err_detail()[0] ? pyx_err_detail()
							      : pyx_strerror(err));
		pyx_err_clear();
	}
	return 0;
}
