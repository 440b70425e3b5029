/*
 * fetch.c: one URL, downloaded and checked, as a cfutures task.
 *
 * DESIGN
 * The task runs on a worker (a pool thread, or a process of a process pool)
 * and owns everything it touches: its request record, a transfer state on
 * its stack, one temporary file. Each worker thread keeps one curl easy
 * handle in thread-specific data, so that connections to the same server
 * are reused from one URL to the next; the key's destructor frees it when
 * the worker exits.
 *
 * A transfer writes the body to ".pdf_downloader-RUN-PID-N.part" in the target
 * folder, created at the first body byte. The write callback stops the
 * transfer as soon as the answer cannot be kept: a non-2xx status, a URL
 * without an extension, a body that does not start with "%PDF-". Only a
 * complete, checked body is renamed to its final name, so the folder never
 * holds a partial file or an error page, and a failed download never
 * replaces an old file. Names are claimed in a per-run claims folder with
 * O_EXCL before the rename, so two URLs that map to one name get "f.pdf"
 * and "f.1.pdf" rather than overwriting each other, whatever process
 * finishes first; each process remembers where a name's claims reached, so
 * that many URLs with one name do not probe from "f.pdf" every time.
 *
 * With -c (rq->resume) the body goes instead to the URL's resumable file,
 * ".pdf_downloader-c-HASH.part" (HASH: FNV-1a of the URL as given), beside a
 * sidecar ".meta" holding the URL and the answer's validator (a strong ETag,
 * else Last-Modified). The task holds an flock() on the .part for as long as
 * it uses it, so a second task (or run) with the same URL writes a temporary
 * file of its own instead; it keeps the lock until the rename. An attempt
 * asks for the bytes after those already there with Range and If-Range; a
 * 206 that continues the file is appended, anything else (200: the server
 * ignored Range, or the file changed) starts it over at byte 0, and a 416 or
 * a 206 for other bytes asks once more for the whole file. The finished file
 * is checked whole (Content-Range total, Content-Length, "%PDF-" at byte 0).
 * After a failure that --retries would retry, a file with bytes and a
 * sidecar stays for the next attempt or run; any other failure removes it.
 *
 * Every task answers with an outcome record (record.h), failures included,
 * so that --report can say how far a failed download got; it raises only
 * when its request record cannot be read.
 */
#include "config.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fetch.h"
#include "names.h"
#include "record.h"

#define MAX_REDIRS 10
#define BACKOFF_FIRST 0.25   /* seconds before the first retry; doubles after */
#define BACKOFF_MAX 8.0      /* longest wait of our own between attempts */
#define RETRY_AFTER_MAX 30.0 /* longest Retry-After we honour */

/* The state of one attempt at one URL. */
struct xfer {
    const struct pdfdl_request *rq; /* borrowed from the task's argument */
    CURL *h;                        /* this worker's handle */
    int fd;                         /* the temporary file, -1 until opened */
    char tmp[PATH_MAX];             /* its path */
    char name[PDFDL_NAME_MAX + 1];  /* the final name, once the body starts */
    uint64_t bytes;                 /* body bytes written */
    unsigned char head[5];          /* the body's first bytes */
    size_t headlen;
    bool started;         /* the write callback has checked status and name */
    bool stopped;         /* the write callback refused the body: see why */
    char why[256];        /* why the attempt failed, in words */
    bool retryable;       /* 5xx, 429 or a connection error */
    int code;             /* enum pdfdl_failure */
    long status;          /* the final answer's HTTP status, 0 if none */
    char status_line[96]; /* "404 Not Found" from the last status line */
    double last_data;     /* monotonic time of the last body byte (or start) */
    curl_off_t last_now;  /* bytes received as of last_data */
    char errbuf[CURL_ERROR_SIZE];
    /* -c (rq->resume): the URL's resumable file. x->tmp is then its path,
     * and x->fd holds its flock() for as long as this task uses it. */
    bool resumable;      /* this attempt writes the URL's resumable file */
    bool have_meta;      /* its sidecar holds the URL and a validator */
    bool restart;        /* the Range answer was unusable: ask from byte 0 */
    bool no_range;       /* this attempt asks from byte 0 (after a restart) */
    char meta[PATH_MAX]; /* the sidecar's path */
    uint64_t offset;     /* bytes already in the file, asked for with Range */
    int64_t total;       /* the whole length a 206 announced, -1 if none */
    uint64_t partial;    /* a failed attempt left this many bytes to resume */
    char validator[256]; /* 'E' ETag or 'L' Last-Modified, sent as If-Range */
    char etag[200];      /* the final answer's ETag, "" if none */
    char lastmod[64];    /* its Last-Modified */
    char crange[96];     /* its Content-Range */
};

static pthread_key_t handle_key;
static pthread_once_t handle_once = PTHREAD_ONCE_INIT;
static atomic_uint tmp_counter;

static void free_handle(void *h)
{
    curl_easy_cleanup(h);
}

static void make_key(void)
{
    (void)pthread_key_create(&handle_key, free_handle);
}

/* This thread's easy handle, reset to defaults; NULL if out of memory. */
static CURL *thread_handle(void)
{
    (void)pthread_once(&handle_once, make_key);
    CURL *h = pthread_getspecific(handle_key);
    if (h) {
        curl_easy_reset(h);
        return h;
    }
    h = curl_easy_init();
    if (h && pthread_setspecific(handle_key, h) != 0) {
        curl_easy_cleanup(h);
        h = NULL;
    }
    return h;
}

