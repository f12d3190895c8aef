/*
 * fuzz_smtp_cmd.c - libFuzzer target for lib/smtp_proto: the input is one
 * command line without its terminator. It goes through the line splitter,
 * then its argument through every argument parser (MAIL, RCPT, XFORWARD)
 * whatever the verb, and the whole line through the mailbox validator and
 * the xtext decoder. Output buffers are heap blocks of exactly the size the
 * parsers are told, so a sanitizer build catches any write past them.
 *
 * Invariants (abort() when broken):
 *  - the splitter refuses a line iff it holds NUL, a control character
 *    other than TAB, or DEL; otherwise verb, name and argument agree with
 *    the line;
 *  - a refused argument comes with a well-formed 4xx/5xx reply;
 *  - an accepted address is the null path, "postmaster" (RCPT) or a valid
 *    mailbox, and fits its buffer; accepting with a small buffer implies
 *    accepting the same address with a large one; allowing UTF-8 never
 *    refuses what ASCII-only accepts;
 *  - a refused XFORWARD leaves the attributes untouched, an accepted one
 *    stores only decodable xtext;
 *  - decoded xtext holds no control character and encodes back to xtext
 *    that decodes to the same string.
 */
#include "config.h"

#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "smtp_proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_INPUT 8192
#define SMALL_ADDR 16

static void check(int ok)
{
    if (!ok)
        abort();
}

/* "DDD X.Y.Z text": a 4xx or 5xx reply with an enhanced status code. */
static void check_reply(const char *r)
{
    check(r != NULL);
    check((r[0] == '4' || r[0] == '5') && isdigit((unsigned char)r[1])
          && isdigit((unsigned char)r[2]) && r[3] == ' ');
    check(r[4] == r[0] && r[5] == '.');
    check(strchr(r, '\r') == NULL && strchr(r, '\n') == NULL);
}

static int bad_line_byte(unsigned char c)
{
    return c == 0 || (c < 0x20 && c != '\t') || c == 0x7f;
}

/* Returns the splitter's verdict. */
static int fuzz_line(const char *line, size_t len, struct rg_smtp_cmd *cmd)
{
    int expect_bad = 0;
    int rc = rg_smtp_parse_line(line, len, cmd);

    for (size_t i = 0; i < len; i++)
        if (bad_line_byte((unsigned char)line[i]))
            expect_bad = 1;
    check((rc < 0) == expect_bad);
    if (rc < 0)
        return rc;
    check(cmd->arg >= line && cmd->arg <= line + len);
    check(*cmd->arg != ' ' && *cmd->arg != '\t');
    check(cmd->name != NULL);
    if (cmd->verb == RG_CMD_UNKNOWN) {
        check(cmd->name[0] == 0);
    } else {
        size_t nl = strlen(cmd->name);
        check(nl > 0 && nl <= len && strncasecmp(line, cmd->name, nl) == 0);
        check(line[nl] == 0 || line[nl] == ' ' || line[nl] == '\t');
        for (const char *p = cmd->name; *p; p++)
            check(isupper((unsigned char)*p));
    }
    return rc;
}

static void fuzz_mail(const char *arg)
{
    char *big = malloc(RG_ADDR_MAX), *small = malloc(SMALL_ADDR);
    struct rg_mail_params pb, ps;
    const char *rb = NULL, *rs = NULL;
    int b, s;

    check(big != NULL && small != NULL);
    b = rg_smtp_parse_mail(arg, big, RG_ADDR_MAX, &pb, &rb);
    s = rg_smtp_parse_mail(arg, small, SMALL_ADDR, &ps, &rs);
    if (b < 0) {
        check_reply(rb);
    } else {
        check(strlen(big) < RG_ADDR_MAX);
        check(big[0] == 0 || rg_smtp_valid_mailbox(big, pb.smtputf8));
        check(pb.size >= -1);
        check(pb.body == RG_BODY_NONE || pb.body == RG_BODY_7BIT || pb.body == RG_BODY_8BITMIME);
        check(pb.smtputf8 == 0 || pb.smtputf8 == 1);
    }
    if (s < 0) {
        check_reply(rs);
    } else {
        check(strlen(small) < SMALL_ADDR);
        check(b == 0 && strcmp(small, big) == 0);
        check(ps.size == pb.size && ps.body == pb.body && ps.smtputf8 == pb.smtputf8);
    }
    free(big);
    free(small);
}

