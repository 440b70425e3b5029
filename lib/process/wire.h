/*
 * wire.h: the frames a process pool exchanges with its workers. Pure
 * encode/decode, no I/O, so that every function can be fuzzed.
 *
 * A frame is a 32-byte header, then `len` payload bytes. Every integer is
 * little-endian, whatever the host:
 *
 *   off size field
 *     0    4 magic    CF_WIRE_MAGIC
 *     4    2 version  CF_WIRE_VERSION
 *     6    2 type     enum cf_wire_type
 *     8    4 flags    CF_WIRE_F_EXPIRED on RESULT and ERROR; others are an error
 *    12    4 reserved must be 0
 *    16    8 id       the task's cell and generation (see worker.h)
 *    24    8 len      payload bytes, at most CF_WIRE_MAX_PAYLOAD
 *
 * Payloads:
 *   TASK     (parent -> worker) u64 fn, i64 limit_ns, then the argument bytes
 *   RESULT   (worker -> parent) the result bytes
 *   ERROR    (worker -> parent) i32 code, then the message (no NUL)
 *   INITFAIL (worker -> parent) i32 code, then the message; id is 0
 *   CHUNK    (parent -> worker) u64 fn, i64 limit_ns, u64 count, then count
 *            items, each u64 len and len argument bytes (one map chunk)
 *   RESULTS  (worker -> parent) u64 count, u64 0, then count answers, each
 *            u32 kind (0 result, 1 error), i32 code, u64 len, len bytes (the
 *            result, or the error message) and zero bytes up to a multiple
 *            of CF_WIRE_ALIGN: every answer's bytes start at a multiple of
 *            CF_WIRE_ALIGN from the payload's start, so a payload copied
 *            to malloc'd memory hands out each answer aligned as malloc's
 *   NOTE     (worker -> parent) no payload, id 0: answers are waiting in the
 *            shared answer records (worker.h)
 *   REJECT   (worker -> parent) i32 code, then the message (no NUL): the
 *            worker's last words, a task frame failed its checks (the id:
 *            the task it claimed so that it fails, or 0) and it exits 1
 *   FAILED   (MPI worker rank -> master, lib/mpi/) i32 status, i32 code,
 *            i32 exit_status, i32 signal, then the message (no NUL): a task
 *            that failed in the rank with any future_error_t status
 */
#ifndef CF_WIRE_H
#define CF_WIRE_H

#include <stddef.h>
#include <stdint.h>

#define CF_WIRE_MAGIC 0x50574643u /* "CFWP" as bytes on the wire */
#define CF_WIRE_VERSION 1
#define CF_WIRE_HDR 32
/* RESULT, ERROR: the task's own deadline had passed when it returned. */
#define CF_WIRE_F_EXPIRED 1u
/* The hard maximum payload: a larger length is an error, never an allocation. */
#define CF_WIRE_MAX_PAYLOAD ((uint64_t)1 << 32)
/* The task payload before the argument bytes. */
#define CF_WIRE_TASK_FIXED 16
/* An error payload before the message. */
#define CF_WIRE_ERROR_FIXED 4
/* Longest error message carried (longer ones are cut). */
#define CF_WIRE_MAX_MSG 4096

enum cf_wire_type {
    CF_WIRE_TASK = 1,
    CF_WIRE_RESULT = 2,
    CF_WIRE_ERROR = 3,
    CF_WIRE_INITFAIL = 4,
    CF_WIRE_CHUNK = 5,
    CF_WIRE_RESULTS = 6,
    CF_WIRE_NOTE = 7,
    CF_WIRE_FAILED = 8,
    CF_WIRE_REJECT = 9,
    CF_WIRE_TYPE_MAX = 9,
};

struct cf_wire_hdr {
    uint16_t type;
    uint32_t flags;
    uint64_t id;
    uint64_t len; /* payload bytes */
};

/* Decoding results (the negative ones say what was wrong). */
enum {
    CF_WIRE_OK = 0,
    CF_WIRE_NEED_MORE = 1, /* fewer bytes than a header */
    CF_WIRE_EMAGIC = -1,
    CF_WIRE_EVERSION = -2,
    CF_WIRE_ETYPE = -3,
    CF_WIRE_EFLAGS = -4,
    CF_WIRE_ELEN = -5,
    CF_WIRE_ESHORT = -6, /* payload shorter than its type needs */
};

/* A little-endian u64 at @p (the frames' byte order), for lists of ids. */
void cf_wire_put_u64(unsigned char *p, uint64_t v);
uint64_t cf_wire_get_u64(const unsigned char *p);

/* What a decode error means, for messages. Static text. */
const char *cf_wire_strerror(int rc);

/* Writes a header for @type/@id/@len into @out (CF_WIRE_HDR bytes). */
void cf_wire_put_hdr(unsigned char *out, enum cf_wire_type type, uint64_t id,
                     uint64_t len);
/* Sets the flags of the header at @hdr. */
void cf_wire_put_flags(unsigned char *hdr, uint32_t flags);

