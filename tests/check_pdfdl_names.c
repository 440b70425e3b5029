/*
 * check_pdfdl_names: the pdf_downloader's URL-to-name rules (names.c) and
 * its request/outcome records (record.c), which must never let a name leave
 * the target folder and must round-trip every field.
 */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../samples/pdf_downloader/names.h"
#include "../samples/pdf_downloader/record.h"

static char name[PDFDL_NAME_MAX + 1];

static enum pdfdl_name_status from(const char *url)
{
    return pdfdl_name_from_url(url, name, sizeof(name));
}

/* A name is safe: no '/', not "." or "..", not hidden, not empty. */
static void assert_safe(void)
{
    ck_assert_ptr_null(strchr(name, '/'));
    ck_assert_int_ne(name[0], '.');
    ck_assert_int_ne(name[0], '\0');
    ck_assert_uint_le(strlen(name), PDFDL_NAME_MAX);
}

START_TEST(test_names_course_urls)
{
    /* Python: os.path.basename(url) */
    ck_assert_int_eq(from("http://www.irs.gov/pub/irs-pdf/f1040.pdf"), PDFDL_NAME_OK);
    ck_assert_str_eq(name, "f1040.pdf");
    ck_assert_int_eq(from("https://h:8080/a/b/f1040sb.pdf?download=1#page=2"),
                     PDFDL_NAME_OK);
    ck_assert_str_eq(name, "f1040sb.pdf");
    ck_assert_int_eq(from("http://h/f%20one.pdf"), PDFDL_NAME_OK);
    ck_assert_str_eq(name, "f one.pdf");
    ck_assert_int_eq(from("http://h/archive.tar.gz"), PDFDL_NAME_OK);
    ck_assert_str_eq(name, "archive.tar.gz");
}
END_TEST

START_TEST(test_names_parsed_by_libcurl)
{
    /* The corner cases libcurl's URL parser knows: userinfo, IPv6 hosts,
     * ports, dot segments, fragments, a guessed scheme, spaces. */
    ck_assert_int_eq(from("https://user:p%40ss@h:443/x/y.pdf?q=/z.txt#/frag.doc"),
                     PDFDL_NAME_OK);
    ck_assert_str_eq(name, "y.pdf");
    ck_assert_int_eq(from("http://[::1]:8080/a/f1040.pdf"), PDFDL_NAME_OK);
    ck_assert_str_eq(name, "f1040.pdf");
    ck_assert_int_eq(from("http://h/a/./b/../c.pdf"), PDFDL_NAME_OK);
    ck_assert_str_eq(name, "c.pdf");
    ck_assert_int_eq(from("http://h/../../etc/passwd.pdf"), PDFDL_NAME_OK);
    ck_assert_str_eq(name, "passwd.pdf");
    ck_assert_int_eq(from("http://h/x.pdf#/evil.txt"), PDFDL_NAME_OK);
    ck_assert_str_eq(name, "x.pdf");
    ck_assert_int_eq(from("h.example.com/dir/f.pdf"), PDFDL_NAME_OK);
    ck_assert_str_eq(name, "f.pdf");
    ck_assert_int_eq(from("http://h/two words.pdf"), PDFDL_NAME_OK);
    ck_assert_str_eq(name, "two words.pdf");
    /* %2F is decoded inside the last segment, never split on. */
    ck_assert_int_eq(from("http://h/dir/a%2Fb.pdf"), PDFDL_NAME_OK);
    ck_assert_str_eq(name, "a_b.pdf");
}
END_TEST

