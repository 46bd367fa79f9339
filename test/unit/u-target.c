/* Unit tests of lib/target/target.c: the target over the live-process
 * backend.  Memory the target maps after pyxray opened it (a new thread's
 * stack, a new arena) must be readable: a read (or validity check)
 * outside the maps re-reads them, once (not more) per stop. */
#include <check.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "process_private.h"
#include "pyxray/error.h"
#include "pyxray/memory.h"
#include "pyxray/target.h"

#include "unit.h"

#define PAGE 4096
#define NEW_PAGES 4

struct shared {
	volatile int ready;
	volatile int cmd;
	volatile int ack;
	volatile uintptr_t addr; /* what the child mapped on cmd 1 */
};

static struct shared *shared_new(void)
{
	struct shared *s = mmap(NULL, sizeof(*s), PROT_READ | PROT_WRITE,
				MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	ck_assert_ptr_ne(s, MAP_FAILED);
	memset((void *)s, 0, sizeof(*s));
	return s;
}

static void wait_flag(volatile int *flag, int want)
{
	for (int i = 0; i < 2000 && *flag != want; i++)
		msleep(1);
	ck_assert_int_eq(*flag, want);
}

/* cmd 1: map NEW_PAGES fresh pages, fill them, publish the address. */
static void child_mapper(void *arg)
{
	struct shared *sh = arg;

	sh->ready = 1;
	for (;;) {
		if (sh->cmd == 1) {
			uint8_t *p = mmap(NULL, NEW_PAGES * PAGE,
					  PROT_READ | PROT_WRITE,
					  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

			if (p != MAP_FAILED)
				for (size_t i = 0; i < NEW_PAGES * PAGE; i++)
					p[i] = (uint8_t)(i * 3 + 1);
			sh->addr = p == MAP_FAILED ? 0 : (uintptr_t)p;
			__sync_synchronize();
			sh->ack = 1;
			sh->cmd = 0;
		}
		msleep(1);
	}
}

static pid_t spawn_mapper(struct shared **shp)
{
	struct shared *sh = shared_new();
	pid_t pid = spawn(child_mapper, sh);

	wait_flag(&sh->ready, 1);
	*shp = sh;
	return pid;
}

/* Ask the child to map, after the target was opened. */
static uintptr_t child_maps_more(struct shared *sh)
{
	sh->cmd = 1;
	wait_flag(&sh->ack, 1);
	ck_assert_uint_ne(sh->addr, 0);
	return sh->addr;
}

static void check_pattern(const uint8_t *buf, size_t off, size_t len)
{
	for (size_t i = 0; i < len; i++)
		ck_assert_uint_eq(buf[i], (uint8_t)((off + i) * 3 + 1));
}

/* The case: open, the target maps, stop, read. */
START_TEST(test_mapped_after_open_read_when_stopped)
{
	struct shared *sh;
	pid_t pid = spawn_mapper(&sh);
	struct pyx_target *t;
	struct pyx_mem *mem;
	uint8_t buf[NEW_PAGES * PAGE];
	uintptr_t addr;
	int rc;

	ck_assert_int_eq(pyx_target_open_pid(pid, &t), 0);
	mem = pyx_target_mem(t);
	addr = child_maps_more(sh);
	ck_assert_ptr_null(pyx_target_find_map(t, addr));
	ck_assert_int_eq(pyx_target_stop(t, 2000), 0);
	ck_assert(pyx_mem_valid(mem, addr, sizeof(buf)));
	ck_assert_ptr_nonnull(pyx_target_find_map(t, addr));
	rc = pyx_mem_read(mem, addr + PAGE - 8, buf, 16);
	ck_assert_msg(rc == 0, "rc %d: %s", rc, pyx_err_detail());
	check_pattern(buf, PAGE - 8, 16);
	rc = pyx_mem_read(mem, addr, buf, sizeof(buf));
	ck_assert_msg(rc == 0, "rc %d: %s", rc, pyx_err_detail());
	check_pattern(buf, 0, sizeof(buf));
	ck_assert_int_eq(pyx_target_resume(t), 0);
	pyx_target_free(t);
	reap(pid);
}
END_TEST

/* While it runs: a read outside the maps re-reads them once. */
START_TEST(test_mapped_after_open_read_running)
{
	struct shared *sh;
	pid_t pid = spawn_mapper(&sh);
	struct pyx_target *t;
	struct pyx_mem *mem;
	uint64_t v;
	uintptr_t addr;
	int rc;

	ck_assert_int_eq(pyx_target_open_pid(pid, &t), 0);
	mem = pyx_target_mem(t);
	addr = child_maps_more(sh);
	rc = pyx_mem_read_u64(mem, addr + 8, &v);
	ck_assert_msg(rc == 0, "rc %d: %s", rc, pyx_err_detail());
	ck_assert_uint_eq(v & 0xff, (uint8_t)(8 * 3 + 1));
	pyx_target_free(t);
	reap(pid);
}
END_TEST

/* Bounded: one refresh per cache generation, however many misses; none
 * while a heap copy exists. */
START_TEST(test_refresh_bounded)
{
	struct shared *sh;
	pid_t pid = spawn_mapper(&sh);
	struct pyx_target *t;
	struct pyx_mem *mem;
	struct pyx_mem_snapshot_info si;
	uint64_t v, r0;
	void *gone;

	gone = mmap(NULL, PAGE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ck_assert_ptr_ne(gone, MAP_FAILED);
	munmap(gone, PAGE);
	ck_assert_int_eq(pyx_target_open_pid(pid, &t), 0);
	mem = pyx_target_mem(t);
	r0 = pyx_mem_test_refreshes(mem);
	for (int i = 0; i < 100; i++) {
		ck_assert_int_eq(pyx_mem_read_u64(mem, (uintptr_t)gone + 8 * i,
						  &v),
				 -PYX_E_BAD_MEMORY);
		ck_assert_ptr_nonnull(strstr(pyx_err_detail(), "not mapped"));
	}
	ck_assert_uint_eq(pyx_mem_test_refreshes(mem), r0 + 1);
	pyx_mem_invalidate(mem);
	ck_assert_int_eq(pyx_mem_read_u64(mem, (uintptr_t)gone, &v),
			 -PYX_E_BAD_MEMORY);
	ck_assert_uint_eq(pyx_mem_test_refreshes(mem), r0 + 2);
	/* With a copy: the address space of its moment, no refresh. */
	ck_assert_int_eq(pyx_target_stop(t, 2000), 0);
	ck_assert_int_eq(pyx_mem_snapshot(mem, 1u << 30, &si), 0);
	ck_assert_int_eq(pyx_target_resume(t), 0);
	r0 = pyx_mem_test_refreshes(mem);
	ck_assert_int_eq(pyx_mem_read_u64(mem, (uintptr_t)gone, &v),
			 -PYX_E_BAD_MEMORY);
	ck_assert_uint_eq(pyx_mem_test_refreshes(mem), r0);
	pyx_mem_snapshot_release(mem);
	pyx_target_free(t);
	reap(pid);
}
END_TEST

/* A maps array a caller holds stays valid across a refresh. */
START_TEST(test_maps_survive_refresh)
{
	struct shared *sh;
	pid_t pid = spawn_mapper(&sh);
	struct pyx_target *t;
	const struct pyx_map *maps;
	size_t n, n2;
	uint64_t sum = 0, sum2 = 0;

	ck_assert_int_eq(pyx_target_open_pid(pid, &t), 0);
	maps = pyx_target_maps(t, &n);
	ck_assert_uint_gt(n, 0);
	for (size_t i = 0; i < n; i++)
		sum += maps[i].end - maps[i].start + strlen(maps[i].path);
	(void)child_maps_more(sh);
	ck_assert_int_eq(pyx_target_refresh_maps(t), 0);
	(void)pyx_target_maps(t, &n2);
	ck_assert_uint_ge(n2, n);
	for (size_t i = 0; i < n; i++) /* ASan: no use after free */
		sum2 += maps[i].end - maps[i].start + strlen(maps[i].path);
	ck_assert_uint_eq(sum, sum2);
	pyx_target_free(t);
	reap(pid);
}
END_TEST

static Suite *target_suite(void)
{
	Suite *s = suite_create("target");
	TCase *tc = tcase_create("core");

	tcase_set_timeout(tc, 10);
	tcase_add_test(tc, test_mapped_after_open_read_when_stopped);
	tcase_add_test(tc, test_mapped_after_open_read_running);
	tcase_add_test(tc, test_refresh_bounded);
	tcase_add_test(tc, test_maps_survive_refresh);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return pyx_unit_run(target_suite());
}
