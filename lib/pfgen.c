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

/* Growth by encryption: the reinjection smtpd takes twice the public limit. */
#define AFTER_FILTER_FACTOR 2

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

static void master_route(struct rg_buf *b, const struct rg_conf *conf, const struct rg_route *r)
{
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
    out(b, "  -o smtpd_client_restrictions=\n");
    out(b, "  -o smtpd_helo_restrictions=\n");
    out(b, "  -o smtpd_sender_restrictions=\n");
    out(b, "  -o mynetworks=");
    words(b, r->accept_from, ",", "", "");
    out(b, "\n");
    out(b, "  -o parent_domain_matches_subdomains=\n");
    out(b, "  -o smtpd_relay_restrictions=");
    if (r->accept_from != NULL)
        out(b, "permit_mynetworks,");
    if (r->accept_domains != NULL) {
        out(b, "check_recipient_access,inline:{");
        words(b, r->accept_domains, ",", "", "=OK");
        out(b, "},");
    }
    out(b, "reject\n");
    out(b, "  -o smtpd_recipient_restrictions=\n");
    out(b, "  -o message_size_limit=%zu\n", r->max_message_size);
    out(b, "  -o smtpd_tls_security_level=may\n");
    out(b, "  -o smtpd_tls_chain_files=%s/key_cert.pem\n", r->cert_dir);
    out(b, "  -o smtpd_tls_received_header=yes\n");

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
    if (r->forward_to != NULL)
        out(b, "  -o content_filter=regigate-%s-out:%s\n", r->name, r->forward_to);
    else
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
    out(b, "  -o message_size_limit=%zu\n", r->max_message_size * AFTER_FILTER_FACTOR);
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
    } else if (r->mta_hostname != NULL) {
        out(b, "# mta_hostname %s: this route delivers through Postfix's shared DNS/MX "
            "routing;\n# set smtp_helo_name = %s in main.cf for it to apply.\n",
            r->mta_hostname, r->mta_hostname);
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

char *rg_pfgen_main(const struct rg_conf *conf)
{
    struct rg_buf b;
    size_t n;
    const struct rg_route **v = public_routes(conf, &n);

    rg_buf_init(&b, OUT_MAX);
    out(&b, "%s\n", RG_PFGEN_BEGIN);
    out(&b, "# main.cf parameters of the regigate routes (%zu route%s); see regigate-postfix(5).\n",
        n, n == 1 ? "" : "s");
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