START_TEST(test_names_no_extension)
{
    /* Python: raise RuntimeError("URL does not contain an extension") */
    const char *bad[] = {"http://h/f1040", "http://h/", "http://h", "http://h/dir/",
                         "http://h/f1040.", "http://h/.pdf", "http://h/..",
                         "http://h/%2e%2e", "http://h/%2e%2e%2f", "http://h/x?f=a.pdf",
                         "http://h.example.com", "http://h/a.pdf/", "a.pdf"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ck_assert_msg(from(bad[i]) == PDFDL_NAME_NO_EXTENSION, "%s gave %s", bad[i], name);
    }
    ck_assert_int_eq(pdfdl_name_from_url(NULL, name, sizeof(name)),
                     PDFDL_NAME_NO_EXTENSION);
    /* What libcurl refuses to parse gives no name at all. */
    const char *bad_urls[] = {"", "http://[::1/x.pdf", "http://h:99999/x.pdf",
                              "http://h/a\x01b.pdf", "/just/a/path.pdf"};
    for (size_t i = 0; i < sizeof(bad_urls) / sizeof(bad_urls[0]); i++)
        ck_assert_msg(from(bad_urls[i]) == PDFDL_NAME_BAD_URL, "%s gave %s", bad_urls[i],
                      name);
    ck_assert_int_eq(pdfdl_name_from_url("http://h/a.pdf", name, 10), PDFDL_NAME_TOO_SMALL);
}
END_TEST

START_TEST(test_names_hostile)
{
    ck_assert_int_eq(from("http://h/%2e%2e%2fetc%2fpasswd.pdf"), PDFDL_NAME_OK);
    ck_assert_str_eq(name, "___etc_passwd.pdf");
    ck_assert_int_eq(from("http://h/%2E%2E%5Cx.pdf"), PDFDL_NAME_OK);
    ck_assert_str_eq(name, "___x.pdf");
    ck_assert_int_eq(from("http://h/.bashrc.pdf"), PDFDL_NAME_OK);
    ck_assert_str_eq(name, "_bashrc.pdf");
    ck_assert_int_eq(from("http://h/a%00b%0a.pdf"), PDFDL_NAME_OK);
    ck_assert_str_eq(name, "a_b_.pdf");
    ck_assert_int_eq(from("http://h/%2fx.pdf"), PDFDL_NAME_OK);
    ck_assert_str_eq(name, "_x.pdf");
    /* A broken escape is kept as it is. */
    ck_assert_int_eq(from("http://h/100%25%zz%4.pdf"), PDFDL_NAME_OK);
    ck_assert_str_eq(name, "100%%zz%4.pdf");
    assert_safe();
}
END_TEST

START_TEST(test_names_long)
{
    char url[2000] = "http://h/";
    memset(url + 9, 'a', 600);
    strcpy(url + 609, ".pdf");
    ck_assert_int_eq(from(url), PDFDL_NAME_OK);
    assert_safe();
    ck_assert_uint_eq(strlen(name), PDFDL_NAME_MAX);
    ck_assert_str_eq(name + PDFDL_NAME_MAX - 4, ".pdf");
    /* UTF-8 characters are never cut in half: 300 two-byte characters. */
    strcpy(url, "http://h/");
    for (int i = 0; i < 300; i++)
        strcat(url, "%C3%A9");
    strcat(url, ".pdf");
    ck_assert_int_eq(from(url), PDFDL_NAME_OK);
    assert_safe();
    size_t n = strlen(name);
    ck_assert_str_eq(name + n - 4, ".pdf");
    ck_assert_uint_eq((n - 4) % 2, 0);
    /* Longer than the decode buffer: the extension still comes from the end. */
    static char huge[4000] = "http://h/";
    memset(huge + 9, 'b', 3000);
    strcpy(huge + 3009, "%2Epdf");
    ck_assert_int_eq(from(huge), PDFDL_NAME_OK);
    assert_safe();
    ck_assert_uint_eq(strlen(name), PDFDL_NAME_MAX);
    ck_assert_str_eq(name + PDFDL_NAME_MAX - 4, ".pdf");
}
END_TEST

START_TEST(test_names_every_byte)
{
    /* Every byte, raw and escaped, around a ".pdf": always a safe name. */
    for (int c = 1; c < 256; c++) {
        char url[64];
        char raw = c == '#' || c == '?' ? 'x' : (char)c;
        snprintf(url, sizeof(url), "http://h/%%%02X%%%02X%c.pdf", c, c, raw);
        if (from(url) == PDFDL_NAME_OK)
            assert_safe();
    }
}
END_TEST

