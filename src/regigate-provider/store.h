/*
 * store.h - the provider's SQLite database: gateways and their allow-listed
 * addresses and certificates, accounts, transactions (KEK sealed under the
 * master key) and their events.
 *
 * One struct rgp_db per thread (SQLite connections are not shared). WAL
 * mode; the schema is versioned (table schema_version) and migrated
 * forward on open. Every operation that writes runs in one IMMEDIATE
 * transaction and either commits completely or changes nothing.
 */
#ifndef RGP_STORE_H
#define RGP_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "pki.h"
#include "provider_json.h"

enum rgp_db_rc {
    RGP_DB_OK = 0,
    RGP_DB_ERROR = -1,          /* logged; 500 */
    RGP_DB_BUSY = -2,           /* lock not obtained in time; 503 */
    RGP_DB_NOTFOUND = 1,
    RGP_DB_EXISTS = 2,
    /* create transaction */
    RGP_DB_REPLAYED = 3,
    RGP_DB_CONFLICT = 4,
    RGP_DB_SENDER_NO_ACCOUNT = 5,
    /* key fetch */
    RGP_DB_NOT_RECIPIENT = 6,
    RGP_DB_NO_ACCOUNT = 7,
};

struct rgp_db;

/* create: make the file if missing (mode 0600). mk may be NULL for
 * commands that never touch KEKs. */
struct rgp_db *rgp_db_open(const char *path, int create, const uint8_t *mk,
                           char *err, size_t errlen);
struct rgp_db *rgp_db_close(struct rgp_db *db);
/* 1 (default): every commit is synced to disk before it is answered;
 * 0: synced at WAL checkpoints only (faster; may lose the last commits,
 * and so keys already handed out, on a power failure). */
void rgp_db_set_synchronous(int full);
/* Close the shared write connection (end of serve). */
void rgp_db_shutdown(void);
int rgp_db_schema_version(struct rgp_db *db);
long long rgp_now_ms(void);
/* A new transaction id: creation time `ms` (48 bits) and 80 random bits. */
void rgp_txn_id(long long ms, uint8_t id[RG_PJ_ID_LEN]);
/* "2024-05-04T10:35:01.123Z" into out (32 bytes) */
void rgp_time_format(long long ms, char *out);

/* ---- authentication -------------------------------------------------- */
struct rgp_auth {
    long long gateway;
    int removed;
    int ip_allowed;
};
/* RGP_DB_OK with out filled, RGP_DB_NOTFOUND if the fingerprint is unknown */
int rgp_db_auth(struct rgp_db *db, const char *fingerprint, const char *ip, struct rgp_auth *out);

/* ---- gateways (admin) ------------------------------------------------ */
int rgp_db_gateway_add(struct rgp_db *db, const char *description, const char *const *ips,
                       size_t nips, long long *id);
/* RGP_DB_OK, NOTFOUND, or EXISTS when it was removed already */
int rgp_db_gateway_check(struct rgp_db *db, long long id);
int rgp_db_gateway_remove(struct rgp_db *db, long long id);
int rgp_db_gateway_list(struct rgp_db *db, void (*fn)(void *arg, long long id, const char *desc,
                                                      const char *ips, long long created,
                                                      long long removed, int ncerts), void *arg);
int rgp_db_cert_add(struct rgp_db *db, long long gateway, const struct rgp_signed *s);

/* ---- accounts -------------------------------------------------------- */
int rgp_db_account_exists(struct rgp_db *db, const char *addr, int *exists);
int rgp_db_account_add(struct rgp_db *db, const char *addr);      /* OK, EXISTS */
int rgp_db_account_remove(struct rgp_db *db, const char *addr);   /* OK, NOTFOUND */
int rgp_db_account_list(struct rgp_db *db, void (*fn)(void *arg, const char *addr), void *arg);

/* ---- transactions ---------------------------------------------------- */
/* OK (new), REPLAYED, CONFLICT, SENDER_NO_ACCOUNT; id, kek, created out */
int rgp_db_txn_create(struct rgp_db *db, long long gateway, const char *ip,
                      const struct rg_pj_create *req, uint8_t id[RG_PJ_ID_LEN],
                      uint8_t kek[RG_PJ_KEK_LEN], long long *created);
/* OK, NOTFOUND, NOT_RECIPIENT, NO_ACCOUNT; records a key_retrieved event */
int rgp_db_txn_key(struct rgp_db *db, long long gateway, const char *ip,
                   const uint8_t id[RG_PJ_ID_LEN], const char *recipient,
                   uint8_t kek[RG_PJ_KEK_LEN]);

struct rgp_event {
    char type[16];
    long long time;
    long long gateway;
    char ip[64];
    char *recipient;            /* NULL for "created" */
};
struct rgp_txn_info {
    char id[2 * RG_PJ_ID_LEN + 1];
    long long gateway;
    char *sender;
    char *message_id;
    char sha256[65];
    long long created;
    char **recipients;
    size_t nrecipients;
    struct rgp_event *events;
    size_t nevents;
    int truncated;
};
/* OK or NOTFOUND */
int rgp_db_txn_info(struct rgp_db *db, const uint8_t id[RG_PJ_ID_LEN], struct rgp_txn_info *out);
void rgp_txn_info_free(struct rgp_txn_info *t);

#endif
