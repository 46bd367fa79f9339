/* CPython's ABI, one family per file: what a walker must know of a version
 * beyond the struct offsets of its layout.
 *
 * A struct pyx_abi is one row of the ABI table (abi.c): a CPython minor
 * version, the operations of its ABI family and the version's constants
 * (capabilities such as "frames are _PyInterpreterFrame chains").  The
 * families:
 *   abi_py38.c   3.8-3.10: PyFrameObject chains, f_lasti, lnotab/linetable
 *   abi_py311.c  3.11-3.13: _PyInterpreterFrame chains, owners and shim
 *                frames, prev_instr/instr_ptr, managed dicts, inline values
 *   abi_py314.c  3.14+: tagged _PyStackRefs, the split refcount, entry and
 *                base frames owned by the interpreter, 3.15's generator
 *                states
 * A new CPython release is a new row (and, if the ABI moved, a new family
 * file) plus a regenerated layout table: docs/abi.md says how.
 *
 * The walkers (lib/stacks, lib/heap, lib/native) never branch on the version
 * number: they call these operations through py->abi, or test a constant of
 * py->k, which the row sets.  Every operation reads the target through the
 * layout (pyx_read_field) and validates what it reads: a hostile or damaged
 * target gets an error, never a crash or an unbounded loop.
 *
 * Library-private.
 */
#ifndef PYX_ABI_H
#define PYX_ABI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pyxray/linetable.h"
#include "reader.h"

/* What one step along a thread's frame chain found. */
enum pyx_frame_kind {
	PYX_FRAME_PYTHON,     /* a Python function: code and lasti are set */
	PYX_FRAME_SHIM,       /* a C->Python entry marker (3.12+ owner
				 FRAME_OWNED_BY_CSTACK): no code; the Python
				 frame before it in the walk was entered from C */
	PYX_FRAME_INCOMPLETE, /* being set up or torn down: CPython hides it
				 (_PyFrame_IsIncomplete), so does pyxray */
	PYX_FRAME_OTHER,      /* not Python code (3.13: f_executable is not a
				 code object) */
};

struct pyx_abi_frame {
	enum pyx_frame_kind kind;
	pyx_addr_t code;     /* the code object (PYX_FRAME_PYTHON) */
	pyx_addr_t previous; /* the next frame outwards, 0 at the end */
	int lasti;           /* byte offset in the bytecode of the instruction
				being executed, for the line table; -1 unknown */
	bool has_line;       /* line is the frame's own, authoritative line
				(f_lineno while tracing): no line table */
	int line;
	bool entry;          /* this frame was entered from C (the end of a
				run of frames one C call evaluates); for a
				non-Python kind: the Python frame before it in
				the walk was */
};

/* An object's header. */
struct pyx_obj_header {
	uint64_t refcnt;   /* the reference count as CPython reports it */
	bool immortal;     /* 3.12+: refcnt is the immortal marker */
	pyx_addr_t type;   /* ob_type */
};

/* The GC lists of one GC state, in walk order: the generations, young to
 * old, then the permanent generation (gc.freeze()). */
#define PYX_GC_MAX_LISTS 8
#define PYX_GC_PERMANENT (-1)
struct pyx_gc_list {
	pyx_addr_t head;   /* the list's PyGC_Head */
	int generation;    /* 0 .. ngenerations - 1, or PYX_GC_PERMANENT */
};
struct pyx_gc_lists {
	pyx_addr_t state;  /* the struct _gc_runtime_state: its address
				identifies it (3.8 interpreters share one) */
	int ngenerations;  /* lists before the permanent one */
	size_t n;          /* entries of list[] */
	struct pyx_gc_list list[PYX_GC_MAX_LISTS];
};

