/*
 * rfc2047.c - RFC 2047 encoded-words: decode header values into UTF-8
 * (Q and B, any charset iconv knows) and encode UTF-8 values for new
 * header fields, folded to 78-character lines. See header.h.
 */
#include "config.h"

#include <errno.h>
#include <iconv.h>
#include <stdint.h>
#include <string.h>

#include "buf.h"
#include "header.h"
#include "log.h"
#include "mem.h"

#define LINE_MAX_CHARS  78      /* RFC 5322 2.1.1 "SHOULD" limit */
#define EW_MAX_CHARS    75      /* RFC 2047 2: an encoded-word at most */
#define EW_OVERHEAD     12      /* "=?UTF-8?Q?" + "?=" */
#define CHARSET_MAX     64      /* longer charset names are not real ones */

static const char replacement[] = "\xEF\xBF\xBD";   /* U+FFFD */

/* ---- UTF-8 ------------------------------------------------------------ */

/* Length of the valid UTF-8 sequence at s[0..n), 0 when it is invalid. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
    unsigned c = s[0];
    size_t len;
    uint32_t cp, min;

    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF) {
        len = 2; cp = c & 0x1F; min = 0x80;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3; cp = c & 0x0F; min = 0x800;
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4; cp = c & 0x07; min = 0x10000;
    } else {
        return 0;
    }
    if (n < len)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return len;
}

int rg_utf8_valid(const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0;

    while (i < n) {
        size_t l = utf8_seq(u + i, n - i);
        if (l == 0)
            return 0;
        i += l;
    }
    return 1;
}

/* ---- output helpers ------------------------------------------------------ */

/*
 * Output buffers are bounded (rg_buf) by a multiple of the input that the
 * output should never reach. Should a charset expand more than that, the
 * output is cut there (once, with a warning) rather than growing without
 * bound: a peer's header must not stop a worker.
 */
static void put(struct rg_buf *b, const void *p, size_t n)
{
    if (n == 0 || b->len == b->max)
        return;
    if (rg_buf_append(b, p, n) < 0) {
        rg_warn("header value too long after decoding: cut at %zu bytes", b->len);
        b->max = b->len;
    }
}

static void putc_(struct rg_buf *b, char c)
{
    put(b, &c, 1);
}

static char *take_string(struct rg_buf *b)
{
    char *s = b->data ? b->data : rg_strdup("");

    b->data = NULL;
    b->len = b->cap = 0;
    return s;
}

/*
 * Append decoded text: valid UTF-8 is copied, every byte that is not part
 * of a valid sequence becomes U+FFFD, and CR, LF and NUL become spaces so
 * that decoding can never produce a line break.
 */
static void put_decoded(struct rg_buf *b, const unsigned char *s, size_t n)
{
    size_t i = 0;

    while (i < n) {
        size_t l = utf8_seq(s + i, n - i);
        if (l == 0) {
            put(b, replacement, 3);
            i++;
        } else if (l == 1 && (s[i] == '\r' || s[i] == '\n' || s[i] == 0)) {
            putc_(b, ' ');
            i++;
        } else {
            put(b, s + i, l);
            i += l;
        }
    }
}

static void put_latin1(struct rg_buf *b, const unsigned char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = s[i];
        if (c == '\r' || c == '\n' || c == 0) {
            putc_(b, ' ');
        } else if (c < 0x80) {
            putc_(b, (char)c);
        } else {
            char two[2] = { (char)(0xC0 | (c >> 6)), (char)(0x80 | (c & 0x3F)) };
            put(b, two, 2);
        }
    }
}

/* ---- charsets -------------------------------------------------------------- */

enum cs_kind { CS_NONE = 0, CS_UTF8, CS_LATIN1, CS_ICONV };

struct charset {
    enum cs_kind kind;
    char name[CHARSET_MAX + 1];
    iconv_t cd;
};

static int ascii_lower(int c)
{
    return c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c;
}

static int name_is(const char *a, size_t alen, const char *b)
{
    size_t i;

    for (i = 0; i < alen && b[i]; i++)
        if (ascii_lower((unsigned char)a[i]) != ascii_lower((unsigned char)b[i]))
            return 0;
    return i == alen && b[i] == 0;
}

/*
 * Open charset name[0..len): UTF-8 and ISO-8859-1 natively (the common
 * cases, no iconv state), everything else through iconv. 0, or -1 when
 * iconv does not know it.
 */
