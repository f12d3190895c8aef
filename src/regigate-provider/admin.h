/*
 * admin.h - the provider administrator's commands (regigate-provider(8)):
 * init, gateway add|list|sign|remove, account add|remove|list,
 * transaction show. Each returns the exit status (0 ok, 1 error, 2 usage).
 */
#ifndef RGP_ADMIN_H
#define RGP_ADMIN_H

#include "pconf.h"

int rgp_cmd_init(const struct rgp_conf *conf, int argc, char **argv);
int rgp_cmd_gateway(const struct rgp_conf *conf, int argc, char **argv);
int rgp_cmd_account(const struct rgp_conf *conf, int argc, char **argv);
int rgp_cmd_transaction(const struct rgp_conf *conf, int argc, char **argv);

/* "regigate-provider: error: ..." on stderr */
void rgp_cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
