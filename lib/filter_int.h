/*
 * filter_int.h - what the parts of the filter share about the message in
 * hand (filter.c decides and forwards, filter_crypt.c encrypts and
 * decrypts). Not for other modules.
 */
#ifndef RG_FILTER_INT_H
#define RG_FILTER_INT_H

#include "filter.h"

struct rg_filter_job {
    struct rg_filter *f;
    struct rg_envelope *env;
    struct rg_spool *sp;
    size_t size;
    long long t0;
    char orig[2 * RG_XF_VALUE_MAX + 16];    /* " orig_client=name[addr]" or "" */
    const char *head;       /* the header section bytes (for rules) */
    size_t head_avail;
    char *head_buf;         /* owned copy when the spool is a file */
    struct rg_headers *headers;     /* parsed head, while rules decide */
    struct rg_reply *down;  /* per recipient: what happened (logged) */
    struct rg_reply *up;    /* per recipient: our reply upstream */
    int encrypted_part;     /* -1 not looked yet, else has an S/MIME .p7m part */
    int refused;            /* a 5xx being logged is our own refusal
                               (status=rejected), not the next hop's */
};

/* One log line per distinct outcome among the recipients idx[0..n);
 * extra ("key=value ...", may be NULL) goes before orig_client. */
void rg_filter_log_outcome(struct rg_filter_job *j, const size_t *idx, size_t n,
                           enum rg_action action, const char *rule, const char *extra);

/* Reinject src to the recipients idx[0..n) with env (NULL: the job's
 * envelope); sets down[] and up[] for them. */
void rg_filter_reinject(struct rg_filter_job *j, const struct rg_envelope *env, const size_t *idx,
                        size_t n, const struct rg_msgsrc *src);

/* The message in sp (head: its first head_avail bytes) as a source with
 * the tags of res applied to its header section. Returns the new header
 * bytes that src points to (free them after sending), or NULL when src is
 * the spool unchanged. */
char *rg_filter_tagged_source(struct rg_filter_job *j, const struct rg_rules_result *res,
                              const char *head, size_t head_avail, struct rg_spool *sp,
                              struct rg_msgsrc *src);

#endif