static int charset_open(struct charset *cs, const char *name, size_t len)
{
    memcpy(cs->name, name, len);
    cs->name[len] = 0;
    if (name_is(name, len, "utf-8") || name_is(name, len, "utf8")) {
        cs->kind = CS_UTF8;
    } else if (name_is(name, len, "iso-8859-1") || name_is(name, len, "iso8859-1")
               || name_is(name, len, "latin1")) {
        cs->kind = CS_LATIN1;
    } else {
        /* The name is an RFC 2047 token: no '/', so no iconv "//" suffixes. */
        cs->cd = iconv_open("UTF-8", cs->name);
        if (cs->cd == (iconv_t)-1)
            return -1;
        cs->kind = CS_ICONV;
    }
    return 0;
}

static void charset_close(struct charset *cs)
{
    if (cs->kind == CS_ICONV)
        iconv_close(cs->cd);
    cs->kind = CS_NONE;
}

/* Convert s[0..n) in charset cs to UTF-8 onto out. */
static void charset_convert(struct charset *cs, const unsigned char *s, size_t n,
                            struct rg_buf *out)
{
    char tmp[1024];
    char *in = (char *)s;
    size_t inleft = n;

    if (cs->kind == CS_UTF8) {
        put_decoded(out, s, n);
        return;
    }
    if (cs->kind == CS_LATIN1) {
        put_latin1(out, s, n);
        return;
    }
    iconv(cs->cd, NULL, NULL, NULL, NULL);
    while (inleft > 0) {
        char *o = tmp;
        size_t oleft = sizeof(tmp);
        size_t r = iconv(cs->cd, &in, &inleft, &o, &oleft);

        /* iconv writes UTF-8; put_decoded still maps CR/LF/NUL */
        put_decoded(out, (unsigned char *)tmp, (size_t)(o - tmp));
        if (r != (size_t)-1)
            continue;
        if (errno == E2BIG)
            continue;
        put(out, replacement, 3);
        if (errno == EILSEQ && inleft > 0) {
            in++;           /* skip the byte that cannot be converted */
            inleft--;
        } else {
            break;          /* EINVAL: incomplete sequence at the end */
        }
    }
    {
        char *o = tmp;
        size_t oleft = sizeof(tmp);
        iconv(cs->cd, NULL, NULL, &o, &oleft);  /* back to the initial shift state */
        put_decoded(out, (unsigned char *)tmp, (size_t)(o - tmp));
    }
}

/* ---- encoded-word syntax and payload --------------------------------------- */

/* RFC 2047 token characters (printable ASCII except SP and especials) */
static int is_token_char(unsigned char c)
{
    return c > 32 && c < 127 && strchr("()<>@,;:\"/[]?.=", c) == NULL;
}

struct ew {
    const char *charset;
    size_t charset_len;     /* without the RFC 2231 "*language" */
    char enc;               /* 'B' or 'Q' */
    const char *text;
    size_t text_len;
    size_t len;             /* of the whole word */
};

/* Parse an encoded-word at s[0..n) (s starts with "=?"): 1 if well-formed. */
static int ew_parse(const char *s, size_t n, struct ew *w)
{
    size_t i = 2;

    while (i < n && i <= CHARSET_MAX + 2 && is_token_char((unsigned char)s[i]) && s[i] != '*')
        i++;
    w->charset = s + 2;
    w->charset_len = i - 2;
    if (w->charset_len == 0 || w->charset_len > CHARSET_MAX)
        return 0;
    if (i < n && s[i] == '*') {     /* RFC 2231 language: tolerated, ignored */
        i++;
        while (i < n && is_token_char((unsigned char)s[i]))
            i++;
    }
    if (i + 3 > n || s[i] != '?' || s[i + 2] != '?')
        return 0;
    w->enc = (char)(s[i + 1] == 'b' || s[i + 1] == 'B' ? 'B'
                    : s[i + 1] == 'q' || s[i + 1] == 'Q' ? 'Q' : 0);
    if (w->enc == 0)
        return 0;
    i += 3;
    w->text = s + i;
    while (i < n && s[i] > 32 && s[i] < 127 && s[i] != '?')
        i++;
    w->text_len = (size_t)(s + i - w->text);
    if (w->text_len == 0 || i + 2 > n || s[i] != '?' || s[i + 1] != '=')
        return 0;
    w->len = i + 2;
    return 1;
}

static int b64_value(unsigned char c)
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