/*
 * Checks and decodes the header at @buf (@avail bytes there). Returns
 * CF_WIRE_OK (the payload may still be incomplete: compare avail with
 * CF_WIRE_HDR + out->len), CF_WIRE_NEED_MORE, or a negative CF_WIRE_E*.
 */
int cf_wire_get_hdr(const void *buf, size_t avail, struct cf_wire_hdr *out);

/* The fixed part of a TASK payload. */
void cf_wire_put_task(unsigned char *out, uint64_t fn, int64_t limit_ns);
/* Decodes a TASK payload of @len bytes; the argument follows the fixed part. */
int cf_wire_get_task(const void *payload, uint64_t len, uint64_t *fn, int64_t *limit_ns,
                     const void **arg, size_t *arg_len);

void cf_wire_put_error(unsigned char *out, int32_t code);
/* Decodes an ERROR, INITFAIL or REJECT payload; the message is not NUL-terminated. */
int cf_wire_get_error(const void *payload, uint64_t len, int32_t *code, const char **msg,
                      size_t *msg_len);

/* A FAILED payload before the message. */
#define CF_WIRE_FAILED_FIXED 16
void cf_wire_put_failed(unsigned char *out, int32_t status, int32_t code,
                        int32_t exit_status, int32_t sig);
/* Decodes a FAILED payload; the message is not NUL-terminated. */
int cf_wire_get_failed(const void *payload, uint64_t len, int32_t st[4], const char **msg,
                       size_t *msg_len);

/* Chunks: the fixed parts and the per-item / per-answer headers. */
#define CF_WIRE_CHUNK_FIXED 24
#define CF_WIRE_ITEM_HDR 8
#define CF_WIRE_RESULTS_FIXED 16
#define CF_WIRE_ANSWER_HDR 16
/*
 * The room a chunk's worker keeps for each item not yet answered: its E2BIG
 * stand-in (a 16-byte header and a message padded to 48), which replaces an
 * answer that would not fit. So a chunk holds at most CF_WIRE_CHUNK_MAX_ITEMS
 * items, or its first answers would find no room whatever they are.
 */
#define CF_WIRE_CHUNK_ANSWER_ROOM (CF_WIRE_ANSWER_HDR + 64)
#define CF_WIRE_CHUNK_MAX_ITEMS                                                          \
    ((CF_WIRE_MAX_PAYLOAD - CF_WIRE_RESULTS_FIXED) / CF_WIRE_CHUNK_ANSWER_ROOM)
/* RESULTS answers are padded to this (alignof(max_align_t) on common ABIs). */
#define CF_WIRE_ALIGN 16
/* @n rounded up to a multiple of CF_WIRE_ALIGN. */
#define CF_WIRE_PAD(n)                                                                   \
    (((uint64_t)(n) + (CF_WIRE_ALIGN - 1)) & ~(uint64_t)(CF_WIRE_ALIGN - 1))

void cf_wire_put_chunk(unsigned char *out, uint64_t fn, int64_t limit_ns, uint64_t count);
void cf_wire_put_item(unsigned char *out, uint64_t len);
/* The fixed part of a RESULTS payload (CF_WIRE_RESULTS_FIXED bytes). */
void cf_wire_put_count(unsigned char *out, uint64_t count);
void cf_wire_put_answer(unsigned char *out, uint32_t kind, int32_t code, uint64_t len);
/* The most bytes cf_wire_put_padded_answer writes for @len bytes of data. */
#define CF_WIRE_ANSWER_ROOM(len) (CF_WIRE_ANSWER_HDR + (size_t)(len) + CF_WIRE_ALIGN)
/*
 * Writes one answer of a RESULTS payload at @out (CF_WIRE_ANSWER_ROOM(len)
 * bytes of room): header, @len bytes, padding, the padding as one
 * fixed-size store of zeros (cheap per item of a chunk). Returns the bytes
 * the answer takes, CF_WIRE_ANSWER_HDR + CF_WIRE_PAD(len).
 */
size_t cf_wire_put_padded_answer(unsigned char *out, uint32_t kind, int32_t code,
                                 const void *data, size_t len);

int cf_wire_get_chunk(const void *payload, uint64_t len, uint64_t *fn, int64_t *limit_ns,
                      uint64_t *count);
int cf_wire_get_count(const void *payload, uint64_t len, uint64_t *count);
/*
 * The next chunk item at *off (start at CF_WIRE_CHUNK_FIXED): its bytes, and
 * *off moved past it. CF_WIRE_ESHORT if it does not fit in @len.
 */
int cf_wire_next_item(const void *payload, uint64_t len, uint64_t *off, const void **data,
                      size_t *dlen);
/*
 * The next answer at *off (start at CF_WIRE_RESULTS_FIXED); kind 0 or 1;
 * *off moves past its padding, which must be there (it may be any bytes).
 */
int cf_wire_next_answer(const void *payload, uint64_t len, uint64_t *off, uint32_t *kind,
                        int32_t *code, const void **data, size_t *dlen);

#endif /* CF_WIRE_H */
