/*
 * test_smtp_client.c - unit tests of lib/smtp_client.c: reinjection with
 * rg_smtpc_send against real peers on 127.0.0.1. A forked child runs either
 * rg_smtp_serve (recording what it receives in shared memory) or a small
 * scripted server that misbehaves on purpose (closes, stays silent, does
 * not pipeline). The test checks the exact bytes that arrived and the exact
 * reply for every recipient.
 */
#include "config.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "dotstuff.h"
#include "log.h"
#include "netio.h"
#include "smtp_client.h"
#include "smtp_server.h"

#define MAX_REC 8
#define POOL_SIZE (4u << 20)
#define TIMEOUT_MS 500

/* What the server child saw, in memory shared with the test. */
struct rec {
    char sender[RG_ADDR_MAX];
    char mail_line[1024];           /* scripted server: the MAIL command as sent */
    struct rg_mail_params params;
    char rcpts[8][RG_ADDR_MAX];
    size_t nrcpt;
    struct rg_xforward xf;
    size_t off, clen;               /* content in pool[off .. off+clen) */
    int file_mode;
};

struct shared {
    int accepts;
    int ndeliver;
    int pipelined;                  /* scripted lockstep server saw a command group */
    size_t pool_used;
    struct rec rec[MAX_REC];
    char pool[POOL_SIZE];
};

enum mode {
    M_SMTPD,                /* rg_smtp_serve */
    M_LOCKSTEP,             /* scripted: no PIPELINING, no SMTPUTF8, no XFORWARD */
    M_CLOSE_AT_DATA,        /* scripted: closes after reading the DATA command */
    M_CLOSE_IN_CONTENT,     /* scripted: 354, reads some content, closes */
    M_STALL_IN_CONTENT,     /* scripted: 354, reads some content, stops reading */
    M_SILENT_AFTER_EHLO,    /* scripted: answers EHLO, then nothing */
    M_GREET_554,            /* scripted: refuses in the greeting */
    M_GARBAGE,              /* scripted: a greeting that is not SMTP */
    M_LOCKSTEP_DROP,        /* M_LOCKSTEP, but the first connection closes at
                             * its second MAIL without answering */
};

struct fx {
    struct shared *sh;
    int lfd;
    struct rg_hostport dest;
    pid_t pid;
    int stop_w;
    struct rg_smtpc *c;
    struct rg_spool sp;
    /* server options, set before start_server */
    int offer_xforward;
    size_t max_size;
    int server_timeout_ms;
    void *scratch[4];   /* test buffers, freed in teardown even on failure */
};

static char spool_dir[512];
static struct shared *g_sh;         /* in the child */

/* ---- the server child --------------------------------------------------- */

static struct rec *new_rec(void)
{
    struct rec *r;

    if (g_sh->ndeliver >= MAX_REC)
        return NULL;
    r = &g_sh->rec[g_sh->ndeliver++];
    memset(r, 0, sizeof(*r));
    r->off = g_sh->pool_used;
    return r;
}

static int pool_out(void *ctx, const char *p, size_t n)
{
    struct rec *r = ctx;

    if (r->off + r->clen + n > POOL_SIZE)
        return -1;
    memcpy(g_sh->pool + r->off + r->clen, p, n);
    r->clen += n;
    g_sh->pool_used = r->off + r->clen;
    return 0;
}

static void smtpd_deliver(void *ctx, struct rg_envelope *env, struct rg_spool *sp,
                          struct rg_reply *per_rcpt, struct rg_reply *summary)
{
    struct rec *r = new_rec();
    char buf[8192];
    size_t size = rg_spool_size(sp);
    off_t off = 0;

    (void)ctx;
    (void)per_rcpt;
    if (r) {
        snprintf(r->sender, sizeof(r->sender), "%s", env->sender);
        r->params = env->params;
        r->nrcpt = env->nrcpt;
        for (size_t i = 0; i < env->nrcpt && i < 8; i++)
            snprintf(r->rcpts[i], sizeof(r->rcpts[i]), "%s", env->rcpts[i]);
        r->xf = env->xf;
        r->file_mode = rg_spool_mem(sp) == NULL;
        while ((size_t)off < size) {
            ssize_t n = rg_spool_read(sp, buf, sizeof(buf), off);
            if (n <= 0 || pool_out(r, buf, (size_t)n) < 0)
                break;
            off += n;
        }
    }
    if (strncmp(env->sender, "tempfail", 8) == 0)
        rg_reply_set(summary, 451, "451 4.7.1 Try again later");
    else if (strncmp(env->sender, "permfail", 8) == 0)
        rg_reply_set(summary, 554, "554 5.7.1 Message rejected");
    else
        rg_reply_set(summary, 250, "250 2.0.0 Ok: queued as Q%d", g_sh->ndeliver);
}

static int smtpd_rcpt_check(void *ctx, const char *addr, struct rg_reply *r)
{
    (void)ctx;
    if (strncmp(addr, "refuse", 6) == 0) {
        rg_reply_set(r, 550, "550 5.1.1 <%s>: Recipient address rejected", addr);
        return -1;
    }
    return 0;
}

/* "<addr>" at p into out. */
static void copy_path(const char *p, char *out, size_t max)
{
    const char *lt = strchr(p, '<'), *gt = lt ? strchr(lt, '>') : NULL;

    if (!lt || !gt || (size_t)(gt - lt) > max)
        out[0] = 0;
    else
        snprintf(out, max, "%.*s", (int)(gt - lt - 1), lt + 1);
}

