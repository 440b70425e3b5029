/*
 * compose.c: futures built from futures: future_then, futures_all,
 * futures_any and future_within (DESIGN.md "Composing futures"). Layer:
 * above executor and task, beside map; it reaches an executor only through
 * executor.h (prepared work) and the timer only through timer.h.
 *
 * DESIGN
 * Everything hangs off done-callbacks: no thread per call, no polling.
 *
 * future_then. The returned future `next` exists before prev is done. With
 * an executor it is a prepared work item (cf_executor_prepare) whose task is
 * then_task: when prev is done its outcome is encoded into one argument
 * (a then_hdr, then prev's result bytes or its error message), submitted
 * with cf_executor_submit_prepared, and copied to a process worker like any
 * argument; then_task decodes it, sets task_arg and task_prev_error and calls
 * fn. So cancellation, running state, deadlines and results are the
 * executor's own. Without an executor, fn runs in the thread that completes
 * prev, on a task_t on its stack, after future_set_running_or_notify_cancel
 * (a cancel that came first wins). The step (struct then_step) lives in
 * next's extra bytes; it holds prev and next until it has run.
 *
 * Long chains: completing next runs next's callbacks, which may be the next
 * step, and so on. Steps that become ready while this thread is already
 * running steps go on a thread-local FIFO that the outermost one drains, so
 * a chain of any length runs in constant stack depth; each step drops prev
 * once it ran, so a chain's memory goes as it goes.
 *
 * futures_all / futures_any / future_within: a shared state counted by the
 * callbacks (and timer) that still point at it; a compare-and-swap on
 * `decided` picks the one completion. cancel_rest keeps references to the
 * inputs and cancels them once the outcome is known.
 *
 * Locks: none of its own but the timer's (timer.c). No user code runs under
 * a lock: callbacks run where future.c runs them.
 */
#include "config.h"

#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blocks.h"
#include "executor.h"
#include "task.h"
#include "timer.h"
#include "util.h"

/* ---------------------------------------------------------- outcomes */

/* task_prev_error of a continuation whose prev was cancelled. */
static const future_error_t cancelled_error = {
    FUT_ECANCELLED, 0, "the previous future was cancelled", -1, 0};

/* A done future's outcome: its result (err NULL), or its error. */
struct outcome {
    const future_error_t *err; /* NULL: a result; &cancelled_error: cancelled */
    const void *data;
    size_t len;
};

static struct outcome outcome_of(future_t *f)
{
    struct outcome o = {0};
    const future_error_t *e = NULL;
    if (future_exception(f, 0, &e) == FUT_ECANCELLED)
        o.err = &cancelled_error;
    else if (e)
        o.err = e;
    else
        future_result(f, 0, &o.data, &o.len);
    return o;
}

/* Completes @to as @o: a cancel, a copy of the error, or a copy of the result. */
static void settle_like(future_t *to, const struct outcome *o)
{
    if (o->err == &cancelled_error) {
        /* One the caller set running (its right: futures_all) fails as cancelled. */
        if (!future_cancel(to))
            cf_future_fail(to, FUT_ECANCELLED, 0, -1, 0, "cancelled");
    } else if (o->err) {
        const future_error_t *e = o->err;
        cf_future_fail(to, e->status, e->code, e->exit_status, e->signal, e->message);
    } else if (o->len == 0) {
        cf_future_set_result(to, NULL, 0, NULL);
    } else if (o->len <= CF_INLINE_MAX) {
        cf_future_set_result_inline(to, o->data, o->len);
    } else {
        void *copy = cf_block_dup(o->data, o->len);
        if (!copy) {
            cf_future_fail(to, FUT_ENOMEM, ENOMEM, -1, 0, "no memory to copy the result");
            return;
        }
        cf_future_set_result(to, copy, o->len, cf_block_free);
    }
}

/* ---------------------------------------------------------- future_then */

