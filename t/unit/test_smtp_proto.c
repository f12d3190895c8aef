/*
 * test_smtp_proto.c - unit tests of lib/smtp_proto.c: command line
 * splitting, MAIL/RCPT parameters and addresses, mailbox syntax, XFORWARD
 * and xtext. Every refusal is checked against its exact reply text.
 */
#include "config.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "smtp_proto.h"

/* ---- rg_smtp_parse_line ------------------------------------------------- */

static void check_line(const char *line, enum rg_smtp_verb verb, const char *name,
                       const char *arg)
{
    struct rg_smtp_cmd cmd;

    assert_int_equal(rg_smtp_parse_line(line, strlen(line), &cmd), 0);
    assert_int_equal(cmd.verb, verb);
    assert_string_equal(cmd.name, name);
    assert_string_equal(cmd.arg, arg);
}

static void test_line_verbs(void **state)
{
    static const struct {
        const char *word;
        enum rg_smtp_verb verb;
    } v[] = {
        { "HELO", RG_CMD_HELO }, { "EHLO", RG_CMD_EHLO }, { "LHLO", RG_CMD_LHLO },
        { "MAIL", RG_CMD_MAIL }, { "RCPT", RG_CMD_RCPT }, { "DATA", RG_CMD_DATA },
        { "BDAT", RG_CMD_BDAT }, { "RSET", RG_CMD_RSET }, { "NOOP", RG_CMD_NOOP },
        { "QUIT", RG_CMD_QUIT }, { "VRFY", RG_CMD_VRFY }, { "EXPN", RG_CMD_EXPN },
        { "HELP", RG_CMD_HELP }, { "XFORWARD", RG_CMD_XFORWARD },
        { "STARTTLS", RG_CMD_STARTTLS }, { "AUTH", RG_CMD_AUTH },
    };

    (void)state;
    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++)
        check_line(v[i].word, v[i].verb, v[i].word, "");
}

static void test_line_case_insensitive(void **state)
{
    (void)state;
    check_line("mail FROM:<a@b.c>", RG_CMD_MAIL, "MAIL", "FROM:<a@b.c>");
    check_line("MaIl from:<a@b.c>", RG_CMD_MAIL, "MAIL", "from:<a@b.c>");
    check_line("rcpt TO:<x@y.z>", RG_CMD_RCPT, "RCPT", "TO:<x@y.z>");
    check_line("quit", RG_CMD_QUIT, "QUIT", "");
    check_line("xForward NAME=x", RG_CMD_XFORWARD, "XFORWARD", "NAME=x");
    check_line("ehlo client.example", RG_CMD_EHLO, "EHLO", "client.example");
}

static void test_line_args(void **state)
{
    (void)state;
    check_line("NOOP", RG_CMD_NOOP, "NOOP", "");
    check_line("NOOP   spaced out", RG_CMD_NOOP, "NOOP", "spaced out");
    check_line("HELO\thost", RG_CMD_HELO, "HELO", "host");
    check_line("EHLO host ", RG_CMD_EHLO, "EHLO", "host ");
    check_line("DATA ", RG_CMD_DATA, "DATA", "");
    /* unknown verbs keep their argument; verbs must match whole */
    check_line("FOO bar baz", RG_CMD_UNKNOWN, "", "bar baz");
    check_line("MAILX FROM:<>", RG_CMD_UNKNOWN, "", "FROM:<>");
    check_line("MAI", RG_CMD_UNKNOWN, "", "");
    check_line("", RG_CMD_UNKNOWN, "", "");
    check_line("MAIL:FROM", RG_CMD_UNKNOWN, "", "");
}

static void test_line_bad_characters(void **state)
{
    static const char *const bad[] = {
        "NOOP\x01", "NO\x1bOP", "NOOP x\x7f", "MAIL FROM:<a@b>\r", "RCPT\nTO:<a@b>",
        "\x08", "HELO \x1f",
    };
    struct rg_smtp_cmd cmd;

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(rg_smtp_parse_line(bad[i], strlen(bad[i]), &cmd), -1);
    /* a NUL byte inside the line (len covers it) */
    assert_int_equal(rg_smtp_parse_line("NO\0OP", 5, &cmd), -1);
    assert_int_equal(rg_smtp_parse_line("NOOP\0", 5, &cmd), -1);
    assert_int_equal(rg_smtp_parse_line("\0", 1, &cmd), -1);
    /* high-bit bytes (UTF-8) are not control characters */
    assert_int_equal(rg_smtp_parse_line("HELO h\xc3\xa9", 8, &cmd), 0);
    assert_int_equal(cmd.verb, RG_CMD_HELO);
    assert_string_equal(cmd.arg, "h\xc3\xa9");
}

/* ---- MAIL --------------------------------------------------------------- */

static void mail_ok(const char *arg, const char *addr, long long size, enum rg_body_type body,
                    int utf8)
{
    char a[RG_ADDR_MAX];
    struct rg_mail_params p;
    const char *reply = "untouched";

    memset(a, 'X', sizeof(a));
    assert_int_equal(rg_smtp_parse_mail(arg, a, sizeof(a), &p, &reply), 0);
    assert_string_equal(a, addr);
    assert_int_equal(p.size, size);
    assert_int_equal(p.body, body);
    assert_int_equal(p.smtputf8, utf8);
}

