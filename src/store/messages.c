/* store/messages.c — the messages and attachments tables: one row per
 * message, either direction (metadata, salt, subject, body, state), and
 * one per attachment (name, size, hash, file path, bytes durable).  A
 * message's signed item is stored first (items.c).  Here: inserting and
 * reading messages, their states (which only move forward: invariant 4),
 * bodies and parts as they arrive, and the delivery engine's and the
 * chain rules' queries over them. */
#include "store/store_int.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "util/err.h"
#include "util/mem.h"

#define MSG_COLS \
	"m.id, m.peer_id, p.name, m.dir, m.seq, m.precedence, m.class_seq, m.salt," \
	" m.subject, m.body, m.body_size, m.sent_at, m.received_at, m.delivered_at," \
	" m.state, m.reason, m.unread, m.n_att, m.body_done, m.purged_at"

#define MSG_NCOLS 20 /* the columns of MSG_COLS */

const char *const st_sql_messages[S_COUNT] = {
	[S_NEXT_CLASS_SEQ] = "SELECT max(class_seq) FROM messages"
			     " WHERE peer_id = ?1 AND dir = 0 AND precedence = ?2",
	[S_MSG_INSERT] = "INSERT INTO messages (id, peer_id, dir, seq, precedence, class_seq,"
			 " salt, subject, body, body_size, body_done, n_att, sent_at,"
			 " received_at, delivered_at, state, reason, unread) VALUES (?1, ?2,"
			 " ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16,"
			 " ?17, ?18)",
	[S_ATT_INSERT] = "INSERT INTO attachments (msg_id, idx, name, size, hash, path, done)"
			 " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
	[S_MSG_BY_ID] = "SELECT " MSG_COLS " FROM messages m JOIN peers p ON p.id = m.peer_id"
			" WHERE m.id = ?1",
	[S_MSG_PREFIX] = "SELECT id FROM messages WHERE id BETWEEN ?1 AND ?2 LIMIT 2",
	[S_ATT_BY_MSG] = "SELECT idx, name, size, hash, path, done FROM attachments"
			 " WHERE msg_id = ?1 ORDER BY idx",
	/* The ORDER BY is the messages_inbox index's own order (it ends with
	 * the rowid n), so the inbox is read without a sort. */
	[S_EACH_IN] = "SELECT " MSG_COLS " FROM messages m JOIN peers p ON p.id = m.peer_id"
		      " WHERE m.dir = 1 AND (?1 = 0 OR m.peer_id = ?1)"
		      " AND (?2 = 0 OR m.unread = 1) AND (?3 = 0 OR m.state = 11)"
		      " ORDER BY m.received_at, m.seq, m.n",
	[S_EACH_OUT] = "SELECT " MSG_COLS " FROM messages m JOIN peers p ON p.id = m.peer_id"
		       " WHERE m.dir = 0 AND (?1 = 0 OR m.peer_id = ?1)"
		       " AND (?2 = 0 OR m.unread = 1) ORDER BY m.n",
	/* ?5 is a bit mask of the states the message may move from (invariant
	 * 4); the first time reached is kept when a transition repeats. */
	[S_SET_STATE] = "UPDATE messages SET state = ?2, reason = coalesce(?3, reason),"
			" delivered_at = CASE WHEN ?2 = 2 AND delivered_at = 0 THEN ?4"
			" ELSE delivered_at END,"
			" received_at = CASE WHEN ?2 = 11 AND received_at = 0 THEN ?4"
			" ELSE received_at END"
			" WHERE id = ?1 AND (?5 >> state) & 1",
	[S_MSG_LOOKUP] = "SELECT dir, state, body_size FROM messages WHERE id = ?1",
	[S_MARK_READ] = "UPDATE messages SET unread = 0 WHERE id = ?1 AND unread = 1",
	[S_SET_BODY] = "UPDATE messages SET body = ?2, body_done = body_size"
		       " WHERE id = ?1 AND body_size = ?3",
	[S_SET_BODY_DONE] = "UPDATE messages SET body_done = ?2 WHERE id = ?1 AND ?2 <= body_size",
	[S_SET_PART_DONE] = "UPDATE attachments SET done = ?3"
			    " WHERE msg_id = ?1 AND idx = ?2 AND ?3 <= size",
	[S_ATT_LOOKUP] = "SELECT size FROM attachments WHERE msg_id = ?1 AND idx = ?2",
	[S_MSG_BY_SEQ] = "SELECT " MSG_COLS " FROM messages m JOIN peers p ON p.id = m.peer_id"
			 " WHERE m.peer_id = ?1 AND m.dir = ?2 AND m.seq = ?3",
	/* The OUT item to send and, when it is a message, its row: one
	 * statement (one read transaction outside a burst), not two.  The
	 * message columns come first, so read_msg reads them in place. */
	[S_OUT_SEND] = "SELECT " MSG_COLS ", i.kind, i.hash, i.encoded, i.precedence, i.acked,"
		       " i.stored_at FROM items i"
		       " LEFT JOIN messages m ON m.peer_id = i.peer_id AND m.dir = 0 AND m.seq = i.seq"
		       " LEFT JOIN peers p ON p.id = m.peer_id"
		       " WHERE i.peer_id = ?1 AND i.dir = 0 AND i.seq = ?2",
	[S_OUT_WITH_PARTS] = "SELECT " MSG_COLS " FROM messages m JOIN peers p ON p.id = m.peer_id"
			     " WHERE m.peer_id = ?1 AND m.dir = 0 AND m.state = 1"
			     " AND (m.n_att > 0 OR m.body_size > ?2) ORDER BY m.seq",
	[S_IN_BY_STATE] = "SELECT " MSG_COLS " FROM messages m JOIN peers p ON p.id = m.peer_id"
			  " WHERE m.peer_id = ?1 AND m.dir = 1 AND m.state = ?2 ORDER BY m.seq",
	[S_IN_CLASS_STATE] = "SELECT state FROM messages WHERE peer_id = ?1 AND dir = 1"
			     " AND precedence = ?2 AND class_seq = ?3",
	[S_MSG_EXISTS] = "SELECT 1 FROM messages WHERE id = ?1",
	/* HL_MSG_DELIVERED (2) from queued (0) or sent (1): invariant 4 */
	[S_MARK_DELIVERED] = "UPDATE messages SET state = 2, delivered_at = CASE WHEN"
			     " delivered_at = 0 THEN ?3 ELSE delivered_at END"
			     " WHERE peer_id = ?1 AND dir = 0 AND seq = ?2 AND state IN (0, 1)"
			     " AND EXISTS (SELECT 1 FROM items WHERE peer_id = ?1 AND dir = 0"
			     " AND seq = ?2 AND hash = ?4)"
			     " RETURNING id",
	/* The chain rules' lookups.  The class neighbours walk the UNIQUE
	 * (peer_id, dir, precedence, class_seq) index one step each way. */
	[S_CLASS_BELOW] = "SELECT seq, class_seq FROM messages WHERE peer_id = ?1 AND dir = 1"
			  " AND precedence = ?2 AND class_seq < ?3 ORDER BY class_seq DESC LIMIT 1",
	[S_CLASS_ABOVE] = "SELECT seq, class_seq FROM messages WHERE peer_id = ?1 AND dir = 1"
			  " AND precedence = ?2 AND class_seq >= ?3 ORDER BY class_seq LIMIT 1",
};

