/*
 * fuzz_rules.c - libFuzzer target for the rule set loader (lib/rules_load.c)
 * and, for rule sets that load, the evaluator and the tags
 * (lib/rules_eval.c). The input is a whole rule file. Lists named
 * "partners" and "blocked" exist in a temporary lists directory (created
 * once, removed at exit), as does "internal", so "in-list" paths are
 * exercised too.
 *
 * Invariants (abort() when broken):
 *  - every diagnostic names the rule file or a list file, has a position
 *    (line >= 1, col >= 1) or none (line 0, col 0), a non-empty one-line
 *    message; at most RG_RULES_MAX_ERRORS errors plus the "too many
 *    errors" line;
 *  - a rule set is returned exactly when no error was reported, and its
 *    source is the input;
 *  - loading the same input twice gives the same diagnostics;
 *  - a loaded rule set evaluates a few messages to a valid action with a
 *    deciding rule, a 5xx reply for reject and a 4xx one for tempfail;
 *    its tags apply to a header section that then serializes and parses
 *    again.
 *
 * With RG_FUZZ_DEBUG set in the environment the diagnostics go to stderr.
 */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "header.h"
#include "mem.h"
#include "rules.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_INPUT (64 * 1024)
#define MAX_ERRORS 100          /* RG_RULES_MAX_ERRORS */

static char lists_dir[4096];
#define NLISTS 3
static char list_paths[NLISTS][4200];

static void check(int ok)
{
    if (!ok)
        abort();
}

static void remove_lists(void)
{
    for (int i = 0; i < NLISTS; i++)
        unlink(list_paths[i]);
    rmdir(lists_dir);
}

static void make_lists(void)
{
    static const char *const names[NLISTS] = { "partners", "blocked", "internal" };
    static const char *const content[NLISTS] = {
        "partner.de\nexample.org\r\n\nPartner.COM\n",
        "spam@evil.example\nLeak@Example.com\n",
        "example.com\ny\n",
    };
    const char *tmp = getenv("TMPDIR");

    if (tmp == NULL || *tmp == '\0' || strlen(tmp) > 3000)
        tmp = "/tmp";
    snprintf(lists_dir, sizeof(lists_dir), "%s/rg-fuzz-lists.XXXXXX", tmp);
    check(mkdtemp(lists_dir) != NULL);
    for (int i = 0; i < NLISTS; i++) {
        FILE *fp;
        snprintf(list_paths[i], sizeof(list_paths[i]), "%s/%s", lists_dir, names[i]);
        fp = fopen(list_paths[i], "w");
        check(fp != NULL);
        fputs(content[i], fp);
        check(fclose(fp) == 0);
    }
    atexit(remove_lists);
}

struct diags {
    char *text;
    size_t len, cap;
    int errors;
};

static void diag(void *ctx, enum rg_diag_severity sev, const char *file, int line, int col,
                 const char *msg)
{
    struct diags *d = ctx;
    char buf[2048];
    int n;

    check(sev == RG_DIAG_ERROR || sev == RG_DIAG_WARNING);
    check(strcmp(file, "fuzz.json") == 0 || strcmp(file, list_paths[0]) == 0
          || strcmp(file, list_paths[1]) == 0 || strcmp(file, list_paths[2]) == 0);
    check((line == 0 && col == 0) || (line >= 1 && col >= 1));
    check(msg != NULL && msg[0] != '\0' && strchr(msg, '\n') == NULL && strchr(msg, '\r') == NULL);
    if (sev == RG_DIAG_ERROR)
        d->errors++;
    n = snprintf(buf, sizeof(buf), "%s:%d:%d:%d:%s\n", file, line, col, (int)sev, msg);
    check(n > 0 && (size_t)n < sizeof(buf));
    if (d->len + (size_t)n + 1 > d->cap) {
        d->cap = (d->len + (size_t)n + 1) * 2;
        d->text = rg_realloc(d->text, d->cap);
    }
    memcpy(d->text + d->len, buf, (size_t)n + 1);
    d->len += (size_t)n;
    if (getenv("RG_FUZZ_DEBUG") != NULL)
        fputs(buf, stderr);
}

static void check_eval(const struct rg_rules *r)
{
    static const char msg[] =
        "From: Alice <ceo@example.com>\r\n"
        "Subject: =?UTF-8?B?W3NlY3VyZV0gR3LDvMOfZQ==?= [vertraulich]\r\n"
        "X-Tag: a\r\nX-Tag: b\r\n"
        "\r\nbody\r\n";
    static const char *const rcpts[] = { "Bob@Partner.de", "carol@example.org", "x@y" };
    static const char *const senders[] = { "CEO@example.com", "", "spam@evil.example" };

    for (size_t k = 0; k < 3; k++) {
        struct rg_headers h;
        struct rg_rules_input in;
        struct rg_rules_result res;
        char *out;
        size_t len;

        check(rg_headers_parse(msg, sizeof(msg) - 1, 1, 65536, &h) == RG_HDR_OK);
        memset(&in, 0, sizeof(in));
        in.sender = senders[k];
        in.rcpts = rcpts + k;
        in.nrcpt = 3 - k;
        in.headers = k == 2 ? NULL : &h;
        in.size = k * 1000;
        in.encrypted = (int)(k & 1);
        rg_rules_eval(r, &in, &res);
        check(res.action >= RG_ACT_FORWARD && res.action <= RG_ACT_DISCARD);
        check(res.rule != NULL && res.rule[0] != '\0');
        if (res.action == RG_ACT_REJECT)
            check(res.reply[0] == '5' && res.reply[4] == '5');
        else if (res.action == RG_ACT_TEMPFAIL)
            check(res.reply[0] == '4' && res.reply[4] == '4');
        else
            check(res.reply[0] == '\0');
        check((res.ntags == 0) == (res.tags == NULL));
        check(rg_rules_apply_tags(&res, &h) >= 0);
        out = rg_headers_serialize(&h, &len);
        rg_headers_free(&h);
        check(rg_headers_parse(out, len, 1, 1 << 24, &h) == RG_HDR_OK);
        rg_headers_free(&h);
        rg_free(out);
        rg_rules_result_free(&res);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct diags d1 = { NULL, 0, 0, 0 }, d2 = { NULL, 0, 0, 0 };
    struct rg_rules *r, *again;

    if (size > MAX_INPUT)
        return 0;
    if (lists_dir[0] == '\0')
        make_lists();
    r = rg_rules_load_buffer((const char *)data, size, "fuzz.json", lists_dir, diag, &d1);
    check((r != NULL) == (d1.errors == 0));
    check(d1.errors <= MAX_ERRORS + 1);
    if (r != NULL) {
        check(memcmp(rg_rules_source(r), data, size) == 0 && rg_rules_source(r)[size] == '\0');
        for (const char *const *l = rg_rules_lists(r); *l != NULL; l++)
            check(strcmp(*l, "partners") == 0 || strcmp(*l, "blocked") == 0
                  || strcmp(*l, "internal") == 0);
        check_eval(r);
    }
    again = rg_rules_load_buffer((const char *)data, size, "fuzz.json", lists_dir, diag, &d2);
    check((again == NULL) == (r == NULL));
    check(d1.len == d2.len && (d1.len == 0 || memcmp(d1.text, d2.text, d1.len) == 0));
    rg_rules_free(again);
    check(rg_rules_free(r) == NULL);
    rg_free(d1.text);
    rg_free(d2.text);
    return 0;
}
