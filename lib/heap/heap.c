/* Walking the GC lists: generations and the permanent generation of every
 * interpreter. */
#include <stdio.h>
#include <sys/time.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "object.h"
#include "pyxray/heap.h"
#include "pyxray/target.h"

#include "abi.h"
#include "referents.h"

unsigned pyx_heap_jobs(unsigned requested)
{
	return pyx_jobs(requested);
}

/* _gc_prev's low bits are flags (FINALIZED, COLLECTING), _gc_next's low
 * bit marks unreachable objects during a collection. */
#define GC_PTR_MASK (~(uint64_t)3)

/* The distinct GC states: one in the runtime (3.8, shared by every
 * interpreter) or one per interpreter, each with its lists as the ABI
 * layer lays them out. */
struct gc_state {
	struct pyx_gc_lists lists;
	int64_t interp_id;
};

static int gc_states(struct pyx_python *py, struct gc_state *out, size_t max,
		     size_t *n, size_t *interps_seen)
{
	pyx_addr_t interps[PYX_MAX_INTERPRETERS];
	size_t ninterp;
	uint64_t id;
	int err;

	*n = 0;
	if ((err = pyx_python_interps(py, interps,
				      max < PYX_MAX_INTERPRETERS ? max
								 : PYX_MAX_INTERPRETERS,
				      &ninterp)))
		return err;
	if (interps_seen)
		*interps_seen = ninterp;
	for (size_t i = 0; i < ninterp; i++) {
		struct gc_state *s = &out[*n];
		bool seen = false;

		if ((err = pyx_read_field(py, interps[i], PYX_L_IS_ID, &id)) ||
		    (err = pyx_abi_gc_lists(py, interps[i], &s->lists)))
			return err;
		for (size_t j = 0; j < *n; j++)
			seen |= out[j].lists.state == s->lists.state;
		if (!seen) {
			s->interp_id = (int64_t)id;
			(*n)++;
		}
	}
	return 0;
}

int pyx_heap_check(struct pyx_python *py, bool *collecting)
{
	struct gc_state *st;
	uint64_t fin, v;
	size_t n;
	int err;

	*collecting = false;
	if (pyx_layout_has(&py->layout, PYX_L_RT_FINALIZING) &&
	    (err = pyx_read_field(py, py->info.runtime, PYX_L_RT_FINALIZING,
				  &fin)) == 0 && fin)
		return pyx_err_set(PYX_E_NOT_SUPPORTED, "Python is finalizing "
				   "(Py_Finalize has begun): its heap is being "
				   "torn down");
	/* ~160 bytes each: not on the stack. */
	st = calloc(PYX_MAX_INTERPRETERS, sizeof(*st));
	if (!st)
		return -PYX_E_NOMEM;
	if ((err = gc_states(py, st, PYX_MAX_INTERPRETERS, &n, NULL)))
		goto out;
	if (!pyx_layout_has(&py->layout, PYX_L_GC_COLLECTING))
		goto out;
	for (size_t i = 0; i < n; i++) {
		if ((err = pyx_read_field_n(py, st[i].lists.state,
					    PYX_L_GC_COLLECTING, 4, &v)))
			goto out;
		if (v)
			*collecting = true;
	}
out:
	free(st);
	return err;
}

/* The lists mostly run in address order (objects are linked as they are
 * allocated, from pools in arenas): the page after the node's, asked for
 * ahead, is in the TLB and the cache when the list gets there, where a
 * list of 5 M nodes otherwise waits for each page in turn.  A prefetch
 * never faults: past the copy's run it does nothing. */
#define PREFETCH_AHEAD 4096

/* Read a GC header: from the snapshot without a copy when possible. */
static inline int gc_head(struct pyx_python *py, pyx_addr_t node,
			  uint64_t *next, uint64_t *prev)
{
	const uint64_t *h = pyx_heap_words(py->mem, node, 16);
	uint64_t buf[2];
	int err;

	if (!h) {
		if ((err = pyx_mem_read(py->mem, node, buf, sizeof(buf))))
			return err;
		h = buf;
	} else {
		__builtin_prefetch((const char *)h + PREFETCH_AHEAD);
	}
	/* PyGC_Head is {_gc_next, _gc_prev} in every version here. */
	*next = h[0];
	*prev = h[1];
	return 0;
}

/* A read refused because a bounded heap copy (--max-copy) left that
 * mapping out: the memory is not damaged, only missing from the copy (the
 * live process has moved on since).  The walk treats it as damage, a
 * partial result, not as a target that changed under it. */
