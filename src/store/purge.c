/* store/purge.c — retention (schema version 5; docs/retention.md): the
 * purge of old messages' contents, and the queue of files to unlink.
 *
 * A purge keeps every signed item, every messages row (its id, so a
 * message is never taken twice, its sizes and states) and every
 * attachments row (name, size and hash are in the signed item anyway);
 * it drops the body and the subject and queues the attachment files for
 * removal.  Only messages that are done are purged: OUT delivered or
 * refused, IN complete or refused; a message still to send or still
 * arriving is kept whatever its age.  A message's age at this station is
 * when its receipt came (OUT; its sent_at when refused), when it became
 * visible (IN; its item's arrival when refused).  Rare queries: prepared
 * per call.  The purge runs with secure_delete on, so the bytes it frees
 * are overwritten in the file rather than left in free pages. */
#include "store/store_int.h"

#include <stdlib.h>
#include <string.h>

#include "util/err.h"
#include "util/mem.h"

/* What a purge frees of a message's charge (version 4's accounting, less
 * what stays: the rows): its subject, body, directory and file blocks. */
#define PURGE_BYTES \
	"CAST(min(length(CAST(m.subject AS BLOB)) + m.body_size + (m.n_att > 0) * " BLOCK_COST \
	" + (SELECT total(max(" BLOCK_COST ", (a.size + " BLOCK_COST " - 1) / " BLOCK_COST " * " \
	BLOCK_COST ")) FROM attachments a WHERE a.msg_id = m.id)," \
	" 9223372036854775807.0) AS INTEGER)"
/* Which messages of a direction may be purged ("m": messages); ?1 peer (0:
 * every peer), ?2 the cut-off (ms), and ?3, in the query around it, a row
 * limit. */
static const char *const purge_where[2] = {
	/* The index messages_retain (dir, sent_at) WHERE purged_at = 0 finds
	 * them; a receipt never comes before the message was sent. */
	[HL_DIR_OUT] = "m.dir = 0 AND m.purged_at = 0 AND m.sent_at < ?2"
		       " AND (?1 = 0 OR m.peer_id = ?1) AND m.state IN (2, 3)"
		       " AND (CASE WHEN m.delivered_at > 0 THEN m.delivered_at ELSE m.sent_at END) < ?2",
	/* The index messages_inbox (dir, received_at, seq) finds them; a
	 * refused one (received_at 0) goes by its item's arrival. */
	[HL_DIR_IN] = "m.dir = 1 AND m.received_at < ?2 AND m.purged_at = 0"
		      " AND (?1 = 0 OR m.peer_id = ?1) AND m.state IN (11, 12)"
		      " AND (m.received_at > 0 OR (SELECT i.stored_at FROM items i"
		      " WHERE i.peer_id = m.peer_id AND i.dir = 1 AND i.seq = m.seq) < ?2)",
};

struct purge_cand {
	uint8_t id[HL_MSG_ID_LEN];
	int64_t peer_id;
	enum hl_dir dir;
	uint64_t bytes;
};

/* Appends up to LIMIT - *N candidates of direction DIR to C. */
static int purge_collect(hl_store *st, enum hl_dir dir, int64_t peer_id, int64_t before_ms,
			 struct purge_cand *c, size_t limit, size_t *n)
{
	sqlite3_stmt *s = NULL;
	int rc = SQLITE_OK, ret;
	char *sql = xasprintf("SELECT m.id, m.peer_id, m.dir, %s FROM messages m WHERE %s"
			      " LIMIT ?3", PURGE_BYTES, purge_where[dir]);
	ret = st_adhoc(st, sql, &s);
	free(sql);
	if (ret < 0)
		return ret;
	BIND(sqlite3_bind_int64(s, 1, peer_id));
	BIND(sqlite3_bind_int64(s, 2, before_ms));
	BIND(sqlite3_bind_int64(s, 3, (int64_t)(limit - *n)));
	if (rc != SQLITE_OK) {
		ret = st_sqlerr(st, rc);
		goto out;
	}
	while (*n < limit && (ret = st_step_row(st, s)) > 0) {
		struct purge_cand *p = &c[*n];
		int64_t d;
		if ((ret = st_col_blob(st, s, 0, p->id, HL_MSG_ID_LEN, "messages.id")) < 0 ||
		    (ret = st_col_int(st, s, 1, 1, INT64_MAX, &p->peer_id, "messages.peer_id")) < 0 ||
		    (ret = st_col_int(st, s, 2, 0, 1, &d, "messages.dir")) < 0 ||
		    (ret = st_col_u64(st, s, 3, &p->bytes, "message size")) < 0)
			break;
		p->dir = (enum hl_dir)d;
		(*n)++;
	}
out:
	sqlite3_finalize(s);
	return ret < 0 ? ret : 0;
}

