/*
 * test_rfc2047.c - unit tests of lib/rfc2047.c: decoding encoded-words
 * (Q and B, UTF-8, ISO-8859-1, other iconv charsets, joining, malformed
 * words, invalid bytes) and encoding values for new header fields
 * (ASCII as is, B or Q, 75-character words, 78-character lines, no
 * CR/LF injection, round trip).
 */
#include "config.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "header.h"

#define FFFD "\xEF\xBF\xBD"

static void expect_decode(const char *in, const char *out)
{
    char *d = rg_rfc2047_decode(in);

    if (strcmp(d, out) != 0)
        print_error("decode(\"%s\")\n", in);
    assert_string_equal(d, out);
    free(d);
}

/* the value as a header reader sees it: folding line ends removed */
static char *unfold(const char *s)
{
    char *u = malloc(strlen(s) + 1);
    size_t j = 0;

    assert_non_null(u);
    for (size_t i = 0; s[i]; i++) {
        if (s[i] == '\r' && s[i + 1] == '\n') {
            assert_true(s[i + 2] == ' ' || s[i + 2] == '\t');  /* a fold, never a break */
            i++;
            continue;
        }
        assert_true(s[i] != '\r' && s[i] != '\n');             /* no bare CR or LF */
        u[j++] = s[i];
    }
    u[j] = 0;
    return u;
}

/*
 * Check the shape of an encoded value behind "name: ": every line at most
 * 78 characters (the first one counting "name: "), every encoded-word at
 * most 75 characters and decodable on its own into valid UTF-8 without
 * U+FFFD (so no character was split across two words).
 */
static void check_shape(const char *name, const char *enc)
{
    size_t col = strlen(name) + 2;
    const char *p = enc;

    for (; *p; p++) {
        if (p[0] == '\r' && p[1] == '\n') {
            assert_in_range(col, 0, 78);
            col = 0;
            p++;
            continue;
        }
        col++;
        if (p[0] == '=' && p[1] == '?' && strncmp(p, "=?UTF-8?", 8) == 0) {
            const char *e = strstr(p + 10, "?=");
            char *w, *d;
            assert_non_null(e);
            w = strndup(p, (size_t)(e + 2 - p));
            assert_non_null(w);
            assert_in_range(strlen(w), 13, 75);
            d = rg_rfc2047_decode(w);
            assert_string_not_equal(d, w);          /* it is a valid word */
            assert_true(rg_utf8_valid(d, strlen(d)));
            assert_null(strstr(d, FFFD));
            free(d);
            free(w);
        }
    }
    assert_in_range(col, 0, 78);
}

/* ---- decoding ---- */

static void test_q_underscore_hex(void **state)
{
    (void)state;
    expect_decode("=?ISO-8859-1?Q?Gr=FC=DFe_aus_K=F6ln?=", "Gr\xc3\xbc\xc3\x9f" "e aus K\xc3\xb6ln");
    expect_decode("=?utf-8?q?caf=c3=a9_=3D_=5F?=", "caf\xc3\xa9 = _");
    expect_decode("Re: =?UTF-8?Q?a?=", "Re: a");
}

static void test_b_padding(void **state)
{
    (void)state;
    expect_decode("=?UTF-8?B?w6Q=?=", "\xc3\xa4");
    expect_decode("=?UTF-8?B?w6Q?=", "\xc3\xa4");         /* padding left out */
    expect_decode("=?UTF-8?b?SGVsbG8=?=", "Hello");
    expect_decode("=?UTF-8?B?SA==?=", "H");
    expect_decode("=?UTF-8?B?SGVs?=", "Hel");
    expect_decode("=?UTF-8?B?R3LDvMOfZQ==?=", "Gr\xc3\xbc\xc3\x9f" "e");
}

static void test_iso8859_1_and_utf8(void **state)
{
    (void)state;
    expect_decode("=?iso-8859-1?b?5A==?=", "\xc3\xa4");
    expect_decode("=?ISO-8859-1?Q?=E4=F6=FC=FF?=", "\xc3\xa4\xc3\xb6\xc3\xbc\xc3\xbf");
    expect_decode("=?UTF-8?Q?=E2=82=AC?=", "\xe2\x82\xac");
    expect_decode("=?utf-8?B?8J+YgA==?=", "\xf0\x9f\x98\x80");    /* 4 bytes */
}

