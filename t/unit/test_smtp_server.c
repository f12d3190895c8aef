/*
 * test_smtp_server.c - unit tests of lib/smtp_server.c: a whole SMTP/LMTP
 * session driven over a socket. rg_smtp_serve runs in a thread with a
 * deliver callback that records the envelope and the content; the test is
 * the client, writes command sequences and checks every reply line.
 *
 * The connection is a TCP connection over 127.0.0.1, as regigated gets
 * from Postfix (so the client address is known exactly); one test uses a
 * socketpair(AF_UNIX) for what rg_peer_name does there.
 */
#include "config.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "log.h"
#include "netio.h"
#include "smtp_server.h"

#define HOST "rg.test"
#define MAX_REC 8

/* One delivered message, as the deliver callback saw it. */
struct rec {
    char helo[256];
    char client_addr[64];
    char sender[RG_ADDR_MAX];
    struct rg_mail_params params;
    char rcpts[8][RG_ADDR_MAX];
    size_t nrcpt;
    struct rg_xforward xf;
    char *content;
    size_t clen;
    int file_mode;      /* the spool was in file mode */
};

struct srv {
    int cl;             /* the test's end of the socketpair */
    int sv;             /* the server's end */
    int started;
    int unix_pair;      /* socketpair(AF_UNIX) instead of TCP */
    pthread_t th;
    struct rg_smtp_server_cfg cfg;
    int ret;            /* rg_smtp_serve's return */
    struct rec rec[MAX_REC];
    int ndeliver;
    void *scratch[8];   /* test buffers, freed in teardown even on failure */
};

static char spool_dir[512];
static volatile int stop_flag;

/* ---- the server side ---------------------------------------------------- */

static void record(struct srv *s, struct rg_envelope *env, struct rg_spool *sp)
{
    struct rec *r;
    size_t size = rg_spool_size(sp), off = 0;

    if (s->ndeliver >= MAX_REC) {
        s->ndeliver++;
        return;
    }
    r = &s->rec[s->ndeliver++];
    snprintf(r->helo, sizeof(r->helo), "%s", env->helo);
    snprintf(r->client_addr, sizeof(r->client_addr), "%s", env->client_addr);
    snprintf(r->sender, sizeof(r->sender), "%s", env->sender);
    r->params = env->params;
    r->nrcpt = env->nrcpt;
    for (size_t i = 0; i < env->nrcpt && i < 8; i++)
        snprintf(r->rcpts[i], sizeof(r->rcpts[i]), "%s", env->rcpts[i]);
    r->xf = env->xf;
    r->file_mode = rg_spool_mem(sp) == NULL;
    r->content = malloc(size + 1);
    while (r->content && off < size) {
        ssize_t n = rg_spool_read(sp, r->content + off, size - off, (off_t)off);
        if (n <= 0)
            break;
        off += (size_t)n;
    }
    r->clen = off;
    if (r->content)
        r->content[off] = 0;
}

/*
 * Per recipient: "fail..." gets a 550, "temp..." a 452, the others 250.
 * The SMTP summary names the delivery number.
 */
static void test_deliver(void *ctx, struct rg_envelope *env, struct rg_spool *sp,
                         struct rg_reply *per_rcpt, struct rg_reply *summary)
{
    struct srv *s = ctx;

    record(s, env, sp);
    for (size_t i = 0; i < env->nrcpt; i++) {
        if (strncmp(env->rcpts[i], "fail", 4) == 0)
            rg_reply_set(&per_rcpt[i], 550, "550 5.1.1 <%s>: no such user", env->rcpts[i]);
        else if (strncmp(env->rcpts[i], "temp", 4) == 0)
            rg_reply_set(&per_rcpt[i], 452, "452 4.2.2 <%s>: mailbox full", env->rcpts[i]);
        else
            rg_reply_set(&per_rcpt[i], 250, "250 2.1.5 <%s> delivered", env->rcpts[i]);
    }
    rg_reply_set(summary, 250, "250 2.0.0 Ok: queued as TEST%d", s->ndeliver);
}

static int test_rcpt_check(void *ctx, const char *addr, struct rg_reply *r)
{
    (void)ctx;
    if (strncmp(addr, "refuse", 6) == 0) {
        rg_reply_set(r, 550, "550 5.1.1 <%s>: Recipient address rejected", addr);
        return -1;
    }
    return 0;
}

static void *server_main(void *arg)
{
    struct srv *s = arg;

    s->ret = rg_smtp_serve(s->sv, &s->cfg);
    /* the client sees EOF when the session ends */
    close(s->sv);
    s->sv = -1;
    return NULL;
}

static int setup(void **state)
{
    struct srv *s = calloc(1, sizeof(*s));

    if (s == NULL)
        return -1;
    s->cl = s->sv = -1;
    s->cfg.protocol = RG_PROTO_SMTP;
    s->cfg.hostname = HOST;
    s->cfg.max_message_size = 1000;
    s->cfg.max_recipients = 3;
    s->cfg.timeout_ms = 3000;
    s->cfg.spool_dir = spool_dir;
    s->cfg.spool_mem_limit = 4096;
    s->cfg.watchdog_s = 0;
    s->cfg.offer_xforward = 1;
    s->cfg.deliver = test_deliver;
    s->cfg.rcpt_check = NULL;
    s->cfg.ctx = s;
    s->cfg.stop = NULL;
    stop_flag = 0;
    *state = s;
    return 0;
}

static int teardown(void **state)
{
    struct srv *s = *state;

    if (s->cl >= 0)
        close(s->cl);
    if (s->started)
        pthread_join(s->th, NULL);
    if (s->sv >= 0)
        close(s->sv);
    for (int i = 0; i < MAX_REC; i++)
        free(s->rec[i].content);
    for (int i = 0; i < 8; i++)
        free(s->scratch[i]);
    free(s);
    return 0;
}

/* A connected TCP pair over 127.0.0.1: fds[0] the client, fds[1] the server. */
static void tcp_pair(int fds[2])
{
    struct rg_hostport hp;
    struct sockaddr_in sin;
    socklen_t sl = sizeof(sin);
    struct pollfd pfd;
    char err[256];
    int lfd;

    memset(&hp, 0, sizeof(hp));
    strcpy(hp.host, "127.0.0.1");
    lfd = rg_listen_tcp(&hp, 1, err, sizeof(err));
    assert_true(lfd >= 0);
    assert_int_equal(getsockname(lfd, (struct sockaddr *)&sin, &sl), 0);
    fds[0] = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fds[0] >= 0);
    assert_int_equal(connect(fds[0], (struct sockaddr *)&sin, sl), 0);
    pfd.fd = lfd;
    pfd.events = POLLIN;
    assert_int_equal(poll(&pfd, 1, 5000), 1);
    fds[1] = accept(lfd, NULL, NULL);
    assert_true(fds[1] >= 0);
    close(lfd);
    rg_set_nodelay(fds[0]);
    rg_set_nodelay(fds[1]);
}