static bool lost_in_copy(struct pyx_python *py, int err)
{
	return err == -PYX_E_BAD_MEMORY && pyx_mem_has_snapshot(py->mem) &&
	       strstr(pyx_err_detail(), "was not copied");
}

/* A list that cannot be followed further ends there: the nodes before the
 * bad link were visited, the rest of it is lost, the walk goes on with the
 * next list.  On a damaged process that partial view is what the user
 * needs; the caller counts the list and marks its result partial. */
static void cut(struct pyx_heap_stats *s, pyx_addr_t head, const char *why,
		pyx_addr_t node, pyx_addr_t before, uint64_t prev)
{
	s->damaged_lists++;
	pyx_debug("GC list at " PYX_PRIaddr " ends early after %s node "
		  PYX_PRIaddr ": %s (node " PYX_PRIaddr ", _gc_prev "
		  PYX_PRIaddr ")", head, before == head ? "its head, no" : "the",
		  before, why, node, prev);
}

static int walk_list(struct pyx_python *py, pyx_addr_t head, uint64_t *left,
		     const struct pyx_heap_where *w, pyx_heap_fn fn, void *ctx,
		     struct pyx_heap_stats *s)
{
	uint64_t gch = (uint64_t)pyx_off(py, PYX_L_SZ_GC_HEAD);
	uint64_t next, prev;
	pyx_addr_t node, before = head;
	int err;

	/* The head lives in the interpreter's state: if it cannot be read,
	 * nothing can (a wrong layout, a dead process), not a damaged list;
	 * unless a bounded copy left it out. */
	if ((err = gc_head(py, head, &next, &prev))) {
		if (!lost_in_copy(py, err))
			return err;
		pyx_err_clear();
		s->lost_in_copy++;
		cut(s, head, "not in the heap copy", head, head, 0);
		return 0;
	}
	node = next & GC_PTR_MASK;
	while (node != head) {
		if (!node || (node & 7)) {
			cut(s, head, "a bad pointer", node, before, 0);
			return 0;
		}
		/* The bound is for all lists: past it, each list left is cut
		 * at once (a cycle that the checks below missed). */
		if (*left == 0) {
			cut(s, head, "more nodes than the heap can hold", node,
			    before, 0);
			return 0;
		}
		(*left)--;
		if ((err = gc_head(py, node, &next, &prev))) {
			if (err != -PYX_E_BAD_MEMORY)
				return err;
			if (lost_in_copy(py, err))
				s->lost_in_copy++;
			pyx_err_clear();
			cut(s, head, "unreadable", node, before, 0);
			return 0;
		}
		/* A list that links back is a list: this catches cycles
		 * that miss the head, and pointers into garbage. */
		if ((prev & GC_PTR_MASK) != before) {
			cut(s, head, "its _gc_prev does not point back", node,
			    before, prev);
			return 0;
		}
		s->objects++;
		if ((err = fn(ctx, node + gch, w)))
			return err;
		before = node;
		node = next & GC_PTR_MASK;
	}
	return 0;
}

int pyx_heap_walk(struct pyx_python *py, uint64_t max_objects, pyx_heap_fn fn,
		  void *ctx, struct pyx_heap_stats *stats)
{
	struct pyx_heap_stats s = { 0 };
	struct gc_state *st;
	uint64_t left = max_objects ? max_objects : (1ull << 32);
	size_t n, ninterp = 0;
	int err;

	st = calloc(PYX_MAX_INTERPRETERS, sizeof(*st));
	if (!st)
		return -PYX_E_NOMEM;
	if ((err = gc_states(py, st, PYX_MAX_INTERPRETERS, &n, &ninterp))) {
		/* The interpreters' own memory left out of a bounded copy:
		 * nothing to walk, a result with nothing in it (partial),
		 * not an error that blames the target. */
		if (lost_in_copy(py, err)) {
			pyx_debug("GC states not walked: %s", pyx_err_detail());
			pyx_err_clear();
			s.lost_in_copy++;
			s.damaged_lists++;
			err = 0;
		}
		goto out;
	}
	s.interpreters = ninterp;
	s.gc_states = n;
	for (size_t i = 0; i < n && !err; i++) {
		const struct pyx_gc_lists *gl = &st[i].lists;

		for (size_t l = 0; l < gl->n && !err; l++) {
			int g = gl->list[l].generation;
			bool perm = g == PYX_GC_PERMANENT;
			struct pyx_heap_where w = {
				st[i].interp_id, perm ? gl->ngenerations : g,
				gl->ngenerations };
			uint64_t before = s.objects;

			err = walk_list(py, gl->list[l].head, &left, &w, fn,
					ctx, &s);
			if (perm)
				s.permanent += s.objects - before;
		}
	}
	/* Not one object: a heap this damaged is more likely read the wrong
	 * way (a layout that does not fit) than worth a partial result. */
	if (!err && s.damaged_lists && !s.objects && !s.lost_in_copy)
		err = pyx_err_set(PYX_E_BAD_MEMORY, "no GC list can be "
				  "followed: %" PRIu64 " end at their first "
				  "node, the others are empty", s.damaged_lists);
out:
	free(st);
	if (stats)
		*stats = s;
	return err;
}

