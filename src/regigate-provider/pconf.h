/*
 * pconf.h - regigate-provider.conf: the provider's INI configuration.
 *
 *   [provider]
 *   listen = 127.0.0.1:8443       ; address:port of the HTTPS listener
 *   data_dir = /var/lib/regigate-provider
 *   threads = 4                   ; HTTPS worker threads
 *   max_body = 65536              ; request body limit, bytes
 *   connection_timeout = 30       ; idle keep-alive connections, seconds
 *   log = stderr                  ; stderr | syslog
 *   syslog_facility = daemon
 *   log_requests = yes            ; one line per request
 *   synchronous = full            ; full | normal (see store.h)
 *
 * Unknown sections and keys are errors ("FILE:LINE: message").
 */
#ifndef RGP_PCONF_H
#define RGP_PCONF_H

#include <stddef.h>

#define RGP_DEFAULT_CONF RG_SYSCONFDIR "/regigate/provider.conf"

struct rgp_conf {
    char *path;
    char listen_host[256];
    int listen_port;
    char *data_dir;
    int threads;
    size_t max_body;
    int connection_timeout;
    int log_syslog;
    char *syslog_facility;
    int log_requests;
    int sync_full;
};

struct rgp_conf *rgp_conf_load(const char *path, char *err, size_t errlen);
struct rgp_conf *rgp_conf_free(struct rgp_conf *c);
/* data_dir/name, freshly allocated */
char *rgp_path(const struct rgp_conf *c, const char *name);

#endif
