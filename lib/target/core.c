/* The core-file backend (pyxray/target.h, docs/core.md): a target made of an
 * ELF core, as the kernel, gdb's gcore or systemd-coredump wrote it.
 *
 * The core is mapped read-only and read in place: its PT_LOAD segments are
 * the memory, served by pointer (struct pyx_mem_source.ptr), so the heap
 * walkers read it without a copy.  Its maps are the segments and the
 * ranges of its NT_FILE note that no segment holds (gcore leaves the text
 * of files out; the kernel writes such segments with p_filesz < p_memsz):
 * what a core does not hold of a file mapping is read from that file.  The
 * files are found where NT_FILE names them, inside --sysroot, the main
 * program at --exe, or by build-id under --debug-dir, and a file is used
 * only if its build-id is the one the core's memory shows (the ELF header
 * page of each mapped file is in every default core).
 *
 * The threads and their registers are the NT_PRSTATUS notes; pid, uid and
 * name NT_PRPSINFO; the vDSO and the program's entry NT_AUXV.
 *
 * Every size, count and offset of the file is hostile input: checked
 * against what the file holds before use, bounded (core_private.h).  A
 * core cut short is read as far as it goes (info->truncated); a read of
 * what it lacks is refused with the range and the reason.
 */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <lz4frame.h>
#include <lzma.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/user.h>
#include <unistd.h>
#include <zstd.h>

#include "core_private.h"
#include "internal.h"
#include "pyxray/files.h"
#include "pyxray/memory.h"
#include "target_private.h"

#ifndef NT_FILE
#define NT_FILE 0x46494c45
#endif
#ifndef NT_SIGINFO
#define NT_SIGINFO 0x53494749
#endif

/* The x86_64 kernel's struct elf_prstatus and elf_prpsinfo, by offset:
 * the core's, not this build's headers. */
#define PRSTATUS_CURSIG 12
#define PRSTATUS_PID 32
#define PRSTATUS_REG 112
#define PRSTATUS_MIN (PRSTATUS_REG + sizeof(struct user_regs_struct))
#define PRPSINFO_UID 16
#define PRPSINFO_GID 20
#define PRPSINFO_PID 24
#define PRPSINFO_FNAME 40
#define PRPSINFO_PSARGS 56
#define PRPSINFO_MIN 136

#define BID_MAX 41 /* hex of a 20-byte build-id, NUL */

struct core_file {
	char *path;      /* as NT_FILE names it */
	bool is_exe;     /* holds the program's entry point */
	char want[BID_MAX]; /* the build-id in the core's memory; "" unknown */
	bool want_read;
	int state;       /* 0 not tried, 1 open, else the -PYX_E_* it failed */
	char *why;       /* its detail, when it failed */
	int fd;
	const uint8_t *data; /* the file, mapped */
	size_t size;
	char local[PATH_MAX + 64];
};

/* Where the bytes of maps[i] come from. */
struct seg {
	const uint8_t *data; /* in the core: the first avail bytes */
	uint64_t avail;
	uint64_t filesz;     /* bytes the header says the core holds */
	long file;           /* index into files, -1: none */
};

struct core {
	struct pyx_core_info info;
	char *path;
	int fd;
	uint8_t *base;
	size_t size;
	struct pyx_map *maps;
	struct seg *segs;
	size_t nmaps;
	size_t last_map;   /* core_ptr's last hit: walks read near
			      where they read before */
	struct core_file *files;
	size_t nfiles;
	pid_t *tids;
	struct user_regs_struct *regs;
	size_t nthreads;
	char *exe, *sysroot, *debug_dir;
	int rootfd;
	pyx_addr_t vdso, entry;
	uint64_t page;
};

static char anon_path[] = "";
static char vdso_path[] = "[vdso]";
static char stack_path[] = "[stack]";

