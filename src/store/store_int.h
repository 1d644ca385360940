/* store/store_int.h — what the files of src/store/ share, and nothing
 * outside src/store/ includes: the handle, the numbers of the cached
 * statements (each file defines the SQL of its own), the error helpers,
 * the column readers, and the "several writes as one" bracket.  Its
 * functions' names start with st_, its statements' with S_; store.h's
 * opening comment says which file owns what. */
#ifndef HL_STORE_STORE_INT_H
#define HL_STORE_STORE_INT_H

#include <sqlite3.h>
#include <stdbool.h>
#include <stdint.h>

#include "store/store.h"

/* Why the store takes no new item of ours for a peer being resynchronised
 * after a restore: the items_resync trigger's text (schema.c) and
 * hl_store_may_sign's. */
#define ST_RESYNC_TEXT "this station was restored from a backup and signs nothing" \
	" new for this peer until the peer has said how much of our chain it holds (the" \
	" daemon asks it once the link is up)"

#define I64MAX ((uint64_t)INT64_MAX)

/* The quota's unit costs (store.h) as SQL literals: the charges of
 * schema.c and what a purge gives back (purge.c). */
#define ST_STR_(x) #x
#define ST_STR(x) ST_STR_(x)
#define ROW_COST ST_STR(HL_STORE_ROW_COST)
#define BLOCK_COST ST_STR(HL_STORE_BLOCK_COST)
#define I64MAX_SQL "9223372036854775807"

/* ---- cached statements ----
 *
 * Every frequent query is prepared once per handle, on first use, and
 * reset and rebound afterwards (handle.c, "STATEMENTS").  The numbers are
 * grouped by the file whose table (st_sql_FILE, indexed by these numbers)
 * holds the SQL; exactly one table names each. */
enum stmt_id {
	/* handle.c: transactions */
	S_BEGIN,
	S_COMMIT,
	S_ROLLBACK,
	S_SAVEPOINT,
	S_RELEASE,
	S_ROLLBACK_TO,
	S_CALLER_SAVEPOINT,
	S_CALLER_RELEASE,
	S_CALLER_ROLLBACK_TO,
	S_DATA_VERSION,
	/* peers.c */
	S_PEER_UPSERT,
	S_PEER_BY_KEY,
	S_PEER_USAGE,
	S_PEER_AUTHOR,
	/* items.c */
	S_CHAIN_HEAD,
	S_IN_CONTIG,
	S_IN_ADVANCE,
	S_ITEM_INSERT,
	S_ITEM_GET,
	S_ACK_RANGE,
	S_ACK_MSGS,
	S_UNACKED,
	S_IN_ABOVE,
	S_OUT_AFTER,
	S_HEAD_BELOW,
	S_HEAD_ABOVE,
	S_ROTATION_BELOW,
	S_OUT_ENTRY,
	S_OUT_SUMMARY,
	/* messages.c */
	S_NEXT_CLASS_SEQ,
	S_MSG_INSERT,
	S_ATT_INSERT,
	S_MSG_BY_ID,
	S_MSG_PREFIX,
	S_ATT_BY_MSG,
	S_EACH_IN,
	S_EACH_OUT,
	S_SET_STATE,
	S_MSG_LOOKUP,
	S_MARK_READ,
	S_SET_BODY,
	S_SET_BODY_DONE,
	S_SET_PART_DONE,
	S_ATT_LOOKUP,
	S_MSG_BY_SEQ,
	S_OUT_SEND,
	S_OUT_WITH_PARTS,
	S_IN_BY_STATE,
	S_IN_CLASS_STATE,
	S_MSG_EXISTS,
	S_MARK_DELIVERED,
	S_CLASS_BELOW,
	S_CLASS_ABOVE,
	S_COUNT
};

extern const char *const st_sql_peers[S_COUNT];
extern const char *const st_sql_items[S_COUNT];
extern const char *const st_sql_messages[S_COUNT];

/* The handle (store.h): one connection and its cached statements. */
struct hl_store {
	sqlite3 *db;
	sqlite3_stmt *stmt[S_COUNT];
	bool busy[S_COUNT];
	int64_t data_version;
	sqlite3_int64 changes_at_begin; /* sqlite3_total_changes64 at hl_store_begin */
	int64_t busy_since_us;   /* when the current wait for a lock began */
	char errmsg[512];
};

/* The cached statement ID, ready to bind (NULL with *RET set on failure);
 * a statement already in use (a callback that calls back into the store)
 * gets a one-off copy.  Every st_stmt_get is paired with an st_stmt_put. */
sqlite3_stmt *st_stmt_get(hl_store *st, enum stmt_id id, int *ret);
void st_stmt_put(hl_store *st, enum stmt_id id, sqlite3_stmt *s);
/* Runs a cached statement with no parameters and no result. */
int st_exec_cached(hl_store *st, enum stmt_id id);

/* Rare queries are prepared when called rather than cached: st_adhoc
 * prepares SQL into *S (the caller finalizes it); st_adhoc_exec runs SQL
 * (a pragma: its rows, if any, are read and dropped); st_exec_text runs
 * one statement with ?1 bound to TEXT. */
