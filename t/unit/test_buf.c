/*
 * test_buf.c - unit tests of lib/buf.c: the bounded growable buffer.
 * Every test checks that len never passes max and that the storage never
 * grows beyond max + 1 (the terminating NUL).
 */
#include "config.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "buf.h"

/* The invariants of a buffer after any operation. */
static void check_invariants(const struct rg_buf *b)
{
    assert_true(b->len <= b->max);
    if (b->data != NULL) {
        assert_true(b->cap <= b->max + 1);
        assert_true(b->len < b->cap);
        assert_int_equal(b->data[b->len], 0);
    } else {
        assert_int_equal(b->len, 0);
    }
}

static void test_init_empty(void **state)
{
    struct rg_buf b;

    (void)state;
    rg_buf_init(&b, 100);
    assert_null(b.data);
    assert_int_equal(b.len, 0);
    assert_int_equal(b.cap, 0);
    assert_int_equal(b.max, 100);
    rg_buf_free(&b);
    assert_null(b.data);
}

static void test_append_basic(void **state)
{
    struct rg_buf b;

    (void)state;
    rg_buf_init(&b, 100);
    assert_int_equal(rg_buf_append(&b, "hello", 5), 0);
    assert_int_equal(b.len, 5);
    assert_string_equal(b.data, "hello");
    assert_int_equal(rg_buf_appends(&b, ", world"), 0);
    assert_int_equal(b.len, 12);
    assert_string_equal(b.data, "hello, world");
    check_invariants(&b);
    rg_buf_free(&b);
    assert_null(b.data);
    assert_int_equal(b.len, 0);
}

static void test_append_binary(void **state)
{
    struct rg_buf b;
    const char bin[] = { 'a', 0, 'b', '\r', '\n', (char)0xff };

    (void)state;
    rg_buf_init(&b, 10);
    assert_int_equal(rg_buf_append(&b, bin, sizeof(bin)), 0);
    assert_int_equal(b.len, sizeof(bin));
    assert_memory_equal(b.data, bin, sizeof(bin));
    check_invariants(&b);
    rg_buf_free(&b);
}

static void test_append_zero_bytes(void **state)
{
    struct rg_buf b;

    (void)state;
    rg_buf_init(&b, 0);
    assert_int_equal(rg_buf_append(&b, "", 0), 0);
    assert_int_equal(b.len, 0);
    assert_non_null(b.data);
    assert_string_equal(b.data, "");
    check_invariants(&b);
    assert_int_equal(rg_buf_append(&b, "x", 1), -1);
    assert_int_equal(b.len, 0);
    check_invariants(&b);
    rg_buf_free(&b);
}

static void test_append_limit_exact(void **state)
{
    struct rg_buf b;

    (void)state;
    rg_buf_init(&b, 10);
    assert_int_equal(rg_buf_append(&b, "hello", 5), 0);
    /* 6 more would make 11 > 10: refused, buffer unchanged */
    assert_int_equal(rg_buf_append(&b, "123456", 6), -1);
    assert_int_equal(b.len, 5);
    assert_string_equal(b.data, "hello");
    check_invariants(&b);
    /* exactly up to the limit is fine */
    assert_int_equal(rg_buf_append(&b, "12345", 5), 0);
    assert_int_equal(b.len, 10);
    assert_string_equal(b.data, "hello12345");
    check_invariants(&b);
    /* and not one byte more */
    assert_int_equal(rg_buf_append(&b, "x", 1), -1);
    assert_int_equal(rg_buf_appends(&b, "x"), -1);
    assert_int_equal(b.len, 10);
    assert_string_equal(b.data, "hello12345");
    check_invariants(&b);
    rg_buf_free(&b);
}

