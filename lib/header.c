/*
 * header.c - the header section of a message: parse it into fields that
 * keep their raw bytes, read values, change fields and write the section
 * back. See header.h; RFC 2047 coding is in rfc2047.c.
 */
#include "config.h"

#include <stdint.h>
#include <string.h>

#include "header.h"
#include "log.h"
#include "mem.h"

const char *rg_hdr_strerror(enum rg_hdr_status st)
{
    switch (st) {
    case RG_HDR_OK:
        return "ok";
    case RG_HDR_TOOBIG:
        return "header section too big";
    case RG_HDR_NEEDMORE:
        return "header section incomplete";
    }
    return "unknown header status";
}

static int is_name_char(unsigned char c)
{
    return c >= 33 && c <= 126 && c != ':';
}

static int is_wsp(unsigned char c)
{
    return c == ' ' || c == '\t';
}

int rg_header_name_valid(const char *name)
{
    if (*name == 0)
        return 0;
    for (; *name; name++)
        if (!is_name_char((unsigned char)*name))
            return 0;
    return 1;
}

/* ---- parsing ---------------------------------------------------------- */

static void insert_field(struct rg_headers *h, size_t at, const struct rg_header_field *f)
{
    if (h->n == h->cap) {
        h->cap = h->cap ? h->cap * 2 : 16;
        h->f = rg_realloc(h->f, h->cap * sizeof(*h->f));
    }
    memmove(h->f + at + 1, h->f + at, (h->n - at) * sizeof(*h->f));
    h->f[at] = *f;
    h->n++;
}

/*
 * Store the field msg[start..end) (all its lines). Only the last line of a
 * message can lack its line end: it gets one (CRLF, or LF after a CR).
 */
static void store_field(struct rg_headers *h, const char *msg, size_t start, size_t end,
                        size_t name_len)
{
    struct rg_header_field f;
    size_t n = end - start;
    const char *add = "";

    if (msg[end - 1] != '\n')
        add = msg[end - 1] == '\r' ? "\n" : "\r\n";
    f.raw_len = n + strlen(add);
    f.raw = rg_malloc(f.raw_len + 1);
    memcpy(f.raw, msg + start, n);
    memcpy(f.raw + n, add, strlen(add) + 1);
    f.name_len = name_len;
    insert_field(h, h->n, &f);
}

static enum rg_hdr_status fail(struct rg_headers *h, enum rg_hdr_status st)
{
    rg_headers_free(h);
    return st;
}

/*
 * Is the line at msg[pos..len) a field? 1 (*name_len set), 0, or -1 when
 * the data ends before that can be told.
 */
static int field_line(const char *msg, size_t pos, size_t len, size_t *name_len)
{
    size_t i = pos;

    while (i < len && is_name_char((unsigned char)msg[i]))
        i++;
    *name_len = i - pos;
    while (i < len && is_wsp((unsigned char)msg[i]))
        i++;
    if (i == len)
        return -1;
    return *name_len > 0 && msg[i] == ':';
}

enum rg_hdr_status rg_headers_parse(const char *msg, size_t len, int complete, size_t max,
                                    struct rg_headers *h)
{
    size_t pos = 0, fstart = 0, fname = 0;
    int open = 0;   /* a field started at fstart and is not stored yet */

