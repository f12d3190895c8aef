/*
 * test_dotstuff.c - unit tests of lib/dotstuff.c: the DATA phase in both
 * directions. The end of data is CR LF "." CR LF and nothing else; every
 * smuggling variant stays content and comes out as canonical CR LF; the
 * result never depends on how the input is split into reads; and sending
 * what was received, then receiving it again, gives the same bytes.
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

#include "dotstuff.h"

/* ---- an output function that collects bytes ---------------------------- */

struct sink {
    char *data;
    size_t len, cap;
    int calls;
    int fail_at;        /* call number (1-based) that fails; 0 = never */
};

static int sink_out(void *ctx, const char *p, size_t n)
{
    struct sink *s = ctx;

    s->calls++;
    if (s->fail_at && s->calls >= s->fail_at)
        return -1;
    if (s->len + n + 1 > s->cap) {
        s->cap = (s->len + n + 1) * 2;
        s->data = realloc(s->data, s->cap);
        assert_non_null(s->data);
    }
    memcpy(s->data + s->len, p, n);
    s->len += n;
    s->data[s->len] = 0;
    return 0;
}

static void sink_init(struct sink *s)
{
    memset(s, 0, sizeof(*s));
    s->cap = 64;
    s->data = malloc(s->cap);
    assert_non_null(s->data);
    s->data[0] = 0;
}

static void sink_free(struct sink *s)
{
    free(s->data);
    s->data = NULL;
}

/* ---- receive helpers ----------------------------------------------------- */

struct rx_result {
    struct sink out;
    size_t consumed;    /* bytes consumed up to and including the terminator */
    int done;
    int toolarge;
    int out_error;
    size_t size;
};

/*
 * Feed in[0..n) in chunks whose boundaries are listed in cuts[0..ncuts)
 * (ascending offsets). Stops at the end of data; checks that every call
 * that did not end the data consumed its whole chunk.
 */
static void rx_run(const char *in, size_t n, size_t max, const size_t *cuts, size_t ncuts,
                   struct rx_result *r)
{
    struct rg_data_rx rx;
    size_t pos = 0;

    memset(r, 0, sizeof(*r));
    sink_init(&r->out);
    rg_data_rx_init(&rx, max, sink_out, &r->out);
    for (size_t c = 0; c <= ncuts && !r->done; c++) {
        size_t end = c < ncuts ? cuts[c] : n;
        size_t got;
        int done = -1;

        assert_true(end >= pos && end <= n);
        got = rg_data_rx_feed(&rx, in + pos, end - pos, &done);
        assert_true(done == 0 || done == 1);
        assert_true(got <= end - pos);
        if (!done)
            assert_int_equal(got, end - pos);
        pos += got;
        r->done = done;
    }
    r->consumed = pos;
    r->toolarge = rx.toolarge;
    r->out_error = rx.out_error;
    r->size = rx.size;
    /* what was produced is what the counter says */
    if (!rx.toolarge && !rx.out_error)
        assert_int_equal(rx.size, r->out.len);
    assert_true(rx.size <= max);
}

static void rx_whole(const char *in, size_t n, size_t max, struct rx_result *r)
{
    rx_run(in, n, max, NULL, 0, r);
}

/* Receiving in (as a C string) gives exactly content, consuming every
 * byte up to and including the terminator, but not the `trailer` bytes
 * that follow it. */
static void rx_expect(const char *in, const char *content, size_t trailer)
{
    struct rx_result r;
    size_t consumed = strlen(in) - trailer;

    rx_whole(in, strlen(in), 1 << 20, &r);
    assert_int_equal(r.done, 1);
    assert_int_equal(r.toolarge, 0);
    assert_int_equal(r.out_error, 0);
    assert_int_equal(r.out.len, strlen(content));
    assert_memory_equal(r.out.data, content, r.out.len);
    assert_int_equal(r.consumed, consumed);
    sink_free(&r.out);
}

/* ---- receive ----------------------------------------------------------- */

static void test_rx_plain(void **state)
{
    const char *msg = "Subject: hi\r\nFrom: a@b.c\r\n\r\nbody line\r\n.\r\n";

    (void)state;
    rx_expect(msg, "Subject: hi\r\nFrom: a@b.c\r\n\r\nbody line\r\n", 0);
    rx_expect("x\r\n.\r\n", "x\r\n", 0);
    /* an empty line as the whole message */
    rx_expect("\r\n.\r\n", "\r\n", 0);
}