/* The scripted servers, one connection. */
static void scripted(int fd, enum mode mode)
{
    struct rg_stream *io = malloc(sizeof(*io));
    char line[1024];
    size_t len;
    struct rec *r = NULL;
    int nrcpt_seen = 0, nmail = 0;

    if (io == NULL)
        return;
    rg_stream_init(io, fd, 5000);
    if (mode == M_GREET_554 || mode == M_GARBAGE) {
        rg_stream_puts(io, mode == M_GARBAGE ? "hello there\r\n"
                                             : "554 5.3.2 no service here\r\n");
        rg_stream_flush(io);
        goto wait_eof;
    }
    rg_stream_puts(io, "220 raw.test ESMTP\r\n");
    rg_stream_flush(io);
    while (rg_stream_getline(io, line, sizeof(line), &len) == RG_IO_OK) {
        struct pollfd pfd = { .fd = fd, .events = POLLIN };

        /* a lockstep client never has the next command on its way yet */
        if (rg_stream_pending(io) > 0 || poll(&pfd, 1, 20) > 0)
            g_sh->pipelined = 1;
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            line[--len] = 0;
        if (strncasecmp(line, "EHLO", 4) == 0) {
            if (mode == M_LOCKSTEP || mode == M_LOCKSTEP_DROP)
                rg_stream_puts(io, "250-raw.test\r\n250-SIZE 1000000\r\n250 8BITMIME\r\n");
            else
                rg_stream_puts(io, "250-raw.test\r\n250 PIPELINING\r\n");
            if (mode == M_SILENT_AFTER_EHLO) {
                rg_stream_flush(io);
                goto wait_eof;
            }
        } else if (mode == M_CLOSE_AT_DATA || mode == M_CLOSE_IN_CONTENT
                   || mode == M_STALL_IN_CONTENT) {
            /* the pipelined group: MAIL, RCPT..., DATA */
            if (strncasecmp(line, "RCPT", 4) == 0)
                nrcpt_seen++;
            if (strcasecmp(line, "DATA") != 0)
                continue;
            if (mode == M_CLOSE_AT_DATA)
                break;
            rg_stream_puts(io, "250 2.1.0 Ok\r\n");
            for (int i = 0; i < nrcpt_seen; i++)
                rg_stream_puts(io, "250 2.1.5 Ok\r\n");
            rg_stream_puts(io, "354 go ahead\r\n");
            rg_stream_flush(io);
            {
                const char *p;
                size_t n;
                (void)rg_stream_peek(io, &p, &n);
            }
            if (mode == M_STALL_IN_CONTENT)     /* a stopped next hop */
                usleep(4 * TIMEOUT_MS * 1000);
            break;
        } else if (strncasecmp(line, "MAIL FROM:", 10) == 0) {
            if (mode == M_LOCKSTEP_DROP && g_sh->accepts == 1 && nmail++ > 0)
                break;
            r = new_rec();
            if (r) {
                snprintf(r->mail_line, sizeof(r->mail_line), "%s", line);
                copy_path(line, r->sender, sizeof(r->sender));
            }
            rg_stream_puts(io, "250 2.1.0 Ok\r\n");
        } else if (strncasecmp(line, "RCPT TO:", 8) == 0) {
            char addr[RG_ADDR_MAX];
            copy_path(line, addr, sizeof(addr));
            if (strncmp(addr, "refuse", 6) == 0) {
                rg_stream_printf(io, "550 5.1.1 <%s>: refused by raw\r\n", addr);
            } else {
                if (r && r->nrcpt < 8)
                    snprintf(r->rcpts[r->nrcpt++], RG_ADDR_MAX, "%s", addr);
                rg_stream_puts(io, "250 2.1.5 Ok\r\n");
            }
        } else if (strcasecmp(line, "DATA") == 0) {
            struct rg_data_rx rx;
            int done = 0;
            if (r == NULL || r->nrcpt == 0) {
                rg_stream_puts(io, "554 5.5.1 no valid recipients\r\n");
            } else {
                rg_stream_puts(io, "354 go ahead\r\n");
                rg_stream_flush(io);
                rg_data_rx_init(&rx, POOL_SIZE, pool_out, r);
                while (!done) {
                    const char *p;
                    size_t n;
                    if (rg_stream_peek(io, &p, &n) != RG_IO_OK)
                        goto out;
                    rg_stream_consume(io, rg_data_rx_feed(&rx, p, n, &done));
                }
                rg_stream_puts(io, "250 2.0.0 Ok: queued as RAW1\r\n");
            }
        } else if (strcasecmp(line, "RSET") == 0) {
            r = NULL;
            rg_stream_puts(io, "250 2.0.0 Ok\r\n");
        } else if (strcasecmp(line, "QUIT") == 0) {
            rg_stream_puts(io, "221 2.0.0 Bye\r\n");
            break;
        } else {
            rg_stream_puts(io, "500 5.5.2 what?\r\n");
        }
        rg_stream_flush(io);
    }
    rg_stream_flush(io);
    goto out;
wait_eof:
    {
        /* stay connected, silent, until the client goes away */
        char c;
        struct pollfd pfd = { .fd = fd, .events = POLLIN };
        while (poll(&pfd, 1, 5000) > 0 && read(fd, &c, 1) > 0)
            ;
    }
out:
    free(io);
}

static void child_main(struct fx *f, enum mode mode, int stop_r)
{
    struct rg_smtp_server_cfg cfg;

    memset(&cfg, 0, sizeof(cfg));
    cfg.protocol = RG_PROTO_SMTP;
    cfg.hostname = "sink.test";
    cfg.max_message_size = f->max_size;
    cfg.max_recipients = 100;
    cfg.timeout_ms = f->server_timeout_ms;
    cfg.spool_dir = spool_dir;
    cfg.spool_mem_limit = 4096;
    cfg.watchdog_s = 0;
    cfg.offer_xforward = f->offer_xforward;
    cfg.deliver = smtpd_deliver;
    cfg.rcpt_check = smtpd_rcpt_check;
    g_sh = f->sh;
    for (;;) {
        struct pollfd p[2] = { { .fd = f->lfd, .events = POLLIN },
                               { .fd = stop_r, .events = POLLIN } };
        int fd;

        if (poll(p, 2, 10000) <= 0 || p[1].revents)
            break;
        fd = accept(f->lfd, NULL, NULL);
        if (fd < 0)
            continue;
        g_sh->accepts++;
        if (mode == M_SMTPD) {
            rg_set_nonblock(fd);
            (void)rg_smtp_serve(fd, &cfg);
        } else {
            rg_set_nonblock(fd);
            scripted(fd, mode);
        }
        close(fd);
    }
    _exit(0);
}

