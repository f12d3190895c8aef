/*
 * store.c - SQLite storage of the provider; see store.h.
 */
#include "config.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "log.h"
#include "mem.h"
#include "store.h"

/* Schema migrations: element i brings the schema to version i + 1. Never
 * edit a released step; append a new one. */
static const char *const migrations[] = {
    "CREATE TABLE gateways ("
    "  id INTEGER PRIMARY KEY,"
    "  description TEXT NOT NULL,"
    "  created INTEGER NOT NULL,"
    "  removed INTEGER);"
    "CREATE TABLE gateway_ips ("
    "  gateway_id INTEGER NOT NULL REFERENCES gateways(id),"
    "  ip TEXT NOT NULL,"
    "  PRIMARY KEY (gateway_id, ip)) WITHOUT ROWID;"
    "CREATE TABLE certificates ("
    "  fingerprint TEXT PRIMARY KEY,"
    "  gateway_id INTEGER NOT NULL REFERENCES gateways(id),"
    "  serial TEXT NOT NULL,"
    "  subject TEXT NOT NULL,"
    "  not_after INTEGER NOT NULL,"
    "  created INTEGER NOT NULL) WITHOUT ROWID;"
    "CREATE TABLE accounts ("
    "  address TEXT PRIMARY KEY,"
    "  created INTEGER NOT NULL) WITHOUT ROWID;"
    "CREATE TABLE transactions ("
    "  id TEXT PRIMARY KEY,"
    "  gateway_id INTEGER NOT NULL REFERENCES gateways(id),"
    "  sha256 TEXT NOT NULL,"
    "  sender TEXT NOT NULL,"
    "  message_id TEXT NOT NULL,"
    "  kek_sealed BLOB NOT NULL,"
    "  created INTEGER NOT NULL,"
    "  UNIQUE (gateway_id, sha256)) WITHOUT ROWID;"
    "CREATE TABLE transaction_recipients ("
    "  txn_id TEXT NOT NULL REFERENCES transactions(id),"
    "  recipient TEXT NOT NULL,"
    "  PRIMARY KEY (txn_id, recipient)) WITHOUT ROWID;"
    "CREATE TABLE events ("
    "  id INTEGER PRIMARY KEY,"
    "  txn_id TEXT NOT NULL REFERENCES transactions(id),"
    "  type TEXT NOT NULL,"
    "  time INTEGER NOT NULL,"
    "  gateway_id INTEGER NOT NULL,"
    "  ip TEXT NOT NULL,"
    "  recipient TEXT);"
    "CREATE INDEX events_by_txn ON events (txn_id, id);",
};
#define SCHEMA_VERSION ((int)(sizeof(migrations) / sizeof(migrations[0])))

enum stmt_id {
    S_BEGIN, S_COMMIT, S_ROLLBACK, S_SAVEPOINT, S_RELEASE, S_ROLLBACK_TO,
    S_AUTH,
    S_ACCOUNT_EXISTS, S_ACCOUNT_ADD, S_ACCOUNT_REMOVE, S_ACCOUNT_LIST,
    S_GW_ADD, S_GW_IP_ADD, S_GW_GET, S_GW_REMOVE, S_GW_LIST, S_CERT_ADD,
    S_TXN_FIND, S_TXN_RCPTS, S_TXN_ADD, S_TXN_RCPT_ADD, S_EVENT_ADD,
    S_TXN_GET, S_TXN_IS_RCPT, S_EVENTS,
    S_COUNT
};

