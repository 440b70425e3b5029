/* naive_process_pool.c: see naive_process_pool.h. */
#include "config.h"

#include "naive_process_pool.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

struct buf {
    unsigned char *p;
    size_t len, cap, off; /* bytes [off, len) are pending */
};

struct npp_worker {
    pid_t pid;
    int task_fd, result_fd; /* the parent's ends */
    struct buf out, in;     /* frames to send; bytes received */
    size_t ring[NPP_DEPTH]; /* indexes in flight, oldest first */
    size_t head, inflight;
};

struct npp {
    int n;
    npp_fn fn;
    struct npp_worker *w;
};

static int buf_reserve(struct buf *b, size_t more)
{
    if (b->off > 0 && b->off == b->len)
        b->off = b->len = 0;
    if (b->len + more <= b->cap)
        return 0;
    if (b->off > 0) { /* slide the pending bytes down first */
        memmove(b->p, b->p + b->off, b->len - b->off);
        b->len -= b->off;
        b->off = 0;
        if (b->len + more <= b->cap)
            return 0;
    }
    size_t cap = b->cap ? b->cap : 65536;
    while (cap < b->len + more)
        cap *= 2;
    unsigned char *p = realloc(b->p, cap);
    if (!p)
        return -1;
    b->p = p;
    b->cap = cap;
    return 0;
}

static int buf_frame(struct buf *b, const void *data, size_t len)
{
    uint32_t n = (uint32_t)len;
    if (buf_reserve(b, sizeof(n) + len) != 0)
        return -1;
    memcpy(b->p + b->len, &n, sizeof(n));
    memcpy(b->p + b->len + sizeof(n), data, len);
    b->len += sizeof(n) + len;
    return 0;
}

static int write_all(int fd, const void *p, size_t n)
{
    const unsigned char *c = p;
    while (n > 0) {
        ssize_t k = write(fd, c, n);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return -1;
        c += k;
        n -= (size_t)k;
    }
    return 0;
}

/* The worker: read what is there, run every whole frame, answer in one write. */
static _Noreturn void worker_main(int task_fd, int result_fd, npp_fn fn)
{
    struct buf in = {0}, out = {0};
    unsigned char *res = malloc(NPP_MAX_RESULT);
    if (!res)
        _exit(3);
    for (;;) {
        if (buf_reserve(&in, 65536) != 0)
            _exit(3);
        ssize_t k = read(task_fd, in.p + in.len, in.cap - in.len);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            _exit(k == 0 ? 0 : 4);
        in.len += (size_t)k;
        for (;;) {
            uint32_t n;
            if (in.len - in.off < sizeof(n))
                break;
            memcpy(&n, in.p + in.off, sizeof(n));
            if (in.len - in.off < sizeof(n) + n) {
                if (buf_reserve(&in, sizeof(n) + n) != 0)
                    _exit(3);
                break;
            }
            size_t rlen = fn(in.p + in.off + sizeof(n), n, res);
            in.off += sizeof(n) + n;
            if (buf_frame(&out, res, rlen) != 0)
                _exit(3);
        }
        if (out.len > 0) {
            if (write_all(result_fd, out.p, out.len) != 0)
                _exit(5);
            out.len = out.off = 0;
        }
    }
}

npp_t *npp_new(int workers, npp_fn fn)
{
    npp_t *p = calloc(1, sizeof(*p));
    if (!p)
        return NULL;
    p->w = calloc((size_t)workers, sizeof(*p->w));
    if (!p->w) {
        free(p);
        return NULL;
    }
    p->fn = fn;
    for (int i = 0; i < workers; i++) {
        int tp[2], rp[2];
        if (pipe(tp) != 0)
            goto fail;
        if (pipe(rp) != 0) {
            close(tp[0]);
            close(tp[1]);
            goto fail;
        }
        pid_t pid = fork();
        if (pid == 0) {
            close(tp[1]);
            close(rp[0]);
            for (int j = 0; j < p->n; j++) { /* not the siblings' pipes */
                close(p->w[j].task_fd);
                close(p->w[j].result_fd);
            }
            worker_main(tp[0], rp[1], fn);
        }
        close(tp[0]);
        close(rp[1]);
        if (pid < 0) {
            close(tp[1]);
            close(rp[0]);
            goto fail;
        }
        fcntl(tp[1], F_SETFL, fcntl(tp[1], F_GETFL) | O_NONBLOCK);
        p->w[i].pid = pid;
        p->w[i].task_fd = tp[1];
        p->w[i].result_fd = rp[0];
        p->n = i + 1;
    }
    return p;
fail:
    npp_free(p);
    return NULL;
}