static void mail_bad(const char *arg, const char *expect)
{
    char a[RG_ADDR_MAX];
    struct rg_mail_params p;
    const char *reply = NULL;

    assert_int_equal(rg_smtp_parse_mail(arg, a, sizeof(a), &p, &reply), -1);
    assert_non_null(reply);
    assert_string_equal(reply, expect);
}

#define BAD_SENDER "501 5.1.7 Bad sender address syntax"
#define BAD_RCPT "501 5.1.3 Bad recipient address syntax"
#define NEED_UTF8 "553 5.6.7 Must declare SMTPUTF8 to send a UTF-8 address"
#define UNSUPP "555 5.5.4 Unsupported option"
#define BAD_SIZE "501 5.5.4 Bad SIZE parameter"

static void test_mail_basic(void **state)
{
    (void)state;
    mail_ok("FROM:<alice@example.com>", "alice@example.com", -1, RG_BODY_NONE, 0);
    mail_ok("from:<alice@example.com>", "alice@example.com", -1, RG_BODY_NONE, 0);
    mail_ok("From:<a.b-c+d@sub.example.co.uk>", "a.b-c+d@sub.example.co.uk", -1,
            RG_BODY_NONE, 0);
    /* bare path without brackets, as Postfix tolerates */
    mail_ok("FROM:alice@example.com", "alice@example.com", -1, RG_BODY_NONE, 0);
}

static void test_mail_null_sender(void **state)
{
    (void)state;
    mail_ok("FROM:<>", "", -1, RG_BODY_NONE, 0);
    mail_ok("FROM:<> SIZE=100", "", 100, RG_BODY_NONE, 0);
    mail_ok("FROM:<> BODY=8BITMIME SMTPUTF8", "", -1, RG_BODY_8BITMIME, 1);
}

/* bad input (issue 7): no address at all is not the null sender, and a
 * second '<' outside a quoted string is a syntax error, not a parameter */
static void test_mail_missing_or_nested_path(void **state)
{
    (void)state;
    mail_bad("FROM:", BAD_SENDER);
    mail_bad("FROM:   ", BAD_SENDER);
    mail_bad("FROM:<<a@b.c>>", BAD_SENDER);
    mail_bad("FROM:<a<b@b.c>", BAD_SENDER);
    mail_ok("FROM:<\"a<b\"@b.c>", "\"a<b\"@b.c", -1, RG_BODY_NONE, 0);
}

static void test_mail_space_after_colon(void **state)
{
    (void)state;
    mail_ok("FROM: <alice@example.com>", "alice@example.com", -1, RG_BODY_NONE, 0);
    mail_ok("FROM:   <alice@example.com>", "alice@example.com", -1, RG_BODY_NONE, 0);
    mail_ok("FROM :<alice@example.com>", "alice@example.com", -1, RG_BODY_NONE, 0);
    mail_ok("FROM : <> SIZE=5", "", 5, RG_BODY_NONE, 0);
}

static void test_mail_size(void **state)
{
    (void)state;
    mail_ok("FROM:<a@b.c> SIZE=0", "a@b.c", 0, RG_BODY_NONE, 0);
    mail_ok("FROM:<a@b.c> SIZE=52428800", "a@b.c", 52428800, RG_BODY_NONE, 0);
    mail_ok("FROM:<a@b.c> size=12", "a@b.c", 12, RG_BODY_NONE, 0);
    mail_ok("FROM:<a@b.c> SIZE=9223372036854775807", "a@b.c", 9223372036854775807LL,
            RG_BODY_NONE, 0);
    mail_ok("FROM:<a@b.c>   SIZE=7  ", "a@b.c", 7, RG_BODY_NONE, 0);
}

static void test_mail_bad_size(void **state)
{
    (void)state;
    mail_bad("FROM:<a@b.c> SIZE=abc", BAD_SIZE);
    mail_bad("FROM:<a@b.c> SIZE=", BAD_SIZE);
    mail_bad("FROM:<a@b.c> SIZE", BAD_SIZE);
    mail_bad("FROM:<a@b.c> SIZE=-1", BAD_SIZE);
    mail_bad("FROM:<a@b.c> SIZE=+5", BAD_SIZE);
    mail_bad("FROM:<a@b.c> SIZE= 5", BAD_SIZE);
    mail_bad("FROM:<a@b.c> SIZE=12x", BAD_SIZE);
    mail_bad("FROM:<a@b.c> SIZE=9223372036854775808", BAD_SIZE);
    mail_bad("FROM:<a@b.c> SIZE=99999999999999999999999", BAD_SIZE);
    mail_bad("FROM:<a@b.c> SIZE=1 SIZE=2", BAD_SIZE);
}

