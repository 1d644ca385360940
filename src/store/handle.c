/* store/handle.c — the store's handle (interface in store.h; the files of
 * the store: store.h's opening comment): its transactions and savepoints,
 * errors, statement cache and column readers, the kit every other file of
 * src/store/ works with (store_int.h).
 *
 * ERRORS
 *   A UNIQUE/PRIMARY KEY violation is HL_EEXIST (the delivery engine tells
 *   "already stored" from failure), a FOREIGN KEY violation HL_ENOTFOUND
 *   (no such peer or item); every other SQLite error, including SQLITE_FULL
 *   and SQLITE_IOERR, is HL_ESTORE.  The SQLite text is copied at once into
 *   the handle for hl_store_errmsg(), before a rollback can overwrite it.
 *   An API call that makes several writes runs them in a savepoint (or its
 *   own transaction when none is open: st_op_begin, st_op_end), so a
 *   failed call changes nothing.  An open that fails leaves one line, the
 *   file and the cause, for hl_store_open_errmsg() (st_open_fail: a
 *   thread's own buffer, as there is no handle yet).
 *
 * STATEMENTS
 *   Every frequent query is prepared once per handle, on first use, and
 *   reset and rebound afterwards.  Its SQL stands in the table of the file
 *   that runs it (st_sql_peers, st_sql_items, ...), its number in
 *   store_int.h.  A statement already in use (a callback that calls back
 *   into the store) gets a one-off copy, so iteration is re-entrant.  Rare
 *   queries (checks, agreements, retention, restores, the record's walk of
 *   a chain) are prepared when called. */
#include "store/store_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util/err.h"
#include "util/mem.h"

static const char *const stmt_sql[S_COUNT] = {
	[S_BEGIN] = "BEGIN IMMEDIATE",
	[S_COMMIT] = "COMMIT",
	[S_ROLLBACK] = "ROLLBACK",
	[S_SAVEPOINT] = "SAVEPOINT hl_op",
	[S_RELEASE] = "RELEASE hl_op",
	[S_ROLLBACK_TO] = "ROLLBACK TO hl_op",
	[S_CALLER_SAVEPOINT] = "SAVEPOINT hl_caller",
	[S_CALLER_RELEASE] = "RELEASE hl_caller",
	[S_CALLER_ROLLBACK_TO] = "ROLLBACK TO hl_caller",
	[S_DATA_VERSION] = "PRAGMA data_version",
};

/* Every file's table of cached statements: each number is named by one. */
static const char *const *const stmt_tables[] = {
	stmt_sql,
	st_sql_peers,
	st_sql_items,
	st_sql_messages,
};

static _Thread_local char open_err[640];

/* ---- errors ---- */

int st_fail(hl_store *st, int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(st->errmsg, sizeof(st->errmsg), fmt, ap);
	va_end(ap);
	return code;
}

int st_sqlerr(hl_store *st, int rc)
{
	snprintf(st->errmsg, sizeof(st->errmsg), "%s", sqlite3_errmsg(st->db));
	switch (rc) {
	case SQLITE_CONSTRAINT_UNIQUE:
	case SQLITE_CONSTRAINT_PRIMARYKEY:
		return HL_EEXIST;
	case SQLITE_CONSTRAINT_FOREIGNKEY:
		return HL_ENOTFOUND;
	default:
		return HL_ESTORE;
	}
}

int st_corrupt(hl_store *st, const char *what, const char *why)
{
	return st_fail(st, HL_ESTORE, "corrupt store: %s %s", what, why);
}

int st_open_fail(int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(open_err, sizeof(open_err), fmt, ap);
	va_end(ap);
	return code;
}

const char *hl_store_errmsg(const hl_store *st)
{
	if (!st)
		return "no store";
	return st->errmsg[0] ? st->errmsg : "no error";
}

void st_open_clear(void)
{
	open_err[0] = '\0';
}

const char *hl_store_open_errmsg(void)
{
	return open_err[0] ? open_err : "no error";
}

