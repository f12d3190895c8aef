/*
 * test_provider_json.c - lib/provider_json: addresses, hex, every response
 * parser and the create-transaction request, good and bad input.
 */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "buf.h"
#include "provider_json.h"

#define S(x) x, strlen(x)

static void test_address(void **state)
{
    char out[RG_PJ_ADDR_MAX + 1];
    char longlocal[80], longaddr[300];

    (void)state;
    assert_int_equal(rg_pj_address_normalize(S("Alice@Example.COM"), out), 0);
    assert_string_equal(out, "alice@example.com");
    assert_int_equal(rg_pj_address_normalize(S("a+b/c=d@x.y"), out), 0);
    assert_int_equal(rg_pj_address_normalize(S("m\xc3\xbcller@example.de"), out), 0);
    assert_int_equal(rg_pj_address_normalize(S("noat"), out), -1);
    assert_int_equal(rg_pj_address_normalize(S("a@b@c"), out), -1);
    assert_int_equal(rg_pj_address_normalize(S("@b.c"), out), -1);
    assert_int_equal(rg_pj_address_normalize(S("a@"), out), -1);
    assert_int_equal(rg_pj_address_normalize(S("a b@c.d"), out), -1);
    assert_int_equal(rg_pj_address_normalize(S("<a@c.d>"), out), -1);
    assert_int_equal(rg_pj_address_normalize(S("a@c.d."), out), -1);
    assert_int_equal(rg_pj_address_normalize("a\0b@c.d", 7, out), -1);
    assert_int_equal(rg_pj_address_normalize(S("a@c\r\n.d"), out), -1);
    memset(longlocal, 'x', 65);
    longlocal[65] = 0;
    snprintf(longaddr, sizeof(longaddr), "%s@example.com", longlocal);
    assert_int_equal(rg_pj_address_normalize(S(longaddr), out), -1);
    memset(longaddr, 'd', sizeof(longaddr));
    memcpy(longaddr, "a@", 2);
    longaddr[255] = 0;
    assert_int_equal(rg_pj_address_normalize(S(longaddr), out), -1);
}

static void test_hex(void **state)
{
    uint8_t b[4];
    char h[9];

    (void)state;
    assert_int_equal(rg_pj_hex_decode(S("00ff10Ab"), b, 4), 0);
    assert_int_equal(b[1], 0xff);
    assert_int_equal(b[3], 0xab);
    rg_pj_hex_encode(b, 4, h);
    assert_string_equal(h, "00ff10ab");
    assert_int_equal(rg_pj_hex_decode(S("00ff10A"), b, 4), -1);
    assert_int_equal(rg_pj_hex_decode(S("00ff10Ag"), b, 4), -1);
}

static void test_depth(void **state)
{
    (void)state;
    assert_true(rg_pj_depth_ok(S("[[[]]]"), 3));
    assert_false(rg_pj_depth_ok(S("[[[[]]]]"), 3));
    assert_true(rg_pj_depth_ok(S("[\"[[[[[[\"]"), 3));
    assert_false(rg_pj_depth_ok(S("{\"a\":\"x\\u0000y\"}"), 3));
    assert_true(rg_pj_depth_ok(S("{\"a\":\"x\\\\u0000y\"}"), 3));

    /* elements per array or object (issue 7, JSON bombs): at most
     * RG_PJ_MAX_ELEMENTS; commas inside strings do not count */
    size_t n = 2 * RG_PJ_MAX_ELEMENTS + 16, k = 0;
    char *big = malloc(n);
    assert_non_null(big);
    big[k++] = '[';
    for (int i = 0; i < RG_PJ_MAX_ELEMENTS - 1; i++) {
        big[k++] = '0';
        big[k++] = ',';
    }
    big[k++] = '0';
    big[k++] = ']';
    assert_true(rg_pj_depth_ok(big, k, 3));             /* 20,000 elements */
    big[k - 1] = ',';
    big[k++] = '0';
    big[k++] = ']';
    assert_false(rg_pj_depth_ok(big, k, 3));            /* 20,001 */
    big[0] = '"';
    big[k - 1] = '"';
    assert_true(rg_pj_depth_ok(big, k, 3));             /* all in a string */
    /* counted per array or object */
    assert_true(rg_pj_depth_ok(S("[[0,0],[0,0]]"), 3));
    free(big);

    /* closers before any opener (fuzz_provider_json): the depth does not
     * go below 0, which indexed the per-level counts at -1, -2, ... and
     * let the later nesting exceed the limit by as many levels */
    assert_false(rg_pj_depth_ok(S("]]]][[[[[[[0]]]]]]]"), 3));
    assert_false(rg_pj_depth_ok(S("}}}}{\"a\":[[[[0]]]]}"), 3));
    assert_true(rg_pj_depth_ok(S("]]][[0,0]]"), 3));  /* yajl refuses it */
}

