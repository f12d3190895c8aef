/*
 * smime.c - encrypt, detect and decrypt the encrypted regigate message;
 * see smime.h and doc/message-format.md.
 *
 * Encryption: OpenSSL CMS streaming (BIO_new_CMS) from the input spool into
 * a sink BIO that base64-encodes 76-column CRLF lines into the output spool.
 *
 * Detection and decryption: our own streaming BER reader over a streaming
 * base64 decoder over the spool. OpenSSL's d2i_CMS_bio() would hold the
 * whole (50 MiB) structure in memory; here only the small parts (recipient
 * infos, algorithm parameters) are ever held, and the ciphertext flows
 * through EVP AES-256-GCM into the output spool. OpenSSL does the crypto:
 * AES key unwrap (RFC 3394) and GCM with its tag check.
 */
#include "config.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/bio.h>
#include <openssl/cms.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>

#include "header.h"
#include "mem.h"
#include "smime.h"

#define CHUNK 65536
/* what rg_smime_encrypt hands OpenSSL at a time from a message in memory
 * (BIO_f_cipher then works through it 4 KiB at a time) */
#define ENC_CHUNK (1024 * 1024)

const char *rg_smime_strerror(int st)
{
    switch (st) {
    case RG_SMIME_OK: return "ok";
    case RG_SMIME_NOT_OURS: return "not an encrypted regigate message";
    case RG_SMIME_BAD_FORMAT: return "malformed encrypted message";
    case RG_SMIME_BAD_KEY_OR_TAMPERED: return "wrong key or tampered message";
    case RG_SMIME_TRUNCATED: return "truncated encrypted message";
    case RG_SMIME_INTERNAL: return "internal error";
    }
    return "unknown error";
}

static int set_err(char *err, size_t errlen, int st, const char *what)
{
    if (err != NULL && errlen > 0)
        snprintf(err, errlen, "%s: %s", rg_smime_strerror(st), what);
    return st;
}

/* ---------------------------------------------------------------- source */

/* A message: a spool, or bytes in memory. */
struct src {
    struct rg_spool *sp;
    const char *mem;
    size_t len;
};

static size_t src_size(const struct src *s)
{
    return s->sp ? rg_spool_size(s->sp) : s->len;
}

static ssize_t src_read(const struct src *s, void *buf, size_t n, size_t off)
{
    if (s->sp)
        return rg_spool_read(s->sp, buf, n, (off_t)off);
    if (off >= s->len)
        return 0;
    if (n > s->len - off)
        n = s->len - off;
    memcpy(buf, s->mem + off, n);
    return (ssize_t)n;
}

/* Buffered sequential reader from an offset. */
struct rd {
    const struct src *s;
    size_t off;                 /* of buf[0] */
    size_t pos, len;
    int error;
    unsigned char buf[CHUNK];
};

static void rd_init(struct rd *r, const struct src *s, size_t off)
{
    r->s = s;
    r->off = off;
    r->pos = r->len = 0;
    r->error = 0;
}

static int rd_fill(struct rd *r)
{
    ssize_t n;

    r->off += r->len;
    r->pos = r->len = 0;
    n = src_read(r->s, r->buf, sizeof(r->buf), r->off);
    if (n < 0) {
        r->error = 1;
        return -1;
    }
    r->len = (size_t)n;
    return n > 0 ? 0 : -1;
}

/* next byte, or -1 at the end (r->error set on a read error) */
static inline int rd_getc(struct rd *r)
{
    if (r->pos == r->len && rd_fill(r) < 0)
        return -1;
    return r->buf[r->pos++];
}

static size_t rd_tell(const struct rd *r)
{
    return r->off + r->pos;
}

/* Go on reading at off (>= rd_tell): within the buffer when it holds it. */
static void rd_skip_to(struct rd *r, size_t off)
{
    if (off >= r->off && off <= r->off + r->len)
        r->pos = off - r->off;
    else
        rd_init(r, r->s, off);
}

/* ---------------------------------------------------------------- base64 */

/* Streaming base64 decoder. White space and line ends are skipped; with
 * stop_at_dash a line starting with '-' (the multipart boundary) ends it. */
struct b64 {
    struct rd r;
    int stop_at_dash;
    int bol;                    /* at the beginning of a line */
    int ended;                  /* no more input */
    int padded;                 /* '=' seen */
    int st;                     /* status once ended: 0, TRUNCATED, ... */
    unsigned acc;
    int nacc;
    unsigned char out[3];
    int outpos, outlen;
};

static void b64_init(struct b64 *b, const struct src *s, size_t off, int stop_at_dash)
{
    memset(b, 0, sizeof(*b));
    rd_init(&b->r, s, off);
    b->stop_at_dash = stop_at_dash;
    b->bol = 1;
}

static inline int b64_val(int c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

static void b64_end(struct b64 *b, int st)
{
    b->ended = 1;
    if (b->st == 0)
        b->st = st;
}

/* Decode the next quantum into b->out; 0, or -1 when there is none. */
static int b64_quantum(struct b64 *b)
{
    for (;;) {
        int c, v;

        if (b->ended)
            return -1;
        c = rd_getc(&b->r);
        if (c < 0) {
            if (b->r.error)
                b64_end(b, RG_SMIME_INTERNAL);
            else
                b64_end(b, b->nacc != 0 ? RG_SMIME_TRUNCATED : 0);
            return -1;
        }
        if (c == '\n') {
            b->bol = 1;
            continue;
        }
        if (c == '-' && b->bol && b->stop_at_dash) {
            b64_end(b, b->nacc != 0 ? RG_SMIME_TRUNCATED : 0);
            return -1;
        }
        b->bol = 0;
        if (c == '\r' || c == ' ' || c == '\t')
            continue;
        if (c == '=') {
            /* "xx==" or "xxx=": the last quantum */
            if (b->nacc < 2 || b->padded) {
                if (b->padded && b->nacc == 0)
                    continue;   /* the second '=' of "xx==" */
                b64_end(b, RG_SMIME_BAD_FORMAT);
                return -1;
            }
            b->padded = 1;
            b->outlen = b->nacc - 1;
            b->acc <<= 6 * (4 - b->nacc);
            b->out[0] = (unsigned char)(b->acc >> 16);
            b->out[1] = (unsigned char)(b->acc >> 8);
            b->outpos = 0;
            b->nacc = 0;
            b->acc = 0;
            return 0;
        }
        v = b64_val(c);
        if (v < 0 || b->padded) {
            b64_end(b, RG_SMIME_BAD_FORMAT);
            return -1;
        }
        b->acc = (b->acc << 6) | (unsigned)v;
        if (++b->nacc == 4) {
            b->out[0] = (unsigned char)(b->acc >> 16);
            b->out[1] = (unsigned char)(b->acc >> 8);
            b->out[2] = (unsigned char)b->acc;
            b->outpos = 0;
            b->outlen = 3;
            b->nacc = 0;
            b->acc = 0;
            return 0;
        }
    }
}

/* base64 character values, -1 for anything else */
static const signed char b64_tab[256] = {
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, 62, -1, -1, -1, 63,
    52, 53, 54, 55, 56, 57, 58, 59, 60, 61, -1, -1, -1, -1, -1, -1,
    -1, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14,
    15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, -1, -1, -1, -1, -1,
    -1, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40,
    41, 42, 43, 44, 45, 46, 47, 48, 49, 50, 51, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
};

/* next decoded byte, or -1 (b->st says why: 0 = clean end) */
static inline int b64_getc(struct b64 *b)
{
    if (b->outpos == b->outlen && b64_quantum(b) < 0)
        return -1;
    return b->out[b->outpos++];
}

/*
 * Decode up to k bytes into p; returns how many (fewer only at the end: then
 * b->st says why). Whole quanta are taken straight from the reader's buffer
 * while they are plain base64 characters; line ends, padding, a boundary
 * and buffer refills go through b64_getc.
 */
static size_t b64_read(struct b64 *b, unsigned char *p, size_t k)
{
    size_t got = 0;

    while (got < k) {
        int c;

        if (b->outpos < b->outlen) {
            p[got++] = b->out[b->outpos++];
            continue;
        }
        if (!b->ended && b->nacc == 0 && !b->padded) {
            struct rd *r = &b->r;
            while (k - got >= 3 && r->len - r->pos >= 4) {
                const unsigned char *q = r->buf + r->pos;
                int v0 = b64_tab[q[0]], v1 = b64_tab[q[1]], v2 = b64_tab[q[2]], v3 = b64_tab[q[3]];
                unsigned v;

                if ((v0 | v1 | v2 | v3) < 0)
                    break;
                v = (unsigned)v0 << 18 | (unsigned)v1 << 12 | (unsigned)v2 << 6 | (unsigned)v3;
                p[got++] = (unsigned char)(v >> 16);
                p[got++] = (unsigned char)(v >> 8);
                p[got++] = (unsigned char)v;
                r->pos += 4;
                b->bol = 0;
            }
            if (got == k)
                break;
        }
        if ((c = b64_getc(b)) < 0)
            break;
        p[got++] = (unsigned char)c;
    }
    return got;
}

/* ---------------------------------------------------------------- BER */

struct ber {
    struct b64 *in;
    uint64_t pos;
};

struct tlv {
    int tag;                    /* identifier octet */
    int cons, indef;
    uint64_t len, end;
};

static int ber_byte(struct ber *b, unsigned char *c)
{
    int x = b64_getc(b->in);

    if (x < 0)
        return b->in->st ? b->in->st : RG_SMIME_TRUNCATED;
    *c = (unsigned char)x;
    b->pos++;
    return 0;
}

static int ber_read(struct ber *b, unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        int st = ber_byte(b, p + i);
        if (st)
            return st;
    }
    return 0;
}