const char *hl_msg_state_name(enum hl_msg_state s)
{
	switch (s) {
	case HL_MSG_QUEUED: return "queued";
	case HL_MSG_SENT: return "sent";
	case HL_MSG_DELIVERED: return "delivered";
	case HL_MSG_REFUSED: return "refused";
	case HL_MSG_REFUSED_IN: return "refused";
	case HL_MSG_PARTIAL: return "partial";
	case HL_MSG_COMPLETE: return "complete";
	}
	return NULL;
}

void hl_msg_row_clear(struct hl_msg_row *row)
{
	if (!row)
		return;
	free(row->subject);
	free(row->body);
	free(row->reason);
	free(row->att);
	row->subject = NULL;
	row->body = NULL;
	row->reason = NULL;
	row->att = NULL;
	row->n_att = 0;
}

static bool state_ok(enum hl_dir dir, int state)
{
	if (dir == HL_DIR_OUT)
		return state >= HL_MSG_QUEUED && state <= HL_MSG_REFUSED;
	return state == HL_MSG_PARTIAL || state == HL_MSG_COMPLETE || state == HL_MSG_REFUSED_IN;
}

/* ---- writing ---- */

int hl_store_next_class_seq(hl_store *st, int64_t peer_id, unsigned prec, uint64_t *out)
{
	int ret = 0, rc = SQLITE_OK;
	if (prec >= HL_PREC_COUNT)
		return st_fail(st, HL_EINVAL, "bad precedence %u", prec);
	sqlite3_stmt *s = st_stmt_get(st, S_NEXT_CLASS_SEQ, &ret);
	if (!s)
		return ret;
	BIND(sqlite3_bind_int64(s, 1, peer_id));
	BIND(sqlite3_bind_int(s, 2, (int)prec));
	uint64_t last = 0;
	if (rc != SQLITE_OK)
		ret = st_sqlerr(st, rc);
	else if ((ret = st_step_row(st, s)) > 0 && sqlite3_column_type(s, 0) != SQLITE_NULL)
		ret = st_col_u64(st, s, 0, &last, "messages.class_seq");
	st_stmt_put(st, S_NEXT_CLASS_SEQ, s);
	if (ret < 0)
		return ret;
	if (last >= I64MAX)
		return st_fail(st, HL_ETOOBIG, "class_seq exhausted");
	*out = last + 1;
	return 0;
}

static int att_insert(hl_store *st, const uint8_t id[static HL_MSG_ID_LEN], unsigned idx,
		      const struct hl_att_row *a)
{
	int ret = 0, rc = SQLITE_OK;
	size_t name_len = strnlen(a->name, sizeof(a->name));
	size_t path_len = strnlen(a->path, sizeof(a->path));
	if (name_len == 0 || name_len == sizeof(a->name) || path_len == sizeof(a->path) ||
	    a->size > I64MAX || a->done > a->size)
		return st_fail(st, HL_EINVAL, "bad attachment %u", idx);
	sqlite3_stmt *s = st_stmt_get(st, S_ATT_INSERT, &ret);
	if (!s)
		return ret;
	BIND(sqlite3_bind_blob(s, 1, id, HL_MSG_ID_LEN, SQLITE_STATIC));
	BIND(sqlite3_bind_int(s, 2, (int)idx));
	BIND(sqlite3_bind_text(s, 3, a->name, (int)name_len, SQLITE_STATIC));
	BIND(sqlite3_bind_int64(s, 4, (int64_t)a->size));
	BIND(sqlite3_bind_blob(s, 5, a->hash, HL_HASH_LEN, SQLITE_STATIC));
	BIND(sqlite3_bind_text(s, 6, a->path, (int)path_len, SQLITE_STATIC));
	BIND(sqlite3_bind_int64(s, 7, (int64_t)a->done));
	ret = rc != SQLITE_OK ? st_sqlerr(st, rc) : st_step_done(st, s);
	st_stmt_put(st, S_ATT_INSERT, s);
	return ret;
}

