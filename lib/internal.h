/* Library-private helpers shared by the modules in lib/. */
#ifndef PYX_INTERNAL_H
#define PYX_INTERNAL_H

#include "pyxray/common.h"
#include "pyxray/error.h"

void pyx_print(enum pyx_print_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#define pyx_warn(...) pyx_print(PYX_WARN, __VA_ARGS__)
#define pyx_info(...) pyx_print(PYX_INFO, __VA_ARGS__)
#define pyx_debug(...) pyx_print(PYX_DEBUG, __VA_ARGS__)

#define PYX_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

#endif
