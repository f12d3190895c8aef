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
 * Why: glibc's default is to mmap() blocks of 128 KiB and more, and to give
 * the top of the heap back once 128 KiB or more of it is free (both limits
 * then move with what the process frees). A worker's spool buffers are
 * exactly that size (spool_memory_limit), so with the defaults every
 * message could fault its buffers in afresh: a decrypted 100 KiB message
 * cost twice the CPU (doc/performance.md, "Freed memory kept").
 */
int rg_mem_keep_freed(size_t largest)
{
#if defined(HAVE_MALLOPT) && defined(M_MMAP_THRESHOLD) && defined(M_TRIM_THRESHOLD)
    const size_t mib = (size_t)1 << 20;
    size_t mmap_at = largest + 64 * 1024, trim_at;

    if (mmap_at < mib)
        mmap_at = mib;
    if (mmap_at > 32 * mib)          /* glibc's upper bound on 64-bit */
        mmap_at = 32 * mib;
    trim_at = 4 * mmap_at;
    /* setting either fixes both: glibc stops adjusting them itself */
    return mallopt(M_MMAP_THRESHOLD, (int)mmap_at) == 1 && mallopt(M_TRIM_THRESHOLD, (int)trim_at) == 1;
#else
    (void)largest;
    return 0;
#endif
}
