/* The core-file backend's limits (lib/target/core.c), for its tests and
 * the fuzzer.  Library-private. */
#ifndef PYX_CORE_PRIVATE_H
#define PYX_CORE_PRIVATE_H

#include <stddef.h>
#include <stdint.h>

/* Bounds of what a core may declare: past any of them it is refused
 * (-PYX_E_FORMAT).  A real core has a few hundred segments and files. */
#define PYX_CORE_MAX_PHDRS (1u << 20)
#define PYX_CORE_MAX_THREADS 65536u
#define PYX_CORE_MAX_FILES (1u << 20)
/* A compressed core is decompressed to at most this many bytes, and never
 * past the free space of the temporary directory. */
#define PYX_CORE_MAX_DECOMPRESSED (UINT64_C(1) << 40)
/* Free space a decompressed copy leaves on its file system. */
#define PYX_CORE_TMP_MARGIN (UINT64_C(256) << 20)

struct pyx_target;

/* Open a core held in memory (copied into a temporary file first, then as
 * pyx_target_open_core()).  For the unit tests and the fuzzer. */
int pyx_core_open_buffer(const void *data, size_t len,
			 struct pyx_target **out);

#endif
