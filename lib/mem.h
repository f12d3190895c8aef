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
 * to `largest` bytes (a spool buffer) come from the heap rather than from a
 * fresh mmap() each, and freed heap is kept up to four times that (at least
 * 4 MiB) instead of being returned to the kernel at once, to be faulted in
 * and zeroed again for the next message. Returns 1 when the allocator took
 * the settings (glibc's mallopt), 0 when it has no such knobs.
 */
int rg_mem_keep_freed(size_t largest);
/* printf into a fresh string. */
char *rg_sprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
