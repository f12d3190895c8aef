/*
 * server.c - the provider's HTTPS API on libmicrohttpd; see server.h and
 * doc/provider-protocol.md.
 *
 * Why GnuTLS appears here: Debian's libmicrohttpd is built with GnuTLS.
 * MHD_OPTION_HTTPS_MEM_TRUST makes it *request* a client certificate and
 * load our CA as the trust list, but MHD neither requires nor checks the
 * certificate. So each request fetches the TLS session
 * (MHD_CONNECTION_INFO_GNUTLS_SESSION) and calls
 * gnutls_certificate_verify_peers() (chain to the provider CA, validity,
 * extended key usage clientAuth) and gnutls_certificate_get_peers() (the
 * DER whose SHA-256 names the gateway). That is the only GnuTLS use in
 * regigate; everything else is OpenSSL.
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>

#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <microhttpd.h>
#include <openssl/crypto.h>
#include <yajl/yajl_gen.h>

#include "buf.h"
#include "log.h"
#include "mem.h"
#include "pki.h"
#include "provider_json.h"
#include "server.h"
#include "store.h"

#define URL_MAX 2048

struct server {
    const struct rgp_conf *conf;
    uint8_t mk[RGP_MASTER_KEY_LEN];
    char *db_path;
    pthread_key_t dbkey;
};

/*
 * Per TLS connection (MHD's socket_context): the client certificate once
 * verified. A TLS session's peer certificate cannot change (MHD does not
 * renegotiate), so the chain is verified on the first request only; later
 * requests compare the fingerprint and check the expiry time. The
 * database (gateway removed, allow-list) is still asked on every request.
 */
struct conn {
    int verified;
    char fingerprint[65];
    time_t not_after;
};

/* Per request state (MHD's con_cls). */
struct req {
    struct rg_buf body;
    int too_big;
    int authed;
    struct rgp_auth auth;
    char ip[INET6_ADDRSTRLEN];
    struct timespec start;
    unsigned status;
};

/* ---- responses ------------------------------------------------------- */

static enum MHD_Result send_body(struct MHD_Connection *c, struct req *r, unsigned status,
                                 const void *body, size_t len, const char *allow)
{
    struct MHD_Response *resp;
    enum MHD_Result ret;

    resp = MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
    if (resp == NULL)
        return MHD_NO;
    MHD_add_response_header(resp, "Content-Type", "application/json; charset=utf-8");
    MHD_add_response_header(resp, "Regigate-Protocol", "1");
    MHD_add_response_header(resp, "Cache-Control", "no-store");
    if (allow)
        MHD_add_response_header(resp, status == 201 ? "Location" : "Allow", allow);
    ret = MHD_queue_response(c, status, resp);
    MHD_destroy_response(resp);
    r->status = status;
    return ret;
}

static void gs(yajl_gen g, const char *s)
{
    yajl_gen_string(g, (const unsigned char *)s, strlen(s));
}

static void gkv(yajl_gen g, const char *k, const char *v)
{
    gs(g, k);
    gs(g, v);
}

static enum MHD_Result send_gen(struct MHD_Connection *c, struct req *r, unsigned status,
                                yajl_gen g, const char *extra_header)
{
    const unsigned char *buf;
    size_t len;
    enum MHD_Result ret;

    if (yajl_gen_get_buf(g, &buf, &len) != yajl_gen_status_ok) {
        yajl_gen_free(g);
        return MHD_NO;
    }
    ret = send_body(c, r, status, buf, len, extra_header);
    /* the buffer may hold a KEK */
    OPENSSL_cleanse((void *)buf, len);
    yajl_gen_free(g);
    return ret;
}

static yajl_gen new_gen(void)
{
    yajl_gen g = yajl_gen_alloc(NULL);
    if (g == NULL)
        rg_fatal("out of memory (yajl_gen)");
    yajl_gen_config(g, yajl_gen_validate_utf8, 1);
    yajl_gen_map_open(g);
    return g;
}

