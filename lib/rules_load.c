/*
 * rules_load.c - read a rule set (regigate-rules(5)): yajl parses the
 * JSON into a small tree whose nodes carry their line and column, then the
 * tree is validated and compiled in one pass that reports every problem
 * at the position of the offending key or value.
 *
 * Positions: yajl is fed the whole buffer in one call, so inside a
 * callback yajl_get_bytes_consumed() is the offset just past the token
 * that produced it. The token's start is found by skipping, from the end
 * of the previous token, white space and at most one ':' or ',' (the only
 * tokens that have no callback). Lines and columns are counted by a
 * cursor that only moves forward: columns count UTF-8 characters, 1-based.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <yajl/yajl_parse.h>

/* PCRE2's JIT code reads ahead in ways memcheck cannot follow (false
 * reports of uninitialised reads): under valgrind, match interpreted. */
#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#define RG_UNDER_VALGRIND() (RUNNING_ON_VALGRIND != 0)
#endif
#endif
#ifndef RG_UNDER_VALGRIND
#define RG_UNDER_VALGRIND() 0
#endif

#include "header.h"
#include "lists.h"
#include "log.h"
#include "mem.h"
#include "rules.h"
#include "rules_int.h"

/* ------------------------------------------------------------------ */
/* diagnostics                                                         */

/* Diagnostics are collected during the load and handed to the caller
 * at the end, sorted by position, so that they read top to bottom
 * whatever order the checks ran in. A list file's diagnostics sort at
 * the position of the value that names the list. */
struct pending {
    enum rg_diag_severity sev;
    char *file;                 /* NULL: the rule file */
    int line, col;
    int key_line, key_col;      /* sort key */
    size_t seq;
    char *msg;
};

struct dctx {
    rg_rules_diag diag;
    void *ctx;
    const char *file;
    int nerrors;
    int stopped;            /* RG_RULES_MAX_ERRORS reached: quiet from now on */
    int ref_line, ref_col;  /* list being loaded: where it is named */
    const char *list_file;  /* its path while it is loaded, else NULL */
    struct pending *p;
    size_t np, capp;
};

static void add_pending(struct dctx *d, enum rg_diag_severity sev, int line, int col,
                        int key_line, int key_col, const char *msg)
{
    struct pending *p;

    if (d->np == d->capp) {
        d->capp = d->capp ? d->capp * 2 : 16;
        d->p = rg_realloc(d->p, d->capp * sizeof(*d->p));
    }
    p = &d->p[d->np];
    p->sev = sev;
    p->file = d->list_file ? rg_strdup(d->list_file) : NULL;
    p->line = line;
    p->col = col;
    p->key_line = key_line;
    p->key_col = key_col;
    p->seq = d->np++;
    p->msg = rg_strdup(msg);
}