/* Decode base64 (padding optional but, when present, correct): 0 or -1. */
static int b64_decode(const char *t, size_t n, struct rg_buf *out)
{
    size_t pad = 0, len = n;
    uint32_t acc = 0;
    int bits = 0;

    while (len > 0 && t[len - 1] == '=') {
        len--;
        pad++;
    }
    if (len % 4 == 1 || pad > 2 || (pad > 0 && (len + pad) % 4 != 0))
        return -1;
    for (size_t i = 0; i < len; i++) {
        int v = b64_value((unsigned char)t[i]);
        if (v < 0)
            return -1;
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            putc_(out, (char)((acc >> bits) & 0xFF));
        }
    }
    return 0;
}

static int hex_value(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* Decode Q ("_" is a space, "=XX" a byte): 0 or -1. */
static int q_decode(const char *t, size_t n, struct rg_buf *out)
{
    for (size_t i = 0; i < n; i++) {
        if (t[i] == '_') {
            putc_(out, ' ');
        } else if (t[i] == '=') {
            int hi, lo;
            if (i + 2 >= n)
                return -1;
            hi = hex_value((unsigned char)t[i + 1]);
            lo = hex_value((unsigned char)t[i + 2]);
            if (hi < 0 || lo < 0)
                return -1;
            putc_(out, (char)(hi << 4 | lo));
            i += 2;
        } else {
            putc_(out, t[i]);
        }
    }
    return 0;
}

/* ---- decoding ------------------------------------------------------------- */

struct decoder {
    struct rg_buf out;
    struct rg_buf pend;     /* bytes of adjacent words in charset cs, not yet converted */
    struct rg_buf word;     /* the payload of the word being looked at */
    struct charset cs;      /* charset of the last decoded word */
};

static void flush_pending(struct decoder *d)
{
    if (d->pend.len > 0)
        charset_convert(&d->cs, (unsigned char *)d->pend.data, d->pend.len, &d->out);
    rg_buf_reset(&d->pend);
}

/*
 * Take the encoded-word at s[0..n) when it is well-formed, its payload
 * decodes and its charset is known: its bytes join the pending ones (so a
 * character split across adjacent words still converts). 1 if taken.
 */
static int take_word(struct decoder *d, const char *s, size_t n, size_t *len)
{
    struct ew w;
    struct charset ncs;
    int same;

    if (!ew_parse(s, n, &w))
        return 0;
    rg_buf_reset(&d->word);
    if ((w.enc == 'B' ? b64_decode(w.text, w.text_len, &d->word)
                      : q_decode(w.text, w.text_len, &d->word)) < 0)
        return 0;
    same = d->cs.kind != CS_NONE && name_is(w.charset, w.charset_len, d->cs.name);
    if (!same) {
        memset(&ncs, 0, sizeof(ncs));
        if (charset_open(&ncs, w.charset, w.charset_len) < 0)
            return 0;       /* unknown charset: left as it is */
        flush_pending(d);
        charset_close(&d->cs);
        d->cs = ncs;
    }
    put(&d->pend, d->word.data, d->word.len);
    *len = w.len;
    return 1;
}

char *rg_rfc2047_decode(const char *value)
{
    size_t n = strlen(value), i = 0, held = 0;
    int after_word = 0, holding = 0;
    struct decoder d;

    /* a byte converts to at most a few characters (U+FFFD is 3 bytes; some
     * iconv charsets map one byte to several code points) */
    /* most values have no encoded-word: then the value is the result */
    if (n > SIZE_MAX / 64 || strstr(value, "=?") == NULL)
        return rg_strdup(value);
    memset(&d, 0, sizeof(d));
    rg_buf_init(&d.out, 32 * n + 64);
    rg_buf_init(&d.pend, n + 1);
    rg_buf_init(&d.word, n + 1);
    while (i < n) {
        size_t wlen;
        char c = value[i];

        if (c == '=' && value[i + 1] == '?' && take_word(&d, value + i, n - i, &wlen)) {
            holding = 0;    /* white space between two words is dropped */
            after_word = 1;
            i += wlen;
            continue;
        }
        if (after_word && (c == ' ' || c == '\t' || c == '\r' || c == '\n')) {
            if (!holding) {
                holding = 1;
                held = i;
            }
            i++;
            continue;
        }
        flush_pending(&d);
        if (holding) {
            put(&d.out, value + held, i - held);
            holding = 0;
        }
        after_word = 0;
        putc_(&d.out, c);
        i++;
    }
    flush_pending(&d);
    if (holding)
        put(&d.out, value + held, i - held);
    charset_close(&d.cs);
    rg_buf_free(&d.pend);
    rg_buf_free(&d.word);
    return take_string(&d.out);
}

/* ---- encoding ------------------------------------------------------------- */

static const char b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static int is_wsp(char c)
{
    return c == ' ' || c == '\t';
}

/* Q literal characters: those RFC 2047 5(3) allows even in a phrase. */
static int q_literal(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')
        || c == '!' || c == '*' || c == '+' || c == '-' || c == '/';
}

static size_t q_cost(unsigned char c)
{
    return q_literal(c) || c == ' ' ? 1 : 3;
}

static size_t b_len(size_t bytes)
{
    return (bytes + 2) / 3 * 4;
}

/* Does the word s[0..n) have to be encoded? */
static int needs_encoding(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c >= 0x7F)
            return 1;
        if (c == '=' && i + 1 < n && s[i + 1] == '?')
            return 1;
    }
    return 0;
}

