/* store/items.c — the items table: both chains of every link, the items
 * we authored (dir OUT) and those our peers authored (dir IN), as encoded
 * bytes with their hashes; IN positions may be tombstones (refused items).
 * Here: inserting items and tombstones (an IN insert moves the peer's
 * contiguity mark, invariant 1), chain heads, acknowledgements (OUT
 * acked, and the messages they make "sent"), the send queue, the chain
 * rules' lookups, the record's walk of a chain; and the equivocations
 * table, the proof that a peer signed two items at one position. */
#include "store/store_int.h"

#include <inttypes.h>
#include <string.h>

#include "util/err.h"

const char *const st_sql_items[S_COUNT] = {
	[S_CHAIN_HEAD] = "SELECT seq, hash FROM items WHERE peer_id = ?1 AND dir = ?2"
			 " ORDER BY seq DESC LIMIT 1",
	[S_IN_CONTIG] = "SELECT p.in_contig, i.hash FROM peers p LEFT JOIN items i"
			" ON i.peer_id = p.id AND i.dir = 1 AND i.seq = p.in_contig"
			" WHERE p.id = ?1",
	/* When the item at ?2 extends the contiguous prefix (the mark is at
	 * ?2 - 1), the mark moves to the end of the run of present seqs that
	 * starts at ?2; the subquery walks the (peer_id, dir, seq) index only
	 * as far as the first gap, so the work over a chain's life is linear
	 * in its length.  One statement, where reading the mark, finding the
	 * run's end and setting it took three. */
	[S_IN_ADVANCE] = "UPDATE peers SET in_contig = (SELECT a.seq FROM items a"
			 " WHERE a.peer_id = ?1 AND a.dir = 1 AND a.seq >= ?2 AND NOT EXISTS"
			 " (SELECT 1 FROM items b WHERE b.peer_id = ?1 AND b.dir = 1"
			 " AND b.seq = a.seq + 1) ORDER BY a.seq LIMIT 1)"
			 " WHERE id = ?1 AND in_contig = ?2 - 1",
	[S_ITEM_INSERT] = "INSERT INTO items (peer_id, dir, seq, kind, hash, encoded,"
			  " precedence, acked, stored_at, refused)"
			  " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
	[S_ITEM_GET] = "SELECT kind, hash, encoded, precedence, acked, stored_at FROM items"
		       " WHERE peer_id = ?1 AND dir = ?2 AND seq = ?3",
	[S_ACK_RANGE] = "UPDATE items SET acked = 1 WHERE peer_id = ?1 AND dir = 0"
			" AND seq BETWEEN ?2 AND ?3 AND acked = 0",
	/* The messages among the acknowledged items: queued -> sent. */
	[S_ACK_MSGS] = "UPDATE messages SET state = 1 WHERE peer_id = ?1 AND dir = 0"
		       " AND seq BETWEEN ?2 AND ?3 AND state = 0",
	[S_UNACKED] = "SELECT seq, kind, hash, encoded, precedence, stored_at FROM items"
		      " WHERE peer_id = ?1 AND dir = 0 AND acked = 0"
		      " ORDER BY precedence DESC, seq LIMIT ?2",
	[S_IN_ABOVE] = "SELECT seq FROM items WHERE peer_id = ?1 AND dir = 1 AND seq > ?2"
		       " ORDER BY seq",
	[S_OUT_AFTER] = "SELECT seq, kind, hash, encoded, precedence, stored_at FROM items"
			" WHERE peer_id = ?1 AND dir = 0 AND seq > ?2 AND acked = 0"
			" ORDER BY seq LIMIT ?3",
	/* The nearest items that record the other chain's head (receipts,
	 * checks, answers: kinds 2 to 4) walk the (peer_id, dir, seq) index
	 * from SEQ until one is found: items usually arrive in order, so the
	 * walk above stops at once and the one below at the last receipt. */
	[S_HEAD_BELOW] = "SELECT seq, encoded FROM items WHERE peer_id = ?1 AND dir = ?2"
			 " AND seq < ?3 AND kind BETWEEN 2 AND 4 ORDER BY seq DESC LIMIT 1",
	[S_HEAD_ABOVE] = "SELECT seq, encoded FROM items WHERE peer_id = ?1 AND dir = ?2"
			 " AND seq > ?3 AND kind BETWEEN 2 AND 4 ORDER BY seq LIMIT 1",
	/* keys.c: the partial index items_rotations holds exactly these */
	[S_ROTATION_BELOW] = "SELECT seq, encoded FROM items WHERE peer_id = ?1 AND dir = ?2"
			     " AND seq < ?3 AND kind = 8 ORDER BY seq DESC LIMIT 1",
	[S_OUT_ENTRY] = "SELECT i.kind, i.hash, m.state FROM items i LEFT JOIN messages m"
			" ON m.peer_id = i.peer_id AND m.dir = 0 AND m.seq = i.seq"
			" WHERE i.peer_id = ?1 AND i.dir = 0 AND i.seq = ?2",
	/* The partial index items_unacked holds exactly these rows; the
	 * daemon asks at every session (failover's path state). */
	[S_OUT_SUMMARY] =
		"SELECT count(*), coalesce(max(seq), 0), coalesce(sum(seq > ?2), 0),"
		" coalesce(sum(seq > ?2 AND precedence = 3), 0) FROM items"
		" WHERE peer_id = ?1 AND dir = 0 AND acked = 0",
};

