/*
 * cmd_route.c - regigatectl route cert-request | cert-import | status |
 * check-provider: the gateway side of a route's enrolment with its key
 * provider (the appliance's "Show Certificate Request" and "Import Signed
 * Certificate"), and checks of the result.
 *
 * The files belong to regigated: when regigatectl runs as root and
 * [global] names a user, the files it writes are given to that user, so
 * that the workers can still read them after dropping privileges.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "conffile.h"
#include "ctl.h"
#include "mem.h"
#include "provider_client.h"
#include "lists.h"
#include "routecert.h"
#include "routestate.h"
#include "rules.h"

#define MAX_SANS 32

static const struct rg_ctl_cmd request_cmd = { "route", "cert-request",
    "ROUTE [--cn NAME] [--san NAME]...", "", NULL };
static const struct rg_ctl_cmd import_cmd = { "route", "cert-import", "ROUTE < signed.crt", "", NULL };
static const struct rg_ctl_cmd status_cmd = { "route", "status", "[ROUTE]", "", NULL };
static const struct rg_ctl_cmd check_cmd = { "route", "check-provider", "ROUTE", "", NULL };

/* The route named on the command line; NULL after saying why. */
static const struct rg_route *find_route(struct rg_ctl *ctl, const char *name)
{
    const struct rg_conf *conf = rg_ctl_conf(ctl);
    const struct rg_route *r;

    if (conf == NULL)
        return NULL;
    r = rg_conf_route(conf, name);
    if (r == NULL)
        rg_ctl_error("no route '%s' in %s", name, conf->path);
    return r;
}

int rg_ctl_file_owner(const struct rg_conf *conf, struct rg_routecert_owner *owner)
{
    const struct passwd *pw;

    owner->uid = (uid_t)-1;
    owner->gid = (gid_t)-1;
    if (geteuid() != 0 || conf->user == NULL)
        return 0;
    pw = getpwnam(conf->user);
    if (pw == NULL) {
        rg_ctl_error("unknown user '%s' (user in %s)", conf->user, conf->path);
        return -1;
    }
    owner->uid = pw->pw_uid;
    owner->gid = pw->pw_gid;
    return 0;
}

int rg_ctl_route_cert_request(struct rg_ctl *ctl, int argc, char **argv)
{
    const char *name = NULL, *cn = NULL;
    const char *sans[MAX_SANS];
    size_t nsans = 0;
    const struct rg_route *r;
    struct rg_routecert_owner owner;
    char err[512], *csr, *csr_path;
    int created, rc;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--cn") == 0 && i + 1 < argc) {
            cn = argv[++i];
        } else if (strcmp(argv[i], "--san") == 0 && i + 1 < argc) {
            if (nsans == MAX_SANS) {
                rg_ctl_error("at most %d --san names", MAX_SANS);
                return RG_CTL_USAGE;
            }
            sans[nsans++] = argv[++i];
        } else if (argv[i][0] == '-' || name != NULL) {
            return rg_ctl_usage(&request_cmd);
        } else {
            name = argv[i];
        }
    }
    if (name == NULL)
        return rg_ctl_usage(&request_cmd);
    r = find_route(ctl, name);
    if (r == NULL || rg_ctl_file_owner(ctl->conf, &owner) < 0)
        return RG_CTL_FAIL;
    if (cn == NULL)
        cn = r->name;
    if (nsans == 0)
        sans[nsans++] = ctl->conf->myhostname;      /* the host's name by default */

    if (rg_routecert_mkdir(r->cert_dir, &owner, err, sizeof(err)) < 0
        || rg_routecert_key_ensure(r->provider_key, &owner, &created, err, sizeof(err)) < 0) {
        rg_ctl_error("route %s: %s", r->name, err);
        return RG_CTL_FAIL;
    }
    if (created)
        fprintf(stderr, "regigatectl: route %s: created a new key (EC P-256) in %s\n",
                r->name, r->provider_key);
    csr = rg_routecert_csr(r->provider_key, cn, sans, nsans, err, sizeof(err));
    if (csr == NULL) {
        rg_ctl_error("route %s: %s", r->name, err);
        return RG_CTL_FAIL;
    }
    csr_path = rg_routecert_csr_path(r);
    rc = rg_routecert_write_file(csr_path, csr, strlen(csr), 0644, &owner, err, sizeof(err));
    if (rc < 0) {
        rg_ctl_error("route %s: %s", r->name, err);
    } else {
        fputs(csr, stdout);
        fprintf(stderr, "regigatectl: route %s: request also written to %s; give it to the "
                "provider's administrator (regigate-provider gateway sign), then import the "
                "signed certificate with: regigatectl route cert-import %s < signed.crt\n",
                r->name, csr_path, r->name);
    }
    rg_free(csr_path);
    rg_free(csr);
    if (fflush(stdout) != 0) {
        rg_ctl_error("cannot write the request: %s", strerror(errno));
        return RG_CTL_FAIL;
    }
    return rc < 0 ? RG_CTL_FAIL : RG_CTL_OK;
}

