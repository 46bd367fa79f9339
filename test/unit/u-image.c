/* Unit tests of lib/target/image.c: synthetic images, encoded and parsed
 * back, reads and the maps, the heap copy over an image, hostile files
 * (every truncation, every byte flipped, counts and ranges that lie), and
 * the walkers on a committed seed (test/fuzz/corpus). */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "reader.h"
#include "facts.h"
#include "image.h"
#include "pyxray/error.h"
#include "pyxray/memory.h"
#include "pyxray/stacks.h"
#include "pyxray/symbols.h"
#include "pyxray/target.h"

#include "unit.h"

#define RO_ADDR UINT64_C(0x400000)
#define RW_ADDR UINT64_C(0x7f0000001000)

static uint8_t ro[100], rw[8192];

static void sample_info(struct pyx_image_info *in)
{
	memset(in, 0, sizeof(*in));
	in->pid = 4242;
	in->major = 3;
	in->minor = 12;
	in->micro = 1;
	in->runtime = RW_ADDR + 64;
	ck_assert_int_eq(pyx_image_set_entry(in, "TS_NEXT", 8), 0);
	ck_assert_int_eq(pyx_image_set_entry(in, "OB_TYPE", 8), 0);
	ck_assert_int_eq(pyx_image_set_entry(in, "SZ_GC_HEAD", 16), 0);
	ck_assert_int_eq(pyx_image_add_sym(in, "PyUnicode_Type", RO_ADDR + 8), 0);
	ck_assert_int_eq(pyx_image_add_sym(in, "PyDict_Type", RO_ADDR + 16), 0);
}

/* A valid image: a read-only range, a writable one, two threads. */
static uint8_t *sample(size_t *len)
{
	struct pyx_image_info in;
	struct pyx_image_thread th[2] = { { 100, 0x7000 }, { 101, 0x8000 } };
	struct pyx_image_range r[2] = {
		{ RO_ADDR, sizeof(ro), PYX_IMAGE_R | PYX_IMAGE_X, ro },
		{ RW_ADDR, sizeof(rw), PYX_IMAGE_R | PYX_IMAGE_W, rw },
	};
	uint8_t *buf;

	for (size_t i = 0; i < sizeof(ro); i++)
		ro[i] = (uint8_t)i;
	for (size_t i = 0; i < sizeof(rw); i++)
		rw[i] = (uint8_t)(i * 7);
	sample_info(&in);
	ck_assert_int_eq(pyx_image_encode(&in, th, 2, r, 2, &buf, len), 0);
	return buf;
}

START_TEST(test_round_trip)
{
	struct pyx_image_info in, want;
	struct pyx_target *t;
	const struct pyx_map *maps;
	const pid_t *tids;
	pyx_addr_t tls;
	uint8_t b[16];
	size_t len, n;
	uint8_t *buf = sample(&len);

	ck_assert_int_eq(pyx_image_open_buffer(buf, len, &t, &in), 0);
	memset(buf, 0xee, len); /* the image keeps its own copy */
	free(buf);
	sample_info(&want);
	ck_assert_int_eq(in.pid, 4242);
	ck_assert_int_eq(pyx_target_pid(t), 4242);
	ck_assert_int_eq(pyx_target_kind(t), PYX_TARGET_IMAGE);
	ck_assert_int_eq(in.major * 100 + in.minor, 312);
	ck_assert_int_eq(in.micro, 1);
	ck_assert_uint_eq(in.runtime, RW_ADDR + 64);
	/* the entries come back sorted by name */
	ck_assert_uint_eq(in.nlayout, 3);
	ck_assert_str_eq(in.layout[0].name, "OB_TYPE");
	ck_assert_str_eq(in.layout[2].name, "TS_NEXT");
	for (size_t i = 0; i < want.nlayout; i++)
		ck_assert_int_eq(pyx_image_entry(&in, want.layout[i].name),
				 want.layout[i].value);
	ck_assert_uint_eq(pyx_image_sym(&in, "PyDict_Type"), RO_ADDR + 16);
	ck_assert_uint_eq(pyx_image_sym(&in, "PyList_Type"), 0);

	maps = pyx_target_maps(t, &n);
	ck_assert_uint_eq(n, 2);
	ck_assert_uint_eq(maps[0].start, RO_ADDR);
	ck_assert_uint_eq(maps[0].end, RO_ADDR + sizeof(ro));
	ck_assert(maps[0].r && !maps[0].w && maps[0].x);
	ck_assert(maps[1].r && maps[1].w && !maps[1].x && maps[1].p);
	ck_assert_str_eq(maps[1].path, "");

	tids = pyx_target_threads(t, &n);
	ck_assert_uint_eq(n, 2);
	ck_assert_int_eq(tids[1], 101);
	ck_assert_int_eq(pyx_target_thread_tls(t, 101, &tls), 0);
	ck_assert_uint_eq(tls, 0x8000);
	ck_assert_int_eq(pyx_target_thread_tls(t, 7, &tls), -PYX_E_NO_PROCESS);
	/* Stopping an image pauses nothing and succeeds. */
	ck_assert_int_eq(pyx_target_stop(t, 10), 0);
	ck_assert_int_eq(pyx_target_resume(t), 0);

	/* Reads: inside a range, across its end, in the gap. */
	ck_assert_int_eq(pyx_mem_read(pyx_target_mem(t), RO_ADDR + 90, b, 10), 0);
	ck_assert_int_eq(b[0], 90);
	ck_assert_int_eq(b[9], 99);
	ck_assert_int_eq(pyx_mem_read(pyx_target_mem(t), RO_ADDR + 95, b, 10),
			 -PYX_E_BAD_MEMORY);
	ck_assert_int_eq(pyx_mem_read(pyx_target_mem(t), RW_ADDR - 8, b, 8),
			 -PYX_E_BAD_MEMORY);
	ck_assert_int_eq(pyx_mem_read(pyx_target_mem(t), RW_ADDR + 4090, b, 16), 0);
	ck_assert_int_eq(b[0], (uint8_t)(4090 * 7));
	ck_assert_int_eq(b[15], (uint8_t)(4105 * 7));
	pyx_target_free(t);
}
END_TEST