static enum MHD_Result send_error(struct MHD_Connection *c, struct req *r, unsigned status,
                                  const char *code, const char *message)
{
    yajl_gen g = new_gen();

    gs(g, "error");
    yajl_gen_map_open(g);
    gkv(g, "code", code);
    gkv(g, "message", message);
    yajl_gen_map_close(g);
    yajl_gen_map_close(g);
    return send_gen(c, r, status, g, NULL);
}

static enum MHD_Result send_db_error(struct MHD_Connection *c, struct req *r, int rc)
{
    if (rc == RGP_DB_BUSY)
        return send_error(c, r, 503, "unavailable", "the database is busy, retry later");
    return send_error(c, r, 500, "internal_error", "internal error at the provider");
}

/* ---- per-thread database --------------------------------------------- */

static void db_destroy(void *p)
{
    rgp_db_close(p);
}

static struct rgp_db *thread_db(struct server *s)
{
    struct rgp_db *db = pthread_getspecific(s->dbkey);
    char err[512];

    if (db == NULL) {
        db = rgp_db_open(s->db_path, 0, s->mk, err, sizeof(err));
        if (db == NULL) {
            rg_error("%s", err);
            return NULL;
        }
        pthread_setspecific(s->dbkey, db);
    }
    return db;
}

/* ---- authentication -------------------------------------------------- */

static void client_ip(struct MHD_Connection *c, char *out, size_t outlen)
{
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    const struct sockaddr *sa = ci ? ci->client_addr : NULL;

    snprintf(out, outlen, "unknown");
    if (sa == NULL)
        return;
    if (sa->sa_family == AF_INET) {
        inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, out, (socklen_t)outlen);
    } else if (sa->sa_family == AF_INET6) {
        const struct in6_addr *a = &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr;
        if (IN6_IS_ADDR_V4MAPPED(a))
            inet_ntop(AF_INET, &a->s6_addr[12], out, (socklen_t)outlen);
        else
            inet_ntop(AF_INET6, a, out, (socklen_t)outlen);
    }
}

/* 0 when authenticated (r->auth set); otherwise an error response was queued
 * and *ret holds MHD's result. */
