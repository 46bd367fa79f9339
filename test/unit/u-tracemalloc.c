/* Unit tests of lib/heap/tracemalloc.c: tracemalloc's tables faked in a
 * buffer (the "target"), in each version's layout (the built-in tables),
 * read through a memory source that serves only that buffer: sound tables
 * give the traces, grouped as Snapshot.statistics() groups them; corrupt
 * ones (a cycle in a chain, absurd counts, pointers off the mapping, a
 * traceback past its mapping) give an error or a partial result, never a
 * hang or a read outside.  Then the statistics, compare_to() and the saved
 * file on made-up traces. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "abi.h"
#include "pyxray/allocs.h"
#include "pyxray/layout.h"
#include "pyxray/memory.h"

#include "unit.h"
#include "fake_target.h"

/* Where the fake keeps tracemalloc's state. */
struct fake {
	struct pyx_python *py;
	uint64_t *tracing, *max_nframe, *traced, *peak, *traces, *domains;
};

/* A symbol of the fake build: its value, unbiased as a file's are (the
 * arena's start is the load bias). */
static void sym(struct pyx_python *py, enum pyx_layout_id id, const void *at)
{
	py->layout.v[id] = (int32_t)(A(at) - A(arena));
}

static struct fake fake_py(int minor)
{
	struct fake f = { 0 };
	/* no symbol at the bias itself: the arena's first words unused */
	struct pyx_python *py = fake_python(minor, 2);
	uint64_t *meta = (uint64_t *)(uintptr_t)py->types.type, *str, *rt;

	str = take(128);
	put_n(py, str, PYX_L_OB_TYPE, A(meta), 8);
	py->types.str = A(str);
	rt = take(2048);
	py->info.runtime = A(rt);
	f.py = py;
	if (py->k.tm_statics) {
		uint64_t *config = take(4);

		sym(py, PYX_L_SYM_RUNTIME, rt);
		sym(py, PYX_L_SYM_TM_CONFIG, config);
		f.tracing = (uint64_t *)((uint8_t *)config +
					 py->layout.v[PYX_L_TMC_TRACING]);
		f.max_nframe = (uint64_t *)((uint8_t *)config +
					    py->layout.v[PYX_L_TMC_MAX_NFRAME]);
		f.traces = take(1);
		f.domains = take(1);
		f.traced = take(1);
		f.peak = take(1);
		sym(py, PYX_L_SYM_TM_TRACES, f.traces);
		sym(py, PYX_L_SYM_TM_DOMAINS, f.domains);
		sym(py, PYX_L_SYM_TM_TRACED, f.traced);
		sym(py, PYX_L_SYM_TM_PEAK, f.peak);
	} else {
#define RT(id) (uint64_t *)((uint8_t *)rt + py->layout.v[id])
		f.tracing = RT(PYX_L_RT_TM_TRACING);
		f.max_nframe = RT(PYX_L_RT_TM_MAX_NFRAME);
		f.traces = RT(PYX_L_RT_TM_TRACES);
		f.domains = RT(PYX_L_RT_TM_DOMAINS);
		f.traced = RT(PYX_L_RT_TM_TRACED);
		f.peak = RT(PYX_L_RT_TM_PEAK);
#undef RT
	}
	memcpy(f.tracing, &(int32_t){ 1 }, 4);
	memcpy(f.max_nframe, &(int32_t){ 5 }, 4);
	return f;
}

/* The memory changed under the page cache (a live target's is dropped at
 * every stop): read it afresh. */
static int read_allocs(struct pyx_python *py, const struct pyx_allocs_opts *o,
		       struct pyx_allocs **a)
{
	pyx_mem_invalidate(py->mem);
	return pyx_allocs_read(py, o, a);
}

static void free_py(struct fake *f)
{
	fake_python_free(f->py);
}

/* A file name as the version stores it: a compact ASCII str, or (3.15) a
 * C string. */
