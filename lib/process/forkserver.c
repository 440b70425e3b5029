/*
 * forkserver.c: the process that forks the workers of one process pool.
 *
 * DESIGN
 * process_pool_executor_new forks the server before the pool starts any
 * thread of its own. The server is single-threaded and stays so: it only
 * polls its socket and a signalfd for SIGCHLD, forks, reaps, and sends
 * fixed-size messages (forkserver.h). A worker forked from it is therefore
 * the child of a single-threaded process, whatever threads the parent has by
 * then (TSan dies if the child of a multi-threaded fork starts a thread).
 *
 * The parent creates each worker's two pipes and passes the worker's ends
 * with SCM_RIGHTS; the server forks, closes its copies and answers SPAWNED
 * with the pid. Every exit is reported as EXITED with the wait status, in
 * order after the SPAWNED of the same pid, and the exited worker is left a
 * zombie until the parent answers REAP: until then its pid is nobody
 * else's, so the parent may kill() a worker it has not heard of as exited
 * without any risk of hitting a process that took the pid over.
 *
 * The server never blocks on a send: its messages wait in a queue (made
 * before the fork, with room for every report its children can owe) until
 * the socket takes them, and it reads requests meanwhile. A parent that
 * sends many SPAWNs before it reads (hundreds of workers at once) therefore
 * cannot fill the socket both ways and hang both sides.
 *
 * The server closes every inherited fd but its socket at start. A worker
 * gets its task and result pipes on the two highest fds under
 * RLIMIT_NOFILE or 1024, 1022 and 1023 by default (close-on-exec; pipes_fd),
 * stdin on /dev/null, fds 1 and 2 as an exec would leave them (else
 * /dev/null: std_fds), and nothing else; its signal dispositions and mask
 * are reset.
 *
 * Parent death: EOF on the socket, or the parent's pidfd readable (its
 * exit, whoever still holds a copy of the socket: a child it forked without
 * exec), makes the server SIGKILL its workers, reap them and exit. Only
 * where there is no pidfd (Linux before 5.3, a seccomp filter) and the
 * pool was created by the main thread does the server ask for SIGKILL at
 * the parent's death instead, and re-check getppid() after asking:
 * PR_SET_PDEATHSIG fires when the creating *thread* exits, so not from
 * other threads, and with a pidfd not even from the main thread, which
 * may pthread_exit() while the others go on using the pool. Workers ask
 * for SIGKILL when the server dies, and exit on EOF of their task pipe.
 *
 * Memory: the server uses only memory allocated before the fork (the child
 * table) and system calls: it may have been forked from a busy multi-threaded
 * process, where another thread held a library lock at the fork.
 */
#include "config.h"

#include <cfutures.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#ifdef HAVE___FPURGE
#include <stdio_ext.h>
#endif
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "blocks.h"
#include "forkserver.h"

#define FS_SOCK_FD 3

/*
 * The child table, in the fork server and in each worker forked from it: a
 * root for leak checkers. Both leave with _exit() and never free it (the
 * server allocates nothing after the fork), and the struct that points at it
 * may live only in registers by then, so valgrind called it "definitely
 * lost" in every server and worker.
 */
static pid_t *volatile kids_root; /* volatile: a store nothing reads must stay */
static struct cf_fs_msg *volatile out_root; /* the message queue, likewise */

struct fs_state {
    int sock;
    int sfd;
    int pidfd; /* readable once the parent exited, or -1 (no pidfd_open) */
    pid_t self;
    pid_t *kids; /* children: pid alive, -pid exited and reported, 0 free */
    int nkids;
    struct cf_fs_msg *out; /* a ring of nout messages: [head, head + nq) wait */
    int nout, head, nq;
    bool stuck; /* a send failed for want of kernel memory: try again soon */
    cf_fs_worker_fn fn;
    void *ud;
};

/* Closes every fd from @from up. */
static void close_from(int from)
{
#ifdef SYS_close_range
    if (syscall(SYS_close_range, (unsigned)from, ~0U, 0) == 0)
        return;
#endif
    struct rlimit rl;
    long max = 65536;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
        max = (long)rl.rlim_cur;
    for (long fd = from; fd < max; fd++)
        close((int)fd);
}

static void reset_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = SIG_DFL;
    sigemptyset(&sa.sa_mask);
    for (int s = 1; s < NSIG; s++)
        if (s != SIGKILL && s != SIGSTOP)
            sigaction(s, &sa, NULL); /* EINVAL for the reserved ones: fine */
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
}

/*
 * Makes fd 0 /dev/null, and fds 1 and 2 /dev/null unless they are open and
 * not close-on-exec: what an exec would leave there is the parent's stdout
 * and stderr. A close-on-exec fd there is one the parent opened after it
 * had closed its own (a daemon): this pool's eventfd, this server's socket
 * (sock, moved to FS_SOCK_FD), which a task's printf must never reach.
 */