static void test_error(void **state)
{
    struct rg_pj_error e;
    const char *why;

    (void)state;
    assert_int_equal(rg_pj_parse_error(S("{\"error\":{\"code\":\"no_account\",\"message\":\"m\"}}"), &e, &why), 0);
    assert_string_equal(e.code, "no_account");
    assert_string_equal(e.message, "m");
    assert_int_equal(rg_pj_parse_error(S("{\"error\":{\"message\":\"m\"}}"), &e, &why), -1);
    assert_int_equal(rg_pj_parse_error(S("{\"error\":\"x\"}"), &e, &why), -1);
    assert_int_equal(rg_pj_parse_error(S("<html>"), &e, &why), -1);
    assert_int_equal(rg_pj_parse_error(NULL, 0, &e, &why), -1);
}

static void test_account_and_health(void **state)
{
    struct rg_pj_account a;
    struct rg_pj_health h;
    const char *why;

    (void)state;
    assert_int_equal(rg_pj_parse_account(S("{\"address\":\"A@b.c\",\"exists\":true,\"new\":[1]}"), &a, &why), 0);
    assert_string_equal(a.address, "a@b.c");
    assert_true(a.exists);
    assert_int_equal(rg_pj_parse_account(S("{\"address\":\"a@b.c\",\"exists\":false}"), &a, &why), 0);
    assert_false(a.exists);
    assert_int_equal(rg_pj_parse_account(S("{\"address\":\"a@b.c\",\"exists\":1}"), &a, &why), -1);
    assert_int_equal(rg_pj_parse_account(S("{\"address\":\"a@b.c\"}"), &a, &why), -1);
    assert_int_equal(rg_pj_parse_account(S("{\"address\":\"a\\u0000@b.c\",\"exists\":true}"), &a, &why), -1);
    assert_int_equal(rg_pj_parse_account("{\"address\":\"a@b.c\",\"exists\":true}\0", 36, &a, &why), -1);
    assert_int_equal(rg_pj_parse_health(S("{\"status\":\"ok\",\"protocol\":1,\"gateway\":7,\"time\":\"x\"}"), &h, &why), 0);
    assert_int_equal(h.gateway, 7);
    assert_int_equal(rg_pj_parse_health(S("{\"status\":\"bad\",\"protocol\":1,\"gateway\":7}"), &h, &why), -1);
    assert_int_equal(rg_pj_parse_health(S("{\"status\":\"ok\",\"protocol\":1,\"gateway\":7.5}"), &h, &why), -1);
}

static void test_txn_and_key(void **state)
{
    struct rg_pj_txn t;
    struct rg_pj_key k;
    const char *why;
    const char *good = "{\"id\":\"000102030405060708090a0b0c0d0e0f\","
                       "\"kek\":\"000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\","
                       "\"created\":\"2024-01-01T00:00:00.000Z\",\"replayed\":true}";

    (void)state;
    assert_int_equal(rg_pj_parse_txn(S(good), &t, &why), 0);
    assert_int_equal(t.id[15], 15);
    assert_int_equal(t.kek[31], 31);
    assert_true(t.replayed);
    assert_int_equal(rg_pj_parse_txn(S("{\"id\":\"00\",\"kek\":\"00\"}"), &t, &why), -1);
    assert_int_equal(rg_pj_parse_key(S("{\"id\":\"000102030405060708090a0b0c0d0e0f\",\"recipient\":\"b@c.d\","
                                       "\"kek\":\"000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\"}"),
                                     &k, &why), 0);
    assert_string_equal(k.recipient, "b@c.d");
    assert_int_equal(rg_pj_parse_key(S("{\"id\":\"000102030405060708090a0b0c0d0e0f\",\"recipient\":\"b@c.d\","
                                       "\"kek\":\"zz0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\"}"),
                                     &k, &why), -1);
}

