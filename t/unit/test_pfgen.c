/*
 * test_pfgen.c - unit tests of lib/pfgen.c: the generated Postfix
 * configuration is deterministic and exact, and the merge replaces only
 * its own block.
 */
#include "config.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conffile.h"
#include "mem.h"
#include "pfgen.h"

/* Two routes given out of id order, and one without a public side. */
static void make_conf(struct rg_conf *conf, struct rg_route *r)
{
    memset(conf, 0, sizeof(*conf));
    memset(r, 0, 3 * sizeof(*r));
    conf->path = "/etc/regigate/regigate.conf";
    conf->routes_dir = "/etc/regigate/routes";
    conf->max_servers = 8;
    conf->routes = r;
    conf->nroutes = 3;
    rg_mta_init(&conf->mta);
    for (int i = 0; i < 3; i++)
        rg_mta_init(&r[i].mta);

    r[0].name = "inbound";
    r[0].id = 2;
    r[0].file = "/etc/regigate/routes/inbound/route.conf";
    snprintf(r[0].listen.host, sizeof(r[0].listen.host), "127.0.0.1");
    r[0].listen.port = 10035;
    snprintf(r[0].reinject.host, sizeof(r[0].reinject.host), "127.0.0.1");
    r[0].reinject.port = 10036;
    snprintf(r[0].public_listen.host, sizeof(r[0].public_listen.host), "192.0.2.10");
    r[0].public_listen.port = 25;
    r[0].protocol = RG_PROTO_LMTP;
    r[0].max_message_size = 1000;
    r[0].max_recipients = 50;
    r[0].accept_domains = "example.com .example.org";
    r[0].forward_to = "[192.168.1.5]:25";
    r[0].mta_hostname = "gw.example.com";
    r[0].cert_dir = "/etc/regigate/routes/inbound";

    r[1].name = "plain";        /* regigated only: no public_listen */
    r[1].file = "/etc/regigate/regigate.conf";

    r[2].name = "outbound";
    r[2].id = 1;
    r[2].file = "/etc/regigate/routes/outbound/route.conf";
    snprintf(r[2].listen.host, sizeof(r[2].listen.host), "127.0.0.1");
    r[2].listen.port = 10025;
    snprintf(r[2].reinject.host, sizeof(r[2].reinject.host), "127.0.0.1");
    r[2].reinject.port = 10026;
    snprintf(r[2].public_listen.host, sizeof(r[2].public_listen.host), "2001:db8::10");
    r[2].public_listen.port = 2525;
    r[2].max_message_size = 2000;
    r[2].max_recipients = 1000;
    r[2].accept_from = "192.168.1.0/24 [2001:db8::]/32";
    r[2].mta_hostname = "out.example.com";
    r[2].cert_dir = "/etc/regigate/routes/outbound";
}