char *pdfdl_thousands(unsigned long long v, char *buf, size_t bufsz)
{
    char digits[32];
    int n = snprintf(digits, sizeof(digits), "%llu", v);
    size_t o = 0;
    for (int i = 0; i < n && o + 2 < bufsz; i++) {
        if (i > 0 && (n - i) % 3 == 0)
            buf[o++] = ',';
        buf[o++] = digits[i];
    }
    buf[o] = '\0';
    return buf;
}

static void fail(struct xfer *x, int code, bool retryable, const char *fmt, ...)
    CF_PRINTF(4, 5);

static void fail(struct xfer *x, int code, bool retryable, const char *fmt, ...)
{
    va_list ap;
    x->code = code;
    va_start(ap, fmt);
    vsnprintf(x->why, sizeof(x->why), fmt, ap);
    va_end(ap);
    x->retryable = retryable;
}

static void errno_text(int e, char *buf, size_t n)
{
    /* GNU strerror_r: returns the text, maybe not in buf. */
    snprintf(buf, n, "%s", strerror_r(e, buf, n));
}

/*
 * An interrupted run (main.c) takes an exclusive flock() on the claims
 * folder, removes it, then removes this run's temporary files and exits.
 * Every file a task creates in the target folder or the claims folder is
 * created under a shared flock() on that folder, once it is seen to still
 * exist: so no file appears after the interrupt looked for them, from a
 * pool thread or from a pool process that outlives its parent by a moment.
 * run_lock returns the claims folder's fd, locked (close it to unlock), or
 * -1 with errno (ECANCELED: the run is being stopped).
 */
static int run_lock(const struct pdfdl_request *rq)
{
    struct stat st;
    int e;
    int dfd = open(rq->claims, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0) {
        if (errno == ENOENT)
            errno = ECANCELED;
        return -1;
    }
    while ((e = flock(dfd, LOCK_SH)) != 0 && errno == EINTR)
        ;
    if (e != 0)
        e = errno;
    else if (fstat(dfd, &st) != 0)
        e = errno;
    else if (st.st_nlink == 0) /* removed: the run is being stopped */
        e = ECANCELED;
    if (e == 0)
        return dfd;
    close(dfd);
    errno = e;
    return -1;
}

/* open(@path, @flags, 0666) under run_lock. The fd, or -1 with errno. */
static int create_in_run(const struct pdfdl_request *rq, const char *path, int flags)
{
    int dfd = run_lock(rq);
    if (dfd < 0)
        return -1;
    int fd = open(path, flags, 0666);
    int e = errno;
    close(dfd);
    errno = e;
    return fd;
}

/* Opens a fresh temporary file in the target folder. 0, or -1 (x->why set). */
static int open_tmp(struct xfer *x)
{
    for (int tries = 0; tries < 100; tries++) {
        unsigned n = atomic_fetch_add(&tmp_counter, 1);
        snprintf(x->tmp, sizeof(x->tmp), "%s/" PDFDL_TMP_PREFIX "%s-%ld-%u.part",
                 x->rq->outdir, x->rq->run, (long)getpid(), n);
        x->fd = create_in_run(x->rq, x->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC);
        if (x->fd >= 0)
            return 0;
        if (errno != EEXIST)
            break;
    }
    char e[128];
    errno_text(errno, e, sizeof(e));
    fail(x, PDFDL_FAIL_LOCAL, false, "cannot create a file in %s: %s", x->rq->outdir, e);
    x->tmp[0] = '\0';
    return -1;
}

/* FNV-1a, 64 bits: names a URL's resumable file (the sidecar holds the URL
 * itself, so a collision only costs a restart). */
static unsigned long long url_hash(const char *url)
{
    unsigned long long h = 14695981039346656037ULL;
    for (const unsigned char *p = (const unsigned char *)url; *p; p++)
        h = (h ^ *p) * 1099511628211ULL;
    return h;
}

int pdfdl_resume_paths(const char *outdir, const char *url, char *part, char *meta,
                       size_t n)
{
    unsigned long long h = url_hash(url);
    int a = snprintf(part, n, "%s/" PDFDL_RESUME_PREFIX "%016llx.part", outdir, h);
    int b = snprintf(meta, n, "%s/" PDFDL_RESUME_PREFIX "%016llx.meta", outdir, h);
    return a < 0 || b < 0 || (size_t)a >= n || (size_t)b >= n ? -1 : 0;
}

#define META_MAGIC "pdfdl-resume-1"

/* Reads the sidecar: resumable when it names this URL and a validator. */
static bool read_meta(struct xfer *x)
{
    char buf[8192];
    int fd = open(x->meta, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0)
        return false;
    buf[n] = '\0';
    /* Three NUL-terminated fields: magic, URL, validator. */
    const char *url = buf + strlen(buf) + 1;
    const char *end = buf + n;
    if (strcmp(buf, META_MAGIC) != 0 || url >= end)
        return false;
    const char *v = url + strlen(url) + 1;
    if (v >= end || strcmp(url, x->rq->url) != 0 || (v[0] != 'E' && v[0] != 'L') ||
        strlen(v) < 2 || strlen(v) >= sizeof(x->validator) || v + strlen(v) + 1 != end)
        return false;
    memcpy(x->validator, v, strlen(v) + 1);
    return true;
}

