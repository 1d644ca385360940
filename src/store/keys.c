/* store/keys.c — key rotation's part of the store (docs/rotation.md): the
 * station's keys as its chains know them (the own_keys row, version 6),
 * its card on each link (peers.own_*: what that peer pinned, which names
 * the station in the link's items), the guard that keeps a process from
 * signing with a key the chains have moved past, and the look-up of each
 * chain's rotations (the partial index items_rotations).
 *
 * Before the first rotation there is no own_keys row and no card of ours
 * in any peer row: the station's keys are its signer's, as they always
 * were.  The rotation (hl_store_set_own_keys, in the transaction that
 * appends the rotation items) first gives every row the keys the peer
 * pinned, then records the new ones; a row made afterwards takes own_keys
 * (peers.c's upsert), the card `hotline card` prints then. */
#include "store/store_int.h"

#include <inttypes.h>
#include <string.h>

#include "util/err.h"

/* A nullable 32-byte key column into OUT; *HAS whether it was set. */
static int col_key_opt(hl_store *st, sqlite3_stmt *s, int col, uint8_t out[static 32],
		       bool *has, const char *what)
{
	*has = sqlite3_column_type(s, col) != SQLITE_NULL;
	if (!*has) {
		memset(out, 0, 32);
		return 0;
	}
	return st_col_blob(st, s, col, out, 32, what);
}

/* The three columns noise, sign, next from COL on into K: 1 when set, 0
 * when the first is NULL. */
static int read_keys(hl_store *st, sqlite3_stmt *s, int col, struct hl_own_keys *k,
		     const char *what)
{
	bool has;
	int ret;
	memset(k, 0, sizeof(*k));
	if ((ret = col_key_opt(st, s, col, k->noise, &has, what)) < 0 || !has)
		return ret;
	if ((ret = st_col_blob(st, s, col + 1, k->sign, 32, what)) < 0 ||
	    (ret = col_key_opt(st, s, col + 2, k->next_hash, &k->has_next, what)) < 0)
		return ret;
	return 1;
}

/* The row SQL selects (?1 bound to ID unless ID is 0) into K. */
static int keys_row(hl_store *st, const char *sql, int64_t id, struct hl_own_keys *k,
		    const char *what)
{
	sqlite3_stmt *s = NULL;
	int ret = st_adhoc(st, sql, &s);
	if (ret < 0)
		return ret;
	int rc = id ? sqlite3_bind_int64(s, 1, id) : SQLITE_OK;
	if (rc != SQLITE_OK)
		ret = st_sqlerr(st, rc);
	else if ((ret = st_step_row(st, s)) > 0)
		ret = read_keys(st, s, 0, k, what);
	sqlite3_finalize(s);
	return ret < 0 ? ret : ret == 0 ? HL_ENOTFOUND : 0;
}

int hl_store_own_keys(hl_store *st, struct hl_own_keys *out)
{
	return keys_row(st, "SELECT noise_key, signing_key, next_hash FROM own_keys WHERE id = 1",
			0, out, "own_keys");
}

int hl_store_own_card(hl_store *st, int64_t peer_id, struct hl_own_keys *out)
{
	return keys_row(st, "SELECT own_noise, own_sign, own_next FROM peers WHERE id = ?1",
			peer_id, out, "peers.own_*");
}

/* Runs SQL with ?1..?3 bound to K's keys (next NULL when none). */
static int exec_keys(hl_store *st, const char *sql, const struct hl_own_keys *k)
{
	sqlite3_stmt *s = NULL;
	int rc = SQLITE_OK, ret = st_adhoc(st, sql, &s);
	if (ret < 0)
		return ret;
	BIND(sqlite3_bind_blob(s, 1, k->noise, 32, SQLITE_STATIC));
	BIND(sqlite3_bind_blob(s, 2, k->sign, 32, SQLITE_STATIC));
	BIND(k->has_next ? sqlite3_bind_blob(s, 3, k->next_hash, 32, SQLITE_STATIC)
			 : sqlite3_bind_null(s, 3));
	ret = rc != SQLITE_OK ? st_sqlerr(st, rc) : st_step_done(st, s);
	sqlite3_finalize(s);
	return ret;
}

