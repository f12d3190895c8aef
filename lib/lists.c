/*
 * lists.c - named lists: a list file loaded into an open-addressing hash
 * set (linear probing, at most half full), entries kept in the file's own
 * bytes so a 100,000-entry list costs one read and a few allocations.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lists.h"
#include "mem.h"

struct list_entry {
    const char *s;
    size_t len;
    uint64_t hash;
};

struct rg_list {
    char *name;
    char *path;
    char *data;                 /* the file; entries point into it */
    struct list_entry *e;
    size_t n;
    uint32_t *slot;             /* 0 = empty, else index into e + 1 */
    size_t mask;                /* number of slots - 1 (a power of two) */
};

int rg_list_name_valid(const char *name)
{
    size_t n = 0;

    if (name == NULL)
        return 0;
    for (; name[n] != '\0'; n++) {
        char c = name[n];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')
              || c == '_' || c == '-'))
            return 0;
        if (n >= RG_LIST_NAME_MAX)
            return 0;
    }
    return n > 0;
}

/* A 64-bit hash: 8 bytes at a time, multiply and rotate, then a final
 * avalanche so that the low bits (the slot index) depend on every byte. */
static uint64_t hash_bytes(const char *s, size_t n)
{
    uint64_t h = 0x9e3779b97f4a7c15ULL ^ (n * 0xff51afd7ed558ccdULL);
    uint64_t k;

    while (n >= 8) {
        memcpy(&k, s, 8);
        h ^= k * 0x87c37b91114253d5ULL;
        h = ((h << 31) | (h >> 33)) * 0x4cf5ad432745937fULL;
        s += 8;
        n -= 8;
    }
    k = 0;
    memcpy(&k, s, n);
    h ^= k * 0x87c37b91114253d5ULL;
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 33;
    return h;
}

/* Index of the slot holding s, or of the empty slot where it would go. */
static size_t probe(const struct rg_list *l, const char *s, size_t len, uint64_t h)
{
    size_t i = (size_t)h & l->mask;

    for (;;) {
        uint32_t v = l->slot[i];
        if (v == 0)
            return i;
        const struct list_entry *e = &l->e[v - 1];
        if (e->hash == h && e->len == len && memcmp(e->s, s, len) == 0)
            return i;
        i = (i + 1) & l->mask;
    }
}

int rg_list_contains(const struct rg_list *l, const char *s, size_t len)
{
    if (l == NULL || l->n == 0)
        return 0;
    return l->slot[probe(l, s, len, hash_bytes(s, len))] != 0;
}

size_t rg_list_count(const struct rg_list *l)
{
    return l ? l->n : 0;
}

const char *rg_list_name(const struct rg_list *l)
{
    return l->name;
}

const char *rg_list_path(const struct rg_list *l)
{
    return l->path;
}

struct rg_list *rg_list_free(struct rg_list *l)
{
    if (l == NULL)
        return NULL;
    rg_free(l->name);
    rg_free(l->path);
    rg_free(l->data);
    rg_free(l->e);
    rg_free(l->slot);
    return rg_free(l);
}

/* Read the whole regular file path (at most max bytes) into a
 * NUL-terminated buffer. On failure *err says why. */
static char *read_file(const char *path, size_t max, size_t *len, const char **err)
{
    struct stat st;
    char *data;
    size_t off = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);

    if (fd < 0) {
        *err = strerror(errno);
        return NULL;
    }
    if (fstat(fd, &st) < 0) {
        *err = strerror(errno);
        close(fd);
        return NULL;
    }
    if (!S_ISREG(st.st_mode)) {
        *err = "not a regular file";
        close(fd);
        return NULL;
    }
    if ((uintmax_t)st.st_size > max) {
        *err = "the file is too large";
        close(fd);
        return NULL;
    }
    data = rg_malloc((size_t)st.st_size + 1);
    /* read until EOF, never past the limit (the file may have grown) */
    for (;;) {
        size_t room = (size_t)st.st_size - off;
        ssize_t r;
        if (room == 0) {
            char extra;
            r = read(fd, &extra, 1);
            if (r > 0) {
                *err = "the file changed while it was read";
                goto fail;
            }
        } else {
            r = read(fd, data + off, room);
        }
        if (r < 0) {
            if (errno == EINTR)
                continue;
            *err = strerror(errno);
            goto fail;
        }
        if (r == 0)
            break;
        off += (size_t)r;
    }
    close(fd);
    data[off] = '\0';
    *len = off;
    return data;
fail:
    close(fd);
    rg_free(data);
    return NULL;
}

static int has_upper(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] >= 'A' && s[i] <= 'Z')
            return 1;
    return 0;
}

static int is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

/* Column (1-based, in UTF-8 characters) of s[off] on a line starting at s. */
static int char_col(const char *s, size_t off)
{
    int col = 1;

    for (size_t i = 0; i < off; i++)
        if (((unsigned char)s[i] & 0xC0) != 0x80)
            col++;
    return col;
}

/* Diagnostics of one kind beyond RG_LIST_MAX_DIAGS are counted and
 * summarised at the end, so a pasted list of 100,000 upper-case
 * addresses does not bury everything else. */
struct list_diags {
    rg_rules_diag diag;
    void *ctx;
    const char *path;
    int nerr_nul, nwarn_upper, nwarn_space;
};

static void report(struct list_diags *d, enum rg_diag_severity sev, int *count,
                   int line, int col, const char *msg)
{
    if (++*count <= RG_LIST_MAX_DIAGS && d->diag != NULL)
        d->diag(d->ctx, sev, d->path, line, col, msg);
}

