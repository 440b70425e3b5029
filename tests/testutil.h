/*
 * testutil.h: what every Check program shares: gates (deterministic
 * hand-offs between threads), canned tasks, and counters of threads, fds and
 * children so a test can check it left nothing behind.
 */
#ifndef CF_TESTUTIL_H
#define CF_TESTUTIL_H

#include <cfutures.h>

#include <check.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

/* 1 in a build under ThreadSanitizer or AddressSanitizer (gcc says so with
   __SANITIZE_*__, clang with __has_feature), else 0. */
#if defined(__SANITIZE_THREAD__)
#define UNDER_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define UNDER_TSAN 1
#endif
#endif
#ifndef UNDER_TSAN
#define UNDER_TSAN 0
#endif
#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif
#ifndef UNDER_ASAN
#define UNDER_ASAN 0
#endif

/* Every test program defines this; check_main.c runs it. */
Suite *make_suite(void);
/*
 * Runs make_suite(): each case in a forked child as Check does by default
 * (check_main.c), or, without @fork, all in this process (the MPI tests:
 * MPI cannot be used in a forked child). EXIT_SUCCESS if every case passed.
 */
int run_suite(bool fork);

/* Generous limit for anything that should happen "soon" (seconds). */
#define T_LONG 30.0

/* A one-shot gate: waiters block until it is opened. */
typedef struct gate {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool open;
    int waiting; /* threads inside gate_wait */
} gate_t;

void gate_init(gate_t *g);
void gate_destroy(gate_t *g);
void gate_open(gate_t *g);
/* Waits up to @timeout seconds; true if the gate opened. */
bool gate_wait(gate_t *g, double timeout);
/* Waits until @n threads are blocked in gate_wait (up to T_LONG). */
bool gate_wait_for_waiters(gate_t *g, int n);

/* Canned tasks. */
void t_add1(task_t *t);        /* arg: an int64_t*; returns *arg + 1 as i64 */
void t_echo(task_t *t);        /* returns a copy of its argument bytes */
void t_nothing(task_t *t);     /* returns nothing */
void t_raise(task_t *t);       /* arg: an int* code; raises it with "boom %d" */
void t_wait_gate(task_t *t);   /* arg: a gate_t*; waits for it, returns i64 1 */
void t_until_stop(task_t *t);  /* spins until task_should_stop(), returns i64 7 */

/*
 * Waits for each of @fs[0..n) (up to T_LONG), checks that it succeeded
 * with the i64 i + @offset, and drops the caller's reference.
 */
void expect_i64_results(future_t **fs, size_t n, int64_t offset);
/* @n malloc'ed bytes, each (seed + i * 7) & 0xff: an argument to echo. */
unsigned char *bytes_pattern(size_t n, unsigned seed);
/* Waits for @f (up to T_LONG) and checks that its result is the @len bytes @want. */
void expect_bytes(future_t *f, const unsigned char *want, size_t len);

/* Threads of this process now (/proc/self/task). */
int count_threads(void);
/* Open fds of this process now (/proc/self/fd). */
int count_fds(void);
/* Waits up to T_LONG for the thread count to drop to @n; true if it did. */
bool wait_threads(int n);
/* True if this process has no child left, not even a zombie (waitpid: ECHILD). */
bool no_children(void);
/* @pid's wait status once it exited, or -1 if it is not ours or is still
   running after @timeout seconds (then it is SIGKILLed and reaped). */
int wait_child(pid_t pid, double timeout);
/* True if no process @pid exists any more (kill(pid, 0): ESRCH). */
bool process_gone(pid_t pid);

/* Seconds since some fixed point (CLOCK_MONOTONIC). */
double now_s(void);

/* CK_TIMEOUT_MULTIPLIER (how much slower a sanitizer run is), kept within [1, @most]. */
double timeout_multiplier(double most);
/* Sleeps @secs seconds (a signal does not cut it short): for a time that
   must pass, never to wait for an event. */
void sleep_s(double secs);
/*
 * A hang guard for a program that runs its cases without Check's fork (the
 * MPI tests), where Check's own timeouts do not apply: a detached thread
 * that, @secs seconds from now (times timeout_multiplier(3): a slow run under
 * a sanitizer on a loaded machine is not a hang), says so on stderr with
 * @who and ends the process with exit status 124 (a second call does
 * nothing: the first call's limit holds). Not alarm(): Check's runner takes
 * SIGALRM for itself and SIGKILLs its process group, with no word of why (a
 * CI run of check_mpi_pool under TSan ended so at 300 s).
 */
void hang_guard(double secs, const char *who);

/* Spins (yielding) until pred(arg) is true or @timeout passes. */
bool eventually(bool (*pred)(void *), void *arg, double timeout);

/* A new TCase of @s named @name, with a 60 s timeout (CK_TIMEOUT_MULTIPLIER scales it). */
TCase *new_tcase(Suite *s, const char *name);

/* The calling thread's kernel id (gettid). */
pid_t self_tid(void);
/*
 * Waits up to @timeout for thread @tid of this process to be asleep in the
 * kernel (state S or D in /proc/self/task/TID/stat): a hint that it reached
 * a blocking wait. True if seen. Tests never depend on it for correctness.
 */
bool wait_tid_sleeping(pid_t tid, double timeout);
/* Process @pid's state letter (/proc/PID/stat: R, S, Z...), 0 if it is gone. */
char proc_state(pid_t pid);
/* Process @pid's parent (/proc/PID/stat), or -1. */
pid_t proc_parent(pid_t pid);

/*
 * Starts and joins one thread, so that threads a runtime starts on the first
 * pthread_create (TSan's background thread) exist before a test takes its
 * count_threads() baseline. Call it first in a test that counts threads.
 */
void warm_up_threads(void);
/* The thread count to come back to, counted after warm_up_threads(). */
int thread_baseline(void);

/* The executor kinds the conformance suites loop over (check_executor,
 * check_control): a test case's loop index picks one. */
struct ex_kind {
    const char *name;
    executor_t *(*make)(const executor_options_t *o);
};
#ifdef CF_TEST_MPI_KIND
#define N_EX_KINDS 1 /* check_executor_mpi: the MPI pool alone (tests/mpi_pool.sh) */
#else
#define N_EX_KINDS 2
#endif
extern const struct ex_kind ex_kinds[N_EX_KINDS];
/*
 * The workers a kind-@k executor made with max_workers = @asked has: @asked,
 * but no more than the world's worker ranks for the MPI pool under mpiexec.
 */
int kind_workers(int k, int asked);
/* A new executor of kind @k; fails the test if it cannot be made. */
executor_t *kind_new(int k, executor_options_t o);

#endif