static int authenticate(struct server *s, struct MHD_Connection *c, struct req *r, enum MHD_Result *ret)
{
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_GNUTLS_SESSION);
    gnutls_session_t tls = ci ? (gnutls_session_t)ci->tls_session : NULL;
    struct conn *conn;
    const gnutls_datum_t *peers;
    unsigned int npeers = 0, status = 0;
    gnutls_typed_vdata_st purpose = {
        .type = GNUTLS_DT_KEY_PURPOSE_OID, .data = (unsigned char *)GNUTLS_KP_TLS_WWW_CLIENT, .size = 0
    };
    char fp[65];
    struct rgp_db *db;
    int rc;

    client_ip(c, r->ip, sizeof(r->ip));
    ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    conn = ci ? ci->socket_context : NULL;
    peers = tls ? gnutls_certificate_get_peers(tls, &npeers) : NULL;
    if (peers == NULL || npeers == 0) {
        *ret = send_error(c, r, 401, "certificate_required", "a client certificate is required");
        return -1;
    }
    rgp_sha256_hex(peers[0].data, peers[0].size, fp);
    if (conn && conn->verified && strcmp(conn->fingerprint, fp) == 0) {
        if (time(NULL) > conn->not_after) {
            *ret = send_error(c, r, 401, "certificate_expired", "the client certificate has expired");
            return -1;
        }
    } else {
        gnutls_x509_crt_t crt;
        if (gnutls_certificate_verify_peers(tls, &purpose, 1, &status) < 0 || status != 0) {
            gnutls_datum_t txt = { NULL, 0 };
            gnutls_certificate_verification_status_print(status, GNUTLS_CRT_X509, &txt, 0);
            rg_warn("client %s: certificate refused: %s", r->ip,
                    txt.data ? (char *)txt.data : "verification failed");
            gnutls_free(txt.data);
            if (status & GNUTLS_CERT_EXPIRED)
                *ret = send_error(c, r, 401, "certificate_expired", "the client certificate has expired");
            else
                *ret = send_error(c, r, 401, "certificate_invalid",
                                  "the client certificate is not valid for the provider CA");
            return -1;
        }
        if (conn && gnutls_x509_crt_init(&crt) == 0) {
            if (gnutls_x509_crt_import(crt, &peers[0], GNUTLS_X509_FMT_DER) == 0) {
                conn->not_after = gnutls_x509_crt_get_expiration_time(crt);
                memcpy(conn->fingerprint, fp, sizeof(fp));
                conn->verified = conn->not_after != (time_t)-1;
            }
            gnutls_x509_crt_deinit(crt);
        }
    }
    if ((db = thread_db(s)) == NULL) {
        *ret = send_db_error(c, r, RGP_DB_ERROR);
        return -1;
    }
    rc = rgp_db_auth(db, fp, r->ip, &r->auth);
    if (rc == RGP_DB_NOTFOUND) {
        rg_warn("client %s: unknown certificate sha256:%s", r->ip, fp);
        *ret = send_error(c, r, 401, "unknown_certificate", "this certificate is not a known gateway certificate");
        return -1;
    }
    if (rc != RGP_DB_OK) {
        *ret = send_db_error(c, r, rc);
        return -1;
    }
    if (r->auth.removed) {
        rg_warn("client %s: gateway %lld is removed", r->ip, r->auth.gateway);
        *ret = send_error(c, r, 403, "gateway_removed", "this gateway has been removed");
        return -1;
    }
    if (!r->auth.ip_allowed) {
        rg_warn("client %s: not on the allow-list of gateway %lld", r->ip, r->auth.gateway);
        *ret = send_error(c, r, 403, "ip_not_allowed", "the source address is not allowed for this gateway");
        return -1;
    }
    r->authed = 1;
    return 0;
}

/* ---- endpoints ------------------------------------------------------- */

static enum MHD_Result do_health(struct server *s, struct MHD_Connection *c, struct req *r)
{
    yajl_gen g = new_gen();
    char now[32];

    (void)s;
    rgp_time_format(rgp_now_ms(), now);
    gkv(g, "status", "ok");
    gs(g, "protocol");
    yajl_gen_integer(g, 1);
    gs(g, "gateway");
    yajl_gen_integer(g, r->auth.gateway);
    gkv(g, "time", now);
    yajl_gen_map_close(g);
    return send_gen(c, r, 200, g, NULL);
}

static enum MHD_Result do_account(struct server *s, struct MHD_Connection *c, struct req *r,
                                  const char *addr)
{
    char norm[RG_PJ_ADDR_MAX + 1];
    struct rgp_db *db;
    int exists, rc;
    yajl_gen g;

    if (rg_pj_address_normalize(addr, strlen(addr), norm) < 0)
        return send_error(c, r, 400, "invalid_request", "address: not a valid address");
    if ((db = thread_db(s)) == NULL)
        return send_db_error(c, r, RGP_DB_ERROR);
    if ((rc = rgp_db_account_exists(db, norm, &exists)) != RGP_DB_OK)
        return send_db_error(c, r, rc);
    g = new_gen();
    gkv(g, "address", norm);
    gs(g, "exists");
    yajl_gen_bool(g, exists);
    yajl_gen_map_close(g);
    return send_gen(c, r, 200, g, NULL);
}

static int content_type_json(struct MHD_Connection *c)
{
    const char *ct = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
    size_t n = strlen("application/json");

    if (ct == NULL || strncasecmp(ct, "application/json", n) != 0)
        return 0;
    return ct[n] == 0 || ct[n] == ';' || ct[n] == ' ';
}

