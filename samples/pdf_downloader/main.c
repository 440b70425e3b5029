/*
 * pdf_downloader: downloads files in parallel on a cfutures executor.
 *
 * The course's program, and this one, line for line in spirit:
 *
 *   def main(urls):
 *       with ThreadPoolExecutor(max_workers=5) as executor:
 *           futures = [executor.submit(downloader, url) for url in urls]
 *           for future in as_completed(futures):
 *               print(future.result())
 *
 * Each task gets a serialized request (record.h) and answers with a
 * serialized outcome or task_raise, so the same program runs on a thread
 * pool or, where cfutures has one, a process pool (--executor process).
 *
 * DESIGN
 * The main thread parses options, submits one task per URL and walks the
 * futures with as_completed, printing each result; it is the only thread
 * that prints results. On a terminal a progress thread redraws one status
 * line every quarter second; `out_lock` keeps its line and the main
 * thread's messages apart. Bytes in flight are measured by the sizes of the
 * tasks' temporary files in the target folder, which works whichever pool
 * (thread or process) writes them.
 */
#include "config.h"

#include <cfutures.h>
#include <curl/curl.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "fetch.h"
#include "names.h"
#include "record.h"

#define PROG "pdf_downloader"
#define DEFAULT_BASE "https://www.irs.gov/pub/irs-pdf/"
#define DEFAULT_WORKERS 5
#define DEFAULT_TIMEOUT 10.0
#define DEFAULT_RETRIES 3

/* The course's five forms, fetched when no URL is given. */
static const char *const course_forms[] = {"f1040.pdf", "f1040a.pdf", "f1040ez.pdf",
                                           "f1040es.pdf", "f1040sb.pdf"};

struct options {
    int workers;
    const char *outdir;
    const char *base;
    double timeout;
    unsigned retries;
    bool process; /* --executor process */
    bool any_type, no_clobber, quiet;
    bool had_input;          /* -i was given: an empty list means no URL, not the forms */
    bool resume;             /* -c: keep cut downloads and resume them */
    const char *report_path; /* --report FILE ("-": stdout), or NULL */
};

/* A growing list of URLs (owned strings). */
struct urls {
    char **v;
    size_t n, cap;
};

/* Counters the progress line reads (written by the main thread). */
static atomic_size_t n_done;
static atomic_ullong bytes_done;
static pthread_mutex_t out_lock = PTHREAD_MUTEX_INITIALIZER;
/* Where the human lines and the progress line go: stdout, or stderr when
 * the report takes stdout (--report -). Set before any thread starts. */
static FILE *hout;
/* --report's stream, or NULL; written by the main thread only. */
static FILE *report_out;
static const char *report_name; /* its FILE, for messages */
/* The first error (an errno) that lost what was written to standard output
 * or to the report, 0 if none: the exit status is then 1. Main thread. */
static int stdout_lost, report_lost;
/* A progress line is drawn (`human` is a terminal, no -q); read by the
 * signal thread, so atomic. */
