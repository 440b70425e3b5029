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
 * In cfutures the chain of Timers is one schedule: executor_schedule runs
 * the task every INTERVAL seconds on a thread pool, timed by the library's
 * one timer thread (no thread sleeps per Timer), and future_cancel stops it
 * (the Event and the Timer.cancel() in one). C multiplies a hundred million
 * times in a fraction of a second, so the interval is 0.05 s rather than
 * 5 s (usage: every_so_often [INTERVAL_SECONDS]).
 */
#include "course.h"

#include <stdint.h>
#include <stdlib.h>

static double interval = 0.05;

/* Python: the body of every_so_often(); the schedule does the re-arming. */
static void every_so_often(task_t *t)
{
    (void)t;
    printf("Do the thing you want to every so often\n");
}

int main(int argc, char **argv)
{
    static const char usage[] = "every_so_often [INTERVAL_SECONDS in (0, 60)]";
    if (course_help_asked(argc, argv))
        return course_usage(usage, 0);
    char *end = NULL;
    if (argc == 2)
        interval = strtod(argv[1], &end);
    if (argc > 2 || (end && (end == argv[1] || *end)) || !(interval > 0 && interval < 60))
        return course_usage(usage, 2);
    executor_t *timers = course_executor("thread", 1, NULL);
    if (!timers)
        return 1;
    /* Python: Timer(interval, every_so_often).start(), re-armed each time. */
    future_t *every = executor_schedule(
        timers, every_so_often, NULL, 0,
        &(schedule_options_t){.delay = interval, .period = interval});
    if (!every) {
        perror("executor_schedule");
        executor_free(timers);
        return 1;
    }

    volatile uint64_t prod; /* volatile: the loop is the work, keep it */
    for (uint64_t count = 0; count < 100000000; count++) {
        prod = count * count;
        if (count % 10000000 == 0)
            printf("multiplied up to %llu\n", (unsigned long long)count);
    }
    (void)prod;

    future_cancel(every);  /* done.set(): no run starts after this */
    future_unref(every);
    executor_free(timers); /* waits for a run in progress, if any */
    return 0;
}