static void test_mail_body(void **state)
{
    (void)state;
    mail_ok("FROM:<a@b.c> BODY=8BITMIME", "a@b.c", -1, RG_BODY_8BITMIME, 0);
    mail_ok("FROM:<a@b.c> body=8bitmime", "a@b.c", -1, RG_BODY_8BITMIME, 0);
    mail_ok("FROM:<a@b.c> BODY=7BIT", "a@b.c", -1, RG_BODY_7BIT, 0);
    mail_ok("FROM:<a@b.c> SIZE=10 BODY=7BIT", "a@b.c", 10, RG_BODY_7BIT, 0);
    mail_bad("FROM:<a@b.c> BODY=BINARYMIME", "501 5.5.4 Bad BODY parameter");
    mail_bad("FROM:<a@b.c> BODY=", "501 5.5.4 Bad BODY parameter");
    mail_bad("FROM:<a@b.c> BODY", "501 5.5.4 Bad BODY parameter");
}

static void test_mail_smtputf8(void **state)
{
    (void)state;
    mail_ok("FROM:<a@b.c> SMTPUTF8", "a@b.c", -1, RG_BODY_NONE, 1);
    mail_ok("FROM:<a@b.c> smtputf8 BODY=8BITMIME SIZE=3", "a@b.c", 3, RG_BODY_8BITMIME, 1);
    mail_bad("FROM:<a@b.c> SMTPUTF8=yes", UNSUPP);
}

static void test_mail_unknown_param(void **state)
{
    (void)state;
    mail_bad("FROM:<a@b.c> FOO=bar", UNSUPP);
    mail_bad("FROM:<a@b.c> FOO", UNSUPP);
    mail_bad("FROM:<a@b.c> RET=HDRS", UNSUPP);
    mail_bad("FROM:<a@b.c> AUTH=<>", UNSUPP);
    mail_bad("FROM:<a@b.c> =x", UNSUPP);
    mail_bad("FROM:<a@b.c> SIZE=10 ENVID=abc", UNSUPP);
    /* a keyword longer than any real one */
    mail_bad("FROM:<a@b.c> ABCDEFGHIJKLMNOPQRSTUVWXYZABCDEFGHIJ=1", UNSUPP);
    /* a value longer than any real one */
    mail_bad("FROM:<a@b.c> BODY=0123456789012345678901234567890123456789012345678901234567890123456789",
             UNSUPP);
}

static void test_mail_syntax(void **state)
{
    (void)state;
    mail_bad("TO:<a@b.c>", "501 5.5.4 Syntax: MAIL FROM:<address>");
    mail_bad("", "501 5.5.4 Syntax: MAIL FROM:<address>");
    mail_bad("FROM<a@b.c>", "501 5.5.4 Syntax: MAIL FROM:<address>");
    mail_bad("FRO:<a@b.c>", "501 5.5.4 Syntax: MAIL FROM:<address>");
    mail_bad("FROM:<a@b.c", BAD_SENDER);
    mail_bad("FROM:<a@@b.c>", BAD_SENDER);
    mail_bad("FROM:<a@b..c>", BAD_SENDER);
    mail_bad("FROM:<a b@c.d>", BAD_SENDER);
    mail_bad("FROM:<alice>", BAD_SENDER);
    mail_bad("FROM:<@b.c>", BAD_SENDER);
}

static void test_mail_source_route(void **state)
{
    (void)state;
    mail_ok("FROM:<@relay.example:alice@example.com>", "alice@example.com", -1, RG_BODY_NONE, 0);
    mail_ok("FROM:<@r1.example,@r2.example:alice@example.com> SIZE=9", "alice@example.com", 9,
            RG_BODY_NONE, 0);
    /* a route with no colon is not a path */
    mail_bad("FROM:<@relay.example>", BAD_SENDER);
}

static void test_mail_quoted_local(void **state)
{
    (void)state;
    mail_ok("FROM:<\"john doe\"@example.com>", "\"john doe\"@example.com", -1, RG_BODY_NONE, 0);
    /* a '>' inside the quoted string does not close the path */
    mail_ok("FROM:<\"a>b\"@example.com> SIZE=1", "\"a>b\"@example.com", 1, RG_BODY_NONE, 0);
    mail_ok("FROM:<\"a\\\"b\"@example.com>", "\"a\\\"b\"@example.com", -1, RG_BODY_NONE, 0);
    mail_bad("FROM:<\"unterminated@example.com>", BAD_SENDER);
}

static void test_mail_utf8_address(void **state)
{
    (void)state;
    /* "jörg@exämple.de" */
    mail_bad("FROM:<j\xc3\xb6rg@ex\xc3\xa4mple.de>", NEED_UTF8);
    mail_ok("FROM:<j\xc3\xb6rg@ex\xc3\xa4mple.de> SMTPUTF8", "j\xc3\xb6rg@ex\xc3\xa4mple.de", -1,
            RG_BODY_NONE, 1);
    mail_bad("FROM:<j\xc3\xb6rg@example.de>", NEED_UTF8);
    /* invalid UTF-8 is a syntax error either way */
    mail_bad("FROM:<j\xffrg@example.de>", BAD_SENDER);
    mail_bad("FROM:<j\xffrg@example.de> SMTPUTF8", BAD_SENDER);
    mail_bad("FROM:<j\xc3(rg@example.de> SMTPUTF8", BAD_SENDER);
    /* overlong encoding of '/' */
    mail_bad("FROM:<j\xc0\xafrg@example.de> SMTPUTF8", BAD_SENDER);
}