struct pyx_abi_ops {
	/* The innermost frame of a thread state, 0 if it runs no Python. */
	int (*first_frame)(struct pyx_python *py, pyx_addr_t tstate,
			   pyx_addr_t *frame);
	/* Read one frame of the chain; f->previous says where to go next.
	 * The caller bounds and cycle-checks the walk. */
	int (*step_frame)(struct pyx_python *py, pyx_addr_t frame,
			  struct pyx_abi_frame *f);
	/* The thread state holding the GIL of interp, 0 if none or unknown. */
	pyx_addr_t (*gil_holder)(struct pyx_python *py, pyx_addr_t interp);
	/* A stack reference (_PyStackRef of 3.14+, a PyObject * before) as an
	 * object address; 0 for NULL and for tagged ints. */
	pyx_addr_t (*untag)(uint64_t ref);
	/* Decode an object header from its first words, as copied out of the
	 * target (w[0] at the object's address; nwords of them). */
	int (*header_decode)(const struct pyx_python *py, const uint64_t *w,
			     size_t nwords, struct pyx_obj_header *h);
	/* An int's digit count and sign (the digits follow LONG_DIGIT). */
	int (*long_digits)(struct pyx_python *py, pyx_addr_t obj,
			   uint64_t *ndigits, bool *negative);
	/* Where a str's characters are, how many and their width (1, 2, 4). */
	int (*str_data)(struct pyx_python *py, pyx_addr_t obj, pyx_addr_t *data,
			uint64_t *len, unsigned *kind);
	/* The GC lists of interp's GC state (3.8: the runtime's, shared). */
	int (*gc_lists)(struct pyx_python *py, pyx_addr_t interp,
			struct pyx_gc_lists *out);
};

struct pyx_abi {
	int major, minor;            /* this row: 3.11 */
	const char *family;          /* "py38", "py311": the file */
	const struct pyx_abi_ops *ops;
	struct pyx_version_consts k; /* copied into py->k */
	enum pyx_linetable_kind linetable; /* the format of co_linetable or
					      co_lnotab */
	int lasti_unit;              /* bytes per f_lasti unit (3.8-3.10) */
};

/* The ABI rows of each family (abi_py*.c), and the one table (abi.c). */
extern const struct pyx_abi pyx_abi_3_8, pyx_abi_3_9, pyx_abi_3_10;
extern const struct pyx_abi pyx_abi_3_11, pyx_abi_3_12, pyx_abi_3_13;
extern const struct pyx_abi pyx_abi_3_14, pyx_abi_3_15;

/* The row for a version, NULL if it is not supported. */
const struct pyx_abi *pyx_abi_for(int major, int minor);
/* The oldest and newest supported minor versions (3.x), for messages. */
void pyx_abi_range(int *oldest_minor, int *newest_minor);
/* Set py->abi and py->k for py->info.major/minor.
 * -PYX_E_UNSUPPORTED_VERSION if there is no row. */
int pyx_abi_select(struct pyx_python *py);

/* ---- the operations, for the walkers ---------------------------------- */

static inline int pyx_abi_first_frame(struct pyx_python *py, pyx_addr_t tstate,
				      pyx_addr_t *frame)
{
	return py->abi->ops->first_frame(py, tstate, frame);
}

static inline int pyx_abi_step_frame(struct pyx_python *py, pyx_addr_t frame,
				     struct pyx_abi_frame *f)
{
	return py->abi->ops->step_frame(py, frame, f);
}

static inline pyx_addr_t pyx_abi_gil_holder(struct pyx_python *py,
					    pyx_addr_t interp)
{
	return py->abi->ops->gil_holder(py, interp);
}

static inline pyx_addr_t pyx_abi_untag(const struct pyx_python *py,
				       uint64_t ref)
{
	return py->abi->ops->untag(ref);
}

static inline enum pyx_linetable_kind
pyx_abi_linetable(const struct pyx_python *py)
{
	return py->abi->linetable;
}

/* An object's header, read from the target; validates the type pointer. */
int pyx_abi_obj_header(struct pyx_python *py, pyx_addr_t obj,
		       struct pyx_obj_header *h);