static void test_rx_empty(void **state)
{
    (void)state;
    /* DATA's own CRLF precedes: "." CRLF at once is an empty message */
    rx_expect(".\r\n", "", 0);
    rx_expect(".\r\nQUIT\r\n", "", 6);
}

static void test_rx_unstuffing(void **state)
{
    (void)state;
    rx_expect("..\r\n.\r\n", ".\r\n", 0);
    rx_expect("...\r\n.\r\n", "..\r\n", 0);
    rx_expect("..x\r\n.\r\n", ".x\r\n", 0);
    rx_expect("a\r\n..\r\nb\r\n.\r\n", "a\r\n.\r\nb\r\n", 0);
    /* a leading dot that was not stuffed is still removed (RFC 5321 4.5.2) */
    rx_expect(".x\r\n.\r\n", "x\r\n", 0);
    /* a dot not at the start of a line stays */
    rx_expect("a.\r\nb.c\r\n.\r\n", "a.\r\nb.c\r\n", 0);
    rx_expect("a\r\n. \r\n.\r\n", "a\r\n \r\n", 0);
}

static void test_rx_stops_at_terminator(void **state)
{
    const char *in = "a\r\n.\r\nMAIL FROM:<>\r\n";
    struct rg_data_rx rx;
    struct sink s;
    int done = -1;
    size_t got;

    (void)state;
    sink_init(&s);
    rg_data_rx_init(&rx, 1000, sink_out, &s);
    got = rg_data_rx_feed(&rx, in, strlen(in), &done);
    assert_int_equal(done, 1);
    assert_int_equal(got, 6);
    assert_string_equal(s.data, "a\r\n");

    /* terminator split: the second call consumes only the final LF */
    rg_data_rx_init(&rx, 1000, sink_out, &s);
    s.len = 0;
    got = rg_data_rx_feed(&rx, "b\r\n.\r", 5, &done);
    assert_int_equal(got, 5);
    assert_int_equal(done, 0);
    got = rg_data_rx_feed(&rx, "\nQUIT\r\n", 7, &done);
    assert_int_equal(got, 1);
    assert_int_equal(done, 1);
    assert_int_equal(s.len, 3);
    assert_memory_equal(s.data, "b\r\n", 3);

    /* an empty feed consumes nothing and ends nothing */
    rg_data_rx_init(&rx, 1000, sink_out, &s);
    got = rg_data_rx_feed(&rx, "", 0, &done);
    assert_int_equal(got, 0);
    assert_int_equal(done, 0);
    sink_free(&s);
}

/*
 * The smuggling variants. None ends the data; bare CR and bare LF become
 * CR LF in the content. Each is followed by "B" and a real terminator.
 */
static void test_rx_smuggling_lf_dot_lf(void **state)
{
    (void)state;
    rx_expect("A\n.\nB\r\n.\r\n", "A\r\n.\r\nB\r\n", 0);
    /* at the very start (after DATA's CRLF) */
    rx_expect("\n.\nB\r\n.\r\n", "\r\n.\r\nB\r\n", 0);
}

static void test_rx_smuggling_cr_dot_cr(void **state)
{
    (void)state;
    rx_expect("A\r.\rB\r\n.\r\n", "A\r\n.\r\nB\r\n", 0);
    rx_expect("\r.\rB\r\n.\r\n", "\r\n.\r\nB\r\n", 0);
}

static void test_rx_smuggling_crlf_dot_lf(void **state)
{
    (void)state;
    /*
     * The protocol line "." LF "B" CR LF starts with a dot followed by
     * more characters: that dot is stuffing (RFC 5321 4.5.2), and the bare
     * LF becomes CR LF: an empty content line, then "B".
     */
    rx_expect("A\r\n.\nB\r\n.\r\n", "A\r\n\r\nB\r\n", 0);
    /* the stuffed form keeps its dot */
    rx_expect("A\r\n..\nB\r\n.\r\n", "A\r\n.\r\nB\r\n", 0);
    /* ... also when it is the first line */
    rx_expect(".\nB\r\n.\r\n", "\r\nB\r\n", 0);
}

static void test_rx_smuggling_lf_dot_crlf(void **state)
{
    (void)state;
    /* after a bare LF the "." is not at the start of a protocol line */
    rx_expect("A\n.\r\nB\r\n.\r\n", "A\r\n.\r\nB\r\n", 0);
    rx_expect("A\n.\r\n.\r\n", "A\r\n.\r\n", 0);
}

