/* Finding the interpreter in a target: file, version, layout. */
#include <ctype.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "abi.h"
#include "layout_cache.h"
#include "pyxray/files.h"
#include "object.h"
#include "reader.h"

/* "libpython3.11.so.1.0" or "python3.11": the version in a file's name, so
 * that an old or foreign Python is named even where it cannot be read. */
static bool version_from_name(const char *path, int *major, int *minor)
{
	const char *base = strrchr(path, '/');
	const char *p;

	base = base ? base + 1 : path;
	if (strncmp(base, "libpython", 9) == 0)
		p = base + 9;
	else if (strncmp(base, "python", 6) == 0)
		p = base + 6;
	else
		return false;
	return sscanf(p, "%d.%d", major, minor) == 2;
}

static bool is_candidate(const char *path)
{
	const char *base = strrchr(path, '/');

	base = base ? base + 1 : path;
	return strncmp(base, "libpython", 9) == 0 ||
	       strncmp(base, "python", 6) == 0;
}

static int parse_version(struct pyx_python *py, const char *s)
{
	struct pyx_python_info *in = &py->info;
	size_t n = 0;

	if (sscanf(s, "%d.%d.%d", &in->major, &in->minor, &in->micro) != 3)
		return pyx_err_set(PYX_E_LAYOUT, "cannot parse sys.version '%.40s'",
				   s);
	while (s[n] && !isspace((unsigned char)s[n]) && n + 1 < sizeof(in->version))
		n++;
	memcpy(in->version, s, n);
	in->version[n] = '\0';
	return 0;
}

/* Before 3.11 no symbol carries the version: read sys.version from the
 * target (the main interpreter's sysdict). */
static int version_from_sys(struct pyx_python *py)
{
	uint64_t interp, sysdict;
	pyx_addr_t ver;
	char buf[128];
	int err;

	if ((err = pyx_read_field(py, py->info.runtime, PYX_L_RT_INTERP_MAIN,
				  &interp)) ||
	    (err = pyx_read_field(py, interp, PYX_L_IS_SYSDICT, &sysdict)))
		return err;
	if (!interp || !sysdict)
		return pyx_err_set(PYX_E_LAYOUT, "the interpreter is not "
				   "initialised (no sys module yet)");
	if ((err = pyx_dict_get_str(py, sysdict, "version", &ver)) ||
	    (err = pyx_str_read(py, ver, buf, sizeof(buf))))
		return err == -PYX_E_NOT_SUPPORTED
		       ? pyx_err_set(PYX_E_LAYOUT, "sys.version not found")
		       : err;
	return parse_version(py, buf);
}

static int version_from_symbol(struct pyx_python *py)
{
	pyx_addr_t addr;
	uint64_t hex;
	int err;

	if (pyx_elf_lookup(py->elf, "Py_Version", &addr, NULL))
		return -PYX_E_NOT_SUPPORTED;
	if ((err = pyx_mem_read_u64(py->mem, addr, &hex)))
		return err;
	hex = pyx_debug_offsets_present_version(hex);
	py->info.major = (int)(hex >> 24) & 0xff;
	py->info.minor = (int)(hex >> 16) & 0xff;
	py->info.micro = (int)(hex >> 8) & 0xff;
	snprintf(py->info.version, sizeof(py->info.version), "%d.%d.%d",
		 py->info.major, py->info.minor, py->info.micro);
	/* Alpha, beta, candidate releases: 0xA, 0xB, 0xC in bits 4-7. */
	if (((hex >> 4) & 0xf) != 0xf) {
		size_t len = strlen(py->info.version);
		static const char tags[] = { 'a', 'b', 'c' };
		unsigned t = (unsigned)(hex >> 4) & 0xf;

		if (t >= 0xa && t <= 0xc)
			snprintf(py->info.version + len,
				 sizeof(py->info.version) - len, "%s%u",
				 t == 0xc ? "rc" : (char[]){ tags[t - 0xa], 0 },
				 (unsigned)hex & 0xf);
	}
	return 0;
}

