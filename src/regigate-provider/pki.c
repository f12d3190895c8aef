/*
 * pki.c - CA, certificates, CSR signing, master key and KEK sealing with
 * OpenSSL libcrypto; see pki.h.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "log.h"
#include "mem.h"
#include "pki.h"

static void ssl_err(char *err, size_t errlen, const char *what)
{
    unsigned long e = ERR_get_error();
    char buf[256] = "";
    if (e)
        ERR_error_string_n(e, buf, sizeof(buf));
    snprintf(err, errlen, "%s%s%s", what, *buf ? ": " : "", buf);
    ERR_clear_error();
}

void rgp_random(void *p, size_t n)
{
    if (RAND_bytes(p, (int)n) != 1)
        rg_fatal("the random number generator failed");
}

void rgp_sha256_hex(const void *p, size_t n, char out[65])
{
    unsigned char md[32];
    unsigned int mdlen = 0;
    static const char digits[] = "0123456789abcdef";

    if (EVP_Digest(p, n, md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen != 32)
        rg_fatal("SHA-256 failed");
    for (int i = 0; i < 32; i++) {
        out[2 * i] = digits[md[i] >> 4];
        out[2 * i + 1] = digits[md[i] & 15];
    }
    out[64] = 0;
}

int rgp_write_new_file(const char *path, const void *data, size_t len, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    const char *p = data;

    if (fd < 0)
        return -1;
    if (fchmod(fd, mode) < 0)
        goto fail;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            goto fail;
        }
        p += n;
        len -= (size_t)n;
    }
    if (fsync(fd) < 0 || close(fd) < 0) {
        fd = -1;
        goto fail;
    }
    return 0;
fail:;
    int saved = errno;
    if (fd >= 0)
        close(fd);
    unlink(path);
    errno = saved;
    return -1;
}

char *rgp_read_file(const char *path, size_t max, size_t *lenp)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    char *buf;
    size_t len = 0;

    if (fd < 0)
        return NULL;
    buf = rg_malloc(max + 1);
    for (;;) {
        ssize_t n = read(fd, buf + len, max + 1 - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            int saved = errno;
            close(fd);
            rg_free(buf);
            errno = saved;
            return NULL;
        }
        if (n == 0)
            break;
        len += (size_t)n;
        if (len > max) {
            close(fd);
            rg_free(buf);
            errno = EFBIG;
            return NULL;
        }
    }
    close(fd);
    buf[len] = 0;
    if (lenp)
        *lenp = len;
    return buf;
}

/* PEM of a private key into a new 0600 file. */
static int write_key(const char *path, EVP_PKEY *key, char *err, size_t errlen)
{
    BIO *b = BIO_new(BIO_s_mem());
    char *data;
    long len;
    int rc = -1;

    if (!PEM_write_bio_PrivateKey(b, key, NULL, NULL, 0, NULL, NULL)) {
        ssl_err(err, errlen, "cannot encode the key");
    } else {
        len = BIO_get_mem_data(b, &data);
        if (rgp_write_new_file(path, data, (size_t)len, 0600) < 0)
            snprintf(err, errlen, "%s: %s", path, strerror(errno));
        else
            rc = 0;
    }
    BIO_free(b);
    return rc;
}

static char *cert_pem(X509 *x)
{
    BIO *b = BIO_new(BIO_s_mem());
    char *data, *s = NULL;
    long len;

    if (PEM_write_bio_X509(b, x)) {
        len = BIO_get_mem_data(b, &data);
        s = rg_strndup(data, (size_t)len);
    }
    BIO_free(b);
    return s;
}

static int write_cert(const char *path, X509 *x, mode_t mode, char *err, size_t errlen)
{
    char *pem = cert_pem(x);
    int rc = 0;

    if (pem == NULL) {
        ssl_err(err, errlen, "cannot encode the certificate");
        return -1;
    }
    if (rgp_write_new_file(path, pem, strlen(pem), mode) < 0) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        rc = -1;
    }
    rg_free(pem);
    return rc;
}

static EVP_PKEY *load_key(const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "re");
    EVP_PKEY *k;

    if (f == NULL) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return NULL;
    }
    k = PEM_read_PrivateKey(f, NULL, NULL, NULL);
    fclose(f);
    if (k == NULL)
        ssl_err(err, errlen, "cannot read the CA key");
    return k;
}

static X509 *load_cert(const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "re");
    X509 *x;

    if (f == NULL) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return NULL;
    }
    x = PEM_read_X509(f, NULL, NULL, NULL);
    fclose(f);
    if (x == NULL)
        ssl_err(err, errlen, "cannot read the CA certificate");
    return x;
}

