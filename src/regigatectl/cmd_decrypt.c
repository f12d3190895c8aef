/*
 * cmd_decrypt.c - regigatectl decrypt: decrypt a saved encrypted regigate
 * message locally. For a recipient who got the encrypted copy because the
 * gateway could not decrypt it when it arrived (no account yet, ...): once
 * the account exists, the KEK of the message's transaction is fetched from
 * the provider for that recipient, with a gateway's client certificate,
 * exactly as regigated's decrypt action does.
 *
 * The plaintext is authenticated only at the end of the ciphertext (GCM),
 * so it goes to a spool first and reaches OUT or standard output only when
 * rg_smime_decrypt() succeeded: a tampered or truncated message gives no
 * output at all. OUT is written to a temporary file (0600) in its
 * directory and renamed, so it never holds half a message.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "conffile.h"
#include "ctl.h"
#include "mem.h"
#include "provider_client.h"
#include "provider_json.h"
#include "routecert.h"
#include "smime.h"
#include "spool.h"

/* Bytes of a message kept in memory; beyond, an unlinked file in TMPDIR. */
#define SPOOL_MEMORY (1024 * 1024)

_Static_assert(RG_PJ_ID_LEN == RG_SMIME_TXID_LEN, "the transaction id is the kekid");
_Static_assert(RG_PJ_KEK_LEN == RG_SMIME_KEK_LEN, "the provider's KEK is the CMS KEK");

static const struct rg_ctl_cmd decrypt_cmd = { "decrypt", NULL,
    "--recipient ADDRESS (--route NAME | --provider URL --ca FILE --cert FILE [--key FILE]) "
    "[-o OUT] [MESSAGE]", "", NULL };

struct decrypt_args {
    const char *recipient;
    const char *route;
    const char *url, *ca, *cert, *key;
    const char *out;            /* NULL: standard output */
    const char *in;             /* NULL or "-": standard input */
};

/*
 * Is argv[*i] the option name, as "NAME VALUE" or "NAME=VALUE"? 1 with
 * *val set (and *i past the value), 0 when it is not, -1 after saying why.
 */
static int option(int argc, char **argv, int *i, const char *name, const char **val)
{
    const char *a = argv[*i];
    size_t n = strlen(name);

    if (strncmp(a, name, n) != 0 || (a[n] != '\0' && a[n] != '='))
        return 0;
    if (*val != NULL) {
        rg_ctl_error("decrypt: %s given twice", name);
        return -1;
    }
    if (a[n] == '=')
        *val = a + n + 1;
    else if (*i + 1 < argc)
        *val = argv[++*i];
    if (*val == NULL || **val == '\0') {
        rg_ctl_error("decrypt: %s needs a value", name);
        return -1;
    }
    return 1;
}

/* 0, or -1 after saying why (a usage error). */
static int parse_args(int argc, char **argv, struct decrypt_args *a)
{
    const struct { const char *name; const char **val; } opts[] = {
        { "--recipient", &a->recipient }, { "--route", &a->route },
        { "--provider", &a->url }, { "--ca", &a->ca }, { "--cert", &a->cert },
        { "--key", &a->key }, { "-o", &a->out }, { "--output", &a->out },
    };
    int i, rc, files_only = 0;

    memset(a, 0, sizeof(*a));
    for (i = 1; i < argc; i++) {
        rc = 0;
        if (!files_only && strcmp(argv[i], "--") == 0) {
            files_only = 1;
            continue;
        }
        for (size_t k = 0; !files_only && rc == 0 && k < sizeof(opts) / sizeof(opts[0]); k++)
            rc = option(argc, argv, &i, opts[k].name, opts[k].val);
        if (rc < 0)
            return -1;
        if (rc > 0)
            continue;
        if (!files_only && argv[i][0] == '-' && argv[i][1] != '\0') {
            rg_ctl_error("decrypt: unknown option %s", argv[i]);
            return -1;
        }
        if (a->in != NULL) {
            rg_ctl_error("decrypt: one message at a time (%s and %s given)", a->in, argv[i]);
            return -1;
        }
        a->in = argv[i];
    }
    if (a->recipient == NULL) {
        rg_ctl_error("decrypt: --recipient is required");
        return -1;
    }
    if (a->route != NULL && (a->url || a->ca || a->cert || a->key)) {
        rg_ctl_error("decrypt: --route cannot be combined with --provider, --ca, --cert or --key");
        return -1;
    }
    if (a->route == NULL && (a->url == NULL || a->ca == NULL || a->cert == NULL)) {
        rg_ctl_error("decrypt: give --route NAME, or --provider URL with --ca FILE and --cert FILE");
        return -1;
    }
    return 0;
}

