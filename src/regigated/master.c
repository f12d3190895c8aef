/*
 * master.c - listeners, pool, signals; see master.h.
 *
 * The pool follows Postfix's master/single_server split: workers mark
 * themselves busy or idle on a shared scoreboard (lib/poolboard.c) and wake
 * the master over the status pipe only when the pool may need it (a worker
 * without a slot reports every change there); the master forks while fewer
 * than min_spare_servers are idle, up to max_servers, and retires idle
 * workers above max_spare_servers (SIGUSR1). A reload is a new
 * generation: new workers start with the new configuration and listeners,
 * old ones get SIGTERM and exit after the connection they are serving.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "master.h"
#include "mem.h"
#include "netio.h"
#include "poolboard.h"
#include "routestate.h"
#include "rules.h"
#include "worker.h"

struct listener {
    struct rg_hostport hp;
    int fd;
};

struct child {
    pid_t pid;
    int gen;
    int busy;           /* from the status records: a worker without a slot */
    int slot;           /* on M.board, or -1 */
    long long started;
};

/* slots on the scoreboard: max_servers is at most 1000, and after reloads
 * the workers of older generations keep theirs until they have exited */
#define RG_POOL_SLOTS 4096

static struct {
    struct rg_conf *conf;
    struct listener *ls;
    size_t nls;
    struct rg_worker_listener *wl;     /* per route: fd + route, for workers */
    struct rg_rules **rules;           /* per route, NULL = the empty rule set */
    struct rg_rules **pending_rules;   /* loaded by rg_master_load_rules */
    /* what the rules were loaded from, per route (routestate.h), written
     * to spool_dir once the load is in use */
    struct rg_routestate_rules *state, *pending_state;
    struct child *kids;
    size_t nkids, capkids;
    int gen;
    int status_pipe[2];
    struct rg_poolboard *board;        /* shared with the workers; NULL: records only */
    int quick_deaths;
    long long spawn_after;
} M;

static int self_pipe[2] = { -1, -1 };
static volatile sig_atomic_t got_hup, got_term, got_chld;

static void on_signal(int sig)
{
    int saved = errno;
    if (sig == SIGHUP) got_hup = 1;
    else if (sig == SIGCHLD) got_chld = 1;
    else got_term = 1;
    (void)!write(self_pipe[1], "x", 1);
    errno = saved;
}

static int same_hp(const struct rg_hostport *a, const struct rg_hostport *b)
{
    return a->port == b->port && strcmp(a->host, b->host) == 0;
}

/*
 * Build the listener set for conf, reusing sockets of `old` that listen on
 * the same address. On failure nothing of `old` is touched and -1 returned.
 */
static int open_listeners(const struct rg_conf *conf, struct listener *old, size_t nold,
                          struct listener **out, size_t *nout)
{
    struct listener *ls = rg_calloc(conf->nroutes, sizeof(*ls));
    char err[256];

    for (size_t i = 0; i < conf->nroutes; i++) {
        ls[i].hp = conf->routes[i].listen;
        ls[i].fd = -1;
        for (size_t j = 0; j < nold; j++)
            if (old[j].fd >= 0 && same_hp(&old[j].hp, &ls[i].hp))
                ls[i].fd = old[j].fd;
        if (ls[i].fd >= 0)
            continue;
        ls[i].fd = rg_listen_tcp(&ls[i].hp, 512, err, sizeof(err));
        if (ls[i].fd < 0) {
            rg_error("route %s: cannot listen: %s", conf->routes[i].name, err);
            for (size_t k = 0; k < i; k++) {
                int shared = 0;
                for (size_t j = 0; j < nold; j++)
                    shared |= old[j].fd == ls[k].fd;
                if (!shared)
                    close(ls[k].fd);
            }
            rg_free(ls);
            return -1;
        }
    }
    *out = ls;
    *nout = conf->nroutes;
    return 0;
}

static void set_worker_listeners(void)
{
    M.wl = rg_realloc(M.wl, (M.nls ? M.nls : 1) * sizeof(*M.wl));
    for (size_t i = 0; i < M.nls; i++) {
        M.wl[i].fd = M.ls[i].fd;
        M.wl[i].route = &M.conf->routes[i];
        M.wl[i].rules = M.rules ? M.rules[i] : NULL;
    }
}