static const char *want_master =
    RG_PFGEN_BEGIN "\n"
    "# master.cf entries of the regigate routes in /etc/regigate/regigate.conf and /etc/regigate/routes (2 routes);\n"
    "# see regigate-postfix(5). Change the routes with regigatectl route set, then run\n"
    "# regigatectl postfix generate --apply.\n"
    "#\n"
    "# route outbound (id 1, /etc/regigate/routes/outbound/route.conf): public smtpd [2001:db8::10]:2525 -> regigated 127.0.0.1:10025 -> reinjection 127.0.0.1:10026 -> DNS/MX\n"
    "[2001:db8::10]:2525 inet n - n - - smtpd\n"
    "  -o syslog_name=postfix/regigate-outbound\n"
    "  -o content_filter=regigate-outbound:[127.0.0.1]:10025\n"
    "  -o smtpd_client_restrictions=\n"
    "  -o smtpd_helo_restrictions=\n"
    "  -o smtpd_sender_restrictions=\n"
    "  -o mynetworks=192.168.1.0/24,[2001:db8::]/32\n"
    "  -o parent_domain_matches_subdomains=\n"
    "  -o smtpd_relay_restrictions=permit_mynetworks,reject\n"
    "  -o smtpd_recipient_restrictions=\n"
    "  -o message_size_limit=2000\n"
    "  -o smtpd_tls_security_level=may\n"
    "  -o smtpd_tls_chain_files=/etc/regigate/routes/outbound/key_cert.pem\n"
    "  -o smtpd_tls_received_header=yes\n"
    "regigate-outbound unix - - n - 8 smtp\n"
    "  -o syslog_name=postfix/regigate-outbound-filter\n"
    "  -o smtp_data_done_timeout=1200\n"
    "  -o smtp_send_xforward_command=yes\n"
    "  -o smtp_dns_support_level=disabled\n"
    "  -o smtp_tls_security_level=none\n"
    "  -o max_use=20\n"
    "127.0.0.1:10026 inet n - n - - smtpd\n"
    "  -o syslog_name=postfix/regigate-outbound-reinject\n"
    "  -o content_filter=\n"
    "  -o receive_override_options=no_unknown_recipient_checks,no_header_body_checks,no_milters\n"
    "  -o smtpd_client_restrictions=\n"
    "  -o smtpd_helo_restrictions=\n"
    "  -o smtpd_sender_restrictions=\n"
    "  -o smtpd_relay_restrictions=\n"
    "  -o smtpd_recipient_restrictions=permit_mynetworks,reject\n"
    "  -o mynetworks=127.0.0.0/8,[::1]/128\n"
    "  -o smtpd_authorized_xforward_hosts=127.0.0.0/8,[::1]/128\n"
    "  -o message_size_limit=4000\n"
    "  -o smtpd_tls_security_level=none\n"
    "  -o smtpd_error_sleep_time=0\n"
    "  -o smtpd_client_connection_count_limit=0\n"
    "  -o smtpd_client_connection_rate_limit=0\n"
    "# mta_hostname out.example.com: this route delivers through Postfix's shared DNS/MX routing;\n"
    "# set smtp_helo_name = out.example.com in main.cf for it to apply.\n"
    "#\n"
    "# route inbound (id 2, /etc/regigate/routes/inbound/route.conf): public smtpd 192.0.2.10:25 -> regigated 127.0.0.1:10035 -> reinjection 127.0.0.1:10036 -> [192.168.1.5]:25\n"
    "192.0.2.10:25 inet n - n - - smtpd\n"
    "  -o syslog_name=postfix/regigate-inbound\n"
    "  -o content_filter=regigate-inbound:inet:[127.0.0.1]:10035\n"
    "  -o smtpd_client_restrictions=\n"
    "  -o smtpd_helo_restrictions=\n"
    "  -o smtpd_sender_restrictions=\n"
    "  -o mynetworks=\n"
    "  -o parent_domain_matches_subdomains=\n"
    "  -o smtpd_relay_restrictions=check_recipient_access,inline:{example.com=OK,.example.org=OK},reject\n"
    "  -o smtpd_recipient_restrictions=\n"
    "  -o message_size_limit=1000\n"
    "  -o smtpd_tls_security_level=may\n"
    "  -o smtpd_tls_chain_files=/etc/regigate/routes/inbound/key_cert.pem\n"
    "  -o smtpd_tls_received_header=yes\n"
    "regigate-inbound unix - - n - 8 lmtp\n"
    "  -o syslog_name=postfix/regigate-inbound-filter\n"
    "  -o lmtp_data_done_timeout=1200\n"
    "  -o lmtp_send_xforward_command=yes\n"
    "  -o lmtp_dns_support_level=disabled\n"
    "  -o lmtp_tls_security_level=none\n"
    "  -o max_use=20\n"
    "127.0.0.1:10036 inet n - n - - smtpd\n"
    "  -o syslog_name=postfix/regigate-inbound-reinject\n"
    "  -o content_filter=regigate-inbound-out:[192.168.1.5]:25\n"
    "  -o receive_override_options=no_unknown_recipient_checks,no_header_body_checks,no_milters\n"
    "  -o smtpd_client_restrictions=\n"
    "  -o smtpd_helo_restrictions=\n"
    "  -o smtpd_sender_restrictions=\n"
    "  -o smtpd_relay_restrictions=\n"
    "  -o smtpd_recipient_restrictions=permit_mynetworks,reject\n"
    "  -o mynetworks=127.0.0.0/8,[::1]/128\n"
    "  -o smtpd_authorized_xforward_hosts=127.0.0.0/8,[::1]/128\n"
    "  -o message_size_limit=2000\n"
    "  -o smtpd_tls_security_level=none\n"
    "  -o smtpd_error_sleep_time=0\n"
    "  -o smtpd_client_connection_count_limit=0\n"
    "  -o smtpd_client_connection_rate_limit=0\n"
    "regigate-inbound-out unix - - n - - smtp\n"
    "  -o syslog_name=postfix/regigate-inbound-out\n"
    "  -o smtp_helo_name=gw.example.com\n"
    RG_PFGEN_END "\n";

