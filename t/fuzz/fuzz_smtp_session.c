/*
 * fuzz_smtp_session.c - libFuzzer target for the whole receiving side:
 * lib/smtp_server's state machine with lib/netio, lib/smtp_proto,
 * lib/dotstuff and lib/spool under it. The input is everything a client
 * sends on one connection.
 *
 * rg_smtp_serve() runs on one end of a socketpair. A client thread writes
 * the input into the other end while reading (and checking) every reply,
 * then shuts its write side down, so the server always ends with EOF at
 * the latest; it never waits long, timeout_ms is small, the watchdog off.
 *
 * Server configuration: LMTP when the input starts with "LHLO", else SMTP;
 * XFORWARD offered unless the first line holds "no-xforward"; at most 5
 * recipients; 8192-byte messages, so a larger
 * one is refused; messages over 4096 bytes go to a file in a spool
 * directory (mkdtemp, created once, removed at exit; one that does not
 * exist when the first line holds "bad-spool"); recipients whose
 * address starts with "reject" are refused at RCPT time; a message whose
 * content starts with "X-Fuzz-Shutdown:" asks the server to shut down.
 *
 * Invariants (abort() when broken):
 *  - every reply line is "DDD" then ' ' or '-' then text then CR LF, no
 *    bare CR or LF, at most 520 bytes; the first is a 220 greeting; the
 *    output ends at the end of a line; it stays below a bound;
 *  - the deliver callback sees 1..5 recipients, each "postmaster" or a
 *    valid mailbox (UTF-8 only with SMTPUTF8), a valid or null sender, a
 *    message of at most 8192 bytes with CR LF line ends only, whose bytes
 *    read back in pieces equal those read at once (and the memory copy);
 *  - rg_smtp_serve() returns the number of deliver calls;
 *  - the session ends: the client gives up (abort) after 20 s without
 *    progress, which no server honouring its 200 ms timeouts can cause.
 *
 * The client end of the socketpair has no address: rg_peer_name() must
 * cope with that (it formats only AF_INET/AF_INET6 peers and says
 * "unknown" otherwise; valgrind runs of the replays check that it reads
 * nothing uninitialised).
 *
 * With RG_FUZZ_DEBUG set in the environment the replies go to stderr.
 */
#include "config.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"
#include "netio.h"
#include "smtp_proto.h"
#include "smtp_server.h"
#include "spool.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_INPUT (128 * 1024)
#define MAX_MESSAGE 8192
#define MAX_RCPT 5
#define SPOOL_MEM 4096
#define STALL_MS 20000
#define REPLY_LINE_MAX (RG_REPLY_MAX + 8)

static char spool_dir[4096];
static char bad_spool_dir[4096 + 16];
static volatile int stop_flag;
static int debug;

static void check(int ok)
{
    if (!ok)
        abort();
}

/* ---- the client ------------------------------------------------------------ */

struct client {
    int fd;
    const uint8_t *in;
    size_t n, sent;
    /* reply checker */
    char line[REPLY_LINE_MAX + 1];
    size_t llen;
    size_t lines;
    size_t total;
    int cont_code;      /* code of a "DDD-" line awaiting its last line, or 0 */
};

static void check_reply_line(struct client *c)
{
    const char *l = c->line;
    int code;

    /* llen counts the CR LF */
    check(c->llen >= 6 && l[c->llen - 2] == '\r' && l[c->llen - 1] == '\n');
    check(l[0] >= '2' && l[0] <= '5' && l[1] >= '0' && l[1] <= '9' && l[2] >= '0' && l[2] <= '9');
    check(l[3] == ' ' || l[3] == '-');
    for (size_t i = 4; i < c->llen - 2; i++)
        check(l[i] != '\r' && l[i] != '\n');
    code = (l[0] - '0') * 100 + (l[1] - '0') * 10 + (l[2] - '0');
    if (c->lines == 0)
        check(code == 220 && l[3] == ' ');
    if (c->cont_code)
        check(code == c->cont_code);
    c->cont_code = l[3] == '-' ? code : 0;
    c->lines++;
}