/*
 * Is the client certificate usable with its key and the provider CA? Checked
 * here because curl reports an unusable one as a failed connection, which
 * would read as "try again later". 0, or -1 after saying why.
 */
static int check_cert(const struct rg_provider_config *cfg)
{
    char err[512], *pem = rg_malloc(RG_ROUTECERT_MAX + 1);
    const char *key = cfg->key_file != NULL ? cfg->key_file : cfg->cert_file;
    FILE *f = fopen(cfg->cert_file, "re");
    size_t len = 0;
    int rc = -1;

    if (f == NULL) {
        rg_ctl_error("cannot open %s: %s", cfg->cert_file, strerror(errno));
    } else {
        /* one byte more than allowed: rg_routecert_check refuses it */
        len = fread(pem, 1, RG_ROUTECERT_MAX + 1, f);
        if (ferror(f))
            rg_ctl_error("cannot read %s: %s", cfg->cert_file, strerror(errno));
        else if (rg_routecert_check(pem, len, key, cfg->ca_file, time(NULL), NULL,
                                    err, sizeof(err)) < 0)
            rg_ctl_error("certificate %s not usable: %s", cfg->cert_file, err);
        else
            rc = 0;
        fclose(f);
    }
    rg_provider_wipe(pem, len);     /* may be one key_cert.pem */
    rg_free(pem);
    return rc;
}

/* The provider client for --route or --provider; NULL after saying why. */
static struct rg_provider *open_provider(struct rg_ctl *ctl, const struct decrypt_args *a,
                                         const char **url)
{
    struct rg_provider_config cfg;
    const struct rg_conf *conf;
    const struct rg_route *r;
    struct rg_provider *p;
    char err[512];

    memset(&cfg, 0, sizeof(cfg));
    if (a->route != NULL) {
        if ((conf = rg_ctl_conf(ctl)) == NULL)
            return NULL;
        if ((r = rg_conf_route(conf, a->route)) == NULL) {
            rg_ctl_error("no route '%s' in %s", a->route, conf->path);
            return NULL;
        }
        if (r->provider == NULL || r->provider_ca == NULL) {
            rg_ctl_error("route %s has no %s in %s", r->name,
                         r->provider == NULL ? "provider" : "provider_ca", conf->path);
            return NULL;
        }
        if (access(r->provider_cert, F_OK) < 0) {
            rg_ctl_error("route %s has no certificate (%s): enrol it first (regigatectl route "
                         "cert-request %s, then route cert-import %s)", r->name,
                         r->provider_cert, r->name, r->name);
            return NULL;
        }
        cfg.url = r->provider;
        cfg.ca_file = r->provider_ca;
        cfg.cert_file = r->provider_cert;
        cfg.key_file = r->provider_key;
        cfg.connect_timeout_ms = 1000L * r->provider_connect_timeout;
        cfg.timeout_ms = 1000L * r->provider_timeout;
    } else {
        if (rg_provider_url_check(a->url) < 0) {
            rg_ctl_error("--provider %s: not a provider URL (https://HOST[:PORT])", a->url);
            return NULL;
        }
        cfg.url = a->url;
        cfg.ca_file = a->ca;
        cfg.cert_file = a->cert;
        cfg.key_file = a->key;
    }
    p = rg_provider_new(&cfg, err, sizeof(err));
    if (p == NULL)
        rg_ctl_error("%s", err);
    else if (check_cert(&cfg) < 0)
        p = rg_provider_free(p);
    *url = cfg.url;
    return p;
}