static int ber_header(struct ber *b, struct tlv *t)
{
    unsigned char id, l;
    int st;

    memset(t, 0, sizeof(*t));
    if ((st = ber_byte(b, &id)) || (st = ber_byte(b, &l)))
        return st;
    if ((id & 0x1f) == 0x1f)
        return RG_SMIME_BAD_FORMAT;     /* high tag numbers: not in CMS */
    t->tag = id;
    t->cons = (id & 0x20) != 0;
    if (l < 0x80) {
        t->len = l;
    } else if (l == 0x80) {
        if (!t->cons)
            return RG_SMIME_BAD_FORMAT;
        t->indef = 1;
    } else {
        int n = l & 0x7f;
        if (n > 7)
            return RG_SMIME_BAD_FORMAT;
        for (int i = 0; i < n; i++) {
            if ((st = ber_byte(b, &l)))
                return st;
            t->len = (t->len << 8) | l;
        }
    }
    t->end = b->pos + t->len;
    return 0;
}

/* The next element inside parent, or *end = 1 when parent ends. */
static int ber_next(struct ber *b, const struct tlv *parent, struct tlv *child, int *end)
{
    int st;

    *end = 0;
    if (!parent->indef) {
        if (b->pos == parent->end) {
            *end = 1;
            return 0;
        }
        if (b->pos > parent->end)
            return RG_SMIME_BAD_FORMAT;
    }
    if ((st = ber_header(b, child)))
        return st;
    if (child->tag == 0) {
        if (child->indef || child->len != 0 || !parent->indef)
            return RG_SMIME_BAD_FORMAT;
        *end = 1;
        return 0;
    }
    if (!parent->indef && !child->indef && child->end > parent->end)
        return RG_SMIME_BAD_FORMAT;
    return 0;
}

static int ber_expect(struct ber *b, const struct tlv *parent, int tag, struct tlv *child)
{
    int end, st = ber_next(b, parent, child, &end);

    if (st)
        return st;
    return end || child->tag != tag ? RG_SMIME_BAD_FORMAT : 0;
}

static int ber_close(struct ber *b, const struct tlv *t)
{
    struct tlv c;
    int end, st = ber_next(b, t, &c, &end);

    if (st)
        return st;
    return end ? 0 : RG_SMIME_BAD_FORMAT;
}

static int ber_skip(struct ber *b, const struct tlv *t, int depth)
{
    unsigned char c;
    int st;

    if (depth > 32)
        return RG_SMIME_BAD_FORMAT;
    if (!t->indef) {
        for (uint64_t i = 0; i < t->len; i++)
            if ((st = ber_byte(b, &c)))
                return st;
        return 0;
    }
    for (;;) {
        struct tlv ch;
        int end;
        if ((st = ber_next(b, t, &ch, &end)))
            return st;
        if (end)
            return 0;
        if ((st = ber_skip(b, &ch, depth + 1)))
            return st;
    }
}

/* The content of a primitive element, at most max bytes. */
static int ber_prim(struct ber *b, const struct tlv *t, unsigned char *buf, size_t max, size_t *len)
{
    if (t->cons || t->indef || t->len > max)
        return RG_SMIME_BAD_FORMAT;
    *len = (size_t)t->len;
    return ber_read(b, buf, *len);
}

/* The next element must be tag, primitive, at most max bytes. */
static int ber_get(struct ber *b, const struct tlv *parent, int tag, unsigned char *buf, size_t max,
                   size_t *len)
{
    struct tlv t;
    int st = ber_expect(b, parent, tag, &t);

    return st ? st : ber_prim(b, &t, buf, max, len);
}

static int ber_small_int(struct ber *b, const struct tlv *parent, long *v)
{
    unsigned char buf[4];
    size_t n;
    int st = ber_get(b, parent, 0x02, buf, sizeof(buf), &n);

    if (st)
        return st;
    if (n == 0 || (buf[0] & 0x80))
        return RG_SMIME_BAD_FORMAT;
    *v = 0;
    for (size_t i = 0; i < n; i++)
        *v = (*v << 8) | buf[i];
    return 0;
}

#define OID_EQ(buf, n, oid) ((n) == sizeof(oid) && memcmp((buf), (oid), sizeof(oid)) == 0)
static const unsigned char oid_authenveloped[] = { 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x10, 0x01, 0x17 };
static const unsigned char oid_data[] = { 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x01 };
static const unsigned char oid_aes256_gcm[] = { 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x01, 0x2e };
static const unsigned char oid_aes256_wrap[] = { 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x01, 0x2d };

#define WRAPPED_LEN (RG_SMIME_KEK_LEN + 8)
#define NONCE_MAX 64

/* What is read before the content. */
struct cms_head {
    struct tlv ci, ctx0, aed, eci;
    int have_kek;
    unsigned char txid[RG_SMIME_TXID_LEN];
    unsigned char wrapped[WRAPPED_LEN];
    unsigned char nonce[NONCE_MAX];
    size_t nonce_len;
    long icvlen;
};