static const char *const stmt_sql[S_COUNT] = {
    [S_BEGIN] = "BEGIN IMMEDIATE",
    [S_COMMIT] = "COMMIT",
    [S_ROLLBACK] = "ROLLBACK",
    [S_SAVEPOINT] = "SAVEPOINT op",
    [S_RELEASE] = "RELEASE op",
    [S_ROLLBACK_TO] = "ROLLBACK TO op",
    [S_AUTH] = "SELECT c.gateway_id, g.removed IS NOT NULL,"
               " EXISTS (SELECT 1 FROM gateway_ips i WHERE i.gateway_id = c.gateway_id AND i.ip = ?2)"
               " FROM certificates c JOIN gateways g ON g.id = c.gateway_id WHERE c.fingerprint = ?1",
    [S_ACCOUNT_EXISTS] = "SELECT 1 FROM accounts WHERE address = ?1",
    [S_ACCOUNT_ADD] = "INSERT OR IGNORE INTO accounts (address, created) VALUES (?1, ?2)",
    [S_ACCOUNT_REMOVE] = "DELETE FROM accounts WHERE address = ?1",
    [S_ACCOUNT_LIST] = "SELECT address FROM accounts ORDER BY address",
    [S_GW_ADD] = "INSERT INTO gateways (description, created) VALUES (?1, ?2)",
    [S_GW_IP_ADD] = "INSERT OR IGNORE INTO gateway_ips (gateway_id, ip) VALUES (?1, ?2)",
    [S_GW_GET] = "SELECT removed IS NOT NULL FROM gateways WHERE id = ?1",
    [S_GW_REMOVE] = "UPDATE gateways SET removed = ?2 WHERE id = ?1 AND removed IS NULL",
    [S_GW_LIST] = "SELECT g.id, g.description, g.created, g.removed,"
                  " (SELECT group_concat(ip, ' ') FROM gateway_ips i WHERE i.gateway_id = g.id),"
                  " (SELECT count(*) FROM certificates c WHERE c.gateway_id = g.id)"
                  " FROM gateways g ORDER BY g.id",
    [S_CERT_ADD] = "INSERT INTO certificates (fingerprint, gateway_id, serial, subject, not_after, created)"
                   " VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    [S_TXN_FIND] = "SELECT id, sender, message_id, kek_sealed, created FROM transactions"
                   " WHERE gateway_id = ?1 AND sha256 = ?2",
    [S_TXN_RCPTS] = "SELECT recipient FROM transaction_recipients WHERE txn_id = ?1 ORDER BY recipient",
    [S_TXN_ADD] = "INSERT INTO transactions (id, gateway_id, sha256, sender, message_id, kek_sealed, created)"
                  " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    [S_TXN_RCPT_ADD] = "INSERT INTO transaction_recipients (txn_id, recipient) VALUES (?1, ?2)",
    [S_EVENT_ADD] = "INSERT INTO events (txn_id, type, time, gateway_id, ip, recipient)"
                    " VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    [S_TXN_GET] = "SELECT gateway_id, sender, message_id, sha256, kek_sealed, created FROM transactions"
                  " WHERE id = ?1",
    [S_TXN_IS_RCPT] = "SELECT 1 FROM transaction_recipients WHERE txn_id = ?1 AND recipient = ?2",
    [S_EVENTS] = "SELECT type, time, gateway_id, ip, recipient FROM events WHERE txn_id = ?1"
                 " ORDER BY id LIMIT ?2",
};

/*
 * Writers of this process take this lock around their IMMEDIATE
 * transaction: handing over a mutex is immediate, whereas SQLite's busy
 * handler sleeps for milliseconds when two connections collide. Other
 * processes (the admin commands) still meet the busy timeout.
 */
static pthread_mutex_t write_lock = PTHREAD_MUTEX_INITIALIZER;

/* PRAGMA synchronous for connections opened from now on: FULL (default)
 * syncs the WAL on every commit, so a key handed out is on disk; NORMAL
 * syncs at checkpoints only and may lose the last commits on power loss. */
static int sync_full = 1;

void rgp_db_set_synchronous(int full)
{
    sync_full = full;
}

struct rgp_db {
    sqlite3 *h;
    char *path;
    int in_txn;
    sqlite3_stmt *st[S_COUNT];
    uint8_t mk[RGP_MASTER_KEY_LEN];
    int have_mk;
};

long long rgp_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A new transaction id: the creation time in milliseconds (48 bits,
 * big-endian), then 80 random bits. The time prefix makes every index keyed
 * by the id (transactions, their recipients, events_by_txn) grow at its end,
 * so the transactions of one group commit share their B-tree leaf pages:
 * with wholly random ids each transaction dirtied a leaf of its own in each
 * of them, and every dirty page is a 4 KiB frame written to the WAL and
 * synced (doc/performance.md, "Key provider"). 80 random bits per
 * millisecond still make a collision negligible, and the id grants nothing
 * by itself: a key fetch needs an authenticated gateway and a recipient of
 * the transaction with an account. */
void rgp_txn_id(long long ms, uint8_t id[RG_PJ_ID_LEN])
{
    unsigned long long t = ms < 0 ? 0 : (unsigned long long)ms;

    for (int i = 5; i >= 0; i--) {
        id[i] = (uint8_t)(t & 0xff);
        t >>= 8;
    }
    rgp_random(id + 6, RG_PJ_ID_LEN - 6);
}

void rgp_time_format(long long ms, char *out)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    char base[24];

    gmtime_r(&t, &tm);
    strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out, 32, "%s.%03dZ", base, (int)(ms % 1000));
}

static int db_fail(struct rgp_db *db, const char *what)
{
    int code = sqlite3_extended_errcode(db->h);
    if ((code & 0xff) == SQLITE_BUSY || (code & 0xff) == SQLITE_LOCKED) {
        rg_warn("database busy: %s", what);
        return RGP_DB_BUSY;
    }
    rg_error("database error in %s: %s", what, sqlite3_errmsg(db->h));
    return RGP_DB_ERROR;
}

static sqlite3_stmt *stmt(struct rgp_db *db, enum stmt_id i)
{
    if (db->st[i] == NULL
        && sqlite3_prepare_v3(db->h, stmt_sql[i], -1, SQLITE_PREPARE_PERSISTENT, &db->st[i], NULL) != SQLITE_OK)
        rg_panic("cannot prepare \"%s\": %s", stmt_sql[i], sqlite3_errmsg(db->h));
    return db->st[i];
}

