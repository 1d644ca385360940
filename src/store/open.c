/* store/open.c — the store's file and the connection to it: opening
 * (creating the file, the connection's settings, the migrations up to the
 * current schema: schema.c), and opening read-only for a look.
 *
 * FILE AND CONNECTION
 *   DIR/store.db, created mode 0600 (SQLite gives its -wal and -shm files the
 *   same mode).  Every connection sets journal_mode=WAL, synchronous=FULL
 *   (a commit that returns has been fsynced: the product's durability
 *   promise rests on it), foreign_keys=ON, trusted_schema=OFF, the
 *   defensive flag, and a 10 s busy timeout (busy_wait: short retries) so
 *   the CLI and the daemon can both write.  Connections are opened
 *   NOMUTEX: each is used by one thread at a time.  Writers take the lock
 *   at once (BEGIN IMMEDIATE), so a transaction never fails half-way
 *   because another writer got in first.
 *   The file carries application_id 0x686f746c ("hotl"); its schema and
 *   migrations: schema.c. */
#include "store/store_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "util/err.h"
#include "util/fsutil.h"
#include "util/mem.h"

#define BUSY_TIMEOUT_MS 10000

static int64_t mono_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* SQLite's own busy handler (sqlite3_busy_timeout) sleeps 1 ms, then 2,
 * 5, 10 ... while another connection holds the lock; but the lock is held
 * for one commit, which takes about one fsync (a fraction of a
 * millisecond), and the CLI and the daemon meet at it on every message.
 * This one retries after 50 us at first, backing off to 2 ms, and gives
 * up after BUSY_TIMEOUT_MS as before. */
static int busy_wait(void *arg, int count)
{
	hl_store *st = arg;
	int64_t now = mono_us();
	if (count == 0)
		st->busy_since_us = now;
	if (now - st->busy_since_us >= (int64_t)BUSY_TIMEOUT_MS * 1000)
		return 0;
	long us = count < 40 ? 50 : count < 100 ? 500 : 2000;
	struct timespec ts = { 0, us * 1000 };
	nanosleep(&ts, NULL);
	return 1;
}

/* Creates the database file with mode 0600 when it is missing (SQLite
 * would use 0644), making its directory entry durable. */
static int create_file(const char *path)
{
	int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd >= 0) {
		close(fd);
		int ret = hl_fsync_parent(path);
		if (ret < 0)
			return st_open_fail(ret, "%s: fsync of its directory: %s", path,
					    strerror(-ret));
		return 0;
	}
	if (errno != EEXIST)
		return st_open_fail(-errno, "%s: %s", path, strerror(errno));
	struct stat sb;
	if (lstat(path, &sb) < 0)
		return st_open_fail(-errno, "%s: %s", path, strerror(errno));
	if (!S_ISREG(sb.st_mode))
		return st_open_fail(HL_EINVAL, "%s: not a regular file", path);
	return 0;
}

/* The connection's settings ("FILE AND CONNECTION" above). */
static int configure(hl_store *st, const char *path)
{
	sqlite3_extended_result_codes(st->db, 1);
	sqlite3_busy_handler(st->db, busy_wait, st);
	sqlite3_db_config(st->db, SQLITE_DBCONFIG_DEFENSIVE, 1, NULL);
	sqlite3_db_config(st->db, SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0, NULL);
	/* journal_mode answers with the mode in force; anything but "wal"
	 * (say, a read-only directory) would silently lose our guarantees. */
	sqlite3_stmt *s = NULL;
	int rc = sqlite3_prepare_v2(st->db, "PRAGMA journal_mode = WAL", -1, &s, NULL);
	if (rc == SQLITE_OK && (rc = sqlite3_step(s)) == SQLITE_ROW) {
		const char *mode = (const char *)sqlite3_column_text(s, 0);
		if (!mode || strcmp(mode, "wal") != 0) {
			int ret = st_open_fail(HL_ESTORE, "%s: cannot use WAL mode (journal_mode %s)",
					       path, mode ? mode : "?");
			sqlite3_finalize(s);
			return ret;
		}
		rc = SQLITE_OK;
	}
	sqlite3_finalize(s);
	if (rc == SQLITE_OK)
		/* A 16 MiB page cache: a burst of thousands of messages in one
		 * group commit must not spill pages to the WAL mid-transaction.
		 * Statement journals (the savepoints of the multi-row calls, the
		 * quota triggers) in memory: in a file they cost a page write
		 * each time a row lands on a page the transaction had not yet
		 * changed in that statement (about 10% of a receiver's time). */
		rc = sqlite3_exec(st->db, "PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;"
				  " PRAGMA cache_size = -16384; PRAGMA temp_store = MEMORY", NULL, NULL, NULL);
	if (rc != SQLITE_OK)
		return st_open_fail(HL_ESTORE, "%s: %s", path, sqlite3_errmsg(st->db));
	return 0;
}