/* One [2] KEKRecipientInfo; taken when it is one we can use (the first). */
static int parse_kekri(struct ber *b, const struct tlv *ri, struct cms_head *h)
{
    unsigned char id[64], oid[32], wrapped[64];
    size_t idlen, oidlen, wlen;
    struct tlv kekid, alg, t;
    long version;
    int st, end;

    if ((st = ber_small_int(b, ri, &version)))
        return st;
    if (version != 4)
        return RG_SMIME_BAD_FORMAT;
    if ((st = ber_expect(b, ri, 0x30, &kekid)) || (st = ber_get(b, &kekid, 0x04, id, sizeof(id), &idlen)))
        return st;
    /* date, other: not ours to care about */
    for (;;) {
        if ((st = ber_next(b, &kekid, &t, &end)))
            return st;
        if (end)
            break;
        if ((st = ber_skip(b, &t, 0)))
            return st;
    }
    if ((st = ber_expect(b, ri, 0x30, &alg)) || (st = ber_get(b, &alg, 0x06, oid, sizeof(oid), &oidlen)))
        return st;
    for (;;) {
        if ((st = ber_next(b, &alg, &t, &end)))
            return st;
        if (end)
            break;
        if ((st = ber_skip(b, &t, 0)))
            return st;
    }
    if ((st = ber_get(b, ri, 0x04, wrapped, sizeof(wrapped), &wlen)) || (st = ber_close(b, ri)))
        return st;
    if (!h->have_kek && idlen == RG_SMIME_TXID_LEN && OID_EQ(oid, oidlen, oid_aes256_wrap)
        && wlen == WRAPPED_LEN) {
        h->have_kek = 1;
        memcpy(h->txid, id, idlen);
        memcpy(h->wrapped, wrapped, wlen);
    }
    return 0;
}

/* ContentInfo up to the start of the encrypted content. */
static int parse_head(struct ber *b, struct cms_head *h)
{
    unsigned char oid[32];
    size_t oidlen;
    struct tlv t, ris, alg, params;
    long version;
    int st, end;

    memset(h, 0, sizeof(*h));
    if ((st = ber_header(b, &h->ci)))
        return st;
    if (h->ci.tag != 0x30)
        return RG_SMIME_NOT_OURS;
    if ((st = ber_get(b, &h->ci, 0x06, oid, sizeof(oid), &oidlen)))
        return st;
    if (!OID_EQ(oid, oidlen, oid_authenveloped))
        return RG_SMIME_NOT_OURS;       /* signed-data, enveloped-data, ... */
    if ((st = ber_expect(b, &h->ci, 0xa0, &h->ctx0)) || (st = ber_expect(b, &h->ctx0, 0x30, &h->aed))
        || (st = ber_small_int(b, &h->aed, &version)))
        return st;
    if (version != 0)
        return RG_SMIME_BAD_FORMAT;
    if ((st = ber_next(b, &h->aed, &ris, &end)))
        return st;
    if (!end && ris.tag == 0xa0) {      /* originatorInfo */
        if ((st = ber_skip(b, &ris, 0)) || (st = ber_next(b, &h->aed, &ris, &end)))
            return st;
    }
    if (end || ris.tag != 0x31)
        return RG_SMIME_BAD_FORMAT;
    for (;;) {
        if ((st = ber_next(b, &ris, &t, &end)))
            return st;
        if (end)
            break;
        st = t.tag == 0xa2 ? parse_kekri(b, &t, h) : ber_skip(b, &t, 0);
        if (st)
            return st;
    }
    if (!h->have_kek)
        return RG_SMIME_NOT_OURS;       /* e.g. for certificates (ktri, kari) */
    if ((st = ber_expect(b, &h->aed, 0x30, &h->eci)) || (st = ber_get(b, &h->eci, 0x06, oid, sizeof(oid), &oidlen)))
        return st;
    if (!OID_EQ(oid, oidlen, oid_data))
        return RG_SMIME_BAD_FORMAT;
    if ((st = ber_expect(b, &h->eci, 0x30, &alg)) || (st = ber_get(b, &alg, 0x06, oid, sizeof(oid), &oidlen)))
        return st;
    if (!OID_EQ(oid, oidlen, oid_aes256_gcm))
        return RG_SMIME_BAD_FORMAT;
    if ((st = ber_expect(b, &alg, 0x30, &params))
        || (st = ber_get(b, &params, 0x04, h->nonce, sizeof(h->nonce), &h->nonce_len)))
        return st;
    if (h->nonce_len == 0)
        return RG_SMIME_BAD_FORMAT;
    h->icvlen = 12;                     /* the DEFAULT of GCMParameters */
    if ((st = ber_next(b, &params, &t, &end)))
        return st;
    if (!end) {
        unsigned char v[4];
        size_t n;
        if (t.tag != 0x02 || (st = ber_prim(b, &t, v, sizeof(v), &n)) || n != 1)
            return st ? st : RG_SMIME_BAD_FORMAT;
        h->icvlen = v[0];
        if ((st = ber_close(b, &params)))
            return st;
    }
    if (h->icvlen < 12 || h->icvlen > 16)
        return RG_SMIME_BAD_FORMAT;
    return ber_close(b, &alg);
}

/* ---------------------------------------------------------------- MIME */

static int lower(int c)
{
    return c >= 'A' && c <= 'Z' ? c + 32 : c;
}

static int ieq(const char *a, const char *b)
{
    for (; *a && *b; a++, b++)
        if (lower((unsigned char)*a) != lower((unsigned char)*b))
            return 0;
    return *a == *b;
}

/* The media type of a Content-Type value, lower case ("" if none). */
static void ct_type(const char *v, char *out, size_t cap)
{
    size_t n = 0;

    while (*v == ' ' || *v == '\t')
        v++;
    for (; *v && *v != ';' && *v != ' ' && *v != '\t' && *v != '(' && n + 1 < cap; v++)
        out[n++] = (char)lower((unsigned char)*v);
    out[n] = 0;
}

/* The value of parameter attr in a structured value; 0 if found. */
static int ct_param(const char *v, const char *attr, char *out, size_t cap)
{
    const char *p = strchr(v, ';');

    while (p != NULL) {
        const char *a, *e;
        size_t n = 0;
        p++;
        while (*p == ' ' || *p == '\t' || *p == ';')
            p++;
        a = p;
        while (*p && *p != '=' && *p != ';')
            p++;
        if (*p != '=') {
            p = strchr(p, ';');
            continue;
        }
        e = p;
        while (e > a && (e[-1] == ' ' || e[-1] == '\t'))
            e--;
        p++;
        while (*p == ' ' || *p == '\t')
            p++;
        int match = (size_t)(e - a) == strlen(attr);
        for (size_t i = 0; match && i < strlen(attr); i++)
            match = lower((unsigned char)a[i]) == lower((unsigned char)attr[i]);
        if (*p == '"') {
            for (p++; *p && *p != '"'; p++) {
                if (*p == '\\' && p[1])
                    p++;
                if (n + 1 < cap)
                    out[n++] = *p;
            }
            if (*p == '"')
                p++;
        } else {
            for (; *p && *p != ';' && *p != ' ' && *p != '\t'; p++)
                if (n + 1 < cap)
                    out[n++] = *p;
        }
        out[n] = 0;
        if (match)
            return 0;
        p = strchr(p, ';');
    }
    return -1;
}

/* The unfolded raw value of the first field name, or NULL. */
static char *field(const struct rg_headers *h, const char *name)
{
    long i = rg_headers_find(h, name, 0);

    return i < 0 ? NULL : rg_header_value_raw(h, (size_t)i);
}