/* The heap copy reads through the image's source: the writable range is
 * copied, the read-only one is still read from the image. */
START_TEST(test_snapshot)
{
	struct pyx_mem_snapshot_info si;
	struct pyx_target *t;
	struct pyx_mem *mem;
	const uint8_t *p;
	uint8_t b[4];
	size_t len;
	uint8_t *buf = sample(&len);

	ck_assert_int_eq(pyx_image_open_buffer(buf, len, &t, NULL), 0);
	free(buf);
	mem = pyx_target_mem(t);
	ck_assert_uint_eq(pyx_mem_snapshot_size(mem), sizeof(rw));
	ck_assert_int_eq(pyx_mem_snapshot(mem, 0, &si), 0);
	ck_assert_uint_eq(si.bytes, sizeof(rw));
	ck_assert(!si.truncated);
	p = pyx_mem_snapshot_ptr(mem, RW_ADDR + 100, 8);
	ck_assert_ptr_nonnull(p);
	ck_assert_int_eq(p[0], (uint8_t)(100 * 7));
	ck_assert_ptr_null(pyx_mem_snapshot_ptr(mem, RO_ADDR, 8));
	ck_assert_int_eq(pyx_mem_read(mem, RO_ADDR + 1, b, 4), 0);
	ck_assert_int_eq(b[3], 4);
	pyx_mem_snapshot_release(mem);
	pyx_target_free(t);
}
END_TEST

static int open_bytes(const uint8_t *b, size_t len)
{
	struct pyx_target *t = NULL;
	int err = pyx_image_open_buffer(b, len, &t, NULL);

	if (!err) {
		ck_assert_ptr_nonnull(t);
		pyx_target_free(t);
	} else {
		ck_assert_ptr_null(t);
	}
	return err;
}

/* Every prefix of a valid image is refused, as a format error. */
START_TEST(test_truncated)
{
	size_t len;
	uint8_t *buf = sample(&len);

	for (size_t n = 0; n < len; n++) {
		uint8_t *copy = malloc(n ? n : 1); /* ASan sees past the end */

		memcpy(copy, buf, n);
		ck_assert_int_eq(open_bytes(copy, n), -PYX_E_FORMAT);
		free(copy);
	}
	ck_assert_int_eq(open_bytes(buf, len), 0);
	free(buf);
}
END_TEST

/* Any byte flipped: accepted or refused, never a crash, never another
 * error than a format error. */
START_TEST(test_flipped)
{
	size_t len;
	uint8_t *buf = sample(&len);
	/* The bytes past the headers are memory: flipping them is valid. */
	size_t lim = len - sizeof(rw);

	for (size_t i = 0; i < lim; i++) {
		static const uint8_t vals[] = { 0x00, 0xff, 0x80, 0x01 };

		for (size_t k = 0; k < sizeof(vals); k++) {
			uint8_t old = buf[i];
			int err;

			buf[i] = old == vals[k] ? (uint8_t)~old : vals[k];
			err = open_bytes(buf, len);
			ck_assert_msg(err == 0 || err == -PYX_E_FORMAT,
				      "byte %zu: error %d", i, err);
			buf[i] = old;
		}
	}
	free(buf);
}
END_TEST

