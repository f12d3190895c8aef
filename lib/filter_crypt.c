/*
 * filter_crypt.c - the encrypt and decrypt actions; see filter_crypt.h.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include <openssl/evp.h>

#include "filter_crypt.h"
#include "filter_int.h"
#include "header.h"
#include "log.h"
#include "mem.h"
#include "provider_client.h"
#include "smime.h"

#define COPY_CHUNK 65536

struct crypt_ctx {
    struct rg_provider *prov;
    char err[256];          /* why prov is NULL */
    int logged;             /* the reason was logged once */
};

static const char *qid(const struct rg_filter_job *j)
{
    return j->env->queue_id[0] ? j->env->queue_id : "NOQUEUE";
}

/* The worker's provider client for the route, made on first use (and
 * retried while it cannot be made: a key installed later is picked up). */
static struct rg_provider *provider(struct rg_filter *f)
{
    struct crypt_ctx *c = f->crypt_ctx;
    const struct rg_route *r = f->route;

    if (c->prov != NULL)
        return c->prov;
    if (r->provider == NULL) {
        snprintf(c->err, sizeof(c->err), "route %s has no provider", r->name);
    } else {
        struct rg_provider_config pc = {
            .url = r->provider,
            .ca_file = r->provider_ca,
            .cert_file = r->provider_cert,
            .key_file = r->provider_key,
            .connect_timeout_ms = r->provider_connect_timeout * 1000L,
            .timeout_ms = r->provider_timeout * 1000L,
            .cache_positive_ttl = r->account_cache_ttl,
            .cache_negative_ttl = r->account_cache_negative_ttl,
            .contact_file = r->provider_contact_file,
        };
        c->prov = rg_provider_new(&pc, c->err, sizeof(c->err));
        if (c->prov != NULL)
            return c->prov;
    }
    if (!c->logged)
        rg_error("route %s: cannot use the key provider: %s", r->name, c->err);
    c->logged = 1;
    return NULL;
}

static void set_replies(struct rg_filter_job *j, const size_t *idx, size_t n,
                        const struct rg_reply *r)
{
    for (size_t i = 0; i < n; i++)
        j->down[idx[i]] = j->up[idx[i]] = *r;
}

/* Defer idx[0..n) with a 451 that says why, and log it. */
static void defer(struct rg_filter_job *j, const size_t *idx, size_t n,
                  const struct rg_rules_result *res, const char *status, const char *why)
{
    struct rg_reply r;

    rg_reply_set(&r, 451, "451 %s Error: %.400s", status, why);
    set_replies(j, idx, n, &r);
    rg_filter_log_outcome(j, idx, n, res->action, res->rule, NULL);
}

/* Append sp[off..) to out. */
static int copy_spool(struct rg_spool *out, struct rg_spool *sp, off_t off)
{
    char *buf = rg_malloc(COPY_CHUNK);
    ssize_t n;
    int rc = 0;

    while ((n = rg_spool_read(sp, buf, COPY_CHUNK, off)) > 0) {
        if (rg_spool_write(out, buf, (size_t)n) < 0) {
            rc = -1;
            break;
        }
        off += n;
    }
    if (n < 0)
        rc = -1;
    rg_free(buf);
    return rc;
}

/* The memory limit of a spool for a message made from `in` (a tagged copy,
 * the encrypted form) that needs about `need` bytes: when `in` was kept in
 * memory, so is what is made from it, up to twice spool_memory_limit. The
 * encrypted form is 1.37 times the original (base64), so without this a
 * message just below the limit went to a file for its encrypted copy only,
 * which cost a 100 KiB message about a quarter of a millisecond of file
 * creation, page cache and unlink (doc/performance.md). */
static size_t derived_limit(const struct rg_conf *conf, const struct rg_spool *in, size_t need)
{
    size_t lim = conf->spool_memory_limit;

    if (in->fd < 0 && need > lim)
        lim = need < 2 * lim ? need : 2 * lim;
    return lim;
}

/* About how large the encrypted form of `size` bytes is: base64 lines of 76
 * characters of the CMS (the message plus < 1 KiB), and the outer header. */
static size_t encrypted_size(size_t size)
{
    return ((size + 1024) / 57 + 1) * 78 + 8192;
}

