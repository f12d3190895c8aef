/*
 * test_rules.c - unit tests of the rule engine (lib/rules_load.c,
 * lib/rules_eval.c): every lint case of t/rules/ (FILE.json against the
 * exact diagnostics in FILE.expect), the loader's limits and positions,
 * every field, op, combinator and action, first match, continue and tag
 * accumulation, the default, a 100,000-entry list, regex limits, and the
 * tags applied to real header sections (rg_headers_parse).
 */
#include "config.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "header.h"
#include "mem.h"
#include "rules.h"

static char tmpdir[512];
static char listsdir[600];
static char rulesdir[4096];     /* t/rules in the source tree */

/* ------------------------------------------------------------------ */
/* helpers                                                             */

static char *diags;             /* collected diagnostics, one per line */
static size_t diags_len, diags_cap;

static void diags_reset(void)
{
    if (diags == NULL) {
        diags_cap = 4096;
        diags = rg_malloc(diags_cap);
    }
    diags_len = 0;
    diags[0] = '\0';
}

static void collect(void *ctx, enum rg_diag_severity sev, const char *file, int line, int col,
                    const char *msg)
{
    char buf[2048];
    int n;
    const char *what = sev == RG_DIAG_ERROR ? "error" : "warning";

    (void)ctx;
    if (line > 0)
        n = snprintf(buf, sizeof(buf), "%s:%d:%d: %s: %s\n", file, line, col, what, msg);
    else
        n = snprintf(buf, sizeof(buf), "%s: %s: %s\n", file, what, msg);
    if (diags_len + (size_t)n + 1 > diags_cap) {
        diags_cap = (diags_len + (size_t)n + 1) * 2;
        diags = rg_realloc(diags, diags_cap);
    }
    memcpy(diags + diags_len, buf, (size_t)n + 1);
    diags_len += (size_t)n;
}

static void write_file(const char *path, const char *data, size_t len)
{
    FILE *fp = fopen(path, "wb");

    assert_non_null(fp);
    assert_int_equal(fwrite(data, 1, len, fp), len);
    assert_int_equal(fclose(fp), 0);
}

static char *read_all(const char *path, size_t *len)
{
    FILE *fp = fopen(path, "rb");
    char *buf = NULL;
    size_t cap = 0, n = 0, r;

    if (fp == NULL)
        return NULL;
    do {
        if (n + 4096 + 1 > cap) {
            cap = (n + 4096 + 1) * 2;
            buf = rg_realloc(buf, cap);
        }
        r = fread(buf + n, 1, 4096, fp);
        n += r;
    } while (r > 0);
    fclose(fp);
    buf[n] = '\0';
    *len = n;
    return buf;
}

static struct rg_rules *load_ok(const char *json)
{
    struct rg_rules *r;

    diags_reset();
    r = rg_rules_load_buffer(json, strlen(json), "t.json", listsdir, collect, NULL);
    if (r == NULL)
        fail_msg("load failed:\n%s", diags ? diags : "");
    return r;
}

/* The diagnostics of a rule set that must not load. */
static const char *load_bad(const char *json)
{
    struct rg_rules *r;

    diags_reset();
    r = rg_rules_load_buffer(json, strlen(json), "t.json", listsdir, collect, NULL);
    if (r != NULL) {
        rg_rules_free(r);
        fail_msg("loaded: %s", json);
    }
    return diags ? diags : "";
}

/* One test message: envelope + header section. */
struct tin {
    const char *sender;
    const char *rcpt[4];        /* NULL-terminated */
    const char *msg;            /* header section (+ body), NULL: no headers */
    size_t size;
    int encrypted;
};

/* "action:rule" of an evaluation, plus the tags' count as ":tN" when
 * there are tags. */
static int ask_count;
static int encrypted_answer;    /* what the callback says when encrypted < 0 */

static int ask_encrypted(void *ctx)
{
    ask_count++;
    return *(const int *)ctx;
}

static const char *verdict(const struct rg_rules *r, const struct tin *t)
{
    static char out[256];
    struct rg_rules_input in;
    struct rg_rules_result res;
    struct rg_headers h;
    size_t n = 0;

    while (n < 4 && t->rcpt[n] != NULL)
        n++;
    memset(&in, 0, sizeof(in));
    in.sender = t->sender ? t->sender : "";
    in.rcpts = t->rcpt;
    in.nrcpt = n;
    in.size = t->size;
    in.encrypted = t->encrypted;
    if (t->encrypted < 0) {     /* unknown: the callback answers */
        in.is_encrypted = ask_encrypted;
        in.is_encrypted_ctx = &encrypted_answer;
    }
    if (t->msg != NULL) {
        assert_int_equal(rg_headers_parse(t->msg, strlen(t->msg), 1, 1 << 20, &h), RG_HDR_OK);
        in.headers = &h;
    }
    rg_rules_eval(r, &in, &res);
    if (res.ntags)
        snprintf(out, sizeof(out), "%s:%s:t%zu", rg_action_name(res.action), res.rule, res.ntags);
    else
        snprintf(out, sizeof(out), "%s:%s", rg_action_name(res.action), res.rule);
    rg_rules_result_free(&res);
    if (t->msg != NULL)
        rg_headers_free(&h);
    return out;
}

/* A rule set with one rule "r" (action encrypt) whose only condition is
 * cond; default forward. */
static struct rg_rules *one(const char *cond)
{
    char json[8192];

    snprintf(json, sizeof(json), "{\"rules\":[{\"name\":\"r\",\"conditions\":[%s],"
             "\"action\":\"encrypt\"}],\"default\":{\"action\":\"forward\"}}", cond);
    return load_ok(json);
}

/* Does the single condition cond hold for t? */
static int holds(const char *cond, const struct tin *t)
{
    struct rg_rules *r = one(cond);
    const char *v = verdict(r, t);
    int yes = strcmp(v, "encrypt:r") == 0;

    if (!yes && strcmp(v, "forward:default") != 0)
        fail_msg("unexpected verdict %s", v);
    rg_rules_free(r);
    return yes;
}

static int group_setup(void **state)
{
    const char *dir = getenv("TMPDIR"), *src = getenv("top_srcdir");
    char path[800];
    FILE *fp;

    (void)state;
    if (dir == NULL || dir[0] == '\0' || strlen(dir) > 400)
        dir = "/tmp";
    snprintf(tmpdir, sizeof(tmpdir), "%s/rg-test-rules-XXXXXX", dir);
    if (mkdtemp(tmpdir) == NULL)
        return -1;
    snprintf(listsdir, sizeof(listsdir), "%s/lists", tmpdir);
    if (mkdir(listsdir, 0700) < 0)
        return -1;
    snprintf(rulesdir, sizeof(rulesdir), "%s/t/rules", src && *src ? src : ".");

    snprintf(path, sizeof(path), "%s/partners", listsdir);
    if ((fp = fopen(path, "w")) == NULL)
        return -1;
    fputs("partner.de\r\nexample.org\n\nPartner.COM\n", fp);
    fclose(fp);
    snprintf(path, sizeof(path), "%s/blocked", listsdir);
    if ((fp = fopen(path, "w")) == NULL)
        return -1;
    fputs("spam@evil.example\nleak@example.com\n", fp);
    fclose(fp);
    /* 100,000 entries */
    snprintf(path, sizeof(path), "%s/big", listsdir);
    if ((fp = fopen(path, "w")) == NULL)
        return -1;
    for (int i = 0; i < 100000; i++)
        fprintf(fp, "user%d@customer%d.example\n", i, i % 1000);
    fclose(fp);
    return 0;
}