int npp_run(npp_t *p, const void *const *args, const size_t *lens, size_t n,
            npp_result_fn on_result, void *ud)
{
    struct pollfd *pfd = calloc((size_t)p->n * 2, sizeof(*pfd));
    if (!pfd)
        return -1;
    size_t next = 0, done = 0;
    int rc = 0;
    while (done < n && rc == 0) {
        /* Top every worker up to NPP_DEPTH in flight, in one batch each. */
        for (int i = 0; i < p->n; i++) {
            struct npp_worker *w = &p->w[i];
            while (w->inflight < NPP_DEPTH && next < n) {
                if (buf_frame(&w->out, args[next], lens[next]) != 0) {
                    rc = -1;
                    break;
                }
                w->ring[(w->head + w->inflight) % NPP_DEPTH] = next++;
                w->inflight++;
            }
        }
        for (int i = 0; i < p->n; i++) {
            struct npp_worker *w = &p->w[i];
            pfd[2 * i] = (struct pollfd){.fd = w->out.len > w->out.off ? w->task_fd : -1,
                                         .events = POLLOUT};
            pfd[2 * i + 1] =
                (struct pollfd){.fd = w->inflight ? w->result_fd : -1, .events = POLLIN};
        }
        if (poll(pfd, (nfds_t)p->n * 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            rc = -1;
            break;
        }
        for (int i = 0; i < p->n && rc == 0; i++) {
            struct npp_worker *w = &p->w[i];
            if (pfd[2 * i].revents) {
                ssize_t k =
                    write(w->task_fd, w->out.p + w->out.off, w->out.len - w->out.off);
                if (k > 0)
                    w->out.off += (size_t)k;
                else if (k < 0 && errno != EAGAIN && errno != EINTR)
                    rc = -1;
            }
            if (!pfd[2 * i + 1].revents)
                continue;
            if (buf_reserve(&w->in, 65536) != 0) {
                rc = -1;
                break;
            }
            ssize_t k = read(w->result_fd, w->in.p + w->in.len, w->in.cap - w->in.len);
            if (k <= 0) {
                if (k == 0 || errno != EINTR)
                    rc = -1;
                continue;
            }
            w->in.len += (size_t)k;
            for (;;) {
                uint32_t len;
                if (w->in.len - w->in.off < sizeof(len))
                    break;
                memcpy(&len, w->in.p + w->in.off, sizeof(len));
                if (w->in.len - w->in.off < sizeof(len) + len) {
                    if (buf_reserve(&w->in, sizeof(len) + len) != 0)
                        rc = -1;
                    break;
                }
                if (w->inflight == 0) { /* an answer nobody asked for */
                    rc = -1;
                    break;
                }
                on_result(ud, w->ring[w->head], w->in.p + w->in.off + sizeof(len), len);
                w->head = (w->head + 1) % NPP_DEPTH;
                w->inflight--;
                w->in.off += sizeof(len) + len;
                done++;
            }
        }
    }
    free(pfd);
    return rc;
}

void npp_free(npp_t *p)
{
    if (!p)
        return;
    for (int i = 0; i < p->n; i++) {
        close(p->w[i].task_fd);
        close(p->w[i].result_fd);
        waitpid(p->w[i].pid, NULL, 0);
        free(p->w[i].out.p);
        free(p->w[i].in.p);
    }
    free(p->w);
    free(p);
}
