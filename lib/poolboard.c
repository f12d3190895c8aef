/*
 * poolboard.c - the pool's shared scoreboard; see poolboard.h.
 */
#include "config.h"

#include <stdatomic.h>
#include <sys/mman.h>

#include "poolboard.h"

struct rg_poolboard {
    size_t nslots;
    size_t mapped;                  /* bytes of the mapping */
    _Atomic size_t used;            /* slots [0, used) were ever taken: the scan's end */
    _Atomic unsigned char slot[];   /* enum rg_slot_state */
};

struct rg_poolboard *rg_poolboard_new(size_t nslots)
{
    size_t len = sizeof(struct rg_poolboard) + nslots;
    /* MAP_SHARED | MAP_ANONYMOUS: the same pages in the master and in every
     * worker it forks; zero-filled, so every slot starts FREE */
    struct rg_poolboard *b = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
                                  -1, 0);

    if (b == MAP_FAILED)
        return NULL;
    b->nslots = nslots;
    b->mapped = len;
    return b;
}

void rg_poolboard_free(struct rg_poolboard *b)
{
    if (b)
        munmap(b, b->mapped);
}

int rg_poolboard_take(struct rg_poolboard *b)
{
    if (b == NULL)
        return -1;
    for (size_t i = 0; i < b->nslots; i++)
        if (atomic_load(&b->slot[i]) == RG_SLOT_FREE) {
            atomic_store(&b->slot[i], RG_SLOT_IDLE);
            if (atomic_load(&b->used) < i + 1)
                atomic_store(&b->used, i + 1);
            return (int)i;
        }
    return -1;
}

void rg_poolboard_release(struct rg_poolboard *b, int slot)
{
    if (b && slot >= 0 && (size_t)slot < b->nslots)
        atomic_store(&b->slot[slot], RG_SLOT_FREE);
}

void rg_poolboard_retire(struct rg_poolboard *b, int slot)
{
    if (b && slot >= 0 && (size_t)slot < b->nslots)
        atomic_store(&b->slot[slot], RG_SLOT_OLD);
}

enum rg_slot_state rg_poolboard_get(const struct rg_poolboard *b, int slot)
{
    if (b == NULL || slot < 0 || (size_t)slot >= b->nslots)
        return RG_SLOT_FREE;
    return (enum rg_slot_state)atomic_load(&((struct rg_poolboard *)b)->slot[slot]);
}

int rg_poolboard_mark(struct rg_poolboard *b, int slot, int busy, int min_spare, int max_spare,
                      int max_servers)
{
    unsigned char from = busy ? RG_SLOT_IDLE : RG_SLOT_BUSY;
    int idle = 0, working = 0;

    if (b == NULL || slot < 0 || (size_t)slot >= b->nslots)
        return 1;
    /* a compare-and-swap: a slot the master marked OLD stays OLD (this
     * worker no longer counts, whatever it does until it exits) */
    if (!atomic_compare_exchange_strong(&b->slot[slot], &from,
                                        busy ? RG_SLOT_BUSY : RG_SLOT_IDLE))
        return 0;
    /* sequentially consistent: the store above comes before these loads,
     * in this worker and as any other worker sees it */
    size_t used = atomic_load(&b->used);
    for (size_t i = 0; i < used; i++) {
        unsigned char s = atomic_load(&b->slot[i]);
        idle += s == RG_SLOT_IDLE;
        working += s == RG_SLOT_IDLE || s == RG_SLOT_BUSY;
    }
    return (idle < min_spare && working < max_servers) || idle > max_spare;
}