/* The argument of then_task: this header, then the payload. */
struct then_hdr {
    union {
        task_fn fn;   /* the user's function (the same in a forked worker) */
        uint64_t ref; /* an MPI pool's name for it in transit (cf_task_carries_fn) */
    } u;
    uint64_t payload_len; /* prev's result bytes, or the message with its NUL */
    int32_t failed;       /* prev failed or was cancelled: the payload is a message */
    int32_t status, code, exit_status, sig;
};
#define HDR_SIZE 48 /* keeps the payload aligned for int64 and double */
_Static_assert(sizeof(struct then_hdr) <= HDR_SIZE, "then_hdr grew");

/* An argument this small lives in the step itself. */
#define THEN_SMALL (HDR_SIZE + 16)

struct then_step {
    future_t *prev;          /* a reference until the step ran */
    future_t *next;          /* the returned future: a reference until the step ran */
    struct cf_work *w;       /* with an executor: next's prepared work; NULL inline */
    task_fn fn;              /* immutable */
    double limit;            /* immutable: the task's own time limit (s), 0: none */
    fut_then_when when;      /* immutable */
    bool nonblocking;        /* immutable */
    struct then_step *defer; /* the thread's deferred steps (below) */
};

/*
 * Who frees a malloc'd argument that a thread pool passes by pointer (the
 * kinds that copy it are done with it once next is done): next may be done
 * before then_task returns (a time limit fails it while the task runs).
 */
enum { RUN_IDLE, RUN_RUNNING, RUN_ENDED, RUN_RELEASED };

/* With an executor, the step and the argument it builds. */
struct then_exec {
    struct then_step s;
    _Atomic(void *) big; /* a malloc'd argument: freed once next is done and the
                            task is not running, or by the step when the submit
                            did not happen */
    _Atomic int run;     /* RUN_*: then_task's and exec_release's meeting point */
    _Alignas(
        8) unsigned char small[THEN_SMALL]; /* 8-aligned: payloads are read in place */
};

/* @x's argument is no longer needed by one of the two (then_task, exec_release):
   the second frees it. */
static void exec_let_go(struct then_exec *x, int as)
{
    int was = atomic_exchange(&x->run, as);
    if (was == RUN_IDLE || was == RUN_ENDED || was == RUN_RELEASED)
        free(atomic_exchange(&x->big, NULL));
}

/* Runs in the pool (a thread or a forked worker): decode, then the user's fn. */
static void then_task(task_t *t)
{
    /* In this process (t->f: a thread pool, which borrows the argument) the
       step is the work's tail, found without the argument: a time limit may
       have failed next, and its step freed the argument, before this began. */
    struct then_exec *x = t->f ? cf_work_tail(cf_future_extra(t->f)) : NULL;
    int idle = RUN_IDLE;
    if (x && !atomic_compare_exchange_strong(&x->run, &idle, RUN_RUNNING))
        return; /* next was done before it started: it cannot run now */
    size_t len = 0;
    const unsigned char *a = task_arg(t, &len);
    struct then_hdr h;
    memcpy(&h, a, sizeof(h));
    const unsigned char *payload = a + HDR_SIZE;
    future_error_t e = {0};
    if (h.failed) {
        e = (future_error_t){h.status, h.code, (const char *)payload, h.exit_status,
                             h.sig};
        t->arg = NULL;
        t->arg_len = 0;
        t->prev_err = &e;
    } else {
        t->arg = h.payload_len ? payload : NULL;
        t->arg_len = h.payload_len;
    }
    h.u.fn(t);
    t->prev_err = NULL; /* e lives on this stack */
    t->arg = NULL;
    if (x)
        exec_let_go(x, RUN_ENDED);
}

bool cf_task_carries_fn(task_fn fn, size_t arg_len, size_t *off)
{
    if (fn != then_task || arg_len < HDR_SIZE)
        return false;
    *off = offsetof(struct then_hdr, u);
    return true;
}

/* Next is done: its argument (once then_task is not running) and the executor
   are no longer needed. */
static void exec_release(future_t *next, void *ud)
{
    (void)next;
    struct then_exec *x = ud;
    exec_let_go(x, RUN_RELEASED);
    cf_executor_unref(x->s.w->ex);
}

