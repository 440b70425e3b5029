/*
 * fuzz_wire.c: libFuzzer target for the process pool's frame decoder
 * (lib/wire.c, issue 8).
 *
 * The input is a byte stream as a pipe would deliver it: frames are
 * decoded one after another, as the parent's and the worker's readers do,
 * until the bytes run out or a header is refused. Each payload is copied
 * into a buffer of exactly its size, so ASan sees any read past it. Checks:
 * every return code is one the header names; an accepted header
 * re-encodes to the same 32 bytes (cf_wire_put_hdr/put_flags), has a known
 * type and a length within CF_WIRE_MAX_PAYLOAD; every pointer a payload
 * decoder hands back lies inside the payload; chunk items and answers move
 * the offset forward and stay inside the payload.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "process/wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c)                                                                         \
    do {                                                                                 \
        if (!(c)) {                                                                      \
            fprintf(stderr, "fuzz_wire: check failed: %s (line %d)\n", #c, __LINE__);    \
            abort();                                                                     \
        }                                                                                \
    } while (0)

static bool known_rc(int rc)
{
    return rc == CF_WIRE_OK || (rc <= CF_WIRE_EMAGIC && rc >= CF_WIRE_ESHORT);
}

/* True if [p, p + n) lies inside [base, base + len); empty data may be NULL. */
static bool inside(const void *p, size_t n, const unsigned char *base, uint64_t len)
{
    const unsigned char *q = p;
    if (!q)
        return n == 0;
    return q >= base && q <= base + len && n <= (uint64_t)(base + len - q);
}

static void check_chunk(const unsigned char *pl, uint64_t len)
{
    uint64_t fn, count;
    int64_t limit;
    int rc = cf_wire_get_chunk(pl, len, &fn, &limit, &count);
    CHECK(known_rc(rc));
    if (rc != CF_WIRE_OK)
        return;
    uint64_t off = CF_WIRE_CHUNK_FIXED;
    for (uint64_t i = 0; i < count; i++) {
        const void *d;
        size_t dlen;
        uint64_t before = off;
        rc = cf_wire_next_item(pl, len, &off, &d, &dlen);
        CHECK(known_rc(rc));
        if (rc != CF_WIRE_OK)
            break;
        CHECK(off > before && off <= len);
        CHECK(inside(d, dlen, pl, len));
    }
}

static void check_results(const unsigned char *pl, uint64_t len)
{
    uint64_t count;
    int rc = cf_wire_get_count(pl, len, &count);
    CHECK(known_rc(rc));
    if (rc != CF_WIRE_OK)
        return;
    uint64_t off = CF_WIRE_RESULTS_FIXED;
    for (uint64_t i = 0; i < count; i++) {
        const void *d;
        size_t dlen;
        uint32_t kind;
        int32_t code;
        uint64_t before = off;
        rc = cf_wire_next_answer(pl, len, &off, &kind, &code, &d, &dlen);
        CHECK(known_rc(rc));
        if (rc != CF_WIRE_OK)
            break;
        CHECK(kind == 0 || kind == 1);
        CHECK(off > before && off <= len);
        CHECK(inside(d, dlen, pl, len));
        /* Every answer sits at a multiple of CF_WIRE_ALIGN (malloc's alignment). */
        CHECK((off - CF_WIRE_RESULTS_FIXED) % CF_WIRE_ALIGN == 0);
        CHECK(!d || ((const unsigned char *)d - pl) % CF_WIRE_ALIGN == 0);
    }
}

/* Decodes one payload of a frame whose header was accepted. */
static void check_payload(const struct cf_wire_hdr *h, const unsigned char *pl)
{
    const void *arg;
    const char *msg;
    size_t n;
    uint64_t fn;
    int64_t limit;
    int32_t code;
    int rc;
    switch (h->type) {
    case CF_WIRE_TASK:
        rc = cf_wire_get_task(pl, h->len, &fn, &limit, &arg, &n);
        CHECK(known_rc(rc));
        if (rc == CF_WIRE_OK)
            CHECK(n == h->len - CF_WIRE_TASK_FIXED && inside(arg, n, pl, h->len));
        break;
    case CF_WIRE_ERROR:
    case CF_WIRE_INITFAIL:
        rc = cf_wire_get_error(pl, h->len, &code, &msg, &n);
        CHECK(known_rc(rc));
        if (rc == CF_WIRE_OK)
            CHECK(n <= CF_WIRE_MAX_MSG && inside(msg, n, pl, h->len));
        break;
    case CF_WIRE_CHUNK:
        check_chunk(pl, h->len);
        break;
    case CF_WIRE_RESULTS:
        check_results(pl, h->len);
        break;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t pos = 0;
    while (pos < size) {
        struct cf_wire_hdr h;
        size_t avail = size - pos;
        /* An exact copy of what is left: reads past it are ASan errors. */
        unsigned char *buf = malloc(avail);
        if (!buf)
            return 0;
        memcpy(buf, data + pos, avail);
        int rc = cf_wire_get_hdr(buf, avail, &h);
        CHECK(rc == CF_WIRE_NEED_MORE || known_rc(rc));
        if (rc != CF_WIRE_OK) {
            CHECK(rc != CF_WIRE_NEED_MORE || avail < CF_WIRE_HDR);
            free(buf);
            break;
        }
        CHECK(avail >= CF_WIRE_HDR);
        CHECK(h.type >= CF_WIRE_TASK && h.type <= CF_WIRE_TYPE_MAX);
        CHECK(h.len <= CF_WIRE_MAX_PAYLOAD);
        unsigned char again[CF_WIRE_HDR];
        cf_wire_put_hdr(again, (enum cf_wire_type)h.type, h.id, h.len);
        cf_wire_put_flags(again, h.flags);
        CHECK(memcmp(again, buf, CF_WIRE_HDR) == 0);
        free(buf);
        if (h.len > avail - CF_WIRE_HDR)
            break; /* the rest of the frame has not arrived */
        unsigned char *pl = malloc(h.len ? (size_t)h.len : 1);
        if (!pl)
            return 0;
        memcpy(pl, data + pos + CF_WIRE_HDR, (size_t)h.len);
        check_payload(&h, pl);
        free(pl);
        pos += CF_WIRE_HDR + (size_t)h.len;
    }
    return 0;
}
