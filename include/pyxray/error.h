/* pyxray error codes.
 *
 * One macro list generates the codes, their messages, their hints and the
 * CLI exit codes (lib/error.c), so they cannot drift apart.
 *
 * Inside the library every fallible function returns 0 on success or a
 * negative code, -PYX_E_*.  The function that detects the error also records
 * a one-line detail (which file, which address) with pyx_err_set(); callers
 * read it with pyx_err_detail().  The library never prints and never exits.
 */
#ifndef PYXRAY_ERROR_H
#define PYXRAY_ERROR_H

#ifdef __cplusplus
extern "C" {
#endif

/* X(NAME, exit code, message, hint) */
#define PYX_ERRORS(X)                                                          \
	X(OK, 0, "success", "")                                                \
	X(USAGE, 2, "invalid arguments", "see 'pyxray --help'")                \
	X(NO_PROCESS, 3, "no such process",                                    \
	  "check the PID with 'ps -p PID'")                                    \
	X(PERMISSION, 4, "permission denied",                                  \
	  "run as root or with CAP_SYS_PTRACE, or as the target's user with "  \
	  "kernel.yama.ptrace_scope=0")                                        \
	X(NOT_PYTHON, 5, "not a Python process",                               \
	  "no python executable or libpython exporting _PyRuntime is mapped")  \
	X(UNSUPPORTED_VERSION, 6, "Python version not supported",              \
	  "pyxray supports CPython 3.8 to 3.15")                               \
	X(NO_DEBUG_INFO, 7, "no usable debug info (DWARF) for the interpreter", \
	  "use a Python built with -g, or install its debug symbols "          \
	  "(e.g. python3-dbg) under /usr/lib/debug")                           \
	X(EXITED, 8, "the process exited while being read",                    \
	  "nothing to inspect any more; run pyxray again on a live process")   \
	X(BAD_MEMORY, 9, "inconsistent remote memory",                         \
	  "the target may have changed while being read; retry, or drop "      \
	  "--nonblocking so pyxray stops it while reading")                    \
	X(TIMEOUT, 10, "deadline exceeded",                                    \
	  "the target did not stop in time; retry, or raise --deadline-ms")    \
	X(INTERRUPTED, 11, "interrupted", "the target was detached and resumed") \
	X(NOMEM, 12, "out of memory", "free memory on the host and retry")     \
	X(IO, 13, "I/O error",                                                 \
	  "check that the files named can be read or written")                 \
	X(LAYOUT, 14, "interpreter layout check failed",                       \
	  "the offsets used do not match this Python build: install its "      \
	  "debug symbols and use --layout dwarf, or report a bug with "        \
	  "'pyxray --version' and 'pyxray info PID'")                          \
	X(BUSY, 15, "target is already traced",                                \
	  "another debugger (gdb, strace, py-spy) is attached; detach it "     \
	  "first, or use --nonblocking")                                       \
	X(FORMAT, 16, "bad file format", "the file is not what pyxray expects") \
	X(NOT_SUPPORTED, 17, "operation not supported",                        \
	  "see 'pyxray COMMAND --help' for what this command can do")          \
	X(GC_BUSY, 18, "the garbage collector was running at every attempt",   \
	  "a collection of a large heap can take seconds; retry in a moment")  \
	X(FILE_MISMATCH, 19, "a file is not the one the core was made with",  \
	  "give the files of the machine that wrote it: --sysroot DIR, "       \
	  "--exe FILE, --debug-dir DIR")                                       \
	X(INTERNAL, 70, "internal error", "please report a bug")

enum pyx_error {
#define PYX_ERR_ENUM_(name, code, msg, hint) PYX_E_##name,
	PYX_ERRORS(PYX_ERR_ENUM_)
#undef PYX_ERR_ENUM_
	PYX_E__COUNT
};

/* Message of a code (positive or negative); never NULL. */
const char *pyx_strerror(int err);
/* A hint a user can act on; never NULL, may be "". */
const char *pyx_errhint(int err);
/* The CLI exit code for a code (positive or negative). */
int pyx_exit_code(int err);

/* Record a detail for the error about to be returned; returns -err so a
 * caller can write: return pyx_err_set(PYX_E_IO, "open %s: %m", path);
 * The detail is per thread and kept until the next pyx_err_set(). */
int pyx_err_set(enum pyx_error err, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* The detail recorded by the last pyx_err_set() on this thread, or "". */
const char *pyx_err_detail(void);
/* Forget the detail (before an operation whose failure is recoverable). */
void pyx_err_clear(void);

#ifdef __cplusplus
}
#endif
#endif