static void test_iconv_charsets(void **state)
{
    (void)state;
    /* Windows-1252: 0x80 is the euro sign, 0x93/0x94 curly quotes */
    expect_decode("=?windows-1252?Q?=80_=93quoted=94?=",
                  "\xe2\x82\xac \xe2\x80\x9cquoted\xe2\x80\x9d");
    expect_decode("=?KOI8-R?Q?=F0=D2=C9=D7=C5=D4?=",
                  "\xd0\x9f\xd1\x80\xd0\xb8\xd0\xb2\xd0\xb5\xd1\x82");
    /* stateful: ESC $ B, JIS 0x2448, ESC ( B */
    expect_decode("=?ISO-2022-JP?B?GyRCJEgbKEI=?=", "\xe3\x81\xa8");
    expect_decode("=?US-ASCII?Q?Keith_Moore?=", "Keith Moore");
}

static void test_unknown_charset_left(void **state)
{
    (void)state;
    expect_decode("=?x-unknown-cs?Q?abc?=", "=?x-unknown-cs?Q?abc?=");
    expect_decode("=?x-bogus?Q?a?= =?UTF-8?Q?b?=", "=?x-bogus?Q?a?= b");
    /* iconv suffixes cannot be smuggled in: '/' ends the charset token */
    expect_decode("=?UTF-8//IGNORE?Q?a?=", "=?UTF-8//IGNORE?Q?a?=");
}

static void test_rfc2231_language(void **state)
{
    (void)state;
    expect_decode("=?US-ASCII*EN?Q?Keith_Moore?=", "Keith Moore");
    expect_decode("=?utf-8*de-DE?Q?=C3=A4?=", "\xc3\xa4");
}

static void test_adjacent_joined(void **state)
{
    (void)state;
    expect_decode("=?UTF-8?Q?a?= =?UTF-8?Q?b?=", "ab");
    expect_decode("=?UTF-8?Q?a?=\t  =?UTF-8?B?Yg==?=", "ab");
    expect_decode("=?UTF-8?Q?a?=\r\n =?UTF-8?Q?b?=", "ab");
    expect_decode("=?UTF-8?Q?a?==?UTF-8?Q?b?=", "ab");
    expect_decode("=?ISO-8859-1?Q?=E4?= =?UTF-8?Q?=C3=B6?=", "\xc3\xa4\xc3\xb6");
    /* a character split across two words still converts */
    expect_decode("=?UTF-8?Q?=C3?= =?UTF-8?Q?=A4?=", "\xc3\xa4");
    expect_decode("=?UTF-8?B?ww==?= =?UTF-8?B?pA==?=", "\xc3\xa4");
    /* the first half alone (B without padding), the second malformed */
    expect_decode("=?UTF-8?B?w6?= =?UTF-8?B?Q=?=", FFFD " =?UTF-8?B?Q=?=");
    /* white space only: keep it around words and at the ends */
    expect_decode("  =?UTF-8?Q?a?=  ", "  a  ");
    expect_decode("=?UTF-8?Q?a_?= =?UTF-8?Q?_b?=", "a  b");
}

static void test_text_between_not_joined(void **state)
{
    (void)state;
    expect_decode("=?UTF-8?Q?a?= x =?UTF-8?Q?b?=", "a x b");
    expect_decode("=?UTF-8?Q?a?=x=?UTF-8?Q?b?=", "axb");
    expect_decode("[=?UTF-8?Q?a?=] =?UTF-8?Q?b?=", "[a] b");
    expect_decode("plain text only", "plain text only");
    expect_decode("", "");
}