/* All of standard input, at most max bytes; NULL after saying why. */
static char *read_stdin(size_t max, size_t *len)
{
    char *data = rg_malloc(max + 2);

    *len = fread(data, 1, max + 1, stdin);
    if (ferror(stdin)) {
        rg_ctl_error("cannot read standard input: %s", strerror(errno));
        return rg_free(data);
    }
    if (*len > max) {
        rg_ctl_error("standard input is longer than %zu bytes: not a certificate", max);
        return rg_free(data);
    }
    data[*len] = '\0';
    return data;
}

int rg_ctl_route_cert_import(struct rg_ctl *ctl, int argc, char **argv)
{
    const struct rg_route *r;
    struct rg_routecert_owner owner;
    struct rg_routecert_info info;
    char err[512], *pem;
    size_t len;
    int rc = RG_CTL_FAIL;

    if (argc != 2 || argv[1][0] == '-')
        return rg_ctl_usage(&import_cmd);
    r = find_route(ctl, argv[1]);
    if (r == NULL || rg_ctl_file_owner(ctl->conf, &owner) < 0)
        return RG_CTL_FAIL;
    if (r->provider_ca == NULL) {
        rg_ctl_error("route %s has no provider_ca: set it in %s to the provider's CA "
                     "certificate, which the certificate must chain to", r->name, ctl->conf->path);
        return RG_CTL_FAIL;
    }
    if (access(r->provider_key, F_OK) < 0 && errno == ENOENT) {
        rg_ctl_error("route %s has no key yet (%s): run \"regigatectl route cert-request %s\" "
                     "first and have that request signed", r->name, r->provider_key, r->name);
        return RG_CTL_FAIL;
    }
    pem = read_stdin(RG_ROUTECERT_MAX, &len);
    if (pem == NULL)
        return RG_CTL_FAIL;
    if (rg_routecert_check(pem, len, r->provider_key, r->provider_ca, time(NULL), &info,
                           err, sizeof(err)) < 0) {
        rg_ctl_error("route %s: certificate refused: %s", r->name, err);
    } else if (rg_routecert_install(r->provider_cert, r->provider_key, pem, len, &owner,
                                    err, sizeof(err)) < 0) {
        rg_ctl_error("route %s: %s", r->name, err);
    } else {
        printf("route %s: certificate installed in %s (%s, expires %s)\n", r->name,
               r->provider_cert, info.subject, info.not_after);
        rc = RG_CTL_OK;
    }
    rg_free(pem);
    return rc;
}

static const char *protocol_name(enum rg_protocol p)
{
    return p == RG_PROTO_LMTP ? "lmtp" : "smtp";
}

static const char *process_name(enum rg_process p)
{
    return p == RG_PROCESS_RECIPIENT ? "recipient" : "message";
}