/* Start the session (with s->cfg as the test left it). */
static void start(struct srv *s)
{
    int fds[2];
    struct timeval tv = { .tv_sec = 5 };

    if (s->unix_pair)
        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
    else
        tcp_pair(fds);
    s->cl = fds[0];
    s->sv = fds[1];
    assert_int_equal(rg_set_nonblock(s->sv), 0);
    /* a broken server makes a test fail, never hang */
    assert_int_equal(setsockopt(s->cl, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)), 0);
    assert_int_equal(setsockopt(s->cl, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)), 0);
    assert_int_equal(pthread_create(&s->th, NULL, server_main, s), 0);
    s->started = 1;
}

/* Wait for the session to end; returns rg_smtp_serve's result. */
static int finish(struct srv *s)
{
    close(s->cl);
    s->cl = -1;
    pthread_join(s->th, NULL);
    s->started = 0;
    return s->ret;
}

/* ---- the client side ---------------------------------------------------- */

/* A buffer that lives until the end of the test, whatever happens. */
static void *scratch(struct srv *s, size_t n)
{
    for (int i = 0; i < 8; i++)
        if (s->scratch[i] == NULL) {
            s->scratch[i] = malloc(n);
            assert_non_null(s->scratch[i]);
            return s->scratch[i];
        }
    fail_msg("too many scratch buffers");
    return NULL;
}

static void send_bytes(struct srv *s, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = send(s->cl, p, n, MSG_NOSIGNAL);
        assert_true(w > 0);
        p += w;
        n -= (size_t)w;
    }
}

static void send_str(struct srv *s, const char *str)
{
    send_bytes(s, str, strlen(str));
}

/* Read one reply line; it must end in CR LF (removed). -1 at EOF. */
static int read_line(struct srv *s, char *line, size_t max)
{
    size_t n = 0;

    for (;;) {
        char c;
        ssize_t r = recv(s->cl, &c, 1, 0);
        if (r == 0 && n == 0)
            return -1;
        assert_int_equal(r, 1);            /* not a timeout, not a partial line */
        assert_true(n + 1 < max);
        line[n++] = c;
        if (c == '\n')
            break;
    }
    assert_true(n >= 2);
    assert_int_equal(line[n - 2], '\r');
    line[n - 2] = 0;
    return 0;
}

static void expect(struct srv *s, const char *reply)
{
    char line[1024];

    assert_int_equal(read_line(s, line, sizeof(line)), 0);
    assert_string_equal(line, reply);
}

static void expect_eof(struct srv *s)
{
    char c;

    assert_int_equal(recv(s->cl, &c, 1, 0), 0);
}

/* Nothing more is waiting from the server right now. */
static void expect_quiet(struct srv *s)
{
    struct pollfd pfd = { .fd = s->cl, .events = POLLIN };

    assert_int_equal(poll(&pfd, 1, 50), 0);
}

static void expect_ehlo_reply(struct srv *s, int xforward)
{
    expect(s, "250-" HOST);
    expect(s, "250-PIPELINING");
    expect(s, "250-SIZE 1000");
    expect(s, "250-8BITMIME");
    expect(s, "250-SMTPUTF8");
    if (xforward)
        expect(s, "250-XFORWARD NAME ADDR PORT PROTO HELO IDENT SOURCE");
    expect(s, "250 ENHANCEDSTATUSCODES");
}

/* Greeting and EHLO. */
static void greet(struct srv *s)
{
    start(s);
    expect(s, "220 " HOST " ESMTP regigate");
    send_str(s, "EHLO client.example\r\n");
    expect_ehlo_reply(s, s->cfg.offer_xforward);
}

#define R_MAIL "250 2.1.0 Ok"
#define R_RCPT "250 2.1.5 Ok"
#define R_DATA "354 End data with <CR><LF>.<CR><LF>"
#define R_NOOP "250 2.0.0 Ok"
#define R_BYE "221 2.0.0 Bye"
#define R_UNKNOWN "500 5.5.2 Error: command not recognized"
#define R_NEED_MAIL "503 5.5.1 Error: need MAIL command"
#define R_TOO_BIG "552 5.3.4 Message size exceeds fixed limit"

/* One message: MAIL, one RCPT, DATA, content (already stuffed, with the
 * terminator), each answered as expected. */
static void one_message(struct srv *s, const char *from, const char *to, const char *wire,
                        const char *final)
{
    char cmd[600];

    snprintf(cmd, sizeof(cmd), "MAIL FROM:<%s>\r\n", from);
    send_str(s, cmd);
    expect(s, R_MAIL);
    snprintf(cmd, sizeof(cmd), "RCPT TO:<%s>\r\n", to);
    send_str(s, cmd);
    expect(s, R_RCPT);
    send_str(s, "DATA\r\n");
    expect(s, R_DATA);
    send_str(s, wire);
    expect(s, final);
}

/* ---- tests ------------------------------------------------------------- */

static void test_greeting_quit(void **state)
{
    struct srv *s = *state;

    start(s);
    expect(s, "220 " HOST " ESMTP regigate");
    send_str(s, "QUIT\r\n");
    expect(s, R_BYE);
    expect_eof(s);
    assert_int_equal(finish(s), 0);
    assert_int_equal(s->ndeliver, 0);
}

static void test_ehlo_extensions(void **state)
{
    struct srv *s = *state;

    greet(s);
    /* a second EHLO, lower case, gets the same list */
    send_str(s, "ehlo other.example\r\n");
    expect_ehlo_reply(s, 1);
    send_str(s, "EHLO\r\n");
    expect(s, "501 5.5.4 Syntax: EHLO hostname");
    send_str(s, "QUIT\r\n");
    expect(s, R_BYE);
    expect_eof(s);
}

static void test_ehlo_without_xforward(void **state)
{
    struct srv *s = *state;

    s->cfg.offer_xforward = 0;
    s->cfg.max_message_size = 1000;
    greet(s);          /* the list has no XFORWARD line */
    send_str(s, "XFORWARD NAME=x.example\r\n");
    expect(s, "502 5.5.1 Error: command not implemented");
    send_str(s, "QUIT\r\n");
    expect(s, R_BYE);
}

static void test_helo(void **state)
{
    struct srv *s = *state;

    start(s);
    expect(s, "220 " HOST " ESMTP regigate");
    send_str(s, "HELO\r\n");
    expect(s, "501 5.5.4 Syntax: EHLO hostname");
    send_str(s, "HELO client.example\r\n");
    expect(s, "250 " HOST);
    one_message(s, "a@x.example", "b@x.example", "hi\r\n.\r\n", "250 2.0.0 Ok: queued as TEST1");
    send_str(s, "QUIT\r\n");
    expect(s, R_BYE);
    expect_eof(s);
    assert_int_equal(finish(s), 1);
    assert_string_equal(s->rec[0].helo, "client.example");
}