/* Try one mapped file: does it define _PyRuntime? */
static int try_file(struct pyx_python *py, const char *target_path)
{
	pyx_addr_t runtime, section;
	uint64_t size = 0, section_size = 0;
	int err = 0;

	if ((err = pyx_target_open_elf(py->tgt, target_path, &py->elf)))
		return err;
	{
		/* .dynsym or .symtab; failing both (stripped of both), the
		 * section 3.10+ put _PyRuntime in. */
		if (pyx_elf_lookup(py->elf, "_PyRuntime", &runtime, &size) == 0)
			snprintf(py->info.runtime_via, sizeof(py->info.runtime_via),
				 "%s", pyx_elf_last_table(py->elf));
		else if (pyx_elf_section(py->elf, ".PyRuntime", &runtime, NULL) == 0)
			snprintf(py->info.runtime_via, sizeof(py->info.runtime_via),
				 ".PyRuntime section");
		else
			err = -PYX_E_NOT_PYTHON;
	}
	if (err) {
		pyx_elf_free(py->elf);
		py->elf = NULL;
		return err;
	}
	py->info.runtime = runtime;
	/* Its size checks _Py_DebugOffsets' runtime_state.size (3.14+). */
	if (!size && pyx_elf_section(py->elf, ".PyRuntime", &section,
				     &section_size) == 0 && section == runtime)
		size = section_size;
	py->runtime_size = size;
	pyx_err_clear();
	snprintf(py->info.binary, sizeof(py->info.binary), "%s", target_path);
	py->info.shared = strncmp(strrchr(target_path, '/') ?
				  strrchr(target_path, '/') + 1 : target_path,
				  "libpython", 9) == 0;
	pyx_elf_build_id(py->elf, py->info.build_id, sizeof(py->info.build_id));
	return 0;
}

/* A version no ABI row reads, as the file's name or Py_Version gives it. */
static int unsupported(const char *version, const char *binary)
{
	int lo, hi;

	pyx_abi_range(&lo, &hi);
	return pyx_err_set(PYX_E_UNSUPPORTED_VERSION, "Python %s (%s): pyxray "
			   "reads 3.%d to 3.%d", version, binary, lo, hi);
}

/* A 3.x newer than every ABI row: read through its _Py_DebugOffsets if
 * they validate (pyx_python_open_opts), never with an older table. */
static bool newer_than_known(int major, int minor)
{
	int lo, hi;

	pyx_abi_range(&lo, &hi);
	return major == 3 && minor > hi;
}

static int find_runtime(struct pyx_python *py)
{
	const struct pyx_map *maps;
	char searched[512] = "", open_detail[512] = "";
	size_t n, used = 0;
	int major = 0, minor = 0, open_err = 0, err;

	maps = pyx_target_maps(py->tgt, &n);
	/* libpython first: with a shared build the executable only imports
	 * _PyRuntime.  Each distinct path once. */
	for (int pass = 0; pass < 2; pass++) {
		for (size_t i = 0; i < n; i++) {
			const char *path = maps[i].path;
			const char *base = strrchr(path, '/');
			bool lib;

			if (path[0] != '/' || !is_candidate(path) ||
			    (i > 0 && strcmp(maps[i - 1].path, path) == 0))
				continue;
			base = base ? base + 1 : path;
			lib = strncmp(base, "libpython", 9) == 0;
			if (lib != (pass == 0))
				continue;
			if (version_from_name(path, &major, &minor) &&
			    !pyx_abi_for(major, minor) &&
			    !newer_than_known(major, minor)) {
				char v[32];

				snprintf(v, sizeof(v), "%d.%d", major, minor);
				return unsupported(v, path);
			}
			if ((err = try_file(py, path)) == 0)
				return 0;
			/* A file that could not be opened may well be the
			 * interpreter: its error is the answer, not "not a
			 * Python process". */
			if (!open_err && (err == -PYX_E_IO ||
					  err == -PYX_E_PERMISSION ||
					  err == -PYX_E_FILE_MISMATCH)) {
				open_err = err;
				snprintf(open_detail, sizeof(open_detail), "%s",
					 pyx_err_detail()[0] ? pyx_err_detail()
							     : path);
			}
			if (used < sizeof(searched))
				used += (size_t)snprintf(searched + used,
							 sizeof(searched) - used,
							 "%s%s", used ? ", " : "",
							 path);
		}
	}
	if (open_err)
		return pyx_err_set((enum pyx_error)-open_err, "%s", open_detail);
	return pyx_err_set(PYX_E_NOT_PYTHON, "no _PyRuntime symbol in %s",
			   used ? searched : "any mapped python or libpython");
}

int pyx_layout_mode_parse(const char *s)
{
	static const char *const names[] = {
		[PYX_LAYOUT_AUTO] = "auto", [PYX_LAYOUT_DWARF] = "dwarf",
		[PYX_LAYOUT_TABLE] = "table",
		[PYX_LAYOUT_DEBUG_OFFSETS] = "debug-offsets",
	};

	for (size_t i = 0; i < PYX_ARRAY_SIZE(names); i++)
		if (strcmp(s, names[i]) == 0)
			return (int)i;
	return -1;
}