static void done(sqlite3_stmt *s)
{
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
}

static void bind_text(sqlite3_stmt *s, int i, const char *t)
{
    sqlite3_bind_text(s, i, t, -1, SQLITE_TRANSIENT);
}

/* Run a statement without results. SQLITE_DONE -> 0. */
static int exec_stmt(struct rgp_db *db, enum stmt_id i)
{
    sqlite3_stmt *s = stmt(db, i);
    int rc = sqlite3_step(s);
    done(s);
    if (rc != SQLITE_DONE)
        return db_fail(db, stmt_sql[i]);
    return RGP_DB_OK;
}

/* A plain write transaction on this connection, for the administration
 * commands. The server writes only through the group commit below. */
static int begin(struct rgp_db *db)
{
    int rc;

    pthread_mutex_lock(&write_lock);
    rc = exec_stmt(db, S_BEGIN);
    if (rc != RGP_DB_OK)
        pthread_mutex_unlock(&write_lock);
    else
        db->in_txn = 1;
    return rc;
}

static int commit(struct rgp_db *db)
{
    int rc;

    if (!db->in_txn)
        rg_panic("commit outside a transaction");
    rc = exec_stmt(db, S_COMMIT);
    if (rc != RGP_DB_OK && !sqlite3_get_autocommit(db->h))
        exec_stmt(db, S_ROLLBACK);
    db->in_txn = 0;
    pthread_mutex_unlock(&write_lock);
    return rc;
}

/* Safe to call when the transaction has ended already. */
static void rollback(struct rgp_db *db)
{
    if (!db->in_txn)
        return;
    if (!sqlite3_get_autocommit(db->h))
        exec_stmt(db, S_ROLLBACK);
    db->in_txn = 0;
    pthread_mutex_unlock(&write_lock);
}

static int migrate(struct rgp_db *db, char *err, size_t errlen)
{
    sqlite3_stmt *s;
    int version = 0;
    char *msg = NULL;

    if (sqlite3_exec(db->h, "BEGIN IMMEDIATE;"
                     "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL);",
                     NULL, NULL, &msg) != SQLITE_OK)
        goto fail;
    if (sqlite3_prepare_v2(db->h, "SELECT coalesce(max(version), 0) FROM schema_version", -1, &s, NULL) != SQLITE_OK)
        goto fail;
    if (sqlite3_step(s) == SQLITE_ROW)
        version = sqlite3_column_int(s, 0);
    sqlite3_finalize(s);
    if (version > SCHEMA_VERSION) {
        snprintf(err, errlen, "database schema version %d is newer than this program's (%d)",
                 version, SCHEMA_VERSION);
        sqlite3_exec(db->h, "ROLLBACK", NULL, NULL, NULL);
        return -1;
    }
    for (; version < SCHEMA_VERSION; version++) {
        char *ins;
        if (sqlite3_exec(db->h, migrations[version], NULL, NULL, &msg) != SQLITE_OK)
            goto fail;
        ins = rg_sprintf("INSERT INTO schema_version (version) VALUES (%d)", version + 1);
        int rc = sqlite3_exec(db->h, ins, NULL, NULL, &msg);
        rg_free(ins);
        if (rc != SQLITE_OK)
            goto fail;
    }
    if (sqlite3_exec(db->h, "COMMIT", NULL, NULL, &msg) != SQLITE_OK)
        goto fail;
    return 0;
fail:
    snprintf(err, errlen, "database migration to version %d failed: %s", version + 1,
             msg ? msg : sqlite3_errmsg(db->h));
    sqlite3_free(msg);
    sqlite3_exec(db->h, "ROLLBACK", NULL, NULL, NULL);
    return -1;
}

struct rgp_db *rgp_db_open(const char *path, int create, const uint8_t *mk, char *err, size_t errlen)
{
    struct rgp_db *db = rg_calloc(1, sizeof(*db));
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX;

    db->path = rg_strdup(path);

