/* Unit tests of lib/target/target.c: the target over the live-process
 * backend.  Memory the target maps after pyxray opened it (a new thread's
 * stack, a new arena) must be readable: a read (or validity check)
 * outside the maps re-reads them, once (not more) per stop.  smaps and the
 * page map come through the target: equal to the kernel's for a live
 * process, refused with "not a live process" for an image. */
#include <check.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "image.h"
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

struct smaps_list {
	size_t n;
	struct pyx_smaps_entry e[4096];
	char paths[4096][64];
};

static int collect(void *arg, const struct pyx_smaps_entry *e)
{
	struct smaps_list *l = arg;

	ck_assert_uint_lt(l->n, 4096);
	l->e[l->n] = *e;
	snprintf(l->paths[l->n], sizeof(l->paths[0]), "%s", e->path);
	l->e[l->n].path = l->paths[l->n];
	l->n++;
	return 0;
}

/* The kernel's smaps of pid, read here directly: the truth. */
static void read_truth(pid_t pid, struct smaps_list *l)
{
	char path[64], line[4096];
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/smaps", (int)pid);
	f = fopen(path, "re");
	ck_assert_ptr_nonnull(f);
	l->n = 0;
	while (fgets(line, sizeof(line), f)) {
		unsigned long long s, e, off, kb;
		char perms[8];

		if (sscanf(line, "%llx-%llx %7s %llx", &s, &e, perms, &off) == 4) {
			ck_assert_uint_lt(l->n, 4096);
			l->e[l->n] = (struct pyx_smaps_entry){ .start = s,
							       .end = e,
							       .offset = off };
			snprintf(l->e[l->n].perms, 5, "%.4s", perms);
			l->n++;
		} else if (l->n && sscanf(line, "Rss: %llu kB", &kb) == 1) {
			l->e[l->n - 1].rss_bytes = kb * 1024;
		}
	}
	fclose(f);
}

/* A live target's smaps and resident pages equal the kernel's. */
START_TEST(test_smaps_live)
{
	static struct smaps_list got, want;
	struct shared *sh;
	pid_t pid = spawn_mapper(&sh);
	struct pyx_target *t;
	uintptr_t addr;
	uint64_t bytes = 1, in_map = 0;

	ck_assert_int_eq(pyx_target_open_pid(pid, &t), 0);
	addr = child_maps_more(sh);
	got.n = 0;
	ck_assert_int_eq(pyx_target_stop(t, 0), 0);
	ck_assert_int_eq(pyx_target_smaps(t, collect, &got), 0);
	read_truth(pid, &want);
	ck_assert_int_eq(pyx_target_resident(t, addr, addr + NEW_PAGES * PAGE,
					     &bytes), 0);
	ck_assert_uint_eq(bytes, NEW_PAGES * PAGE);
	/* An unmapped page: none. */
	ck_assert_int_eq(pyx_target_resident(t, 0, PAGE, &bytes), 0);
	ck_assert_uint_eq(bytes, 0);
	/* A range of the target's numbers is bounded, not walked. */
	ck_assert_int_eq(pyx_target_resident(t, 0, UINT64_C(1) << 47, &bytes),
			 -PYX_E_BAD_MEMORY);
	ck_assert_int_eq(pyx_target_resident(t, 2 * PAGE, PAGE, &bytes),
			 -PYX_E_BAD_MEMORY);
	ck_assert_int_eq(pyx_target_resume(t), 0);
	ck_assert_uint_gt(got.n, 3);
	ck_assert_uint_eq(got.n, want.n);
	for (size_t i = 0; i < got.n; i++) {
		ck_assert_uint_eq(got.e[i].start, want.e[i].start);
		ck_assert_uint_eq(got.e[i].end, want.e[i].end);
		ck_assert_uint_eq(got.e[i].offset, want.e[i].offset);
		ck_assert_str_eq(got.e[i].perms, want.e[i].perms);
		ck_assert_uint_eq(got.e[i].rss_bytes, want.e[i].rss_bytes);
		if (i)
			ck_assert_uint_ge(got.e[i].start, got.e[i - 1].end);
		if (got.e[i].start <= addr && addr < got.e[i].end)
			in_map = got.e[i].rss_bytes;
	}
	ck_assert_uint_ge(in_map, NEW_PAGES * PAGE);
	pyx_target_free(t);
	reap(pid);
}
END_TEST

static int never(void *arg, const struct pyx_smaps_entry *e)
{
	(void)arg;
	(void)e;
	ck_abort_msg("smaps called back for a target without it");
	return 0;
}

/* The process is gone (its PID free for another): nothing is read. */
START_TEST(test_smaps_exited)
{
	struct shared *sh;
	pid_t pid = spawn_mapper(&sh);
	struct pyx_target *t;
	uint64_t bytes = 1;

	ck_assert_int_eq(pyx_target_open_pid(pid, &t), 0);
	reap(pid);
	ck_assert_int_eq(pyx_target_smaps(t, never, NULL), -PYX_E_EXITED);
	ck_assert_int_ne(pyx_target_resident(t, PAGE, 2 * PAGE, &bytes), 0);
	ck_assert_uint_eq(bytes, 0);
	pyx_target_free(t);
}
END_TEST

/* An image (as a core) has no smaps: said so, nothing opened. */
START_TEST(test_smaps_image)
{
	struct pyx_image_info in;
	static uint8_t rw[4096];
	struct pyx_image_range r = { UINT64_C(0x7f0000001000), sizeof(rw),
				     PYX_IMAGE_R | PYX_IMAGE_W, rw };
	struct pyx_target *t;
	uint8_t *buf;
	size_t len;
	uint64_t bytes = 1;

	memset(&in, 0, sizeof(in));
	/* Our own PID: were /proc/PID read by number, it would succeed. */
	in.pid = getpid();
	in.major = 3;
	in.minor = 12;
	ck_assert_int_eq(pyx_image_encode(&in, NULL, 0, &r, 1, &buf, &len), 0);
	ck_assert_int_eq(pyx_image_open_buffer(buf, len, &t, &in), 0);
	free(buf);
	ck_assert_int_eq(pyx_target_smaps(t, never, NULL),
			 -PYX_E_NOT_SUPPORTED);
	ck_assert_ptr_nonnull(strstr(pyx_err_detail(), "not a live process"));
	ck_assert_int_eq(pyx_target_resident(t, r.addr, r.addr + PAGE, &bytes),
			 -PYX_E_NOT_SUPPORTED);
	ck_assert_uint_eq(bytes, 0);
	pyx_target_free(t);
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
	tcase_add_test(tc, test_smaps_live);
	tcase_add_test(tc, test_smaps_exited);
	tcase_add_test(tc, test_smaps_image);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return pyx_unit_run(target_suite());
}