/* The whole message into sp; -1 after saying why. */
static int read_message(const char *path, const char *name, struct rg_spool *sp)
{
    char buf[65536];
    ssize_t n;
    int fd = 0;

    if (path != NULL && (fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
        rg_ctl_error("cannot open %s: %s", name, strerror(errno));
        return -1;
    }
    for (;;) {
        n = read(fd, buf, sizeof(buf));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0 || rg_spool_write(sp, buf, (size_t)n) < 0)
            break;
    }
    if (n == 0 && rg_spool_finish(sp) < 0)
        n = -1;
    if (n < 0 || sp->error != 0)
        rg_ctl_error("cannot read %s: %s", name, strerror(sp->error ? sp->error : errno));
    if (fd != 0)
        close(fd);
    return n == 0 && sp->error == 0 ? 0 : -1;
}

static int write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* The spool's content to fd; -1 with errno set. */
static int copy_out(struct rg_spool *sp, int fd)
{
    char buf[65536];
    off_t off = 0;
    ssize_t n;
    int rc = 0, saved;

    while ((n = rg_spool_read(sp, buf, sizeof(buf), off)) > 0
           && (rc = write_all(fd, buf, (size_t)n)) == 0)
        off += n;
    saved = errno;
    rg_provider_wipe(buf, sizeof(buf));     /* plaintext */
    errno = saved;
    return n < 0 || rc < 0 ? -1 : 0;
}

/* The plaintext into an existing path that is not a regular file (a
 * symbolic link such as /dev/stdout, a device, a FIFO): written in place,
 * as to standard output. */
static int write_in_place(struct rg_spool *sp, const char *path)
{
    int fd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC | O_NOCTTY), saved = 0;

    if (fd < 0 || copy_out(sp, fd) < 0)
        saved = errno;
    if (fd >= 0 && close(fd) < 0 && saved == 0)
        saved = errno;
    if (saved != 0)
        rg_ctl_error("cannot write %s: %s", path, strerror(saved));
    return saved != 0 ? -1 : 0;
}

/*
 * The plaintext into path: a temporary file beside it (mkostemp: 0600),
 * renamed over it when complete. Interrupting signals wait until the file
 * is either in place or removed, so a half-written copy never stays.
 */
static int write_file(struct rg_spool *sp, const char *path)
{
    sigset_t block, old;
    struct stat stb;
    char *tmp;
    int fd, rc = -1, saved = 0;

    /* renaming over /dev/null or /dev/stdout (as root) would replace them */
    if (lstat(path, &stb) == 0 && !S_ISREG(stb.st_mode))
        return write_in_place(sp, path);
    tmp = rg_sprintf("%s.XXXXXX", path);

    sigemptyset(&block);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGTERM);
    sigaddset(&block, SIGHUP);
    sigaddset(&block, SIGQUIT);
    sigprocmask(SIG_BLOCK, &block, &old);
    if ((fd = mkostemp(tmp, O_CLOEXEC)) < 0) {
        rg_ctl_error("cannot create a temporary file for %s: %s", path, strerror(errno));
    } else {
        if (copy_out(sp, fd) < 0 || fsync(fd) < 0)
            saved = errno;
        if (close(fd) < 0 && saved == 0)
            saved = errno;
        if (saved == 0 && rename(tmp, path) < 0)
            saved = errno;
        if (saved != 0) {
            unlink(tmp);
            rg_ctl_error("cannot write %s: %s", path, strerror(saved));
        } else {
            rc = 0;
        }
    }
    sigprocmask(SIG_SETMASK, &old, NULL);
    rg_free(tmp);
    return rc;
}

/* Exit code and one line for a failed key fetch. */
static int fetch_failed(enum rg_provider_status st, const struct rg_provider_info *info,
                        const char *url, const char *recipient, const char *txid)
{
    switch (st) {
    case RG_PROVIDER_NOT_FOUND:
        rg_ctl_error("transaction %s is unknown at the provider %s", txid, url);
        return RG_CTL_FAIL;
    case RG_PROVIDER_NOT_ALLOWED:
        rg_ctl_error("%s is not a recipient of transaction %s: the provider %s gives its key "
                     "only to its recipients", recipient, txid, url);
        return RG_CTL_FAIL;
    case RG_PROVIDER_NO_ACCOUNT:
        rg_ctl_error("%s has no account at the provider %s: it can decrypt the message once "
                     "it has one", recipient, url);
        return RG_CTL_FAIL;
    case RG_PROVIDER_TEMPFAIL:
        rg_ctl_error("provider %s temporarily unavailable: %s; try again later", url,
                     info->reason[0] ? info->reason : "no answer");
        return RG_CTL_TEMPFAIL;
    case RG_PROVIDER_UNAUTHORIZED:
        /* a retry does not help until the enrolment is fixed */
        rg_ctl_error("provider %s does not accept this gateway's certificate or address: %s",
                     url, info->reason);
        return RG_CTL_FAIL;
    default:
        rg_ctl_error("provider %s: %s: %s", url, rg_provider_strerror(st), info->reason);
        return RG_CTL_FAIL;
    }
}

