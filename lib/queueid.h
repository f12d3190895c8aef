/*
 * queueid.h - find the upstream Postfix queue id of a message, for logs.
 */
#ifndef RG_QUEUEID_H
#define RG_QUEUEID_H

#include <stddef.h>

/*
 * From the message's top-most Received header ("... by host (Postfix) with
 * ESMTP id 4XyZ12abc; date"): the word after " id " before the ';'. hdr
 * holds the start of the message (len bytes, need not be NUL-terminated).
 * Returns 0 and fills out ([A-Za-z0-9], at most outmax-1 chars) or -1.
 */
int rg_queue_id_from_received(const char *hdr, size_t len, char *out, size_t outmax);

#endif
