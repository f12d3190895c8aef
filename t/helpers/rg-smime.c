/*
 * rg-smime.c - test helper for t/smime/interop.sh: lib/smime.c on the
 * command line.
 *
 *   rg-smime encrypt KEKHEX TXIDHEX [hide-subject] < message > encrypted
 *   rg-smime decrypt KEKHEX < encrypted > message
 *   rg-smime detect < message        (prints "ours TXIDHEX", "other" or "none")
 *
 * Exit status: 0 ok; 1 the lib/smime.c status as text on stderr; 2 usage.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "smime.h"
#include "spool.h"

static int unhex(const char *s, unsigned char *out, size_t n)
{
    if (strlen(s) != 2 * n)
        return -1;
    for (size_t i = 0; i < n; i++) {
        unsigned v;
        if (sscanf(s + 2 * i, "%2x", &v) != 1)
            return -1;
        out[i] = (unsigned char)v;
    }
    return 0;
}

static int slurp(struct rg_spool *sp)
{
    char buf[65536];
    ssize_t n;

    while ((n = read(0, buf, sizeof(buf))) > 0)
        if (rg_spool_write(sp, buf, (size_t)n) < 0)
            return -1;
    return n < 0 ? -1 : rg_spool_finish(sp);
}

static int dump(struct rg_spool *sp)
{
    char buf[65536];
    off_t off = 0;
    ssize_t n;

    while ((n = rg_spool_read(sp, buf, sizeof(buf), off)) > 0) {
        if (fwrite(buf, 1, (size_t)n, stdout) != (size_t)n)
            return -1;
        off += n;
    }
    return n < 0 || fflush(stdout) != 0 ? -1 : 0;
}

/*
 * Every path out of main() goes through `done`, which frees both spools:
 * under LeakSanitizer a leak found at exit ends the process with _exit(),
 * before stdio is flushed, so the line `detect` printed would be lost
 * (t/smime/interop.sh compares it).
 */
int main(int argc, char **argv)
{
    const char *tmp = getenv("TMPDIR");
    unsigned char kek[RG_SMIME_KEK_LEN], txid[RG_SMIME_TXID_LEN];
    struct rg_spool in, out;
    char err[512];
    int st, rc = 2;

    if (tmp == NULL || *tmp == 0)
        tmp = "/tmp";
    rg_spool_init(&in, tmp, 1 << 20);
    rg_spool_init(&out, tmp, 1 << 20);
    if (argc < 2)
        goto usage;
    if (slurp(&in) < 0) {
        perror("rg-smime: reading stdin");
        rc = 1;
        goto done;
    }
    if (strcmp(argv[1], "encrypt") == 0 && (argc == 4 || argc == 5)) {
        struct rg_smime_outer outer = { argc == 5 && strcmp(argv[4], "hide-subject") == 0, NULL };
        if (unhex(argv[2], kek, sizeof(kek)) < 0 || unhex(argv[3], txid, sizeof(txid)) < 0)
            goto usage;
        st = rg_smime_encrypt(&in, kek, txid, &outer, &out, err, sizeof(err));
    } else if (strcmp(argv[1], "decrypt") == 0 && argc == 3) {
        if (unhex(argv[2], kek, sizeof(kek)) < 0)
            goto usage;
        st = rg_smime_decrypt(&in, kek, &out, err, sizeof(err));
    } else if (strcmp(argv[1], "detect") == 0 && argc == 2) {
        struct rg_smime_info info;
        st = rg_smime_detect_spool(&in, &info);
        if (info.kind == RG_SMIME_KIND_OURS)
            printf("ours %s %s\n", info.txid_hex,
                   info.placement == RG_SMIME_TOPLEVEL ? "toplevel" : "attachment");
        else
            printf("%s %s\n", info.kind == RG_SMIME_KIND_OTHER ? "other" : "none",
                   rg_smime_strerror(st));
        rc = st == RG_SMIME_OK ? 0 : 1;
        goto done;
    } else {
        goto usage;
    }
    rc = 1;
    if (st != RG_SMIME_OK)
        fprintf(stderr, "rg-smime: %s\n", err);
    else if (dump(&out) < 0)
        perror("rg-smime: writing stdout");
    else
        rc = 0;
    goto done;
usage:
    fprintf(stderr, "usage: rg-smime encrypt KEKHEX TXIDHEX [hide-subject] | decrypt KEKHEX | detect\n");
done:
    rg_spool_free(&in);
    rg_spool_free(&out);
    return rc;
}
