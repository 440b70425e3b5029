/*
 * quickstart: the README's example. Five tasks on a thread pool, collected
 * with as_completed, as in Python:
 *
 *   with ThreadPoolExecutor(max_workers=5) as ex:
 *       futures = [ex.submit(square, n) for n in range(1, 6)]
 *       for f in as_completed(futures):
 *           print(f.result())
 */
#include <cfutures.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

static void square(task_t *t)
{
    size_t len;
    const int64_t *n = task_arg(t, &len);
    if (len != sizeof(*n) || *n < 0) {
        task_raise(t, EDOM, "square wants a non-negative int64"); /* Python: raise */
        return;
    }
    task_return_i64(t, *n * *n);
}

int main(void)
{
    int64_t args[5] = {1, 2, 3, 4, 5};
    future_t *fs[5];
    executor_t *ex = thread_pool_executor_new(&(executor_options_t){.max_workers = 5});
    if (!ex) {
        perror("thread_pool_executor_new");
        return 1;
    }
    for (int i = 0; i < 5; i++)
        fs[i] = executor_submit(ex, square, &args[i], sizeof(args[i]));

    as_completed_t *it = as_completed_new(fs, 5, FUT_FOREVER);
    future_t *f;
    int64_t total = 0;
    while (as_completed_next(it, &f) == 0) {
        int64_t v;
        if (future_result_i64(f, FUT_FOREVER, &v) == 0) {
            printf("result %lld\n", (long long)v);
            total += v;
        }
        future_unref(f);
    }
    as_completed_free(it);

    printf("sum of squares: %lld\n", (long long)total);

    /* A failing task: Python's raise is task_raise; result() gives an error code. */
    int64_t minus = -1;
    future_t *bad = executor_submit(ex, square, &minus, sizeof(minus));
    const future_error_t *err;
    int rc = future_result(bad, FUT_FOREVER, NULL, NULL);
    if (rc == FUT_ETASK && future_exception(bad, 0, &err) == 0 && err)
        printf("square(-1) failed: %s (code %d)\n", err->message, err->code);
    future_unref(bad);

    for (int i = 0; i < 5; i++)
        future_unref(fs[i]);
    executor_free(ex);
    return total == 55 ? 0 : 1;
}