static void std_fds(void)
{
    int fd = open("/dev/null", O_RDWR);
    if (fd < 0)
        return;
    for (int i = 0; i <= 2; i++) {
        int fl = fcntl(i, F_GETFD);
        if (i != fd && (i == 0 || fl < 0 || (fl & FD_CLOEXEC)))
            dup2(fd, i);
    }
    if (fd > 2)
        close(fd);
}

/*
 * Where a worker's two pipes go: the two highest fds under RLIMIT_NOFILE,
 * or under 1024 (a larger table costs memory in each worker), or 3 and 4
 * when the limit leaves no room above them. Not 3 and 4 where they fit: a
 * task that writes to a descriptor its parent opened before the pool (fd 3
 * or 4 there, not inherited) gets EBADF, instead of writing into the
 * pool's result pipe (lost bytes and a killed worker).
 */
static int pipes_fd(void)
{
    struct rlimit rl;
    long lim = 1024;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
        (long)rl.rlim_cur < lim)
        lim = (long)rl.rlim_cur;
    return lim >= 16 ? (int)lim - 2 : 3;
}

/* In the new worker: arrange its fds and signals, then run it. */
static void worker_child(struct fs_state *s, int seat, int in_fd, int out_fd)
{
    close(s->sock);
    close(s->sfd);
    if (s->pidfd >= 0)
        close(s->pidfd);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != s->self)
        _exit(1);
    /* Move the pipes above 3 and 4 first: they may sit on either. The
       lowest free fds above: under a limit of 8 to 17 (3 and 4 below 16,
       pipes_fd) fds from 16 up do not exist, and no worker started. */
    int a = fcntl(in_fd, F_DUPFD_CLOEXEC, 5);
    if (a < 0)
        _exit(1);
    close(in_fd);
    int b = fcntl(out_fd, F_DUPFD_CLOEXEC, 5);
    if (b < 0)
        _exit(1);
    close(out_fd);
    if (dup3(a, 3, O_CLOEXEC) < 0 || dup3(b, 4, O_CLOEXEC) < 0)
        _exit(1);
    close_from(5);
    int hi = pipes_fd();
    if (hi > 4) { /* nothing is open there now */
        if (dup3(3, hi, O_CLOEXEC) < 0 || dup3(4, hi + 1, O_CLOEXEC) < 0)
            _exit(1);
        close(3);
        close(4);
    } else {
        hi = 3;
    }
    std_fds();
    reset_signals();
    s->fn(s->ud, seat, hi, hi + 1);
    _exit(0);
}

/*
 * Sends what waits while the socket takes it. A message is dropped only when
 * the parent is gone (EPIPE, ECONNRESET: the poll loop sees the hang-up);
 * one the kernel had no memory for (ENOBUFS, ENOMEM) waits for a retry.
 */