static void test_events(void **state)
{
    struct rg_pj_events ev;
    const char *why;

    (void)state;
    assert_int_equal(rg_pj_parse_events(S("{\"id\":\"000102030405060708090a0b0c0d0e0f\",\"events\":["
                                          "{\"type\":\"created\",\"time\":\"t\",\"gateway\":1,\"ip\":\"127.0.0.1\"},"
                                          "{\"type\":\"key_retrieved\",\"time\":\"t\",\"gateway\":2,\"ip\":\"::1\","
                                          "\"recipient\":\"b@c.d\"}],\"truncated\":false}"), &ev, &why), 0);
    assert_int_equal(ev.n, 2);
    assert_string_equal(ev.ev[1].recipient, "b@c.d");
    assert_string_equal(ev.ev[0].recipient, "");
    rg_pj_events_free(&ev);
    assert_int_equal(rg_pj_parse_events(S("{\"id\":\"000102030405060708090a0b0c0d0e0f\",\"events\":[1]}"), &ev, &why), -1);
    assert_null(ev.ev);
}

static void test_create_roundtrip(void **state)
{
    const char *rcpts[] = { "C@x.y", "b@x.y", "c@X.Y" };
    uint8_t sha[32];
    struct rg_buf b;
    struct rg_pj_create c;
    const char *why;

    (void)state;
    for (int i = 0; i < 32; i++)
        sha[i] = (uint8_t)i;
    rg_buf_init(&b, 65536);
    assert_int_equal(rg_pj_build_create(&b, "Alice@x.y", rcpts, 3, "<id@x>", sha), 0);
    assert_int_equal(rg_pj_parse_create(b.data, b.len, &c, &why), RG_PJ_CREATE_OK);
    assert_string_equal(c.sender, "alice@x.y");
    assert_int_equal(c.nrecipients, 2);      /* sorted, duplicates merged */
    assert_string_equal(c.recipients[0], "b@x.y");
    assert_string_equal(c.recipients[1], "c@x.y");
    assert_string_equal(c.message_id, "<id@x>");
    assert_memory_equal(c.sha256, sha, 32);
    rg_pj_create_free(&c);
    rg_buf_free(&b);

    assert_int_equal(rg_pj_parse_create(S("{\"sender\":"), &c, &why), RG_PJ_CREATE_MALFORMED);
    assert_int_equal(rg_pj_parse_create(S("[]"), &c, &why), RG_PJ_CREATE_MALFORMED);
    assert_int_equal(rg_pj_parse_create(S("{\"sender\":\"a@b.c\",\"recipients\":[],\"message_id\":\"\","
                                          "\"sha256\":\"000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\"}"),
                                        &c, &why), RG_PJ_CREATE_INVALID);
    assert_int_equal(rg_pj_parse_create(S("{\"sender\":\"a@b.c\",\"recipients\":[\"x@y.z\"],\"message_id\":\"\","
                                          "\"sha256\":\"0001\"}"), &c, &why), RG_PJ_CREATE_INVALID);
    assert_int_equal(rg_pj_parse_create(S("{\"sender\":\"a@b.c\",\"recipients\":[\"x@y.z\", 3],\"message_id\":\"\","
                                          "\"sha256\":\"000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\"}"),
                                        &c, &why), RG_PJ_CREATE_INVALID);
    /* invalid UTF-8 cannot be encoded */
    rg_buf_init(&b, 65536);
    assert_int_equal(rg_pj_build_create(&b, "a\xff@x.y", rcpts, 1, "", sha), -1);
    rg_buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_address),
        cmocka_unit_test(test_hex),
        cmocka_unit_test(test_depth),
        cmocka_unit_test(test_error),
        cmocka_unit_test(test_account_and_health),
        cmocka_unit_test(test_txn_and_key),
        cmocka_unit_test(test_events),
        cmocka_unit_test(test_create_roundtrip),
    };
    return cmocka_run_group_tests_name("provider_json", tests, NULL, NULL);
}
