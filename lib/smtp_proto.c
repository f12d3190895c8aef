/*
 * smtp_proto.c - SMTP command line parsers; see smtp_proto.h.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "smtp_proto.h"

static const struct {
    const char *name;
    enum rg_smtp_verb verb;
} verbs[] = {
    { "HELO", RG_CMD_HELO }, { "EHLO", RG_CMD_EHLO }, { "LHLO", RG_CMD_LHLO },
    { "MAIL", RG_CMD_MAIL }, { "RCPT", RG_CMD_RCPT }, { "DATA", RG_CMD_DATA },
    { "BDAT", RG_CMD_BDAT }, { "RSET", RG_CMD_RSET }, { "NOOP", RG_CMD_NOOP },
    { "QUIT", RG_CMD_QUIT }, { "VRFY", RG_CMD_VRFY }, { "EXPN", RG_CMD_EXPN },
    { "HELP", RG_CMD_HELP }, { "XFORWARD", RG_CMD_XFORWARD },
    { "STARTTLS", RG_CMD_STARTTLS }, { "AUTH", RG_CMD_AUTH },
};

const char *const rg_xf_names[RG_XF_COUNT] = {
    "NAME", "ADDR", "PORT", "PROTO", "HELO", "IDENT", "SOURCE",
};

int rg_smtp_parse_line(const char *line, size_t len, struct rg_smtp_cmd *cmd)
{
    size_t vlen;

    cmd->verb = RG_CMD_UNKNOWN;
    cmd->name = "";
    cmd->arg = "";
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)line[i];
        if (c == 0 || (c < 0x20 && c != '\t') || c == 0x7f)
            return -1;
    }
    vlen = strcspn(line, " \t");
    for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++) {
        if (strlen(verbs[i].name) == vlen && strncasecmp(line, verbs[i].name, vlen) == 0) {
            cmd->verb = verbs[i].verb;
            cmd->name = verbs[i].name;
            break;
        }
    }
    cmd->arg = line + vlen;
    while (*cmd->arg == ' ' || *cmd->arg == '\t')
        cmd->arg++;
    return 0;
}

/* RFC 5321 atext plus UTF-8 octets when allowed. */
static int is_atext(unsigned char c, int utf8)
{
    if (c >= 0x80)
        return utf8;
    return isalnum(c) || strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL;
}

/* Strict UTF-8 (RFC 3629): no overlong forms, surrogates or > U+10FFFF. */
static int valid_utf8(const unsigned char *s)
{
    while (*s) {
        unsigned cp;
        int n;
        if (*s < 0x80) { s++; continue; }
        else if (*s >= 0xc2 && *s <= 0xdf) { n = 1; cp = *s & 0x1f; }
        else if ((*s & 0xf0) == 0xe0) { n = 2; cp = *s & 0x0f; }
        else if (*s >= 0xf0 && *s <= 0xf4) { n = 3; cp = *s & 0x07; }
        else return 0;
        s++;
        for (int i = 0; i < n; i++, s++) {
            if ((*s & 0xc0) != 0x80)
                return 0;
            cp = (cp << 6) | (*s & 0x3f);
        }
        if ((n == 2 && cp < 0x800) || (n == 3 && (cp < 0x10000 || cp > 0x10ffff))
            || (cp >= 0xd800 && cp <= 0xdfff))
            return 0;
    }
    return 1;
}

static int valid_domain(const char *d, int utf8)
{
    size_t len = strlen(d);

    if (len == 0 || len > 255)
        return 0;
    if (d[0] == '[') {      /* address literal: [1.2.3.4] or [IPv6:...] */
        if (d[len - 1] != ']' || len < 3)
            return 0;
        for (size_t i = 1; i < len - 1; i++)
            if (!isalnum((unsigned char)d[i]) && !strchr(".:-", d[i]))
                return 0;
        return 1;
    }
    /* sub-domain *("." sub-domain); labels of letters, digits, hyphens */
    const char *label = d;
    for (const char *p = d;; p++) {
        if (*p == '.' || *p == 0) {
            size_t ll = (size_t)(p - label);
            if (ll == 0 || ll > 63 || label[0] == '-' || p[-1] == '-')
                return 0;
            if (*p == 0)
                return 1;
            label = p + 1;
        } else if (!(isalnum((unsigned char)*p) || *p == '-'
                     || ((unsigned char)*p >= 0x80 && utf8))) {
            return 0;
        }
    }
}