/* ---- heads and inserts ---- */

int hl_store_chain_head(hl_store *st, int64_t peer_id, enum hl_dir dir,
			struct hl_chain_head *head)
{
	int ret = 0, rc = SQLITE_OK;
	memset(head, 0, sizeof(*head));
	if (!st_dir_ok(dir))
		return st_fail(st, HL_EINVAL, "bad direction %d", (int)dir);
	sqlite3_stmt *s = st_stmt_get(st, S_CHAIN_HEAD, &ret);
	if (!s)
		return ret;
	BIND(sqlite3_bind_int64(s, 1, peer_id));
	BIND(sqlite3_bind_int(s, 2, (int)dir));
	if (rc != SQLITE_OK)
		ret = st_sqlerr(st, rc);
	else if ((ret = st_step_row(st, s)) > 0 &&
		 (ret = st_col_u64(st, s, 0, &head->seq, "items.seq")) == 0)
		ret = st_col_blob(st, s, 1, head->hash, HL_HASH_LEN, "items.hash");
	st_stmt_put(st, S_CHAIN_HEAD, s);
	if (ret < 0)
		memset(head, 0, sizeof(*head));
	return ret < 0 ? ret : 0;
}

int hl_store_in_contiguous(hl_store *st, int64_t peer_id, struct hl_chain_head *head)
{
	int ret = 0;
	memset(head, 0, sizeof(*head));
	sqlite3_stmt *s = st_stmt_get(st, S_IN_CONTIG, &ret);
	if (!s)
		return ret;
	int rc = sqlite3_bind_int64(s, 1, peer_id);
	if (rc != SQLITE_OK) {
		ret = st_sqlerr(st, rc);
		goto out;
	}
	if ((ret = st_step_row(st, s)) == 0)
		ret = st_fail(st, HL_ENOTFOUND, "no peer %" PRId64, peer_id);
	if (ret < 0)
		goto out;
	if ((ret = st_col_u64(st, s, 0, &head->seq, "peers.in_contig")) < 0)
		goto out;
	if (head->seq > 0)
		ret = st_col_blob(st, s, 1, head->hash, HL_HASH_LEN, "the hash at peers.in_contig");
out:
	st_stmt_put(st, S_IN_CONTIG, s);
	if (ret < 0)
		memset(head, 0, sizeof(*head));
	return ret < 0 ? ret : 0;
}

/* After an IN item or tombstone landed at SEQ: when it extends the
 * contiguous prefix, move the mark to the end of the run it joins. */
static int in_advance(hl_store *st, int64_t peer_id, uint64_t seq)
{
	int ret = 0, rc = SQLITE_OK;
	sqlite3_stmt *s = st_stmt_get(st, S_IN_ADVANCE, &ret);
	if (!s)
		return ret;
	BIND(sqlite3_bind_int64(s, 1, peer_id));
	BIND(sqlite3_bind_int64(s, 2, (int64_t)seq));
	/* The item was just inserted, so the run is never empty (a NULL
	 * would fail the column's NOT NULL: an error, not a silent reset). */
	ret = rc != SQLITE_OK ? st_sqlerr(st, rc) : st_step_done(st, s);
	st_stmt_put(st, S_IN_ADVANCE, s);
	return ret;
}