static void test_malformed_left(void **state)
{
    (void)state;
    /* bad base64: bad character, impossible length, wrong padding */
    expect_decode("=?UTF-8?B?w6Q*?=", "=?UTF-8?B?w6Q*?=");
    expect_decode("=?UTF-8?B?A?=", "=?UTF-8?B?A?=");
    expect_decode("=?UTF-8?B?w6Q==?=", "=?UTF-8?B?w6Q==?=");
    expect_decode("=?UTF-8?B?w=6Q?=", "=?UTF-8?B?w=6Q?=");
    /* missing end */
    expect_decode("=?UTF-8?Q?abc", "=?UTF-8?Q?abc");
    expect_decode("=?UTF-8?Q?abc?", "=?UTF-8?Q?abc?");
    expect_decode("=?UTF-8?Q?abc?= =?UTF-8?Q?def", "abc =?UTF-8?Q?def");
    /* empty text, empty charset, unknown encoding, missing parts */
    expect_decode("=?UTF-8?Q?\?=", "=?UTF-8?Q?\?=");
    expect_decode("=?UTF-8?B?\?=", "=?UTF-8?B?\?=");
    expect_decode("=??Q?abc?=", "=??Q?abc?=");
    expect_decode("=?UTF-8?X?abc?=", "=?UTF-8?X?abc?=");
    expect_decode("=?UTF-8?abc?=", "=?UTF-8?abc?=");
    expect_decode("=?", "=?");
    expect_decode("=", "=");
    /* bad Q: not hex, '=' at the end, a space inside */
    expect_decode("=?UTF-8?Q?a=G1?=", "=?UTF-8?Q?a=G1?=");
    expect_decode("=?UTF-8?Q?a=?=", "=?UTF-8?Q?a=?=");
    expect_decode("=?UTF-8?Q?a=4?=", "=?UTF-8?Q?a=4?=");
    expect_decode("=?UTF-8?Q?a b?= =?UTF-8?Q?c?=", "=?UTF-8?Q?a b?= c");
    /* a malformed start, then a good word right after it */
    expect_decode("=?=?UTF-8?Q?a?=", "=?a");
    /* a malformed word between two good ones breaks the join */
    expect_decode("=?UTF-8?Q?a?= =?UTF-8?Q?\?= =?UTF-8?Q?b?=", "a =?UTF-8?Q?\?= b");
}

static void test_invalid_bytes_replaced(void **state)
{
    (void)state;
    expect_decode("=?UTF-8?Q?a=FFb?=", "a" FFFD "b");
    expect_decode("=?UTF-8?Q?=C0=AF?=", FFFD FFFD);              /* overlong */
    expect_decode("=?UTF-8?Q?=ED=A0=80?=", FFFD FFFD FFFD);      /* surrogate */
    expect_decode("=?UTF-8?Q?=C3?=", FFFD);                      /* truncated */
    expect_decode("=?US-ASCII?Q?a=E4b?=", "a" FFFD "b");         /* iconv EILSEQ */
    expect_decode("=?SHIFT_JIS?Q?a=82?=", "a" FFFD);             /* iconv EINVAL */
}

static void test_decoded_crlf_nul_become_spaces(void **state)
{
    (void)state;
    expect_decode("=?UTF-8?Q?a=0D=0Ab=00c?=", "a  b c");
    expect_decode("=?UTF-8?B?YQ0KYg==?=", "a  b");
    expect_decode("=?ISO-8859-1?Q?x=0Dy=0A?=", "x y ");
    expect_decode("=?ISO-8859-2?Q?x=0Dy=00?=", "x y ");
}

/* ---- encoding ---- */

static void expect_encode(const char *name, const char *value, const char *out)
{
    char *e = rg_header_encode_value(name, value);

    assert_string_equal(e, out);
    check_shape(name, e);
    free(e);
}

/* encode, check the shape, unfold and decode: the value comes back */
static void round_trip(const char *name, const char *value, const char *expect)
{
    char *e = rg_header_encode_value(name, value), *u, *d;

    check_shape(name, e);
    u = unfold(e);
    d = rg_rfc2047_decode(u);
    if (strcmp(d, expect) != 0)
        print_error("value \"%s\"\nencoded \"%s\"\n", value, e);
    assert_string_equal(d, expect);
    free(d);
    free(u);
    free(e);
}

