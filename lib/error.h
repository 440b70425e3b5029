/*
 * error.h: the error blocks a failed future holds (future_error_t and its
 * message in one allocation). Internal: nothing here is exported.
 *
 * Out of memory, an error keeps its status and code without the message,
 * and if even that cannot be allocated it is a shared static block of the
 * same status ("(no memory for the error message)"): a failure is never
 * lost for want of memory. cf_error_free tells the static blocks apart.
 */
#ifndef CF_ERROR_H
#define CF_ERROR_H

#include <stddef.h>

#include "cfutures.h"

/* A new error block with a copy of @msg's @msg_len bytes; never NULL. */
const future_error_t *cf_error_new(int status, int code, int exit_status, int sig,
                                   const char *msg, size_t msg_len);

/* Frees a block of cf_error_new (the static ones stay). */
void cf_error_free(const future_error_t *e);

#endif
