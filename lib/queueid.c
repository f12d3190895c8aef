/*
 * queueid.c - queue id from the top-most Received header; see queueid.h.
 */
#include "config.h"

#include <ctype.h>
#include <string.h>
#include <strings.h>

#include "queueid.h"

#define RECEIVED_MAX 4096   /* longer Received headers are not looked at */

int rg_queue_id_from_received(const char *hdr, size_t len, char *out, size_t outmax)
{
    char field[RECEIVED_MAX + 1];
    size_t flen = 0, pos = 0;

    /* find the first Received: field in the header section */
    while (pos < len) {
        const char *line = hdr + pos;
        const char *nl = memchr(line, '\n', len - pos);
        size_t ll = nl ? (size_t)(nl - line) + 1 : len - pos;

        if (ll <= 2 && (line[0] == '\n' || (line[0] == '\r' && ll == 2 && line[1] == '\n')))
            return -1;                          /* end of headers */
        if (ll >= 9 && strncasecmp(line, "Received:", 9) == 0) {
            /* unfold: the field and its continuation lines */
            size_t p = pos + 9;
            for (;;) {
                while (p < len && hdr[p] != '\n') {
                    if (hdr[p] != '\r' && flen < RECEIVED_MAX)
                        field[flen++] = hdr[p];
                    p++;
                }
                if (p + 1 < len && (hdr[p + 1] == ' ' || hdr[p + 1] == '\t')) {
                    p++;
                    continue;
                }
                break;
            }
            field[flen] = 0;
            break;
        }
        if (!nl)
            return -1;
        pos += ll;
    }
    if (flen == 0)
        return -1;
    char *semi = strchr(field, ';');
    if (semi)
        *semi = 0;
    for (char *p = field; (p = strstr(p, "id")) != NULL; p += 2) {
        if (p == field || !isspace((unsigned char)p[-1]) || !isspace((unsigned char)p[2]))
            continue;
        char *w = p + 2;
        while (isspace((unsigned char)*w))
            w++;
        size_t n = 0;
        while (isalnum((unsigned char)w[n]))
            n++;
        if (n == 0)
            continue;       /* "from id (...)": a host named id; look on */
        if (n >= outmax)
            return -1;
        memcpy(out, w, n);
        out[n] = 0;
        return 0;
    }
    return -1;
}