static pyx_addr_t file_name(struct pyx_python *py, const char *s)
{
	uint64_t *o = take(16 + strlen(s) / 8);
	uint32_t state = (1u << 2) | (1u << 5) | (1u << 6);

	if (py->k.tm_c_filenames) {
		strcpy((char *)o, s);
		return A(o);
	}
	put_n(py, o, PYX_L_OB_TYPE, py->types.str, 8);
	put_n(py, o, PYX_L_STR_LENGTH, strlen(s), 8);
	put_n(py, o, PYX_L_STR_STATE, state, 4);
	strcpy((char *)o + py->layout.v[PYX_L_SZ_ASCII], s);
	return A(o);
}

static uint64_t *traceback(struct pyx_python *py, uint32_t nframe,
			   const pyx_addr_t *files, const uint32_t *lines)
{
	int32_t fs = py->layout.v[PYX_L_SZ_TM_FRAME];
	uint64_t *tb = take(4 + (nframe * (size_t)fs + 7) / 8);
	uint8_t *frames = (uint8_t *)tb + py->layout.v[PYX_L_TM_TB_FRAMES];

	if (pyx_layout_has(&py->layout, PYX_L_TM_TB_TOTAL_NFRAME)) {
		put_n(py, tb, PYX_L_TM_TB_NFRAME, nframe, 2);
		put_n(py, tb, PYX_L_TM_TB_TOTAL_NFRAME, nframe + 3, 2);
	} else {
		put_n(py, tb, PYX_L_TM_TB_NFRAME, nframe, 4);
	}
	for (uint32_t i = 0; i < nframe; i++) {
		memcpy(frames + i * fs + py->layout.v[PYX_L_TM_FRAME_FILENAME],
		       &files[i], 8);
		memcpy(frames + i * fs + py->layout.v[PYX_L_TM_FRAME_LINENO],
		       &lines[i], 4);
	}
	return tb;
}

static uint64_t *table(struct pyx_python *py, uint64_t nentries,
		       uint64_t nbuckets, uint64_t **buckets)
{
	uint64_t *ht = take(12);

	*buckets = take(nbuckets);
	put_n(py, ht, PYX_L_HT_NENTRIES, nentries, 8);
	put_n(py, ht, PYX_L_HT_NBUCKETS, nbuckets, 8);
	put_n(py, ht, PYX_L_HT_BUCKETS, A(*buckets), 8);
	if (py->k.tm_inline_entries) {
		put_n(py, ht, PYX_L_HT_KEY_SIZE, 8, 8);
		put_n(py, ht, PYX_L_HT_DATA_SIZE, 16, 8);
	}
	return ht;
}

/* An entry for a trace of size bytes at ptr, linked before next. */
static uint64_t *entry(struct pyx_python *py, pyx_addr_t ptr, uint64_t size,
		       const uint64_t *tb, uint64_t *next)
{
	uint64_t *e;

	if (py->k.tm_inline_entries) {
		int32_t hdr = py->layout.v[PYX_L_SZ_HT_ENTRY];

		e = take(8);
		put_n(py, e, PYX_L_HTE_NEXT, A(next), 8);
		memcpy((uint8_t *)e + hdr, &ptr, 8);
		memcpy((uint8_t *)e + hdr + 8 + py->layout.v[PYX_L_TM_TRACE_SIZE],
		       &size, 8);
		memcpy((uint8_t *)e + hdr + 8 +
		       py->layout.v[PYX_L_TM_TRACE_TRACEBACK], &(uint64_t){ A(tb) }, 8);
		return e;
	}
	e = take(4);
	uint64_t *trace = take(2);
	put_n(py, trace, PYX_L_TM_TRACE_SIZE, size, 8);
	put_n(py, trace, PYX_L_TM_TRACE_TRACEBACK, A(tb), 8);
	put_n(py, e, PYX_L_HTE_NEXT, A(next), 8);
	put_n(py, e, PYX_L_HTE_KEY, ptr, 8);
	put_n(py, e, PYX_L_HTE_VALUE, A(trace), 8);
	return e;
}

/* The sound state: f.py:10 <- g.py:20 twice (100 + 50 bytes), f.py:11
 * once (7 bytes), and (3.9+) domain 7: f.py:11 once (1000 bytes). */
struct sound {
	uint64_t *ht, *buckets, *e1, *e2, *e3, *tb1, *tb2;
};

