/* Source lines of the files a target runs, read as the target sees them
 * and only if the target itself could read them (pyx_target_open_file()
 * with PYX_OPEN_AS_TARGET): absolute paths inside its root (containers,
 * chroots), relative ones from its working directory.  Files are read once
 * and kept until free. */
#ifndef PYXRAY_SOURCE_H
#define PYXRAY_SOURCE_H

#ifdef __cplusplus
extern "C" {
#endif

struct pyx_sources;
struct pyx_target;

int pyx_sources_new(const struct pyx_target *tgt, struct pyx_sources **out);
void pyx_sources_free(struct pyx_sources *s);

/* Line number line (1-based) of file, without its newline, or NULL if the
 * file or line cannot be read.  Valid until pyx_sources_free(). */
const char *pyx_sources_line(struct pyx_sources *s, const char *file, int line);

#ifdef __cplusplus
}
#endif
#endif
