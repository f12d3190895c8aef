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
 * Send the message in sp from env->sender to rcpts[0..nrcpt-1] (which may
 * be a subset of env->rcpts). Fills replies[i] with the definitive outcome
 * for rcpts[i]: the DATA reply for accepted recipients, the RCPT reply for
 * refused ones, or a 451 that says what went wrong. Returns the number of
 * recipients that were accepted with a 2xx final reply.
 */
size_t rg_smtpc_send(struct rg_smtpc *c, const struct rg_envelope *env,
                     char *const *rcpts, size_t nrcpt, struct rg_spool *sp,
                     struct rg_reply *replies);

#endif