static void test_rx_smuggling_dot_cr_bol(void **state)
{
    (void)state;
    /* "." then a bare CR at the start of a line: the dot is stuffing, the
     * CR a content line end */
    rx_expect("A\r\n.\rB\r\n.\r\n", "A\r\n\r\nB\r\n", 0);
    rx_expect(".\rB\r\n.\r\n", "\r\nB\r\n", 0);
    /* "." CR CR LF: an empty line from the bare CR, then the CRLF line end */
    rx_expect("A\r\n.\r\r\nB\r\n.\r\n", "A\r\n\r\n\r\nB\r\n", 0);
    /* "." CR CR LF "." CR LF ends after the second dot line */
    rx_expect(".\r\r\n.\r\n", "\r\n\r\n", 0);
    rx_expect("..\r\r\n.\r\n", ".\r\n\r\n", 0);
}

static void test_rx_smuggling_cr_cr_lf(void **state)
{
    (void)state;
    rx_expect("A\r\r\nB\r\n.\r\n", "A\r\n\r\nB\r\n", 0);
    /* "\r\r\n.\r\n": the first CR is bare, the CRLF ends a line, then "." ends */
    rx_expect("A\r\r\n.\r\n", "A\r\n\r\n", 0);
    rx_expect("A\r\r\r\nB\r\n.\r\n", "A\r\n\r\n\r\nB\r\n", 0);
}

static void test_rx_smuggling_none_ends(void **state)
{
    static const char *const variants[] = {
        "\n.\n", "\r.\r", "\r\n.\n", "\n.\r\n", ".\r", "\r\r\n", "\r\n.\r", "\n.\r",
        "\r.\n", "\r\n.\r.\r\n", "\r\n.\n.\n", "\n.\n.\n", "\r\n .\r\n",
    };

    (void)state;
    for (size_t i = 0; i < sizeof(variants) / sizeof(variants[0]); i++) {
        char in[64];
        struct rx_result r;
        size_t n;

        /* without a real terminator, none of them may end the data */
        n = (size_t)snprintf(in, sizeof(in), "A%sB", variants[i]);
        rx_whole(in, n, 1000, &r);
        assert_int_equal(r.done, 0);
        assert_int_equal(r.consumed, n);
        /* what is produced is canonical: CR only before LF, LF only after CR */
        for (size_t k = 0; k < r.out.len; k++) {
            if (r.out.data[k] == '\r')
                assert_true(k + 1 < r.out.len && r.out.data[k + 1] == '\n');
            if (r.out.data[k] == '\n')
                assert_true(k > 0 && r.out.data[k - 1] == '\r');
        }
        sink_free(&r.out);
    }
}

/* Every 1-, 2- and 3-chunk split and byte-at-a-time feeding of input gives
 * the same content and consumes the same bytes as one feed. */
static void check_all_splits(const char *in, size_t n)
{
    struct rx_result whole, r;
    size_t *cuts = malloc((n + 1) * sizeof(size_t));

    assert_non_null(cuts);
    rx_whole(in, n, 1 << 20, &whole);
    assert_int_equal(whole.done, 1);

    for (size_t i = 0; i <= n; i++)
        cuts[i] = i;
    rx_run(in, n, 1 << 20, cuts, n, &r);       /* byte at a time */
    assert_int_equal(r.done, 1);
    assert_int_equal(r.consumed, whole.consumed);
    assert_int_equal(r.out.len, whole.out.len);
    assert_memory_equal(r.out.data, whole.out.data, whole.out.len);
    sink_free(&r.out);

    for (size_t k = 0; k <= n; k++) {           /* all 2-chunk splits */
        rx_run(in, n, 1 << 20, &k, 1, &r);
        assert_int_equal(r.done, 1);
        assert_int_equal(r.consumed, whole.consumed);
        assert_int_equal(r.out.len, whole.out.len);
        assert_memory_equal(r.out.data, whole.out.data, whole.out.len);
        sink_free(&r.out);
    }
    for (size_t a = 0; a <= n; a++) {           /* all 3-chunk splits */
        for (size_t b = a; b <= n; b++) {
            size_t two[2] = { a, b };
            rx_run(in, n, 1 << 20, two, 2, &r);
            assert_int_equal(r.done, 1);
            assert_int_equal(r.consumed, whole.consumed);
            assert_int_equal(r.out.len, whole.out.len);
            assert_memory_equal(r.out.data, whole.out.data, whole.out.len);
            sink_free(&r.out);
        }
    }
    sink_free(&whole.out);
    free(cuts);
}

