/*
 * test_diagcheck.c - unit tests of lib/diagcheck.c: the verdicts of
 * regigatectl diagnose (each boundary on both sides) and the certificate
 * expiry that lib/tlscert.c reads for it.
 */
#include "config.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "diagcheck.h"
#include "mem.h"
#include "tlscert.h"

#define GIB (1024ULL * 1024 * 1024)

static void test_level_names(void **state)
{
    (void)state;
    assert_string_equal(rg_dc_level_name(RG_DC_OK), "OK");
    assert_string_equal(rg_dc_level_name(RG_DC_NOTE), "NOTE");
    assert_string_equal(rg_dc_level_name(RG_DC_WARN), "WARN");
    assert_string_equal(rg_dc_level_name(RG_DC_FAIL), "FAIL");
}

static void test_spool_mode(void **state)
{
    struct rg_dc_result r;

    (void)state;
    rg_dc_spool_mode("/s", S_IFDIR | 0700, 65534, 65534, "nobody", &r);
    assert_int_equal(r.level, RG_DC_OK);
    assert_string_equal(r.detail, "/s: mode 0700, owner nobody");
    assert_string_equal(r.remedy, "");
    /* readable by the group or others: the messages leak */
    rg_dc_spool_mode("/s", S_IFDIR | 0750, 65534, 65534, "nobody", &r);
    assert_int_equal(r.level, RG_DC_FAIL);
    assert_string_equal(r.remedy, "chmod 700 /s");
    assert_non_null(strstr(r.detail, "mode 0750"));
    rg_dc_spool_mode("/s", S_IFDIR | 0701, 65534, 65534, "nobody", &r);
    assert_int_equal(r.level, RG_DC_FAIL);
    /* the owner cannot write */
    rg_dc_spool_mode("/s", S_IFDIR | 0500, 65534, 65534, "nobody", &r);
    assert_int_equal(r.level, RG_DC_FAIL);
    assert_string_equal(r.remedy, "chmod 700 /s");
    /* owned by someone else than the daemon's user */
    rg_dc_spool_mode("/s", S_IFDIR | 0700, 0, 65534, "nobody", &r);
    assert_int_equal(r.level, RG_DC_FAIL);
    assert_string_equal(r.remedy, "chown nobody /s && chmod 700 /s");
    /* without 'user' any owner will do */
    rg_dc_spool_mode("/s", S_IFDIR | 0700, 0, 0, NULL, &r);
    assert_int_equal(r.level, RG_DC_OK);
    /* not a directory */
    rg_dc_spool_mode("/s", S_IFREG | 0700, 0, 0, NULL, &r);
    assert_int_equal(r.level, RG_DC_FAIL);
    assert_string_equal(r.detail, "/s is not a directory");
}

static void test_spool_space(void **state)
{
    struct rg_dc_result r;

    (void)state;
    rg_dc_spool_space("/s", 50 * GIB, 100 * GIB, 50ULL << 20, &r);
    assert_int_equal(r.level, RG_DC_OK);
    assert_string_equal(r.detail, "/s: 50.0 GiB free of 100.0 GiB (50%)");
    /* less than twice the largest message: FAIL */
    rg_dc_spool_space("/s", 100ULL << 20, 100 * GIB, 51ULL << 20, &r);
    assert_int_equal(r.level, RG_DC_FAIL);
    rg_dc_spool_space("/s", 102ULL << 20, 100 * GIB, 51ULL << 20, &r);
    assert_int_equal(r.level, RG_DC_WARN);              /* but below 1 GiB */
    /* below 10 % */
    rg_dc_spool_space("/s", 9 * GIB, 100 * GIB, 1, &r);
    assert_int_equal(r.level, RG_DC_WARN);
    assert_string_equal(r.detail, "/s: only 9.0 GiB free of 100.0 GiB (9%)");
    rg_dc_spool_space("/s", 10 * GIB, 100 * GIB, 1, &r);
    assert_int_equal(r.level, RG_DC_OK);
}

static void test_key_mode(void **state)
{
    struct rg_dc_result r;

    (void)state;
    rg_dc_key_mode("/k", S_IFREG | 0600, &r);
    assert_int_equal(r.level, RG_DC_OK);
    assert_string_equal(r.detail, "/k: mode 0600");
    rg_dc_key_mode("/k", S_IFREG | 0400, &r);
    assert_int_equal(r.level, RG_DC_OK);
    rg_dc_key_mode("/k", S_IFREG | 0640, &r);
    assert_int_equal(r.level, RG_DC_FAIL);
    assert_non_null(strstr(r.remedy, "chmod 600 /k"));
    rg_dc_key_mode("/k", S_IFREG | 0604, &r);
    assert_int_equal(r.level, RG_DC_FAIL);
}

