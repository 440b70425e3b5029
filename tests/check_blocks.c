/*
 * check_blocks: the task-block allocator (lib/blocks.c; white box: links the
 * core library). Blocks are aligned and whole at every size; freed blocks
 * are used again, also those a thread freed before it exited; a fork while
 * another thread allocates leaves the child an allocator that works.
 *
 * In ASan builds malloc serves every block (cf_block_carved() is -1): the
 * checks of reuse and the fork case are skipped there (the sizes still run).
 */
#include "testutil.h"

#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "blocks.h"

#define TASK_BLOCK 120 /* a thread pool's future + work item */

/* True if @n bytes at @p all hold @v (no ck_assert a byte: each is a write
   to Check's parent, 1.3 million of them in test_blocks_big). */
static bool all_bytes(const unsigned char *p, size_t n, unsigned v)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != v)
            return false;
    return true;
}

START_TEST(test_blocks_sizes)
{
    void *p[CF_BLOCK_MAX + 40];
    for (size_t size = 0; size < CF_BLOCK_MAX + 40; size++) {
        p[size] = cf_block_alloc(size);
        ck_assert_ptr_nonnull(p[size]);
        ck_assert_uint_eq((uintptr_t)p[size] % _Alignof(max_align_t), 0);
        memset(p[size], (int)(size & 0xff), size);
    }
    for (size_t size = 0; size < CF_BLOCK_MAX + 40; size++) {
        ck_assert_msg(all_bytes(p[size], size, size & 0xff), /* no two blocks overlap */
                      "the block of %zu bytes was written over", size);
        cf_block_free(p[size]);
    }
    cf_block_free(NULL);
}
END_TEST

/* Frees of the first n blocks and n new allocations: no block carved anew
   but what the cache held back (at most one batch, 64). */
START_TEST(test_blocks_reused)
{
    enum { N = 5000 };
    void **p = malloc(N * sizeof(*p));
    for (int round = 0; round < 3; round++) {
        long before = cf_block_carved();
        for (int i = 0; i < N; i++)
            ck_assert_ptr_nonnull(p[i] = cf_block_alloc(TASK_BLOCK));
        long grew = cf_block_carved() - before;
        if (before >= 0 && round > 0)
            ck_assert_int_le(grew, 64);
        for (int i = 0; i < N; i++)
            cf_block_free(p[i]);
    }
    free(p);
}
END_TEST

/* The big classes (task arguments, result copies): whole and aligned at
   sizes on both sides of each class's edge and past the largest (malloc);
   freed big blocks are used again, a few batches of 4 at most carved anew. */
START_TEST(test_blocks_big)
{
    static const size_t sizes[] = {CF_BLOCK_MAX + 1,
                                   511,
                                   512,
                                   513,
                                   4095,
                                   4096,
                                   40000,
                                   CF_BLOCK_BIG_MAX - 1,
                                   CF_BLOCK_BIG_MAX,
                                   CF_BLOCK_BIG_MAX + 1,
                                   200000};
    enum { NS = sizeof(sizes) / sizeof(sizes[0]), EACH = 3, N = 300 };
    unsigned char *p[NS][EACH];
    for (int i = 0; i < NS; i++)
        for (int j = 0; j < EACH; j++) {
            ck_assert_ptr_nonnull(p[i][j] = cf_block_alloc(sizes[i]));
            ck_assert_uint_eq((uintptr_t)p[i][j] % _Alignof(max_align_t), 0);
            memset(p[i][j], i * EACH + j, sizes[i]);
        }
    for (int i = 0; i < NS; i++)
        for (int j = 0; j < EACH; j++) {
            ck_assert_msg(all_bytes(p[i][j], sizes[i], (unsigned)(i * EACH + j)),
                          "a block of %zu bytes was written over", sizes[i]); /* no overlap */
            cf_block_free(p[i][j]);
        }
    const char text[] = "a result's bytes";
    char *d = cf_block_dup(text, sizeof(text));
    ck_assert_str_eq(d, text);
    cf_block_free(d);
    void **q = malloc(N * sizeof(*q));
    for (int round = 0; round < 3; round++) {
        long before = cf_block_carved();
        for (int i = 0; i < N; i++)
            ck_assert_ptr_nonnull(q[i] = cf_block_alloc(CF_BLOCK_BIG_MAX));
        if (before >= 0 && round > 0)
            ck_assert_int_le(cf_block_carved() - before, 8);
        for (int i = 0; i < N; i++)
            cf_block_free(q[i]);
    }
    free(q);
}
END_TEST

