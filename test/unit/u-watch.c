/* Unit tests of lib/heap/watch.c that need no process: the curve
 * classifier and the leak verdict on synthetic series of each shape and of
 * noise, the series (types summed, halving when full) and the per-type
 * growth ranking. */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "pyxray/memory_report.h"
#include "pyxray/watch.h"

#include "unit.h"

#define N 40
#define DT 0.25

static double T[N], Y[N];
static uint64_t rng = 88172645463325252ull;

/* Uniform in [-1, 1): a fixed sequence, so a failure reproduces. */
static double noise(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (double)(rng >> 11) / (double)(1ull << 52) - 1.0;
}

static void times(void)
{
	for (int i = 0; i < N; i++)
		T[i] = i * DT;
}

static enum pyx_watch_shape classify(struct pyx_watch_curve *c)
{
	pyx_watch_classify(T, Y, N, 0, c);
	return c->shape;
}

#define ck_shape(want)                                                         \
	do {                                                                   \
		struct pyx_watch_curve c_;                                     \
		enum pyx_watch_shape got_ = classify(&c_);                     \
		ck_assert_msg(got_ == (want),                                  \
			      "shape %s, expected %s (tau %.2f r2 %.2f "      \
			      "rises %u falls %u start %.2f end %.2f noise "  \
			      "%.1f amp %.1f why %s)",                        \
			      pyx_watch_shape_name(got_),                      \
			      pyx_watch_shape_name(want), c_.trend.tau,       \
			      c_.trend.r2, c_.rises, c_.falls, c_.start,      \
			      c_.end, c_.noise, c_.amplitude,                 \
			      c_.trend.why ? c_.trend.why : "-");             \
	} while (0)

START_TEST(shape_flat)
{
	times();
	for (int i = 0; i < N; i++)
		Y[i] = 1e6 + 3000 * noise(); /* +-0.3% */
	ck_shape(PYX_SHAPE_FLAT);
}
END_TEST

START_TEST(shape_noise)
{
	/* Jitter of +-8% with no trend: wider than the flat band, but no
	 * structure beyond the noise: flat, never a leak or a sawtooth. */
	times();
	for (int i = 0; i < N; i++)
		Y[i] = 1e6 + 8e4 * noise();
	ck_shape(PYX_SHAPE_FLAT);
	for (int k = 0; k < 20; k++) {
		struct pyx_watch_trend tr;

		for (int i = 0; i < N; i++)
			Y[i] = 1000 + 100 * noise();
		pyx_watch_trend(T, Y, N, 10, &tr);
		ck_assert_msg(!tr.leak, "noise read as a leak (tau %.2f)", tr.tau);
	}
}
END_TEST

START_TEST(shape_leak)
{
	struct pyx_watch_trend tr;

	times();
	for (int i = 0; i < N; i++)
		Y[i] = 1e6 + 4e4 * T[i] + 2000 * noise();
	ck_shape(PYX_SHAPE_LEAK);
	pyx_watch_trend(T, Y, N, 10, &tr);
	ck_assert(tr.leak);
	/* The robust slope is the rate, noise or not. */
	ck_assert_msg(fabs(tr.slope - 4e4) < 2e3, "slope %g", tr.slope);
}
END_TEST

START_TEST(shape_leak_staircase)
{
	/* A batch leaked every 5 samples: steps, still a steady leak. */
	times();
	for (int i = 0; i < N; i++)
		Y[i] = 5e5 + 1e5 * (i / 5);
	ck_shape(PYX_SHAPE_LEAK);
}
END_TEST

START_TEST(shape_leak_with_outlier)
{
	/* One sample far off (a GC moment): Theil-Sen does not follow it. */
	struct pyx_watch_trend tr;

	times();
	for (int i = 0; i < N; i++)
		Y[i] = 1000 + 100 * T[i];
	Y[N / 2] = 100000;
	pyx_watch_trend(T, Y, N, 10, &tr);
	ck_assert_msg(tr.leak, "%s", tr.why);
	ck_assert_msg(fabs(tr.slope - 100) < 1, "slope %g", tr.slope);
}
END_TEST