/* Build an image by hand: header with no syms/layout/threads, then the
 * given range records. */
struct rrec {
	uint64_t addr, len;
	uint32_t flags;
};

static size_t hand(uint8_t *out, uint32_t nranges, const struct rrec *r,
		   size_t nr, size_t data_len)
{
	size_t o = 0;
	uint32_t v = PYX_IMAGE_VERSION, zero = 0;
	int32_t hdr[4] = { 1, 3, 12, 0 };
	uint64_t runtime = 0x1000;

	memcpy(out + o, PYX_IMAGE_MAGIC, 8);
	o += 8;
	memcpy(out + o, &v, 4);
	o += 4;
	memcpy(out + o, hdr, 16);
	o += 16;
	memcpy(out + o, &runtime, 8);
	o += 8;
	for (int i = 0; i < 3; i++) { /* syms, layout, threads */
		memcpy(out + o, &zero, 4);
		o += 4;
	}
	memcpy(out + o, &nranges, 4);
	o += 4;
	for (size_t i = 0; i < nr; i++) {
		memcpy(out + o, &r[i].addr, 8);
		memcpy(out + o + 8, &r[i].len, 8);
		memcpy(out + o + 16, &r[i].flags, 4);
		o += 20;
		memset(out + o, 0xab, data_len);
		o += data_len;
	}
	return o;
}

START_TEST(test_lying_ranges)
{
	static uint8_t b[4096];
	struct rrec ok[2] = { { 0x1000, 16, 1 }, { 0x1010, 16, 3 } };
	struct rrec overlap[2] = { { 0x1000, 16, 1 }, { 0x1008, 16, 1 } };
	struct rrec unsorted[2] = { { 0x2000, 16, 1 }, { 0x1000, 16, 1 } };
	struct rrec wraps[1] = { { UINT64_MAX - 7, 16, 1 } };
	struct rrec huge[1] = { { 0x1000, UINT64_MAX, 1 } };
	struct rrec longer[1] = { { 0x1000, 17, 1 } };
	struct rrec flags[1] = { { 0x1000, 16, 8 } };
	struct rrec at_zero[1] = { { 0, 16, 1 } };
	struct rrec empty[1] = { { 0x1000, 0, 1 } };
	size_t n;

	/* Adjacent ranges are fine (disjoint). */
	n = hand(b, 2, ok, 2, 16);
	ck_assert_int_eq(open_bytes(b, n), 0);
	/* One byte more than the ranges: refused. */
	ck_assert_int_eq(open_bytes(b, n + 1), -PYX_E_FORMAT);
	n = hand(b, 2, overlap, 2, 16);
	ck_assert_int_eq(open_bytes(b, n), -PYX_E_FORMAT);
	n = hand(b, 2, unsorted, 2, 16);
	ck_assert_int_eq(open_bytes(b, n), -PYX_E_FORMAT);
	n = hand(b, 1, wraps, 1, 16);
	ck_assert_int_eq(open_bytes(b, n), -PYX_E_FORMAT);
	n = hand(b, 1, huge, 1, 16);
	ck_assert_int_eq(open_bytes(b, n), -PYX_E_FORMAT);
	n = hand(b, 1, longer, 1, 16);
	ck_assert_int_eq(open_bytes(b, n), -PYX_E_FORMAT);
	n = hand(b, 1, flags, 1, 16);
	ck_assert_int_eq(open_bytes(b, n), -PYX_E_FORMAT);
	n = hand(b, 1, at_zero, 1, 16);
	ck_assert_int_eq(open_bytes(b, n), -PYX_E_FORMAT);
	n = hand(b, 1, empty, 1, 0);
	ck_assert_int_eq(open_bytes(b, n), -PYX_E_FORMAT);
	/* A count the file cannot hold: refused before any allocation. */
	n = hand(b, UINT32_MAX, ok, 1, 16);
	ck_assert_int_eq(open_bytes(b, n), -PYX_E_FORMAT);
	n = hand(b, 3, ok, 2, 16);
	ck_assert_int_eq(open_bytes(b, n), -PYX_E_FORMAT);
}
END_TEST

