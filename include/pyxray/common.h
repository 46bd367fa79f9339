/* Types shared by every pyxray module. */
#ifndef PYXRAY_COMMON_H
#define PYXRAY_COMMON_H

#include <inttypes.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* An address in the target's address space.  It is an integer on purpose:
 * it is never dereferenced here, only passed to the memory module. */
typedef uint64_t pyx_addr_t;
#define PYX_PRIaddr "0x%" PRIx64

/* Diagnostics.  The library never prints: it hands messages to the callback
 * set here (default: none).  cmd/ decides where they go. */
enum pyx_print_level {
	PYX_WARN,
	PYX_INFO,
	PYX_DEBUG,
};
typedef void (*pyx_print_fn)(enum pyx_print_level level, const char *msg);
/* Set the callback; returns the previous one.  NULL silences the library. */
pyx_print_fn pyx_set_print(pyx_print_fn fn);

/* Monotonic clock in nanoseconds. */
uint64_t pyx_now_ns(void);

#ifdef __cplusplus
}
#endif
#endif
