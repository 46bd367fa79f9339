/* CPython struct layouts: the offsets the walkers use, behind one interface.
 *
 * Every field a walker reads is named once, in PYX_LAYOUT_FIELDS below, by
 * its C struct and member path as written in CPython's headers.  A provider
 * fills a struct pyx_layout: today the DWARF of the running build (the
 * truth); a built-in table for stripped builds fills the same array, so the
 * walkers never know where an offset came from.
 *
 * Member paths may list alternatives separated by '|' where CPython renamed a
 * field between versions; the first one present wins.  A field absent from a
 * build is PYX_OFF_NONE: that is how a walker tells the versions apart where
 * the version number alone is not the clearest test.
 */
#ifndef PYXRAY_LAYOUT_H
#define PYXRAY_LAYOUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pyxray/common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* X(ID, struct or typedef name, member path[|alternative...]) */
#define PYX_LAYOUT_FIELDS(X)                                                   \
	/* runtime */                                                          \
	X(RT_INTERP_HEAD, "_PyRuntimeState", "interpreters.head")              \
	X(RT_INTERP_MAIN, "_PyRuntimeState", "interpreters.main")              \
	X(RT_TSTATE_CURRENT, "_PyRuntimeState", "gilstate.tstate_current")     \
	X(RT_GIL, "_PyRuntimeState", "ceval.gil")                              \
	X(RT_GC, "_PyRuntimeState", "gc")                                      \
	X(RT_FINALIZING, "_PyRuntimeState", "_finalizing|finalizing")                     \
	/* interpreter */                                                      \
	X(IS_NEXT, "PyInterpreterState", "next")                               \
	X(IS_ID, "PyInterpreterState", "id")                                   \
	X(IS_TSTATE_HEAD, "PyInterpreterState", "threads.head|tstate_head")    \
	X(IS_MODULES, "PyInterpreterState", "imports.modules|modules")         \
	X(IS_SYSDICT, "PyInterpreterState", "sysdict")                         \
	X(IS_BUILTINS, "PyInterpreterState", "builtins")                       \
	X(IS_GC, "PyInterpreterState", "gc")                                   \
	X(IS_CEVAL_GIL, "PyInterpreterState", "ceval.gil")                     \
	X(IS_GIL, "PyInterpreterState", "_gil")                                \
	X(IS_THREADS_MAIN, "PyInterpreterState", "threads.main")               \
	/* GIL */                                                              \
	X(GIL_LOCKED, "_gil_runtime_state", "locked")                          \
	X(GIL_LAST_HOLDER, "_gil_runtime_state", "last_holder")                \
	/* thread state */                                                     \
	X(TS_NEXT, "PyThreadState", "next")                                    \
	X(TS_INTERP, "PyThreadState", "interp")                                \
	X(TS_FRAME, "PyThreadState", "frame")                                  \
	X(TS_CFRAME, "PyThreadState", "cframe")                                \
	X(TS_CURRENT_FRAME, "PyThreadState", "current_frame")                  \
	X(TS_THREAD_ID, "PyThreadState", "thread_id")                          \
	X(TS_NATIVE_THREAD_ID, "PyThreadState", "native_thread_id")            \
	X(TS_BASE_FRAME, "PyThreadState", "base_frame") /* 3.15 */             \
	X(CFRAME_CURRENT_FRAME, "_PyCFrame", "current_frame")                  \
	/* frame objects (3.8-3.10) */                                         \
	X(FO_BACK, "PyFrameObject", "f_back")                                  \
	X(FO_CODE, "PyFrameObject", "f_code")                                  \
	X(FO_LASTI, "PyFrameObject", "f_lasti")                                \
	X(FO_LINENO, "PyFrameObject", "f_lineno")                              \
	X(FO_TRACE, "PyFrameObject", "f_trace")                                \
	/* interpreter frames (3.11+) */                                       \
	X(IF_CODE, "_PyInterpreterFrame", "f_executable|f_code")               \
	X(IF_PREVIOUS, "_PyInterpreterFrame", "previous")                      \
	X(IF_INSTR, "_PyInterpreterFrame", "instr_ptr|prev_instr")             \
	X(IF_OWNER, "_PyInterpreterFrame", "owner")                            \
	X(IF_IS_ENTRY, "_PyInterpreterFrame", "is_entry")                      \
	X(IF_STACKPOINTER, "_PyInterpreterFrame", "stackpointer") /* 3.14 */   \
	/* code objects */                                                     \
	X(CO_FILENAME, "PyCodeObject", "co_filename")                          \
	X(CO_NAME, "PyCodeObject", "co_name")                                  \
	X(CO_QUALNAME, "PyCodeObject", "co_qualname")                          \
	X(CO_LINETABLE, "PyCodeObject", "co_linetable|co_lnotab")              \
	X(CO_FIRSTLINENO, "PyCodeObject", "co_firstlineno")                    \
	X(CO_FIRSTTRACEABLE, "PyCodeObject", "_co_firsttraceable")             \
	X(CO_CODE_ADAPTIVE, "PyCodeObject", "co_code_adaptive")                \
	X(CO_CODE, "PyCodeObject", "co_code")                                  \
	/* objects */                                                          \
	X(OB_TYPE, "PyObject", "ob_type")                                      \
	X(OB_SIZE, "PyVarObject", "ob_size")                                   \
	X(OB_TID, "PyObject", "ob_tid") /* free-threaded builds only */        \
	X(TP_NAME, "PyTypeObject", "tp_name")                                  \
	X(TP_BASICSIZE, "PyTypeObject", "tp_basicsize")                        \
	X(TP_ITEMSIZE, "PyTypeObject", "tp_itemsize")                          \
	X(TP_FLAGS, "PyTypeObject", "tp_flags")                                \
	X(TP_DICTOFFSET, "PyTypeObject", "tp_dictoffset")                      \
	X(HT_CACHED_KEYS, "PyHeapTypeObject", "ht_cached_keys")                \
	X(BYTES_SVAL, "PyBytesObject", "ob_sval")                              \
	X(STR_LENGTH, "PyASCIIObject", "length")                               \
	X(STR_STATE, "PyASCIIObject", "state")                                 \
	X(STR_LEGACY_DATA, "PyUnicodeObject", "data")                          \
	X(LONG_DIGIT, "PyLongObject", "long_value.ob_digit|ob_digit")          \
	X(LONG_TAG, "PyLongObject", "long_value.lv_tag")                       \
	X(TUPLE_ITEM, "PyTupleObject", "ob_item")                              \
	X(LIST_ITEM, "PyListObject", "ob_item")                                \
	X(LIST_ALLOCATED, "PyListObject", "allocated")                         \
	X(MODULE_DICT, "PyModuleObject", "md_dict")                            \
	/* dicts */                                                            \
	X(DICT_USED, "PyDictObject", "ma_used")                                \
	X(DICT_KEYS, "PyDictObject", "ma_keys")                                \
	X(DICT_VALUES, "PyDictObject", "ma_values")                            \
	X(DK_SIZE, "PyDictKeysObject", "dk_size")                              \
	X(DK_LOG2_SIZE, "PyDictKeysObject", "dk_log2_size")                    \
	X(DK_LOG2_INDEX_BYTES, "PyDictKeysObject", "dk_log2_index_bytes")      \
	X(DK_KIND, "PyDictKeysObject", "dk_kind")                              \
	X(DK_NENTRIES, "PyDictKeysObject", "dk_nentries")                      \
	X(DK_INDICES, "PyDictKeysObject", "dk_indices")                        \
	X(DV_VALUES, "PyDictValues", "values")                                 \
	X(DV_VALID, "PyDictValues", "valid")                                   \
	/* census: GC lists (3.8 in the runtime, 3.9+ per interpreter) */      \
	X(GC_GENERATIONS, "_gc_runtime_state", "generations")                  \
	X(GC_GENERATION0, "_gc_runtime_state", "generation0")                  \
	X(GC_PERMANENT, "_gc_runtime_state", "permanent_generation")           \
	X(GC_YOUNG, "_gc_runtime_state", "young") /* incremental: 3.13a-3.14.4 */ \
	X(GC_COLLECTING, "_gc_runtime_state", "collecting")                    \
	X(GC_GARBAGE, "_gc_runtime_state", "garbage")                          \
	X(GC_ENABLED, "_gc_runtime_state", "enabled")                          \
	X(GCH_NEXT, "PyGC_Head", "_gc_next")                                   \
	X(GCH_PREV, "PyGC_Head", "_gc_prev")                                   \
	X(IS_OBMALLOC, "PyInterpreterState", "obmalloc")                       \
	X(OBM_NARENAS, "_obmalloc_state", "mgmt.narenas_currently_allocated")  \
	/* census: types */                                                    \
	X(TP_BASE, "PyTypeObject", "tp_base")                                  \
	X(TP_DICT, "PyTypeObject", "tp_dict")                                  \
	X(TP_MRO, "PyTypeObject", "tp_mro")                                    \
	X(TP_BASES, "PyTypeObject", "tp_bases")                                \
	X(TP_MEMBERS, "PyTypeObject", "tp_members")                            \
	X(TP_IS_GC, "PyTypeObject", "tp_is_gc")                                \
	X(HT_NAME, "PyHeapTypeObject", "ht_name")                              \
	X(HT_QUALNAME, "PyHeapTypeObject", "ht_qualname")                      \
	X(HT_SLOTS, "PyHeapTypeObject", "ht_slots")                            \
	X(HT_MODULE, "PyHeapTypeObject", "ht_module")                          \
	X(MEMBER_TYPE, "PyMemberDef", "type")                                  \
	X(MEMBER_OFFSET, "PyMemberDef", "offset")                              \
	/* census: containers and other objects */                             \
	X(SET_MASK, "PySetObject", "mask")                                     \
	X(SET_TABLE, "PySetObject", "table")                                   \
	X(SET_SMALLTABLE, "PySetObject", "smalltable")                         \
	X(SET_USED, "PySetObject", "used")                                     \
	X(DK_REFCNT, "PyDictKeysObject", "dk_refcnt")                          \
	X(DK_USABLE, "PyDictKeysObject", "dk_usable")                          \
	X(STR_WSTR, "PyASCIIObject", "wstr")                                   \
	X(STR_WSTR_LENGTH, "PyCompactUnicodeObject", "wstr_length")            \
	X(STR_UTF8, "PyCompactUnicodeObject", "utf8")                          \
	X(STR_UTF8_LENGTH, "PyCompactUnicodeObject", "utf8_length")            \
	X(BYTEARRAY_ALLOC, "PyByteArrayObject", "ob_alloc")                    \
	X(CELL_REF, "PyCellObject", "ob_ref")                                  \
	X(METHOD_FUNC, "PyMethodObject", "im_func")                            \
	X(METHOD_SELF, "PyMethodObject", "im_self")                            \
	X(CFUNC_SELF, "PyCFunctionObject", "m_self")                           \
	X(CFUNC_MODULE, "PyCFunctionObject", "m_module")                       \
	X(MODULE_NAME, "PyModuleObject", "md_name")                            \
	X(FUNC_CODE, "PyFunctionObject", "func_code")                          \
	X(FUNC_GLOBALS, "PyFunctionObject", "func_globals")                    \
	X(FUNC_BUILTINS, "PyFunctionObject", "func_builtins")                  \
	X(FUNC_NAME, "PyFunctionObject", "func_name")                          \
	X(FUNC_QUALNAME, "PyFunctionObject", "func_qualname")                  \
	X(FUNC_DEFAULTS, "PyFunctionObject", "func_defaults")                  \
	X(FUNC_KWDEFAULTS, "PyFunctionObject", "func_kwdefaults")              \
	X(FUNC_CLOSURE, "PyFunctionObject", "func_closure")                    \
	X(FUNC_DOC, "PyFunctionObject", "func_doc")                            \
	X(FUNC_DICT, "PyFunctionObject", "func_dict")                          \
	X(FUNC_MODULE, "PyFunctionObject", "func_module")                      \
	X(FUNC_ANNOTATIONS, "PyFunctionObject", "func_annotations")            \
	X(FUNC_TYPEPARAMS, "PyFunctionObject", "func_typeparams")              \
	X(CO_CONSTS, "PyCodeObject", "co_consts")                              \
	X(CO_NAMES, "PyCodeObject", "co_names")                                \
	X(CO_VARNAMES, "PyCodeObject", "co_localsplusnames|co_varnames")       \
	X(CO_FREEVARS, "PyCodeObject", "co_freevars")                          \
	X(CO_CELLVARS, "PyCodeObject", "co_cellvars")                          \
	X(CO_LOCALSPLUSKINDS, "PyCodeObject", "co_localspluskinds")            \
	X(CO_EXCEPTIONTABLE, "PyCodeObject", "co_exceptiontable")              \
	X(DEQUE_LEFTBLOCK, "dequeobject", "leftblock")                         \
	X(DEQUE_LEFTINDEX, "dequeobject", "leftindex")                         \
	X(BLOCK_DATA, "BLOCK", "data")                                         \
	X(BLOCK_RIGHTLINK, "BLOCK", "rightlink")                               \
	X(LRU_CACHE, "lru_cache_object", "cache")                              \
	X(LRU_FUNC, "lru_cache_object", "func")                                \
	X(LRU_ELEM_KEY, "lru_list_elem", "key")                                \
	X(LRU_ELEM_RESULT, "lru_list_elem", "result")                          \
	/* refs: frames' locals, tracebacks, exceptions, weakrefs */           \
	X(FO_LOCALSPLUS, "PyFrameObject", "f_localsplus")                      \
	X(FO_FRAME, "PyFrameObject", "f_frame")                                \
	X(IF_LOCALSPLUS, "_PyInterpreterFrame", "localsplus")                  \
	X(CO_NLOCALSPLUS, "PyCodeObject", "co_nlocalsplus")                    \
	X(CO_NLOCALS, "PyCodeObject", "co_nlocals")                            \
	X(TB_NEXT, "PyTracebackObject", "tb_next")                             \
	X(TB_FRAME, "PyTracebackObject", "tb_frame")                           \
	X(EXC_ARGS, "PyBaseExceptionObject", "args")                           \
	X(EXC_TRACEBACK, "PyBaseExceptionObject", "traceback")                 \
	X(EXC_CONTEXT, "PyBaseExceptionObject", "context")                     \
	X(EXC_CAUSE, "PyBaseExceptionObject", "cause")                         \
	X(WR_CALLBACK, "PyWeakReference", "wr_callback")                      \
	X(GEN_IFRAME, "PyGenObject", "gi_iframe")                              \
	X(GEN_FRAME_STATE, "PyGenObject", "gi_frame_state")                    \
	/* sys.getsizeof: generators (3.11+), 3.15's bytearray, io buffers */ \
	X(CO_STACKSIZE, "PyCodeObject", "co_stacksize")                        \
	X(BYTEARRAY_BYTES_OBJECT, "PyByteArrayObject", "ob_bytes_object")      \
	X(BUFFERED_BUFFER, "buffered", "buffer")                               \
	X(BUFFERED_BUFFER_SIZE, "buffered", "buffer_size")                     \
	/* refs: the value stack of a suspended generator (its delegate) */    \
	X(IF_STACKTOP, "_PyInterpreterFrame", "stacktop") /* 3.11-3.13 */      \
	X(FO_STACKTOP, "PyFrameObject", "f_stacktop")     /* 3.8, 3.9 */      \
	X(FO_VALUESTACK, "PyFrameObject", "f_valuestack") /* 3.8-3.10 */      \
	X(FO_STACKDEPTH, "PyFrameObject", "f_stackdepth") /* 3.10 */         \
	/* tasks: coroutines and generators, their await chains */           \
	X(GEN_FRAME, "PyGenObject", "gi_frame")           /* 3.8-3.10 */      \
	X(ASEND_GEN, "PyAsyncGenASend", "ags_gen")                             \
	X(CORO_WRAPPER_CORO, "PyCoroWrapper", "cw_coroutine")                  \
	X(WR_OBJECT, "PyWeakReference", "wr_object")                           \
	/* tasks: C tasks and futures of _asyncio (in _asyncio.so's DWARF, or \
	 * the interpreter's where it is built in: 3.15); FutureObj_HEAD(task) \
	 * and FutureObj_HEAD(fut) are one macro, one layout */                \
	X(TASK_LOOP, "TaskObj", "task_loop")                                   \
	X(TASK_STATE, "TaskObj", "task_state")                                 \
	X(TASK_CALLBACK0, "TaskObj", "task_callback0")                         \
	X(TASK_CALLBACKS, "TaskObj", "task_callbacks")                         \
	X(TASK_FUT_WAITER, "TaskObj", "task_fut_waiter")                       \
	X(TASK_CORO, "TaskObj", "task_coro")                                   \
	X(TASK_NAME, "TaskObj", "task_name")                                   \
	X(TASK_AWAITED_BY, "TaskObj", "task_awaited_by")  /* 3.14+ */         \
	X(TASK_AWAITED_BY_IS_SET, "TaskObj", "task_awaited_by_is_set")         \
	X(TASK_NODE, "TaskObj", "task_node")              /* 3.14+ */         \
	X(FUT_LOOP, "FutureObj", "fut_loop")                                   \
	X(FUT_STATE, "FutureObj", "fut_state")                                 \
	X(FUT_CALLBACK0, "FutureObj", "fut_callback0")                         \
	X(FUT_CALLBACKS, "FutureObj", "fut_callbacks")                         \
	X(FUT_AWAITED_BY, "FutureObj", "fut_awaited_by")  /* 3.14+ */         \
	X(FUT_AWAITED_BY_IS_SET, "FutureObj", "fut_awaited_by_is_set")         \
	X(FUTITER_FUTURE, "futureiterobject", "future")                        \
	/* 3.14+: the C tasks of each thread, and of exited threads */         \
	X(IS_ASYNCIO_TASKS_HEAD, "PyInterpreterState", "asyncio_tasks_head")  \
	X(TSI_ASYNCIO_TASKS_HEAD, "_PyThreadStateImpl", "asyncio_tasks_head") \
	X(TSI_ASYNCIO_RUNNING_LOOP, "_PyThreadStateImpl", "asyncio_running_loop") \
	/* locals: argument counts, floats */                                  \
	X(CO_ARGCOUNT, "PyCodeObject", "co_argcount")                          \
	X(CO_KWONLYARGCOUNT, "PyCodeObject", "co_kwonlyargcount")              \
	X(CO_FLAGS, "PyCodeObject", "co_flags")                                \
	X(FLOAT_VAL, "PyFloatObject", "ob_fval")                              \
	/* allocs: tracemalloc's state, 3.12+ in _PyRuntime (3.8-3.11: static \
	 * variables, PYX_LAYOUT_SYMBOLS), its hashtables, traces, frames */  \
	X(RT_TM_TRACING, "_PyRuntimeState", "tracemalloc.config.tracing")      \
	X(RT_TM_MAX_NFRAME, "_PyRuntimeState", "tracemalloc.config.max_nframe") \
	X(RT_TM_TRACED, "_PyRuntimeState", "tracemalloc.traced_memory")        \
	X(RT_TM_PEAK, "_PyRuntimeState", "tracemalloc.peak_traced_memory")     \
	X(RT_TM_TRACES, "_PyRuntimeState", "tracemalloc.traces")               \
	X(RT_TM_DOMAINS, "_PyRuntimeState", "tracemalloc.domains")             \
	X(TMC_TRACING, "_PyTraceMalloc_Config", "tracing")      /* 3.8-3.11 */ \
	X(TMC_MAX_NFRAME, "_PyTraceMalloc_Config", "max_nframe")               \
	X(TMC_USE_DOMAIN, "_PyTraceMalloc_Config", "use_domain") /* 3.8 */     \
	X(HT_NENTRIES, "_Py_hashtable_t", "nentries|entries")                  \
	X(HT_NBUCKETS, "_Py_hashtable_t", "nbuckets|num_buckets")              \
	X(HT_BUCKETS, "_Py_hashtable_t", "buckets")                            \
	X(HT_KEY_SIZE, "_Py_hashtable_t", "key_size")           /* 3.8 */      \
	X(HT_DATA_SIZE, "_Py_hashtable_t", "data_size")         /* 3.8 */      \
	X(HTE_NEXT, "_Py_hashtable_entry_t", "_Py_slist_item.next")            \
	X(HTE_KEY, "_Py_hashtable_entry_t", "key")              /* 3.9+ */     \
	X(HTE_VALUE, "_Py_hashtable_entry_t", "value")          /* 3.9+ */     \
	X(TM_PTR_DOMAIN, "pointer_t", "domain")                 /* 3.8 */      \
	X(TM_TRACE_SIZE, "trace_t", "size")                                    \
	X(TM_TRACE_TRACEBACK, "trace_t", "traceback")                          \
	X(TM_TB_NFRAME, "traceback_t", "nframe")                               \
	X(TM_TB_TOTAL_NFRAME, "traceback_t", "total_nframe")    /* 3.9+ */     \
	X(TM_TB_FRAMES, "traceback_t", "frames")                               \
	X(TM_FRAME_FILENAME, "frame_t", "filename")                            \
	X(TM_FRAME_LINENO, "frame_t", "lineno")

