/* Reading the target's memory.
 *
 * Three layers, top down:
 *  - the page cache and the maps check (every read): an address outside
 *    every readable mapping is refused before any system call; the cache
 *    is only coherent while the target is stopped, so the target drops it
 *    on every stop and resume (pyx_mem_invalidate);
 *  - the heap copy (pyx_mem_snapshot), when there is one: it serves what it
 *    holds and refuses what it should hold but does not; the rest (read-only
 *    mappings: text, .rodata) goes on to the backend;
 *  - the backend, a struct pyx_mem_source: the live process
 *    (process_vm_readv, with a fallback to pread(/proc/PID/mem)), a
 *    synthetic image, a core file.
 *
 * Remote memory is never trusted: every failure maps to a domain error
 * (-PYX_E_BAD_MEMORY, -PYX_E_EXITED).
 */
#ifndef PYXRAY_MEMORY_H
#define PYXRAY_MEMORY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "pyxray/common.h"
#include "pyxray/maps.h"

#ifdef __cplusplus
extern "C" {
#endif

struct pyx_mem;

/* One range of a vectored read (struct pyx_mem_source.read_ranges). */
struct pyx_mem_range {
	pyx_addr_t addr;
	void *buf;
	size_t len;
	bool failed; /* set by the source: not read whole (buf undefined) */
};

/* Where the bytes come from: the memory backend.  A target backend (a live
 * process, a synthetic image, a core file) fills one; the page cache and
 * the heap copy are the same above every backend.  Every callback but
 * read may be NULL. */
struct pyx_mem_source {
	void *ctx;
	/* The maps every read is checked against, sorted by start; NULL: no
	 * check (unit tests). */
	const struct pyx_map *(*maps)(void *ctx, size_t *n);
	/* Re-read the maps (a mapping made after open); NULL: fixed maps.
	 * Called at most once per cache generation on a read outside every
	 * mapping, never while a heap copy exists.  The previous maps array
	 * must stay valid until the source is freed (callers may be walking
	 * it). */
	int (*refresh_maps)(void *ctx);
	/* Read exactly len bytes at addr: 0, -PYX_E_BAD_MEMORY, -PYX_E_EXITED.
	 * NULL: the live process pid, by process_vm_readv with a fallback to
	 * pread(/proc/PID/mem). */
	int (*read)(void *ctx, pyx_addr_t addr, void *buf, size_t len);
	pid_t pid;
	/* Optional: read n ranges at once (a heap copy: few system calls).
	 * A range that cannot be read whole gets failed = true; the others
	 * are read.  Returns 0, or an error that ends the copy
	 * (-PYX_E_EXITED, -PYX_E_NOMEM, -PYX_E_IO); *syscalls counts the
	 * reads made.  NULL: read() once per range. */
	int (*read_ranges)(void *ctx, struct pyx_mem_range *r, size_t n,
			   uint64_t *syscalls);
	/* Optional: the runs of pages of [start, end) (page-aligned) that
	 * hold data, in memory or swapped out, in address order: cb(arg,
	 * run_start, run_end) for each (a non-zero return from cb ends the
	 * walk and is returned).  A page never touched reads as zeros.  NULL,
	 * or an error: every page holds data. */
	int (*populated)(void *ctx, pyx_addr_t start, pyx_addr_t end,
			 int (*cb)(void *arg, pyx_addr_t s, pyx_addr_t e),
			 void *arg);
	/* Optional: memory the backend holds in place (a core file, mapped):
	 * a pointer to [addr, addr+len) if it lies in it whole, else NULL.
	 * Valid until the source is freed.  Reads are then served from it
	 * without the page cache, and pyx_mem_snapshot_ptr() answers from it
	 * without a heap copy: a core's heap is walked where it lies. */
	const void *(*ptr)(void *ctx, pyx_addr_t addr, size_t len);
};

/* Created and freed by the target (pyx_target_mem()). */
int pyx_mem_new(const struct pyx_mem_source *src, struct pyx_mem **out);
/* A standalone reader of a live process without a maps check (tests). */
int pyx_mem_new_pid(pid_t pid, struct pyx_mem **out);
void pyx_mem_free(struct pyx_mem *mem);

/* Read len bytes at addr into buf, through the cache.  All or nothing:
 * -PYX_E_BAD_MEMORY (unmapped, partial), -PYX_E_EXITED (process gone). */
int pyx_mem_read(struct pyx_mem *mem, pyx_addr_t addr, void *buf, size_t len);
/* The same, bypassing the cache (large copies). */
int pyx_mem_read_direct(struct pyx_mem *mem, pyx_addr_t addr, void *buf,
			size_t len);
/* Read n ranges at once, around the cache: with a live process, one
 * process_vm_readv for up to 512 of them (a walk's small reads that do not
 * depend on each other, such as pymalloc's pool headers: one system call
 * each through the cache, a page read for 48 bytes).  r[i].failed for a
 * range not read whole (its buf undefined), the others read.  0, or an
 * error that ends the reading (-PYX_E_EXITED, -PYX_E_NOMEM, -PYX_E_IO). */
int pyx_mem_read_ranges(struct pyx_mem *mem, struct pyx_mem_range *r,
			size_t n);
/* Read an aligned 8-byte word (a pointer or a Py_ssize_t). */
int pyx_mem_read_u64(struct pyx_mem *mem, pyx_addr_t addr, uint64_t *out);
/* Read a NUL-terminated C string of at most n-1 bytes; buf always ends
 * in NUL.  A string longer than that is cut (not an error). */
int pyx_mem_read_cstr(struct pyx_mem *mem, pyx_addr_t addr, char *buf,
		      size_t n);

/* Whether [addr, addr+len) lies in readable mappings.  No system call,
 * but for a miss: the maps are then re-read (the target may have mapped
 * it since), at most once per cache generation (pyx_mem_invalidate(), each
 * stop and resume), and never while a heap copy exists. */
bool pyx_mem_valid(struct pyx_mem *mem, pyx_addr_t addr, size_t len);

/* The bytes of every readable mapping, as last read (0: no maps): a bound
 * on what a walk of the target's memory can meet.  No system call. */
uint64_t pyx_mem_readable_bytes(const struct pyx_mem *mem);

/* Forget every cached page. */
void pyx_mem_invalidate(struct pyx_mem *mem);

/* Snapshot mode, for walks over the whole heap (census, refs).
 *
 * pyx_mem_snapshot() copies every private writable mapping that can hold
 * Python objects (the [heap], anonymous mappings such as pymalloc arenas,
 * the .data and .bss of every file: static types and objects live there)
 * into one local buffer, in a few large reads.  Only the pages that hold
 * data are read (present or swapped out, from the backend's populated());
 * a page never touched reads as zeros in the copy as in the target.  Call
 * it with the target stopped and the maps fresh; then resume the target and
 * walk: until pyx_mem_snapshot_release(), pyx_mem_read() and friends serve
 * addresses inside the copy from it, refuse those of a mapping the copy
 * left out (-PYX_E_BAD_MEMORY, "not copied": a live read would mix another
 * moment into the copy), and read the live process only for the rest
 * (read-only mappings such as text and .rodata, which cannot change).  The
 * copy stays valid across pyx_mem_invalidate().
 *
 * At most max_bytes are copied (0: no bound), whole mappings in address
 * order; info says when the bound left mappings out. */
struct pyx_mem_snapshot_info {
	uint64_t bytes;         /* bytes copied (populated pages) */
	uint64_t mappings;      /* mappings copied */
	uint64_t skipped_bytes; /* populated bytes left out (bound, errors) */
	uint64_t syscalls;      /* read system calls made for the copy */
	uint64_t ns;            /* time spent copying */
	uint64_t virtual_bytes; /* size of the mappings copied */
	uint64_t skipped_mappings; /* mappings left out */
	bool truncated;         /* max_bytes was reached */
};
int pyx_mem_snapshot(struct pyx_mem *mem, uint64_t max_bytes,
		     struct pyx_mem_snapshot_info *info);
/* Allocate a buffer for the next pyx_mem_snapshot() and fault it in, with
 * the target still running: a fresh page costs a page fault, which would
 * otherwise lengthen the pause.  bytes: what the copy is expected to hold
 * (pyx_mem_snapshot_size()); slack more bytes are reserved but not touched
 * (the heap may grow before the stop).  The snapshot uses the buffer if it
 * is big enough, else allocates its own. */
int pyx_mem_snapshot_reserve(struct pyx_mem *mem, uint64_t bytes,
			     uint64_t slack);
/* The threads the next reserve and copy may use (0: as many as the CPUs
 * pyxray may run on, at most 16, the default; 1: none).
 * A live copy is read on that many threads in shares of 16 MiB at least,
 * and the reserved buffer faulted in the same way.  While a copy exists,
 * the reads of pyx_mem_read(), _read_u64(), _read_cstr(), _valid(),
 * pyx_mem_snapshot_ptr() and _wptr() may come from several threads at once
 * (writes into the copy through _wptr by several threads must be atomic on
 * the word); every other call, and every call without a copy, from one. */
void pyx_mem_set_jobs(struct pyx_mem *mem, unsigned jobs);
/* Free the copy; reads go to the live process again.  Idempotent. */
void pyx_mem_snapshot_release(struct pyx_mem *mem);
/* The same, but the copy's buffer is handed to the caller instead of
 * unmapped: its pages are in memory (the copy wrote them), and a walk that
 * allocates much after the copy (the dominators) saves a page fault for
 * each page it reuses.  *buf: the mapping (page-aligned, read-write,
 * private; NULL when there was no copy, e.g. a core's heap read in place),
 * *len its bytes, of which the first *faulted are in memory (the rest, if
 * any, is reserved and faults on first use).  The caller owns the mapping
 * from here on, bytes undefined, and frees it with munmap(*buf, *len);
 * nothing of the copy is served any more, as after
 * pyx_mem_snapshot_release() (the spare buffer is unmapped as there).
 * 0, or -PYX_E_USAGE for a NULL argument. */
int pyx_mem_snapshot_release_pages(struct pyx_mem *mem, void **buf,
				   size_t *len, size_t *faulted);
bool pyx_mem_has_snapshot(const struct pyx_mem *mem);
/* The copy of [addr, addr+len) if it lies inside one copied range (or,
 * without a copy, in memory the source holds in place: a core), else
 * NULL: a zero-copy read for hot loops.  Valid until release. */
const void *pyx_mem_snapshot_ptr(struct pyx_mem *mem, pyx_addr_t addr,
				 size_t len);
/* The same, writable: the copy is private, so a walker may keep marks in
 * it (the census sets bit 63 of ob_refcnt of the objects it counted). */
void *pyx_mem_snapshot_wptr(struct pyx_mem *mem, pyx_addr_t addr, size_t len);
/* Bytes a snapshot would copy without a bound: the populated pages of the
 * mappings it copies (their whole size where the backend cannot tell).
 * Reads the backend's page map (a few system calls for a live process). */
uint64_t pyx_mem_snapshot_size(const struct pyx_mem *mem);

struct pyx_mem_stats {
	uint64_t syscalls;   /* read system calls made */
	uint64_t bytes;      /* bytes copied from the target */
	uint64_t hits;       /* reads served by the cache */
};
void pyx_mem_get_stats(const struct pyx_mem *mem, struct pyx_mem_stats *out);

#ifdef __cplusplus
}
#endif
#endif
