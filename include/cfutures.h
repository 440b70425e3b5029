/*
 * cfutures: Python's concurrent.futures for C.
 *
 * An executor runs tasks and hands back futures, exactly as
 * concurrent.futures.Executor.submit() does. Every executor kind returns the
 * same future_t, so results, errors, cancellation, done-callbacks,
 * as_completed, wait and map work the same whatever runs the task.
 *
 * Conventions (read these once; every function below follows them):
 *
 *  - Functions that can fail return int: 0 on success, or a negative FUT_E*
 *    code. future_strerror() names every code. Codes with an errno twin are
 *    its negation (FUT_ETIMEDOUT == -ETIMEDOUT, ...); the others sit below
 *    -10000.
 *  - Functions that return a pointer return NULL on failure and set errno to
 *    the positive value of the code (errno == -FUT_ESHUTDOWN after a submit to
 *    a shut-down executor; errno == -FUT_ESYS when an OS call failed: the
 *    OS's own errno is not kept then).
 *  - Timeouts are double seconds. FUT_FOREVER (-1.0) waits without limit, 0
 *    polls. Any other negative value, NaN or +/-infinity is FUT_EINVAL.
 *  - Every function checks its arguments first and rejects NULL or invalid
 *    ones with FUT_EINVAL (or NULL + errno EINVAL), never a crash. A call that
 *    fails leaves its objects as it found them.
 *  - Ownership words: "new reference" (the caller unrefs it), "borrowed"
 *    (valid until the time said), "takes ownership" (the library frees it
 *    with the free_fn given, on every path, failures included).
 *  - The library never calls exit(), and prints nothing but the MPI pool's
 *    lines on stderr (a lost rank, a failed start-up, an ignored
 *    CFUTURES_MPI_* setting).
 *  - Memory: a future and its task's bookkeeping take one block from the
 *    library's own 2 MiB chunks (mapped 64 KiB at a time in one call, so a
 *    burst of tasks is not a page fault per 32 tasks). Freed blocks are
 *    kept for the next futures, never given back to the system: a process
 *    holds about what its most futures alive at once took (128 bytes each
 *    on a thread pool). The chunks come from 4 GiB of
 *    address space set aside at the first use (no memory until used).
 *    malloc() serves them instead with CFUTURES_MALLOC=1 in the
 *    environment, under an RLIMIT_AS limit, on 32-bit targets, in ASan or
 *    MSan builds of the library, and under valgrind (when the library was
 *    built with valgrind's header), so that memcheck sees each future.
 *    An RLIMIT_AS set after the first use counts those 4 GiB; a process
 *    pool's workers do not hold them (a limit their initializer sets counts
 *    only what they use).
 *
 * Choices made where Python is vague (the design's "Semantics pinned down";
 * tests/ checks each, and PORTING.md lists every difference from Python):
 *
 *  - A cancelled future counts as done for futures_wait and as_completed at
 *    once: future_cancel tells the waiters (CPython waits for the executor to
 *    notice). future_set_running_or_notify_cancel on it then returns 0
 *    (once: a second call is FUT_ESTATE) and tells no one twice.
 *  - Only a task that has started escapes cancellation.
 *  - A map keeps going after a task error: executor_map_next returns that
 *    item's failure, and the next call returns the next item.
 *  - map_options_t.timeout is one deadline measured from the executor_map
 *    call (CPython's meaning, not pebble's per-item one).
 *  - submit_options_t.timeout is the task's own running time limit, counted
 *    from the moment the task starts (pebble's meaning). A queued task never
 *    expires.
 *  - future_cancel on a running future returns false (Python) but records
 *    the request: task_should_stop() then returns true inside the task, which
 *    may stop early (cooperative cancellation).
 *  - as_completed and map iterators are finished once they returned
 *    FUT_ETIMEDOUT: later calls return FUT_EOF.
 *  - A failed future's status says what kind of failure it was (FUT_ETASK,
 *    FUT_EWORKER, FUT_EDEADLINE, FUT_EBROKEN, ...); whether a future failed is
 *    a flag, never inferred from the error's value (task_raise(t, 0, "")
 *    still fails the future).
 *  - "Is the pool broken?" is future_error_is_broken(): true for both
 *    FUT_EBROKEN and FUT_EWORKER (loky's TerminatedWorkerError is a
 *    BrokenProcessPool).
 *  - Zero means default in every option struct; only negative counts are
 *    FUT_EINVAL (Python rejects 0 too).
 *
 * Python name -> C twin: see PORTING.md.
 */
#ifndef CFUTURES_H
#define CFUTURES_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <errno.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------- version */

#define CFUTURES_VERSION_MAJOR 0
#define CFUTURES_VERSION_MINOR 1
#define CFUTURES_VERSION_PATCH 0
#define CFUTURES_VERSION "0.1.0"
/* 0xMMmmpp: compare with >= in #if. */
#define CFUTURES_VERSION_HEX                                                             \
    ((CFUTURES_VERSION_MAJOR << 16) | (CFUTURES_VERSION_MINOR << 8) |                    \
     CFUTURES_VERSION_PATCH)

#if defined(__GNUC__) && __GNUC__ >= 4
#define CF_API __attribute__((visibility("default")))
#define CF_PRINTF(fmt, args) __attribute__((format(printf, fmt, args)))
#else
#define CF_API
#define CF_PRINTF(fmt, args)
#endif

/**
 * The version of the library actually linked, as "MAJOR.MINOR.PATCH".
 * Compare with CFUTURES_VERSION to catch a header/library mismatch.
 * Threads: any; never fails; static text.
 */
CF_API const char *cfutures_version(void);

/* ------------------------------------------------------------ error codes */

#define FUT_ETIMEDOUT (-ETIMEDOUT)  /* Python: TimeoutError */
#define FUT_ECANCELLED (-ECANCELED) /* Python: CancelledError */
#define FUT_ESHUTDOWN (-ESHUTDOWN)  /* Python: RuntimeError after shutdown */
#define FUT_EINVAL (-EINVAL)        /* Python: ValueError / TypeError */
#define FUT_ENOMEM (-ENOMEM)        /* out of memory */
#define FUT_EFULL (-EAGAIN)         /* bounded queue full, nonblocking submit */
#define FUT_ETASK (-10001)          /* the task raised: see future_exception */
#define FUT_EBROKEN (-10002)        /* Python: BrokenExecutor */
#define FUT_EWORKER (-10003)        /* the worker process died running the task */
#define FUT_EDEADLINE (-10004)      /* the task's own time limit passed */
#define FUT_ESTATE (-10005)         /* Python: InvalidStateError */
#define FUT_ESYS (-10006)           /* an OS call failed */
#define FUT_EOF (-10007)            /* an iterator is exhausted */

/* Wait without limit. */
#define FUT_FOREVER (-1.0)

/**
 * Names a code: "FUT_ETIMEDOUT: timed out", ...; 0 gives "success".
 * An unknown code gives "unknown error". Python: the exception class name.
 * Threads: any; never NULL; static text.
 */
CF_API const char *future_strerror(int code);

/* ---------------------------------------------------------- opaque types */

typedef struct future future_t;                     /* shared, reference counted */
typedef struct executor executor_t;                 /* one owner: executor_free */
typedef struct task task_t;                         /* borrowed inside a task_fn */
typedef struct executor_map executor_map_t;         /* one owner: executor_map_free */
typedef struct as_completed as_completed_t;         /* one owner: as_completed_free */
typedef struct completion_queue completion_queue_t; /* one owner: completion_queue_free */

/**
 * A failed future's error. Owned by the future: valid until its last unref.
 * Out of memory, the message may be lost (""); with no memory at all for the
 * error, the status stands and code is 0.
 */
typedef struct future_error {
    int status;          /* FUT_ETASK, FUT_EWORKER, FUT_EDEADLINE, FUT_EBROKEN, ... */
    int code;            /* the task's own code (task_raise / future_set_exception) */
    const char *message; /* never NULL; "" when no memory was left for it */
    int exit_status;     /* FUT_EWORKER: the worker's exit code, or -1 */
    int signal;          /* FUT_EWORKER: the signal that killed it, or 0 */
} future_error_t;

/** A done-callback: runs once with the done future and the ud given. */
typedef void (*future_callback_fn)(future_t *f, void *ud);

/** A task: reads its argument with task_arg, answers with task_return*. */
typedef void (*task_fn)(task_t *task);

/* ---------------------------------------------------------------- options */

/** What a process pool does when a worker dies (zero: respawn). */
typedef enum {
    FUT_WORKER_RESPAWN = 0,   /* fail only the running task, fork a replacement */
    FUT_WORKER_BREAK_POOL = 1 /* Python: every pending future fails FUT_EBROKEN */
} fut_worker_death;

/**
 * Executor options; zero means default. Use designated initializers:
 *   thread_pool_executor_new(&(executor_options_t){ .max_workers = 5 });
 * The struct only grows at its end.
 */
typedef struct executor_options {
    int max_workers;                /* 0: threads min(32, cpus + 4); processes cpus */
    const char *thread_name_prefix; /* threads are prefix_N (15 chars max); copied */
    task_fn initializer;            /* run once in each worker before its first task */
    const void *initarg;            /* its argument: the pointer itself (task_arg), also
                                       with initarg_len 0, on every kind; borrowed
                                       until executor_free (a process pool's worker
                                       sees the memory as it was at creation) */
    size_t initarg_len;
    int max_tasks_per_child;          /* process pools: replace a worker after N tasks;
                                         a thread pool ignores it (Python: TypeError) */
    size_t max_queue;                 /* 0: unbounded; else submit blocks or FUT_EFULL */
    fut_worker_death on_worker_death; /* process pools; a thread pool checks it is
                                         valid and ignores it */
} executor_options_t;

