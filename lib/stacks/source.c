/* Source files of the target, cached: opened through the file resolver. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"
#include "pyxray/files.h"
#include "pyxray/target.h"
#include "pyxray/source.h"

#define MAX_SOURCE_BYTES (16u << 20)
#define MAX_FILES 256

struct source_file {
	char *name;   /* as the code object names it */
	char *text;   /* NULL: could not be read */
	char **lines; /* pointers into text */
	size_t nlines;
};

struct pyx_sources {
	const struct pyx_target *tgt;
	struct source_file files[MAX_FILES];
	size_t nfiles;
};

int pyx_sources_new(const struct pyx_target *tgt, struct pyx_sources **out)
{
	*out = calloc(1, sizeof(**out));
	if (!*out)
		return -PYX_E_NOMEM;
	(*out)->tgt = tgt;
	return 0;
}

void pyx_sources_free(struct pyx_sources *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->nfiles; i++) {
		free(s->files[i].name);
		free(s->files[i].text);
		free(s->files[i].lines);
	}
	free(s);
}

static void load(struct pyx_sources *s, struct source_file *f)
{
	struct stat st;
	size_t cap = 0, have = 0;
	int fd;

	/* The name comes from the target: resolved inside its root, opened
	 * only if the target itself could read it, and only if a regular
	 * file (a FIFO would block, a device act). */
	if (pyx_target_open_file(s->tgt, f->name,
				 PYX_OPEN_AS_TARGET | PYX_OPEN_REGULAR, &fd)) {
		pyx_err_clear();
		return;
	}
	if (fstat(fd, &st) || !S_ISREG(st.st_mode) ||
	    (size_t)st.st_size > MAX_SOURCE_BYTES ||
	    !(f->text = malloc((size_t)st.st_size + 1))) {
		close(fd);
		return;
	}
	while (have < (size_t)st.st_size) {
		ssize_t got = read(fd, f->text + have, (size_t)st.st_size - have);

		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0)
			break;
		have += (size_t)got;
	}
	close(fd);
	f->text[have] = '\0';
	for (char *p = f->text; p && *p;) {
		char *nl = strchr(p, '\n');

		if (f->nlines == cap) {
			size_t ncap = cap ? cap * 2 : 256;
			char **n = realloc(f->lines, ncap * sizeof(*n));

			if (!n)
				return;
			f->lines = n;
			cap = ncap;
		}
		f->lines[f->nlines++] = p;
		if (nl) {
			*nl = '\0';
			if (nl > p && nl[-1] == '\r')
				nl[-1] = '\0';
		}
		p = nl ? nl + 1 : NULL;
	}
}

const char *pyx_sources_line(struct pyx_sources *s, const char *file, int line)
{
	struct source_file *f = NULL;

	for (size_t i = 0; i < s->nfiles; i++)
		if (strcmp(s->files[i].name, file) == 0)
			f = &s->files[i];
	if (!f) {
		if (s->nfiles == MAX_FILES)
			return NULL;
		f = &s->files[s->nfiles];
		if (!(f->name = strdup(file)))
			return NULL;
		s->nfiles++;
		load(s, f);
	}
	if (line < 1 || (size_t)line > f->nlines)
		return NULL;
	return f->lines[line - 1];
}
