/*
 * test_conffile.c - unit tests of lib/conffile.c: regigate.conf(5) parsing,
 * validation and the exact "FILE:LINE: message" of every error.
 */
#include "config.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ftw.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conffile.h"

/* A valid route, three lines. */
#define ROUTE_OUT "[route out]\nlisten = 127.0.0.1:10025\nreinject = 127.0.0.1:10026\n"

static char tmpdir[512];
static char conf_path[600];

struct bad_case {
    const char *text;
    int line;               /* 0: "FILE: message" */
    const char *msg;
};

static int group_setup(void **state)
{
    const char *dir = getenv("TMPDIR");

    (void)state;
    if (dir == NULL || dir[0] == '\0' || strlen(dir) > 400)
        dir = "/tmp";
    snprintf(tmpdir, sizeof(tmpdir), "%s/rg-test-conffile-XXXXXX", dir);
    if (mkdtemp(tmpdir) == NULL)
        return -1;
    snprintf(conf_path, sizeof(conf_path), "%s/regigate.conf", tmpdir);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    unlink(conf_path);
    return rmdir(tmpdir);
}

static void write_conf(const char *text, size_t len)
{
    FILE *fp = fopen(conf_path, "w");

    assert_non_null(fp);
    assert_int_equal(fwrite(text, 1, len, fp), len);
    assert_int_equal(fclose(fp), 0);
}

/* Load text that must be valid; fails the test with the error otherwise. */
static struct rg_conf *load_ok(const char *text)
{
    char err[1024] = "";
    struct rg_conf *conf;

    write_conf(text, strlen(text));
    conf = rg_conf_load(conf_path, err, sizeof(err));
    assert_string_equal(err, "");
    assert_non_null(conf);
    return conf;
}

static void expect_error_at(const char *path, int line, const char *msg, const char *err)
{
    char want[2048];

    if (line > 0)
        snprintf(want, sizeof(want), "%s:%d: %s", path, line, msg);
    else
        snprintf(want, sizeof(want), "%s: %s", path, msg);
    assert_string_equal(err, want);
}

/* Load len bytes that must be refused with exactly "FILE:line: msg". */
static void expect_error_n(const char *text, size_t len, int line, const char *msg)
{
    char err[1024] = "";
    struct rg_conf *conf;

    write_conf(text, len);
    conf = rg_conf_load(conf_path, err, sizeof(err));
    expect_error_at(conf_path, line, msg, err);
    assert_null(conf);
}

static void expect_error(const char *text, int line, const char *msg)
{
    expect_error_n(text, strlen(text), line, msg);
}

static void expect_errors(const struct bad_case *cases, size_t n)
{
    for (size_t i = 0; i < n; i++)
        expect_error(cases[i].text, cases[i].line, cases[i].msg);
}

#define EXPECT_ERRORS(cases) expect_errors(cases, sizeof(cases) / sizeof(cases[0]))

/* ---- good files --------------------------------------------------------------- */

static void test_full_file(void **state)
{
    const struct passwd *pw = getpwuid(geteuid());
    const char *user = pw != NULL ? pw->pw_name : "root";
    char text[2048];
    struct rg_conf *conf;
    const struct rg_route *r;

    (void)state;
    snprintf(text, sizeof(text),
             "# every key\n"
             "[global]\n"
             "user = %s\n"
             "spool_dir = /var/tmp/rg-spool\n"
             "pid_file = /var/tmp/rg/regigated.pid\n"
             "myhostname = gw.example.org\n"
             "syslog_facility = local3\n"
             "allow_remote_listen = no\n"
             "max_servers = 20\n"
             "min_spare_servers = 2\n"
             "max_spare_servers = 6\n"
             "max_requests = 500\n"
             "child_timeout = 500\n"
             "smtp_timeout = 200\n"
             "reinject_timeout = 100\n"
             "shutdown_timeout = 30\n"
             "spool_memory_limit = 256k\n"
             "\n"
             "[route outbound]\n"
             "listen = 127.0.0.1:10025\n"
             "protocol = lmtp\n"
             "reinject = 127.0.0.1:10026\n"
             "process = recipient\n"
             "max_message_size = 10m\n"
             "max_recipients = 50\n"
             "\n"
             "[route inbound]\n"
             "listen = localhost:10027\n"
             "reinject = mx.example.org:25\n",
             user);
    conf = load_ok(text);

    assert_string_equal(conf->path, conf_path);
    assert_string_equal(conf->user, user);
    assert_string_equal(conf->spool_dir, "/var/tmp/rg-spool");
    assert_string_equal(conf->pid_file, "/var/tmp/rg/regigated.pid");
    assert_string_equal(conf->myhostname, "gw.example.org");
    assert_string_equal(conf->syslog_facility, "local3");
    assert_int_equal(conf->allow_remote_listen, 0);
    assert_int_equal(conf->max_servers, 20);
    assert_int_equal(conf->min_spare_servers, 2);
    assert_int_equal(conf->max_spare_servers, 6);
    assert_int_equal(conf->max_requests, 500);
    assert_int_equal(conf->child_timeout, 500);
    assert_int_equal(conf->smtp_timeout, 200);
    assert_int_equal(conf->reinject_timeout, 100);
    assert_int_equal(conf->shutdown_timeout, 30);
    assert_int_equal(conf->spool_memory_limit, 256 * 1024);

    assert_int_equal(conf->nroutes, 2);
    r = &conf->routes[0];
    assert_string_equal(r->name, "outbound");
    assert_int_equal(r->line, 19);
    assert_string_equal(r->listen.host, "127.0.0.1");
    assert_int_equal(r->listen.port, 10025);
    assert_int_equal(r->protocol, RG_PROTO_LMTP);
    assert_string_equal(r->reinject.host, "127.0.0.1");
    assert_int_equal(r->reinject.port, 10026);
    assert_int_equal(r->process, RG_PROCESS_RECIPIENT);
    assert_int_equal(r->max_message_size, 10 * 1024 * 1024);
    assert_int_equal(r->max_recipients, 50);

    r = &conf->routes[1];
    assert_string_equal(r->name, "inbound");
    assert_int_equal(r->line, 27);
    assert_string_equal(r->listen.host, "localhost");
    assert_int_equal(r->listen.port, 10027);
    assert_string_equal(r->reinject.host, "mx.example.org");
    assert_int_equal(r->reinject.port, 25);
    /* route defaults */
    assert_int_equal(r->protocol, RG_PROTO_SMTP);
    assert_int_equal(r->process, RG_PROCESS_MESSAGE);
    assert_int_equal(r->max_message_size, 52428800);
    assert_int_equal(r->max_recipients, 1000);

    assert_null(rg_conf_free(conf));
}

static void test_defaults(void **state)
{
    char host[256];
    struct rg_conf *conf;

    (void)state;
    conf = load_ok(ROUTE_OUT);
    assert_null(conf->user);
    assert_string_equal(conf->spool_dir, "/var/spool/regigate");
    assert_string_equal(conf->pid_file, "/run/regigate/regigated.pid");
    assert_int_equal(gethostname(host, sizeof(host)), 0);
    host[sizeof(host) - 1] = '\0';
    assert_string_equal(conf->myhostname, host);
    assert_string_equal(conf->syslog_facility, "mail");
    assert_int_equal(conf->allow_remote_listen, 0);
    assert_int_equal(conf->max_servers, 8);
    assert_int_equal(conf->min_spare_servers, 1);
    assert_int_equal(conf->max_spare_servers, 4);
    assert_int_equal(conf->max_requests, 1000);
    assert_int_equal(conf->child_timeout, 540);
    assert_int_equal(conf->smtp_timeout, 300);
    assert_int_equal(conf->reinject_timeout, 120);
    assert_int_equal(conf->shutdown_timeout, 60);
    assert_int_equal(conf->spool_memory_limit, 131072);
    assert_int_equal(conf->nroutes, 1);
    assert_int_equal(conf->routes[0].line, 1);
    assert_int_equal(conf->routes[0].protocol, RG_PROTO_SMTP);
    assert_int_equal(conf->routes[0].process, RG_PROCESS_MESSAGE);
    assert_int_equal(conf->routes[0].max_message_size, 52428800);
    assert_int_equal(conf->routes[0].max_recipients, 1000);
    rg_conf_free(conf);
}

static void test_route_lookup_and_free(void **state)
{
    struct rg_conf *conf;
    const struct rg_route *r;

    (void)state;
    conf = load_ok(ROUTE_OUT "[route in]\nlisten = 127.0.0.1:10027\nreinject = 127.0.0.1:10028\n");
    r = rg_conf_route(conf, "in");
    assert_ptr_equal(r, &conf->routes[1]);
    assert_int_equal(r->listen.port, 10027);
    assert_ptr_equal(rg_conf_route(conf, "out"), &conf->routes[0]);
    assert_null(rg_conf_route(conf, "OUT"));
    assert_null(rg_conf_route(conf, "inbound"));
    assert_null(rg_conf_free(conf));
    assert_null(rg_conf_free(NULL));
}

