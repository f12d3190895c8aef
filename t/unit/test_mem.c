/*
 * test_mem.c - lib/mem.c: rg_mem_keep_freed (the worker keeps the memory it
 * frees for its next message; doc/performance.md, "Re-runs of 2026-12-07,
 * afternoon").
 *
 * What is checked is glibc's own accounting (mallinfo2): blocks obtained
 * with mmap (hblkhd) and the size of the heap (arena). Under valgrind or
 * ASan another allocator serves malloc and glibc's figures do not move;
 * the probe at the start sees that, and the test then checks nothing.
 */
#include "config.h"

#ifdef HAVE_MALLOC_H
#include <malloc.h>
#endif
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "mem.h"

#define KIB ((size_t)1024)
#define NBLK 48

#if defined(HAVE_MALLOPT) && defined(M_MMAP_THRESHOLD)
static size_t mmapped(void)
{
    return mallinfo2().hblkhd;
}

static size_t heap(void)
{
    return mallinfo2().arena;
}

/* Allocate NBLK blocks of 64 KiB (3 MiB, touched), free them newest
 * first (so that they merge into the top of the heap); the heap size
 * after the frees. */
static size_t heap_after_free(size_t *peak)
{
    char *b[NBLK];

    for (int i = 0; i < NBLK; i++) {
        b[i] = malloc(64 * KIB);
        assert_non_null(b[i]);
        memset(b[i], i, 64 * KIB);
    }
    *peak = heap();
    for (int i = NBLK - 1; i >= 0; i--)
        free(b[i]);
    return heap();
}

static void test_keep_freed(void **state)
{
    size_t before, peak, after;
    char *p;

    (void)state;
    /* the probe, with glibc's defaults (this process has not changed
     * them): a 512 KiB block is mmapped, and freed heap goes back */
    before = mmapped();
    p = malloc(512 * KIB);
    assert_non_null(p);
    if (mmapped() < before + 512 * KIB) {
        /* not glibc's allocator (valgrind, ASan): nothing to see. Not
         * cmocka's skip(): its TAP "not ok # SKIP" counts as a failure in
         * automake's driver; the plain run of the suite covers this test */
        free(p);
        print_message("glibc's allocator is not in use: test skipped\n");
        return;
    }
    free(p);
    after = heap_after_free(&peak);
    assert_true(peak >= NBLK * 64 * KIB);
    assert_true(after < peak - 1024 * KIB);

    /* kept: the same block now comes from the heap, and the freed heap
     * stays with the process */
    assert_int_equal(rg_mem_keep_freed(), 1);
    before = mmapped();
    p = malloc(512 * KIB);
    assert_non_null(p);
    memset(p, 1, 512 * KIB);
    assert_int_equal(mmapped(), before);
    free(p);
    after = heap_after_free(&peak);
    assert_true(after >= peak);

    /* up to 32 MiB (1 MiB and a bit: a 1 MiB message needs such a block) */
    before = mmapped();
    p = malloc(1024 * KIB + 4 * KIB);
    assert_non_null(p);
    assert_int_equal(mmapped(), before);
    free(p);
    p = malloc(24 * 1024 * KIB);
    assert_non_null(p);
    assert_int_equal(mmapped(), before);
    free(p);
}
#else
static void test_keep_freed(void **state)
{
    (void)state;
    assert_int_equal(rg_mem_keep_freed(), 0);
}
#endif

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_keep_freed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