/*
 * Writes the sidecar for the answer just received: the URL and its ETag
 * (unless weak: If-Range wants a strong one), else its Last-Modified. With
 * neither, nothing can be resumed safely, and no sidecar is left.
 */
static void save_meta(struct xfer *x)
{
    char v[sizeof(x->validator)];
    x->have_meta = false;
    if (x->etag[0] && strncmp(x->etag, "W/", 2) != 0)
        snprintf(v, sizeof(v), "E%s", x->etag);
    else if (x->lastmod[0])
        snprintf(v, sizeof(v), "L%s", x->lastmod);
    else
        v[0] = '\0';
    if (!v[0]) {
        unlink(x->meta);
        return;
    }
    int fd = create_in_run(x->rq, x->meta, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC);
    if (fd < 0)
        return;
    size_t a = sizeof(META_MAGIC), b = strlen(x->rq->url) + 1, c = strlen(v) + 1;
    bool ok = write(fd, META_MAGIC, a) == (ssize_t)a &&
              write(fd, x->rq->url, b) == (ssize_t)b && write(fd, v, c) == (ssize_t)c;
    if (close(fd) == 0 && ok) {
        memcpy(x->validator, v, c);
        x->have_meta = true;
    } else {
        unlink(x->meta);
    }
}

/*
 * -c: opens and locks the URL's resumable file, and decides whether to ask
 * for the rest of it: only when it has bytes, starts like a PDF and its
 * sidecar names this URL and a validator. 0; 1 if another task (or run)
 * holds the file, so that this one uses a temporary file of its own; or -1
 * (x->why set).
 */
static int open_resume(struct xfer *x)
{
    static const char magic[5] = {'%', 'P', 'D', 'F', '-'};
    struct stat st, at_path;
    char e[128];
    if (pdfdl_resume_paths(x->rq->outdir, x->rq->url, x->tmp, x->meta, sizeof(x->tmp)) !=
        0) {
        x->tmp[0] = '\0';
        return 1;
    }
    int fd = create_in_run(x->rq, x->tmp, O_RDWR | O_CREAT | O_CLOEXEC);
    if (fd < 0) {
        errno_text(errno, e, sizeof(e));
        fail(x, PDFDL_FAIL_LOCAL, false, "cannot create a file in %s: %s", x->rq->outdir,
             e);
        x->tmp[0] = '\0';
        return -1;
    }
    /* Locked, and still the file at that path (not one another task just
     * renamed into place or removed). */
    if (flock(fd, LOCK_EX | LOCK_NB) != 0 || fstat(fd, &st) != 0 ||
        stat(x->tmp, &at_path) != 0 || st.st_ino != at_path.st_ino ||
        st.st_dev != at_path.st_dev) {
        close(fd);
        x->tmp[0] = '\0';
        return 1;
    }
    x->fd = fd;
    x->resumable = true;
    if (x->no_range || st.st_size <= 0 || !read_meta(x))
        return 0;
    ssize_t n = pread(fd, x->head, sizeof(x->head), 0);
    x->headlen = n > 0 ? (size_t)n : 0;
    if (!x->rq->any_type && (x->headlen < 5 || memcmp(x->head, magic, 5) != 0)) {
        x->headlen = 0;
        return 0;
    }
    x->offset = (uint64_t)st.st_size;
    x->have_meta = true;
    return 0;
}

/* Does the answer name another version of the file than our validator? */
static bool validator_differs(const struct xfer *x)
{
    if (x->validator[0] == 'E')
        return x->etag[0] && strcmp(x->etag, x->validator + 1) != 0;
    return x->lastmod[0] && strcmp(x->lastmod, x->validator + 1) != 0;
}

/*
 * -c, the first body byte of a 2xx answer: appends after x->offset for a
 * 206 that continues the file, else starts the file over at byte 0 (the
 * server ignored Range, or If-Range found the file changed). 0, or -1.
 */
static int resume_start(struct xfer *x, long status)
{
    unsigned long long first, last, total;
    char e[128];
    if (status == 206) {
        if (sscanf(x->crange, "bytes %llu-%llu/%llu", &first, &last, &total) != 3 ||
            first != x->offset || last + 1 != total || validator_differs(x)) {
            x->restart = true;
            fail(x, PDFDL_FAIL_NETWORK, false,
                 "the server answered a Range request for byte %llu with \"%s\"",
                 (unsigned long long)x->offset, x->crange);
            return -1;
        }
        x->total = (int64_t)total;
        if (lseek(x->fd, (off_t)x->offset, SEEK_SET) >= 0)
            return 0;
    } else {
        x->offset = 0;
        x->headlen = 0;
        if (ftruncate(x->fd, 0) == 0 && lseek(x->fd, 0, SEEK_SET) == 0) {
            save_meta(x);
            return 0;
        }
    }
    errno_text(errno, e, sizeof(e));
    fail(x, PDFDL_FAIL_LOCAL, false, "cannot write %s: %s", x->tmp, e);
    return -1;
}

static bool is_2xx(long status)
{
    return status >= 200 && status <= 299;
}

