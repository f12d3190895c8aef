/*
 * spool.h - where a message lives between DATA and reinjection.
 *
 * Up to `mem_limit` bytes stay in memory; beyond that the message goes to
 * a file in spool_dir, created 0600 and unlinked at once, so it disappears
 * on every path, kill -9 included, and memory per worker does not grow with
 * the message size.
 */
#ifndef RG_SPOOL_H
#define RG_SPOOL_H

#include <stddef.h>
#include <sys/types.h>

struct rg_spool {
    const char *dir;
    size_t mem_limit;
    char *mem;          /* message bytes (memory mode) or write staging (file mode) */
    size_t mem_len;
    int fd;             /* -1 in memory mode */
    off_t file_len;     /* bytes already written to the file */
    int error;          /* errno of the first failure, 0 if none */
};

void rg_spool_init(struct rg_spool *sp, const char *dir, size_t mem_limit);
/* 0, or -1 (errno and sp->error set) when the spool cannot take the bytes. */
int rg_spool_write(struct rg_spool *sp, const void *p, size_t n);
/* Write any staged bytes to the file; call before reading. */
int rg_spool_finish(struct rg_spool *sp);
size_t rg_spool_size(const struct rg_spool *sp);
/* Read up to n bytes at off; returns bytes read, 0 at the end, -1 on error. */
ssize_t rg_spool_read(struct rg_spool *sp, void *buf, size_t n, off_t off);
/* In memory mode: the whole message; NULL in file mode. */
const char *rg_spool_mem(const struct rg_spool *sp);
/* Forget the content and release the file (the struct may be reused). */
void rg_spool_reset(struct rg_spool *sp);
void rg_spool_free(struct rg_spool *sp);

#endif
