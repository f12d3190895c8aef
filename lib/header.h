/*
 * header.h - the header section of a message (RFC 5322): parse it into
 * fields, read values unfolded and RFC 2047-decoded, change fields
 * (add/set/remove, for rule tags) and write the section back.
 *
 * Fields are kept as their raw bytes, so a section that is not changed is
 * written back byte for byte. The section ends at the first empty line,
 * or (as in Postfix) at the first line that is neither a field
 * ("name:" with a printable-ASCII name) nor a continuation; that line and
 * everything after it is the body.
 */
#ifndef RG_HEADER_H
#define RG_HEADER_H

#include <stddef.h>

struct rg_header_field {
    char *raw;          /* the whole field as in the message: name, ':', value,
                           folding, final CRLF (added when missing) */
    size_t raw_len;
    size_t name_len;    /* raw[0..name_len) is the name, no trailing space */
};

struct rg_headers {
    struct rg_header_field *f;
    size_t n, cap;
    size_t body_offset; /* offset of the body in the message: after the
                           empty line if there is one */
    int have_empty_line;/* the message had the separating empty line */
    int empty_line_lf;  /* ... and it was a bare LF (written back as such);
                           0: CRLF */
};

enum rg_hdr_status {
    RG_HDR_OK = 0,
    RG_HDR_TOOBIG,      /* the header section is longer than max bytes */
    RG_HDR_NEEDMORE,    /* !complete and the section does not end within
                           len bytes: call again with more of the message */
};
const char *rg_hdr_strerror(enum rg_hdr_status st);

/*
 * Parse the header section at the start of msg[0..len). len may be a
 * prefix of the message: if no end of the section is found within
 * min(len, max) bytes and len < the message size, the caller must give
 * more (RG_HDR_NEEDMORE); if the section is longer than max,
 * RG_HDR_TOOBIG. complete says whether msg holds the whole message.
 * "The section" is msg[0..body_offset): RG_HDR_OK means body_offset <= max.
 * On anything but RG_HDR_OK, h is left empty (nothing to free).
 * CRLF and bare LF line ends are both accepted. A field name may be
 * followed by white space before the colon (obsolete syntax, accepted as
 * Postfix does); a first line starting with white space is body.
 */
enum rg_hdr_status rg_headers_parse(const char *msg, size_t len, int complete, size_t max,
                                    struct rg_headers *h);
void rg_headers_free(struct rg_headers *h);

/* Index of the k-th field (k = 0, 1, ...) named name (case-insensitive), or -1. */
long rg_headers_find(const struct rg_headers *h, const char *name, size_t k);
/* The unfolded value of field i: folding CRLFs removed, leading and
 * trailing white space trimmed, raw (no decoding; a stray CR or a NUL
 * becomes a space). Newly allocated. */
char *rg_header_value_raw(const struct rg_headers *h, size_t i);
/* The unfolded value decoded from RFC 2047 encoded-words into UTF-8; CR,
 * LF and NUL produced by decoding become spaces. Raw 8-bit bytes are kept
 * when they are valid UTF-8, else read as ISO-8859-1. The result is always
 * valid UTF-8. Newly allocated. */
char *rg_header_value(const struct rg_headers *h, size_t i);

/*
 * RFC 2047: decode encoded-words (Q and B, any charset iconv knows) in a
 * header value into UTF-8. Malformed encoded-words are left as they are;
 * adjacent encoded-words separated only by white space are joined.
 * Text outside encoded-words is copied unchanged; bytes a charset cannot
 * convert become U+FFFD; CR, LF and NUL decoded from a word become spaces.
 */
char *rg_rfc2047_decode(const char *value);
/*
 * Encode a UTF-8 value for a header field "name: value": returned as is
 * when it is ASCII, otherwise as UTF-8 encoded-words (B or Q, whichever is
 * shorter); CR, LF and NUL become spaces. Folded so that no line exceeds
 * 78 characters where white space allows it. The result has no final CRLF.
 * Only the white-space separated words that need it are encoded (non-ASCII
 * or control characters, or "=?", which a decoder would take for an
 * encoded-word); invalid UTF-8 bytes become U+FFFD.
 */
char *rg_header_encode_value(const char *name, const char *utf8_value);

/* Changes (for tags). name must match [!-9;-~]+ (checked by the caller;
 * an invalid name is a bug: rg_panic). add appends after the last field;
 * set removes every instance and puts the new field where the first one
 * was (at the end if there was none). */
void rg_headers_add(struct rg_headers *h, const char *name, const char *utf8_value);
void rg_headers_remove(struct rg_headers *h, const char *name);
void rg_headers_set(struct rg_headers *h, const char *name, const char *utf8_value);
/* Replace field i by "name: value" (keeping its position). */
void rg_headers_replace(struct rg_headers *h, size_t i, const char *utf8_value);
/* Is name a valid field name? */
int rg_header_name_valid(const char *name);
/* Is s[0..n) valid UTF-8 (no overlong forms, surrogates or code points
 * above U+10FFFF)? */
int rg_utf8_valid(const char *s, size_t n);

/* The section as bytes: the fields, then the empty line if the message had
 * one (as it had it: CRLF or bare LF); none if it had none (the caller
 * appends the message from body_offset). Fields not changed are written
 * byte for byte; new ones as "Name: " + rg_header_encode_value() + CRLF.
 * Newly allocated (NUL-terminated), *len set. */
char *rg_headers_serialize(const struct rg_headers *h, size_t *len);

#endif
