/* Unit tests of lib/unwind.c and lib/native.c: unwinding a stopped child
 * blocked in pause() under known functions (one of them inlined), symbols
 * and source lines of its frames, threads that cannot be unwound, and the
 * merge of native and Python frames (3.8-3.10 and 3.11+ pairing, stacks
 * that disagree). */
#include <check.h>
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "native.h"
#include "pyxray/error.h"
#include "pyxray/target.h"
#include "pyxray/unwind.h"
#include "walk.h"

#include "unit.h"

/* ---- a child blocked under known functions ---------------------------- */

static volatile int *ready;
static volatile int sink;

__attribute__((noinline, noclone)) static void u_leaf(void)
{
	*ready = 1;
	pause();
	sink++;
}

static inline __attribute__((always_inline)) void u_inl(void)
{
	u_leaf();
	sink++; /* not a tail call */
}

__attribute__((noinline, noclone)) static void u_middle(void)
{
	u_inl();
	sink++;
}

__attribute__((noinline, noclone)) static void u_outer(void)
{
	u_middle();
	sink++;
}

static pid_t spawn_blocked_in(void (*fn)(void));

static char task_state(pid_t pid)
{
	char path[64], buf[512] = "", *p;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if (!(f = fopen(path, "r")))
		return 0;
	if (!fgets(buf, sizeof(buf), f))
		buf[0] = '\0';
	fclose(f);
	p = strrchr(buf, ')');
	return p && p[1] == ' ' ? p[2] : 0;
}

/* A stack a hostile or broken target could have: the thread blocks with
 * its stack pointer (and frame pointer) in a region of plausible return
 * addresses into u_leaf, each a frame of its own, up to an unreadable
 * page.  Unwinding must end there, or at the frame bound, with an error. */
#define GARBAGE_BYTES (64u << 10)