static int sha256_spool(struct rg_spool *sp, unsigned char md[32])
{
    const char *mem = rg_spool_mem(sp);
    EVP_MD_CTX *ctx;
    char *buf;
    off_t off = 0;
    ssize_t n;
    int rc = -1;

    /* a message held in memory is hashed where it is, without a copy */
    if (mem != NULL) {
        unsigned int mdlen = 0;
        return EVP_Digest(mem, rg_spool_size(sp), md, &mdlen, EVP_sha256(), NULL) == 1 && mdlen == 32
               ? 0 : -1;
    }
    ctx = EVP_MD_CTX_new();
    buf = rg_malloc(COPY_CHUNK);
    if (ctx == NULL || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1)
        goto out;
    while ((n = rg_spool_read(sp, buf, COPY_CHUNK, off)) > 0) {
        if (EVP_DigestUpdate(ctx, buf, (size_t)n) != 1)
            goto out;
        off += n;
    }
    if (n == 0 && EVP_DigestFinal_ex(ctx, md, NULL) == 1)
        rc = 0;
out:
    EVP_MD_CTX_free(ctx);
    rg_free(buf);
    return rc;
}

/* The Message-ID for the provider's records: one line of printable text,
 * at most 998 bytes (the protocol's limit), "" when there is none. */
static char *message_id(const struct rg_headers *h)
{
    long i = h ? rg_headers_find(h, "Message-ID", 0) : -1;
    char *v, *p, *q;

    if (i < 0)
        return rg_strdup("");
    v = rg_header_value_raw(h, (size_t)i);
    for (p = q = v; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (c < 0x20 || c == 0x7f)
            c = ' ';
        if (c == ' ' && (q == v || q[-1] == ' '))
            continue;
        *q++ = (char)c;
    }
    while (q > v && q[-1] == ' ')
        q--;
    *q = 0;
    if (strlen(v) > 998)
        v[998] = 0;
    return v;
}

