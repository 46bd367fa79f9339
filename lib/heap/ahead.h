/* Pages faulted in ahead of a writer, on a core the writer leaves idle.
 *
 * The object graph's node arrays fill front to back while one thread walks
 * the GC lists, the other cores idle.  Every new 4 KiB page costs the
 * writer a fault: the zeroing, the page table and the cgroup's charge,
 * ~1.5-2 us (on the 5 M heap: 44 ms of the walk's 170-200).  A toucher on
 * an idle core faults the pages in a MiB ahead of the writer
 * (MADV_POPULATE_WRITE: the kernel fills them without writing the memory,
 * so the two never race on a byte), and the writer finds them in memory.
 *
 * The writer publishes how far it has filled each area now and then (every
 * few thousand elements: a count the other core read at every element
 * would bounce its cache line between the two, slower than the faults);
 * the toucher reads it between its steps and sleeps a little when it is
 * far enough ahead.  An area must not move while the toucher runs (give it
 * its final room first: address space only); what the toucher faulted in
 * past the writer's last element is given back after (pyx_ahead_trim()).
 * An area may also be faulted in for a later writer, up to a goal (what
 * the rows will write, foreseen from the walk's count).
 * Where the kernel has no MADV_POPULATE_WRITE (before 5.14) the toucher
 * does nothing and the writer faults its own pages, as without it.
 * Library-private. */
#ifndef PYX_AHEAD_H
#define PYX_AHEAD_H

#include <stdbool.h>
#include <stddef.h>

#define PYX_AHEAD_MAX 64

struct pyx_ahead_area {
	void *base;
	size_t elem;   /* bytes of an element */
	size_t cap;    /* elements base has room for */
	size_t filled; /* the writer's: elements filled, or with goal the
			  elements to fault in (atomic) */
	size_t done;   /* the toucher's: elements faulted in up to */
	int goal;      /* filled is a goal: faulted in from the start */
};

struct pyx_ahead {
	struct pyx_ahead_area area[PYX_AHEAD_MAX];
	unsigned narea;
	size_t lead; /* bytes ahead of the writer, an area */
	int stop;    /* atomic */
};

/* Whether room that is never written costs nothing: false when the
 * kernel counts every mapping against a commit limit (vm.overcommit_memory
 * 2) or the process's address space is bounded (RLIMIT_AS), where arrays
 * sized for the most they could hold would take what later allocations
 * need.  Read once. */
bool pyx_ahead_room_is_free(void);
/* An ahead with no area, lead bytes ahead of the writer (0: 1 MiB). */
void pyx_ahead_init(struct pyx_ahead *a, size_t lead);
/* An area (room for cap elements of elem bytes at base, of which filled
 * already are); its index, or -1 when there are PYX_AHEAD_MAX already or
 * base is NULL (the writer then publishes to -1: nothing).  Before the
 * toucher starts. */
int pyx_ahead_add(struct pyx_ahead *a, void *base, size_t elem, size_t cap,
		  size_t filled);
/* An area that another writer fills later (the rows' arrays, during the
 * walk): the toucher faults it in from its start up to the goal the writer
 * of the count publishes (pyx_ahead_publish()), no lead. */
int pyx_ahead_add_goal(struct pyx_ahead *a, void *base, size_t elem,
		       size_t cap);
/* The writer: area i holds n elements now (a goal area: fault n in). */
void pyx_ahead_publish(struct pyx_ahead *a, int i, size_t n);
/* The toucher: faults pages in until pyx_ahead_stop(); on its own thread
 * (a pyx_parallel() share).  Returns at once once stopped. */
void pyx_ahead_touch(struct pyx_ahead *a);
/* The writer is done: the toucher returns within its sleep (0.5 ms). */
void pyx_ahead_stop(struct pyx_ahead *a);
/* After the toucher has returned: the pages it faulted in past the n
 * elements area i holds given back, if the area is still at base (an array
 * that moved is someone else's memory now).  Returns their bytes. */
size_t pyx_ahead_trim(struct pyx_ahead *a, int i, const void *base, size_t n);

#endif
