/*
 * test_header.c - unit tests of lib/header.c: where the header section
 * ends, fields and their raw bytes, unfolding, repeated and
 * case-insensitive names, values (RFC 2047, 8-bit), the size bound,
 * byte-identical serialization and the changes tags make.
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

#include "header.h"

#define BIG (16 * 1024 * 1024)

/*
 * Parse an exact copy of msg[0..len) (no NUL after it, so an over-read
 * shows under valgrind/ASan).
 */
static enum rg_hdr_status parse_n(const char *msg, size_t len, int complete, size_t max,
                                  struct rg_headers *h)
{
    char *copy = malloc(len ? len : 1);
    enum rg_hdr_status st;

    assert_non_null(copy);
    memcpy(copy, msg, len);
    st = rg_headers_parse(copy, len, complete, max, h);
    free(copy);
    return st;
}

static void parse_ok(const char *msg, struct rg_headers *h)
{
    assert_int_equal(parse_n(msg, strlen(msg), 1, BIG, h), RG_HDR_OK);
}

static void expect_serialized(const struct rg_headers *h, const char *bytes)
{
    size_t len;
    char *s = rg_headers_serialize(h, &len);

    assert_int_equal(len, strlen(bytes));
    assert_memory_equal(s, bytes, len);
    free(s);
}

static void expect_raw(const struct rg_headers *h, size_t i, const char *raw, size_t name_len)
{
    assert_true(i < h->n);
    assert_int_equal(h->f[i].raw_len, strlen(raw));
    assert_memory_equal(h->f[i].raw, raw, h->f[i].raw_len);
    assert_int_equal(h->f[i].name_len, name_len);
}

static void expect_value_raw(const struct rg_headers *h, const char *name, size_t k,
                             const char *value)
{
    long i = rg_headers_find(h, name, k);
    char *v;

    assert_true(i >= 0);
    v = rg_header_value_raw(h, (size_t)i);
    assert_string_equal(v, value);
    free(v);
}

static void expect_hvalue(const struct rg_headers *h, const char *name, size_t k,
                         const char *value)
{
    long i = rg_headers_find(h, name, k);
    char *v;

    assert_true(i >= 0);
    v = rg_header_value(h, (size_t)i);
    assert_string_equal(v, value);
    free(v);
}

static void test_basic_crlf(void **state)
{
    const char *msg = "From: a@example.com\r\nSubject: hi\r\n\r\nbody\r\n";
    struct rg_headers h;

    (void)state;
    parse_ok(msg, &h);
    assert_int_equal(h.n, 2);
    expect_raw(&h, 0, "From: a@example.com\r\n", 4);
    expect_raw(&h, 1, "Subject: hi\r\n", 7);
    assert_int_equal(h.body_offset, strlen(msg) - strlen("body\r\n"));
    assert_true(h.have_empty_line);
    assert_false(h.empty_line_lf);
    expect_value_raw(&h, "From", 0, "a@example.com");
    expect_value_raw(&h, "Subject", 0, "hi");
    expect_serialized(&h, "From: a@example.com\r\nSubject: hi\r\n\r\n");
    rg_headers_free(&h);
    assert_int_equal(h.n, 0);
    assert_null(h.f);
}

static void test_unfolding(void **state)
{
    struct rg_headers h;

    (void)state;
    parse_ok("Subject: a\r\n b\r\n\tc\r\nX-Empty:\r\nX-Fold:\r\n   v\r\n"
             "X-Trim:   a  b \t\r\nX-LF: one\n two\n\r\n", &h);
    assert_int_equal(h.n, 5);
    expect_raw(&h, 0, "Subject: a\r\n b\r\n\tc\r\n", 7);
    expect_value_raw(&h, "Subject", 0, "a b\tc");
    expect_value_raw(&h, "X-Empty", 0, "");
    expect_value_raw(&h, "X-Fold", 0, "v");
    expect_value_raw(&h, "X-Trim", 0, "a  b");
    expect_raw(&h, 4, "X-LF: one\n two\n", 4);
    expect_value_raw(&h, "X-LF", 0, "one two");
    rg_headers_free(&h);
}

