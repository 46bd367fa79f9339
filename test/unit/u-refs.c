/* Unit tests of lib/refs.c that need no process: the bounded edit
 * distance behind "did you mean" for unknown type names. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "pyxray/refs.h"

#include "unit.h"

START_TEST(distance_basic)
{
	ck_assert_uint_eq(pyx_refs_distance("Session", "Session", 3), 0);
	ck_assert_uint_eq(pyx_refs_distance("Sesion", "Session", 3), 1);
	ck_assert_uint_eq(pyx_refs_distance("MutDefalt", "MutDefault", 3), 1);
	ck_assert_uint_eq(pyx_refs_distance("dict", "list", 3), 2);
	ck_assert_uint_eq(pyx_refs_distance("", "abc", 3), 3);
	/* case does not count: users type class names loosely */
	ck_assert_uint_eq(pyx_refs_distance("session", "Session", 3), 0);
}
END_TEST

START_TEST(distance_bounded)
{
	/* Far apart in length: max + 1 at once, without the table. */
	ck_assert_uint_gt(pyx_refs_distance("a", "abcdefgh", 3), 3);
	ck_assert_uint_gt(pyx_refs_distance("kitten", "sitting", 2), 2);
	ck_assert_uint_eq(pyx_refs_distance("kitten", "sitting", 3), 3);
}
END_TEST

START_TEST(distance_long)
{
	char a[400], b[400];

	/* Longer than any type name: refused, not computed. */
	memset(a, 'a', sizeof(a) - 1);
	a[sizeof(a) - 1] = '\0';
	memcpy(b, a, sizeof(b));
	ck_assert_uint_gt(pyx_refs_distance(a, b, 3), 3);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("refs");
	TCase *tc = tcase_create("distance");

	tcase_add_test(tc, distance_basic);
	tcase_add_test(tc, distance_bounded);
	tcase_add_test(tc, distance_long);
	suite_add_tcase(s, tc);
	return pyx_unit_run(s);
}
