/*
 * names.c: turning a URL into a file name that is safe to create.
 *
 * The rules (names.h) make a name that can be joined to the output folder
 * with a '/' and always stays inside it: the result never holds '/', never
 * is "." or "..", never starts with '.', and is never empty. Everything
 * here is pure string work on bounded buffers, kept apart from the rest of
 * the downloader so that it can be fuzzed on its own.
 */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "names.h"

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* The path's last segment: [*start, *end) of @url, query and fragment off. */
static void last_segment(const char *url, const char **start, const char **end)
{
    const char *p = url;
    const char *scheme = strstr(url, "://");
    if (scheme) {
        /* Skip the authority: everything up to the path's first '/'. */
        p = scheme + 3;
        p += strcspn(p, "/?#");
    }
    const char *stop = p + strcspn(p, "?#");
    const char *seg = p;
    for (const char *q = p; q < stop; q++)
        if (*q == '/')
            seg = q + 1;
    *start = seg;
    *end = stop;
}

/* One decoded byte made harmless: separators and control bytes become '_'. */
static unsigned char tame(unsigned char c)
{
    if (c == '/' || c == '\\' || c < 0x20 || c == 0x7f)
        return '_';
    return c;
}

/*
 * Decodes [s, e) into @out (at most @cap bytes, no NUL). Returns the length,
 * or cap + 1 if the decoded name would be longer than @cap.
 */
static size_t decode(const char *s, const char *e, char *out, size_t cap)
{
    size_t n = 0;
    while (s < e) {
        unsigned char c = (unsigned char)*s;
        if (c == '%' && e - s >= 3 && hexval(s[1]) >= 0 && hexval(s[2]) >= 0) {
            c = (unsigned char)(hexval(s[1]) * 16 + hexval(s[2]));
            s += 3;
        } else {
            s++;
        }
        if (n == cap)
            return cap + 1;
        out[n++] = (char)tame(c);
    }
    return n;
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
 * Where the raw segment [s, e)'s extension starts: its last '.' (or "%2e"),
 * looked for only near the end, since an extension is short. Returns e if
 * there is none.
 */
static const char *raw_ext(const char *s, const char *e)
{
    const char *lim = e - s > 3 * (PDFDL_NAME_MAX / 2) ? e - 3 * (PDFDL_NAME_MAX / 2) : s;
    for (const char *q = e; q > lim; q--) {
        if (q[-1] == '.')
            return q - 1;
        if (q - lim >= 3 && q[-3] == '%' && q[-2] == '2' &&
            (q[-1] == 'e' || q[-1] == 'E'))
            return q - 3;
    }
    return e;
}

/*
 * A long path segment: decodes its extension from the tail and a stem cut
 * to fit, so that "aaaa...aaaa.pdf" keeps ".pdf" however long it is.
 */
static size_t decode_long(const char *s, const char *e, char *out)
{
    char ext[PDFDL_NAME_MAX / 2 + 1];
    const char *d = raw_ext(s, e);
    size_t extlen = decode(d, e, ext, sizeof(ext) - 1);
    if (extlen >= sizeof(ext)) {
        /* An absurd extension: treat the whole thing as a stem. */
        d = e;
        extlen = 0;
    }
    /* A buffer four times the limit holds any stem we would keep. */
    char big[4 * PDFDL_NAME_MAX];
    size_t n = decode(s, d, big, sizeof(big));
    if (n > sizeof(big))
        n = sizeof(big); /* a monster: only its first bytes count */
    size_t stem =
        n < PDFDL_NAME_MAX - extlen ? n : utf8_boundary(big, PDFDL_NAME_MAX - extlen);
    memcpy(out, big, stem);
    memcpy(out + stem, ext, extlen);
    return stem + extlen;
}

enum pdfdl_name_status pdfdl_name_from_url(const char *url, char *out, size_t outsz)
{
    const char *s, *e;
    if (!out || outsz < PDFDL_NAME_MAX + 1)
        return PDFDL_NAME_TOO_SMALL;
    out[0] = '\0';
    if (!url)
        return PDFDL_NAME_NO_EXTENSION;
    last_segment(url, &s, &e);
    size_t n = decode(s, e, out, PDFDL_NAME_MAX);
    if (n > PDFDL_NAME_MAX)
        n = decode_long(s, e, out);
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