static struct sound build_sound(struct fake *f)
{
	struct pyx_python *py = f->py;
	struct sound s;
	pyx_addr_t ff = file_name(py, "/srv/f.py"), gf = file_name(py, "g py%.py");
	pyx_addr_t files1[2] = { ff, gf }, files2[1] = { ff };
	uint32_t lines1[2] = { 10, 20 }, lines2[1] = { 11 };
	uint64_t total = 157;

	s.tb1 = traceback(py, 2, files1, lines1);
	s.tb2 = traceback(py, 1, files2, lines2);
	s.ht = table(py, 3, 8, &s.buckets);
	s.e3 = entry(py, 0x5000, 7, s.tb2, NULL);
	s.e2 = entry(py, 0x4000, 50, s.tb1, NULL);
	s.e1 = entry(py, 0x3000, 100, s.tb1, s.e2);
	s.buckets[0] = A(s.e1);
	s.buckets[5] = A(s.e3);
	*f->traces = A(s.ht);
	if (!py->k.tm_inline_entries) {
		uint64_t *dbuckets, *tbuckets;
		uint64_t *dom = table(py, 1, 4, &dbuckets);
		uint64_t *t7 = table(py, 1, 2, &tbuckets);
		uint64_t *de = take(4);

		tbuckets[1] = A(entry(py, 0x9000, 1000, s.tb2, NULL));
		put_n(py, de, PYX_L_HTE_KEY, 7, 8);
		put_n(py, de, PYX_L_HTE_VALUE, A(t7), 8);
		dbuckets[2] = A(de);
		*f->domains = A(dom);
		total += 1000;
	}
	*f->traced = total;
	*f->peak = total + 5;
	return s;
}

static const struct pyx_allocs_stat *stat_at(const struct pyx_allocs_stat *s,
					     size_t n, const char *file,
					     uint32_t line)
{
	for (size_t i = 0; i < n; i++)
		if (s[i].file && strcmp(s[i].file, file) == 0 && s[i].line == line)
			return &s[i];
	return NULL;
}

START_TEST(sound_tables)
{
	struct fake f = fake_py(8 + _i);
	struct pyx_python *py = f.py;
	struct pyx_allocs_opts o = { .keep_pointers = true };
	struct pyx_allocs *a = NULL;
	struct pyx_allocs_stat *s = NULL;
	const struct pyx_allocs_stat *x;
	bool tracing;
	int n, err;
	size_t ns;
	bool domains = !py->k.tm_inline_entries;

	build_sound(&f);
	ck_assert_int_eq(pyx_allocs_status(py, &tracing, &n), 0);
	ck_assert(tracing);
	ck_assert_int_eq(n, 5);
	err = read_allocs(py, &o, &a);
	ck_assert_msg(err == 0, "3.%d: %s", 8 + _i, pyx_err_detail());
	ck_assert(!a->partial);
	ck_assert_uint_eq(a->skipped, 0);
	ck_assert_uint_eq(a->ntraces, domains ? 4 : 3);
	ck_assert_uint_eq(a->nbytes, a->traced_bytes);
	ck_assert_uint_eq(a->peak_bytes, a->traced_bytes + 5);
	ck_assert_uint_eq(a->domain_traces, domains ? 1 : 0);
	ck_assert_uint_eq(a->nptrs, 3); /* domain 0 only */
	ck_assert_int_eq(a->max_nframe, 5);

	ck_assert_int_eq(pyx_allocs_statistics(a, PYX_ALLOCS_BY_LINENO, &s, &ns), 0);
	ck_assert_uint_eq(ns, 2);
	x = stat_at(s, ns, "/srv/f.py", 10);
	ck_assert_ptr_nonnull(x);
	ck_assert_uint_eq(x->bytes, 150);
	ck_assert_uint_eq(x->count, 2);
	x = stat_at(s, ns, "/srv/f.py", 11);
	ck_assert_ptr_nonnull(x);
	ck_assert_uint_eq(x->bytes, domains ? 1007 : 7);
	/* Biggest first. */
	ck_assert_uint_ge(s[0].bytes, s[1].bytes);
	free(s);

	ck_assert_int_eq(pyx_allocs_statistics(a, PYX_ALLOCS_BY_FILENAME, &s, &ns), 0);
	ck_assert_uint_eq(ns, 1);
	ck_assert_str_eq(s[0].file, "/srv/f.py");
	ck_assert_uint_eq(s[0].line, 0);
	ck_assert_uint_eq(s[0].count, domains ? 4 : 3);
	free(s);

	ck_assert_int_eq(pyx_allocs_statistics(a, PYX_ALLOCS_BY_TRACEBACK, &s, &ns), 0);
	ck_assert_uint_eq(ns, 2);
	for (size_t i = 0; i < ns; i++)
		if (s[i].tb->nframe == 2) {
			ck_assert_str_eq(s[i].tb->frames[1].file, "g py%.py");
			ck_assert_uint_eq(s[i].tb->frames[1].line, 20);
			ck_assert_uint_eq(s[i].tb->total_nframe,
					  py->k.tm_inline_entries ? 2 : 5);
		}
	free(s);
	ck_assert_uint_eq(reads_outside, 0);
	pyx_allocs_free(a);
	free_py(&f);
}
END_TEST