static void rules_diag(void *ctx, enum rg_diag_severity sev, const char *file, int line,
                       int col, const char *msg)
{
    const char *route = ctx;
    if (sev == RG_DIAG_ERROR)
        rg_error("route %s: %s:%d:%d: %s", route, file, line, col, msg);
    else
        rg_warn("route %s: %s:%d:%d: %s", route, file, line, col, msg);
}

static void free_rules(struct rg_rules **rules, size_t n)
{
    if (rules == NULL)
        return;
    for (size_t i = 0; i < n; i++)
        rg_rules_free(rules[i]);
    rg_free(rules);
}

int rg_master_load_rules(const struct rg_conf *conf)
{
    struct rg_rules **rules = rg_calloc(conf->nroutes, sizeof(*rules));
    struct rg_routestate_rules *state = rg_calloc(conf->nroutes + 1, sizeof(*state));
    char err[512];
    int failed = 0;

    for (size_t i = 0; i < conf->nroutes; i++) {
        const struct rg_route *r = &conf->routes[i];
        /* before the load: a file changed in between shows as not in use */
        if (rg_routestate_fingerprint(r->rules, r->lists_dir, state[i].fingerprint, err,
                                      sizeof(err)) < 0)
            state[i].fingerprint[0] = '\0';
        state[i].loaded = time(NULL);
        if (r->rules == NULL)
            continue;
        rules[i] = rg_rules_load_file(r->rules, r->lists_dir, rules_diag, r->name);
        if (rules[i] == NULL) {
            rg_error("route %s: rule set %s not loaded", r->name, r->rules);
            failed = 1;
        } else if (r->provider == NULL && (rg_rules_uses(rules[i], RG_ACT_ENCRYPT)
                                           || rg_rules_uses(rules[i], RG_ACT_DECRYPT))) {
            /* refuse now rather than defer every such message later */
            rg_error("route %s: rule set %s uses encrypt or decrypt, but the route has no "
                     "provider (regigate.conf(5): provider, provider_ca)", r->name, r->rules);
            failed = 1;
        }
    }
    if (failed) {
        free_rules(rules, conf->nroutes);
        rg_free(state);
        return -1;
    }
    for (size_t i = 0; i < conf->nroutes; i++)
        state[i].nrules = rg_rules_count(rules[i]);
    free_rules(M.pending_rules, 0);
    M.pending_rules = rules;
    rg_free(M.pending_state);
    M.pending_state = state;
    return 0;
}

/* spool_dir/route-NAME.rules for every route: what it runs now. */
static void write_rules_state(void)
{
    for (size_t i = 0; i < M.conf->nroutes && M.state != NULL; i++) {
        const struct rg_route *r = &M.conf->routes[i];
        char *path = rg_routestate_path(M.conf->spool_dir, r->name, "rules");
        if (M.state[i].fingerprint[0] != '\0' && rg_routestate_write_rules(path, &M.state[i]) < 0)
            rg_warn_errno("route %s: cannot record the rules in use in %s", r->name, path);
        rg_free(path);
    }
}

int rg_master_bind(struct rg_conf *conf)
{
    M.conf = conf;
    M.rules = M.pending_rules;
    M.pending_rules = NULL;
    M.state = M.pending_state;
    M.pending_state = NULL;
    if (open_listeners(conf, NULL, 0, &M.ls, &M.nls) < 0)
        return -1;
    set_worker_listeners();
    return 0;
}