/* No process has more arenas than its address space holds. */
#define MAX_ARENA_BYTES (UINT64_C(1) << 47)

static int arenas_bytes(struct pyx_python *py, uint64_t n, uint64_t *bytes)
{
	uint64_t b;

	if (__builtin_mul_overflow(n, py->k.arena_size, &b) ||
	    __builtin_add_overflow(*bytes, b, &b) || b > MAX_ARENA_BYTES)
		return pyx_err_set(PYX_E_BAD_MEMORY, "%" PRIu64 " pymalloc "
				   "arenas: corrupt count", n);
	*bytes = b;
	return 0;
}

int pyx_heap_arena_bytes(struct pyx_python *py, uint64_t *bytes)
{
	pyx_addr_t sym;
	uint64_t n;
	int err;

	*bytes = 0;
	if (pyx_layout_has(&py->layout, PYX_L_IS_OBMALLOC) &&
	    pyx_layout_has(&py->layout, PYX_L_OBM_NARENAS)) {
		pyx_addr_t seen[64], interps[PYX_MAX_INTERPRETERS];
		size_t ninterp;
		size_t nseen = 0;

		/* 3.12+: per interpreter (3.13: a pointer, often shared). */
		if ((err = pyx_python_interps(py, interps, PYX_MAX_INTERPRETERS,
					      &ninterp)))
			return err;
		for (size_t i = 0; i < ninterp; i++) {
			pyx_addr_t state = interps[i] + (uint64_t)pyx_off(py, PYX_L_IS_OBMALLOC);
			bool dup = false;

			if (py->k.obmalloc_ptr &&
			    (err = pyx_mem_read_u64(py->mem, state, &state)))
				return err;
			for (size_t j = 0; j < nseen; j++)
				dup |= seen[j] == state;
			if (state && !dup) {
				if (nseen < PYX_ARRAY_SIZE(seen))
					seen[nseen++] = state;
				if ((err = pyx_read_field(py, state,
							  PYX_L_OBM_NARENAS, &n)))
					return err;
				if ((err = arenas_bytes(py, n, bytes)))
					return err;
			}
		}
		return 0;
	}
	/* <= 3.11: a file-static variable, in .symtab only. */
	if (pyx_elf_lookup(py->elf, "narenas_currently_allocated", &sym, NULL))
		return pyx_err_set(PYX_E_NOT_SUPPORTED, "%s has no symbol "
				   "narenas_currently_allocated (stripped)",
				   py->info.binary);
	if ((err = pyx_mem_read_u64(py->mem, sym, &n)))
		return err;
	return arenas_bytes(py, n, bytes);
}

#define CAPTURE_RETRIES 20
#define CAPTURE_RETRY_SLEEP_MS 10

uint64_t pyx_heap_default_max_copy(void)
{
	char line[256];
	long long kib = -1;
	FILE *f = fopen("/proc/meminfo", "re");

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "MemAvailable: %lld kB", &kib) == 1)
			break;
	fclose(f);
	return kib > 0 ? (uint64_t)kib * 1024 / 4 * 3 : 0;
}

static void sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

int pyx_heap_capture(struct pyx_python *py,
		     const struct pyx_heap_capture_opts *o,
		     struct pyx_heap_capture_info *info)
{
	struct pyx_mem_snapshot_info si;
	bool collecting = false;
	uint64_t max = o->max_copy ? o->max_copy : pyx_heap_default_max_copy(), want;
	uint64_t t0;
	int retries = o->retries > 0 ? o->retries : CAPTURE_RETRIES;
	int deadline = o->deadline_ms > 0 ? o->deadline_ms : 2000;
	int err = 0;

