/*
 * cmd_routeadm.c - regigatectl route add | list | show | set | remove: the
 * appliance's "Add Route", "MTA Milter Settings" and "Remove Route".
 *
 * A route lives in routes_dir/NAME (regigate.conf(5)):
 *   route.conf     its [route NAME] section (written last, removed first)
 *   rules.json     its rule set ({} when added)
 *   lists/         its lists
 *   key_cert.pem   key and self-signed certificate of its public smtpd
 *   provider.*     its provider key, request and certificate (cert-request)
 * "route add" builds the directory under a temporary name and renames it
 * into place, so a reload of regigated sees the route whole or not at all;
 * "route remove" renames it away first and then deletes it.
 */
#include "config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <ifaddrs.h>
#include <limits.h>
#include <netinet/in.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conffile.h"
#include "ctl.h"
#include "mem.h"
#include "routecert.h"
#include "routestate.h"
#include "routeval.h"
#include "tlscert.h"

#define ROUTE_FILE "route.conf"
/* accept_from / accept_domains lines are wrapped at this width (the
 * configuration file takes lines of up to 198 characters). */
#define WRAP 120

static const struct rg_ctl_cmd add_cmd = { "route", "add",
    "NAME --listen IP:PORT --provider HOST:PORT [--provider-ca FILE] [--process message|recipient] "
    "[--accept-from \"NET ...\"] [--accept-domains \"DOMAIN ...\"] [--max-size BYTES] "
    "[--forward-to HOST[:PORT]] [--mta-hostname NAME] [--MTA-SETTING VALUE]... [--force]", "", NULL };
static const struct rg_ctl_cmd set_cmd = { "route", "set",
    "NAME --KEY VALUE... [--force]  (KEY: listen process provider provider-ca accept-from "
    "accept-domains max-size forward-to mta-hostname, and the MTA settings of "
    "regigate-postfix(5))", "", NULL };
static const struct rg_ctl_cmd show_cmd = { "route", "show", "NAME", "", NULL };
static const struct rg_ctl_cmd list_cmd = { "route", "list", "", "", NULL };
static const struct rg_ctl_cmd remove_cmd = { "route", "remove", "NAME", "", NULL };

/* The options of add and set, and the route.conf key each one sets. */
struct opt {
    const char *name;           /* without "--" */
    const char *key;
};
static const struct opt opts[] = {
    { "listen", "public_listen" },
    { "process", "process" },
    { "provider", "provider" },
    { "provider-ca", "provider_ca" },
    { "accept-from", "accept_from" },
    { "accept-domains", "accept_domains" },
    { "max-size", "max_message_size" },
    { "forward-to", "forward_to" },
    { "mta-hostname", "mta_hostname" },
    /* MTA settings of the route (regigate-postfix(5)); checked by loading
     * the configuration afterwards */
    { "forward-to-mx", "forward_to_mx" },
    { "after-filter-size", "after_filter_message_size_limit" },
    { "match-subdomains", "match_subdomains" },
    { "reject-unverified-recipient", "reject_unverified_recipient" },
    { "unverified-recipient-reject-code", "unverified_recipient_reject_code" },
    { "header-checks", "header_checks" },
    { "rbl", "rbl" },
    { "client-whitelist", "client_whitelist" },
    { "client-blacklist", "client_blacklist" },
    { "sender-whitelist", "sender_whitelist" },
    { "sender-blacklist", "sender_blacklist" },
    { "smtp-tls-security-level", "smtp_tls_security_level" },
    { "smtpd-tls-security-level", "smtpd_tls_security_level" },
};
#define NOPTS (sizeof(opts) / sizeof(opts[0]))

struct values {
    const char *v[NOPTS];       /* as given; NULL = not given, "" = unset (set only) */
    int force;
};

static int opt_index(const char *name)
{
    for (size_t i = 0; i < NOPTS; i++)
        if (strcmp(opts[i].name, name) == 0)
            return (int)i;
    return -1;
}

static const char *val(const struct values *v, const char *name)
{
    return v->v[opt_index(name)];
}

