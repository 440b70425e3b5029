/* check_waiters: see tests/README.md for what each test covers. */
#include "testutil.h"

START_TEST(test_waiters_version)
{
    ck_assert_str_eq(cfutures_version(), CFUTURES_VERSION);
}
END_TEST

Suite *make_suite(void)
{
    Suite *s = suite_create("waiters");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_waiters_version);
    suite_add_tcase(s, tc);
    return s;
}
