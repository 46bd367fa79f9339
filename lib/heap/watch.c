/* The watch's series, the curve classifier, per-type growth and leak
 * verdicts (pure functions of the samples), and the baseline of objects
 * that tells the ones born during a watch. */
#include <math.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>

#include "pyxray/census.h"
#include "pyxray/error.h"
#include "pyxray/heap.h"
#include "pyxray/memory.h"
#include "pyxray/memory_report.h"
#include "pyxray/target.h"
#include "pyxray/watch.h"
#include "referents.h"

/* Theil-Sen and Kendall's tau compare every pair: over at most this many
 * points, picked evenly from a longer series. */
#define PAIR_POINTS 128

/* The leak test's thresholds (docs/watch.md says why these). */
#define LEAK_MIN_TAU 0.6
#define LEAK_MIN_R2 0.7
#define LEAK_NOISE_FACTOR 4.0
#define LEAK_THIRD_SHARE 0.25  /* each third above the one before by a
				  quarter of its share of the growth */
#define LEAK_END_SHARE 0.5     /* the end above the start by half the
				  fitted growth at least */
#define FLAT_NOISE_FACTOR 6.0
#define SAW_BIG_STEP 0.6
#define SAW_STRUCT_NOISE 6.0
#define SAW_NOISE_FACTOR 10.0
#define SAW_MIN_LAG1 0.5
#define BAND_LOW 0.4
#define BAND_HIGH 0.6

const char *pyx_watch_shape_name(enum pyx_watch_shape s)
{
	switch (s) {
	case PYX_SHAPE_FLAT:
		return "flat";
	case PYX_SHAPE_SAWTOOTH:
		return "sawtooth";
	case PYX_SHAPE_EARLY_GROWTH:
		return "early-growth";
	case PYX_SHAPE_SURGE:
		return "surge";
	case PYX_SHAPE_LEAK:
		return "leak";
	case PYX_SHAPE_IRREGULAR:
		return "irregular";
	default:
		return "unknown";
	}
}

