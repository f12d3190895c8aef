/*
 * test_provider_client.c - lib/provider_client against a real
 * regigate-provider started here (init, gateways, certificates signed by
 * its CA, accounts), plus two tiny local servers for the failure cases a
 * real provider does not produce: one that accepts and never answers, and
 * a TLS server with the provider's certificate that answers garbage.
 *
 * Environment: top_builddir (default ".") locates the programs;
 * REGIGATE_PROVIDER and REGIGATE_MAKECERT override them.
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/ssl.h>

#include "log.h"
#include "provider_client.h"

static char dir[64];
static char provider_bin[1024], makecert_bin[1024];
static char url[128];
static pid_t server_pid = -1;

/* ---- helpers --------------------------------------------------------- */

static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int sh(const char *fmt, ...)
{
    char cmd[4096];
    va_list ap;
    int rc;

    va_start(ap, fmt);
    vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    rc = system(cmd);
    if (rc != 0)
        fprintf(stderr, "# command failed (%d): %s\n", rc, cmd);
    return rc;
}

static int listen_on(int port)
{
    struct sockaddr_in sa;
    int one = 1, fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 16) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* A random port in 20000..59999 that nothing listens on. */
static int free_port(void)
{
    for (int i = 0; i < 200; i++) {
        int port = 20000 + rand() % 40000, fd = listen_on(port);
        if (fd >= 0) {
            close(fd);
            return port;
        }
    }
    return -1;
}

static int can_connect(int port)
{
    struct sockaddr_in sa;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), ok;

    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ok = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
    close(fd);
    return ok;
}

/* Under valgrind (make check-valgrind sets RG_VALGRIND) the first TLS
 * handshake of a process, certificate loading included, takes seconds:
 * the waits that only guard against a hang are ten times as long there.
 * The timeouts a test is about are passed explicitly and stay as they are. */
static long slow(long ms)
{
    return getenv("RG_VALGRIND") ? 10 * ms : ms;
}

/* The provider's connection_timeout (s) in these tests: short, for
 * test_idle_connection_closed; under valgrind longer than a first TLS
 * handshake, whose steps can be more than a second apart there and which
 * the provider would otherwise cut as idle. */
static int idle_timeout_s(void)
{
    return (int)slow(1000) / 1000;
}

static struct rg_provider *client_for(const char *u, const char *ca, const char *cert, const char *key,
                                      long timeout_ms, int pos_ttl, int neg_ttl)
{
    char cap[256], certp[256], keyp[256], err[256];
    struct rg_provider_config cfg;
    struct rg_provider *p;

    snprintf(cap, sizeof(cap), "%s/%s", dir, ca);
    snprintf(certp, sizeof(certp), "%s/%s", dir, cert);
    snprintf(keyp, sizeof(keyp), "%s/%s", dir, key);
    memset(&cfg, 0, sizeof(cfg));
    cfg.url = u;
    cfg.ca_file = cap;
    cfg.cert_file = certp;
    cfg.key_file = keyp;
    cfg.connect_timeout_ms = slow(2000);
    cfg.timeout_ms = timeout_ms;
    cfg.cache_positive_ttl = pos_ttl;
    cfg.cache_negative_ttl = neg_ttl;
    p = rg_provider_new(&cfg, err, sizeof(err));
    if (p == NULL)
        fprintf(stderr, "# rg_provider_new: %s\n", err);
    assert_non_null(p);
    return p;
}

static struct rg_provider *gw1(void)
{
    return client_for(url, "data/ca.crt", "gw1.crt", "gw1.key", slow(5000), 0, 0);
}

static void random_sha(uint8_t sha[32])
{
    for (int i = 0; i < 32; i++)
        sha[i] = (uint8_t)rand();
}

/* ---- fixture: a real provider ---------------------------------------- */

static int enrol(int gw, const char *ip, const char *extra_sign)
{
    if (sh("cd %s && %s -c DE -n gw%d.example.com -o 'Test Org' -P gw%d 2>/dev/null", dir, makecert_bin, gw, gw))
        return -1;
    if (sh("cd %s && %s -c p.conf gateway add --ip %s --description 'gateway %d' >/dev/null",
           dir, provider_bin, ip, gw))
        return -1;
    /* the signed certificate replaces the self-signed one */
    return sh("cd %s && %s -c p.conf gateway sign %d %s < gw%d.csr > gw%d.signed 2>/dev/null && mv gw%d.signed gw%d.crt",
              dir, provider_bin, gw, extra_sign, gw, gw, gw, gw);
}

