/* store/restore.c — backup and restore (docs/messages.md section 7,
 * docs/retention.md): the consistent copy `backup` makes, the attachment
 * files it needs, and what a store copied that way does until each peer
 * has said how much of our chain it holds: peers.resync refuses every new
 * item of ours on that link (a trigger, schema.c version 5), items of ours
 * the peer gives back are stored as acknowledged, the positions their
 * receipts acknowledge are never acknowledged again (recovered_acks), and
 * what they state of the peer's chain is never stated lower
 * (peers.claimed_seq).  Rare queries: prepared per call. */
#include "store/store_int.h"

#include <stdlib.h>
#include <string.h>

#include "util/err.h"
#include "util/mem.h"

int hl_store_mark_restored(hl_store *st)
{
	return st_adhoc_exec(st, "UPDATE peers SET resync = 1");
}

int hl_store_resync_pending(hl_store *st, int64_t peer_id, bool *pending)
{
	sqlite3_stmt *s = NULL;
	int64_t v = 0;
	int ret;
	*pending = false;
	if ((ret = st_adhoc(st, "SELECT resync FROM peers WHERE id = ?1", &s)) < 0)
		return ret;
	int rc = sqlite3_bind_int64(s, 1, peer_id);
	if (rc != SQLITE_OK)
		ret = st_sqlerr(st, rc);
	else if ((ret = st_step_row(st, s)) > 0 &&
		 (ret = st_col_int(st, s, 0, 0, 1, &v, "peers.resync")) == 0)
		*pending = v != 0;
	sqlite3_finalize(s);
	return ret < 0 ? ret : 0;
}

int hl_store_may_sign(hl_store *st, int64_t peer_id)
{
	bool pending;
	int ret = hl_store_resync_pending(st, peer_id, &pending);
	if (ret == 0 && pending)
		ret = st_fail(st, HL_ESTATE, "%s", ST_RESYNC_TEXT);
	return ret;
}

int hl_store_resync_done(hl_store *st, int64_t peer_id)
{
	sqlite3_stmt *s = NULL;
	int ret;
	if ((ret = st_adhoc(st, "UPDATE peers SET resync = 0 WHERE id = ?1", &s)) < 0)
		return ret;
	int rc = sqlite3_bind_int64(s, 1, peer_id);
	ret = rc != SQLITE_OK ? st_sqlerr(st, rc) : st_step_done(st, s);
	sqlite3_finalize(s);
	return ret;
}

/* Runs SQL with ?1 = PEER_ID and ?2 = SEQ; with YES, whether it gave a row. */
static int peer_seq_stmt(hl_store *st, const char *sql, int64_t peer_id, uint64_t seq, bool *yes)
{
	sqlite3_stmt *s = NULL;
	int rc = SQLITE_OK, ret;
	if (seq > I64MAX)
		return HL_EINVAL;
	if ((ret = st_adhoc(st, sql, &s)) < 0)
		return ret;
	BIND(sqlite3_bind_int64(s, 1, peer_id));
	BIND(sqlite3_bind_int64(s, 2, (int64_t)seq));
	if (rc != SQLITE_OK)
		ret = st_sqlerr(st, rc);
	else if (yes)
		ret = st_step_row(st, s);
	else
		ret = st_step_done(st, s);
	if (yes && ret >= 0) {
		*yes = ret > 0;
		ret = 0;
	}
	sqlite3_finalize(s);
	return ret;
}

int hl_store_recovered_ack_add(hl_store *st, int64_t peer_id, uint64_t seq)
{
	return peer_seq_stmt(st, "INSERT OR IGNORE INTO recovered_acks (peer_id, seq) VALUES (?1, ?2)",
			     peer_id, seq, NULL);
}

int hl_store_recovered_ack_has(hl_store *st, int64_t peer_id, uint64_t seq, bool *yes)
{
	return peer_seq_stmt(st, "SELECT 1 FROM recovered_acks WHERE peer_id = ?1 AND seq = ?2",
			     peer_id, seq, yes);
}

int hl_store_recovered_acks_any(hl_store *st, int64_t peer_id, bool *yes)
{
	return peer_seq_stmt(st, "SELECT 1 FROM recovered_acks WHERE peer_id = ?1 AND ?2 = ?2 LIMIT 1",
			     peer_id, 0, yes);
}

int hl_store_claim_hold(hl_store *st, int64_t peer_id, uint64_t seq,
			const uint8_t hash[static HL_HASH_LEN])
{
	sqlite3_stmt *s = NULL;
	int rc = SQLITE_OK, ret;
	if (seq == 0 || seq > I64MAX)
		return 0;
	if ((ret = st_adhoc(st, "UPDATE peers SET claimed_seq = ?2, claimed_hash = ?3"
			    " WHERE id = ?1 AND claimed_seq < ?2", &s)) < 0)
		return ret;
	BIND(sqlite3_bind_int64(s, 1, peer_id));
	BIND(sqlite3_bind_int64(s, 2, (int64_t)seq));
	BIND(sqlite3_bind_blob(s, 3, hash, HL_HASH_LEN, SQLITE_STATIC));
	ret = rc != SQLITE_OK ? st_sqlerr(st, rc) : st_step_done(st, s);
	sqlite3_finalize(s);
	return ret;
}