static void hostport(const struct rg_hostport *hp, char *buf, size_t len)
{
    if (strchr(hp->host, ':') != NULL)
        snprintf(buf, len, "[%s]:%d", hp->host, hp->port);
    else
        snprintf(buf, len, "%s:%d", hp->host, hp->port);
}

/* "2025-05-04 10:35:01 UTC (3 minutes ago)" */
static void when_text(time_t t, char *buf, size_t len)
{
    struct tm tm;
    char date[32];
    long long ago = (long long)(time(NULL) - t);

    gmtime_r(&t, &tm);
    strftime(date, sizeof(date), "%Y-%m-%d %H:%M:%S UTC", &tm);
    if (ago < 0)
        snprintf(buf, len, "%s", date);
    else if (ago < 120)
        snprintf(buf, len, "%s (%lld seconds ago)", date, ago);
    else if (ago < 7200)
        snprintf(buf, len, "%s (%lld minutes ago)", date, ago / 60);
    else if (ago < 2 * 86400)
        snprintf(buf, len, "%s (%lld hours ago)", date, ago / 3600);
    else
        snprintf(buf, len, "%s (%lld days ago)", date, ago / 86400);
}

long rg_ctl_regigated_pid(const struct rg_conf *conf)
{
    FILE *fp = fopen(conf->pid_file, "re");
    long pid = 0;

    if (fp == NULL)
        return 0;
    if (fscanf(fp, "%ld", &pid) != 1 || pid <= 1)
        pid = 0;
    fclose(fp);
    if (pid > 0 && kill((pid_t)pid, 0) < 0 && errno == ESRCH)
        pid = 0;
    return pid;
}

int rg_ctl_rules_in_use(const struct rg_conf *conf, const struct rg_route *r, char *msg,
                        size_t len)
{
    struct rg_routestate_rules st;
    char fp[65], err[512], when[96];
    char *path;
    int rc;

    if (rg_ctl_regigated_pid(conf) == 0) {
        snprintf(msg, len, "unknown: regigated is not running");
        return -1;
    }
    if (rg_routestate_fingerprint(r->rules, r->lists_dir, fp, err, sizeof(err)) < 0) {
        snprintf(msg, len, "unknown: %s", err);
        return -1;
    }
    path = rg_routestate_path(conf->spool_dir, r->name, "rules");
    rc = rg_routestate_read_rules(path, &st);
    if (rc < 0) {
        snprintf(msg, len, "unknown: regigated has recorded no load of route %s in %s (%s): it "
                 "has not been reloaded since the route was added, or it is older than this "
                 "regigatectl", r->name, path, errno == ENOENT ? "no such file" : strerror(errno));
        rg_free(path);
        return -1;
    }
    rg_free(path);
    when_text(st.loaded, when, sizeof(when));
    if (strcmp(st.fingerprint, fp) == 0) {
        snprintf(msg, len, "yes, loaded by regigated %s, %zu rule%s", when, st.nrules,
                 st.nrules == 1 ? "" : "s");
        return 1;
    }
    snprintf(msg, len, "no: the rules or lists changed after regigated loaded them %s; it "
             "reloads on SIGHUP (rules import and lists commands send it), and a refused "
             "reload is in its log", when);
    return 0;
}

static void quiet_diag(void *ctx, enum rg_diag_severity sev, const char *file, int line, int col,
                       const char *msg)
{
    char *first = ctx;

    if (sev == RG_DIAG_ERROR && first[0] == '\0') {
        if (line > 0)
            snprintf(first, 512, "%s:%d:%d: %s", file, line, col, msg);
        else
            snprintf(first, 512, "%s: %s", file, msg);
    }
}

static int by_name(const struct dirent **a, const struct dirent **b)
{
    return strcmp((*a)->d_name, (*b)->d_name);
}

static int list_file(const struct dirent *d)
{
    return d->d_name[0] != '.';
}

