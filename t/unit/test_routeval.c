/*
 * test_routeval.c - unit tests of lib/routeval.c: accept_from entries,
 * accept_domains entries, forward_to, route ids and loopback ports.
 */
#include "config.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "routeval.h"

typedef int (*conv_fn)(const char *, char *, size_t, char *, size_t);

static void good(conv_fn f, const char *in, const char *want)
{
    char out[RG_RV_ENTRY_MAX], err[512] = "";

    if (f(in, out, sizeof(out), err, sizeof(err)) != 0)
        fail_msg("'%s' refused: %s", in, err);
    assert_string_equal(out, want);
}

static void bad(conv_fn f, const char *in, const char *want_err)
{
    char out[RG_RV_ENTRY_MAX], err[512] = "";

    if (f(in, out, sizeof(out), err, sizeof(err)) == 0)
        fail_msg("'%s' accepted as '%s'", in, out);
    assert_string_equal(err, want_err);
}

static void test_network(void **state)
{
    (void)state;
    good(rg_rv_network, "192.168.1.10", "192.168.1.10");
    good(rg_rv_network, "192.168.1", "192.168.1.0/24");
    good(rg_rv_network, "172.16", "172.16.0.0/16");
    good(rg_rv_network, "10", "10.0.0.0/8");
    good(rg_rv_network, "10.0.0.0/8", "10.0.0.0/8");
    good(rg_rv_network, "192.168.1.128/25", "192.168.1.128/25");
    good(rg_rv_network, "0.0.0.0/0", "0.0.0.0/0");
    good(rg_rv_network, "192.0.2.7/32", "192.0.2.7/32");
    good(rg_rv_network, "2001:DB8::1", "[2001:db8::1]");
    good(rg_rv_network, "2001:db8:0::/32", "[2001:db8::]/32");
    bad(rg_rv_network, "192.168.1.1/24",
        "'192.168.1.1/24' has bits set after the first 24: not a network address");
    bad(rg_rv_network, "192.168.1/24",
        "'192.168.1/24': write the network address in full, e.g. 192.168.1.0/24");
    bad(rg_rv_network, "10.0.0.0/33", "'10.0.0.0/33': the prefix length after '/' must be 0 to 32");
    bad(rg_rv_network, "10.0.0.0/", "'10.0.0.0/': the prefix length after '/' must be 0 to 32");
    bad(rg_rv_network, "256.1.1.1", "'256.1.1.1' is not an IP address, a prefix like 192.168.1 "
        "or a network like 10.0.0.0/8");
    bad(rg_rv_network, "192.168.1.", "'192.168.1.' is not an IP address, a prefix like "
        "192.168.1 or a network like 10.0.0.0/8");
    bad(rg_rv_network, "1.2.3.4.5", "'1.2.3.4.5' is not an IP address, a prefix like 192.168.1 "
        "or a network like 10.0.0.0/8");
    bad(rg_rv_network, "010.1.1.1", "'010.1.1.1' is not an IP address, a prefix like 192.168.1 "
        "or a network like 10.0.0.0/8");
    bad(rg_rv_network, "mail.example.com", "'mail.example.com' is not an IP address, a prefix "
        "like 192.168.1 or a network like 10.0.0.0/8");
    bad(rg_rv_network, "", "'' is not an IP address, a prefix like 192.168.1 or a network like "
        "10.0.0.0/8");
    bad(rg_rv_network, "2001:db8::1/64", "'2001:db8::1/64' has bits set after the first 64: "
        "not a network address");
    bad(rg_rv_network, "2001:db8::g", "'2001:db8::g' is not an IPv6 address");
    bad(rg_rv_network, "::/129", "'::/129': the prefix length after '/' must be 0 to 128");
}

