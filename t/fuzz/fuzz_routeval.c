/*
 * fuzz_routeval.c - libFuzzer target for the values of a route that end
 * up in the generated Postfix configuration: lib/routeval.c
 * (rg_rv_network, rg_rv_domain, rg_rv_nexthop: accept_from,
 * accept_domains, forward_to) and the host/port and provider URL checks of
 * lib/conffile.c (rg_hostport_parse, rg_provider_url_check,
 * rg_host_is_loopback). regigate.conf and `regigatectl route add|set`
 * pass one word to them; the input is that word (up to its first NUL).
 *
 * Invariants (abort() when broken):
 *  - an accepted value converts to a non-empty string of Postfix's
 *    notation only: [0-9a-f.:/[]] for networks, [a-z0-9.-] for domains,
 *    "[HOST]:PORT" with HOST of [a-z0-9.:-] (and "ipv6:") for next hops,
 *    so nothing a peer of regigatectl types can reach main.cf or
 *    master.cf but a value; a refusal has a non-empty reason;
 *  - the conversion is stable: converting its result (without the
 *    brackets for IPv6 networks, with [ADDR] for IPv6 next hops) gives it
 *    again; a domain is the entry in lower case;
 *  - an output buffer of exactly strlen(result) + 1 bytes is enough and
 *    one byte less is refused (the buffers are heap blocks of that size,
 *    so a write past them is caught);
 *  - rg_hostport_parse gives a host of 1..255 bytes and a port 1..65535
 *    that print and parse back to the same; rg_provider_url_check accepts
 *    what rg_hostport_parse accepts (without "/?#@ "), with "https://" in
 *    front and with a trailing '/'.
 */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conffile.h"
#include "routeval.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_INPUT 1024

typedef int (*convert_fn)(const char *, char *, size_t, char *, size_t);

static void check(int ok)
{
    if (!ok)
        abort();
}

static void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);

    check(p != NULL);
    return p;
}

static int only(const char *s, const char *allowed)
{
    return strspn(s, allowed) == strlen(s);
}

/* Convert v: 0 with the result in out (RG_RV_ENTRY_MAX bytes), or -1. */
static int convert(convert_fn f, const char *v, char *out)
{
    char err[200];
    int rc;

    err[0] = 0;
    rc = f(v, out, RG_RV_ENTRY_MAX, err, sizeof(err));
    check(rc == 0 || rc == -1);
    if (rc < 0)
        check(err[0] != 0);
    else
        check(out[0] != 0 && strlen(out) < RG_RV_ENTRY_MAX);
    return rc;
}

/* The result fits a buffer of its own size and not one byte less. */
static void check_exact_fit(convert_fn f, const char *v, const char *want)
{
    size_t n = strlen(want) + 1;
    char *out = xmalloc(n), err[200];

    check(f(v, out, n, err, sizeof(err)) == 0 && strcmp(out, want) == 0);
    free(out);
    out = xmalloc(n - 1);
    check(f(v, out, n - 1, err, sizeof(err)) == -1);
    free(out);
}

/* Converting v gives want. */
static void check_stable(convert_fn f, const char *v, const char *want)
{
    char out[RG_RV_ENTRY_MAX];

    check(convert(f, v, out) == 0 && strcmp(out, want) == 0);
}

static void check_network(const char *v)
{
    char out[RG_RV_ENTRY_MAX], plain[RG_RV_ENTRY_MAX];
    const char *close;

    if (convert(rg_rv_network, v, out) < 0)
        return;
    check(only(out, "0123456789abcdef.:/[]"));
    check(strchr(out, '/') == strrchr(out, '/'));
    check_exact_fit(rg_rv_network, v, out);
    if (out[0] == '[') {
        close = strchr(out, ']');
        check(close != NULL && (close[1] == '\0' || close[1] == '/'));
        snprintf(plain, sizeof(plain), "%.*s%s", (int)(close - out - 1), out + 1, close + 1);
        check_stable(rg_rv_network, plain, out);
    } else {
        check(strchr(out, ':') == NULL && strchr(out, '[') == NULL);
        check_stable(rg_rv_network, out, out);
    }
}

static void check_domain(const char *v)
{
    char out[RG_RV_ENTRY_MAX];

    if (convert(rg_rv_domain, v, out) < 0)
        return;
    check(only(out, "abcdefghijklmnopqrstuvwxyz0123456789.-"));
    check(strlen(out) == strlen(v));
    for (size_t i = 0; v[i]; i++)
        check(out[i] == (v[i] >= 'A' && v[i] <= 'Z' ? v[i] + ('a' - 'A') : v[i]));
    check_exact_fit(rg_rv_domain, v, out);
    check_stable(rg_rv_domain, out, out);
}

static void check_nexthop(const char *v)
{
    char out[RG_RV_ENTRY_MAX], again[RG_RV_ENTRY_MAX];
    const char *close, *port;

    if (convert(rg_rv_nexthop, v, out) < 0)
        return;
    check(out[0] == '[');
    close = strrchr(out, ']');
    check(close != NULL && close[1] == ':');
    port = close + 2;
    check(port[0] >= '1' && port[0] <= '9' && strlen(port) <= 5 && only(port, "0123456789")
          && atoi(port) <= 65535);
    check_exact_fit(rg_rv_nexthop, v, out);
    if (strncmp(out, "[ipv6:", 6) == 0) {
        check(strchr(out + 6, '[') == NULL && strchr(out + 6, ']') == close);
        check(only(out + 6, "0123456789abcdef.:[]"));
        snprintf(again, sizeof(again), "[%s", out + 6);
        check_stable(rg_rv_nexthop, again, out);
    } else {
        check(strchr(out + 1, '[') == NULL && strchr(out, ']') == close);
        check(only(out + 1, "abcdefghijklmnopqrstuvwxyz0123456789.-:]"));
        check_stable(rg_rv_nexthop, out, out);
    }
}

static void check_hostport(const char *v)
{
    struct rg_hostport hp, hp2;
    char buf[300], *url;
    size_t n = strlen(v);
    int lb;

    lb = rg_host_is_loopback(v);
    check(lb == 0 || lb == 1);
    if (rg_hostport_parse(v, &hp) < 0)
        return;
    check(hp.host[0] != 0 && strlen(hp.host) < sizeof(hp.host));
    check(hp.port >= 1 && hp.port <= 65535);
    lb = rg_host_is_loopback(hp.host);
    check(lb == 0 || lb == 1);
    snprintf(buf, sizeof(buf), strchr(hp.host, ':') ? "[%s]:%d" : "%s:%d", hp.host, hp.port);
    check(rg_hostport_parse(buf, &hp2) == 0);
    check(strcmp(hp.host, hp2.host) == 0 && hp.port == hp2.port);

    if (strpbrk(v, "/?#@ ") != NULL)
        return;
    check(rg_provider_url_check(v) == 0);
    url = xmalloc(n + 10);
    snprintf(url, n + 10, "https://%s", v);
    check(rg_provider_url_check(url) == 0);
    snprintf(url, n + 10, "https://%s/", v);
    check(rg_provider_url_check(url) == 0);
    free(url);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *v;
    int rc;

    if (size > MAX_INPUT)
        return 0;
    v = xmalloc(size + 1);
    memcpy(v, data, size);
    v[size] = 0;

    check_network(v);
    check_domain(v);
    check_nexthop(v);
    check_hostport(v);
    rc = rg_provider_url_check(v);
    check(rc == 0 || rc == -1);
    free(v);
    return 0;
}