    memset(h, 0, sizeof(*h));
    /* Invariant at the top of the loop: pos is the start of a line, and
     * every line before it belongs to the section and ends at or before max. */
    for (;;) {
        unsigned char c;
        size_t lim;
        const char *nl;

        if (pos == len) {
            if (!complete)
                return fail(h, RG_HDR_NEEDMORE);
            break;                  /* the message ends in its header section */
        }
        c = (unsigned char)msg[pos];
        if (c == '\n' || (c == '\r' && pos + 1 < len && msg[pos + 1] == '\n')) {
            size_t el = c == '\n' ? 1 : 2;
            if (pos + el > max)
                return fail(h, RG_HDR_TOOBIG);
            if (open)
                store_field(h, msg, fstart, pos, fname);
            h->have_empty_line = 1;
            h->empty_line_lf = el == 1;
            h->body_offset = pos + el;
            return RG_HDR_OK;
        }
        if (c == '\r' && pos + 1 == len && !complete)
            return fail(h, RG_HDR_NEEDMORE);    /* perhaps the empty line */
        if (is_wsp(c) && open) {
            /* a continuation line of the open field */
        } else if (is_name_char(c)) {
            size_t name_len;
            int k = field_line(msg, pos, len, &name_len);

            if (k < 0 && !complete)
                return fail(h, len > max ? RG_HDR_TOOBIG : RG_HDR_NEEDMORE);
            if (k <= 0)
                break;              /* not a field: the body starts here */
            if (open)
                store_field(h, msg, fstart, pos, fname);
            open = 1;
            fstart = pos;
            fname = name_len;
        } else {
            break;                  /* neither field nor continuation: body */
        }
        /* the end of this line, which must be within max */
        lim = len < max ? len : max;
        nl = memchr(msg + pos, '\n', lim - pos);
        if (nl != NULL) {
            pos = (size_t)(nl - msg) + 1;
            continue;
        }
        if (len > max || (!complete && len == max))
            return fail(h, RG_HDR_TOOBIG);
        if (!complete)
            return fail(h, RG_HDR_NEEDMORE);
        pos = len;                  /* the last line, without its line end */
    }
    if (open)
        store_field(h, msg, fstart, pos, fname);
    h->body_offset = pos;
    return RG_HDR_OK;
}

void rg_headers_free(struct rg_headers *h)
{
    for (size_t i = 0; i < h->n; i++)
        rg_free(h->f[i].raw);
    rg_free(h->f);
    memset(h, 0, sizeof(*h));
}

/* ---- reading ---------------------------------------------------------- */

static int ascii_lower(int c)
{
    return c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c;
}

static int name_equal(const struct rg_header_field *f, const char *name, size_t n)
{
    if (f->name_len != n)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (ascii_lower((unsigned char)f->raw[i]) != ascii_lower((unsigned char)name[i]))
            return 0;
    return 1;
}

long rg_headers_find(const struct rg_headers *h, const char *name, size_t k)
{
    size_t n = strlen(name);

    for (size_t i = 0; i < h->n; i++)
        if (name_equal(&h->f[i], name, n) && k-- == 0)
            return (long)i;
    return -1;
}

char *rg_header_value_raw(const struct rg_headers *h, size_t i)
{
    const struct rg_header_field *f;
    const char *r;
    size_t p, n, a, b;
    char *v;

    if (i >= h->n)
        rg_panic("rg_header_value_raw: field %zu of %zu", i, h->n);
    f = &h->f[i];
    r = f->raw;
    p = f->name_len;
    while (p < f->raw_len && r[p] != ':')   /* white space before the colon */
        p++;
    p++;
    v = rg_malloc(f->raw_len - (p < f->raw_len ? p : f->raw_len) + 1);
    n = 0;
    for (; p < f->raw_len; p++) {
        char c = r[p];
        if (c == '\n' || (c == '\r' && p + 1 < f->raw_len && r[p + 1] == '\n'))
            continue;               /* unfold: line ends go, the white space stays */
        v[n++] = c == '\r' || c == 0 ? ' ' : c;
    }
    a = 0;
    b = n;
    while (a < b && is_wsp((unsigned char)v[a]))
        a++;
    while (b > a && is_wsp((unsigned char)v[b - 1]))
        b--;
    memmove(v, v + a, b - a);
    v[b - a] = 0;
    return v;
}