/* Runs SQL (one statement, no result) with ?1 bound to ID, ?2 to V. */
static int exec_id(hl_store *st, const char *sql, const uint8_t id[static HL_MSG_ID_LEN],
		   int64_t v, int64_t *changes)
{
	sqlite3_stmt *s = NULL;
	int rc = SQLITE_OK, ret;
	if ((ret = st_adhoc(st, sql, &s)) < 0)
		return ret;
	BIND(sqlite3_bind_blob(s, 1, id, HL_MSG_ID_LEN, SQLITE_STATIC));
	BIND(sqlite3_bind_int64(s, 2, v));
	ret = rc != SQLITE_OK ? st_sqlerr(st, rc) : st_step_done(st, s);
	if (ret == 0 && changes)
		*changes = sqlite3_changes64(st->db);
	sqlite3_finalize(s);
	return ret;
}

/* One candidate: its files queued, its contents dropped, its bytes freed. */
static int purge_one(hl_store *st, const struct purge_cand *c, int64_t at_ms,
		     struct hl_purge_stats *stats)
{
	int64_t files = 0, changed = 0;
	int ret = exec_id(st, "INSERT OR IGNORE INTO unlink_queue (path)"
			  " SELECT path FROM attachments WHERE msg_id = ?1 AND ?2 = ?2", c->id, 0,
			  &files);
	if (ret == 0)
		ret = exec_id(st, "UPDATE messages SET body = NULL, subject = '', purged_at = ?2"
			      " WHERE id = ?1 AND purged_at = 0", c->id, at_ms, &changed);
	if (ret < 0 || changed == 0)
		return ret;
	if (c->dir == HL_DIR_IN) {
		sqlite3_stmt *s = NULL;
		int rc = SQLITE_OK;
		if ((ret = st_adhoc(st, "UPDATE peers SET freed_bytes = min(freed_bytes + ?2,"
				    " 9223372036854775807) WHERE id = ?1", &s)) < 0)
			return ret;
		BIND(sqlite3_bind_int64(s, 1, c->peer_id));
		BIND(sqlite3_bind_int64(s, 2, (int64_t)c->bytes));
		ret = rc != SQLITE_OK ? st_sqlerr(st, rc) : st_step_done(st, s);
		sqlite3_finalize(s);
		if (ret < 0)
			return ret;
	}
	stats->messages++;
	stats->bytes = stats->bytes + c->bytes < stats->bytes ? UINT64_MAX : stats->bytes + c->bytes;
	stats->files += (uint64_t)files;
	return 0;
}

int hl_store_purge_count(hl_store *st, int64_t peer_id, int64_t before_ms,
			 struct hl_purge_stats *stats)
{
	memset(stats, 0, sizeof(*stats));
	for (int dir = HL_DIR_OUT; dir <= HL_DIR_IN; dir++) {
		/* The candidates' query, counted: the same WHERE, no limit. */
		char *sql = xasprintf("SELECT count(*), CAST(min(total(b), 9223372036854775807.0)"
				      " AS INTEGER) FROM (SELECT %s AS b FROM messages m WHERE %s)",
				      PURGE_BYTES, purge_where[dir]);
		sqlite3_stmt *s = NULL;
		int rc = SQLITE_OK, ret = st_adhoc(st, sql, &s);
		free(sql);
		if (ret < 0)
			return ret;
		BIND(sqlite3_bind_int64(s, 1, peer_id));
		BIND(sqlite3_bind_int64(s, 2, before_ms));
		uint64_t n = 0, b = 0;
		if (rc != SQLITE_OK)
			ret = st_sqlerr(st, rc);
		else if ((ret = st_step_row(st, s)) > 0 &&
			 (ret = st_col_u64(st, s, 0, &n, "count")) == 0)
			ret = st_col_u64(st, s, 1, &b, "total");
		sqlite3_finalize(s);
		if (ret < 0)
			return ret;
		stats->messages += n;
		stats->bytes = stats->bytes + b < b ? UINT64_MAX : stats->bytes + b;
	}
	return 0;
}