/**
 * Options for one submit; zero means default. Zero the whole struct (a
 * compound literal or designated initializer, or memset) rather than set
 * fields one by one on an uninitialised one: a later version may give a
 * field to bytes that are padding now, as borrow_arg took a padding byte
 * after nonblocking, and a stray nonzero byte there would ask for it.
 */
typedef struct submit_options {
    double timeout;            /* the task's own running-time limit (s); 0: none */
    bool nonblocking;          /* with max_queue: fail FUT_EFULL rather than block */
    bool borrow_arg;           /* the caller keeps the argument alive and unchanged
                                  until the future is done: a process pool need not
                                  copy it at submit. See executor_submit_with. */
    completion_queue_t *queue; /* NULL, or the future joins this queue at submit
                                  (before the task can end) */
    double delay;              /* the task starts no earlier than this many seconds after
                                  the submit (Java schedule); 0: at once. See
                                  executor_submit_with. */
    int priority;              /* higher starts first, FIFO within a level; 0: default.
                                  Any int. See executor_submit_with. */
} submit_options_t;

/** Options for executor_map; zero means default. */
typedef struct map_options {
    double timeout;    /* one deadline from the executor_map call (s); 0: none */
    size_t chunksize;  /* items per dispatch (process pools); 0: 1 */
    size_t buffersize; /* at most this many tasks (chunks) in flight; 0: all */
    bool unordered;    /* results as they complete (executor_map_next_at says
                          which item), not in input order */
} map_options_t;

/** When future_then runs its function (zero: on a result). */
typedef enum {
    FUT_THEN_ON_RESULT = 0, /* prev succeeded (Java thenApply, folly thenValue) */
    FUT_THEN_ON_FAILURE,    /* prev failed or was cancelled (Java exceptionally,
                               folly thenError) */
    FUT_THEN_ALWAYS         /* either (Java handle, folly thenTry) */
} fut_then_when;

/** Options for future_then; zero means default. */
typedef struct then_options {
    fut_then_when when;      /* which outcome of prev runs fn */
    submit_options_t submit; /* as executor_submit_with (timeout also inline;
                                borrow_arg ignored: fn's argument is prev's
                                result, the library's own) */
} then_options_t;

/** Options for futures_all and futures_any; zero means default. */
typedef struct combine_options {
    bool settle;      /* futures_all: wait for every future and succeed */
    bool cancel_rest; /* cancel the other futures once the outcome is known */
} combine_options_t;

/** A snapshot from executor_stats. Counts since creation where said. */
typedef struct executor_stats {
    size_t workers;   /* started workers alive now */
    size_t idle;      /* started workers waiting for work */
    size_t queued;    /* submitted, not yet started (cancelled ones not counted) */
    size_t running;   /* started, not finished; a thread pool's task past its
                         own deadline counts until its thread returns from
                         it (the thread is still busy: it is not idle either),
                         a process pool's stops counting at the deadline
                         (its worker is killed) */
    size_t completed; /* since creation: finished with a result */
    size_t failed;    /* since creation: finished with an error, deadline or death */
    bool shutdown;    /* executor_shutdown was called */
    bool broken;      /* the executor is broken: every submit fails FUT_EBROKEN */
} executor_stats_t;

/** Modes of futures_wait. Python: FIRST_COMPLETED, FIRST_EXCEPTION, ALL_COMPLETED. */
typedef enum {
    FUTURES_FIRST_COMPLETED,
    FUTURES_FIRST_EXCEPTION,
    FUTURES_ALL_COMPLETED
} futures_wait_mode;

/* ================================================================== tasks */
/*
 * A task function runs on a worker and receives a task_t, borrowed for the
 * duration of the call. It answers with at most one task_return* or
 * task_raise; returning without either completes the future with an empty
 * result (data NULL, len 0). These functions may be called only from inside
 * the task function, on the task_t it was given.
 */

/**
 * The task's argument: the pointer given to submit and its length.
 * A thread pool hands over the caller's pointer itself (no copy; the caller
 * keeps it alive until the future is done, and with a time limit until the
 * task has returned: see thread_pool_executor_new); a process pool hands
 * over a copy.
 * Sets *len if len is not NULL. Returns NULL if task is NULL (errno EINVAL).
 */
CF_API const void *task_arg(const task_t *t, size_t *len);

/**
 * Completes the task with @data (@len bytes). Takes ownership: the future
 * calls free_fn(data) when its last reference goes (free_fn may be NULL for
 * static data). Python: return value.
 * Returns 0; FUT_ESTATE if the task already answered (data is freed);
 * FUT_EINVAL on a NULL task (data is freed).
 */
CF_API int task_return(task_t *t, void *data, size_t len, void (*free_fn)(void *));

/** Like task_return with a private copy of @len bytes at @data. FUT_ENOMEM. */
CF_API int task_return_copy(task_t *t, const void *data, size_t len);

/**
 * Completes the task with a printf-formatted string; the result is the
 * string including its NUL (future_result_str reads it). FUT_ENOMEM;
 * FUT_EINVAL for a NULL task or fmt, or a format vsnprintf cannot render
 * (EILSEQ: a %ls with no multibyte form; EOVERFLOW: over INT_MAX bytes);
 * then the task has not answered.
 */
CF_API int task_return_str(task_t *t, const char *fmt, ...) CF_PRINTF(2, 3);

/** Completes the task with an int64 (8 bytes, native order; future_result_i64). */
CF_API int task_return_i64(task_t *t, int64_t v);

/**
 * Completes the task with a double (8 bytes, native order; future_result_double).
 * Python: return 0.5. As task_return_copy: 0, FUT_ESTATE, FUT_EINVAL.
 */
CF_API int task_return_double(task_t *t, double v);

/**
 * Fails the task: the future fails with status FUT_ETASK, error code @code
 * and a printf-formatted message. Python: raise. Code 0 and an empty message
 * still fail the future; so does a format vsnprintf cannot render (the
 * message is then "(the error message could not be formatted)").
 * Returns 0; FUT_ESTATE if the task already answered;
 * FUT_EINVAL for a NULL task or fmt (then the task has not answered).
 * Called from an executor's initializer, it breaks the executor.
 */
CF_API int task_raise(task_t *t, int code, const char *fmt, ...) CF_PRINTF(3, 4);

/**
 * True once the task should stop early: its own deadline (submit_options_t
 * .timeout) passed, or future_cancel was called on its running future.
 * A thread cannot be killed, so long tasks should poll this. Never fails;
 * false for NULL.
 */
CF_API bool task_should_stop(const task_t *t);

/* ================================================================ futures */
/*
 * States: PENDING -> RUNNING -> FINISHED (result or error)
 *         PENDING -> CANCELLED
 * Every state change is final except PENDING -> RUNNING. Every function here
 * may be called from any thread; blocking ones say so.
 */

/**
 * Promise side: a bare pending future, for code that completes it itself.
 * Python: Future(). Returns a new reference; NULL + errno ENOMEM.
 */
CF_API future_t *future_new(void);

/** Takes one more reference; returns @f (NULL-safe). */
CF_API future_t *future_ref(future_t *f);

/**
 * Drops one reference; the last one frees the future, its error, and runs
 * the result's free_fn at once, in the caller. NULL-safe.
 */
CF_API void future_unref(future_t *f);

/**
 * Cancels a pending future: true, its waiters are told and its callbacks run
 * in the caller. Already cancelled: true. Running or finished: false (for a
 * running one task_should_stop() becomes true). Python: Future.cancel.
 * False for NULL.
 */
CF_API bool future_cancel(future_t *f);

/** True if cancelled. Python: Future.cancelled. False for NULL. */
CF_API bool future_cancelled(const future_t *f);

/** True if running (started, not finished). Python: Future.running. */
CF_API bool future_running(const future_t *f);

/** True if finished or cancelled. Python: Future.done. False for NULL. */
CF_API bool future_done(const future_t *f);

/**
 * Waits up to @timeout seconds for @f and hands back its result.
 * Python: Future.result.
 * Returns 0 and sets *data and *len (either pointer may be NULL);
 * FUT_ETIMEDOUT if not done in time; FUT_ECANCELLED; the failure's status
 * (FUT_ETASK, FUT_EWORKER, FUT_EDEADLINE, FUT_EBROKEN, ...) for a failed
 * future; FUT_EINVAL on NULL @f or a bad timeout.
 * Ownership: *data is borrowed from @f, valid until the last future_unref.
 * Threads: any; blocks the caller (it may spin a few microseconds first).
 * Restrictions: a task that waits here for a subtask it submitted to its
 * own thread pool holds its thread meanwhile; once every thread of the
 * pool (max_workers) waits so, they wait for ever, undetected, as in
 * Python (the docs' max_workers=1 example). Bound the wait, or submit the
 * subtask to another executor.
 */
CF_API int future_result(future_t *f, double timeout, const void **data, size_t *len);

/**
 * future_result for an int64 result (task_return_i64). Returns as
 * future_result; FUT_EINVAL also for a NULL @v and for a result that is not
 * 8 bytes (the task returned something else: a string, a struct), which
 * future_result would give as bytes. Blocks the caller.
 */
CF_API int future_result_i64(future_t *f, double timeout, int64_t *v);

/**
 * future_result for a double result (task_return_double); FUT_EINVAL also
 * for a NULL @v and for a result that is not 8 bytes, as future_result_i64.
 * Python: fut.result() of a float. Blocks the caller.
 */
CF_API int future_result_double(future_t *f, double timeout, double *v);

/**
 * future_result for a string result (task_return_str, or any NUL-terminated
 * result). Returns the string, borrowed until the last unref; NULL with errno
 * set to the positive code on failure (EINVAL if the result is not a string).
 */
