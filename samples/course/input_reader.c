/*
 * input_reader: InputReader, a thread that reads a line from stdin while
 * the main thread computes squares, as long as the thread is alive.
 *
 *   class InputReader(Thread):
 *       def run(self):
 *           self.line_of_text = input()
 *
 *   print("Enter any text and press enter: ")
 *   thread = InputReader()
 *   thread.start()
 *   count = result = 1
 *   while thread.is_alive():
 *       result = count * count
 *       count += 1
 *   print("calculated squares up to {0} * {0} = {1}".format(count, result))
 *   print("while you typed '{}'".format(thread.line_of_text))
 *
 * thread.is_alive() is !future_done(f); the line the thread kept on itself
 * is the task's result (a string), read with future_result_str.
 * Python's integers never overflow; here count stops growing at the
 * largest square an int64 holds (about 3 * 10^9 turns: seconds of typing).
 */
#include "course.h"

#include <stdint.h>
#include <stdlib.h>

static void input_reader(task_t *t)
{
    char *line = NULL;
    size_t cap = 0;
    ssize_t n = getline(&line, &cap, stdin);
    if (n < 0) {
        free(line);
        task_raise(t, EIO, "EOF when reading a line"); /* Python: EOFError */
        return;
    }
    if (n > 0 && line[n - 1] == '\n')
        line[--n] = '\0';
    task_return(t, line, (size_t)n + 1, free);
}

int main(int argc, char **argv)
{
    int usage_rc = course_no_arguments(argc, argv, "input_reader < TEXT");
    if (usage_rc >= 0)
        return usage_rc;
    printf("Enter any text and press enter: \n");
    fflush(stdout);
    executor_t *ex = course_executor("thread", 1, NULL);
    if (!ex)
        return 1;
    future_t *thread = executor_submit(ex, input_reader, NULL, 0);
    if (!thread) {
        perror("executor_submit");
        executor_free(ex);
        return 1;
    }

    int64_t count = 1, result = 1;
    while (!future_done(thread)) {
        if (count < INT64_C(3037000499)) { /* floor(sqrt(INT64_MAX)) */
            result = count * count;
            count++;
        }
    }

    printf("calculated squares up to %lld * %lld = %lld\n", (long long)count,
           (long long)count, (long long)result);
    const char *line = future_result_str(thread, FUT_FOREVER);
    int rc = 0;
    if (line) {
        printf("while you typed '%s'\n", line);
    } else {
        const future_error_t *err = NULL;
        future_exception(thread, 0, &err);
        fprintf(stderr, "input_reader: %s\n", err ? err->message : "no line");
        rc = 1;
    }
    future_unref(thread);
    executor_free(ex);
    return rc;
}