START_TEST(shape_sawtooth)
{
	/* A cache filled over 8 samples and emptied: 5 teeth. */
	times();
	for (int i = 0; i < N; i++)
		Y[i] = 1e6 + 2.5e5 * (i % 8);
	ck_shape(PYX_SHAPE_SAWTOOTH);
	/* The same with noise and a tooth cut short at the end. */
	for (int i = 0; i < N; i++)
		Y[i] = 1e6 + 2.5e5 * (i % 7) + 1e4 * noise();
	ck_shape(PYX_SHAPE_SAWTOOTH);
}
END_TEST

START_TEST(shape_sawtooth_sparse)
{
	/* Four samples a tooth, taken at uneven times (a loaded host).
	 * Fewer cannot be told from noise (docs/watch.md). */
	times();
	for (int i = 0; i < N; i++)
		Y[i] = 1e6 + 3e5 * ((i % 4) + 0.4 * (noise() + 1) / 2);
	ck_shape(PYX_SHAPE_SAWTOOTH);
	/* A cache filled and drained slowly: a triangle. */
	for (int i = 0; i < N; i++)
		Y[i] = 1e6 + 1e5 * (i % 12 < 6 ? i % 12 : 12 - i % 12);
	ck_shape(PYX_SHAPE_SAWTOOTH);
}
END_TEST

START_TEST(shape_sawtooth_loaded)
{
	/* test_watch's sawtooth on 3.13 on a loaded host (pauses of 100-300
	 * ms, 3 or 4 samples a tooth, uneven times): once read as flat. */
	static const double t[] = { 0.00, 0.23, 0.53, 0.94, 1.34, 1.67, 1.94,
		2.31, 2.71, 3.06, 3.40, 3.79, 4.18, 4.72, 5.16, 5.50, 5.82, 6.11,
		6.42, 6.75, 6.95, 7.31, 7.52, 7.87, 8.22, 8.55, 8.79, 9.11 };
	static const double y[] = { 14569968, 14639480, 15158744, 15685792,
		16211880, 14985712, 15327240, 15806504, 15047584, 15622560,
		15944688, 14731104, 15295208, 15826216, 15138416, 15547408,
		16106568, 14750272, 15101856, 15314920, 15507984, 16000584,
		14976472, 15322312, 15841200, 14640096, 14939488, 15214592 };
	struct pyx_watch_curve c;

	pyx_watch_classify(t, y, sizeof(t) / sizeof(t[0]), 0, &c);
	ck_assert_msg(c.shape == PYX_SHAPE_SAWTOOTH, "%s",
		      pyx_watch_shape_name(c.shape));
}
END_TEST

START_TEST(shape_noise_seeds)
{
	/* Many draws of noise (5000 passed too): never a sawtooth, a surge or a leak. */
	times();
	for (int k = 0; k < 500; k++) {
		struct pyx_watch_curve c;

		for (int i = 0; i < N; i++)
			Y[i] = 1e6 + 8e4 * noise();
		pyx_watch_classify(T, Y, N, 0, &c);
		ck_assert_msg(c.shape == PYX_SHAPE_FLAT ||
			      c.shape == PYX_SHAPE_IRREGULAR,
			      "draw %d: noise read as %s (rises %u falls %u "
			      "noise %.0f amp %.0f)", k,
			      pyx_watch_shape_name(c.shape), c.rises, c.falls,
			      c.noise, c.amplitude);
	}
}
END_TEST