static void test_repeated_fields(void **state)
{
    struct rg_headers h;

    (void)state;
    parse_ok("Received: from a\r\nSubject: s\r\nReceived: from b\r\n"
             "X: y\r\nReceived: from c\r\n\r\n", &h);
    assert_int_equal(rg_headers_find(&h, "Received", 0), 0);
    assert_int_equal(rg_headers_find(&h, "Received", 1), 2);
    assert_int_equal(rg_headers_find(&h, "Received", 2), 4);
    assert_int_equal(rg_headers_find(&h, "Received", 3), -1);
    assert_int_equal(rg_headers_find(&h, "Receive", 0), -1);
    assert_int_equal(rg_headers_find(&h, "Received-X", 0), -1);
    expect_value_raw(&h, "Received", 1, "from b");
    expect_value_raw(&h, "Received", 2, "from c");
    rg_headers_free(&h);
}

static void test_case_insensitive(void **state)
{
    struct rg_headers h;

    (void)state;
    parse_ok("SUBJECT: one\r\nsubject: two\r\nSuBjEcT: three\r\n\r\n", &h);
    expect_value_raw(&h, "subject", 0, "one");
    expect_value_raw(&h, "Subject", 1, "two");
    expect_value_raw(&h, "SUBJECT", 2, "three");
    assert_int_equal(rg_headers_find(&h, "subject", 3), -1);
    rg_headers_free(&h);
}

static void test_end_lf_only(void **state)
{
    const char *msg = "A: 1\nB: 2\n\nbody\n";
    struct rg_headers h;

    (void)state;
    parse_ok(msg, &h);
    assert_int_equal(h.n, 2);
    expect_raw(&h, 0, "A: 1\n", 1);
    assert_int_equal(h.body_offset, 11);
    assert_true(h.have_empty_line);
    assert_true(h.empty_line_lf);
    expect_serialized(&h, "A: 1\nB: 2\n\n");
    rg_headers_free(&h);
}

static void test_end_non_field_line(void **state)
{
    struct rg_headers h;

    (void)state;
    /* like Postfix: the first line that is neither field nor continuation */
    parse_ok("A: 1\r\nthis is not a header\r\nB: 2\r\n\r\n", &h);
    assert_int_equal(h.n, 1);
    assert_int_equal(h.body_offset, 6);
    assert_false(h.have_empty_line);
    expect_serialized(&h, "A: 1\r\n");
    rg_headers_free(&h);

    parse_ok("From user@example.com Mon Jan  1 00:00:00 2024\r\nA: 1\r\n\r\n", &h);
    assert_int_equal(h.n, 0);
    assert_int_equal(h.body_offset, 0);
    rg_headers_free(&h);

    parse_ok("A: 1\r\n:no name\r\n", &h);
    assert_int_equal(h.n, 1);
    assert_int_equal(h.body_offset, 6);
    rg_headers_free(&h);

    /* 8-bit and control bytes are not name characters */
    parse_ok("A: 1\r\nSub\xe4ject: x\r\n", &h);
    assert_int_equal(h.body_offset, 6);
    rg_headers_free(&h);
    parse_ok("A: 1\r\n\rX: 2\r\n", &h);
    assert_int_equal(h.n, 1);
    assert_int_equal(h.body_offset, 6);
    rg_headers_free(&h);

    /* a first line starting with white space continues nothing */
    parse_ok(" A: 1\r\n\r\n", &h);
    assert_int_equal(h.n, 0);
    assert_int_equal(h.body_offset, 0);
    rg_headers_free(&h);
}