int pyx_python_interps(struct pyx_python *py, pyx_addr_t *out, size_t max,
		       size_t *n)
{
	struct pyx_chain_check cyc = PYX_CHAIN_CHECK_INIT;
	uint64_t interp;
	int err;

	*n = 0;
	if ((err = pyx_read_field(py, py->info.runtime, PYX_L_RT_INTERP_HEAD,
				  &interp)))
		return err;
	if (!interp)
		return pyx_err_set(PYX_E_NOT_SUPPORTED, "no interpreter: Python "
				   "is not initialised yet, or has finalized");
	while (interp) {
		if (pyx_chain_cycles(&cyc, interp))
			return pyx_err_set(PYX_E_BAD_MEMORY, "the interpreter "
					   "list loops at " PYX_PRIaddr, interp);
		if (*n >= max)
			return pyx_err_set(PYX_E_BAD_MEMORY, "more than %zu "
					   "interpreters: the list is corrupt", max);
		out[(*n)++] = interp;
		if ((err = pyx_read_field(py, interp, PYX_L_IS_NEXT, &interp)))
			return err;
	}
	return 0;
}

/* Does the layout describe this process?  A wrong table or a mismatched
 * debug file shows here, before any walker prints garbage. */
static int validate_layout_once(struct pyx_python *py)
{
	uint64_t tstate, back, dict;
	pyx_addr_t tp, interp = 0;
	size_t n;
	int err;

	/* Only the first matters here: ask for one, so that the error for
	 * "more" still leaves it in interp. */
	err = pyx_python_interps(py, &interp, 1, &n);
	if (!interp)
		return err;
	if ((interp & 7) || !pyx_mem_valid(py->mem, interp, 64))
		return pyx_err_set(PYX_E_LAYOUT, "interpreter pointer "
				   PYX_PRIaddr " is not mapped", interp);
	if ((err = pyx_read_field(py, interp, PYX_L_IS_TSTATE_HEAD, &tstate)))
		return err;
	if (tstate && (pyx_read_field(py, tstate, PYX_L_TS_INTERP, &back) ||
		       back != interp))
		return pyx_err_set(PYX_E_LAYOUT, "the first thread state does "
				   "not point back to its interpreter");
	for (int i = 0; i < 2; i++) {
		enum pyx_layout_id id = i ? PYX_L_IS_MODULES : PYX_L_IS_SYSDICT;

		if (!pyx_layout_has(&py->layout, id))
			continue;
		if ((err = pyx_read_field(py, interp, id, &dict)))
			return err;
		if (!dict)
			continue;
		err = pyx_obj_type(py, dict, &tp);
		/* A core may lack the page (cut, or left out when it was
		 * written): say so rather than blame the layout. */
		if (err == -PYX_E_BAD_MEMORY && pyx_target_core_info(py->tgt))
			return err;
		if (err || tp != py->types.dict)
			return pyx_err_set(PYX_E_LAYOUT, "%s.%s is not a dict",
					   pyx_layout_struct(id),
					   pyx_layout_member(id));
	}
	pyx_err_clear();
	return 0;
}

/* The target runs while this reads it (a thread starting can tear a
 * read): a wrong layout fails every time, a race does not. */
static int validate_layout(struct pyx_python *py)
{
	int err = 0;

	for (int i = 0; i < 3; i++) {
		pyx_mem_invalidate(py->mem);
		if ((err = validate_layout_once(py)) == 0 ||
		    err == -PYX_E_EXITED)
			break;
	}
	pyx_mem_invalidate(py->mem);
	return err;
}

/* A free-threaded build has another object header (ob_tid first, the
 * refcount split in two, ob_type at 24): no GIL layout reads it.  Refuse it
 * before any layout is validated against it. */
static int check_free_threaded(struct pyx_python *py,
			       const struct pyx_layout *l)
{
	uint8_t head[PYX_DEBUG_OFFSETS_HEAD];
	struct pyx_build_signals s = {
		.layout = l,
		.binary = py->info.binary,
	};

	/* 3.13+: _Py_DebugOffsets opens _PyRuntime; before, other bytes
	 * that cannot hold its cookie. */
	if (py->mem && pyx_mem_read(py->mem, py->info.runtime, head,
				    sizeof(head)) == 0) {
		s.runtime_head = head;
		s.runtime_head_len = sizeof(head);
	}
	pyx_err_clear();
	return pyx_abi_check_free_threaded(&s);
}

/* The target's _Py_DebugOffsets (3.13+), believed only if they describe
 * this very process: the cookie, a version that is Py_Version's, and a
 * runtime size that is _PyRuntime's.  What fails is a warning, not an
 * error: DWARF and the tables do not need them (a version newer than
 * known does, and is refused without them). */
