/*
 * cmd_diagnose.c - regigatectl diagnose [ROUTE]: the appliance's "Run
 * Diagnostics". Every check prints one line
 *
 *     OK   CHECK: what was found
 *     WARN CHECK: what was found
 *          remedy: what to do
 *
 * (FAIL like WARN; NOTE for a check that cannot run here, e.g. without a
 * DNS resolver) and the command exits 1 when any check failed. The
 * measuring is done here; the verdicts are lib/diagcheck.c's.
 *
 * What is checked, in this order: the configuration loads; regigated
 * runs; the spool directory's mode, owner and free space; Postfix (its
 * main.cf and master.cf carry the block regigatectl postfix generate would
 * write now, the block's parameters are in effect, message_size_limit is
 * at least twice the largest route limit, Postfix runs); then per route:
 * the rules load, regigated's listener, the public smtpd and the
 * reinjection smtpd answer 220, the provider accepts the route's
 * certificate (GET /v1/health), the certificates' expiry, the private
 * keys' modes; finally forward and reverse DNS of the host names.
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pwd.h>
#include <resolv.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "conffile.h"
#include "ctl.h"
#include "diagcheck.h"
#include "log.h"
#include "mem.h"
#include "netio.h"
#include "pfgen.h"
#include "routecert.h"
#include "rules.h"
#include "tlscert.h"

#define CONNECT_TIMEOUT_MS 3000
#define GREETING_TIMEOUT_MS 5000
#define CAPTURE_MAX (1024u * 1024)
#define MAX_NAMES 64
#define MAX_ADDRS 16

static const struct rg_ctl_cmd diagnose_cmd = { "diagnose", NULL,
    "[ROUTE] [--postfix-dir DIR] [--no-dns]", "", NULL };

struct diag {
    int count[RG_DC_FAIL + 1];
};

static void print(struct diag *d, const char *check, const struct rg_dc_result *res)
{
    d->count[res->level]++;
    printf("%-4s %s: %s\n", rg_dc_level_name(res->level), check, res->detail);
    if (res->level != RG_DC_OK && res->remedy[0] != '\0')
        printf("     remedy: %s\n", res->remedy);
}

static void say(struct diag *d, enum rg_dc_level level, const char *check, const char *remedy,
                const char *fmt, ...) RG_PRINTF(5, 6);

static void say(struct diag *d, enum rg_dc_level level, const char *check, const char *remedy,
                const char *fmt, ...)
{
    struct rg_dc_result res;
    va_list ap;

    res.level = level;
    va_start(ap, fmt);
    vsnprintf(res.detail, sizeof(res.detail), fmt, ap);
    va_end(ap);
    snprintf(res.remedy, sizeof(res.remedy), "%s", remedy != NULL ? remedy : "");
    print(d, check, &res);
}

/* ---- helpers ------------------------------------------------------------ */

static void hostport(const struct rg_hostport *hp, char *buf, size_t len)
{
    if (strchr(hp->host, ':') != NULL)
        snprintf(buf, len, "[%s]:%d", hp->host, hp->port);
    else
        snprintf(buf, len, "%s:%d", hp->host, hp->port);
}

/* Does an SMTP server answer 220 on hp? 0, or -1 with the reason in msg.
 * The session is ended politely with QUIT. */
int rg_ctl_probe_smtp(const struct rg_hostport *hp, char *msg, size_t len)
{
    struct rg_stream *s;
    char err[256], line[1024];
    size_t n;
    int fd, st, rc = -1;

    fd = rg_connect_tcp(hp, CONNECT_TIMEOUT_MS, err, sizeof(err));
    if (fd < 0) {
        snprintf(msg, len, "%s", err);
        return -1;
    }
    s = rg_malloc(sizeof(*s));
    rg_stream_init(s, fd, GREETING_TIMEOUT_MS);
    for (;;) {
        st = rg_stream_getline(s, line, sizeof(line), &n);
        if (st != RG_IO_OK) {
            snprintf(msg, len, "connected, but no greeting: %s", rg_io_strerror(st));
            break;
        }
        line[strcspn(line, "\r\n")] = '\0';
        if (strncmp(line, "220-", 4) == 0)
            continue;
        if (strncmp(line, "220", 3) == 0 && (line[3] == ' ' || line[3] == '\0')) {
            snprintf(msg, len, "%.200s", line);
            rc = 0;
            if (rg_stream_puts(s, "QUIT\r\n") == RG_IO_OK && rg_stream_flush(s) == RG_IO_OK)
                (void)rg_stream_getline(s, line, sizeof(line), &n);
        } else {
            snprintf(msg, len, "answers \"%.200s\" instead of 220", line);
        }
        break;
    }
    close(fd);
    rg_free(s);
    return rc;
}

