/*
 * filter.h - what regigated does with one received message: decide, then
 * reinject, then say what happened (one reply per recipient for LMTP, one
 * summary for SMTP) and log one line per outcome with the queue id.
 *
 * The route's rule set decides (regigate-rules(5)): per message, or per
 * recipient with process = recipient. Without rules (or with {}) every
 * message is forwarded byte for byte without being parsed; a message is
 * also passed byte for byte when no tag changed its header section.
 *
 * Mixed outcomes with SMTP input (one reply for all recipients) are
 * resolved so that no copy is lost: any temporary failure makes the whole
 * message 451 (recipients already delivered may get a duplicate on retry);
 * otherwise any permanent failure makes it that 5xx (the sender is told);
 * only when every recipient succeeded is it 250. LMTP input gets the exact
 * per-recipient outcome.
 */
#ifndef RG_FILTER_H
#define RG_FILTER_H

#include "conffile.h"
#include "envelope.h"
#include "rules.h"
#include "smtp_client.h"
#include "spool.h"

struct rg_filter_job;

/* Carries out encrypt or decrypt for the recipients idx[0..n) of a job:
 * fills their replies and logs the outcome (filter_crypt.h). */
typedef void (*rg_filter_crypt_fn)(struct rg_filter_job *j, const size_t *idx, size_t n,
                                   const struct rg_rules_result *res);

struct rg_filter {
    const struct rg_conf *conf;
    const struct rg_route *route;
    const struct rg_rules *rules;   /* NULL: the empty rule set */
    struct rg_smtpc *smtpc;         /* kept open across messages */
    /* Encrypt/decrypt, set by rg_filter_crypt_init() (a separate library:
     * it needs libcurl). NULL: those actions defer the message (451). */
    rg_filter_crypt_fn crypt;
    void *crypt_ctx;
};

void rg_filter_init(struct rg_filter *f, const struct rg_conf *conf, const struct rg_route *route,
                    const struct rg_rules *rules);
void rg_filter_free(struct rg_filter *f);

/* An rg_deliver_fn (smtp_server.h); ctx is a struct rg_filter. */
void rg_filter_deliver(void *ctx, struct rg_envelope *env, struct rg_spool *sp,
                       struct rg_reply *per_rcpt, struct rg_reply *summary);

/* The SMTP summary of per-recipient outcomes (see above). */
void rg_filter_summarize(const struct rg_reply *per, size_t n, struct rg_reply *summary);

#endif
