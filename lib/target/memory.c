/* Reading the target's memory, in three layers (pyxray/memory.h):
 *
 *  - the page cache and the maps check.  The cache is direct-mapped:
 *    PYX_MEM_SLOTS slots of one aligned 4 KiB page each, the slot chosen by
 *    a hash of the page number, allocated on first use (4 MiB) and never
 *    grown.  A page is read whole with one read of the source; mappings are
 *    page-aligned, so a page inside a readable mapping is readable as a
 *    whole.  Invalidation bumps a generation number: a slot is valid only
 *    if it carries the current one;
 *  - the heap copy: populated pages of the writable mappings, packed in one
 *    buffer (file-backed ones whole: a page of theirs not present is the
 *    file's, not zeros); it answers for every address of the mappings it
 *    was asked to hold (the copy, zeros for anonymous pages never touched,
 *    or a refusal for what it left out), and lets the rest through to the
 *    source;
 *  - the source (struct pyx_mem_source): a backend's callbacks (a core
 *    file's ptr() serves its mapped bytes in place: no cache, no copy), or
 *    the live process below (process_vm_readv, pread of /proc/PID/mem where that is
 *    refused, /proc/PID/pagemap for the populated pages).
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <linux/types.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

#include "internal.h"
#include "process_private.h"
#include "pyxray/memory.h"

_Static_assert((PYX_MEM_PAGE & (PYX_MEM_PAGE - 1)) == 0, "page: power of 2");
_Static_assert(PYX_MEM_SLOTS == 1024, "slot hash uses 10 bits");
#define SLOT_BITS 10

/* ---- the live process: a memory source -------------------------------- */

/* PAGEMAP_SCAN (Linux 6.7): the runs of pages with given flags, without
 * one 8-byte entry per page.  The kernel ABI, for older headers. */
#ifndef PAGEMAP_SCAN
struct page_region {
	__u64 start, end, categories;
};
struct pm_scan_arg {
	__u64 size, flags, start, end, walk_end, vec, vec_len, max_pages;
	__u64 category_inverted, category_mask, category_anyof_mask;
	__u64 return_mask;
};
#define PAGEMAP_SCAN _IOWR('f', 16, struct pm_scan_arg)
#define PAGE_IS_PRESENT (1 << 3)
#define PAGE_IS_SWAPPED (1 << 4)
#define PAGE_IS_PFNZERO (1 << 5)
#endif

/* /proc/PID/pagemap entries: bit 63 present, bit 62 swapped, the PFN in
 * bits 0-54 (0 unless we have CAP_SYS_ADMIN). */
#define PM_PRESENT (UINT64_C(1) << 63)
#define PM_SWAPPED (UINT64_C(1) << 62)
#define PM_PFN ((UINT64_C(1) << 55) - 1)
/* Without PAGEMAP_SCAN a mapping costs 8 bytes of pagemap per page: above
 * this many pages (64 GiB) it is taken as populated whole. */
#define PM_MAX_PAGES (UINT64_C(16) << 20)

struct live {
	pid_t pid;
	int mem_fd; /* /proc/PID/mem, once the fallback is on */
	int pm_fd;  /* /proc/PID/pagemap, once opened; -2: cannot be */
	bool use_pread;
	bool no_scan; /* PAGEMAP_SCAN unknown: read the entries */
	uint64_t zero_pfn; /* the shared zero page's PFN; 0: unknown */
};

static int exited(pid_t pid)
{
	return pyx_err_set(PYX_E_EXITED, "process %d exited", (int)pid);
}

static int live_open_mem(struct live *lv)
{
	char path[64];
	int e;

	snprintf(path, sizeof(path), "/proc/%d/mem", (int)lv->pid);
	lv->mem_fd = open(path, O_RDONLY | O_CLOEXEC);
	if (lv->mem_fd >= 0)
		return 0;
	e = errno;
	if (e == ENOENT || e == ESRCH)
		return exited(lv->pid);
	if (e == EACCES || e == EPERM)
		return pyx_err_set(PYX_E_PERMISSION,
				   "open %s: %s; needs root or CAP_SYS_PTRACE",
				   path, strerror(e));
	return pyx_err_set(PYX_E_IO, "open %s: %s", path, strerror(e));
}

static int live_pread(struct live *lv, pyx_addr_t addr, uint8_t *buf,
		      size_t len)
{
	size_t done = 0;
	int rc;

	/* File offsets are signed. */
	if (addr > (uint64_t)INT64_MAX || len > (uint64_t)INT64_MAX - addr)
		return pyx_err_set(PYX_E_BAD_MEMORY, "address " PYX_PRIaddr
				   " not mapped (%zu bytes)", addr, len);
	if (lv->mem_fd < 0 && (rc = live_open_mem(lv)) < 0)
		return rc;
	while (done < len) {
		ssize_t k = pread(lv->mem_fd, buf + done, len - done,
				  (off_t)(addr + done));

		if (k < 0) {
			int e = errno;

			if (e == EINTR)
				continue;
			if (e == EIO || e == EFAULT)
				return pyx_err_set(PYX_E_BAD_MEMORY,
						   "cannot read %zu bytes at "
						   PYX_PRIaddr,
						   len - done, addr + done);
			if (e == ESRCH)
				return exited(lv->pid);
			return pyx_err_set(PYX_E_IO, "pread /proc/%d/mem: %s",
					   (int)lv->pid, strerror(e));
		}
		if (k == 0) /* its address space is gone */
			return exited(lv->pid);
		done += (size_t)k;
	}
	return 0;
}

static int live_read(struct live *lv, pyx_addr_t addr, void *buf, size_t len)
{
	struct iovec local = { buf, len };
	struct iovec remote = { (void *)(uintptr_t)addr, len };
	ssize_t k;
	int e;

	if (lv->use_pread)
		return live_pread(lv, addr, buf, len);
	do
		k = process_vm_readv(lv->pid, &local, 1, &remote, 1, 0);
	while (k < 0 && errno == EINTR);
	if (k >= 0) {
		if ((size_t)k == len)
			return 0;
		return pyx_err_set(PYX_E_BAD_MEMORY,
				   "partial read at " PYX_PRIaddr
				   ": %zd of %zu bytes (fault at " PYX_PRIaddr
				   ")",
				   addr, k, len, addr + (uint64_t)k);
	}
	e = errno;
	switch (e) {
	case EFAULT:
		return pyx_err_set(PYX_E_BAD_MEMORY,
				   "cannot read %zu bytes at " PYX_PRIaddr, len,
				   addr);
	case ESRCH:
		return exited(lv->pid);
	case ENOSYS:
	case EPERM:
		/* seccomp, some containers: /proc/PID/mem may still do. */
		pyx_debug("process_vm_readv(%d): %s; using /proc/%d/mem",
			  (int)lv->pid, strerror(e), (int)lv->pid);
		lv->use_pread = true;
		return live_pread(lv, addr, buf, len);
	case ENOMEM:
		return pyx_err_set(PYX_E_NOMEM, "process_vm_readv: %s",
				   strerror(e));
	default:
		return pyx_err_set(PYX_E_IO, "process_vm_readv(%d, " PYX_PRIaddr
				   ", %zu): %s",
				   (int)lv->pid, addr, len, strerror(e));
	}
}