/* Parse the header section at off; 0, or -1 (too long, read error). */
static int headers_at(const struct src *s, size_t off, size_t max, struct rg_headers *h)
{
    /* start small: a part's header section is usually a few hundred bytes,
     * and a multipart with a million parts must not read 64 KiB for each */
    size_t size = src_size(s), want = 2048, have = 0;
    char *buf = NULL;

    if (off > size)
        return -1;
    for (;;) {
        enum rg_hdr_status st;
        if (want > size - off)
            want = size - off;
        buf = rg_realloc(buf, want + 1);
        while (have < want) {       /* (an empty message parses as is) */
            ssize_t n = src_read(s, buf + have, want - have, off + have);
            if (n <= 0) {
                rg_free(buf);
                return -1;
            }
            have += (size_t)n;
        }
        st = rg_headers_parse(buf, have, have == size - off, max, h);
        if (st == RG_HDR_OK) {
            rg_free(buf);
            return 0;
        }
        if (st != RG_HDR_NEEDMORE || want >= max + 1) {
            rg_free(buf);
            return -1;
        }
        want = want * 4 > max + 1 ? max + 1 : want * 4;
    }
}

/* Is this (part) header a pkcs7-mime in base64? 1 yes, 0 no; *smime: it is
 * S/MIME at all. */
static int is_p7m(const struct rg_headers *h, int *smime)
{
    char *ct = field(h, "Content-Type"), *cte, type[64], name[256];
    int p7 = 0, ok;

    if (ct == NULL)
        return 0;
    ct_type(ct, type, sizeof(type));
    if (strcmp(type, "application/pkcs7-mime") == 0 || strcmp(type, "application/x-pkcs7-mime") == 0) {
        p7 = 1;
    } else if (strcmp(type, "multipart/signed") == 0 || strcmp(type, "application/pkcs7-signature") == 0
               || strcmp(type, "application/x-pkcs7-signature") == 0) {
        *smime = 1;
    } else if (strcmp(type, "application/octet-stream") == 0) {
        char *cd = field(h, "Content-Disposition");
        if (ct_param(ct, "name", name, sizeof(name)) == 0
            || (cd != NULL && ct_param(cd, "filename", name, sizeof(name)) == 0)) {
            size_t n = strlen(name);
            p7 = n >= 4 && ieq(name + n - 4, ".p7m");
        }
        rg_free(cd);
    }
    rg_free(ct);
    if (!p7)
        return 0;
    *smime = 1;
    cte = field(h, "Content-Transfer-Encoding");
    ok = cte != NULL && ieq(cte, "base64");
    rg_free(cte);
    return ok;
}

static void info_set(struct rg_smime_info *info, const struct cms_head *h,
                     enum rg_smime_placement pl, size_t off)
{
    static const char hex[] = "0123456789abcdef";

    info->kind = RG_SMIME_KIND_OURS;
    info->placement = pl;
    info->b64_offset = off;
    memcpy(info->txid, h->txid, RG_SMIME_TXID_LEN);
    for (size_t i = 0; i < RG_SMIME_TXID_LEN; i++) {
        info->txid_hex[2 * i] = hex[h->txid[i] >> 4];
        info->txid_hex[2 * i + 1] = hex[h->txid[i] & 15];
    }
    info->txid_hex[2 * RG_SMIME_TXID_LEN] = 0;
}

/* Is the base64 at off the head of one of ours? */
static int probe_cms(const struct src *s, size_t off, int stop_at_dash, struct cms_head *h)
{
    struct b64 *d = rg_malloc(sizeof(*d));
    struct ber b = { d, 0 };
    int st;

    b64_init(d, s, off, stop_at_dash);
    st = parse_head(&b, h);
    rg_free(d);
    return st;
}

/* Read one line; its first cap-1 bytes into buf (NUL-terminated, without
 * the line end). -1 at the end. */
static int rd_line(struct rd *r, char *buf, size_t cap, size_t *start)
{
    size_t n = 0;
    int c = rd_getc(r);

    if (c < 0)
        return -1;
    *start = rd_tell(r) - 1;
    for (; c >= 0 && c != '\n'; c = rd_getc(r))
        if (n + 1 < cap)
            buf[n++] = (char)c;
    if (n > 0 && buf[n - 1] == '\r')
        n--;
    buf[n] = 0;
    return 0;
}

/* Is line a delimiter "--boundary" (1) or the close "--boundary--" (2)? */
static int delimiter(const char *line, const char *bd)
{
    size_t bl = strlen(bd);
    const char *p;

    if (line[0] != '-' || line[1] != '-' || strncmp(line + 2, bd, bl) != 0)
        return 0;
    p = line + 2 + bl;
    if (p[0] == '-' && p[1] == '-')
        return 2;
    while (*p == ' ' || *p == '\t')
        p++;
    return *p == 0 ? 1 : 0;
}

static int detect_src(const struct src *s, struct rg_smime_info *info)
{
    struct rg_headers h;
    struct cms_head ch;
    char *ct, type[64], bd[256];
    int smime = 0, st = RG_SMIME_NOT_OURS;

    memset(info, 0, sizeof(*info));
    if (headers_at(s, 0, RG_SMIME_HEADER_MAX, &h) < 0)
        return RG_SMIME_NOT_OURS;
    if (is_p7m(&h, &smime)) {
        st = probe_cms(s, h.body_offset, 0, &ch);
        if (st == RG_SMIME_OK)
            info_set(info, &ch, RG_SMIME_TOPLEVEL, h.body_offset);
        else
            info->kind = RG_SMIME_KIND_OTHER;
        rg_headers_free(&h);
        return st;
    }
    info->kind = smime ? RG_SMIME_KIND_OTHER : RG_SMIME_KIND_NONE;
    ct = field(&h, "Content-Type");
    type[0] = 0;
    if (ct != NULL)
        ct_type(ct, type, sizeof(type));
    if (strcmp(type, "multipart/mixed") == 0 && ct_param(ct, "boundary", bd, sizeof(bd)) == 0 && bd[0]) {
        struct rd *r = rg_malloc(sizeof(*r));
        char line[512];
        size_t start;

        rd_init(r, s, h.body_offset);
        while (rd_line(r, line, sizeof(line), &start) == 0) {
            struct rg_headers ph;
            int d = delimiter(line, bd), psmime = 0;
            if (d == 2)
                break;
            if (d == 0)
                continue;
            if (headers_at(s, rd_tell(r), RG_SMIME_HEADER_MAX, &ph) < 0)
                break;
            if (is_p7m(&ph, &psmime)) {
                int pst = probe_cms(s, rd_tell(r) + ph.body_offset, 1, &ch);
                if (pst == RG_SMIME_OK) {
                    info_set(info, &ch, RG_SMIME_ATTACHMENT, rd_tell(r) + ph.body_offset);
                    st = RG_SMIME_OK;
                } else if (pst != RG_SMIME_NOT_OURS) {
                    st = pst;
                }
            }
            if (psmime && info->kind == RG_SMIME_KIND_NONE)
                info->kind = RG_SMIME_KIND_OTHER;
            /* go on after the part's header section: a boundary that looks
             * like a field ("x:") must not make every delimiter line parse
             * all the ones after it again (quadratic: minutes for 1 MB) */
            rd_skip_to(r, rd_tell(r) + ph.body_offset);
            rg_headers_free(&ph);
            if (st == RG_SMIME_OK)
                break;
        }
        if (r->error && st != RG_SMIME_OK)
            st = RG_SMIME_INTERNAL;
        rg_free(r);
    }
    rg_free(ct);
    rg_headers_free(&h);
    return st;
}

int rg_smime_detect_spool(struct rg_spool *sp, struct rg_smime_info *info)
{
    struct src s = { sp, NULL, 0 };

    return detect_src(&s, info);
}

