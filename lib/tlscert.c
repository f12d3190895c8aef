/*
 * tlscert.c - self-signed TLS certificates; see tlscert.h.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "mem.h"
#include "tlscert.h"

static char *fail_ossl(char *err, size_t errlen, const char *what)
{
    char reason[160] = "unknown error";
    unsigned long e = ERR_peek_last_error();

    if (e != 0)
        ERR_error_string_n(e, reason, sizeof(reason));
    ERR_clear_error();
    if (err != NULL && errlen > 0)
        snprintf(err, errlen, "cannot %s: %s", what, reason);
    return NULL;
}

static int add_ext(X509 *cert, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509_EXTENSION *ext;
    int ok;

    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, cert, cert, NULL, NULL, 0);
    ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    if (ext == NULL)
        return 0;
    ok = X509_add_ext(cert, ext, -1);
    X509_EXTENSION_free(ext);
    return ok;
}

/* A random positive 127-bit serial number. */
static int set_serial(X509 *cert)
{
    unsigned char raw[16];
    BIGNUM *bn;
    int ok;

    if (RAND_bytes(raw, sizeof(raw)) != 1)
        return 0;
    raw[0] &= 0x7f;
    bn = BN_bin2bn(raw, sizeof(raw), NULL);
    ok = bn != NULL && BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert)) != NULL;
    BN_free(bn);
    return ok;
}

/* The PEM of key and cert into one allocated string. */
static char *pem_text(EVP_PKEY *key, X509 *cert, char *err, size_t errlen)
{
    BIO *bio = BIO_new(BIO_s_secmem());
    char *data, *out = NULL;
    long len;

    if (bio == NULL)
        return fail_ossl(err, errlen, "allocate a buffer");
    if (PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL) != 1
        || PEM_write_bio_X509(bio, cert) != 1) {
        BIO_free(bio);
        return fail_ossl(err, errlen, "write the key and certificate");
    }
    len = BIO_get_mem_data(bio, &data);
    out = rg_malloc((size_t)len + 1);
    memcpy(out, data, (size_t)len);
    out[len] = '\0';
    BIO_free(bio);              /* a secure-heap BIO clears the key bytes */
    return out;
}

char *rg_tlscert_selfsigned(const char *cn, int days, char *err, size_t errlen)
{
    EVP_PKEY *key = EVP_RSA_gen(2048);
    X509 *cert = NULL;
    X509_NAME *name;
    char *san = NULL, *out = NULL;

    if (key == NULL)
        return fail_ossl(err, errlen, "create an RSA key");
    cert = X509_new();
    if (cert == NULL)
        goto ossl;
    name = X509_get_subject_name(cert);
    san = rg_sprintf("DNS:%s", cn);
    if (X509_set_version(cert, 2) != 1 || !set_serial(cert)
        || X509_gmtime_adj(X509_getm_notBefore(cert), 0) == NULL
        || X509_time_adj_ex(X509_getm_notAfter(cert), days, 0, NULL) == NULL
        || X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)cn,
                                      -1, -1, 0) != 1
        || X509_set_issuer_name(cert, name) != 1
        || X509_set_pubkey(cert, key) != 1
        || !add_ext(cert, NID_basic_constraints, "critical,CA:FALSE")
        || !add_ext(cert, NID_key_usage, "critical,digitalSignature,keyEncipherment")
        || !add_ext(cert, NID_ext_key_usage, "serverAuth")
        || !add_ext(cert, NID_subject_key_identifier, "hash")
        || !add_ext(cert, NID_subject_alt_name, san)
        || X509_sign(cert, key, EVP_sha256()) == 0)
        goto ossl;
    out = pem_text(key, cert, err, errlen);
    goto done;
ossl:
    fail_ossl(err, errlen, "create the self-signed certificate");
done:
    rg_free(san);
    X509_free(cert);
    EVP_PKEY_free(key);
    return out;
}

char *rg_tlscert_free(char *pem)
{
    if (pem != NULL) {
        OPENSSL_cleanse(pem, strlen(pem));
        rg_free(pem);
    }
    return NULL;
}

int rg_tlscert_expiry(const char *path, time_t *expires, char *err, size_t errlen)
{
    BIO *bio = BIO_new_file(path, "r");
    X509 *cert;
    struct tm tm;
    int ok;

    if (bio == NULL) {
        ERR_clear_error();
        if (err != NULL && errlen > 0)
            snprintf(err, errlen, "cannot read %s", path);
        return -1;
    }
    /* PEM_read_bio_X509 skips what comes before the certificate (the key) */
    cert = PEM_read_bio_X509(bio, NULL, NULL, NULL);
    BIO_free(bio);
    if (cert == NULL) {
        ERR_clear_error();
        if (err != NULL && errlen > 0)
            snprintf(err, errlen, "%s holds no PEM certificate", path);
        return -1;
    }
    ok = ASN1_TIME_to_tm(X509_get0_notAfter(cert), &tm);
    X509_free(cert);
    if (!ok) {
        if (err != NULL && errlen > 0)
            snprintf(err, errlen, "%s: unreadable expiry date", path);
        return -1;
    }
    *expires = timegm(&tm);
    return 0;
}