/* "--KEY VALUE" / "--KEY=VALUE" pairs after the route name. */
static int parse_opts(int argc, char **argv, const char **name, struct values *v)
{
    memset(v, 0, sizeof(*v));
    *name = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        char opt[64];
        const char *eq;
        int k;

        if (strcmp(a, "--force") == 0) {
            v->force = 1;
            continue;
        }
        if (strncmp(a, "--", 2) != 0) {
            if (*name != NULL)
                return -1;
            *name = a;
            continue;
        }
        eq = strchr(a, '=');
        snprintf(opt, sizeof(opt), "%.*s", eq ? (int)(eq - a - 2) : (int)strlen(a + 2), a + 2);
        k = opt_index(opt);
        if (k < 0) {
            rg_ctl_error("unknown option --%s", opt);
            return -1;
        }
        if (eq != NULL) {
            v->v[k] = eq + 1;
        } else if (i + 1 < argc) {
            v->v[k] = argv[++i];
        } else {
            rg_ctl_error("--%s needs a value", opt);
            return -1;
        }
    }
    return *name != NULL ? 0 : -1;
}

/* ---- checks ------------------------------------------------------------------ */

/* Is ip (numeric) an address of one of this host's interfaces? */
static int ip_on_host(const char *ip)
{
    unsigned char want[16], have[16];
    int fam = strchr(ip, ':') != NULL ? AF_INET6 : AF_INET;
    struct ifaddrs *ifs, *i;
    int found = 0;

    if (inet_pton(fam, ip, want) != 1 || getifaddrs(&ifs) < 0)
        return 0;
    for (i = ifs; i != NULL && !found; i = i->ifa_next) {
        if (i->ifa_addr == NULL || i->ifa_addr->sa_family != fam)
            continue;
        if (fam == AF_INET)
            memcpy(have, &((struct sockaddr_in *)(void *)i->ifa_addr)->sin_addr, 4);
        else
            memcpy(have, &((struct sockaddr_in6 *)(void *)i->ifa_addr)->sin6_addr, 16);
        found = memcmp(want, have, fam == AF_INET ? 4 : 16) == 0;
    }
    freeifaddrs(ifs);
    return found;
}

static int is_wildcard(const char *ip)
{
    return strcmp(ip, "0.0.0.0") == 0 || strcmp(ip, "::") == 0;
}

/* --listen: a numeric IP:PORT of this host (unless force). */
static int check_listen(const char *s, int force, struct rg_hostport *hp)
{
    unsigned char bin[16];

    if (rg_hostport_parse(s, hp) < 0
        || (inet_pton(AF_INET, hp->host, bin) != 1 && inet_pton(AF_INET6, hp->host, bin) != 1)) {
        rg_ctl_error("--listen %s: use IP:PORT or [IPV6]:PORT with a numeric address", s);
        return -1;
    }
    if (is_wildcard(hp->host)) {
        rg_ctl_error("--listen %s: name one address; routes with the same port on different "
                     "addresses must not overlap", s);
        return -1;
    }
    if (!force && !ip_on_host(hp->host)) {
        rg_ctl_error("--listen %s: %s is not an address of this host (add it to an interface "
                     "first, or use --force)", s, hp->host);
        return -1;
    }
    return 0;
}

/* Each entry of a list option through conv; the entries joined by ' '. */
static char *check_words(const char *opt, const char *s,
                         int (*conv)(const char *, char *, size_t, char *, size_t))
{
    char *copy = rg_strdup(s), *save = NULL, *w, *out = rg_strdup("");
    char one[RG_RV_ENTRY_MAX], why[RG_RV_ENTRY_MAX + 64];

    for (w = strtok_r(copy, " \t,", &save); w != NULL; w = strtok_r(NULL, " \t,", &save)) {
        if (conv(w, one, sizeof(one), why, sizeof(why)) < 0) {
            rg_ctl_error("--%s: %s", opt, why);
            rg_free(copy);
            return rg_free(out);
        }
        char *joined = rg_sprintf("%s%s%s", out, out[0] ? " " : "", one);
        rg_free(out);
        out = joined;
    }
    rg_free(copy);
    return out;
}

