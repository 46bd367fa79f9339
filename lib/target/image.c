/* The synthetic-image backend: a target made of a file's bytes.  The format
 * is in docs/fuzzing.md; the parser is fuzzed with the walkers, so every
 * count and length is checked against what is left of the buffer first.
 */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "image.h"
#include "internal.h"
#include "pyxray/symbols.h"
#include "target_private.h"

struct image {
	uint8_t *bytes;            /* the file; ranges point into it */
	size_t len;
	pid_t pid;
	struct pyx_map *maps;      /* one per range, sorted */
	const uint8_t **data;      /* data[i]: the bytes of maps[i] */
	size_t nmaps;
	pid_t *tids;
	pyx_addr_t *tls;
	size_t nthreads;
};

/* Every map's path: anonymous, so the heap copy takes the writable ones. */
static char empty_path[] = "";

/* ---- the parser --------------------------------------------------------- */

struct cursor {
	const uint8_t *p;
	size_t left;
	size_t off; /* from the start, for the error detail */
};

static int bad(const struct cursor *c, const char *what)
{
	return pyx_err_set(PYX_E_FORMAT, "image: %s at byte %zu", what, c->off);
}

static int take(struct cursor *c, void *out, size_t n, const char *what)
{
	if (c->left < n)
		return bad(c, what);
	if (out)
		memcpy(out, c->p, n);
	c->p += n;
	c->left -= n;
	c->off += n;
	return 0;
}

#define TAKE(c, v, what) take((c), &(v), sizeof(v), (what))

/* A name: one length byte, then that many bytes, no NUL inside. */
static int take_name(struct cursor *c, char *out, const char *what)
{
	uint8_t n = 0;
	int err;

	if ((err = TAKE(c, n, what)))
		return err;
	if (n == 0 || n > PYX_IMAGE_MAX_NAME)
		return bad(c, "name length out of range");
	if (c->left < n)
		return bad(c, what);
	if (memchr(c->p, '\0', n))
		return bad(c, "NUL in a name");
	memcpy(out, c->p, n);
	out[n] = '\0';
	return take(c, NULL, n, what);
}

/* A layout value as the format allows it: offsets and sizes are small in
 * any build; symbols' addresses in their file (SYM_*) need not be. */
static bool entry_value_ok(const char *name, int32_t v)
{
	return v == PYX_IMAGE_NONE ||
	       (v >= 0 && (v <= PYX_IMAGE_MAX_OFFSET ||
			   strncmp(name, "SYM_", 4) == 0));
}

static int cmp_entry_name(const void *a, const void *b)
{
	return strcmp(((const struct pyx_image_entry *)a)->name,
		      ((const struct pyx_image_entry *)b)->name);
}

static int parse_info(struct cursor *c, struct pyx_image_info *in)
{
	char magic[8];
	uint32_t version = 0, n = 0;
	int32_t pid = 0, major = 0, minor = 0, micro = 0;
	int err;

	memset(in, 0, sizeof(*in));
	if ((err = TAKE(c, magic, "no magic")))
		return err;
	if (memcmp(magic, PYX_IMAGE_MAGIC, sizeof(magic)))
		return bad(c, "not a pyxray image (bad magic)");
	if ((err = TAKE(c, version, "no version")))
		return err;
	if (version != PYX_IMAGE_VERSION)
		return bad(c, "unknown format version");
	if ((err = TAKE(c, pid, "no pid")) ||
	    (err = TAKE(c, major, "no version")) ||
	    (err = TAKE(c, minor, "no version")) ||
	    (err = TAKE(c, micro, "no version")) ||
	    (err = TAKE(c, in->runtime, "no runtime address")))
		return err;
	if (pid < 0 || major < 0 || major > 99 || minor < 0 || minor > 99 ||
	    micro < 0 || micro > 999)
		return bad(c, "pid or version out of range");
	in->pid = pid;
	in->major = major;
	in->minor = minor;
	in->micro = micro;

	if ((err = TAKE(c, n, "no symbol count")))
		return err;
	if (n > PYX_IMAGE_MAX_SYMS)
		return bad(c, "too many symbols");
	for (uint32_t i = 0; i < n; i++) {
		struct pyx_image_sym *s = &in->syms[i];

		if ((err = take_name(c, s->name, "symbol cut short")) ||
		    (err = TAKE(c, s->addr, "symbol cut short")))
			return err;
		for (uint32_t j = 0; j < i; j++)
			if (!strcmp(in->syms[j].name, s->name))
				return bad(c, "symbol named twice");
	}
	in->nsyms = n;

	if ((err = TAKE(c, n, "no layout count")))
		return err;
	if (n > PYX_IMAGE_MAX_LAYOUT)
		return bad(c, "too many layout entries");
	for (uint32_t i = 0; i < n; i++) {
		struct pyx_image_entry *e = &in->layout[i];

		if ((err = take_name(c, e->name, "layout cut short")) ||
		    (err = TAKE(c, e->value, "layout cut short")))
			return err;
		if (!entry_value_ok(e->name, e->value))
			return bad(c, "layout value out of range");
	}
	in->nlayout = n;
	/* Sorted by name: a name twice is refused, and lookups halve. */
	qsort(in->layout, in->nlayout, sizeof(in->layout[0]), cmp_entry_name);
	for (size_t i = 1; i < in->nlayout; i++)
		if (!strcmp(in->layout[i - 1].name, in->layout[i].name))
			return bad(c, "layout entry named twice");
	return 0;
}