static int corrupt(const struct core *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static int corrupt(const struct core *c, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return pyx_err_set(PYX_E_FORMAT, "%s: not a usable core: %s", c->path,
			   msg);
}

/* [off, off+len) lies in the file. */
static bool in_file(const struct core *c, uint64_t off, uint64_t len)
{
	return off <= c->size && len <= c->size - off;
}

/* ---- decompression ------------------------------------------------------ */

static const uint8_t zstd_magic[4] = { 0x28, 0xb5, 0x2f, 0xfd };
static const uint8_t lz4_magic[4] = { 0x04, 0x22, 0x4d, 0x18 };
static const uint8_t xz_magic[6] = { 0xfd, '7', 'z', 'X', 'Z', 0x00 };

/* A file for the decompressed copy: unlinked at once (O_TMPFILE) on disk
 * where possible, else in memory; *limit: what it may grow to. */
static int tmp_copy(uint64_t *limit)
{
	const char *dirs[3] = { getenv("TMPDIR"), "/var/tmp", "/tmp" };
	struct statvfs vfs;
	int fd;

	for (size_t i = 0; i < 3; i++) {
		if (!dirs[i] || !dirs[i][0])
			continue;
		fd = open(dirs[i], O_TMPFILE | O_RDWR | O_CLOEXEC | O_EXCL, 0600);
		if (fd < 0)
			continue;
		*limit = PYX_CORE_MAX_DECOMPRESSED;
		if (fstatvfs(fd, &vfs) == 0) {
			uint64_t avail = (uint64_t)vfs.f_bavail * vfs.f_frsize;

			avail = avail > PYX_CORE_TMP_MARGIN ?
					avail - PYX_CORE_TMP_MARGIN : 0;
			if (avail < *limit)
				*limit = avail;
		}
		return fd;
	}
	fd = memfd_create("pyxray-core", MFD_CLOEXEC);
	if (fd < 0)
		return -errno;
	/* In memory: half of what the host has free. */
	*limit = (uint64_t)sysconf(_SC_AVPHYS_PAGES) *
		 (uint64_t)sysconf(_SC_PAGESIZE) / 2;
	return fd;
}

struct sink {
	int fd;
	uint64_t done, limit;
	const char *path;
};

static int sink_write(struct sink *s, const void *p, size_t n)
{
	const uint8_t *b = p;

	if (n > s->limit - s->done)
		return pyx_err_set(PYX_E_NOMEM, "%s: decompresses to more than "
				   "%" PRIu64 " bytes (the room for it: set "
				   "TMPDIR to a larger file system)", s->path,
				   s->limit);
	while (n) {
		ssize_t w = write(s->fd, b, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return pyx_err_set(PYX_E_IO, "%s: writing the "
					   "decompressed copy: %s", s->path,
					   w < 0 ? strerror(errno) : "no space");
		b += w;
		n -= (size_t)w;
		s->done += (uint64_t)w;
	}
	return 0;
}

#define CHUNK (1u << 20)

/* Read up to CHUNK bytes: the count, 0 at the end, or -PYX_E_IO. */
static ssize_t src_read(int fd, uint8_t *buf, const char *path)
{
	ssize_t r;

	do
		r = read(fd, buf, CHUNK);
	while (r < 0 && errno == EINTR);
	if (r < 0)
		return pyx_err_set(PYX_E_IO, "read %s: %s", path,
				   strerror(errno));
	return r;
}

/* Each decoder writes what it decodes to s; a stream cut short or damaged
 * ends the copy there (*cut says why): the core then reads as truncated. */
static int unzstd(int in, struct sink *s, uint8_t *ib, uint8_t *ob,
		  const char **cut)
{
	ZSTD_DStream *z = ZSTD_createDStream();
	size_t last = 1;
	int err = 0;

	if (!z)
		return pyx_err_set(PYX_E_NOMEM, "out of memory");
	ZSTD_initDStream(z);
	for (;;) {
		ssize_t got = src_read(in, ib, s->path);
		ZSTD_inBuffer zi = { ib, got > 0 ? (size_t)got : 0, 0 };

		if (got < 0) {
			err = (int)got;
			break;
		}
		if (got == 0) {
			if (last != 0)
				*cut = "the zstd stream ends early";
			break;
		}
		while (zi.pos < zi.size) {
			ZSTD_outBuffer zo = { ob, CHUNK, 0 };

			last = ZSTD_decompressStream(z, &zo, &zi);
			if (ZSTD_isError(last)) {
				*cut = ZSTD_getErrorName(last);
				goto out;
			}
			if ((err = sink_write(s, ob, zo.pos)))
				goto out;
		}
	}
out:
	ZSTD_freeDStream(z);
	return err;
}

static int unlz4(int in, struct sink *s, uint8_t *ib, uint8_t *ob,
		 const char **cut)
{
	LZ4F_dctx *z = NULL;
	size_t hint = 1;
	int err = 0;

	if (LZ4F_isError(LZ4F_createDecompressionContext(&z, LZ4F_VERSION)))
		return pyx_err_set(PYX_E_NOMEM, "out of memory");
	for (;;) {
		ssize_t got = src_read(in, ib, s->path);
		size_t pos = 0;

		if (got < 0) {
			err = (int)got;
			break;
		}
		if (got == 0) {
			if (hint != 0)
				*cut = "the lz4 stream ends early";
			break;
		}
		while (pos < (size_t)got) {
			size_t isz = (size_t)got - pos, osz = CHUNK;

			hint = LZ4F_decompress(z, ob, &osz, ib + pos, &isz, NULL);
			if (LZ4F_isError(hint)) {
				*cut = LZ4F_getErrorName(hint);
				goto out;
			}
			pos += isz;
			if ((err = sink_write(s, ob, osz)))
				goto out;
			if (!isz && !osz)
				break;
		}
	}
out:
	LZ4F_freeDecompressionContext(z);
	return err;
}

static int unxz(int in, struct sink *s, uint8_t *ib, uint8_t *ob,
		const char **cut)
{
	lzma_stream z = LZMA_STREAM_INIT;
	bool eof = false;
	int err = 0;

	if (lzma_stream_decoder(&z, UINT64_MAX, LZMA_CONCATENATED) != LZMA_OK)
		return pyx_err_set(PYX_E_NOMEM, "out of memory");
	for (;;) {
		lzma_ret r;

		if (!z.avail_in && !eof) {
			ssize_t got = src_read(in, ib, s->path);

			if (got < 0) {
				err = (int)got;
				break;
			}
			z.next_in = ib;
			z.avail_in = (size_t)got;
			eof = got == 0;
		}
		z.next_out = ob;
		z.avail_out = CHUNK;
		r = lzma_code(&z, eof ? LZMA_FINISH : LZMA_RUN);
		if ((err = sink_write(s, ob, CHUNK - z.avail_out)))
			break;
		if (r == LZMA_STREAM_END)
			break;
		if (r != LZMA_OK) {
			*cut = r == LZMA_BUF_ERROR ? "the xz stream ends early"
						   : "the xz data is damaged";
			break;
		}
	}
	lzma_end(&z);
	return err;
}

/* If fd holds a compressed core, its decompressed copy in *out (an
 * unlinked file) and the method in *how; else *out = -1. */
static int decompress(int fd, const char *path, int *out, const char **how)
{
	uint8_t magic[6] = { 0 };
	uint8_t *ib = NULL, *ob = NULL;
	struct sink s = { -1, 0, 0, path };
	const char *cut = NULL;
	ssize_t got;
	int err = 0, (*fn)(int, struct sink *, uint8_t *, uint8_t *,
			   const char **);

	*out = -1;
	*how = NULL;
	got = pread(fd, magic, sizeof(magic), 0);
	if (got < 0)
		return pyx_err_set(PYX_E_IO, "read %s: %s", path, strerror(errno));
	if (got >= 4 && !memcmp(magic, zstd_magic, 4))
		fn = unzstd, *how = "zstd";
	else if (got >= 4 && !memcmp(magic, lz4_magic, 4))
		fn = unlz4, *how = "lz4";
	else if (got >= 6 && !memcmp(magic, xz_magic, 6))
		fn = unxz, *how = "xz";
	else
		return 0;
	if ((s.fd = tmp_copy(&s.limit)) < 0)
		return pyx_err_set(PYX_E_IO, "%s: no temporary file for its "
				   "decompressed copy: %s", path,
				   strerror(-s.fd));
	ib = malloc(CHUNK);
	ob = malloc(CHUNK);
	if (!ib || !ob) {
		err = pyx_err_set(PYX_E_NOMEM, "out of memory");
		goto out;
	}
	if ((err = fn(fd, &s, ib, ob, &cut)))
		goto out;
	if (cut)
		pyx_warn("%s: %s compressed data ends after %" PRIu64 " bytes "
			 "decompressed (%s): read as a truncated core", path,
			 *how, s.done, cut);
	if (s.done == 0)
		err = pyx_err_set(PYX_E_FORMAT, "%s: %s compressed, but holds "
				  "nothing (%s)", path, *how, cut ? cut : "empty");
out:
	free(ib);
	free(ob);
	if (err) {
		close(s.fd);
		return err;
	}
	*out = s.fd;
	return 0;
}

/* ---- the notes ---------------------------------------------------------- */

static uint32_t rd32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return v;
}

static uint64_t rd64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, 8);
	return v;
}