static void test_end_no_empty_line(void **state)
{
    struct rg_headers h;

    (void)state;
    parse_ok("A: 1\r\nB: 2\r\n", &h);
    assert_int_equal(h.n, 2);
    assert_int_equal(h.body_offset, 12);
    assert_false(h.have_empty_line);
    expect_serialized(&h, "A: 1\r\nB: 2\r\n");
    rg_headers_free(&h);

    /* the message ends inside its last field: that field gets its CRLF */
    parse_ok("A: 1\r\nB: 2\r\n folded", &h);
    assert_int_equal(h.n, 2);
    assert_int_equal(h.body_offset, 19);
    expect_raw(&h, 1, "B: 2\r\n folded\r\n", 1);
    expect_value_raw(&h, "B", 0, "2 folded");
    rg_headers_free(&h);

    parse_ok("A: 1\r", &h);
    expect_raw(&h, 0, "A: 1\r\n", 1);
    assert_int_equal(h.body_offset, 5);
    rg_headers_free(&h);

    /* a name without colon at the end is no field */
    parse_ok("A: 1\r\nB", &h);
    assert_int_equal(h.n, 1);
    assert_int_equal(h.body_offset, 6);
    rg_headers_free(&h);

    parse_ok("", &h);
    assert_int_equal(h.n, 0);
    assert_int_equal(h.body_offset, 0);
    assert_false(h.have_empty_line);
    rg_headers_free(&h);

    parse_ok("\r\nbody", &h);
    assert_int_equal(h.n, 0);
    assert_int_equal(h.body_offset, 2);
    assert_true(h.have_empty_line);
    expect_serialized(&h, "\r\n");
    rg_headers_free(&h);
}

static void test_space_before_colon(void **state)
{
    struct rg_headers h;

    (void)state;
    parse_ok("Subject \t: spaced\r\n\r\n", &h);
    assert_int_equal(h.n, 1);
    assert_int_equal(h.f[0].name_len, 7);
    expect_value_raw(&h, "Subject", 0, "spaced");
    rg_headers_free(&h);
}

static void test_toobig(void **state)
{
    const char *msg = "A: 1\r\nB: 2\r\n\r\nbody";
    struct rg_headers h;
    char *huge;
    size_t len = 0;

    (void)state;
    assert_int_equal(parse_n(msg, strlen(msg), 1, 14, &h), RG_HDR_OK);
    assert_int_equal(h.body_offset, 14);
    rg_headers_free(&h);
    assert_int_equal(parse_n(msg, strlen(msg), 1, 13, &h), RG_HDR_TOOBIG);
    assert_int_equal(h.n, 0);
    assert_null(h.f);
    assert_int_equal(parse_n(msg, strlen(msg), 1, 12, &h), RG_HDR_TOOBIG);
    assert_int_equal(parse_n(msg, strlen(msg), 1, 5, &h), RG_HDR_TOOBIG);
    assert_int_equal(parse_n(msg, strlen(msg), 1, 0, &h), RG_HDR_TOOBIG);

    /* ending at a body line: the body does not count */
    msg = "A: 1\r\nbody line\r\n";
    assert_int_equal(parse_n(msg, strlen(msg), 1, 6, &h), RG_HDR_OK);
    assert_int_equal(h.body_offset, 6);
    rg_headers_free(&h);
    assert_int_equal(parse_n(msg, strlen(msg), 1, 5, &h), RG_HDR_TOOBIG);

    /* a huge section: 100,000 fields */
    huge = malloc(100000 * 32 + 16);
    assert_non_null(huge);
    for (int i = 0; i < 100000; i++)
        len += (size_t)sprintf(huge + len, "X-Filler-%06d: %-10d\r\n", i, i);
    memcpy(huge + len, "\r\nbody", 6);
    assert_int_equal(parse_n(huge, len + 6, 1, 64 * 1024, &h), RG_HDR_TOOBIG);
    assert_int_equal(parse_n(huge, len + 6, 1, BIG, &h), RG_HDR_OK);
    assert_int_equal(h.n, 100000);
    assert_int_equal(h.body_offset, len + 2);
    expect_value_raw(&h, "X-Filler-099999", 0, "99999");
    rg_headers_free(&h);
    free(huge);
}

