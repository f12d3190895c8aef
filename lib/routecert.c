/*
 * routecert.c - a route's provider key and certificate; see routecert.h.
 *
 * OpenSSL 3 does the cryptography. Files are always written through a
 * temporary file in the target directory, so that a reader (regigated, or
 * libcurl inside it) sees either the old file or the complete new one.
 * Private key bytes only ever pass through OpenSSL's secure-heap BIOs,
 * which clear them when freed.
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "log.h"
#include "mem.h"
#include "routecert.h"

static void set_err(char *err, size_t errlen, const char *fmt, ...) RG_PRINTF(3, 4);

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    if (err == NULL || errlen == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* The reason OpenSSL gives for its latest error, then its queue cleared. */
static const char *ossl_reason(void)
{
    static char buf[160];
    unsigned long e = ERR_peek_last_error();

    if (e == 0)
        snprintf(buf, sizeof(buf), "unknown error");
    else
        ERR_error_string_n(e, buf, sizeof(buf));
    ERR_clear_error();
    return buf;
}

char *rg_routecert_csr_path(const struct rg_route *r)
{
    return rg_sprintf("%s/provider.csr", r->cert_dir);
}

/* ---- files ------------------------------------------------------------------- */

static bool owner_set(const struct rg_routecert_owner *o)
{
    return o != NULL && (o->uid != (uid_t)-1 || o->gid != (gid_t)-1);
}

