/*
 * provider_json.h - the JSON bodies of the provider protocol
 * (doc/provider-protocol.md), parsed into typed results and built from them.
 *
 * Pure functions over byte strings: no I/O, no global state, bounded. Both
 * sides use them: lib/provider_client parses responses and builds the
 * create-transaction request; regigate-provider parses that request.
 * Every parser takes the exact body (not NUL-terminated, may contain any
 * bytes), returns 0 on success or -1 with *why set to a static English
 * reason, and never keeps pointers into the input.
 */
#ifndef RG_PROVIDER_JSON_H
#define RG_PROVIDER_JSON_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

#define RG_PJ_ID_LEN 16             /* transaction id = CMS kekid, bytes */
#define RG_PJ_KEK_LEN 32            /* AES-256 key-encryption key, bytes */
#define RG_PJ_SHA256_LEN 32
#define RG_PJ_ADDR_MAX 254          /* longest address, bytes */
#define RG_PJ_MSGID_MAX 998
#define RG_PJ_MAX_RECIPIENTS 1000
#define RG_PJ_MAX_DEPTH 32
#define RG_PJ_MAX_EVENTS 10000
#define RG_PJ_MAX_ELEMENTS 20000     /* members of one array or object in a body */

/* ---- values ---------------------------------------------------------- */

/* Validate an envelope address (section 5 of the protocol) and write its
 * lower-cased form to out (RG_PJ_ADDR_MAX + 1 bytes). 0 ok, -1 invalid. */
int rg_pj_address_normalize(const char *in, size_t len, char *out);
/* Exactly 2*n hex digits (either case) -> n bytes. 0 ok, -1 otherwise. */
int rg_pj_hex_decode(const char *hex, size_t hexlen, uint8_t *out, size_t n);
/* n bytes -> 2*n lower-case hex digits and a NUL. */
void rg_pj_hex_encode(const uint8_t *in, size_t n, char *out);
/* Is the JSON text nested at most max levels, with fewer than
 * RG_PJ_MAX_ELEMENTS + 1 elements in each array or object, and without
 * \u0000 in a string (strings are skipped)? */
int rg_pj_depth_ok(const char *s, size_t n, int max);

/* ---- responses (client side) ----------------------------------------- */

struct rg_pj_error {
    char code[64];       /* e.g. "unknown_transaction"; "" if absent */
    char message[256];
};
struct rg_pj_health {
    long long gateway;
    long long protocol;
};
struct rg_pj_account {
    char address[RG_PJ_ADDR_MAX + 1];
    int exists;
};
struct rg_pj_txn {
    uint8_t id[RG_PJ_ID_LEN];
    uint8_t kek[RG_PJ_KEK_LEN];
    int replayed;
};
struct rg_pj_key {
    uint8_t id[RG_PJ_ID_LEN];
    char recipient[RG_PJ_ADDR_MAX + 1];
    uint8_t kek[RG_PJ_KEK_LEN];
};
struct rg_pj_event {
    char type[32];                      /* "created", "key_retrieved" */
    char time[40];
    long long gateway;
    char ip[64];
    char recipient[RG_PJ_ADDR_MAX + 1]; /* "" for "created" */
};
struct rg_pj_events {
    uint8_t id[RG_PJ_ID_LEN];
    struct rg_pj_event *ev;
    size_t n;
    int truncated;
};

int rg_pj_parse_error(const char *body, size_t len, struct rg_pj_error *out, const char **why);
int rg_pj_parse_health(const char *body, size_t len, struct rg_pj_health *out, const char **why);
int rg_pj_parse_account(const char *body, size_t len, struct rg_pj_account *out, const char **why);
int rg_pj_parse_txn(const char *body, size_t len, struct rg_pj_txn *out, const char **why);
int rg_pj_parse_key(const char *body, size_t len, struct rg_pj_key *out, const char **why);
/* On success out->ev is allocated; free with rg_pj_events_free(). */
int rg_pj_parse_events(const char *body, size_t len, struct rg_pj_events *out, const char **why);
void rg_pj_events_free(struct rg_pj_events *ev);

/* ---- create-transaction request (both sides) ------------------------- */

struct rg_pj_create {
    char sender[RG_PJ_ADDR_MAX + 1];    /* normalized */
    char **recipients;                  /* normalized, sorted, unique */
    size_t nrecipients;
    char *message_id;
    uint8_t sha256[RG_PJ_SHA256_LEN];
};

enum rg_pj_create_status {
    RG_PJ_CREATE_OK = 0,
    RG_PJ_CREATE_MALFORMED = -1,    /* not JSON / not an object: malformed_json */
    RG_PJ_CREATE_INVALID = -2       /* a member is wrong: invalid_request */
};
enum rg_pj_create_status rg_pj_parse_create(const char *body, size_t len,
                                            struct rg_pj_create *out, const char **why);
void rg_pj_create_free(struct rg_pj_create *c);

/* Append the request body to out. -1 when out's limit is exceeded or a
 * string is not valid UTF-8. */
int rg_pj_build_create(struct rg_buf *out, const char *sender, const char *const *recipients,
                       size_t nrecipients, const char *message_id,
                       const uint8_t sha256[RG_PJ_SHA256_LEN]);

#endif
