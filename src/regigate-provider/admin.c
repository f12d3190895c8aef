/*
 * admin.c - provider administration commands; see admin.h.
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "admin.h"
#include "mem.h"
#include "pki.h"
#include "provider_json.h"
#include "store.h"

#define MAX_IPS 16
#define MAX_NAMES 16

void rgp_cli_error(const char *fmt, ...)
{
    va_list ap;
    fputs("regigate-provider: error: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

/* Numeric IPv4/IPv6 address in its canonical text form (IPv4-mapped IPv6
 * as IPv4), as the server compares them. */
static int canon_ip(const char *in, char *out, size_t outlen)
{
    struct in_addr a4;
    struct in6_addr a6;

    if (inet_pton(AF_INET, in, &a4) == 1)
        return inet_ntop(AF_INET, &a4, out, (socklen_t)outlen) ? 0 : -1;
    if (inet_pton(AF_INET6, in, &a6) == 1) {
        if (IN6_IS_ADDR_V4MAPPED(&a6))
            return inet_ntop(AF_INET, &a6.s6_addr[12], out, (socklen_t)outlen) ? 0 : -1;
        return inet_ntop(AF_INET6, &a6, out, (socklen_t)outlen) ? 0 : -1;
    }
    return -1;
}

static struct rgp_db *open_db(const struct rgp_conf *conf, int with_mk)
{
    char err[512], *path = rgp_path(conf, "provider.db");
    uint8_t mk[RGP_MASTER_KEY_LEN];
    struct rgp_db *db;

    if (access(path, F_OK) < 0) {
        rgp_cli_error("%s: %s (run \"regigate-provider init\" first)", path, strerror(errno));
        rg_free(path);
        return NULL;
    }
    if (with_mk) {
        char *mp = rgp_path(conf, "master.key");
        int rc = rgp_master_load(mp, mk, err, sizeof(err));
        rg_free(mp);
        if (rc < 0) {
            rgp_cli_error("%s", err);
            rg_free(path);
            return NULL;
        }
    }
    db = rgp_db_open(path, 0, with_mk ? mk : NULL, err, sizeof(err));
    memset(mk, 0, sizeof(mk));
    if (db == NULL)
        rgp_cli_error("%s", err);
    rg_free(path);
    return db;
}

static int parse_id(const char *s, long long *id)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end || v <= 0)
        return -1;
    *id = v;
    return 0;
}

static void fmt_time(long long ms, char *out)
{
    if (ms <= 0)
        snprintf(out, 32, "-");
    else
        rgp_time_format(ms, out);
}

/* ---- init ------------------------------------------------------------ */