static void test_mail_before_helo(void **state)
{
    struct srv *s = *state;

    start(s);
    expect(s, "220 " HOST " ESMTP regigate");
    send_str(s, "MAIL FROM:<a@x.example>\r\n");
    expect(s, "503 5.5.1 Error: send HELO/EHLO first");
    send_str(s, "RCPT TO:<b@x.example>\r\n");
    expect(s, R_NEED_MAIL);
    send_str(s, "NOOP\r\n");
    expect(s, R_NOOP);
}

static void test_lmtp_lhlo(void **state)
{
    struct srv *s = *state;

    s->cfg.protocol = RG_PROTO_LMTP;
    start(s);
    expect(s, "220 " HOST " LMTP regigate");
    send_str(s, "EHLO client.example\r\n");
    expect(s, "500 5.5.1 Error: this is an LMTP server, use LHLO");
    send_str(s, "HELO client.example\r\n");
    expect(s, "500 5.5.1 Error: this is an LMTP server, use LHLO");
    send_str(s, "MAIL FROM:<a@x.example>\r\n");
    expect(s, "503 5.5.1 Error: send HELO/EHLO first");
    send_str(s, "LHLO client.example\r\n");
    expect_ehlo_reply(s, 1);
    send_str(s, "MAIL FROM:<a@x.example>\r\n");
    expect(s, R_MAIL);
}

static void test_lhlo_refused_in_smtp(void **state)
{
    struct srv *s = *state;

    start(s);
    expect(s, "220 " HOST " ESMTP regigate");
    send_str(s, "LHLO client.example\r\n");
    expect(s, R_UNKNOWN);
    send_str(s, "MAIL FROM:<a@x.example>\r\n");
    expect(s, "503 5.5.1 Error: send HELO/EHLO first");
}

static void test_happy_path(void **state)
{
    struct srv *s = *state;
    struct rec *r;

    greet(s);
    send_str(s, "MAIL FROM:<alice@example.com> BODY=8BITMIME SIZE=100\r\n");
    expect(s, R_MAIL);
    send_str(s, "RCPT TO:<bob@example.org>\r\n");
    expect(s, R_RCPT);
    send_str(s, "RCPT TO:<Carol@Example.org>\r\n");
    expect(s, R_RCPT);
    send_str(s, "DATA\r\n");
    expect(s, R_DATA);
    send_str(s, "Subject: hi\r\n\r\n..leading dot\r\n...\r\nbody\r\n.\r\n");
    expect(s, "250 2.0.0 Ok: queued as TEST1");
    send_str(s, "QUIT\r\n");
    expect(s, R_BYE);
    expect_eof(s);
    assert_int_equal(finish(s), 1);

    assert_int_equal(s->ndeliver, 1);
    r = &s->rec[0];
    assert_string_equal(r->helo, "client.example");
    assert_string_equal(r->client_addr, "127.0.0.1");
    assert_string_equal(r->sender, "alice@example.com");
    assert_int_equal(r->params.size, 100);
    assert_int_equal(r->params.body, RG_BODY_8BITMIME);
    assert_int_equal(r->params.smtputf8, 0);
    assert_int_equal(r->nrcpt, 2);
    assert_string_equal(r->rcpts[0], "bob@example.org");
    assert_string_equal(r->rcpts[1], "Carol@Example.org");
    for (int i = 0; i < RG_XF_COUNT; i++)
        assert_string_equal(r->xf.value[i], "");
    assert_int_equal(r->file_mode, 0);
    assert_int_equal(r->clen, strlen("Subject: hi\r\n\r\n.leading dot\r\n..\r\nbody\r\n"));
    assert_string_equal(r->content, "Subject: hi\r\n\r\n.leading dot\r\n..\r\nbody\r\n");
}

/* The client's address as accept() gave it (cfg.peer) is the envelope's,
 * without asking the socket (a socketpair has no IP peer at all). */
static void send_one(struct srv *s)
{
    greet(s);
    send_str(s, "MAIL FROM:<a@example.com>\r\n");
    expect(s, R_MAIL);
    send_str(s, "RCPT TO:<b@example.org>\r\n");
    expect(s, R_RCPT);
    send_str(s, "DATA\r\n");
    expect(s, R_DATA);
    send_str(s, "Subject: x\r\n\r\nx\r\n.\r\n");
    expect(s, "250 2.0.0 Ok: queued as TEST1");
    send_str(s, "QUIT\r\n");
    expect(s, R_BYE);
    expect_eof(s);
    assert_int_equal(finish(s), 1);
}

static void test_peer_from_accept_v4(void **state)
{
    struct srv *s = *state;
    struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(4321) };

    sin.sin_addr.s_addr = htonl(0xc0000207);    /* 192.0.2.7 */
    s->cfg.peer = (const struct sockaddr *)&sin;
    s->cfg.peerlen = sizeof(sin);
    send_one(s);
    assert_string_equal(s->rec[0].client_addr, "192.0.2.7");
}

static void test_peer_from_accept_v6(void **state)
{
    struct srv *s = *state;
    struct sockaddr_in6 sin6 = { .sin6_family = AF_INET6, .sin6_port = htons(25) };

    sin6.sin6_addr.s6_addr[0] = 0x20;           /* 2001:db8::5 */
    sin6.sin6_addr.s6_addr[1] = 0x01;
    sin6.sin6_addr.s6_addr[2] = 0x0d;
    sin6.sin6_addr.s6_addr[3] = 0xb8;
    sin6.sin6_addr.s6_addr[15] = 0x05;
    s->cfg.peer = (const struct sockaddr *)&sin6;
    s->cfg.peerlen = sizeof(sin6);
    send_one(s);
    assert_string_equal(s->rec[0].client_addr, "2001:db8::5");
}

static void test_peer_from_accept_unix(void **state)
{
    struct srv *s = *state;
    struct sockaddr sa = { .sa_family = AF_UNIX };

    s->cfg.peer = &sa;
    s->cfg.peerlen = sizeof(sa);
    send_one(s);
    assert_string_equal(s->rec[0].client_addr, "unknown");
}

static void test_null_sender_smtputf8(void **state)
{
    struct srv *s = *state;

    greet(s);
    send_str(s, "MAIL FROM:<> SMTPUTF8\r\n");
    expect(s, R_MAIL);
    send_str(s, "RCPT TO:<j\xc3\xb6rg@example.org>\r\n");
    expect(s, R_RCPT);
    send_str(s, "DATA\r\n");
    expect(s, R_DATA);
    send_str(s, ".\r\n");
    expect(s, "250 2.0.0 Ok: queued as TEST1");
    assert_int_equal(s->ndeliver, 1);
    assert_string_equal(s->rec[0].sender, "");
    assert_int_equal(s->rec[0].params.smtputf8, 1);
    assert_int_equal(s->rec[0].params.size, -1);
    assert_string_equal(s->rec[0].rcpts[0], "j\xc3\xb6rg@example.org");
    assert_int_equal(s->rec[0].clen, 0);
}

