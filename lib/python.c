/* Finding the interpreter in a target: file, version, layout. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "object.h"
#include "python_private.h"

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

static void set_version_consts(struct pyx_python *py)
{
	int v = pyx_py_ver(py);
	struct pyx_version_consts *k = &py->k;

	memset(k, 0, sizeof(*k));
	k->interp_frames = v >= 311;
	k->shim_frames = v >= 312;
	if (v >= 311)
		k->managed_dict_word = 3; /* obj[-3]: dict, before PyGC_Head */
	if (v == 311)
		k->managed_values_word = 4;
	k->tagged_dict_or_values = v == 312;
	k->inline_values = v >= 313;
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
	char local[PATH_MAX + 32];
	pyx_addr_t bias, runtime;
	int err;

	if ((err = pyx_proc_path(py->proc, target_path, local, sizeof(local))))
		return err;
	if ((err = pyx_elf_open(local, 0, &py->elf)))
		return err;
	if ((err = pyx_elf_bias(py->elf, py->proc, target_path, &bias)) ||
	    pyx_elf_lookup(py->elf, "_PyRuntime", &runtime, NULL)) {
		pyx_elf_free(py->elf);
		py->elf = NULL;
		return err ? err : -PYX_E_NOT_PYTHON;
	}
	py->info.runtime = runtime;
	snprintf(py->info.binary, sizeof(py->info.binary), "%s", target_path);
	py->info.shared = strncmp(strrchr(target_path, '/') ?
				  strrchr(target_path, '/') + 1 : target_path,
				  "libpython", 9) == 0;
	pyx_elf_build_id(py->elf, py->info.build_id, sizeof(py->info.build_id));
	return 0;
}

static int find_runtime(struct pyx_python *py)
{
	const struct pyx_map *maps;
	char searched[512] = "";
	size_t n, used = 0;
	int major = 0, minor = 0;

	maps = pyx_proc_maps(py->proc, &n);
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
			    (major != 3 || minor < 8))
				return pyx_err_set(PYX_E_UNSUPPORTED_VERSION,
						   "Python %d.%d (%s)", major,
						   minor, path);
			if (try_file(py, path) == 0)
				return 0;
			if (used < sizeof(searched))
				used += (size_t)snprintf(searched + used,
							 sizeof(searched) - used,
							 "%s%s", used ? ", " : "",
							 path);
		}
	}
	return pyx_err_set(PYX_E_NOT_PYTHON, "no _PyRuntime symbol in %s",
			   used ? searched : "any mapped python or libpython");
}

int pyx_python_open(struct pyx_proc *proc, struct pyx_python **out)
{
	struct pyx_python *py;
	char local[PATH_MAX + 32];
	int err;

	*out = NULL;
	py = calloc(1, sizeof(*py));
	if (!py)
		return -PYX_E_NOMEM;
	py->proc = proc;
	py->mem = pyx_proc_mem(proc);
	pyx_layout_init(&py->layout);

	if ((err = find_runtime(py)))
		goto out;
	err = version_from_symbol(py);
	if (err && err != -PYX_E_NOT_SUPPORTED)
		goto out;
	if (err == 0 && (py->info.major != 3 || py->info.minor < 8 ||
			 py->info.minor > 13)) {
		err = pyx_err_set(PYX_E_UNSUPPORTED_VERSION, "Python %s (%s)",
				  py->info.version, py->info.binary);
		goto out;
	}
	/* DWARF of the file itself; separate debug files and built-in tables
	 * are further providers of the same struct pyx_layout. */
	if (!pyx_elf_has_dwarf(py->elf)) {
		err = pyx_err_set(PYX_E_NO_DEBUG_INFO,
				  "searched %s: stripped, no .debug_info%s%s",
				  py->info.binary,
				  py->info.version[0] ? "; Python " : "",
				  py->info.version);
		goto out;
	}
	if ((err = pyx_proc_path(proc, py->info.binary, local, sizeof(local))) ||
	    (err = pyx_layout_from_dwarf(&py->layout, local)))
		goto out;

#define PYX_KT_LOOKUP_(f, sym)                                                 \
	if (pyx_elf_lookup(py->elf, sym, &py->types.f, NULL)) {                \
		err = pyx_err_set(PYX_E_NOT_PYTHON, "%s does not define %s",   \
				  py->info.binary, sym);                       \
		goto out;                                                      \
	}
	PYX_KNOWN_TYPES(PYX_KT_LOOKUP_)
#undef PYX_KT_LOOKUP_

	if (!py->info.version[0]) {
		/* The object readers need the version constants; sys.version
		 * only needs str and dict, laid out alike up to 3.10. */
		py->info.major = 3;
		py->info.minor = 8;
		set_version_consts(py);
		if ((err = version_from_sys(py)))
			goto out;
		if (py->info.major != 3 || py->info.minor < 8 ||
		    py->info.minor > 13) {
			err = pyx_err_set(PYX_E_UNSUPPORTED_VERSION,
					  "Python %s (%s)", py->info.version,
					  py->info.binary);
			goto out;
		}
	}
	set_version_consts(py);
out:
	if (err) {
		pyx_python_free(py);
		return err;
	}
	*out = py;
	return 0;
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

struct pyx_proc *pyx_python_proc(const struct pyx_python *py)
{
	return py->proc;
}
