/*
 * pfgen.c - the Postfix configuration of the routes; see pfgen.h and
 * regigate-postfix(5), which explains every line written here.
 */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "log.h"
#include "mem.h"
#include "pfgen.h"

#define OUT_MAX (16u * 1024 * 1024)

static void out(struct rg_buf *b, const char *fmt, ...) RG_PRINTF(2, 3);

static void out(struct rg_buf *b, const char *fmt, ...)
{
    va_list ap;
    char *s;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    s = rg_malloc((size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    va_end(ap);
    if (rg_buf_append(b, s, (size_t)n) < 0)
        rg_fatal("pfgen: the generated Postfix configuration exceeds %u bytes", OUT_MAX);
    rg_free(s);
}

static char *take(struct rg_buf *b)
{
    char *s = rg_strdup(b->data != NULL ? b->data : "");

    rg_buf_free(b);
    return s;
}

/* Routes with a public side, by id then name. */
static int by_id(const void *a, const void *b)
{
    const struct rg_route *x = *(const struct rg_route *const *)a;
    const struct rg_route *y = *(const struct rg_route *const *)b;

    if (x->id != y->id)
        return x->id < y->id ? -1 : 1;
    return strcmp(x->name, y->name);
}

static const struct rg_route **public_routes(const struct rg_conf *conf, size_t *n)
{
    const struct rg_route **v = rg_calloc(conf->nroutes + 1, sizeof(*v));

    *n = 0;
    for (size_t i = 0; i < conf->nroutes; i++)
        if (conf->routes[i].public_listen.port != 0)
            v[(*n)++] = &conf->routes[i];
    qsort(v, *n, sizeof(*v), by_id);
    return v;
}

static void hostport(const struct rg_hostport *hp, char *buf, size_t len)
{
    if (strchr(hp->host, ':') != NULL)
        snprintf(buf, len, "[%s]:%d", hp->host, hp->port);
    else
        snprintf(buf, len, "%s:%d", hp->host, hp->port);
}

/* "a b c" -> "a<sep>b<sep>c" with each word wrapped in pre/post. */
static void words(struct rg_buf *b, const char *list, const char *sep, const char *pre,
                  const char *post)
{
    const char *p = list;
    int first = 1;

    while (p != NULL && *p != '\0') {
        size_t len = strcspn(p, " ");
        if (len > 0) {
            out(b, "%s%s%.*s%s", first ? "" : sep, pre, (int)len, p, post);
            first = 0;
        }
        p += len;
        while (*p == ' ')
            p++;
    }
}

/* ---- MTA settings: the route's value, else [mta]'s ------------------------ */

static int eff_int(int route, int global)
{
    return route >= 0 ? route : global;
}

static const char *eff_str(const char *route, const char *global)
{
    return route != NULL ? route : global;
}

/* "[host]:port" as a next hop, without the brackets when mx (MX lookup). */
static void nexthop(struct rg_buf *b, const char *hop, int mx)
{
    const char *close = strchr(hop, ']');

    if (mx == 1 && hop[0] == '[' && close != NULL)
        out(b, "%.*s%s", (int)(close - hop - 1), hop + 1, close + 1);
    else
        out(b, "%s", hop);
}

/* The client restrictions: white list, black list, RBLs; sep between
 * words (',' in master.cf, ", " in main.cf). */
static void client_restrictions(struct rg_buf *b, const char *white, const char *black,
                                const char *rbl, const char *sep)
{
    const char *s = "";
    const char *space = strcmp(sep, ",") == 0 ? "," : " ";

    if (white != NULL) {
        out(b, "check_client_access%stexthash:%s", space, white);
        s = sep;
    }
    if (black != NULL) {
        out(b, "%scheck_client_access%stexthash:%s", s, space, black);
        s = sep;
    }
    if (rbl != NULL) {
        char *pre = rg_sprintf("reject_rbl_client%s", space);
        out(b, "%s", s);
        words(b, rbl, sep, pre, "");
        rg_free(pre);
    }
}

static void sender_restrictions(struct rg_buf *b, const char *white, const char *black,
                                const char *sep)
{
    const char *space = strcmp(sep, ",") == 0 ? "," : " ";

    if (white != NULL)
        out(b, "check_sender_access%stexthash:%s", space, white);
    if (black != NULL)
        out(b, "%scheck_sender_access%stexthash:%s", white != NULL ? sep : "", space, black);
}

static void master_route(struct rg_buf *b, const struct rg_conf *conf, const struct rg_route *r)
{
    const struct rg_mta *m = &r->mta, *g = &conf->mta;
    const char *header_checks = eff_str(m->header_checks, g->header_checks);
    const char *smtpd_tls = eff_str(m->smtpd_tls_security_level, g->smtpd_tls_security_level);
    const char *smtp_tls = eff_str(m->smtp_tls_security_level, g->smtp_tls_security_level);
    int verify = eff_int(m->reject_unverified_recipient, g->reject_unverified_recipient);
    int verify_code = eff_int(m->unverified_recipient_reject_code,
                              g->unverified_recipient_reject_code);
    char pub[300], lis[300], rei[300];
    const char *proto = r->protocol == RG_PROTO_LMTP ? "lmtp" : "smtp";

    hostport(&r->public_listen, pub, sizeof(pub));
    hostport(&r->listen, lis, sizeof(lis));
    hostport(&r->reinject, rei, sizeof(rei));
    out(b, "#\n# route %s (id %d, %s): public smtpd %s -> regigated %s -> reinjection %s -> %s\n",
        r->name, r->id, r->file, pub, lis, rei, r->forward_to ? r->forward_to : "DNS/MX");

    /* 1. the public smtpd */
    out(b, "%s inet n - n - - smtpd\n", pub);
    out(b, "  -o syslog_name=postfix/regigate-%s\n", r->name);
    out(b, "  -o content_filter=regigate-%s:%s[%s]:%d\n", r->name,
        r->protocol == RG_PROTO_LMTP ? "inet:" : "", r->listen.host, r->listen.port);
    out(b, "  -o smtpd_client_restrictions=");
    client_restrictions(b, eff_str(m->client_whitelist, g->client_whitelist),
                        eff_str(m->client_blacklist, g->client_blacklist),
                        eff_str(m->rbl, g->rbl), ",");
    out(b, "\n");
    out(b, "  -o smtpd_helo_restrictions=\n");
    out(b, "  -o smtpd_sender_restrictions=");
    sender_restrictions(b, eff_str(m->sender_whitelist, g->sender_whitelist),
                        eff_str(m->sender_blacklist, g->sender_blacklist), ",");
    out(b, "\n");
    out(b, "  -o mynetworks=");
    words(b, r->accept_from, ",", "", "");
    out(b, "\n");
    out(b, "  -o parent_domain_matches_subdomains=%s\n",
        eff_int(m->match_subdomains, g->match_subdomains) == 1 ? "smtpd_access_maps" : "");
    out(b, "  -o smtpd_relay_restrictions=");
    if (r->accept_from != NULL)
        out(b, "permit_mynetworks,");
    if (r->accept_domains != NULL) {
        out(b, "check_recipient_access,inline:{");
        words(b, r->accept_domains, ",", "", "=OK");
        out(b, "},");
    }
    out(b, "reject\n");
    out(b, "  -o smtpd_recipient_restrictions=%s\n", verify == 1 ? "reject_unverified_recipient" : "");
    if (verify == 1 && verify_code > 0)
        out(b, "  -o unverified_recipient_reject_code=%d\n", verify_code);
    out(b, "  -o message_size_limit=%zu\n", r->max_message_size);
    out(b, "  -o smtpd_tls_security_level=%s\n", smtpd_tls != NULL ? smtpd_tls : "may");
    out(b, "  -o smtpd_tls_chain_files=%s/key_cert.pem\n", r->cert_dir);
    out(b, "  -o smtpd_tls_received_header=yes\n");
    if (m->header_checks != NULL)
        out(b, "  -o cleanup_service_name=regigate-%s-cleanup\n", r->name);

    /* 2. the transport to regigated */
    out(b, "regigate-%s unix - - n - %d %s\n", r->name, conf->max_servers, proto);
    out(b, "  -o syslog_name=postfix/regigate-%s-filter\n", r->name);
    out(b, "  -o %s_data_done_timeout=1200\n", proto);
    out(b, "  -o %s_send_xforward_command=yes\n", proto);
    out(b, "  -o %s_dns_support_level=disabled\n", proto);
    out(b, "  -o %s_tls_security_level=none\n", proto);
    out(b, "  -o max_use=20\n");

    /* 3. the reinjection smtpd */
    out(b, "%s inet n - n - - smtpd\n", rei);
    out(b, "  -o syslog_name=postfix/regigate-%s-reinject\n", r->name);
    if (r->forward_to != NULL) {
        out(b, "  -o content_filter=regigate-%s-out:", r->name);
        nexthop(b, r->forward_to, r->forward_to_mx);
        out(b, "\n");
    } else
        out(b, "  -o content_filter=\n");
    out(b, "  -o receive_override_options=no_unknown_recipient_checks,no_header_body_checks,"
        "no_milters\n");
    out(b, "  -o smtpd_client_restrictions=\n");
    out(b, "  -o smtpd_helo_restrictions=\n");
    out(b, "  -o smtpd_sender_restrictions=\n");
    out(b, "  -o smtpd_relay_restrictions=\n");
    out(b, "  -o smtpd_recipient_restrictions=permit_mynetworks,reject\n");
    out(b, "  -o mynetworks=127.0.0.0/8,[::1]/128\n");
    out(b, "  -o smtpd_authorized_xforward_hosts=127.0.0.0/8,[::1]/128\n");
    out(b, "  -o message_size_limit=%zu\n", rg_route_after_filter_limit(r));
    out(b, "  -o smtpd_tls_security_level=none\n");
    out(b, "  -o smtpd_error_sleep_time=0\n");
    out(b, "  -o smtpd_client_connection_count_limit=0\n");
    out(b, "  -o smtpd_client_connection_rate_limit=0\n");

    /* 4. the delivery transport of forward_to. Without forward_to the
     * mail takes Postfix's normal routing (relayhost, transport_maps,
     * DNS/MX), which all routes share: a content_filter with an empty next
     * hop would send it to $myhostname, not to the recipient's MX. */
    if (r->forward_to != NULL) {
        out(b, "regigate-%s-out unix - - n - - smtp\n", r->name);
        out(b, "  -o syslog_name=postfix/regigate-%s-out\n", r->name);
        if (r->mta_hostname != NULL)
            out(b, "  -o smtp_helo_name=%s\n", r->mta_hostname);
        if (smtp_tls != NULL)
            out(b, "  -o smtp_tls_security_level=%s\n", smtp_tls);
    } else {
        if (r->mta_hostname != NULL)
            out(b, "# mta_hostname %s: this route delivers through Postfix's shared DNS/MX "
                "routing;\n# set smtp_helo_name = %s in main.cf for it to apply.\n",
                r->mta_hostname, r->mta_hostname);
        if (m->smtp_tls_security_level != NULL)
            out(b, "# smtp_tls_security_level %s: this route delivers through Postfix's shared "
                "routing;\n# set it in [mta] for it to apply.\n", m->smtp_tls_security_level);
    }

    /* 5. the route's own cleanup, for its header checks */
    if (m->header_checks != NULL) {
        out(b, "regigate-%s-cleanup unix n - n - 0 cleanup\n", r->name);
        out(b, "  -o syslog_name=postfix/regigate-%s-cleanup\n", r->name);
        out(b, "  -o header_checks=regexp:%s\n", header_checks);
    }
}

char *rg_pfgen_master(const struct rg_conf *conf)
{
    struct rg_buf b;
    size_t n;
    const struct rg_route **v = public_routes(conf, &n);

    rg_buf_init(&b, OUT_MAX);
    out(&b, "%s\n", RG_PFGEN_BEGIN);
    out(&b, "# master.cf entries of the regigate routes in %s and %s (%zu route%s);\n"
        "# see regigate-postfix(5). Change the routes with regigatectl route set, then run\n"
        "# regigatectl postfix generate --apply.\n", conf->path, conf->routes_dir, n,
        n == 1 ? "" : "s");
    for (size_t i = 0; i < n; i++)
        master_route(&b, conf, v[i]);
    out(&b, "%s\n", RG_PFGEN_END);
    rg_free(v);
    return take(&b);
}

/* Postfix's default parent_domain_matches_subdomains, with and without the
 * two lists "Match subdomains" is about. */
#define PDMS_BASE "debug_peer_list, fast_flush_domains, mynetworks, " \
    "permit_mx_backup_networks, qmqpd_authorized_clients"

/* The [mta] settings as main.cf parameters, only those that are set. */
static void main_mta(struct rg_buf *b, const struct rg_mta *m)
{
    if (m->relay_domains == NULL && m->mynetworks == NULL && m->myhostname == NULL
        && m->smtp_helo_name == NULL && m->internal_relay_host == NULL
        && m->external_relay_host == NULL && m->message_size_limit == 0
        && m->transport_maps == NULL && m->sasl_password_maps == NULL
        && m->match_subdomains < 0 && m->reject_unverified_recipient < 0
        && m->unverified_recipient_reject_code < 0 && m->header_checks == NULL
        && m->rbl == NULL && m->client_whitelist == NULL && m->client_blacklist == NULL
        && m->sender_whitelist == NULL && m->sender_blacklist == NULL
        && m->smtp_tls_security_level == NULL && m->smtpd_tls_security_level == NULL)
        return;
    out(b, "# [mta]\n");
    if (m->relay_domains != NULL) {
        out(b, "relay_domains = ");
        words(b, m->relay_domains, ", ", "", "");
        out(b, "\n");
    }
    if (m->match_subdomains >= 0)
        out(b, "parent_domain_matches_subdomains = %s%s\n", PDMS_BASE,
            m->match_subdomains ? ", relay_domains, smtpd_access_maps" : "");
    if (m->mynetworks != NULL) {
        out(b, "mynetworks = ");
        words(b, m->mynetworks, ", ", "", "");
        out(b, "\n");
    }
    if (m->myhostname != NULL)
        out(b, "myhostname = %s\n", m->myhostname);
    if (m->smtp_helo_name != NULL)
        out(b, "smtp_helo_name = %s\n", m->smtp_helo_name);
    if (m->internal_relay_host != NULL) {
        out(b, "relay_transport = relay:");
        nexthop(b, m->internal_relay_host, m->internal_relay_host_mx);
        out(b, "\n");
    }
    if (m->external_relay_host != NULL) {
        out(b, "relayhost = ");
        nexthop(b, m->external_relay_host, m->external_relay_host_mx);
        out(b, "\n");
    }
    if (m->message_size_limit != 0)
        out(b, "message_size_limit = %zu\n", m->message_size_limit);
    if (m->transport_maps != NULL)
        out(b, "transport_maps = texthash:%s\n", m->transport_maps);
    if (m->sasl_password_maps != NULL) {
        out(b, "smtp_sasl_auth_enable = yes\n");
        out(b, "smtp_sasl_password_maps = texthash:%s\n", m->sasl_password_maps);
        out(b, "smtp_sasl_security_options = noanonymous\n");
    }
    if (m->client_whitelist != NULL || m->client_blacklist != NULL || m->rbl != NULL) {
        out(b, "smtpd_client_restrictions = ");
        client_restrictions(b, m->client_whitelist, m->client_blacklist, m->rbl, ", ");
        out(b, "\n");
    }
    if (m->sender_whitelist != NULL || m->sender_blacklist != NULL) {
        out(b, "smtpd_sender_restrictions = ");
        sender_restrictions(b, m->sender_whitelist, m->sender_blacklist, ", ");
        out(b, "\n");
    }
    if (m->reject_unverified_recipient == 1)
        out(b, "smtpd_recipient_restrictions = reject_unverified_recipient\n");
    if (m->unverified_recipient_reject_code > 0)
        out(b, "unverified_recipient_reject_code = %d\n", m->unverified_recipient_reject_code);
    if (m->header_checks != NULL)
        out(b, "header_checks = regexp:%s\n", m->header_checks);
    if (m->smtp_tls_security_level != NULL)
        out(b, "smtp_tls_security_level = %s\n", m->smtp_tls_security_level);
    if (m->smtpd_tls_security_level != NULL)
        out(b, "smtpd_tls_security_level = %s\n", m->smtpd_tls_security_level);
}

char *rg_pfgen_warnings(const struct rg_conf *conf)
{
    struct rg_buf b;
    size_t largest = 0;
    const char *who = NULL;

    rg_buf_init(&b, OUT_MAX);
    for (size_t i = 0; i < conf->nroutes; i++) {
        const struct rg_route *r = &conf->routes[i];
        size_t after = rg_route_after_filter_limit(r);
        if (after < r->max_message_size)
            out(&b, "route %s: after_filter_message_size_limit (%zu) is smaller than "
                "max_message_size (%zu): encrypted messages near the limit cannot be "
                "reinjected; make it at least twice as large\n", r->name, after,
                r->max_message_size);
        if (after > largest) {
            largest = after;
            who = r->name;
        }
    }
    if (conf->mta.message_size_limit != 0 && who != NULL && conf->mta.message_size_limit < largest)
        out(&b, "[mta] message_size_limit (%zu) is smaller than the after-filter limit of route "
            "%s (%zu): Postfix's cleanup refuses such messages\n", conf->mta.message_size_limit,
            who, largest);
    if (b.len == 0) {
        rg_buf_free(&b);
        return NULL;
    }
    return take(&b);
}

char *rg_pfgen_main(const struct rg_conf *conf)
{
    struct rg_buf b;
    size_t n;
    const struct rg_route **v = public_routes(conf, &n);

    rg_buf_init(&b, OUT_MAX);
    out(&b, "%s\n", RG_PFGEN_BEGIN);
    out(&b, "# main.cf parameters of the regigate routes (%zu route%s); see regigate-postfix(5).\n",
        n, n == 1 ? "" : "s");
    main_mta(&b, &conf->mta);
    for (size_t i = 0; i < n; i++) {
        const struct rg_route *r = v[i];
        int rcpt = r->max_recipients < 100 ? r->max_recipients : 100;
        out(&b, "regigate-%s_destination_concurrency_limit = %d\n", r->name, conf->max_servers);
        out(&b, "regigate-%s_destination_recipient_limit = %d\n", r->name, rcpt);
    }
    out(&b, "%s\n", RG_PFGEN_END);
    rg_free(v);
    return take(&b);
}

/* Start of the line that is exactly marker (with its "\n" or at the end). */
static const char *find_line(const char *text, const char *marker)
{
    size_t n = strlen(marker);

    for (const char *p = text; p != NULL && *p != '\0';) {
        if (strncmp(p, marker, n) == 0 && (p[n] == '\n' || p[n] == '\0'))
            return p;
        p = strchr(p, '\n');
        if (p != NULL)
            p++;
    }
    return NULL;
}

char *rg_pfgen_merge(const char *text, const char *block)
{
    const char *begin = find_line(text, RG_PFGEN_BEGIN), *end;
    struct rg_buf b;

    rg_buf_init(&b, OUT_MAX + strlen(text));
    if (begin == NULL) {
        out(&b, "%s", text);
        if (block[0] != '\0') {
            if (b.len > 0 && b.data[b.len - 1] != '\n')
                out(&b, "\n");
            out(&b, "%s", block);
        }
        return take(&b);
    }
    end = find_line(begin, RG_PFGEN_END);
    if (end == NULL) {
        rg_buf_free(&b);
        return NULL;
    }
    end += strlen(RG_PFGEN_END);
    if (*end == '\n')
        end++;
    out(&b, "%.*s%s%s", (int)(begin - text), text, block, end);
    return take(&b);
}

char *rg_pfgen_extract(const char *text)
{
    const char *begin = find_line(text, RG_PFGEN_BEGIN), *end;

    if (begin == NULL || (end = find_line(begin, RG_PFGEN_END)) == NULL)
        return NULL;
    end += strlen(RG_PFGEN_END);
    if (*end == '\n')
        end++;
    return rg_sprintf("%.*s", (int)(end - begin), begin);
}