/* Listen on 127.0.0.1, port chosen by the kernel. */
static void listen_any(struct fx *f)
{
    struct rg_hostport hp;
    struct sockaddr_in sin;
    socklen_t sl = sizeof(sin);
    char err[256];

    memset(&hp, 0, sizeof(hp));
    strcpy(hp.host, "127.0.0.1");
    hp.port = 0;
    f->lfd = rg_listen_tcp(&hp, 16, err, sizeof(err));
    assert_true(f->lfd >= 0);
    assert_int_equal(getsockname(f->lfd, (struct sockaddr *)&sin, &sl), 0);
    memset(&f->dest, 0, sizeof(f->dest));
    strcpy(f->dest.host, "127.0.0.1");
    f->dest.port = ntohs(sin.sin_port);
    assert_true(f->dest.port > 0);
}

static void start_server(struct fx *f, enum mode mode)
{
    int p[2];

    listen_any(f);
    assert_int_equal(pipe(p), 0);
    f->pid = fork();
    assert_true(f->pid >= 0);
    if (f->pid == 0) {
        close(p[1]);
        child_main(f, mode, p[0]);
    }
    close(p[0]);
    f->stop_w = p[1];
    f->c = rg_smtpc_new(&f->dest, "client.test", TIMEOUT_MS);
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));

    if (f == NULL)
        return -1;
    f->sh = mmap(NULL, sizeof(struct shared), PROT_READ | PROT_WRITE,
                 MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (f->sh == MAP_FAILED)
        return -1;
    f->lfd = f->stop_w = -1;
    f->pid = -1;
    f->offer_xforward = 1;
    f->max_size = 10 << 20;
    f->server_timeout_ms = 5000;
    rg_spool_init(&f->sp, spool_dir, 4096);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    int rc = 0;

    f->c = rg_smtpc_free(f->c);
    if (f->stop_w >= 0)
        close(f->stop_w);
    if (f->pid > 0) {
        int status;
        if (waitpid(f->pid, &status, 0) != f->pid || !WIFEXITED(status)
            || WEXITSTATUS(status) != 0) {
            fprintf(stderr, "server child did not exit cleanly\n");
            rc = -1;
        }
    }
    if (f->lfd >= 0)
        close(f->lfd);
    rg_spool_free(&f->sp);
    for (int i = 0; i < 4; i++)
        free(f->scratch[i]);
    munmap(f->sh, sizeof(struct shared));
    free(f);
    return rc;
}

/* ---- the client side ---------------------------------------------------- */

/* A buffer that lives until the end of the test, whatever happens. */
static void *scratch(struct fx *f, size_t n)
{
    for (int i = 0; i < 4; i++)
        if (f->scratch[i] == NULL) {
            f->scratch[i] = malloc(n);
            assert_non_null(f->scratch[i]);
            return f->scratch[i];
        }
    fail_msg("too many scratch buffers");
    return NULL;
}

static void env_init(struct rg_envelope *env, const char *sender)
{
    memset(env, 0, sizeof(*env));
    snprintf(env->sender, sizeof(env->sender), "%s", sender);
    env->params.size = -1;
    strcpy(env->helo, "upstream.example");
}

static void spool_set(struct fx *f, const char *p, size_t n)
{
    rg_spool_reset(&f->sp);
    assert_int_equal(rg_spool_write(&f->sp, p, n), 0);
    assert_int_equal(rg_spool_finish(&f->sp), 0);
}

/* Send head (may be NULL) and the spool from off to rcpts; returns the
 * accepted count, replies filled. */
static size_t send_src(struct fx *f, const struct rg_envelope *env, char *const *rcpts,
                       size_t n, const char *head, off_t off, struct rg_reply *replies)
{
    struct rg_msgsrc src;

    memset(&src, 0, sizeof(src));
    src.head = head;
    src.head_len = head ? strlen(head) : 0;
    src.sp = &f->sp;
    src.off = off;
    for (size_t i = 0; i < n; i++) {
        replies[i].code = -1;
        strcpy(replies[i].text, "unset");
    }
    return rg_smtpc_send(f->c, env, rcpts, n, &src, replies);
}

/* The message passed unchanged: the whole spool. */
static size_t send_msg(struct fx *f, const struct rg_envelope *env, char *const *rcpts,
                       size_t n, struct rg_reply *replies)
{
    return send_src(f, env, rcpts, n, NULL, 0, replies);
}

static void expect_reply(const struct rg_reply *r, int code, const char *text)
{
    assert_int_equal(r->code, code);
    assert_string_equal(r->text, text);
}

static const char *content_of(const struct fx *f, int i)
{
    return f->sh->pool + f->sh->rec[i].off;
}

static void test_exact_content(void **state)
{
    struct fx *f = *state;
    static const char msg[] =
        "From: a@x.example\r\nSubject: dots\r\n\r\n"
        ".\r\n"
        "..\r\n"
        ".leading\r\n"
        "..double\r\n"
        "middle . dot\r\n"
        "\r\n"
        ".\r\n"
        "last line\r\n";
    char *rcpts[] = { "bob@y.example" };
    struct rg_envelope env;
    struct rg_reply rep[1];

    start_server(f, M_SMTPD);
    env_init(&env, "alice@x.example");
    spool_set(f, msg, sizeof(msg) - 1);
    assert_int_equal(send_msg(f, &env, rcpts, 1, rep), 1);
    expect_reply(&rep[0], 250, "250 2.0.0 Ok: queued as Q1");
    assert_int_equal(f->sh->ndeliver, 1);
    assert_string_equal(f->sh->rec[0].sender, "alice@x.example");
    assert_int_equal(f->sh->rec[0].nrcpt, 1);
    assert_string_equal(f->sh->rec[0].rcpts[0], "bob@y.example");
    assert_int_equal(f->sh->rec[0].clen, sizeof(msg) - 1);
    assert_memory_equal(content_of(f, 0), msg, sizeof(msg) - 1);
    /* SIZE is declared since the server offers it */
    assert_int_equal(f->sh->rec[0].params.size, (long long)(sizeof(msg) - 1));
    assert_int_equal(f->sh->rec[0].params.body, RG_BODY_NONE);
    assert_int_equal(f->sh->rec[0].params.smtputf8, 0);
}