/* Random positive 128-bit serial; its hex in hex (33 bytes) if not NULL. */
static int set_serial(X509 *x, char *hex)
{
    unsigned char raw[16];
    BIGNUM *bn;
    int ok;

    rgp_random(raw, sizeof(raw));
    raw[0] &= 0x7f;
    raw[0] |= 0x01; /* fixed length, never a leading zero byte */
    bn = BN_bin2bn(raw, sizeof(raw), NULL);
    ok = bn && BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) != NULL;
    BN_free(bn);
    if (hex) {
        static const char digits[] = "0123456789abcdef";
        for (int i = 0; i < 16; i++) {
            hex[2 * i] = digits[raw[i] >> 4];
            hex[2 * i + 1] = digits[raw[i] & 15];
        }
        hex[32] = 0;
    }
    return ok ? 0 : -1;
}

static int add_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509_EXTENSION *ext;
    int ok;

    X509V3_set_ctx(&ctx, issuer, x, NULL, NULL, 0);
    ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    if (ext == NULL)
        return -1;
    ok = X509_add_ext(x, ext, -1);
    X509_EXTENSION_free(ext);
    return ok ? 0 : -1;
}

static int set_validity(X509 *x, int days)
{
    return X509_gmtime_adj(X509_getm_notBefore(x), -300) != NULL
        && X509_time_adj_ex(X509_getm_notAfter(x), days, 0, NULL) != NULL ? 0 : -1;
}

int rgp_ca_create(const char *keypath, const char *certpath, const char *cn, int days,
                  char *err, size_t errlen)
{
    EVP_PKEY *key = EVP_EC_gen("P-256");
    X509 *x = X509_new();
    X509_NAME *name;
    int rc = -1;

    if (key == NULL || x == NULL) {
        ssl_err(err, errlen, "cannot generate the CA key");
        goto done;
    }
    name = X509_get_subject_name(x);
    if (!X509_set_version(x, 2) || set_serial(x, NULL) < 0 || set_validity(x, days) < 0
        || !X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1, -1, 0)
        || !X509_set_issuer_name(x, name) || !X509_set_pubkey(x, key)
        || add_ext(x, x, NID_basic_constraints, "critical,CA:TRUE,pathlen:0") < 0
        || add_ext(x, x, NID_key_usage, "critical,keyCertSign,cRLSign") < 0
        || add_ext(x, x, NID_subject_key_identifier, "hash") < 0
        || !X509_sign(x, key, EVP_sha256())) {
        ssl_err(err, errlen, "cannot create the CA certificate");
        goto done;
    }
    if (write_key(keypath, key, err, errlen) < 0)
        goto done;
    if (write_cert(certpath, x, 0644, err, errlen) < 0) {
        unlink(keypath);
        goto done;
    }
    rc = 0;
done:
    EVP_PKEY_free(key);
    X509_free(x);
    return rc;
}

int rgp_server_cert_create(const char *cakeypath, const char *cacertpath,
                           const char *keypath, const char *certpath,
                           const char *const *dns, size_t ndns,
                           const char *const *ips, size_t nips, char *err, size_t errlen)
{
    EVP_PKEY *cakey = NULL, *key = NULL;
    X509 *ca = NULL, *x = NULL;
    char san[4096] = "";
    size_t off = 0;
    int rc = -1;

    for (size_t i = 0; i < ndns + nips; i++) {
        int n = snprintf(san + off, sizeof(san) - off, "%s%s:%s", off ? "," : "",
                         i < ndns ? "DNS" : "IP", i < ndns ? dns[i] : ips[i - ndns]);
        if (n < 0 || (size_t)n >= sizeof(san) - off) {
            snprintf(err, errlen, "too many server names");
            return -1;
        }
        off += (size_t)n;
    }
    if ((cakey = load_key(cakeypath, err, errlen)) == NULL
        || (ca = load_cert(cacertpath, err, errlen)) == NULL)
        goto done;
    key = EVP_EC_gen("P-256");
    x = X509_new();
    if (key == NULL || x == NULL) {
        ssl_err(err, errlen, "cannot generate the server key");
        goto done;
    }
    if (!X509_set_version(x, 2) || set_serial(x, NULL) < 0 || set_validity(x, 3650) < 0
        || !X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_UTF8,
                                       (const unsigned char *)(ndns ? dns[0] : ips[0]), -1, -1, 0)
        || !X509_set_issuer_name(x, X509_get_subject_name(ca)) || !X509_set_pubkey(x, key)
        || add_ext(x, ca, NID_basic_constraints, "critical,CA:FALSE") < 0
        || add_ext(x, ca, NID_key_usage, "critical,digitalSignature") < 0
        || add_ext(x, ca, NID_ext_key_usage, "serverAuth") < 0
        || add_ext(x, ca, NID_subject_key_identifier, "hash") < 0
        || add_ext(x, ca, NID_authority_key_identifier, "keyid:always") < 0
        || (off && add_ext(x, ca, NID_subject_alt_name, san) < 0)
        || !X509_sign(x, cakey, EVP_sha256())) {
        ssl_err(err, errlen, "cannot create the server certificate");
        goto done;
    }
    if (write_key(keypath, key, err, errlen) < 0)
        goto done;
    if (write_cert(certpath, x, 0644, err, errlen) < 0) {
        unlink(keypath);
        goto done;
    }
    rc = 0;