static void u_corrupt(void)
{
	uint64_t *g = mmap(NULL, GARBAGE_BYTES + 4096, PROT_READ | PROT_WRITE,
			   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (g == MAP_FAILED)
		_exit(1);
	mprotect((char *)g + GARBAGE_BYTES, 4096, PROT_NONE);
	for (size_t i = 0; i < GARBAGE_BYTES / sizeof(*g); i++)
		g[i] = (uint64_t)(uintptr_t)u_leaf + 4;
	*ready = 1;
#if defined(__x86_64__)
	/* pause(2) with the stack and frame pointers in the garbage. */
	__asm__ volatile("mov %0, %%rsp\n\t"
			 "mov %0, %%rbp\n\t"
			 "1: mov $34, %%eax\n\t"
			 "syscall\n\t"
			 "jmp 1b"
			 : : "r"(g + 16) : "memory", "rax", "rcx", "r11");
#endif
	for (;;)
		pause();
}

/* Fork a child that blocks in pause() under u_outer/u_middle/u_leaf, and
 * wait until it sleeps there. */
static pid_t spawn_blocked(void)
{
	return spawn_blocked_in(u_outer);
}

static pid_t spawn_blocked_in(void (*fn)(void))
{
	pid_t pid;

	ready = mmap(NULL, sizeof(*ready), PROT_READ | PROT_WRITE,
		     MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ck_assert_ptr_ne((void *)ready, MAP_FAILED);
	*ready = 0;
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		alarm(20);
		fn();
		_exit(0);
	}
	for (int i = 0; i < 5000 && !(*ready && task_state(pid) == 'S'); i++)
		usleep(1000);
	ck_assert(*ready && task_state(pid) == 'S');
	return pid;
}


static int find(const struct pyx_native_frame *f, size_t n, size_t from,
		const char *name)
{
	for (size_t i = from; i < n; i++)
		if (f[i].function && strcmp(f[i].function, name) == 0)
			return (int)i;
	return -1;
}

static bool ends_with(const char *s, const char *tail)
{
	size_t a = s ? strlen(s) : 0, b = strlen(tail);

	return a >= b && strcmp(s + a - b, tail) == 0;
}

START_TEST(test_unwind_child)
{
	struct pyx_unwind_frame raw[PYX_UNWIND_MAX_FRAMES];
	struct pyx_native_frame *f = NULL;
	struct pyx_symbolizer *sy;
	struct pyx_unwinder *u;
	struct pyx_target *tgt;
	size_t n = 0, nf = 0, cap = 0;
	pid_t pid = spawn_blocked();
	int leaf, inl, mid, out, rc;

	ck_assert_int_eq(pyx_target_open_pid(pid, &tgt), 0);
	ck_assert_int_eq(pyx_unwinder_new(tgt, &u), 0);
	/* Not stopped: no registers. */
	rc = pyx_unwind_thread(u, pid, raw, PYX_UNWIND_MAX_FRAMES, &n);
	ck_assert_int_eq(rc, -PYX_E_NOT_SUPPORTED);
	ck_assert_uint_eq(n, 0);

	ck_assert_int_eq(pyx_target_stop(tgt, 2000), 0);
	rc = pyx_unwind_thread(u, pid, raw, PYX_UNWIND_MAX_FRAMES, &n);
	/* Twice: the second run uses what the first cached. */
	if (rc == 0) {
		struct pyx_unwind_frame again[PYX_UNWIND_MAX_FRAMES];
		size_t n2 = 0;

		ck_assert_int_eq(pyx_unwind_thread(u, pid, again,
						   PYX_UNWIND_MAX_FRAMES, &n2), 0);
		ck_assert_uint_eq(n2, n);
		for (size_t i = 0; i < n; i++)
			ck_assert(again[i].pc == raw[i].pc &&
				  again[i].precise == raw[i].precise);
	}
	/* A small bound cuts the walk and says so. */
	{
		size_t n3 = 0;

		ck_assert_int_eq(pyx_unwind_thread(u, pid, raw, 2, &n3),
				 -PYX_E_NOT_SUPPORTED);
		ck_assert_uint_eq(n3, 2);
	}
	rc = pyx_unwind_thread(u, pid, raw, PYX_UNWIND_MAX_FRAMES, &n);
	pyx_target_resume(tgt);
	ck_assert_msg(rc == 0, "unwind: %s", pyx_err_detail());
	ck_assert_uint_ge(n, 5);
	ck_assert(raw[0].precise);
	ck_assert(!raw[1].precise);

	/* Symbols after resume: from the files, not the process. */
	ck_assert_int_eq(pyx_symbolizer_new(tgt, &sy), 0);
	for (size_t i = 0; i < n; i++)
		ck_assert_int_eq(pyx_symbolize(sy, &raw[i], &f, &nf, &cap), 0);
	ck_assert_uint_ge(nf, n);
	ck_assert_ptr_nonnull(f[0].function);
	ck_assert_msg(strstr(f[0].function, "pause"), "innermost: %s",
		      f[0].function);
	ck_assert_ptr_nonnull(f[0].library);
	ck_assert_msg(strstr(f[0].library, "libc"), "library %s", f[0].library);
	leaf = find(f, nf, 0, "u_leaf");
	inl = find(f, nf, 0, "u_inl");
	mid = find(f, nf, 0, "u_middle");
	out = find(f, nf, 0, "u_outer");
	ck_assert_msg(leaf > 0 && inl > leaf && mid == inl + 1 && out > mid,
		      "order: leaf %d inl %d middle %d outer %d", leaf, inl,
		      mid, out);
	/* The inlined call and its function share the call's address. */
	ck_assert(f[inl].inlined && !f[mid].inlined && !f[leaf].inlined);
	ck_assert_uint_eq(f[inl].address, f[mid].address);
	ck_assert_msg(ends_with(f[leaf].file, "u-unwind.c") && f[leaf].line > 0,
		      "u_leaf at %s:%d", f[leaf].file, f[leaf].line);
	ck_assert_msg(ends_with(f[inl].file, "u-unwind.c") &&
		      ends_with(f[mid].file, "u-unwind.c") &&
		      f[inl].line > 0 && f[mid].line > 0 &&
		      f[inl].line < f[mid].line,
		      "u_inl at %s:%d (calls u_leaf), u_middle at %s:%d "
		      "(calls u_inl, below it in this file)", f[inl].file,
		      f[inl].line, f[mid].file, f[mid].line);
	ck_assert_msg(ends_with(f[leaf].library, "u-unwind"), "library %s",
		      f[leaf].library);

	/* Cached: the same pc symbolizes the same way again. */
	{
		size_t before = nf;

		ck_assert_int_eq(pyx_symbolize(sy, &raw[0], &f, &nf, &cap), 0);
		ck_assert_str_eq(f[before].function, f[0].function);
	}
	/* Nothing mapped there: one frame, no name. */
	{
		struct pyx_unwind_frame nowhere = { 0x10, true };
		size_t before = nf;

		ck_assert_int_eq(pyx_symbolize(sy, &nowhere, &f, &nf, &cap), 0);
		ck_assert_uint_eq(nf, before + 1);
		ck_assert_ptr_null(f[before].function);
		ck_assert_ptr_null(f[before].library);
		ck_assert_uint_eq(f[before].address, 0x10);
	}
	for (size_t i = 0; i < nf; i++)
		pyx_native_frame_release(&f[i]);
	free(f);
	pyx_symbolizer_free(sy);
	pyx_unwinder_free(u);
	pyx_target_free(tgt);
	reap(pid);
}
END_TEST

START_TEST(test_unwind_gone)
{
	struct pyx_unwind_frame raw[8];
	struct pyx_unwinder *u;
	struct pyx_target *tgt;
	size_t n = 1;
	pid_t pid = spawn_blocked(), gone;

	/* A thread id nobody has: the thread exited. */
	gone = fork();
	ck_assert_int_ge(gone, 0);
	if (gone == 0)
		_exit(0);
	waitpid(gone, NULL, 0);
	ck_assert_int_eq(pyx_target_open_pid(pid, &tgt), 0);
	ck_assert_int_eq(pyx_unwinder_new(tgt, &u), 0);
	ck_assert_int_eq(pyx_target_stop(tgt, 2000), 0);
	ck_assert_int_eq(pyx_unwind_thread(u, gone, raw, 8, &n), -PYX_E_EXITED);
	ck_assert_uint_eq(n, 0);
	ck_assert(strstr(pyx_err_detail(), "exited"));
	pyx_target_resume(tgt);
	pyx_unwinder_free(u);
	pyx_target_free(tgt);
	reap(pid);
}
END_TEST

START_TEST(test_unwind_corrupt)
{
	struct pyx_unwind_frame raw[PYX_UNWIND_MAX_FRAMES];
	struct pyx_unwinder *u;
	struct pyx_target *tgt;
	size_t n = 0;
	pid_t pid = spawn_blocked_in(u_corrupt);
	int rc;

	ck_assert_int_eq(pyx_target_open_pid(pid, &tgt), 0);
	ck_assert_int_eq(pyx_unwinder_new(tgt, &u), 0);
	ck_assert_int_eq(pyx_target_stop(tgt, 2000), 0);
	rc = pyx_unwind_thread(u, pid, raw, PYX_UNWIND_MAX_FRAMES, &n);
	pyx_target_resume(tgt);
	/* Ended by the unreadable page (the walk got lost) or by the bound,
	 * never a crash or a walk without end. */
	ck_assert_msg(rc == -PYX_E_BAD_MEMORY || rc == -PYX_E_NOT_SUPPORTED,
		      "rc %d after %zu frames: %s", rc, n, pyx_err_detail());
	ck_assert_uint_ge(n, 1);
	ck_assert_uint_le(n, PYX_UNWIND_MAX_FRAMES);
	ck_assert(raw[0].precise);
	pyx_unwinder_free(u);
	pyx_target_free(tgt);
	reap(pid);
}
END_TEST

/* ---- the merge ---------------------------------------------------------- */

static void add_native(struct pyx_thread *t, const char *fn)
{
	struct pyx_native_frame *f;

	t->native = realloc(t->native, (t->nnative + 1) * sizeof(*f));
	ck_assert_ptr_nonnull(t->native);
	f = &t->native[t->nnative++];
	memset(f, 0, sizeof(*f));
	f->function = strdup(fn);
	f->eval = pyx_native_is_eval(fn);
}

static void add_py(struct pyx_thread *t, const char *fn, bool entry)
{
	struct pyx_frame *f;

	t->frames = realloc(t->frames, (t->nframes + 1) * sizeof(*f));
	ck_assert_ptr_nonnull(t->frames);
	f = &t->frames[t->nframes++];
	memset(f, 0, sizeof(*f));
	f->function = strdup(fn);
	f->name = strdup(fn);
	f->file = strdup("x.py");
	f->entry = entry;
}

/* The merged stack as "n:name p:name ...". */
static const char *merged(const struct pyx_thread *t)
{
	static char buf[1024];
	size_t k = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < t->nmerged; i++) {
		const struct pyx_stack_entry *e = &t->merged[i];

		k += (size_t)snprintf(buf + k, sizeof(buf) - k, "%s%s:%s",
				      i ? " " : "", e->native ? "n" : "p",
				      e->native ? t->native[e->index].function
						: t->frames[e->index].function);
	}
	return buf;
}