static void test_content_normalized(void **state)
{
    struct fx *f = *state;
    static const char msg[] = "a\nb\rc\r\n.\n.x";
    static const char want[] = "a\r\nb\r\nc\r\n.\r\n.x\r\n";
    char *rcpts[] = { "bob@y.example" };
    struct rg_envelope env;
    struct rg_reply rep[1];

    start_server(f, M_SMTPD);
    env_init(&env, "");
    spool_set(f, msg, sizeof(msg) - 1);
    assert_int_equal(send_msg(f, &env, rcpts, 1, rep), 1);
    expect_reply(&rep[0], 250, "250 2.0.0 Ok: queued as Q1");
    assert_string_equal(f->sh->rec[0].sender, "");
    assert_int_equal(f->sh->rec[0].clen, sizeof(want) - 1);
    assert_memory_equal(content_of(f, 0), want, sizeof(want) - 1);
}

static void test_empty_content(void **state)
{
    struct fx *f = *state;
    char *rcpts[] = { "bob@y.example" };
    struct rg_envelope env;
    struct rg_reply rep[1];

    start_server(f, M_SMTPD);
    env_init(&env, "a@x.example");
    spool_set(f, "", 0);
    assert_int_equal(send_msg(f, &env, rcpts, 1, rep), 1);
    expect_reply(&rep[0], 250, "250 2.0.0 Ok: queued as Q1");
    assert_int_equal(f->sh->rec[0].clen, 0);
}

static void test_params_forwarded(void **state)
{
    struct fx *f = *state;
    char *rcpts[] = { "j\xc3\xb6rg@y.example" };
    struct rg_envelope env;
    struct rg_reply rep[1];

    start_server(f, M_SMTPD);
    env_init(&env, "a@x.example");
    env.params.body = RG_BODY_8BITMIME;
    env.params.smtputf8 = 1;
    spool_set(f, "caf\xc3\xa9\r\n", 7);
    assert_int_equal(send_msg(f, &env, rcpts, 1, rep), 1);
    expect_reply(&rep[0], 250, "250 2.0.0 Ok: queued as Q1");
    assert_int_equal(f->sh->rec[0].params.body, RG_BODY_8BITMIME);
    assert_int_equal(f->sh->rec[0].params.smtputf8, 1);
    assert_int_equal(f->sh->rec[0].params.size, 7);
    assert_string_equal(f->sh->rec[0].rcpts[0], "j\xc3\xb6rg@y.example");
}

static void test_xforward_forwarded(void **state)
{
    struct fx *f = *state;
    static const char *const vals[RG_XF_COUNT] = {
        "spike.porcupine.org", "168.100.189.2", "49152", "ESMTP", "spike.porcupine.org",
        "4XyZ12abc", "REMOTE",
    };
    char *rcpts[] = { "bob@y.example" };
    struct rg_envelope env;
    struct rg_reply rep[1];

    start_server(f, M_SMTPD);
    env_init(&env, "a@x.example");
    for (int i = 0; i < RG_XF_COUNT; i++)
        strcpy(env.xf.value[i], vals[i]);
    spool_set(f, "x\r\n", 3);
    assert_int_equal(send_msg(f, &env, rcpts, 1, rep), 1);
    expect_reply(&rep[0], 250, "250 2.0.0 Ok: queued as Q1");
    for (int i = 0; i < RG_XF_COUNT; i++)
        assert_string_equal(f->sh->rec[0].xf.value[i], vals[i]);

    /* a second message without XFORWARD data: the server has none either */
    env_init(&env, "a@x.example");
    strcpy(env.xf.value[RG_XF_ADDR], "192.0.2.7");
    assert_int_equal(send_msg(f, &env, rcpts, 1, rep), 1);
    expect_reply(&rep[0], 250, "250 2.0.0 Ok: queued as Q2");
    assert_string_equal(f->sh->rec[1].xf.value[RG_XF_ADDR], "192.0.2.7");
    assert_string_equal(f->sh->rec[1].xf.value[RG_XF_NAME], "");
    assert_int_equal(f->sh->accepts, 1);
}

static void test_xforward_not_offered(void **state)
{
    struct fx *f = *state;
    char *rcpts[] = { "bob@y.example" };
    struct rg_envelope env;
    struct rg_reply rep[1];

    f->offer_xforward = 0;
    start_server(f, M_SMTPD);
    env_init(&env, "a@x.example");
    strcpy(env.xf.value[RG_XF_NAME], "spike.porcupine.org");
    strcpy(env.xf.value[RG_XF_ADDR], "168.100.189.2");
    spool_set(f, "x\r\n", 3);
    assert_int_equal(send_msg(f, &env, rcpts, 1, rep), 1);
    expect_reply(&rep[0], 250, "250 2.0.0 Ok: queued as Q1");
    for (int i = 0; i < RG_XF_COUNT; i++)
        assert_string_equal(f->sh->rec[0].xf.value[i], "");
}

static void test_rcpt_refusal(void **state)
{
    struct fx *f = *state;
    char *rcpts[] = { "a@y.example", "refuse1@y.example", "b@y.example" };
    struct rg_envelope env;
    struct rg_reply rep[3];

    start_server(f, M_SMTPD);
    env_init(&env, "s@x.example");
    spool_set(f, "hello\r\n", 7);
    assert_int_equal(send_msg(f, &env, rcpts, 3, rep), 2);
    expect_reply(&rep[0], 250, "250 2.0.0 Ok: queued as Q1");
    expect_reply(&rep[1], 550, "550 5.1.1 <refuse1@y.example>: Recipient address rejected");
    expect_reply(&rep[2], 250, "250 2.0.0 Ok: queued as Q1");
    assert_int_equal(f->sh->ndeliver, 1);
    assert_int_equal(f->sh->rec[0].nrcpt, 2);
    assert_string_equal(f->sh->rec[0].rcpts[0], "a@y.example");
    assert_string_equal(f->sh->rec[0].rcpts[1], "b@y.example");
}