int rg_routecert_mkdir(const char *dir, const struct rg_routecert_owner *owner,
                       char *err, size_t errlen)
{
    char path[PATH_MAX];
    size_t len = strlen(dir);
    struct stat st;

    if (len == 0 || len >= sizeof(path)) {
        set_err(err, errlen, "%s: bad directory name", dir);
        return -1;
    }
    if (stat(dir, &st) == 0) {
        if (S_ISDIR(st.st_mode))
            return 0;
        set_err(err, errlen, "%s exists and is not a directory", dir);
        return -1;
    }
    memcpy(path, dir, len + 1);
    /* the parents first, 0755 */
    for (char *p = path + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(path, 0755) < 0 && errno != EEXIST) {
            set_err(err, errlen, "cannot create directory %s: %s", path, strerror(errno));
            return -1;
        }
        *p = '/';
    }
    if (mkdir(path, 0700) < 0 && errno != EEXIST) {
        set_err(err, errlen, "cannot create directory %s: %s", path, strerror(errno));
        return -1;
    }
    if (owner_set(owner) && chown(path, owner->uid, owner->gid) < 0) {
        set_err(err, errlen, "cannot change the owner of %s: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}

static char *dir_of(const char *path)
{
    const char *slash = strrchr(path, '/');

    if (slash == NULL)
        return rg_strdup(".");
    if (slash == path)
        return rg_strdup("/");
    return rg_strndup(path, (size_t)(slash - path));
}

/* Flush a directory entry (rename, link) to disk; best effort. */
static void sync_dir(const char *path)
{
    char *dir = dir_of(path);
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

    if (fd >= 0) {
        (void)fsync(fd);
        close(fd);
    }
    rg_free(dir);
}

/*
 * Write data to a new temporary file next to path; on success *tmp is its
 * name (allocated). The file has mode and owner before it gets any data.
 */
static int write_temp(const char *path, const void *data, size_t len, mode_t mode,
                      const struct rg_routecert_owner *owner, char **tmp,
                      char *err, size_t errlen)
{
    char *name = rg_sprintf("%s.tmpXXXXXX", path);
    const char *p = data;
    int fd = mkostemp(name, O_CLOEXEC);

    if (fd < 0) {
        set_err(err, errlen, "cannot create a file next to %s: %s", path, strerror(errno));
        rg_free(name);
        return -1;
    }
    if (fchmod(fd, mode) < 0
        || (owner_set(owner) && fchown(fd, owner->uid, owner->gid) < 0))
        goto fail;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            goto fail;
        p += n;
        len -= (size_t)n;
    }
    if (fsync(fd) < 0)
        goto fail;
    if (close(fd) < 0) {
        fd = -1;
        goto fail;
    }
    *tmp = name;
    return 0;
fail:
    set_err(err, errlen, "cannot write %s: %s", name, strerror(errno));
    if (fd >= 0)
        close(fd);
    unlink(name);
    rg_free(name);
    return -1;
}

int rg_routecert_write_file(const char *path, const void *data, size_t len, mode_t mode,
                            const struct rg_routecert_owner *owner, char *err, size_t errlen)
{
    char *tmp;

    if (write_temp(path, data, len, mode, owner, &tmp, err, errlen) < 0)
        return -1;
    if (rename(tmp, path) < 0) {
        set_err(err, errlen, "cannot rename %s to %s: %s", tmp, path, strerror(errno));
        unlink(tmp);
        rg_free(tmp);
        return -1;
    }
    rg_free(tmp);
    sync_dir(path);
    return 0;
}

/* Like rg_routecert_write_file, but never replaces path: 1 if it exists. */
static int write_new_file(const char *path, const void *data, size_t len, mode_t mode,
                          const struct rg_routecert_owner *owner, char *err, size_t errlen)
{
    char *tmp;
    int rc = 0;

    if (write_temp(path, data, len, mode, owner, &tmp, err, errlen) < 0)
        return -1;
    if (link(tmp, path) < 0) {
        if (errno == EEXIST) {
            rc = 1;
        } else {
            set_err(err, errlen, "cannot create %s: %s", path, strerror(errno));
            rc = -1;
        }
    }
    unlink(tmp);
    rg_free(tmp);
    if (rc == 0)
        sync_dir(path);
    return rc;
}

/* ---- keys -------------------------------------------------------------------- */

static EVP_PKEY *load_key(const char *keypath, char *err, size_t errlen)
{
    BIO *bio = BIO_new_file(keypath, "r");
    EVP_PKEY *key;

    if (bio == NULL) {
        ERR_clear_error();
        set_err(err, errlen, "cannot read the route's key %s: %s", keypath, strerror(errno));
        return NULL;
    }
    key = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
    BIO_free(bio);
    if (key == NULL) {
        ERR_clear_error();
        set_err(err, errlen, "%s holds no usable private key (PEM, unencrypted)", keypath);
    }
    return key;
}

int rg_routecert_key_ensure(const char *keypath, const struct rg_routecert_owner *owner,
                            int *created, char *err, size_t errlen)
{
    EVP_PKEY *key;
    BIO *mem;
    char *data, *dir;
    long len;
    int rc;

    *created = 0;
    if (access(keypath, F_OK) == 0) {
        key = load_key(keypath, err, errlen);
        EVP_PKEY_free(key);
        return key != NULL ? 0 : -1;
    }
    if (errno != ENOENT) {
        set_err(err, errlen, "%s: %s", keypath, strerror(errno));
        return -1;
    }
    dir = dir_of(keypath);
    rc = rg_routecert_mkdir(dir, owner, err, errlen);
    rg_free(dir);
    if (rc < 0)
        return -1;

    key = EVP_EC_gen("P-256");
    mem = BIO_new(BIO_s_secmem());
    if (key == NULL || mem == NULL
        || !PEM_write_bio_PrivateKey(mem, key, NULL, NULL, 0, NULL, NULL)) {
        set_err(err, errlen, "cannot generate an EC P-256 key: %s", ossl_reason());
        EVP_PKEY_free(key);
        BIO_free(mem);
        return -1;
    }
    EVP_PKEY_free(key);
    len = BIO_get_mem_data(mem, &data);
    rc = write_new_file(keypath, data, (size_t)len, 0600, owner, err, errlen);
    BIO_free(mem);              /* secure heap: cleared */
    if (rc == 1)                /* someone else was faster: keep theirs */
        return 0;
    if (rc == 0)
        *created = 1;
    return rc;
}

/* ---- requests ---------------------------------------------------------------- */

static bool valid_dns_name(const char *s)
{
    size_t len = strlen(s);

    return len > 0 && len <= 253 && s[0] != '.' && s[0] != '-'
        && strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-.") == len;
}

static GENERAL_NAME *san_name(const char *s, char *err, size_t errlen)
{
    unsigned char addr[16];
    GENERAL_NAME *gn = GENERAL_NAME_new();
    int alen = 0;

    if (inet_pton(AF_INET, s, addr) == 1)
        alen = 4;
    else if (inet_pton(AF_INET6, s, addr) == 1)
        alen = 16;
    if (alen > 0) {
        ASN1_OCTET_STRING *os = ASN1_OCTET_STRING_new();
        if (os == NULL || !ASN1_OCTET_STRING_set(os, addr, alen)) {
            ASN1_OCTET_STRING_free(os);
            goto oom;
        }
        GENERAL_NAME_set0_value(gn, GEN_IPADD, os);
        return gn;
    }
    if (!valid_dns_name(s)) {
        set_err(err, errlen, "subjectAltName '%s' is neither a DNS name nor an IP address", s);
        GENERAL_NAME_free(gn);
        return NULL;
    }
    ASN1_IA5STRING *ia5 = ASN1_IA5STRING_new();
    if (ia5 == NULL || !ASN1_STRING_set(ia5, s, (int)strlen(s))) {
        ASN1_IA5STRING_free(ia5);
        goto oom;
    }
    GENERAL_NAME_set0_value(gn, GEN_DNS, ia5);
    return gn;
oom:
    GENERAL_NAME_free(gn);
    set_err(err, errlen, "cannot build the subjectAltName: %s", ossl_reason());
    return NULL;
}

static int add_sans(X509_REQ *req, const char *const *sans, size_t nsans, char *err, size_t errlen)
{
    GENERAL_NAMES *gens = sk_GENERAL_NAME_new_null();
    STACK_OF(X509_EXTENSION) *exts = sk_X509_EXTENSION_new_null();
    X509_EXTENSION *ext = NULL;
    int rc = -1;

    if (gens == NULL || exts == NULL)
        goto oom;
    for (size_t i = 0; i < nsans; i++) {
        GENERAL_NAME *gn = san_name(sans[i], err, errlen);
        if (gn == NULL)
            goto out;
        if (!sk_GENERAL_NAME_push(gens, gn)) {
            GENERAL_NAME_free(gn);
            goto oom;
        }
    }
    ext = X509V3_EXT_i2d(NID_subject_alt_name, 0, gens);
    if (ext == NULL || !sk_X509_EXTENSION_push(exts, ext))
        goto oom;
    ext = NULL;
    if (!X509_REQ_add_extensions(req, exts))
        goto oom;
    rc = 0;
    goto out;
oom:
    set_err(err, errlen, "cannot add the subjectAltName: %s", ossl_reason());
out:
    X509_EXTENSION_free(ext);
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    GENERAL_NAMES_free(gens);
    return rc;
}

char *rg_routecert_csr(const char *keypath, const char *cn, const char *const *sans,
                       size_t nsans, char *err, size_t errlen)
{
    EVP_PKEY *key;
    X509_REQ *req = NULL;
    X509_NAME *name;
    BIO *out = NULL;
    char *data, *pem = NULL;
    long len;

    if (cn[0] == '\0' || strlen(cn) > 64) {
        set_err(err, errlen, "the common name must have 1 to 64 characters");
        return NULL;
    }
    for (const char *p = cn; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f) {
            set_err(err, errlen, "the common name contains a control character");
            return NULL;
        }
    key = load_key(keypath, err, errlen);
    if (key == NULL)
        return NULL;
    req = X509_REQ_new();
    if (req == NULL || !X509_REQ_set_version(req, 0) || !X509_REQ_set_pubkey(req, key))
        goto ossl;
    name = X509_REQ_get_subject_name(req);
    if (!X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1, -1, 0))
        goto ossl;
    if (nsans > 0 && add_sans(req, sans, nsans, err, errlen) < 0)
        goto out;
    if (X509_REQ_sign(req, key, EVP_sha256()) <= 0)
        goto ossl;
    out = BIO_new(BIO_s_mem());
    if (out == NULL || !PEM_write_bio_X509_REQ(out, req))
        goto ossl;
    len = BIO_get_mem_data(out, &data);
    pem = rg_strndup(data, (size_t)len);
    goto out;
ossl:
    set_err(err, errlen, "cannot create the certificate request: %s", ossl_reason());
out:
    BIO_free(out);
    X509_REQ_free(req);
    EVP_PKEY_free(key);
    return pem;
}

