/*
 * worker.c - the pre-forked worker's accept loop; see worker.h.
 *
 * Listeners are non-blocking and shared by all workers: each polls them
 * all and whoever wins accept() serves the connection. A worker exits after
 * max_requests connections, when told to stop (SIGTERM: idle sessions
 * are ended with 421, a transaction in progress is finished), when retired
 * as a spare (SIGUSR1: after serving the connection in hand to its end),
 * or when the master is gone, and when accept() finds its descriptor table
 * full (EMFILE: a fresh worker replaces it). SIGALRM is the watchdog
 * (child_timeout per transaction) and keeps its default action: the worker
 * dies and the upstream MTA keeps the message queued.
 */
#include "config.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "filter.h"
#include "filter_crypt.h"
#include "log.h"
#include "mem.h"
#include "netio.h"
#include "poolboard.h"
#include "smtp_server.h"
#include "worker.h"

#if defined(__SANITIZE_ADDRESS__)
#define RG_WITH_LSAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define RG_WITH_LSAN 1
#endif
#endif
#ifdef RG_WITH_LSAN
#include <sanitizer/lsan_interface.h>
#endif

static volatile int worker_stop;    /* SIGTERM: end idle sessions, exit */
static volatile int worker_retire;  /* SIGUSR1: exit after the connection in hand */
static int *listen_fds;             /* this worker's copies of the listeners */
static size_t nlisten;
static pid_t my_pid;                /* for the status records: getpid() once */
static struct rg_poolboard *board;  /* the master's scoreboard, and our slot on it */
static int board_slot = -1;

static void on_term(int sig)
{
    if (sig == SIGUSR1) {
        worker_retire = 1;
        return;
    }
    worker_stop = 1;
    /*
     * A worker told to stop never accepts again, so it lets go of the
     * listening sockets now rather than when it exits. This matters when the
     * master has died (SIGTERM through PR_SET_PDEATHSIG): a worker still
     * finishing a transaction would otherwise keep the port bound, and a
     * master started in the meantime could not listen on it. close() is
     * async-signal-safe; the accept loop ends because worker_stop is set.
     */
    for (size_t i = 0; i < nlisten; i++)
        if (listen_fds[i] >= 0) {
            close(listen_fds[i]);
            listen_fds[i] = -1;
        }
}

static void tell_master(int status_fd, int busy)
{
    struct rg_worker_status st;
    ssize_t n;

    /* the padding after `busy` goes down the pipe too: no stack garbage
     * (valgrind: "write(buf) points to uninitialised byte(s)") */
    memset(&st, 0, sizeof(st));
    st.pid = my_pid;
    st.busy = (char)busy;

    do
        n = write(status_fd, &st, sizeof(st));
    while (n < 0 && errno == EINTR);
}

/* Busy or idle: a store on the scoreboard, and a record (a wake-up of
 * the master) only when the pool may need it; every change when we have
 * no slot. */
static void report(const struct rg_conf *conf, int status_fd, int busy)
{
    if (board_slot >= 0
        && !rg_poolboard_mark(board, board_slot, busy, conf->min_spare_servers,
                              conf->max_spare_servers, conf->max_servers))
        return;
    tell_master(status_fd, busy);
}

static void setup_signals(void)
{
    struct sigaction sa;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_term;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGUSR1, &sa, NULL);
    sa.sa_handler = SIG_IGN;
    sa.sa_flags = 0;
    sigaction(SIGHUP, &sa, NULL);
    sigaction(SIGPIPE, &sa, NULL);
    sa.sa_handler = SIG_DFL;
    sigaction(SIGCHLD, &sa, NULL);
    sigaction(SIGALRM, &sa, NULL);
#ifdef HAVE_PRCTL
    /* if the master dies, stop as if it had told us to */
    prctl(PR_SET_PDEATHSIG, SIGTERM);
#endif
}