/* Inserts one items row; ENCODED NULL makes a tombstone. */
static int item_insert(hl_store *st, const struct hl_item_row *row, int refused)
{
	int ret = 0, rc = SQLITE_OK;
	sqlite3_stmt *s = st_stmt_get(st, S_ITEM_INSERT, &ret);
	if (!s)
		return ret;
	BIND(sqlite3_bind_int64(s, 1, row->peer_id));
	BIND(sqlite3_bind_int(s, 2, (int)row->dir));
	BIND(sqlite3_bind_int64(s, 3, (int64_t)row->seq));
	BIND(sqlite3_bind_int(s, 4, (int)row->kind));
	BIND(sqlite3_bind_blob(s, 5, row->hash, HL_HASH_LEN, SQLITE_STATIC));
	if (row->encoded)
		BIND(sqlite3_bind_blob(s, 6, row->encoded, (int)row->encoded_len,
				       SQLITE_STATIC));
	else
		BIND(sqlite3_bind_null(s, 6));
	BIND(sqlite3_bind_int(s, 7, (int)row->precedence));
	BIND(sqlite3_bind_int(s, 8, row->dir == HL_DIR_OUT && row->acked));
	BIND(sqlite3_bind_int64(s, 9, row->stored_at));
	if (refused >= 0)
		BIND(sqlite3_bind_int(s, 10, refused));
	else
		BIND(sqlite3_bind_null(s, 10));
	ret = rc != SQLITE_OK ? st_sqlerr(st, rc) : st_step_done(st, s);
	st_stmt_put(st, S_ITEM_INSERT, s);
	return ret;
}

int hl_store_insert_item(hl_store *st, const struct hl_item_row *row)
{
	if (!st_dir_ok(row->dir) || row->seq < 1 || row->seq > I64MAX ||
	    row->kind < HL_ITEM_MESSAGE || row->kind > HL_ITEM_KIND_MAX ||
	    row->precedence >= HL_PREC_COUNT)
		return st_fail(st, HL_EINVAL, "bad item row (dir %d, seq %" PRIu64 ", kind %d, "
			       "precedence %u)", (int)row->dir, row->seq, (int)row->kind,
			       row->precedence);
	if (!row->encoded || row->encoded_len == 0 || row->encoded_len > HL_ITEM_MAX)
		return st_fail(st, HL_ETOOBIG, "item of %zu bytes", row->encoded_len);
	if (row->dir == HL_DIR_OUT)
		return item_insert(st, row, -1); /* one statement: atomic alone */
	struct st_op op;
	int ret = st_op_begin(st, &op);
	if (ret < 0)
		return ret;
	ret = item_insert(st, row, -1);
	if (ret == 0)
		ret = in_advance(st, row->peer_id, row->seq);
	return st_op_end(st, &op, ret);
}

int hl_store_insert_tombstone(hl_store *st, int64_t peer_id, uint64_t seq,
			      const uint8_t hash[static HL_HASH_LEN], unsigned code)
{
	if (seq < 1 || seq > I64MAX || code > 255)
		return st_fail(st, HL_EINVAL, "bad tombstone (seq %" PRIu64 ", code %u)", seq, code);
	struct hl_item_row row = {
		.peer_id = peer_id,
		.dir = HL_DIR_IN,
		.seq = seq,
		.kind = 0,
		.precedence = HL_PREC_FLASH,
		.stored_at = st_now_ms(),
	};
	memcpy(row.hash, hash, HL_HASH_LEN);
	struct st_op op;
	int ret = st_op_begin(st, &op);
	if (ret < 0)
		return ret;
	ret = item_insert(st, &row, (int)code);
	if (ret == 0)
		ret = in_advance(st, peer_id, seq);
	return st_op_end(st, &op, ret);
}

/* Fills ROW from an items SELECT whose columns start at COL with
 * kind, hash, encoded, precedence (then acked, stored_at when WITH_ACKED,
 * else stored_at).  ENCODED stays borrowed from the statement. */
