/*
 * makecert.c - regigate-makecert: a key, a self-signed certificate valid
 * for 10 years and a certificate request with subjectAltNames, with the
 * options of the appliance's makeCert (see regigate-makecert(1)).
 *
 * The key and the certificate are created only when absent, so running it
 * again with an existing key and certificate just writes a new request.
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/bn.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#define MAX_ALT 64
#define CERT_DAYS 3650

struct opts {
    const char *alt[MAX_ALT];
    int nalt;
    const char *cert_dir, *key_dir, *prefix;
    char country[3];
    const char *email, *locality, *cn, *org, *state, *ou;
    int rsa;
};

static void usage(FILE *f)
{
    fputs("usage: regigate-makecert -c CC -n CommonName [-s State] [-l Locality] [-o Organization]\n"
          "           [-u OrgUnit] [-e Email] [-a AltName]... [-P Prefix] [-C CertDir] [-K KeyDir]\n"
          "           [-t ec|rsa]\n"
          "Generates a TLS key, a self-signed certificate (10 years) and a certificate\n"
          "request. The key and cert are only generated if they do not already exist.\n"
          "  -a  alternative name: DNS name, IP address or e-mail (repeatable)\n"
          "  -C  certificate directory (default .)   -K  key directory (default .)\n"
          "  -c  country code (required)             -n  common name (required)\n"
          "  -e  e-mail   -l  locality   -o  organization   -s  state   -u  org unit\n"
          "  -P  file name prefix (default: the common name)\n"
          "  -t  key type: ec (P-256, default) or rsa (3072 bits)\n"
          "Creates PREFIX.key (mode 0600) in KeyDir, PREFIX.crt and PREFIX.csr in CertDir.\n", f);
}

static void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

static void fail(const char *fmt, ...)
{
    va_list ap;
    unsigned long e = ERR_get_error();
    fputs("regigate-makecert: error: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    if (e) {
        char buf[256];
        ERR_error_string_n(e, buf, sizeof(buf));
        fprintf(stderr, ": %s", buf);
    }
    fputc('\n', stderr);
    exit(1);
}

static int plain_value(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return 0;
    return 1;
}

static void parse(int argc, char **argv, struct opts *o)
{
    int c;

    memset(o, 0, sizeof(*o));
    o->cert_dir = o->key_dir = ".";
    while ((c = getopt(argc, argv, "a:C:c:e:K:l:n:o:P:s:u:t:h")) != -1) {
        switch (c) {
        case 'a':
            if (o->nalt == MAX_ALT)
                fail("at most %d -a", MAX_ALT);
            o->alt[o->nalt++] = optarg;
            break;
        case 'C': o->cert_dir = optarg; break;
        case 'K': o->key_dir = optarg; break;
        case 'c':
            if (strlen(optarg) != 2 || !((optarg[0] | 32) >= 'a' && (optarg[0] | 32) <= 'z')
                || !((optarg[1] | 32) >= 'a' && (optarg[1] | 32) <= 'z'))
                fail("-c %s: expected a two-letter country code", optarg);
            o->country[0] = (char)(optarg[0] & ~32);
            o->country[1] = (char)(optarg[1] & ~32);
            break;
        case 'e': o->email = optarg; break;
        case 'l': o->locality = optarg; break;
        case 'n': o->cn = optarg; break;
        case 'o': o->org = optarg; break;
        case 'P': o->prefix = optarg; break;
        case 's': o->state = optarg; break;
        case 'u': o->ou = optarg; break;
        case 't':
            if (!strcmp(optarg, "rsa"))
                o->rsa = 1;
            else if (strcmp(optarg, "ec"))
                fail("-t %s: expected ec or rsa", optarg);
            break;
        case 'h':
            usage(stdout);
            exit(0);
        default:
            usage(stderr);
            exit(2);
        }
    }
    if (optind != argc) {
        fprintf(stderr, "regigate-makecert: unexpected argument \"%s\"\n", argv[optind]);
        usage(stderr);
        exit(2);
    }
    if (!o->country[0] || !o->cn) {
        fprintf(stderr, "regigate-makecert: -c and -n are required\n");
        usage(stderr);
        exit(2);
    }
    const char *vals[] = { o->email, o->locality, o->cn, o->org, o->state, o->ou };
    for (size_t i = 0; i < sizeof(vals) / sizeof(vals[0]); i++)
        if (vals[i] && (!*vals[i] || !plain_value(vals[i]) || strlen(vals[i]) > 64))
            fail("\"%s\": subject values must be 1..64 bytes without control characters", vals[i]);
    for (int i = 0; i < o->nalt; i++)
        if (!*o->alt[i] || !plain_value(o->alt[i]) || strchr(o->alt[i], ',') || strlen(o->alt[i]) > 253)
            fail("-a \"%s\": not a usable alternative name", o->alt[i]);
    if (!o->prefix)
        o->prefix = o->cn;
    if (!*o->prefix || strchr(o->prefix, '/'))
        fail("-P \"%s\": the prefix must not be empty or contain '/'", o->prefix);
}

static void add_name(X509_NAME *n, const char *field, const char *value)
{
    if (value && !X509_NAME_add_entry_by_txt(n, field, MBSTRING_UTF8, (const unsigned char *)value, -1, -1, 0))
        fail("subject field %s=\"%s\" rejected", field, value);
}

static X509_NAME *subject(const struct opts *o)
{
    X509_NAME *n = X509_NAME_new();
    add_name(n, "C", o->country);
    add_name(n, "ST", o->state);
    add_name(n, "L", o->locality);
    add_name(n, "O", o->org);
    add_name(n, "OU", o->ou);
    add_name(n, "CN", o->cn);
    add_name(n, "emailAddress", o->email);
    return n;
}

/* "DNS:cn,DNS:a1,IP:a2,email:a3" for the subjectAltName extension */
static char *san_value(const struct opts *o)
{
    static char buf[MAX_ALT * 270 + 300];
    struct in6_addr a6;
    struct in_addr a4;
    size_t off = 0;
    int first = 1;

    buf[0] = 0;
    for (int i = -1; i < o->nalt; i++) {
        const char *v = i < 0 ? o->cn : o->alt[i];
        const char *type;
        if (inet_pton(AF_INET, v, &a4) == 1 || inet_pton(AF_INET6, v, &a6) == 1)
            type = "IP";
        else if (strchr(v, '@'))
            type = "email";
        else if (strchr(v, ' ') == NULL)
            type = "DNS";
        else if (i < 0)
            continue;       /* a common name that is no host name */
        else
            fail("-a \"%s\": not a DNS name, IP address or e-mail address", v);
        off += (size_t)snprintf(buf + off, sizeof(buf) - off, "%s%s:%s", first ? "" : ",", type, v);
        first = 0;
    }
    return buf[0] ? buf : NULL;
}