START_TEST(off_and_missing)
{
	struct fake f = fake_py(8 + _i);
	struct pyx_allocs *a = NULL;

	build_sound(&f);
	memcpy(f.tracing, &(int32_t){ 0 }, 4);
	ck_assert_int_eq(read_allocs(f.py, NULL, &a), -PYX_E_NOT_SUPPORTED);
	ck_assert_ptr_null(a);
	ck_assert_ptr_nonnull(strstr(pyx_err_detail(), "PYTHONTRACEMALLOC"));
	ck_assert_ptr_nonnull(strstr(pyx_err_detail(), "tracemalloc.start"));
	memcpy(f.tracing, &(int32_t){ 1 }, 4);
	/* A stripped 3.8-3.11: no symbol for the static tables. */
	if (f.py->k.tm_statics) {
		f.py->layout.v[PYX_L_SYM_TM_TRACES] = PYX_OFF_NONE;
		ck_assert_int_eq(read_allocs(f.py, NULL, &a),
				 -PYX_E_NOT_SUPPORTED);
		ck_assert_msg(strstr(pyx_err_detail(), "debug symbols"), "%s",
			      pyx_err_detail());
	}
	free_py(&f);
}
END_TEST

START_TEST(corrupt_tables)
{
	struct fake f = fake_py(8 + _i);
	struct pyx_python *py = f.py;
	struct pyx_allocs_opts o = { .max_traces = 1000 };
	struct pyx_allocs *a = NULL;
	struct sound s = build_sound(&f);
	int err;

	/* A cycle: e2 -> e1 -> e2...: cut at the entry count, partial. */
	put_n(py, s.e2, PYX_L_HTE_NEXT, A(s.e1), 8);
	ck_assert_int_eq(read_allocs(py, &o, &a), 0);
	ck_assert(a->partial);
	ck_assert_uint_le(a->ntraces, 4 + 1);
	pyx_allocs_free(a);
	a = NULL;
	put_n(py, s.e2, PYX_L_HTE_NEXT, 0, 8);

	/* A traceback whose frames run off the mapping: that trace is
	 * skipped, the others read. */
	if (pyx_layout_has(&py->layout, PYX_L_TM_TB_TOTAL_NFRAME))
		put_n(py, s.tb2, PYX_L_TM_TB_NFRAME, 65535, 2);
	else
		put_n(py, s.tb2, PYX_L_TM_TB_NFRAME, 65535, 4);
	ck_assert_int_eq(read_allocs(py, &o, &a), 0);
	ck_assert(a->partial);
	ck_assert_msg(a->skipped >= 1, "skipped %llu traces %llu ntb %zu tb0 n %u",
		      (unsigned long long)a->skipped, (unsigned long long)a->ntraces, a->ntb, a->tb[0].nframe);
	ck_assert_uint_eq(a->ntraces, 2);
	pyx_allocs_free(a);
	a = NULL;

	/* A next pointer off the mapping: the rest of its chain is lost. */
	put_n(py, s.e1, PYX_L_HTE_NEXT, 0x10, 8);
	ck_assert_int_eq(read_allocs(py, &o, &a), 0);
	ck_assert(a->partial);
	pyx_allocs_free(a);
	a = NULL;

	/* Absurd heads: refused before any allocation. */
	put_n(py, s.ht, PYX_L_HT_NBUCKETS, 1ull << 40, 8);
	ck_assert_int_eq(read_allocs(py, &o, &a), -PYX_E_BAD_MEMORY);
	put_n(py, s.ht, PYX_L_HT_NBUCKETS, 1u << 20, 8); /* past the mapping */
	ck_assert_int_eq(read_allocs(py, &o, &a), -PYX_E_BAD_MEMORY);
	put_n(py, s.ht, PYX_L_HT_NBUCKETS, 8, 8);
	put_n(py, s.ht, PYX_L_HT_NENTRIES, 1ull << 50, 8);
	err = read_allocs(py, &o, &a);
	ck_assert_int_eq(err, -PYX_E_NOMEM);
	put_n(py, s.ht, PYX_L_HT_NENTRIES, 3, 8);
	put_n(py, s.ht, PYX_L_HT_BUCKETS, 0x1234567, 8);
	ck_assert_int_eq(read_allocs(py, &o, &a), -PYX_E_BAD_MEMORY);
	if (py->k.tm_inline_entries) {
		put_n(py, s.ht, PYX_L_HT_BUCKETS, A(s.buckets), 8);
		put_n(py, s.ht, PYX_L_HT_KEY_SIZE, 13, 8);
		ck_assert_int_eq(read_allocs(py, &o, &a), -PYX_E_BAD_MEMORY);
	}
	*f.traces = 0x10;
	ck_assert_int_eq(read_allocs(py, &o, &a), -PYX_E_BAD_MEMORY);
	ck_assert_ptr_null(a);
	ck_assert_uint_eq(reads_outside, 0);
	free_py(&f);
}
END_TEST