    if (create) {
        /* create the file ourselves so that it is 0600 from the start */
        int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
        if (fd >= 0)
            close(fd);
        flags |= SQLITE_OPEN_CREATE;
    }
    if (sqlite3_open_v2(path, &db->h, flags, NULL) != SQLITE_OK) {
        snprintf(err, errlen, "%s: %s", path, db->h ? sqlite3_errmsg(db->h) : "cannot open");
        return rgp_db_close(db);
    }
    sqlite3_busy_timeout(db->h, 5000);
    sqlite3_extended_result_codes(db->h, 1);
    /*
     * No memory-mapped I/O (mmap_size = 0): every server thread has its
     * own read connection, and in WAL mode a read transaction that sees
     * another connection's commit drops its whole mapping. With the
     * group-commit writer committing between almost any two requests,
     * that was an munmap (a TLB shootdown across the threads' CPUs), an
     * mmap and fresh page faults per request; plain reads from the page
     * cache are cheaper here (bench/provider, doc/performance.md).
     */
    if (sqlite3_exec(db->h, sync_full
                     ? "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;"
                       " PRAGMA foreign_keys = ON; PRAGMA mmap_size = 0;"
                     : "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;"
                       " PRAGMA foreign_keys = ON; PRAGMA mmap_size = 0;",
                     NULL, NULL, NULL) != SQLITE_OK) {
        snprintf(err, errlen, "%s: %s", path, sqlite3_errmsg(db->h));
        return rgp_db_close(db);
    }
    if (migrate(db, err, errlen) < 0)
        return rgp_db_close(db);
    if (mk) {
        memcpy(db->mk, mk, RGP_MASTER_KEY_LEN);
        db->have_mk = 1;
    }
    return db;
}

struct rgp_db *rgp_db_close(struct rgp_db *db)
{
    if (db) {
        for (int i = 0; i < S_COUNT; i++)
            sqlite3_finalize(db->st[i]);
        sqlite3_close(db->h);
        rg_free(db->path);
        memset(db->mk, 0, sizeof(db->mk));
        rg_free(db);
    }
    return NULL;
}

int rgp_db_schema_version(struct rgp_db *db)
{
    sqlite3_stmt *s;
    int v = -1;
    if (sqlite3_prepare_v2(db->h, "SELECT max(version) FROM schema_version", -1, &s, NULL) == SQLITE_OK) {
        if (sqlite3_step(s) == SQLITE_ROW)
            v = sqlite3_column_int(s, 0);
        sqlite3_finalize(s);
    }
    return v;
}

/* ---- authentication -------------------------------------------------- */

int rgp_db_auth(struct rgp_db *db, const char *fingerprint, const char *ip, struct rgp_auth *out)
{
    sqlite3_stmt *s = stmt(db, S_AUTH);
    int rc;

    bind_text(s, 1, fingerprint);
    bind_text(s, 2, ip);
    rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        out->gateway = sqlite3_column_int64(s, 0);
        out->removed = sqlite3_column_int(s, 1);
        out->ip_allowed = sqlite3_column_int(s, 2);
        rc = RGP_DB_OK;
    } else if (rc == SQLITE_DONE) {
        rc = RGP_DB_NOTFOUND;
    } else {
        rc = db_fail(db, "auth");
    }
    done(s);
    return rc;
}

/* ---- gateways -------------------------------------------------------- */

int rgp_db_gateway_add(struct rgp_db *db, const char *description, const char *const *ips,
                       size_t nips, long long *id)
{
    sqlite3_stmt *s;
    int rc;

    if ((rc = begin(db)) != RGP_DB_OK)
        return rc;
    s = stmt(db, S_GW_ADD);
    bind_text(s, 1, description);
    sqlite3_bind_int64(s, 2, rgp_now_ms());
    rc = sqlite3_step(s);
    done(s);
    if (rc != SQLITE_DONE)
        goto fail;
    *id = sqlite3_last_insert_rowid(db->h);
    for (size_t i = 0; i < nips; i++) {
        s = stmt(db, S_GW_IP_ADD);
        sqlite3_bind_int64(s, 1, *id);
        bind_text(s, 2, ips[i]);
        rc = sqlite3_step(s);
        done(s);
        if (rc != SQLITE_DONE)
            goto fail;
    }
    return commit(db);
fail:
    rc = db_fail(db, "gateway add");
    rollback(db);
    return rc;
}

int rgp_db_gateway_check(struct rgp_db *db, long long id)
{
    sqlite3_stmt *s = stmt(db, S_GW_GET);
    int rc;

    sqlite3_bind_int64(s, 1, id);
    rc = sqlite3_step(s);
    if (rc == SQLITE_ROW)
        rc = sqlite3_column_int(s, 0) ? RGP_DB_EXISTS : RGP_DB_OK;
    else if (rc == SQLITE_DONE)
        rc = RGP_DB_NOTFOUND;
    else
        rc = db_fail(db, "gateway get");
    done(s);
    return rc;
}

int rgp_db_gateway_remove(struct rgp_db *db, long long id)
{
    sqlite3_stmt *s;
    int rc = rgp_db_gateway_check(db, id);

    if (rc != RGP_DB_OK)
        return rc;
    s = stmt(db, S_GW_REMOVE);
    sqlite3_bind_int64(s, 1, id);
    sqlite3_bind_int64(s, 2, rgp_now_ms());
    rc = sqlite3_step(s);
    done(s);
    if (rc != SQLITE_DONE)
        return db_fail(db, "gateway remove");
    return sqlite3_changes(db->h) ? RGP_DB_OK : RGP_DB_EXISTS;
}