static void test_append_huge_n_no_overflow(void **state)
{
    struct rg_buf b;

    (void)state;
    rg_buf_init(&b, 10);
    assert_int_equal(rg_buf_append(&b, "abc", 3), 0);
    /* n so large that len + n wraps around: must be refused, not wrap */
    assert_int_equal(rg_buf_append(&b, "abc", SIZE_MAX - 1), -1);
    assert_int_equal(rg_buf_append(&b, "abc", SIZE_MAX), -1);
    assert_int_equal(b.len, 3);
    assert_string_equal(b.data, "abc");
    check_invariants(&b);
    rg_buf_free(&b);
}

static void test_append_bytewise_never_exceeds(void **state)
{
    struct rg_buf b;
    size_t maxes[] = { 1, 63, 64, 65, 70, 127, 128, 129, 1000 };

    (void)state;
    for (size_t m = 0; m < sizeof(maxes) / sizeof(maxes[0]); m++) {
        rg_buf_init(&b, maxes[m]);
        for (size_t i = 0; i < maxes[m]; i++) {
            char c = (char)('a' + i % 26);
            assert_int_equal(rg_buf_append(&b, &c, 1), 0);
            assert_int_equal(b.len, i + 1);
            assert_int_equal(b.data[i], c);
            check_invariants(&b);
        }
        assert_int_equal(rg_buf_append(&b, "z", 1), -1);
        assert_int_equal(b.len, maxes[m]);
        check_invariants(&b);
        for (size_t i = 0; i < maxes[m]; i++)
            assert_int_equal(b.data[i], (char)('a' + i % 26));
        rg_buf_free(&b);
    }
}

static void test_printf_small(void **state)
{
    struct rg_buf b;

    (void)state;
    rg_buf_init(&b, 100);
    assert_int_equal(rg_buf_printf(&b, "%d-%s", 42, "x"), 0);
    assert_string_equal(b.data, "42-x");
    assert_int_equal(b.len, 4);
    assert_int_equal(rg_buf_printf(&b, "[%05d]", 7), 0);
    assert_string_equal(b.data, "42-x[00007]");
    assert_int_equal(b.len, 11);
    assert_int_equal(rg_buf_printf(&b, "%s", ""), 0);
    assert_int_equal(b.len, 11);
    check_invariants(&b);
    rg_buf_free(&b);
}

static void test_printf_limit(void **state)
{
    struct rg_buf b;

    (void)state;
    rg_buf_init(&b, 8);
    assert_int_equal(rg_buf_printf(&b, "%s", "1234"), 0);
    assert_int_equal(rg_buf_printf(&b, "%d", 12345), -1);     /* 9 > 8 */
    assert_int_equal(b.len, 4);
    assert_string_equal(b.data, "1234");
    assert_int_equal(rg_buf_printf(&b, "%d", 5678), 0);       /* exactly 8 */
    assert_string_equal(b.data, "12345678");
    assert_int_equal(rg_buf_printf(&b, "%s", "x"), -1);
    assert_string_equal(b.data, "12345678");
    check_invariants(&b);
    rg_buf_free(&b);
}

static void test_printf_large(void **state)
{
    struct rg_buf b;
    char big[3001];

    (void)state;
    memset(big, 'q', 3000);
    big[3000] = 0;
    rg_buf_init(&b, 5000);
    assert_int_equal(rg_buf_appends(&b, "<"), 0);
    /* more than the 512-byte stack buffer of rg_buf_printf */
    assert_int_equal(rg_buf_printf(&b, "%s|%d", big, 99), 0);
    assert_int_equal(b.len, 1 + 3000 + 3);
    assert_int_equal(b.data[0], '<');
    assert_memory_equal(b.data + 1, big, 3000);
    assert_string_equal(b.data + 3001, "|99");
    check_invariants(&b);
    /* a second large one that does not fit: refused, unchanged */
    assert_int_equal(rg_buf_printf(&b, "%s", big), -1);
    assert_int_equal(b.len, 3004);
    assert_string_equal(b.data + 3001, "|99");
    check_invariants(&b);
    rg_buf_free(&b);
}