CF_API const char *future_result_str(future_t *f, double timeout);

/**
 * Waits up to @timeout for @f, then hands back its error.
 * Python: Future.exception.
 * Returns 0 with *err == NULL for a successful future; 0 with *err set for a
 * failed one (borrowed until the last unref); FUT_ECANCELLED; FUT_ETIMEDOUT;
 * FUT_EINVAL. Blocks the caller.
 */
CF_API int future_exception(future_t *f, double timeout, const future_error_t **err);

/**
 * Adds a done-callback. Python: Future.add_done_callback.
 * If @f is not done, @cb runs once when it completes, in the thread that
 * completes it (a worker, or whoever calls future_cancel / future_set_*; a
 * process or MPI pool's manager thread; the library's timer thread for a
 * delayed or scheduled task refused when due, a future_within timeout: a
 * callback that blocks there holds up every timer).
 * If @f is done already, @cb runs at once in the caller before this returns.
 * Callbacks run in the order added, never under a library lock: a callback may
 * submit, unref @f (the library keeps its own reference while calling), add
 * callbacks, or shut its executor down without deadlock. One that waits for
 * a task it submitted to the pool it runs on holds a thread meanwhile, as a
 * task waiting for a subtask does: the task needs another free thread, and
 * once every thread (max_workers) waits so, they all wait for ever, as in
 * Python (bound the wait, or submit to another executor).
 * Returns 0; FUT_EINVAL; FUT_ENOMEM (then @cb will never run).
 */
CF_API int future_add_done_callback(future_t *f, future_callback_fn cb, void *ud);

/**
 * Promise side: marks a pending future running. Returns 1 if it was pending
 * (now running); 0 the first time on a cancelled one (waiters were told
 * already, no one is told twice); FUT_ESTATE if running or finished, or
 * cancelled and seen by an earlier call (Python: RuntimeError); FUT_EINVAL
 * (NULL, or a future that an executor completes, pending or running: a
 * task's, a continuation's on an executor, a schedule's; only promises of
 * future_new and the outcomes of inline continuations, futures_all and
 * futures_any are the caller's to set).
 * Python: Future.set_running_or_notify_cancel.
 */
CF_API int future_set_running_or_notify_cancel(future_t *f);

/**
 * Promise side: completes @f with a result. Takes ownership of @data on every
 * path: on success the future frees it with free_fn at its last unref; on
 * FUT_ESTATE (already finished or cancelled: the first result is kept;
 * also an executor's future once done) or FUT_EINVAL (NULL, or an
 * executor's future still pending or running, as for
 * future_set_running_or_notify_cancel), free_fn(data) runs before this
 * returns. Wakes the waiters, then
 * runs the callbacks in the caller. Python: Future.set_result.
 */
CF_API int future_set_result(future_t *f, void *data, size_t len,
                             void (*free_fn)(void *));

/**
 * Promise side: fails @f with status FUT_ETASK, error code @code and a
 * printf-formatted message (one vsnprintf cannot render is "(the error
 * message could not be formatted)", as for task_raise). Returns 0;
 * FUT_ESTATE if already finished or
 * cancelled (the first outcome is kept; also an executor's future once
 * done); FUT_EINVAL for a NULL future or fmt or an executor's future still
 * pending or running (as for future_set_running_or_notify_cancel; the
 * future is left as it was). Python: Future.set_exception.
 */
CF_API int future_set_exception(future_t *f, int code, const char *fmt, ...)
    CF_PRINTF(3, 4);

/**
 * Stores one word the caller owns in @f; the library never reads, frees or
 * changes it (it is NULL in a new future). Python: the idiom `f.arg = i`
 * (PyMOTW) or a `future_to_url[f]` dict (the concurrent.futures docs): a
 * done-callback, as_completed or futures_wait caller reads it back with
 * future_user_data. Java: none (a map); folly: none. NULL-safe; the store is
 * seen by any thread that later reads @f's outcome (release/acquire).
 * Threads: any; never blocks.
 */
CF_API void future_set_user_data(future_t *f, void *ud);

/** The word given to future_set_user_data, or NULL (also for a NULL @f). */
CF_API void *future_user_data(const future_t *f);

/**
 * True if @err says the executor (or the worker running the task) broke:
 * status FUT_EBROKEN or FUT_EWORKER. False for NULL.
 * Python: isinstance(e, BrokenExecutor).
 */
CF_API bool future_error_is_broken(const future_error_t *err);

/* ============================================================== executors */

/**
 * A thread pool. Python: ThreadPoolExecutor(max_workers, thread_name_prefix,
 * initializer, initargs). @o may be NULL for defaults. Threads start lazily,
 * one per submit when no idle thread can take the task, up to max_workers.
 * When idle, a thread spins about 30 us (yielding the CPU once every 5 us),
 * then sleeps in the kernel with no timer: an idle pool, and one whose
 * threads all run long tasks, makes no wake-ups. A submit wakes a sleeping
 * thread for a task that no spinning or already woken thread will take,
 * whatever the running ones do, so a short task behind long ones starts at
 * once. Only while tiny tasks stream through (a thread came back from one
 * within 50 us) does a submit count on a running thread to come back for the
 * next one; a sleeping thread then keeps a 1 ms timer so that such a task
 * never waits longer. A task's own submit (a subtask it may wait for) never
 * counts on that. On Linux a sleeping thread waits under SCHED_BATCH, so the
 * thread a submit wakes takes a free CPU (or waits for the scheduler's next
 * tick) instead of preempting the submitter, which keeps a stream of submits
 * from stalling on its own wake-ups; it runs tasks under SCHED_OTHER, so
 * processes that tasks start inherit the usual policy. If the initializer
 * sets another policy (pthread_setschedparam), the thread keeps that one,
 * asleep or not. A thread counts as idle again as its task's future
 * completes, but not while that future's done-callbacks run on it (Python
 * frees its idle slot after them): a callback may wait for a task submitted
 * from anywhere, which gets another thread while the pool has fewer than
 * max_workers or one is free (see future_add_done_callback).
 * submit_options_t.timeout: a thread cannot be killed. At the limit the
 * future fails FUT_EDEADLINE and task_should_stop() turns true, but the
 * task runs on until it returns, and so may still read its argument: keep
 * it alive until then (executor_shutdown with wait returns only after).
 * The pool's one deadline thread fails these futures and runs their
 * done-callbacks: a callback that blocks there delays the pool's other
 * time limits. Once every thread is started, a submit of the default
 * priority from a thread outside the pool takes no lock: it pushes the task
 * on a lock-free inbox, which a pool thread moves into the queue in
 * submission order, and it makes a system call only to wake a sleeping
 * thread when none is spinning or already woken.
 * Returns a new executor (free with executor_free); NULL with errno EINVAL
 * (negative max_workers or max_tasks_per_child, initarg_len without
 * initarg, an on_worker_death that is not one of fut_worker_death) or
 * ENOMEM.
 * Threads: any.
 */
CF_API executor_t *thread_pool_executor_new(const executor_options_t *o);