static void read_debug_offsets(struct pyx_python *py)
{
	struct pyx_debug_offsets *d = &py->dbg;
	struct pyx_layout scratch;
	unsigned vmaj, vmin, vmic;
	int err;

	pyx_layout_init(&scratch);
	err = pyx_debug_offsets_apply(&scratch, py->mem, py->info.runtime, d);
	if (err) {
		/* No cookie before 3.13: nothing to say. */
		if (err != -PYX_E_NOT_SUPPORTED || pyx_err_detail()[0])
			pyx_warn("%s: _Py_DebugOffsets not used: %s",
				 py->info.binary, pyx_err_detail()[0]
				 ? pyx_err_detail() : pyx_strerror(err));
		goto out;
	}
	vmaj = (unsigned)(d->version >> 24) & 0xff;
	vmin = (unsigned)(d->version >> 16) & 0xff;
	vmic = (unsigned)(d->version >> 8) & 0xff;
	if (py->info.version[0] &&
	    (vmaj != (unsigned)py->info.major || vmin != (unsigned)py->info.minor ||
	     vmic != (unsigned)py->info.micro)) {
		pyx_warn("%s: _Py_DebugOffsets not used: they say %u.%u.%u, "
			 "Py_Version says %s", py->info.binary, vmaj, vmin,
			 vmic, py->info.version);
		goto out;
	}
	if (py->runtime_size && d->runtime_size &&
	    d->runtime_size != py->runtime_size) {
		pyx_warn("%s: _Py_DebugOffsets not used: they say _PyRuntime "
			 "is %" PRIu64 " bytes, the ELF file %" PRIu64,
			 py->info.binary, d->runtime_size, py->runtime_size);
		goto out;
	}
	py->info.debug_offsets_valid = true;
	py->info.debug_offsets_version = d->version;
	py->info.debug_offsets_format = d->format_minor;
out:
	pyx_err_clear();
}

/* Fields a struct's size does not vouch for: a table made from another
 * build of the same version (Py_DEBUG grows _PyRuntimeState and
 * PyInterpreterState; 3.14.0-3.14.4 ran another GC) keeps its fields of
 * that struct only if the sizes the target publishes agree, and never
 * across a release known to have moved it. */
static const struct {
	enum pyx_layout_id size;
	const char *type;
} sized_structs[] = {
	{ PYX_L_SZ_RUNTIME, "_PyRuntimeState" },
	{ PYX_L_SZ_INTERP, "PyInterpreterState" },
	{ PYX_L_SZ_THREAD, "PyThreadState" },
	{ PYX_L_SZ_GC_STATE, "_gc_runtime_state" },
};
static const struct {
	int major, minor, micro; /* the first release of a new layout */
	const char *type;
} layout_breaks[] = {
	/* the incremental GC (young, old[2]) until 3.14.4 */
	{ 3, 14, 5, "_gc_runtime_state" },
};

static void drop_struct(struct pyx_layout *l, const char *type)
{
	for (size_t i = 0; i < PYX_L__COUNT; i++)
		if (strcmp(pyx_layout_struct(i), type) == 0)
			l->v[i] = PYX_OFF_NONE;
}

static void table_drop_unvouched(struct pyx_python *py, int table_micro)
{
	struct pyx_layout *l = &py->layout;

	for (size_t i = 0; i < PYX_ARRAY_SIZE(layout_breaks); i++) {
		int m = layout_breaks[i].micro;

		if (layout_breaks[i].major != py->info.major ||
		    layout_breaks[i].minor != py->info.minor ||
		    !py->info.version[0] ||
		    (table_micro >= m) == (py->info.micro >= m))
			continue;
		pyx_warn("the built-in %d.%d.%d table does not describe %s of "
			 "%s: those fields are left out (install the debug "
			 "file)", py->info.major, py->info.minor, table_micro,
			 layout_breaks[i].type, py->info.version);
		drop_struct(l, layout_breaks[i].type);
	}
	if (!py->info.debug_offsets_valid)
		return;
	for (size_t i = 0; i < PYX_ARRAY_SIZE(sized_structs); i++) {
		enum pyx_layout_id id = sized_structs[i].size;
		uint64_t says = id == PYX_L_SZ_RUNTIME ? py->dbg.runtime_size
			      : id == PYX_L_SZ_INTERP ? py->dbg.interp_size
			      : id == PYX_L_SZ_THREAD ? py->dbg.thread_size
						      : py->dbg.gc_size;

		if (!says || !pyx_layout_has(l, id) || (uint64_t)l->v[id] == says)
			continue;
		pyx_warn("%s is %" PRIu64 " bytes in this build, %d in the "
			 "built-in table (a Py_DEBUG or other build of %s): "
			 "its fields not in _Py_DebugOffsets are left out",
			 sized_structs[i].type, says, l->v[id],
			 py->info.version);
		drop_struct(l, sized_structs[i].type);
	}
}

/* What the target says of itself beats a table built from another build:
 * overlaid on it, and counted. */
