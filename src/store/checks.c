/* store/checks.c — the checks and agreements tables (docs/items.md
 * 2.3-2.6): line checks, ours (OUT) and the peer's (IN), each naming its
 * CHECK item, with the answers as they come; agreements, named by the
 * AGREEMENT item's hash, with the countersign when it comes.  These
 * queries are rare (a check every few minutes, an agreement now and then),
 * so each is prepared when called rather than cached. */
#include "store/store_int.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "util/err.h"

const char *hl_check_result_name(int result)
{
	switch (result) {
	case HL_CHECK_PENDING: return "pending";
	case HL_CHECK_OK: return "ok";
	case HL_CHECK_NO_CONNECTION: return "no_connection";
	case HL_CHECK_NO_ANSWER: return "no_answer";
	case HL_CHECK_NO_PERSON: return "no_person";
	}
	return NULL;
}

#define CHECK_COLS \
	"c.id, c.peer_id, p.name, c.dir, c.seq, c.mode, c.link, c.manual, c.created_at," \
	" c.deadline, c.station_at, c.person_at, c.no_person_at, c.result"

static int read_check(hl_store *st, sqlite3_stmt *s, struct hl_check_row *row)
{
	int64_t v;
	int ret;
	memset(row, 0, sizeof(*row));
	if ((ret = st_col_blob(st, s, 0, row->id, HL_CHECK_ID_LEN, "checks.id")) < 0 ||
	    (ret = st_col_int(st, s, 1, 1, INT64_MAX, &row->peer_id, "checks.peer_id")) < 0 ||
	    (ret = st_col_text(st, s, 2, row->peer_name, sizeof(row->peer_name), "peers.name")) < 0 ||
	    (ret = st_col_int(st, s, 3, 0, 1, &v, "checks.dir")) < 0)
		return ret;
	row->dir = (enum hl_dir)v;
	if ((ret = st_col_u64(st, s, 4, &row->seq, "checks.seq")) < 0 ||
	    (ret = st_col_int(st, s, 5, 0, 1, &v, "checks.mode")) < 0)
		return ret;
	row->mode = (unsigned)v;
	if ((ret = st_col_int(st, s, 6, 0, 1, &v, "checks.link")) < 0)
		return ret;
	row->link = v != 0;
	if ((ret = st_col_int(st, s, 7, 0, 1, &v, "checks.manual")) < 0)
		return ret;
	row->manual = v != 0;
	if ((ret = st_col_int(st, s, 8, INT64_MIN, INT64_MAX, &row->created_at, "checks.created_at")) < 0 ||
	    (ret = st_col_int(st, s, 9, INT64_MIN, INT64_MAX, &row->deadline, "checks.deadline")) < 0 ||
	    (ret = st_col_int(st, s, 10, 0, INT64_MAX, &row->station_at, "checks.station_at")) < 0 ||
	    (ret = st_col_int(st, s, 11, 0, INT64_MAX, &row->person_at, "checks.person_at")) < 0 ||
	    (ret = st_col_int(st, s, 12, 0, INT64_MAX, &row->no_person_at, "checks.no_person_at")) < 0 ||
	    (ret = st_col_int(st, s, 13, 0, HL_CHECK_NO_PERSON, &v, "checks.result")) < 0)
		return ret;
	row->result = (int)v;
	return 0;
}