int rg_smime_detect(const char *msg, size_t len, struct rg_smime_info *info)
{
    struct src s = { NULL, msg, len };

    return detect_src(&s, info);
}

/* ---------------------------------------------------------------- decrypt */

struct gcm_out {
    EVP_CIPHER_CTX *ctx;
    struct rg_spool *out;
    unsigned char in[CHUNK], plain[CHUNK + 32];
};

/* Decrypt n bytes of ciphertext from the stream into the output spool. */
static int stream_octets(struct ber *b, struct gcm_out *g, uint64_t n)
{
    while (n > 0) {
        size_t k = n > CHUNK ? CHUNK : (size_t)n, got;
        int outl;

        got = b64_read(b->in, g->in, k);
        b->pos += got;
        if (got < k)
            return b->in->st ? b->in->st : RG_SMIME_TRUNCATED;
        if (EVP_DecryptUpdate(g->ctx, g->plain, &outl, g->in, (int)k) != 1)
            return RG_SMIME_INTERNAL;
        if (outl > 0 && rg_spool_write(g->out, g->plain, (size_t)outl) < 0)
            return RG_SMIME_INTERNAL;
        n -= k;
    }
    return 0;
}

/* A constructed OCTET STRING (or [0]): its primitive pieces in order. */
static int stream_cons(struct ber *b, struct gcm_out *g, const struct tlv *t, int depth)
{
    if (depth > 8)
        return RG_SMIME_BAD_FORMAT;
    for (;;) {
        struct tlv c;
        int end, st = ber_next(b, t, &c, &end);
        if (st)
            return st;
        if (end)
            return 0;
        if (c.tag == 0x04)
            st = stream_octets(b, g, c.len);
        else if (c.tag == 0x24)
            st = stream_cons(b, g, &c, depth + 1);
        else
            st = RG_SMIME_BAD_FORMAT;
        if (st)
            return st;
    }
}

/* Unwrap the content key (RFC 3394 AES-256 key wrap). */
static int unwrap(const unsigned char *kek, const unsigned char *wrapped, unsigned char *cek)
{
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    unsigned char out[WRAPPED_LEN + 16];
    int outl = 0, finl = 0, st = RG_SMIME_INTERNAL;

    if (ctx == NULL)
        return st;
    EVP_CIPHER_CTX_set_flags(ctx, EVP_CIPHER_CTX_FLAG_WRAP_ALLOW);
    if (EVP_DecryptInit_ex(ctx, EVP_aes_256_wrap(), NULL, kek, NULL) == 1) {
        if (EVP_DecryptUpdate(ctx, out, &outl, wrapped, WRAPPED_LEN) != 1
            || EVP_DecryptFinal_ex(ctx, out + outl, &finl) != 1 || outl + finl != RG_SMIME_KEK_LEN) {
            st = RG_SMIME_BAD_KEY_OR_TAMPERED;
        } else {
            memcpy(cek, out, RG_SMIME_KEK_LEN);
            st = 0;
        }
    }
    OPENSSL_cleanse(out, sizeof(out));
    EVP_CIPHER_CTX_free(ctx);
    return st;
}

static int decrypt_body(struct ber *b, struct cms_head *h, const unsigned char *kek,
                        struct rg_spool *out, const char **why)
{
    unsigned char cek[RG_SMIME_KEK_LEN], mac[16];
    size_t maclen;
    struct gcm_out *g;
    struct tlv c;
    int st, end, outl;

    if ((st = unwrap(kek, h->wrapped, cek))) {
        *why = "the content key does not unwrap with this key";
        return st;
    }
    g = rg_malloc(sizeof(*g));
    g->out = out;
    g->ctx = EVP_CIPHER_CTX_new();
    *why = "cannot decrypt";
    st = RG_SMIME_INTERNAL;
    if (g->ctx == NULL || EVP_DecryptInit_ex(g->ctx, EVP_aes_256_gcm(), NULL, NULL, NULL) != 1
        || EVP_CIPHER_CTX_ctrl(g->ctx, EVP_CTRL_AEAD_SET_IVLEN, (int)h->nonce_len, NULL) != 1
        || EVP_DecryptInit_ex(g->ctx, NULL, NULL, cek, h->nonce) != 1)
        goto done;
    *why = "malformed encrypted content";
    if ((st = ber_next(b, &h->eci, &c, &end)))
        goto done;
    if (end) {
        st = RG_SMIME_BAD_FORMAT;       /* detached content: not ours */
        goto done;
    }
    if (c.tag == 0x80)
        st = stream_octets(b, g, c.len);
    else if (c.tag == 0xa0)
        st = stream_cons(b, g, &c, 0);
    else
        st = RG_SMIME_BAD_FORMAT;
    if (st || (st = ber_close(b, &h->eci)) || (st = ber_next(b, &h->aed, &c, &end)))
        goto done;
    if (end || c.tag != 0x04) {
        /* [1] authAttrs would be GCM's AAD, needed before the content */
        *why = end ? "no MAC" : "authenticated attributes are not supported";
        st = RG_SMIME_BAD_FORMAT;
        goto done;
    }
    *why = "malformed MAC";
    if ((st = ber_prim(b, &c, mac, sizeof(mac), &maclen)))
        goto done;
    if ((long)maclen != h->icvlen) {
        st = RG_SMIME_BAD_FORMAT;
        goto done;
    }
    *why = "malformed end of the CMS structure";
    if ((st = ber_next(b, &h->aed, &c, &end)))
        goto done;
    if (!end) {
        if (c.tag != 0xa2 || (st = ber_skip(b, &c, 0)) || (st = ber_close(b, &h->aed))) {
            st = st ? st : RG_SMIME_BAD_FORMAT;
            goto done;
        }
    }
    if ((st = ber_close(b, &h->ctx0)) || (st = ber_close(b, &h->ci)))
        goto done;
    if (b64_getc(b->in) >= 0 || b->in->st) {
        *why = "data after the CMS structure";
        st = b->in->st ? b->in->st : RG_SMIME_BAD_FORMAT;
        goto done;
    }
    *why = "the GCM tag does not verify";
    st = RG_SMIME_BAD_KEY_OR_TAMPERED;
    if (EVP_CIPHER_CTX_ctrl(g->ctx, EVP_CTRL_AEAD_SET_TAG, (int)maclen, mac) != 1)
        goto done;
    if (EVP_DecryptFinal_ex(g->ctx, g->plain, &outl) != 1)
        goto done;
    *why = "cannot write the plaintext";
    st = RG_SMIME_INTERNAL;
    if (rg_spool_finish(out) < 0)
        goto done;
    st = 0;
done:
    if (st == RG_SMIME_TRUNCATED)
        *why = "the encrypted message ends too early";
    OPENSSL_cleanse(cek, sizeof(cek));
    EVP_CIPHER_CTX_free(g->ctx);
    rg_free(g);
    return st;
}

static int decrypt_src(const struct src *s, const unsigned char *kek, struct rg_spool *out,
                       char *err, size_t errlen)
{
    struct rg_smime_info info;
    struct cms_head h;
    struct b64 *d;
    struct ber b;
    const char *why = "not an encrypted regigate message";
    int st = detect_src(s, &info);

    if (st != RG_SMIME_OK) {
        if (st == RG_SMIME_INTERNAL)
            why = "cannot read the message";
        else if (st != RG_SMIME_NOT_OURS)
            why = "cannot read the start of the CMS structure";
        return set_err(err, errlen, st, why);
    }
    d = rg_malloc(sizeof(*d));
    b64_init(d, s, info.b64_offset, info.placement == RG_SMIME_ATTACHMENT);
    b.in = d;
    b.pos = 0;
    st = parse_head(&b, &h);
    if (st == RG_SMIME_OK)
        st = decrypt_body(&b, &h, kek, out, &why);
    OPENSSL_cleanse(&h, sizeof(h));
    rg_free(d);
    if (st == 0)
        return 0;
    /* no unauthenticated plaintext stays, not even in the staging memory */
    if (out->mem != NULL)
        OPENSSL_cleanse(out->mem, out->mem_len);
    rg_spool_reset(out);
    return set_err(err, errlen, st, why);
}