int rgp_db_gateway_list(struct rgp_db *db, void (*fn)(void *arg, long long id, const char *desc,
                                                      const char *ips, long long created,
                                                      long long removed, int ncerts), void *arg)
{
    sqlite3_stmt *s = stmt(db, S_GW_LIST);
    int rc;

    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        const char *ips = (const char *)sqlite3_column_text(s, 4);
        fn(arg, sqlite3_column_int64(s, 0), (const char *)sqlite3_column_text(s, 1),
           ips ? ips : "", sqlite3_column_int64(s, 2),
           sqlite3_column_type(s, 3) == SQLITE_NULL ? 0 : sqlite3_column_int64(s, 3),
           sqlite3_column_int(s, 5));
    }
    done(s);
    return rc == SQLITE_DONE ? RGP_DB_OK : db_fail(db, "gateway list");
}

int rgp_db_cert_add(struct rgp_db *db, long long gateway, const struct rgp_signed *cert)
{
    sqlite3_stmt *s = stmt(db, S_CERT_ADD);
    int rc;

    bind_text(s, 1, cert->fingerprint);
    sqlite3_bind_int64(s, 2, gateway);
    bind_text(s, 3, cert->serial);
    bind_text(s, 4, cert->subject);
    sqlite3_bind_int64(s, 5, cert->not_after);
    sqlite3_bind_int64(s, 6, rgp_now_ms());
    rc = sqlite3_step(s);
    done(s);
    return rc == SQLITE_DONE ? RGP_DB_OK : db_fail(db, "certificate add");
}

/* ---- accounts -------------------------------------------------------- */

int rgp_db_account_exists(struct rgp_db *db, const char *addr, int *exists)
{
    sqlite3_stmt *s = stmt(db, S_ACCOUNT_EXISTS);
    int rc;

    bind_text(s, 1, addr);
    rc = sqlite3_step(s);
    done(s);
    if (rc == SQLITE_ROW || rc == SQLITE_DONE) {
        *exists = rc == SQLITE_ROW;
        return RGP_DB_OK;
    }
    return db_fail(db, "account lookup");
}

int rgp_db_account_add(struct rgp_db *db, const char *addr)
{
    sqlite3_stmt *s = stmt(db, S_ACCOUNT_ADD);
    int rc;

    bind_text(s, 1, addr);
    sqlite3_bind_int64(s, 2, rgp_now_ms());
    rc = sqlite3_step(s);
    done(s);
    if (rc != SQLITE_DONE)
        return db_fail(db, "account add");
    return sqlite3_changes(db->h) ? RGP_DB_OK : RGP_DB_EXISTS;
}

int rgp_db_account_remove(struct rgp_db *db, const char *addr)
{
    sqlite3_stmt *s = stmt(db, S_ACCOUNT_REMOVE);
    int rc;

    bind_text(s, 1, addr);
    rc = sqlite3_step(s);
    done(s);
    if (rc != SQLITE_DONE)
        return db_fail(db, "account remove");
    return sqlite3_changes(db->h) ? RGP_DB_OK : RGP_DB_NOTFOUND;
}

int rgp_db_account_list(struct rgp_db *db, void (*fn)(void *arg, const char *addr), void *arg)
{
    sqlite3_stmt *s = stmt(db, S_ACCOUNT_LIST);
    int rc;

    while ((rc = sqlite3_step(s)) == SQLITE_ROW)
        fn(arg, (const char *)sqlite3_column_text(s, 0));
    done(s);
    return rc == SQLITE_DONE ? RGP_DB_OK : db_fail(db, "account list");
}

/* ---- transactions ---------------------------------------------------- */

static int add_event(struct rgp_db *db, const char *idhex, const char *type, long long gateway,
                     const char *ip, const char *recipient, long long when)
{
    sqlite3_stmt *s = stmt(db, S_EVENT_ADD);
    int rc;

    bind_text(s, 1, idhex);
    bind_text(s, 2, type);
    sqlite3_bind_int64(s, 3, when);
    sqlite3_bind_int64(s, 4, gateway);
    bind_text(s, 5, ip);
    if (recipient)
        bind_text(s, 6, recipient);
    rc = sqlite3_step(s);
    done(s);
    return rc == SQLITE_DONE ? RGP_DB_OK : db_fail(db, "event add");
}

/* Same recipients (both sorted) as stored for idhex? 1 yes, 0 no, <0 error */
static int same_recipients(struct rgp_db *db, const char *idhex, const struct rg_pj_create *req)
{
    sqlite3_stmt *s = stmt(db, S_TXN_RCPTS);
    size_t i = 0;
    int rc, same = 1;

    bind_text(s, 1, idhex);
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        if (i >= req->nrecipients || strcmp((const char *)sqlite3_column_text(s, 0), req->recipients[i]) != 0)
            same = 0;
        i++;
    }
    done(s);
    if (rc != SQLITE_DONE)
        return db_fail(db, "recipients lookup");
    return same && i == req->nrecipients;
}

