/*
 * worker.h - a pre-forked child of regigated: accept a connection on any
 * route's listener, serve it, repeat; report idle/busy to the master.
 */
#ifndef RG_WORKER_H
#define RG_WORKER_H

#include <sys/types.h>

#include "conffile.h"

/* What a worker tells the master over the status pipe (one atomic write). */
struct rg_worker_status {
    pid_t pid;
    char busy;          /* 1 = serving a connection, 0 = waiting */
};

struct rg_rules;
struct rg_poolboard;

struct rg_worker_listener {
    int fd;
    const struct rg_route *route;
    const struct rg_rules *rules;   /* NULL: the empty rule set */
};

/* board and slot: the worker's place on the master's scoreboard (NULL, -1:
 * none; then every change of state goes down status_fd); master: the
 * master's pid, taken before fork() (the worker stops when its parent is
 * no longer that process) */
void rg_worker_main(const struct rg_conf *conf, const struct rg_worker_listener *ls,
                    size_t nls, int status_fd, struct rg_poolboard *board, int slot,
                    pid_t master) __attribute__((noreturn));

#endif
