/*
 * error.c: the error blocks of failed futures (error.h says what).
 */
#include "config.h"

#include "error.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* The error block: the public struct, then the message bytes. */
struct err_block {
    future_error_t pub;
    char msg[];
};

/*
 * Used when even the error block cannot be allocated: the outcome is kept,
 * and its status (header): one entry for every FUT_* code, since futures
 * fail with any of them (future_within FUT_ETIMEDOUT, a futures_all set
 * running FUT_ECANCELLED, a refused continuation FUT_EFULL or FUT_EINVAL).
 */
#define OOM_MSG "(no memory for the error message)"
static const future_error_t oom_errors[] = {
    {FUT_ETASK, 0, OOM_MSG, -1, 0},      {FUT_EBROKEN, 0, OOM_MSG, -1, 0},
    {FUT_EWORKER, 0, OOM_MSG, -1, 0},    {FUT_EDEADLINE, 0, OOM_MSG, -1, 0},
    {FUT_ESYS, 0, OOM_MSG, -1, 0},       {FUT_ENOMEM, 0, OOM_MSG, -1, 0},
    {FUT_ESHUTDOWN, 0, OOM_MSG, -1, 0},  {FUT_ETIMEDOUT, 0, OOM_MSG, -1, 0},
    {FUT_ECANCELLED, 0, OOM_MSG, -1, 0}, {FUT_EINVAL, 0, OOM_MSG, -1, 0},
    {FUT_EFULL, 0, OOM_MSG, -1, 0},      {FUT_ESTATE, 0, OOM_MSG, -1, 0},
    {FUT_EOF, 0, OOM_MSG, -1, 0},
};

#define N_OOM (sizeof(oom_errors) / sizeof(oom_errors[0]))

const future_error_t *cf_error_new(int status, int code, int exit_status, int sig,
                                   const char *msg, size_t msg_len)
{
    struct err_block *e = malloc(sizeof(*e) + msg_len + 1);
    if (!e && msg_len > 0) {
        /* Keep the status and code at least; the message is what costs. */
        msg_len = 0;
        e = malloc(sizeof(*e) + 1);
    }
    if (!e) {
        for (size_t i = 0; i < N_OOM; i++)
            if (oom_errors[i].status == status)
                return &oom_errors[i];
        return &oom_errors[0];
    }
    memcpy(e->msg, msg, msg_len);
    e->msg[msg_len] = '\0';
    e->pub.status = status;
    e->pub.code = code;
    e->pub.message = e->msg;
    e->pub.exit_status = exit_status;
    e->pub.signal = sig;
    return &e->pub;
}

void cf_error_free(const future_error_t *e)
{
    if (!(e >= oom_errors && e < oom_errors + N_OOM))
        free((void *)e);
}

bool future_error_is_broken(const future_error_t *err)
{
    return err && (err->status == FUT_EBROKEN || err->status == FUT_EWORKER);
}
