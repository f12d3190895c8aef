/*
 * test_spool.c - unit tests of lib/spool.c: memory mode, the switch to an
 * unlinked 0600 file at the memory limit, reads at any offset, reuse after
 * reset, and write errors.
 */
#include "config.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "spool.h"

static char spool_dir[512];

static int group_setup(void **state)
{
    const char *tmp = getenv("TMPDIR");

    (void)state;
    if (tmp == NULL || tmp[0] == 0 || strlen(tmp) > 400)
        tmp = "/tmp";
    snprintf(spool_dir, sizeof(spool_dir), "%s/rg-test-spool-XXXXXX", tmp);
    return mkdtemp(spool_dir) ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    return rmdir(spool_dir);
}

/* Entries in the spool directory besides "." and "..". */
static int dir_entries(void)
{
    DIR *d = opendir(spool_dir);
    struct dirent *e;
    int n = 0;

    assert_non_null(d);
    while ((e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            n++;
    closedir(d);
    return n;
}

/* A recognisable byte for every offset. */
static char pattern(size_t i)
{
    return (char)('A' + (i * 7 + i / 251) % 53);
}

static void fill(char *p, size_t off, size_t n)
{
    for (size_t i = 0; i < n; i++)
        p[i] = pattern(off + i);
}

/* Read the whole spool back in chunks of `chunk` and compare with the pattern. */
static void check_content(struct rg_spool *sp, size_t total, size_t chunk)
{
    char *buf = malloc(chunk);
    size_t off = 0;

    assert_non_null(buf);
    for (;;) {
        ssize_t n = rg_spool_read(sp, buf, chunk, (off_t)off);
        assert_true(n >= 0);
        if (n == 0)
            break;
        assert_true((size_t)n <= chunk);
        for (ssize_t i = 0; i < n; i++)
            assert_int_equal(buf[i], pattern(off + (size_t)i));
        off += (size_t)n;
    }
    assert_int_equal(off, total);
    free(buf);
}

static void test_init_limit(void **state)
{
    struct rg_spool sp;

    (void)state;
    rg_spool_init(&sp, spool_dir, 100);
    assert_int_equal(sp.mem_limit, 4096);     /* raised to the minimum */
    assert_int_equal(sp.fd, -1);
    assert_int_equal(sp.error, 0);
    assert_int_equal(rg_spool_size(&sp), 0);
    assert_non_null(rg_spool_mem(&sp));
    assert_string_equal(rg_spool_mem(&sp), "");
    rg_spool_free(&sp);
    rg_spool_init(&sp, spool_dir, 10000);
    assert_int_equal(sp.mem_limit, 10000);
    rg_spool_free(&sp);
}

static void test_memory_mode(void **state)
{
    struct rg_spool sp;
    char buf[64];

    (void)state;
    rg_spool_init(&sp, spool_dir, 8192);
    assert_int_equal(rg_spool_write(&sp, "hello", 5), 0);
    assert_int_equal(rg_spool_write(&sp, " world", 6), 0);
    assert_int_equal(rg_spool_write(&sp, "", 0), 0);
    assert_int_equal(rg_spool_finish(&sp), 0);
    assert_int_equal(rg_spool_size(&sp), 11);
    assert_int_equal(sp.fd, -1);
    assert_non_null(rg_spool_mem(&sp));
    assert_memory_equal(rg_spool_mem(&sp), "hello world", 11);
    assert_int_equal(dir_entries(), 0);

    /* reads at offsets */
    assert_int_equal(rg_spool_read(&sp, buf, sizeof(buf), 0), 11);
    assert_memory_equal(buf, "hello world", 11);
    assert_int_equal(rg_spool_read(&sp, buf, sizeof(buf), 6), 5);
    assert_memory_equal(buf, "world", 5);
    assert_int_equal(rg_spool_read(&sp, buf, 3, 2), 3);
    assert_memory_equal(buf, "llo", 3);
    assert_int_equal(rg_spool_read(&sp, buf, sizeof(buf), 10), 1);
    assert_int_equal(buf[0], 'd');
    assert_int_equal(rg_spool_read(&sp, buf, sizeof(buf), 11), 0);
    assert_int_equal(rg_spool_read(&sp, buf, sizeof(buf), 1000), 0);
    assert_int_equal(rg_spool_read(&sp, buf, 0, 0), 0);
    rg_spool_free(&sp);
}

static void test_memory_up_to_limit(void **state)
{
    struct rg_spool sp;
    char *data = malloc(4096);

    (void)state;
    assert_non_null(data);
    fill(data, 0, 4096);
    rg_spool_init(&sp, spool_dir, 4096);
    /* exactly the limit, in two writes: still memory */
    assert_int_equal(rg_spool_write(&sp, data, 4000), 0);
    assert_int_equal(rg_spool_write(&sp, data + 4000, 96), 0);
    assert_int_equal(sp.fd, -1);
    assert_int_equal(rg_spool_size(&sp), 4096);
    assert_non_null(rg_spool_mem(&sp));
    assert_memory_equal(rg_spool_mem(&sp), data, 4096);
    assert_int_equal(dir_entries(), 0);
    rg_spool_free(&sp);
    free(data);
}

static void test_switch_to_file(void **state)
{
    struct rg_spool sp;
    size_t total = 4096 + 1 + 3000 + 10000 + 7;
    char *data = malloc(total);
    size_t off = 0;
    char buf[32];

    (void)state;
    assert_non_null(data);
    fill(data, 0, total);
    rg_spool_init(&sp, spool_dir, 4096);
    assert_int_equal(rg_spool_write(&sp, data, 4096), 0);
    off = 4096;
    assert_int_equal(sp.fd, -1);
    /* one byte over the limit: file mode */
    assert_int_equal(rg_spool_write(&sp, data + off, 1), 0);
    off += 1;
    assert_true(sp.fd >= 0);
    assert_null(rg_spool_mem(&sp));
    assert_int_equal(rg_spool_size(&sp), off);
    /* the file is already gone from the directory */
    assert_int_equal(dir_entries(), 0);
    /* more: a small write (staged) and one larger than the limit (direct) */
    assert_int_equal(rg_spool_write(&sp, data + off, 3000), 0);
    off += 3000;
    assert_int_equal(rg_spool_write(&sp, data + off, 10000), 0);
    off += 10000;
    assert_int_equal(rg_spool_write(&sp, data + off, 7), 0);
    off += 7;
    assert_int_equal(off, total);
    assert_int_equal(rg_spool_size(&sp), total);
    assert_int_equal(dir_entries(), 0);
    assert_int_equal(rg_spool_finish(&sp), 0);
    assert_int_equal(rg_spool_size(&sp), total);
    assert_int_equal(rg_spool_finish(&sp), 0);     /* twice is harmless */
    assert_int_equal(rg_spool_size(&sp), total);

    /* the whole content, in several chunk sizes, in order */
    check_content(&sp, total, 1);
    check_content(&sp, total, 4095);
    check_content(&sp, total, 65536);
    /* reads at offsets around the switch and at the end */
    assert_int_equal(rg_spool_read(&sp, buf, 10, 4090), 10);
    assert_memory_equal(buf, data + 4090, 10);
    assert_int_equal(rg_spool_read(&sp, buf, 10, (off_t)total - 3), 3);
    assert_memory_equal(buf, data + total - 3, 3);
    assert_int_equal(rg_spool_read(&sp, buf, 10, (off_t)total), 0);
    assert_int_equal(rg_spool_read(&sp, buf, 10, (off_t)total + 100), 0);
    assert_int_equal(dir_entries(), 0);
    rg_spool_free(&sp);
    assert_int_equal(sp.fd, -1);
    assert_int_equal(dir_entries(), 0);
    free(data);
}

static void test_single_big_write(void **state)
{
    struct rg_spool sp;
    size_t total = 50000;
    char *data = malloc(total);

    (void)state;
    assert_non_null(data);
    fill(data, 0, total);
    rg_spool_init(&sp, spool_dir, 4096);
    assert_int_equal(rg_spool_write(&sp, "", 0), 0);
    assert_int_equal(rg_spool_write(&sp, data, total), 0);
    assert_true(sp.fd >= 0);
    assert_int_equal(rg_spool_size(&sp), total);
    assert_int_equal(rg_spool_finish(&sp), 0);
    check_content(&sp, total, 8192);
    rg_spool_free(&sp);
    free(data);
}

static void test_file_mode_permissions(void **state)
{
    struct rg_spool sp;
    char data[5000];
    struct stat st;
    mode_t old = umask(0);      /* even with a permissive umask */

    (void)state;
    fill(data, 0, sizeof(data));
    rg_spool_init(&sp, spool_dir, 4096);
    assert_int_equal(rg_spool_write(&sp, data, sizeof(data)), 0);
    assert_true(sp.fd >= 0);
    assert_int_equal(fstat(sp.fd, &st), 0);
    assert_true(S_ISREG(st.st_mode));
    assert_int_equal(st.st_mode & 07777, 0600);
    assert_int_equal(st.st_nlink, 0);           /* unlinked */
    assert_int_equal(st.st_uid, geteuid());
    /* close-on-exec: a reinjection helper never inherits the message */
    assert_true(fcntl(sp.fd, F_GETFD) & FD_CLOEXEC);
    /* the process umask is restored */
    assert_int_equal(umask(old), 0);
    rg_spool_free(&sp);
}

static void test_reset_and_reuse(void **state)
{
    struct rg_spool sp;
    char data[6000];
    char buf[16];

    (void)state;
    fill(data, 0, sizeof(data));
    rg_spool_init(&sp, spool_dir, 4096);
    assert_int_equal(rg_spool_write(&sp, data, sizeof(data)), 0);
    assert_true(sp.fd >= 0);
    rg_spool_reset(&sp);
    assert_int_equal(sp.fd, -1);
    assert_int_equal(rg_spool_size(&sp), 0);
    assert_int_equal(sp.error, 0);
    assert_int_equal(rg_spool_read(&sp, buf, sizeof(buf), 0), 0);
    /* back in memory mode for the next message */
    assert_int_equal(rg_spool_write(&sp, "abc", 3), 0);
    assert_int_equal(sp.fd, -1);
    assert_int_equal(rg_spool_size(&sp), 3);
    assert_non_null(rg_spool_mem(&sp));
    assert_memory_equal(rg_spool_mem(&sp), "abc", 3);
    assert_int_equal(rg_spool_read(&sp, buf, sizeof(buf), 0), 3);
    assert_memory_equal(buf, "abc", 3);
    rg_spool_reset(&sp);
    assert_int_equal(rg_spool_size(&sp), 0);
    rg_spool_reset(&sp);      /* twice */
    /* and to file mode again */
    assert_int_equal(rg_spool_write(&sp, data, sizeof(data)), 0);
    assert_true(sp.fd >= 0);
    assert_int_equal(rg_spool_finish(&sp), 0);
    check_content(&sp, sizeof(data), 1000);
    rg_spool_free(&sp);
    rg_spool_free(&sp);       /* free after free is harmless */
    assert_int_equal(dir_entries(), 0);
}

static void test_write_error(void **state)
{
    char dir[600];
    struct rg_spool sp;
    char data[5000];
    char buf[16];

    (void)state;
    fill(data, 0, sizeof(data));
    snprintf(dir, sizeof(dir), "%s/does-not-exist", spool_dir);
    rg_spool_init(&sp, dir, 4096);
    /* memory mode does not touch the directory */
    assert_int_equal(rg_spool_write(&sp, data, 4000), 0);
    errno = 0;
    assert_int_equal(rg_spool_write(&sp, data + 4000, 1000), -1);
    assert_int_equal(errno, ENOENT);
    assert_int_equal(sp.error, ENOENT);
    assert_int_equal(sp.fd, -1);
    /* the error sticks: later writes and finish fail too */
    errno = 0;
    assert_int_equal(rg_spool_write(&sp, "x", 1), -1);
    assert_int_equal(errno, ENOENT);
    errno = 0;
    assert_int_equal(rg_spool_finish(&sp), -1);
    assert_int_equal(errno, ENOENT);
    /* reset clears it */
    rg_spool_reset(&sp);
    assert_int_equal(sp.error, 0);
    assert_int_equal(rg_spool_write(&sp, "ok", 2), 0);
    assert_int_equal(rg_spool_finish(&sp), 0);
    assert_int_equal(rg_spool_read(&sp, buf, sizeof(buf), 0), 2);
    assert_memory_equal(buf, "ok", 2);
    rg_spool_free(&sp);

    /* one write larger than the limit on a fresh spool */
    rg_spool_init(&sp, dir, 4096);
    assert_int_equal(rg_spool_write(&sp, data, sizeof(data)), -1);
    assert_int_equal(sp.error, ENOENT);
    rg_spool_free(&sp);

    /* a path too long for the spool file name */
    {
        char *longdir = malloc(5000);
        assert_non_null(longdir);
        memset(longdir, 'd', 4999);
        longdir[0] = '/';
        longdir[4999] = 0;
        rg_spool_init(&sp, longdir, 4096);
        assert_int_equal(rg_spool_write(&sp, data, sizeof(data)), -1);
        assert_int_equal(sp.error, ENAMETOOLONG);
        rg_spool_free(&sp);
        free(longdir);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_init_limit),
        cmocka_unit_test(test_memory_mode),
        cmocka_unit_test(test_memory_up_to_limit),
        cmocka_unit_test(test_switch_to_file),
        cmocka_unit_test(test_single_big_write),
        cmocka_unit_test(test_file_mode_permissions),
        cmocka_unit_test(test_reset_and_reuse),
        cmocka_unit_test(test_write_error),
    };

    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
