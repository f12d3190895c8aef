/*
 * smtp_client.c - the reinjection SMTP client; see smtp_client.h.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "dotstuff.h"
#include "log.h"
#include "mem.h"
#include "netio.h"
#include "smtp_client.h"

#define LINE_MAX_IN 1024
#define REPLY_LINES_MAX 100

struct rg_smtpc {
    struct rg_hostport dest;
    char helo[256];
    int timeout_ms;
    int connected;
    long long last_used;
    /* extensions of the current connection */
    int pipelining, size, eightbit, smtputf8;
    unsigned xforward;          /* bit i: rg_xf_names[i] offered */
    struct rg_stream io;        /* io.fd valid while connected */
    int io_status;              /* of the last write of message content */
};

struct rg_smtpc *rg_smtpc_new(const struct rg_hostport *dest, const char *helo, int timeout_ms)
{
    struct rg_smtpc *c = rg_calloc(1, sizeof(*c));

    c->dest = *dest;
    snprintf(c->helo, sizeof(c->helo), "%s", helo);
    c->timeout_ms = timeout_ms;
    return c;
}

static void disconnect(struct rg_smtpc *c)
{
    if (c->connected)
        close(c->io.fd);
    c->connected = 0;
}

struct rg_smtpc *rg_smtpc_free(struct rg_smtpc *c)
{
    if (c) {
        if (c->connected) {
            (void)rg_stream_puts(&c->io, "QUIT\r\n");
            (void)rg_stream_flush(&c->io);
        }
        disconnect(c);
        rg_free(c);
    }
    return NULL;
}

/*
 * Read one (possibly multi-line) reply. r gets the code and the last line;
 * each line is also passed to on_line (for EHLO). Returns an rg_io status;
 * a malformed reply is RG_IO_ERROR with errno = EPROTO.
 */
static int read_reply(struct rg_smtpc *c, struct rg_reply *r,
                      void (*on_line)(struct rg_smtpc *, const char *))
{
    char line[LINE_MAX_IN];
    size_t len;

    for (int n = 0; n < REPLY_LINES_MAX; n++) {
        int st = rg_stream_getline(&c->io, line, sizeof(line), &len);
        if (st == RG_IO_TOOLONG)
            continue;       /* an overlong text line: ignore its text */
        if (st != RG_IO_OK)
            return st;
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            line[--len] = 0;
        if (len < 3 || line[0] < '2' || line[0] > '5' || line[1] < '0' || line[1] > '9'
            || line[2] < '0' || line[2] > '9' || (len > 3 && line[3] != ' ' && line[3] != '-')) {
            errno = EPROTO;
            return RG_IO_ERROR;
        }
        for (char *p = line; *p; p++)   /* keep the text printable */
            if ((unsigned char)*p < 0x20)
                *p = ' ';
        if (on_line)
            on_line(c, line + 4 > line + len ? line + len : line + 4);
        if (len == 3 || line[3] == ' ') {
            r->code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
            snprintf(r->text, sizeof(r->text), "%.500s", line);
            return RG_IO_OK;
        }
    }
    errno = EPROTO;
    return RG_IO_ERROR;
}

static void ehlo_line(struct rg_smtpc *c, const char *kw)
{
    if (strcasecmp(kw, "PIPELINING") == 0)
        c->pipelining = 1;
    else if (strncasecmp(kw, "SIZE", 4) == 0 && (kw[4] == 0 || kw[4] == ' '))
        c->size = 1;
    else if (strcasecmp(kw, "8BITMIME") == 0)
        c->eightbit = 1;
    else if (strcasecmp(kw, "SMTPUTF8") == 0)
        c->smtputf8 = 1;
    else if (strncasecmp(kw, "XFORWARD", 8) == 0 && (kw[8] == ' ' || kw[8] == 0)) {
        char names[256], *save = NULL;
        snprintf(names, sizeof(names), "%s", kw + 8);
        for (char *t = strtok_r(names, " ", &save); t; t = strtok_r(NULL, " ", &save))
            for (int i = 0; i < RG_XF_COUNT; i++)
                if (strcasecmp(t, rg_xf_names[i]) == 0)
                    c->xforward |= 1u << i;
    }
}

