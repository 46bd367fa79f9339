/* Unit tests of lib/target/files.c (the file resolver) and the ELF checks of
 * lib/target/symbols.c: paths resolved inside a chroot'ed child's root (no
 * escape by symlink or ".."), opened with a child's credentials, debug
 * files found inside the root only and only with the right build-id, and
 * ELF files of another class or machine refused by name. */
#include <check.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/fsuid.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pyxray/error.h"
#include "pyxray/files.h"
#include "pyxray/symbols.h"
#include "pyxray/target.h"

#include "unit.h"

/* ---- helpers ---------------------------------------------------------- */

static char dir[256];  /* the test's scratch directory */
static char root[256]; /* dir/root: the child's root */
static char host[256]; /* dir/host/secret: outside the root */

static void put(const char *path, const char *text, mode_t mode)
{
	FILE *f = fopen(path, "w");

	ck_assert_msg(f != NULL, "%s: %s", path, strerror(errno));
	fputs(text, f);
	fclose(f);
	ck_assert_int_eq(chmod(path, mode), 0);
}

static void sub_n(char *out, size_t n, const char *base, const char *rel)
{
	ck_assert_int_lt(snprintf(out, n, "%s/%.200s", base, rel), (int)n);
}
#define sub(out, base, rel) sub_n(out, sizeof(out), base, rel)

/* dir/root/{app/good.py, app/link.py -> /app/good.py, app/evil -> host,
 * app/up -> ../../../..host, usr/lib/debug}, dir/host/secret. */
