/*
 * fuzz_rfc2047.c - libFuzzer target for lib/rfc2047.c on its own: the
 * encoded-word decoder rg_rfc2047_decode() and the encoder
 * rg_header_encode_value(). The input is a header value (NUL bytes become
 * spaces, as rg_header_value_raw() gives them); its first byte also
 * chooses the length of the field name the encoder folds behind.
 *
 * Invariants (abort() when broken), decoder:
 *  - the result is NUL-terminated within the decoder's output bound
 *    (32 bytes per input byte + 64);
 *  - a value without "=?" comes back unchanged, and whatever precedes
 *    the first "=?" is copied as it is;
 *  - decoding never adds a CR or LF (decoded ones become spaces): the
 *    result holds at most as many of each as the input;
 *  - valid UTF-8 in gives valid UTF-8 out;
 *  - decoding twice gives the same (no charset state survives a call).
 * Encoder:
 *  - the result is printable ASCII, SP and HT, with CR only in a fold
 *    (CR LF followed by SP or HT), and no folded line is white space only;
 *  - every encoded-word is at most 75 characters (RFC 2047 2);
 *  - a value that needs no encoding (printable ASCII, no "=?") comes back
 *    as it is once unfolded;
 *  - unfolding and decoding gives the value back with CR/LF as spaces and
 *    every invalid UTF-8 byte as U+FFFD (plus one leading space when the
 *    first word had to go to the next line behind a long name).
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "header.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_INPUT   (16 * 1024)
#define EW_MAX      75

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

static size_t count_char(const char *s, char c)
{
    size_t n = 0;

    for (; *s; s++)
        n += *s == c;
    return n;
}

/* Length of the valid UTF-8 sequence at s[0..n), 0 if there is none. */
static size_t seq_len(const char *s, size_t n)
{
    for (size_t l = 1; l <= 4 && l <= n; l++)
        if (rg_utf8_valid(s, l))
            return l;
    return 0;
}

/* What the encoder promises to carry: CR/LF as spaces, bad bytes as U+FFFD. */
static char *sanitized(const char *v)
{
    size_t n = strlen(v), i = 0, j = 0;
    char *s = xmalloc(3 * n + 1);

    while (i < n) {
        size_t l = seq_len(v + i, n - i);
        if (l == 0) {
            memcpy(s + j, "\xEF\xBF\xBD", 3);
            j += 3;
            i++;
        } else if (v[i] == '\r' || v[i] == '\n') {
            s[j++] = ' ';
            i++;
        } else {
            memcpy(s + j, v + i, l);
            j += l;
            i += l;
        }
    }
    s[j] = 0;
    return s;
}

/* Remove the CR LF of every fold (the white space after it stays). */
static char *unfold(const char *e)
{
    char *u = xmalloc(strlen(e) + 1), *o = u;

    for (; *e; e++) {
        if (e[0] == '\r' && e[1] == '\n') {
            e++;
            continue;
        }
        *o++ = *e;
    }
    *o = 0;
    return u;
}

static int needs_no_encoding(const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p < 0x20 || *p >= 0x7f || (p[0] == '=' && p[1] == '?'))
            return 0;
    return 1;
}

static void check_decode(const char *v, size_t n)
{
    char *d = rg_rfc2047_decode(v), *d2;
    const char *first = strstr(v, "=?");
    size_t len;

    check(d != NULL);
    len = strnlen(d, 32 * n + 65);
    check(len <= 32 * n + 64);
    if (first == NULL)
        check(strcmp(d, v) == 0);
    else
        check(memcmp(d, v, (size_t)(first - v)) == 0);
    check(count_char(d, '\r') <= count_char(v, '\r'));
    check(count_char(d, '\n') <= count_char(v, '\n'));
    if (rg_utf8_valid(v, n))
        check(rg_utf8_valid(d, len));
    d2 = rg_rfc2047_decode(v);
    check(strcmp(d, d2) == 0);
    free(d2);
    free(d);
}

static void check_encoded_shape(const char *e)
{
    for (const char *p = e; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (c == '\r') {
            const char *next = p + 2;
            size_t wsp;
            check(p[1] == '\n' && (p[2] == ' ' || p[2] == '\t'));
            /* the line the fold starts holds more than white space */
            wsp = strspn(next, " \t");
            check(next[wsp] != '\0' && next[wsp] != '\r');
            p++;
            continue;
        }
        check(c == '\t' || (c >= 0x20 && c < 0x7f));
    }
    /* encoded-words: "=?UTF-8?" ... "?=" */
    for (const char *w = strstr(e, "=?UTF-8?"); w != NULL; w = strstr(w + 2, "=?UTF-8?")) {
        const char *end = strstr(w + 10, "?=");
        check(end != NULL);
        check((size_t)(end + 2 - w) <= EW_MAX);
    }
}

static void check_encode(const char *v, const char *name)
{
    char *e = rg_header_encode_value(name, v);
    char *u, *d, *want = sanitized(v);

    check(e != NULL);
    check_encoded_shape(e);
    u = unfold(e);
    if (needs_no_encoding(want))
        check(strcmp(u, want) == 0);
    d = rg_rfc2047_decode(u);
    if (strncmp(e, "\r\n ", 3) == 0 && want[0] != ' ')
        check(d[0] == ' ' && strcmp(d + 1, want) == 0);
    else
        check(strcmp(d, want) == 0);
    free(d);
    free(u);
    free(e);
    free(want);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char name[100];
    char *v;
    size_t namelen;

    if (size > MAX_INPUT)
        return 0;
    v = xmalloc(size + 1);
    for (size_t i = 0; i < size; i++)
        v[i] = data[i] == 0 ? ' ' : (char)data[i];
    v[size] = 0;
    /* "Subject" mostly; now and then a name long enough to push the value
     * to the next line */
    namelen = size > 0 && data[0] >= 0xF0 ? 60u + (data[0] & 0x0F) * 2u : 7u;
    memset(name, 'X', namelen);
    memcpy(name, "Subject", 7);
    name[namelen] = 0;

    check_decode(v, size);
    check_encode(v, name);
    free(v);
    return 0;
}