static void test_rx_split_terminator(void **state)
{
    (void)state;
    check_all_splits("a\r\n.\r\n", 6);
    check_all_splits(".\r\n", 3);
    check_all_splits("\r\n.\r\n", 5);
    check_all_splits("x\r\n.\r\nQUIT\r\n", 12);
}

static void test_rx_split_everything(void **state)
{
    static const char in[] =
        "Subject: x\r\n..dot\r\n.\n\r\n.\r\r\n\n.\r\n\r.\rtext\r\r\n"
        "end.\r\n..\r\n.\r\nNEXT\r\n";

    (void)state;
    check_all_splits(in, sizeof(in) - 1);
    {
        struct rx_result r;
        rx_whole(in, sizeof(in) - 1, 1 << 20, &r);
        assert_int_equal(r.consumed, sizeof(in) - 1 - strlen("NEXT\r\n"));
        assert_string_equal(r.out.data,
            "Subject: x\r\n.dot\r\n\r\n\r\n\r\n\r\n\r\n.\r\n\r\n.\r\ntext\r\n\r\n"
            "end.\r\n.\r\n");
        sink_free(&r.out);
    }
}

static void test_rx_toolarge(void **state)
{
    struct rx_result r;
    const char *fits = "01234567\r\n.\r\n";       /* content of 10 */
    const char *over = "012345678\r\n.\r\nRSET\r\n";  /* content of 11 */

    (void)state;
    rx_whole(fits, strlen(fits), 10, &r);
    assert_int_equal(r.done, 1);
    assert_int_equal(r.toolarge, 0);
    assert_int_equal(r.out.len, 10);
    sink_free(&r.out);

    rx_whole(over, strlen(over), 10, &r);
    assert_int_equal(r.done, 1);              /* still read up to the end */
    assert_int_equal(r.toolarge, 1);
    assert_int_equal(r.consumed, strlen(over) - 6);
    assert_true(r.out.len <= 10);
    assert_true(r.size <= 10);
    sink_free(&r.out);

    /* a large message is read to its end without producing more */
    {
        size_t n = 100000;
        char *big = malloc(n + 5);
        assert_non_null(big);
        for (size_t i = 0; i < n; i++)
            big[i] = (i % 70 == 69) ? '\n' : 'x';
        memcpy(big + n, "\r\n.\r\n", 5);
        rx_whole(big, n + 5, 5000, &r);
        assert_int_equal(r.done, 1);
        assert_int_equal(r.toolarge, 1);
        assert_int_equal(r.consumed, n + 5);
        assert_true(r.out.len <= 5000);
        sink_free(&r.out);
        free(big);
    }
    /* max 0: only the empty message fits */
    rx_whole(".\r\n", 3, 0, &r);
    assert_int_equal(r.done, 1);
    assert_int_equal(r.toolarge, 0);
    sink_free(&r.out);
    rx_whole("a\r\n.\r\n", 6, 0, &r);
    assert_int_equal(r.done, 1);
    assert_int_equal(r.toolarge, 1);
    assert_int_equal(r.out.len, 0);
    sink_free(&r.out);
}

static void test_rx_output_error(void **state)
{
    /* two output calls at least: whole clean lines go out in one, and the
     * stuffed dot breaks the run */
    const char *in = "line one\r\n..line two\r\nline three\r\n.\r\nQUIT\r\n";
    struct rg_data_rx rx;
    struct sink s;
    int done = -1, calls;
    size_t got;

    (void)state;
    sink_init(&s);
    s.fail_at = 2;
    rg_data_rx_init(&rx, 1000, sink_out, &s);
    got = rg_data_rx_feed(&rx, in, strlen(in), &done);
    assert_int_equal(done, 1);
    assert_int_equal(got, strlen(in) - 6);
    assert_int_equal(rx.out_error, 1);
    assert_int_equal(rx.toolarge, 0);
    /* after the failure the output function is not called again */
    assert_int_equal(s.calls, 2);
    calls = s.calls;
    rg_data_rx_init(&rx, 1000, sink_out, &s);
    s.fail_at = 1;
    got = rg_data_rx_feed(&rx, "x\r\n", 3, &done);
    assert_int_equal(rx.out_error, 1);
    assert_int_equal(s.calls, calls + 1);
    sink_free(&s);
}

/* ---- send -------------------------------------------------------------- */

