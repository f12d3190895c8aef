/*
 * regigated - the regigate content filter daemon.
 *
 *   regigated [-f] [-t] [-c FILE]
 *
 * Reads the configuration, binds one listener per route, goes to the
 * background (unless -f), writes the pid file, drops root and runs the
 * pre-forked pool until SIGTERM. See regigated(8).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

#include "conffile.h"
#include "log.h"
#include "master.h"
#include "provider_client.h"

#define DEFAULT_CONF RG_SYSCONFDIR "/regigate/regigate.conf"

static void usage(int code)
{
    fprintf(code ? stderr : stdout,
            "usage: regigated [-f] [-t] [-c FILE]\n"
            "  -c FILE  configuration file (default %s)\n"
            "  -f       stay in the foreground and log to stderr\n"
            "  -t       check the configuration and exit\n"
            "  -V       print the version\n", DEFAULT_CONF);
    exit(code);
}

/* Refuse to start twice: the pid file names a live process. */
static void check_pid_file(const char *path)
{
    char buf[32];
    FILE *fp = fopen(path, "r");
    long old = 0;

    if (fp) {
        if (fgets(buf, sizeof(buf), fp))
            old = strtol(buf, NULL, 10);
        fclose(fp);
        if (old > 0 && old != getpid() && kill((pid_t)old, 0) == 0)
            rg_fatal("already running as pid %ld (pid file %s)", old, path);
    }
}

static void write_pid_file(const char *path)
{
    char buf[32];
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        rg_fatal_errno("cannot write pid file %s", path);
    int n = snprintf(buf, sizeof(buf), "%ld\n", (long)getpid());
    if (write(fd, buf, (size_t)n) != n)
        rg_fatal_errno("cannot write pid file %s", path);
    close(fd);
}

static void daemonize(void)
{
    pid_t pid = fork();
    int fd;

    if (pid < 0)
        rg_fatal_errno("fork");
    if (pid > 0)
        _exit(0);
    if (setsid() < 0)
        rg_fatal_errno("setsid");
    if (chdir("/") < 0)
        rg_fatal_errno("chdir /");
    fd = open("/dev/null", O_RDWR);
    if (fd >= 0) {
        dup2(fd, 0);
        dup2(fd, 1);
        dup2(fd, 2);
        if (fd > 2)
            close(fd);
    }
}

/* A route's provider key that exists must be private: refused at start
 * (the workers would refuse it anyway, deferring every message to encrypt
 * or decrypt). A key not installed yet is only a warning later. */
static int check_keys(const struct rg_conf *conf)
{
    int bad = 0;

    for (size_t i = 0; i < conf->nroutes; i++) {
        const struct rg_route *r = &conf->routes[i];
        char err[600];
        if (r->provider == NULL || r->provider_key == NULL || access(r->provider_key, F_OK) < 0)
            continue;
        if (rg_provider_key_mode_ok(r->provider_key, err, sizeof(err)) < 0) {
            fprintf(stderr, "regigated: route %s: %s\n", r->name, err);
            bad = 1;
        }
    }
    return bad ? -1 : 0;
}

int main(int argc, char **argv)
{
    const char *path = DEFAULT_CONF;
    int foreground = 0, test_only = 0, opt, rc, facility;
    char err[1024], pid_path[4096];
    struct rg_conf *conf;

    while ((opt = getopt(argc, argv, "c:fthV")) != -1) {
        switch (opt) {
        case 'c': path = optarg; break;
        case 'f': foreground = 1; break;
        case 't': test_only = 1; break;
        case 'V': printf("regigated %s\n", PACKAGE_VERSION); return 0;
        case 'h': usage(0); break;
        default: usage(2);
        }
    }
    if (optind != argc)
        usage(2);

    /*
     * SIGHUP is held from here until rg_master_run has its handler: the
     * listeners are bound (and the port answers) well before that, and a
     * reload asked for in between (systemctl reload right after start, or
     * a slow start under valgrind) would otherwise end the daemon, HUP's
     * default action. A held HUP is delivered then, and reloads.
     */
    sigset_t hup;
    sigemptyset(&hup);
    sigaddset(&hup, SIGHUP);
    sigprocmask(SIG_BLOCK, &hup, NULL);

    rg_log_open("regigated", RG_LOG_STDERR, LOG_MAIL);
    conf = rg_conf_load(path, err, sizeof(err));
    if (conf == NULL) {
        fprintf(stderr, "regigated: %s\n", err);
        return 1;
    }
    /* every return below frees conf and the rule sets: under LeakSanitizer
     * (doc/reliability.md, "Sanitizers and valgrind") a leak is an error */
    if (rg_master_load_rules(conf) < 0) {
        fprintf(stderr, "regigated: %s: rule set errors, see above\n", path);
        rg_master_discard(conf);
        return 1;
    }
    if (check_keys(conf) < 0) {
        rg_master_discard(conf);
        return 1;
    }
    if (test_only) {
        printf("%s: configuration ok, %zu route(s)\n", path, conf->nroutes);
        rg_master_discard(conf);
        return 0;
    }
    check_pid_file(conf->pid_file);
    if (rg_master_bind(conf) < 0) {
        rg_master_discard(conf);
        return 1;
    }
    if (!foreground) {
        facility = rg_log_facility(conf->syslog_facility);
        daemonize();
        rg_log_open("regigated", RG_LOG_SYSLOG, facility < 0 ? LOG_MAIL : facility);
    }
    write_pid_file(conf->pid_file);
    rg_master_drop_privileges(conf);
    /* the configuration may be re-read as the unprivileged user on SIGHUP */
    if (access(path, R_OK) < 0)
        rg_warn("%s is not readable after dropping privileges: SIGHUP reloads will fail", path);
    /* the workers open the route's provider key and certificates as this
     * user; say so now rather than with the first message to encrypt */
    for (size_t i = 0; i < conf->nroutes; i++) {
        const struct rg_route *r = &conf->routes[i];
        const char *files[] = { r->provider_ca, r->provider_cert, r->provider_key };
        if (r->provider == NULL)
            continue;
        for (size_t k = 0; k < 3; k++)
            if (access(files[k], R_OK) < 0)
                rg_warn("route %s: cannot read %s (%s) as the %s user: encrypt and decrypt "
                        "will be deferred until it can", r->name, files[k], strerror(errno),
                        conf->user ? conf->user : "current");
    }
    snprintf(pid_path, sizeof(pid_path), "%s", conf->pid_file);
    rc = rg_master_run(conf);
    /* may fail once root is gone and the directory is root's: then the
     * next start finds a stale pid that no longer runs, which is fine */
    if (unlink(pid_path) < 0 && errno != ENOENT && errno != EACCES)
        rg_warn_errno("cannot remove pid file %s", pid_path);
    return rc;
}
