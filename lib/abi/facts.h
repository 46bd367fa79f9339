/* The bridge between synthetic images and the ABI layer.
 *
 * An image (lib/target/image.h) carries the python facts as plain data:
 * the built-in types by their symbol names and the struct layout by its
 * entries' names.  The target layer knows nothing of CPython's layout; this
 * is where the names meet PYX_LAYOUT_FIELDS, for the callers that open a
 * python over an image (the unit tests, the capture tool, the fuzzer).
 *
 * Library-private (lib/abi).
 */
#ifndef PYX_FACTS_H
#define PYX_FACTS_H

#include <sys/types.h>

#include "image.h"
#include "reader.h"

/* The python facts an image carries.  A layout entry this pyxray does not
 * know (an image of a newer one) is left out; one the image does not name
 * is PYX_OFF_NONE. */
void pyx_image_python_facts(const struct pyx_image_info *in,
			    struct pyx_python_facts *f);
/* The reverse: the facts of an open python into *in (pid, symbols, the
 * layout's present entries).  0 or -PYX_E_USAGE. */
int pyx_image_info_from_facts(const struct pyx_python_facts *f, pid_t pid,
			      struct pyx_image_info *in);

#endif