static int cmp_pending(const void *a, const void *b)
{
    const struct pending *x = a, *y = b;

    if (x->key_line != y->key_line)
        return x->key_line < y->key_line ? -1 : 1;
    if (x->key_col != y->key_col)
        return x->key_col < y->key_col ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* Hand every collected diagnostic to the caller, in order. */
static void flush_diags(struct dctx *d)
{
    if (d->np > 1)
        qsort(d->p, d->np, sizeof(*d->p), cmp_pending);
    for (size_t i = 0; i < d->np; i++) {
        struct pending *p = &d->p[i];
        if (d->diag != NULL)
            d->diag(d->ctx, p->sev, p->file ? p->file : d->file, p->line, p->col, p->msg);
        rg_free(p->file);
        rg_free(p->msg);
    }
    d->p = rg_free(d->p);
    d->np = d->capp = 0;
}

static void vreport(struct dctx *d, enum rg_diag_severity sev, int line, int col,
                    const char *fmt, va_list ap) __attribute__((format(printf, 5, 0)));
static void vreport(struct dctx *d, enum rg_diag_severity sev, int line, int col,
                    const char *fmt, va_list ap)
{
    char msg[1024];

    if (sev == RG_DIAG_ERROR)
        d->nerrors++;
    if (d->stopped)
        return;
    if (sev == RG_DIAG_ERROR && d->nerrors > RG_RULES_MAX_ERRORS) {
        d->stopped = 1;
        d->list_file = NULL;
        add_pending(d, RG_DIAG_ERROR, 0, 0, INT_MAX, INT_MAX, "too many errors, giving up");
        return;
    }
    vsnprintf(msg, sizeof(msg), fmt, ap);
    if (d->list_file != NULL)
        add_pending(d, sev, line, col, d->ref_line, d->ref_col, msg);
    else
        add_pending(d, sev, line, col, line, col, msg);
}

static void err_at(struct dctx *d, int line, int col, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void err_at(struct dctx *d, int line, int col, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vreport(d, RG_DIAG_ERROR, line, col, fmt, ap);
    va_end(ap);
}

static void warn_at(struct dctx *d, int line, int col, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void warn_at(struct dctx *d, int line, int col, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vreport(d, RG_DIAG_WARNING, line, col, fmt, ap);
    va_end(ap);
}

/* A user string made safe and short for a message: control characters,
 * '"' and '\' escaped, at most about 60 bytes (cut at a character). */
struct qbuf {
    char s[100];
};

static const char *q(struct qbuf *b, const char *s, size_t len)
{
    size_t o = 0;

    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if ((o >= 60 && (c & 0xC0) != 0x80) || o >= 90) {
            memcpy(b->s + o, "...", 4);
            return b->s;
        }
        if (c < 0x20 || c == 0x7f || c == '"' || c == '\\')
            o += (size_t)snprintf(b->s + o, sizeof(b->s) - o, "\\x%02x", c);
        else
            b->s[o++] = (char)c;
    }
    b->s[o] = '\0';
    return b->s;
}

/* ------------------------------------------------------------------ */
/* JSON tree with positions                                            */

enum jtype { JT_NULL, JT_BOOL, JT_NUMBER, JT_STRING, JT_OBJECT, JT_ARRAY };

struct jnode;

struct jmember {
    char *key;
    size_t klen;
    int line, col;
    struct jnode *val;
};

struct jnode {
    enum jtype type;
    int line, col;
    int b;                      /* JT_BOOL */
    char *s;                    /* JT_STRING (decoded), JT_NUMBER (text); NUL-terminated */
    size_t len;
    struct jmember *m;          /* JT_OBJECT */
    struct jnode **a;           /* JT_ARRAY */
    size_t n, cap;
};

static void jfree(struct jnode *n)
{
    if (n == NULL)
        return;
    for (size_t i = 0; i < n->n; i++) {
        if (n->type == JT_OBJECT) {
            rg_free(n->m[i].key);
            jfree(n->m[i].val);
        } else if (n->type == JT_ARRAY) {
            jfree(n->a[i]);
        }
    }
    rg_free(n->m);
    rg_free(n->a);
    rg_free(n->s);
    rg_free(n);
}

struct jparser {
    const char *buf;
    size_t len;
    yajl_handle h;
    struct dctx *d;
    size_t prev_end;            /* end of the previous token with a callback */
    size_t cur_off;             /* position cursor */
    int cur_line, cur_col;
    int completing;             /* inside yajl_complete_parse: offsets restart */
    size_t base;                /* offset of what yajl was given (after a BOM) */
    struct jnode *root;
    struct jnode *stack[RG_RULES_MAX_JSON_DEPTH];
    int depth;
    char *key;                  /* pending object key */
    size_t klen;
    int kline, kcol;
};

static int is_ws(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static size_t token_start(const struct jparser *p)
{
    size_t o = p->prev_end;

    while (o < p->len && is_ws(p->buf[o]))
        o++;
    if (o < p->len && (p->buf[o] == ':' || p->buf[o] == ',')) {
        o++;
        while (o < p->len && is_ws(p->buf[o]))
            o++;
    }
    return o;
}

static void pos_at(struct jparser *p, size_t off, int *line, int *col)
{
    if (off > p->len)
        off = p->len;
    if (off < p->cur_off) {     /* never happens; be correct anyway */
        p->cur_off = 0;
        p->cur_line = p->cur_col = 1;
    }
    while (p->cur_off < off) {
        unsigned char c = (unsigned char)p->buf[p->cur_off++];
        if (c == '\n') {
            p->cur_line++;
            p->cur_col = 1;
        } else if ((c & 0xC0) != 0x80) {
            p->cur_col++;
        }
    }
    *line = p->cur_line;
    *col = p->cur_col;
}

static int token_done(struct jparser *p)
{
    p->prev_end = p->completing ? p->len : p->base + yajl_get_bytes_consumed(p->h);
    return 1;
}

static struct jnode *add_node(struct jparser *p, enum jtype t)
{
    struct jnode *n = rg_calloc(1, sizeof(*n));

    n->type = t;
    pos_at(p, token_start(p), &n->line, &n->col);
    if (p->depth == 0) {
        p->root = n;            /* yajl allows one top-level value */
        return n;
    }
    struct jnode *parent = p->stack[p->depth - 1];
    if (parent->n == parent->cap) {
        parent->cap = parent->cap ? parent->cap * 2 : 4;
        if (parent->type == JT_OBJECT)
            parent->m = rg_realloc(parent->m, parent->cap * sizeof(*parent->m));
        else
            parent->a = rg_realloc(parent->a, parent->cap * sizeof(*parent->a));
    }
    if (parent->type == JT_OBJECT) {
        struct jmember *m = &parent->m[parent->n++];
        m->key = p->key;
        m->klen = p->klen;
        m->line = p->kline;
        m->col = p->kcol;
        m->val = n;
        p->key = NULL;
    } else {
        parent->a[parent->n++] = n;
    }
    return n;
}

static int cb_null(void *ctx)
{
    struct jparser *p = ctx;

    add_node(p, JT_NULL);
    return token_done(p);
}

static int cb_boolean(void *ctx, int b)
{
    struct jparser *p = ctx;

    add_node(p, JT_BOOL)->b = b;
    return token_done(p);
}

static int cb_number(void *ctx, const char *s, size_t len)
{
    struct jparser *p = ctx;
    struct jnode *n = add_node(p, JT_NUMBER);

    n->s = rg_strndup(s, len);
    n->len = len;
    return token_done(p);
}

static int cb_string(void *ctx, const unsigned char *s, size_t len)
{
    struct jparser *p = ctx;
    struct jnode *n = add_node(p, JT_STRING);

    /* not rg_strndup: the string may hold \u0000 */
    n->s = rg_malloc(len + 1);
    memcpy(n->s, s, len);
    n->s[len] = '\0';
    n->len = len;
    return token_done(p);
}

static int push(struct jparser *p, enum jtype t)
{
    struct jnode *n = add_node(p, t);

    if (p->depth == RG_RULES_MAX_JSON_DEPTH) {
        err_at(p->d, n->line, n->col, "JSON nested deeper than %d levels", RG_RULES_MAX_JSON_DEPTH);
        return 0;
    }
    p->stack[p->depth++] = n;
    return token_done(p);
}

static int cb_start_map(void *ctx)
{
    return push(ctx, JT_OBJECT);
}

static int cb_start_array(void *ctx)
{
    return push(ctx, JT_ARRAY);
}

static int cb_end(void *ctx)
{
    struct jparser *p = ctx;

    p->depth--;
    return token_done(p);
}

static int cb_map_key(void *ctx, const unsigned char *s, size_t len)
{
    struct jparser *p = ctx;
    const struct jnode *obj = p->stack[p->depth - 1];
    struct qbuf qb;

    pos_at(p, token_start(p), &p->kline, &p->kcol);
    rg_free(p->key);
    p->key = rg_malloc(len + 1);
    memcpy(p->key, s, len);
    p->key[len] = '\0';
    p->klen = len;
    /* objects of a rule set have a handful of keys; past 64, whatever
     * the keys are they are reported as unknown */
    for (size_t i = 0; i < obj->n && i < 64; i++) {
        if (obj->m[i].klen == len && memcmp(obj->m[i].key, s, len) == 0) {
            err_at(p->d, p->kline, p->kcol, "duplicate key \"%s\" (first at line %d)",
                   q(&qb, (const char *)s, len), obj->m[i].line);
            break;
        }
    }
    return token_done(p);
}

static void *y_malloc(void *ctx, size_t n)
{
    (void)ctx;
    return rg_malloc(n);
}

static void *y_realloc(void *ctx, void *ptr, size_t n)
{
    (void)ctx;
    return rg_realloc(ptr, n);
}

static void y_free(void *ctx, void *ptr)
{
    (void)ctx;
    rg_free(ptr);
}

/* yajl's message ("lexical error: invalid char in json text.\n") without
 * its prefix and trailing dot. */
static void syntax_error(struct jparser *p)
{
    unsigned char *e = yajl_get_error(p->h, 0, (const unsigned char *)p->buf, p->len);
    const char *m = (const char *)e;
    int lexical = strncmp(m, "lexical error: ", 15) == 0;
    char msg[300];
    size_t off, n;
    int line, col;

    if (lexical)
        m += 15;
    else if (strncmp(m, "parse error: ", 13) == 0)
        m += 13;
    snprintf(msg, sizeof(msg), "%s", m);
    n = strlen(msg);
    while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == '.' || msg[n - 1] == ' '))
        msg[--n] = '\0';
    if (p->completing || strstr(msg, "premature EOF") != NULL) {
        off = p->len;
    } else {
        /* a parse error is detected after the offending token: when it
         * is a one-character token, that is it; else it starts where
         * the previous good token ended. A lexical error: at the token
         * the lexer was reading. */
        size_t c = p->base + yajl_get_bytes_consumed(p->h);
        if (!lexical && c > 0 && c <= p->len && p->buf[c - 1] != '\0'
            && memchr("{}[]:,", p->buf[c - 1], 6) != NULL)
            off = c - 1;
        else
            off = token_start(p);
    }
    pos_at(p, off, &line, &col);
    err_at(p->d, line, col, "JSON syntax error: %s", msg);
    yajl_free_error(p->h, e);
}

static struct jnode *json_parse(const char *buf, size_t len, struct dctx *d)
{
    static const yajl_callbacks cbs = {
        cb_null, cb_boolean, NULL, NULL, cb_number, cb_string,
        cb_start_map, cb_map_key, cb_end, cb_start_array, cb_end,
    };
    yajl_alloc_funcs af = { y_malloc, y_realloc, y_free, NULL };
    struct jparser *p = rg_calloc(1, sizeof(*p));
    struct jnode *root;
    yajl_status st;
    size_t start = 0;

    p->buf = buf;
    p->len = len;
    p->d = d;
    p->cur_line = p->cur_col = 1;
    /* RFC 8259 lets a parser ignore a byte order mark */
    if (len >= 3 && memcmp(buf, "\xEF\xBB\xBF", 3) == 0)
        start = p->base = p->prev_end = p->cur_off = 3;
    p->h = yajl_alloc(&cbs, &af, p);
    if (p->h == NULL)
        rg_fatal("yajl_alloc failed");
    st = yajl_parse(p->h, (const unsigned char *)buf + start, len - start);
    if (st == yajl_status_ok) {
        p->completing = 1;
        st = yajl_complete_parse(p->h);
    }
    if (st == yajl_status_error)
        syntax_error(p);
    root = p->root;
    if (st != yajl_status_ok) {
        jfree(root);
        root = NULL;
    }
    yajl_free(p->h);
    rg_free(p->key);
    rg_free(p);
    return root;
}

/* ------------------------------------------------------------------ */
/* validation helpers                                                  */

static const char *jtype_name(enum jtype t)
{
    switch (t) {
    case JT_NULL: return "null";
    case JT_BOOL: return "a boolean";
    case JT_NUMBER: return "a number";
    case JT_STRING: return "a string";
    case JT_OBJECT: return "an object";
    case JT_ARRAY: return "an array";
    }
    return "?";
}

static int key_is(const struct jmember *m, const char *k)
{
    size_t n = strlen(k);

    return m->klen == n && memcmp(m->key, k, n) == 0;
}

/* The first member called key, or NULL. */
static const struct jmember *member(const struct jnode *obj, const char *key)
{
    for (size_t i = 0; i < obj->n; i++)
        if (key_is(&obj->m[i], key))
            return &obj->m[i];
    return NULL;
}

static const struct jnode *val(const struct jnode *obj, const char *key)
{
    const struct jmember *m = member(obj, key);

    return m ? m->val : NULL;
}

/* Report every key of obj not in allowed (NULL-terminated). */
static void check_keys(struct dctx *d, const struct jnode *obj, const char *const *allowed,
                       const char *where)
{
    struct qbuf qb;

    for (size_t i = 0; i < obj->n; i++) {
        size_t k;
        for (k = 0; allowed[k] != NULL; k++)
            if (key_is(&obj->m[i], allowed[k]))
                break;
        if (allowed[k] == NULL)
            err_at(d, obj->m[i].line, obj->m[i].col, "unknown key \"%s\" in %s",
                   q(&qb, obj->m[i].key, obj->m[i].klen), where);
    }
}

/* Is n of type t? Otherwise report "KEY must be ..., not ...". */
static int want(struct dctx *d, const struct jnode *n, enum jtype t, const char *what)
{
    if (n->type == t)
        return 1;
    err_at(d, n->line, n->col, "%s must be %s, not %s", what,
           t == JT_BOOL ? "true or false" : jtype_name(t), jtype_name(n->type));
    return 0;
}

static int has_nul(const struct jnode *n)
{
    return memchr(n->s, '\0', n->len) != NULL;
}

static int has_ctl_nl(const struct jnode *n)
{
    return memchr(n->s, '\0', n->len) != NULL || memchr(n->s, '\r', n->len) != NULL
        || memchr(n->s, '\n', n->len) != NULL;
}

/* ------------------------------------------------------------------ */
/* building the compiled rule set                                      */

/* A set of names with a value each (rule names, header names, list
 * names), so that a rule file with many of them stays linear. */
struct nameset {
    struct nsent {
        char *name;             /* NULL: empty slot */
        size_t val;
    } *e;
    size_t cap, n;              /* cap: 0 or a power of two */
    int icase;                  /* ASCII case-insensitive (header names) */
};

static uint64_t ns_hash(const struct nameset *s, const char *name)
{
    uint64_t h = 0xcbf29ce484222325ULL;

    for (; *name; name++) {
        unsigned char c = (unsigned char)*name;
        if (s->icase && c >= 'A' && c <= 'Z')
            c = (unsigned char)(c - 'A' + 'a');
        h = (h ^ c) * 0x100000001b3ULL;
    }
    return h;
}

static struct nsent *ns_slot(const struct nameset *s, const char *name)
{
    size_t i = (size_t)ns_hash(s, name) & (s->cap - 1);

    while (s->e[i].name != NULL
           && (s->icase ? strcasecmp(s->e[i].name, name) : strcmp(s->e[i].name, name)) != 0)
        i = (i + 1) & (s->cap - 1);
    return &s->e[i];
}

/* The value of name if it is in the set (1), else add it with val (0). */
static int ns_put(struct nameset *s, const char *name, size_t val, size_t *found)
{
    struct nsent *e;

    if (2 * (s->n + 1) > s->cap) {
        struct nameset bigger = { NULL, s->cap ? 2 * s->cap : 16, 0, s->icase };
        bigger.e = rg_calloc(bigger.cap, sizeof(*bigger.e));
        for (size_t i = 0; i < s->cap; i++)
            if (s->e[i].name != NULL)
                *ns_slot(&bigger, s->e[i].name) = s->e[i];
        rg_free(s->e);
        s->e = bigger.e;
        s->cap = bigger.cap;
    }
    e = ns_slot(s, name);
    if (e->name != NULL) {
        *found = e->val;
        return 1;
    }
    e->name = rg_strdup(name);
    e->val = val;
    s->n++;
    return 0;
}

static void ns_free(struct nameset *s)
{
    for (size_t i = 0; i < s->cap; i++)
        rg_free(s->e[i].name);
    s->e = rg_free(s->e);
    s->cap = s->n = 0;
}

struct listref {
    char *name;
    struct rg_list *list;       /* NULL: failed (reported once) */
};

struct builder {
    struct rg_rules *r;
    struct dctx *d;
    const char *lists_dir;
    struct listref *lists;
    size_t nlists, caplists;
    pcre2_compile_context *cctx;
    struct nameset rule_names;      /* -> index into r->rules */
    struct nameset header_names;    /* -> index into r->headers */
    struct nameset list_names;      /* -> index into lists */
};

static const char *const action_names[] = {
    [RG_ACT_FORWARD] = "forward", [RG_ACT_ENCRYPT] = "encrypt", [RG_ACT_DECRYPT] = "decrypt",
    [RG_ACT_REJECT] = "reject", [RG_ACT_TEMPFAIL] = "tempfail", [RG_ACT_DISCARD] = "discard",
};

const char *rg_action_name(enum rg_action a)
{
    if ((size_t)a < sizeof(action_names) / sizeof(action_names[0]))
        return action_names[a];
    return "?";
}

static const struct {
    const char *name;
    enum rg_rfield f;
} field_names[] = {
    { "sender", RG_RF_SENDER }, { "recipient", RG_RF_RECIPIENT },
    { "sender-domain", RG_RF_SENDER_DOMAIN }, { "recipient-domain", RG_RF_RECIPIENT_DOMAIN },
    { "size", RG_RF_SIZE }, { "encrypted", RG_RF_ENCRYPTED },
};

static const struct {
    const char *name;
    enum rg_rop op;
} op_names[] = {
    { "equals", RG_RO_EQUALS }, { "contains", RG_RO_CONTAINS }, { "regex", RG_RO_REGEX },
    { "in-list", RG_RO_IN_LIST }, { "exists", RG_RO_EXISTS }, { "gt", RG_RO_GT }, { "lt", RG_RO_LT },
};

static int is_envelope(enum rg_rfield f)
{
    return f == RG_RF_SENDER || f == RG_RF_RECIPIENT || f == RG_RF_SENDER_DOMAIN
        || f == RG_RF_RECIPIENT_DOMAIN;
}

static int op_valid_for(enum rg_rfield f, enum rg_rop op)
{
    switch (f) {
    case RG_RF_SIZE:
        return op == RG_RO_EQUALS || op == RG_RO_GT || op == RG_RO_LT;
    case RG_RF_ENCRYPTED:
        return op == RG_RO_EQUALS || op == RG_RO_EXISTS;
    default:
        return op != RG_RO_GT && op != RG_RO_LT;
    }
}

static int compile_regex(struct builder *b, const struct jnode *n, struct rg_regex *re)
{
    uint32_t opts = PCRE2_UTF | PCRE2_NEVER_BACKSLASH_C;
    int errcode;
    PCRE2_SIZE erroff;

#ifdef PCRE2_MATCH_INVALID_UTF
    /* header values may hold bytes that are not UTF-8 */
    opts |= PCRE2_MATCH_INVALID_UTF;
#endif
    if (n->len > RG_RULES_MAX_REGEX) {
        err_at(b->d, n->line, n->col, "regex longer than %d bytes", RG_RULES_MAX_REGEX);
        return -1;
    }
    re->code = pcre2_compile((PCRE2_SPTR)n->s, n->len, opts, &errcode, &erroff, b->cctx);
    if (re->code == NULL) {
        PCRE2_UCHAR msg[256];
        if (pcre2_get_error_message(errcode, msg, sizeof(msg)) < 0)
            snprintf((char *)msg, sizeof(msg), "error %d", errcode);
        err_at(b->d, n->line, n->col, "bad regex: %s at offset %zu", (const char *)msg,
               (size_t)erroff);
        return -1;
    }
    /* JIT where the platform has it; without, the interpreter is used */
    if (!RG_UNDER_VALGRIND())
        (void)pcre2_jit_compile(re->code, PCRE2_JIT_COMPLETE);
    re->line = n->line;
    re->col = n->col;
    return 0;
}

static void list_diag(void *ctx, enum rg_diag_severity sev, const char *file, int line, int col,
                      const char *msg)
{
    struct dctx *d = ctx;

    (void)file;                 /* d->list_file */
    if (sev == RG_DIAG_ERROR)
        err_at(d, line, col, "%s", msg);
    else
        warn_at(d, line, col, "%s", msg);
}

/* The list named by the string n, loaded on first use. */
static const struct rg_list *use_list(struct builder *b, const struct jnode *n)
{
    struct qbuf qb;
    struct stat st;
    char *path;
    struct rg_list *l;

    if (has_nul(n) || !rg_list_name_valid(n->s)) {
        err_at(b->d, n->line, n->col, "invalid list name \"%s\": only ASCII letters, digits, "
               "'-' and '_', at most %d", q(&qb, n->s, n->len), RG_LIST_NAME_MAX);
        return NULL;
    }
    {
        size_t i;
        if (ns_put(&b->list_names, n->s, b->nlists, &i))
            return b->lists[i].list;
    }
    if (b->lists_dir == NULL) {
        err_at(b->d, n->line, n->col, "list \"%s\": no lists directory given", n->s);
        l = NULL;
        goto out;
    }
    path = rg_sprintf("%s/%s", b->lists_dir, n->s);
    if (stat(path, &st) < 0) {
        err_at(b->d, n->line, n->col, "list \"%s\": cannot read %s: %s", n->s, path, strerror(errno));
        l = NULL;
    } else if (!S_ISREG(st.st_mode)) {
        err_at(b->d, n->line, n->col, "list \"%s\": %s is not a regular file", n->s, path);
        l = NULL;
    } else {
        b->d->list_file = path;
        b->d->ref_line = n->line;
        b->d->ref_col = n->col;
        l = rg_list_load(path, n->s, list_diag, b->d);
        b->d->list_file = NULL;
    }
    rg_free(path);
out:
    if (b->nlists == b->caplists) {
        b->caplists = b->caplists ? b->caplists * 2 : 4;
        b->lists = rg_realloc(b->lists, b->caplists * sizeof(*b->lists));
    }
    b->lists[b->nlists].name = rg_strdup(n->s);
    b->lists[b->nlists].list = l;
    b->nlists++;
    return l;
}

static size_t use_header(struct builder *b, const char *name)
{
    struct rg_rules *r = b->r;
    size_t i;

    if (ns_put(&b->header_names, name, r->nheaders, &i))
        return i;
    r->headers = rg_realloc(r->headers, (r->nheaders + 1) * sizeof(*r->headers));
    r->headers[r->nheaders] = rg_strdup(name);
    return r->nheaders++;
}

static void lower(char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] >= 'A' && s[i] <= 'Z')
            s[i] = (char)(s[i] - 'A' + 'a');
}