static int check_size(const char *s)
{
    size_t n = strspn(s, "0123456789");

    if (n == 0 || n > 10 || (s[n] != '\0' && (strchr("kKmMgG", s[n]) == NULL || s[n + 1] != '\0'))) {
        rg_ctl_error("--max-size %s: a number of bytes, optionally with k, m or g", s);
        return -1;
    }
    return 0;
}

/* The value that goes into route.conf for option k, or NULL after an
 * error. Allocated. */
static char *conf_value(size_t k, const char *v, int force)
{
    const char *opt = opts[k].name;
    struct rg_hostport hp;
    char buf[RG_RV_ENTRY_MAX], why[RG_RV_ENTRY_MAX + 64];

    if (strcmp(opt, "listen") == 0)
        return check_listen(v, force, &hp) < 0 ? NULL : rg_strdup(v);
    if (strcmp(opt, "process") == 0) {
        if (strcmp(v, "message") != 0 && strcmp(v, "recipient") != 0) {
            rg_ctl_error("--process %s: message or recipient", v);
            return NULL;
        }
        return rg_strdup(v);
    }
    if (strcmp(opt, "provider") == 0) {
        if (rg_provider_url_check(v) < 0) {
            rg_ctl_error("--provider %s: HOST:PORT or https://HOST[:PORT]", v);
            return NULL;
        }
        return rg_strdup(v);
    }
    if (strcmp(opt, "provider-ca") == 0) {
        char *abs = realpath(v, NULL);
        if (abs == NULL) {
            rg_ctl_error("--provider-ca %s: %s", v, strerror(errno));
            return NULL;
        }
        char *copy = rg_strdup(abs);
        free(abs);
        return copy;
    }
    if (strcmp(opt, "accept-from") == 0)
        return check_words(opt, v, rg_rv_network);
    if (strcmp(opt, "accept-domains") == 0)
        return check_words(opt, v, rg_rv_domain);
    if (strcmp(opt, "max-size") == 0)
        return check_size(v) < 0 ? NULL : rg_strdup(v);
    if (strcmp(opt, "forward-to") == 0) {
        if (rg_rv_nexthop(v, buf, sizeof(buf), why, sizeof(why)) < 0) {
            rg_ctl_error("--forward-to %s", why);
            return NULL;
        }
        return rg_strdup(v);
    }
    if (strcmp(opt, "header-checks") == 0 || strstr(opt, "-whitelist") != NULL
        || strstr(opt, "-blacklist") != NULL) {
        char *abs = realpath(v, NULL), *copy;
        if (abs == NULL) {
            rg_ctl_error("--%s %s: %s", opt, v, strerror(errno));
            return NULL;
        }
        copy = rg_strdup(abs);
        free(abs);
        return copy;
    }
    if (strcmp(opt, "mta-hostname") != 0)
        return rg_strdup(v);    /* checked when the configuration is loaded again */
    if (rg_rv_domain(v, buf, sizeof(buf), why, sizeof(why)) < 0 || v[0] == '.') {
        rg_ctl_error("--mta-hostname %s: not a host name", v);
        return NULL;
    }
    return rg_strdup(v);
}

/* "key = value" line(s) for route.conf; word lists wrapped over lines. */
static void append_setting(char **text, const char *key, const char *value)
{
    int words = strcmp(key, "accept_from") == 0 || strcmp(key, "accept_domains") == 0;
    const char *p = value;
    char *t;

    if (!words || strlen(value) <= WRAP) {
        t = rg_sprintf("%s%s = %s\n", *text, key, value);
        rg_free(*text);
        *text = t;
        return;
    }
    while (*p != '\0') {
        size_t len = strlen(p);
        if (len > WRAP) {
            len = WRAP;
            while (len > 0 && p[len] != ' ')
                len--;
            if (len == 0)
                len = strcspn(p, " ");
        }
        t = rg_sprintf("%s%s = %.*s\n", *text, key, (int)len, p);
        rg_free(*text);
        *text = t;
        p += len;
        while (*p == ' ')
            p++;
    }
}

