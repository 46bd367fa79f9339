/* pyxray watch: a series of light censuses, the shape of the memory curve,
 * and per type a growth rate and a leak verdict.
 *
 * The series (struct pyx_watch) keeps one row per sample and, per type
 * name, its count and bytes at every sample; it is bounded (max_samples:
 * when full, every second sample is dropped, so the series keeps the whole
 * window at half the resolution).  The classifier and the verdicts are
 * pure functions of the numbers (unit-tested on synthetic series); the
 * method and its limits are in docs/watch.md.
 *
 * Who holds the growth: pyx_watch_baseline_take() records which objects
 * exist at the start (address and type of every tracked object), and
 * pyx_watch_newborn() later finds, for a few types, the objects that are
 * not in it (born during the watch) and picks examples of them, whose
 * retention paths the refs walker gives (pyx_refs_take() by address).
 */
#ifndef PYXRAY_WATCH_H
#define PYXRAY_WATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pyxray/common.h"
#include "pyxray/heap.h"

#ifdef __cplusplus
extern "C" {
#endif

struct pyx_census;
struct pyx_python;

/* ---- the classifier ---------------------------------------------------- */

enum pyx_watch_shape {
	PYX_SHAPE_UNKNOWN,      /* too few samples to say */
	PYX_SHAPE_FLAT,
	PYX_SHAPE_SAWTOOTH,     /* fills and empties, two times or more */
	PYX_SHAPE_EARLY_GROWTH, /* rises, then stays */
	PYX_SHAPE_SURGE,        /* rises, then returns to its baseline */
	PYX_SHAPE_LEAK,         /* grows steadily across the window */
	PYX_SHAPE_IRREGULAR,    /* none of those */
};
/* "flat", "sawtooth", "early-growth", "surge", "leak", "irregular",
 * "unknown". */
const char *pyx_watch_shape_name(enum pyx_watch_shape s);

/* Fewer samples than this: no verdict (PYX_SHAPE_UNKNOWN, never a leak). */
#define PYX_WATCH_MIN_SAMPLES 6

/* The trend of one series y(t) and the steady-growth (leak) test. */
struct pyx_watch_trend {
	double slope;     /* per second: Theil-Sen (median of pairwise slopes) */
	double growth;    /* slope times the window */
	double tau;       /* Kendall's tau-a of (t, y): 1 strictly rising */
	double r2;        /* robust: 1 - (noise / MAD spread of y)^2 */
	double noise;     /* robust scale of the residuals about the slope
			     (1.4826 MAD) */
	double thirds[3]; /* medians of the first, middle and last third */
	double min, max, first, last; /* last: median of the last 3 */
	bool leak;
	const char *why;  /* why not a leak (static text), NULL if a leak */
};
/* min_growth: the least growth over the window (in y's unit) that can be a
 * leak.  n < PYX_WATCH_MIN_SAMPLES or a window of no length: no leak, the
 * slope still computed when n >= 2.  t must be increasing. */
void pyx_watch_trend(const double *t, const double *y, size_t n,
		     double min_growth, struct pyx_watch_trend *out);

struct pyx_watch_curve {
	enum pyx_watch_shape shape;
	struct pyx_watch_trend trend;
	double level;     /* median */
	double amplitude; /* max - min */
	double noise;     /* sample-to-sample noise (1.4826 MAD of the
			     differences / sqrt 2) */
	unsigned rises, falls; /* crossings of the 40%/60% band of the range */
	double start, end;     /* first and last 3 samples' median, as a
				  fraction of the range above its minimum */
};
/* flat_rel: a curve whose range is within this fraction of its level is
 * flat (0: 0.02). */
void pyx_watch_classify(const double *t, const double *y, size_t n,
			double flat_rel, struct pyx_watch_curve *out);

/* ---- memory by category ----------------------------------------------- */

/* Where the memory is, per sample, with 'pyxray memory''s accounting
 * (pyx_memory_take() given the sample's census: one more short stop, for
 * the allocators, smaps and the page map).  The allocators' own figures
 * for pymalloc and glibc malloc (what they hold, resident or not), the
 * resident bytes placed in the mappings for the rest. */
enum pyx_watch_cat {
	PYX_WCAT_PYTHON_OBJECTS,   /* the census's bytes (memory's
				      python.objects_bytes) */
	PYX_WCAT_PYMALLOC_ARENAS,  /* pymalloc.arena_bytes */
	PYX_WCAT_PYMALLOC_USED,    /* pymalloc.used_bytes */
	PYX_WCAT_PYMALLOC_FREE,    /* pymalloc.free_bytes (in used pools) */
	PYX_WCAT_PYMALLOC_EMPTY,   /* pymalloc.empty_pool_bytes */
	PYX_WCAT_MALLOC_IN_USE,    /* malloc.in_use_bytes (uordblks) */
	PYX_WCAT_MALLOC_FREE,      /* malloc.free_bytes (fordblks) */
	PYX_WCAT_MALLOC_MMAPPED,   /* malloc.mmapped_bytes (hblkhd) */
	PYX_WCAT_STACKS,           /* mappings.stack_rss_bytes */
	PYX_WCAT_FILES,            /* mappings.file_rss_bytes */
	PYX_WCAT_SHMEM,            /* mappings.shmem_rss_bytes */
	PYX_WCAT_UNEXPLAINED,      /* unexplained_bytes */
	PYX_WCAT_COUNT
};
/* "python_objects", "pymalloc_arenas", ..., "unexplained": the JSON keys,
 * the Prometheus category label, the statsd names. */
const char *pyx_watch_cat_key(enum pyx_watch_cat c);
/* "Python objects", "glibc malloc in use", ...: memory's words. */
const char *pyx_watch_cat_label(enum pyx_watch_cat c);

/* ---- the series -------------------------------------------------------- */

struct pyx_watch_sample {
	double time;          /* Unix time */
	double t;             /* seconds since the first sample */
	double pause_ms, walk_ms; /* pause_ms: every stop of the sample */
	double census_pause_ms;   /* the census's stop alone */
	/* Memory by category: cat[i] is known when bit i of cat_known is
	 * set (a sample added without a report knows none). */
	uint32_t cat_known;
	int64_t cat[PYX_WCAT_COUNT];
	int64_t rss_bytes;    /* -1 unknown */
	int64_t arena_bytes;  /* -1 unknown */
	uint64_t objects, bytes;       /* counted (tracked, + reached --full) */
	uint64_t gc_objects, gc_bytes; /* tracked */
	bool partial;
};

struct pyx_watch_type {
	char *name;
	uint64_t *count, *bytes; /* per sample kept; 0 before it appeared */
};

struct pyx_watch {
	struct pyx_watch_sample *samples;
	size_t nsamples, max_samples;
	struct pyx_watch_type *types;
	size_t ntypes, captypes, max_types;
	size_t *by_name;          /* type indices sorted by name */
	uint64_t taken;           /* samples added, dropped ones too */
	unsigned halvings;        /* times every second sample was dropped */
	uint64_t types_left_out;  /* type rows past max_types, not kept */
};

/* max_samples: 0 for 512 (at least 16); max_types: 0 for 20000. */
int pyx_watch_new(size_t max_samples, size_t max_types, struct pyx_watch **out);
void pyx_watch_free(struct pyx_watch *w);
/* Add a census (its time, pause, totals, and every type's count and
 * bytes).  Samples must come in time order. */
int pyx_watch_add(struct pyx_watch *w, const struct pyx_census *c);
/* The same from plain arrays (names need not be sorted or unique: rows of
 * one name are summed).  s->t is set from s->time. */
int pyx_watch_add_sample(struct pyx_watch *w, const struct pyx_watch_sample *s,
			 const char *const *names, const uint64_t *counts,
			 const uint64_t *bytes, size_t n);

struct pyx_memory_report;
/* The last sample's categories from r (memory's report, taken with the
 * sample's census), and r's second stop added to its pause.  A part r
 * could not read leaves its categories unknown. */
void pyx_watch_set_memory(struct pyx_watch *w,
			  const struct pyx_memory_report *r);

/* Which series of the samples. */
enum pyx_watch_metric {
	PYX_WATCH_HEAP_BYTES, /* bytes of the counted objects */
	PYX_WATCH_RSS_BYTES,
	PYX_WATCH_OBJECTS,
	PYX_WATCH_ARENA_BYTES,
};
/* The times and the values of a metric (t and y hold nsamples; samples
 * where it is unknown are left out): the number of points. */
size_t pyx_watch_series(const struct pyx_watch *w, enum pyx_watch_metric m,
			double *t, double *y);

/* The times and the values of one category (samples where it is unknown
 * are left out): the number of points. */
size_t pyx_watch_cat_series(const struct pyx_watch *w, enum pyx_watch_cat c,
			    double *t, double *y);

/* Where the memory grows: each category's curve, and a verdict. */
enum pyx_watch_place {
	PYX_PLACE_UNKNOWN,     /* too few samples placed to say */
	PYX_PLACE_NONE,        /* nothing grows steadily */
	PYX_PLACE_C,           /* glibc malloc grows, Python objects do not */
	PYX_PLACE_PYTHON,      /* Python objects grow (malloc with them, if
				  at all, no faster) */
	PYX_PLACE_PYTHON_AND_C,/* both, malloc much faster than the objects */
	PYX_PLACE_PYMALLOC,    /* pymalloc arenas, not their used blocks */
	PYX_PLACE_STACKS,      /* thread stacks (threads that never end) */
	PYX_PLACE_FILES,       /* mapped files */
	PYX_PLACE_SHMEM,       /* shared memory */
	PYX_PLACE_UNEXPLAINED, /* anonymous memory no allocator accounts for */
};
/* "unknown", "none", "c", "python", "python-and-c", "pymalloc", "stacks",
 * "files", "shared-memory", "unexplained". */
const char *pyx_watch_place_name(enum pyx_watch_place p);

struct pyx_watch_where {
	enum pyx_watch_place place;
	size_t n;                            /* samples placed */
	bool known[PYX_WCAT_COUNT];          /* a curve (>= 2 points) */
	struct pyx_watch_curve cat[PYX_WCAT_COUNT];
	/* glibc malloc in use + mmapped: C's allocations together */
	bool c_known;
	struct pyx_watch_curve c;
};
/* Classify every category's curve (pyx_watch_classify) and say where the
 * growth is: C when malloc's allocations grow steadily while the Python
 * objects do not (or grow at less than half their rate); Python when the
 * objects grow.  types_leak: a type's count leaks (the objects are then
 * not flat, whatever their bytes do).  -PYX_E_NOMEM. */
int pyx_watch_where(const struct pyx_watch *w, bool types_leak,
		    struct pyx_watch_where *out);

/* Per type: growth over the watch and the leak verdict. */
struct pyx_watch_growth {
	size_t type;               /* index into w->types */
	const char *name;          /* borrowed from w */
	uint64_t first, last;      /* count at the first and last sample */
	uint64_t first_bytes, last_bytes;
	double count_per_s, bytes_per_s; /* Theil-Sen slopes */
	struct pyx_watch_trend trend;    /* of the count */
	bool leak;
};
/* Every type whose count or bytes changed during the watch: leaks first,
 * then by bytes_per_s, then count_per_s, largest first.  min_growth: the
 * least growth in objects over the window that can be a leak (0: 10). */
int pyx_watch_growth(const struct pyx_watch *w, double min_growth,
		     struct pyx_watch_growth **out, size_t *n);

/* ---- who holds the growth ---------------------------------------------- */

/* The tracked objects at one moment: address and type, sorted. */
struct pyx_watch_baseline;
/* Stop, copy, resume (pyx_heap_capture()), then record every tracked
 * object.  *pause_ms: how long the target was stopped.  Errors: those of
 * pyx_heap_capture() and pyx_heap_walk(); -PYX_E_NOMEM. */
int pyx_watch_baseline_take(struct pyx_python *py,
			    const struct pyx_heap_capture_opts *o,
			    struct pyx_watch_baseline **out, double *pause_ms);
void pyx_watch_baseline_free(struct pyx_watch_baseline *b);
uint64_t pyx_watch_baseline_count(const struct pyx_watch_baseline *b);

#define PYX_WATCH_MAX_EXAMPLES 16
/* Input: name and nexamples (wanted, at most PYX_WATCH_MAX_EXAMPLES).
 * Output: count (tracked objects of that type now), newborn (those not in
 * the baseline at the same address with the same type) and examples:
 * newborn objects picked evenly at random (a fixed seed), nexamples set to
 * how many were found. */
struct pyx_watch_newborn {
	const char *name;
	size_t nexamples;
	uint64_t count, newborn;
	pyx_addr_t examples[PYX_WATCH_MAX_EXAMPLES];
};
/* Stop, copy, resume, then walk the tracked objects.  Errors as for
 * pyx_watch_baseline_take(). */
int pyx_watch_newborn(struct pyx_python *py,
		      const struct pyx_heap_capture_opts *o,
		      const struct pyx_watch_baseline *b,
		      struct pyx_watch_newborn *types, size_t ntypes,
		      double *pause_ms);

/* ---- without a stop ---------------------------------------------------- */


#ifdef __cplusplus
}
#endif
#endif