struct handoff {
    void **p;
    int n;
};

static void *free_all_and_exit(void *arg)
{
    struct handoff *h = arg;
    for (int i = 0; i < h->n; i++)
        cf_block_free(h->p[i]);
    return NULL; /* fewer than 128 stay in this thread's cache: flushed now */
}

/* Blocks allocated on one thread and freed on another that then exits are
   used again (the exiting thread's cache goes back), over rounds. */
START_TEST(test_blocks_freed_by_exited_thread)
{
    enum { N = 1000 + 100 }; /* not a multiple of a batch: some stay cached */
    void **p = malloc(N * sizeof(*p));
    long first = -1;
    for (int round = 0; round < 20; round++) {
        for (int i = 0; i < N; i++)
            ck_assert_ptr_nonnull(p[i] = cf_block_alloc(200));
        if (round == 0)
            first = cf_block_carved();
        struct handoff h = {p, N};
        pthread_t t;
        ck_assert_int_eq(pthread_create(&t, NULL, free_all_and_exit, &h), 0);
        ck_assert_int_eq(pthread_join(t, NULL), 0);
    }
    long now = cf_block_carved();
    if (first >= 0)
        ck_assert_int_le(now - first, 2 * 64); /* 20 rounds, no growth but a batch or two */
    free(p);
}
END_TEST

static pthread_key_t late_key;

/* Another library's thread-exit destructor, run after ours: frees a block. */
static void late_free(void *block)
{
    cf_block_free(block);
}

static void *alloc_then_exit(void *arg)
{
    void *b = cf_block_alloc(TASK_BLOCK); /* the allocator's key exists by now */
    *(void **)arg = b;
    pthread_setspecific(late_key, b);
    return NULL;
}

/* A block freed by a destructor that runs after the allocator's own (keys
   made later run later in glibc) goes back to the shared stack, is not
   lost in a cache nobody will flush, and the next refill hands it out. */
START_TEST(test_blocks_freed_after_thread_exit_flush)
{
    void *warm = cf_block_alloc(TASK_BLOCK); /* the allocator's key first */
    cf_block_free(warm);
    ck_assert_int_eq(pthread_key_create(&late_key, late_free), 0);
    void *b = NULL;
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, alloc_then_exit, &b), 0);
    ck_assert_int_eq(pthread_join(t, NULL), 0);
    ck_assert_ptr_nonnull(b);
    if (cf_block_carved() >= 0) {
        enum { N = 300 }; /* past this thread's cache (at most 127) */
        void *p[N];
        bool found = false;
        for (int i = 0; i < N; i++)
            found |= (p[i] = cf_block_alloc(TASK_BLOCK)) == b;
        for (int i = 0; i < N; i++)
            cf_block_free(p[i]);
        ck_assert_msg(found, "the block freed after the thread's flush was lost");
    }
    pthread_key_delete(late_key);
}
END_TEST

static atomic_bool churn_stop;

static void *churn(void *arg)
{
    (void)arg;
    void *p[300];
    while (!atomic_load(&churn_stop)) {
        for (int i = 0; i < 300; i++)
            p[i] = cf_block_alloc(i % 2 ? TASK_BLOCK : 224);
        for (int i = 0; i < 300; i++)
            cf_block_free(p[i]);
    }
    return NULL;
}

/* A child forked while another thread refills and spills (taking the class
   locks) can allocate and free: the locks are not left held in it. */