static void test_mail_too_long(void **state)
{
    char arg[2 * RG_ADDR_MAX], a[64];
    struct rg_mail_params p;
    const char *reply = NULL;

    (void)state;
    /* longer than the caller's buffer */
    assert_int_equal(rg_smtp_parse_mail("FROM:<alice@example.com>", a, 17, &p, &reply), -1);
    assert_string_equal(reply, BAD_SENDER);
    /* fits exactly: 17 chars + NUL */
    assert_int_equal(rg_smtp_parse_mail("FROM:<alice@example.com>", a, 18, &p, &reply), 0);
    assert_string_equal(a, "alice@example.com");

    /* longer than RG_ADDR_MAX */
    strcpy(arg, "FROM:<a@");
    for (size_t i = strlen(arg); i < RG_ADDR_MAX + 20; i += 2)
        strcat(arg, "b.");
    strcat(arg, "com>");
    mail_bad(arg, BAD_SENDER);

    /* local part of 64 octets is fine, 65 is not */
    char lp[80], expect[200];
    memset(lp, 'l', 64);
    lp[64] = 0;
    snprintf(arg, sizeof(arg), "FROM:<%s@example.com>", lp);
    snprintf(expect, sizeof(expect), "%s@example.com", lp);
    mail_ok(arg, expect, -1, RG_BODY_NONE, 0);
    memset(lp, 'l', 65);
    lp[65] = 0;
    snprintf(arg, sizeof(arg), "FROM:<%s@example.com>", lp);
    mail_bad(arg, BAD_SENDER);
}

/* ---- RCPT --------------------------------------------------------------- */

static void rcpt_ok(const char *arg, int utf8, const char *addr)
{
    char a[RG_ADDR_MAX];
    const char *reply = "untouched";

    assert_int_equal(rg_smtp_parse_rcpt(arg, utf8, a, sizeof(a), &reply), 0);
    assert_string_equal(a, addr);
}

static void rcpt_bad(const char *arg, int utf8, const char *expect)
{
    char a[RG_ADDR_MAX];
    const char *reply = NULL;

    assert_int_equal(rg_smtp_parse_rcpt(arg, utf8, a, sizeof(a), &reply), -1);
    assert_non_null(reply);
    assert_string_equal(reply, expect);
}

static void test_rcpt_missing_or_nested_path(void **state)
{
    (void)state;
    rcpt_bad("TO:", 0, BAD_RCPT);
    rcpt_bad("TO:<<b@b.c>>", 0, BAD_RCPT);
    rcpt_bad("TO:<>", 0, BAD_RCPT);
}

static void test_rcpt_basic(void **state)
{
    (void)state;
    rcpt_ok("TO:<bob@example.org>", 0, "bob@example.org");
    rcpt_ok("to:<bob@example.org>", 0, "bob@example.org");
    rcpt_ok("TO: <bob@example.org>", 0, "bob@example.org");
    rcpt_ok("TO:<bob@example.org>  ", 0, "bob@example.org");
    rcpt_ok("TO:<@hop.example:bob@example.org>", 0, "bob@example.org");
    rcpt_ok("TO:<\"bob smith\"@example.org>", 0, "\"bob smith\"@example.org");
    rcpt_ok("TO:<bob@[192.0.2.1]>", 0, "bob@[192.0.2.1]");
}

static void test_rcpt_postmaster(void **state)
{
    (void)state;
    rcpt_ok("TO:<postmaster>", 0, "postmaster");
    rcpt_ok("TO:<Postmaster>", 0, "Postmaster");
    rcpt_ok("TO:<POSTMASTER>", 0, "POSTMASTER");
    rcpt_ok("TO:<postmaster@example.org>", 0, "postmaster@example.org");
    rcpt_bad("TO:<postmistress>", 0, BAD_RCPT);
}

static void test_rcpt_bad_syntax(void **state)
{
    (void)state;
    rcpt_bad("TO:<>", 0, BAD_RCPT);
    rcpt_bad("TO:<bob>", 0, BAD_RCPT);
    rcpt_bad("TO:<bob@@example.org>", 0, BAD_RCPT);
    rcpt_bad("TO:<bob@example..org>", 0, BAD_RCPT);
    rcpt_bad("TO:<bob@example.org", 0, BAD_RCPT);
    rcpt_bad("TO:<.bob@example.org>", 0, BAD_RCPT);
    rcpt_bad("TO:<bob@-example.org>", 0, BAD_RCPT);
    rcpt_bad("TO:<@hop.example>", 0, BAD_RCPT);
    rcpt_bad("FROM:<bob@example.org>", 0, "501 5.5.4 Syntax: RCPT TO:<address>");
    rcpt_bad("", 0, "501 5.5.4 Syntax: RCPT TO:<address>");
    rcpt_bad("TO<bob@example.org>", 0, "501 5.5.4 Syntax: RCPT TO:<address>");
}

static void test_rcpt_params_refused(void **state)
{
    (void)state;
    rcpt_bad("TO:<bob@example.org> NOTIFY=NEVER", 0, UNSUPP);
    rcpt_bad("TO:<bob@example.org> ORCPT=rfc822;bob@example.org", 0, UNSUPP);
    rcpt_bad("TO:<postmaster> X", 0, UNSUPP);
}

