/*
 * fetch_urls: the "Concurrency and Parallelism" exercise. Fetch many URLs
 * with a thread pool, then with a process pool, and compare.
 *
 *   def fetch_url(url):
 *       response = requests.get(url)
 *       return response.text
 *
 *   def fetch_urls_concurrently(urls):
 *       with concurrent.futures.ThreadPoolExecutor() as executor:
 *           futures = [executor.submit(fetch_url, url) for url in urls]
 *           results = [future.result()
 *                      for future in concurrent.futures.as_completed(futures)]
 *       return results
 *
 *   (fetch_urls_parallel: the same with ProcessPoolExecutor())
 *
 * requests.get is libcurl; the text comes back as the task's bytes (in a
 * process pool they are copied back over a pipe, where Python pickles the
 * str). A non-2xx answer is an error here, as raise_for_status() would make
 * it. Fetching is I/O: threads wait in parallel as well as processes do,
 * and cost less to start; the comparison shows it.
 *
 * Usage: fetch_urls [-e thread|process] URL...   (default: both, in turn)
 * Prints, for each kind: "<kind>: N results, B bytes in T seconds".
 */
#include "course.h"

#include <curl/curl.h>
#include <stdlib.h>
#include <unistd.h>

struct buf {
    char *data;
    size_t len, cap;
};

static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
    struct buf *b = ud;
    size_t add = size * n;
    if (b->len + add + 1 > b->cap) {
        size_t cap = (b->cap ? b->cap * 2 : 16384) + add;
        char *d = realloc(b->data, cap);
        if (!d)
            return 0; /* curl fails the transfer: CURLE_WRITE_ERROR */
        b->data = d;
        b->cap = cap;
    }
    memcpy(b->data + b->len, p, add);
    b->len += add;
    b->data[b->len] = '\0';
    return add;
}

/* response = requests.get(url); return response.text */
static void fetch_url(task_t *t)
{
    const char *url = task_arg(t, NULL);
    struct buf b = {0};
    long status = 0;
    CURL *c = curl_easy_init();
    if (!c) {
        task_raise(t, ENOMEM, "curl_easy_init failed");
        return;
    }
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L); /* threads: no SIGALRM for DNS */
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 30L);
    CURLcode rc = curl_easy_perform(c);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(c);
    if (rc != CURLE_OK) {
        free(b.data);
        task_raise(t, (int)rc, "%s: %s", url, curl_easy_strerror(rc));
    } else if (status < 200 || status > 299) {
        free(b.data);
        task_raise(t, (int)status, "%s: HTTP %ld", url, status);
    } else {
        task_return(t, b.data, b.len, free); /* the bytes, without the NUL */
    }
}

/* futures = [submit(...)]; results = [f.result() for f in as_completed(futures)] */
static int fetch_all(const char *kind, char **urls, int n)
{
    executor_t *ex = course_executor(kind, 0, NULL);
    if (!ex)
        return 1;
    future_t **futures = calloc((size_t)n, sizeof(*futures));
    int rc = 0, results = 0;
    size_t bytes = 0;
    double t = course_now();
    for (int i = 0; futures && i < n; i++) {
        futures[i] = executor_submit(ex, fetch_url, urls[i], strlen(urls[i]) + 1);
        if (!futures[i]) {
            fprintf(stderr, "submit: %s\n", future_strerror(-errno));
            rc = 1;
            n = i;
        }
    }
    as_completed_t *it =
        futures ? as_completed_new(futures, (size_t)n, FUT_FOREVER) : NULL;
    future_t *f;
    while (it && as_completed_next(it, &f) == 0) {
        size_t len;
        const future_error_t *err;
        if (future_result(f, FUT_FOREVER, NULL, &len) == 0) {
            results++;
            bytes += len;
        } else if (future_exception(f, 0, &err) == 0 && err) {
            fprintf(stderr, "%s\n", err->message);
            rc = 1;
        }
        future_unref(f);
    }
    double took = course_now() - t;
    as_completed_free(it);
    for (int i = 0; futures && i < n; i++)
        future_unref(futures[i]);
    free(futures);
    executor_free(ex); /* the end of the with block */
    printf("%s: %d results, %zu bytes in %f seconds\n", kind, results, bytes, took);
    return rc || !futures || !it;
}

#define USAGE "fetch_urls [-e thread|process] URL..."

int main(int argc, char **argv)
{
    const char *only = NULL;
    static const struct option longopts[] = {COURSE_HELP_OPTION, {NULL, 0, NULL, 0}};
    int opt;
    while ((opt = getopt_long(argc, argv, "e:h", longopts, NULL)) != -1) {
        if (opt == 'h')
            return course_usage(USAGE, 0);
        if (opt != 'e' || !course_kind(optarg, false))
            return course_usage(USAGE, 2);
        only = optarg;
    }
    if (optind >= argc)
        return course_usage(USAGE, 2);
    /* Before any pool: a process pool's workers inherit curl's global state. */
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        fprintf(stderr, "curl_global_init failed\n");
        return 1;
    }
    char **urls = argv + optind;
    int n = argc - optind, rc = 0;
    if (only) {
        rc = fetch_all(only, urls, n);
    } else {
        rc |= fetch_all("thread", urls, n);
        if (course_have_process_pool())
            rc |= fetch_all("process", urls, n);
        else
            printf("process: no process pool in this cfutures\n");
    }
    curl_global_cleanup();
    return rc;
}