static int parse_threads(struct cursor *c, struct image *im)
{
	uint32_t n = 0;
	int err;

	if ((err = TAKE(c, n, "no thread count")))
		return err;
	if (n > PYX_IMAGE_MAX_THREADS)
		return bad(c, "too many threads");
	/* 12 bytes each: checked before the allocation. */
	if ((size_t)n * 12 > c->left)
		return bad(c, "threads cut short");
	if (!n)
		return 0;
	im->tids = calloc(n, sizeof(*im->tids));
	im->tls = calloc(n, sizeof(*im->tls));
	if (!im->tids || !im->tls)
		return pyx_err_set(PYX_E_NOMEM, "out of memory");
	for (uint32_t i = 0; i < n; i++) {
		int32_t tid = 0;

		if ((err = TAKE(c, tid, "thread cut short")) ||
		    (err = TAKE(c, im->tls[i], "thread cut short")))
			return err;
		if (tid <= 0)
			return bad(c, "thread id out of range");
		im->tids[i] = tid;
	}
	im->nthreads = n;
	return 0;
}

/* 20 bytes of header per range, then its bytes. */
#define RANGE_HEADER 20u

static int parse_ranges(struct cursor *c, struct image *im)
{
	uint32_t n = 0;
	pyx_addr_t prev_end = 0;
	int err;

	if ((err = TAKE(c, n, "no range count")))
		return err;
	if (n > PYX_IMAGE_MAX_RANGES)
		return bad(c, "too many ranges");
	if ((size_t)n * RANGE_HEADER > c->left)
		return bad(c, "ranges cut short");
	if (!n)
		return 0;
	im->maps = calloc(n, sizeof(*im->maps));
	im->data = calloc(n, sizeof(*im->data));
	if (!im->maps || !im->data)
		return pyx_err_set(PYX_E_NOMEM, "out of memory");
	for (uint32_t i = 0; i < n; i++) {
		struct pyx_map *m = &im->maps[i];
		uint64_t addr = 0, len = 0;
		uint32_t flags = 0;

		if ((err = TAKE(c, addr, "range cut short")) ||
		    (err = TAKE(c, len, "range cut short")) ||
		    (err = TAKE(c, flags, "range cut short")))
			return err;
		if (len == 0 || len > c->left)
			return bad(c, "range length out of bounds");
		if (addr == 0 || addr + len < addr)
			return bad(c, "range address out of bounds");
		if (i && addr < prev_end)
			return bad(c, "ranges not sorted and disjoint");
		if (flags & ~(PYX_IMAGE_R | PYX_IMAGE_W | PYX_IMAGE_X))
			return bad(c, "unknown range flags");
		m->start = addr;
		m->end = addr + len;
		m->r = flags & PYX_IMAGE_R;
		m->w = flags & PYX_IMAGE_W;
		m->x = flags & PYX_IMAGE_X;
		m->p = true;
		m->path = empty_path;
		im->data[i] = c->p;
		take(c, NULL, (size_t)len, "");
		prev_end = addr + len;
		im->nmaps++;
	}
	return 0;
}