static int msg_insert(hl_store *st, const struct hl_msg_row *row)
{
	int ret = 0, rc = SQLITE_OK;
	const char *subject = row->subject ? row->subject : "";
	size_t subject_len = strlen(subject);
	uint64_t body_done = row->body ? row->body_size : row->body_done;
	if (subject_len > HL_SUBJECT_MAX)
		return st_fail(st, HL_ETOOBIG, "subject of %zu bytes", subject_len);
	if (row->body_size > HL_BODY_MAX)
		return st_fail(st, HL_ETOOBIG, "body of %" PRIu64 " bytes", row->body_size);
	if (body_done > row->body_size)
		return st_fail(st, HL_EINVAL, "body_done %" PRIu64 " over body_size %" PRIu64,
			       body_done, row->body_size);
	sqlite3_stmt *s = st_stmt_get(st, S_MSG_INSERT, &ret);
	if (!s)
		return ret;
	BIND(sqlite3_bind_blob(s, 1, row->id, HL_MSG_ID_LEN, SQLITE_STATIC));
	BIND(sqlite3_bind_int64(s, 2, row->peer_id));
	BIND(sqlite3_bind_int(s, 3, (int)row->dir));
	BIND(sqlite3_bind_int64(s, 4, (int64_t)row->seq));
	BIND(sqlite3_bind_int(s, 5, (int)row->precedence));
	BIND(sqlite3_bind_int64(s, 6, (int64_t)row->class_seq));
	BIND(sqlite3_bind_blob(s, 7, row->salt, HL_SALT_LEN, SQLITE_STATIC));
	BIND(sqlite3_bind_text(s, 8, subject, (int)subject_len, SQLITE_STATIC));
	if (!row->body)
		BIND(sqlite3_bind_null(s, 9));
	else if (row->body_size == 0) /* a NULL pointer would bind NULL */
		BIND(sqlite3_bind_zeroblob(s, 9, 0));
	else
		BIND(sqlite3_bind_blob64(s, 9, row->body, row->body_size, SQLITE_STATIC));
	BIND(sqlite3_bind_int64(s, 10, (int64_t)row->body_size));
	BIND(sqlite3_bind_int64(s, 11, (int64_t)body_done));
	BIND(sqlite3_bind_int(s, 12, (int)row->n_att));
	BIND(sqlite3_bind_int64(s, 13, row->sent_at));
	BIND(sqlite3_bind_int64(s, 14, row->received_at));
	BIND(sqlite3_bind_int64(s, 15, row->delivered_at));
	BIND(sqlite3_bind_int(s, 16, (int)row->state));
	if (row->reason)
		BIND(sqlite3_bind_text(s, 17, row->reason, -1, SQLITE_STATIC));
	else
		BIND(sqlite3_bind_null(s, 17));
	BIND(sqlite3_bind_int(s, 18, row->dir == HL_DIR_IN)); /* IN starts unread */
	ret = rc != SQLITE_OK ? st_sqlerr(st, rc) : st_step_done(st, s);
	st_stmt_put(st, S_MSG_INSERT, s);
	return ret;
}

int hl_store_insert_message(hl_store *st, const struct hl_msg_row *row)
{
	if (!st_dir_ok(row->dir) || !state_ok(row->dir, (int)row->state) || row->seq < 1 ||
	    row->seq > I64MAX || row->precedence >= HL_PREC_COUNT || row->class_seq < 1 ||
	    row->class_seq > I64MAX || row->n_att > HL_MAX_ATTACHMENTS ||
	    (row->n_att > 0 && !row->att))
		return st_fail(st, HL_EINVAL, "bad message row (dir %d, state %d, seq %" PRIu64
			       ", precedence %u, class_seq %" PRIu64 ", %u attachments)",
			       (int)row->dir, (int)row->state, row->seq, row->precedence,
			       row->class_seq, row->n_att);
	/* Without attachments it is one INSERT (its quota trigger included),
	 * which SQLite applies whole or not at all: no savepoint needed (its
	 * two extra statements were ~7% of a receiver's time). */
	if (row->n_att == 0)
		return msg_insert(st, row);
	struct st_op op;
	int ret = st_op_begin(st, &op);
	if (ret < 0)
		return ret;
	ret = msg_insert(st, row);
	/* Attachment i is the item's i-th: its position is its index. */
	for (unsigned i = 0; ret == 0 && i < row->n_att; i++)
		ret = att_insert(st, row->id, i, &row->att[i]);
	return st_op_end(st, &op, ret);
}

/* ---- reading ---- */

/* Reads the attachments of ROW (N_ATT expected) from the store. */
static int read_atts(hl_store *st, struct hl_msg_row *row, unsigned n_att)
{
	int ret = 0;
	if (n_att == 0)
		return 0;
	sqlite3_stmt *s = st_stmt_get(st, S_ATT_BY_MSG, &ret);
	if (!s)
		return ret;
	int rc = sqlite3_bind_blob(s, 1, row->id, HL_MSG_ID_LEN, SQLITE_STATIC);
	if (rc != SQLITE_OK) {
		ret = st_sqlerr(st, rc);
		goto out;
	}
	row->att = xcalloc(n_att, sizeof(*row->att));
	unsigned k = 0;
	while ((ret = st_step_row(st, s)) > 0) {
		struct hl_att_row *a = &row->att[k];
		int64_t idx;
		if (k == n_att) {
			ret = st_corrupt(st, "attachments", "has more rows than messages.n_att");
			break;
		}
		if ((ret = st_col_int(st, s, 0, k, k, &idx, "attachments.idx")) < 0 ||
		    (ret = st_col_text(st, s, 1, a->name, sizeof(a->name), "attachments.name")) < 0 ||
		    (ret = st_col_u64(st, s, 2, &a->size, "attachments.size")) < 0 ||
		    (ret = st_col_blob(st, s, 3, a->hash, HL_HASH_LEN, "attachments.hash")) < 0 ||
		    (ret = st_col_text(st, s, 4, a->path, sizeof(a->path), "attachments.path")) < 0 ||
		    (ret = st_col_u64(st, s, 5, &a->done, "attachments.done")) < 0)
			break;
		a->idx = (unsigned)idx;
		k++;
	}
	if (ret == 0 && k != n_att)
		ret = st_corrupt(st, "attachments", "has fewer rows than messages.n_att");
	if (ret == 0)
		row->n_att = n_att;
out:
	st_stmt_put(st, S_ATT_BY_MSG, s);
	return ret;
}

