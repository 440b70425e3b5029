/*
 * check_wire: frame encoding and decoding (white box: links the core
 * library). Every malformed header is refused before anything is sized
 * from it.
 */
#include "testutil.h"

#include <string.h>

#include "process/wire.h"

static void good_hdr(unsigned char *b, enum cf_wire_type type, uint64_t len)
{
    cf_wire_put_hdr(b, type, 0x0000000500000007ull, len);
}

START_TEST(test_wire_roundtrip)
{
    unsigned char b[CF_WIRE_HDR + CF_WIRE_TASK_FIXED + 3];
    good_hdr(b, CF_WIRE_TASK, CF_WIRE_TASK_FIXED + 3);
    cf_wire_put_task(b + CF_WIRE_HDR, 0x1122334455667788ull, 12345);
    memcpy(b + CF_WIRE_HDR + CF_WIRE_TASK_FIXED, "abc", 3);
    struct cf_wire_hdr h;
    ck_assert_int_eq(cf_wire_get_hdr(b, sizeof(b), &h), CF_WIRE_OK);
    ck_assert_int_eq(h.type, CF_WIRE_TASK);
    ck_assert(h.id == 0x0000000500000007ull);
    ck_assert(h.len == CF_WIRE_TASK_FIXED + 3);
    uint64_t fn;
    int64_t lim;
    const void *arg;
    size_t alen;
    ck_assert_int_eq(cf_wire_get_task(b + CF_WIRE_HDR, h.len, &fn, &lim, &arg, &alen),
                     CF_WIRE_OK);
    ck_assert(fn == 0x1122334455667788ull);
    ck_assert(lim == 12345);
    ck_assert_uint_eq(alen, 3);
    ck_assert(memcmp(arg, "abc", 3) == 0);

    unsigned char e[CF_WIRE_HDR + CF_WIRE_ERROR_FIXED + 2];
    good_hdr(e, CF_WIRE_ERROR, CF_WIRE_ERROR_FIXED + 2);
    cf_wire_put_error(e + CF_WIRE_HDR, -77);
    memcpy(e + CF_WIRE_HDR + CF_WIRE_ERROR_FIXED, "no", 2);
    ck_assert_int_eq(cf_wire_get_hdr(e, sizeof(e), &h), CF_WIRE_OK);
    int32_t code;
    const char *msg;
    size_t mlen;
    ck_assert_int_eq(cf_wire_get_error(e + CF_WIRE_HDR, h.len, &code, &msg, &mlen), 0);
    ck_assert_int_eq(code, -77);
    ck_assert_uint_eq(mlen, 2);
}
END_TEST

/* FAILED (MPI pool answers): round trip and length bounds. */
START_TEST(test_wire_failed)
{
    unsigned char b[CF_WIRE_HDR + CF_WIRE_FAILED_FIXED + 3];
    cf_wire_put_hdr(b, CF_WIRE_FAILED, 9, CF_WIRE_FAILED_FIXED + 3);
    cf_wire_put_failed(b + CF_WIRE_HDR, -10003, 4, -1, 11);
    memcpy(b + CF_WIRE_HDR + CF_WIRE_FAILED_FIXED, "seg", 3);
    struct cf_wire_hdr h;
    ck_assert_int_eq(cf_wire_get_hdr(b, sizeof(b), &h), CF_WIRE_OK);
    ck_assert_uint_eq(h.type, CF_WIRE_FAILED);
    int32_t st[4];
    const char *msg;
    size_t mlen;
    ck_assert_int_eq(cf_wire_get_failed(b + CF_WIRE_HDR, h.len, st, &msg, &mlen), 0);
    ck_assert_int_eq(st[0], -10003);
    ck_assert_int_eq(st[1], 4);
    ck_assert_int_eq(st[2], -1);
    ck_assert_int_eq(st[3], 11);
    ck_assert_uint_eq(mlen, 3);
    ck_assert(memcmp(msg, "seg", 3) == 0);
    cf_wire_put_hdr(b, CF_WIRE_FAILED, 9, CF_WIRE_FAILED_FIXED - 1);
    ck_assert_int_eq(cf_wire_get_hdr(b, sizeof(b), &h), CF_WIRE_ESHORT);
    cf_wire_put_hdr(b, CF_WIRE_FAILED, 9, CF_WIRE_FAILED_FIXED + CF_WIRE_MAX_MSG + 1);
    ck_assert_int_eq(cf_wire_get_hdr(b, sizeof(b), &h), CF_WIRE_ELEN);
    ck_assert_int_eq(cf_wire_get_failed(b + CF_WIRE_HDR, 3, st, &msg, &mlen),
                     CF_WIRE_ESHORT);
}
END_TEST