static const char *want_main =
    RG_PFGEN_BEGIN "\n"
    "# main.cf parameters of the regigate routes (2 routes); see regigate-postfix(5).\n"
    "regigate-outbound_destination_concurrency_limit = 8\n"
    "regigate-outbound_destination_recipient_limit = 100\n"
    "regigate-inbound_destination_concurrency_limit = 8\n"
    "regigate-inbound_destination_recipient_limit = 50\n"
    RG_PFGEN_END "\n";

static void test_generate_exact_and_deterministic(void **state)
{
    struct rg_conf conf;
    struct rg_route r[3];
    char *m1, *m2, *n1;

    (void)state;
    make_conf(&conf, r);
    m1 = rg_pfgen_master(&conf);
    assert_string_equal(m1, want_master);
    m2 = rg_pfgen_master(&conf);
    assert_string_equal(m1, m2);
    n1 = rg_pfgen_main(&conf);
    assert_string_equal(n1, want_main);
    rg_free(m1);
    rg_free(m2);
    rg_free(n1);
}

static void test_generate_no_routes(void **state)
{
    struct rg_conf conf;
    struct rg_route r[3];
    char *m;

    (void)state;
    make_conf(&conf, r);
    conf.nroutes = 0;
    m = rg_pfgen_main(&conf);
    assert_string_equal(m, RG_PFGEN_BEGIN "\n# main.cf parameters of the regigate routes (0 routes); "
                        "see regigate-postfix(5).\n" RG_PFGEN_END "\n");
    rg_free(m);
}

static void test_merge(void **state)
{
    const char *block = RG_PFGEN_BEGIN "\nnew = 1\n" RG_PFGEN_END "\n";
    char *m;

    (void)state;
    /* appended when absent, with a newline added to an unterminated file */
    m = rg_pfgen_merge("a = 1\nb = 2", block);
    assert_string_equal(m, "a = 1\nb = 2\n" RG_PFGEN_BEGIN "\nnew = 1\n" RG_PFGEN_END "\n");
    rg_free(m);
    m = rg_pfgen_merge("", block);
    assert_string_equal(m, block);
    rg_free(m);
    /* replaced in place, the rest kept byte for byte */
    m = rg_pfgen_merge("a = 1\n" RG_PFGEN_BEGIN "\nold = 1\nold = 2\n" RG_PFGEN_END "\nz = 9\n", block);
    assert_string_equal(m, "a = 1\n" RG_PFGEN_BEGIN "\nnew = 1\n" RG_PFGEN_END "\nz = 9\n");
    rg_free(m);
    /* an empty block removes it */
    m = rg_pfgen_merge("a = 1\n" RG_PFGEN_BEGIN "\nold = 1\n" RG_PFGEN_END "\nz = 9\n", "");
    assert_string_equal(m, "a = 1\nz = 9\n");
    rg_free(m);
    /* a marker that is only part of a line is not one */
    m = rg_pfgen_merge("x " RG_PFGEN_BEGIN "\n", block);
    assert_string_equal(m, "x " RG_PFGEN_BEGIN "\n" RG_PFGEN_BEGIN "\nnew = 1\n" RG_PFGEN_END "\n");
    rg_free(m);
    /* BEGIN without END: refused */
    assert_null(rg_pfgen_merge("a\n" RG_PFGEN_BEGIN "\nold\n", block));
}

/* The CipherMail-style settings: [mta] into main.cf, route overrides and
 * [mta] defaults into the route's services. */
