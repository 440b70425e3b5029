/*
 * direct.c: direct sends (internal.h): the cells the manager keeps reserved
 * for them, whether a submit may send directly, taking the submit FIFO in
 * (adopting what was sent so), and the submitter's wake-up of a sleeper.
 * The send itself (cf_pp_direct_send) and the adoption are in claims.c,
 * beside the other sends.
 *
 * Threads: cf_pp_direct_wake on a submitter; the rest on the manager.
 */
#include "config.h"

#include "internal.h"

/*
 * Items taken from the submit FIFO: those sent directly (their claim set:
 * pool.c) into their cells, the rest onto the pending list.
 */
void cf_pp_sort_in(struct process_pool *p, struct cf_work_fifo *q)
{
    struct cf_work_fifo rest = {0};
    for (struct cf_work *cw = q->head, *next; cw; cw = next) {
        next = cw->next;
        cw->next = NULL;
        if (atomic_load_explicit(&work_of(cw)->claim, memory_order_relaxed))
            cf_pp_adopt(p, work_of(cw));
        else
            cf_fifo_push(&rest, cw);
    }
    if (rest.head)
        cf_fifo_merge_prio(&p->pend, &rest);
}

bool cf_pp_take_sub(struct process_pool *p, int seat)
{
    cf_lock(&p->lock);
    if (seat >= 0) {
        cf_pp_withdraw(p, seat);
        /* A death may send a task back to the pending list (its suspect):
           no direct send goes before it (cf_pp_direct_refresh decides again). */
        atomic_store(&p->direct_ok, false);
    }
    struct cf_work_fifo q = cf_fifo_take(&p->sub);
    p->sub_plain = false;
    cf_unlock(&p->lock);
    bool empty = !q.head;
    cf_pp_sort_in(p, &q);
    return empty;
}

/* True if direct sends may take cells of @seat (a worker there takes tasks). */
static bool direct_fit(const struct process_pool *p, int seat, int active)
{
    const struct pp_proc *pr = p->seats[seat];
    return seat < active && pr && !pr->finalized && !pr->quit && cf_pp_usable(pr);
}

void cf_pp_withdraw(struct process_pool *p, int seat)
{
    int k = 0, n = atomic_load_explicit(&p->nresv, memory_order_relaxed);
    for (int j = 0; j < n; j++) {
        size_t idx = (size_t)(p->resv[j] >> 32) - 1;
        int s = (int)(idx / DEPTH);
        if (seat >= 0 && s != seat)
            p->resv[k++] = p->resv[j];
        else
            p->seats[s]->reserved &= ~((uint64_t)1 << (idx % DEPTH));
    }
    atomic_store_explicit(&p->nresv, k, memory_order_relaxed);
}

/* Under `lock`: reserves cells of fit seats up to DIRECT_RESV, a seat at a time. */
static void reserve(struct process_pool *p, int active)
{
    int n = atomic_load_explicit(&p->nresv, memory_order_relaxed);
    bool more = true;
    while (n < DIRECT_RESV && more) {
        more = false;
        for (int s = 0; s < active && n < DIRECT_RESV; s++) {
            struct pp_proc *pr = p->seats[s];
            if (!direct_fit(p, s, active) || cf_pp_cells_full(pr))
                continue;
            int i = __builtin_ctzll(~(pr->used | pr->reserved));
            size_t idx = cell_index(pr, i);
            pr->reserved |= (uint64_t)1 << i;
            /* No answer left from an earlier use can match the new generation. */
            atomic_store_explicit(&p->answers[idx].tag, 0, memory_order_relaxed);
            uint32_t gen = (p->gens[idx] + 1) & CF_CELL_GEN_MASK;
            p->resv[n++] = ((uint64_t)(idx + 1) << 32) | gen;
            more = true;
        }
    }
    atomic_store_explicit(&p->nresv, n, memory_order_relaxed);
}

void cf_pp_direct_refresh(struct process_pool *p)
{
    if (!p->ring)
        return;
    int active = atomic_load_explicit(&p->active, memory_order_relaxed);
    bool ok = !p->pend.head && !atomic_load(&p->prio_seen) &&
              !atomic_load(&p->base.broken) && !atomic_load(&p->stopping);
    bool unfit = false;
    for (int s = 0; s < p->nseats; s++) {
        const struct pp_proc *pr = p->seats[s];
        ok &= !pr || pr->npiped == 0;
        /* A seat past `active` not retired yet (dispatch saw the old size):
           its worker would still take queued tasks. */
        ok &= !pr || s < active || pr->quit || pr->closing || pr->finalized;
        unfit |= pr && pr->reserved && !direct_fit(p, s, active);
    }
    /* Racy reads, settled under the lock: the lock only when something changes. */
    int n = atomic_load_explicit(&p->nresv, memory_order_relaxed);
    if (!unfit && ok == atomic_load_explicit(&p->direct_ok, memory_order_relaxed) &&
        (ok ? n > DIRECT_RESV / 2 : n == 0))
        return;
    cf_lock(&p->lock);
    ok &= !p->sub_plain; /* a submit that could not go direct is older than the next */
    if (!ok) {
        cf_pp_withdraw(p, -1);
    } else {
        for (int s = 0; s < p->nseats; s++)
            if (p->seats[s] && p->seats[s]->reserved && !direct_fit(p, s, active))
                cf_pp_withdraw(p, s);
        reserve(p, active);
    }
    atomic_store(&p->direct_ok, ok);
    cf_unlock(&p->lock);
}

/*
 * After a direct send: wakes one worker sleeping on its futex, if one is
 * (those awake find the task in the queue themselves), looking first where
 * the last one left off so that wake-ups go round.
 */
bool cf_pp_direct_wake(struct process_pool *p)
{
    int active = atomic_load_explicit(&p->active, memory_order_relaxed);
    unsigned first = atomic_load_explicit(&p->wake_rr, memory_order_relaxed);
    for (int k = 0; k < active; k++) {
        int s = (int)((first + (unsigned)k) % (unsigned)active);
        uint32_t v = atomic_load(&p->seatw[s].flags);
        if ((v & (CF_SEAT_ASLEEP | CF_SEAT_QUIT)) == CF_SEAT_ASLEEP &&
            cf_pp_seat_wake(p, s, true)) {
            atomic_store_explicit(&p->wake_rr, (unsigned)s + 1, memory_order_relaxed);
            return true;
        }
    }
    return false;
}