START_TEST(shape_early_growth)
{
	/* A start-up allocation over the first 6 samples, then flat. */
	struct pyx_watch_trend tr;

	times();
	for (int i = 0; i < N; i++)
		Y[i] = 1e6 + 2e6 * (i < 6 ? i / 6.0 : 1.0) + 2000 * noise();
	ck_shape(PYX_SHAPE_EARLY_GROWTH);
	pyx_watch_trend(T, Y, N, 10, &tr);
	ck_assert_msg(!tr.leak, "early growth read as a leak");
	/* Rising through the first 40% of the window: still early growth
	 * (tau and R^2 alone would call it steady). */
	for (int i = 0; i < N; i++)
		Y[i] = 1e6 + 2e6 * (i < 16 ? i / 16.0 : 1.0);
	ck_shape(PYX_SHAPE_EARLY_GROWTH);
	/* A plateau with frequent spikes of 10% of the rise (a temporary
	 * list seen by one census in four). */
	for (int i = 0; i < N; i++)
		Y[i] = 1e6 + 2e6 * (i < 6 ? i / 6.0 : 1.0) + (i % 4 == 1 ? 2e5 : 0);
	ck_shape(PYX_SHAPE_EARLY_GROWTH);
}
END_TEST

START_TEST(shape_surge)
{
	struct pyx_watch_trend tr;

	times();
	for (int i = 0; i < N; i++)
		Y[i] = 1e6 + (i >= 10 && i < 20 ? 3e6 : 0) + 5000 * noise();
	ck_shape(PYX_SHAPE_SURGE);
	/* A surge late in the window: not a leak (it came back down). */
	for (int i = 0; i < N; i++)
		Y[i] = 1e6 + (i >= 20 && i < 34 ? 3e6 * (i - 19) / 14.0 : 0);
	pyx_watch_trend(T, Y, N, 10, &tr);
	ck_assert(!tr.leak);
	ck_shape(PYX_SHAPE_SURGE);
}
END_TEST

START_TEST(too_few)
{
	struct pyx_watch_curve c;
	struct pyx_watch_trend tr;

	times();
	for (int i = 0; i < N; i++)
		Y[i] = 100 * i;
	pyx_watch_classify(T, Y, PYX_WATCH_MIN_SAMPLES - 1, 0, &c);
	ck_assert_int_eq(c.shape, PYX_SHAPE_UNKNOWN);
	pyx_watch_trend(T, Y, 3, 1, &tr);
	ck_assert(!tr.leak);
	ck_assert_msg(fabs(tr.slope - 400) < 1e-9, "slope %g", tr.slope);
	pyx_watch_trend(T, Y, 0, 1, &tr);
	ck_assert(!tr.leak);
}
END_TEST

START_TEST(min_growth)
{
	/* +1 object every 2 samples: 20 over the window. */
	struct pyx_watch_trend tr;

	times();
	for (int i = 0; i < N; i++)
		Y[i] = 500 + i / 2;
	pyx_watch_trend(T, Y, N, 10, &tr);
	ck_assert_msg(tr.leak, "%s", tr.why);
	pyx_watch_trend(T, Y, N, 50, &tr);
	ck_assert(!tr.leak);
}
END_TEST

static void add(struct pyx_watch *w, double time, const char *const *names,
		const uint64_t *counts, size_t n)
{
	struct pyx_watch_sample s = { .time = time, .rss_bytes = -1,
				      .arena_bytes = -1 };
	uint64_t bytes[8];

	for (size_t i = 0; i < n; i++) {
		bytes[i] = counts[i] * 100;
		s.objects += counts[i];
		s.bytes += bytes[i];
	}
	ck_assert_int_eq(pyx_watch_add_sample(w, &s, names, counts, bytes, n), 0);
}