static void test_mta_settings(void **state)
{
    struct rg_conf conf;
    struct rg_route r[3];
    char *m1, *m2, *n1, *w;

    (void)state;
    make_conf(&conf, r);
    conf.mta.relay_domains = "example.com .example.org";
    conf.mta.match_subdomains = 1;
    conf.mta.mynetworks = "192.168.1.0/24 [2001:db8::]/32";
    conf.mta.myhostname = "mx.example.com";
    conf.mta.smtp_helo_name = "helo.example.com";
    conf.mta.internal_relay_host = "[mail.internal.example]:25";
    conf.mta.internal_relay_host_mx = 0;
    conf.mta.external_relay_host = "[relay.example.net]:587";
    conf.mta.external_relay_host_mx = 1;
    conf.mta.message_size_limit = 104857600;
    conf.mta.transport_maps = "/etc/regigate/transport";
    conf.mta.sasl_password_maps = "/etc/regigate/sasl_passwd";
    conf.mta.reject_unverified_recipient = 1;
    conf.mta.unverified_recipient_reject_code = 450;
    conf.mta.header_checks = "/etc/regigate/header_checks";
    conf.mta.rbl = "zen.example.org bl.example.net=127.0.0.2";
    conf.mta.client_whitelist = "/etc/regigate/client_white";
    conf.mta.client_blacklist = "/etc/regigate/client_black";
    conf.mta.sender_blacklist = "/etc/regigate/sender_black";
    conf.mta.smtp_tls_security_level = "may";
    conf.mta.smtpd_tls_security_level = "may";
    /* route inbound overrides some */
    r[0].mta.rbl = "rbl.example.com";
    r[0].mta.reject_unverified_recipient = 0;
    r[0].mta.match_subdomains = 0;
    r[0].mta.smtpd_tls_security_level = "encrypt";
    r[0].mta.smtp_tls_security_level = "verify";
    r[0].mta.header_checks = "/etc/regigate/routes/inbound/header_checks";
    r[0].forward_to = "[mx.internal.example]:25";
    r[0].forward_to_mx = 1;
    r[0].after_filter_message_size_limit = 5000;

    n1 = rg_pfgen_main(&conf);
    assert_string_equal(n1, RG_PFGEN_BEGIN "\n"
        "# main.cf parameters of the regigate routes (2 routes); see regigate-postfix(5).\n"
        "# [mta]\n"
        "relay_domains = example.com, .example.org\n"
        "parent_domain_matches_subdomains = debug_peer_list, fast_flush_domains, mynetworks, "
        "permit_mx_backup_networks, qmqpd_authorized_clients, relay_domains, smtpd_access_maps\n"
        "mynetworks = 192.168.1.0/24, [2001:db8::]/32\n"
        "myhostname = mx.example.com\n"
        "smtp_helo_name = helo.example.com\n"
        "relay_transport = relay:[mail.internal.example]:25\n"
        "relayhost = relay.example.net:587\n"
        "message_size_limit = 104857600\n"
        "transport_maps = texthash:/etc/regigate/transport\n"
        "smtp_sasl_auth_enable = yes\n"
        "smtp_sasl_password_maps = texthash:/etc/regigate/sasl_passwd\n"
        "smtp_sasl_security_options = noanonymous\n"
        "smtpd_client_restrictions = check_client_access texthash:/etc/regigate/client_white, "
        "check_client_access texthash:/etc/regigate/client_black, reject_rbl_client zen.example.org, "
        "reject_rbl_client bl.example.net=127.0.0.2\n"
        "smtpd_sender_restrictions = check_sender_access texthash:/etc/regigate/sender_black\n"
        "smtpd_recipient_restrictions = reject_unverified_recipient\n"
        "unverified_recipient_reject_code = 450\n"
        "header_checks = regexp:/etc/regigate/header_checks\n"
        "smtp_tls_security_level = may\n"
        "smtpd_tls_security_level = may\n"
        "regigate-outbound_destination_concurrency_limit = 8\n"
        "regigate-outbound_destination_recipient_limit = 100\n"
        "regigate-inbound_destination_concurrency_limit = 8\n"
        "regigate-inbound_destination_recipient_limit = 50\n"
        RG_PFGEN_END "\n");

    m1 = rg_pfgen_master(&conf);
    m2 = rg_pfgen_master(&conf);
    assert_string_equal(m1, m2);
    /* outbound takes [mta]'s values */
    assert_non_null(strstr(m1, "[2001:db8::10]:2525 inet n - n - - smtpd\n"
        "  -o syslog_name=postfix/regigate-outbound\n"
        "  -o content_filter=regigate-outbound:[127.0.0.1]:10025\n"
        "  -o smtpd_client_restrictions=check_client_access,texthash:/etc/regigate/client_white,"
        "check_client_access,texthash:/etc/regigate/client_black,reject_rbl_client,zen.example.org,"
        "reject_rbl_client,bl.example.net=127.0.0.2\n"
        "  -o smtpd_helo_restrictions=\n"
        "  -o smtpd_sender_restrictions=check_sender_access,texthash:/etc/regigate/sender_black\n"
        "  -o mynetworks=192.168.1.0/24,[2001:db8::]/32\n"
        "  -o parent_domain_matches_subdomains=smtpd_access_maps\n"
        "  -o smtpd_relay_restrictions=permit_mynetworks,reject\n"
        "  -o smtpd_recipient_restrictions=reject_unverified_recipient\n"
        "  -o unverified_recipient_reject_code=450\n"
        "  -o message_size_limit=2000\n"
        "  -o smtpd_tls_security_level=may\n"));
    assert_non_null(strstr(m1, "  -o syslog_name=postfix/regigate-outbound-reinject\n"));
    assert_non_null(strstr(m1, "  -o message_size_limit=4000\n"));   /* 2 x before */
    /* inbound overrides */
    assert_non_null(strstr(m1, "  -o syslog_name=postfix/regigate-inbound\n"
        "  -o content_filter=regigate-inbound:inet:[127.0.0.1]:10035\n"
        "  -o smtpd_client_restrictions=check_client_access,texthash:/etc/regigate/client_white,"
        "check_client_access,texthash:/etc/regigate/client_black,reject_rbl_client,rbl.example.com\n"));
    assert_non_null(strstr(m1, "  -o parent_domain_matches_subdomains=\n"
        "  -o smtpd_relay_restrictions=check_recipient_access,inline:{example.com=OK,"
        ".example.org=OK},reject\n"
        "  -o smtpd_recipient_restrictions=\n"
        "  -o message_size_limit=1000\n"
        "  -o smtpd_tls_security_level=encrypt\n"));
    assert_non_null(strstr(m1, "  -o smtpd_tls_received_header=yes\n"
        "  -o cleanup_service_name=regigate-inbound-cleanup\n"));
    assert_non_null(strstr(m1, "  -o content_filter=regigate-inbound-out:mx.internal.example:25\n"));
    assert_non_null(strstr(m1, "  -o message_size_limit=5000\n"));
    assert_non_null(strstr(m1, "regigate-inbound-out unix - - n - - smtp\n"
        "  -o syslog_name=postfix/regigate-inbound-out\n"
        "  -o smtp_helo_name=gw.example.com\n"
        "  -o smtp_tls_security_level=verify\n"
        "regigate-inbound-cleanup unix n - n - 0 cleanup\n"
        "  -o syslog_name=postfix/regigate-inbound-cleanup\n"
        "  -o header_checks=regexp:/etc/regigate/routes/inbound/header_checks\n"));
    assert_null(rg_pfgen_warnings(&conf));

    /* after < before, and main.cf's limit below an after-filter limit: warnings */
    r[0].after_filter_message_size_limit = 999;
    conf.mta.message_size_limit = 3000;
    w = rg_pfgen_warnings(&conf);
    assert_non_null(w);
    assert_string_equal(w, "route inbound: after_filter_message_size_limit (999) is smaller than "
        "max_message_size (1000): encrypted messages near the limit cannot be reinjected; make "
        "it at least twice as large\n"
        "[mta] message_size_limit (3000) is smaller than the after-filter limit of route "
        "outbound (4000): Postfix's cleanup refuses such messages\n");
    rg_free(w);
    rg_free(m1);
    rg_free(m2);
    rg_free(n1);
}