/* ---- group commit ----------------------------------------------------
 *
 * Transactions and key retrievals of all server threads are written through
 * one shared connection, in groups: a writer holds write_lock, works inside
 * a SAVEPOINT of the open group transaction, and then either commits the
 * group (when no other writer is queued for the lock) or leaves it open and
 * sleeps until the writer after it commits. Under load one fsync covers
 * several requests; nobody gets an answer before its data is committed.
 */

struct waiter {
    struct waiter *next;
    int rc;
    int done;
};

static pthread_cond_t group_cond = PTHREAD_COND_INITIALIZER;
static struct rgp_db *group_db;         /* the shared write connection */
static struct waiter *group_waiters;    /* members waiting for the commit */
static int group_open;                  /* BEGIN done, COMMIT not yet */
static atomic_int group_queued;         /* writers waiting for write_lock */

static void group_finish(int rc)
{
    for (struct waiter *w = group_waiters; w; w = w->next) {
        w->rc = rc;
        w->done = 1;
    }
    group_waiters = NULL;
    group_open = 0;
    pthread_cond_broadcast(&group_cond);
}

static int group_leave(int rc);

/* Enter the group: write_lock held, transaction and savepoint open. */
static int group_begin(struct rgp_db *db, struct rgp_db **wp)
{
    char err[512];
    int rc;

    atomic_fetch_add(&group_queued, 1);
    pthread_mutex_lock(&write_lock);
    atomic_fetch_sub(&group_queued, 1);
    if (group_db == NULL) {
        group_db = rgp_db_open(db->path, 0, db->have_mk ? db->mk : NULL, err, sizeof(err));
        if (group_db == NULL) {
            rg_error("%s", err);
            pthread_mutex_unlock(&write_lock);
            return RGP_DB_ERROR;
        }
    }
    if (!group_open) {
        if ((rc = exec_stmt(group_db, S_BEGIN)) != RGP_DB_OK) {
            pthread_mutex_unlock(&write_lock);
            return rc;
        }
        group_open = 1;
    }
    if ((rc = exec_stmt(group_db, S_SAVEPOINT)) != RGP_DB_OK)
        return group_leave(rc);     /* others may wait for this group */
    *wp = group_db;
    return RGP_DB_OK;
}

/* Leave the group with this operation's result rc (< 0: undo its part). */
static int group_end(int rc)
{
    struct rgp_db *w = group_db;
    int crc;

    if (rc < 0) {
        exec_stmt(w, S_ROLLBACK_TO);
        exec_stmt(w, S_RELEASE);
    } else if ((crc = exec_stmt(w, S_RELEASE)) != RGP_DB_OK) {
        exec_stmt(w, S_ROLLBACK_TO);
        exec_stmt(w, S_RELEASE);
        rc = crc;
    }
    return group_leave(rc);
}

/* Commit the group, or wait for the writer queued after us to commit it;
 * releases write_lock. */
static int group_leave(int rc)
{
    struct waiter me = { NULL, 0, 0 };
    struct rgp_db *w = group_db;
    int crc;

    if (sqlite3_get_autocommit(w->h)) {
        /* SQLite ended the whole transaction (I/O error, disk full) */
        group_finish(RGP_DB_ERROR);
        pthread_mutex_unlock(&write_lock);
        return rc < 0 ? rc : RGP_DB_ERROR;
    }
    if (atomic_load(&group_queued) > 0) {
        /* the next writer commits for both of us */
        me.next = group_waiters;
        group_waiters = &me;
        while (!me.done)
            pthread_cond_wait(&group_cond, &write_lock);
        pthread_mutex_unlock(&write_lock);
        return me.rc != RGP_DB_OK ? me.rc : rc;
    }
    crc = exec_stmt(w, S_COMMIT);
    if (crc != RGP_DB_OK && !sqlite3_get_autocommit(w->h))
        exec_stmt(w, S_ROLLBACK);
    group_finish(crc);
    pthread_mutex_unlock(&write_lock);
    return crc != RGP_DB_OK ? crc : rc;
}

void rgp_db_shutdown(void)
{
    pthread_mutex_lock(&write_lock);
    group_db = rgp_db_close(group_db);
    pthread_mutex_unlock(&write_lock);
}