static void encrypt_msg(struct rg_filter_job *j, const size_t *idx, size_t n,
                        const struct rg_rules_result *res)
{
    const struct rg_conf *conf = j->f->conf;
    const struct rg_route *route = j->f->route;
    struct rg_provider *prov = provider(j->f);
    struct rg_provider_info pinfo;
    struct rg_provider_txn txn;
    struct rg_spool inner, out;
    struct rg_spool *in = j->sp;
    struct rg_msgsrc src;
    struct rg_reply r;
    enum rg_provider_status st;
    unsigned char md[32];
    const char **rcpts = NULL;
    char *head, *msgid = NULL, err[256], extra[96], why[512];
    int smst;

    memset(&pinfo, 0, sizeof(pinfo));
    memset(&txn, 0, sizeof(txn));
    rg_spool_init(&inner, conf->spool_dir, conf->spool_memory_limit);
    rg_spool_init(&out, conf->spool_dir, conf->spool_memory_limit);
    if (prov == NULL) {
        snprintf(why, sizeof(why), "key provider not usable: %s", ((struct crypt_ctx *)j->f->crypt_ctx)->err);
        defer(j, idx, n, res, "4.7.0", why);
        goto done;
    }
    /* the seed: only a sender with an account may send encrypted mail;
     * anything else is refused for good, so that it never leaves in clear */
    st = rg_provider_account(prov, j->env->sender, &pinfo);
    if (st == RG_PROVIDER_OK) {
        /* go on */
    } else if (st == RG_PROVIDER_NO_ACCOUNT) {
        goto no_account;
    } else {
        snprintf(why, sizeof(why), "key provider: %s", pinfo.reason[0] ? pinfo.reason
                                                                       : rg_provider_strerror(st));
        rg_warn("%s: route %s: account lookup of <%s>: %s", qid(j), route->name,
                j->env->sender, why);
        defer(j, idx, n, res, "4.7.0", why);
        goto done;
    }

    /* the message to encrypt: the original, with the rule's tags applied */
    head = rg_filter_tagged_source(j, res, j->head, j->head_avail, j->sp, &src);
    if (head != NULL) {
        rg_spool_init(&inner, conf->spool_dir,
                      derived_limit(conf, j->sp, src.head_len + rg_spool_size(j->sp) - (size_t)src.off));
        int bad = rg_spool_write(&inner, head, src.head_len) < 0
                  || copy_spool(&inner, j->sp, src.off) < 0 || rg_spool_finish(&inner) < 0;
        rg_free(head);
        if (bad) {
            rg_error("%s: cannot spool the message to encrypt: %s", qid(j), strerror(inner.error));
            defer(j, idx, n, res, "4.3.0", "local error spooling the message");
            goto done;
        }
        in = &inner;
    }
    if (sha256_spool(in, md) < 0) {
        rg_error("%s: cannot compute the digest of the message", qid(j));
        defer(j, idx, n, res, "4.3.0", "local error reading the message");
        goto done;
    }
    rcpts = rg_calloc(n, sizeof(*rcpts));
    for (size_t i = 0; i < n; i++)
        rcpts[i] = j->env->rcpts[idx[i]];
    msgid = message_id(j->headers);
    st = rg_provider_create(prov, j->env->sender, rcpts, n, msgid, md, &txn, &pinfo);
    if (st == RG_PROVIDER_NO_ACCOUNT)
        goto no_account;
    if (st != RG_PROVIDER_OK) {
        snprintf(why, sizeof(why), "key provider: %s", pinfo.reason[0] ? pinfo.reason
                                                                       : rg_provider_strerror(st));
        rg_warn("%s: route %s: create transaction: %s", qid(j), route->name, why);
        defer(j, idx, n, res, "4.7.0", why);
        goto done;
    }
    struct rg_smime_outer outer = { route->hide_subject, route->hidden_subject };
    rg_spool_init(&out, conf->spool_dir, derived_limit(conf, in, encrypted_size(rg_spool_size(in))));
    smst = rg_smime_encrypt(in, txn.kek, txn.id, &outer, &out, err, sizeof(err));
    rg_provider_wipe(txn.kek, sizeof(txn.kek));
    if (smst != RG_SMIME_OK) {
        rg_error("%s: cannot encrypt the message: %s", qid(j), err);
        defer(j, idx, n, res, "4.3.0", "local error encrypting the message");
        goto done;
    }
    struct rg_msgsrc enc = { NULL, 0, &out, 0 };
    rg_filter_reinject(j, NULL, idx, n, &enc);
    snprintf(extra, sizeof(extra), "txid=%s%s", txn.id_hex, txn.replayed ? " replayed=yes" : "");
    rg_filter_log_outcome(j, idx, n, res->action, res->rule, extra);
    goto done;

no_account:
    if (j->env->sender[0])
        rg_reply_set(&r, 550, "550 5.7.1 Error: sender <%.300s> has no account at the key "
                     "provider; the message cannot be sent encrypted", j->env->sender);
    else
        rg_reply_set(&r, 550, "550 5.7.1 Error: the null sender has no account at the key "
                     "provider; the message cannot be sent encrypted");
    set_replies(j, idx, n, &r);
    j->refused = 1;
    rg_filter_log_outcome(j, idx, n, res->action, res->rule, "sender_account=no");
    j->refused = 0;
done:
    rg_free(msgid);
    rg_free(rcpts);
    rg_spool_free(&inner);
    rg_spool_free(&out);
}

/* Pass the message on as it came (with the rule's tags) to idx[0..n). */
static void pass_on(struct rg_filter_job *j, const size_t *idx, size_t n,
                    const struct rg_rules_result *res)
{
    struct rg_msgsrc src;
    char *head = rg_filter_tagged_source(j, res, j->head, j->head_avail, j->sp, &src);

    rg_filter_reinject(j, NULL, idx, n, &src);
    rg_free(head);
}

