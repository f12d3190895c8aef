/*
 * smtp_server.h - the receiving side of regigated: one SMTP or LMTP
 * session on an accepted connection (RFC 5321, RFC 2033, RFC 2920
 * PIPELINING, RFC 1870 SIZE, RFC 6152 8BITMIME, RFC 6531 SMTPUTF8,
 * RFC 2034 ENHANCEDSTATUSCODES, Postfix XFORWARD).
 *
 * The server owns the protocol and the limits; what happens to a message
 * is the deliver callback's business. It is called once per transaction
 * after a complete DATA, and must fill one reply per recipient (used with
 * LMTP) and a summary reply (used with SMTP).
 */
#ifndef RG_SMTP_SERVER_H
#define RG_SMTP_SERVER_H

#include <stddef.h>
#include <sys/socket.h>

#include "conffile.h"
#include "envelope.h"
#include "spool.h"

typedef void (*rg_deliver_fn)(void *ctx, struct rg_envelope *env, struct rg_spool *sp,
                              struct rg_reply *per_rcpt, struct rg_reply *summary);

#define RG_SMTP_LINE_MAX 2048      /* command line limit, terminator included */
#define RG_SMTP_ERROR_LIMIT 20     /* errors before 421 and disconnect */
#define RG_SMTP_JUNK_LIMIT 100     /* NOOP/RSET/VRFY/HELP/unknown per session */

struct rg_smtp_server_cfg {
    enum rg_protocol protocol;
    const char *hostname;
    size_t max_message_size;
    int max_recipients;
    int timeout_ms;             /* per command / data read */
    const char *spool_dir;
    size_t spool_mem_limit;
    int watchdog_s;             /* alarm() per transaction; 0 = none */
    int offer_xforward;
    rg_deliver_fn deliver;
    /* optional: refuse a recipient at RCPT time (return -1 and fill r) */
    int (*rcpt_check)(void *ctx, const char *addr, struct rg_reply *r);
    void *ctx;
    volatile int *stop;         /* set on shutdown: end idle sessions with 421 */
    /* optional: the client's address as accept() gave it (else getpeername) */
    const struct sockaddr *peer;
    socklen_t peerlen;
};

/* Serve one connection until QUIT, EOF, an error or shutdown. Returns the
 * number of messages for which the deliver callback was called. */
int rg_smtp_serve(int fd, const struct rg_smtp_server_cfg *cfg);
/* Free the session memory rg_smtp_serve keeps for the next connection
 * (the spool's buffer, the recipient table): a worker calls it before it
 * exits. The next rg_smtp_serve allocates afresh. */
void rg_smtp_serve_release(void);

#endif
