/*
 * cmd_lists.c - regigatectl rules import, lists add | show | import |
 * remove: the appliance's "Import Rules" and "Manage Lists".
 *
 * Everything is checked with the loaders regigated uses (lib/rules.h,
 * lib/lists.h) before it replaces anything, written to a temporary file
 * and renamed into place, and then regigated is asked to reload
 * (SIGHUP). A rule set is only installed when it loads with the route's
 * lists, so rules that name a missing list are refused; a list is only
 * removed when the route's rules do not name it.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conffile.h"
#include "ctl.h"
#include "lists.h"
#include "mem.h"
#include "routecert.h"
#include "rules.h"

/* Largest rule set accepted by rules import. */
#define RULES_MAX (16u * 1024 * 1024)

static const struct rg_ctl_cmd import_cmd = { "rules", "import", "ROUTE [FILE|-]", "", NULL };
static const struct rg_ctl_cmd lists_cmd = { "lists", "add|show|import|remove",
    "ROUTE NAME [FILE|-]  (lists show ROUTE: every list)", "", NULL };

struct diag_count {
    int errors;
};

/* "FILE:LINE:COL: error: message" on stderr, as rules lint prints it. */
static void diag(void *ctx, enum rg_diag_severity sev, const char *file, int line, int col,
                 const char *msg)
{
    struct diag_count *d = ctx;
    const char *what = sev == RG_DIAG_ERROR ? "error" : "warning";

    if (sev == RG_DIAG_ERROR)
        d->errors++;
    if (line > 0)
        fprintf(stderr, "%s:%d:%d: %s: %s\n", file, line, col, what, msg);
    else
        fprintf(stderr, "%s: %s: %s\n", file, what, msg);
}

static void quiet(void *ctx, enum rg_diag_severity sev, const char *file, int line, int col,
                  const char *msg)
{
    (void)ctx; (void)sev; (void)file; (void)line; (void)col; (void)msg;
}

/* FILE, or standard input for "-" or no FILE; at most max bytes. */
static char *read_input(const char *file, size_t max, size_t *len)
{
    FILE *fp = file == NULL || strcmp(file, "-") == 0 ? stdin : fopen(file, "re");
    char *data;

    if (fp == NULL) {
        rg_ctl_error("cannot read %s: %s", file, strerror(errno));
        return NULL;
    }
    data = rg_malloc(max + 2);
    *len = fread(data, 1, max + 1, fp);
    if (ferror(fp)) {
        rg_ctl_error("cannot read %s: %s", fp == stdin ? "standard input" : file, strerror(errno));
        data = rg_free(data);
    } else if (*len > max) {
        rg_ctl_error("%s is larger than %zu bytes", fp == stdin ? "standard input" : file, max);
        data = rg_free(data);
    } else {
        data[*len] = '\0';
    }
    if (fp != stdin)
        fclose(fp);
    return data;
}

static const struct rg_route *route_named(struct rg_ctl *ctl, const char *name)
{
    const struct rg_conf *conf = rg_ctl_conf(ctl);
    const struct rg_route *r;

    if (conf == NULL)
        return NULL;
    if ((r = rg_conf_route(conf, name)) == NULL)
        rg_ctl_error("no route '%s' (in %s or %s)", name, conf->path, conf->routes_dir);
    return r;
}

static void report_reload(const struct rg_conf *conf)
{
    switch (rg_ctl_hup_regigated(conf)) {
    case 1:
        printf("regigated reloaded (SIGHUP)\n");
        break;
    case 0:
        printf("regigated is not running: the change applies when it starts\n");
        break;
    default:
        break;
    }
}

/* ---- rules import -------------------------------------------------------------- */