/* ---- the backend -------------------------------------------------------- */

static void image_free(void *be)
{
	struct image *im = be;

	if (!im)
		return;
	free(im->bytes);
	free(im->maps);
	free(im->data);
	free(im->tids);
	free(im->tls);
	free(im);
}

static pid_t image_pid(void *be)
{
	return ((struct image *)be)->pid;
}

static const struct pyx_map *image_maps(void *be, size_t *n)
{
	struct image *im = be;

	*n = im->nmaps;
	return im->maps;
}

static const pid_t *image_threads(void *be, size_t *n)
{
	struct image *im = be;

	*n = im->nthreads;
	return im->tids;
}

static int image_thread_tls(void *be, pid_t tid, pyx_addr_t *out)
{
	struct image *im = be;

	for (size_t i = 0; i < im->nthreads; i++) {
		if (im->tids[i] == tid) {
			*out = im->tls[i];
			return 0;
		}
	}
	return pyx_err_set(PYX_E_NO_PROCESS, "image: no thread %d", (int)tid);
}

static int image_read(void *ctx, pyx_addr_t addr, void *buf, size_t len)
{
	struct image *im = ctx;
	const struct pyx_map *m = pyx_maps_find(im->maps, im->nmaps, addr);

	/* The page cache asks for whole pages first and often misses here
	 * (ranges need not be page-aligned): keep the miss cheap. */
	if (!m || !m->r || len > m->end - addr)
		return pyx_err_set(PYX_E_BAD_MEMORY, "image: " PYX_PRIaddr
				   " (%zu bytes) not in the image", addr, len);
	memcpy(buf, im->data[m - im->maps] + (addr - m->start), len);
	return 0;
}

static const struct pyx_target_ops image_ops = {
	.name = "image",
	.kind = PYX_TARGET_IMAGE,
	.free = image_free,
	.pid = image_pid,
	.maps = image_maps,
	.threads = image_threads,
	.thread_tls = image_thread_tls,
	/* No stop, resume, registers, names, files: an image holds none. */
};

int pyx_image_open_buffer(const void *data, size_t len,
			  struct pyx_target **tgt, struct pyx_image_info *info)
{
	struct pyx_image_info local;
	struct pyx_mem_source src = { 0 };
	struct pyx_mem *mem;
	struct image *im;
	struct cursor c;
	int err;

	*tgt = NULL;
	if (!info)
		info = &local;
	if (!data && len)
		return pyx_err_set(PYX_E_USAGE, "pyx_image_open_buffer: NULL");
	if (len > PYX_IMAGE_MAX_BYTES)
		return pyx_err_set(PYX_E_FORMAT, "image: %zu bytes, more than "
				   "%u", len, PYX_IMAGE_MAX_BYTES);
	im = calloc(1, sizeof(*im));
	if (!im)
		return pyx_err_set(PYX_E_NOMEM, "out of memory");
	/* Our own copy: the ranges point into it for the target's life. */
	im->bytes = malloc(len ? len : 1);
	if (!im->bytes) {
		err = pyx_err_set(PYX_E_NOMEM, "out of memory");
		goto fail;
	}
	if (len)
		memcpy(im->bytes, data, len);
	im->len = len;
	c = (struct cursor){ im->bytes, len, 0 };
	if ((err = parse_info(&c, info)) || (err = parse_threads(&c, im)) ||
	    (err = parse_ranges(&c, im)))
		goto fail;
	if (c.left) {
		err = bad(&c, "bytes after the last range");
		goto fail;
	}
	im->pid = info->pid;
	src.ctx = im;
	src.maps = image_maps;
	src.read = image_read;
	src.pid = info->pid;
	if ((err = pyx_mem_new(&src, &mem)))
		goto fail;
	return pyx_target_new(&image_ops, im, mem, tgt);
fail:
	image_free(im);
	return err;
}

