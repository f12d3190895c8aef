/*
 * test_routestate.c - unit tests of lib/routestate.c: the fingerprint of a
 * route's rules and lists follows every byte that regigated loads and
 * nothing else, the rules record survives a round trip, and the provider
 * contact file is touched at most once a minute.
 */
#include "config.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mem.h"
#include "routestate.h"

static char dir[64];

static void put(const char *name, const char *text)
{
    char *path = rg_sprintf("%s/%s", dir, name);
    FILE *fp = fopen(path, "w");

    assert_non_null(fp);
    fputs(text, fp);
    fclose(fp);
    rg_free(path);
}

static void fingerprint(char hex[65])
{
    char *rules = rg_sprintf("%s/rules.json", dir), *lists = rg_sprintf("%s/lists", dir), err[256];

    assert_int_equal(rg_routestate_fingerprint(rules, lists, hex, err, sizeof(err)), 0);
    assert_int_equal(strlen(hex), 64);
    rg_free(rules);
    rg_free(lists);
}

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/rg-test-routestate.XXXXXX");
    assert_non_null(mkdtemp(dir));
    return 0;
}

static int teardown(void **state)
{
    char cmd[128];

    (void)state;
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static void test_path(void **state)
{
    char *p = rg_routestate_path("/var/spool/regigate", "out", "rules");

    (void)state;
    assert_string_equal(p, "/var/spool/regigate/route-out.rules");
    rg_free(p);
}

static void test_fingerprint(void **state)
{
    char a[65], b[65], err[256], *lists = rg_sprintf("%s/lists", dir), *missing;

    (void)state;
    put("rules.json", "{}\n");
    fingerprint(a);                     /* lists_dir missing: no lists */
    fingerprint(b);
    assert_string_equal(a, b);
    assert_int_equal(mkdir(lists, 0700), 0);
    fingerprint(b);
    assert_string_equal(a, b);          /* an empty lists_dir is the same */
    put("rules.json", "{ }\n");
    fingerprint(b);
    assert_string_not_equal(a, b);      /* every byte of the rules */
    put("rules.json", "{}\n");
    put("lists/blocked", "x@example.com\n");
    fingerprint(b);
    assert_string_not_equal(a, b);      /* a list added */
    memcpy(a, b, sizeof(a));
    put("lists/blocked", "y@example.com\n");
    fingerprint(b);
    assert_string_not_equal(a, b);      /* a list's content */
    memcpy(a, b, sizeof(a));
    put("lists/.blocked.tmp123", "junk\n");
    fingerprint(b);
    assert_string_equal(a, b);          /* temporary files do not count */
    /* no rule file: the empty rule set, not an error */
    assert_int_equal(rg_routestate_fingerprint(NULL, NULL, b, err, sizeof(err)), 0);
    missing = rg_sprintf("%s/nosuch.json", dir);
    assert_int_equal(rg_routestate_fingerprint(missing, NULL, b, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "cannot read"));
    rg_free(missing);
    rg_free(lists);
}

static void test_rules_record(void **state)
{
    struct rg_routestate_rules w, r;
    char *path = rg_routestate_path(dir, "out", "rules");
    struct stat st;

    (void)state;
    memset(&w, 0, sizeof(w));
    memset(w.fingerprint, 'a', 64);
    w.nrules = 3;
    w.loaded = 1700000000;
    assert_int_equal(rg_routestate_write_rules(path, &w), 0);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(rg_routestate_read_rules(path, &r), 0);
    assert_string_equal(r.fingerprint, w.fingerprint);
    assert_int_equal(r.nrules, 3);
    assert_int_equal(r.loaded, 1700000000);
    put("route-out.rules", "fingerprint xyz\n");
    assert_int_equal(rg_routestate_read_rules(path, &r), -1);
    unlink(path);
    assert_int_equal(rg_routestate_read_rules(path, &r), -1);
    assert_int_equal(errno, ENOENT);
    rg_free(path);
}

static void test_touch(void **state)
{
    char *path = rg_routestate_path(dir, "out", "provider"), *bad;
    time_t last = 0, when = 0, t0 = 1700000000;

    (void)state;
    assert_int_equal(rg_routestate_last_contact(path, &when), -1);
    assert_int_equal(errno, ENOENT);
    assert_int_equal(rg_routestate_touch(path, t0, &last), 1);
    assert_int_equal(last, t0);
    assert_int_equal(rg_routestate_last_contact(path, &when), 0);
    assert_int_equal(when, t0);
    /* within a minute: nothing */
    assert_int_equal(rg_routestate_touch(path, t0 + 59, &last), 0);
    assert_int_equal(rg_routestate_last_contact(path, &when), 0);
    assert_int_equal(when, t0);
    /* a minute later: touched */
    assert_int_equal(rg_routestate_touch(path, t0 + 60, &last), 1);
    assert_int_equal(rg_routestate_last_contact(path, &when), 0);
    assert_int_equal(when, t0 + 60);
    /* a clock that went back is not "within the minute" forever */
    assert_int_equal(rg_routestate_touch(path, t0, &last), 1);
    /* an unwritable place: -1 once, then quiet for a minute */
    bad = rg_sprintf("%s/nosuch/route-out.provider", dir);
    last = 0;
    assert_int_equal(rg_routestate_touch(bad, t0, &last), -1);
    assert_int_equal(last, t0);
    assert_int_equal(rg_routestate_touch(bad, t0 + 1, &last), 0);
    rg_free(bad);
    rg_free(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_path),
        cmocka_unit_test(test_fingerprint),
        cmocka_unit_test(test_rules_record),
        cmocka_unit_test(test_touch),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
