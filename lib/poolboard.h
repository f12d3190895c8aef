/*
 * poolboard.h - the pool's scoreboard: one byte per worker in memory that
 * the master and its workers share.
 *
 * A worker marks itself busy or idle with a store into its own slot, not
 * with a write down the status pipe, so the master is not woken twice per
 * connection. The worker wakes it (a status record) only when the pool may
 * need the master: fewer idle workers than min_spare_servers while the pool
 * can still grow, or more than max_spare_servers. The master reads the
 * slots whenever it wakes (a record, a signal, its one-second tick).
 */
#ifndef RG_POOLBOARD_H
#define RG_POOLBOARD_H

#include <stddef.h>

enum rg_slot_state {
    RG_SLOT_FREE = 0,   /* no worker */
    RG_SLOT_IDLE,       /* waiting for a connection */
    RG_SLOT_BUSY,       /* serving one */
    RG_SLOT_OLD,        /* retired or of an older generation: not counted */
};

struct rg_poolboard;

/* A board of `nslots` slots in shared anonymous memory (before the first
 * fork); NULL when it cannot be mapped (the pool then works by records). */
struct rg_poolboard *rg_poolboard_new(size_t nslots);
void rg_poolboard_free(struct rg_poolboard *b);

/* Master: a free slot for a new worker, set to IDLE; -1 when none is free. */
int rg_poolboard_take(struct rg_poolboard *b);
/* Master: the worker of `slot` is gone (reaped): the slot is free again. */
void rg_poolboard_release(struct rg_poolboard *b, int slot);
/* Master: the worker of `slot` is retiring or of an older generation. */
void rg_poolboard_retire(struct rg_poolboard *b, int slot);
enum rg_slot_state rg_poolboard_get(const struct rg_poolboard *b, int slot);

/*
 * Worker: mark `slot` busy (busy != 0) or idle, unless the master retired
 * it, and tell whether the master should look now: 1 when the idle count
 * is below min_spare while fewer than max_servers are working, or above
 * max_spare. Two workers that change state at once both count after their
 * own store, so at least one of them sees the state both leave behind.
 */
int rg_poolboard_mark(struct rg_poolboard *b, int slot, int busy, int min_spare, int max_spare,
                      int max_servers);

#endif