static int parse_field(struct builder *b, const struct jnode *n, struct rg_cond *c)
{
    struct qbuf qb;

    if (!has_nul(n) && strncmp(n->s, "header:", 7) == 0) {
        const char *name = n->s + 7;
        if (!rg_header_name_valid(name)) {
            err_at(b->d, n->line, n->col, "invalid header name \"%s\" in the field \"%s\"",
                   q(&qb, name, strlen(name)), n->s);
            return -1;
        }
        c->field = RG_RF_HEADER;
        c->header = use_header(b, name);
        return 0;
    }
    for (size_t i = 0; i < sizeof(field_names) / sizeof(field_names[0]); i++) {
        if (!has_nul(n) && strcmp(n->s, field_names[i].name) == 0) {
            c->field = field_names[i].f;
            return 0;
        }
    }
    err_at(b->d, n->line, n->col, "unknown field \"%s\"", q(&qb, n->s, n->len));
    return -1;
}

static int parse_op(struct builder *b, const struct jnode *n, struct rg_cond *c)
{
    struct qbuf qb;

    for (size_t i = 0; i < sizeof(op_names) / sizeof(op_names[0]); i++) {
        if (!has_nul(n) && strcmp(n->s, op_names[i].name) == 0) {
            c->op = op_names[i].op;
            return 0;
        }
    }
    err_at(b->d, n->line, n->col, "unknown op \"%s\"", q(&qb, n->s, n->len));
    return -1;
}