START_TEST(series_and_growth)
{
	static const char *const names[] = { "__main__.Leaky", "dict",
					     "__main__.Cache", "list", "dict",
					     "int" };
	struct pyx_watch *w;
	struct pyx_watch_growth *g;
	size_t ng;
	bool seen_cache = false, seen_dict = false;

	ck_assert_int_eq(pyx_watch_new(16, 0, &w), 0);
	for (int k = 0; k < 40; k++) {
		/* Leaky: +20 a sample; Cache: a sawtooth; dict: two rows of
		 * one name, summed; list: constant; int appears at 10. */
		uint64_t c[6] = { 100 + 20 * (uint64_t)k, 50, (uint64_t)(k % 5) * 40,
				  7, 25, 3 };

		add(w, 1000.0 + 0.5 * k, names, c, k >= 10 ? 6 : 5);
	}
	ck_assert_uint_eq(w->taken, 40);
	ck_assert_uint_le(w->nsamples, 16);
	ck_assert_uint_ge(w->halvings, 1);
	/* The window kept its span. */
	ck_assert(w->samples[0].t == 0);
	ck_assert_msg(w->samples[w->nsamples - 1].t >= 19.0 - 2.0, "span %g",
		      w->samples[w->nsamples - 1].t);
	ck_assert_int_eq(pyx_watch_growth(w, 10, &g, &ng), 0);
	ck_assert_uint_ge(ng, 2);
	ck_assert_str_eq(g[0].name, "__main__.Leaky");
	ck_assert(g[0].leak);
	ck_assert_msg(fabs(g[0].count_per_s - 40) < 1, "rate %g", g[0].count_per_s);
	ck_assert_msg(fabs(g[0].bytes_per_s - 4000) < 100, "bytes/s %g",
		      g[0].bytes_per_s);
	ck_assert_uint_eq(g[0].first, 100);
	for (size_t i = 1; i < ng; i++) {
		ck_assert_msg(!g[i].leak, "%s read as a leak", g[i].name);
		seen_cache |= strcmp(g[i].name, "__main__.Cache") == 0;
		seen_dict |= strcmp(g[i].name, "dict") == 0;
	}
	ck_assert(!seen_dict); /* 75 all along: unchanged */
	ck_assert(seen_cache);
	free(g);
	{
		double t[16], y[16];
		size_t n = pyx_watch_series(w, PYX_WATCH_RSS_BYTES, t, y);

		ck_assert_uint_eq(n, 0); /* unknown RSS: no points */
		n = pyx_watch_series(w, PYX_WATCH_OBJECTS, t, y);
		ck_assert_uint_eq(n, w->nsamples);
	}
	/* Out of order: refused. */
	{
		struct pyx_watch_sample s = { .time = 10 };

		ck_assert_int_lt(pyx_watch_add_sample(w, &s, NULL, NULL, NULL, 0), 0);
	}
	pyx_watch_free(w);
}
END_TEST

START_TEST(type_bound)
{
	static const char *const names[] = { "a", "b", "c" };
	static const uint64_t counts[] = { 1, 2, 3 };
	struct pyx_watch *w;

	ck_assert_int_eq(pyx_watch_new(0, 2, &w), 0);
	add(w, 1, names, counts, 3);
	ck_assert_uint_eq(w->ntypes, 2);
	ck_assert_uint_eq(w->types_left_out, 1);
	pyx_watch_free(w);
}
END_TEST

/* ---- where the memory grows (pyx_watch_where) --------------------------- */

#define MIB (1024.0 * 1024.0)
#define W_N 24

/* Per sample k: each category's bytes; known: the categories placed. */
typedef void (*cat_fn)(int k, int64_t *cat, uint32_t *known);

static struct pyx_watch *where_series(cat_fn fn, int placed_from)
{
	struct pyx_watch *w;

	ck_assert_int_eq(pyx_watch_new(0, 0, &w), 0);
	for (int k = 0; k < W_N; k++) {
		struct pyx_watch_sample s = { .time = 1000.0 + k,
					      .rss_bytes = -1,
					      .arena_bytes = -1 };

		if (k >= placed_from)
			fn(k, s.cat, &s.cat_known);
		ck_assert_int_eq(pyx_watch_add_sample(w, &s, NULL, NULL, NULL, 0),
				 0);
	}
	return w;
}

static enum pyx_watch_place where_of(struct pyx_watch *w, bool types_leak,
				     struct pyx_watch_where *o)
{
	ck_assert_int_eq(pyx_watch_where(w, types_leak, o), 0);
	return o->place;
}