static int group_setup(void **state)
{
    const char *b = getenv("top_builddir");
    int port;
    FILE *f;

    (void)state;
    srand((unsigned)(time(NULL) ^ getpid()));
    rg_log_open("test_provider_client", RG_LOG_NONE, 0);
    snprintf(provider_bin, sizeof(provider_bin), "%s",
             getenv("REGIGATE_PROVIDER") ? getenv("REGIGATE_PROVIDER") : "");
    if (!*provider_bin)
        snprintf(provider_bin, sizeof(provider_bin), "%s/src/regigate-provider/regigate-provider", b ? b : ".");
    snprintf(makecert_bin, sizeof(makecert_bin), "%s",
             getenv("REGIGATE_MAKECERT") ? getenv("REGIGATE_MAKECERT") : "");
    if (!*makecert_bin)
        snprintf(makecert_bin, sizeof(makecert_bin), "%s/src/regigate-makecert/regigate-makecert", b ? b : ".");
    /* the fixture runs the programs from its scratch directory */
    {
        char *bins[] = { provider_bin, makecert_bin }, cwd[512], tmp[2048];
        if (getcwd(cwd, sizeof(cwd)) == NULL)
            return -1;
        for (int i = 0; i < 2; i++) {
            if (bins[i][0] == '/')
                continue;
            snprintf(tmp, sizeof(tmp), "%s/%s", cwd, bins[i]);
            if (strlen(tmp) >= sizeof(provider_bin))
                return -1;
            strcpy(bins[i], tmp);
        }
    }
    snprintf(dir, sizeof(dir), "/tmp/rgprov.XXXXXX");
    if (mkdtemp(dir) == NULL)
        return -1;
    if ((port = free_port()) < 0)
        return -1;
    snprintf(url, sizeof(url), "https://localhost:%d", port);
    {
        char path[256];
        snprintf(path, sizeof(path), "%s/p.conf", dir);
        if ((f = fopen(path, "w")) == NULL)
            return -1;
        fprintf(f, "[provider]\nlisten = 127.0.0.1:%d\ndata_dir = %s/data\nthreads = 2\n"
                "connection_timeout = %d\n", port, dir, idle_timeout_s());
        fclose(f);
    }
    if (sh("cd %s && %s -c p.conf init >/dev/null", dir, provider_bin))
        return -1;
    /* 1: good; 2: wrong allow-listed address; 3: removed; 4: expired */
    if (enrol(1, "127.0.0.1", "") || enrol(2, "192.0.2.1", "") || enrol(3, "127.0.0.1", "")
        || enrol(4, "127.0.0.1", "--days 0"))
        return -1;
    if (sh("cd %s && %s -c p.conf gateway remove 3 >/dev/null", dir, provider_bin))
        return -1;
    if (sh("cd %s && %s -c p.conf account add alice@example.com bob@example.org", dir, provider_bin))
        return -1;
    /* a key and self-signed certificate from no provider at all */
    if (sh("cd %s && %s -c DE -n rogue.example.com -P rogue 2>/dev/null", dir, makecert_bin))
        return -1;

    server_pid = fork();
    if (server_pid == 0) {
        char log[256];
        snprintf(log, sizeof(log), "%s/serve.log", dir);
        int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
        dup2(fd, 1);
        dup2(fd, 2);
        if (chdir(dir) < 0)
            _exit(127);
        execl(provider_bin, provider_bin, "-c", "p.conf", "serve", (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 200; i++) {
        if (can_connect(port))
            return 0;
        usleep(50000);
    }
    fprintf(stderr, "# regigate-provider did not start; see %s/serve.log\n", dir);
    return -1;
}

static int group_teardown(void **state)
{
    int status;

    (void)state;
    if (server_pid > 0) {
        kill(server_pid, SIGTERM);
        for (int i = 0; i < 100 && waitpid(server_pid, &status, WNOHANG) == 0; i++)
            usleep(50000);
        if (waitpid(server_pid, &status, WNOHANG) == 0) {
            kill(server_pid, SIGKILL);
            waitpid(server_pid, &status, 0);
        }
    }
    if (dir[0] && !getenv("T_KEEP"))
        sh("rm -rf %s", dir);
    return 0;
}

/* ---- tests against the real provider --------------------------------- */

static void test_health_keepalive(void **state)
{
    struct rg_provider *p = gw1();
    struct rg_provider_info info;
    long long gw = 0;

    (void)state;
    for (int i = 0; i < 5; i++) {
        assert_int_equal(rg_provider_health(p, &gw, &info), RG_PROVIDER_OK);
        assert_int_equal(gw, 1);
    }
    /* one TLS connection for all five requests */
    assert_int_equal(rg_provider_connections(p), 1);
    rg_provider_free(p);
}

static void test_key_cert_pem(void **state)
{
    /* the route's key and certificate in one file, key_file unset */
    char path[256], ca[256], err[256];
    struct rg_provider_config cfg;
    struct rg_provider *p;
    struct rg_provider_info info;
    long long gw = 0;

    (void)state;
    assert_int_equal(sh("cd %s && (umask 077 && cat gw1.key gw1.crt > key_cert.pem)", dir), 0);
    snprintf(path, sizeof(path), "%s/key_cert.pem", dir);
    memset(&cfg, 0, sizeof(cfg));
    cfg.url = url + strlen("https://");     /* "host:port" as in the seed */
    snprintf(ca, sizeof(ca), "%s/data/ca.crt", dir);
    cfg.ca_file = ca;
    cfg.cert_file = path;
    p = rg_provider_new(&cfg, err, sizeof(err));
    assert_non_null(p);
    assert_int_equal(rg_provider_health(p, &gw, &info), RG_PROVIDER_OK);
    assert_int_equal(gw, 1);
    rg_provider_free(p);
}

/* contact_file: the provider's answers are recorded (routestate.h), at
 * most once a minute, and refusals are not */
static void test_contact_file(void **state)
{
    char contact[256], ca[256], cert[256], key[256], err[256];
    struct rg_provider_config cfg;
    struct rg_provider_info info;
    struct rg_provider *p;
    struct stat st;
    long long gw = 0;
    time_t before = time(NULL);

    (void)state;
    snprintf(contact, sizeof(contact), "%s/route-gw1.provider", dir);
    snprintf(ca, sizeof(ca), "%s/data/ca.crt", dir);
    snprintf(cert, sizeof(cert), "%s/gw1.crt", dir);
    snprintf(key, sizeof(key), "%s/gw1.key", dir);
    memset(&cfg, 0, sizeof(cfg));
    cfg.url = url;
    cfg.ca_file = ca;
    cfg.cert_file = cert;
    cfg.key_file = key;
    cfg.contact_file = contact;
    unlink(contact);
    p = rg_provider_new(&cfg, err, sizeof(err));
    assert_non_null(p);
    assert_int_equal(rg_provider_health(p, &gw, &info), RG_PROVIDER_OK);
    assert_int_equal(stat(contact, &st), 0);
    assert_true(st.st_mtime >= before && st.st_mtime <= time(NULL));
    assert_int_equal(st.st_mode & 0777, 0600);
    /* within the minute: not touched again */
    unlink(contact);
    assert_int_equal(rg_provider_account(p, "alice@example.com", &info), RG_PROVIDER_OK);
    assert_int_equal(stat(contact, &st), -1);
    rg_provider_free(p);

    /* a gateway the provider refuses is no contact */
    snprintf(cert, sizeof(cert), "%s/gw3.crt", dir);
    snprintf(key, sizeof(key), "%s/gw3.key", dir);
    p = rg_provider_new(&cfg, err, sizeof(err));
    assert_non_null(p);
    assert_int_equal(rg_provider_account(p, "alice@example.com", &info), RG_PROVIDER_UNAUTHORIZED);
    assert_int_equal(stat(contact, &st), -1);
    rg_provider_free(p);
}

static void test_idle_connection_closed(void **state)
{
    struct rg_provider *p = gw1();
    struct rg_provider_info info;
    const char *r[] = { "bob@example.org" };
    struct rg_provider_txn t;
    uint8_t sha[32];

    (void)state;
    assert_int_equal(rg_provider_health(p, NULL, &info), RG_PROVIDER_OK);
    /* the provider drops the idle connection after connection_timeout (1 s,
     * 10 s under valgrind); the kept handle must notice and connect again,
     * for a POST too */
    sleep((unsigned)idle_timeout_s() + 1);
    random_sha(sha);
    assert_int_equal(rg_provider_create(p, "alice@example.com", r, 1, "<idle@x>", sha, &t, &info), RG_PROVIDER_OK);
    assert_int_equal(rg_provider_connections(p), 2);
    rg_provider_free(p);
}

static void test_account_yes_no(void **state)
{
    struct rg_provider *p = gw1();
    struct rg_provider_info info;

    (void)state;
    assert_int_equal(rg_provider_account(p, "alice@example.com", &info), RG_PROVIDER_OK);
    assert_int_equal(rg_provider_account(p, "ALICE@Example.COM", &info), RG_PROVIDER_OK);
    assert_int_equal(rg_provider_account(p, "carol@example.com", &info), RG_PROVIDER_NO_ACCOUNT);
    assert_false(rg_provider_is_temporary(RG_PROVIDER_NO_ACCOUNT));
    assert_int_equal(rg_provider_account(p, "a+tag/x%y@example.com", &info), RG_PROVIDER_NO_ACCOUNT);
    assert_int_equal(rg_provider_account(p, "not an address", &info), RG_PROVIDER_REJECTED);
    rg_provider_free(p);
}

static void test_account_cache(void **state)
{
    struct rg_provider *p = client_for(url, "data/ca.crt", "gw1.crt", "gw1.key", 5000, 60, 60);
    struct rg_provider_info info;

    (void)state;
    assert_int_equal(rg_provider_account(p, "erin@example.com", &info), RG_PROVIDER_NO_ACCOUNT);
    assert_int_equal(sh("cd %s && %s -c p.conf account add erin@example.com", dir, provider_bin), 0);
    /* the negative answer is cached */
    assert_int_equal(rg_provider_account(p, "erin@example.com", &info), RG_PROVIDER_NO_ACCOUNT);
    assert_string_equal(info.reason, "cached");
    rg_provider_cache_clear(p);
    assert_int_equal(rg_provider_account(p, "erin@example.com", &info), RG_PROVIDER_OK);
    assert_int_equal(sh("cd %s && %s -c p.conf account remove erin@example.com", dir, provider_bin), 0);
    assert_int_equal(rg_provider_account(p, "erin@example.com", &info), RG_PROVIDER_OK);
    rg_provider_free(p);

    /* without a cache the removal is seen at once */
    p = gw1();
    assert_int_equal(rg_provider_account(p, "erin@example.com", &info), RG_PROVIDER_NO_ACCOUNT);
    rg_provider_free(p);
}

static void test_create_and_fetch(void **state)
{
    struct rg_provider *p = gw1();
    struct rg_provider_info info;
    struct rg_provider_txn t;
    struct rg_pj_events ev;
    const char *rcpts[] = { "bob@example.org", "dave@example.net" };
    uint8_t sha[32], kek[32], unknown[16] = { 0 };

    (void)state;
    random_sha(sha);
    assert_int_equal(rg_provider_create(p, "alice@example.com", rcpts, 2, "<m1@example.com>", sha, &t, &info),
                     RG_PROVIDER_OK);
    assert_false(t.replayed);
    assert_int_equal(strlen(t.id_hex), 32);

    assert_int_equal(rg_provider_fetch_key(p, t.id, "Bob@Example.org", kek, &info), RG_PROVIDER_OK);
    assert_memory_equal(kek, t.kek, 32);
    /* a recipient without an account */
    assert_int_equal(rg_provider_fetch_key(p, t.id, "dave@example.net", kek, &info), RG_PROVIDER_NO_ACCOUNT);
    assert_string_equal(info.code, "no_account");
    /* someone with an account who is not a recipient */
    assert_int_equal(rg_provider_fetch_key(p, t.id, "alice@example.com", kek, &info), RG_PROVIDER_NOT_ALLOWED);
    assert_string_equal(info.code, "not_a_recipient");
    assert_int_equal(rg_provider_fetch_key(p, unknown, "bob@example.org", kek, &info), RG_PROVIDER_NOT_FOUND);

    assert_int_equal(rg_provider_events(p, t.id, &ev, &info), RG_PROVIDER_OK);
    assert_int_equal(ev.n, 2);
    assert_string_equal(ev.ev[0].type, "created");
    assert_string_equal(ev.ev[1].type, "key_retrieved");
    assert_string_equal(ev.ev[1].recipient, "bob@example.org");
    assert_int_equal(ev.ev[1].gateway, 1);
    assert_string_equal(ev.ev[1].ip, "127.0.0.1");
    rg_pj_events_free(&ev);
    assert_int_equal(rg_provider_events(p, unknown, &ev, &info), RG_PROVIDER_NOT_FOUND);
    assert_int_equal(sh("cd %s && %s -c p.conf transaction show %s | grep -q 'key_retrieved.*bob@example.org'",
                        dir, provider_bin, t.id_hex), 0);
    rg_provider_free(p);
}

static long long wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Transaction ids: the creation time in ms (6 bytes, big-endian), then 10
 * random bytes (doc/provider-protocol.md, "Values"). */
static void test_txn_id_time_ordered(void **state)
{
    struct rg_provider *p = gw1();
    struct rg_provider_info info;
    struct rg_provider_txn t[4];
    const char *rcpts[] = { "bob@example.org" };
    uint8_t sha[32];
    long long before, after, prev = -1;

    (void)state;
    before = wall_ms();
    for (int i = 0; i < 4; i++) {
        random_sha(sha);
        assert_int_equal(rg_provider_create(p, "alice@example.com", rcpts, 1, "<order@example.com>", sha,
                                            &t[i], &info), RG_PROVIDER_OK);
    }
    after = wall_ms();
    for (int i = 0; i < 4; i++) {
        long long ms = 0;
        for (int k = 0; k < 6; k++)
            ms = ms << 8 | t[i].id[k];
        assert_in_range(ms, before, after);
        assert_true(ms >= prev);
        prev = ms;
        for (int k = 0; k < i; k++)
            assert_memory_not_equal(t[i].id + 6, t[k].id + 6, 10);
        /* the key is still random and the hex form is the same bytes */
        assert_memory_not_equal(t[i].kek, t[(i + 1) % 4].kek, 32);
        char hex[3];
        snprintf(hex, sizeof(hex), "%02x", t[i].id[0]);
        assert_memory_equal(t[i].id_hex, hex, 2);
    }
    rg_provider_free(p);
}

static void test_idempotent_retry(void **state)
{
    struct rg_provider *p = gw1();
    struct rg_provider_info info;
    struct rg_provider_txn a, b;
    const char *r1[] = { "bob@example.org", "x@example.net" };
    const char *r1_again[] = { "X@example.net", "bob@example.org", "bob@example.org" };
    const char *r2[] = { "bob@example.org" };
    uint8_t sha[32];

    (void)state;
    random_sha(sha);
    assert_int_equal(rg_provider_create(p, "alice@example.com", r1, 2, "<m2@x>", sha, &a, &info), RG_PROVIDER_OK);
    /* the same request again (lost answer): same transaction and key */
    assert_int_equal(rg_provider_create(p, "alice@example.com", r1_again, 3, "<m2@x>", sha, &b, &info),
                     RG_PROVIDER_OK);
    assert_true(b.replayed);
    assert_memory_equal(a.id, b.id, 16);
    assert_memory_equal(a.kek, b.kek, 32);
    /* same digest, other envelope */
    assert_int_equal(rg_provider_create(p, "alice@example.com", r2, 1, "<m2@x>", sha, &b, &info),
                     RG_PROVIDER_CONFLICT);
    assert_true(rg_provider_is_temporary(RG_PROVIDER_CONFLICT));
    /* another gateway with the same digest gets its own transaction: none
     * here, but a new digest makes a new one */
    sha[0] ^= 1;
    assert_int_equal(rg_provider_create(p, "alice@example.com", r1, 2, "<m2@x>", sha, &b, &info), RG_PROVIDER_OK);
    assert_false(b.replayed);
    assert_memory_not_equal(a.id, b.id, 16);
    rg_provider_free(p);
}

static void test_sender_without_account(void **state)
{
    struct rg_provider *p = gw1();
    struct rg_provider_info info;
    struct rg_provider_txn t;
    const char *r[] = { "bob@example.org" };
    uint8_t sha[32];

    (void)state;
    random_sha(sha);
    assert_int_equal(rg_provider_create(p, "mallory@example.com", r, 1, "", sha, &t, &info), RG_PROVIDER_NO_ACCOUNT);
    assert_string_equal(info.code, "sender_no_account");
    assert_int_equal(info.http_status, 422);
    /* invalid input is refused before anything is sent */
    assert_int_equal(rg_provider_create(p, "no-at-sign", r, 1, "", sha, &t, &info), RG_PROVIDER_REJECTED);
    rg_provider_free(p);
}

static void expect_unauthorized(const char *cert, const char *key, const char *code)
{
    struct rg_provider *p = client_for(url, "data/ca.crt", cert, key, 5000, 0, 0);
    struct rg_provider_info info;

    assert_int_equal(rg_provider_account(p, "alice@example.com", &info), RG_PROVIDER_UNAUTHORIZED);
    assert_string_equal(info.code, code);
    assert_true(rg_provider_is_temporary(RG_PROVIDER_UNAUTHORIZED));
    rg_provider_free(p);
}

static void test_removed_gateway(void **state)
{
    (void)state;
    expect_unauthorized("gw3.crt", "gw3.key", "gateway_removed");
}

static void test_address_not_allowed(void **state)
{
    (void)state;
    expect_unauthorized("gw2.crt", "gw2.key", "ip_not_allowed");
}

static void test_client_cert_other_ca(void **state)
{
    (void)state;
    expect_unauthorized("rogue.crt", "rogue.key", "certificate_invalid");
}

static void test_expired_certificate(void **state)
{
    struct rg_provider_info info;
    enum rg_provider_status st = RG_PROVIDER_OK;

    (void)state;
    /* signed with --days 0: expired once its second has passed */
    for (int i = 0; i < 4; i++) {
        struct rg_provider *p = client_for(url, "data/ca.crt", "gw4.crt", "gw4.key", 5000, 0, 0);
        st = rg_provider_account(p, "alice@example.com", &info);
        rg_provider_free(p);
        if (st == RG_PROVIDER_UNAUTHORIZED && strcmp(info.code, "certificate_expired") == 0)
            break;
        sleep(1);
    }
    assert_int_equal(st, RG_PROVIDER_UNAUTHORIZED);
    assert_string_equal(info.code, "certificate_expired");
}

static void test_server_ca_mismatch(void **state)
{
    /* the client pins a CA that did not issue the provider's certificate */
    struct rg_provider *p = client_for(url, "rogue.crt", "gw1.crt", "gw1.key", 5000, 0, 0);
    struct rg_provider_info info;

    (void)state;
    assert_int_equal(rg_provider_health(p, NULL, &info), RG_PROVIDER_TEMPFAIL);
    assert_int_equal(info.http_status, 0);
    rg_provider_free(p);
}

static void test_server_down(void **state)
{
    char u[64];
    struct rg_provider *p;
    struct rg_provider_info info;

    (void)state;
    snprintf(u, sizeof(u), "127.0.0.1:%d", free_port());
    p = client_for(u, "data/ca.crt", "gw1.crt", "gw1.key", 2000, 0, 0);
    assert_int_equal(rg_provider_account(p, "alice@example.com", &info), RG_PROVIDER_TEMPFAIL);
    rg_provider_free(p);
}

/* ---- a server that accepts and never answers ------------------------- */

static void test_slow_server(void **state)
{
    int port = free_port(), lfd = listen_on(port), cfd;
    char u[64];
    struct rg_provider *p;
    struct rg_provider_info info;
    struct timespec t0, t1;

    (void)state;
    assert_true(lfd >= 0);
    snprintf(u, sizeof(u), "https://127.0.0.1:%d", port);
    p = client_for(u, "data/ca.crt", "gw1.crt", "gw1.key", 700, 0, 0);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    /* the kernel completes the TCP handshake from the backlog */
    assert_int_equal(rg_provider_account(p, "alice@example.com", &info), RG_PROVIDER_TEMPFAIL);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double s = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    assert_true(s >= 0.6 && s < 3.0);
    cfd = accept(lfd, NULL, NULL);
    if (cfd >= 0)
        close(cfd);
    close(lfd);
    rg_provider_free(p);
}

/* ---- a TLS server with the provider's certificate that answers garbage */

struct garbage {
    int lfd;
    volatile int stop;
    const char *response;       /* raw HTTP response, sent as is */
    size_t response_len;
    int drip_ms;                /* > 0: one byte at a time, this far apart */
    SSL_CTX *ctx;
};

static void *garbage_main(void *arg)
{
    struct garbage *g = arg;

    while (!g->stop) {
        struct pollfd pfd = { g->lfd, POLLIN, 0 };
        if (poll(&pfd, 1, 100) <= 0)
            continue;
        int fd = accept(g->lfd, NULL, NULL);
        if (fd < 0)
            continue;
        SSL *ssl = SSL_new(g->ctx);
        SSL_set_fd(ssl, fd);
        if (SSL_accept(ssl) == 1) {
            char req[8192];
            size_t len = 0;
            /* read the request head; bodies are small and arrive with it */
            while (len < sizeof(req) - 1) {
                int n = SSL_read(ssl, req + len, (int)(sizeof(req) - 1 - len));
                if (n <= 0)
                    break;
                len += (size_t)n;
                req[len] = 0;
                char *end = strstr(req, "\r\n\r\n");
                if (end) {
                    const char *cl = strcasestr(req, "\r\nContent-Length:");
                    size_t need = (size_t)(end + 4 - req) + (cl ? strtoul(cl + 17, NULL, 10) : 0);
                    if (len >= need)
                        break;
                }
            }
            size_t off = 0;
            while (off < g->response_len && !g->stop) {
                size_t want = g->drip_ms > 0 ? 1 : g->response_len - off;
                int n = SSL_write(ssl, g->response + off, (int)want);
                if (n <= 0)
                    break;
                off += (size_t)n;
                if (g->drip_ms > 0)
                    usleep((useconds_t)g->drip_ms * 1000);
            }
            SSL_shutdown(ssl);
        }
        SSL_free(ssl);
        close(fd);
    }
    return NULL;
}

static char *http_response(const char *status, const char *body)
{
    char *s;
    if (asprintf(&s, "HTTP/1.1 %s\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
                 "Connection: close\r\n\r\n%s", status, strlen(body), body) < 0)
        abort();
    return s;
}

static void test_garbage_responses(void **state)
{
    static const struct { const char *status, *body; } cases[] = {
        { "200 OK", "this is not json" },
        { "200 OK", "" },
        { "200 OK", "[1,2,3]" },
        { "200 OK", "{\"address\":\"alice@example.com\"}" },
        { "200 OK", "{\"address\":\"alice@example.com\",\"exists\":\"yes\"}" },
        { "200 OK", "{\"address\":\"eve@example.com\",\"exists\":true}" },
        { "200 OK", "{\"address\":\"alice@example.com\",\"exists\":true" },
        { "200 OK", "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]" },
        { "500 Internal Server Error", "<html>oops</html>" },
        { "503 Service Unavailable", "{\"error\":{\"code\":\"unavailable\",\"message\":\"busy\"}}" },
        { "404 Not Found", "<html>not found</html>" },
        { "418 I'm a teapot", "{\"error\":{\"code\":\"teapot\",\"message\":\"?\"}}" },
        { "302 Found", "{}" },
    };
    struct garbage g;
    pthread_t th;
    int port = free_port();
    char u[64], cert[256], key[256];
    struct rg_provider *p;
    struct rg_provider_info info;

    (void)state;
    memset(&g, 0, sizeof(g));
    g.lfd = listen_on(port);
    assert_true(g.lfd >= 0);
    g.ctx = SSL_CTX_new(TLS_server_method());
    snprintf(cert, sizeof(cert), "%s/data/server.crt", dir);
    snprintf(key, sizeof(key), "%s/data/server.key", dir);
    assert_int_equal(SSL_CTX_use_certificate_chain_file(g.ctx, cert), 1);
    assert_int_equal(SSL_CTX_use_PrivateKey_file(g.ctx, key, SSL_FILETYPE_PEM), 1);
    snprintf(u, sizeof(u), "https://localhost:%d", port);
    p = client_for(u, "data/ca.crt", "gw1.crt", "gw1.key", 3000, 0, 0);

    char *resp = http_response(cases[0].status, cases[0].body);
    g.response = resp;
    g.response_len = strlen(resp);
    assert_int_equal(pthread_create(&th, NULL, garbage_main, &g), 0);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *r = http_response(cases[i].status, cases[i].body);
        g.response = r;
        g.response_len = strlen(r);
        enum rg_provider_status st = rg_provider_account(p, "alice@example.com", &info);
        if (st != RG_PROVIDER_TEMPFAIL)
            fprintf(stderr, "# case %zu (%s): %s\n", i, cases[i].status, rg_provider_strerror(st));
        assert_int_equal(st, RG_PROVIDER_TEMPFAIL);
        free(resp);
        resp = r;
    }
    /* a key answer whose kek is short, and one for another transaction */
    {
        uint8_t id[16] = { 1 }, kek[32];
        char *r = http_response("200 OK", "{\"id\":\"01000000000000000000000000000000\","
                                "\"recipient\":\"bob@example.org\",\"kek\":\"abcd\"}");
        g.response = r;
        g.response_len = strlen(r);
        assert_int_equal(rg_provider_fetch_key(p, id, "bob@example.org", kek, &info), RG_PROVIDER_TEMPFAIL);
        free(resp);
        resp = r;
        r = http_response("200 OK", "{\"id\":\"02000000000000000000000000000000\",\"recipient\":\"bob@example.org\","
                          "\"kek\":\"000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\"}");
        g.response = r;
        g.response_len = strlen(r);
        assert_int_equal(rg_provider_fetch_key(p, id, "bob@example.org", kek, &info), RG_PROVIDER_TEMPFAIL);
        free(resp);
        resp = r;
    }
    /* a body longer than the client's 1 MiB limit */
    {
        size_t n = 2u * 1024 * 1024;
        char *big = malloc(n + 200);
        int h = snprintf(big, 200, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                         "Content-Length: %zu\r\nConnection: close\r\n\r\n", n);
        memset(big + h, ' ', n);
        g.response = big;
        g.response_len = (size_t)h + n;
        assert_int_equal(rg_provider_account(p, "alice@example.com", &info), RG_PROVIDER_TEMPFAIL);
        free(resp);
        resp = big;
    }
    /* a body cut short: Content-Length promises more than arrives */
    {
        char *r = strdup("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100\r\n"
                         "Connection: close\r\n\r\n{\"address\":\"alice@example.com\",\"exists\":true}");
        g.response = r;
        g.response_len = strlen(r);
        assert_int_equal(rg_provider_account(p, "alice@example.com", &info), RG_PROVIDER_TEMPFAIL);
        free(resp);
        resp = r;
    }
    g.stop = 1;
    pthread_join(th, NULL);
    free(resp);
    close(g.lfd);
    SSL_CTX_free(g.ctx);
    rg_provider_free(p);
}

/* ---- bad answers (issue 7): content types, JSON bombs, slow drip ------ */

static void garbage_start(struct garbage *g, pthread_t *th, struct rg_provider **p, long timeout_ms)
{
    int port = free_port();
    char u[64], cert[256], key[256];

    memset(g, 0, sizeof(*g));
    g->lfd = listen_on(port);
    assert_true(g->lfd >= 0);
    g->ctx = SSL_CTX_new(TLS_server_method());
    snprintf(cert, sizeof(cert), "%s/data/server.crt", dir);
    snprintf(key, sizeof(key), "%s/data/server.key", dir);
    assert_int_equal(SSL_CTX_use_certificate_chain_file(g->ctx, cert), 1);
    assert_int_equal(SSL_CTX_use_PrivateKey_file(g->ctx, key, SSL_FILETYPE_PEM), 1);
    g->response = "";
    snprintf(u, sizeof(u), "https://localhost:%d", port);
    *p = client_for(u, "data/ca.crt", "gw1.crt", "gw1.key", timeout_ms, 0, 0);
    assert_int_equal(pthread_create(th, NULL, garbage_main, g), 0);
}

static void garbage_stop(struct garbage *g, pthread_t th, struct rg_provider *p)
{
    g->stop = 1;
    pthread_join(th, NULL);
    close(g->lfd);
    SSL_CTX_free(g->ctx);
    rg_provider_free(p);
}

static char *typed_response(const char *ctype, const char *body)
{
    char *s, ct[200] = "";

    if (ctype != NULL)
        snprintf(ct, sizeof(ct), "Content-Type: %s\r\n", ctype);
    if (asprintf(&s, "HTTP/1.1 200 OK\r\n%sContent-Length: %zu\r\nConnection: close\r\n\r\n%s",
                 ct, strlen(body), body) < 0)
        abort();
    return s;
}

static double since(const struct timespec *t0)
{
    struct timespec t1;

    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (double)(t1.tv_sec - t0->tv_sec) + (double)(t1.tv_nsec - t0->tv_nsec) / 1e9;
}

/* A well-formed account answer is only an answer with the JSON media type. */
static void test_content_types(void **state)
{
    static const struct { const char *ctype; enum rg_provider_status want; } cases[] = {
        { "application/json", RG_PROVIDER_OK },
        { "application/json; charset=utf-8", RG_PROVIDER_OK },
        { "Application/JSON;charset=UTF-8", RG_PROVIDER_OK },
        { "text/html", RG_PROVIDER_TEMPFAIL },
        { "text/html; charset=utf-8", RG_PROVIDER_TEMPFAIL },
        { "text/plain", RG_PROVIDER_TEMPFAIL },
        { "application/jsonp", RG_PROVIDER_TEMPFAIL },
        { "application/json-seq", RG_PROVIDER_TEMPFAIL },
        { "application/octet-stream", RG_PROVIDER_TEMPFAIL },
        { "", RG_PROVIDER_TEMPFAIL },
        { NULL, RG_PROVIDER_TEMPFAIL },         /* no Content-Type at all */
    };
    struct garbage g;
    pthread_t th;
    struct rg_provider *p;
    struct rg_provider_info info;

    (void)state;
    garbage_start(&g, &th, &p, 3000);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *r = typed_response(cases[i].ctype, "{\"address\":\"alice@example.com\",\"exists\":true}");
        g.response = r;
        g.response_len = strlen(r);
        enum rg_provider_status st = rg_provider_account(p, "alice@example.com", &info);
        if (st != cases[i].want)
            fprintf(stderr, "# content type %s: %s (%s)\n", cases[i].ctype ? cases[i].ctype : "none",
                    rg_provider_strerror(st), info.reason);
        assert_int_equal(st, cases[i].want);
        if (st != RG_PROVIDER_OK)
            assert_non_null(strstr(info.reason, "not application/json"));
        g.response = "";
        free(r);
    }
    /* an error answer that is an HTML page: temporary, whatever its status */
    char *r = strdup("HTTP/1.1 403 Forbidden\r\nContent-Type: text/html\r\nContent-Length: 62\r\n"
                     "Connection: close\r\n\r\n{\"error\":{\"code\":\"no_account\",\"message\":\"looks like JSON\"}}");
    g.response = r;
    g.response_len = strlen(r);
    assert_int_equal(rg_provider_account(p, "alice@example.com", &info), RG_PROVIDER_TEMPFAIL);
    g.response = "";
    free(r);
    garbage_stop(&g, th, p);
}

