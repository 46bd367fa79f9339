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

#ifdef __cplusplus
extern "C" {
#endif

struct pyx_mem;
struct pyx_proc;

/* Created and freed by the process module (pyx_proc_mem()); a standalone
 * reader for tests: pyx_mem_new(pid, NULL) skips the maps check. */
int pyx_mem_new(pid_t pid, struct pyx_proc *proc, struct pyx_mem **out);
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