/*
 * The longest prefix of s[0..n) (whole UTF-8 characters) whose
 * encoded-word fits in room characters; 0 if not even one character does.
 */
static size_t ew_fit(const unsigned char *s, size_t n, char enc, size_t room)
{
    size_t k = 0, qlen = 0;

    if (room < EW_OVERHEAD)
        return 0;
    room -= EW_OVERHEAD;
    while (k < n) {
        size_t l = utf8_seq(s + k, n - k);
        if (l == 0)
            l = 1;  /* cannot happen: the value was made valid UTF-8 */
        if (enc == 'B') {
            if (b_len(k + l) > room)
                break;
        } else {
            size_t c = 0;
            for (size_t j = 0; j < l; j++)
                c += q_cost(s[k + j]);
            if (qlen + c > room)
                break;
            qlen += c;
        }
        k += l;
    }
    return k;
}

static void put_ew(struct rg_buf *out, const unsigned char *s, size_t n, char enc)
{
    static const char hex[] = "0123456789ABCDEF";

    put(out, enc == 'B' ? "=?UTF-8?B?" : "=?UTF-8?Q?", 10);
    if (enc == 'B') {
        for (size_t i = 0; i < n; i += 3) {
            uint32_t v = (uint32_t)s[i] << 16;
            char q[4];
            if (i + 1 < n)
                v |= (uint32_t)s[i + 1] << 8;
            if (i + 2 < n)
                v |= s[i + 2];
            q[0] = b64_alphabet[(v >> 18) & 63];
            q[1] = b64_alphabet[(v >> 12) & 63];
            q[2] = i + 1 < n ? b64_alphabet[(v >> 6) & 63] : '=';
            q[3] = i + 2 < n ? b64_alphabet[v & 63] : '=';
            put(out, q, 4);
        }
    } else {
        for (size_t i = 0; i < n; i++) {
            if (s[i] == ' ') {
                putc_(out, '_');
            } else if (q_literal(s[i])) {
                putc_(out, (char)s[i]);
            } else {
                char e[3] = { '=', hex[s[i] >> 4], hex[s[i] & 15] };
                put(out, e, 3);
            }
        }
    }
    put(out, "?=", 2);
}

struct enc_state {
    struct rg_buf out;
    size_t col;             /* characters on the current line */
    int has_text;           /* the current line has value text (a fold may follow) */
};

static void fold(struct enc_state *e, int with_space)
{
    put(&e->out, with_space ? "\r\n " : "\r\n", with_space ? 3 : 2);
    e->col = with_space ? 1 : 0;
    e->has_text = 0;
}

static char choose_encoding(const unsigned char *s, size_t n)
{
    size_t q = 0;

    for (size_t i = 0; i < n; i++)
        q += q_cost(s[i]);
    return q <= b_len(n) ? 'Q' : 'B';
}

/* The shortest encoded-word that starts the run s[0..n) */
static size_t ew_min(const unsigned char *s, size_t n, char enc)
{
    size_t l = utf8_seq(s, n), c = 0;

    if (l == 0)
        l = 1;
    if (enc == 'B')
        return EW_OVERHEAD + b_len(l);
    for (size_t j = 0; j < l; j++)
        c += q_cost(s[j]);
    return EW_OVERHEAD + c;
}

