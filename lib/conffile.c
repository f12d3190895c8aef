/*
 * conffile.c - regigate.conf(5): parse and validate the configuration file;
 * see conffile.h.
 *
 * libinih splits "key = value" lines and strips comments. Around it:
 *  - read_line() feeds inih one line at a time from the FILE*. It counts
 *    lines (so the key handler knows where it is), refuses over-long lines
 *    instead of letting inih cut them, strips leading blanks (so inih never
 *    treats an indented line as a continuation value) and parses section
 *    headers itself (inih would cut names longer than 49 bytes, and a
 *    section without keys would never reach the handler).
 *  - on_key() dispatches every key through the keys[] table.
 *  - check_conf() runs the checks that need the whole file.
 * The first error wins; it is reported as "FILE:LINE: message".
 */
#include "config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <ini.h>

#include "conffile.h"
#include "log.h"
#include "mem.h"
#include "routestate.h"
#include "routeval.h"

#define ROUTE_NAME_MAX 64
/* Where the routes live, one directory each (routes_dir); a route's
 * provider key and certificate are there too unless cert_dir says. */
#define ROUTES_DIR_DEFAULT "/etc/regigate/routes"
#define ROUTE_FILE "route.conf"

#define KIB 1024LL
#define MIB (1024LL * KIB)
#define GIB (1024LL * MIB)

enum sec_kind { SEC_NONE, SEC_GLOBAL, SEC_ROUTE, SEC_MTA };

enum key_type {
    KT_INT,         /* int, min..max */
    KT_SIZE,        /* size_t, bytes with optional k/m/g suffix, min..max */
    KT_BOOL,        /* int 0/1 */
    KT_PATH,        /* char *, absolute path */
    KT_HOSTNAME,    /* char *, host name */
    KT_USER,        /* char *, existing user */
    KT_FACILITY,    /* char *, syslog facility rg_log_facility() knows */
    KT_PROTOCOL,    /* enum rg_protocol */
    KT_PROCESS,     /* enum rg_process */
    KT_HOSTPORT,    /* struct rg_hostport */
    KT_URL,         /* char *, provider URL, stored as "https://..." */
    KT_TEXT,        /* char *, one line of UTF-8 text without control characters */
    KT_NETS,        /* char *, accept_from entries (routeval.h); repeatable, appends */
    KT_DOMAINS,     /* char *, accept_domains entries (routeval.h); repeatable, appends */
    KT_NEXTHOP,     /* char *, forward_to (routeval.h), stored as "[host]:port" */
    KT_RBL,         /* char *, "host[=d.d.d.d]" entries; repeatable, appends */
    KT_SMTP_TLS,    /* char *, smtp_tls_security_level keyword */
    KT_SMTPD_TLS,   /* char *, smtpd_tls_security_level keyword */
};

struct key_def {
    enum sec_kind sec;
    const char *name;
    enum key_type type;
    size_t offset;          /* into struct rg_conf or struct rg_route */
    long long min, max;     /* KT_INT and KT_SIZE only */
};

