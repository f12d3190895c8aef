/*
 * tlscert.h - the self-signed TLS certificate of a route's public smtpd
 * (key_cert.pem in the route's directory; the appliance's
 * self_signed_key_cert.pem). A custom certificate replaces the file.
 */
#ifndef RG_TLSCERT_H
#define RG_TLSCERT_H

#include <stddef.h>
#include <time.h>

/* Default validity: 10 years, as the appliance's. */
#define RG_TLSCERT_DAYS 3650

/*
 * A new RSA-2048 key and a self-signed X.509v3 certificate for it (SHA-256,
 * CN=cn, subjectAltName DNS:cn, valid from now for days), as one PEM text:
 * the key first, then the certificate, as Postfix's smtpd_tls_chain_files
 * reads it. The caller writes it with mode 0600 and clears it
 * (rg_tlscert_free). NULL with a reason in err on failure.
 */
char *rg_tlscert_selfsigned(const char *cn, int days, char *err, size_t errlen);
/* Clear and free what rg_tlscert_selfsigned returned; returns NULL. */
char *rg_tlscert_free(char *pem);

/*
 * The notAfter of the first certificate in the PEM file path (a key before
 * it is skipped, never read into memory longer than the parse). 0, or -1
 * with a reason in err (cannot read, no certificate).
 */
int rg_tlscert_expiry(const char *path, time_t *expires, char *err, size_t errlen);

#endif