/**
 * A process pool. Python: ProcessPoolExecutor(max_workers, mp_context="fork"
 * through a fork server, initializer, initargs, max_tasks_per_child).
 * @o may be NULL for defaults (max_workers: the CPUs this process may use).
 *
 * Each task runs in a worker process. Workers are forked, never exec'd, by a
 * fork server that this call forks before the pool starts any thread; so a
 * task function pointer means the same function in the worker, and the
 * worker sees this process's memory as it was when the pool was created
 * (later changes in the parent are not seen: pass what a task needs in its
 * argument). Workers start on demand, up to max_workers.
 * Descriptors are not inherited (Python's forkserver and spawn contexts,
 * not its fork): a worker has stdin on /dev/null, this process's fds 1 and
 * 2 (/dev/null for one closed or close-on-exec here), its own two pipes to
 * the pool on the highest fds under RLIMIT_NOFILE or 1024 (1022 and 1023 by
 * default; 3 and 4 under a limit below 16), and no other descriptor. A
 * FILE or fd this process opened is in the worker's memory but its number
 * is closed there: using it fails EBADF. Open files in the task or the
 * initializer.
 *
 * Arguments and results are bytes: submit copies arg_len bytes at arg before
 * it returns (arg_len 0: no argument, task_arg gives NULL; with
 * submit_options_t.borrow_arg it reads an argument over 24 bytes later
 * instead, see executor_submit_with); the result's
 * bytes are copied back and owned by the future. An argument may be up to
 * 2 GiB (larger: EINVAL), a result up to 4 GiB (larger: the future fails
 * FUT_ETASK with code E2BIG). A task keeps its argument's copy until the
 * pool is done with it, so queued and running tasks hold their arguments'
 * bytes all at once: 2,000 submits of 64 KiB, 131 MB, the first burst
 * written to memory this process never used (page faults; dearer still on a
 * VM guest whose host took its free memory back). max_queue bounds the
 * queued ones; .borrow_arg makes no copy.
 *
 * Tasks are sent ahead to workers, yet a task not started yet can still be
 * cancelled (future_cancel, shutdown's cancel_futures, a map timeout) and
 * then never runs. future_cancel on a started task returns false and makes
 * task_should_stop() true in the worker, as in a thread.
 *
 * Start order, as in Python: a task goes into a queue in memory shared with
 * every worker (its argument, or a map chunk's items, up to 1 MiB, in a
 * 32 MiB shared heap beside it), and a free worker takes the oldest task
 * there that has not started, whichever worker it was meant for; so no
 * later task starts while an earlier one waits and a worker is free, and no
 * task waits behind a busy worker. A task over 1 MiB, or sent while the
 * heap is full, goes in a frame down one worker's pipe, and only to a
 * worker that runs nothing once every task before it has started (it and
 * the tasks behind it wait for one; with max_workers 1 it is sent ahead,
 * and that worker takes the queued tasks older than it first), so the
 * order holds for these too. "Starts" is a worker taking the task (its
 * future turns running): two workers reach their tasks' first lines
 * microseconds later, in either order if one is preempted in between.
 * max_tasks_per_child counts the tasks each
 * worker starts (a map chunk's items), wherever they were queued; the queued tasks a
 * worker leaves behind when it goes keep their place for the others and for its
 * replacement.
 *
 * Idle and busy: an idle worker blocks in read() and the manager thread in
 * poll() with no timeout, so an idle pool, and one whose workers all run
 * long tasks, makes no wake-ups. A worker that runs dry looks at the queue
 * for up to 50 us (yielding the CPU) before it sleeps, but only when its
 * last wait for work was that short (a burst, quick round trips); tasks
 * that come further apart find it asleep. A queued task wakes one sleeping
 * worker (a frame in its pipe); workers that are awake take queued tasks
 * with no system call. Only while a sent task is not known to have started
 * does the manager look at the claim words every 1 ms (so future_running()
 * and a task's own deadline follow its start); a worker announces the
 * start of a task that follows a long one at once. Woken by an event (a
 * submit, an answer), the manager polls (and reads the answer records) for
 * up to 50 us more before it sleeps, yielding the CPU between polls, so a
 * quick round trip (submit, answer, next submit) does not wait for its
 * wake-ups. A submit that wakes the
 * manager from that sleep makes the submitting thread's next wait
 * (future_result, future_exception) sleep at once instead of spinning:
 * a thread left runnable on its CPU would send the manager's wake-up of a
 * worker to another CPU, which on a VM whose idle vCPUs halt costs about
 * 50 us against 5 us on this one (bench W7).
 *
 * executor_map with chunksize > 1 sends each chunk as ONE task, as Python's
 * ProcessPoolExecutor.map does: one future and one frame each way, no
 * per-item allocation. A chunk starts as a unit in one worker, and if that
 * worker dies every item of the chunk fails FUT_EWORKER; executor_stats,
 * max_queue and buffersize count chunks; a map timeout cancels whole chunks.
 * Each item's result is aligned as malloc's.
 *
 * When a worker dies, with on_worker_death FUT_WORKER_RESPAWN (the default)
 * only the task it was running fails, with FUT_EWORKER, exit_status (the exit
 * code, or -1) and signal (or 0) set and the pid in the message; the tasks
 * sent to it and not started run on other workers, and a replacement is
 * forked. A worker that exits with code 0 in the middle of a task is a death
 * too. With FUT_WORKER_BREAK_POOL (Python's behaviour) the pool breaks: every
 * pending future fails FUT_EBROKEN and later submits fail with errno
 * -FUT_EBROKEN. A malformed frame from a worker kills that worker (its task
 * fails FUT_EWORKER, the message says what was wrong).
 *
 * submit_options_t.timeout: once a task has run that long, its future fails
 * FUT_EDEADLINE, the worker gets SIGTERM and, 0.2 s later, SIGKILL; a
 * replacement is forked; other tasks are untouched. A worker that returned
 * from the task just as its time ran out is not killed and runs on; the
 * task's outcome is then its answer's: its result if it returned within
 * the limit (timed in the worker), FUT_EDEADLINE if not.
 *
 * An initializer runs first in every worker; one that calls task_raise
 * breaks the pool (FUT_EBROKEN). max_tasks_per_child replaces a worker after
 * it ran that many tasks (an executor_map chunk counts as its items, where
 * Python's counts each chunk as one).
 *
 * executor_free leaves no process, zombie, thread or fd behind. If this
 * process dies, the fork server and the workers exit too.
 *
 * stdout and stderr: a worker flushes both whenever it runs out of tasks
 * and when it exits (Python's worker flushes sys.stdout at exit); a worker
 * that is killed loses what it had not written. The fork server drops this
 * process's unwritten stdout and stderr buffers, so nothing printed before
 * the fork comes out twice; other FILEs are the caller's to flush.
 *
 * Returns a new executor; NULL with errno EINVAL (negative counts,
 * initarg_len without initarg, max_workers above 4096, a bad
 * on_worker_death), ENOMEM, or -FUT_ESYS (a pipe, the shared memory, the
 * fork server or the manager thread could not be made).
 * Restrictions: Linux. A task runs in another process: it cannot use this
 * executor (or any object of the parent but its argument), nor threads of
 * the parent; a task that closes or replaces the worker's two pipes (the
 * highest fds, above) breaks its own worker. A task that forks should
 * wait for its children itself; a child that returns from the task
 * function (or the initializer) exits there, status 0, its stdout and
 * stderr written, and answers nothing (its task_return is dropped).
 * Threads: any. The pool's done-callbacks run on its manager thread: one
 * may submit, cancel or shut the pool down, but must not wait for another
 * future of the same pool (the manager completes it), nor for a thread that
 * is in executor_shutdown(cancel_futures=true) on it (that call waits for the
 * manager to cancel the tasks it holds).
 */
CF_API executor_t *process_pool_executor_new(const executor_options_t *o);

/* ------------------------------------------------- MPI pool (--with-mpi) */

/**
 * Starts this process's part in an MPI pool; call it first in main, before
 * anything else (no thread, no fork server, no MPI call before it):
 *   int rc = mpi_pool_serve(&argc, &argv);
 *   if (rc != 0) return rc == 1 ? 0 : 1;   (a worker rank is done, or failed)
 * mpi4py: the `if __name__ == "__main__"` guard with MPIPoolExecutor, and
 * `mpiexec -n N python -m mpi4py.futures` (world mode).
 * In a worker rank (a copy spawned by mpi_pool_executor_new, or a rank
 * other than 0 of `mpiexec -n N ./prog`) it makes the rank's local process
 * pool (tasks run in forked children there, so a crashing task costs one
 * task), initializes MPI, checks that this executable's GNU build-id is the
 * master's, serves tasks until the master stops it, finalizes MPI and
 * returns 1. In the master it returns 0: under `mpiexec -n N` (rank 0) it
 * initializes MPI (MPI_THREAD_MULTIPLE) unless the caller did and checks
 * every other rank's build-id now (a mismatch fails here, not at the first
 * task); in a program started alone, MPI is initialized by the first
 * mpi_pool_executor_new instead (see there), so a program that ends
 * before, on a usage error say, never starts MPI (Open MPI 4.1's singleton
 * can crash at exit when MPI_Finalize follows MPI_Init closely), and one
 * that calls MPI itself calls MPI_Init_thread first, as below. MPI is
 * finalized at exit if it was started (not after a rank was lost: Open MPI
 * 4.1 can hang there). A program that calls MPI_Init_thread
 * (MPI_THREAD_MULTIPLE) itself, before it on every rank, finalizes MPI
 * itself too: no rank initializes or finalizes it
 * again, world ranks are stopped at the master's MPI_Finalize (every
 * executor freed before it), and a worker's fork server is then forked
 * after MPI_Init.
 * Returns 1 (worker, done), 0 (master), or FUT_EINVAL (NULL or empty
 * arguments; an executable without a build-id), FUT_ESYS (MPI_Init failed
 * or lacks MPI_THREAD_MULTIPLE), FUT_EBROKEN (a rank runs a different
 * build, or loads a shared libcfutures the master did not), FUT_ETIMEDOUT
 * (under mpiexec, some rank did not join or answer in
 * CFUTURES_MPI_START_LIMIT seconds, default 60: a rank that runs another
 * MPI program, or never calls mpi_pool_serve; then MPI is not finalized at
 * exit, and mpiexec ends the job); the reason is printed on stderr.
 * Calling it again does nothing and returns what the first call returned
 * (0 in the master, 1 in a worker; a failed call's code, said again on
 * stderr): a failed start-up is never tried again (MPI cannot be).
 * Exists only in a library configured --with-mpi (Open MPI).
 * Threads: the main thread, once, first.
 */
CF_API int mpi_pool_serve(int *argc, char ***argv);

