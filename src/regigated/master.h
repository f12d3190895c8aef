/*
 * master.h - regigated's master process: listeners, the pre-forked pool,
 * signals (SIGHUP reload, SIGTERM graceful stop), privilege drop.
 */
#ifndef RG_MASTER_H
#define RG_MASTER_H

#include "conffile.h"

/* Load every route's rule set; on errors log them all and return -1. */
int rg_master_load_rules(const struct rg_conf *conf);
/* Bind every route's listener; on failure print why and return -1. */
int rg_master_bind(struct rg_conf *conf);
/* Drop root to conf->user; prepare the spool directory. Fatal on failure. */
void rg_master_drop_privileges(const struct rg_conf *conf);
/* Free what rg_master_load_rules and rg_master_bind hold (and conf), for
 * a regigated that exits without running the pool. Returns NULL. */
struct rg_conf *rg_master_discard(struct rg_conf *conf);
/* Run the pool until SIGTERM. Takes ownership of conf. Returns the exit code. */
int rg_master_run(struct rg_conf *conf);

#endif