static void test_pipelined_group(void **state)
{
    struct srv *s = *state;

    greet(s);
    send_str(s,
        "MAIL FROM:<a@x.example>\r\n"
        "RCPT TO:<b@x.example>\r\n"
        "RCPT TO:<c@x.example>\r\n"
        "DATA\r\n"
        "line1\r\n"
        ".\r\n"
        "MAIL FROM:<>\r\n"
        "RCPT TO:<nobody>\r\n"
        "RCPT TO:<d@x.example>\r\n"
        "DATA\r\n"
        "bounce\r\n"
        "..\r\n"
        ".\r\n"
        "NOOP\r\n"
        "QUIT\r\n");
    expect(s, R_MAIL);
    expect(s, R_RCPT);
    expect(s, R_RCPT);
    expect(s, R_DATA);
    expect(s, "250 2.0.0 Ok: queued as TEST1");
    expect(s, R_MAIL);
    expect(s, "501 5.1.3 Bad recipient address syntax");
    expect(s, R_RCPT);
    expect(s, R_DATA);
    expect(s, "250 2.0.0 Ok: queued as TEST2");
    expect(s, R_NOOP);
    expect(s, R_BYE);
    expect_eof(s);
    assert_int_equal(finish(s), 2);
    assert_int_equal(s->ndeliver, 2);
    assert_string_equal(s->rec[0].sender, "a@x.example");
    assert_int_equal(s->rec[0].nrcpt, 2);
    assert_string_equal(s->rec[0].rcpts[1], "c@x.example");
    assert_string_equal(s->rec[0].content, "line1\r\n");
    assert_string_equal(s->rec[1].sender, "");
    assert_int_equal(s->rec[1].nrcpt, 1);
    assert_string_equal(s->rec[1].rcpts[0], "d@x.example");
    assert_string_equal(s->rec[1].content, "bounce\r\n.\r\n");
}

static void test_pipelined_replies_one_write(void **state)
{
    struct srv *s = *state;
    const char *want = R_MAIL "\r\n" R_RCPT "\r\n" R_RCPT "\r\n" R_DATA "\r\n";
    char buf[1024];
    struct pollfd pfd;
    ssize_t n;

    greet(s);
    send_str(s, "MAIL FROM:<a@x.example>\r\nRCPT TO:<b@x.example>\r\n"
                "RCPT TO:<c@x.example>\r\nDATA\r\n");
    pfd.fd = s->cl;
    pfd.events = POLLIN;
    assert_int_equal(poll(&pfd, 1, 3000), 1);
    /* the group's replies were written together, in order */
    n = recv(s->cl, buf, sizeof(buf) - 1, 0);
    assert_int_equal(n, (ssize_t)strlen(want));
    buf[n] = 0;
    assert_string_equal(buf, want);
    send_str(s, ".\r\n");
    expect(s, "250 2.0.0 Ok: queued as TEST1");
}

static void test_rcpt_before_mail(void **state)
{
    struct srv *s = *state;

    greet(s);
    send_str(s, "RCPT TO:<b@x.example>\r\n");
    expect(s, R_NEED_MAIL);
    send_str(s, "DATA\r\n");
    expect(s, R_NEED_MAIL);
    send_str(s, "QUIT\r\n");
    expect(s, R_BYE);
    assert_int_equal(finish(s), 0);
    assert_int_equal(s->ndeliver, 0);
}

static void test_data_before_rcpt(void **state)
{
    struct srv *s = *state;

    greet(s);
    send_str(s, "MAIL FROM:<a@x.example>\r\n");
    expect(s, R_MAIL);
    send_str(s, "DATA\r\n");
    expect(s, "554 5.5.1 Error: no valid recipients");
    /* the transaction is still open */
    send_str(s, "RCPT TO:<b@x.example>\r\n");
    expect(s, R_RCPT);
    send_str(s, "DATA extra\r\n");
    expect(s, "501 5.5.4 Syntax: DATA");
    send_str(s, "DATA\r\n");
    expect(s, R_DATA);
    send_str(s, ".\r\n");
    expect(s, "250 2.0.0 Ok: queued as TEST1");
    assert_int_equal(s->ndeliver, 1);
    assert_int_equal(s->rec[0].clen, 0);
}

static void test_nested_mail(void **state)
{
    struct srv *s = *state;

    greet(s);
    send_str(s, "MAIL FROM:<first@x.example>\r\n");
    expect(s, R_MAIL);
    send_str(s, "MAIL FROM:<second@x.example>\r\n");
    expect(s, "503 5.5.1 Error: nested MAIL command");
    send_str(s, "RCPT TO:<b@x.example>\r\nDATA\r\n");
    expect(s, R_RCPT);
    expect(s, R_DATA);
    send_str(s, "x\r\n.\r\n");
    expect(s, "250 2.0.0 Ok: queued as TEST1");
    assert_string_equal(s->rec[0].sender, "first@x.example");
}

static void test_bad_mail_and_rcpt(void **state)
{
    struct srv *s = *state;

    greet(s);
    send_str(s, "MAIL FROM:<a b@x.example>\r\n");
    expect(s, "501 5.1.7 Bad sender address syntax");
    send_str(s, "MAIL TO:<a@x.example>\r\n");
    expect(s, "501 5.5.4 Syntax: MAIL FROM:<address>");
    send_str(s, "MAIL FROM:<a@x.example> FOO=BAR\r\n");
    expect(s, "555 5.5.4 Unsupported option");
    /* none of them opened a transaction */
    send_str(s, "RCPT TO:<b@x.example>\r\n");
    expect(s, R_NEED_MAIL);
    send_str(s, "MAIL FROM:<j\xc3\xb6rg@x.example>\r\n");
    expect(s, "553 5.6.7 Must declare SMTPUTF8 to send a UTF-8 address");
    send_str(s, "MAIL FROM:<a@x.example>\r\n");
    expect(s, R_MAIL);
    send_str(s, "RCPT TO:<j\xc3\xb6rg@x.example>\r\n");
    expect(s, "553 5.6.7 Must declare SMTPUTF8 to send a UTF-8 address");
    send_str(s, "RCPT TO:<b@x.example> NOTIFY=NEVER\r\n");
    expect(s, "555 5.5.4 Unsupported option");
    send_str(s, "RCPT TO:<postmaster>\r\n");
    expect(s, R_RCPT);
}

static void test_size_at_mail(void **state)
{
    struct srv *s = *state;

    greet(s);
    send_str(s, "MAIL FROM:<a@x.example> SIZE=1001\r\n");
    expect(s, R_TOO_BIG);
    /* refused: no transaction */
    send_str(s, "RCPT TO:<b@x.example>\r\n");
    expect(s, R_NEED_MAIL);
    send_str(s, "MAIL FROM:<a@x.example> SIZE=1000\r\n");
    expect(s, R_MAIL);
}

/* Content of exactly n bytes in 100-byte CRLF lines (n >= 2). */
static char *content_of(struct srv *s, size_t n)
{
    char *p = scratch(s, n + 4);

    for (size_t i = 0; i < n; i++)
        p[i] = (i % 100 == 98) ? '\r' : (i % 100 == 99) ? '\n' : (char)('a' + i % 26);
    p[n - 2] = '\r';
    p[n - 1] = '\n';
    memcpy(p + n, ".\r\n", 4);
    return p;
}