/*
 * The first body bytes of the final response: refuses an error status or a
 * URL without an extension before a byte is written, then opens the file.
 */
static bool start_body(struct xfer *x)
{
    long status = 0;
    char *eff = NULL;
    x->started = true;
    curl_easy_getinfo(x->h, CURLINFO_RESPONSE_CODE, &status);
    if (!is_2xx(status))
        return false; /* reported from the status after curl_easy_perform */
    curl_easy_getinfo(x->h, CURLINFO_EFFECTIVE_URL, &eff);
    enum pdfdl_name_status st =
        pdfdl_name_from_url(eff ? eff : x->rq->url, x->name, sizeof(x->name));
    if (st != PDFDL_NAME_OK) {
        fail(x, PDFDL_FAIL_NAME, false, "%s",
             st == PDFDL_NAME_NO_EXTENSION
                 ? "URL does not contain an extension"
                 : "cannot make a file name: libcurl cannot parse "
                   "the URL");
        return false;
    }
    if (x->resumable)
        return resume_start(x, status) == 0;
    return open_tmp(x) == 0;
}

/* Checks the first bytes for "%PDF-" as they arrive. */
static bool head_ok(struct xfer *x, const char *p, size_t len)
{
    static const char magic[5] = {'%', 'P', 'D', 'F', '-'};
    while (x->headlen < sizeof(x->head) && len > 0) {
        x->head[x->headlen++] = (unsigned char)*p++;
        len--;
    }
    return x->rq->any_type || memcmp(x->head, magic, x->headlen) == 0;
}

/* A short, printable rendering of the body's first bytes. */
static void head_text(const struct xfer *x, char *buf, size_t n)
{
    size_t o = 0;
    for (size_t i = 0; i < x->headlen && o + 2 < n; i++) {
        unsigned char c = x->head[i];
        buf[o++] = (c >= 0x20 && c < 0x7f && c != '"') ? (char)c : '.';
    }
    buf[o] = '\0';
}

static size_t on_body(char *p, size_t size, size_t nmemb, void *ud)
{
    struct xfer *x = ud;
    size_t len = size * nmemb;
    if (!x->started && !start_body(x))
        goto refuse;
    if (!head_ok(x, p, len)) {
        fail(x, PDFDL_FAIL_CONTENT, false, "not a PDF"); /* details added after perform */
        goto refuse;
    }
    for (size_t done = 0; done < len;) {
        ssize_t w = write(x->fd, p + done, len - done);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0) {
            char e[128];
            errno_text(errno, e, sizeof(e));
            fail(x, PDFDL_FAIL_LOCAL, false, "cannot write %s: %s", x->tmp, e);
            goto refuse;
        }
        done += (size_t)w;
    }
    x->bytes += len;
    return len;
refuse:
    x->stopped = true;
    return 0; /* CURLE_WRITE_ERROR: curl stops and closes the connection */
}

/* Copies header @p's value (after @namelen bytes and the colon), trimmed,
 * into @out (@n bytes; cut if longer). */
static void header_value(const char *p, size_t len, size_t namelen, char *out, size_t n)
{
    const char *v = p + namelen + 1, *e = p + len;
    while (v < e && (*v == ' ' || *v == '\t'))
        v++;
    while (e > v && (e[-1] == '\r' || e[-1] == '\n' || e[-1] == ' ' || e[-1] == '\t'))
        e--;
    size_t k = (size_t)(e - v) < n ? (size_t)(e - v) : n - 1;
    memcpy(out, v, k);
    out[k] = '\0';
}

static bool is_header(const char *p, size_t len, const char *name, size_t namelen)
{
    return len > namelen && p[namelen] == ':' && strncasecmp(p, name, namelen) == 0;
}

/*
 * Keeps the last status line's code and reason phrase ("404 Not Found"),
 * and for -c the last answer's validators and Content-Range.
 */
static size_t on_header(char *p, size_t size, size_t nmemb, void *ud)
{
    struct xfer *x = ud;
    size_t len = size * nmemb;
    if (is_header(p, len, "ETag", 4))
        header_value(p, len, 4, x->etag, sizeof(x->etag));
    else if (is_header(p, len, "Last-Modified", 13))
        header_value(p, len, 13, x->lastmod, sizeof(x->lastmod));
    else if (is_header(p, len, "Content-Range", 13))
        header_value(p, len, 13, x->crange, sizeof(x->crange));
    else if (len > 5 && strncmp(p, "HTTP/", 5) == 0) {
        x->etag[0] = x->lastmod[0] = x->crange[0] = '\0';
        const char *sp = memchr(p, ' ', len);
        if (sp) {
            size_t n = len - (size_t)(sp + 1 - p);
            while (n > 0 && (sp[n] == '\r' || sp[n] == '\n'))
                n--;
            if (n >= sizeof(x->status_line))
                n = sizeof(x->status_line) - 1;
            memcpy(x->status_line, sp + 1, n);
            x->status_line[n] = '\0';
        }
    }
    return len;
}

static double mono_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/*
 * Stall detection: stops the transfer once no byte came for --timeout
 * seconds, from the start (a server that never answers) or in mid-body.
 * curl's own CURLOPT_LOW_SPEED_* averages over a window of several seconds,
 * so a burst followed by silence would outlive the limit by that much.
 */