static void test_domain(void **state)
{
    (void)state;
    good(rg_rv_domain, "example.com", "example.com");
    good(rg_rv_domain, "Mail.Example.COM", "mail.example.com");
    good(rg_rv_domain, ".example.org", ".example.org");
    good(rg_rv_domain, "xn--bcher-kva.example", "xn--bcher-kva.example");
    bad(rg_rv_domain, "-bad.example", "'-bad.example' is not a domain name (or .domain for its "
        "subdomains)");
    bad(rg_rv_domain, "bad-.example", "'bad-.example' is not a domain name (or .domain for its "
        "subdomains)");
    bad(rg_rv_domain, "a..b", "'a..b' is not a domain name (or .domain for its subdomains)");
    bad(rg_rv_domain, "user@example.com", "'user@example.com' is not a domain name (or .domain "
        "for its subdomains)");
    bad(rg_rv_domain, "1.2.3", "'1.2.3' is not a domain name (or .domain for its subdomains)");
    bad(rg_rv_domain, ".10.20", "'.10.20' is not a domain name (or .domain for its subdomains)");
    good(rg_rv_domain, "3com.example", "3com.example");
    good(rg_rv_domain, "123.example", "123.example");
    bad(rg_rv_domain, "192.0.2.1", "'192.0.2.1' is not a domain name (or .domain for its "
        "subdomains)");
    bad(rg_rv_domain, ".", "'.' is not a domain name (or .domain for its subdomains)");
}

static void test_nexthop(void **state)
{
    (void)state;
    good(rg_rv_nexthop, "mail.example.com", "[mail.example.com]:25");
    good(rg_rv_nexthop, "Mail.Example.com:2525", "[mail.example.com]:2525");
    good(rg_rv_nexthop, "192.0.2.25", "[192.0.2.25]:25");
    good(rg_rv_nexthop, "[192.0.2.25]:587", "[192.0.2.25]:587");
    good(rg_rv_nexthop, "[2001:db8::25]", "[ipv6:2001:db8::25]:25");
    good(rg_rv_nexthop, "[2001:db8::25]:26", "[ipv6:2001:db8::25]:26");
    bad(rg_rv_nexthop, "2001:db8::25", "'2001:db8::25': write an IPv6 address in brackets, "
        "[ADDRESS]:PORT");
    bad(rg_rv_nexthop, "mail.example.com:0", "'mail.example.com:0': the port must be 1 to 65535");
    bad(rg_rv_nexthop, "mail.example.com:65536",
        "'mail.example.com:65536': the port must be 1 to 65535");
    bad(rg_rv_nexthop, "mail.example.com:", "'mail.example.com:': the port must be 1 to 65535");
    bad(rg_rv_nexthop, "192.0.2.256", "'192.0.2.256': '192.0.2.256' is not an IPv4 address");
    bad(rg_rv_nexthop, "[x]y", "'[x]y': unexpected text after ']'");
    bad(rg_rv_nexthop, "a b", "'a b': 'a b' is not a host name or IPv4 address");
    bad(rg_rv_nexthop, ":25", "':25' is not HOST or HOST:PORT");
}

static void test_first_free_id(void **state)
{
    static const int none[1] = { 0 };
    static const int some[] = { 3, 1, 4 };
    static const int dense[] = { 2, 1, 3 };

    (void)state;
    assert_int_equal(rg_rv_first_free_id(none, 0), 1);
    assert_int_equal(rg_rv_first_free_id(some, 3), 2);     /* the first gap */
    assert_int_equal(rg_rv_first_free_id(dense, 3), 4);
}

static void test_ports(void **state)
{
    int l = 0, r = 0;

    (void)state;
    assert_int_equal(rg_rv_ports(1, 10025, &l, &r), 0);
    assert_int_equal(l, 10025);
    assert_int_equal(r, 10026);
    assert_int_equal(rg_rv_ports(2, 10025, &l, &r), 0);
    assert_int_equal(l, 10035);
    assert_int_equal(r, 10036);
    assert_int_equal(rg_rv_ports(999, 10025, &l, &r), 0);
    assert_int_equal(l, 20005);
    assert_int_equal(rg_rv_ports(0, 10025, &l, &r), -1);
    assert_int_equal(rg_rv_ports(2, 65530, &l, &r), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_network),
        cmocka_unit_test(test_domain),
        cmocka_unit_test(test_nexthop),
        cmocka_unit_test(test_first_free_id),
        cmocka_unit_test(test_ports),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
