/*
 * routeval.h - the values of a route's public side (regigate.conf(5),
 * "The Postfix side of a route"): who may send to the route
 * (accept_from), which recipient domains it accepts mail for
 * (accept_domains), and where it forwards the processed mail (forward_to).
 *
 * Pure functions: they check one entry and turn it into the notation that
 * goes into the generated Postfix configuration. Every function returns 0,
 * or -1 with a one-line reason in err.
 */
#ifndef RG_ROUTEVAL_H
#define RG_ROUTEVAL_H

#include <stddef.h>

/* Longest entry of accept_from / accept_domains after conversion. */
#define RG_RV_ENTRY_MAX 260

/*
 * One accept_from entry, as the appliance took it:
 *   "192.168.1.10"      one address            -> "192.168.1.10"
 *   "192.168.1"         a prefix of 1-3 octets -> "192.168.1.0/24"
 *   "10.0.0.0/8"        CIDR (host bits zero)  -> "10.0.0.0/8"
 *   "2001:db8::1"       an IPv6 address        -> "[2001:db8::1]"
 *   "2001:db8::/32"     IPv6 CIDR              -> "[2001:db8::]/32"
 * out gets Postfix's mynetworks notation.
 */
int rg_rv_network(const char *entry, char *out, size_t outlen, char *err, size_t errlen);

/*
 * One accept_domains entry: a domain name ("example.com", matched
 * exactly) or a dot and a domain (".example.com", any subdomain of it).
 * Labels of letters, digits and '-', at most 253 bytes. out gets it in
 * lower case.
 */
int rg_rv_domain(const char *entry, char *out, size_t outlen, char *err, size_t errlen);

/*
 * forward_to: "HOST", "HOST:PORT", "[IPV6]" or "[IPV6]:PORT"; HOST a host
 * name or an IPv4 address. out gets Postfix's next-hop notation without MX
 * lookup: "[HOST]:PORT" (port 25 by default), "[ipv6:ADDR]:PORT".
 */
int rg_rv_nexthop(const char *value, char *out, size_t outlen, char *err, size_t errlen);

/* Route ids count up from 1: the smallest id > 0 that is not in ids. */
int rg_rv_first_free_id(const int *ids, size_t n);

/*
 * regigated's two loopback ports of route id (1, 2, ...): the listener
 * Postfix hands the route's mail to, and the reinjection smtpd regigated
 * passes it back to. base, base+1 for id 1; base+10, base+11 for id 2; ...
 * (base is route_port_base, default 10025: 10025/10026, 10035/10036, ...).
 * -1 when a port would be above 65535.
 */
int rg_rv_ports(int id, int base, int *listen, int *reinject);

#endif
