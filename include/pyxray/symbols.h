/* ELF files of the target: symbols, build-id, debug info presence.
 *
 * A pyx_elf is one file mapped in the target, opened by the file resolver
 * (pyxray/files.h: never by the path the target names), with the load bias
 * that turns its symbol values into addresses of the target.  Only 64-bit
 * x86_64 files are accepted.
 */
#ifndef PYXRAY_SYMBOLS_H
#define PYXRAY_SYMBOLS_H

#include <stdbool.h>

#include "pyxray/common.h"

#ifdef __cplusplus
extern "C" {
#endif

struct pyx_elf;
struct pyx_target;

/* Open local_path (a path of pyxray's own namespace: the resolver's, or one
 * the user gave); bias is added to every symbol value.
 * Errors: -PYX_E_IO, -PYX_E_PERMISSION, -PYX_E_FORMAT (not ELF),
 * -PYX_E_UNSUPPORTED_VERSION (not ELF64 x86_64), -PYX_E_NOMEM. */
int pyx_elf_open(const char *local_path, pyx_addr_t bias, struct pyx_elf **out);
/* The same over an open file: takes fd (closed by pyx_elf_free(), or here
 * on error); name is what pyx_elf_path() and error details say. */
int pyx_elf_open_fd(int fd, const char *name, pyx_addr_t bias,
		    struct pyx_elf **out);
void pyx_elf_free(struct pyx_elf *elf);

/* Compute the load bias of the ELF file mapped in tgt under the target's
 * path (the map with the lowest file offset).  -PYX_E_NOT_PYTHON if the file
 * is not mapped. */
int pyx_elf_bias(struct pyx_elf *elf, const struct pyx_target *tgt,
		 const char *target_path, pyx_addr_t *bias);
void pyx_elf_set_bias(struct pyx_elf *elf, pyx_addr_t bias);

/* Look a symbol up in .dynsym, then .symtab; *addr is biased.
 * Returns 0, or -PYX_E_NOT_SUPPORTED if absent (no detail set). */
int pyx_elf_lookup(const struct pyx_elf *elf, const char *name,
		   pyx_addr_t *addr, uint64_t *size);

/* The address of a section in the target (biased), e.g. ".PyRuntime". */
int pyx_elf_section(const struct pyx_elf *elf, const char *name,
		    pyx_addr_t *addr, uint64_t *size);
/* Which symbol table the last successful pyx_elf_lookup() used. */
const char *pyx_elf_last_table(const struct pyx_elf *elf);
/* The .gnu_debuglink file name, "" if none. */
void pyx_elf_debuglink(const struct pyx_elf *elf, char *buf, size_t n);

/* Whether the file carries .debug_info. */
bool pyx_elf_has_dwarf(const struct pyx_elf *elf);
/* The build-id as hex into buf (n >= 41 for SHA-1); "" if none. */
void pyx_elf_build_id(const struct pyx_elf *elf, char *buf, size_t n);
const char *pyx_elf_path(const struct pyx_elf *elf);

#ifdef __cplusplus
}
#endif
#endif