void rg_worker_main(const struct rg_conf *conf, const struct rg_worker_listener *ls,
                    size_t nls, int status_fd, struct rg_poolboard *pool_board, int slot,
                    pid_t master)
{
    struct pollfd *pfd = rg_calloc(nls, sizeof(*pfd));
    struct rg_filter *filters = rg_calloc(nls, sizeof(*filters));
    int served = 0, exit_code = 0;
    long long last_warn = -10000;

    my_pid = getpid();
    /* the buffers of one message serve the next one (lib/mem.c) */
    rg_mem_keep_freed();
    board = pool_board;
    board_slot = slot;
    listen_fds = rg_calloc(nls ? nls : 1, sizeof(*listen_fds));
    for (size_t i = 0; i < nls; i++)
        listen_fds[i] = ls[i].fd;
    nlisten = nls;
    setup_signals();
    for (size_t i = 0; i < nls; i++) {
        pfd[i].fd = ls[i].fd;
        pfd[i].events = POLLIN;
        rg_filter_init(&filters[i], conf, ls[i].route, ls[i].rules);
        rg_filter_crypt_init(&filters[i]);
    }
    if (board_slot < 0)        /* with a slot, the master made it IDLE */
        tell_master(status_fd, 0);
    /* a master that is gone: PR_SET_PDEATHSIG says so at once (SIGTERM).
     * One that died between fork() and prctl() sends nothing, and we are
     * init's child already: getppid() before every accept sees that, against
     * the pid the master passed (our own first getppid() could be 1). */
    while (!worker_stop && !worker_retire && !exit_code && served < conf->max_requests
           && getppid() == master) {
        int n = poll(pfd, nls, 1000);
        if (n <= 0)
            continue;
        for (size_t i = 0; i < nls && !worker_stop && !worker_retire; i++) {
            if (!(pfd[i].revents & POLLIN))
                continue;
            struct sockaddr_storage peer;
            socklen_t peerlen = sizeof(peer);
            int fd = accept4(ls[i].fd, (struct sockaddr *)&peer, &peerlen,
                             SOCK_NONBLOCK | SOCK_CLOEXEC);
            if (fd < 0) {
                int err = errno;
                if (err == EMFILE) {
                    /* this process's descriptor table is full (a leak, or
                     * a limit lowered under us): a fresh worker has an
                     * empty one, so make way for it rather than spin here
                     * while the connection waits in the backlog */
                    rg_warn("accept on route %s: %s; worker exits, the master starts a "
                            "fresh one", ls[i].route->name, strerror(err));
                    exit_code = 1;
                    break;
                }
                if (err == ENFILE || err == ENOBUFS || err == ENOMEM) {
                    /* system-wide shortage: wait, and say so every 10 s at most */
                    if (rg_now_ms() - last_warn >= 10000) {
                        rg_warn("accept on route %s: %s", ls[i].route->name, strerror(err));
                        last_warn = rg_now_ms();
                    }
                    usleep(100000);
                }
                continue;   /* EAGAIN: another worker took it */
            }
            /* TCP_NODELAY comes from the listener (rg_listen_tcp) */
            report(conf, status_fd, 1);
            struct rg_smtp_server_cfg cfg = {
                .protocol = ls[i].route->protocol,
                .hostname = conf->myhostname,
                .max_message_size = ls[i].route->max_message_size,
                .max_recipients = ls[i].route->max_recipients,
                .timeout_ms = conf->smtp_timeout * 1000,
                .spool_dir = conf->spool_dir,
                .spool_mem_limit = conf->spool_memory_limit,
                .watchdog_s = conf->child_timeout,
                .offer_xforward = 1,
                .deliver = rg_filter_deliver,
                .ctx = &filters[i],
                .stop = &worker_stop,
                .peer = (const struct sockaddr *)&peer,
                .peerlen = peerlen,
            };
            (void)rg_smtp_serve(fd, &cfg);
            close(fd);
            served++;
            report(conf, status_fd, 0);
        }
    }
    for (size_t i = 0; i < nls; i++) {
        rg_filter_crypt_free(&filters[i]);
        rg_filter_free(&filters[i]);
    }
    rg_free(filters);
    rg_free(pfd);
    /* listen_fds stays: the SIGTERM handler may still read it */
    rg_smtp_serve_release();
#ifdef RG_WITH_LSAN
    /* _exit skips LeakSanitizer's check at exit: run it here, so that what
     * a worker leaks while it handles messages is reported too. Not after
     * EMFILE: with no descriptor free the check cannot open its report and
     * hangs instead of exiting (fault_fd_limit.sh) */
    if (exit_code == 0)
        __lsan_do_leak_check();
#endif
    _exit(exit_code);
}