/**
 * An executor whose tasks run on MPI worker ranks (see mpi_pool_serve).
 * mpi4py: mpi4py.futures.MPIPoolExecutor.
 * Under `mpiexec -n N ./prog` its workers are the world's ranks 1..N-1
 * (max_workers, if set, uses the first ones); several executors share
 * them. Started alone, it spawns max_workers copies of this executable
 * (default CFUTURES_MPI_MAX_WORKERS, else the cpus), one MPI_Comm_spawn
 * each, with the program's arguments; each must pass the build-id check.
 * A task_fn travels as (module build-id, offset), so any function of the
 * executable or of a shared library loaded on both sides works; a function
 * in no module with a build-id fails the submit with FUT_EINVAL (and a
 * future_then continuation on an MPI pool, whose function travels so too,
 * fails FUT_EINVAL then).
 * Arguments and results are copied bytes, as in a process pool, an
 * argument of at most 2 GiB - 49 bytes (larger: EINVAL), a result of at
 * most 1 GiB - 1 byte (1 GiB or more: the future fails FUT_ETASK with code
 * E2BIG; an MPI message's count is an int); each rank runs its tasks in a
 * local process pool (CFUTURES_MPI_PROCS processes, 1 to 4096, default 1;
 * any other value is ignored). A rank is sent tasks
 * ahead: 4 beyond its processes, more while its tasks are quick (as many
 * as it runs in 5 ms, up to 64 in all). CFUTURES_MPI_AHEAD=N (0 to 64;
 * any other value is ignored) sends N ahead instead, and 0 sends a rank
 * only as many as its processes (mpi4py's way: a task waits at the master,
 * pending and cancellable, and max_queue and executor_stats' queued count
 * it, until a process is free).
 * Once nothing is left to send and a rank runs dry, a rank holding tasks
 * it has not started gives some back, and they run on the dry one; a
 * started task stays where it is. A sent task is RUNNING, as in mpi4py:
 * future_cancel returns false, and the task is asked to stop
 * (task_should_stop) once it starts on its rank. A task that crashes or
 * exits fails FUT_EWORKER with its signal or exit code; its rank goes on.
 * submit_options_t.timeout: FUT_EDEADLINE, the task's process is killed.
 * A rank that does not answer the heartbeat for CFUTURES_MPI_HEARTBEAT
 * seconds (0.1 to 86400, default 10; pinged after 0.5 s of silence, or a
 * quarter of the limit if that is shorter; under a second, a busy machine
 * can take a live rank for lost) is lost: its tasks fail FUT_EWORKER, the others
 * go on; with none left the pool is broken (FUT_EBROKEN). A world rank
 * lost once is left out of every executor made after (if no world rank is
 * left, lost or broken as below: NULL, errno -FUT_EBROKEN). A rank with
 * no memory to receive a message (a task's argument) stops serving and is
 * lost so, with its tasks. A rank whose own process pool broke (its fork
 * server killed, no process can be forked there) runs nothing more: a task
 * it held that had started there fails FUT_EBROKEN (it may have done part
 * of its work); every other task sent to it, held unstarted or sent after,
 * comes back unrun and runs on another rank; it gets no more and leaves
 * executor_stats' workers (with no other rank, those tasks fail
 * FUT_EBROKEN and the pool is broken). It says so on stderr; a world
 * rank also tells the master at once, and is then left out of every
 * executor made after, as a lost one is (an executor made before learns it
 * from the first task the rank refuses). Its pool is not made again (its
 * fork server would be forked after MPI_Init); it is not lost: it still
 * takes STOP, and MPI is finalized as usual. Only a rank
 * pinged and silent is judged: a manager thread held up longer than the
 * limit (a long done-callback runs there) pings first. executor_free never
 * waits for a lost rank: one on this host is SIGKILLed.
 * Spawn mode, bounded waits (Open MPI 4.1 with PMIx 4 now and then never
 * finishes a spawn, openpmix#2735): a copy whose MPI_Comm_spawn has not
 * returned in CFUTURES_MPI_SPAWN_LIMIT seconds (default 30), or that has
 * not answered the handshake 60 s later, is SIGKILLed and spawned again,
 * 3 tries at most; a spawned copy not through MPI_Init and the handshake
 * in 150 s exits by itself. executor_free sends
 * each live rank STOP and waits up to 20 s for its goodbye, then for the
 * ranks of this host to exit; whatever is left is SIGKILLed (with its task
 * processes) and executor_free returns: it never hangs. After a loss or a
 * failed spawn nothing more is disconnected and MPI is not finalized at
 * exit (Open MPI 4.1 can hang there).
 * Idle and busy (MPI has no descriptor to sleep on, so both sides poll):
 * the master's manager thread spins (probes, yields) for 100 us after each
 * message while tasks are out, then naps 1 us doubling to 1 ms; with no
 * task out it sleeps until a submit signals it (or the heartbeat, every
 * 0.25 s). In a worker rank the local process pool's manager thread serves
 * MPI as well (one thread for both, no hand-off between them): it spins for
 * 200 us after the last message or answer, then naps 1 us doubling to 1
 * ms, and a task's answer also wakes it; its task processes spin and park
 * as a process pool's workers do.
 * executor_stats: workers are the usable ranks, idle those holding no task
 * of this executor, both exact when a future completes (as on a process
 * pool: a done-callback of a rank's last task sees the rank idle).
 * Not supported (FUT_EINVAL): initializer, max_tasks_per_child,
 * on_worker_death = FUT_WORKER_BREAK_POOL.
 * Returns a new executor; NULL with errno EINVAL (mpi_pool_serve was not
 * called or failed, unsupported options, negative counts), ENOMEM,
 * -FUT_ESYS (a spawn failed; in a program started alone, the first call's
 * MPI_Init_thread failed or lacks MPI_THREAD_MULTIPLE, and every later call
 * fails so too), -FUT_EBROKEN (a spawned copy is another
 * build; every world rank was lost, or its process pool broke), ETIMEDOUT
 * (3 spawns in a row did not return or answer).
 * Root in a container, one host: see README.md, "MPI pool".
 * Exists only in a library configured --with-mpi (Open MPI).
 * Threads: any; blocks while spawning. In a program started alone the first
 * call initializes MPI: make it on the main thread (MPI_Finalize runs at
 * exit, and MPI wants the thread that initialized it) while no other thread
 * reads or changes the environment (Open MPI's start sets variables in it).
 */
CF_API executor_t *mpi_pool_executor_new(const executor_options_t *o);

/**
 * Submits fn(arg) and returns its future. Python: Executor.submit.
 * @arg/@arg_len: see task_arg (thread pools pass the pointer, process pools
 * copy the bytes). Returns a new reference (unref it when done with it);
 * NULL with errno: EINVAL (NULL @ex or @fn, NULL @arg with a non-zero
 * @arg_len, on every kind of executor; an @arg_len over what the kind
 * copies: a process pool's 2 GiB, an MPI pool's 2 GiB - 49 bytes; each
 * checked before the executor's state or a full max_queue), ESHUTDOWN (after
 * executor_shutdown), -FUT_EBROKEN (broken executor), ENOMEM, -FUT_ESYS (a
 * thread could not be started and none is running).
 * Blocks only when max_queue is set and the queue is full, and never on
 * the thread that makes room: a process or MPI pool's done-callbacks run on
 * its manager, and a blocking submit from one of them to its own pool is
 * let in over max_queue, however many it makes (a .nonblocking one still
 * fails FUT_EFULL): bound a callback's fan-out yourself.
 * Threads: any, including tasks and callbacks of this executor.
 * Restrictions: a blocking submit from one of a thread pool's own workers
 * (a task, or a done-callback run there) can wait for ever if every worker
 * does the same on a full queue; use .nonblocking there.
 */
CF_API future_t *executor_submit(executor_t *ex, task_fn fn, const void *arg,
                                 size_t arg_len);

/**
 * executor_submit with options: .timeout is the task's own running-time limit
 * (FUT_EDEADLINE once passed; task_should_stop() is true from then on);
 * .nonblocking makes a full bounded queue fail with errno EAGAIN (FUT_EFULL)
 * rather than block. @so may be NULL. EINVAL for a negative, NaN or infinite
 * timeout or delay, and for any argument executor_submit refuses (a delayed
 * task's too: at this call, not when it is due).
 * .delay (beyond Python; Java ScheduledExecutorService.schedule, tokio
 * sleep-then-spawn, GLib g_timeout_add): the task is submitted by the
 * process's one timer thread (future_within's) that many seconds later,
 * never earlier. Until then its future is pending and future_cancel
 * cancels it; it does not count in max_queue or executor_stats. The
 * argument is borrowed until the future is done on every kind (a process
 * pool copies it when the delay ends). When it is due, the submit never
 * blocks: a full bounded queue fails the future FUT_EFULL, a shut-down or
 * broken executor FUT_ESHUTDOWN / FUT_EBROKEN. executor_shutdown cancels
 * every delayed task not yet due (Java's shutdownNow drops them too).
 * .priority (beyond Python; Java: a PriorityBlockingQueue as a
 * ThreadPoolExecutor's queue, GLib g_thread_pool_set_sort_function, folly
 * CPUThreadPoolExecutor's priorities): among the tasks waiting to start, a
 * higher priority starts first and equal ones start in submit order; 0 is
 * the default, any int is valid (negative: after the default). A running
 * task is never preempted. A thread pool keeps its queue in that order (an
 * append while all queued tasks share a priority, so FIFO work costs
 * nothing more). A process pool also sends tasks ahead to its workers: a
 * task of higher priority takes back the lower ones sent ahead and not
 * started, so a worker never starts one of them while it waits (from the
 * moment the pool's manager thread has it, microseconds after the submit).
 * An MPI pool orders the tasks it has not sent; one already sent to a rank
 * keeps its place. A delayed task takes its priority when it is due;
 * future_then's .submit.priority orders the continuation; map items and
 * schedule runs have priority 0.
 * .borrow_arg (beyond what executor_submit promises; Python's submit keeps
 * a reference to its arguments and pickles them only as it feeds a worker;
 * libuv's uv_write borrows its buffers until the callback): the caller keeps
 * @arg's @arg_len bytes alive and unchanged until the future is done (a
 * result, a failure or a cancel). A process pool then copies nothing at
 * submit: it reads the bytes when its manager thread hands the task to a
 * worker (again if the task comes back unstarted and is handed out anew),
 * straight into the memory it shares with the workers (or the worker's
 * pipe). So a burst of big arguments costs no second copy, and no memory
 * the process has never written (bench/RESULTS.md, W3b). A future_cancel
 * that returns true while the manager is reading them waits for that read
 * to end (a copy: microseconds, longer for an argument of many megabytes,
 * during which the future's lock is held), so the bytes may be freed as
 * soon as future_done() is true.
 * Arguments of up to 24 bytes are copied all the same; a delayed task's
 * argument, borrowed until it is due anyway, is then not copied either. A
 * thread pool ignores it (it never copies: see task_arg for how long it
 * borrows), an MPI pool copies anyway, and future_then's .submit ignores
 * it. task_group_submit honours it.
 */
