/*
 * fuzz_lists.c - libFuzzer target for the named-list loader (lib/lists.c).
 * The input is a whole list file: rg_list_load() reads only from a path,
 * so the input is written to one temporary file (created once per process
 * with mkstemp, removed at exit) and loaded from there.
 *
 * Invariants (abort() when broken), against a plain model of lists.h
 * (lines split at LF, one CR before it removed, empty lines skipped):
 *  - the list loads exactly when no entry holds a NUL byte;
 *  - the diagnostics are, in this order, one per line for the first
 *    RG_LIST_MAX_DIAGS lines of each kind (NUL error at the column of the
 *    NUL in characters; upper-case address and white-space warnings at
 *    column 1), then a summary line (line 0, column 0) per kind that had
 *    more; each names the list file and has a non-empty message without
 *    control characters;
 *  - a loaded list has the name and path given, counts the distinct
 *    entries, contains every entry and nothing the model does not have
 *    (the entries cut by one byte or grown by one, the whole input, the
 *    empty string);
 *  - loading twice gives the same diagnostics.
 *
 * With RG_FUZZ_DEBUG set in the environment the diagnostics go to stderr.
 */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lists.h"
#include "mem.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_INPUT (64 * 1024)

static char list_path[4096];
static int list_fd = -1;

static void check(int ok)
{
    if (!ok)
        abort();
}

static void remove_list(void)
{
    close(list_fd);
    unlink(list_path);
}

static void make_list_file(void)
{
    const char *tmp = getenv("TMPDIR");

    if (tmp == NULL || *tmp == '\0' || strlen(tmp) > 3000)
        tmp = "/tmp";
    snprintf(list_path, sizeof(list_path), "%s/rg-fuzz-list.XXXXXX", tmp);
    list_fd = mkstemp(list_path);
    check(list_fd >= 0);
    atexit(remove_list);
}

/* Overwrite in place and cut to size: truncating to 0 and writing anew
 * would make ext4 flush the file at every close (auto_da_alloc), which
 * costs milliseconds per input. */
static void write_list_file(const uint8_t *data, size_t size)
{
    size_t off = 0;

    while (off < size) {
        ssize_t w = pwrite(list_fd, data + off, size - off, (off_t)off);
        check(w > 0);
        off += (size_t)w;
    }
    check(ftruncate(list_fd, (off_t)size) == 0);
}

/* one diagnostic: severity and position */
struct diag_rec {
    int sev, line, col;
};

struct diags {
    struct diag_rec *d;
    size_t n, cap;
    int errors;
};

static void push(struct diags *ds, int sev, int line, int col)
{
    if (ds->n == ds->cap) {
        ds->cap = ds->cap ? ds->cap * 2 : 64;
        ds->d = rg_realloc(ds->d, ds->cap * sizeof(*ds->d));
    }
    ds->d[ds->n].sev = sev;
    ds->d[ds->n].line = line;
    ds->d[ds->n].col = col;
    ds->n++;
    if (sev == RG_DIAG_ERROR)
        ds->errors++;
}

static void diag(void *ctx, enum rg_diag_severity sev, const char *file, int line, int col,
                 const char *msg)
{
    check(sev == RG_DIAG_ERROR || sev == RG_DIAG_WARNING);
    check(strcmp(file, list_path) == 0);
    check((line == 0 && col == 0) || (line >= 1 && col >= 1));
    check(msg != NULL && msg[0] != '\0');
    for (const char *p = msg; *p; p++)
        check((unsigned char)*p >= 0x20 && *p != 0x7f);
    push(ctx, (int)sev, line, col);
    if (getenv("RG_FUZZ_DEBUG") != NULL)
        fprintf(stderr, "%s:%d:%d: %s: %s\n", file, line, col,
                sev == RG_DIAG_ERROR ? "error" : "warning", msg);
}

/* ---- the model ---------------------------------------------------------- */

struct entry {
    const char *s;
    size_t len;
};

struct model {
    struct entry *e;            /* every entry, sorted, duplicates kept */
    size_t n, distinct;
    struct diags want;          /* the diagnostics the loader must give */
    int nul, upper, space;      /* lines of each kind */
};

static int model_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

static int cmp_entry(const void *a, const void *b)
{
    const struct entry *x = a, *y = b;
    size_t m = x->len < y->len ? x->len : y->len;
    int c = memcmp(x->s, y->s, m);

    if (c != 0)
        return c;
    return x->len < y->len ? -1 : x->len > y->len;
}

static int model_has(const struct model *m, const char *s, size_t len)
{
    struct entry key = { s, len };

    return m->n > 0 && bsearch(&key, m->e, m->n, sizeof(*m->e), cmp_entry) != NULL;
}

