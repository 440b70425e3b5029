/*
 * result.c: future_new, and the typed result getters (future_result_i64,
 * _double, _str), each future_result plus a check of the result's size or
 * form, as Python's callers check what .result() returned. Layer: above
 * the future (public calls only, and cf_future_alloc).
 */
#include "config.h"

#include <string.h>
#include "future.h"
#include "util.h"

future_t *future_new(void)
{
    future_t *f = cf_future_alloc(0, NULL);
    return f ? f : cf_fail_null(FUT_ENOMEM);
}

/* future_result of an 8-byte result, copied to @out: i64 and double. */
static int result_8(future_t *f, double timeout, void *out)
{
    if (!f || !out)
        return FUT_EINVAL;
    const void *data = NULL;
    size_t len = 0;
    int rc = future_result(f, timeout, &data, &len);
    if (rc == 0 && len != 8)
        rc = FUT_EINVAL;
    if (rc == 0)
        memcpy(out, data, 8);
    return rc;
}

int future_result_i64(future_t *f, double timeout, int64_t *v)
{
    return result_8(f, timeout, v);
}

int future_result_double(future_t *f, double timeout, double *v)
{
    return result_8(f, timeout, v);
}

const char *future_result_str(future_t *f, double timeout)
{
    if (!f)
        return cf_fail_null(FUT_EINVAL);
    const void *data = NULL;
    size_t len = 0;
    int rc = future_result(f, timeout, &data, &len);
    if (rc < 0)
        return cf_fail_null(rc);
    if (len == 0 || ((const char *)data)[len - 1] != '\0')
        return cf_fail_null(FUT_EINVAL);
    return data;
}