static int group_teardown(void **state)
{
    char cmd[1200];

    (void)state;
    diags = rg_free(diags);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

/* ------------------------------------------------------------------ */
/* lint cases: t/rules/NAME.json against NAME.expect                   */

static void test_lint_case(void **state)
{
    const char *name = *state;  /* "NAME.json" */
    char expect_path[4200], base[256];
    char *want;
    size_t wlen;
    struct rg_rules *r;
    char cwd[4096];

    assert_non_null(getcwd(cwd, sizeof(cwd)));
    assert_int_equal(chdir(rulesdir), 0);
    snprintf(base, sizeof(base), "%.*s", (int)(strlen(name) - 5), name);
    snprintf(expect_path, sizeof(expect_path), "%s.expect", base);
    want = read_all(expect_path, &wlen);
    if (want == NULL) {
        assert_int_equal(chdir(cwd), 0);
        fail_msg("%s/%s missing", rulesdir, expect_path);
    }
    diags_reset();
    r = rg_rules_load_file(name, "lists", collect, NULL);
    assert_int_equal(chdir(cwd), 0);
    if (strcmp(want, diags ? diags : "") != 0)
        fail_msg("%s: diagnostics differ\n--- expected\n%s--- got\n%s", name, want,
                 diags ? diags : "");
    /* it loads exactly when there is no error */
    if (strstr(want, ": error: ") != NULL)
        assert_null(r);
    else
        assert_non_null(r);
    rg_rules_free(r);
    rg_free(want);
}

/* The man page's examples (t/rules/example_*.json) do what it says. */
static struct rg_rules *load_example(const char *name)
{
    char path[4200], lists[4200];
    struct rg_rules *r;

    snprintf(path, sizeof(path), "%s/%s", rulesdir, name);
    snprintf(lists, sizeof(lists), "%s/lists", rulesdir);
    diags_reset();
    r = rg_rules_load_file(path, lists, collect, NULL);
    if (r == NULL)
        fail_msg("%s:\n%s", path, diags);
    return r;
}

static void test_examples(void **state)
{
    struct rg_rules *r;
    struct tin t = { "me@example.com", { "you@partner.de" }, "Subject: [Secure] Offer\r\n\r\n", 100, 0 };

    (void)state;
    r = load_example("example_subject.json");
    assert_string_equal(verdict(r, &t), "encrypt:secure-subject:t2");
    t.msg = "Subject: =?UTF-8?Q?=5Bvertraulich=5D_Vertrag?=\r\n\r\n";
    assert_string_equal(verdict(r, &t), "encrypt:secure-subject:t2");
    t.msg = "Subject: secure offer\r\n\r\n";
    assert_string_equal(verdict(r, &t), "forward:default");
    rg_rules_free(r);

    r = load_example("example_partners.json");
    assert_string_equal(verdict(r, &t), "encrypt:partner-domains");
    t.rcpt[0] = "colleague@internal.example";
    assert_string_equal(verdict(r, &t), "forward:default");
    t.encrypted = 1;
    assert_string_equal(verdict(r, &t), "decrypt:decrypt-inbound");
    /* not known from the Content-Type: asked only when a rule needs it */
    t.encrypted = -1;
    encrypted_answer = 1;
    ask_count = 0;
    assert_string_equal(verdict(r, &t), "decrypt:decrypt-inbound");
    assert_true(ask_count >= 1);
    encrypted_answer = 0;
    assert_string_equal(verdict(r, &t), "forward:default");
    t.encrypted = 0;
    rg_rules_free(r);

    r = load_example("example_internal.json");
    t.msg = "Subject: [internal] plans\r\n\r\n";
    t.rcpt[1] = "boss@internal.example";
    assert_string_equal(verdict(r, &t), "forward:default");
    t.rcpt[2] = "leak@gmail.example";
    assert_string_equal(verdict(r, &t), "reject:internal-only");
    t.msg = "Subject: plans\r\n\r\n";
    assert_string_equal(verdict(r, &t), "forward:default");
    t.rcpt[1] = t.rcpt[2] = NULL;
    rg_rules_free(r);

    r = load_example("example_blocklist.json");
    assert_string_equal(verdict(r, &t), "forward:default");
    t.sender = "Spammer@Evil.example";
    assert_string_equal(verdict(r, &t), "reject:blocked-sender");
    t.sender = "me@example.com";
    t.rcpt[1] = "leak@example.com";
    assert_string_equal(verdict(r, &t), "discard:blocked-recipient");
    t.rcpt[1] = NULL;
    t.size = 52428801;
    assert_string_equal(verdict(r, &t), "tempfail:too-big-for-encryption");
    t.size = 100;
    rg_rules_free(r);

    r = load_example("example_tags.json");
    t.msg = "Subject: Confidential: figures\r\n\r\n";
    assert_string_equal(verdict(r, &t), "encrypt:confidential:t3");
    t.msg = "Sensitivity: Company-Confidential\r\n\r\n";
    assert_string_equal(verdict(r, &t), "encrypt:confidential:t3");
    t.sender = "";
    assert_string_equal(verdict(r, &t), "forward:no-mailer-daemons:t3");
    t.msg = "Subject: lunch\r\n\r\n";
    assert_string_equal(verdict(r, &t), "forward:no-mailer-daemons:t2");
    t.sender = "me@example.com";
    assert_string_equal(verdict(r, &t), "forward:default:t2");
    rg_rules_free(r);
}

/* ------------------------------------------------------------------ */
/* loading                                                             */

static void test_empty_rule_set(void **state)
{
    static const struct tin t = { "a@example.com", { "b@example.org" }, "Subject: x\r\n\r\n", 10, 0 };
    struct rg_rules *r = load_ok("{}");

    (void)state;
    assert_string_equal(diags, "");
    assert_string_equal(verdict(r, &t), "forward:{}");
    assert_string_equal(rg_rules_source(r), "{}");
    assert_null(rg_rules_lists(r)[0]);
    rg_rules_free(r);
    /* no rule set at all: the same */
    assert_string_equal(verdict(NULL, &t), "forward:{}");
    assert_string_equal(rg_rules_source(NULL), "{}");
    r = load_ok(" { \"rules\" : [ ] }\n");
    assert_string_equal(verdict(r, &t), "forward:{}");
    assert_string_equal(rg_rules_source(r), " { \"rules\" : [ ] }\n");
    rg_rules_free(r);
    r = load_ok("{\"rules\":[]}");
    assert_string_equal(verdict(r, &t), "forward:{}");
    rg_rules_free(r);
    assert_null(rg_rules_free(NULL));
}

static void test_lists_named(void **state)
{
    struct rg_rules *r = load_ok(
        "{\"rules\":[{\"name\":\"a\",\"conditions\":[{\"field\":\"sender\",\"op\":\"in-list\",\"value\":\"blocked\"},"
        "{\"field\":\"recipient-domain\",\"op\":\"in-list\",\"value\":\"partners\"},"
        "{\"field\":\"sender-domain\",\"op\":\"in-list\",\"value\":\"partners\"}],\"action\":\"reject\"}]}");
    const char *const *l = rg_rules_lists(r);

    (void)state;
    assert_string_equal(l[0], "blocked");
    assert_string_equal(l[1], "partners");
    assert_null(l[2]);
    rg_rules_free(r);
}

static void test_action_names(void **state)
{
    (void)state;
    assert_string_equal(rg_action_name(RG_ACT_FORWARD), "forward");
    assert_string_equal(rg_action_name(RG_ACT_ENCRYPT), "encrypt");
    assert_string_equal(rg_action_name(RG_ACT_DECRYPT), "decrypt");
    assert_string_equal(rg_action_name(RG_ACT_REJECT), "reject");
    assert_string_equal(rg_action_name(RG_ACT_TEMPFAIL), "tempfail");
    assert_string_equal(rg_action_name(RG_ACT_DISCARD), "discard");
    assert_string_equal(rg_action_name((enum rg_action)99), "?");
}

static void test_positions(void **state)
{
    (void)state;
    /* columns count characters (ü, ß are one each), CRLF ends a line */
    assert_string_equal(load_bad("{\r\n  \"description\": \"Gr\xc3\xbc\xc3\x9f" "e\", \"bogus\": 1\r\n}"),
                        "t.json:2:27: error: unknown key \"bogus\" in the rule set\n");
    /* a byte order mark is skipped and not counted */
    assert_string_equal(load_bad("\xef\xbb\xbf{\"x\":1}"),
                        "t.json:1:2: error: unknown key \"x\" in the rule set\n");
    /* tabs count as one column */
    assert_string_equal(load_bad("{\n\t\"rules\": 5}"),
                        "t.json:2:11: error: \"rules\" must be an array, not a number\n");
    /* syntax errors */
    assert_string_equal(load_bad("{\"rules\": [}"),
                        "t.json:1:12: error: JSON syntax error: unallowed token at this point in JSON text\n");
    assert_string_equal(load_bad("{\"rules\": []"),
                        "t.json:1:13: error: JSON syntax error: premature EOF\n");
    assert_string_equal(load_bad("{\"rules\": []}\n{}"),
                        "t.json:2:1: error: JSON syntax error: trailing garbage\n");
    assert_string_equal(load_bad("{\"a\" 1}"),
                        "t.json:1:6: error: JSON syntax error: object key and value must be separated by a colon (':')\n");
    assert_string_equal(load_bad("{\"a\":1,}"),
                        "t.json:1:8: error: JSON syntax error: invalid object key (must be a string)\n");
    assert_string_equal(load_bad("// comment\n{}"),
                        "t.json:1:1: error: JSON syntax error: probable comment found in input text, comments are not enabled\n");
    assert_string_equal(load_bad("   \n\t"),
                        "t.json: error: the rule file is empty (the empty rule set is {})\n");
    assert_string_equal(load_bad("42"),
                        "t.json:1:1: error: a rule set is a JSON object (the empty rule set is {}), not a number\n");
    assert_string_equal(load_bad("null"),
                        "t.json:1:1: error: a rule set is a JSON object (the empty rule set is {}), not null\n");
}

static void test_json_depth(void **state)
{
    char json[1024];
    size_t o;

    (void)state;
    o = (size_t)snprintf(json, sizeof(json), "{\"description\": ");
    for (int i = 0; i < 200; i++)
        json[o++] = '[';
    for (int i = 0; i < 200; i++)
        json[o++] = ']';
    json[o++] = '}';
    json[o] = '\0';
    assert_string_equal(load_bad(json),
                        "t.json:1:144: error: JSON nested deeper than 128 levels\n");
}

static void test_too_many_rules(void **state)
{
    size_t cap = 12000 * 100, o;
    char *json = rg_malloc(cap);
    struct rg_rules *r;

    (void)state;
    for (int pass = 0; pass < 2; pass++) {
        int n = pass == 0 ? 10000 : 10001;
        o = (size_t)snprintf(json, cap, "{\"rules\":[\n");
        for (int i = 0; i < n; i++)
            o += (size_t)snprintf(json + o, cap - o,
                                  "{\"name\":\"r%d\",\"conditions\":[{\"field\":\"size\",\"op\":\"equals\","
                                  "\"value\":%d}],\"action\":\"encrypt\"}%s\n", i, i, i + 1 < n ? "," : "");
        snprintf(json + o, cap - o, "]}\n");
        if (pass == 0) {
            static const struct tin t = { "a@b", { "c@d" }, NULL, 9999, 0 };
            r = load_ok(json);
            assert_string_equal(verdict(r, &t), "encrypt:r9999");
            rg_rules_free(r);
        } else {
            assert_string_equal(load_bad(json), "t.json:10002:1: error: more than 10000 rules\n");
        }
    }
    rg_free(json);
}

static void test_file_too_large(void **state)
{
    size_t n = 16 * 1024 * 1024 + 1;
    char *big = rg_malloc(n + 1);
    char path[700], want[800];
    int fd;

    (void)state;
    memset(big, ' ', n);
    big[0] = '{';
    big[n - 1] = '}';
    big[n] = '\0';
    diags_reset();
    assert_null(rg_rules_load_buffer(big, n, "t.json", NULL, collect, NULL));
    assert_string_equal(diags, "t.json: error: the rule file is larger than 16 MiB\n");
    /* exactly 16 MiB is fine */
    big[n - 2] = '}';
    {
        struct rg_rules *r = rg_rules_load_buffer(big, n - 1, "t.json", NULL, collect, NULL);
        assert_non_null(r);
        rg_rules_free(r);
    }
    rg_free(big);

    snprintf(path, sizeof(path), "%s/big.json", tmpdir);
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(ftruncate(fd, (off_t)n), 0);
    close(fd);
    diags_reset();
    assert_null(rg_rules_load_file(path, NULL, collect, NULL));
    snprintf(want, sizeof(want), "%s: error: the rule file is larger than 16 MiB\n", path);
    assert_string_equal(diags, want);
    unlink(path);
}

static void test_load_file(void **state)
{
    char path[700], want[800];
    static const char json[] = "{\"rules\":[{\"name\":\"x\",\"action\":\"discard\"}]}\n";
    static const struct tin t = { "a@b", { "c@d" }, NULL, 1, 0 };
    struct rg_rules *r;

    (void)state;
    snprintf(path, sizeof(path), "%s/missing.json", tmpdir);
    diags_reset();
    assert_null(rg_rules_load_file(path, NULL, collect, NULL));
    snprintf(want, sizeof(want), "%s: error: cannot open: No such file or directory\n", path);
    assert_string_equal(diags, want);

    snprintf(path, sizeof(path), "%s/ok.json", tmpdir);
    write_file(path, json, sizeof(json) - 1);
    diags_reset();
    r = rg_rules_load_file(path, NULL, collect, NULL);
    assert_non_null(r);
    assert_string_equal(rg_rules_source(r), json);
    assert_string_equal(verdict(r, &t), "discard:x");
    rg_rules_free(r);
    unlink(path);
    /* a NULL diag callback is allowed; the logging one logs */
    assert_null(rg_rules_load_buffer("{", 1, NULL, NULL, NULL, NULL));
    assert_null(rg_rules_load_buffer("{\"x\":1}", 7, "log.json", NULL, rg_rules_diag_log, NULL));
    assert_null(rg_rules_load_buffer(" ", 1, "log.json", NULL, rg_rules_diag_log, NULL));
}

static void test_error_limit(void **state)
{
    size_t cap = 200 * 80, o;
    char *json = rg_malloc(cap);
    const char *d, *last;
    int lines = 0;

    (void)state;
    o = (size_t)snprintf(json, cap, "{\"rules\":[\n");
    for (int i = 0; i < 150; i++)
        o += (size_t)snprintf(json + o, cap - o, "{\"name\":\"r%d\",\"action\":\"x\"}%s\n", i,
                              i + 1 < 150 ? "," : "");
    snprintf(json + o, cap - o, "]}\n");
    d = load_bad(json);
    for (const char *p = d; *p; p++)
        lines += *p == '\n';
    assert_int_equal(lines, 101);
    assert_non_null(strstr(d, "t.json:2:23: error: unknown action \"x\"\n"));
    assert_non_null(strstr(d, "t.json:100:24: error: unknown action \"x\"\n"));
    assert_null(strstr(d, "t.json:101:"));
    /* the second error is the unreachable rule after the first, a catch-all */
    assert_non_null(strstr(d, "t.json:3:1: error: rule \"r1\" is unreachable"));
    last = d + strlen(d) - 1;
    while (last > d && last[-1] != '\n')
        last--;
    assert_string_equal(last, "t.json: error: too many errors, giving up\n");
    rg_free(json);
}

static void test_lists_dir_missing(void **state)
{
    struct rg_rules *r;
    static const char json[] = "{\"rules\":[{\"name\":\"a\",\"conditions\":[{\"field\":\"sender\","
                               "\"op\":\"in-list\",\"value\":\"blocked\"}],\"action\":\"reject\"}]}";

    (void)state;
    diags_reset();
    r = rg_rules_load_buffer(json, sizeof(json) - 1, "t.json", NULL, collect, NULL);
    assert_null(r);
    assert_string_equal(diags, "t.json:1:78: error: list \"blocked\": no lists directory given\n");
}

static void test_list_warning_position(void **state)
{
    char path[700], want[1200];

    (void)state;
    snprintf(path, sizeof(path), "%s/upper", listsdir);
    write_file(path, "ok@example.com\nBad@Example.com\n", 31);
    /* the list's warning sorts where the list is named, its errors after
     * the errors before that */
    assert_string_equal(load_bad("{\"rules\":[\n"
                                 "{\"name\":\"a\",\"action\":\"nope\",\"conditions\":[{\"field\":\"size\",\"op\":\"gt\",\"value\":1}]},\n"
                                 "{\"name\":\"b\",\"conditions\":[{\"field\":\"sender\",\"op\":\"in-list\",\"value\":\"upper\"}],\"action\":\"reject\"},\n"
                                 "{\"name\":\"c\",\"action\":\"nope\"}]}"),
                        (snprintf(want, sizeof(want),
                                  "t.json:2:22: error: unknown action \"nope\"\n"
                                  "%s:2:1: warning: e-mail address \"Bad@Example.com\" contains upper "
                                  "case: it will never match (envelope addresses are matched in lower case)\n"
                                  "t.json:4:22: error: unknown action \"nope\"\n", path), want));
    unlink(path);
}

/* ------------------------------------------------------------------ */
/* fields                                                              */

static void test_field_sender(void **state)
{
    struct tin t = { "CEO@Example.COM", { "x@partner.de" }, NULL, 100, 0 };

    (void)state;
    /* the envelope is lower-cased, and so are the values of equals and
     * contains on envelope fields */
    assert_true(holds("{\"field\":\"sender\",\"op\":\"equals\",\"value\":\"ceo@example.com\"}", &t));
    assert_true(holds("{\"field\":\"sender\",\"op\":\"equals\",\"value\":\"CEO@example.com\"}", &t));
    assert_false(holds("{\"field\":\"sender\",\"op\":\"equals\",\"value\":\"ceo@example\"}", &t));
    assert_true(holds("{\"field\":\"sender\",\"op\":\"contains\",\"value\":\"EO@EX\"}", &t));
    assert_true(holds("{\"field\":\"sender\",\"op\":\"regex\",\"value\":\"^ceo@\"}", &t));
    assert_false(holds("{\"field\":\"sender\",\"op\":\"regex\",\"value\":\"^CEO@\"}", &t));
    assert_true(holds("{\"field\":\"sender\",\"op\":\"regex\",\"value\":\"(?i)^CEO@\"}", &t));
    assert_true(holds("{\"field\":\"sender\",\"op\":\"exists\"}", &t));
    assert_true(holds("{\"field\":\"sender-domain\",\"op\":\"equals\",\"value\":\"example.com\"}", &t));
    assert_true(holds("{\"field\":\"sender-domain\",\"op\":\"exists\"}", &t));
    /* the null sender */
    t.sender = "";
    assert_false(holds("{\"field\":\"sender\",\"op\":\"exists\"}", &t));
    assert_true(holds("{\"field\":\"sender\",\"op\":\"exists\",\"not\":true}", &t));
    assert_true(holds("{\"field\":\"sender\",\"op\":\"equals\",\"value\":\"\"}", &t));
    assert_false(holds("{\"field\":\"sender-domain\",\"op\":\"exists\"}", &t));
    /* no '@': no domain; the domain is after the last '@' */
    t.sender = "postmaster";
    assert_false(holds("{\"field\":\"sender-domain\",\"op\":\"exists\"}", &t));
    t.sender = "\"a@b\"@Example.ORG";
    assert_true(holds("{\"field\":\"sender-domain\",\"op\":\"equals\",\"value\":\"example.org\"}", &t));
}

static void test_field_recipient(void **state)
{
    struct tin t = { "a@example.com", { "Bob@Partner.DE", "carol@example.org", "dave@other.net" },
                     NULL, 100, 0 };

    (void)state;
    /* any recipient */
    assert_true(holds("{\"field\":\"recipient\",\"op\":\"equals\",\"value\":\"bob@partner.de\"}", &t));
    assert_true(holds("{\"field\":\"recipient\",\"op\":\"equals\",\"value\":\"dave@other.net\"}", &t));
    assert_false(holds("{\"field\":\"recipient\",\"op\":\"equals\",\"value\":\"eve@other.net\"}", &t));
    assert_true(holds("{\"field\":\"recipient-domain\",\"op\":\"equals\",\"value\":\"other.net\"}", &t));
    assert_true(holds("{\"field\":\"recipient-domain\",\"op\":\"in-list\",\"value\":\"partners\"}", &t));
    /* every recipient */
    assert_false(holds("{\"field\":\"recipient-domain\",\"op\":\"in-list\",\"value\":\"partners\",\"every\":true}", &t));
    assert_true(holds("{\"field\":\"recipient\",\"op\":\"contains\",\"value\":\"@\",\"every\":true}", &t));
    /* not: no recipient matches */
    assert_false(holds("{\"field\":\"recipient-domain\",\"op\":\"in-list\",\"value\":\"partners\",\"not\":true}", &t));
    assert_true(holds("{\"field\":\"recipient-domain\",\"op\":\"equals\",\"value\":\"nowhere\",\"not\":true}", &t));
    /* one recipient (per-recipient evaluation) */
    t.rcpt[1] = NULL;
    assert_true(holds("{\"field\":\"recipient-domain\",\"op\":\"in-list\",\"value\":\"partners\",\"every\":true}", &t));
    assert_true(holds("{\"field\":\"recipient\",\"op\":\"exists\"}", &t));
    /* no recipients at all */
    t.rcpt[0] = NULL;
    assert_false(holds("{\"field\":\"recipient\",\"op\":\"exists\"}", &t));
    assert_false(holds("{\"field\":\"recipient\",\"op\":\"contains\",\"value\":\"\",\"every\":true}", &t));
}

static void test_field_header(void **state)
{
    struct tin t = { "a@example.com", { "b@example.org" },
                     "From: Alice <a@example.com>\r\n"
                     "Subject: =?UTF-8?B?W3NlY3VyZV0gR3LDvMOfZQ==?=\r\n"
                     "X-Tag: first\r\n"
                     "x-tag: second\r\n"
                     "X-Folded: one\r\n two\r\n\tthree\r\n"
                     "X-Empty:\r\n"
                     "\r\nbody: not a header\r\n", 500, 0 };

    (void)state;
    /* decoded (RFC 2047), UTF-8 */
    assert_true(holds("{\"field\":\"header:Subject\",\"op\":\"equals\",\"value\":\"[secure] Gr\xc3\xbc\xc3\x9f" "e\"}", &t));
    assert_true(holds("{\"field\":\"header:subject\",\"op\":\"contains\",\"value\":\"\xc3\xbc\xc3\x9f\"}", &t));
    assert_true(holds("{\"field\":\"header:SUBJECT\",\"op\":\"regex\",\"value\":\"^\\\\[secure\\\\] Gr.\xc3\x9f" "e$\"}", &t));
    /* values are case-sensitive */
    assert_false(holds("{\"field\":\"header:Subject\",\"op\":\"contains\",\"value\":\"[SECURE]\"}", &t));
    assert_true(holds("{\"field\":\"header:Subject\",\"op\":\"regex\",\"value\":\"(?i)\\\\[SECURE\\\\]\"}", &t));
    /* unfolded */
    assert_true(holds("{\"field\":\"header:X-Folded\",\"op\":\"equals\",\"value\":\"one two\\tthree\"}", &t));
    /* every instance is tested */
    assert_true(holds("{\"field\":\"header:X-Tag\",\"op\":\"equals\",\"value\":\"first\"}", &t));
    assert_true(holds("{\"field\":\"header:X-Tag\",\"op\":\"equals\",\"value\":\"second\"}", &t));
    assert_false(holds("{\"field\":\"header:X-Tag\",\"op\":\"equals\",\"value\":\"first\",\"every\":true}", &t));
    assert_true(holds("{\"field\":\"header:X-Tag\",\"op\":\"regex\",\"value\":\"^(first|second)$\",\"every\":true}", &t));
    assert_false(holds("{\"field\":\"header:X-Tag\",\"op\":\"equals\",\"value\":\"first\",\"not\":true}", &t));
    /* exists, also when empty; a missing header */
    assert_true(holds("{\"field\":\"header:X-Empty\",\"op\":\"exists\"}", &t));
    assert_true(holds("{\"field\":\"header:X-Empty\",\"op\":\"equals\",\"value\":\"\"}", &t));
    assert_false(holds("{\"field\":\"header:X-Missing\",\"op\":\"exists\"}", &t));
    assert_false(holds("{\"field\":\"header:X-Missing\",\"op\":\"contains\",\"value\":\"\"}", &t));
    assert_true(holds("{\"field\":\"header:X-Missing\",\"op\":\"contains\",\"value\":\"x\",\"not\":true}", &t));
    assert_false(holds("{\"field\":\"header:X-Missing\",\"op\":\"contains\",\"value\":\"\",\"every\":true}", &t));
    /* the body is not a header */
    assert_false(holds("{\"field\":\"header:body\",\"op\":\"exists\"}", &t));
    /* envelope, never headers */
    assert_false(holds("{\"field\":\"sender\",\"op\":\"contains\",\"value\":\"alice\"}", &t));
    /* without a header section nothing exists */
    t.msg = NULL;
    assert_false(holds("{\"field\":\"header:Subject\",\"op\":\"exists\"}", &t));
}

static void test_field_size_encrypted(void **state)
{
    struct tin t = { "a@b", { "c@d" }, NULL, 1000, 0 };

    (void)state;
    assert_true(holds("{\"field\":\"size\",\"op\":\"equals\",\"value\":1000}", &t));
    assert_false(holds("{\"field\":\"size\",\"op\":\"equals\",\"value\":999}", &t));
    assert_true(holds("{\"field\":\"size\",\"op\":\"gt\",\"value\":999}", &t));
    assert_false(holds("{\"field\":\"size\",\"op\":\"gt\",\"value\":1000}", &t));
    assert_true(holds("{\"field\":\"size\",\"op\":\"lt\",\"value\":1001}", &t));
    assert_false(holds("{\"field\":\"size\",\"op\":\"lt\",\"value\":1000}", &t));
    assert_true(holds("{\"field\":\"size\",\"op\":\"lt\",\"value\":18446744073709551615}", &t));
    assert_string_equal(load_bad("{\"rules\":[{\"name\":\"r\",\"conditions\":[{\"field\":\"size\",\"op\":\"gt\",\"value\":18446744073709551616}],\"action\":\"encrypt\"}]}"),
                        "t.json:1:71: error: \"value\" of \"size\" must be a whole number of bytes, not 18446744073709551616\n");
    assert_false(holds("{\"field\":\"encrypted\",\"op\":\"exists\"}", &t));
    assert_false(holds("{\"field\":\"encrypted\",\"op\":\"equals\",\"value\":true}", &t));
    assert_true(holds("{\"field\":\"encrypted\",\"op\":\"equals\",\"value\":false}", &t));
    t.encrypted = 1;
    assert_true(holds("{\"field\":\"encrypted\",\"op\":\"exists\"}", &t));
    assert_true(holds("{\"field\":\"encrypted\",\"op\":\"equals\",\"value\":true}", &t));
    assert_false(holds("{\"field\":\"encrypted\",\"op\":\"equals\",\"value\":false}", &t));
    assert_false(holds("{\"field\":\"encrypted\",\"op\":\"exists\",\"not\":true}", &t));
}

static void test_op_in_list(void **state)
{
    struct tin t = { "Spam@Evil.Example", { "x@example.org" }, "X-Domain: Partner.COM\r\n\r\n", 1, 0 };

    (void)state;
    assert_true(holds("{\"field\":\"sender\",\"op\":\"in-list\",\"value\":\"blocked\"}", &t));
    assert_true(holds("{\"field\":\"recipient-domain\",\"op\":\"in-list\",\"value\":\"partners\"}", &t));
    assert_false(holds("{\"field\":\"sender-domain\",\"op\":\"in-list\",\"value\":\"partners\"}", &t));
    /* header values are not lower-cased: list entries match them as is */
    assert_true(holds("{\"field\":\"header:X-Domain\",\"op\":\"in-list\",\"value\":\"partners\"}", &t));
    /* the envelope is: an upper-case list entry never matches it */
    t.rcpt[0] = "x@Partner.COM";
    assert_false(holds("{\"field\":\"recipient-domain\",\"op\":\"in-list\",\"value\":\"partners\"}", &t));
}

static void test_big_list(void **state)
{
    struct rg_rules *r = load_ok(
        "{\"rules\":[{\"name\":\"customers\",\"conditions\":[{\"field\":\"recipient\",\"op\":\"in-list\","
        "\"value\":\"big\"}],\"action\":\"encrypt\"}]}");
    char addr[100];
    struct tin t = { "a@b", { addr }, NULL, 1, 0 };

    (void)state;
    for (int i = 0; i < 100000; i += 7) {
        snprintf(addr, sizeof(addr), "User%d@Customer%d.example", i, i % 1000);
        assert_string_equal(verdict(r, &t), "encrypt:customers");
        snprintf(addr, sizeof(addr), "user%d@customer%d.example", i, (i + 1) % 1000);
        assert_string_equal(verdict(r, &t), "forward:default");
    }
    rg_rules_free(r);
}

/* ------------------------------------------------------------------ */
/* combinators, rules, actions                                         */

static void test_combinators(void **state)
{
    static const char A[] = "{\"field\":\"sender\",\"op\":\"contains\",\"value\":\"a\"}";      /* true */
    static const char B[] = "{\"field\":\"sender\",\"op\":\"contains\",\"value\":\"b\"}";      /* true */
    static const char X[] = "{\"field\":\"sender\",\"op\":\"contains\",\"value\":\"zq\"}";      /* false */
    static const struct tin t = { "ab@example.com", { "c@d" }, NULL, 1, 0 };
    char c[2048];

    (void)state;
    snprintf(c, sizeof(c), "{\"all\":[%s,%s]}", A, B);
    assert_true(holds(c, &t));
    snprintf(c, sizeof(c), "{\"all\":[%s,%s]}", A, X);
    assert_false(holds(c, &t));
    snprintf(c, sizeof(c), "{\"any\":[%s,%s]}", X, B);
    assert_true(holds(c, &t));
    snprintf(c, sizeof(c), "{\"any\":[%s,%s]}", X, X);
    assert_false(holds(c, &t));
    snprintf(c, sizeof(c), "{\"not\":%s}", X);
    assert_true(holds(c, &t));
    snprintf(c, sizeof(c), "{\"not\":%s}", A);
    assert_false(holds(c, &t));
    /* nested: not(any(x, all(a, not b))) = true */
    snprintf(c, sizeof(c), "{\"not\":{\"any\":[%s,{\"all\":[%s,{\"not\":%s}]}]}}", X, A, B);
    assert_true(holds(c, &t));
    /* all(any(x, b), not(not(a)), any(all(a,b), x)) = true */
    snprintf(c, sizeof(c), "{\"all\":[{\"any\":[%s,%s]},{\"not\":{\"not\":%s}},{\"any\":[{\"all\":[%s,%s]},%s]}]}",
             X, B, A, A, B, X);
    assert_true(holds(c, &t));
}

static void test_rule_match_all_any(void **state)
{
    static const struct tin t = { "ab@example.com", { "c@d" }, NULL, 1, 0 };
    struct rg_rules *r = load_ok(
        "{\"rules\":["
        "{\"name\":\"all-fails\",\"conditions\":[{\"field\":\"sender\",\"op\":\"contains\",\"value\":\"a\"},"
        "{\"field\":\"sender\",\"op\":\"contains\",\"value\":\"zq\"}],\"action\":\"reject\"},"
        "{\"name\":\"any-holds\",\"match\":\"any\",\"conditions\":[{\"field\":\"sender\",\"op\":\"contains\",\"value\":\"zq\"},"
        "{\"field\":\"sender\",\"op\":\"contains\",\"value\":\"b\"}],\"action\":\"decrypt\"}]}");

    (void)state;
    assert_string_equal(verdict(r, &t), "decrypt:any-holds");
    rg_rules_free(r);
    r = load_ok("{\"rules\":[{\"name\":\"explicit-all\",\"match\":\"all\",\"conditions\":["
                "{\"field\":\"sender\",\"op\":\"contains\",\"value\":\"a\"},"
                "{\"field\":\"sender\",\"op\":\"contains\",\"value\":\"b\"}],\"action\":\"discard\"}]}");
    assert_string_equal(verdict(r, &t), "discard:explicit-all");
    rg_rules_free(r);
}

static void test_actions_and_replies(void **state)
{
    static const char *const acts[] = { "forward", "encrypt", "decrypt", "reject", "tempfail", "discard" };
    static const struct tin t = { "a@b", { "c@d" }, NULL, 1, 0 };
    struct rg_rules_input in = { "a@b", t.rcpt, 1, NULL, 1, 0, NULL, NULL };
    struct rg_rules_result res;
    struct rg_rules *r;
    char json[512];

    (void)state;
    for (size_t i = 0; i < 6; i++) {
        snprintf(json, sizeof(json), "{\"rules\":[{\"name\":\"n\",\"action\":\"%s\"}]}", acts[i]);
        r = load_ok(json);
        rg_rules_eval(r, &in, &res);
        assert_int_equal(res.action, (int)i);
        assert_string_equal(res.rule, "n");
        if (i == RG_ACT_REJECT)
            assert_string_equal(res.reply, "550 5.7.1 Message rejected by policy");
        else if (i == RG_ACT_TEMPFAIL)
            assert_string_equal(res.reply, "451 4.7.1 Message deferred by policy");
        else
            assert_string_equal(res.reply, "");
        assert_int_equal(res.ntags, 0);
        rg_rules_result_free(&res);
        rg_rules_free(r);
    }
    r = load_ok("{\"rules\":[{\"name\":\"big\",\"conditions\":[{\"field\":\"size\",\"op\":\"gt\",\"value\":100}],"
                "\"action\":\"tempfail\",\"reply\":\"452 4.3.1 Try again later\"}],"
                "\"default\":{\"action\":\"reject\",\"reply\":\"554 5.7.1 No policy for you\"}}");
    in.size = 101;
    rg_rules_eval(r, &in, &res);
    assert_int_equal(res.action, RG_ACT_TEMPFAIL);
    assert_string_equal(res.reply, "452 4.3.1 Try again later");
    rg_rules_result_free(&res);
    in.size = 100;
    rg_rules_eval(r, &in, &res);
    assert_int_equal(res.action, RG_ACT_REJECT);
    assert_string_equal(res.rule, "default");
    assert_string_equal(res.reply, "554 5.7.1 No policy for you");
    rg_rules_result_free(&res);
    rg_rules_free(r);
    /* replies: enhanced codes with 1-3 digits, text optional */
    r = load_ok("{\"rules\":[{\"name\":\"a\",\"conditions\":[{\"field\":\"size\",\"op\":\"gt\",\"value\":5}],"
                "\"action\":\"reject\",\"reply\":\"550 5.7.1\"},"
                "{\"name\":\"b\",\"action\":\"reject\",\"reply\":\"553 5.123.999 x\"}]}");
    rg_rules_free(r);
    assert_string_equal(load_bad("{\"rules\":[{\"name\":\"a\",\"action\":\"reject\",\"reply\":\"550 5.7.1234 x\"}]}"),
                        "t.json:1:49: error: the reply of \"reject\" must be a 5xx reply with an enhanced status code, e.g. \"550 5.7.1 text\"\n");
    assert_string_equal(load_bad("{\"rules\":[{\"name\":\"a\",\"action\":\"reject\",\"reply\":\"550 5.7.1 line\\r\\nbreak\"}]}"),
                        "t.json:1:49: error: the reply of \"reject\" must be a 5xx reply with an enhanced status code, e.g. \"550 5.7.1 text\"\n");
}

static void test_first_match_wins(void **state)
{
    static const struct tin t = { "a@example.com", { "b@partner.de" }, "Subject: [secure]\r\n\r\n", 1, 0 };
    struct rg_rules *r = load_ok(
        "{\"rules\":["
        "{\"name\":\"not-me\",\"conditions\":[{\"field\":\"size\",\"op\":\"gt\",\"value\":1}],\"action\":\"reject\"},"
        "{\"name\":\"first\",\"conditions\":[{\"field\":\"header:Subject\",\"op\":\"contains\",\"value\":\"[secure]\"}],"
        "\"action\":\"encrypt\",\"tags\":[{\"add-header\":[\"X-First\",\"1\"]}]},"
        "{\"name\":\"second\",\"conditions\":[{\"field\":\"recipient-domain\",\"op\":\"in-list\",\"value\":\"partners\"}],"
        "\"action\":\"discard\",\"tags\":[{\"add-header\":[\"X-Second\",\"1\"]}]}],"
        "\"default\":{\"action\":\"tempfail\",\"tags\":[{\"add-header\":[\"X-Default\",\"1\"]}]}}");

    (void)state;
    /* the second rule matches too; its tags are not taken */
    assert_string_equal(verdict(r, &t), "encrypt:first:t1");
    rg_rules_free(r);
}

static void test_continue_and_tags(void **state)
{
    static const char json[] =
        "{\"rules\":["
        "{\"name\":\"stamp\",\"continue\":true,\"tags\":[{\"add-header\":[\"X-Stamp\",\"1\"]},{\"remove-header\":\"X-Drop\"}]},"
        "{\"name\":\"confidential\",\"continue\":true,\"conditions\":[{\"field\":\"header:Subject\",\"op\":\"contains\",\"value\":\"confidential\"}],"
        "\"action\":\"encrypt\",\"tags\":[{\"subject-prefix\":\"[enc]\"}]},"
        "{\"name\":\"big\",\"conditions\":[{\"field\":\"size\",\"op\":\"gt\",\"value\":1000}],\"action\":\"tempfail\","
        "\"tags\":[{\"set-header\":[\"X-Big\",\"yes\"]}]},"
        "{\"name\":\"never-after-big\",\"conditions\":[{\"field\":\"size\",\"op\":\"gt\",\"value\":2000}],\"action\":\"reject\"}"
        "],\"default\":{\"action\":\"forward\",\"tags\":[{\"add-header\":[\"X-Default\",\"1\"]}]}}";
    struct rg_rules *r = load_ok(json);
    struct tin t = { "a@b", { "c@d" }, "Subject: confidential plans\r\n\r\n", 10, 0 };
    struct rg_rules_input in;
    struct rg_rules_result res;
    struct rg_headers h;

    (void)state;
    /* stamp (2 tags) + confidential (1 tag, action encrypt stands) */
    assert_string_equal(verdict(r, &t), "encrypt:confidential:t3");
    /* + big decides (1 tag); the rule after it is not evaluated */
    t.size = 5000;
    assert_string_equal(verdict(r, &t), "tempfail:big:t4");
    /* only stamp matched: it has no action, the default decides and adds its tags */
    t.size = 10;
    t.msg = "Subject: lunch\r\n\r\n";
    assert_string_equal(verdict(r, &t), "forward:default:t3");

    /* the tags in order */
    memset(&in, 0, sizeof(in));
    in.sender = "a@b";
    in.rcpts = t.rcpt;
    in.nrcpt = 1;
    in.size = 5000;
    assert_int_equal(rg_headers_parse("Subject: confidential\r\nX-Drop: x\r\n\r\n", 36, 1, 4096, &h), RG_HDR_OK);
    in.headers = &h;
    rg_rules_eval(r, &in, &res);
    assert_int_equal(res.ntags, 4);
    assert_int_equal(rg_rules_apply_tags(&res, &h), 4);
    {
        size_t len;
        char *out = rg_headers_serialize(&h, &len);
        assert_string_equal(out, "Subject: [enc] confidential\r\nX-Stamp: 1\r\nX-Big: yes\r\n\r\n");
        rg_free(out);
    }
    rg_rules_result_free(&res);
    assert_null(res.tags);
    assert_int_equal(res.ntags, 0);
    rg_headers_free(&h);
    rg_rules_free(r);

    /* a later continue rule with an action overrides an earlier one */
    r = load_ok("{\"rules\":[{\"name\":\"a\",\"continue\":true,\"action\":\"encrypt\"},"
                "{\"name\":\"b\",\"continue\":true,\"action\":\"discard\"},"
                "{\"name\":\"c\",\"continue\":true,\"conditions\":[{\"field\":\"size\",\"op\":\"gt\",\"value\":100}],\"action\":\"reject\"}]}");
    t.size = 1;
    assert_string_equal(verdict(r, &t), "discard:b");
    rg_rules_free(r);
}

static void test_default(void **state)
{
    static const struct tin t = { "a@b", { "c@d" }, NULL, 1, 0 };
    struct rg_rules *r;

    (void)state;
    r = load_ok("{\"default\":{\"action\":\"encrypt\"}}");
    assert_string_equal(verdict(r, &t), "encrypt:default");
    rg_rules_free(r);
    r = load_ok("{\"default\":{}}");
    assert_string_equal(verdict(r, &t), "forward:default");
    rg_rules_free(r);
    r = load_ok("{\"rules\":[{\"name\":\"x\",\"conditions\":[{\"field\":\"size\",\"op\":\"gt\",\"value\":5}],\"action\":\"reject\"}]}");
    assert_string_equal(verdict(r, &t), "forward:default");
    rg_rules_free(r);
    r = load_ok("{\"default\":{\"action\":\"decrypt\",\"tags\":[{\"add-header\":[\"X-D\",\"1\"]}]}}");
    assert_string_equal(verdict(r, &t), "decrypt:default:t1");
    rg_rules_free(r);
}

/* ------------------------------------------------------------------ */
/* regex limits                                                        */

static void test_regex_limits(void **state)
{
    const size_t n = 30000;
    char *subject = rg_malloc(n + 32), *msg;
    struct rg_rules *r;
    struct tin t = { "a@b", { "c@d" }, NULL, 1, 0 };
    time_t start;

    (void)state;
    memset(subject, 'a', n);
    strcpy(subject + n, "!");
    msg = rg_sprintf("Subject: %s\r\n\r\n", subject);
    t.msg = msg;
    /* catastrophic backtracking: stopped by the limits, no match */
    r = load_ok("{\"rules\":[{\"name\":\"evil\",\"conditions\":[{\"field\":\"header:Subject\",\"op\":\"regex\","
                "\"value\":\"^(a+)+$\"}],\"action\":\"reject\"},"
                "{\"name\":\"evil2\",\"conditions\":[{\"field\":\"header:Subject\",\"op\":\"regex\","
                "\"value\":\"(a|aa|a?a)*b\"}],\"action\":\"reject\"}]}");
    alarm(60);                  /* without limits this would not end */
    start = time(NULL);
    assert_string_equal(verdict(r, &t), "forward:default");
    assert_true(time(NULL) - start < 30);
    alarm(0);
    rg_rules_free(r);
    rg_free(msg);
    rg_free(subject);
}

/* Bad input (issue 7): a header repeated 9,000 times, each instance a
 * catastrophic subject. Each match is bounded by the limits, but 10,000
 * limit hits took 16 s; a condition now stops after RG_RULES_LIMIT_HITS
 * hits (the rest count as no match, logged once). Other conditions, on
 * other fields or later rules, are still evaluated. */
static void test_regex_limits_many_values(void **state)
{
    const size_t inst = 9000, alen = 90;
    char *msg = rg_malloc(inst * (alen + 12) + 64), *p = msg;
    struct rg_rules *r;
    struct tin t = { "a@b", { "ceo@example.com" }, NULL, 1, 0 };

    (void)state;
    for (size_t i = 0; i < inst; i++) {
        p += sprintf(p, "Subject: ");
        memset(p, 'a', alen);
        p += alen;
        p += sprintf(p, "%c\r\n", (int)('!' + i % 10));
    }
    strcpy(p, "\r\n");
    t.msg = msg;
    r = load_ok("{\"rules\":["
                "{\"name\":\"evil\",\"conditions\":[{\"field\":\"header:Subject\",\"op\":\"regex\","
                "\"value\":\"^(a+)+$\"}],\"action\":\"discard\"},"
                "{\"name\":\"evil-every\",\"conditions\":[{\"field\":\"header:Subject\",\"op\":\"regex\","
                "\"value\":\"^(a|aa)+$\",\"every\":true}],\"action\":\"discard\"},"
                "{\"name\":\"ceo\",\"conditions\":[{\"field\":\"recipient\",\"op\":\"regex\","
                "\"value\":\"^ceo@\"}],\"action\":\"reject\"}]}");
    /* no clock is checked (the suite also runs under valgrind); the alarm
     * only turns a stall into a failure instead of a hung test */
    alarm(300);
    assert_string_equal(verdict(r, &t), "reject:ceo");
    alarm(0);
    rg_rules_free(r);
    rg_free(msg);
}

static void test_truncation_64k(void **state)
{
    const size_t n = 70000;
    char *v = rg_malloc(n + 32), *msg;
    struct tin t = { "a@b", { "c@d" }, NULL, 1, 0 };

    (void)state;
    memset(v, 'x', n);
    memcpy(v + 100, "EARLY", 5);
    strcpy(v + n, "LATE");
    msg = rg_sprintf("X-Long: %s\r\n\r\n", v);
    t.msg = msg;
    assert_true(holds("{\"field\":\"header:X-Long\",\"op\":\"contains\",\"value\":\"EARLY\"}", &t));
    assert_true(holds("{\"field\":\"header:X-Long\",\"op\":\"regex\",\"value\":\"EARLY\"}", &t));
    assert_false(holds("{\"field\":\"header:X-Long\",\"op\":\"contains\",\"value\":\"LATE\"}", &t));
    assert_false(holds("{\"field\":\"header:X-Long\",\"op\":\"regex\",\"value\":\"LATE$\"}", &t));
    rg_free(msg);
    /* a cut never splits a UTF-8 character: still valid for PCRE2 */
    memset(v, 'x', n);
    v[65535] = '\xc3';
    v[65536] = '\xbc';
    v[n] = '\0';
    msg = rg_sprintf("X-Long: %s\r\n\r\n", v);
    t.msg = msg;
    assert_true(holds("{\"field\":\"header:X-Long\",\"op\":\"regex\",\"value\":\"^x+$\"}", &t));
    rg_free(msg);
    rg_free(v);
}

/* ------------------------------------------------------------------ */
/* tags on real header sections                                        */

/* Apply the tags of a rule set whose only rule always matches to msg;
 * return the serialized section, *changes set. */
static char *apply(const char *tags, const char *msg, int *changes)
{
    char json[4096];
    struct rg_rules *r;
    struct rg_rules_input in;
    struct rg_rules_result res;
    struct rg_headers h;
    const char *rcpt = "c@d";
    size_t len;
    char *out;

    snprintf(json, sizeof(json), "{\"rules\":[{\"name\":\"t\",\"action\":\"forward\",\"tags\":[%s]}]}", tags);
    r = load_ok(json);
    assert_int_equal(rg_headers_parse(msg, strlen(msg), 1, 1 << 20, &h), RG_HDR_OK);
    memset(&in, 0, sizeof(in));
    in.sender = "a@b";
    in.rcpts = &rcpt;
    in.nrcpt = 1;
    in.headers = &h;
    rg_rules_eval(r, &in, &res);
    *changes = rg_rules_apply_tags(&res, &h);
    out = rg_headers_serialize(&h, &len);
    rg_rules_result_free(&res);
    rg_headers_free(&h);
    rg_rules_free(r);
    return out;
}

#define CHECK_APPLY(tags, msg, want, nchanges) do {                 \
        int ch_;                                                    \
        char *o_ = apply(tags, msg, &ch_);                          \
        assert_string_equal(o_, want);                              \
        assert_int_equal(ch_, nchanges);                            \
        rg_free(o_);                                                \
    } while (0)