/* ---- robust statistics ------------------------------------------------- */

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* The median of v[0..n) (reordered); 0 for n == 0. */
static double median_inplace(double *v, size_t n)
{
	if (!n)
		return 0;
	qsort(v, n, sizeof(*v), cmp_double);
	return n & 1 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* The median of y[from..to) without touching y.  tmp holds to - from. */
static double median_of(const double *y, size_t from, size_t to, double *tmp)
{
	memcpy(tmp, y + from, (to - from) * sizeof(*tmp));
	return median_inplace(tmp, to - from);
}

/* The indices of at most PAIR_POINTS points spread evenly over [from, to). */
static size_t pick(size_t from, size_t to, size_t *idx)
{
	size_t n = to - from, m = n < PAIR_POINTS ? n : PAIR_POINTS;

	for (size_t k = 0; k < m; k++)
		idx[k] = from + (m > 1 ? k * (n - 1) / (m - 1) : 0);
	return m;
}

/* Theil-Sen slope over [from, to) and Kendall's tau-a (NULL: not wanted).
 * tmp holds PAIR_POINTS^2 / 2 doubles. */
static double theil_sen(const double *t, const double *y, size_t from,
			size_t to, double *tau, double *tmp)
{
	size_t idx[PAIR_POINTS], m = pick(from, to, idx), np = 0;
	long conc = 0;

	for (size_t a = 0; a < m; a++)
		for (size_t b = a + 1; b < m; b++) {
			double dt = t[idx[b]] - t[idx[a]];
			double dy = y[idx[b]] - y[idx[a]];

			conc += (dy > 0) - (dy < 0);
			if (dt > 0)
				tmp[np++] = dy / dt;
		}
	if (tau)
		*tau = m > 1 ? (double)conc / ((double)m * (double)(m - 1) / 2) : 0;
	return median_inplace(tmp, np);
}

static double *scratch(size_t n)
{
	size_t pairs = (size_t)PAIR_POINTS * PAIR_POINTS / 2;

	return malloc((n > pairs ? n : pairs) * sizeof(double));
}

void pyx_watch_trend(const double *t, const double *y, size_t n,
		     double min_growth, struct pyx_watch_trend *o)
{
	double *tmp, span, my, spread, b;
	size_t k;

	memset(o, 0, sizeof(*o));
	o->why = "too few samples";
	if (n == 0)
		return;
	o->min = o->max = y[0];
	for (size_t i = 0; i < n; i++) {
		o->min = fmin(o->min, y[i]);
		o->max = fmax(o->max, y[i]);
	}
	o->first = y[0];
	o->last = y[n - 1];
	if (n < 2 || !(tmp = scratch(n)))
		return;
	span = t[n - 1] - t[0];
	o->slope = theil_sen(t, y, 0, n, &o->tau, tmp);
	o->growth = o->slope * span;
	/* The intercept through the medians, then the residuals' scale. */
	for (size_t i = 0; i < n; i++)
		tmp[i] = y[i] - o->slope * t[i];
	b = median_inplace(tmp, n);
	for (size_t i = 0; i < n; i++)
		tmp[i] = fabs(y[i] - o->slope * t[i] - b);
	o->noise = 1.4826 * median_inplace(tmp, n);
	/* R^2, robust: 1 - (residual scale / spread of y)^2, both as MADs,
	 * so that one odd sample (a collection, a torn read) does not decide
	 * it.  A falling line has none. */
	for (size_t i = 0; i < n; i++)
		tmp[i] = y[i];
	my = median_inplace(tmp, n);
	for (size_t i = 0; i < n; i++)
		tmp[i] = fabs(y[i] - my);
	spread = 1.4826 * median_inplace(tmp, n);
	if (spread > 0 && o->slope > 0)
		o->r2 = 1 - (o->noise / spread) * (o->noise / spread);
	else if (o->slope > 0)
		o->r2 = o->noise > 0 ? 0 : 1;
	k = n >= 3 ? 3 : n;
	o->last = median_of(y, n - k, n, tmp);
	o->first = median_of(y, 0, k, tmp);
	for (int i = 0; i < 3; i++)
		o->thirds[i] = median_of(y, n * (size_t)i / 3,
					 n * (size_t)(i + 1) / 3, tmp);
	free(tmp);

	if (n < PYX_WATCH_MIN_SAMPLES || !(span > 0))
		return;
	if (!(o->slope > 0) || !(o->growth >= min_growth) || !(o->growth > 0)) {
		o->why = "no growth";
		return;
	}
	if (o->growth < LEAK_NOISE_FACTOR * o->noise) {
		o->why = "growth within the noise";
		return;
	}
	if (o->tau < LEAK_MIN_TAU || o->r2 < LEAK_MIN_R2) {
		o->why = "not steady (rises and falls)";
		return;
	}
	if (o->thirds[1] - o->thirds[0] < LEAK_THIRD_SHARE * o->growth / 3 ||
	    o->thirds[2] - o->thirds[1] < LEAK_THIRD_SHARE * o->growth / 3) {
		o->why = "stopped growing (early growth)";
		return;
	}
	if (o->last - o->first < LEAK_END_SHARE * o->growth) {
		o->why = "returned toward its baseline";
		return;
	}
	o->leak = true;
	o->why = NULL;
}

/* A spike of one sample (a burst of temporary objects that one census
 * happened to see) is no shape: a sample beyond both its neighbours by
 * more than twice their difference takes their mean.  Ramps, steps,
 * plateaus and the teeth of a sawtooth pass unchanged. */
static void despike(const double *y, size_t n, double *out)
{
	for (size_t i = 0; i < n; i++) {
		double a, c, d;

		out[i] = y[i];
		if (i == 0 || i + 1 == n)
			continue;
		a = y[i - 1];
		c = y[i + 1];
		d = fabs(c - a);
		if (y[i] - fmax(a, c) > 2 * d || fmin(a, c) - y[i] > 2 * d)
			out[i] = (a + c) / 2;
	}
}

/* Steps one way that take most of the range at once, and none (or few)
 * the other way: a cache emptied (or filled) at once and refilled (or
 * drained) step by step.  Noise has as many big steps up as down. */
static bool one_sided(const double *y, size_t n, double amp)
{
	size_t up = 0, down = 0;

	for (size_t i = 1; i < n; i++) {
		double d = y[i] - y[i - 1];

		up += d >= SAW_BIG_STEP * amp;
		down += d <= -SAW_BIG_STEP * amp;
	}
	return (down >= 2 && up * 4 <= down && (up == 0 || down >= 8)) ||
	       (up >= 2 && down * 4 <= up && (down == 0 || up >= 8));
}

/* Lag-1 autocorrelation: about 0 for noise. */
static double lag1(const double *y, size_t n)
{
	double m = 0, num = 0, den = 0;

	for (size_t i = 0; i < n; i++)
		m += y[i];
	m /= (double)n;
	for (size_t i = 0; i < n; i++) {
		den += (y[i] - m) * (y[i] - m);
		if (i)
			num += (y[i] - m) * (y[i - 1] - m);
	}
	return den > 0 ? num / den : 0;
}

void pyx_watch_classify(const double *t, const double *y, size_t n,
			double flat_rel, struct pyx_watch_curve *o)
{
	double *tmp = NULL, *ys = NULL, lo, hi, amp, half;
	int state = 0; /* -1 low, 1 high, 0 not yet known */
	size_t k;

	memset(o, 0, sizeof(*o));
	o->shape = PYX_SHAPE_UNKNOWN;
	if (flat_rel <= 0)
		flat_rel = 0.02;
	if (n == 0 || !(tmp = scratch(n)) || !(ys = malloc(n * sizeof(*ys))))
		goto out;
	despike(y, n, ys);
	o->level = median_of(ys, 0, n, tmp);
	lo = hi = ys[0];
	for (size_t i = 1; i < n; i++) {
		lo = fmin(lo, ys[i]);
		hi = fmax(hi, ys[i]);
		/* Noise from the raw samples: the filter smooths it. */
		tmp[i - 1] = y[i] - y[i - 1];
	}
	amp = hi - lo;
	o->amplitude = amp;
	if (n > 2) {
		/* The scale of the differences about their median: a ramp's
		 * steady steps are no noise, jitter is. */
		double md = median_inplace(tmp, n - 1);

		for (size_t i = 0; i + 1 < n; i++)
			tmp[i] = fabs(tmp[i] - md);
		o->noise = 1.4826 * median_inplace(tmp, n - 1) / sqrt(2.0);
	}
	pyx_watch_trend(t, y, n, flat_rel * fabs(o->level), &o->trend);
	if (n < PYX_WATCH_MIN_SAMPLES)
		goto out;
	k = 3;
	o->start = amp > 0 ? (median_of(ys, 0, k, tmp) - lo) / amp : 0;
	o->end = amp > 0 ? (median_of(ys, n - k, n, tmp) - lo) / amp : 0;
	for (size_t i = 0; i < n && amp > 0; i++) {
		double r = (ys[i] - lo) / amp;

		if (r >= BAND_HIGH) {
			if (state == -1)
				o->rises++;
			state = 1;
		} else if (r <= BAND_LOW) {
			if (state == 1)
				o->falls++;
			state = -1;
		}
	}
	if (!(amp > flat_rel * fabs(o->level))) {
		o->shape = PYX_SHAPE_FLAT;
		goto out;
	}
	if (o->trend.leak) {
		o->shape = PYX_SHAPE_LEAK;
		goto out;
	}
	/* Back and forth across the band, with a structure noise lacks: big
	 * steps one way only (a cache emptied at once), or neighbours alike
	 * (a slow fill and drain), above the sample-to-sample noise; or
	 * swings far beyond that noise. */
	if ((o->falls >= 2 || o->rises + o->falls >= 3) &&
	    (((one_sided(y, n, amp) || lag1(y, n) >= SAW_MIN_LAG1) &&
	      amp > SAW_STRUCT_NOISE * o->noise) ||
	     amp > SAW_NOISE_FACTOR * o->noise)) {
		o->shape = PYX_SHAPE_SAWTOOTH;
		goto out;
	}
	if (amp <= FLAT_NOISE_FACTOR * o->noise) {
		o->shape = PYX_SHAPE_FLAT; /* jitter, no structure */
		goto out;
	}
	if (o->falls == 1 && o->end <= BAND_LOW && o->start <= BAND_LOW) {
		o->shape = PYX_SHAPE_SURGE;
		goto out;
	}
	if (o->falls == 0 && o->start <= BAND_LOW && o->end >= BAND_HIGH) {
		/* Risen: early growth if the second half stays near the top
		 * (the rise is over), else an unsteady climb. */
		double lo2 = hi;

		half = t[0] + (t[n - 1] - t[0]) / 2;
		for (size_t i = 0; i < n; i++)
			if (t[i] >= half)
				lo2 = fmin(lo2, ys[i]);
		if (lo2 >= lo + (1 - 0.25) * amp) {
			o->shape = PYX_SHAPE_EARLY_GROWTH;
			goto out;
		}
	}
	o->shape = PYX_SHAPE_IRREGULAR;
out:
	free(tmp);
	free(ys);
}

/* ---- the series -------------------------------------------------------- */

int pyx_watch_new(size_t max_samples, size_t max_types, struct pyx_watch **out)
{
	struct pyx_watch *w = calloc(1, sizeof(*w));

	*out = NULL;
	if (!w)
		return -PYX_E_NOMEM;
	w->max_samples = max_samples ? max_samples : 512;
	if (w->max_samples < 16)
		w->max_samples = 16;
	w->max_types = max_types ? max_types : 20000;
	w->samples = calloc(w->max_samples, sizeof(*w->samples));
	if (!w->samples) {
		free(w);
		return -PYX_E_NOMEM;
	}
	*out = w;
	return 0;
}

void pyx_watch_free(struct pyx_watch *w)
{
	if (!w)
		return;
	for (size_t i = 0; i < w->ntypes; i++) {
		free(w->types[i].name);
		free(w->types[i].count);
		free(w->types[i].bytes);
	}
	free(w->types);
	free(w->by_name);
	free(w->samples);
	free(w);
}

/* The index of the type called name, added if new; -1 past max_types, or
 * a negative error. */
static long type_index(struct pyx_watch *w, const char *name)
{
	size_t lo = 0, hi = w->ntypes, i;
	struct pyx_watch_type *t;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int c = strcmp(w->types[w->by_name[mid]].name, name);

		if (c == 0)
			return (long)w->by_name[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (w->ntypes >= w->max_types) {
		w->types_left_out++;
		return -1;
	}
	if (w->ntypes == w->captypes) {
		size_t cap = w->captypes ? w->captypes * 2 : 256;
		struct pyx_watch_type *nt = realloc(w->types, cap * sizeof(*nt));
		size_t *nb;

		if (!nt)
			return -PYX_E_NOMEM;
		w->types = nt;
		nb = realloc(w->by_name, cap * sizeof(*nb));
		if (!nb)
			return -PYX_E_NOMEM;
		w->by_name = nb;
		w->captypes = cap;
	}
	i = w->ntypes;
	t = &w->types[i];
	t->name = strdup(name);
	t->count = calloc(w->max_samples, sizeof(*t->count));
	t->bytes = calloc(w->max_samples, sizeof(*t->bytes));
	if (!t->name || !t->count || !t->bytes) {
		free(t->name);
		free(t->count);
		free(t->bytes);
		return -PYX_E_NOMEM;
	}
	memmove(w->by_name + lo + 1, w->by_name + lo,
		(w->ntypes - lo) * sizeof(*w->by_name));
	w->by_name[lo] = i;
	w->ntypes++;
	return (long)i;
}

/* Full: keep samples 0, 2, 4...: the window at half the resolution. */
static void halve(struct pyx_watch *w)
{
	size_t n = (w->nsamples + 1) / 2;

	for (size_t k = 0; k < n; k++)
		w->samples[k] = w->samples[2 * k];
	for (size_t i = 0; i < w->ntypes; i++)
		for (size_t k = 0; k < n; k++) {
			w->types[i].count[k] = w->types[i].count[2 * k];
			w->types[i].bytes[k] = w->types[i].bytes[2 * k];
		}
	w->nsamples = n;
	w->halvings++;
}

int pyx_watch_add_sample(struct pyx_watch *w, const struct pyx_watch_sample *s,
			 const char *const *names, const uint64_t *counts,
			 const uint64_t *bytes, size_t n)
{
	size_t k;

	if (w->nsamples && s->time < w->samples[w->nsamples - 1].time)
		return pyx_err_set(PYX_E_USAGE, "a sample older than the last");
	if (w->nsamples == w->max_samples)
		halve(w);
	k = w->nsamples;
	for (size_t i = 0; i < w->ntypes; i++) {
		w->types[i].count[k] = 0;
		w->types[i].bytes[k] = 0;
	}
	for (size_t i = 0; i < n; i++) {
		long ti = type_index(w, names[i] ? names[i] : "?");

		if (ti == -1)
			continue;
		if (ti < 0)
			return (int)ti;
		w->types[ti].count[k] += counts[i];
		w->types[ti].bytes[k] += bytes[i];
	}
	w->samples[k] = *s;
	w->samples[k].t = s->time - (k ? w->samples[0].time : s->time);
	w->nsamples++;
	w->taken++;
	return 0;
}

int pyx_watch_add(struct pyx_watch *w, const struct pyx_census *c)
{
	struct pyx_watch_sample s = {
		.time = c->time,
		.pause_ms = c->pause_ms,
		.census_pause_ms = c->pause_ms,
		.walk_ms = c->walk_ms,
		.rss_bytes = c->rss_bytes,
		.arena_bytes = c->arena_bytes,
		.objects = c->objects,
		.bytes = c->bytes,
		.gc_objects = c->gc_objects,
		.gc_bytes = c->gc_bytes,
		.partial = c->partial,
	};
	const char **names = calloc(c->ntypes + 1, sizeof(*names));
	uint64_t *counts = calloc(c->ntypes + 1, sizeof(*counts));
	uint64_t *bytes = calloc(c->ntypes + 1, sizeof(*bytes));
	int err = -PYX_E_NOMEM;

	if (names && counts && bytes) {
		for (size_t i = 0; i < c->ntypes; i++) {
			names[i] = c->types[i].name;
			counts[i] = c->types[i].count;
			bytes[i] = c->types[i].bytes;
		}
		err = pyx_watch_add_sample(w, &s, names, counts, bytes,
					   c->ntypes);
	}
	free(names);
	free(counts);
	free(bytes);
	return err;
}

size_t pyx_watch_series(const struct pyx_watch *w, enum pyx_watch_metric m,
			double *t, double *y)
{
	size_t n = 0;

	for (size_t k = 0; k < w->nsamples; k++) {
		const struct pyx_watch_sample *s = &w->samples[k];
		double v;

		switch (m) {
		case PYX_WATCH_RSS_BYTES:
			if (s->rss_bytes < 0)
				continue;
			v = (double)s->rss_bytes;
			break;
		case PYX_WATCH_ARENA_BYTES:
			if (s->arena_bytes < 0)
				continue;
			v = (double)s->arena_bytes;
			break;
		case PYX_WATCH_OBJECTS:
			v = (double)s->objects;
			break;
		default:
			v = (double)s->bytes;
		}
		t[n] = s->t;
		y[n++] = v;
	}
	return n;
}

/* ---- memory by category ------------------------------------------------ */

static const struct {
	const char *key, *label;
} cats[PYX_WCAT_COUNT] = {
	[PYX_WCAT_PYTHON_OBJECTS] = { "python_objects", "Python objects" },
	[PYX_WCAT_PYMALLOC_ARENAS] = { "pymalloc_arenas", "pymalloc arenas" },
	[PYX_WCAT_PYMALLOC_USED] = { "pymalloc_used", "pymalloc blocks in use" },
	[PYX_WCAT_PYMALLOC_FREE] = { "pymalloc_free",
				     "pymalloc free in used pools" },
	[PYX_WCAT_PYMALLOC_EMPTY] = { "pymalloc_empty_pools",
				      "pymalloc empty pools" },
	[PYX_WCAT_MALLOC_IN_USE] = { "malloc_in_use", "glibc malloc in use" },
	[PYX_WCAT_MALLOC_FREE] = { "malloc_free", "glibc malloc free" },
	[PYX_WCAT_MALLOC_MMAPPED] = { "malloc_mmapped",
				      "glibc malloc mmapped blocks" },
	[PYX_WCAT_STACKS] = { "thread_stacks", "thread stacks" },
	[PYX_WCAT_FILES] = { "mapped_files", "mapped files" },
	[PYX_WCAT_SHMEM] = { "shared_memory", "shared memory" },
	[PYX_WCAT_UNEXPLAINED] = { "unexplained", "unexplained" },
};

const char *pyx_watch_cat_key(enum pyx_watch_cat c)
{
	return (unsigned)c < PYX_WCAT_COUNT ? cats[c].key : "?";
}

const char *pyx_watch_cat_label(enum pyx_watch_cat c)
{
	return (unsigned)c < PYX_WCAT_COUNT ? cats[c].label : "?";
}

const char *pyx_watch_place_name(enum pyx_watch_place p)
{
	switch (p) {
	case PYX_PLACE_NONE:
		return "none";
	case PYX_PLACE_C:
		return "c";
	case PYX_PLACE_PYTHON:
		return "python";
	case PYX_PLACE_PYTHON_AND_C:
		return "python-and-c";
	case PYX_PLACE_PYMALLOC:
		return "pymalloc";
	case PYX_PLACE_STACKS:
		return "stacks";
	case PYX_PLACE_FILES:
		return "files";
	case PYX_PLACE_SHMEM:
		return "shared-memory";
	case PYX_PLACE_UNEXPLAINED:
		return "unexplained";
	default:
		return "unknown";
	}
}

static void set_cat(struct pyx_watch_sample *s, enum pyx_watch_cat c,
		    uint64_t v)
{
	s->cat[c] = v > INT64_MAX ? INT64_MAX : (int64_t)v;
	s->cat_known |= 1u << c;
}

void pyx_watch_set_memory(struct pyx_watch *w,
			  const struct pyx_memory_report *r)
{
	struct pyx_watch_sample *s;

	if (!w->nsamples || !r)
		return;
	s = &w->samples[w->nsamples - 1];
	if (r->pause_ms > r->census_pause_ms)
		s->pause_ms += r->pause_ms - r->census_pause_ms;
	if (r->objects_available)
		set_cat(s, PYX_WCAT_PYTHON_OBJECTS, r->objects_bytes);
	if (r->pymalloc.available) {
		set_cat(s, PYX_WCAT_PYMALLOC_ARENAS, r->pymalloc.arena_bytes);
		set_cat(s, PYX_WCAT_PYMALLOC_USED, r->pymalloc.used_bytes);
		set_cat(s, PYX_WCAT_PYMALLOC_FREE, r->pymalloc.free_bytes);
		set_cat(s, PYX_WCAT_PYMALLOC_EMPTY, r->pymalloc.empty_pool_bytes);
	}
	if (r->malloc.available) {
		set_cat(s, PYX_WCAT_MALLOC_IN_USE, r->malloc.in_use_bytes);
		set_cat(s, PYX_WCAT_MALLOC_FREE, r->malloc.free_bytes);
		/* Without mp_'s layout there are no mmapped figures. */
		if (r->malloc.glibc_layout)
			set_cat(s, PYX_WCAT_MALLOC_MMAPPED,
				r->malloc.mmapped_bytes);
	}
	if (r->maps_available) {
		set_cat(s, PYX_WCAT_STACKS, r->stack_rss);
		set_cat(s, PYX_WCAT_FILES, r->file_rss);
		set_cat(s, PYX_WCAT_SHMEM, r->shmem_rss);
		set_cat(s, PYX_WCAT_UNEXPLAINED, r->unexplained_bytes > 0 ?
			(uint64_t)r->unexplained_bytes : 0);
	}
}

size_t pyx_watch_cat_series(const struct pyx_watch *w, enum pyx_watch_cat c,
			    double *t, double *y)
{
	size_t n = 0;

	if ((unsigned)c >= PYX_WCAT_COUNT)
		return 0;
	for (size_t k = 0; k < w->nsamples; k++) {
		const struct pyx_watch_sample *s = &w->samples[k];

		if (!(s->cat_known & (1u << c)))
			continue;
		t[n] = s->t;
		y[n++] = (double)s->cat[c];
	}
	return n;
}

/* C's allocations together: in use + mmapped (where mmapped is known). */
static size_t c_series(const struct pyx_watch *w, double *t, double *y)
{
	const uint32_t in_use = 1u << PYX_WCAT_MALLOC_IN_USE;
	const uint32_t mm = 1u << PYX_WCAT_MALLOC_MMAPPED;
	bool with_mm = true;
	size_t n = 0;

	/* All with the mmapped blocks or all without: a sum that counts
	 * them in some samples only would jump. */
	for (size_t k = 0; k < w->nsamples; k++)
		if ((w->samples[k].cat_known & in_use) &&
		    !(w->samples[k].cat_known & mm))
			with_mm = false;
	for (size_t k = 0; k < w->nsamples; k++) {
		const struct pyx_watch_sample *s = &w->samples[k];

		if (!(s->cat_known & in_use))
			continue;
		t[n] = s->t;
		y[n++] = (double)s->cat[PYX_WCAT_MALLOC_IN_USE] +
			 (with_mm ? (double)s->cat[PYX_WCAT_MALLOC_MMAPPED] : 0);
	}
	return n;
}

/* A category that moves by less than CAT_FLAT_BYTES over the window is
 * flat: a few pages of a small category (pymalloc's free blocks, a
 * stack) come and go, and 2% of 200 KiB is no shape. */
#define CAT_FLAT_BYTES (64.0 * 1024)

static double cat_flat(const double *y, size_t n)
{
	double *tmp = malloc(n * sizeof(*tmp)), level;

	if (!tmp)
		return 0;
	level = fabs(median_of(y, 0, n, tmp));
	free(tmp);
	return level > 0 && CAT_FLAT_BYTES / level > 0.02 ?
	       CAT_FLAT_BYTES / level : 0.02;
}

static bool cat_leaks(const struct pyx_watch_where *o, enum pyx_watch_cat c)
{
	return o->known[c] && o->cat[c].shape == PYX_SHAPE_LEAK;
}

int pyx_watch_where(const struct pyx_watch *w, bool types_leak,
		    struct pyx_watch_where *o)
{
	size_t n = w->nsamples;
	double *t = malloc((n ? n : 1) * sizeof(*t));
	double *y = malloc((n ? n : 1) * sizeof(*y));
	bool py_grows, c_leak;
	double py_rate, c_rate;
	size_t m;

	memset(o, 0, sizeof(*o));
	o->place = PYX_PLACE_UNKNOWN;
	if (!t || !y) {
		free(t);
		free(y);
		return -PYX_E_NOMEM;
	}
	for (size_t k = 0; k < n; k++)
		o->n += w->samples[k].cat_known != 0;
	for (int c = 0; c < PYX_WCAT_COUNT; c++) {
		m = pyx_watch_cat_series(w, (enum pyx_watch_cat)c, t, y);
		if (m < 2)
			continue;
		o->known[c] = true;
		pyx_watch_classify(t, y, m, cat_flat(y, m), &o->cat[c]);
	}
	m = c_series(w, t, y);
	if (m >= 2) {
		o->c_known = true;
		pyx_watch_classify(t, y, m, cat_flat(y, m), &o->c);
	}
	free(t);
	free(y);
	if (o->n < PYX_WATCH_MIN_SAMPLES)
		return 0;
	/* The Python objects grow when their bytes do, or a type's count
	 * does (a leak of small objects inside a heap of big ones). */
	py_grows = cat_leaks(o, PYX_WCAT_PYTHON_OBJECTS) || types_leak;
	py_rate = o->known[PYX_WCAT_PYTHON_OBJECTS] ?
		  fmax(o->cat[PYX_WCAT_PYTHON_OBJECTS].trend.slope, 0) : 0;
	c_leak = (o->c_known && o->c.shape == PYX_SHAPE_LEAK) ||
		 cat_leaks(o, PYX_WCAT_MALLOC_IN_USE) ||
		 cat_leaks(o, PYX_WCAT_MALLOC_MMAPPED);
	c_rate = o->c_known ? o->c.trend.slope : 0;
	if (c_leak && !py_grows) {
		o->place = PYX_PLACE_C;
	} else if (py_grows) {
		/* Objects bigger than 512 bytes (and a list's items) live in
		 * malloc's chunks: malloc growing with them is theirs, unless
		 * it grows much faster than they do. */
		o->place = c_leak && c_rate > 2 * py_rate ?
			   PYX_PLACE_PYTHON_AND_C : PYX_PLACE_PYTHON;
	} else if (cat_leaks(o, PYX_WCAT_PYMALLOC_ARENAS) &&
		   !cat_leaks(o, PYX_WCAT_PYMALLOC_USED)) {
		o->place = PYX_PLACE_PYMALLOC;
	} else if (cat_leaks(o, PYX_WCAT_STACKS)) {
		o->place = PYX_PLACE_STACKS;
	} else if (cat_leaks(o, PYX_WCAT_FILES)) {
		o->place = PYX_PLACE_FILES;
	} else if (cat_leaks(o, PYX_WCAT_SHMEM)) {
		o->place = PYX_PLACE_SHMEM;
	} else if (cat_leaks(o, PYX_WCAT_UNEXPLAINED)) {
		o->place = PYX_PLACE_UNEXPLAINED;
	} else {
		o->place = PYX_PLACE_NONE;
	}
	return 0;
}

static int cmp_growth(const void *a, const void *b)
{
	const struct pyx_watch_growth *x = a, *y = b;

	if (x->leak != y->leak)
		return x->leak ? -1 : 1;
	if (x->bytes_per_s != y->bytes_per_s)
		return x->bytes_per_s > y->bytes_per_s ? -1 : 1;
	if (x->count_per_s != y->count_per_s)
		return x->count_per_s > y->count_per_s ? -1 : 1;
	return strcmp(x->name, y->name);
}

int pyx_watch_growth(const struct pyx_watch *w, double min_growth,
		     struct pyx_watch_growth **out, size_t *nout)
{
	size_t n = w->nsamples, ng = 0;
	double *t = malloc((n ? n : 1) * sizeof(*t));
	double *y = malloc((n ? n : 1) * sizeof(*y));
	double *tmp = scratch(0);
	struct pyx_watch_growth *g = calloc(w->ntypes ? w->ntypes : 1, sizeof(*g));

	*out = NULL;
	*nout = 0;
	if (!t || !y || !g || !tmp) {
		free(t);
		free(y);
		free(tmp);
		free(g);
		return -PYX_E_NOMEM;
	}
	if (min_growth <= 0)
		min_growth = 10;
	for (size_t k = 0; k < n; k++)
		t[k] = w->samples[k].t;
	for (size_t i = 0; i < w->ntypes && n; i++) {
		const struct pyx_watch_type *ty = &w->types[i];
		struct pyx_watch_growth *r = &g[ng];
		bool changed = false;

		for (size_t k = 1; k < n && !changed; k++)
			changed = ty->count[k] != ty->count[0] ||
				  ty->bytes[k] != ty->bytes[0];
		if (!changed)
			continue;
		r->type = i;
		r->name = ty->name;
		r->first = ty->count[0];
		r->last = ty->count[n - 1];
		r->first_bytes = ty->bytes[0];
		r->last_bytes = ty->bytes[n - 1];
		for (size_t k = 0; k < n; k++)
			y[k] = (double)ty->bytes[k];
		r->bytes_per_s = n > 1 ? theil_sen(t, y, 0, n, NULL, tmp) : 0;
		for (size_t k = 0; k < n; k++)
			y[k] = (double)ty->count[k];
		pyx_watch_trend(t, y, n, min_growth, &r->trend);
		r->count_per_s = r->trend.slope;
		r->leak = r->trend.leak;
		ng++;
	}
	free(t);
	free(y);
	free(tmp);
	qsort(g, ng, sizeof(*g), cmp_growth);
	*out = g;
	*nout = ng;
	return 0;
}

/* ---- the baseline and the newborn -------------------------------------- */

struct obj_rec {
	uint64_t addr, tp;
};

struct pyx_watch_baseline {
	struct obj_rec *v;
	size_t n, cap;
};

uint64_t pyx_watch_baseline_count(const struct pyx_watch_baseline *b)
{
	return b ? b->n : 0;
}

void pyx_watch_baseline_free(struct pyx_watch_baseline *b)
{
	if (!b)
		return;
	free(b->v);
	free(b);
}

static int cmp_rec(const void *a, const void *b)
{
	const struct obj_rec *x = a, *y = b;

	if (x->addr != y->addr)
		return x->addr < y->addr ? -1 : 1;
	return (x->tp > y->tp) - (x->tp < y->tp);
}

static bool base_has(const struct pyx_watch_baseline *b, uint64_t addr,
		     uint64_t tp)
{
	struct obj_rec key = { addr, tp };

	return b && b->n && bsearch(&key, b->v, b->n, sizeof(key), cmp_rec);
}

struct base_walk {
	struct pyx_python *py;
	struct pyx_watch_baseline *b;
};

static int on_base(void *ctx, pyx_addr_t obj, const struct pyx_heap_where *where)
{
	struct base_walk *bw = ctx;
	struct pyx_watch_baseline *b = bw->b;
	uint64_t tp;

	(void)where;
	/* A damaged object is no baseline: it then reads as newborn only if
	 * it becomes readable, which a census counts as damage anyway. */
	if (pyx_heap_obj_type(bw->py, obj, &tp)) {
		pyx_err_clear();
		return 0;
	}
	if (b->n == b->cap) {
		size_t cap = b->cap ? b->cap * 2 : 1u << 14;
		struct obj_rec *v = realloc(b->v, cap * sizeof(*v));

		if (!v)
			return -PYX_E_NOMEM;
		b->v = v;
		b->cap = cap;
	}
	b->v[b->n].addr = obj;
	b->v[b->n++].tp = tp;
	return 0;
}

/* Stop, copy, resume; the pause in *pause_ms. */
static int capture(struct pyx_python *py, const struct pyx_heap_capture_opts *o,
		   struct pyx_heap_capture_info *ci, double *pause_ms)
{
	uint64_t p0 = pyx_target_pause_ns(py->tgt);
	struct pyx_heap_capture_opts none = { 0 };
	int err = pyx_heap_capture(py, o ? o : &none, ci);

	if (pause_ms)
		*pause_ms = (double)(pyx_target_pause_ns(py->tgt) - p0) / 1e6;
	return err;
}

int pyx_watch_baseline_take(struct pyx_python *py,
			    const struct pyx_heap_capture_opts *o,
			    struct pyx_watch_baseline **out, double *pause_ms)
{
	struct pyx_watch_baseline *b = calloc(1, sizeof(*b));
	struct base_walk bw = { py, b };
	struct pyx_heap_capture_info ci;
	struct pyx_heap_stats hs;
	int err;

	*out = NULL;
	if (!b)
		return -PYX_E_NOMEM;
	if ((err = capture(py, o, &ci, pause_ms)))
		goto out;
	/* Every node takes 32 bytes at least (header and object). */
	err = pyx_heap_walk(py, ci.heap_bytes / 32 + 1, on_base, &bw, &hs);
	if (err)
		goto out;
	qsort(b->v, b->n, sizeof(*b->v), cmp_rec);
out:
	pyx_mem_snapshot_release(py->mem);
	if (err) {
		pyx_watch_baseline_free(b);
		return err;
	}
	*out = b;
	return 0;
}

#define TCACHE 256

struct born_walk {
	struct pyx_python *py;
	struct pyx_types *types;
	const struct pyx_watch_baseline *b;
	struct pyx_watch_newborn *want;
	size_t nwant;
	uint64_t rng;
	struct {
		uint64_t tp;
		long which; /* index into want, -1 none */
		bool set;
	} tcache[TCACHE];
};

static uint64_t xorshift(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return *s = x;
}

/* Which wanted type tp is (-1: none). */
static long wanted(struct born_walk *bw, uint64_t tp)
{
	size_t h = (size_t)(tp >> 4) & (TCACHE - 1);
	const struct pyx_typeinfo *ti;
	long which = -1;

	if (bw->tcache[h].set && bw->tcache[h].tp == tp)
		return bw->tcache[h].which;
	if (pyx_types_get(bw->types, tp, &ti) == 0 && ti->name)
		for (size_t i = 0; i < bw->nwant; i++)
			if (strcmp(ti->name, bw->want[i].name) == 0) {
				which = (long)i;
				break;
			}
	pyx_err_clear();
	bw->tcache[h].tp = tp;
	bw->tcache[h].which = which;
	bw->tcache[h].set = true;
	return which;
}

static int on_born(void *ctx, pyx_addr_t obj, const struct pyx_heap_where *where)
{
	struct born_walk *bw = ctx;
	struct pyx_watch_newborn *nb;
	uint64_t tp;
	long which;

	(void)where;
	if (pyx_heap_obj_type(bw->py, obj, &tp)) {
		pyx_err_clear();
		return 0;
	}
	if ((which = wanted(bw, tp)) < 0)
		return 0;
	nb = &bw->want[which];
	nb->count++;
	if (base_has(bw->b, obj, tp))
		return 0;
	nb->newborn++;
	/* Reservoir sampling: every newborn equally likely an example. */
	if (nb->newborn <= nb->nexamples)
		nb->examples[nb->newborn - 1] = obj;
	else {
		uint64_t r = xorshift(&bw->rng) % nb->newborn;

		if (r < nb->nexamples)
			nb->examples[r] = obj;
	}
	return 0;
}

int pyx_watch_newborn(struct pyx_python *py,
		      const struct pyx_heap_capture_opts *o,
		      const struct pyx_watch_baseline *b,
		      struct pyx_watch_newborn *types, size_t ntypes,
		      double *pause_ms)
{
	struct born_walk *bw = calloc(1, sizeof(*bw));
	struct pyx_heap_capture_info ci;
	struct pyx_heap_stats hs;
	int err;

	if (!bw)
		return -PYX_E_NOMEM;
	for (size_t i = 0; i < ntypes; i++) {
		if (types[i].nexamples > PYX_WATCH_MAX_EXAMPLES)
			types[i].nexamples = PYX_WATCH_MAX_EXAMPLES;
		types[i].count = types[i].newborn = 0;
	}
	bw->py = py;
	bw->b = b;
	bw->want = types;
	bw->nwant = ntypes;
	bw->rng = UINT64_C(0x9E3779B97F4A7C15);
	if ((err = capture(py, o, &ci, pause_ms)))
		goto out;
	if ((err = pyx_types_new(py, &bw->types)))
		goto out;
	err = pyx_heap_walk(py, ci.heap_bytes / 32 + 1, on_born, bw, &hs);
out:
	pyx_mem_snapshot_release(py->mem);
	pyx_types_free(bw->types);
	for (size_t i = 0; i < ntypes; i++)
		if (types[i].newborn < types[i].nexamples)
			types[i].nexamples = (size_t)types[i].newborn;
	free(bw);
	return err;
}
