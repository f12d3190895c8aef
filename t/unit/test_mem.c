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

#if defined(HAVE_MALLOPT) && defined(M_MMAP_THRESHOLD) && defined(M_TRIM_THRESHOLD)
static size_t heap(void)
{
    return mallinfo2().arena;
}

/* Does a block of n bytes (touched) come from its own mmap()? */
static int mmapped_block(size_t n)
{
    size_t before = mallinfo2().hblkhd;
    char *p = malloc(n);
    int mapped;

    assert_non_null(p);
    memset(p, 1, n);
    mapped = mallinfo2().hblkhd >= before + n;
    free(p);
    return mapped;
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
    size_t peak, after;

    (void)state;
    /* the probe, with glibc's defaults (this process has not changed
     * them): a 512 KiB block is mmapped, and freed heap goes back */
    if (!mmapped_block(512 * KIB)) {
        /* not glibc's allocator (valgrind, ASan): nothing to see. Not
         * cmocka's skip(): its TAP "not ok # SKIP" counts as a failure in
         * automake's driver; the plain run of the suite covers this test */
        print_message("glibc's allocator is not in use: test skipped\n");
        return;
    }
    after = heap_after_free(&peak);
    assert_true(peak >= NBLK * 64 * KIB);
    assert_true(after < peak - 1024 * KIB);

    /* kept: the same block now comes from the heap, and the freed heap
     * stays with the process */
    assert_int_equal(rg_mem_keep_freed(), 1);
    assert_false(mmapped_block(512 * KIB));
    after = heap_after_free(&peak);
    assert_true(after >= peak);

    /* up to 32 MiB (1 MiB and a bit: a 1 MiB message needs such a block) */
    assert_false(mmapped_block(1024 * KIB + 4 * KIB));
    assert_false(mmapped_block(24 * 1024 * KIB));
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