/* JSON bombs within the 1 MiB limit: deep, wide, long. Each is refused
 * (temporary failure), quickly and without a crash. */
static void test_json_bombs(void **state)
{
    const size_t n = 1000 * 1000;
    struct garbage g;
    pthread_t th;
    struct rg_provider *p;
    struct rg_provider_info info;
    char *body = malloc(n + 100), *r;
    struct timespec t0;
    size_t k;

    (void)state;
    assert_non_null(body);
    garbage_start(&g, &th, &p, 5000);
    for (int which = 0; which < 6; which++) {
        k = 0;
        switch (which) {
        case 0:     /* 500,000 levels of arrays */
            memset(body, '[', n / 2);
            memset(body + n / 2, ']', n / 2);
            k = n;
            break;
        case 1:     /* 100,000 levels of objects */
            for (int i = 0; i < 100000; i++)
                k += (size_t)sprintf(body + k, "{\"a\":");
            for (int i = 0; i < 100000; i++)
                body[k++] = '}';
            break;
        case 2:     /* a flat array of 500,000 numbers */
            body[k++] = '[';
            for (int i = 0; i < 499999; i++) {
                body[k++] = '0';
                body[k++] = ',';
            }
            body[k++] = '0';
            body[k++] = ']';
            break;
        case 3:     /* 80,000 members before the real ones (over RG_PJ_MAX_ELEMENTS) */
            body[k++] = '{';
            for (int i = 0; i < 80000; i++)
                k += (size_t)sprintf(body + k, "\"k%06d\":0,", i);
            k += (size_t)sprintf(body + k, "\"address\":\"alice@example.com\",\"exists\":true}");
            break;
        case 4:     /* an address of 1 MB */
            k = (size_t)sprintf(body, "{\"address\":\"");
            memset(body + k, 'a', n - 100);
            k += n - 100;
            k += (size_t)sprintf(body + k, "@example.com\",\"exists\":true}");
            break;
        case 5:     /* 160,000 escaped characters in a string */
            k = (size_t)sprintf(body, "{\"address\":\"alice@example.com\",\"exists\":true,\"x\":\"");
            for (int i = 0; i < 160000; i++)
                k += (size_t)sprintf(body + k, "\\u00e4");
            k += (size_t)sprintf(body + k, "\"}");
            break;
        }
        body[k] = 0;
        r = typed_response("application/json", body);
        g.response = r;
        g.response_len = strlen(r);
        clock_gettime(CLOCK_MONOTONIC, &t0);
        enum rg_provider_status st = rg_provider_account(p, "alice@example.com", &info);
        double s = since(&t0);
        fprintf(stderr, "# JSON bomb %d (%zu bytes): %s in %.3f s: %s\n", which, k,
                rg_provider_strerror(st), s, info.reason);
        /* 5 is a well-formed answer with an extra member: accepted */
        assert_int_equal(st, which == 5 ? RG_PROVIDER_OK : RG_PROVIDER_TEMPFAIL);
        /* 0-3 are refused before yajl builds a tree of them */
        if (which <= 3)
            assert_non_null(strstr(info.reason, "too many elements"));
        assert_true(s < 2.0);
        g.response = "";
        free(r);
    }
    garbage_stop(&g, th, p);
    free(body);
}