static void model_build(struct model *m, const char *data, size_t size)
{
    size_t pos = 0;
    int line = 0;

    memset(m, 0, sizeof(*m));
    m->e = rg_malloc((size / 2 + 1) * sizeof(*m->e));
    while (pos < size) {
        const char *p = data + pos, *nl = memchr(p, '\n', size - pos);
        size_t n = nl ? (size_t)(nl - p) : size - pos;
        const char *nul;

        pos += n + 1;
        line++;
        if (n > 0 && p[n - 1] == '\r')
            n--;
        if (n == 0)
            continue;
        nul = memchr(p, '\0', n);
        if (nul != NULL) {
            int col = 1;
            for (const char *q = p; q < nul; q++)
                if (((unsigned char)*q & 0xC0) != 0x80)
                    col++;
            if (++m->nul <= RG_LIST_MAX_DIAGS)
                push(&m->want, RG_DIAG_ERROR, line, col);
            continue;
        }
        if (memchr(p, '@', n) != NULL) {
            int upper = 0;
            for (size_t i = 0; i < n; i++)
                upper |= p[i] >= 'A' && p[i] <= 'Z';
            if (upper && ++m->upper <= RG_LIST_MAX_DIAGS)
                push(&m->want, RG_DIAG_WARNING, line, 1);
        }
        if ((model_space(p[0]) || model_space(p[n - 1])) && ++m->space <= RG_LIST_MAX_DIAGS)
            push(&m->want, RG_DIAG_WARNING, line, 1);
        m->e[m->n].s = p;
        m->e[m->n].len = n;
        m->n++;
    }
    if (m->nul > RG_LIST_MAX_DIAGS)
        push(&m->want, RG_DIAG_ERROR, 0, 0);
    if (m->upper > RG_LIST_MAX_DIAGS)
        push(&m->want, RG_DIAG_WARNING, 0, 0);
    if (m->space > RG_LIST_MAX_DIAGS)
        push(&m->want, RG_DIAG_WARNING, 0, 0);
    qsort(m->e, m->n, sizeof(*m->e), cmp_entry);
    for (size_t i = 0; i < m->n; i++)
        if (i == 0 || cmp_entry(&m->e[i - 1], &m->e[i]) != 0)
            m->distinct++;
}

static void model_free(struct model *m)
{
    rg_free(m->e);
    rg_free(m->want.d);
}

static int same_diags(const struct diags *a, const struct diags *b)
{
    if (a->n != b->n || a->errors != b->errors)
        return 0;
    for (size_t i = 0; i < a->n; i++)
        if (a->d[i].sev != b->d[i].sev || a->d[i].line != b->d[i].line
            || a->d[i].col != b->d[i].col)
            return 0;
    return 1;
}

/* The list holds s[0..len) exactly when the model does. */
static void check_lookup(const struct rg_list *l, const struct model *m, const char *s,
                         size_t len)
{
    check(rg_list_contains(l, s, len) == model_has(m, s, len));
}

static void check_list(const struct rg_list *l, const struct model *m, const char *data,
                       size_t size)
{
    char grown[512];

    check(strcmp(rg_list_name(l), "fuzz-list") == 0);
    check(strcmp(rg_list_path(l), list_path) == 0);
    check(rg_list_count(l) == m->distinct);
    check_lookup(l, m, "", 0);
    check_lookup(l, m, data, size);
    for (size_t i = 0; i < m->n && i < 200; i++) {
        const struct entry *e = &m->e[i];
        check(rg_list_contains(l, e->s, e->len));
        check_lookup(l, m, e->s, e->len - 1);
        check_lookup(l, m, e->s + 1, e->len - 1);
        if (e->len < sizeof(grown)) {
            memcpy(grown, e->s, e->len);
            grown[e->len] = i & 1 ? '\r' : 'x';
            check_lookup(l, m, grown, e->len + 1);
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct diags d1 = { NULL, 0, 0, 0 }, d2 = { NULL, 0, 0, 0 };
    struct model m;
    struct rg_list *l, *again;

    if (size > MAX_INPUT)
        return 0;
    if (list_path[0] == '\0')
        make_list_file();
    write_list_file(data, size);
    model_build(&m, (const char *)data, size);

    l = rg_list_load(list_path, "fuzz-list", diag, &d1);
    check((l != NULL) == (m.nul == 0));
    check(same_diags(&d1, &m.want));
    if (l != NULL)
        check_list(l, &m, (const char *)data, size);
    again = rg_list_load(list_path, "fuzz-list", diag, &d2);
    check((again == NULL) == (l == NULL));
    check(same_diags(&d1, &d2));
    rg_list_free(again);
    check(rg_list_free(l) == NULL);
    model_free(&m);
    rg_free(d1.d);
    rg_free(d2.d);
    return 0;
}
