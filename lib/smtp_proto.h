/*
 * smtp_proto.h - pure parsers of the SMTP/LMTP command language (RFC 5321,
 * RFC 2033, RFC 1869 parameters, RFC 6531 SMTPUTF8, Postfix's XFORWARD).
 * No I/O: every function takes a line and returns what it found or a
 * reply that explains why not, so each is unit-tested and fuzzed alone.
 */
#ifndef RG_SMTP_PROTO_H
#define RG_SMTP_PROTO_H

#include <stddef.h>

enum rg_smtp_verb {
    RG_CMD_UNKNOWN = 0,
    RG_CMD_HELO, RG_CMD_EHLO, RG_CMD_LHLO,
    RG_CMD_MAIL, RG_CMD_RCPT, RG_CMD_DATA, RG_CMD_BDAT,
    RG_CMD_RSET, RG_CMD_NOOP, RG_CMD_QUIT, RG_CMD_VRFY, RG_CMD_EXPN, RG_CMD_HELP,
    RG_CMD_XFORWARD, RG_CMD_STARTTLS, RG_CMD_AUTH,
};

#define RG_ADDR_MAX 512          /* RFC 5321 path limit is 256; be generous */
#define RG_XF_VALUE_MAX 256

struct rg_smtp_cmd {
    enum rg_smtp_verb verb;
    const char *name;   /* canonical upper-case verb */
    const char *arg;    /* rest of the line after the verb and one space ("" if none) */
};

/*
 * Split a command line (terminator already removed, NUL-terminated) into
 * verb and argument. Returns 0, or -1 when the line holds a NUL byte or
 * other control characters (reply 500 5.5.2).
 */
int rg_smtp_parse_line(const char *line, size_t len, struct rg_smtp_cmd *cmd);

enum rg_body_type { RG_BODY_NONE = 0, RG_BODY_7BIT, RG_BODY_8BITMIME };

struct rg_mail_params {
    long long size;          /* SIZE=, -1 when absent */
    enum rg_body_type body;
    int smtputf8;
};

/*
 * The parsers return 0, or -1 with *reply set to a complete static SMTP
 * reply ("501 5.1.7 Bad sender address syntax") for the caller to send.
 * addr receives the address without angle brackets ("" for the null path).
 */
int rg_smtp_parse_mail(const char *arg, char *addr, size_t addrmax,
                       struct rg_mail_params *params, const char **reply);
int rg_smtp_parse_rcpt(const char *arg, int smtputf8, char *addr, size_t addrmax,
                       const char **reply);

/* Validate an RFC 5321 mailbox (local@domain), allowing UTF-8 when utf8. */
int rg_smtp_valid_mailbox(const char *addr, int utf8);

/* XFORWARD attributes, kept as received (xtext) for passing downstream. */
enum rg_xf_attr { RG_XF_NAME, RG_XF_ADDR, RG_XF_PORT, RG_XF_PROTO, RG_XF_HELO,
                  RG_XF_IDENT, RG_XF_SOURCE, RG_XF_COUNT };
extern const char *const rg_xf_names[RG_XF_COUNT];

struct rg_xforward {
    char value[RG_XF_COUNT][RG_XF_VALUE_MAX];   /* "" = not given */
};
/* Parse "NAME=value ADDR=value ...", updating xf. */
int rg_smtp_parse_xforward(const char *arg, struct rg_xforward *xf, const char **reply);
/* Decode xtext (RFC 3461) into out; -1 if malformed or if it decodes to a
 * control character (CR, LF, NUL, ...): such values are refused. */
int rg_xtext_decode(const char *in, char *out, size_t outmax);

#endif
