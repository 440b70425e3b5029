/*
 * queue_rw: a writer sends 10^4, 10^5 and 10^6 numbers, then "DONE", to a
 * reader in another process, and times each round.
 *
 *   def reader_proc(queue):
 *       while True:
 *           msg = queue.get()
 *           if (msg == "DONE"):
 *               break
 *
 *   def writer(count, queue):
 *       for ii in range(0, count):
 *           queue.put(ii)
 *       queue.put('DONE')
 *
 *   pqueue = Queue()
 *   for count in [10**4, 10**5, 10**6]:
 *       reader_p = Process(target=reader_proc, args=((pqueue),))
 *       reader_p.daemon = True
 *       reader_p.start()
 *       _start = time.time()
 *       writer(count, pqueue)
 *       reader_p.join()
 *       print("Sending {0} numbers to Queue() took {1} seconds".format(...))
 *
 * This one is not a pool program: a Process reads a Queue while the main
 * process writes it. A process pool cannot be its twin, since a pool task
 * gets its bytes when it starts and cannot be fed afterwards. The honest C
 * twin of Process + Queue is fork() + pipe(): each message is one line of
 * text on the pipe (the pickling), stdio's buffer plays the Queue's feeder
 * thread, and waitpid() is join(). The reader checks it got 0..count-1 in
 * order and says so in its exit status.
 *
 * -t runs the reader as a cfutures thread-pool task instead (threading +
 * queue.Queue's meaning, over the same pipe): future_result is join().
 */
#include "course.h"

#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

/* Reads numbers until "DONE"; 0 if they were exactly 0..count-1. */
static int reader_proc(FILE *queue, long count)
{
    char msg[32];
    long want = 0;
    while (fgets(msg, sizeof(msg), queue)) { /* msg = queue.get() */
        if (strcmp(msg, "DONE\n") == 0)
            return want == count ? 0 : 1;
        if (strtol(msg, NULL, 10) != want++)
            return 1;
    }
    return 1; /* the writer went away without "DONE" */
}

static int writer(long count, FILE *queue)
{
    for (long ii = 0; ii < count; ii++)
        fprintf(queue, "%ld\n", ii); /* queue.put(ii) */
    fputs("DONE\n", queue);
    return fflush(queue) == 0 ? 0 : -1;
}

struct reader_arg {
    int fd;
    long count;
};

static void reader_task(task_t *t)
{
    const struct reader_arg *a = task_arg(t, NULL);
    FILE *queue = fdopen(a->fd, "r");
    if (!queue) {
        task_raise(t, errno, "fdopen: %s", strerror(errno));
        return;
    }
    int bad = reader_proc(queue, a->count);
    fclose(queue);
    if (bad)
        task_raise(t, EPROTO, "the reader did not get 0..%ld in order", a->count - 1);
}

/* One round with a reader process; 0 if the reader got every number. */
static int round_fork(long count)
{
    int p[2];
    if (pipe(p) == -1) {
        perror("pipe");
        return -1;
    }
    fflush(stdout);          /* the child must not print our buffer again */
    pid_t reader_p = fork(); /* reader_p.start() */
    if (reader_p == -1) {
        perror("fork");
        return -1;
    }
    if (reader_p == 0) {
        close(p[1]);
        FILE *queue = fdopen(p[0], "r");
        _exit(queue ? reader_proc(queue, count) : 1);
    }
    close(p[0]);
    FILE *queue = fdopen(p[1], "w");
    int rc = queue ? writer(count, queue) : -1;
    if (queue)
        fclose(queue);
    else
        close(p[1]);
    int status;
    while (waitpid(reader_p, &status, 0) == -1 && errno == EINTR) /* reader_p.join() */
        continue;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        rc = -1;
    return rc;
}

/* One round with a reader thread (a thread-pool task). */
static int round_thread(executor_t *ex, long count)
{
    int p[2];
    if (pipe(p) == -1) {
        perror("pipe");
        return -1;
    }
    struct reader_arg a = {.fd = p[0], .count = count};
    future_t *reader = executor_submit(ex, reader_task, &a, 0);
    if (!reader) {
        close(p[0]);
        close(p[1]);
        return -1;
    }
    FILE *queue = fdopen(p[1], "w");
    int rc = queue ? writer(count, queue) : -1;
    if (queue)
        fclose(queue);
    else
        close(p[1]);
    if (future_result(reader, FUT_FOREVER, NULL, NULL) != 0) /* join() */
        rc = -1;
    future_unref(reader);
    return rc;
}

int main(int argc, char **argv)
{
    bool threads = argc == 2 && strcmp(argv[1], "-t") == 0;
    if (course_help_asked(argc, argv))
        return course_usage("queue_rw [-t]", 0);
    if (argc > 2 || (argc == 2 && !threads))
        return course_usage("queue_rw [-t]", 2);
    executor_t *ex = threads ? course_executor("thread", 1, NULL) : NULL;
    if (threads && !ex)
        return 1;
    int rc = 0;
    for (long count = 10000; count <= 1000000; count *= 10) {
        double start = course_now();
        int r = threads ? round_thread(ex, count) : round_fork(count);
        if (r != 0) {
            fprintf(stderr, "queue_rw: the reader did not get %ld numbers\n", count);
            rc = 1;
            continue;
        }
        printf("Sending %ld numbers to Queue() took %f seconds\n", count,
               course_now() - start);
    }
    executor_free(ex);
    return rc;
}
