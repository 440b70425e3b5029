/*
 * mp_pool: the course's multiprocessing Pool of two, mapping mp_worker over
 * eight (name, seconds) pairs.
 *
 *   data = (['a', '2'], ['b', '4'], ['c', '6'], ['d', '8'],
 *           ['e', '1'], ['f', '3'], ['g', '5'], ['h', '7'])
 *
 *   def mp_worker(input1):
 *       inputs = input1[0]
 *       the_time = input1[1]
 *       print(" Processs {}\tWaiting {} seconds".format(inputs, the_time))
 *       time.sleep(int(the_time))
 *       print(" Process {}\tDONE".format(inputs))
 *
 *   def mp_handler():
 *       p = multiprocessing.Pool(2)
 *       p.map(mp_worker, data)
 *
 * Pool(2) is a process pool of two workers; p.map is executor_map, whose
 * iterator is drained to wait for every item, as p.map returns only when
 * all are done. Each pair travels as bytes (the struct below), where Python
 * pickles a list. The lines are the course's, typo included; a course
 * second is a tenth of a second here, so the whole map takes about 2 s
 * rather than 18. Without a process pool in this cfutures (or with
 * -e thread) it runs on two threads, which in C run at once just the same.
 */
#include "course.h"

#include <stdlib.h>
#include <unistd.h>

#define TICK 0.1 /* one course second */

struct pair {
    char inputs[2];   /* "a" */
    char the_time[2]; /* "2" */
};

static void mp_worker(task_t *t)
{
    size_t len;
    const struct pair *input1 = task_arg(t, &len);
    if (len != sizeof(*input1)) {
        task_raise(t, EINVAL, "mp_worker wants a (name, seconds) pair");
        return;
    }
    printf(" Processs %s\tWaiting %s seconds\n", input1->inputs, input1->the_time);
    fflush(stdout); /* one line at a time, as the course's output shows */
    course_sleep(atoi(input1->the_time) * TICK);
    printf(" Process %s\tDONE\n", input1->inputs);
    fflush(stdout);
}

static int mp_handler(const char *kind)
{
    static const struct pair data[] = {{"a", "2"}, {"b", "4"}, {"c", "6"}, {"d", "8"},
                                       {"e", "1"}, {"f", "3"}, {"g", "5"}, {"h", "7"}};
    enum { N = sizeof(data) / sizeof(data[0]) };
    const void *args[N];
    size_t lens[N];
    for (int i = 0; i < N; i++) {
        args[i] = &data[i];
        lens[i] = sizeof(data[i]);
    }
    executor_t *p = course_executor(kind, 2, NULL);
    if (!p)
        return 1;
    executor_map_t *m = executor_map(p, mp_worker, args, lens, N, NULL);
    int rc = m ? 0 : 1;
    int r;
    while (m && (r = executor_map_next(m, NULL, NULL)) != FUT_EOF) {
        if (r != 0) {
            fprintf(stderr, "mp_worker: %s\n", future_strerror(r));
            rc = 1;
        }
    }
    executor_map_free(m);
    executor_free(p);
    return rc;
}

int main(int argc, char **argv)
{
    const char *kind = course_have_process_pool() ? "process" : "thread";
    if (course_help_asked(argc, argv))
        return course_usage("mp_pool [-e process|thread]", 0);
    if (argc == 3 && strcmp(argv[1], "-e") == 0 && course_kind(argv[2], false))
        kind = argv[2];
    else if (argc != 1)
        return course_usage("mp_pool [-e process|thread]", 2);
    return mp_handler(kind);
}
