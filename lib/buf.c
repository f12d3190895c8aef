/*
 * buf.c - bounded growable buffer; see buf.h.
 */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "buf.h"
#include "mem.h"

void rg_buf_init(struct rg_buf *b, size_t max)
{
    b->data = NULL;
    b->len = b->cap = 0;
    b->max = max;
}

void rg_buf_free(struct rg_buf *b)
{
    b->data = rg_free(b->data);
    b->len = b->cap = 0;
}

void rg_buf_reset(struct rg_buf *b)
{
    b->len = 0;
    if (b->data)
        b->data[0] = 0;
}

static int grow(struct rg_buf *b, size_t need)
{
    size_t cap;

    if (need > b->max)
        return -1;
    if (need + 1 <= b->cap)
        return 0;
    cap = b->cap ? b->cap : 64;
    while (cap < need + 1)
        cap *= 2;
    if (cap > b->max + 1)
        cap = b->max + 1;
    b->data = rg_realloc(b->data, cap);
    b->cap = cap;
    return 0;
}

int rg_buf_append(struct rg_buf *b, const void *p, size_t n)
{
    if (n > b->max - b->len || grow(b, b->len + n) < 0)
        return -1;
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = 0;
    return 0;
}

int rg_buf_appends(struct rg_buf *b, const char *s)
{
    return rg_buf_append(b, s, strlen(s));
}

int rg_buf_printf(struct rg_buf *b, const char *fmt, ...)
{
    va_list ap;
    char small[512];
    int n;

    va_start(ap, fmt);
    n = vsnprintf(small, sizeof(small), fmt, ap);
    va_end(ap);
    if (n < 0)
        return -1;
    if ((size_t)n < sizeof(small))
        return rg_buf_append(b, small, (size_t)n);
    if ((size_t)n > b->max - b->len || grow(b, b->len + (size_t)n) < 0)
        return -1;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return 0;
}

void rg_buf_consume(struct rg_buf *b, size_t n)
{
    if (n >= b->len) {
        rg_buf_reset(b);
        return;
    }
    memmove(b->data, b->data + n, b->len - n);
    b->len -= n;
    b->data[b->len] = 0;
}