static void summarise(struct list_diags *d, enum rg_diag_severity sev, int count, const char *what)
{
    if (count > RG_LIST_MAX_DIAGS && d->diag != NULL) {
        char msg[200];
        snprintf(msg, sizeof(msg), "%d more %s", count - RG_LIST_MAX_DIAGS, what);
        d->diag(d->ctx, sev, d->path, 0, 0, msg);
    }
}

/* s[0..n) for a message: control characters, '"' and '\\' escaped; when
 * it does not fit outsz, cut before an escape or a character that no
 * longer fits together with the "..." that says so (never inside a UTF-8
 * sequence). Room for "..." and the NUL is kept all along. */
static void quote(char *out, size_t outsz, const char *s, size_t n)
{
    size_t o = 0, at_char = 0;

    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        int esc = c < 0x20 || c == 0x7f || c == '"' || c == '\\';
        size_t need = esc ? 4 : 1, reserve = i + 1 < n ? 4 : 1;

        if ((c & 0xC0) != 0x80)
            at_char = o;
        if (o + need + reserve > outsz) {
            if ((c & 0xC0) == 0x80)
                o = at_char;
            memcpy(out + o, "...", 3);
            o += 3;
            break;
        }
        if (esc)
            o += (size_t)snprintf(out + o, outsz - o, "\\x%02x", c);
        else
            out[o++] = (char)c;
    }
    out[o] = '\0';
}

/* Split data into entries (in place: line endings become NUL). */
static int split_lines(struct rg_list *l, size_t len, struct list_diags *d)
{
    char *p = l->data, *end = l->data + len;
    size_t cap = 0;
    int line = 0, errors = 0;

    while (p < end) {
        char *nl = memchr(p, '\n', (size_t)(end - p));
        char *eol = nl ? nl : end;
        size_t n = (size_t)(eol - p);
        char *nul;
        char msg[400], q[120];

        line++;
        if (n > 0 && p[n - 1] == '\r')
            n--;
        p[n] = '\0';
        if (n == 0)
            goto next;
        nul = memchr(p, '\0', n);
        if (nul != NULL) {
            errors++;
            report(d, RG_DIAG_ERROR, &d->nerr_nul, line, char_col(p, (size_t)(nul - p)),
                   "NUL byte in the line");
            goto next;
        }
        if (memchr(p, '@', n) != NULL && has_upper(p, n)) {
            quote(q, sizeof(q), p, n);
            snprintf(msg, sizeof(msg), "e-mail address \"%s\" contains upper case: "
                     "it will never match (envelope addresses are matched in lower case)", q);
            report(d, RG_DIAG_WARNING, &d->nwarn_upper, line, 1, msg);
        }
        if (is_space(p[0]) || is_space(p[n - 1])) {
            quote(q, sizeof(q), p, n);
            snprintf(msg, sizeof(msg), "entry \"%s\" has leading or trailing white space, "
                     "which is part of the entry", q);
            report(d, RG_DIAG_WARNING, &d->nwarn_space, line, 1, msg);
        }
        if (l->n == cap) {
            cap = cap ? cap * 2 : 256;
            l->e = rg_realloc(l->e, cap * sizeof(*l->e));
        }
        l->e[l->n].s = p;
        l->e[l->n].len = n;
        l->n++;
    next:
        p = eol + 1;
    }
    summarise(d, RG_DIAG_ERROR, d->nerr_nul, "lines with a NUL byte");
    summarise(d, RG_DIAG_WARNING, d->nwarn_upper, "e-mail addresses with upper case");
    summarise(d, RG_DIAG_WARNING, d->nwarn_space, "entries with leading or trailing white space");
    return errors ? -1 : 0;
}

/* Put the entries into the table, dropping duplicates. */
static void build_table(struct rg_list *l)
{
    size_t nslots = 16, kept = 0;

    while (nslots < l->n * 2)
        nslots *= 2;
    l->slot = rg_calloc(nslots, sizeof(*l->slot));
    l->mask = nslots - 1;
    for (size_t i = 0; i < l->n; i++) {
        struct list_entry e = l->e[i];
        size_t at;

        e.hash = hash_bytes(e.s, e.len);
        at = probe(l, e.s, e.len, e.hash);
        if (l->slot[at] != 0)
            continue;           /* a duplicate */
        l->e[kept] = e;
        l->slot[at] = (uint32_t)++kept;
    }
    l->n = kept;
}

struct rg_list *rg_list_load(const char *path, const char *name, rg_rules_diag diag, void *ctx)
{
    struct list_diags d = { diag, ctx, path, 0, 0, 0 };
    struct rg_list *l;
    const char *err = NULL;
    size_t len = 0;
    char *data = read_file(path, RG_LIST_MAX_FILE_SIZE, &len, &err);

    if (data == NULL) {
        if (diag != NULL) {
            char msg[300];
            if (strcmp(err, "the file is too large") == 0)
                snprintf(msg, sizeof(msg), "list file is larger than %lu MiB",
                         RG_LIST_MAX_FILE_SIZE / (1024 * 1024));
            else
                snprintf(msg, sizeof(msg), "cannot read the list file: %s", err);
            diag(ctx, RG_DIAG_ERROR, path, 0, 0, msg);
        }
        return NULL;
    }
    if (len / 2 >= UINT32_MAX) {
        rg_free(data);
        if (diag != NULL)
            diag(ctx, RG_DIAG_ERROR, path, 0, 0, "list file has too many lines");
        return NULL;
    }
    l = rg_calloc(1, sizeof(*l));
    l->name = rg_strdup(name);
    l->path = rg_strdup(path);
    l->data = data;
    if (split_lines(l, len, &d) < 0)
        return rg_list_free(l);
    build_table(l);
    return l;
}