/* X(ID, struct or typedef name): sizeof() of a struct. */
#define PYX_LAYOUT_SIZES(X)                                                    \
	X(SZ_ASCII, "PyASCIIObject")                                           \
	X(SZ_COMPACT, "PyCompactUnicodeObject")                                \
	X(SZ_DICT_KEY_ENTRY, "PyDictKeyEntry")                                 \
	X(SZ_DICT_UNICODE_ENTRY, "PyDictUnicodeEntry")                         \
	X(SZ_GC_HEAD, "PyGC_Head")                                             \
	X(SZ_INTERP_FRAME, "_PyInterpreterFrame")                              \
	X(SZ_CODE, "PyCodeObject")                                             \
	X(SZ_TYPE, "PyTypeObject")                                             \
	X(SZ_HEAP_TYPE, "PyHeapTypeObject")                                    \
	X(SZ_GC_GENERATION, "gc_generation")                                   \
	X(SZ_SETENTRY, "setentry")                                             \
	X(SZ_MEMBER_DEF, "PyMemberDef")                                        \
	X(SZ_DEQUE_BLOCK, "BLOCK")                                             \
	X(SZ_DICT_KEYS, "PyDictKeysObject")                                    \
	X(SZ_UNICODE, "PyUnicodeObject")                                       \
	/* what tells builds of one version apart (Py_DEBUG, the GC) */        \
	X(SZ_RUNTIME, "_PyRuntimeState")                                       \
	X(SZ_INTERP, "PyInterpreterState")                                     \
	X(SZ_THREAD, "PyThreadState")                                          \
	X(SZ_GC_STATE, "_gc_runtime_state")                                   \
	/* allocs: tracemalloc */                                              \
	X(SZ_HT_ENTRY, "_Py_hashtable_entry_t") /* 3.8: the key follows */     \
	X(SZ_TM_POINTER, "pointer_t")           /* 3.8: a key with a domain */ \
	X(SZ_TM_TRACE, "trace_t")                                              \
	X(SZ_TM_FRAME, "frame_t")