void rg_master_drop_privileges(const struct rg_conf *conf)
{
    struct passwd *pw = NULL;
    struct stat st;

    if (conf->user) {
        pw = getpwnam(conf->user);
        if (pw == NULL)
            rg_fatal("user %s: no such user", conf->user);
    }
    if (stat(conf->spool_dir, &st) < 0) {
        if (errno != ENOENT || mkdir(conf->spool_dir, 0700) < 0)
            rg_fatal_errno("spool_dir %s", conf->spool_dir);
        if (pw && geteuid() == 0 && chown(conf->spool_dir, pw->pw_uid, pw->pw_gid) < 0)
            rg_fatal_errno("chown %s", conf->spool_dir);
        rg_info("created spool directory %s", conf->spool_dir);
    } else if (!S_ISDIR(st.st_mode)) {
        rg_fatal("spool_dir %s is not a directory", conf->spool_dir);
    } else if (st.st_mode & 077) {
        rg_warn("spool_dir %s is accessible to group/others (mode %03o); use 0700",
                conf->spool_dir, (unsigned)(st.st_mode & 0777));
    }
    if (geteuid() == 0) {
        if (pw == NULL) {
            rg_warn("running as root: set 'user' in [global] to drop privileges");
        } else {
            if (setgroups(0, NULL) < 0 || initgroups(pw->pw_name, pw->pw_gid) < 0
                || setgid(pw->pw_gid) < 0 || setuid(pw->pw_uid) < 0)
                rg_fatal_errno("cannot drop privileges to %s", conf->user);
            if (setuid(0) == 0)
                rg_fatal("privileges could be regained after dropping to %s", conf->user);
            rg_info("running as user %s (uid %ld)", pw->pw_name, (long)pw->pw_uid);
        }
    } else if (pw && geteuid() != pw->pw_uid) {
        rg_warn("not started as root: cannot switch to user %s, running as uid %ld",
                conf->user, (long)geteuid());
    }
    if (access(conf->spool_dir, W_OK | X_OK) < 0)
        rg_fatal_errno("spool_dir %s is not writable", conf->spool_dir);
}

static struct child *find_child(pid_t pid)
{
    for (size_t i = 0; i < M.nkids; i++)
        if (M.kids[i].pid == pid)
            return &M.kids[i];
    return NULL;
}

static void spawn(void)
{
    pid_t pid;
    int slot;

    if (M.nkids == M.capkids) {
        M.capkids = M.capkids ? M.capkids * 2 : 16;
        M.kids = rg_realloc(M.kids, M.capkids * sizeof(*M.kids));
    }
    slot = rg_poolboard_take(M.board);      /* IDLE from now on */
    /* our pid, for the worker: a getppid() in the child can already be 1
     * if we die right after fork(), and it would never notice */
    pid_t self = getpid();
    pid = fork();
    if (pid < 0) {
        rg_warn_errno("fork");
        rg_poolboard_release(M.board, slot);
        M.spawn_after = rg_now_ms() + 1000;
        return;
    }
    if (pid == 0) {
        close(M.status_pipe[0]);
        close(self_pipe[0]);
        close(self_pipe[1]);
        rg_worker_main(M.conf, M.wl, M.nls, M.status_pipe[1], M.board, slot, self);
    }
    M.kids[M.nkids++] = (struct child){ .pid = pid, .gen = M.gen, .busy = 0, .slot = slot,
                                        .started = rg_now_ms() };
}

static int child_busy(const struct child *c)
{
    if (c->slot >= 0)
        return rg_poolboard_get(M.board, c->slot) == RG_SLOT_BUSY;
    return c->busy;
}

/* The child no longer counts: retiring, or of an older generation. */
static void retire(struct child *c)
{
    c->gen = -1;
    rg_poolboard_retire(M.board, c->slot);
}

static void count(int *total, int *idle)
{
    *total = *idle = 0;
    for (size_t i = 0; i < M.nkids; i++)
        if (M.kids[i].gen == M.gen) {
            (*total)++;
            *idle += !child_busy(&M.kids[i]);
        }
}

/* Fork or retire workers so the pool matches the spare settings. */
static void adjust_pool(void)
{
    int total, idle;

    count(&total, &idle);
    while (idle < M.conf->min_spare_servers && total < M.conf->max_servers
           && rg_now_ms() >= M.spawn_after) {
        spawn();
        total++;
        idle++;
    }
    if (total == 0 && M.conf->max_servers > 0 && rg_now_ms() >= M.spawn_after)
        spawn();
    for (size_t i = 0; i < M.nkids && idle > M.conf->max_spare_servers; i++) {
        struct child *c = &M.kids[i];
        if (c->gen == M.gen && !child_busy(c)) {
            /* SIGUSR1, not SIGTERM: the worker may have accepted a
             * connection since it last said it was idle; it serves that
             * one completely and then exits */
            kill(c->pid, SIGUSR1);
            retire(c);          /* no longer counted */
            idle--;
        }
    }
}

