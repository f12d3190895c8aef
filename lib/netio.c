/*
 * netio.c - sockets and the deadline-bounded buffered stream; see netio.h.
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "netio.h"

const char *rg_io_strerror(int status)
{
    switch (status) {
    case RG_IO_OK: return "ok";
    case RG_IO_EOF: return "connection closed by peer";
    case RG_IO_TIMEOUT: return "timeout";
    case RG_IO_ERROR: return "connection error";
    case RG_IO_TOOLONG: return "line too long";
    case RG_IO_ABORTED: return "shutting down";
    }
    return "unknown I/O status";
}

long long rg_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void rg_stream_init(struct rg_stream *s, int fd, int timeout_ms)
{
    s->fd = fd;
    s->timeout_ms = timeout_ms;
    s->abort_flag = NULL;
    s->rpos = s->rlen = 0;
    s->wlen = 0;
}

/* Wait until fd is ready for events or the deadline passes. */
static int wait_fd(int fd, short events, long long deadline, volatile int *abort_flag)
{
    for (;;) {
        long long left = deadline - rg_now_ms();
        struct pollfd pfd = { .fd = fd, .events = events };
        int n;

        if (abort_flag && *abort_flag)
            return RG_IO_ABORTED;
        if (left <= 0)
            return RG_IO_TIMEOUT;
        n = poll(&pfd, 1, left > 0x7fffffff ? 0x7fffffff : (int)left);
        if (n > 0)
            return RG_IO_OK;
        if (n == 0)
            return RG_IO_TIMEOUT;
        if (errno != EINTR)
            return RG_IO_ERROR;
        if (abort_flag && *abort_flag)
            return RG_IO_ABORTED;
    }
}

/* Read what is there into the buffer, waiting until `deadline` at most. */
static int fill_until(struct rg_stream *s, long long deadline)
{
    if (s->rpos == s->rlen)
        s->rpos = s->rlen = 0;
    else if (s->rpos > 0 && s->rlen == sizeof(s->rbuf)) {
        memmove(s->rbuf, s->rbuf + s->rpos, s->rlen - s->rpos);
        s->rlen -= s->rpos;
        s->rpos = 0;
    }
    for (;;) {
        ssize_t n = read(s->fd, s->rbuf + s->rlen, sizeof(s->rbuf) - s->rlen);
        if (n > 0) {
            s->rlen += (size_t)n;
            return RG_IO_OK;
        }
        if (n == 0)
            return RG_IO_EOF;
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK)
            return RG_IO_ERROR;
        int st = wait_fd(s->fd, POLLIN, deadline, s->abort_flag);
        if (st != RG_IO_OK)
            return st;
    }
}

int rg_stream_getline(struct rg_stream *s, char *line, size_t max, size_t *len)
{
    /* the whole line must arrive within the timeout: a peer that sends a
     * byte now and then (slowloris) must not hold the worker for ever */
    long long deadline = rg_now_ms() + s->timeout_ms;
    size_t got = 0;
    int toolong = 0;

    for (;;) {
        const char *start = s->rbuf + s->rpos;
        size_t avail = s->rlen - s->rpos;
        const char *nl = memchr(start, '\n', avail);
        size_t take = nl ? (size_t)(nl - start) + 1 : avail;

        if (!toolong) {
            if (got + take < max) {
                memcpy(line + got, start, take);
                got += take;
            } else {
                toolong = 1;
            }
        }
        s->rpos += take;
        if (nl) {
            if (toolong)
                return RG_IO_TOOLONG;
            line[got] = 0;
            *len = got;
            return RG_IO_OK;
        }
        int st = fill_until(s, deadline);
        if (st != RG_IO_OK)
            return st;
    }
}

int rg_stream_peek(struct rg_stream *s, const char **p, size_t *n)
{
    return rg_stream_peek_until(s, p, n, rg_now_ms() + s->timeout_ms);
}

int rg_stream_peek_until(struct rg_stream *s, const char **p, size_t *n, long long deadline)
{
    if (s->rpos == s->rlen) {
        int st = fill_until(s, deadline);
        if (st != RG_IO_OK)
            return st;
    }
    *p = s->rbuf + s->rpos;
    *n = s->rlen - s->rpos;
    return RG_IO_OK;
}

void rg_stream_consume(struct rg_stream *s, size_t n)
{
    s->rpos += n;
    if (s->rpos >= s->rlen)
        s->rpos = s->rlen = 0;
}

size_t rg_stream_pending(const struct rg_stream *s)
{
    return s->rlen - s->rpos;
}

int rg_stream_dead(struct rg_stream *s)
{
    struct pollfd pfd = { .fd = s->fd, .events = POLLIN };

    if (s->rlen != s->rpos)
        return 1;
    /* readable while idle means EOF or an unsolicited reply (421): unusable */
    return poll(&pfd, 1, 0) != 0;
}

static int write_all(struct rg_stream *s, const char *p, size_t n)
{
    long long deadline = rg_now_ms() + s->timeout_ms;

    while (n > 0) {
        ssize_t w = send(s->fd, p, n, MSG_NOSIGNAL);
        if (w > 0) {
            p += w;
            n -= (size_t)w;
            deadline = rg_now_ms() + s->timeout_ms;  /* progress resets it */
            continue;
        }
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
            return RG_IO_ERROR;
        int st = wait_fd(s->fd, POLLOUT, deadline, NULL);
        if (st != RG_IO_OK)
            return st;
    }
    return RG_IO_OK;
}