#define ck_place(w, types_leak, want)                                          \
	do {                                                                   \
		struct pyx_watch_where o_;                                     \
		enum pyx_watch_place got_ = where_of((w), (types_leak), &o_);  \
		ck_assert_msg(got_ == (want), "place %s, expected %s "        \
			      "(%zu placed; objects %s %.0f B/s, C %s %.0f "  \
			      "B/s)", pyx_watch_place_name(got_),              \
			      pyx_watch_place_name(want), o_.n,               \
			      pyx_watch_shape_name(                            \
				      o_.cat[PYX_WCAT_PYTHON_OBJECTS].shape),  \
			      o_.cat[PYX_WCAT_PYTHON_OBJECTS].trend.slope,     \
			      pyx_watch_shape_name(o_.c.shape),                \
			      o_.c.trend.slope);                               \
	} while (0)

static void put(int64_t *cat, uint32_t *known, enum pyx_watch_cat c, double v)
{
	cat[c] = (int64_t)v;
	*known |= 1u << c;
}

/* Every category at a steady level, with a little jitter. */
static void base(int k, int64_t *cat, uint32_t *known)
{
	double j = 20e3 * noise();

	(void)k;
	put(cat, known, PYX_WCAT_PYTHON_OBJECTS, 40 * MIB + j);
	put(cat, known, PYX_WCAT_PYMALLOC_ARENAS, 16 * MIB);
	put(cat, known, PYX_WCAT_PYMALLOC_USED, 12 * MIB + j);
	put(cat, known, PYX_WCAT_PYMALLOC_FREE, 1 * MIB);
	put(cat, known, PYX_WCAT_PYMALLOC_EMPTY, 3 * MIB);
	put(cat, known, PYX_WCAT_MALLOC_IN_USE, 50 * MIB + j);
	put(cat, known, PYX_WCAT_MALLOC_FREE, 2 * MIB);
	put(cat, known, PYX_WCAT_MALLOC_MMAPPED, 8 * MIB);
	put(cat, known, PYX_WCAT_STACKS, 256 * 1024);
	put(cat, known, PYX_WCAT_FILES, 30 * MIB);
	put(cat, known, PYX_WCAT_SHMEM, 0);
	put(cat, known, PYX_WCAT_UNEXPLAINED, 1 * MIB);
}

static void c_grows(int k, int64_t *cat, uint32_t *known)
{
	base(k, cat, known);
	cat[PYX_WCAT_MALLOC_IN_USE] += (int64_t)(k * 2 * MIB);
}

static void both_same_rate(int k, int64_t *cat, uint32_t *known)
{
	base(k, cat, known);
	cat[PYX_WCAT_PYTHON_OBJECTS] += (int64_t)(k * 2 * MIB);
	cat[PYX_WCAT_MALLOC_IN_USE] += (int64_t)(k * 2 * MIB);
}

static void c_three_times(int k, int64_t *cat, uint32_t *known)
{
	base(k, cat, known);
	cat[PYX_WCAT_PYTHON_OBJECTS] += (int64_t)(k * 1 * MIB);
	cat[PYX_WCAT_MALLOC_IN_USE] += (int64_t)(k * 3 * MIB);
}

static void arenas_grow(int k, int64_t *cat, uint32_t *known)
{
	base(k, cat, known);
	cat[PYX_WCAT_PYMALLOC_ARENAS] += (int64_t)(k * 1 * MIB);
	cat[PYX_WCAT_PYMALLOC_FREE] += (int64_t)(k * 1 * MIB);
}

static void arenas_and_used_grow(int k, int64_t *cat, uint32_t *known)
{
	arenas_grow(k, cat, known);
	cat[PYX_WCAT_PYMALLOC_USED] += (int64_t)(k * 1 * MIB);
}

