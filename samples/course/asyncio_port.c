/*
 * asyncio_port: the course's asyncio programs, done with futures on a
 * thread pool. A coroutine becomes a task function, asyncio.ensure_future /
 * create_task becomes executor_submit, gather becomes reading each future
 * in order, asyncio.wait becomes futures_wait(ALL_COMPLETED), as_completed
 * stays as_completed. An await in a coroutine that gives way to others is
 * a blocking call in a thread; the thread pool, not an event loop, lets
 * the others go on (PORTING.md, "asyncio"). Promises pass a turn from task
 * to task so that the lines come in the event loop's order (see "Turns").
 *
 *   two            coroutine_1 and coroutine_2, gathered:
 *     async def coroutine_1():
 *         print('coroutine_1 is active on the event loop')
 *         print('coroutine_1 yielding control. Going to be blocked for 4 seconds')
 *         await asyncio.sleep(4)
 *         print('coroutine_1 resumed. coroutine_1 exiting')
 *     loop.run_until_complete(asyncio.gather(coroutine_1(), coroutine_2()))
 *   five           five random sleepers:
 *     def random_sleep(counter):
 *         delay = random.random() * 5
 *         print("{} sleeps for {:.2f} seconds".format(counter, delay))
 *         yield from asyncio.sleep(delay)
 *         print("{} awakens".format(counter))
 *     def five_sleepers():
 *         print("Creating five tasks")
 *         tasks = [asyncio.ensure_future(random_sleep(i)) for i in range(5)]
 *         print("Sleeping after starting five tasks")
 *         yield from asyncio.sleep(2)
 *         print("Waking and waiting for five tasks")
 *         yield from asyncio.wait(tasks)
 *     ...run_until_complete(five_sleepers()); print("Done five tasks")
 *   gather         fetch_data(url) for three URLs, results in input order:
 *     async def fetch_data(url):
 *         print(f"Fetching data from {url}")
 *         await asyncio.sleep(2)
 *         return f"Data from {url}"
 *     results = await asyncio.gather(*tasks); for result in results: print(result)
 *   as-completed   the same with asyncio.as_completed: results as they come
 *
 * Usage: asyncio_port [-s SEED] [two|five|gather|as-completed] (default:
 * all four). A course second is a tenth of a second here; the lines print
 * the course's seconds.
 */
#include "course.h"

#include <limits.h>
#include <stdlib.h>
#include <unistd.h>

#define TICK 0.1 /* one course second */

/*
 * Turns. asyncio runs one coroutine at a time: a task created by main does
 * not start until main awaits, and then the tasks run in creation order,
 * each until its first await. A thread pool would run them all at once, in
 * any order. So each task waits for its turn (a promise) before its first
 * line and gives the next created task its turn at its first await; main
 * gives the first turn where it awaits. Only the starts are ordered: a
 * sleep shorter than the hand-offs (five's delay can be near 0) may end
 * before a later task starts, where asyncio would start them all first.
 * Waiting for the last task there could wait for ever on a pool short of
 * threads (a waiting task keeps its thread; the last one is still queued).
 */
struct turn {
    future_t *mine; /* set when this task may start */
    future_t *next; /* set by this task at its first await */
};

/* A program's turns: f[0] is main's to give (the first task's turn), f[i]
 * the one the i-th task gives. */
struct turns {
    future_t *f[6];
    int n;
};

static struct turns new_turns(void)
{
    return (struct turns){.f = {future_new()}, .n = 1};
}

static void wait_turn(const struct turn *t)
{
    /* A NULL turn (future_new out of memory) returns at once. */
    future_result(t->mine, FUT_FOREVER, NULL, NULL);
}

static void give_turn(future_t *turn)
{
    future_set_result(turn, NULL, 0, NULL);
}

/* create_task: fn starts when the task created before it awaits. A task
 * whose submit failed would never give its turn: the next one is created
 * to wait for the turn it would have had, so no wait is left without end. */
static future_t *create_task(executor_t *ex, struct turns *ts, task_fn fn,
                             const void *arg, struct turn *t)
{
    t->mine = ts->f[ts->n - 1];
    t->next = future_new();
    future_t *f = executor_submit(ex, fn, arg, 0);
    if (f)
        ts->f[ts->n++] = t->next;
    else
        future_unref(t->next);
    return f;
}

static void free_turns(struct turns *ts)
{
    for (int i = 0; i < ts->n; i++)
        future_unref(ts->f[i]);
}

struct coroutine {
    const char *name;
    int seconds;
    struct turn turn;
};

static void coroutine(task_t *t)
{
    const struct coroutine *c = task_arg(t, NULL);
    wait_turn(&c->turn);
    /* One printf: the two lines stay together, as on an event loop. */
    printf("%s is active on the event loop\n"
           "%s yielding control. Going to be blocked for %d seconds\n",
           c->name, c->name, c->seconds);
    give_turn(c->turn.next);
    course_sleep(c->seconds * TICK); /* await asyncio.sleep(4) */
    printf("%s resumed. %s exiting\n", c->name, c->name);
}

static executor_t *loop(int workers)
{
    executor_t *ex = course_executor("thread", workers, NULL);
    if (!ex)
        exit(1);
    return ex;
}

