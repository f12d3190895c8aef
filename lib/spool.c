/*
 * spool.c - memory-then-file message store; see spool.h.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "mem.h"
#include "spool.h"

void rg_spool_init(struct rg_spool *sp, const char *dir, size_t mem_limit)
{
    memset(sp, 0, sizeof(*sp));
    sp->dir = dir;
    sp->mem_limit = mem_limit < 4096 ? 4096 : mem_limit;
    sp->fd = -1;
}

static int write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static int fail(struct rg_spool *sp)
{
    if (sp->error == 0)
        sp->error = errno ? errno : EIO;
    errno = sp->error;
    return -1;
}

/* Switch to file mode: create an anonymous 0600 file in the spool dir. */
static int to_file(struct rg_spool *sp)
{
    char path[4096];
    mode_t old;

    if ((size_t)snprintf(path, sizeof(path), "%s/rg.XXXXXX", sp->dir) >= sizeof(path)) {
        errno = ENAMETOOLONG;
        return fail(sp);
    }
    old = umask(077);
    sp->fd = mkostemp(path, O_CLOEXEC);
    umask(old);
    if (sp->fd < 0)
        return fail(sp);
    /* gone from the directory at once: no path can leave it behind */
    unlink(path);
    if (write_all(sp->fd, sp->mem, sp->mem_len) < 0)
        return fail(sp);
    sp->file_len = (off_t)sp->mem_len;
    sp->mem_len = 0;
    return 0;
}

int rg_spool_write(struct rg_spool *sp, const void *p, size_t n)
{
    if (sp->error)
        return fail(sp);
    if (sp->mem == NULL)
        sp->mem = rg_malloc(sp->mem_limit);
    if (n <= sp->mem_limit - sp->mem_len) {
        memcpy(sp->mem + sp->mem_len, p, n);
        sp->mem_len += n;
        return 0;
    }
    if (sp->fd < 0) {
        if (to_file(sp) < 0)
            return -1;
    } else if (write_all(sp->fd, sp->mem, sp->mem_len) < 0) {
        return fail(sp);
    } else {
        sp->file_len += (off_t)sp->mem_len;
        sp->mem_len = 0;
    }
    if (n > sp->mem_limit) {
        if (write_all(sp->fd, p, n) < 0)
            return fail(sp);
        sp->file_len += (off_t)n;
        return 0;
    }
    memcpy(sp->mem, p, n);
    sp->mem_len = n;
    return 0;
}

int rg_spool_finish(struct rg_spool *sp)
{
    if (sp->error)
        return fail(sp);
    if (sp->fd >= 0 && sp->mem_len > 0) {
        if (write_all(sp->fd, sp->mem, sp->mem_len) < 0)
            return fail(sp);
        sp->file_len += (off_t)sp->mem_len;
        sp->mem_len = 0;
    }
    return 0;
}

size_t rg_spool_size(const struct rg_spool *sp)
{
    return (size_t)sp->file_len + sp->mem_len;
}

const char *rg_spool_mem(const struct rg_spool *sp)
{
    return sp->fd < 0 ? (sp->mem ? sp->mem : "") : NULL;
}

ssize_t rg_spool_read(struct rg_spool *sp, void *buf, size_t n, off_t off)
{
    if (sp->fd < 0) {
        if ((size_t)off >= sp->mem_len)
            return 0;
        if (n > sp->mem_len - (size_t)off)
            n = sp->mem_len - (size_t)off;
        memcpy(buf, sp->mem + off, n);
        return (ssize_t)n;
    }
    for (;;) {
        ssize_t r = pread(sp->fd, buf, n, off);
        if (r < 0 && errno == EINTR)
            continue;
        return r;
    }
}

void rg_spool_reset(struct rg_spool *sp)
{
    if (sp->fd >= 0)
        close(sp->fd);
    sp->fd = -1;
    sp->file_len = 0;
    sp->mem_len = 0;
    sp->error = 0;
}

void rg_spool_free(struct rg_spool *sp)
{
    rg_spool_reset(sp);
    sp->mem = rg_free(sp->mem);
}