/* Fills ROW (zeroed first) from a MSG_COLS row of S, attachments included.
 * On error ROW holds no allocation. */
static int read_msg(hl_store *st, sqlite3_stmt *s, struct hl_msg_row *row)
{
	int ret;
	int64_t v;
	memset(row, 0, sizeof(*row));
	if ((ret = st_col_blob(st, s, 0, row->id, HL_MSG_ID_LEN, "messages.id")) < 0 ||
	    (ret = st_col_int(st, s, 1, 1, INT64_MAX, &row->peer_id, "messages.peer_id")) < 0 ||
	    (ret = st_col_text(st, s, 2, row->peer_name, sizeof(row->peer_name), "peers.name")) < 0 ||
	    (ret = st_col_int(st, s, 3, 0, 1, &v, "messages.dir")) < 0)
		goto out;
	row->dir = (enum hl_dir)v;
	if ((ret = st_col_u64(st, s, 4, &row->seq, "messages.seq")) < 0 ||
	    (ret = st_col_int(st, s, 5, 0, HL_PREC_COUNT - 1, &v, "messages.precedence")) < 0)
		goto out;
	row->precedence = (unsigned)v;
	if ((ret = st_col_u64(st, s, 6, &row->class_seq, "messages.class_seq")) < 0 ||
	    (ret = st_col_blob(st, s, 7, row->salt, HL_SALT_LEN, "messages.salt")) < 0 ||
	    (ret = st_col_text_dup(st, s, 8, false, &row->subject, "messages.subject")) < 0 ||
	    (ret = st_col_u64(st, s, 10, &row->body_size, "messages.body_size")) < 0)
		goto out;
	int type = sqlite3_column_type(s, 9);
	if (type == SQLITE_BLOB) {
		const void *p = sqlite3_column_blob(s, 9);
		int n = sqlite3_column_bytes(s, 9);
		if (n < 0 || (uint64_t)n != row->body_size) {
			ret = st_corrupt(st, "messages.body", "does not match body_size");
			goto out;
		}
		if (!p && n > 0) {
			ret = st_sqlerr(st, sqlite3_errcode(st->db));
			goto out;
		}
		row->body = xmalloc((size_t)n);
		if (n > 0)
			memcpy(row->body, p, (size_t)n);
	} else if (type != SQLITE_NULL) {
		ret = st_corrupt(st, "messages.body", "is not a blob");
		goto out;
	}
	if ((ret = st_col_int(st, s, 11, INT64_MIN, INT64_MAX, &row->sent_at, "messages.sent_at")) < 0 ||
	    (ret = st_col_int(st, s, 12, INT64_MIN, INT64_MAX, &row->received_at,
			      "messages.received_at")) < 0 ||
	    (ret = st_col_int(st, s, 13, INT64_MIN, INT64_MAX, &row->delivered_at,
			      "messages.delivered_at")) < 0 ||
	    (ret = st_col_int(st, s, 14, 0, HL_MSG_REFUSED_IN, &v, "messages.state")) < 0)
		goto out;
	if (!state_ok(row->dir, (int)v)) {
		ret = st_corrupt(st, "messages.state", "does not fit the direction");
		goto out;
	}
	row->state = (enum hl_msg_state)v;
	if ((ret = st_col_text_dup(st, s, 15, true, &row->reason, "messages.reason")) < 0 ||
	    (ret = st_col_int(st, s, 16, 0, 1, &v, "messages.unread")) < 0)
		goto out;
	row->unread = v != 0;
	int64_t n_att;
	if ((ret = st_col_int(st, s, 17, 0, HL_MAX_ATTACHMENTS, &n_att, "messages.n_att")) < 0 ||
	    (ret = st_col_u64(st, s, 18, &row->body_done, "messages.body_done")) < 0)
		goto out;
	if (row->body_done > row->body_size) {
		ret = st_corrupt(st, "messages.body_done", "is over body_size");
		goto out;
	}
	if ((ret = st_col_int(st, s, 19, 0, INT64_MAX, &row->purged_at, "messages.purged_at")) < 0)
		goto out;
	ret = read_atts(st, row, (unsigned)n_att);
out:
	if (ret < 0) {
		hl_msg_row_clear(row);
		memset(row, 0, sizeof(*row));
	}
	return ret;
}

/* Steps S over MSG_COLS rows, FN per row (the row's allocations are freed
 * after FN returns).  FN returns nonzero to stop; a negative value is
 * returned. */
static int step_msgs(hl_store *st, sqlite3_stmt *s,
		     int (*fn)(void *arg, const struct hl_msg_row *row), void *arg)
{
	int ret;
	while ((ret = st_step_row(st, s)) > 0) {
		struct hl_msg_row row;
		if ((ret = read_msg(st, s, &row)) < 0)
			break;
		ret = fn(arg, &row);
		hl_msg_row_clear(&row);
		if (ret != 0)
			break;
	}
	return ret > 0 ? 0 : ret;
}

int hl_store_get_message_by_id(hl_store *st, const uint8_t id[static HL_MSG_ID_LEN],
			       struct hl_msg_row *row)
{
	int ret = 0;
	memset(row, 0, sizeof(*row));
	sqlite3_stmt *s = st_stmt_get(st, S_MSG_BY_ID, &ret);
	if (!s)
		return ret;
	int rc = sqlite3_bind_blob(s, 1, id, HL_MSG_ID_LEN, SQLITE_STATIC);
	if (rc != SQLITE_OK)
		ret = st_sqlerr(st, rc);
	else if ((ret = st_step_row(st, s)) == 0)
		ret = st_fail(st, HL_ENOTFOUND, "no such message");
	else if (ret > 0)
		ret = read_msg(st, s, row);
	st_stmt_put(st, S_MSG_BY_ID, s);
	return ret;
}