static int on_progress(void *ud, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow)
{
    struct xfer *x = ud;
    double now = mono_now();
    (void)dltotal, (void)ultotal, (void)ulnow;
    if (dlnow != x->last_now) {
        x->last_now = dlnow;
        x->last_data = now;
        return 0;
    }
    if (now - x->last_data < x->rq->timeout)
        return 0;
    return 1; /* CURLE_ABORTED_BY_CALLBACK */
}

static void set_options(struct xfer *x)
{
    CURL *h = x->h;
    double t = x->rq->timeout;
    curl_easy_setopt(h, CURLOPT_URL, x->rq->url);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(h, CURLOPT_MAXREDIRS, (long)MAX_REDIRS);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    /* --timeout bounds the connection and any stall; a long, steady
     * download is never cut. */
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)ceil(t * 1000));
    curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(h, CURLOPT_XFERINFODATA, x);
    curl_easy_setopt(h, CURLOPT_BUFFERSIZE, 64L * 1024);
    curl_easy_setopt(h, CURLOPT_USERAGENT,
                     "pdf_downloader/" CFUTURES_VERSION " (cfutures)");
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, x);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, x);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, x->errbuf);
}

/* Describes a non-2xx answer; 5xx and 429 may be retried. */
static void http_failure(struct xfer *x, long status)
{
    const char *line = x->status_line;
    const char *reason = strchr(line, ' ');
    fail(x, PDFDL_FAIL_HTTP, status >= 500 || status == 429, "HTTP %ld%s%s", status,
         reason ? " " : "", reason ? reason + 1 : "");
}

/* Describes what curl reported, in words. */
static void curl_failure(struct xfer *x, CURLcode rc)
{
    char a[32], b[32];
    curl_off_t cl = -1;
    long oserr = 0;
    switch (rc) {
    case CURLE_OPERATION_TIMEDOUT:
        fail(x, PDFDL_FAIL_NETWORK, true, "timed out after %g s: no connection",
             x->rq->timeout);
        break;
    case CURLE_ABORTED_BY_CALLBACK:
        if (x->bytes == 0)
            fail(x, PDFDL_FAIL_NETWORK, true, "timed out after %g s: no answer",
                 x->rq->timeout);
        else if (curl_easy_getinfo(x->h, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &cl) ==
                     CURLE_OK &&
                 cl >= 0)
            fail(x, PDFDL_FAIL_NETWORK, true,
                 "timed out after %g s without data, at %s of %s bytes", x->rq->timeout,
                 pdfdl_thousands(x->offset + x->bytes, a, sizeof(a)),
                 pdfdl_thousands(x->offset + (unsigned long long)cl, b, sizeof(b)));
        else
            fail(x, PDFDL_FAIL_NETWORK, true,
                 "timed out after %g s without data, at %s bytes", x->rq->timeout,
                 pdfdl_thousands(x->offset + x->bytes, a, sizeof(a)));
        break;
    case CURLE_COULDNT_CONNECT:
        curl_easy_getinfo(x->h, CURLINFO_OS_ERRNO, &oserr);
        if (oserr == ECONNREFUSED)
            fail(x, PDFDL_FAIL_NETWORK, true, "connection refused");
        else
            fail(x, PDFDL_FAIL_NETWORK, true, "cannot connect: %s",
                 x->errbuf[0] ? x->errbuf : "?");
        break;
    case CURLE_PARTIAL_FILE:
        curl_easy_getinfo(x->h, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &cl);
        if (cl >= 0)
            fail(x, PDFDL_FAIL_NETWORK, true, "body cut at %s of %s bytes",
                 pdfdl_thousands(x->offset + x->bytes, a, sizeof(a)),
                 pdfdl_thousands(x->offset + (unsigned long long)cl, b, sizeof(b)));
        else
            fail(x, PDFDL_FAIL_NETWORK, true,
                 "body cut at %s bytes: the connection closed",
                 pdfdl_thousands(x->offset + x->bytes, a, sizeof(a)));
        break;
    case CURLE_GOT_NOTHING:
        fail(x, PDFDL_FAIL_NETWORK, true,
             "the server closed the connection without answering");
        break;
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
        fail(x, PDFDL_FAIL_NETWORK, true, "connection lost after %s bytes: %s",
             pdfdl_thousands(x->bytes, a, sizeof(a)), x->errbuf);
        break;
    case CURLE_TOO_MANY_REDIRECTS:
        fail(x, PDFDL_FAIL_NETWORK, false, "more than %d redirects", MAX_REDIRS);
        break;
    case CURLE_COULDNT_RESOLVE_HOST:
        fail(x, PDFDL_FAIL_NETWORK, true, "cannot resolve the host name: %s", x->errbuf);
        break;
    case CURLE_UNSUPPORTED_PROTOCOL:
        fail(x, PDFDL_FAIL_NETWORK, false, "not an http:// or https:// URL");
        break;
    case CURLE_URL_MALFORMAT:
        fail(x, PDFDL_FAIL_NETWORK, false, "malformed URL");
        break;
    default:
        fail(x, PDFDL_FAIL_NETWORK, false, "%s",
             x->errbuf[0] ? x->errbuf : curl_easy_strerror(rc));
        break;
    }
}