static void got(struct client *c, const char *p, size_t n)
{
    if (debug)
        fwrite(p, 1, n, stderr);
    c->total += n;
    for (size_t i = 0; i < n; i++) {
        check(c->llen < REPLY_LINE_MAX);
        c->line[c->llen++] = p[i];
        if (p[i] == '\n') {
            check_reply_line(c);
            c->llen = 0;
        }
    }
}

static void *client_main(void *arg)
{
    struct client *c = arg;
    int wr_open = 1;
    char buf[16384];

    check(rg_set_nonblock(c->fd) == 0);
    for (;;) {
        struct pollfd pfd = { .fd = c->fd, .events = POLLIN };
        int r;

        if (wr_open && c->sent == c->n) {
            (void)shutdown(c->fd, SHUT_WR);
            wr_open = 0;
        }
        if (wr_open)
            pfd.events |= POLLOUT;
        r = poll(&pfd, 1, STALL_MS);
        if (r < 0 && errno == EINTR)
            continue;
        check(r > 0);       /* 0: the server is stuck */
        if (wr_open && (pfd.revents & (POLLOUT | POLLERR | POLLHUP))) {
            ssize_t w = send(c->fd, c->in + c->sent, c->n - c->sent, MSG_NOSIGNAL);
            if (w > 0)
                c->sent += (size_t)w;
            else if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
                c->sent = c->n;     /* the server is gone: nothing more to say */
        }
        if (pfd.revents & (POLLIN | POLLERR | POLLHUP)) {
            ssize_t got_n = recv(c->fd, buf, sizeof(buf), 0);
            if (got_n > 0)
                got(c, buf, (size_t)got_n);
            else if (got_n == 0)
                break;
            else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
                break;
        }
    }
    return NULL;
}

/* ---- the server side --------------------------------------------------------- */

struct server_ctx {
    int delivered;
    int bad_spool;
};

static void check_crlf_only(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (p[i] == '\r')
            check(i + 1 < n && p[i + 1] == '\n');
        if (p[i] == '\n')
            check(i > 0 && p[i - 1] == '\r');
    }
}

static void deliver(void *ctx, struct rg_envelope *env, struct rg_spool *sp,
                    struct rg_reply *per_rcpt, struct rg_reply *summary)
{
    struct server_ctx *sc = ctx;
    size_t size = rg_spool_size(sp), off = 0;
    char *all = malloc(size + 1), piece[333];
    const char *mem = rg_spool_mem(sp);
    int utf8 = env->params.smtputf8;

    check(all != NULL);
    sc->delivered++;
    /* the envelope */
    check(env->nrcpt >= 1 && env->nrcpt <= MAX_RCPT && env->rcpts != NULL);
    check(memchr(env->sender, 0, sizeof(env->sender)) != NULL);
    check(env->sender[0] == 0 || rg_smtp_valid_mailbox(env->sender, utf8));
    for (size_t i = 0; i < env->nrcpt; i++) {
        check(strcasecmp(env->rcpts[i], "postmaster") == 0
              || rg_smtp_valid_mailbox(env->rcpts[i], utf8));
        check(strncmp(env->rcpts[i], "reject", 6) != 0);
    }
    check(env->params.size <= MAX_MESSAGE);
    check(!sc->bad_spool || size <= SPOOL_MEM);     /* more cannot be spooled */
    check(memchr(env->helo, 0, sizeof(env->helo)) != NULL && env->helo[0] != 0);

    /* the message: at once, then in odd pieces */
    check(size <= MAX_MESSAGE);
    check(sp->error == 0);
    check(rg_spool_read(sp, all, size + 1, 0) == (ssize_t)size);
    check_crlf_only(all, size);
    if (mem != NULL)
        check(size == 0 || memcmp(mem, all, size) == 0);
    for (;;) {
        ssize_t r = rg_spool_read(sp, piece, sizeof(piece), (off_t)off);
        check(r >= 0);
        if (r == 0)
            break;
        check(off + (size_t)r <= size && memcmp(all + off, piece, (size_t)r) == 0);
        off += (size_t)r;
    }
    check(off == size);

