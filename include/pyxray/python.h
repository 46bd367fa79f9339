/* The CPython interpreter inside a target process.
 *
 * pyx_python_open() finds the ELF file that defines _PyRuntime (libpython or
 * a static python executable), the version, and the struct layout (DWARF
 * today), and checks the version is supported.  It reads a few words of the
 * target's memory but never stops it.
 */
#ifndef PYXRAY_PYTHON_H
#define PYXRAY_PYTHON_H

#include <limits.h>
#include <stdbool.h>

#include "pyxray/common.h"
#include "pyxray/layout.h"

#ifdef __cplusplus
extern "C" {
#endif

struct pyx_python;
struct pyx_proc;

struct pyx_python_info {
	int major, minor, micro;
	char version[32];          /* "3.11.7" */
	char binary[PATH_MAX];     /* target's path of the file with _PyRuntime */
	char build_id[64];         /* hex, "" if none */
	bool shared;               /* libpython rather than a static executable */
	pyx_addr_t runtime;        /* &_PyRuntime in the target */
};

/* Find the interpreter in proc (not owned: it must outlive the python).
 * Errors: -PYX_E_NOT_PYTHON, -PYX_E_UNSUPPORTED_VERSION,
 * -PYX_E_NO_DEBUG_INFO, -PYX_E_IO, -PYX_E_EXITED, -PYX_E_BAD_MEMORY. */
int pyx_python_open(struct pyx_proc *proc, struct pyx_python **out);
void pyx_python_free(struct pyx_python *py);

const struct pyx_python_info *pyx_python_info(const struct pyx_python *py);
const struct pyx_layout *pyx_python_layout(const struct pyx_python *py);
struct pyx_proc *pyx_python_proc(const struct pyx_python *py);

#ifdef __cplusplus
}
#endif
#endif
