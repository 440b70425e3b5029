/*
 * faultsim.c: the --wrap shims of faultsim.h. Lock free: library threads
 * call them concurrently. Only counters and a small table of call sites;
 * nothing here allocates.
 */
#define _GNU_SOURCE
#include "faultsim.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t n);
int __real_pthread_create(pthread_t *t, const pthread_attr_t *a, void *(*fn)(void *),
                          void *arg);
pid_t __real_fork(void);
int __real_pipe2(int fds[2], int flags);
int __real_socketpair(int domain, int type, int protocol, int sv[2]);
int __real_poll(struct pollfd *fds, nfds_t n, int timeout);
pid_t __wrap_fork(void);
int __wrap_pipe2(int fds[2], int flags);
int __wrap_socketpair(int domain, int type, int protocol, int sv[2]);
int __wrap_poll(struct pollfd *fds, nfds_t n, int timeout);
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t n, size_t size);
void *__wrap_realloc(void *p, size_t n);
int __wrap_pthread_create(pthread_t *t, const pthread_attr_t *a, void *(*fn)(void *),
                          void *arg);

static _Atomic unsigned armed_kinds; /* 0: disarmed */
static _Atomic long nth_call;
static _Atomic bool persistent_mode;
static _Atomic long calls;    /* calls of the armed kinds since fault_arm */
static _Atomic long injected; /* since the program started */

#define MAX_SITES 256
static _Atomic uintptr_t sites[MAX_SITES];
static _Atomic size_t nsites;

void fault_arm(unsigned kinds, long nth, bool persistent)
{
    atomic_store(&calls, 0);
    atomic_store(&nth_call, nth);
    atomic_store(&persistent_mode, persistent);
    atomic_store(&armed_kinds, kinds);
}

long fault_disarm(void)
{
    atomic_store(&armed_kinds, 0);
    return atomic_load(&calls);
}

long fault_total_injected(void)
{
    return atomic_load(&injected);
}

size_t fault_sites(void)
{
    return atomic_load(&nsites);
}

/* Appends a new site to $CF_FAULT_SITES as an offset into its object. */
static void log_site(uintptr_t pc)
{
    const char *path = getenv("CF_FAULT_SITES");
    if (!path || !*path)
        return;
    Dl_info info;
    uintptr_t off = pc;
    if (dladdr((void *)pc, &info) && info.dli_fbase)
        off = pc - (uintptr_t)info.dli_fbase;
    char line[40];
    /* The call's own address (pc - 1) names the line that called. */
    int len = snprintf(line, sizeof(line), "0x%lx\n", (unsigned long)(off - 1));
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0)
        return;
    ssize_t w = write(fd, line, (size_t)len);
    (void)w;
    close(fd);
}

static void record_site(uintptr_t pc)
{
    size_t n = atomic_load(&nsites);
    for (size_t i = 0; i < n && i < MAX_SITES; i++)
        if (atomic_load(&sites[i]) == pc)
            return;
    /* Claim a slot; a racing duplicate only costs one extra entry. */
    size_t i = atomic_fetch_add(&nsites, 1);
    if (i >= MAX_SITES) {
        atomic_store(&nsites, MAX_SITES);
        return;
    }
    atomic_store(&sites[i], pc);
    log_site(pc);
}

/* True if this call of @kind must fail. */
static bool should_fail(unsigned kind, void *caller)
{
    if (!(atomic_load_explicit(&armed_kinds, memory_order_acquire) & kind))
        return false;
    long c = atomic_fetch_add(&calls, 1) + 1;
    long nth = atomic_load(&nth_call);
    if (c != nth && !(c > nth && atomic_load(&persistent_mode)))
        return false;
    atomic_fetch_add(&injected, 1);
    record_site((uintptr_t)caller);
    return true;
}

void *__wrap_malloc(size_t n)
{
    if (should_fail(FAULT_ALLOC, __builtin_return_address(0))) {
        errno = ENOMEM;
        return NULL;
    }
    return __real_malloc(n);
}

void *__wrap_calloc(size_t n, size_t size)
{
    if (should_fail(FAULT_ALLOC, __builtin_return_address(0))) {
        errno = ENOMEM;
        return NULL;
    }
    return __real_calloc(n, size);
}

void *__wrap_realloc(void *p, size_t n)
{
    if (should_fail(FAULT_ALLOC, __builtin_return_address(0))) {
        errno = ENOMEM;
        return NULL;
    }
    return __real_realloc(p, n);
}

int __wrap_pthread_create(pthread_t *t, const pthread_attr_t *a, void *(*fn)(void *),
                          void *arg)
{
    if (should_fail(FAULT_THREAD, __builtin_return_address(0)))
        return EAGAIN;
    return __real_pthread_create(t, a, fn, arg);
}

pid_t __wrap_fork(void)
{
    if (should_fail(FAULT_FORK, __builtin_return_address(0))) {
        errno = EAGAIN;
        return -1;
    }
    return __real_fork();
}

int __wrap_pipe2(int fds[2], int flags)
{
    if (should_fail(FAULT_PIPE, __builtin_return_address(0))) {
        errno = EMFILE;
        return -1;
    }
    return __real_pipe2(fds, flags);
}

int __wrap_socketpair(int domain, int type, int protocol, int sv[2])
{
    if (should_fail(FAULT_PIPE, __builtin_return_address(0))) {
        errno = EMFILE;
        return -1;
    }
    return __real_socketpair(domain, type, protocol, sv);
}

int __wrap_poll(struct pollfd *fds, nfds_t n, int timeout)
{
    if (should_fail(FAULT_POLL, __builtin_return_address(0))) {
        errno = EINTR;
        return -1;
    }
    return __real_poll(fds, n, timeout);
}