/* X(ID, symbol, size): the address (size 0) or size (1) of a symbol of
 * the file the DWARF is read from, as its symbol table has it (unbiased):
 * what the build's stripped executable cannot say, such as where the eval
 * loop's .cold part is (GCC splits it off; only the debug file's .symtab
 * names it).  A table keeps them only for the very build (its build-id). */
#define PYX_LAYOUT_SYMBOLS(X)                                                  \
	X(SYM_RUNTIME, "_PyRuntime", 0)                                        \
	X(SYM_EVAL_COLD, "_PyEval_EvalFrameDefault.cold", 0)                   \
	X(SYM_EVAL_COLD_SIZE, "_PyEval_EvalFrameDefault.cold", 1)             \
	/* 3.8-3.11: tracemalloc's state, static variables (.symtab only, \
	 * but the config, which .dynsym exports) */                            \
	X(SYM_TM_CONFIG, "_Py_tracemalloc_config", 0)                          \
	X(SYM_TM_TRACES, "tracemalloc_traces", 0)                              \
	X(SYM_TM_DOMAINS, "tracemalloc_domains", 0)    /* 3.9-3.11 */          \
	X(SYM_TM_TRACED, "tracemalloc_traced_memory", 0)                       \
	X(SYM_TM_PEAK, "tracemalloc_peak_traced_memory", 0)

