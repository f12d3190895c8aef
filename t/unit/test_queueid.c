/*
 * test_queueid.c - unit tests of lib/queueid.c: the upstream Postfix queue
 * id from the top-most Received header, for log correlation.
 */
#include "config.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "queueid.h"

/*
 * Run the parser on an exact copy of hdr in a buffer of exactly len bytes
 * (no NUL after it), so an over-read shows under valgrind/ASan.
 */
static int qid(const char *hdr, size_t len, char *out, size_t outmax)
{
    char *copy = malloc(len ? len : 1);
    int rc;

    assert_non_null(copy);
    memcpy(copy, hdr, len);
    rc = rg_queue_id_from_received(copy, len, out, outmax);
    free(copy);
    return rc;
}

static void expect_id(const char *hdr, const char *id)
{
    char out[64];

    memset(out, 'X', sizeof(out));
    assert_int_equal(qid(hdr, strlen(hdr), out, sizeof(out)), 0);
    assert_string_equal(out, id);
}

static void expect_none(const char *hdr)
{
    char out[64];

    assert_int_equal(qid(hdr, strlen(hdr), out, sizeof(out)), -1);
}

static void test_postfix_folded(void **state)
{
    (void)state;
    expect_id("Received: from mail.example.com (mail.example.com [192.0.2.1])\r\n"
              "\tby mx.example.org (Postfix) with ESMTPS id 4XyZ12abcD\r\n"
              "\tfor <user@example.org>; Mon,  1 Jan 2024 00:00:00 +0000 (UTC)\r\n"
              "Subject: hi\r\n\r\nbody\r\n", "4XyZ12abcD");
    /* folded with spaces and bare LF line ends */
    expect_id("Received: from a (b [192.0.2.1])\n"
              "        by mx (Postfix) with ESMTP id 1A2B3C4D5E\n"
              "        for <u@x.example>; Tue, 2 Jan 2024 10:00:00 +0100\n\nbody\n",
              "1A2B3C4D5E");
    /* the id alone on a continuation line */
    expect_id("Received: by mx.example.org (Postfix) with ESMTP\r\n id 4ABCdef;\r\n"
              " Mon, 1 Jan 2024\r\n\r\n", "4ABCdef");
}

static void test_postfix_one_line(void **state)
{
    (void)state;
    expect_id("Received: by mx.example.org (Postfix, from userid 1000) id 3F1C2A0B12; "
              "Mon, 1 Jan 2024 00:00:00 +0000 (UTC)\r\n\r\n", "3F1C2A0B12");
    expect_id("Received: from h by mx (Postfix) with ESMTP id QQQ for <a@b.c>; date\r\n\r\n",
              "QQQ");
}

static void test_topmost_only(void **state)
{
    (void)state;
    /* the first Received is ours (the upstream Postfix), later ones are older hops */
    expect_id("Return-Path: <a@b.c>\r\n"
              "Received: from x by mx (Postfix) with ESMTP id FIRST1; date\r\n"
              "Received: from y by relay (Postfix) with ESMTP id SECOND2; date\r\n\r\n",
              "FIRST1");
    /* the top-most one has no id: no id at all, not an older hop's */
    expect_none("Received: from x by mx with LMTP; date\r\n"
                "Received: from y by relay (Postfix) with ESMTP id SECOND2; date\r\n\r\n");
}

static void test_no_received(void **state)
{
    (void)state;
    expect_none("Subject: hi\r\nFrom: a@b.c\r\n\r\nbody\r\n");
    expect_none("");
    expect_none("\r\n");
    expect_none("X-Received: by mx (Postfix) id NOTME; date\r\n\r\n");
    expect_none("Received-SPF: pass (id FAKE1)\r\n\r\n");
}

static void test_received_after_header_end(void **state)
{
    (void)state;
    expect_none("Subject: hi\r\n\r\nReceived: by mx (Postfix) id BODY1; date\r\n");
    expect_none("Subject: hi\n\nReceived: by mx (Postfix) id BODY2; date\n");
    expect_none("\r\nReceived: by mx (Postfix) id BODY3; date\r\n");
}

static void test_id_after_semicolon_ignored(void **state)
{
    (void)state;
    /* " id " in the date part after ';' is not the queue id */
    expect_none("Received: from x by mx with SMTP; Mon id NOTID\r\n\r\n");
}