int rg_ctl_rules_import(struct rg_ctl *ctl, int argc, char **argv)
{
    const struct rg_route *r;
    struct rg_routecert_owner owner;
    struct diag_count d = { 0 };
    struct rg_rules *rules;
    const char *file;
    char *json, err[512];
    size_t len;

    if (argc < 2 || argc > 3 || argv[1][0] == '-')
        return rg_ctl_usage(&import_cmd);
    file = argc == 3 ? argv[2] : "-";
    if ((r = route_named(ctl, argv[1])) == NULL || rg_ctl_file_owner(ctl->conf, &owner) < 0)
        return RG_CTL_FAIL;
    if (r->rules == NULL) {
        rg_ctl_error("route %s has no 'rules' file: set rules = PATH in %s", r->name, r->file);
        return RG_CTL_FAIL;
    }
    if ((json = read_input(file, RULES_MAX, &len)) == NULL)
        return RG_CTL_FAIL;
    /* the full check, with the route's lists: a missing list is an error */
    rules = rg_rules_load_buffer(json, len, file, r->lists_dir, diag, &d);
    if (rules == NULL || d.errors > 0) {
        rg_rules_free(rules);
        rg_free(json);
        rg_ctl_error("route %s: rule set refused; the rules in use (%s) are unchanged",
                     r->name, r->rules);
        return RG_CTL_FAIL;
    }
    rg_rules_free(rules);
    if (rg_routecert_write_file(r->rules, json, len, 0640, &owner, err, sizeof(err)) < 0) {
        rg_ctl_error("route %s: %s", r->name, err);
        rg_free(json);
        return RG_CTL_FAIL;
    }
    rg_free(json);
    printf("route %s: rules installed in %s\n", r->name, r->rules);
    report_reload(ctl->conf);
    return RG_CTL_OK;
}

/* ---- lists ------------------------------------------------------------------ */

/* Does the route's rule set name the list? 1 yes, 0 no, -1 cannot tell. */
static int referenced(const struct rg_route *r, const char *name)
{
    struct rg_rules *rules;
    const char *const *names;
    int found = 0;

    if (r->rules == NULL)
        return 0;
    rules = rg_rules_load_file(r->rules, r->lists_dir, quiet, NULL);
    if (rules == NULL)
        return -1;
    for (names = rg_rules_lists(rules); names != NULL && *names != NULL; names++)
        found |= strcmp(*names, name) == 0;
    rg_rules_free(rules);
    return found;
}

/* Write the list from input, check it with the list loader, rename it in. */
static int install_list(struct rg_ctl *ctl, const struct rg_route *r, const char *name,
                        const char *file, int must_exist)
{
    struct rg_routecert_owner owner;
    struct diag_count d = { 0 };
    struct rg_list *l;
    char *path, *tmp = NULL, *data = NULL, err[512];
    size_t len;
    int exists, rc = RG_CTL_FAIL;

    path = rg_sprintf("%s/%s", r->lists_dir, name);
    exists = access(path, F_OK) == 0;
    if (must_exist && !exists) {
        rg_ctl_error("route %s has no list '%s': add it with regigatectl lists add %s %s",
                     r->name, name, r->name, name);
        goto out;
    }
    if (!must_exist && exists) {
        rg_ctl_error("route %s has a list '%s' already: replace it with regigatectl lists "
                     "import %s %s", r->name, name, r->name, name);
        goto out;
    }
    if (rg_ctl_file_owner(ctl->conf, &owner) < 0 || (data = read_input(file, RG_LIST_MAX_FILE_SIZE, &len)) == NULL)
        goto out;
    if (mkdir(r->lists_dir, 0700) < 0 && errno != EEXIST) {
        rg_ctl_error("cannot create %s: %s", r->lists_dir, strerror(errno));
        goto out;
    }
    tmp = rg_sprintf("%s/.%s.new", r->lists_dir, name);
    if (rg_routecert_write_file(tmp, data, len, 0640, &owner, err, sizeof(err)) < 0) {
        rg_ctl_error("%s", err);
        goto out;
    }
    l = rg_list_load(tmp, name, diag, &d);
    if (l == NULL || d.errors > 0) {
        rg_list_free(l);
        unlink(tmp);
        rg_ctl_error("route %s: list '%s' refused; nothing changed", r->name, name);
        goto out;
    }
    printf("route %s: list %s %s, %zu entr%s\n", r->name, name, exists ? "replaced" : "added",
           rg_list_count(l), rg_list_count(l) == 1 ? "y" : "ies");
    rg_list_free(l);
    if (rename(tmp, path) < 0) {
        rg_ctl_error("cannot rename %s to %s: %s", tmp, path, strerror(errno));
        unlink(tmp);
        goto out;
    }
    report_reload(ctl->conf);
    rc = RG_CTL_OK;
out:
    rg_free(data);
    rg_free(tmp);
    rg_free(path);
    return rc;
}

static int cat_file(const char *path)
{
    FILE *fp = fopen(path, "re");
    char buf[65536];
    size_t n;

    if (fp == NULL) {
        rg_ctl_error("cannot read %s: %s", path, strerror(errno));
        return RG_CTL_FAIL;
    }
    while ((n = fread(buf, 1, sizeof(buf), fp)) > 0)
        fwrite(buf, 1, n, stdout);
    fclose(fp);
    return fflush(stdout) == 0 ? RG_CTL_OK : RG_CTL_FAIL;
}