int hl_store_message_exists(hl_store *st, const uint8_t id[static HL_MSG_ID_LEN], bool *exists)
{
	int ret = 0;
	*exists = false;
	sqlite3_stmt *s = st_stmt_get(st, S_MSG_EXISTS, &ret);
	if (!s)
		return ret;
	int rc = sqlite3_bind_blob(s, 1, id, HL_MSG_ID_LEN, SQLITE_STATIC);
	if (rc != SQLITE_OK)
		ret = st_sqlerr(st, rc);
	else if ((ret = st_step_row(st, s)) > 0)
		*exists = true;
	st_stmt_put(st, S_MSG_EXISTS, s);
	return ret < 0 ? ret : 0;
}

int hl_store_get_message(hl_store *st, const char *id_prefix_hex, struct hl_msg_row *row)
{
	static const struct st_id_kind kind = { "a", "message", "messages.id", HL_MSG_ID_LEN };
	uint8_t id[HL_MSG_ID_LEN];
	int ret = 0;
	memset(row, 0, sizeof(*row));
	sqlite3_stmt *s = st_stmt_get(st, S_MSG_PREFIX, &ret);
	if (!s)
		return ret;
	ret = st_id_by_prefix(st, s, &kind, id_prefix_hex, id);
	st_stmt_put(st, S_MSG_PREFIX, s);
	return ret < 0 ? ret : hl_store_get_message_by_id(st, id, row);
}

int hl_store_each_message(hl_store *st, const struct hl_msg_filter *f,
			  int (*fn)(void *arg, const struct hl_msg_row *row), void *arg)
{
	int ret = 0, rc = SQLITE_OK;
	if (!st_dir_ok(f->dir))
		return st_fail(st, HL_EINVAL, "bad direction %d", (int)f->dir);
	enum stmt_id sid = f->dir == HL_DIR_IN ? S_EACH_IN : S_EACH_OUT;
	sqlite3_stmt *s = st_stmt_get(st, sid, &ret);
	if (!s)
		return ret;
	BIND(sqlite3_bind_int64(s, 1, f->peer_id));
	BIND(sqlite3_bind_int(s, 2, f->unread_only));
	if (f->dir == HL_DIR_IN)
		BIND(sqlite3_bind_int(s, 3, f->visible_only));
	ret = rc != SQLITE_OK ? st_sqlerr(st, rc) : step_msgs(st, s, fn, arg);
	st_stmt_put(st, sid, s);
	return ret;
}

/* For the record export: run once per export, so prepared per call rather
 * than kept in the statement cache. */
