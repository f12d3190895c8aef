/*
 * fuzz_header.c - libFuzzer target for lib/header.c and lib/rfc2047.c:
 * the input is the start of a message, exactly as long as libFuzzer made
 * it (not NUL-terminated, so reading past its end is caught by ASan).
 *
 * Invariants (abort() when broken):
 *  - a complete parse succeeds; every field ends with LF, its name is
 *    1+ printable ASCII characters other than ':';
 *  - the unchanged section serializes byte for byte as the input's
 *    msg[0..body_offset) (plus the line end the last field gets when the
 *    message ends inside it);
 *  - max = body_offset parses, max = body_offset - 1 is RG_HDR_TOOBIG;
 *    a prefix (complete = 0) gives RG_HDR_NEEDMORE or the same result;
 *  - every value (raw and decoded) is valid UTF-8 (decoded) without CR or
 *    LF; decoding valid UTF-8 text gives valid UTF-8;
 *  - after replace/add/set/remove with values taken from the input (CR,
 *    LF and all), the serialization plus the body re-parses into the same
 *    fields byte for byte, the body where it was, the new values readable
 *    as given (CR/LF as spaces, trimmed), and the new fields without a
 *    bare CR or LF.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "header.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_INPUT   (1024 * 1024)
#define HUGE_MAX    ((size_t)1 << 30)
#define VALUE_MAX   600

static void check(int ok)
{
    if (!ok)
        abort();
}

static void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);

    check(p != NULL);
    return p;
}

static char *dupstr(const char *s)
{
    return strcpy(xmalloc(strlen(s) + 1), s);
}

/* free old, return a copy of s */
static char *renamed(char *old, const char *s)
{
    free(old);
    return dupstr(s);
}

static int same_fields(const struct rg_headers *a, const struct rg_headers *b)
{
    if (a->n != b->n)
        return 0;
    for (size_t i = 0; i < a->n; i++)
        if (a->f[i].raw_len != b->f[i].raw_len || a->f[i].name_len != b->f[i].name_len
            || memcmp(a->f[i].raw, b->f[i].raw, a->f[i].raw_len) != 0)
            return 0;
    return 1;
}

static int no_crlf(const char *s)
{
    return strchr(s, '\r') == NULL && strchr(s, '\n') == NULL;
}

static void check_field_shape(const struct rg_header_field *f)
{
    check(f->raw_len >= 2 && f->raw[f->raw_len - 1] == '\n');
    check(f->name_len >= 1 && f->name_len < f->raw_len);
    for (size_t i = 0; i < f->name_len; i++) {
        unsigned char c = (unsigned char)f->raw[i];
        check(c >= 33 && c <= 126 && c != ':');
    }
}

/* a new field: CR only in CRLF, LF only at the end or before a fold */
static void check_no_bare_crlf(const struct rg_header_field *f)
{
    for (size_t j = 0; j < f->raw_len; j++) {
        if (f->raw[j] == '\r')
            check(j + 1 < f->raw_len && f->raw[j + 1] == '\n');
        if (f->raw[j] == '\n')
            check(j + 1 == f->raw_len || f->raw[j + 1] == ' ' || f->raw[j + 1] == '\t');
    }
}

static void check_values(const struct rg_headers *h)
{
    for (size_t i = 0; i < h->n; i++) {
        char *raw = rg_header_value_raw(h, i), *v = rg_header_value(h, i);
        check(no_crlf(raw) && no_crlf(v));
        check(rg_utf8_valid(v, strlen(v)));
        free(raw);
        free(v);
    }
}

/* A value from the input: valid UTF-8 (other bytes dropped), no NUL. */
static char *make_value(const char *s, size_t n)
{
    char *v = xmalloc(n + 1);
    size_t j = 0, i = 0;

    if (n > VALUE_MAX)
        n = VALUE_MAX;
    while (i < n) {
        size_t l;
        for (l = 1; l <= 4 && i + l <= n; l++)
            if (rg_utf8_valid(s + i, l))
                break;
        if (l > 4 || i + l > n || s[i] == 0) {
            i++;
            continue;
        }
        memcpy(v + j, s + i, l);
        j += l;
        i += l;
    }
    v[j] = 0;
    return v;
}