done:
    EVP_PKEY_free(cakey);
    EVP_PKEY_free(key);
    X509_free(ca);
    X509_free(x);
    return rc;
}

/* Refuse keys a gateway must not use. */
static int key_strong(EVP_PKEY *k, char *err, size_t errlen)
{
    char group[64] = "";
    size_t glen = 0;

    switch (EVP_PKEY_get_base_id(k)) {
    case EVP_PKEY_RSA:
        if (EVP_PKEY_get_bits(k) < 2048) {
            snprintf(err, errlen, "weak key: RSA %d bits (at least 2048 required)", EVP_PKEY_get_bits(k));
            return -1;
        }
        if (EVP_PKEY_get_bits(k) > 16384) {
            snprintf(err, errlen, "RSA key larger than 16384 bits");
            return -1;
        }
        return 0;
    case EVP_PKEY_EC:
        if (!EVP_PKEY_get_utf8_string_param(k, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group), &glen)) {
            snprintf(err, errlen, "EC key without a named curve");
            return -1;
        }
        if (strcmp(group, "prime256v1") && strcmp(group, "secp384r1") && strcmp(group, "secp521r1")) {
            snprintf(err, errlen, "weak or unsupported key: EC curve %s (P-256, P-384 or P-521 required)", group);
            return -1;
        }
        return 0;
    default:
        snprintf(err, errlen, "unsupported key type %s (RSA >= 2048 bits or EC P-256/384/521 required)",
                 OBJ_nid2sn(EVP_PKEY_get_base_id(k)));
        return -1;
    }
}

int rgp_sign_csr(const char *cakeypath, const char *cacertpath, const char *csr, size_t csrlen,
                 int days, struct rgp_signed *out, char *err, size_t errlen)
{
    BIO *b = BIO_new_mem_buf(csr, (int)csrlen);
    X509_REQ *req = NULL;
    EVP_PKEY *cakey = NULL, *pub;
    X509 *ca = NULL, *x = NULL;
    unsigned char *der = NULL;
    int derlen, rc = -1;

    memset(out, 0, sizeof(*out));
    if (b == NULL || (req = PEM_read_bio_X509_REQ(b, NULL, NULL, NULL)) == NULL) {
        ssl_err(err, errlen, "not a PEM certificate request");
        goto done;
    }
    if ((pub = X509_REQ_get0_pubkey(req)) == NULL) {
        ssl_err(err, errlen, "the request has no usable public key");
        goto done;
    }
    if (key_strong(pub, err, errlen) < 0)
        goto done;
    if (X509_REQ_verify(req, pub) != 1) {
        ssl_err(err, errlen, "the request's signature does not verify");
        goto done;
    }
    if (X509_NAME_entry_count(X509_REQ_get_subject_name(req)) == 0) {
        snprintf(err, errlen, "the request has an empty subject");
        goto done;
    }
    if ((cakey = load_key(cakeypath, err, errlen)) == NULL
        || (ca = load_cert(cacertpath, err, errlen)) == NULL)
        goto done;
    x = X509_new();
    if (x == NULL || !X509_set_version(x, 2) || set_serial(x, out->serial) < 0
        || set_validity(x, days) < 0
        || !X509_set_subject_name(x, X509_REQ_get_subject_name(req))
        || !X509_set_issuer_name(x, X509_get_subject_name(ca)) || !X509_set_pubkey(x, pub)
        || add_ext(x, ca, NID_basic_constraints, "critical,CA:FALSE") < 0
        || add_ext(x, ca, NID_key_usage, EVP_PKEY_get_base_id(pub) == EVP_PKEY_RSA
                   ? "critical,digitalSignature,keyEncipherment" : "critical,digitalSignature") < 0
        || add_ext(x, ca, NID_ext_key_usage, "clientAuth") < 0
        || add_ext(x, ca, NID_subject_key_identifier, "hash") < 0
        || add_ext(x, ca, NID_authority_key_identifier, "keyid:always") < 0
        /* never beyond the CA's own validity */
        || (ASN1_TIME_compare(X509_get0_notAfter(x), X509_get0_notAfter(ca)) > 0
            && !X509_set1_notAfter(x, X509_get0_notAfter(ca)))
        || !X509_sign(x, cakey, EVP_sha256())) {
        ssl_err(err, errlen, "cannot sign the certificate");
        goto done;
    }
    if ((derlen = i2d_X509(x, &der)) <= 0 || (out->pem = cert_pem(x)) == NULL) {
        ssl_err(err, errlen, "cannot encode the certificate");
        goto done;
    }
    rgp_sha256_hex(der, (size_t)derlen, out->fingerprint);
    {
        BIO *nb = BIO_new(BIO_s_mem());
        char *data;
        long len;
        X509_NAME_print_ex(nb, X509_get_subject_name(x), 0, XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB);
        len = BIO_get_mem_data(nb, &data);
        snprintf(out->subject, sizeof(out->subject), "%.*s", (int)len, data);
        BIO_free(nb);
    }
    {
        struct tm tm;
        if (ASN1_TIME_to_tm(X509_get0_notAfter(x), &tm))
            out->not_after = (long long)timegm(&tm);
    }
    rc = 0;
done:
    if (rc < 0)
        rgp_signed_free(out);
    OPENSSL_free(der);
    BIO_free(b);
    X509_REQ_free(req);
    EVP_PKEY_free(cakey);
    X509_free(ca);
    X509_free(x);
    return rc;
}