static int txn_create_in(struct rgp_db *db, long long gateway, const char *ip,
                         const struct rg_pj_create *req, uint8_t id[RG_PJ_ID_LEN],
                         uint8_t kek[RG_PJ_KEK_LEN], long long *created)
{
    char idhex[2 * RG_PJ_ID_LEN + 1], sha[65];
    uint8_t sealed[RGP_SEALED_LEN];
    sqlite3_stmt *s;
    int rc, exists;

    rg_pj_hex_encode(req->sha256, sizeof(req->sha256), sha);

    /* idempotency: (gateway, digest) */
    s = stmt(db, S_TXN_FIND);
    sqlite3_bind_int64(s, 1, gateway);
    bind_text(s, 2, sha);
    rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        int same = strcmp((const char *)sqlite3_column_text(s, 1), req->sender) == 0
            && strcmp((const char *)sqlite3_column_text(s, 2), req->message_id) == 0
            && sqlite3_column_bytes(s, 3) == RGP_SEALED_LEN;
        snprintf(idhex, sizeof(idhex), "%s", (const char *)sqlite3_column_text(s, 0));
        if (same)
            memcpy(sealed, sqlite3_column_blob(s, 3), RGP_SEALED_LEN);
        *created = sqlite3_column_int64(s, 4);
        done(s);
        if (!same)
            return RGP_DB_CONFLICT;
        if ((rc = same_recipients(db, idhex, req)) < 0)
            return rc;
        if (!rc)
            return RGP_DB_CONFLICT;
        if (rg_pj_hex_decode(idhex, strlen(idhex), id, RG_PJ_ID_LEN) < 0
            || rgp_kek_open(db->mk, id, RG_PJ_ID_LEN, sealed, kek) < 0) {
            rg_error("transaction %s: the stored key does not open with the master key", idhex);
            return RGP_DB_ERROR;
        }
        return RGP_DB_REPLAYED;
    }
    done(s);
    if (rc != SQLITE_DONE)
        return db_fail(db, "transaction lookup");

    if ((rc = rgp_db_account_exists(db, req->sender, &exists)) != RGP_DB_OK)
        return rc;
    if (!exists)
        return RGP_DB_SENDER_NO_ACCOUNT;

    *created = rgp_now_ms();
    rgp_txn_id(*created, id);
    rgp_random(kek, RG_PJ_KEK_LEN);
    rg_pj_hex_encode(id, RG_PJ_ID_LEN, idhex);
    if (rgp_kek_seal(db->mk, id, RG_PJ_ID_LEN, kek, sealed) < 0) {
        rg_error("cannot seal a key");
        return RGP_DB_ERROR;
    }
    s = stmt(db, S_TXN_ADD);
    bind_text(s, 1, idhex);
    sqlite3_bind_int64(s, 2, gateway);
    bind_text(s, 3, sha);
    bind_text(s, 4, req->sender);
    bind_text(s, 5, req->message_id);
    sqlite3_bind_blob(s, 6, sealed, sizeof(sealed), SQLITE_TRANSIENT);
    sqlite3_bind_int64(s, 7, *created);
    rc = sqlite3_step(s);
    done(s);
    if (rc != SQLITE_DONE)
        return db_fail(db, "transaction insert");
    for (size_t i = 0; i < req->nrecipients; i++) {
        s = stmt(db, S_TXN_RCPT_ADD);
        bind_text(s, 1, idhex);
        bind_text(s, 2, req->recipients[i]);
        rc = sqlite3_step(s);
        done(s);
        if (rc != SQLITE_DONE)
            return db_fail(db, "recipient insert");
    }
    return add_event(db, idhex, "created", gateway, ip, NULL, *created);
}

int rgp_db_txn_create(struct rgp_db *db, long long gateway, const char *ip,
                      const struct rg_pj_create *req, uint8_t id[RG_PJ_ID_LEN],
                      uint8_t kek[RG_PJ_KEK_LEN], long long *created)
{
    struct rgp_db *w;
    int rc;

    if (!db->have_mk)
        rg_panic("rgp_db_txn_create without a master key");
    if ((rc = group_begin(db, &w)) != RGP_DB_OK)
        return rc;
    rc = group_end(txn_create_in(w, gateway, ip, req, id, kek, created));
    if (rc < 0)
        memset(kek, 0, RG_PJ_KEK_LEN);
    return rc;
}

static int txn_key_in(struct rgp_db *db, long long gateway, const char *ip,
                      const uint8_t id[RG_PJ_ID_LEN], const char *recipient, uint8_t kek[RG_PJ_KEK_LEN])
{
    char idhex[2 * RG_PJ_ID_LEN + 1];
    uint8_t sealed[RGP_SEALED_LEN];
    sqlite3_stmt *s;
    int rc, exists;

    rg_pj_hex_encode(id, RG_PJ_ID_LEN, idhex);
    s = stmt(db, S_TXN_GET);
    bind_text(s, 1, idhex);
    rc = sqlite3_step(s);
    if (rc == SQLITE_ROW && sqlite3_column_bytes(s, 4) == RGP_SEALED_LEN)
        memcpy(sealed, sqlite3_column_blob(s, 4), RGP_SEALED_LEN);
    done(s);
    if (rc == SQLITE_DONE)
        return RGP_DB_NOTFOUND;
    if (rc != SQLITE_ROW)
        return db_fail(db, "transaction get");
    s = stmt(db, S_TXN_IS_RCPT);
    bind_text(s, 1, idhex);
    bind_text(s, 2, recipient);
    rc = sqlite3_step(s);
    done(s);
    if (rc == SQLITE_DONE)
        return RGP_DB_NOT_RECIPIENT;
    if (rc != SQLITE_ROW)
        return db_fail(db, "recipient lookup");
    if ((rc = rgp_db_account_exists(db, recipient, &exists)) != RGP_DB_OK)
        return rc;
    if (!exists)
        return RGP_DB_NO_ACCOUNT;
    if (rgp_kek_open(db->mk, id, RG_PJ_ID_LEN, sealed, kek) < 0) {
        rg_error("transaction %s: the stored key does not open with the master key", idhex);
        return RGP_DB_ERROR;
    }
    return add_event(db, idhex, "key_retrieved", gateway, ip, recipient, rgp_now_ms());
}

