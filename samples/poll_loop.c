/*
 * poll_loop: an event loop that waits for futures and for stdin with one
 * poll(), no extra thread. asyncio's add_reader, in C: a completion queue's
 * fd is readable while a finished future waits in it.
 *
 *   $ ./poll_loop            type numbers; each one is squared on a pool
 *   3
 *   task 1: 3^2 = 9
 *
 * Each line read from stdin is submitted to a thread pool, with a
 * continuation (future_then) that formats the answer and a timeout
 * (future_within) of 2 s; the finished future joins the queue at once
 * (then_options_t.submit.queue), so the loop hears of it through the fd.
 * A line "sleep N" makes a task that sleeps N seconds (N > 2 times out).
 * A number's square must fit an int64, so |N| <= 3037000499; a line longer
 * than the buffer is dropped, up to its newline.
 * EOF on stdin ends the loop once every answer came.
 */
#include <cfutures.h>

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct job {
    int id;
    long long value;
    double sleep_s;
    future_t *task; /* the square's future: the task borrows this job until it ends */
};

/* On the pool: sleep if asked, then the square. */
static void square(task_t *t)
{
    const struct job *j = task_arg(t, NULL);
    if (j->sleep_s > 0) {
        double left = j->sleep_s;
        while (left > 0 && !task_should_stop(t)) {
            usleep(10000);
            left -= 0.01;
        }
    }
    task_return_i64(t, j->value * j->value);
}

/* The continuation, inline: turns the i64 into a line of text. */
static void describe(task_t *t)
{
    const int64_t *v = task_arg(t, NULL);
    task_return_str(t, "%lld", (long long)*v);
}

/* The largest |value| whose square fits an int64: floor(sqrt(INT64_MAX)). */
#define MAX_ROOT 3037000499LL

/*
 * Parses a line into @j: 0, or -EINVAL if it is neither a number nor
 * "sleep N", or -ERANGE if the number's square would not fit an int64.
 */
static int parse(const char *line, struct job *j)
{
    char *end;
    if (strncmp(line, "sleep ", 6) == 0) {
        j->sleep_s = strtod(line + 6, &end);
        j->value = 0;
        return end != line + 6 ? 0 : -EINVAL;
    }
    j->sleep_s = 0;
    errno = 0;
    j->value = strtoll(line, &end, 10);
    if (end == line || (*end != '\n' && *end != '\0'))
        return -EINVAL;
    if (errno == ERANGE || j->value > MAX_ROOT || j->value < -MAX_ROOT)
        return -ERANGE;
    return 0;
}

/* Submits one job; its formatted answer joins @q when done or timed out. */
static int start_job(executor_t *ex, completion_queue_t *q, struct job *j)
{
    future_t *f = executor_submit(ex, square, j, sizeof(*j));
    if (!f)
        return -errno;
    future_t *timed = future_within(f, 2.0, true);
    future_t *text = timed ? future_then(timed, NULL, describe,
                                         &(then_options_t){.submit = {.queue = q}})
                           : NULL;
    int rc = text ? 0 : -errno;
    if (text) {
        future_set_user_data(text, j);
        j->task = f; /* drain() waits for it before freeing j */
    } else {
        future_result(f, FUT_FOREVER, NULL, NULL); /* the task borrows j: let it end */
        future_unref(f);
    }
    future_unref(text); /* the queue holds its own reference */
    future_unref(timed);
    return rc;
}