/* "lists: NAME (N entries, used), ..." */
static void print_lists(const struct rg_route *r, const struct rg_rules *rules)
{
    struct dirent **names = NULL;
    int n = r->lists_dir != NULL ? scandir(r->lists_dir, &names, list_file, by_name) : 0;

    if (n < 0 && errno != ENOENT) {
        printf("lists: cannot read %s: %s\n", r->lists_dir, strerror(errno));
        return;
    }
    if (n <= 0) {
        printf("lists: none\n");
        free(names);
        return;
    }
    printf("lists:");
    for (int i = 0; i < n; i++) {
        char *path = rg_sprintf("%s/%s", r->lists_dir, names[i]->d_name), first[512] = "";
        struct rg_list *l = rg_list_load(path, names[i]->d_name, quiet_diag, first);
        int used = 0;
        for (const char *const *u = rg_rules_lists(rules); rules != NULL && *u != NULL; u++)
            used |= strcmp(*u, names[i]->d_name) == 0;
        if (l != NULL)
            printf("%s %s (%zu entr%s, %s)", i ? "," : "", names[i]->d_name, rg_list_count(l),
                   rg_list_count(l) == 1 ? "y" : "ies", used ? "used" : "not used");
        else
            printf("%s %s (unreadable)", i ? "," : "", names[i]->d_name);
        rg_list_free(l);
        rg_free(path);
        free(names[i]);
    }
    free(names);
    putchar('\n');
}

static void print_listener(const char *what, const struct rg_hostport *hp)
{
    char addr[300], msg[512];

    hostport(hp, addr, sizeof(addr));
    if (rg_ctl_probe_smtp(hp, msg, sizeof(msg)) == 0)
        printf("%s: up (%s answers: %s)\n", what, addr, msg);
    else
        printf("%s: down (%s: %s)\n", what, addr, msg);
}

static void print_status(const struct rg_conf *conf, const struct rg_route *r)
{
    struct rg_routecert_info info;
    struct rg_rules *rules = NULL;
    char reason[512], addr[300], msg[1024], first[512] = "";
    time_t contact;

    printf("route: %s\n", r->name);
    hostport(&r->listen, addr, sizeof(addr));
    printf("listen: %s\n", addr);
    hostport(&r->reinject, addr, sizeof(addr));
    printf("reinject: %s\n", addr);
    printf("protocol: %s\n", protocol_name(r->protocol));
    printf("process: %s\n", process_name(r->process));
    if (r->rules == NULL) {
        printf("rules: none (every message is forwarded)\n");
    } else if ((rules = rg_rules_load_file(r->rules, r->lists_dir, quiet_diag, first)) == NULL) {
        printf("rules: %s (does not load: %s)\n", r->rules, first);
    } else {
        printf("rules: %s (%zu rule%s)\n", r->rules, rg_rules_count(rules),
               rg_rules_count(rules) == 1 ? "" : "s");
    }
    rg_ctl_rules_in_use(conf, r, msg, sizeof(msg));
    printf("rules in use: %s\n", msg);
    print_lists(r, rules);
    rg_rules_free(rules);
    printf("provider: %s\n", r->provider != NULL ? r->provider : "none");
    printf("provider_ca: %s\n", r->provider_ca != NULL ? r->provider_ca : "none");
    printf("key: %s (%s)\n", r->provider_key,
           access(r->provider_key, F_OK) == 0 ? "present" : "absent");
    if (rg_routecert_status(r, &info, reason, sizeof(reason)) == RG_ROUTECERT_DONE)
        printf("certificate: Done (%s, expires %s)\n", info.subject, info.not_after);
    else
        printf("certificate: Needed (%s)\n", reason);
    if (r->provider == NULL)
        printf("provider contact: none (no provider)\n");
    else if (rg_routestate_last_contact(r->provider_contact_file, &contact) == 0) {
        when_text(contact, msg, sizeof(msg));
        printf("provider contact: %s\n", msg);
    } else if (errno == ENOENT)
        printf("provider contact: none recorded (%s)\n", r->provider_contact_file);
    else
        printf("provider contact: unknown (%s: %s)\n", r->provider_contact_file, strerror(errno));
    print_listener("listener", &r->listen);
    if (r->public_listen.port != 0)
        print_listener("public", &r->public_listen);
    print_listener("reinjection", &r->reinject);
}