int rgp_db_txn_key(struct rgp_db *db, long long gateway, const char *ip,
                   const uint8_t id[RG_PJ_ID_LEN], const char *recipient,
                   uint8_t kek[RG_PJ_KEK_LEN])
{
    struct rgp_db *w;
    int rc;

    if (!db->have_mk)
        rg_panic("rgp_db_txn_key without a master key");
    if ((rc = group_begin(db, &w)) != RGP_DB_OK)
        return rc;
    rc = group_end(txn_key_in(w, gateway, ip, id, recipient, kek));
    if (rc != RGP_DB_OK)
        memset(kek, 0, RG_PJ_KEK_LEN);
    return rc;
}

int rgp_db_txn_info(struct rgp_db *db, const uint8_t id[RG_PJ_ID_LEN], struct rgp_txn_info *out)
{
    sqlite3_stmt *s;
    int rc;
    size_t cap;

    memset(out, 0, sizeof(*out));
    rg_pj_hex_encode(id, RG_PJ_ID_LEN, out->id);
    s = stmt(db, S_TXN_GET);
    bind_text(s, 1, out->id);
    rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        out->gateway = sqlite3_column_int64(s, 0);
        out->sender = rg_strdup((const char *)sqlite3_column_text(s, 1));
        out->message_id = rg_strdup((const char *)sqlite3_column_text(s, 2));
        snprintf(out->sha256, sizeof(out->sha256), "%s", (const char *)sqlite3_column_text(s, 3));
        out->created = sqlite3_column_int64(s, 5);
    }
    done(s);
    if (rc == SQLITE_DONE)
        return RGP_DB_NOTFOUND;
    if (rc != SQLITE_ROW)
        return db_fail(db, "transaction get");

    s = stmt(db, S_TXN_RCPTS);
    bind_text(s, 1, out->id);
    cap = 0;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        if (out->nrecipients == cap) {
            cap = cap ? 2 * cap : 8;
            out->recipients = rg_realloc(out->recipients, cap * sizeof(char *));
        }
        out->recipients[out->nrecipients++] = rg_strdup((const char *)sqlite3_column_text(s, 0));
    }
    done(s);
    if (rc != SQLITE_DONE)
        goto fail;

    s = stmt(db, S_EVENTS);
    bind_text(s, 1, out->id);
    sqlite3_bind_int(s, 2, RG_PJ_MAX_EVENTS + 1);
    cap = 0;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        struct rgp_event *e;
        if (out->nevents == RG_PJ_MAX_EVENTS) {
            out->truncated = 1;
            continue;
        }
        if (out->nevents == cap) {
            cap = cap ? 2 * cap : 8;
            out->events = rg_realloc(out->events, cap * sizeof(*out->events));
        }
        e = &out->events[out->nevents++];
        memset(e, 0, sizeof(*e));
        snprintf(e->type, sizeof(e->type), "%s", (const char *)sqlite3_column_text(s, 0));
        e->time = sqlite3_column_int64(s, 1);
        e->gateway = sqlite3_column_int64(s, 2);
        snprintf(e->ip, sizeof(e->ip), "%s", (const char *)sqlite3_column_text(s, 3));
        if (sqlite3_column_type(s, 4) != SQLITE_NULL)
            e->recipient = rg_strdup((const char *)sqlite3_column_text(s, 4));
    }
    done(s);
    if (rc != SQLITE_DONE)
        goto fail;
    return RGP_DB_OK;
fail:
    rc = db_fail(db, "transaction info");
    rgp_txn_info_free(out);
    return rc;
}

void rgp_txn_info_free(struct rgp_txn_info *t)
{
    for (size_t i = 0; i < t->nrecipients; i++)
        rg_free(t->recipients[i]);
    for (size_t i = 0; i < t->nevents; i++)
        rg_free(t->events[i].recipient);
    rg_free(t->recipients);
    rg_free(t->events);
    rg_free(t->sender);
    rg_free(t->message_id);
    memset(t, 0, sizeof(*t));
}