static void test_rcpt_utf8(void **state)
{
    (void)state;
    rcpt_bad("TO:<b\xc3\xb6" "b@example.org>", 0, NEED_UTF8);
    rcpt_ok("TO:<b\xc3\xb6" "b@example.org>", 1, "b\xc3\xb6" "b@example.org");
    rcpt_bad("TO:<b\xff" "b@example.org>", 1, BAD_RCPT);
    rcpt_bad("TO:<b\xff" "b@example.org>", 0, BAD_RCPT);
}

static void test_rcpt_too_long(void **state)
{
    char a[8];
    const char *reply = NULL;

    (void)state;
    assert_int_equal(rg_smtp_parse_rcpt("TO:<bob@example.org>", 0, a, sizeof(a), &reply), -1);
    assert_string_equal(reply, BAD_RCPT);
}

/* ---- rg_smtp_valid_mailbox ---------------------------------------------- */

static void test_mailbox_dots(void **state)
{
    (void)state;
    assert_int_equal(rg_smtp_valid_mailbox("a@b", 0), 1);
    assert_int_equal(rg_smtp_valid_mailbox("a.b@c.d", 0), 1);
    assert_int_equal(rg_smtp_valid_mailbox("a.b.c@d", 0), 1);
    assert_int_equal(rg_smtp_valid_mailbox(".a@b", 0), 0);
    assert_int_equal(rg_smtp_valid_mailbox("a.@b", 0), 0);
    assert_int_equal(rg_smtp_valid_mailbox("a..b@c", 0), 0);
    assert_int_equal(rg_smtp_valid_mailbox(".@b", 0), 0);
    assert_int_equal(rg_smtp_valid_mailbox("@b", 0), 0);
    assert_int_equal(rg_smtp_valid_mailbox("a@", 0), 0);
    assert_int_equal(rg_smtp_valid_mailbox("a", 0), 0);
    assert_int_equal(rg_smtp_valid_mailbox("", 0), 0);
    assert_int_equal(rg_smtp_valid_mailbox("a@b@c", 0), 0);
    assert_int_equal(rg_smtp_valid_mailbox("!#$%&'*+-/=?^_`{|}~@b", 0), 1);
    assert_int_equal(rg_smtp_valid_mailbox("a(b)@c", 0), 0);
    assert_int_equal(rg_smtp_valid_mailbox("a,b@c", 0), 0);
    assert_int_equal(rg_smtp_valid_mailbox("a b@c", 0), 0);
}

/* "a@" + 3 labels of 63 + a label of `fourth` + ".a": a domain of 194 + fourth octets */
static char *make_domain(char *addr, size_t fourth)
{
    char *p = addr;

    *p++ = 'a';
    *p++ = '@';
    for (int i = 0; i < 3; i++) {
        memset(p, (char)('d' + i), 63);
        p += 63;
        *p++ = '.';
    }
    memset(p, 'g', fourth);
    p += fourth;
    strcpy(p, ".a");
    return addr;
}

static void test_mailbox_labels(void **state)
{
    char addr[400];

    (void)state;
    assert_int_equal(rg_smtp_valid_mailbox("a@b-c.d", 0), 1);
    assert_int_equal(rg_smtp_valid_mailbox("a@1.2.3.4", 0), 1);
    assert_int_equal(rg_smtp_valid_mailbox("a@.b", 0), 0);
    assert_int_equal(rg_smtp_valid_mailbox("a@b.", 0), 0);
    assert_int_equal(rg_smtp_valid_mailbox("a@b..c", 0), 0);
    assert_int_equal(rg_smtp_valid_mailbox("a@-b.c", 0), 0);
    assert_int_equal(rg_smtp_valid_mailbox("a@b-.c", 0), 0);
    assert_int_equal(rg_smtp_valid_mailbox("a@b.-c", 0), 0);
    assert_int_equal(rg_smtp_valid_mailbox("a@b_c.d", 0), 0);
    assert_int_equal(rg_smtp_valid_mailbox("a@b c.d", 0), 0);
    /* labels of 63 octets are fine, 64 are not */
    strcpy(addr, "a@");
    memset(addr + 2, 'x', 63);
    strcpy(addr + 65, ".com");
    assert_int_equal(rg_smtp_valid_mailbox(addr, 0), 1);
    memset(addr + 2, 'x', 64);
    strcpy(addr + 66, ".com");
    assert_int_equal(rg_smtp_valid_mailbox(addr, 0), 0);
    /* a domain of 255 octets is fine, 256 is not */
    assert_int_equal(rg_smtp_valid_mailbox(make_domain(addr, 61), 0), 1);
    assert_int_equal(strlen(addr + 2), 255);
    assert_int_equal(rg_smtp_valid_mailbox(make_domain(addr, 62), 0), 0);
    assert_int_equal(strlen(addr + 2), 256);
}