static enum MHD_Result do_create(struct server *s, struct MHD_Connection *c, struct req *r)
{
    struct rg_pj_create req;
    enum rg_pj_create_status st;
    uint8_t id[RG_PJ_ID_LEN], kek[RG_PJ_KEK_LEN];
    char idhex[2 * RG_PJ_ID_LEN + 1], kekhex[2 * RG_PJ_KEK_LEN + 1], when[32], loc[64];
    long long created = 0;
    struct rgp_db *db;
    const char *why = "";
    int rc;
    yajl_gen g;

    if (!content_type_json(c))
        return send_error(c, r, 415, "unsupported_media_type", "Content-Type must be application/json");
    if (r->body.len == 0)
        return send_error(c, r, 411, "length_required", "a JSON body is required");
    st = rg_pj_parse_create(r->body.data, r->body.len, &req, &why);
    if (st == RG_PJ_CREATE_MALFORMED)
        return send_error(c, r, 400, "malformed_json", why);
    if (st != RG_PJ_CREATE_OK)
        return send_error(c, r, 400, "invalid_request", why);
    if ((db = thread_db(s)) == NULL) {
        rg_pj_create_free(&req);
        return send_db_error(c, r, RGP_DB_ERROR);
    }
    rc = rgp_db_txn_create(db, r->auth.gateway, r->ip, &req, id, kek, &created);
    rg_pj_create_free(&req);
    switch (rc) {
    case RGP_DB_OK:
    case RGP_DB_REPLAYED:
        break;
    case RGP_DB_CONFLICT:
        return send_error(c, r, 409, "digest_conflict",
                          "a transaction with this digest but other sender, recipients or message_id exists");
    case RGP_DB_SENDER_NO_ACCOUNT:
        return send_error(c, r, 422, "sender_no_account", "the sender has no account");
    default:
        return send_db_error(c, r, rc);
    }
    rg_pj_hex_encode(id, sizeof(id), idhex);
    rg_pj_hex_encode(kek, sizeof(kek), kekhex);
    OPENSSL_cleanse(kek, sizeof(kek));
    rgp_time_format(created, when);
    g = new_gen();
    gkv(g, "id", idhex);
    gkv(g, "kek", kekhex);
    OPENSSL_cleanse(kekhex, sizeof(kekhex));
    gkv(g, "created", when);
    gs(g, "replayed");
    yajl_gen_bool(g, rc == RGP_DB_REPLAYED);
    yajl_gen_map_close(g);
    snprintf(loc, sizeof(loc), "/v1/transactions/%s/events", idhex);
    if (s->conf->log_requests)
        rg_info("gateway %lld: transaction %s %s", r->auth.gateway, idhex,
                rc == RGP_DB_REPLAYED ? "replayed" : "created");
    return send_gen(c, r, rc == RGP_DB_REPLAYED ? 200 : 201, g, rc == RGP_DB_REPLAYED ? NULL : loc);
}

static enum MHD_Result do_key(struct server *s, struct MHD_Connection *c, struct req *r,
                              const uint8_t id[RG_PJ_ID_LEN])
{
    const char *rcpt = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "recipient");
    char norm[RG_PJ_ADDR_MAX + 1], idhex[2 * RG_PJ_ID_LEN + 1], kekhex[2 * RG_PJ_KEK_LEN + 1];
    uint8_t kek[RG_PJ_KEK_LEN];
    struct rgp_db *db;
    yajl_gen g;
    int rc;

    if (rcpt == NULL || rg_pj_address_normalize(rcpt, strlen(rcpt), norm) < 0)
        return send_error(c, r, 400, "invalid_request", "recipient: missing or not a valid address");
    if ((db = thread_db(s)) == NULL)
        return send_db_error(c, r, RGP_DB_ERROR);
    rc = rgp_db_txn_key(db, r->auth.gateway, r->ip, id, norm, kek);
    switch (rc) {
    case RGP_DB_OK:
        break;
    case RGP_DB_NOTFOUND:
        return send_error(c, r, 404, "unknown_transaction", "no such transaction");
    case RGP_DB_NOT_RECIPIENT:
        return send_error(c, r, 403, "not_a_recipient", "the address is not a recipient of this transaction");
    case RGP_DB_NO_ACCOUNT:
        return send_error(c, r, 403, "no_account", "the recipient has no account");
    default:
        return send_db_error(c, r, rc);
    }
    rg_pj_hex_encode(id, RG_PJ_ID_LEN, idhex);
    rg_pj_hex_encode(kek, sizeof(kek), kekhex);
    OPENSSL_cleanse(kek, sizeof(kek));
    g = new_gen();
    gkv(g, "id", idhex);
    gkv(g, "recipient", norm);
    gkv(g, "kek", kekhex);
    OPENSSL_cleanse(kekhex, sizeof(kekhex));
    yajl_gen_map_close(g);
    if (s->conf->log_requests)
        rg_info("gateway %lld: transaction %s key retrieved for %s", r->auth.gateway, idhex, norm);
    return send_gen(c, r, 200, g, NULL);
}