START_TEST(where_c)
{
	struct pyx_watch *w = where_series(c_grows, 0);
	struct pyx_watch_where o;

	ck_place(w, false, PYX_PLACE_C);
	where_of(w, false, &o);
	ck_assert_uint_eq(o.n, W_N);
	ck_assert(o.known[PYX_WCAT_MALLOC_IN_USE]);
	ck_assert_int_eq(o.cat[PYX_WCAT_MALLOC_IN_USE].shape, PYX_SHAPE_LEAK);
	ck_assert_int_eq(o.cat[PYX_WCAT_PYTHON_OBJECTS].shape, PYX_SHAPE_FLAT);
	ck_assert_msg(fabs(o.c.trend.slope - 2 * MIB) < 0.05 * MIB,
		      "C grows %.0f B/s", o.c.trend.slope);
	/* A type's count that leaks makes the objects grow: Python's. */
	ck_place(w, true, PYX_PLACE_PYTHON_AND_C);
	pyx_watch_free(w);
}
END_TEST

START_TEST(where_python)
{
	struct pyx_watch *w = where_series(both_same_rate, 0);

	ck_place(w, false, PYX_PLACE_PYTHON);
	pyx_watch_free(w);
}
END_TEST

START_TEST(where_python_and_c)
{
	struct pyx_watch *w = where_series(c_three_times, 0);

	ck_place(w, false, PYX_PLACE_PYTHON_AND_C);
	pyx_watch_free(w);
}
END_TEST

START_TEST(where_pymalloc)
{
	struct pyx_watch *w = where_series(arenas_grow, 0);

	ck_place(w, false, PYX_PLACE_PYMALLOC);
	pyx_watch_free(w);
	/* Arenas that grow with their blocks in use are no fragmentation. */
	w = where_series(arenas_and_used_grow, 0);
	ck_place(w, false, PYX_PLACE_NONE);
	pyx_watch_free(w);
}
END_TEST

START_TEST(where_too_few)
{
	/* A C leak in every sample, but only the last 5 placed. */
	struct pyx_watch *w = where_series(c_grows, W_N - (PYX_WATCH_MIN_SAMPLES - 1));
	struct pyx_watch_where o;

	ck_place(w, false, PYX_PLACE_UNKNOWN);
	where_of(w, false, &o);
	ck_assert_uint_eq(o.n, PYX_WATCH_MIN_SAMPLES - 1);
	pyx_watch_free(w);
	/* One more placed: a verdict. */
	w = where_series(c_grows, W_N - PYX_WATCH_MIN_SAMPLES);
	ck_place(w, false, PYX_PLACE_C);
	pyx_watch_free(w);
}
END_TEST

START_TEST(where_not_placed)
{
	struct pyx_memory_report r;
	struct pyx_watch *w;
	struct pyx_watch_where o;
	double t[W_N], y[W_N];

	/* Categories null in every sample: no crash, unknown. */
	w = where_series(c_grows, W_N);
	ck_place(w, false, PYX_PLACE_UNKNOWN);
	ck_place(w, true, PYX_PLACE_UNKNOWN);
	where_of(w, false, &o);
	ck_assert_uint_eq(o.n, 0);
	for (int c = 0; c < PYX_WCAT_COUNT; c++) {
		ck_assert(!o.known[c]);
		ck_assert_uint_eq(pyx_watch_cat_series(w, (enum pyx_watch_cat)c,
						       t, y), 0);
	}
	ck_assert(!o.c_known);
	ck_assert_uint_eq(pyx_watch_cat_series(w, PYX_WCAT_COUNT, t, y), 0);
	/* A report that could read nothing places nothing, and none at all
	 * changes nothing. */
	memset(&r, 0, sizeof(r));
	r.rss_bytes = r.vmrss_bytes = -1;
	pyx_watch_set_memory(w, &r);
	pyx_watch_set_memory(w, NULL);
	ck_assert_uint_eq(w->samples[w->nsamples - 1].cat_known, 0);
	ck_place(w, false, PYX_PLACE_UNKNOWN);
	pyx_watch_free(w);
	/* An empty watch. */
	ck_assert_int_eq(pyx_watch_new(0, 0, &w), 0);
	pyx_watch_set_memory(w, &r);
	ck_place(w, false, PYX_PLACE_UNKNOWN);
	pyx_watch_free(w);
}
END_TEST

