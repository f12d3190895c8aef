/*
 * rules_int.h - the compiled form of a rule set, shared by rules_load.c
 * (which builds it) and rules_eval.c (which runs it). Not for callers:
 * they use rules.h.
 */
#ifndef RG_RULES_INT_H
#define RG_RULES_INT_H

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "lists.h"
#include "rules.h"

/* Limits (regigate-rules(5), LIMITS). */
#define RG_RULES_MAX_FILE_SIZE  (16UL * 1024 * 1024)
#define RG_RULES_MAX_RULES      10000
#define RG_RULES_MAX_NESTING    32          /* condition groups */
#define RG_RULES_MAX_JSON_DEPTH 128
#define RG_RULES_MAX_ERRORS     100         /* then "too many errors" */
#define RG_RULES_MAX_NAME       128         /* rule name, bytes */
#define RG_RULES_MAX_TAG_VALUE  4096        /* header value / subject prefix, bytes */
#define RG_RULES_MAX_REGEX      65536       /* pattern, bytes */
#define RG_RULES_MATCH_SUBJECT  65536       /* values are truncated to this for matching */
#define RG_RULES_MATCH_LIMIT    100000
#define RG_RULES_DEPTH_LIMIT    1000
#define RG_RULES_HEAP_LIMIT_KIB 2048
#define RG_RULES_JIT_STACK_MAX  (512 * 1024)
#define RG_RULES_LIMIT_HITS     3           /* per regex condition and evaluation:
                                               then the other values are not tested */

enum rg_rfield {
    RG_RF_SENDER, RG_RF_RECIPIENT, RG_RF_SENDER_DOMAIN, RG_RF_RECIPIENT_DOMAIN,
    RG_RF_HEADER, RG_RF_SIZE, RG_RF_ENCRYPTED,
};
enum rg_rop {
    RG_RO_EQUALS, RG_RO_CONTAINS, RG_RO_REGEX, RG_RO_IN_LIST, RG_RO_EXISTS, RG_RO_GT, RG_RO_LT,
};
enum rg_cond_kind { RG_RC_LEAF, RG_RC_ALL, RG_RC_ANY, RG_RC_NOT };

struct rg_regex {
    pcre2_code *code;
    int line, col;              /* of the pattern in the rule file (for warnings) */
};

struct rg_cond {
    enum rg_cond_kind kind;
    /* leaf */
    int negate;                 /* "not": true */
    int every;                  /* "every": true: every value must match */
    enum rg_rfield field;
    enum rg_rop op;
    size_t header;              /* RG_RF_HEADER: index into rg_rules.headers */
    char *str;                  /* equals, contains (envelope fields: lower case) */
    size_t len;
    struct rg_regex re;
    const struct rg_list *list;
    unsigned long long num;     /* size */
    int boolean;                /* encrypted */
    /* all, any, not (nsub == 1) */
    struct rg_cond *sub;
    size_t nsub;
};

enum rg_tag_kind {
    RG_TAG_ADD_HEADER, RG_TAG_SET_HEADER, RG_TAG_REMOVE_HEADER,
    RG_TAG_SUBJECT_PREFIX, RG_TAG_SUBJECT_REMOVE,
};

struct rg_tag {
    enum rg_tag_kind kind;
    char *name;                 /* header name (add/set/remove) */
    char *value;                /* header value, subject prefix */
    struct rg_regex re;         /* subject-remove */
    const struct rg_rules *rules;  /* for the regex's match data */
    const char *rule;           /* name of the rule it belongs to */
};

struct rg_rule {
    char *name;
    int line, col;
    int match_any;              /* "match": "any" */
    struct rg_cond *conds;      /* none: matches every message */
    size_t nconds;
    int has_action;             /* a "continue" rule may have none */
    enum rg_action action;
    char *reply;                /* reject/tempfail; NULL = the default reply */
    int cont;
    struct rg_tag *tags;
    size_t ntags;
};

struct rg_rules {
    char *source;               /* the file's text, NUL-terminated */
    size_t source_len;
    char *file;                 /* as given, for log lines */
    struct rg_rule *rules;
    size_t nrules;
    struct rg_rule def;         /* "default" (forward when not given) */
    int empty;                  /* no rules and no "default": the rule set {} */
    char **headers;             /* header names read by conditions */
    size_t nheaders;
    struct rg_list **lists;
    size_t nlists;
    const char **list_names;    /* NULL-terminated */
    size_t ntags_total;         /* bound of a result's tags */
    /* Scratch for matching: one set per rule set, used by one process
     * at a time (workers are processes forked after the load). */
    pcre2_match_context *mctx;
    pcre2_match_data *md;
    pcre2_jit_stack *jit;
};

/* Match re against s[0..len) from offset start (see rules_eval.c):
 * 1 match (*mstart and *mend set when not NULL), 0 no match or a limit hit
 * (logged with rule's name). */
int rg_rules_regex_match(const struct rg_rules *r, const struct rg_regex *re, const char *rule,
                         const char *s, size_t len, size_t start, size_t *mstart, size_t *mend);

#endif