int rgp_cmd_init(const struct rgp_conf *conf, int argc, char **argv)
{
    const char *names[MAX_NAMES + 2], *ips[MAX_IPS + 2];
    char host[256], canon[MAX_IPS][INET6_ADDRSTRLEN], err[512];
    size_t nnames = 0, nips = 0;
    const char *ca_name = "regigate provider CA";
    char *cakey, *cacrt, *mk, *skey, *scrt, *dbp;
    struct rgp_db *db;
    int rc = 1;

    names[nnames++] = "localhost";
    if (gethostname(host, sizeof(host)) == 0 && host[0] && strcmp(host, "localhost") != 0) {
        host[sizeof(host) - 1] = 0;
        names[nnames++] = host;
    }
    ips[nips++] = "127.0.0.1";
    ips[nips++] = "::1";
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--name") && i + 1 < argc && nnames < MAX_NAMES) {
            names[nnames++] = argv[++i];
        } else if (!strcmp(argv[i], "--ip") && i + 1 < argc && nips < MAX_IPS) {
            if (canon_ip(argv[++i], canon[nips], sizeof(canon[nips])) < 0) {
                rgp_cli_error("--ip %s: not a numeric IP address", argv[i]);
                return 2;
            }
            ips[nips] = canon[nips];
            nips++;
        } else if (!strcmp(argv[i], "--ca-name") && i + 1 < argc) {
            ca_name = argv[++i];
        } else {
            rgp_cli_error("init: unexpected argument \"%s\"", argv[i]);
            return 2;
        }
    }
    umask(077);
    if (mkdir(conf->data_dir, 0700) < 0 && errno != EEXIST) {
        rgp_cli_error("%s: %s", conf->data_dir, strerror(errno));
        return 1;
    }
    cakey = rgp_path(conf, "ca.key");
    cacrt = rgp_path(conf, "ca.crt");
    mk = rgp_path(conf, "master.key");
    skey = rgp_path(conf, "server.key");
    scrt = rgp_path(conf, "server.crt");
    dbp = rgp_path(conf, "provider.db");
    if (access(cakey, F_OK) == 0 || access(mk, F_OK) == 0 || access(dbp, F_OK) == 0) {
        rgp_cli_error("%s is initialised already (ca.key, master.key or provider.db exists)", conf->data_dir);
        goto out;
    }
    if (rgp_ca_create(cakey, cacrt, ca_name, 7300, err, sizeof(err)) < 0
        || rgp_master_create(mk, err, sizeof(err)) < 0
        || rgp_server_cert_create(cakey, cacrt, skey, scrt, names, nnames, ips, nips, err, sizeof(err)) < 0) {
        rgp_cli_error("%s", err);
        goto out;
    }
    if ((db = rgp_db_open(dbp, 1, NULL, err, sizeof(err))) == NULL) {
        rgp_cli_error("%s", err);
        goto out;
    }
    printf("initialised %s (schema version %d)\n", conf->data_dir, rgp_db_schema_version(db));
    printf("provider CA certificate (give it to every gateway): %s\n", cacrt);
    rgp_db_close(db);
    rc = 0;
out:
    rg_free(cakey);
    rg_free(cacrt);
    rg_free(mk);
    rg_free(skey);
    rg_free(scrt);
    rg_free(dbp);
    return rc;
}

/* ---- gateway --------------------------------------------------------- */

static void print_gateway(void *arg, long long id, const char *desc, const char *ips,
                          long long created, long long removed, int ncerts)
{
    char c[32], r[32];
    (void)arg;
    fmt_time(created, c);
    fmt_time(removed, r);
    printf("%lld\t%s\t%s\tcertificates=%d\tcreated=%s%s%s\n", id, ips, desc, ncerts, c,
           removed ? "\tremoved=" : "", removed ? r : "");
}

static int gateway_add(const struct rgp_conf *conf, int argc, char **argv)
{
    char canon[MAX_IPS][INET6_ADDRSTRLEN];
    const char *ips[MAX_IPS], *desc = NULL;
    size_t nips = 0;
    struct rgp_db *db;
    long long id;
    int rc;

    for (int i = 2; i < argc; i++) {
        if (!strcmp(argv[i], "--ip") && i + 1 < argc) {
            if (nips == MAX_IPS) {
                rgp_cli_error("at most %d --ip", MAX_IPS);
                return 2;
            }
            if (canon_ip(argv[++i], canon[nips], sizeof(canon[nips])) < 0) {
                rgp_cli_error("--ip %s: not a numeric IPv4 or IPv6 address", argv[i]);
                return 2;
            }
            ips[nips] = canon[nips];
            nips++;
        } else if (!strcmp(argv[i], "--description") && i + 1 < argc) {
            desc = argv[++i];
        } else {
            rgp_cli_error("gateway add: unexpected argument \"%s\"", argv[i]);
            return 2;
        }
    }
    if (nips == 0 || desc == NULL) {
        rgp_cli_error("usage: gateway add --ip IP [--ip IP]... --description TEXT");
        return 2;
    }
    for (const char *p = desc; *p; p++)
        if ((unsigned char)*p < 0x20) {
            rgp_cli_error("--description: control characters are not allowed");
            return 2;
        }
    if ((db = open_db(conf, 0)) == NULL)
        return 1;
    rc = rgp_db_gateway_add(db, desc, ips, nips, &id);
    rgp_db_close(db);
    if (rc != RGP_DB_OK) {
        rgp_cli_error("cannot add the gateway");
        return 1;
    }
    printf("%lld\n", id);
    return 0;
}