int pyx_image_open_file(const char *path, struct pyx_target **tgt,
			struct pyx_image_info *info)
{
	struct stat st;
	uint8_t *buf = NULL;
	size_t got = 0;
	int fd, err;

	*tgt = NULL;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return pyx_err_set(PYX_E_IO, "open %s: %s", path,
				   strerror(errno));
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		err = pyx_err_set(PYX_E_IO, "%s: not a regular file", path);
		goto out;
	}
	if ((uint64_t)st.st_size > PYX_IMAGE_MAX_BYTES) {
		err = pyx_err_set(PYX_E_FORMAT, "%s: %lld bytes, more than %u",
				  path, (long long)st.st_size,
				  PYX_IMAGE_MAX_BYTES);
		goto out;
	}
	buf = malloc(st.st_size ? (size_t)st.st_size : 1);
	if (!buf) {
		err = pyx_err_set(PYX_E_NOMEM, "out of memory");
		goto out;
	}
	while (got < (size_t)st.st_size) {
		ssize_t r = read(fd, buf + got, (size_t)st.st_size - got);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			err = pyx_err_set(PYX_E_IO, "read %s: %s", path,
					  r ? strerror(errno) : "file shrank");
			goto out;
		}
		got += (size_t)r;
	}
	err = pyx_image_open_buffer(buf, got, tgt, info);
out:
	free(buf);
	close(fd);
	return err;
}

/* ---- the writer --------------------------------------------------------- */

struct out {
	uint8_t *p;
	size_t len, cap;
	bool oom;
};

static void put(struct out *o, const void *v, size_t n)
{
	if (o->oom)
		return;
	if (o->cap - o->len < n) {
		size_t ncap = o->cap ? o->cap : 4096;
		uint8_t *p;

		while (ncap - o->len < n)
			ncap *= 2;
		p = realloc(o->p, ncap);
		if (!p) {
			o->oom = true;
			return;
		}
		o->p = p;
		o->cap = ncap;
	}
	memcpy(o->p + o->len, v, n);
	o->len += n;
}

#define PUT(o, v) put((o), &(v), sizeof(v))

static void put_name(struct out *o, const char *name)
{
	uint8_t n = (uint8_t)strlen(name);

	PUT(o, n);
	put(o, name, n);
}