static void tx_expect(const char *content, size_t n, const char *wire, size_t wlen)
{
    struct rg_data_tx tx;
    struct sink s, s1;

    sink_init(&s);
    rg_data_tx_init(&tx, sink_out, &s);
    assert_int_equal(rg_data_tx_feed(&tx, content, n), 0);
    assert_int_equal(rg_data_tx_finish(&tx), 0);
    assert_int_equal(s.len, wlen);
    assert_memory_equal(s.data, wire, wlen);

    /* the same, one byte at a time */
    sink_init(&s1);
    rg_data_tx_init(&tx, sink_out, &s1);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(rg_data_tx_feed(&tx, content + i, 1), 0);
    assert_int_equal(rg_data_tx_finish(&tx), 0);
    assert_int_equal(s1.len, s.len);
    assert_memory_equal(s1.data, s.data, s.len);
    sink_free(&s1);
    sink_free(&s);
}

#define TX(content, wire) tx_expect(content, sizeof(content) - 1, wire, sizeof(wire) - 1)

static void test_tx_plain(void **state)
{
    (void)state;
    TX("Subject: x\r\n\r\nbody\r\n", "Subject: x\r\n\r\nbody\r\n.\r\n");
    TX("", ".\r\n");
    TX("\r\n", "\r\n.\r\n");
    TX("a\0b\r\n", "a\0b\r\n.\r\n");
}

static void test_tx_stuffing(void **state)
{
    (void)state;
    TX(".\r\n", "..\r\n.\r\n");
    TX(".a\r\n", "..a\r\n.\r\n");
    TX("..\r\n", "...\r\n.\r\n");
    TX("a\r\n.\r\nb\r\n", "a\r\n..\r\nb\r\n.\r\n");
    TX("a.b\r\n.c.\r\n", "a.b\r\n..c.\r\n.\r\n");
    /* a dot line at the end without a line end */
    TX("a\r\n.", "a\r\n..\r\n.\r\n");
}

static void test_tx_normalize(void **state)
{
    (void)state;
    TX("a\nb\n", "a\r\nb\r\n.\r\n");
    TX("a\rb\r", "a\r\nb\r\n.\r\n");
    TX("a\r\r\nb", "a\r\n\r\nb\r\n.\r\n");
    TX("\n.\n", "\r\n..\r\n.\r\n");
    TX("\r.\r", "\r\n..\r\n.\r\n");
    TX("\r\n.\n", "\r\n..\r\n.\r\n");
    TX("\n.\r\n", "\r\n..\r\n.\r\n");
    TX("a\r.b", "a\r\n..b\r\n.\r\n");
    TX("\n\n", "\r\n\r\n.\r\n");
    TX("\r\r", "\r\n\r\n.\r\n");
    TX("\n\r", "\r\n\r\n.\r\n");
}

static void test_tx_final_crlf(void **state)
{
    (void)state;
    TX("no newline", "no newline\r\n.\r\n");
    TX("a\r", "a\r\n.\r\n");
    TX("a\n", "a\r\n.\r\n");
    TX("a\r\n", "a\r\n.\r\n");
}

static void test_tx_output_error(void **state)
{
    struct rg_data_tx tx;
    struct sink s;

    (void)state;
    sink_init(&s);
    s.fail_at = 1;
    rg_data_tx_init(&tx, sink_out, &s);
    assert_int_equal(rg_data_tx_feed(&tx, "abc\r\n", 5), -1);
    sink_free(&s);

    sink_init(&s);
    s.fail_at = 1;
    rg_data_tx_init(&tx, sink_out, &s);
    assert_int_equal(rg_data_tx_feed(&tx, ".", 1), -1);      /* the stuffing dot */
    sink_free(&s);

    sink_init(&s);
    rg_data_tx_init(&tx, sink_out, &s);
    assert_int_equal(rg_data_tx_feed(&tx, "abc", 3), 0);
    s.fail_at = s.calls + 1;
    assert_int_equal(rg_data_tx_finish(&tx), -1);            /* the final CRLF */
    sink_free(&s);

    sink_init(&s);
    rg_data_tx_init(&tx, sink_out, &s);
    assert_int_equal(rg_data_tx_feed(&tx, "abc\r\n", 5), 0);
    s.fail_at = s.calls + 1;
    assert_int_equal(rg_data_tx_finish(&tx), -1);            /* "." CRLF */
    sink_free(&s);
}

/* ---- round trip -------------------------------------------------------- */

static uint64_t rng_state;

static uint32_t rng(void)
{
    /* xorshift64* */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return (uint32_t)((rng_state * 2685821657736338717ULL) >> 32);
}