/* Many ranges with as few process_vm_readv calls as the iovec limit
 * allows.  A partial read stops inside the first range that faulted: that
 * one fails, the reading goes on after it.  stopped: NULL, or (on one of
 * several threads sharing lv) where the reading stopped because it needs
 * the /proc/PID/mem fallback, which only the caller's thread may switch
 * to (n: it did not). */
#define LIVE_IOV 512
static int live_read_ranges(struct live *lv, struct pyx_mem_range *r,
			    size_t n, uint64_t *syscalls, size_t *stopped)
{
	struct iovec local[LIVE_IOV], remote[LIVE_IOV];
	size_t i = 0;

	if (stopped)
		*stopped = n;
	while (i < n) {
		size_t k = 0, want = 0;
		ssize_t got;

		if (lv->use_pread) {
			int rc;

			(*syscalls)++;
			rc = live_pread(lv, r[i].addr, r[i].buf, r[i].len);
			if (rc == -PYX_E_EXITED || rc == -PYX_E_PERMISSION)
				return rc;
			r[i++].failed = rc < 0;
			continue;
		}
		for (; k < LIVE_IOV && i + k < n; k++) {
			local[k] = (struct iovec){ r[i + k].buf, r[i + k].len };
			remote[k] = (struct iovec){
				(void *)(uintptr_t)r[i + k].addr, r[i + k].len
			};
			want += r[i + k].len;
		}
		(*syscalls)++;
		got = process_vm_readv(lv->pid, local, k, remote, k, 0);
		if (got < 0) {
			int e = errno;

			if (e == EINTR)
				continue;
			if (e == ESRCH)
				return exited(lv->pid);
			if (e == ENOSYS || e == EPERM) {
				if (stopped) {
					*stopped = i;
					return 0;
				}
				lv->use_pread = true;
				continue;
			}
			if (e == ENOMEM)
				return pyx_err_set(PYX_E_NOMEM,
						   "process_vm_readv: %s",
						   strerror(e));
			if (e != EFAULT)
				return pyx_err_set(PYX_E_IO,
						   "process_vm_readv(%d): %s",
						   (int)lv->pid, strerror(e));
			got = 0;
		}
		if ((size_t)got == want) {
			for (size_t j = 0; j < k; j++)
				r[i + j].failed = false;
			i += k;
			continue;
		}
		for (size_t j = 0; j < k; j++) {
			if ((size_t)got >= r[i + j].len) {
				got -= (ssize_t)r[i + j].len;
				r[i + j].failed = false;
				continue;
			}
			r[i + j].failed = true;
			i += j + 1;
			break;
		}
	}
	return 0;
}

static int live_open_pagemap(struct live *lv)
{
	char path[64];

	if (lv->pm_fd == -2)
		return -1;
	if (lv->pm_fd >= 0)
		return 0;
	snprintf(path, sizeof(path), "/proc/%d/pagemap", (int)lv->pid);
	lv->pm_fd = open(path, O_RDONLY | O_CLOEXEC);
	if (lv->pm_fd >= 0)
		return 0;
	pyx_debug("open %s: %s; copying whole mappings", path,
		  strerror(errno));
	lv->pm_fd = -2;
	return -1;
}

static int pagemap_scan(struct live *lv, pyx_addr_t start, pyx_addr_t end,
			int (*cb)(void *, pyx_addr_t, pyx_addr_t), void *arg)
{
	struct page_region reg[256];
	pyx_addr_t at = start;

	while (at < end) {
		struct pm_scan_arg a = {
			.size = sizeof(a),
			.start = at,
			.end = end,
			.vec = (uintptr_t)reg,
			.vec_len = PYX_ARRAY_SIZE(reg),
			/* Present or swapped, but not the shared zero page
			 * (what a read of an untouched page maps, our own
			 * copies included): zeros need no copy. */
			.category_inverted = PAGE_IS_PFNZERO,
			.category_mask = PAGE_IS_PFNZERO,
			.category_anyof_mask = PAGE_IS_PRESENT | PAGE_IS_SWAPPED,
			.return_mask = PAGE_IS_PRESENT | PAGE_IS_SWAPPED,
		};
		int k = ioctl(lv->pm_fd, PAGEMAP_SCAN, &a), rc;

		if (k < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		for (int i = 0; i < k && i < (int)PYX_ARRAY_SIZE(reg); i++) {
			if (reg[i].start < at || reg[i].end > end ||
			    reg[i].start >= reg[i].end)
				return -EIO;
			if ((rc = cb(arg, reg[i].start, reg[i].end)))
				return rc;
		}
		/* Each call moves on: else trust none of it. */
		if (a.walk_end <= at || a.walk_end > end)
			return -EIO;
		at = a.walk_end;
	}
	return 0;
}

/* The PFN of the shared zero page, from a page of ours that was only
 * read; 0 if the kernel hides PFNs. */
static uint64_t zero_pfn(void)
{
	uint64_t ent = 0, pfn = 0;
	volatile uint8_t *p;
	int fd;

	p = mmap(NULL, PYX_MEM_PAGE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS,
		 -1, 0);
	if (p == MAP_FAILED)
		return 0;
	(void)p[0];
	fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	if (fd >= 0 && pread(fd, &ent, 8, (off_t)((uintptr_t)p /
						  PYX_MEM_PAGE * 8)) == 8 &&
	    (ent & PM_PRESENT))
		pfn = ent & PM_PFN;
	if (fd >= 0)
		close(fd);
	munmap((void *)p, PYX_MEM_PAGE);
	return pfn;
}

static int pagemap_read(struct live *lv, pyx_addr_t start, pyx_addr_t end,
			int (*cb)(void *, pyx_addr_t, pyx_addr_t), void *arg)
{
	uint64_t ent[512];
	pyx_addr_t run = 0, at = start;
	bool in_run = false;
	int rc;

	if ((end - start) / PYX_MEM_PAGE > PM_MAX_PAGES)
		return -EFBIG;
	if (!lv->zero_pfn)
		lv->zero_pfn = zero_pfn();
	while (at < end) {
		size_t want = (size_t)((end - at) / PYX_MEM_PAGE);
		ssize_t k;

		if (want > PYX_ARRAY_SIZE(ent))
			want = PYX_ARRAY_SIZE(ent);
		k = pread(lv->pm_fd, ent, want * 8,
			  (off_t)(at / PYX_MEM_PAGE * 8));
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 8)
			return k < 0 ? -errno : -EIO;
		for (ssize_t i = 0; i < k / 8; i++, at += PYX_MEM_PAGE) {
			bool has = (ent[i] & PM_SWAPPED) ||
				   ((ent[i] & PM_PRESENT) &&
				    (!lv->zero_pfn ||
				     (ent[i] & PM_PFN) != lv->zero_pfn));

			if (has && !in_run)
				run = at;
			else if (!has && in_run && (rc = cb(arg, run, at)))
				return rc;
			in_run = has;
		}
	}
	if (in_run && (rc = cb(arg, run, end)))
		return rc;
	return 0;
}

static int live_populated(struct live *lv, pyx_addr_t start, pyx_addr_t end,
			  int (*cb)(void *, pyx_addr_t, pyx_addr_t), void *arg)
{
	int rc;

	if (live_open_pagemap(lv) < 0)
		return -EACCES;
	if (!lv->no_scan) {
		rc = pagemap_scan(lv, start, end, cb, arg);
		if (rc != -ENOTTY)
			return rc;
		/* A kernel before 6.7 (the first call failed: nothing was
		 * reported yet). */
		lv->no_scan = true;
	}
	return pagemap_read(lv, start, end, cb, arg);
}

