/*
 * crypto_raw.c - raw CMS encryption speed of lib/smime.c (issue 5 bench):
 * rg_smime_encrypt from a memory spool into a memory spool (CMS
 * AuthEnvelopedData AES-256-GCM, KEK recipient, base64 76-column packaging,
 * outer headers), for 1 MiB and 16 MiB messages, median of RUNS runs
 * after a warm-up. Prints "SIZE_MIB CPU_MB_PER_S WALL_MB_PER_S" lines
 * (MB = 10^6 bytes of the original): per second of the process's CPU time
 * (user + system), which is what `openssl speed` reports by default (its
 * user time, without -elapsed), and per second of wall-clock time, which
 * the other processes of a busy host make longer.
 *
 *   crypto_raw [-r RUNS]
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/rand.h>

#include "smime.h"
#include "spool.h"

static double now(clockid_t clk)
{
    struct timespec ts;

    clock_gettime(clk, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    static const size_t sizes[] = { 1, 16 };
    unsigned char kek[RG_SMIME_KEK_LEN], txid[RG_SMIME_TXID_LEN];
    int runs = 5, opt;
    const char *tmp = getenv("TMPDIR");

    while ((opt = getopt(argc, argv, "r:")) != -1) {
        if (opt != 'r' || (runs = atoi(optarg)) < 1 || runs > 101) {
            fprintf(stderr, "usage: crypto_raw [-r RUNS]\n");
            return 2;
        }
    }
    if (tmp == NULL || *tmp == 0)
        tmp = "/tmp";
    RAND_bytes(kek, sizeof(kek));
    RAND_bytes(txid, sizeof(txid));
    for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
        size_t n = sizes[s] << 20;
        double t[101], tw[101];
        char *msg = malloc(n), err[256];
        struct rg_spool in;
        const char *h = "From: a@example.org\r\nTo: b@example.com\r\nSubject: bench\r\n\r\n";

        RAND_bytes((unsigned char *)msg, (int)n);
        memcpy(msg, h, strlen(h));
        /* in memory, as the daemon's spool for messages under its limit */
        rg_spool_init(&in, tmp, n + 1);
        rg_spool_write(&in, msg, n);
        rg_spool_finish(&in);
        /* the output spool is reused, as a worker reuses its memory: the
         * kernel's page faults on fresh memory are not what is measured */
        struct rg_spool out;
        rg_spool_init(&out, tmp, n * 2);
        for (int r = -1; r < runs; r++) {      /* r = -1: warm-up */
            double t0, w0;
            rg_spool_reset(&out);
            t0 = now(CLOCK_PROCESS_CPUTIME_ID);
            w0 = now(CLOCK_MONOTONIC);
            if (rg_smime_encrypt(&in, kek, txid, NULL, &out, err, sizeof(err)) != 0) {
                fprintf(stderr, "crypto_raw: %s\n", err);
                return 1;
            }
            if (r >= 0) {
                tw[r] = now(CLOCK_MONOTONIC) - w0;
                t[r] = now(CLOCK_PROCESS_CPUTIME_ID) - t0;
            }
        }
        rg_spool_free(&out);
        qsort(t, (size_t)runs, sizeof(double), cmp_double);
        qsort(tw, (size_t)runs, sizeof(double), cmp_double);
        printf("%zu %.1f %.1f\n", sizes[s], (double)n / t[runs / 2] / 1e6,
               (double)n / tw[runs / 2] / 1e6);
        rg_spool_free(&in);
        free(msg);
    }
    return 0;
}