int rg_smime_decrypt(struct rg_spool *in, const unsigned char kek[RG_SMIME_KEK_LEN],
                     struct rg_spool *out, char *err, size_t errlen)
{
    struct src s = { in, NULL, 0 };

    return decrypt_src(&s, kek, out, err, errlen);
}

int rg_smime_decrypt_mem(const char *msg, size_t len, const unsigned char kek[RG_SMIME_KEK_LEN],
                         struct rg_spool *out, char *err, size_t errlen)
{
    struct src s = { NULL, msg, len };

    return decrypt_src(&s, kek, out, err, errlen);
}

/* ---------------------------------------------------------------- encrypt */

/*
 * The sink at the end of OpenSSL's CMS stream: base64, 76 columns, CRLF.
 *
 * This is the per-byte work of encryption, next to AES-GCM itself, so it is
 * written for speed: OpenSSL hands the sink ~4 KiB of ciphertext at a time
 * (BIO_f_cipher's block) with the few bytes of each OCTET STRING header in
 * between; every whole 57-byte group is encoded straight from OpenSSL's
 * buffer into a complete 78-byte line (76 characters + CRLF) of a staging
 * buffer (with AVX2 where the CPU has it, else 6 input bytes at a time
 * through a table of character pairs), and the staging buffer goes to the
 * spool in one write when it is full. Only the bytes of a group cut by the
 * end of a write are copied (into grp), and only the last line of the
 * message takes the byte-by-byte path (padding).
 */
#define B64_IN_LINE 57                  /* bytes per line */
#define B64_OUT_LINE 78                 /* 76 characters + CRLF */
#define B64_STAGE_LINES 210             /* 16 KiB: stays in the L1/L2 cache */

struct b64w {
    struct rg_spool *out;
    int failed;
    int avx2;                           /* use b64_lines_avx2 */
    size_t ngrp;
    unsigned char grp[B64_IN_LINE];     /* a group cut by the end of a write */
    size_t nstage;
    char stage[B64_OUT_LINE * B64_STAGE_LINES];
};

static const char b64chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* b64pairs[v] = the two characters of the 12 bits v, built by the compiler. */
#define B64C(i) ((i) < 26 ? 'A' + (i) : (i) < 52 ? 'a' + (i) - 26 : (i) < 62 ? '0' + (i) - 52 \
                 : (i) == 62 ? '+' : '/')
#define B64P(h, l) { B64C(h), B64C(l) }
#define B64P8(h, l) B64P(h, l), B64P(h, (l) + 1), B64P(h, (l) + 2), B64P(h, (l) + 3), \
                    B64P(h, (l) + 4), B64P(h, (l) + 5), B64P(h, (l) + 6), B64P(h, (l) + 7)
#define B64ROW(h) B64P8(h, 0), B64P8(h, 8), B64P8(h, 16), B64P8(h, 24), \
                  B64P8(h, 32), B64P8(h, 40), B64P8(h, 48), B64P8(h, 56)
#define B64ROW8(h) B64ROW(h), B64ROW((h) + 1), B64ROW((h) + 2), B64ROW((h) + 3), \
                   B64ROW((h) + 4), B64ROW((h) + 5), B64ROW((h) + 6), B64ROW((h) + 7)
static const char b64pairs[4096][2] = {
    B64ROW8(0), B64ROW8(8), B64ROW8(16), B64ROW8(24),
    B64ROW8(32), B64ROW8(40), B64ROW8(48), B64ROW8(56),
};

/* p[0..5] as a big-endian 48-bit number. Reads p[0..7]: the caller makes
 * sure the two bytes after the six are there. */
static inline uint64_t load_be48(const unsigned char *p)
{
#if defined(__GNUC__) && defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    uint64_t v;

    memcpy(&v, p, sizeof(v));
    return __builtin_bswap64(v) >> 16;
#elif defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    uint64_t v;

    memcpy(&v, p, sizeof(v));
    return v >> 16;
#else
    return (uint64_t)p[0] << 40 | (uint64_t)p[1] << 32 | (uint64_t)p[2] << 24
           | (uint64_t)p[3] << 16 | (uint64_t)p[4] << 8 | p[5];
#endif
}

/* One whole line: 57 bytes at p -> 76 characters + CRLF at o. */
static inline void b64_line57(char *o, const unsigned char *p)
{
    unsigned v;

    for (int i = 0; i < 54; i += 6, o += 8) {
        uint64_t x = load_be48(p + i);  /* reads up to p[55] */

        memcpy(o, b64pairs[x >> 36], 2);
        memcpy(o + 2, b64pairs[(x >> 24) & 4095], 2);
        memcpy(o + 4, b64pairs[(x >> 12) & 4095], 2);
        memcpy(o + 6, b64pairs[x & 4095], 2);
    }
    v = (unsigned)p[54] << 16 | (unsigned)p[55] << 8 | p[56];
    memcpy(o, b64pairs[v >> 12], 2);
    memcpy(o + 2, b64pairs[v & 4095], 2);
    o[4] = '\r';
    o[5] = '\n';
}

/*
 * The same with AVX2 (x86-64 with GCC or clang, chosen at run time), about
 * three times as fast as the table (8.7 against 2.8 GB/s of input on the
 * benchmark machine): the SIMD base64 of Muła and Lemire
 * ("Faster Base64 Encoding and Decoding Using AVX2 Instructions", 2018),
 * 24 bytes -> 32 characters per step, each 128-bit lane doing 12 bytes.
 * A line is three steps: bytes 0..23, 24..47, then 33..56 (characters
 * 44..75, rewriting 44..63 with the same values), so no load reads
 * outside the 57 bytes.
 */
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__)) && !defined(RG_SMIME_NO_SIMD)
#define B64_AVX2 1
#include <immintrin.h>

/* 12 bytes from the 16 at a (lane 0) and 12 from the 16 at b (lane 1), as
 * shuf picks them -> 32 characters */