/* ---- the memory reader ------------------------------------------------ */

struct slot {
	uint64_t page; /* page number (addr / PYX_MEM_PAGE) */
	uint64_t gen;  /* valid iff == mem->gen */
};

/* Address ranges of the copy.  A run is copied bytes; a span is a range
 * the copy answers for without bytes (zeros, or a refusal). */
struct run {
	pyx_addr_t start, end;
	uint8_t *data;
};
struct span {
	pyx_addr_t start, end;
};

#define RCACHE 1024

struct copy {
	uint8_t *buf; /* mmap'ed, len bytes; NULL: no copy */
	size_t len;
	size_t faulted; /* the first faulted bytes of buf are in memory
			   (written by the copy, or prefaulted) */
	struct run *runs; /* sorted, disjoint, merged when adjacent */
	size_t nruns;
	struct span *zero; /* the mappings copied: zeros where no run is */
	size_t nzero;
	struct span *lost; /* wanted but not copied: refused */
	size_t nlost;
	uint64_t serial; /* this copy among all copies, for struct run_hint */
};

/* Which run served a thread's last reads of a copy.  Per thread, so that
 * several threads may walk one copy at once with no lock and no shared
 * line written on every read: the hint of another copy (serial) is
 * reset, not trusted.  1 MiB chunk -> run: objects of a walk hop between
 * arenas, and a binary search per read would cost more than the read. */
struct run_hint {
	uint64_t serial;
	size_t last; /* run of the last hit */
	struct {
		uint64_t chunk; /* addr >> 20, + 1 (0: empty) */
		uint32_t idx;
	} rcache[RCACHE];
};
static _Thread_local struct run_hint run_hint;
static uint64_t copy_serial; /* atomic: the last serial given out */

struct pyx_mem {
	struct pyx_mem_source src; /* src.maps NULL: no maps check (tests) */
	struct live *live;         /* the source when src.read is NULL */
	bool no_cache; /* the cache could not be allocated: read direct */
	uint64_t gen;
	uint64_t refresh_gen; /* generation of the last refresh on a miss */
	uint64_t refreshes;
	struct slot *slots;
	uint8_t *data; /* PYX_MEM_SLOTS * PYX_MEM_PAGE */
	struct pyx_mem_stats stats;
	struct copy copy;
	uint8_t *spare; /* reserved for the next copy, spare_len bytes */
	size_t spare_len;
	size_t spare_faulted; /* of which the first are prefaulted */
	unsigned jobs; /* threads for a copy and its buffer (1: none) */
	/* While a copy exists, reads that the copy does not serve (the page
	 * cache of read-only mappings, the source, the stats) take it: a
	 * walk may read the copy from several threads.  Without a copy the
	 * reader is single-threaded and the lock is not taken. */
	pthread_mutex_t lock;
};

int pyx_mem_new(const struct pyx_mem_source *src, struct pyx_mem **out)
{
	struct pyx_mem *mem;

	if (!out || !src)
		return pyx_err_set(PYX_E_USAGE, "pyx_mem_new: NULL argument");
	*out = NULL;
	if (!src->read && src->pid <= 0)
		return pyx_err_set(PYX_E_NO_PROCESS, "no process with PID %d",
				   (int)src->pid);
	mem = calloc(1, sizeof(*mem));
	if (!mem)
		return pyx_err_set(PYX_E_NOMEM, "out of memory");
	mem->src = *src;
	if (!src->read) {
		mem->live = calloc(1, sizeof(*mem->live));
		if (!mem->live) {
			free(mem);
			return pyx_err_set(PYX_E_NOMEM, "out of memory");
		}
		mem->live->pid = src->pid;
		mem->live->mem_fd = -1;
		mem->live->pm_fd = -1;
	}
	mem->gen = 1;
	mem->jobs = pyx_jobs(0);
	pthread_mutex_init(&mem->lock, NULL);
	*out = mem;
	return 0;
}

int pyx_mem_new_pid(pid_t pid, struct pyx_mem **out)
{
	struct pyx_mem_source src = { .pid = pid };

	return pyx_mem_new(&src, out);
}

static const struct pyx_map *mem_maps(const struct pyx_mem *mem, size_t *n)
{
	*n = 0;
	return mem->src.maps ? mem->src.maps(mem->src.ctx, n) : NULL;
}

void pyx_mem_free(struct pyx_mem *mem)
{
	if (!mem)
		return;
	pyx_mem_snapshot_release(mem);
	if (mem->live) {
		if (mem->live->mem_fd >= 0)
			close(mem->live->mem_fd);
		if (mem->live->pm_fd >= 0)
			close(mem->live->pm_fd);
		free(mem->live);
	}
	free(mem->slots);
	free(mem->data);
	pthread_mutex_destroy(&mem->lock);
	free(mem);
}

void pyx_mem_set_jobs(struct pyx_mem *mem, unsigned jobs)
{
	if (mem)
		mem->jobs = pyx_jobs(jobs);
}

void pyx_mem_invalidate(struct pyx_mem *mem)
{
	if (mem)
		mem->gen++;
}

void pyx_mem_get_stats(const struct pyx_mem *mem, struct pyx_mem_stats *out)
{
	if (!out)
		return;
	if (!mem) {
		memset(out, 0, sizeof(*out));
		return;
	}
	*out = mem->stats;
}

/* One read of the source, no cache, no maps check. */
static int src_read(struct pyx_mem *mem, pyx_addr_t addr, void *buf,
		    size_t len)
{
	int err;

	mem->stats.syscalls++;
	if (mem->live)
		err = live_read(mem->live, addr, buf, len);
	else
		err = mem->src.read(mem->src.ctx, addr, buf, len);
	if (err == 0)
		mem->stats.bytes += len;
	return err;
}

/* Whether [addr, addr+len) lies in readable mappings, as last read. */
static bool in_maps(const struct pyx_mem *mem, pyx_addr_t addr, size_t len)
{
	pyx_addr_t end;

	if (!mem || addr == 0)
		return false;
	if (len == 0)
		len = 1;
	if (addr + len < addr) /* wraps */
		return false;
	end = addr + len;
	if (!mem->src.maps)
		return true;
	/* May span contiguous readable mappings; each step moves to the
	 * next mapping, so this is bounded by their number. */
	while (addr < end) {
		size_t nm;
		const struct pyx_map *maps = mem_maps(mem, &nm);
		const struct pyx_map *m = pyx_maps_find(maps, nm, addr);

		if (!m || !m->r)
			return false;
		if (end <= m->end)
			return true;
		addr = m->end;
	}
	return true;
}

static int not_mapped(pyx_addr_t addr, size_t len)
{
	return pyx_err_set(PYX_E_BAD_MEMORY,
			   "address " PYX_PRIaddr " not mapped (%zu bytes)",
			   addr, len);
}

/* The maps check.  A miss re-reads the maps once per cache generation
 * (each stop and resume starts one): the target may have mapped the
 * address since they were read (a new thread's stack, a new arena).  On a
 * miss only: re-reading them on every stop would lengthen every pause
 * (0.1 ms for 57 mappings).  Never while a heap copy exists: the copy is
 * the address space of its moment. */
