/*
 * routecert.h - a route's key and certificate for the key provider: the
 * gateway side of the enrolment (regigatectl route cert-request,
 * cert-import, status) and the check regigated can make before it uses
 * them.
 *
 * The paths come from the route (conffile.h: cert_dir, provider_key,
 * provider_cert, provider_ca; the defaults are filled in when the file is
 * loaded). Keys are EC P-256, written once with mode 0600 and never
 * printed or logged. Every function that can fail returns 0 or -1 with a
 * one-line reason in err.
 */
#ifndef RG_ROUTECERT_H
#define RG_ROUTECERT_H

#include <stddef.h>
#include <sys/types.h>
#include <time.h>

#include "conffile.h"

/* Largest certificate file (PEM, with its chain) read or accepted. */
#define RG_ROUTECERT_MAX (64 * 1024)

/* Who owns the files written: uid/gid (uid_t)-1 / (gid_t)-1 keep the
 * caller's. */
struct rg_routecert_owner {
    uid_t uid;
    gid_t gid;
};
#define RG_ROUTECERT_OWNER_SELF { (uid_t)-1, (gid_t)-1 }

/* What a certificate says, for the status line. */
struct rg_routecert_info {
    char subject[256];          /* RFC 2253, e.g. "CN=outbound" */
    char issuer[256];
    char not_after[32];         /* "2026-05-04 10:35:01 UTC" */
    time_t expires;             /* notAfter as a time_t, 0 if unknown */
};

enum rg_routecert_state {
    RG_ROUTECERT_NEEDED,        /* none installed, or unusable (see reason) */
    RG_ROUTECERT_DONE,          /* installed, matches the key, valid, chains */
};

/* cert_dir/provider.csr, allocated. */
char *rg_routecert_csr_path(const struct rg_route *r);

/* Create dir and its missing parents: dir itself with mode 0700 (owned
 * by owner), parents 0755. An existing dir is left as it is. */
int rg_routecert_mkdir(const char *dir, const struct rg_routecert_owner *owner,
                       char *err, size_t errlen);

/* Make sure keypath holds a private key: when it does not exist, create
 * an EC P-256 key (mode 0600, its directory as by rg_routecert_mkdir). An
 * existing key is kept, whatever its type, after checking that it loads.
 * *created tells which. */
int rg_routecert_key_ensure(const char *keypath, const struct rg_routecert_owner *owner,
                            int *created, char *err, size_t errlen);

/* A PEM certificate request signed with the key in keypath: subject
 * CN=cn, subjectAltName with each of sans (an IPv4/IPv6 address becomes an
 * IP name, anything else a DNS name; nsans may be 0). NULL on error. */
char *rg_routecert_csr(const char *keypath, const char *cn, const char *const *sans,
                       size_t nsans, char *err, size_t errlen);

/* Is pem (len bytes: a certificate, optionally followed by the CAs between
 * it and the provider CA) usable with the key in keypath? Checks: it
 * parses, its public key is keypath's, it chains to cafile (skipped when
 * cafile is NULL), it is valid at time now, and its key usages allow TLS
 * client authentication when the extensions are present. info (may be
 * NULL) is filled as soon as the certificate parses. */
int rg_routecert_check(const char *pem, size_t len, const char *keypath, const char *cafile,
                       time_t now, struct rg_routecert_info *info, char *err, size_t errlen);

/* Install a certificate that rg_routecert_check accepted as certpath,
 * atomically (a temporary file in the same directory, fsync, rename) with
 * mode 0600. When certpath is also the key file (one key_cert.pem), the
 * key is kept in front of the certificate. */
int rg_routecert_install(const char *certpath, const char *keypath, const char *pem,
                         size_t len, const struct rg_routecert_owner *owner,
                         char *err, size_t errlen);

/* Write data to path atomically with mode; replaces an existing file. */
int rg_routecert_write_file(const char *path, const void *data, size_t len, mode_t mode,
                            const struct rg_routecert_owner *owner, char *err, size_t errlen);

/* The route's certificate: DONE when provider_cert is installed and
 * rg_routecert_check accepts it now (with provider_ca when the route has
 * one), NEEDED otherwise, with the reason in reason. */
enum rg_routecert_state rg_routecert_status(const struct rg_route *r,
                                            struct rg_routecert_info *info,
                                            char *reason, size_t reasonlen);

#endif