int hl_store_purge(hl_store *st, int64_t peer_id, int64_t before_ms, int64_t at_ms,
		   size_t limit, struct hl_purge_stats *stats)
{
	struct purge_cand *c = NULL;
	size_t n = 0;
	struct st_op op = { 0 };
	bool begun = false;
	int ret;
	memset(stats, 0, sizeof(*stats));
	if (limit == 0 || limit > HL_PURGE_BATCH_MAX || at_ms <= 0)
		return st_fail(st, HL_EINVAL, "bad purge (limit %zu)", limit);
	if (!sqlite3_get_autocommit(st->db))
		return st_fail(st, HL_ESTATE, "a purge is its own transaction");
	c = xcalloc(limit, sizeof(*c));
	/* secure_delete: the freed pages are zeroed, not kept as free pages
	 * that still hold the text (a per-connection setting: set and reset
	 * around the transaction). */
	if ((ret = st_adhoc_exec(st, "PRAGMA secure_delete = ON")) < 0)
		goto out;
	if ((ret = st_op_begin(st, &op)) < 0)
		goto out;
	begun = true;
	if ((ret = purge_collect(st, HL_DIR_OUT, peer_id, before_ms, c, limit, &n)) < 0 ||
	    (ret = purge_collect(st, HL_DIR_IN, peer_id, before_ms, c, limit, &n)) < 0)
		goto out;
	for (size_t i = 0; i < n && ret == 0; i++)
		ret = purge_one(st, &c[i], at_ms, stats);
out:
	if (begun)
		ret = st_op_end(st, &op, ret);
	st_adhoc_exec(st, "PRAGMA secure_delete = OFF");
	if (ret < 0)
		memset(stats, 0, sizeof(*stats));
	free(c);
	return ret;
}

int hl_store_set_purged(hl_store *st, const uint8_t id[static HL_MSG_ID_LEN], int64_t at_ms)
{
	return exec_id(st, "UPDATE messages SET body = NULL, subject = '', purged_at = ?2"
		       " WHERE id = ?1", id, at_ms, NULL);
}

int hl_store_unlink_pending(hl_store *st, size_t limit, char ***paths, size_t *n)
{
	sqlite3_stmt *s = NULL;
	int ret;
	*paths = NULL;
	*n = 0;
	if ((ret = st_adhoc(st, "SELECT path FROM unlink_queue ORDER BY path LIMIT ?1", &s)) < 0)
		return ret;
	int rc = sqlite3_bind_int64(s, 1, limit > I64MAX ? -1 : (int64_t)limit);
	if (rc != SQLITE_OK) {
		ret = st_sqlerr(st, rc);
		goto out;
	}
	while ((ret = st_step_row(st, s)) > 0) {
		char *path = NULL;
		if ((ret = st_col_text_dup(st, s, 0, false, &path, "unlink_queue.path")) < 0)
			break;
		*paths = xrealloc(*paths, (*n + 1) * sizeof(**paths));
		(*paths)[(*n)++] = path;
	}
out:
	sqlite3_finalize(s);
	if (ret < 0) {
		for (size_t i = 0; i < *n; i++)
			free((*paths)[i]);
		free(*paths);
		*paths = NULL;
		*n = 0;
		return ret;
	}
	return 0;
}

int hl_store_unlink_done(hl_store *st, const char *path)
{
	return st_exec_text(st, "DELETE FROM unlink_queue WHERE path = ?1", path);
}

int hl_store_checkpoint(hl_store *st)
{
	return st_adhoc_exec(st, "PRAGMA wal_checkpoint(TRUNCATE)");
}