static void test_all_rcpts_refused(void **state)
{
    struct fx *f = *state;
    char *rcpts[] = { "refuse1@y.example", "refuse2@y.example" };
    char *good[] = { "ok@y.example" };
    struct rg_envelope env;
    struct rg_reply rep[2];

    start_server(f, M_SMTPD);
    env_init(&env, "s@x.example");
    spool_set(f, "hello\r\n", 7);
    assert_int_equal(send_msg(f, &env, rcpts, 2, rep), 0);
    expect_reply(&rep[0], 550, "550 5.1.1 <refuse1@y.example>: Recipient address rejected");
    expect_reply(&rep[1], 550, "550 5.1.1 <refuse2@y.example>: Recipient address rejected");
    assert_int_equal(f->sh->ndeliver, 0);
    /* the connection is left clean for the next message */
    assert_int_equal(send_msg(f, &env, good, 1, rep), 1);
    expect_reply(&rep[0], 250, "250 2.0.0 Ok: queued as Q1");
    assert_int_equal(f->sh->ndeliver, 1);
    assert_string_equal(f->sh->rec[0].rcpts[0], "ok@y.example");
    assert_int_equal(f->sh->accepts, 1);
}

static void test_data_tempfail(void **state)
{
    struct fx *f = *state;
    char *rcpts[] = { "a@y.example", "refuse1@y.example", "b@y.example" };
    struct rg_envelope env;
    struct rg_reply rep[3];

    start_server(f, M_SMTPD);
    env_init(&env, "tempfail@x.example");
    spool_set(f, "hello\r\n", 7);
    assert_int_equal(send_msg(f, &env, rcpts, 3, rep), 0);
    expect_reply(&rep[0], 451, "451 4.7.1 Try again later");
    expect_reply(&rep[1], 550, "550 5.1.1 <refuse1@y.example>: Recipient address rejected");
    expect_reply(&rep[2], 451, "451 4.7.1 Try again later");
}

static void test_data_permfail(void **state)
{
    struct fx *f = *state;
    char *rcpts[] = { "a@y.example", "b@y.example" };
    struct rg_envelope env;
    struct rg_reply rep[2];

    start_server(f, M_SMTPD);
    env_init(&env, "permfail@x.example");
    spool_set(f, "hello\r\n", 7);
    assert_int_equal(send_msg(f, &env, rcpts, 2, rep), 0);
    expect_reply(&rep[0], 554, "554 5.7.1 Message rejected");
    expect_reply(&rep[1], 554, "554 5.7.1 Message rejected");
    /* and the next message on the same connection is fine */
    env_init(&env, "ok@x.example");
    assert_int_equal(send_msg(f, &env, rcpts, 2, rep), 2);
    expect_reply(&rep[0], 250, "250 2.0.0 Ok: queued as Q2");
    assert_int_equal(f->sh->accepts, 1);
}

static void test_mail_refused(void **state)
{
    struct fx *f = *state;
    char *rcpts[] = { "a@y.example", "b@y.example" };
    struct rg_envelope env;
    struct rg_reply rep[2];

    start_server(f, M_SMTPD);
    env_init(&env, "bad sender@x.example");
    spool_set(f, "hello\r\n", 7);
    assert_int_equal(send_msg(f, &env, rcpts, 2, rep), 0);
    expect_reply(&rep[0], 501, "501 5.1.7 Bad sender address syntax");
    expect_reply(&rep[1], 501, "501 5.1.7 Bad sender address syntax");
    assert_int_equal(f->sh->ndeliver, 0);
    env_init(&env, "good@x.example");
    assert_int_equal(send_msg(f, &env, rcpts, 2, rep), 2);
    expect_reply(&rep[1], 250, "250 2.0.0 Ok: queued as Q1");
    assert_int_equal(f->sh->accepts, 1);
}

static void test_size_refused(void **state)
{
    struct fx *f = *state;
    char *rcpts[] = { "a@y.example" };
    struct rg_envelope env;
    struct rg_reply rep[1];
    char body[200];

    f->max_size = 100;
    start_server(f, M_SMTPD);
    memset(body, 'x', sizeof(body));
    memcpy(body + sizeof(body) - 2, "\r\n", 2);
    env_init(&env, "a@x.example");
    spool_set(f, body, sizeof(body));
    assert_int_equal(send_msg(f, &env, rcpts, 1, rep), 0);
    expect_reply(&rep[0], 552, "552 5.3.4 Message size exceeds fixed limit");
    assert_int_equal(f->sh->ndeliver, 0);
}

static void test_connection_reuse(void **state)
{
    struct fx *f = *state;
    char *r1[] = { "a@y.example" }, *r2[] = { "b@y.example", "c@y.example" };
    struct rg_envelope env;
    struct rg_reply rep[2];

    start_server(f, M_SMTPD);
    env_init(&env, "first@x.example");
    spool_set(f, "one\r\n", 5);
    assert_int_equal(send_msg(f, &env, r1, 1, rep), 1);
    expect_reply(&rep[0], 250, "250 2.0.0 Ok: queued as Q1");
    env_init(&env, "second@x.example");
    spool_set(f, "two\r\n", 5);
    assert_int_equal(send_msg(f, &env, r2, 2, rep), 2);
    expect_reply(&rep[0], 250, "250 2.0.0 Ok: queued as Q2");
    expect_reply(&rep[1], 250, "250 2.0.0 Ok: queued as Q2");
    env_init(&env, "third@x.example");
    assert_int_equal(send_msg(f, &env, r1, 1, rep), 1);
    expect_reply(&rep[0], 250, "250 2.0.0 Ok: queued as Q3");
    assert_int_equal(f->sh->accepts, 1);
    assert_int_equal(f->sh->ndeliver, 3);
    assert_string_equal(f->sh->rec[1].sender, "second@x.example");
    assert_int_equal(f->sh->rec[1].clen, 5);
    assert_memory_equal(content_of(f, 1), "two\r\n", 5);
}

