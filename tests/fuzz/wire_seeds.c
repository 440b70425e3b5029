/*
 * wire_seeds.c: writes the seed corpus of fuzz_wire (tests/fuzz/corpus/wire)
 * with the encoder itself, so the seeds are frames the pool really sends.
 * Usage: wire_seeds DIR
 */
#include <stdio.h>
#include <string.h>

#include "process/wire.h"

static int save(const char *dir, const char *name, const unsigned char *p, size_t n)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *fp = fopen(path, "wb");
    if (!fp || fwrite(p, 1, n, fp) != n) {
        perror(path);
        return 1;
    }
    return fclose(fp) != 0;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: wire_seeds DIR\n");
        return 2;
    }
    const char *dir = argv[1];
    unsigned char b[1024];
    size_t n;
    int bad = 0;

    /* TASK: fn 3, 1 s limit, a 5-byte argument. */
    cf_wire_put_hdr(b, CF_WIRE_TASK, 0x100000002ull, CF_WIRE_TASK_FIXED + 5);
    cf_wire_put_task(b + CF_WIRE_HDR, 3, 1000000000);
    memcpy(b + CF_WIRE_HDR + CF_WIRE_TASK_FIXED, "hello", 5);
    n = CF_WIRE_HDR + CF_WIRE_TASK_FIXED + 5;
    bad |= save(dir, "task", b, n);
    bad |= save(dir, "task-truncated", b, n - 3);
    bad |= save(dir, "header-only", b, CF_WIRE_HDR - 1);

    /* RESULT, expired, 8 bytes; then an ERROR in the same stream. */
    cf_wire_put_hdr(b, CF_WIRE_RESULT, 7, 8);
    cf_wire_put_flags(b, CF_WIRE_F_EXPIRED);
    memcpy(b + CF_WIRE_HDR, "\x2a\0\0\0\0\0\0\0", 8);
    n = CF_WIRE_HDR + 8;
    cf_wire_put_hdr(b + n, CF_WIRE_ERROR, 8, CF_WIRE_ERROR_FIXED + 4);
    cf_wire_put_error(b + n + CF_WIRE_HDR, 42);
    memcpy(b + n + CF_WIRE_HDR + CF_WIRE_ERROR_FIXED, "boom", 4);
    bad |= save(dir, "result-then-error", b, n + CF_WIRE_HDR + CF_WIRE_ERROR_FIXED + 4);

    /* INITFAIL with an empty message. */
    cf_wire_put_hdr(b, CF_WIRE_INITFAIL, 0, CF_WIRE_ERROR_FIXED);
    cf_wire_put_error(b + CF_WIRE_HDR, -5);
    bad |= save(dir, "initfail", b, CF_WIRE_HDR + CF_WIRE_ERROR_FIXED);

    /* CHUNK of 3 items: 2, 0 and 3 bytes. */
    unsigned char *p = b + CF_WIRE_HDR;
    cf_wire_put_chunk(p, 9, 0, 3);
    size_t off = CF_WIRE_CHUNK_FIXED;
    const char *items[] = {"ab", "", "xyz"};
    for (int i = 0; i < 3; i++) {
        size_t l = strlen(items[i]);
        cf_wire_put_item(p + off, l);
        memcpy(p + off + CF_WIRE_ITEM_HDR, items[i], l);
        off += CF_WIRE_ITEM_HDR + l;
    }
    cf_wire_put_hdr(b, CF_WIRE_CHUNK, 11, off);
    bad |= save(dir, "chunk", b, CF_WIRE_HDR + off);

    /* RESULTS: a result and an error answer, each padded to CF_WIRE_ALIGN. */
    memset(p, 0, 256);
    cf_wire_put_count(p, 2);
    off = CF_WIRE_RESULTS_FIXED;
    cf_wire_put_answer(p + off, 0, 0, 3);
    memcpy(p + off + CF_WIRE_ANSWER_HDR, "abc", 3);
    off += CF_WIRE_ANSWER_HDR + CF_WIRE_PAD(3);
    cf_wire_put_answer(p + off, 1, 7, 2);
    memcpy(p + off + CF_WIRE_ANSWER_HDR, "no", 2);
    off += CF_WIRE_ANSWER_HDR + CF_WIRE_PAD(2);
    cf_wire_put_hdr(b, CF_WIRE_RESULTS, 11, off);
    bad |= save(dir, "results", b, CF_WIRE_HDR + off);

    /* A header claiming 2^63 payload bytes; a bad magic. */
    cf_wire_put_hdr(b, CF_WIRE_RESULT, 1, (uint64_t)1 << 63);
    bad |= save(dir, "huge-len", b, CF_WIRE_HDR);
    cf_wire_put_hdr(b, CF_WIRE_RESULT, 1, 0);
    b[0] ^= 0xff;
    bad |= save(dir, "bad-magic", b, CF_WIRE_HDR);
    return bad;
}