static atomic_bool progress_on;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void usage(FILE *f)
{
    fprintf(
        f,
        "Usage: " PROG " [OPTION]... [URL]...\n"
        "Downloads the URLs in parallel into a folder, each to a temporary file\n"
        "renamed only once it is complete and checked: status 2xx, length equal\n"
        "to Content-Length, body starting with %%PDF- (unless --any-type).\n"
        "With no URL, fetches the course's five IRS forms (f1040, f1040a,\n"
        "f1040ez, f1040es, f1040sb) under --base.\n"
        "\n"
        "  -i, --input FILE     read URLs from FILE, one a line ('#' comments;\n"
        "                       '-' for standard input); may be repeated\n"
        "      --base URL       where the course's forms are (default " DEFAULT_BASE ")\n"
        "  -j, --jobs N         N downloads at a time (default %d, as in the course)\n"
        "  -o, --output DIR     save into DIR, created if missing (default .)\n"
        "      --timeout S      give up on a connection or a stalled transfer after\n"
        "                       S seconds (default %g)\n"
        "      --retries N      retry N times on 5xx, 429 and connection errors,\n"
        "                       waiting 0.25 s, 0.5 s, 1 s, ... or Retry-After\n"
        "                       (default %d)\n"
        "      --executor KIND  thread (default) or process: the pool that runs\n"
        "                       the downloads\n"
        "      --any-type       keep bodies that are not PDFs\n"
        "      --no-clobber     never replace a file already in DIR\n"
        "  -c, --continue       keep a cut download's hidden temporary file, and\n"
        "                       resume it on the next run with -c (or the next\n"
        "                       retry): Range + If-Range (ETag, else\n"
        "                       Last-Modified); a server that ignores Range,\n"
        "                       answers 416 or has a changed file gives the\n"
        "                       whole file again. The result is checked whole\n"
        "                       as without -c. Kept only for failures --retries\n"
        "                       would retry, from servers that send a validator\n"
        "      --report FILE    write one JSON object a line to FILE ('-' for\n"
        "                       standard output: the other lines then go to\n"
        "                       standard error) as each URL finishes: url, file\n"
        "                       (DIR/NAME, or null), ok, kept, status (HTTP, or\n"
        "                       null), bytes (received by the last attempt),\n"
        "                       resumed_from, partial (bytes kept for -c),\n"
        "                       seconds, retries, error (words, or null)\n"
        "  -q, --quiet          print failures only\n"
        "  -h, --help           show this help and exit\n"
        "  -V, --version        show the version and exit\n"
        "\n"
        "Names come from the last segment of the URL's path after redirects\n"
        "(at most 10), decoded so that they stay inside DIR; two URLs with one\n"
        "name give NAME.EXT and NAME.1.EXT. Without --no-clobber a file already\n"
        "there is replaced, but only by a complete, checked download.\n"
        "Interrupted (Ctrl-C, SIGTERM, SIGHUP, or SIGPIPE when its output is closed),\n"
        "it removes its partial files, or with -c keeps the resumable ones and\n"
        "lists them; it exits 128+signal.\n"
        "Exit status: 0 all downloaded, 1 some failed or the output (or report)\n"
        "could not be written, 2 bad usage.\n",
        DEFAULT_WORKERS, DEFAULT_TIMEOUT, DEFAULT_RETRIES);
}

static void version(void)
{
    curl_version_info_data *v = curl_version_info(CURLVERSION_NOW);
    printf(PROG " %s (cfutures %s, libcurl %s)\n", CFUTURES_VERSION, cfutures_version(),
           v ? v->version : "?");
}

static int usage_error(const char *fmt, ...) CF_PRINTF(1, 2);

static int usage_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, PROG ": ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\nTry '" PROG " --help'.\n");
    va_end(ap);
    return 2;
}

static int add_url(struct urls *u, const char *s, size_t len)
{
    if (u->n == u->cap) {
        size_t cap = u->cap ? 2 * u->cap : 16;
        char **v = realloc(u->v, cap * sizeof(*v));
        if (!v)
            return -1;
        u->v = v;
        u->cap = cap;
    }
    u->v[u->n] = strndup(s, len);
    return u->v[u->n] ? (int)(u->n++, 0) : -1;
}

static void free_urls(struct urls *u)
{
    for (size_t i = 0; i < u->n; i++)
        free(u->v[i]);
    free(u->v);
}

/* Reads URLs from @path ("-": stdin): one a line, blank and '#' lines skipped. */
static int read_list(const char *path, struct urls *u)
{
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "r");
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    int rc = 0;
    if (!f)
        return -1;
    while ((n = getline(&line, &cap, f)) >= 0) {
        char *s = line, *e = line + n;
        while (s < e && (*s == ' ' || *s == '\t'))
            s++;
        while (e > s && (e[-1] == '\n' || e[-1] == '\r' || e[-1] == ' ' || e[-1] == '\t'))
            e--;
        if (s == e || *s == '#')
            continue;
        if (add_url(u, s, (size_t)(e - s)) != 0) {
            rc = -1;
            break;
        }
    }
    if (ferror(f))
        rc = -1;
    free(line);
    if (f != stdin)
        fclose(f);
    return rc;
}