static void test_reconnect_after_server_timeout(void **state)
{
    struct fx *f = *state;
    char *rcpts[] = { "a@y.example" };
    struct rg_envelope env;
    struct rg_reply rep[1];

    f->server_timeout_ms = 300;
    start_server(f, M_SMTPD);
    env_init(&env, "a@x.example");
    spool_set(f, "one\r\n", 5);
    assert_int_equal(send_msg(f, &env, rcpts, 1, rep), 1);
    /* the server gives up on the idle connection (421 and close) */
    usleep(900 * 1000);
    assert_int_equal(send_msg(f, &env, rcpts, 1, rep), 1);
    expect_reply(&rep[0], 250, "250 2.0.0 Ok: queued as Q2");
    assert_int_equal(f->sh->accepts, 2);
}

static void test_connection_refused(void **state)
{
    struct fx *f = *state;
    char *rcpts[] = { "a@y.example", "b@y.example" };
    struct rg_envelope env;
    struct rg_reply rep[2];
    char want[256];

    /* a port that was just free and has no listener */
    listen_any(f);
    close(f->lfd);
    f->lfd = -1;
    f->c = rg_smtpc_new(&f->dest, "client.test", TIMEOUT_MS);
    env_init(&env, "a@x.example");
    spool_set(f, "x\r\n", 3);
    assert_int_equal(send_msg(f, &env, rcpts, 2, rep), 0);
    snprintf(want, sizeof(want),
             "451 4.4.1 Error: cannot reach reinjection host: connect to 127.0.0.1:%d: "
             "Connection refused", f->dest.port);
    expect_reply(&rep[0], 451, want);
    expect_reply(&rep[1], 451, want);
}

static void test_server_closes_at_data(void **state)
{
    struct fx *f = *state;
    char *rcpts[] = { "a@y.example", "b@y.example" };
    struct rg_envelope env;
    struct rg_reply rep[2];
    char want[256];

    start_server(f, M_CLOSE_AT_DATA);
    env_init(&env, "a@x.example");
    spool_set(f, "x\r\n", 3);
    assert_int_equal(send_msg(f, &env, rcpts, 2, rep), 0);
    snprintf(want, sizeof(want),
             "451 4.4.2 Error: lost connection with reinjection host 127.0.0.1:%d "
             "after MAIL FROM", f->dest.port);
    expect_reply(&rep[0], 451, want);
    expect_reply(&rep[1], 451, want);
}

static void test_server_closes_in_content(void **state)
{
    struct fx *f = *state;
    char *rcpts[] = { "a@y.example", "b@y.example" };
    struct rg_envelope env;
    struct rg_reply rep[2];
    char want[256];
    size_t n = 300000;
    char *body = scratch(f, n);

    for (size_t i = 0; i < n; i++)
        body[i] = (i % 100 == 99) ? '\n' : 'b';
    start_server(f, M_CLOSE_IN_CONTENT);
    env_init(&env, "a@x.example");
    spool_set(f, body, n);
    assert_int_equal(send_msg(f, &env, rcpts, 2, rep), 0);
    snprintf(want, sizeof(want), "451 4.4.2 Error: lost connection with reinjection host "
             "127.0.0.1:%d ", f->dest.port);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(rep[i].code, 451);
        assert_memory_equal(rep[i].text, want, strlen(want));
    }
}

/* a next hop that stops reading in the middle of the data: the reply says
 * "timeout", not "lost connection" */
static void test_stall_in_content(void **state)
{
    struct fx *f = *state;
    char *rcpts[] = { "a@y.example" };
    struct rg_envelope env;
    struct rg_reply rep[1];
    char want[256];
    size_t n = 40000000;
    char *body = scratch(f, n);
    long long t0, dt;

    for (size_t i = 0; i < n; i++)
        body[i] = (i % 100 == 99) ? '\n' : 'b';
    start_server(f, M_STALL_IN_CONTENT);
    env_init(&env, "a@x.example");
    spool_set(f, body, n);
    t0 = rg_now_ms();
    assert_int_equal(send_msg(f, &env, rcpts, 1, rep), 0);
    dt = rg_now_ms() - t0;
    snprintf(want, sizeof(want), "451 4.4.2 Error: timeout with reinjection host 127.0.0.1:%d "
             "while sending message content", f->dest.port);
    expect_reply(&rep[0], 451, want);
    assert_true(dt >= TIMEOUT_MS - 50);
    assert_true(dt < TIMEOUT_MS + 1000);
}

static void test_timeout_no_greeting(void **state)
{
    struct fx *f = *state;
    char *rcpts[] = { "a@y.example" };
    struct rg_envelope env;
    struct rg_reply rep[1];
    char want[256];
    long long t0, dt;

    /* a listener that never accepts: the connect succeeds, nothing is said */
    listen_any(f);
    f->c = rg_smtpc_new(&f->dest, "client.test", TIMEOUT_MS);
    env_init(&env, "a@x.example");
    spool_set(f, "x\r\n", 3);
    t0 = rg_now_ms();
    assert_int_equal(send_msg(f, &env, rcpts, 1, rep), 0);
    dt = rg_now_ms() - t0;
    snprintf(want, sizeof(want),
             "451 4.4.2 Error: timeout with reinjection host 127.0.0.1:%d in the greeting",
             f->dest.port);
    expect_reply(&rep[0], 451, want);
    assert_true(dt >= TIMEOUT_MS - 50);
    assert_true(dt < TIMEOUT_MS + 1000);
}

static void test_timeout_after_mail(void **state)
{
    struct fx *f = *state;
    char *rcpts[] = { "a@y.example" };
    struct rg_envelope env;
    struct rg_reply rep[1];
    char want[256];
    long long t0, dt;

    start_server(f, M_SILENT_AFTER_EHLO);
    env_init(&env, "a@x.example");
    spool_set(f, "x\r\n", 3);
    t0 = rg_now_ms();
    assert_int_equal(send_msg(f, &env, rcpts, 1, rep), 0);
    dt = rg_now_ms() - t0;
    snprintf(want, sizeof(want),
             "451 4.4.2 Error: timeout with reinjection host 127.0.0.1:%d after MAIL FROM",
             f->dest.port);
    expect_reply(&rep[0], 451, want);
    assert_true(dt >= TIMEOUT_MS - 50);
    assert_true(dt < TIMEOUT_MS + 1000);
}