/* ---- certificates ------------------------------------------------------------ */

static void name_str(const X509_NAME *n, char *buf, size_t len)
{
    BIO *b = BIO_new(BIO_s_mem());
    char *data;
    long dlen;

    buf[0] = '\0';
    if (b == NULL)
        return;
    if (X509_NAME_print_ex(b, n, 0, XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB) >= 0) {
        dlen = BIO_get_mem_data(b, &data);
        snprintf(buf, len, "%.*s", (int)dlen, data);
    }
    BIO_free(b);
}

static void fill_info(X509 *cert, struct rg_routecert_info *info)
{
    struct tm tm;

    memset(info, 0, sizeof(*info));
    name_str(X509_get_subject_name(cert), info->subject, sizeof(info->subject));
    name_str(X509_get_issuer_name(cert), info->issuer, sizeof(info->issuer));
    if (ASN1_TIME_to_tm(X509_get0_notAfter(cert), &tm) == 1) {
        strftime(info->not_after, sizeof(info->not_after), "%Y-%m-%d %H:%M:%S UTC", &tm);
        info->expires = timegm(&tm);
    }
}

static void time_str(const ASN1_TIME *t, char *buf, size_t len)
{
    struct tm tm;

    if (ASN1_TIME_to_tm(t, &tm) == 1)
        strftime(buf, len, "%Y-%m-%d %H:%M:%S UTC", &tm);
    else
        snprintf(buf, len, "(unreadable time)");
}

