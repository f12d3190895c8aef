/*
 * rules_eval.c - run a compiled rule set on one message (or one
 * recipient's copy of it), and apply the tags of the outcome to its
 * header section.
 *
 * The envelope is lower-cased once per evaluation; a header's values are
 * read (unfolded, RFC 2047-decoded) the first time a condition asks for
 * them and kept until the evaluation ends, so ten regexes on the Subject
 * decode it once.
 */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "header.h"
#include "log.h"
#include "mem.h"
#include "rules.h"
#include "rules_int.h"

/* The values of one field: a header's instances, the recipients, ... */
struct values {
    const char *const *v;
    const size_t *len;
    size_t n;
};

struct hvals {
    int loaded;
    char **v;
    size_t *len;
    size_t n;
};

struct eval {
    const struct rg_rules *r;
    const struct rg_rules_input *in;
    const char *rule;           /* the rule being evaluated, for warnings */
    char *arena;                /* the lower-cased envelope */
    const char *env[2];         /* sender, its domain */
    size_t envlen[2];
    const char **rcpt;          /* nrcpt recipients, then nrcpt domains */
    size_t *rcptlen;
    size_t nrcpt;
    struct hvals *hv;           /* per rg_rules.headers */
};

/* At most max bytes of s[0..len), not cutting a UTF-8 sequence. */
static size_t clip_utf8(const char *s, size_t len, size_t max)
{
    if (len <= max)
        return len;
    len = max;
    /* back off over continuation bytes to the start of the cut character */
    for (int k = 0; k < 4 && len > 0 && ((unsigned char)s[len] & 0xC0) == 0x80; k++)
        len--;
    return len;
}

static const char *domain_of(const char *addr, size_t len, size_t *dlen)
{
    const char *at = NULL;

    for (size_t i = len; i > 0; i--) {
        if (addr[i - 1] == '@') {
            at = addr + i;
            break;
        }
    }
    if (at == NULL) {
        *dlen = 0;
        return addr + len;
    }
    *dlen = (size_t)(addr + len - at);
    return at;
}

static char *lower_copy(char *dst, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        dst[i] = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
    }
    dst[n] = '\0';
    return dst;
}

static void eval_init(struct eval *e, const struct rg_rules *r, const struct rg_rules_input *in)
{
    const char *sender = in->sender ? in->sender : "";
    size_t slen = strlen(sender), total = slen + 1, off = 0;
    size_t n = in->rcpts ? in->nrcpt : 0;
    char *p;

    memset(e, 0, sizeof(*e));
    e->r = r;
    e->in = in;
    for (size_t i = 0; i < n; i++)
        total += strlen(in->rcpts[i] ? in->rcpts[i] : "") + 1;
    e->arena = rg_malloc(total);
    p = lower_copy(e->arena, sender, slen);
    e->env[0] = p;
    e->envlen[0] = slen;
    e->env[1] = domain_of(p, slen, &e->envlen[1]);
    off = slen + 1;
    e->nrcpt = n;
    e->rcpt = rg_malloc((2 * n + 1) * sizeof(*e->rcpt));
    e->rcptlen = rg_malloc((2 * n + 1) * sizeof(*e->rcptlen));
    for (size_t i = 0; i < n; i++) {
        const char *a = in->rcpts[i] ? in->rcpts[i] : "";
        size_t alen = strlen(a);
        p = lower_copy(e->arena + off, a, alen);
        off += alen + 1;
        e->rcpt[i] = p;
        e->rcptlen[i] = alen;
        e->rcpt[n + i] = domain_of(p, alen, &e->rcptlen[n + i]);
    }
    if (r->nheaders > 0)
        e->hv = rg_calloc(r->nheaders, sizeof(*e->hv));
}