static void test_mailbox_literals(void **state)
{
    (void)state;
    assert_int_equal(rg_smtp_valid_mailbox("a@[192.0.2.1]", 0), 1);
    assert_int_equal(rg_smtp_valid_mailbox("a@[IPv6:2001:db8::1]", 0), 1);
    assert_int_equal(rg_smtp_valid_mailbox("a@[]", 0), 0);
    assert_int_equal(rg_smtp_valid_mailbox("a@[192.0.2.1", 0), 0);
    assert_int_equal(rg_smtp_valid_mailbox("a@192.0.2.1]", 0), 0);
    assert_int_equal(rg_smtp_valid_mailbox("a@[192.0.2.1 ]", 0), 0);
    assert_int_equal(rg_smtp_valid_mailbox("a@[a]b]", 0), 0);
    assert_int_equal(rg_smtp_valid_mailbox("a@[1.2.3.4]x", 0), 0);
}

static void test_mailbox_local_length(void **state)
{
    char addr[200];

    (void)state;
    memset(addr, 'l', 64);
    strcpy(addr + 64, "@b.c");
    assert_int_equal(rg_smtp_valid_mailbox(addr, 0), 1);
    memset(addr, 'l', 65);
    strcpy(addr + 65, "@b.c");
    assert_int_equal(rg_smtp_valid_mailbox(addr, 0), 0);
    /* quoted: 64 octets of content plus the quotes */
    addr[0] = '"';
    memset(addr + 1, 'q', 64);
    strcpy(addr + 65, "\"@b.c");
    assert_int_equal(rg_smtp_valid_mailbox(addr, 0), 1);
    addr[0] = '"';
    memset(addr + 1, 'q', 65);
    strcpy(addr + 66, "\"@b.c");
    assert_int_equal(rg_smtp_valid_mailbox(addr, 0), 0);
}

static void test_mailbox_quoted(void **state)
{
    (void)state;
    assert_int_equal(rg_smtp_valid_mailbox("\"a b\"@c", 0), 1);
    assert_int_equal(rg_smtp_valid_mailbox("\"\"@c", 0), 1);
    assert_int_equal(rg_smtp_valid_mailbox("\"a@b\"@c", 0), 1);
    assert_int_equal(rg_smtp_valid_mailbox("\"a\\\"b\"@c", 0), 1);
    assert_int_equal(rg_smtp_valid_mailbox("\"a\\\\\"@c", 0), 1);
    assert_int_equal(rg_smtp_valid_mailbox("\"a\"b@c", 0), 0);
    assert_int_equal(rg_smtp_valid_mailbox("\"a\"", 0), 0);
    assert_int_equal(rg_smtp_valid_mailbox("\"a@c", 0), 0);
    assert_int_equal(rg_smtp_valid_mailbox("\"a\\\"@c", 0), 0);
    assert_int_equal(rg_smtp_valid_mailbox("\"a\x01\"@c", 0), 0);
    assert_int_equal(rg_smtp_valid_mailbox("\"a\x7f\"@c", 0), 0);
    assert_int_equal(rg_smtp_valid_mailbox("\"a\\\x01\"@c", 0), 0);
    assert_int_equal(rg_smtp_valid_mailbox("\"a\\", 0), 0);
}

static void test_mailbox_utf8(void **state)
{
    (void)state;
    assert_int_equal(rg_smtp_valid_mailbox("\xc3\xa9@b.c", 0), 0);
    assert_int_equal(rg_smtp_valid_mailbox("\xc3\xa9@b.c", 1), 1);
    assert_int_equal(rg_smtp_valid_mailbox("a@\xc3\xa4.de", 0), 0);
    assert_int_equal(rg_smtp_valid_mailbox("a@\xc3\xa4.de", 1), 1);
    /* 4-byte sequence (U+1F600) */
    assert_int_equal(rg_smtp_valid_mailbox("\xf0\x9f\x98\x80@b.c", 1), 1);
    /* malformed UTF-8: never valid */
    assert_int_equal(rg_smtp_valid_mailbox("\xff@b.c", 1), 0);
    assert_int_equal(rg_smtp_valid_mailbox("\xc3@b.c", 1), 0);
    assert_int_equal(rg_smtp_valid_mailbox("\xe2\x82@b.c", 1), 0);
    assert_int_equal(rg_smtp_valid_mailbox("\x80@b.c", 1), 0);
    assert_int_equal(rg_smtp_valid_mailbox("\xc1\xbf@b.c", 1), 0);
    assert_int_equal(rg_smtp_valid_mailbox("\xf5\x80\x80\x80@b.c", 1), 0);
    /* a truncated sequence at the very end must not read past the NUL */
    assert_int_equal(rg_smtp_valid_mailbox("a@b.c\xe2", 1), 0);
}

/* Regression (fixed): valid_utf8() in lib/smtp_proto.c refuses the 2-byte overlong forms
 * (C0, C1) and lead bytes above F4, but accepts 3- and 4-byte overlong
 * forms, UTF-16 surrogates and code points above U+10FFFF, none of which
 * are UTF-8 (RFC 3629, required by RFC 6531). "\xe0\x81\x80" is an
 * overlong '@' that a lenient decoder downstream would read as one. */
