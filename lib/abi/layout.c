/* Struct layouts read from the DWARF of the interpreter's ELF file. */
#include <dwarf.h>
#include <elfutils/libdw.h>
#include <gelf.h>
#include <stdint.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"
#include "layout_cache.h"
#include "pyxray/layout.h"

static const struct {
	const char *name, *type, *member;
	bool size; /* a symbol's size, not its address */
} entries[PYX_L__COUNT] = {
#define PYX_LAYOUT_TAB_(id, s, m) [PYX_L_##id] = { #id, s, m },
	PYX_LAYOUT_FIELDS(PYX_LAYOUT_TAB_)
#undef PYX_LAYOUT_TAB_
#define PYX_LAYOUT_TAB_(id, s) [PYX_L_##id] = { #id, s, NULL },
	PYX_LAYOUT_SIZES(PYX_LAYOUT_TAB_)
#undef PYX_LAYOUT_TAB_
#define PYX_LAYOUT_TAB_(id, sym, z) [PYX_L_##id] = { #id, "(symbol)", sym, z },
	PYX_LAYOUT_SYMBOLS(PYX_LAYOUT_TAB_)
#undef PYX_LAYOUT_TAB_
};

const char *pyx_layout_name(enum pyx_layout_id id) { return entries[id].name; }
const char *pyx_layout_struct(enum pyx_layout_id id) { return entries[id].type; }
const char *pyx_layout_member(enum pyx_layout_id id) { return entries[id].member; }

void pyx_layout_init(struct pyx_layout *l)
{
	memset(l, 0, sizeof(*l));
	for (size_t i = 0; i < PYX_L__COUNT; i++)
		l->v[i] = PYX_OFF_NONE;
}

/* The distinct type names the entries use, each with the DIE found for it. */
struct wanted {
	const char *name;
	Dwarf_Die die;
	bool found;
};

/* Strip typedefs and qualifiers down to the struct/union; false if the
 * chain ends elsewhere or in a declaration only. */
static bool peel_to_aggregate(Dwarf_Die *die)
{
	for (int depth = 0; depth < 16; depth++) {
		int tag = dwarf_tag(die);
		Dwarf_Attribute attr;

		if (tag == DW_TAG_structure_type || tag == DW_TAG_union_type)
			return !dwarf_hasattr(die, DW_AT_declaration);
		if (tag != DW_TAG_typedef && tag != DW_TAG_const_type &&
		    tag != DW_TAG_volatile_type && tag != DW_TAG_atomic_type)
			return false;
		if (!dwarf_attr_integrate(die, DW_AT_type, &attr) ||
		    !dwarf_formref_die(&attr, die))
			return false;
	}
	return false;
}

static bool member_offset(Dwarf_Die *member, Dwarf_Word *off)
{
	Dwarf_Attribute attr;

	*off = 0;
	if (!dwarf_attr(member, DW_AT_data_member_location, &attr))
		return true; /* union members */
	return dwarf_formudata(&attr, off) == 0;
}

/* Find member name in aggregate agg (searching anonymous members too);
 * on success *off is its offset and *type its DIE. */
static bool find_member(Dwarf_Die *agg, const char *name, size_t namelen,
			Dwarf_Word *off, Dwarf_Die *type, int depth)
{
	Dwarf_Die child;

	if (depth > 8 || dwarf_child(agg, &child) != 0)
		return false;
	do {
		const char *cname;
		Dwarf_Word moff;
		Dwarf_Attribute attr;
		Dwarf_Die mtype;

		if (dwarf_tag(&child) != DW_TAG_member)
			continue;
		if (!member_offset(&child, &moff))
			continue;
		if (!dwarf_attr_integrate(&child, DW_AT_type, &attr) ||
		    !dwarf_formref_die(&attr, &mtype))
			continue;
		cname = dwarf_diename(&child);
		if (cname) {
			if (strlen(cname) == namelen &&
			    memcmp(cname, name, namelen) == 0) {
				*off = moff;
				*type = mtype;
				return true;
			}
			continue;
		}
		/* An anonymous struct or union: its members are ours. */
		if (peel_to_aggregate(&mtype) &&
		    find_member(&mtype, name, namelen, off, type, depth + 1)) {
			*off += moff;
			return true;
		}
	} while (dwarf_siblingof(&child, &child) == 0);
	return false;
}