int rg_ctl_route_status(struct rg_ctl *ctl, int argc, char **argv)
{
    const struct rg_conf *conf;
    const struct rg_route *r;

    if (argc > 2 || (argc == 2 && argv[1][0] == '-'))
        return rg_ctl_usage(&status_cmd);
    if (argc == 2) {
        r = find_route(ctl, argv[1]);
        if (r == NULL)
            return RG_CTL_FAIL;
        print_status(ctl->conf, r);
    } else {
        conf = rg_ctl_conf(ctl);
        if (conf == NULL)
            return RG_CTL_FAIL;
        for (size_t i = 0; i < conf->nroutes; i++) {
            if (i > 0)
                putchar('\n');
            print_status(conf, &conf->routes[i]);
        }
    }
    return fflush(stdout) == 0 ? RG_CTL_OK : RG_CTL_FAIL;
}

int rg_ctl_provider_health(const struct rg_conf *conf, const struct rg_route *r,
                           char *msg, size_t len)
{
    struct rg_provider_config cfg;
    struct rg_provider_info info;
    struct rg_provider *p;
    enum rg_provider_status st;
    long long gateway = 0;
    char err[512];
    int n;

    if (r->provider == NULL || r->provider_ca == NULL) {
        snprintf(msg, len, "route %s has no %s in %s", r->name,
                 r->provider == NULL ? "provider" : "provider_ca", conf->path);
        return -1;
    }
    if (access(r->provider_cert, F_OK) < 0) {
        snprintf(msg, len, "route %s has no certificate (%s): run \"regigatectl route "
                 "cert-request %s\", have the request signed and import it with \"regigatectl "
                 "route cert-import %s\"", r->name, r->provider_cert, r->name, r->name);
        return -1;
    }
    memset(&cfg, 0, sizeof(cfg));
    cfg.url = r->provider;
    cfg.ca_file = r->provider_ca;
    cfg.cert_file = r->provider_cert;
    cfg.key_file = r->provider_key;
    cfg.connect_timeout_ms = 1000L * r->provider_connect_timeout;
    cfg.timeout_ms = 1000L * r->provider_timeout;
    p = rg_provider_new(&cfg, err, sizeof(err));
    if (p == NULL) {
        snprintf(msg, len, "%s", err);
        return -1;
    }
    memset(&info, 0, sizeof(info));
    st = rg_provider_health(p, &gateway, &info);
    rg_provider_free(p);
    if (st == RG_PROVIDER_OK) {
        snprintf(msg, len, "%s accepts route %s as gateway %lld", r->provider, r->name, gateway);
        return 0;
    }
    n = snprintf(msg, len, "%s: %s", r->provider, rg_provider_strerror(st));
    if (n < 0 || (size_t)n >= len)
        return -1;
    if (info.reason[0] != '\0')
        snprintf(msg + n, len - (size_t)n, ": %s", info.reason);
    else if (info.http_status != 0)
        snprintf(msg + n, len - (size_t)n, " (HTTP %ld%s%s)", info.http_status,
                 info.code[0] ? ", " : "", info.code);
    return -1;
}

int rg_ctl_route_check_provider(struct rg_ctl *ctl, int argc, char **argv)
{
    const struct rg_route *r;
    char msg[1024];

    if (argc != 2 || argv[1][0] == '-')
        return rg_ctl_usage(&check_cmd);
    r = find_route(ctl, argv[1]);
    if (r == NULL)
        return RG_CTL_FAIL;
    if (rg_ctl_provider_health(ctl->conf, r, msg, sizeof(msg)) == 0) {
        printf("OK: %s\n", msg);
        return RG_CTL_OK;
    }
    printf("FAILED: %s\n", msg);
    return RG_CTL_FAIL;
}