static void test_mailbox_utf8_strict(void **state)
{
    (void)state;
    /* overlong '@' (3 bytes) in the local part */
    assert_int_equal(rg_smtp_valid_mailbox("a\xe0\x81\x80@b.c", 1), 0);
    /* overlong U+0080 (4 bytes) */
    assert_int_equal(rg_smtp_valid_mailbox("\xf0\x80\x82\x80@b.c", 1), 0);
    /* UTF-16 surrogate U+D800 */
    assert_int_equal(rg_smtp_valid_mailbox("\xed\xa0\x80@b.c", 1), 0);
    /* U+110000, beyond Unicode */
    assert_int_equal(rg_smtp_valid_mailbox("\xf4\x90\x80\x80@b.c", 1), 0);
    /* the largest valid ones are still fine */
    assert_int_equal(rg_smtp_valid_mailbox("\xef\xbf\xbd@b.c", 1), 1);
    assert_int_equal(rg_smtp_valid_mailbox("\xf4\x8f\xbf\xbf@b.c", 1), 1);
    assert_int_equal(rg_smtp_valid_mailbox("\xe0\xa0\x80@b.c", 1), 1);
}

/* ---- XFORWARD and xtext ------------------------------------------------- */

static void test_xforward_all(void **state)
{
    struct rg_xforward xf;
    const char *reply = NULL;

    (void)state;
    memset(&xf, 0, sizeof(xf));
    assert_int_equal(rg_smtp_parse_xforward(
        "NAME=spike.porcupine.org ADDR=168.100.189.2 PORT=49152 PROTO=ESMTP "
        "HELO=spike.porcupine.org IDENT=4XyZ12abc SOURCE=REMOTE", &xf, &reply), 0);
    assert_string_equal(xf.value[RG_XF_NAME], "spike.porcupine.org");
    assert_string_equal(xf.value[RG_XF_ADDR], "168.100.189.2");
    assert_string_equal(xf.value[RG_XF_PORT], "49152");
    assert_string_equal(xf.value[RG_XF_PROTO], "ESMTP");
    assert_string_equal(xf.value[RG_XF_HELO], "spike.porcupine.org");
    assert_string_equal(xf.value[RG_XF_IDENT], "4XyZ12abc");
    assert_string_equal(xf.value[RG_XF_SOURCE], "REMOTE");
    assert_string_equal(rg_xf_names[RG_XF_NAME], "NAME");
    assert_string_equal(rg_xf_names[RG_XF_SOURCE], "SOURCE");
}

static void test_xforward_incremental(void **state)
{
    struct rg_xforward xf;
    const char *reply = NULL;

    (void)state;
    memset(&xf, 0, sizeof(xf));
    /* Postfix splits long XFORWARD commands: attributes accumulate */
    assert_int_equal(rg_smtp_parse_xforward("name=host.example addr=[UNAVAILABLE]", &xf, &reply), 0);
    assert_int_equal(rg_smtp_parse_xforward("HELO=h+2Bx.example", &xf, &reply), 0);
    assert_string_equal(xf.value[RG_XF_NAME], "host.example");
    assert_string_equal(xf.value[RG_XF_ADDR], "[UNAVAILABLE]");
    /* kept as received, still xtext-encoded */
    assert_string_equal(xf.value[RG_XF_HELO], "h+2Bx.example");
    assert_string_equal(xf.value[RG_XF_PORT], "");
    /* a later value replaces an earlier one */
    assert_int_equal(rg_smtp_parse_xforward("NAME=other.example", &xf, &reply), 0);
    assert_string_equal(xf.value[RG_XF_NAME], "other.example");
}

static void xforward_bad(const char *arg, const char *expect)
{
    struct rg_xforward xf, before;
    const char *reply = NULL;

    memset(&xf, 0, sizeof(xf));
    strcpy(xf.value[RG_XF_NAME], "before");
    before = xf;
    assert_int_equal(rg_smtp_parse_xforward(arg, &xf, &reply), -1);
    assert_non_null(reply);
    assert_string_equal(reply, expect);
    /* all or nothing: a refused command changes nothing */
    assert_memory_equal(&xf, &before, sizeof(xf));
}