static void flush_out(struct fs_state *s)
{
    s->stuck = false;
    while (s->nq > 0) {
        ssize_t n = send(s->sock, &s->out[s->head], sizeof(s->out[0]),
                         MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        if (n < 0 && errno != EPIPE && errno != ECONNRESET) {
            s->stuck = true;
            return;
        }
        s->head = (s->head + 1) % s->nout;
        s->nq--;
    }
}

/* Queues @m, then sends what the socket takes. */
static void send_msg(struct fs_state *s, const struct cf_fs_msg *m)
{
    if (s->nq == s->nout)
        return; /* cannot happen: cf_forkserver_start's sizes */
    s->out[(s->head + s->nq) % s->nout] = *m;
    s->nq++;
    flush_out(s);
}

static void fork_worker(struct fs_state *s, const struct cf_fs_msg *req, int in_fd,
                        int out_fd)
{
    struct cf_fs_msg rep = {.op = CF_FS_SPAWNED, .seat = req->seat, .gen = req->gen};
    int entry = -1;
    for (int i = 0; i < s->nkids; i++)
        if (s->kids[i] == 0) {
            entry = i;
            break;
        }
    pid_t pid = -1;
    if (entry < 0) {
        rep.err = EAGAIN;
    } else {
        pid = fork();
        if (pid == 0)
            worker_child(s, req->seat, in_fd, out_fd);
        if (pid < 0)
            rep.err = errno;
        else
            s->kids[entry] = pid;
    }
    close(in_fd);
    close(out_fd);
    rep.pid = pid;
    send_msg(s, &rep);
}

/* REAP: the parent has heard of @pid's exit; the zombie may go. */
static void reap_reported(struct fs_state *s, pid_t pid)
{
    if (pid <= 0)
        return;
    for (int i = 0; i < s->nkids; i++)
        if (s->kids[i] == -pid) {
            waitpid(pid, NULL, 0);
            s->kids[i] = 0;
            return;
        }
}

/* One request; false when the parent is gone. */
static bool handle_request(struct fs_state *s)
{
    struct cf_fs_msg m;
    char cbuf[CMSG_SPACE(2 * sizeof(int))];
    struct iovec iov = {.iov_base = &m, .iov_len = sizeof(m)};
    struct msghdr mh = {.msg_iov = &iov,
                        .msg_iovlen = 1,
                        .msg_control = cbuf,
                        .msg_controllen = sizeof(cbuf)};
    ssize_t n;
    do
        n = recvmsg(s->sock, &mh, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
    while (n < 0 && errno == EINTR);
    if (n <= 0)
        return n < 0 && errno == EAGAIN;
    int fds[2] = {-1, -1};
    struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
    if (c && c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS &&
        c->cmsg_len == CMSG_LEN(2 * sizeof(int)))
        memcpy(fds, CMSG_DATA(c), sizeof(fds));
    bool ok = n == (ssize_t)sizeof(m) &&
              (m.op == CF_FS_SPAWN ? fds[0] >= 0 && fds[1] >= 0
                                   : m.op == CF_FS_REAP && fds[0] < 0);
    if (ok && m.op == CF_FS_SPAWN) {
        fork_worker(s, &m, fds[0], fds[1]);
        return true;
    }
    for (int i = 0; i < 2; i++)
        if (fds[i] >= 0)
            close(fds[i]);
    if (ok)
        reap_reported(s, m.pid);
    return ok; /* else: only the parent writes here: it is confused or gone */
}

/* The wait status of an exit waitid() reported in @si. */
static int wait_status(const siginfo_t *si)
{
    if (si->si_code == CLD_EXITED)
        return (si->si_status & 0xff) << 8;
    return (si->si_status & 0x7f) | (si->si_code == CLD_DUMPED ? 0x80 : 0);
}

/* Reports each child that exited, and leaves it a zombie until REAP. */
static void report_exits(struct fs_state *s)
{
    for (int i = 0; i < s->nkids; i++) {
        if (s->kids[i] <= 0)
            continue;
        siginfo_t si;
        memset(&si, 0, sizeof(si));
        if (waitid(P_PID, (id_t)s->kids[i], &si, WEXITED | WNOHANG | WNOWAIT) != 0 ||
            si.si_pid != s->kids[i])
            continue;
        struct cf_fs_msg m = {
            .op = CF_FS_EXITED, .pid = s->kids[i], .status = wait_status(&si)};
        s->kids[i] = -s->kids[i];
        send_msg(s, &m);
    }
}

static void fs_main(struct fs_state *s)
{
    for (;;) {
        /* Requests only while the queue has room for their answers. */
        short ev = (short)((s->nq < s->nout ? POLLIN : 0) |
                           (s->nq > 0 && !s->stuck ? POLLOUT : 0));
        struct pollfd p[3] = {{.fd = s->sock, .events = ev},
                              {.fd = s->sfd, .events = POLLIN},
                              {.fd = s->pidfd, .events = POLLIN}}; /* -1: ignored */
        if (poll(p, 3, s->stuck ? 10 : -1) < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        if (p[2].revents)
            break; /* the parent exited */
        if (p[1].revents) {
            struct signalfd_siginfo si;
            while (read(s->sfd, &si, sizeof(si)) > 0)
                ;
            report_exits(s);
        }
        if ((p[0].revents & POLLOUT) || s->stuck)
            flush_out(s);
        if ((p[0].revents & ~POLLOUT) && !handle_request(s))
            break;
    }
    /* The parent is gone (or closed us): no worker outlives it. */
    for (int i = 0; i < s->nkids; i++)
        if (s->kids[i] > 0)
            kill(s->kids[i], SIGKILL);
    for (int i = 0; i < s->nkids; i++)
        if (s->kids[i] != 0)
            waitpid(s->kids[i] > 0 ? s->kids[i] : -s->kids[i], NULL, 0);
    _exit(0);
}

/*
 * A pidfd of @parent (readable once it has exited), or -1 where the kernel
 * has no pidfd_open. Exits if @parent is gone already: the pid may be
 * another process's by then.
 */
static int parent_pidfd(pid_t parent)
{
    int fd = -1;
#ifdef SYS_pidfd_open
    fd = (int)syscall(SYS_pidfd_open, parent, 0); /* close-on-exec */
#endif
    if (getppid() != parent)
        _exit(0);
    return fd;
}

/* The server's side of the fork: never returns. */
static void fs_child(struct fs_state *s, int sock, pid_t parent, bool pdeath)
{
    reset_signals(); /* no handler of the parent runs here */
    /* The workers' RLIMIT_AS need not count the allocator's range. */
    cf_block_drop_reserve();
#ifdef HAVE___FPURGE
    /* The parent's unwritten stdout and stderr are its own to write: a
       worker flushes these streams (worker.c), and must not write them twice. */
    __fpurge(stdout);
    __fpurge(stderr);
#endif
    sigset_t chld;
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    sigprocmask(SIG_SETMASK, &chld, NULL);
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, NULL);
    if (sock != FS_SOCK_FD) {
        if (dup3(sock, FS_SOCK_FD, O_CLOEXEC) < 0)
            _exit(1);
    }
    s->sock = FS_SOCK_FD;
    kids_root = s->kids;
    out_root = s->out;
    close_from(FS_SOCK_FD + 1);
    std_fds();
    s->sfd = signalfd(-1, &chld, SFD_CLOEXEC | SFD_NONBLOCK);
    if (s->sfd < 0)
        _exit(1);
    s->pidfd = parent_pidfd(parent);
    if (s->pidfd < 0 && pdeath) { /* no pidfd: the creating thread's exit, then */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(0);
    }
    s->self = getpid();
    fs_main(s);
}

int cf_forkserver_start(cf_fs_worker_fn fn, void *ud, int max_children, pid_t *pid,
                        int *sock)
{
    if (max_children <= 0 || max_children > INT_MAX / 2 - 8)
        return FUT_EINVAL;
    /* Each child entry owes at most a SPAWNED and an EXITED, and a refused
       SPAWN (no free entry) a SPAWNED, at most one a seat at a time: three
       messages an entry hold every report that can be due at once. */
    struct fs_state s = {.fn = fn, .ud = ud, .nkids = 2 * max_children + 8};
    s.nout = 3 * s.nkids;
    s.kids = calloc((size_t)s.nkids, sizeof(*s.kids));
    s.out = calloc((size_t)s.nout, sizeof(*s.out));
    if (!s.kids || !s.out) {
        free(s.kids);
        free(s.out);
        return FUT_ENOMEM;
    }
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
        free(s.kids);
        free(s.out);
        return FUT_ESYS;
    }
    pid_t parent = getpid();
    bool main_thread = syscall(SYS_gettid) == parent;
    /* The server blocks every signal it does not reset itself, from the start. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pid_t p = fork();
    if (p == 0) {
        close(sv[0]);
        fs_child(&s, sv[1], parent, main_thread);
    }
    int err = errno;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    free(s.kids);
    free(s.out);
    close(sv[1]);
    if (p < 0) {
        close(sv[0]);
        errno = err;
        return FUT_ESYS;
    }
    *pid = p;
    *sock = sv[0];
    return 0;
}

/* Sends the manager's request @mh (one cf_fs_msg): 0 or FUT_ESYS. */
static int send_request(int sock, const struct msghdr *mh)
{
    ssize_t n;
    do
        n = sendmsg(sock, mh, MSG_NOSIGNAL);
    while (n < 0 && errno == EINTR);
    return n == (ssize_t)sizeof(struct cf_fs_msg) ? 0 : FUT_ESYS;
}

int cf_forkserver_spawn(int sock, int seat, uint32_t gen, int in_fd, int out_fd)
{
    struct cf_fs_msg m = {.op = CF_FS_SPAWN, .seat = seat, .gen = gen};
    char cbuf[CMSG_SPACE(2 * sizeof(int))];
    memset(cbuf, 0, sizeof(cbuf));
    struct iovec iov = {.iov_base = &m, .iov_len = sizeof(m)};
    struct msghdr mh = {.msg_iov = &iov,
                        .msg_iovlen = 1,
                        .msg_control = cbuf,
                        .msg_controllen = sizeof(cbuf)};
    struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(2 * sizeof(int));
    int fds[2] = {in_fd, out_fd};
    memcpy(CMSG_DATA(c), fds, sizeof(fds));
    return send_request(sock, &mh);
}

int cf_forkserver_reap(int sock, pid_t pid)
{
    struct cf_fs_msg m = {.op = CF_FS_REAP, .pid = pid};
    struct iovec iov = {.iov_base = &m, .iov_len = sizeof(m)};
    return send_request(sock, &(struct msghdr){.msg_iov = &iov, .msg_iovlen = 1});
}

int cf_forkserver_recv(int sock, struct cf_fs_msg *m)
{
    ssize_t n;
    do
        n = recv(sock, m, sizeof(*m), MSG_DONTWAIT);
    while (n < 0 && errno == EINTR);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        return 0;
    if (n != (ssize_t)sizeof(*m))
        return -1;
    if (m->op != CF_FS_SPAWNED && m->op != CF_FS_EXITED)
        return -1;
    return 1;
}