START_TEST(test_wire_truncated)
{
    unsigned char b[CF_WIRE_HDR];
    good_hdr(b, CF_WIRE_RESULT, 10);
    struct cf_wire_hdr h;
    for (size_t n = 0; n < CF_WIRE_HDR; n++)
        ck_assert_int_eq(cf_wire_get_hdr(b, n, &h), CF_WIRE_NEED_MORE);
    ck_assert_int_eq(cf_wire_get_hdr(NULL, 100, &h), CF_WIRE_NEED_MORE);
    ck_assert_int_eq(cf_wire_get_hdr(b, CF_WIRE_HDR, &h), CF_WIRE_OK);
    /* Payload shorter than the type needs. */
    good_hdr(b, CF_WIRE_TASK, CF_WIRE_TASK_FIXED - 1);
    ck_assert_int_eq(cf_wire_get_hdr(b, CF_WIRE_HDR, &h), CF_WIRE_ESHORT);
    good_hdr(b, CF_WIRE_ERROR, 3);
    ck_assert_int_eq(cf_wire_get_hdr(b, CF_WIRE_HDR, &h), CF_WIRE_ESHORT);
    uint64_t fn;
    int64_t lim;
    const void *arg;
    size_t alen;
    ck_assert_int_ne(cf_wire_get_task(b, 3, &fn, &lim, &arg, &alen), CF_WIRE_OK);
    int32_t code;
    const char *msg;
    size_t mlen;
    ck_assert_int_ne(cf_wire_get_error(b, 2, &code, &msg, &mlen), CF_WIRE_OK);
}
END_TEST

START_TEST(test_wire_absurd_lengths)
{
    unsigned char b[CF_WIRE_HDR];
    struct cf_wire_hdr h;
    good_hdr(b, CF_WIRE_RESULT, CF_WIRE_MAX_PAYLOAD + 1);
    ck_assert_int_eq(cf_wire_get_hdr(b, sizeof(b), &h), CF_WIRE_ELEN);
    good_hdr(b, CF_WIRE_RESULT, UINT64_MAX);
    ck_assert_int_eq(cf_wire_get_hdr(b, sizeof(b), &h), CF_WIRE_ELEN);
    good_hdr(b, CF_WIRE_RESULT, CF_WIRE_MAX_PAYLOAD);
    ck_assert_int_eq(cf_wire_get_hdr(b, sizeof(b), &h), CF_WIRE_OK);
    good_hdr(b, CF_WIRE_ERROR, CF_WIRE_ERROR_FIXED + CF_WIRE_MAX_MSG + 1);
    ck_assert_int_eq(cf_wire_get_hdr(b, sizeof(b), &h), CF_WIRE_ELEN);
    /* A negative limit in a task payload is refused. */
    unsigned char t[CF_WIRE_TASK_FIXED];
    memset(t, 0xff, sizeof(t));
    uint64_t fn;
    int64_t lim;
    const void *arg;
    size_t alen;
    ck_assert_int_ne(cf_wire_get_task(t, sizeof(t), &fn, &lim, &arg, &alen), CF_WIRE_OK);
}
END_TEST

START_TEST(test_wire_garbage)
{
    unsigned char b[CF_WIRE_HDR];
    struct cf_wire_hdr h;
    good_hdr(b, CF_WIRE_RESULT, 1);
    b[0] ^= 1;
    ck_assert_int_eq(cf_wire_get_hdr(b, sizeof(b), &h), CF_WIRE_EMAGIC);
    good_hdr(b, CF_WIRE_RESULT, 1);
    b[4] = 9;
    ck_assert_int_eq(cf_wire_get_hdr(b, sizeof(b), &h), CF_WIRE_EVERSION);
    good_hdr(b, CF_WIRE_RESULT, 1);
    b[6] = 0;
    ck_assert_int_eq(cf_wire_get_hdr(b, sizeof(b), &h), CF_WIRE_ETYPE);
    b[6] = CF_WIRE_TYPE_MAX + 1;
    ck_assert_int_eq(cf_wire_get_hdr(b, sizeof(b), &h), CF_WIRE_ETYPE);
    good_hdr(b, CF_WIRE_RESULT, 1);
    b[9] = 1;
    ck_assert_int_eq(cf_wire_get_hdr(b, sizeof(b), &h), CF_WIRE_EFLAGS);
    good_hdr(b, CF_WIRE_RESULT, 1);
    cf_wire_put_flags(b, CF_WIRE_F_EXPIRED);
    ck_assert_int_eq(cf_wire_get_hdr(b, sizeof(b), &h), CF_WIRE_OK);
    ck_assert_uint_eq(h.flags, CF_WIRE_F_EXPIRED);
    good_hdr(b, CF_WIRE_TASK, CF_WIRE_TASK_FIXED);
    cf_wire_put_flags(b, CF_WIRE_F_EXPIRED);
    ck_assert_int_eq(cf_wire_get_hdr(b, sizeof(b), &h), CF_WIRE_EFLAGS);
    good_hdr(b, CF_WIRE_RESULT, 1);
    b[13] = 1;
    ck_assert_int_eq(cf_wire_get_hdr(b, sizeof(b), &h), CF_WIRE_EFLAGS);
    /* NOTE: no payload, no flags. */
    good_hdr(b, CF_WIRE_NOTE, 0);
    ck_assert_int_eq(cf_wire_get_hdr(b, sizeof(b), &h), CF_WIRE_OK);
    ck_assert_uint_eq(h.type, CF_WIRE_NOTE);
    good_hdr(b, CF_WIRE_NOTE, 1);
    ck_assert_int_eq(cf_wire_get_hdr(b, sizeof(b), &h), CF_WIRE_ELEN);
    good_hdr(b, CF_WIRE_NOTE, 0);
    cf_wire_put_flags(b, CF_WIRE_F_EXPIRED);
    ck_assert_int_eq(cf_wire_get_hdr(b, sizeof(b), &h), CF_WIRE_EFLAGS);
    /* Pseudo-random bytes: never OK with a length past the maximum, never a
       crash. Counted, then asserted once: each ck_assert is a write to
       Check's parent (its last-passing point), 200,000 of them took over
       the case's limit in an ASan run on a loaded machine. */
    uint64_t x = 88172645463325252ull;
    int too_long = 0, unnamed = 0;
    for (int round = 0; round < 100000; round++) {
        for (size_t i = 0; i < sizeof(b); i++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            b[i] = (unsigned char)x;
        }
        if (round & 1)
            memcpy(b, "CFWP\1\0", 6); /* get past the magic sometimes */
        int rc = cf_wire_get_hdr(b, (size_t)(x % (CF_WIRE_HDR + 1)), &h);
        too_long += rc == CF_WIRE_OK && h.len > CF_WIRE_MAX_PAYLOAD;
        unnamed += !*cf_wire_strerror(rc);
    }
    ck_assert_int_eq(too_long, 0);
    ck_assert_int_eq(unnamed, 0);
}
END_TEST