/* Builds the argument for @o and submits next's task. */
static void run_on_executor(struct then_exec *x, const struct outcome *o)
{
    future_t *next = x->s.next;
    const void *src = o->err ? (const void *)o->err->message : o->data;
    size_t payload = o->err ? strlen(o->err->message) + 1 : o->len;
    size_t total = HDR_SIZE + payload;
    unsigned char *buf = x->small;
    if (total > sizeof(x->small)) {
        buf = malloc(total);
        if (!buf) {
            cf_future_fail(next, FUT_ENOMEM, ENOMEM, -1, 0,
                           "no memory for the continuation's argument");
            return;
        }
    }
    struct then_hdr h = {.u.fn = x->s.fn, .payload_len = payload};
    if (o->err) {
        h.failed = 1;
        h.status = o->err->status;
        h.code = o->err->code;
        h.exit_status = o->err->exit_status;
        h.sig = o->err->signal;
    }
    memset(buf, 0, HDR_SIZE);
    memcpy(buf, &h, sizeof(h));
    if (payload)
        memcpy(buf + HDR_SIZE, src, payload);
    /* Published only once written: a cancel from now on (exec_release)
       frees it, and nothing here writes to it after. */
    if (buf != x->small)
        atomic_store(&x->big, buf);
    int rc = cf_executor_submit_prepared(x->s.w, buf, total, x->s.nonblocking, false);
    if (rc == 0)
        return;
    /* Not submitted: a cancel may have run exec_release before buf was stored. */
    free(atomic_exchange(&x->big, NULL));
    if (rc != FUT_ECANCELLED)
        cf_future_fail(next, rc, 0, -1, 0, future_strerror(rc));
}

/* Runs fn here and now, unless next was cancelled or completed first (the
   caller may have set it running: then it runs too). */
static void run_inline(struct then_step *s, const struct outcome *o)
{
    if (cf_future_set_running(s->next) != 1 && !future_running(s->next))
        return;
    int64_t deadline = s->limit > 0 ? cf_deadline_after(s->limit) : CF_NO_DEADLINE;
    struct task t;
    cf_task_init(&t, s->next, o->err ? NULL : o->data, o->err ? 0 : o->len, deadline);
    t.prev_err = o->err;
    s->fn(&t);
    t.prev_err = NULL;
    cf_task_complete(&t);
}

/* Prev is done: run fn (inline or on the executor), or pass prev's outcome on. */
static void step_run(struct then_step *s)
{
    future_t *prev = s->prev, *next = s->next;
    executor_t *ex = s->w ? s->w->ex : NULL;
    struct outcome o = outcome_of(prev);
    bool failed = o.err != NULL;
    bool run = s->when == FUT_THEN_ALWAYS || (s->when == FUT_THEN_ON_FAILURE) == failed;
    if (future_done(next))
        ; /* cancelled while prev ran: nothing to do */
    else if (!run)
        settle_like(next, &o);
    else if (s->w)
        run_on_executor((struct then_exec *)s, &o);
    else
        run_inline(s, &o);
    s->prev = NULL;
    future_unref(prev);
    future_unref(next); /* may free s */
    if (ex)
        cf_executor_unref(ex); /* the step's own reference */
}

/*
 * Steps ready while this thread runs steps wait here, so that a chain runs
 * in a loop instead of a recursion as deep as the chain.
 */
static _Thread_local struct then_step *defer_head, *defer_tail;
static _Thread_local bool draining;

static void step_ready(future_t *prev, void *ud)
{
    (void)prev;
    struct then_step *s = ud;
    s->defer = NULL;
    if (defer_tail)
        defer_tail->defer = s;
    else
        defer_head = s;
    defer_tail = s;
    if (draining)
        return;
    draining = true;
    while ((s = defer_head)) {
        defer_head = s->defer;
        if (!defer_head)
            defer_tail = NULL;
        step_run(s);
    }
    draining = false;
}

static bool then_args_ok(future_t *prev, task_fn fn, const then_options_t *o)
{
    return prev && fn &&
           (o->when == FUT_THEN_ON_RESULT || o->when == FUT_THEN_ON_FAILURE ||
            o->when == FUT_THEN_ALWAYS) &&
           isfinite(o->submit.timeout) && o->submit.timeout >= 0 &&
           o->submit.delay == 0; /* fn starts when prev is done: no delay */
}