bool pyx_mem_valid(struct pyx_mem *mem, pyx_addr_t addr, size_t len)
{
	if (in_maps(mem, addr, len))
		return true;
	if (!mem || !mem->src.refresh_maps || mem->copy.buf || addr == 0 ||
	    addr + len < addr || mem->refresh_gen == mem->gen)
		return false;
	mem->refresh_gen = mem->gen;
	mem->refreshes++;
	if (mem->src.refresh_maps(mem->src.ctx) < 0) {
		pyx_debug("maps not re-read: %s", pyx_err_detail());
		pyx_err_clear();
	}
	return in_maps(mem, addr, len);
}

static int check_maps(struct pyx_mem *mem, pyx_addr_t addr, size_t len)
{
	return pyx_mem_valid(mem, addr, len) ? 0 : not_mapped(addr, len);
}

static bool ensure_cache(struct pyx_mem *mem)
{
	if (mem->data)
		return true;
	if (mem->no_cache)
		return false;
	mem->slots = calloc(PYX_MEM_SLOTS, sizeof(*mem->slots));
	mem->data = malloc((size_t)PYX_MEM_SLOTS * PYX_MEM_PAGE);
	if (!mem->slots || !mem->data) {
		free(mem->slots);
		free(mem->data);
		mem->slots = NULL;
		mem->data = NULL;
		mem->no_cache = true;
		pyx_debug("page cache not allocated; reading uncached");
		return false;
	}
	return true;
}

/* The cached copy of page number pn, reading it if needed. */
static int get_page(struct pyx_mem *mem, uint64_t pn, const uint8_t **out)
{
	size_t i = (size_t)((pn * UINT64_C(0x9E3779B97F4A7C15)) >>
			    (64 - SLOT_BITS));
	struct slot *s = &mem->slots[i];
	uint8_t *data = mem->data + i * PYX_MEM_PAGE;
	int rc;

	if (s->gen == mem->gen && s->page == pn) {
		mem->stats.hits++;
		*out = data;
		return 0;
	}
	s->gen = 0; /* the slot is being overwritten */
	rc = src_read(mem, pn * PYX_MEM_PAGE, data, PYX_MEM_PAGE);
	if (rc < 0)
		return rc;
	s->page = pn;
	s->gen = mem->gen;
	*out = data;
	return 0;
}

/* A read of the source through the cache (direct: around it). */
static int cached_read(struct pyx_mem *mem, pyx_addr_t addr, uint8_t *dst,
		       size_t len, bool direct)
{
	int rc = check_maps(mem, addr, len);

	if (rc < 0)
		return rc;
	if (direct || len > PYX_MEM_DIRECT_MIN || !ensure_cache(mem))
		return src_read(mem, addr, dst, len);
	while (len) {
		uint64_t pn = addr / PYX_MEM_PAGE;
		size_t off = (size_t)(addr % PYX_MEM_PAGE);
		size_t chunk = PYX_MEM_PAGE - off;
		const uint8_t *page;

		if (chunk > len)
			chunk = len;
		rc = get_page(mem, pn, &page);
		if (rc == 0) {
			memcpy(dst, page + off, chunk);
		} else if (rc == -PYX_E_BAD_MEMORY) {
			/* The whole page failed: try the exact range. */
			rc = src_read(mem, addr, dst, chunk);
			if (rc < 0)
				return rc;
		} else {
			return rc;
		}
		dst += chunk;
		addr += chunk;
		len -= chunk;
	}
	return 0;
}

static int copy_read(struct pyx_mem *mem, pyx_addr_t addr, uint8_t *dst,
		     size_t len, bool direct);
static int src_read_ranges(struct pyx_mem *mem, struct pyx_mem_range *r,
			   size_t n, uint64_t *sys);

static int mem_read(struct pyx_mem *mem, pyx_addr_t addr, void *buf,
		    size_t len, bool direct)
{
	if (!mem || (!buf && len))
		return pyx_err_set(PYX_E_USAGE, "pyx_mem_read: NULL");
	if (len == 0)
		return 0;
	if (addr == 0 || addr + len < addr)
		return not_mapped(addr, len);
	if (mem->copy.buf) {
		const void *p = pyx_mem_snapshot_ptr(mem, addr, len);
		int rc;

		if (p) {
			memcpy(buf, p, len);
			return 0;
		}
		pthread_mutex_lock(&mem->lock);
		rc = copy_read(mem, addr, buf, len, direct);
		pthread_mutex_unlock(&mem->lock);
		return rc;
	}
	/* Held in place (a core): no cache, no system call.  One thread
	 * only: the core's reader keeps a hint of its own. */
	if (mem->src.ptr) {
		const void *p = mem->src.ptr(mem->src.ctx, addr, len);

		if (p) {
			memcpy(buf, p, len);
			return 0;
		}
	}
	return cached_read(mem, addr, buf, len, direct);
}

int pyx_mem_read(struct pyx_mem *mem, pyx_addr_t addr, void *buf, size_t len)
{
	return mem_read(mem, addr, buf, len, false);
}

int pyx_mem_read_direct(struct pyx_mem *mem, pyx_addr_t addr, void *buf,
			size_t len)
{
	return mem_read(mem, addr, buf, len, true);
}

int pyx_mem_read_ranges(struct pyx_mem *mem, struct pyx_mem_range *r,
			size_t n)
{
	uint64_t sys = 0;
	size_t k;
	int rc = 0;

	if (!mem || (n && !r))
		return pyx_err_set(PYX_E_USAGE, "pyx_mem_read_ranges: NULL");
	if (mem->copy.buf || mem->src.ptr) {
		/* a copy or a core: no system call to save, and a copy's
		 * rules (a mapping it left out is refused) are mem_read()'s */
		for (size_t i = 0; i < n; i++) {
			rc = mem_read(mem, r[i].addr, r[i].buf, r[i].len, true);
			if (rc < 0 && rc != -PYX_E_BAD_MEMORY)
				return rc;
			r[i].failed = rc < 0;
			pyx_err_clear();
		}
		return 0;
	}
	/* the maps' check of every read (pyx_mem_read()'s): a range outside
	 * the readable mappings is refused before any system call, also
	 * where /proc/PID/mem could read it */
	for (size_t i = 0; i < n; i++) {
		r[i].failed = !pyx_mem_valid(mem, r[i].addr, r[i].len);
		if (r[i].failed)
			continue;
		for (k = i + 1; k < n && pyx_mem_valid(mem, r[k].addr, r[k].len);)
			r[k++].failed = false;
		if ((rc = src_read_ranges(mem, r + i, k - i, &sys)))
			break;
		i = k - 1;
	}
	mem->stats.syscalls += sys;
	for (size_t i = 0; i < n; i++)
		if (!r[i].failed && !rc)
			mem->stats.bytes += r[i].len;
	return rc;
}

int pyx_mem_read_u64(struct pyx_mem *mem, pyx_addr_t addr, uint64_t *out)
{
	uint64_t v;
	int rc;

	if (!out)
		return pyx_err_set(PYX_E_USAGE, "pyx_mem_read_u64: NULL");
	*out = 0;
	if (addr % 8)
		return pyx_err_set(PYX_E_BAD_MEMORY,
				   "misaligned 8-byte read at " PYX_PRIaddr,
				   addr);
	rc = pyx_mem_read(mem, addr, &v, sizeof(v));
	if (rc < 0)
		return rc;
	*out = v;
	return 0;
}