static void test_tags_headers(void **state)
{
    static const char msg[] = "From: a@b\r\nX-Old: 1\r\nSubject: Hi\r\nx-old: 2\r\n\r\nbody\r\n";

    (void)state;
    CHECK_APPLY("{\"add-header\":[\"X-Regigate\",\"encrypted\"]}", msg,
                "From: a@b\r\nX-Old: 1\r\nSubject: Hi\r\nx-old: 2\r\nX-Regigate: encrypted\r\n\r\n", 1);
    /* set: every instance replaced by one, where the first was */
    CHECK_APPLY("{\"set-header\":[\"X-Old\",\"new\"]}", msg,
                "From: a@b\r\nX-Old: new\r\nSubject: Hi\r\n\r\n", 1);
    CHECK_APPLY("{\"set-header\":[\"X-New\",\"v\"]}", msg,
                "From: a@b\r\nX-Old: 1\r\nSubject: Hi\r\nx-old: 2\r\nX-New: v\r\n\r\n", 1);
    CHECK_APPLY("{\"remove-header\":\"x-OLD\"}", msg, "From: a@b\r\nSubject: Hi\r\n\r\n", 1);
    CHECK_APPLY("{\"remove-header\":\"X-Missing\"}", msg,
                "From: a@b\r\nX-Old: 1\r\nSubject: Hi\r\nx-old: 2\r\n\r\n", 0);
    /* in order: add, then remove what was added */
    CHECK_APPLY("{\"add-header\":[\"X-A\",\"1\"]},{\"add-header\":[\"X-A\",\"2\"]},{\"remove-header\":\"X-Old\"}",
                msg, "From: a@b\r\nSubject: Hi\r\nX-A: 1\r\nX-A: 2\r\n\r\n", 3);
    CHECK_APPLY("{\"add-header\":[\"X-A\",\"1\"]},{\"remove-header\":\"X-A\"}", msg,
                "From: a@b\r\nX-Old: 1\r\nSubject: Hi\r\nx-old: 2\r\n\r\n", 2);
    /* non-ASCII values become encoded-words */
    {
        int ch;
        char *o = apply("{\"add-header\":[\"X-Note\",\"Gr\xc3\xbc\xc3\x9f" "e\"]}", "Subject: x\r\n\r\n", &ch);
        struct rg_headers h;
        char *v;
        assert_int_equal(ch, 1);
        assert_non_null(strstr(o, "X-Note: =?"));
        assert_int_equal(rg_headers_parse(o, strlen(o), 1, 4096, &h), RG_HDR_OK);
        v = rg_header_value(&h, (size_t)rg_headers_find(&h, "X-Note", 0));
        assert_string_equal(v, "Gr\xc3\xbc\xc3\x9f" "e");
        rg_free(v);
        rg_headers_free(&h);
        rg_free(o);
    }
}