int pyx_image_encode(const struct pyx_image_info *in,
		     const struct pyx_image_thread *threads, size_t nthreads,
		     const struct pyx_image_range *ranges, size_t nranges,
		     uint8_t **outp, size_t *lenp)
{
	struct out o = { 0 };
	uint32_t version = PYX_IMAGE_VERSION, n = 0;
	int32_t i32;

	*outp = NULL;
	*lenp = 0;
	if (in->nsyms > PYX_IMAGE_MAX_SYMS || nthreads > PYX_IMAGE_MAX_THREADS ||
	    nranges > PYX_IMAGE_MAX_RANGES)
		return pyx_err_set(PYX_E_USAGE, "image: too many symbols, "
				   "threads or ranges");
	if (in->nlayout > PYX_IMAGE_MAX_LAYOUT)
		return pyx_err_set(PYX_E_USAGE, "image: too many layout entries");
	for (size_t i = 0; i < in->nlayout; i++) {
		size_t l = strnlen(in->layout[i].name, PYX_IMAGE_MAX_NAME + 1);

		if (l == 0 || l > PYX_IMAGE_MAX_NAME ||
		    !entry_value_ok(in->layout[i].name, in->layout[i].value))
			return pyx_err_set(PYX_E_USAGE, "image: bad layout "
					   "entry %zu", i);
		for (size_t j = 0; j < i; j++)
			if (!strcmp(in->layout[j].name, in->layout[i].name))
				return pyx_err_set(PYX_E_USAGE, "image: layout "
						   "entry %zu named twice", i);
	}
	for (size_t i = 0; i < in->nsyms; i++) {
		size_t l = strlen(in->syms[i].name);

		if (l == 0 || l > PYX_IMAGE_MAX_NAME)
			return pyx_err_set(PYX_E_USAGE, "image: bad symbol name");
	}
	for (size_t i = 0; i < nranges; i++) {
		const struct pyx_image_range *r = &ranges[i];

		if (!r->len || !r->addr || r->addr + r->len < r->addr ||
		    (i && r->addr < ranges[i - 1].addr + ranges[i - 1].len) ||
		    (r->flags & ~(PYX_IMAGE_R | PYX_IMAGE_W | PYX_IMAGE_X)))
			return pyx_err_set(PYX_E_USAGE, "image: range %zu "
					   "empty, unsorted or overlapping", i);
	}
	put(&o, PYX_IMAGE_MAGIC, 8);
	PUT(&o, version);
	i32 = in->pid;
	PUT(&o, i32);
	i32 = in->major;
	PUT(&o, i32);
	i32 = in->minor;
	PUT(&o, i32);
	i32 = in->micro;
	PUT(&o, i32);
	PUT(&o, in->runtime);
	n = (uint32_t)in->nsyms;
	PUT(&o, n);
	for (size_t i = 0; i < in->nsyms; i++) {
		put_name(&o, in->syms[i].name);
		PUT(&o, in->syms[i].addr);
	}
	/* Only the entries the build has: smaller images, and an entry
	 * absent from the file reads as absent. */
	n = 0;
	for (size_t i = 0; i < in->nlayout; i++)
		n += in->layout[i].value != PYX_IMAGE_NONE;
	PUT(&o, n);
	for (size_t i = 0; i < in->nlayout; i++) {
		if (in->layout[i].value == PYX_IMAGE_NONE)
			continue;
		put_name(&o, in->layout[i].name);
		PUT(&o, in->layout[i].value);
	}
	n = (uint32_t)nthreads;
	PUT(&o, n);
	for (size_t i = 0; i < nthreads; i++) {
		i32 = threads[i].tid;
		PUT(&o, i32);
		PUT(&o, threads[i].tls);
	}
	n = (uint32_t)nranges;
	PUT(&o, n);
	for (size_t i = 0; i < nranges; i++) {
		uint32_t flags = ranges[i].flags;

		PUT(&o, ranges[i].addr);
		PUT(&o, ranges[i].len);
		PUT(&o, flags);
		put(&o, ranges[i].data, (size_t)ranges[i].len);
	}
	if (o.oom) {
		free(o.p);
		return pyx_err_set(PYX_E_NOMEM, "out of memory");
	}
	*outp = o.p;
	*lenp = o.len;
	return 0;
}

int pyx_image_save(const char *path, const struct pyx_image_info *info,
		   const struct pyx_image_thread *threads, size_t nthreads,
		   const struct pyx_image_range *ranges, size_t nranges)
{
	char tmp[4096];
	uint8_t *buf;
	size_t len, done = 0;
	int fd, err;

	if ((err = pyx_image_encode(info, threads, nthreads, ranges, nranges,
				    &buf, &len)))
		return err;
	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp.%d", path,
			     (int)getpid()) >= sizeof(tmp)) {
		free(buf);
		return pyx_err_set(PYX_E_USAGE, "image: path too long");
	}
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		err = pyx_err_set(PYX_E_IO, "create %s: %s", tmp,
				  strerror(errno));
		free(buf);
		return err;
	}
	while (done < len) {
		ssize_t w = write(fd, buf + done, len - done);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			err = pyx_err_set(PYX_E_IO, "write %s: %s", tmp,
					  strerror(errno));
			goto fail;
		}
		done += (size_t)w;
	}
	if (fsync(fd) < 0 || close(fd) < 0) {
		fd = -1;
		err = pyx_err_set(PYX_E_IO, "write %s: %s", tmp, strerror(errno));
		goto fail;
	}
	fd = -1;
	if (rename(tmp, path) < 0) {
		err = pyx_err_set(PYX_E_IO, "rename %s: %s", tmp,
				  strerror(errno));
		goto fail;
	}
	free(buf);
	return 0;
fail:
	if (fd >= 0)
		close(fd);
	unlink(tmp);
	free(buf);
	return err;
}

