/* The target's address space as /proc/PID/maps (or a core file's program
 * headers, or a synthetic image) describes it: sorted, disjoint ranges. */
#ifndef PYXRAY_MAPS_H
#define PYXRAY_MAPS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pyxray/common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* One mapping.  path is "" for anonymous mappings and keeps the kernel's
 * spelling ("[heap]", "/usr/lib/x.so (deleted)"): a path in the target's
 * mount namespace, never opened as it stands (see pyx_target_open_file). */
struct pyx_map {
	pyx_addr_t start, end; /* [start, end) */
	uint64_t offset;       /* file offset of start */
	uint64_t inode;
	unsigned int dev_major, dev_minor;
	bool r, w, x, p;
	char *path; /* owned by whoever made the array */
};

/* The mapping of maps[0..n) (sorted by start) that contains addr, or NULL.
 * A binary search: no system call. */
const struct pyx_map *pyx_maps_find(const struct pyx_map *maps, size_t n,
				    pyx_addr_t addr);

#ifdef __cplusplus
}
#endif
#endif