static void test_tags_subject_prefix(void **state)
{
    (void)state;
    CHECK_APPLY("{\"subject-prefix\":\"[encrypted]\"}", "Subject: Hello\r\n\r\n",
                "Subject: [encrypted] Hello\r\n\r\n", 1);
    /* not added twice: a subject that contains the prefix is left alone */
    CHECK_APPLY("{\"subject-prefix\":\"[encrypted]\"}", "Subject: [encrypted] Hello\r\n\r\n",
                "Subject: [encrypted] Hello\r\n\r\n", 0);
    CHECK_APPLY("{\"subject-prefix\":\"[encrypted]\"}", "Subject: Re: [encrypted] Hello\r\n\r\n",
                "Subject: Re: [encrypted] Hello\r\n\r\n", 0);
    CHECK_APPLY("{\"subject-prefix\":\"[encrypted]\"},{\"subject-prefix\":\"[encrypted]\"}",
                "Subject: Hello\r\n\r\n", "Subject: [encrypted] Hello\r\n\r\n", 1);
    /* case matters */
    CHECK_APPLY("{\"subject-prefix\":\"[encrypted]\"}", "Subject: [ENCRYPTED] Hello\r\n\r\n",
                "Subject: [encrypted] [ENCRYPTED] Hello\r\n\r\n", 1);
    /* a prefix ending in white space brings its own separator */
    CHECK_APPLY("{\"subject-prefix\":\"SECURE: \"}", "Subject: Hello\r\n\r\n",
                "Subject: SECURE: Hello\r\n\r\n", 1);
    /* no subject: one is added; an empty subject gets the prefix alone */
    CHECK_APPLY("{\"subject-prefix\":\"[encrypted] \"}", "From: a@b\r\n\r\n",
                "From: a@b\r\nSubject: [encrypted]\r\n\r\n", 1);
    CHECK_APPLY("{\"subject-prefix\":\"[encrypted]\"}", "Subject:\r\nFrom: a@b\r\n\r\n",
                "Subject: [encrypted]\r\nFrom: a@b\r\n\r\n", 1);
    /* only the first Subject */
    CHECK_APPLY("{\"subject-prefix\":\"[x]\"}", "Subject: one\r\nSubject: two\r\n\r\n",
                "Subject: [x] one\r\nSubject: two\r\n\r\n", 1);
    /* a decoded subject: compared decoded, written back encoded */
    {
        int ch;
        char *o = apply("{\"subject-prefix\":\"[secure]\"}",
                        "Subject: =?ISO-8859-1?Q?Gr=FC=DFe?=\r\n\r\n", &ch);
        struct rg_headers h;
        char *v;
        assert_int_equal(ch, 1);
        assert_int_equal(rg_headers_parse(o, strlen(o), 1, 4096, &h), RG_HDR_OK);
        v = rg_header_value(&h, 0);
        assert_string_equal(v, "[secure] Gr\xc3\xbc\xc3\x9f" "e");
        rg_free(v);
        rg_headers_free(&h);
        rg_free(o);
    }
}