static void assert_canonical(const char *p, size_t n)
{
    for (size_t k = 0; k < n; k++) {
        if (p[k] == '\r')
            assert_true(k + 1 < n && p[k + 1] == '\n');
        if (p[k] == '\n')
            assert_true(k > 0 && p[k - 1] == '\r');
    }
}

static void tx_all(const char *content, size_t n, struct sink *out)
{
    struct rg_data_tx tx;
    size_t pos = 0;

    sink_init(out);
    rg_data_tx_init(&tx, sink_out, out);
    while (pos < n) {                 /* random chunks */
        size_t k = 1 + rng() % 17;
        if (k > n - pos)
            k = n - pos;
        assert_int_equal(rg_data_tx_feed(&tx, content + pos, k), 0);
        pos += k;
    }
    assert_int_equal(rg_data_tx_finish(&tx), 0);
}

/*
 * The sender against a byte-at-a-time model of what it must write: CRLF
 * for CR LF, a bare CR and a bare LF; a dot doubled at a line's start;
 * a final CRLF if the content did not end with one; "." CRLF. Inputs
 * mostly of whole CRLF lines (what the sender's fast path takes in one
 * piece) with irregular bytes mixed in, fed in random chunks.
 */
static size_t tx_model(const char *in, size_t n, char *out)
{
    size_t o = 0;
    int bol = 1;

    for (size_t i = 0; i < n; i++) {
        if (in[i] == '\r' || in[i] == '\n') {
            if (in[i] == '\r' && i + 1 < n && in[i + 1] == '\n')
                i++;
            out[o++] = '\r';
            out[o++] = '\n';
            bol = 1;
            continue;
        }
        if (bol && in[i] == '.')
            out[o++] = '.';
        out[o++] = in[i];
        bol = 0;
    }
    if (!bol) {
        out[o++] = '\r';
        out[o++] = '\n';
    }
    memcpy(out + o, ".\r\n", 3);
    return o + 3;
}

static void test_tx_against_model(void **state)
{
    static const char *pieces[] = { "line of text\r\n", "\r\n", ".dot\r\n", "..\r\n",
                                    "a", ".", "\r", "\n", "x\ny", "\r\r\n", "QUJD\r\n" };

    (void)state;
    rng_state = 0x7e57da7aULL;
    for (int it = 0; it < 2000; it++) {
        size_t n = 0, np = rng() % 40;
        char in[40 * 16], want[sizeof(in) * 2 + 8];
        struct sink got;

        for (size_t k = 0; k < np; k++) {
            /* three in four: a whole CRLF line */
            const char *p = pieces[rng() % 4 ? rng() % 2 * 10 : rng() % 11];
            memcpy(in + n, p, strlen(p));
            n += strlen(p);
        }
        size_t wlen = tx_model(in, n, want);
        tx_all(in, n, &got);
        assert_int_equal(got.len, wlen);
        assert_memory_equal(got.data, want, wlen);
        sink_free(&got);
    }
}

/*
 * The receiver against the byte-at-a-time state machine it was before it
 * took whole clean lines in one piece (kept here as the reference; the
 * states are lib/dotstuff.c's). Same output, same consumed count, same
 * flags, for inputs of whole lines mixed with every irregular byte that
 * matters (stuffed dots, bare CR and LF, terminators and near-misses),
 * fed in random chunks, with and without a size limit.
 */
enum { REF_BOL, REF_DOT, REF_DOT_CR, REF_MID, REF_CR };
#define RX_BOL REF_BOL
#define RX_DOT REF_DOT
#define RX_DOT_CR REF_DOT_CR
#define RX_MID REF_MID
#define RX_CR REF_CR
static void ref_emit(struct rg_data_rx *rx, const char *p, size_t n)
{
    if (n == 0 || rx->toolarge || rx->out_error)
        return;
    if (n > rx->max - rx->size) {
        rx->toolarge = 1;
        return;
    }
    rx->size += n;
    if (rx->out(rx->ctx, p, n) < 0)
        rx->out_error = 1;
}