    /* the outcome: varied per recipient, so LMTP sends a mix */
    for (size_t i = 0; i < env->nrcpt; i++) {
        switch (strlen(env->rcpts[i]) % 3) {
        case 0: rg_reply_set(&per_rcpt[i], 250, "250 2.0.0 Ok: delivered to <%s>", env->rcpts[i]); break;
        case 1: rg_reply_set(&per_rcpt[i], 451, "451 4.3.0 Error: try again later"); break;
        default: rg_reply_set(&per_rcpt[i], 550, "550 5.7.1 Error: refused"); break;
        }
    }
    rg_reply_set(summary, 250, "250 2.0.0 Ok: %zu bytes", size);
    if (size >= 16 && memcmp(all, "X-Fuzz-Shutdown:", 16) == 0)
        stop_flag = 1;
    free(all);
}

static int rcpt_check(void *ctx, const char *addr, struct rg_reply *r)
{
    (void)ctx;
    if (strncmp(addr, "reject", 6) == 0) {
        rg_reply_set(r, 550, "550 5.1.1 <%s>: Recipient address rejected", addr);
        return -1;
    }
    return 0;
}

static void remove_spool_dir(void)
{
    if (spool_dir[0])
        rmdir(spool_dir);
}

static void init_once(void)
{
    const char *tmp = getenv("TMPDIR");

    if (tmp == NULL || *tmp == '\0')
        tmp = "/tmp";
    snprintf(spool_dir, sizeof(spool_dir), "%s/rg-fuzz-spool.XXXXXX", tmp);
    check(mkdtemp(spool_dir) != NULL);
    snprintf(bad_spool_dir, sizeof(bad_spool_dir), "%s/missing", spool_dir);
    atexit(remove_spool_dir);
    debug = getenv("RG_FUZZ_DEBUG") != NULL;
    rg_log_open("fuzz_smtp_session", debug ? RG_LOG_STDERR : RG_LOG_NONE, 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct rg_smtp_server_cfg cfg;
    struct server_ctx sc = { 0 };
    struct client c;
    const uint8_t *first;
    size_t first_len;
    pthread_t th;
    int sv[2], n;

    if (size > MAX_INPUT)
        return 0;
    if (spool_dir[0] == 0)
        init_once();
    stop_flag = 0;

    /* knobs in the first line, so that the rest stays the client's stream */
    first = size ? memchr(data, '\n', size) : NULL;
    first_len = first ? (size_t)(first - data) : size;
    sc.bad_spool = memmem(data, first_len, "bad-spool", 9) != NULL;

    memset(&cfg, 0, sizeof(cfg));
    cfg.protocol = size >= 4 && strncasecmp((const char *)data, "LHLO", 4) == 0
        ? RG_PROTO_LMTP : RG_PROTO_SMTP;
    cfg.hostname = "fuzz.example.net";
    cfg.max_message_size = MAX_MESSAGE;
    cfg.max_recipients = MAX_RCPT;
    cfg.timeout_ms = 200;
    cfg.spool_dir = sc.bad_spool ? bad_spool_dir : spool_dir;
    cfg.spool_mem_limit = SPOOL_MEM;
    cfg.watchdog_s = 0;
    cfg.offer_xforward = memmem(data, first_len, "no-xforward", 11) == NULL;
    cfg.deliver = deliver;
    cfg.rcpt_check = rcpt_check;
    cfg.ctx = &sc;
    cfg.stop = &stop_flag;

    check(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
    check(rg_set_nonblock(sv[0]) == 0);
    memset(&c, 0, sizeof(c));
    c.fd = sv[1];
    c.in = data;
    c.n = size;
    check(pthread_create(&th, NULL, client_main, &c) == 0);

    n = rg_smtp_serve(sv[0], &cfg);
    close(sv[0]);
    check(pthread_join(th, NULL) == 0);
    close(sv[1]);

    check(n == sc.delivered);
    check(c.lines >= 1);            /* at least the greeting */
    check(c.llen == 0);             /* no partial reply line */
    check(c.cont_code == 0);        /* no unfinished multi-line reply */
    /* each input byte can provoke at most a few hundred bytes of replies */
    check(c.total <= 1024 + size * 256);
    return 0;
}