static void test_comments_and_inline_comments(void **state)
{
    struct rg_conf *conf;

    (void)state;
    conf = load_ok("# a comment\n"
                   "; another comment\n"
                   "\n"
                   "[global] ; the globals\n"
                   "   max_servers = 12 ; twelve\n"
                   "\tmyhostname=gw.example.org\n"
                   "max_requests = 7 ;\n"
                   "[route out]   # the outbound route\n"
                   "listen = 127.0.0.1:10025 ; upstream\n"
                   "  reinject = 127.0.0.1:10026\n"
                   "     \n");
    assert_int_equal(conf->max_servers, 12);
    assert_string_equal(conf->myhostname, "gw.example.org");
    assert_int_equal(conf->max_requests, 7);
    assert_int_equal(conf->routes[0].listen.port, 10025);
    assert_int_equal(conf->routes[0].reinject.port, 10026);
    rg_conf_free(conf);

    /* ';' needs a blank before it, '#' only starts a comment at the start */
    static const struct bad_case cases[] = {
        { "[global]\nmyhostname = gw;x\n", 2, "myhostname must be a host name, not 'gw;x'" },
        { "[global]\nmax_servers = 12 # twelve\n", 2,
          "max_servers must be an integer, not '12 # twelve'" },
    };
    EXPECT_ERRORS(cases);
}

static void test_crlf_bom_and_no_final_newline(void **state)
{
    struct rg_conf *conf;

    (void)state;
    conf = load_ok("\xEF\xBB\xBF[global]\r\nmax_servers = 9\r\n"
                   "[route out]\r\nlisten = 127.0.0.1:10025\r\nreinject = 127.0.0.1:10026");
    assert_int_equal(conf->max_servers, 9);
    assert_int_equal(conf->routes[0].reinject.port, 10026);
    rg_conf_free(conf);
}

/* An indented line is an ordinary line, never a continuation value. */
static void test_no_continuation_lines(void **state)
{
    struct rg_conf *conf;

    (void)state;
    conf = load_ok("[route out]\nlisten = 127.0.0.1:10025\n    reinject = 127.0.0.1:10026\n");
    assert_int_equal(conf->routes[0].reinject.port, 10026);
    rg_conf_free(conf);
    expect_error("[global]\nmax_servers = 8\n    9\n" ROUTE_OUT, 3,
                 "syntax error: expected 'key = value'");
}

static void test_ipv6_hostport(void **state)
{
    struct rg_conf *conf;

    (void)state;
    conf = load_ok("[route v6]\nlisten = [::1]:10025\nreinject = [2001:db8::25]:25\n"
                   "[route v4]\nlisten = 127.0.0.2:10025\nreinject = [127.0.0.1]:10026\n");
    assert_string_equal(conf->routes[0].listen.host, "::1");
    assert_int_equal(conf->routes[0].listen.port, 10025);
    assert_string_equal(conf->routes[0].reinject.host, "2001:db8::25");
    assert_int_equal(conf->routes[0].reinject.port, 25);
    assert_string_equal(conf->routes[1].reinject.host, "127.0.0.1");
    rg_conf_free(conf);
}

static void test_hostport_parse(void **state)
{
    static const char *const bad[] = {
        "", "127.0.0.1", "127.0.0.1:", ":25", "host:0", "host:65536", "host:99999999",
        "host:-1", "host:+25", "host:25x", "host: 25", "::1:25", "[::1]25", "[::1]", "[]:25",
        "[::1:25", "[::g]:25", "bad_host:25", "-host:25", "host name:25", "999.1.1.1:25",
        "[::1]:", "a:b:25",
    };
    struct rg_hostport hp = { "unchanged", 7 };

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (rg_hostport_parse(bad[i], &hp) != -1)
            fail_msg("'%s' was accepted", bad[i]);
    }
    assert_string_equal(hp.host, "unchanged");  /* untouched on failure */
    assert_int_equal(hp.port, 7);

    assert_int_equal(rg_hostport_parse("127.0.0.1:10025", &hp), 0);
    assert_string_equal(hp.host, "127.0.0.1");
    assert_int_equal(hp.port, 10025);
    assert_int_equal(rg_hostport_parse("mail.example.org:1", &hp), 0);
    assert_string_equal(hp.host, "mail.example.org");
    assert_int_equal(hp.port, 1);
    assert_int_equal(rg_hostport_parse("[::1]:65535", &hp), 0);
    assert_string_equal(hp.host, "::1");
    assert_int_equal(hp.port, 65535);
    assert_int_equal(rg_hostport_parse("[fe80::1:2]:25", &hp), 0);
    assert_string_equal(hp.host, "fe80::1:2");
    assert_int_equal(rg_hostport_parse("[localhost]:10026", &hp), 0);
    assert_string_equal(hp.host, "localhost");
    assert_int_equal(hp.port, 10026);
}

static void test_host_is_loopback(void **state)
{
    (void)state;
    assert_true(rg_host_is_loopback("127.0.0.1"));
    assert_true(rg_host_is_loopback("127.255.0.9"));
    assert_true(rg_host_is_loopback("::1"));
    assert_true(rg_host_is_loopback("0:0:0:0:0:0:0:1"));
    assert_true(rg_host_is_loopback("::ffff:127.0.0.1"));
    assert_true(rg_host_is_loopback("localhost"));
    assert_true(rg_host_is_loopback("LocalHost"));
    assert_false(rg_host_is_loopback("128.0.0.1"));
    assert_false(rg_host_is_loopback("0.0.0.0"));
    assert_false(rg_host_is_loopback("::"));
    assert_false(rg_host_is_loopback("::2"));
    assert_false(rg_host_is_loopback("192.0.2.1"));
    assert_false(rg_host_is_loopback("localhost.example.org"));
    assert_false(rg_host_is_loopback("mx.example.org"));
}

static void test_sizes(void **state)
{
    static const struct { const char *value; size_t bytes; } cases[] = {
        { "1", 1 }, { "123456", 123456 }, { "1k", 1024 }, { "2K", 2048 },
        { "3m", 3 * 1024 * 1024 }, { "4M", 4 * 1024 * 1024 },
        { "1g", 1024UL * 1024 * 1024 }, { "2G", 2UL * 1024 * 1024 * 1024 },
    };
    char text[256];
    struct rg_conf *conf;

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        snprintf(text, sizeof(text), ROUTE_OUT "max_message_size = %s\n", cases[i].value);
        conf = load_ok(text);
        assert_int_equal(conf->routes[0].max_message_size, cases[i].bytes);
        rg_conf_free(conf);
    }
    conf = load_ok("[global]\nspool_memory_limit = 0\n" ROUTE_OUT);
    assert_int_equal(conf->spool_memory_limit, 0);
    rg_conf_free(conf);
    conf = load_ok("[global]\nspool_memory_limit = 1G\n" ROUTE_OUT);
    assert_int_equal(conf->spool_memory_limit, 1024UL * 1024 * 1024);
    rg_conf_free(conf);
}

/* ---- bad values ------------------------------------------------------------- */

static void test_bad_int(void **state)
{
    static const struct bad_case cases[] = {
        { "[global]\nmax_servers = abc\n" ROUTE_OUT, 2, "max_servers must be an integer, not 'abc'" },
        { "[global]\nmax_servers = 12abc\n" ROUTE_OUT, 2, "max_servers must be an integer, not '12abc'" },
        { "[global]\nmax_servers = 1.5\n" ROUTE_OUT, 2, "max_servers must be an integer, not '1.5'" },
        { "[global]\nmax_servers = -\n" ROUTE_OUT, 2, "max_servers must be an integer, not '-'" },
        { "[global]\nmax_servers = 0\n" ROUTE_OUT, 2, "max_servers must be between 1 and 1000" },
        { "[global]\nmax_servers = 1001\n" ROUTE_OUT, 2, "max_servers must be between 1 and 1000" },
        { "[global]\nmax_servers = -1\n" ROUTE_OUT, 2, "max_servers must be between 1 and 1000" },
        { "[global]\nmax_servers = 99999999999999999999999\n" ROUTE_OUT, 2,
          "max_servers must be between 1 and 1000" },
        { "[global]\nmax_servers = 4294967297\n" ROUTE_OUT, 2,
          "max_servers must be between 1 and 1000" },
        { "[global]\nmin_spare_servers = -1\n" ROUTE_OUT, 2,
          "min_spare_servers must be between 0 and 1000" },
        { "[global]\nmax_spare_servers = 0\n" ROUTE_OUT, 2,
          "max_spare_servers must be between 1 and 1000" },
        { "[global]\nmax_requests = 0\n" ROUTE_OUT, 2, "max_requests must be between 1 and 1000000" },
        { "[global]\nchild_timeout = 86401\n" ROUTE_OUT, 2,
          "child_timeout must be between 1 and 86400" },
        { "[global]\nsmtp_timeout = 0\n" ROUTE_OUT, 2, "smtp_timeout must be between 1 and 3600" },
        { "[global]\nreinject_timeout = 3601\n" ROUTE_OUT, 2,
          "reinject_timeout must be between 1 and 3600" },
        { "[global]\nshutdown_timeout = -5\n" ROUTE_OUT, 2,
          "shutdown_timeout must be between 0 and 3600" },
        { ROUTE_OUT "max_recipients = 0\n", 4, "max_recipients must be between 1 and 100000" },
        { ROUTE_OUT "max_recipients = 100001\n", 4, "max_recipients must be between 1 and 100000" },
    };
    struct rg_conf *conf;

    (void)state;
    EXPECT_ERRORS(cases);
    /* the limits themselves are fine */
    conf = load_ok("[global]\nmax_servers = 1000\nshutdown_timeout = 0\nmin_spare_servers = 0\n"
                   "max_spare_servers = 1\n" ROUTE_OUT);
    assert_int_equal(conf->max_servers, 1000);
    assert_int_equal(conf->shutdown_timeout, 0);
    assert_int_equal(conf->min_spare_servers, 0);
    rg_conf_free(conf);
}