CF_API future_t *executor_submit_with(executor_t *ex, task_fn fn, const void *arg,
                                      size_t arg_len, const submit_options_t *so);

/**
 * Runs fn over @n arguments (args[i], arg_lens[i]; @arg_lens may be NULL for
 * all-zero lengths) and returns an iterator over the results in input order.
 * Python: Executor.map(fn, iterable, timeout, chunksize, buffersize).
 * Without buffersize every item is submitted now; with it, at most buffersize
 * tasks are in flight and one more is submitted once a task's results are
 * consumed. chunksize > 1 matters on executors that batch (the process
 * pool): there each chunk of items is one task, and buffersize counts
 * chunks (Python 3.14 counts its batches the same way); a thread pool runs
 * items one by one.
 * @args is borrowed until executor_map_free (items are submitted lazily).
 * Returns a new iterator; NULL with errno EINVAL (NULL ex/fn, NULL args with
 * n > 0, an item with a length and a NULL argument), ESHUTDOWN, -FUT_EBROKEN,
 * ENOMEM, -FUT_ESYS (no worker could start): the first task (or chunk) is
 * submitted alone and decides, so a call that fails ran nothing. A later
 * submit that fails (a chunk out of memory) fails its items with its code.
 * The iterator keeps the executor's
 * memory alive: executor_free while a map lives is safe (items not yet
 * submitted then fail FUT_ESHUTDOWN).
 */
CF_API executor_map_t *executor_map(executor_t *ex, task_fn fn, const void *const *args,
                                    const size_t *arg_lens, size_t n,
                                    const map_options_t *mo);

/**
 * The next result, in input order. Returns 0 and sets *data and *len (borrowed:
 * valid until the next executor_map_next or executor_map_free);
 * the item's failure status (FUT_ETASK, ...) and the map goes on with the next
 * item on the next call; FUT_ETIMEDOUT when the map's deadline passed (every
 * item not yet started has been cancelled before it returns; later calls
 * return FUT_EOF); FUT_EOF at the end; FUT_EINVAL for a NULL @m. Blocks the
 * caller. On an item's failure *data is NULL and *len 0, also when the
 * executor refused the item (executor_submit's code, such as FUT_EINVAL for
 * an argument too big for a process pool: over 2 GiB); FUT_ETIMEDOUT, FUT_EOF
 * and FUT_EINVAL for a NULL @m leave them unset: test the code before
 * reading them, and @m for NULL once, after executor_map.
 */
CF_API int executor_map_next(executor_map_t *m, const void **data, size_t *len);

/**
 * Frees the iterator; items not yet started are cancelled and never run.
 * Does not wait for running items. NULL-safe.
 */
CF_API void executor_map_free(executor_map_t *m);

/**
 * Stops taking new tasks. Python: Executor.shutdown(wait, cancel_futures).
 * @cancel_futures cancels every queued (not started) task. @wait blocks until
 * every started and queued task has finished and the workers have exited.
 * May be called more than once and from any thread. Called from one of the
 * executor's own workers (a task or a callback), it cannot wait for itself:
 * it returns without waiting. Delayed tasks not yet due
 * (submit_options_t.delay) and schedules (executor_schedule) are cancelled
 * in every case. Returns 0; FUT_EINVAL.
 */
CF_API int executor_shutdown(executor_t *ex, bool wait, bool cancel_futures);

/**
 * executor_shutdown(ex, wait=true, cancel_futures=false), then frees the
 * executor. Futures the caller holds stay valid (they are done by then); a
 * live executor_map_t keeps what it needs. NULL-safe.
 * Restrictions: do not call it from a task or callback running on @ex (it
 * would wait for itself); it then only shuts the executor down and the
 * executor's memory is freed by its last worker. As with free(), no other
 * call on @ex may run at the same time (an executor_shutdown waiting in
 * another thread) or come after it.
 */
CF_API void executor_free(executor_t *ex);

/** Fills *out with a snapshot of the executor's counters. 0; FUT_EINVAL. */
CF_API int executor_stats(executor_t *ex, executor_stats_t *out);

/* =========================================================== many futures */

/**
 * An iterator that yields each of @fs as it completes (finished or
 * cancelled). Python: as_completed(fs, timeout). Futures done already are
 * yielded first. Duplicates in @fs are yielded once. @timeout is one
 * deadline from this call (FUT_FOREVER: none). @fs is copied; the iterator
 * holds a reference to each future until it yields it.
 * Returns a new iterator; NULL with errno EINVAL (NULL fs with n > 0, a NULL
 * entry, bad timeout, n above 2^32 - 2) or ENOMEM. O(n) in total: a future
 * notifies the iterator when it completes; nothing polls. Memory: one
 * 56-byte node per distinct future, nothing else proportional to n.
 */
CF_API as_completed_t *as_completed_new(future_t *const *fs, size_t n, double timeout);

/**
 * The next completed future. Returns 0 and sets *out to a new reference (the
 * caller unrefs it); FUT_EOF when every future was yielded; FUT_ETIMEDOUT if
 * the deadline passed first (later calls return FUT_EOF); FUT_EINVAL.
 * Blocks the caller.
 */
CF_API int as_completed_next(as_completed_t *it, future_t **out);

/**
 * as_completed_next that also says where the future stood in the array given
 * to as_completed_new: *@index is its position there (the first one, for a
 * future given twice); @index may be NULL. *@out is the very pointer that
 * was passed in (a new reference to it), so future_user_data and pointer
 * comparison work on it. Python: the `future_to_url[future]` lookup of the
 * docs' example, without the dict. Returns as as_completed_next.
 */
CF_API int as_completed_next_at(as_completed_t *it, future_t **out, size_t *index);

/** Frees the iterator and drops its references to futures not yielded. NULL-safe. */
CF_API void as_completed_free(as_completed_t *it);

/**
 * Waits until @mode is met or @timeout passes. Python: wait(fs, timeout,
 * return_when). Returns 0 when the condition was met; FUT_ETIMEDOUT when the
 * timeout passed first; FUT_EINVAL; FUT_ENOMEM. On 0 and FUT_ETIMEDOUT it
 * fills @done / @not_done (each may be NULL; each must hold @n entries) with
 * the futures as they stood on return, duplicates once, in input order,
 * and sets *@n_done / *@n_not_done to their counts;
 * the entries are borrowed (no reference is taken). FIRST_EXCEPTION counts a
 * failure, not a cancellation, and returns when everything is done if
 * nothing failed. n == 0 returns 0 at once in every mode. FUT_EINVAL also
 * for a NULL entry, n above 2^32 - 2, or an array given without its count
 * (@done without @n_done, @not_done without @n_not_done).
 */
CF_API int futures_wait(future_t *const *fs, size_t n, double timeout,
                        futures_wait_mode mode, future_t **done, size_t *n_done,
                        future_t **not_done, size_t *n_not_done);

/* ================================================ composing (beyond Python) */
/*
 * Continuations, combinators, timeouts on futures and a pollable queue:
 * what Java's CompletableFuture, folly's futures and asyncio give, behind the
 * same future_t. They work on every executor kind and on promises
 * (future_new). No call starts a thread per future or polls; callbacks and
 * continuations never run under a library lock. PORTING.md "Beyond Python"
 * maps the Java, folly and asyncio names to these.
 */

/**
 * When @prev is done, runs @fn with prev's outcome and completes the
 * returned future with fn's. Java: thenApply / exceptionally / handle
 * (thenApplyAsync with an executor); folly: thenValue / thenError / thenTry
 * (via(executor)); Python: none (bpo-32672, declined).
 * Inside @fn, task_arg gives prev's result bytes (NULL, 0 when prev failed):
 * inline, prev's own (as future_result gives them); on a thread pool a copy,
 * aligned for int64 and double, that lives as long as the call; a process
 * pool copies them to the worker as any argument. task_prev_error gives
 * prev's error.
 * @o->when chooses (@o may be NULL: on a result):
 *  - FUT_THEN_ON_RESULT: a failed prev fails the new future with a copy of
 *    prev's error (status, code, message, exit_status, signal: FUT_EWORKER
 *    flows down a chain); a cancelled prev cancels it; fn does not run;
 *  - FUT_THEN_ON_FAILURE: fn runs when prev failed or was cancelled
 *    (task_prev_error status FUT_ECANCELLED); a successful prev passes its
 *    result on (copied);
 *  - FUT_THEN_ALWAYS: fn runs whatever the outcome.
 * @ex NULL runs fn inline: in the thread that completes prev (a worker, the
 * manager thread of a process pool, or whoever calls future_set_*), or at
 * once in this caller when prev is done already. With @ex, fn is submitted
 * to @ex once prev is done, with @o->submit (timeout, nonblocking, queue,
 * priority; delay must be 0: EINVAL otherwise);
 * a submit refused then (shutdown, broken) fails the new future with that
 * status. @o->submit.timeout applies inline too (task_should_stop and
 * FUT_EDEADLINE); @o->submit.queue joins the new future to that queue now.
 * The returned future is fn's task itself: future_cancel on it before fn
 * started (prev pending, or the task queued) cancels it and fn never runs;
 * once fn started it returns false and task_should_stop() turns true in fn;
 * future_running is true while fn runs in this process (inline or a thread
 * pool; a process pool marks it as its own tasks).
 * Chains may be of any length: a continuation that becomes ready while this
 * thread is running continuations runs after the current one returns, in
 * the same thread, so a 1,000,000-step chain uses constant stack, and each
 * step frees its memory once done (the chain holds prev until fn ran).
 * Returns a new reference; NULL with errno EINVAL (NULL prev or fn, a bad
 * when or timeout, a delay), ESHUTDOWN or -FUT_EBROKEN (@ex refuses work now),
 * ENOMEM. Never blocks (but an executor step with a full max_queue blocks
 * the thread that completes prev unless .submit.nonblocking, or unless
 * that thread is the manager of the step's own process or MPI pool: the
 * step is then let in over max_queue, as executor_submit says).
 * Restrictions: if @prev is never completed, fn never runs and the memory
 * of the continuation (and a reference to @ex) is held until then. An
 * inline fn should not block waiting for another continuation of the same
 * thread's chain. A process pool's fn runs in a worker: @fn must be a
 * function of this program, as for any task.
 * Threads: any.
 */
