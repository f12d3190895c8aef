/*
 * buf.h - growable byte buffer with a mandatory maximum size (after curl's
 * dynbuf): appending past the maximum fails instead of growing without bound,
 * so every buffer that holds peer data has a limit.
 */
#ifndef RG_BUF_H
#define RG_BUF_H

#include <stddef.h>

struct rg_buf {
    char *data;     /* always NUL-terminated when data != NULL */
    size_t len;
    size_t cap;
    size_t max;     /* hard limit of len */
};

void rg_buf_init(struct rg_buf *b, size_t max);
void rg_buf_free(struct rg_buf *b);
void rg_buf_reset(struct rg_buf *b);
/* 0 on success, -1 when the result would exceed b->max (b is unchanged). */
int rg_buf_append(struct rg_buf *b, const void *p, size_t n);
int rg_buf_appends(struct rg_buf *b, const char *s);
int rg_buf_printf(struct rg_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Remove the first n bytes. */
void rg_buf_consume(struct rg_buf *b, size_t n);

#endif