#define GLOBAL_KEY(key, type, min, max) \
    { SEC_GLOBAL, #key, type, offsetof(struct rg_conf, key), min, max }
#define ROUTE_KEY(key, type, min, max) \
    { SEC_ROUTE, #key, type, offsetof(struct rg_route, key), min, max }
/* an [mta] key, and the same key of a route (overriding it there) */
#define MTA_KEY(key, type, min, max) \
    { SEC_MTA, #key, type, offsetof(struct rg_conf, mta.key), min, max }
#define ROUTE_MTA_KEY(key, type, min, max) \
    { SEC_ROUTE, #key, type, offsetof(struct rg_route, mta.key), min, max }

static const struct key_def keys[] = {
    GLOBAL_KEY(user, KT_USER, 0, 0),
    GLOBAL_KEY(spool_dir, KT_PATH, 0, 0),
    GLOBAL_KEY(pid_file, KT_PATH, 0, 0),
    GLOBAL_KEY(myhostname, KT_HOSTNAME, 0, 0),
    GLOBAL_KEY(syslog_facility, KT_FACILITY, 0, 0),
    GLOBAL_KEY(allow_remote_listen, KT_BOOL, 0, 0),
    GLOBAL_KEY(max_servers, KT_INT, 1, 1000),
    GLOBAL_KEY(min_spare_servers, KT_INT, 0, 1000),
    GLOBAL_KEY(max_spare_servers, KT_INT, 1, 1000),
    GLOBAL_KEY(max_requests, KT_INT, 1, 1000000),
    GLOBAL_KEY(child_timeout, KT_INT, 1, 86400),
    GLOBAL_KEY(smtp_timeout, KT_INT, 1, 3600),
    GLOBAL_KEY(reinject_timeout, KT_INT, 1, 3600),
    GLOBAL_KEY(shutdown_timeout, KT_INT, 0, 3600),
    GLOBAL_KEY(spool_memory_limit, KT_SIZE, 0, GIB),
    GLOBAL_KEY(routes_dir, KT_PATH, 0, 0),
    GLOBAL_KEY(route_port_base, KT_INT, 1024, 65000),
    ROUTE_KEY(listen, KT_HOSTPORT, 0, 0),
    ROUTE_KEY(protocol, KT_PROTOCOL, 0, 0),
    ROUTE_KEY(reinject, KT_HOSTPORT, 0, 0),
    ROUTE_KEY(process, KT_PROCESS, 0, 0),
    ROUTE_KEY(max_message_size, KT_SIZE, 1, 2 * GIB),
    ROUTE_KEY(max_recipients, KT_INT, 1, 100000),
    ROUTE_KEY(rules, KT_PATH, 0, 0),
    ROUTE_KEY(lists_dir, KT_PATH, 0, 0),
    ROUTE_KEY(max_header_size, KT_SIZE, 1024, 64 * MIB),
    ROUTE_KEY(provider, KT_URL, 0, 0),
    ROUTE_KEY(provider_ca, KT_PATH, 0, 0),
    ROUTE_KEY(provider_cert, KT_PATH, 0, 0),
    ROUTE_KEY(provider_key, KT_PATH, 0, 0),
    ROUTE_KEY(cert_dir, KT_PATH, 0, 0),
    ROUTE_KEY(provider_connect_timeout, KT_INT, 1, 300),
    ROUTE_KEY(provider_timeout, KT_INT, 1, 3600),
    ROUTE_KEY(account_cache_ttl, KT_INT, 0, 86400),
    ROUTE_KEY(account_cache_negative_ttl, KT_INT, 0, 86400),
    ROUTE_KEY(hide_subject, KT_BOOL, 0, 0),
    ROUTE_KEY(hidden_subject, KT_TEXT, 0, 200),
    ROUTE_KEY(id, KT_INT, 1, 999),
    ROUTE_KEY(public_listen, KT_HOSTPORT, 0, 0),
    ROUTE_KEY(accept_from, KT_NETS, 0, 0),
    ROUTE_KEY(accept_domains, KT_DOMAINS, 0, 0),
    ROUTE_KEY(forward_to, KT_NEXTHOP, 0, 0),
    ROUTE_KEY(mta_hostname, KT_HOSTNAME, 0, 0),
    ROUTE_KEY(forward_to_mx, KT_BOOL, 0, 0),
    ROUTE_KEY(after_filter_message_size_limit, KT_SIZE, 1, 4 * GIB),
    MTA_KEY(relay_domains, KT_DOMAINS, 0, 0),
    MTA_KEY(mynetworks, KT_NETS, 0, 0),
    MTA_KEY(myhostname, KT_HOSTNAME, 0, 0),
    MTA_KEY(smtp_helo_name, KT_HOSTNAME, 0, 0),
    MTA_KEY(internal_relay_host, KT_NEXTHOP, 0, 0),
    MTA_KEY(internal_relay_host_mx, KT_BOOL, 0, 0),
    MTA_KEY(external_relay_host, KT_NEXTHOP, 0, 0),
    MTA_KEY(external_relay_host_mx, KT_BOOL, 0, 0),
    MTA_KEY(message_size_limit, KT_SIZE, 1, 8 * GIB),
    MTA_KEY(transport_maps, KT_PATH, 0, 0),
    MTA_KEY(sasl_password_maps, KT_PATH, 0, 0),
    MTA_KEY(match_subdomains, KT_BOOL, 0, 0),
    MTA_KEY(reject_unverified_recipient, KT_BOOL, 0, 0),
    MTA_KEY(unverified_recipient_reject_code, KT_INT, 450, 550),
    MTA_KEY(header_checks, KT_PATH, 0, 0),
    MTA_KEY(rbl, KT_RBL, 0, 0),
    MTA_KEY(client_whitelist, KT_PATH, 0, 0),
    MTA_KEY(client_blacklist, KT_PATH, 0, 0),
    MTA_KEY(sender_whitelist, KT_PATH, 0, 0),
    MTA_KEY(sender_blacklist, KT_PATH, 0, 0),
    MTA_KEY(smtp_tls_security_level, KT_SMTP_TLS, 0, 0),
    MTA_KEY(smtpd_tls_security_level, KT_SMTPD_TLS, 0, 0),
    ROUTE_MTA_KEY(match_subdomains, KT_BOOL, 0, 0),
    ROUTE_MTA_KEY(reject_unverified_recipient, KT_BOOL, 0, 0),
    ROUTE_MTA_KEY(unverified_recipient_reject_code, KT_INT, 450, 550),
    ROUTE_MTA_KEY(header_checks, KT_PATH, 0, 0),
    ROUTE_MTA_KEY(rbl, KT_RBL, 0, 0),
    ROUTE_MTA_KEY(client_whitelist, KT_PATH, 0, 0),
    ROUTE_MTA_KEY(client_blacklist, KT_PATH, 0, 0),
    ROUTE_MTA_KEY(sender_whitelist, KT_PATH, 0, 0),
    ROUTE_MTA_KEY(sender_blacklist, KT_PATH, 0, 0),
    ROUTE_MTA_KEY(smtp_tls_security_level, KT_SMTP_TLS, 0, 0),
    ROUTE_MTA_KEY(smtpd_tls_security_level, KT_SMTPD_TLS, 0, 0),
};

#define NKEYS (sizeof(keys) / sizeof(keys[0]))

/* Where each key of one section was set; 0 = not set. */
struct key_lines {
    int line[NKEYS];
};

struct keyword {
    const char *word;
    int value;
};

static const struct keyword bool_words[] = {
    { "yes", 1 }, { "no", 0 }, { "true", 1 }, { "false", 0 },
    { "on", 1 }, { "off", 0 }, { "1", 1 }, { "0", 0 }, { NULL, 0 },
};
static const struct keyword protocol_words[] = {
    { "smtp", RG_PROTO_SMTP }, { "lmtp", RG_PROTO_LMTP }, { NULL, 0 },
};
static const struct keyword process_words[] = {
    { "message", RG_PROCESS_MESSAGE }, { "recipient", RG_PROCESS_RECIPIENT }, { NULL, 0 },
};

struct parse_ctx {
    FILE *fp;
    const char *file;               /* the file being read */
    const char *route_dir_name;     /* reading routes_dir/NAME/route.conf: NAME */
    struct rg_conf *conf;
    int lineno;                     /* line inih is working on */
    enum sec_kind sec;              /* section being read */
    size_t route;                   /* its index in conf->routes if SEC_ROUTE */
    char label[ROUTE_NAME_MAX + 16]; /* "[global]" or "[route NAME]" */
    int global_line;                /* line of [global]; 0 = none yet */
    struct key_lines global_keys;
    int mta_line;                   /* line of [mta]; 0 = none yet */
    struct key_lines mta_keys;
    struct key_lines *route_keys;   /* parallel to conf->routes */
    bool failed;
    char err_file[1024];            /* file the error is in; "" = the main file */
    int err_line;                   /* 0: no line applies */
    char err[512];
};

static void fail(struct parse_ctx *c, int line, const char *fmt, ...) RG_PRINTF(3, 4);

/* Record an error unless there is one already: the first error wins. */
static void fail(struct parse_ctx *c, int line, const char *fmt, ...)
{
    va_list ap;

    if (c->failed)
        return;
    c->failed = true;
    snprintf(c->err_file, sizeof(c->err_file), "%s", c->file != NULL ? c->file : "");
    c->err_line = line;
    va_start(ap, fmt);
    vsnprintf(c->err, sizeof(c->err), fmt, ap);
    va_end(ap);
}

static void report(const struct parse_ctx *c, const char *path, char *err, size_t errlen)
{
    if (err == NULL || errlen == 0)
        return;
    if (c->err_file[0] != '\0')
        path = c->err_file;
    if (c->err_line > 0)
        snprintf(err, errlen, "%s:%d: %s", path, c->err_line, c->err);
    else
        snprintf(err, errlen, "%s: %s", path, c->err);
}

static const struct key_def *find_key(enum sec_kind sec, const char *name)
{
    for (size_t i = 0; i < NKEYS; i++)
        if (keys[i].sec == sec && strcmp(keys[i].name, name) == 0)
            return &keys[i];
    return NULL;
}

/* Line where a key was set in a section, 0 if it was not. */
static int key_line(const struct key_lines *kl, enum sec_kind sec, const char *name)
{
    const struct key_def *k = find_key(sec, name);

    if (k == NULL)
        rg_panic("conffile: no key %s", name);
    return kl->line[k - keys];
}

static int lookup_word(const struct keyword *words, const char *s, int *value)
{
    for (; words->word != NULL; words++) {
        if (strcasecmp(words->word, s) == 0) {
            *value = words->value;
            return 0;
        }
    }
    return -1;
}

/* ---- host names and addresses -------------------------------------------- */

/* Letters, digits, '-' and '.'; a dotted-decimal string must be an IPv4 address. */
static bool valid_hostname(const char *s)
{
    size_t len = strlen(s);
    bool numeric = true;
    struct in_addr a4;

    if (len == 0 || len > 253 || !isalnum((unsigned char)s[0]))
        return false;
    for (const char *p = s; *p; p++) {
        if (!isalnum((unsigned char)*p) && *p != '-' && *p != '.')
            return false;
        if (!isdigit((unsigned char)*p) && *p != '.')
            numeric = false;
    }
    return !numeric || inet_pton(AF_INET, s, &a4) == 1;
}

/* "1".."65535", digits only. */
static int parse_port(const char *s, int *port)
{
    size_t len = strlen(s);
    int n = 0;

    if (len == 0 || len > 5 || strspn(s, "0123456789") != len)
        return -1;
    for (const char *p = s; *p; p++)
        n = n * 10 + (*p - '0');
    if (n < 1 || n > 65535)
        return -1;
    *port = n;
    return 0;
}

int rg_hostport_parse(const char *s, struct rg_hostport *hp)
{
    struct rg_hostport tmp;
    const char *host, *colon;
    size_t hostlen;
    bool bracketed = s[0] == '[';
    struct in6_addr a6;

    if (bracketed) {
        const char *close = strchr(s, ']');
        if (close == NULL || close[1] != ':')
            return -1;
        host = s + 1;
        hostlen = (size_t)(close - host);
        colon = close + 1;
    } else {
        colon = strrchr(s, ':');
        if (colon == NULL)
            return -1;
        host = s;
        hostlen = (size_t)(colon - s);
    }
    if (hostlen == 0 || hostlen >= sizeof(tmp.host))
        return -1;
    memcpy(tmp.host, host, hostlen);
    tmp.host[hostlen] = '\0';
    if (strchr(tmp.host, ':') != NULL) {
        /* IPv6 only in brackets, else "::1:25" would be ambiguous */
        if (!bracketed || inet_pton(AF_INET6, tmp.host, &a6) != 1)
            return -1;
    } else if (!valid_hostname(tmp.host)) {
        return -1;
    }
    if (parse_port(colon + 1, &tmp.port) < 0)
        return -1;
    *hp = tmp;
    return 0;
}

int rg_host_is_loopback(const char *host)
{
    struct in_addr a4;
    struct in6_addr a6;

    if (strcasecmp(host, "localhost") == 0)
        return 1;
    if (inet_pton(AF_INET, host, &a4) == 1)
        return (ntohl(a4.s_addr) >> 24) == 127;
    if (inet_pton(AF_INET6, host, &a6) == 1)
        return IN6_IS_ADDR_LOOPBACK(&a6) || (IN6_IS_ADDR_V4MAPPED(&a6) && a6.s6_addr[12] == 127);
    return 0;
}

/* Same address? Numeric addresses compare by value ("::1" == "0::1"). */
static bool same_hostport(const struct rg_hostport *a, const struct rg_hostport *b)
{
    static const int families[] = { AF_INET, AF_INET6 };
    unsigned char x[sizeof(struct in6_addr)], y[sizeof(struct in6_addr)];

    if (a->port != b->port)
        return false;
    for (size_t i = 0; i < sizeof(families) / sizeof(families[0]); i++) {
        if (inet_pton(families[i], a->host, x) == 1 && inet_pton(families[i], b->host, y) == 1)
            return memcmp(x, y, families[i] == AF_INET ? 4 : 16) == 0;
    }
    return strcasecmp(a->host, b->host) == 0;
}

int rg_provider_url_check(const char *s)
{
    struct rg_hostport hp;
    char rest[sizeof(hp.host) + 16];
    bool scheme = strncmp(s, "https://", 8) == 0;
    size_t len;

    if (scheme)
        s += 8;
    len = strlen(s);
    if (len > 0 && s[len - 1] == '/')
        len--;                          /* "https://host:8443/" */
    if (len == 0 || len >= sizeof(rest))
        return -1;
    memcpy(rest, s, len);
    rest[len] = '\0';
    if (strpbrk(rest, "/?#@ ") != NULL)
        return -1;                      /* no path, query, user or blanks */
    if (rg_hostport_parse(rest, &hp) == 0)
        return 0;
    /* without a port only after "https://" (port 443) */
    if (!scheme)
        return -1;
    if (rest[0] == '[') {
        struct in6_addr a6;
        if (rest[len - 1] != ']')
            return -1;
        rest[len - 1] = '\0';
        return inet_pton(AF_INET6, rest + 1, &a6) == 1 ? 0 : -1;
    }
    return valid_hostname(rest) ? 0 : -1;
}

static const char *hostport_str(const struct rg_hostport *hp, char *buf, size_t len)
{
    if (strchr(hp->host, ':') != NULL)
        snprintf(buf, len, "[%s]:%d", hp->host, hp->port);
    else
        snprintf(buf, len, "%s:%d", hp->host, hp->port);
    return buf;
}

/* ---- values ----------------------------------------------------------------- */

static int set_int(struct parse_ctx *c, const struct key_def *k, const char *v, int *dst)
{
    const char *digits = v[0] == '-' || v[0] == '+' ? v + 1 : v;
    char *end;
    long long n;

    if (!isdigit((unsigned char)digits[0])) {
        fail(c, c->lineno, "%s must be an integer, not '%s'", k->name, v);
        return -1;
    }
    n = strtoll(v, &end, 10);   /* saturates on overflow: caught below */
    if (*end != '\0') {
        fail(c, c->lineno, "%s must be an integer, not '%s'", k->name, v);
        return -1;
    }
    if (n < k->min || n > k->max) {
        fail(c, c->lineno, "%s must be between %lld and %lld", k->name, k->min, k->max);
        return -1;
    }
    *dst = (int)n;
    return 0;
}

static int set_size(struct parse_ctx *c, const struct key_def *k, const char *v, size_t *dst)
{
    unsigned long long n, mult = 1;
    char *end;

    if (!isdigit((unsigned char)v[0]))
        goto bad;
    errno = 0;
    n = strtoull(v, &end, 10);
    switch (*end) {
    case 'k': case 'K': mult = KIB; end++; break;
    case 'm': case 'M': mult = MIB; end++; break;
    case 'g': case 'G': mult = GIB; end++; break;
    default: break;
    }
    if (*end != '\0')
        goto bad;
    if (errno == ERANGE || n > (unsigned long long)k->max / mult
        || n * mult < (unsigned long long)k->min) {
        fail(c, c->lineno, "%s must be between %lld and %lld bytes", k->name, k->min, k->max);
        return -1;
    }
    *dst = (size_t)(n * mult);
    return 0;
bad:
    fail(c, c->lineno, "%s must be a number of bytes with an optional suffix k, m or g, not '%s'",
         k->name, v);
    return -1;
}

static void set_string(char **dst, const char *v)
{
    rg_free(*dst);
    *dst = rg_strdup(v);
}

/* accept_from / accept_domains: entries separated by blanks or commas,
 * each checked and converted (routeval.h), appended to what earlier lines
 * of the same key gave. */
static int append_words(struct parse_ctx *c, const struct key_def *k, const char *v, char **dst)
{
    char *copy = rg_strdup(v), *save = NULL, *w;
    char conv[RG_RV_ENTRY_MAX], why[RG_RV_ENTRY_MAX + 64];
    int rc;

    for (w = strtok_r(copy, " \t,", &save); w != NULL; w = strtok_r(NULL, " \t,", &save)) {
        if (k->type == KT_NETS)
            rc = rg_rv_network(w, conv, sizeof(conv), why, sizeof(why));
        else
            rc = rg_rv_domain(w, conv, sizeof(conv), why, sizeof(why));
        if (rc < 0) {
            fail(c, c->lineno, "%s: %s", k->name, why);
            rg_free(copy);
            return -1;
        }
        if (*dst == NULL) {
            *dst = rg_strdup(conv);
        } else {
            char *joined = rg_sprintf("%s %s", *dst, conv);
            rg_free(*dst);
            *dst = joined;
        }
    }
    rg_free(copy);
    return 0;
}

/* rbl: "host" or "host=d.d.d.d" (the reply an RBL lists with, octets or
 * Postfix's [a;b] and a..b patterns), separated by blanks or commas. */
static int append_rbl(struct parse_ctx *c, const struct key_def *k, const char *v, char **dst)
{
    char *copy = rg_strdup(v), *save = NULL, *w;

    for (w = strtok_r(copy, " \t,", &save); w != NULL; w = strtok_r(NULL, " \t,", &save)) {
        char *eq = strchr(w, '=');
        if (eq != NULL)
            *eq = '\0';
        if (!valid_hostname(w) || strchr(w, '.') == NULL
            || (eq != NULL && (eq[1] == '\0' || strspn(eq + 1, "0123456789.;[]") != strlen(eq + 1)))) {
            if (eq != NULL)
                *eq = '=';
            fail(c, c->lineno, "%s: '%s' is not DNS-SERVER-HOST[=d.d.d.d]", k->name, w);
            rg_free(copy);
            return -1;
        }
        if (eq != NULL)
            *eq = '=';
        char *joined = *dst ? rg_sprintf("%s %s", *dst, w) : rg_strdup(w);
        rg_free(*dst);
        *dst = joined;
    }
    rg_free(copy);
    return 0;
}

static int parse_value(struct parse_ctx *c, const struct key_def *k, const char *v, void *dst)
{
    int n;
    char *url;

    if (v[0] == '\0') {
        fail(c, c->lineno, "%s has an empty value", k->name);
        return -1;
    }
    switch (k->type) {
    case KT_INT:
        return set_int(c, k, v, dst);
    case KT_SIZE:
        return set_size(c, k, v, dst);
    case KT_BOOL:
        if (lookup_word(bool_words, v, &n) < 0) {
            fail(c, c->lineno, "%s must be yes or no, not '%s'", k->name, v);
            return -1;
        }
        *(int *)dst = n;
        return 0;
    case KT_PROTOCOL:
        if (lookup_word(protocol_words, v, &n) < 0) {
            fail(c, c->lineno, "%s must be smtp or lmtp, not '%s'", k->name, v);
            return -1;
        }
        *(enum rg_protocol *)dst = (enum rg_protocol)n;
        return 0;
    case KT_PROCESS:
        if (lookup_word(process_words, v, &n) < 0) {
            fail(c, c->lineno, "%s must be message or recipient, not '%s'", k->name, v);
            return -1;
        }
        *(enum rg_process *)dst = (enum rg_process)n;
        return 0;
    case KT_PATH:
        if (v[0] != '/') {
            fail(c, c->lineno, "%s must be an absolute path, not '%s'", k->name, v);
            return -1;
        }
        set_string(dst, v);
        return 0;
    case KT_HOSTNAME:
        if (!valid_hostname(v)) {
            fail(c, c->lineno, "%s must be a host name, not '%s'", k->name, v);
            return -1;
        }
        set_string(dst, v);
        return 0;
    case KT_USER:
        if (getpwnam(v) == NULL) {
            fail(c, c->lineno, "unknown user '%s'", v);
            return -1;
        }
        set_string(dst, v);
        return 0;
    case KT_FACILITY:
        if (rg_log_facility(v) < 0) {
            fail(c, c->lineno, "%s must be mail, daemon, user or local0 to local7, not '%s'",
                 k->name, v);
            return -1;
        }
        set_string(dst, v);
        return 0;
    case KT_URL:
        if (strncasecmp(v, "https://", 8) != 0 && strstr(v, "://") != NULL) {
            fail(c, c->lineno, "%s must be an https URL, not '%s'", k->name, v);
            return -1;
        }
        if (rg_provider_url_check(v) < 0) {
            fail(c, c->lineno, "%s must be https://HOST[:PORT] or HOST:PORT, not '%s'",
                 k->name, v);
            return -1;
        }
        rg_free(*(char **)dst);
        *(char **)dst = strncmp(v, "https://", 8) == 0 ? rg_strdup(v) : rg_sprintf("https://%s", v);
        url = *(char **)dst;
        if (url[strlen(url) - 1] == '/')
            url[strlen(url) - 1] = '\0';
        return 0;
    case KT_TEXT:
        for (const unsigned char *p = (const unsigned char *)v; *p; p++)
            if (*p < 0x20 || *p == 0x7f) {
                fail(c, c->lineno, "%s must not contain control characters", k->name);
                return -1;
            }
        if ((long long)strlen(v) > k->max) {
            fail(c, c->lineno, "%s is longer than %lld bytes", k->name, k->max);
            return -1;
        }
        set_string(dst, v);
        return 0;
    case KT_NETS:
    case KT_DOMAINS:
        return append_words(c, k, v, dst);
    case KT_NEXTHOP: {
        char hop[RG_RV_ENTRY_MAX], why[RG_RV_ENTRY_MAX + 64];
        if (rg_rv_nexthop(v, hop, sizeof(hop), why, sizeof(why)) < 0) {
            fail(c, c->lineno, "%s: %s", k->name, why);
            return -1;
        }
        set_string(dst, hop);
        return 0;
    }
    case KT_RBL:
        return append_rbl(c, k, v, dst);
    case KT_SMTP_TLS:
    case KT_SMTPD_TLS: {
        static const char *const smtp[] = { "none", "may", "encrypt", "dane", "dane-only",
                                            "fingerprint", "verify", "secure", NULL };
        static const char *const smtpd[] = { "none", "may", "encrypt", NULL };
        const char *const *ok = k->type == KT_SMTP_TLS ? smtp : smtpd;
        for (; *ok != NULL; ok++)
            if (strcmp(*ok, v) == 0) {
                set_string(dst, v);
                return 0;
            }
        fail(c, c->lineno, "%s must be one of %s, not '%s'", k->name, k->type == KT_SMTP_TLS
             ? "none, may, encrypt, dane, dane-only, fingerprint, verify, secure"
             : "none, may, encrypt", v);
        return -1;
    }
    case KT_HOSTPORT:
        if (rg_hostport_parse(v, dst) < 0) {
            fail(c, c->lineno, "%s must be host:port or [address]:port with a port from 1 to "
                 "65535, not '%s'", k->name, v);
            return -1;
        }
        return 0;
    }
    rg_panic("conffile: key %s has unknown type %d", k->name, (int)k->type);
}

/* ---- sections and keys ------------------------------------------------------ */

static bool valid_route_name(const char *s)
{
    size_t len = strlen(s);

    return len >= 1 && len <= ROUTE_NAME_MAX
        && strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-") == len;
}

void rg_mta_init(struct rg_mta *m)
{
    memset(m, 0, sizeof(*m));
    m->internal_relay_host_mx = -1;
    m->external_relay_host_mx = -1;
    m->match_subdomains = -1;
    m->reject_unverified_recipient = -1;
    m->unverified_recipient_reject_code = -1;
}

static void mta_free(struct rg_mta *m)
{
    char **strings[] = { &m->relay_domains, &m->mynetworks, &m->myhostname, &m->smtp_helo_name,
                         &m->internal_relay_host, &m->external_relay_host, &m->transport_maps,
                         &m->sasl_password_maps, &m->header_checks, &m->rbl,
                         &m->client_whitelist, &m->client_blacklist, &m->sender_whitelist,
                         &m->sender_blacklist, &m->smtp_tls_security_level,
                         &m->smtpd_tls_security_level };

    for (size_t i = 0; i < sizeof(strings) / sizeof(strings[0]); i++)
        *strings[i] = rg_free(*strings[i]);
}

size_t rg_route_after_filter_limit(const struct rg_route *r)
{
    return r->after_filter_message_size_limit != 0 ? r->after_filter_message_size_limit
                                                   : 2 * r->max_message_size;
}

/* "[192.0.2.1]:25" or "[ipv6:...]:25": the MX option needs a host name. */
static bool nexthop_is_address(const char *hop)
{
    struct in_addr a4;
    char host[RG_RV_ENTRY_MAX];
    const char *close = strchr(hop, ']');

    if (strncmp(hop, "[ipv6:", 6) == 0)
        return true;
    if (hop[0] != '[' || close == NULL)
        return false;
    snprintf(host, sizeof(host), "%.*s", (int)(close - hop - 1), hop + 1);
    return inet_pton(AF_INET, host, &a4) == 1;
}

static void add_route(struct parse_ctx *c, const char *name)
{
    struct rg_conf *conf = c->conf;
    struct rg_route *r;
    size_t n = conf->nroutes;

    conf->routes = rg_realloc(conf->routes, (n + 1) * sizeof(*conf->routes));
    c->route_keys = rg_realloc(c->route_keys, (n + 1) * sizeof(*c->route_keys));
    memset(&c->route_keys[n], 0, sizeof(c->route_keys[n]));
    r = &conf->routes[n];
    memset(r, 0, sizeof(*r));
    r->name = rg_strdup(name);
    r->file = rg_strdup(c->file);
    r->line = c->lineno;
    r->protocol = RG_PROTO_SMTP;
    r->process = RG_PROCESS_MESSAGE;
    r->max_message_size = (size_t)(50 * MIB);
    r->max_recipients = 1000;
    r->max_header_size = (size_t)MIB;
    r->provider_connect_timeout = 10;
    r->provider_timeout = 30;
    r->account_cache_ttl = 300;
    r->account_cache_negative_ttl = 60;
    rg_mta_init(&r->mta);
    conf->nroutes = n + 1;
    c->sec = SEC_ROUTE;
    c->route = n;
    snprintf(c->label, sizeof(c->label), "[route %s]", name);
}

static char *trim(char *s)
{
    char *end;

    while (isspace((unsigned char)*s))
        s++;
    end = s + strlen(s);
    while (end > s && isspace((unsigned char)end[-1]))
        *--end = '\0';
    return s;
}

/* "[global]" or "[route NAME]", optionally followed by a comment. */
static bool section_header(struct parse_ctx *c, char *line)
{
    char *close = strchr(line, ']');
    char *rest, *kind, *name;

    if (close == NULL) {
        fail(c, c->lineno, "missing ']' in section header");
        return false;
    }
    rest = close + 1;
    while (isspace((unsigned char)*rest))
        rest++;
    if (*rest != '\0' && *rest != ';' && *rest != '#') {
        fail(c, c->lineno, "unexpected text after section header: '%s'", trim(rest));
        return false;
    }
    *close = '\0';
    kind = trim(line + 1);
    name = kind + strcspn(kind, " \t");
    if (*name != '\0') {
        *name++ = '\0';
        name = trim(name);
    }

    if (c->route_dir_name != NULL && strcmp(kind, "global") == 0) {
        fail(c, c->lineno, "section [global] belongs in %s, not in a route file", c->conf->path);
        return false;
    }
    if (c->route_dir_name != NULL && strcmp(kind, "route") == 0
        && (c->sec != SEC_NONE || strcmp(name, c->route_dir_name) != 0)) {
        if (c->sec != SEC_NONE)
            fail(c, c->lineno, "a route file holds one section, [route %s]", c->route_dir_name);
        else
            fail(c, c->lineno, "route '%s' in the directory of route '%s': the section must "
                 "be [route %s]", name, c->route_dir_name, c->route_dir_name);
        return false;
    }
    if (strcmp(kind, "global") == 0) {
        if (*name != '\0') {
            fail(c, c->lineno, "section [global] takes no name");
            return false;
        }
        if (c->global_line != 0) {
            fail(c, c->lineno, "duplicate section [global] (first on line %d)", c->global_line);
            return false;
        }
        c->global_line = c->lineno;
        c->sec = SEC_GLOBAL;
        snprintf(c->label, sizeof(c->label), "[global]");
        return true;
    }
    if (strcmp(kind, "mta") == 0) {
        if (c->route_dir_name != NULL) {
            fail(c, c->lineno, "section [mta] belongs in %s, not in a route file", c->conf->path);
            return false;
        }
        if (*name != '\0') {
            fail(c, c->lineno, "section [mta] takes no name");
            return false;
        }
        if (c->mta_line != 0) {
            fail(c, c->lineno, "duplicate section [mta] (first on line %d)", c->mta_line);
            return false;
        }
        c->mta_line = c->lineno;
        c->sec = SEC_MTA;
        snprintf(c->label, sizeof(c->label), "[mta]");
        return true;
    }
    if (strcmp(kind, "route") == 0) {
        if (*name == '\0') {
            fail(c, c->lineno, "route section without a name: use [route NAME]");
            return false;
        }
        if (!valid_route_name(name)) {
            fail(c, c->lineno, "invalid route name '%s': use 1 to %d letters, digits, '_', "
                 "'.' or '-'", name, ROUTE_NAME_MAX);
            return false;
        }
        const struct rg_route *dup = rg_conf_route(c->conf, name);
        if (dup != NULL && strcmp(dup->file, c->file) == 0) {
            fail(c, c->lineno, "duplicate route '%s' (first on line %d)", name, dup->line);
            return false;
        }
        if (dup != NULL) {
            fail(c, c->lineno, "duplicate route '%s' (first in %s:%d)", name, dup->file,
                 dup->line);
            return false;
        }
        add_route(c, name);
        return true;
    }
    fail(c, c->lineno, "unknown section [%s%s%s]", kind, *name ? " " : "", name);
    return false;
}

/*
 * inih's reader: one line of at most num - 2 bytes plus "\n", so that inih
 * always sees whole lines. Section headers are handled here and passed on
 * as empty lines.
 */
static char *read_line(char *str, int num, void *stream)
{
    struct parse_ctx *c = stream;
    size_t max, len = 0;
    bool overlong = false;
    int ch;
    char *p;

    if (c->failed || num < 3)
        return NULL;
    max = (size_t)num - 2;
    while ((ch = getc(c->fp)) != EOF && ch != '\n') {
        if (len == max) {
            overlong = true;    /* the parse stops here: no need to read on */
            break;
        }
        str[len++] = (char)ch;
    }
    if (ch == EOF && ferror(c->fp)) {
        fail(c, 0, "cannot read: %s", strerror(errno));
        return NULL;
    }
    if (ch == EOF && len == 0)
        return NULL;
    str[len] = '\0';
    c->lineno++;
    if (memchr(str, '\0', len) != NULL) {
        fail(c, c->lineno, "NUL byte in line");
        return NULL;
    }
    if (overlong) {
        fail(c, c->lineno, "line longer than %zu characters", max);
        return NULL;
    }

    p = str;
    if (c->lineno == 1 && strncmp(p, "\xEF\xBB\xBF", 3) == 0)
        p += 3;                         /* UTF-8 byte order mark */
    while (isspace((unsigned char)*p))
        p++;
    if (*p == '[') {
        if (!section_header(c, p))
            return NULL;
        p = str + len;                  /* inih sees an empty line */
    }
    len = strlen(p);
    memmove(str, p, len);
    str[len] = '\n';
    str[len + 1] = '\0';
    return str;
}

static int on_key(void *user, const char *section, const char *name, const char *value)
{
    struct parse_ctx *c = user;
    const struct key_def *k;
    struct key_lines *seen;
    char *base;
    int *line;

    (void)section;      /* inih's copy may be cut short; c->sec is the truth */
    if (c->failed)
        return 0;
    if (name[0] == '\0') {
        fail(c, c->lineno, "missing key name before '='");
        return 0;
    }
    if (c->sec == SEC_NONE) {
        fail(c, c->lineno, "key '%s' outside of any section", name);
        return 0;
    }
    k = find_key(c->sec, name);
    if (k == NULL) {
        if (find_key(SEC_ROUTE, name) != NULL)
            fail(c, c->lineno, "key '%s' belongs in a [route NAME] section, not in %s", name,
                 c->label);
        else if (find_key(SEC_GLOBAL, name) != NULL)
            fail(c, c->lineno, "key '%s' belongs in [global], not in %s", name, c->label);
        else if (find_key(SEC_MTA, name) != NULL)
            fail(c, c->lineno, "key '%s' belongs in [mta], not in %s", name, c->label);
        else
            fail(c, c->lineno, "unknown key '%s' in %s", name, c->label);
        return 0;
    }
    if (c->sec == SEC_GLOBAL) {
        seen = &c->global_keys;
        base = (char *)c->conf;
    } else if (c->sec == SEC_MTA) {
        seen = &c->mta_keys;
        base = (char *)c->conf;
    } else {
        seen = &c->route_keys[c->route];
        base = (char *)&c->conf->routes[c->route];
    }
    line = &seen->line[k - keys];
    if (*line != 0 && k->type != KT_NETS && k->type != KT_DOMAINS && k->type != KT_RBL) {
        fail(c, c->lineno, "duplicate key '%s' in %s (first on line %d)", name, c->label, *line);
        return 0;
    }
    *line = c->lineno;
    return parse_value(c, k, value, base + k->offset) == 0;
}

/* ---- whole-file checks ------------------------------------------------------ */

static int max_int(int a, int b)
{
    return a > b ? a : b;
}

/* lo <= hi, reported on the later of the two lines that set them. */
static void check_order(struct parse_ctx *c, const char *lo_name, int lo, const char *hi_name, int hi)
{
    int line;

    if (lo <= hi)
        return;
    line = max_int(key_line(&c->global_keys, SEC_GLOBAL, lo_name),
                   key_line(&c->global_keys, SEC_GLOBAL, hi_name));
    fail(c, line, "%s (%d) must not be greater than %s (%d)", lo_name, lo, hi_name, hi);
}

static void check_route_addresses(struct parse_ctx *c, size_t i)
{
    const struct rg_conf *conf = c->conf;
    const struct rg_route *r = &conf->routes[i];
    int listen_line = key_line(&c->route_keys[i], SEC_ROUTE, "listen");
    int reinject_line = key_line(&c->route_keys[i], SEC_ROUTE, "reinject");
    char addr[sizeof(r->listen.host) + 16];

    if (!conf->allow_remote_listen && !rg_host_is_loopback(r->listen.host))
        fail(c, listen_line, "listen address %s of route '%s' is not a loopback address "
             "(set allow_remote_listen = yes in [global] to allow it)",
             hostport_str(&r->listen, addr, sizeof(addr)), r->name);
    for (size_t j = 0; j < i; j++)
        if (same_hostport(&r->listen, &conf->routes[j].listen))
            fail(c, listen_line, "listen address %s of route '%s' is already used by route '%s'",
                 hostport_str(&r->listen, addr, sizeof(addr)), r->name, conf->routes[j].name);
    for (size_t j = 0; j < conf->nroutes; j++)
        if (same_hostport(&r->reinject, &conf->routes[j].listen))
            fail(c, reinject_line, "reinject address %s of route '%s' is the listen address of "
                 "route '%s' (mail loop)", hostport_str(&r->reinject, addr, sizeof(addr)),
                 r->name, conf->routes[j].name);
}

/* The provider keys of route i: a provider needs its CA; defaults of the
 * paths that depend on the route's name or cert_dir. */
static void check_route_provider(struct parse_ctx *c, size_t i)
{
    struct rg_route *r = &c->conf->routes[i];
    const struct key_lines *kl = &c->route_keys[i];

    if (r->provider != NULL && r->provider_ca == NULL)
        fail(c, key_line(kl, SEC_ROUTE, "provider"), "route '%s' has a 'provider' but no "
             "'provider_ca' (the provider's CA certificate)", r->name);
    if (r->provider_connect_timeout > r->provider_timeout)
        fail(c, max_int(key_line(kl, SEC_ROUTE, "provider_connect_timeout"),
                        key_line(kl, SEC_ROUTE, "provider_timeout")),
             "provider_connect_timeout (%d) must not be greater than provider_timeout (%d)",
             r->provider_connect_timeout, r->provider_timeout);
    if (r->cert_dir == NULL)
        r->cert_dir = rg_sprintf("%s/%s", c->conf->routes_dir, r->name);
    if (r->provider_cert == NULL)
        r->provider_cert = rg_sprintf("%s/provider.crt", r->cert_dir);
    if (r->provider_key == NULL)
        r->provider_key = rg_sprintf("%s/provider.key", r->cert_dir);
    rg_free(r->provider_contact_file);
    r->provider_contact_file = rg_routestate_path(c->conf->spool_dir, r->name, "provider");
}

/* The Postfix side of route i (public_listen, accept_from, ...): unique
 * public address and id, and no open relay. */
static void check_route_public(struct parse_ctx *c, size_t i)
{
    const struct rg_conf *conf = c->conf;
    const struct rg_route *r = &conf->routes[i];
    const struct key_lines *kl = &c->route_keys[i];
    int pline = key_line(kl, SEC_ROUTE, "public_listen");
    char addr[sizeof(r->public_listen.host) + 16];

    for (size_t j = 0; j < i; j++)
        if (r->id != 0 && conf->routes[j].id == r->id)
            fail(c, key_line(kl, SEC_ROUTE, "id"), "route id %d of route '%s' is already used "
                 "by route '%s'", r->id, r->name, conf->routes[j].name);
    if (r->public_listen.port == 0) {
        if (r->accept_from != NULL || r->accept_domains != NULL || r->forward_to != NULL)
            fail(c, r->line, "route '%s' has accept_from, accept_domains or forward_to but no "
                 "public_listen", r->name);
        return;
    }
    hostport_str(&r->public_listen, addr, sizeof(addr));
    for (size_t j = 0; j < conf->nroutes; j++) {
        const struct rg_route *o = &conf->routes[j];
        if (j < i && o->public_listen.port != 0 && same_hostport(&r->public_listen, &o->public_listen))
            fail(c, pline, "public_listen %s of route '%s' is already used by route '%s'",
                 addr, r->name, o->name);
        if (same_hostport(&r->public_listen, &o->listen)
            || same_hostport(&r->public_listen, &o->reinject))
            fail(c, pline, "public_listen %s of route '%s' is a loopback address of route '%s'",
                 addr, r->name, o->name);
    }
    if (r->forward_to_mx == 1 && (r->forward_to == NULL || nexthop_is_address(r->forward_to)))
        fail(c, key_line(kl, SEC_ROUTE, "forward_to_mx"), "forward_to_mx needs a forward_to "
             "with a host name (MX records of an address do not exist)");
    /* the appliance's rule: no route to the Internet without a source
     * restriction; and no route without any restriction at all */
    if (r->forward_to == NULL && r->accept_from == NULL)
        fail(c, pline, "route '%s' delivers to the Internet (no forward_to) but has no "
             "accept_from: that would be an open relay", r->name);
    else if (r->accept_from == NULL && r->accept_domains == NULL)
        fail(c, pline, "route '%s' has neither accept_from nor accept_domains: that would "
             "accept mail for anyone from anyone", r->name);
}

static void check_conf(struct parse_ctx *c, int flags)
{
    const struct rg_conf *conf = c->conf;

    c->file = conf->path;
    check_order(c, "min_spare_servers", conf->min_spare_servers,
                "max_spare_servers", conf->max_spare_servers);
    check_order(c, "max_spare_servers", conf->max_spare_servers,
                "max_servers", conf->max_servers);
    if (conf->mta.internal_relay_host_mx == 1
        && (conf->mta.internal_relay_host == NULL || nexthop_is_address(conf->mta.internal_relay_host)))
        fail(c, key_line(&c->mta_keys, SEC_MTA, "internal_relay_host_mx"), "internal_relay_host_mx "
             "needs an internal_relay_host with a host name");
    if (conf->mta.external_relay_host_mx == 1
        && (conf->mta.external_relay_host == NULL || nexthop_is_address(conf->mta.external_relay_host)))
        fail(c, key_line(&c->mta_keys, SEC_MTA, "external_relay_host_mx"), "external_relay_host_mx "
             "needs an external_relay_host with a host name");
    if (conf->nroutes == 0 && !(flags & RG_CONF_NO_ROUTES_OK))
        fail(c, 0, "no [route NAME] section");
    for (size_t i = 0; i < conf->nroutes; i++) {
        const struct rg_route *r = &conf->routes[i];
        c->file = r->file;
        if (key_line(&c->route_keys[i], SEC_ROUTE, "listen") == 0)
            fail(c, r->line, "route '%s' has no 'listen'", r->name);
        if (key_line(&c->route_keys[i], SEC_ROUTE, "reinject") == 0)
            fail(c, r->line, "route '%s' has no 'reinject'", r->name);
    }
    for (size_t i = 0; i < conf->nroutes && !c->failed; i++) {
        c->file = conf->routes[i].file;
        check_route_addresses(c, i);
    }
    for (size_t i = 0; i < conf->nroutes && !c->failed; i++) {
        c->file = conf->routes[i].file;
        check_route_provider(c, i);
        check_route_public(c, i);
    }
}

/* ---- public interface ------------------------------------------------------- */

static struct rg_conf *conf_new(const char *path)
{
    struct rg_conf *conf = rg_calloc(1, sizeof(*conf));
    char host[256];

    if (gethostname(host, sizeof(host)) != 0 || host[0] == '\0')
        snprintf(host, sizeof(host), "localhost");
    host[sizeof(host) - 1] = '\0';

    conf->path = rg_strdup(path);
    conf->user = NULL;
    conf->spool_dir = rg_strdup("/var/spool/regigate");
    conf->pid_file = rg_strdup("/run/regigate/regigated.pid");
    conf->myhostname = rg_strdup(host);
    conf->syslog_facility = rg_strdup("mail");
    conf->allow_remote_listen = 0;
    conf->max_servers = 8;
    conf->min_spare_servers = 1;
    conf->max_spare_servers = 4;
    conf->max_requests = 1000;
    conf->child_timeout = 540;
    conf->smtp_timeout = 300;
    conf->reinject_timeout = 120;
    conf->shutdown_timeout = 60;
    conf->spool_memory_limit = (size_t)(128 * KIB);
    conf->routes_dir = rg_strdup(ROUTES_DIR_DEFAULT);
    conf->route_port_base = 10025;
    rg_mta_init(&conf->mta);
    return conf;
}

/* Parse one file into c->conf: regigate.conf (route_dir_name NULL) or a
 * route file. 0 ok, -1 after fail(). */
static int parse_file(struct parse_ctx *c, const char *path, const char *route_dir_name)
{
    int rc;

    c->file = path;
    c->route_dir_name = route_dir_name;
    c->lineno = 0;
    c->sec = SEC_NONE;
    c->fp = fopen(path, "re");
    if (c->fp == NULL) {
        fail(c, 0, "cannot open: %s", strerror(errno));
        return -1;
    }
    rc = ini_parse_stream(read_line, c, on_key, c);
    fclose(c->fp);
    c->fp = NULL;

    /* inih reports lines it cannot split itself; the earliest error wins */
    if (rc > 0 && (!c->failed || rc < c->err_line)) {
        c->failed = false;
        fail(c, rc, "syntax error: expected 'key = value'");
    } else if (rc < 0) {
        fail(c, 0, "cannot parse (libinih error %d)", rc);
    }
    if (!c->failed && route_dir_name != NULL && c->sec == SEC_NONE)
        fail(c, 0, "no [route %s] section", route_dir_name);
    return c->failed ? -1 : 0;
}

static int by_name(const struct dirent **a, const struct dirent **b)
{
    return strcmp((*a)->d_name, (*b)->d_name);
}

static int route_dir_entry(const struct dirent *d)
{
    return d->d_name[0] != '.' && valid_route_name(d->d_name);
}

/* Every routes_dir/NAME/route.conf, in the order of the names (strcmp).
 * A missing routes_dir is no route; a NAME without route.conf is skipped
 * (regigatectl writes route.conf last and removes it first). */
static void parse_routes_dir(struct parse_ctx *c)
{
    const char *dir = c->conf->routes_dir;
    struct dirent **names = NULL;
    int n = scandir(dir, &names, route_dir_entry, by_name);

    if (n < 0) {
        if (errno != ENOENT) {
            c->file = c->conf->path;
            fail(c, 0, "routes_dir %s: %s", dir, strerror(errno));
        }
        return;
    }
    for (int i = 0; i < n; i++) {
        char *path = rg_sprintf("%s/%s/%s", dir, names[i]->d_name, ROUTE_FILE);
        if (!c->failed && access(path, F_OK) == 0)
            parse_file(c, path, names[i]->d_name);
        rg_free(path);
        free(names[i]);
    }
    free(names);
}

struct rg_conf *rg_conf_load_flags(const char *path, int flags, char *err, size_t errlen)
{
    struct parse_ctx c;

    memset(&c, 0, sizeof(c));
    if (err != NULL && errlen > 0)
        err[0] = '\0';
    c.conf = conf_new(path);
    if (parse_file(&c, path, NULL) == 0)
        parse_routes_dir(&c);
    if (!c.failed)
        check_conf(&c, flags);
    c.route_keys = rg_free(c.route_keys);
    if (c.failed) {
        report(&c, path, err, errlen);
        c.conf = rg_conf_free(c.conf);
    }
    return c.conf;
}

struct rg_conf *rg_conf_load(const char *path, char *err, size_t errlen)
{
    return rg_conf_load_flags(path, 0, err, errlen);
}

struct rg_conf *rg_conf_free(struct rg_conf *conf)
{
    if (conf == NULL)
        return NULL;
    for (size_t i = 0; i < conf->nroutes; i++) {
        rg_free(conf->routes[i].name);
        rg_free(conf->routes[i].rules);
        rg_free(conf->routes[i].lists_dir);
        rg_free(conf->routes[i].provider);
        rg_free(conf->routes[i].provider_ca);
        rg_free(conf->routes[i].cert_dir);
        rg_free(conf->routes[i].provider_cert);
        rg_free(conf->routes[i].provider_key);
        rg_free(conf->routes[i].provider_contact_file);
        rg_free(conf->routes[i].hidden_subject);
        rg_free(conf->routes[i].file);
        rg_free(conf->routes[i].accept_from);
        rg_free(conf->routes[i].accept_domains);
        rg_free(conf->routes[i].forward_to);
        rg_free(conf->routes[i].mta_hostname);
        mta_free(&conf->routes[i].mta);
    }
    mta_free(&conf->mta);
    rg_free(conf->routes);
    rg_free(conf->path);
    rg_free(conf->user);
    rg_free(conf->spool_dir);
    rg_free(conf->pid_file);
    rg_free(conf->myhostname);
    rg_free(conf->syslog_facility);
    rg_free(conf->routes_dir);
    rg_free(conf);
    return NULL;
}

const struct rg_route *rg_conf_route(const struct rg_conf *conf, const char *name)
{
    for (size_t i = 0; i < conf->nroutes; i++)
        if (strcmp(conf->routes[i].name, name) == 0)
            return &conf->routes[i];
    return NULL;
}
