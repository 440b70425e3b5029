/*
 * fuzz_names.c: libFuzzer target for the downloader's URL -> file name
 * function (samples/pdf_downloader/names.c, issue 8).
 *
 * Every input is a URL, parsed by libcurl's URL API inside names.c (so this
 * target links libcurl and fuzzes the pair). Whatever pdfdl_name_from_url
 * returns, the name must
 * fit its buffer and be safe to join to the output folder with a '/': no
 * '/', no '\\', no control byte, not "." or "..", no leading '.', and for
 * PDFDL_NAME_OK not empty and with an extension. Its collision variants
 * (pdfdl_name_variant) must keep every one of those properties. A plain URL
 * ending in "NAME.pdf" that libcurl accepts must give a name ending in ".pdf",
 * however long. A failed
 * check aborts, which libFuzzer reports as a crash with the input saved.
 *
 * Built by `make fuzz` with clang -fsanitize=fuzzer,address,undefined, and
 * by make check with tests/fuzz/replay.c, which feeds it the seed corpus.
 */
#include <curl/curl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "names.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c)                                                                         \
    do {                                                                                 \
        if (!(c)) {                                                                      \
            fprintf(stderr, "fuzz_names: check failed: %s (line %d)\n", #c, __LINE__);   \
            abort();                                                                     \
        }                                                                                \
    } while (0)

/* The properties every name we may create must have. */
static void check_safe(const char *name, size_t max)
{
    size_t len = strlen(name);
    CHECK(len > 0 && len <= max);
    CHECK(name[0] != '.'); /* hidden, "." and ".." all start with a dot */
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)name[i];
        CHECK(c != '/' && c != '\\' && c >= 0x20 && c != 0x7f);
    }
}

/* An extension: a '.' that is neither the first nor the last byte. */
static void check_extension(const char *name)
{
    const char *dot = strrchr(name, '.');
    CHECK(dot && dot != name && dot[1] != '\0');
}

/*
 * An oracle for the extension rule: for a plain URL (no query, fragment,
 * escape or backslash) whose path, as libcurl parses it, ends in a segment
 * "X.pdf" with X not starting with a dot and free of control bytes, the name
 * must be accepted and end in ".pdf", however long X is (the stem is cut,
 * the extension kept). libcurl decides where the path is ("http:///o.pdf"
 * has the host "o.pdf"), so the oracle asks it too, with names.c's flags.
 */
static bool plain_pdf_url(const char *url)
{
    if (strpbrk(url, "?#%\\"))
        return false;
    CURLU *u = curl_url();
    char *path = NULL;
    bool plain = false;
    if (u &&
        curl_url_set(u, CURLUPART_URL, url,
                     CURLU_GUESS_SCHEME | CURLU_NON_SUPPORT_SCHEME | CURLU_ALLOW_SPACE) ==
            CURLUE_OK &&
        curl_url_get(u, CURLUPART_PATH, &path, 0) == CURLUE_OK) {
        const char *seg = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
        size_t len = strlen(seg);
        plain = len > 4 && seg[0] != '.' && strcmp(seg + len - 4, ".pdf") == 0;
        for (const char *q = seg; plain && *q; q++)
            if ((unsigned char)*q < 0x20 || *q == 0x7f)
                plain = false;
    }
    curl_free(path);
    curl_url_cleanup(u);
    return plain;
}

static bool ends_with_pdf(const char *name)
{
    size_t len = strlen(name);
    return len > 4 && strcmp(name + len - 4, ".pdf") == 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* The URL: the input up to its first NUL, as a C caller would pass it. */
    char *url = malloc(size + 1);
    if (!url)
        return 0;
    memcpy(url, data, size);
    url[size] = '\0';

    /* Exactly the documented size, so ASan sees any write past it. */
    char *out = malloc(PDFDL_NAME_MAX + 1);
    char *again = malloc(PDFDL_NAME_MAX + 1);
    char small[PDFDL_NAME_MAX];
    if (!out || !again)
        goto out;
    enum pdfdl_name_status st = pdfdl_name_from_url(url, out, PDFDL_NAME_MAX + 1);
    CHECK(st == PDFDL_NAME_OK || st == PDFDL_NAME_NO_EXTENSION ||
          st == PDFDL_NAME_BAD_URL);
    CHECK(memchr(out, '\0', PDFDL_NAME_MAX + 1) != NULL);
    CHECK(strlen(out) <= PDFDL_NAME_MAX);
    /* Pure: the same URL gives the same answer. */
    CHECK(pdfdl_name_from_url(url, again, PDFDL_NAME_MAX + 1) == st);
    CHECK(strcmp(out, again) == 0);
    CHECK(pdfdl_name_from_url(url, small, sizeof(small)) == PDFDL_NAME_TOO_SMALL);

    if (plain_pdf_url(url))
        CHECK(st == PDFDL_NAME_OK && ends_with_pdf(out));

    if (st == PDFDL_NAME_OK) {
        check_safe(out, PDFDL_NAME_MAX);
        check_extension(out);
        /* Collision variants: 0, 1, and one taken from the input. */
        unsigned picks[3] = {0, 1, 0};
        for (size_t i = 0; i < size && i < 4; i++)
            picks[2] = picks[2] << 8 | data[i];
        for (int i = 0; i < 3; i++) {
            char v[PDFDL_NAME_MAX + 16];
            CHECK(pdfdl_name_variant(out, picks[i], v, sizeof(v)) == 0);
            check_safe(v, sizeof(v) - 1);
            check_extension(v);
            if (picks[i] == 0)
                CHECK(strcmp(v, out) == 0);
            else
                CHECK(strcmp(strrchr(v, '.'), strrchr(out, '.')) == 0);
        }
    } else if (out[0] != '\0') {
        /* Refused names are not used, but they are no less safe. */
        check_safe(out, PDFDL_NAME_MAX);
    }
out:
    free(again);
    free(out);
    free(url);
    return 0;
}