/* ---- statement cache ---- */

/* The SQL of statement ID, from the one table that names it.  Looked up
 * only when a statement is prepared (once per handle, or for a one-off
 * copy); a number that no table names, or two do, is a bug, refused
 * rather than guessed at. */
static const char *stmt_text(hl_store *st, enum stmt_id id, int *ret)
{
	const char *sql = NULL;
	int n = 0;
	for (size_t i = 0; i < sizeof(stmt_tables) / sizeof(stmt_tables[0]); i++) {
		if (stmt_tables[i][id]) {
			sql = stmt_tables[i][id];
			n++;
		}
	}
	if (n != 1) {
		*ret = st_fail(st, HL_ESTORE, "store: statement %d is defined %d times",
			       (int)id, n);
		return NULL;
	}
	return sql;
}

sqlite3_stmt *st_stmt_get(hl_store *st, enum stmt_id id, int *ret)
{
	sqlite3_stmt *s = NULL;
	if (!st->busy[id] && st->stmt[id]) {
		st->busy[id] = true;
		return st->stmt[id];
	}
	const char *sql = stmt_text(st, id, ret);
	if (!sql)
		return NULL;
	if (st->busy[id]) {
		/* Re-entered from a callback: a private copy, finalized by put. */
		int rc = sqlite3_prepare_v2(st->db, sql, -1, &s, NULL);
		if (rc != SQLITE_OK) {
			*ret = st_sqlerr(st, rc);
			return NULL;
		}
		return s;
	}
	int rc = sqlite3_prepare_v3(st->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &st->stmt[id],
				    NULL);
	if (rc != SQLITE_OK) {
		*ret = st_sqlerr(st, rc);
		sqlite3_finalize(st->stmt[id]);
		st->stmt[id] = NULL;
		return NULL;
	}
	st->busy[id] = true;
	return st->stmt[id];
}

void st_stmt_put(hl_store *st, enum stmt_id id, sqlite3_stmt *s)
{
	if (!s)
		return;
	if (s != st->stmt[id]) {
		sqlite3_finalize(s);
		return;
	}
	/* Reset at once: an unreset SELECT would hold its read transaction
	 * (and block checkpoints) until the next use. */
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	st->busy[id] = false;
}

int st_step_done(hl_store *st, sqlite3_stmt *s)
{
	int rc = sqlite3_step(s);
	return rc == SQLITE_DONE ? 0 : st_sqlerr(st, rc);
}

int st_step_row(hl_store *st, sqlite3_stmt *s)
{
	int rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		return 1;
	return rc == SQLITE_DONE ? 0 : st_sqlerr(st, rc);
}

int st_exec_cached(hl_store *st, enum stmt_id id)
{
	int ret = 0;
	sqlite3_stmt *s = st_stmt_get(st, id, &ret);
	if (!s)
		return ret;
	ret = st_step_done(st, s);
	st_stmt_put(st, id, s);
	return ret;
}

int st_adhoc(hl_store *st, const char *sql, sqlite3_stmt **s)
{
	int rc = sqlite3_prepare_v2(st->db, sql, -1, s, NULL);
	return rc == SQLITE_OK ? 0 : st_sqlerr(st, rc);
}

int st_adhoc_exec(hl_store *st, const char *sql)
{
	int rc = sqlite3_exec(st->db, sql, NULL, NULL, NULL);
	return rc == SQLITE_OK ? 0 : st_sqlerr(st, rc);
}

int st_exec_text(hl_store *st, const char *sql, const char *text)
{
	sqlite3_stmt *s = NULL;
	int ret;
	if ((ret = st_adhoc(st, sql, &s)) < 0)
		return ret;
	int rc = sqlite3_bind_text(s, 1, text, -1, SQLITE_STATIC);
	ret = rc != SQLITE_OK ? st_sqlerr(st, rc) : st_step_done(st, s);
	sqlite3_finalize(s);
	return ret;
}