int rg_ctl_decrypt(struct rg_ctl *ctl, int argc, char **argv)
{
    struct decrypt_args a;
    struct rg_provider *p = NULL;
    struct rg_provider_info pinfo;
    struct rg_smime_info info;
    struct rg_spool in, out;
    enum rg_provider_status pst;
    unsigned char kek[RG_SMIME_KEK_LEN];
    char recipient[RG_PJ_ADDR_MAX + 1], err[512];
    const char *dir = getenv("TMPDIR"), *name, *url = NULL;
    int st, rc = RG_CTL_FAIL;

    if (parse_args(argc, argv, &a) < 0)
        return rg_ctl_usage(&decrypt_cmd);
    if (rg_pj_address_normalize(a.recipient, strlen(a.recipient), recipient) < 0) {
        rg_ctl_error("decrypt: --recipient %s: not an e-mail address", a.recipient);
        return RG_CTL_USAGE;
    }
    if (a.in != NULL && strcmp(a.in, "-") == 0)
        a.in = NULL;
    name = a.in != NULL ? a.in : "standard input";
    if (dir == NULL || *dir == '\0')
        dir = "/tmp";
    rg_spool_init(&in, dir, SPOOL_MEMORY);
    rg_spool_init(&out, dir, SPOOL_MEMORY);

    if ((p = open_provider(ctl, &a, &url)) == NULL || read_message(a.in, name, &in) < 0)
        goto done;
    st = rg_smime_detect_spool(&in, &info);
    if (st == RG_SMIME_NOT_OURS && info.kind == RG_SMIME_KIND_OTHER) {
        rg_ctl_error("%s: not an encrypted regigate message but other S/MIME (signed, or "
                     "encrypted for a certificate): open it with the recipient's S/MIME key", name);
        goto done;
    } else if (st == RG_SMIME_NOT_OURS) {
        rg_ctl_error("%s: not an encrypted regigate message (no S/MIME in it)", name);
        goto done;
    } else if (st != RG_SMIME_OK) {
        rg_ctl_error("%s: %s: %s", name, rg_smime_strerror(st),
                     st == RG_SMIME_INTERNAL ? "cannot read the message"
                     : "cannot read the start of the CMS structure");
        goto done;
    }

    memset(&pinfo, 0, sizeof(pinfo));
    pst = rg_provider_fetch_key(p, info.txid, recipient, kek, &pinfo);
    if (pst != RG_PROVIDER_OK) {
        rc = fetch_failed(pst, &pinfo, url, recipient, info.txid_hex);
        goto done;
    }
    st = rg_smime_decrypt(&in, kek, &out, err, sizeof(err));
    rg_provider_wipe(kek, sizeof(kek));
    if (st != RG_SMIME_OK) {
        /* out is empty: nothing of the plaintext is written anywhere */
        rg_ctl_error("%s: %s", name, err);
        goto done;
    }
    if (a.out != NULL) {
        if (write_file(&out, a.out) == 0)
            rc = RG_CTL_OK;
    } else if (copy_out(&out, STDOUT_FILENO) < 0) {
        rg_ctl_error("cannot write standard output: %s", strerror(errno));
    } else {
        rc = RG_CTL_OK;
    }

done:
    rg_provider_wipe(kek, sizeof(kek));
    if (out.mem != NULL)        /* the plaintext, in memory */
        rg_provider_wipe(out.mem, out.mem_limit);
    rg_spool_free(&out);
    rg_spool_free(&in);
    rg_provider_free(p);
    return rc;
}
