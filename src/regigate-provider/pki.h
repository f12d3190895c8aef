/*
 * pki.h - the provider's cryptography (OpenSSL libcrypto): its CA, the
 * HTTPS server certificate, signing gateway CSRs, the master key and the
 * sealing of KEKs under it (AES-256-GCM, transaction id as AAD).
 * Functions return 0 or -1 with a message in err; nothing here logs
 * secrets.
 */
#ifndef RGP_PKI_H
#define RGP_PKI_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define RGP_MASTER_KEY_LEN 32
#define RGP_SEALED_LEN (12 + 32 + 16)   /* nonce | ciphertext | tag */

/* Cryptographic random bytes; fatal when the RNG fails. */
void rgp_random(void *p, size_t n);
void rgp_sha256_hex(const void *p, size_t n, char out[65]);

/* Write data to a new file (O_EXCL) with mode. 0 or -1 (errno set). */
int rgp_write_new_file(const char *path, const void *data, size_t len, mode_t mode);
/* Read a whole file of at most max bytes into a NUL-terminated string. */
char *rgp_read_file(const char *path, size_t max, size_t *len);

/* New CA: EC P-256 key (0600) and a self-signed certificate. */
int rgp_ca_create(const char *keypath, const char *certpath, const char *cn, int days,
                  char *err, size_t errlen);
/* HTTPS server key and certificate signed by the CA, with subjectAltNames
 * for each DNS name and IP address. */
int rgp_server_cert_create(const char *cakeypath, const char *cacertpath,
                           const char *keypath, const char *certpath,
                           const char *const *dns, size_t ndns,
                           const char *const *ips, size_t nips, char *err, size_t errlen);

struct rgp_signed {
    char *pem;                  /* the certificate, PEM */
    char fingerprint[65];       /* SHA-256 of the DER, hex */
    char serial[33];            /* hex */
    char subject[256];          /* RFC 2253 one-line */
    long long not_after;        /* unix seconds */
};
/* Check and sign a gateway CSR (PEM). Refuses weak keys (RSA < 2048 bits,
 * EC curves other than P-256/384/521, other key types), CSRs whose
 * signature does not verify and empty subjects. days >= 0; 0 makes a
 * certificate that expires at once (for tests). */
int rgp_sign_csr(const char *cakeypath, const char *cacertpath, const char *csr, size_t csrlen,
                 int days, struct rgp_signed *out, char *err, size_t errlen);
void rgp_signed_free(struct rgp_signed *s);

/* Master key file: 32 random bytes, mode 0600. load refuses a file that
 * others can read or that has the wrong size. */
int rgp_master_create(const char *path, char *err, size_t errlen);
int rgp_master_load(const char *path, uint8_t key[RGP_MASTER_KEY_LEN], char *err, size_t errlen);

int rgp_kek_seal(const uint8_t mk[RGP_MASTER_KEY_LEN], const uint8_t *id, size_t idlen,
                 const uint8_t kek[32], uint8_t out[RGP_SEALED_LEN]);
int rgp_kek_open(const uint8_t mk[RGP_MASTER_KEY_LEN], const uint8_t *id, size_t idlen,
                 const uint8_t in[RGP_SEALED_LEN], uint8_t kek[32]);

#endif