static void add_ext(STACK_OF(X509_EXTENSION) *sk, X509 *x, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509_EXTENSION *ext;

    X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
    ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    if (ext == NULL)
        fail("extension %s=%s", OBJ_nid2sn(nid), value);
    if (x)
        X509_add_ext(x, ext, -1);
    else
        sk_X509_EXTENSION_push(sk, ext), ext = NULL;
    X509_EXTENSION_free(ext);
}

/* Write to path via a temporary file and rename; excl: fail if present. */
static void write_file(const char *path, const char *data, size_t len, mode_t mode, int excl)
{
    char *tmp;
    int fd;

    if (asprintf(&tmp, "%s.tmp.%ld", path, (long)getpid()) < 0)
        fail("out of memory");
    fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    if (fd < 0)
        fail("%s: %s", tmp, strerror(errno));
    if (fchmod(fd, mode) < 0 || write(fd, data, len) != (ssize_t)len || fsync(fd) < 0 || close(fd) < 0) {
        unlink(tmp);
        fail("%s: %s", tmp, strerror(errno));
    }
    if (excl ? link(tmp, path) < 0 : rename(tmp, path) < 0) {
        int e = errno;
        unlink(tmp);
        fail("%s: %s", path, strerror(e));
    }
    if (excl)
        unlink(tmp);
    free(tmp);
}

static char *bio_text(BIO *b, size_t *len)
{
    char *data;
    long n = BIO_get_mem_data(b, &data);
    *len = (size_t)n;
    return data;
}

