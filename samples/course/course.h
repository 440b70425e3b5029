/*
 * course.h: the few helpers every course sample shares, kept tiny so each
 * sample still reads on its own beside its Python original.
 *
 *   time.time()          -> course_now()
 *   time.sleep(s)        -> course_sleep(s)
 *   Pool() / ThreadPool  -> course_executor("process" | "thread", workers, opts)
 *   argparse             -> COURSE_HELP_OPTION, course_usage, course_number
 */
#ifndef COURSE_H
#define COURSE_H

#include "config.h"

#include <cfutures.h>

#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Seconds on the monotonic clock: differences are elapsed times. */
static inline double course_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Python: time.sleep(s). Sleeps the whole time even across signals. */
static inline void course_sleep(double s)
{
    struct timespec ts = {.tv_sec = (time_t)s};
    ts.tv_nsec = (long)((s - (double)ts.tv_sec) * 1e9);
    while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
        continue;
}

/*
 * Arguments, the GNU tools' way: --help (or -h) prints the usage line on
 * stdout and exits 0; a wrong argument prints what is wrong, then the usage
 * line, on stderr and exits 2. A sample with options lists
 * COURSE_HELP_OPTION in its getopt_long table and 'h' in its short ones.
 */
#define COURSE_HELP_OPTION {"help", no_argument, NULL, 'h'}

/* Prints "usage: @usage" (stdout for @code 0, else stderr); returns @code. */
static inline int course_usage(const char *usage, int code)
{
    fprintf(code ? stderr : stdout, "usage: %s\n", usage);
    return code;
}

/* True when the one argument is --help or -h (a sample without getopt). */
static inline bool course_help_asked(int argc, char **argv)
{
    return argc == 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0);
}

/*
 * For a sample that takes no arguments: -1 when it has none (go on), else
 * the exit code, after the usage (--help: 0) or a complaint (2).
 */
static inline int course_no_arguments(int argc, char **argv, const char *usage)
{
    if (argc < 2)
        return -1;
    if (course_help_asked(argc, argv))
        return course_usage(usage, 0);
    fprintf(stderr, "unexpected argument '%s': this program takes none\n", argv[1]);
    return course_usage(usage, 2);
}

/*
 * Python: int(s) with a range check. True and *@out for a whole decimal
 * number from @lo to @hi; false, with a message naming @what, otherwise
 * ("abc", "12x", "", out of range).
 */
static inline bool course_number(const char *s, long long lo, long long hi, const char *what,
                                 long long *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < lo || v > hi) {
        fprintf(stderr, "%s: '%s' is not a whole number from %lld to %lld\n", what, s, lo,
                hi);
        return false;
    }
    *out = v;
    return true;
}

/*
 * True if @kind names an executor course_executor makes ("thread",
 * "process"), or "serial" when @serial_too; else false, with a message.
 * Checked before any work, so that a wrong name costs no output.
 */
static inline bool course_kind(const char *kind, bool serial_too)
{
    if (strcmp(kind, "thread") == 0 || strcmp(kind, "process") == 0 ||
        (serial_too && strcmp(kind, "serial") == 0))
        return true;
    fprintf(stderr, "unknown executor '%s': thread%s or process\n", kind,
            serial_too ? ", serial" : "");
    return false;
}

/* True when this cfutures has a process pool (configure checked). */
static inline int course_have_process_pool(void)
{
#if HAVE_DECL_PROCESS_POOL_EXECUTOR_NEW
    return 1;
#else
    return 0;
#endif
}

/*
 * The executor a sample asked for: "thread" or "process" (a process pool
 * when this cfutures has one). Prints why on stderr and returns NULL when it
 * cannot make one. stdout is flushed first: a process pool forks, and a
 * child must not inherit (and later print again) what is still buffered.
 */
static inline executor_t *course_executor(const char *kind, int workers,
                                          const executor_options_t *base)
{
    executor_options_t o = {0};
    if (base)
        o = *base;
    if (workers > 0)
        o.max_workers = workers;
    fflush(stdout);
    fflush(stderr);
    executor_t *ex = NULL;
    if (strcmp(kind, "thread") == 0) {
        ex = thread_pool_executor_new(&o);
    } else if (strcmp(kind, "process") == 0) {
#if HAVE_DECL_PROCESS_POOL_EXECUTOR_NEW
        ex = process_pool_executor_new(&o);
#else
        fprintf(stderr, "this cfutures has no process pool yet: use the thread pool\n");
        return NULL;
#endif
    } else {
        fprintf(stderr, "unknown executor '%s': thread or process\n", kind);
        return NULL;
    }
    if (!ex)
        fprintf(stderr, "%s pool: %s\n", kind, future_strerror(-errno));
    return ex;
}

#endif /* COURSE_H */