/* A well-formed answer sent one byte every 100 ms: the whole request is
 * bounded by provider_timeout (here 1.5 s), whatever the progress. */
static void test_slow_drip(void **state)
{
    struct garbage g;
    pthread_t th;
    struct rg_provider *p;
    struct rg_provider_info info;
    struct timespec t0;
    char *r;

    (void)state;
    garbage_start(&g, &th, &p, 1500);
    r = typed_response("application/json", "{\"address\":\"alice@example.com\",\"exists\":true}");
    g.response = r;
    g.response_len = strlen(r);
    g.drip_ms = 100;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_int_equal(rg_provider_account(p, "alice@example.com", &info), RG_PROVIDER_TEMPFAIL);
    double s = since(&t0);
    assert_true(s >= 1.4 && s < 3.0);
    assert_int_equal(info.http_status, 0);
    assert_non_null(strstr(info.reason, "imeout"));
    garbage_stop(&g, th, p);
    free(r);
}

/* Oversized answers without a Content-Length (chunked): the 1 MiB limit
 * holds while the body streams in. */
static void test_oversized_chunked(void **state)
{
    struct garbage g;
    pthread_t th;
    struct rg_provider *p;
    struct rg_provider_info info;
    size_t chunk = 65536, nchunks = 40, k;
    char *r = malloc(200 + nchunks * (chunk + 16));

    (void)state;
    assert_non_null(r);
    k = (size_t)sprintf(r, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                           "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n");
    for (size_t i = 0; i < nchunks; i++) {
        k += (size_t)sprintf(r + k, "%zx\r\n", chunk);
        memset(r + k, i == 0 ? '[' : ' ', chunk);
        k += chunk;
        k += (size_t)sprintf(r + k, "\r\n");
    }
    k += (size_t)sprintf(r + k, "0\r\n\r\n");
    garbage_start(&g, &th, &p, 5000);
    g.response = r;
    g.response_len = k;
    assert_int_equal(rg_provider_account(p, "alice@example.com", &info), RG_PROVIDER_TEMPFAIL);
    assert_int_equal(info.http_status, 0);      /* the transfer was aborted */
    garbage_stop(&g, th, p);
    free(r);
}