static void test_extract(void **state)
{
    const char *block = RG_PFGEN_BEGIN "\nnew = 1\n" RG_PFGEN_END "\n";
    char *merged, *x;

    (void)state;
    /* what merge put in, extract gives back, whatever surrounds it */
    merged = rg_pfgen_merge("a = 1\nb = 2\n", block);
    x = rg_pfgen_extract(merged);
    assert_non_null(x);
    assert_string_equal(x, block);
    rg_free(x);
    rg_free(merged);
    x = rg_pfgen_extract("a\n" RG_PFGEN_BEGIN "\nq = 2\n" RG_PFGEN_END);    /* no final newline */
    assert_string_equal(x, RG_PFGEN_BEGIN "\nq = 2\n" RG_PFGEN_END);
    rg_free(x);
    assert_null(rg_pfgen_extract("a = 1\n"));
    assert_null(rg_pfgen_extract(RG_PFGEN_BEGIN "\nq = 2\n"));
    assert_null(rg_pfgen_extract("x " RG_PFGEN_BEGIN "\n" RG_PFGEN_END "\n"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_generate_exact_and_deterministic),
        cmocka_unit_test(test_generate_no_routes),
        cmocka_unit_test(test_merge),
        cmocka_unit_test(test_extract),
        cmocka_unit_test(test_mta_settings),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