int hl_store_set_own_keys(hl_store *st, const struct hl_own_keys *before,
			  const struct hl_own_keys *now)
{
	struct st_op op;
	int ret = st_op_begin(st, &op);
	if (ret < 0)
		return ret;
	ret = exec_keys(st, "UPDATE peers SET own_noise = ?1, own_sign = ?2, own_next = ?3"
			" WHERE own_sign IS NULL", before);
	if (ret == 0)
		ret = exec_keys(st, "INSERT INTO own_keys (id, noise_key, signing_key, next_hash)"
				" VALUES (1, ?1, ?2, ?3) ON CONFLICT (id) DO UPDATE SET"
				" noise_key = ?1, signing_key = ?2, next_hash = ?3", now);
	return st_op_end(st, &op, ret);
}

int hl_store_author_keys(hl_store *st, int64_t peer_id, const uint8_t key[static 32],
			 const uint8_t *prev, uint8_t author[static 32])
{
	int ret = 0;
	uint8_t card[32], chains[32];
	bool has_card = false, rotated = false;
	sqlite3_stmt *s = st_stmt_get(st, S_PEER_AUTHOR, &ret);
	if (!s)
		return ret;
	int rc = sqlite3_bind_int64(s, 1, peer_id);
	if (rc != SQLITE_OK)
		ret = st_sqlerr(st, rc);
	else if ((ret = st_step_row(st, s)) == 0)
		ret = st_fail(st, HL_ENOTFOUND, "no peer %" PRId64, peer_id);
	else if (ret > 0 &&
		 (ret = col_key_opt(st, s, 0, card, &has_card, "peers.own_sign")) == 0)
		ret = col_key_opt(st, s, 1, chains, &rotated, "own_keys.signing_key");
	st_stmt_put(st, S_PEER_AUTHOR, s);
	if (ret < 0)
		return ret;
	/* The store never heard of a rotation: the signer's key is the
	 * station's on every link — unless the signer's identity rotated, and
	 * then only the rotation items (signed by the key before) may go. */
	if (!rotated) {
		if (prev && memcmp(prev, key, 32) != 0)
			return st_fail(st, HL_EKEYS, "the station's keys were rotated, and its chains "
				       "were not told yet: start the daemon, or run 'hotline key "
				       "rotate', to complete the rotation");
		memcpy(author, has_card ? card : key, 32);
		return 0;
	}
	if (memcmp(chains, key, 32) != 0)
		return st_fail(st, HL_EKEYS, "the station's chains are signed with another key than "
			       "this process holds: the keys were rotated since it read them");
	memcpy(author, has_card ? card : chains, 32);
	return 0;
}

int hl_store_rotation_before(hl_store *st, int64_t peer_id, enum hl_dir dir, uint64_t seq,
			     struct hl_item_row *row, uint8_t *buf, size_t cap)
{
	int ret = st_item_near(st, S_ROTATION_BELOW, peer_id, dir, seq, row, buf, cap);
	if (ret == 0 && row->encoded)
		row->kind = HL_ITEM_ROTATION;
	return ret == 0 && !row->encoded ? HL_ENOTFOUND : ret;
}

int hl_store_rotation_count(hl_store *st, int64_t peer_id, enum hl_dir dir, uint64_t *n)
{
	return st_peer_count(st, dir == HL_DIR_OUT
				     ? "SELECT count(*) FROM items WHERE peer_id = ?1 AND dir = 0"
				       " AND kind = 8"
				     : "SELECT count(*) FROM items WHERE peer_id = ?1 AND dir = 1"
				       " AND kind = 8",
			     peer_id, n);
}

int hl_store_set_peer_next(hl_store *st, int64_t peer_id, const uint8_t *next_hash)
{
	sqlite3_stmt *s = NULL;
	int rc = SQLITE_OK, ret = st_adhoc(st, "UPDATE peers SET next_hash = ?2 WHERE id = ?1"
					  " AND next_hash IS NOT ?2", &s);
	if (ret < 0)
		return ret;
	BIND(sqlite3_bind_int64(s, 1, peer_id));
	BIND(next_hash ? sqlite3_bind_blob(s, 2, next_hash, 32, SQLITE_STATIC)
		       : sqlite3_bind_null(s, 2));
	ret = rc != SQLITE_OK ? st_sqlerr(st, rc) : st_step_done(st, s);
	sqlite3_finalize(s);
	return ret;
}