__attribute__((target("avx2")))
static inline __m256i b64_avx2_step(const unsigned char *a, const unsigned char *b, __m256i shuf)
{
    const __m256i lut = _mm256_setr_epi8(
        'a' - 26, '0' - 52, '0' - 52, '0' - 52, '0' - 52, '0' - 52, '0' - 52, '0' - 52,
        '0' - 52, '0' - 52, '0' - 52, '+' - 62, '/' - 63, 'A', 0, 0,
        'a' - 26, '0' - 52, '0' - 52, '0' - 52, '0' - 52, '0' - 52, '0' - 52, '0' - 52,
        '0' - 52, '0' - 52, '0' - 52, '+' - 62, '/' - 63, 'A', 0, 0);
    __m256i in, t0, t1, t2, t3, idx, r, less;

    in = _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_loadu_si128((const __m128i *)(const void *)a)),
                                 _mm_loadu_si128((const __m128i *)(const void *)b), 1);
    /* per 3 bytes x, y, z: the 32-bit word y x z y; then the four 6-bit
     * fields into the four bytes of the word */
    in = _mm256_shuffle_epi8(in, shuf);
    t0 = _mm256_and_si256(in, _mm256_set1_epi32(0x0fc0fc00));
    t1 = _mm256_mulhi_epu16(t0, _mm256_set1_epi32(0x04000040));
    t2 = _mm256_and_si256(in, _mm256_set1_epi32(0x003f03f0));
    t3 = _mm256_mullo_epi16(t2, _mm256_set1_epi32(0x01000010));
    idx = _mm256_or_si256(t1, t3);
    /* 0..25 -> 13 ('A'), 26..51 -> 0 ('a' - 26), 52..61 -> 1..10 ('0' - 52),
     * 62 -> 11 ('+' - 62), 63 -> 12 ('/' - 63): the offset to add */
    r = _mm256_subs_epu8(idx, _mm256_set1_epi8(51));
    less = _mm256_cmpgt_epi8(_mm256_set1_epi8(26), idx);
    r = _mm256_or_si256(r, _mm256_and_si256(less, _mm256_set1_epi8(13)));
    return _mm256_add_epi8(_mm256_shuffle_epi8(lut, r), idx);
}

__attribute__((target("avx2")))
static void b64_lines_avx2(char *o, const unsigned char *p, size_t nlines)
{
    const __m256i s = _mm256_setr_epi8(1, 0, 2, 1, 4, 3, 5, 4, 7, 6, 8, 7, 10, 9, 11, 10,
                                       1, 0, 2, 1, 4, 3, 5, 4, 7, 6, 8, 7, 10, 9, 11, 10);
    const __m256i s4 = _mm256_setr_epi8(1, 0, 2, 1, 4, 3, 5, 4, 7, 6, 8, 7, 10, 9, 11, 10,
                                        5, 4, 6, 5, 8, 7, 9, 8, 11, 10, 12, 11, 14, 13, 15, 14);

    for (size_t i = 0; i < nlines; i++, p += B64_IN_LINE, o += B64_OUT_LINE) {
        _mm256_storeu_si256((__m256i *)(void *)o, b64_avx2_step(p, p + 12, s));
        _mm256_storeu_si256((__m256i *)(void *)(o + 32), b64_avx2_step(p + 24, p + 36, s));
        _mm256_storeu_si256((__m256i *)(void *)(o + 44), b64_avx2_step(p + 33, p + 41, s4));
        o[76] = '\r';
        o[77] = '\n';
    }
}
#endif

/* nlines whole lines: p -> o */
static void b64_lines(char *o, const unsigned char *p, size_t nlines, int avx2)
{
#ifdef B64_AVX2
    if (avx2) {
        b64_lines_avx2(o, p, nlines);
        return;
    }
#else
    (void)avx2;
#endif
    for (size_t i = 0; i < nlines; i++, p += B64_IN_LINE, o += B64_OUT_LINE)
        b64_line57(o, p);
}

static void b64w_flush_stage(struct b64w *w)
{
    if (w->nstage > 0 && rg_spool_write(w->out, w->stage, w->nstage) < 0)
        w->failed = 1;
    w->nstage = 0;
}

/* nlines whole lines from p. */
static void b64w_lines(struct b64w *w, const unsigned char *p, size_t nlines)
{
    while (nlines > 0) {
        size_t room = (sizeof(w->stage) - w->nstage) / B64_OUT_LINE, k;

        if (room == 0) {
            b64w_flush_stage(w);
            room = B64_STAGE_LINES;
        }
        k = nlines < room ? nlines : room;
        b64_lines(w->stage + w->nstage, p, k, w->avx2);
        w->nstage += k * B64_OUT_LINE;
        p += k * B64_IN_LINE;
        nlines -= k;
    }
}

/* The last line: 1..56 bytes, '=' padded. */
static void b64w_last_line(struct b64w *w, const unsigned char *p, size_t n)
{
    char *o;
    size_t i;

    if (sizeof(w->stage) - w->nstage < B64_OUT_LINE)
        b64w_flush_stage(w);
    o = w->stage + w->nstage;
    for (i = 0; i + 3 <= n; i += 3, o += 4) {
        unsigned v = (unsigned)p[i] << 16 | (unsigned)p[i + 1] << 8 | p[i + 2];
        memcpy(o, b64pairs[v >> 12], 2);
        memcpy(o + 2, b64pairs[v & 4095], 2);
    }
    if (i < n) {
        unsigned v = (unsigned)p[i] << 16 | (i + 1 < n ? (unsigned)p[i + 1] << 8 : 0);
        *o++ = b64chars[v >> 18];
        *o++ = b64chars[(v >> 12) & 63];
        *o++ = i + 1 < n ? b64chars[(v >> 6) & 63] : '=';
        *o++ = '=';
    }
    *o++ = '\r';
    *o++ = '\n';
    w->nstage = (size_t)(o - w->stage);
}

static int b64w_write(BIO *bio, const char *data, int len)
{
    struct b64w *w = BIO_get_data(bio);
    const unsigned char *p = (const unsigned char *)data;
    size_t n = len > 0 ? (size_t)len : 0;

    if (w->ngrp > 0) {
        size_t k = B64_IN_LINE - w->ngrp < n ? B64_IN_LINE - w->ngrp : n;
        memcpy(w->grp + w->ngrp, p, k);
        w->ngrp += k;
        p += k;
        n -= k;
        if (w->ngrp == B64_IN_LINE) {
            b64w_lines(w, w->grp, 1);
            w->ngrp = 0;
        }
    }
    b64w_lines(w, p, n / B64_IN_LINE);
    p += n / B64_IN_LINE * B64_IN_LINE;
    n %= B64_IN_LINE;
    if (n > 0) {
        memcpy(w->grp, p, n);
        w->ngrp = n;
    }
    return w->failed ? -1 : len;
}

static long b64w_ctrl(BIO *bio, int cmd, long num, void *ptr)
{
    (void)bio;
    (void)num;
    (void)ptr;
    /* flushing is done by b64w_finish, once, at the very end */
    return cmd == BIO_CTRL_FLUSH ? 1 : 0;
}

static int b64w_finish(struct b64w *w)
{
    if (w->ngrp > 0)
        b64w_last_line(w, w->grp, w->ngrp);
    w->ngrp = 0;
    b64w_flush_stage(w);
    return w->failed ? -1 : 0;
}

static int put(struct rg_spool *out, const char *s, size_t n)
{
    return rg_spool_write(out, s, n);
}

static int puts_(struct rg_spool *out, const char *s)
{
    return put(out, s, strlen(s));
}

/* Every instance of field name, under that canonical name, folding kept,
 * line ends made CRLF. */
static int copy_field(struct rg_spool *out, const struct rg_headers *h, const char *name)
{
    size_t nlen = strlen(name);

    /* one pass over the fields: rg_headers_find() per instance would make a
     * field repeated n times (100,000 "To:" lines fit in 1 MiB) cost n^2 */
    for (size_t i = 0; i < h->n; i++) {
        const struct rg_header_field *f = &h->f[i];
        const char *colon;
        size_t j, from;

        if (f->name_len != nlen || strncasecmp(f->raw, name, nlen) != 0)
            continue;
        colon = memchr(f->raw + f->name_len, ':', f->raw_len - f->name_len);
        if (colon == NULL || puts_(out, name) < 0)
            return -1;
        from = (size_t)(colon - f->raw);
        for (j = from; j < f->raw_len; j++) {
            if (f->raw[j] == '\n' && (j == 0 || f->raw[j - 1] != '\r')) {
                if (put(out, f->raw + from, j - from) < 0 || put(out, "\r", 1) < 0)
                    return -1;
                from = j;
            }
        }
        if (put(out, f->raw + from, f->raw_len - from) < 0)
            return -1;
    }
    return 0;
}