int st_read_item(hl_store *st, sqlite3_stmt *s, int col, bool with_acked,
		 struct hl_item_row *row)
{
	int64_t v;
	int ret;
	if ((ret = st_col_int(st, s, col, 0, HL_ITEM_KIND_MAX, &v, "items.kind")) < 0)
		return ret;
	row->kind = (enum hl_item_kind)v;
	if ((ret = st_col_blob(st, s, col + 1, row->hash, HL_HASH_LEN, "items.hash")) < 0)
		return ret;
	row->encoded = NULL;
	row->encoded_len = 0;
	int type = sqlite3_column_type(s, col + 2);
	if (row->kind == 0 ? type != SQLITE_NULL : type != SQLITE_BLOB)
		return st_corrupt(st, "items.encoded", "does not match the item's kind");
	if (row->kind != 0) {
		const uint8_t *p = sqlite3_column_blob(s, col + 2);
		int n = sqlite3_column_bytes(s, col + 2);
		if (n <= 0 || n > HL_ITEM_MAX)
			return st_corrupt(st, "items.encoded", "has a bad length");
		if (!p)
			return st_sqlerr(st, sqlite3_errcode(st->db));
		row->encoded = p;
		row->encoded_len = (size_t)n;
	}
	if ((ret = st_col_int(st, s, col + 3, 0, HL_PREC_COUNT - 1, &v, "items.precedence")) < 0)
		return ret;
	row->precedence = (unsigned)v;
	int next = col + 4;
	row->acked = false;
	if (with_acked) {
		if ((ret = st_col_int(st, s, next++, 0, 1, &v, "items.acked")) < 0)
			return ret;
		row->acked = v != 0;
	}
	return st_col_int(st, s, next, INT64_MIN, INT64_MAX, &row->stored_at, "items.stored_at");
}

int hl_store_get_item(hl_store *st, int64_t peer_id, enum hl_dir dir, uint64_t seq,
		      struct hl_item_row *row, uint8_t *buf, size_t cap)
{
	int ret = 0, rc = SQLITE_OK;
	memset(row, 0, sizeof(*row));
	if (!st_dir_ok(dir))
		return st_fail(st, HL_EINVAL, "bad direction %d", (int)dir);
	if (seq < 1 || seq > I64MAX)
		return st_fail(st, HL_ENOTFOUND, "no item %" PRIu64, seq);
	sqlite3_stmt *s = st_stmt_get(st, S_ITEM_GET, &ret);
	if (!s)
		return ret;
	BIND(sqlite3_bind_int64(s, 1, peer_id));
	BIND(sqlite3_bind_int(s, 2, (int)dir));
	BIND(sqlite3_bind_int64(s, 3, (int64_t)seq));
	if (rc != SQLITE_OK) {
		ret = st_sqlerr(st, rc);
		goto out;
	}
	if ((ret = st_step_row(st, s)) == 0)
		ret = st_fail(st, HL_ENOTFOUND, "no %s item %" PRIu64 " of peer %" PRId64,
			      dir == HL_DIR_IN ? "IN" : "OUT", seq, peer_id);
	if (ret < 0 || (ret = st_read_item(st, s, 0, true, row)) < 0)
		goto out;
	row->peer_id = peer_id;
	row->dir = dir;
	row->seq = seq;
	if (row->encoded) {
		if (row->encoded_len > cap) {
			ret = st_fail(st, HL_ETOOBIG, "item of %zu bytes, buffer of %zu",
				      row->encoded_len, cap);
			goto out;
		}
		memcpy(buf, row->encoded, row->encoded_len);
		row->encoded = buf;
	}
out:
	st_stmt_put(st, S_ITEM_GET, s);
	if (ret < 0)
		memset(row, 0, sizeof(*row));
	return ret < 0 ? ret : 0;
}

/* ---- acknowledgements and the send queue ---- */

