/* Unit tests of the error codes (lib/error.c, include/pyxray/error.h): the
 * one list gives every code a message, a hint and its own exit code, the
 * detail is bounded and per thread, and the CLI's usage lists every exit
 * code there is.
 */
#include <check.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pyxray/error.h"

#include "unit.h"

START_TEST(every_code_described)
{
	for (int e = 0; e < PYX_E__COUNT; e++) {
		ck_assert_ptr_nonnull(pyx_strerror(e));
		ck_assert_msg(pyx_strerror(e)[0], "code %d has no message", e);
		ck_assert_ptr_nonnull(pyx_errhint(e));
		ck_assert_msg(e == PYX_E_OK || pyx_errhint(e)[0],
			      "code %d (%s) has no hint", e, pyx_strerror(e));
		/* Library functions return the negative code. */
		ck_assert_str_eq(pyx_strerror(-e), pyx_strerror(e));
		ck_assert_int_eq(pyx_exit_code(-e), pyx_exit_code(e));
	}
	ck_assert_int_eq(pyx_exit_code(PYX_E_OK), 0);
	ck_assert_int_eq(pyx_exit_code(-PYX_E_USAGE), 2);
}
END_TEST

START_TEST(exit_codes_distinct)
{
	for (int a = 0; a < PYX_E__COUNT; a++) {
		int c = pyx_exit_code(a);

		/* Not what a shell reports for a signal (128 + n), nor 77, the
		 * tests' "skip". */
		ck_assert_msg(c >= 0 && c < 126 && c != 77, "code %d exits %d",
			      a, c);
		for (int b = a + 1; b < PYX_E__COUNT; b++)
			ck_assert_msg(pyx_exit_code(b) != c, "codes %d and %d both "
				      "exit %d", a, b, c);
	}
}
END_TEST

START_TEST(unknown_code_is_internal)
{
	ck_assert_str_eq(pyx_strerror(PYX_E__COUNT), pyx_strerror(PYX_E_INTERNAL));
	ck_assert_str_eq(pyx_strerror(-1000), pyx_strerror(PYX_E_INTERNAL));
	ck_assert_int_eq(pyx_exit_code(12345), pyx_exit_code(PYX_E_INTERNAL));
	ck_assert_str_eq(pyx_errhint(-PYX_E__COUNT), pyx_errhint(PYX_E_INTERNAL));
}
END_TEST

START_TEST(detail_set_and_clear)
{
	char big[2048];

	ck_assert_int_eq(pyx_err_set(PYX_E_IO, "open %s: %d", "/x", 5),
			 -PYX_E_IO);
	ck_assert_str_eq(pyx_err_detail(), "open /x: 5");
	pyx_err_clear();
	ck_assert_str_eq(pyx_err_detail(), "");
	/* A long detail is cut, never overflows. */
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	ck_assert_int_eq(pyx_err_set(PYX_E_FORMAT, "%s", big), -PYX_E_FORMAT);
	ck_assert_uint_gt(strlen(pyx_err_detail()), 100);
	ck_assert_uint_lt(strlen(pyx_err_detail()), sizeof(big) - 1);
}
END_TEST

static void *set_in_thread(void *arg)
{
	pyx_err_set(PYX_E_TIMEOUT, "thread %s", (const char *)arg);
	return strcmp(pyx_err_detail(), "thread T") == 0 ? arg : NULL;
}

START_TEST(detail_per_thread)
{
	pthread_t th;
	void *ret = NULL;

	pyx_err_set(PYX_E_IO, "main");
	ck_assert_int_eq(pthread_create(&th, NULL, set_in_thread, "T"), 0);
	ck_assert_int_eq(pthread_join(th, &ret), 0);
	ck_assert_ptr_nonnull(ret);
	ck_assert_str_eq(pyx_err_detail(), "main");
}
END_TEST

/* cmd/main.c's usage ("Exit codes: 0 ok, 2 usage, ...") names every exit
 * code the list has. */
START_TEST(usage_lists_exit_codes)
{
	const char *dir = getenv("PYX_SOURCE_DIR");
	char path[4096], *text, *list;
	size_t n;
	FILE *f;

	if (!dir)
		dir = ".";
	snprintf(path, sizeof(path), "%s/cmd/main.c", dir);
	f = fopen(path, "r");
	ck_assert_msg(f != NULL, "cannot open %s", path);
	text = calloc(1, 1 << 16);
	ck_assert_ptr_nonnull(text);
	n = fread(text, 1, (1 << 16) - 1, f);
	fclose(f);
	text[n] = '\0';
	list = strstr(text, "Exit codes:");
	ck_assert_ptr_nonnull(list);
	for (int e = 0; e < PYX_E__COUNT; e++) {
		char want[16];
		int c = pyx_exit_code(e);

		snprintf(want, sizeof(want), " %d ", c);
		ck_assert_msg(strstr(list, want) != NULL ||
			      (snprintf(want, sizeof(want), "\"%d ", c),
			       strstr(list, want) != NULL),
			      "exit code %d (%s) is not in pyxray --help", c,
			      pyx_strerror(e));
	}
	free(text);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("error");
	TCase *tc = tcase_create("codes");

	tcase_add_test(tc, every_code_described);
	tcase_add_test(tc, exit_codes_distinct);
	tcase_add_test(tc, unknown_code_is_internal);
	tcase_add_test(tc, detail_set_and_clear);
	tcase_add_test(tc, detail_per_thread);
	tcase_add_test(tc, usage_lists_exit_codes);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return pyx_unit_run(suite());
}