static int add_thread(struct core *c, const uint8_t *d, size_t n)
{
	pid_t *t;
	struct user_regs_struct *r;
	int32_t tid;

	if (n < PRSTATUS_MIN)
		return corrupt(c, "NT_PRSTATUS of %zu bytes (%zu needed)", n,
			       (size_t)PRSTATUS_MIN);
	if (c->nthreads >= PYX_CORE_MAX_THREADS)
		return corrupt(c, "more than %u threads", PYX_CORE_MAX_THREADS);
	memcpy(&tid, d + PRSTATUS_PID, 4);
	if (tid <= 0)
		return corrupt(c, "thread id %d", (int)tid);
	for (size_t i = 0; i < c->nthreads; i++)
		if (c->tids[i] == tid)
			return corrupt(c, "thread %d twice", (int)tid);
	t = realloc(c->tids, (c->nthreads + 1) * sizeof(*t));
	if (t)
		c->tids = t;
	r = realloc(c->regs, (c->nthreads + 1) * sizeof(*r));
	if (r)
		c->regs = r;
	if (!t || !r)
		return pyx_err_set(PYX_E_NOMEM, "out of memory");
	c->tids[c->nthreads] = tid;
	memcpy(&c->regs[c->nthreads], d + PRSTATUS_REG, sizeof(*r));
	/* The first thread is the one that took the signal. */
	if (!c->nthreads) {
		int16_t sig;

		memcpy(&sig, d + PRSTATUS_CURSIG, 2);
		if (!c->info.signal && sig > 0 && sig < 128)
			c->info.signal = sig;
		if (!c->info.pid)
			c->info.pid = tid;
	}
	c->nthreads++;
	return 0;
}

struct file_range {
	uint64_t start, end, off; /* off: bytes, in the file */
	size_t file;
};

/* NT_FILE: count, page size, count x {start, end, page offset}, then count
 * NUL-terminated names. */
static int parse_nt_file(struct core *c, const uint8_t *d, size_t n,
			 struct file_range **out, size_t *nout)
{
	uint64_t count, page;
	const char *names;
	size_t left;
	struct file_range *fr;

	if (*out)
		return corrupt(c, "two NT_FILE notes");
	if (n < 16)
		return corrupt(c, "NT_FILE of %zu bytes", n);
	count = rd64(d);
	page = rd64(d + 8);
	if (count > PYX_CORE_MAX_FILES || count > (n - 16) / 24)
		return corrupt(c, "NT_FILE: %" PRIu64 " entries in %zu bytes",
			       count, n);
	if (page < 1 || page > (1u << 30) || (page & (page - 1)))
		return corrupt(c, "NT_FILE: page size %" PRIu64, page);
	c->page = page;
	if (!count)
		return 0;
	fr = calloc((size_t)count, sizeof(*fr));
	c->files = calloc((size_t)count, sizeof(*c->files));
	if (!fr || !c->files) {
		free(fr);
		return pyx_err_set(PYX_E_NOMEM, "out of memory");
	}
	names = (const char *)d + 16 + count * 24;
	left = n - 16 - (size_t)count * 24;
	for (size_t i = 0; i < count; i++) {
		const uint8_t *e = d + 16 + i * 24;
		size_t len = strnlen(names, left);
		uint64_t pg = rd64(e + 16);
		size_t f;

		int err;

		if (len == left) {
			free(fr);
			return corrupt(c, "NT_FILE: name %zu cut short", i);
		}
		fr[i].start = rd64(e);
		fr[i].end = rd64(e + 8);
		if (fr[i].end <= fr[i].start || pg > UINT64_MAX / page) {
			err = corrupt(c, "NT_FILE: entry %zu: range 0x%" PRIx64
				      "-0x%" PRIx64 ", page %" PRIu64, i,
				      fr[i].start, fr[i].end, pg);
			free(fr);
			return err;
		}
		fr[i].off = pg * page;
		/* One file per name, however many mappings. */
		for (f = 0; f < c->nfiles; f++)
			if (!strcmp(c->files[f].path, names))
				break;
		if (f == c->nfiles) {
			if (!(c->files[f].path = strdup(names))) {
				free(fr);
				return pyx_err_set(PYX_E_NOMEM, "out of memory");
			}
			c->files[f].fd = -1;
			c->nfiles++;
		}
		fr[i].file = f;
		names += len + 1;
		left -= len + 1;
	}
	*out = fr;
	*nout = (size_t)count;
	return 0;
}

static int parse_notes(struct core *c, uint64_t off, uint64_t len,
		       struct file_range **fr, size_t *nfr)
{
	const uint8_t *p;
	uint64_t pos = 0;
	int err;

	/* Past the end of a truncated core: nothing (off is not in it). */
	if (!len)
		return 0;
	p = c->base + off;
	while (len - pos >= 12) {
		uint32_t namesz = rd32(p + pos), descsz = rd32(p + pos + 4);
		uint32_t type = rd32(p + pos + 8);
		uint64_t name_at = pos + 12;
		uint64_t desc_at = name_at + (((uint64_t)namesz + 3) & ~3u);
		uint64_t next = desc_at + (((uint64_t)descsz + 3) & ~3u);
		const char *name;
		const uint8_t *d;

		if (desc_at > len || descsz > len - desc_at) {
			/* Cut by a truncated core: what came before stands. */
			if (off + len > c->size || c->info.truncated)
				break;
			return corrupt(c, "note at byte %" PRIu64 " runs past "
				       "its segment", off + pos);
		}
		/* Both inside the segment now (the name ends before desc_at). */
		name = (const char *)p + name_at;
		d = p + desc_at;
		if (namesz == 5 && !memcmp(name, "CORE", 5)) {
			if (type == NT_PRSTATUS)
				err = add_thread(c, d, descsz);
			else if (type == NT_PRPSINFO && descsz >= PRPSINFO_MIN) {
				int32_t pid;

				c->info.uid = rd32(d + PRPSINFO_UID);
				c->info.gid = rd32(d + PRPSINFO_GID);
				memcpy(&pid, d + PRPSINFO_PID, 4);
				if (pid > 0)
					c->info.pid = pid;
				memcpy(c->info.comm, d + PRPSINFO_FNAME, 16);
				c->info.comm[16] = '\0';
				memcpy(c->info.args, d + PRPSINFO_PSARGS, 80);
				c->info.args[80] = '\0';
				err = 0;
			} else if (type == NT_SIGINFO && descsz >= 4) {
				int32_t sig;

				memcpy(&sig, d, 4);
				if (!c->info.signal && sig > 0 && sig < 128)
					c->info.signal = sig;
				err = 0;
			} else if (type == NT_AUXV) {
				for (uint32_t i = 0; i + 16 <= descsz; i += 16) {
					uint64_t k = rd64(d + i), v = rd64(d + i + 8);

					if (k == AT_SYSINFO_EHDR)
						c->vdso = v;
					else if (k == AT_ENTRY)
						c->entry = v;
				}
				err = 0;
			} else if (type == NT_FILE) {
				err = parse_nt_file(c, d, descsz, fr, nfr);
			} else {
				err = 0;
			}
			if (err)
				return err;
		} else if (namesz == 4 && !memcmp(name, "GDB", 4)) {
			c->info.writer = "gdb";
		}
		if (next <= pos || next > len)
			break;
		pos = next;
	}
	return 0;
}