static void release(struct pyx_thread *t)
{
	pyx_native_thread_release(t);
	pyx_thread_release(t);
}

START_TEST(test_is_eval)
{
	ck_assert(pyx_native_is_eval("_PyEval_EvalFrameDefault"));
	ck_assert(pyx_native_is_eval("_PyEval_EvalFrameDefault.cold"));
	ck_assert(!pyx_native_is_eval("_PyEval_EvalFrame"));
	ck_assert(!pyx_native_is_eval("_PyEval_EvalFrameDefaultX"));
	ck_assert(!pyx_native_is_eval("PyEval_EvalFrameEx"));
	ck_assert(!pyx_native_is_eval(NULL));
}
END_TEST

/* 3.11+: one eval-loop frame runs Python frames up to its entry frame. */
START_TEST(test_merge_runs)
{
	struct pyx_thread t = { 0 };

	add_native(&t, "clock_nanosleep");
	add_native(&t, "time_sleep");
	add_native(&t, "_PyEval_EvalFrameDefault");
	add_native(&t, "_PyEval_Vector");
	add_native(&t, "_PyEval_EvalFrameDefault.cold");
	add_native(&t, "thread_run");
	add_py(&t, "inner", false);
	add_py(&t, "outer", true);
	add_py(&t, "run", false);
	add_py(&t, "bootstrap", true);
	ck_assert_int_eq(pyx_native_merge(&t, false), 0);
	ck_assert_str_eq(merged(&t), "n:clock_nanosleep n:time_sleep p:inner "
			 "p:outer n:_PyEval_Vector p:run p:bootstrap "
			 "n:thread_run");
	ck_assert_ptr_null(t.native_error);
	release(&t);
}
END_TEST