/* Says what the body looks like, when it is not a PDF. */
static void not_pdf(struct xfer *x)
{
    char head[16];
    char *ctype = NULL;
    curl_easy_getinfo(x->h, CURLINFO_CONTENT_TYPE, &ctype);
    head_text(x, head, sizeof(head));
    if (x->headlen == 0)
        fail(x, PDFDL_FAIL_CONTENT, false, "not a PDF: the body is empty");
    else
        fail(x, PDFDL_FAIL_CONTENT, false, "not a PDF: the body starts with \"%s\"%s%s%s",
             head, ctype ? " (Content-Type " : "", ctype ? ctype : "", ctype ? ")" : "");
}

/* After a complete transfer: length and type checks. 0 if the file is good. */
static int check_body(struct xfer *x)
{
    char a[32], b[32];
    curl_off_t cl = -1;
    curl_easy_getinfo(x->h, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &cl);
    if (x->total >= 0 && x->offset + x->bytes != (uint64_t)x->total) {
        fail(x, PDFDL_FAIL_NETWORK, true, "body cut at %s of %s bytes",
             pdfdl_thousands(x->offset + x->bytes, a, sizeof(a)),
             pdfdl_thousands((unsigned long long)x->total, b, sizeof(b)));
        return -1;
    }
    if (cl >= 0 && (uint64_t)cl != x->bytes) {
        fail(x, PDFDL_FAIL_NETWORK, true, "body cut at %s of %s bytes",
             pdfdl_thousands(x->offset + x->bytes, a, sizeof(a)),
             pdfdl_thousands(x->offset + (unsigned long long)cl, b, sizeof(b)));
        return -1;
    }
    if (x->rq->any_type || (x->headlen == 5 && memcmp(x->head, "%PDF-", 5) == 0))
        return 0;
    not_pdf(x);
    return -1;
}

static void drop_tmp(struct xfer *x)
{
    if (x->fd >= 0)
        close(x->fd);
    x->fd = -1;
    if (x->tmp[0])
        unlink(x->tmp);
    x->tmp[0] = '\0';
}

/*
 * -c, after a failed attempt: keeps the resumable file when the failure may
 * pass (what --retries retries: the network, 5xx, 429) and the sidecar can
 * resume it; removes it otherwise. Either way releases it.
 */
static void keep_or_drop(struct xfer *x)
{
    struct stat st;
    if (!x->restart && x->retryable && x->have_meta && fstat(x->fd, &st) == 0 &&
        st.st_size > 0) {
        x->partial = (uint64_t)st.st_size;
        close(x->fd);
        x->fd = -1;
        x->tmp[0] = '\0';
        return;
    }
    unlink(x->meta);
    drop_tmp(x);
}

/* -c: asks for the bytes after x->offset, if the file (open_resume) has some. */
static struct curl_slist *ask_range(struct xfer *x)
{
    char range[32], ifr[sizeof(x->validator) + 16];
    if (x->offset == 0)
        return NULL;
    snprintf(range, sizeof(range), "%llu-", (unsigned long long)x->offset);
    snprintf(ifr, sizeof(ifr), "If-Range: %s", x->validator + 1);
    struct curl_slist *hdrs = curl_slist_append(NULL, ifr);
    if (!hdrs) {
        x->offset = 0; /* out of memory: ask for the whole file */
        return NULL;
    }
    curl_easy_setopt(x->h, CURLOPT_RANGE, range);
    curl_easy_setopt(x->h, CURLOPT_HTTPHEADER, hdrs);
    return hdrs;
}

/*
 * One try at the URL. 0: a checked body sits in x->tmp, closed, or with -c
 * still open and locked (x->fd) until install() has moved it.
 */
static int attempt(struct xfer *x)
{
    x->fd = -1;
    x->tmp[0] = x->name[0] = x->why[0] = x->errbuf[0] = x->status_line[0] = '\0';
    x->etag[0] = x->lastmod[0] = x->crange[0] = x->validator[0] = '\0';
    x->bytes = x->headlen = x->offset = x->partial = 0;
    x->total = -1;
    x->started = x->stopped = x->retryable = false;
    x->resumable = x->have_meta = x->restart = false;
    x->last_now = 0;
    x->last_data = mono_now();
    if (x->rq->resume && open_resume(x) < 0)
        return -1;
    x->no_range = false;
    set_options(x);
    struct curl_slist *hdrs = ask_range(x);
    CURLcode rc = curl_easy_perform(x->h);
    if (hdrs) {
        curl_easy_setopt(x->h, CURLOPT_RANGE, NULL);
        curl_easy_setopt(x->h, CURLOPT_HTTPHEADER, NULL);
        curl_slist_free_all(hdrs);
    }
    long status = 0;
    curl_easy_getinfo(x->h, CURLINFO_RESPONSE_CODE, &status);
    x->status = status;
    if (rc == CURLE_WRITE_ERROR && x->stopped && x->why[0]) {
        if (x->code == PDFDL_FAIL_CONTENT)
            not_pdf(x); /* says what the body looks like */
    } else if ((rc == CURLE_OK || (rc == CURLE_WRITE_ERROR && x->stopped)) &&
               !is_2xx(status)) {
        http_failure(x, status);
        x->restart = status == 416 && x->offset > 0; /* the file shrank, or is whole */
    } else if (rc != CURLE_OK) {
        curl_failure(x, rc);
    } else if (!x->started && !start_body(x)) {
        /* A 2xx answer with an empty body: name and file come now. */
    } else {
        check_body(x);
    }
    if (x->why[0] == '\0' && x->resumable) {
        unlink(x->meta); /* complete: nothing left to resume */
        return 0;
    }
    if (x->why[0] == '\0') {
        int fd = x->fd;
        x->fd = -1;
        if (close(fd) == 0)
            return 0;
        char e[128];
        errno_text(errno, e, sizeof(e));
        fail(x, PDFDL_FAIL_LOCAL, false, "cannot write %s: %s", x->tmp, e);
    }
    if (x->resumable)
        keep_or_drop(x);
    else
        drop_tmp(x);
    return -1;
}

