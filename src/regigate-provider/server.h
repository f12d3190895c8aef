/*
 * server.h - `regigate-provider serve`: the HTTPS JSON API of
 * doc/provider-protocol.md on libmicrohttpd (thread pool, keep-alive, TLS
 * 1.2+ through MHD's GnuTLS, client certificates verified per request).
 */
#ifndef RGP_SERVER_H
#define RGP_SERVER_H

#include "pconf.h"

/* Runs until SIGTERM or SIGINT; returns the exit status. */
int rgp_serve(const struct rgp_conf *conf);

#endif