/* The certificate's chain to cafile, time and purpose left to the caller. */
static int check_chain(X509 *cert, STACK_OF(X509) *untrusted, const char *cafile,
                       char *err, size_t errlen)
{
    X509_STORE *store = X509_STORE_new();
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    int rc = -1;

    if (access(cafile, R_OK) < 0) {
        set_err(err, errlen, "cannot read the provider CA %s: %s", cafile, strerror(errno));
        goto out;
    }
    if (store == NULL || ctx == NULL || !X509_STORE_load_file(store, cafile)) {
        set_err(err, errlen, "cannot load the provider CA %s: %s", cafile, ossl_reason());
        goto out;
    }
    if (!X509_STORE_CTX_init(ctx, store, cert, untrusted)) {
        set_err(err, errlen, "cannot verify the certificate: %s", ossl_reason());
        goto out;
    }
    X509_STORE_CTX_set_flags(ctx, X509_V_FLAG_NO_CHECK_TIME);
    if (X509_verify_cert(ctx) != 1) {
        set_err(err, errlen, "the certificate does not chain to the provider CA %s: %s", cafile,
                X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx)));
        ERR_clear_error();
        goto out;
    }
    rc = 0;
out:
    X509_STORE_CTX_free(ctx);
    X509_STORE_free(store);
    return rc;
}

/* First certificate of pem and the ones after it; NULL if there is none. */
static X509 *parse_certs(const char *pem, size_t len, STACK_OF(X509) **rest)
{
    BIO *b = BIO_new_mem_buf(pem, (int)len);
    X509 *cert, *c;

    *rest = sk_X509_new_null();
    if (b == NULL || *rest == NULL) {
        BIO_free(b);
        return NULL;
    }
    cert = PEM_read_bio_X509(b, NULL, NULL, NULL);
    while (cert != NULL && (c = PEM_read_bio_X509(b, NULL, NULL, NULL)) != NULL)
        if (!sk_X509_push(*rest, c))
            X509_free(c);
    ERR_clear_error();          /* the end of the input is an "error" too */
    BIO_free(b);
    return cert;
}

int rg_routecert_check(const char *pem, size_t len, const char *keypath, const char *cafile,
                       time_t now, struct rg_routecert_info *info, char *err, size_t errlen)
{
    STACK_OF(X509) *rest = NULL;
    X509 *cert;
    EVP_PKEY *key = NULL;
    char when[40];
    int rc = -1;

    if (len == 0) {
        set_err(err, errlen, "no certificate given (empty input)");
        return -1;
    }
    if (len > RG_ROUTECERT_MAX || len > INT_MAX) {
        set_err(err, errlen, "more than %d bytes: not a certificate", RG_ROUTECERT_MAX);
        return -1;
    }
    cert = parse_certs(pem, len, &rest);
    if (cert == NULL) {
        set_err(err, errlen, "no PEM certificate found (a block from \"-----BEGIN CERTIFICATE-----\" "
                "to \"-----END CERTIFICATE-----\")");
        goto out;
    }
    if (info != NULL)
        fill_info(cert, info);
    key = load_key(keypath, err, errlen);
    if (key == NULL)
        goto out;
    if (EVP_PKEY_eq(X509_get0_pubkey(cert), key) != 1) {
        ERR_clear_error();
        set_err(err, errlen, "the certificate is not for this route's key %s (it was issued for "
                "another certificate request)", keypath);
        goto out;
    }
    if (cafile != NULL && check_chain(cert, rest, cafile, err, errlen) < 0)
        goto out;
    if (X509_cmp_time(X509_get0_notBefore(cert), &now) > 0) {
        time_str(X509_get0_notBefore(cert), when, sizeof(when));
        set_err(err, errlen, "the certificate is not valid yet: not before %s", when);
        goto out;
    }
    if (X509_cmp_time(X509_get0_notAfter(cert), &now) < 0) {
        time_str(X509_get0_notAfter(cert), when, sizeof(when));
        set_err(err, errlen, "the certificate expired on %s", when);
        goto out;
    }
    /* X509_get_extension_flags() also caches the extensions it decoded */
    uint32_t flags = X509_get_extension_flags(cert);
    if ((flags & EXFLAG_INVALID) != 0) {
        set_err(err, errlen, "the certificate has invalid extensions");
        goto out;
    }
    if ((flags & EXFLAG_XKUSAGE) != 0 && (X509_get_extended_key_usage(cert) & XKU_SSL_CLIENT) == 0) {
        set_err(err, errlen, "the certificate's extended key usage does not include clientAuth "
                "(TLS client authentication)");
        goto out;
    }
    if ((flags & EXFLAG_KUSAGE) != 0 && (X509_get_key_usage(cert) & KU_DIGITAL_SIGNATURE) == 0) {
        set_err(err, errlen, "the certificate's key usage does not include digitalSignature");
        goto out;
    }
    rc = 0;
out:
    EVP_PKEY_free(key);
    X509_free(cert);
    sk_X509_pop_free(rest, X509_free);
    return rc;
}