static void read_status(void)
{
    struct rg_worker_status st;

    while (read(M.status_pipe[0], &st, sizeof(st)) == (ssize_t)sizeof(st)) {
        struct child *c = find_child(st.pid);
        if (c)
            c->busy = st.busy;
    }
}

static void reap(void)
{
    int status;
    pid_t pid;

    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        struct child *c = find_child(pid);
        if (c == NULL)
            continue;
        if (WIFSIGNALED(status) && WTERMSIG(status) != SIGTERM) {
            int sig = WTERMSIG(status);
            if (sig == SIGALRM)
                rg_warn("worker %ld killed by the watchdog after child_timeout=%ds",
                        (long)pid, M.conf->child_timeout);
            else
                rg_warn("worker %ld killed by signal %d", (long)pid, sig);
        } else if (WIFEXITED(status) && WEXITSTATUS(status) != 0) {
            rg_warn("worker %ld exited with status %d", (long)pid, WEXITSTATUS(status));
        }
        int abnormal = !(WIFEXITED(status) && WEXITSTATUS(status) == 0)
                       && !(WIFSIGNALED(status) && WTERMSIG(status) == SIGTERM);
        if (abnormal && rg_now_ms() - c->started < 1000) {
            /* dying at once: do not fork in a tight loop */
            if (++M.quick_deaths >= 3) {
                M.spawn_after = rg_now_ms() + 1000;
                rg_warn("workers die at start; slowing down respawns");
            }
        } else {
            M.quick_deaths = 0;
        }
        rg_poolboard_release(M.board, c->slot);
        *c = M.kids[--M.nkids];
    }
}

static void reload(void)
{
    char err[1024];
    struct rg_conf *nc = rg_conf_load(M.conf->path, err, sizeof(err));
    struct listener *nls;
    size_t nn;

    if (nc == NULL) {
        rg_error("reload refused: %s; keeping the current configuration", err);
        return;
    }
    if ((nc->user || M.conf->user) && (!nc->user || !M.conf->user
                                       || strcmp(nc->user, M.conf->user) != 0)) {
        rg_error("reload refused: 'user' cannot change without a restart; "
                 "keeping the current configuration");
        rg_conf_free(nc);
        return;
    }
    if (rg_master_load_rules(nc) < 0) {
        rg_error("reload refused: rule set errors (see above); keeping the current configuration");
        rg_conf_free(nc);
        return;
    }
    if (open_listeners(nc, M.ls, M.nls, &nls, &nn) < 0) {
        rg_error("reload refused: cannot open listeners; keeping the current configuration");
        free_rules(M.pending_rules, nc->nroutes);
        M.pending_rules = NULL;
        M.pending_state = rg_free(M.pending_state);
        rg_conf_free(nc);
        return;
    }
    for (size_t j = 0; j < M.nls; j++) {     /* close listeners no longer wanted */
        int kept = 0;
        for (size_t i = 0; i < nn; i++)
            kept |= nls[i].fd == M.ls[j].fd;
        if (!kept)
            close(M.ls[j].fd);
    }
    rg_free(M.ls);
    M.ls = nls;
    M.nls = nn;
    /* old workers keep pointers into the old conf in their own memory
     * (copied at fork), so the master can free its copy now */
    free_rules(M.rules, M.conf->nroutes);
    M.rules = M.pending_rules;
    M.pending_rules = NULL;
    rg_free(M.state);
    M.state = M.pending_state;
    M.pending_state = NULL;
    rg_conf_free(M.conf);
    M.conf = nc;
    set_worker_listeners();
    write_rules_state();
    for (size_t i = 0; i < M.nkids; i++)
        if (M.kids[i].gen == M.gen) {
            kill(M.kids[i].pid, SIGTERM);
            retire(&M.kids[i]);
        }
    M.gen++;
    M.quick_deaths = 0;
    M.spawn_after = 0;
    rg_info("configuration reloaded from %s: %zu route(s)", M.conf->path, M.conf->nroutes);
}

