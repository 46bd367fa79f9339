/* Unit tests of lib/target/core.c: a small core built here (an ELF header,
 * notes with two threads, the process and its mapped files, three
 * segments), read back: threads, registers, names, maps, memory in place,
 * what a segment left out (from a file that is not there: refused, with
 * the range and the reason), a truncated core; and hostile cores (every
 * truncation, every byte flipped, lying counts and ranges): an error or a
 * target, never a crash. */
#include <check.h>
#include <elf.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/user.h>

#include "core_private.h"
#include "pyxray/error.h"
#include "pyxray/files.h"
#include "pyxray/memory.h"
#include "pyxray/target.h"

#include "unit.h"

#define DATA_ADDR UINT64_C(0x7f0000000000)
#define FILE_ADDR UINT64_C(0x500000)
#define GAP_ADDR UINT64_C(0x600000)
#define FILE_NAME "/nonexistent/pyxray-u-core/libfake.so"

struct buf {
	uint8_t b[1 << 16];
	size_t len;
};

static size_t put(struct buf *o, const void *p, size_t n)
{
	size_t at = o->len;

	ck_assert_uint_le(o->len + n, sizeof(o->b));
	memcpy(o->b + at, p, n);
	o->len += n;
	return at;
}

static void note(struct buf *o, const char *name, uint32_t type,
		 const void *desc, uint32_t dsz)
{
	uint32_t nsz = (uint32_t)strlen(name) + 1, h[3] = { nsz, dsz, type };
	static const uint8_t pad[4];

	put(o, h, sizeof(h));
	put(o, name, nsz);
	put(o, pad, (4 - nsz % 4) % 4);
	put(o, desc, dsz);
	put(o, pad, (4 - dsz % 4) % 4);
}

/* The sample: threads 100 (rsp in the data segment) and 101, pid 100,
 * uid 1000, "fake"; a data segment of 8 KiB with a pattern, a file segment
 * whose one page is in the core and two are not (filesz < memsz), and a
 * range NT_FILE maps that no segment holds. */
static size_t make_core(struct buf *o, size_t *data_off)
{
	Elf64_Ehdr eh = { 0 };
	Elf64_Phdr ph[4] = { { 0 } };
	struct buf notes = { .len = 0 };
	uint8_t prs[336] = { 0 }, psi[136] = { 0 }, nf[512] = { 0 };
	uint64_t *w;
	size_t nfl;
	struct user_regs_struct r = { 0 };

	for (int t = 0; t < 2; t++) {
		int32_t tid = 100 + t;
		int16_t sig = 6;

		memset(&r, 0, sizeof(r));
		r.rsp = DATA_ADDR + 0x100 * (t + 1);
		r.fs_base = UINT64_C(0x7f00deadbe00) + (uint64_t)t;
		r.rip = UINT64_C(0x123456);
		memcpy(prs + 12, &sig, 2);
		memcpy(prs + 32, &tid, 4);
		memcpy(prs + 112, &r, sizeof(r));
		note(&notes, "CORE", NT_PRSTATUS, prs, sizeof(prs));
	}
	{
		uint32_t uid = 1000, gid = 1001;
		int32_t pid = 100;

		memcpy(psi + 16, &uid, 4);
		memcpy(psi + 20, &gid, 4);
		memcpy(psi + 24, &pid, 4);
		memcpy(psi + 40, "fake", 5);
		memcpy(psi + 56, "fake --arg", 11);
		note(&notes, "CORE", NT_PRPSINFO, psi, sizeof(psi));
	}
	w = (uint64_t *)nf;
	w[0] = 2;      /* count */
	w[1] = 4096;   /* page size */
	w[2] = FILE_ADDR; w[3] = FILE_ADDR + 3 * 4096; w[4] = 0;
	w[5] = GAP_ADDR; w[6] = GAP_ADDR + 4096; w[7] = 3;
	nfl = 8 * 8;
	memcpy(nf + nfl, FILE_NAME, sizeof(FILE_NAME));
	nfl += sizeof(FILE_NAME);
	memcpy(nf + nfl, FILE_NAME, sizeof(FILE_NAME));
	nfl += sizeof(FILE_NAME);
	note(&notes, "CORE", NT_FILE, nf, (uint32_t)nfl);

	memcpy(eh.e_ident, ELFMAG, SELFMAG);
	eh.e_ident[EI_CLASS] = ELFCLASS64;
	eh.e_ident[EI_DATA] = ELFDATA2LSB;
	eh.e_ident[EI_VERSION] = EV_CURRENT;
	eh.e_type = ET_CORE;
	eh.e_machine = EM_X86_64;
	eh.e_version = EV_CURRENT;
	eh.e_phoff = sizeof(eh);
	eh.e_ehsize = sizeof(eh);
	eh.e_phentsize = sizeof(Elf64_Phdr);
	eh.e_phnum = 3;
	o->len = 0;
	put(o, &eh, sizeof(eh));
	put(o, ph, 3 * sizeof(ph[0]));
	ph[0].p_type = PT_NOTE;
	ph[0].p_offset = put(o, notes.b, notes.len);
	ph[0].p_filesz = notes.len;
	o->len = (o->len + 4095) & ~(size_t)4095;
	ph[1].p_type = PT_LOAD;
	ph[1].p_flags = PF_R | PF_W;
	ph[1].p_vaddr = DATA_ADDR;
	ph[1].p_offset = o->len;
	ph[1].p_filesz = ph[1].p_memsz = 8192;
	*data_off = o->len;
	for (size_t i = 0; i < 8192; i++)
		o->b[o->len++] = (uint8_t)(i * 7);
	ph[2].p_type = PT_LOAD;
	ph[2].p_flags = PF_R | PF_X;
	ph[2].p_vaddr = FILE_ADDR;
	ph[2].p_offset = o->len;
	ph[2].p_filesz = 4096;
	ph[2].p_memsz = 3 * 4096;
	memset(o->b + o->len, 0xab, 4096);
	o->len += 4096;
	memcpy(o->b + sizeof(eh), ph, 3 * sizeof(ph[0]));
	return o->len;
}