/* 3.8-3.10: one eval-loop frame per Python frame, entry flags or not. */
START_TEST(test_merge_one_each)
{
	struct pyx_thread t = { 0 };

	add_native(&t, "select");
	add_native(&t, "_PyEval_EvalFrameDefault");
	add_native(&t, "function_code_fastcall");
	add_native(&t, "_PyEval_EvalFrameDefault");
	add_native(&t, "start_thread");
	add_py(&t, "inner", true);
	add_py(&t, "outer", true);
	ck_assert_int_eq(pyx_native_merge(&t, true), 0);
	ck_assert_str_eq(merged(&t), "n:select p:inner n:function_code_fastcall "
			 "p:outer n:start_thread");
	ck_assert_ptr_null(t.native_error);
	release(&t);
}
END_TEST

/* More Python runs than eval-loop frames (a native stack cut short):
 * every Python frame is still there, the rest last, and it is noted. */
START_TEST(test_merge_python_left_over)
{
	struct pyx_thread t = { 0 };

	add_native(&t, "read");
	add_native(&t, "_PyEval_EvalFrameDefault");
	add_py(&t, "a", false);
	add_py(&t, "b", true);
	add_py(&t, "c", true);
	add_py(&t, "d", false);
	ck_assert_int_eq(pyx_native_merge(&t, false), 0);
	ck_assert_str_eq(merged(&t), "n:read p:a p:b p:c p:d");
	ck_assert_ptr_nonnull(t.native_error);
	ck_assert_msg(strstr(t.native_error, "1 evaluation-loop frame for 3 "
			     "runs"), "%s", t.native_error);
	release(&t);
}
END_TEST

/* More eval-loop frames than Python frames: those left are shown as
 * native frames, and it is noted; no native frames at all: no note. */
START_TEST(test_merge_eval_left_over)
{
	struct pyx_thread t = { 0 };

	add_native(&t, "_PyEval_EvalFrameDefault");
	add_native(&t, "_PyEval_EvalFrameDefault");
	add_py(&t, "only", true);
	ck_assert_int_eq(pyx_native_merge(&t, true), 0);
	ck_assert_str_eq(merged(&t), "p:only n:_PyEval_EvalFrameDefault");
	ck_assert_ptr_nonnull(t.native_error);
	release(&t);

	add_py(&t, "x", true);
	add_py(&t, "y", true);
	ck_assert_int_eq(pyx_native_merge(&t, true), 0);
	ck_assert_str_eq(merged(&t), "p:x p:y");
	ck_assert_ptr_null(t.native_error);
	release(&t);

	/* Neither: an empty stack. */
	ck_assert_int_eq(pyx_native_merge(&t, false), 0);
	ck_assert_uint_eq(t.nmerged, 0);
	release(&t);
}
END_TEST

static Suite *unwind_suite(void)
{
	Suite *s = suite_create("unwind");
	TCase *tc = tcase_create("core");

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_unwind_child);
	tcase_add_test(tc, test_unwind_gone);
	tcase_add_test(tc, test_unwind_corrupt);
	tcase_add_test(tc, test_is_eval);
	tcase_add_test(tc, test_merge_runs);
	tcase_add_test(tc, test_merge_one_each);
	tcase_add_test(tc, test_merge_python_left_over);
	tcase_add_test(tc, test_merge_eval_left_over);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return pyx_unit_run(unwind_suite());
}