static void test_encode_ascii_as_is(void **state)
{
    (void)state;
    expect_encode("Subject", "Hello world", "Hello world");
    expect_encode("Subject", "", "");
    expect_encode("Subject", "  two  spaces\tand tab ", "  two  spaces\tand tab ");
    expect_encode("X-Regigate", "encrypted", "encrypted");
}

static void test_encode_ascii_folded(void **state)
{
    char value[200] = "", expect[220] = "";
    char *e;

    (void)state;
    /* "Subject: " (9) + 7 words of 9 and 6 spaces = 78: the 8th folds */
    for (int i = 0; i < 10; i++) {
        strcat(value, i ? " aaaaaaaaa" : "aaaaaaaaa");
        strcat(expect, i == 0 ? "aaaaaaaaa" : i == 7 ? "\r\n aaaaaaaaa" : " aaaaaaaaa");
    }
    expect_encode("Subject", value, expect);
    /* a longer name: the fold comes earlier */
    e = rg_header_encode_value("Subject-Longer-By-Ten", value);
    assert_string_equal(e, "aaaaaaaaa aaaaaaaaa aaaaaaaaa aaaaaaaaa aaaaaaaaa\r\n"
                           " aaaaaaaaa aaaaaaaaa aaaaaaaaa aaaaaaaaa aaaaaaaaa");
    check_shape("Subject-Longer-By-Ten", e);
    free(e);
    round_trip("Subject", value, value);
}

static void test_encode_ascii_unbreakable(void **state)
{
    char word[121];
    char *e;

    (void)state;
    memset(word, 'x', 120);
    word[120] = 0;
    e = rg_header_encode_value("Subject", word);
    assert_string_equal(e, word);       /* no white space: no fold possible */
    free(e);
}

static void test_encode_b_or_q(void **state)
{
    (void)state;
    /* B (12 chars) is shorter than Q (Gr=C3=BC=C3=9Fe, 15) */
    expect_encode("Subject", "Gr\xc3\xbc\xc3\x9f" "e", "=?UTF-8?B?R3LDvMOfZQ==?=");
    /* Q (30) is shorter than B (36) */
    expect_encode("Subject", "Zusammenfassungs\xc3\xbc" "bersicht",
                  "=?UTF-8?Q?Zusammenfassungs=C3=BCbersicht?=");
    /* only the words that need it are encoded; white space between two
     * encoded words goes inside the word */
    expect_encode("Subject", "[secure] Gr\xc3\xbc\xc3\x9f" "e aus K\xc3\xb6ln",
                  "[secure] =?UTF-8?B?R3LDvMOfZQ==?= aus =?UTF-8?B?S8O2bG4=?=");
    expect_encode("Subject", "\xc3\xa4 \xc3\xb6", "=?UTF-8?B?w6Qgw7Y=?=");
    /* Q escapes what a phrase may not contain */
    expect_encode("X", "ABCDEFGHabcdefghij_klm=nop?qrs\"tuvwxyz\xc3\xa4",
                  "=?UTF-8?Q?ABCDEFGHabcdefghij=5Fklm=3Dnop=3Fqrs=22tuvwxyz=C3=A4?=");
}

static void test_encode_control_and_markers(void **state)
{
    char *e;

    (void)state;
    /* text a decoder would take for an encoded-word is encoded */
    e = rg_header_encode_value("Subject", "=?UTF-8?Q?x?=");
    assert_string_not_equal(e, "=?UTF-8?Q?x?=");
    free(e);
    round_trip("Subject", "=?UTF-8?Q?x?=", "=?UTF-8?Q?x?=");
    round_trip("Subject", "see =?iso-8859-1?q?=E4?= here", "see =?iso-8859-1?q?=E4?= here");
    /* control characters are encoded */
    expect_encode("X", "abcdef\x01", "=?UTF-8?Q?abcdef=01?=");
    expect_encode("X", "a\x01" "b", "=?UTF-8?B?YQFi?=");
    /* invalid UTF-8 becomes U+FFFD (check_shape would reject that U+FFFD) */
    e = rg_header_encode_value("X", "a\xff" "b");
    assert_string_equal(e, "=?UTF-8?B?Ye+/vWI=?=");
    free(e);
    expect_decode("=?UTF-8?B?Ye+/vWI=?=", "a" FFFD "b");
}

