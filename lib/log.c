/*
 * log.c - syslog or stderr logging with a severity ladder; see log.h.
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

static enum rg_log_dest log_dest = RG_LOG_STDERR;
static char log_ident[64] = "regigate";
static char log_ctx[128];
static pid_t log_pid;           /* getpid() is a system call: once per process */

static void log_forked(void)
{
    log_pid = getpid();
}

void rg_log_open(const char *ident, enum rg_log_dest dest, int facility)
{
    static int atfork_set;

    snprintf(log_ident, sizeof(log_ident), "%s", ident);
    log_dest = dest;
    log_pid = getpid();
    if (!atfork_set && pthread_atfork(NULL, NULL, log_forked) == 0)
        atfork_set = 1;
    if (dest == RG_LOG_SYSLOG)
        openlog(log_ident, LOG_PID | LOG_NDELAY, facility);
}

int rg_log_facility(const char *name)
{
    static const struct { const char *name; int fac; } tab[] = {
        { "mail", LOG_MAIL }, { "daemon", LOG_DAEMON }, { "user", LOG_USER },
        { "local0", LOG_LOCAL0 }, { "local1", LOG_LOCAL1 }, { "local2", LOG_LOCAL2 },
        { "local3", LOG_LOCAL3 }, { "local4", LOG_LOCAL4 }, { "local5", LOG_LOCAL5 },
        { "local6", LOG_LOCAL6 }, { "local7", LOG_LOCAL7 },
    };
    for (size_t i = 0; i < sizeof(tab) / sizeof(tab[0]); i++)
        if (strcasecmp(name, tab[i].name) == 0)
            return tab[i].fac;
    return -1;
}

void rg_log_set_context(const char *ctx)
{
    snprintf(log_ctx, sizeof(log_ctx), "%s", ctx ? ctx : "");
}

static void vlog(int prio, const char *label, int with_errno, const char *fmt, va_list ap)
    __attribute__((format(printf, 4, 0)));
static void vlog(int prio, const char *label, int with_errno, const char *fmt, va_list ap)
{
    char text[2048];
    int saved = errno;
    int n = vsnprintf(text, sizeof(text), fmt, ap);

    if (n < 0)
        snprintf(text, sizeof(text), "(unformattable log message)");
    if (with_errno) {
        size_t len = strlen(text);
        snprintf(text + len, sizeof(text) - len, ": %s", strerror(saved));
    }
    /* Never let a peer's bytes forge log lines. */
    for (char *p = text; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            *p = '?';
    if (log_dest == RG_LOG_SYSLOG) {
        syslog(prio, "%s%s%s%s", label, log_ctx, *log_ctx ? ": " : "", text);
    } else if (log_dest == RG_LOG_STDERR) {
        struct timespec ts;
        struct tm tm;
        char stamp[32];
        clock_gettime(CLOCK_REALTIME, &ts);
        localtime_r(&ts.tv_sec, &tm);
        strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
        fprintf(stderr, "%s.%03ld %s[%ld]: %s%s%s%s\n", stamp, ts.tv_nsec / 1000000L,
                log_ident, (long)(log_pid ? log_pid : getpid()), label, log_ctx,
                *log_ctx ? ": " : "", text);
    }
    errno = saved;
}

#define RG_LOGFN(name, prio, label, with_errno)                                \
    void name(const char *fmt, ...)                                            \
    {                                                                          \
        va_list ap;                                                            \
        va_start(ap, fmt);                                                     \
        vlog(prio, label, with_errno, fmt, ap);                                \
        va_end(ap);                                                            \
    }

RG_LOGFN(rg_info, LOG_INFO, "", 0)
RG_LOGFN(rg_warn, LOG_WARNING, "warning: ", 0)
RG_LOGFN(rg_warn_errno, LOG_WARNING, "warning: ", 1)
RG_LOGFN(rg_error, LOG_ERR, "error: ", 0)
RG_LOGFN(rg_error_errno, LOG_ERR, "error: ", 1)

void rg_fatal(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vlog(LOG_CRIT, "fatal: ", 0, fmt, ap);
    va_end(ap);
    exit(1);
}

void rg_fatal_errno(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vlog(LOG_CRIT, "fatal: ", 1, fmt, ap);
    va_end(ap);
    exit(1);
}

void rg_panic(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vlog(LOG_CRIT, "panic: ", 0, fmt, ap);
    va_end(ap);
    abort();
}