int hl_store_ack_range(hl_store *st, int64_t peer_id, uint64_t first, uint64_t last)
{
	int ret = 0, rc = SQLITE_OK;
	if (first > last)
		return st_fail(st, HL_EINVAL, "ack range %" PRIu64 "-%" PRIu64, first, last);
	if (first > I64MAX) /* no item can be there: nothing to mark */
		return 0;
	if (last > I64MAX)
		last = I64MAX;
	sqlite3_stmt *s = st_stmt_get(st, S_ACK_RANGE, &ret);
	if (!s)
		return ret;
	BIND(sqlite3_bind_int64(s, 1, peer_id));
	BIND(sqlite3_bind_int64(s, 2, (int64_t)first));
	BIND(sqlite3_bind_int64(s, 3, (int64_t)last));
	ret = rc != SQLITE_OK ? st_sqlerr(st, rc) : st_step_done(st, s);
	st_stmt_put(st, S_ACK_RANGE, s);
	if (ret < 0)
		return ret;
	/* The messages among them are now held by the peer: queued -> sent. */
	if (!(s = st_stmt_get(st, S_ACK_MSGS, &ret)))
		return ret;
	BIND(sqlite3_bind_int64(s, 1, peer_id));
	BIND(sqlite3_bind_int64(s, 2, (int64_t)first));
	BIND(sqlite3_bind_int64(s, 3, (int64_t)last));
	ret = rc != SQLITE_OK ? st_sqlerr(st, rc) : st_step_done(st, s);
	st_stmt_put(st, S_ACK_MSGS, s);
	return ret;
}

/* Steps S (bound by the caller) over OUT item rows: seq, then the columns
 * st_read_item() reads; FN per row. */
static int step_out_items(hl_store *st, sqlite3_stmt *s, int64_t peer_id,
			  int (*fn)(void *arg, const struct hl_item_row *row), void *arg)
{
	int ret;
	while ((ret = st_step_row(st, s)) > 0) {
		struct hl_item_row row = { .peer_id = peer_id, .dir = HL_DIR_OUT };
		if ((ret = st_col_u64(st, s, 0, &row.seq, "items.seq")) < 0 ||
		    (ret = st_read_item(st, s, 1, false, &row)) < 0)
			break;
		if (row.kind == 0) {
			ret = st_corrupt(st, "items", "has an OUT tombstone");
			break;
		}
		if ((ret = fn(arg, &row)) != 0)
			break;
	}
	return ret > 0 ? 0 : ret;
}

int hl_store_each_unacked(hl_store *st, int64_t peer_id, size_t limit,
			  int (*fn)(void *arg, const struct hl_item_row *row), void *arg)
{
	int ret = 0, rc = SQLITE_OK;
	sqlite3_stmt *s = st_stmt_get(st, S_UNACKED, &ret);
	if (!s)
		return ret;
	BIND(sqlite3_bind_int64(s, 1, peer_id));
	BIND(sqlite3_bind_int64(s, 2, limit > I64MAX ? -1 : (int64_t)limit));
	ret = rc != SQLITE_OK ? st_sqlerr(st, rc) : step_out_items(st, s, peer_id, fn, arg);
	st_stmt_put(st, S_UNACKED, s);
	return ret;
}

int hl_store_each_out_after(hl_store *st, int64_t peer_id, uint64_t after, size_t limit,
			    int (*fn)(void *arg, const struct hl_item_row *row), void *arg)
{
	int ret = 0, rc = SQLITE_OK;
	if (after >= I64MAX)
		return 0;
	sqlite3_stmt *s = st_stmt_get(st, S_OUT_AFTER, &ret);
	if (!s)
		return ret;
	BIND(sqlite3_bind_int64(s, 1, peer_id));
	BIND(sqlite3_bind_int64(s, 2, (int64_t)after));
	BIND(sqlite3_bind_int64(s, 3, limit > I64MAX ? -1 : (int64_t)limit));
	ret = rc != SQLITE_OK ? st_sqlerr(st, rc) : step_out_items(st, s, peer_id, fn, arg);
	st_stmt_put(st, S_OUT_AFTER, s);
	return ret;
}

int hl_store_in_ranges(hl_store *st, int64_t peer_id, uint64_t base,
		       uint64_t (*ranges)[2], size_t max, size_t *n)
{
	int ret = 0, rc = SQLITE_OK;
	*n = 0;
	if (max == 0 || base >= I64MAX)
		return 0;
	sqlite3_stmt *s = st_stmt_get(st, S_IN_ABOVE, &ret);
	if (!s)
		return ret;
	BIND(sqlite3_bind_int64(s, 1, peer_id));
	BIND(sqlite3_bind_int64(s, 2, (int64_t)base));
	if (rc != SQLITE_OK) {
		ret = st_sqlerr(st, rc);
		goto out;
	}
	/* Coalesce in C and stop at MAX ranges: only the rows the answer
	 * needs are read. */
	size_t k = 0;
	while ((ret = st_step_row(st, s)) > 0) {
		uint64_t seq = 0;
		if ((ret = st_col_u64(st, s, 0, &seq, "items.seq")) < 0)
			break;
		if (k > 0 && seq == ranges[k - 1][1] + 1) {
			ranges[k - 1][1] = seq;
			continue;
		}
		if (k == max)
			break;
		ranges[k][0] = ranges[k][1] = seq;
		k++;
	}
	if (ret >= 0) {
		*n = k;
		ret = 0;
	}
out:
	st_stmt_put(st, S_IN_ABOVE, s);
	return ret;
}