static void test_bad_size(void **state)
{
    static const struct bad_case cases[] = {
        { ROUTE_OUT "max_message_size = 10x\n", 4,
          "max_message_size must be a number of bytes with an optional suffix k, m or g, not '10x'" },
        { ROUTE_OUT "max_message_size = k\n", 4,
          "max_message_size must be a number of bytes with an optional suffix k, m or g, not 'k'" },
        { ROUTE_OUT "max_message_size = 10kb\n", 4,
          "max_message_size must be a number of bytes with an optional suffix k, m or g, not '10kb'" },
        { ROUTE_OUT "max_message_size = 10 m\n", 4,
          "max_message_size must be a number of bytes with an optional suffix k, m or g, not '10 m'" },
        { ROUTE_OUT "max_message_size = 1.5m\n", 4,
          "max_message_size must be a number of bytes with an optional suffix k, m or g, not '1.5m'" },
        { ROUTE_OUT "max_message_size = -1\n", 4,
          "max_message_size must be a number of bytes with an optional suffix k, m or g, not '-1'" },
        { ROUTE_OUT "max_message_size = 0\n", 4,
          "max_message_size must be between 1 and 2147483648 bytes" },
        { ROUTE_OUT "max_message_size = 3g\n", 4,
          "max_message_size must be between 1 and 2147483648 bytes" },
        { ROUTE_OUT "max_message_size = 2147483649\n", 4,
          "max_message_size must be between 1 and 2147483648 bytes" },
        { ROUTE_OUT "max_message_size = 99999999999999999999999\n", 4,
          "max_message_size must be between 1 and 2147483648 bytes" },
        { ROUTE_OUT "max_message_size = 18014398509481984k\n", 4,
          "max_message_size must be between 1 and 2147483648 bytes" },
        { "[global]\nspool_memory_limit = 2g\n" ROUTE_OUT, 2,
          "spool_memory_limit must be between 0 and 1073741824 bytes" },
    };

    (void)state;
    EXPECT_ERRORS(cases);
}

static void test_booleans(void **state)
{
    static const struct { const char *word; int value; } words[] = {
        { "yes", 1 }, { "no", 0 }, { "true", 1 }, { "false", 0 }, { "on", 1 }, { "off", 0 },
        { "1", 1 }, { "0", 0 }, { "YES", 1 }, { "Off", 0 },
    };
    static const struct bad_case cases[] = {
        { "[global]\nallow_remote_listen = maybe\n" ROUTE_OUT, 2,
          "allow_remote_listen must be yes or no, not 'maybe'" },
        { "[global]\nallow_remote_listen = 2\n" ROUTE_OUT, 2,
          "allow_remote_listen must be yes or no, not '2'" },
        { "[global]\nallow_remote_listen = y\n" ROUTE_OUT, 2,
          "allow_remote_listen must be yes or no, not 'y'" },
    };
    char text[256];
    struct rg_conf *conf;

    (void)state;
    for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++) {
        snprintf(text, sizeof(text), "[global]\nallow_remote_listen = %s\n" ROUTE_OUT, words[i].word);
        conf = load_ok(text);
        assert_int_equal(conf->allow_remote_listen, words[i].value);
        rg_conf_free(conf);
    }
    EXPECT_ERRORS(cases);
}

static void test_protocol_and_process(void **state)
{
    static const struct bad_case cases[] = {
        { ROUTE_OUT "protocol = esmtp\n", 4, "protocol must be smtp or lmtp, not 'esmtp'" },
        { ROUTE_OUT "process = each\n", 4, "process must be message or recipient, not 'each'" },
    };
    struct rg_conf *conf;

    (void)state;
    conf = load_ok(ROUTE_OUT "protocol = LMTP\nprocess = Recipient\n");
    assert_int_equal(conf->routes[0].protocol, RG_PROTO_LMTP);
    assert_int_equal(conf->routes[0].process, RG_PROCESS_RECIPIENT);
    rg_conf_free(conf);
    conf = load_ok(ROUTE_OUT "protocol = smtp\nprocess = message\n");
    assert_int_equal(conf->routes[0].protocol, RG_PROTO_SMTP);
    assert_int_equal(conf->routes[0].process, RG_PROCESS_MESSAGE);
    rg_conf_free(conf);
    EXPECT_ERRORS(cases);
}

/* [mta] and the route's MTA keys (regigate-postfix(5), MTA SETTINGS) */
static void test_mta_section(void **state)
{
    struct rg_conf *conf;
    const struct rg_route *r;

    (void)state;
    conf = load_ok("[global]\n" ROUTE_OUT
                   "[mta]\n"
                   "relay_domains = Example.COM, .example.org\n"
                   "match_subdomains = yes\n"
                   "mynetworks = 10.1\n"
                   "mynetworks = 192.168.0.0/16\n"
                   "myhostname = mx.example.com\n"
                   "smtp_helo_name = helo.example.com\n"
                   "internal_relay_host = mail.internal.example\n"
                   "external_relay_host = relay.example.net:587\n"
                   "external_relay_host_mx = yes\n"
                   "message_size_limit = 100m\n"
                   "reject_unverified_recipient = yes\n"
                   "unverified_recipient_reject_code = 550\n"
                   "rbl = zen.example.org, bl.example.net=127.0.0.[2..4]\n"
                   "client_blacklist = /etc/regigate/client_black\n"
                   "smtp_tls_security_level = dane\n"
                   "smtpd_tls_security_level = encrypt\n"
                   "sasl_password_maps = /etc/regigate/sasl_passwd\n");
    assert_string_equal(conf->mta.relay_domains, "example.com .example.org");
    assert_int_equal(conf->mta.match_subdomains, 1);
    assert_string_equal(conf->mta.mynetworks, "10.1.0.0/16 192.168.0.0/16");
    assert_string_equal(conf->mta.internal_relay_host, "[mail.internal.example]:25");
    assert_int_equal(conf->mta.internal_relay_host_mx, -1);
    assert_string_equal(conf->mta.external_relay_host, "[relay.example.net]:587");
    assert_int_equal(conf->mta.external_relay_host_mx, 1);
    assert_int_equal(conf->mta.message_size_limit, 100 * 1024 * 1024);
    assert_int_equal(conf->mta.unverified_recipient_reject_code, 550);
    assert_string_equal(conf->mta.rbl, "zen.example.org bl.example.net=127.0.0.[2..4]");
    assert_string_equal(conf->mta.smtp_tls_security_level, "dane");
    r = rg_conf_route(conf, "out");
    assert_int_equal(r->mta.match_subdomains, -1);      /* unset: [mta]'s applies */
    assert_null(r->mta.rbl);
    assert_int_equal(rg_route_after_filter_limit(r), 2 * r->max_message_size);
    rg_conf_free(conf);

    conf = load_ok("[global]\n[route out]\nlisten = 127.0.0.1:10025\nreinject = 127.0.0.1:10026\n"
                   "rbl = rbl.example.com\nmatch_subdomains = no\n"
                   "after_filter_message_size_limit = 3m\nsmtpd_tls_security_level = none\n");
    r = rg_conf_route(conf, "out");
    assert_string_equal(r->mta.rbl, "rbl.example.com");
    assert_int_equal(r->mta.match_subdomains, 0);
    assert_int_equal(rg_route_after_filter_limit(r), 3 * 1024 * 1024);
    assert_string_equal(r->mta.smtpd_tls_security_level, "none");
    rg_conf_free(conf);

    static const struct bad_case cases[] = {
        { "[global]\n" ROUTE_OUT "[mta]\nrbl = not a host\n", 6,
          "rbl: 'not' is not DNS-SERVER-HOST[=d.d.d.d]" },
        { "[global]\n" ROUTE_OUT "[mta]\nrbl = zen.example.org=abc\n", 6,
          "rbl: 'zen.example.org=abc' is not DNS-SERVER-HOST[=d.d.d.d]" },
        { "[global]\n" ROUTE_OUT "[mta]\nsmtpd_tls_security_level = dane\n", 6,
          "smtpd_tls_security_level must be one of none, may, encrypt, not 'dane'" },
        { "[global]\n" ROUTE_OUT "[mta]\nunverified_recipient_reject_code = 250\n", 6,
          "unverified_recipient_reject_code must be between 450 and 550" },
        { "[global]\n" ROUTE_OUT "[mta]\nexternal_relay_host = 192.0.2.1\n"
          "external_relay_host_mx = yes\n", 7,
          "external_relay_host_mx needs an external_relay_host with a host name" },
        { "[global]\n" ROUTE_OUT "[mta]\nmax_servers = 3\n", 6,
          "key 'max_servers' belongs in [global], not in [mta]" },
        { "[global]\n" ROUTE_OUT "transport_maps = /x\n", 5,
          "key 'transport_maps' belongs in [mta], not in [route out]" },
        { "[global]\nrbl = zen.example.org\n" ROUTE_OUT, 2,
          "key 'rbl' belongs in a [route NAME] section, not in [global]" },
        { "[global]\n" ROUTE_OUT "[mta]\n[mta]\n", 6, "duplicate section [mta] (first on line 5)" },
        { "[global]\n" ROUTE_OUT "[mta x]\n", 5, "section [mta] takes no name" },
    };
    EXPECT_ERRORS(cases);
}