/* mkdir -p @dir. 0, or -1 with errno. */
static int make_dirs(const char *dir)
{
    char path[PATH_MAX];
    struct stat st;
    if (!*dir) { /* the loop below starts past the first byte */
        errno = ENOENT;
        return -1;
    }
    if (snprintf(path, sizeof(path), "%s", dir) >= (int)sizeof(path)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    for (char *p = path + 1;; p++) {
        if (*p != '/' && *p != '\0')
            continue;
        char c = *p;
        *p = '\0';
        if (mkdir(path, 0777) != 0 && errno != EEXIST)
            return -1;
        *p = c;
        if (c == '\0')
            break;
    }
    if (stat(path, &st) != 0)
        return -1;
    if (!S_ISDIR(st.st_mode)) {
        errno = ENOTDIR;
        return -1;
    }
    return access(path, W_OK | X_OK);
}

static int parse_uint(const char *s, long max, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (!*s || *end || errno || v < 0 || v > max)
        return -1;
    *out = v;
    return 0;
}

/* Parses argv into @o and @u. Returns -1 to go on, or an exit status. */
static int parse_args(int argc, char **argv, struct options *o, struct urls *u)
{
    enum {
        OPT_BASE = 256,
        OPT_TIMEOUT,
        OPT_RETRIES,
        OPT_EXECUTOR,
        OPT_ANY,
        OPT_NOCLOB,
        OPT_REPORT
    };
    static const struct option longopts[] = {
        {"input", required_argument, NULL, 'i'},
        {"base", required_argument, NULL, OPT_BASE},
        {"jobs", required_argument, NULL, 'j'},
        {"output", required_argument, NULL, 'o'},
        {"timeout", required_argument, NULL, OPT_TIMEOUT},
        {"retries", required_argument, NULL, OPT_RETRIES},
        {"executor", required_argument, NULL, OPT_EXECUTOR},
        {"any-type", no_argument, NULL, OPT_ANY},
        {"no-clobber", no_argument, NULL, OPT_NOCLOB},
        {"report", required_argument, NULL, OPT_REPORT},
        {"continue", no_argument, NULL, 'c'},
        {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0}};
    int c;
    long v;
    char *end;
    /* getopt's own messages name argv[0]: under libtool that is .libs/... */
    argv[0] = (char *)PROG;
    while ((c = getopt_long(argc, argv, "ci:j:o:qhV", longopts, NULL)) != -1) {
        switch (c) {
        case 'i':
            o->had_input = true;
            if (read_list(optarg, u) != 0) {
                fprintf(stderr, PROG ": cannot read %s: %s\n", optarg, strerror(errno));
                return 2;
            }
            break;
        case OPT_BASE:
            o->base = optarg;
            break;
        case 'j':
            if (parse_uint(optarg, 1024, &v) != 0 || v < 1)
                return usage_error(
                    "-j wants a number of workers from 1 to 1024, not '%s'", optarg);
            o->workers = (int)v;
            break;
        case 'o':
            if (!*optarg)
                return usage_error("%s", "-o wants a folder name, not ''");
            o->outdir = optarg;
            break;
        case OPT_TIMEOUT:
            errno = 0;
            o->timeout = strtod(optarg, &end);
            if (!*optarg || *end || errno ||
                !(o->timeout >= 0.001 && o->timeout <= 86400))
                return usage_error(
                    "--timeout wants seconds from 0.001 to 86400, not '%s'", optarg);
            break;
        case OPT_RETRIES:
            if (parse_uint(optarg, 100, &v) != 0)
                return usage_error("--retries wants a number from 0 to 100, not '%s'",
                                   optarg);
            o->retries = (unsigned)v;
            break;
        case OPT_EXECUTOR:
            if (strcmp(optarg, "thread") == 0)
                o->process = false;
            else if (strcmp(optarg, "process") == 0)
                o->process = true;
            else
                return usage_error("--executor is thread or process, not '%s'", optarg);
            break;
        case OPT_ANY:
            o->any_type = true;
            break;
        case OPT_NOCLOB:
            o->no_clobber = true;
            break;
        case OPT_REPORT:
            o->report_path = optarg;
            break;
        case 'c':
            o->resume = true;
            break;
        case 'q':
            o->quiet = true;
            break;
        case 'h':
            usage(stdout);
            return 0;
        case 'V':
            version();
            return 0;
        default:
            fprintf(stderr, "Try '" PROG " --help'.\n");
            return 2;
        }
    }
#if !HAVE_DECL_PROCESS_POOL_EXECUTOR_NEW
    if (o->process)
        return usage_error("%s", "--executor process: this cfutures has no process pool "
                                 "yet (no process_pool_executor_new)");
#endif
    for (int i = optind; i < argc; i++)
        if (add_url(u, argv[i], strlen(argv[i])) != 0)
            return usage_error("%s", "out of memory");
    return -1;
}

/* The course's forms under --base. */
static int add_course_forms(const char *base, struct urls *u)
{
    size_t bl = strlen(base);
    bool slash = bl > 0 && base[bl - 1] == '/';
    for (size_t i = 0; i < sizeof(course_forms) / sizeof(course_forms[0]); i++) {
        char url[4096];
        int w =
            snprintf(url, sizeof(url), "%s%s%s", base, slash ? "" : "/", course_forms[i]);
        if (w < 0 || (size_t)w >= sizeof(url) || add_url(u, url, (size_t)w) != 0)
            return -1;
    }
    return 0;
}

/* "2.1 MiB", "512 KiB", "80 B". */
static void human(double bytes, char *buf, size_t n)
{
    if (bytes >= 1024.0 * 1024 * 1024)
        snprintf(buf, n, "%.2f GiB", bytes / (1024.0 * 1024 * 1024));
    else if (bytes >= 1024.0 * 1024)
        snprintf(buf, n, "%.1f MiB", bytes / (1024.0 * 1024));
    else if (bytes >= 1024)
        snprintf(buf, n, "%.0f KiB", bytes / 1024);
    else
        snprintf(buf, n, "%.0f B", bytes);
}

/* Bytes sitting in the tasks' temporary files in @dir right now. */
static unsigned long long bytes_in_flight(const char *dir)
{
    unsigned long long sum = 0;
    DIR *d = opendir(dir);
    struct dirent *e;
    struct stat st;
    if (!d)
        return 0;
    while ((e = readdir(d)) != NULL)
        if (strncmp(e->d_name, PDFDL_TMP_PREFIX, strlen(PDFDL_TMP_PREFIX)) == 0 &&
            fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0)
            sum += (unsigned long long)st.st_size;
    closedir(d);
    return sum;
}

/* What the progress thread needs; immutable while it runs, but `stop`. */
struct progress {
    const char *outdir;
    size_t total;
    double start;
    atomic_bool stop;
    pthread_t thread;
};

static void clear_line_locked(void)
{
    if (atomic_load(&progress_on)) {
        fputs("\r\033[K", hout);
        fflush(hout);
    }
}

static void *progress_main(void *arg)
{
    struct progress *p = arg;
    while (!atomic_load(&p->stop)) {
        struct timespec ts = {0, 250 * 1000 * 1000};
        nanosleep(&ts, NULL);
        size_t done = atomic_load(&n_done);
        double bytes = (double)(atomic_load(&bytes_done) + bytes_in_flight(p->outdir));
        double el = now_s() - p->start;
        char b[32], r[32], eta[32] = "";
        human(bytes, b, sizeof(b));
        human(el > 0 ? bytes / el : 0, r, sizeof(r));
        if (done > 0 && done < p->total)
            snprintf(eta, sizeof(eta), "  ETA %.0f s",
                     el * (double)(p->total - done) / (double)done);
        pthread_mutex_lock(&out_lock);
        if (!atomic_load(&p->stop)) {
            fprintf(hout, "\r\033[K[%zu/%zu] %s  %s/s%s", done, p->total, b, r, eta);
            fflush(hout);
        }
        pthread_mutex_unlock(&out_lock);
    }
    return NULL;
}

/* Maps a future back to its URL's index. */
struct slot {
    future_t *f;
    size_t i;
};

static int slot_cmp(const void *a, const void *b)
{
    uintptr_t x = (uintptr_t)((const struct slot *)a)->f;
    uintptr_t y = (uintptr_t)((const struct slot *)b)->f;
    return x < y ? -1 : x > y;
}

/* Totals for the summary. */
struct totals {
    size_t ok, kept, failed;
    unsigned long long bytes;
};

static void report_failure(const char *url, const char *why, struct totals *tot)
{
    tot->failed++;
    pthread_mutex_lock(&out_lock);
    clear_line_locked();
    fprintf(stderr, PROG ": %s: %s\n", url, why);
    pthread_mutex_unlock(&out_lock);
}

/*
 * Flushes @f (standard output, or the report) after the main thread wrote
 * to it; call without out_lock. SIGPIPE is blocked in every thread (the
 * signal thread takes it with sigwait), so a reader that went away
 * (`pdf_downloader ... | head`) shows here as EPIPE: the signal goes to
 * that thread, which removes the partial files and exits 128+SIGPIPE, as
 * for SIGTERM. This thread waits for that exit. Any other error (a full
 * disk) is said once per stream and makes the exit status 1; the
 * downloads go on.
 */
static void flush_output(FILE *f)
{
    if (fflush(f) == 0 && !ferror(f))
        return;
    int e = errno ? errno : EIO; /* as the failed write left it */
    if (e == EPIPE) {
        kill(getpid(), SIGPIPE);
        for (;;)
            pause();
    }
    int *lost = f == stdout ? &stdout_lost : f == report_out ? &report_lost : NULL;
    if (!lost || *lost) /* standard error (--report -): nowhere to say it */
        return;
    *lost = e;
    pthread_mutex_lock(&out_lock);
    clear_line_locked();
    if (f == stdout)
        fprintf(stderr, PROG ": cannot write to standard output: %s\n", strerror(e));
    else
        fprintf(stderr, PROG ": cannot write the report to %s: %s\n", report_name,
                strerror(e));
    pthread_mutex_unlock(&out_lock);
}

/*
 * Writes @s as a JSON string: quotes, backslashes and control bytes escaped,
 * and each byte that is not part of valid UTF-8 written as U+FFFD, so that
 * every line of the report parses whatever bytes a URL or name holds.
 */
static void json_string(FILE *f, const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    putc('"', f);
    while (*p) {
        unsigned c = *p;
        size_t n = c < 0x80                 ? 1
                   : c >= 0xC2 && c <= 0xDF ? 2
                   : c >= 0xE0 && c <= 0xEF ? 3
                   : c >= 0xF0 && c <= 0xF4 ? 4
                                            : 0;
        /* The second byte's range rules out overlong forms, surrogates and
         * code points past U+10FFFF (RFC 3629, section 4). */
        unsigned lo = c == 0xE0 ? 0xA0 : c == 0xF0 ? 0x90 : 0x80;
        unsigned hi = c == 0xED ? 0x9F : c == 0xF4 ? 0x8F : 0xBF;
        size_t k = 1;
        if (n > 1 && p[1] >= lo && p[1] <= hi)
            for (k = 2; k < n && (p[k] & 0xC0) == 0x80; k++)
                ;
        if (n == 1 && (c == '"' || c == '\\'))
            fprintf(f, "\\%c", (char)c);
        else if (n == 1 && c < 0x20)
            fprintf(f, "\\u%04x", c);
        else if (n == 1 || (n > 1 && k == n))
            fwrite(p, 1, n, f);
        else
            fputs("\\ufffd", f); /* and skip one byte only */
        p += n > 1 && k == n ? n : 1;
    }
    putc('"', f);
}

/* One line of --report for one URL: @o is its outcome, NULL if the task
 * raised (then @why says why). */
static void report_line(const char *url, const struct options *opt,
                        const struct pdfdl_outcome *o, const char *why)
{
    FILE *f = report_out;
    fputs("{\"url\":", f);
    json_string(f, url);
    fputs(",\"file\":", f);
    if (o && o->ok) {
        char path[PATH_MAX];
        snprintf(path, sizeof(path), "%s/%s", opt->outdir, o->name);
        json_string(f, path);
    } else {
        fputs("null", f);
    }
    fprintf(f, ",\"ok\":%s,\"kept\":%s,\"status\":", o && o->ok ? "true" : "false",
            o && o->kept ? "true" : "false");
    if (o && o->status > 0)
        fprintf(f, "%ld", o->status);
    else
        fputs("null", f);
    fprintf(f,
            ",\"bytes\":%llu,\"resumed_from\":%llu,\"partial\":%llu,\"seconds\":%.3f,"
            "\"retries\":%u,\"error\":",
            o ? (unsigned long long)o->bytes : 0ULL,
            o ? (unsigned long long)o->resumed_from : 0ULL,
            o ? (unsigned long long)o->partial : 0ULL, o ? o->seconds : 0.0,
            o && o->attempts > 1 ? o->attempts - 1 : 0);
    if (o && o->ok)
        fputs("null", f);
    else
        json_string(f, o ? o->why : why);
    fputs("}\n", f);
    flush_output(f);
}

/* Prints one completed future's result, as the course's print(future.result()). */
static void report(future_t *f, const char *url, const struct options *o,
                   struct totals *tot)
{
    const void *data;
    size_t len;
    const future_error_t *err = NULL;
    struct pdfdl_outcome out;
    char why[600], a[32];
    int rc = future_result(f, FUT_FOREVER, &data, &len);
    if (rc != 0) {
        if (future_exception(f, 0, &err) == 0 && err && err->message[0])
            snprintf(why, sizeof(why), "%s", err->message);
        else
            snprintf(why, sizeof(why), "the task failed: %s", future_strerror(rc));
    } else if (pdfdl_outcome_decode(data, len, &out) != 0) {
        snprintf(why, sizeof(why), "the task answered with a malformed record");
        rc = -1;
    }
    if (report_out)
        report_line(url, o, rc == 0 ? &out : NULL, why);
    if (rc != 0) {
        report_failure(url, why, tot);
        return;
    }
    if (!out.ok) {
        if (out.partial > 0)
            snprintf(why, sizeof(why), "%s; %s bytes kept to resume with -c", out.why,
                     pdfdl_thousands(out.partial, a, sizeof(a)));
        else
            snprintf(why, sizeof(why), "%s", out.why);
        report_failure(url, why, tot);
        return;
    }
    tot->ok++;
    tot->kept += out.kept;
    tot->bytes += out.bytes;
    atomic_fetch_add(&bytes_done, out.bytes);
    if (o->quiet)
        return;
    pthread_mutex_lock(&out_lock);
    clear_line_locked();
    if (out.kept)
        fprintf(hout, "Kept %s: already there (--no-clobber)\n", out.name);
    else if (out.resumed_from > 0)
        fprintf(hout, "Finished downloading %s (resumed at %s bytes)\n", out.name,
                pdfdl_thousands(out.resumed_from, a, sizeof(a)));
    else
        fprintf(hout, "Finished downloading %s\n", out.name);
    pthread_mutex_unlock(&out_lock);
    flush_output(hout);
}

static void print_summary(const struct totals *t, double secs)
{
    char b[32], r[32], kept[48] = "";
    human((double)t->bytes, b, sizeof(b));
    human(secs > 0 ? (double)t->bytes / secs : 0, r, sizeof(r));
    if (t->kept)
        snprintf(kept, sizeof(kept), " (%zu kept)", t->kept);
    fprintf(stderr, "%zu ok%s, %zu failed, %s in %.2f s (%s/s)\n", t->ok, kept, t->failed,
            b, secs, r);
}

/* Removes the claims folder and the empty files in it. */
static void remove_claims(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    if (d) {
        while ((e = readdir(d)) != NULL)
            if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
                unlinkat(dirfd(d), e->d_name, 0);
        closedir(d);
    }
    rmdir(dir);
}

/* What the signal thread cleans up; immutable once it starts, but `urls`. */
struct interrupt {
    sigset_t set;
    char tmp_prefix[64]; /* this run's temporary files: PREFIX + token */
    const char *outdir;
    const char *claims;
    bool resume;             /* -c */
    const struct urls *urls; /* this run's URLs; NULL once freed (urls_lock) */
    int sig;                 /* the signal taken, for the watchdog */
};

/* Guards struct interrupt's `urls`; never held across output, so that the
 * signal thread gets it however stuck a write is. */
static pthread_mutex_t urls_lock = PTHREAD_MUTEX_INITIALIZER;

/*
 * -c: removes the resumable files of this run's URLs that hold no bytes (or
 * have no sidecar to resume them with), and lists the others (@say: else
 * only counts them). Returns how many are kept. Holds urls_lock.
 */
static size_t keep_partials(const struct interrupt *in, bool say)
{
    char part[PATH_MAX], meta[PATH_MAX], a[32];
    struct stat st, ms;
    size_t kept = 0;
    for (size_t i = 0; in->urls && i < in->urls->n; i++) {
        const char *url = in->urls->v[i];
        if (pdfdl_resume_paths(in->outdir, url, part, meta, sizeof(part)) != 0 ||
            stat(part, &st) != 0)
            continue;
        if (st.st_size > 0 && stat(meta, &ms) == 0) {
            if (say)
                fprintf(stderr, PROG ": kept %s bytes of %s in %s\n",
                        pdfdl_thousands((unsigned long long)st.st_size, a, sizeof(a)),
                        url, part);
            kept++;
        } else {
            unlink(part);
            unlink(meta);
        }
    }
    return kept;
}

/* Exits as the signal would, a second after it came, if the signal thread
 * is still stuck writing its lines (a full pipe, a stopped terminal). The
 * exit_group system call itself: a sanitizer's _exit flushes stdio first,
 * and would wait for the lock of the stream that is stuck. */
static void *watchdog_main(void *arg)
{
    const struct interrupt *in = arg;
    struct timespec ts = {1, 0};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
    syscall(SYS_exit_group, 128 + in->sig);
    _exit(128 + in->sig);
}

/*
 * Waits for SIGINT, SIGTERM, SIGHUP or SIGPIPE (blocked in every other
 * thread; output meeting a closed pipe is sent here: see flush_output),
 * then removes this run's temporary files and claims, so that an
 * interrupted run leaves no partial file behind (but, with -c, the
 * resumable ones, which it lists), and exits as the signal would.
 * The files go first, under an exclusive flock() on the claims folder that
 * stops the tasks creating any more (fetch.c, run_lock) and that is held
 * until _exit. Only then the lines, under out_lock: a thread may hold it
 * while stuck writing to a full pipe, and so may this one; a watchdog
 * thread exits a second later whatever happens.
 */
static void *interrupt_main(void *arg)
{
    struct interrupt *in = arg;
    int sig = 0;
    pthread_t dog;
    if (sigwait(&in->set, &sig) != 0)
        return NULL;
    in->sig = sig;
    int lock = open(in->claims, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    while (lock >= 0 && flock(lock, LOCK_EX) != 0 && errno == EINTR)
        ;
    remove_claims(in->claims);
    DIR *d = opendir(in->outdir);
    struct dirent *e;
    if (d) {
        while ((e = readdir(d)) != NULL)
            if (strncmp(e->d_name, in->tmp_prefix, strlen(in->tmp_prefix)) == 0)
                unlinkat(dirfd(d), e->d_name, 0);
        closedir(d);
    }
    /* Held until _exit: `urls` stays. */
    pthread_mutex_lock(&urls_lock);
    if (in->resume)
        keep_partials(in, false);
    if (pthread_create(&dog, NULL, watchdog_main, in) == 0)
        pthread_detach(dog);
    /* Held until _exit: no other line is printed. */
    pthread_mutex_lock(&out_lock);
    clear_line_locked();
    if (in->resume) {
        size_t kept = keep_partials(in, true);
        fprintf(stderr,
                PROG ": interrupted: %zu partial download%s kept; run again with -c "
                     "to resume\n",
                kept, kept == 1 ? "" : "s");
    } else {
        fprintf(stderr, PROG ": interrupted: partial downloads removed\n");
    }
    _exit(128 + sig);
}

/* Blocks the stop signals in this thread (and so in every thread started
 * after) and starts the thread that handles them. 0, or -1. */
static int start_interrupt_thread(struct interrupt *in)
{
    pthread_t t;
    sigemptyset(&in->set);
    sigaddset(&in->set, SIGINT);
    sigaddset(&in->set, SIGTERM);
    sigaddset(&in->set, SIGHUP);
    sigaddset(&in->set, SIGPIPE);
    if (pthread_sigmask(SIG_BLOCK, &in->set, NULL) != 0 ||
        pthread_create(&t, NULL, interrupt_main, in) != 0)
        return -1;
    pthread_detach(t);
    return 0;
}

static executor_t *make_executor(const struct options *o)
{
    executor_options_t eo = {.max_workers = o->workers, .thread_name_prefix = "pdfdl"};
#if HAVE_DECL_PROCESS_POOL_EXECUTOR_NEW
    if (o->process)
        return process_pool_executor_new(&eo);
#endif
    return thread_pool_executor_new(&eo);
}

/* Submits every URL, then prints results as they complete. */
static int run(const struct options *o, const struct urls *u, const char *claims,
               const char *token)
{
    size_t n = u->n;
    char **reqs = calloc(n, sizeof(*reqs));
    size_t *lens = calloc(n, sizeof(*lens));
    future_t **fs = calloc(n, sizeof(*fs));
    struct slot *slots = calloc(n, sizeof(*slots));
    struct totals tot = {0};
    struct progress prog = {.outdir = o->outdir, .total = n, .start = now_s()};
    executor_t *ex = NULL;
    size_t nf = 0;
    bool drawing = false;  /* the progress thread runs */
    bool complete = false; /* every future was reported */
    if (!reqs || !lens || !fs || !slots) {
        fprintf(stderr, PROG ": out of memory\n");
        goto out;
    }
    ex = make_executor(o);
    if (!ex) {
        /* errno holds a cfutures code (-FUT_E...): future_strerror names it */
        fprintf(stderr, PROG ": cannot start the executor: %s\n", future_strerror(-errno));
        goto out;
    }
    if (atomic_load(&progress_on)) {
        drawing = pthread_create(&prog.thread, NULL, progress_main, &prog) == 0;
        atomic_store(&progress_on, drawing);
    }
    /* futures = [executor.submit(downloader, url) for url in urls] */
    for (size_t i = 0; i < n; i++) {
        struct pdfdl_request rq = {u->v[i],     o->outdir,     claims,
                                   token,       o->timeout,    o->retries,
                                   o->any_type, o->no_clobber, o->resume};
        reqs[i] = pdfdl_request_encode(&rq, &lens[i]);
        future_t *f =
            reqs[i] ? executor_submit(ex, pdfdl_download_task, reqs[i], lens[i]) : NULL;
        if (!f) {
            char why[128];
            snprintf(why, sizeof(why), "cannot submit: %s", future_strerror(-errno));
            report_failure(u->v[i], why, &tot);
            atomic_fetch_add(&n_done, 1);
            continue;
        }
        slots[nf] = (struct slot){f, i};
        fs[nf++] = f;
    }
    qsort(slots, nf, sizeof(*slots), slot_cmp);
    /* for future in as_completed(futures): print(future.result()) */
    as_completed_t *it = as_completed_new(fs, nf, FUT_FOREVER);
    future_t *f;
    while (it && as_completed_next(it, &f) == 0) {
        struct slot key = {f, 0};
        const struct slot *s = bsearch(&key, slots, nf, sizeof(*slots), slot_cmp);
        report(f, u->v[s->i], o, &tot);
        atomic_fetch_add(&n_done, 1);
        future_unref(f);
    }
    if (!it)
        fprintf(stderr, PROG ": as_completed_new: %s\n", future_strerror(-errno));
    complete = it != NULL;
    as_completed_free(it);
out:
    /* URLs that never ran or were never reported (no executor, no
     * as_completed) failed too: the summary and exit status say so. */
    if (tot.ok + tot.failed < n)
        tot.failed = n - tot.ok;
    executor_free(ex);
    if (drawing) {
        atomic_store(&prog.stop, true);
        pthread_join(prog.thread, NULL);
        pthread_mutex_lock(&out_lock);
        clear_line_locked();
        pthread_mutex_unlock(&out_lock);
    }
    for (size_t i = 0; i < nf; i++)
        future_unref(fs[i]);
    for (size_t i = 0; reqs && i < n; i++)
        free(reqs[i]);
    free(reqs);
    free(lens);
    free(fs);
    free(slots);
    if (!o->quiet)
        print_summary(&tot, now_s() - prog.start);
    return complete && tot.failed == 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
    struct options o = {.workers = DEFAULT_WORKERS,
                        .outdir = ".",
                        .base = DEFAULT_BASE,
                        .timeout = DEFAULT_TIMEOUT,
                        .retries = DEFAULT_RETRIES};
    struct urls u = {0};
    static char claims[PATH_MAX]; /* static: the signal thread reads it */
    int rc = parse_args(argc, argv, &o, &u);
    if (rc >= 0)
        goto out;
    if (u.n == 0 && o.had_input) {
        if (!o.quiet)
            fprintf(stderr, PROG ": no URL in the -i input: nothing to do\n");
        rc = 0;
        goto out;
    }
    if (u.n == 0 && add_course_forms(o.base, &u) != 0) {
        rc = usage_error("%s", "--base is too long");
        goto out;
    }
    if (make_dirs(o.outdir) != 0) {
        fprintf(stderr, PROG ": cannot use %s as the output folder: %s\n", o.outdir,
                strerror(errno));
        rc = 2;
        goto out;
    }
    /* Opened (and so truncated) only once every other check passed. */
    hout = stdout;
    if (o.report_path && strcmp(o.report_path, "-") == 0) {
        report_out = stdout;
        hout = stderr;
    } else if (o.report_path) {
        report_out = fopen(o.report_path, "we");
        report_name = o.report_path;
        if (!report_out) {
            fprintf(stderr, PROG ": cannot write the report to %s: %s\n", o.report_path,
                    strerror(errno));
            rc = 2;
            goto out;
        }
    }
    const char *tmp = getenv("TMPDIR");
    snprintf(claims, sizeof(claims), "%s/" PROG "-names-XXXXXX",
             tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(claims)) {
        fprintf(stderr, PROG ": cannot create %s: %s\n", claims, strerror(errno));
        rc = 1;
        goto out;
    }
    const char *token = strrchr(claims, '-') + 1; /* mkdtemp's XXXXXX */
    static struct interrupt in;
    snprintf(in.tmp_prefix, sizeof(in.tmp_prefix), PDFDL_TMP_PREFIX "%s-", token);
    in.outdir = o.outdir;
    in.claims = claims;
    in.resume = o.resume;
    in.urls = &u;
    if (start_interrupt_thread(&in) != 0) {
        fprintf(stderr, PROG ": cannot start the signal thread\n");
        rc = 1;
    } else if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        fprintf(stderr, PROG ": cannot initialise libcurl\n");
        rc = 1;
    } else {
        atomic_store(&progress_on, !o.quiet && isatty(fileno(hout)));
        rc = run(&o, &u, claims, token);
        curl_global_cleanup();
    }
    pthread_mutex_lock(&urls_lock);
    in.urls = NULL; /* freed below: the signal thread must not read them */
    pthread_mutex_unlock(&urls_lock);
    remove_claims(claims);
out:
    if (report_out && report_out != stdout) {
        flush_output(report_out);
        if (fclose(report_out) != 0 && !report_lost) {
            report_lost = errno;
            fprintf(stderr, PROG ": cannot write the report to %s: %s\n", o.report_path,
                    strerror(errno));
        }
    }
    flush_output(stdout); /* --help and --version too */
    if ((stdout_lost || report_lost) && rc == 0)
        rc = 1;
    free_urls(&u);
    return rc;
}