/* Resolve a dotted path ("interpreters.head") inside struct die. */
static bool resolve_path(Dwarf_Die *die, const char *path, size_t len,
			 Dwarf_Word *out)
{
	Dwarf_Die agg = *die;
	Dwarf_Word total = 0;
	const char *p = path, *end = path + len;

	while (p < end) {
		const char *dot = memchr(p, '.', (size_t)(end - p));
		size_t n = dot ? (size_t)(dot - p) : (size_t)(end - p);
		Dwarf_Word off;
		Dwarf_Die type;

		if (!find_member(&agg, p, n, &off, &type, 0))
			return false;
		total += off;
		p += n;
		if (p < end) {
			p++; /* the dot */
			agg = type;
			if (!peel_to_aggregate(&agg))
				return false;
		}
	}
	*out = total;
	return true;
}

static void scan_cu(Dwarf_Die *cudie, struct wanted *w, size_t nw,
		    size_t *left)
{
	Dwarf_Die child;

	if (dwarf_child(cudie, &child) != 0)
		return;
	do {
		int tag = dwarf_tag(&child);
		const char *name;

		if (tag != DW_TAG_typedef && tag != DW_TAG_structure_type &&
		    tag != DW_TAG_union_type)
			continue;
		name = dwarf_diename(&child);
		if (!name)
			continue;
		for (size_t i = 0; i < nw; i++) {
			Dwarf_Die die;

			if (w[i].found || strcmp(w[i].name, name) != 0)
				continue;
			die = child;
			if (peel_to_aggregate(&die)) {
				w[i].die = die;
				w[i].found = true;
				(*left)--;
			}
			break;
		}
	} while (*left > 0 && dwarf_siblingof(&child, &child) == 0);
}

/* The PYX_LAYOUT_SYMBOLS entries, from .symtab and .dynsym. */
static void read_symbols(Elf *elf, struct pyx_layout *l)
{
	Elf_Scn *scn = NULL;

	while (elf && (scn = elf_nextscn(elf, scn))) {
		GElf_Shdr sh;
		Elf_Data *data;
		size_t n;

		if (!gelf_getshdr(scn, &sh) ||
		    (sh.sh_type != SHT_SYMTAB && sh.sh_type != SHT_DYNSYM) ||
		    !sh.sh_entsize || !(data = elf_getdata(scn, NULL)))
			continue;
		n = sh.sh_size / sh.sh_entsize;
		for (size_t k = 0; k < n; k++) {
			GElf_Sym sym;
			const char *name;

			if (!gelf_getsym(data, (int)k, &sym) ||
			    !(name = elf_strptr(elf, sh.sh_link, sym.st_name)))
				continue;
			for (size_t i = PYX_L_SYM__FIRST; i < PYX_L__COUNT; i++) {
				uint64_t v = entries[i].size ? sym.st_size
							     : sym.st_value;

				if (l->v[i] == PYX_OFF_NONE && v && v < INT32_MAX &&
				    strcmp(name, entries[i].member) == 0)
					l->v[i] = (int32_t)v;
			}
		}
	}
}

int pyx_layout_from_dwarf(struct pyx_layout *l, const char *path)
{
	int fd, err;

	pyx_layout_init(l);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return pyx_err_set(PYX_E_IO, "open %s: %s", path,
				   strerror(errno));
	err = pyx_layout_from_dwarf_fd(l, fd, path);
	close(fd);
	return err;
}