int st_peer_count(hl_store *st, const char *sql, int64_t peer_id, uint64_t *n)
{
	sqlite3_stmt *s = NULL;
	int ret;
	*n = 0;
	if ((ret = st_adhoc(st, sql, &s)) < 0)
		return ret;
	int rc = sqlite3_bind_int64(s, 1, peer_id);
	if (rc != SQLITE_OK)
		ret = st_sqlerr(st, rc);
	else if ((ret = st_step_row(st, s)) > 0)
		ret = st_col_u64(st, s, 0, n, "count");
	sqlite3_finalize(s);
	return ret < 0 ? ret : 0;
}

/* ---- column readers (each checks type and range: invariant 5) ---- */

int st_col_int(hl_store *st, sqlite3_stmt *s, int col, int64_t lo, int64_t hi,
	       int64_t *out, const char *what)
{
	/* *OUT is set on every path: optimising compilers cannot always see
	 * that callers read it only on success (-Wmaybe-uninitialized). */
	*out = 0;
	if (sqlite3_column_type(s, col) != SQLITE_INTEGER)
		return st_corrupt(st, what, "is not an integer");
	int64_t v = sqlite3_column_int64(s, col);
	if (v < lo || v > hi)
		return st_corrupt(st, what, "is out of range");
	*out = v;
	return 0;
}

int st_col_u64(hl_store *st, sqlite3_stmt *s, int col, uint64_t *out, const char *what)
{
	int64_t v = 0;
	int ret = st_col_int(st, s, col, 0, INT64_MAX, &v, what);
	if (ret == 0)
		*out = (uint64_t)v;
	return ret;
}

int st_col_blob(hl_store *st, sqlite3_stmt *s, int col, void *out, size_t len,
		const char *what)
{
	if (sqlite3_column_type(s, col) != SQLITE_BLOB)
		return st_corrupt(st, what, "is not a blob");
	const void *p = sqlite3_column_blob(s, col);
	int n = sqlite3_column_bytes(s, col);
	if (n < 0 || (size_t)n != len)
		return st_corrupt(st, what, "has the wrong length");
	if (!p)
		return st_sqlerr(st, sqlite3_errcode(st->db));
	memcpy(out, p, len);
	return 0;
}

int st_col_text(hl_store *st, sqlite3_stmt *s, int col, char *out, size_t cap,
		const char *what)
{
	if (sqlite3_column_type(s, col) != SQLITE_TEXT)
		return st_corrupt(st, what, "is not text");
	const unsigned char *p = sqlite3_column_text(s, col);
	int n = sqlite3_column_bytes(s, col);
	if (!p)
		return st_sqlerr(st, sqlite3_errcode(st->db));
	if (n < 0 || (size_t)n >= cap)
		return st_corrupt(st, what, "is too long");
	memcpy(out, p, (size_t)n);
	out[n] = '\0';
	return 0;
}

int st_col_text_dup(hl_store *st, sqlite3_stmt *s, int col, bool nullable, char **out,
		    const char *what)
{
	int type = sqlite3_column_type(s, col);
	*out = NULL;
	if (type == SQLITE_NULL && nullable)
		return 0;
	if (type != SQLITE_TEXT)
		return st_corrupt(st, what, "is not text");
	const unsigned char *p = sqlite3_column_text(s, col);
	int n = sqlite3_column_bytes(s, col);
	if (!p || n < 0)
		return st_sqlerr(st, sqlite3_errcode(st->db));
	*out = xmalloc((size_t)n + 1);
	memcpy(*out, p, (size_t)n);
	(*out)[n] = '\0';
	return 0;
}