enum pyx_layout_id {
#define PYX_LAYOUT_ENUM_(id, s, m) PYX_L_##id,
	PYX_LAYOUT_FIELDS(PYX_LAYOUT_ENUM_)
#undef PYX_LAYOUT_ENUM_
#define PYX_LAYOUT_ENUM_(id, s) PYX_L_##id,
	PYX_LAYOUT_SIZES(PYX_LAYOUT_ENUM_)
#undef PYX_LAYOUT_ENUM_
#define PYX_LAYOUT_ENUM_(id, s, z) PYX_L_##id,
	PYX_LAYOUT_SYMBOLS(PYX_LAYOUT_ENUM_)
#undef PYX_LAYOUT_ENUM_
	PYX_L__COUNT
};
#define PYX_L_SYM__FIRST PYX_L_SYM_RUNTIME

#define PYX_OFF_NONE INT32_MIN

enum pyx_layout_source {
	PYX_LAYOUT_FROM_NONE,
	PYX_LAYOUT_FROM_DWARF,
	PYX_LAYOUT_FROM_TABLE,
	PYX_LAYOUT_FROM_DEBUG_OFFSETS,
};

/* Plain data: copy it freely. */
struct pyx_layout {
	int32_t v[PYX_L__COUNT]; /* offset or size, or PYX_OFF_NONE */
	enum pyx_layout_source source;
	char source_file[256]; /* the file the layout was read from */
};