static void test_greeting_refused(void **state)
{
    struct fx *f = *state;
    char *rcpts[] = { "a@y.example" };
    struct rg_envelope env;
    struct rg_reply rep[1];
    char want[256];

    start_server(f, M_GREET_554);
    env_init(&env, "a@x.example");
    spool_set(f, "x\r\n", 3);
    assert_int_equal(send_msg(f, &env, rcpts, 1, rep), 0);
    snprintf(want, sizeof(want), "451 4.3.0 Error: reinjection host 127.0.0.1:%d refused us: "
             "554 5.3.2 no service here", f->dest.port);
    expect_reply(&rep[0], 451, want);
}

static void test_large_message_file_mode(void **state)
{
    struct fx *f = *state;
    char *rcpts[] = { "a@y.example" };
    struct rg_envelope env;
    struct rg_reply rep[1];
    size_t n = 64 * 4700;       /* whole lines of 64 octets */
    char *body = scratch(f, n);

    for (size_t i = 0; i < n; i++) {
        size_t col = i % 64;
        body[i] = col == 62 ? '\r' : col == 63 ? '\n' : (col == 0 || (i / 64) % 3 == 0) ? '.'
                  : (char)('a' + (i / 64) % 26);
    }
    start_server(f, M_SMTPD);
    env_init(&env, "a@x.example");
    spool_set(f, body, n);
    assert_null(rg_spool_mem(&f->sp));          /* the client side is in file mode */
    assert_int_equal(send_msg(f, &env, rcpts, 1, rep), 1);
    expect_reply(&rep[0], 250, "250 2.0.0 Ok: queued as Q1");
    assert_int_equal(f->sh->rec[0].file_mode, 1);   /* and so is the server's */
    assert_int_equal(f->sh->rec[0].params.size, (long long)n);
    assert_int_equal(f->sh->rec[0].clen, n);
    assert_memory_equal(content_of(f, 0), body, n);
}

static void test_lockstep_server(void **state)
{
    struct fx *f = *state;
    static const char msg[] = "Subject: x\r\n\r\n.\r\n..two\r\nend\r\n";
    char *rcpts[] = { "a@y.example", "refuse9@y.example", "b@y.example" };
    struct rg_envelope env;
    struct rg_reply rep[3];
    char want[256];

    start_server(f, M_LOCKSTEP);
    env_init(&env, "a@x.example");
    env.params.body = RG_BODY_8BITMIME;
    strcpy(env.xf.value[RG_XF_NAME], "not.offered.example");
    spool_set(f, msg, sizeof(msg) - 1);
    assert_int_equal(send_msg(f, &env, rcpts, 3, rep), 2);
    expect_reply(&rep[0], 250, "250 2.0.0 Ok: queued as RAW1");
    expect_reply(&rep[1], 550, "550 5.1.1 <refuse9@y.example>: refused by raw");
    expect_reply(&rep[2], 250, "250 2.0.0 Ok: queued as RAW1");
    assert_int_equal(f->sh->pipelined, 0);
    snprintf(want, sizeof(want), "MAIL FROM:<a@x.example> SIZE=%zu BODY=8BITMIME",
             sizeof(msg) - 1);
    assert_string_equal(f->sh->rec[0].mail_line, want);
    assert_int_equal(f->sh->rec[0].nrcpt, 2);
    assert_int_equal(f->sh->rec[0].clen, sizeof(msg) - 1);
    assert_memory_equal(content_of(f, 0), msg, sizeof(msg) - 1);

    /* all refused, lockstep: DATA is not even sent; RSET; then reuse */
    {
        char *bad[] = { "refuse1@y.example" }, *good[] = { "c@y.example" };
        assert_int_equal(send_msg(f, &env, bad, 1, rep), 0);
        expect_reply(&rep[0], 550, "550 5.1.1 <refuse1@y.example>: refused by raw");
        assert_int_equal(send_msg(f, &env, good, 1, rep), 1);
        expect_reply(&rep[0], 250, "250 2.0.0 Ok: queued as RAW1");
        assert_int_equal(f->sh->accepts, 1);
        assert_int_equal(f->sh->pipelined, 0);
    }

    /* SMTPUTF8 needed but not offered: refused without a transaction */
    env.params.smtputf8 = 1;
    assert_int_equal(send_msg(f, &env, rcpts, 1, rep), 0);
    expect_reply(&rep[0], 550, "550 5.6.7 Error: reinjection host does not support SMTPUTF8");
}

static void test_garbage_greeting(void **state)
{
    struct fx *f = *state;
    char *rcpts[] = { "a@y.example" };
    struct rg_envelope env;
    struct rg_reply rep[1];
    char want[256];

    start_server(f, M_GARBAGE);
    env_init(&env, "a@x.example");
    spool_set(f, "x\r\n", 3);
    assert_int_equal(send_msg(f, &env, rcpts, 1, rep), 0);
    snprintf(want, sizeof(want), "451 4.5.0 Error: protocol error from reinjection host "
             "127.0.0.1:%d in the greeting", f->dest.port);
    expect_reply(&rep[0], 451, want);
}

static void test_xforward_refused(void **state)
{
    struct fx *f = *state;
    char *rcpts[] = { "a@y.example", "b@y.example" };
    struct rg_envelope env;
    struct rg_reply rep[2];
    const char *want = "451 4.3.0 Error: reinjection host refused XFORWARD: "
                       "501 5.5.4 Bad XFORWARD attribute value";

    start_server(f, M_SMTPD);
    env_init(&env, "a@x.example");
    strcpy(env.xf.value[RG_XF_NAME], "bad+0Dname");
    spool_set(f, "x\r\n", 3);
    assert_int_equal(send_msg(f, &env, rcpts, 2, rep), 0);
    expect_reply(&rep[0], 451, want);
    expect_reply(&rep[1], 451, want);
    assert_int_equal(f->sh->ndeliver, 0);
    /* the connection was dropped; the next message uses a new one */
    env_init(&env, "a@x.example");
    assert_int_equal(send_msg(f, &env, rcpts, 2, rep), 2);
    expect_reply(&rep[0], 250, "250 2.0.0 Ok: queued as Q1");
    assert_int_equal(f->sh->accepts, 2);
}

