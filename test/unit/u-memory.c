/* Unit tests of lib/memory.c: reads of this process and of forked
 * children, the page cache, the maps check and the /proc/PID/mem
 * fallback. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "process_private.h"
#include "pyxray/target.h"
#include "pyxray/error.h"
#include "pyxray/memory.h"
#include "pyxray/process.h"

#include "unit.h"

#define PAGE 4096

/* ---- children --------------------------------------------------------- */

struct shared {
	volatile int ready;
	volatile int cmd;
	volatile int ack;
};

static struct shared *shared_new(void)
{
	struct shared *s = mmap(NULL, sizeof(*s), PROT_READ | PROT_WRITE,
				MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	ck_assert_ptr_ne(s, MAP_FAILED);
	memset((void *)s, 0, sizeof(*s));
	return s;
}


/* Wait (up to 2 s) until *flag == want. */
static void wait_flag(volatile int *flag, int want)
{
	for (int i = 0; i < 2000 && *flag != want; i++)
		msleep(1);
	ck_assert_int_eq(*flag, want);
}



/* ---- tests ------------------------------------------------------------ */

static char self_buf[3 * PAGE] __attribute__((aligned(PAGE)));

START_TEST(test_self_read)
{
	struct pyx_mem *mem;
	struct pyx_mem_stats st;
	char buf[64], s[32];
	uint64_t v, word = 0x1122334455667788u;

	for (size_t i = 0; i < sizeof(self_buf); i++)
		self_buf[i] = (char)(i * 7 + 3);
	ck_assert_int_eq(pyx_mem_new_pid(getpid(), &mem), 0);
	/* Across the first page boundary. */
	ck_assert_int_eq(pyx_mem_read(mem, (uintptr_t)self_buf + PAGE - 20, buf,
				      sizeof(buf)),
			 0);
	ck_assert_mem_eq(buf, self_buf + PAGE - 20, sizeof(buf));
	ck_assert_int_eq(pyx_mem_read_u64(mem, (uintptr_t)&word, &v), 0);
	ck_assert_uint_eq(v, word);
	ck_assert_int_eq(pyx_mem_read_cstr(mem, (uintptr_t)"hello, world", s,
					   sizeof(s)),
			 0);
	ck_assert_str_eq(s, "hello, world");
	pyx_mem_get_stats(mem, &st);
	ck_assert_uint_ge(st.syscalls, 2);
	ck_assert_uint_ge(st.bytes, 2 * PAGE);
	/* NULL, zero length. */
	ck_assert_int_eq(pyx_mem_read(mem, 0, buf, 8), -PYX_E_BAD_MEMORY);
	ck_assert_ptr_nonnull(strstr(pyx_err_detail(), "not mapped"));
	ck_assert_int_eq(pyx_mem_read(mem, (uintptr_t)buf, buf, 0), 0);
	pyx_mem_free(mem);
	pyx_mem_free(NULL);
}
END_TEST

static uint8_t *child_region; /* 3 pages, set before fork */

static void child_fill(void *arg)
{
	struct shared *sh = arg;

	for (size_t i = 0; i < 3 * PAGE; i++)
		child_region[i] = (uint8_t)(i ^ 0x5a);
	sh->ready = 1;
	/* cmd 1: change the first word, then ack. */
	for (;;) {
		if (sh->cmd == 1) {
			child_region[0] = 0xee;
			__sync_synchronize();
			sh->ack = 1;
			sh->cmd = 0;
		}
		msleep(1);
	}
}

static pid_t spawn_filled_at(struct shared **shp, void *hint)
{
	struct shared *sh = shared_new();
	pid_t pid;

	child_region = mmap(hint, 3 * PAGE, PROT_READ | PROT_WRITE,
			    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ck_assert_ptr_ne(child_region, MAP_FAILED);
	memset(child_region, 0, 3 * PAGE); /* the parent's copy: zeros */
	pid = spawn(child_fill, sh);
	wait_flag(&sh->ready, 1);
	*shp = sh;
	return pid;
}

static pid_t spawn_filled(struct shared **shp)
{
	return spawn_filled_at(shp, NULL);
}

START_TEST(test_child_read)
{
	struct shared *sh;
	pid_t pid = spawn_filled(&sh);
	struct pyx_mem *mem;
	uint8_t buf[3 * PAGE];
	uintptr_t base = (uintptr_t)child_region;

	ck_assert_int_eq(pyx_mem_new_pid(pid, &mem), 0);
	/* Within a page, across one boundary, across two. */
	ck_assert_int_eq(pyx_mem_read(mem, base + 100, buf, 50), 0);
	for (size_t i = 0; i < 50; i++)
		ck_assert_uint_eq(buf[i], (uint8_t)((100 + i) ^ 0x5a));
	ck_assert_int_eq(pyx_mem_read(mem, base + PAGE - 3, buf, 10), 0);
	for (size_t i = 0; i < 10; i++)
		ck_assert_uint_eq(buf[i], (uint8_t)((PAGE - 3 + i) ^ 0x5a));
	ck_assert_int_eq(pyx_mem_read(mem, base + 1, buf, 3 * PAGE - 2), 0);
	for (size_t i = 0; i < 3 * PAGE - 2; i++)
		ck_assert_uint_eq(buf[i], (uint8_t)((1 + i) ^ 0x5a));
	ck_assert_int_eq(pyx_mem_read_direct(mem, base, buf, 3 * PAGE), 0);
	for (size_t i = 0; i < 3 * PAGE; i++)
		ck_assert_uint_eq(buf[i], (uint8_t)(i ^ 0x5a));
	ck_assert_uint_eq(child_region[5], 0); /* ours is untouched */
	pyx_mem_free(mem);
	reap(pid);
}
END_TEST

START_TEST(test_unmapped)
{
	struct pyx_mem *mem;
	struct pyx_mem_stats st0, st1;
	char buf[16];
	void *p = mmap(NULL, PAGE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1,
		       0);

	ck_assert_ptr_ne(p, MAP_FAILED);
	munmap(p, PAGE);
	ck_assert_int_eq(pyx_mem_new_pid(getpid(), &mem), 0);
	/* Without maps, the system call says EFAULT. */
	ck_assert_int_eq(pyx_mem_read(mem, (uintptr_t)p, buf, 8),
			 -PYX_E_BAD_MEMORY);
	ck_assert_int_eq(pyx_mem_read_direct(mem, (uintptr_t)p + 8, buf, 8),
			 -PYX_E_BAD_MEMORY);
	ck_assert_int_eq(pyx_mem_read_cstr(mem, (uintptr_t)p, buf, sizeof(buf)),
			 -PYX_E_BAD_MEMORY);
	ck_assert_str_eq(buf, "");
	/* Refused before any system call: NULL, wrap-around. */
	pyx_mem_get_stats(mem, &st0);
	ck_assert_int_eq(pyx_mem_read(mem, 0, buf, 8), -PYX_E_BAD_MEMORY);
	ck_assert_int_eq(pyx_mem_read(mem, UINT64_MAX - 3, buf, 8),
			 -PYX_E_BAD_MEMORY);
	ck_assert(!pyx_mem_valid(mem, UINT64_MAX - 3, 8));
	ck_assert(!pyx_mem_valid(mem, 0, 1));
	ck_assert(pyx_mem_valid(mem, 4096, 8)); /* no proc: not checked */
	pyx_mem_get_stats(mem, &st1);
	ck_assert_uint_eq(st0.syscalls, st1.syscalls);
	pyx_mem_free(mem);
}
END_TEST

START_TEST(test_maps_check)
{
	struct pyx_target *proc;
	struct pyx_mem *mem;
	struct pyx_mem_stats st0, st1;
	uint8_t *p, buf[32];
	void *gone;

	/* rw page + r page: two adjacent mappings; a PROT_NONE third. */
	p = mmap(NULL, 3 * PAGE, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ck_assert_ptr_ne(p, MAP_FAILED);
	memset(p, 0x42, 2 * PAGE);
	ck_assert_int_eq(mprotect(p + PAGE, PAGE, PROT_READ), 0);
	ck_assert_int_eq(mprotect(p + 2 * PAGE, PAGE, PROT_NONE), 0);
	gone = mmap(NULL, PAGE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ck_assert_ptr_ne(gone, MAP_FAILED);
	munmap(gone, PAGE);

	ck_assert_int_eq(pyx_target_open_pid(getpid(), &proc), 0);
	mem = pyx_target_mem(proc);
	ck_assert_ptr_nonnull(mem);
	ck_assert(pyx_mem_valid(mem, (uintptr_t)p + PAGE - 8, 16));
	ck_assert(pyx_mem_valid(mem, (uintptr_t)p, 2 * PAGE));
	ck_assert(!pyx_mem_valid(mem, (uintptr_t)p + 2 * PAGE - 8, 16));
	ck_assert(!pyx_mem_valid(mem, (uintptr_t)gone, 1));
	ck_assert_int_eq(pyx_mem_read(mem, (uintptr_t)p + PAGE - 8, buf, 16),
			 0);
	ck_assert_uint_eq(buf[15], 0x42);

	pyx_mem_get_stats(mem, &st0);
	ck_assert_int_eq(pyx_mem_read(mem, (uintptr_t)gone, buf, 8),
			 -PYX_E_BAD_MEMORY);
	ck_assert_ptr_nonnull(strstr(pyx_err_detail(), "not mapped"));
	ck_assert_int_eq(pyx_mem_read(mem, (uintptr_t)p + 2 * PAGE, buf, 8),
			 -PYX_E_BAD_MEMORY);
	ck_assert_int_eq(pyx_mem_read_direct(mem, (uintptr_t)p + 2 * PAGE - 4,
					     buf, 8),
			 -PYX_E_BAD_MEMORY);
	pyx_mem_get_stats(mem, &st1);
	ck_assert_uint_eq(st0.syscalls, st1.syscalls);
	pyx_target_free(proc);
	munmap(p, 3 * PAGE);
}
END_TEST

START_TEST(test_cstr)
{
	struct pyx_target *proc;
	struct pyx_mem *mem;
	char *p, buf[64];
	uintptr_t end;

	/* A string that ends right before an unreadable page. */
	p = mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ck_assert_ptr_ne(p, MAP_FAILED);
	memset(p, 'x', PAGE);
	ck_assert_int_eq(mprotect(p + PAGE, PAGE, PROT_NONE), 0);
	memcpy(p + PAGE - 6, "hello", 6);
	end = (uintptr_t)p + PAGE;

	ck_assert_int_eq(pyx_target_open_pid(getpid(), &proc), 0);
	mem = pyx_target_mem(proc);
	ck_assert_int_eq(pyx_mem_read_cstr(mem, end - 6, buf, sizeof(buf)), 0);
	ck_assert_str_eq(buf, "hello");
	/* Cut at n-1. */
	ck_assert_int_eq(pyx_mem_read_cstr(mem, end - 6, buf, 3), 0);
	ck_assert_str_eq(buf, "he");
	ck_assert_int_eq(pyx_mem_read_cstr(mem, end - 6, buf, 1), 0);
	ck_assert_str_eq(buf, "");
	/* Long run of 'x' cut, not an error. */
	ck_assert_int_eq(pyx_mem_read_cstr(mem, (uintptr_t)p, buf, sizeof(buf)),
			 0);
	ck_assert_uint_eq(strlen(buf), sizeof(buf) - 1);
	/* No NUL before the unreadable page. */
	p[PAGE - 1] = 'y';
	pyx_mem_invalidate(mem);
	ck_assert_int_eq(pyx_mem_read_cstr(mem, end - 6, buf, sizeof(buf)),
			 -PYX_E_BAD_MEMORY);
	ck_assert_str_eq(buf, "");
	ck_assert_int_eq(pyx_mem_read_cstr(mem, end - 6, buf, 0),
			 -PYX_E_USAGE);
	pyx_target_free(proc);
	munmap(p, 2 * PAGE);
}
END_TEST

START_TEST(test_u64)
{
	struct pyx_mem *mem;
	uint64_t words[2] = { 1, 0xdeadbeefcafef00du }, v = 7;

	ck_assert_int_eq(pyx_mem_new_pid(getpid(), &mem), 0);
	ck_assert_int_eq(pyx_mem_read_u64(mem, (uintptr_t)&words[1], &v), 0);
	ck_assert_uint_eq(v, words[1]);
	ck_assert_int_eq(pyx_mem_read_u64(mem, (uintptr_t)&words[0] + 4, &v),
			 -PYX_E_BAD_MEMORY);
	ck_assert_uint_eq(v, 0);
	pyx_mem_free(mem);
}
END_TEST

START_TEST(test_cache)
{
	struct shared *sh;
	pid_t pid = spawn_filled(&sh);
	struct pyx_mem *mem;
	struct pyx_mem_stats st0, st1;
	uintptr_t base = (uintptr_t)child_region;
	uint8_t b[16];

	ck_assert_int_eq(pyx_mem_new_pid(pid, &mem), 0);
	ck_assert_int_eq(pyx_mem_read(mem, base + 8, b, 8), 0);
	pyx_mem_get_stats(mem, &st0);
	ck_assert_uint_eq(st0.syscalls, 1);
	ck_assert_uint_eq(st0.bytes, PAGE);
	ck_assert_uint_eq(st0.hits, 0);
	/* Same page: no system call. */
	ck_assert_int_eq(pyx_mem_read(mem, base + 200, b, 16), 0);
	ck_assert_int_eq(pyx_mem_read(mem, base + 8, b, 8), 0);
	pyx_mem_get_stats(mem, &st1);
	ck_assert_uint_eq(st1.syscalls, 1);
	ck_assert_uint_eq(st1.hits, 2);
	ck_assert_uint_eq(b[0], (uint8_t)(8 ^ 0x5a));
	/* Spanning into the second page: one more page read. */
	ck_assert_int_eq(pyx_mem_read(mem, base + PAGE - 4, b, 8), 0);
	pyx_mem_get_stats(mem, &st1);
	ck_assert_uint_eq(st1.syscalls, 2);
	ck_assert_uint_eq(st1.hits, 3);
	ck_assert_uint_eq(b[4], (uint8_t)(PAGE ^ 0x5a));

	/* Invalidate: the child's change is seen only after it. */
	sh->cmd = 1;
	wait_flag(&sh->ack, 1);
	ck_assert_int_eq(pyx_mem_read(mem, base, b, 1), 0);
	ck_assert_uint_eq(b[0], 0x5a); /* stale, from the cache */
	pyx_mem_invalidate(mem);
	ck_assert_int_eq(pyx_mem_read(mem, base, b, 1), 0);
	ck_assert_uint_eq(b[0], 0xee);
	pyx_mem_get_stats(mem, &st1);
	ck_assert_uint_eq(st1.syscalls, 3);
	pyx_mem_free(mem);
	reap(pid);
}
END_TEST

START_TEST(test_large_direct)
{
	size_t len = 256 * 1024;
	uint8_t *src = malloc(len), *dst = malloc(len);
	struct pyx_mem *mem;
	struct pyx_mem_stats st;

	ck_assert_ptr_nonnull(src);
	ck_assert_ptr_nonnull(dst);
	for (size_t i = 0; i < len; i++)
		src[i] = (uint8_t)(i * 13);
	ck_assert_int_eq(pyx_mem_new_pid(getpid(), &mem), 0);
	ck_assert_int_eq(pyx_mem_read(mem, (uintptr_t)src, dst, len), 0);
	ck_assert_mem_eq(src, dst, len);
	pyx_mem_get_stats(mem, &st);
	ck_assert_uint_eq(st.syscalls, 1);
	ck_assert_uint_eq(st.bytes, len);
	ck_assert_uint_eq(st.hits, 0);
	pyx_mem_free(mem);
	free(src);
	free(dst);
}
END_TEST

static void child_exit(void *arg)
{
	_exit(0);
}

START_TEST(test_dead)
{
	struct pyx_mem *mem;
	uint64_t v;
	char path[64];
	pid_t pid = spawn(child_exit, NULL);
	int rc;

	/* A zombie (not reaped yet). */
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	for (int i = 0; i < 2000; i++) {
		char buf[256] = "";
		FILE *f = fopen(path, "r");

		if (f) {
			if (!fgets(buf, sizeof(buf), f))
				buf[0] = '\0';
			fclose(f);
		}
		if (strstr(buf, ") Z "))
			break;
		msleep(1);
	}
	ck_assert_int_eq(pyx_mem_new_pid(pid, &mem), 0);
	ck_assert_int_eq(pyx_mem_read_u64(mem, (uintptr_t)&v, &v),
			 -PYX_E_EXITED);
	reap(pid);
	/* Reaped. */
	rc = pyx_mem_read_u64(mem, (uintptr_t)&v, &v);
	ck_assert(rc == -PYX_E_EXITED || rc == -PYX_E_NO_PROCESS);
	pyx_mem_free(mem);
}
END_TEST

/* pyx_mem_read_ranges(): many small ranges in few system calls (more
 * than one call's iovecs), one unreadable range failed and the others
 * read; the same through the pread fallback. */
static void check_ranges(bool force_pread)
{
	enum { N = 700, LEN = 48 };
	struct shared *sh;
	pid_t pid = spawn_filled(&sh);
	struct pyx_mem *mem;
	struct pyx_mem_stats st0, st1;
	struct pyx_mem_range r[N];
	uintptr_t base = (uintptr_t)child_region;
	static uint8_t buf[N][LEN];
	void *gone = mmap(NULL, PAGE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS,
			  -1, 0);

	ck_assert_ptr_ne(gone, MAP_FAILED);
	munmap(gone, PAGE);
	ck_assert_int_eq(pyx_mem_new_pid(pid, &mem), 0);
	if (force_pread)
		pyx_mem_test_force_pread(mem);
	for (size_t i = 0; i < N; i++) {
		size_t off = (i * 17) % (3 * PAGE - LEN);

		r[i] = (struct pyx_mem_range){ base + off, buf[i], LEN, true };
	}
	r[N / 2].addr = (uintptr_t)gone;
	pyx_mem_get_stats(mem, &st0);
	ck_assert_int_eq(pyx_mem_read_ranges(mem, r, N), 0);
	pyx_mem_get_stats(mem, &st1);
	for (size_t i = 0; i < N; i++) {
		size_t off = (i * 17) % (3 * PAGE - LEN);

		ck_assert_int_eq(r[i].failed, i == N / 2);
		for (size_t k = 0; k < LEN && i != N / 2; k++)
			ck_assert_uint_eq(buf[i][k], (uint8_t)((off + k) ^ 0x5a));
	}
	if (!force_pread)
		/* two calls of 512 iovecs and one more after the fault */
		ck_assert_uint_le(st1.syscalls - st0.syscalls, 4);
	ck_assert_int_eq(pyx_mem_read_ranges(mem, r, 0), 0);
	pyx_mem_free(mem);
	reap(pid);
}

START_TEST(test_read_ranges)
{
	check_ranges(false);
}
END_TEST

START_TEST(test_read_ranges_pread)
{
	check_ranges(true);
}
END_TEST

START_TEST(test_pread_fallback)
{
	struct shared *sh;
	pid_t pid = spawn_filled(&sh);
	struct pyx_mem *mem;
	struct pyx_mem_stats st;
	uintptr_t base = (uintptr_t)child_region;
	uint8_t buf[3 * PAGE];
	void *gone;
	int rc;

	gone = mmap(NULL, PAGE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ck_assert_ptr_ne(gone, MAP_FAILED);
	munmap(gone, PAGE);

	ck_assert_int_eq(pyx_mem_new_pid(pid, &mem), 0);
	pyx_mem_test_force_pread(mem);
	ck_assert(pyx_mem_test_uses_pread(mem));
	ck_assert_int_eq(pyx_mem_read(mem, base + PAGE - 5, buf, 10), 0);
	for (size_t i = 0; i < 10; i++)
		ck_assert_uint_eq(buf[i], (uint8_t)((PAGE - 5 + i) ^ 0x5a));
	ck_assert_int_eq(pyx_mem_read_direct(mem, base, buf, 3 * PAGE), 0);
	for (size_t i = 0; i < 3 * PAGE; i++)
		ck_assert_uint_eq(buf[i], (uint8_t)(i ^ 0x5a));
	pyx_mem_get_stats(mem, &st);
	ck_assert_uint_ge(st.syscalls, 3);
	ck_assert_int_eq(pyx_mem_read(mem, (uintptr_t)gone, buf, 8),
			 -PYX_E_BAD_MEMORY);
	ck_assert_int_eq(pyx_mem_read(mem, 0xffff800000000000u, buf, 8),
			 -PYX_E_BAD_MEMORY);
	reap(pid);
	pyx_mem_invalidate(mem);
	rc = pyx_mem_read(mem, base, buf, 8);
	ck_assert_msg(rc == -PYX_E_EXITED, "rc %d: %s", rc, pyx_err_detail());
	pyx_mem_free(mem);
}
END_TEST

#define SNAP_BOUND (256u << 20)

/* Snapshot mode: the copy is served after the target changed; outside
 * it, live reads; release goes back to live; a bound truncates. */
static void snapshot_case(bool force_pread)
{
	struct shared *sh;
	/* Low in the address space: copied first, before the bound (under
	 * ASan the shadow alone maps terabytes). */
	pid_t pid = spawn_filled_at(&sh, (void *)0x50000000);
	struct pyx_target *proc;
	struct pyx_mem *mem;
	struct pyx_mem_snapshot_info si;
	uintptr_t base = (uintptr_t)child_region;
	const uint8_t *p;
	uint8_t *w, buf[3 * PAGE];

	ck_assert_int_eq(pyx_target_open_pid(pid, &proc), 0);
	mem = pyx_target_mem(proc);
	if (force_pread)
		pyx_mem_test_force_pread(mem);
	ck_assert(!pyx_mem_has_snapshot(mem));
	ck_assert_uint_ge(pyx_mem_snapshot_size(mem), 3 * PAGE);
	ck_assert_int_eq(pyx_mem_snapshot_reserve(mem, 1u << 20, PAGE), 0);
	ck_assert_int_eq(pyx_mem_snapshot(mem, SNAP_BOUND, &si), 0);
	ck_assert(pyx_mem_has_snapshot(mem));
	ck_assert_uint_ge(si.bytes, 3 * PAGE);
	ck_assert_ptr_nonnull(pyx_mem_snapshot_ptr(mem, base, 3 * PAGE));
	ck_assert_uint_ge(si.mappings, 1);
	/* The child changes its first byte: the copy keeps the old one. */
	sh->cmd = 1;
	wait_flag(&sh->ack, 1);
	ck_assert_int_eq(pyx_mem_read(mem, base, buf, 3 * PAGE), 0);
	for (size_t i = 0; i < 3 * PAGE; i++)
		ck_assert_uint_eq(buf[i], (uint8_t)(i ^ 0x5a));
	p = pyx_mem_snapshot_ptr(mem, base + PAGE, 16);
	ck_assert_ptr_nonnull(p);
	ck_assert_uint_eq(p[1], (uint8_t)((PAGE + 1) ^ 0x5a));
	/* Writable, private: a mark stays in the copy only. */
	w = pyx_mem_snapshot_wptr(mem, base + 8, 8);
	ck_assert_ptr_nonnull(w);
	w[0] = 0x77;
	ck_assert_int_eq(pyx_mem_read(mem, base + 8, buf, 1), 0);
	ck_assert_uint_eq(buf[0], 0x77);
	/* Read-only mappings (the text of this program) are not copied. */
	ck_assert_ptr_null(pyx_mem_snapshot_ptr(mem, (uintptr_t)&snapshot_case, 8));
	ck_assert_int_eq(pyx_mem_read(mem, (uintptr_t)&snapshot_case, buf, 8), 0);
	/* Released: live again. */
	pyx_mem_snapshot_release(mem);
	pyx_mem_snapshot_release(mem);
	ck_assert(!pyx_mem_has_snapshot(mem));
	ck_assert_ptr_null(pyx_mem_snapshot_ptr(mem, base, 8));
	pyx_mem_invalidate(mem);
	ck_assert_int_eq(pyx_mem_read(mem, base, buf, 16), 0);
	ck_assert_uint_eq(buf[0], 0xee);
	ck_assert_uint_eq(buf[8], (uint8_t)(8 ^ 0x5a));
	/* A bound of one page: truncated, and says so. */
	ck_assert_int_eq(pyx_mem_snapshot(mem, PAGE, &si), 0);
	ck_assert(si.truncated);
	ck_assert_uint_le(si.bytes, PAGE);
	ck_assert_uint_gt(si.skipped_bytes, 0);
	ck_assert_uint_gt(si.skipped_mappings, 0);
	/* What the copy left out is refused, not read live (that would mix
	 * two moments of the target); read-only mappings are still read. */
	ck_assert_ptr_null(pyx_mem_snapshot_ptr(mem, base, 8));
	{
		struct pyx_mem_stats st0, st1;

		pyx_mem_get_stats(mem, &st0);
		ck_assert_int_eq(pyx_mem_read(mem, base, buf, 8),
				 -PYX_E_BAD_MEMORY);
		ck_assert_msg(strstr(pyx_err_detail(), "not copied"), "%s",
			      pyx_err_detail());
		ck_assert_int_eq(pyx_mem_read_direct(mem, base + PAGE, buf, 8),
				 -PYX_E_BAD_MEMORY);
		pyx_mem_get_stats(mem, &st1);
		ck_assert_uint_eq(st0.syscalls, st1.syscalls);
	}
	ck_assert_int_eq(pyx_mem_read(mem, (uintptr_t)&snapshot_case, buf, 8), 0);
	pyx_mem_snapshot_release(mem);
	pyx_target_free(proc);
	reap(pid);
}

START_TEST(test_snapshot)
{
	snapshot_case(false);
}
END_TEST

START_TEST(test_snapshot_pread)
{
	snapshot_case(true);
}
END_TEST

START_TEST(test_snapshot_dead)
{
	pid_t pid = spawn(NULL, NULL);
	struct pyx_target *proc;
	struct pyx_mem_snapshot_info si;
	int rc;

	ck_assert_int_eq(pyx_target_open_pid(pid, &proc), 0);
	reap(pid);
	rc = pyx_mem_snapshot(pyx_target_mem(proc), SNAP_BOUND, &si);
	ck_assert(rc == -PYX_E_EXITED || rc == -PYX_E_BAD_MEMORY);
	ck_assert(!pyx_mem_has_snapshot(pyx_target_mem(proc)) ||
		  rc == -PYX_E_BAD_MEMORY);
	pyx_target_free(proc);
}
END_TEST

/* A mapping of 64 pages of which the child touched 3: the copy holds
 * those 3 (not 64); the others read as zeros from the copy, even after
 * the child writes them. */
#define SPARSE_PAGES 64
static uint8_t *sparse; /* set before fork */

static void child_sparse(void *arg)
{
	struct shared *sh = arg;

	sparse[0] = 1;
	sparse[10 * PAGE] = 2;
	sparse[11 * PAGE + 5] = 3;
	sh->ready = 1;
	for (;;) {
		if (sh->cmd == 1) {
			sparse[5 * PAGE] = 0x55; /* a page never touched */
			__sync_synchronize();
			sh->ack = 1;
			sh->cmd = 0;
		}
		msleep(1);
	}
}

static void sparse_case(bool no_scan)
{
	struct shared *sh = shared_new();
	struct pyx_target *proc;
	struct pyx_mem *mem;
	struct pyx_mem_snapshot_info si;
	uintptr_t base;
	uint8_t buf[2 * PAGE];
	uint64_t before;
	pid_t pid;

	/* Low: copied first, before the bound (ASan maps terabytes). */
	sparse = mmap((void *)0x58000000, SPARSE_PAGES * PAGE,
		      PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1,
		      0);
	ck_assert_ptr_ne(sparse, MAP_FAILED);
	base = (uintptr_t)sparse;
	pid = spawn(child_sparse, sh);
	wait_flag(&sh->ready, 1);
	ck_assert_int_eq(pyx_target_open_pid(pid, &proc), 0);
	mem = pyx_target_mem(proc);
	if (no_scan)
		pyx_mem_test_no_pagemap_scan(mem);
	ck_assert_int_eq(pyx_mem_snapshot(mem, SNAP_BOUND, &si), 0);
	ck_assert_uint_ge(si.virtual_bytes, SPARSE_PAGES * PAGE);
	ck_assert_uint_lt(si.bytes, si.virtual_bytes);
	/* The 3 pages touched are in the copy, whole. */
	ck_assert_ptr_nonnull(pyx_mem_snapshot_ptr(mem, base, PAGE));
	ck_assert_ptr_nonnull(pyx_mem_snapshot_ptr(mem, base + 10 * PAGE,
						   2 * PAGE));
	ck_assert_ptr_null(pyx_mem_snapshot_ptr(mem, base + 5 * PAGE, 8));
	/* The child writes a page it never touched: the copy says zeros,
	 * as the target's memory did at the copy, without a live read. */
	sh->cmd = 1;
	wait_flag(&sh->ack, 1);
	before = si.bytes;
	memset(buf, 0xff, sizeof(buf));
	ck_assert_int_eq(pyx_mem_read(mem, base + 5 * PAGE - 8, buf, 16), 0);
	for (int i = 0; i < 16; i++)
		ck_assert_uint_eq(buf[i], 0);
	/* Across a copied page and a hole. */
	ck_assert_int_eq(pyx_mem_read(mem, base + 11 * PAGE, buf, 2 * PAGE), 0);
	ck_assert_uint_eq(buf[5], 3);
	ck_assert_uint_eq(buf[PAGE + 5], 0);
	ck_assert_uint_eq(buf[2 * PAGE - 1], 0);
	ck_assert_uint_eq(before, si.bytes);
	pyx_mem_snapshot_release(mem);
	/* Live again: the child's write. */
	pyx_mem_invalidate(mem);
	ck_assert_int_eq(pyx_mem_read(mem, base + 5 * PAGE, buf, 1), 0);
	ck_assert_uint_eq(buf[0], 0x55);
	/* The size estimate counts populated pages too (reading pagemap
	 * entries, a mapping of more than 64 GiB counts whole: ASan's). */
	if (!no_scan)
		ck_assert_uint_lt(pyx_mem_snapshot_size(mem), si.virtual_bytes);
	pyx_target_free(proc);
	reap(pid);
	munmap(sparse, SPARSE_PAGES * PAGE);
}

START_TEST(test_snapshot_sparse)
{
	sparse_case(false);
}
END_TEST

START_TEST(test_snapshot_sparse_pagemap)
{
	sparse_case(true);
}
END_TEST

/* A file mapped MAP_PRIVATE and writable (libpython's .data): a page the
 * child never touched is not present, but its bytes are the file's, not
 * zeros (never faulted, reclaimed clean, MADV_PAGEOUT). */
#define FILE_PAGES 16
#define FILE_MAP ((void *)0x5c000000)
static char file_path[64];

static uint8_t file_byte(size_t i)
{
	return (uint8_t)(i * 7 + 3) | 1;
}

static void child_file(void *arg)
{
	struct shared *sh = arg;
	uint8_t *p;
	int fd = open(file_path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		_exit(2);
	/* Mapped here, after the fork: no page of it faulted in. */
	p = mmap(FILE_MAP, FILE_PAGES * PAGE, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_FIXED_NOREPLACE, fd, 0);
	if (p != FILE_MAP)
		_exit(3);
	close(fd);
	p[0] = 0xee; /* page 0: written, a private copy */
	sh->ready = 1;
	for (;;)
		msleep(10);
}

static void file_case(bool no_scan)
{
	struct shared *sh = shared_new();
	struct pyx_target *proc;
	struct pyx_mem *mem;
	struct pyx_mem_snapshot_info si;
	uintptr_t base = (uintptr_t)FILE_MAP;
	uint8_t *data, buf[2 * PAGE];
	pid_t pid;
	int fd;

	snprintf(file_path, sizeof(file_path), "/tmp/u-memory-XXXXXX");
	fd = mkstemp(file_path);
	ck_assert_int_ge(fd, 0);
	data = malloc(FILE_PAGES * PAGE);
	ck_assert_ptr_nonnull(data);
	for (size_t i = 0; i < FILE_PAGES * PAGE; i++)
		data[i] = file_byte(i);
	ck_assert_int_eq(write(fd, data, FILE_PAGES * PAGE), FILE_PAGES * PAGE);
	close(fd);
	pid = spawn(child_file, sh);
	wait_flag(&sh->ready, 1);
	ck_assert_int_eq(pyx_target_open_pid(pid, &proc), 0);
	mem = pyx_target_mem(proc);
	if (no_scan)
		pyx_mem_test_no_pagemap_scan(mem);
	ck_assert_int_eq(pyx_mem_snapshot(mem, SNAP_BOUND, &si), 0);
	ck_assert_int_eq(pyx_mem_read(mem, base, buf, 8), 0);
	ck_assert_uint_eq(buf[0], 0xee);
	ck_assert_uint_eq(buf[1], file_byte(1));
	/* Pages never touched: the file's bytes. */
	memset(buf, 0, sizeof(buf));
	ck_assert_int_eq(pyx_mem_read(mem, base + 5 * PAGE - 8, buf, 16), 0);
	for (int i = 0; i < 16; i++)
		ck_assert_uint_eq(buf[i], file_byte(5 * PAGE - 8 + (size_t)i));
	ck_assert_int_eq(pyx_mem_read(mem, base + 14 * PAGE, buf, 2 * PAGE), 0);
	for (size_t i = 0; i < 2 * PAGE; i++)
		ck_assert_uint_eq(buf[i], file_byte(14 * PAGE + i));
	pyx_mem_snapshot_release(mem);
	pyx_target_free(proc);
	reap(pid);
	unlink(file_path);
	free(data);
}

START_TEST(test_snapshot_file_backed)
{
	file_case(false);
}
END_TEST

START_TEST(test_snapshot_file_backed_pagemap)
{
	file_case(true);
}
END_TEST


/* ---- a copy on several threads ----------------------------------------- */

#define PAR_MAPS 3
#define PAR_PAGES (6u << 10) /* 24 MiB a mapping: shares of 16 MiB+ */
#define PAR_BASE ((uintptr_t)0x60000000)

static uint64_t par_word(uintptr_t addr)
{
	return (uint64_t)addr * UINT64_C(0x9E3779B97F4A7C15);
}

static void child_par(void *arg)
{
	struct shared *sh = arg;

	for (int m = 0; m < PAR_MAPS; m++) {
		/* A hole of one page between mappings: three ranges. */
		uintptr_t b = PAR_BASE + (uintptr_t)m * (PAR_PAGES + 1) * PAGE;
		uint64_t *p = mmap((void *)b, PAR_PAGES * PAGE,
				   PROT_READ | PROT_WRITE,
				   MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE,
				   -1, 0);

		if (p == MAP_FAILED)
			_exit(3);
		/* Every other page touched: runs the copy must place. */
		for (size_t pg = 0; pg < PAR_PAGES; pg += 2)
			for (size_t w = 0; w < PAGE / 8; w++) {
				uintptr_t a = b + pg * PAGE + w * 8;

				p[(a - b) / 8] = par_word(a);
			}
	}
	sh->ready = 1;
	for (;;)
		msleep(10);
}

struct par_check {
	struct pyx_mem *mem;
	unsigned seed;
	size_t bad;
};

/* Reads through pyx_mem_read and the zero-copy pointer, from one thread
 * of several: each sees the copy's words (the run hint is per thread). */
static void *par_reader(void *arg)
{
	struct par_check *c = arg;
	unsigned x = c->seed;

	for (int i = 0; i < 200000; i++) {
		int m;
		size_t pg, w;
		uintptr_t a;
		uint64_t v = 1;
		const uint64_t *p;

		x = x * 1103515245u + 12345u;
		m = (int)((x >> 8) % PAR_MAPS);
		pg = (x >> 4) % PAR_PAGES;
		w = (x >> 16) % (PAGE / 8);
		a = PAR_BASE + (uintptr_t)m * (PAR_PAGES + 1) * PAGE +
		    pg * PAGE + w * 8;
		if (pyx_mem_read_u64(c->mem, a, &v) ||
		    v != (pg % 2 ? 0 : par_word(a)))
			c->bad++;
		p = pyx_mem_snapshot_ptr(c->mem, a, 8);
		if (pg % 2 == 0 && (!p || *p != par_word(a)))
			c->bad++;
	}
	return NULL;
}

static void parallel_case(unsigned jobs, bool force_pread)
{
	struct shared *sh = shared_new();
	pid_t pid = spawn(child_par, sh);
	struct pyx_target *proc;
	struct pyx_mem *mem;
	struct pyx_mem_snapshot_info si;
	struct par_check chk[4];
	pthread_t th[4];

	wait_flag(&sh->ready, 1);
	ck_assert_int_eq(pyx_target_open_pid(pid, &proc), 0);
	mem = pyx_target_mem(proc);
	if (force_pread)
		pyx_mem_test_force_pread(mem);
	pyx_mem_set_jobs(mem, jobs);
	ck_assert_int_eq(pyx_mem_snapshot_reserve(mem, pyx_mem_snapshot_size(mem),
						  1u << 20), 0);
	ck_assert_int_eq(pyx_mem_snapshot(mem, SNAP_BOUND, &si), 0);
	ck_assert_uint_ge(si.bytes, PAR_MAPS * PAR_PAGES / 2 * PAGE);
	/* Every word of every run, in place. */
	for (int m = 0; m < PAR_MAPS; m++) {
		uintptr_t b = PAR_BASE + (uintptr_t)m * (PAR_PAGES + 1) * PAGE;

		for (size_t pg = 0; pg < PAR_PAGES; pg += 2) {
			const uint64_t *p = pyx_mem_snapshot_ptr(mem, b + pg * PAGE,
								 PAGE);

			ck_assert_ptr_nonnull(p);
			for (size_t w = 0; w < PAGE / 8; w++)
				if (p[w] != par_word(b + pg * PAGE + w * 8))
					ck_abort_msg("jobs %u: word %zu of page "
						     "%zu of mapping %d", jobs,
						     w, pg, m);
		}
	}
	for (int t = 0; t < 4; t++) {
		chk[t] = (struct par_check){ mem, 17u + (unsigned)t * 7919u, 0 };
		ck_assert_int_eq(pthread_create(&th[t], NULL, par_reader,
						&chk[t]), 0);
	}
	for (int t = 0; t < 4; t++) {
		pthread_join(th[t], NULL);
		ck_assert_uint_eq(chk[t].bad, 0);
	}
	pyx_mem_snapshot_release(mem);
	pyx_target_free(proc);
	reap(pid);
}

START_TEST(test_snapshot_parallel)
{
	parallel_case(1, false);
	parallel_case(3, false);
	parallel_case(8, false);
	parallel_case(3, true); /* /proc/PID/mem: one thread */
}
END_TEST

static Suite *memory_suite(void)
{
	Suite *s = suite_create("memory");
	TCase *tc = tcase_create("core");

	tcase_set_timeout(tc, 10);
	tcase_add_test(tc, test_self_read);
	tcase_add_test(tc, test_child_read);
	tcase_add_test(tc, test_unmapped);
	tcase_add_test(tc, test_maps_check);
	tcase_add_test(tc, test_cstr);
	tcase_add_test(tc, test_u64);
	tcase_add_test(tc, test_cache);
	tcase_add_test(tc, test_large_direct);
	tcase_add_test(tc, test_dead);
	tcase_add_test(tc, test_pread_fallback);
	tcase_add_test(tc, test_read_ranges);
	tcase_add_test(tc, test_read_ranges_pread);
	tcase_add_test(tc, test_snapshot);
	tcase_add_test(tc, test_snapshot_pread);
	tcase_add_test(tc, test_snapshot_dead);
	tcase_add_test(tc, test_snapshot_sparse);
	tcase_add_test(tc, test_snapshot_sparse_pagemap);
	tcase_add_test(tc, test_snapshot_file_backed);
	tcase_add_test(tc, test_snapshot_file_backed_pagemap);
	tcase_add_test(tc, test_snapshot_parallel);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return pyx_unit_run(memory_suite());
}
