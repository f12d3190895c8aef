/*
 * rules.h - a route's rule set (regigate-rules(5)): JSON parsed with yajl
 * into a compiled form once per load, evaluated per message or per
 * recipient.
 *
 * Loading reports every problem with its position (rg_rules_diag callback:
 * line and column, 1-based, of the offending JSON value); a rule set with
 * errors is not loaded. Lists named by "in-list" are loaded from lists_dir
 * (one file per list, named like the list) into hash sets.
 */
#ifndef RG_RULES_H
#define RG_RULES_H

#include <stddef.h>

#include "header.h"

enum rg_action {
    RG_ACT_FORWARD = 0,
    RG_ACT_ENCRYPT,
    RG_ACT_DECRYPT,
    RG_ACT_REJECT,      /* reply: the rule's "reply", default "550 5.7.1 Message rejected by policy" */
    RG_ACT_TEMPFAIL,    /* reply: "451 4.7.1 ..." (the rule's "reply" if given, must be 4xx) */
    RG_ACT_DISCARD,     /* accepted and dropped (logged) */
};
const char *rg_action_name(enum rg_action a);

enum rg_diag_severity { RG_DIAG_ERROR, RG_DIAG_WARNING };
/* Called for every problem; file is the rule file's path (or "-"). */
typedef void (*rg_rules_diag)(void *ctx, enum rg_diag_severity sev, const char *file,
                              int line, int col, const char *msg);

struct rg_rules;

/*
 * Parse and compile. Returns NULL when there was at least one error (all
 * were reported through diag). Warnings (e.g. upper-case e-mail addresses
 * in a list: they never match) are reported but do not fail the load.
 * lists_dir may be NULL when the rules reference no list.
 */
struct rg_rules *rg_rules_load_file(const char *path, const char *lists_dir,
                                    rg_rules_diag diag, void *ctx);
struct rg_rules *rg_rules_load_buffer(const char *json, size_t len, const char *name,
                                      const char *lists_dir, rg_rules_diag diag, void *ctx);
struct rg_rules *rg_rules_free(struct rg_rules *r);
/* A ready-made rg_rules_diag for daemons: logs every problem with rg_error
 * or rg_warn as "FILE:LINE:COL: message" ("FILE: message" without a
 * position). ctx is not used. */
void rg_rules_diag_log(void *ctx, enum rg_diag_severity sev, const char *file,
                       int line, int col, const char *msg);
/* The rule set as loaded (the file's text), for "rules show". */
const char *rg_rules_source(const struct rg_rules *r);
/* Is it the empty rule set ({}: no rules, default forward, no tags)? */
int rg_rules_empty(const struct rg_rules *r);
/* Can the rule set decide action a (some rule or the default has it)? */
int rg_rules_uses(const struct rg_rules *r, enum rg_action a);
/* Number of rules (the default not counted; 0 for {}). */
size_t rg_rules_count(const struct rg_rules *r);
/* Names of the lists the rule set references (NULL-terminated). */
const char *const *rg_rules_lists(const struct rg_rules *r);

/* What a rule set is evaluated on. Envelope addresses are matched in
 * lower case (the appliance's rule: list entries must be lower case). */
struct rg_rules_input {
    const char *sender;                 /* envelope MAIL FROM, "" = null sender */
    const char *const *rcpts;           /* envelope RCPT TO: one (per-recipient) or all */
    size_t nrcpt;
    const struct rg_headers *headers;
    size_t size;                        /* message size in bytes */
    int encrypted;                      /* already an encrypted (S/MIME) message:
                                           1 yes, 0 no, -1 ask is_encrypted() */
    /* Called only when a condition needs to know and encrypted is -1
     * (looking is costly: it may read the whole message); may cache. */
    int (*is_encrypted)(void *ctx);
    void *is_encrypted_ctx;
};

struct rg_tag;      /* a compiled tag (add-header, set-header, ...) */

struct rg_rules_result {
    enum rg_action action;
    const char *rule;               /* name of the deciding rule, "default" or "{}" */
    char reply[512];                /* for reject and tempfail */
    const struct rg_tag **tags;     /* tags of all matched rules, in order */
    size_t ntags;
};

/*
 * Evaluate: first matching rule wins unless it says "continue": true (then
 * its tags are kept and evaluation goes on); no match: the "default".
 * For "recipient"/"recipient-domain" with several recipients, a condition
 * holds when it holds for any recipient. Never fails: a regex that hits
 * its match or depth limit counts as no match and is logged (rg_warn);
 * after RG_RULES_LIMIT_HITS such values a condition tests no more values
 * of its field (bounded time for a header repeated 10,000 times).
 * Free the result with rg_rules_result_free.
 */
void rg_rules_eval(const struct rg_rules *r, const struct rg_rules_input *in,
                   struct rg_rules_result *res);
void rg_rules_result_free(struct rg_rules_result *res);

/* Apply tags to a header section (subject-prefix, subject-remove, ...).
 * Returns the number of changes made. */
int rg_rules_apply_tags(const struct rg_rules_result *res, struct rg_headers *h);

#endif
