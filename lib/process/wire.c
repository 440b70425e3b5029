/*
 * wire.c: frame encoding and decoding (the layout is in wire.h).
 *
 * DESIGN
 * Pure functions over byte buffers: no I/O, no allocation, no global state,
 * so they run the same in the parent, in a worker and under a fuzzer. Every
 * field is checked before it is used: an unknown magic, version, type or
 * flag, a non-zero reserved word, or a length above CF_WIRE_MAX_PAYLOAD is
 * an error. A caller never sizes a buffer from a length this file rejected.
 */
#include "config.h"

#include <string.h>

#include "wire.h"

static void put32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static void put64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static uint32_t get32(const unsigned char *p)
{
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

static uint64_t get64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

void cf_wire_put_u64(unsigned char *p, uint64_t v)
{
    put64(p, v);
}

uint64_t cf_wire_get_u64(const unsigned char *p)
{
    return get64(p);
}

const char *cf_wire_strerror(int rc)
{
    switch (rc) {
    case CF_WIRE_OK:
        return "ok";
    case CF_WIRE_NEED_MORE:
        return "incomplete frame";
    case CF_WIRE_EMAGIC:
        return "bad frame magic";
    case CF_WIRE_EVERSION:
        return "unknown frame version";
    case CF_WIRE_ETYPE:
        return "unknown frame type";
    case CF_WIRE_EFLAGS:
        return "unknown frame flags";
    case CF_WIRE_ELEN:
        return "frame length above the maximum";
    case CF_WIRE_ESHORT:
        return "frame payload too short for its type";
    }
    return "bad frame";
}

void cf_wire_put_hdr(unsigned char *out, enum cf_wire_type type, uint64_t id,
                     uint64_t len)
{
    put32(out, CF_WIRE_MAGIC);
    out[4] = CF_WIRE_VERSION & 0xff;
    out[5] = CF_WIRE_VERSION >> 8;
    out[6] = (unsigned char)(type & 0xff);
    out[7] = (unsigned char)((unsigned)type >> 8);
    put32(out + 8, 0);
    put32(out + 12, 0);
    put64(out + 16, id);
    put64(out + 24, len);
}

void cf_wire_put_flags(unsigned char *hdr, uint32_t flags)
{
    put32(hdr + 8, flags);
}

int cf_wire_get_hdr(const void *buf, size_t avail, struct cf_wire_hdr *out)
{
    const unsigned char *p = buf;
    if (!p || avail < CF_WIRE_HDR)
        return CF_WIRE_NEED_MORE;
    if (get32(p) != CF_WIRE_MAGIC)
        return CF_WIRE_EMAGIC;
    if ((unsigned)(p[4] | (p[5] << 8)) != CF_WIRE_VERSION)
        return CF_WIRE_EVERSION;
    unsigned type = (unsigned)(p[6] | (p[7] << 8));
    if (type == 0 || type > CF_WIRE_TYPE_MAX)
        return CF_WIRE_ETYPE;
    uint32_t flags = get32(p + 8);
    uint32_t allowed =
        type == CF_WIRE_RESULT || type == CF_WIRE_ERROR ? CF_WIRE_F_EXPIRED : 0;
    if ((flags & ~allowed) != 0 || get32(p + 12) != 0)
        return CF_WIRE_EFLAGS;
    uint64_t len = get64(p + 24);
    if (len > CF_WIRE_MAX_PAYLOAD)
        return CF_WIRE_ELEN;
    if (type == CF_WIRE_TASK && len < CF_WIRE_TASK_FIXED)
        return CF_WIRE_ESHORT;
    if ((type == CF_WIRE_CHUNK && len < CF_WIRE_CHUNK_FIXED) ||
        (type == CF_WIRE_RESULTS && len < CF_WIRE_RESULTS_FIXED))
        return CF_WIRE_ESHORT;
    if (type == CF_WIRE_NOTE && len != 0)
        return CF_WIRE_ELEN;
    if ((type == CF_WIRE_ERROR || type == CF_WIRE_INITFAIL || type == CF_WIRE_REJECT) &&
        (len < CF_WIRE_ERROR_FIXED || len > CF_WIRE_ERROR_FIXED + CF_WIRE_MAX_MSG))
        return len < CF_WIRE_ERROR_FIXED ? CF_WIRE_ESHORT : CF_WIRE_ELEN;
    if (type == CF_WIRE_FAILED &&
        (len < CF_WIRE_FAILED_FIXED || len > CF_WIRE_FAILED_FIXED + CF_WIRE_MAX_MSG))
        return len < CF_WIRE_FAILED_FIXED ? CF_WIRE_ESHORT : CF_WIRE_ELEN;
    out->type = (uint16_t)type;
    out->flags = flags;
    out->id = get64(p + 16);
    out->len = len;
    return CF_WIRE_OK;
}

void cf_wire_put_task(unsigned char *out, uint64_t fn, int64_t limit_ns)
{
    put64(out, fn);
    put64(out + 8, (uint64_t)limit_ns);
}

int cf_wire_get_task(const void *payload, uint64_t len, uint64_t *fn, int64_t *limit_ns,
                     const void **arg, size_t *arg_len)
{
    const unsigned char *p = payload;
    if (!p || len < CF_WIRE_TASK_FIXED || len > CF_WIRE_MAX_PAYLOAD)
        return CF_WIRE_ESHORT;
    *fn = get64(p);
    uint64_t lim = get64(p + 8);
    if (lim > (uint64_t)INT64_MAX)
        return CF_WIRE_EFLAGS;
    *limit_ns = (int64_t)lim;
    *arg_len = (size_t)(len - CF_WIRE_TASK_FIXED);
    *arg = *arg_len ? p + CF_WIRE_TASK_FIXED : NULL;
    return CF_WIRE_OK;
}

void cf_wire_put_error(unsigned char *out, int32_t code)
{
    put32(out, (uint32_t)code);
}

int cf_wire_get_error(const void *payload, uint64_t len, int32_t *code, const char **msg,
                      size_t *msg_len)
{
    const unsigned char *p = payload;
    if (!p || len < CF_WIRE_ERROR_FIXED)
        return CF_WIRE_ESHORT;
    if (len > CF_WIRE_ERROR_FIXED + CF_WIRE_MAX_MSG)
        return CF_WIRE_ELEN;
    *code = (int32_t)get32(p);
    *msg_len = (size_t)(len - CF_WIRE_ERROR_FIXED);
    *msg = (const char *)p + CF_WIRE_ERROR_FIXED;
    return CF_WIRE_OK;
}

void cf_wire_put_failed(unsigned char *out, int32_t status, int32_t code,
                        int32_t exit_status, int32_t sig)
{
    put32(out, (uint32_t)status);
    put32(out + 4, (uint32_t)code);
    put32(out + 8, (uint32_t)exit_status);
    put32(out + 12, (uint32_t)sig);
}

int cf_wire_get_failed(const void *payload, uint64_t len, int32_t st[4], const char **msg,
                       size_t *msg_len)
{
    const unsigned char *p = payload;
    if (!p || len < CF_WIRE_FAILED_FIXED)
        return CF_WIRE_ESHORT;
    if (len > CF_WIRE_FAILED_FIXED + CF_WIRE_MAX_MSG)
        return CF_WIRE_ELEN;
    for (int i = 0; i < 4; i++)
        st[i] = (int32_t)get32(p + 4 * i);
    *msg_len = (size_t)(len - CF_WIRE_FAILED_FIXED);
    *msg = (const char *)p + CF_WIRE_FAILED_FIXED;
    return CF_WIRE_OK;
}

void cf_wire_put_chunk(unsigned char *out, uint64_t fn, int64_t limit_ns, uint64_t count)
{
    put64(out, fn);
    put64(out + 8, (uint64_t)limit_ns);
    put64(out + 16, count);
}

void cf_wire_put_item(unsigned char *out, uint64_t len)
{
    put64(out, len);
}

void cf_wire_put_count(unsigned char *out, uint64_t count)
{
    put64(out, count);
    put64(out + 8, 0); /* keeps the answers at multiples of CF_WIRE_ALIGN */
}

void cf_wire_put_answer(unsigned char *out, uint32_t kind, int32_t code, uint64_t len)
{
    put32(out, kind);
    put32(out + 4, (uint32_t)code);
    put64(out + 8, len);
}

int cf_wire_get_chunk(const void *payload, uint64_t len, uint64_t *fn, int64_t *limit_ns,
                      uint64_t *count)
{
    const unsigned char *p = payload;
    if (!p || len < CF_WIRE_CHUNK_FIXED || len > CF_WIRE_MAX_PAYLOAD)
        return CF_WIRE_ESHORT;
    *fn = get64(p);
    uint64_t lim = get64(p + 8);
    if (lim > (uint64_t)INT64_MAX)
        return CF_WIRE_EFLAGS;
    *limit_ns = (int64_t)lim;
    *count = get64(p + 16);
    /* Every item takes at least its length word. */
    if (*count > (len - CF_WIRE_CHUNK_FIXED) / CF_WIRE_ITEM_HDR)
        return CF_WIRE_ESHORT;
    return CF_WIRE_OK;
}

int cf_wire_get_count(const void *payload, uint64_t len, uint64_t *count)
{
    const unsigned char *p = payload;
    if (!p || len < CF_WIRE_RESULTS_FIXED || len > CF_WIRE_MAX_PAYLOAD)
        return CF_WIRE_ESHORT;
    if (get64(p + 8) != 0)
        return CF_WIRE_EFLAGS;
    *count = get64(p);
    if (*count > (len - CF_WIRE_RESULTS_FIXED) / CF_WIRE_ANSWER_HDR)
        return CF_WIRE_ESHORT;
    return CF_WIRE_OK;
}

int cf_wire_next_item(const void *payload, uint64_t len, uint64_t *off, const void **data,
                      size_t *dlen)
{
    const unsigned char *p = payload;
    if (!p || len > CF_WIRE_MAX_PAYLOAD || *off > len || len - *off < CF_WIRE_ITEM_HDR)
        return CF_WIRE_ESHORT;
    uint64_t n = get64(p + *off);
    if (n > len - *off - CF_WIRE_ITEM_HDR)
        return CF_WIRE_ESHORT;
    *dlen = (size_t)n;
    *data = n ? p + *off + CF_WIRE_ITEM_HDR : NULL;
    *off += CF_WIRE_ITEM_HDR + n;
    return CF_WIRE_OK;
}

int cf_wire_next_answer(const void *payload, uint64_t len, uint64_t *off, uint32_t *kind,
                        int32_t *code, const void **data, size_t *dlen)
{
    const unsigned char *p = payload;
    if (!p || len > CF_WIRE_MAX_PAYLOAD || *off > len || len - *off < CF_WIRE_ANSWER_HDR)
        return CF_WIRE_ESHORT;
    *kind = get32(p + *off);
    if (*kind > 1)
        return CF_WIRE_EFLAGS;
    *code = (int32_t)get32(p + *off + 4);
    uint64_t n = get64(p + *off + 8);
    uint64_t room = len - *off - CF_WIRE_ANSWER_HDR;
    /* n <= room <= 2^32 first, so the padding cannot overflow. */
    if (n > room || CF_WIRE_PAD(n) > room || (*kind == 1 && n > CF_WIRE_MAX_MSG))
        return CF_WIRE_ESHORT;
    *dlen = (size_t)n;
    *data = n ? p + *off + CF_WIRE_ANSWER_HDR : NULL;
    *off += CF_WIRE_ANSWER_HDR + CF_WIRE_PAD(n);
    return CF_WIRE_OK;
}

size_t cf_wire_put_padded_answer(unsigned char *out, uint32_t kind, int32_t code,
                                 const void *data, size_t len)
{
    static const unsigned char zeros[CF_WIRE_ALIGN];
    cf_wire_put_answer(out, kind, code, len);
    if (len)
        memcpy(out + CF_WIRE_ANSWER_HDR, data, len);
    memcpy(out + CF_WIRE_ANSWER_HDR + len, zeros, sizeof(zeros)); /* the pad, and more */
    return CF_WIRE_ANSWER_HDR + (size_t)CF_WIRE_PAD(len);
}
