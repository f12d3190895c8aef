/*
 * filter_crypt.h - the rule actions encrypt and decrypt (regigate-rules(5),
 * doc/message-format.md), with the route's key provider.
 *
 * Encrypt: the envelope sender must have an account at the provider (else
 * 550 5.7.1, nothing leaves); a transaction is created for the sender and
 * the recipients; the message (with the rule's tags applied) is encrypted
 * for its KEK and the S/MIME message is reinjected.
 *
 * Decrypt: a message that is not an encrypted regigate message passes
 * unchanged. Otherwise the KEK is fetched for each envelope recipient:
 * recipients whose key came get the original message back, byte for
 * byte; recipients the provider definitely refuses (no account, not a
 * recipient of the transaction, unknown transaction) and every recipient
 * when the content does not authenticate get the encrypted message
 * unchanged; recipients for whom the provider could not answer are
 * deferred (451). Each group is reinjected separately.
 *
 * Any provider trouble or local error is a temporary failure (451): mail
 * that policy says to encrypt never leaves in clear.
 *
 * Lives in libregigate_provider.a (it needs libcurl): a program enables it
 * per filter with rg_filter_crypt_init(), after dropping privileges (the
 * route's key must be readable by the configured user).
 */
#ifndef RG_FILTER_CRYPT_H
#define RG_FILTER_CRYPT_H

#include "filter.h"

void rg_filter_crypt_init(struct rg_filter *f);
void rg_filter_crypt_free(struct rg_filter *f);

#endif
