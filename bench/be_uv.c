/*
 * be_uv: W1 over libuv's thread pool (uv_queue_work), an optional baseline
 * of bench/run.sh, built by it when libuv's headers are installed.
 *
 *   be_uv N WORKERS
 *
 * uv_queue_work may only be called from the loop's thread: the submitter
 * appends to a locked list and wakes the loop with uv_async_send; the loop
 * thread queues the whole list. A worker completes the future itself (a
 * malloc'd cell with a mutex and a condvar, as in the naive pool). Prints a
 * line of JSON like bench_cfutures w1.
 */
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <uv.h>

struct fut {
    uv_work_t req;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool done;
    int64_t arg, v;
    struct fut *next;
};

static uv_loop_t loop;
static uv_async_t wake;
static pthread_mutex_t list_mu = PTHREAD_MUTEX_INITIALIZER;
static struct fut *head, **tail = &head;
static bool quit;

static void work(uv_work_t *req)
{
    struct fut *f = (struct fut *)req;
    pthread_mutex_lock(&f->mu);
    f->v = f->arg + 1;
    f->done = true;
    pthread_cond_signal(&f->cv);
    pthread_mutex_unlock(&f->mu);
}

static void after(uv_work_t *req, int status)
{
    (void)req;
    (void)status;
}

static void on_wake(uv_async_t *h)
{
    pthread_mutex_lock(&list_mu);
    struct fut *f = head;
    head = NULL;
    tail = &head;
    bool q = quit;
    pthread_mutex_unlock(&list_mu);
    for (; f; f = f->next)
        uv_queue_work(&loop, &f->req, work, after);
    if (q)
        uv_close((uv_handle_t *)h, NULL);
}

static void *loop_main(void *unused)
{
    (void)unused;
    uv_run(&loop, UV_RUN_DEFAULT);
    return NULL;
}

static struct fut *submit(int64_t arg)
{
    struct fut *f = calloc(1, sizeof(*f));
    if (!f)
        abort();
    pthread_mutex_init(&f->mu, NULL);
    pthread_cond_init(&f->cv, NULL);
    f->arg = arg;
    pthread_mutex_lock(&list_mu);
    *tail = f;
    tail = &f->next;
    pthread_mutex_unlock(&list_mu);
    uv_async_send(&wake);
    return f;
}

static int64_t collect(struct fut *f)
{
    pthread_mutex_lock(&f->mu);
    while (!f->done)
        pthread_cond_wait(&f->cv, &f->mu);
    pthread_mutex_unlock(&f->mu);
    int64_t v = f->v;
    pthread_mutex_destroy(&f->mu);
    pthread_cond_destroy(&f->cv);
    return v;
}

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int main(int argc, char **argv)
{
    if (argc != 3)
        return 2;
    long n = atol(argv[1]), workers = atol(argv[2]);
    if (n <= 0 || workers <= 0)
        return 2;
    char env[32];
    snprintf(env, sizeof(env), "%ld", workers);
    setenv("UV_THREADPOOL_SIZE", env, 1);
    uv_loop_init(&loop);
    uv_async_init(&loop, &wake, on_wake);
    pthread_t th;
    pthread_create(&th, NULL, loop_main, NULL);
    struct fut **fs = malloc((size_t)n * sizeof(*fs));
    /* The pool starts with the first work: start it outside the clock. */
    for (long i = 0; i < workers * 4; i++) {
        struct fut *f = submit(0);
        collect(f);
        /* not freed: the loop thread may still run its after-work callback */
    }
    int64_t t0 = now_ns();
    for (long i = 0; i < n; i++)
        fs[i] = submit(i);
    for (long i = 0; i < n; i++) {
        if (collect(fs[i]) != i + 1)
            return 1;
    }
    int64_t t1 = now_ns();
    pthread_mutex_lock(&list_mu);
    quit = true;
    pthread_mutex_unlock(&list_mu);
    uv_async_send(&wake);
    pthread_join(th, NULL);
    for (long i = 0; i < n; i++)
        free(fs[i]);
    free(fs);
    double secs = (double)(t1 - t0) / 1e9;
    printf("{\"bench\":\"w1\",\"impl\":\"libuv\",\"n\":%ld,\"workers\":%ld,"
           "\"tasks_per_s\":%.0f,\"secs\":%.6f}\n",
           n, workers, (double)n / secs, secs);
    printf("w1 libuv uv_queue_work: %ld tiny tasks, %ld workers: %.0f tasks/s\n", n,
           workers, (double)n / secs);
    return 0;
}
