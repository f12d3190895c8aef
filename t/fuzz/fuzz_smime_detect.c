/*
 * fuzz_smime_detect.c - libFuzzer target for lib/smime.c on incoming mail:
 * detection (MIME, base64, the BER of the CMS head) and decryption with a
 * fixed KEK (the whole BER, AES key unwrap, GCM) of arbitrary input.
 *
 * Invariants (abort() when broken):
 *  - detection and decryption return a status of the enum, never crash;
 *  - OK from detection means kind OURS and a txid_hex matching txid;
 *  - decryption succeeds only on something detection calls ours, and on
 *    failure leaves the output spool empty;
 *  - the spool and the memory entry points agree.
 * The seed corpus holds messages encrypted with FUZZ_KEK below, so that
 * decryption gets past the tag check and mutations exercise the BER parser.
 */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "smime.h"
#include "spool.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_INPUT (1024 * 1024)

/* 000102...1f: the KEK of the seed corpus */
static const unsigned char fuzz_kek[RG_SMIME_KEK_LEN] = {
    0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15,
    16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31,
};

static void check(int ok)
{
    if (!ok)
        abort();
}

static int valid_status(int st)
{
    return st >= RG_SMIME_OK && st <= RG_SMIME_INTERNAL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *msg = (const char *)data;
    struct rg_smime_info info, info2;
    struct rg_spool in, out;
    char err[256], hex[3];
    int st, st2, dst;

    if (size > MAX_INPUT)
        return 0;
    st = rg_smime_detect(msg, size, &info);
    check(valid_status(st));
    if (st == RG_SMIME_OK) {
        check(info.kind == RG_SMIME_KIND_OURS);
        for (size_t i = 0; i < RG_SMIME_TXID_LEN; i++) {
            snprintf(hex, sizeof(hex), "%02x", info.txid[i]);
            check(memcmp(hex, info.txid_hex + 2 * i, 2) == 0);
        }
    }

    /* the spool path, small memory limit: file mode for larger inputs */
    const char *tmp = getenv("TMPDIR");
    if (tmp == NULL || *tmp == 0)
        tmp = "/tmp";
    rg_spool_init(&in, tmp, 4096);
    rg_spool_init(&out, tmp, 4096);
    check(rg_spool_write(&in, data, size) == 0 && rg_spool_finish(&in) == 0);
    st2 = rg_smime_detect_spool(&in, &info2);
    check(st2 == st && info2.kind == info.kind);
    if (st == RG_SMIME_OK)
        check(memcmp(info.txid, info2.txid, sizeof(info.txid)) == 0);

    dst = rg_smime_decrypt(&in, fuzz_kek, &out, err, sizeof(err));
    check(valid_status(dst));
    if (dst == RG_SMIME_OK)
        check(st == RG_SMIME_OK);
    else
        check(rg_spool_size(&out) == 0);
    rg_spool_free(&in);
    rg_spool_free(&out);
    return 0;
}
