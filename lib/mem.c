/*
 * mem.c - allocation wrappers that never return NULL; see mem.h.
 */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "mem.h"

void *rg_malloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (p == NULL)
        rg_fatal("out of memory allocating %zu bytes", n);
    return p;
}

void *rg_calloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (p == NULL)
        rg_fatal("out of memory allocating %zu x %zu bytes", n, size);
    return p;
}

void *rg_realloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (q == NULL)
        rg_fatal("out of memory reallocating %zu bytes", n);
    return q;
}

char *rg_strdup(const char *s)
{
    return rg_strndup(s, strlen(s));
}

char *rg_strndup(const char *s, size_t n)
{
    size_t len = strnlen(s, n);
    char *p = rg_malloc(len + 1);
    memcpy(p, s, len);
    p[len] = 0;
    return p;
}

void *rg_free(void *p)
{
    free(p);
    return NULL;
}

char *rg_sprintf(const char *fmt, ...)
{
    va_list ap;
    char *s;
    va_start(ap, fmt);
    int n = vasprintf(&s, fmt, ap);
    va_end(ap);
    if (n < 0)
        rg_fatal("out of memory formatting a string");
    return s;
}
