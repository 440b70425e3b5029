/*
 * pump.h: an outside event source served on a process pool's own manager
 * thread, for a caller that feeds the pool from something poll() cannot
 * wait for (lib/mpi's relay: MPI messages). Internal to the library.
 *
 * DESIGN
 * The manager calls the pump once per pass, first, before it takes in
 * submits: what the pump submits goes out in the same pass, with no
 * wake-up, and what completes in the pass (done-callbacks, on the manager)
 * is seen by the next call. The pump returns how long the manager may then
 * sleep before calling it again: 0 to spin (poll without waiting, yield the
 * CPU, go round), a number of nanoseconds for a nap (ppoll, so a nap under
 * a millisecond is one), or CF_NO_DEADLINE for no bound of its own (a
 * negative number counts as 0). A worker's answer or a deadline still
 * wakes the manager as without a pump. A future completed later in a pass
 * (a deadline, say) is seen by the next call only if something pokes
 * (cf_pp_pump_poke) or the pump's wait runs out: the pump's done-callbacks
 * poke. A pumped pool that breaks keeps its manager (and so the pump)
 * running until shutdown: submits fail FUT_EBROKEN, the source is still
 * served.
 */
#ifndef CF_PROCESS_PUMP_H
#define CF_PROCESS_PUMP_H

#include <stdint.h>

#include "executor.h"

typedef int64_t (*cf_pp_pump_fn)(void *ud);

/*
 * Installs @fn(@ud) on process pool @ex (once; from any thread) and wakes
 * its manager. 0; FUT_EINVAL (not a process pool, no @fn, a pump already);
 * FUT_EBROKEN (the pool broke, or was shut down, and its manager left: no
 * pump will ever run).
 */
int cf_pp_set_pump(executor_t *ex, cf_pp_pump_fn fn, void *ud);

/*
 * On @ex's manager thread (a done-callback): call the pump again before
 * sleeping. No wake-up: from another thread it may go unseen until the
 * manager's next pass. Anything but a process pool is ignored.
 */
void cf_pp_pump_poke(executor_t *ex);

/*
 * process_pool_executor_new(@o) whose tasks' results are at most
 * @result_max bytes (the process pool's own maximum, CF_WIRE_MAX_PAYLOAD, if
 * larger): a larger one fails FUT_ETASK with E2BIG in the worker, before
 * it is sent (lib/mpi: what one MPI message can carry).
 */
executor_t *cf_pp_new(const executor_options_t *o, uint64_t result_max);

#ifdef CF_TEST_HOOKS
/* Tests: executor_terminate_workers was asked, and the manager has not acted yet. */
bool cf_test_kill_asked(executor_t *ex);
#endif

#endif /* CF_PROCESS_PUMP_H */