void rgp_signed_free(struct rgp_signed *s)
{
    s->pem = rg_free(s->pem);
}

int rgp_master_create(const char *path, char *err, size_t errlen)
{
    uint8_t key[RGP_MASTER_KEY_LEN];
    int rc = 0;

    rgp_random(key, sizeof(key));
    if (rgp_write_new_file(path, key, sizeof(key), 0600) < 0) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        rc = -1;
    }
    OPENSSL_cleanse(key, sizeof(key));
    return rc;
}

int rgp_master_load(const char *path, uint8_t key[RGP_MASTER_KEY_LEN], char *err, size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    struct stat st;
    ssize_t n;

    if (fd < 0) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size != RGP_MASTER_KEY_LEN) {
        snprintf(err, errlen, "%s: not a regular file of %d bytes", path, RGP_MASTER_KEY_LEN);
        close(fd);
        return -1;
    }
    if (st.st_mode & 077) {
        snprintf(err, errlen, "%s: mode %03o, must not be accessible to group or others (chmod 600)",
                 path, (unsigned)(st.st_mode & 0777));
        close(fd);
        return -1;
    }
    n = read(fd, key, RGP_MASTER_KEY_LEN);
    close(fd);
    if (n != RGP_MASTER_KEY_LEN) {
        snprintf(err, errlen, "%s: short read", path);
        return -1;
    }
    return 0;
}

int rgp_kek_seal(const uint8_t mk[RGP_MASTER_KEY_LEN], const uint8_t *id, size_t idlen,
                 const uint8_t kek[32], uint8_t out[RGP_SEALED_LEN])
{
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    int len, ok;

    rgp_random(out, 12);
    ok = c && EVP_EncryptInit_ex(c, EVP_aes_256_gcm(), NULL, mk, out)
        && EVP_EncryptUpdate(c, NULL, &len, id, (int)idlen)
        && EVP_EncryptUpdate(c, out + 12, &len, kek, 32) && len == 32
        && EVP_EncryptFinal_ex(c, out + 44, &len)
        && EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, 16, out + 44);
    EVP_CIPHER_CTX_free(c);
    return ok ? 0 : -1;
}

int rgp_kek_open(const uint8_t mk[RGP_MASTER_KEY_LEN], const uint8_t *id, size_t idlen,
                 const uint8_t in[RGP_SEALED_LEN], uint8_t kek[32])
{
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    uint8_t tag[16];
    int len, ok;

    memcpy(tag, in + 44, 16);
    ok = c && EVP_DecryptInit_ex(c, EVP_aes_256_gcm(), NULL, mk, in)
        && EVP_DecryptUpdate(c, NULL, &len, id, (int)idlen)
        && EVP_DecryptUpdate(c, kek, &len, in + 12, 32) && len == 32
        && EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, 16, tag)
        && EVP_DecryptFinal_ex(c, kek + 32, &len) > 0;
    EVP_CIPHER_CTX_free(c);
    if (!ok)
        OPENSSL_cleanse(kek, 32);
    return ok ? 0 : -1;
}
