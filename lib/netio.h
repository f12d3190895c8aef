/*
 * netio.h - sockets and a buffered, deadline-bounded stream over a
 * non-blocking socket. A write waits at most `timeout_ms` without progress;
 * a line (rg_stream_getline) must arrive complete within `timeout_ms`, so a
 * peer that drips a byte now and then cannot hold a worker; rg_stream_peek
 * waits at most `timeout_ms` per call, rg_stream_peek_until until a
 * deadline the caller keeps (the DATA receiver: one per line).
 */
#ifndef RG_NETIO_H
#define RG_NETIO_H

#include <stddef.h>
#include <sys/types.h>
#include <sys/socket.h>

#include "conffile.h"

enum rg_io {
    RG_IO_OK = 0,
    RG_IO_EOF = -1,      /* peer closed the connection */
    RG_IO_TIMEOUT = -2,  /* no progress within the timeout */
    RG_IO_ERROR = -3,    /* socket error; errno is set */
    RG_IO_TOOLONG = -4,  /* a line exceeded the caller's limit (it was skipped) */
    RG_IO_ABORTED = -5,  /* the wait was interrupted on purpose (shutdown) */
};
const char *rg_io_strerror(int status);

#define RG_STREAM_RBUF 65536
#define RG_STREAM_WBUF 65536

struct rg_stream {
    int fd;
    int timeout_ms;
    /* While non-NULL, a signal that finds *abort_flag set ends a wait with
     * RG_IO_ABORTED (used to end idle sessions on shutdown). */
    volatile int *abort_flag;
    size_t rpos, rlen;
    size_t wlen;
    char rbuf[RG_STREAM_RBUF];
    char wbuf[RG_STREAM_WBUF];
};

void rg_stream_init(struct rg_stream *s, int fd, int timeout_ms);

/*
 * Read one line ending in LF into line (NUL-terminated, terminator kept).
 * At most max-1 bytes; a longer line is read up to its LF and discarded,
 * returning RG_IO_TOOLONG. On success *len is the length including LF.
 */
int rg_stream_getline(struct rg_stream *s, char *line, size_t max, size_t *len);
/* Make buffered input available: *p, *n point into the read buffer (fills
 * it when empty). Use rg_stream_consume() for what was used. */
int rg_stream_peek(struct rg_stream *s, const char **p, size_t *n);
/* The same, waiting for input until `deadline` (rg_now_ms() time) at most. */
int rg_stream_peek_until(struct rg_stream *s, const char **p, size_t *n, long long deadline);
void rg_stream_consume(struct rg_stream *s, size_t n);
/* Bytes of input already buffered (pipelined commands waiting). */
size_t rg_stream_pending(const struct rg_stream *s);
/* Is the peer gone or has it sent something unexpected (non-blocking)? */
int rg_stream_dead(struct rg_stream *s);

int rg_stream_write(struct rg_stream *s, const void *p, size_t n);
int rg_stream_puts(struct rg_stream *s, const char *str);
int rg_stream_printf(struct rg_stream *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int rg_stream_flush(struct rg_stream *s);

/* Bind a non-blocking listening TCP socket; -1 with err set on failure. */
int rg_listen_tcp(const struct rg_hostport *hp, int backlog, char *err, size_t errlen);
/* Connect with a timeout; returns a non-blocking socket with TCP_NODELAY, or -1. */
int rg_connect_tcp(const struct rg_hostport *hp, int timeout_ms, char *err, size_t errlen);
int rg_set_nonblock(int fd);
void rg_set_nodelay(int fd);
/* "ip" and port of the peer / local side of fd. */
void rg_peer_name(int fd, char *host, size_t hostlen, int *port);
/* The same for an address in hand (accept's): no system call. */
void rg_sockaddr_name(const struct sockaddr *sa, socklen_t sl, char *host, size_t hostlen,
                      int *port);

/* Milliseconds of CLOCK_MONOTONIC. */
long long rg_now_ms(void);

#endif