/* What reading the field back gives: CR/LF as spaces, SP/HT trimmed. */
static char *expected_value(const char *v)
{
    size_t a = 0, b = strlen(v);
    char *e;

    while (a < b && (v[a] == ' ' || v[a] == '\t' || v[a] == '\r' || v[a] == '\n'))
        a++;
    while (b > a && (v[b - 1] == ' ' || v[b - 1] == '\t' || v[b - 1] == '\r' || v[b - 1] == '\n'))
        b--;
    e = xmalloc(b - a + 1);
    for (size_t i = a; i < b; i++)
        e[i - a] = v[i] == '\r' || v[i] == '\n' ? ' ' : v[i];
    e[b - a] = 0;
    return e;
}

static int name_eq(const char *a, const char *b)
{
    for (; *a && *b; a++, b++) {
        int x = *a >= 'A' && *a <= 'Z' ? *a + 32 : *a;
        int y = *b >= 'A' && *b <= 'Z' ? *b + 32 : *b;
        if (x != y)
            return 0;
    }
    return *a == *b;
}

static char *field_name(const struct rg_headers *h, size_t i)
{
    char *n = xmalloc(h->f[i].name_len + 1);

    memcpy(n, h->f[i].raw, h->f[i].name_len);
    n[h->f[i].name_len] = 0;
    return n;
}

/* the k-th instance of name (k = -1: the last) has value "want" */
static void check_value_of(const struct rg_headers *h, const char *name, long k, const char *want)
{
    long i = -1, j;
    char *v;

    if (k < 0) {
        for (size_t m = 0; (j = rg_headers_find(h, name, m)) >= 0; m++)
            i = j;
    } else {
        i = rg_headers_find(h, name, (size_t)k);
    }
    check(i >= 0);
    check_no_bare_crlf(&h->f[i]);
    v = rg_header_value(h, (size_t)i);
    check(strcmp(v, want) == 0);
    free(v);
}

static void check_parse_bounds(const char *msg, size_t size, const struct rg_headers *h)
{
    struct rg_headers t;
    size_t prefixes[4] = { size / 2, h->body_offset, h->body_offset ? h->body_offset - 1 : 0,
                           size ? size - 1 : 0 };

    check(rg_headers_parse(msg, size, 1, h->body_offset, &t) == RG_HDR_OK);
    check(same_fields(h, &t) && t.body_offset == h->body_offset);
    rg_headers_free(&t);
    if (h->body_offset > 0) {
        check(rg_headers_parse(msg, size, 1, h->body_offset - 1, &t) == RG_HDR_TOOBIG);
        check(t.n == 0 && t.f == NULL);
    }
    for (size_t p = 0; p < 4; p++) {
        enum rg_hdr_status st = rg_headers_parse(msg, prefixes[p], 0, HUGE_MAX, &t);
        check(st == RG_HDR_OK || st == RG_HDR_NEEDMORE);
        if (st == RG_HDR_OK) {
            check(same_fields(h, &t) && t.body_offset == h->body_offset);
            check(t.have_empty_line == h->have_empty_line);
        }
        rg_headers_free(&t);
    }
}

static void check_serialize_unchanged(const char *msg, size_t size, const struct rg_headers *h)
{
    size_t len, want = h->body_offset;
    char *s = rg_headers_serialize(h, &len);
    const char *tail = "";

    check(s[len] == 0);
    if (!h->have_empty_line && h->body_offset == size && size > 0 && msg[size - 1] != '\n')
        tail = msg[size - 1] == '\r' ? "\n" : "\r\n";     /* ended inside a field */
    check(len == want + strlen(tail));
    check(memcmp(s, msg, want) == 0 && memcmp(s + want, tail, strlen(tail)) == 0);
    free(s);
}