int st_adhoc(hl_store *st, const char *sql, sqlite3_stmt **s);
int st_adhoc_exec(hl_store *st, const char *sql);
int st_exec_text(hl_store *st, const char *sql, const char *text);
/* Runs SQL, a count(*) with ?1 bound to PEER_ID, into *N. */
int st_peer_count(hl_store *st, const char *sql, int64_t peer_id, uint64_t *n);

/* Steps S expecting completion: 0 or an error. */
int st_step_done(hl_store *st, sqlite3_stmt *s);
/* Steps S: 1 for a row, 0 when done, or an error. */
int st_step_row(hl_store *st, sqlite3_stmt *s);

/* Binding: RC collects the first failure so a statement's parameters can
 * be bound in a row and checked once. */
#define BIND(call)                        \
	do {                              \
		if (rc == SQLITE_OK)      \
			rc = (call);      \
	} while (0)

/* ---- errors (handle.c, "ERRORS") ---- */

/* Keeps the formatted text for hl_store_errmsg() and returns CODE. */
int st_fail(hl_store *st, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Keeps SQLite's text for RC (from the last call on the handle) and maps
 * RC to a hotline code. */
int st_sqlerr(hl_store *st, int rc);
/* HL_ESTORE: the column WHAT of a row read is WHY (a corrupt store). */
int st_corrupt(hl_store *st, const char *what, const char *why);
/* For hl_store_open_errmsg(): the text of the last open in this thread
 * (st_open_clear at the start of each). */
int st_open_fail(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void st_open_clear(void);

/* ---- column readers (each checks type and range: invariant 5) ---- */

int st_col_int(hl_store *st, sqlite3_stmt *s, int col, int64_t lo, int64_t hi, int64_t *out,
	       const char *what);
int st_col_u64(hl_store *st, sqlite3_stmt *s, int col, uint64_t *out, const char *what);
/* A BLOB column of exactly LEN bytes, copied into OUT. */
int st_col_blob(hl_store *st, sqlite3_stmt *s, int col, void *out, size_t len,
		const char *what);
/* A TEXT column into a fixed buffer, NUL-terminated. */
int st_col_text(hl_store *st, sqlite3_stmt *s, int col, char *out, size_t cap,
		const char *what);
/* A TEXT column (or NULL, when NULLABLE) into an xmalloc'd string. */
int st_col_text_dup(hl_store *st, sqlite3_stmt *s, int col, bool nullable, char **out,
		    const char *what);
/* An encoded item borrowed from S (1..HL_ITEM_MAX bytes). */
int st_col_item(hl_store *st, sqlite3_stmt *s, int col, const uint8_t **p, size_t *len,
		const char *what);

/* ---- the rest of the kit ---- */

/* Several writes as one: a savepoint inside the caller's transaction, or a
 * transaction of our own in autocommit mode.  st_op_end commits (or
 * releases) when RET is 0, else undoes the writes, and returns RET or the
 * commit's error. */
struct st_op {
	bool own_txn;
};
int st_op_begin(hl_store *st, struct st_op *op);
int st_op_end(hl_store *st, struct st_op *op, int ret);

/* A single-row PRAGMA or SELECT's first column (SQLite's code). */
int st_pragma_int(sqlite3 *db, const char *sql, int64_t *out);
/* Brings the store at DB (the file PATH, for messages) to schema version
 * TARGET (schema.c; open.c calls it). */
int st_migrate(sqlite3 *db, const char *path, int target);

/* Ids typed by people as a unique prefix of hex digits: what they are
 * called in errors ("a" "message" id; COLUMN: "messages.id") and their
 * length (at most HL_HASH_LEN). */
struct st_id_kind {
	const char *article, *noun, *column;
	size_t len;
};
/* The one id (K->len bytes, into ID) that starts with the hex digits HEX,
 * 8 to 2 * K->len of them, found by S: a query that selects at most two
 * ids between ?1 and ?2.  HL_EINVAL for anything but such digits,
 * HL_ENOTFOUND when no id starts so, HL_EEXIST when two do. */
int st_id_by_prefix(hl_store *st, sqlite3_stmt *s, const struct st_id_kind *k, const char *hex,
		    uint8_t *id);

/* Fills ROW from an items SELECT whose columns start at COL with kind,
 * hash, encoded, precedence (then acked, stored_at when WITH_ACKED, else
 * stored_at).  ENCODED stays borrowed from the statement (items.c). */
int st_read_item(hl_store *st, sqlite3_stmt *s, int col, bool with_acked,
		 struct hl_item_row *row);

/* The item of the cached statement ID — SELECT seq, encoded with ?1
 * peer_id, ?2 dir, ?3 seq, at most one row — into ROW and BUF (CAP):
 * HL_ENOTFOUND when none (items.c). */
int st_item_near(hl_store *st, enum stmt_id id, int64_t peer_id, enum hl_dir dir,
		 uint64_t seq, struct hl_item_row *row, uint8_t *buf, size_t cap);

/* The wall clock in ms. */
int64_t st_now_ms(void);

static inline bool st_dir_ok(enum hl_dir dir)
{
	return dir == HL_DIR_OUT || dir == HL_DIR_IN;
}

#endif