START_TEST(test_layout_entries)
{
	struct pyx_image_info in;
	struct pyx_python_facts f;
	struct pyx_target *t;
	uint8_t *buf;
	size_t len, at;
	const char *name = pyx_layout_name(PYX_L_OB_TYPE);
	int32_t v;

	sample_info(&in);
	ck_assert_int_eq(pyx_image_encode(&in, NULL, 0, NULL, 0, &buf, &len), 0);
	/* Find the OB_TYPE entry's value, just after its name. */
	for (at = 0; at + strlen(name) < len; at++)
		if (buf[at] == strlen(name) &&
		    !memcmp(buf + at + 1, name, strlen(name)))
			break;
	ck_assert_uint_lt(at + strlen(name), len);
	at += 1 + strlen(name);
	v = PYX_IMAGE_MAX_OFFSET + 1;
	memcpy(buf + at, &v, 4);
	ck_assert_int_eq(open_bytes(buf, len), -PYX_E_FORMAT);
	v = -5;
	memcpy(buf + at, &v, 4);
	ck_assert_int_eq(open_bytes(buf, len), -PYX_E_FORMAT);
	v = PYX_OFF_NONE;
	memcpy(buf + at, &v, 4);
	ck_assert_int_eq(open_bytes(buf, len), 0);
	/* A name this pyxray does not know is skipped (a newer image). */
	v = 24;
	memcpy(buf + at, &v, 4);
	buf[at - 1] = 'Z';
	ck_assert_int_eq(pyx_image_open_buffer(buf, len, &t, &in), 0);
	pyx_image_python_facts(&in, &f);
	ck_assert_int_eq(f.layout.v[PYX_L_OB_TYPE], PYX_OFF_NONE);
	ck_assert_int_eq(f.layout.v[PYX_L_SZ_GC_HEAD], 16);
	pyx_target_free(t);
	free(buf);
}
END_TEST

START_TEST(test_encode_refuses)
{
	struct pyx_image_info in;
	struct pyx_image_range r[2] = {
		{ 0x1000, 16, PYX_IMAGE_R, ro },
		{ 0x1008, 16, PYX_IMAGE_R, ro },
	};
	uint8_t *buf;
	size_t len;

	sample_info(&in);
	ck_assert_int_eq(pyx_image_encode(&in, NULL, 0, r, 2, &buf, &len),
			 -PYX_E_USAGE);
	ck_assert_ptr_null(buf);
	ck_assert_int_eq(pyx_image_add_sym(&in, "", 1), -PYX_E_USAGE);
}
END_TEST

START_TEST(test_save_and_open_file)
{
	char path[] = "/tmp/u-image-XXXXXX";
	struct pyx_image_info in;
	struct pyx_image_range r = { 0x1000, sizeof(ro), PYX_IMAGE_R, ro };
	struct pyx_target *t;
	int fd = mkstemp(path);

	ck_assert_int_ge(fd, 0);
	close(fd);
	sample_info(&in);
	ck_assert_int_eq(pyx_image_save(path, &in, NULL, 0, &r, 1), 0);
	ck_assert_int_eq(pyx_image_open_file(path, &t, &in), 0);
	ck_assert_int_eq(in.pid, 4242);
	pyx_target_free(t);
	unlink(path);
	ck_assert_int_eq(pyx_image_open_file(path, &t, &in), -PYX_E_IO);
}
END_TEST

/* The walkers on a committed seed: the capture's stacks come back. */
START_TEST(test_seed_stacks)
{
	const char *top = getenv("PYX_SOURCE_DIR");
	char path[4096];
	struct pyx_image_info in;
	struct pyx_python_facts f = { 0 };
	struct pyx_stacks_opts so = { .max_depth = 64 };
	struct pyx_target *t;
	struct pyx_python *py;
	struct pyx_stacks *s;
	bool main_seen = false;

	snprintf(path, sizeof(path), "%s/test/fuzz/corpus/3.12/pyenv-3.12.1.img",
		 top ? top : ".");
	ck_assert_int_eq(pyx_image_open_file(path, &t, &in), 0);
	pyx_image_python_facts(&in, &f);
	ck_assert_int_eq(pyx_python_open_facts(t, &f, &py), 0);
	ck_assert_int_eq(pyx_image_empty_elf(&py->elf), 0);
	ck_assert_int_eq(pyx_stacks_collect(py, &so, &s), 0);
	ck_assert_uint_eq(s->nthreads, 2);
	for (size_t i = 0; i < s->nthreads; i++)
		for (size_t j = 0; j < s->threads[i].nframes; j++)
			main_seen |= !strcmp(s->threads[i].frames[j].function,
					     "main");
	ck_assert(main_seen);
	pyx_stacks_free(s);
	pyx_python_free(py);
	pyx_target_free(t);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("image");
	TCase *tc = tcase_create("image");

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_round_trip);
	tcase_add_test(tc, test_snapshot);
	tcase_add_test(tc, test_truncated);
	tcase_add_test(tc, test_flipped);
	tcase_add_test(tc, test_lying_ranges);
	tcase_add_test(tc, test_layout_entries);
	tcase_add_test(tc, test_encode_refuses);
	tcase_add_test(tc, test_save_and_open_file);
	tcase_add_test(tc, test_seed_stacks);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return pyx_unit_run(suite());
}
