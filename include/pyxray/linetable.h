/* Line-number tables of CPython code objects, decoded from a local copy.
 *
 * Pure functions over bytes already copied out of the target: no remote
 * reads, so they are unit-tested against each version's own co_lines().
 * Every decoder is bounded by the table length it is given.
 */
#ifndef PYXRAY_LINETABLE_H
#define PYXRAY_LINETABLE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

enum pyx_linetable_kind {
	PYX_LT_LNOTAB,    /* 3.8, 3.9: co_lnotab (Objects/lnotab_notes.txt) */
	PYX_LT_LINETABLE, /* 3.10: co_linetable (sdelta, ldelta) pairs */
	PYX_LT_LOCATIONS, /* 3.11+: co_linetable (Objects/locations.md) */
};

/* The line of the instruction at byte offset addr of the bytecode, as
 * CPython's PyCode_Addr2Line would give.  addr < 0 gives firstlineno.
 * Returns the line, or -1 where the table gives no line for addr. */
int pyx_linetable_addr2line(enum pyx_linetable_kind kind,
			    const uint8_t *table, size_t len, int firstlineno,
			    int addr);

/* One range of bytecode with one line: [start, end) in bytes; line -1
 * for "no line".  Like code.co_lines(). */
struct pyx_line_range {
	int start, end, line;
};
/* Fill at most max ranges in order; returns how many the table holds (may
 * exceed max: call again with more room), or -1 if the table is corrupt. */
int pyx_linetable_ranges(enum pyx_linetable_kind kind, const uint8_t *table,
			 size_t len, int firstlineno, int code_len,
			 struct pyx_line_range *out, size_t max);

#ifdef __cplusplus
}
#endif
#endif
