/*
 * task.c: the task_t a task function sees, and handing its answer over.
 *
 * DESIGN
 * A task_t lives on the stack of the thread running the task and is touched
 * by that thread only. task_return* / task_raise record the answer in it;
 * after the task function returns, the executor calls cf_task_complete(),
 * which moves the answer into the future (or drops it if a deadline watcher
 * failed the future first). Small results (up to CF_INLINE_MAX bytes) are
 * copied into the future itself: no allocation per tiny task.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "task.h"

#include "blocks.h"

void cf_task_init(struct task *t, future_t *f, const void *arg, size_t arg_len,
                  int64_t deadline)
{
    t->f = f;
    t->arg = arg;
    t->arg_len = arg_len;
    t->deadline = deadline;
    t->prev_err = NULL;
    t->stop_word = NULL;
    t->stop_bit = 0;
    t->answer = CF_ANSWER_NONE;
    t->data = NULL;
    t->len = 0;
    t->free_fn = NULL;
    t->err_code = 0;
    t->err_msg = NULL;
    t->expired = false;
}

void cf_task_clear(struct task *t)
{
    if (t->answer == CF_ANSWER_RESULT && t->data != t->inl && t->free_fn && t->data)
        t->free_fn(t->data);
    free(t->err_msg);
    t->answer = CF_ANSWER_NONE;
    t->data = NULL;
    t->err_msg = NULL;
}

static bool deadline_passed(const struct task *t)
{
    return t->deadline != CF_NO_DEADLINE && cf_now_ns() >= t->deadline;
}

int cf_task_settle(struct task *t)
{
    if (deadline_passed(t)) {
        cf_task_clear(t); /* whatever it answered */
        t->expired = true;
    }
    return t->expired || t->answer == CF_ANSWER_ERROR || future_done(t->f);
}

void cf_task_hand_over(struct task *t)
{
    future_t *f = t->f;
    if (t->expired) {
        cf_future_expire(f); /* FUT_ESTATE: its deadline watcher got there first */
        return;
    }
    switch (t->answer) {
    case CF_ANSWER_ERROR:
        cf_future_fail(f, FUT_ETASK, t->err_code, -1, 0,
                       t->err_msg ? t->err_msg : "(no memory for the error message)");
        cf_task_clear(t);
        break;
    case CF_ANSWER_RESULT:
        /* FUT_ESTATE (failed already): the future frees the data on every path. */
        if (t->data == t->inl)
            cf_future_set_result_inline(f, t->inl, t->len);
        else
            cf_future_set_result(f, t->data, t->len, t->free_fn);
        t->answer = CF_ANSWER_NONE;
        break;
    default:
        cf_future_set_result(f, NULL, 0, NULL);
        break;
    }
}

int cf_task_complete(struct task *t)
{
    int failed = cf_task_settle(t);
    cf_task_hand_over(t);
    return failed;
}

/* ---------------------------------------------------------- public */

const void *task_arg(const task_t *t, size_t *len)
{
    if (!t)
        return cf_fail_null(FUT_EINVAL);
    if (len)
        *len = t->arg_len;
    return t->arg;
}

int task_return(task_t *t, void *data, size_t len, void (*free_fn)(void *))
{
    if (!t || t->answer != CF_ANSWER_NONE || (!data && len > 0)) {
        if (free_fn && data)
            free_fn(data);
        return !t || (!data && len > 0) ? FUT_EINVAL : FUT_ESTATE;
    }
    t->answer = CF_ANSWER_RESULT;
    t->data = data;
    t->len = len;
    t->free_fn = free_fn;
    return 0;
}

int task_return_copy(task_t *t, const void *data, size_t len)
{
    if (!t || (!data && len > 0))
        return FUT_EINVAL;
    if (t->answer != CF_ANSWER_NONE)
        return FUT_ESTATE;
    if (len <= CF_INLINE_MAX) {
        if (len)
            memcpy(t->inl, data, len);
        t->answer = CF_ANSWER_RESULT;
        t->data = t->inl;
        t->len = len;
        t->free_fn = NULL;
        return 0;
    }
    void *copy = cf_block_dup(data, len);
    if (!copy)
        return FUT_ENOMEM;
    return task_return(t, copy, len, cf_block_free);
}

int task_return_i64(task_t *t, int64_t v)
{
    return task_return_copy(t, &v, sizeof(v));
}

int task_return_double(task_t *t, double v)
{
    return task_return_copy(t, &v, sizeof(v));
}

/*
 * vasprintf into malloc'd memory; NULL with *@rc FUT_EINVAL when vsnprintf
 * cannot render @fmt (EILSEQ, EOVERFLOW), FUT_ENOMEM when out of memory.
 */
static char *format(const char *fmt, va_list ap, int *rc)
{
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    *rc = n < 0 ? FUT_EINVAL : FUT_ENOMEM;
    if (n < 0)
        return NULL;
    char *s = malloc((size_t)n + 1);
    if (s)
        vsnprintf(s, (size_t)n + 1, fmt, ap);
    return s;
}

int task_return_str(task_t *t, const char *fmt, ...)
{
    if (!t || !fmt)
        return FUT_EINVAL;
    if (t->answer != CF_ANSWER_NONE)
        return FUT_ESTATE;
    va_list ap;
    va_start(ap, fmt);
    int rc;
    char *s = format(fmt, ap, &rc);
    va_end(ap);
    if (!s)
        return rc;
    return task_return(t, s, strlen(s) + 1, free);
}

int task_raise(task_t *t, int code, const char *fmt, ...)
{
    if (!t || !fmt)
        return FUT_EINVAL;
    if (t->answer != CF_ANSWER_NONE)
        return FUT_ESTATE;
    t->answer = CF_ANSWER_ERROR;
    t->err_code = code;
    va_list ap;
    va_start(ap, fmt);
    int rc;
    t->err_msg = format(fmt, ap, &rc); /* NULL: the failure stands */
    va_end(ap);
    if (!t->err_msg && rc == FUT_EINVAL)
        t->err_msg = strdup(CF_BAD_FORMAT_MSG); /* NULL out of memory */
    return 0;
}

const future_error_t *task_prev_error(const task_t *t)
{
    return t ? t->prev_err : NULL;
}

bool task_should_stop(const task_t *t)
{
    if (!t)
        return false;
    if (t->f && cf_future_stop_requested(t->f))
        return true;
    if (t->stop_word && (atomic_load(t->stop_word) & t->stop_bit))
        return true;
    return deadline_passed(t);
}