/* Starts the job of one line; 1 if started, else 0 (said on stderr). */
static int submit_line(executor_t *ex, completion_queue_t *q, const char *line, int *next_id)
{
    struct job *j = calloc(1, sizeof(*j));
    int bad = j ? parse(line, j) : -ENOMEM;
    if (bad) {
        if (bad == -ERANGE)
            fprintf(stderr, "poll_loop: %s: out of range (|N| <= %lld, so N^2 fits int64)\n",
                    line, MAX_ROOT);
        else if (bad == -ENOMEM)
            fprintf(stderr, "poll_loop: %s\n", strerror(ENOMEM));
        else if (*line)
            fprintf(stderr, "poll_loop: a number or \"sleep N\", please\n");
        free(j);
        return 0;
    }
    j->id = (*next_id)++;
    int rc = start_job(ex, q, j);
    if (rc == 0)
        return 1;
    fprintf(stderr, "poll_loop: %s\n", future_strerror(rc));
    free(j);
    return 0;
}

/* Prints every answer waiting in @q; returns how many. */
static int drain(completion_queue_t *q)
{
    int n = 0;
    future_t *f;
    while (completion_queue_next(q, 0, &f) == 0) {
        struct job *j = future_user_data(f);
        const char *s = future_result_str(f, 0);
        if (s)
            printf(j->value < 0 ? "task %d: (%lld)^2 = %s\n" : "task %d: %lld^2 = %s\n", j->id,
                   j->value, s);
        else
            printf("task %d: %s\n", j->id, future_strerror(-errno));
        fflush(stdout);
        /*
         * A task that timed out was asked to stop (cancel_source) but may
         * still read its job: it checks task_should_stop() every 10 ms.
         */
        future_result(j->task, FUT_FOREVER, NULL, NULL);
        future_unref(j->task);
        free(j);
        future_unref(f);
        n++;
    }
    return n;
}

int main(int argc, char **argv)
{
    if (argc > 1) { /* it reads stdin and takes no argument */
        bool help = argc == 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"));
        if (!help)
            fprintf(stderr, "poll_loop: unexpected argument '%s'\n", argv[1]);
        fprintf(help ? stdout : stderr,
                "usage: poll_loop < LINES (a number to square, or \"sleep N\")\n");
        return help ? 0 : 2;
    }
    executor_t *ex = thread_pool_executor_new(&(executor_options_t){.max_workers = 4});
    completion_queue_t *q = completion_queue_new();
    if (!ex || !q) {
        fprintf(stderr, "poll_loop: %s\n", strerror(errno));
        return 1;
    }
    int started = 0, answered = 0, next_id = 1;
    bool input_open = true, skipping = false; /* skipping: the rest of a long line */
    char buf[4096];
    size_t have = 0;
    while (input_open || answered < started) {
        struct pollfd fds[2] = {
            {.fd = completion_queue_fd(q), .events = POLLIN},
            {.fd = input_open ? STDIN_FILENO : -1, .events = POLLIN},
        };
        if (poll(fds, 2, -1) < 0 && errno != EINTR)
            break;
        if (fds[0].revents & POLLIN)
            answered += drain(q);
        if (fds[1].revents & (POLLIN | POLLHUP)) {
            /* read(), not stdio: poll() must see every byte not yet used. */
            ssize_t n = read(STDIN_FILENO, buf + have, sizeof(buf) - 1 - have);
            if (n <= 0) {
                input_open = false;
                buf[have] = '\0';
                if (!skipping) /* a last line without \n */
                    started += submit_line(ex, q, buf, &next_id);
                continue;
            }
            have += (size_t)n;
            buf[have] = '\0';
            char *line = buf, *nl;
            while ((nl = strchr(line, '\n'))) {
                *nl = '\0';
                if (skipping)
                    skipping = false; /* the end of a line too long */
                else
                    started += submit_line(ex, q, line, &next_id);
                line = nl + 1;
            }
            have = strlen(line);
            if (have == sizeof(buf) - 1 && !skipping) {
                fprintf(stderr, "poll_loop: a line longer than %zu bytes: dropped\n",
                        sizeof(buf) - 2);
                skipping = true;
            }
            if (skipping)
                have = 0; /* a line too long: dropped up to its newline */
            memmove(buf, line, have);
        }
    }
    completion_queue_free(q);
    executor_free(ex);
    return 0;
}
