/*
 * much_cpu: MuchCPU, one busy loop per CPU, run as processes and as
 * threads, and how long each took.
 *
 *   class MuchCPU(Process):          # then again with Thread
 *       def run(self):
 *           print(os.getpid())
 *           for i in range(200000000):
 *               pass
 *
 *   procs = [MuchCPU() for f in range(cpu_count())]
 *   t = time.time()
 *   for p in procs: p.start()
 *   for p in procs: p.join()
 *   print("work took {} seconds".format(time.time()-t))
 *
 * One Process (or Thread) per CPU becomes one task per CPU on a process
 * pool (or a thread pool) with one worker per CPU. In Python only the
 * processes run at once: the GIL lets one thread run bytecode at a time.
 * C has no GIL, so here the threads run at once too, and both take about
 * the time one loop takes; "serial" runs the loops one after the other in
 * the main thread to show what running at once saves.
 *
 * Usage: much_cpu [-e process|thread|serial] [-n LOOPS]   (default: all
 * three, 200,000,000 turns each). The pids printed tell the kinds apart:
 * processes print one pid each, threads all print this process's pid.
 */
#include "course.h"

#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

static void much_cpu(task_t *t)
{
    const int64_t *loops = task_arg(t, NULL);
    printf("%ld\n", (long)getpid());
    fflush(stdout); /* a worker process may never flush at exit */
    for (volatile int64_t i = 0; i < *loops; i++)
        continue; /* pass */
}

/* Starts one task per CPU on @kind, joins them, prints the time taken. */
static int run(const char *kind, int cpus, int64_t loops)
{
    printf("== MuchCPU as %s (%d)\n", kind, cpus);
    if (strcmp(kind, "serial") == 0) {
        double t = course_now();
        for (int i = 0; i < cpus; i++) {
            printf("%ld\n", (long)getpid());
            for (volatile int64_t j = 0; j < loops; j++)
                continue;
        }
        printf("work took %f seconds\n", course_now() - t);
        return 0;
    }
    executor_t *ex = course_executor(kind, cpus, NULL);
    if (!ex)
        return 1;
    future_t **procs = calloc((size_t)cpus, sizeof(*procs));
    int rc = procs ? 0 : 1;
    double t = course_now();
    for (int i = 0; i < cpus && procs; i++) {
        procs[i] = executor_submit(ex, much_cpu, &loops, sizeof(loops)); /* p.start() */
        if (!procs[i])
            rc = 1;
    }
    for (int i = 0; i < cpus && procs; i++) {
        if (procs[i] && future_result(procs[i], FUT_FOREVER, NULL, NULL) != 0)
            rc = 1; /* p.join() */
        future_unref(procs[i]);
    }
    printf("work took %f seconds\n", course_now() - t);
    free(procs);
    executor_free(ex);
    return rc;
}

#define USAGE "much_cpu [-e process|thread|serial] [-n LOOPS]"

int main(int argc, char **argv)
{
    const char *only = NULL;
    long long loops = 200000000;
    static const struct option longopts[] = {COURSE_HELP_OPTION, {NULL, 0, NULL, 0}};
    int opt;
    while ((opt = getopt_long(argc, argv, "e:n:h", longopts, NULL)) != -1) {
        if (opt == 'h')
            return course_usage(USAGE, 0);
        if (opt == 'e' && course_kind(optarg, true))
            only = optarg;
        else if (opt != 'n' || !course_number(optarg, 0, INT64_MAX, "-n", &loops))
            return course_usage(USAGE, 2);
    }
    if (optind != argc) {
        fprintf(stderr, "unexpected argument '%s'\n", argv[optind]);
        return course_usage(USAGE, 2);
    }
    long cpus = sysconf(_SC_NPROCESSORS_ONLN); /* Python: cpu_count() */
    if (cpus < 1)
        cpus = 1;
    if (only)
        return run(only, (int)cpus, loops);
    int rc = 0;
    if (course_have_process_pool())
        rc |= run("process", (int)cpus, loops);
    else
        printf("== no process pool in this cfutures: processes skipped\n");
    rc |= run("thread", (int)cpus, loops);
    rc |= run("serial", (int)cpus, loops);
    return rc;
}
