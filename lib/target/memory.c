/* Reading the target's memory: process_vm_readv (or pread of
 * /proc/PID/mem where that is refused) behind a page cache.
 *
 * The cache is direct-mapped: PYX_MEM_SLOTS slots of one aligned 4 KiB page
 * each, the slot chosen by a hash of the page number, allocated on first
 * use (4 MiB) and never grown.  A page is read whole with one system call;
 * mappings are page-aligned, so a page inside a readable mapping is
 * readable as a whole.  Invalidation bumps a generation number: a slot is
 * valid only if it carries the current one.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

struct slot {
	uint64_t page; /* page number (addr / PYX_MEM_PAGE) */
	uint64_t gen;  /* valid iff == mem->gen */
};

#define RCACHE 1024

/* One contiguous copied range of the snapshot. */
struct snap_range {
	pyx_addr_t start, end;
	uint8_t *data;
};

struct pyx_mem {
	pid_t pid;
	struct pyx_mem_source src; /* src.maps NULL: no maps check (tests) */
	int fd;                /* /proc/PID/mem, once the fallback is on */
	bool use_pread;
	bool no_cache; /* the cache could not be allocated: read direct */
	uint64_t gen;
	struct slot *slots;
	uint8_t *data; /* PYX_MEM_SLOTS * PYX_MEM_PAGE */
	struct pyx_mem_stats stats;
	/* snapshot mode */
	uint8_t *snap;          /* mmap'ed copy, snap_len bytes */
	size_t snap_len;
	uint8_t *spare;         /* reserved for the next copy, spare_len bytes */
	size_t spare_len;
	struct snap_range *ranges; /* sorted, disjoint, merged when adjacent */
	size_t nranges;
	size_t last;            /* range of the last hit */
	/* 1 MiB chunk -> range: objects of a walk hop between arenas, and a
	 * binary search per read would cost more than the read. */
	struct {
		uint64_t chunk; /* addr >> 20, + 1 (0: empty) */
		uint32_t idx;
	} rcache[RCACHE];
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
	mem->pid = src->pid;
	mem->src = *src;
	mem->fd = -1;
	mem->gen = 1;
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
	if (mem->fd >= 0)
		close(mem->fd);
	free(mem->slots);
	free(mem->data);
	free(mem);
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

bool pyx_mem_valid(const struct pyx_mem *mem, pyx_addr_t addr, size_t len)
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

static int open_mem_fd(struct pyx_mem *mem)
{
	char path[64];
	int e;

	snprintf(path, sizeof(path), "/proc/%d/mem", (int)mem->pid);
	mem->fd = open(path, O_RDONLY | O_CLOEXEC);
	if (mem->fd >= 0)
		return 0;
	e = errno;
	if (e == ENOENT || e == ESRCH)
		return pyx_err_set(PYX_E_EXITED, "process %d exited",
				   (int)mem->pid);
	if (e == EACCES || e == EPERM)
		return pyx_err_set(PYX_E_PERMISSION,
				   "open %s: %s; needs root or CAP_SYS_PTRACE",
				   path, strerror(e));
	return pyx_err_set(PYX_E_IO, "open %s: %s", path, strerror(e));
}

static int pread_read(struct pyx_mem *mem, pyx_addr_t addr, uint8_t *buf,
		      size_t len)
{
	size_t done = 0;
	int rc;

	/* File offsets are signed. */
	if (addr > (uint64_t)INT64_MAX || len > (uint64_t)INT64_MAX - addr)
		return not_mapped(addr, len);
	if (mem->fd < 0) {
		rc = open_mem_fd(mem);
		if (rc < 0)
			return rc;
	}
	while (done < len) {
		ssize_t k;

		mem->stats.syscalls++;
		k = pread(mem->fd, buf + done, len - done,
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
				return pyx_err_set(PYX_E_EXITED,
						   "process %d exited",
						   (int)mem->pid);
			return pyx_err_set(PYX_E_IO, "pread /proc/%d/mem: %s",
					   (int)mem->pid, strerror(e));
		}
		if (k == 0) /* its address space is gone */
			return pyx_err_set(PYX_E_EXITED, "process %d exited",
					   (int)mem->pid);
		done += (size_t)k;
		mem->stats.bytes += (uint64_t)k;
	}
	return 0;
}

/* One read, no cache, no maps check. */
static int raw_read(struct pyx_mem *mem, pyx_addr_t addr, uint8_t *buf,
		    size_t len)
{
	struct iovec local = { buf, len };
	struct iovec remote = { (void *)(uintptr_t)addr, len };
	ssize_t k;
	int e;

	if (mem->src.read) {
		mem->stats.syscalls++;
		if ((e = mem->src.read(mem->src.ctx, addr, buf, len)) == 0)
			mem->stats.bytes += len;
		return e;
	}
	if (mem->use_pread)
		return pread_read(mem, addr, buf, len);
	do {
		mem->stats.syscalls++;
		k = process_vm_readv(mem->pid, &local, 1, &remote, 1, 0);
	} while (k < 0 && errno == EINTR);
	if (k >= 0) {
		mem->stats.bytes += (uint64_t)k;
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
		return pyx_err_set(PYX_E_EXITED, "process %d exited",
				   (int)mem->pid);
	case ENOSYS:
	case EPERM:
		/* seccomp, some containers: /proc/PID/mem may still do. */
		pyx_debug("process_vm_readv(%d): %s; using /proc/%d/mem",
			  (int)mem->pid, strerror(e), (int)mem->pid);
		mem->use_pread = true;
		return pread_read(mem, addr, buf, len);
	case ENOMEM:
		return pyx_err_set(PYX_E_NOMEM, "process_vm_readv: %s",
				   strerror(e));
	default:
		return pyx_err_set(PYX_E_IO, "process_vm_readv(%d, " PYX_PRIaddr
				   ", %zu): %s",
				   (int)mem->pid, addr, len, strerror(e));
	}
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
	rc = raw_read(mem, pn * PYX_MEM_PAGE, data, PYX_MEM_PAGE);
	if (rc < 0)
		return rc;
	s->page = pn;
	s->gen = mem->gen;
	*out = data;
	return 0;
}

/* What every read does first: serve it from the heap snapshot if it can
 * (*done), else refuse an address outside the readable maps.  Returns 0 or
 * an error. */
static int read_prologue(struct pyx_mem *mem, pyx_addr_t addr, void *buf,
			 size_t len, bool *done)
{
	*done = true;
	if (!mem || (!buf && len))
		return pyx_err_set(PYX_E_USAGE, "pyx_mem_read: NULL");
	if (len == 0)
		return 0;
	if (mem->snap) {
		const void *p = pyx_mem_snapshot_ptr(mem, addr, len);

		if (p) {
			memcpy(buf, p, len);
			return 0;
		}
	}
	if (!pyx_mem_valid(mem, addr, len))
		return not_mapped(addr, len);
	*done = false;
	return 0;
}

int pyx_mem_read(struct pyx_mem *mem, pyx_addr_t addr, void *buf, size_t len)
{
	uint8_t *dst = buf;
	bool done;
	int err = read_prologue(mem, addr, buf, len, &done);

	if (err || done)
		return err;
	if (len > PYX_MEM_DIRECT_MIN || !ensure_cache(mem))
		return raw_read(mem, addr, dst, len);
	while (len) {
		uint64_t pn = addr / PYX_MEM_PAGE;
		size_t off = (size_t)(addr % PYX_MEM_PAGE);
		size_t chunk = PYX_MEM_PAGE - off;
		const uint8_t *page;
		int rc;

		if (chunk > len)
			chunk = len;
		rc = get_page(mem, pn, &page);
		if (rc == 0) {
			memcpy(dst, page + off, chunk);
		} else if (rc == -PYX_E_BAD_MEMORY) {
			/* The whole page failed: try the exact range. */
			rc = raw_read(mem, addr, dst, chunk);
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

int pyx_mem_read_direct(struct pyx_mem *mem, pyx_addr_t addr, void *buf,
			size_t len)
{
	bool done;
	int err = read_prologue(mem, addr, buf, len, &done);

	if (err || done)
		return err;
	return raw_read(mem, addr, buf, len);
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

/* ---- snapshot mode ---------------------------------------------------- */

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

uint64_t pyx_mem_snapshot_size(const struct pyx_mem *mem)
{
	const struct pyx_map *maps;
	uint64_t total = 0;
	size_t n;

	if (!mem || !mem->src.maps)
		return 0;
	maps = mem_maps(mem, &n);
	for (size_t i = 0; i < n; i++)
		if (snap_wanted(&maps[i]))
			total += maps[i].end - maps[i].start;
	return total;
}

bool pyx_mem_has_snapshot(const struct pyx_mem *mem)
{
	return mem && mem->snap;
}

/* A buffer for a copy: huge pages where the kernel gives them (fewer
 * faults), every page touched now if prefault. */
static uint8_t *snap_alloc(size_t len, size_t prefault)
{
	uint8_t *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

	if (p == MAP_FAILED)
		return NULL;
#ifdef MADV_HUGEPAGE
	madvise(p, len, MADV_HUGEPAGE);
#endif
	for (size_t off = 0; off < prefault && off < len; off += 4096)
		((volatile uint8_t *)p)[off] = 0;
	return p;
}

int pyx_mem_snapshot_reserve(struct pyx_mem *mem, uint64_t bytes,
			     uint64_t slack)
{
	if (!mem)
		return pyx_err_set(PYX_E_USAGE, "pyx_mem_snapshot_reserve: NULL");
	if (mem->spare && mem->spare_len >= bytes + slack)
		return 0;
	if (mem->spare)
		munmap(mem->spare, mem->spare_len);
	mem->spare_len = 0;
	mem->spare = snap_alloc(bytes + slack, bytes);
	if (!mem->spare)
		return pyx_err_set(PYX_E_NOMEM, "cannot map %" PRIu64 " bytes "
				   "for a copy of the heap: %s", bytes + slack,
				   strerror(errno));
	mem->spare_len = bytes + slack;
	return 0;
}

static void release_copy(struct pyx_mem *mem)
{
	if (!mem->snap)
		return;
	munmap(mem->snap, mem->snap_len);
	free(mem->ranges);
	mem->snap = NULL;
	mem->snap_len = 0;
	mem->ranges = NULL;
	mem->nranges = 0;
	mem->last = 0;
}

void pyx_mem_snapshot_release(struct pyx_mem *mem)
{
	if (!mem)
		return;
	release_copy(mem);
	if (mem->spare) {
		munmap(mem->spare, mem->spare_len);
		mem->spare = NULL;
		mem->spare_len = 0;
	}
}

const void *pyx_mem_snapshot_ptr(struct pyx_mem *mem, pyx_addr_t addr,
				 size_t len)
{
	return pyx_mem_snapshot_wptr(mem, addr, len);
}

void *pyx_mem_snapshot_wptr(struct pyx_mem *mem, pyx_addr_t addr, size_t len)
{
	const struct snap_range *r;
	uint64_t chunk = (addr >> 20) + 1;
	size_t lo, hi, slot = (size_t)chunk & (RCACHE - 1);

	if (!mem->nranges)
		return NULL;
	/* Walks go object to nearby object: the last range usually hits. */
	r = &mem->ranges[mem->last];
	if (addr >= r->start && addr < r->end)
		goto found;
	if (mem->rcache[slot].chunk == chunk) {
		r = &mem->ranges[mem->rcache[slot].idx];
		if (addr >= r->start && addr < r->end) {
			mem->last = mem->rcache[slot].idx;
			goto found;
		}
	}
	lo = 0;
	hi = mem->nranges;
	while (hi - lo > 1) {
		size_t mid = lo + (hi - lo) / 2;

		if (mem->ranges[mid].start <= addr)
			lo = mid;
		else
			hi = mid;
	}
	r = &mem->ranges[lo];
	if (addr < r->start || addr >= r->end)
		return NULL;
	mem->last = lo;
	mem->rcache[slot].chunk = chunk;
	mem->rcache[slot].idx = (uint32_t)lo;
found:
	if (len > r->end - addr)
		return NULL;
	return r->data + (addr - r->start);
}

/* Copy ranges [first, last) of the plan, whose copies are contiguous in
 * the buffer, with as few process_vm_readv calls as the iovec limit
 * allows.  A range that cannot be read (it faults) is zeroed and marked
 * by data = NULL. */
#define SNAP_IOV 512
static int snap_copy(struct pyx_mem *mem, struct snap_range *rg, size_t n)
{
	struct iovec local[SNAP_IOV], remote[SNAP_IOV];
	size_t i = 0;

	while (i < n) {
		size_t k = 0, want = 0;
		ssize_t got;

		if (mem->use_pread || mem->src.read) {
			int rc = raw_read(mem, rg[i].start, rg[i].data,
					  rg[i].end - rg[i].start);

			if (rc == -PYX_E_EXITED)
				return rc;
			if (rc < 0)
				rg[i].data = NULL;
			i++;
			continue;
		}
		for (; k < SNAP_IOV && i + k < n; k++) {
			size_t len = rg[i + k].end - rg[i + k].start;

			local[k] = (struct iovec){ rg[i + k].data, len };
			remote[k] = (struct iovec){ (void *)(uintptr_t)rg[i + k].start,
						    len };
			want += len;
		}
		mem->stats.syscalls++;
		got = process_vm_readv(mem->pid, local, k, remote, k, 0);
		if (got < 0) {
			int e = errno;

			if (e == EINTR)
				continue;
			if (e == ESRCH)
				return pyx_err_set(PYX_E_EXITED,
						   "process %d exited",
						   (int)mem->pid);
			if (e == ENOSYS || e == EPERM) {
				mem->use_pread = true;
				continue;
			}
			if (e == ENOMEM)
				return pyx_err_set(PYX_E_NOMEM,
						   "process_vm_readv: %s",
						   strerror(e));
			if (e != EFAULT)
				return pyx_err_set(PYX_E_IO,
						   "process_vm_readv(%d): %s",
						   (int)mem->pid, strerror(e));
			got = 0;
		}
		mem->stats.bytes += (uint64_t)got;
		if ((size_t)got == want) {
			i += k;
			continue;
		}
		/* A partial read stops inside the first range that faulted:
		 * keep the ranges before it, drop that one, go on after it. */
		for (size_t j = 0; j < k; j++) {
			size_t len = rg[i + j].end - rg[i + j].start;

			if ((size_t)got >= len) {
				got -= (ssize_t)len;
				continue;
			}
			rg[i + j].data = NULL;
			i += j + 1;
			break;
		}
	}
	return 0;
}

int pyx_mem_snapshot(struct pyx_mem *mem, uint64_t max_bytes,
		     struct pyx_mem_snapshot_info *info)
{
	struct pyx_mem_snapshot_info in = { 0 };
	const struct pyx_map *maps;
	struct snap_range *rg = NULL;
	uint64_t t0 = pyx_now_ns(), sys0, total = 0;
	size_t n, nr = 0, off = 0, out = 0;
	int rc;

	if (!mem || !mem->src.maps)
		return pyx_err_set(PYX_E_USAGE, "pyx_mem_snapshot: no maps");
	release_copy(mem);
	sys0 = mem->stats.syscalls;
	maps = mem_maps(mem, &n);
	rg = calloc(n ? n : 1, sizeof(*rg));
	if (!rg)
		return pyx_err_set(PYX_E_NOMEM, "out of memory");
	for (size_t i = 0; i < n; i++) {
		uint64_t len = maps[i].end - maps[i].start;

		if (!snap_wanted(&maps[i]))
			continue;
		if (max_bytes && total + len > max_bytes) {
			in.truncated = true;
			in.skipped_bytes += len;
			continue;
		}
		rg[nr++] = (struct snap_range){ maps[i].start, maps[i].end, NULL };
		total += len;
	}
	if (total == 0) {
		free(rg);
		if (info)
			*info = in;
		return pyx_err_set(PYX_E_BAD_MEMORY, "process %d has no "
				   "writable memory to copy", (int)mem->pid);
	}
	if (mem->spare && mem->spare_len >= total) {
		mem->snap = mem->spare;
		total = mem->spare_len;
		mem->spare = NULL;
		mem->spare_len = 0;
	} else {
		mem->snap = snap_alloc(total, 0);
	}
	if (!mem->snap) {
		free(rg);
		return pyx_err_set(PYX_E_NOMEM, "cannot map %" PRIu64 " bytes "
				   "for a copy of the heap: %s", total,
				   strerror(errno));
	}
	mem->snap_len = total;
	for (size_t i = 0; i < nr; i++) {
		rg[i].data = mem->snap + off;
		off += rg[i].end - rg[i].start;
	}
	if ((rc = snap_copy(mem, rg, nr))) {
		free(rg);
		mem->ranges = NULL;
		release_copy(mem);
		return rc;
	}
	/* Drop what failed; merge neighbours whose copies are adjacent too,
	 * so a read across two mappings is still served. */
	for (size_t i = 0; i < nr; i++) {
		if (!rg[i].data) {
			in.skipped_bytes += rg[i].end - rg[i].start;
			continue;
		}
		in.bytes += rg[i].end - rg[i].start;
		in.mappings++;
		if (out && rg[out - 1].end == rg[i].start &&
		    rg[out - 1].data + (rg[out - 1].end - rg[out - 1].start) ==
			    rg[i].data)
			rg[out - 1].end = rg[i].end;
		else
			rg[out++] = rg[i];
	}
	mem->ranges = rg;
	mem->nranges = out;
	mem->last = 0;
	memset(mem->rcache, 0, sizeof(mem->rcache));
	in.syscalls = mem->stats.syscalls - sys0;
	in.ns = pyx_now_ns() - t0;
	if (info)
		*info = in;
	return 0;
}

void pyx_mem_test_force_pread(struct pyx_mem *mem)
{
	if (mem)
		mem->use_pread = true;
}

int pyx_mem_test_uses_pread(const struct pyx_mem *mem)
{
	return mem && mem->use_pread;
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
