/*
 * routeval.c - the values of a route's public side; see routeval.h.
 */
#include "config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "log.h"
#include "routeval.h"

static int reason(char *err, size_t errlen, const char *fmt, ...) RG_PRINTF(3, 4);

static int reason(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    if (err != NULL && errlen > 0) {
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return -1;
}

static int put(char *out, size_t outlen, const char *s, char *err, size_t errlen)
{
    if (strlen(s) >= outlen)
        return reason(err, errlen, "'%s' is too long", s);
    memcpy(out, s, strlen(s) + 1);
    return 0;
}

/* "0".."max", digits only, no leading zeros beyond "0" itself. */
static int parse_num(const char *s, size_t len, int max, int *n)
{
    int v = 0;

    if (len == 0 || len > 5 || (len > 1 && s[0] == '0'))
        return -1;
    for (size_t i = 0; i < len; i++) {
        if (!isdigit((unsigned char)s[i]))
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    if (v > max)
        return -1;
    *n = v;
    return 0;
}

/* Are the bits of addr (len bytes) after the first plen all zero? */
static bool host_bits_zero(const unsigned char *addr, size_t len, int plen)
{
    for (size_t i = 0; i < len; i++) {
        int keep = plen - (int)(i * 8);
        unsigned char mask = keep >= 8 ? 0xff : keep <= 0 ? 0 : (unsigned char)(0xff << (8 - keep));
        if (addr[i] & ~mask)
            return false;
    }
    return true;
}

/* 1 to 3 octets, "192.168.1": the appliance's prefix form. */
static int octet_prefix(const char *s, unsigned char oct[4], int *noct)
{
    const char *p = s;
    int n = 0, v;

    memset(oct, 0, 4);
    while (n < 4) {
        size_t len = strspn(p, "0123456789");
        if (parse_num(p, len, 255, &v) < 0)
            return -1;
        oct[n++] = (unsigned char)v;
        p += len;
        if (*p == '\0')
            break;
        if (*p != '.' || p[1] == '\0')
            return -1;
        p++;
    }
    if (*p != '\0')
        return -1;
    *noct = n;
    return 0;
}

int rg_rv_network(const char *entry, char *out, size_t outlen, char *err, size_t errlen)
{
    char addr[INET6_ADDRSTRLEN + 8], buf[RG_RV_ENTRY_MAX];
    unsigned char bin[16], oct[4];
    const char *slash = strchr(entry, '/');
    size_t alen = slash != NULL ? (size_t)(slash - entry) : strlen(entry);
    int plen = -1, noct;
    bool v6 = memchr(entry, ':', alen) != NULL;

    if (alen == 0 || alen >= sizeof(addr))
        return reason(err, errlen, "'%s' is not an IP address, a prefix like 192.168.1 or "
                      "a network like 10.0.0.0/8", entry);
    memcpy(addr, entry, alen);
    addr[alen] = '\0';
    if (slash != NULL
        && parse_num(slash + 1, strlen(slash + 1), v6 ? 128 : 32, &plen) < 0)
        return reason(err, errlen, "'%s': the prefix length after '/' must be 0 to %d",
                      entry, v6 ? 128 : 32);
    if (v6) {
        if (inet_pton(AF_INET6, addr, bin) != 1)
            return reason(err, errlen, "'%s' is not an IPv6 address", entry);
        if (plen >= 0 && !host_bits_zero(bin, 16, plen))
            return reason(err, errlen, "'%s' has bits set after the first %d: not a network "
                          "address", entry, plen);
        inet_ntop(AF_INET6, bin, addr, sizeof(addr));
        if (plen >= 0)
            snprintf(buf, sizeof(buf), "[%s]/%d", addr, plen);
        else
            snprintf(buf, sizeof(buf), "[%s]", addr);
        return put(out, outlen, buf, err, errlen);
    }
    if (octet_prefix(addr, oct, &noct) < 0)
        return reason(err, errlen, "'%s' is not an IP address, a prefix like 192.168.1 or "
                      "a network like 10.0.0.0/8", entry);
    if (plen < 0 && noct < 4) {
        plen = 8 * noct;        /* "192.168.1" is 192.168.1.0/24 */
    } else if (plen >= 0 && noct < 4) {
        return reason(err, errlen, "'%s': write the network address in full, e.g. "
                      "%d.%d.%d.%d/%d", entry, oct[0], oct[1], oct[2], oct[3], plen);
    }
    if (plen >= 0 && !host_bits_zero(oct, 4, plen))
        return reason(err, errlen, "'%s' has bits set after the first %d: not a network "
                      "address", entry, plen);
    if (plen >= 0)
        snprintf(buf, sizeof(buf), "%d.%d.%d.%d/%d", oct[0], oct[1], oct[2], oct[3], plen);
    else
        snprintf(buf, sizeof(buf), "%d.%d.%d.%d", oct[0], oct[1], oct[2], oct[3]);
    return put(out, outlen, buf, err, errlen);
}

/* A DNS name: labels of 1-63 letters, digits and '-' (not at either end). */
static bool valid_dns_name(const char *s)
{
    size_t len = strlen(s), label = 0;

    if (len == 0 || len > 253)
        return false;
    for (size_t i = 0; i <= len; i++) {
        char ch = s[i];
        if (ch == '.' || ch == '\0') {
            if (label == 0 || label > 63 || s[i - 1] == '-')
                return false;
            label = 0;
        } else if (isalnum((unsigned char)ch) || (ch == '-' && label > 0)) {
            label++;
        } else {
            return false;
        }
    }
    return true;
}

int rg_rv_domain(const char *entry, char *out, size_t outlen, char *err, size_t errlen)
{
    char buf[RG_RV_ENTRY_MAX];
    const char *name = entry[0] == '.' ? entry + 1 : entry;
    const char *last = strrchr(name, '.');

    /* a top-level label is never all digits (RFC 3696, 2): that also
     * refuses addresses, "192.0.2.1" and the partial "1.2.3" alike */
    last = last ? last + 1 : name;
    if (!valid_dns_name(name) || strspn(last, "0123456789") == strlen(last))
        return reason(err, errlen, "'%s' is not a domain name (or .domain for its "
                      "subdomains)", entry);
    if (strlen(entry) >= sizeof(buf))
        return reason(err, errlen, "'%s' is too long", entry);
    for (size_t i = 0; i <= strlen(entry); i++)
        buf[i] = (char)tolower((unsigned char)entry[i]);
    return put(out, outlen, buf, err, errlen);
}

int rg_rv_nexthop(const char *value, char *out, size_t outlen, char *err, size_t errlen)
{
    char host[256], buf[RG_RV_ENTRY_MAX];
    unsigned char bin[16];
    const char *port_s = NULL, *end;
    size_t hlen;
    int port = 25;
    bool v6 = false;

    if (value[0] == '[') {
        end = strchr(value, ']');
        if (end == NULL)
            return reason(err, errlen, "'%s': missing ']'", value);
        hlen = (size_t)(end - value - 1);
        if (hlen == 0 || hlen >= sizeof(host))
            return reason(err, errlen, "'%s' is not [ADDRESS] or [ADDRESS]:PORT", value);
        memcpy(host, value + 1, hlen);
        host[hlen] = '\0';
        if (end[1] == ':')
            port_s = end + 2;
        else if (end[1] != '\0')
            return reason(err, errlen, "'%s': unexpected text after ']'", value);
        v6 = strchr(host, ':') != NULL;
        if (v6 && inet_pton(AF_INET6, host, bin) != 1)
            return reason(err, errlen, "'%s': '%s' is not an IPv6 address", value, host);
    } else {
        end = strchr(value, ':');
        if (end != NULL && strchr(end + 1, ':') != NULL)
            return reason(err, errlen, "'%s': write an IPv6 address in brackets, "
                          "[ADDRESS]:PORT", value);
        hlen = end != NULL ? (size_t)(end - value) : strlen(value);
        if (hlen == 0 || hlen >= sizeof(host))
            return reason(err, errlen, "'%s' is not HOST or HOST:PORT", value);
        memcpy(host, value, hlen);
        host[hlen] = '\0';
        if (end != NULL)
            port_s = end + 1;
    }
    if (!v6 && !valid_dns_name(host))
        return reason(err, errlen, "'%s': '%s' is not a host name or IPv4 address", value, host);
    if (!v6 && strspn(host, "0123456789.") == strlen(host)
        && inet_pton(AF_INET, host, bin) != 1)
        return reason(err, errlen, "'%s': '%s' is not an IPv4 address", value, host);
    if (port_s != NULL && (parse_num(port_s, strlen(port_s), 65535, &port) < 0 || port == 0))
        return reason(err, errlen, "'%s': the port must be 1 to 65535", value);
    if (v6) {
        inet_ntop(AF_INET6, bin, host, sizeof(host));
        snprintf(buf, sizeof(buf), "[ipv6:%s]:%d", host, port);
    } else {
        for (char *p = host; *p; p++)
            *p = (char)tolower((unsigned char)*p);
        snprintf(buf, sizeof(buf), "[%s]:%d", host, port);
    }
    return put(out, outlen, buf, err, errlen);
}

int rg_rv_first_free_id(const int *ids, size_t n)
{
    for (int id = 1;; id++) {
        bool used = false;
        for (size_t i = 0; i < n && !used; i++)
            used = ids[i] == id;
        if (!used)
            return id;
    }
}

int rg_rv_ports(int id, int base, int *listen, int *reinject)
{
    long long l = (long long)base + 10LL * (id - 1);

    if (id < 1 || base < 1 || l + 1 > 65535)
        return -1;
    *listen = (int)l;
    *reinject = (int)l + 1;
    return 0;
}