/* Emit the run s[0..n) as encoded-words, each filling what is left of its line. */
static void put_run(struct enc_state *e, const unsigned char *s, size_t n, char enc)
{
    int first = 1;

    while (n > 0) {
        size_t room, k;

        if (!first)
            fold(e, 1);     /* white space between two words: dropped by decoders */
        room = e->col < LINE_MAX_CHARS ? LINE_MAX_CHARS - e->col : 0;
        if (room > EW_MAX_CHARS)
            room = EW_MAX_CHARS;
        k = ew_fit(s, n, enc, room);
        if (k == 0) {
            /* only at the start of the value behind a long name */
            fold(e, 1);
            k = ew_fit(s, n, enc, EW_MAX_CHARS);
        }
        put_ew(&e->out, s, k, enc);
        e->col += EW_OVERHEAD + (enc == 'B' ? b_len(k) : 0);
        if (enc == 'Q')
            for (size_t j = 0; j < k; j++)
                e->col += q_cost(s[j]);
        e->has_text = 1;
        s += k;
        n -= k;
        first = 0;
    }
}

/*
 * White space s[0..w) before a word whose first piece is need characters
 * long. A fold goes before the white space (unfolding gives it back);
 * when the white space is too long for any line, all but its last
 * character stay on the current line, which has text ("Name:" at least),
 * so no line is white space only.
 */
static void put_space(struct enc_state *e, const char *s, size_t w, size_t need)
{
    if (e->col + w + need <= LINE_MAX_CHARS) {
        /* fits */
    } else if (e->has_text && w + need <= LINE_MAX_CHARS) {
        fold(e, 0);
    } else {
        put(&e->out, s, w - 1);
        fold(e, 0);
        s += w - 1;
        w = 1;
    }
    put(&e->out, s, w);
    e->col += w;
}

/* Make the value valid single-line UTF-8: CR/LF -> space, bad bytes -> U+FFFD. */
static void sanitize(const char *v, struct rg_buf *b)
{
    const unsigned char *u = (const unsigned char *)v;
    size_t n = strlen(v), i = 0;

    while (i < n) {
        size_t l = utf8_seq(u + i, n - i);
        if (l == 0) {
            put(b, replacement, 3);
            i++;
        } else if (u[i] == '\r' || u[i] == '\n') {
            putc_(b, ' ');
            i++;
        } else {
            put(b, u + i, l);
            i += l;
        }
    }
}

/*
 * The value is a sequence of white space runs and words. Words that need
 * encoding, with the white space between them, form runs that become
 * encoded-words (white space between two encoded-words is dropped when
 * decoding, so it must be inside them); other words are written as they
 * are. Lines are folded before a white space run when the next word would
 * pass 78 characters; runs of encoded-words fold between their words.
 */
char *rg_header_encode_value(const char *name, const char *utf8_value)
{
    struct rg_buf v;
    struct enc_state e;
    const char *s;
    size_t n, i = 0;

    rg_buf_init(&v, 3 * strlen(utf8_value) + 1);
    sanitize(utf8_value, &v);
    s = v.data ? v.data : "";
    n = v.len;
    rg_buf_init(&e.out, 16 * n + 256);
    e.col = strlen(name) + 2;   /* "Name: " */
    e.has_text = 0;             /* no fold before the value's first word */
    while (i < n) {
        size_t ws = i, w0, w1, run_end;
        char enc = 0;

        while (i < n && is_wsp(s[i]))
            i++;
        w0 = i;
        while (i < n && !is_wsp(s[i]))
            i++;
        w1 = i;
        run_end = w1;
        if (w1 > w0 && needs_encoding(s + w0, w1 - w0)) {
            /* extend the run over following words that need encoding */
            size_t j = w1;
            for (;;) {
                size_t a, b;
                while (j < n && is_wsp(s[j]))
                    j++;
                a = j;
                while (j < n && !is_wsp(s[j]))
                    j++;
                b = j;
                if (b == a || !needs_encoding(s + a, b - a))
                    break;
                run_end = b;
            }
            enc = choose_encoding((const unsigned char *)s + w0, run_end - w0);
        }
        if (w1 == w0) {     /* trailing white space: no fold, a line of
                               white space only is not allowed */
            put(&e.out, s + ws, w0 - ws);
            break;
        }
        if (w0 > ws)
            put_space(&e, s + ws, w0 - ws,
                      enc ? ew_min((const unsigned char *)s + w0, run_end - w0, enc) : w1 - w0);
        if (enc) {
            put_run(&e, (const unsigned char *)s + w0, run_end - w0, enc);
            i = run_end;
        } else {
            put(&e.out, s + w0, w1 - w0);
            e.col += w1 - w0;
            e.has_text = 1;
        }
    }
    rg_buf_free(&v);
    return take_string(&e.out);
}