int pyx_mem_read_cstr(struct pyx_mem *mem, pyx_addr_t addr, char *buf,
		      size_t n)
{
	size_t got = 0;

	if (!mem || !buf || n == 0)
		return pyx_err_set(PYX_E_USAGE, "pyx_mem_read_cstr: bad "
						"arguments");
	buf[0] = '\0';
	/* Chunks never cross a page: a string that ends just before an
	 * unmapped page is read without touching it. */
	while (got < n - 1) {
		pyx_addr_t a = addr + got;
		size_t chunk = PYX_MEM_PAGE - (size_t)(a % PYX_MEM_PAGE);
		int rc;

		if (a < addr) { /* wrapped */
			buf[0] = '\0';
			return not_mapped(addr, got + 1);
		}
		if (chunk > n - 1 - got)
			chunk = n - 1 - got;
		/* In a copy, up to the NUL only: the bytes after it may be
		 * another object's, which a walker on another thread may be
		 * marking at this moment. */
		if (mem->copy.buf) {
			const char *p = pyx_mem_snapshot_ptr(mem, a, chunk);
			const char *z = p ? memchr(p, '\0', chunk) : NULL;

			if (p) {
				size_t k = z ? (size_t)(z - p) + 1 : chunk;

				memcpy(buf + got, p, k);
				if (z)
					return 0;
				got += k;
				continue;
			}
		}
		rc = pyx_mem_read(mem, a, buf + got, chunk);
		if (rc < 0) {
			buf[0] = '\0';
			return rc;
		}
		if (memchr(buf + got, '\0', chunk))
			return 0;
		got += chunk;
	}
	buf[n - 1] = '\0';
	return 0;
}

/* ---- the heap copy ---------------------------------------------------- */

/* Mappings that can hold Python objects: private and writable.  Not the
 * kernel's special ones, nor devices (reading those can have effects). */
static bool snap_wanted(const struct pyx_map *m)
{
	if (!m->r || !m->w || !m->p || m->end <= m->start)
		return false;
	if (m->path[0] == '[')
		return strcmp(m->path, "[heap]") == 0 ||
		       strncmp(m->path, "[anon", 5) == 0;
	return strncmp(m->path, "/dev/", 5) != 0;
}

/* Runs collected from the source's populated(), merged when adjacent. */
struct collect {
	struct run *v;
	size_t n, cap;
	uint64_t bytes;
	bool count_only;
};