int hl_store_each_link_message(hl_store *st, int64_t peer_id,
			       int (*fn)(void *arg, const struct hl_link_msg *m), void *arg)
{
	sqlite3_stmt *s = NULL;
	int ret = 0, rc;
	rc = sqlite3_prepare_v2(st->db, "SELECT dir, seq, id, body IS NOT NULL, purged_at"
				" FROM messages WHERE peer_id = ?1 ORDER BY dir, seq", -1, &s, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int64(s, 1, peer_id);
	if (rc != SQLITE_OK) {
		ret = st_sqlerr(st, rc);
		goto out;
	}
	while ((ret = st_step_row(st, s)) > 0) {
		struct hl_link_msg m;
		int64_t dir = 0;
		memset(&m, 0, sizeof(m));
		if ((ret = st_col_int(st, s, 0, 0, 1, &dir, "messages.dir")) < 0 ||
		    (ret = st_col_u64(st, s, 1, &m.seq, "messages.seq")) < 0 ||
		    (ret = st_col_blob(st, s, 2, m.id, HL_MSG_ID_LEN, "messages.id")) < 0)
			break;
		m.dir = (enum hl_dir)dir;
		m.has_body = sqlite3_column_int(s, 3) != 0;
		if ((ret = st_col_int(st, s, 4, 0, INT64_MAX, &m.purged_at, "messages.purged_at")) < 0)
			break;
		if ((ret = fn(arg, &m)) != 0)
			break;
	}
out:
	sqlite3_finalize(s);
	return ret < 0 ? ret : 0;
}

/* ---- states and parts ---- */

/* Why an UPDATE keyed by message id changed nothing: HL_ENOTFOUND, or 0
 * with the message's direction, state and body size. */
static int msg_lookup(hl_store *st, const uint8_t id[static HL_MSG_ID_LEN], int64_t *dir,
		      int64_t *state, uint64_t *body_size)
{
	int ret = 0;
	sqlite3_stmt *s = st_stmt_get(st, S_MSG_LOOKUP, &ret);
	if (!s)
		return ret;
	int rc = sqlite3_bind_blob(s, 1, id, HL_MSG_ID_LEN, SQLITE_STATIC);
	if (rc != SQLITE_OK)
		ret = st_sqlerr(st, rc);
	else if ((ret = st_step_row(st, s)) == 0)
		ret = st_fail(st, HL_ENOTFOUND, "no such message");
	else if (ret > 0 && (ret = st_col_int(st, s, 0, 0, 1, dir, "messages.dir")) == 0 &&
		 (ret = st_col_int(st, s, 1, 0, HL_MSG_REFUSED_IN, state, "messages.state")) == 0)
		ret = st_col_u64(st, s, 2, body_size, "messages.body_size");
	st_stmt_put(st, S_MSG_LOOKUP, s);
	return ret;
}

/* Runs the UPDATE S (statement ID, bound; RC: the first binding's
 * failure) and puts it back.  *CHANGED: how many rows it changed. */
static int run_update(hl_store *st, enum stmt_id id, sqlite3_stmt *s, int rc, int64_t *changed)
{
	int ret = rc != SQLITE_OK ? st_sqlerr(st, rc) : st_step_done(st, s);
	*changed = sqlite3_changes64(st->db);
	st_stmt_put(st, id, s);
	return ret;
}

/* The states a message may move to STATE from (invariant 4), as a mask. */
static int64_t allowed_from(enum hl_msg_state state)
{
	switch (state) {
	case HL_MSG_SENT: return 1 << HL_MSG_QUEUED;
	case HL_MSG_DELIVERED:
	case HL_MSG_REFUSED: return (1 << HL_MSG_QUEUED) | (1 << HL_MSG_SENT);
	case HL_MSG_COMPLETE:
	case HL_MSG_REFUSED_IN: return 1 << HL_MSG_PARTIAL;
	default: return 0;
	}
}

int hl_store_set_state(hl_store *st, const uint8_t id[static HL_MSG_ID_LEN],
		       enum hl_msg_state state, const char *reason, int64_t at_ms)
{
	int ret = 0, rc = SQLITE_OK;
	if (!hl_msg_state_name(state))
		return st_fail(st, HL_EINVAL, "bad message state %d", (int)state);
	sqlite3_stmt *s = st_stmt_get(st, S_SET_STATE, &ret);
	if (!s)
		return ret;
	BIND(sqlite3_bind_blob(s, 1, id, HL_MSG_ID_LEN, SQLITE_STATIC));
	BIND(sqlite3_bind_int(s, 2, (int)state));
	if (reason)
		BIND(sqlite3_bind_text(s, 3, reason, -1, SQLITE_STATIC));
	else
		BIND(sqlite3_bind_null(s, 3));
	BIND(sqlite3_bind_int64(s, 4, at_ms));
	BIND(sqlite3_bind_int64(s, 5, allowed_from(state)));
	int64_t changed = 0;
	ret = run_update(st, S_SET_STATE, s, rc, &changed);
	if (ret < 0 || changed > 0)
		return ret;
	/* Nothing moved: no such message, the wrong direction, or a state the
	 * message already passed (a no-op, invariant 4). */
	int64_t dir, cur;
	uint64_t size;
	if ((ret = msg_lookup(st, id, &dir, &cur, &size)) < 0)
		return ret;
	if (!state_ok((enum hl_dir)dir, (int)state))
		return st_fail(st, HL_EINVAL, "state %s does not fit a%s message",
			       hl_msg_state_name(state), dir == HL_DIR_IN ? "n IN" : "n OUT");
	return 0;
}

int hl_store_mark_read(hl_store *st, const uint8_t id[static HL_MSG_ID_LEN])
{
	int ret = 0;
	sqlite3_stmt *s = st_stmt_get(st, S_MARK_READ, &ret);
	if (!s)
		return ret;
	int rc = sqlite3_bind_blob(s, 1, id, HL_MSG_ID_LEN, SQLITE_STATIC);
	int64_t changed = 0;
	ret = run_update(st, S_MARK_READ, s, rc, &changed);
	if (ret < 0 || changed > 0)
		return ret;
	int64_t dir, cur;
	uint64_t size;
	return msg_lookup(st, id, &dir, &cur, &size); /* already read: 0 */
}

int hl_store_set_body(hl_store *st, const uint8_t id[static HL_MSG_ID_LEN],
		      const uint8_t *body, size_t len)
{
	int ret = 0, rc = SQLITE_OK;
	if ((!body && len > 0) || len > HL_BODY_MAX)
		return st_fail(st, HL_EINVAL, "bad body of %zu bytes", len);
	sqlite3_stmt *s = st_stmt_get(st, S_SET_BODY, &ret);
	if (!s)
		return ret;
	BIND(sqlite3_bind_blob(s, 1, id, HL_MSG_ID_LEN, SQLITE_STATIC));
	if (len == 0)
		BIND(sqlite3_bind_zeroblob(s, 2, 0));
	else
		BIND(sqlite3_bind_blob64(s, 2, body, len, SQLITE_STATIC));
	BIND(sqlite3_bind_int64(s, 3, (int64_t)len));
	int64_t changed = 0;
	ret = run_update(st, S_SET_BODY, s, rc, &changed);
	if (ret < 0 || changed > 0)
		return ret;
	int64_t dir, cur;
	uint64_t size;
	if ((ret = msg_lookup(st, id, &dir, &cur, &size)) < 0)
		return ret;
	return st_fail(st, HL_EINVAL, "body of %zu bytes, the item says %" PRIu64, len, size);
}

int hl_store_set_body_done(hl_store *st, const uint8_t id[static HL_MSG_ID_LEN],
			   uint64_t done)
{
	int ret = 0, rc = SQLITE_OK;
	if (done > I64MAX)
		return st_fail(st, HL_EINVAL, "body_done %" PRIu64, done);
	sqlite3_stmt *s = st_stmt_get(st, S_SET_BODY_DONE, &ret);
	if (!s)
		return ret;
	BIND(sqlite3_bind_blob(s, 1, id, HL_MSG_ID_LEN, SQLITE_STATIC));
	BIND(sqlite3_bind_int64(s, 2, (int64_t)done));
	int64_t changed = 0;
	ret = run_update(st, S_SET_BODY_DONE, s, rc, &changed);
	if (ret < 0 || changed > 0)
		return ret;
	int64_t dir, cur;
	uint64_t size;
	if ((ret = msg_lookup(st, id, &dir, &cur, &size)) < 0)
		return ret;
	return st_fail(st, HL_EINVAL, "body_done %" PRIu64 " over body_size %" PRIu64, done, size);
}

int hl_store_set_part_done(hl_store *st, const uint8_t id[static HL_MSG_ID_LEN],
			   unsigned idx, uint64_t done)
{
	int ret = 0, rc = SQLITE_OK;
	if (idx >= HL_MAX_ATTACHMENTS || done > I64MAX)
		return st_fail(st, HL_EINVAL, "attachment %u, done %" PRIu64, idx, done);
	sqlite3_stmt *s = st_stmt_get(st, S_SET_PART_DONE, &ret);
	if (!s)
		return ret;
	BIND(sqlite3_bind_blob(s, 1, id, HL_MSG_ID_LEN, SQLITE_STATIC));
	BIND(sqlite3_bind_int(s, 2, (int)idx));
	BIND(sqlite3_bind_int64(s, 3, (int64_t)done));
	int64_t changed = 0;
	ret = run_update(st, S_SET_PART_DONE, s, rc, &changed);
	if (ret < 0 || changed > 0)
		return ret;
	/* Nothing changed: no such attachment, or DONE over its size. */
	if (!(s = st_stmt_get(st, S_ATT_LOOKUP, &ret)))
		return ret;
	BIND(sqlite3_bind_blob(s, 1, id, HL_MSG_ID_LEN, SQLITE_STATIC));
	BIND(sqlite3_bind_int(s, 2, (int)idx));
	uint64_t size = 0;
	if (rc != SQLITE_OK)
		ret = st_sqlerr(st, rc);
	else if ((ret = st_step_row(st, s)) == 0)
		ret = st_fail(st, HL_ENOTFOUND, "no attachment %u of that message", idx);
	else if (ret > 0 && (ret = st_col_u64(st, s, 0, &size, "attachments.size")) == 0)
		ret = st_fail(st, HL_EINVAL, "attachment %u: %" PRIu64 " bytes done of %" PRIu64,
			      idx, done, size);
	st_stmt_put(st, S_ATT_LOOKUP, s);
	return ret;
}

/* ---- the delivery engine's queries ---- */

int hl_store_get_message_by_seq(hl_store *st, int64_t peer_id, enum hl_dir dir, uint64_t seq,
				struct hl_msg_row *row)
{
	int ret = 0, rc = SQLITE_OK;
	memset(row, 0, sizeof(*row));
	if (!st_dir_ok(dir) || seq > I64MAX)
		return st_fail(st, HL_ENOTFOUND, "no message at seq %" PRIu64, seq);
	sqlite3_stmt *s = st_stmt_get(st, S_MSG_BY_SEQ, &ret);
	if (!s)
		return ret;
	BIND(sqlite3_bind_int64(s, 1, peer_id));
	BIND(sqlite3_bind_int(s, 2, (int)dir));
	BIND(sqlite3_bind_int64(s, 3, (int64_t)seq));
	if (rc != SQLITE_OK)
		ret = st_sqlerr(st, rc);
	else if ((ret = st_step_row(st, s)) == 0)
		ret = st_fail(st, HL_ENOTFOUND, "no message at seq %" PRIu64, seq);
	else if (ret > 0)
		ret = read_msg(st, s, row);
	st_stmt_put(st, S_MSG_BY_SEQ, s);
	return ret;
}

int hl_store_get_out_item(hl_store *st, int64_t peer_id, uint64_t seq,
			  struct hl_item_row *irow, uint8_t *buf, size_t cap,
			  struct hl_msg_row *mrow, bool *has_msg)
{
	int ret = 0, rc = SQLITE_OK;
	memset(irow, 0, sizeof(*irow));
	memset(mrow, 0, sizeof(*mrow));
	*has_msg = false;
	if (seq < 1 || seq > I64MAX)
		return st_fail(st, HL_ENOTFOUND, "no item %" PRIu64, seq);
	sqlite3_stmt *s = st_stmt_get(st, S_OUT_SEND, &ret);
	if (!s)
		return ret;
	BIND(sqlite3_bind_int64(s, 1, peer_id));
	BIND(sqlite3_bind_int64(s, 2, (int64_t)seq));
	if (rc != SQLITE_OK) {
		ret = st_sqlerr(st, rc);
		goto out;
	}
	if ((ret = st_step_row(st, s)) == 0)
		ret = st_fail(st, HL_ENOTFOUND, "no OUT item %" PRIu64 " of peer %" PRId64, seq,
			      peer_id);
	if (ret < 0 || (ret = st_read_item(st, s, MSG_NCOLS, true, irow)) < 0)
		goto out;
	irow->peer_id = peer_id;
	irow->dir = HL_DIR_OUT;
	irow->seq = seq;
	if (irow->encoded) {
		if (irow->encoded_len > cap) {
			ret = st_fail(st, HL_ETOOBIG, "item of %zu bytes, buffer of %zu",
				      irow->encoded_len, cap);
			goto out;
		}
		memcpy(buf, irow->encoded, irow->encoded_len);
		irow->encoded = buf;
	}
	if (sqlite3_column_type(s, 0) != SQLITE_NULL) {
		if ((ret = read_msg(st, s, mrow)) < 0)
			goto out;
		*has_msg = true;
	}
	ret = 0;
out:
	st_stmt_put(st, S_OUT_SEND, s);
	if (ret < 0) {
		memset(irow, 0, sizeof(*irow));
		hl_msg_row_clear(mrow);
		memset(mrow, 0, sizeof(*mrow));
	}
	return ret;
}

int hl_store_mark_delivered(hl_store *st, int64_t peer_id, uint64_t seq,
			    const uint8_t hash[static HL_HASH_LEN], int64_t at_ms,
			    uint8_t id[static HL_MSG_ID_LEN], bool *moved)
{
	int ret = 0, rc = SQLITE_OK;
	*moved = false;
	if (seq < 1 || seq > I64MAX)
		return st_fail(st, HL_EINVAL, "bad seq %" PRIu64, seq);
	sqlite3_stmt *s = st_stmt_get(st, S_MARK_DELIVERED, &ret);
	if (!s)
		return ret;
	BIND(sqlite3_bind_int64(s, 1, peer_id));
	BIND(sqlite3_bind_int64(s, 2, (int64_t)seq));
	BIND(sqlite3_bind_int64(s, 3, at_ms));
	BIND(sqlite3_bind_blob(s, 4, hash, HL_HASH_LEN, SQLITE_STATIC));
	if (rc != SQLITE_OK) {
		ret = st_sqlerr(st, rc);
	} else if ((ret = st_step_row(st, s)) > 0) {
		/* a RETURNING statement completes its write when stepped to the end */
		if ((ret = st_col_blob(st, s, 0, id, HL_MSG_ID_LEN, "messages.id")) == 0 &&
		    (ret = st_step_done(st, s)) == 0)
			*moved = true;
	}
	st_stmt_put(st, S_MARK_DELIVERED, s);
	return ret < 0 ? ret : 0;
}

/* Runs statement ID (bound by the caller to ?1 peer, and ?2) and calls FN
 * with each message row. */
static int each_msg_rows(hl_store *st, enum stmt_id id, int64_t peer_id, int64_t p2,
			 int (*fn)(void *arg, const struct hl_msg_row *row), void *arg)
{
	int ret = 0, rc = SQLITE_OK;
	sqlite3_stmt *s = st_stmt_get(st, id, &ret);
	if (!s)
		return ret;
	BIND(sqlite3_bind_int64(s, 1, peer_id));
	BIND(sqlite3_bind_int64(s, 2, p2));
	ret = rc != SQLITE_OK ? st_sqlerr(st, rc) : step_msgs(st, s, fn, arg);
	st_stmt_put(st, id, s);
	return ret;
}

int hl_store_each_out_with_parts(hl_store *st, int64_t peer_id,
				 int (*fn)(void *arg, const struct hl_msg_row *row), void *arg)
{
	return each_msg_rows(st, S_OUT_WITH_PARTS, peer_id, HL_INLINE_BODY_MAX, fn, arg);
}

int hl_store_each_in_partial(hl_store *st, int64_t peer_id,
			     int (*fn)(void *arg, const struct hl_msg_row *row), void *arg)
{
	return each_msg_rows(st, S_IN_BY_STATE, peer_id, HL_MSG_PARTIAL, fn, arg);
}

int hl_store_each_in_refused(hl_store *st, int64_t peer_id,
			     int (*fn)(void *arg, const struct hl_msg_row *row), void *arg)
{
	return each_msg_rows(st, S_IN_BY_STATE, peer_id, HL_MSG_REFUSED_IN, fn, arg);
}

int hl_store_in_class_state(hl_store *st, int64_t peer_id, unsigned prec,
			    uint64_t class_seq, int *state)
{
	int ret = 0, rc = SQLITE_OK;
	*state = class_seq == 0 ? HL_MSG_COMPLETE : -1;
	if (class_seq == 0)
		return 0;
	if (class_seq > I64MAX)
		return st_fail(st, HL_EINVAL, "class_seq %" PRIu64, class_seq);
	sqlite3_stmt *s = st_stmt_get(st, S_IN_CLASS_STATE, &ret);
	if (!s)
		return ret;
	BIND(sqlite3_bind_int64(s, 1, peer_id));
	BIND(sqlite3_bind_int(s, 2, (int)prec));
	BIND(sqlite3_bind_int64(s, 3, (int64_t)class_seq));
	if (rc != SQLITE_OK) {
		ret = st_sqlerr(st, rc);
	} else if ((ret = st_step_row(st, s)) > 0) {
		int64_t v;
		ret = st_col_int(st, s, 0, 0, HL_MSG_REFUSED_IN, &v, "messages.state");
		if (ret == 0)
			*state = (int)v;
	}
	st_stmt_put(st, S_IN_CLASS_STATE, s);
	return ret < 0 ? ret : 0;
}

/* ---- the chain rules' lookups (chain/accept.h) ---- */

static int class_near(hl_store *st, enum stmt_id id, int64_t peer_id, unsigned prec,
		      uint64_t class_seq, struct hl_class_pos *out)
{
	int ret = 0, rc = SQLITE_OK;
	memset(out, 0, sizeof(*out));
	sqlite3_stmt *s = st_stmt_get(st, id, &ret);
	if (!s)
		return ret;
	BIND(sqlite3_bind_int64(s, 1, peer_id));
	BIND(sqlite3_bind_int(s, 2, (int)prec));
	BIND(sqlite3_bind_int64(s, 3, (int64_t)class_seq));
	if (rc != SQLITE_OK)
		ret = st_sqlerr(st, rc);
	else if ((ret = st_step_row(st, s)) > 0 &&
		 (ret = st_col_u64(st, s, 0, &out->seq, "messages.seq")) == 0 &&
		 (ret = st_col_u64(st, s, 1, &out->class_seq, "messages.class_seq")) == 0)
		out->found = true;
	st_stmt_put(st, id, s);
	return ret < 0 ? ret : 0;
}

int hl_store_in_class_near(hl_store *st, int64_t peer_id, unsigned prec, uint64_t class_seq,
			   struct hl_class_pos *below, struct hl_class_pos *above)
{
	if (prec >= HL_PREC_COUNT || class_seq > I64MAX)
		return st_fail(st, HL_EINVAL, "bad class (precedence %u, class_seq %" PRIu64 ")",
			       prec, class_seq);
	int ret = class_near(st, S_CLASS_BELOW, peer_id, prec, class_seq, below);
	return ret < 0 ? ret : class_near(st, S_CLASS_ABOVE, peer_id, prec, class_seq, above);
}