/* Describe an I/O failure as a 451 reply. */
static void io_failure(struct rg_smtpc *c, struct rg_reply *r, int st, const char *stage)
{
    if (st == RG_IO_ERROR && errno == EPROTO)
        rg_reply_set(r, 451, "451 4.5.0 Error: protocol error from reinjection host %s:%d %s",
                     c->dest.host, c->dest.port, stage);
    else
        rg_reply_set(r, 451, "451 4.4.2 Error: %s with reinjection host %s:%d %s",
                     st == RG_IO_TIMEOUT ? "timeout" : "lost connection",
                     c->dest.host, c->dest.port, stage);
    disconnect(c);
}

/* Connect, read the greeting, EHLO. 0, or -1 with r describing why. */
static int connect_dest(struct rg_smtpc *c, struct rg_reply *r)
{
    char err[256];
    int fd, st;

    fd = rg_connect_tcp(&c->dest, c->timeout_ms, err, sizeof(err));
    if (fd < 0) {
        rg_reply_set(r, 451, "451 4.4.1 Error: cannot reach reinjection host: %s", err);
        return -1;
    }
    rg_stream_init(&c->io, fd, c->timeout_ms);
    c->connected = 1;
    c->pipelining = c->size = c->eightbit = c->smtputf8 = 0;
    c->xforward = 0;
    if ((st = read_reply(c, r, NULL)) != RG_IO_OK) {
        io_failure(c, r, st, "in the greeting");
        return -1;
    }
    if (r->code / 100 != 2)
        goto refused;
    if ((st = rg_stream_printf(&c->io, "EHLO %s\r\n", c->helo)) != RG_IO_OK
        || (st = rg_stream_flush(&c->io)) != RG_IO_OK
        || (st = read_reply(c, r, ehlo_line)) != RG_IO_OK) {
        io_failure(c, r, st, "after EHLO");
        return -1;
    }
    if (r->code / 100 != 2)
        goto refused;
    return 0;
refused:
    /* our own next hop refusing us is a configuration problem: retry later */
    {
        char text[RG_REPLY_MAX];
        snprintf(text, sizeof(text), "%s", r->text);
        rg_reply_set(r, 451, "451 4.3.0 Error: reinjection host %s:%d refused us: %.400s",
                     c->dest.host, c->dest.port, text);
    }
    disconnect(c);
    return -1;
}

/* The command group of one transaction, in the order the replies come. */
struct cmdlist {
    char *line[RG_XF_COUNT + 3];   /* XFORWARD lines, MAIL; RCPTs follow separately */
    int n;
    int nxf;
    int next;                      /* lockstep: index of the next to send */
};

static void build_commands(struct rg_smtpc *c, const struct rg_envelope *env, size_t size,
                           struct cmdlist *cl)
{
    char line[600];
    size_t ll = 0;

    memset(cl, 0, sizeof(*cl));
    /* XFORWARD, split so that no line grows past 512 octets */
    for (int i = 0; i < RG_XF_COUNT; i++) {
        const char *v = env->xf.value[i];
        if (!*v || !(c->xforward & (1u << i)))
            continue;
        size_t need = strlen(rg_xf_names[i]) + 1 + strlen(v) + 1;
        if (ll > 0 && ll + need > 500) {
            cl->line[cl->n++] = rg_sprintf("%s\r\n", line);
            ll = 0;
        }
        if (ll == 0)
            ll = (size_t)snprintf(line, sizeof(line), "XFORWARD");
        ll += (size_t)snprintf(line + ll, sizeof(line) - ll, " %s=%s", rg_xf_names[i], v);
    }
    if (ll > 0)
        cl->line[cl->n++] = rg_sprintf("%s\r\n", line);
    cl->nxf = cl->n;
    char sizeparam[32] = "";
    if (c->size)
        snprintf(sizeparam, sizeof(sizeparam), " SIZE=%zu", size);
    cl->line[cl->n++] = rg_sprintf("MAIL FROM:<%s>%s%s%s\r\n", env->sender, sizeparam,
        env->params.body == RG_BODY_8BITMIME && c->eightbit ? " BODY=8BITMIME" : "",
        env->params.smtputf8 ? " SMTPUTF8" : "");
}

static void free_commands(struct cmdlist *cl)
{
    for (int i = 0; i < cl->n; i++)
        cl->line[i] = rg_free(cl->line[i]);
}

/*
 * Send a command: with PIPELINING it is only buffered (the group goes out
 * in one write before the first reply is read); without, it goes out alone.
 */
