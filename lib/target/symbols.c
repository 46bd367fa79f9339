/* ELF symbol lookup with libelf.  Files come from the resolver (files.c). */
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"
#include "pyxray/target.h"
#include "pyxray/symbols.h"

struct pyx_elf {
	char *path;
	int fd;
	Elf *elf;
	pyx_addr_t bias;
	Elf_Scn *symtabs[2]; /* .dynsym, .symtab (either may be NULL) */
	bool has_dwarf;
	char build_id[64];
	char debuglink[256];
	size_t shstrndx;
	const char *last_table;
};

static void read_build_id(struct pyx_elf *e, Elf_Scn *scn, GElf_Shdr *sh)
{
	Elf_Data *data = elf_getdata(scn, NULL);
	size_t off = 0, name_off, desc_off;
	GElf_Nhdr nh;

	if (!data || sh->sh_type != SHT_NOTE)
		return;
	while ((off = gelf_getnote(data, off, &nh, &name_off, &desc_off)) > 0) {
		const unsigned char *d = (const unsigned char *)data->d_buf;

		if (nh.n_type != NT_GNU_BUILD_ID || nh.n_namesz != 4 ||
		    memcmp(d + name_off, "GNU", 4) != 0)
			continue;
		for (size_t i = 0; i < nh.n_descsz && 2 * i + 2 < sizeof(e->build_id); i++)
			snprintf(e->build_id + 2 * i, 3, "%02x", d[desc_off + i]);
		return;
	}
}

/* pyxray reads x86_64 processes only: another class or machine would pass
 * for a Python whose layout is wrong, so it is refused here, by name. */
static int check_machine(Elf *elf, const char *name)
{
	GElf_Ehdr eh;

	if (gelf_getclass(elf) != ELFCLASS64)
		return pyx_err_set(PYX_E_UNSUPPORTED_VERSION,
				   "%s: %s ELF: pyxray reads x86_64 targets only",
				   name, gelf_getclass(elf) == ELFCLASS32 ?
				   "32-bit" : "unknown-class");
	if (!gelf_getehdr(elf, &eh))
		return pyx_err_set(PYX_E_FORMAT, "%s: no ELF header", name);
	if (eh.e_machine != EM_X86_64)
		return pyx_err_set(PYX_E_UNSUPPORTED_VERSION,
				   "%s: ELF machine %u, not x86_64: pyxray reads "
				   "x86_64 targets only", name,
				   (unsigned)eh.e_machine);
	return 0;
}

int pyx_elf_open(const char *local_path, pyx_addr_t bias, struct pyx_elf **out)
{
	int fd;

	*out = NULL;
	fd = open(local_path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0)
		return pyx_err_set(errno == EACCES || errno == EPERM ?
				   PYX_E_PERMISSION : PYX_E_IO, "open %s: %s",
				   local_path, strerror(errno));
	return pyx_elf_open_fd(fd, local_path, bias, out);
}

int pyx_elf_open_fd(int fd, const char *name, pyx_addr_t bias,
		    struct pyx_elf **out)
{
	struct pyx_elf *e;
	Elf_Scn *scn = NULL;
	size_t shstrndx;
	int err = 0;

	*out = NULL;
	elf_version(EV_CURRENT);
	e = calloc(1, sizeof(*e));
	if (!e) {
		close(fd);
		return pyx_err_set(PYX_E_NOMEM, "out of memory");
	}
	e->fd = fd;
	e->bias = bias;
	e->path = strdup(name);
	if (!e->path) {
		err = pyx_err_set(PYX_E_NOMEM, "out of memory");
		goto out;
	}
	e->elf = elf_begin(e->fd, ELF_C_READ_MMAP, NULL);
	if (!e->elf || elf_kind(e->elf) != ELF_K_ELF) {
		err = pyx_err_set(PYX_E_FORMAT, "%s is not an ELF file", name);
		goto out;
	}
	if ((err = check_machine(e->elf, name)))
		goto out;
	if (elf_getshdrstrndx(e->elf, &shstrndx) != 0) {
		err = pyx_err_set(PYX_E_FORMAT, "%s: no section header string "
				  "table", name);
		goto out;
	}
	e->shstrndx = shstrndx;
	while ((scn = elf_nextscn(e->elf, scn))) {
		GElf_Shdr sh;
		const char *sname;

		if (!gelf_getshdr(scn, &sh))
			continue;
		sname = elf_strptr(e->elf, shstrndx, sh.sh_name);
		if (sh.sh_type == SHT_DYNSYM)
			e->symtabs[0] = scn;
		else if (sh.sh_type == SHT_SYMTAB)
			e->symtabs[1] = scn;
		else if (sname && strcmp(sname, ".debug_info") == 0 &&
			 sh.sh_type != SHT_NOBITS)
			e->has_dwarf = true;
		else if (sname && strcmp(sname, ".note.gnu.build-id") == 0)
			read_build_id(e, scn, &sh);
		else if (sname && strcmp(sname, ".gnu_debuglink") == 0) {
			Elf_Data *d = elf_getdata(scn, NULL);

			if (d && d->d_size > 0)
				snprintf(e->debuglink, sizeof(e->debuglink), "%.*s",
					 (int)strnlen(d->d_buf, d->d_size),
					 (const char *)d->d_buf);
		}
	}
out:
	if (err) {
		pyx_elf_free(e);
		return err;
	}
	*out = e;
	return 0;
}

