/*
 * filter.c - decide, reinject, reply and log for one message; see filter.h.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "buf.h"
#include "filter.h"
#include "header.h"
#include "log.h"
#include "mem.h"
#include "netio.h"
#include "queueid.h"
#include "smime.h"
#include "filter_int.h"

void rg_filter_init(struct rg_filter *f, const struct rg_conf *conf, const struct rg_route *route,
                    const struct rg_rules *rules)
{
    f->conf = conf;
    f->route = route;
    f->rules = rules;
    f->smtpc = rg_smtpc_new(&route->reinject, conf->myhostname, conf->reinject_timeout * 1000);
}

void rg_filter_free(struct rg_filter *f)
{
    f->smtpc = rg_smtpc_free(f->smtpc);
}

/* The upstream queue id: XFORWARD IDENT, else the top Received header. */
static void find_queue_id(struct rg_envelope *env, struct rg_spool *sp)
{
    char head[8192];
    ssize_t n;

    if (env->xf.value[RG_XF_IDENT][0]
        && rg_xtext_decode(env->xf.value[RG_XF_IDENT], env->queue_id, sizeof(env->queue_id)) == 0
        && strcmp(env->queue_id, "[UNAVAILABLE]") != 0)
        return;
    env->queue_id[0] = 0;
    n = rg_spool_read(sp, head, sizeof(head), 0);
    if (n <= 0 || rg_queue_id_from_received(head, (size_t)n, env->queue_id,
                                            sizeof(env->queue_id)) < 0)
        env->queue_id[0] = 0;
}

/*
 * Turn a downstream outcome into our reply to upstream: success quotes the
 * downstream reply (its queue id); 5xx passes as it is; anything temporary
 * is a 451 that keeps the reason.
 */
static void upstream_reply(const struct rg_reply *down, struct rg_reply *up)
{
    switch (rg_reply_class(down)) {
    case 2:
        rg_reply_set(up, 250, "250 2.0.0 Ok: forwarded (%.450s)", down->text);
        break;
    case 5:
        *up = *down;
        break;
    default:
        if (down->code == 451)
            *up = *down;
        else
            rg_reply_set(up, 451, "451 4.3.0 Error: next hop said: %.450s", down->text);
        break;
    }
}

void rg_filter_summarize(const struct rg_reply *per, size_t n, struct rg_reply *summary)
{
    const struct rg_reply *temp = NULL, *perm = NULL;

    for (size_t i = 0; i < n; i++) {
        int cls = rg_reply_class(&per[i]);
        if (cls == 5 && !perm)
            perm = &per[i];
        else if (cls != 2 && cls != 5 && !temp)
            temp = &per[i];
    }
    if (temp)
        *summary = *temp;
    else if (perm)
        *summary = *perm;
    else if (n > 0)
        *summary = per[0];
    else
        rg_reply_set(summary, 451, "451 4.3.0 Error: no recipients");
}

static const char *status_word(const struct rg_reply *r, enum rg_action action, int refused)
{
    switch (rg_reply_class(r)) {
    case 2: return action == RG_ACT_DISCARD ? "discarded" : "sent";
    case 5: return action == RG_ACT_REJECT || refused ? "rejected" : "bounced";
    default: return "deferred";
    }
}

void rg_filter_log_outcome(struct rg_filter_job *j, const size_t *idx, size_t n,
                           enum rg_action action, const char *rule, const char *extra)
{
    char *done = rg_calloc(n ? n : 1, 1);
    double delay = (double)(rg_now_ms() - j->t0) / 1000.0;
    const struct rg_envelope *env = j->env;

    for (size_t a = 0; a < n; a++) {
        const struct rg_reply *r = &j->down[idx[a]];
        struct rg_buf to;
        if (done[a])
            continue;
        rg_buf_init(&to, 1500);
        for (size_t b = a; b < n; b++) {
            if (done[b] || strcmp(j->down[idx[b]].text, r->text) != 0)
                continue;
            done[b] = 1;
            if (rg_buf_printf(&to, "%s<%s>", to.len ? "," : "", env->rcpts[idx[b]]) < 0) {
                (void)rg_buf_appends(&to, ",...");
                break;
            }
        }
        rg_info("%s: route=%s client=%s from=<%s> to=%s size=%zu action=%s rule=%s status=%s "
                "reply=(%s) delay=%.3f%s%s%s",
                env->queue_id[0] ? env->queue_id : "NOQUEUE", j->f->route->name,
                env->client_addr, env->sender, to.data ? to.data : "", j->size,
                rg_action_name(action), rule, status_word(r, action, j->refused), r->text, delay,
                extra && *extra ? " " : "", extra ? extra : "", j->orig);
        rg_buf_free(&to);
    }
    rg_free(done);
}