/* Set every entry to PYX_OFF_NONE. */
void pyx_layout_init(struct pyx_layout *l);
/* Fill l from the DWARF of the ELF file at path, a file of pyxray's own
 * (a target's files are opened by the resolver: use the _fd form).  Errors:
 * -PYX_E_NO_DEBUG_INFO (no .debug_info, detail names the file), -PYX_E_IO. */
int pyx_layout_from_dwarf(struct pyx_layout *l, const char *path);
/* The same over an open descriptor (not closed); path names it in messages
 * and l->source_file.  A descriptor, so that the file scanned is the one the
 * resolver checked (a name could be swapped in between). */
int pyx_layout_from_dwarf_fd(struct pyx_layout *l, int fd, const char *path);

/* Fill l from the built-in table for this version: the entry for the same
 * build-id if there is one, else the same major.minor with the nearest micro
 * at or below micro (else above).  -PYX_E_UNSUPPORTED_VERSION if the minor
 * version has no table.  The caller validates it against the process. */
int pyx_layout_from_table(struct pyx_layout *l, int major, int minor,
			  int micro, const char *build_id);

/* The table pyx_layout_from_table() reads for these, NULL if none. */
struct pyx_layout_table;
const struct pyx_layout_table *pyx_layout_table_find(int major, int minor,
						     int micro,
						     const char *build_id);

