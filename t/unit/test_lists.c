/*
 * test_lists.c - unit tests of lib/lists.c: list names, loading (LF and
 * CRLF, empty lines, no final newline, duplicates), case-sensitive
 * lookups, the errors (missing file, directory, NUL byte) and warnings
 * (upper-case addresses, white space, the summary after
 * RG_LIST_MAX_DIAGS), and a 100,000-entry list.
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
#include <unistd.h>

#include "lists.h"
#include "mem.h"

static char tmpdir[512];
static char path[600];

/* Diagnostics, formatted like regigatectl prints them, one per line. */
static char diags[16384];

static void collect(void *ctx, enum rg_diag_severity sev, const char *file, int line, int col,
                    const char *msg)
{
    size_t o = strlen(diags);
    const char *what = sev == RG_DIAG_ERROR ? "error" : "warning";

    (void)ctx;
    if (line > 0)
        snprintf(diags + o, sizeof(diags) - o, "%s:%d:%d: %s: %s\n", file, line, col, what, msg);
    else
        snprintf(diags + o, sizeof(diags) - o, "%s: %s: %s\n", file, what, msg);
}

static int group_setup(void **state)
{
    const char *dir = getenv("TMPDIR");

    (void)state;
    if (dir == NULL || dir[0] == '\0' || strlen(dir) > 400)
        dir = "/tmp";
    snprintf(tmpdir, sizeof(tmpdir), "%s/rg-test-lists-XXXXXX", dir);
    if (mkdtemp(tmpdir) == NULL)
        return -1;
    snprintf(path, sizeof(path), "%s/list", tmpdir);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    unlink(path);
    return rmdir(tmpdir);
}

static void write_file(const char *data, size_t len)
{
    FILE *fp = fopen(path, "wb");

    assert_non_null(fp);
    assert_int_equal(fwrite(data, 1, len, fp), len);
    assert_int_equal(fclose(fp), 0);
}

static struct rg_list *load(const char *data, size_t len)
{
    write_file(data, len);
    diags[0] = '\0';
    return rg_list_load(path, "list", collect, NULL);
}

static int has(const struct rg_list *l, const char *s)
{
    return rg_list_contains(l, s, strlen(s));
}

static void test_names(void **state)
{
    char long_name[80];

    (void)state;
    assert_true(rg_list_name_valid("partners"));
    assert_true(rg_list_name_valid("Partner-Domains_2"));
    assert_true(rg_list_name_valid("a"));
    assert_false(rg_list_name_valid(""));
    assert_false(rg_list_name_valid(NULL));
    assert_false(rg_list_name_valid("../etc"));
    assert_false(rg_list_name_valid("a.b"));
    assert_false(rg_list_name_valid("a b"));
    assert_false(rg_list_name_valid("a/b"));
    assert_false(rg_list_name_valid("caf\xc3\xa9"));
    memset(long_name, 'x', 64);
    long_name[64] = '\0';
    assert_true(rg_list_name_valid(long_name));
    long_name[64] = 'x';
    long_name[65] = '\0';
    assert_false(rg_list_name_valid(long_name));
}

static void test_lf_crlf_empty_lines(void **state)
{
    static const char data[] = "example.com\npartner.de\r\n\n\r\nsub.partner.de\nlast-without-newline";
    struct rg_list *l = load(data, sizeof(data) - 1);

    (void)state;
    assert_non_null(l);
    assert_string_equal(diags, "");
    assert_int_equal(rg_list_count(l), 4);
    assert_string_equal(rg_list_name(l), "list");
    assert_string_equal(rg_list_path(l), path);
    assert_true(has(l, "example.com"));
    assert_true(has(l, "partner.de"));         /* CR trimmed */
    assert_true(has(l, "sub.partner.de"));
    assert_true(has(l, "last-without-newline"));
    assert_false(has(l, "partner.de\r"));
    assert_false(has(l, ""));                   /* empty lines are skipped */
    assert_false(has(l, "example"));            /* whole entries only */
    assert_false(has(l, "example.com\n"));
    rg_list_free(l);
}

static void test_case_sensitive(void **state)
{
    static const char data[] = "alice@example.com\nExample.org\n";
    struct rg_list *l = load(data, sizeof(data) - 1);

    (void)state;
    assert_non_null(l);
    assert_true(has(l, "alice@example.com"));
    assert_false(has(l, "Alice@example.com"));
    assert_true(has(l, "Example.org"));
    assert_false(has(l, "example.org"));
    rg_list_free(l);
}

static void test_only_cr_stripped_once(void **state)
{
    /* only the line ending goes; other white space is part of the entry */
    static const char data[] = "a\r\r\n b\nc \n";
    struct rg_list *l = load(data, sizeof(data) - 1);

    (void)state;
    assert_non_null(l);
    assert_true(has(l, "a\r"));
    assert_true(has(l, " b"));
    assert_true(has(l, "c "));
    assert_false(has(l, "b"));
    assert_false(has(l, "c"));
    rg_list_free(l);
}