/* A new step with its future, or NULL (errno set). */
static struct then_step *step_new(executor_t *ex, const then_options_t *o)
{
    if (!ex) {
        future_t *next = cf_future_alloc(sizeof(struct then_step), NULL);
        if (!next)
            return cf_fail_null(FUT_ENOMEM);
        struct then_step *s = cf_future_extra(next);
        s->w = NULL;
        s->next = next;
        return s;
    }
    if (atomic_load(&ex->shut))
        return cf_fail_null(FUT_ESHUTDOWN);
    if (atomic_load(&ex->broken))
        return cf_fail_null(FUT_EBROKEN);
    struct cf_work *w =
        cf_executor_prepare(ex, then_task, o->submit.timeout, sizeof(struct then_exec));
    if (!w)
        return cf_fail_null(FUT_ENOMEM);
    cf_work_set_priority(w, o->submit.priority);
    struct then_exec *x = cf_work_tail(w);
    atomic_init(&x->big, NULL);
    atomic_init(&x->run, RUN_IDLE);
    x->s.w = w;
    x->s.next = cf_work_future(w);
    cf_executor_ref(ex); /* exec_release's */
    if (future_add_done_callback(x->s.next, exec_release, x) < 0) {
        cf_executor_unref(ex);
        future_unref(x->s.next);
        return cf_fail_null(FUT_ENOMEM);
    }
    cf_executor_ref(ex); /* the step's, until it ran */
    return &x->s;
}

future_t *future_then(future_t *prev, executor_t *ex, task_fn fn, const then_options_t *o)
{
    then_options_t def = {0};
    if (!o)
        o = &def;
    if (!then_args_ok(prev, fn, o))
        return cf_fail_null(FUT_EINVAL);
    completion_queue_t *q = o->submit.queue;
    void *res = NULL;
    if (q && cf_queue_ops_of(q)->reserve(q, &res) < 0)
        return cf_fail_null(FUT_ENOMEM);
    struct then_step *s = step_new(ex, o);
    if (!s) {
        if (q)
            cf_queue_ops_of(q)->unreserve(res);
        return NULL;
    }
    future_t *next = s->next;
    s->fn = fn;
    s->limit = o->submit.timeout;
    s->when = o->when;
    s->nonblocking = o->submit.nonblocking;
    s->prev = future_ref(prev);
    future_ref(next); /* the step's */
    if (future_add_done_callback(prev, step_ready, s) < 0) {
        future_unref(prev);
        /* Runs exec_release, if any; then both references go. */
        cf_future_fail(next, FUT_ENOMEM, ENOMEM, -1, 0, "");
        future_unref(next);
        future_unref(next);
        if (ex)
            cf_executor_unref(ex);
        if (q)
            cf_queue_ops_of(q)->unreserve(res);
        return cf_fail_null(FUT_ENOMEM);
    }
    if (q)
        cf_queue_ops_of(q)->commit(q, next, res);
    return next;
}

/* ---------------------------------------------------------- all and any */

struct combine {
    _Atomic size_t refs;  /* callbacks still to run, plus the builder's */
    _Atomic size_t left;  /* inputs not yet done */
    _Atomic bool decided; /* the result future was completed (or is being) */
    future_t *r;          /* the result: a reference until decided */
    future_t **fs;        /* cancel_rest: references to the inputs; else NULL */
    size_t n;
    bool any;       /* futures_any */
    bool settle;    /* immutable */
    future_t **ins; /* futures_any: the inputs, no references (identity) */
};

static void combine_unref(struct combine *c)
{
    if (atomic_fetch_sub(&c->refs, 1) != 1)
        return;
    if (c->fs)
        for (size_t i = 0; i < c->n; i++)
            future_unref(c->fs[i]);
    free(c->fs);
    free(c->ins);
    free(c);
}

/* The one completion of c->r: true for the caller that gets to make it. */
static bool decide(struct combine *c)
{
    bool was = false;
    return atomic_compare_exchange_strong(&c->decided, &was, true);
}

/* Once decided: cancel_rest, then drop the result's reference. */
static void decided(struct combine *c)
{
    future_t *r = c->r;
    c->r = NULL;
    future_unref(r);
    if (c->fs)
        for (size_t i = 0; i < c->n; i++)
            future_cancel(c->fs[i]);
}