static void test_cert_expiry(void **state)
{
    struct rg_dc_result r;
    time_t now = 1700000000;

    (void)state;
    rg_dc_cert_expiry("cert", now + 31 * 86400, now, "renew", &r);
    assert_int_equal(r.level, RG_DC_OK);
    assert_string_equal(r.remedy, "");
    rg_dc_cert_expiry("cert", now + 30 * 86400, now, "renew", &r);
    assert_int_equal(r.level, RG_DC_OK);
    rg_dc_cert_expiry("cert", now + 30 * 86400 - 1, now, "renew", &r);
    assert_int_equal(r.level, RG_DC_WARN);
    assert_string_equal(r.remedy, "renew");
    assert_non_null(strstr(r.detail, "expires in 29 days"));
    rg_dc_cert_expiry("cert", now + 86400, now, "renew", &r);
    assert_int_equal(r.level, RG_DC_WARN);
    assert_non_null(strstr(r.detail, "expires in 1 day ("));
    rg_dc_cert_expiry("cert", now, now, "renew", &r);
    assert_int_equal(r.level, RG_DC_FAIL);
    assert_string_equal(r.detail, "cert expired on 2023-11-14 22:13:20 UTC");
}

static void test_size_limit(void **state)
{
    struct rg_dc_result r;

    (void)state;
    rg_dc_size_limit(10240000, 10240000, "out", &r);
    assert_int_equal(r.level, RG_DC_OK);
    rg_dc_size_limit(10239999, 10240000, "out", &r);
    assert_int_equal(r.level, RG_DC_FAIL);
    assert_non_null(strstr(r.detail, "route out: 10240000"));
    assert_non_null(strstr(r.remedy, "set message_size_limit = 10240000 in [mta]"));
    rg_dc_size_limit(0, 10240000, "out", &r);   /* no limit */
    assert_int_equal(r.level, RG_DC_OK);
}

static void test_dns_match(void **state)
{
    struct rg_dc_result r;
    const char *addrs[] = { "192.0.2.1", "2001:db8::1" };
    const char *good[] = { "Gw.Example.com.", "gw.example.com" };
    const char *bad[] = { "gw.example.com", "other.example.com" };
    const char *none[] = { "gw.example.com", NULL };

    (void)state;
    rg_dc_dns_match("gw.example.com", addrs, good, 2, &r);
    assert_int_equal(r.level, RG_DC_OK);
    assert_string_equal(r.detail, "gw.example.com: 192.0.2.1 -> Gw.Example.com., "
                        "2001:db8::1 -> gw.example.com");
    rg_dc_dns_match("gw.example.com", addrs, bad, 2, &r);
    assert_int_equal(r.level, RG_DC_WARN);
    assert_non_null(strstr(r.detail, "2001:db8::1 -> other.example.com"));
    rg_dc_dns_match("gw.example.com", addrs, none, 2, &r);
    assert_int_equal(r.level, RG_DC_WARN);
    assert_non_null(strstr(r.detail, "(no PTR)"));
    rg_dc_dns_match("gw.example.com", addrs, good, 0, &r);
    assert_int_equal(r.level, RG_DC_WARN);
    assert_string_equal(r.detail, "gw.example.com has no address");
    assert_true(rg_dc_same_name("a.b.", "A.B"));
    assert_false(rg_dc_same_name("a.b", "a.bc"));
}

static void test_tlscert_expiry(void **state)
{
    char path[] = "/tmp/rg-test-diagcheck.XXXXXX", err[256];
    char *pem;
    time_t expires = 0, before = time(NULL);
    int fd;

    (void)state;
    pem = rg_tlscert_selfsigned("gw.example.com", 40, err, sizeof(err));
    assert_non_null(pem);
    fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, pem, strlen(pem)), (ssize_t)strlen(pem));
    close(fd);
    assert_int_equal(rg_tlscert_expiry(path, &expires, err, sizeof(err)), 0);
    /* the key in front of the certificate is skipped */
    assert_true(expires >= before + 40 * 86400 - 5 && expires <= time(NULL) + 40 * 86400 + 5);
    fd = open(path, O_WRONLY | O_TRUNC);
    assert_int_equal(write(fd, "junk\n", 5), 5);
    close(fd);
    assert_int_equal(rg_tlscert_expiry(path, &expires, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "holds no PEM certificate"));
    unlink(path);
    assert_int_equal(rg_tlscert_expiry(path, &expires, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "cannot read"));
    rg_tlscert_free(pem);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_level_names),
        cmocka_unit_test(test_spool_mode),
        cmocka_unit_test(test_spool_space),
        cmocka_unit_test(test_key_mode),
        cmocka_unit_test(test_cert_expiry),
        cmocka_unit_test(test_size_limit),
        cmocka_unit_test(test_dns_match),
        cmocka_unit_test(test_tlscert_expiry),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
