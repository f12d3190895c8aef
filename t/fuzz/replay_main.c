/*
 * replay_main.c - main() for the t/fuzz targets when they are not linked
 * with libFuzzer (configure without --enable-fuzzers): run
 * LLVMFuzzerTestOneInput once on every input and report in TAP, so that
 * "make check" replays the seed corpora and every saved reproducer.
 *
 *   fuzz_NAME [FILE|DIR]...
 *
 * A directory stands for its regular files, in byte order of their names
 * (hidden files are skipped); a file for itself. Arguments starting with
 * '-' are ignored, so a libFuzzer command line (-runs=0 ...) works too.
 * Without any file argument the program replays its own corpus,
 * $top_srcdir/t/fuzz/corpus/NAME, NAME being its file name without the
 * "fuzz_" prefix: this is how the automake test harness runs it (the
 * harness exports top_srcdir).
 *
 * Each input is passed in a heap buffer of exactly its size, so that a
 * sanitizer build sees reads past its end. A crash, a failed invariant
 * (abort) or a sanitizer report ends the program before its "ok" line: the
 * TAP driver then reports the plan as not completed.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct list {
    char **v;
    size_t n, cap;
};

static void die(const char *what, const char *path)
{
    printf("Bail out! %s %s: %s\n", what, path, strerror(errno));
    exit(1);
}

static void add(struct list *l, const char *path)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 64;
        l->v = realloc(l->v, l->cap * sizeof(*l->v));
        if (l->v == NULL)
            die("out of memory listing", path);
    }
    l->v[l->n] = strdup(path);
    if (l->v[l->n] == NULL)
        die("out of memory listing", path);
    l->n++;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Append the regular files of dir, sorted. */
static void add_dir(struct list *l, const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    size_t first = l->n;

    if (d == NULL)
        die("cannot open directory", dir);
    while ((e = readdir(d)) != NULL) {
        struct stat st;
        char *path;
        size_t len;

        if (e->d_name[0] == '.')
            continue;
        len = strlen(dir) + strlen(e->d_name) + 2;
        path = malloc(len);
        if (path == NULL)
            die("out of memory listing", dir);
        snprintf(path, len, "%s/%s", dir, e->d_name);
        if (stat(path, &st) == 0 && S_ISREG(st.st_mode))
            add(l, path);
        free(path);
    }
    closedir(d);
    qsort(l->v + first, l->n - first, sizeof(*l->v), by_name);
}

static void add_arg(struct list *l, const char *arg)
{
    struct stat st;

    if (stat(arg, &st) < 0)
        die("cannot stat", arg);
    if (S_ISDIR(st.st_mode))
        add_dir(l, arg);
    else
        add(l, arg);
}

/* $top_srcdir/t/fuzz/corpus/NAME for a program called .../fuzz_NAME. */
static void add_default_corpus(struct list *l, const char *argv0)
{
    const char *srcdir = getenv("top_srcdir");
    const char *base = strrchr(argv0, '/');
    char path[4096];
    size_t blen;

    base = base ? base + 1 : argv0;
    if (strncmp(base, "fuzz_", 5) == 0)
        base += 5;
    blen = strlen(base);
    if (blen > 4 && strcmp(base + blen - 4, ".exe") == 0)
        blen -= 4;
    if (srcdir == NULL || *srcdir == '\0') {
        printf("Bail out! no input: give files or directories, or set top_srcdir\n");
        exit(1);
    }
    if ((size_t)snprintf(path, sizeof(path), "%s/t/fuzz/corpus/%.*s", srcdir, (int)blen, base)
        >= sizeof(path)) {
        printf("Bail out! corpus path too long\n");
        exit(1);
    }
    add_arg(l, path);
}

/* The whole file in a malloc'd buffer of exactly its size (1 byte if empty). */
static uint8_t *slurp(const char *path, size_t *size)
{
    FILE *fp = fopen(path, "rb");
    uint8_t *buf = NULL;
    size_t len = 0, cap = 0, n;
    uint8_t chunk[65536];

    if (fp == NULL)
        die("cannot open", path);
    while ((n = fread(chunk, 1, sizeof(chunk), fp)) > 0) {
        if (len + n > cap) {
            cap = (len + n) * 2;
            buf = realloc(buf, cap);
            if (buf == NULL)
                die("out of memory reading", path);
        }
        memcpy(buf + len, chunk, n);
        len += n;
    }
    if (ferror(fp))
        die("cannot read", path);
    fclose(fp);
    /* shrink to the exact size so that overreads hit the redzone */
    uint8_t *exact = malloc(len ? len : 1);
    if (exact == NULL)
        die("out of memory reading", path);
    if (len)
        memcpy(exact, buf, len);
    free(buf);
    *size = len;
    return exact;
}

int main(int argc, char **argv)
{
    struct list l = { NULL, 0, 0 };
    int files = 0;

    for (int i = 1; i < argc; i++) {
        if (argv[i][0] == '-')
            continue;
        add_arg(&l, argv[i]);
        files++;
    }
    if (files == 0)
        add_default_corpus(&l, argv[0]);

    printf("1..%zu\n", l.n);
    fflush(stdout);
    for (size_t i = 0; i < l.n; i++) {
        size_t size;
        uint8_t *data = slurp(l.v[i], &size);

        LLVMFuzzerTestOneInput(data, size);
        free(data);
        printf("ok %zu - %s\n", i + 1, l.v[i]);
        fflush(stdout);
        free(l.v[i]);
    }
    free(l.v);
    return 0;
}