/*
 * all_done and any_done try the outcome that decides at once (a failure for
 * all, a result for any) before they count the input done: counted first, a
 * decisive input could lose to the last one, counted and decided between its
 * count and its try (futures_all succeeding with a failed input).
 */
static void all_done(future_t *f, void *ud)
{
    struct combine *c = ud;
    if (!c->settle && (future_cancelled(f) || cf_future_failed(f)) && decide(c)) {
        struct outcome o = outcome_of(f);
        settle_like(c->r, &o);
        decided(c);
    } else if (atomic_fetch_sub(&c->left, 1) == 1 && decide(c)) {
        cf_future_set_result(c->r, NULL, 0, NULL);
        decided(c);
    }
    combine_unref(c);
}

static void any_done(future_t *f, void *ud)
{
    struct combine *c = ud;
    bool ok = !future_cancelled(f) && !cf_future_failed(f);
    if (ok && decide(c)) {
        /*
         * A future given twice has two callbacks, and they may run in either
         * order (one in the completing thread, one added just after): its
         * first position is found here, not by which callback came first.
         */
        int64_t index = 0;
        while (c->ins[index] != f)
            index++;
        cf_future_set_result_inline(c->r, &index, sizeof(index));
        decided(c);
    } else if (atomic_fetch_sub(&c->left, 1) == 1 && !ok && decide(c)) {
        struct outcome o = outcome_of(f);
        settle_like(c->r, &o);
        decided(c);
    }
    combine_unref(c);
}

static struct combine *combine_new(future_t *const *fs, size_t n,
                                   const combine_options_t *o, bool any)
{
    struct combine *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->r = cf_future_alloc(0, NULL);
    c->fs = o->cancel_rest ? malloc(n * sizeof(*c->fs)) : NULL;
    c->ins = any ? malloc(n * sizeof(*c->ins)) : NULL;
    if (!c->r || (o->cancel_rest && !c->fs) || (any && !c->ins)) {
        future_unref(c->r);
        free(c->fs);
        free(c->ins);
        free(c);
        return NULL;
    }
    atomic_init(&c->refs, n + 1);
    atomic_init(&c->left, n);
    atomic_init(&c->decided, false);
    c->n = n;
    c->any = any;
    c->settle = o->settle && !any;
    for (size_t i = 0; i < n; i++) {
        if (c->fs)
            c->fs[i] = future_ref(fs[i]);
        if (c->ins)
            c->ins[i] = fs[i];
    }
    return c;
}

static future_t *combine(future_t *const *fs, size_t n, const combine_options_t *o,
                         bool any)
{
    combine_options_t def = {0};
    if (!o)
        o = &def;
    if ((!fs && n > 0) || (any && n == 0) || n > SIZE_MAX / sizeof(void *))
        return cf_fail_null(FUT_EINVAL);
    for (size_t i = 0; i < n; i++)
        if (!fs[i])
            return cf_fail_null(FUT_EINVAL);
    /* Every callback's node first: once one is added nothing can fail, so a
       failed call has added none (and cancelled nothing: cancel_rest). */
    void **nodes = n ? malloc(n * sizeof(*nodes)) : NULL;
    size_t got = 0;
    while (nodes && got < n && (nodes[got] = cf_future_cb_alloc()))
        got++;
    struct combine *c = got == n ? combine_new(fs, n, o, any) : NULL;
    if (!c) {
        while (got > 0)
            cf_future_cb_free(nodes[--got]);
        free(nodes);
        return cf_fail_null(FUT_ENOMEM);
    }
    future_t *r = future_ref(c->r); /* the caller's */
    if (n == 0 && decide(c)) {
        cf_future_set_result(c->r, NULL, 0, NULL);
        decided(c);
    }
    for (size_t i = 0; i < n; i++)
        cf_future_add_done_callback_node(fs[i], any ? any_done : all_done, c, nodes[i]);
    free(nodes);
    combine_unref(c);
    return r;
}

future_t *futures_all(future_t *const *fs, size_t n, const combine_options_t *o)
{
    return combine(fs, n, o, false);
}

future_t *futures_any(future_t *const *fs, size_t n, const combine_options_t *o)
{
    return combine(fs, n, o, true);
}

