/*
 * every_so_often: repeat a task every so often with a Timer while the main
 * thread computes, until an Event says stop.
 *
 *   def every_so_often():
 *       if not done.is_set():
 *           print('Do the thing you want to every so often')
 *           Timer(5.0, every_so_often).start()
 *
 *   done = Event()
 *   Timer(5.0, every_so_often).start()
 *   for count in range(100_000_000):
 *       prod = count * count
 *       if count % 10_000_000 == 0:
 *           print('multiplied up to', count)
 *   done.set()
 *
 * cfutures has no Timer: a Timer is a task that sleeps, then calls its
 * function, submitted to a thread pool (a Timer is a Thread in Python too).
 * The callback submits the next Timer from inside a task, which cfutures
 * allows. The Event is an atomic flag. C multiplies a hundred million times
 * in a fraction of a second, so the interval is 0.05 s rather than 5 s
 * (usage: every_so_often [INTERVAL_SECONDS]).
 */
#include "course.h"

#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>

static atomic_bool done;   /* Python: done = Event() */
static executor_t *timers; /* the threads Timer objects run on */
static double interval = 0.05;

static void every_so_often(void);

/* Python: Timer(interval, fn).start(): sleep, then call fn unless cancelled. */
static void timer_task(task_t *t)
{
    course_sleep(interval);
    if (task_should_stop(t)) /* Timer.cancel() */
        return;
    every_so_often();
}

static void timer_start(void)
{
    future_t *f = executor_submit(timers, timer_task, NULL, 0);
    future_unref(f); /* nobody joins a Timer; NULL-safe after a shutdown */
}

static void every_so_often(void)
{
    if (!atomic_load(&done)) {
        printf("Do the thing you want to every so often\n");
        timer_start();
    }
}

int main(int argc, char **argv)
{
    if (argc > 1)
        interval = strtod(argv[1], NULL);
    if (!(interval > 0 && interval < 60)) {
        fprintf(stderr, "usage: every_so_often [INTERVAL_SECONDS in (0, 60)]\n");
        return 2;
    }
    timers = course_executor("thread", 2, NULL);
    if (!timers)
        return 1;
    timer_start();

    volatile uint64_t prod; /* volatile: the loop is the work, keep it */
    for (uint64_t count = 0; count < 100000000; count++) {
        prod = count * count;
        if (count % 10000000 == 0)
            printf("multiplied up to %llu\n", (unsigned long long)count);
    }
    (void)prod;

    atomic_store(&done, true); /* done.set() */
    executor_free(timers);     /* the last Timer wakes, sees done, and ends */
    return 0;
}
