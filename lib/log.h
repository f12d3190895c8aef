/*
 * log.h - the one logging facility of regigate.
 *
 * Severity ladder (after Postfix's msg(3)):
 *   rg_info   - normal events (one line per message outcome)
 *   rg_warn   - something is wrong but we carry on
 *   rg_error  - an operation failed; the caller reports it (4xx/5xx, exit code)
 *   rg_fatal  - the environment is unusable (bad config, no memory): exit(1)
 *   rg_panic  - a bug in regigate: abort()
 * Log once, where the failure happens, with the queue id when there is one.
 * Variants with the suffix _errno append ": strerror(errno)".
 */
#ifndef RG_LOG_H
#define RG_LOG_H

#include <stdarg.h>

#define RG_PRINTF(f, a) __attribute__((format(printf, f, a)))

enum rg_log_dest { RG_LOG_STDERR, RG_LOG_SYSLOG, RG_LOG_NONE };

void rg_log_open(const char *ident, enum rg_log_dest dest, int facility);
/* Facility by name ("mail", "local0".."local7", "daemon"); -1 if unknown. */
int rg_log_facility(const char *name);
/* Set while a worker serves a connection: prefixed to every line. */
void rg_log_set_context(const char *ctx);

void rg_info(const char *fmt, ...) RG_PRINTF(1, 2);
void rg_warn(const char *fmt, ...) RG_PRINTF(1, 2);
void rg_warn_errno(const char *fmt, ...) RG_PRINTF(1, 2);
void rg_error(const char *fmt, ...) RG_PRINTF(1, 2);
void rg_error_errno(const char *fmt, ...) RG_PRINTF(1, 2);
void rg_fatal(const char *fmt, ...) RG_PRINTF(1, 2) __attribute__((noreturn));
void rg_fatal_errno(const char *fmt, ...) RG_PRINTF(1, 2) __attribute__((noreturn));
void rg_panic(const char *fmt, ...) RG_PRINTF(1, 2) __attribute__((noreturn));

#endif
