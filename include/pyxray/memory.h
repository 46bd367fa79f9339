/* Reading the target's memory.
 *
 * process_vm_readv, with a fallback to pread(/proc/PID/mem) where it is
 * refused.  Reads go through a page cache so that walking a stack costs few
 * system calls; the cache is only coherent while the target is stopped, so
 * the process module drops it on resume (pyx_mem_invalidate).
 *
 * Remote memory is never trusted: an address outside every readable mapping
 * is refused before any system call, and every failure maps to a domain
 * error (-PYX_E_BAD_MEMORY, -PYX_E_EXITED).
 */
#ifndef PYXRAY_MEMORY_H
#define PYXRAY_MEMORY_H

#include <stdbool.h>
#include <sys/types.h>

#include "pyxray/common.h"
#include "pyxray/maps.h"

#ifdef __cplusplus
extern "C" {
#endif

struct pyx_mem;

/* Where the bytes come from: the memory backend.  A target backend (a live
 * process, a synthetic image, a core file) fills one; the page cache and
 * the heap copy are the same above every backend. */
struct pyx_mem_source {
	void *ctx;
	/* The maps every read is checked against, sorted by start; NULL: no
	 * check (unit tests). */
	const struct pyx_map *(*maps)(void *ctx, size_t *n);
	/* Re-read the maps (a mapping made after open); NULL: fixed maps. */
	int (*refresh_maps)(void *ctx);
	/* Read exactly len bytes at addr: 0, -PYX_E_BAD_MEMORY, -PYX_E_EXITED.
	 * NULL: the live process pid, by process_vm_readv with a fallback to
	 * pread(/proc/PID/mem). */
	int (*read)(void *ctx, pyx_addr_t addr, void *buf, size_t len);
	pid_t pid;
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
/* Read an aligned 8-byte word (a pointer or a Py_ssize_t). */
int pyx_mem_read_u64(struct pyx_mem *mem, pyx_addr_t addr, uint64_t *out);
/* Read a NUL-terminated C string of at most n-1 bytes; buf always ends
 * in NUL.  A string longer than that is cut (not an error). */
int pyx_mem_read_cstr(struct pyx_mem *mem, pyx_addr_t addr, char *buf,
		      size_t n);

/* Whether [addr, addr+len) lies in readable mappings (no system call). */
bool pyx_mem_valid(const struct pyx_mem *mem, pyx_addr_t addr, size_t len);

/* Forget every cached page. */
void pyx_mem_invalidate(struct pyx_mem *mem);

/* Snapshot mode, for walks over the whole heap (census, refs).
 *
 * pyx_mem_snapshot() copies every private writable mapping that can hold
 * Python objects (the [heap], anonymous mappings such as pymalloc arenas,
 * the .data and .bss of every file: static types and objects live there)
 * into one local buffer, in a few large reads.  Call it with the target
 * stopped and the maps fresh (pyx_proc_refresh_maps()); then resume the
 * target and walk: until pyx_mem_snapshot_release(), pyx_mem_read() and
 * friends serve addresses inside the copy from it, and read the live
 * process only for the rest (read-only mappings such as .rodata).  The copy
 * stays valid across pyx_mem_invalidate().
 *
 * At most max_bytes are copied (0: no bound), whole mappings in address
 * order; info says when the bound left mappings out. */
struct pyx_mem_snapshot_info {
	uint64_t bytes;         /* bytes copied */
	uint64_t mappings;      /* mappings copied */
	uint64_t skipped_bytes; /* writable bytes left out (bound, errors) */
	uint64_t syscalls;      /* read system calls made for the copy */
	uint64_t ns;            /* time spent copying */
	bool truncated;         /* max_bytes was reached */
};
int pyx_mem_snapshot(struct pyx_mem *mem, uint64_t max_bytes,
		     struct pyx_mem_snapshot_info *info);
/* Allocate a buffer for the next pyx_mem_snapshot() and fault its first
 * bytes in, with the target still running: a fresh page costs a page
 * fault, which would otherwise lengthen the pause.  slack more bytes are
 * reserved but not touched (the heap may grow before the stop).  The
 * snapshot uses the buffer if it is big enough, else allocates its own. */
int pyx_mem_snapshot_reserve(struct pyx_mem *mem, uint64_t bytes,
			     uint64_t slack);
/* Free the copy; reads go to the live process again.  Idempotent. */
void pyx_mem_snapshot_release(struct pyx_mem *mem);
bool pyx_mem_has_snapshot(const struct pyx_mem *mem);
/* The copy of [addr, addr+len) if it lies inside one copied range, else
 * NULL: a zero-copy read for hot loops.  Valid until release. */
const void *pyx_mem_snapshot_ptr(struct pyx_mem *mem, pyx_addr_t addr,
				 size_t len);
/* The same, writable: the copy is private, so a walker may keep marks in
 * it (the census sets bit 63 of ob_refcnt of the objects it counted). */
void *pyx_mem_snapshot_wptr(struct pyx_mem *mem, pyx_addr_t addr, size_t len);
/* Bytes the rw mappings of the target add up to (what a snapshot would
 * copy without a bound).  No system call. */
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