static void test_needmore(void **state)
{
    const char *msg = "A: 1\r\nB: 2\r\n\r\nbody";
    struct rg_headers h;

    (void)state;
    for (size_t k = 0; k < 14; k++)
        assert_int_equal(parse_n(msg, k, 0, 1000, &h), RG_HDR_NEEDMORE);
    assert_int_equal(parse_n(msg, 14, 0, 1000, &h), RG_HDR_OK);
    assert_int_equal(h.n, 2);
    assert_int_equal(h.body_offset, 14);
    rg_headers_free(&h);
    /* more than max given and no end within max */
    assert_int_equal(parse_n(msg, 12, 0, 10, &h), RG_HDR_TOOBIG);
    assert_int_equal(parse_n(msg, 10, 0, 10, &h), RG_HDR_TOOBIG);
    /* a prefix that reaches far enough into a body line is enough */
    assert_int_equal(parse_n("A: 1\r\nbody line", 8, 0, 1000, &h), RG_HDR_NEEDMORE);
    assert_int_equal(parse_n("A: 1\r\nbody line", 11, 0, 1000, &h), RG_HDR_NEEDMORE);
    assert_int_equal(parse_n("A: 1\r\nbody line", 12, 0, 1000, &h), RG_HDR_OK);
    assert_int_equal(h.body_offset, 6);
    rg_headers_free(&h);
    assert_int_equal(strcmp(rg_hdr_strerror(RG_HDR_TOOBIG), rg_hdr_strerror(RG_HDR_NEEDMORE)) != 0, 1);
    assert_string_equal(rg_hdr_strerror(RG_HDR_OK), "ok");
}

static void test_serialize_identical(void **state)
{
    static const char msg[] =
        "Received: from mail.example.com (mail.example.com [192.0.2.1])\r\n"
        "\tby mx.example.org (Postfix) with ESMTPS id 4XyZ12abcD\r\n"
        "\tfor <user@example.org>; Mon,  1 Jan 2024 00:00:00 +0000 (UTC)\r\n"
        "From: =?ISO-8859-1?Q?J=F6rg?= <j@example.com>\r\n"
        "Subject  :   raw 8-bit Gr\xfc\xdf" "e   \r\n"
        "X-Odd: tab\tand bare\rCR\r\n"
        "X-LF: mixed line end\n"
        "x-lower: v\r\n"
        "\r\n"
        "body\r\n";
    struct rg_headers h;
    size_t len;
    char *s;

    (void)state;
    parse_ok(msg, &h);
    assert_int_equal(h.n, 6);
    s = rg_headers_serialize(&h, &len);
    assert_int_equal(len, h.body_offset);
    assert_memory_equal(s, msg, len);
    assert_int_equal(len, sizeof(msg) - 1 - strlen("body\r\n"));
    free(s);
    expect_value_raw(&h, "X-Odd", 0, "tab\tand bare CR");
    rg_headers_free(&h);
}

static void test_values_decoded(void **state)
{
    static const char msg[] =
        "Subject: =?ISO-8859-1?Q?Gr=FC=DFe?= =?UTF-8?B?w6Q=?=\r\n"
        "X-UTF8: Gr\xc3\xbc\xc3\x9f" "e\r\n"
        "X-Latin1: Gr\xfc\xdf" "e\r\n"
        "X-Inject: =?UTF-8?Q?a=0D=0AX-Evil:_1?=\r\n"
        "X-Folded: =?UTF-8?Q?a?=\r\n =?UTF-8?Q?b?=\r\n"
        "X-Nul: a\0b\r\n"
        "\r\n";
    struct rg_headers h;
    char *v;

    (void)state;
    assert_int_equal(parse_n(msg, sizeof(msg) - 1, 1, BIG, &h), RG_HDR_OK);
    assert_int_equal(h.n, 6);
    expect_hvalue(&h, "Subject", 0, "Gr\xc3\xbc\xc3\x9f" "e\xc3\xa4");
    expect_hvalue(&h, "X-UTF8", 0, "Gr\xc3\xbc\xc3\x9f" "e");
    expect_hvalue(&h, "X-Latin1", 0, "Gr\xc3\xbc\xc3\x9f" "e");
    expect_value_raw(&h, "X-Latin1", 0, "Gr\xfc\xdf" "e");
    expect_hvalue(&h, "X-Inject", 0, "a  X-Evil: 1");
    expect_hvalue(&h, "X-Folded", 0, "ab");
    expect_value_raw(&h, "X-Nul", 0, "a b");
    v = rg_header_value(&h, 5);
    assert_string_equal(v, "a b");
    free(v);
    rg_headers_free(&h);
}

