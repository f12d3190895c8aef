/*
 * routestate.c - regigated's per-route state files; see routestate.h.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "mem.h"
#include "routestate.h"

#define STATE_MAX 512

char *rg_routestate_path(const char *spool_dir, const char *route, const char *what)
{
    return rg_sprintf("%s/route-%s.%s", spool_dir, route, what);
}

/* Feed the bytes of path to md; -1 with err set. */
static int digest_file(EVP_MD_CTX *md, const char *path, char *err, size_t errlen)
{
    unsigned char buf[65536];
    FILE *fp = fopen(path, "re");
    size_t n;
    int rc = 0;

    if (fp == NULL) {
        snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
        return -1;
    }
    while ((n = fread(buf, 1, sizeof(buf), fp)) > 0)
        if (EVP_DigestUpdate(md, buf, n) != 1)
            rc = -1;
    if (ferror(fp) || rc < 0) {
        snprintf(err, errlen, "cannot read %s", path);
        rc = -1;
    }
    fclose(fp);
    return rc;
}

static int by_name(const struct dirent **a, const struct dirent **b)
{
    return strcmp((*a)->d_name, (*b)->d_name);
}

static int visible(const struct dirent *d)
{
    return d->d_name[0] != '.';
}

int rg_routestate_fingerprint(const char *rules, const char *lists_dir, char hex[65],
                              char *err, size_t errlen)
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    struct dirent **names = NULL;
    unsigned char out[EVP_MAX_MD_SIZE];
    unsigned outlen = 0;
    int n = 0, rc = -1;

    if (md == NULL || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1) {
        snprintf(err, errlen, "SHA-256 not available");
        goto out;
    }
    if (rules == NULL) {
        if (EVP_DigestUpdate(md, "{}", 2) != 1)
            goto out;
    } else if (digest_file(md, rules, err, errlen) < 0) {
        goto out;
    }
    if (lists_dir != NULL) {
        n = scandir(lists_dir, &names, visible, by_name);
        if (n < 0 && errno != ENOENT) {
            snprintf(err, errlen, "cannot read %s: %s", lists_dir, strerror(errno));
            goto out;
        }
        for (int i = 0; i < n; i++) {
            char *path = rg_sprintf("%s/%s", lists_dir, names[i]->d_name);
            struct stat st;
            int bad = 0;
            if (stat(path, &st) == 0 && S_ISREG(st.st_mode))
                bad = EVP_DigestUpdate(md, "", 1) != 1
                      || EVP_DigestUpdate(md, names[i]->d_name, strlen(names[i]->d_name) + 1) != 1
                      || digest_file(md, path, err, errlen) < 0;
            rg_free(path);
            if (bad)
                goto out;
        }
    }
    if (EVP_DigestFinal_ex(md, out, &outlen) != 1 || outlen != 32) {
        snprintf(err, errlen, "SHA-256 failed");
        goto out;
    }
    for (unsigned i = 0; i < outlen; i++)
        snprintf(hex + 2 * i, 3, "%02x", out[i]);
    rc = 0;
out:
    for (int i = 0; i < n; i++)
        free(names[i]);
    free(names);
    EVP_MD_CTX_free(md);
    return rc;
}

int rg_routestate_write_rules(const char *path, const struct rg_routestate_rules *st)
{
    char *tmp = rg_sprintf("%s.tmp%ld", path, (long)getpid());
    char text[STATE_MAX];
    int fd, n, saved;

    n = snprintf(text, sizeof(text), "fingerprint %s\nrules %zu\nloaded %lld\n",
                 st->fingerprint, st->nrules, (long long)st->loaded);
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        goto fail;
    if (write(fd, text, (size_t)n) != n) {
        close(fd);
        goto fail_unlink;
    }
    if (close(fd) < 0 || rename(tmp, path) < 0)
        goto fail_unlink;
    rg_free(tmp);
    return 0;
fail_unlink:
    saved = errno;
    unlink(tmp);
    errno = saved;
fail:
    rg_free(tmp);
    return -1;
}

int rg_routestate_read_rules(const char *path, struct rg_routestate_rules *st)
{
    FILE *fp = fopen(path, "re");
    long long loaded = 0;
    size_t nrules = 0;
    char fp_hex[65];
    int ok;

    if (fp == NULL)
        return -1;
    ok = fscanf(fp, "fingerprint %64[0-9a-f] rules %zu loaded %lld", fp_hex, &nrules, &loaded) == 3;
    fclose(fp);
    if (!ok || strlen(fp_hex) != 64) {
        errno = EINVAL;
        return -1;
    }
    memcpy(st->fingerprint, fp_hex, sizeof(fp_hex));
    st->nrules = nrules;
    st->loaded = (time_t)loaded;
    return 0;
}

int rg_routestate_touch(const char *path, time_t now, time_t *last)
{
    struct timespec ts[2];
    int fd;

    if (*last != 0 && now >= *last && now - *last < RG_ROUTESTATE_TOUCH_EVERY)
        return 0;
    *last = now;
    ts[0].tv_sec = ts[1].tv_sec = now;
    ts[0].tv_nsec = ts[1].tv_nsec = 0;
    if (utimensat(AT_FDCWD, path, ts, 0) == 0)
        return 1;
    if (errno != ENOENT)
        return -1;
    fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0)
        return -1;
    if (futimens(fd, ts) < 0) {
        int saved = errno;
        close(fd);
        errno = saved;
        return -1;
    }
    close(fd);
    return 1;
}

int rg_routestate_last_contact(const char *path, time_t *when)
{
    struct stat st;

    if (stat(path, &st) < 0)
        return -1;
    *when = st.st_mtime;
    return 0;
}