static void overlay_debug_offsets(struct pyx_python *py)
{
	struct pyx_debug_offsets d;

	if (pyx_debug_offsets_apply(&py->layout, py->mem, py->info.runtime,
				    &d) == 0)
		py->info.debug_offsets_used = d.filled;
	pyx_err_clear();
}

/* The build-id of the ELF file open as fd (a dup is read; fd stays the
 * caller's), "" if none or not ELF. */
static void fd_build_id(int fd, const char *name, char *buf, size_t n)
{
	struct pyx_elf *e;
	int dfd = fcntl(fd, F_DUPFD_CLOEXEC, 0);

	buf[0] = '\0';
	if (dfd < 0)
		return;
	if (pyx_elf_open_fd(dfd, name, 0, &e)) {
		pyx_err_clear();
		return;
	}
	pyx_elf_build_id(e, buf, n);
	pyx_elf_free(e);
}

static int layout_from_dwarf_files(struct pyx_python *py,
				   const struct pyx_python_opts *o)
{
	char local[PATH_MAX + 32], searched[1024] = "", bid[64];
	struct pyx_layout_cache_slot *slot;
	int fd = -1, err;

	/* By fd from the resolver to libdw: the file read is the file the
	 * resolver checked, never a name opened again. */
	if (pyx_elf_has_dwarf(py->elf)) {
		if ((err = pyx_target_open_mapped(py->tgt, py->info.binary, &fd,
						  local, sizeof(local))))
			return err;
		/* The file read must be the build we identified. */
		fd_build_id(fd, local, bid, sizeof(bid));
		if (strcmp(bid, py->info.build_id) != 0) {
			close(fd);
			return pyx_err_set(PYX_E_NO_DEBUG_INFO, "%s: the file "
					   "opened has build-id %s, the one "
					   "mapped %s", py->info.binary,
					   bid[0] ? bid : "(none)",
					   py->info.build_id[0] ? py->info.build_id
								: "(none)");
		}
	} else if (pyx_target_open_debug_file(py->tgt, py->elf,
					      py->info.binary, o->debug_dir,
					      &fd, local, sizeof(local),
					      searched, sizeof(searched))) {
		return pyx_err_set(PYX_E_NO_DEBUG_INFO,
				   "%s is stripped and no debug file was found "
				   "(searched %s)", py->info.binary,
				   searched[0] ? searched : "nothing: no build-id");
	}
	if (!(slot = malloc(sizeof(*slot)))) {
		close(fd);
		return pyx_err_set(PYX_E_NOMEM, "out of memory");
	}
	err = pyx_layout_from_dwarf_cached(&py->layout, fd, local,
					   py->info.build_id,
					   &py->info.layout_cached, slot);
	close(fd);
	if (err || (err = check_free_threaded(py, &py->layout)))
		goto out;
	if (snprintf(py->info.layout_file, sizeof(py->info.layout_file), "%s",
		     local) >= (int)sizeof(py->info.layout_file))
		py->info.layout_file[0] = '\0';
	/* Stored only once it has proved right on this process. */
	if (!(err = validate_layout(py)))
		pyx_layout_cache_store(&py->layout, slot);
out:
	free(slot);
	return err;
}

/* With the version unknown, a table that validates is only a guess (the
 * few fields validation reads can sit alike in two versions): it is kept
 * only if sys.version, read through it, names the table's own version. */
static int confirm_table_version(struct pyx_python *py,
				 const struct pyx_layout_table *t)
{
	char table[16];
	int err;

	py->info.major = t->major;
	py->info.minor = t->minor;
	py->info.micro = 0;
	py->info.version[0] = '\0';
	if ((err = pyx_abi_select(py)) || (err = version_from_sys(py)))
		goto out;
	if (py->info.major != t->major || py->info.minor != t->minor) {
		snprintf(table, sizeof(table), "%d.%d", t->major, t->minor);
		err = pyx_err_set(PYX_E_LAYOUT, "the built-in %s table reads "
				  "sys.version %s: not this build's table",
				  table, py->info.version);
	}
out:
	if (err) {
		py->info.major = py->info.minor = py->info.micro = 0;
		py->info.version[0] = '\0';
	}
	return err;
}

/* Built-in tables: the one for this version, or with the version unknown
 * (a stripped 3.8-3.10 static executable has no Py_Version, and its name
 * may not say) each until one validates and sys.version confirms it.  A
 * known version without a table is never read with another's. */
