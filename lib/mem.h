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
/*
 * Let this process keep the memory it frees for its next message: blocks up
 * to 32 MiB come from the heap rather than from a fresh mmap() each, and the
 * heap is not returned to the kernel until 64 MiB of it are free. Returns 1
 * when the allocator took the settings (glibc's mallopt), 0 when it has no
 * such knobs.
 */
int rg_mem_keep_freed(void);
/* printf into a fresh string. */
char *rg_sprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