/* ---- files ------------------------------------------------------------------- */

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st; (void)flag; (void)ftw;
    if (remove(path) < 0)
        rg_ctl_error("cannot remove %s: %s", path, strerror(errno));
    return 0;
}

static void rm_tree(const char *dir)
{
    nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static int write_text(const char *dir, const char *file, const char *text, mode_t mode,
                      const struct rg_routecert_owner *owner)
{
    char err[512], *path = rg_sprintf("%s/%s", dir, file);
    int rc = rg_routecert_write_file(path, text, strlen(text), mode, owner, err, sizeof(err));

    if (rc < 0)
        rg_ctl_error("%s", err);
    rg_free(path);
    return rc;
}

static int mkdir_owned(const char *path, mode_t mode, const struct rg_routecert_owner *owner)
{
    if (mkdir(path, mode) < 0 && errno != EEXIST) {
        rg_ctl_error("cannot create %s: %s", path, strerror(errno));
        return -1;
    }
    if (owner->uid != (uid_t)-1 && chown(path, owner->uid, owner->gid) < 0) {
        rg_ctl_error("cannot chown %s: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}

/* Load the configuration again as regigated would; 0 if it is good. */
static int verify_conf(struct rg_ctl *ctl)
{
    char err[1024];
    struct rg_conf *c = rg_conf_load_flags(ctl->conf_path, RG_CONF_NO_ROUTES_OK, err, sizeof(err));

    if (c == NULL) {
        rg_ctl_error("%s", err);
        return -1;
    }
    rg_conf_free(c);
    return 0;
}

/* ---- route add -------------------------------------------------------------- */

/* The default CA of the provider: provider-ca.crt beside regigate.conf. */
static char *default_ca(const char *conf_path)
{
    const char *slash = strrchr(conf_path, '/');
    char *path = slash ? rg_sprintf("%.*s/provider-ca.crt", (int)(slash - conf_path), conf_path)
                       : rg_strdup("provider-ca.crt");

    if (access(path, R_OK) == 0) {
        char *abs = realpath(path, NULL);
        rg_free(path);
        path = rg_strdup(abs != NULL ? abs : "");
        free(abs);
        if (path[0] != '\0')
            return path;
    }
    return rg_free(path);
}

static int ports_free(const struct rg_conf *conf, int lport, int rport)
{
    for (size_t i = 0; i < conf->nroutes; i++) {
        const struct rg_route *r = &conf->routes[i];
        const struct rg_hostport *hps[] = { &r->listen, &r->reinject, &r->public_listen };
        for (size_t j = 0; j < 3; j++)
            if (rg_host_is_loopback(hps[j]->host) && (hps[j]->port == lport || hps[j]->port == rport)) {
                rg_ctl_error("port %d or %d (the ports of the new route's id) is used by route "
                             "'%s': set route_port_base in [global] to a free range",
                             lport, rport, r->name);
                return -1;
            }
    }
    return 0;
}

int rg_ctl_route_add(struct rg_ctl *ctl, int argc, char **argv)
{
    const struct rg_conf *conf;
    struct rg_routecert_owner owner;
    struct values v;
    const char *name;
    char *value[NOPTS] = { NULL }, *text = NULL, *tmpdir = NULL, *dir = NULL, *ca = NULL;
    char *pem = NULL, *p, err[512];
    int *ids = NULL, id, lport, rport, ok, rc = RG_CTL_FAIL;
    struct rg_hostport hp;

    if (parse_opts(argc, argv, &name, &v) < 0)
        return rg_ctl_usage(&add_cmd);
    if (val(&v, "listen") == NULL || val(&v, "provider") == NULL) {
        rg_ctl_error("route add needs --listen IP:PORT and --provider HOST:PORT");
        return rg_ctl_usage(&add_cmd);
    }
    if ((conf = rg_ctl_conf(ctl)) == NULL || rg_ctl_file_owner(conf, &owner) < 0)
        return RG_CTL_FAIL;
    if (strspn(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")
            != strlen(name) || strlen(name) > 64 || name[0] == '\0') {
        rg_ctl_error("invalid route name '%s': use 1 to 64 letters, digits, '_' or '-'", name);
        return RG_CTL_USAGE;
    }
    if (rg_conf_route(conf, name) != NULL) {
        rg_ctl_error("route '%s' exists already (%s)", name, rg_conf_route(conf, name)->file);
        return RG_CTL_FAIL;
    }
    for (size_t k = 0; k < NOPTS; k++) {
        if (v.v[k] == NULL)
            continue;
        if ((value[k] = conf_value(k, v.v[k], v.force)) == NULL)
            goto out;
    }
    rg_hostport_parse(v.v[opt_index("listen")], &hp);
    for (size_t i = 0; i < conf->nroutes; i++)
        if (conf->routes[i].public_listen.port == hp.port
            && strcmp(conf->routes[i].public_listen.host, hp.host) == 0) {
            rg_ctl_error("--listen %s is already the address of route '%s'",
                         v.v[opt_index("listen")], conf->routes[i].name);
            goto out;
        }
    if (value[opt_index("forward-to")] == NULL && value[opt_index("accept-from")] == NULL) {
        rg_ctl_error("route '%s' would deliver to the Internet (no --forward-to) without "
                     "--accept-from: an open relay; name the networks that may send "
                     "through it", name);
        goto out;
    }
    if (value[opt_index("accept-from")] == NULL && value[opt_index("accept-domains")] == NULL) {
        rg_ctl_error("route '%s' needs --accept-from or --accept-domains (or both; they are "
                     "OR-combined), otherwise it accepts mail for anyone from anyone", name);
        goto out;
    }
    ca = value[opt_index("provider-ca")] ? rg_strdup(value[opt_index("provider-ca")])
                                         : default_ca(conf->path);
    if (ca == NULL) {
        rg_ctl_error("route add needs --provider-ca FILE, the provider's CA certificate "
                     "(or put it in provider-ca.crt beside %s)", conf->path);
        goto out;
    }

    ids = rg_calloc(conf->nroutes + 1, sizeof(*ids));
    for (size_t i = 0; i < conf->nroutes; i++)
        ids[i] = conf->routes[i].id;
    id = rg_rv_first_free_id(ids, conf->nroutes);
    if (rg_rv_ports(id, conf->route_port_base, &lport, &rport) < 0) {
        rg_ctl_error("no loopback ports left for route id %d above route_port_base %d",
                     id, conf->route_port_base);
        goto out;
    }
    if (ports_free(conf, lport, rport) < 0)
        goto out;

    dir = rg_sprintf("%s/%s", conf->routes_dir, name);
    text = rg_sprintf("# route %s: written by \"regigatectl route add\"; change it with "
                      "\"regigatectl route set\".\n# See regigate.conf(5).\n[route %s]\n"
                      "id = %d\nlisten = 127.0.0.1:%d\nreinject = 127.0.0.1:%d\n"
                      "rules = %s/rules.json\nlists_dir = %s/lists\nprovider_ca = %s\n",
                      name, name, id, lport, rport, dir, dir, ca);
    for (size_t k = 0; k < NOPTS; k++)
        if (value[k] != NULL && strcmp(opts[k].name, "provider-ca") != 0)
            append_setting(&text, opts[k].key, value[k]);

    /* build it under a name the loader skips, then rename it into place */
    if (mkdir_owned(conf->routes_dir, 0755, &(struct rg_routecert_owner)RG_ROUTECERT_OWNER_SELF) < 0)
        goto out;
    tmpdir = rg_sprintf("%s/.%s.new-%ld", conf->routes_dir, name, (long)getpid());
    if (access(dir, F_OK) == 0) {
        rg_ctl_error("%s exists already: remove it or choose another name", dir);
        goto out;
    }
    if (mkdir_owned(tmpdir, 0700, &owner) < 0)
        goto fail;
    p = rg_sprintf("%s/lists", tmpdir);
    ok = mkdir_owned(p, 0700, &owner);
    rg_free(p);
    if (ok < 0 || write_text(tmpdir, "rules.json", "{}\n", 0600, &owner) < 0)
        goto fail;
    pem = rg_tlscert_selfsigned(value[opt_index("mta-hostname")] ? value[opt_index("mta-hostname")]
                                : conf->myhostname, RG_TLSCERT_DAYS, err, sizeof(err));
    if (pem == NULL) {
        rg_ctl_error("route %s: %s", name, err);
        goto fail;
    }
    if (write_text(tmpdir, "key_cert.pem", pem, 0600, &(struct rg_routecert_owner)RG_ROUTECERT_OWNER_SELF) < 0
        || write_text(tmpdir, ROUTE_FILE, text, 0640, &owner) < 0)
        goto fail;
    if (rename(tmpdir, dir) < 0) {
        rg_ctl_error("cannot rename %s to %s: %s", tmpdir, dir, strerror(errno));
        goto fail;
    }
    if (verify_conf(ctl) < 0) {
        rm_tree(dir);
        goto out;
    }
    printf("route %s added: id %d, public smtpd %s, regigated 127.0.0.1:%d, reinjection "
           "127.0.0.1:%d\n", name, id,
           v.v[opt_index("listen")], lport, rport);
    printf("next: regigatectl route cert-request %s (have it signed by the provider), "
           "regigatectl postfix generate --apply\n", name);
    rc = RG_CTL_OK;
    goto out;
fail:
    rm_tree(tmpdir);
out:
    pem = rg_tlscert_free(pem);
    for (size_t k = 0; k < NOPTS; k++)
        rg_free(value[k]);
    rg_free(ids);
    rg_free(ca);
    rg_free(text);
    rg_free(tmpdir);
    rg_free(dir);
    return rc;
}

/* ---- route set --------------------------------------------------------------- */

/* The route, which must live in routes_dir; NULL after saying why. */
static const struct rg_route *own_route(struct rg_ctl *ctl, const char *name)
{
    const struct rg_conf *conf = rg_ctl_conf(ctl);
    const struct rg_route *r;
    char *want;
    int ok;

    if (conf == NULL)
        return NULL;
    if ((r = rg_conf_route(conf, name)) == NULL) {
        rg_ctl_error("no route '%s' (in %s or %s)", name, conf->path, conf->routes_dir);
        return NULL;
    }
    want = rg_sprintf("%s/%s/%s", conf->routes_dir, name, ROUTE_FILE);
    ok = strcmp(want, r->file) == 0;
    rg_free(want);
    if (!ok) {
        rg_ctl_error("route '%s' is defined in %s, not in routes_dir %s: edit that file by hand",
                     name, r->file, conf->routes_dir);
        return NULL;
    }
    return r;
}

/* Does line set key ("key =" or "key:" after blanks)? */
static int line_sets(const char *line, const char *key)
{
    size_t n = strlen(key);

    while (*line == ' ' || *line == '\t')
        line++;
    if (strncmp(line, key, n) != 0)
        return 0;
    line += n;
    while (*line == ' ' || *line == '\t')
        line++;
    return *line == '=' || *line == ':';
}

static char *read_file(const char *path, size_t max)
{
    FILE *fp = fopen(path, "re");
    char *data;
    size_t n;

    if (fp == NULL) {
        rg_ctl_error("cannot read %s: %s", path, strerror(errno));
        return NULL;
    }
    data = rg_malloc(max + 1);
    n = fread(data, 1, max, fp);
    fclose(fp);
    data[n] = '\0';
    return data;
}

int rg_ctl_route_set(struct rg_ctl *ctl, int argc, char **argv)
{
    const struct rg_route *r;
    struct rg_routecert_owner owner;
    struct values v;
    const char *name;
    char *old = NULL, *text = rg_strdup(""), *bak = NULL, *value = NULL, err[512];
    int rc = RG_CTL_FAIL, any = 0;

    if (parse_opts(argc, argv, &name, &v) < 0)
        goto usage;
    for (size_t k = 0; k < NOPTS; k++)
        any |= v.v[k] != NULL;
    if (!any)
        goto usage;
    if ((r = own_route(ctl, name)) == NULL || rg_ctl_file_owner(ctl->conf, &owner) < 0)
        goto out;
    if ((old = read_file(r->file, 64 * 1024)) == NULL)
        goto out;
    /* keep every line that sets none of the keys given; then the new values */
    for (char *line = old, *nl; *line != '\0'; line = nl) {
        int drop = 0;
        nl = strchr(line, '\n');
        nl = nl != NULL ? nl + 1 : line + strlen(line);
        for (size_t k = 0; k < NOPTS && !drop; k++)
            drop = v.v[k] != NULL && line_sets(line, opts[k].key);
        if (!drop) {
            char *t = rg_sprintf("%s%.*s%s", text, (int)(nl - line), line,
                                 nl[-1] == '\n' ? "" : "\n");
            rg_free(text);
            text = t;
        }
    }
    for (size_t k = 0; k < NOPTS; k++) {
        if (v.v[k] == NULL || v.v[k][0] == '\0')    /* "" removes the setting */
            continue;
        if ((value = conf_value(k, v.v[k], v.force)) == NULL)
            goto out;
        append_setting(&text, opts[k].key, value);
        value = rg_free(value);
    }
    /* install, check the whole configuration, put the old file back if bad */
    bak = rg_sprintf("%s.bak", r->file);
    unlink(bak);
    if (link(r->file, bak) < 0) {
        rg_ctl_error("cannot keep a copy of %s: %s", r->file, strerror(errno));
        goto out;
    }
    if (rg_routecert_write_file(r->file, text, strlen(text), 0640, &owner, err, sizeof(err)) < 0) {
        rg_ctl_error("%s", err);
        unlink(bak);
        goto out;
    }
    if (verify_conf(ctl) < 0) {
        if (rename(bak, r->file) < 0)
            rg_ctl_error("cannot restore %s from %s: %s", r->file, bak, strerror(errno));
        else
            fprintf(stderr, "regigatectl: route %s: nothing changed\n", name);
        goto out;
    }
    unlink(bak);
    printf("route %s changed; apply it with: regigatectl postfix generate --apply\n", name);
    rc = RG_CTL_OK;
    goto out;
usage:
    rc = rg_ctl_usage(&set_cmd);
out:
    rg_free(value);
    rg_free(old);
    rg_free(text);
    rg_free(bak);
    return rc;
}

/* ---- route remove ------------------------------------------------------------ */

int rg_ctl_route_remove(struct rg_ctl *ctl, int argc, char **argv)
{
    const struct rg_route *r;
    char *dir, *gone;
    int rc = RG_CTL_OK;

    if (argc != 2 || argv[1][0] == '-')
        return rg_ctl_usage(&remove_cmd);
    if ((r = own_route(ctl, argv[1])) == NULL)
        return RG_CTL_FAIL;
    dir = rg_sprintf("%s/%s", ctl->conf->routes_dir, r->name);
    gone = rg_sprintf("%s/.%s.removed-%ld", ctl->conf->routes_dir, r->name, (long)getpid());
    /* the route disappears at once (rename), then its files go */
    if (rename(dir, gone) < 0) {
        rg_ctl_error("cannot remove %s: %s", dir, strerror(errno));
        rc = RG_CTL_FAIL;
    } else {
        rm_tree(gone);
        /* regigated's records of the route (routestate.h) */
        for (size_t i = 0; i < 2; i++) {
            char *state = rg_routestate_path(ctl->conf->spool_dir, r->name,
                                             i == 0 ? "rules" : "provider");
            unlink(state);
            rg_free(state);
        }
        printf("route %s removed with its rules, lists and certificates; apply it with: "
               "regigatectl postfix generate --apply\n", argv[1]);
    }
    rg_free(dir);
    rg_free(gone);
    return rc;
}

/* ---- route list / show ------------------------------------------------------- */

static void hostport_text(const struct rg_hostport *hp, char *buf, size_t len)
{
    if (hp->port == 0)
        snprintf(buf, len, "-");
    else if (strchr(hp->host, ':') != NULL)
        snprintf(buf, len, "[%s]:%d", hp->host, hp->port);
    else
        snprintf(buf, len, "%s:%d", hp->host, hp->port);
}

int rg_ctl_route_list(struct rg_ctl *ctl, int argc, char **argv)
{
    const struct rg_conf *conf;
    char pub[300], lis[300], rei[300], id[16];

    (void)argv;
    if (argc != 1)
        return rg_ctl_usage(&list_cmd);
    if ((conf = rg_ctl_conf(ctl)) == NULL)
        return RG_CTL_FAIL;
    printf("%-4s %-20s %-24s %-18s %-18s %s\n", "ID", "NAME", "PUBLIC", "FILTER", "REINJECT",
           "FORWARD-TO");
    for (size_t i = 0; i < conf->nroutes; i++) {
        const struct rg_route *r = &conf->routes[i];
        hostport_text(&r->public_listen, pub, sizeof(pub));
        hostport_text(&r->listen, lis, sizeof(lis));
        hostport_text(&r->reinject, rei, sizeof(rei));
        snprintf(id, sizeof(id), "%d", r->id);
        printf("%-4s %-20s %-24s %-18s %-18s %s\n", r->id ? id : "-", r->name, pub, lis, rei,
               r->public_listen.port == 0 ? "-" : r->forward_to ? r->forward_to : "DNS/MX");
    }
    return fflush(stdout) == 0 ? RG_CTL_OK : RG_CTL_FAIL;
}

int rg_ctl_route_show(struct rg_ctl *ctl, int argc, char **argv)
{
    const struct rg_conf *conf;
    const struct rg_route *r;
    char buf[300];

    if (argc != 2 || argv[1][0] == '-')
        return rg_ctl_usage(&show_cmd);
    if ((conf = rg_ctl_conf(ctl)) == NULL)
        return RG_CTL_FAIL;
    if ((r = rg_conf_route(conf, argv[1])) == NULL) {
        rg_ctl_error("no route '%s' (in %s or %s)", argv[1], conf->path, conf->routes_dir);
        return RG_CTL_FAIL;
    }
    printf("# %s\n[route %s]\n", r->file, r->name);
    if (r->id)
        printf("id = %d\n", r->id);
    hostport_text(&r->listen, buf, sizeof(buf));
    printf("listen = %s\n", buf);
    printf("protocol = %s\n", r->protocol == RG_PROTO_LMTP ? "lmtp" : "smtp");
    hostport_text(&r->reinject, buf, sizeof(buf));
    printf("reinject = %s\n", buf);
    printf("process = %s\n", r->process == RG_PROCESS_RECIPIENT ? "recipient" : "message");
    printf("max_message_size = %zu\n", r->max_message_size);
    printf("max_recipients = %d\n", r->max_recipients);
    if (r->rules)
        printf("rules = %s\n", r->rules);
    if (r->lists_dir)
        printf("lists_dir = %s\n", r->lists_dir);
    if (r->provider)
        printf("provider = %s\n", r->provider);
    if (r->provider_ca)
        printf("provider_ca = %s\n", r->provider_ca);
    printf("cert_dir = %s\n", r->cert_dir);
    if (r->public_listen.port != 0) {
        hostport_text(&r->public_listen, buf, sizeof(buf));
        printf("public_listen = %s\n", buf);
    }
    if (r->accept_from)
        printf("accept_from = %s\n", r->accept_from);
    if (r->accept_domains)
        printf("accept_domains = %s\n", r->accept_domains);
    if (r->forward_to)
        printf("forward_to = %s\n", r->forward_to);
    if (r->mta_hostname)
        printf("mta_hostname = %s\n", r->mta_hostname);
    return fflush(stdout) == 0 ? RG_CTL_OK : RG_CTL_FAIL;
}
