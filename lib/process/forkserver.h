/*
 * forkserver.h: a single-threaded process, forked once when a process pool
 * is created, that forks each worker on request and reports every exit.
 */
#ifndef CF_FORKSERVER_H
#define CF_FORKSERVER_H

#include <stdint.h>
#include <sys/types.h>

/* The fixed-size messages on the fork server's socket (SOCK_SEQPACKET). */
enum cf_fs_op {
    CF_FS_SPAWN = 1,   /* parent -> server: fork a worker (two fds attached) */
    CF_FS_SPAWNED = 2, /* server -> parent: pid, or pid -1 and err */
    CF_FS_EXITED = 3,  /* server -> parent: pid exited with wait status */
    CF_FS_REAP = 4,    /* parent -> server: EXITED of pid read, reap it */
};

struct cf_fs_msg {
    int32_t op;     /* enum cf_fs_op */
    int32_t seat;   /* SPAWN, SPAWNED: the parent's worker seat */
    int32_t pid;    /* SPAWNED, EXITED, REAP */
    int32_t status; /* EXITED: the wait status */
    int32_t err;    /* SPAWNED with pid -1: errno of fork */
    uint32_t gen;   /* SPAWN, SPAWNED: the parent's worker generation */
};

/*
 * Runs in a new worker process with its task pipe on @in_fd and its result
 * pipe on @out_fd (fds 0-2 valid, stdin /dev/null, no other fd open, signals
 * at their defaults and unblocked). Must leave with _exit().
 */
typedef void (*cf_fs_worker_fn)(void *ud, int seat, int in_fd, int out_fd);

/*
 * Forks the fork server. @max_children bounds the workers alive at once.
 * Returns 0 with *pid and *sock (the parent's end, close-on-exec, blocking),
 * or FUT_ESYS / FUT_ENOMEM with errno set.
 */
int cf_forkserver_start(cf_fs_worker_fn fn, void *ud, int max_children, pid_t *pid,
                        int *sock);

/*
 * Asks for a worker that gets @in_fd and @out_fd (the server keeps copies
 * only until it forked). Returns 0 or FUT_ESYS with errno set.
 */
int cf_forkserver_spawn(int sock, int seat, uint32_t gen, int in_fd, int out_fd);

/*
 * Tells the server the parent has read @pid's EXITED: the zombie is reaped
 * and the pid may be reused from then on. 0 or FUT_ESYS.
 */
int cf_forkserver_reap(int sock, pid_t pid);
/*
 * Reads one message without blocking. Returns 1 (got one), 0 (none now), or
 * -1 (the server is gone, or it sent something malformed).
 */
int cf_forkserver_recv(int sock, struct cf_fs_msg *m);

#endif /* CF_FORKSERVER_H */