/* ---- the maps ----------------------------------------------------------- */

struct load {
	uint64_t vaddr, memsz, off, filesz;
	uint32_t flags;
};

static int cmp_load(const void *a, const void *b)
{
	const struct load *x = a, *y = b;

	return (x->vaddr > y->vaddr) - (x->vaddr < y->vaddr);
}

static int cmp_range(const void *a, const void *b)
{
	const struct file_range *x = a, *y = b;

	return (x->start > y->start) - (x->start < y->start);
}

static int cmp_map(const void *a, const void *b)
{
	const struct pyx_map *x = a, *y = b;

	return (x->start > y->start) - (x->start < y->start);
}

static int push_map(struct core *c, size_t *cap, uint64_t start, uint64_t end,
		    uint32_t flags, const struct load *l)
{
	if (c->nmaps == *cap) {
		size_t ncap = *cap ? *cap * 2 : 64;
		struct pyx_map *m = realloc(c->maps, ncap * sizeof(*m));
		struct seg *s;

		if (m)
			c->maps = m;
		s = m ? realloc(c->segs, ncap * sizeof(*s)) : NULL;
		if (!m || !s)
			return pyx_err_set(PYX_E_NOMEM, "out of memory");
		c->segs = s;
		*cap = ncap;
	}
	c->maps[c->nmaps] = (struct pyx_map){
		.start = start, .end = end, .r = flags & PF_R,
		.w = flags & PF_W, .x = flags & PF_X, .p = true,
		.path = anon_path,
	};
	c->segs[c->nmaps] = (struct seg){ NULL, 0, 0, -1 };
	if (l) {
		c->segs[c->nmaps].filesz = l->filesz;
		if (l->off < c->size) {
			c->segs[c->nmaps].data = c->base + l->off;
			c->segs[c->nmaps].avail = l->filesz < c->size - l->off ?
							  l->filesz : c->size - l->off;
		}
	}
	c->nmaps++;
	return 0;
}

/* The NT_FILE range holding [s, e), or NULL. */
static const struct file_range *range_of(const struct file_range *fr, size_t n,
					 uint64_t s, uint64_t e)
{
	size_t lo = 0, hi = n;

	while (hi - lo > 1) {
		size_t mid = lo + (hi - lo) / 2;

		if (fr[mid].start <= s)
			lo = mid;
		else
			hi = mid;
	}
	if (n && fr[lo].start <= s && e <= fr[lo].end)
		return &fr[lo];
	return NULL;
}

static int build_maps(struct core *c, struct load *l, size_t nl,
		      struct file_range *fr, size_t nfr)
{
	size_t cap = 0, j = 0;
	int err;

	if (nl)
		qsort(l, nl, sizeof(*l), cmp_load);
	for (size_t i = 1; i < nl; i++)
		if (l[i].vaddr < l[i - 1].vaddr + l[i - 1].memsz)
			return corrupt(c, "PT_LOAD segments overlap at 0x%" PRIx64,
				       l[i].vaddr);
	if (nfr)
		qsort(fr, nfr, sizeof(*fr), cmp_range);
	for (size_t i = 1; i < nfr; i++)
		if (fr[i].start < fr[i - 1].end)
			return corrupt(c, "NT_FILE ranges overlap at 0x%" PRIx64,
				       fr[i].start);
	for (size_t i = 0; i < nl; i++)
		if ((err = push_map(c, &cap, l[i].vaddr, l[i].vaddr + l[i].memsz,
				    l[i].flags, &l[i])))
			return err;
	/* What a file maps and no segment holds (gcore leaves out what the
	 * file has): readable, from the file. */
	for (size_t i = 0; i < nfr; i++) {
		uint64_t at = fr[i].start;

		while (j < nl && l[j].vaddr + l[j].memsz <= at)
			j++;
		for (size_t k = j; at < fr[i].end; k++) {
			uint64_t next = k < nl && l[k].vaddr < fr[i].end ?
						l[k].vaddr : fr[i].end;

			if (next > at && (err = push_map(c, &cap, at, next, PF_R,
							 NULL)))
				return err;
			if (k >= nl || l[k].vaddr >= fr[i].end)
				break;
			at = l[k].vaddr + l[k].memsz;
		}
	}
	if (!c->nmaps)
		return corrupt(c, "no memory (PT_LOAD segment)");
	/* Sorted together: the offset field carries each map's index
	 * through the sort, to put its seg beside it. */
	{
		struct seg *s = malloc(c->nmaps * sizeof(*s));

		if (!s)
			return pyx_err_set(PYX_E_NOMEM, "out of memory");
		for (size_t i = 0; i < c->nmaps; i++)
			c->maps[i].offset = i;
		qsort(c->maps, c->nmaps, sizeof(*c->maps), cmp_map);
		for (size_t i = 0; i < c->nmaps; i++)
			s[i] = c->segs[c->maps[i].offset];
		free(c->segs);
		c->segs = s;
	}
	for (size_t i = 0; i < c->nmaps; i++) {
		struct pyx_map *m = &c->maps[i];
		const struct file_range *r = range_of(fr, nfr, m->start, m->end);

		m->offset = 0;
		if (r) {
			if (r->off > UINT64_MAX - (m->start - r->start))
				return corrupt(c, "NT_FILE: offset overflows");
			m->path = c->files[r->file].path;
			m->offset = r->off + (m->start - r->start);
			c->segs[i].file = (long)r->file;
			if (c->entry >= m->start && c->entry < m->end)
				c->files[r->file].is_exe = true;
		} else if (c->vdso && c->vdso >= m->start && c->vdso < m->end) {
			m->path = vdso_path;
		} else if (c->nthreads && c->regs[0].rsp >= m->start &&
			   c->regs[0].rsp < m->end) {
			m->path = stack_path;
		}
	}
	return 0;
}

/* ---- memory ------------------------------------------------------------- */

/* Bytes of [addr, addr+len) held in the core only, no file: 0 or
 * -PYX_E_BAD_MEMORY (no detail). */
static int core_only(const struct core *c, pyx_addr_t addr, void *buf,
		     size_t len)
{
	const struct pyx_map *m = pyx_maps_find(c->maps, c->nmaps, addr);
	const struct seg *s;

	if (!m)
		return -PYX_E_BAD_MEMORY;
	s = &c->segs[m - c->maps];
	if (!s->data || addr - m->start > s->avail ||
	    len > s->avail - (addr - m->start))
		return -PYX_E_BAD_MEMORY;
	memcpy(buf, s->data + (addr - m->start), len);
	return 0;
}

