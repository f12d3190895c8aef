/*
 * diagcheck.c - the verdicts of regigatectl diagnose; see diagcheck.h.
 */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "diagcheck.h"
#include "log.h"

#define GIB (1024ULL * 1024 * 1024)

const char *rg_dc_level_name(enum rg_dc_level l)
{
    switch (l) {
    case RG_DC_OK: return "OK";
    case RG_DC_NOTE: return "NOTE";
    case RG_DC_WARN: return "WARN";
    case RG_DC_FAIL: return "FAIL";
    }
    return "?";
}

static void set(struct rg_dc_result *res, enum rg_dc_level level, const char *remedy,
                const char *fmt, ...) RG_PRINTF(4, 5);

static void set(struct rg_dc_result *res, enum rg_dc_level level, const char *remedy,
                const char *fmt, ...)
{
    va_list ap;

    res->level = level;
    va_start(ap, fmt);
    vsnprintf(res->detail, sizeof(res->detail), fmt, ap);
    va_end(ap);
    snprintf(res->remedy, sizeof(res->remedy), "%s", remedy != NULL ? remedy : "");
}

/* "12.3 GiB", "512.0 MiB", "100 bytes" */
static void human(unsigned long long n, char *buf, size_t len)
{
    if (n >= GIB)
        snprintf(buf, len, "%.1f GiB", (double)n / (double)GIB);
    else if (n >= 1024 * 1024)
        snprintf(buf, len, "%.1f MiB", (double)n / (1024.0 * 1024.0));
    else
        snprintf(buf, len, "%llu bytes", n);
}

void rg_dc_spool_mode(const char *path, mode_t mode, uid_t owner, uid_t want_uid,
                      const char *want_user, struct rg_dc_result *res)
{
    char remedy[sizeof(res->remedy)];
    unsigned perm = (unsigned)(mode & 07777);

    if (!S_ISDIR(mode)) {
        set(res, RG_DC_FAIL, "remove it and let regigated create the directory, or set "
            "spool_dir in [global] to a directory", "%s is not a directory", path);
        return;
    }
    if (want_user != NULL && owner != want_uid) {
        snprintf(remedy, sizeof(remedy), "chown %s %s && chmod 700 %s", want_user, path, path);
        set(res, RG_DC_FAIL, remedy, "%s is owned by uid %ld, not by %s (uid %ld), the user "
            "regigated runs as: it cannot spool large messages there", path, (long)owner,
            want_user, (long)want_uid);
        return;
    }
    if ((perm & 0700) != 0700) {
        snprintf(remedy, sizeof(remedy), "chmod 700 %s", path);
        set(res, RG_DC_FAIL, remedy, "%s has mode %04o: its owner cannot read, write or "
            "enter it", path, perm);
        return;
    }
    if (perm & 077) {
        snprintf(remedy, sizeof(remedy), "chmod 700 %s", path);
        set(res, RG_DC_FAIL, remedy, "%s has mode %04o: other users can see the messages "
            "being processed; it must be 0700", path, perm);
        return;
    }
    set(res, RG_DC_OK, NULL, "%s: mode %04o, owner %s", path, perm,
        want_user != NULL ? want_user : "as configured (no 'user')");
}

void rg_dc_spool_space(const char *path, unsigned long long avail, unsigned long long total,
                       unsigned long long largest, struct rg_dc_result *res)
{
    char a[32], t[32], l[32];
    unsigned pct = total > 0 ? (unsigned)(avail * 100 / total) : 0;

    human(avail, a, sizeof(a));
    human(total, t, sizeof(t));
    human(2 * largest, l, sizeof(l));
    if (avail < 2 * largest)
        set(res, RG_DC_FAIL, "free space on that file system, or set spool_dir to a larger one",
            "%s: %s free of %s, less than %s (twice the largest max_message_size): large "
            "messages will be deferred", path, a, t, l);
    else if (avail < GIB || pct < 10)
        set(res, RG_DC_WARN, "free space on that file system before it runs full",
            "%s: only %s free of %s (%u%%)", path, a, t, pct);
    else
        set(res, RG_DC_OK, NULL, "%s: %s free of %s (%u%%)", path, a, t, pct);
}