static size_t ref_rx_feed(struct rg_data_rx *rx, const char *in, size_t n, int *done)
{
    size_t i = 0;

    *done = 0;
    while (i < n) {
        char c = in[i];

        switch (rx->state) {
        case RX_MID: {
            /* fast path: copy a run of ordinary bytes in one call */
            size_t j = i;
            while (j < n && in[j] != '\r' && in[j] != '\n')
                j++;
            ref_emit(rx, in + i, j - i);
            i = j;
            if (i == n)
                break;
            c = in[i++];
            if (c == '\r')
                rx->state = RX_CR;
            else                    /* bare LF: content line break */
                ref_emit(rx, "\r\n", 2);
            break;
        }
        case RX_BOL:
            i++;
            if (c == '.')
                rx->state = RX_DOT;
            else if (c == '\r')
                rx->state = RX_CR;
            else if (c == '\n') {
                ref_emit(rx, "\r\n", 2);
                rx->state = RX_MID;
            } else {
                ref_emit(rx, &c, 1);
                rx->state = RX_MID;
            }
            break;
        case RX_DOT:
            /* the leading dot was stuffing: drop it */
            if (c == '\r') {
                i++;
                rx->state = RX_DOT_CR;
            } else {
                rx->state = RX_MID;     /* c is handled as ordinary content */
            }
            break;
        case RX_DOT_CR:
            if (c == '\n') {
                i++;
                rx->state = RX_BOL;
                *done = 1;
                return i;
            }
            /* "." then a bare CR: an (empty) content line, then c */
            ref_emit(rx, "\r\n", 2);
            rx->state = RX_MID;
            if (c == '\r') {
                i++;
                rx->state = RX_CR;
            }
            break;
        case RX_CR:
            i++;
            if (c == '\n') {
                ref_emit(rx, "\r\n", 2);
                rx->state = RX_BOL;
            } else if (c == '\r') {
                ref_emit(rx, "\r\n", 2);    /* the previous CR was bare */
            } else {
                ref_emit(rx, "\r\n", 2);    /* bare CR: content line break */
                ref_emit(rx, &c, 1);
                rx->state = RX_MID;
            }
            break;
        }
    }
    return i;
}
#undef RX_BOL
#undef RX_DOT
#undef RX_DOT_CR
#undef RX_MID
#undef RX_CR

static void rx_chunks(size_t (*feed)(struct rg_data_rx *, const char *, size_t, int *),
                      const char *in, size_t n, size_t max, uint64_t seed, struct sink *out,
                      struct rg_data_rx *rx, size_t *consumed, int *done)
{
    uint64_t saved = rng_state;
    size_t pos = 0;

    rng_state = seed;
    sink_init(out);
    rg_data_rx_init(rx, max, sink_out, out);
    *done = 0;
    while (pos < n && !*done) {
        size_t k = 1 + rng() % 23;
        if (k > n - pos)
            k = n - pos;
        pos += feed(rx, in + pos, k, done);
    }
    *consumed = pos;
    rng_state = saved;
}

static void test_rx_against_reference(void **state)
{
    static const char *pieces[] = { "line of text\r\n", "QUJD\r\n", "\r\n", ".dot\r\n",
                                    "..\r\n", ".\r\n", "a", ".", "\r", "\n", "x\ny",
                                    "\r\r\n", "\n.\n", "\r.\r", ".\r", "MAIL FROM:<a@b>\r\n" };
    const size_t npieces = sizeof(pieces) / sizeof(pieces[0]);

    (void)state;
    rng_state = 0xdecafbadULL;
    for (int it = 0; it < 3000; it++) {
        size_t n = 0, np = rng() % 40, c1, c2;
        char in[40 * 24];
        struct sink o1, o2;
        struct rg_data_rx r1, r2;
        int d1, d2;

        for (size_t k = 0; k < np; k++) {
            const char *p = pieces[rng() % 3 ? rng() % 3 : rng() % npieces];
            memcpy(in + n, p, strlen(p));
            n += strlen(p);
        }
        size_t max = rng() % 4 ? (size_t)1 << 20 : rng() % 200;
        uint64_t seed = rng();
        rx_chunks(rg_data_rx_feed, in, n, max, seed, &o1, &r1, &c1, &d1);
        rx_chunks(ref_rx_feed, in, n, max, seed, &o2, &r2, &c2, &d2);
        assert_int_equal(d1, d2);
        assert_int_equal(c1, c2);
        assert_int_equal(r1.state, r2.state);
        assert_int_equal(r1.toolarge, r2.toolarge);
        if (!r1.toolarge) {
            assert_int_equal(r1.size, r2.size);
            assert_int_equal(o1.len, o2.len);
            assert_memory_equal(o1.data, o2.data, o1.len);
        }
        sink_free(&o1);
        sink_free(&o2);
    }
}