int rg_smtp_valid_mailbox(const char *addr, int utf8)
{
    const char *at, *p;
    char domain[RG_ADDR_MAX];

    if (!valid_utf8((const unsigned char *)addr))
        return 0;
    if (!utf8)
        for (p = addr; *p; p++)
            if ((unsigned char)*p >= 0x80)
                return 0;
    if (addr[0] == '"') {               /* quoted-string local part */
        for (p = addr + 1; *p && *p != '"'; p++) {
            if (*p == '\\') {
                if (p[1] < 0x20 && (unsigned char)p[1] < 0x80)
                    return 0;
                p++;
            } else if ((unsigned char)*p < 0x20 || *p == 0x7f) {
                return 0;
            }
        }
        if (*p != '"' || p[1] != '@')
            return 0;
        at = p + 1;
        if (at - addr > 64 + 2)
            return 0;
    } else {                            /* dot-string */
        int prev_dot = 1;
        for (p = addr; *p && *p != '@'; p++) {
            if (*p == '.') {
                if (prev_dot)
                    return 0;
                prev_dot = 1;
            } else if (is_atext((unsigned char)*p, utf8)) {
                prev_dot = 0;
            } else {
                return 0;
            }
        }
        if (*p != '@' || prev_dot || p - addr > 64)
            return 0;
        at = p;
    }
    if (strlen(at + 1) >= sizeof(domain))
        return 0;
    strcpy(domain, at + 1);
    return valid_domain(domain, utf8);
}

/*
 * Parse "<path>" (or a bare path, as Postfix tolerates) at *pp into addr;
 * advances *pp past it. Source routes (<@a,@b:user@d>) are accepted and
 * dropped, as RFC 5321 section 4.1.1.3 allows.
 */
static int parse_path(const char **pp, char *addr, size_t addrmax)
{
    const char *p = *pp, *end;
    size_t len;

    while (*p == ' ')
        p++;
    if (*p == '<') {
        p++;
        /* find the closing '>' outside a quoted string */
        int inq = 0;
        for (end = p; *end; end++) {
            if (inq && *end == '\\' && end[1]) { end++; continue; }
            if (*end == '"') inq = !inq;
            else if (*end == '<' && !inq) return -1;   /* "<<a@b>>" */
            else if (*end == '>' && !inq) break;
        }
        if (*end != '>')
            return -1;
        *pp = end + 1;
    } else {
        end = p + strcspn(p, " ");
        /* "MAIL FROM:" with nothing: not the null sender, which is "<>" */
        if (end == p)
            return -1;
        *pp = end;
    }
    if (*p == '@') {                    /* source route */
        const char *colon = memchr(p, ':', (size_t)(end - p));
        if (colon == NULL)
            return -1;
        p = colon + 1;
    }
    len = (size_t)(end - p);
    if (len >= addrmax)
        return -1;
    memcpy(addr, p, len);
    addr[len] = 0;
    return 0;
}

/* "FROM:" / "TO:" with optional spaces around the colon. */
static const char *skip_keyword(const char *arg, const char *kw)
{
    size_t kl = strlen(kw);

    if (strncasecmp(arg, kw, kl) != 0)
        return NULL;
    arg += kl;
    while (*arg == ' ')
        arg++;
    if (*arg != ':')
        return NULL;
    return arg + 1;
}

int rg_smtp_parse_mail(const char *arg, char *addr, size_t addrmax,
                       struct rg_mail_params *params, const char **reply)
{
    const char *p = skip_keyword(arg, "FROM");

    params->size = -1;
    params->body = RG_BODY_NONE;
    params->smtputf8 = 0;
    if (p == NULL) {
        *reply = "501 5.5.4 Syntax: MAIL FROM:<address>";
        return -1;
    }
    if (parse_path(&p, addr, addrmax) < 0) {
        *reply = "501 5.1.7 Bad sender address syntax";
        return -1;
    }
    /* ESMTP parameters: KEYWORD[=VALUE] separated by spaces */
    while (*p) {
        char kw[32], val[64];
        size_t kl, vl = 0;

        while (*p == ' ')
            p++;
        if (*p == 0)
            break;
        kl = strcspn(p, "= ");
        if (kl == 0 || kl >= sizeof(kw)) {
            *reply = "555 5.5.4 Unsupported option";
            return -1;
        }
        memcpy(kw, p, kl);
        kw[kl] = 0;
        p += kl;
        val[0] = 0;
        if (*p == '=') {
            p++;
            vl = strcspn(p, " ");
            if (vl >= sizeof(val)) {
                *reply = "555 5.5.4 Unsupported option";
                return -1;
            }
            memcpy(val, p, vl);
            val[vl] = 0;
            p += vl;
        }
        if (strcasecmp(kw, "SIZE") == 0) {
            char *e;
            errno = 0;
            long long n = strtoll(val, &e, 10);
            if (vl == 0 || *e || n < 0 || errno || params->size >= 0
                || !isdigit((unsigned char)val[0])) {
                *reply = "501 5.5.4 Bad SIZE parameter";
                return -1;
            }
            params->size = n;
        } else if (strcasecmp(kw, "BODY") == 0) {
            if (strcasecmp(val, "8BITMIME") == 0)
                params->body = RG_BODY_8BITMIME;
            else if (strcasecmp(val, "7BIT") == 0)
                params->body = RG_BODY_7BIT;
            else {
                *reply = "501 5.5.4 Bad BODY parameter";
                return -1;
            }
        } else if (strcasecmp(kw, "SMTPUTF8") == 0 && vl == 0) {
            params->smtputf8 = 1;
        } else {
            *reply = "555 5.5.4 Unsupported option";
            return -1;
        }
    }
    if (addr[0] != 0 && !rg_smtp_valid_mailbox(addr, params->smtputf8)) {
        if (!params->smtputf8 && rg_smtp_valid_mailbox(addr, 1))
            *reply = "553 5.6.7 Must declare SMTPUTF8 to send a UTF-8 address";
        else
            *reply = "501 5.1.7 Bad sender address syntax";
        return -1;
    }
    return 0;
}

