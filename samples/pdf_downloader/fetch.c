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
 * finishes first.
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

/* Opens a fresh temporary file in the target folder. 0, or -1 (x->why set). */
static int open_tmp(struct xfer *x)
{
    for (int tries = 0; tries < 100; tries++) {
        unsigned n = atomic_fetch_add(&tmp_counter, 1);
        snprintf(x->tmp, sizeof(x->tmp), "%s/" PDFDL_TMP_PREFIX "%s-%ld-%u.part",
                 x->rq->outdir, x->rq->run, (long)getpid(), n);
        x->fd = open(x->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
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
    if (pdfdl_name_from_url(eff ? eff : x->rq->url, x->name, sizeof(x->name)) !=
        PDFDL_NAME_OK) {
        fail(x, PDFDL_FAIL_NAME, false, "URL does not contain an extension");
        return false;
    }
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

/* Keeps the last status line's code and reason phrase ("404 Not Found"). */
static size_t on_header(char *p, size_t size, size_t nmemb, void *ud)
{
    struct xfer *x = ud;
    size_t len = size * nmemb;
    if (len > 5 && strncmp(p, "HTTP/", 5) == 0) {
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
                 pdfdl_thousands(x->bytes, a, sizeof(a)),
                 pdfdl_thousands((unsigned long long)cl, b, sizeof(b)));
        else
            fail(x, PDFDL_FAIL_NETWORK, true,
                 "timed out after %g s without data, at %s bytes", x->rq->timeout,
                 pdfdl_thousands(x->bytes, a, sizeof(a)));
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
                 pdfdl_thousands(x->bytes, a, sizeof(a)),
                 pdfdl_thousands((unsigned long long)cl, b, sizeof(b)));
        else
            fail(x, PDFDL_FAIL_NETWORK, true,
                 "body cut at %s bytes: the connection closed",
                 pdfdl_thousands(x->bytes, a, sizeof(a)));
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
    if (cl >= 0 && (uint64_t)cl != x->bytes) {
        fail(x, PDFDL_FAIL_NETWORK, true, "body cut at %s of %s bytes",
             pdfdl_thousands(x->bytes, a, sizeof(a)),
             pdfdl_thousands((unsigned long long)cl, b, sizeof(b)));
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

/* One try at the URL. 0: a checked body sits in x->tmp (closed). */
static int attempt(struct xfer *x)
{
    x->fd = -1;
    x->tmp[0] = x->name[0] = x->why[0] = x->errbuf[0] = x->status_line[0] = '\0';
    x->bytes = x->headlen = 0;
    x->started = x->stopped = x->retryable = false;
    x->last_now = 0;
    x->last_data = mono_now();
    set_options(x);
    CURLcode rc = curl_easy_perform(x->h);
    long status = 0;
    curl_easy_getinfo(x->h, CURLINFO_RESPONSE_CODE, &status);
    x->status = status;
    if (rc == CURLE_WRITE_ERROR && x->stopped && x->why[0]) {
        if (x->code == PDFDL_FAIL_CONTENT)
            not_pdf(x); /* says what the body looks like */
    } else if ((rc == CURLE_OK || (rc == CURLE_WRITE_ERROR && x->stopped)) &&
               !is_2xx(status)) {
        http_failure(x, status);
    } else if (rc != CURLE_OK) {
        curl_failure(x, rc);
    } else if (!x->started && !start_body(x)) {
        /* A 2xx answer with an empty body: name and file come now. */
    } else {
        check_body(x);
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
 * Moves the checked file to its name: the first variant of x->name that no
 * other URL of this run has claimed. --no-clobber keeps a file already there
 * (link() fails rather than replace); otherwise rename() replaces it
 * atomically. Sets *kept and @final. 0, or -1 (x->why set).
 */
static int install(struct xfer *x, bool *kept, char *final, size_t finalsz)
{
    char claim[PATH_MAX], dest[PATH_MAX], e[128];
    for (unsigned n = 0; n < 10000; n++) {
        if (pdfdl_name_variant(x->name, n, final, finalsz) != 0 ||
            join(claim, sizeof(claim), x->rq->claims, final) != 0 ||
            join(dest, sizeof(dest), x->rq->outdir, final) != 0)
            break;
        int fd = open(claim, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd < 0 && errno == EEXIST)
            continue; /* another URL of this run has this name */
        if (fd < 0)
            goto failed;
        close(fd);
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
        return 0;
    }
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
    unsigned n = 1;
    int rc;
    while ((rc = attempt(&x)) != 0 && x.retryable && n <= rq.retries &&
           !task_should_stop(t)) {
        n++;
        sleep_s(backoff(&x, n));
    }
    /* The handle stays with this thread for its next URL: forget the
     * pointers into this task's stack (error buffer, callbacks' data). */
    curl_easy_reset(x.h);
    o.status = x.status;
    o.bytes = x.bytes;
    o.attempts = n;
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
