/* The file resolver (pyxray/files.h): the one place that turns a path the
 * target maps or names into a file pyxray opens. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"
#include "pyxray/files.h"
#include "pyxray/symbols.h"
#include "pyxray/target.h"

int pyx_target_local_path(const struct pyx_target *t, const char *target_path,
			  char *buf, size_t n)
{
	static const char deleted[] = " (deleted)";
	size_t len = strlen(target_path), dl = sizeof(deleted) - 1;
	const struct pyx_map *maps, *lowest = NULL;
	size_t nmaps;

	/* A file deleted or replaced on disk since (a package upgrade: maps
	 * say "path (deleted)") is still open in the target:
	 * /proc/PID/map_files/START-END reaches the very file it runs. */
	if (len <= dl || strcmp(target_path + len - dl, deleted) != 0)
		return pyx_target_path(t, target_path, buf, n);
	maps = pyx_target_maps(t, &nmaps);
	for (size_t i = 0; i < nmaps; i++)
		if (strcmp(maps[i].path, target_path) == 0 &&
		    (!lowest || maps[i].offset < lowest->offset))
			lowest = &maps[i];
	if (!lowest || snprintf(buf, n, "/proc/%d/map_files/%" PRIx64 "-%" PRIx64,
				(int)pyx_target_pid(t), lowest->start,
				lowest->end) >= (int)n)
		return pyx_err_set(PYX_E_IO, "%s: cannot reach the deleted file",
				   target_path);
	return 0;
}

int pyx_target_open_file(const struct pyx_target *t, const char *path,
			 unsigned flags, int *fd)
{
	char local[PATH_MAX + 64];
	struct stat st;
	int err;

	*fd = -1;
	if (path[0] == '/') {
		if ((err = pyx_target_path(t, path, local, sizeof(local))))
			return err;
	} else if (snprintf(local, sizeof(local), "/proc/%d/cwd/%s",
			    (int)pyx_target_pid(t), path) >= (int)sizeof(local)) {
		return pyx_err_set(PYX_E_IO, "%s: path too long", path);
	}
	*fd = open(local, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
	if (*fd < 0)
		return pyx_err_set(PYX_E_IO, "open %s: %s", path, strerror(errno));
	if ((flags & PYX_OPEN_REGULAR) &&
	    (fstat(*fd, &st) != 0 || !S_ISREG(st.st_mode))) {
		close(*fd);
		*fd = -1;
		return pyx_err_set(PYX_E_IO, "%s: not a regular file", path);
	}
	return 0;
}

int pyx_target_open_elf(const struct pyx_target *t, const char *target_path,
			struct pyx_elf **out)
{
	char local[PATH_MAX + 32];
	pyx_addr_t bias;
	int err;

	*out = NULL;
	if ((err = pyx_target_local_path(t, target_path, local, sizeof(local))))
		return err;
	if ((err = pyx_elf_open(local, 0, out)))
		return err;
	if ((err = pyx_elf_bias(*out, t, target_path, &bias))) {
		pyx_elf_free(*out);
		*out = NULL;
	}
	return err;
}

/* A debug file, by build-id or .gnu_debuglink, under
 * the given directory, the target's /usr/lib/debug and ours. */
int pyx_target_find_debug_file(const struct pyx_target *t,
			       const struct pyx_elf *elf,
			       const char *target_path, const char *debug_dir,
			       char *out, size_t n, char *searched,
			       size_t sn)
{
	char dirs[3][PATH_MAX], link[256], bindir[PATH_MAX];
	char bid[64] = "";
	size_t nd = 0, used = 0;
	char *slash;

	if (debug_dir)
		snprintf(dirs[nd++], PATH_MAX, "%s", debug_dir);
	pyx_elf_build_id(elf, bid, sizeof(bid));
	if (pyx_target_path(t, "/usr/lib/debug", dirs[nd], PATH_MAX) == 0)
		nd++;
	snprintf(dirs[nd++], PATH_MAX, "/usr/lib/debug");
	pyx_elf_debuglink(elf, link, sizeof(link));
	snprintf(bindir, sizeof(bindir), "%s", target_path);
	slash = strrchr(bindir, '/');
	if (slash)
		*slash = '\0';

	for (size_t i = 0; i < nd + 1; i++) {
		char cand[3][PATH_MAX + 400];
		size_t nc = 0;

		if (i < nd && strlen(bid) > 2) {
			snprintf(cand[nc++], sizeof(cand[0]), "%s/.build-id/%.2s/%s.debug",
				 dirs[i], bid, bid + 2);
			if (link[0] &&
			    snprintf(cand[nc], sizeof(cand[0]), "%s%s/%s", dirs[i],
				     bindir, link) < (int)sizeof(cand[0]))
				nc++;
		} else if (i == nd && link[0]) {
			/* Beside the binary, as gdb looks. */
			char local[PATH_MAX];

			if (pyx_target_path(t, bindir, local, sizeof(local)) == 0) {
				snprintf(cand[nc++], sizeof(cand[0]), "%s/%s", local, link);
				snprintf(cand[nc++], sizeof(cand[0]), "%s/.debug/%s",
					 local, link);
			}
		}
		for (size_t c = 0; c < nc; c++) {
			struct pyx_elf *e;
			char got[64] = "";

			if (used < sn)
				used += (size_t)snprintf(searched + used, sn - used,
							 "%s%s", used ? ", " : "",
							 cand[c]);
			if (pyx_elf_open(cand[c], 0, &e))
				continue;
			pyx_elf_build_id(e, got, sizeof(got));
			if (pyx_elf_has_dwarf(e) && (!bid[0] || strcmp(got, bid) == 0) &&
			    snprintf(out, n, "%s", cand[c]) < (int)n) {
				pyx_elf_free(e);
				pyx_err_clear();
				return 0;
			}
			pyx_elf_free(e);
		}
	}
	pyx_err_clear();
	return -PYX_E_NO_DEBUG_INFO;
}