static void eval_free(struct eval *e)
{
    for (size_t i = 0; e->hv != NULL && i < e->r->nheaders; i++) {
        for (size_t k = 0; k < e->hv[i].n; k++)
            rg_free(e->hv[i].v[k]);
        rg_free(e->hv[i].v);
        rg_free(e->hv[i].len);
    }
    rg_free(e->hv);
    rg_free(e->rcpt);
    rg_free(e->rcptlen);
    rg_free(e->arena);
}

static void header_values(struct eval *e, size_t idx, struct values *out)
{
    struct hvals *hv = &e->hv[idx];
    const struct rg_headers *h = e->in->headers;

    if (!hv->loaded && h != NULL) {
        const char *name = e->r->headers[idx];
        size_t nlen = strlen(name), cap = 0;
        /* one pass over the fields (rg_headers_find per instance would
         * make a header repeated n times cost n^2) */
        for (size_t i = 0; i < h->n; i++) {
            const struct rg_header_field *f = &h->f[i];
            if (f->name_len != nlen || strncasecmp(f->raw, name, nlen) != 0)
                continue;
            if (hv->n == cap) {
                cap = cap ? cap * 2 : 2;
                hv->v = rg_realloc(hv->v, cap * sizeof(*hv->v));
                hv->len = rg_realloc(hv->len, cap * sizeof(*hv->len));
            }
            hv->v[hv->n] = rg_header_value(h, i);
            hv->len[hv->n] = clip_utf8(hv->v[hv->n], strlen(hv->v[hv->n]), RG_RULES_MATCH_SUBJECT);
            hv->n++;
        }
    }
    hv->loaded = 1;
    out->v = (const char *const *)hv->v;
    out->len = hv->len;
    out->n = hv->n;
}

static void field_values(struct eval *e, const struct rg_cond *c, struct values *out)
{
    switch (c->field) {
    case RG_RF_SENDER:
    case RG_RF_SENDER_DOMAIN: {
        int k = c->field == RG_RF_SENDER ? 0 : 1;
        out->v = &e->env[k];
        out->len = &e->envlen[k];
        out->n = 1;
        return;
    }
    case RG_RF_RECIPIENT:
        out->v = e->rcpt;
        out->len = e->rcptlen;
        out->n = e->nrcpt;
        return;
    case RG_RF_RECIPIENT_DOMAIN:
        out->v = e->rcpt + e->nrcpt;
        out->len = e->rcptlen + e->nrcpt;
        out->n = e->nrcpt;
        return;
    case RG_RF_HEADER:
        header_values(e, c->header, out);
        return;
    default:
        out->v = NULL;
        out->len = NULL;
        out->n = 0;
        return;
    }
}

/* 1 match, 0 no match, -1 a limit hit or another matching error (the
 * message in msg). */
static int regex_run(const struct rg_rules *r, const struct rg_regex *re, const char *s,
                     size_t len, size_t start, size_t *mstart, size_t *mend,
                     char *msg, size_t msglen)
{
    int rc;

    len = clip_utf8(s, len, RG_RULES_MATCH_SUBJECT);
    if (start > len)
        return 0;
    rc = pcre2_match(re->code, (PCRE2_SPTR)s, len, start, 0, r->md, r->mctx);
    if (rc >= 0) {
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(r->md);
        if (mstart != NULL)
            *mstart = ov[0];
        if (mend != NULL)
            *mend = ov[1];
        return 1;
    }
    if (rc == PCRE2_ERROR_NOMATCH)
        return 0;
    if (pcre2_get_error_message(rc, (PCRE2_UCHAR *)msg, msglen) < 0)
        snprintf(msg, msglen, "unknown error");
    return -1;
}

int rg_rules_regex_match(const struct rg_rules *r, const struct rg_regex *re, const char *rule,
                         const char *s, size_t len, size_t start, size_t *mstart, size_t *mend)
{
    char msg[256];
    int rc = regex_run(r, re, s, len, start, mstart, mend, msg, sizeof(msg));

    if (rc < 0) {
        /* a limit (match, depth, heap, JIT stack) or a subject that is
         * not UTF-8: the condition does not hold */
        rg_warn("%s:%d:%d: rule \"%s\": regex not matched: %s", r->file, re->line, re->col,
                rule, msg);
        return 0;
    }
    return rc;
}