int main(int argc, char **argv)
{
    struct opts o;
    char *keypath, *certpath, *csrpath, *san;
    int have_key, have_cert;
    EVP_PKEY *key = NULL;
    X509_NAME *name;
    BIO *b;
    size_t len;

    parse(argc, argv, &o);
    if (asprintf(&keypath, "%s/%s.key", o.key_dir, o.prefix) < 0
        || asprintf(&certpath, "%s/%s.crt", o.cert_dir, o.prefix) < 0
        || asprintf(&csrpath, "%s/%s.csr", o.cert_dir, o.prefix) < 0)
        fail("out of memory");
    have_key = access(keypath, F_OK) == 0;
    have_cert = access(certpath, F_OK) == 0;
    if (have_cert && !have_key)
        fail("%s exists but %s does not; refusing to make a key that does not match it", certpath, keypath);
    name = subject(&o);
    san = san_value(&o);

    if (have_key) {
        FILE *f = fopen(keypath, "re");
        if (f == NULL)
            fail("%s: %s", keypath, strerror(errno));
        key = PEM_read_PrivateKey(f, NULL, NULL, NULL);
        fclose(f);
        if (key == NULL)
            fail("%s: not a PEM private key", keypath);
        fprintf(stderr, "regigate-makecert: using the existing key %s\n", keypath);
    } else {
        key = o.rsa ? EVP_RSA_gen(3072) : EVP_EC_gen("P-256");
        if (key == NULL)
            fail("cannot generate the key");
        b = BIO_new(BIO_s_mem());
        if (!PEM_write_bio_PrivateKey(b, key, NULL, NULL, 0, NULL, NULL))
            fail("cannot encode the key");
        char *data = bio_text(b, &len);
        write_file(keypath, data, len, 0600, 1);
        BIO_free(b);
        fprintf(stderr, "regigate-makecert: created %s\n", keypath);
    }

    if (!have_cert) {
        X509 *x = X509_new();
        unsigned char raw[16];
        BIGNUM *bn;
        if (RAND_bytes(raw, sizeof(raw)) != 1)
            fail("random number generator");
        raw[0] = (unsigned char)((raw[0] & 0x7f) | 1);
        bn = BN_bin2bn(raw, sizeof(raw), NULL);
        if (!x || !bn || !X509_set_version(x, 2) || !BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x))
            || !X509_gmtime_adj(X509_getm_notBefore(x), 0)
            || !X509_time_adj_ex(X509_getm_notAfter(x), CERT_DAYS, 0, NULL)
            || !X509_set_subject_name(x, name) || !X509_set_issuer_name(x, name)
            || !X509_set_pubkey(x, key))
            fail("cannot build the certificate");
        BN_free(bn);
        add_ext(NULL, x, NID_basic_constraints, "critical,CA:FALSE");
        add_ext(NULL, x, NID_subject_key_identifier, "hash");
        add_ext(NULL, x, NID_ext_key_usage, "serverAuth,clientAuth");
        if (san)
            add_ext(NULL, x, NID_subject_alt_name, san);
        if (!X509_sign(x, key, EVP_sha256()))
            fail("cannot sign the certificate");
        b = BIO_new(BIO_s_mem());
        if (!PEM_write_bio_X509(b, x))
            fail("cannot encode the certificate");
        char *data = bio_text(b, &len);
        write_file(certpath, data, len, 0644, 1);
        BIO_free(b);
        X509_free(x);
        fprintf(stderr, "regigate-makecert: created %s (self-signed, %d days)\n", certpath, CERT_DAYS);
    } else {
        fprintf(stderr, "regigate-makecert: keeping the existing certificate %s\n", certpath);
    }

    {
        X509_REQ *req = X509_REQ_new();
        STACK_OF(X509_EXTENSION) *exts = sk_X509_EXTENSION_new_null();
        if (!req || !exts || !X509_REQ_set_version(req, 0) || !X509_REQ_set_subject_name(req, name)
            || !X509_REQ_set_pubkey(req, key))
            fail("cannot build the request");
        if (san)
            add_ext(exts, NULL, NID_subject_alt_name, san);
        if (sk_X509_EXTENSION_num(exts) > 0 && !X509_REQ_add_extensions(req, exts))
            fail("cannot add the request's extensions");
        sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
        if (!X509_REQ_sign(req, key, EVP_sha256()))
            fail("cannot sign the request");
        b = BIO_new(BIO_s_mem());
        if (!PEM_write_bio_X509_REQ(b, req))
            fail("cannot encode the request");
        char *data = bio_text(b, &len);
        write_file(csrpath, data, len, 0644, 0);
        BIO_free(b);
        X509_REQ_free(req);
        fprintf(stderr, "regigate-makecert: wrote %s\n", csrpath);
    }
    X509_NAME_free(name);
    EVP_PKEY_free(key);
    free(keypath);
    free(certpath);
    free(csrpath);
    return 0;
}