static void test_round_trip_random(void **state)
{
    static const char alphabet[] = { '.', '.', '\r', '\n', '\r', '\n', 'a', 'b', ' ', 0,
                                     (char)0xff, '\t' };

    (void)state;
    rng_state = 0x5eed1234abcdULL;
    for (int it = 0; it < 1000; it++) {
        size_t n = rng() % 200, cuts[3];
        char *x = malloc(n + 5);
        struct rx_result r1, r1s, r2;
        struct sink t, t2;

        assert_non_null(x);
        for (size_t i = 0; i < n; i++)
            x[i] = alphabet[rng() % sizeof(alphabet)];
        memcpy(x + n, "\r\n.\r\n", 5);

        /* receive once; the content is canonical and ends with CRLF (or is empty) */
        rx_whole(x, n + 5, 1 << 20, &r1);
        assert_int_equal(r1.done, 1);
        assert_canonical(r1.out.data, r1.out.len);
        if (r1.out.len > 0)
            assert_memory_equal(r1.out.data + r1.out.len - 2, "\r\n", 2);

        /* a random 4-chunk split receives the same */
        for (int k = 0; k < 3; k++)
            cuts[k] = rng() % (n + 6);
        for (int a = 0; a < 3; a++)
            for (int b = a + 1; b < 3; b++)
                if (cuts[b] < cuts[a]) {
                    size_t tmp = cuts[a];
                    cuts[a] = cuts[b];
                    cuts[b] = tmp;
                }
        rx_run(x, n + 5, 1 << 20, cuts, 3, &r1s);
        assert_int_equal(r1s.done, 1);
        assert_int_equal(r1s.consumed, r1.consumed);
        assert_int_equal(r1s.out.len, r1.out.len);
        assert_memory_equal(r1s.out.data, r1.out.data, r1.out.len);

        /* send it: canonical wire format, the only "." line is the last */
        tx_all(r1.out.data, r1.out.len, &t);
        assert_canonical(t.data, t.len);
        assert_true(t.len >= 3);
        assert_memory_equal(t.data + t.len - 3, ".\r\n", 3);
        if (t.len > 3)
            assert_memory_equal(t.data + t.len - 5, "\r\n.\r\n", 5);
        {
            const char *p = t.data;
            size_t left = t.len;
            /* no line "." before the end */
            if (t.len > 3)
                assert_false(t.data[0] == '.' && t.data[1] == '\r');
            for (size_t k = 0; k + 5 <= left; k++)
                if (memcmp(p + k, "\r\n.\r\n", 5) == 0)
                    assert_int_equal(k + 5, t.len);
        }

        /* and receive it again: the same content, every byte consumed */
        rx_whole(t.data, t.len, 1 << 20, &r2);
        assert_int_equal(r2.done, 1);
        assert_int_equal(r2.consumed, t.len);
        assert_int_equal(r2.out.len, r1.out.len);
        assert_memory_equal(r2.out.data, r1.out.data, r1.out.len);

        /* sending is idempotent on received content */
        tx_all(r2.out.data, r2.out.len, &t2);
        assert_int_equal(t2.len, t.len);
        assert_memory_equal(t2.data, t.data, t.len);

        sink_free(&t2);
        sink_free(&r2.out);
        sink_free(&t);
        sink_free(&r1s.out);
        sink_free(&r1.out);
        free(x);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rx_plain),
        cmocka_unit_test(test_rx_empty),
        cmocka_unit_test(test_rx_unstuffing),
        cmocka_unit_test(test_rx_stops_at_terminator),
        cmocka_unit_test(test_rx_smuggling_lf_dot_lf),
        cmocka_unit_test(test_rx_smuggling_cr_dot_cr),
        cmocka_unit_test(test_rx_smuggling_crlf_dot_lf),
        cmocka_unit_test(test_rx_smuggling_lf_dot_crlf),
        cmocka_unit_test(test_rx_smuggling_dot_cr_bol),
        cmocka_unit_test(test_rx_smuggling_cr_cr_lf),
        cmocka_unit_test(test_rx_smuggling_none_ends),
        cmocka_unit_test(test_rx_split_terminator),
        cmocka_unit_test(test_rx_split_everything),
        cmocka_unit_test(test_rx_toolarge),
        cmocka_unit_test(test_rx_output_error),
        cmocka_unit_test(test_tx_plain),
        cmocka_unit_test(test_tx_stuffing),
        cmocka_unit_test(test_tx_normalize),
        cmocka_unit_test(test_tx_final_crlf),
        cmocka_unit_test(test_tx_output_error),
        cmocka_unit_test(test_tx_against_model),
        cmocka_unit_test(test_rx_against_reference),
        cmocka_unit_test(test_round_trip_random),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