/* The build-id (hex) of an ELF image: with mem, the one mapped at base in
 * the core's memory (notes by address); else the file's bytes f (notes by
 * file offset).  "" if there is none to be read. */
static void build_id(const struct core *c, pyx_addr_t base, const uint8_t *f,
		     size_t fsize, char *out)
{
	Elf64_Ehdr eh;
	pyx_addr_t bias = 0;
	bool first = true;

	out[0] = '\0';
#define GET(off, dst, n)                                                       \
	(f ? ((off) <= fsize && (n) <= fsize - (off) ?                         \
	      (memcpy((dst), f + (off), (n)), 0) : -1)                         \
	   : core_only(c, (pyx_addr_t)(off), (dst), (n)))
	if (GET(base, &eh, sizeof(eh)) || memcmp(eh.e_ident, ELFMAG, SELFMAG) ||
	    eh.e_ident[EI_CLASS] != ELFCLASS64 ||
	    eh.e_phentsize != sizeof(Elf64_Phdr) || eh.e_phnum > 256 ||
	    eh.e_phoff > UINT64_MAX - base)
		return;
	/* Two passes: the first PT_LOAD gives the bias for addresses. */
	for (int pass = 0; pass < 2; pass++) {
		for (unsigned i = 0; i < eh.e_phnum; i++) {
			Elf64_Phdr ph;
			uint8_t notes[512];
			uint64_t at, n, pos = 0;

			if (GET(base + eh.e_phoff + (uint64_t)i * sizeof(ph), &ph,
				sizeof(ph)))
				return;
			if (pass == 0) {
				if (ph.p_type == PT_LOAD && first) {
					bias = base - (ph.p_vaddr & ~(uint64_t)0xfff);
					first = false;
				}
				continue;
			}
			if (ph.p_type != PT_NOTE)
				continue;
			n = ph.p_filesz < sizeof(notes) ? ph.p_filesz : sizeof(notes);
			at = f ? ph.p_offset : bias + ph.p_vaddr;
			if (GET(at, notes, n))
				continue;
			while (n - pos >= 12) {
				uint32_t nsz = rd32(notes + pos),
					 dsz = rd32(notes + pos + 4),
					 type = rd32(notes + pos + 8);
				uint64_t d = pos + 12 + (((uint64_t)nsz + 3) & ~3u);

				if (d > n || dsz > n - d)
					break;
				if (type == NT_GNU_BUILD_ID && nsz == 4 &&
				    !memcmp(notes + pos + 12, "GNU", 4) &&
				    dsz >= 1 && dsz <= 20) {
					for (uint32_t k = 0; k < dsz; k++)
						snprintf(out + 2 * k, 3, "%02x",
							 notes[d + k]);
					return;
				}
				pos = d + (((uint64_t)dsz + 3) & ~3u);
			}
		}
	}
#undef GET
}

/* The build-id the core shows for files[i]: that of the ELF header at its
 * mapping of file offset 0. */
static const char *want_build_id(struct core *c, size_t i)
{
	struct core_file *f = &c->files[i];

	if (f->want_read)
		return f->want;
	f->want_read = true;
	for (size_t k = 0; k < c->nmaps; k++) {
		if (c->segs[k].file == (long)i && c->maps[k].offset == 0) {
			build_id(c, c->maps[k].start, NULL, 0, f->want);
			break;
		}
	}
	return f->want;
}

static int fail_file(struct core_file *f, int err)
{
	free(f->why);
	f->why = strdup(pyx_err_detail());
	f->state = err;
	return err;
}

/* A candidate for files[i]: fd (taken) must be a regular file whose
 * build-id is the one wanted.  0, or -1 with *got its build-id. */
static int take_candidate(struct core *c, struct core_file *f, int fd,
			  const char *local, char *got)
{
	struct stat st;
	void *data;
	const char *want;

	got[0] = '\0';
	if (fstat(fd, &st) || !S_ISREG(st.st_mode) || st.st_size <= 0 ||
	    (uint64_t)st.st_size > SIZE_MAX) {
		close(fd);
		return -1;
	}
	data = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	if (data == MAP_FAILED) {
		close(fd);
		return -1;
	}
	build_id(c, 0, data, (size_t)st.st_size, got);
	want = want_build_id(c, (size_t)(f - c->files));
	if (want[0] && strcmp(want, got) != 0) {
		munmap(data, (size_t)st.st_size);
		close(fd);
		return -1;
	}
	f->fd = fd;
	f->data = data;
	f->size = (size_t)st.st_size;
	snprintf(f->local, sizeof(f->local), "%s", local);
	f->state = 1;
	return 0;
}

/* Open files[i]: --exe for the program; else its path inside the sysroot
 * (" (deleted)" taken off: the file may be back); else by build-id under
 * --debug-dir.  The error names the file, where it was looked for and the
 * build-ids. */