static int run_two(void)
{
    struct coroutine c[2] = {{"coroutine_1", 4, {0}}, {"coroutine_2", 5, {0}}};
    executor_t *ex = loop(2);
    struct turns ts = new_turns();
    future_t *fs[2];
    for (int i = 0; i < 2; i++)
        fs[i] = create_task(ex, &ts, coroutine, &c[i], &c[i].turn);
    /* gather: main awaits, and the coroutines start in order (Python
     * 3.11 here; the notebook's older gather went through a set() and
     * happened to start coroutine_2 first). */
    give_turn(ts.f[0]);
    /* asyncio.gather: every result, in order; a coroutine returning
     * nothing gives None, an empty result here. */
    const char *results[2];
    for (int i = 0; i < 2; i++) {
        size_t len = 1;
        int r = future_result(fs[i], FUT_FOREVER, NULL, &len);
        results[i] = r != 0 ? future_strerror(r) : len == 0 ? "None" : "bytes";
        future_unref(fs[i]);
    }
    printf("[%s, %s]\n", results[0], results[1]); /* the notebook echoes the value */
    executor_free(ex);
    free_turns(&ts);
    return 0;
}

struct sleeper {
    int counter;
    double delay; /* random.random() * 5, drawn in the main thread */
    struct turn turn;
};

static void random_sleep(task_t *t)
{
    const struct sleeper *s = task_arg(t, NULL);
    wait_turn(&s->turn);
    printf("%d sleeps for %.2f seconds\n", s->counter, s->delay);
    give_turn(s->turn.next);
    course_sleep(s->delay * TICK);
    printf("%d awakens\n", s->counter);
}

static int run_five(void)
{
    struct sleeper s[5];
    future_t *tasks[5];
    executor_t *ex = loop(5);
    struct turns ts = new_turns();
    printf("Creating five tasks\n");
    for (int i = 0; i < 5; i++) {
        s[i] = (struct sleeper){.counter = i, .delay = drand48() * 5};
        tasks[i] = create_task(ex, &ts, random_sleep, &s[i], &s[i].turn);
    }
    printf("Sleeping after starting five tasks\n");
    give_turn(ts.f[0]); /* yield from asyncio.sleep(2): the tasks' turn */
    course_sleep(2 * TICK);
    printf("Waking and waiting for five tasks\n");
    futures_wait(tasks, 5, FUT_FOREVER, FUTURES_ALL_COMPLETED, NULL, NULL, NULL, NULL);
    for (int i = 0; i < 5; i++)
        future_unref(tasks[i]);
    printf("Done five tasks\n");
    executor_free(ex);
    free_turns(&ts);
    return 0;
}

struct fetch {
    const char *url;
    int seconds; /* the simulated network delay */
    struct turn turn;
};

static void fetch_data(task_t *t)
{
    const struct fetch *f = task_arg(t, NULL);
    wait_turn(&f->turn);
    printf("Fetching data from %s\n", f->url);
    give_turn(f->turn.next);
    course_sleep(f->seconds * TICK); /* simulating network delay */
    task_return_str(t, "Data from %s", f->url);
}

static int run_fetch(bool in_order)
{
    /* gather waits 2 s for each; as_completed gets them in 3, 1, 2 s. */
    struct fetch urls[3] = {{"https://example.com", in_order ? 2 : 3, {0}},
                            {"https://example.org", in_order ? 2 : 1, {0}},
                            {"https://example.net", 2, {0}}};
    future_t *tasks[3];
    int rc = 0;
    executor_t *ex = loop(3);
    struct turns ts = new_turns();
    for (int i = 0; i < 3; i++)
        tasks[i] = create_task(ex, &ts, fetch_data, &urls[i], &urls[i].turn);
    give_turn(ts.f[0]); /* main awaits gather / as_completed */
    if (in_order) {
        for (int i = 0; i < 3; i++) { /* results = await asyncio.gather(*tasks) */
            const char *result = future_result_str(tasks[i], FUT_FOREVER);
            printf("%s\n", result ? result : "(failed)");
            rc |= !result;
        }
    } else {
        as_completed_t *it = as_completed_new(tasks, 3, FUT_FOREVER);
        future_t *f;
        while (it && as_completed_next(it, &f) == 0) {
            const char *result = future_result_str(f, FUT_FOREVER);
            printf("%s\n", result ? result : "(failed)");
            rc |= !result;
            future_unref(f);
        }
        as_completed_free(it);
    }
    for (int i = 0; i < 3; i++)
        future_unref(tasks[i]);
    executor_free(ex);
    free_turns(&ts);
    return rc;
}

static int run_gather(void)
{
    return run_fetch(true);
}

static int run_as_completed(void)
{
    return run_fetch(false);
}

static const struct program {
    const char *name;
    int (*run)(void);
} programs[] = {
    {"two", run_two},
    {"five", run_five},
    {"gather", run_gather},
    {"as-completed", run_as_completed},
};

#define USAGE "asyncio_port [-s SEED] [two|five|gather|as-completed]"

int main(int argc, char **argv)
{
    long long seed = (long long)time(NULL) ^ (long long)getpid();
    static const struct option longopts[] = {COURSE_HELP_OPTION, {NULL, 0, NULL, 0}};
    int opt;
    while ((opt = getopt_long(argc, argv, "s:h", longopts, NULL)) != -1) {
        if (opt == 'h')
            return course_usage(USAGE, 0);
        if (opt != 's' || !course_number(optarg, LONG_MIN, LONG_MAX, "-s", &seed))
            return course_usage(USAGE, 2);
    }
    srand48((long)seed);
    const char *only = optind < argc ? argv[optind] : NULL;
    if (argc - optind > 1)
        return course_usage(USAGE, 2);
    int rc = 0, ran = 0;
    for (size_t i = 0; i < sizeof(programs) / sizeof(programs[0]); i++) {
        if (only && strcmp(only, programs[i].name) != 0)
            continue;
        if (!only)
            printf("== %s\n", programs[i].name);
        rc |= programs[i].run();
        fflush(stdout);
        ran++;
    }
    if (!ran) {
        fprintf(stderr, "asyncio_port: no program '%s'\n", only);
        return course_usage(USAGE, 2);
    }
    return rc;
}