static const char *field_name(const struct rg_rules *r, const struct rg_cond *c)
{
    for (size_t i = 0; i < sizeof(field_names) / sizeof(field_names[0]); i++)
        if (field_names[i].f == c->field)
            return field_names[i].name;
    (void)r;
    return "header:";
}

static const char *op_name(enum rg_rop op)
{
    for (size_t i = 0; i < sizeof(op_names) / sizeof(op_names[0]); i++)
        if (op_names[i].op == op)
            return op_names[i].name;
    return "?";
}

/* The value of a leaf condition whose field and op are known. */
static int compile_value(struct builder *b, const struct jnode *cn, const struct jnode *v,
                         struct rg_cond *c)
{
    struct dctx *d = b->d;
    const char *fname = c->field == RG_RF_HEADER ? val(cn, "field")->s : field_name(b->r, c);

    if (c->op == RG_RO_EXISTS) {
        if (v != NULL) {
            err_at(d, v->line, v->col, "the op \"exists\" takes no \"value\"");
            return -1;
        }
        return 0;
    }
    if (v == NULL) {
        err_at(d, cn->line, cn->col, "condition on \"%s\" with op \"%s\" has no \"value\"",
               fname, op_name(c->op));
        return -1;
    }
    if (c->field == RG_RF_SIZE) {
        char *end;
        if (!want(d, v, JT_NUMBER, "\"value\" of \"size\""))
            return -1;
        errno = 0;
        c->num = strtoull(v->s, &end, 10);
        if (v->s[0] == '-' || *end != '\0' || errno == ERANGE) {
            err_at(d, v->line, v->col, "\"value\" of \"size\" must be a whole number of bytes, "
                   "not %s", v->s);
            return -1;
        }
        return 0;
    }
    if (c->field == RG_RF_ENCRYPTED) {
        if (!want(d, v, JT_BOOL, "\"value\" of \"encrypted\""))
            return -1;
        c->boolean = v->b;
        return 0;
    }
    if (!want(d, v, JT_STRING, "\"value\""))
        return -1;
    switch (c->op) {
    case RG_RO_REGEX:
        return compile_regex(b, v, &c->re);
    case RG_RO_IN_LIST:
        c->list = use_list(b, v);
        return c->list ? 0 : -1;
    default:
        c->str = rg_malloc(v->len + 1);
        memcpy(c->str, v->s, v->len + 1);
        c->len = v->len;
        /* the envelope is matched in lower case */
        if (is_envelope(c->field))
            lower(c->str, c->len);
        return 0;
    }
}