static struct buf sample;

START_TEST(test_read_back)
{
	struct pyx_target *t;
	const struct pyx_core_info *ci;
	const struct pyx_map *maps;
	struct user_regs_struct r;
	struct pyx_mem *mem;
	const pid_t *tids;
	pyx_addr_t tls;
	uint8_t b[64];
	char comm[32];
	size_t n, off;
	int fd;

	make_core(&sample, &off);
	ck_assert_int_eq(pyx_core_open_buffer(sample.b, sample.len, &t), 0);
	ck_assert_int_eq(pyx_target_kind(t), PYX_TARGET_CORE);
	ck_assert_int_eq(pyx_target_pid(t), 100);
	ci = pyx_target_core_info(t);
	ck_assert_ptr_nonnull(ci);
	ck_assert_int_eq(ci->signal, 6);
	ck_assert_uint_eq(ci->uid, 1000);
	ck_assert_str_eq(ci->comm, "fake");
	ck_assert_str_eq(ci->args, "fake --arg");
	ck_assert(!ci->truncated);
	tids = pyx_target_threads(t, &n);
	ck_assert_uint_eq(n, 2);
	ck_assert_int_eq(tids[0], 100);
	ck_assert_int_eq(tids[1], 101);
	ck_assert_int_eq(pyx_target_thread_tls(t, 101, &tls), 0);
	ck_assert_uint_eq(tls, UINT64_C(0x7f00deadbe01));
	ck_assert_int_eq(pyx_target_thread_regs(t, 100, &r, sizeof(r)), 0);
	ck_assert_uint_eq(r.rsp, DATA_ADDR + 0x100);
	ck_assert_int_eq(pyx_target_thread_tls(t, 7, &tls), -PYX_E_NO_PROCESS);
	ck_assert_int_eq(pyx_target_thread_comm(t, 101, comm, sizeof(comm)), 0);
	ck_assert_str_eq(comm, "fake");
	/* Nothing to stop. */
	ck_assert_int_eq(pyx_target_stop(t, 0), 0);
	ck_assert_uint_eq(pyx_target_pause_ns(t), 0);
	ck_assert_int_eq(pyx_target_resume(t), 0);

	maps = pyx_target_maps(t, &n);
	ck_assert_uint_eq(n, 3);
	ck_assert_uint_eq(maps[0].start, FILE_ADDR);
	ck_assert_str_eq(maps[0].path, FILE_NAME);
	ck_assert(maps[0].x && !maps[0].w);
	ck_assert_uint_eq(maps[1].start, GAP_ADDR);
	ck_assert_uint_eq(maps[1].offset, 3 * 4096);
	ck_assert_str_eq(maps[2].path, "[stack]");

	mem = pyx_target_mem(t);
	ck_assert_int_eq(pyx_mem_read(mem, DATA_ADDR + 100, b, sizeof(b)), 0);
	ck_assert_int_eq(memcmp(b, sample.b + off + 100, sizeof(b)), 0);
	/* In place: the pointer is into the core. */
	ck_assert_ptr_nonnull(pyx_mem_snapshot_ptr(mem, DATA_ADDR, 8192));
	ck_assert_ptr_null(pyx_mem_snapshot_ptr(mem, DATA_ADDR, 8193));
	ck_assert_int_eq(pyx_mem_read(mem, FILE_ADDR + 10, b, 8), 0);
	ck_assert_uint_eq(b[0], 0xab);
	/* Past filesz: from the file, which is not there. */
	ck_assert_int_eq(pyx_mem_read(mem, FILE_ADDR + 4096, b, 8),
			 -PYX_E_BAD_MEMORY);
	ck_assert_ptr_nonnull(strstr(pyx_err_detail(), "is not in the core"));
	ck_assert_ptr_nonnull(strstr(pyx_err_detail(), FILE_NAME));
	ck_assert_int_eq(pyx_mem_read(mem, GAP_ADDR, b, 8), -PYX_E_BAD_MEMORY);
	ck_assert_int_eq(pyx_mem_read(mem, DATA_ADDR + 8192, b, 8),
			 -PYX_E_BAD_MEMORY);
	/* The resolver asks the core for its files. */
	ck_assert_int_eq(pyx_target_open_mapped(t, FILE_NAME, &fd, NULL, 0),
			 -PYX_E_IO);
	ck_assert_ptr_nonnull(strstr(pyx_err_detail(), "was not found"));
	pyx_target_free(t);
}
END_TEST