static int gateway_sign(const struct rgp_conf *conf, int argc, char **argv)
{
    long long id;
    int days = 3650, rc;
    char err[512], *csr, *cakey, *cacrt;
    size_t len = 0, cap = 65536;
    struct rgp_signed s;
    struct rgp_db *db;

    if (argc < 3 || parse_id(argv[2], &id) < 0) {
        rgp_cli_error("usage: gateway sign ID [--days N] < request.csr > signed.crt");
        return 2;
    }
    for (int i = 3; i < argc; i++) {
        char *end;
        if (!strcmp(argv[i], "--days") && i + 1 < argc) {
            long v = strtol(argv[++i], &end, 10);
            if (*end || end == argv[i] || v < 0 || v > 36500) {
                rgp_cli_error("--days: expected 0..36500");
                return 2;
            }
            days = (int)v;
        } else {
            rgp_cli_error("gateway sign: unexpected argument \"%s\"", argv[i]);
            return 2;
        }
    }
    csr = rg_malloc(cap + 1);
    while (len < cap) {
        size_t n = fread(csr + len, 1, cap - len, stdin);
        if (n == 0)
            break;
        len += n;
    }
    if (len == cap && fgetc(stdin) != EOF) {
        rgp_cli_error("the certificate request on standard input is larger than %zu bytes", cap);
        rg_free(csr);
        return 1;
    }
    csr[len] = 0;
    if ((db = open_db(conf, 0)) == NULL) {
        rg_free(csr);
        return 1;
    }
    rc = rgp_db_gateway_check(db, id);
    if (rc != RGP_DB_OK) {
        rgp_cli_error(rc == RGP_DB_NOTFOUND ? "no gateway %lld" : rc == RGP_DB_EXISTS
                      ? "gateway %lld is removed" : "database error looking up gateway %lld", id);
        rgp_db_close(db);
        rg_free(csr);
        return 1;
    }
    cakey = rgp_path(conf, "ca.key");
    cacrt = rgp_path(conf, "ca.crt");
    rc = rgp_sign_csr(cakey, cacrt, csr, len, days, &s, err, sizeof(err));
    rg_free(cakey);
    rg_free(cacrt);
    rg_free(csr);
    if (rc < 0) {
        rgp_cli_error("refused: %s", err);
        rgp_db_close(db);
        return 1;
    }
    if (rgp_db_cert_add(db, id, &s) != RGP_DB_OK) {
        rgp_cli_error("cannot record the certificate");
        rgp_signed_free(&s);
        rgp_db_close(db);
        return 1;
    }
    rgp_db_close(db);
    fputs(s.pem, stdout);
    fprintf(stderr, "signed for gateway %lld: subject %s, serial %s, sha256 %s\n", id, s.subject,
            s.serial, s.fingerprint);
    rgp_signed_free(&s);
    return fflush(stdout) == 0 ? 0 : 1;
}

int rgp_cmd_gateway(const struct rgp_conf *conf, int argc, char **argv)
{
    struct rgp_db *db;
    long long id;
    int rc;

    if (argc >= 2 && !strcmp(argv[1], "add"))
        return gateway_add(conf, argc, argv);
    if (argc >= 2 && !strcmp(argv[1], "sign"))
        return gateway_sign(conf, argc, argv);
    if (argc == 2 && !strcmp(argv[1], "list")) {
        if ((db = open_db(conf, 0)) == NULL)
            return 1;
        rc = rgp_db_gateway_list(db, print_gateway, NULL);
        rgp_db_close(db);
        return rc == RGP_DB_OK ? 0 : 1;
    }
    if (argc == 3 && !strcmp(argv[1], "remove")) {
        if (parse_id(argv[2], &id) < 0) {
            rgp_cli_error("gateway remove: \"%s\" is not a gateway id", argv[2]);
            return 2;
        }
        if ((db = open_db(conf, 0)) == NULL)
            return 1;
        rc = rgp_db_gateway_remove(db, id);
        rgp_db_close(db);
        if (rc == RGP_DB_NOTFOUND)
            rgp_cli_error("no gateway %lld", id);
        else if (rc == RGP_DB_EXISTS)
            rgp_cli_error("gateway %lld is removed already", id);
        else if (rc != RGP_DB_OK)
            rgp_cli_error("cannot remove gateway %lld", id);
        else
            printf("gateway %lld removed; its certificates no longer work\n", id);
        return rc == RGP_DB_OK ? 0 : 1;
    }
    rgp_cli_error("usage: gateway add|list|sign|remove ...");
    return 2;
}

