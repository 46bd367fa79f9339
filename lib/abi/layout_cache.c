/* A per-user cache of DWARF-derived layouts, keyed by build-id and the
 * DWARF file's identity (layout_cache.h). */
#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"
#include "layout_cache.h"

#define CACHE_MAGIC "pyxray-layout-cache 3"

/* A hash of what the library asks of a layout (every entry's name, struct
 * and member path): a cached layout made for another field list, or for
 * the same names with other paths, is not this one. */
static uint64_t spec_hash(void)
{
	uint64_t h = 1469598103934665603ull; /* FNV-1a */

	for (size_t i = 0; i < PYX_L__COUNT; i++) {
		const char *parts[3] = { pyx_layout_name(i), pyx_layout_struct(i),
					 pyx_layout_member(i) };

		for (size_t k = 0; k < 3; k++) {
			for (const char *p = parts[k] ? parts[k] : ""; *p; p++)
				h = (h ^ (uint8_t)*p) * 1099511628211ull;
			h = (h ^ 0xff) * 1099511628211ull;
		}
	}
	return h;
}

static bool cache_path(const char *build_id, char *buf, size_t n)
{
	const char *dir = getenv("PYX_CACHE_DIR"), *xdg, *home;
	char base[4096];

	if (getenv("PYX_NO_LAYOUT_CACHE") || !build_id || strlen(build_id) < 8 ||
	    strspn(build_id, "0123456789abcdef") != strlen(build_id))
		return false;
	if (dir)
		snprintf(base, sizeof(base), "%s", dir);
	else if ((xdg = getenv("XDG_CACHE_HOME")) && xdg[0] == '/')
		snprintf(base, sizeof(base), "%s/pyxray", xdg);
	else if ((home = getenv("HOME")) && home[0] == '/')
		snprintf(base, sizeof(base), "%s/.cache/pyxray", home);
	else
		return false;
	return snprintf(buf, n, "%s/layout-%s", base, build_id) < (int)n;
}

/* The entry's first line: what the layout was read from. */
static bool cache_key(int fd, const char *build_id, char *buf, size_t n)
{
	struct stat st;

	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
		return false;
	/* Only a file no user but root can have made or changed: anyone
	 * else could give their DWARF another's build-id and inode-stable
	 * identity, and the entry would serve root's next run on another
	 * user's Python. */
	if (st.st_uid != 0 || (st.st_mode & (S_IWGRP | S_IWOTH)))
		return false;
	return snprintf(buf, n, "%s %s %016" PRIx64 " dev %jx ino %ju size "
			"%jd mtime %jd.%09ld\n", CACHE_MAGIC, build_id,
			spec_hash(), (uintmax_t)st.st_dev, (uintmax_t)st.st_ino,
			(intmax_t)st.st_size, (intmax_t)st.st_mtim.tv_sec,
			st.st_mtim.tv_nsec) < (int)n;
}

static bool load(struct pyx_layout *l, const char *file, const char *want)
{
	char line[256];
	bool seen[PYX_L__COUNT] = { false };
	size_t nseen = 0;
	struct stat st;
	FILE *f;
	int fd;

	fd = open(file, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return false;
	/* Ours, and only ours to change. */
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) ||
	    st.st_uid != geteuid() || (st.st_mode & (S_IWGRP | S_IWOTH)) ||
	    !(f = fdopen(fd, "r"))) {
		close(fd);
		return false;
	}
	if (!fgets(line, sizeof(line), f) || strcmp(line, want) != 0) {
		fclose(f);
		return false;
	}
	pyx_layout_init(l);
	while (fgets(line, sizeof(line), f)) {
		char name[64];
		long v;

		if (sscanf(line, "%63s %ld", name, &v) != 2 || v < INT32_MIN ||
		    v > INT32_MAX)
			continue;
		for (size_t i = 0; i < PYX_L__COUNT; i++)
			if (!seen[i] && strcmp(pyx_layout_name(i), name) == 0) {
				l->v[i] = (int32_t)v;
				seen[i] = true;
				nseen++;
			}
	}
	fclose(f);
	return nseen == PYX_L__COUNT;
}

void pyx_layout_cache_store(const struct pyx_layout *l,
			    const struct pyx_layout_cache_slot *slot)
{
	char tmp[4300], dir[4200], *slash;
	FILE *f;
	int fd;

	if (!slot || !slot->cacheable)
		return;
	snprintf(dir, sizeof(dir), "%s", slot->file);
	slash = strrchr(dir, '/');
	if (!slash)
		return;
	*slash = '\0';
	/* ~/.cache may not exist yet: make the two last levels at most. */
	slash = strrchr(dir, '/');
	if (slash) {
		*slash = '\0';
		mkdir(dir, 0700);
		*slash = '/';
	}
	if (mkdir(dir, 0700) && errno != EEXIST)
		return;
	if (snprintf(tmp, sizeof(tmp), "%s.%d", slot->file, (int)getpid()) >=
	    (int)sizeof(tmp))
		return;
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW,
		  0600);
	if (fd < 0)
		return;
	if (!(f = fdopen(fd, "w"))) {
		close(fd);
		unlink(tmp);
		return;
	}
	fputs(slot->key, f);
	for (size_t i = 0; i < PYX_L__COUNT; i++)
		fprintf(f, "%s %d\n", pyx_layout_name(i), l->v[i]);
	if (fclose(f) == 0 && rename(tmp, slot->file) == 0)
		return;
	unlink(tmp);
}

int pyx_layout_from_dwarf_cached(struct pyx_layout *l, int fd,
				 const char *path, const char *build_id,
				 bool *hit, struct pyx_layout_cache_slot *slot)
{
	*hit = false;
	memset(slot, 0, sizeof(*slot));
	slot->cacheable = cache_path(build_id, slot->file, sizeof(slot->file)) &&
			  cache_key(fd, build_id, slot->key, sizeof(slot->key));
	if (slot->cacheable && load(l, slot->file, slot->key)) {
		*hit = true;
		slot->cacheable = false; /* nothing to store */
		l->source = PYX_LAYOUT_FROM_DWARF;
		snprintf(l->source_file, sizeof(l->source_file), "%s", path);
		return 0;
	}
	return pyx_layout_from_dwarf_fd(l, fd, path);
}
