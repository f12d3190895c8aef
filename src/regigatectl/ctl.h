/*
 * ctl.h - regigatectl: shared state of the subcommands and the table
 * they are listed in (main.c). A subcommand is "GROUP VERB" (rules lint,
 * rules show, ...); each gets its own arguments after the verb.
 */
#ifndef RG_CTL_H
#define RG_CTL_H

#include "conffile.h"

#define RG_CTL_DEFAULT_CONF RG_SYSCONFDIR "/regigate/regigate.conf"

/* Exit codes. */
#define RG_CTL_OK     0
#define RG_CTL_FAIL   1     /* the command ran and found a problem */
#define RG_CTL_USAGE  2
#define RG_CTL_TEMPFAIL 75  /* EX_TEMPFAIL: try again later (provider unreachable) */

struct rg_ctl {
    const char *conf_path;      /* -c, default RG_CTL_DEFAULT_CONF */
    struct rg_conf *conf;       /* loaded on first rg_ctl_conf() */
};

struct rg_ctl_cmd {
    const char *group;
    const char *verb;           /* NULL: a command of one word (decrypt) */
    const char *args;           /* synopsis of the arguments, for usage */
    const char *help;
    /* argv[0] is the verb (the group when verb is NULL); returns an
     * RG_CTL_ exit code */
    int (*run)(struct rg_ctl *ctl, int argc, char **argv);
};

/* The configuration, loaded once; NULL after printing why it failed. */
const struct rg_conf *rg_ctl_conf(struct rg_ctl *ctl);
/* "regigatectl: error: ..." on stderr. */
void rg_ctl_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* "usage: regigatectl GROUP VERB ARGS" for one command, on stderr. */
int rg_ctl_usage(const struct rg_ctl_cmd *cmd);

/* cmd_rules.c */
int rg_ctl_rules_lint(struct rg_ctl *ctl, int argc, char **argv);
int rg_ctl_rules_show(struct rg_ctl *ctl, int argc, char **argv);

/* cmd_route.c */
int rg_ctl_route_cert_request(struct rg_ctl *ctl, int argc, char **argv);
int rg_ctl_route_cert_import(struct rg_ctl *ctl, int argc, char **argv);
int rg_ctl_route_status(struct rg_ctl *ctl, int argc, char **argv);
/* Who should own the files regigatectl writes: the daemon's user when we
 * run as root and the configuration names one, else "unchanged" (-1).
 * -1 (said) when that user does not exist. */
struct rg_routecert_owner;
int rg_ctl_file_owner(const struct rg_conf *conf, struct rg_routecert_owner *owner);
int rg_ctl_route_check_provider(struct rg_ctl *ctl, int argc, char **argv);
/* GET /v1/health with the route's key and certificate, as regigated
 * connects: 0 with "PROVIDER accepts route NAME as gateway ID" in msg, or
 * -1 with the reason in msg. */
int rg_ctl_provider_health(const struct rg_conf *conf, const struct rg_route *r,
                           char *msg, size_t len);

/* regigated's pid from its pid_file when that process runs, else 0. */
long rg_ctl_regigated_pid(const struct rg_conf *conf);
/* Does regigated run the route's rules and lists as they are on disk
 * (lib/routestate.h)? 1 yes, 0 no, -1 unknown; a line saying so in msg. */
int rg_ctl_rules_in_use(const struct rg_conf *conf, const struct rg_route *r, char *msg,
                        size_t len);

/* cmd_diagnose.c */
int rg_ctl_diagnose(struct rg_ctl *ctl, int argc, char **argv);
/* Does an SMTP server answer 220 on hp? 0 with the greeting in msg, or -1
 * with the reason; the session is ended with QUIT. */
int rg_ctl_probe_smtp(const struct rg_hostport *hp, char *msg, size_t len);

/* cmd_decrypt.c */
int rg_ctl_decrypt(struct rg_ctl *ctl, int argc, char **argv);

/* cmd_routeadm.c */
int rg_ctl_route_add(struct rg_ctl *ctl, int argc, char **argv);
int rg_ctl_route_set(struct rg_ctl *ctl, int argc, char **argv);
int rg_ctl_route_list(struct rg_ctl *ctl, int argc, char **argv);
int rg_ctl_route_show(struct rg_ctl *ctl, int argc, char **argv);
int rg_ctl_route_remove(struct rg_ctl *ctl, int argc, char **argv);

/* cmd_postfix.c */
int rg_ctl_postfix_generate(struct rg_ctl *ctl, int argc, char **argv);
/* SIGHUP to regigated (its pid_file): 1 sent, 0 not running, -1 error (said). */
int rg_ctl_hup_regigated(const struct rg_conf *conf);

/* cmd_lists.c: rules import; lists add | show | import | remove (argv[0]) */
int rg_ctl_rules_import(struct rg_ctl *ctl, int argc, char **argv);
int rg_ctl_lists(struct rg_ctl *ctl, int argc, char **argv);

#endif
