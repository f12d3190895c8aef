/*
 * fuzz_conffile.c - libFuzzer target for lib/conffile: the input is a
 * whole regigate.conf. It is written to a file created once and rewritten
 * for every input - on Linux an anonymous memory file (memfd) opened by
 * its /proc/self/fd path, elsewhere a temporary file removed at exit: a
 * truncated disk file costs a writeback wait per input - and loaded with
 * rg_conf_load(); a loaded configuration is freed again, so
 * LeakSanitizer sees any leak on either path.
 *
 * Invariants (abort() when broken):
 *  - NULL comes with a "PATH: ..." or "PATH:LINE: ..." message, a
 *    configuration with an empty message;
 *  - a loaded configuration obeys what conffile.h promises: at least one
 *    route, each with a valid name, listen and reinject addresses with
 *    ports 1..65535 and loopback listen addresses unless
 *    allow_remote_listen, no two routes on one listen address, limits in
 *    their ranges, min_spare <= max_spare <= max_servers, absolute paths;
 *  - loading the same file twice gives the same verdict and message.
 *
 * With RG_FUZZ_DEBUG set in the environment the verdict goes to stderr.
 */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/mman.h>
#endif

#include "conffile.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_INPUT (64 * 1024)

static char conf_path[4096];
static int conf_fd = -1;

static void check(int ok)
{
    if (!ok)
        abort();
}

static void remove_conf(void)
{
    unlink(conf_path);
}

static void make_conf_file(void)
{
    const char *tmp = getenv("TMPDIR");

#if defined(__linux__) && defined(MFD_CLOEXEC)
    conf_fd = memfd_create("rg-fuzz-conf", MFD_CLOEXEC);
    if (conf_fd >= 0) {
        snprintf(conf_path, sizeof(conf_path), "/proc/self/fd/%d", conf_fd);
        if (access(conf_path, R_OK) == 0)
            return;
        close(conf_fd);     /* no /proc: use a file */
        conf_fd = -1;
    }
#endif
    if (tmp == NULL || *tmp == '\0')
        tmp = "/tmp";
    snprintf(conf_path, sizeof(conf_path), "%s/rg-fuzz-conf.XXXXXX", tmp);
    conf_fd = mkstemp(conf_path);
    check(conf_fd >= 0);
    atexit(remove_conf);
}

static void write_conf(const uint8_t *data, size_t size)
{
    size_t off = 0;

    check(ftruncate(conf_fd, 0) == 0);
    while (off < size) {
        ssize_t w = pwrite(conf_fd, data + off, size - off, (off_t)off);
        check(w > 0);
        off += (size_t)w;
    }
}

static int valid_name(const char *s)
{
    size_t len = strlen(s);

    return len >= 1 && len <= 64
        && strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-") == len;
}

static void check_hostport(const struct rg_hostport *hp)
{
    check(memchr(hp->host, 0, sizeof(hp->host)) != NULL && hp->host[0] != 0);
    check(hp->port >= 1 && hp->port <= 65535);
}

static void check_conf(const struct rg_conf *c)
{
    check(c->path != NULL && strcmp(c->path, conf_path) == 0);
    check(c->spool_dir != NULL && c->spool_dir[0] == '/');
    check(c->pid_file != NULL && c->pid_file[0] == '/');
    check(c->myhostname != NULL && c->myhostname[0] != 0);
    check(c->syslog_facility != NULL);
    check(c->allow_remote_listen == 0 || c->allow_remote_listen == 1);
    check(c->max_servers >= 1 && c->max_servers <= 1000);
    check(c->min_spare_servers >= 0 && c->min_spare_servers <= c->max_spare_servers);
    check(c->max_spare_servers >= 1 && c->max_spare_servers <= c->max_servers);
    check(c->max_requests >= 1 && c->child_timeout >= 1 && c->smtp_timeout >= 1);
    check(c->reinject_timeout >= 1 && c->shutdown_timeout >= 0);
    check(c->spool_memory_limit <= 1024ULL * 1024 * 1024);
    check(c->nroutes >= 1 && c->routes != NULL);
    for (size_t i = 0; i < c->nroutes; i++) {
        const struct rg_route *r = &c->routes[i];
        check(valid_name(r->name));
        check(rg_conf_route(c, r->name) == r);
        check(r->line >= 1);
        check_hostport(&r->listen);
        check_hostport(&r->reinject);
        if (!c->allow_remote_listen)
            check(rg_host_is_loopback(r->listen.host));
        check(r->protocol == RG_PROTO_SMTP || r->protocol == RG_PROTO_LMTP);
        check(r->process == RG_PROCESS_MESSAGE || r->process == RG_PROCESS_RECIPIENT);
        check(r->max_message_size >= 1 && r->max_message_size <= 2048ULL * 1024 * 1024);
        check(r->max_recipients >= 1 && r->max_recipients <= 100000);
        for (size_t j = 0; j < i; j++)
            check(!(r->listen.port == c->routes[j].listen.port
                    && strcasecmp(r->listen.host, c->routes[j].listen.host) == 0));
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[1024], err2[1024];
    struct rg_conf *conf, *again;

    if (size > MAX_INPUT)
        return 0;
    if (conf_path[0] == 0)
        make_conf_file();
    write_conf(data, size);

    memset(err, 'x', sizeof(err));
    conf = rg_conf_load(conf_path, err, sizeof(err));
    check(memchr(err, 0, sizeof(err)) != NULL);
    if (conf == NULL) {
        size_t pl = strlen(conf_path);
        check(strncmp(err, conf_path, pl) == 0 && err[pl] == ':' && err[pl + 1] != 0);
    } else {
        check(err[0] == 0);
        check_conf(conf);
    }

    if (getenv("RG_FUZZ_DEBUG") != NULL)
        fprintf(stderr, "%s\n", conf ? "loaded" : err);
    again = rg_conf_load(conf_path, err2, sizeof(err2));
    check((again == NULL) == (conf == NULL));
    check(strcmp(err, err2) == 0);
    rg_conf_free(again);
    check(rg_conf_free(conf) == NULL);
    return 0;
}