static void test_tags_subject_remove(void **state)
{
    (void)state;
    CHECK_APPLY("{\"subject-remove\":\"(?i)\\\\s*\\\\[secure\\\\]\"}",
                "Subject: [SECURE] Quarterly figures [secure]\r\n\r\n",
                "Subject: Quarterly figures\r\n\r\n", 1);
    /* no match: nothing changes, not even the folding */
    CHECK_APPLY("{\"subject-remove\":\"\\\\[secure\\\\]\"}",
                "Subject: a long\r\n  folded subject\r\n\r\n",
                "Subject: a long\r\n  folded subject\r\n\r\n", 0);
    /* empty matches remove nothing and do not loop */
    CHECK_APPLY("{\"subject-remove\":\"x*\"}", "Subject: abc\r\n\r\n", "Subject: abc\r\n\r\n", 0);
    CHECK_APPLY("{\"subject-remove\":\"x*\"}", "Subject: axxbxc\r\n\r\n", "Subject: abc\r\n\r\n", 1);
    CHECK_APPLY("{\"subject-remove\":\"\\\\b\"}", "Subject: Gr\xc3\xbc\xc3\x9f" "e\r\n\r\n",
                "Subject: Gr\xc3\xbc\xc3\x9f" "e\r\n\r\n", 0);
    /* everything removed: an empty subject */
    CHECK_APPLY("{\"subject-remove\":\".+\"}", "Subject: all of it\r\n\r\n", "Subject: \r\n\r\n", 1);
    /* no subject */
    CHECK_APPLY("{\"subject-remove\":\"x\"}", "From: a@b\r\n\r\n", "From: a@b\r\n\r\n", 0);
    /* UTF-8 in the decoded subject */
    CHECK_APPLY("{\"subject-remove\":\"^\\\\[vertraulich\\\\] \"}",
                "Subject: =?UTF-8?Q?[vertraulich]_Gr=C3=BC=C3=9Fe?=\r\n\r\n",
                "Subject: =?UTF-8?B?R3LDvMOfZQ==?=\r\n\r\n", 1);
    /* a catastrophic pattern: the limit stops it, nothing changes */
    {
        char *msg = rg_malloc(20100);
        strcpy(msg, "Subject: ");
        memset(msg + 9, 'a', 20000);
        strcpy(msg + 20009, "!\r\n\r\n");
        int ch;
        char *o = apply("{\"subject-remove\":\"^(a+)+$\"}", msg, &ch);
        assert_int_equal(ch, 0);
        assert_string_equal(o, msg);
        rg_free(o);
        rg_free(msg);
    }
}