int hl_store_open_version(const char *dir, int version, hl_store **out)
{
	int ret;
	char *path = NULL;
	hl_store *st = NULL;
	st_open_clear();
	*out = NULL;
	if (!dir || version < 1 || version > HL_STORE_SCHEMA_VERSION)
		return st_open_fail(HL_EINVAL, "store: bad directory or version %d", version);
	path = hl_path_join(dir, HL_STORE_FILE);
	if ((ret = create_file(path)) < 0)
		goto out;
	st = xcalloc(1, sizeof(*st));
	/* NOMUTEX: a store handle is only ever used by one thread at a time
	 * (the daemon's loop, or a command), so SQLite's per-call mutexes
	 * are pure cost (about 5-9% of a daemon streaming messages). */
	int rc = sqlite3_open_v2(path, &st->db,
				 SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOFOLLOW | SQLITE_OPEN_NOMUTEX,
				 NULL);
	if (rc != SQLITE_OK) {
		ret = st_open_fail(HL_ESTORE, "%s: %s", path,
				   st->db ? sqlite3_errmsg(st->db) : sqlite3_errstr(rc));
		goto out;
	}
	if ((ret = configure(st, path)) < 0)
		goto out;
	if ((ret = st_migrate(st->db, path, version)) < 0)
		goto out;
	if (st_pragma_int(st->db, "PRAGMA data_version", &st->data_version) != SQLITE_OK) {
		ret = st_open_fail(HL_ESTORE, "%s: %s", path, sqlite3_errmsg(st->db));
		goto out;
	}
	*out = st;
	st = NULL;
	ret = 0;
out:
	hl_store_close(st);
	free(path);
	return ret;
}

int hl_store_open(const char *dir, hl_store **out)
{
	return hl_store_open_version(dir, HL_STORE_SCHEMA_VERSION, out);
}

int hl_store_open_readonly(const char *dir, hl_store **out)
{
	char *path = hl_path_join(dir, HL_STORE_FILE);
	hl_store *st = xcalloc(1, sizeof(*st));
	int64_t ver = 0;
	int ret = HL_ESTORE;
	*out = NULL;
	/* Read-only: no migration, no journal_mode change, and no checkpoint
	 * when it closes, so it never holds a lock a starting daemon needs. */
	int rc = sqlite3_open_v2(path, &st->db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOFOLLOW |
				 SQLITE_OPEN_NOMUTEX, NULL);
	if (rc == SQLITE_OK) {
		sqlite3_extended_result_codes(st->db, 1);
		sqlite3_busy_timeout(st->db, BUSY_TIMEOUT_MS);
		rc = st_pragma_int(st->db, "PRAGMA user_version", &ver);
	}
	if (rc == SQLITE_OK && ver == HL_STORE_SCHEMA_VERSION) {
		*out = st;
		st = NULL;
		ret = 0;
	}
	hl_store_close(st);
	free(path);
	return ret;
}
