/* Unit tests of lib/heap/ahead.c: pages faulted in ahead of a writer on
 * another thread (no further than the lead, none past the room), what was
 * faulted past the end given back (and nothing of an array that moved),
 * the toucher's stop, the areas' bounds. */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

#include "ahead.h"
#include "internal.h"

#include "unit.h"

#define MIB (1u << 20)
#define PAGE 4096u

static uint8_t *map(size_t len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

	ck_assert_ptr_ne(p, MAP_FAILED);
	/* small pages whatever transparent_hugepage says: a 2 MiB page
	 * would bring in more than the areas' bounds these tests check */
#ifdef MADV_NOHUGEPAGE
	madvise(p, len, MADV_NOHUGEPAGE);
#endif
	return p;
}

/* Pages of [p, p + len) in memory (p page-aligned). */
static size_t resident(const uint8_t *p, size_t len)
{
	unsigned char v[256];
	size_t n = 0;

	for (size_t off = 0; off < len; off += sizeof(v) * PAGE) {
		size_t chunk = len - off < sizeof(v) * PAGE ? len - off
							     : sizeof(v) * PAGE;

		ck_assert_int_eq(mincore((void *)(p + off), chunk, v), 0);
		for (size_t i = 0; i < (chunk + PAGE - 1) / PAGE; i++)
			n += v[i] & 1;
	}
	return n;
}

/* Whether this kernel populates pages on advice (5.14 and later). */
static bool can_populate(void)
{
#ifdef MADV_POPULATE_WRITE
	uint8_t *p = map(PAGE);
	bool ok = madvise(p, PAGE, MADV_POPULATE_WRITE) == 0;

	munmap(p, PAGE);
	return ok;
#else
	return false;
#endif
}

struct job {
	struct pyx_ahead *a;
	uint8_t *base;
	int area;
	bool writer;
	size_t before, within, beyond; /* pages seen by the writer */
};

/* The writer (on the test's thread): fills 2 MiB, publishes, then waits
 * for the toucher to get a lead on it, and looks at what is in memory. */
static void job_run(void *arg)
{
	struct job *j = arg;

	if (!j->writer) {
		pyx_ahead_touch(j->a);
		return;
	}
	memset(j->base, 0xab, 2 * MIB);
	pyx_ahead_publish(j->a, j->area, 2 * MIB / 8);
	/* the lead (1 MiB) past what is filled, in at most 2 s */
	for (int i = 0; i < 2000; i++) {
		if (resident(j->base + 2 * MIB, MIB) == MIB / PAGE)
			break;
		msleep(1);
	}
	j->within = resident(j->base + 2 * MIB, MIB);
	/* nothing far past the lead (a step of 256 KiB may overshoot) */
	msleep(20);
	j->beyond = resident(j->base + 4 * MIB, 4 * MIB);
	pyx_ahead_stop(j->a);
}

START_TEST(touches_ahead)
{
	uint8_t *base = map(8 * MIB);
	struct pyx_ahead a;
	struct job j[2];
	bool can = can_populate();

	pyx_ahead_init(&a, MIB);
	j[0] = (struct job){ &a, base, -1, true, 0, 0, 0 };
	j[0].area = pyx_ahead_add(&a, base, 8, 8 * MIB / 8, 0);
	ck_assert_int_eq(j[0].area, 0);
	j[1] = j[0];
	j[1].writer = false;
	pyx_parallel(2, job_run, j, sizeof(j[0]));
	if (can) {
		ck_assert_uint_eq(j[0].within, MIB / PAGE);
	} else {
		/* no advice: the toucher gives up, nothing faulted */
		ck_assert_uint_eq(j[0].within, 0);
	}
	ck_assert_uint_eq(j[0].beyond, 0);
	/* given back past 2 MiB + 3 elements: the page holding the last
	 * element stays, and its bytes */
	ck_assert_uint_eq(pyx_ahead_trim(&a, 0, base, 2 * MIB / 8 + 3),
			  can ? MIB : 0);
	ck_assert_uint_eq(resident(base, 2 * MIB + PAGE), 2 * MIB / PAGE + 1);
	ck_assert_uint_eq(resident(base + 2 * MIB + PAGE, 6 * MIB - PAGE), 0);
	for (size_t i = 0; i < 2 * MIB; i += 4093)
		ck_assert_uint_eq(base[i], 0xab);
	munmap(base, 8 * MIB);
}
END_TEST