/* The first max_header_size + 1 bytes of sp, for the tags. */
static char *read_head(struct rg_filter_job *j, struct rg_spool *sp, size_t *len)
{
    size_t want = j->f->route->max_header_size + 1, got = 0;
    char *buf;

    if (want > rg_spool_size(sp))
        want = rg_spool_size(sp);
    buf = rg_malloc(want + 1);
    while (got < want) {
        ssize_t r = rg_spool_read(sp, buf + got, want - got, (off_t)got);
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    *len = got;
    return buf;
}

enum rcpt_fate { FATE_PLAIN, FATE_PASS, FATE_DEFER };

static void decrypt_msg(struct rg_filter_job *j, const size_t *idx, size_t n,
                        const struct rg_rules_result *res)
{
    const struct rg_conf *conf = j->f->conf;
    const struct rg_route *route = j->f->route;
    struct rg_smime_info info;
    struct rg_provider *prov;
    struct rg_provider_info pinfo;
    struct rg_spool plain;
    unsigned char kek[RG_SMIME_KEK_LEN], k[RG_SMIME_KEK_LEN];
    enum rcpt_fate *fate = rg_calloc(n, sizeof(*fate));
    const char **reason = rg_calloc(n, sizeof(*reason));
    char **reason_buf = rg_calloc(n, sizeof(*reason_buf));
    size_t *grp = rg_calloc(n, sizeof(*grp));
    size_t ngrp;
    int have_kek = 0, st;
    char err[256], extra[RG_REPLY_MAX + 64];

    rg_spool_init(&plain, conf->spool_dir, conf->spool_memory_limit);
    st = rg_smime_detect_spool(j->sp, &info);
    if (st == RG_SMIME_INTERNAL) {
        rg_error("%s: cannot read the spooled message", qid(j));
        defer(j, idx, n, res, "4.3.0", "local error reading the message");
        goto done;
    }
    if (st != RG_SMIME_OK) {
        /* not ours (or unreadable): nothing to decrypt, it passes as it is */
        pass_on(j, idx, n, res);
        snprintf(extra, sizeof(extra), "decrypt=%s",
                 st != RG_SMIME_NOT_OURS ? "malformed"
                 : info.kind == RG_SMIME_KIND_OTHER ? "not-regigate-smime" : "not-encrypted");
        if (st != RG_SMIME_NOT_OURS)
            rg_warn("%s: encrypted message passed on unchanged: %s", qid(j), rg_smime_strerror(st));
        rg_filter_log_outcome(j, idx, n, res->action, res->rule, extra);
        goto done;
    }
    if ((prov = provider(j->f)) == NULL) {
        char why[400];
        snprintf(why, sizeof(why), "key provider not usable: %s",
                 ((struct crypt_ctx *)j->f->crypt_ctx)->err);
        defer(j, idx, n, res, "4.7.0", why);
        goto done;
    }

    /* whose key do we get? (fetching it is what the provider records) */
    for (size_t i = 0; i < n; i++) {
        const char *rcpt = j->env->rcpts[idx[i]];
        enum rg_provider_status ps;

        memset(&pinfo, 0, sizeof(pinfo));
        ps = rg_provider_fetch_key(prov, info.txid, rcpt, k, &pinfo);
        switch (ps) {
        case RG_PROVIDER_OK:
            if (!have_kek) {
                memcpy(kek, k, sizeof(kek));
                have_kek = 1;
                fate[i] = FATE_PLAIN;
            } else if (memcmp(kek, k, sizeof(kek)) == 0) {
                fate[i] = FATE_PLAIN;
            } else {        /* one transaction has one key */
                fate[i] = FATE_PASS;
                reason[i] = "provider gave a different key";
            }
            break;
        case RG_PROVIDER_NO_ACCOUNT:
            fate[i] = FATE_PASS;
            reason[i] = "no-account";
            break;
        case RG_PROVIDER_NOT_FOUND:
            fate[i] = FATE_PASS;
            reason[i] = "unknown-transaction";
            break;
        case RG_PROVIDER_NOT_ALLOWED:
            fate[i] = FATE_PASS;
            reason[i] = "not-a-recipient";
            break;
        default:
            fate[i] = FATE_DEFER;
            reason_buf[i] = rg_sprintf("key provider: %s",
                                       pinfo.reason[0] ? pinfo.reason : rg_provider_strerror(ps));
            reason[i] = reason_buf[i];
            rg_warn("%s: route %s: key of transaction %s for <%s>: %s", qid(j), route->name,
                    info.txid_hex, rcpt, reason[i]);
            break;
        }
        rg_provider_wipe(k, sizeof(k));
    }

    if (have_kek) {
        st = rg_smime_decrypt(j->sp, kek, &plain, err, sizeof(err));
        rg_provider_wipe(kek, sizeof(kek));
        if (st != RG_SMIME_OK) {
            enum rcpt_fate to = st == RG_SMIME_INTERNAL ? FATE_DEFER : FATE_PASS;
            rg_warn("%s: transaction %s: cannot decrypt: %s", qid(j), info.txid_hex, err);
            for (size_t i = 0; i < n; i++)
                if (fate[i] == FATE_PLAIN) {
                    fate[i] = to;
                    reason[i] = to == FATE_DEFER ? "local error decrypting the message"
                                                 : rg_smime_strerror(st);
                }
        }
    }

    /* the recipients who get the original back */
    ngrp = 0;
    for (size_t i = 0; i < n; i++)
        if (fate[i] == FATE_PLAIN)
            grp[ngrp++] = idx[i];
    if (ngrp > 0) {
        struct rg_envelope env = *j->env;
        struct rg_msgsrc src;
        size_t hlen;
        char *h = read_head(j, &plain, &hlen);
        char *head = rg_filter_tagged_source(j, res, h, hlen, &plain, &src);

        /* the original may be 8-bit even though its encrypted form was not */
        env.params.body = RG_BODY_8BITMIME;
        rg_filter_reinject(j, &env, grp, ngrp, &src);
        rg_free(head);
        rg_free(h);
        snprintf(extra, sizeof(extra), "txid=%s decrypt=ok", info.txid_hex);
        rg_filter_log_outcome(j, grp, ngrp, res->action, res->rule, extra);
    }

    /* the recipients who get the encrypted message as it came */
    ngrp = 0;
    for (size_t i = 0; i < n; i++)
        if (fate[i] == FATE_PASS)
            grp[ngrp++] = idx[i];
    if (ngrp > 0) {
        pass_on(j, grp, ngrp, res);
        /* one log line per reason */
        for (size_t i = 0; i < n; i++) {
            size_t m = 0;
            if (fate[i] != FATE_PASS || reason[i] == NULL)
                continue;
            for (size_t k2 = i; k2 < n; k2++)
                if (fate[k2] == FATE_PASS && reason[k2] && strcmp(reason[k2], reason[i]) == 0) {
                    grp[m++] = idx[k2];
                    if (k2 != i)
                        reason[k2] = NULL;
                }
            snprintf(extra, sizeof(extra), "txid=%s decrypt=passed(%s)", info.txid_hex, reason[i]);
            rg_filter_log_outcome(j, grp, m, res->action, res->rule, extra);
        }
    }

    /* the recipients whose key the provider could not give now */
    for (size_t i = 0; i < n; i++) {
        if (fate[i] != FATE_DEFER)
            continue;
        struct rg_reply r;
        rg_reply_set(&r, 451, "451 4.7.0 Error: %.400s", reason[i]);
        j->down[idx[i]] = j->up[idx[i]] = r;
        snprintf(extra, sizeof(extra), "txid=%s", info.txid_hex);
        rg_filter_log_outcome(j, &idx[i], 1, res->action, res->rule, extra);
    }
done:
    rg_spool_free(&plain);
    for (size_t i = 0; i < n; i++)
        rg_free(reason_buf[i]);
    rg_free(reason_buf);
    rg_free(reason);
    rg_free(fate);
    rg_free(grp);
}

static void crypt_act(struct rg_filter_job *j, const size_t *idx, size_t n,
                      const struct rg_rules_result *res)
{
    if (res->action == RG_ACT_ENCRYPT)
        encrypt_msg(j, idx, n, res);
    else
        decrypt_msg(j, idx, n, res);
}

void rg_filter_crypt_init(struct rg_filter *f)
{
    f->crypt = crypt_act;
    f->crypt_ctx = rg_calloc(1, sizeof(struct crypt_ctx));
}

void rg_filter_crypt_free(struct rg_filter *f)
{
    struct crypt_ctx *c = f->crypt_ctx;

    if (c != NULL) {
        c->prov = rg_provider_free(c->prov);
        rg_free(c);
    }
    f->crypt_ctx = NULL;
    f->crypt = NULL;
}
