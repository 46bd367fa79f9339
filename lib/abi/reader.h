/* The reader: the body of struct pyx_python (a target, its layout, its ABI
 * row, its known types), shared by the ABI layer and the walkers in lib/. */
#ifndef PYX_READER_H
#define PYX_READER_H

#include "internal.h"
#include "pyxray/layout.h"
#include "pyxray/memory.h"
#include "pyxray/target.h"
#include "pyxray/python.h"
#include "pyxray/symbols.h"

/* Built-in types, by their exported symbols: an object's ob_type compared
 * with these is how a walker knows what it holds. */
#define PYX_KNOWN_TYPES(X)                                                     \
	X(str, "PyUnicode_Type")                                               \
	X(bytes, "PyBytes_Type")                                               \
	X(code, "PyCode_Type")                                                 \
	X(long_, "PyLong_Type")                                                \
	X(dict, "PyDict_Type")                                                 \
	X(module, "PyModule_Type")                                             \
	X(type, "PyType_Type")                                                 \
	X(tuple, "PyTuple_Type")                                               \
	X(list, "PyList_Type")                                                 \
	X(set, "PySet_Type")                                                   \
	X(frozenset, "PyFrozenSet_Type")                                       \
	X(float_, "PyFloat_Type")                                              \
	X(bytearray, "PyByteArray_Type")                                       \
	X(function, "PyFunction_Type")                                         \
	X(cell, "PyCell_Type")                                                 \
	X(method, "PyMethod_Type")                                             \
	X(cfunction, "PyCFunction_Type")                                       \
	X(object, "PyBaseObject_Type")

struct pyx_known_types {
#define PYX_KT_FIELD_(f, sym) pyx_addr_t f;
	PYX_KNOWN_TYPES(PYX_KT_FIELD_)
#undef PYX_KT_FIELD_
};

/* Facts that are not struct members, so DWARF cannot give them: they follow
 * from the version.  Each ABI row (lib/abi/abi_py*.c) sets them: they are
 * the capabilities a walker may test instead of a version number. */
struct pyx_version_consts {
	int managed_dict_word;   /* obj[-N] holds the dict (3.11+), 0: none */
	int managed_values_word; /* obj[-N] holds the values (3.11 only) */
	bool tagged_dict_or_values; /* 3.12: one word, bit 0 tags values */
	bool inline_values;      /* 3.13: values at obj + tp_basicsize */
	bool interp_frames;      /* 3.11+: _PyInterpreterFrame chains */
	bool shim_frames;        /* 3.12+: owner FRAME_OWNED_BY_CSTACK */
	int gen_frame_completed; /* gi_frame_state at and past which a
				    generator has no live frame (3.11: 1,
				    3.12: 3, 3.13: 4); 0: no gi_iframe */
	bool gc_in_runtime;      /* 3.8: one GC state, in _PyRuntime */
	bool immortals;          /* 3.12+: ob_refcnt's low 32 bits negative
				    as an int32 mark an immortal object */
	bool stackrefs;          /* 3.14+: frames' f_executable, locals and
				    value stack hold tagged _PyStackRefs:
				    read them through pyx_abi_untag() */
	int gen_yield_from_slot; /* 3.14+: a generator suspended in yield
				    from / await holds the delegate at
				    stackpointer[-N] (3.14: 1, 3.15: 2) */
	bool base_frames;        /* 3.15+: every frame chain ends at the
				    thread state's base frame (owner 3) */
	/* Whether a suspended generator waits in yield from / await (its
	 * delegate, cr_await / gi_yieldfrom, on its value stack): */
	int gen_yf_opcode;       /* 3.8-3.10: the instruction after f_lasti
				    is YIELD_FROM (72) */
	int gen_resume_opcode;   /* 3.11, 3.12: the one after prev_instr is
				    RESUME (151) with oparg >= 2 ... */
	int gen_resume_quick_opcode; /* ... or 3.11's RESUME_QUICK (150) */
	bool gen_yf_by_state;    /* 3.13+: gi_frame_state says so: */
	int gen_yf_state_lo, gen_yf_state_hi; /* SUSPENDED_YIELD_FROM (3.13,
				    3.14: -1; 3.15: 2, and 3 its _LOCKED) */
	/* sys.getsizeof rules (lib/sizes.c) */
	int int_min_digits;      /* int.__sizeof__ counts at least this many
				    digits (3.11+: 1; 0 is 24 bytes before) */
	unsigned long preheader_flags; /* tp_flags bits that put 2 more words
				    before the object (3.11: MANAGED_DICT,
				    3.12+: also MANAGED_WEAKREF) */
	bool static_type_gc_head; /* getsizeof(static type) adds the GC head
				    (3.11, 3.12; not before, not after) */
	/* pymalloc */
	uint64_t arena_size;     /* 256 KiB to 3.9, 1 MiB from 3.10 */
	bool obmalloc_ptr;       /* interp->obmalloc is a pointer (3.13+);
				    embedded in 3.12 */
	/* tracemalloc (lib/heap/tracemalloc.c) */
	bool tm_statics;         /* 3.8-3.11: its state is static variables
				    of Modules/_tracemalloc.c, found by
				    symbol; 3.12+: _PyRuntime.tracemalloc */
	bool tm_inline_entries;  /* 3.8: hashtable entries hold key and data
				    inline (key_size, data_size bytes); one
				    traces table for every domain */
	bool tm_c_filenames;     /* 3.15: a frame names its file by a C
				    string (UTF-8), not a str object */
};