int hl_store_out_summary(hl_store *st, int64_t peer_id, uint64_t after,
			 struct hl_out_summary *out)
{
	int ret = 0, rc;
	memset(out, 0, sizeof(*out));
	sqlite3_stmt *s = st_stmt_get(st, S_OUT_SUMMARY, &ret);
	if (!s)
		return ret;
	rc = sqlite3_bind_int64(s, 1, peer_id);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int64(s, 2, (int64_t)(after > INT64_MAX ? INT64_MAX : after));
	if (rc != SQLITE_OK) {
		ret = st_sqlerr(st, rc);
		goto out;
	}
	if ((ret = st_step_row(st, s)) <= 0) {
		ret = ret < 0 ? ret : HL_ESTORE;
		goto out;
	}
	if ((ret = st_col_u64(st, s, 0, &out->unacked, "count")) < 0 ||
	    (ret = st_col_u64(st, s, 1, &out->max_seq, "items.seq")) < 0 ||
	    (ret = st_col_u64(st, s, 2, &out->after, "count")) < 0 ||
	    (ret = st_col_u64(st, s, 3, &out->flash_after, "count")) < 0)
		goto out;
	ret = 0;
out:
	st_stmt_put(st, S_OUT_SUMMARY, s);
	return ret;
}

/* ---- the chain rules' lookups (chain/accept.h) ---- */

/* The item of statement ID (peer_id, dir, seq bound) into ROW and BUF:
 * the nearest that records a head (hl_store_head_item_near), or the last
 * rotation below SEQ (keys.c). */
int st_item_near(hl_store *st, enum stmt_id id, int64_t peer_id, enum hl_dir dir,
		 uint64_t seq, struct hl_item_row *row, uint8_t *buf, size_t cap)
{
	int ret = 0, rc = SQLITE_OK;
	memset(row, 0, sizeof(*row));
	if (!st_dir_ok(dir) || seq > I64MAX)
		return st_fail(st, HL_EINVAL, "bad position (dir %d, seq %" PRIu64 ")", (int)dir, seq);
	sqlite3_stmt *s = st_stmt_get(st, id, &ret);
	if (!s)
		return ret;
	BIND(sqlite3_bind_int64(s, 1, peer_id));
	BIND(sqlite3_bind_int(s, 2, (int)dir));
	BIND(sqlite3_bind_int64(s, 3, (int64_t)seq));
	const uint8_t *p = NULL;
	size_t n = 0;
	if (rc != SQLITE_OK)
		ret = st_sqlerr(st, rc);
	else if ((ret = st_step_row(st, s)) == 0)
		ret = HL_ENOTFOUND;
	else if (ret > 0 && (ret = st_col_u64(st, s, 0, &row->seq, "items.seq")) == 0 &&
		 (ret = st_col_item(st, s, 1, &p, &n, "items.encoded")) == 0) {
		if (n > cap) {
			ret = st_fail(st, HL_ETOOBIG, "item of %zu bytes", n);
		} else {
			memcpy(buf, p, n);
			row->encoded = buf;
			row->encoded_len = n;
			row->peer_id = peer_id;
			row->dir = dir;
		}
	}
	st_stmt_put(st, id, s);
	return ret < 0 ? ret : 0;
}

int hl_store_head_item_near(hl_store *st, int64_t peer_id, enum hl_dir dir, uint64_t seq,
			    bool above, struct hl_item_row *row, uint8_t *buf, size_t cap)
{
	return st_item_near(st, above ? S_HEAD_ABOVE : S_HEAD_BELOW, peer_id, dir, seq, row,
			    buf, cap);
}