static int by_name(const struct dirent **a, const struct dirent **b)
{
    return strcmp((*a)->d_name, (*b)->d_name);
}

static int list_entry(const struct dirent *d)
{
    return d->d_name[0] != '.' && rg_list_name_valid(d->d_name);
}

/* lists show ROUTE: NAME, entries, and whether the rules use it. */
static int show_all(const struct rg_route *r)
{
    struct dirent **names = NULL;
    int n = scandir(r->lists_dir, &names, list_entry, by_name);

    if (n < 0) {
        if (errno == ENOENT)
            return RG_CTL_OK;
        rg_ctl_error("cannot read %s: %s", r->lists_dir, strerror(errno));
        return RG_CTL_FAIL;
    }
    for (int i = 0; i < n; i++) {
        char *path = rg_sprintf("%s/%s", r->lists_dir, names[i]->d_name);
        struct rg_list *l = rg_list_load(path, names[i]->d_name, quiet, NULL);
        int ref = referenced(r, names[i]->d_name);
        if (l != NULL)
            printf("%s\t%zu entries\t%s\n", names[i]->d_name, rg_list_count(l),
                   ref == 1 ? "used by the rules" : ref == 0 ? "not used" : "rules do not load");
        else
            printf("%s\tunreadable\n", names[i]->d_name);
        rg_list_free(l);
        rg_free(path);
        free(names[i]);
    }
    free(names);
    return fflush(stdout) == 0 ? RG_CTL_OK : RG_CTL_FAIL;
}

static int remove_list(struct rg_ctl *ctl, const struct rg_route *r, const char *name)
{
    char *path = rg_sprintf("%s/%s", r->lists_dir, name);
    int rc = RG_CTL_FAIL;

    if (access(path, F_OK) < 0) {
        rg_ctl_error("route %s has no list '%s'", r->name, name);
    } else {
        switch (referenced(r, name)) {
        case 1:
            rg_ctl_error("route %s: list '%s' is used by the rules (%s): import rules without "
                         "it first", r->name, name, r->rules);
            break;
        case -1:
            rg_ctl_error("route %s: the rules (%s) do not load, so whether they use list '%s' "
                         "is unknown: check them with regigatectl rules lint", r->name, r->rules,
                         name);
            break;
        default:
            if (unlink(path) < 0) {
                rg_ctl_error("cannot remove %s: %s", path, strerror(errno));
            } else {
                printf("route %s: list %s removed\n", r->name, name);
                report_reload(ctl->conf);
                rc = RG_CTL_OK;
            }
        }
    }
    rg_free(path);
    return rc;
}

int rg_ctl_lists(struct rg_ctl *ctl, int argc, char **argv)
{
    const char *verb = argv[0], *name;
    const struct rg_route *r;

    if (argc < 2 || argc > 4 || argv[1][0] == '-')
        return rg_ctl_usage(&lists_cmd);
    if ((r = route_named(ctl, argv[1])) == NULL)
        return RG_CTL_FAIL;
    if (r->lists_dir == NULL) {
        rg_ctl_error("route %s has no lists_dir: set lists_dir = PATH in %s", r->name, r->file);
        return RG_CTL_FAIL;
    }
    if (argc == 2) {
        if (strcmp(verb, "show") == 0)
            return show_all(r);
        return rg_ctl_usage(&lists_cmd);
    }
    name = argv[2];
    if (!rg_list_name_valid(name)) {
        rg_ctl_error("invalid list name '%s': use 1 to %d ASCII letters, digits, '-' and '_'",
                     name, RG_LIST_NAME_MAX);
        return RG_CTL_USAGE;
    }
    if (strcmp(verb, "add") == 0 || strcmp(verb, "import") == 0)
        return install_list(ctl, r, name, argc == 4 ? argv[3] : "-", strcmp(verb, "import") == 0);
    if (argc != 3)
        return rg_ctl_usage(&lists_cmd);
    if (strcmp(verb, "show") == 0) {
        char *path = rg_sprintf("%s/%s", r->lists_dir, name);
        int rc;
        if (access(path, F_OK) < 0) {
            rg_ctl_error("route %s has no list '%s'", r->name, name);
            rc = RG_CTL_FAIL;
        } else {
            rc = cat_file(path);
        }
        rg_free(path);
        return rc;
    }
    return remove_list(ctl, r, name);
}