int rg_stream_flush(struct rg_stream *s)
{
    int st;

    if (s->wlen == 0)
        return RG_IO_OK;
    st = write_all(s, s->wbuf, s->wlen);
    s->wlen = 0;
    return st;
}

int rg_stream_write(struct rg_stream *s, const void *p, size_t n)
{
    if (s->wlen + n <= sizeof(s->wbuf)) {
        memcpy(s->wbuf + s->wlen, p, n);
        s->wlen += n;
        return RG_IO_OK;
    }
    int st = rg_stream_flush(s);
    if (st != RG_IO_OK)
        return st;
    if (n >= sizeof(s->wbuf))
        return write_all(s, p, n);
    memcpy(s->wbuf, p, n);
    s->wlen = n;
    return RG_IO_OK;
}

int rg_stream_puts(struct rg_stream *s, const char *str)
{
    return rg_stream_write(s, str, strlen(str));
}

int rg_stream_printf(struct rg_stream *s, const char *fmt, ...)
{
    char tmp[4096];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    if (n < 0)
        return RG_IO_ERROR;
    if ((size_t)n >= sizeof(tmp))
        n = sizeof(tmp) - 1;
    return rg_stream_write(s, tmp, (size_t)n);
}

int rg_set_nonblock(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
        return -1;
    return 0;
}

void rg_set_nodelay(int fd)
{
    int one = 1;
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

static struct addrinfo *resolve(const struct rg_hostport *hp, int passive, char *err, size_t errlen)
{
    struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_family = AF_UNSPEC };
    struct addrinfo *res = NULL;
    char port[16];
    int rc;

    hints.ai_flags = passive ? AI_PASSIVE : 0;
    snprintf(port, sizeof(port), "%d", hp->port);
    rc = getaddrinfo(hp->host, port, &hints, &res);
    if (rc != 0) {
        snprintf(err, errlen, "%s: %s", hp->host, gai_strerror(rc));
        return NULL;
    }
    return res;
}

int rg_listen_tcp(const struct rg_hostport *hp, int backlog, char *err, size_t errlen)
{
    struct addrinfo *res = resolve(hp, 1, err, errlen);
    int fd = -1, one = 1;

    if (res == NULL)
        return -1;
    fd = socket(res->ai_family, res->ai_socktype | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(err, errlen, "socket: %s", strerror(errno));
        goto out;
    }
    (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    /* accepted connections inherit TCP_NODELAY (Linux): no setsockopt per
     * connection; replies are whole lines, written when complete */
    rg_set_nodelay(fd);
    if (bind(fd, res->ai_addr, res->ai_addrlen) < 0 || listen(fd, backlog) < 0
        || rg_set_nonblock(fd) < 0) {
        snprintf(err, errlen, "bind %s:%d: %s", hp->host, hp->port, strerror(errno));
        close(fd);
        fd = -1;
    }
out:
    freeaddrinfo(res);
    return fd;
}

int rg_connect_tcp(const struct rg_hostport *hp, int timeout_ms, char *err, size_t errlen)
{
    struct addrinfo *res = resolve(hp, 0, err, errlen), *ai;
    int fd = -1;

    if (res == NULL)
        return -1;
    snprintf(err, errlen, "%s:%d: no usable address", hp->host, hp->port);
    for (ai = res; ai; ai = ai->ai_next) {
        long long deadline = rg_now_ms() + timeout_ms;
        int soerr = 0;
        socklen_t sl = sizeof(soerr);

        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0) {
            snprintf(err, errlen, "socket: %s", strerror(errno));
            continue;
        }
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
            break;
        if (errno == EINPROGRESS) {
            int st = wait_fd(fd, POLLOUT, deadline, NULL);
            if (st == RG_IO_OK && getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) == 0
                && soerr == 0)
                break;
            if (st == RG_IO_TIMEOUT)
                snprintf(err, errlen, "connect to %s:%d: timeout", hp->host, hp->port);
            else
                snprintf(err, errlen, "connect to %s:%d: %s", hp->host, hp->port,
                         strerror(soerr ? soerr : errno));
        } else {
            snprintf(err, errlen, "connect to %s:%d: %s", hp->host, hp->port, strerror(errno));
        }
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd >= 0)
        rg_set_nodelay(fd);
    return fd;
}

void rg_sockaddr_name(const struct sockaddr *sa, socklen_t sl, char *host, size_t hostlen,
                      int *port)
{
    char serv[16];

    snprintf(host, hostlen, "unknown");
    *port = 0;
    if (sa->sa_family != AF_INET && sa->sa_family != AF_INET6)
        return;
    if (getnameinfo(sa, sl, host, (socklen_t)hostlen, serv, sizeof(serv),
                    NI_NUMERICHOST | NI_NUMERICSERV) == 0)
        *port = atoi(serv);
    else
        snprintf(host, hostlen, "unknown");
}

void rg_peer_name(int fd, char *host, size_t hostlen, int *port)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);

    snprintf(host, hostlen, "unknown");
    *port = 0;
    if (getpeername(fd, (struct sockaddr *)&ss, &sl) == 0)
        rg_sockaddr_name((struct sockaddr *)&ss, sl, host, hostlen, port);
}