static void test_duplicates(void **state)
{
    static const char data[] = "a\nb\na\r\nb\nc\n";
    struct rg_list *l = load(data, sizeof(data) - 1);

    (void)state;
    assert_non_null(l);
    assert_int_equal(rg_list_count(l), 3);
    assert_true(has(l, "a") && has(l, "b") && has(l, "c"));
    rg_list_free(l);
}

static void test_empty_file(void **state)
{
    struct rg_list *l = load("", 0);

    (void)state;
    assert_non_null(l);
    assert_int_equal(rg_list_count(l), 0);
    assert_false(has(l, ""));
    assert_false(has(l, "x"));
    rg_list_free(l);
    l = load("\n\r\n\n", 4);
    assert_non_null(l);
    assert_int_equal(rg_list_count(l), 0);
    rg_list_free(l);
}

static void test_missing_file(void **state)
{
    char missing[700], want[800];

    (void)state;
    snprintf(missing, sizeof(missing), "%s/no-such-list", tmpdir);
    diags[0] = '\0';
    assert_null(rg_list_load(missing, "no-such-list", collect, NULL));
    snprintf(want, sizeof(want), "%s: error: cannot read the list file: No such file or directory\n",
             missing);
    assert_string_equal(diags, want);

    diags[0] = '\0';
    assert_null(rg_list_load(tmpdir, "dir", collect, NULL));
    snprintf(want, sizeof(want), "%s: error: cannot read the list file: not a regular file\n", tmpdir);
    assert_string_equal(diags, want);
    /* without a callback: just NULL */
    assert_null(rg_list_load(missing, "x", NULL, NULL));
}

static void test_nul_byte(void **state)
{
    static const char data[] = "ok@example.com\nbad\0entry\nfine\n\0\n";
    struct rg_list *l = load(data, sizeof(data) - 1);
    char want[4096];

    (void)state;
    assert_null(l);
    snprintf(want, sizeof(want), "%s:2:4: error: NUL byte in the line\n"
             "%s:4:1: error: NUL byte in the line\n", path, path);
    assert_string_equal(diags, want);
}

/* Bad input (issue 7): a list file over the 256 MiB limit is refused at
 * once, before it is read (a sparse file: no disk space, no time). A
 * 10-million-line list (228 MiB) loads; its figures are in
 * doc/reliability.md. */
static void test_too_large(void **state)
{
    char want[800];
    FILE *fp = fopen(path, "wb");

    (void)state;
    assert_non_null(fp);
    assert_int_equal(ftruncate(fileno(fp), (off_t)RG_LIST_MAX_FILE_SIZE + 1), 0);
    assert_int_equal(fclose(fp), 0);
    diags[0] = '\0';
    assert_null(rg_list_load(path, "list", collect, NULL));
    snprintf(want, sizeof(want), "%s: error: list file is larger than 256 MiB\n", path);
    assert_string_equal(diags, want);
    /* a small file of NUL bytes: read, and refused for the NUL (one line) */
    fp = fopen(path, "r+b");
    assert_non_null(fp);
    assert_int_equal(ftruncate(fileno(fp), 16), 0);
    assert_int_equal(fclose(fp), 0);
    diags[0] = '\0';
    assert_null(rg_list_load(path, "list", collect, NULL));
    snprintf(want, sizeof(want), "%s:1:1: error: NUL byte in the line\n", path);
    assert_string_equal(diags, want);
}

static void test_upper_case_warning(void **state)
{
    static const char data[] = "alice@example.com\nBob@example.com\nExample.com\n"
                               "carol@EXAMPLE.com \n";
    struct rg_list *l = load(data, sizeof(data) - 1);
    char want[4096];

    (void)state;
    assert_non_null(l);     /* warnings do not fail the load */
    snprintf(want, sizeof(want),
             "%s:2:1: warning: e-mail address \"Bob@example.com\" contains upper case: it will "
             "never match (envelope addresses are matched in lower case)\n"
             "%s:4:1: warning: e-mail address \"carol@EXAMPLE.com \" contains upper case: it will "
             "never match (envelope addresses are matched in lower case)\n"
             "%s:4:1: warning: entry \"carol@EXAMPLE.com \" has leading or trailing white space, "
             "which is part of the entry\n", path, path, path);
    assert_string_equal(diags, want);
    /* a domain with upper case is not an address: no warning, and it is
     * still an entry matched as is */
    assert_true(has(l, "Example.com"));
    assert_true(has(l, "Bob@example.com"));
    rg_list_free(l);
}

