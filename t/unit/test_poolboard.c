/*
 * test_poolboard.c - unit tests of lib/poolboard.c: slots are handed out
 * and reused, a worker's mark says when the master must look (and only
 * then), a retired slot stays retired, and the board is shared across
 * fork().
 */
#include "config.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <sys/wait.h>
#include <unistd.h>

#include "poolboard.h"

static void test_take_release(void **state)
{
    struct rg_poolboard *b = rg_poolboard_new(3);

    (void)state;
    assert_non_null(b);
    assert_int_equal(rg_poolboard_take(b), 0);
    assert_int_equal(rg_poolboard_take(b), 1);
    assert_int_equal(rg_poolboard_take(b), 2);
    assert_int_equal(rg_poolboard_take(b), -1);         /* full */
    assert_int_equal(rg_poolboard_get(b, 1), RG_SLOT_IDLE);
    rg_poolboard_release(b, 1);
    assert_int_equal(rg_poolboard_get(b, 1), RG_SLOT_FREE);
    assert_int_equal(rg_poolboard_take(b), 1);          /* reused */
    /* out of range is harmless */
    rg_poolboard_release(b, 7);
    rg_poolboard_retire(b, -1);
    assert_int_equal(rg_poolboard_get(b, 99), RG_SLOT_FREE);
    rg_poolboard_free(b);
}

/* min_spare 1, max_spare 2: the master is needed only when the idle count
 * leaves [1, 2], and for too few only while the pool may grow */
static void test_mark_wakes_master_only_when_needed(void **state)
{
    struct rg_poolboard *b = rg_poolboard_new(8);
    int s[4];

    (void)state;
    for (int i = 0; i < 3; i++)
        s[i] = rg_poolboard_take(b);
    /* 3 idle (already above max_spare 2: the master's own count sees that) */
    assert_int_equal(rg_poolboard_mark(b, s[0], 1, 1, 2, 3), 0);   /* idle 2 */
    assert_int_equal(rg_poolboard_get(b, s[0]), RG_SLOT_BUSY);
    assert_int_equal(rg_poolboard_mark(b, s[1], 1, 1, 2, 3), 0);   /* idle 1 */
    /* idle 0 < 1, but 3 of max_servers 3 work: nothing to fork */
    assert_int_equal(rg_poolboard_mark(b, s[2], 1, 1, 2, 3), 0);
    /* the same with room for one more: wake the master */
    assert_int_equal(rg_poolboard_mark(b, s[2], 0, 1, 2, 4), 0);   /* idle 1 */
    assert_int_equal(rg_poolboard_mark(b, s[2], 1, 1, 2, 4), 1);   /* idle 0 */
    /* back to idle: 1, 2 fine; 3 > max_spare 2 wakes it */
    assert_int_equal(rg_poolboard_mark(b, s[0], 0, 1, 2, 4), 0);
    assert_int_equal(rg_poolboard_mark(b, s[1], 0, 1, 2, 4), 0);
    assert_int_equal(rg_poolboard_mark(b, s[2], 0, 1, 2, 4), 1);
    /* a fourth worker, idle: 4 idle > 2 */
    s[3] = rg_poolboard_take(b);
    assert_int_equal(rg_poolboard_mark(b, s[3], 1, 1, 2, 4), 1);   /* busy: idle 3 */
    rg_poolboard_free(b);
}

static void test_retired_slot_stays_retired(void **state)
{
    struct rg_poolboard *b = rg_poolboard_new(4);
    int a = rg_poolboard_take(b), c = rg_poolboard_take(b);

    (void)state;
    rg_poolboard_retire(b, a);
    /* the retiring worker still serves one connection: no wake-up, no count */
    assert_int_equal(rg_poolboard_mark(b, a, 1, 1, 1, 2), 0);
    assert_int_equal(rg_poolboard_get(b, a), RG_SLOT_OLD);
    assert_int_equal(rg_poolboard_mark(b, a, 0, 1, 1, 2), 0);
    assert_int_equal(rg_poolboard_get(b, a), RG_SLOT_OLD);
    /* the other one going busy leaves no idle worker and one of two
     * working (the OLD one is not counted): the master can fork */
    assert_int_equal(rg_poolboard_mark(b, c, 1, 1, 1, 2), 1);
    rg_poolboard_release(b, a);
    assert_int_equal(rg_poolboard_get(b, a), RG_SLOT_FREE);
    rg_poolboard_free(b);
}

/* no board (it could not be mapped) or no slot: every change is reported */
static void test_without_board(void **state)
{
    (void)state;
    assert_int_equal(rg_poolboard_take(NULL), -1);
    assert_int_equal(rg_poolboard_mark(NULL, 0, 1, 1, 1, 1), 1);
    struct rg_poolboard *b = rg_poolboard_new(2);
    assert_int_equal(rg_poolboard_mark(b, -1, 1, 1, 1, 1), 1);
    rg_poolboard_free(b);
}

/* what a forked worker stores, the master sees */
static void test_shared_across_fork(void **state)
{
    struct rg_poolboard *b = rg_poolboard_new(4);
    int slot = rg_poolboard_take(b), status;
    pid_t pid;

    (void)state;
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        _exit(rg_poolboard_mark(b, slot, 1, 0, 4, 4) == 0 ? 0 : 1);
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    assert_int_equal(rg_poolboard_get(b, slot), RG_SLOT_BUSY);
    rg_poolboard_free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_take_release),
        cmocka_unit_test(test_mark_wakes_master_only_when_needed),
        cmocka_unit_test(test_retired_slot_stays_retired),
        cmocka_unit_test(test_without_board),
        cmocka_unit_test(test_shared_across_fork),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