static void test_xforward_bad(void **state)
{
    char big[RG_XF_VALUE_MAX + 16];

    (void)state;
    xforward_bad("FOO=bar", "501 5.5.4 Unknown XFORWARD attribute");
    xforward_bad("NAME=ok.example FOO=bar", "501 5.5.4 Unknown XFORWARD attribute");
    xforward_bad("NAME=a+0Db", "501 5.5.4 Bad XFORWARD attribute value");
    xforward_bad("NAME=a+0Ab", "501 5.5.4 Bad XFORWARD attribute value");
    xforward_bad("NAME=a+00b", "501 5.5.4 Bad XFORWARD attribute value");
    xforward_bad("HELO=x+0D+0A.+0D+0A", "501 5.5.4 Bad XFORWARD attribute value");
    xforward_bad("NAME=x ADDR=1+0D", "501 5.5.4 Bad XFORWARD attribute value");
    xforward_bad("NAME=a+4", "501 5.5.4 Bad XFORWARD attribute value");
    xforward_bad("NAME=", "501 5.5.4 Bad XFORWARD attribute value");
    xforward_bad("NAME= x", "501 5.5.4 Bad XFORWARD attribute value");
    xforward_bad("NAME", "501 5.5.4 Bad XFORWARD attribute syntax");
    xforward_bad("NAME x", "501 5.5.4 Bad XFORWARD attribute syntax");
    xforward_bad("=x", "501 5.5.4 Bad XFORWARD attribute syntax");
    xforward_bad("VERYLONGATTRIBUTENAME=x", "501 5.5.4 Bad XFORWARD attribute syntax");
    xforward_bad("", "501 5.5.4 Syntax: XFORWARD attribute=value...");
    xforward_bad("   ", "501 5.5.4 Syntax: XFORWARD attribute=value...");

    /* a value of RG_XF_VALUE_MAX - 1 octets fits, one more does not */
    strcpy(big, "NAME=");
    memset(big + 5, 'v', RG_XF_VALUE_MAX);
    big[5 + RG_XF_VALUE_MAX] = 0;
    xforward_bad(big, "501 5.5.4 Bad XFORWARD attribute value");
    big[5 + RG_XF_VALUE_MAX - 1] = 0;
    {
        struct rg_xforward xf;
        const char *reply = NULL;
        memset(&xf, 0, sizeof(xf));
        assert_int_equal(rg_smtp_parse_xforward(big, &xf, &reply), 0);
        assert_int_equal(strlen(xf.value[RG_XF_NAME]), RG_XF_VALUE_MAX - 1);
    }
}

static void xtext_ok(const char *in, const char *out)
{
    char buf[128];

    memset(buf, 'X', sizeof(buf));
    assert_int_equal(rg_xtext_decode(in, buf, sizeof(buf)), 0);
    assert_string_equal(buf, out);
}

static void xtext_bad(const char *in)
{
    char buf[128];

    assert_int_equal(rg_xtext_decode(in, buf, sizeof(buf)), -1);
}

static void test_xtext_decode(void **state)
{
    char small[4];

    (void)state;
    xtext_ok("", "");
    xtext_ok("plain", "plain");
    xtext_ok("a+2Bb", "a+b");
    xtext_ok("+41+42+43", "ABC");
    xtext_ok("+3D", "=");
    xtext_ok("+20", " ");
    xtext_ok("[UNAVAILABLE]", "[UNAVAILABLE]");
    xtext_bad("+0D");
    xtext_bad("+0A");
    xtext_bad("+00");
    xtext_bad("+09");
    xtext_bad("+1F");
    xtext_bad("+7F");
    xtext_bad("+");
    xtext_bad("+4");
    xtext_bad("+4G");
    xtext_bad("+2b");          /* hex digits are upper case (RFC 3461) */
    xtext_bad("a=b");
    xtext_bad("a b");
    xtext_bad("a\x01");
    xtext_bad("a\x7f");
    xtext_bad("\xc3\xa9");
    /* output size: "abc" needs 4 */
    assert_int_equal(rg_xtext_decode("abc", small, sizeof(small)), 0);
    assert_string_equal(small, "abc");
    assert_int_equal(rg_xtext_decode("abcd", small, sizeof(small)), -1);
    assert_int_equal(rg_xtext_decode("+41+42+43", small, sizeof(small)), 0);
    assert_string_equal(small, "ABC");
    assert_int_equal(rg_xtext_decode("+41+42+43+44", small, sizeof(small)), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_line_verbs),
        cmocka_unit_test(test_line_case_insensitive),
        cmocka_unit_test(test_line_args),
        cmocka_unit_test(test_line_bad_characters),
        cmocka_unit_test(test_mail_basic),
        cmocka_unit_test(test_mail_null_sender),
        cmocka_unit_test(test_mail_missing_or_nested_path),
        cmocka_unit_test(test_rcpt_missing_or_nested_path),
        cmocka_unit_test(test_mail_space_after_colon),
        cmocka_unit_test(test_mail_size),
        cmocka_unit_test(test_mail_bad_size),
        cmocka_unit_test(test_mail_body),
        cmocka_unit_test(test_mail_smtputf8),
        cmocka_unit_test(test_mail_unknown_param),
        cmocka_unit_test(test_mail_syntax),
        cmocka_unit_test(test_mail_source_route),
        cmocka_unit_test(test_mail_quoted_local),
        cmocka_unit_test(test_mail_utf8_address),
        cmocka_unit_test(test_mail_too_long),
        cmocka_unit_test(test_rcpt_basic),
        cmocka_unit_test(test_rcpt_postmaster),
        cmocka_unit_test(test_rcpt_bad_syntax),
        cmocka_unit_test(test_rcpt_params_refused),
        cmocka_unit_test(test_rcpt_utf8),
        cmocka_unit_test(test_rcpt_too_long),
        cmocka_unit_test(test_mailbox_dots),
        cmocka_unit_test(test_mailbox_labels),
        cmocka_unit_test(test_mailbox_literals),
        cmocka_unit_test(test_mailbox_local_length),
        cmocka_unit_test(test_mailbox_quoted),
        cmocka_unit_test(test_mailbox_utf8),
        cmocka_unit_test(test_mailbox_utf8_strict),
        cmocka_unit_test(test_xforward_all),
        cmocka_unit_test(test_xforward_incremental),
        cmocka_unit_test(test_xforward_bad),
        cmocka_unit_test(test_xtext_decode),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
