/*
 * main.c - regigate-provider: the key provider's server and administration
 * commands. See regigate-provider(8) and doc/provider-protocol.md.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin.h"
#include "log.h"
#include "mem.h"
#include "pconf.h"
#include "server.h"

static void usage(FILE *f)
{
    fputs("usage: regigate-provider [-c FILE] COMMAND [ARGS]\n"
          "  serve                                    run the HTTPS API (foreground)\n"
          "  init [--name DNS]... [--ip IP]... [--ca-name CN]\n"
          "                                           create CA, master key, server certificate, database\n"
          "  gateway add --ip IP [--ip IP]... --description TEXT\n"
          "  gateway list\n"
          "  gateway sign ID [--days N] < request.csr > signed.crt\n"
          "  gateway remove ID\n"
          "  account add ADDRESS...\n"
          "  account remove ADDRESS...\n"
          "  account list\n"
          "  transaction show ID\n"
          "default configuration: " RGP_DEFAULT_CONF "\n", f);
}

int main(int argc, char **argv)
{
    const char *conf_path = RGP_DEFAULT_CONF;
    char **args = rg_calloc((size_t)argc + 1, sizeof(char *));
    int nargs = 0, rc;
    struct rgp_conf *conf;
    char err[1024];

    /* -c FILE may appear anywhere; everything else goes to the command */
    for (int i = 1; i < argc; i++) {
        if ((!strcmp(argv[i], "-c") || !strcmp(argv[i], "--config")) && i + 1 < argc) {
            conf_path = argv[++i];
        } else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            usage(stdout);
            rg_free(args);
            return 0;
        } else {
            args[nargs++] = argv[i];
        }
    }
    if (nargs == 0) {
        usage(stderr);
        rg_free(args);
        return 2;
    }
    conf = rgp_conf_load(conf_path, err, sizeof(err));
    if (conf == NULL) {
        rgp_cli_error("%s", err);
        rg_free(args);
        return 1;
    }
    if (!strcmp(args[0], "serve") && nargs == 1) {
        int fac = rg_log_facility(conf->syslog_facility);
        if (conf->log_syslog && fac < 0) {
            rgp_cli_error("%s: unknown syslog_facility \"%s\"", conf_path, conf->syslog_facility);
            rc = 1;
        } else {
            rg_log_open("regigate-provider", conf->log_syslog ? RG_LOG_SYSLOG : RG_LOG_STDERR, fac);
            rc = rgp_serve(conf);
        }
    } else if (!strcmp(args[0], "init")) {
        rc = rgp_cmd_init(conf, nargs, args);
    } else if (!strcmp(args[0], "gateway")) {
        rc = rgp_cmd_gateway(conf, nargs, args);
    } else if (!strcmp(args[0], "account")) {
        rc = rgp_cmd_account(conf, nargs, args);
    } else if (!strcmp(args[0], "transaction")) {
        rc = rgp_cmd_transaction(conf, nargs, args);
    } else {
        rgp_cli_error("unknown command \"%s\"", args[0]);
        usage(stderr);
        rc = 2;
    }
    rgp_conf_free(conf);
    rg_free(args);
    return rc;
}
