/* Images' facts to the ABI layer's and back (facts.h). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "facts.h"

_Static_assert(PYX_IMAGE_NONE == PYX_OFF_NONE,
	       "an image's absent entry is the layout's");

/* The layout's names, sorted once: an image names its entries, so that it
 * stays readable when entries are added to PYX_LAYOUT_FIELDS. */
static uint16_t layout_order[PYX_L__COUNT];
static pthread_once_t layout_once = PTHREAD_ONCE_INIT;

static int cmp_layout_id(const void *a, const void *b)
{
	return strcmp(pyx_layout_name(*(const uint16_t *)a),
		      pyx_layout_name(*(const uint16_t *)b));
}

static void layout_sort(void)
{
	for (size_t i = 0; i < PYX_L__COUNT; i++)
		layout_order[i] = (uint16_t)i;
	qsort(layout_order, PYX_L__COUNT, sizeof(layout_order[0]),
	      cmp_layout_id);
}

/* The entry named name, or -1. */
static int layout_lookup(const char *name)
{
	size_t lo = 0, hi = PYX_L__COUNT;

	pthread_once(&layout_once, layout_sort);
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(name, pyx_layout_name(layout_order[mid]));

		if (c == 0)
			return layout_order[mid];
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return -1;
}

void pyx_image_python_facts(const struct pyx_image_info *in,
			    struct pyx_python_facts *f)
{
	f->major = in->major;
	f->minor = in->minor;
	f->micro = in->micro;
	f->runtime = in->runtime;
	pyx_layout_init(&f->layout);
	for (size_t i = 0; i < in->nlayout && i < PYX_IMAGE_MAX_LAYOUT; i++) {
		int id = layout_lookup(in->layout[i].name);

		if (id >= 0)
			f->layout.v[id] = in->layout[i].value;
	}
	f->layout.source = PYX_LAYOUT_FROM_NONE;
	snprintf(f->layout.source_file, sizeof(f->layout.source_file),
		 "(image)");
#define PYX_IMG_KT_(field, sym) f->types.field = pyx_image_sym(in, sym);
	PYX_KNOWN_TYPES(PYX_IMG_KT_)
#undef PYX_IMG_KT_
}

int pyx_image_info_from_facts(const struct pyx_python_facts *f, pid_t pid,
			      struct pyx_image_info *in)
{
	int err = 0;

	memset(in, 0, sizeof(*in));
	in->pid = pid;
	in->major = f->major;
	in->minor = f->minor;
	in->micro = f->micro;
	in->runtime = f->runtime;
	for (size_t i = 0; i < PYX_L__COUNT && !err; i++)
		if (f->layout.v[i] != PYX_OFF_NONE)
			err = pyx_image_set_entry(in,
				pyx_layout_name((enum pyx_layout_id)i),
				f->layout.v[i]);
#define PYX_IMG_KT_(field, sym)                                                \
	if (!err && f->types.field)                                            \
		err = pyx_image_add_sym(in, sym, f->types.field);
	PYX_KNOWN_TYPES(PYX_IMG_KT_)
#undef PYX_IMG_KT_
	return err;
}
