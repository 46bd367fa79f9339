/* Unit tests of what the census shares between its threads: the type
 * table (lib/heap/referents.c struct pyx_types: look-ups without a lock,
 * inserts under its mutex, entries in segments that never move, a hash
 * table replaced as it grows), and pyx_heap_jobs().  The types are bad
 * pointers (each gets an entry of kind PYX_K_INVALID, as on a damaged
 * heap) and a few fake type objects, enough of them to cross several
 * segments and hash tables. */
#include <check.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>

#include "pyxray/heap.h"
#include "pyxray/layout.h"
#include "pyxray/memory.h"
#include "referents.h"

#include "unit.h"
#include "fake_target.h"

#define NTYPES 3000   /* segments of 256, 512, 1024, 2048: four of them */
#define NTHREADS 4
#define BAD(i) (UINT64_C(0x7f0000000000) + (uint64_t)(i) * 64)

static uint64_t *fake_type(struct pyx_python *py, const char *name)
{
	uint64_t *tp = take(128), *s = take(8);

	strcpy((char *)s, name);
	put_n(py, tp, PYX_L_OB_TYPE, py->types.type, 8);
	put_n(py, tp, PYX_L_TP_NAME, A(s), 8);
	put_n(py, tp, PYX_L_TP_BASICSIZE, 32, 8);
	return tp;
}

START_TEST(types_many)
{
	struct pyx_python *py = fake_python(12, 0);
	uint64_t *good = fake_type(py, "good");
	const struct pyx_typeinfo *ti, *first[NTYPES];
	struct pyx_types *t;

	ck_assert_int_eq(pyx_types_new(py, &t), 0);
	for (size_t i = 0; i < NTYPES; i++) {
		ck_assert_int_eq(pyx_types_get(t, BAD(i), &ti), -PYX_E_BAD_MEMORY);
		ck_assert_ptr_nonnull(ti);
		ck_assert_int_eq(ti->kind, PYX_K_INVALID);
		ck_assert_uint_eq(ti->id, i <= NTYPES / 2 ? i : i + 1);
		first[i] = ti;
		if (i == NTYPES / 2)
			ck_assert_int_eq(pyx_types_get(t, A(good), &ti), 0);
	}
	ck_assert_uint_eq(pyx_types_count(t), NTYPES + 1);
	/* Every entry where it was put, found again, the same object. */
	for (size_t i = 0; i < NTYPES; i++) {
		size_t id = i <= NTYPES / 2 ? i : i + 1;

		ck_assert_uint_eq(first[i]->id, id);
		ck_assert_ptr_eq(pyx_types_at(t, id), first[i]);
		ck_assert_uint_eq(pyx_types_at(t, id)->addr, BAD(i));
		ck_assert_int_eq(pyx_types_get(t, BAD(i), &ti), -PYX_E_BAD_MEMORY);
		ck_assert_ptr_eq(ti, first[i]);
	}
	ck_assert_int_eq(pyx_types_get(t, A(good), &ti), 0);
	ck_assert_str_eq(ti->name, "good");
	ck_assert_uint_eq(ti->id, NTYPES / 2 + 1);
	ck_assert_ptr_null(pyx_types_at(t, NTYPES + 1));
	pyx_types_free(t);
	fake_python_free(py);
}
END_TEST

struct racer {
	struct pyx_types *t;
	unsigned k;
	const struct pyx_typeinfo *got[NTYPES];
	int errors;
};

/* Every thread meets the same types, each from its own start: most are
 * new to the table when one thread meets them, and some to two at once. */
static void *race(void *arg)
{
	struct racer *r = arg;

	for (size_t j = 0; j < NTYPES; j++) {
		size_t i = (j + r->k * (NTYPES / NTHREADS)) % NTYPES;
		const struct pyx_typeinfo *ti = NULL;

		if (pyx_types_get(r->t, BAD(i), &ti) != -PYX_E_BAD_MEMORY ||
		    !ti || ti->addr != BAD(i))
			r->errors++;
		r->got[i] = ti;
		/* ids below the count are readable while others insert */
		if (!pyx_types_at(r->t, pyx_types_count(r->t) - 1))
			r->errors++;
	}
	return NULL;
}

START_TEST(types_threads)
{
	struct pyx_python *py = fake_python(12, 0);
	static struct racer r[NTHREADS];
	pthread_t th[NTHREADS];
	struct pyx_types *t;
	bool *seen;

	ck_assert_int_eq(pyx_types_new(py, &t), 0);
	for (unsigned k = 0; k < NTHREADS; k++) {
		r[k] = (struct racer){ .t = t, .k = k };
		ck_assert_int_eq(pthread_create(&th[k], NULL, race, &r[k]), 0);
	}
	for (unsigned k = 0; k < NTHREADS; k++)
		pthread_join(th[k], NULL);
	/* One entry a type, whoever met it first; the same for all. */
	ck_assert_uint_eq(pyx_types_count(t), NTYPES);
	seen = calloc(NTYPES, sizeof(*seen));
	ck_assert_ptr_nonnull(seen);
	for (size_t i = 0; i < NTYPES; i++) {
		const struct pyx_typeinfo *ti = r[0].got[i];

		for (unsigned k = 0; k < NTHREADS; k++) {
			ck_assert_int_eq(r[k].errors, 0);
			ck_assert_ptr_eq(r[k].got[i], ti);
		}
		ck_assert_uint_lt(ti->id, NTYPES);
		ck_assert(!seen[ti->id]);
		seen[ti->id] = true;
		ck_assert_ptr_eq(pyx_types_at(t, ti->id), ti);
	}
	free(seen);
	pyx_types_free(t);
	fake_python_free(py);
}
END_TEST

START_TEST(heap_jobs)
{
	cpu_set_t set;
	unsigned cpus = 1;

	if (sched_getaffinity(0, sizeof(set), &set) == 0 && CPU_COUNT(&set) > 0)
		cpus = (unsigned)CPU_COUNT(&set);
	ck_assert_uint_eq(pyx_heap_jobs(1), 1);
	ck_assert_uint_eq(pyx_heap_jobs(3), 3);
	ck_assert_uint_eq(pyx_heap_jobs(64), 64);
	ck_assert_uint_eq(pyx_heap_jobs(1000), 64);
	ck_assert_uint_eq(pyx_heap_jobs(0), cpus < 16 ? cpus : 16);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("census-jobs");
	TCase *tc = tcase_create("shared");

	tcase_add_test(tc, types_many);
	tcase_add_test(tc, types_threads);
	tcase_add_test(tc, heap_jobs);
	suite_add_tcase(s, tc);
	return pyx_unit_run(s);
}
