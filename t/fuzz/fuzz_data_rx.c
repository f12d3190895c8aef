/*
 * fuzz_data_rx.c - libFuzzer target for lib/dotstuff: the DATA phase in
 * both directions, the place where SMTP smuggling would happen.
 *
 * Input: one byte that chooses a split point, then the bytes a client
 * sends after "354". Invariants (abort() when broken):
 *
 * receiving (rg_data_rx_feed)
 *  - consumed bytes never exceed what was fed;
 *  - the data ends exactly at the first CR LF "." CR LF of the stream (or
 *    "." CR LF at its very start), never elsewhere, and only there;
 *  - the content holds no bare CR and no bare LF, and is what a plain
 *    one-line-at-a-time reference model of the rules in dotstuff.h makes;
 *  - feeding in two pieces (split chosen by the first byte), and byte by
 *    byte, gives the same content, end and consumed count as one piece;
 *  - with a size limit the content is a prefix of the unlimited one and
 *    toolarge is set iff the unlimited content exceeds the limit; a
 *    failing output function sets out_error; neither changes where the
 *    data ends;
 *
 * sending (rg_data_tx) of the received content, and of the raw input
 *  - the output is canonical: CR LF only, every line starting with "." is
 *    stuffed, and the first end-of-data sequence is its own terminator;
 *  - two pieces give the same output as one;
 *  - a failing output function is reported (-1) and what was written
 *    before is a prefix of the output;
 *  - receiving it again gives the content back (round trip), with a line
 *    end added when the content did not end with one.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dotstuff.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_INPUT (256 * 1024)
#define BYTEWISE_MAX 4096       /* byte-by-byte feeding for inputs up to this */

static void check(int ok)
{
    if (!ok)
        abort();
}

struct sink {
    char *p;
    size_t len, cap;
    size_t fail_after;      /* refuse output beyond this many bytes */
    int failed;
};

static void sink_init(struct sink *s)
{
    memset(s, 0, sizeof(*s));
    s->fail_after = SIZE_MAX;
}

static int sink_out(void *ctx, const char *p, size_t n)
{
    struct sink *s = ctx;

    if (n > s->fail_after - s->len) {
        s->failed = 1;
        return -1;
    }
    if (s->len + n > s->cap) {
        s->cap = (s->len + n) * 2 + 64;
        s->p = realloc(s->p, s->cap);
        check(s->p != NULL);
    }
    if (n)
        memcpy(s->p + s->len, p, n);
    s->len += n;
    return 0;
}

static void sink_append(struct sink *s, const char *p, size_t n)
{
    check(sink_out(s, p, n) == 0);
}

static int same(const struct sink *a, const char *p, size_t n)
{
    return a->len == n && (n == 0 || memcmp(a->p, p, n) == 0);
}

/* No bare CR, no bare LF. */
static void check_crlf_only(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (p[i] == '\r')
            check(i + 1 < n && p[i + 1] == '\n');
        if (p[i] == '\n')
            check(i > 0 && p[i - 1] == '\r');
    }
}

/* End of the first end-of-data sequence in p, or 0 if there is none. */
static size_t first_terminator(const char *p, size_t n)
{
    if (n >= 3 && memcmp(p, ".\r\n", 3) == 0)
        return 3;
    for (size_t i = 0; i + 5 <= n; i++)
        if (memcmp(p + i, "\r\n.\r\n", 5) == 0)
            return i + 5;
    return 0;
}

/*
 * Reference model of the receiving rules, written for clarity: a "." at
 * the start of a CRLF-terminated line (or of the data) is stuffing and
 * dropped, unless it is followed by CRLF, which ends the data; CRLF, a bare
 * CR and a bare LF each become CRLF; a bare CR or LF does not start a
 * protocol line. Returns the consumed count, sets *done.
 */
static size_t model_rx(const char *in, size_t n, struct sink *out, int *done)
{
    int bol = 1;
    size_t i = 0;

    *done = 0;
    while (i < n) {
        if (bol && in[i] == '.') {
            if (n - i >= 3 && in[i + 1] == '\r' && in[i + 2] == '\n') {
                *done = 1;
                return i + 3;
            }
            i++;
            bol = 0;
            continue;
        }
        if (in[i] == '\r' && i + 1 < n && in[i + 1] == '\n') {
            sink_append(out, "\r\n", 2);
            i += 2;
            bol = 1;
        } else if (in[i] == '\r' || in[i] == '\n') {
            sink_append(out, "\r\n", 2);
            i++;
            bol = 0;
        } else {
            sink_append(out, in + i, 1);
            i++;
            bol = 0;
        }
    }
    return i;
}