static void test_bad_hostport(void **state)
{
    static const struct bad_case cases[] = {
        { "[route out]\nlisten = 127.0.0.1\n", 2,
          "listen must be host:port or [address]:port with a port from 1 to 65535, not '127.0.0.1'" },
        { "[route out]\nlisten = :10025\n", 2,
          "listen must be host:port or [address]:port with a port from 1 to 65535, not ':10025'" },
        { "[route out]\nlisten = 127.0.0.1:0\n", 2,
          "listen must be host:port or [address]:port with a port from 1 to 65535, not '127.0.0.1:0'" },
        { "[route out]\nlisten = 127.0.0.1:65536\n", 2,
          "listen must be host:port or [address]:port with a port from 1 to 65535, not "
          "'127.0.0.1:65536'" },
        { "[route out]\nlisten = ::1:10025\n", 2,
          "listen must be host:port or [address]:port with a port from 1 to 65535, not '::1:10025'" },
        { "[route out]\nlisten = 127.0.0.1:10025\nreinject = [::1]10026\n", 3,
          "reinject must be host:port or [address]:port with a port from 1 to 65535, not "
          "'[::1]10026'" },
        { "[route out]\nlisten = 127.0.0.1:10025\nreinject = []:10026\n", 3,
          "reinject must be host:port or [address]:port with a port from 1 to 65535, not '[]:10026'" },
    };

    (void)state;
    EXPECT_ERRORS(cases);
}

static void test_bad_strings(void **state)
{
    static const struct bad_case cases[] = {
        { "[global]\nspool_dir = var/spool/regigate\n" ROUTE_OUT, 2,
          "spool_dir must be an absolute path, not 'var/spool/regigate'" },
        { "[global]\npid_file = regigated.pid\n" ROUTE_OUT, 2,
          "pid_file must be an absolute path, not 'regigated.pid'" },
        { "[global]\nmyhostname = gw example\n" ROUTE_OUT, 2,
          "myhostname must be a host name, not 'gw example'" },
        { "[global]\nmyhostname = -gw\n" ROUTE_OUT, 2, "myhostname must be a host name, not '-gw'" },
        { "[global]\nsyslog_facility = kern\n" ROUTE_OUT, 2,
          "syslog_facility must be mail, daemon, user or local0 to local7, not 'kern'" },
        { "[global]\nsyslog_facility = local8\n" ROUTE_OUT, 2,
          "syslog_facility must be mail, daemon, user or local0 to local7, not 'local8'" },
    };
    struct rg_conf *conf;

    (void)state;
    EXPECT_ERRORS(cases);
    conf = load_ok("[global]\nsyslog_facility = local7\nmyhostname = 192.0.2.1\n" ROUTE_OUT);
    assert_string_equal(conf->syslog_facility, "local7");
    assert_string_equal(conf->myhostname, "192.0.2.1");
    rg_conf_free(conf);
}

static void test_empty_value(void **state)
{
    static const struct bad_case cases[] = {
        { "[global]\nuser =\n" ROUTE_OUT, 2, "user has an empty value" },
        { "[global]\nmax_servers = ; none\n" ROUTE_OUT, 2, "max_servers has an empty value" },
        { "[route out]\nlisten =   \n", 2, "listen has an empty value" },
    };

    (void)state;
    EXPECT_ERRORS(cases);
}

static void test_unknown_user(void **state)
{
    (void)state;
    expect_error("[global]\nuser = rg-no-such-user-x7\n" ROUTE_OUT, 2,
                 "unknown user 'rg-no-such-user-x7'");
}

/* ---- structure ----------------------------------------------------------------- */

static void test_unknown_key(void **state)
{
    static const struct bad_case cases[] = {
        { "[route out]\nlisten = 127.0.0.1:10025\nreinject = 127.0.0.1:10026\n\nlissten = x\n", 5,
          "unknown key 'lissten' in [route out]" },
        { "[global]\nmax_server = 3\n" ROUTE_OUT, 2, "unknown key 'max_server' in [global]" },
        { "[global]\nMax_Servers = 3\n" ROUTE_OUT, 2, "unknown key 'Max_Servers' in [global]" },
        { "[global]\nlisten = 127.0.0.1:10025\n", 2,
          "key 'listen' belongs in a [route NAME] section, not in [global]" },
        { ROUTE_OUT "max_servers = 3\n", 4, "key 'max_servers' belongs in [global], not in [route out]" },
        { ROUTE_OUT "= 3\n", 4, "missing key name before '='" },
    };

    (void)state;
    EXPECT_ERRORS(cases);
}

static void test_unknown_section(void **state)
{
    static const struct bad_case cases[] = {
        { ROUTE_OUT "[globals]\n", 4, "unknown section [globals]" },
        { "[routes out]\n", 1, "unknown section [routes out]" },
        { "[]\n", 1, "unknown section []" },
        { "[Global]\n", 1, "unknown section [Global]" },
    };

    (void)state;
    EXPECT_ERRORS(cases);
}

static void test_bad_section_header(void **state)
{
    static const struct bad_case cases[] = {
        { "[global\n", 1, "missing ']' in section header" },
        { "[global] max_servers = 3\n", 1, "unexpected text after section header: 'max_servers = 3'" },
        { "[global x]\n", 1, "section [global] takes no name" },
        { "[route]\n", 1, "route section without a name: use [route NAME]" },
        { "[route   ]\n", 1, "route section without a name: use [route NAME]" },
        { "[route a b]\n", 1, "invalid route name 'a b': use 1 to 64 letters, digits, '_', '.' or '-'" },
        { "[route a/b]\n", 1, "invalid route name 'a/b': use 1 to 64 letters, digits, '_', '.' or '-'" },
        { "[route "
          "a123456789b123456789c123456789d123456789e123456789f123456789g1234]\n", 1,
          "invalid route name "
          "'a123456789b123456789c123456789d123456789e123456789f123456789g1234': "
          "use 1 to 64 letters, digits, '_', '.' or '-'" },
    };

    (void)state;
    EXPECT_ERRORS(cases);
}

/* A 64-character name is longer than inih's section buffer: it must survive whole. */
static void test_long_route_name(void **state)
{
    const char *name = "a123456789b123456789c123456789d123456789e123456789f123456789g.-_";
    char text[512];
    struct rg_conf *conf;

    (void)state;
    assert_int_equal(strlen(name), 64);
    snprintf(text, sizeof(text), "[route %s]\nlisten = 127.0.0.1:10025\nreinject = 127.0.0.1:10026\n",
             name);
    conf = load_ok(text);
    assert_string_equal(conf->routes[0].name, name);
    assert_non_null(rg_conf_route(conf, name));
    rg_conf_free(conf);

    snprintf(text, sizeof(text), "[route  %s ]\nlisten = 127.0.0.1:10025\nbogus = 1\n", name);
    char msg[256];
    snprintf(msg, sizeof(msg), "unknown key 'bogus' in [route %s]", name);
    expect_error(text, 3, msg);
}

static void test_key_outside_section(void **state)
{
    (void)state;
    expect_error("\n# comment\nmax_servers = 8\n[global]\n" ROUTE_OUT, 3,
                 "key 'max_servers' outside of any section");
}

static void test_duplicate_key(void **state)
{
    static const struct bad_case cases[] = {
        { "[route out]\nlisten = 127.0.0.1:10025\nreinject = 127.0.0.1:10026\nlisten = 127.0.0.1:10027\n",
          4, "duplicate key 'listen' in [route out] (first on line 2)" },
        { "[global]\nmax_servers = 3\n\nmax_servers = 3\n" ROUTE_OUT, 4,
          "duplicate key 'max_servers' in [global] (first on line 2)" },
    };
    struct rg_conf *conf;

    (void)state;
    EXPECT_ERRORS(cases);
    /* the same key in two routes is no duplicate */
    conf = load_ok(ROUTE_OUT "max_recipients = 5\n"
                   "[route in]\nlisten = 127.0.0.1:10027\nreinject = 127.0.0.1:10028\n"
                   "max_recipients = 6\n");
    assert_int_equal(conf->routes[0].max_recipients, 5);
    assert_int_equal(conf->routes[1].max_recipients, 6);
    rg_conf_free(conf);
}

static void test_duplicate_sections(void **state)
{
    static const struct bad_case cases[] = {
        { ROUTE_OUT "[route in]\nlisten = 127.0.0.1:10027\nreinject = 127.0.0.1:10028\n[route out]\n", 7,
          "duplicate route 'out' (first on line 1)" },
        { "[global]\n" ROUTE_OUT "[global]\n", 5, "duplicate section [global] (first on line 1)" },
    };

    (void)state;
    EXPECT_ERRORS(cases);
}

