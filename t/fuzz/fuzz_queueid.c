/*
 * fuzz_queueid.c - libFuzzer target for lib/queueid: the input is the
 * start of a message (its header section, perhaps more), exactly as long
 * as libFuzzer made it: not NUL-terminated, so reading past its end is
 * caught by AddressSanitizer.
 *
 * Invariants (abort() when broken):
 *  - a found id is 1 to outmax-1 characters of [A-Za-z0-9], NUL-terminated
 *    inside the buffer (a heap block of exactly outmax bytes);
 *  - it is a word of the input (once CRs, which unfolding drops, are
 *    removed), and what a small buffer finds a large one finds too;
 *  - -1 leaves no partial result claimed: nothing to check but no crash.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "queueid.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_INPUT (64 * 1024)

static void check(int ok)
{
    if (!ok)
        abort();
}

static int is_id_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

static void check_id(const char *id, size_t outmax, const char *nocr, size_t nocrlen)
{
    size_t n;
    const void *nul = memchr(id, 0, outmax);

    check(nul != NULL);
    n = (size_t)((const char *)nul - id);
    check(n >= 1 && n < outmax);
    for (size_t i = 0; i < n; i++)
        check(is_id_char(id[i]));
    /* the id is in the input */
    check(n <= nocrlen && memmem(nocr, nocrlen, id, n) != NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const size_t sizes[] = { 64, 12, 2, 1 };
    const char *hdr = (const char *)data;
    char *nocr, *big = NULL;
    size_t nocrlen = 0;
    int found_big = -1;

    if (size > MAX_INPUT)
        return 0;
    nocr = malloc(size ? size : 1);
    check(nocr != NULL);
    for (size_t i = 0; i < size; i++)
        if (hdr[i] != '\r')
            nocr[nocrlen++] = hdr[i];

    for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
        size_t outmax = sizes[k];
        char *out = malloc(outmax);
        int rc;

        check(out != NULL);
        rc = rg_queue_id_from_received(hdr, size, out, outmax);
        check(rc == 0 || rc == -1);
        if (rc == 0) {
            check_id(out, outmax, nocr, nocrlen);
            if (k > 0)
                check(found_big == 0 && strcmp(out, big) == 0);
        }
        if (k == 0) {
            found_big = rc;
            big = out;
        } else {
            free(out);
        }
    }
    free(big);
    free(nocr);
    return 0;
}