/* Seconds to wait before attempt number @next (2, 3, ...). */
static double backoff(struct xfer *x, unsigned next)
{
    double wait = BACKOFF_FIRST * pow(2, next - 2);
    curl_off_t ra = -1;
    if (wait > BACKOFF_MAX)
        wait = BACKOFF_MAX;
    if (curl_easy_getinfo(x->h, CURLINFO_RETRY_AFTER, &ra) == CURLE_OK && ra > wait)
        wait = ra > RETRY_AFTER_MAX ? RETRY_AFTER_MAX : (double)ra;
    return wait;
}

static void sleep_s(double s)
{
    struct timespec ts = {(time_t)s, (long)((s - floor(s)) * 1e9)};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* Path of @name in @dir. 0, or -1 if it does not fit. */
static int join(char *out, size_t n, const char *dir, const char *name)
{
    int w = snprintf(out, n, "%s/%s", dir, name);
    return w < 0 || (size_t)w >= n ? -1 : 0;
}

/*
 * Where install() starts to probe a name's variants: for each name, one
 * past the last variant this process claimed. Claims are only added while
 * the run lasts (main.c removes them at its end), so every variant below
 * that is taken, and probing from there finds the same first free one as
 * probing from 0 did, which cost O(k) openat() calls for the k-th URL of a
 * name (3,000 URLs with one name: 4.5 million calls, 55 s against 2.5 s
 * for 3,000 names on a 2-CPU VM). The O_EXCL create still decides, so
 * threads racing for a name, and the other processes of a process pool
 * (each with a table of its own, which only knows its own claims), stay
 * correct: a stale start only probes more. One run a process: the table is
 * never emptied. A name it has no room for starts at 0, as before.
 */
struct next_variant {
    char *name; /* NULL: a free slot */
    unsigned next;
};

static struct {
    pthread_mutex_t mu;
    struct next_variant *v; /* open addressing, cap a power of 2, at most half full */
    size_t cap, n;
} variants = {PTHREAD_MUTEX_INITIALIZER, NULL, 0, 0};

/* @name's slot in @v (@cap slots): its own, or the free one it would take. */
static struct next_variant *variant_slot(struct next_variant *v, size_t cap,
                                         const char *name)
{
    size_t i = (size_t)url_hash(name) & (cap - 1);
    while (v[i].name && strcmp(v[i].name, name) != 0)
        i = (i + 1) & (cap - 1);
    return &v[i];
}

/* The variant of @name to probe first. */
static unsigned variant_start(const char *name)
{
    pthread_mutex_lock(&variants.mu);
    unsigned n = variants.cap ? variant_slot(variants.v, variants.cap, name)->next : 0;
    pthread_mutex_unlock(&variants.mu);
    return n;
}

/* Doubles the table (its mutex held). False if out of memory. */
static bool variants_grow(void)
{
    size_t cap = variants.cap ? 2 * variants.cap : 64;
    struct next_variant *v = calloc(cap, sizeof(*v));
    if (!v)
        return false;
    for (size_t i = 0; i < variants.cap; i++)
        if (variants.v[i].name)
            *variant_slot(v, cap, variants.v[i].name) = variants.v[i];
    free(variants.v);
    variants.v = v;
    variants.cap = cap;
    return true;
}

/* Variant @n of @name is claimed: later probes start past it (never back). */
static void variant_claimed(const char *name, unsigned n)
{
    pthread_mutex_lock(&variants.mu);
    if (2 * (variants.n + 1) <= variants.cap || variants_grow()) {
        struct next_variant *e = variant_slot(variants.v, variants.cap, name);
        if (!e->name && (e->name = strdup(name)) != NULL)
            variants.n++;
        if (e->name && e->next <= n)
            e->next = n + 1;
    }
    pthread_mutex_unlock(&variants.mu);
}

/*
 * Moves the checked file to its name: the first variant of x->name that no
 * other URL of this run has claimed. --no-clobber keeps a file already there
 * (link() fails rather than replace); otherwise rename() replaces it
 * atomically. Sets *kept and @final. 0, or -1 (x->why set).
 */
static int install(struct xfer *x, bool *kept, char *final, size_t finalsz)
{
    char dest[PATH_MAX], e[128];
    int claims = run_lock(x->rq); /* held while claiming: see run_lock */
    if (claims < 0) {
        snprintf(final, finalsz, "%s", x->name);
        goto failed;
    }
    for (unsigned n = variant_start(x->name); n < 10000; n++) {
        if (pdfdl_name_variant(x->name, n, final, finalsz) != 0 ||
            join(dest, sizeof(dest), x->rq->outdir, final) != 0)
            break;
        int fd = openat(claims, final, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd < 0 && errno == EEXIST)
            continue; /* another URL of this run has this name */
        int err = errno;
        if (fd >= 0) {
            close(fd);
            variant_claimed(x->name, n);
        }
        close(claims);
        errno = err;
        if (fd < 0)
            goto failed;
        if (!x->rq->no_clobber) {
            if (rename(x->tmp, dest) != 0)
                goto failed;
        } else if (link(x->tmp, dest) == 0) {
            unlink(x->tmp);
        } else if (errno == EEXIST) {
            *kept = true;
            unlink(x->tmp);
        } else {
            goto failed;
        }
        x->tmp[0] = '\0';
        if (x->fd >= 0) {
            /* -c: the file was kept open for its lock. write() has already
             * reported any error; closing only releases the lock. */
            close(x->fd);
            x->fd = -1;
        }
        return 0;
    }
    close(claims);
    fail(x, PDFDL_FAIL_LOCAL, false, "no free name for %s in %s", x->name, x->rq->outdir);
    drop_tmp(x);
    return -1;
failed:
    errno_text(errno, e, sizeof(e));
    fail(x, PDFDL_FAIL_LOCAL, false, "cannot save as %s/%s: %s", x->rq->outdir, final, e);
    drop_tmp(x);
    return -1;
}

/* --no-clobber: is the name the URL itself gives already in the folder? */
static bool already_there(const struct pdfdl_request *rq, char *name, size_t n)
{
    char path[PATH_MAX];
    struct stat st;
    return pdfdl_name_from_url(rq->url, name, n) == PDFDL_NAME_OK &&
           join(path, sizeof(path), rq->outdir, name) == 0 && lstat(path, &st) == 0;
}

/* Hands @o back as the task's result; raises only when out of memory. */
static void answer(task_t *t, const struct pdfdl_outcome *o)
{
    size_t len;
    char *rec = pdfdl_outcome_encode(o, &len);
    if (rec)
        task_return(t, rec, len, free);
    else
        task_raise(t, PDFDL_FAIL_LOCAL, "out of memory");
}

/* Answers a failure: @why in words, with what the transfers got. */
static void answer_failure(task_t *t, struct pdfdl_outcome *o, int code, const char *fmt,
                           ...) CF_PRINTF(4, 5);

static void answer_failure(task_t *t, struct pdfdl_outcome *o, int code, const char *fmt,
                           ...)
{
    char why[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof(why), fmt, ap);
    va_end(ap);
    o->ok = false;
    o->code = code;
    o->why = why;
    o->name = "";
    answer(t, o);
}

static bool http_url(const char *url)
{
    return strncasecmp(url, "http://", 7) == 0 || strncasecmp(url, "https://", 8) == 0;
}

void pdfdl_download_task(task_t *t)
{
    size_t len;
    const void *arg = task_arg(t, &len);
    struct pdfdl_request rq;
    struct xfer x = {.fd = -1};
    char final[PDFDL_NAME_MAX + 16];
    bool kept = false;
    double start = mono_now();
    struct pdfdl_outcome o = {.ok = true, .why = "", .name = final};

    if (pdfdl_request_decode(arg, len, &rq) != 0) {
        task_raise(t, PDFDL_FAIL_REQUEST, "malformed request record");
        return;
    }
    if (!http_url(rq.url)) {
        answer_failure(t, &o, PDFDL_FAIL_REQUEST, "not an http:// or https:// URL");
        return;
    }
    if (rq.no_clobber && already_there(&rq, final, sizeof(final))) {
        o.kept = true;
        o.seconds = mono_now() - start;
        answer(t, &o);
        return;
    }
    x.rq = &rq;
    x.h = thread_handle();
    if (!x.h) {
        answer_failure(t, &o, PDFDL_FAIL_LOCAL, "cannot start libcurl (out of memory?)");
        return;
    }
    unsigned n = 1, restarts = 0;
    int rc;
    while ((rc = attempt(&x)) != 0 && !task_should_stop(t)) {
        if (x.restart && restarts == 0) {
            /* -c: the server could not give the rest (416, a wrong range):
             * ask at once for the whole file, once, as a new download. */
            restarts++;
            x.no_range = true;
            continue;
        }
        if (!x.retryable || n > rq.retries)
            break;
        n++;
        sleep_s(backoff(&x, n));
    }
    /* The handle stays with this thread for its next URL: forget the
     * pointers into this task's stack (error buffer, callbacks' data). */
    curl_easy_reset(x.h);
    o.status = x.status;
    o.bytes = x.bytes;
    o.resumed_from = x.offset;
    o.partial = x.partial;
    o.attempts = n + restarts;
    if (rc == 0)
        rc = install(&x, &kept, final, sizeof(final));
    o.seconds = mono_now() - start;
    if (rc != 0) {
        if (n > 1)
            answer_failure(t, &o, x.code, "%s (after %u attempts)", x.why, n);
        else
            answer_failure(t, &o, x.code, "%s", x.why);
        return;
    }
    o.kept = kept;
    if (kept)
        o.bytes = 0;
    answer(t, &o);
}
