/* The file resolver: every file pyxray opens because a target maps or names
 * it (its interpreter and libraries, their debug files, the sources its code
 * objects name) is opened here, and only here.
 *
 * pyxray runs as root; a target does not.  So a path the target names is
 * resolved inside the target's root (no escape by symlink, "..", or magic
 * link), and a file shown to the user must be one the target itself could
 * read.  A file the target maps is reached through /proc/PID/map_files
 * (a chroot, a deleted or replaced file) and checked by device and inode.
 */
#ifndef PYXRAY_FILES_H
#define PYXRAY_FILES_H

#include <stdbool.h>
#include <stddef.h>

#include "pyxray/common.h"
#include "pyxray/maps.h"

#ifdef __cplusplus
extern "C" {
#endif

struct pyx_target;
struct pyx_elf;

/* How pyx_target_open_file() opens a path the target names. */
enum pyx_open_flags {
	/* Only if the target's own credentials (fsuid, fsgid, groups) allow
	 * reading it: for anything shown to the user (sources). */
	PYX_OPEN_AS_TARGET = 1 << 0,
	/* Regular files only (not a FIFO, a device, a directory). */
	PYX_OPEN_REGULAR = 1 << 1,
};

/* Open path as the target sees it (absolute: inside its root; relative:
 * from its working directory), O_RDONLY | O_CLOEXEC | O_NONBLOCK.  *fd is
 * the caller's to close.  Errors: -PYX_E_IO (with the reason, ENOENT /
 * EACCES / ELOOP / EXDEV in the detail), -PYX_E_PERMISSION. */
int pyx_target_open_file(const struct pyx_target *t, const char *path,
			 unsigned flags, int *fd);

/* Open the ELF file behind the target's mappings of target_path (as maps
 * spell it, " (deleted)" included), with its load bias set: through
 * /proc/PID/map_files, else the path inside the target's root, and only if
 * its device and inode are those the maps line names.  pyx_elf_path() is
 * target_path.  Errors: -PYX_E_IO, -PYX_E_PERMISSION (which path, why),
 * -PYX_E_FORMAT, -PYX_E_UNSUPPORTED_VERSION (not ELF64 x86_64). */
int pyx_target_open_elf(const struct pyx_target *t, const char *target_path,
			struct pyx_elf **out);

/* Find a separate debug file for elf (mapped in the target as
 * target_path): by build-id, then .gnu_debuglink, under debug_dir (may be
 * NULL), the target's /usr/lib/debug and pyxray's own, and beside the
 * binary as gdb looks.  A file whose build-id differs is never taken.
 * *local gets the file's name (for messages: never open it by that name;
 * pyx_target_open_debug_file() gives the fd), searched a list of the
 * places tried (for the error message).  -PYX_E_NO_DEBUG_INFO if none. */
int pyx_target_find_debug_file(const struct pyx_target *t,
			       const struct pyx_elf *elf,
			       const char *target_path, const char *debug_dir,
			       char *local, size_t n, char *searched,
			       size_t sn);
/* The same, and *fd: the debug file open for reading, the very file checked
 * (the caller's to close).  Better than a path for a caller that can take an
 * fd (libdwfl's find_debuginfo): nothing can be put in its place between
 * the check and the open. */
int pyx_target_open_debug_file(const struct pyx_target *t,
			       const struct pyx_elf *elf,
			       const char *target_path, const char *debug_dir,
			       int *fd, char *local, size_t n, char *searched,
			       size_t sn);

/* Open the file the target maps as target_path (" (deleted)" included):
 * through /proc/PID/map_files/START-END, else inside the target's root,
 * checked by device and inode against the maps (pyx_target_open_elf()'s
 * way); not mapped: the path inside the target's root.  *fd is the
 * caller's to close, and what the caller reads: a name is never handed on
 * to be opened again (a component could be swapped for a symlink in
 * between).  local (may be NULL) gets a name of that file, for messages
 * and for libdwfl's file_name only. */
int pyx_target_open_mapped(const struct pyx_target *t, const char *target_path,
			   int *fd, char *local, size_t n);

/* Whether a path of /proc/PID/maps ends in " (deleted)": the file was
 * deleted or replaced since it was mapped. */
bool pyx_path_is_deleted(const char *path);

#ifdef PYX_TEST_HOOKS
/* Test hook: fn(arg) runs after the resolver has checked a mapped file and
 * before pyx_target_open_mapped() returns it (NULL: none). */
void pyx_files_test_after_check(void (*fn)(void *arg), void *arg);
#endif

#ifdef __cplusplus
}
#endif
#endif