START_TEST(test_truncated)
{
	size_t off;

	make_core(&sample, &off);
	/* Every length: an error or a target, never a crash. */
	for (size_t len = 0; len < sample.len; len += len < 4096 ? 1 : 97) {
		struct pyx_target *t = NULL;
		int err = pyx_core_open_buffer(sample.b, len, &t);

		if (err) {
			ck_assert(err == -PYX_E_FORMAT || err == -PYX_E_NOMEM);
			continue;
		}
		ck_assert(pyx_target_core_info(t)->truncated);
		if (len < off + 8000 + 16) {
			uint8_t b[16];
			int rc = pyx_mem_read(pyx_target_mem(t), DATA_ADDR + 8000,
					      b, sizeof(b));

			ck_assert_int_eq(rc, -PYX_E_BAD_MEMORY);
			ck_assert_ptr_nonnull(strstr(pyx_err_detail(),
						     "truncated"));
		}
		pyx_target_free(t);
	}
}
END_TEST

START_TEST(test_flipped)
{
	static uint8_t copy[sizeof(sample.b)];
	size_t off;

	make_core(&sample, &off);
	/* The headers and notes: every byte, a few values each. */
	for (size_t i = 0; i < off && i < sample.len; i++) {
		static const uint8_t vals[] = { 0x00, 0xff, 0x80, 0x7f, 0x01 };

		for (size_t v = 0; v < sizeof(vals); v++) {
			struct pyx_target *t = NULL;

			memcpy(copy, sample.b, sample.len);
			copy[i] = vals[v];
			if (pyx_core_open_buffer(copy, sample.len, &t) == 0) {
				uint8_t b[64];
				size_t n;

				(void)pyx_mem_read(pyx_target_mem(t), DATA_ADDR, b,
						   sizeof(b));
				(void)pyx_mem_read(pyx_target_mem(t), FILE_ADDR +
						   4090, b, sizeof(b));
				(void)pyx_target_threads(t, &n);
				pyx_target_free(t);
			}
		}
	}
}
END_TEST

START_TEST(test_refused)
{
	Elf64_Ehdr *eh = (Elf64_Ehdr *)sample.b;
	Elf64_Phdr *ph;
	struct pyx_target *t;
	size_t off;

	make_core(&sample, &off);
	ph = (Elf64_Phdr *)(sample.b + eh->e_phoff);
	eh->e_type = ET_EXEC;
	ck_assert_int_eq(pyx_core_open_buffer(sample.b, sample.len, &t),
			 -PYX_E_FORMAT);
	ck_assert_ptr_nonnull(strstr(pyx_err_detail(), "not a core"));
	eh->e_type = ET_CORE;
	eh->e_machine = EM_AARCH64;
	ck_assert_int_eq(pyx_core_open_buffer(sample.b, sample.len, &t),
			 -PYX_E_UNSUPPORTED_VERSION);
	eh->e_machine = EM_X86_64;
	eh->e_phnum = 60000;
	ck_assert_int_eq(pyx_core_open_buffer(sample.b, sample.len, &t),
			 -PYX_E_FORMAT);
	ck_assert_ptr_nonnull(strstr(pyx_err_detail(), "program headers"));
	eh->e_phnum = 3;
	/* Overlapping segments. */
	ph[2].p_vaddr = DATA_ADDR + 4096;
	ck_assert_int_eq(pyx_core_open_buffer(sample.b, sample.len, &t),
			 -PYX_E_FORMAT);
	ck_assert_ptr_nonnull(strstr(pyx_err_detail(), "overlap"));
	ph[2].p_vaddr = FILE_ADDR;
	/* More in the file than in memory; an address space that wraps. */
	ph[1].p_filesz = 3 * 8192;
	ck_assert_int_eq(pyx_core_open_buffer(sample.b, sample.len, &t),
			 -PYX_E_FORMAT);
	ph[1].p_filesz = 8192;
	ph[1].p_vaddr = UINT64_MAX - 100;
	ck_assert_int_eq(pyx_core_open_buffer(sample.b, sample.len, &t),
			 -PYX_E_FORMAT);
	/* Not ELF at all. */
	ck_assert_int_eq(pyx_core_open_buffer("hello", 5, &t), -PYX_E_FORMAT);
	ck_assert_int_eq(pyx_target_open_core("/nonexistent/core", NULL, &t),
			 -PYX_E_IO);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("core");
	TCase *tc = tcase_create("core");

	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_read_back);
	tcase_add_test(tc, test_truncated);
	tcase_add_test(tc, test_flipped);
	tcase_add_test(tc, test_refused);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return pyx_unit_run(suite());
}
