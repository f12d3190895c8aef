/*
 * provider_load.c - load generator for bench/provider: N client threads,
 * each with its own lib/provider_client handle (one kept-alive TLS
 * connection, as in a regigated worker), creating transactions or fetching
 * keys for D seconds. Prints requests per second and latency percentiles.
 *
 *   provider_load -u URL -a CA -c CERT -k KEY [-n CLIENTS] [-d SECONDS]
 *                 [-m create|fetch|health] [-s SENDER] [-r RECIPIENT]
 */
#include "config.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "mem.h"
#include "provider_client.h"

struct worker {
    pthread_t th;
    int idx;
    double *lat;            /* milliseconds */
    size_t n, cap;
    long errors;
    char last_error[300];
};

static struct rg_provider_config cfg;
static const char *mode = "create", *sender = "bench@example.com", *recipient = "bench-rcpt@example.com";
static double duration = 10;
static volatile int go;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void *run(void *arg)
{
    struct worker *w = arg;
    char err[256];
    struct rg_provider *p = rg_provider_new(&cfg, err, sizeof(err));
    struct rg_provider_info info;
    struct rg_provider_txn t;
    const char *rcpts[] = { recipient };
    uint8_t sha[32], kek[32];
    unsigned seq = 0;
    double end;

    if (p == NULL) {
        snprintf(w->last_error, sizeof(w->last_error), "%s", err);
        w->errors++;
        return NULL;
    }
    memset(sha, 0, sizeof(sha));
    sha[0] = (uint8_t)w->idx;
    memcpy(sha + 1, &(unsigned){ (unsigned)getpid() }, sizeof(unsigned));
    sha[8] = (uint8_t)rand();
    if (strcmp(mode, "fetch") == 0) {
        /* one transaction per client whose key is fetched again and again */
        if (rg_provider_create(p, sender, rcpts, 1, "<bench@x>", sha, &t, &info) != RG_PROVIDER_OK) {
            snprintf(w->last_error, sizeof(w->last_error), "create: %s", info.reason);
            w->errors++;
            rg_provider_free(p);
            return NULL;
        }
    }
    while (!go)
        usleep(1000);
    end = now() + duration;
    while (now() < end) {
        double t0 = now();
        enum rg_provider_status st;
        if (strcmp(mode, "health") == 0) {
            st = rg_provider_health(p, NULL, &info);
        } else if (strcmp(mode, "fetch") == 0) {
            st = rg_provider_fetch_key(p, t.id, recipient, kek, &info);
        } else {
            seq++;
            memcpy(sha + 16, &seq, sizeof(seq));
            st = rg_provider_create(p, sender, rcpts, 1, "<bench@x>", sha, &t, &info);
        }
        double ms = (now() - t0) * 1000;
        if (st != RG_PROVIDER_OK) {
            w->errors++;
            snprintf(w->last_error, sizeof(w->last_error), "%s", info.reason);
            continue;
        }
        if (w->n == w->cap) {
            w->cap = w->cap ? 2 * w->cap : 4096;
            w->lat = rg_realloc(w->lat, w->cap * sizeof(double));
        }
        w->lat[w->n++] = ms;
    }
    rg_provider_free(p);
    return NULL;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    int c, nclients = 8;
    struct worker *w;
    double *all;
    size_t total = 0;
    long errors = 0;

    memset(&cfg, 0, sizeof(cfg));
    cfg.connect_timeout_ms = 5000;
    cfg.timeout_ms = 10000;
    while ((c = getopt(argc, argv, "u:a:c:k:n:d:m:s:r:")) != -1) {
        switch (c) {
        case 'u': cfg.url = optarg; break;
        case 'a': cfg.ca_file = optarg; break;
        case 'c': cfg.cert_file = optarg; break;
        case 'k': cfg.key_file = optarg; break;
        case 'n': nclients = atoi(optarg); break;
        case 'd': duration = atof(optarg); break;
        case 'm': mode = optarg; break;
        case 's': sender = optarg; break;
        case 'r': recipient = optarg; break;
        default:
            fprintf(stderr, "usage: provider_load -u URL -a CA -c CERT -k KEY [-n CLIENTS] [-d SECONDS]"
                    " [-m create|fetch|health] [-s SENDER] [-r RECIPIENT]\n");
            return 2;
        }
    }
    if (!cfg.url || !cfg.ca_file || !cfg.cert_file || nclients < 1 || duration <= 0
        || (strcmp(mode, "create") && strcmp(mode, "fetch") && strcmp(mode, "health"))) {
        fprintf(stderr, "provider_load: -u, -a and -c are required; -m create|fetch|health\n");
        return 2;
    }
    rg_log_open("provider_load", RG_LOG_STDERR, 0);
    srand((unsigned)time(NULL));
    w = rg_calloc((size_t)nclients, sizeof(*w));
    for (int i = 0; i < nclients; i++) {
        w[i].idx = i;
        pthread_create(&w[i].th, NULL, run, &w[i]);
    }
    usleep(300000);     /* let every client connect (fetch mode: create) */
    go = 1;
    for (int i = 0; i < nclients; i++) {
        pthread_join(w[i].th, NULL);
        total += w[i].n;
        errors += w[i].errors;
    }
    all = rg_malloc((total ? total : 1) * sizeof(double));
    total = 0;
    for (int i = 0; i < nclients; i++) {
        memcpy(all + total, w[i].lat, w[i].n * sizeof(double));
        total += w[i].n;
        if (w[i].errors)
            fprintf(stderr, "client %d: %ld errors, last: %s\n", i, w[i].errors, w[i].last_error);
    }
    qsort(all, total, sizeof(double), cmp_double);
    if (total == 0) {
        printf("mode=%s clients=%d requests=0 errors=%ld\n", mode, nclients, errors);
        return 1;
    }
    printf("mode=%s clients=%d seconds=%.1f requests=%zu errors=%ld rps=%.0f p50_ms=%.2f p99_ms=%.2f max_ms=%.2f\n",
           mode, nclients, duration, total, errors, (double)total / duration,
           all[total / 2], all[(size_t)((double)total * 0.99)], all[total - 1]);
    for (int i = 0; i < nclients; i++)
        rg_free(w[i].lat);
    rg_free(w);
    rg_free(all);
    return errors ? 1 : 0;
}