static void fuzz_rcpt(const char *arg)
{
    char *a = malloc(RG_ADDR_MAX), *u = malloc(RG_ADDR_MAX), *small = malloc(SMALL_ADDR);
    const char *ra = NULL, *ru = NULL, *rs = NULL;
    int ascii, utf8, s;

    check(a != NULL && u != NULL && small != NULL);
    ascii = rg_smtp_parse_rcpt(arg, 0, a, RG_ADDR_MAX, &ra);
    utf8 = rg_smtp_parse_rcpt(arg, 1, u, RG_ADDR_MAX, &ru);
    s = rg_smtp_parse_rcpt(arg, 1, small, SMALL_ADDR, &rs);
    if (ascii < 0) {
        check_reply(ra);
    } else {
        check(strlen(a) < RG_ADDR_MAX);
        check(strcasecmp(a, "postmaster") == 0 || rg_smtp_valid_mailbox(a, 0));
        for (const char *p = a; *p; p++)
            check((unsigned char)*p < 0x80);
        check(utf8 == 0 && strcmp(a, u) == 0);
    }
    if (utf8 < 0) {
        check_reply(ru);
    } else {
        check(strcasecmp(u, "postmaster") == 0 || rg_smtp_valid_mailbox(u, 1));
        check(u[0] != 0);   /* the null path is for senders only */
    }
    if (s < 0)
        check_reply(rs);
    else
        check(utf8 == 0 && strcmp(small, u) == 0);
    free(a);
    free(u);
    free(small);
}

/* RFC 3461 xtext of a decoded value. */
static void xtext_encode(const char *in, char *out, size_t outmax)
{
    size_t n = 0;

    for (const unsigned char *p = (const unsigned char *)in; *p; p++) {
        check(n + 4 <= outmax);
        if (*p >= 0x21 && *p <= 0x7e && *p != '+' && *p != '=')
            out[n++] = (char)*p;
        else
            n += (size_t)snprintf(out + n, outmax - n, "+%02X", *p);
    }
    out[n] = 0;
}

static void fuzz_xtext(const char *in)
{
    size_t inlen = strlen(in), max = inlen + 1;
    char *out = malloc(max), *small = malloc(8);
    int rc, rs;

    check(out != NULL && small != NULL);
    rc = rg_xtext_decode(in, out, max);
    rs = rg_xtext_decode(in, small, 8);
    if (rc == 0) {
        size_t olen = strlen(out);
        check(olen <= inlen);
        for (const unsigned char *p = (const unsigned char *)out; *p; p++)
            check(*p >= 0x20 && *p != 0x7f);
        /* encode again and decode: the same string */
        size_t emax = olen * 3 + 4;
        char *enc = malloc(emax), *dec = malloc(olen + 1);
        check(enc != NULL && dec != NULL);
        xtext_encode(out, enc, emax);
        check(rg_xtext_decode(enc, dec, olen + 1) == 0);
        check(strcmp(dec, out) == 0);
        free(enc);
        free(dec);
    }
    if (rs == 0)
        check(rc == 0 && strlen(small) < 8 && strcmp(small, out) == 0);
    free(out);
    free(small);
}

static void fuzz_xforward(const char *arg)
{
    struct rg_xforward xf, before;
    const char *r = NULL;

    /* start from a state an earlier XFORWARD left */
    memset(&xf, 0, sizeof(xf));
    snprintf(xf.value[RG_XF_NAME], RG_XF_VALUE_MAX, "%s", "mx.example.org");
    snprintf(xf.value[RG_XF_PORT], RG_XF_VALUE_MAX, "%s", "25");
    before = xf;
    if (rg_smtp_parse_xforward(arg, &xf, &r) < 0) {
        check_reply(r);
        check(memcmp(&xf, &before, sizeof(xf)) == 0);
        return;
    }
    for (int i = 0; i < RG_XF_COUNT; i++) {
        char dec[RG_XF_VALUE_MAX];
        check(memchr(xf.value[i], 0, RG_XF_VALUE_MAX) != NULL);
        if (xf.value[i][0] != 0)
            check(rg_xtext_decode(xf.value[i], dec, sizeof(dec)) == 0);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct rg_smtp_cmd cmd;
    const char *arg;
    char *line;

    if (size > MAX_INPUT)
        return 0;
    line = malloc(size + 1);
    check(line != NULL);
    memcpy(line, data, size);
    line[size] = 0;

    /* The server hands the argument parsers only what the splitter let
     * through; they must still be safe on any string, so a refused line
     * goes to them whole (up to its first NUL). */
    arg = fuzz_line(line, size, &cmd) == 0 ? cmd.arg : line;
    fuzz_mail(arg);
    fuzz_rcpt(arg);
    fuzz_xforward(arg);
    fuzz_xtext(line);
    {
        int a = rg_smtp_valid_mailbox(line, 0), u = rg_smtp_valid_mailbox(line, 1);
        check(a == 0 || u == 1);
    }
    free(line);
    return 0;
}