static char *latin1_to_utf8(const char *s)
{
    size_t n = strlen(s), j = 0;
    char *u = rg_malloc(2 * n + 1);

    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x80) {
            u[j++] = (char)c;
        } else {
            u[j++] = (char)(0xC0 | (c >> 6));
            u[j++] = (char)(0x80 | (c & 0x3F));
        }
    }
    u[j] = 0;
    return u;
}

char *rg_header_value(const struct rg_headers *h, size_t i)
{
    char *raw = rg_header_value_raw(h, i), *dec;

    /* 8-bit bytes in a header: UTF-8 if they are, else the usual legacy */
    if (!rg_utf8_valid(raw, strlen(raw))) {
        char *u = latin1_to_utf8(raw);
        rg_free(raw);
        raw = u;
    }
    dec = rg_rfc2047_decode(raw);
    rg_free(raw);
    return dec;
}

/* ---- changes ---------------------------------------------------------- */

static void check_name(const char *name)
{
    if (!rg_header_name_valid(name))
        rg_panic("invalid header field name \"%s\"", name);
}

static void make_field(struct rg_header_field *f, const char *name, const char *value)
{
    char *enc = rg_header_encode_value(name, value ? value : "");
    size_t nl = strlen(name), el = strlen(enc);

    f->raw_len = nl + 2 + el + 2;
    f->raw = rg_malloc(f->raw_len + 1);
    memcpy(f->raw, name, nl);
    memcpy(f->raw + nl, ": ", 2);
    memcpy(f->raw + nl + 2, enc, el);
    memcpy(f->raw + nl + 2 + el, "\r\n", 3);
    f->name_len = nl;
    rg_free(enc);
}

void rg_headers_add(struct rg_headers *h, const char *name, const char *utf8_value)
{
    struct rg_header_field f;

    check_name(name);
    make_field(&f, name, utf8_value);
    insert_field(h, h->n, &f);
}

/* Remove every field named name; the index of the first, or h->n if none. */
static size_t remove_all(struct rg_headers *h, const char *name)
{
    size_t n = strlen(name), j = 0, first = SIZE_MAX;

    for (size_t i = 0; i < h->n; i++) {
        if (name_equal(&h->f[i], name, n)) {
            if (first == SIZE_MAX)
                first = j;
            rg_free(h->f[i].raw);
        } else {
            h->f[j++] = h->f[i];
        }
    }
    h->n = j;
    return first == SIZE_MAX ? h->n : first;
}

void rg_headers_remove(struct rg_headers *h, const char *name)
{
    check_name(name);
    remove_all(h, name);
}

void rg_headers_set(struct rg_headers *h, const char *name, const char *utf8_value)
{
    struct rg_header_field f;
    size_t at;

    check_name(name);
    at = remove_all(h, name);
    make_field(&f, name, utf8_value);
    insert_field(h, at, &f);
}

void rg_headers_replace(struct rg_headers *h, size_t i, const char *utf8_value)
{
    struct rg_header_field f;
    char *name;

    if (i >= h->n)
        rg_panic("rg_headers_replace: field %zu of %zu", i, h->n);
    name = rg_strndup(h->f[i].raw, h->f[i].name_len);
    make_field(&f, name, utf8_value);
    rg_free(name);
    rg_free(h->f[i].raw);
    h->f[i] = f;
}

/* ---- writing ---------------------------------------------------------- */

char *rg_headers_serialize(const struct rg_headers *h, size_t *len)
{
    const char *el = !h->have_empty_line ? "" : h->empty_line_lf ? "\n" : "\r\n";
    size_t total = strlen(el), p = 0;
    char *out;

    for (size_t i = 0; i < h->n; i++)
        total += h->f[i].raw_len;
    out = rg_malloc(total + 1);
    for (size_t i = 0; i < h->n; i++) {
        memcpy(out + p, h->f[i].raw, h->f[i].raw_len);
        p += h->f[i].raw_len;
    }
    memcpy(out + p, el, strlen(el) + 1);
    *len = total;
    return out;
}
