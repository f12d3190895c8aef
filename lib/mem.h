/*
 * mem.h - allocation that never fails: it succeeds or the process exits
 * (rg_fatal). Free functions return NULL so callers write x = rg_free(x).
 */
#ifndef RG_MEM_H
#define RG_MEM_H

#include <stddef.h>

void *rg_malloc(size_t n);
void *rg_calloc(size_t n, size_t size);
void *rg_realloc(void *p, size_t n);
char *rg_strdup(const char *s);
char *rg_strndup(const char *s, size_t n);
void *rg_free(void *p);
/* printf into a fresh string. */
char *rg_sprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