START_TEST(test_blocks_fork_while_busy)
{
    if (cf_block_carved() < 0)
        return; /* malloc's own fork safety: ASan's allocator lacks it (a child hangs) */
    atomic_store(&churn_stop, false);
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, churn, NULL), 0);
    for (int i = 0; i < 200; i++) {
        pid_t pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
            void *p[500];
            for (int k = 0; k < 500; k++)
                if (!(p[k] = cf_block_alloc(k % 2 ? TASK_BLOCK : 224)))
                    _exit(2);
            for (int k = 0; k < 500; k++)
                cf_block_free(p[k]);
            _exit(0);
        }
        int status = wait_child(pid, 20);
        ck_assert_msg(status != -1, "fork %d: the child hung in the allocator", i);
        ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    }
    atomic_store(&churn_stop, true);
    ck_assert_int_eq(pthread_join(t, NULL), 0);
    ck_assert(no_children());
}
END_TEST

/* The library built with the test hooks (blocks.c). */
extern void (*cf_test_blocks_init_hook)(void);

static pid_t init_child = -2; /* -2: the hook never ran; -1: its fork failed */
static int init_errno;        /* errno of that fork, when it failed */

/*
 * In the allocator's first use, once its fork handlers are set: forks. The
 * child (init not done there: glibc runs it again on the child's first
 * use, which sets the handlers a second time) allocates, then forks with
 * both sets of handlers and waits for that grandchild.
 */
static void fork_during_init(void)
{
    if (init_child != -2)
        return; /* the child's own init */
    init_child = fork();
    if (init_child < 0)
        init_errno = errno; /* the test reports it after more calls */
    if (init_child != 0)
        return;
    void *b = cf_block_alloc(TASK_BLOCK);
    if (!b)
        _exit(2);
    pid_t g = fork();
    if (g < 0)
        _exit(3);
    if (g == 0) {
        cf_block_free(cf_block_alloc(TASK_BLOCK));
        _exit(0);
    }
    int status;
    if (waitpid(g, &status, 0) != g || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
        _exit(4);
    cf_block_free(b);
    _exit(0);
}

/*
 * A fork while the allocator starts (between its pthread_atfork and its
 * state) leaves a child that registers the fork handlers twice: its own
 * forks still work (the handlers count; the second prepare handler took
 * the class locks again before, and the child hung).
 */
START_TEST(test_blocks_fork_during_init)
{
    /* TSan's own pthread_once does not start a once again in a child that a
       fork interrupted (glibc's does): the child would wait for ever. */
    if (UNDER_TSAN)
        return;
    const char *fork_mode = getenv("CK_FORK");
    cf_test_blocks_init_hook = fork_during_init;
    void *b = cf_block_alloc(TASK_BLOCK);
    cf_test_blocks_init_hook = NULL;
    ck_assert_ptr_nonnull(b);
    cf_block_free(b);
    if (init_child == -2) { /* the hook never ran */
        ck_assert_msg(cf_block_carved() < 0 || (fork_mode && !strcmp(fork_mode, "no")),
                      "the allocator was in use before this test");
        return; /* blocks are off here (sanitizers, valgrind), or started */
    }
    ck_assert_msg(init_child > 0, "fork: %s", strerror(init_errno));
    int status = wait_child(init_child, 20);
    ck_assert_msg(status != -1, "the child's fork hung in the allocator's fork handlers");
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child status %#x",
                  status);
    ck_assert(no_children());
}
END_TEST

Suite *make_suite(void)
{
    Suite *s = suite_create("blocks");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_blocks_sizes);
    tcase_add_test(tc, test_blocks_reused);
    tcase_add_test(tc, test_blocks_big);
    tcase_add_test(tc, test_blocks_freed_by_exited_thread);
    tcase_add_test(tc, test_blocks_freed_after_thread_exit_flush);
    tcase_add_test(tc, test_blocks_fork_while_busy);
    tcase_add_test(tc, test_blocks_fork_during_init);
    tcase_set_timeout(tc, 120);
    suite_add_tcase(s, tc);
    return s;
}
