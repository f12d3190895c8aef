/*
 * envelope.h - one SMTP transaction's envelope and the replies for it,
 * shared by the SMTP server, the reinjection client and the filter.
 */
#ifndef RG_ENVELOPE_H
#define RG_ENVELOPE_H

#include <stddef.h>

#include "smtp_proto.h"

#define RG_REPLY_MAX 512

struct rg_reply {
    int code;                   /* 250, 451, 550, ... */
    char text[RG_REPLY_MAX];    /* full reply line(s) without CRLF, e.g. "451 4.3.0 ..." */
};

struct rg_envelope {
    char helo[256];             /* the client's HELO/EHLO/LHLO argument */
    char client_addr[64];       /* the upstream peer (Postfix) */
    char sender[RG_ADDR_MAX];   /* without <>; "" is the null sender */
    struct rg_mail_params params;
    char **rcpts;               /* accepted recipients, without <> */
    size_t nrcpt;
    struct rg_xforward xf;      /* as received, xtext */
    char queue_id[64];          /* upstream queue id (XFORWARD IDENT or Received), or "" */
};

void rg_reply_set(struct rg_reply *r, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* 2 = success, 4 = temporary, 5 = permanent (from the first digit). */
static inline int rg_reply_class(const struct rg_reply *r) { return r->code / 100; }

#endif
