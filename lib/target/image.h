/* Synthetic images: a target made of a file's bytes (docs/fuzzing.md).
 *
 * An image holds what pyxray's walkers read from a CPython process: the
 * python facts (version, &_PyRuntime, the built-in types' addresses, the
 * struct layout), the threads (TID, TLS base) and the memory, as sorted,
 * disjoint ranges that become the target's maps.  It is a target backend
 * (PYX_TARGET_IMAGE): stopping it succeeds at once and pauses nothing, and
 * a read not wholly inside one range is -PYX_E_BAD_MEMORY.  The unit tests,
 * the replay check and the fuzzer (test/fuzz) run the walkers on images;
 * test/tools/pyx-image-capture.c records them from live processes.
 *
 * The parser takes hostile input (the fuzzer mutates images): every count
 * and length is checked against what is left of the buffer before use, and
 * the totals are bounded.
 *
 * Library-private (lib/target).  It is the bottom layer: the facts are
 * plain data, the types by their symbol names and the struct layout by its
 * entries' names (as PYX_LAYOUT_FIELDS names them), so this layer knows
 * nothing of CPython's layout; the ABI layer's lib/abi/facts.h turns them
 * into a struct pyx_python_facts and back.
 */
#ifndef PYX_IMAGE_H
#define PYX_IMAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "pyxray/common.h"

struct pyx_target;

#define PYX_IMAGE_MAGIC "PYXIMAGE"
#define PYX_IMAGE_VERSION 1u

/* Bounds of the format: a file past any of them is refused. */
#define PYX_IMAGE_MAX_BYTES (256u << 20) /* the whole file */
#define PYX_IMAGE_MAX_SYMS 64u
#define PYX_IMAGE_MAX_NAME 63u           /* a symbol or layout name */
#define PYX_IMAGE_MAX_LAYOUT 1024u       /* layout entries */
#define PYX_IMAGE_MAX_THREADS 4096u
#define PYX_IMAGE_MAX_RANGES 65536u
#define PYX_IMAGE_MAX_OFFSET (1 << 20)   /* a layout offset or size (SYM_*: any) */
#define PYX_IMAGE_NONE INT32_MIN         /* a layout entry the build lacks */

/* Range flags. */
#define PYX_IMAGE_R 1u
#define PYX_IMAGE_W 2u
#define PYX_IMAGE_X 4u

struct pyx_image_sym {
	char name[PYX_IMAGE_MAX_NAME + 1]; /* "PyUnicode_Type" */
	pyx_addr_t addr;
};

/* A layout entry: its name in PYX_LAYOUT_FIELDS ("OB_TYPE"), its value. */
struct pyx_image_entry {
	char name[PYX_IMAGE_MAX_NAME + 1];
	int32_t value; /* 0..PYX_IMAGE_MAX_OFFSET (SYM_*: any >= 0), or NONE */
};

/* The python facts and the process id an image carries. */
struct pyx_image_info {
	pid_t pid;
	int major, minor, micro;
	pyx_addr_t runtime;
	struct pyx_image_entry layout[PYX_IMAGE_MAX_LAYOUT]; /* distinct names */
	size_t nlayout;
	struct pyx_image_sym syms[PYX_IMAGE_MAX_SYMS];
	size_t nsyms;
};

struct pyx_image_thread {
	pid_t tid;
	pyx_addr_t tls; /* fs_base: pthread_self() */
};

struct pyx_image_range {
	pyx_addr_t addr;
	uint64_t len;
	unsigned int flags;  /* PYX_IMAGE_R | _W | _X */
	const void *data;    /* len bytes */
};

/* Open an image held in memory (copied: data may go away afterwards).
 * *info (may be NULL) gets its facts.  Errors: -PYX_E_FORMAT (detail
 * says where), -PYX_E_NOMEM. */
int pyx_image_open_buffer(const void *data, size_t len,
			  struct pyx_target **tgt, struct pyx_image_info *info);
/* The same from a file: also -PYX_E_IO. */
int pyx_image_open_file(const char *path, struct pyx_target **tgt,
			struct pyx_image_info *info);

/* Encode an image into a malloc'ed buffer (*out, *len; free() it).  The
 * ranges must be sorted, disjoint and non-empty; they are checked as the
 * parser would.  -PYX_E_USAGE, -PYX_E_NOMEM. */
int pyx_image_encode(const struct pyx_image_info *info,
		     const struct pyx_image_thread *threads, size_t nthreads,
		     const struct pyx_image_range *ranges, size_t nranges,
		     uint8_t **out, size_t *len);
/* Encode and write to path atomically (a temporary file renamed). */
int pyx_image_save(const char *path, const struct pyx_image_info *info,
		   const struct pyx_image_thread *threads, size_t nthreads,
		   const struct pyx_image_range *ranges, size_t nranges);

/* Add a symbol to info (a name already there is overwritten).  0, or
 * -PYX_E_USAGE (too many, name too long). */
int pyx_image_add_sym(struct pyx_image_info *info, const char *name,
		      pyx_addr_t addr);
/* The symbol's address, 0 if the image does not name it. */
pyx_addr_t pyx_image_sym(const struct pyx_image_info *info, const char *name);
/* Set a layout entry (a name already there is overwritten).  0, or
 * -PYX_E_USAGE (too many, name too long or empty, value out of range). */
int pyx_image_set_entry(struct pyx_image_info *info, const char *name,
			int32_t value);
/* The entry's value, PYX_IMAGE_NONE if the image does not name it. */
int32_t pyx_image_entry(const struct pyx_image_info *info, const char *name);

struct pyx_elf;
/* An ELF file without symbols (made in memory), for the python over an
 * image: the walkers look some symbols up in the python's ELF file
 * (_PySet_Dummy, narenas_currently_allocated), and an image has none.
 * Free with pyx_elf_free().  -PYX_E_IO, -PYX_E_NOMEM. */
int pyx_image_empty_elf(struct pyx_elf **out);


#endif
