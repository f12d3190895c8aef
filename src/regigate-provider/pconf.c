/*
 * pconf.c - load regigate-provider.conf with libinih; see pconf.h.
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <ini.h>

#include "mem.h"
#include "pconf.h"

struct load_state {
    struct rgp_conf *c;
    char *err;
    size_t errlen;
    int have_listen;
};

static int parse_long(const char *s, long min, long max, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

static int parse_listen(const char *s, struct rgp_conf *c)
{
    const char *colon;
    size_t hostlen;
    long port;

    if (*s == '[') {
        const char *close = strchr(s, ']');
        if (close == NULL || close[1] != ':')
            return -1;
        hostlen = (size_t)(close - s - 1);
        s++;
        colon = close + 1;
    } else {
        colon = strrchr(s, ':');
        if (colon == NULL)
            return -1;
        hostlen = (size_t)(colon - s);
    }
    if (hostlen == 0 || hostlen >= sizeof(c->listen_host))
        return -1;
    if (parse_long(colon + 1, 1, 65535, &port) < 0)
        return -1;
    memcpy(c->listen_host, s, hostlen);
    c->listen_host[hostlen] = 0;
    c->listen_port = (int)port;
    return 0;
}

static int parse_bool(const char *s, int *out)
{
    if (!strcasecmp(s, "yes") || !strcasecmp(s, "true") || !strcmp(s, "1"))
        *out = 1;
    else if (!strcasecmp(s, "no") || !strcasecmp(s, "false") || !strcmp(s, "0"))
        *out = 0;
    else
        return -1;
    return 0;
}

static int on_key_checked(struct load_state *st, const char *section, const char *name,
                          const char *value);

/* inih goes on after an error and reports the first line: keep the first
 * message too. */
static int on_key(void *user, const char *section, const char *name, const char *value)
{
    struct load_state *st = user;
    char *first = st->err;
    size_t firstlen = st->errlen;
    char later[512];

    if (*first == 0)
        return on_key_checked(st, section, name, value);
    st->err = later;
    st->errlen = sizeof(later);
    int rc = on_key_checked(st, section, name, value);
    st->err = first;
    st->errlen = firstlen;
    return rc;
}

static int on_key_checked(struct load_state *st, const char *section, const char *name,
                          const char *value)
{
    struct rgp_conf *c = st->c;
    long v;

    if (strcmp(section, "provider") != 0) {
        if (*section == 0)
            snprintf(st->err, st->errlen, "\"%s\" outside the [provider] section", name);
        else
            snprintf(st->err, st->errlen, "unknown section [%s] (only [provider])", section);
        return 0;
    }
    if (!strcmp(name, "listen")) {
        if (parse_listen(value, c) < 0) {
            snprintf(st->err, st->errlen, "listen: expected ADDRESS:PORT, got \"%s\"", value);
            return 0;
        }
        st->have_listen = 1;
    } else if (!strcmp(name, "data_dir")) {
        if (*value != '/') {
            snprintf(st->err, st->errlen, "data_dir: must be an absolute path");
            return 0;
        }
        rg_free(c->data_dir);
        c->data_dir = rg_strdup(value);
    } else if (!strcmp(name, "threads")) {
        if (parse_long(value, 1, 256, &v) < 0) {
            snprintf(st->err, st->errlen, "threads: expected 1..256");
            return 0;
        }
        c->threads = (int)v;
    } else if (!strcmp(name, "max_body")) {
        if (parse_long(value, 1024, 16L * 1024 * 1024, &v) < 0) {
            snprintf(st->err, st->errlen, "max_body: expected 1024..16777216 bytes");
            return 0;
        }
        c->max_body = (size_t)v;
    } else if (!strcmp(name, "connection_timeout")) {
        if (parse_long(value, 1, 3600, &v) < 0) {
            snprintf(st->err, st->errlen, "connection_timeout: expected 1..3600 seconds");
            return 0;
        }
        c->connection_timeout = (int)v;
    } else if (!strcmp(name, "log")) {
        if (!strcmp(value, "syslog"))
            c->log_syslog = 1;
        else if (!strcmp(value, "stderr"))
            c->log_syslog = 0;
        else {
            snprintf(st->err, st->errlen, "log: expected stderr or syslog");
            return 0;
        }
    } else if (!strcmp(name, "syslog_facility")) {
        rg_free(c->syslog_facility);
        c->syslog_facility = rg_strdup(value);
    } else if (!strcmp(name, "synchronous")) {
        if (!strcmp(value, "full"))
            c->sync_full = 1;
        else if (!strcmp(value, "normal"))
            c->sync_full = 0;
        else {
            snprintf(st->err, st->errlen, "synchronous: expected full or normal");
            return 0;
        }
    } else if (!strcmp(name, "log_requests")) {
        if (parse_bool(value, &c->log_requests) < 0) {
            snprintf(st->err, st->errlen, "log_requests: expected yes or no");
            return 0;
        }
    } else {
        snprintf(st->err, st->errlen, "unknown key \"%s\"", name);
        return 0;
    }
    return 1;
}

struct rgp_conf *rgp_conf_load(const char *path, char *err, size_t errlen)
{
    struct rgp_conf *c = rg_calloc(1, sizeof(*c));
    struct load_state st = { c, NULL, 0, 0 };
    char msg[512] = "";
    int line;

    c->path = rg_strdup(path);
    c->data_dir = rg_strdup(RG_LOCALSTATEDIR "/lib/regigate-provider");
    c->threads = 4;
    c->max_body = 65536;
    c->connection_timeout = 30;
    c->syslog_facility = rg_strdup("daemon");
    c->log_requests = 1;
    c->sync_full = 1;
    st.err = msg;
    st.errlen = sizeof(msg);
    line = ini_parse(path, on_key, &st);
    if (line < 0) {
        snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return rgp_conf_free(c);
    }
    if (line > 0) {
        snprintf(err, errlen, "%s:%d: %s", path, line, *msg ? msg : "syntax error");
        return rgp_conf_free(c);
    }
    if (!st.have_listen) {
        snprintf(err, errlen, "%s: listen = ADDRESS:PORT is required", path);
        return rgp_conf_free(c);
    }
    return c;
}

struct rgp_conf *rgp_conf_free(struct rgp_conf *c)
{
    if (c) {
        rg_free(c->path);
        rg_free(c->data_dir);
        rg_free(c->syslog_facility);
        rg_free(c);
    }
    return NULL;
}

char *rgp_path(const struct rgp_conf *c, const char *name)
{
    return rg_sprintf("%s/%s", c->data_dir, name);
}