static void test_size_in_data(void **state)
{
    struct srv *s = *state;
    char *fits = content_of(s, 1000), *over = content_of(s, 1001);

    greet(s);
    one_message(s, "a@x.example", "b@x.example", fits, "250 2.0.0 Ok: queued as TEST1");
    assert_int_equal(s->ndeliver, 1);
    assert_int_equal(s->rec[0].clen, 1000);
    assert_memory_equal(s->rec[0].content, fits, 1000);
    one_message(s, "a@x.example", "b@x.example", over, R_TOO_BIG);
    assert_int_equal(s->ndeliver, 1);           /* not delivered */
    /* the session goes on, the transaction is gone */
    send_str(s, "RCPT TO:<b@x.example>\r\n");
    expect(s, R_NEED_MAIL);
    one_message(s, "c@x.example", "d@x.example", "small\r\n.\r\n",
                "250 2.0.0 Ok: queued as TEST2");
    assert_string_equal(s->rec[1].content, "small\r\n");
    send_str(s, "QUIT\r\n");
    expect(s, R_BYE);
    assert_int_equal(finish(s), 2);
}

static void test_too_many_recipients(void **state)
{
    struct srv *s = *state;

    greet(s);
    send_str(s, "MAIL FROM:<a@x.example>\r\n");
    expect(s, R_MAIL);
    send_str(s, "RCPT TO:<r1@x.example>\r\nRCPT TO:<r2@x.example>\r\n"
                "RCPT TO:<r3@x.example>\r\nRCPT TO:<r4@x.example>\r\nRCPT TO:<r5@x.example>\r\n");
    expect(s, R_RCPT);
    expect(s, R_RCPT);
    expect(s, R_RCPT);
    expect(s, "452 4.5.3 Error: too many recipients");
    expect(s, "452 4.5.3 Error: too many recipients");
    send_str(s, "DATA\r\n");
    expect(s, R_DATA);
    send_str(s, "x\r\n.\r\n");
    expect(s, "250 2.0.0 Ok: queued as TEST1");
    assert_int_equal(s->rec[0].nrcpt, 3);
    assert_string_equal(s->rec[0].rcpts[2], "r3@x.example");
}

static void test_unknown_and_misc_commands(void **state)
{
    struct srv *s = *state;

    greet(s);
    send_str(s, "FOO bar\r\n");
    expect(s, R_UNKNOWN);
    send_str(s, "\r\n");
    expect(s, R_UNKNOWN);
    send_str(s, "EXPN list\r\n");
    expect(s, "502 5.5.1 Error: command not implemented");
    send_str(s, "STARTTLS\r\n");
    expect(s, "502 5.5.1 Error: command not implemented");
    send_str(s, "AUTH PLAIN AAAA\r\n");
    expect(s, "502 5.5.1 Error: command not implemented");
    send_str(s, "VRFY bob\r\n");
    expect(s, "252 2.0.0 Send some mail, I'll try my best");
    send_str(s, "HELP\r\n");
    expect(s, "214 2.0.0 See RFC 5321");
    send_str(s, "NOOP\r\n");
    expect(s, R_NOOP);
    /* a bare LF ends a command line too */
    send_str(s, "NOOP\n");
    expect(s, R_NOOP);
}

static void test_line_too_long(void **state)
{
    struct srv *s = *state;
    char *line = scratch(s, 3100);

    greet(s);
    strcpy(line, "NOOP ");
    memset(line + 5, 'x', 3000);
    strcpy(line + 3005, "\r\n");
    send_str(s, line);
    expect(s, "500 5.5.2 Error: line too long");
    /* the rest of the long line is not read as a command */
    send_str(s, "NOOP\r\n");
    expect(s, R_NOOP);
    expect_quiet(s);
}

/* A line of len octets, CRLF included, that is a NOOP. */
static char *noop_line(struct srv *s, size_t len)
{
    char *line = scratch(s, len + 1);

    memcpy(line, "NOOP ", 5);
    memset(line + 5, 'x', len - 7);
    memcpy(line + len - 2, "\r\n", 3);
    return line;
}

/* Regression (fixed): smtp_server.h says RG_SMTP_LINE_MAX (2048) is the command line
 * limit "terminator included", but rg_smtp_serve passes a 2048-byte buffer
 * to rg_stream_getline, which keeps one byte for the NUL: a line of
 * exactly 2048 octets with its CRLF is refused "500 5.5.2 line too long". */
static void test_line_limit_boundary(void **state)
{
    struct srv *s = *state;
    char *l1 = noop_line(s, RG_SMTP_LINE_MAX - 1);
    char *l2 = noop_line(s, RG_SMTP_LINE_MAX + 1);
    char *l3 = noop_line(s, RG_SMTP_LINE_MAX);

    greet(s);
    send_str(s, l1);
    expect(s, R_NOOP);
    send_str(s, l2);
    expect(s, "500 5.5.2 Error: line too long");
    send_str(s, l3);
    expect(s, R_NOOP);
}

static void test_error_limit(void **state)
{
    struct srv *s = *state;
    char buf[20 * 8];

    greet(s);
    /* 19 errors are tolerated */
    buf[0] = 0;
    for (int i = 0; i < RG_SMTP_ERROR_LIMIT - 1; i++)
        strcat(buf, "FOO\r\n");
    send_str(s, buf);
    for (int i = 0; i < RG_SMTP_ERROR_LIMIT - 1; i++)
        expect(s, R_UNKNOWN);
    send_str(s, "NOOP\r\n");
    expect(s, R_NOOP);
    /* the 20th ends the session at once, without reading more */
    send_str(s, "RCPT TO:<b@x.example>\r\nNOOP\r\n");
    expect(s, R_NEED_MAIL);
    expect(s, "421 4.7.0 " HOST " Error: too many errors");
    expect_eof(s);
    assert_int_equal(finish(s), 0);
}

static void test_error_limit_pipelined(void **state)
{
    struct srv *s = *state;
    char buf[30 * 8];

    greet(s);
    buf[0] = 0;
    for (int i = 0; i < 25; i++)
        strcat(buf, "FOO\r\n");
    send_str(s, buf);
    for (int i = 0; i < RG_SMTP_ERROR_LIMIT; i++)
        expect(s, R_UNKNOWN);
    expect(s, "421 4.7.0 " HOST " Error: too many errors");
    expect_eof(s);
}