static int compile_cond(struct builder *b, const struct jnode *n, int level, struct rg_cond *c);

static int compile_leaf(struct builder *b, const struct jnode *n, struct rg_cond *c)
{
    static const char *const keys[] = { "field", "op", "value", "not", "every", NULL };
    struct dctx *d = b->d;
    const struct jnode *f = val(n, "field"), *op = val(n, "op"), *v = val(n, "value");
    const struct jnode *neg = val(n, "not"), *every = val(n, "every");
    int bad = 0;

    c->kind = RG_RC_LEAF;
    check_keys(d, n, keys, "a condition");
    if (f == NULL) {
        err_at(d, n->line, n->col, "condition has no \"field\"");
        bad = 1;
    } else if (!want(d, f, JT_STRING, "\"field\"") || parse_field(b, f, c) < 0) {
        bad = 1;
        f = NULL;
    }
    if (op == NULL) {
        err_at(d, n->line, n->col, "condition has no \"op\"");
        bad = 1;
    } else if (!want(d, op, JT_STRING, "\"op\"") || parse_op(b, op, c) < 0) {
        bad = 1;
        op = NULL;
    }
    if (neg != NULL) {
        if (want(d, neg, JT_BOOL, "\"not\""))
            c->negate = neg->b;
        else
            bad = 1;
    }
    if (every != NULL) {
        if (!want(d, every, JT_BOOL, "\"every\"")) {
            bad = 1;
        } else if (f != NULL && c->field != RG_RF_RECIPIENT && c->field != RG_RF_RECIPIENT_DOMAIN
                   && c->field != RG_RF_HEADER) {
            err_at(d, every->line, every->col, "\"every\" is only for the fields recipient, "
                   "recipient-domain and header:NAME");
            bad = 1;
        } else {
            c->every = every->b;
        }
    }
    if (op == NULL)
        return -1;
    if (f == NULL) {
        /* still check what can be checked without the field */
        if (v != NULL && v->type == JT_STRING && c->op == RG_RO_REGEX)
            compile_regex(b, v, &c->re);
        else if (v != NULL && v->type == JT_STRING && c->op == RG_RO_IN_LIST)
            use_list(b, v);
        return -1;
    }
    if (!op_valid_for(c->field, c->op)) {
        err_at(d, op->line, op->col, "the op \"%s\" is not valid for the field \"%s\"", op->s,
               f->s);
        return -1;
    }
    if (compile_value(b, n, v, c) < 0)
        bad = 1;
    return bad ? -1 : 0;
}

static int compile_conds(struct builder *b, const struct jnode *arr, int level,
                         struct rg_cond **out, size_t *nout)
{
    int bad = 0;

    *out = arr->n ? rg_calloc(arr->n, sizeof(**out)) : NULL;
    *nout = arr->n;
    for (size_t i = 0; i < arr->n && !b->d->stopped; i++)
        if (compile_cond(b, arr->a[i], level, &(*out)[i]) < 0)
            bad = 1;
    return bad ? -1 : 0;
}

static int compile_group(struct builder *b, const struct jnode *n, int level, struct rg_cond *c)
{
    struct dctx *d = b->d;
    const struct jmember *m = NULL;

    for (size_t i = 0; i < n->n; i++) {
        const struct jmember *k = &n->m[i];
        if (!key_is(k, "all") && !key_is(k, "any") && !key_is(k, "not"))
            continue;
        if (m != NULL) {
            err_at(d, k->line, k->col, "a condition group has exactly one of \"all\", \"any\" "
                   "and \"not\"");
            return -1;
        }
        m = k;
    }
    {
        static const char *const keys[] = { "all", "any", "not", NULL };
        check_keys(d, n, keys, "a condition");
    }
    if (m == NULL) {
        if (n->n == 0)
            err_at(d, n->line, n->col, "empty condition: expected \"field\", \"all\", \"any\" "
                   "or \"not\"");
        return -1;
    }
    if (key_is(m, "not")) {
        c->kind = RG_RC_NOT;
        if (!want(d, m->val, JT_OBJECT, "\"not\" (as a group)"))
            return -1;
        c->sub = rg_calloc(1, sizeof(*c->sub));
        c->nsub = 1;
        return compile_cond(b, m->val, level + 1, c->sub);
    }
    c->kind = key_is(m, "all") ? RG_RC_ALL : RG_RC_ANY;
    if (!want(d, m->val, JT_ARRAY, key_is(m, "all") ? "\"all\"" : "\"any\""))
        return -1;
    if (m->val->n == 0) {
        err_at(d, m->val->line, m->val->col, "\"%s\" needs at least one condition",
               c->kind == RG_RC_ALL ? "all" : "any");
        return -1;
    }
    return compile_conds(b, m->val, level + 1, &c->sub, &c->nsub);
}

static int compile_cond(struct builder *b, const struct jnode *n, int level, struct rg_cond *c)
{
    if (!want(b->d, n, JT_OBJECT, "a condition"))
        return -1;
    if (level > RG_RULES_MAX_NESTING) {
        err_at(b->d, n->line, n->col, "conditions nested deeper than %d levels",
               RG_RULES_MAX_NESTING);
        return -1;
    }
    if (member(n, "field") || member(n, "op") || member(n, "value"))
        return compile_leaf(b, n, c);
    return compile_group(b, n, level, c);
}

/* A tag's text: a string without CR, LF or NUL, not too long. */
static int tag_text(struct builder *b, const struct jnode *n, const char *what, int nonempty)
{
    if (!want(b->d, n, JT_STRING, what))
        return -1;
    if (has_ctl_nl(n)) {
        err_at(b->d, n->line, n->col, "%s contains CR, LF or NUL", what);
        return -1;
    }
    if (n->len > RG_RULES_MAX_TAG_VALUE) {
        err_at(b->d, n->line, n->col, "%s longer than %d bytes", what, RG_RULES_MAX_TAG_VALUE);
        return -1;
    }
    if (nonempty && strspn(n->s, " \t") == n->len) {
        err_at(b->d, n->line, n->col, "%s is empty", what);
        return -1;
    }
    return 0;
}

static int tag_header_name(struct builder *b, const struct jnode *n, char **out)
{
    struct qbuf qb;

    if (!want(b->d, n, JT_STRING, "a header name"))
        return -1;
    if (has_nul(n) || !rg_header_name_valid(n->s)) {
        err_at(b->d, n->line, n->col, "invalid header name \"%s\"", q(&qb, n->s, n->len));
        return -1;
    }
    *out = rg_strdup(n->s);
    return 0;
}