static enum MHD_Result do_events(struct server *s, struct MHD_Connection *c, struct req *r,
                                 const uint8_t id[RG_PJ_ID_LEN])
{
    struct rgp_txn_info t;
    struct rgp_db *db;
    char when[32];
    yajl_gen g;
    int rc;

    if ((db = thread_db(s)) == NULL)
        return send_db_error(c, r, RGP_DB_ERROR);
    rc = rgp_db_txn_info(db, id, &t);
    if (rc == RGP_DB_NOTFOUND)
        return send_error(c, r, 404, "unknown_transaction", "no such transaction");
    if (rc != RGP_DB_OK)
        return send_db_error(c, r, rc);
    if (t.gateway != r->auth.gateway) {
        rgp_txn_info_free(&t);
        return send_error(c, r, 403, "not_owner", "only the gateway that created the transaction may read its events");
    }
    g = new_gen();
    gkv(g, "id", t.id);
    gkv(g, "sender", t.sender);
    gs(g, "recipients");
    yajl_gen_array_open(g);
    for (size_t i = 0; i < t.nrecipients; i++)
        gs(g, t.recipients[i]);
    yajl_gen_array_close(g);
    rgp_time_format(t.created, when);
    gkv(g, "created", when);
    gs(g, "events");
    yajl_gen_array_open(g);
    for (size_t i = 0; i < t.nevents; i++) {
        const struct rgp_event *e = &t.events[i];
        yajl_gen_map_open(g);
        gkv(g, "type", e->type);
        rgp_time_format(e->time, when);
        gkv(g, "time", when);
        gs(g, "gateway");
        yajl_gen_integer(g, e->gateway);
        gkv(g, "ip", e->ip);
        if (e->recipient)
            gkv(g, "recipient", e->recipient);
        yajl_gen_map_close(g);
    }
    yajl_gen_array_close(g);
    gs(g, "truncated");
    yajl_gen_bool(g, t.truncated);
    yajl_gen_map_close(g);
    rgp_txn_info_free(&t);
    return send_gen(c, r, 200, g, NULL);
}

/* ---- routing --------------------------------------------------------- */

static enum MHD_Result method_not_allowed(struct MHD_Connection *c, struct req *r, const char *allow)
{
    yajl_gen g = new_gen();
    gs(g, "error");
    yajl_gen_map_open(g);
    gkv(g, "code", "method_not_allowed");
    gkv(g, "message", "method not allowed on this endpoint");
    yajl_gen_map_close(g);
    yajl_gen_map_close(g);
    return send_gen(c, r, 405, g, allow);
}