/* Content normalisation only (what tx then rx must give for any input). */
static void model_norm(const char *in, size_t n, struct sink *out)
{
    for (size_t i = 0; i < n; i++) {
        if (in[i] == '\r' && i + 1 < n && in[i + 1] == '\n') {
            sink_append(out, "\r\n", 2);
            i++;
        } else if (in[i] == '\r' || in[i] == '\n') {
            sink_append(out, "\r\n", 2);
        } else {
            sink_append(out, in + i, 1);
        }
    }
    if (out->len > 0 && !(out->len >= 2 && memcmp(out->p + out->len - 2, "\r\n", 2) == 0))
        sink_append(out, "\r\n", 2);
}

struct rx_result {
    struct sink out;
    size_t consumed;
    int done;
    int toolarge;
    int out_error;
};

/* Feed in[0..n) cut at the given points (sorted, each <= n). */
static void run_rx(const char *in, size_t n, const size_t *cuts, size_t ncuts, size_t max,
                   size_t fail_after, struct rx_result *r)
{
    struct rg_data_rx rx;
    size_t pos = 0;

    sink_init(&r->out);
    r->out.fail_after = fail_after;
    rg_data_rx_init(&rx, max, sink_out, &r->out);
    r->done = 0;
    for (size_t k = 0; k <= ncuts && !r->done; k++) {
        size_t end = k < ncuts ? cuts[k] : n, c;
        check(end >= pos && end <= n);
        c = rg_data_rx_feed(&rx, in + pos, end - pos, &r->done);
        check(c <= end - pos);
        if (!r->done)
            check(c == end - pos);
        pos += c;
        if (fail_after == SIZE_MAX)
            check(rx.size == r->out.len);
    }
    r->consumed = pos;
    r->toolarge = rx.toolarge;
    r->out_error = rx.out_error;
    check(rx.size <= max);
}

static void run_rx_bytewise(const char *in, size_t n, struct rx_result *r)
{
    struct rg_data_rx rx;
    size_t pos = 0;

    sink_init(&r->out);
    rg_data_rx_init(&rx, SIZE_MAX, sink_out, &r->out);
    r->done = 0;
    while (pos < n && !r->done) {
        size_t c = rg_data_rx_feed(&rx, in + pos, 1, &r->done);
        check(c == 1);
        pos++;
    }
    r->consumed = pos;
}

/* tx of in[0..n) cut at one point, plus finish. */
static void run_tx(const char *in, size_t n, size_t cut, struct sink *out)
{
    struct rg_data_tx tx;

    sink_init(out);
    rg_data_tx_init(&tx, sink_out, out);
    check(rg_data_tx_feed(&tx, in, cut) == 0);
    check(rg_data_tx_feed(&tx, in + cut, n - cut) == 0);
    check(rg_data_tx_finish(&tx) == 0);
}

/* tx whose output function fails beyond fail_after bytes: the failure is
 * reported, and what was written is a prefix of the normal output t. */
static void run_tx_failing(const char *in, size_t n, size_t cut, size_t fail_after,
                           const struct sink *t)
{
    struct rg_data_tx tx;
    struct sink out;
    int rc;

    sink_init(&out);
    out.fail_after = fail_after;
    rg_data_tx_init(&tx, sink_out, &out);
    rc = rg_data_tx_feed(&tx, in, cut);
    if (rc == 0)
        rc = rg_data_tx_feed(&tx, in + cut, n - cut);
    if (rc == 0)
        rc = rg_data_tx_finish(&tx);
    check(rc == 0 || rc == -1);
    check((rc < 0) == (t->len > fail_after));
    check((rc < 0) == out.failed);
    check(out.len <= t->len && (out.len == 0 || memcmp(out.p, t->p, out.len) == 0));
    free(out.p);
}

/* What a next hop sees must be canonical and end where we mean it to. */
static void check_tx_output(const struct sink *t)
{
    check_crlf_only(t->p, t->len);
    check(t->len >= 3 && memcmp(t->p + t->len - 3, ".\r\n", 3) == 0);
    check(t->len == 3 || (t->len >= 5 && memcmp(t->p + t->len - 5, "\r\n.\r\n", 5) == 0));
    check(first_terminator(t->p, t->len) == t->len);
    /* every line that starts with "." is stuffed, but the terminator */
    for (size_t i = 0; i < t->len; i++) {
        if ((i == 0 || t->p[i - 1] == '\n') && t->p[i] == '.' && i + 3 != t->len)
            check(i + 1 < t->len && t->p[i + 1] == '.');
    }
}

