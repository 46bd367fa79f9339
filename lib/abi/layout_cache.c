/* A per-user cache of DWARF-derived layouts, keyed by build-id. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"
#include "layout_cache.h"

#define CACHE_MAGIC "pyxray-layout-cache 2"

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

static bool load(struct pyx_layout *l, const char *file, const char *build_id)
{
	char line[256], want[128];
	bool seen[PYX_L__COUNT] = { false };
	size_t nseen = 0;
	FILE *f = fopen(file, "r");

	if (!f)
		return false;
	snprintf(want, sizeof(want), "%s %s %016" PRIx64 "\n", CACHE_MAGIC,
		 build_id, spec_hash());
	if (!fgets(line, sizeof(line), f) || strcmp(line, want) != 0) {
		fclose(f);
		return false;
	}
	pyx_layout_init(l);
	while (fgets(line, sizeof(line), f)) {
		char name[64];
		long v;

		if (sscanf(line, "%63s %ld", name, &v) != 2)
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

static void store(const struct pyx_layout *l, const char *file,
		  const char *build_id)
{
	char tmp[4200], dir[4200], *slash;
	FILE *f;

	snprintf(dir, sizeof(dir), "%s", file);
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
	if (snprintf(tmp, sizeof(tmp), "%s.%d", file, (int)getpid()) >= (int)sizeof(tmp))
		return;
	f = fopen(tmp, "w");
	if (!f)
		return;
	fprintf(f, "%s %s %016" PRIx64 "\n", CACHE_MAGIC, build_id, spec_hash());
	for (size_t i = 0; i < PYX_L__COUNT; i++)
		fprintf(f, "%s %d\n", pyx_layout_name(i), l->v[i]);
	if (fclose(f) == 0 && rename(tmp, file) == 0)
		return;
	unlink(tmp);
}

int pyx_layout_from_dwarf_cached(struct pyx_layout *l, const char *path,
				 const char *build_id, bool *hit)
{
	char file[4200];
	bool cacheable = cache_path(build_id, file, sizeof(file));
	int err;

	*hit = false;
	if (cacheable && load(l, file, build_id)) {
		*hit = true;
		l->source = PYX_LAYOUT_FROM_DWARF;
		snprintf(l->source_file, sizeof(l->source_file), "%s", path);
		return 0;
	}
	err = pyx_layout_from_dwarf(l, path);
	if (!err && cacheable)
		store(l, file, build_id);
	return err;
}
