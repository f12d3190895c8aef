/*
 * smtp_server.c - one SMTP/LMTP session; see smtp_server.h.
 *
 * A table maps each verb to its handler; the transaction state is explicit
 * (greeted, mail, rcpts). Replies are buffered and flushed only when no
 * pipelined input is waiting, so a pipelined group gets one write.
 */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "dotstuff.h"
#include "log.h"
#include "mem.h"
#include "netio.h"
#include "smtp_server.h"

void rg_reply_set(struct rg_reply *r, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->text, sizeof(r->text), fmt, ap);
    va_end(ap);
    r->code = code;
}

struct session {
    const struct rg_smtp_server_cfg *cfg;
    struct rg_stream io;
    struct rg_envelope env;
    struct rg_spool spool;
    size_t rcpt_cap;
    int greeted;
    int in_mail;
    int errors;
    int junk;
    int quit;
    int delivered;
    const char *last;   /* the last command, for "lost connection after X" */
};

static void reply(struct session *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void reply(struct session *s, const char *fmt, ...)
{
    char line[RG_REPLY_MAX + 8];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(line, sizeof(line) - 2, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n > sizeof(line) - 3)
        n = (int)sizeof(line) - 3;
    line[n++] = '\r';
    line[n++] = '\n';
    (void)rg_stream_write(&s->io, line, (size_t)n);
}

/* A reply that counts as a client error (Postfix's smtpd_error_limit). */
static void error_reply(struct session *s, const char *text)
{
    s->errors++;
    reply(s, "%s", text);
}

static void reset_transaction(struct session *s)
{
    for (size_t i = 0; i < s->env.nrcpt; i++)
        s->env.rcpts[i] = rg_free(s->env.rcpts[i]);
    s->env.nrcpt = 0;
    s->env.sender[0] = 0;
    s->env.queue_id[0] = 0;
    memset(&s->env.params, 0, sizeof(s->env.params));
    memset(&s->env.xf, 0, sizeof(s->env.xf));
    s->in_mail = 0;
    rg_spool_reset(&s->spool);
}

static void arm_watchdog(struct session *s)
{
    if (s->cfg->watchdog_s > 0)
        alarm((unsigned)s->cfg->watchdog_s);
}

static void do_helo(struct session *s, const struct rg_smtp_cmd *cmd)
{
    int lmtp = s->cfg->protocol == RG_PROTO_LMTP;

    if (lmtp != (cmd->verb == RG_CMD_LHLO)) {
        error_reply(s, lmtp ? "500 5.5.1 Error: this is an LMTP server, use LHLO"
                            : "500 5.5.2 Error: command not recognized");
        return;
    }
    if (*cmd->arg == 0) {
        error_reply(s, "501 5.5.4 Syntax: EHLO hostname");
        return;
    }
    snprintf(s->env.helo, sizeof(s->env.helo), "%s", cmd->arg);
    reset_transaction(s);
    s->greeted = 1;
    if (cmd->verb == RG_CMD_HELO) {
        reply(s, "250 %s", s->cfg->hostname);
        return;
    }
    reply(s, "250-%s", s->cfg->hostname);
    reply(s, "250-PIPELINING");
    reply(s, "250-SIZE %zu", s->cfg->max_message_size);
    reply(s, "250-8BITMIME");
    reply(s, "250-SMTPUTF8");
    if (s->cfg->offer_xforward)
        reply(s, "250-XFORWARD NAME ADDR PORT PROTO HELO IDENT SOURCE");
    reply(s, "250 ENHANCEDSTATUSCODES");
}

static void do_mail(struct session *s, const struct rg_smtp_cmd *cmd)
{
    const char *err;

    if (!s->greeted) {
        error_reply(s, "503 5.5.1 Error: send HELO/EHLO first");
        return;
    }
    if (s->in_mail) {
        error_reply(s, "503 5.5.1 Error: nested MAIL command");
        return;
    }
    if (rg_smtp_parse_mail(cmd->arg, s->env.sender, sizeof(s->env.sender),
                           &s->env.params, &err) < 0) {
        s->env.sender[0] = 0;
        error_reply(s, err);
        return;
    }
    if (s->env.params.size >= 0 && (size_t)s->env.params.size > s->cfg->max_message_size) {
        s->env.sender[0] = 0;
        error_reply(s, "552 5.3.4 Message size exceeds fixed limit");
        return;
    }
    s->in_mail = 1;
    reply(s, "250 2.1.0 Ok");
}

static void do_rcpt(struct session *s, const struct rg_smtp_cmd *cmd)
{
    char addr[RG_ADDR_MAX];
    const char *err;

    if (!s->in_mail) {
        error_reply(s, "503 5.5.1 Error: need MAIL command");
        return;
    }
    if (rg_smtp_parse_rcpt(cmd->arg, s->env.params.smtputf8, addr, sizeof(addr), &err) < 0) {
        error_reply(s, err);
        return;
    }
    if (s->cfg->rcpt_check) {
        struct rg_reply r;
        if (s->cfg->rcpt_check(s->cfg->ctx, addr, &r) < 0) {
            reply(s, "%s", r.text);
            return;
        }
    }
    if (s->env.nrcpt >= (size_t)s->cfg->max_recipients) {
        reply(s, "452 4.5.3 Error: too many recipients");
        return;
    }
    if (s->env.nrcpt == s->rcpt_cap) {
        s->rcpt_cap = s->rcpt_cap ? s->rcpt_cap * 2 : 8;
        s->env.rcpts = rg_realloc(s->env.rcpts, s->rcpt_cap * sizeof(char *));
    }
    s->env.rcpts[s->env.nrcpt++] = rg_strdup(addr);
    reply(s, "250 2.1.5 Ok");
}

/* The reply after DATA: once for SMTP, once per recipient for LMTP. */
static void final_reply(struct session *s, const char *text)
{
    size_t n = s->cfg->protocol == RG_PROTO_LMTP ? s->env.nrcpt : 1;
    for (size_t i = 0; i < n; i++)
        reply(s, "%s", text);
}

static int spool_out(void *ctx, const char *p, size_t n)
{
    return rg_spool_write(ctx, p, n);
}

/* Returns 0 when the session may go on, -1 when the connection is gone. */
static int do_data(struct session *s, const struct rg_smtp_cmd *cmd)
{
    struct rg_data_rx rx;
    int done = 0, st;

    if (*cmd->arg) {
        error_reply(s, "501 5.5.4 Syntax: DATA");
        return 0;
    }
    if (!s->in_mail) {
        error_reply(s, "503 5.5.1 Error: need MAIL command");
        return 0;
    }
    if (s->env.nrcpt == 0) {
        error_reply(s, "554 5.5.1 Error: no valid recipients");
        return 0;
    }
    reply(s, "354 End data with <CR><LF>.<CR><LF>");
    if (rg_stream_flush(&s->io) != RG_IO_OK)
        return -1;
    rg_data_rx_init(&rx, s->cfg->max_message_size, spool_out, &s->spool);
    /* each line of the message must arrive within the timeout (Postfix's
     * smtpd_per_record_deadline): a client that drips a byte now and then
     * cannot hold the worker beyond smtp_timeout */
    long long deadline = rg_now_ms() + s->cfg->timeout_ms;
    while (!done) {
        const char *p;
        size_t n;

        st = rg_stream_peek_until(&s->io, &p, &n, deadline);
        if (st != RG_IO_OK) {
            rg_info("%s after DATA (%zu bytes) from %s", st == RG_IO_TIMEOUT
                    ? "timeout" : "lost connection", rx.size, s->env.client_addr);
            return -1;
        }
        if (memchr(p, '\n', n) != NULL)
            deadline = rg_now_ms() + s->cfg->timeout_ms;
        rg_stream_consume(&s->io, rg_data_rx_feed(&rx, p, n, &done));
    }
    if (rx.toolarge) {
        rg_info("rejected message from <%s>: size exceeds %zu bytes", s->env.sender,
                s->cfg->max_message_size);
        final_reply(s, "552 5.3.4 Message size exceeds fixed limit");
    } else if (rx.out_error || rg_spool_finish(&s->spool) < 0) {
        rg_error("cannot spool message in %s: %s", s->cfg->spool_dir,
                 strerror(s->spool.error ? s->spool.error : EIO));
        final_reply(s, "451 4.3.0 Error: local error spooling the message, try again later");
    } else {
        size_t n = s->env.nrcpt;
        struct rg_reply *per = rg_calloc(n, sizeof(*per));
        struct rg_reply summary;

        rg_reply_set(&summary, 451, "451 4.3.0 Error: message not processed");
        for (size_t i = 0; i < n; i++)
            per[i] = summary;
        s->cfg->deliver(s->cfg->ctx, &s->env, &s->spool, per, &summary);
        s->delivered++;
        if (s->cfg->protocol == RG_PROTO_LMTP)
            for (size_t i = 0; i < n; i++)
                reply(s, "%s", per[i].text);
        else
            reply(s, "%s", summary.text);
        rg_free(per);
    }
    reset_transaction(s);
    s->last = "END-OF-MESSAGE";
    s->junk = 0;    /* as Postfix: a completed transaction clears the junk count */
    arm_watchdog(s);
    return 0;
}

static void do_xforward(struct session *s, const struct rg_smtp_cmd *cmd)
{
    const char *err;

    if (!s->cfg->offer_xforward) {
        error_reply(s, "502 5.5.1 Error: command not implemented");
        return;
    }
    if (s->in_mail) {
        error_reply(s, "503 5.5.1 Error: MAIL transaction in progress");
        return;
    }
    if (rg_smtp_parse_xforward(cmd->arg, &s->env.xf, &err) < 0) {
        error_reply(s, err);
        return;
    }
    reply(s, "250 2.0.0 Ok");
}

static int dispatch(struct session *s, const struct rg_smtp_cmd *cmd)
{
    switch (cmd->verb) {
    case RG_CMD_HELO:
    case RG_CMD_EHLO:
    case RG_CMD_LHLO:
        do_helo(s, cmd);
        break;
    case RG_CMD_MAIL:
        do_mail(s, cmd);
        break;
    case RG_CMD_RCPT:
        do_rcpt(s, cmd);
        break;
    case RG_CMD_DATA:
        return do_data(s, cmd);
    case RG_CMD_XFORWARD:
        do_xforward(s, cmd);
        break;
    case RG_CMD_RSET:
        s->junk++;
        reset_transaction(s);
        reply(s, "250 2.0.0 Ok");
        break;
    case RG_CMD_NOOP:
        s->junk++;
        reply(s, "250 2.0.0 Ok");
        break;
    case RG_CMD_QUIT:
        reply(s, "221 2.0.0 Bye");
        s->quit = 1;
        break;
    case RG_CMD_VRFY:
        s->junk++;
        reply(s, "252 2.0.0 Send some mail, I'll try my best");
        break;
    case RG_CMD_HELP:
        s->junk++;
        reply(s, "214 2.0.0 See RFC 5321");
        break;
    case RG_CMD_BDAT:
        /* without CHUNKING the chunk's bytes would be read as commands:
         * refuse and end the session rather than interpret them */
        reply(s, "503 5.5.1 Error: BDAT without CHUNKING");
        s->quit = 1;
        break;
    case RG_CMD_EXPN:
    case RG_CMD_STARTTLS:
    case RG_CMD_AUTH:
        s->junk++;
        error_reply(s, "502 5.5.1 Error: command not implemented");
        break;
    case RG_CMD_UNKNOWN:
        s->junk++;
        error_reply(s, "500 5.5.2 Error: command not recognized");
        break;
    }
    return 0;
}

/*
 * The session, with its 128 KiB of stream buffers and the spool's memory,
 * is allocated once per process and reused: a worker serves thousands of
 * short connections, and fresh large allocations would cost an mmap and
 * page faults each time.
 */
static struct session *session_cache;

static struct session *session_get(const struct rg_smtp_server_cfg *cfg)
{
    struct session *s = session_cache;
    char **rcpts;
    size_t cap;

    if (s == NULL) {
        s = rg_calloc(1, sizeof(*s));
        rg_spool_init(&s->spool, cfg->spool_dir, cfg->spool_mem_limit);
        session_cache = s;
    }
    if (s->spool.dir != cfg->spool_dir || s->spool.mem_limit != cfg->spool_mem_limit) {
        rg_spool_free(&s->spool);
        rg_spool_init(&s->spool, cfg->spool_dir, cfg->spool_mem_limit);
    }
    rcpts = s->env.rcpts;
    cap = s->rcpt_cap;
    memset(&s->env, 0, sizeof(s->env));
    s->env.rcpts = rcpts;
    s->rcpt_cap = cap;
    s->greeted = s->in_mail = s->errors = s->junk = s->quit = s->delivered = 0;
    s->last = "CONNECT";
    return s;
}

void rg_smtp_serve_release(void)
{
    struct session *s = session_cache;

    if (s == NULL)
        return;
    reset_transaction(s);
    rg_spool_free(&s->spool);
    rg_free(s->env.rcpts);
    session_cache = rg_free(s);
}

int rg_smtp_serve(int fd, const struct rg_smtp_server_cfg *cfg)
{
    struct session *s = session_get(cfg);
    char line[RG_SMTP_LINE_MAX + 1];
    int port;

    s->cfg = cfg;
    rg_stream_init(&s->io, fd, cfg->timeout_ms);
    if (cfg->peer)
        rg_sockaddr_name(cfg->peer, cfg->peerlen, s->env.client_addr,
                         sizeof(s->env.client_addr), &port);
    else
        rg_peer_name(fd, s->env.client_addr, sizeof(s->env.client_addr), &port);
    arm_watchdog(s);
    reply(s, "220 %s %s regigate", cfg->hostname,
          cfg->protocol == RG_PROTO_LMTP ? "LMTP" : "ESMTP");

    while (!s->quit) {
        struct rg_smtp_cmd cmd;
        size_t len;
        int st;

        if (rg_stream_pending(&s->io) == 0 && rg_stream_flush(&s->io) != RG_IO_OK) {
            rg_info("lost connection after %s from %s", s->last, s->env.client_addr);
            break;
        }
        if (s->errors >= RG_SMTP_ERROR_LIMIT || s->junk >= RG_SMTP_JUNK_LIMIT) {
            rg_info("too many errors from %s, disconnecting", s->env.client_addr);
            reply(s, "421 4.7.0 %s Error: too many errors", cfg->hostname);
            break;
        }
        if (cfg->stop && *cfg->stop && !s->in_mail) {
            reply(s, "421 4.3.2 %s Service shutting down", cfg->hostname);
            break;
        }
        /* only an idle session (no transaction) may be ended on shutdown */
        s->io.abort_flag = s->in_mail ? NULL : cfg->stop;
        st = rg_stream_getline(&s->io, line, sizeof(line), &len);
        s->io.abort_flag = NULL;
        if (st == RG_IO_TOOLONG) {
            error_reply(s, "500 5.5.2 Error: line too long");
            continue;
        }
        if (st == RG_IO_ABORTED) {
            reply(s, "421 4.3.2 %s Service shutting down", cfg->hostname);
            break;
        }
        if (st == RG_IO_TIMEOUT) {
            rg_info("timeout after %s from %s", s->last, s->env.client_addr);
            reply(s, "421 4.4.2 %s Error: timeout exceeded", cfg->hostname);
            break;
        }
        if (st != RG_IO_OK) {
            /* a client that goes away without QUIT: say where, as Postfix
             * does; whatever transaction was open is dropped, not delivered */
            rg_info("lost connection after %s from %s", s->last, s->env.client_addr);
            break;
        }
        /* strip the line terminator: CRLF, or a bare LF as Postfix tolerates */
        len--;
        if (len > 0 && line[len - 1] == '\r')
            len--;
        line[len] = 0;
        if (rg_smtp_parse_line(line, len, &cmd) < 0) {
            error_reply(s, "500 5.5.2 Error: bad characters in command");
            s->last = "UNKNOWN";
            continue;
        }
        s->last = cmd.verb == RG_CMD_UNKNOWN ? "UNKNOWN" : cmd.name;
        if (dispatch(s, &cmd) < 0)
            break;
    }
    (void)rg_stream_flush(&s->io);
    if (cfg->watchdog_s > 0)
        alarm(0);
    reset_transaction(s);
    return s->delivered;
}