	memset(info, 0, sizeof(*info));
	info->rss_bytes = -1;
	pyx_mem_set_jobs(py->mem, pyx_heap_jobs(o->jobs));
	/* An image or a core cannot be stopped and does not change:
	 * its memory already is a consistent snapshot, no stop is needed.
	 * Nor can its collector finish: waiting for it would be in vain. */
	if (pyx_target_kind(py->tgt) != PYX_TARGET_PROCESS) {
		info->attempts = 1;
		info->rss_bytes = pyx_target_rss_bytes(py->tgt);
		if ((err = pyx_heap_check(py, &collecting)))
			return err;
		if (collecting)
			return pyx_err_set(PYX_E_GC_BUSY, "the garbage "
					   "collector was running when the "
					   "memory was recorded: its objects "
					   "are on temporary lists");
		/* An image's memory is in pyxray's already: copying it is
		 * one memcpy per range, and it makes every read of the walk
		 * zero-copy (pyx_mem_snapshot_ptr) instead of a look-up in
		 * the image: measured 1.5x less CPU per fuzzing execution
		 * than walking the image in place.  A core file (a file, as
		 * big as the process) is walked in place. */
		if (pyx_target_kind(py->tgt) != PYX_TARGET_IMAGE) {
			info->heap_bytes = pyx_mem_snapshot_size(py->mem);
			return 0;
		}
		if ((err = pyx_mem_snapshot(py->mem, max, &si)))
			return err;
		goto copied;
	}
	/* The buffer for the copy, faulted in while the target runs; a
	 * little more than the maps say now, as the heap may grow. */
	if ((err = pyx_target_refresh_maps(py->tgt)))
		return err;
	want = pyx_mem_snapshot_size(py->mem);
	if (max && want > max)
		want = max;
	/* Timed apart: the one step whose cost depends on where the kernel
	 * finds the pages (a virtual machine's host may have taken free
	 * memory back, docs/census.md), not on the target. */
	t0 = pyx_now_ns();
	err = pyx_mem_snapshot_reserve(py->mem, want, want / 16 + (16u << 20));
	info->buffer_ms = (double)(pyx_now_ns() - t0) / 1e6;
	if (err)
		return err;
	pyx_debug("copy buffer for %" PRIu64 " MiB ready in %.1f ms",
		  want >> 20, info->buffer_ms);
	if (o->nonblocking) {
		/* The same copy with the target running: a list or an object
		 * may change while it is read (a torn copy, walked as a
		 * damaged heap is), and the collector's state is moot. */
		struct timeval tv;

		info->attempts = 1;
		info->nonblocking = true;
		gettimeofday(&tv, NULL);
		info->time = (double)tv.tv_sec + (double)tv.tv_usec / 1e6;
		info->rss_bytes = pyx_target_rss_bytes(py->tgt);
		if ((err = pyx_mem_snapshot(py->mem, max, &si)))
			return err;
		goto copied;
	}
	for (info->attempts = 1; info->attempts <= retries + 1; info->attempts++) {
		if ((err = pyx_target_stop(py->tgt, deadline)))
			return err;
#ifdef PYX_TEST_HOOKS
		if (o->hold_ms > 0)
			sleep_ms(o->hold_ms);
#endif
		if ((err = pyx_target_refresh_maps(py->tgt)) ||
		    (err = pyx_heap_check(py, &collecting)))
			break;
		if (!collecting) {
			struct timeval tv;

			gettimeofday(&tv, NULL);
			info->time = (double)tv.tv_sec + (double)tv.tv_usec / 1e6;
			info->rss_bytes = pyx_target_rss_bytes(py->tgt);
			err = pyx_mem_snapshot(py->mem, max, &si);
			break;
		}
		pyx_target_resume(py->tgt);
		sleep_ms(CAPTURE_RETRY_SLEEP_MS);
	}
	pyx_target_resume(py->tgt);
	if (info->attempts > retries + 1)
		info->attempts = retries + 1;
	if (err && err != -PYX_E_EXITED && pyx_target_gone(py->tgt))
		err = pyx_err_set(PYX_E_EXITED, "process %d exited while its "
				  "heap was copied", (int)pyx_target_pid(py->tgt));
	if (err)
		return err;
	if (collecting)
		return pyx_err_set(PYX_E_GC_BUSY, "the garbage collector was "
				   "running at each of %d stops; retry later",
				   retries + 1);
copied:
	info->copied_bytes = si.bytes;
	info->heap_bytes = si.bytes;
	info->copy_reads = si.syscalls;
	info->truncated = si.truncated;
	info->skipped_bytes = si.skipped_bytes;
	info->skipped_mappings = si.skipped_mappings;
	return 0;
}
