/*
 * fuzz_provider_json.c - libFuzzer target for lib/provider_json: every
 * parser of the provider protocol on the same input, plus the address
 * normalizer. Without --enable-fuzzers it is linked with replay_main.c and
 * run over t/fuzz/corpus/provider_json/ by make check.
 */
#include "config.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "buf.h"
#include "provider_json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *s = (const char *)data, *why = NULL;
    struct rg_pj_error e;
    struct rg_pj_health h;
    struct rg_pj_account a;
    struct rg_pj_txn t;
    struct rg_pj_key k;
    struct rg_pj_events ev;
    struct rg_pj_create c;
    char addr[RG_PJ_ADDR_MAX + 1];

    if (size > 1024 * 1024)
        return 0;
    rg_pj_parse_error(s, size, &e, &why);
    rg_pj_parse_health(s, size, &h, &why);
    rg_pj_parse_account(s, size, &a, &why);
    rg_pj_parse_txn(s, size, &t, &why);
    rg_pj_parse_key(s, size, &k, &why);
    if (rg_pj_parse_events(s, size, &ev, &why) == 0)
        rg_pj_events_free(&ev);
    if (rg_pj_parse_create(s, size, &c, &why) == RG_PJ_CREATE_OK) {
        /* what parses must build again and parse to the same */
        struct rg_buf b;
        struct rg_pj_create c2;
        rg_buf_init(&b, 4u * 1024 * 1024);
        if (rg_pj_build_create(&b, c.sender, (const char *const *)c.recipients, c.nrecipients,
                               c.message_id, c.sha256) == 0
            && rg_pj_parse_create(b.data, b.len, &c2, &why) == RG_PJ_CREATE_OK) {
            if (c2.nrecipients != c.nrecipients || strcmp(c2.sender, c.sender) != 0
                || memcmp(c2.sha256, c.sha256, sizeof(c.sha256)) != 0)
                __builtin_trap();
            rg_pj_create_free(&c2);
        }
        rg_buf_free(&b);
        rg_pj_create_free(&c);
    }
    rg_pj_address_normalize(s, size, addr);
    return 0;
}
