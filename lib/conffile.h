/*
 * conffile.h - regigate.conf(5): the INI-style configuration of regigated.
 *
 * rg_conf_load() parses and validates regigate.conf and then every
 * routes_dir/NAME/route.conf (one [route NAME] section each, in the order
 * of the names); on any problem it returns NULL and writes
 * "FILE:LINE: message" into err, FILE being the file at fault. Unknown sections
 * and keys are errors (a typo must not silently fall back to a default).
 * A loaded configuration is immutable; SIGHUP loads a new one and swaps.
 */
#ifndef RG_CONFFILE_H
#define RG_CONFFILE_H

#include <stddef.h>

enum rg_protocol { RG_PROTO_SMTP, RG_PROTO_LMTP };
enum rg_process { RG_PROCESS_MESSAGE, RG_PROCESS_RECIPIENT };

struct rg_hostport {
    char host[256];   /* numeric IPv4/IPv6 address or host name, no brackets */
    int port;         /* 1..65535 */
};

/*
 * CipherMail-style MTA settings (regigate.conf(5) "[mta]", regigate-postfix(5)
 * "MTA SETTINGS"). [mta] gives main.cf's parameters and the defaults of
 * every route; a route's own keys (the ones marked "route too") override
 * them on the route's services. Unset: pointers NULL, ints -1, sizes 0.
 */
struct rg_mta {
    char *relay_domains;            /* domains, ' '-separated (".d" = subdomains) */
    char *mynetworks;               /* networks, mynetworks notation, ' '-separated */
    char *myhostname;
    char *smtp_helo_name;
    char *internal_relay_host;      /* "[host]:port" (rg_rv_nexthop) */
    int internal_relay_host_mx;     /* yes: MX lookup (no brackets) */
    char *external_relay_host;
    int external_relay_host_mx;
    size_t message_size_limit;      /* main.cf's: every message, after the filter too */
    char *transport_maps;           /* file, transport(5) */
    char *sasl_password_maps;       /* file, mode 0600: "[host]:port user:password" */
    /* route too */
    int match_subdomains;           /* accept_domains / relay_domains entries match subdomains */
    int reject_unverified_recipient;
    int unverified_recipient_reject_code;   /* 450 or 550 */
    char *header_checks;            /* file, header_checks(5) regexp table */
    char *rbl;                      /* "host[=d.d.d.d]" entries, ' '-separated */
    char *client_whitelist;         /* files, access(5) tables keyed by client address */
    char *client_blacklist;
    char *sender_whitelist;         /* files, access(5) tables keyed by sender address */
    char *sender_blacklist;
    char *smtp_tls_security_level;  /* delivery: none may encrypt dane ... */
    char *smtpd_tls_security_level; /* receiving: none may encrypt */
};