static void test_warning_summary(void **state)
{
    char data[4096], want[8192];
    size_t o = 0, w = 0;
    struct rg_list *l;

    (void)state;
    for (int i = 0; i < RG_LIST_MAX_DIAGS + 5; i++)
        o += (size_t)snprintf(data + o, sizeof(data) - o, "User%d@example.com\n", i);
    l = load(data, o);
    assert_non_null(l);
    for (int i = 0; i < RG_LIST_MAX_DIAGS; i++)
        w += (size_t)snprintf(want + w, sizeof(want) - w, "%s:%d:1: warning: e-mail address "
                              "\"User%d@example.com\" contains upper case: it will never match "
                              "(envelope addresses are matched in lower case)\n", path, i + 1, i);
    snprintf(want + w, sizeof(want) - w, "%s: warning: 5 more e-mail addresses with upper case\n",
             path);
    assert_string_equal(diags, want);
    assert_int_equal(rg_list_count(l), RG_LIST_MAX_DIAGS + 5);
    rg_list_free(l);
}

static void test_escaped_in_messages(void **state)
{
    /* control characters of an entry do not reach the message raw */
    static const char data[] = "A\x1b[31m@x \n";
    struct rg_list *l = load(data, sizeof(data) - 1);

    (void)state;
    assert_non_null(l);
    assert_null(strchr(diags, '\x1b'));
    assert_non_null(strstr(diags, "\"A\\x1b[31m@x \""));
    rg_list_free(l);
}

/* Quoting a long entry for a message: the quote is cut before an escape
 * or a character that does not fit with the "..." (fuzz_lists found the
 * quote running 2 bytes past its buffer when an escape came last). */
static void check_long_entry(const char *entry, const char *quoted)
{
    char data[300], want[1024];
    struct rg_list *l;

    snprintf(data, sizeof(data), "%s\n", entry);
    l = load(data, strlen(data));
    assert_non_null(l);
    snprintf(want, sizeof(want), "%s:1:1: warning: entry \"%s\" has leading or trailing white "
             "space, which is part of the entry\n", path, quoted);
    assert_string_equal(diags, want);
    rg_list_free(l);
}

static void test_long_entry_quoted(void **state)
{
    char entry[200], quoted[200];

    (void)state;
    /* an escape where only the "..." fits */
    memset(entry, 'a', 114);
    entry[0] = ' ';
    memcpy(entry + 114, "\x01" "b", 3);
    memcpy(quoted, entry, 114);
    memcpy(quoted + 114, "...", 4);
    check_long_entry(entry, quoted);
    /* a run of escapes */
    memcpy(entry, " z", 2);
    memset(entry + 2, 0x7f, 60);
    entry[62] = '\0';
    memcpy(quoted, " z", 2);
    for (int i = 0; i < 28; i++)
        memcpy(quoted + 2 + 4 * i, "\\x7f", 4);
    memcpy(quoted + 2 + 4 * 28, "...", 4);
    check_long_entry(entry, quoted);
    /* a two-byte character that would be cut in half */
    memset(entry, 'a', 115);
    entry[0] = ' ';
    memcpy(entry + 115, "\xc3\xa9z", 4);
    memcpy(quoted, entry, 115);
    memcpy(quoted + 115, "...", 4);
    check_long_entry(entry, quoted);
    /* what fits is not cut */
    memset(entry, 'a', 116);
    entry[0] = ' ';
    entry[116] = '\0';
    check_long_entry(entry, entry);
}

static void test_100k_entries(void **state)
{
    const size_t n = 100000;
    size_t cap = n * 40, o = 0;
    char *data = rg_malloc(cap);
    struct rg_list *l;
    char key[64];

    (void)state;
    for (size_t i = 0; i < n; i++)
        o += (size_t)snprintf(data + o, cap - o, "user%zu@domain%zu.example%s", i, i % 997,
                              i % 2 ? "\r\n" : "\n");
    l = load(data, o);
    rg_free(data);
    assert_non_null(l);
    assert_string_equal(diags, "");
    assert_int_equal(rg_list_count(l), n);
    for (size_t i = 0; i < n; i++) {
        snprintf(key, sizeof(key), "user%zu@domain%zu.example", i, i % 997);
        if (!has(l, key))
            fail_msg("entry %zu missing", i);
        snprintf(key, sizeof(key), "user%zu@domain%zu.example", i, (i + 1) % 997);
        if (has(l, key))
            fail_msg("non-entry %zu found", i);
    }
    assert_false(has(l, "user100000@domain0.example"));
    rg_list_free(l);
}

static void test_free_null(void **state)
{
    (void)state;
    assert_null(rg_list_free(NULL));
    assert_false(rg_list_contains(NULL, "x", 1));
    assert_int_equal(rg_list_count(NULL), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_lf_crlf_empty_lines),
        cmocka_unit_test(test_case_sensitive),
        cmocka_unit_test(test_only_cr_stripped_once),
        cmocka_unit_test(test_duplicates),
        cmocka_unit_test(test_empty_file),
        cmocka_unit_test(test_missing_file),
        cmocka_unit_test(test_nul_byte),
        cmocka_unit_test(test_too_large),
        cmocka_unit_test(test_upper_case_warning),
        cmocka_unit_test(test_warning_summary),
        cmocka_unit_test(test_escaped_in_messages),
        cmocka_unit_test(test_long_entry_quoted),
        cmocka_unit_test(test_100k_entries),
        cmocka_unit_test(test_free_null),
    };

    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