static int layout_from_tables(struct pyx_python *py, int major, int minor,
			      bool debug_offsets)
{
	const char *build_id = py->info.build_id;
	const struct pyx_layout_table *own = NULL;
	bool unknown;
	int err;

#ifdef PYX_TEST_HOOKS
	/* Test hook: read the process with another version's table ("0.0":
	 * as if the version were unknown), never by build-id. */
	const char *force = getenv("PYX_TABLE_VERSION");

	if (force) {
		if (sscanf(force, "%d.%d", &major, &minor) != 2)
			major = minor = 0;
		build_id = NULL;
	}
#endif
	unknown = major == 0;
	for (size_t i = 0; build_id && build_id[0] && i < pyx_layout_ntables; i++)
		if (strcmp(pyx_layout_tables[i].build_id, build_id) == 0)
			own = &pyx_layout_tables[i];
	err = pyx_err_set(PYX_E_UNSUPPORTED_VERSION,
			  "no built-in layout for Python %d.%d: install its "
			  "debug symbols, or run pyxray on a build with DWARF",
			  major, minor);

	for (size_t i = 0; i < pyx_layout_ntables; i++) {
		const struct pyx_layout_table *t = &pyx_layout_tables[i];

		/* Unknown: this build's own table (by build-id) if there is
		 * one, else each supported version's in turn. */
		if (unknown ? !pyx_abi_for(t->major, t->minor) ||
				      (own && t != own)
			    : t->major != major || t->minor != minor)
			continue;
		if ((err = pyx_layout_from_table(&py->layout, t->major, t->minor,
						 unknown ? t->micro : py->info.micro,
						 unknown ? NULL : build_id)))
			continue;
		/* 3.13+: what the interpreter says of itself beats a table
		 * built from another patch release. */
		if (!unknown)
			table_drop_unvouched(py, pyx_layout_table_find(
							 t->major, t->minor,
							 py->info.micro,
							 build_id)->micro);
		if (debug_offsets || (unknown && t->minor >= 13))
			overlay_debug_offsets(py);
		if ((err = validate_layout(py)) == 0 &&
		    (!unknown || (err = confirm_table_version(py, t)) == 0))
			return 0;
		if (!unknown || err == -PYX_E_EXITED)
			break;
	}
	return err;
}

int pyx_python_open(struct pyx_target *tgt, struct pyx_python **out)
{
	return pyx_python_open_opts(tgt, NULL, out);
}

/* The eval loop's .cold part from the layout's symbols, biased as
 * _PyRuntime is: a build whose _PyRuntime is not where the symbols say is
 * not the build they came from. */
static void eval_cold_range(struct pyx_python *py)
{
	const struct pyx_layout *l = &py->layout;
	pyx_addr_t bias;

	if (!pyx_layout_has(l, PYX_L_SYM_RUNTIME) ||
	    !pyx_layout_has(l, PYX_L_SYM_EVAL_COLD) ||
	    !pyx_layout_has(l, PYX_L_SYM_EVAL_COLD_SIZE) ||
	    l->v[PYX_L_SYM_EVAL_COLD_SIZE] <= 0 ||
	    py->info.runtime < (pyx_addr_t)l->v[PYX_L_SYM_RUNTIME])
		return;
	bias = py->info.runtime - (pyx_addr_t)l->v[PYX_L_SYM_RUNTIME];
	if (bias & 0xfff)
		return;
	py->eval_cold_lo = bias + (pyx_addr_t)l->v[PYX_L_SYM_EVAL_COLD];
	py->eval_cold_hi = py->eval_cold_lo +
			   (pyx_addr_t)l->v[PYX_L_SYM_EVAL_COLD_SIZE];
}

/* A version newer than pyxray knows: its _Py_DebugOffsets, validated,
 * read in the newest format known, are the whole layout; the newest ABI
 * row reads it.  The walk validates it too (validate_layout). */
static int open_newer(struct pyx_python *py, const struct pyx_python_opts *o)
{
	char why[160];
	int lo, hi, err;

	pyx_abi_range(&lo, &hi);
	snprintf(why, sizeof(why), "Python %s is newer than pyxray knows "
		 "(3.%d to 3.%d)", py->info.version, lo, hi);
	if (!py->info.debug_offsets_valid || !py->dbg.newer)
		return pyx_err_set(PYX_E_UNSUPPORTED_VERSION, "%s, and its "
				   "_Py_DebugOffsets %s (%s)", why,
				   py->info.debug_offsets_version
				   ? "are not in a format it knows"
				   : "do not validate",
				   py->info.binary);
	if (o->layout == PYX_LAYOUT_DWARF || o->layout == PYX_LAYOUT_TABLE)
		return pyx_err_set(PYX_E_UNSUPPORTED_VERSION, "%s: only its "
				   "_Py_DebugOffsets can be read (--layout auto "
				   "or debug-offsets)", why);
	pyx_layout_init(&py->layout);
	if ((err = pyx_debug_offsets_apply(&py->layout, py->mem,
					   py->info.runtime, &py->dbg)))
		return err;
	py->info.debug_offsets_used = py->dbg.filled;
	py->layout.source = PYX_LAYOUT_FROM_DEBUG_OFFSETS;
	snprintf(py->layout.source_file, sizeof(py->layout.source_file),
		 "_Py_DebugOffsets of the target (Python %s, read in the 3.%d "
		 "format: only what they carry)", py->info.version, hi);
	if ((err = validate_layout(py)))
		return err;
	py->info.newer = true;
	py->info.newest_known_minor = hi;
	py->abi = pyx_abi_for(3, hi);
	py->k = py->abi->k;
	snprintf(py->info.warning, sizeof(py->info.warning), "%s: read "
		 "through its own _Py_DebugOffsets as 3.%d; only stacks work",
		 why, hi);
	pyx_warn("%s", py->info.warning);
	return 0;
}