START_TEST(test_names_variants)
{
    char out[64];
    ck_assert_int_eq(pdfdl_name_variant("f1040.pdf", 0, out, sizeof(out)), 0);
    ck_assert_str_eq(out, "f1040.pdf");
    ck_assert_int_eq(pdfdl_name_variant("f1040.pdf", 1, out, sizeof(out)), 0);
    ck_assert_str_eq(out, "f1040.1.pdf");
    ck_assert_int_eq(pdfdl_name_variant("a.tar.gz", 12, out, sizeof(out)), 0);
    ck_assert_str_eq(out, "a.tar.12.gz");
    ck_assert_int_eq(pdfdl_name_variant("f1040.pdf", 1, out, 8), -1);
}
END_TEST

START_TEST(test_records_round_trip)
{
    struct pdfdl_request in = {"http://h/f.pdf?x=1", "/tmp/out dir", "/tmp/claims", "Ab12",
                               0.25, 7, true, false, true}, rq;
    size_t len;
    char *buf = pdfdl_request_encode(&in, &len);
    ck_assert_ptr_nonnull(buf);
    ck_assert_int_eq(pdfdl_request_decode(buf, len, &rq), 0);
    ck_assert_str_eq(rq.url, in.url);
    ck_assert_str_eq(rq.outdir, in.outdir);
    ck_assert_str_eq(rq.claims, in.claims);
    ck_assert_str_eq(rq.run, in.run);
    ck_assert(rq.timeout == 0.25);
    ck_assert_uint_eq(rq.retries, 7);
    ck_assert(rq.any_type && !rq.no_clobber && rq.resume);
    /* Truncated or padded records are refused, never read past. */
    for (size_t cut = 0; cut < len; cut++)
        ck_assert_int_eq(pdfdl_request_decode(buf, cut, &rq), -1);
    ck_assert_int_eq(pdfdl_outcome_decode(buf, len, &(struct pdfdl_outcome){0}), -1);
    free(buf);

    struct pdfdl_outcome o = {true, false, 0, "", "f1040.1.pdf", 206, 92160, 92160, 0, 3,
                              0.125}, back;
    buf = pdfdl_outcome_encode(&o, &len);
    ck_assert_ptr_nonnull(buf);
    ck_assert_int_eq(pdfdl_outcome_decode(buf, len, &back), 0);
    ck_assert_str_eq(back.name, "f1040.1.pdf");
    ck_assert_uint_eq(back.bytes, 92160);
    ck_assert_uint_eq(back.attempts, 3);
    ck_assert(back.ok && !back.kept);
    ck_assert_int_eq(back.status, 206);
    ck_assert_uint_eq(back.resumed_from, 92160);
    ck_assert(back.seconds == 0.125);
    for (size_t cut = 0; cut < len; cut++)
        ck_assert_int_eq(pdfdl_outcome_decode(buf, cut, &back), -1);
    free(buf);

    /* A failure keeps its words and what was kept for -c. */
    struct pdfdl_outcome bad = {false, false, 3, "body cut at 92,160 of 184,320 bytes", "",
                                200, 92160, 0, 92160, 1, 0.5};
    buf = pdfdl_outcome_encode(&bad, &len);
    ck_assert_ptr_nonnull(buf);
    ck_assert_int_eq(pdfdl_outcome_decode(buf, len, &back), 0);
    ck_assert(!back.ok);
    ck_assert_int_eq(back.code, 3);
    ck_assert_str_eq(back.why, bad.why);
    ck_assert_uint_eq(back.partial, 92160);
    free(buf);
}
END_TEST

Suite *make_suite(void)
{
    Suite *s = suite_create("pdfdl_names");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_names_course_urls);
    tcase_add_test(tc, test_names_no_extension);
    tcase_add_test(tc, test_names_parsed_by_libcurl);
    tcase_add_test(tc, test_names_hostile);
    tcase_add_test(tc, test_names_long);
    tcase_add_test(tc, test_names_every_byte);
    tcase_add_test(tc, test_names_variants);
    tcase_add_test(tc, test_records_round_trip);
    suite_add_tcase(s, tc);
    return s;
}