static int collect_run(void *arg, pyx_addr_t s, pyx_addr_t e)
{
	struct collect *c = arg;

	if (e <= s)
		return 0;
	c->bytes += e - s;
	if (c->count_only)
		return 0;
	if (c->n && c->v[c->n - 1].end == s) {
		c->v[c->n - 1].end = e;
		return 0;
	}
	if (c->n == c->cap) {
		size_t ncap = c->cap ? c->cap * 2 : 64;
		struct run *v = realloc(c->v, ncap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		c->v = v;
		c->cap = ncap;
	}
	c->v[c->n++] = (struct run){ s, e, NULL };
	return 0;
}

/* Append the populated runs of m to c.  Where the source cannot tell, the
 * whole mapping.  0 or -PYX_E_NOMEM. */
static int collect_mapping(struct pyx_mem *mem, const struct pyx_map *m,
			   struct collect *c)
{
	size_t n0 = c->n;
	uint64_t b0 = c->bytes;
	int rc = -ENOSYS;

	/* A page not present is zeros only in anonymous memory.  In a file
	 * mapping (libpython's .data: _PyRuntime, the static types) it is
	 * the file's page: never faulted in, or reclaimed clean
	 * (MADV_PAGEOUT/COLD); such a mapping is copied whole. */
	if (m->inode != 0)
		rc = -ENOSYS;
	else if (mem->live)
		rc = live_populated(mem->live, m->start, m->end, collect_run, c);
	else if (mem->src.populated)
		rc = mem->src.populated(mem->src.ctx, m->start, m->end,
					collect_run, c);
	if (rc == -ENOMEM)
		return pyx_err_set(PYX_E_NOMEM, "out of memory");
	if (rc == 0)
		return 0;
	c->n = n0;
	c->bytes = b0;
	if (collect_run(c, m->start, m->end))
		return pyx_err_set(PYX_E_NOMEM, "out of memory");
	return 0;
}

uint64_t pyx_mem_readable_bytes(const struct pyx_mem *mem)
{
	const struct pyx_map *maps;
	uint64_t sum = 0;
	size_t n;

	if (!mem)
		return 0;
	maps = mem_maps(mem, &n);
	for (size_t i = 0; i < n; i++)
		if (maps[i].r && maps[i].end > maps[i].start)
			sum += maps[i].end - maps[i].start;
	return sum;
}

uint64_t pyx_mem_snapshot_size(const struct pyx_mem *cmem)
{
	struct pyx_mem *mem = (struct pyx_mem *)cmem; /* the pagemap fd */
	struct collect c = { .count_only = true };
	const struct pyx_map *maps;
	size_t n;

	if (!mem || !mem->src.maps)
		return 0;
	maps = mem_maps(mem, &n);
	for (size_t i = 0; i < n; i++)
		if (snap_wanted(&maps[i]))
			(void)collect_mapping(mem, &maps[i], &c);
	return c.bytes;
}

bool pyx_mem_has_snapshot(const struct pyx_mem *mem)
{
	return mem && mem->copy.buf;
}

/* A buffer for a copy, the first prefault bytes populated now (before the
 * stop: a fresh page costs a fault and its zeroing, which would otherwise
 * lengthen the pause), with MADV_POPULATE_WRITE where the kernel has it (one
 * call instead of a fault per page) and by touching each page where not.
 *
 * Small pages, on purpose.  Huge pages save faults when memory is warm (a
 * 5 M-object census: 0.82 s against 0.95 s) but make the first run after
 * an idle spell three times slower (2.6-2.8 s): a huge page needs a free
 * 2 MiB block, and on a virtual machine whose balloon reports free memory
 * to the host (free page reporting, order 9) those are exactly the blocks
 * the host has taken back, so every one is faulted in again from the host;
 * small pages come first from the fragments the guest kept.  Where the host
 * reports nothing, a 2 MiB block may still cost a compaction.  With small
 * pages a cold run costs 1.09-1.13 s and a warm one 0.90-0.99 s
 * (docs/census.md).
 *
 * The faults are taken on jobs threads, each its own share: a fault's
 * cost is mostly the zeroing of its page and the page-table and cgroup
 * accounting, which other CPUs can do at the same time (5 M-object heap,
 * 635 MiB: 150-220 ms on one thread, 80-160 ms on two). */
struct prefault {
	uint8_t *p;
	size_t len;
};

/* How many of jobs threads share bytes (at least 1), each share of whole
 * pages and none under 16 MiB (below, a thread costs more than it saves);
 * *share: the bytes of each but the last. */
static unsigned shares(uint64_t bytes, unsigned jobs, uint64_t *share)
{
	if (jobs > bytes / (16u << 20))
		jobs = (unsigned)(bytes / (16u << 20));
	if (jobs < 1)
		jobs = 1;
	*share = (bytes / jobs + 4095) & ~(uint64_t)4095;
	return jobs;
}

static void prefault_share(void *arg)
{
	struct prefault *f = arg;

	if (!f->len)
		return;
#ifdef MADV_POPULATE_WRITE
	if (madvise(f->p, f->len, MADV_POPULATE_WRITE) == 0)
		return;
#endif
	/* Older kernels (before 5.14), or the call failed: touch. */
	for (size_t off = 0; off < f->len; off += 4096)
		((volatile uint8_t *)f->p)[off] = 0;
}

static uint8_t *snap_alloc(size_t len, size_t prefault, unsigned jobs)
{
	struct prefault f[PYX_PARALLEL_MAX];
	uint8_t *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	uint64_t share;
	size_t off = 0;

	if (p == MAP_FAILED)
		return NULL;
	if (prefault > len)
		prefault = len;
#ifdef MADV_NOHUGEPAGE
	/* Whatever transparent_hugepage/enabled says ("always" included). */
	madvise(p, len, MADV_NOHUGEPAGE);
#endif
	if (!prefault)
		return p;
	jobs = shares(prefault, jobs, &share);
	for (unsigned i = 0; i < jobs; i++) {
		size_t n = off < prefault ? prefault - off : 0;

		f[i] = (struct prefault){ p + off, n < share ? n : (size_t)share };
		off += f[i].len;
	}
	pyx_parallel(jobs, prefault_share, f, sizeof(f[0]));
	return p;
}

int pyx_mem_snapshot_reserve(struct pyx_mem *mem, uint64_t bytes,
			     uint64_t slack)
{
	if (!mem)
		return pyx_err_set(PYX_E_USAGE, "pyx_mem_snapshot_reserve: NULL");
	if (bytes > SIZE_MAX / 2 || slack > SIZE_MAX / 2)
		return pyx_err_set(PYX_E_NOMEM, "cannot map %" PRIu64 " bytes "
				   "for a copy of the heap", bytes + slack);
	if (mem->spare && mem->spare_len >= bytes + slack)
		return 0;
	if (mem->spare)
		munmap(mem->spare, mem->spare_len);
	mem->spare_len = 0;
	mem->spare_faulted = 0;
	mem->spare = snap_alloc(bytes + slack, bytes, mem->jobs);
	if (!mem->spare)
		return pyx_err_set(PYX_E_NOMEM, "cannot map %" PRIu64 " bytes "
				   "for a copy of the heap: %s", bytes + slack,
				   strerror(errno));
	mem->spare_len = bytes + slack;
	mem->spare_faulted = bytes;
	return 0;
}

static void release_copy(struct pyx_mem *mem)
{
	struct copy *c = &mem->copy;

	if (c->buf)
		munmap(c->buf, c->len);
	free(c->runs);
	free(c->zero);
	free(c->lost);
	memset(c, 0, sizeof(*c));
}

static void release_spare(struct pyx_mem *mem)
{
	if (mem->spare) {
		munmap(mem->spare, mem->spare_len);
		mem->spare = NULL;
		mem->spare_len = 0;
		mem->spare_faulted = 0;
	}
}

void pyx_mem_snapshot_release(struct pyx_mem *mem)
{
	if (!mem)
		return;
	release_copy(mem);
	release_spare(mem);
}

int pyx_mem_snapshot_release_pages(struct pyx_mem *mem, void **buf,
				   size_t *len, size_t *faulted)
{
	struct copy *c;

	if (!mem || !buf || !len || !faulted)
		return pyx_err_set(PYX_E_USAGE, "pyx_mem_snapshot_release_pages: "
				   "NULL argument");
	c = &mem->copy;
	*buf = c->buf;
	*len = c->buf ? c->len : 0;
	*faulted = c->buf ? (c->faulted < c->len ? c->faulted : c->len) : 0;
	/* the caller's now: release_copy() must not unmap it */
	c->buf = NULL;
	release_copy(mem);
	release_spare(mem);
	return 0;
}

const void *pyx_mem_snapshot_ptr(struct pyx_mem *mem, pyx_addr_t addr,
				 size_t len)
{
	if (!mem->copy.buf && mem->src.ptr)
		return len && addr + len > addr ?
			       mem->src.ptr(mem->src.ctx, addr, len) : NULL;
	return pyx_mem_snapshot_wptr(mem, addr, len);
}

void *pyx_mem_snapshot_wptr(struct pyx_mem *mem, pyx_addr_t addr, size_t len)
{
	struct copy *c = &mem->copy;
	struct run_hint *h = &run_hint;
	const struct run *r;
	uint64_t chunk = (addr >> 20) + 1;
	size_t lo, hi, slot = (size_t)chunk & (RCACHE - 1);

	if (!c->nruns)
		return NULL;
	if (h->serial != c->serial) {
		memset(h, 0, sizeof(*h));
		h->serial = c->serial;
	}
	/* Walks go object to nearby object: the last run usually hits. */
	r = &c->runs[h->last];
	if (addr >= r->start && addr < r->end)
		goto found;
	if (h->rcache[slot].chunk == chunk &&
	    h->rcache[slot].idx < c->nruns) {
		r = &c->runs[h->rcache[slot].idx];
		if (addr >= r->start && addr < r->end) {
			h->last = h->rcache[slot].idx;
			goto found;
		}
	}
	lo = 0;
	hi = c->nruns;
	while (hi - lo > 1) {
		size_t mid = lo + (hi - lo) / 2;

		if (c->runs[mid].start <= addr)
			lo = mid;
		else
			hi = mid;
	}
	r = &c->runs[lo];
	if (addr < r->start || addr >= r->end)
		return NULL;
	h->last = lo;
	h->rcache[slot].chunk = chunk;
	h->rcache[slot].idx = (uint32_t)lo;
found:
	if (len > r->end - addr)
		return NULL;
	return r->data + (addr - r->start);
}

/* In an array sorted by start (struct run or struct span: both begin with
 * start, end): the index of the element holding addr, or SIZE_MAX; *next:
 * the start of the first element after addr (UINT64_MAX: none). */
static size_t find_range(const void *arr, size_t n, size_t stride,
			 pyx_addr_t addr, pyx_addr_t *next)
{
#define AT(i) ((const pyx_addr_t *)((const char *)arr + (i) * stride))
	size_t lo = 0, hi = n;

	*next = UINT64_MAX;
	if (!n)
		return SIZE_MAX;
	if (AT(0)[0] > addr) {
		*next = AT(0)[0];
		return SIZE_MAX;
	}
	while (hi - lo > 1) { /* the last element with start <= addr */
		size_t mid = lo + (hi - lo) / 2;

		if (AT(mid)[0] <= addr)
			lo = mid;
		else
			hi = mid;
	}
	if (lo + 1 < n)
		*next = AT(lo + 1)[0];
	return addr < AT(lo)[1] ? lo : SIZE_MAX;
#undef AT
}

static int not_copied(pyx_addr_t addr, size_t len)
{
	return pyx_err_set(PYX_E_BAD_MEMORY,
			   "address " PYX_PRIaddr " (%zu bytes) was not copied "
			   "with the heap (--max-copy reached, or unreadable); "
			   "not read from the running process, which has moved "
			   "on since the copy", addr, len);
}

/* A read while a copy exists, piece by piece: copied bytes from the copy,
 * pages never touched as zeros, what the copy left out refused, and the
 * rest (read-only mappings) from the source. */
static int copy_read(struct pyx_mem *mem, pyx_addr_t addr, uint8_t *dst,
		     size_t len, bool direct)
{
	const struct copy *c = &mem->copy;

	while (len) {
		pyx_addr_t lim = addr + len, next;
		size_t i, n;
		int rc;

		i = find_range(c->runs, c->nruns, sizeof(*c->runs), addr, &next);
		if (i != SIZE_MAX) {
			n = c->runs[i].end - addr < len ?
				    (size_t)(c->runs[i].end - addr) : len;
			memcpy(dst, c->runs[i].data + (addr - c->runs[i].start),
			       n);
			goto next_piece;
		}
		if (next < lim)
			lim = next;
		i = find_range(c->lost, c->nlost, sizeof(*c->lost), addr, &next);
		if (i != SIZE_MAX)
			return not_copied(addr, len);
		if (next < lim)
			lim = next;
		i = find_range(c->zero, c->nzero, sizeof(*c->zero), addr, &next);
		if (i != SIZE_MAX) {
			if (c->zero[i].end < lim)
				lim = c->zero[i].end;
			n = (size_t)(lim - addr);
			memset(dst, 0, n);
			goto next_piece;
		}
		if (next < lim)
			lim = next;
		n = (size_t)(lim - addr);
		if ((rc = cached_read(mem, addr, dst, n, direct)) < 0)
			return rc;
next_piece:
		dst += n;
		addr += n;
		len -= n;
	}
	return 0;
}

static int add_span(struct span **v, size_t *n, size_t *cap, pyx_addr_t s,
		    pyx_addr_t e)
{
	if (*n && (*v)[*n - 1].end == s) {
		(*v)[*n - 1].end = e;
		return 0;
	}
	if (*n == *cap) {
		size_t ncap = *cap ? *cap * 2 : 16;
		struct span *p = realloc(*v, ncap * sizeof(*p));

		if (!p)
			return pyx_err_set(PYX_E_NOMEM, "out of memory");
		*v = p;
		*cap = ncap;
	}
	(*v)[(*n)++] = (struct span){ s, e };
	return 0;
}

static int cmp_span(const void *a, const void *b)
{
	const struct span *x = a, *y = b;

	return (x->start > y->start) - (x->start < y->start);
}

/* A live copy on several threads: the runs cut into chunks of consecutive
 * pieces, which the threads take in order as each is done with the one
 * before (shares cut once, of equal bytes, ended 15% apart on the 5 M
 * heap, 92-95 against 107-110 ms: the target waits for the slower). */
struct copy_chunk {
	struct pyx_mem_range *r;
	size_t n, stopped;       /* stopped: where /proc/PID/mem must go on */
};

struct copy_share {
	struct live *lv;
	struct copy_chunk *ch;
	size_t nch, *next;       /* next: the chunk to take (atomic) */
	uint64_t sys;
	struct pyx_share_err e;
};

static void copy_share_read(void *arg)
{
	struct copy_share *s = arg;
	size_t k;

	while ((k = __atomic_fetch_add(s->next, 1, __ATOMIC_RELAXED)) < s->nch) {
		struct copy_chunk *c = &s->ch[k];
		int rc = live_read_ranges(s->lv, c->r, c->n, &s->sys,
					  &c->stopped);

		if (rc < 0) {
			pyx_share_err_keep(&s->e, rc);
			/* the others stop at their next chunk */
			__atomic_store_n(s->next, s->nch, __ATOMIC_RELAXED);
			return;
		}
	}
}

/* The copy of a live process on jobs threads: one process_vm_readv copies
 * at about 3.7 GB/s here, two at 7 (635 MiB: 180 ms, 95 ms), and the
 * target waits for the copy.  Chunks of about an eighth of a thread's
 * bytes, none under 16 MiB.  Pieces: the ranges cut at the chunks'
 * borders; piece_of: a piece's range, so that a failed piece fails its
 * range. */
#define COPY_CHUNKS_PER_JOB 8
static int live_read_parallel(struct live *lv, struct pyx_mem_range *r,
			      size_t n, unsigned jobs, uint64_t *sys)
{
	struct copy_share sh[PYX_PARALLEL_MAX];
	struct copy_chunk *ch = NULL;
	struct pyx_mem_range *p = NULL;
	size_t *piece_of = NULL, np = 0, cap, k = 0, nch, next = 0;
	uint64_t total = 0, size, filled = 0;
	int rc = 0;

	for (size_t i = 0; i < n; i++)
		total += r[i].len;
	jobs = shares(total, jobs, &size);
	size = total / ((uint64_t)jobs * COPY_CHUNKS_PER_JOB) + 1;
	if (size < (16u << 20))
		size = 16u << 20;
	nch = (size_t)(total / size) + 1;
	cap = n + nch;
	p = calloc(cap, sizeof(*p));
	piece_of = calloc(cap, sizeof(*piece_of));
	ch = calloc(nch, sizeof(*ch));
	if (!p || !piece_of || !ch) {
		rc = pyx_err_set(PYX_E_NOMEM, "out of memory");
		goto out;
	}
	ch[0].r = p;
	for (size_t i = 0; i < n; i++) {
		size_t off = 0;

		/* Each chunk border cuts one range at most: np < cap. */
		while (off < r[i].len && np < cap) {
			uint64_t room;
			size_t len;

			if (k + 1 < nch && filled >= (k + 1) * size) {
				ch[k].n = np - (size_t)(ch[k].r - p);
				ch[++k].r = p + np;
			}
			room = k + 1 < nch ? (k + 1) * size - filled :
					     UINT64_MAX;
			len = r[i].len - off < room ? r[i].len - off :
						      (size_t)room;
			p[np] = (struct pyx_mem_range){ r[i].addr + off,
							(uint8_t *)r[i].buf +
								off,
							len, false };
			piece_of[np++] = i;
			off += len;
			filled += len;
		}
	}
	ch[k].n = np - (size_t)(ch[k].r - p);
	nch = k + 1;
	for (size_t c = 0; c < nch; c++)
		ch[c].stopped = ch[c].n;
	memset(sh, 0, sizeof(sh));
	for (unsigned j = 0; j < jobs; j++)
		sh[j] = (struct copy_share){ .lv = lv, .ch = ch, .nch = nch,
					     .next = &next };
	pyx_parallel(jobs, copy_share_read, sh, sizeof(sh[0]));
	for (unsigned j = 0; j < jobs; j++) {
		*sys += sh[j].sys;
		if (!rc)
			rc = pyx_share_err_raise(&sh[j].e);
	}
	/* process_vm_readv refused: the rest of those chunks through
	 * /proc/PID/mem, on this thread. */
	for (size_t c = 0; c < nch && !rc; c++)
		if (ch[c].stopped < ch[c].n) {
			lv->use_pread = true;
			rc = live_read_ranges(lv, ch[c].r + ch[c].stopped,
					      ch[c].n - ch[c].stopped, sys,
					      NULL);
		}
	for (size_t i = 0; i < n; i++)
		r[i].failed = false;
	for (size_t i = 0; i < np; i++)
		if (p[i].failed)
			r[piece_of[i]].failed = true;
out:
	free(ch);
	free(p);
	free(piece_of);
	return rc;
}

/* Ranges read from the source on this thread, as few system calls as its
 * backend allows (*sys counts them); a range not read whole is failed. */
static int src_read_ranges(struct pyx_mem *mem, struct pyx_mem_range *r,
			   size_t n, uint64_t *sys)
{
	int rc = 0;

	if (mem->live)
		return live_read_ranges(mem->live, r, n, sys, NULL);
	if (mem->src.read_ranges)
		return mem->src.read_ranges(mem->src.ctx, r, n, sys);
	for (size_t i = 0; i < n && !rc; i++) {
		(*sys)++;
		rc = mem->src.read(mem->src.ctx, r[i].addr, r[i].buf, r[i].len);
		r[i].failed = rc < 0;
		if (rc == -PYX_E_BAD_MEMORY)
			rc = 0;
	}
	return rc;
}

/* Read the runs into their places in the buffer; failed[i] for a run that
 * could not be read. */
static int copy_runs(struct pyx_mem *mem, struct run *runs, size_t n,
		     bool *failed)
{
	struct pyx_mem_range *r;
	uint64_t sys = 0, total = 0;
	unsigned jobs;
	int rc = 0;

	if (!n)
		return 0;
	r = calloc(n, sizeof(*r));
	if (!r)
		return pyx_err_set(PYX_E_NOMEM, "out of memory");
	for (size_t i = 0; i < n; i++) {
		r[i] = (struct pyx_mem_range){ runs[i].start, runs[i].data,
					       (size_t)(runs[i].end -
							runs[i].start),
					       false };
		total += r[i].len;
	}
	jobs = shares(total, mem->jobs, &(uint64_t){ 0 });
	if (mem->live && jobs > 1 && !mem->live->use_pread)
		rc = live_read_parallel(mem->live, r, n, jobs, &sys);
	else
		rc = src_read_ranges(mem, r, n, &sys);
	mem->stats.syscalls += sys;
	for (size_t i = 0; i < n; i++) {
		failed[i] = r[i].failed;
		if (!r[i].failed && !rc)
			mem->stats.bytes += r[i].len;
	}
	free(r);
	return rc;
}

int pyx_mem_snapshot(struct pyx_mem *mem, uint64_t max_bytes,
		     struct pyx_mem_snapshot_info *info)
{
	struct pyx_mem_snapshot_info in = { 0 };
	struct copy *c;
	const struct pyx_map *maps;
	struct collect col = { 0 };
	bool *failed = NULL;
	size_t n, nwanted = 0, zcap = 0, lcap = 0, out = 0;
	uint64_t t0 = pyx_now_ns(), sys0, off = 0;
	int rc = 0;

	if (info)
		*info = in;
	if (!mem || !mem->src.maps)
		return pyx_err_set(PYX_E_USAGE, "pyx_mem_snapshot: no maps");
	release_copy(mem);
	c = &mem->copy;
	sys0 = mem->stats.syscalls;
	maps = mem_maps(mem, &n);
	/* The plan: the populated runs of each wanted mapping, whole
	 * mappings in address order up to the bound. */
	for (size_t i = 0; i < n; i++) {
		const struct pyx_map *m = &maps[i];
		size_t n0 = col.n;
		uint64_t b0 = col.bytes;

		if (!snap_wanted(m))
			continue;
		nwanted++;
		if ((rc = collect_mapping(mem, m, &col)))
			goto fail;
		if (max_bytes && col.bytes > max_bytes) {
			in.truncated = true;
			in.skipped_bytes += col.bytes - b0;
			in.skipped_mappings++;
			col.n = n0;
			col.bytes = b0;
			rc = add_span(&c->lost, &c->nlost, &lcap, m->start,
				      m->end);
		} else {
			in.mappings++;
			in.virtual_bytes += m->end - m->start;
			rc = add_span(&c->zero, &c->nzero, &zcap, m->start,
				      m->end);
		}
		if (rc)
			goto fail;
	}
	if (!nwanted) {
		rc = pyx_err_set(PYX_E_BAD_MEMORY, "process %d has no "
				 "writable memory to copy", (int)mem->src.pid);
		goto fail;
	}
	/* One buffer, the runs packed in it. */
	if (mem->spare && mem->spare_len >= col.bytes && col.bytes) {
		c->buf = mem->spare;
		c->len = mem->spare_len;
		c->faulted = mem->spare_faulted;
		mem->spare = NULL;
		mem->spare_len = 0;
		mem->spare_faulted = 0;
	} else {
		c->len = col.bytes ? (size_t)col.bytes : PYX_MEM_PAGE;
		c->buf = snap_alloc(c->len, 0, 1);
		if (!c->buf) {
			c->len = 0;
			rc = pyx_err_set(PYX_E_NOMEM, "cannot map %" PRIu64
					 " bytes for a copy of the heap: %s",
					 col.bytes, strerror(errno));
			goto fail;
		}
	}
	for (size_t i = 0; i < col.n; i++) {
		col.v[i].data = c->buf + off;
		off += col.v[i].end - col.v[i].start;
	}
	/* the copy writes every byte of its runs (a run that fails may
	 * have written some): in memory from here on */
	if (c->faulted < off)
		c->faulted = (size_t)off;
	failed = calloc(col.n ? col.n : 1, sizeof(*failed));
	if (!failed) {
		rc = pyx_err_set(PYX_E_NOMEM, "out of memory");
		goto fail;
	}
	if ((rc = copy_runs(mem, col.v, col.n, failed)))
		goto fail;
	/* What failed is refused, not zeros; neighbours whose copies are
	 * adjacent too are merged, so a read across two runs is one. */
	for (size_t i = 0; i < col.n; i++) {
		struct run *r = &col.v[i];

		if (failed[i]) {
			in.skipped_bytes += r->end - r->start;
			if ((rc = add_span(&c->lost, &c->nlost, &lcap, r->start,
					   r->end)))
				goto fail;
			continue;
		}
		in.bytes += r->end - r->start;
		if (out && col.v[out - 1].end == r->start &&
		    col.v[out - 1].data +
				    (col.v[out - 1].end - col.v[out - 1].start) ==
			    r->data)
			col.v[out - 1].end = r->end;
		else
			col.v[out++] = *r;
	}
	if (in.skipped_bytes && !in.truncated)
		pyx_debug("heap copy: %" PRIu64 " bytes could not be read",
			  in.skipped_bytes);
	if (c->nlost > 1)
		qsort(c->lost, c->nlost, sizeof(*c->lost), cmp_span);
	free(failed);
	c->runs = col.v;
	c->nruns = out;
	c->serial = __atomic_add_fetch(&copy_serial, 1, __ATOMIC_RELAXED);
	in.syscalls = mem->stats.syscalls - sys0;
	in.ns = pyx_now_ns() - t0;
	if (info)
		*info = in;
	return 0;
fail:
	free(failed);
	free(col.v);
	release_copy(mem);
	return rc;
}

/* ---- test hooks ------------------------------------------------------- */

void pyx_mem_test_force_pread(struct pyx_mem *mem)
{
	if (mem && mem->live)
		mem->live->use_pread = true;
}

int pyx_mem_test_uses_pread(const struct pyx_mem *mem)
{
	return mem && mem->live && mem->live->use_pread;
}

uint64_t pyx_mem_test_refreshes(const struct pyx_mem *mem)
{
	return mem ? mem->refreshes : 0;
}

void pyx_mem_test_no_pagemap_scan(struct pyx_mem *mem)
{
	if (mem && mem->live)
		mem->live->no_scan = true;
}

const struct pyx_map *pyx_maps_find(const struct pyx_map *maps, size_t n,
				    pyx_addr_t addr)
{
	size_t lo = 0, hi = n;

	if (!maps || !n)
		return NULL;
	/* The last map with start <= addr. */
	while (hi - lo > 1) {
		size_t mid = lo + (hi - lo) / 2;

		if (maps[mid].start <= addr)
			lo = mid;
		else
			hi = mid;
	}
	if (maps[lo].start <= addr && addr < maps[lo].end)
		return &maps[lo];
	return NULL;
}