static void test_encode_crlf_injection(void **state)
{
    char *e;
    char big[600];

    (void)state;
    expect_encode("X-Tag", "a\r\nBcc: evil@example.com", "a  Bcc: evil@example.com");
    expect_encode("X-Tag", "a\nb\rc", "a b c");
    expect_encode("X-Tag", "\xc3\xa4\r\n\r\nbody", "=?UTF-8?B?w6Q=?=    body");
    /* long: the only line breaks are folds */
    big[0] = 0;
    for (int i = 0; i < 20; i++)
        strcat(big, "word\r\n\r\nBcc: x@evil\n");
    e = rg_header_encode_value("X-Tag", big);
    free(unfold(e));            /* asserts every CRLF is followed by WSP */
    check_shape("X-Tag", e);
    free(e);
}

static void test_encode_long_non_ascii(void **state)
{
    char value[401];
    char *e;
    int words = 0;

    (void)state;
    for (int i = 0; i < 200; i++)
        memcpy(value + 2 * i, "\xc3\xa4", 2);
    value[400] = 0;
    e = rg_header_encode_value("Subject", value);
    check_shape("Subject", e);
    for (const char *p = e; (p = strstr(p, "=?UTF-8?B?")) != NULL; p++)
        words++;
    /* 400 bytes: 42 on the first line (room 69), then 44 (room 75) each */
    assert_int_equal(words, 1 + 9);
    round_trip("Subject", value, value);
    free(e);
    /* 4-byte characters are never split */
    for (int i = 0; i < 100; i++)
        memcpy(value + 4 * i, "\xf0\x9f\x98\x80", 4);
    value[400] = 0;
    round_trip("Subject", value, value);
    round_trip("X-Very-Long-Header-Name-For-Testing-Purposes-Only", value, value);
}

static void test_encode_long_name(void **state)
{
    char name[80];

    (void)state;
    /* 60 + ": " leaves 16: exactly "=?UTF-8?B?w6Q=?=" */
    memset(name, 'N', 60);
    name[60] = 0;
    expect_encode(name, "\xc3\xa4", "=?UTF-8?B?w6Q=?=");
    /* 61 leaves 15: the word goes to the next line */
    memset(name, 'N', 61);
    name[61] = 0;
    expect_encode(name, "\xc3\xa4", "\r\n =?UTF-8?B?w6Q=?=");
}

static void test_encode_white_space_folds(void **state)
{
    char value[200], expect[220], name[80];
    char *e, *u, *d;

    (void)state;
    /* a fold goes before the white space in front of an encoded-word */
    memset(value, 'x', 60);
    strcpy(value + 60, "   \xc3\xa4");
    memset(expect, 'x', 60);
    strcpy(expect + 60, "\r\n   =?UTF-8?B?w6Q=?=");
    expect_encode("Subject", value, expect);
    round_trip("Subject", value, value);

    /* white space too long for any line: its last character starts the
     * next line, so no line is white space only and nothing is added */
    value[0] = 'a';
    memset(value + 1, ' ', 90);
    strcpy(value + 91, "\xc3\xa4");
    expect[0] = 'a';
    memset(expect + 1, ' ', 89);
    strcpy(expect + 90, "\r\n =?UTF-8?B?w6Q=?=");
    e = rg_header_encode_value("X", value);
    assert_string_equal(e, expect);
    u = unfold(e);
    d = rg_rfc2047_decode(u);
    assert_string_equal(d, value);
    free(d);
    free(u);
    free(e);

    /* leading white space behind a long name */
    memset(name, 'N', 62);
    name[62] = 0;
    expect_encode(name, "  \xc3\xa4", " \r\n =?UTF-8?B?w6Q=?=");
    round_trip(name, "  \xc3\xa4", "  \xc3\xa4");
    /* trailing white space is never folded away */
    round_trip("X", "\xc3\xa4   ", "\xc3\xa4   ");
}

/* deterministic PRNG (xorshift64*), so a failure can be reproduced */
static uint64_t rng_state = 0x2047204720472047ULL;

static uint32_t rnd(uint32_t n)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return (uint32_t)((rng_state * 0x2545F4914F6CDD1DULL) >> 33) % n;
}

