/* store/peers.c — the peers table: one row per counterpart ever known,
 * keyed by its SigningKey, never deleted (a removed peer's record can
 * still be exported); and the quota's measure of what is stored on a
 * peer's behalf (peers.in_bytes less peers.freed_bytes: schema.c,
 * invariants 2 and 6). */
#include "store/store_int.h"

#include <inttypes.h>
#include <string.h>

#include "util/err.h"

const char *const st_sql_peers[S_COUNT] = {
	/* The WHERE keeps an unchanged peer from being rewritten (which would
	 * wake the daemon for nothing); RETURNING then yields no row, and
	 * S_PEER_BY_KEY finds the id. */
	[S_PEER_UPSERT] =
		"INSERT INTO peers (signing_key, noise_key, name, created_at)"
		" VALUES (?1, ?2, ?3, ?4) ON CONFLICT (signing_key) DO UPDATE"
		" SET noise_key = excluded.noise_key, name = excluded.name"
		" WHERE noise_key IS NOT excluded.noise_key OR name IS NOT excluded.name"
		" RETURNING id",
	[S_PEER_BY_KEY] = "SELECT id FROM peers WHERE signing_key = ?1",
	/* What purges freed (invariant 6) no longer counts. */
	[S_PEER_USAGE] = "SELECT max(in_bytes - freed_bytes, 0) FROM peers WHERE id = ?1",
	/* keys.c: who signs our items on a link, and as whom */
	[S_PEER_AUTHOR] = "SELECT p.own_sign, k.signing_key FROM peers p LEFT JOIN own_keys k"
			  " ON k.id = 1 WHERE p.id = ?1",
};

static int peer_by_key(hl_store *st, const uint8_t signing_key[static 32], int64_t *id)
{
	int ret = 0;
	sqlite3_stmt *s = st_stmt_get(st, S_PEER_BY_KEY, &ret);
	if (!s)
		return ret;
	int rc = sqlite3_bind_blob(s, 1, signing_key, 32, SQLITE_STATIC);
	if (rc != SQLITE_OK)
		ret = st_sqlerr(st, rc);
	else if ((ret = st_step_row(st, s)) == 0)
		ret = st_fail(st, HL_ENOTFOUND, "no peer with that signing key");
	else if (ret > 0)
		ret = st_col_int(st, s, 0, 1, INT64_MAX, id, "peers.id");
	st_stmt_put(st, S_PEER_BY_KEY, s);
	return ret;
}

int hl_store_peer(hl_store *st, const uint8_t signing_key[static 32],
		  const uint8_t noise_key[static 32], const char *name, int64_t *peer_id)
{
	int ret = 0, rc = SQLITE_OK;
	int64_t id = 0;
	bool returned = false;
	if (!name)
		return st_fail(st, HL_EINVAL, "peer name missing");
	size_t name_len = strlen(name);
	if (name_len >= sizeof(((struct hl_msg_row *)0)->peer_name))
		return st_fail(st, HL_ETOOBIG, "peer name of %zu bytes", name_len);
	sqlite3_stmt *s = st_stmt_get(st, S_PEER_UPSERT, &ret);
	if (!s)
		return ret;
	BIND(sqlite3_bind_blob(s, 1, signing_key, 32, SQLITE_STATIC));
	BIND(sqlite3_bind_blob(s, 2, noise_key, 32, SQLITE_STATIC));
	BIND(sqlite3_bind_text(s, 3, name, (int)name_len, SQLITE_STATIC));
	BIND(sqlite3_bind_int64(s, 4, st_now_ms()));
	if (rc != SQLITE_OK) {
		ret = st_sqlerr(st, rc);
		goto out;
	}
	if ((ret = st_step_row(st, s)) > 0) {
		returned = true;
		/* A RETURNING statement completes its write when stepped to
		 * the end. */
		if ((ret = st_col_int(st, s, 0, 1, INT64_MAX, &id, "peers.id")) == 0)
			ret = st_step_done(st, s);
	}
out:
	st_stmt_put(st, S_PEER_UPSERT, s);
	/* No row: the peer exists unchanged, and nothing was written. */
	if (ret == 0 && !returned)
		ret = peer_by_key(st, signing_key, &id);
	if (ret == 0 && peer_id)
		*peer_id = id;
	return ret;
}

int hl_store_peer_find(hl_store *st, const uint8_t signing_key[static 32], int64_t *peer_id)
{
	return peer_by_key(st, signing_key, peer_id);
}

int hl_store_peer_usage(hl_store *st, int64_t peer_id, uint64_t *bytes)
{
	int ret = 0;
	sqlite3_stmt *s = st_stmt_get(st, S_PEER_USAGE, &ret);
	if (!s)
		return ret;
	int rc = sqlite3_bind_int64(s, 1, peer_id);
	if (rc != SQLITE_OK)
		ret = st_sqlerr(st, rc);
	else if ((ret = st_step_row(st, s)) == 0)
		ret = st_fail(st, HL_ENOTFOUND, "no peer %" PRId64, peer_id);
	else if (ret > 0)
		ret = st_col_u64(st, s, 0, bytes, "peers.in_bytes");
	st_stmt_put(st, S_PEER_USAGE, s);
	return ret;
}

int hl_store_each_peer(hl_store *st, int (*fn)(void *arg, const struct hl_peer_row *row),
		       void *arg)
{
	sqlite3_stmt *s = NULL;
	int ret;
	if ((ret = st_adhoc(st, "SELECT id, name, signing_key, noise_key, created_at, next_hash"
			    " FROM peers ORDER BY id", &s)) < 0)
		return ret;
	while ((ret = st_step_row(st, s)) > 0) {
		struct hl_peer_row row;
		memset(&row, 0, sizeof(row));
		if ((ret = st_col_int(st, s, 0, 1, INT64_MAX, &row.id, "peers.id")) < 0 ||
		    (ret = st_col_text(st, s, 1, row.name, sizeof(row.name), "peers.name")) < 0 ||
		    (ret = st_col_blob(st, s, 2, row.signing_key, 32, "peers.signing_key")) < 0 ||
		    (ret = st_col_blob(st, s, 3, row.noise_key, 32, "peers.noise_key")) < 0 ||
		    (ret = st_col_int(st, s, 4, INT64_MIN, INT64_MAX, &row.created_at,
				      "peers.created_at")) < 0)
			break;
		row.has_next = sqlite3_column_type(s, 5) != SQLITE_NULL;
		if ((row.has_next &&
		     (ret = st_col_blob(st, s, 5, row.next_hash, 32, "peers.next_hash")) < 0) ||
		    (ret = fn(arg, &row)) != 0)
			break;
	}
	sqlite3_finalize(s);
	return ret < 0 ? ret : 0;
}