void rg_filter_reinject(struct rg_filter_job *j, const struct rg_envelope *env, const size_t *idx,
                        size_t n, const struct rg_msgsrc *src)
{
    char **rcpts = rg_calloc(n, sizeof(char *));
    struct rg_reply *down = rg_calloc(n, sizeof(*down));

    for (size_t i = 0; i < n; i++)
        rcpts[i] = j->env->rcpts[idx[i]];
    (void)rg_smtpc_send(j->f->smtpc, env ? env : j->env, rcpts, n, src, down);
    for (size_t i = 0; i < n; i++) {
        j->down[idx[i]] = down[i];
        upstream_reply(&down[i], &j->up[idx[i]]);
    }
    rg_free(down);
    rg_free(rcpts);
}

char *rg_filter_tagged_source(struct rg_filter_job *j, const struct rg_rules_result *res,
                              const char *head, size_t head_avail, struct rg_spool *sp,
                              struct rg_msgsrc *src)
{
    struct rg_headers h;
    char *out = NULL;
    size_t size = rg_spool_size(sp);

    memset(src, 0, sizeof(*src));
    src->sp = sp;
    if (res == NULL || res->ntags == 0)
        return NULL;
    memset(&h, 0, sizeof(h));
    if (rg_headers_parse(head, head_avail, head_avail == size, j->f->route->max_header_size, &h)
        == RG_HDR_OK && rg_rules_apply_tags(res, &h) > 0) {
        out = rg_headers_serialize(&h, &src->head_len);
        src->head = out;
        src->off = (off_t)h.body_offset;
    }
    rg_headers_free(&h);
    return out;
}

/* Make the header section available: the first max_header_size + 1 bytes. */
static int load_head(struct rg_filter_job *j)
{
    size_t want = j->f->route->max_header_size + 1;
    const char *mem = rg_spool_mem(j->sp);

    if (want > j->size)
        want = j->size;
    if (mem) {
        j->head = mem;
        j->head_avail = want;
        return 0;
    }
    j->head_buf = rg_malloc(want ? want : 1);
    size_t got = 0;
    while (got < want) {
        ssize_t n = rg_spool_read(j->sp, j->head_buf + got, want - got, (off_t)got);
        if (n <= 0)
            return -1;
        got += (size_t)n;
    }
    j->head = j->head_buf;
    j->head_avail = want;
    return 0;
}

/* Is the message an S/MIME (CMS) one? From the top-level Content-Type:
 * 1 pkcs7-mime, 0 not, -1 a multipart/mixed that may carry one as its
 * .p7m attachment (is_encrypted_part looks, if a rule asks). */
static int is_encrypted(const struct rg_headers *h)
{
    long i = rg_headers_find(h, "Content-Type", 0);
    char *v;
    int enc = 0;

    if (i < 0)
        return 0;
    v = rg_header_value(h, (size_t)i);
    if (strncasecmp(v, "application/pkcs7-mime", 22) == 0
        || strncasecmp(v, "application/x-pkcs7-mime", 24) == 0)
        enc = 1;
    else if (strncasecmp(v, "multipart/mixed", 15) == 0)
        enc = -1;
    rg_free(v);
    return enc;
}

static int is_encrypted_part(void *ctx)
{
    struct rg_filter_job *j = ctx;
    struct rg_smime_info info;

    if (j->encrypted_part < 0) {
        int st = rg_smime_detect_spool(j->sp, &info);
        j->encrypted_part = (st == RG_SMIME_OK || info.kind != RG_SMIME_KIND_NONE);
    }
    return j->encrypted_part;
}

/* Carry out one rule decision for the recipients idx[0..n). */
static void act(struct rg_filter_job *j, const size_t *idx, size_t n, const struct rg_rules_result *res)
{
    struct rg_reply r;

    switch (res->action) {
    case RG_ACT_FORWARD: {
        struct rg_msgsrc src;
        char *head = rg_filter_tagged_source(j, res, j->head, j->head_avail, j->sp, &src);
        rg_filter_reinject(j, NULL, idx, n, &src);
        rg_free(head);
        break;
    }
    case RG_ACT_REJECT:
    case RG_ACT_TEMPFAIL:
        rg_reply_set(&r, res->action == RG_ACT_REJECT ? 550 : 451, "%s", res->reply);
        r.code = (res->reply[0] - '0') * 100 + (res->reply[1] - '0') * 10 + (res->reply[2] - '0');
        for (size_t i = 0; i < n; i++)
            j->down[idx[i]] = j->up[idx[i]] = r;
        break;
    case RG_ACT_DISCARD:
        rg_reply_set(&r, 250, "250 2.0.0 Ok: discarded by policy (rule %.200s)", res->rule);
        for (size_t i = 0; i < n; i++)
            j->down[idx[i]] = j->up[idx[i]] = r;
        break;
    case RG_ACT_ENCRYPT:
    case RG_ACT_DECRYPT:
        if (j->f->crypt != NULL) {
            j->f->crypt(j, idx, n, res);    /* logs its own outcomes */
            return;
        }
        /* never pass on mail that policy says to encrypt: retry later */
        rg_reply_set(&r, 451, "451 4.7.0 Error: action %s is not available in this program",
                     rg_action_name(res->action));
        for (size_t i = 0; i < n; i++)
            j->down[idx[i]] = j->up[idx[i]] = r;
        break;
    }
    rg_filter_log_outcome(j, idx, n, res->action, res->rule, NULL);
}