/* A goal area: faulted in from its start up to the goal published, no
 * lead past it, and at most its room; a writer's area beside it keeps
 * its lead. */
struct goal_job {
	struct pyx_ahead *a;
	uint8_t *goal_base, *lead_base;
	int gi, li;
	bool writer;
	size_t got, past, lead, over;
};

static void goal_run(void *arg)
{
	struct goal_job *j = arg;

	if (!j->writer) {
		pyx_ahead_touch(j->a);
		return;
	}
	pyx_ahead_publish(j->a, j->gi, 3 * MIB / 4); /* 3 MiB of 4-byte */
	pyx_ahead_publish(j->a, j->li, 0);
	for (int i = 0; i < 2000; i++) {
		if (resident(j->goal_base, 3 * MIB) == 3 * MIB / PAGE &&
		    resident(j->lead_base, MIB) == MIB / PAGE)
			break;
		msleep(1);
	}
	msleep(20);
	j->got = resident(j->goal_base, 3 * MIB);
	j->past = resident(j->goal_base + 3 * MIB + PAGE, 3 * MIB - PAGE);
	j->lead = resident(j->lead_base, MIB);
	/* a goal past the room: the room */
	pyx_ahead_publish(j->a, j->gi, 100 * MIB);
	for (int i = 0; i < 2000; i++) {
		if (resident(j->goal_base, 6 * MIB) == 6 * MIB / PAGE)
			break;
		msleep(1);
	}
	msleep(20);
	j->over = resident(j->goal_base + 6 * MIB, 2 * MIB);
	pyx_ahead_stop(j->a);
}

START_TEST(goal_area)
{
	uint8_t *goal_base = map(8 * MIB), *lead_base = map(4 * MIB);
	struct pyx_ahead a;
	struct goal_job j[2];

	if (!can_populate()) {
		/* covered by touches_ahead: the toucher gives up */
		munmap(goal_base, 8 * MIB);
		munmap(lead_base, 4 * MIB);
		return;
	}
	pyx_ahead_init(&a, MIB);
	j[0] = (struct goal_job){ &a, goal_base, lead_base, -1, -1, true,
				  0, 0, 0, 0 };
	/* room for 6 MiB of the 8 mapped */
	j[0].gi = pyx_ahead_add_goal(&a, goal_base, 4, 6 * MIB / 4);
	j[0].li = pyx_ahead_add(&a, lead_base, 8, 4 * MIB / 8, 0);
	ck_assert_int_eq(j[0].gi, 0);
	ck_assert_int_eq(j[0].li, 1);
	j[1] = j[0];
	j[1].writer = false;
	pyx_parallel(2, goal_run, j, sizeof(j[0]));
	ck_assert_uint_eq(j[0].got, 3 * MIB / PAGE);
	ck_assert_uint_eq(j[0].past, 0);
	ck_assert_uint_eq(j[0].lead, MIB / PAGE);
	ck_assert_uint_eq(j[0].over, 0);
	/* given back past the 1000 elements written */
	ck_assert_uint_eq(pyx_ahead_trim(&a, j[0].gi, goal_base, 1000),
			  6 * MIB - PAGE);
	ck_assert_uint_eq(resident(goal_base, 8 * MIB), 1);
	munmap(goal_base, 8 * MIB);
	munmap(lead_base, 4 * MIB);
}
END_TEST

/* An area that moved (the writer grew it elsewhere) is someone else's
 * memory now: trim leaves it alone; nor is an area past its room
 * touched, or one that does not exist. */
START_TEST(trim_only_its_own)
{
	uint8_t *base = map(4 * MIB), *other = map(PAGE);
	struct pyx_ahead a;
	int i;

	pyx_ahead_init(&a, MIB);
	i = pyx_ahead_add(&a, base, 4, MIB, 0);
	ck_assert_int_eq(i, 0);
	memset(base, 0x5a, 4 * MIB);
	/* as if the toucher had gone to the end */
	a.area[i].done = MIB;
	ck_assert_uint_eq(pyx_ahead_trim(&a, i, other, 0), 0);
	ck_assert_uint_eq(pyx_ahead_trim(&a, -1, base, 0), 0);
	ck_assert_uint_eq(pyx_ahead_trim(&a, 3, base, 0), 0);
	/* more elements than its room: it grew in place, keep */
	ck_assert_uint_eq(pyx_ahead_trim(&a, i, base, MIB + 1), 0);
	ck_assert_uint_eq(resident(base, 4 * MIB), 4 * MIB / PAGE);
	for (size_t k = 0; k < 4 * MIB; k += 4099)
		ck_assert_uint_eq(base[k], 0x5a);
	/* its own: past the first MiB, given back */
	ck_assert_uint_eq(pyx_ahead_trim(&a, i, base, MIB / 4), 3 * MIB);
	ck_assert_uint_eq(resident(base, 4 * MIB), MIB / PAGE);
	ck_assert_uint_eq(base[MIB - 1], 0x5a);
	ck_assert_uint_eq(base[MIB], 0);
	/* once only */
	ck_assert_uint_eq(pyx_ahead_trim(&a, i, base, MIB / 4), 0);
	munmap(base, 4 * MIB);
	munmap(other, PAGE);
}
END_TEST