int hl_store_out_entry(hl_store *st, int64_t peer_id, uint64_t seq, enum hl_item_kind *kind,
		       uint8_t hash[static HL_HASH_LEN], int *msg_state)
{
	int ret = 0, rc = SQLITE_OK;
	*msg_state = -1;
	if (seq < 1 || seq > I64MAX)
		return HL_ENOTFOUND;
	sqlite3_stmt *s = st_stmt_get(st, S_OUT_ENTRY, &ret);
	if (!s)
		return ret;
	BIND(sqlite3_bind_int64(s, 1, peer_id));
	BIND(sqlite3_bind_int64(s, 2, (int64_t)seq));
	int64_t v;
	if (rc != SQLITE_OK)
		ret = st_sqlerr(st, rc);
	else if ((ret = st_step_row(st, s)) == 0)
		ret = HL_ENOTFOUND;
	else if (ret > 0 && (ret = st_col_int(st, s, 0, 0, HL_ITEM_KIND_MAX, &v, "items.kind")) == 0 &&
		 (ret = st_col_blob(st, s, 1, hash, HL_HASH_LEN, "items.hash")) == 0) {
		*kind = (enum hl_item_kind)v;
		if (sqlite3_column_type(s, 2) != SQLITE_NULL &&
		    (ret = st_col_int(st, s, 2, 0, HL_MSG_REFUSED_IN, &v, "messages.state")) == 0)
			*msg_state = (int)v;
	}
	st_stmt_put(st, S_OUT_ENTRY, s);
	return ret < 0 ? ret : 0;
}

int hl_store_count_tombstones(hl_store *st, int64_t peer_id, uint64_t *n)
{
	return st_peer_count(st, "SELECT count(*) FROM items WHERE peer_id = ?1 AND dir = 1"
			     " AND kind = 0", peer_id, n);
}

/* ---- the record's walk of a chain (prepared per call: once per export) ---- */

static int chain_row(hl_store *st, sqlite3_stmt *s, struct hl_chain_row *row)
{
	int64_t kind = 0, refused = 0;
	int ret;
	memset(row, 0, sizeof(*row));
	if ((ret = st_col_u64(st, s, 0, &row->seq, "items.seq")) < 0 ||
	    (ret = st_col_int(st, s, 1, 0, 255, &kind, "items.kind")) < 0 ||
	    (ret = st_col_blob(st, s, 2, row->hash, HL_HASH_LEN, "items.hash")) < 0)
		return ret;
	row->kind = (enum hl_item_kind)kind;
	if (kind == 0) {
		if (sqlite3_column_type(s, 3) != SQLITE_NULL)
			return st_corrupt(st, "items.encoded", "is set for a tombstone");
		if ((ret = st_col_int(st, s, 4, 1, 255, &refused, "items.refused")) < 0)
			return ret;
		row->refused = (unsigned)refused;
		return 0;
	}
	if (sqlite3_column_type(s, 3) != SQLITE_BLOB)
		return st_corrupt(st, "items.encoded", "is not a blob");
	row->encoded = sqlite3_column_blob(s, 3);
	int n = sqlite3_column_bytes(s, 3);
	if (n <= 0 || n > HL_ITEM_MAX || !row->encoded)
		return st_corrupt(st, "items.encoded", "has a bad length");
	row->encoded_len = (size_t)n;
	return 0;
}