static int compile_tag(struct builder *b, const struct jnode *n, struct rg_tag *t)
{
    struct dctx *d = b->d;
    const struct jmember *m;
    struct qbuf qb;

    if (!want(d, n, JT_OBJECT, "a tag"))
        return -1;
    if (n->n != 1) {
        err_at(d, n->line, n->col, "a tag is an object with exactly one key");
        return -1;
    }
    m = &n->m[0];
    if (key_is(m, "add-header") || key_is(m, "set-header")) {
        const char *what = key_is(m, "add-header") ? "\"add-header\"" : "\"set-header\"";
        t->kind = key_is(m, "add-header") ? RG_TAG_ADD_HEADER : RG_TAG_SET_HEADER;
        if (!want(d, m->val, JT_ARRAY, what))
            return -1;
        if (m->val->n != 2) {
            err_at(d, m->val->line, m->val->col, "%s takes [NAME, VALUE]", what);
            return -1;
        }
        if (tag_header_name(b, m->val->a[0], &t->name) < 0)
            return -1;
        if (tag_text(b, m->val->a[1], "the header value", 0) < 0)
            return -1;
        t->value = rg_strdup(m->val->a[1]->s);
        return 0;
    }
    if (key_is(m, "remove-header")) {
        t->kind = RG_TAG_REMOVE_HEADER;
        return tag_header_name(b, m->val, &t->name);
    }
    if (key_is(m, "subject-prefix")) {
        t->kind = RG_TAG_SUBJECT_PREFIX;
        if (tag_text(b, m->val, "\"subject-prefix\"", 1) < 0)
            return -1;
        t->value = rg_strdup(m->val->s);
        return 0;
    }
    if (key_is(m, "subject-remove")) {
        t->kind = RG_TAG_SUBJECT_REMOVE;
        if (!want(d, m->val, JT_STRING, "\"subject-remove\""))
            return -1;
        return compile_regex(b, m->val, &t->re);
    }
    err_at(d, m->line, m->col, "unknown tag \"%s\"", q(&qb, m->key, m->klen));
    return -1;
}

static int compile_tags(struct builder *b, const struct jnode *n, struct rg_rule *rule)
{
    int bad = 0;

    if (!want(b->d, n, JT_ARRAY, "\"tags\""))
        return -1;
    rule->tags = n->n ? rg_calloc(n->n, sizeof(*rule->tags)) : NULL;
    rule->ntags = n->n;
    b->r->ntags_total += n->n;
    for (size_t i = 0; i < n->n && !b->d->stopped; i++) {
        rule->tags[i].rules = b->r;
        rule->tags[i].rule = rule->name;
        if (compile_tag(b, n->a[i], &rule->tags[i]) < 0)
            bad = 1;
    }
    return bad ? -1 : 0;
}

/* "550 5.7.1 text": code of class cls, enhanced code of the same class,
 * printable ASCII, fits one reply line. */
static int reply_ok(const char *s, size_t len, char cls)
{
    size_t i;
    int parts = 0;

    if (len < 9 || len > 510 || s[0] != cls || s[1] < '0' || s[1] > '9' || s[2] < '0'
        || s[2] > '9' || s[3] != ' ' || s[4] != cls)
        return 0;
    for (size_t k = 0; k < len; k++)
        if ((unsigned char)s[k] < 0x20 || (unsigned char)s[k] > 0x7e)
            return 0;
    /* X.Y.Z with 1-3 digits per part after the class digit */
    i = 5;
    while (parts < 2) {
        size_t digits = 0;
        if (i >= len || s[i] != '.')
            return 0;
        i++;
        while (i < len && s[i] >= '0' && s[i] <= '9' && digits < 4) {
            i++;
            digits++;
        }
        if (digits == 0 || digits > 3)
            return 0;
        parts++;
    }
    return i == len || s[i] == ' ';
}

static int compile_action(struct builder *b, const struct jnode *obj, struct rg_rule *rule,
                          int required)
{
    struct dctx *d = b->d;
    const struct jnode *a = val(obj, "action"), *reply = val(obj, "reply");
    struct qbuf qb;
    size_t i;

    if (a == NULL) {
        if (required) {
            err_at(d, obj->line, obj->col, "rule \"%s\" has no \"action\"", rule->name);
            return -1;
        }
        if (reply != NULL) {
            err_at(d, reply->line, reply->col, "\"reply\" without an \"action\"");
            return -1;
        }
        return 0;
    }
    if (!want(d, a, JT_STRING, "\"action\""))
        return -1;
    for (i = 0; i < sizeof(action_names) / sizeof(action_names[0]); i++)
        if (!has_nul(a) && strcmp(a->s, action_names[i]) == 0)
            break;
    if (i == sizeof(action_names) / sizeof(action_names[0])) {
        err_at(d, a->line, a->col, "unknown action \"%s\"", q(&qb, a->s, a->len));
        return -1;
    }
    rule->has_action = 1;
    rule->action = (enum rg_action)i;
    if (reply == NULL)
        return 0;
    if (!want(d, reply, JT_STRING, "\"reply\""))
        return -1;
    if (rule->action != RG_ACT_REJECT && rule->action != RG_ACT_TEMPFAIL) {
        err_at(d, reply->line, reply->col, "\"reply\" is only for the actions reject and tempfail");
        return -1;
    }
    if (rule->action == RG_ACT_REJECT && !reply_ok(reply->s, reply->len, '5')) {
        err_at(d, reply->line, reply->col, "the reply of \"reject\" must be a 5xx reply with an "
               "enhanced status code, e.g. \"550 5.7.1 text\"");
        return -1;
    }
    if (rule->action == RG_ACT_TEMPFAIL && !reply_ok(reply->s, reply->len, '4')) {
        err_at(d, reply->line, reply->col, "the reply of \"tempfail\" must be a 4xx reply with an "
               "enhanced status code, e.g. \"451 4.7.1 text\"");
        return -1;
    }
    rule->reply = rg_strdup(reply->s);
    return 0;
}