/*
 * Run argv, its standard output into *out (allocated, NUL-terminated, at
 * most CAPTURE_MAX bytes kept), standard error discarded. Its exit status,
 * 127 when it could not be run, -1 on our own failure.
 */
static int capture(char *const argv[], char **out)
{
    int pfd[2], st;
    size_t len = 0;
    char *buf = rg_malloc(CAPTURE_MAX + 1);
    pid_t pid;
    ssize_t n;

    *out = NULL;
    fflush(stdout);
    if (pipe(pfd) < 0) {
        rg_free(buf);
        return -1;
    }
    pid = fork();
    if (pid < 0) {
        close(pfd[0]);
        close(pfd[1]);
        rg_free(buf);
        return -1;
    }
    if (pid == 0) {
        close(pfd[0]);
        if (dup2(pfd[1], STDOUT_FILENO) < 0 || freopen("/dev/null", "w", stderr) == NULL)
            _exit(126);
        execvp(argv[0], argv);
        _exit(127);
    }
    close(pfd[1]);
    while ((n = read(pfd[0], buf + len, CAPTURE_MAX - len)) != 0) {
        if (n < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        len += (size_t)n;
        if (len == CAPTURE_MAX) {       /* keep draining, drop the rest */
            char sink[4096];
            while ((n = read(pfd[0], sink, sizeof(sink))) > 0 || (n < 0 && errno == EINTR))
                ;
            break;
        }
    }
    close(pfd[0]);
    buf[len] = '\0';
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR) {
            rg_free(buf);
            return -1;
        }
    *out = buf;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* The whole (small) file, NULL when it cannot be read (errno set). */
static char *slurp(const char *path)
{
    FILE *fp = fopen(path, "re");
    char *data;
    size_t n;

    if (fp == NULL)
        return NULL;
    data = rg_malloc(CAPTURE_MAX * 4 + 1);
    n = fread(data, 1, CAPTURE_MAX * 4, fp);
    fclose(fp);
    data[n] = '\0';
    return data;
}

/* Line number (1-based) of the first line where a and b differ. */
static int first_difference(const char *a, const char *b)
{
    int line = 1;

    for (; *a != '\0' && *a == *b; a++, b++)
        if (*a == '\n')
            line++;
    return line;
}

/* The largest max_message_size of the routes, and whose it is. */
static size_t largest_limit(const struct rg_conf *conf, const char **route)
{
    size_t max = 0;

    *route = "-";
    for (size_t i = 0; i < conf->nroutes; i++)
        if (conf->routes[i].max_message_size > max) {
            max = conf->routes[i].max_message_size;
            *route = conf->routes[i].name;
        }
    return max;
}

/* The largest after-filter limit (the reinjected, encrypted message). */
static size_t largest_after(const struct rg_conf *conf, const char **route)
{
    size_t max = 0;

    *route = "-";
    for (size_t i = 0; i < conf->nroutes; i++)
        if (rg_route_after_filter_limit(&conf->routes[i]) > max) {
            max = rg_route_after_filter_limit(&conf->routes[i]);
            *route = conf->routes[i].name;
        }
    return max;
}

/* ---- global checks -------------------------------------------------------- */

static void check_regigated(struct diag *d, const struct rg_conf *conf)
{
    FILE *fp = fopen(conf->pid_file, "re");
    long pid = 0;
    char remedy[512];

    snprintf(remedy, sizeof(remedy), "start it (systemctl start regigated, or regigated -c %s) "
             "and look at its log if it stops again", conf->path);
    if (fp == NULL) {
        say(d, RG_DC_FAIL, "regigated", remedy, "not running (no pid file %s)", conf->pid_file);
        return;
    }
    if (fscanf(fp, "%ld", &pid) != 1 || pid <= 1) {
        fclose(fp);
        say(d, RG_DC_FAIL, "regigated", remedy, "%s holds no process id", conf->pid_file);
        return;
    }
    fclose(fp);
    if (kill((pid_t)pid, 0) < 0 && errno == ESRCH) {
        say(d, RG_DC_FAIL, "regigated", remedy, "not running (pid %ld in %s is gone)", pid,
            conf->pid_file);
        return;
    }
    say(d, RG_DC_OK, "regigated", NULL, "running, pid %ld", pid);
}

static void check_spool(struct diag *d, const struct rg_conf *conf)
{
    struct rg_dc_result res;
    struct statvfs vfs;
    struct stat st;
    const struct passwd *pw = NULL;
    const char *route;
    size_t largest = largest_limit(conf, &route);
    char remedy[512];

    if (conf->user != NULL && (pw = getpwnam(conf->user)) == NULL) {
        say(d, RG_DC_FAIL, "spool", "create the user or change 'user' in [global]",
            "user %s (regigated's user) does not exist", conf->user);
        return;
    }
    if (stat(conf->spool_dir, &st) < 0) {
        snprintf(remedy, sizeof(remedy), "install -d -m 700%s%s %s (regigated creates it "
                 "when it starts)", pw ? " -o " : "", pw ? conf->user : "", conf->spool_dir);
        say(d, RG_DC_FAIL, "spool", remedy, "%s: %s", conf->spool_dir, strerror(errno));
        return;
    }
    rg_dc_spool_mode(conf->spool_dir, st.st_mode, st.st_uid, pw ? pw->pw_uid : 0,
                     pw ? pw->pw_name : NULL, &res);
    print(d, "spool", &res);
    if (statvfs(conf->spool_dir, &vfs) < 0) {
        say(d, RG_DC_WARN, "spool space", NULL, "%s: %s", conf->spool_dir, strerror(errno));
        return;
    }
    rg_dc_spool_space(conf->spool_dir, (unsigned long long)vfs.f_bavail * vfs.f_frsize,
                      (unsigned long long)vfs.f_blocks * vfs.f_frsize, largest, &res);
    print(d, "spool space", &res);
}

/* "name = value" of main.cf text (postconf -n output or our block): the
 * value of name, allocated, or NULL. The last definition wins, as in
 * Postfix. */
static char *param_value(const char *text, const char *name)
{
    size_t n = strlen(name);
    char *found = NULL;

    for (const char *p = text; p != NULL && *p != '\0';) {
        const char *eol = strchr(p, '\n');
        size_t len = eol ? (size_t)(eol - p) : strlen(p);
        if (len > n && strncmp(p, name, n) == 0 && (p[n] == ' ' || p[n] == '=')) {
            const char *v = p + n;
            while (*v == ' ' || *v == '\t')
                v++;
            if (*v == '=') {
                v++;
                while (*v == ' ' || *v == '\t')
                    v++;
                rg_free(found);
                found = rg_sprintf("%.*s", (int)(len - (size_t)(v - p)), v);
            }
        }
        p = eol ? eol + 1 : NULL;
    }
    return found;
}

/* Is the generated block in DIR/FILE, byte for byte? */
static void check_block(struct diag *d, const char *pfdir, const char *file, const char *want)
{
    char *path = rg_sprintf("%s/%s", pfdir, file), *text = slurp(path), *have;
    char check[64], remedy[512];

    snprintf(check, sizeof(check), "postfix %s", file);
    snprintf(remedy, sizeof(remedy), "regigatectl postfix generate --apply%s%s",
             strcmp(pfdir, "/etc/postfix") != 0 ? " --postfix-dir " : "",
             strcmp(pfdir, "/etc/postfix") != 0 ? pfdir : "");
    if (text == NULL) {
        say(d, RG_DC_FAIL, check, remedy, "cannot read %s: %s", path, strerror(errno));
    } else if ((have = rg_pfgen_extract(text)) == NULL) {
        say(d, RG_DC_FAIL, check, remedy, "%s has no regigate block: Postfix does not know "
            "the routes", path);
    } else {
        if (strcmp(have, want) == 0)
            say(d, RG_DC_OK, check, NULL, "the regigate block in %s is what the routes give now",
                path);
        else
            say(d, RG_DC_FAIL, check, remedy, "the regigate block in %s differs from what the "
                "routes give now (from its line %d on): a route was changed, added or removed "
                "without applying it, or the block was edited", path,
                first_difference(have, want));
        rg_free(have);
    }
    rg_free(text);
    rg_free(path);
}

static void check_postfix(struct diag *d, const struct rg_conf *conf, const char *pfdir)
{
    char *n_out = NULL, *limit_out = NULL, *status_out = NULL;
    char *main_block = rg_pfgen_main(conf), *master_block = rg_pfgen_master(conf);
    char *postconf_n[] = { "postconf", "-c", (char *)pfdir, "-n", NULL };
    char *postconf_limit[] = { "postconf", "-c", (char *)pfdir, "-h", "message_size_limit", NULL };
    char *status[] = { "postfix", "-c", (char *)pfdir, "status", NULL };
    struct rg_dc_result res;
    const char *route;
    size_t largest;
    int rc, bad = 0;

    rc = capture(postconf_n, &n_out);
    if (rc == 127) {
        say(d, RG_DC_NOTE, "postfix", "install Postfix (apt-get install postfix), or give "
            "--postfix-dir", "postconf not found: the Postfix checks are skipped");
        goto out;
    }
    if (rc != 0) {
        say(d, RG_DC_FAIL, "postfix", "run postconf -c DIR -n to see why, or give the right "
            "--postfix-dir", "postconf -c %s -n failed (exit %d): no Postfix configuration there",
            pfdir, rc);
        goto out;
    }
    {
        char *warn = rg_pfgen_warnings(conf);
        for (char *line = warn, *nl; line != NULL && *line != '\0'; line = nl + 1) {
            nl = strchr(line, '\n');
            *nl = '\0';
            say(d, RG_DC_WARN, "postfix settings", "see regigate-postfix(5), MTA SETTINGS",
                "%s", line);
        }
        rg_free(warn);
    }
    check_block(d, pfdir, "main.cf", main_block);
    check_block(d, pfdir, "master.cf", master_block);

    /* every parameter of the block as Postfix sees it (a later line of
     * main.cf would override it) */
    for (const char *p = main_block; *p != '\0';) {
        const char *eol = strchr(p, '\n');
        size_t len = eol ? (size_t)(eol - p) : strlen(p);
        if (len > 0 && *p != '#') {
            char *line = rg_sprintf("%.*s", (int)len, p), *eq = strstr(line, " = ");
            if (eq != NULL) {
                char *have;
                *eq = '\0';
                have = param_value(n_out, line);
                if (have == NULL || strcmp(have, eq + 3) != 0) {
                    if (!bad++)
                        say(d, RG_DC_FAIL, "postfix parameters", "remove or change the later "
                            "definition in main.cf; the block's lines must be in effect",
                            "postconf -n gives %s = %s, the regigate block sets %s", line,
                            have ? have : "(nothing)", eq + 3);
                }
                rg_free(have);
            }
            rg_free(line);
        }
        p = eol ? eol + 1 : p + len;
    }
    if (!bad)
        say(d, RG_DC_OK, "postfix parameters", NULL, "postconf -n agrees with the regigate block");

    largest = largest_after(conf, &route);
    if (conf->nroutes > 0 && capture(postconf_limit, &limit_out) == 0) {
        char *end;
        unsigned long long lim = strtoull(limit_out, &end, 10);
        if (end == limit_out) {
            say(d, RG_DC_WARN, "postfix message_size_limit", NULL, "postconf gives \"%.40s\"",
                limit_out);
        } else {
            rg_dc_size_limit(lim, largest, route, &res);
            print(d, "postfix message_size_limit", &res);
        }
    }

    rc = capture(status, &status_out);
    if (rc == 0)
        say(d, RG_DC_OK, "postfix running", NULL, "postfix -c %s status: running", pfdir);
    else
        say(d, RG_DC_FAIL, "postfix running", "start it: systemctl start postfix (or postfix "
            "start); the routes' public and reinjection smtpd are Postfix services",
            "postfix -c %s status: not running", pfdir);
out:
    rg_free(n_out);
    rg_free(limit_out);
    rg_free(status_out);
    rg_free(main_block);
    rg_free(master_block);
}

/* ---- per route ------------------------------------------------------------ */

struct first_error {
    int errors;
    char msg[512];
};

static void keep_first(void *ctx, enum rg_diag_severity sev, const char *file, int line, int col,
                       const char *msg)
{
    struct first_error *fe = ctx;

    if (sev != RG_DIAG_ERROR)
        return;
    if (fe->errors++ == 0) {
        if (line > 0)
            snprintf(fe->msg, sizeof(fe->msg), "%s:%d:%d: %s", file, line, col, msg);
        else
            snprintf(fe->msg, sizeof(fe->msg), "%s: %s", file, msg);
    }
}

static void check_rules(struct diag *d, const struct rg_route *r, const char *check)
{
    struct first_error fe = { 0, "" };
    struct rg_rules *rules;
    char remedy[768];
    size_t nlists = 0;

    if (r->rules == NULL) {
        say(d, RG_DC_OK, check, NULL, "no rule file: the empty rule set {} (every message is "
            "forwarded)");
        return;
    }
    snprintf(remedy, sizeof(remedy), "regigatectl rules lint %s --lists-dir %s; fix it and "
             "regigatectl rules import %s FILE (regigated keeps the rules it loaded last until "
             "then)", r->rules, r->lists_dir ? r->lists_dir : "DIR", r->name);
    rules = rg_rules_load_file(r->rules, r->lists_dir, keep_first, &fe);
    if (rules == NULL || fe.errors > 0) {
        say(d, RG_DC_FAIL, check, remedy, "%s (%d error%s)", fe.msg, fe.errors,
            fe.errors == 1 ? "" : "s");
    } else if (r->provider == NULL && (rg_rules_uses(rules, RG_ACT_ENCRYPT)
                                       || rg_rules_uses(rules, RG_ACT_DECRYPT))) {
        say(d, RG_DC_FAIL, check, "set provider and provider_ca of the route "
            "(regigatectl route set --provider), or import rules without encrypt/decrypt",
            "%s encrypts or decrypts, but the route has no provider: regigated refuses it",
            r->rules);
    } else {
        for (const char *const *l = rg_rules_lists(rules); *l != NULL; l++)
            nlists++;
        say(d, RG_DC_OK, check, NULL, "%s: %zu rule%s, %zu list%s", r->rules,
            rg_rules_count(rules), rg_rules_count(rules) == 1 ? "" : "s", nlists,
            nlists == 1 ? "" : "s");
    }
    rg_rules_free(rules);
}

/* Does regigated run what is on disk? (routestate.h) */
static void check_rules_in_use(struct diag *d, const struct rg_conf *conf,
                               const struct rg_route *r, const char *check)
{
    char msg[1024], remedy[512];

    switch (rg_ctl_rules_in_use(conf, r, msg, sizeof(msg))) {
    case 1:
        say(d, RG_DC_OK, check, NULL, "%s", msg);
        break;
    case 0:
        snprintf(remedy, sizeof(remedy), "kill -HUP $(cat %s) and look at regigated's log: a "
                 "reload is refused while the configuration or a rule set has errors",
                 conf->pid_file);
        say(d, RG_DC_WARN, check, remedy, "%s", msg);
        break;
    default:
        say(d, RG_DC_NOTE, check, NULL, "%s", msg);
    }
}

static void check_listener(struct diag *d, const char *check, const struct rg_hostport *hp,
                           const char *who, const char *remedy)
{
    char addr[300], msg[512];

    hostport(hp, addr, sizeof(addr));
    if (rg_ctl_probe_smtp(hp, msg, sizeof(msg)) == 0)
        say(d, RG_DC_OK, check, NULL, "%s answers on %s: %s", who, addr, msg);
    else
        say(d, RG_DC_FAIL, check, remedy, "%s on %s: %s", who, addr, msg);
}

static void check_provider(struct diag *d, const struct rg_conf *conf, const struct rg_route *r,
                           const char *prefix)
{
    struct rg_routecert_info info;
    struct rg_dc_result res;
    char check[128], msg[1024], reason[512], remedy[768], what[600];

    snprintf(check, sizeof(check), "%s provider", prefix);
    if (r->provider == NULL) {
        say(d, RG_DC_OK, check, NULL, "none: the route neither encrypts nor decrypts");
        return;
    }
    snprintf(remedy, sizeof(remedy), "check that the provider runs and is reachable at %s, "
             "that this host's address is on its allow-list (regigate-provider gateway add "
             "--ip) and that the certificate is the one it signed; details: regigatectl route "
             "check-provider %s", r->provider, r->name);
    if (rg_ctl_provider_health(conf, r, msg, sizeof(msg)) == 0)
        say(d, RG_DC_OK, check, NULL, "%s", msg);
    else
        say(d, RG_DC_FAIL, check, remedy, "%s", msg);

    snprintf(check, sizeof(check), "%s certificate", prefix);
    snprintf(remedy, sizeof(remedy), "regigatectl route cert-request %s, have the provider "
             "sign it, regigatectl route cert-import %s < signed.crt", r->name, r->name);
    if (rg_routecert_status(r, &info, reason, sizeof(reason)) == RG_ROUTECERT_DONE
        || (info.expires != 0 && info.expires <= time(NULL))) {
        snprintf(what, sizeof(what), "provider certificate %s", r->provider_cert);
        rg_dc_cert_expiry(what, info.expires, time(NULL), remedy, &res);
        print(d, check, &res);
    } else {
        say(d, RG_DC_FAIL, check, remedy, "Needed: %s", reason);
    }
}

static void check_tls_cert(struct diag *d, const struct rg_route *r, const char *prefix)
{
    struct rg_dc_result res;
    char *path = rg_sprintf("%s/key_cert.pem", r->cert_dir);
    char check[128], err[512], what[600], remedy[768];
    time_t expires;

    snprintf(check, sizeof(check), "%s tls certificate", prefix);
    if (access(path, F_OK) < 0) {
        if (r->public_listen.port != 0)
            say(d, RG_DC_FAIL, check, "put a key and certificate there (PEM, key first, mode "
                "0600) and run postfix reload", "%s is missing: the public smtpd cannot offer "
                "STARTTLS", path);
    } else if (rg_tlscert_expiry(path, &expires, err, sizeof(err)) < 0) {
        say(d, RG_DC_FAIL, check, "replace it with a PEM key and certificate", "%s", err);
    } else {
        snprintf(what, sizeof(what), "the public smtpd's certificate %s", path);
        snprintf(remedy, sizeof(remedy), "put a new key and certificate into %s (PEM, key "
                 "first, mode 0600) and run postfix reload", path);
        rg_dc_cert_expiry(what, expires, time(NULL), remedy, &res);
        print(d, check, &res);
    }
    rg_free(path);
}

/* The private keys: the provider key (which may be one key_cert.pem with
 * the certificate) and the public smtpd's key_cert.pem. */
static void check_key_modes(struct diag *d, const struct rg_route *r, const char *prefix)
{
    char *tls = rg_sprintf("%s/key_cert.pem", r->cert_dir);
    const char *files[] = { r->provider_key, tls };
    struct rg_dc_result res;
    char check[128];
    struct stat st;

    snprintf(check, sizeof(check), "%s key file", prefix);
    for (size_t i = 0; i < 2; i++) {
        if (i == 1 && strcmp(files[1], files[0]) == 0)
            continue;
        if (stat(files[i], &st) < 0)
            continue;           /* missing files are the certificate checks' business */
        rg_dc_key_mode(files[i], st.st_mode, &res);
        print(d, check, &res);
    }
    rg_free(tls);
}

static void check_route(struct diag *d, const struct rg_conf *conf, const struct rg_route *r)
{
    char prefix[96], check[128], remedy[512];

    snprintf(prefix, sizeof(prefix), "route %s", r->name);
    snprintf(check, sizeof(check), "%s rules", prefix);
    check_rules(d, r, check);
    snprintf(check, sizeof(check), "%s rules in use", prefix);
    check_rules_in_use(d, conf, r, check);

    snprintf(check, sizeof(check), "%s listener", prefix);
    snprintf(remedy, sizeof(remedy), "start regigated, or reload it (kill -HUP, regigatectl "
             "postfix generate --apply) after adding the route; its log says why it cannot "
             "listen");
    check_listener(d, check, &r->listen, "regigated", remedy);
    if (r->public_listen.port != 0) {
        snprintf(check, sizeof(check), "%s public smtpd", prefix);
        check_listener(d, check, &r->public_listen, "Postfix",
                       "regigatectl postfix generate --apply, make sure Postfix runs and the "
                       "address is on an interface of this host");
    }
    snprintf(check, sizeof(check), "%s reinjection", prefix);
    check_listener(d, check, &r->reinject, "the reinjection smtpd",
                   r->public_listen.port != 0
                       ? "regigatectl postfix generate --apply (the reinjection smtpd is part "
                         "of the route's master.cf entries) and make sure Postfix runs"
                       : "start the SMTP server that takes regigated's mail back (reinject = "
                         "in the route's section)");
    check_provider(d, conf, r, prefix);
    check_tls_cert(d, r, prefix);
    check_key_modes(d, r, prefix);
}

/* ---- DNS ------------------------------------------------------------------ */

static void check_dns(struct diag *d, const char *name)
{
    struct addrinfo hints, *ai = NULL, *p;
    char addrs[MAX_ADDRS][INET6_ADDRSTRLEN], ptrbuf[MAX_ADDRS][NI_MAXHOST];
    const char *av[MAX_ADDRS], *pv[MAX_ADDRS];
    struct rg_dc_result res;
    size_t n = 0;
    int rc;

    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_ADDRCONFIG;
    rc = getaddrinfo(name, NULL, &hints, &ai);
    if (rc == EAI_AGAIN || rc == EAI_FAIL || rc == EAI_SYSTEM) {
        say(d, RG_DC_NOTE, "dns", NULL, "%s: skipped: no answer from the resolver (%s); run "
            "diagnose again where DNS works", name, gai_strerror(rc));
        return;
    }
    if (rc == 0) {
        for (p = ai; p != NULL && n < MAX_ADDRS; p = p->ai_next) {
            char host[INET6_ADDRSTRLEN];
            int dup = 0;
            if (getnameinfo(p->ai_addr, p->ai_addrlen, host, sizeof(host), NULL, 0,
                            NI_NUMERICHOST) != 0)
                continue;
            for (size_t k = 0; k < n; k++)
                dup |= strcmp(addrs[k], host) == 0;
            if (dup)
                continue;
            snprintf(addrs[n], sizeof(addrs[n]), "%s", host);
            av[n] = addrs[n];
            pv[n] = getnameinfo(p->ai_addr, p->ai_addrlen, ptrbuf[n], sizeof(ptrbuf[n]), NULL,
                                0, NI_NAMEREQD) == 0 ? ptrbuf[n] : NULL;
            n++;
        }
        freeaddrinfo(ai);
    }
    rg_dc_dns_match(name, av, pv, n, &res);
    print(d, "dns", &res);
}

static void check_names(struct diag *d, const struct rg_conf *conf, const struct rg_route *only)
{
    const char *names[MAX_NAMES];
    size_t n = 0;

    res_init();
    if (_res.nscount == 0) {
        say(d, RG_DC_NOTE, "dns", NULL, "skipped: no DNS resolver configured (no nameserver "
            "in /etc/resolv.conf)");
        return;
    }
    /* bounded: one try of 2 s per server rather than the default 5 s x 2 */
    _res.retrans = 2;
    _res.retry = 1;
    if (only == NULL)
        names[n++] = conf->myhostname;
    for (size_t i = 0; i < conf->nroutes && n < MAX_NAMES; i++) {
        const struct rg_route *r = &conf->routes[i];
        int dup = 0;
        if ((only != NULL && r != only) || r->mta_hostname == NULL)
            continue;
        for (size_t k = 0; k < n; k++)
            dup |= rg_dc_same_name(names[k], r->mta_hostname);
        if (!dup)
            names[n++] = r->mta_hostname;
    }
    for (size_t i = 0; i < n; i++)
        check_dns(d, names[i]);
}

/* ---- the command ------------------------------------------------------------ */

int rg_ctl_diagnose(struct rg_ctl *ctl, int argc, char **argv)
{
    struct diag d;
    const char *name = NULL, *pfdir = "/etc/postfix";
    const struct rg_route *only = NULL;
    struct rg_conf *conf;
    char err[1024];
    int dns = 1;

    memset(&d, 0, sizeof(d));
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--postfix-dir") == 0 && i + 1 < argc)
            pfdir = argv[++i];
        else if (strcmp(argv[i], "--no-dns") == 0)
            dns = 0;
        else if (argv[i][0] == '-' || name != NULL)
            return rg_ctl_usage(&diagnose_cmd);
        else
            name = argv[i];
    }
    conf = rg_conf_load_flags(ctl->conf_path, RG_CONF_NO_ROUTES_OK, err, sizeof(err));
    if (conf == NULL) {
        say(&d, RG_DC_FAIL, "config", "fix the line named (regigated refuses to start or to "
            "reload with it), then run diagnose again", "%s", err);
        printf("diagnose: %d OK, %d WARN, %d FAIL\n", 0, 0, 1);
        return RG_CTL_FAIL;
    }
    ctl->conf = conf;
    if (name != NULL && (only = rg_conf_route(conf, name)) == NULL) {
        rg_ctl_error("no route '%s' (in %s or %s)", name, conf->path, conf->routes_dir);
        return RG_CTL_FAIL;
    }
    if (conf->nroutes == 0)
        say(&d, RG_DC_WARN, "config", "regigatectl route add NAME --listen IP:PORT --provider "
            "HOST:PORT ...", "%s loads, but there is no route", conf->path);
    else
        say(&d, RG_DC_OK, "config", NULL, "%s loads: %zu route%s", conf->path, conf->nroutes,
            conf->nroutes == 1 ? "" : "s");
    check_regigated(&d, conf);
    check_spool(&d, conf);
    if (conf->mta.sasl_password_maps != NULL) {
        struct stat st;
        struct rg_dc_result res;
        if (stat(conf->mta.sasl_password_maps, &st) < 0) {
            say(&d, RG_DC_FAIL, "sasl passwords", "create it (mode 0600) or remove "
                "sasl_password_maps from [mta]", "%s: %s", conf->mta.sasl_password_maps,
                strerror(errno));
        } else {
            rg_dc_key_mode(conf->mta.sasl_password_maps, st.st_mode, &res);
            print(&d, "sasl passwords", &res);
        }
    }
    check_postfix(&d, conf, pfdir);
    for (size_t i = 0; i < conf->nroutes; i++)
        if (only == NULL || &conf->routes[i] == only)
            check_route(&d, conf, &conf->routes[i]);
    if (dns)
        check_names(&d, conf, only);
    else
        say(&d, RG_DC_NOTE, "dns", NULL, "skipped (--no-dns)");
    printf("diagnose: %d OK, %d WARN, %d FAIL%s\n", d.count[RG_DC_OK], d.count[RG_DC_WARN],
           d.count[RG_DC_FAIL], d.count[RG_DC_NOTE] ? " (and notes: checks skipped)" : "");
    if (fflush(stdout) != 0)
        return RG_CTL_FAIL;
    return d.count[RG_DC_FAIL] > 0 ? RG_CTL_FAIL : RG_CTL_OK;
}
