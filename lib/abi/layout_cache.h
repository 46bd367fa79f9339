/* Library-private: layouts read from DWARF, remembered per build-id and
 * DWARF file. */
#ifndef PYX_LAYOUT_CACHE_H
#define PYX_LAYOUT_CACHE_H

#include <stdbool.h>

#include "pyxray/layout.h"

/* Where a layout read on a cache miss goes once the caller has validated
 * it (pyx_layout_cache_store()). */
struct pyx_layout_cache_slot {
	bool cacheable;
	char file[4200];
	char key[256]; /* the entry's first line */
};

/* pyx_layout_from_dwarf_fd(), but first look in the per-user cache
 * ($PYX_CACHE_DIR, else $XDG_CACHE_HOME/pyxray, else ~/.cache/pyxray) for
 * the layout of this build-id and this very DWARF file (device, inode,
 * size, mtime of fd): a scan of a large libpython's DWARF costs tens of
 * milliseconds, a cache read nothing.  The build-id is the target's to
 * choose, so only a DWARF file owned by root and writable by no one else
 * is cached (others still work, uncached), and a layout is stored only
 * after it validated: pyx_layout_cache_store(), with *slot, on a miss.  An
 * entry missing any field the library knows is ignored (the list grew).
 * PYX_NO_LAYOUT_CACHE=1 disables it.  *hit says where the layout came from. */
int pyx_layout_from_dwarf_cached(struct pyx_layout *l, int fd,
				 const char *path, const char *build_id,
				 bool *hit, struct pyx_layout_cache_slot *slot);
/* Store l (validated by the caller) where slot says; nothing if not
 * cacheable.  Failures are silent: the cache is an optimization. */
void pyx_layout_cache_store(const struct pyx_layout *l,
			    const struct pyx_layout_cache_slot *slot);

#endif