static enum MHD_Result dispatch(struct server *s, struct MHD_Connection *c, struct req *r,
                                const char *url, const char *method)
{
    int get = strcmp(method, "GET") == 0, post = strcmp(method, "POST") == 0;
    const char *p;

    if (r->too_big)
        return send_error(c, r, 413, "body_too_large", "the request body exceeds max_body");
    if (strlen(url) > URL_MAX)
        return send_error(c, r, 400, "invalid_request", "URL too long");
    if (strcmp(url, "/v1/health") == 0)
        return get ? do_health(s, c, r) : method_not_allowed(c, r, "GET");
    /* the rest of the path is the address ("/" may be part of it) */
    if (strncmp(url, "/v1/accounts/", 13) == 0 && url[13])
        return get ? do_account(s, c, r, url + 13) : method_not_allowed(c, r, "GET");
    if (strcmp(url, "/v1/transactions") == 0)
        return post ? do_create(s, c, r) : method_not_allowed(c, r, "POST");
    if (strncmp(url, "/v1/transactions/", 17) == 0 && (p = strchr(url + 17, '/')) != NULL
        && (strcmp(p, "/key") == 0 || strcmp(p, "/events") == 0)) {
        uint8_t id[RG_PJ_ID_LEN];
        if (!get)
            return method_not_allowed(c, r, "GET");
        if (rg_pj_hex_decode(url + 17, (size_t)(p - (url + 17)), id, sizeof(id)) < 0)
            return send_error(c, r, 400, "invalid_request", "transaction id: not 32 hex digits");
        return strcmp(p, "/key") == 0 ? do_key(s, c, r, id) : do_events(s, c, r, id);
    }
    return send_error(c, r, 404, "not_found", "no such endpoint");
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_size, void **con_cls)
{
    struct server *s = cls;
    struct req *r = *con_cls;
    enum MHD_Result ret;

    (void)version;
    if (r == NULL) {
        const char *cl;
        r = rg_calloc(1, sizeof(*r));
        rg_buf_init(&r->body, s->conf->max_body);
        clock_gettime(CLOCK_MONOTONIC, &r->start);
        *con_cls = r;
        if (authenticate(s, c, r, &ret) < 0)
            return ret;
        cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (cl && strtoull(cl, NULL, 10) > s->conf->max_body)
            return send_error(c, r, 413, "body_too_large", "the request body exceeds max_body");
        return MHD_YES;
    }
    if (*upload_size > 0) {
        if (!r->too_big && rg_buf_append(&r->body, upload_data, *upload_size) < 0) {
            r->too_big = 1;
            rg_buf_free(&r->body);
        }
        *upload_size = 0;
        return MHD_YES;
    }
    return dispatch(s, c, r, url, method);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    struct server *s = cls;
    struct req *r = *con_cls;
    (void)c;
    (void)toe;
    if (r == NULL)
        return;
    if (s->conf->log_requests && r->status >= 400)
        rg_info("client %s gateway %lld: status %u", r->ip, r->auth.gateway, r->status);
    if (r->body.data)
        OPENSSL_cleanse(r->body.data, r->body.len);
    rg_buf_free(&r->body);
    rg_free(r);
    *con_cls = NULL;
}

static void on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
                          enum MHD_ConnectionNotificationCode code)
{
    (void)cls;
    (void)c;
    if (code == MHD_CONNECTION_NOTIFY_STARTED)
        *socket_context = rg_calloc(1, sizeof(struct conn));
    else if (code == MHD_CONNECTION_NOTIFY_CLOSED)
        *socket_context = rg_free(*socket_context);
}

static void mhd_log(void *cls, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    char msg[512];
    size_t n;

    (void)cls;
    vsnprintf(msg, sizeof(msg), fmt, ap);
    n = strlen(msg);
    while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
        msg[--n] = 0;
    rg_warn("libmicrohttpd: %s", msg);
}