static void test_xforward(void **state)
{
    struct srv *s = *state;
    struct rec *r;

    greet(s);
    send_str(s, "XFORWARD NAME=spike.porcupine.org ADDR=168.100.189.2 PORT=25\r\n");
    expect(s, R_NOOP);
    send_str(s, "XFORWARD PROTO=ESMTP HELO=spike.porcupine.org IDENT=4XyZ12ab SOURCE=REMOTE\r\n");
    expect(s, R_NOOP);
    send_str(s, "XFORWARD FOO=bar\r\n");
    expect(s, "501 5.5.4 Unknown XFORWARD attribute");
    send_str(s, "XFORWARD NAME=evil+0D+0A.example\r\n");
    expect(s, "501 5.5.4 Bad XFORWARD attribute value");
    send_str(s, "XFORWARD\r\n");
    expect(s, "501 5.5.4 Syntax: XFORWARD attribute=value...");
    send_str(s, "MAIL FROM:<a@x.example>\r\n");
    expect(s, R_MAIL);
    send_str(s, "XFORWARD NAME=late.example\r\n");
    expect(s, "503 5.5.1 Error: MAIL transaction in progress");
    send_str(s, "RCPT TO:<b@x.example>\r\nDATA\r\n");
    expect(s, R_RCPT);
    expect(s, R_DATA);
    send_str(s, "x\r\n.\r\n");
    expect(s, "250 2.0.0 Ok: queued as TEST1");
    r = &s->rec[0];
    assert_string_equal(r->xf.value[RG_XF_NAME], "spike.porcupine.org");
    assert_string_equal(r->xf.value[RG_XF_ADDR], "168.100.189.2");
    assert_string_equal(r->xf.value[RG_XF_PORT], "25");
    assert_string_equal(r->xf.value[RG_XF_PROTO], "ESMTP");
    assert_string_equal(r->xf.value[RG_XF_HELO], "spike.porcupine.org");
    assert_string_equal(r->xf.value[RG_XF_IDENT], "4XyZ12ab");
    assert_string_equal(r->xf.value[RG_XF_SOURCE], "REMOTE");

    /* the next transaction starts without them */
    one_message(s, "a@x.example", "b@x.example", "y\r\n.\r\n", "250 2.0.0 Ok: queued as TEST2");
    for (int i = 0; i < RG_XF_COUNT; i++)
        assert_string_equal(s->rec[1].xf.value[i], "");

    /* RSET forgets them too */
    send_str(s, "XFORWARD NAME=gone.example\r\n");
    expect(s, R_NOOP);
    send_str(s, "RSET\r\n");
    expect(s, R_NOOP);
    one_message(s, "a@x.example", "b@x.example", "z\r\n.\r\n", "250 2.0.0 Ok: queued as TEST3");
    assert_string_equal(s->rec[2].xf.value[RG_XF_NAME], "");
}

static void test_bdat_refused(void **state)
{
    struct srv *s = *state;

    greet(s);
    send_str(s, "MAIL FROM:<a@x.example>\r\nRCPT TO:<b@x.example>\r\n");
    expect(s, R_MAIL);
    expect(s, R_RCPT);
    /* the chunk looks like commands: none of it may be executed */
    send_str(s, "BDAT 12 LAST\r\nQUIT\r\nNOOP\r\n");
    expect(s, "503 5.5.1 Error: BDAT without CHUNKING");
    expect_eof(s);
    assert_int_equal(finish(s), 0);
    assert_int_equal(s->ndeliver, 0);
}

static void test_lmtp_per_recipient(void **state)
{
    struct srv *s = *state;

    s->cfg.protocol = RG_PROTO_LMTP;
    start(s);
    expect(s, "220 " HOST " LMTP regigate");
    send_str(s, "LHLO client.example\r\n");
    expect_ehlo_reply(s, 1);
    send_str(s, "MAIL FROM:<a@x.example>\r\nRCPT TO:<ok1@x.example>\r\n"
                "RCPT TO:<fail2@x.example>\r\nRCPT TO:<temp3@x.example>\r\nDATA\r\n");
    expect(s, R_MAIL);
    expect(s, R_RCPT);
    expect(s, R_RCPT);
    expect(s, R_RCPT);
    expect(s, R_DATA);
    send_str(s, "hello\r\n.\r\n");
    expect(s, "250 2.1.5 <ok1@x.example> delivered");
    expect(s, "550 5.1.1 <fail2@x.example>: no such user");
    expect(s, "452 4.2.2 <temp3@x.example>: mailbox full");
    expect_quiet(s);           /* no summary line in LMTP */
    send_str(s, "QUIT\r\n");
    expect(s, R_BYE);
    expect_eof(s);
    assert_int_equal(finish(s), 1);
    assert_int_equal(s->rec[0].nrcpt, 3);
    assert_string_equal(s->rec[0].content, "hello\r\n");
}

static void test_rset(void **state)
{
    struct srv *s = *state;

    greet(s);
    send_str(s, "MAIL FROM:<a@x.example>\r\nRCPT TO:<b@x.example>\r\nRSET\r\n");
    expect(s, R_MAIL);
    expect(s, R_RCPT);
    expect(s, R_NOOP);
    send_str(s, "RCPT TO:<b@x.example>\r\n");
    expect(s, R_NEED_MAIL);
    send_str(s, "DATA\r\n");
    expect(s, R_NEED_MAIL);
    one_message(s, "new@x.example", "c@x.example", "m\r\n.\r\n", "250 2.0.0 Ok: queued as TEST1");
    assert_int_equal(s->ndeliver, 1);
    assert_string_equal(s->rec[0].sender, "new@x.example");
    assert_int_equal(s->rec[0].nrcpt, 1);
    assert_string_equal(s->rec[0].rcpts[0], "c@x.example");
}

static void test_ehlo_resets_transaction(void **state)
{
    struct srv *s = *state;

    greet(s);
    send_str(s, "MAIL FROM:<a@x.example>\r\n");
    expect(s, R_MAIL);
    send_str(s, "EHLO again.example\r\n");
    expect_ehlo_reply(s, 1);
    send_str(s, "RCPT TO:<b@x.example>\r\n");
    expect(s, R_NEED_MAIL);
}

static void test_quit(void **state)
{
    struct srv *s = *state;

    greet(s);
    /* commands after QUIT in the same write are not executed */
    send_str(s, "QUIT\r\nNOOP\r\n");
    expect(s, R_BYE);
    expect_eof(s);
    assert_int_equal(finish(s), 0);
}

static void test_nul_in_command(void **state)
{
    struct srv *s = *state;

    greet(s);
    send_bytes(s, "NO\0OP\r\n", 7);
    expect(s, "500 5.5.2 Error: bad characters in command");
    send_bytes(s, "MAIL FROM:<a@x.example>\0\r\n", 26);
    expect(s, "500 5.5.2 Error: bad characters in command");
    send_str(s, "NOOP\rRSET\r\n");
    expect(s, "500 5.5.2 Error: bad characters in command");
    send_str(s, "NOOP\r\n");
    expect(s, R_NOOP);
    /* none of the refused lines opened a transaction */
    send_str(s, "RCPT TO:<b@x.example>\r\n");
    expect(s, R_NEED_MAIL);
}