void pyx_elf_free(struct pyx_elf *e)
{
	if (!e)
		return;
	if (e->elf)
		elf_end(e->elf);
	if (e->fd >= 0)
		close(e->fd);
	free(e->path);
	free(e);
}

int pyx_elf_bias(struct pyx_elf *e, const struct pyx_target *tgt,
		 const char *target_path, pyx_addr_t *bias)
{
	const struct pyx_map *maps, *lowest = NULL;
	size_t n, phnum;

	maps = pyx_target_maps(tgt, &n);
	for (size_t i = 0; i < n; i++)
		if (strcmp(maps[i].path, target_path) == 0 &&
		    (!lowest || maps[i].offset < lowest->offset))
			lowest = &maps[i];
	if (!lowest)
		return pyx_err_set(PYX_E_NOT_PYTHON, "%s is not mapped",
				   target_path);
	if (elf_getphdrnum(e->elf, &phnum) != 0)
		return pyx_err_set(PYX_E_FORMAT, "%s: no program headers",
				   e->path);
	/* The lowest mapping holds the PT_LOAD segment with that file offset;
	 * bias = where it is mapped - where the file says it goes. */
	for (size_t i = 0; i < phnum; i++) {
		GElf_Phdr ph;

		if (!gelf_getphdr(e->elf, (int)i, &ph) || ph.p_type != PT_LOAD)
			continue;
		if ((ph.p_offset & ~(uint64_t)0xfff) != lowest->offset)
			continue;
		*bias = lowest->start - (ph.p_vaddr & ~(uint64_t)0xfff);
		e->bias = *bias;
		return 0;
	}
	return pyx_err_set(PYX_E_FORMAT, "%s: no PT_LOAD at file offset 0x%" PRIx64,
			   e->path, lowest->offset);
}

void pyx_elf_set_bias(struct pyx_elf *e, pyx_addr_t bias) { e->bias = bias; }

int pyx_elf_lookup(const struct pyx_elf *e, const char *name, pyx_addr_t *addr,
		   uint64_t *size)
{
	/* A python made from facts (an image, a core's saved facts) may have
	 * no ELF file at all: nothing is defined there. */
	if (!e)
		return -PYX_E_NOT_SUPPORTED;
	for (size_t t = 0; t < 2; t++) {
		Elf_Scn *scn = e->symtabs[t];
		Elf_Data *data;
		GElf_Shdr sh;
		size_t count;

		if (!scn || !gelf_getshdr(scn, &sh) || sh.sh_entsize == 0)
			continue;
		data = elf_getdata(scn, NULL);
		if (!data)
			continue;
		count = sh.sh_size / sh.sh_entsize;
		for (size_t i = 0; i < count; i++) {
			GElf_Sym sym;
			const char *s;

			if (!gelf_getsym(data, (int)i, &sym) ||
			    sym.st_shndx == SHN_UNDEF || sym.st_value == 0)
				continue;
			s = elf_strptr(e->elf, sh.sh_link, sym.st_name);
			if (!s || strcmp(s, name) != 0)
				continue;
			*addr = e->bias + sym.st_value;
			if (size)
				*size = sym.st_size;
			((struct pyx_elf *)e)->last_table = t ? ".symtab" : ".dynsym";
			return 0;
		}
	}
	return -PYX_E_NOT_SUPPORTED;
}

int pyx_elf_section(const struct pyx_elf *e, const char *name,
		    pyx_addr_t *addr, uint64_t *size)
{
	Elf_Scn *scn = NULL;

	if (!e)
		return -PYX_E_NOT_SUPPORTED;
	while ((scn = elf_nextscn(e->elf, scn))) {
		GElf_Shdr sh;
		const char *n;

		if (!gelf_getshdr(scn, &sh))
			continue;
		n = elf_strptr(e->elf, e->shstrndx, sh.sh_name);
		if (n && strcmp(n, name) == 0 && sh.sh_addr) {
			*addr = e->bias + sh.sh_addr;
			if (size)
				*size = sh.sh_size;
			return 0;
		}
	}
	return -PYX_E_NOT_SUPPORTED;
}

const char *pyx_elf_last_table(const struct pyx_elf *e)
{
	return e->last_table ? e->last_table : "";
}

void pyx_elf_debuglink(const struct pyx_elf *e, char *buf, size_t n)
{
	snprintf(buf, n, "%s", e->debuglink);
}

bool pyx_elf_has_dwarf(const struct pyx_elf *e) { return e->has_dwarf; }

void pyx_elf_build_id(const struct pyx_elf *e, char *buf, size_t n)
{
	snprintf(buf, n, "%s", e->build_id);
}

const char *pyx_elf_path(const struct pyx_elf *e) { return e->path; }