/* Bad input (issue 7): one field of 1 MB (a single line, and folded into
 * 21,000 continuation lines) against a 1 MiB limit, a NUL in a field name,
 * RFC 2231 parameters (kept raw: rules see the value as sent). */
static void test_bad_input_big_fields(void **state)
{
    const size_t mib = 1024 * 1024;
    struct rg_headers h;
    size_t len;
    char *m = malloc(2 * mib + 64), *v;

    (void)state;
    assert_non_null(m);
    /* "Subject: " + value + CRLF + CRLF: exactly at the limit, then one over */
    len = (size_t)sprintf(m, "Subject: ");
    memset(m + len, 'a', mib - len - 4);
    len = mib - 4;
    memcpy(m + len, "\r\n\r\nbody", 8);
    assert_int_equal(parse_n(m, len + 8, 1, mib, &h), RG_HDR_OK);
    assert_int_equal(h.n, 1);
    assert_int_equal(h.body_offset, mib);
    v = rg_header_value(&h, 0);
    assert_int_equal(strlen(v), mib - 4 - 9);
    free(v);
    rg_headers_free(&h);
    assert_int_equal(parse_n(m, len + 8, 1, mib - 1, &h), RG_HDR_TOOBIG);
    assert_int_equal(h.n, 0);
    /* a prefix of the message, as filter.c hands it (max + 1 bytes) */
    assert_int_equal(parse_n(m, mib, 0, mib - 1, &h), RG_HDR_TOOBIG);

    /* folded: 21,000 continuation lines of 52 bytes, unfolded into one value */
    len = (size_t)sprintf(m, "Subject: start\r\n");
    for (int i = 0; i < 21000; i++)
        len += (size_t)sprintf(m + len, " %048d\r\n", i);
    len += (size_t)sprintf(m + len, "\r\nbody");
    assert_true(len > mib);
    assert_int_equal(parse_n(m, len, 1, mib, &h), RG_HDR_TOOBIG);
    assert_int_equal(parse_n(m, len, 1, 2 * mib, &h), RG_HDR_OK);
    assert_int_equal(h.n, 1);
    v = rg_header_value(&h, 0);
    assert_int_equal(strlen(v), 5 + 21000 * 49);
    assert_memory_equal(v, "start 0000", 10);
    free(v);
    rg_headers_free(&h);
    free(m);

    /* a NUL in a field name: not a field, the body starts there */
    assert_int_equal(parse_n("A: 1\r\nSub\0ject: x\r\n\r\n", 22, 1, BIG, &h), RG_HDR_OK);
    assert_int_equal(h.n, 1);
    assert_int_equal(h.body_offset, 6);
    rg_headers_free(&h);

    /* RFC 2231 continuations and charset/language: not decoded */
    parse_ok("Content-Type: application/octet-stream;\r\n name*0*=utf-8'de'Gr%C3%BC;\r\n"
             " name*1=\"sse.txt\"\r\n\r\n", &h);
    expect_hvalue(&h, "Content-Type", 0,
                  "application/octet-stream; name*0*=utf-8'de'Gr%C3%BC; name*1=\"sse.txt\"");
    rg_headers_free(&h);
    /* malformed encoded-words stay as they are; a valid one next to them is decoded */
    parse_ok("Subject: =?UTF-8?B?W3NlY3VyZV0=?= =?UTF-8?Q?unterminated =?x?y?z?= =?UTF-8?B?!!?=\r\n\r\n", &h);
    expect_hvalue(&h, "Subject", 0, "[secure] =?UTF-8?Q?unterminated =?x?y?z?= =?UTF-8?B?!!?=");
    rg_headers_free(&h);
}

