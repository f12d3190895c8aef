/*
 * dotstuff.h - the DATA phase in both directions, written so that SMTP
 * smuggling is impossible through regigate.
 *
 * Receiving (rg_data_rx): the end of data is recognised ONLY as
 * CR LF "." CR LF. Dot-unstuffing applies only at the start of a line
 * that follows a CR LF: there a leading "." not followed by CR LF is
 * stuffing and is removed (RFC 5321 4.5.2), even when a bare CR or LF
 * comes next. A bare LF or a bare CR inside the data is content, never a
 * line end for the protocol, and is normalised to CR LF in what we store:
 * so "\n.\n", "\r.\r" and "\n.\r\n" are kept as content lines "." (which
 * the sender below stuffs as ".." for the next hop), and "\r\n.\n" becomes
 * an empty content line. None of them ends the data.
 *
 * Sending (rg_data_tx): whatever the content, the output is canonical:
 * CR LF line endings only, every line that starts with "." is stuffed, the
 * last line is terminated, then "." CR LF. The reinjection smtpd trusts
 * loopback, so we never rely on it to catch anything.
 */
#ifndef RG_DOTSTUFF_H
#define RG_DOTSTUFF_H

#include <stddef.h>

/* Receives output bytes; returns 0, or -1 to report a write error. */
typedef int (*rg_data_out_fn)(void *ctx, const char *p, size_t n);

struct rg_data_rx {
    int state;
    size_t size;        /* bytes of content produced so far */
    size_t max;         /* content beyond this is discarded; toolarge is set */
    int toolarge;
    int out_error;      /* the output function failed */
    rg_data_out_fn out;
    void *ctx;
};

void rg_data_rx_init(struct rg_data_rx *rx, size_t max, rg_data_out_fn out, void *ctx);
/*
 * Feed n bytes of the DATA stream. Returns how many bytes were consumed;
 * *done becomes 1 when the terminating CRLF.CRLF was consumed (bytes after
 * it are not consumed: they are the next pipelined command).
 */
size_t rg_data_rx_feed(struct rg_data_rx *rx, const char *in, size_t n, int *done);

struct rg_data_tx {
    int state;          /* at beginning of line, inside, after CR */
    rg_data_out_fn out;
    void *ctx;
};

void rg_data_tx_init(struct rg_data_tx *tx, rg_data_out_fn out, void *ctx);
int rg_data_tx_feed(struct rg_data_tx *tx, const char *in, size_t n);
/* Terminate the last line if needed and write "." CR LF. */
int rg_data_tx_finish(struct rg_data_tx *tx);

#endif