static int open_file(struct core *c, size_t i)
{
	struct core_file *f = &c->files[i];
	char path[PATH_MAX], local[PATH_MAX + 64], got[BID_MAX] = "";
	char mismatch[PATH_MAX + 128] = "", tried[2 * PATH_MAX + 64] = "";
	const char *want;
	size_t len;
	int fd, eno = ENOENT;

	if (f->state == 1)
		return 0;
	if (f->state < 0) {
		pyx_err_set((enum pyx_error)-f->state, "%s", f->why ? f->why : "");
		return f->state;
	}
	want = want_build_id(c, i);
	if (f->is_exe && c->exe) {
		fd = open(c->exe, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
		if (fd < 0)
			return fail_file(f, pyx_err_set(PYX_E_IO, "--exe %s: %s",
							c->exe, strerror(errno)));
		if (!take_candidate(c, f, fd, c->exe, got))
			return 0;
		return fail_file(f, pyx_err_set(PYX_E_FILE_MISMATCH, "--exe %s is not "
						"the program of the core (%s): "
						"build-id %s, the core's %s",
						c->exe, f->path,
						got[0] ? got : "(none)", want));
	}
	snprintf(path, sizeof(path), "%s", f->path);
	len = strlen(path);
	if (pyx_path_is_deleted(path))
		path[len - strlen(" (deleted)")] = '\0';
	snprintf(local, sizeof(local), "%s%s", c->sysroot ? c->sysroot : "",
		 path);
	snprintf(tried, sizeof(tried), "%s", local);
	if (path[0] == '/') {
		fd = pyx_open_in_root(c->rootfd, path);
		if (fd >= 0 && !take_candidate(c, f, fd, local, got))
			return 0;
		if (fd >= 0)
			snprintf(mismatch, sizeof(mismatch), "%s has build-id %s",
				 local, got[0] ? got : "(none)");
		else
			eno = -fd;
	}
	if (c->debug_dir && strlen(want) > 2) {
		int n = snprintf(local, sizeof(local), "%s/.build-id/%.2s/%s",
				 c->debug_dir, want, want + 2);

		if (n > 0 && (size_t)n < sizeof(local)) {
			size_t tl = strlen(tried);

			snprintf(tried + tl, sizeof(tried) - tl, ", %s", local);
			fd = open(local, O_RDONLY | O_CLOEXEC | O_NOCTTY |
				  O_NONBLOCK);
			if (fd >= 0 && !take_candidate(c, f, fd, local, got))
				return 0;
		}
	}
	if (mismatch[0])
		return fail_file(f, pyx_err_set(PYX_E_FILE_MISMATCH, "%s: not the file "
						"the core was made with: %s, the "
						"core's is %s (give the right "
						"files with --sysroot DIR, --exe "
						"FILE or --debug-dir DIR)",
						f->path, mismatch, want));
	return fail_file(f, pyx_err_set(PYX_E_IO, "%s (build-id %s), mapped "
					"in the core, was not found: %s: %s "
					"(give the files of the machine that "
					"wrote the core with --sysroot DIR, "
					"--exe FILE or --debug-dir DIR)",
					f->path, want[0] ? want : "unknown",
					tried, strerror(eno)));
}

/* The bytes of [addr, addr+len), all in maps[i]. */
static int read_in_map(struct core *c, size_t i, pyx_addr_t addr, uint8_t *buf,
		       size_t len)
{
	const struct pyx_map *m = &c->maps[i];
	const struct seg *s = &c->segs[i];
	uint64_t off = addr - m->start, foff;
	struct core_file *f;
	size_t k;
	int err;

	if (off < s->avail) {
		k = s->avail - off < len ? (size_t)(s->avail - off) : len;
		memcpy(buf, s->data + off, k);
		buf += k;
		addr += k;
		off += k;
		len -= k;
	}
	if (!len)
		return 0;
	if (off < s->filesz)
		return pyx_err_set(PYX_E_BAD_MEMORY, PYX_PRIaddr " (%zu bytes) "
				   "is not in the core: it is truncated (%zu "
				   "bytes of the %" PRIu64 " its headers need)",
				   addr, len, c->size, c->info.needed);
	if (s->file < 0)
		return pyx_err_set(PYX_E_BAD_MEMORY, PYX_PRIaddr " (%zu bytes) "
				   "is not in the core: left out when it was "
				   "written (coredump_filter, MADV_DONTDUMP), "
				   "and no file holds it", addr, len);
	f = &c->files[s->file];
	if ((err = open_file(c, (size_t)s->file)))
		return pyx_err_set(PYX_E_BAD_MEMORY, PYX_PRIaddr " (%zu bytes) "
				   "is not in the core, and its file cannot be "
				   "read: %s", addr, len, pyx_err_detail());
	foff = m->offset + off;
	if (foff < m->offset || foff > f->size || len > f->size - foff)
		return pyx_err_set(PYX_E_BAD_MEMORY, PYX_PRIaddr " (%zu bytes) "
				   "is not in the core, and lies past the end "
				   "of %s (%zu bytes)", addr, len, f->local,
				   f->size);
	memcpy(buf, f->data + foff, len);
	return 0;
}

static int core_read(void *ctx, pyx_addr_t addr, void *buf, size_t len)
{
	struct core *c = ctx;
	uint8_t *b = buf;

	/* May span contiguous maps; each step moves to the next one. */
	while (len) {
		const struct pyx_map *m = pyx_maps_find(c->maps, c->nmaps, addr);
		size_t n;
		int err;

		if (!m || !m->r)
			return pyx_err_set(PYX_E_BAD_MEMORY, "address "
					   PYX_PRIaddr " not mapped in the core",
					   addr);
		n = m->end - addr < len ? (size_t)(m->end - addr) : len;
		if ((err = read_in_map(c, (size_t)(m - c->maps), addr, b, n)))
			return err;
		b += n;
		addr += n;
		len -= n;
	}
	return 0;
}

static const void *core_ptr(void *ctx, pyx_addr_t addr, size_t len)
{
	struct core *c = ctx;
	const struct pyx_map *m = NULL;
	const struct seg *s;
	uint64_t off;

	if (c->last_map < c->nmaps && addr >= c->maps[c->last_map].start &&
	    addr < c->maps[c->last_map].end)
		m = &c->maps[c->last_map];
	else if ((m = pyx_maps_find(c->maps, c->nmaps, addr)))
		c->last_map = (size_t)(m - c->maps);
	if (!m || !m->r || len > m->end - addr)
		return NULL;
	s = &c->segs[m - c->maps];
	off = addr - m->start;
	if (off < s->avail && len <= s->avail - off)
		return s->data + off;
	/* A file already open (read() opens them, with the errors). */
	if (off >= s->filesz && s->file >= 0) {
		const struct core_file *f = &c->files[s->file];
		uint64_t foff = m->offset + off;

		if (f->state == 1 && foff >= m->offset && foff <= f->size &&
		    len <= f->size - foff)
			return f->data + foff;
	}
	return NULL;
}

/* ---- the backend -------------------------------------------------------- */

static void core_free(void *be)
{
	struct core *c = be;

	if (!c)
		return;
	for (size_t i = 0; i < c->nfiles; i++) {
		if (c->files[i].data)
			munmap((void *)c->files[i].data, c->files[i].size);
		if (c->files[i].fd >= 0)
			close(c->files[i].fd);
		free(c->files[i].path);
		free(c->files[i].why);
	}
	free(c->files);
	if (c->base)
		munmap(c->base, c->size);
	if (c->fd >= 0)
		close(c->fd);
	if (c->rootfd >= 0)
		close(c->rootfd);
	free(c->maps);
	free(c->segs);
	free(c->tids);
	free(c->regs);
	free(c->path);
	free(c->exe);
	free(c->sysroot);
	free(c->debug_dir);
	free(c);
}

static pid_t core_pid(void *be)
{
	return ((struct core *)be)->info.pid;
}

static const struct pyx_map *core_maps(void *be, size_t *n)
{
	struct core *c = be;

	*n = c->nmaps;
	return c->maps;
}

static int core_path(void *be, const char *path, char *buf, size_t n)
{
	struct core *c = be;

	if ((size_t)snprintf(buf, n, "%s%s", c->sysroot ? c->sysroot : "",
			     path) >= n)
		return pyx_err_set(PYX_E_IO, "%.200s: path too long", path);
	return 0;
}

static const pid_t *core_threads(void *be, size_t *n)
{
	struct core *c = be;

	*n = c->nthreads;
	return c->tids;
}

static int thread_index(const struct core *c, pid_t tid)
{
	for (size_t i = 0; i < c->nthreads; i++)
		if (c->tids[i] == tid)
			return (int)i;
	return pyx_err_set(PYX_E_NO_PROCESS, "the core has no thread %d",
			   (int)tid);
}

static int core_thread_tls(void *be, pid_t tid, pyx_addr_t *out)
{
	struct core *c = be;
	int i = thread_index(c, tid);

	if (i < 0)
		return i;
	*out = c->regs[i].fs_base;
	return 0;
}

static int core_thread_regs(void *be, pid_t tid, void *regs, size_t size)
{
	struct core *c = be;
	int i = thread_index(c, tid);

	if (i < 0)
		return i;
	if (size != sizeof(c->regs[i]))
		return pyx_err_set(PYX_E_USAGE, "registers: %zu bytes, not %zu",
				   size, sizeof(c->regs[i]));
	memcpy(regs, &c->regs[i], size);
	return 0;
}

/* A core names the process (pr_fname), not each thread. */
static int core_thread_comm(void *be, pid_t tid, char *buf, size_t n)
{
	struct core *c = be;
	int i = thread_index(c, tid);

	if (i < 0)
		return i;
	snprintf(buf, n, "%s", c->info.comm);
	return 0;
}

static int core_open_mapped(void *be, const char *path, int *fdp, char *local,
			    size_t n)
{
	struct core *c = be;
	char self[64];
	int err, fd;

	*fdp = -1;
	for (size_t i = 0; i < c->nfiles; i++) {
		if (strcmp(c->files[i].path, path) != 0)
			continue;
		if ((err = open_file(c, i)))
			return err;
		/* A file description of its own: its offset is the caller's. */
		snprintf(self, sizeof(self), "/proc/self/fd/%d", c->files[i].fd);
		fd = open(self, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
		if (fd < 0)
			return pyx_err_set(PYX_E_IO, "reopen %s: %s",
					   c->files[i].local, strerror(errno));
		if (local && n)
			snprintf(local, n, "%s", c->files[i].local);
		*fdp = fd;
		return 0;
	}
	return 1; /* not a file of the core's: the resolver's way */
}

static int core_creds(void *be, uid_t *uid, gid_t *gid)
{
	struct core *c = be;

	*uid = c->info.uid;
	*gid = c->info.gid;
	return 0;
}

static const char *core_debug_dir(void *be)
{
	return ((struct core *)be)->debug_dir;
}

static const struct pyx_core_info *core_info_cb(void *be)
{
	return &((struct core *)be)->info;
}

static const struct pyx_target_ops core_ops = {
	.name = "core",
	.kind = PYX_TARGET_CORE,
	.free = core_free,
	.pid = core_pid,
	.maps = core_maps,
	.path = core_path,
	/* No stop or resume: nothing runs, nothing is paused. */
	.threads = core_threads,
	.thread_tls = core_thread_tls,
	.thread_regs = core_thread_regs,
	.thread_comm = core_thread_comm,
	.open_mapped = core_open_mapped,
	.creds = core_creds,
	.debug_dir = core_debug_dir,
	.core_info = core_info_cb,
};

/* ---- opening ------------------------------------------------------------ */

static int parse(struct core *c)
{
	const Elf64_Ehdr *eh = (const Elf64_Ehdr *)c->base;
	struct load *l = NULL;
	struct file_range *fr = NULL;
	size_t nl = 0, nfr = 0;
	uint64_t phnum, phoff;
	int err = 0;

	if (c->size < sizeof(*eh) || memcmp(eh->e_ident, ELFMAG, SELFMAG))
		return corrupt(c, "not an ELF file");
	if (eh->e_ident[EI_CLASS] != ELFCLASS64 || eh->e_machine != EM_X86_64)
		return pyx_err_set(PYX_E_UNSUPPORTED_VERSION, "%s: a core of "
				   "%s (machine %u): pyxray reads x86_64 "
				   "targets only", c->path,
				   eh->e_ident[EI_CLASS] == ELFCLASS32 ?
				   "a 32-bit process" : "another machine",
				   (unsigned)eh->e_machine);
	if (eh->e_ident[EI_DATA] != ELFDATA2LSB)
		return corrupt(c, "big-endian ELF");
	if (eh->e_type != ET_CORE)
		return corrupt(c, "an ELF file of type %u, not a core (ET_CORE)",
			       (unsigned)eh->e_type);
	if (eh->e_phentsize != sizeof(Elf64_Phdr))
		return corrupt(c, "program header size %u",
			       (unsigned)eh->e_phentsize);
	phnum = eh->e_phnum;
	phoff = eh->e_phoff;
	if (phnum == PN_XNUM) {
		/* The count is in section header 0's sh_info. */
		Elf64_Shdr sh;

		if (!in_file(c, eh->e_shoff, sizeof(sh)))
			return corrupt(c, "PN_XNUM without a section header");
		memcpy(&sh, c->base + eh->e_shoff, sizeof(sh));
		phnum = sh.sh_info;
	}
	if (phnum == 0 || phnum > PYX_CORE_MAX_PHDRS)
		return corrupt(c, "%" PRIu64 " program headers", phnum);
	if (!in_file(c, phoff, phnum * sizeof(Elf64_Phdr)))
		return corrupt(c, "program headers past the end of the file "
			       "(%" PRIu64 " at byte %" PRIu64 ")", phnum, phoff);
	c->info.needed = phoff + phnum * sizeof(Elf64_Phdr);
	if (!(l = calloc((size_t)phnum, sizeof(*l))))
		return pyx_err_set(PYX_E_NOMEM, "out of memory");
	/* Needed size first: notes cut by truncation are told apart from
	 * corrupt ones. */
	for (uint64_t i = 0; i < phnum; i++) {
		Elf64_Phdr ph;

		memcpy(&ph, c->base + phoff + i * sizeof(ph), sizeof(ph));
		if ((ph.p_type == PT_LOAD || ph.p_type == PT_NOTE) &&
		    ph.p_offset <= UINT64_MAX - ph.p_filesz &&
		    ph.p_offset + ph.p_filesz > c->info.needed)
			c->info.needed = ph.p_offset + ph.p_filesz;
	}
	c->info.truncated = c->info.needed > c->size;
	for (uint64_t i = 0; i < phnum && !err; i++) {
		Elf64_Phdr ph;

		memcpy(&ph, c->base + phoff + i * sizeof(ph), sizeof(ph));
		if (ph.p_offset > UINT64_MAX - ph.p_filesz) {
			err = corrupt(c, "segment %" PRIu64 ": offset overflows", i);
			break;
		}
		if (ph.p_type == PT_NOTE) {
			uint64_t len = ph.p_offset >= c->size ? 0 :
				       ph.p_filesz < c->size - ph.p_offset ?
				       ph.p_filesz : c->size - ph.p_offset;

			err = parse_notes(c, ph.p_offset, len, &fr, &nfr);
		} else if (ph.p_type == PT_LOAD && ph.p_memsz) {
			if (ph.p_vaddr > UINT64_MAX - ph.p_memsz ||
			    ph.p_filesz > ph.p_memsz || ph.p_vaddr == 0)
				err = corrupt(c, "segment %" PRIu64 ": 0x%" PRIx64
					      " + 0x%" PRIx64 " (file 0x%" PRIx64
					      ")", i, ph.p_vaddr, ph.p_memsz,
					      ph.p_filesz);
			else
				l[nl++] = (struct load){ ph.p_vaddr, ph.p_memsz,
							 ph.p_offset, ph.p_filesz,
							 ph.p_flags };
		}
	}
	if (!err && !c->nthreads)
		err = corrupt(c, "no thread (NT_PRSTATUS note)%s",
			      c->info.truncated ? ": the core is truncated" : "");
	if (!err)
		err = build_maps(c, l, nl, fr, nfr);
	for (size_t i = 0; !err && i < c->nfiles; i++)
		if (c->files[i].is_exe)
			snprintf(c->info.executable, sizeof(c->info.executable),
				 "%s", c->files[i].path);
	free(l);
	free(fr);
	return err;
}

/* systemd-coredump's name: core.COMM.UID.BOOTID.PID.USEC[.zst|.lz4|.xz]. */
static int64_t time_from_name(const char *path)
{
	const char *base = strrchr(path, '/');
	char buf[256], *dot;

	base = base ? base + 1 : path;
	if (strncmp(base, "core.", 5) != 0 ||
	    snprintf(buf, sizeof(buf), "%s", base) >= (int)sizeof(buf))
		return -1;
	for (int i = 0; i < 2 && (dot = strrchr(buf, '.')); i++) {
		char *end;
		unsigned long long v;

		errno = 0;
		v = strtoull(dot + 1, &end, 10);
		if (!errno && end != dot + 1 && !*end && v > 1000000000000000ull)
			return (int64_t)(v / 1000000);
		*dot = '\0'; /* the compression suffix */
	}
	return -1;
}

static int dup_opt(const char *s, char **out)
{
	*out = NULL;
	if (!s || !s[0])
		return 0;
	if (!(*out = strdup(s)))
		return pyx_err_set(PYX_E_NOMEM, "out of memory");
	return 0;
}

static int open_fd(int fd, const char *path, const struct pyx_core_opts *o,
		   struct pyx_target **out)
{
	struct pyx_mem_source src = { 0 };
	struct pyx_mem *mem;
	struct core *c;
	struct stat st;
	int dfd, err;

	c = calloc(1, sizeof(*c));
	if (!c) {
		close(fd);
		return pyx_err_set(PYX_E_NOMEM, "out of memory");
	}
	c->fd = fd;
	c->rootfd = -1;
	c->info.writer = "kernel";
	if (!(c->path = strdup(path)) || dup_opt(o ? o->exe : NULL, &c->exe) ||
	    dup_opt(o ? o->sysroot : NULL, &c->sysroot) ||
	    dup_opt(o ? o->debug_dir : NULL, &c->debug_dir)) {
		err = pyx_err_set(PYX_E_NOMEM, "out of memory");
		goto fail;
	}
	c->info.path = c->path;
	if (fstat(fd, &st) || !S_ISREG(st.st_mode)) {
		err = pyx_err_set(PYX_E_IO, "%s: not a regular file", path);
		goto fail;
	}
	c->info.time = time_from_name(path);
	if (c->info.time < 0)
		c->info.time = st.st_mtime;
	if ((err = decompress(fd, path, &dfd, &c->info.compression)))
		goto fail;
	if (dfd >= 0) {
		close(c->fd);
		c->fd = dfd;
		if (fstat(dfd, &st)) {
			err = pyx_err_set(PYX_E_IO, "%s: %s", path, strerror(errno));
			goto fail;
		}
	}
	if (st.st_size <= 0 || (uint64_t)st.st_size > SIZE_MAX) {
		err = pyx_err_set(PYX_E_FORMAT, "%s: not a core: empty", path);
		goto fail;
	}
	c->size = (size_t)st.st_size;
	c->info.size = c->size;
	c->base = mmap(NULL, c->size, PROT_READ, MAP_PRIVATE, c->fd, 0);
	if (c->base == MAP_FAILED) {
		c->base = NULL;
		err = pyx_err_set(PYX_E_IO, "map %s: %s", path, strerror(errno));
		goto fail;
	}
	/* The walks read it out of order, and all of it. */
	madvise(c->base, c->size, MADV_WILLNEED);
	c->rootfd = open(c->sysroot ? c->sysroot : "/",
			 O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (c->rootfd < 0) {
		err = pyx_err_set(PYX_E_IO, "--sysroot %s: %s", c->sysroot,
				  strerror(errno));
		goto fail;
	}
	if ((err = parse(c)))
		goto fail;
	c->info.nthreads = c->nthreads;
	if (c->info.truncated)
		pyx_debug("%s: truncated: %zu bytes of %" PRIu64, path, c->size,
			  c->info.needed);
	src.ctx = c;
	src.maps = core_maps;
	src.read = core_read;
	src.ptr = core_ptr;
	src.pid = c->info.pid;
	if ((err = pyx_mem_new(&src, &mem)))
		goto fail;
	return pyx_target_new(&core_ops, c, mem, out);
fail:
	core_free(c);
	return err;
}

int pyx_target_open_core(const char *path, const struct pyx_core_opts *o,
			 struct pyx_target **out)
{
	int fd;

	*out = NULL;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0)
		return pyx_err_set(errno == EACCES || errno == EPERM ?
				   PYX_E_PERMISSION : PYX_E_IO, "open %s: %s",
				   path, strerror(errno));
	return open_fd(fd, path, o, out);
}

int pyx_core_open_buffer(const void *data, size_t len, struct pyx_target **out)
{
	size_t done = 0;
	int fd;

	*out = NULL;
	fd = memfd_create("pyxray-core-buffer", MFD_CLOEXEC);
	if (fd < 0)
		return pyx_err_set(PYX_E_IO, "memfd_create: %s", strerror(errno));
	while (done < len) {
		ssize_t w = write(fd, (const uint8_t *)data + done, len - done);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			close(fd);
			return pyx_err_set(PYX_E_IO, "write memfd: %s",
					   strerror(errno));
		}
		done += (size_t)w;
	}
	return open_fd(fd, "(buffer)", NULL, out);
}