int rg_smtp_parse_rcpt(const char *arg, int smtputf8, char *addr, size_t addrmax,
                       const char **reply)
{
    const char *p = skip_keyword(arg, "TO");

    if (p == NULL) {
        *reply = "501 5.5.4 Syntax: RCPT TO:<address>";
        return -1;
    }
    if (parse_path(&p, addr, addrmax) < 0) {
        *reply = "501 5.1.3 Bad recipient address syntax";
        return -1;
    }
    while (*p == ' ')
        p++;
    if (*p) {
        *reply = "555 5.5.4 Unsupported option";
        return -1;
    }
    if (strcasecmp(addr, "postmaster") == 0)
        return 0;
    if (!rg_smtp_valid_mailbox(addr, smtputf8)) {
        if (!smtputf8 && rg_smtp_valid_mailbox(addr, 1))
            *reply = "553 5.6.7 Must declare SMTPUTF8 to send a UTF-8 address";
        else
            *reply = "501 5.1.3 Bad recipient address syntax";
        return -1;
    }
    return 0;
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

int rg_xtext_decode(const char *in, char *out, size_t outmax)
{
    size_t n = 0;

    for (const char *p = in; *p; p++) {
        int c = (unsigned char)*p;
        if (c == '+') {
            int h = hexval(p[1]), l = h < 0 ? -1 : hexval(p[2]);
            if (h < 0 || l < 0)
                return -1;
            c = h * 16 + l;
            p += 2;
        } else if (c < 0x21 || c > 0x7e || c == '=') {
            return -1;
        }
        if (c < 0x20 || c == 0x7f)
            return -1;
        if (n + 1 >= outmax)
            return -1;
        out[n++] = (char)c;
    }
    out[n] = 0;
    return 0;
}

int rg_smtp_parse_xforward(const char *arg, struct rg_xforward *xf, const char **reply)
{
    struct rg_xforward tmp = *xf;
    const char *p = arg;
    int seen = 0;

    while (*p) {
        char name[16], value[RG_XF_VALUE_MAX], decoded[RG_XF_VALUE_MAX];
        size_t nl, vl;
        int idx = -1;

        while (*p == ' ')
            p++;
        if (*p == 0)
            break;
        nl = strcspn(p, "= ");
        if (p[nl] != '=' || nl == 0 || nl >= sizeof(name)) {
            *reply = "501 5.5.4 Bad XFORWARD attribute syntax";
            return -1;
        }
        memcpy(name, p, nl);
        name[nl] = 0;
        p += nl + 1;
        vl = strcspn(p, " ");
        if (vl == 0 || vl >= sizeof(value)) {
            *reply = "501 5.5.4 Bad XFORWARD attribute value";
            return -1;
        }
        memcpy(value, p, vl);
        value[vl] = 0;
        p += vl;
        for (int i = 0; i < RG_XF_COUNT; i++)
            if (strcasecmp(name, rg_xf_names[i]) == 0)
                idx = i;
        if (idx < 0) {
            *reply = "501 5.5.4 Unknown XFORWARD attribute";
            return -1;
        }
        if (rg_xtext_decode(value, decoded, sizeof(decoded)) < 0) {
            *reply = "501 5.5.4 Bad XFORWARD attribute value";
            return -1;
        }
        memcpy(tmp.value[idx], value, vl + 1);
        seen++;
    }
    if (!seen) {
        *reply = "501 5.5.4 Syntax: XFORWARD attribute=value...";
        return -1;
    }
    *xf = tmp;
    return 0;
}
