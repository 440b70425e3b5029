/*
 * faultsim.h: fail the Nth call to malloc, calloc, realloc or pthread_create
 * made by the code linked into a test program (jansson's test_chaos.c, curl's
 * dbg_fail_starts, SQLite's sqlite3FaultSim).
 *
 * No hook in lib/: the test program links the static core library with
 * `-Wl,--wrap=malloc,...` (FAULT_WRAPS in tests/local.mk), so every
 * call the library makes to a wrapped function lands in faultsim.c first.
 * Calls from libc itself (pthread_create's stack, stdio) are not wrapped and
 * never fail. The wrapped calls are counted only while armed; a call that
 * fails sets errno (ENOMEM for allocations, EAGAIN for pthread_create).
 *
 * Armed code must not allocate itself: Check's ck_assert allocates in fork
 * mode, so tests record failures with their own flag while armed and assert
 * once disarmed.
 *
 * A process forked while armed (the process pool's fork server, and the
 * workers it forks) keeps its own copy of the counters: its calls fail at
 * its own Nth call, and are not counted in the parent's.
 *
 * Adding a kind: one enum value here, one wrapper in faultsim.c, one --wrap
 * in FAULT_WRAPS.
 */
#ifndef CF_FAULTSIM_H
#define CF_FAULTSIM_H

#include <stdbool.h>
#include <stddef.h>

enum fault_kind {
    FAULT_ALLOC = 1u << 0,  /* malloc, calloc, realloc: NULL, errno ENOMEM */
    FAULT_THREAD = 1u << 1, /* pthread_create: EAGAIN */
    FAULT_FORK = 1u << 2,   /* fork: -1, EAGAIN */
    FAULT_PIPE = 1u << 3,   /* pipe2, socketpair: -1, EMFILE */
    FAULT_POLL = 1u << 4,   /* poll: -1, EINTR (callers retry) */
};

/*
 * Counts the calls of the @kinds given from now on and fails the @nth one
 * (1-based); with @persistent, that one and every later one. One arming at
 * a time; any thread's calls count.
 */
void fault_arm(unsigned kinds, long nth, bool persistent);

/* Stops counting; returns how many calls of the armed kinds were made. */
long fault_disarm(void);

/* Calls failed since the program started (all armings). */
long fault_total_injected(void);

/*
 * Distinct call sites (return addresses) that got a fault so far, and when
 * CF_FAULT_SITES names a file, appends each new one to it as an offset in
 * the executable (for `addr2line -e tests/check_faults`).
 */
size_t fault_sites(void);

#endif