/* ---- statistics, compare_to(), the file -------------------------------- */

static char *write_file(const char *text)
{
	char *path = strdup("/tmp/u-tracemalloc-XXXXXX");
	int fd = mkstemp(path);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	return path;
}

static const char old_file[] =
	"pyxray-allocs 1\npid 7\npython 3.12.1\ntime 100.5\ntraced 300\n"
	"peak 400\nmax_nframe 2\ntraces 4\nskipped 0\npartial 0\ntracebacks 3\n"
	"t 100 1 1 1\nf 10 a.py\n"
	"t 150 2 2 2\nf 10 a.py\nf 5 main%20x%25.py\n"
	"t 50 1 1 1\nf 3 gone.py\nend\n";
static const char new_file[] =
	"pyxray-allocs 1\npid 7\npython 3.12.1\ntime 110.5\ntraced 900\n"
	"peak 900\nmax_nframe 2\ntraces 5\nskipped 0\npartial 0\ntracebacks 2\n"
	"t 700 3 1 1\nf 10 a.py\n"
	"t 200 2 1 1\nf 12 a.py\nfuture 1\nend\n";

START_TEST(compare_to)
{
	char *p1 = write_file(old_file), *p2 = write_file(new_file);
	struct pyx_allocs *a = NULL, *b = NULL;
	struct pyx_allocs_stat *d = NULL;
	size_t n;

	ck_assert(pyx_allocs_file_is(p1));
	ck_assert_int_eq(pyx_allocs_load(p1, &a), 0);
	/* An unknown line where a traceback should be: refused. */
	ck_assert_int_eq(pyx_allocs_load(p2, &b), -PYX_E_FORMAT);
	unlink(p2);
	free(p2);
	p2 = write_file("pyxray-allocs 1\npid 7\npython 3.12.1\ntime 110.5\n"
			"traced 900\npeak 900\nfuture 1\ntracebacks 2\n"
			"t 700 3 1 1\nf 10 a.py\nt 200 2 1 1\nf 12 a.py\nend\n");
	ck_assert_int_eq(pyx_allocs_load(p2, &b), 0);
	ck_assert_str_eq(a->tb[1].frames[1].file, "main x%.py");
	ck_assert_uint_eq(a->traced_bytes, 300);

	/* By line: a.py:10 250 -> 700 (+450, +1); a.py:12 new (+200, +2);
	 * gone.py:3 gone (-50, -1). */
	ck_assert_int_eq(pyx_allocs_compare(b, a, PYX_ALLOCS_BY_LINENO, &d, &n), 0);
	ck_assert_uint_eq(n, 3);
	ck_assert_str_eq(d[0].file, "a.py");
	ck_assert_uint_eq(d[0].line, 10);
	ck_assert_int_eq(d[0].dbytes, 450);
	ck_assert_int_eq(d[0].dcount, 0);
	ck_assert_uint_eq(d[1].line, 12);
	ck_assert_int_eq(d[1].dbytes, 200);
	ck_assert_str_eq(d[2].file, "gone.py");
	ck_assert_uint_eq(d[2].bytes, 0);
	ck_assert_int_eq(d[2].dbytes, -50);
	ck_assert_int_eq(d[2].dcount, -1);
	free(d);

	/* By traceback: the two-frame one is gone whole. */
	ck_assert_int_eq(pyx_allocs_compare(b, a, PYX_ALLOCS_BY_TRACEBACK, &d, &n), 0);
	ck_assert_uint_eq(n, 4);
	ck_assert_int_eq(d[0].dbytes, 600);
	ck_assert_int_eq(d[1].dbytes, 200);
	ck_assert_int_eq(d[2].dbytes, -150);
	ck_assert_uint_eq(d[2].tb->nframe, 2);
	free(d);

	/* Saved and loaded again: the same statistics. */
	{
		char path[] = "/tmp/u-tracemalloc-save-XXXXXX";
		struct pyx_allocs *c = NULL;
		struct pyx_allocs_stat *s1, *s2;
		size_t n1, n2;
		int fd = mkstemp(path);

		ck_assert_int_ge(fd, 0);
		close(fd);
		ck_assert_int_eq(pyx_allocs_save(a, path), 0);
		ck_assert_int_eq(pyx_allocs_load(path, &c), 0);
		ck_assert_int_eq(pyx_allocs_statistics(a, PYX_ALLOCS_BY_TRACEBACK,
						       &s1, &n1), 0);
		ck_assert_int_eq(pyx_allocs_statistics(c, PYX_ALLOCS_BY_TRACEBACK,
						       &s2, &n2), 0);
		ck_assert_uint_eq(n1, n2);
		for (size_t i = 0; i < n1; i++) {
			ck_assert_uint_eq(s1[i].bytes, s2[i].bytes);
			ck_assert_str_eq(s1[i].file, s2[i].file);
			ck_assert_uint_eq(s1[i].tb->nframe, s2[i].tb->nframe);
		}
		ck_assert_double_eq(c->time, a->time);
		free(s1);
		free(s2);
		pyx_allocs_free(c);
		unlink(path);
	}
	pyx_allocs_free(a);
	pyx_allocs_free(b);
	unlink(p1);
	unlink(p2);
	free(p1);
	free(p2);
}
END_TEST