struct pyx_mem;
/* Fill what the target's own _Py_DebugOffsets (3.13: the first member of
 * _PyRuntime) carries, leaving other entries as they are, so it can stand
 * alone or overlay a table.  *filled counts the entries it set; mismatches
 * counts entries that were already set to a different value (for a DWARF
 * cross-check: pass a filled layout and a copy).  -PYX_E_NOT_SUPPORTED if
 * the runtime has no debug offsets (before 3.13, or a bad cookie). */
int pyx_layout_from_debug_offsets(struct pyx_layout *l, struct pyx_mem *mem,
				  pyx_addr_t runtime, int *filled,
				  int *mismatches);

/* What a target's _Py_DebugOffsets said, beside the layout it filled. */
struct pyx_debug_offsets_diff {
	enum pyx_layout_id id;
	int32_t had;  /* the layout's value before (DWARF, a table) */
	int32_t says; /* the debug offsets' */
};
struct pyx_debug_offsets {
	uint64_t version;    /* the PY_VERSION_HEX it carries */
	int format_minor;    /* the format it was read in: 3.13, 3.14, 3.15 */
	bool newer;          /* its version is newer than every format known:
				read in the newest (format_minor) */
	uint64_t runtime_size, interp_size, thread_size, gc_size;
	int filled;          /* layout entries it set */
	int mismatches;      /* entries it set that had another value */
	size_t ndiff;        /* the first of them */
	struct pyx_debug_offsets_diff diff[16];
};
/* Overlay what the target's _Py_DebugOffsets carries on l, all or nothing,
 * reading the format its version names (the newest known for a newer
 * version).  Every offset is bounded by the size of its struct.  Errors:
 * -PYX_E_NOT_SUPPORTED (no cookie: before 3.13, no detail set; or a
 * version no format reads), -PYX_E_UNSUPPORTED_VERSION (free-threaded),
 * -PYX_E_LAYOUT (a value out of bounds), -PYX_E_BAD_MEMORY, -PYX_E_EXITED. */
