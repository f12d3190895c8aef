/*
 * dotstuff.c - DATA unstuffing/stuffing state machines; see dotstuff.h.
 */
#include "config.h"

#include <string.h>

#include "dotstuff.h"

/* receive states */
enum {
    RX_BOL,      /* at the start of a protocol line (after CRLF, or first byte) */
    RX_DOT,      /* "." at the start of a protocol line */
    RX_DOT_CR,   /* "." CR at the start of a protocol line */
    RX_MID,      /* inside a line */
    RX_CR,       /* after a CR inside a line */
};

void rg_data_rx_init(struct rg_data_rx *rx, size_t max, rg_data_out_fn out, void *ctx)
{
    memset(rx, 0, sizeof(*rx));
    rx->state = RX_BOL;
    rx->max = max;
    rx->out = out;
    rx->ctx = ctx;
}

static void emit(struct rg_data_rx *rx, const char *p, size_t n)
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

/*
 * The longest run from `i` that both directions pass on as it is: whole
 * lines, each ending in CRLF, with no other CR or LF, and no dot at a
 * line's start (a dot to stuff when sending; when receiving, stuffing to
 * remove or the end of data). Mail from Postfix and what regigate writes
 * itself are such lines, so a chunk goes through in one piece instead of
 * a call or three per line; anything else takes the byte-wise path.
 */
static size_t clean_run(const char *in, size_t n, size_t i, int bol)
{
    size_t k = i;

    for (;;) {
        const char *nl;
        size_t e;

        if (bol && k < n && in[k] == '.')
            break;
        nl = memchr(in + k, '\n', n - k);
        if (nl == NULL)
            break;
        e = (size_t)(nl - in);
        if (e == k || in[e - 1] != '\r' || memchr(in + k, '\r', e - 1 - k) != NULL)
            break;
        k = e + 1;
        bol = 1;
    }
    return k - i;
}

size_t rg_data_rx_feed(struct rg_data_rx *rx, const char *in, size_t n, int *done)
{
    size_t i = 0;

    *done = 0;
    while (i < n) {
        char c;

        if (rx->state == RX_BOL || rx->state == RX_MID) {
            size_t run = clean_run(in, n, i, rx->state == RX_BOL);
            if (run > 0) {
                emit(rx, in + i, run);
                rx->state = RX_BOL;
                i += run;
                continue;
            }
        }
        c = in[i];
        switch (rx->state) {
        case RX_MID: {
            /* fast path: copy a run of ordinary bytes in one call */
            size_t j = i;
            while (j < n && in[j] != '\r' && in[j] != '\n')
                j++;
            emit(rx, in + i, j - i);
            i = j;
            if (i == n)
                break;
            c = in[i++];
            if (c == '\r')
                rx->state = RX_CR;
            else                    /* bare LF: content line break */
                emit(rx, "\r\n", 2);
            break;
        }
        case RX_BOL:
            i++;
            if (c == '.')
                rx->state = RX_DOT;
            else if (c == '\r')
                rx->state = RX_CR;
            else if (c == '\n') {
                emit(rx, "\r\n", 2);
                rx->state = RX_MID;
            } else {
                emit(rx, &c, 1);
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
            emit(rx, "\r\n", 2);
            rx->state = RX_MID;
            if (c == '\r') {
                i++;
                rx->state = RX_CR;
            }
            break;
        case RX_CR:
            i++;
            if (c == '\n') {
                emit(rx, "\r\n", 2);
                rx->state = RX_BOL;
            } else if (c == '\r') {
                emit(rx, "\r\n", 2);    /* the previous CR was bare */
            } else {
                emit(rx, "\r\n", 2);    /* bare CR: content line break */
                emit(rx, &c, 1);
                rx->state = RX_MID;
            }
            break;
        }
    }
    return i;
}

enum { TX_BOL, TX_MID, TX_CR };

void rg_data_tx_init(struct rg_data_tx *tx, rg_data_out_fn out, void *ctx)
{
    tx->state = TX_BOL;
    tx->out = out;
    tx->ctx = ctx;
}

int rg_data_tx_feed(struct rg_data_tx *tx, const char *in, size_t n)
{
    size_t i = 0;

    while (i < n) {
        char c;

        if (tx->state != TX_CR) {
            size_t run = clean_run(in, n, i, tx->state == TX_BOL);
            if (run > 0) {
                if (tx->out(tx->ctx, in + i, run) < 0)
                    return -1;
                tx->state = TX_BOL;
                i += run;
                continue;
            }
        }
        c = in[i];

        if (tx->state == TX_CR) {
            /* CR seen: a following LF completes the line; anything else
             * means the CR was bare and becomes a line end of its own */
            if (tx->out(tx->ctx, "\r\n", 2) < 0)
                return -1;
            tx->state = TX_BOL;
            if (c == '\n') {
                i++;
                continue;
            }
        }
        if (tx->state == TX_BOL && c == '.') {
            if (tx->out(tx->ctx, ".", 1) < 0)
                return -1;
        }
        /* copy the run up to the next CR or LF */
        size_t j = i;
        while (j < n && in[j] != '\r' && in[j] != '\n')
            j++;
        if (j > i) {
            if (tx->out(tx->ctx, in + i, j - i) < 0)
                return -1;
            tx->state = TX_MID;
        }
        i = j;
        if (i == n)
            break;
        if (in[i] == '\r') {
            tx->state = TX_CR;
        } else {                        /* bare LF */
            if (tx->out(tx->ctx, "\r\n", 2) < 0)
                return -1;
            tx->state = TX_BOL;
        }
        i++;
    }
    return 0;
}

int rg_data_tx_finish(struct rg_data_tx *tx)
{
    if (tx->state != TX_BOL && tx->out(tx->ctx, "\r\n", 2) < 0)
        return -1;
    tx->state = TX_BOL;
    return tx->out(tx->ctx, ".\r\n", 3);
}