static void test_config_errors(void **state)
{
    struct rg_provider_config cfg;
    char err[256];

    (void)state;
    memset(&cfg, 0, sizeof(cfg));
    cfg.url = "http://localhost:1";
    cfg.ca_file = cfg.cert_file = "/etc/hostname";
    assert_null(rg_provider_new(&cfg, err, sizeof(err)));
    assert_non_null(strstr(err, "https"));
    cfg.url = "localhost:1";
    cfg.ca_file = "/nonexistent/ca.crt";
    assert_null(rg_provider_new(&cfg, err, sizeof(err)));
    assert_non_null(strstr(err, "/nonexistent/ca.crt"));

    /* a key that group or others may read is refused (issue 7, security) */
    char ca[256], crt[256], key[256], open_key[256];
    snprintf(ca, sizeof(ca), "%s/data/ca.crt", dir);
    snprintf(crt, sizeof(crt), "%s/gw1.crt", dir);
    snprintf(key, sizeof(key), "%s/gw1.key", dir);
    snprintf(open_key, sizeof(open_key), "%s/gw1-open.key", dir);
    assert_int_equal(sh("cp %s %s && chmod 640 %s", key, open_key, open_key), 0);
    cfg.url = "https://localhost:1";
    cfg.ca_file = ca;
    cfg.cert_file = crt;
    cfg.key_file = open_key;
    assert_null(rg_provider_new(&cfg, err, sizeof(err)));
    assert_non_null(strstr(err, "is accessible to group or others (mode 640): chmod 600 it"));
    assert_int_equal(sh("chmod 600 %s", open_key), 0);
    struct rg_provider *p = rg_provider_new(&cfg, err, sizeof(err));
    assert_non_null(p);
    rg_provider_free(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_health_keepalive),
        cmocka_unit_test(test_key_cert_pem),
        cmocka_unit_test(test_contact_file),
        cmocka_unit_test(test_idle_connection_closed),
        cmocka_unit_test(test_account_yes_no),
        cmocka_unit_test(test_account_cache),
        cmocka_unit_test(test_create_and_fetch),
        cmocka_unit_test(test_txn_id_time_ordered),
        cmocka_unit_test(test_idempotent_retry),
        cmocka_unit_test(test_sender_without_account),
        cmocka_unit_test(test_removed_gateway),
        cmocka_unit_test(test_address_not_allowed),
        cmocka_unit_test(test_client_cert_other_ca),
        cmocka_unit_test(test_expired_certificate),
        cmocka_unit_test(test_server_ca_mismatch),
        cmocka_unit_test(test_server_down),
        cmocka_unit_test(test_slow_server),
        cmocka_unit_test(test_garbage_responses),
        cmocka_unit_test(test_content_types),
        cmocka_unit_test(test_json_bombs),
        cmocka_unit_test(test_slow_drip),
        cmocka_unit_test(test_oversized_chunked),
        cmocka_unit_test(test_config_errors),
    };
    signal(SIGPIPE, SIG_IGN);
    return cmocka_run_group_tests_name("provider_client", tests, group_setup, group_teardown);
}
