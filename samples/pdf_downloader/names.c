/*
 * names.c: turning a URL into a file name that is safe to create.
 *
 * The rules (names.h) make a name that can be joined to the output folder
 * with a '/' and always stays inside it: the result never holds '/', never
 * is "." or "..", never starts with '.', and is never empty.
 *
 * libcurl parses the URL (curl_url: scheme, userinfo, IPv6 hosts, port,
 * query, fragment, dot segments), as it does for the transfer itself, so
 * the name comes from the path curl fetches. The path is taken still
 * encoded, its last segment cut at the last '/', and only that segment is
 * percent-decoded (curl_easy_unescape). Decoding the whole path first
 * (CURLU_URLDECODE) would make "a%2Fb.pdf" two segments and drop "a", and
 * it refuses %00-%1F outright; decoding the segment keeps "%2F" inside the
 * name, where it becomes '_' like every other separator or control byte.
 * The rest is string work on bounded buffers, with no other I/O or state,
 * so that the pair can be fuzzed (tests/fuzz/fuzz_names.c).
 */
#include <curl/curl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "names.h"

/* One decoded byte made harmless: separators and control bytes become '_'. */
static unsigned char tame(unsigned char c)
{
    if (c == '/' || c == '\\' || c < 0x20 || c == 0x7f)
        return '_';
    return c;
}

/* The offset of the extension's dot in name[0, len), or len if none. */
static size_t ext_dot(const char *name, size_t len)
{
    for (size_t i = len; i > 1; i--)
        if (name[i - 1] == '.')
            return i - 1 + 1 < len ? i - 1 : len;
    return len;
}

/* Moves @cut back so that it does not split a UTF-8 character. */
static size_t utf8_boundary(const char *s, size_t cut)
{
    /* A character is at most 4 bytes: more continuation bytes are not UTF-8. */
    size_t c = cut;
    while (c > 0 && cut - c < 3 && ((unsigned char)s[c] & 0xC0) == 0x80)
        c--;
    return ((unsigned char)s[c] & 0xC0) == 0x80 ? cut : c;
}

/*
 * Makes the decoded segment d[0, n) a name in @out (PDFDL_NAME_MAX + 1
 * bytes): every byte tamed, and a name longer than PDFDL_NAME_MAX cut in its
 * stem, on a UTF-8 boundary, so that "aaaa...aaaa.pdf" keeps ".pdf" however
 * long it is (an extension longer than half the limit counts as stem).
 * Returns the name's length.
 */
static size_t make_name(char *d, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++)
        d[i] = (char)tame((unsigned char)d[i]);
    if (n <= PDFDL_NAME_MAX) {
        memcpy(out, d, n);
        return n;
    }
    size_t dot = n;
    for (size_t i = n; i > 1 && n - (i - 1) <= PDFDL_NAME_MAX / 2; i--)
        if (d[i - 1] == '.') {
            dot = i - 1 + 1 < n ? i - 1 : n;
            break;
        }
    size_t extlen = n - dot;
    size_t stem = utf8_boundary(d, PDFDL_NAME_MAX - extlen);
    memcpy(out, d, stem);
    memcpy(out + stem, d + dot, extlen);
    return stem + extlen;
}

/*
 * The last segment of @url's path as libcurl parses it, decoded, in a new
 * buffer (curl_free) of *len bytes (a decoded NUL is one of them). NULL if
 * libcurl refuses the URL or is out of memory.
 */
static char *last_segment(const char *url, size_t *len)
{
    CURLU *u = curl_url();
    char *path = NULL, *seg = NULL;
    /* The flags libcurl's own transfer parses with (GUESS_SCHEME: "h/x.pdf"
     * is http://h/x.pdf), and spaces, which its redirects allow too. */
    unsigned flags = CURLU_GUESS_SCHEME | CURLU_NON_SUPPORT_SCHEME | CURLU_ALLOW_SPACE;
    if (u && curl_url_set(u, CURLUPART_URL, url, flags) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_PATH, &path, 0) == CURLUE_OK) {
        const char *slash = strrchr(path, '/');
        const char *s = slash ? slash + 1 : path;
        size_t n = strlen(s);
        int dlen = 0;
        if (n < INT_MAX)
            seg = curl_easy_unescape(NULL, s, (int)n, &dlen);
        *len = seg ? (size_t)dlen : 0;
    }
    curl_free(path);
    curl_url_cleanup(u);
    return seg;
}

enum pdfdl_name_status pdfdl_name_from_url(const char *url, char *out, size_t outsz)
{
    if (!out || outsz < PDFDL_NAME_MAX + 1)
        return PDFDL_NAME_TOO_SMALL;
    out[0] = '\0';
    if (!url)
        return PDFDL_NAME_NO_EXTENSION;
    size_t n;
    char *seg = last_segment(url, &n);
    if (!seg)
        return PDFDL_NAME_BAD_URL;
    n = make_name(seg, n, out);
    curl_free(seg);
    out[n] = '\0';
    /* No hidden name, no "." or "..": leading dots become underscores. */
    for (size_t i = 0; i < n && out[i] == '.'; i++)
        out[i] = '_';
    if (n == 0 || ext_dot(out, n) == n)
        return PDFDL_NAME_NO_EXTENSION;
    return PDFDL_NAME_OK;
}

int pdfdl_name_variant(const char *name, unsigned n, char *out, size_t outsz)
{
    int w;
    if (n == 0) {
        w = snprintf(out, outsz, "%s", name);
    } else {
        size_t len = strlen(name);
        size_t dot = ext_dot(name, len);
        w = snprintf(out, outsz, "%.*s.%u%s", (int)dot, name, n, name + dot);
    }
    return w < 0 || (size_t)w >= outsz ? -1 : 0;
}
