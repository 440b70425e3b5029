/*
 * threads_basics: the course's first thread programs, each a cfutures
 * thread-pool task. One threading.Thread becomes one submit; t.join()
 * becomes future_result; the interpreter waiting for its threads at exit
 * becomes executor_free.
 *
 *   def hello(n):
 *       time.sleep(random.randint(0, 3))
 *       print(f'{n} Hello!\n', end='')
 *   for i in range(5):
 *       t = threading.Thread(target=hello, args=(i,))
 *       t.start()
 *
 * Usage: threads_basics [PROGRAM]  (no PROGRAM: all of them, in this order)
 *   serial          hello() five times in the main thread
 *   threads         hello() in five threads
 *   hello-n         hello(n) with random sleeps: any order
 *   hello-goodbye   the exercise: five hello(n) and five goodbye(n)
 *   sleep-wait      time.sleep(7) in the main thread ("don't do this!")
 *   join-each       t.join() inside the loop: one thread at a time
 *   join-all        the threads in a list, then join each
 *   join-timeout    join(0.1) round and round until every thread ended
 *   worker          "Simple Threading Example": Thread i started/finished
 *   do-some-work    do_some_work(val) and t.join()
 *   fibonacci       FibonacciThread(9) and FibonacciThread(12)
 *
 * One second of the course is one tenth of a second here (TICK), so every
 * program runs in a second or two; the lines printed are the course's.
 */
#include "course.h"

#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#define TICK 0.1 /* one course second */

/* One thread's arguments: Python's args=(i,) plus the sleep it drew. */
struct hello_arg {
    int n;
    int sleep_ticks;  /* random.randint(0, 3), drawn in the main thread */
    const char *word; /* "Hello" or "Goodbye" */
};

static void hello(task_t *t)
{
    printf("Hello!\n");
}

static void hello_n(task_t *t)
{
    const struct hello_arg *a = task_arg(t, NULL);
    course_sleep(a->sleep_ticks * TICK);
    printf("%d %s!\n", a->n, a->word);
}

/* rand() is not thread-safe: the main thread draws every sleep up front. */
static void draw(struct hello_arg *a, int n, const char *word)
{
    for (int i = 0; i < n; i++)
        a[i] = (struct hello_arg){.n = i, .sleep_ticks = rand() % 4, .word = word};
}

static executor_t *pool(int workers)
{
    executor_t *ex = course_executor("thread", workers, NULL);
    if (!ex)
        exit(1);
    return ex;
}

static void run_serial(void)
{
    for (int i = 0; i < 5; i++)
        printf("Hello!\n");
}

/* A Thread nobody joins: submit and drop our reference at once. */
static void start(executor_t *ex, task_fn fn, const void *arg)
{
    future_t *f = executor_submit(ex, fn, arg, 0);
    if (!f) {
        perror("executor_submit");
        exit(1);
    }
    future_unref(f);
}

static void run_threads(void)
{
    executor_t *ex = pool(5);
    for (int i = 0; i < 5; i++)
        start(ex, hello, NULL);
    executor_free(ex); /* Python waits for non-daemon threads at exit */
}

static void run_hello_n(void)
{
    struct hello_arg a[5];
    draw(a, 5, "Hello");
    executor_t *ex = pool(5);
    for (int i = 0; i < 5; i++)
        start(ex, hello_n, &a[i]);
    executor_free(ex);
}

static void run_hello_goodbye(void)
{
    struct hello_arg h[5], g[5];
    draw(h, 5, "Hello");
    draw(g, 5, "Goodbye");
    executor_t *ex = course_executor(
        "thread", 10, &(executor_options_t){.thread_name_prefix = "hello-goodbye"});
    if (!ex)
        exit(1);
    for (int i = 0; i < 5; i++)
        start(ex, hello_n, &h[i]);
    for (int i = 0; i < 5; i++)
        start(ex, hello_n, &g[i]);
    executor_free(ex);
}

static void run_sleep_wait(void)
{
    struct hello_arg a[5];
    draw(a, 5, "Hello");
    executor_t *ex = pool(5);
    for (int i = 0; i < 5; i++)
        start(ex, hello_n, &a[i]);
    course_sleep(7 * TICK); /* don't do this! */
    printf("*** DONE! ***\n");
    executor_free(ex);
}

static void run_join_each(void)
{
    struct hello_arg a[5];
    draw(a, 5, "Hello");
    executor_t *ex = pool(5);
    for (int i = 0; i < 5; i++) {
        future_t *f = executor_submit(ex, hello_n, &a[i], 0);
        future_result(f, FUT_FOREVER, NULL, NULL); /* t.join() */
        future_unref(f);
    }
    printf("*** DONE! ***\n");
    executor_free(ex);
}

static void run_join_all(void)
{
    struct hello_arg a[5];
    future_t *all[5];
    draw(a, 5, "Hello");
    executor_t *ex = pool(5);
    for (int i = 0; i < 5; i++)
        all[i] = executor_submit(ex, hello_n, &a[i], 0);
    for (int i = 0; i < 5; i++) {
        printf("\tNow joining hello-%d\n", i);
        future_result(all[i], FUT_FOREVER, NULL, NULL); /* join blocks */
        future_unref(all[i]);
    }
    printf("*** DONE! ***\n");
    executor_free(ex);
}

