/*
 * regigatectl - the administration tool of regigate: check and show the
 * rule sets of the routes, enrol routes with their provider, decrypt a
 * saved message (more groups follow: lists, ...).
 *
 *   regigatectl [-c FILE] GROUP VERB [ARGS]
 *   regigatectl [-c FILE] COMMAND [ARGS]      (a command of one word)
 *
 * Every command is one entry of the table below; see regigatectl(8).
 */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conffile.h"
#include "ctl.h"
#include "log.h"

static const struct rg_ctl_cmd commands[] = {
    { "route", "add", "NAME --listen IP:PORT --provider HOST:PORT [OPTIONS]",
      "add a route (see regigatectl(8) for the options)", rg_ctl_route_add },
    { "route", "list", "",
      "list the routes: id, name, public, filter and reinjection addresses", rg_ctl_route_list },
    { "route", "show", "NAME", "print a route's settings", rg_ctl_route_show },
    { "route", "set", "NAME --KEY VALUE...", "change settings of a route", rg_ctl_route_set },
    { "route", "remove", "NAME", "remove a route with its rules, lists and certificates",
      rg_ctl_route_remove },
    { "postfix", "generate", "[--output DIR] [--apply [--postfix-dir DIR] [--no-reload]]",
      "write the routes' Postfix configuration; --apply merges, checks, reloads",
      rg_ctl_postfix_generate },
    { "rules", "lint", "FILE... [--lists-dir DIR]",
      "check rule files (regigate-rules(5)), report every problem", rg_ctl_rules_lint },
    { "rules", "show", "ROUTE",
      "print the rule set of a route as configured", rg_ctl_rules_show },
    { "rules", "import", "ROUTE [FILE|-]",
      "check a rule set with the route's lists, install it, reload", rg_ctl_rules_import },
    { "lists", "add", "ROUTE NAME [FILE|-]", "add a list to a route", rg_ctl_lists },
    { "lists", "show", "ROUTE [NAME]", "print a list, or the route's lists", rg_ctl_lists },
    { "lists", "import", "ROUTE NAME [FILE|-]", "replace a list's content", rg_ctl_lists },
    { "lists", "remove", "ROUTE NAME", "remove a list the rules do not use", rg_ctl_lists },
    { "route", "cert-request", "ROUTE [--cn NAME] [--san NAME]...",
      "create the route's provider key if needed, print its certificate request",
      rg_ctl_route_cert_request },
    { "route", "cert-import", "ROUTE < signed.crt",
      "check and install the certificate the provider signed", rg_ctl_route_cert_import },
    { "route", "status", "[ROUTE]",
      "show a route's settings and whether its certificate is Needed or Done",
      rg_ctl_route_status },
    { "route", "check-provider", "ROUTE",
      "connect to the route's provider with its certificate (GET /v1/health)",
      rg_ctl_route_check_provider },
    { "diagnose", NULL, "[ROUTE] [--postfix-dir DIR] [--no-dns]",
      "check the configuration, listeners, Postfix, provider, certificates, spool, DNS",
      rg_ctl_diagnose },
    { "decrypt", NULL,
      "--recipient ADDRESS (--route NAME | --provider URL --ca FILE --cert FILE [--key FILE]) "
      "[-o OUT] [MESSAGE]",
      "decrypt a saved encrypted message with the KEK the provider gives the recipient",
      rg_ctl_decrypt },
};
#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

void rg_ctl_error(const char *fmt, ...)
{
    va_list ap;

    fputs("regigatectl: error: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

/* "GROUP VERB ARGS", or "COMMAND ARGS" for a command of one word. */
static void synopsis(const struct rg_ctl_cmd *cmd, char *buf, size_t len)
{
    if (cmd->verb != NULL)
        snprintf(buf, len, "%s %s %s", cmd->group, cmd->verb, cmd->args);
    else
        snprintf(buf, len, "%s %s", cmd->group, cmd->args);
}

static void usage(FILE *f)
{
    fputs("usage: regigatectl [-c FILE] COMMAND [ARGS]\n", f);
    for (size_t i = 0; i < NCOMMANDS; i++) {
        char syn[256];
        synopsis(&commands[i], syn, sizeof(syn));
        if (strlen(syn) > 40)       /* the help on a line of its own */
            fprintf(f, "  %s\n  %-40s %s\n", syn, "", commands[i].help);
        else
            fprintf(f, "  %-40s %s\n", syn, commands[i].help);
    }
    fprintf(f, "options:\n"
            "  -c FILE  configuration file (default %s)\n"
            "  -h       this help\n"
            "  -V       print the version\n", RG_CTL_DEFAULT_CONF);
}

int rg_ctl_usage(const struct rg_ctl_cmd *cmd)
{
    char syn[256];

    synopsis(cmd, syn, sizeof(syn));
    fprintf(stderr, "usage: regigatectl %s\n", syn);
    return RG_CTL_USAGE;
}

const struct rg_conf *rg_ctl_conf(struct rg_ctl *ctl)
{
    char err[1024];

    if (ctl->conf == NULL) {
        ctl->conf = rg_conf_load_flags(ctl->conf_path, RG_CONF_NO_ROUTES_OK, err, sizeof(err));
        if (ctl->conf == NULL)
            rg_ctl_error("%s", err);
    }
    return ctl->conf;
}

int main(int argc, char **argv)
{
    struct rg_ctl ctl = { RG_CTL_DEFAULT_CONF, NULL };
    const struct rg_ctl_cmd *group_seen = NULL;
    int i = 1, rc;

    rg_log_open("regigatectl", RG_LOG_STDERR, 0);
    /* options before the command; the command parses its own */
    for (; i < argc && argv[i][0] == '-'; i++) {
        if (strcmp(argv[i], "-c") == 0 && i + 1 < argc) {
            ctl.conf_path = argv[++i];
        } else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            usage(stdout);
            return RG_CTL_OK;
        } else if (strcmp(argv[i], "-V") == 0 || strcmp(argv[i], "--version") == 0) {
            printf("regigatectl %s\n", PACKAGE_VERSION);
            return RG_CTL_OK;
        } else if (strcmp(argv[i], "--") == 0) {
            i++;
            break;
        } else {
            rg_ctl_error("unknown option %s", argv[i]);
            usage(stderr);
            return RG_CTL_USAGE;
        }
    }
    if (i >= argc) {
        usage(stderr);
        return RG_CTL_USAGE;
    }
    for (size_t k = 0; k < NCOMMANDS; k++) {
        if (strcmp(commands[k].group, argv[i]) != 0)
            continue;
        group_seen = &commands[k];
        if (commands[k].verb == NULL) {
            rc = commands[k].run(&ctl, argc - i, argv + i);
            rg_conf_free(ctl.conf);
            return rc;
        }
        if (i + 1 < argc && strcmp(commands[k].verb, argv[i + 1]) == 0) {
            rc = commands[k].run(&ctl, argc - i - 1, argv + i + 1);
            rg_conf_free(ctl.conf);
            return rc;
        }
    }
    if (group_seen != NULL) {
        fprintf(stderr, "regigatectl: error: %s: unknown or missing command; one of:\n", argv[i]);
        for (size_t k = 0; k < NCOMMANDS; k++) {
            char syn[256];
            if (strcmp(commands[k].group, argv[i]) != 0)
                continue;
            synopsis(&commands[k], syn, sizeof(syn));
            fprintf(stderr, "  regigatectl %s\n", syn);
        }
    } else {
        rg_ctl_error("unknown command \"%s\"", argv[i]);
        usage(stderr);
    }
    return RG_CTL_USAGE;
}