void rg_dc_key_mode(const char *path, mode_t mode, struct rg_dc_result *res)
{
    char remedy[sizeof(res->remedy)];
    unsigned perm = (unsigned)(mode & 07777);

    if (perm & 077) {
        snprintf(remedy, sizeof(remedy), "chmod 600 %s (and consider the key compromised if "
                 "others could read it)", path);
        set(res, RG_DC_FAIL, remedy, "%s has mode %04o: the private key is readable by "
            "others; it must be 0600", path, perm);
        return;
    }
    set(res, RG_DC_OK, NULL, "%s: mode %04o", path, perm);
}

void rg_dc_cert_expiry(const char *what, time_t expires, time_t now, const char *renew,
                       struct rg_dc_result *res)
{
    char date[32];
    struct tm tm;
    long long days = ((long long)expires - (long long)now) / 86400;

    gmtime_r(&expires, &tm);
    strftime(date, sizeof(date), "%Y-%m-%d %H:%M:%S UTC", &tm);
    if (expires <= now)
        set(res, RG_DC_FAIL, renew, "%s expired on %s", what, date);
    else if (days < RG_DC_CERT_WARN_DAYS)
        set(res, RG_DC_WARN, renew, "%s expires in %lld day%s (%s)", what, days,
            days == 1 ? "" : "s", date);
    else
        set(res, RG_DC_OK, NULL, "%s valid until %s (%lld days)", what, date, days);
}

void rg_dc_size_limit(unsigned long long postfix_limit, unsigned long long largest,
                      const char *route, struct rg_dc_result *res)
{
    char remedy[sizeof(res->remedy)];

    if (postfix_limit == 0) {
        set(res, RG_DC_OK, NULL, "main.cf message_size_limit = 0 (no limit)");
        return;
    }
    if (postfix_limit < largest) {
        snprintf(remedy, sizeof(remedy), "set message_size_limit = %llu in [mta] (or postconf "
                 "-e) and apply it (Postfix's cleanup applies main.cf's limit to every message, "
                 "the routes' included; encryption makes messages larger)", largest);
        set(res, RG_DC_FAIL, remedy, "main.cf message_size_limit = %llu is less than the "
            "largest after-filter limit (route %s: %llu, by default twice its "
            "max_message_size): large messages are refused or cannot be reinjected after "
            "encryption", postfix_limit, route, largest);
        return;
    }
    set(res, RG_DC_OK, NULL, "main.cf message_size_limit = %llu, at least the largest "
        "after-filter limit (route %s: %llu)", postfix_limit, route, largest);
}

int rg_dc_same_name(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);

    if (la > 0 && a[la - 1] == '.')
        la--;
    if (lb > 0 && b[lb - 1] == '.')
        lb--;
    return la == lb && strncasecmp(a, b, la) == 0;
}

void rg_dc_dns_match(const char *name, const char *const *addrs, const char *const *ptrs,
                     size_t naddrs, struct rg_dc_result *res)
{
    char list[512] = "";
    size_t used = 0;

    if (naddrs == 0) {
        set(res, RG_DC_WARN, "add an A (or AAAA) record for it, or set myhostname / "
            "mta_hostname to the name the host's public address resolves to",
            "%s has no address", name);
        return;
    }
    for (size_t i = 0; i < naddrs; i++) {
        int n = snprintf(list + used, sizeof(list) - used, "%s%s -> %s", i ? ", " : "",
                         addrs[i], ptrs[i] != NULL ? ptrs[i] : "(no PTR)");
        if (n > 0 && (size_t)n < sizeof(list) - used)
            used += (size_t)n;
    }
    for (size_t i = 0; i < naddrs; i++) {
        if (ptrs[i] == NULL || !rg_dc_same_name(ptrs[i], name)) {
            set(res, RG_DC_WARN, "make the PTR record of each address name the host (ask "
                "whoever runs the reverse zone), or use the name the PTR gives as "
                "myhostname / mta_hostname: receivers check that forward and reverse "
                "lookups match", "%s: forward and reverse lookups differ: %s", name, list);
            return;
        }
    }
    set(res, RG_DC_OK, NULL, "%s: %s", name, list);
}