static int send_cmd(struct rg_smtpc *c, const char *line)
{
    int st = rg_stream_puts(&c->io, line);
    if (st == RG_IO_OK && !c->pipelining)
        st = rg_stream_flush(&c->io);
    return st;
}

/* The data writer: keeps the I/O status, so that a timeout is told apart
 * from a lost connection in the reply. */
static int stream_out(void *ctx, const char *p, size_t n)
{
    struct rg_smtpc *c = ctx;

    c->io_status = rg_stream_write(&c->io, p, n);
    return c->io_status == RG_IO_OK ? 0 : -1;
}

static size_t src_size(const struct rg_msgsrc *src)
{
    return src->head_len + rg_spool_size(src->sp) - (size_t)src->off;
}

/* Stream the content, stuffed and canonical, then "." CRLF. */
/* Send the content and the final dot: an rg_io status (RG_IO_ERROR also
 * when the spool cannot be read). */
static int send_content(struct rg_smtpc *c, const struct rg_msgsrc *src)
{
    struct rg_data_tx tx;
    struct rg_spool *sp = src->sp;
    const char *mem = rg_spool_mem(sp);
    int failed = 0;

    c->io_status = RG_IO_OK;
    rg_data_tx_init(&tx, stream_out, c);
    if (src->head_len > 0 && rg_data_tx_feed(&tx, src->head, src->head_len) < 0)
        failed = 1;
    else if (mem) {
        if (rg_data_tx_feed(&tx, mem + src->off, rg_spool_size(sp) - (size_t)src->off) < 0)
            failed = 1;
    } else {
        char *buf = rg_malloc(65536);
        off_t off = src->off;
        for (;;) {
            ssize_t n = rg_spool_read(sp, buf, 65536, off);
            if (n <= 0 || rg_data_tx_feed(&tx, buf, (size_t)n) < 0) {
                failed = n != 0;
                break;
            }
            off += n;
        }
        rg_free(buf);
    }
    if (!failed && rg_data_tx_finish(&tx) < 0)
        failed = 1;
    if (failed)
        return c->io_status != RG_IO_OK ? c->io_status : RG_IO_ERROR;
    return rg_stream_flush(&c->io);
}

static void set_all(struct rg_reply *replies, size_t n, const struct rg_reply *r)
{
    for (size_t i = 0; i < n; i++)
        replies[i] = *r;
}

/*
 * One attempt. Returns the accepted count, or -1 when the attempt failed
 * before the downstream answered anything on a reused connection (the
 * caller then retries once on a fresh connection).
 */
