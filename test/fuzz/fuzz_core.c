/* libFuzzer target: the core-file backend (lib/target/core.c, docs/core.md).
 *
 * One input is one core file, plain or compressed (zstd, lz4, xz).  It is
 * written to a memory file and opened by pyx_target_open_core() as a
 * command would open it, then used as a command would: the maps, the
 * threads (TLS base, registers, names, PID namespace), reads at the start,
 * middle and end of every map and across the boundary to the next, the
 * core's description (pyx_target_core_info()), and, if a python can be
 * opened over it, a short stacks walk (Python frames, then native frames
 * from the core's registers).  Every error path returns; everything is
 * freed (libFuzzer's leak check).
 *
 * Files: no host file is trusted by default.  The core's files are looked
 * up inside --sysroot, which is an empty directory made at start-up, or the
 * directory PYX_FUZZ_CORE_SYSROOT names (scripts/fuzz.sh fills one with the
 * few files its seeds map, so that a python opens over the seed cores).
 * PYX_FUZZ_CORE_EXE sets --exe.
 *
 * Set PYX_FUZZ_PRINT=1 to print what was found (replaying one input).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/user.h>
#include <unistd.h>

#include "pyxray/error.h"
#include "pyxray/memory.h"
#include "pyxray/python.h"
#include "pyxray/stacks.h"
#include "pyxray/target.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Bounds that keep one execution short whatever the core declares. */
#define MAX_MAPS 512
#define MAX_THREADS 64
#define MAX_DEPTH 32

static int print;
static int memfd = -1;
static char core_path[64];
static char empty_root[] = "/tmp/pyxray-fuzz-core-XXXXXX";
static bool made_root;
static struct pyx_core_opts opts;

static void cleanup(void)
{
	if (made_root)
		rmdir(empty_root);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *p = getenv("PYX_FUZZ_PRINT");

	(void)argc;
	(void)argv;
	print = p && *p && *p != '0';
	/* One memory file for every input, reopened by path as a core file
	 * named on the command line is. */
	memfd = memfd_create("pyxray-fuzz-core", MFD_CLOEXEC);
	if (memfd < 0) {
		perror("fuzz_core: memfd_create");
		exit(1);
	}
	snprintf(core_path, sizeof(core_path), "/proc/self/fd/%d", memfd);
	opts.sysroot = getenv("PYX_FUZZ_CORE_SYSROOT");
	if (!opts.sysroot || !opts.sysroot[0]) {
		if (!mkdtemp(empty_root)) {
			perror("fuzz_core: mkdtemp");
			exit(1);
		}
		made_root = true;
		atexit(cleanup);
		opts.sysroot = empty_root;
	}
	opts.exe = getenv("PYX_FUZZ_CORE_EXE");
	if (opts.exe && !opts.exe[0])
		opts.exe = NULL;
	return 0;
}

static int load(const uint8_t *data, size_t size)
{
	size_t done = 0;

	if (ftruncate(memfd, 0))
		return -1;
	while (done < size) {
		ssize_t w = pwrite(memfd, data + done, size - done,
				   (off_t)done);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		done += (size_t)w;
	}
	return 0;
}

static void run_info(struct pyx_target *t)
{
	const struct pyx_core_info *ci = pyx_target_core_info(t);
	char buf[256];

	if (!ci) {
		/* A core target always has one. */
		fprintf(stderr, "fuzz_core: a core without its info\n");
		abort();
	}
	/* Every string is terminated and within its array. */
	if (strnlen(ci->comm, sizeof(ci->comm)) == sizeof(ci->comm) ||
	    strnlen(ci->args, sizeof(ci->args)) == sizeof(ci->args) ||
	    strnlen(ci->executable, sizeof(ci->executable)) ==
		    sizeof(ci->executable)) {
		fprintf(stderr, "fuzz_core: an unterminated info string\n");
		abort();
	}
	if (ci->compression)
		(void)strlen(ci->compression);
	(void)strlen(ci->writer);
	(void)pyx_target_path(t, ci->executable[0] ? ci->executable : "/",
			      buf, sizeof(buf));
	if (print)
		printf("core: %s, writer %s, pid %d, signal %d, uid %u, "
		       "comm '%s', args '%s', exe '%s', %zu threads, %llu of "
		       "%llu bytes%s\n",
		       ci->compression ? ci->compression : "plain", ci->writer,
		       (int)ci->pid, ci->signal, (unsigned)ci->uid, ci->comm,
		       ci->args, ci->executable, ci->nthreads,
		       (unsigned long long)ci->size,
		       (unsigned long long)ci->needed,
		       ci->truncated ? " (truncated)" : "");
}

static void run_threads(struct pyx_target *t)
{
	size_t n = 0;
	const pid_t *tids = pyx_target_threads(t, &n);
	pid_t copy[MAX_THREADS];
	size_t m = n < MAX_THREADS ? n : MAX_THREADS;

	if (!tids || !m)
		return;
	/* The array is valid until the next call on t. */
	memcpy(copy, tids, m * sizeof(copy[0]));
	for (size_t i = 0; i < m; i++) {
		struct user_regs_struct r;
		pyx_addr_t tls = 0;
		pid_t other = 0;
		char comm[32];
		int e1, e2;

		e1 = pyx_target_thread_tls(t, copy[i], &tls);
		e2 = pyx_target_thread_regs(t, copy[i], &r, sizeof(r));
		(void)pyx_target_thread_regs(t, copy[i], &r, 8);
		(void)pyx_target_thread_comm(t, copy[i], comm, sizeof(comm));
		(void)pyx_target_ns_tid(t, copy[i], &other);
		(void)pyx_target_host_tid(t, copy[i], &other);
		if (print)
			printf("thread %d: tls %s %#llx, regs %s rip %#llx\n",
			       (int)copy[i], e1 ? pyx_strerror(e1) : "ok",
			       (unsigned long long)tls,
			       e2 ? pyx_strerror(e2) : "ok",
			       e2 ? 0ULL : (unsigned long long)r.rip);
	}
	/* A thread the core does not have. */
	{
		pyx_addr_t tls;

		if (pyx_target_thread_tls(t, -1, &tls) == 0) {
			fprintf(stderr, "fuzz_core: TLS of thread -1\n");
			abort();
		}
	}
}