START_TEST(where_set_memory)
{
	struct pyx_memory_report r;
	struct pyx_watch *w;
	struct pyx_watch_sample s = { .time = 5, .pause_ms = 3,
				      .census_pause_ms = 3, .rss_bytes = -1,
				      .arena_bytes = -1 };
	const struct pyx_watch_sample *x;

	ck_assert_int_eq(pyx_watch_new(0, 0, &w), 0);
	ck_assert_int_eq(pyx_watch_add_sample(w, &s, NULL, NULL, NULL, 0), 0);
	memset(&r, 0, sizeof(r));
	r.pause_ms = 5;         /* the census's 3 and 2 for the allocators */
	r.census_pause_ms = 3;
	r.objects_available = true;
	r.objects_bytes = 1000;
	r.malloc.available = true;
	r.malloc.in_use_bytes = 7000;
	r.malloc.glibc_layout = false; /* no mmapped figure */
	r.maps_available = true;
	r.unexplained_bytes = -5; /* never below 0 */
	r.stack_rss = 4096;
	pyx_watch_set_memory(w, &r);
	x = &w->samples[0];
	ck_assert(fabs(x->pause_ms - 5) < 1e-9);
	ck_assert(fabs(x->census_pause_ms - 3) < 1e-9);
	ck_assert(x->cat_known & (1u << PYX_WCAT_PYTHON_OBJECTS));
	ck_assert_int_eq(x->cat[PYX_WCAT_PYTHON_OBJECTS], 1000);
	ck_assert(x->cat_known & (1u << PYX_WCAT_MALLOC_IN_USE));
	ck_assert_int_eq(x->cat[PYX_WCAT_MALLOC_IN_USE], 7000);
	ck_assert(!(x->cat_known & (1u << PYX_WCAT_MALLOC_MMAPPED)));
	ck_assert(!(x->cat_known & (1u << PYX_WCAT_PYMALLOC_ARENAS)));
	ck_assert_int_eq(x->cat[PYX_WCAT_UNEXPLAINED], 0);
	ck_assert_int_eq(x->cat[PYX_WCAT_STACKS], 4096);
	pyx_watch_free(w);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("watch");
	TCase *tc = tcase_create("classify");
	TCase *ts = tcase_create("series");
	TCase *tw = tcase_create("where");

	tcase_add_test(tc, shape_flat);
	tcase_add_test(tc, shape_noise);
	tcase_add_test(tc, shape_leak);
	tcase_add_test(tc, shape_leak_staircase);
	tcase_add_test(tc, shape_leak_with_outlier);
	tcase_add_test(tc, shape_sawtooth);
	tcase_add_test(tc, shape_sawtooth_sparse);
	tcase_add_test(tc, shape_sawtooth_loaded);
	tcase_add_test(tc, shape_noise_seeds);
	tcase_add_test(tc, shape_early_growth);
	tcase_add_test(tc, shape_surge);
	tcase_add_test(tc, too_few);
	tcase_add_test(tc, min_growth);
	tcase_add_test(ts, series_and_growth);
	tcase_add_test(ts, type_bound);
	tcase_add_test(tw, where_c);
	tcase_add_test(tw, where_python);
	tcase_add_test(tw, where_python_and_c);
	tcase_add_test(tw, where_pymalloc);
	tcase_add_test(tw, where_too_few);
	tcase_add_test(tw, where_not_placed);
	tcase_add_test(tw, where_set_memory);
	suite_add_tcase(s, tc);
	suite_add_tcase(s, ts);
	suite_add_tcase(s, tw);
	return pyx_unit_run(s);
}