static const char *field_label(const struct eval *e, const struct rg_cond *c, char *buf, size_t n)
{
    switch (c->field) {
    case RG_RF_SENDER: return "sender";
    case RG_RF_RECIPIENT: return "recipient";
    case RG_RF_SENDER_DOMAIN: return "sender-domain";
    case RG_RF_RECIPIENT_DOMAIN: return "recipient-domain";
    case RG_RF_HEADER:
        snprintf(buf, n, "header:%s", e->r->headers[c->header]);
        return buf;
    default: return "?";
    }
}

/*
 * A regex condition over all the values of its field. Each value is
 * bounded by the match limits; the number of values is not (a header
 * repeated 10,000 times fits in 1 MiB, and 10,000 limit hits took 16 s).
 * So after RG_RULES_LIMIT_HITS hits the condition stops testing further
 * values: they count as no match, like the hits themselves. One warning
 * per condition and evaluation says so.
 */
static size_t regex_leaf(struct eval *e, const struct rg_cond *c, const struct values *vs)
{
    size_t hits = 0, limit_hits = 0, tested = 0;
    char msg[256] = "", label[RG_RULES_MAX_NAME + 64];

    for (size_t i = 0; i < vs->n; i++) {
        int m = regex_run(e->r, &c->re, vs->v[i], vs->len[i], 0, NULL, NULL, msg, sizeof(msg));
        tested++;
        if (m > 0) {
            hits++;
            if (!c->every)
                break;
            continue;
        }
        if (m < 0)
            limit_hits++;
        if (c->every || limit_hits >= RG_RULES_LIMIT_HITS)
            break;
    }
    if (limit_hits > 0) {
        const char *f = field_label(e, c, label, sizeof(label));
        if (tested < vs->n && !c->every)
            rg_warn("%s:%d:%d: rule \"%s\": regex not matched on %zu value(s) of %s (%s); "
                    "the other %zu value(s) not tested: no match", e->r->file, c->re.line,
                    c->re.col, e->rule, limit_hits, f, msg, vs->n - tested);
        else
            rg_warn("%s:%d:%d: rule \"%s\": regex not matched on %zu value(s) of %s: %s",
                    e->r->file, c->re.line, c->re.col, e->rule, limit_hits, f, msg);
        if (c->every)
            return 0;
    }
    if (c->every)
        return hits == vs->n ? hits : 0;
    return hits;
}

static int match_value(struct eval *e, const struct rg_cond *c, const char *s, size_t len)
{
    switch (c->op) {
    case RG_RO_EQUALS:
        return len == c->len && memcmp(s, c->str, len) == 0;
    case RG_RO_CONTAINS:
        return c->len == 0 || memmem(s, len, c->str, c->len) != NULL;
    case RG_RO_REGEX:
        return rg_rules_regex_match(e->r, &c->re, e->rule, s, len, 0, NULL, NULL);
    case RG_RO_IN_LIST:
        return rg_list_contains(c->list, s, len);
    case RG_RO_EXISTS:
        return len > 0;
    default:
        return 0;
    }
}

static int eval_leaf(struct eval *e, const struct rg_cond *c)
{
    struct values vs;
    size_t hits = 0;

    if (c->field == RG_RF_SIZE) {
        unsigned long long size = e->in->size;
        switch (c->op) {
        case RG_RO_GT: return size > c->num;
        case RG_RO_LT: return size < c->num;
        default: return size == c->num;
        }
    }
    if (c->field == RG_RF_ENCRYPTED) {
        int enc = e->in->encrypted > 0
                  || (e->in->encrypted < 0 && e->in->is_encrypted != NULL
                      && e->in->is_encrypted(e->in->is_encrypted_ctx) > 0);
        return c->op == RG_RO_EXISTS ? enc : enc == (c->boolean != 0);
    }
    field_values(e, c, &vs);
    if (c->op == RG_RO_EXISTS && c->field == RG_RF_HEADER)
        return vs.n > 0;        /* an empty header exists */
    if (c->op == RG_RO_REGEX)
        return regex_leaf(e, c, &vs) > 0;
    for (size_t i = 0; i < vs.n; i++) {
        if (match_value(e, c, vs.v[i], vs.len[i])) {
            hits++;
            if (!c->every)
                break;
        } else if (c->every) {
            return 0;
        }
    }
    return hits > 0;
}

