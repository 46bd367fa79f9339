/* Reading one member of a remote CPython struct by its layout entry: the
 * primitive under the ABI operations and the object readers. */
#ifndef PYX_FIELD_H
#define PYX_FIELD_H

#include <stddef.h>
#include <stdint.h>

#include "reader.h"

/* Read the word at addr + the offset of layout entry id.
 * -PYX_E_LAYOUT if the build has no such field. */
int pyx_read_field(struct pyx_python *py, pyx_addr_t addr,
		   enum pyx_layout_id id, uint64_t *out);
/* The same for fields narrower than a word (size 1, 2 or 4). */
int pyx_read_field_n(struct pyx_python *py, pyx_addr_t addr,
		     enum pyx_layout_id id, size_t size, uint64_t *out);

#endif
