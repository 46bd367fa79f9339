/* Where every byte of a process's RSS lives: Python objects, pymalloc's
 * arenas and pools, glibc malloc's arenas and mmapped blocks, thread stacks,
 * mapped files, shared memory, and what is left (docs/memory.md).
 *
 * pyx_memory_take() takes a census (its own stop, copy and resume), then
 * stops the target once more, only while it reads the allocators' state
 * (pymalloc, glibc malloc), the threads' stack pointers, /proc/PID/smaps and
 * the page map of the ranges it placed; then it resumes the target.  Every
 * part that cannot be read is said so (a reason in why), never guessed.
 *
 * The lower layers are usable alone: pyx_pymalloc_walk() and
 * pyx_cmalloc_walk() read a state at known addresses through any struct
 * pyx_mem (the unit tests feed them synthetic memory).
 */
#ifndef PYXRAY_MEMORY_REPORT_H
#define PYXRAY_MEMORY_REPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pyxray/common.h"
#include "pyxray/heap.h"

#ifdef __cplusplus
extern "C" {
#endif

struct pyx_census;
struct pyx_python;
struct pyx_target;
struct pyx_mem;

/* ---- pymalloc ---------------------------------------------------------- */

#define PYX_PYMALLOC_CLASSES 64

/* One size class: sys._debugmallocstats()'s table row. */
struct pyx_pymalloc_class {
	uint32_t size;          /* block size */
	uint64_t pools;         /* used pools of this class */
	uint64_t blocks_used;   /* "blocks in use" */
	uint64_t blocks_free;   /* "avail blocks" in those pools */
};

struct pyx_pymalloc {
	bool available;         /* false: why says why */
	char why[256];
	char method[32];        /* how the state was found: "symbols",
				   "signature scan", "interpreter state" */
	uint64_t arena_size, pool_size;
	uint32_t alignment, nclasses;
	uint64_t states;        /* distinct allocator states (interpreters) */
	uint64_t arenas;        /* arenas allocated now */
	uint64_t arenas_total;  /* ever allocated (ntimes_arena_allocated) */
	uint64_t arenas_highwater;
	uint64_t arena_bytes;   /* arenas * arena_size */
	uint64_t pools_used;    /* pools holding at least one block */
	uint64_t pools_empty;   /* pools with no block (nfreepools) */
	uint64_t used_bytes;    /* "bytes in allocated blocks" */
	uint64_t free_bytes;    /* "bytes in available blocks" (in used pools) */
	uint64_t empty_pool_bytes; /* pools_empty * pool_size */
	uint64_t pool_header_bytes, quantization_bytes, alignment_bytes;
	/* Fragmentation: arenas kept only by a few blocks.  An arena is given
	 * back to the system only when every pool in it is empty. */
	uint64_t arenas_sparse; /* arenas whose used blocks fill < 1/4 of it */
	uint64_t bad_pools;     /* pool headers that did not read as pools:
				   skipped (damage), the result is partial */
	uint64_t sparse_arena_bytes, sparse_used_bytes;
	struct pyx_pymalloc_class classes[PYX_PYMALLOC_CLASSES];
	/* The arenas' address ranges [addr, addr + arena_size), for placing
	 * their resident pages (owned; pyx_pymalloc_free()). */
	pyx_addr_t *arena_addr;
	size_t narena_addr;
};

/* Where one allocator state lives, and its geometry. */
struct pyx_pymalloc_where {
	pyx_addr_t arenas_ptr;  /* &arenas (a pointer to the arena_object array) */
	pyx_addr_t maxarenas;   /* &maxarenas (a 32-bit count) */
	pyx_addr_t narenas;     /* &narenas_currently_allocated (size_t) */
	pyx_addr_t ntimes;      /* &ntimes_arena_allocated, 0: unknown */
	pyx_addr_t highwater;   /* &narenas_highwater, 0: unknown */
	uint64_t arena_size, pool_size;
	uint32_t alignment;     /* 16 on 3.8+ (64-bit) */
};

/* Walk one state and add its numbers to *out (zero it first; set its
 * geometry from w).  Every count, size and index read is checked.
 * Errors: -PYX_E_BAD_MEMORY (unreadable or inconsistent state),
 * -PYX_E_NOMEM. */
int pyx_pymalloc_walk(struct pyx_mem *mem, const struct pyx_pymalloc_where *w,
		      struct pyx_pymalloc *out);
/* Find every allocator state of py (3.8-3.11: the file-static variables,
 * from .symtab; 3.12+: each interpreter's obmalloc state) and walk them.
 * A state that cannot be found is not an error: out->available is false
 * and out->why says why (a stripped 3.8-3.11 build without its debug file,
 * PYTHONMALLOC=malloc).  Errors: those of pyx_pymalloc_walk(). */
int pyx_pymalloc_read(struct pyx_python *py, struct pyx_pymalloc *out);
/* pyx_pymalloc_read() in two steps, so that a stop holds only the walk:
 * pyx_pymalloc_find() runs the signature scan of a stripped 3.8-3.11
 * while the target runs (the statics it finds never move); nothing to do
 * elsewhere (f->scanned false), nor when the running target fails a check
 * (the scan is tried again in the stop).  Errors: -PYX_E_NOMEM,
 * -PYX_E_EXITED.  pyx_pymalloc_read_found(): pyx_pymalloc_read() with it
 * (f NULL: as pyx_pymalloc_read()). */
struct pyx_pymalloc_found {
	bool needed;            /* a stripped 3.8-3.11: the scan is the way */
	bool scanned;           /* found by it (w's addresses set) */
	struct pyx_pymalloc_where w;
};
int pyx_pymalloc_find(struct pyx_python *py, struct pyx_pymalloc_found *f);
int pyx_pymalloc_read_found(struct pyx_python *py,
			    const struct pyx_pymalloc_found *f,
			    struct pyx_pymalloc *out);
void pyx_pymalloc_free(struct pyx_pymalloc *p);

/* ---- glibc malloc ------------------------------------------------------ */

struct pyx_cmalloc_arena {
	pyx_addr_t addr;        /* its malloc_state */
	bool main;
	uint64_t system_bytes;  /* system_mem: mallinfo2's arena */
	uint64_t in_use_bytes;  /* system_mem - free (uordblks) */
	uint64_t free_bytes;    /* fordblks: bins, fastbins and top */
	uint64_t top_bytes;     /* the top chunk */
	uint64_t fastbin_bytes; /* fsmblks */
	uint64_t free_chunks;   /* ordblks + smblks */
	uint32_t heaps;         /* thread arena: its heaps (64 MiB-aligned) */
	bool partial;           /* a free list ended at a bad link */
};

/* The address ranges an allocator placed (for the page map). */
struct pyx_range {
	pyx_addr_t start, end;
};

/* pymalloc of 3.8-3.11 without symbols: find the state in the writable
 * data [regions] of the file holding obmalloc (the interpreter or
 * libpython); anon: the anonymous writable mappings and [heap] (where the
 * arena array can be), sorted; w's geometry given.  Every candidate is
 * checked by independent facts, one match only (docs/memory.md).
 * 0: found, w's addresses set; -PYX_E_NOT_SUPPORTED: not found (why says
 * why); -PYX_E_NOMEM, -PYX_E_EXITED. */
int pyx_pymalloc_scan(struct pyx_mem *mem, const struct pyx_range *regions,
		      size_t nregions, const struct pyx_range *anon,
		      size_t nanon, struct pyx_pymalloc_where *w, char *why,
		      size_t whylen);

#define PYX_CMALLOC_MAX_ARENAS 1024

struct pyx_cmalloc {
	bool available;         /* false: why says why */
	char why[256];
	char method[64];        /* "libc debug symbols", "signature scan" */
	char libc[256];         /* the libc's path, as the maps say */
	char other[128];        /* "jemalloc (/usr/lib/libjemalloc.so.2)", "" */
	int glibc_layout;       /* the malloc_state/malloc_par layout taken */
	/* mallinfo2() */
	uint64_t arena_bytes;   /* arena: sum of system_mem */
	uint64_t in_use_bytes;  /* uordblks */
	uint64_t free_bytes;    /* fordblks */
	uint64_t fastbin_bytes; /* fsmblks */
	uint64_t free_chunks;   /* ordblks + smblks */
	uint64_t top_bytes;     /* keepcost is main's; this is the sum */
	uint64_t mmapped_bytes; /* hblkhd */
	uint64_t mmapped_blocks;/* hblks */
	bool partial;
	struct pyx_cmalloc_arena *arenas;
	size_t narenas;
	/* [heap] and the thread arenas' heaps; mmapped chunks are found in
	 * the anonymous mappings (pyx_cmalloc_mmapped()). */
	struct pyx_range *heaps;
	size_t nheaps;
};

/* Where glibc's state lives and how it is laid out. */
struct pyx_cmalloc_where {
	pyx_addr_t main_arena;
	pyx_addr_t mp;          /* &mp_, 0: unknown (no mmapped figures) */
	uint32_t bins_off;      /* offsetof(struct malloc_state, bins) */
	uint32_t nfastbins;     /* 10 (2.26-2.42), 0 (2.43+) */
	uint32_t fastbins_off;
	int mp_layout;          /* PYX_MP_* */
	int safe_linking;       /* 1 yes (2.32+), 0 no, -1 per list */
	pyx_addr_t sbrk_lo, sbrk_hi; /* [heap], 0 if none */
};
enum {
	PYX_MP_NONE,
	PYX_MP_226,   /* 2.26-2.34: 112 bytes */
	PYX_MP_235,   /* 2.35-2.41: 136 bytes, hp_* after arena_max */
	PYX_MP_242,   /* thp_mode before thp_pagesize */
};

/* Sum every arena of the ring from main_arena, mallinfo2's way.  Errors:
 * -PYX_E_BAD_MEMORY (main_arena unreadable), -PYX_E_NOMEM; a damaged free
 * list is cut and marked partial. */
int pyx_cmalloc_walk(struct pyx_mem *mem, const struct pyx_cmalloc_where *w,
		     struct pyx_cmalloc *out);
/* Find glibc malloc's state in tgt (symbols of libc or its debug file;
 * else a scan of libc's writable data for the structures' signatures) and
 * walk it.  Not found, or another allocator: out->available false with a
 * reason.  Errors: those of pyx_cmalloc_walk(). */
int pyx_cmalloc_read(struct pyx_target *tgt, const char *debug_dir,
		     struct pyx_cmalloc *out);
/* pyx_cmalloc_read() in two steps, so that a stop holds only the second:
 * pyx_cmalloc_find() looks for libc in the maps and for main_arena and mp_
 * in its symbols or debug file (files only: the target may run);
 * pyx_cmalloc_walk_found() checks mp_'s layout, or scans libc's data where
 * there were no symbols, and walks (the target's memory: stop it first).
 * The libc must still be mapped where it was found. */
struct pyx_cmalloc_found {
	bool have_libc;
	bool symbols;           /* main_arena and mp_ by symbol in w */
	char libc[4096];        /* its path, as the maps spell it */
	struct pyx_cmalloc_where w;
	uint64_t mp_size;       /* mp_'s symbol size */
};
int pyx_cmalloc_find(struct pyx_target *tgt, const char *debug_dir,
		     struct pyx_cmalloc_found *f);
int pyx_cmalloc_walk_found(struct pyx_target *tgt,
			   const struct pyx_cmalloc_found *f,
			   struct pyx_cmalloc *out);
void pyx_cmalloc_free(struct pyx_cmalloc *m);

/* ---- the report -------------------------------------------------------- */

struct pyx_memory_file {
	char *path;             /* as the maps spell it (target's namespace) */
	uint64_t rss_bytes, size_bytes;
	uint32_t mappings;
};

struct pyx_memory_stack {
	pyx_addr_t start, end;
	int tid;                /* 0: the [stack] of no stopped thread */
	uint32_t threads;       /* stack pointers inside: glibc 2.43+ guards
				   stacks without a mapping of their own, so
				   the kernel merges adjacent stacks */
	uint64_t rss_bytes;
};

/* What pyx_memory_take() finds while the target runs: libc's malloc state
 * (symbols or debug file) and a stripped build's pymalloc statics.  None
 * of it moves while the process lives, so a caller that places the RSS
 * again and again (watch: every sample) keeps it here and it is found
 * once (a scan the running target failed is tried again next time). */
struct pyx_memory_found {
	bool have_malloc, have_pymalloc;
	struct pyx_cmalloc_found malloc;
	struct pyx_pymalloc_found pymalloc;
};

struct pyx_memory_opts {
	struct pyx_heap_capture_opts capture; /* the census's; deadline too */
	bool no_objects;        /* skip the census */
	/* A census already taken (borrowed): its figures are the Python
	 * objects', and no census is taken again.  census, suspects and watch
	 * place their RSS this way: one more short stop, for the allocators. */
	const struct pyx_census *census;
	/* Kept by the caller between calls (zeroed before the first); NULL:
	 * found on each call. */
	struct pyx_memory_found *found;
	const char *debug_dir;  /* libc's debug file */
};

struct pyx_memory_report {
	int pid;
	char python_version[32];
	double pause_ms;        /* census and allocator reads, together */
	double census_pause_ms;
	int64_t rss_bytes;      /* sum of smaps' Rss, -1 unknown */
	int64_t vmrss_bytes;    /* /proc/PID/status VmRSS, -1 unknown */
	/* Python objects (census's rules: tracked and reached) */
	bool objects_available;
	char objects_why[256];
	uint64_t objects, objects_bytes, gc_objects, gc_bytes;
	bool objects_partial;
	struct pyx_pymalloc pymalloc;
	struct pyx_cmalloc malloc;
	/* smaps placement (resident bytes) */
	bool maps_available;
	char maps_why[256];
	uint64_t pymalloc_rss, malloc_heap_rss, malloc_mmap_rss, stack_rss;
	uint64_t file_rss, shmem_rss, special_rss, anon_other_rss;
	uint64_t malloc_mmap_chunks;  /* mmapped chunks found in the maps */
	bool resident_exact;    /* page map read (else Rss split by share) */
	struct pyx_memory_file *files;
	size_t nfiles;
	struct pyx_memory_stack *stacks;
	size_t nstacks;
	/* what nothing above accounts for: anon_other_rss */
	int64_t unexplained_bytes;
	double unexplained_share;
};

/* With o->census set, its figures (and its pause, in census_pause_ms) are
 * taken as they are.  Errors: those of the census (unless no_objects or
 * census), pyx_target_stop();
 * -PYX_E_NOMEM.  The target runs on every return. */
int pyx_memory_take(struct pyx_python *py, const struct pyx_memory_opts *o,
		    struct pyx_memory_report **out);
void pyx_memory_free(struct pyx_memory_report *r);

#ifdef __cplusplus
}
#endif
#endif