static int eval_cond(struct eval *e, const struct rg_cond *c)
{
    switch (c->kind) {
    case RG_RC_LEAF:
        return eval_leaf(e, c) != c->negate;
    case RG_RC_NOT:
        return !eval_cond(e, &c->sub[0]);
    case RG_RC_ALL:
        for (size_t i = 0; i < c->nsub; i++)
            if (!eval_cond(e, &c->sub[i]))
                return 0;
        return 1;
    case RG_RC_ANY:
        for (size_t i = 0; i < c->nsub; i++)
            if (eval_cond(e, &c->sub[i]))
                return 1;
        return 0;
    }
    return 0;
}

static int rule_matches(struct eval *e, const struct rg_rule *rule)
{
    e->rule = rule->name;
    if (rule->nconds == 0)
        return 1;
    for (size_t i = 0; i < rule->nconds; i++) {
        int m = eval_cond(e, &rule->conds[i]);
        if (rule->match_any && m)
            return 1;
        if (!rule->match_any && !m)
            return 0;
    }
    return !rule->match_any;
}

static void add_tags(const struct rg_rules *r, struct rg_rules_result *res, const struct rg_rule *rule)
{
    if (rule->ntags == 0)
        return;
    if (res->tags == NULL)
        res->tags = rg_malloc(r->ntags_total * sizeof(*res->tags));
    for (size_t i = 0; i < rule->ntags; i++)
        res->tags[res->ntags++] = &rule->tags[i];
}

static void decide(struct rg_rules_result *res, const struct rg_rule *rule)
{
    res->action = rule->action;
    res->rule = rule->name;
    if (rule->action == RG_ACT_REJECT)
        snprintf(res->reply, sizeof(res->reply), "%s",
                 rule->reply ? rule->reply : "550 5.7.1 Message rejected by policy");
    else if (rule->action == RG_ACT_TEMPFAIL)
        snprintf(res->reply, sizeof(res->reply), "%s",
                 rule->reply ? rule->reply : "451 4.7.1 Message deferred by policy");
    else
        res->reply[0] = '\0';
}

void rg_rules_eval(const struct rg_rules *r, const struct rg_rules_input *in,
                   struct rg_rules_result *res)
{
    struct eval e;
    int decided = 0;

    memset(res, 0, sizeof(*res));
    res->action = RG_ACT_FORWARD;
    res->rule = "{}";
    if (r == NULL || r->empty)
        return;
    eval_init(&e, r, in);
    for (size_t i = 0; i < r->nrules; i++) {
        const struct rg_rule *rule = &r->rules[i];
        if (!rule_matches(&e, rule))
            continue;
        add_tags(r, res, rule);
        /* a "continue" rule's action stands unless a later match
         * decides; one without an action only tags */
        if (rule->has_action) {
            decide(res, rule);
            decided = 1;
        }
        if (!rule->cont)
            break;
    }
    if (!decided) {
        decide(res, &r->def);
        add_tags(r, res, &r->def);
    }
    eval_free(&e);
}

void rg_rules_result_free(struct rg_rules_result *res)
{
    if (res == NULL)
        return;
    res->tags = rg_free(res->tags);
    res->ntags = 0;
}

/* ------------------------------------------------------------------ */
/* tags                                                                */

