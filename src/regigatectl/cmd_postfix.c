/*
 * cmd_postfix.c - regigatectl postfix generate [--apply]: write the
 * Postfix configuration of the routes (lib/pfgen.h) and, with --apply,
 * merge it into Postfix's main.cf and master.cf, check it, reload Postfix
 * and regigated.
 *
 * The generated entries sit in one block of each file between
 * RG_PFGEN_BEGIN and RG_PFGEN_END; --apply replaces that block and leaves
 * everything else as it is. Both files are written to temporary files
 * and renamed into place; when "postfix check" fails the previous files
 * are put back.
 */
#include "config.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "conffile.h"
#include "ctl.h"
#include "mem.h"
#include "pfgen.h"
#include "routecert.h"

#define FILE_MAX (4u * 1024 * 1024)

static const struct rg_ctl_cmd generate_cmd = { "postfix", "generate",
    "[--output DIR] [--apply [--postfix-dir DIR] [--no-reload]]", "", NULL };

/* Run argv (PATH lookup), wait; its exit status, -1 if it could not run.
 * Its output goes to our stderr, or to /dev/null when quiet. */
static int run(char *const argv[], int quiet)
{
    pid_t pid;
    int st;

    fflush(stdout);
    fflush(stderr);
    pid = fork();
    if (pid < 0) {
        rg_ctl_error("fork: %s", strerror(errno));
        return -1;
    }
    if (pid == 0) {
        if (quiet) {
            if (freopen("/dev/null", "w", stdout) == NULL || freopen("/dev/null", "w", stderr) == NULL)
                _exit(126);
        } else {
            dup2(STDERR_FILENO, STDOUT_FILENO);
        }
        execvp(argv[0], argv);
        fprintf(stderr, "regigatectl: error: cannot run %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR)
            return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* The whole file, "" when it does not exist; NULL after an error. */
static char *slurp(const char *path)
{
    FILE *fp = fopen(path, "re");
    char *data;
    size_t n;

    if (fp == NULL) {
        if (errno == ENOENT)
            return rg_strdup("");
        rg_ctl_error("cannot read %s: %s", path, strerror(errno));
        return NULL;
    }
    data = rg_malloc(FILE_MAX + 1);
    n = fread(data, 1, FILE_MAX + 1, fp);
    fclose(fp);
    if (n > FILE_MAX) {
        rg_ctl_error("%s is larger than %u bytes", path, FILE_MAX);
        return rg_free(data);
    }
    data[n] = '\0';
    return data;
}

static int write_file(const char *path, const char *text, mode_t mode)
{
    struct rg_routecert_owner self = RG_ROUTECERT_OWNER_SELF;
    char err[512];

    if (rg_routecert_write_file(path, text, strlen(text), mode, &self, err, sizeof(err)) < 0) {
        rg_ctl_error("%s", err);
        return -1;
    }
    return 0;
}

/* Default output: "postfix" beside regigate.conf. */
static char *default_output(const char *conf_path)
{
    const char *slash = strrchr(conf_path, '/');

    return slash ? rg_sprintf("%.*s/postfix", (int)(slash - conf_path), conf_path)
                 : rg_strdup("postfix");
}

/* Merge block into dir/file, writing dir/file.regigate-bak first. */
static int merge_into(const char *dir, const char *file, const char *block)
{
    char *path = rg_sprintf("%s/%s", dir, file), *bak = rg_sprintf("%s.regigate-bak", path);
    char *old = slurp(path), *merged = NULL;
    struct stat st;
    int rc = -1;

    if (old == NULL)
        goto out;
    merged = rg_pfgen_merge(old, block);
    if (merged == NULL) {
        rg_ctl_error("%s has \"%s\" without \"%s\": fix it by hand", path, RG_PFGEN_BEGIN,
                     RG_PFGEN_END);
        goto out;
    }
    if (stat(path, &st) < 0)
        st.st_mode = 0644;
    if (write_file(bak, old, st.st_mode & 07777) < 0
        || write_file(path, merged, st.st_mode & 07777) < 0)
        goto out;
    rc = 0;
out:
    rg_free(merged);
    rg_free(old);
    rg_free(bak);
    rg_free(path);
    return rc;
}

static void restore(const char *dir, const char *file)
{
    char *path = rg_sprintf("%s/%s", dir, file), *bak = rg_sprintf("%s.regigate-bak", path);

    if (rename(bak, path) < 0)
        rg_ctl_error("cannot restore %s from %s: %s", path, bak, strerror(errno));
    rg_free(bak);
    rg_free(path);
}

int rg_ctl_hup_regigated(const struct rg_conf *conf)
{
    FILE *fp = fopen(conf->pid_file, "re");
    long pid = 0;

    if (fp == NULL)
        return 0;
    if (fscanf(fp, "%ld", &pid) != 1 || pid <= 1) {
        fclose(fp);
        rg_ctl_error("%s holds no process id", conf->pid_file);
        return -1;
    }
    fclose(fp);
    if (kill((pid_t)pid, SIGHUP) < 0) {
        if (errno == ESRCH)
            return 0;
        rg_ctl_error("cannot signal regigated (pid %ld): %s", pid, strerror(errno));
        return -1;
    }
    return 1;
}

int rg_ctl_postfix_generate(struct rg_ctl *ctl, int argc, char **argv)
{
    const struct rg_conf *conf;
    const char *output = NULL, *pfdir = NULL;
    char *dir = NULL, *master = NULL, *main_cf = NULL, *p;
    int apply = 0, reload = 1, rc = RG_CTL_FAIL, st;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--apply") == 0)
            apply = 1;
        else if (strcmp(argv[i], "--no-reload") == 0)
            reload = 0;
        else if (strcmp(argv[i], "--output") == 0 && i + 1 < argc)
            output = argv[++i];
        else if (strcmp(argv[i], "--postfix-dir") == 0 && i + 1 < argc)
            pfdir = argv[++i];
        else
            return rg_ctl_usage(&generate_cmd);
    }
    if ((conf = rg_ctl_conf(ctl)) == NULL)
        return RG_CTL_FAIL;
    if (conf->mta.sasl_password_maps != NULL) {
        struct stat sst;
        if (stat(conf->mta.sasl_password_maps, &sst) < 0) {
            rg_ctl_error("sasl_password_maps %s: %s", conf->mta.sasl_password_maps, strerror(errno));
            return RG_CTL_FAIL;
        }
        if (sst.st_mode & 077) {
            rg_ctl_error("sasl_password_maps %s has mode %04o: it holds passwords, make it 0600 "
                         "(chmod 600 %s)", conf->mta.sasl_password_maps,
                         (unsigned)(sst.st_mode & 07777), conf->mta.sasl_password_maps);
            return RG_CTL_FAIL;
        }
    }
    {
        char *warn = rg_pfgen_warnings(conf);
        for (char *line = warn, *nl; line != NULL && *line != '\0'; line = nl + 1) {
            nl = strchr(line, '\n');
            fprintf(stderr, "regigatectl: warning: %.*s\n", (int)(nl - line), line);
        }
        rg_free(warn);
    }
    dir = output ? rg_strdup(output) : default_output(conf->path);
    master = rg_pfgen_master(conf);
    main_cf = rg_pfgen_main(conf);
    if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
        rg_ctl_error("cannot create %s: %s", dir, strerror(errno));
        goto out;
    }
    p = rg_sprintf("%s/master.cf", dir);
    st = write_file(p, master, 0644);
    rg_free(p);
    p = rg_sprintf("%s/main.cf", dir);
    st = st < 0 ? st : write_file(p, main_cf, 0644);
    rg_free(p);
    if (st < 0)
        goto out;
    printf("wrote %s/master.cf and %s/main.cf\n", dir, dir);
    if (!apply) {
        rc = RG_CTL_OK;
        goto out;
    }

    if (pfdir == NULL)
        pfdir = "/etc/postfix";
    if (merge_into(pfdir, "main.cf", main_cf) < 0)
        goto out;
    if (merge_into(pfdir, "master.cf", master) < 0) {
        restore(pfdir, "main.cf");
        goto out;
    }
    {
        char *check[] = { "postfix", "-c", (char *)pfdir, "check", NULL };
        if (run(check, 0) != 0) {
            rg_ctl_error("postfix check failed for %s: the previous main.cf and master.cf "
                         "are restored", pfdir);
            restore(pfdir, "main.cf");
            restore(pfdir, "master.cf");
            goto out;
        }
    }
    printf("merged into %s/main.cf and %s/master.cf; postfix check passed\n", pfdir, pfdir);
    rc = RG_CTL_OK;
    if (!reload)
        goto out;
    {
        char *status[] = { "postfix", "-c", (char *)pfdir, "status", NULL };
        char *rel[] = { "postfix", "-c", (char *)pfdir, "reload", NULL };
        if (run(status, 1) != 0) {
            printf("postfix (%s) is not running: not reloaded\n", pfdir);
        } else if (run(rel, 1) != 0) {
            rg_ctl_error("postfix -c %s reload failed", pfdir);
            rc = RG_CTL_FAIL;
        } else {
            printf("postfix reloaded\n");
        }
    }
    switch (rg_ctl_hup_regigated(conf)) {
    case 1:
        printf("regigated reloaded (SIGHUP)\n");
        break;
    case 0:
        printf("regigated is not running (no process in %s): not reloaded\n", conf->pid_file);
        break;
    default:
        rc = RG_CTL_FAIL;
    }
out:
    rg_free(master);
    rg_free(main_cf);
    rg_free(dir);
    return rc;
}