int st_col_item(hl_store *st, sqlite3_stmt *s, int col, const uint8_t **p, size_t *len,
		const char *what)
{
	if (sqlite3_column_type(s, col) != SQLITE_BLOB)
		return st_corrupt(st, what, "is not a blob");
	const uint8_t *b = sqlite3_column_blob(s, col);
	int n = sqlite3_column_bytes(s, col);
	if (n <= 0 || n > HL_ITEM_MAX)
		return st_corrupt(st, what, "has a bad length");
	if (!b)
		return st_sqlerr(st, sqlite3_errcode(st->db));
	*p = b;
	*len = (size_t)n;
	return 0;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int st_id_by_prefix(hl_store *st, sqlite3_stmt *s, const struct st_id_kind *k, const char *hex,
		    uint8_t *id)
{
	uint8_t lo[HL_HASH_LEN], hi[HL_HASH_LEN];
	size_t n = hex ? strnlen(hex, 2 * k->len + 1) : 0;
	int ret, rc = SQLITE_OK;
	if (k->len > sizeof(lo))
		return st_fail(st, HL_EINVAL, "%s id of %zu bytes", k->noun, k->len);
	if (n < 8 || n > 2 * k->len)
		return st_fail(st, HL_EINVAL, "%s %s id is 8 to %zu hex digits", k->article, k->noun,
			       2 * k->len);
	/* The ids that start with the prefix are exactly those between the
	 * prefix padded with 0 digits and the prefix padded with f digits. */
	memset(lo, 0x00, k->len);
	memset(hi, 0xff, k->len);
	for (size_t i = 0; i < n; i++) {
		int v = hexval(hex[i]);
		if (v < 0)
			return st_fail(st, HL_EINVAL, "%s %s id is hex digits", k->article, k->noun);
		uint8_t shift = i % 2 ? 0 : 4;
		lo[i / 2] = (uint8_t)((lo[i / 2] & ~(0x0f << shift)) | (v << shift));
		hi[i / 2] = (uint8_t)((hi[i / 2] & ~(0x0f << shift)) | (v << shift));
	}
	BIND(sqlite3_bind_blob(s, 1, lo, (int)k->len, SQLITE_TRANSIENT));
	BIND(sqlite3_bind_blob(s, 2, hi, (int)k->len, SQLITE_TRANSIENT));
	if (rc != SQLITE_OK)
		return st_sqlerr(st, rc);
	if ((ret = st_step_row(st, s)) == 0)
		ret = st_fail(st, HL_ENOTFOUND, "no %s %s", k->noun, hex);
	if (ret < 0 || (ret = st_col_blob(st, s, 0, id, k->len, k->column)) < 0)
		return ret;
	if ((ret = st_step_row(st, s)) > 0)
		return st_fail(st, HL_EEXIST, "%s id %s is ambiguous", k->noun, hex);
	return ret < 0 ? ret : 0;
}

/* ---- the handle ---- */

int st_pragma_int(sqlite3 *db, const char *sql, int64_t *out)
{
	sqlite3_stmt *s = NULL;
	int rc = sqlite3_prepare_v2(db, sql, -1, &s, NULL);
	if (rc == SQLITE_OK) {
		rc = sqlite3_step(s);
		if (rc == SQLITE_ROW) {
			*out = sqlite3_column_int64(s, 0);
			rc = SQLITE_OK;
		}
	}
	sqlite3_finalize(s);
	return rc;
}

void hl_store_close(hl_store *st)
{
	if (!st)
		return;
	for (int i = 0; i < S_COUNT; i++)
		sqlite3_finalize(st->stmt[i]);
	/* An open transaction is rolled back by the close. */
	sqlite3_close_v2(st->db);
	free(st);
}

/* ---- transactions ---- */

int hl_store_begin(hl_store *st)
{
	if (!sqlite3_get_autocommit(st->db))
		return st_fail(st, HL_ESTATE, "a transaction is already open");
	st->changes_at_begin = sqlite3_total_changes64(st->db);
	return st_exec_cached(st, S_BEGIN);
}

bool hl_store_txn_wrote(hl_store *st)
{
	return !sqlite3_get_autocommit(st->db) &&
	       sqlite3_total_changes64(st->db) != st->changes_at_begin;
}

int hl_store_begin_read(hl_store *st)
{
	if (!sqlite3_get_autocommit(st->db))
		return st_fail(st, HL_ESTATE, "a transaction is already open");
	int rc = sqlite3_exec(st->db, "BEGIN DEFERRED", NULL, NULL, NULL);
	return rc == SQLITE_OK ? 0 : st_sqlerr(st, rc);
}

int hl_store_commit(hl_store *st)
{
	if (sqlite3_get_autocommit(st->db))
		return st_fail(st, HL_ESTATE, "no transaction is open (an earlier error may "
			       "have rolled it back)");
	int ret = st_exec_cached(st, S_COMMIT);
	/* A failed COMMIT (disk full, I/O error) may leave the transaction
	 * open; end it so the handle stays usable.  The error text was
	 * already kept. */
	if (ret < 0 && !sqlite3_get_autocommit(st->db))
		sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
	return ret;
}

void hl_store_rollback(hl_store *st)
{
	if (!st || sqlite3_get_autocommit(st->db))
		return;
	char keep[sizeof(st->errmsg)];
	memcpy(keep, st->errmsg, sizeof(keep));
	if (st_exec_cached(st, S_ROLLBACK) < 0 && !sqlite3_get_autocommit(st->db))
		sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
	/* The error that led here matters more than the rollback's. */
	memcpy(st->errmsg, keep, sizeof(keep));
}

/* The savepoint has its own name: the store's functions use "hl_op"
 * inside it.  Cached statements: the delivery engine takes one around
 * every item it receives. */
int hl_store_savepoint(hl_store *st)
{
	if (sqlite3_get_autocommit(st->db))
		return st_fail(st, HL_ESTATE, "no transaction is open for a savepoint");
	return st_exec_cached(st, S_CALLER_SAVEPOINT);
}

int hl_store_release(hl_store *st)
{
	return st_exec_cached(st, S_CALLER_RELEASE);
}

void hl_store_rollback_to(hl_store *st)
{
	if (!st || sqlite3_get_autocommit(st->db))
		return; /* SQLite rolled back the whole transaction already */
	char keep[sizeof(st->errmsg)];
	memcpy(keep, st->errmsg, sizeof(keep));
	if (st_exec_cached(st, S_CALLER_ROLLBACK_TO) == 0)
		st_exec_cached(st, S_CALLER_RELEASE);
	memcpy(st->errmsg, keep, sizeof(keep));
}

bool hl_store_changed(hl_store *st)
{
	int ret = 0;
	int64_t v = 0;
	sqlite3_stmt *s = st_stmt_get(st, S_DATA_VERSION, &ret);
	if (!s)
		return true; /* when in doubt, have the caller look */
	bool changed = true;
	if (st_step_row(st, s) == 1) {
		v = sqlite3_column_int64(s, 0);
		changed = v != st->data_version;
		st->data_version = v;
	}
	st_stmt_put(st, S_DATA_VERSION, s);
	return changed;
}

int st_op_begin(hl_store *st, struct st_op *op)
{
	op->own_txn = sqlite3_get_autocommit(st->db);
	return op->own_txn ? hl_store_begin(st) : st_exec_cached(st, S_SAVEPOINT);
}

int st_op_end(hl_store *st, struct st_op *op, int ret)
{
	if (ret == 0) {
		ret = op->own_txn ? hl_store_commit(st) : st_exec_cached(st, S_RELEASE);
		if (ret == 0 || op->own_txn) /* a failed commit rolled back */
			return ret;
	}
	char keep[sizeof(st->errmsg)];
	memcpy(keep, st->errmsg, sizeof(keep));
	if (op->own_txn) {
		hl_store_rollback(st);
	} else if (!sqlite3_get_autocommit(st->db)) {
		/* Unless SQLite already rolled back the whole transaction (it
		 * does after some I/O errors; the caller's commit then reports
		 * it), undo just this call. */
		st_exec_cached(st, S_ROLLBACK_TO);
		st_exec_cached(st, S_RELEASE);
	}
	memcpy(st->errmsg, keep, sizeof(keep));
	return ret;
}

int64_t st_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
