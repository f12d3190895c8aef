/*
 * provider_json.c - typed parsing and building of the provider protocol's
 * JSON bodies; see provider_json.h and doc/provider-protocol.md.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yajl/yajl_gen.h>
#include <yajl/yajl_tree.h>

#include "mem.h"
#include "provider_json.h"

/* ---- values ---------------------------------------------------------- */

static int addr_byte_ok(unsigned char c)
{
    if (c <= 0x20 || c == 0x7f)
        return 0;
    return strchr("\"(),:;<>[\\]", c) == NULL;
}

int rg_pj_address_normalize(const char *in, size_t len, char *out)
{
    const char *at = NULL;

    if (len < 3 || len > RG_PJ_ADDR_MAX)
        return -1;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)in[i];
        if (c == '@') {
            if (at)
                return -1;
            at = in + i;
            continue;
        }
        if (!addr_byte_ok(c))
            return -1;
    }
    if (at == NULL)
        return -1;
    size_t local = (size_t)(at - in), domain = len - local - 1;
    if (local < 1 || local > 64 || domain < 1 || domain > 253)
        return -1;
    if (in[local + 1] == '.' || in[len - 1] == '.')
        return -1;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)in[i];
        out[i] = (char)((c >= 'A' && c <= 'Z') ? c + ('a' - 'A') : c);
    }
    out[len] = 0;
    return 0;
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int rg_pj_hex_decode(const char *hex, size_t hexlen, uint8_t *out, size_t n)
{
    if (hexlen != 2 * n)
        return -1;
    for (size_t i = 0; i < n; i++) {
        int hi = hexval((unsigned char)hex[2 * i]), lo = hexval((unsigned char)hex[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return -1;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return 0;
}

void rg_pj_hex_encode(const uint8_t *in, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[2 * n] = 0;
}

/*
 * One pass over the raw text before yajl sees it: nesting depth (yajl's
 * tree is freed recursively), the number of elements of each array or
 * object (yajl's tree grows them one element per realloc: 500,000 numbers
 * in a 1 MiB answer cost seconds, minutes under a sanitizer), and no
 * "\u0000" inside strings (yajl_tree hands out C strings, which would
 * silently end at such a NUL).
 */
static int scan_ok(const char *s, size_t n, int max)
{
    long count[64];     /* separators seen in each open container */
    int depth = 0, in_str = 0;

    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (in_str) {
            if (c == '\\') {
                if (i + 1 < n && s[i + 1] == 'u' && i + 5 < n && memcmp(s + i + 2, "0000", 4) == 0)
                    return 0;
                i++;
            } else if (c == '"') {
                in_str = 0;
            }
        } else if (c == '"') {
            in_str = 1;
        } else if (c == '[' || c == '{') {
            if (++depth > max)
                return 0;
            if (depth <= 64)
                count[depth - 1] = 0;
        } else if (c == ']' || c == '}') {
            /* a closer without an opener is yajl's to refuse; below 0 the
             * depth would index count[] before its start */
            if (depth > 0)
                depth--;
        } else if (c == ',' && depth > 0 && depth <= 64) {
            if (++count[depth - 1] >= RG_PJ_MAX_ELEMENTS)
                return 0;
        }
    }
    return 1;
}

int rg_pj_depth_ok(const char *s, size_t n, int max)
{
    return scan_ok(s, n, max);
}

/* Parse body into a tree whose root is an object, or NULL with *why. */
static yajl_val parse_object(const char *body, size_t len, const char **why)
{
    char errbuf[128];
    char *text;
    yajl_val root;

    if (body == NULL || len == 0) {
        *why = "empty body";
        return NULL;
    }
    if (memchr(body, 0, len) != NULL) {
        *why = "NUL byte in body";
        return NULL;
    }
    if (!scan_ok(body, len, RG_PJ_MAX_DEPTH)) {
        *why = "JSON nested too deeply, too many elements, or contains \\u0000";
        return NULL;
    }
    text = rg_strndup(body, len);
    root = yajl_tree_parse(text, errbuf, sizeof(errbuf));
    rg_free(text);
    if (root == NULL) {
        *why = "malformed JSON";
        return NULL;
    }
    if (!YAJL_IS_OBJECT(root)) {
        yajl_tree_free(root);
        *why = "JSON body is not an object";
        return NULL;
    }
    return root;
}

/* The member of object o named key, of type t (yajl_t_any: any), or NULL. */
static yajl_val member(yajl_val o, const char *key, yajl_type t)
{
    const char *path[] = { key, NULL };
    return yajl_tree_get(o, path, t);
}

static int get_str(yajl_val o, const char *key, char *out, size_t outlen)
{
    yajl_val v = member(o, key, yajl_t_string);
    if (v == NULL || strlen(v->u.string) >= outlen)
        return -1;
    strcpy(out, v->u.string);
    return 0;
}

static int get_hex(yajl_val o, const char *key, uint8_t *out, size_t n)
{
    yajl_val v = member(o, key, yajl_t_string);
    if (v == NULL)
        return -1;
    return rg_pj_hex_decode(v->u.string, strlen(v->u.string), out, n);
}

static int get_bool(yajl_val o, const char *key, int *out)
{
    yajl_val v = member(o, key, yajl_t_any);
    if (YAJL_IS_TRUE(v))
        *out = 1;
    else if (YAJL_IS_FALSE(v))
        *out = 0;
    else
        return -1;
    return 0;
}

static int get_int(yajl_val o, const char *key, long long *out)
{
    yajl_val v = member(o, key, yajl_t_number);
    if (!YAJL_IS_INTEGER(v))
        return -1;
    *out = YAJL_GET_INTEGER(v);
    return 0;
}

static int get_addr(yajl_val o, const char *key, char *out)
{
    yajl_val v = member(o, key, yajl_t_string);
    if (v == NULL)
        return -1;
    return rg_pj_address_normalize(v->u.string, strlen(v->u.string), out);
}

/* ---- responses ------------------------------------------------------- */

int rg_pj_parse_error(const char *body, size_t len, struct rg_pj_error *out, const char **why)
{
    yajl_val root, err;

    memset(out, 0, sizeof(*out));
    if ((root = parse_object(body, len, why)) == NULL)
        return -1;
    err = member(root, "error", yajl_t_object);
    if (err == NULL || get_str(err, "code", out->code, sizeof(out->code)) < 0) {
        yajl_tree_free(root);
        memset(out, 0, sizeof(*out));
        *why = "no error.code string";
        return -1;
    }
    /* the message is for logs only: keep a truncated copy, never fail on it */
    yajl_val m = member(err, "message", yajl_t_string);
    if (m)
        snprintf(out->message, sizeof(out->message), "%s", m->u.string);
    yajl_tree_free(root);
    return 0;
}

int rg_pj_parse_health(const char *body, size_t len, struct rg_pj_health *out, const char **why)
{
    yajl_val root;
    char status[16];
    int rc = -1;

    memset(out, 0, sizeof(*out));
    if ((root = parse_object(body, len, why)) == NULL)
        return -1;
    if (get_str(root, "status", status, sizeof(status)) < 0 || strcmp(status, "ok") != 0)
        *why = "status is not \"ok\"";
    else if (get_int(root, "protocol", &out->protocol) < 0)
        *why = "no integer protocol";
    else if (get_int(root, "gateway", &out->gateway) < 0)
        *why = "no integer gateway";
    else
        rc = 0;
    yajl_tree_free(root);
    return rc;
}

int rg_pj_parse_account(const char *body, size_t len, struct rg_pj_account *out, const char **why)
{
    yajl_val root;
    int rc = -1;

    memset(out, 0, sizeof(*out));
    if ((root = parse_object(body, len, why)) == NULL)
        return -1;
    if (get_addr(root, "address", out->address) < 0)
        *why = "no valid address";
    else if (get_bool(root, "exists", &out->exists) < 0)
        *why = "no boolean exists";
    else
        rc = 0;
    yajl_tree_free(root);
    return rc;
}

int rg_pj_parse_txn(const char *body, size_t len, struct rg_pj_txn *out, const char **why)
{
    yajl_val root;
    int rc = -1;

    memset(out, 0, sizeof(*out));
    if ((root = parse_object(body, len, why)) == NULL)
        return -1;
    if (get_hex(root, "id", out->id, sizeof(out->id)) < 0)
        *why = "id is not 32 hex digits";
    else if (get_hex(root, "kek", out->kek, sizeof(out->kek)) < 0)
        *why = "kek is not 64 hex digits";
    else {
        if (get_bool(root, "replayed", &out->replayed) < 0)
            out->replayed = 0;
        rc = 0;
    }
    yajl_tree_free(root);
    if (rc < 0)
        memset(out, 0, sizeof(*out));
    return rc;
}

int rg_pj_parse_key(const char *body, size_t len, struct rg_pj_key *out, const char **why)
{
    yajl_val root;
    int rc = -1;

    memset(out, 0, sizeof(*out));
    if ((root = parse_object(body, len, why)) == NULL)
        return -1;
    if (get_hex(root, "id", out->id, sizeof(out->id)) < 0)
        *why = "id is not 32 hex digits";
    else if (get_addr(root, "recipient", out->recipient) < 0)
        *why = "no valid recipient";
    else if (get_hex(root, "kek", out->kek, sizeof(out->kek)) < 0)
        *why = "kek is not 64 hex digits";
    else
        rc = 0;
    yajl_tree_free(root);
    if (rc < 0)
        memset(out, 0, sizeof(*out));
    return rc;
}

static int parse_event(yajl_val e, struct rg_pj_event *ev, const char **why)
{
    if (!YAJL_IS_OBJECT(e)) {
        *why = "event is not an object";
        return -1;
    }
    if (get_str(e, "type", ev->type, sizeof(ev->type)) < 0) {
        *why = "event without type";
        return -1;
    }
    if (get_str(e, "time", ev->time, sizeof(ev->time)) < 0) {
        *why = "event without time";
        return -1;
    }
    if (get_int(e, "gateway", &ev->gateway) < 0) {
        *why = "event without gateway";
        return -1;
    }
    if (get_str(e, "ip", ev->ip, sizeof(ev->ip)) < 0) {
        *why = "event without ip";
        return -1;
    }
    if (member(e, "recipient", yajl_t_any) && get_addr(e, "recipient", ev->recipient) < 0) {
        *why = "event with an invalid recipient";
        return -1;
    }
    return 0;
}

int rg_pj_parse_events(const char *body, size_t len, struct rg_pj_events *out, const char **why)
{
    yajl_val root, arr;

    memset(out, 0, sizeof(*out));
    if ((root = parse_object(body, len, why)) == NULL)
        return -1;
    if (get_hex(root, "id", out->id, sizeof(out->id)) < 0) {
        *why = "id is not 32 hex digits";
        goto fail;
    }
    arr = member(root, "events", yajl_t_array);
    if (arr == NULL) {
        *why = "no events array";
        goto fail;
    }
    if (arr->u.array.len > RG_PJ_MAX_EVENTS) {
        *why = "too many events";
        goto fail;
    }
    out->ev = rg_calloc(arr->u.array.len, sizeof(*out->ev));
    for (size_t i = 0; i < arr->u.array.len; i++) {
        if (parse_event(arr->u.array.values[i], &out->ev[i], why) < 0)
            goto fail;
        out->n++;
    }
    if (get_bool(root, "truncated", &out->truncated) < 0)
        out->truncated = 0;
    yajl_tree_free(root);
    return 0;
fail:
    yajl_tree_free(root);
    rg_pj_events_free(out);
    return -1;
}

void rg_pj_events_free(struct rg_pj_events *ev)
{
    ev->ev = rg_free(ev->ev);
    ev->n = 0;
}

/* ---- create-transaction request -------------------------------------- */

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

enum rg_pj_create_status rg_pj_parse_create(const char *body, size_t len,
                                            struct rg_pj_create *out, const char **why)
{
    yajl_val root, v;
    size_t n, j;

    memset(out, 0, sizeof(*out));
    if ((root = parse_object(body, len, why)) == NULL)
        return RG_PJ_CREATE_MALFORMED;
    if (get_addr(root, "sender", out->sender) < 0) {
        *why = "sender: missing or not a valid address";
        goto invalid;
    }
    v = member(root, "recipients", yajl_t_array);
    if (v == NULL || v->u.array.len == 0) {
        *why = "recipients: missing or not a non-empty array";
        goto invalid;
    }
    if (v->u.array.len > RG_PJ_MAX_RECIPIENTS) {
        *why = "recipients: more than 1000";
        goto invalid;
    }
    n = v->u.array.len;
    out->recipients = rg_calloc(n, sizeof(char *));
    for (size_t i = 0; i < n; i++) {
        yajl_val r = v->u.array.values[i];
        char addr[RG_PJ_ADDR_MAX + 1];
        if (!YAJL_IS_STRING(r) || rg_pj_address_normalize(r->u.string, strlen(r->u.string), addr) < 0) {
            *why = "recipients: an element is not a valid address";
            goto invalid;
        }
        out->recipients[out->nrecipients++] = rg_strdup(addr);
    }
    qsort(out->recipients, out->nrecipients, sizeof(char *), cmp_str);
    for (size_t i = j = 0; i < out->nrecipients; i++) {
        if (j > 0 && strcmp(out->recipients[j - 1], out->recipients[i]) == 0)
            rg_free(out->recipients[i]);
        else
            out->recipients[j++] = out->recipients[i];
    }
    out->nrecipients = j;
    v = member(root, "message_id", yajl_t_string);
    if (v == NULL || strlen(v->u.string) > RG_PJ_MSGID_MAX) {
        *why = "message_id: missing, not a string or longer than 998 bytes";
        goto invalid;
    }
    for (const char *p = v->u.string; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f) {
            *why = "message_id: control character";
            goto invalid;
        }
    out->message_id = rg_strdup(v->u.string);
    if (get_hex(root, "sha256", out->sha256, sizeof(out->sha256)) < 0) {
        *why = "sha256: missing or not 64 hex digits";
        goto invalid;
    }
    yajl_tree_free(root);
    return RG_PJ_CREATE_OK;
invalid:
    yajl_tree_free(root);
    rg_pj_create_free(out);
    return RG_PJ_CREATE_INVALID;
}

void rg_pj_create_free(struct rg_pj_create *c)
{
    for (size_t i = 0; i < c->nrecipients; i++)
        rg_free(c->recipients[i]);
    c->recipients = rg_free(c->recipients);
    c->nrecipients = 0;
    c->message_id = rg_free(c->message_id);
}

static int gen_str(yajl_gen g, const char *s)
{
    return yajl_gen_string(g, (const unsigned char *)s, strlen(s)) == yajl_gen_status_ok ? 0 : -1;
}

int rg_pj_build_create(struct rg_buf *out, const char *sender, const char *const *recipients,
                       size_t nrecipients, const char *message_id,
                       const uint8_t sha256[RG_PJ_SHA256_LEN])
{
    yajl_gen g = yajl_gen_alloc(NULL);
    char hex[2 * RG_PJ_SHA256_LEN + 1];
    const unsigned char *buf;
    size_t len;
    int rc = -1;

    if (g == NULL)
        return -1;
    yajl_gen_config(g, yajl_gen_validate_utf8, 1);
    rg_pj_hex_encode(sha256, RG_PJ_SHA256_LEN, hex);
    if (yajl_gen_map_open(g) != yajl_gen_status_ok
        || gen_str(g, "sender") < 0 || gen_str(g, sender) < 0
        || gen_str(g, "recipients") < 0 || yajl_gen_array_open(g) != yajl_gen_status_ok)
        goto done;
    for (size_t i = 0; i < nrecipients; i++)
        if (gen_str(g, recipients[i]) < 0)
            goto done;
    if (yajl_gen_array_close(g) != yajl_gen_status_ok
        || gen_str(g, "message_id") < 0 || gen_str(g, message_id ? message_id : "") < 0
        || gen_str(g, "sha256") < 0 || gen_str(g, hex) < 0
        || yajl_gen_map_close(g) != yajl_gen_status_ok)
        goto done;
    if (yajl_gen_get_buf(g, &buf, &len) != yajl_gen_status_ok)
        goto done;
    rc = rg_buf_append(out, buf, len);
done:
    yajl_gen_free(g);
    return rc;
}