static void test_rcpt_check_refusal(void **state)
{
    struct srv *s = *state;

    s->cfg.rcpt_check = test_rcpt_check;
    greet(s);
    send_str(s, "MAIL FROM:<a@x.example>\r\nRCPT TO:<refuse1@x.example>\r\n"
                "RCPT TO:<b@x.example>\r\nDATA\r\n");
    expect(s, R_MAIL);
    expect(s, "550 5.1.1 <refuse1@x.example>: Recipient address rejected");
    expect(s, R_RCPT);
    expect(s, R_DATA);
    send_str(s, "x\r\n.\r\n");
    expect(s, "250 2.0.0 Ok: queued as TEST1");
    assert_int_equal(s->rec[0].nrcpt, 1);
    assert_string_equal(s->rec[0].rcpts[0], "b@x.example");
}

static void test_large_message_file_spool(void **state)
{
    struct srv *s = *state;
    size_t n = 200000;
    char *wire = scratch(s, n * 2 + 16), *want = scratch(s, n + 1);
    size_t w = 0;

    for (size_t i = 0; i < n; i++)
        want[i] = (i % 80 == 78) ? '\r' : (i % 80 == 79) ? '\n' : (i % 80 == 0) ? '.'
                  : (char)('A' + i % 50);
    want[n] = 0;
    /* stuff the leading dots for the wire */
    for (size_t i = 0; i < n; i++) {
        if (want[i] == '.' && (i == 0 || want[i - 1] == '\n'))
            wire[w++] = '.';
        wire[w++] = want[i];
    }
    memcpy(wire + w, ".\r\n", 4);
    s->cfg.max_message_size = 1 << 20;
    start(s);
    expect(s, "220 " HOST " ESMTP regigate");
    send_str(s, "EHLO c\r\nMAIL FROM:<a@x.example>\r\nRCPT TO:<b@x.example>\r\nDATA\r\n");
    expect(s, "250-" HOST);
    expect(s, "250-PIPELINING");
    expect(s, "250-SIZE 1048576");
    expect(s, "250-8BITMIME");
    expect(s, "250-SMTPUTF8");
    expect(s, "250-XFORWARD NAME ADDR PORT PROTO HELO IDENT SOURCE");
    expect(s, "250 ENHANCEDSTATUSCODES");
    expect(s, R_MAIL);
    expect(s, R_RCPT);
    expect(s, R_DATA);
    send_str(s, wire);
    expect(s, "250 2.0.0 Ok: queued as TEST1");
    assert_int_equal(s->rec[0].file_mode, 1);
    assert_int_equal(s->rec[0].clen, n);
    assert_memory_equal(s->rec[0].content, want, n);
}

static void test_eof_in_data(void **state)
{
    struct srv *s = *state;

    greet(s);
    send_str(s, "MAIL FROM:<a@x.example>\r\nRCPT TO:<b@x.example>\r\nDATA\r\n");
    expect(s, R_MAIL);
    expect(s, R_RCPT);
    expect(s, R_DATA);
    send_str(s, "partial content\r\n.");
    assert_int_equal(finish(s), 0);
    assert_int_equal(s->ndeliver, 0);
}

static void test_timeout(void **state)
{
    struct srv *s = *state;
    long long t0 = rg_now_ms(), dt;

    s->cfg.timeout_ms = 300;
    start(s);
    expect(s, "220 " HOST " ESMTP regigate");
    expect(s, "421 4.4.2 " HOST " Error: timeout exceeded");
    expect_eof(s);
    dt = rg_now_ms() - t0;
    assert_true(dt >= 250);
    assert_true(dt < 2500);
}

/*
 * Drip the bytes of str, one every step_ms, until the server says something
 * or closes the connection (poll); returns how many bytes were sent.
 */
static size_t drip(struct srv *s, const char *str, int step_ms)
{
    size_t i;

    for (i = 0; str[i]; i++) {
        struct pollfd pfd = { .fd = s->cl, .events = POLLIN };
        if (send(s->cl, &str[i], 1, MSG_NOSIGNAL) != 1)
            break;
        if (poll(&pfd, 1, step_ms) > 0)
            break;
    }
    return i;
}

/* slowloris: a command line dripped a byte at a time, each well within the
 * timeout, must still end with the timeout for the whole line */
static void test_slow_command_line(void **state)
{
    struct srv *s = *state;
    long long t0, dt;

    s->cfg.timeout_ms = 300;
    start(s);
    expect(s, "220 " HOST " ESMTP regigate");
    t0 = rg_now_ms();
    drip(s, "EHLO a-very-slow-client.example.com.and.some.more.bytes", 60);
    expect(s, "421 4.4.2 " HOST " Error: timeout exceeded");
    expect_eof(s);
    dt = rg_now_ms() - t0;
    assert_true(dt >= 250);
    assert_true(dt < 1500);
}

/* the same inside DATA: a line of the message must arrive within the timeout */
static void test_slow_data_line(void **state)
{
    struct srv *s = *state;
    long long t0, dt;

    s->cfg.timeout_ms = 300;
    start(s);
    expect(s, "220 " HOST " ESMTP regigate");
    send_str(s, "HELO c\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<c@d.example>\r\nDATA\r\n");
    expect(s, "250 " HOST);
    expect(s, "250 2.1.0 Ok");
    expect(s, "250 2.1.5 Ok");
    expect(s, "354 End data with <CR><LF>.<CR><LF>");
    send_str(s, "Subject: slow\r\n\r\nfirst line arrives at once\r\n");
    t0 = rg_now_ms();
    drip(s, "then one byte at a time, never a line end, for far longer than the timeout", 60);
    expect_eof(s);
    dt = rg_now_ms() - t0;
    assert_true(dt >= 250);
    assert_true(dt < 1500);
    assert_int_equal(finish(s), 0);
    assert_int_equal(s->ndeliver, 0);
}

static void test_stop_after_transaction(void **state)
{
    struct srv *s = *state;

    s->cfg.stop = &stop_flag;
    greet(s);
    send_str(s, "MAIL FROM:<a@x.example>\r\n");
    expect(s, R_MAIL);
    /* shutdown during a transaction: it is allowed to finish */
    stop_flag = 1;
    send_str(s, "RCPT TO:<b@x.example>\r\nDATA\r\n");
    expect(s, R_RCPT);
    expect(s, R_DATA);
    send_str(s, "x\r\n.\r\n");
    expect(s, "250 2.0.0 Ok: queued as TEST1");
    expect(s, "421 4.3.2 " HOST " Service shutting down");
    expect_eof(s);
    assert_int_equal(finish(s), 1);
}

static void test_stop_before_start(void **state)
{
    struct srv *s = *state;

    s->cfg.stop = &stop_flag;
    stop_flag = 1;
    start(s);
    expect(s, "220 " HOST " ESMTP regigate");
    expect(s, "421 4.3.2 " HOST " Service shutting down");
    expect_eof(s);
}

static void test_junk_limit(void **state)
{
    struct srv *s = *state;
    char buf[RG_SMTP_JUNK_LIMIT * 6 + 1];

    greet(s);
    buf[0] = 0;
    for (int i = 0; i < RG_SMTP_JUNK_LIMIT - 1; i++)
        strcat(buf, "NOOP\r\n");
    send_str(s, buf);
    for (int i = 0; i < RG_SMTP_JUNK_LIMIT - 1; i++)
        expect(s, R_NOOP);
    /* the 100th junk command is answered, then the session ends */
    send_str(s, "RSET\r\n");
    expect(s, R_NOOP);
    expect(s, "421 4.7.0 " HOST " Error: too many errors");
    expect_eof(s);
}