int hl_store_insert_check(hl_store *st, const struct hl_check_row *row)
{
	sqlite3_stmt *s = NULL;
	int rc = SQLITE_OK, ret;
	if (!st_dir_ok(row->dir) || row->seq < 1 || row->seq > I64MAX || row->mode > 1 ||
	    !hl_check_result_name(row->result))
		return st_fail(st, HL_EINVAL, "bad check row (dir %d, seq %" PRIu64 ", mode %u)",
			       (int)row->dir, row->seq, row->mode);
	if ((ret = st_adhoc(st, "INSERT INTO checks (id, peer_id, dir, seq, mode, link, manual,"
			    " created_at, deadline, station_at, person_at, no_person_at, result)"
			    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)", &s)) < 0)
		return ret;
	BIND(sqlite3_bind_blob(s, 1, row->id, HL_CHECK_ID_LEN, SQLITE_STATIC));
	BIND(sqlite3_bind_int64(s, 2, row->peer_id));
	BIND(sqlite3_bind_int(s, 3, (int)row->dir));
	BIND(sqlite3_bind_int64(s, 4, (int64_t)row->seq));
	BIND(sqlite3_bind_int(s, 5, (int)row->mode));
	BIND(sqlite3_bind_int(s, 6, row->link));
	BIND(sqlite3_bind_int(s, 7, row->manual));
	BIND(sqlite3_bind_int64(s, 8, row->created_at));
	BIND(sqlite3_bind_int64(s, 9, row->deadline));
	BIND(sqlite3_bind_int64(s, 10, row->station_at));
	BIND(sqlite3_bind_int64(s, 11, row->person_at));
	BIND(sqlite3_bind_int64(s, 12, row->no_person_at));
	BIND(sqlite3_bind_int(s, 13, row->result));
	ret = rc != SQLITE_OK ? st_sqlerr(st, rc) : st_step_done(st, s);
	sqlite3_finalize(s);
	return ret;
}

/* One check row by a WHERE clause on c; ?1 peer, ?2 dir, ?3 the key. */
static int get_check(hl_store *st, const char *where, int64_t peer_id, enum hl_dir dir,
		     const uint8_t *id, uint64_t seq, struct hl_check_row *row)
{
	sqlite3_stmt *s = NULL;
	int rc = SQLITE_OK, ret;
	char sql[512];
	memset(row, 0, sizeof(*row));
	if (!st_dir_ok(dir) || seq > I64MAX)
		return st_fail(st, HL_ENOTFOUND, "no such check");
	snprintf(sql, sizeof(sql), "SELECT " CHECK_COLS " FROM checks c JOIN peers p"
		 " ON p.id = c.peer_id WHERE c.peer_id = ?1 AND c.dir = ?2 AND %s", where);
	if ((ret = st_adhoc(st, sql, &s)) < 0)
		return ret;
	BIND(sqlite3_bind_int64(s, 1, peer_id));
	BIND(sqlite3_bind_int(s, 2, (int)dir));
	if (id)
		BIND(sqlite3_bind_blob(s, 3, id, HL_CHECK_ID_LEN, SQLITE_STATIC));
	else
		BIND(sqlite3_bind_int64(s, 3, (int64_t)seq));
	if (rc != SQLITE_OK)
		ret = st_sqlerr(st, rc);
	else if ((ret = st_step_row(st, s)) == 0)
		ret = st_fail(st, HL_ENOTFOUND, "no such check");
	else if (ret > 0)
		ret = read_check(st, s, row);
	sqlite3_finalize(s);
	return ret < 0 ? ret : 0;
}

int hl_store_get_check(hl_store *st, int64_t peer_id, enum hl_dir dir,
		       const uint8_t id[static HL_CHECK_ID_LEN], struct hl_check_row *row)
{
	return get_check(st, "c.id = ?3", peer_id, dir, id, 0, row);
}

int hl_store_get_check_by_seq(hl_store *st, int64_t peer_id, enum hl_dir dir, uint64_t seq,
			      struct hl_check_row *row)
{
	return get_check(st, "c.seq = ?3", peer_id, dir, NULL, seq, row);
}

int hl_store_update_check(hl_store *st, const struct hl_check_row *row)
{
	sqlite3_stmt *s = NULL;
	int rc = SQLITE_OK, ret;
	if (!hl_check_result_name(row->result) || !st_dir_ok(row->dir))
		return st_fail(st, HL_EINVAL, "bad check result %d", row->result);
	if ((ret = st_adhoc(st, "UPDATE checks SET station_at = ?4, person_at = ?5,"
			    " no_person_at = ?6, result = ?7"
			    " WHERE peer_id = ?1 AND dir = ?2 AND id = ?3", &s)) < 0)
		return ret;
	BIND(sqlite3_bind_int64(s, 1, row->peer_id));
	BIND(sqlite3_bind_int(s, 2, (int)row->dir));
	BIND(sqlite3_bind_blob(s, 3, row->id, HL_CHECK_ID_LEN, SQLITE_STATIC));
	BIND(sqlite3_bind_int64(s, 4, row->station_at));
	BIND(sqlite3_bind_int64(s, 5, row->person_at));
	BIND(sqlite3_bind_int64(s, 6, row->no_person_at));
	BIND(sqlite3_bind_int(s, 7, row->result));
	ret = rc != SQLITE_OK ? st_sqlerr(st, rc) : st_step_done(st, s);
	if (ret == 0 && sqlite3_changes64(st->db) == 0)
		ret = st_fail(st, HL_ENOTFOUND, "no such check");
	sqlite3_finalize(s);
	return ret;
}

int hl_store_each_check(hl_store *st, const struct hl_check_filter *f,
			int (*fn)(void *arg, const struct hl_check_row *row), void *arg)
{
	sqlite3_stmt *s = NULL;
	int rc = SQLITE_OK, ret;
	if (!st_dir_ok(f->dir))
		return st_fail(st, HL_EINVAL, "bad direction %d", (int)f->dir);
	if ((ret = st_adhoc(st, f->newest_first
			    ? "SELECT " CHECK_COLS " FROM checks c JOIN peers p ON p.id = c.peer_id"
			      " WHERE (?1 = 0 OR c.peer_id = ?1) AND c.dir = ?2 AND (?3 = 0 OR"
			      " c.result = 0) ORDER BY c.created_at DESC, c.seq DESC LIMIT ?4"
			    : "SELECT " CHECK_COLS " FROM checks c JOIN peers p ON p.id = c.peer_id"
			      " WHERE (?1 = 0 OR c.peer_id = ?1) AND c.dir = ?2 AND (?3 = 0 OR"
			      " c.result = 0) ORDER BY c.created_at, c.seq LIMIT ?4", &s)) < 0)
		return ret;
	BIND(sqlite3_bind_int64(s, 1, f->peer_id));
	BIND(sqlite3_bind_int(s, 2, (int)f->dir));
	BIND(sqlite3_bind_int(s, 3, f->open_only));
	BIND(sqlite3_bind_int64(s, 4, f->limit == 0 || f->limit > I64MAX ? -1 : (int64_t)f->limit));
	if (rc != SQLITE_OK) {
		ret = st_sqlerr(st, rc);
		goto out;
	}
	while ((ret = st_step_row(st, s)) > 0) {
		struct hl_check_row row;
		if ((ret = read_check(st, s, &row)) < 0 || (ret = fn(arg, &row)) != 0)
			break;
	}
	if (ret > 0)
		ret = 0;
out:
	sqlite3_finalize(s);
	return ret;
}

/* ---- agreements ---- */

#define AGREEMENT_COLS \
	"a.id, a.peer_id, p.name, a.dir, a.seq, a.name, a.size, a.doc_hash, a.msg_id," \
	" a.proposed_at, a.signed_at, a.sign_seq"

static int read_agreement(hl_store *st, sqlite3_stmt *s, struct hl_agreement_row *row)
{
	int64_t v;
	int ret;
	memset(row, 0, sizeof(*row));
	if ((ret = st_col_blob(st, s, 0, row->id, HL_HASH_LEN, "agreements.id")) < 0 ||
	    (ret = st_col_int(st, s, 1, 1, INT64_MAX, &row->peer_id, "agreements.peer_id")) < 0 ||
	    (ret = st_col_text(st, s, 2, row->peer_name, sizeof(row->peer_name), "peers.name")) < 0 ||
	    (ret = st_col_int(st, s, 3, 0, 1, &v, "agreements.dir")) < 0)
		return ret;
	row->dir = (enum hl_dir)v;
	if ((ret = st_col_u64(st, s, 4, &row->seq, "agreements.seq")) < 0 ||
	    (ret = st_col_text(st, s, 5, row->name, sizeof(row->name), "agreements.name")) < 0 ||
	    (ret = st_col_u64(st, s, 6, &row->size, "agreements.size")) < 0 ||
	    (ret = st_col_blob(st, s, 7, row->doc_hash, HL_HASH_LEN, "agreements.doc_hash")) < 0 ||
	    (ret = st_col_blob(st, s, 8, row->msg_id, HL_MSG_ID_LEN, "agreements.msg_id")) < 0 ||
	    (ret = st_col_int(st, s, 9, INT64_MIN, INT64_MAX, &row->proposed_at,
			      "agreements.proposed_at")) < 0 ||
	    (ret = st_col_int(st, s, 10, 0, INT64_MAX, &row->signed_at, "agreements.signed_at")) < 0 ||
	    (ret = st_col_u64(st, s, 11, &row->sign_seq, "agreements.sign_seq")) < 0)
		return ret;
	return 0;
}

int hl_store_insert_agreement(hl_store *st, const struct hl_agreement_row *row)
{
	sqlite3_stmt *s = NULL;
	int rc = SQLITE_OK, ret;
	size_t name_len = strnlen(row->name, sizeof(row->name));
	if (!st_dir_ok(row->dir) || row->seq < 1 || row->seq > I64MAX || name_len == 0 ||
	    name_len == sizeof(row->name) || row->size > I64MAX)
		return st_fail(st, HL_EINVAL, "bad agreement row (dir %d, seq %" PRIu64 ")",
			       (int)row->dir, row->seq);
	if ((ret = st_adhoc(st, "INSERT INTO agreements (id, peer_id, dir, seq, name, size,"
			    " doc_hash, msg_id, proposed_at, signed_at, sign_seq) VALUES (?1, ?2,"
			    " ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)", &s)) < 0)
		return ret;
	BIND(sqlite3_bind_blob(s, 1, row->id, HL_HASH_LEN, SQLITE_STATIC));
	BIND(sqlite3_bind_int64(s, 2, row->peer_id));
	BIND(sqlite3_bind_int(s, 3, (int)row->dir));
	BIND(sqlite3_bind_int64(s, 4, (int64_t)row->seq));
	BIND(sqlite3_bind_text(s, 5, row->name, (int)name_len, SQLITE_STATIC));
	BIND(sqlite3_bind_int64(s, 6, (int64_t)row->size));
	BIND(sqlite3_bind_blob(s, 7, row->doc_hash, HL_HASH_LEN, SQLITE_STATIC));
	BIND(sqlite3_bind_blob(s, 8, row->msg_id, HL_MSG_ID_LEN, SQLITE_STATIC));
	BIND(sqlite3_bind_int64(s, 9, row->proposed_at));
	BIND(sqlite3_bind_int64(s, 10, row->signed_at));
	BIND(sqlite3_bind_int64(s, 11, (int64_t)(row->sign_seq > I64MAX ? 0 : row->sign_seq)));
	ret = rc != SQLITE_OK ? st_sqlerr(st, rc) : st_step_done(st, s);
	sqlite3_finalize(s);
	return ret;
}

int hl_store_get_agreement_by_id(hl_store *st, const uint8_t id[static HL_HASH_LEN],
				 struct hl_agreement_row *row)
{
	sqlite3_stmt *s = NULL;
	int ret;
	memset(row, 0, sizeof(*row));
	if ((ret = st_adhoc(st, "SELECT " AGREEMENT_COLS " FROM agreements a JOIN peers p"
			    " ON p.id = a.peer_id WHERE a.id = ?1", &s)) < 0)
		return ret;
	int rc = sqlite3_bind_blob(s, 1, id, HL_HASH_LEN, SQLITE_STATIC);
	if (rc != SQLITE_OK)
		ret = st_sqlerr(st, rc);
	else if ((ret = st_step_row(st, s)) == 0)
		ret = st_fail(st, HL_ENOTFOUND, "no such agreement");
	else if (ret > 0)
		ret = read_agreement(st, s, row);
	sqlite3_finalize(s);
	return ret < 0 ? ret : 0;
}

int hl_store_get_agreement(hl_store *st, const char *id_prefix_hex,
			   struct hl_agreement_row *row)
{
	static const struct st_id_kind kind = { "an", "agreement", "agreements.id", HL_HASH_LEN };
	uint8_t id[HL_HASH_LEN];
	sqlite3_stmt *s = NULL;
	int ret;
	memset(row, 0, sizeof(*row));
	if ((ret = st_adhoc(st, "SELECT id FROM agreements WHERE id BETWEEN ?1 AND ?2 LIMIT 2",
			    &s)) < 0)
		return ret;
	ret = st_id_by_prefix(st, s, &kind, id_prefix_hex, id);
	sqlite3_finalize(s);
	return ret < 0 ? ret : hl_store_get_agreement_by_id(st, id, row);
}

int hl_store_set_agreement_signed(hl_store *st, const uint8_t id[static HL_HASH_LEN],
				  uint64_t sign_seq, int64_t at_ms)
{
	sqlite3_stmt *s = NULL;
	int rc = SQLITE_OK, ret;
	if (sign_seq < 1 || sign_seq > I64MAX)
		return st_fail(st, HL_EINVAL, "bad countersign seq %" PRIu64, sign_seq);
	if ((ret = st_adhoc(st, "UPDATE agreements SET signed_at = ?2, sign_seq = ?3"
			    " WHERE id = ?1 AND sign_seq = 0", &s)) < 0)
		return ret;
	BIND(sqlite3_bind_blob(s, 1, id, HL_HASH_LEN, SQLITE_STATIC));
	BIND(sqlite3_bind_int64(s, 2, at_ms));
	BIND(sqlite3_bind_int64(s, 3, (int64_t)sign_seq));
	ret = rc != SQLITE_OK ? st_sqlerr(st, rc) : st_step_done(st, s);
	sqlite3_finalize(s);
	return ret;
}

int hl_store_each_agreement(hl_store *st, int64_t peer_id,
			    int (*fn)(void *arg, const struct hl_agreement_row *row), void *arg)
{
	sqlite3_stmt *s = NULL;
	int ret;
	if ((ret = st_adhoc(st, "SELECT " AGREEMENT_COLS " FROM agreements a JOIN peers p"
			    " ON p.id = a.peer_id WHERE ?1 = 0 OR a.peer_id = ?1"
			    " ORDER BY a.proposed_at, a.rowid", &s)) < 0)
		return ret;
	int rc = sqlite3_bind_int64(s, 1, peer_id);
	if (rc != SQLITE_OK) {
		ret = st_sqlerr(st, rc);
		goto out;
	}
	while ((ret = st_step_row(st, s)) > 0) {
		struct hl_agreement_row row;
		if ((ret = read_agreement(st, s, &row)) < 0 || (ret = fn(arg, &row)) != 0)
			break;
	}
	if (ret > 0)
		ret = 0;
out:
	sqlite3_finalize(s);
	return ret;
}