static long attempt(struct rg_smtpc *c, const struct rg_envelope *env, char *const *rcpts,
                    size_t nrcpt, const struct rg_msgsrc *src, struct rg_reply *replies, int reused)
{
    struct rg_reply r;
    struct cmdlist cl;
    size_t ok_rcpts = 0, accepted = 0;
    int st, mail_ok;
    int *rcpt_ok;

    if (env->params.smtputf8 && !c->smtputf8) {
        rg_reply_set(&r, 550, "550 5.6.7 Error: reinjection host does not support SMTPUTF8");
        set_all(replies, nrcpt, &r);
        return 0;
    }
    rcpt_ok = rg_calloc(nrcpt, sizeof(int));
    build_commands(c, env, src_size(src), &cl);
    if (c->pipelining) {
        for (int i = 0; i < cl.n; i++)
            (void)rg_stream_puts(&c->io, cl.line[i]);
        for (size_t i = 0; i < nrcpt; i++)
            (void)rg_stream_printf(&c->io, "RCPT TO:<%s>\r\n", rcpts[i]);
        (void)rg_stream_puts(&c->io, "DATA\r\n");
        if ((st = rg_stream_flush(&c->io)) != RG_IO_OK) {
            io_failure(c, &r, st, "sending MAIL FROM");
            goto fail_early;
        }
    }
    for (int i = 0; i < cl.n; i++) {
        if ((!c->pipelining && (st = send_cmd(c, cl.line[i])) != RG_IO_OK)
            || (st = read_reply(c, &r, NULL)) != RG_IO_OK) {
            io_failure(c, &r, st, i < cl.nxf ? "after XFORWARD" : "after MAIL FROM");
            goto fail_early;
        }
        reused = 0;     /* the peer answered: no silent retry from here on */
        if (i < cl.nxf && r.code / 100 != 2) {
            char t[RG_REPLY_MAX];
            snprintf(t, sizeof(t), "%s", r.text);
            rg_reply_set(&r, 451, "451 4.3.0 Error: reinjection host refused XFORWARD: %.400s", t);
            set_all(replies, nrcpt, &r);
            disconnect(c);
            goto out;
        }
    }
    mail_ok = r.code / 100 == 2;
    if (!mail_ok)
        set_all(replies, nrcpt, &r);
    for (size_t i = 0; i < nrcpt; i++) {
        struct rg_reply rr;
        if (!mail_ok && !c->pipelining)
            break;
        if (!c->pipelining) {
            char line[RG_ADDR_MAX + 16];
            snprintf(line, sizeof(line), "RCPT TO:<%s>\r\n", rcpts[i]);
            st = send_cmd(c, line);
        } else {
            st = RG_IO_OK;
        }
        if (st != RG_IO_OK || (st = read_reply(c, &rr, NULL)) != RG_IO_OK) {
            io_failure(c, &r, st, "after RCPT TO");
            set_all(replies, nrcpt, &r);
            goto out;
        }
        if (mail_ok) {
            replies[i] = rr;
            rcpt_ok[i] = rr.code / 100 == 2;
            ok_rcpts += (size_t)rcpt_ok[i];
        }
    }
    if (c->pipelining || ok_rcpts > 0) {
        if ((!c->pipelining && (st = send_cmd(c, "DATA\r\n")) != RG_IO_OK)
            || (st = read_reply(c, &r, NULL)) != RG_IO_OK) {
            io_failure(c, &r, st, "after DATA");
            set_all(replies, nrcpt, &r);
            goto out;
        }
    }
    if (ok_rcpts == 0 || r.code != 354) {
        struct rg_reply rr;
        for (size_t i = 0; i < nrcpt; i++)     /* DATA refused: that is the outcome */
            if (rcpt_ok[i])
                replies[i] = r;
        /* a 354 we cannot use, or an open transaction: end it cleanly */
        if (r.code == 354) {
            (void)rg_stream_puts(&c->io, ".\r\n");
            if (rg_stream_flush(&c->io) != RG_IO_OK || read_reply(c, &rr, NULL) != RG_IO_OK) {
                disconnect(c);
                goto out;
            }
        }
        if (mail_ok && (send_cmd(c, "RSET\r\n") != RG_IO_OK || rg_stream_flush(&c->io) != RG_IO_OK
                        || read_reply(c, &rr, NULL) != RG_IO_OK))
            disconnect(c);
        goto out;
    }
    if ((st = send_content(c, src)) != RG_IO_OK) {
        io_failure(c, &r, st, "while sending message content");
        set_all(replies, nrcpt, &r);
        goto out;
    }
    if ((st = read_reply(c, &r, NULL)) != RG_IO_OK) {
        io_failure(c, &r, st, "after end of data");
        set_all(replies, nrcpt, &r);
        goto out;
    }
    for (size_t i = 0; i < nrcpt; i++)
        if (rcpt_ok[i]) {
            replies[i] = r;
            accepted += r.code / 100 == 2;
        }
out:
    free_commands(&cl);
    rg_free(rcpt_ok);
    c->last_used = rg_now_ms();
    return (long)accepted;
fail_early:
    free_commands(&cl);
    rg_free(rcpt_ok);
    set_all(replies, nrcpt, &r);
    return reused ? -1 : 0;
}

size_t rg_smtpc_send(struct rg_smtpc *c, const struct rg_envelope *env,
                     char *const *rcpts, size_t nrcpt, const struct rg_msgsrc *src,
                     struct rg_reply *replies)
{
    struct rg_reply r;
    int reused = 0;
    long n;

    if (c->connected && (rg_now_ms() - c->last_used > RG_SMTPC_IDLE_MAX * 1000LL
                         || rg_stream_dead(&c->io)))
        disconnect(c);
    if (c->connected)
        reused = 1;
    else if (connect_dest(c, &r) < 0) {
        set_all(replies, nrcpt, &r);
        return 0;
    }
    n = attempt(c, env, rcpts, nrcpt, src, replies, reused);
    if (n >= 0)
        return (size_t)n;
    /* a cached connection died under us before the peer took anything */
    if (connect_dest(c, &r) < 0) {
        set_all(replies, nrcpt, &r);
        return 0;
    }
    n = attempt(c, env, rcpts, nrcpt, src, replies, 0);
    return n > 0 ? (size_t)n : 0;
}
