/* Private to lib/target/process.c and lib/target/memory.c, and their unit tests: limits
 * and test hooks.  Not part of the public API. */
#ifndef PYX_PROCESS_PRIVATE_H
#define PYX_PROCESS_PRIVATE_H

#include <stddef.h>
#include <stdint.h>

struct pyx_mem;
struct pyx_proc;

/* /proc/PID/maps with more lines than this is refused (-PYX_E_FORMAT). */
#define PYX_MAPS_MAX_LINES (1u << 20)
/* A process with more threads than this cannot be stopped
 * (-PYX_E_NOT_SUPPORTED), and pyx_proc_threads() reads at most this many. */
#define PYX_MAX_THREADS 65536
/* pyx_proc_stop() with deadline_ms <= 0 uses this deadline. */
#define PYX_DEFAULT_DEADLINE_MS 2000

/* Cache geometry of lib/memory.c: PYX_MEM_SLOTS pages of PYX_MEM_PAGE
 * bytes, direct-mapped; reads longer than PYX_MEM_DIRECT_MIN bypass it. */
#define PYX_MEM_PAGE 4096u
#define PYX_MEM_SLOTS 1024u
#define PYX_MEM_DIRECT_MIN (64u * 1024u)

/* Test hook: make mem use pread(/proc/PID/mem) from now on, as it does by
 * itself when process_vm_readv is refused (ENOSYS, EPERM). */
void pyx_mem_test_force_pread(struct pyx_mem *mem);
/* Whether mem has switched to pread(/proc/PID/mem). */
int pyx_mem_test_uses_pread(const struct pyx_mem *mem);
/* How many times a read outside the maps made mem re-read them. */
uint64_t pyx_mem_test_refreshes(const struct pyx_mem *mem);
/* Test hook: find populated pages by reading /proc/PID/pagemap entries,
 * as on kernels without the PAGEMAP_SCAN ioctl. */
void pyx_mem_test_no_pagemap_scan(struct pyx_mem *mem);

/* /proc/PID/smaps and the page map, opened through the pin
 * (pyx_target_smaps(), pyx_target_resident()). */
struct pyx_smaps_entry;
int pyx_proc_smaps(struct pyx_proc *proc,
		   int (*fn)(void *arg, const struct pyx_smaps_entry *e),
		   void *arg);
int pyx_proc_resident(struct pyx_proc *proc, uint64_t start, uint64_t end,
		      uint64_t *bytes);
/* pyx_proc_resident() refuses a range of more pages than this. */
#define PYX_RESIDENT_MAX_PAGES (UINT64_C(16) << 20)
/* A smaps listing with more mappings than this is refused. */
#define PYX_SMAPS_MAX 1000000u

/* Test hook: how many signals caught in signal-delivery-stops this proc has
 * handed back to their thread on detach. */
uint64_t pyx_proc_test_reinjected(const struct pyx_proc *proc);
/* Test hook: sleep this long between PTRACE_SEIZE and PTRACE_INTERRUPT
 * of each thread (0: not at all, the default). */
void pyx_proc_test_set_seize_delay(unsigned int us);
/* Test hook: how many threads are seized but not stopped yet (left over
 * by a stop that timed out; released as soon as they stop). */
size_t pyx_proc_test_pending(const struct pyx_proc *proc);

#endif