CF_API future_t *future_then(future_t *prev, executor_t *ex, task_fn fn,
                             const then_options_t *o);

/**
 * Inside a future_then function: prev's error, or NULL if prev succeeded
 * (and outside continuations, or for a NULL @t). A cancelled prev gives
 * status FUT_ECANCELLED. Java: the Throwable of handle/exceptionally;
 * folly: the exception_wrapper of thenError. Borrowed for the call.
 */
CF_API const future_error_t *task_prev_error(const task_t *t);

/**
 * A future done once all of @fs are. Java: CompletableFuture.allOf; folly:
 * collectAll; asyncio: gather. Its result is empty (read each input for
 * its result). It fails with a copy of the first failure's error as soon as
 * one fails (is cancelled if the first failure is a cancel; fails with
 * status FUT_ECANCELLED if the caller had set it running), or, with
 * @o->settle, waits for every future and succeeds. @o->cancel_rest cancels
 * every input once the outcome is known (a running one is asked to stop).
 * n == 0 gives a future done at once. Duplicates count once each time given.
 * @fs itself is not kept; references to the inputs are kept only with
 * cancel_rest (until every input is done).
 * O(n): one done-callback per input; no thread, no polling.
 * Returns a new reference; NULL with errno EINVAL (NULL @fs with n > 0, a
 * NULL entry) or ENOMEM (then no input was touched: every callback's memory
 * is taken before the first is added). Threads: any; never blocks.
 * Restrictions: an input that is never completed (a promise dropped unset)
 * holds the combination's memory (about 64 bytes, and a callback node and a
 * pointer an input) for good, even once the outcome is known, as for
 * future_then: its callback never runs.
 */
CF_API future_t *futures_all(future_t *const *fs, size_t n, const combine_options_t *o);

/**
 * A future done with the index (int64, future_result_i64) in @fs of the
 * first future to succeed; a future given twice gives its first index.
 * Java: anyOf (of successes); folly: collectAnyWithoutException; asyncio:
 * wait(FIRST_COMPLETED) without the failures. When every input failed, it
 * fails with a copy of the last failure's error (cancelled if that last one
 * was a cancel). @o->cancel_rest cancels the others once one succeeded.
 * Returns a new reference; NULL with errno EINVAL (n == 0, NULL @fs, a NULL
 * entry) or ENOMEM. As futures_all otherwise.
 */
CF_API future_t *futures_any(future_t *const *fs, size_t n, const combine_options_t *o);

/**
 * A future that takes @f's outcome (its result copied), or fails with
 * status FUT_ETIMEDOUT (code ETIMEDOUT) when @timeout seconds pass first.
 * Java: orTimeout; folly: within; asyncio: wait_for. @cancel_source cancels
 * @f on timeout (a running task is asked to stop). FUT_FOREVER: no timeout;
 * 0: times out at once unless @f is done. Timeouts run on one timer thread
 * for the whole process, started on first use and shared by every call; it
 * sleeps until the earliest deadline and never polls. A timeout completes
 * the new future on that thread, so its done-callbacks (and an inline
 * future_then step after it, and @f's if @cancel_source cancels it) run
 * there: one that blocks holds up every timer of the process, and one that
 * waits for a timer-made outcome (another future_within, a delayed task)
 * waits for ever; hand such work to an executor (Java's orTimeout: the
 * same, its "delayer" thread). A forked child starts with no timer armed.
 * While the timeout is pending a reference to @f is held; once @f is done
 * or the timeout passed, the call holds nothing of @f (an @f never
 * completed, such as a promise dropped unset, costs nothing after the
 * timeout). With FUT_FOREVER no reference is held, but 72 bytes stay
 * until @f completes (for ever if it never does, as for future_then).
 * Returns a new reference; NULL with errno EINVAL (NULL @f, bad timeout),
 * ENOMEM or -FUT_ESYS (the timer thread could not start).
 * Threads: any; never blocks.
 */
CF_API future_t *future_within(future_t *f, double timeout, bool cancel_source);

/**
 * A completion queue: futures are added at any time (completion_queue_add,
 * from callbacks too, or submit_options_t.queue at submit) and handed back
 * by completion_queue_next as they complete. Its file descriptor
 * (completion_queue_fd) is readable while a completed future waits in it,
 * so poll/epoll/libuv/GLib loops wait for futures without a thread.
 * Java: ExecutorCompletionService; asyncio: add_reader on the fd; Python:
 * as_completed over a set that grows. Returns a new queue (free with
 * completion_queue_free); NULL with errno ENOMEM or -FUT_ESYS (no eventfd).
 */
CF_API completion_queue_t *completion_queue_new(void);

/**
 * Adds @f (pending or done) to @q; takes its own reference. A future added
 * twice comes back twice. Returns 0; FUT_EINVAL; FUT_ENOMEM (not added).
 * Threads: any, also done-callbacks; never blocks.
 */
CF_API int completion_queue_add(completion_queue_t *q, future_t *f);

/**
 * Waits up to @timeout for a completed future of @q and hands it back in
 * *@out, a new reference (the queue's: unref it), oldest completion first.
 * Returns 0; FUT_ETIMEDOUT; FUT_EOF when the queue holds no future, done or
 * pending; FUT_EINVAL. Blocks the caller (timeout 0: never).
 */
CF_API int completion_queue_next(completion_queue_t *q, double timeout, future_t **out);

/**
 * An eventfd, readable exactly while at least one completed future waits in
 * @q (completion_queue_next clears it when it takes the last one). Poll it
 * for POLLIN; do not read or close it. FUT_EINVAL for NULL. Borrowed until
 * completion_queue_free.
 */
CF_API int completion_queue_fd(const completion_queue_t *q);

/**
 * Frees the queue and closes its descriptor at once; drops its references
 * to futures not yet handed back. A future still pending leaves the queue
 * when it completes: until then it keeps the queue's memory (a few dozen
 * bytes, never the descriptor). Does not cancel anything. NULL-safe.
 * Restrictions: no other thread may be in completion_queue_next on @q.
 */
CF_API void completion_queue_free(completion_queue_t *q);

/**
 * executor_map_next that also says which item the result belongs to:
 * *@index is its position in the arguments (@index may be NULL). With
 * map_options_t.unordered, results come as their tasks complete (a chunk's
 * items in order, each chunk when it is done); without it, in input order.
 * Python: none (the index of imap_unordered's enumerate idiom). Returns as
 * executor_map_next; on FUT_ETIMEDOUT, FUT_EOF and for a NULL @m *@index is
 * not set.
 */
CF_API int executor_map_next_at(executor_map_t *m, size_t *index, const void **data,
                                size_t *len);

/**
 * The error of the last item that executor_map_next(_at) reported failed,
 * or NULL if none did: status, code and message (Python: the exception the
 * map raised). Borrowed until the next failure is reported or
 * executor_map_free. An item that never ran gives FUT_ECANCELLED; an item
 * of a process-pool chunk (chunksize > 1) that raised gives FUT_ETASK with
 * code 0 and a fixed message (a chunk carries no item's own error); a whole
 * failed chunk (a dead worker) gives the chunk's error. NULL for NULL.
 */
CF_API const future_error_t *executor_map_error(const executor_map_t *m);

/**
 * executor_map over a C array: item i is the @elem_size bytes at
 * base + i * elem_size (a thread pool passes that pointer, a process pool a
 * copy). No pointer or length arrays to build. Python: map(fn, array).
 * @base is borrowed until executor_map_free, and on a thread pool until
 * the items already running then have returned: executor_map_free cancels
 * the rest but does not wait for those, which read their bytes in place
 * (read the map to its end, or executor_shutdown(ex, true), before freeing
 * @base). Returns as executor_map; also
 * EINVAL for elem_size 0 or NULL @base with n > 0.
 */
CF_API executor_map_t *executor_map_array(executor_t *ex, task_fn fn, const void *base,
                                          size_t elem_size, size_t n,
                                          const map_options_t *mo);

/* ================================================ controlling work (beyond Python) */
/*
 * Delayed and periodic work on any executor (submit_options_t.delay,
 * executor_schedule). PORTING.md "Beyond Python" maps Java's
 * ScheduledExecutorService and tokio's names to these. Time runs on the one
 * timer thread of future_within: no thread per schedule, and nothing wakes
 * while no timer is due.
 */

/** Options for executor_schedule; zero means default. */
typedef struct schedule_options {
    double delay;       /* seconds before the first run; 0: at once */
    double period;      /* seconds between runs; 0: one run */
    bool fixed_delay;   /* period counted from the end of a run, not its start */
    size_t max_runs;    /* 0: until cancelled (or stopped by an error) */
    bool stop_on_error; /* a failed run ends the schedule with its error */
} schedule_options_t;