/* Reads where the backend's bounds are: each map's first and last bytes,
 * its middle, a read across its end (into the next map or nothing), and
 * a read wholly past the last map. */
static void run_reads(struct pyx_target *t)
{
	struct pyx_mem *mem = pyx_target_mem(t);
	size_t n = 0, ok = 0, bad = 0;
	const struct pyx_map *maps = pyx_target_maps(t, &n);
	uint8_t buf[4096 + 64];

	for (size_t i = 0; maps && i < n && i < MAX_MAPS; i++) {
		pyx_addr_t s = maps[i].start, e = maps[i].end;
		pyx_addr_t len = e - s;
		pyx_addr_t at[4] = { s, s + len / 2, e > 64 ? e - 64 : s,
				     e > 32 ? e - 32 : s };
		size_t sz[4] = { 64, len / 2 > 4096 ? 4096 : 64, 64, 64 };

		if (e <= s) {
			fprintf(stderr, "fuzz_core: an empty or inverted map "
				"%#llx-%#llx\n", (unsigned long long)s,
				(unsigned long long)e);
			abort();
		}
		if (i && s < maps[i - 1].end) {
			fprintf(stderr, "fuzz_core: maps overlap or are not "
				"sorted at %#llx\n", (unsigned long long)s);
			abort();
		}
		if (maps[i].path)
			(void)strlen(maps[i].path);
		if (pyx_target_find_map(t, s) != &maps[i] ||
		    pyx_target_find_map(t, e - 1) != &maps[i]) {
			fprintf(stderr, "fuzz_core: find_map disagrees with "
				"the maps at %#llx\n", (unsigned long long)s);
			abort();
		}
		for (size_t k = 0; k < 4; k++) {
			/* The last read straddles the map's end. */
			if (pyx_mem_read(mem, at[k], buf, sz[k]))
				bad++;
			else
				ok++;
		}
		(void)pyx_mem_valid(mem, s, (size_t)(len < 4096 ? len : 4096));
	}
	if (maps && n) {
		pyx_addr_t end = maps[n - 1].end;
		uint64_t u;

		if (end <= UINT64_MAX - 8 && !pyx_mem_read_u64(mem, end, &u)) {
			fprintf(stderr, "fuzz_core: a read past the last map "
				"(%#llx) succeeded\n", (unsigned long long)end);
			abort();
		}
		(void)pyx_mem_read_cstr(mem, maps[0].start, (char *)buf, 80);
	}
	(void)pyx_mem_read(mem, 0, buf, 8);
	(void)pyx_mem_read(mem, UINT64_MAX - 3, buf, 8);
	if (print)
		printf("maps: %zu, reads ok %zu, refused %zu\n", n, ok, bad);
}

static void run_stacks(struct pyx_python *py, bool native)
{
	struct pyx_stacks_opts o = { .max_depth = MAX_DEPTH, .deadline_ms = 100,
				     .native = native };
	struct pyx_stacks *s = NULL;
	int err = pyx_stacks_collect(py, &o, &s);

	if (print) {
		printf("stacks%s: %s, %zu threads\n", native ? " --native" : "",
		       err ? pyx_strerror(err) : "ok", s ? s->nthreads : 0);
		for (size_t i = 0; s && i < s->nthreads; i++)
			for (size_t j = 0; j < s->threads[i].nframes; j++)
				printf("  %s %s:%d\n",
				       s->threads[i].frames[j].function,
				       s->threads[i].frames[j].file,
				       s->threads[i].frames[j].line);
	}
	pyx_stacks_free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct pyx_target *t = NULL;
	struct pyx_python *py = NULL;
	int err;

	if (load(data, size))
		return 0;
	err = pyx_target_open_core(core_path, &opts, &t);
	if (print)
		printf("open: %s%s%s\n", err ? pyx_strerror(err) : "ok",
		       err ? ": " : "", err ? pyx_err_detail() : "");
	if (err) {
		if (t) {
			fprintf(stderr, "fuzz_core: a target on error\n");
			abort();
		}
		goto out;
	}
	if (pyx_target_kind(t) != PYX_TARGET_CORE) {
		fprintf(stderr, "fuzz_core: not a core target\n");
		abort();
	}
	(void)pyx_target_pid(t);
	run_info(t);
	run_threads(t);
	run_reads(t);
	/* A command stops its target first: a core stops at once. */
	if (pyx_target_stop(t, 100) == 0)
		(void)pyx_target_resume(t);
	err = pyx_python_open(t, &py);
	if (print)
		printf("python: %s%s%s\n", err ? pyx_strerror(err) : "ok",
		       err ? ": " : "", err ? pyx_err_detail() : "");
	if (!err) {
		run_stacks(py, false);
		run_stacks(py, true);
	}
out:
	pyx_python_free(py);
	pyx_target_free(t);
	pyx_err_clear();
	return 0;
}