static void test_id_too_long(void **state)
{
    const char *hdr = "Received: by mx (Postfix) id ABCDEFGHIJ; date\r\n\r\n";
    char out[16];

    (void)state;
    assert_int_equal(qid(hdr, strlen(hdr), out, 10), -1);       /* 10 chars need 11 */
    assert_int_equal(qid(hdr, strlen(hdr), out, 11), 0);
    assert_string_equal(out, "ABCDEFGHIJ");
    assert_int_equal(qid(hdr, strlen(hdr), out, 1), -1);
}

static void test_lowercase_header_name(void **state)
{
    (void)state;
    expect_id("received: by mx.example.org (Postfix) id 4LoWeR1; date\r\n\r\n", "4LoWeR1");
    expect_id("RECEIVED: by mx.example.org (Postfix) id 4UPPER2; date\r\n\r\n", "4UPPER2");
}

static void test_word_boundaries(void **state)
{
    (void)state;
    /* "id" inside words or host names is not the keyword */
    expect_id("Received: from valid.example (idle.example [192.0.2.1]) by mx (Postfix) "
              "with ESMTP id REAL1; date\r\n\r\n", "REAL1");
    /* the id ends at the first character that is not a letter or digit */
    expect_id("Received: by mx (Postfix) id AB12-cd; date\r\n\r\n", "AB12");
    /* tab as the separator */
    expect_id("Received: by mx (Postfix)\tid\tTAB1; date\r\n\r\n", "TAB1");
}

/* Regression (fixed): lib/queueid.c returns -1 at the first " id " whose next word is not
 * alphanumeric instead of looking further. A client whose HELO name is
 * "id" (Postfix writes "from id (host [addr])") hides the queue id. */
static void test_helo_named_id(void **state)
{
    (void)state;
    expect_id("Received: from id (unknown [192.0.2.9])\r\n"
              "\tby mx.example.org (Postfix) with SMTP id 4Real1\r\n"
              "\tfor <u@example.org>; Mon, 1 Jan 2024 00:00:00 +0000\r\n\r\n", "4Real1");
}

static void test_not_nul_terminated(void **state)
{
    const char *hdr = "Received: by mx (Postfix) id ABCDEF; date\r\n\r\n";
    const char *p = strstr(hdr, "DEF");
    char out[32];

    (void)state;
    /* the buffer ends inside the id: only what is inside len counts */
    assert_int_equal(qid(hdr, (size_t)(p - hdr), out, sizeof(out)), 0);
    assert_string_equal(out, "ABC");
    /* the buffer ends right after "id" */
    p = strstr(hdr, " ABC");
    assert_int_equal(qid(hdr, (size_t)(p - hdr), out, sizeof(out)), -1);
    /* the buffer ends inside the header name */
    assert_int_equal(qid(hdr, 5, out, sizeof(out)), -1);
    assert_int_equal(qid(hdr, 0, out, sizeof(out)), -1);
}

static void test_very_long_received(void **state)
{
    /* a Received header far longer than the parser looks at */
    size_t n = 20000;
    char *hdr = malloc(n + 100);
    char out[32];

    (void)state;
    assert_non_null(hdr);
    strcpy(hdr, "Received: from ");
    memset(hdr + strlen(hdr), 'x', n);
    strcpy(hdr + 15 + n, " by mx (Postfix) id LATE1; date\r\n\r\n");
    assert_int_equal(qid(hdr, strlen(hdr), out, sizeof(out)), -1);
    /* a long one with the id early is fine */
    strcpy(hdr, "Received: by mx (Postfix) id EARLY1 ");
    memset(hdr + strlen(hdr), 'y', n);
    strcpy(hdr + 36 + n, "; date\r\n\r\n");
    assert_int_equal(qid(hdr, strlen(hdr), out, sizeof(out)), 0);
    assert_string_equal(out, "EARLY1");
    free(hdr);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_postfix_folded),
        cmocka_unit_test(test_postfix_one_line),
        cmocka_unit_test(test_topmost_only),
        cmocka_unit_test(test_no_received),
        cmocka_unit_test(test_received_after_header_end),
        cmocka_unit_test(test_id_after_semicolon_ignored),
        cmocka_unit_test(test_id_too_long),
        cmocka_unit_test(test_lowercase_header_name),
        cmocka_unit_test(test_word_boundaries),
        cmocka_unit_test(test_helo_named_id),
        cmocka_unit_test(test_not_nul_terminated),
        cmocka_unit_test(test_very_long_received),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
