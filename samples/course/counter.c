/*
 * counter: ThreadSafeCounter, five threads times 100,000 increments; the
 * lock makes the final count exact.
 *
 *   class ThreadSafeCounter:
 *       def __init__(self):
 *           self.count = 0
 *           self.lock = threading.Lock()
 *       def increment(self):
 *           with self.lock:
 *               self.count += 1
 *       def get_count(self):
 *           with self.lock:
 *               return self.count
 *
 *   def worker():
 *       for _ in range(100000):
 *           counter.increment()
 *   five threads run worker; join each
 *   print("Final count:", counter.get_count())
 *
 * Without the GIL the lock matters even more: C threads really do run at
 * once, and `count += 1` unlocked loses increments on two cores
 * (counter --unlocked shows it: the final count comes out short, usually).
 */
#include "course.h"

#include <pthread.h>
#include <stdatomic.h>

struct counter {
    _Atomic long count; /* guarded by lock, unless --unlocked */
    pthread_mutex_t lock;
    bool locked; /* immutable after main sets it */
};

/*
 * count += 1 is a load, an add and a store. Relaxed atomics keep each step
 * well defined in C; only the lock makes the three one step.
 */
static void increment(struct counter *c)
{
    if (c->locked)
        pthread_mutex_lock(&c->lock);
    long v = atomic_load_explicit(&c->count, memory_order_relaxed);
    atomic_store_explicit(&c->count, v + 1, memory_order_relaxed);
    if (c->locked)
        pthread_mutex_unlock(&c->lock);
}

static long get_count(struct counter *c)
{
    pthread_mutex_lock(&c->lock);
    long n = atomic_load(&c->count);
    pthread_mutex_unlock(&c->lock);
    return n;
}

static void worker(task_t *t)
{
    struct counter *c = (struct counter *)task_arg(t, NULL);
    for (int i = 0; i < 100000; i++)
        increment(c);
}

int main(int argc, char **argv)
{
    struct counter counter = {.lock = PTHREAD_MUTEX_INITIALIZER, .locked = true};
    if (course_help_asked(argc, argv))
        return course_usage("counter [--unlocked]", 0);
    if (argc == 2 && strcmp(argv[1], "--unlocked") == 0) {
        counter.locked = false;
    } else if (argc != 1) {
        return course_usage("counter [--unlocked]", 2);
    }
    future_t *threads[5];
    executor_t *ex = course_executor("thread", 5, NULL);
    if (!ex)
        return 1;
    for (int i = 0; i < 5; i++)
        threads[i] = executor_submit(ex, worker, &counter, 0);
    for (int i = 0; i < 5; i++) {
        future_result(threads[i], FUT_FOREVER, NULL, NULL);
        future_unref(threads[i]);
    }
    executor_free(ex);
    printf("Final count: %ld\n", get_count(&counter));
    return 0;
}
