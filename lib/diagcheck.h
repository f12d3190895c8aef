/*
 * diagcheck.h - the verdicts of regigatectl diagnose (regigatectl(8),
 * "DIAGNOSTICS"): pure functions that turn what was measured (a mode, a
 * free-space figure, an expiry date, a limit, the names a lookup gave)
 * into OK / WARN / FAIL with a one-line detail and, unless OK, a remedy.
 * The command does the measuring (stat, statvfs, connect, postconf); the
 * judgement lives here so that it can be unit-tested.
 */
#ifndef RG_DIAGCHECK_H
#define RG_DIAGCHECK_H

#include <stddef.h>
#include <sys/types.h>
#include <time.h>

enum rg_dc_level {
    RG_DC_OK,
    RG_DC_NOTE,         /* a check that could not run here (no resolver, no Postfix) */
    RG_DC_WARN,         /* works now, but fix it */
    RG_DC_FAIL,         /* broken: mail is deferred, refused or at risk */
};

/* "OK", "NOTE", "WARN", "FAIL". */
const char *rg_dc_level_name(enum rg_dc_level l);

struct rg_dc_result {
    enum rg_dc_level level;
    char detail[768];
    char remedy[768];   /* "" when level is OK */
};

/* Certificates that expire within this many days are a warning. */
#define RG_DC_CERT_WARN_DAYS 30

/*
 * The spool directory: path, its mode and owner (from stat), the user
 * regigated runs as (want_uid, want_user; want_user NULL: no 'user', any
 * owner). FAIL: not a directory, group or other bits set (the messages in
 * it are readable), owner not the daemon's user, owner cannot write it.
 */
void rg_dc_spool_mode(const char *path, mode_t mode, uid_t owner, uid_t want_uid,
                      const char *want_user, struct rg_dc_result *res);

/*
 * Free space of the spool directory: avail and total bytes, the largest
 * max_message_size of the routes. FAIL below 2 x largest (one message and
 * its encrypted copy would not fit), WARN below 1 GiB or 10 % of the file
 * system, OK otherwise.
 */
void rg_dc_spool_space(const char *path, unsigned long long avail, unsigned long long total,
                       unsigned long long largest, struct rg_dc_result *res);

/* A private key file: FAIL when group or other bits are set, else OK. */
void rg_dc_key_mode(const char *path, mode_t mode, struct rg_dc_result *res);

/*
 * A certificate's expiry (what: "provider certificate /path"): FAIL when
 * expired, WARN within RG_DC_CERT_WARN_DAYS, OK otherwise. renew is the
 * remedy text to give.
 */
void rg_dc_cert_expiry(const char *what, time_t expires, time_t now, const char *renew,
                       struct rg_dc_result *res);

/*
 * Postfix's message_size_limit in main.cf (cleanup applies it to every
 * message, the routes' smtpd and reinjection included) against the
 * largest after-filter limit of the routes (by default twice the route's
 * max_message_size): FAIL when smaller (0 means no limit: OK).
 */
void rg_dc_size_limit(unsigned long long postfix_limit, unsigned long long largest,
                      const char *route, struct rg_dc_result *res);

/*
 * Forward and reverse DNS of name: addrs are the addresses the forward
 * lookup gave (naddrs, may be 0), ptrs[i] the name the reverse lookup of
 * addrs[i] gave (NULL: none). OK when there is at least one address and
 * every address maps back to name (case-insensitive, trailing dot
 * ignored); WARN otherwise (mail from the host may be taken for spam).
 */
void rg_dc_dns_match(const char *name, const char *const *addrs, const char *const *ptrs,
                     size_t naddrs, struct rg_dc_result *res);

/* Same host name? Case-insensitive, a trailing dot ignored. */
int rg_dc_same_name(const char *a, const char *b);

#endif
