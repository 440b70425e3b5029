/*
 * fetch.h: the download task, the C twin of the course's downloader(url).
 */
#ifndef PDFDL_FETCH_H
#define PDFDL_FETCH_H

#include <cfutures.h>

/* Prefix of the temporary files a task writes into the target folder. */
#define PDFDL_TMP_PREFIX ".pdf_downloader-"

/* Error codes the task raises with (future_error_t.code). */
enum pdfdl_failure {
    PDFDL_FAIL_REQUEST = 1, /* a malformed request record or URL */
    PDFDL_FAIL_HTTP,        /* the server answered with a non-2xx status */
    PDFDL_FAIL_NETWORK,     /* refused, timed out, cut, reset, ... */
    PDFDL_FAIL_CONTENT,     /* not a PDF */
    PDFDL_FAIL_NAME,        /* "URL does not contain an extension" */
    PDFDL_FAIL_LOCAL        /* the file could not be written or renamed */
};

/**
 * The task: reads a request record (record.h) as its argument, downloads
 * the URL to a temporary file in the target folder, checks it and renames
 * it to its final name. Answers with an outcome record, or task_raise with
 * a pdfdl_failure code and a message in words.
 * Needs curl_global_init() done before the executor starts.
 */
void pdfdl_download_task(task_t *t);

/* Formats @v with thousands separators ("92,160") into @buf. Returns @buf. */
char *pdfdl_thousands(unsigned long long v, char *buf, size_t bufsz);

#endif /* PDFDL_FETCH_H */