int pyx_image_add_sym(struct pyx_image_info *in, const char *name,
		      pyx_addr_t addr)
{
	size_t l = strlen(name);

	if (l == 0 || l > PYX_IMAGE_MAX_NAME)
		return pyx_err_set(PYX_E_USAGE, "image: bad symbol name");
	for (size_t i = 0; i < in->nsyms; i++) {
		if (!strcmp(in->syms[i].name, name)) {
			in->syms[i].addr = addr;
			return 0;
		}
	}
	if (in->nsyms >= PYX_IMAGE_MAX_SYMS)
		return pyx_err_set(PYX_E_USAGE, "image: too many symbols");
	memcpy(in->syms[in->nsyms].name, name, l + 1);
	in->syms[in->nsyms++].addr = addr;
	return 0;
}

pyx_addr_t pyx_image_sym(const struct pyx_image_info *in, const char *name)
{
	for (size_t i = 0; i < in->nsyms; i++)
		if (!strcmp(in->syms[i].name, name))
			return in->syms[i].addr;
	return 0;
}

int pyx_image_set_entry(struct pyx_image_info *in, const char *name,
			int32_t value)
{
	size_t l = strlen(name);

	if (l == 0 || l > PYX_IMAGE_MAX_NAME || !entry_value_ok(name, value))
		return pyx_err_set(PYX_E_USAGE, "image: bad layout entry %.64s",
				   name);
	for (size_t i = 0; i < in->nlayout; i++) {
		if (!strcmp(in->layout[i].name, name)) {
			in->layout[i].value = value;
			return 0;
		}
	}
	if (in->nlayout >= PYX_IMAGE_MAX_LAYOUT)
		return pyx_err_set(PYX_E_USAGE, "image: too many layout entries");
	memcpy(in->layout[in->nlayout].name, name, l + 1);
	in->layout[in->nlayout++].value = value;
	return 0;
}

int32_t pyx_image_entry(const struct pyx_image_info *in, const char *name)
{
	for (size_t i = 0; i < in->nlayout; i++)
		if (!strcmp(in->layout[i].name, name))
			return in->layout[i].value;
	return PYX_IMAGE_NONE;
}

int pyx_image_empty_elf(struct pyx_elf **out)
{
	/* The ELF header, the section names, then two section headers: the
	 * null one and .shstrtab. */
	static const char names[16] = "\0.shstrtab";
	struct {
		Elf64_Ehdr eh;
		char names[16];
		Elf64_Shdr sh[2];
	} f;
	size_t done = 0;
	int fd;

	*out = NULL;
	memset(&f, 0, sizeof(f));
	memcpy(f.eh.e_ident, ELFMAG, SELFMAG);
	f.eh.e_ident[EI_CLASS] = ELFCLASS64;
	f.eh.e_ident[EI_DATA] = ELFDATA2LSB;
	f.eh.e_ident[EI_VERSION] = EV_CURRENT;
	f.eh.e_type = ET_DYN;
	f.eh.e_machine = EM_X86_64;
	f.eh.e_version = EV_CURRENT;
	f.eh.e_shoff = offsetof(__typeof__(f), sh);
	f.eh.e_ehsize = sizeof(f.eh);
	f.eh.e_phentsize = sizeof(Elf64_Phdr);
	f.eh.e_shentsize = sizeof(Elf64_Shdr);
	f.eh.e_shnum = 2;
	f.eh.e_shstrndx = 1;
	memcpy(f.names, names, sizeof(names));
	f.sh[1].sh_name = 1;
	f.sh[1].sh_type = SHT_STRTAB;
	f.sh[1].sh_offset = offsetof(__typeof__(f), names);
	f.sh[1].sh_size = 11;
	f.sh[1].sh_addralign = 1;
	fd = memfd_create("pyxray-image-elf", MFD_CLOEXEC);
	if (fd < 0)
		return pyx_err_set(PYX_E_IO, "memfd_create: %s", strerror(errno));
	while (done < sizeof(f)) {
		ssize_t w = write(fd, (const char *)&f + done, sizeof(f) - done);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			close(fd);
			return pyx_err_set(PYX_E_IO, "write memfd: %s",
					   strerror(errno));
		}
		done += (size_t)w;
	}
	return pyx_elf_open_fd(fd, "(image)", 0, out); /* takes fd */
}