static void shutdown_pool(void)
{
    long long deadline = rg_now_ms() + M.conf->shutdown_timeout * 1000LL;

    for (size_t i = 0; i < M.nls; i++)
        close(M.ls[i].fd);
    M.nls = 0;
    for (size_t i = 0; i < M.nkids; i++)
        kill(M.kids[i].pid, SIGTERM);
    while (M.nkids > 0 && rg_now_ms() < deadline) {
        usleep(50000);
        reap();
    }
    if (M.nkids > 0) {
        rg_warn("%zu worker(s) still busy after shutdown_timeout=%ds: killing them",
                M.nkids, M.conf->shutdown_timeout);
        for (size_t i = 0; i < M.nkids; i++)
            kill(M.kids[i].pid, SIGKILL);
        while (M.nkids > 0 && waitpid(-1, NULL, 0) > 0)
            reap();
        M.nkids = 0;
    }
}

int rg_master_run(struct rg_conf *conf)
{
    struct sigaction sa;

    M.conf = conf;
    M.board = rg_poolboard_new(RG_POOL_SLOTS);
    if (M.board == NULL)
        rg_warn_errno("no shared scoreboard for the pool; workers report every connection");
    if (pipe2(self_pipe, O_CLOEXEC | O_NONBLOCK) < 0
        || pipe2(M.status_pipe, O_CLOEXEC) < 0 || fcntl(M.status_pipe[0], F_SETFL, O_NONBLOCK) < 0)
        rg_fatal_errno("pipe");
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    sigaction(SIGHUP, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGCHLD, &sa, NULL);
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, NULL);
    /* main() held SIGHUP until now (a reload asked for while starting) */
    sigset_t hup;
    sigemptyset(&hup);
    sigaddset(&hup, SIGHUP);
    sigprocmask(SIG_UNBLOCK, &hup, NULL);

    rg_info("regigated %s started: %zu route(s), max_servers=%d", PACKAGE_VERSION,
            conf->nroutes, conf->max_servers);
    for (size_t i = 0; i < conf->nroutes; i++) {
        const struct rg_route *r = &conf->routes[i];
        rg_info("route %s: %s on %s:%d, reinject to %s:%d, process=%s, rules=%s", r->name,
                r->protocol == RG_PROTO_LMTP ? "lmtp" : "smtp", r->listen.host, r->listen.port,
                r->reinject.host, r->reinject.port,
                r->process == RG_PROCESS_RECIPIENT ? "recipient" : "message",
                r->rules ? r->rules : "{}");
    }
    write_rules_state();
    while (!got_term) {
        struct pollfd pfd[2] = {
            { .fd = self_pipe[0], .events = POLLIN },
            { .fd = M.status_pipe[0], .events = POLLIN },
        };
        char drain[64];

        adjust_pool();
        (void)poll(pfd, 2, 1000);
        while (read(self_pipe[0], drain, sizeof(drain)) > 0)
            ;
        read_status();
        if (got_chld) {
            got_chld = 0;
            reap();
        }
        if (got_hup) {
            got_hup = 0;
            reload();
        }
    }
    rg_info("stopping: waiting up to %ds for messages in progress", M.conf->shutdown_timeout);
    shutdown_pool();
    rg_info("stopped");
    rg_master_discard(M.conf);
    M.kids = rg_free(M.kids);
    rg_poolboard_free(M.board);
    M.board = NULL;
    return 0;
}

struct rg_conf *rg_master_discard(struct rg_conf *conf)
{
    size_t n = conf ? conf->nroutes : 0;

    /* the rule sets in use and the ones loaded but not yet used (after
     * rg_master_load_rules, before rg_master_bind) belong to this conf */
    free_rules(M.rules, n);
    M.rules = NULL;
    free_rules(M.pending_rules, n);
    M.pending_rules = NULL;
    M.state = rg_free(M.state);
    M.pending_state = rg_free(M.pending_state);
    M.ls = rg_free(M.ls);
    M.wl = rg_free(M.wl);
    M.nls = 0;
    M.conf = NULL;
    return rg_conf_free(conf);
}