/**
 * Runs fn(arg) on @ex after @o->delay, then every @o->period seconds.
 * Java: ScheduledExecutorService.schedule / scheduleAtFixedRate /
 * scheduleWithFixedDelay; tokio: time::interval in a spawned loop; GLib:
 * g_timeout_add. Each run is an ordinary task of @ex (task_arg, deadlines
 * and stats as for executor_submit; a process pool copies @arg at each
 * run). Runs never overlap: the next run is armed only once the previous
 * one is done. At fixed rate the runs are due at delay + k * period from
 * this call (no drift); a run that ends after the next due time skips the
 * times it overran (the next run is due at the first time not yet past),
 * as tokio's MissedTickBehavior::Skip. With fixed_delay, the next run is
 * due period after the previous one ended.
 * The returned future stays pending while the schedule lives and is done
 * when it ends: after max_runs runs with the last run's outcome (result
 * copied, or its error); at a failed run with stop_on_error with that
 * error (a failed run without it does not stop the schedule); with period
 * 0 after its one run. future_cancel on it between runs cancels it (true);
 * during a run (from the moment the run is submitted to the executor, so
 * also while it waits in the queue) it returns false, no further run starts
 * and the future takes that run's outcome (the task is not asked to stop).
 * A run the
 * executor refuses when due (shut down, broken, a full bounded queue: the
 * submit never blocks) ends the schedule with that status; a run cancelled
 * by the executor (executor_shutdown with cancel_futures) cancels it.
 * executor_shutdown cancels every schedule as future_cancel does (Java
 * shutdown drops periodic tasks too), so executor_free never waits for a
 * schedule's future time.
 * @arg is borrowed until the future is done. Returns a new reference; NULL
 * with errno EINVAL (NULL @ex, @fn or @o; NULL @arg with a non-zero @len; a
 * @len over what the kind copies, as for executor_submit; a negative, NaN
 * or infinite delay or period; max_runs > 1 with period 0),
 * ESHUTDOWN, -FUT_EBROKEN, ENOMEM,
 * -FUT_ESYS (the timer thread could not start). Threads: any; never blocks.
 */
CF_API future_t *executor_schedule(executor_t *ex, task_fn fn, const void *arg,
                                   size_t len, const schedule_options_t *o);

/*
 * Task groups (structured concurrency): tasks submitted through a group can
 * be cancelled and waited for together, and no task outlives its group.
 * Java: invokeAll, a StructuredTaskScope; tokio: JoinSet with a
 * CancellationToken; Python: asyncio.TaskGroup; libdispatch: dispatch_group.
 * A group belongs to one executor: its tasks all run there (a group does not
 * span executors; make one group per executor).
 */
typedef struct task_group task_group_t; /* one owner: task_group_free */

/** Options for task_group_new; zero means default. */
typedef struct task_group_options {
    bool cancel_on_failure; /* the first failed task cancels the group */
} task_group_options_t;

/**
 * A new group of tasks on @ex (tokio JoinSet::new; Java
 * StructuredTaskScope.ShutdownOnFailure with cancel_on_failure). @o may be
 * NULL. The group keeps @ex's memory alive (executor_free before
 * task_group_free is safe: later submits then fail ESHUTDOWN). Returns a new
 * group; NULL with errno EINVAL (NULL @ex) or ENOMEM. Threads: any.
 */
CF_API task_group_t *task_group_new(executor_t *ex, const task_group_options_t *o);

/**
 * executor_submit_with on the group's executor, the task joining the group
 * (JoinSet::spawn). Returns a new reference to the task's future, as
 * executor_submit_with; NULL with errno as executor_submit_with, EINVAL for
 * a NULL @g or @fn and for any argument executor_submit_with refuses
 * (checked first, whatever the group's state), ECANCELED once the group
 * was cancelled (by
 * task_group_cancel or a failure with cancel_on_failure: cancelling is
 * final, as a CancellationToken's). Threads: any, tasks of the group too.
 */
CF_API future_t *task_group_submit(task_group_t *g, task_fn fn, const void *arg,
                                   size_t len, const submit_options_t *so);

/**
 * Cancels the group (JoinSet::abort_all, CancellationToken::cancel): first
 * every task not yet started is cancelled, then every running one is asked
 * to stop (task_should_stop; future_cancel on it), so a worker freed by a
 * stopping task cannot start another task of the group. Later submits fail
 * ECANCELED. Returns once every task not started is cancelled and every
 * running one asked to stop, without waiting for them (task_group_wait
 * waits); a call while another thread's cancel (or cancel_on_failure's) is
 * still at that work waits for it, and so for the done-callbacks that
 * cancel runs, except from a done-callback that a group's cancel runs (it
 * returns at once: it would wait for itself).
 * Returns 0; FUT_EINVAL. Threads: any, also callbacks and tasks of the
 * group.
 */
CF_API int task_group_cancel(task_group_t *g);

/**
 * Waits up to @timeout until every task of the group is done (finished or
 * cancelled) (JoinSet::join_all; Java invokeAll's wait). *@first_error
 * (@first_error may be NULL) is the error of the first task that failed (a
 * copy, borrowed until task_group_free), or NULL when none failed; a
 * cancelled task is not a failure. With cancel_on_failure that first
 * failure cancelled the group. Returns 0; FUT_ETIMEDOUT (*@first_error
 * still set: the first failure so far); FUT_EINVAL. Blocks the caller.
 * Restrictions: not from a task of the group with a timeout it cannot
 * survive (it would wait for itself).
 */
CF_API int task_group_wait(task_group_t *g, double timeout,
                           const future_error_t **first_error);

/**
 * Cancels the group, waits for every task of it, and frees it: no task
 * outlives its group (tokio: dropping a JoinSet aborts its tasks). The
 * futures the caller holds stay valid. NULL-safe.
 * Restrictions: not from a task or callback of the group (it would wait for
 * itself). It waits for the members' futures: on a thread pool, a task
 * whose own deadline (submit_options_t.timeout) passed has failed with
 * FUT_EDEADLINE but may still be running (a thread cannot be killed; its
 * task_should_stop() is true), so such a task must not use memory the
 * caller frees after this call. It does not wait for done-callbacks the
 * caller added to a member's future (a member counts as done when its
 * future completes, before those run): one that uses @g (task_group_cancel,
 * task_group_submit) must be over before this call, for example by having
 * it signal an event the caller waits for first.
 */
CF_API void task_group_free(task_group_t *g);

/**
 * Shuts @ex down and waits at most @timeout for its tasks (Java:
 * shutdown + awaitTermination, then shutdownNow; Python: shutdown with
 * gh-72165's timeout). As executor_shutdown(wait=true, @cancel_futures)
 * when every task ends in time: returns 0 with the workers joined. A worker
 * still in its initializer counts as a task that has not ended (also when
 * cancel_futures left it no task), and so does a done-callback still
 * running on a thread pool's worker or deadline thread, or on a process
 * pool's manager thread (user code that may never return). When @timeout
 * passes first, every task not started is cancelled and:
 *  - a process pool sends SIGTERM to every worker (SIGKILL 0.2 s later to
 *    one still alive); each running task fails FUT_EWORKER (signal set);
 *    it returns FUT_ETIMEDOUT only after those tasks have failed and the
 *    workers are gone, unless a done-callback holds its manager thread:
 *    then at once, and the manager cancels and kills when the callback
 *    returns (executor_free waits for that);
 *  - a thread pool returns FUT_ETIMEDOUT at once: its running tasks go on
 *    (a thread cannot be killed) and executor_free joins them later.
 * Delayed tasks not yet due and schedules are cancelled, as by
 * executor_shutdown. Returns 0; FUT_ETIMEDOUT; FUT_EINVAL (NULL @ex, a bad
 * timeout, or a call from one of @ex's own workers or callbacks, which
 * cannot wait for themselves: nothing is done). Blocks the caller.
 */
CF_API int executor_shutdown_timed(executor_t *ex, double timeout, bool cancel_futures);

/**
 * Kills a process pool's workers now (Python 3.14 terminate_workers with
 * SIGTERM, kill_workers with SIGKILL): sends @sig to every worker (SIGKILL
 * follows 0.2 s later for one that survives it) and breaks the pool: each
 * running task fails FUT_EWORKER (signal set) as its worker dies, every task
 * not started fails FUT_EBROKEN at once, and later submits fail with errno
 * -FUT_EBROKEN. Returns once the signals were sent (the running tasks' futures
 * fail as the deaths are reported; executor_free waits for them); the
 * executor still needs executor_free. Returns 0; FUT_EINVAL (NULL @ex, @sig
 * not a signal number, or an executor whose processes it does not own: a
 * thread pool, an MPI pool).
 * Threads: any (from the pool's own callbacks it acts once the callback
 * returned).
 */
CF_API int executor_terminate_workers(executor_t *ex, int sig);

/**
 * Changes how many workers @ex may run at once (GLib
 * g_thread_pool_set_max_threads, Java ThreadPoolExecutor.setMaximumPoolSize;
 * CPython gh-80314 asks it of ThreadPoolExecutor). Growing takes effect at
 * once: workers start for the tasks already queued. Shrinking never
 * interrupts a task: an extra worker leaves when its task ends (or at once
 * when idle), and no task starts while more workers run than @n allows.
 * No queued task is lost either way; executor_stats().workers follows.
 *  - a thread pool takes any @n >= 1;
 *  - a process pool can grow only up to the max_workers it was created with
 *    (its shared claim memory is sized then, before any worker forks);
 *    beyond that it returns FUT_EINVAL and changes nothing. An extra worker
 *    gives back the tasks sent ahead to it and not started, and exits;
 *  - an MPI pool: FUT_EINVAL (its ranks are fixed by mpiexec).
 * Returns 0; FUT_EINVAL (NULL @ex, @n < 1, or a limit the kind cannot
 * reach). After executor_shutdown it only changes the limit. Threads: any,
 * including the executor's own tasks and callbacks; it never waits for a
 * task.
 */
CF_API int executor_set_max_workers(executor_t *ex, int n);

#ifdef __cplusplus
}
#endif

#endif /* CFUTURES_H */