static void test_syntax_error(void **state)
{
    static const struct bad_case cases[] = {
        { "[global]\nmax_servers 8\n" ROUTE_OUT, 2, "syntax error: expected 'key = value'" },
        { ROUTE_OUT "just words\n", 4, "syntax error: expected 'key = value'" },
    };

    (void)state;
    EXPECT_ERRORS(cases);
}

static void test_first_error_wins(void **state)
{
    static const struct bad_case cases[] = {
        /* inih's syntax error on line 2 comes before our error on line 3 */
        { "[global]\nbogus line\nmax_servers = 0\n", 2, "syntax error: expected 'key = value'" },
        /* our error on line 2 stops the parse before the syntax error */
        { "[global]\nmax_servers = 0\nbogus line\n", 2, "max_servers must be between 1 and 1000" },
        /* errors while parsing come before whole-file checks */
        { "[route a]\n[global]\nmax_servers = x\n", 3, "max_servers must be an integer, not 'x'" },
        { "[route a]\n[route b]\n", 1, "route 'a' has no 'listen'" },
    };

    (void)state;
    EXPECT_ERRORS(cases);
}

static void test_long_line(void **state)
{
    char text[1024];
    char line[256];
    struct rg_conf *conf;

    (void)state;
    /* 198 characters (199 bytes with the newline) is the limit */
    memset(line, 'a', 186);
    line[186] = '\0';
    line[0] = '/';
    snprintf(text, sizeof(text), "[global]\nspool_dir = %s\n" ROUTE_OUT, line);
    assert_int_equal(strlen("spool_dir = ") + strlen(line), 198);
    conf = load_ok(text);
    assert_int_equal(strlen(conf->spool_dir), 186);
    assert_string_equal(conf->spool_dir, line);
    rg_conf_free(conf);

    /* one more is an error, not a value silently cut */
    line[186] = 'a';
    line[187] = '\0';
    snprintf(text, sizeof(text), "[global]\nspool_dir = %s\n" ROUTE_OUT, line);
    expect_error(text, 2, "line longer than 198 characters");

    /* also for comments, and far longer lines */
    memset(line, '#', 250);
    line[250] = '\0';
    snprintf(text, sizeof(text), ROUTE_OUT "\n%s\n", line);
    expect_error(text, 5, "line longer than 198 characters");
}

static void test_nul_byte(void **state)
{
    static const char text[] = "[global]\nmax_servers = 8\0junk\n" ROUTE_OUT;
    char binary[1024];

    (void)state;
    expect_error_n(text, sizeof(text) - 1, 2, "NUL byte in line");
    /* a binary file is refused on its first line, however long that is */
    memset(binary, 0, sizeof(binary));
    expect_error_n(binary, sizeof(binary), 1, "NUL byte in line");
}

/* ---- whole-file checks ---------------------------------------------------------- */

static void test_missing_listen_reinject(void **state)
{
    static const struct bad_case cases[] = {
        { "[global]\n\n[route out]\nreinject = 127.0.0.1:10026\n", 3, "route 'out' has no 'listen'" },
        { ROUTE_OUT "[route in]\nlisten = 127.0.0.1:10027\n", 4, "route 'in' has no 'reinject'" },
        { ROUTE_OUT "[route empty]\n", 4, "route 'empty' has no 'listen'" },
    };

    (void)state;
    EXPECT_ERRORS(cases);
}

static void test_no_routes(void **state)
{
    static const struct bad_case cases[] = {
        { "[global]\nmax_servers = 5\n", 0, "no [route NAME] section" },
        { "", 0, "no [route NAME] section" },
    };

    (void)state;
    EXPECT_ERRORS(cases);
}

static void test_remote_listen(void **state)
{
    struct rg_conf *conf;

    (void)state;
    expect_error("[route out]\nreinject = 127.0.0.1:10026\nlisten = 192.0.2.10:10025\n", 3,
                 "listen address 192.0.2.10:10025 of route 'out' is not a loopback address "
                 "(set allow_remote_listen = yes in [global] to allow it)");
    expect_error("[global]\nallow_remote_listen = no\n"
                 "[route out]\nlisten = [2001:db8::1]:10025\nreinject = 127.0.0.1:10026\n", 4,
                 "listen address [2001:db8::1]:10025 of route 'out' is not a loopback address "
                 "(set allow_remote_listen = yes in [global] to allow it)");

    /* allowed, even when [global] comes after the route */
    conf = load_ok("[route out]\nlisten = 192.0.2.10:10025\nreinject = 127.0.0.1:10026\n"
                   "[global]\nallow_remote_listen = yes\n");
    assert_int_equal(conf->allow_remote_listen, 1);
    assert_string_equal(conf->routes[0].listen.host, "192.0.2.10");
    rg_conf_free(conf);

    /* a remote reinject address needs no permission */
    conf = load_ok("[route out]\nlisten = 127.0.0.1:10025\nreinject = 192.0.2.25:25\n");
    rg_conf_free(conf);
}

static void test_duplicate_listen(void **state)
{
    static const struct bad_case cases[] = {
        { ROUTE_OUT "[route in]\nreinject = 127.0.0.1:10028\nlisten = 127.0.0.1:10025\n", 6,
          "listen address 127.0.0.1:10025 of route 'in' is already used by route 'out'" },
        { "[route a]\nlisten = [::1]:10025\nreinject = 127.0.0.1:10026\n"
          "[route b]\nlisten = [0:0::1]:10025\nreinject = 127.0.0.1:10028\n", 5,
          "listen address [0:0::1]:10025 of route 'b' is already used by route 'a'" },
        { "[route a]\nlisten = LOCALHOST:10025\nreinject = 127.0.0.1:10026\n"
          "[route b]\nlisten = localhost:10025\nreinject = 127.0.0.1:10028\n", 5,
          "listen address localhost:10025 of route 'b' is already used by route 'a'" },
    };
    struct rg_conf *conf;

    (void)state;
    EXPECT_ERRORS(cases);
    /* same host, other port; same port, other host */
    conf = load_ok(ROUTE_OUT "[route b]\nlisten = 127.0.0.1:10027\nreinject = 127.0.0.1:10026\n"
                   "[route c]\nlisten = 127.0.0.2:10025\nreinject = 127.0.0.1:10026\n");
    assert_int_equal(conf->nroutes, 3);
    rg_conf_free(conf);
}

static void test_reinject_loop(void **state)
{
    static const struct bad_case cases[] = {
        { "[route out]\nlisten = 127.0.0.1:10025\nreinject = 127.0.0.1:10025\n", 3,
          "reinject address 127.0.0.1:10025 of route 'out' is the listen address of route 'out' "
          "(mail loop)" },
        { "[route out]\nreinject = 127.0.0.1:10027\nlisten = 127.0.0.1:10025\n"
          "[route in]\nlisten = 127.0.0.1:10027\nreinject = 127.0.0.1:10028\n", 2,
          "reinject address 127.0.0.1:10027 of route 'out' is the listen address of route 'in' "
          "(mail loop)" },
        { ROUTE_OUT "[route in]\nlisten = [::1]:10027\nreinject = [::1]:10027\n", 6,
          "reinject address [::1]:10027 of route 'in' is the listen address of route 'in' "
          "(mail loop)" },
    };

    (void)state;
    EXPECT_ERRORS(cases);
}

static void test_spare_order(void **state)
{
    static const struct bad_case cases[] = {
        { "[global]\nmin_spare_servers = 5\n" ROUTE_OUT, 2,
          "min_spare_servers (5) must not be greater than max_spare_servers (4)" },
        { "[global]\nmax_spare_servers = 3\nmin_spare_servers = 4\n" ROUTE_OUT, 3,
          "min_spare_servers (4) must not be greater than max_spare_servers (3)" },
        { "[global]\nmax_servers = 2\n" ROUTE_OUT, 2,
          "max_spare_servers (4) must not be greater than max_servers (2)" },
        { "[global]\nmax_spare_servers = 9\n\nmax_servers = 8\n" ROUTE_OUT, 4,
          "max_spare_servers (9) must not be greater than max_servers (8)" },
    };
    struct rg_conf *conf;

    (void)state;
    EXPECT_ERRORS(cases);
    conf = load_ok("[global]\nmax_servers = 3\nmin_spare_servers = 3\nmax_spare_servers = 3\n" ROUTE_OUT);
    assert_int_equal(conf->min_spare_servers, 3);
    assert_int_equal(conf->max_spare_servers, 3);
    assert_int_equal(conf->max_servers, 3);
    rg_conf_free(conf);
}

/* ---- files and the error buffer ------------------------------------------------- */

static void test_missing_file(void **state)
{
    char path[sizeof(tmpdir) + 32], err[2048];

    (void)state;
    snprintf(path, sizeof(path), "%s/no-such.conf", tmpdir);
    assert_null(rg_conf_load(path, err, sizeof(err)));
    expect_error_at(path, 0, "cannot open: No such file or directory", err);
}