int pyx_layout_from_dwarf_fd(struct pyx_layout *l, int fd, const char *path)
{
	struct wanted w[PYX_L__COUNT];
	size_t nw = 0, left;
	Dwarf *dw = NULL;
	Dwarf_Off off = 0, next;
	size_t hsize;
	int err = 0;

	pyx_layout_init(l);
	for (size_t i = 0; i < PYX_L_SYM__FIRST; i++) {
		size_t j;

		for (j = 0; j < nw; j++)
			if (strcmp(w[j].name, entries[i].type) == 0)
				break;
		if (j == nw)
			w[nw++] = (struct wanted){ .name = entries[i].type };
	}
	left = nw;

	/* Not closed here: the caller's (dwarf_end() leaves it open). */
	dw = dwarf_begin(fd, DWARF_C_READ);
	if (!dw) {
		err = pyx_err_set(PYX_E_NO_DEBUG_INFO, "no DWARF in %s", path);
		goto out;
	}
	while (left > 0 &&
	       dwarf_nextcu(dw, off, &next, &hsize, NULL, NULL, NULL) == 0) {
		Dwarf_Die cudie;

		if (dwarf_offdie(dw, off + hsize, &cudie))
			scan_cu(&cudie, w, nw, &left);
		off = next;
	}

	for (size_t i = 0; i < PYX_L_SYM__FIRST; i++) {
		struct wanted *t = NULL;

		for (size_t j = 0; j < nw; j++)
			if (strcmp(w[j].name, entries[i].type) == 0)
				t = &w[j];
		if (!t || !t->found)
			continue;
		if (!entries[i].member) {
			Dwarf_Word size;
			Dwarf_Attribute attr;

			if (dwarf_attr(&t->die, DW_AT_byte_size, &attr) &&
			    dwarf_formudata(&attr, &size) == 0)
				l->v[i] = (int32_t)size;
			continue;
		}
		/* Alternatives separated by '|': the first present wins. */
		for (const char *p = entries[i].member; *p;) {
			const char *bar = strchr(p, '|');
			size_t n = bar ? (size_t)(bar - p) : strlen(p);
			Dwarf_Word moff;

			if (resolve_path(&t->die, p, n, &moff)) {
				l->v[i] = (int32_t)moff;
				break;
			}
			p += n + (bar ? 1 : 0);
		}
	}
	/* _asyncio's extension (3.8-3.14) describes its tasks and nothing
	 * of the interpreter: the table generator merges those entries. */
	if ((!pyx_layout_has(l, PYX_L_RT_INTERP_HEAD) ||
	     !pyx_layout_has(l, PYX_L_TS_NEXT)) &&
	    !pyx_layout_has(l, PYX_L_TASK_CORO)) {
		err = pyx_err_set(PYX_E_NO_DEBUG_INFO,
				  "%s has no DWARF for the interpreter structs "
				  "(_PyRuntimeState, PyThreadState)", path);
		goto out;
	}
	read_symbols(dwarf_getelf(dw), l);
	l->source = PYX_LAYOUT_FROM_DWARF;
	snprintf(l->source_file, sizeof(l->source_file), "%s", path);
out:
	if (dw)
		dwarf_end(dw);
	return err;
}

const struct pyx_layout_table *pyx_layout_table_find(int major, int minor,
						     int micro,
						     const char *build_id)
{
	const struct pyx_layout_table *best = NULL;

	for (size_t i = 0; i < pyx_layout_ntables; i++) {
		const struct pyx_layout_table *t = &pyx_layout_tables[i];

		if (build_id && build_id[0] && strcmp(t->build_id, build_id) == 0) {
			best = t;
			break;
		}
		if (t->major != major || t->minor != minor)
			continue;
		/* Prefer the nearest release at or below ours: layouts change
		 * forward within a series, never back. */
		if (!best ||
		    (t->micro <= micro && (best->micro > micro || t->micro > best->micro)) ||
		    (t->micro > micro && best->micro > micro && t->micro < best->micro))
			best = t;
	}
	return best;
}

int pyx_layout_from_table(struct pyx_layout *l, int major, int minor,
			  int micro, const char *build_id)
{
	const struct pyx_layout_table *best =
		pyx_layout_table_find(major, minor, micro, build_id);

	pyx_layout_init(l);
	if (!best)
		return pyx_err_set(PYX_E_UNSUPPORTED_VERSION,
				   "no built-in layout for Python %d.%d", major,
				   minor);
	for (const struct pyx_layout_kv *kv = best->kv; kv->name; kv++)
		for (size_t i = 0; i < PYX_L__COUNT; i++)
			if (strcmp(entries[i].name, kv->name) == 0)
				l->v[i] = kv->value;
	/* Addresses describe the very build the table was made from. */
	if (!build_id || strcmp(best->build_id, build_id) != 0)
		for (size_t i = PYX_L_SYM__FIRST; i < PYX_L__COUNT; i++)
			l->v[i] = PYX_OFF_NONE;
	l->source = PYX_LAYOUT_FROM_TABLE;
	snprintf(l->source_file, sizeof(l->source_file),
		 "built-in table %d.%d.%d (from %s)", best->major, best->minor,
		 best->micro, best->origin);
	return 0;
}

void pyx_layout_print_table(const struct pyx_layout *l, int major, int minor,
			    int micro, const char *build_id, void *file)
{
	FILE *out = file;

	fprintf(out, "static const struct pyx_layout_kv t_%d_%d_%d_%.8s[] = {\n",
		major, minor, micro, build_id);
	for (size_t i = 0; i < PYX_L__COUNT; i++)
		if (l->v[i] != PYX_OFF_NONE)
			fprintf(out, "\t{ \"%s\", %d },\n", entries[i].name,
				l->v[i]);
	fprintf(out, "\t{ NULL, 0 },\n};\n");
}