int hl_store_each_chain_item(hl_store *st, int64_t peer_id, enum hl_dir dir,
			     int (*fn)(void *arg, const struct hl_chain_row *row), void *arg)
{
	sqlite3_stmt *s = NULL;
	int ret = 0, rc;
	if (!st_dir_ok(dir))
		return st_fail(st, HL_EINVAL, "bad direction %d", (int)dir);
	rc = sqlite3_prepare_v2(st->db, "SELECT seq, kind, hash, encoded, refused FROM items"
				" WHERE peer_id = ?1 AND dir = ?2 ORDER BY seq", -1, &s, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int64(s, 1, peer_id);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int(s, 2, (int)dir);
	if (rc != SQLITE_OK) {
		ret = st_sqlerr(st, rc);
		goto out;
	}
	while ((ret = st_step_row(st, s)) > 0) {
		struct hl_chain_row row;
		if ((ret = chain_row(st, s, &row)) < 0)
			break;
		if ((ret = fn(arg, &row)) != 0)
			break;
	}
out:
	sqlite3_finalize(s);
	return ret < 0 ? ret : 0;
}

/* ---- equivocation evidence ---- */

int hl_store_insert_equivocation(hl_store *st, const struct hl_equivocation_row *row)
{
	sqlite3_stmt *s = NULL;
	int rc = SQLITE_OK, ret;
	if (row->seq < 1 || row->seq > I64MAX || !row->first_item || !row->second_item ||
	    row->first_len == 0 || row->first_len > HL_ITEM_MAX || row->second_len == 0 ||
	    row->second_len > HL_ITEM_MAX)
		return st_fail(st, HL_EINVAL, "bad equivocation row (seq %" PRIu64 ")", row->seq);
	if ((ret = st_adhoc(st, "INSERT INTO equivocations (peer_id, seq, first_hash, first_item,"
			    " second_hash, second_item, detected_at) VALUES (?1, ?2, ?3, ?4, ?5,"
			    " ?6, ?7)", &s)) < 0)
		return ret;
	BIND(sqlite3_bind_int64(s, 1, row->peer_id));
	BIND(sqlite3_bind_int64(s, 2, (int64_t)row->seq));
	BIND(sqlite3_bind_blob(s, 3, row->first_hash, HL_HASH_LEN, SQLITE_STATIC));
	BIND(sqlite3_bind_blob(s, 4, row->first_item, (int)row->first_len, SQLITE_STATIC));
	BIND(sqlite3_bind_blob(s, 5, row->second_hash, HL_HASH_LEN, SQLITE_STATIC));
	BIND(sqlite3_bind_blob(s, 6, row->second_item, (int)row->second_len, SQLITE_STATIC));
	BIND(sqlite3_bind_int64(s, 7, row->detected_at));
	ret = rc != SQLITE_OK ? st_sqlerr(st, rc) : st_step_done(st, s);
	sqlite3_finalize(s);
	return ret;
}

int hl_store_each_equivocation(hl_store *st, int64_t peer_id,
			       int (*fn)(void *arg, const struct hl_equivocation_row *row),
			       void *arg)
{
	sqlite3_stmt *s = NULL;
	int ret;
	if ((ret = st_adhoc(st, "SELECT peer_id, seq, first_hash, first_item, second_hash,"
			    " second_item, detected_at FROM equivocations"
			    " WHERE ?1 = 0 OR peer_id = ?1 ORDER BY peer_id, seq, detected_at", &s)) < 0)
		return ret;
	int rc = sqlite3_bind_int64(s, 1, peer_id);
	if (rc != SQLITE_OK) {
		ret = st_sqlerr(st, rc);
		goto out;
	}
	while ((ret = st_step_row(st, s)) > 0) {
		struct hl_equivocation_row row = { 0 };
		if ((ret = st_col_int(st, s, 0, 1, INT64_MAX, &row.peer_id, "equivocations.peer_id")) < 0 ||
		    (ret = st_col_u64(st, s, 1, &row.seq, "equivocations.seq")) < 0 ||
		    (ret = st_col_blob(st, s, 2, row.first_hash, HL_HASH_LEN, "equivocations.first_hash")) < 0 ||
		    (ret = st_col_item(st, s, 3, &row.first_item, &row.first_len, "equivocations.first_item")) < 0 ||
		    (ret = st_col_blob(st, s, 4, row.second_hash, HL_HASH_LEN, "equivocations.second_hash")) < 0 ||
		    (ret = st_col_item(st, s, 5, &row.second_item, &row.second_len, "equivocations.second_item")) < 0 ||
		    (ret = st_col_int(st, s, 6, INT64_MIN, INT64_MAX, &row.detected_at,
				      "equivocations.detected_at")) < 0)
			break;
		if ((ret = fn(arg, &row)) != 0)
			break;
	}
	if (ret > 0)
		ret = 0;
out:
	sqlite3_finalize(s);
	return ret;
}

int hl_store_count_equivocations(hl_store *st, int64_t peer_id, uint64_t *n)
{
	return st_peer_count(st, "SELECT count(*) FROM equivocations WHERE ?1 = 0 OR peer_id = ?1",
			     peer_id, n);
}