static void run_join_timeout(void)
{
    struct hello_arg a[5];
    future_t *all[5];
    int left = 5;
    draw(a, 5, "Hello");
    executor_t *ex = pool(5);
    for (int i = 0; i < 5; i++)
        all[i] = executor_submit(ex, hello_n, &a[i], 0);
    while (left > 0) {
        for (int i = 0; i < 5; i++) {
            if (!all[i])
                continue;
            /* one_thread.join(0.1); if not one_thread.is_alive(): ... */
            if (future_result(all[i], 0.1 * TICK, NULL, NULL) == FUT_ETIMEDOUT)
                continue;
            printf("\tRemoved hello-%d\n", i);
            future_unref(all[i]);
            all[i] = NULL;
            left--;
        }
    }
    printf("*** DONE! ***\n");
    executor_free(ex);
}

static void worker(task_t *t)
{
    const int *id = task_arg(t, NULL);
    printf("Thread %d started.\n", *id);
    course_sleep(2 * TICK); /* simulating some work */
    printf("Thread %d finished.\n", *id);
}

static void run_worker(void)
{
    int ids[5] = {0, 1, 2, 3, 4};
    future_t *threads[5];
    executor_t *ex = pool(5);
    for (int i = 0; i < 5; i++)
        threads[i] = executor_submit(ex, worker, &ids[i], sizeof(ids[i]));
    for (int i = 0; i < 5; i++) {
        future_result(threads[i], FUT_FOREVER, NULL, NULL);
        future_unref(threads[i]);
    }
    printf("All threads completed.\n");
    executor_free(ex);
}

static void do_some_work(task_t *t)
{
    const char *val = task_arg(t, NULL);
    printf("doing some work in thread\n");
    printf("echo: %s\n", val);
}

static void run_do_some_work(void)
{
    const char *val = "text";
    executor_t *ex = pool(1);
    future_t *f = executor_submit(ex, do_some_work, val, strlen(val) + 1);
    future_result(f, FUT_FOREVER, NULL, NULL); /* t.join() */
    future_unref(f);
    printf("Done\n");
    executor_free(ex);
}

/*
 * FibonacciThread.run, with the course's two slips fixed (fin for fib, and
 * a print inside the loop): it prints fib(num) once. Where Python keeps the
 * answer on the Thread object, the task returns it.
 */
static void fibonacci(task_t *t)
{
    const int *num = task_arg(t, NULL);
    int64_t fib[93] = {0, 1};
    if (*num < 1 || *num > 92) {
        task_raise(t, EDOM, "fib(%d) does not fit in 64 bits", *num);
        return;
    }
    for (int i = 2; i <= *num; i++)
        fib[i] = fib[i - 1] + fib[i - 2];
    printf("%lld\n", (long long)fib[*num]);
    task_return_i64(t, fib[*num]);
}

static void run_fibonacci(void)
{
    int nine = 9, twelve = 12;
    executor_t *ex = pool(2);
    future_t *task1 = executor_submit(ex, fibonacci, &nine, sizeof(nine));
    /* Join the first before starting the second, so the lines come in order. */
    future_result(task1, FUT_FOREVER, NULL, NULL);
    future_t *task2 = executor_submit(ex, fibonacci, &twelve, sizeof(twelve));
    future_result(task2, FUT_FOREVER, NULL, NULL);
    future_unref(task1);
    future_unref(task2);
    executor_free(ex);
}

static const struct program {
    const char *name;
    void (*run)(void);
} programs[] = {
    {"serial", run_serial},         {"threads", run_threads},
    {"hello-n", run_hello_n},       {"hello-goodbye", run_hello_goodbye},
    {"sleep-wait", run_sleep_wait}, {"join-each", run_join_each},
    {"join-all", run_join_all},     {"join-timeout", run_join_timeout},
    {"worker", run_worker},         {"do-some-work", run_do_some_work},
    {"fibonacci", run_fibonacci},
};
#define N_PROGRAMS (sizeof(programs) / sizeof(programs[0]))

int main(int argc, char **argv)
{
    srand((unsigned)time(NULL) ^ (unsigned)getpid());
    bool help = argc == 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"));
    if (argc > 2 || help) {
        FILE *out = help ? stdout : stderr;
        fprintf(out, "usage: threads_basics [PROGRAM]\nPROGRAM, or all of them in turn:");
        for (size_t i = 0; i < N_PROGRAMS; i++)
            fprintf(out, " %s", programs[i].name);
        fprintf(out, "\n");
        return help ? 0 : 2;
    }
    for (size_t i = 0; i < N_PROGRAMS; i++) {
        if (argc == 2 && strcmp(argv[1], programs[i].name) != 0)
            continue;
        if (argc == 1)
            printf("== %s\n", programs[i].name);
        programs[i].run();
        fflush(stdout);
        if (argc == 2)
            return 0;
    }
    if (argc == 2) {
        fprintf(stderr, "threads_basics: no program '%s' (threads_basics --help lists them)\n",
                argv[1]);
        return 2;
    }
    return 0;
}