static void test_unreadable_file(void **state)
{
    char err[1024];

    (void)state;
    /* a directory opens but cannot be read */
    assert_null(rg_conf_load(tmpdir, err, sizeof(err)));
    expect_error_at(tmpdir, 0, "cannot read: Is a directory", err);
}

static void test_small_error_buffer(void **state)
{
    char err[16];
    char want[16];

    (void)state;
    write_conf("[bogus]\n", 8);
    memset(err, 'x', sizeof(err));
    assert_null(rg_conf_load(conf_path, err, sizeof(err)));
    memcpy(want, conf_path, sizeof(want) - 1);     /* conf_path is longer */
    want[sizeof(want) - 1] = '\0';
    assert_string_equal(err, want);
    assert_null(rg_conf_load(conf_path, NULL, 0));
    err[0] = 'x';
    assert_null(rg_conf_load(conf_path, err, 0));
    assert_int_equal(err[0], 'x');
}

/* ---- routes_dir: one directory per route --------------------------------------- */

static char routes_dir[700];

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st; (void)flag; (void)ftw;
    return remove(path);
}

static void routes_reset(void)
{
    snprintf(routes_dir, sizeof(routes_dir), "%s/routes", tmpdir);
    nftw(routes_dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
    assert_int_equal(mkdir(routes_dir, 0700), 0);
}

/* routes_dir/NAME/route.conf with text; NULL text: the directory only */
static void route_file(const char *name, const char *text)
{
    char path[900];
    FILE *fp;

    snprintf(path, sizeof(path), "%s/%s", routes_dir, name);
    assert_int_equal(mkdir(path, 0700), 0);
    if (text == NULL)
        return;
    snprintf(path, sizeof(path), "%s/%s/route.conf", routes_dir, name);
    fp = fopen(path, "w");
    assert_non_null(fp);
    fputs(text, fp);
    assert_int_equal(fclose(fp), 0);
}

/* regigate.conf: [global] with routes_dir plus extra text */
static void main_with_routes_dir(const char *extra)
{
    char text[2048];

    snprintf(text, sizeof(text), "[global]\nroutes_dir = %s\n%s", routes_dir, extra);
    write_conf(text, strlen(text));
}

static void expect_route_file_error(const char *name, int line, const char *msg, int flags)
{
    char err[1024] = "", path[900];
    struct rg_conf *conf = rg_conf_load_flags(conf_path, flags, err, sizeof(err));

    snprintf(path, sizeof(path), "%s/%s/route.conf", routes_dir, name);
    expect_error_at(path, line, msg, err);
    assert_null(conf);
}

#define PUBLIC_OK "public_listen = 192.0.2.10:25\naccept_from = 192.168.1\n"

static void test_routes_dir_order_and_keys(void **state)
{
    char err[1024] = "", want[900];
    struct rg_conf *conf;

    (void)state;
    routes_reset();
    route_file("zeta", "[route zeta]\nid = 2\nlisten = 127.0.0.1:10055\n"
               "reinject = 127.0.0.1:10056\npublic_listen = 192.0.2.10:2525\n"
               "accept_from = 192.168.1 10.1.2.3\naccept_from = 10.0.0.0/8, 2001:db8::/32\n"
               "mta_hostname = gw.example.org\n");
    route_file("alpha", "[route alpha]\nid = 1\nlisten = 127.0.0.1:10045\n"
               "reinject = 127.0.0.1:10046\npublic_listen = 192.0.2.10:25\n"
               "accept_domains = Example.COM .example.org\nforward_to = mail.example.com\n");
    route_file("empty", NULL);              /* no route.conf yet: skipped */
    main_with_routes_dir(ROUTE_OUT);
    conf = rg_conf_load(conf_path, err, sizeof(err));
    assert_string_equal(err, "");
    assert_non_null(conf);
    assert_int_equal(conf->nroutes, 3);
    assert_string_equal(conf->routes[0].name, "out");
    assert_string_equal(conf->routes[0].file, conf_path);
    assert_string_equal(conf->routes[1].name, "alpha");
    snprintf(want, sizeof(want), "%s/alpha/route.conf", routes_dir);
    assert_string_equal(conf->routes[1].file, want);
    assert_int_equal(conf->routes[1].id, 1);
    assert_string_equal(conf->routes[1].accept_domains, "example.com .example.org");
    assert_null(conf->routes[1].accept_from);
    assert_string_equal(conf->routes[1].forward_to, "[mail.example.com]:25");
    assert_string_equal(conf->routes[2].name, "zeta");
    assert_string_equal(conf->routes[2].accept_from,
                        "192.168.1.0/24 10.1.2.3 10.0.0.0/8 [2001:db8::]/32");
    assert_string_equal(conf->routes[2].public_listen.host, "192.0.2.10");
    assert_int_equal(conf->routes[2].public_listen.port, 2525);
    assert_string_equal(conf->routes[2].mta_hostname, "gw.example.org");
    assert_null(conf->routes[2].forward_to);
    /* cert_dir follows routes_dir */
    snprintf(want, sizeof(want), "%s/zeta", routes_dir);
    assert_string_equal(conf->routes[2].cert_dir, want);
    rg_conf_free(conf);
    nftw(routes_dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
}

static void test_routes_dir_errors(void **state)
{
    char err[1024] = "";
    struct rg_conf *conf;

    (void)state;
    routes_reset();
    route_file("a", "[route b]\nlisten = 127.0.0.1:10025\n");
    main_with_routes_dir("");
    expect_route_file_error("a", 1, "route 'b' in the directory of route 'a': the section "
                            "must be [route a]", 0);

    routes_reset();
    route_file("a", "# x\n[global]\n");
    {
        char msg[1100];
        snprintf(msg, sizeof(msg), "section [global] belongs in %s, not in a route file",
                 conf_path);
        expect_route_file_error("a", 2, msg, 0);
    }

    routes_reset();
    route_file("a", "[route a]\nlisten = 127.0.0.1:10025\nreinject = 127.0.0.1:10026\n"
               "[route c]\n");
    expect_route_file_error("a", 4, "a route file holds one section, [route a]", 0);

    routes_reset();
    route_file("a", "; nothing\n");
    expect_route_file_error("a", 0, "no [route a] section", 0);

    routes_reset();
    route_file("a", "[route a]\nlisten = 127.0.0.1:10025\nreinject = 127.0.0.1:10026\n"
               "accept_from = 192.168.1.1/24\n");
    expect_route_file_error("a", 4, "accept_from: '192.168.1.1/24' has bits set after the "
                            "first 24: not a network address", 0);

    /* the same route in regigate.conf and in routes_dir */
    routes_reset();
    route_file("out", "[route out]\nlisten = 127.0.0.1:10035\nreinject = 127.0.0.1:10036\n");
    main_with_routes_dir(ROUTE_OUT);
    {
        char msg[1100];
        snprintf(msg, sizeof(msg), "duplicate route 'out' (first in %s:3)", conf_path);
        expect_route_file_error("out", 1, msg, 0);
    }

    /* no routes at all: an error for regigated, fine for regigatectl */
    routes_reset();
    main_with_routes_dir("");
    conf = rg_conf_load(conf_path, err, sizeof(err));
    assert_null(conf);
    expect_error_at(conf_path, 0, "no [route NAME] section", err);
    conf = rg_conf_load_flags(conf_path, RG_CONF_NO_ROUTES_OK, err, sizeof(err));
    assert_non_null(conf);
    assert_int_equal(conf->nroutes, 0);
    rg_conf_free(conf);
    nftw(routes_dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
}

static void test_public_side_checks(void **state)
{
    (void)state;
    routes_reset();
    main_with_routes_dir("");
    route_file("a", "[route a]\nid = 1\nlisten = 127.0.0.1:10025\nreinject = 127.0.0.1:10026\n"
               "public_listen = 192.0.2.10:25\naccept_domains = example.com\n");
    expect_route_file_error("a", 5, "route 'a' delivers to the Internet (no forward_to) but "
                            "has no accept_from: that would be an open relay", 0);

    routes_reset();
    route_file("a", "[route a]\nlisten = 127.0.0.1:10025\nreinject = 127.0.0.1:10026\n"
               "public_listen = 192.0.2.10:25\nforward_to = [192.0.2.1]:25\n");
    expect_route_file_error("a", 4, "route 'a' has neither accept_from nor accept_domains: "
                            "that would accept mail for anyone from anyone", 0);

    routes_reset();
    route_file("a", "[route a]\nid = 1\nlisten = 127.0.0.1:10025\nreinject = 127.0.0.1:10026\n"
               PUBLIC_OK);
    route_file("b", "[route b]\nid = 1\nlisten = 127.0.0.1:10035\nreinject = 127.0.0.1:10036\n"
               "public_listen = 192.0.2.11:25\naccept_from = 10.0.0.1\n");
    expect_route_file_error("b", 2, "route id 1 of route 'b' is already used by route 'a'", 0);

    routes_reset();
    route_file("a", "[route a]\nid = 1\nlisten = 127.0.0.1:10025\nreinject = 127.0.0.1:10026\n"
               PUBLIC_OK);
    route_file("b", "[route b]\nid = 2\nlisten = 127.0.0.1:10035\nreinject = 127.0.0.1:10036\n"
               PUBLIC_OK);
    expect_route_file_error("b", 5, "public_listen 192.0.2.10:25 of route 'b' is already used "
                            "by route 'a'", 0);

    routes_reset();
    route_file("a", "[route a]\nlisten = 127.0.0.1:10025\nreinject = 127.0.0.1:10026\n"
               "public_listen = 127.0.0.1:10026\naccept_from = 10.0.0.1\n");
    expect_route_file_error("a", 4, "public_listen 127.0.0.1:10026 of route 'a' is a loopback "
                            "address of route 'a'", 0);

    routes_reset();
    route_file("a", "[route a]\nlisten = 127.0.0.1:10025\nreinject = 127.0.0.1:10026\n"
               "accept_from = 10.0.0.1\n");
    expect_route_file_error("a", 1, "route 'a' has accept_from, accept_domains or forward_to "
                            "but no public_listen", 0);

    routes_reset();
    route_file("a", "[route a]\nlisten = 127.0.0.1:10025\nreinject = 127.0.0.1:10026\n"
               "forward_to = [::1\n");
    expect_route_file_error("a", 4, "forward_to: '[::1': missing ']'", 0);
    nftw(routes_dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
}

/* contrib/regigate.conf documents the defaults: it must load and match them. */
static void test_contrib_sample(void **state)
{
    const char *top = getenv("top_srcdir");
    char path[1024], err[1024] = "";
    struct rg_conf *conf, *defaults;
    const struct rg_route *out, *in;

    (void)state;
    snprintf(path, sizeof(path), "%s/contrib/regigate.conf", top != NULL ? top : ".");
    conf = rg_conf_load(path, err, sizeof(err));
    assert_string_equal(err, "");
    assert_non_null(conf);

    defaults = load_ok(ROUTE_OUT);
    assert_null(conf->user);
    assert_string_equal(conf->spool_dir, defaults->spool_dir);
    assert_string_equal(conf->pid_file, defaults->pid_file);
    assert_string_equal(conf->myhostname, defaults->myhostname);
    assert_string_equal(conf->syslog_facility, defaults->syslog_facility);
    assert_int_equal(conf->allow_remote_listen, defaults->allow_remote_listen);
    assert_int_equal(conf->max_servers, defaults->max_servers);
    assert_int_equal(conf->min_spare_servers, defaults->min_spare_servers);
    assert_int_equal(conf->max_spare_servers, defaults->max_spare_servers);
    assert_int_equal(conf->max_requests, defaults->max_requests);
    assert_int_equal(conf->child_timeout, defaults->child_timeout);
    assert_int_equal(conf->smtp_timeout, defaults->smtp_timeout);
    assert_int_equal(conf->reinject_timeout, defaults->reinject_timeout);
    assert_int_equal(conf->shutdown_timeout, defaults->shutdown_timeout);
    assert_int_equal(conf->spool_memory_limit, defaults->spool_memory_limit);
    assert_string_equal(conf->routes_dir, defaults->routes_dir);
    assert_int_equal(conf->route_port_base, defaults->route_port_base);

    assert_int_equal(conf->nroutes, 2);
    out = rg_conf_route(conf, "outbound");
    in = rg_conf_route(conf, "inbound");
    assert_non_null(out);
    assert_non_null(in);
    assert_string_equal(out->listen.host, "127.0.0.1");
    assert_int_equal(out->listen.port, 10025);
    assert_string_equal(out->reinject.host, "127.0.0.1");
    assert_int_equal(out->reinject.port, 10026);
    assert_string_equal(in->listen.host, "127.0.0.1");
    assert_int_equal(in->listen.port, 10027);
    assert_string_equal(in->reinject.host, "127.0.0.1");
    assert_int_equal(in->reinject.port, 10028);
    for (size_t i = 0; i < conf->nroutes; i++) {
        assert_int_equal(conf->routes[i].protocol, defaults->routes[0].protocol);
        assert_int_equal(conf->routes[i].process, defaults->routes[0].process);
        assert_int_equal(conf->routes[i].max_message_size, defaults->routes[0].max_message_size);
        assert_int_equal(conf->routes[i].max_recipients, defaults->routes[0].max_recipients);
        assert_int_equal(conf->routes[i].provider_connect_timeout,
                         defaults->routes[0].provider_connect_timeout);
        assert_int_equal(conf->routes[i].provider_timeout, defaults->routes[0].provider_timeout);
        assert_int_equal(conf->routes[i].account_cache_ttl, defaults->routes[0].account_cache_ttl);
        assert_int_equal(conf->routes[i].account_cache_negative_ttl,
                         defaults->routes[0].account_cache_negative_ttl);
    }
    rg_conf_free(defaults);
    rg_conf_free(conf);
}

/* The rule engine's route keys: paths and the header section limit. */
static void test_rules_keys(void **state)
{
    static const struct bad_case cases[] = {
        { ROUTE_OUT "rules = rules.json\n", 4, "rules must be an absolute path, not 'rules.json'" },
        { ROUTE_OUT "lists_dir = lists\n", 4, "lists_dir must be an absolute path, not 'lists'" },
        { ROUTE_OUT "max_header_size = 1000\n", 4, "max_header_size must be between 1024 and 67108864 bytes" },
    };
    struct rg_conf *conf;

    (void)state;
    EXPECT_ERRORS(cases);
    conf = load_ok(ROUTE_OUT "rules = /etc/regigate/out.json\nlists_dir = /etc/regigate/lists\n"
                   "max_header_size = 2k\n");
    assert_string_equal(conf->routes[0].rules, "/etc/regigate/out.json");
    assert_string_equal(conf->routes[0].lists_dir, "/etc/regigate/lists");
    assert_int_equal(conf->routes[0].max_header_size, 2048);
    assert_null(rg_conf_free(conf));
    conf = load_ok(ROUTE_OUT);
    assert_null(conf->routes[0].rules);
    assert_null(conf->routes[0].lists_dir);
    assert_int_equal(conf->routes[0].max_header_size, 1024 * 1024);
    assert_null(rg_conf_free(conf));
}

/* The key provider's route keys and their defaults. */
static void test_provider_keys(void **state)
{
    struct rg_conf *conf;
    const struct rg_route *r;

    (void)state;
    conf = load_ok(ROUTE_OUT
                   "provider = https://provider.example:8443\n"
                   "provider_ca = /etc/regigate/provider-ca.crt\n"
                   "cert_dir = /var/lib/regigate/out\n"
                   "provider_connect_timeout = 5\n"
                   "provider_timeout = 20\n"
                   "account_cache_ttl = 0\n"
                   "account_cache_negative_ttl = 120\n");
    r = &conf->routes[0];
    assert_string_equal(r->provider, "https://provider.example:8443");
    assert_string_equal(r->provider_ca, "/etc/regigate/provider-ca.crt");
    assert_string_equal(r->cert_dir, "/var/lib/regigate/out");
    /* the certificate and key follow cert_dir */
    assert_string_equal(r->provider_cert, "/var/lib/regigate/out/provider.crt");
    assert_string_equal(r->provider_key, "/var/lib/regigate/out/provider.key");
    assert_int_equal(r->provider_connect_timeout, 5);
    assert_int_equal(r->provider_timeout, 20);
    assert_int_equal(r->account_cache_ttl, 0);
    assert_int_equal(r->account_cache_negative_ttl, 120);
    assert_int_equal(r->hide_subject, 0);
    assert_null(r->hidden_subject);
    assert_null(rg_conf_free(conf));

    /* the outer Subject of encrypted mail */
    conf = load_ok(ROUTE_OUT "hide_subject = yes\nhidden_subject = Verschl\xc3\xbcsselt [regigate]\n");
    r = &conf->routes[0];
    assert_int_equal(r->hide_subject, 1);
    assert_string_equal(r->hidden_subject, "Verschl\xc3\xbcsselt [regigate]");
    assert_null(rg_conf_free(conf));

    /* explicit paths; one key_cert.pem for both; host:port gets https:// */
    conf = load_ok(ROUTE_OUT
                   "provider = provider.example:8443\n"
                   "provider_ca = /etc/regigate/ca.pem\n"
                   "provider_cert = /etc/regigate/key_cert.pem\n"
                   "provider_key = /etc/regigate/key_cert.pem\n");
    r = &conf->routes[0];
    assert_string_equal(r->provider, "https://provider.example:8443");
    assert_string_equal(r->cert_dir, "/etc/regigate/routes/out");
    assert_string_equal(r->provider_cert, "/etc/regigate/key_cert.pem");
    assert_string_equal(r->provider_key, "/etc/regigate/key_cert.pem");
    assert_null(rg_conf_free(conf));

    /* defaults: no provider is valid (the rule loader decides whether the
     * route needs one); the paths depend on the route's name */
    conf = load_ok(ROUTE_OUT "[route in-2]\nlisten = 127.0.0.1:10027\nreinject = 127.0.0.1:10028\n");
    for (size_t i = 0; i < 2; i++) {
        r = &conf->routes[i];
        assert_null(r->provider);
        assert_null(r->provider_ca);
        assert_int_equal(r->provider_connect_timeout, 10);
        assert_int_equal(r->provider_timeout, 30);
        assert_int_equal(r->account_cache_ttl, 300);
        assert_int_equal(r->account_cache_negative_ttl, 60);
    }
    assert_string_equal(conf->routes[0].cert_dir, "/etc/regigate/routes/out");
    assert_string_equal(conf->routes[0].provider_cert, "/etc/regigate/routes/out/provider.crt");
    assert_string_equal(conf->routes[0].provider_key, "/etc/regigate/routes/out/provider.key");
    assert_string_equal(conf->routes[1].cert_dir, "/etc/regigate/routes/in-2");
    assert_string_equal(conf->routes[1].provider_key, "/etc/regigate/routes/in-2/provider.key");
    assert_null(rg_conf_free(conf));
}

static void test_provider_url(void **state)
{
    static const struct { const char *value, *stored; } good[] = {
        { "https://provider.example:8443", "https://provider.example:8443" },
        { "https://provider.example:8443/", "https://provider.example:8443" },
        { "https://provider.example", "https://provider.example" },
        { "https://192.0.2.7:443", "https://192.0.2.7:443" },
        { "https://[2001:db8::7]:8443", "https://[2001:db8::7]:8443" },
        { "https://[::1]", "https://[::1]" },
        { "provider.example:8443", "https://provider.example:8443" },
        { "127.0.0.1:8443", "https://127.0.0.1:8443" },
    };
    static const char *const bad[] = {
        "provider.example", "https://", "https://:8443", "https://provider.example:0",
        "https://provider.example:65536", "https://provider.example:84x3",
        "https://provider.example:8443/v1", "https://user@provider.example:8443",
        "https://provider.example:8443?x=1", "https://bad_host:8443", "https://[::1:8443",
        "https://[::g]:8443", "https://999.1.1.1:8443", "https://provider.example:8443//",
        "HTTPS://provider.example:8443",
    };
    char text[512], msg[256];
    struct rg_conf *conf;

    (void)state;
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        snprintf(text, sizeof(text), ROUTE_OUT "provider = %s\nprovider_ca = /ca.pem\n",
                 good[i].value);
        conf = load_ok(text);
        assert_string_equal(conf->routes[0].provider, good[i].stored);
        rg_conf_free(conf);
        assert_int_equal(rg_provider_url_check(good[i].value), 0);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (rg_provider_url_check(bad[i]) != -1)
            fail_msg("'%s' was accepted", bad[i]);
        snprintf(text, sizeof(text), ROUTE_OUT "provider = %s\nprovider_ca = /ca.pem\n", bad[i]);
        snprintf(msg, sizeof(msg), "provider must be https://HOST[:PORT] or HOST:PORT, not '%s'",
                 bad[i]);
        expect_error(text, 4, msg);
    }
    /* other schemes, plain http above all, are named as such */
    expect_error(ROUTE_OUT "provider = http://provider.example:8080\n", 4,
                 "provider must be an https URL, not 'http://provider.example:8080'");
    expect_error(ROUTE_OUT "provider = ftp://provider.example:21\n", 4,
                 "provider must be an https URL, not 'ftp://provider.example:21'");
}

static void test_bad_provider_keys(void **state)
{
    static const struct bad_case cases[] = {
        { ROUTE_OUT "provider_ca = ca.pem\n", 4, "provider_ca must be an absolute path, not 'ca.pem'" },
        { ROUTE_OUT "provider_cert = route.crt\n", 4,
          "provider_cert must be an absolute path, not 'route.crt'" },
        { ROUTE_OUT "provider_key = ./route.key\n", 4,
          "provider_key must be an absolute path, not './route.key'" },
        { ROUTE_OUT "cert_dir = certs\n", 4, "cert_dir must be an absolute path, not 'certs'" },
        { ROUTE_OUT "cert_dir =\n", 4, "cert_dir has an empty value" },
        { ROUTE_OUT "provider =\n", 4, "provider has an empty value" },
        { ROUTE_OUT "provider_connect_timeout = 0\n", 4,
          "provider_connect_timeout must be between 1 and 300" },
        { ROUTE_OUT "provider_connect_timeout = 301\n", 4,
          "provider_connect_timeout must be between 1 and 300" },
        { ROUTE_OUT "provider_timeout = 0\n", 4, "provider_timeout must be between 1 and 3600" },
        { ROUTE_OUT "provider_timeout = 3601\n", 4, "provider_timeout must be between 1 and 3600" },
        { ROUTE_OUT "provider_timeout = 10s\n", 4, "provider_timeout must be an integer, not '10s'" },
        { ROUTE_OUT "account_cache_ttl = -1\n", 4, "account_cache_ttl must be between 0 and 86400" },
        { ROUTE_OUT "account_cache_ttl = 86401\n", 4, "account_cache_ttl must be between 0 and 86400" },
        { ROUTE_OUT "account_cache_negative_ttl = -1\n", 4,
          "account_cache_negative_ttl must be between 0 and 86400" },
        { ROUTE_OUT "hide_subject = maybe\n", 4, "hide_subject must be yes or no, not 'maybe'" },
        { ROUTE_OUT "hidden_subject = a\tb\n", 4, "hidden_subject must not contain control characters" },
        { ROUTE_OUT "account_cache_negative_ttl = x\n", 4,
          "account_cache_negative_ttl must be an integer, not 'x'" },
        { ROUTE_OUT "provider_ca = /a\nprovider_ca = /b\n", 5,
          "duplicate key 'provider_ca' in [route out] (first on line 4)" },
        { "[global]\nprovider = https://p.example:8443\n" ROUTE_OUT, 2,
          "key 'provider' belongs in a [route NAME] section, not in [global]" },
        { "[global]\ncert_dir = /tmp\n" ROUTE_OUT, 2,
          "key 'cert_dir' belongs in a [route NAME] section, not in [global]" },
        /* a provider without its CA could not be verified */
        { ROUTE_OUT "provider = https://p.example:8443\n", 4,
          "route 'out' has a 'provider' but no 'provider_ca' (the provider's CA certificate)" },
        /* the connect timeout is part of the request's */
        { ROUTE_OUT "provider_timeout = 5\n", 4,
          "provider_connect_timeout (10) must not be greater than provider_timeout (5)" },
        { ROUTE_OUT "provider_timeout = 8\nprovider_connect_timeout = 9\n", 5,
          "provider_connect_timeout (9) must not be greater than provider_timeout (8)" },
    };
    struct rg_conf *conf;

    (void)state;
    EXPECT_ERRORS(cases);
    /* equal is fine; the CA alone (no provider yet) too */
    conf = load_ok(ROUTE_OUT "provider_timeout = 7\nprovider_connect_timeout = 7\n"
                   "provider_ca = /etc/regigate/ca.pem\n");
    assert_int_equal(conf->routes[0].provider_timeout, 7);
    assert_null(conf->routes[0].provider);
    rg_conf_free(conf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_full_file),
        cmocka_unit_test(test_rules_keys),
        cmocka_unit_test(test_provider_keys),
        cmocka_unit_test(test_provider_url),
        cmocka_unit_test(test_bad_provider_keys),
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_route_lookup_and_free),
        cmocka_unit_test(test_comments_and_inline_comments),
        cmocka_unit_test(test_crlf_bom_and_no_final_newline),
        cmocka_unit_test(test_no_continuation_lines),
        cmocka_unit_test(test_ipv6_hostport),
        cmocka_unit_test(test_hostport_parse),
        cmocka_unit_test(test_host_is_loopback),
        cmocka_unit_test(test_sizes),
        cmocka_unit_test(test_bad_int),
        cmocka_unit_test(test_bad_size),
        cmocka_unit_test(test_booleans),
        cmocka_unit_test(test_protocol_and_process),
        cmocka_unit_test(test_bad_hostport),
        cmocka_unit_test(test_mta_section),
        cmocka_unit_test(test_bad_strings),
        cmocka_unit_test(test_empty_value),
        cmocka_unit_test(test_unknown_user),
        cmocka_unit_test(test_unknown_key),
        cmocka_unit_test(test_unknown_section),
        cmocka_unit_test(test_bad_section_header),
        cmocka_unit_test(test_long_route_name),
        cmocka_unit_test(test_key_outside_section),
        cmocka_unit_test(test_duplicate_key),
        cmocka_unit_test(test_duplicate_sections),
        cmocka_unit_test(test_syntax_error),
        cmocka_unit_test(test_first_error_wins),
        cmocka_unit_test(test_long_line),
        cmocka_unit_test(test_nul_byte),
        cmocka_unit_test(test_missing_listen_reinject),
        cmocka_unit_test(test_no_routes),
        cmocka_unit_test(test_remote_listen),
        cmocka_unit_test(test_duplicate_listen),
        cmocka_unit_test(test_reinject_loop),
        cmocka_unit_test(test_spare_order),
        cmocka_unit_test(test_missing_file),
        cmocka_unit_test(test_unreadable_file),
        cmocka_unit_test(test_small_error_buffer),
        cmocka_unit_test(test_contrib_sample),
        cmocka_unit_test(test_routes_dir_order_and_keys),
        cmocka_unit_test(test_routes_dir_errors),
        cmocka_unit_test(test_public_side_checks),
    };

    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