static size_t put_cp(char *o, uint32_t cp)
{
    if (cp < 0x80) {
        o[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (char)(0xC0 | (cp >> 6));
        o[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (char)(0xE0 | (cp >> 12));
        o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (char)(0xF0 | (cp >> 18));
    o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    o[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

static uint32_t random_cp(void)
{
    static const char ascii[] = "abcXYZ019=?_-!\"()<>@,;:.[]/*+#%&'~";

    switch (rnd(6)) {
    case 0:
    case 1:
        return (uint32_t)ascii[rnd(sizeof(ascii) - 1)];
    case 2:
        return 0xA0 + rnd(0x60);                /* Latin-1 */
    case 3:
        return 0x400 + rnd(0x100);              /* Cyrillic */
    case 4:
        return 0x4E00 + rnd(0x5000);            /* CJK */
    default:
        return 0x1F600 + rnd(0x50);             /* emoji, 4 bytes */
    }
}

/* words of 1-12 characters, white space runs of 1-2 (SP or HT) */
static void random_value(char *o, size_t cap)
{
    size_t n = 0, words = rnd(25);

    if (rnd(4) == 0)
        o[n++] = rnd(2) ? ' ' : '\t';
    for (size_t w = 0; w < words; w++) {
        size_t len = 1 + rnd(12), ws = 1 + rnd(2);
        if (n + len * 4 + ws + 2 >= cap)
            break;
        for (size_t i = 0; i < len; i++)
            n += put_cp(o + n, random_cp());
        if (w + 1 < words || rnd(4) == 0)
            for (size_t i = 0; i < ws; i++)
                o[n++] = rnd(3) ? ' ' : '\t';
    }
    o[n] = 0;
}

static void test_encode_round_trip_random(void **state)
{
    char value[1024];
    static const char *names[] = { "Subject", "X-Regigate-Tag", "X", "Comments" };

    (void)state;
    for (int i = 0; i < 200; i++) {
        random_value(value, sizeof(value));
        assert_true(rg_utf8_valid(value, strlen(value)));
        round_trip(names[i % 4], value, value);
    }
}

static void test_utf8_valid(void **state)
{
    (void)state;
    assert_true(rg_utf8_valid("", 0));
    assert_true(rg_utf8_valid("abc\xc3\xa4\xe2\x82\xac\xf0\x9f\x98\x80", 12));
    assert_false(rg_utf8_valid("\xc3", 1));
    assert_false(rg_utf8_valid("\xc0\xaf", 2));
    assert_false(rg_utf8_valid("\xed\xa0\x80", 3));
    assert_false(rg_utf8_valid("\xf4\x90\x80\x80", 4));
    assert_false(rg_utf8_valid("\xff", 1));
    assert_false(rg_utf8_valid("a\x80", 2));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_q_underscore_hex),
        cmocka_unit_test(test_b_padding),
        cmocka_unit_test(test_iso8859_1_and_utf8),
        cmocka_unit_test(test_iconv_charsets),
        cmocka_unit_test(test_unknown_charset_left),
        cmocka_unit_test(test_rfc2231_language),
        cmocka_unit_test(test_adjacent_joined),
        cmocka_unit_test(test_text_between_not_joined),
        cmocka_unit_test(test_malformed_left),
        cmocka_unit_test(test_invalid_bytes_replaced),
        cmocka_unit_test(test_decoded_crlf_nul_become_spaces),
        cmocka_unit_test(test_encode_ascii_as_is),
        cmocka_unit_test(test_encode_ascii_folded),
        cmocka_unit_test(test_encode_ascii_unbreakable),
        cmocka_unit_test(test_encode_b_or_q),
        cmocka_unit_test(test_encode_control_and_markers),
        cmocka_unit_test(test_encode_crlf_injection),
        cmocka_unit_test(test_encode_long_non_ascii),
        cmocka_unit_test(test_encode_long_name),
        cmocka_unit_test(test_encode_white_space_folds),
        cmocka_unit_test(test_encode_round_trip_random),
        cmocka_unit_test(test_utf8_valid),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