static void test_printf_large_exact_limit(void **state)
{
    struct rg_buf b;
    char big[1001];

    (void)state;
    memset(big, 'x', 1000);
    big[1000] = 0;
    rg_buf_init(&b, 1000);
    assert_int_equal(rg_buf_printf(&b, "%s", big), 0);
    assert_int_equal(b.len, 1000);
    assert_string_equal(b.data, big);
    check_invariants(&b);
    rg_buf_reset(&b);
    assert_int_equal(rg_buf_printf(&b, "%sy", big), -1);
    assert_int_equal(b.len, 0);
    check_invariants(&b);
    rg_buf_free(&b);
}

static void test_consume(void **state)
{
    struct rg_buf b;

    (void)state;
    rg_buf_init(&b, 100);
    assert_int_equal(rg_buf_appends(&b, "MAIL FROM:<a@b>\r\nRCPT"), 0);
    rg_buf_consume(&b, 17);
    assert_int_equal(b.len, 4);
    assert_string_equal(b.data, "RCPT");
    check_invariants(&b);
    rg_buf_consume(&b, 0);
    assert_string_equal(b.data, "RCPT");
    rg_buf_consume(&b, 1);
    assert_string_equal(b.data, "CPT");
    assert_int_equal(b.len, 3);
    rg_buf_consume(&b, 3);             /* exactly all */
    assert_int_equal(b.len, 0);
    assert_string_equal(b.data, "");
    assert_int_equal(rg_buf_appends(&b, "xyz"), 0);
    rg_buf_consume(&b, 1000);          /* more than all */
    assert_int_equal(b.len, 0);
    assert_string_equal(b.data, "");
    check_invariants(&b);
    /* consuming an unallocated buffer is harmless */
    rg_buf_free(&b);
    rg_buf_consume(&b, 5);
    assert_int_equal(b.len, 0);
    rg_buf_free(&b);
}

static void test_consume_then_fill_to_max(void **state)
{
    struct rg_buf b;

    (void)state;
    rg_buf_init(&b, 6);
    assert_int_equal(rg_buf_appends(&b, "abcdef"), 0);
    rg_buf_consume(&b, 2);
    /* consuming frees room up to max again */
    assert_int_equal(rg_buf_appends(&b, "gh"), 0);
    assert_string_equal(b.data, "cdefgh");
    assert_int_equal(rg_buf_appends(&b, "i"), -1);
    check_invariants(&b);
    rg_buf_free(&b);
}

static void test_reset(void **state)
{
    struct rg_buf b;

    (void)state;
    rg_buf_init(&b, 20);
    rg_buf_reset(&b);                  /* on an empty buffer */
    assert_null(b.data);
    assert_int_equal(b.len, 0);
    assert_int_equal(rg_buf_appends(&b, "0123456789"), 0);
    rg_buf_reset(&b);
    assert_int_equal(b.len, 0);
    assert_non_null(b.data);
    assert_string_equal(b.data, "");
    assert_int_equal(b.max, 20);
    /* the whole max is available again after a reset */
    assert_int_equal(rg_buf_appends(&b, "01234567890123456789"), 0);
    assert_int_equal(b.len, 20);
    assert_int_equal(rg_buf_appends(&b, "x"), -1);
    check_invariants(&b);
    rg_buf_free(&b);
    /* a freed buffer can be used again with the same max */
    assert_int_equal(rg_buf_appends(&b, "again"), 0);
    assert_string_equal(b.data, "again");
    rg_buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_init_empty),
        cmocka_unit_test(test_append_basic),
        cmocka_unit_test(test_append_binary),
        cmocka_unit_test(test_append_zero_bytes),
        cmocka_unit_test(test_append_limit_exact),
        cmocka_unit_test(test_append_huge_n_no_overflow),
        cmocka_unit_test(test_append_bytewise_never_exceeds),
        cmocka_unit_test(test_printf_small),
        cmocka_unit_test(test_printf_limit),
        cmocka_unit_test(test_printf_large),
        cmocka_unit_test(test_printf_large_exact_limit),
        cmocka_unit_test(test_consume),
        cmocka_unit_test(test_consume_then_fill_to_max),
        cmocka_unit_test(test_reset),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