static void check_decode_text(const char *msg, size_t size)
{
    char *z = xmalloc(size + 1), *d;

    memcpy(z, msg, size);
    z[size] = 0;
    d = rg_rfc2047_decode(z);
    if (rg_utf8_valid(z, strlen(z)))
        check(rg_utf8_valid(d, strlen(d)));
    if (no_crlf(z))
        check(no_crlf(d));
    free(d);
    free(z);
}

static void check_changes(const char *msg, size_t size, struct rg_headers *h)
{
    size_t n0 = h->n, len, body = size - h->body_offset;
    char *v1 = make_value(msg, size);
    char *v2 = make_value(msg + size / 3, size - size / 3);
    char *v3 = make_value(msg + size / 2, size - size / 2);
    char *e1 = expected_value(v1), *e2 = expected_value(v2), *e3 = expected_value(v3);
    char *rname = NULL, *sname, *dname, *s, *m2;
    int body_at_wsp = h->n == 0 && !h->have_empty_line && body > 0
                      && (msg[h->body_offset] == ' ' || msg[h->body_offset] == '\t');
    struct rg_headers h2;

    if (n0 > 0) {
        rname = field_name(h, n0 - 1);
        rg_headers_replace(h, n0 - 1, v3);
    }
    rg_headers_add(h, "X-Fuzz-Add", v1);
    sname = n0 > 0 ? field_name(h, 0) : dupstr("X-Fuzz-Set");
    if (name_eq(sname, "X-Fuzz-Add") || (rname && name_eq(sname, rname)))
        sname = renamed(sname, "X-Fuzz-Set");
    rg_headers_set(h, sname, v2);
    dname = h->n > 2 ? field_name(h, h->n / 2) : dupstr("X-Fuzz-Remove");
    if (name_eq(dname, "X-Fuzz-Add") || name_eq(dname, sname) || (rname && name_eq(dname, rname)))
        dname = renamed(dname, "X-Fuzz-Remove");
    rg_headers_remove(h, dname);

    /* serialization + body re-parses into the same fields */
    s = rg_headers_serialize(h, &len);
    m2 = xmalloc(len + body);
    memcpy(m2, s, len);
    memcpy(m2 + len, msg + h->body_offset, body);
    check(rg_headers_parse(m2, len + body, 1, HUGE_MAX, &h2) == RG_HDR_OK);
    /* (a message without header whose first line starts with white space:
     * the new fields take that line as their continuation) */
    if (!body_at_wsp) {
        check(h2.body_offset == len);
        check(same_fields(h, &h2));
        check(h2.have_empty_line == h->have_empty_line);
        check_value_of(&h2, "X-Fuzz-Add", -1, e1);
        check_value_of(&h2, sname, 0, e2);
        check(rg_headers_find(&h2, sname, 1) == -1);
        check(rg_headers_find(&h2, dname, 0) == -1);
        if (rname != NULL && !name_eq(rname, "X-Fuzz-Add"))
            check_value_of(&h2, rname, -1, e3);   /* the last original field */
        check_values(&h2);
    }
    rg_headers_free(&h2);
    free(m2);
    free(s);
    free(rname);
    free(sname);
    free(dname);
    free(v1);
    free(v2);
    free(v3);
    free(e1);
    free(e2);
    free(e3);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *msg = (const char *)data;
    struct rg_headers h;

    if (size > MAX_INPUT)
        return 0;
    check(rg_headers_parse(msg, size, 1, HUGE_MAX, &h) == RG_HDR_OK);
    check(h.body_offset <= size);
    check(h.have_empty_line || !h.empty_line_lf);
    for (size_t i = 0; i < h.n; i++)
        check_field_shape(&h.f[i]);
    check_serialize_unchanged(msg, size, &h);
    check_parse_bounds(msg, size, &h);
    check_values(&h);
    check_decode_text(msg, size < 4096 ? size : 4096);
    check_changes(msg, size, &h);
    rg_headers_free(&h);
    return 0;
}
