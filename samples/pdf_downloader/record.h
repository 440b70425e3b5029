/*
 * record.h: the bytes that go to a download task and come back from it.
 *
 * A task's argument and result must be self-contained bytes, never pointers
 * into the submitting process: a process pool copies them to another
 * process. Both records are a magic word and NUL-terminated text fields in a
 * fixed order, so decoding points into the buffer without copying.
 */
#ifndef PDFDL_RECORD_H
#define PDFDL_RECORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One URL to fetch, and everything the task needs to know to fetch it. */
struct pdfdl_request {
    const char *url;    /* as given (command line, -i file or --base) */
    const char *outdir; /* the target folder */
    const char *claims; /* a folder of this run's claimed names (collisions) */
    const char *run;    /* this run's token: temporary files carry it */
    double timeout;     /* connect and stall limit, seconds */
    unsigned retries;   /* extra attempts on 5xx, 429 and connection errors */
    bool any_type;      /* accept any body, not only %PDF- */
    bool no_clobber;    /* never replace a file already there */
    bool resume;        /* -c: keep and resume partial files (fetch.c) */
};

/*
 * What a task hands back, for a download that succeeded or failed alike (so
 * that --report can say how far a failed one got).
 */
struct pdfdl_outcome {
    bool ok;               /* the file is in place (downloaded or kept) */
    bool kept;             /* --no-clobber: a file was there, nothing downloaded */
    int code;              /* !ok: enum pdfdl_failure (fetch.h); 0 when ok */
    const char *why;       /* !ok: the failure in words; "" when ok */
    const char *name;      /* ok: the file's name in the target folder; else "" */
    long status;           /* the last HTTP status, 0 when no answer came */
    uint64_t bytes;        /* body bytes the last attempt received (0 when kept) */
    uint64_t resumed_from; /* where in the file the last attempt started (Range) */
    uint64_t partial;      /* !ok with -c: bytes kept in the resumable file */
    unsigned attempts;     /* requests made, retries and restarts included */
    double seconds;        /* the task's wall time */
};

/* Serializes @r into a new malloc'd buffer; *len gets its size. NULL: ENOMEM. */
char *pdfdl_request_encode(const struct pdfdl_request *r, size_t *len);

/* Parses @len bytes at @buf into @r (pointing into @buf). 0, or -1 if malformed. */
int pdfdl_request_decode(const void *buf, size_t len, struct pdfdl_request *r);

/* Serializes @o into a new malloc'd buffer; *len gets its size. NULL: ENOMEM. */
char *pdfdl_outcome_encode(const struct pdfdl_outcome *o, size_t *len);

/* Parses an outcome record (pointing into @buf). 0, or -1 if malformed. */
int pdfdl_outcome_decode(const void *buf, size_t len, struct pdfdl_outcome *o);

#endif /* PDFDL_RECORD_H */
