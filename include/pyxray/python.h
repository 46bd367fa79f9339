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
struct pyx_target;

struct pyx_python_info {
	int major, minor, micro;
	char version[32];          /* "3.11.7" */
	char binary[PATH_MAX];     /* target's path of the file with _PyRuntime */
	char build_id[64];         /* hex, "" if none */
	bool shared;               /* libpython rather than a static executable */
	pyx_addr_t runtime;        /* &_PyRuntime in the target */
	char runtime_via[32];      /* ".dynsym", ".symtab", ".PyRuntime section" */
	char layout_file[PATH_MAX]; /* the DWARF file, if the layout came from one */
	bool layout_cached;        /* that DWARF layout was read from the cache */
	int debug_offsets_checked; /* 3.13+: entries compared with _Py_DebugOffsets */
	int debug_offsets_mismatches;
	/* 3.13+: the target's own _Py_DebugOffsets, validated (cookie, its
	 * version against Py_Version, its runtime size against _PyRuntime's) */
	bool debug_offsets_valid;
	uint64_t debug_offsets_version; /* the PY_VERSION_HEX it carries */
	int debug_offsets_format;  /* the format read: 13 for 3.13's... */
	int debug_offsets_used;    /* layout entries taken from it */
	size_t debug_offsets_ndiff; /* the first mismatches with the DWARF */
	struct {
		char field[64];    /* "PyThreadState.current_frame" */
		int32_t dwarf, debug_offsets;
	} debug_offsets_diff[16];
	/* A version newer than pyxray knows (3.16), read through its
	 * _Py_DebugOffsets alone in the newest format known: stacks work,
	 * what needs fields they do not carry refuses (layout errors). */
	bool newer;
	int newest_known_minor;    /* the row it is read with (15) */
	/* One line the CLI shows even without -v (a version newer than
	 * known), "" if none. */
	char warning[256];
};

/* Where struct offsets may come from (--layout). */
enum pyx_layout_mode {
	PYX_LAYOUT_AUTO,          /* DWARF, separate debug file, debug offsets
				     + table, table: the first that validates */
	PYX_LAYOUT_DWARF,         /* DWARF only (the file or a debug file) */
	PYX_LAYOUT_TABLE,         /* the built-in table only */
	PYX_LAYOUT_DEBUG_OFFSETS, /* _Py_DebugOffsets only (3.13+) */
};

struct pyx_python_opts {
	enum pyx_layout_mode layout;
	const char *debug_dir;    /* searched before /usr/lib/debug */
};

/* Find the interpreter in tgt (not owned: it must outlive the python).
 * Errors: -PYX_E_NOT_PYTHON (no mapped file defines _PyRuntime),
 * -PYX_E_IO or -PYX_E_PERMISSION (a candidate file could not be opened: its
 * own error, not NOT_PYTHON), -PYX_E_UNSUPPORTED_VERSION (a version without
 * an ABI row, or a free-threaded build), -PYX_E_NO_DEBUG_INFO,
 * -PYX_E_LAYOUT, -PYX_E_EXITED, -PYX_E_BAD_MEMORY. */
int pyx_python_open(struct pyx_target *tgt, struct pyx_python **out);
/* The same with options; NULL means the defaults. */
int pyx_python_open_opts(struct pyx_target *tgt,
			 const struct pyx_python_opts *opts,
			 struct pyx_python **out);
/* Parse "auto", "dwarf", "table", "debug-offsets"; -1 if none. */
int pyx_layout_mode_parse(const char *s);
void pyx_python_free(struct pyx_python *py);

/* 0 if command (a name for the message: "census") may run on this
 * python; -PYX_E_UNSUPPORTED_VERSION for a version newer than pyxray
 * knows (info.newer), whose _Py_DebugOffsets carry what stacks need but not
 * the GC lists, dict internals or type slots that census, refs and the
 * other heap commands read. */
int pyx_python_check_full(const struct pyx_python *py, const char *command);

const struct pyx_python_info *pyx_python_info(const struct pyx_python *py);
const struct pyx_layout *pyx_python_layout(const struct pyx_python *py);
struct pyx_target *pyx_python_target(const struct pyx_python *py);

#ifdef __cplusplus
}
#endif
#endif