/* An area ending inside a page: what follows it there (the next block of
 * the allocator, its header) is not the area's, and the trim keeps that
 * page whole. */
START_TEST(trim_keeps_the_next_block)
{
	uint8_t *base = map(3 * PAGE);
	const size_t cap = 2 * PAGE + 100; /* 1-byte elements */
	struct pyx_ahead a;
	int i;

	memset(base, 0x77, 3 * PAGE);
	pyx_ahead_init(&a, MIB);
	i = pyx_ahead_add_goal(&a, base, 1, cap);
	ck_assert_int_eq(i, 0);
	a.area[i].done = cap; /* the toucher went to the end */
	/* from the page after element 10 to the page the area ends in */
	ck_assert_uint_eq(pyx_ahead_trim(&a, i, base, 10), PAGE);
	ck_assert_uint_eq(base[9], 0x77);
	ck_assert_uint_eq(base[PAGE - 1], 0x77);
	ck_assert_uint_eq(base[PAGE], 0);
	ck_assert_uint_eq(base[2 * PAGE - 1], 0);
	for (size_t k = 2 * PAGE; k < 3 * PAGE; k++)
		ck_assert_uint_eq(base[k], 0x77);
	munmap(base, 3 * PAGE);
}
END_TEST

START_TEST(areas_bounded)
{
	struct pyx_ahead a;
	uint8_t *base = map(PAGE);

	pyx_ahead_init(&a, 0);
	ck_assert_uint_eq(a.lead, MIB);
	ck_assert_int_eq(pyx_ahead_add(&a, NULL, 8, 10, 0), -1);
	ck_assert_int_eq(pyx_ahead_add(&a, base, 0, 10, 0), -1);
	for (int i = 0; i < PYX_AHEAD_MAX; i++)
		ck_assert_int_eq(pyx_ahead_add(&a, base, 1, PAGE, 0), i);
	ck_assert_int_eq(pyx_ahead_add(&a, base, 1, PAGE, 0), -1);
	/* no ahead */
	ck_assert_int_eq(pyx_ahead_add(NULL, base, 1, PAGE, 0), -1);
	pyx_ahead_publish(&a, -1, 5);
	pyx_ahead_publish(&a, PYX_AHEAD_MAX, 5);
	pyx_ahead_publish(NULL, 0, 5);
	pyx_ahead_publish(&a, 2, 5);
	ck_assert_uint_eq(a.area[2].filled, 5);
	/* stopped before it starts: returns at once */
	pyx_ahead_stop(&a);
	pyx_ahead_touch(&a);
	pyx_ahead_touch(NULL);
	pyx_ahead_stop(NULL);
	munmap(base, PAGE);
}
END_TEST

/* Room is free but where the kernel commits every mapping. */
START_TEST(room_free_unless_strict)
{
	FILE *f = fopen("/proc/sys/vm/overcommit_memory", "re");
	int v = 0;

	if (f) {
		ck_assert_int_eq(fscanf(f, "%d", &v), 1);
		fclose(f);
	}
	ck_assert(pyx_ahead_room_is_free() == (v != 2));
	/* read once */
	ck_assert(pyx_ahead_room_is_free() == (v != 2));
}
END_TEST

int main(void)
{
	Suite *s = suite_create("ahead");
	TCase *tc = tcase_create("core");

	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, touches_ahead);
	tcase_add_test(tc, goal_area);
	tcase_add_test(tc, trim_only_its_own);
	tcase_add_test(tc, trim_keeps_the_next_block);
	tcase_add_test(tc, areas_bounded);
	tcase_add_test(tc, room_free_unless_strict);
	suite_add_tcase(s, tc);
	return pyx_unit_run(s);
}
