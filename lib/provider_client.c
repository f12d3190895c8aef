/*
 * provider_client.c - libcurl client of the key provider; see
 * provider_client.h and doc/provider-protocol.md.
 */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>

#include <curl/curl.h>

#include "buf.h"
#include "log.h"
#include "mem.h"
#include "provider_client.h"
#include "provider_json.h"
#include "routestate.h"

#define RESPONSE_MAX (1024 * 1024)
#define CACHE_BUCKETS 1024

struct cache_entry {
    struct cache_entry *next;
    time_t expires;             /* CLOCK_MONOTONIC seconds */
    int exists;
    char addr[];
};

struct rg_provider {
    CURL *curl;
    char *base;                 /* "https://host:port", no trailing slash */
    struct curl_slist *get_headers, *post_headers;
    struct rg_buf resp;
    char errbuf[CURL_ERROR_SIZE];
    long connects;              /* new connections opened so far */
    int pos_ttl, neg_ttl;
    size_t cache_max, cache_n;
    struct cache_entry *cache[CACHE_BUCKETS];
    char *contact_file;         /* routestate.h; NULL = none */
    time_t contact_last;        /* when it was last touched */
    int contact_warned;
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc;

static void curl_init(void)
{
    curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

const char *rg_provider_strerror(enum rg_provider_status st)
{
    switch (st) {
    case RG_PROVIDER_OK: return "ok";
    case RG_PROVIDER_NO_ACCOUNT: return "no account at the provider";
    case RG_PROVIDER_NOT_ALLOWED: return "not allowed by the provider";
    case RG_PROVIDER_NOT_FOUND: return "unknown transaction";
    case RG_PROVIDER_CONFLICT: return "transaction conflict at the provider";
    case RG_PROVIDER_REJECTED: return "request rejected by the provider";
    case RG_PROVIDER_UNAUTHORIZED: return "gateway not accepted by the provider";
    case RG_PROVIDER_TEMPFAIL: return "provider temporarily unavailable";
    }
    return "unknown provider status";
}

int rg_provider_is_temporary(enum rg_provider_status st)
{
    return st == RG_PROVIDER_TEMPFAIL || st == RG_PROVIDER_UNAUTHORIZED
        || st == RG_PROVIDER_CONFLICT || st == RG_PROVIDER_REJECTED;
}

void rg_provider_wipe(void *p, size_t n)
{
    volatile unsigned char *v = p;
    while (n--)
        *v++ = 0;
}

static size_t on_write(char *data, size_t size, size_t n, void *arg)
{
    struct rg_buf *b = arg;
    size_t len = size * n;
    /* returning less than len makes curl fail with CURLE_WRITE_ERROR */
    return rg_buf_append(b, data, len) < 0 ? 0 : len;
}

static void set_info(struct rg_provider_info *info, long status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void set_info(struct rg_provider_info *info, long status, const char *code, const char *fmt, ...)
{
    va_list ap;
    if (info == NULL)
        return;
    info->http_status = status;
    snprintf(info->code, sizeof(info->code), "%s", code ? code : "");
    va_start(ap, fmt);
    vsnprintf(info->reason, sizeof(info->reason), fmt, ap);
    va_end(ap);
}

int rg_provider_key_mode_ok(const char *key_file, char *err, size_t errlen)
{
    struct stat st;

    if (stat(key_file, &st) < 0) {
        snprintf(err, errlen, "%s: %s", key_file, strerror(errno));
        return -1;
    }
    /* whoever can read the key can fetch every recipient's keys from the
     * provider in the gateway's name: refused, as ssh does */
    if (st.st_mode & 077) {
        snprintf(err, errlen, "provider key %s is accessible to group or others (mode %03o): "
                 "chmod 600 it", key_file, (unsigned)(st.st_mode & 0777));
        return -1;
    }
    return 0;
}

struct rg_provider *rg_provider_new(const struct rg_provider_config *cfg, char *err, size_t errlen)
{
    struct rg_provider *p;
    const char *key = cfg->key_file ? cfg->key_file : cfg->cert_file;
    const char *url = cfg->url;
    size_t n;

    if (url == NULL || *url == 0 || cfg->ca_file == NULL || cfg->cert_file == NULL) {
        snprintf(err, errlen, "provider URL, CA file and certificate file are required");
        return NULL;
    }
    if (strncmp(url, "http://", 7) == 0) {
        snprintf(err, errlen, "provider %s: only https is allowed", url);
        return NULL;
    }
    if (strstr(url, "://") && strncmp(url, "https://", 8) != 0) {
        snprintf(err, errlen, "provider %s: only https is allowed", url);
        return NULL;
    }
    const char *files[] = { cfg->ca_file, cfg->cert_file, key };
    for (size_t i = 0; i < 3; i++)
        if (access(files[i], R_OK) < 0) {
            snprintf(err, errlen, "%s: %s", files[i], strerror(errno));
            return NULL;
        }
    if (rg_provider_key_mode_ok(key, err, errlen) < 0)
        return NULL;
    pthread_once(&curl_once, curl_init);
    if (curl_init_rc != CURLE_OK) {
        snprintf(err, errlen, "curl_global_init: %s", curl_easy_strerror(curl_init_rc));
        return NULL;
    }

    p = rg_calloc(1, sizeof(*p));
    p->base = strncmp(url, "https://", 8) == 0 ? rg_strdup(url) : rg_sprintf("https://%s", url);
    n = strlen(p->base);
    while (n > 8 && p->base[n - 1] == '/')
        p->base[--n] = 0;
    rg_buf_init(&p->resp, RESPONSE_MAX);
    p->pos_ttl = cfg->cache_positive_ttl > 0 ? cfg->cache_positive_ttl : 0;
    p->neg_ttl = cfg->cache_negative_ttl > 0 ? cfg->cache_negative_ttl : 0;
    p->cache_max = cfg->cache_max ? cfg->cache_max : 10000;
    p->contact_file = cfg->contact_file ? rg_strdup(cfg->contact_file) : NULL;

    p->get_headers = curl_slist_append(NULL, "Accept: application/json");
    p->post_headers = curl_slist_append(NULL, "Accept: application/json");
    p->post_headers = curl_slist_append(p->post_headers, "Content-Type: application/json");
    p->post_headers = curl_slist_append(p->post_headers, "Expect:");
    p->curl = curl_easy_init();
    if (p->curl == NULL || p->get_headers == NULL || p->post_headers == NULL) {
        snprintf(err, errlen, "cannot create a curl handle");
        return rg_provider_free(p);
    }
    CURL *c = p->curl;
    int bad = 0;
#define SET(opt, val) bad |= curl_easy_setopt(c, opt, val) != CURLE_OK
    SET(CURLOPT_NOSIGNAL, 1L);
    SET(CURLOPT_ERRORBUFFER, p->errbuf);
    SET(CURLOPT_WRITEFUNCTION, on_write);
    SET(CURLOPT_WRITEDATA, &p->resp);
#if LIBCURL_VERSION_NUM >= 0x075500
    SET(CURLOPT_PROTOCOLS_STR, "https");
#else
    SET(CURLOPT_PROTOCOLS, (long)CURLPROTO_HTTPS);
#endif
    SET(CURLOPT_FOLLOWLOCATION, 0L);
    SET(CURLOPT_PROXY, "");                 /* never via a proxy from the environment */
    /* Verification: pinned to the provider CA, cannot be turned off. */
    SET(CURLOPT_SSL_VERIFYPEER, 1L);
    SET(CURLOPT_SSL_VERIFYHOST, 2L);
    SET(CURLOPT_CAINFO, cfg->ca_file);
    SET(CURLOPT_CAPATH, NULL);              /* no system CA directory */
    SET(CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
    SET(CURLOPT_SSLCERT, cfg->cert_file);
    SET(CURLOPT_SSLCERTTYPE, "PEM");
    SET(CURLOPT_SSLKEY, key);
    SET(CURLOPT_SSLKEYTYPE, "PEM");
    SET(CURLOPT_CONNECTTIMEOUT_MS, cfg->connect_timeout_ms > 0 ? cfg->connect_timeout_ms : 10000L);
    SET(CURLOPT_TIMEOUT_MS, cfg->timeout_ms > 0 ? cfg->timeout_ms : 30000L);
    SET(CURLOPT_TCP_KEEPALIVE, 1L);
    SET(CURLOPT_USERAGENT, "regigate/" PACKAGE_VERSION);
#undef SET
    if (bad) {
        snprintf(err, errlen, "libcurl lacks a required option (HTTPS with OpenSSL needed)");
        return rg_provider_free(p);
    }
    return p;
}

static void cache_clear(struct rg_provider *p)
{
    for (size_t i = 0; i < CACHE_BUCKETS; i++) {
        struct cache_entry *e = p->cache[i], *next;
        for (; e; e = next) {
            next = e->next;
            rg_free(e);
        }
        p->cache[i] = NULL;
    }
    p->cache_n = 0;
}

void rg_provider_cache_clear(struct rg_provider *p)
{
    cache_clear(p);
}

struct rg_provider *rg_provider_free(struct rg_provider *p)
{
    if (p) {
        if (p->curl)
            curl_easy_cleanup(p->curl);
        curl_slist_free_all(p->get_headers);
        curl_slist_free_all(p->post_headers);
        if (p->resp.data)
            rg_provider_wipe(p->resp.data, p->resp.len);
        rg_buf_free(&p->resp);
        cache_clear(p);
        rg_free(p->contact_file);
        rg_free(p->base);
        rg_free(p);
    }
    return NULL;
}

/* ---- one request ----------------------------------------------------- */

/* Map an error code of the protocol to a status. */
static enum rg_provider_status classify_code(const char *code)
{
    static const struct { const char *code; enum rg_provider_status st; } tab[] = {
        { "no_account", RG_PROVIDER_NO_ACCOUNT },
        { "sender_no_account", RG_PROVIDER_NO_ACCOUNT },
        { "not_a_recipient", RG_PROVIDER_NOT_ALLOWED },
        { "not_owner", RG_PROVIDER_NOT_ALLOWED },
        { "unknown_transaction", RG_PROVIDER_NOT_FOUND },
        { "digest_conflict", RG_PROVIDER_CONFLICT },
        { "certificate_required", RG_PROVIDER_UNAUTHORIZED },
        { "certificate_invalid", RG_PROVIDER_UNAUTHORIZED },
        { "certificate_expired", RG_PROVIDER_UNAUTHORIZED },
        { "unknown_certificate", RG_PROVIDER_UNAUTHORIZED },
        { "gateway_removed", RG_PROVIDER_UNAUTHORIZED },
        { "ip_not_allowed", RG_PROVIDER_UNAUTHORIZED },
        { "malformed_json", RG_PROVIDER_REJECTED },
        { "invalid_request", RG_PROVIDER_REJECTED },
        { "not_found", RG_PROVIDER_REJECTED },
        { "method_not_allowed", RG_PROVIDER_REJECTED },
        { "length_required", RG_PROVIDER_REJECTED },
        { "body_too_large", RG_PROVIDER_REJECTED },
        { "unsupported_media_type", RG_PROVIDER_REJECTED },
    };
    for (size_t i = 0; i < sizeof(tab) / sizeof(tab[0]); i++)
        if (strcmp(code, tab[i].code) == 0)
            return tab[i].st;
    return RG_PROVIDER_TEMPFAIL;    /* internal_error, unavailable, unknown */
}

/* Is the answer's Content-Type application/json (parameters allowed)? */
static int json_content_type(CURL *c)
{
    static const char want[] = "application/json";
    char *ct = NULL;
    size_t n = sizeof(want) - 1;

    if (curl_easy_getinfo(c, CURLINFO_CONTENT_TYPE, &ct) != CURLE_OK || ct == NULL)
        return 0;
    if (strncasecmp(ct, want, n) != 0)
        return 0;
    return ct[n] == 0 || ct[n] == ';' || ct[n] == ' ' || ct[n] == '\t';
}

/*
 * Perform method path (body for POST). On a 2xx answer listed in ok1/ok2
 * returns OK with the body in p->resp and *status set; otherwise the
 * classified failure with info filled.
 */
static enum rg_provider_status perform_once(struct rg_provider *p, const char *path,
                                            const char *body, size_t bodylen, long ok1, long ok2,
                                            long *status, struct rg_provider_info *info)
{
    char *url = rg_sprintf("%s%s", p->base, path);
    struct rg_pj_error e;
    const char *why = "";
    long code = 0, connects = 0;
    CURLcode rc;

    if (p->resp.data)
        rg_provider_wipe(p->resp.data, p->resp.len);
    rg_buf_reset(&p->resp);
    p->errbuf[0] = 0;
    curl_easy_setopt(p->curl, CURLOPT_URL, url);
    if (body) {
        curl_easy_setopt(p->curl, CURLOPT_HTTPHEADER, p->post_headers);
        curl_easy_setopt(p->curl, CURLOPT_POSTFIELDSIZE, (long)bodylen);
        curl_easy_setopt(p->curl, CURLOPT_POSTFIELDS, body);
    } else {
        curl_easy_setopt(p->curl, CURLOPT_HTTPHEADER, p->get_headers);
        curl_easy_setopt(p->curl, CURLOPT_HTTPGET, 1L);
    }
    rc = curl_easy_perform(p->curl);
    rg_free(url);
    if (curl_easy_getinfo(p->curl, CURLINFO_NUM_CONNECTS, &connects) == CURLE_OK)
        p->connects += connects;
    if (body)
        curl_easy_setopt(p->curl, CURLOPT_POSTFIELDS, NULL);
    if (rc != CURLE_OK) {
        set_info(info, 0, NULL, "%s: %s", curl_easy_strerror(rc), p->errbuf[0] ? p->errbuf : "-");
        return RG_PROVIDER_TEMPFAIL;
    }
    curl_easy_getinfo(p->curl, CURLINFO_RESPONSE_CODE, &code);
    *status = code;
    /* every answer of the protocol is JSON: anything else (an HTML page
     * from something that is not the provider) is not an answer at all */
    if (!json_content_type(p->curl)) {
        char *ct = NULL;
        curl_easy_getinfo(p->curl, CURLINFO_CONTENT_TYPE, &ct);
        set_info(info, code, NULL, "HTTP %ld with content type %.100s, not application/json",
                 code, ct ? ct : "(none)");
        return RG_PROVIDER_TEMPFAIL;
    }
    if (code == ok1 || code == ok2) {
        set_info(info, code, NULL, "HTTP %ld", code);
        return RG_PROVIDER_OK;
    }
    if (rg_pj_parse_error(p->resp.data, p->resp.len, &e, &why) < 0) {
        set_info(info, code, NULL, "HTTP %ld with an unparsable error body (%s)", code, why);
        return RG_PROVIDER_TEMPFAIL;
    }
    enum rg_provider_status st = classify_code(e.code);
    if (code >= 500)
        st = RG_PROVIDER_TEMPFAIL;
    set_info(info, code, e.code, "HTTP %ld %s: %s", code, e.code, e.message);
    return st;
}

/* perform_once, and a definite answer of a provider that accepted us is
 * recorded as the route's last provider contact (routestate.h). */
static enum rg_provider_status perform(struct rg_provider *p, const char *path, const char *body,
                                       size_t bodylen, long ok1, long ok2, long *status,
                                       struct rg_provider_info *info)
{
    enum rg_provider_status st = perform_once(p, path, body, bodylen, ok1, ok2, status, info);

    if (p->contact_file != NULL && st != RG_PROVIDER_TEMPFAIL && st != RG_PROVIDER_UNAUTHORIZED
        && st != RG_PROVIDER_REJECTED
        && rg_routestate_touch(p->contact_file, time(NULL), &p->contact_last) < 0
        && !p->contact_warned) {
        rg_warn_errno("cannot record the provider contact in %s", p->contact_file);
        p->contact_warned = 1;
    }
    return st;
}

long rg_provider_connections(const struct rg_provider *p)
{
    return p->connects;
}

/* ---- endpoints ------------------------------------------------------- */

enum rg_provider_status rg_provider_health(struct rg_provider *p, long long *gateway,
                                           struct rg_provider_info *info)
{
    struct rg_pj_health h;
    const char *why = "";
    long status = 0;
    enum rg_provider_status st = perform(p, "/v1/health", NULL, 0, 200, 200, &status, info);

    if (st != RG_PROVIDER_OK)
        return st;
    if (rg_pj_parse_health(p->resp.data, p->resp.len, &h, &why) < 0) {
        set_info(info, status, NULL, "unparsable health answer: %s", why);
        return RG_PROVIDER_TEMPFAIL;
    }
    if (gateway)
        *gateway = h.gateway;
    return RG_PROVIDER_OK;
}

static unsigned hash(const char *s)
{
    unsigned h = 2166136261u;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h % CACHE_BUCKETS;
}

static time_t mono_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec;
}

/* 1 cached yes, 0 cached no, -1 not cached or stale */
static int cache_get(struct rg_provider *p, const char *addr)
{
    struct cache_entry **pp = &p->cache[hash(addr)], *e;
    time_t now = mono_now();

    while ((e = *pp) != NULL) {
        if (strcmp(e->addr, addr) == 0) {
            if (e->expires > now)
                return e->exists;
            *pp = e->next;
            rg_free(e);
            p->cache_n--;
            return -1;
        }
        pp = &e->next;
    }
    return -1;
}

static void cache_put(struct rg_provider *p, const char *addr, int exists)
{
    int ttl = exists ? p->pos_ttl : p->neg_ttl;
    size_t len = strlen(addr);
    struct cache_entry *e;
    unsigned h;

    if (ttl <= 0)
        return;
    if (p->cache_n >= p->cache_max) {
        /* drop the stale entries; when all are fresh, start over */
        time_t now = mono_now();
        for (size_t i = 0; i < CACHE_BUCKETS; i++) {
            struct cache_entry **pp = &p->cache[i];
            while ((e = *pp) != NULL) {
                if (e->expires <= now) {
                    *pp = e->next;
                    rg_free(e);
                    p->cache_n--;
                } else {
                    pp = &e->next;
                }
            }
        }
        if (p->cache_n >= p->cache_max)
            cache_clear(p);
    }
    h = hash(addr);
    e = rg_malloc(sizeof(*e) + len + 1);
    memcpy(e->addr, addr, len + 1);
    e->exists = exists;
    e->expires = mono_now() + ttl;
    e->next = p->cache[h];
    p->cache[h] = e;
    p->cache_n++;
}

enum rg_provider_status rg_provider_account(struct rg_provider *p, const char *address,
                                            struct rg_provider_info *info)
{
    char norm[RG_PJ_ADDR_MAX + 1], *esc, *path;
    struct rg_pj_account a;
    const char *why = "";
    long status = 0;
    enum rg_provider_status st;
    int cached;

    if (rg_pj_address_normalize(address, strlen(address), norm) < 0) {
        set_info(info, 0, "invalid_request", "not a valid address");
        return RG_PROVIDER_REJECTED;
    }
    if ((cached = cache_get(p, norm)) >= 0) {
        set_info(info, 0, NULL, "cached");
        return cached ? RG_PROVIDER_OK : RG_PROVIDER_NO_ACCOUNT;
    }
    esc = curl_easy_escape(p->curl, norm, 0);
    if (esc == NULL)
        rg_fatal("out of memory (curl_easy_escape)");
    path = rg_sprintf("/v1/accounts/%s", esc);
    curl_free(esc);
    st = perform(p, path, NULL, 0, 200, 200, &status, info);
    rg_free(path);
    if (st != RG_PROVIDER_OK)
        return st;
    if (rg_pj_parse_account(p->resp.data, p->resp.len, &a, &why) < 0) {
        set_info(info, status, NULL, "unparsable account answer: %s", why);
        return RG_PROVIDER_TEMPFAIL;
    }
    if (strcmp(a.address, norm) != 0) {
        set_info(info, status, NULL, "account answer for another address");
        return RG_PROVIDER_TEMPFAIL;
    }
    cache_put(p, norm, a.exists);
    if (!a.exists)
        set_info(info, status, "no_account", "no account");
    return a.exists ? RG_PROVIDER_OK : RG_PROVIDER_NO_ACCOUNT;
}

enum rg_provider_status rg_provider_create(struct rg_provider *p, const char *sender,
                                           const char *const *recipients, size_t nrecipients,
                                           const char *message_id,
                                           const uint8_t sha256[RG_PJ_SHA256_LEN],
                                           struct rg_provider_txn *out,
                                           struct rg_provider_info *info)
{
    struct rg_buf body;
    struct rg_pj_txn t;
    const char *why = "";
    long status = 0;
    enum rg_provider_status st;

    memset(out, 0, sizeof(*out));
    rg_buf_init(&body, 4u * 1024 * 1024);
    if (rg_pj_build_create(&body, sender, recipients, nrecipients, message_id, sha256) < 0) {
        rg_buf_free(&body);
        set_info(info, 0, "invalid_request", "cannot encode the request (invalid UTF-8?)");
        return RG_PROVIDER_REJECTED;
    }
    st = perform(p, "/v1/transactions", body.data, body.len, 201, 200, &status, info);
    rg_buf_free(&body);
    if (st != RG_PROVIDER_OK)
        return st;
    if (rg_pj_parse_txn(p->resp.data, p->resp.len, &t, &why) < 0) {
        set_info(info, status, NULL, "unparsable transaction answer: %s", why);
        return RG_PROVIDER_TEMPFAIL;
    }
    memcpy(out->id, t.id, sizeof(out->id));
    memcpy(out->kek, t.kek, sizeof(out->kek));
    out->replayed = t.replayed;
    rg_pj_hex_encode(out->id, sizeof(out->id), out->id_hex);
    rg_provider_wipe(&t, sizeof(t));
    return RG_PROVIDER_OK;
}

enum rg_provider_status rg_provider_fetch_key(struct rg_provider *p, const uint8_t id[RG_PJ_ID_LEN],
                                              const char *recipient, uint8_t kek[RG_PJ_KEK_LEN],
                                              struct rg_provider_info *info)
{
    char norm[RG_PJ_ADDR_MAX + 1], idhex[2 * RG_PJ_ID_LEN + 1], *esc, *path;
    struct rg_pj_key k;
    const char *why = "";
    long status = 0;
    enum rg_provider_status st;

    if (rg_pj_address_normalize(recipient, strlen(recipient), norm) < 0) {
        set_info(info, 0, "invalid_request", "not a valid address");
        return RG_PROVIDER_REJECTED;
    }
    rg_pj_hex_encode(id, RG_PJ_ID_LEN, idhex);
    esc = curl_easy_escape(p->curl, norm, 0);
    if (esc == NULL)
        rg_fatal("out of memory (curl_easy_escape)");
    path = rg_sprintf("/v1/transactions/%s/key?recipient=%s", idhex, esc);
    curl_free(esc);
    st = perform(p, path, NULL, 0, 200, 200, &status, info);
    rg_free(path);
    if (st != RG_PROVIDER_OK)
        return st;
    if (rg_pj_parse_key(p->resp.data, p->resp.len, &k, &why) < 0) {
        set_info(info, status, NULL, "unparsable key answer: %s", why);
        return RG_PROVIDER_TEMPFAIL;
    }
    if (memcmp(k.id, id, RG_PJ_ID_LEN) != 0 || strcmp(k.recipient, norm) != 0) {
        rg_provider_wipe(&k, sizeof(k));
        set_info(info, status, NULL, "key answer for another transaction or recipient");
        return RG_PROVIDER_TEMPFAIL;
    }
    memcpy(kek, k.kek, RG_PJ_KEK_LEN);
    rg_provider_wipe(&k, sizeof(k));
    return RG_PROVIDER_OK;
}

enum rg_provider_status rg_provider_events(struct rg_provider *p, const uint8_t id[RG_PJ_ID_LEN],
                                           struct rg_pj_events *out, struct rg_provider_info *info)
{
    char idhex[2 * RG_PJ_ID_LEN + 1], path[80];
    const char *why = "";
    long status = 0;
    enum rg_provider_status st;

    memset(out, 0, sizeof(*out));
    rg_pj_hex_encode(id, RG_PJ_ID_LEN, idhex);
    snprintf(path, sizeof(path), "/v1/transactions/%s/events", idhex);
    st = perform(p, path, NULL, 0, 200, 200, &status, info);
    if (st != RG_PROVIDER_OK)
        return st;
    if (rg_pj_parse_events(p->resp.data, p->resp.len, out, &why) < 0) {
        set_info(info, status, NULL, "unparsable events answer: %s", why);
        return RG_PROVIDER_TEMPFAIL;
    }
    if (memcmp(out->id, id, RG_PJ_ID_LEN) != 0) {
        rg_pj_events_free(out);
        set_info(info, status, NULL, "events answer for another transaction");
        return RG_PROVIDER_TEMPFAIL;
    }
    return RG_PROVIDER_OK;
}