int pyx_debug_offsets_apply(struct pyx_layout *l, struct pyx_mem *mem,
			    pyx_addr_t runtime, struct pyx_debug_offsets *d);
/* The oldest and newest _Py_DebugOffsets formats known (3.x). */
void pyx_debug_offsets_range(int *oldest_minor, int *newest_minor);
/* hex, or with PYX_TEST_HOOKS and PYX_TEST_PRESENT_VERSION=X.Y set, hex
 * presented as version X.Y (the test of a version newer than known). */
uint64_t pyx_debug_offsets_present_version(uint64_t hex);

/* One built-in table, as generated from a build's DWARF by
 * scripts/gen-layout-tables.sh (lib/layout_tables.c). */
struct pyx_layout_kv {
	const char *name; /* pyx_layout_name() of the entry */
	int32_t value;
};
struct pyx_layout_table {
	int major, minor, micro;
	const char *build_id;
	const char *origin; /* the file the table was generated from */
	const struct pyx_layout_kv *kv; /* ends with a NULL name */
};
extern const struct pyx_layout_table pyx_layout_tables[];
extern const size_t pyx_layout_ntables;

/* Print l as one table of lib/layout_tables.c (for the generator). */
void pyx_layout_print_table(const struct pyx_layout *l, int major, int minor,
			    int micro, const char *build_id, void *file);

/* The name of an entry ("TS_NEXT") and its C spelling ("PyThreadState",
 * "next"); member is NULL for sizes; for symbols the struct is "(symbol)"
 * and the member the symbol's name. */
const char *pyx_layout_name(enum pyx_layout_id id);
const char *pyx_layout_struct(enum pyx_layout_id id);
const char *pyx_layout_member(enum pyx_layout_id id);

static inline int pyx_layout_has(const struct pyx_layout *l,
				 enum pyx_layout_id id)
{
	return l->v[id] != PYX_OFF_NONE;
}

#ifdef __cplusplus
}
#endif
#endif