static void test_spool_error(void **state)
{
    struct srv *s = *state;
    char *big = content_of(s, 6000);

    s->cfg.spool_dir = "/nonexistent-rg-spool-dir";
    s->cfg.max_message_size = 100000;
    start(s);
    expect(s, "220 " HOST " ESMTP regigate");
    send_str(s, "HELO c\r\nMAIL FROM:<a@x.example>\r\nRCPT TO:<b@x.example>\r\nDATA\r\n");
    expect(s, "250 " HOST);
    expect(s, R_MAIL);
    expect(s, R_RCPT);
    expect(s, R_DATA);
    send_str(s, big);
    expect(s, "451 4.3.0 Error: local error spooling the message, try again later");
    assert_int_equal(s->ndeliver, 0);
    /* small messages stay in memory and still work */
    one_message(s, "a@x.example", "b@x.example", "small\r\n.\r\n",
                "250 2.0.0 Ok: queued as TEST1");
}

/* Regression (fixed): in LMTP mode (RFC 2033 4.2) the server must answer the end of data
 * with one reply per accepted recipient, whatever the outcome. When the
 * message is too large (or cannot be spooled) rg_smtp_serve's do_data()
 * sends a single 552 (or 451) line, as in SMTP: an LMTP client then waits
 * for the missing replies (or reads the next command's reply as one). */
static void test_lmtp_toolarge_per_recipient(void **state)
{
    struct srv *s = *state;
    char *over = content_of(s, 1001);

    s->cfg.protocol = RG_PROTO_LMTP;
    start(s);
    expect(s, "220 " HOST " LMTP regigate");
    send_str(s, "LHLO c\r\n");
    expect_ehlo_reply(s, 1);
    send_str(s, "MAIL FROM:<a@x.example>\r\nRCPT TO:<r1@x.example>\r\n"
                "RCPT TO:<r2@x.example>\r\nDATA\r\n");
    expect(s, R_MAIL);
    expect(s, R_RCPT);
    expect(s, R_RCPT);
    expect(s, R_DATA);
    send_str(s, over);
    send_str(s, "NOOP\r\n");
    expect(s, R_TOO_BIG);
    expect(s, R_TOO_BIG);
    expect(s, R_NOOP);
    assert_int_equal(s->ndeliver, 0);
}

/* Regression (fixed): as above, for a spooling failure in LMTP mode. */
static void test_lmtp_spool_error_per_recipient(void **state)
{
    struct srv *s = *state;
    char *big = content_of(s, 6000);

    s->cfg.protocol = RG_PROTO_LMTP;
    s->cfg.spool_dir = "/nonexistent-rg-spool-dir";
    s->cfg.max_message_size = 100000;
    start(s);
    expect(s, "220 " HOST " LMTP regigate");
    send_str(s, "LHLO c\r\n");
    expect(s, "250-" HOST);
    expect(s, "250-PIPELINING");
    expect(s, "250-SIZE 100000");
    expect(s, "250-8BITMIME");
    expect(s, "250-SMTPUTF8");
    expect(s, "250-XFORWARD NAME ADDR PORT PROTO HELO IDENT SOURCE");
    expect(s, "250 ENHANCEDSTATUSCODES");
    send_str(s, "MAIL FROM:<a@x.example>\r\nRCPT TO:<r1@x.example>\r\n"
                "RCPT TO:<r2@x.example>\r\nDATA\r\n");
    expect(s, R_MAIL);
    expect(s, R_RCPT);
    expect(s, R_RCPT);
    expect(s, R_DATA);
    send_str(s, big);
    send_str(s, "NOOP\r\n");
    expect(s, "451 4.3.0 Error: local error spooling the message, try again later");
    expect(s, "451 4.3.0 Error: local error spooling the message, try again later");
    expect(s, R_NOOP);
}

/* Regression (fixed): rg_peer_name (lib/netio.c) passes any peer address to getnameinfo.
 * For an AF_UNIX socketpair getpeername returns only the address family
 * (sun_path is left uninitialised), and glibc's getnameinfo then runs
 * strlen over the uninitialised sun_path (valgrind: "Conditional jump or
 * move depends on uninitialised value(s)" in gni_serv_local, and atoi over
 * an uninitialised serv), and the host comes out "localhost" instead of
 * "unknown". It should only format AF_INET/AF_INET6 addresses. */
static void test_peer_name_unix_socket(void **state)
{
    struct srv *s = *state;

    s->unix_pair = 1;
    greet(s);
    one_message(s, "a@x.example", "b@x.example", "x\r\n.\r\n", "250 2.0.0 Ok: queued as TEST1");
    assert_string_equal(s->rec[0].client_addr, "unknown");
}

static int group_setup(void **state)
{
    const char *tmp = getenv("TMPDIR");

    (void)state;
    if (tmp == NULL || tmp[0] == 0 || strlen(tmp) > 400)
        tmp = "/tmp";
    snprintf(spool_dir, sizeof(spool_dir), "%s/rg-test-smtpd-XXXXXX", tmp);
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
        T(test_greeting_quit),
        T(test_ehlo_extensions),
        T(test_ehlo_without_xforward),
        T(test_helo),
        T(test_mail_before_helo),
        T(test_lmtp_lhlo),
        T(test_lhlo_refused_in_smtp),
        T(test_happy_path),
        T(test_peer_from_accept_v4),
        T(test_peer_from_accept_v6),
        T(test_peer_from_accept_unix),
        T(test_null_sender_smtputf8),
        T(test_pipelined_group),
        T(test_pipelined_replies_one_write),
        T(test_rcpt_before_mail),
        T(test_data_before_rcpt),
        T(test_nested_mail),
        T(test_bad_mail_and_rcpt),
        T(test_size_at_mail),
        T(test_size_in_data),
        T(test_too_many_recipients),
        T(test_unknown_and_misc_commands),
        T(test_line_too_long),
        T(test_line_limit_boundary),
        T(test_error_limit),
        T(test_error_limit_pipelined),
        T(test_xforward),
        T(test_bdat_refused),
        T(test_lmtp_per_recipient),
        T(test_rset),
        T(test_ehlo_resets_transaction),
        T(test_quit),
        T(test_nul_in_command),
        T(test_rcpt_check_refusal),
        T(test_large_message_file_spool),
        T(test_eof_in_data),
        T(test_timeout),
        T(test_slow_command_line),
        T(test_slow_data_line),
        T(test_stop_after_transaction),
        T(test_stop_before_start),
        T(test_junk_limit),
        T(test_spool_error),
        T(test_lmtp_toolarge_per_recipient),
        T(test_lmtp_spool_error_per_recipient),
        T(test_peer_name_unix_socket),
    };

    rg_log_open("test_smtp_server", RG_LOG_NONE, 0);
    signal(SIGPIPE, SIG_IGN);
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
