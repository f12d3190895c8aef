/*
 * filter.c - decide, reinject, reply and log for one message; see filter.h.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "buf.h"
#include "filter.h"
#include "log.h"
#include "mem.h"
#include "netio.h"
#include "queueid.h"

void rg_filter_init(struct rg_filter *f, const struct rg_conf *conf, const struct rg_route *route)
{
    f->conf = conf;
    f->route = route;
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

static const char *status_word(const struct rg_reply *r)
{
    switch (rg_reply_class(r)) {
    case 2: return "sent";
    case 5: return "bounced";
    default: return "deferred";
    }
}

/* One log line per distinct outcome among rcpts. */
static void log_outcome(const struct rg_filter *f, const struct rg_envelope *env,
                        char *const *rcpts, const struct rg_reply *down, size_t n,
                        size_t size, const char *action, long long t0)
{
    char *done = rg_calloc(n ? n : 1, 1);
    double delay = (double)(rg_now_ms() - t0) / 1000.0;
    char name[RG_XF_VALUE_MAX] = "", addr[RG_XF_VALUE_MAX] = "", orig[2 * RG_XF_VALUE_MAX + 16] = "";

    /* the client that Postfix received the message from (XFORWARD) */
    if (rg_xtext_decode(env->xf.value[RG_XF_NAME], name, sizeof(name)) == 0
        && rg_xtext_decode(env->xf.value[RG_XF_ADDR], addr, sizeof(addr)) == 0 && (*name || *addr))
        snprintf(orig, sizeof(orig), " orig_client=%s[%s]", *name ? name : "unknown",
                 *addr ? addr : "unknown");

    for (size_t i = 0; i < n; i++) {
        struct rg_buf to;
        if (done[i])
            continue;
        rg_buf_init(&to, 1500);
        for (size_t j = i; j < n; j++) {
            if (done[j] || strcmp(down[j].text, down[i].text) != 0)
                continue;
            done[j] = 1;
            if (rg_buf_printf(&to, "%s<%s>", to.len ? "," : "", rcpts[j]) < 0) {
                (void)rg_buf_appends(&to, ",...");
                break;
            }
        }
        rg_info("%s: route=%s client=%s from=<%s> to=%s size=%zu action=%s status=%s "
                "reply=(%s) delay=%.3f%s",
                env->queue_id[0] ? env->queue_id : "NOQUEUE", f->route->name,
                env->client_addr, env->sender, to.data ? to.data : "", size, action,
                status_word(&down[i]), down[i].text, delay, orig);
        rg_buf_free(&to);
    }
    rg_free(done);
}

void rg_filter_deliver(void *ctx, struct rg_envelope *env, struct rg_spool *sp,
                       struct rg_reply *per_rcpt, struct rg_reply *summary)
{
    struct rg_filter *f = ctx;
    struct rg_reply *down = rg_calloc(env->nrcpt, sizeof(*down));
    long long t0 = rg_now_ms();
    size_t size = rg_spool_size(sp);

    struct rg_msgsrc src = { NULL, 0, sp, 0 };

    find_queue_id(env, sp);
    if (f->route->process == RG_PROCESS_RECIPIENT) {
        /* one transaction per recipient, as the appliance splits */
        for (size_t i = 0; i < env->nrcpt; i++)
            (void)rg_smtpc_send(f->smtpc, env, &env->rcpts[i], 1, &src, &down[i]);
    } else {
        (void)rg_smtpc_send(f->smtpc, env, env->rcpts, env->nrcpt, &src, down);
    }
    log_outcome(f, env, env->rcpts, down, env->nrcpt, size, "forward", t0);
    for (size_t i = 0; i < env->nrcpt; i++)
        upstream_reply(&down[i], &per_rcpt[i]);
    rg_filter_summarize(per_rcpt, env->nrcpt, summary);
    rg_free(down);
}