int pyx_python_check_full(const struct pyx_python *py, const char *command)
{
	if (!py->info.newer)
		return 0;
	return pyx_err_set(PYX_E_UNSUPPORTED_VERSION, "%s needs more of "
			   "Python %s than its _Py_DebugOffsets carry: pyxray "
			   "reads 3.8 to 3.%d fully, newer versions only for "
			   "stacks", command, py->info.version,
			   py->info.newest_known_minor);
}

int pyx_python_open_opts(struct pyx_target *tgt,
			 const struct pyx_python_opts *opts,
			 struct pyx_python **out)
{
	struct pyx_python_opts o = opts ? *opts : (struct pyx_python_opts){ 0 };
	struct pyx_python *py;
	int major = 0, minor = 0, err;
	bool newer = false;

	*out = NULL;
	py = calloc(1, sizeof(*py));
	if (!py)
		return -PYX_E_NOMEM;
	py->tgt = tgt;
	py->mem = pyx_target_mem(tgt);
	pyx_layout_init(&py->layout);

	if ((err = find_runtime(py)) || (err = check_free_threaded(py, NULL)))
		goto out;
	err = version_from_symbol(py);
	if (err && err != -PYX_E_NOT_SUPPORTED)
		goto out;
	if (err == 0) {
		major = py->info.major;
		minor = py->info.minor;
		newer = newer_than_known(major, minor);
		if (!pyx_abi_for(major, minor) && !newer) {
			err = unsupported(py->info.version, py->info.binary);
			goto out;
		}
	} else if (!version_from_name(py->info.binary, &major, &minor)) {
		major = minor = 0; /* unknown: sys.version will say */
	}
	err = 0;
	/* 3.13+: what the interpreter publishes about itself, checked
	 * against the process before anything believes it. */
	if (major == 0 || minor >= 13)
		read_debug_offsets(py);

#define PYX_KT_LOOKUP_(f, sym)                                                 \
	if (pyx_elf_lookup(py->elf, sym, &py->types.f, NULL)) {                \
		err = pyx_err_set(PYX_E_NOT_PYTHON, "%s does not define %s",   \
				  py->info.binary, sym);                       \
		goto out;                                                      \
	}
	PYX_KNOWN_TYPES(PYX_KT_LOOKUP_)
#undef PYX_KT_LOOKUP_

	if (newer) {
		err = open_newer(py, &o);
		goto out;
	}
	switch (o.layout) {
	case PYX_LAYOUT_DWARF:
		err = layout_from_dwarf_files(py, &o);
		break;
	case PYX_LAYOUT_TABLE:
		/* 3.14+: the debug offsets first, the table for the rest. */
		err = layout_from_tables(py, major, minor, minor >= 14);
		break;
	case PYX_LAYOUT_DEBUG_OFFSETS:
		pyx_layout_init(&py->layout);
		err = pyx_debug_offsets_apply(&py->layout, py->mem,
					      py->info.runtime, &py->dbg);
		if (err == -PYX_E_NOT_SUPPORTED && !pyx_err_detail()[0])
			err = pyx_err_set(PYX_E_NOT_SUPPORTED, "%s has no "
					  "_Py_DebugOffsets (3.13+ only)",
					  py->info.binary);
		if (!err && minor >= 14 && !py->info.debug_offsets_valid)
			err = pyx_err_set(PYX_E_LAYOUT, "%s: its "
					  "_Py_DebugOffsets do not describe "
					  "this process", py->info.binary);
		if (!err) {
			py->info.debug_offsets_used = py->dbg.filled;
			py->layout.source = PYX_LAYOUT_FROM_DEBUG_OFFSETS;
			snprintf(py->layout.source_file,
				 sizeof(py->layout.source_file),
				 "_Py_DebugOffsets of the target");
			err = validate_layout(py);
		}
		break;
	case PYX_LAYOUT_AUTO:
		err = layout_from_dwarf_files(py, &o);
		if (err == -PYX_E_NO_DEBUG_INFO) {
			char why[512];

			snprintf(why, sizeof(why), "%s", pyx_err_detail());
			err = layout_from_tables(py, major, minor, minor >= 13);
			if (err == -PYX_E_UNSUPPORTED_VERSION)
				err = pyx_err_set(PYX_E_NO_DEBUG_INFO, "%s; and "
						  "no built-in layout for Python "
						  "%d.%d", why, major, minor);
		}
		break;
	}
	if (err)
		goto out;

