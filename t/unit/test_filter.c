/*
 * test_filter.c - unit tests of lib/filter.c: the single SMTP reply that
 * summarizes per-recipient outcomes (temporary beats permanent beats
 * success, so that no copy is lost).
 */
#include "config.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "filter.h"

#define OK1 "250 2.0.0 Ok: queued as AAA"
#define OK2 "250 2.0.0 Ok: queued as BBB"
#define TEMP1 "451 4.3.0 Error: try again"
#define TEMP2 "421 4.4.2 Error: timeout"
#define PERM1 "550 5.1.1 User unknown"
#define PERM2 "554 5.7.1 Rejected"

static struct rg_reply rep(int code, const char *text)
{
    struct rg_reply r;

    memset(&r, 0, sizeof(r));
    r.code = code;
    strcpy(r.text, text);
    return r;
}

static void expect_summary(const struct rg_reply *per, size_t n, int code, const char *text)
{
    struct rg_reply s;

    memset(&s, 0x55, sizeof(s));
    rg_filter_summarize(per, n, &s);
    assert_int_equal(s.code, code);
    assert_string_equal(s.text, text);
}

static void test_all_success(void **state)
{
    struct rg_reply per[3];

    (void)state;
    per[0] = rep(250, OK1);
    per[1] = rep(250, OK2);
    per[2] = rep(250, OK1);
    expect_summary(per, 3, 250, OK1);
    expect_summary(per + 1, 1, 250, OK2);
}

static void test_success_and_temporary(void **state)
{
    struct rg_reply per[3];

    (void)state;
    per[0] = rep(250, OK1);
    per[1] = rep(451, TEMP1);
    per[2] = rep(250, OK2);
    expect_summary(per, 3, 451, TEMP1);
    /* the first temporary failure is the one reported */
    per[0] = rep(421, TEMP2);
    expect_summary(per, 3, 421, TEMP2);
}

static void test_success_and_permanent(void **state)
{
    struct rg_reply per[3];

    (void)state;
    per[0] = rep(250, OK1);
    per[1] = rep(250, OK2);
    per[2] = rep(550, PERM1);
    expect_summary(per, 3, 550, PERM1);
    per[1] = rep(554, PERM2);
    expect_summary(per, 3, 554, PERM2);
}

static void test_temporary_and_permanent(void **state)
{
    struct rg_reply per[4];

    (void)state;
    per[0] = rep(550, PERM1);
    per[1] = rep(451, TEMP1);
    expect_summary(per, 2, 451, TEMP1);
    per[0] = rep(451, TEMP1);
    per[1] = rep(550, PERM1);
    expect_summary(per, 2, 451, TEMP1);
    per[0] = rep(250, OK1);
    per[1] = rep(554, PERM2);
    per[2] = rep(250, OK2);
    per[3] = rep(421, TEMP2);
    expect_summary(per, 4, 421, TEMP2);
}

static void test_all_failed(void **state)
{
    struct rg_reply per[2];

    (void)state;
    per[0] = rep(550, PERM1);
    per[1] = rep(554, PERM2);
    expect_summary(per, 2, 550, PERM1);
    per[0] = rep(451, TEMP1);
    per[1] = rep(421, TEMP2);
    expect_summary(per, 2, 451, TEMP1);
}

static void test_empty(void **state)
{
    struct rg_reply per[1];

    (void)state;
    per[0] = rep(250, OK1);
    expect_summary(per, 0, 451, "451 4.3.0 Error: no recipients");
    expect_summary(NULL, 0, 451, "451 4.3.0 Error: no recipients");
}

static void test_odd_codes_are_temporary(void **state)
{
    struct rg_reply per[2];

    (void)state;
    /* anything that is neither 2xx nor 5xx must not count as delivered */
    per[0] = rep(250, OK1);
    per[1] = rep(354, "354 End data with <CR><LF>.<CR><LF>");
    expect_summary(per, 2, 354, "354 End data with <CR><LF>.<CR><LF>");
    per[1] = rep(0, "");
    expect_summary(per, 2, 0, "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_all_success),
        cmocka_unit_test(test_success_and_temporary),
        cmocka_unit_test(test_success_and_permanent),
        cmocka_unit_test(test_temporary_and_permanent),
        cmocka_unit_test(test_all_failed),
        cmocka_unit_test(test_empty),
        cmocka_unit_test(test_odd_codes_are_temporary),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
