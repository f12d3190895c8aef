/*
 * lists.h - the named lists of a rule set (regigate-rules(5), "in-list"):
 * one file per list in the route's lists_dir, named like the list, one
 * entry per line.
 *
 * An entry is a line with its line ending (LF or CRLF) removed; empty
 * lines are skipped; nothing else is trimmed or folded: entries are
 * matched byte for byte, case-sensitively (as the appliance did). The
 * entries are loaded once into an open-addressing hash set, so a lookup
 * costs O(1) whatever the size of the list.
 *
 * Problems are reported through the rule loader's diagnostic callback
 * with the list file as FILE: errors (a line holding a NUL byte, a file
 * that cannot be read or is too large; line 0 when there is no line) fail
 * the load; warnings (e-mail addresses with upper case, which never match
 * the lower-cased envelope; entries with leading or trailing white space)
 * do not.
 */
#ifndef RG_LISTS_H
#define RG_LISTS_H

#include <stddef.h>

#include "rules.h"

/* Largest list file accepted. */
#define RG_LIST_MAX_FILE_SIZE (256UL * 1024 * 1024)
/* Longest list name. */
#define RG_LIST_NAME_MAX 64
/* Diagnostics of one kind reported per list file before a summary line. */
#define RG_LIST_MAX_DIAGS 10

struct rg_list;

/* Is name a valid list name: [A-Za-z0-9_-]{1,64}? */
int rg_list_name_valid(const char *name);

/*
 * Load the list file path as the list called name. Returns NULL when there
 * was an error (reported through diag with file = path).
 */
struct rg_list *rg_list_load(const char *path, const char *name, rg_rules_diag diag, void *ctx);
struct rg_list *rg_list_free(struct rg_list *l);

/* Is s[0..len) an entry of the list? */
int rg_list_contains(const struct rg_list *l, const char *s, size_t len);
/* Number of distinct entries. */
size_t rg_list_count(const struct rg_list *l);
const char *rg_list_name(const struct rg_list *l);
const char *rg_list_path(const struct rg_list *l);

#endif