/*
 * RESULTS (a map chunk's answers): each answer is padded so that its bytes
 * start at a multiple of CF_WIRE_ALIGN from the payload, whatever the
 * lengths before it (an odd error message included); a missing pad is short.
 */
START_TEST(test_wire_results_aligned)
{
    unsigned char pl[256];
    memset(pl, 0, sizeof(pl));
    const char *ans[] = {"a", "seven", "", "0123456789abcdefg"};
    uint32_t kinds[] = {0, 1, 0, 0};
    cf_wire_put_count(pl, 4);
    uint64_t off = CF_WIRE_RESULTS_FIXED;
    for (int i = 0; i < 4; i++) {
        size_t n = strlen(ans[i]);
        cf_wire_put_answer(pl + off, kinds[i], (int32_t)i, n);
        memcpy(pl + off + CF_WIRE_ANSWER_HDR, ans[i], n);
        off += CF_WIRE_ANSWER_HDR + CF_WIRE_PAD(n);
    }
    uint64_t len = off, count;
    ck_assert_int_eq(cf_wire_get_count(pl, len, &count), CF_WIRE_OK);
    ck_assert_uint_eq(count, 4);
    off = CF_WIRE_RESULTS_FIXED;
    for (int i = 0; i < 4; i++) {
        uint32_t kind;
        int32_t code;
        const void *d;
        size_t dlen;
        ck_assert_int_eq(cf_wire_next_answer(pl, len, &off, &kind, &code, &d, &dlen),
                         CF_WIRE_OK);
        ck_assert_uint_eq(kind, kinds[i]);
        ck_assert_int_eq(code, i);
        ck_assert_uint_eq(dlen, strlen(ans[i]));
        if (dlen) {
            ck_assert_int_eq(memcmp(d, ans[i], dlen), 0);
            ck_assert_uint_eq(((const unsigned char *)d - pl) % CF_WIRE_ALIGN, 0);
        }
    }
    ck_assert_uint_eq(off, len);
    /* The last answer without its padding: too short. */
    off = CF_WIRE_RESULTS_FIXED;
    uint32_t kind;
    int32_t code;
    const void *d;
    size_t dlen;
    ck_assert_int_eq(cf_wire_next_answer(pl, CF_WIRE_RESULTS_FIXED + CF_WIRE_ANSWER_HDR + 1,
                                         &off, &kind, &code, &d, &dlen),
                     CF_WIRE_ESHORT);
    /* The word after the count must be 0. */
    pl[8] = 1;
    ck_assert_int_eq(cf_wire_get_count(pl, len, &count), CF_WIRE_EFLAGS);
}
END_TEST

Suite *make_suite(void)
{
    Suite *s = suite_create("wire");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_wire_roundtrip);
    tcase_add_test(tc, test_wire_results_aligned);
    suite_add_tcase(s, tc);
    tc = tcase_create("limits");
    tcase_add_test(tc, test_wire_failed);
    tcase_add_test(tc, test_wire_truncated);
    tcase_add_test(tc, test_wire_absurd_lengths);
    tcase_add_test(tc, test_wire_garbage);
    suite_add_tcase(s, tc);
    return s;
}