static void make_tree(void)
{
	char p[PATH_MAX], t[512];

	snprintf(dir, sizeof(dir), "/tmp/u-files-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	ck_assert_int_eq(chmod(dir, 0755), 0);
	sub(root, dir, "root");
	sub(p, dir, "host");
	ck_assert_int_eq(mkdir(root, 0755), 0);
	ck_assert_int_eq(mkdir(p, 0755), 0);
	sub(host, p, "secret");
	put(host, "HOST SECRET\n", 0644);
	sub(p, root, "app");
	ck_assert_int_eq(mkdir(p, 0755), 0);
	sub(p, root, "app/good.py");
	put(p, "GOOD\n", 0644);
	sub(p, root, "app/link.py");
	ck_assert_int_eq(symlink("/app/good.py", p), 0);
	sub(p, root, "app/evil");
	ck_assert_int_eq(symlink(host, p), 0);
	sub(p, root, "app/up");
	snprintf(t, sizeof(t), "../../../../../../..%s", host);
	ck_assert_int_eq(symlink(t, p), 0);
	sub(p, root, "app/loop");
	ck_assert_int_eq(symlink("/app/loop", p), 0);
}

static void remove_tree(void)
{
	char cmd[PATH_MAX + 16];

	if (dir[0] && strncmp(dir, "/tmp/u-files-", 13) == 0) {
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
		if (system(cmd) != 0)
			fprintf(stderr, "could not remove %s\n", dir);
	}
}

static void chroot_child(void *arg)
{
	(void)arg;
	if (chroot(root) != 0 || chdir("/app") != 0)
		_exit(2);
}

static void nobody_child(void *arg)
{
	(void)arg;
	if (setgroups(0, NULL) != 0 || setgid(65534) != 0 || setuid(65534) != 0)
		_exit(2);
}

static char *read_fd(int fd)
{
	static char buf[256];
	ssize_t n = read(fd, buf, sizeof(buf) - 1);

	close(fd);
	buf[n > 0 ? n : 0] = '\0';
	return buf;
}

/* 0 and the file's text, or the error. */
static int open_text(struct pyx_target *t, const char *path, unsigned flags,
		     char **text)
{
	int fd, err = pyx_target_open_file(t, path, flags, &fd);

	*text = NULL;
	if (err == 0) {
		ck_assert_int_ge(fd, 0);
		*text = read_fd(fd);
	} else {
		ck_assert_int_eq(fd, -1);
	}
	return err;
}

/* ---- ELF class and machine -------------------------------------------- */

static void write_ehdr(const char *path, int class, unsigned machine)
{
	unsigned char ident[EI_NIDENT] = { ELFMAG0, ELFMAG1, ELFMAG2, ELFMAG3,
					   (unsigned char)class, ELFDATA2LSB,
					   EV_CURRENT };
	FILE *f = fopen(path, "w");

	ck_assert_ptr_nonnull(f);
	if (class == ELFCLASS32) {
		Elf32_Ehdr h = { 0 };

		memcpy(h.e_ident, ident, EI_NIDENT);
		h.e_type = ET_DYN;
		h.e_machine = (Elf32_Half)machine;
		h.e_version = EV_CURRENT;
		h.e_ehsize = sizeof(h);
		ck_assert_int_eq(fwrite(&h, sizeof(h), 1, f), 1);
	} else {
		Elf64_Ehdr h = { 0 };

		memcpy(h.e_ident, ident, EI_NIDENT);
		h.e_type = ET_DYN;
		h.e_machine = (Elf64_Half)machine;
		h.e_version = EV_CURRENT;
		h.e_ehsize = sizeof(h);
		ck_assert_int_eq(fwrite(&h, sizeof(h), 1, f), 1);
	}
	fclose(f);
}

/* pyx_target_open_mapped(), for its name: the fd is closed at once. */
static int local_path(const struct pyx_target *t, const char *path, char *buf,
		      size_t n)
{
	int fd, err = pyx_target_open_mapped(t, path, &fd, buf, n);

	if (!err)
		close(fd);
	return err;
}

START_TEST(elf32_refused)
{
	char path[] = "/tmp/u-files-elf32-XXXXXX";
	struct pyx_elf *e = (struct pyx_elf *)1;
	int fd = mkstemp(path);

	ck_assert_int_ge(fd, 0);
	close(fd);
	write_ehdr(path, ELFCLASS32, EM_386);
	ck_assert_int_eq(pyx_elf_open(path, 0, &e), -PYX_E_UNSUPPORTED_VERSION);
	ck_assert_ptr_null(e);
	ck_assert_msg(strstr(pyx_err_detail(), "32-bit ELF: pyxray reads x86_64 "
				"targets only"), "detail: %s", pyx_err_detail());
	unlink(path);
}
END_TEST

START_TEST(other_machine_refused)
{
	char path[] = "/tmp/u-files-arm-XXXXXX";
	struct pyx_elf *e;
	int fd = mkstemp(path);

	ck_assert_int_ge(fd, 0);
	close(fd);
	write_ehdr(path, ELFCLASS64, EM_AARCH64);
	ck_assert_int_eq(pyx_elf_open(path, 0, &e), -PYX_E_UNSUPPORTED_VERSION);
	ck_assert_msg(strstr(pyx_err_detail(), "not x86_64"), "detail: %s",
		      pyx_err_detail());
	unlink(path);
}
END_TEST

START_TEST(x86_64_accepted)
{
	struct pyx_elf *e;

	ck_assert_int_eq(pyx_elf_open("/proc/self/exe", 0, &e), 0);
	pyx_elf_free(e);
}
END_TEST

/* ---- resolution inside the root --------------------------------------- */

START_TEST(inside_the_root)
{
	struct pyx_target *t;
	char *text, local[PATH_MAX + 64], want[PATH_MAX + 64], esc[512];
	pid_t pid;

	if (geteuid() != 0)
		return; /* chroot needs root */
	make_tree();
	pid = spawn(chroot_child, NULL);
	msleep(100);
	ck_assert_int_eq(pyx_target_open_pid(pid, &t), 0);

	/* Inside: by name, through an absolute symlink resolved in the root,
	 * relative to the cwd (/app), and ".." from the cwd. */
	ck_assert_int_eq(open_text(t, "/app/good.py", PYX_OPEN_REGULAR, &text), 0);
	ck_assert_str_eq(text, "GOOD\n");
	ck_assert_int_eq(open_text(t, "/app/link.py", PYX_OPEN_REGULAR, &text), 0);
	ck_assert_str_eq(text, "GOOD\n");
	ck_assert_int_eq(open_text(t, "good.py", PYX_OPEN_REGULAR, &text), 0);
	ck_assert_str_eq(text, "GOOD\n");
	ck_assert_int_eq(open_text(t, "../app/./good.py", 0, &text), 0);
	ck_assert_str_eq(text, "GOOD\n");
	ck_assert_int_eq(open_text(t, "/../../app/good.py", 0, &text), 0);
	ck_assert_str_eq(text, "GOOD\n");

	/* Out: an absolute symlink to the host, a relative one climbing out,
	 * "/.." and "../" past the root, a magic link, a loop. */
	ck_assert_int_eq(open_text(t, "/app/evil", 0, &text), -PYX_E_IO);
	ck_assert_int_eq(open_text(t, "/app/up", 0, &text), -PYX_E_IO);
	snprintf(esc, sizeof(esc), "/../../../../../../..%s", host);
	ck_assert_int_eq(open_text(t, esc, 0, &text), -PYX_E_IO);
	snprintf(esc, sizeof(esc), "../../../../../../..%s", host);
	ck_assert_int_eq(open_text(t, esc, 0, &text), -PYX_E_IO);
	ck_assert_int_eq(open_text(t, "/app/loop", 0, &text), -PYX_E_IO);
	ck_assert_msg(strstr(pyx_err_detail(), "symbolic links"), "detail: %s",
		      pyx_err_detail());
	/* Not a regular file. */
	ck_assert_int_eq(open_text(t, "/app", PYX_OPEN_REGULAR, &text), -PYX_E_IO);
	ck_assert_msg(strstr(pyx_err_detail(), "not a regular file"),
		      "detail: %s", pyx_err_detail());

	/* The walk (a path for libdw): no symlink left in it. */
	ck_assert_int_eq(local_path(t, "/app/link.py", local,
					       sizeof(local)), 0);
	snprintf(want, sizeof(want), "/proc/%d/root/app/good.py", (int)pid);
	ck_assert_str_eq(local, want);
	ck_assert_int_eq(local_path(t, "/app/../app//good.py", local,
					       sizeof(local)), 0);
	ck_assert_str_eq(local, want);
	ck_assert_int_ne(local_path(t, "/app/evil", local,
					       sizeof(local)), 0);
	ck_assert_int_ne(local_path(t, "/app/up", local,
					       sizeof(local)), 0);
	ck_assert_int_ne(local_path(t, "/app/loop", local,
					       sizeof(local)), 0);

	pyx_target_free(t);
	reap(pid);
	remove_tree();
}
END_TEST

/* ---- the target's credentials ----------------------------------------- */

START_TEST(as_the_target)
{
	struct pyx_target *t;
	char *text, secret[PATH_MAX], pub[PATH_MAX];
	pid_t pid;

	if (geteuid() != 0)
		return; /* pyxray can read what the target cannot: as root */
	make_tree();
	sub(secret, dir, "secret");
	put(secret, "ROOT ONLY\n", 0600);
	sub(pub, dir, "public");
	put(pub, "PUBLIC\n", 0644);
	pid = spawn(nobody_child, NULL);
	msleep(100);
	ck_assert_int_eq(pyx_target_open_pid(pid, &t), 0);

	ck_assert_int_eq(open_text(t, secret, PYX_OPEN_AS_TARGET | PYX_OPEN_REGULAR,
				   &text), -PYX_E_PERMISSION);
	ck_assert_int_eq(open_text(t, "/etc/shadow", PYX_OPEN_AS_TARGET, &text),
			 -PYX_E_PERMISSION);
	ck_assert_int_eq(open_text(t, pub, PYX_OPEN_AS_TARGET | PYX_OPEN_REGULAR,
				   &text), 0);
	ck_assert_str_eq(text, "PUBLIC\n");
	/* As pyxray (root): the same secret opens; our own credentials never
	 * changed. */
	ck_assert_int_eq(open_text(t, secret, PYX_OPEN_REGULAR, &text), 0);
	ck_assert_str_eq(text, "ROOT ONLY\n");
	ck_assert_int_eq(open_text(t, secret, PYX_OPEN_AS_TARGET, &text),
			 -PYX_E_PERMISSION);
	ck_assert_int_eq(setfsuid((uid_t)-1), 0);
	ck_assert_int_eq(access(secret, R_OK), 0);

	pyx_target_free(t);
	reap(pid);
	remove_tree();
}
END_TEST

/* The credentials used are those pinned when the target was opened or
 * last stopped, and an open is refused once the target's change (it
 * dropped to nobody here; a setuid exec would raise them) or once it is
 * not the process attached any more. */
static int drop_pipe[2];

static void child_drops_later(void *arg)
{
	char c;

	(void)arg;
	close(drop_pipe[1]);
	if (read(drop_pipe[0], &c, 1) != 1)
		_exit(2);
	if (setgroups(0, NULL) != 0 || setresgid(65534, 65534, 65534) != 0 ||
	    setresuid(65534, 65534, 65534) != 0)
		_exit(3);
}

static bool status_uid_is(pid_t pid, const char *want)
{
	char path[64], line[256];
	bool is = false;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	if (!(f = fopen(path, "r")))
		return false;
	while (fgets(line, sizeof(line), f))
		if (strncmp(line, "Uid:", 4) == 0)
			is = strstr(line, want) != NULL;
	fclose(f);
	return is;
}

START_TEST(as_the_target_pinned)
{
	struct pyx_target *t;
	char secret[PATH_MAX], pub[PATH_MAX], *text;
	pid_t pid;
	int i;

	if (geteuid() != 0)
		return;
	make_tree();
	sub(secret, dir, "secret.py");
	put(secret, "ROOT ONLY\n", 0600);
	sub(pub, dir, "public.py");
	put(pub, "PUBLIC\n", 0644);
	ck_assert_int_eq(pipe(drop_pipe), 0);
	pid = spawn(child_drops_later, NULL);
	close(drop_pipe[0]);
	msleep(50);
	ck_assert_int_eq(pyx_target_open_pid(pid, &t), 0);
	/* Pinned at open: root, as the target is. */
	ck_assert_int_eq(open_text(t, secret, PYX_OPEN_AS_TARGET, &text), 0);
	ck_assert_str_eq(text, "ROOT ONLY\n");
	/* It changes its credentials: nothing opens as the target until it
	 * is pinned again. */
	ck_assert_int_eq(write(drop_pipe[1], "x", 1), 1);
	close(drop_pipe[1]);
	for (i = 0; i < 200 && !status_uid_is(pid, "65534"); i++)
		msleep(10);
	ck_assert(status_uid_is(pid, "65534"));
	ck_assert_int_eq(open_text(t, pub, PYX_OPEN_AS_TARGET, &text),
			 -PYX_E_PERMISSION);
	ck_assert_msg(strstr(pyx_err_detail(), "changed credentials"),
		      "detail: %s", pyx_err_detail());
	/* A stop pins it again: now as nobody. */
	ck_assert_int_eq(pyx_target_stop(t, 0), 0);
	ck_assert_int_eq(pyx_target_resume(t), 0);
	ck_assert_int_eq(open_text(t, pub, PYX_OPEN_AS_TARGET, &text), 0);
	ck_assert_str_eq(text, "PUBLIC\n");
	ck_assert_int_eq(open_text(t, secret, PYX_OPEN_AS_TARGET, &text),
			 -PYX_E_PERMISSION);
	ck_assert_msg(!strstr(pyx_err_detail(), "changed credentials"),
		      "detail: %s", pyx_err_detail());
	/* Gone: not the process attached. */
	reap(pid);
	ck_assert_int_eq(open_text(t, pub, PYX_OPEN_AS_TARGET, &text),
			 -PYX_E_PERMISSION);
	ck_assert_msg(strstr(pyx_err_detail(), "no longer the process"),
		      "detail: %s", pyx_err_detail());
	pyx_target_free(t);
	remove_tree();
}
END_TEST

/* ---- debug files ------------------------------------------------------ */

static int copy_file(const char *from, const char *to)
{
	char cmd[2 * PATH_MAX + 16];

	snprintf(cmd, sizeof(cmd), "cp '%s' '%s'", from, to);
	return system(cmd);
}

START_TEST(debug_file_in_root_only)
{
	struct pyx_target *t;
	struct pyx_elf *self;
	char bid[64], p[PATH_MAX], exe[1024], local[PATH_MAX + 64];
	char searched[2048];
	ssize_t n;
	pid_t pid;

	if (geteuid() != 0)
		return;
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	ck_assert_int_gt(n, 0);
	exe[n] = '\0';
	ck_assert_int_eq(pyx_elf_open(exe, 0, &self), 0);
	pyx_elf_build_id(self, bid, sizeof(bid));
	if (strlen(bid) < 4 || !pyx_elf_has_dwarf(self)) {
		pyx_elf_free(self);
		return; /* needs a build-id and DWARF (RelWithDebInfo) */
	}
	make_tree();
	/* The root's /usr/lib/debug/.build-id/xx/yyy.debug is an absolute
	 * symlink to the host's copy of the right file: outside the root. */
	sub(p, root, "usr");
	ck_assert_int_eq(mkdir(p, 0755), 0);
	sub(p, root, "usr/lib");
	ck_assert_int_eq(mkdir(p, 0755), 0);
	sub(p, root, "usr/lib/debug");
	ck_assert_int_eq(mkdir(p, 0755), 0);
	sub(p, root, "usr/lib/debug/.build-id");
	ck_assert_int_eq(mkdir(p, 0755), 0);
	snprintf(p, sizeof(p), "%s/usr/lib/debug/.build-id/%.2s", root, bid);
	ck_assert_int_eq(mkdir(p, 0755), 0);
	snprintf(p, sizeof(p), "%s/usr/lib/debug/.build-id/%.2s/%s.debug", root,
		 bid, bid + 2);
	ck_assert_int_eq(symlink(exe, p), 0);
	pid = spawn(chroot_child, NULL);
	msleep(100);
	ck_assert_int_eq(pyx_target_open_pid(pid, &t), 0);
	ck_assert_int_eq(pyx_target_find_debug_file(t, self, "/bin/x", NULL, local,
						    sizeof(local), searched,
						    sizeof(searched)),
			 -PYX_E_NO_DEBUG_INFO);

	/* The right file inside the root is taken, named by a path without
	 * symlinks that reaches it. */
	ck_assert_int_eq(unlink(p), 0);
	ck_assert_int_eq(copy_file(exe, p), 0);
	ck_assert_int_eq(pyx_target_find_debug_file(t, self, "/bin/x", NULL, local,
						    sizeof(local), searched,
						    sizeof(searched)), 0);
	snprintf(p, sizeof(p), "/proc/%d/root/usr/lib/debug/.build-id/%.2s/%s.debug",
		 (int)pid, bid, bid + 2);
	ck_assert_str_eq(local, p);

	/* A file with DWARF and another build-id is never taken. */
	snprintf(p, sizeof(p), "%s/usr/lib/debug/.build-id/%.2s/%s.debug", root,
		 bid, bid + 2);
	ck_assert_int_eq(unlink(p), 0);
	ck_assert_int_eq(copy_file(exe, p), 0);
	{
		/* Change one byte of the build-id note in the copy. */
		struct pyx_elf *copy;
		char got[64];
		FILE *f;
		long off = -1;
		char *buf;
		size_t size;
		unsigned char want0 = 0;
		char hx[3] = { bid[0], bid[1], 0 };

		ck_assert_ptr_nonnull(f = fopen(p, "r+"));
		fseek(f, 0, SEEK_END);
		size = (size_t)ftell(f);
		fseek(f, 0, SEEK_SET);
		ck_assert_ptr_nonnull(buf = malloc(size));
		ck_assert_int_eq(fread(buf, 1, size, f), size);
		want0 = (unsigned char)strtoul(hx, NULL, 16);
		for (size_t i = 0; i + 20 < size; i++)
			if (memcmp(buf + i, "GNU", 4) == 0 &&
			    (unsigned char)buf[i + 4] == want0) {
				off = (long)i + 4;
				break;
			}
		ck_assert_int_ge(off, 0);
		fseek(f, off, SEEK_SET);
		fputc(want0 ^ 0xff, f);
		fclose(f);
		free(buf);
		ck_assert_int_eq(pyx_elf_open(p, 0, &copy), 0);
		pyx_elf_build_id(copy, got, sizeof(got));
		ck_assert_str_ne(got, bid);
		pyx_elf_free(copy);
	}
	ck_assert_int_eq(pyx_target_find_debug_file(t, self, "/bin/x", NULL, local,
						    sizeof(local), searched,
						    sizeof(searched)),
			 -PYX_E_NO_DEBUG_INFO);

	pyx_target_free(t);
	pyx_elf_free(self);
	reap(pid);
	remove_tree();
}
END_TEST

/* Without a build-id, a debug file is the one whose CRC-32 the binary's
 * .gnu_debuglink carries: another file with DWARF under that name (in the
 * target's root, or in a debug directory of ours) is not taken, nor a
 * debuglink name with "..". */
static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...)
{
	char cmd[4 * PATH_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	return system(cmd);
}

START_TEST(debug_file_crc_without_build_id)
{
	struct pyx_target *t;
	struct pyx_elf *main_elf, *e2;
	char exe[PATH_MAX], bin[PATH_MAX], dbgdir[PATH_MAX], p[PATH_MAX + 16];
	char local[PATH_MAX + 64], searched[2048], bid[64];
	ssize_t n;
	pid_t pid;

	if (geteuid() != 0 || system("objcopy --version >/dev/null 2>&1"))
		return;
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	ck_assert_int_gt(n, 0);
	exe[n] = '\0';
	ck_assert_int_eq(pyx_elf_open(exe, 0, &e2), 0);
	if (!pyx_elf_has_dwarf(e2)) {
		pyx_elf_free(e2);
		return; /* needs DWARF (RelWithDebInfo) */
	}
	pyx_elf_free(e2);
	make_tree();
	sub(bin, root, "bin");
	ck_assert_int_eq(mkdir(bin, 0755), 0);
	/* x.full: DWARF, no build-id; x.dbg its debug part; x linked to it
	 * (name and CRC); x2 linked to "x..dbg". */
	ck_assert_int_eq(sh("objcopy --remove-section .note.gnu.build-id '%s' "
			    "'%s/x.full' && objcopy --only-keep-debug "
			    "'%s/x.full' '%s/x.dbg' 2>/dev/null && objcopy --strip-debug "
			    "--add-gnu-debuglink='%s/x.dbg' '%s/x.full' '%s/x' "
			    "&& cp '%s/x.dbg' '%s/x..dbg' && objcopy "
			    "--strip-debug --add-gnu-debuglink='%s/x..dbg' "
			    "'%s/x.full' '%s/x2'", exe, bin, bin, bin, bin, bin,
			    bin, bin, bin, bin, bin, bin), 0);
	snprintf(p, sizeof(p), "%s/x", bin);
	ck_assert_int_eq(pyx_elf_open(p, 0, &main_elf), 0);
	pyx_elf_build_id(main_elf, bid, sizeof(bid));
	ck_assert_str_eq(bid, "");
	pid = spawn(chroot_child, NULL);
	msleep(100);
	ck_assert_int_eq(pyx_target_open_pid(pid, &t), 0);

	/* The right file beside the binary: taken. */
	ck_assert_int_eq(pyx_target_find_debug_file(t, main_elf, "/bin/x", NULL,
						    local, sizeof(local),
						    searched, sizeof(searched)),
			 0);
	ck_assert_msg(strstr(local, "/bin/x.dbg"), "local: %s", local);
	/* Another file with DWARF under its name: refused. */
	ck_assert_int_eq(sh("cp '%s/x.full' '%s/x.dbg'", bin, bin), 0);
	ck_assert_int_eq(pyx_target_find_debug_file(t, main_elf, "/bin/x", NULL,
						    local, sizeof(local),
						    searched, sizeof(searched)),
			 -PYX_E_NO_DEBUG_INFO);
	/* The same in a debug directory of ours (outside the root). */
	sub(dbgdir, dir, "dbg");
	ck_assert_int_eq(sh("mkdir -p '%s/bin' && cp '%s/x.full' '%s/bin/x.dbg'",
			    dbgdir, bin, dbgdir), 0);
	ck_assert_int_eq(pyx_target_find_debug_file(t, main_elf, "/bin/x",
						    dbgdir, local,
						    sizeof(local), searched,
						    sizeof(searched)),
			 -PYX_E_NO_DEBUG_INFO);
	ck_assert_int_eq(sh("cp '%s/x..dbg' '%s/bin/x.dbg'", bin, dbgdir), 0);
	ck_assert_int_eq(pyx_target_find_debug_file(t, main_elf, "/bin/x",
						    dbgdir, local,
						    sizeof(local), searched,
						    sizeof(searched)), 0);
	ck_assert_msg(strncmp(local, dbgdir, strlen(dbgdir)) == 0, "local: %s",
		      local);
	pyx_elf_free(main_elf);
	/* A debuglink name with "..": not even looked for. */
	snprintf(p, sizeof(p), "%s/x2", bin);
	ck_assert_int_eq(pyx_elf_open(p, 0, &main_elf), 0);
	ck_assert_int_eq(pyx_target_find_debug_file(t, main_elf, "/bin/x2",
						    NULL, local, sizeof(local),
						    searched, sizeof(searched)),
			 -PYX_E_NO_DEBUG_INFO);
	pyx_elf_free(main_elf);
	pyx_target_free(t);
	reap(pid);
	remove_tree();
}
END_TEST

/* ---- mapped files ----------------------------------------------------- */

#ifdef PYX_TEST_HOOKS
/* The target swaps root/app/dir for an absolute symlink to a host
 * directory: inside its root it points at nothing of the host's, but a name
 * under /proc/PID/root, opened by pyxray, follows it in pyxray's root. */
static void swap_dir(void *arg)
{
	char p[PATH_MAX], q[PATH_MAX];

	(void)arg;
	sub(p, root, "app/dir");
	sub(q, root, "app/dir.old");
	ck_assert_int_eq(rename(p, q), 0);
	sub(q, dir, "hostdir");
	ck_assert_int_eq(symlink(q, p), 0);
}

START_TEST(mapped_by_fd_not_name)
{
	struct pyx_target *t;
	char p[PATH_MAX], local[PATH_MAX + 64];
	int fd, lfd;
	pid_t pid;

	if (geteuid() != 0)
		return;
	make_tree();
	sub(p, root, "app/dir");
	ck_assert_int_eq(mkdir(p, 0755), 0);
	sub(p, root, "app/dir/x.so");
	put(p, "CHECKED-IN-ROOT\n", 0644);
	sub(p, dir, "hostdir");
	ck_assert_int_eq(mkdir(p, 0755), 0);
	sub(p, dir, "hostdir/x.so");
	put(p, "HOST-SWAPPED-IN\n", 0644);
	pid = spawn(chroot_child, NULL);
	msleep(100);
	ck_assert_int_eq(pyx_target_open_pid(pid, &t), 0);
	pyx_files_test_after_check(swap_dir, NULL);
	ck_assert_int_eq(pyx_target_open_mapped(t, "/app/dir/x.so", &fd, local,
						sizeof(local)), 0);
	pyx_files_test_after_check(NULL, NULL);
	/* What the caller reads is the file checked... */
	ck_assert_str_eq(read_fd(fd), "CHECKED-IN-ROOT\n");
	/* ...where its name, opened again (what libdw and the layout reader
	 * did with pyx_target_local_path()), now reaches the host's file. */
	lfd = open(local, O_RDONLY | O_CLOEXEC);
	ck_assert_int_ge(lfd, 0);
	ck_assert_str_eq(read_fd(lfd), "HOST-SWAPPED-IN\n");
	pyx_target_free(t);
	reap(pid);
	remove_tree();
}
END_TEST
#endif

START_TEST(mapped_file_of_a_chroot)
{
	struct pyx_target *t;
	struct pyx_elf *e;
	char exe[PATH_MAX], local[PATH_MAX + 64];
	size_t n;
	ssize_t len;
	pid_t pid;

	if (geteuid() != 0)
		return;
	len = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	ck_assert_int_gt(len, 0);
	exe[len] = '\0';
	make_tree();
	/* The child runs our executable, mapped by a path of our root that
	 * does not exist inside its root. */
	pid = spawn(chroot_child, NULL);
	msleep(100);
	ck_assert_int_eq(pyx_target_open_pid(pid, &t), 0);
	ck_assert_ptr_nonnull(pyx_target_maps(t, &n));
	ck_assert_int_gt(n, 0);
	ck_assert_int_eq(pyx_target_open_elf(t, exe, &e), 0);
	ck_assert_str_eq(pyx_elf_path(e), exe);
	pyx_elf_free(e);
	ck_assert_int_eq(local_path(t, exe, local, sizeof(local)), 0);
	ck_assert_msg(strstr(local, "/map_files/"), "local: %s", local);
	/* Not mapped, not inside: the real error, not "not Python". */
	ck_assert_int_eq(pyx_target_open_elf(t, "/no/such/file", &e), -PYX_E_IO);
	ck_assert_msg(strstr(pyx_err_detail(), "No such file"), "detail: %s",
		      pyx_err_detail());
	pyx_target_free(t);
	reap(pid);
	remove_tree();
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("files");
	TCase *tc = tcase_create("files");

	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, elf32_refused);
	tcase_add_test(tc, other_machine_refused);
	tcase_add_test(tc, x86_64_accepted);
	tcase_add_test(tc, inside_the_root);
	tcase_add_test(tc, as_the_target);
	tcase_add_test(tc, as_the_target_pinned);
	tcase_add_test(tc, debug_file_in_root_only);
	tcase_add_test(tc, mapped_file_of_a_chroot);
	tcase_add_test(tc, debug_file_crc_without_build_id);
#ifdef PYX_TEST_HOOKS
	tcase_add_test(tc, mapped_by_fd_not_name);
#endif
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return pyx_unit_run(suite());
}
