/*
 * fetch.h: the download task, the C twin of the course's downloader(url).
 */
#ifndef PDFDL_FETCH_H
#define PDFDL_FETCH_H

#include <cfutures.h>

/* Prefix of the temporary files a task writes into the target folder. */
#define PDFDL_TMP_PREFIX ".pdf_downloader-"
/* -c: a URL's resumable file, PREFIX + 16 hex digits + ".part", and beside
 * it ".meta", the sidecar that says which URL and version it holds. */
#define PDFDL_RESUME_PREFIX PDFDL_TMP_PREFIX "c-"

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
 * the URL to a temporary file in the target folder (with -c, the URL's
 * resumable file), checks it and renames it to its final name. Answers
 * with an outcome record, for a failure too (ok false, a pdfdl_failure code
 * and words); raises (task_raise) only on a malformed request record or
 * when out of memory.
 * Needs curl_global_init() done before the executor starts.
 */
void pdfdl_download_task(task_t *t);

/**
 * -c: the paths of @url's resumable file (@part) and its sidecar (@meta) in
 * @outdir, each buffer @n bytes. Returns 0, or -1 if they do not fit.
 */
int pdfdl_resume_paths(const char *outdir, const char *url, char *part, char *meta,
                       size_t n);

/* Formats @v with thousands separators ("92,160") into @buf. Returns @buf. */
char *pdfdl_thousands(unsigned long long v, char *buf, size_t bufsz);

#endif /* PDFDL_FETCH_H */