static int outer_headers(struct src *s, const struct rg_smime_outer *outer, struct rg_spool *out)
{
    static const char *const keep[] = { "From", "To", "Cc", "Date", "Message-ID" };
    struct rg_headers h;
    int rc = -1;

    if (headers_at(s, 0, RG_SMIME_OUTER_HEADER_MAX, &h) < 0)
        return -2;
    for (size_t i = 0; i < sizeof(keep) / sizeof(keep[0]); i++)
        if (copy_field(out, &h, keep[i]) < 0)
            goto done;
    if (outer != NULL && outer->hide_subject) {
        char *v = rg_header_encode_value("Subject",
                                         outer->subject ? outer->subject : "Encrypted message");
        int r = puts_(out, "Subject: ") < 0 || puts_(out, v) < 0 || puts_(out, "\r\n") < 0;
        rg_free(v);
        if (r)
            goto done;
    } else if (copy_field(out, &h, "Subject") < 0) {
        goto done;
    }
    if (puts_(out, "MIME-Version: 1.0\r\n"
                   "Content-Type: application/pkcs7-mime; smime-type=authEnveloped-data;\r\n"
                   " name=\"smime.p7m\"\r\n"
                   "Content-Transfer-Encoding: base64\r\n"
                   "Content-Disposition: attachment; filename=\"smime.p7m\"\r\n"
                   "\r\n") < 0)
        goto done;
    rc = 0;
done:
    rg_headers_free(&h);
    return rc;
}

static int ossl_err(char *err, size_t errlen, const char *what)
{
    char e[256];
    unsigned long code = ERR_get_error();

    if (code)
        ERR_error_string_n(code, e, sizeof(e));
    else
        snprintf(e, sizeof(e), "no detail");
    ERR_clear_error();
    if (err != NULL && errlen > 0)
        snprintf(err, errlen, "%s: %s: %s", rg_smime_strerror(RG_SMIME_INTERNAL), what, e);
    return RG_SMIME_INTERNAL;
}

int rg_smime_encrypt(struct rg_spool *in, const unsigned char kek[RG_SMIME_KEK_LEN],
                     const unsigned char txid[RG_SMIME_TXID_LEN],
                     const struct rg_smime_outer *outer, struct rg_spool *out,
                     char *err, size_t errlen)
{
    struct src s = { in, NULL, 0 };
    CMS_ContentInfo *cms = NULL;
    BIO_METHOD *meth = NULL;
    BIO *sink = NULL, *cbio = NULL;
    struct b64w *w = NULL;
    unsigned char *key, *id, *buf = NULL;
    const char *mem;
    size_t off = 0, size = src_size(&s);
    int st, hr;

    if ((hr = outer_headers(&s, outer, out)) < 0)
        return set_err(err, errlen, hr == -2 ? RG_SMIME_BAD_FORMAT : RG_SMIME_INTERNAL,
                       hr == -2 ? "cannot read the header section of the message"
                                : "cannot write the output");
    cms = CMS_encrypt_ex(NULL, NULL, EVP_aes_256_gcm(), CMS_BINARY | CMS_PARTIAL | CMS_STREAM,
                         NULL, NULL);
    if (cms == NULL)
        return ossl_err(err, errlen, "CMS_encrypt");
    key = OPENSSL_malloc(RG_SMIME_KEK_LEN);
    id = OPENSSL_malloc(RG_SMIME_TXID_LEN);
    if (key == NULL || id == NULL) {
        OPENSSL_free(key);
        OPENSSL_free(id);
        st = ossl_err(err, errlen, "out of memory");
        goto done;
    }
    memcpy(key, kek, RG_SMIME_KEK_LEN);
    memcpy(id, txid, RG_SMIME_TXID_LEN);
    /* key and id belong to cms from here (freed, the key cleansed, with it) */
    if (CMS_add0_recipient_key(cms, NID_undef, key, RG_SMIME_KEK_LEN, id, RG_SMIME_TXID_LEN,
                               NULL, NULL, NULL) == NULL) {
        st = ossl_err(err, errlen, "CMS_add0_recipient_key");
        goto done;
    }
    meth = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "regigate spool base64");
    if (meth == NULL || BIO_meth_set_write(meth, b64w_write) != 1
        || BIO_meth_set_ctrl(meth, b64w_ctrl) != 1 || (sink = BIO_new(meth)) == NULL) {
        st = ossl_err(err, errlen, "BIO");
        goto done;
    }
    w = rg_malloc(sizeof(*w));          /* grp and stage need no zeroing */
    w->out = out;
    w->failed = 0;
    w->avx2 = 0;
    w->ngrp = 0;
    w->nstage = 0;
#ifdef B64_AVX2
    w->avx2 = __builtin_cpu_supports("avx2");
#endif
    BIO_set_data(sink, w);
    BIO_set_init(sink, 1);
    if (size == 0) {
        /* OpenSSL's streaming writes nothing for empty content */
        BIO *empty = BIO_new_mem_buf("", 0);
        int ok = empty != NULL && CMS_final(cms, empty, NULL, CMS_BINARY) == 1
                 && i2d_CMS_bio(sink, cms) == 1;
        BIO_free(empty);
        if (!ok) {
            st = w->failed ? set_err(err, errlen, RG_SMIME_INTERNAL, "cannot write the output")
                           : ossl_err(err, errlen, "CMS_final");
            goto done;
        }
        goto finish;
    }
    if ((cbio = BIO_new_CMS(sink, cms)) == NULL) {
        st = ossl_err(err, errlen, "BIO_new_CMS");
        goto done;
    }
    /* a message in memory goes to OpenSSL from where it is, without a copy */
    mem = rg_spool_mem(in);
    if (mem == NULL)
        buf = rg_malloc(CHUNK);
    while (off < size) {
        const void *p;
        ssize_t n;

        if (mem != NULL) {
            p = mem + off;
            n = (ssize_t)(size - off < ENC_CHUNK ? size - off : ENC_CHUNK);
        } else if ((n = src_read(&s, buf, CHUNK, off)) > 0) {
            p = buf;
        } else {
            st = set_err(err, errlen, RG_SMIME_INTERNAL, "cannot read the message");
            goto done;
        }
        if (BIO_write(cbio, p, (int)n) != (int)n) {
            st = w->failed ? set_err(err, errlen, RG_SMIME_INTERNAL, "cannot write the output")
                           : ossl_err(err, errlen, "CMS streaming");
            goto done;
        }
        off += (size_t)n;
    }
    if (BIO_flush(cbio) != 1) {
        st = w->failed ? set_err(err, errlen, RG_SMIME_INTERNAL, "cannot write the output")
                       : ossl_err(err, errlen, "CMS final");
        goto done;
    }
finish:
    if (b64w_finish(w) < 0 || rg_spool_finish(out) < 0) {
        st = set_err(err, errlen, RG_SMIME_INTERNAL, "cannot write the output");
        goto done;
    }
    st = 0;
done:
    /* BIO_new_CMS pushed its filters in front of sink: free down to it */
    while (cbio != NULL && cbio != sink) {
        BIO *next = BIO_pop(cbio);
        BIO_free(cbio);
        cbio = next;
    }
    BIO_free(sink);
    BIO_meth_free(meth);
    rg_free(w);
    rg_free(buf);
    CMS_ContentInfo_free(cms);
    return st;
}
