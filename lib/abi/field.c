/* Reading one member of a remote CPython struct (field.h). */
#include <string.h>

#include "field.h"

int pyx_read_field_n(struct pyx_python *py, pyx_addr_t addr,
		     enum pyx_layout_id id, size_t size, uint64_t *out)
{
	int32_t off = pyx_off(py, id);
	uint8_t b[8] = { 0 };
	int err;

	*out = 0; /* set on every path: callers' locals stay defined */
	if (off == PYX_OFF_NONE)
		return pyx_err_set(PYX_E_LAYOUT, "layout has no %s.%s",
				   pyx_layout_struct(id), pyx_layout_member(id));
	if (size > 8)
		return -PYX_E_INTERNAL;
	err = pyx_mem_read(py->mem, addr + (int64_t)off, b, size);
	if (err)
		return err;
	/* x86_64 and aarch64 are little-endian: a narrow field is the low bytes. */
	*out = 0;
	memcpy(out, b, size);
	return 0;
}

int pyx_read_field(struct pyx_python *py, pyx_addr_t addr,
		   enum pyx_layout_id id, uint64_t *out)
{
	return pyx_read_field_n(py, addr, id, 8, out);
}
