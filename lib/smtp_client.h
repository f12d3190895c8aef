/*
 * smtp_client.h - reinjection: send a spooled message to the route's next
 * hop (the Postfix reinjection smtpd) over SMTP, with PIPELINING and
 * XFORWARD when offered, and a connection kept open across messages.
 *
 * Failures are classified as in OpenSMTPD's client: connection, protocol
 * and response failures become one reply per recipient — 4xx (retry) for
 * anything transient or local, the downstream's own 5xx when it refused.
 */
#ifndef RG_SMTP_CLIENT_H
#define RG_SMTP_CLIENT_H

#include <stddef.h>

#include "conffile.h"
#include "envelope.h"
#include "spool.h"

struct rg_smtpc;

/* helo: our name in EHLO; timeout_ms: connect and each reply/write. */
struct rg_smtpc *rg_smtpc_new(const struct rg_hostport *dest, const char *helo, int timeout_ms);
struct rg_smtpc *rg_smtpc_free(struct rg_smtpc *c);

/* Seconds a connection may sit idle and still be reused. */
#define RG_SMTPC_IDLE_MAX 30

/*
 * What to send: head (may be NULL) followed by the spool's bytes from off
 * to its end. A message passed unchanged is {NULL, 0, sp, 0}; one whose
 * header section a rule changed is {new header section, its length, sp,
 * body offset}.
 */
struct rg_msgsrc {
    const char *head;
    size_t head_len;
    struct rg_spool *sp;
    off_t off;
};

/*
 * Send the message src from env->sender to rcpts[0..nrcpt-1] (which may
 * be a subset of env->rcpts). Fills replies[i] with the definitive outcome
 * for rcpts[i]: the DATA reply for accepted recipients, the RCPT reply for
 * refused ones, or a 451 that says what went wrong. Returns the number of
 * recipients that were accepted with a 2xx final reply.
 */
size_t rg_smtpc_send(struct rg_smtpc *c, const struct rg_envelope *env,
                     char *const *rcpts, size_t nrcpt, const struct rg_msgsrc *src,
                     struct rg_reply *replies);

#endif