static size_t utf8_len(unsigned char c)
{
    if (c < 0xC0)
        return 1;
    if (c < 0xE0)
        return 2;
    if (c < 0xF0)
        return 3;
    return 4;
}

static int is_blank(char c)
{
    return c == ' ' || c == '\t';
}

/* Subject prefix: not added when the subject already contains it (a
 * reply to a tagged message keeps one tag); a space separates it from
 * the subject unless it ends in white space. */
static int subject_prefix(struct rg_headers *h, const char *prefix)
{
    size_t plen = strlen(prefix), core = plen;
    long i = rg_headers_find(h, "Subject", 0);
    char *v, *nv, *want;
    int changed = 0;

    while (core > 0 && is_blank(prefix[core - 1]))
        core--;
    if (i < 0) {
        want = rg_strndup(prefix, core);
        rg_headers_add(h, "Subject", want);
        rg_free(want);
        return 1;
    }
    v = rg_header_value(h, (size_t)i);
    want = rg_strndup(prefix, core);
    if (strstr(v, want) == NULL) {
        int sep = v[0] != '\0' && core == plen;
        nv = rg_sprintf("%s%s%s", v[0] ? prefix : want, sep ? " " : "", v);
        rg_headers_replace(h, (size_t)i, nv);
        rg_free(nv);
        changed = 1;
    }
    rg_free(want);
    rg_free(v);
    return changed;
}

/* Remove every match of the tag's regex from the first Subject; white
 * space left at either end is trimmed. A limit hit changes nothing. */
static int subject_remove(struct rg_headers *h, const struct rg_tag *t)
{
    long i = rg_headers_find(h, "Subject", 0);
    char *v, *out;
    size_t len, pos = 0, copied = 0, o = 0, b, e;
    int removed = 0;

    if (i < 0)
        return 0;
    v = rg_header_value(h, (size_t)i);
    len = strlen(v);
    out = rg_malloc(len + 1);
    while (pos <= len) {
        size_t s0, e0;
        if (!rg_rules_regex_match(t->rules, &t->re, t->rule, v, len, pos, &s0, &e0))
            break;
        if (s0 < copied)        /* \K tricks: never step backwards */
            s0 = copied;
        if (e0 < s0)
            e0 = s0;
        if (e0 == s0) {         /* an empty match removes nothing: step on */
            if (s0 >= len)
                break;
            pos = s0 + utf8_len((unsigned char)v[s0]);
            continue;
        }
        memcpy(out + o, v + copied, s0 - copied);
        o += s0 - copied;
        copied = pos = e0;
        removed = 1;
    }
    if (removed) {
        memcpy(out + o, v + copied, len - copied);
        o += len - copied;
        out[o] = '\0';
        for (b = 0; b < o && is_blank(out[b]); b++)
            ;
        for (e = o; e > b && is_blank(out[e - 1]); e--)
            ;
        out[e] = '\0';
        rg_headers_replace(h, (size_t)i, out + b);
    }
    rg_free(out);
    rg_free(v);
    return removed;
}

int rg_rules_apply_tags(const struct rg_rules_result *res, struct rg_headers *h)
{
    int changes = 0;

    for (size_t i = 0; i < res->ntags; i++) {
        const struct rg_tag *t = res->tags[i];
        switch (t->kind) {
        case RG_TAG_ADD_HEADER:
            rg_headers_add(h, t->name, t->value);
            changes++;
            break;
        case RG_TAG_SET_HEADER:
            rg_headers_set(h, t->name, t->value);
            changes++;
            break;
        case RG_TAG_REMOVE_HEADER:
            if (rg_headers_find(h, t->name, 0) >= 0) {
                rg_headers_remove(h, t->name);
                changes++;
            }
            break;
        case RG_TAG_SUBJECT_PREFIX:
            changes += subject_prefix(h, t->value);
            break;
        case RG_TAG_SUBJECT_REMOVE:
            changes += subject_remove(h, t);
            break;
        }
    }
    return changes;
}