int rgp_serve(const struct rgp_conf *conf)
{
    struct server s;
    char err[512], *key = NULL, *cert = NULL, *ca = NULL, *p;
    struct addrinfo hints, *ai = NULL;
    struct MHD_Daemon *d;
    char portstr[16];
    sigset_t set;
    int sig, rc = 1;
    unsigned int flags;

    memset(&s, 0, sizeof(s));
    s.conf = conf;
    s.db_path = rgp_path(conf, "provider.db");
    rgp_db_set_synchronous(conf->sync_full);
    p = rgp_path(conf, "master.key");
    if (rgp_master_load(p, s.mk, err, sizeof(err)) < 0) {
        rg_error("%s", err);
        rg_free(p);
        goto out;
    }
    rg_free(p);
    {
        /* migrate (and check) the database once before serving */
        struct rgp_db *db = rgp_db_open(s.db_path, 0, s.mk, err, sizeof(err));
        if (db == NULL) {
            rg_error("%s", err);
            goto out;
        }
        rgp_db_close(db);
    }
    p = rgp_path(conf, "server.key");
    key = rgp_read_file(p, 1 << 20, NULL);
    if (key == NULL)
        rg_error_errno("%s", p);
    rg_free(p);
    p = rgp_path(conf, "server.crt");
    cert = rgp_read_file(p, 1 << 20, NULL);
    if (cert == NULL)
        rg_error_errno("%s", p);
    rg_free(p);
    p = rgp_path(conf, "ca.crt");
    ca = rgp_read_file(p, 1 << 20, NULL);
    if (ca == NULL)
        rg_error_errno("%s", p);
    rg_free(p);
    if (!key || !cert || !ca)
        goto out;

    memset(&hints, 0, sizeof(hints));
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE;
    snprintf(portstr, sizeof(portstr), "%d", conf->listen_port);
    if ((sig = getaddrinfo(conf->listen_host, portstr, &hints, &ai)) != 0) {
        rg_error("listen %s: %s", conf->listen_host, gai_strerror(sig));
        goto out;
    }
    if (pthread_key_create(&s.dbkey, db_destroy) != 0) {
        rg_error("pthread_key_create failed");
        goto out;
    }

    /* block the stop signals in every thread MHD creates; sigwait below */
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    flags = MHD_USE_TLS | MHD_USE_AUTO_INTERNAL_THREAD | MHD_USE_ERROR_LOG;
    if (ai->ai_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    d = MHD_start_daemon(flags, (uint16_t)conf->listen_port, NULL, NULL, on_request, &s,
                         MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
                         MHD_OPTION_SOCK_ADDR, ai->ai_addr,
                         MHD_OPTION_HTTPS_MEM_KEY, key,
                         MHD_OPTION_HTTPS_MEM_CERT, cert,
                         MHD_OPTION_HTTPS_MEM_TRUST, ca,
                         MHD_OPTION_HTTPS_PRIORITIES, "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2",
                         MHD_OPTION_THREAD_POOL_SIZE, (unsigned int)conf->threads,
                         MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)conf->connection_timeout,
                         MHD_OPTION_NOTIFY_COMPLETED, on_completed, &s,
                         MHD_OPTION_NOTIFY_CONNECTION, on_connection, NULL,
                         MHD_OPTION_END);
    if (d == NULL) {
        rg_error("cannot start the HTTPS listener on %s:%d (address in use, or bad key/certificate?)",
                 conf->listen_host, conf->listen_port);
        goto out;
    }
    rg_info("listening on %s:%d with %d threads", conf->listen_host, conf->listen_port, conf->threads);
    for (;;) {
        if (sigwait(&set, &sig) != 0)
            continue;
        if (sig == SIGHUP) {
            rg_info("SIGHUP: nothing to reload (gateways and accounts are read per request)");
            continue;
        }
        break;
    }
    rg_info("signal %d: stopping", sig);
    MHD_stop_daemon(d);
    rgp_db_shutdown();
    rc = 0;
out:
    if (ai)
        freeaddrinfo(ai);
    if (key)
        OPENSSL_cleanse(key, strlen(key));
    rg_free(key);
    rg_free(cert);
    rg_free(ca);
    rg_free(s.db_path);
    OPENSSL_cleanse(s.mk, sizeof(s.mk));
    return rc;
}
