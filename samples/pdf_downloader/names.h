/*
 * names.h: file names from URLs, safe to create in the output folder.
 * Pure functions: no I/O, no global state (libcurl's URL parser only
 * allocates; no curl_global_init needed), so they can be fuzzed alone.
 */
#ifndef PDFDL_NAMES_H
#define PDFDL_NAMES_H

#include <stddef.h>

/* Longest name we make, in bytes: room under NAME_MAX (255) for ".NNNN". */
#define PDFDL_NAME_MAX 200

/* What pdfdl_name_from_url found wrong with a URL. */
enum pdfdl_name_status {
    PDFDL_NAME_OK = 0,
    PDFDL_NAME_NO_EXTENSION, /* "URL does not contain an extension" */
    PDFDL_NAME_BAD_URL,      /* libcurl cannot parse the URL (or no memory) */
    PDFDL_NAME_TOO_SMALL     /* @out cannot hold PDFDL_NAME_MAX + 1 bytes */
};

/**
 * The local file name for @url: the last segment of its path as libcurl
 * parses it (curl_url: no query, fragment or dot segments), then
 * percent-decoded. Decoding never produces a
 * separator or a special name: a decoded '/' or '\\', a NUL or another
 * control byte becomes '_', and leading dots become '_' (so neither "..",
 * "." nor a hidden name can come out). Names longer than PDFDL_NAME_MAX
 * bytes are cut in the stem, keeping the extension and whole UTF-8
 * characters. As in the course, a name without an extension (no '.'
 * followed by at least one byte in the name) is refused, and a URL that
 * libcurl refuses gives PDFDL_NAME_BAD_URL.
 * Writes a NUL-terminated name into @out (@outsz >= PDFDL_NAME_MAX + 1).
 */
enum pdfdl_name_status pdfdl_name_from_url(const char *url, char *out, size_t outsz);

/**
 * The @n-th alternative of @name for collisions: n == 0 gives @name itself,
 * n >= 1 gives "stem.N.ext" ("f1040.pdf" -> "f1040.1.pdf"). Returns 0, or -1
 * if @out (@outsz bytes) is too small.
 */
int pdfdl_name_variant(const char *name, unsigned n, char *out, size_t outsz);

#endif /* PDFDL_NAMES_H */