/* tx then rx again: the content back, terminated. fail_after: see
 * run_tx_failing(). */
static void round_trip(const char *content, size_t n, size_t cut, size_t fail_after,
                       const struct sink *expect)
{
    struct sink t, t1;
    struct rx_result back;

    run_tx(content, n, cut, &t);
    run_tx(content, n, 0, &t1);
    check(same(&t1, t.p, t.len));
    check_tx_output(&t);
    run_tx_failing(content, n, cut, fail_after, &t);
    run_rx(t.p, t.len, NULL, 0, SIZE_MAX, SIZE_MAX, &back);
    check(back.done && back.consumed == t.len);
    check(same(&back.out, expect->p, expect->len));
    free(t.p);
    free(t1.p);
    free(back.out.p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *in;
    size_t n, cut, term, max;
    struct rx_result one, two, limited, failing;
    struct sink model, expect;
    int mdone;

    if (size == 0 || size > MAX_INPUT)
        return 0;
    in = (const char *)data + 1;
    n = size - 1;
    cut = (size_t)((unsigned long long)n * data[0] / 255);

    /* in one piece */
    run_rx(in, n, NULL, 0, SIZE_MAX, SIZE_MAX, &one);
    check(!one.toolarge && !one.out_error);
    check_crlf_only(one.out.p, one.out.len);
    term = first_terminator(in, n);
    check(one.done == (term != 0));
    check(one.consumed == (term ? term : n));

    /* the reference model; a CR at the very end is still pending */
    sink_init(&model);
    check(model_rx(in, n, &model, &mdone) == one.consumed && mdone == one.done);
    if (same(&model, one.out.p, one.out.len)) {
        /* equal */
    } else {
        check(!one.done && n > 0 && in[n - 1] == '\r');
        check(model.len == one.out.len + 2);
        check(one.out.len == 0 || memcmp(model.p, one.out.p, one.out.len) == 0);
    }

    /* in two pieces */
    run_rx(in, n, &cut, 1, SIZE_MAX, SIZE_MAX, &two);
    check(two.done == one.done && two.consumed == one.consumed);
    check(same(&two.out, one.out.p, one.out.len));

    /* byte by byte */
    if (n <= BYTEWISE_MAX) {
        struct rx_result bw;
        run_rx_bytewise(in, n, &bw);
        check(bw.done == one.done && bw.consumed == one.consumed);
        check(same(&bw.out, one.out.p, one.out.len));
        free(bw.out.p);
    }

    /* with a size limit chosen by the first byte */
    max = (size_t)data[0] * 4;
    run_rx(in, n, &cut, 1, max, SIZE_MAX, &limited);
    check(limited.done == one.done && limited.consumed == one.consumed);
    check(limited.toolarge == (one.out.len > max));
    check(limited.out.len <= max && limited.out.len <= one.out.len);
    check(limited.out.len == 0 || memcmp(limited.out.p, one.out.p, limited.out.len) == 0);
    if (!limited.toolarge)
        check(limited.out.len == one.out.len);

    /* with an output function that fails */
    run_rx(in, n, &cut, 1, SIZE_MAX, max, &failing);
    check(failing.done == one.done && failing.consumed == one.consumed);
    check(failing.out_error == failing.out.failed);
    check(failing.out_error == (one.out.len > max));

    /* round trip of the received content */
    sink_init(&expect);
    if (one.out.len)
        sink_append(&expect, one.out.p, one.out.len);
    if (expect.len > 0 && (expect.len < 2 || memcmp(expect.p + expect.len - 2, "\r\n", 2) != 0))
        sink_append(&expect, "\r\n", 2);
    round_trip(one.out.p ? one.out.p : "", one.out.len,
               (size_t)((unsigned long long)one.out.len * data[0] / 255), max, &expect);
    free(expect.p);

    /* whatever the content, tx makes it safe: the raw input as content */
    sink_init(&expect);
    model_norm(in, n, &expect);
    round_trip(in, n, cut, max, &expect);
    free(expect.p);

    free(model.p);
    free(one.out.p);
    free(two.out.p);
    free(limited.out.p);
    free(failing.out.p);
    return 0;
}