START_TEST(bad_files)
{
	static const char *const bad[] = {
		"",
		"pyxray-allocs 2\n",
		"pyxray-allocs 1\npid 1\ntracebacks 1\nt 1 1 1 1\n",
		"pyxray-allocs 1\ntracebacks 1\nt 1 1 70000 70000\nend\n",
		"pyxray-allocs 1\ntracebacks 1\nt 1 1 1 1\nf x a.py\nend\n",
		"pyxray-allocs 1\ntracebacks 1\nt 1 1 1 1\nf 1 a%zz.py\nend\n",
		"pyxray-allocs 1\ntracebacks 1\nt 1 1 0 0\n",
		"pyxray-allocs 1\ntracebacks 99999999999\n",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char *p = write_file(bad[i]);
		struct pyx_allocs *a = NULL;

		ck_assert_int_eq(pyx_allocs_load(p, &a), -PYX_E_FORMAT);
		ck_assert_ptr_null(a);
		unlink(p);
		free(p);
	}
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("tracemalloc");
	TCase *tc = tcase_create("core");

	/* 3.8 .. 3.15 */
	tcase_add_loop_test(tc, sound_tables, 0, 8);
	tcase_add_loop_test(tc, off_and_missing, 0, 8);
	tcase_add_loop_test(tc, corrupt_tables, 0, 8);
	tcase_add_test(tc, compare_to);
	tcase_add_test(tc, bad_files);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return pyx_unit_run(suite());
}
