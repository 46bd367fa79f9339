/* Library-private: layouts read from DWARF, remembered per build-id. */
#ifndef PYX_LAYOUT_CACHE_H
#define PYX_LAYOUT_CACHE_H

#include <stdbool.h>

#include "pyxray/layout.h"

/* pyx_layout_from_dwarf(), but first look in the per-user cache
 * ($PYX_CACHE_DIR, else $XDG_CACHE_HOME/pyxray, else ~/.cache/pyxray) for
 * the layout of this build-id, and store it there after a scan: a scan of a
 * large libpython's DWARF costs tens of milliseconds, a cache read nothing.
 * An entry missing any field the library knows is ignored (the list grew).
 * PYX_NO_LAYOUT_CACHE=1 disables it.  *hit says where the layout came from. */
int pyx_layout_from_dwarf_cached(struct pyx_layout *l, const char *path,
				 const char *build_id, bool *hit);

#endif