int hl_store_signing_head(hl_store *st, int64_t peer_id, struct hl_chain_head *head)
{
	sqlite3_stmt *s = NULL;
	int ret = hl_store_in_contiguous(st, peer_id, head);
	if (ret < 0)
		return ret;
	if ((ret = st_adhoc(st, "SELECT claimed_seq, claimed_hash FROM peers WHERE id = ?1"
			    " AND claimed_seq > ?2", &s)) < 0)
		return ret;
	int rc = SQLITE_OK;
	BIND(sqlite3_bind_int64(s, 1, peer_id));
	BIND(sqlite3_bind_int64(s, 2, (int64_t)head->seq));
	uint64_t seq = 0;
	if (rc != SQLITE_OK)
		ret = st_sqlerr(st, rc);
	else if ((ret = st_step_row(st, s)) > 0 &&
		 (ret = st_col_u64(st, s, 0, &seq, "peers.claimed_seq")) == 0 &&
		 (ret = st_col_blob(st, s, 1, head->hash, HL_HASH_LEN, "peers.claimed_hash")) == 0)
		head->seq = seq;
	sqlite3_finalize(s);
	return ret < 0 ? ret : 0;
}

int hl_store_unack_lost(hl_store *st, int64_t peer_id, uint64_t base,
			const uint64_t (*ranges)[2], size_t n, size_t max, uint64_t *count)
{
	sqlite3_stmt *s = NULL;
	uint64_t *lost = NULL;
	size_t nlost = 0;
	int rc = SQLITE_OK, ret;
	*count = 0;
	if (base >= I64MAX)
		return 0;
	if ((ret = st_adhoc(st, "SELECT seq FROM items WHERE peer_id = ?1 AND dir = 0 AND acked = 1"
			    " AND seq > ?2 ORDER BY seq", &s)) < 0)
		return ret;
	BIND(sqlite3_bind_int64(s, 1, peer_id));
	BIND(sqlite3_bind_int64(s, 2, (int64_t)base));
	if (rc != SQLITE_OK)
		ret = st_sqlerr(st, rc);
	lost = xcalloc(max ? max : 1, sizeof(*lost));
	/* Rows in seq order, ranges in increasing order: one merge pass. */
	size_t r = 0;
	while (ret == 0 && nlost < max && (ret = st_step_row(st, s)) > 0) {
		uint64_t seq = 0;
		if ((ret = st_col_u64(st, s, 0, &seq, "items.seq")) < 0)
			break;
		while (r < n && ranges[r][1] < seq)
			r++;
		if (!(r < n && ranges[r][0] <= seq))
			lost[nlost++] = seq;
		ret = 0;
	}
	sqlite3_finalize(s);
	s = NULL;
	if (ret < 0)
		goto out;
	if ((ret = st_adhoc(st, "UPDATE items SET acked = 0 WHERE peer_id = ?1 AND dir = 0"
			    " AND seq = ?2", &s)) < 0)
		goto out;
	for (size_t i = 0; i < nlost && ret == 0; i++) {
		rc = SQLITE_OK;
		BIND(sqlite3_bind_int64(s, 1, peer_id));
		BIND(sqlite3_bind_int64(s, 2, (int64_t)lost[i]));
		ret = rc != SQLITE_OK ? st_sqlerr(st, rc) : st_step_done(st, s);
		sqlite3_reset(s);
	}
	if (ret == 0)
		*count = nlost;
out:
	sqlite3_finalize(s);
	free(lost);
	return ret < 0 ? ret : 0;
}

/* ---- backup ---- */

int hl_store_each_att_file(hl_store *st,
			   int (*fn)(void *arg, const struct hl_att_file *f), void *arg)
{
	sqlite3_stmt *s = NULL;
	int ret;
	if ((ret = st_adhoc(st, "SELECT a.path, a.size, a.done, m.dir, m.state FROM attachments a"
			    " JOIN messages m ON m.id = a.msg_id WHERE m.purged_at = 0"
			    " ORDER BY a.path", &s)) < 0)
		return ret;
	while ((ret = st_step_row(st, s)) > 0) {
		struct hl_att_file f;
		int64_t dir = 0, state = 0;
		memset(&f, 0, sizeof(f));
		if ((ret = st_col_text(st, s, 0, f.path, sizeof(f.path), "attachments.path")) < 0 ||
		    (ret = st_col_u64(st, s, 1, &f.size, "attachments.size")) < 0 ||
		    (ret = st_col_u64(st, s, 2, &f.done, "attachments.done")) < 0 ||
		    (ret = st_col_int(st, s, 3, 0, 1, &dir, "messages.dir")) < 0 ||
		    (ret = st_col_int(st, s, 4, 0, HL_MSG_REFUSED_IN, &state, "messages.state")) < 0)
			break;
		f.dir = (enum hl_dir)dir;
		f.state = (enum hl_msg_state)state;
		if ((ret = fn(arg, &f)) != 0)
			break;
	}
	sqlite3_finalize(s);
	return ret < 0 ? ret : 0;
}

int hl_store_backup(hl_store *st, const char *path)
{
	if (!sqlite3_get_autocommit(st->db))
		return st_fail(st, HL_ESTATE, "a backup cannot run inside a transaction");
	/* VACUUM INTO reads one snapshot (WAL: writers go on meanwhile) and
	 * writes only live pages: what a purge freed is not copied.  PATH
	 * must be absent or empty; it keeps the mode its creator gave it. */
	return st_exec_text(st, "VACUUM INTO ?1", path);
}