/* ---------------------------------------------------------- within */

#ifdef CF_TEST_HOOKS
/* Tests complete the source between the callback's add and the timer's. */
void (*cf_test_within_hook)(void);
#endif

struct within {
    struct cf_timer timer;
    _Atomic int refs; /* f's callback, the timer (and future_within until armed) */
    _Atomic bool decided;
    bool cancel_source;
    future_t *r;    /* a reference until decided */
    future_t *f;    /* a reference while the timer is armed, else NULL */
    void *node;     /* f's callback: the timer takes it back if it never ran */
    double timeout; /* for the message */
};

/* Drops @n references at once; the last frees @w. */
static void within_release(struct within *w, int n)
{
    if (atomic_fetch_sub(&w->refs, n) != n)
        return;
    future_unref(w->f);
    free(w);
}

static bool within_decide(struct within *w)
{
    bool was = false;
    return atomic_compare_exchange_strong(&w->decided, &was, true);
}

static void within_fired(struct cf_timer *t)
{
    struct within *w = (struct within *)t;
    if (within_decide(w)) {
        char msg[96];
        snprintf(msg, sizeof(msg), "the future was not done within %g s", w->timeout);
        /* The source first: whoever sees the timeout sees it cancelled. */
        if (w->cancel_source)
            future_cancel(w->f);
        cf_future_fail(w->r, FUT_ETIMEDOUT, ETIMEDOUT, -1, 0, msg);
        future_unref(w->r);
    }
    /* f's callback too if it had not run: a source never completed (a
       promise dropped unset) would otherwise keep @w for ever. */
    bool taken = cf_future_take_callback_node(w->f, w->node);
    if (taken)
        cf_future_cb_free(w->node);
    within_release(w, taken ? 2 : 1);
}

static void within_done(future_t *f, void *ud)
{
    struct within *w = ud;
    if (within_decide(w)) {
        struct outcome o = outcome_of(f);
        settle_like(w->r, &o);
        future_unref(w->r);
    }
    /* Ours, and the timer's too if it will never fire: one drop, one free. */
    within_release(w, cf_timer_cancel(&w->timer) ? 2 : 1);
}

future_t *future_within(future_t *f, double timeout, bool cancel_source)
{
    if (!f || !cf_timeout_valid(timeout))
        return cf_fail_null(FUT_EINVAL);
    struct within *w = calloc(1, sizeof(*w));
    future_t *r = cf_future_alloc(0, NULL);
    void *node = cf_future_cb_alloc(); /* so that nothing fails once the timer runs */
    if (!w || !r || !node) {
        free(w);
        future_unref(r);
        cf_future_cb_free(node);
        return cf_fail_null(FUT_ENOMEM);
    }
    w->r = future_ref(r); /* until decided */
    w->cancel_source = cancel_source;
    w->node = node;
    w->timeout = timeout;
    atomic_init(&w->decided, false);
    if (timeout == FUT_FOREVER || future_done(f)) {
        atomic_init(&w->refs, 1); /* no timer: f's outcome decides */
        cf_future_add_done_callback_node(f, within_done, w, node);
        return r;
    }
    w->f = future_ref(f);     /* the timer's: it may cancel f or take the callback */
    atomic_init(&w->refs, 3); /* f's callback, the timer, ours until it is armed */
    /* The callback first, so that a timer firing at once can take it back. */
    cf_future_add_done_callback_node(f, within_done, w, node);
    CF_TEST_HOOK(cf_test_within_hook);
    int rc = cf_timer_add(&w->timer, cf_deadline_after(timeout), within_fired);
    if (rc == 0) {
        /* f's outcome came before the timer was armed: within_done could not
           disarm it, so the timer would hold f until the timeout. */
        within_release(w, future_done(f) && cf_timer_cancel(&w->timer) ? 2 : 1);
        return r;
    }
    if (!cf_future_take_callback_node(f, node)) {
        within_release(w, 2); /* ours and the timer's: f's outcome came first, r has it */
        return r;
    }
    cf_future_cb_free(node);
    future_unref(w->f);
    free(w);
    future_unref(r);
    future_unref(r);
    return cf_fail_null(rc);
}