	/* 3.13+: the interpreter's own offsets must agree with the DWARF,
	 * field by field. */
	if (py->layout.source == PYX_LAYOUT_FROM_DWARF && minor >= 13) {
		struct pyx_layout copy = py->layout;
		struct pyx_debug_offsets d;
		struct pyx_python_info *in = &py->info;

		if (pyx_debug_offsets_apply(&copy, py->mem, in->runtime, &d) == 0) {
			in->debug_offsets_checked = d.filled;
			in->debug_offsets_mismatches = d.mismatches;
			in->debug_offsets_ndiff = d.ndiff;
			for (size_t i = 0; i < d.ndiff; i++) {
				snprintf(in->debug_offsets_diff[i].field,
					 sizeof(in->debug_offsets_diff[i].field),
					 "%s.%s", pyx_layout_struct(d.diff[i].id),
					 pyx_layout_member(d.diff[i].id)
					 ? pyx_layout_member(d.diff[i].id)
					 : "(size)");
				in->debug_offsets_diff[i].dwarf = d.diff[i].had;
				in->debug_offsets_diff[i].debug_offsets =
					d.diff[i].says;
			}
			if (d.mismatches)
				pyx_warn("_Py_DebugOffsets disagrees with the "
					 "DWARF of %s in %d entries (first: %s "
					 "%d, DWARF %d)", in->layout_file,
					 d.mismatches,
					 in->debug_offsets_diff[0].field,
					 d.diff[0].says, d.diff[0].had);
		}
		pyx_err_clear();
	}

	eval_cold_range(py);
	if (!py->info.version[0]) {
		/* The object readers need an ABI; sys.version only needs str
		 * and dict, laid out alike up to 3.10 (the only versions
		 * without Py_Version). */
		py->info.major = 3;
		py->info.minor = major == 3 && minor ? minor : 8;
		if ((err = pyx_abi_select(py)) || (err = version_from_sys(py)))
			goto out;
		if (!pyx_abi_for(py->info.major, py->info.minor)) {
			err = unsupported(py->info.version, py->info.binary);
			goto out;
		}
	}
	err = pyx_abi_select(py);
out:
	if (err) {
		pyx_python_free(py);
		return err;
	}
	*out = py;
	return 0;
}

int pyx_python_open_facts(struct pyx_target *tgt,
			  const struct pyx_python_facts *f,
			  struct pyx_python **out)
{
	struct pyx_python *py;

	*out = NULL;
	if (!pyx_abi_for(f->major, f->minor))
		return pyx_err_set(PYX_E_UNSUPPORTED_VERSION, "Python %d.%d",
				   f->major, f->minor);
	if (pyx_layout_has(&f->layout, PYX_L_OB_TID))
		return pyx_abi_check_free_threaded(
			&(struct pyx_build_signals){ .layout = &f->layout });
	py = calloc(1, sizeof(*py));
	if (!py)
		return pyx_err_set(PYX_E_NOMEM, "out of memory");
	py->tgt = tgt;
	py->mem = pyx_target_mem(tgt);
	py->layout = f->layout;
	py->types = f->types;
	py->info.major = f->major;
	py->info.minor = f->minor;
	py->info.micro = f->micro;
	py->info.runtime = f->runtime;
	snprintf(py->info.version, sizeof(py->info.version), "%d.%d.%d",
		 f->major, f->minor, f->micro);
	snprintf(py->info.binary, sizeof(py->info.binary), "(facts)");
	pyx_abi_select(py); /* cannot fail: checked above */
	*out = py;
	return 0;
}

void pyx_python_get_facts(const struct pyx_python *py,
			  struct pyx_python_facts *f)
{
	memset(f, 0, sizeof(*f));
	f->major = py->info.major;
	f->minor = py->info.minor;
	f->micro = py->info.micro;
	f->runtime = py->info.runtime;
	f->types = py->types;
	f->layout = py->layout;
}

void pyx_python_free(struct pyx_python *py)
{
	if (!py)
		return;
	pyx_elf_free(py->elf);
	free(py);
}

const struct pyx_python_info *pyx_python_info(const struct pyx_python *py)
{
	return &py->info;
}

const struct pyx_layout *pyx_python_layout(const struct pyx_python *py)
{
	return &py->layout;
}

struct pyx_target *pyx_python_target(const struct pyx_python *py)
{
	return py->tgt;
}
