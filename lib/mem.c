/*
 * mem.c - allocation wrappers that never return NULL; see mem.h.
 */
#include "config.h"

#ifdef HAVE_MALLOC_H
#include <malloc.h>
#endif
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

/*
 * Why: glibc mmap()s every block of 128 KiB or more and gives the top of the
 * heap back once 128 KiB of it is free. Both limits then rise with the
 * blocks the process frees, so how much a message costs depended on what
 * the worker had done before: a worker that had only decrypted 100 KiB
 * messages faulted its spool buffers in afresh for every message (twice
 * the CPU), and a fixed limit just below a block that a 1 MiB message needs
 * did the same for that block (doc/performance.md, "Re-runs of 2026-12-07,
 * afternoon").
 * Blocks up to 32 MiB (glibc's own ceiling for the moving limit) therefore
 * come from the heap, and the heap is trimmed only when 64 MiB of it are
 * free: what glibc settles at anyway once a process has freed a 32 MiB
 * block. A worker keeps no more than it needed at its peak; a larger
 * message is spooled to a file, not held in memory.
 */
int rg_mem_keep_freed(void)
{
#if defined(HAVE_MALLOPT) && defined(M_MMAP_THRESHOLD) && defined(M_TRIM_THRESHOLD)
    const int mib = 1 << 20;

    /* setting either fixes both: glibc stops moving them itself */
    return mallopt(M_MMAP_THRESHOLD, 32 * mib) == 1 && mallopt(M_TRIM_THRESHOLD, 64 * mib) == 1;
#else
    return 0;
#endif
}