struct rg_route {
    char *name;                     /* [route NAME]: [A-Za-z0-9_.-]{1,64} */
    int line;                       /* line of the section header */
    struct rg_hostport listen;      /* required */
    enum rg_protocol protocol;      /* default smtp */
    struct rg_hostport reinject;    /* required */
    enum rg_process process;        /* default message */
    size_t max_message_size;        /* bytes, default 52428800 (50 MiB) */
    int max_recipients;             /* default 1000 */
    char *rules;                    /* rule set file (regigate-rules(5)); NULL = {} */
    char *lists_dir;                /* directory of the lists the rules name */
    size_t max_header_size;         /* header section limit, default 1 MiB */
    /* The key provider (doc/provider-protocol.md). After loading, cert_dir,
     * provider_cert and provider_key are never NULL (defaults filled in). */
    char *provider;                 /* "https://host[:port]"; NULL = none */
    char *provider_ca;              /* the provider CA (PEM); required with provider */
    char *cert_dir;                 /* default /etc/regigate/routes/NAME */
    char *provider_cert;            /* default cert_dir/provider.crt */
    char *provider_key;             /* default cert_dir/provider.key */
    int provider_connect_timeout;   /* seconds, default 10 */
    int provider_timeout;           /* seconds for a whole request, default 30 */
    int account_cache_ttl;          /* seconds an account "yes" is cached, default 300 */
    int account_cache_negative_ttl; /* seconds a "no account" is cached, default 60 */
    /* The outer message of an encrypted mail (doc/message-format.md). */
    int hide_subject;               /* replace the outer Subject, default no */
    char *hidden_subject;           /* its replacement; NULL = "Encrypted message" */
    /* regigated's record of the last provider answer (routestate.h):
     * spool_dir/route-NAME.provider, filled in when loaded; give it to the
     * provider client as contact_file. */
    char *provider_contact_file;
    /* Where the route was defined: regigate.conf or routes_dir/NAME/route.conf. */
    char *file;
    /* The Postfix side of the route (regigatectl postfix generate; regigated
     * does not use these). A route has one when public_listen is set. */
    int id;                         /* 1, 2, ...; 0 = none */
    struct rg_hostport public_listen; /* the public smtpd; port 0 = none */
    char *accept_from;              /* networks, mynetworks notation, ' '-separated */
    char *accept_domains;           /* recipient domains, ' '-separated */
    char *forward_to;               /* "[host]:port" next hop; NULL = DNS/MX */
    char *mta_hostname;             /* HELO name when delivering; NULL = Postfix's */
    int forward_to_mx;              /* yes: forward_to's MX records (no brackets) */
    size_t after_filter_message_size_limit; /* reinjection smtpd; 0 = 2 x max_message_size */
    struct rg_mta mta;              /* route overrides of [mta] (route keys only) */
};

struct rg_conf {
    char *path;
    /* [global] */
    char *user;                 /* drop to this user after binding; NULL = stay */
    char *spool_dir;            /* default /var/spool/regigate */
    char *pid_file;             /* default /run/regigate/regigated.pid */
    char *myhostname;           /* greeting/EHLO name; default gethostname() */
    char *syslog_facility;      /* default "mail" */
    int allow_remote_listen;    /* default 0: only loopback listen addresses */
    int max_servers;            /* default 8 */
    int min_spare_servers;      /* default 1 */
    int max_spare_servers;      /* default 4 */
    int max_requests;           /* connections per child, default 1000 */
    int child_timeout;          /* seconds, default 540 */
    int smtp_timeout;           /* seconds, default 300 */
    int reinject_timeout;       /* seconds, default 120 */
    int shutdown_timeout;       /* seconds, default 60 */
    size_t spool_memory_limit;  /* bytes kept in memory before spooling, default 131072 */
    char *routes_dir;           /* one NAME/route.conf per route, default /etc/regigate/routes */
    int route_port_base;        /* regigatectl's first loopback port, default 10025 */

    struct rg_mta mta;          /* [mta] */

    struct rg_route *routes;
    size_t nroutes;
};

struct rg_conf *rg_conf_load(const char *path, char *err, size_t errlen);
/* rg_conf_load with flags: RG_CONF_NO_ROUTES_OK accepts a configuration
 * without routes (regigatectl, before the first "route add"). */
#define RG_CONF_NO_ROUTES_OK 1
struct rg_conf *rg_conf_load_flags(const char *path, int flags, char *err, size_t errlen);
struct rg_conf *rg_conf_free(struct rg_conf *conf);
const struct rg_route *rg_conf_route(const struct rg_conf *conf, const char *name);

/* An rg_mta with everything unset. */
void rg_mta_init(struct rg_mta *m);
/* The effective after-filter limit of a route (its reinjection smtpd). */
size_t rg_route_after_filter_limit(const struct rg_route *r);

/* "host:port" or "[v6addr]:port" -> hp. 0 ok, -1 bad syntax or port. */
int rg_hostport_parse(const char *s, struct rg_hostport *hp);
/* Is s a provider URL: "https://HOST[:PORT][/]" or "HOST:PORT", HOST a host
 * name, an IPv4 address or a bracketed IPv6 address? 0 ok, -1 not. */
int rg_provider_url_check(const char *s);
/* Is host a loopback address (127.0.0.0/8, ::1) or "localhost"? */
int rg_host_is_loopback(const char *host);

#endif
