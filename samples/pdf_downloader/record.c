/*
 * record.c: encoding and decoding the request and outcome records.
 *
 * Layout: the magic field, then the fields of the struct in declaration
 * order, each a NUL-terminated string (numbers in decimal or %.17g text).
 * Nothing in a record is a pointer or a native binary number, so a record
 * means the same in any process that runs this program.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "record.h"

#define REQ_MAGIC "pdfdl-req-3"
#define OUT_MAGIC "pdfdl-out-2"

/* A growing buffer of NUL-terminated fields. */
struct fields {
    char *buf;
    size_t len, cap;
    bool failed; /* out of memory: the whole record is lost */
};

static void put(struct fields *f, const char *s)
{
    size_t n = strlen(s) + 1;
    if (f->failed)
        return;
    if (f->len + n > f->cap) {
        size_t cap = f->cap ? f->cap : 256;
        while (cap < f->len + n)
            cap *= 2;
        char *p = realloc(f->buf, cap);
        if (!p) {
            f->failed = true;
            return;
        }
        f->buf = p;
        f->cap = cap;
    }
    memcpy(f->buf + f->len, s, n);
    f->len += n;
}

static void put_u64(struct fields *f, uint64_t v)
{
    char num[32];
    snprintf(num, sizeof(num), "%llu", (unsigned long long)v);
    put(f, num);
}

static char *finish(struct fields *f, size_t *len)
{
    if (f->failed) {
        free(f->buf);
        errno = ENOMEM;
        return NULL;
    }
    *len = f->len;
    return f->buf;
}

/* A reader over the fields of a record. */
struct reader {
    const char *p, *end;
    bool bad; /* a field was missing or unterminated */
};

static const char *get(struct reader *r)
{
    /* p is NULL when the buffer was: no memchr on NULL. */
    const char *nul =
        r->p && r->p < r->end ? memchr(r->p, '\0', (size_t)(r->end - r->p)) : NULL;
    if (!nul) {
        r->bad = true;
        return "";
    }
    const char *s = r->p;
    r->p = nul + 1;
    return s;
}

static uint64_t get_u64(struct reader *r)
{
    const char *s = get(r);
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (!*s || *end || errno)
        r->bad = true;
    return v;
}

char *pdfdl_request_encode(const struct pdfdl_request *r, size_t *len)
{
    struct fields f = {0};
    char num[40];
    put(&f, REQ_MAGIC);
    put(&f, r->url);
    put(&f, r->outdir);
    put(&f, r->claims);
    put(&f, r->run);
    snprintf(num, sizeof(num), "%.17g", r->timeout);
    put(&f, num);
    put_u64(&f, r->retries);
    put_u64(&f, r->any_type);
    put_u64(&f, r->no_clobber);
    put_u64(&f, r->resume);
    return finish(&f, len);
}

int pdfdl_request_decode(const void *buf, size_t len, struct pdfdl_request *r)
{
    struct reader rd = {buf, buf ? (const char *)buf + len : NULL, !buf};
    if (strcmp(get(&rd), REQ_MAGIC) != 0)
        return -1;
    r->url = get(&rd);
    r->outdir = get(&rd);
    r->claims = get(&rd);
    r->run = get(&rd);
    const char *t = get(&rd);
    char *end;
    r->timeout = strtod(t, &end);
    if (!*t || *end || !(r->timeout > 0))
        rd.bad = true;
    r->retries = (unsigned)get_u64(&rd);
    r->any_type = get_u64(&rd) != 0;
    r->no_clobber = get_u64(&rd) != 0;
    r->resume = get_u64(&rd) != 0;
    return rd.bad || rd.p != rd.end ? -1 : 0;
}

char *pdfdl_outcome_encode(const struct pdfdl_outcome *o, size_t *len)
{
    struct fields f = {0};
    char num[40];
    put(&f, OUT_MAGIC);
    put_u64(&f, o->ok);
    put_u64(&f, o->kept);
    put_u64(&f, (uint64_t)o->code);
    put(&f, o->why);
    put(&f, o->name);
    put_u64(&f, (uint64_t)o->status);
    put_u64(&f, o->bytes);
    put_u64(&f, o->resumed_from);
    put_u64(&f, o->partial);
    put_u64(&f, o->attempts);
    snprintf(num, sizeof(num), "%.17g", o->seconds);
    put(&f, num);
    return finish(&f, len);
}

int pdfdl_outcome_decode(const void *buf, size_t len, struct pdfdl_outcome *o)
{
    struct reader rd = {buf, buf ? (const char *)buf + len : NULL, !buf};
    if (strcmp(get(&rd), OUT_MAGIC) != 0)
        return -1;
    o->ok = get_u64(&rd) != 0;
    o->kept = get_u64(&rd) != 0;
    o->code = (int)get_u64(&rd);
    o->why = get(&rd);
    o->name = get(&rd);
    o->status = (long)get_u64(&rd);
    o->bytes = get_u64(&rd);
    o->resumed_from = get_u64(&rd);
    o->partial = get_u64(&rd);
    o->attempts = (unsigned)get_u64(&rd);
    const char *t = get(&rd);
    char *end;
    o->seconds = strtod(t, &end);
    if (!*t || *end || !(o->seconds >= 0))
        rd.bad = true;
    return rd.bad || rd.p != rd.end ? -1 : 0;
}
