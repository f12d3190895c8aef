/*
 * routestate.h - what regigated records about each route for
 * "regigatectl route status" and "diagnose": small files in spool_dir,
 * which the daemon's user owns and may write (also under systemd's
 * ProtectSystem=strict, where /etc is read-only).
 *
 *   spool_dir/route-NAME.rules     written by the master after every load
 *                                  of the configuration (start, SIGHUP):
 *                                  the fingerprint of the rule file and
 *                                  the lists it ran with, the number of
 *                                  rules, the time of the load
 *   spool_dir/route-NAME.provider  touched by the workers when the
 *                                  provider answered (at most once a
 *                                  minute per worker): its mtime is the
 *                                  last provider contact
 *
 * Nothing here may delay or fail mail: write errors are logged once at
 * most by the caller and otherwise ignored.
 */
#ifndef RG_ROUTESTATE_H
#define RG_ROUTESTATE_H

#include <stddef.h>
#include <time.h>

/* Touch the contact file at most this often (seconds). */
#define RG_ROUTESTATE_TOUCH_EVERY 60

/* spool_dir/route-NAME.WHAT (what: "rules", "provider"), allocated. */
char *rg_routestate_path(const char *spool_dir, const char *route, const char *what);

/*
 * SHA-256, as 64 hex digits, of the rule file's bytes followed by, for each
 * file of lists_dir in the order of the names (names starting with '.'
 * skipped), "\0NAME\0" and its bytes. rules NULL: the empty rule set
 * ("{}"); lists_dir NULL or missing: no lists. 0, or -1 with a reason in
 * err (a file cannot be read).
 */
int rg_routestate_fingerprint(const char *rules, const char *lists_dir, char hex[65],
                              char *err, size_t errlen);

/* What the master recorded at a load. */
struct rg_routestate_rules {
    char fingerprint[65];
    size_t nrules;
    time_t loaded;
};

/* Write path atomically (temporary file, rename), mode 0600. 0 or -1
 * (errno set). */
int rg_routestate_write_rules(const char *path, const struct rg_routestate_rules *st);
/* Read what rg_routestate_write_rules wrote: 0, or -1 (missing or
 * malformed; errno ENOENT for missing). */
int rg_routestate_read_rules(const char *path, struct rg_routestate_rules *st);

/*
 * Record a provider contact at now: when now is at least
 * RG_ROUTESTATE_TOUCH_EVERY seconds after *last, create path or set its
 * times to now, and set *last = now. Returns 1 when it touched, 0 when
 * not due, -1 on error (errno set; *last is set anyway, so a failing file
 * system is not tried on every call).
 */
int rg_routestate_touch(const char *path, time_t now, time_t *last);

/* The last contact: path's mtime. 0, or -1 (errno ENOENT: never). */
int rg_routestate_last_contact(const char *path, time_t *when);

#endif