static void decide(struct rg_filter_job *j)
{
    struct rg_envelope *env = j->env;
    size_t *idx = rg_calloc(env->nrcpt, sizeof(size_t));
    struct rg_headers h;
    struct rg_rules_result res;
    struct rg_rules_input in;

    memset(&h, 0, sizeof(h));
    if (load_head(j) < 0) {
        struct rg_reply r;
        rg_error("%s: cannot read the spooled message", env->queue_id[0] ? env->queue_id : "NOQUEUE");
        rg_reply_set(&r, 451, "451 4.3.0 Error: local error reading the message");
        for (size_t i = 0; i < env->nrcpt; i++)
            j->down[i] = j->up[i] = r;
        goto out;
    }
    if (rg_headers_parse(j->head, j->head_avail, j->head_avail == j->size,
                         j->f->route->max_header_size, &h) != RG_HDR_OK) {
        struct rg_reply r;
        rg_reply_set(&r, 552, "552 5.3.4 Error: message header section exceeds %zu bytes",
                     j->f->route->max_header_size);
        for (size_t i = 0; i < env->nrcpt; i++) {
            j->down[i] = j->up[i] = r;
            idx[i] = i;
        }
        rg_filter_log_outcome(j, idx, env->nrcpt, RG_ACT_REJECT, "-", NULL);
        goto out;
    }
    memset(&in, 0, sizeof(in));
    in.sender = env->sender;
    in.headers = &h;
    in.size = j->size;
    in.encrypted = is_encrypted(&h);
    in.is_encrypted = is_encrypted_part;
    in.is_encrypted_ctx = j;
    j->encrypted_part = -1;
    j->headers = &h;
    if (j->f->route->process == RG_PROCESS_RECIPIENT) {
        for (size_t i = 0; i < env->nrcpt; i++) {
            in.rcpts = (const char *const *)&env->rcpts[i];
            in.nrcpt = 1;
            memset(&res, 0, sizeof(res));
            rg_rules_eval(j->f->rules, &in, &res);
            idx[0] = i;
            act(j, idx, 1, &res);
            rg_rules_result_free(&res);
        }
    } else {
        in.rcpts = (const char *const *)env->rcpts;
        in.nrcpt = env->nrcpt;
        memset(&res, 0, sizeof(res));
        rg_rules_eval(j->f->rules, &in, &res);
        for (size_t i = 0; i < env->nrcpt; i++)
            idx[i] = i;
        act(j, idx, env->nrcpt, &res);
        rg_rules_result_free(&res);
    }
out:
    rg_headers_free(&h);
    rg_free(idx);
}

void rg_filter_deliver(void *ctx, struct rg_envelope *env, struct rg_spool *sp,
                       struct rg_reply *per_rcpt, struct rg_reply *summary)
{
    struct rg_filter_job j;
    char name[RG_XF_VALUE_MAX] = "", addr[RG_XF_VALUE_MAX] = "";

    memset(&j, 0, sizeof(j));
    j.f = ctx;
    j.env = env;
    j.sp = sp;
    j.size = rg_spool_size(sp);
    j.t0 = rg_now_ms();
    j.down = rg_calloc(env->nrcpt, sizeof(*j.down));
    j.up = per_rcpt;
    find_queue_id(env, sp);
    /* the client that Postfix received the message from (XFORWARD) */
    if (rg_xtext_decode(env->xf.value[RG_XF_NAME], name, sizeof(name)) == 0
        && rg_xtext_decode(env->xf.value[RG_XF_ADDR], addr, sizeof(addr)) == 0 && (*name || *addr))
        snprintf(j.orig, sizeof(j.orig), " orig_client=%s[%s]", *name ? name : "unknown",
                 *addr ? addr : "unknown");

    if (rg_rules_empty(j.f->rules)) {
        /* the empty rule set: forward byte for byte, without parsing */
        struct rg_msgsrc src = { NULL, 0, sp, 0 };
        size_t *idx = rg_calloc(env->nrcpt, sizeof(size_t));
        if (j.f->route->process == RG_PROCESS_RECIPIENT) {
            for (size_t i = 0; i < env->nrcpt; i++) {
                idx[i] = i;
                rg_filter_reinject(&j, NULL, &idx[i], 1, &src);
            }
        } else {
            for (size_t i = 0; i < env->nrcpt; i++)
                idx[i] = i;
            rg_filter_reinject(&j, NULL, idx, env->nrcpt, &src);
        }
        for (size_t i = 0; i < env->nrcpt; i++)
            idx[i] = i;
        rg_filter_log_outcome(&j, idx, env->nrcpt, RG_ACT_FORWARD, "{}", NULL);
        rg_free(idx);
    } else {
        decide(&j);
    }
    rg_filter_summarize(per_rcpt, env->nrcpt, summary);
    rg_free(j.head_buf);
    rg_free(j.down);
}