/* The GC lists of interp (from pyx_python_interps()): the heap walker
 * visits out->list[0 .. n) of each distinct out->state.  3.8 keeps one GC
 * state in the runtime, shared by every interpreter; 3.9+ one in each.
 * 3.14.0-3.14.4 (incremental GC: young, old[0], old[1]) fit the same
 * shape.  Errors: -PYX_E_LAYOUT (the layout has no GC state),
 * -PYX_E_BAD_MEMORY, -PYX_E_EXITED. */
int pyx_abi_gc_lists(struct pyx_python *py, pyx_addr_t interp,
		     struct pyx_gc_lists *out);

/* ---- shared implementations, for the family files ---------------------- */

pyx_addr_t pyx_abi_untag_identity(uint64_t ref);
/* 3.11+ interpreter frames: where code's instruction pointer instr is.  A
 * frame not owned by a generator whose instr lies before the code's first
 * traceable instruction is being set up or torn down (CPython's
 * _PyFrame_IsIncomplete hides it): PYX_FRAME_INCOMPLETE; else
 * PYX_FRAME_PYTHON with f->lasti the byte offset (-1 if instr is not in the
 * code).  -PYX_E_LAYOUT without co_code_adaptive; read errors. */
int pyx_abi_frame_position(struct pyx_python *py, pyx_addr_t code,
			   uint64_t instr, bool generator,
			   struct pyx_abi_frame *f);
/* 3.14+ _PyStackRef: ref & ~3, 0 for a tagged int (abi_py314.c). */
pyx_addr_t pyx_abi_untag_stackref(uint64_t ref);
int pyx_abi_header_decode_gil(const struct pyx_python *py, const uint64_t *w,
			      size_t nwords, struct pyx_obj_header *h);
int pyx_abi_gc_lists_generational(struct pyx_python *py, pyx_addr_t interp,
				  struct pyx_gc_lists *out);
pyx_addr_t pyx_abi_gil_holder_runtime(struct pyx_python *py,
				      pyx_addr_t interp);
pyx_addr_t pyx_abi_gil_holder_interp(struct pyx_python *py,
				     pyx_addr_t interp);
/* PEP 393 str (3.3+): compact ASCII, compact, legacy (object.c). */
int pyx_str_data_pep393(struct pyx_python *py, pyx_addr_t obj,
			pyx_addr_t *data, uint64_t *len, unsigned *kind);
/* int sign and size in ob_size (up to 3.11). */
int pyx_long_digits_ob_size(struct pyx_python *py, pyx_addr_t obj,
			    uint64_t *ndigits, bool *negative);
/* 3.12+: lv_tag = ndigits << 3 | flags, the sign in bits 0-1 (0 positive,
 * 1 zero, 2 negative); 3.14 marks small ints in bit 2. */
int pyx_long_digits_tag(struct pyx_python *py, pyx_addr_t obj,
			uint64_t *ndigits, bool *negative);

/* ---- builds that are not supported ------------------------------------ */

/* What tells a free-threaded build (Py_GIL_DISABLED) from a GIL build. */
struct pyx_build_signals {
	const uint8_t *runtime_head; /* the first bytes of _PyRuntime
					(3.13+: _Py_DebugOffsets), or NULL */
	size_t runtime_head_len;
	const struct pyx_layout *layout; /* a layout read from DWARF, or NULL */
	const char *binary;          /* the file that defines _PyRuntime */
};
/* Bytes of _PyRuntime the check reads: cookie, version, free_threaded. */
#define PYX_DEBUG_OFFSETS_HEAD 24
/* 0 if nothing says free-threaded; else -PYX_E_UNSUPPORTED_VERSION with
 * the detail "free-threaded build (Py_GIL_DISABLED): not supported yet"
 * and the evidence: _Py_DebugOffsets.free_threaded, PyObject.ob_tid in the
 * DWARF, or a name such as python3.13t / libpython3.13t.so. */
int pyx_abi_check_free_threaded(const struct pyx_build_signals *s);

/* The code object a _PyInterpreterFrame runs: f_executable (3.14+: a
 * tagged _PyStackRef, untagged here) or f_code. */
int pyx_iframe_code(struct pyx_python *py, pyx_addr_t frame, pyx_addr_t *code);

#endif
