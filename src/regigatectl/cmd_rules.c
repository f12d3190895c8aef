/*
 * cmd_rules.c - regigatectl rules lint | show.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "conffile.h"
#include "ctl.h"
#include "mem.h"
#include "rules.h"

static const struct rg_ctl_cmd lint_cmd = { "rules", "lint", "FILE... [--lists-dir DIR]", "", NULL };
static const struct rg_ctl_cmd show_cmd = { "rules", "show", "ROUTE", "", NULL };

struct lint_state {
    int errors, warnings;
};

/* "FILE:LINE:COL: error: message", or "FILE: error: ..." without a position. */
static void print_diag(void *ctx, enum rg_diag_severity sev, const char *file, int line, int col,
                       const char *msg)
{
    struct lint_state *st = ctx;
    const char *what = sev == RG_DIAG_ERROR ? "error" : "warning";

    if (sev == RG_DIAG_ERROR)
        st->errors++;
    else
        st->warnings++;
    if (line > 0)
        fprintf(stderr, "%s:%d:%d: %s: %s\n", file, line, col, what, msg);
    else
        fprintf(stderr, "%s: %s: %s\n", file, what, msg);
}

int rg_ctl_rules_lint(struct rg_ctl *ctl, int argc, char **argv)
{
    const char *lists_dir = NULL;
    const char **files = rg_calloc((size_t)argc + 1, sizeof(*files));
    int nfiles = 0, failed = 0;

    (void)ctl;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--lists-dir") == 0 && i + 1 < argc)
            lists_dir = argv[++i];
        else if (strncmp(argv[i], "--lists-dir=", 12) == 0)
            lists_dir = argv[i] + 12;
        else if (argv[i][0] == '-' && argv[i][1] != '\0')
            nfiles = -1;        /* "-" alone is stdin */
        else if (nfiles >= 0)
            files[nfiles++] = argv[i];
    }
    if (nfiles <= 0) {
        rg_free(files);
        return rg_ctl_usage(&lint_cmd);
    }
    for (int i = 0; i < nfiles; i++) {
        struct lint_state st = { 0, 0 };
        struct rg_rules *r = rg_rules_load_file(files[i], lists_dir, print_diag, &st);
        if (r == NULL || st.errors > 0) {
            failed = 1;
        } else {
            printf("%s: ok\n", files[i]);
        }
        rg_rules_free(r);
    }
    rg_free(files);
    fflush(stdout);
    return failed ? RG_CTL_FAIL : RG_CTL_OK;
}

int rg_ctl_rules_show(struct rg_ctl *ctl, int argc, char **argv)
{
    const struct rg_conf *conf;
    const struct rg_route *route;
    FILE *fp;
    char buf[65536];
    size_t n;
    int last = '\n';

    if (argc != 2)
        return rg_ctl_usage(&show_cmd);
    if ((conf = rg_ctl_conf(ctl)) == NULL)
        return RG_CTL_FAIL;
    if ((route = rg_conf_route(conf, argv[1])) == NULL) {
        rg_ctl_error("%s: no route \"%s\"", conf->path, argv[1]);
        return RG_CTL_FAIL;
    }
    if (route->rules == NULL) {
        /* no rule file: the empty rule set, everything is forwarded */
        fputs("{}\n", stdout);
        return RG_CTL_OK;
    }
    if ((fp = fopen(route->rules, "r")) == NULL) {
        rg_ctl_error("route %s: rules %s: %s", route->name, route->rules, strerror(errno));
        return RG_CTL_FAIL;
    }
    while ((n = fread(buf, 1, sizeof(buf), fp)) > 0) {
        fwrite(buf, 1, n, stdout);
        last = buf[n - 1];
    }
    if (ferror(fp)) {
        rg_ctl_error("route %s: rules %s: read error", route->name, route->rules);
        fclose(fp);
        return RG_CTL_FAIL;
    }
    fclose(fp);
    if (last != '\n')
        putchar('\n');
    return fflush(stdout) == 0 ? RG_CTL_OK : RG_CTL_FAIL;
}
