/*
 * provider_client.h - the gateway's client of the key provider
 * (doc/provider-protocol.md), used by regigated's workers.
 *
 * One struct rg_provider per worker and route: it keeps one libcurl easy
 * handle, so the TLS connection to the provider is reused across messages
 * (HTTP keep-alive). The provider's certificate is verified against the
 * configured provider CA only (never the system store), host name
 * included; there is deliberately no way to switch verification off.
 * Requests are blocking, bounded by the connect and total timeouts.
 *
 * Every call returns an rg_provider_status. rg_provider_is_temporary()
 * tells the caller whether to defer the message (451 4.7.x); the optional
 * struct rg_provider_info says why, for the log line.
 */
#ifndef RG_PROVIDER_CLIENT_H
#define RG_PROVIDER_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include "provider_json.h"

enum rg_provider_status {
    RG_PROVIDER_OK = 0,         /* the answer is yes / here is the result */
    RG_PROVIDER_NO_ACCOUNT,     /* definite: the address has no account */
    RG_PROVIDER_NOT_ALLOWED,    /* definite: not a recipient of the transaction,
                                   or not the transaction's gateway */
    RG_PROVIDER_NOT_FOUND,      /* definite: no such transaction */
    RG_PROVIDER_CONFLICT,       /* same digest, different envelope (409) */
    RG_PROVIDER_REJECTED,       /* the provider refused the request as invalid
                                   (400/405/411/413/415): a bug or bad input */
    RG_PROVIDER_UNAUTHORIZED,   /* this gateway is not accepted: certificate,
                                   allow-list or removed (401/403) */
    RG_PROVIDER_TEMPFAIL,       /* transport error, timeout, TLS failure, 5xx,
                                   unexpected status or unparsable answer */
};

/* Static English text for a status. */
const char *rg_provider_strerror(enum rg_provider_status st);
/* Should a message be deferred (4xx) rather than decided on this answer?
 * True for TEMPFAIL, UNAUTHORIZED, CONFLICT and REJECTED. */
int rg_provider_is_temporary(enum rg_provider_status st);

/* How a route reaches its provider (regigate.conf: provider, provider_ca,
 * provider_cert, provider_key or one key_cert.pem). */
struct rg_provider_config {
    const char *url;            /* "https://host:port" or "host:port" */
    const char *ca_file;        /* the provider CA (PEM), required */
    const char *cert_file;      /* the route's signed certificate (PEM), required */
    const char *key_file;       /* its key; NULL: the key is in cert_file */
    long connect_timeout_ms;    /* <= 0: 10000 */
    long timeout_ms;            /* whole request; <= 0: 30000 */
    int cache_positive_ttl;     /* seconds an account "yes" is cached; 0 off */
    int cache_negative_ttl;     /* seconds a "no account" is cached; 0 off */
    size_t cache_max;           /* entries; 0: 10000 */
    /* When set: the file whose mtime records the last answer of the
     * provider (lib/routestate.h), touched at most once a minute; NULL:
     * nothing recorded. */
    const char *contact_file;
};

/* Details of the last answer, for logging. */
struct rg_provider_info {
    long http_status;           /* 0 when no HTTP answer */
    char code[64];              /* the error body's code, or "" */
    char reason[256];           /* one line: what happened */
};

struct rg_provider;

/* NULL with a reason in err when the configuration is unusable (files
 * missing, bad URL, a key readable by group or others); a missing
 * provider is only noticed per request. */
struct rg_provider *rg_provider_new(const struct rg_provider_config *cfg, char *err, size_t errlen);
/* 0 when key_file exists and only its owner may access it (no group or
 * other permission bits); else -1 with the reason in err. */
int rg_provider_key_mode_ok(const char *key_file, char *err, size_t errlen);
struct rg_provider *rg_provider_free(struct rg_provider *p);

/* GET /v1/health: OK, and *gateway = the id the provider knows us by. */
enum rg_provider_status rg_provider_health(struct rg_provider *p, long long *gateway,
                                           struct rg_provider_info *info);

/* Does address have an account? OK (yes) or NO_ACCOUNT (definite no);
 * answers come from the cache while fresh. */
enum rg_provider_status rg_provider_account(struct rg_provider *p, const char *address,
                                            struct rg_provider_info *info);
void rg_provider_cache_clear(struct rg_provider *p);

struct rg_provider_txn {
    uint8_t id[RG_PJ_ID_LEN];           /* the CMS kekid */
    char id_hex[2 * RG_PJ_ID_LEN + 1];
    uint8_t kek[RG_PJ_KEK_LEN];
    int replayed;                       /* an earlier try had created it */
};

/* POST /v1/transactions. Safe to retry with the same digest. The KEK in
 * out is secret: wipe it (rg_provider_wipe) when done. */
enum rg_provider_status rg_provider_create(struct rg_provider *p, const char *sender,
                                           const char *const *recipients, size_t nrecipients,
                                           const char *message_id,
                                           const uint8_t sha256[RG_PJ_SHA256_LEN],
                                           struct rg_provider_txn *out,
                                           struct rg_provider_info *info);

/* GET /v1/transactions/{id}/key?recipient=: OK with kek, NOT_FOUND,
 * NOT_ALLOWED (not a recipient), NO_ACCOUNT. */
enum rg_provider_status rg_provider_fetch_key(struct rg_provider *p, const uint8_t id[RG_PJ_ID_LEN],
                                              const char *recipient, uint8_t kek[RG_PJ_KEK_LEN],
                                              struct rg_provider_info *info);

/* GET /v1/transactions/{id}/events: OK with out filled (free with
 * rg_pj_events_free), NOT_FOUND, NOT_ALLOWED. */
enum rg_provider_status rg_provider_events(struct rg_provider *p, const uint8_t id[RG_PJ_ID_LEN],
                                           struct rg_pj_events *out, struct rg_provider_info *info);

/* Connections opened so far (1 while keep-alive holds; for tests). */
long rg_provider_connections(const struct rg_provider *p);

/* Overwrite secret bytes so that the compiler cannot drop it. */
void rg_provider_wipe(void *p, size_t n);

#endif