/* The certificates of pem, re-encoded: nothing but them gets installed. */
static int append_certs(BIO *out, const char *pem, size_t len)
{
    STACK_OF(X509) *rest;
    X509 *cert = parse_certs(pem, len, &rest);
    int ok = cert != NULL && PEM_write_bio_X509(out, cert);

    for (int i = 0; ok && i < sk_X509_num(rest); i++)
        ok = PEM_write_bio_X509(out, sk_X509_value(rest, i));
    X509_free(cert);
    sk_X509_pop_free(rest, X509_free);
    return ok ? 0 : -1;
}

int rg_routecert_install(const char *certpath, const char *keypath, const char *pem,
                         size_t len, const struct rg_routecert_owner *owner,
                         char *err, size_t errlen)
{
    BIO *out = BIO_new(BIO_s_secmem());
    EVP_PKEY *key = NULL;
    char *data, *dir;
    long dlen;
    int rc = -1;

    if (out == NULL) {
        set_err(err, errlen, "out of memory: %s", ossl_reason());
        return -1;
    }
    if (strcmp(certpath, keypath) == 0) {
        /* one key_cert.pem: keep the key in front */
        key = load_key(keypath, err, errlen);
        if (key == NULL)
            goto out;
        if (!PEM_write_bio_PrivateKey(out, key, NULL, NULL, 0, NULL, NULL)) {
            set_err(err, errlen, "cannot encode the key: %s", ossl_reason());
            goto out;
        }
    }
    if (append_certs(out, pem, len) < 0) {
        set_err(err, errlen, "cannot encode the certificate: %s", ossl_reason());
        goto out;
    }
    dir = dir_of(certpath);
    rc = rg_routecert_mkdir(dir, owner, err, errlen);
    rg_free(dir);
    if (rc < 0)
        goto out;
    dlen = BIO_get_mem_data(out, &data);
    rc = rg_routecert_write_file(certpath, data, (size_t)dlen, 0600, owner, err, errlen);
out:
    EVP_PKEY_free(key);
    BIO_free(out);
    return rc;
}

/* ---- status ------------------------------------------------------------------ */

static char *read_small_file(const char *path, size_t max, size_t *len, int *err_no)
{
    FILE *fp = fopen(path, "re");
    char *data;

    if (fp == NULL) {
        *err_no = errno;
        return NULL;
    }
    data = rg_malloc(max + 1);
    *len = fread(data, 1, max + 1, fp);
    if (ferror(fp)) {
        *err_no = errno;
        fclose(fp);
        return rg_free(data);
    }
    fclose(fp);
    if (*len > max) {
        *err_no = EFBIG;
        return rg_free(data);
    }
    data[*len] = '\0';
    return data;
}

enum rg_routecert_state rg_routecert_status(const struct rg_route *r,
                                            struct rg_routecert_info *info,
                                            char *reason, size_t reasonlen)
{
    size_t len = 0;
    int err_no = 0;
    /* the file may be one key_cert.pem: the key is read but never shown */
    char *pem = read_small_file(r->provider_cert, RG_ROUTECERT_MAX, &len, &err_no);
    int rc;

    if (info != NULL)
        memset(info, 0, sizeof(*info));
    if (pem == NULL) {
        if (err_no == ENOENT)
            set_err(reason, reasonlen, "no certificate installed in %s", r->provider_cert);
        else
            set_err(reason, reasonlen, "cannot read %s: %s", r->provider_cert, strerror(err_no));
        return RG_ROUTECERT_NEEDED;
    }
    rc = rg_routecert_check(pem, len, r->provider_key, r->provider_ca, time(NULL), info,
                            reason, reasonlen);
    OPENSSL_cleanse(pem, len);
    rg_free(pem);
    return rc == 0 ? RG_ROUTECERT_DONE : RG_ROUTECERT_NEEDED;
}