static int compile_rule(struct builder *b, const struct jnode *n, size_t idx)
{
    static const char *const keys[] = {
        "name", "description", "match", "conditions", "action", "reply", "continue", "tags", NULL,
    };
    struct dctx *d = b->d;
    struct rg_rule *rule = &b->r->rules[idx];
    const struct jnode *name, *match, *conds, *cont, *tags, *desc;
    struct qbuf qb;
    int bad = 0;

    if (!want(d, n, JT_OBJECT, "a rule"))
        return -1;
    rule->line = n->line;
    rule->col = n->col;
    check_keys(d, n, keys, "a rule");
    name = val(n, "name");
    if (name == NULL) {
        err_at(d, n->line, n->col, "rule has no \"name\"");
        bad = 1;
    } else if (!want(d, name, JT_STRING, "\"name\"")) {
        bad = 1;
    } else {
        size_t k;
        for (k = 0; k < name->len; k++)
            if ((unsigned char)name->s[k] < 0x20 || name->s[k] == 0x7f)
                break;
        if (name->len == 0 || name->len > RG_RULES_MAX_NAME || k < name->len) {
            err_at(d, name->line, name->col, "a rule name has 1 to %d characters and no control "
                   "characters", RG_RULES_MAX_NAME);
            bad = 1;
        } else if (strcmp(name->s, "default") == 0 || strcmp(name->s, "{}") == 0) {
            err_at(d, name->line, name->col, "the rule name \"%s\" is reserved", name->s);
            bad = 1;
        } else {
            size_t other;
            rule->name = rg_strdup(name->s);
            if (ns_put(&b->rule_names, name->s, idx, &other)) {
                err_at(d, name->line, name->col, "duplicate rule name \"%s\" (first at line %d)",
                       q(&qb, name->s, name->len), b->r->rules[other].line);
                bad = 1;
            }
        }
    }
    if (rule->name == NULL)
        rule->name = rg_sprintf("#%zu", idx + 1);
    if ((desc = val(n, "description")) != NULL && !want(d, desc, JT_STRING, "\"description\""))
        bad = 1;
    if ((match = val(n, "match")) != NULL) {
        if (!want(d, match, JT_STRING, "\"match\"")) {
            bad = 1;
        } else if (strcmp(match->s, "any") == 0 && !has_nul(match)) {
            rule->match_any = 1;
        } else if (strcmp(match->s, "all") != 0 || has_nul(match)) {
            err_at(d, match->line, match->col, "\"match\" must be \"all\" or \"any\", not \"%s\"",
                   q(&qb, match->s, match->len));
            bad = 1;
        }
    }
    if ((cont = val(n, "continue")) != NULL) {
        if (want(d, cont, JT_BOOL, "\"continue\""))
            rule->cont = cont->b;
        else
            bad = 1;
    }
    if ((conds = val(n, "conditions")) != NULL) {
        if (!want(d, conds, JT_ARRAY, "\"conditions\""))
            bad = 1;
        else if (compile_conds(b, conds, 1, &rule->conds, &rule->nconds) < 0)
            bad = 1;
    }
    if (compile_action(b, n, rule, !rule->cont) < 0)
        bad = 1;
    if ((tags = val(n, "tags")) != NULL && compile_tags(b, tags, rule) < 0)
        bad = 1;
    return bad ? -1 : 0;
}

/* Does the rule match every message (no conditions)? Only meaningful
 * when "conditions" itself was valid. */
static int catch_all(const struct jnode *n)
{
    const struct jnode *c;

    if (n->type != JT_OBJECT)
        return 0;
    c = val(n, "conditions");
    return c == NULL || (c->type == JT_ARRAY && c->n == 0);
}

static int is_continue(const struct jnode *n)
{
    const struct jnode *c = n->type == JT_OBJECT ? val(n, "continue") : NULL;

    return c != NULL && c->type == JT_BOOL && c->b;
}

static void compile_default(struct builder *b, const struct jnode *n)
{
    static const char *const keys[] = { "action", "reply", "tags", "description", NULL };
    struct rg_rule *def = &b->r->def;
    const struct jnode *desc;

    if (!want(b->d, n, JT_OBJECT, "\"default\""))
        return;
    def->line = n->line;
    def->col = n->col;
    check_keys(b->d, n, keys, "\"default\"");
    if ((desc = val(n, "description")) != NULL)
        want(b->d, desc, JT_STRING, "\"description\"");
    compile_action(b, n, def, 0);
    if (val(n, "tags") != NULL)
        compile_tags(b, val(n, "tags"), def);
}

static void compile_root(struct builder *b, const struct jnode *root)
{
    static const char *const keys[] = { "rules", "default", "description", NULL };
    struct dctx *d = b->d;
    const struct jnode *rules, *def, *desc;
    long catchall = -1;         /* the first rule that stops evaluation for every message */
    size_t n;

    if (root->type != JT_OBJECT) {
        err_at(d, root->line, root->col, "a rule set is a JSON object (the empty rule set is {}), "
               "not %s", jtype_name(root->type));
        return;
    }
    check_keys(d, root, keys, "the rule set");
    if ((desc = val(root, "description")) != NULL)
        want(d, desc, JT_STRING, "\"description\"");
    rules = val(root, "rules");
    def = val(root, "default");
    b->r->empty = (rules == NULL || (rules->type == JT_ARRAY && rules->n == 0)) && def == NULL;
    b->r->def.name = rg_strdup(b->r->empty ? "{}" : "default");
    if (rules != NULL && want(d, rules, JT_ARRAY, "\"rules\"")) {
        n = rules->n;
        if (n > RG_RULES_MAX_RULES) {
            const struct jnode *extra = rules->a[RG_RULES_MAX_RULES];
            err_at(d, extra->line, extra->col, "more than %d rules", RG_RULES_MAX_RULES);
            n = RG_RULES_MAX_RULES;
        }
        b->r->rules = n ? rg_calloc(n, sizeof(*b->r->rules)) : NULL;
        b->r->nrules = n;
        for (size_t i = 0; i < n && !d->stopped; i++) {
            const struct jnode *rn = rules->a[i];
            compile_rule(b, rn, i);
            if (catchall >= 0 && (size_t)catchall + 1 == i) {
                const struct rg_rule *ca = &b->r->rules[catchall];
                err_at(d, rn->line, rn->col, "rule \"%s\" is unreachable: the rule \"%s\" "
                       "(line %d) before it has no conditions and matches every message",
                       b->r->rules[i].name, ca->name, ca->line);
            }
            if (catchall < 0 && catch_all(rn) && !is_continue(rn))
                catchall = (long)i;
        }
    }
    if (def != NULL) {
        compile_default(b, def);
        if (catchall >= 0)
            warn_at(d, def->line, def->col, "\"default\" is never used: the rule \"%s\" (line %d) "
                    "matches every message", b->r->rules[catchall].name,
                    b->r->rules[catchall].line);
    }
}

/* ------------------------------------------------------------------ */
/* freeing                                                             */

static void cond_free(struct rg_cond *c)
{
    for (size_t i = 0; i < c->nsub; i++)
        cond_free(&c->sub[i]);
    rg_free(c->sub);
    rg_free(c->str);
    if (c->re.code != NULL)
        pcre2_code_free(c->re.code);
}

static void rule_free(struct rg_rule *rule)
{
    for (size_t i = 0; i < rule->nconds; i++)
        cond_free(&rule->conds[i]);
    rg_free(rule->conds);
    for (size_t i = 0; i < rule->ntags; i++) {
        rg_free(rule->tags[i].name);
        rg_free(rule->tags[i].value);
        if (rule->tags[i].re.code != NULL)
            pcre2_code_free(rule->tags[i].re.code);
    }
    rg_free(rule->tags);
    rg_free(rule->reply);
    rg_free(rule->name);
}

struct rg_rules *rg_rules_free(struct rg_rules *r)
{
    if (r == NULL)
        return NULL;
    for (size_t i = 0; i < r->nrules; i++)
        rule_free(&r->rules[i]);
    rg_free(r->rules);
    rule_free(&r->def);
    for (size_t i = 0; i < r->nheaders; i++)
        rg_free(r->headers[i]);
    rg_free(r->headers);
    for (size_t i = 0; i < r->nlists; i++)
        rg_list_free(r->lists[i]);
    rg_free(r->lists);
    rg_free(r->list_names);
    if (r->md != NULL)
        pcre2_match_data_free(r->md);
    if (r->mctx != NULL)
        pcre2_match_context_free(r->mctx);
    if (r->jit != NULL)
        pcre2_jit_stack_free(r->jit);
    rg_free(r->source);
    rg_free(r->file);
    return rg_free(r);
}

/* ------------------------------------------------------------------ */
/* public                                                              */