static void test_xforward_long_values(void **state)
{
    struct fx *f = *state;
    char *rcpts[] = { "a@y.example" };
    struct rg_envelope env;
    struct rg_reply rep[1];

    start_server(f, M_SMTPD);
    env_init(&env, "a@x.example");
    for (int i = 0; i < RG_XF_COUNT; i++) {
        memset(env.xf.value[i], 'a' + i, RG_XF_VALUE_MAX - 1);
        env.xf.value[i][RG_XF_VALUE_MAX - 1] = 0;
    }
    spool_set(f, "x\r\n", 3);
    assert_int_equal(send_msg(f, &env, rcpts, 1, rep), 1);
    expect_reply(&rep[0], 250, "250 2.0.0 Ok: queued as Q1");
    for (int i = 0; i < RG_XF_COUNT; i++)
        assert_string_equal(f->sh->rec[0].xf.value[i], env.xf.value[i]);
}

static void test_retry_when_reused_connection_dropped(void **state)
{
    struct fx *f = *state;
    char *rcpts[] = { "a@y.example" };
    struct rg_envelope env;
    struct rg_reply rep[1];

    start_server(f, M_LOCKSTEP_DROP);
    env_init(&env, "a@x.example");
    spool_set(f, "one\r\n", 5);
    assert_int_equal(send_msg(f, &env, rcpts, 1, rep), 1);
    expect_reply(&rep[0], 250, "250 2.0.0 Ok: queued as RAW1");
    /* the cached connection dies at MAIL without an answer: one silent
     * retry on a fresh connection */
    spool_set(f, "two\r\n", 5);
    assert_int_equal(send_msg(f, &env, rcpts, 1, rep), 1);
    expect_reply(&rep[0], 250, "250 2.0.0 Ok: queued as RAW1");
    assert_int_equal(f->sh->accepts, 2);
    assert_int_equal(f->sh->ndeliver, 2);
    assert_int_equal(f->sh->rec[1].clen, 5);
    assert_memory_equal(content_of(f, 1), "two\r\n", 5);
}

static void test_new_header_section(void **state)
{
    struct fx *f = *state;
    static const char msg[] = "Subject: old\r\nX-Old: 1\r\n\r\nbody\r\n.dot\r\n";
    static const char head[] = "Subject: new\r\n.X-Dot: 2\r\n\r\n";
    static const char want[] = "Subject: new\r\n.X-Dot: 2\r\n\r\nbody\r\n.dot\r\n";
    char *rcpts[] = { "a@y.example" };
    struct rg_envelope env;
    struct rg_reply rep[1];
    off_t body = (off_t)(strstr(msg, "\r\n\r\n") - msg + 4);

    start_server(f, M_SMTPD);
    env_init(&env, "a@x.example");
    spool_set(f, msg, sizeof(msg) - 1);
    assert_int_equal(send_src(f, &env, rcpts, 1, head, body, rep), 1);
    expect_reply(&rep[0], 250, "250 2.0.0 Ok: queued as Q1");
    assert_int_equal(f->sh->rec[0].clen, sizeof(want) - 1);
    assert_memory_equal(content_of(f, 0), want, sizeof(want) - 1);
    /* SIZE counts what is sent: the new head and the rest of the spool */
    assert_int_equal(f->sh->rec[0].params.size, (long long)(sizeof(want) - 1));
}

static void test_new_header_section_file_mode(void **state)
{
    struct fx *f = *state;
    static const char head[] = "X-Head: new\r\n";
    char *rcpts[] = { "a@y.example" };
    struct rg_envelope env;
    struct rg_reply rep[1];
    size_t n = 100 * 1000, off = 1000;
    char *msg = scratch(f, n);

    for (size_t i = 0; i < n; i++)
        msg[i] = (i % 100 == 98) ? '\r' : (i % 100 == 99) ? '\n' : (char)('0' + i % 10);
    start_server(f, M_SMTPD);
    env_init(&env, "a@x.example");
    spool_set(f, msg, n);
    assert_null(rg_spool_mem(&f->sp));
    assert_int_equal(send_src(f, &env, rcpts, 1, head, (off_t)off, rep), 1);
    expect_reply(&rep[0], 250, "250 2.0.0 Ok: queued as Q1");
    assert_int_equal(f->sh->rec[0].clen, sizeof(head) - 1 + n - off);
    assert_memory_equal(content_of(f, 0), head, sizeof(head) - 1);
    assert_memory_equal(content_of(f, 0) + sizeof(head) - 1, msg + off, n - off);
    assert_int_equal(f->sh->rec[0].params.size, (long long)(sizeof(head) - 1 + n - off));
}

static int group_setup(void **state)
{
    const char *tmp = getenv("TMPDIR");

    (void)state;
    if (tmp == NULL || tmp[0] == 0 || strlen(tmp) > 400)
        tmp = "/tmp";
    snprintf(spool_dir, sizeof(spool_dir), "%s/rg-test-smtpc-XXXXXX", tmp);
    return mkdtemp(spool_dir) ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    return rmdir(spool_dir);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_exact_content),
        T(test_content_normalized),
        T(test_empty_content),
        T(test_params_forwarded),
        T(test_xforward_forwarded),
        T(test_xforward_not_offered),
        T(test_rcpt_refusal),
        T(test_all_rcpts_refused),
        T(test_data_tempfail),
        T(test_data_permfail),
        T(test_mail_refused),
        T(test_size_refused),
        T(test_connection_reuse),
        T(test_reconnect_after_server_timeout),
        T(test_connection_refused),
        T(test_server_closes_at_data),
        T(test_server_closes_in_content),
        T(test_stall_in_content),
        T(test_timeout_no_greeting),
        T(test_timeout_after_mail),
        T(test_greeting_refused),
        T(test_large_message_file_mode),
        T(test_lockstep_server),
        T(test_garbage_greeting),
        T(test_xforward_refused),
        T(test_xforward_long_values),
        T(test_retry_when_reused_connection_dropped),
        T(test_new_header_section),
        T(test_new_header_section_file_mode),
    };

    rg_log_open("test_smtp_client", RG_LOG_NONE, 0);
    signal(SIGPIPE, SIG_IGN);
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