static void test_add(void **state)
{
    struct rg_headers h;

    (void)state;
    parse_ok("A: 1\r\nB: 2\r\n\r\nbody", &h);
    rg_headers_add(&h, "X-Tag", "yes");
    rg_headers_add(&h, "A", "again");
    expect_serialized(&h, "A: 1\r\nB: 2\r\nX-Tag: yes\r\nA: again\r\n\r\n");
    assert_int_equal(rg_headers_find(&h, "a", 1), 3);
    expect_hvalue(&h, "x-tag", 0, "yes");
    assert_int_equal(h.body_offset, 14);
    rg_headers_free(&h);

    /* no empty line: none is made up, the body follows at body_offset */
    parse_ok("A: 1\r\nbody\r\n", &h);
    rg_headers_add(&h, "X-Tag", "\xc3\xa4");
    expect_serialized(&h, "A: 1\r\nX-Tag: =?UTF-8?B?w6Q=?=\r\n");
    expect_hvalue(&h, "X-Tag", 0, "\xc3\xa4");
    rg_headers_free(&h);

    /* LF message: the empty line stays LF, new fields are CRLF */
    parse_ok("A: 1\n\nbody", &h);
    rg_headers_add(&h, "B", "2");
    expect_serialized(&h, "A: 1\nB: 2\r\n\n");
    rg_headers_free(&h);
}

static void test_set(void **state)
{
    struct rg_headers h;

    (void)state;
    parse_ok("A: 1\r\nX: old1\r\nB: 2\r\nx: old2\r\n\r\n", &h);
    rg_headers_set(&h, "X", "new");
    expect_serialized(&h, "A: 1\r\nX: new\r\nB: 2\r\n\r\n");
    rg_headers_set(&h, "Y", "appended");
    expect_serialized(&h, "A: 1\r\nX: new\r\nB: 2\r\nY: appended\r\n\r\n");
    rg_headers_set(&h, "a", "first");
    expect_serialized(&h, "a: first\r\nX: new\r\nB: 2\r\nY: appended\r\n\r\n");
    assert_int_equal(h.n, 4);
    rg_headers_free(&h);
}

static void test_remove(void **state)
{
    struct rg_headers h;

    (void)state;
    parse_ok("A: 1\r\nX: old1\r\n folded\r\nB: 2\r\nx: old2\r\n\r\n", &h);
    rg_headers_remove(&h, "Nonexistent");
    assert_int_equal(h.n, 4);
    rg_headers_remove(&h, "x");
    expect_serialized(&h, "A: 1\r\nB: 2\r\n\r\n");
    rg_headers_remove(&h, "A");
    rg_headers_remove(&h, "B");
    assert_int_equal(h.n, 0);
    expect_serialized(&h, "\r\n");
    rg_headers_free(&h);
}

static void test_replace(void **state)
{
    struct rg_headers h;
    long i;

    (void)state;
    parse_ok("From: a\r\nSUBJECT: hello\r\n world\r\nTo: b\r\n\r\n", &h);
    i = rg_headers_find(&h, "Subject", 0);
    assert_int_equal(i, 1);
    rg_headers_replace(&h, (size_t)i, "[secure] hello world");
    /* the name as the message spelled it, the position kept */
    expect_serialized(&h, "From: a\r\nSUBJECT: [secure] hello world\r\nTo: b\r\n\r\n");
    expect_hvalue(&h, "subject", 0, "[secure] hello world");
    rg_headers_free(&h);
}