static void test_tags_prefix_then_remove(void **state)
{
    (void)state;
    /* the brief's example: encrypt on [secure], remove it, mark it */
    CHECK_APPLY("{\"set-header\":[\"X-Regigate\",\"encrypted\"]},"
                "{\"subject-remove\":\"(?i)\\\\s*\\\\[(secure|vertraulich)\\\\]\"},"
                "{\"subject-prefix\":\"[encrypted]\"}",
                "From: a@b\r\nSubject: [Vertraulich] Vertrag\r\nX-Regigate: old\r\n\r\n",
                "From: a@b\r\nSubject: [encrypted] Vertrag\r\nX-Regigate: encrypted\r\n\r\n", 3);
}

/* ------------------------------------------------------------------ */

static const struct CMUnitTest static_tests[] = {
    cmocka_unit_test(test_examples),
    cmocka_unit_test(test_empty_rule_set),
    cmocka_unit_test(test_lists_named),
    cmocka_unit_test(test_action_names),
    cmocka_unit_test(test_positions),
    cmocka_unit_test(test_json_depth),
    cmocka_unit_test(test_too_many_rules),
    cmocka_unit_test(test_file_too_large),
    cmocka_unit_test(test_load_file),
    cmocka_unit_test(test_error_limit),
    cmocka_unit_test(test_lists_dir_missing),
    cmocka_unit_test(test_list_warning_position),
    cmocka_unit_test(test_field_sender),
    cmocka_unit_test(test_field_recipient),
    cmocka_unit_test(test_field_header),
    cmocka_unit_test(test_field_size_encrypted),
    cmocka_unit_test(test_op_in_list),
    cmocka_unit_test(test_big_list),
    cmocka_unit_test(test_combinators),
    cmocka_unit_test(test_rule_match_all_any),
    cmocka_unit_test(test_actions_and_replies),
    cmocka_unit_test(test_first_match_wins),
    cmocka_unit_test(test_continue_and_tags),
    cmocka_unit_test(test_default),
    cmocka_unit_test(test_regex_limits),
    cmocka_unit_test(test_regex_limits_many_values),
    cmocka_unit_test(test_truncation_64k),
    cmocka_unit_test(test_tags_headers),
    cmocka_unit_test(test_tags_subject_prefix),
    cmocka_unit_test(test_tags_subject_remove),
    cmocka_unit_test(test_tags_prefix_then_remove),
};

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int main(void)
{
    const char *src = getenv("top_srcdir");
    char dir[4096];
    DIR *dp;
    struct dirent *de;
    char **names = NULL;
    size_t nnames = 0, ncases, nstatic = sizeof(static_tests) / sizeof(static_tests[0]);
    struct CMUnitTest *tests;
    int rc;

    /* one test per lint case, in name order */
    snprintf(dir, sizeof(dir), "%s/t/rules", src && *src ? src : ".");
    if ((dp = opendir(dir)) != NULL) {
        while ((de = readdir(dp)) != NULL) {
            size_t l = strlen(de->d_name);
            if (l > 5 && strcmp(de->d_name + l - 5, ".json") == 0) {
                names = rg_realloc(names, (nnames + 1) * sizeof(*names));
                names[nnames++] = rg_strdup(de->d_name);
            }
        }
        closedir(dp);
    }
    if (nnames > 0)
        qsort(names, nnames, sizeof(*names), cmp_str);
    tests = rg_calloc(nstatic + nnames + 1, sizeof(*tests));
    memcpy(tests, static_tests, sizeof(static_tests));
    for (size_t i = 0; i < nnames; i++) {
        tests[nstatic + i].name = names[i];
        tests[nstatic + i].test_func = test_lint_case;
        tests[nstatic + i].initial_state = names[i];
    }
    ncases = nnames;
    if (nnames < 15) {
        /* the lint cases must be found: fail loudly, not pass silently */
        fprintf(stderr, "test_rules: only %zu lint cases in %s (set top_srcdir)\n", nnames, dir);
        tests[nstatic + ncases].name = "lint cases found";
        tests[nstatic + ncases].test_func = test_lint_case;
        tests[nstatic + ncases].initial_state = (void *)"missing-lint-cases.json";
        ncases++;
    }
    rc = _cmocka_run_group_tests("rules", tests, nstatic + ncases, group_setup, group_teardown);
    for (size_t i = 0; i < nnames; i++)
        rg_free(names[i]);
    rg_free(names);
    rg_free(tests);
    return rc;
}