/* ---- account --------------------------------------------------------- */

static void print_line(void *arg, const char *s)
{
    (void)arg;
    printf("%s\n", s);
}

int rgp_cmd_account(const struct rgp_conf *conf, int argc, char **argv)
{
    char norm[RG_PJ_ADDR_MAX + 1];
    struct rgp_db *db;
    int add, rc, status = 0;

    if (argc == 2 && !strcmp(argv[1], "list")) {
        if ((db = open_db(conf, 0)) == NULL)
            return 1;
        rc = rgp_db_account_list(db, print_line, NULL);
        rgp_db_close(db);
        return rc == RGP_DB_OK ? 0 : 1;
    }
    if (argc < 3 || (strcmp(argv[1], "add") && strcmp(argv[1], "remove"))) {
        rgp_cli_error("usage: account add|remove ADDRESS... | account list");
        return 2;
    }
    add = !strcmp(argv[1], "add");
    for (int i = 2; i < argc; i++)
        if (rg_pj_address_normalize(argv[i], strlen(argv[i]), norm) < 0) {
            rgp_cli_error("\"%s\" is not a valid address", argv[i]);
            return 2;
        }
    if ((db = open_db(conf, 0)) == NULL)
        return 1;
    for (int i = 2; i < argc; i++) {
        rg_pj_address_normalize(argv[i], strlen(argv[i]), norm);
        rc = add ? rgp_db_account_add(db, norm) : rgp_db_account_remove(db, norm);
        if (rc == RGP_DB_EXISTS)
            fprintf(stderr, "regigate-provider: %s has an account already\n", norm);
        else if (rc == RGP_DB_NOTFOUND) {
            rgp_cli_error("%s has no account", norm);
            status = 1;
        } else if (rc != RGP_DB_OK) {
            rgp_cli_error("cannot %s %s", argv[1], norm);
            status = 1;
        }
    }
    rgp_db_close(db);
    return status;
}

/* ---- transaction ----------------------------------------------------- */

int rgp_cmd_transaction(const struct rgp_conf *conf, int argc, char **argv)
{
    uint8_t id[RG_PJ_ID_LEN];
    struct rgp_txn_info t;
    struct rgp_db *db;
    char when[32];
    int rc;

    if (argc != 3 || strcmp(argv[1], "show")) {
        rgp_cli_error("usage: transaction show ID");
        return 2;
    }
    if (rg_pj_hex_decode(argv[2], strlen(argv[2]), id, sizeof(id)) < 0) {
        rgp_cli_error("\"%s\" is not a transaction id (32 hex digits)", argv[2]);
        return 2;
    }
    if ((db = open_db(conf, 0)) == NULL)
        return 1;
    rc = rgp_db_txn_info(db, id, &t);
    rgp_db_close(db);
    if (rc == RGP_DB_NOTFOUND) {
        rgp_cli_error("no transaction %s", argv[2]);
        return 1;
    }
    if (rc != RGP_DB_OK)
        return 1;
    rgp_time_format(t.created, when);
    printf("id: %s\ngateway: %lld\ncreated: %s\nsender: %s\nmessage_id: %s\nsha256: %s\n",
           t.id, t.gateway, when, t.sender, t.message_id, t.sha256);
    for (size_t i = 0; i < t.nrecipients; i++)
        printf("recipient: %s\n", t.recipients[i]);
    for (size_t i = 0; i < t.nevents; i++) {
        rgp_time_format(t.events[i].time, when);
        printf("event: %s %s gateway=%lld ip=%s%s%s\n", when, t.events[i].type, t.events[i].gateway,
               t.events[i].ip, t.events[i].recipient ? " recipient=" : "",
               t.events[i].recipient ? t.events[i].recipient : "");
    }
    if (t.truncated)
        printf("(more events not shown)\n");
    rgp_txn_info_free(&t);
    return 0;
}
