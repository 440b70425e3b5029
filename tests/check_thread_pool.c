/* check_thread_pool: see tests/README.md for what each test covers. */
#include "testutil.h"

START_TEST(test_thread_pool_version)
{
    ck_assert_str_eq(cfutures_version(), CFUTURES_VERSION);
}
END_TEST

Suite *make_suite(void)
{
    Suite *s = suite_create("thread_pool");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_thread_pool_version);
    suite_add_tcase(s, tc);
    return s;
}