/* re-parse a serialization: the changes are there and nothing leaked out */
static void test_injection(void **state)
{
    struct rg_headers h, h2;
    size_t len;
    char *s, *msg;

    (void)state;
    parse_ok("A: 1\r\n\r\nbody", &h);
    rg_headers_add(&h, "X-Tag", "a\r\nBcc: x@evil.example\r\n\r\nbody");
    rg_headers_set(&h, "Subject", "\xc3\xa4\n\nTo: y@evil.example");
    rg_headers_replace(&h, 0, "one\rtwo\nthree");
    s = rg_headers_serialize(&h, &len);
    msg = malloc(len + 4);
    assert_non_null(msg);
    memcpy(msg, s, len);
    memcpy(msg + len, "body", 4);
    assert_int_equal(parse_n(msg, len + 4, 1, BIG, &h2), RG_HDR_OK);
    assert_int_equal(h2.n, 3);
    assert_int_equal(h2.body_offset, len);
    assert_int_equal(rg_headers_find(&h2, "Bcc", 0), -1);
    assert_int_equal(rg_headers_find(&h2, "To", 0), -1);
    expect_hvalue(&h2, "X-Tag", 0, "a  Bcc: x@evil.example    body");
    expect_hvalue(&h2, "Subject", 0, "\xc3\xa4  To: y@evil.example");
    expect_hvalue(&h2, "A", 0, "one two three");
    for (size_t i = 0; i < h2.n; i++) {
        const struct rg_header_field *f = &h2.f[i];
        for (size_t j = 0; j < f->raw_len; j++)
            if (f->raw[j] == '\r' || f->raw[j] == '\n')
                assert_true(f->raw[j] == '\r' ? f->raw[j + 1] == '\n'
                            : j + 1 == f->raw_len || f->raw[j + 1] == ' ');
    }
    rg_headers_free(&h2);
    free(msg);
    free(s);
    rg_headers_free(&h);
}

/* a long non-ASCII value through add, serialize, parse and value */
static void test_long_value_round_trip(void **state)
{
    struct rg_headers h, h2;
    char value[2000] = "";
    size_t len, col = 0;
    char *s;

    (void)state;
    for (int i = 0; i < 40; i++)
        strcat(value, i % 3 ? "Gr\xc3\xbc\xc3\x9f" "e " : "plain words ");
    strcat(value, "\xe2\x82\xac");
    parse_ok("\r\n", &h);
    rg_headers_add(&h, "Subject", value);
    s = rg_headers_serialize(&h, &len);
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '\r') {
            assert_in_range(col, 0, 78);
            col = 0;
            i++;
        } else {
            col++;
        }
    }
    assert_int_equal(parse_n(s, len, 1, BIG, &h2), RG_HDR_OK);
    assert_int_equal(h2.n, 1);
    expect_hvalue(&h2, "Subject", 0, value);
    rg_headers_free(&h2);
    free(s);
    rg_headers_free(&h);
}

static void test_name_valid(void **state)
{
    (void)state;
    assert_true(rg_header_name_valid("X-Tag"));
    assert_true(rg_header_name_valid("~!"));
    assert_false(rg_header_name_valid(""));
    assert_false(rg_header_name_valid("a:b"));
    assert_false(rg_header_name_valid("a b"));
    assert_false(rg_header_name_valid("a\x7f"));
    assert_false(rg_header_name_valid("\xc3\xa4"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_basic_crlf),
        cmocka_unit_test(test_unfolding),
        cmocka_unit_test(test_repeated_fields),
        cmocka_unit_test(test_case_insensitive),
        cmocka_unit_test(test_end_lf_only),
        cmocka_unit_test(test_end_non_field_line),
        cmocka_unit_test(test_end_no_empty_line),
        cmocka_unit_test(test_space_before_colon),
        cmocka_unit_test(test_toobig),
        cmocka_unit_test(test_needmore),
        cmocka_unit_test(test_serialize_identical),
        cmocka_unit_test(test_values_decoded),
        cmocka_unit_test(test_add),
        cmocka_unit_test(test_set),
        cmocka_unit_test(test_remove),
        cmocka_unit_test(test_replace),
        cmocka_unit_test(test_injection),
        cmocka_unit_test(test_long_value_round_trip),
        cmocka_unit_test(test_name_valid),
        cmocka_unit_test(test_bad_input_big_fields),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