static void setup_matching(struct rg_rules *r)
{
    r->mctx = pcre2_match_context_create(NULL);
    if (r->mctx == NULL)
        rg_fatal("pcre2_match_context_create: out of memory");
    pcre2_set_match_limit(r->mctx, RG_RULES_MATCH_LIMIT);
    pcre2_set_depth_limit(r->mctx, RG_RULES_DEPTH_LIMIT);
    pcre2_set_heap_limit(r->mctx, RG_RULES_HEAP_LIMIT_KIB);
    /* JIT's own stack, bounded; without one it uses 32 KiB on the
     * machine stack. NULL (no JIT support) is fine. */
    r->jit = pcre2_jit_stack_create(32 * 1024, RG_RULES_JIT_STACK_MAX, NULL);
    if (r->jit != NULL)
        pcre2_jit_stack_assign(r->mctx, NULL, r->jit);
    /* one pair: only the whole match is used */
    r->md = pcre2_match_data_create(1, NULL);
    if (r->md == NULL)
        rg_fatal("pcre2_match_data_create: out of memory");
}

static int only_white_space(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (!is_ws(s[i]))
            return 0;
    return 1;
}

static struct rg_rules *load(struct dctx *dc, const char *json, size_t len, const char *lists_dir)
{
    struct builder b;
    struct rg_rules *r;
    struct jnode *root;

    if (len > RG_RULES_MAX_FILE_SIZE) {
        err_at(dc, 0, 0, "the rule file is larger than %lu MiB",
               RG_RULES_MAX_FILE_SIZE / (1024 * 1024));
        return NULL;
    }
    if (only_white_space(json, len)) {
        err_at(dc, 0, 0, "the rule file is empty (the empty rule set is {})");
        return NULL;
    }
    root = json_parse(json, len, dc);
    if (root == NULL)
        return NULL;

    memset(&b, 0, sizeof(b));
    r = rg_calloc(1, sizeof(*r));
    b.r = r;
    b.d = dc;
    b.lists_dir = lists_dir;
    b.header_names.icase = 1;
    b.cctx = pcre2_compile_context_create(NULL);
    if (b.cctx == NULL)
        rg_fatal("pcre2_compile_context_create: out of memory");
    compile_root(&b, root);
    jfree(root);
    pcre2_compile_context_free(b.cctx);
    ns_free(&b.rule_names);
    ns_free(&b.header_names);
    ns_free(&b.list_names);

    /* the loaded lists move into the rule set */
    r->lists = b.nlists ? rg_calloc(b.nlists, sizeof(*r->lists)) : NULL;
    r->list_names = rg_calloc(b.nlists + 1, sizeof(*r->list_names));
    for (size_t i = 0; i < b.nlists; i++) {
        rg_free(b.lists[i].name);
        if (b.lists[i].list != NULL) {
            r->lists[r->nlists] = b.lists[i].list;
            r->list_names[r->nlists] = rg_list_name(b.lists[i].list);
            r->nlists++;
        }
    }
    rg_free(b.lists);

    if (dc->nerrors > 0)
        return rg_rules_free(r);
    r->source = rg_malloc(len + 1);
    memcpy(r->source, json, len);
    r->source[len] = '\0';
    r->source_len = len;
    r->file = rg_strdup(dc->file);
    setup_matching(r);
    return r;
}

/* The whole file (or stdin for "-"), at most RG_RULES_MAX_FILE_SIZE + 1
 * bytes so that a larger one is recognised without reading all of it. */
static char *slurp(const char *path, size_t *len, struct dctx *d)
{
    int fd = strcmp(path, "-") == 0 ? 0 : open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    struct stat st;
    size_t cap = 65536, off = 0, max = RG_RULES_MAX_FILE_SIZE + 1;
    char *buf;

    if (fd < 0) {
        err_at(d, 0, 0, "cannot open: %s", strerror(errno));
        return NULL;
    }
    if (fstat(fd, &st) == 0) {
        if (S_ISDIR(st.st_mode)) {
            err_at(d, 0, 0, "cannot read: %s", strerror(EISDIR));
            goto fail_fd;
        }
        if (S_ISREG(st.st_mode) && (uintmax_t)st.st_size > RG_RULES_MAX_FILE_SIZE) {
            err_at(d, 0, 0, "the rule file is larger than %lu MiB",
                   RG_RULES_MAX_FILE_SIZE / (1024 * 1024));
            goto fail_fd;
        }
        if (S_ISREG(st.st_mode))
            cap = (size_t)st.st_size + 1;
    }
    buf = rg_malloc(cap + 1);
    for (;;) {
        ssize_t r;
        if (off == cap) {
            if (cap >= max)
                break;
            cap = cap * 2 > max ? max : cap * 2;
            buf = rg_realloc(buf, cap + 1);
        }
        r = read(fd, buf + off, cap - off);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            err_at(d, 0, 0, "cannot read: %s", strerror(errno));
            rg_free(buf);
            goto fail_fd;
        }
        if (r == 0)
            break;
        off += (size_t)r;
    }
    if (fd != 0)
        close(fd);
    buf[off] = '\0';
    *len = off;
    return buf;
fail_fd:
    if (fd != 0)
        close(fd);
    return NULL;
}

struct rg_rules *rg_rules_load_buffer(const char *json, size_t len, const char *name,
                                      const char *lists_dir, rg_rules_diag diag, void *ctx)
{
    struct dctx d;
    struct rg_rules *r;

    memset(&d, 0, sizeof(d));
    d.diag = diag;
    d.ctx = ctx;
    d.file = name ? name : "-";
    r = load(&d, json, len, lists_dir);
    flush_diags(&d);
    return r;
}

struct rg_rules *rg_rules_load_file(const char *path, const char *lists_dir,
                                    rg_rules_diag diag, void *ctx)
{
    struct dctx d;
    size_t len = 0;
    char *buf;
    struct rg_rules *r = NULL;

    memset(&d, 0, sizeof(d));
    d.diag = diag;
    d.ctx = ctx;
    d.file = path;
    buf = slurp(path, &len, &d);
    if (buf != NULL)
        r = load(&d, buf, len, lists_dir);
    rg_free(buf);
    flush_diags(&d);
    return r;
}

void rg_rules_diag_log(void *ctx, enum rg_diag_severity sev, const char *file,
                       int line, int col, const char *msg)
{
    (void)ctx;
    if (line > 0 && sev == RG_DIAG_ERROR)
        rg_error("%s:%d:%d: %s", file, line, col, msg);
    else if (line > 0)
        rg_warn("%s:%d:%d: %s", file, line, col, msg);
    else if (sev == RG_DIAG_ERROR)
        rg_error("%s: %s", file, msg);
    else
        rg_warn("%s: %s", file, msg);
}

int rg_rules_empty(const struct rg_rules *r)
{
    return r == NULL || r->empty;
}

int rg_rules_uses(const struct rg_rules *r, enum rg_action a)
{
    if (r == NULL)
        return a == RG_ACT_FORWARD;
    if (r->def.has_action && r->def.action == a)
        return 1;
    if (!r->def.has_action && a == RG_ACT_FORWARD)
        return 1;
    for (size_t i = 0; i < r->nrules; i++)
        if (r->rules[i].has_action && r->rules[i].action == a)
            return 1;
    return 0;
}

const char *rg_rules_source(const struct rg_rules *r)
{
    return r ? r->source : "{}";
}

size_t rg_rules_count(const struct rg_rules *r)
{
    return r != NULL ? r->nrules : 0;
}

const char *const *rg_rules_lists(const struct rg_rules *r)
{
    static const char *const none[] = { NULL };

    return r ? r->list_names : none;
}