#define PYX_TPFLAGS_INLINE_VALUES (1UL << 2)
#define PYX_TPFLAGS_MANAGED_WEAKREF (1UL << 3)
#define PYX_TPFLAGS_MANAGED_DICT (1UL << 4)
#define PYX_TPFLAGS_HEAPTYPE (1UL << 9)
#define PYX_TPFLAGS_HAVE_GC (1UL << 14)
#define PYX_TPFLAGS_LONG_SUBCLASS (1UL << 24)
#define PYX_TPFLAGS_UNICODE_SUBCLASS (1UL << 28)
#define PYX_TPFLAGS_DICT_SUBCLASS (1UL << 29)

struct pyx_abi;

struct pyx_python {
	const struct pyx_abi *abi; /* the version's ABI row (abi.h) */
	struct pyx_target *tgt;
	struct pyx_mem *mem;
	struct pyx_elf *elf;
	struct pyx_layout layout;
	struct pyx_python_info info;
	struct pyx_known_types types;
	struct pyx_version_consts k; /* a copy of abi->k */
	struct pyx_debug_offsets dbg; /* valid if info.debug_offsets_valid */
	uint64_t runtime_size;     /* _PyRuntime's symbol or section size, 0 */
	/* The eval loop's .cold part, where only the build's debug file (or
	 * its own built-in table) says: [lo, hi) in the target, 0 unknown. */
	pyx_addr_t eval_cold_lo, eval_cold_hi;
};

/* Whether pc is in a part of the eval loop that no symbol of the loaded
 * files names (_PyEval_EvalFrameDefault.cold of a stripped build). */
static inline bool pyx_python_eval_pc(const struct pyx_python *py,
				      pyx_addr_t pc)
{
	return py->eval_cold_hi && pc >= py->eval_cold_lo &&
	       pc < py->eval_cold_hi;
}

/* What pyx_python_open() learns from the target's ELF files and DWARF, given
 * directly: for a target without files (a synthetic image in unit tests and
 * the fuzzer) or with facts saved beside it. */
struct pyx_python_facts {
	int major, minor, micro;
	pyx_addr_t runtime;            /* &_PyRuntime */
	struct pyx_known_types types;
	struct pyx_layout layout;
};
/* A python over tgt from facts: no file is opened and nothing validated
 * (the walkers must survive whatever the memory holds).  Errors:
 * -PYX_E_UNSUPPORTED_VERSION, -PYX_E_NOMEM. */
int pyx_python_open_facts(struct pyx_target *tgt,
			  const struct pyx_python_facts *facts,
			  struct pyx_python **out);
/* The facts of an open python (to save them beside an image). */
void pyx_python_get_facts(const struct pyx_python *py,
			  struct pyx_python_facts *facts);

/* More interpreters than this means a corrupt list. */
#define PYX_MAX_INTERPRETERS 1024

/* The interpreters, from _PyRuntime's list (main first); bounded and cycle
 * safe.  -PYX_E_NOT_SUPPORTED when there is none (Python not initialised
 * yet, or finalized).  *n is set on success. */
int pyx_python_interps(struct pyx_python *py, pyx_addr_t *out, size_t max,
		       size_t *n);

/* The address in the target of a PYX_LAYOUT_SYMBOLS entry (a static
 * variable such as 3.8-3.11's tracemalloc_traces): the layout's value (the
 * DWARF file's symbol tables, or a table of the very build) biased as
 * _PyRuntime's own symbol is; else the interpreter's ELF file's symbol
 * tables by name.  -PYX_E_NOT_SUPPORTED if neither knows it (detail set:
 * a stripped build). */
int pyx_python_symbol(struct pyx_python *py, enum pyx_layout_id id,
		      pyx_addr_t *addr);

/* 3.11 -> 311.  Walkers should not need it: a version's knowledge belongs
 * in its ABI row (abi.h), as an operation or a constant of py->k. */
static inline int pyx_py_ver(const struct pyx_python *py)
{
	return py->info.major * 100 + py->info.minor;
}

/* Offset of a layout entry; the caller has checked it exists, or gets
 * PYX_OFF_NONE which every reader below refuses. */
static inline int32_t pyx_off(const struct pyx_python *py, enum pyx_layout_id id)
{
	return py->layout.v[id];
}

#endif
