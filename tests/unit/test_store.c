/* tests/unit/test_store.c — the SQLite store (store/store.h): schema and
 * migrations, chains, messages, transactions, two processes writing at
 * once, a full disk, corrupt rows, and the IN contiguity mark at 100,000
 * items.  Each test runs in a fresh mkdtemp directory.  Raw SQL appears only
 * where a test plays an old or a damaged store. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <ftw.h>
#include <signal.h>
#include <sodium.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "msg/item.h"
#include "store/store.h"
#include "util/err.h"
#include "util/text.h"

struct fx {
	char dir[40];
	hl_store *st;
};

static uint8_t me_pk[32];

/* Ed25519 seeds: ours, and peer N's. */
#define ME_SEED 0x11
#define PEER_SEED(n) (0x30 + (n))

/* Signs IT (into B) with the key made from SEED_BYTE. */
static void sign_item(struct hl_item *it, int seed_byte, uint8_t *out, size_t cap, size_t *len)
{
	uint8_t seed[32];
	hl_signer *sg = NULL;
	memset(seed, seed_byte, sizeof(seed));
	assert_int_equal(hl_signer_from_raw_for_tests(&sg, NULL, seed), 0);
	assert_int_equal(hl_item_encode_sign(it, sg, out, cap, len), 0);
	hl_signer_free(sg);
}

static void peer_keys(unsigned n, uint8_t pk[32], uint8_t sk[64], uint8_t noise[32])
{
	uint8_t seed[32];
	memset(seed, PEER_SEED(n), sizeof(seed));
	crypto_sign_seed_keypair(pk, sk, seed);
	memset(noise, (int)(0x60 + n), 32);
}

static int setup(void **state)
{
	uint8_t seed[32];
	if (sodium_init() < 0)
		return -1;
	uint8_t me_sk[64];
	memset(seed, ME_SEED, sizeof(seed));
	crypto_sign_seed_keypair(me_pk, me_sk, seed);
	sodium_memzero(me_sk, sizeof(me_sk));
	struct fx *f = calloc(1, sizeof(*f));
	if (!f)
		return -1;
	snprintf(f->dir, sizeof(f->dir), "/tmp/hl-store-XXXXXX");
	if (!mkdtemp(f->dir) || hl_store_open(f->dir, &f->st) != 0) {
		free(f);
		return -1;
	}
	*state = f;
	return 0;
}

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static int teardown(void **state)
{
	struct fx *f = *state;
	hl_store_close(f->st);
	nftw(f->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	free(f);
	return 0;
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- raw access, for playing old or damaged stores ---- */

static void raw_exec(const char *dir, const char *sql)
{
	char path[128];
	sqlite3 *db = NULL;
	char *err = NULL;
	snprintf(path, sizeof(path), "%s/store.db", dir);
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	sqlite3_busy_timeout(db, 5000);
	int rc = sqlite3_exec(db, sql, NULL, NULL, &err);
	if (rc != SQLITE_OK)
		fail_msg("raw sql failed: %s: %s", sql, err ? err : "?");
	sqlite3_free(err);
	sqlite3_close(db);
}

static int64_t raw_int(const char *dir, const char *sql)
{
	char path[128];
	sqlite3 *db = NULL;
	sqlite3_stmt *s = NULL;
	snprintf(path, sizeof(path), "%s/store.db", dir);
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &s, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(s), SQLITE_ROW);
	int64_t v = sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	sqlite3_close(db);
	return v;
}

/* ---- fixtures built with the real item codec ---- */

struct built {
	uint8_t enc[HL_ITEM_MAX];
	size_t len;
	uint8_t hash[HL_HASH_LEN];
};

static int64_t add_peer(hl_store *st, unsigned n)
{
	uint8_t pk[32], sk[64], noise[32];
	char name[16];
	int64_t id = 0;
	peer_keys(n, pk, sk, noise);
	snprintf(name, sizeof(name), "peer%u", n);
	assert_int_equal(hl_store_peer(st, pk, noise, name, &id), 0);
	assert_true(id > 0);
	return id;
}

/* A signed message (ID given) or, with ID NULL, a receipt, of chain DIR
 * between us and peer N. */
static void build(struct built *b, unsigned peer_n, enum hl_dir dir, uint64_t seq,
		  const uint8_t *id, unsigned prec, uint64_t class_seq)
{
	uint8_t pk[32], sk[64], noise[32];
	struct hl_item it;
	peer_keys(peer_n, pk, sk, noise);
	memset(&it, 0, sizeof(it));
	memcpy(it.author, dir == HL_DIR_OUT ? me_pk : pk, 32);
	memcpy(it.counterpart, dir == HL_DIR_OUT ? pk : me_pk, 32);
	it.seq = seq;
	if (seq > 1)
		memset(it.prev, (int)seq, 32);
	it.time_ms = 1795000000000ull + seq;
	if (id) {
		it.kind = HL_ITEM_MESSAGE;
		memcpy(it.u.msg.id, id, HL_MSG_ID_LEN);
		it.u.msg.precedence = (uint8_t)prec;
		it.u.msg.class_seq = class_seq;
		it.u.msg.body_size = 4;
	} else {
		it.kind = HL_ITEM_RECEIPT;
		it.u.rcpt.count = 1;
		it.u.rcpt.entries[0].seq = 1;
	}
	sign_item(&it, dir == HL_DIR_OUT ? ME_SEED : PEER_SEED(peer_n), b->enc, sizeof(b->enc),
		  &b->len);
	hl_item_hash(b->enc, b->len, b->hash);
}

static int put_item(hl_store *st, int64_t peer, unsigned peer_n, enum hl_dir dir,
		    uint64_t seq, const uint8_t *id, unsigned prec, struct built *out)
{
	static struct built tmp;
	struct built *b = out ? out : &tmp;
	build(b, peer_n, dir, seq, id, prec, seq);
	struct hl_item_row row = {
		.peer_id = peer, .dir = dir, .seq = seq,
		.kind = id ? HL_ITEM_MESSAGE : HL_ITEM_RECEIPT,
		.encoded = b->enc, .encoded_len = b->len,
		.precedence = id ? prec : HL_PREC_FLASH, .stored_at = 1000 + (int64_t)seq,
	};
	memcpy(row.hash, b->hash, HL_HASH_LEN);
	return hl_store_insert_item(st, &row);
}

static void make_id(uint8_t id[HL_MSG_ID_LEN], unsigned n)
{
	memset(id, 0, HL_MSG_ID_LEN);
	id[0] = 0xab;
	id[1] = 0xcd;
	id[14] = (uint8_t)(n >> 8);
	id[15] = (uint8_t)n;
}

/* An item (unless WITH_ITEM is false) and its message, in one transaction
 * of their own. */
static void put_msg_ex(hl_store *st, int64_t peer, unsigned peer_n, enum hl_dir dir,
		       uint64_t seq, const uint8_t id[HL_MSG_ID_LEN], unsigned prec,
		       uint64_t class_seq, const char *subject, const char *body, unsigned n_att,
		       bool with_item)
{
	struct built b;
	struct hl_att_row att[2];
	build(&b, peer_n, dir, seq, id, prec, class_seq);
	struct hl_item_row irow = {
		.peer_id = peer, .dir = dir, .seq = seq, .kind = HL_ITEM_MESSAGE,
		.encoded = b.enc, .encoded_len = b.len, .precedence = prec, .stored_at = 5,
	};
	memcpy(irow.hash, b.hash, HL_HASH_LEN);
	memset(att, 0, sizeof(att));
	for (unsigned i = 0; i < 2; i++) {
		snprintf(att[i].name, sizeof(att[i].name), "annex-%u.pdf", i);
		att[i].size = 1000 * (i + 1);
		memset(att[i].hash, (int)(0x70 + i), HL_HASH_LEN);
		snprintf(att[i].path, sizeof(att[i].path), "files/%u/%u", (unsigned)seq, i);
	}
	struct hl_msg_row m = {
		.peer_id = peer, .dir = dir, .seq = seq, .precedence = prec,
		.class_seq = class_seq, .subject = (char *)subject,
		.body = (uint8_t *)body, .body_size = body ? strlen(body) : 4,
		.sent_at = 1795000000000 + (int64_t)seq,
		.state = dir == HL_DIR_OUT ? HL_MSG_QUEUED : HL_MSG_PARTIAL,
		.n_att = n_att, .att = n_att ? att : NULL,
	};
	memcpy(m.id, id, HL_MSG_ID_LEN);
	memset(m.salt, 0x5a, HL_SALT_LEN);
	assert_int_equal(hl_store_begin(st), 0);
	if (with_item)
		assert_int_equal(hl_store_insert_item(st, &irow), 0);
	assert_int_equal(hl_store_insert_message(st, &m), 0);
	assert_int_equal(hl_store_commit(st), 0);
}

static void put_msg(hl_store *st, int64_t peer, unsigned peer_n, enum hl_dir dir, uint64_t seq,
		    const uint8_t id[HL_MSG_ID_LEN], unsigned prec, uint64_t class_seq,
		    const char *subject, const char *body, unsigned n_att)
{
	put_msg_ex(st, peer, peer_n, dir, seq, id, prec, class_seq, subject, body, n_att, true);
}

/* ---- open, schema, migrations ---- */

static void test_open_create_reopen(void **state)
{
	struct fx *f = *state;
	char path[128];
	struct stat sb;
	hl_store *st = NULL;
	snprintf(path, sizeof(path), "%s/store.db", f->dir);
	assert_int_equal(stat(path, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0600);
	assert_int_equal(raw_int(f->dir, "PRAGMA user_version"), HL_STORE_SCHEMA_VERSION);
	assert_int_equal(raw_int(f->dir, "PRAGMA application_id"), 0x686f746c);
	/* WAL is a property of the file: a fresh connection sees it. */
	assert_int_equal(raw_int(f->dir, "SELECT journal_mode = 'wal' FROM pragma_journal_mode"), 1);
	int64_t p = add_peer(f->st, 1);
	hl_store_close(f->st);
	f->st = NULL;
	assert_int_equal(hl_store_open(f->dir, &f->st), 0);
	assert_int_equal(add_peer(f->st, 1), p);
	assert_int_equal(hl_store_verify(f->st), 0);

	/* A directory that does not exist: an error naming the file. */
	char missing[128];
	snprintf(missing, sizeof(missing), "%s/nope", f->dir);
	assert_int_equal(hl_store_open(missing, &st), -ENOENT);
	assert_null(st);
	assert_non_null(strstr(hl_store_open_errmsg(), "nope/store.db"));
	assert_int_equal(hl_store_open_version(f->dir, HL_STORE_SCHEMA_VERSION + 1, &st), HL_EINVAL);

	/* NULL-safe destructors. */
	hl_store_close(NULL);
	hl_msg_row_clear(NULL);
	hl_store_rollback(NULL);
	assert_string_equal(hl_msg_state_name(HL_MSG_DELIVERED), "delivered");
	assert_null(hl_msg_state_name((enum hl_msg_state)7));
}

static void test_migration_from_v1(void **state)
{
	struct fx *f = *state;
	char dir[128], sql[512];
	hl_store *st = NULL;
	uint8_t id[HL_MSG_ID_LEN];
	struct built b[5];
	snprintf(dir, sizeof(dir), "%s/old", f->dir);
	assert_int_equal(mkdir(dir, 0700), 0);

	/* A store as version 1 left it: a peer, an OUT item, IN items 1, 2, 3
	 * and 5 (written as version 1 would, without the derived mark), and an
	 * IN message with attachments. */
	assert_int_equal(hl_store_open_version(dir, 1, &st), 0);
	assert_int_equal(raw_int(dir, "PRAGMA user_version"), 1);
	int64_t p = add_peer(st, 1);
	assert_int_equal(put_item(st, p, 1, HL_DIR_OUT, 1, NULL, 0, NULL), 0);
	hl_store_close(st);
	const uint64_t seqs[] = { 1, 2, 3, 5 };
	for (int i = 0; i < 4; i++) {
		char hex[2 * HL_HASH_LEN + 1];
		make_id(id, (unsigned)seqs[i]);
		build(&b[i], 1, HL_DIR_IN, seqs[i], id, HL_PREC_ROUTINE, seqs[i]);
		hl_hex(b[i].hash, HL_HASH_LEN, hex);
		snprintf(sql, sizeof(sql), "INSERT INTO items (peer_id, dir, seq, kind, hash, "
			 "encoded, precedence, stored_at) VALUES (%lld, 1, %llu, 1, x'%s', "
			 "x'00', 0, 0)", (long long)p, (unsigned long long)seqs[i], hex);
		raw_exec(dir, sql);
	}
	assert_int_equal(hl_store_open_version(dir, 1, &st), 0);
	make_id(id, 2);
	put_msg_ex(st, p, 1, HL_DIR_IN, 2, id, HL_PREC_ROUTINE, 2, "old", NULL, 2, false);
	hl_store_close(st);
	assert_int_equal(raw_int(dir, "PRAGMA user_version"), 1);

	/* Reopened by this code: migrated, and the derived values backfilled. */
	assert_int_equal(hl_store_open(dir, &st), 0);
	assert_int_equal(raw_int(dir, "PRAGMA user_version"), HL_STORE_SCHEMA_VERSION);
	struct hl_chain_head h;
	assert_int_equal(hl_store_in_contiguous(st, p, &h), 0);
	assert_int_equal(h.seq, 3);
	assert_memory_equal(h.hash, b[2].hash, HL_HASH_LEN);
	uint64_t usage = 0;
	assert_int_equal(hl_store_peer_usage(st, p, &usage), 0);
	/* Every row and file (store.h): the four IN items of one byte, the OUT
	 * receipt we authored, the message (subject "old", body 4, a
	 * directory) and its two attachments (a block each). */
	int64_t rlen = raw_int(dir, "SELECT length(encoded) FROM items WHERE dir = 0");
	assert_int_equal(usage, 4 * (HL_STORE_ROW_COST + 1) + (HL_STORE_ROW_COST + rlen) +
					(HL_STORE_ROW_COST + 3 + 4 + HL_STORE_BLOCK_COST) +
					2 * (HL_STORE_ROW_COST + HL_STORE_BLOCK_COST));
	assert_int_equal(hl_store_verify(st), 0);
	/* And it works on: item 4 joins the run up to 5. */
	assert_int_equal(put_item(st, p, 1, HL_DIR_IN, 4, NULL, 0, NULL), 0);
	assert_int_equal(hl_store_in_contiguous(st, p, &h), 0);
	assert_int_equal(h.seq, 5);
	struct hl_msg_row m;
	assert_int_equal(hl_store_get_message_by_id(st, id, &m), 0);
	assert_string_equal(m.subject, "old");
	assert_int_equal(m.n_att, 2);
	hl_msg_row_clear(&m);
	hl_store_close(st);
}

static void test_future_version_refused(void **state)
{
	struct fx *f = *state;
	hl_store *st = NULL;
	add_peer(f->st, 1);
	hl_store_close(f->st);
	f->st = NULL;
	raw_exec(f->dir, "PRAGMA user_version = 99");
	assert_int_equal(hl_store_open(f->dir, &st), HL_EUNSUPP);
	assert_null(st);
	assert_non_null(strstr(hl_store_open_errmsg(), "99"));
	assert_non_null(strstr(hl_store_open_errmsg(), "newer"));
	/* Refused, not touched. */
	assert_int_equal(raw_int(f->dir, "PRAGMA user_version"), 99);
	assert_int_equal(raw_int(f->dir, "SELECT count(*) FROM peers"), 1);

	/* Some other program's SQLite file is not taken over. */
	char dir[128];
	snprintf(dir, sizeof(dir), "%s/other", f->dir);
	assert_int_equal(mkdir(dir, 0700), 0);
	raw_exec(dir, "CREATE TABLE t (x)");
	assert_int_equal(hl_store_open(dir, &st), HL_EINVAL);
	assert_non_null(strstr(hl_store_open_errmsg(), "not a hotline store"));
	assert_int_equal(raw_int(dir, "SELECT count(*) FROM sqlite_schema"), 1);
}

/* ---- peers ---- */

static void test_peers_upsert(void **state)
{
	struct fx *f = *state;
	uint8_t pk[32], sk[64], noise[32];
	int64_t a = add_peer(f->st, 1), b = add_peer(f->st, 2), again = 0;
	assert_true(a != b);
	hl_store *other = NULL;
	assert_int_equal(hl_store_open(f->dir, &other), 0);
	assert_false(hl_store_changed(other));

	/* Unchanged: the same id and no write at all (the daemon's poll stays
	 * quiet). */
	peer_keys(1, pk, sk, noise);
	assert_int_equal(hl_store_peer(f->st, pk, noise, "peer1", &again), 0);
	assert_int_equal(again, a);
	assert_false(hl_store_changed(other));

	/* Renamed and rekeyed: the same id, new values. */
	noise[0] ^= 1;
	assert_int_equal(hl_store_peer(f->st, pk, noise, "moscow", &again), 0);
	assert_int_equal(again, a);
	assert_true(hl_store_changed(other));
	assert_false(hl_store_changed(other));
	assert_int_equal(raw_int(f->dir, "SELECT count(*) FROM peers WHERE name = 'moscow'"), 1);
	assert_int_equal(raw_int(f->dir, "SELECT count(*) FROM peers"), 2);

	char long_name[80];
	memset(long_name, 'x', sizeof(long_name) - 1);
	long_name[sizeof(long_name) - 1] = '\0';
	assert_int_equal(hl_store_peer(f->st, pk, noise, long_name, &again), HL_ETOOBIG);
	assert_int_equal(hl_store_peer(f->st, pk, noise, NULL, &again), HL_EINVAL);
	hl_store_close(other);
}

/* ---- chains ---- */

static void test_chain_items(void **state)
{
	struct fx *f = *state;
	struct built b1, b2, b3, i1, i2;
	uint8_t id[HL_MSG_ID_LEN], buf[HL_ITEM_MAX], zero[HL_HASH_LEN] = { 0 };
	struct hl_chain_head h;
	struct hl_item_row row;
	int64_t p = add_peer(f->st, 1);

	assert_int_equal(hl_store_chain_head(f->st, p, HL_DIR_OUT, &h), 0);
	assert_int_equal(h.seq, 0);
	assert_memory_equal(h.hash, zero, HL_HASH_LEN);
	assert_int_equal(hl_store_chain_head(f->st, p, HL_DIR_IN, &h), 0);
	assert_int_equal(h.seq, 0);

	make_id(id, 1);
	assert_int_equal(put_item(f->st, p, 1, HL_DIR_OUT, 1, id, HL_PREC_ROUTINE, &b1), 0);
	assert_int_equal(put_item(f->st, p, 1, HL_DIR_OUT, 2, NULL, 0, &b2), 0);
	make_id(id, 3);
	assert_int_equal(put_item(f->st, p, 1, HL_DIR_OUT, 3, id, HL_PREC_PRIORITY, &b3), 0);
	assert_int_equal(put_item(f->st, p, 1, HL_DIR_IN, 1, NULL, 0, &i1), 0);
	make_id(id, 2);
	assert_int_equal(put_item(f->st, p, 1, HL_DIR_IN, 2, id, HL_PREC_FLASH, &i2), 0);

	assert_int_equal(hl_store_chain_head(f->st, p, HL_DIR_OUT, &h), 0);
	assert_int_equal(h.seq, 3);
	assert_memory_equal(h.hash, b3.hash, HL_HASH_LEN);
	assert_int_equal(hl_store_chain_head(f->st, p, HL_DIR_IN, &h), 0);
	assert_int_equal(h.seq, 2);
	assert_memory_equal(h.hash, i2.hash, HL_HASH_LEN);

	assert_int_equal(hl_store_get_item(f->st, p, HL_DIR_OUT, 2, &row, buf, sizeof(buf)), 0);
	assert_int_equal(row.kind, HL_ITEM_RECEIPT);
	assert_int_equal(row.seq, 2);
	assert_int_equal(row.dir, HL_DIR_OUT);
	assert_int_equal(row.precedence, HL_PREC_FLASH);
	assert_false(row.acked);
	assert_int_equal(row.stored_at, 1002);
	assert_ptr_equal(row.encoded, buf);
	assert_int_equal(row.encoded_len, b2.len);
	assert_memory_equal(row.encoded, b2.enc, b2.len);
	assert_memory_equal(row.hash, b2.hash, HL_HASH_LEN);
	/* What comes back is the signed item itself. */
	struct hl_item it;
	assert_int_equal(hl_item_open(row.encoded, row.encoded_len, me_pk, NULL, &it), 0);
	assert_int_equal(it.seq, 2);

	assert_int_equal(hl_store_get_item(f->st, p, HL_DIR_IN, 2, &row, buf, sizeof(buf)), 0);
	assert_int_equal(row.kind, HL_ITEM_MESSAGE);
	assert_memory_equal(row.encoded, i2.enc, i2.len);
	assert_int_equal(hl_store_get_item(f->st, p, HL_DIR_IN, 3, &row, buf, sizeof(buf)),
			 HL_ENOTFOUND);
	assert_int_equal(hl_store_get_item(f->st, p + 1, HL_DIR_OUT, 1, &row, buf, sizeof(buf)),
			 HL_ENOTFOUND);
	assert_int_equal(hl_store_get_item(f->st, p, HL_DIR_OUT, 1, &row, buf, 10), HL_ETOOBIG);

	/* Rows the format forbids are refused before SQL. */
	struct hl_item_row bad = { .peer_id = p, .dir = HL_DIR_OUT, .seq = 0,
				   .kind = HL_ITEM_MESSAGE, .encoded = b1.enc,
				   .encoded_len = b1.len };
	assert_int_equal(hl_store_insert_item(f->st, &bad), HL_EINVAL);
	bad.seq = UINT64_MAX;
	assert_int_equal(hl_store_insert_item(f->st, &bad), HL_EINVAL);
	bad.seq = 9;
	bad.encoded_len = HL_ITEM_MAX + 1;
	assert_int_equal(hl_store_insert_item(f->st, &bad), HL_ETOOBIG);
	/* An unknown peer is a missing reference. */
	bad.encoded_len = b1.len;
	bad.peer_id = p + 100;
	assert_int_equal(hl_store_insert_item(f->st, &bad), HL_ENOTFOUND);
	assert_int_equal(hl_store_verify(f->st), 0);
}

static void test_duplicate_insert(void **state)
{
	struct fx *f = *state;
	struct built first, second;
	uint8_t buf[HL_ITEM_MAX], id[HL_MSG_ID_LEN];
	struct hl_item_row row;
	struct hl_chain_head h;
	int64_t p = add_peer(f->st, 1);

	assert_int_equal(put_item(f->st, p, 1, HL_DIR_OUT, 1, NULL, 0, &first), 0);
	make_id(id, 9);
	assert_int_equal(put_item(f->st, p, 1, HL_DIR_OUT, 1, id, HL_PREC_FLASH, &second), HL_EEXIST);
	assert_non_null(strstr(hl_store_errmsg(f->st), "UNIQUE"));
	assert_int_equal(hl_store_get_item(f->st, p, HL_DIR_OUT, 1, &row, buf, sizeof(buf)), 0);
	assert_memory_equal(row.encoded, first.enc, first.len);
	assert_int_equal(raw_int(f->dir, "SELECT count(*) FROM items"), 1);

	/* Inside a transaction a duplicate fails alone; the rest commits. */
	assert_int_equal(hl_store_begin(f->st), 0);
	assert_int_equal(put_item(f->st, p, 1, HL_DIR_IN, 1, NULL, 0, NULL), 0);
	assert_int_equal(put_item(f->st, p, 1, HL_DIR_IN, 1, NULL, 0, NULL), HL_EEXIST);
	assert_int_equal(put_item(f->st, p, 1, HL_DIR_IN, 2, NULL, 0, NULL), 0);
	assert_int_equal(hl_store_commit(f->st), 0);
	assert_int_equal(hl_store_in_contiguous(f->st, p, &h), 0);
	assert_int_equal(h.seq, 2);

	/* A duplicate message id, and a message whose second attachment is
	 * bad: neither leaves a trace. */
	make_id(id, 1);
	put_msg(f->st, p, 1, HL_DIR_IN, 3, id, HL_PREC_ROUTINE, 1, "s", NULL, 0);
	assert_int_equal(put_item(f->st, p, 1, HL_DIR_IN, 4, id, HL_PREC_ROUTINE, NULL), 0);
	struct hl_msg_row m = { .peer_id = p, .dir = HL_DIR_IN, .seq = 4, .class_seq = 2,
				.state = HL_MSG_PARTIAL, .body_size = 4 };
	memcpy(m.id, id, HL_MSG_ID_LEN);
	assert_int_equal(hl_store_insert_message(f->st, &m), HL_EEXIST);
	struct hl_att_row att[2];
	memset(att, 0, sizeof(att));
	strcpy(att[0].name, "a");
	strcpy(att[1].name, "b");
	att[0].size = 10;
	att[1].size = 10;
	att[1].done = 11;
	make_id(m.id, 2);
	m.n_att = 2;
	m.att = att;
	uint64_t before = 0, after = 0;
	assert_int_equal(hl_store_peer_usage(f->st, p, &before), 0);
	assert_int_equal(hl_store_insert_message(f->st, &m), HL_EINVAL);
	struct hl_msg_row got;
	assert_int_equal(hl_store_get_message_by_id(f->st, m.id, &got), HL_ENOTFOUND);
	assert_int_equal(hl_store_peer_usage(f->st, p, &after), 0);
	assert_int_equal(before, after);
	assert_int_equal(raw_int(f->dir, "SELECT count(*) FROM attachments"), 0);
	/* A message whose item is missing. */
	m.seq = 40;
	m.n_att = 0;
	assert_int_equal(hl_store_insert_message(f->st, &m), HL_ENOTFOUND);
	assert_int_equal(hl_store_verify(f->st), 0);
}

struct collect {
	uint64_t seqs[64];
	unsigned prec[64];
	size_t n;
	size_t stop_after;
};

static int collect_item(void *arg, const struct hl_item_row *row)
{
	struct collect *c = arg;
	assert_true(row->encoded_len > 0);
	assert_false(row->acked);
	assert_int_equal(row->dir, HL_DIR_OUT);
	c->prec[c->n] = row->precedence;
	c->seqs[c->n++] = row->seq;
	return c->stop_after && c->n >= c->stop_after;
}

static int fail_item(void *arg, const struct hl_item_row *row)
{
	(void)arg;
	(void)row;
	return HL_ETIMEOUT;
}

static void test_ack_and_unacked_order(void **state)
{
	struct fx *f = *state;
	uint8_t id[HL_MSG_ID_LEN], buf[HL_ITEM_MAX];
	struct hl_item_row row;
	struct collect c;
	int64_t p = add_peer(f->st, 1), q = add_peer(f->st, 2);
	/* seq: 1 routine, 2 receipt (flash), 3 priority, 4 routine, 5 flash,
	 * 6 immediate. */
	const int prec[] = { -1, HL_PREC_ROUTINE, -1, HL_PREC_PRIORITY, HL_PREC_ROUTINE,
			     HL_PREC_FLASH, HL_PREC_IMMEDIATE };
	for (uint64_t s = 1; s <= 6; s++) {
		make_id(id, (unsigned)s);
		assert_int_equal(put_item(f->st, p, 1, HL_DIR_OUT, s, prec[s] < 0 ? NULL : id,
					  prec[s] < 0 ? 0 : (unsigned)prec[s], NULL), 0);
	}
	/* Another peer's queue and IN items stay out of it. */
	assert_int_equal(put_item(f->st, q, 2, HL_DIR_OUT, 1, NULL, 0, NULL), 0);
	assert_int_equal(put_item(f->st, p, 1, HL_DIR_IN, 1, NULL, 0, NULL), 0);

	memset(&c, 0, sizeof(c));
	assert_int_equal(hl_store_each_unacked(f->st, p, 100, collect_item, &c), 0);
	const uint64_t want[] = { 2, 5, 6, 3, 1, 4 };
	assert_int_equal(c.n, 6);
	for (size_t i = 0; i < 6; i++)
		assert_int_equal(c.seqs[i], want[i]);
	assert_int_equal(c.prec[0], HL_PREC_FLASH);
	assert_int_equal(c.prec[5], HL_PREC_ROUTINE);

	memset(&c, 0, sizeof(c));
	assert_int_equal(hl_store_each_unacked(f->st, p, 3, collect_item, &c), 0);
	assert_int_equal(c.n, 3);
	assert_int_equal(c.seqs[2], 6);
	memset(&c, 0, sizeof(c));
	c.stop_after = 2;
	assert_int_equal(hl_store_each_unacked(f->st, p, SIZE_MAX, collect_item, &c), 0);
	assert_int_equal(c.n, 2);
	assert_int_equal(hl_store_each_unacked(f->st, p, 10, fail_item, NULL), HL_ETIMEOUT);

	assert_int_equal(hl_store_ack_range(f->st, p, 2, 3), 0);
	assert_int_equal(hl_store_ack_range(f->st, p, 2, 3), 0); /* again: no-op */
	assert_int_equal(hl_store_ack_range(f->st, p, 100, UINT64_MAX), 0);
	assert_int_equal(hl_store_ack_range(f->st, p, 5, 4), HL_EINVAL);
	memset(&c, 0, sizeof(c));
	assert_int_equal(hl_store_each_unacked(f->st, p, 100, collect_item, &c), 0);
	const uint64_t want2[] = { 5, 6, 1, 4 };
	assert_int_equal(c.n, 4);
	for (size_t i = 0; i < 4; i++)
		assert_int_equal(c.seqs[i], want2[i]);
	assert_int_equal(hl_store_get_item(f->st, p, HL_DIR_OUT, 3, &row, buf, sizeof(buf)), 0);
	assert_true(row.acked);
	assert_int_equal(hl_store_get_item(f->st, p, HL_DIR_OUT, 4, &row, buf, sizeof(buf)), 0);
	assert_false(row.acked);

	assert_int_equal(hl_store_ack_range(f->st, p, 1, UINT64_MAX), 0);
	memset(&c, 0, sizeof(c));
	assert_int_equal(hl_store_each_unacked(f->st, p, 100, collect_item, &c), 0);
	assert_int_equal(c.n, 0);
	memset(&c, 0, sizeof(c));
	assert_int_equal(hl_store_each_unacked(f->st, q, 100, collect_item, &c), 0);
	assert_int_equal(c.n, 1);
}

/* ---- IN contiguity ---- */

static uint64_t contig(hl_store *st, int64_t p, uint8_t *hash)
{
	struct hl_chain_head h;
	assert_int_equal(hl_store_in_contiguous(st, p, &h), 0);
	if (hash)
		memcpy(hash, h.hash, HL_HASH_LEN);
	return h.seq;
}

static void test_in_contiguous_and_ranges(void **state)
{
	struct fx *f = *state;
	struct built b2, b4;
	uint8_t hash[HL_HASH_LEN], tomb[HL_HASH_LEN], buf[HL_ITEM_MAX];
	uint64_t r[8][2];
	size_t n = 0;
	struct hl_item_row row;
	int64_t p = add_peer(f->st, 1);

	assert_int_equal(contig(f->st, p, hash), 0);
	assert_int_equal(put_item(f->st, p, 1, HL_DIR_IN, 2, NULL, 0, &b2), 0);
	assert_int_equal(contig(f->st, p, NULL), 0);
	assert_int_equal(put_item(f->st, p, 1, HL_DIR_IN, 1, NULL, 0, NULL), 0);
	assert_int_equal(contig(f->st, p, hash), 2);
	assert_memory_equal(hash, b2.hash, HL_HASH_LEN);
	assert_int_equal(put_item(f->st, p, 1, HL_DIR_IN, 5, NULL, 0, NULL), 0);
	assert_int_equal(put_item(f->st, p, 1, HL_DIR_IN, 4, NULL, 0, &b4), 0);
	assert_int_equal(contig(f->st, p, NULL), 2);
	/* A tombstone fills the gap like an item. */
	memset(tomb, 0xee, sizeof(tomb));
	assert_int_equal(hl_store_insert_tombstone(f->st, p, 3, tomb, 4), 0);
	assert_int_equal(contig(f->st, p, hash), 5);
	assert_int_equal(hl_store_insert_tombstone(f->st, p, 3, tomb, 4), HL_EEXIST);
	assert_int_equal(hl_store_insert_tombstone(f->st, p, 0, tomb, 4), HL_EINVAL);
	assert_int_equal(hl_store_get_item(f->st, p, HL_DIR_IN, 3, &row, buf, sizeof(buf)), 0);
	assert_int_equal(row.kind, 0);
	assert_null(row.encoded);
	assert_int_equal(row.encoded_len, 0);
	assert_memory_equal(row.hash, tomb, HL_HASH_LEN);
	/* The chain head is the highest present, gaps or not. */
	assert_int_equal(hl_store_insert_tombstone(f->st, p, 9, tomb, 1), 0);
	struct hl_chain_head h;
	assert_int_equal(hl_store_chain_head(f->st, p, HL_DIR_IN, &h), 0);
	assert_int_equal(h.seq, 9);

	/* Ranges above the mark: 7-8, 9-10, 12-14 -> [7,10] [12,14]. */
	const uint64_t more[] = { 7, 8, 10, 12, 13, 14, 20 };
	for (size_t i = 0; i < sizeof(more) / sizeof(more[0]); i++)
		assert_int_equal(put_item(f->st, p, 1, HL_DIR_IN, more[i], NULL, 0, NULL), 0);
	assert_int_equal(contig(f->st, p, NULL), 5);
	assert_int_equal(hl_store_in_ranges(f->st, p, 5, r, 8, &n), 0);
	assert_int_equal(n, 3);
	assert_int_equal(r[0][0], 7);
	assert_int_equal(r[0][1], 10);
	assert_int_equal(r[1][0], 12);
	assert_int_equal(r[1][1], 14);
	assert_int_equal(r[2][0], 20);
	assert_int_equal(r[2][1], 20);
	assert_int_equal(hl_store_in_ranges(f->st, p, 5, r, 2, &n), 0);
	assert_int_equal(n, 2);
	assert_int_equal(r[1][1], 14);
	assert_int_equal(hl_store_in_ranges(f->st, p, 0, r, 1, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(r[0][0], 1);
	assert_int_equal(r[0][1], 5);
	assert_int_equal(hl_store_in_ranges(f->st, p, 20, r, 8, &n), 0);
	assert_int_equal(n, 0);
	assert_int_equal(hl_store_in_ranges(f->st, p, 5, NULL, 0, &n), 0);
	assert_int_equal(n, 0);
	/* 6 closes the gap: the mark runs on to 10. */
	assert_int_equal(put_item(f->st, p, 1, HL_DIR_IN, 6, NULL, 0, NULL), 0);
	assert_int_equal(contig(f->st, p, NULL), 10);

	struct hl_chain_head none;
	assert_int_equal(hl_store_in_contiguous(f->st, p + 7, &none), HL_ENOTFOUND);
	assert_int_equal(hl_store_verify(f->st), 0);
}

/* The mark against a model, over a random arrival order with tombstones. */
static void test_in_contiguous_model(void **state)
{
	struct fx *f = *state;
	enum { N = 1500 };
	static uint64_t order[N];
	static bool have[N + 2];
	uint8_t h[HL_HASH_LEN];
	int64_t p = add_peer(f->st, 1);
	uint64_t rng = 0x9e3779b97f4a7c15ull;
	for (uint64_t i = 0; i < N; i++)
		order[i] = i + 1;
	for (size_t i = N - 1; i > 0; i--) {
		rng = rng * 6364136223846793005ull + 1442695040888963407ull;
		size_t j = (size_t)((rng >> 33) % (i + 1));
		uint64_t t = order[i];
		order[i] = order[j];
		order[j] = t;
	}
	memset(have, 0, sizeof(have));
	uint64_t model = 0;
	assert_int_equal(hl_store_begin(f->st), 0);
	for (size_t i = 0; i < N; i++) {
		uint64_t s = order[i];
		if (s % 7 == 0) {
			memset(h, (int)s, sizeof(h));
			assert_int_equal(hl_store_insert_tombstone(f->st, p, s, h, 4), 0);
		} else {
			uint8_t enc[40];
			struct hl_item_row row = { .peer_id = p, .dir = HL_DIR_IN, .seq = s,
						   .kind = HL_ITEM_RECEIPT, .encoded = enc,
						   .encoded_len = sizeof(enc),
						   .precedence = HL_PREC_FLASH };
			memset(enc, 1, sizeof(enc));
			memset(row.hash, (int)s, HL_HASH_LEN);
			assert_int_equal(hl_store_insert_item(f->st, &row), 0);
		}
		have[s] = true;
		while (have[model + 1])
			model++;
		assert_int_equal(contig(f->st, p, NULL), model);
		if (i % 100 == 0) {
			/* The first range above the mark starts at the next
			 * present seq. */
			uint64_t r[1][2];
			size_t n = 0, next = model + 2;
			assert_int_equal(hl_store_in_ranges(f->st, p, model, r, 1, &n), 0);
			while (next <= N && !have[next])
				next++;
			assert_int_equal(n, next <= N ? 1 : 0);
			if (n)
				assert_int_equal(r[0][0], next);
		}
	}
	assert_int_equal(hl_store_commit(f->st), 0);
	assert_int_equal(contig(f->st, p, NULL), N);
	assert_int_equal(hl_store_verify(f->st), 0);
}

static void test_in_contiguous_100k(void **state)
{
	struct fx *f = *state;
	enum { N = 100000, HALF = N / 2, BLOCK = 1000 };
	static bool have[N + 2];
	uint8_t enc[200];
	int64_t p = add_peer(f->st, 1);
	struct hl_item_row row = { .peer_id = p, .dir = HL_DIR_IN, .kind = HL_ITEM_MESSAGE,
				   .encoded = enc, .encoded_len = sizeof(enc),
				   .precedence = HL_PREC_ROUTINE };
	memset(enc, 0x42, sizeof(enc));
	memset(have, 0, sizeof(have));
	uint64_t model = 0;
	size_t done = 0;

	double t0 = now_s();
	assert_int_equal(hl_store_begin(f->st), 0);
	/* First half in blocks of 1,000, each block backwards (every block's
	 * last insert walks 1,000 items); second half evens, then odds
	 * backwards, so the last insert walks 50,000.  The mark is checked
	 * after every insert. */
	for (size_t i = 0; i < N; i++) {
		uint64_t s;
		if (i < HALF) {
			size_t blk = i / BLOCK, k = i % BLOCK;
			s = blk * BLOCK + (BLOCK - k);
		} else if (i < HALF + HALF / 2) {
			s = HALF + 2 * (i - HALF + 1);
		} else {
			s = N - 1 - 2 * (i - HALF - HALF / 2);
		}
		row.seq = s;
		memcpy(row.hash, &s, sizeof(s));
		assert_int_equal(hl_store_insert_item(f->st, &row), 0);
		have[s] = true;
		done++;
		while (have[model + 1])
			model++;
		uint8_t hash[HL_HASH_LEN];
		uint64_t got = contig(f->st, p, hash);
		assert_int_equal(got, model);
		if (got)
			assert_memory_equal(hash, &got, sizeof(got));
	}
	assert_int_equal(hl_store_commit(f->st), 0);
	double t1 = now_s();
	assert_int_equal(done, N);
	assert_int_equal(model, N);
	assert_int_equal(contig(f->st, p, NULL), N);

	for (int i = 0; i < 10000; i++)
		contig(f->st, p, NULL);
	double t2 = now_s();
	uint64_t r[4][2];
	size_t n = 9;
	assert_int_equal(hl_store_in_ranges(f->st, p, N, r, 4, &n), 0);
	assert_int_equal(n, 0);
	print_message("100k IN items with the mark checked after each: %.2f s; "
		      "10k in_contiguous: %.3f s\n", t1 - t0, t2 - t1);
	/* A hang guard, not a benchmark. */
	assert_true(t1 - t0 < 20.0);
	assert_true(t2 - t1 < 5.0);
	assert_int_equal(hl_store_verify(f->st), 0);
}

/* ---- messages ---- */

static void test_messages_get(void **state)
{
	struct fx *f = *state;
	uint8_t id[HL_MSG_ID_LEN], id2[HL_MSG_ID_LEN];
	char hex[2 * HL_MSG_ID_LEN + 1], pre[40];
	struct hl_msg_row m;
	int64_t p = add_peer(f->st, 1);

	make_id(id, 1);
	put_msg(f->st, p, 1, HL_DIR_OUT, 1, id, HL_PREC_IMMEDIATE, 1, "Subject \x1b[31m",
		"body text", 2);
	assert_int_equal(hl_store_get_message_by_id(f->st, id, &m), 0);
	assert_memory_equal(m.id, id, HL_MSG_ID_LEN);
	assert_int_equal(m.peer_id, p);
	assert_string_equal(m.peer_name, "peer1");
	assert_int_equal(m.dir, HL_DIR_OUT);
	assert_int_equal(m.seq, 1);
	assert_int_equal(m.precedence, HL_PREC_IMMEDIATE);
	assert_int_equal(m.class_seq, 1);
	/* Stored as given: sanitising is the display's job. */
	assert_string_equal(m.subject, "Subject \x1b[31m");
	assert_int_equal(m.body_size, 9);
	assert_memory_equal(m.body, "body text", 9);
	assert_int_equal(m.body_done, 9);
	assert_int_equal(m.sent_at, 1795000000001);
	assert_int_equal(m.state, HL_MSG_QUEUED);
	assert_null(m.reason);
	assert_false(m.unread);
	assert_int_equal(m.n_att, 2);
	assert_int_equal(m.att[1].idx, 1);
	assert_string_equal(m.att[1].name, "annex-1.pdf");
	assert_int_equal(m.att[1].size, 2000);
	assert_string_equal(m.att[1].path, "files/1/1");
	assert_int_equal(m.att[1].done, 0);
	uint8_t h71[HL_HASH_LEN];
	memset(h71, 0x71, sizeof(h71));
	assert_memory_equal(m.att[1].hash, h71, HL_HASH_LEN);
	hl_msg_row_clear(&m);
	assert_null(m.subject);
	assert_null(m.att);
	hl_msg_row_clear(&m); /* twice is fine */

	/* By hex: whole, 8 digits, odd length, upper case. */
	hl_hex(id, HL_MSG_ID_LEN, hex);
	assert_int_equal(hl_store_get_message(f->st, hex, &m), 0);
	assert_memory_equal(m.id, id, HL_MSG_ID_LEN);
	hl_msg_row_clear(&m);
	assert_int_equal(hl_store_get_message(f->st, "abcd0000", &m), 0);
	hl_msg_row_clear(&m);
	assert_int_equal(hl_store_get_message(f->st, "ABCD00000", &m), 0);
	hl_msg_row_clear(&m);

	/* A second id sharing the first 31 digits: every shorter prefix is
	 * ambiguous, the whole id is not. */
	make_id(id2, 2);
	put_msg(f->st, p, 1, HL_DIR_IN, 1, id2, HL_PREC_ROUTINE, 1, "", NULL, 0);
	assert_int_equal(hl_store_get_message(f->st, "abcd0000", &m), HL_EEXIST);
	assert_non_null(strstr(hl_store_errmsg(f->st), "ambiguous"));
	assert_null(m.subject);
	memcpy(pre, hex, 31);
	pre[31] = '\0';
	assert_int_equal(hl_store_get_message(f->st, pre, &m), HL_EEXIST);
	assert_int_equal(hl_store_get_message(f->st, hex, &m), 0);
	assert_memory_equal(m.id, id, HL_MSG_ID_LEN);
	assert_int_equal(m.dir, HL_DIR_OUT);
	hl_msg_row_clear(&m);
	hl_hex(id2, HL_MSG_ID_LEN, hex);
	assert_int_equal(hl_store_get_message(f->st, hex, &m), 0);
	assert_int_equal(m.dir, HL_DIR_IN);
	assert_true(m.unread);           /* IN starts unread */
	assert_null(m.body);             /* partial */
	assert_int_equal(m.state, HL_MSG_PARTIAL);
	assert_string_equal(m.subject, "");
	hl_msg_row_clear(&m);

	assert_int_equal(hl_store_get_message(f->st, "abcd000", &m), HL_EINVAL);
	assert_int_equal(hl_store_get_message(f->st, "abcd00zz", &m), HL_EINVAL);
	assert_int_equal(hl_store_get_message(f->st, "abcd0000-", &m), HL_EINVAL);
	assert_int_equal(hl_store_get_message(f->st, "", &m), HL_EINVAL);
	assert_int_equal(hl_store_get_message(f->st, NULL, &m), HL_EINVAL);
	memset(pre, 'a', 33);
	pre[33] = '\0';
	assert_int_equal(hl_store_get_message(f->st, pre, &m), HL_EINVAL);
	assert_int_equal(hl_store_get_message(f->st, "12345678", &m), HL_ENOTFOUND);
	id2[3] = 0x99;
	assert_int_equal(hl_store_get_message_by_id(f->st, id2, &m), HL_ENOTFOUND);
	assert_null(m.subject);

	/* Rows the format forbids. */
	struct hl_msg_row bad = { .peer_id = p, .dir = HL_DIR_OUT, .seq = 1, .class_seq = 1,
				  .state = HL_MSG_COMPLETE };
	assert_int_equal(hl_store_insert_message(f->st, &bad), HL_EINVAL);
	bad.state = HL_MSG_QUEUED;
	bad.precedence = 4;
	assert_int_equal(hl_store_insert_message(f->st, &bad), HL_EINVAL);
	bad.precedence = 0;
	bad.n_att = 65;
	assert_int_equal(hl_store_insert_message(f->st, &bad), HL_EINVAL);
	assert_int_equal(hl_store_verify(f->st), 0);
}

struct listing {
	unsigned ids[32];
	size_t n;
	hl_store *st;
	bool reenter;
};

static int list_msg(void *arg, const struct hl_msg_row *row)
{
	struct listing *l = arg;
	assert_non_null(row->subject);
	l->ids[l->n++] = (unsigned)(row->id[14] << 8 | row->id[15]);
	if (l->reenter) {
		/* Callbacks may use the store, the same query included. */
		struct hl_msg_row again;
		assert_int_equal(hl_store_get_message_by_id(l->st, row->id, &again), 0);
		assert_int_equal(again.seq, row->seq);
		hl_msg_row_clear(&again);
		struct listing inner = { .st = l->st };
		struct hl_msg_filter all = { .dir = row->dir };
		assert_int_equal(hl_store_each_message(l->st, &all, list_msg, &inner), 0);
		assert_true(inner.n >= 1);
	}
	return 0;
}

static int stop_msg(void *arg, const struct hl_msg_row *row)
{
	(void)row;
	++*(int *)arg;
	return 1;
}

static void test_each_message(void **state)
{
	struct fx *f = *state;
	uint8_t id[HL_MSG_ID_LEN];
	int64_t a = add_peer(f->st, 1), b = add_peer(f->st, 2);
	/* OUT to a (1, 2), to b (1), to a (3): the outbox lists them as sent. */
	make_id(id, 101);
	put_msg(f->st, a, 1, HL_DIR_OUT, 1, id, 0, 1, "a1", "x", 0);
	make_id(id, 102);
	put_msg(f->st, a, 1, HL_DIR_OUT, 2, id, 0, 2, "a2", "x", 0);
	make_id(id, 103);
	put_msg(f->st, b, 2, HL_DIR_OUT, 1, id, 3, 1, "b1", "x", 1);
	make_id(id, 104);
	put_msg(f->st, a, 1, HL_DIR_OUT, 3, id, 0, 3, "a3", "x", 0);
	/* IN: from a seq 1..3, from b seq 1..2; completed in another order. */
	make_id(id, 201);
	put_msg(f->st, a, 1, HL_DIR_IN, 1, id, 0, 1, "", NULL, 0);
	make_id(id, 202);
	put_msg(f->st, a, 1, HL_DIR_IN, 2, id, 0, 2, "", NULL, 2);
	make_id(id, 203);
	put_msg(f->st, a, 1, HL_DIR_IN, 3, id, 0, 3, "", NULL, 0);
	make_id(id, 211);
	put_msg(f->st, b, 2, HL_DIR_IN, 1, id, 0, 1, "", NULL, 0);
	make_id(id, 212);
	put_msg(f->st, b, 2, HL_DIR_IN, 2, id, 0, 2, "", NULL, 0);
	make_id(id, 212);
	assert_int_equal(hl_store_set_state(f->st, id, HL_MSG_COMPLETE, NULL, 500), 0);
	make_id(id, 201);
	assert_int_equal(hl_store_set_state(f->st, id, HL_MSG_COMPLETE, NULL, 700), 0);
	make_id(id, 203);
	assert_int_equal(hl_store_set_state(f->st, id, HL_MSG_COMPLETE, NULL, 700), 0);
	make_id(id, 211);
	assert_int_equal(hl_store_set_state(f->st, id, HL_MSG_COMPLETE, NULL, 600), 0);
	assert_int_equal(hl_store_mark_read(f->st, id), 0);

	struct listing l;
	struct hl_msg_filter flt = { .dir = HL_DIR_OUT };
	memset(&l, 0, sizeof(l));
	assert_int_equal(hl_store_each_message(f->st, &flt, list_msg, &l), 0);
	const unsigned out_all[] = { 101, 102, 103, 104 };
	assert_int_equal(l.n, 4);
	assert_memory_equal(l.ids, out_all, sizeof(out_all));
	flt.peer_id = a;
	memset(&l, 0, sizeof(l));
	assert_int_equal(hl_store_each_message(f->st, &flt, list_msg, &l), 0);
	const unsigned out_a[] = { 101, 102, 104 };
	assert_int_equal(l.n, 3);
	assert_memory_equal(l.ids, out_a, sizeof(out_a));

	/* IN: by received_at, then seq; the partial one (received_at 0) first
	 * when not filtered out. */
	flt = (struct hl_msg_filter){ .dir = HL_DIR_IN };
	memset(&l, 0, sizeof(l));
	assert_int_equal(hl_store_each_message(f->st, &flt, list_msg, &l), 0);
	const unsigned in_all[] = { 202, 212, 211, 201, 203 };
	assert_int_equal(l.n, 5);
	assert_memory_equal(l.ids, in_all, sizeof(in_all));
	flt.visible_only = true;
	memset(&l, 0, sizeof(l));
	assert_int_equal(hl_store_each_message(f->st, &flt, list_msg, &l), 0);
	const unsigned in_vis[] = { 212, 211, 201, 203 };
	assert_int_equal(l.n, 4);
	assert_memory_equal(l.ids, in_vis, sizeof(in_vis));
	flt.unread_only = true;
	memset(&l, 0, sizeof(l));
	assert_int_equal(hl_store_each_message(f->st, &flt, list_msg, &l), 0);
	const unsigned in_unread[] = { 212, 201, 203 };
	assert_int_equal(l.n, 3);
	assert_memory_equal(l.ids, in_unread, sizeof(in_unread));
	flt.peer_id = b;
	memset(&l, 0, sizeof(l));
	assert_int_equal(hl_store_each_message(f->st, &flt, list_msg, &l), 0);
	assert_int_equal(l.n, 1);
	assert_int_equal(l.ids[0], 212);

	int calls = 0;
	flt = (struct hl_msg_filter){ .dir = HL_DIR_IN };
	assert_int_equal(hl_store_each_message(f->st, &flt, stop_msg, &calls), 0);
	assert_int_equal(calls, 1);
	memset(&l, 0, sizeof(l));
	l.st = f->st;
	l.reenter = true;
	assert_int_equal(hl_store_each_message(f->st, &flt, list_msg, &l), 0);
	assert_int_equal(l.n, 5);
	flt.dir = (enum hl_dir)5;
	assert_int_equal(hl_store_each_message(f->st, &flt, stop_msg, &calls), HL_EINVAL);
}

static void test_state_read_body_parts_usage(void **state)
{
	struct fx *f = *state;
	uint8_t out1[HL_MSG_ID_LEN], out2[HL_MSG_ID_LEN], in1[HL_MSG_ID_LEN], nope[HL_MSG_ID_LEN];
	struct hl_msg_row m;
	uint64_t cs = 0, usage = 0;
	int64_t p = add_peer(f->st, 1), q = add_peer(f->st, 2);

	assert_int_equal(hl_store_next_class_seq(f->st, p, HL_PREC_FLASH, &cs), 0);
	assert_int_equal(cs, 1);
	make_id(out1, 1);
	put_msg(f->st, p, 1, HL_DIR_OUT, 1, out1, HL_PREC_FLASH, 1, "s", "b", 0);
	make_id(out2, 2);
	put_msg(f->st, p, 1, HL_DIR_OUT, 2, out2, HL_PREC_FLASH, 2, "s", "b", 0);
	assert_int_equal(hl_store_next_class_seq(f->st, p, HL_PREC_FLASH, &cs), 0);
	assert_int_equal(cs, 3);
	assert_int_equal(hl_store_next_class_seq(f->st, p, HL_PREC_ROUTINE, &cs), 0);
	assert_int_equal(cs, 1);
	assert_int_equal(hl_store_next_class_seq(f->st, q, HL_PREC_FLASH, &cs), 0);
	assert_int_equal(cs, 1);
	assert_int_equal(hl_store_next_class_seq(f->st, p, 4, &cs), HL_EINVAL);

	/* OUT: queued -> sent -> delivered; later, staler requests change
	 * nothing. */
	assert_int_equal(hl_store_set_state(f->st, out1, HL_MSG_SENT, NULL, 100), 0);
	assert_int_equal(hl_store_set_state(f->st, out1, HL_MSG_DELIVERED, NULL, 1234), 0);
	assert_int_equal(hl_store_set_state(f->st, out1, HL_MSG_SENT, NULL, 5), 0);
	assert_int_equal(hl_store_set_state(f->st, out1, HL_MSG_DELIVERED, NULL, 9999), 0);
	assert_int_equal(hl_store_set_state(f->st, out1, HL_MSG_REFUSED, "late", 9999), 0);
	assert_int_equal(hl_store_get_message_by_id(f->st, out1, &m), 0);
	assert_int_equal(m.state, HL_MSG_DELIVERED);
	assert_int_equal(m.delivered_at, 1234);
	assert_null(m.reason);
	hl_msg_row_clear(&m);
	assert_int_equal(hl_store_set_state(f->st, out2, HL_MSG_REFUSED, "content hash mismatch", 50), 0);
	assert_int_equal(hl_store_get_message_by_id(f->st, out2, &m), 0);
	assert_int_equal(m.state, HL_MSG_REFUSED);
	assert_string_equal(m.reason, "content hash mismatch");
	assert_int_equal(m.delivered_at, 0);
	hl_msg_row_clear(&m);
	assert_int_equal(hl_store_set_state(f->st, out2, HL_MSG_COMPLETE, NULL, 1), HL_EINVAL);
	assert_int_equal(hl_store_set_state(f->st, out2, (enum hl_msg_state)7, NULL, 1), HL_EINVAL);
	memset(nope, 0x99, sizeof(nope));
	assert_int_equal(hl_store_set_state(f->st, nope, HL_MSG_SENT, NULL, 1), HL_ENOTFOUND);

	/* IN: partial, body by chunks, attachments by parts, then complete. */
	make_id(in1, 3);
	put_msg(f->st, p, 1, HL_DIR_IN, 1, in1, HL_PREC_ROUTINE, 1, "in", NULL, 2);
	assert_int_equal(hl_store_peer_usage(f->st, p, &usage), 0);
	/* OUT messages do not count; the IN one's item, row (subject "in",
	 * body 4, a directory) and two attachments (a block each) do */
	int64_t ilen = raw_int(f->dir, "SELECT length(encoded) FROM items WHERE dir = 1");
	assert_int_equal(usage, (HL_STORE_ROW_COST + ilen) +
				(HL_STORE_ROW_COST + 2 + 4 + HL_STORE_BLOCK_COST) +
				2 * (HL_STORE_ROW_COST + HL_STORE_BLOCK_COST));
	assert_int_equal(hl_store_peer_usage(f->st, q, &usage), 0);
	assert_int_equal(usage, 0);
	assert_int_equal(hl_store_peer_usage(f->st, q + 5, &usage), HL_ENOTFOUND);

	assert_int_equal(hl_store_set_body_done(f->st, in1, 2), 0);
	assert_int_equal(hl_store_set_body_done(f->st, in1, 5), HL_EINVAL);
	assert_int_equal(hl_store_set_body_done(f->st, nope, 1), HL_ENOTFOUND);
	assert_int_equal(hl_store_set_part_done(f->st, in1, 0, 1000), 0);
	assert_int_equal(hl_store_set_part_done(f->st, in1, 1, 1500), 0);
	assert_int_equal(hl_store_set_part_done(f->st, in1, 1, 2001), HL_EINVAL);
	assert_int_equal(hl_store_set_part_done(f->st, in1, 2, 1), HL_ENOTFOUND);
	assert_int_equal(hl_store_set_part_done(f->st, in1, 64, 1), HL_EINVAL);
	assert_int_equal(hl_store_set_part_done(f->st, nope, 0, 1), HL_ENOTFOUND);
	assert_int_equal(hl_store_get_message_by_id(f->st, in1, &m), 0);
	assert_int_equal(m.body_done, 2);
	assert_null(m.body);
	assert_int_equal(m.att[0].done, 1000);
	assert_int_equal(m.att[1].done, 1500);
	assert_int_equal(m.received_at, 0);
	hl_msg_row_clear(&m);

	assert_int_equal(hl_store_set_body(f->st, in1, (const uint8_t *)"abc", 3), HL_EINVAL);
	assert_int_equal(hl_store_set_body(f->st, nope, (const uint8_t *)"abcd", 4), HL_ENOTFOUND);
	assert_int_equal(hl_store_set_body(f->st, in1, (const uint8_t *)"abcd", 4), 0);
	assert_int_equal(hl_store_set_state(f->st, in1, HL_MSG_SENT, NULL, 1), HL_EINVAL);
	assert_int_equal(hl_store_set_state(f->st, in1, HL_MSG_COMPLETE, NULL, 777), 0);
	assert_int_equal(hl_store_set_state(f->st, in1, HL_MSG_COMPLETE, NULL, 888), 0);
	assert_int_equal(hl_store_set_state(f->st, in1, HL_MSG_PARTIAL, NULL, 1), 0);
	assert_int_equal(hl_store_get_message_by_id(f->st, in1, &m), 0);
	assert_memory_equal(m.body, "abcd", 4);
	assert_int_equal(m.body_done, 4);
	assert_int_equal(m.state, HL_MSG_COMPLETE);
	assert_int_equal(m.received_at, 777);
	assert_true(m.unread);
	hl_msg_row_clear(&m);

	assert_int_equal(hl_store_mark_read(f->st, in1), 0);
	assert_int_equal(hl_store_mark_read(f->st, in1), 0);
	assert_int_equal(hl_store_mark_read(f->st, nope), HL_ENOTFOUND);
	assert_int_equal(hl_store_get_message_by_id(f->st, in1, &m), 0);
	assert_false(m.unread);
	hl_msg_row_clear(&m);

	/* An empty body is a body, not a missing one. */
	uint8_t in2[HL_MSG_ID_LEN];
	make_id(in2, 4);
	assert_int_equal(put_item(f->st, p, 1, HL_DIR_IN, 2, in2, 0, NULL), 0);
	struct hl_msg_row e = { .peer_id = p, .dir = HL_DIR_IN, .seq = 2, .class_seq = 2,
				.state = HL_MSG_PARTIAL, .body_size = 0 };
	memcpy(e.id, in2, HL_MSG_ID_LEN);
	assert_int_equal(hl_store_insert_message(f->st, &e), 0);
	assert_int_equal(hl_store_set_body(f->st, in2, NULL, 0), 0);
	assert_int_equal(hl_store_get_message_by_id(f->st, in2, &m), 0);
	assert_non_null(m.body);
	assert_int_equal(m.body_size, 0);
	hl_msg_row_clear(&m);
	assert_int_equal(hl_store_verify(f->st), 0);
}

/* ---- transactions, concurrency, durability ---- */

static void test_rollback_leaves_nothing(void **state)
{
	struct fx *f = *state;
	uint8_t id[HL_MSG_ID_LEN];
	struct hl_chain_head h;
	struct hl_msg_row m;
	uint64_t usage = 1;
	int64_t p = add_peer(f->st, 1);

	assert_int_equal(hl_store_commit(f->st), HL_ESTATE);
	hl_store_rollback(f->st); /* nothing open: harmless */

	assert_int_equal(hl_store_begin(f->st), 0);
	assert_int_equal(hl_store_begin(f->st), HL_ESTATE);
	int64_t q = add_peer(f->st, 2);
	assert_int_equal(put_item(f->st, p, 1, HL_DIR_IN, 1, NULL, 0, NULL), 0);
	assert_int_equal(put_item(f->st, p, 1, HL_DIR_OUT, 1, NULL, 0, NULL), 0);
	make_id(id, 1);
	assert_int_equal(put_item(f->st, p, 1, HL_DIR_IN, 2, id, 0, NULL), 0);
	struct hl_msg_row in = { .peer_id = p, .dir = HL_DIR_IN, .seq = 2, .class_seq = 1,
				 .state = HL_MSG_PARTIAL, .body_size = 77 };
	memcpy(in.id, id, HL_MSG_ID_LEN);
	assert_int_equal(hl_store_insert_message(f->st, &in), 0);
	assert_int_equal(contig(f->st, p, NULL), 2);
	hl_store_rollback(f->st);

	assert_int_equal(contig(f->st, p, NULL), 0);
	assert_int_equal(hl_store_chain_head(f->st, p, HL_DIR_OUT, &h), 0);
	assert_int_equal(h.seq, 0);
	assert_int_equal(hl_store_get_message_by_id(f->st, id, &m), HL_ENOTFOUND);
	assert_int_equal(hl_store_peer_usage(f->st, p, &usage), 0);
	assert_int_equal(usage, 0);
	assert_int_equal(hl_store_in_contiguous(f->st, q, &h), HL_ENOTFOUND);
	assert_int_equal(raw_int(f->dir, "SELECT count(*) FROM peers"), 1);
	assert_int_equal(raw_int(f->dir, "SELECT count(*) FROM items"), 0);
	assert_int_equal(hl_store_verify(f->st), 0);
	/* And the handle goes on working. */
	assert_int_equal(put_item(f->st, p, 1, HL_DIR_IN, 1, NULL, 0, NULL), 0);
	assert_int_equal(contig(f->st, p, NULL), 1);
}

/* A second process takes the write lock and holds it; this process's
 * BEGIN waits (busy timeout) and then succeeds. */
static void test_concurrent_writers(void **state)
{
	struct fx *f = *state;
	int ready[2];
	int64_t p = add_peer(f->st, 1);
	/* A SQLite connection must not cross fork(): close ours first. */
	hl_store_close(f->st);
	f->st = NULL;
	assert_int_equal(pipe(ready), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		hl_store *st = NULL;
		close(ready[0]);
		if (hl_store_open(f->dir, &st) != 0 || hl_store_begin(st) != 0)
			_exit(10);
		if (put_item(st, p, 1, HL_DIR_OUT, 1, NULL, 0, NULL) != 0)
			_exit(11);
		if (write(ready[1], "x", 1) != 1)
			_exit(12);
		usleep(400 * 1000);
		if (hl_store_commit(st) != 0)
			_exit(13);
		hl_store_close(st);
		_exit(0);
	}
	close(ready[1]);
	char c;
	assert_int_equal(read(ready[0], &c, 1), 1);
	close(ready[0]);
	assert_int_equal(hl_store_open(f->dir, &f->st), 0);
	double t0 = now_s();
	assert_int_equal(hl_store_begin(f->st), 0);
	double waited = now_s() - t0;
	/* The other writer's item is there once we hold the lock. */
	struct hl_chain_head h;
	assert_int_equal(hl_store_chain_head(f->st, p, HL_DIR_OUT, &h), 0);
	assert_int_equal(h.seq, 1);
	assert_int_equal(put_item(f->st, p, 1, HL_DIR_OUT, 2, NULL, 0, NULL), 0);
	assert_int_equal(hl_store_commit(f->st), 0);
	int status = 0;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	print_message("BEGIN IMMEDIATE waited %.3f s for the other writer\n", waited);
	assert_true(waited > 0.2);
	assert_true(waited < 9.0);
	assert_int_equal(hl_store_chain_head(f->st, p, HL_DIR_OUT, &h), 0);
	assert_int_equal(h.seq, 2);
}

static void test_changed_and_durable_reopen(void **state)
{
	struct fx *f = *state;
	uint8_t id[HL_MSG_ID_LEN], buf[HL_ITEM_MAX];
	struct built out1, in1;
	hl_store *other = NULL;
	assert_int_equal(hl_store_open(f->dir, &other), 0);
	assert_false(hl_store_changed(other));

	int64_t p = add_peer(f->st, 1);
	assert_true(hl_store_changed(other));
	assert_false(hl_store_changed(other));
	assert_false(hl_store_changed(f->st)); /* its own writes do not count */
	make_id(id, 1);
	put_msg(f->st, p, 1, HL_DIR_OUT, 1, id, HL_PREC_FLASH, 1, "out", "out body", 2);
	struct hl_item_row row;
	assert_int_equal(hl_store_get_item(f->st, p, HL_DIR_OUT, 1, &row, buf, sizeof(buf)), 0);
	memcpy(out1.enc, buf, row.encoded_len);
	out1.len = row.encoded_len;
	assert_int_equal(put_item(f->st, p, 1, HL_DIR_IN, 1, NULL, 0, &in1), 0);
	assert_int_equal(hl_store_set_state(f->st, id, HL_MSG_DELIVERED, NULL, 42), 0);
	assert_int_equal(hl_store_ack_range(f->st, p, 1, 1), 0);
	assert_true(hl_store_changed(other));
	/* The other handle reads what this one committed. */
	struct hl_msg_row m;
	assert_int_equal(hl_store_get_message_by_id(other, id, &m), 0);
	assert_int_equal(m.state, HL_MSG_DELIVERED);
	hl_msg_row_clear(&m);
	hl_store_close(other);
	hl_store_close(f->st);
	f->st = NULL;

	/* Everything is there after both handles closed. */
	assert_int_equal(hl_store_open(f->dir, &f->st), 0);
	assert_int_equal(hl_store_get_message_by_id(f->st, id, &m), 0);
	assert_string_equal(m.subject, "out");
	assert_memory_equal(m.body, "out body", 8);
	assert_int_equal(m.state, HL_MSG_DELIVERED);
	assert_int_equal(m.delivered_at, 42);
	assert_int_equal(m.n_att, 2);
	hl_msg_row_clear(&m);
	assert_int_equal(hl_store_get_item(f->st, p, HL_DIR_OUT, 1, &row, buf, sizeof(buf)), 0);
	assert_true(row.acked);
	assert_int_equal(row.encoded_len, out1.len);
	assert_memory_equal(buf, out1.enc, out1.len);
	assert_int_equal(hl_store_get_item(f->st, p, HL_DIR_IN, 1, &row, buf, sizeof(buf)), 0);
	assert_memory_equal(row.encoded, in1.enc, in1.len);
	assert_int_equal(contig(f->st, p, NULL), 1);
	assert_int_equal(hl_store_verify(f->st), 0);
}

/* A full disk (a file size limit in a child process): the failing write
 * reports HL_ESTORE with SQLite's text, nothing half-written remains, and
 * what was committed before survives. */
static void test_disk_full(void **state)
{
	struct fx *f = *state;
	int64_t p = add_peer(f->st, 1);
	uint8_t keep[HL_MSG_ID_LEN];
	make_id(keep, 1);
	put_msg(f->st, p, 1, HL_DIR_IN, 1, keep, 0, 1, "kept", NULL, 0);
	hl_store_close(f->st);
	f->st = NULL;
	int pipefd[2];
	assert_int_equal(pipe(pipefd), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		hl_store *st = NULL;
		char msg[300];
		int failed_at = 0, code = 0;
		close(pipefd[0]);
		signal(SIGXFSZ, SIG_IGN);
		if (hl_store_open(f->dir, &st) != 0)
			_exit(10);
		struct rlimit rl = { 256 * 1024, 256 * 1024 };
		if (setrlimit(RLIMIT_FSIZE, &rl) != 0)
			_exit(11);
		static uint8_t body[32768];
		memset(body, 'z', sizeof(body));
		if (hl_store_begin(st) != 0)
			_exit(12);
		for (unsigned i = 0; i < 40 && !failed_at; i++) {
			uint8_t id[HL_MSG_ID_LEN];
			make_id(id, 100 + i);
			int ret = put_item(st, p, 1, HL_DIR_IN, 2 + i, id, 0, NULL);
			struct hl_msg_row m = { .peer_id = p, .dir = HL_DIR_IN, .seq = 2 + i,
						.class_seq = 2 + i, .state = HL_MSG_COMPLETE,
						.body = body, .body_size = sizeof(body) };
			memcpy(m.id, id, HL_MSG_ID_LEN);
			if (ret == 0)
				ret = hl_store_insert_message(st, &m);
			if (ret != 0) {
				failed_at = 1;
				code = ret;
			}
		}
		if (!failed_at) {
			code = hl_store_commit(st);
			failed_at = 2;
		} else {
			hl_store_rollback(st);
		}
		snprintf(msg, sizeof(msg), "%d %d %s", failed_at, code, hl_store_errmsg(st));
		if (write(pipefd[1], msg, strlen(msg)) < 0)
			_exit(13);
		hl_store_close(st);
		_exit(0);
	}
	close(pipefd[1]);
	char msg[301] = { 0 };
	ssize_t n = read(pipefd[0], msg, sizeof(msg) - 1);
	close(pipefd[0]);
	int status = 0;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	assert_true(n > 0);
	int where = 0, code = 0, off = 0;
	assert_int_equal(sscanf(msg, "%d %d %n", &where, &code, &off), 2);
	print_message("disk full at %s: %s (%s)\n", where == 2 ? "commit" : "insert",
		      hl_strerror(code), msg + off);
	assert_int_equal(code, HL_ESTORE);
	assert_true(strlen(msg + off) > 0);

	assert_int_equal(hl_store_open(f->dir, &f->st), 0);
	assert_int_equal(hl_store_verify(f->st), 0);
	struct hl_msg_row m;
	assert_int_equal(hl_store_get_message_by_id(f->st, keep, &m), 0);
	assert_string_equal(m.subject, "kept");
	hl_msg_row_clear(&m);
	assert_int_equal(raw_int(f->dir, "SELECT count(*) FROM messages"), 1);
	assert_int_equal(contig(f->st, p, NULL), 1);
	/* And with room again, writing works. */
	assert_int_equal(put_item(f->st, p, 1, HL_DIR_IN, 2, NULL, 0, NULL), 0);
	assert_int_equal(contig(f->st, p, NULL), 2);
}

/* Damaged rows (written past the CHECK constraints by another program)
 * are errors on read, never overflows. */
static void test_corrupt_rows(void **state)
{
	struct fx *f = *state;
	uint8_t id[HL_MSG_ID_LEN], buf[HL_ITEM_MAX];
	struct hl_msg_row m;
	struct hl_item_row row;
	struct hl_chain_head h;
	int64_t p = add_peer(f->st, 1);
	make_id(id, 1);
	put_msg(f->st, p, 1, HL_DIR_OUT, 1, id, 0, 1, "s", "body", 2);

	raw_exec(f->dir, "PRAGMA ignore_check_constraints = ON;"
		 " UPDATE messages SET salt = x'0011'");
	assert_int_equal(hl_store_get_message_by_id(f->st, id, &m), HL_ESTORE);
	assert_non_null(strstr(hl_store_errmsg(f->st), "corrupt"));
	assert_non_null(strstr(hl_store_errmsg(f->st), "salt"));
	assert_null(m.subject);
	struct listing l = { 0 };
	struct hl_msg_filter flt = { .dir = HL_DIR_OUT };
	assert_int_equal(hl_store_each_message(f->st, &flt, list_msg, &l), HL_ESTORE);
	assert_int_equal(l.n, 0);

	raw_exec(f->dir, "UPDATE messages SET salt = zeroblob(32);"
		 " UPDATE attachments SET name = printf('%.300c', 'n') WHERE idx = 1");
	assert_int_equal(hl_store_get_message_by_id(f->st, id, &m), HL_ESTORE);
	assert_non_null(strstr(hl_store_errmsg(f->st), "attachments.name"));
	raw_exec(f->dir, "UPDATE attachments SET name = 'ok';"
		 " UPDATE peers SET name = printf('%.100c', 'x')");
	assert_int_equal(hl_store_get_message_by_id(f->st, id, &m), HL_ESTORE);
	raw_exec(f->dir, "UPDATE peers SET name = 'p';"
		 " PRAGMA ignore_check_constraints = ON; UPDATE messages SET body = x'00'");
	assert_int_equal(hl_store_get_message_by_id(f->st, id, &m), HL_ESTORE);
	raw_exec(f->dir, "PRAGMA ignore_check_constraints = ON; UPDATE messages SET body = 'body'");
	assert_int_equal(hl_store_get_message_by_id(f->st, id, &m), HL_ESTORE);
	assert_non_null(strstr(hl_store_errmsg(f->st), "not a blob"));
	raw_exec(f->dir, "PRAGMA ignore_check_constraints = ON; UPDATE messages SET"
		 " body = CAST('body' AS BLOB), state = 11");
	assert_int_equal(hl_store_get_message_by_id(f->st, id, &m), HL_ESTORE);
	assert_non_null(strstr(hl_store_errmsg(f->st), "state"));
	raw_exec(f->dir, "UPDATE messages SET state = 0; DELETE FROM attachments WHERE idx = 1");
	assert_int_equal(hl_store_get_message_by_id(f->st, id, &m), HL_ESTORE);
	assert_non_null(strstr(hl_store_errmsg(f->st), "fewer"));

	raw_exec(f->dir, "PRAGMA ignore_check_constraints = ON;"
		 " UPDATE items SET encoded = zeroblob(20000)");
	assert_int_equal(hl_store_get_item(f->st, p, HL_DIR_OUT, 1, &row, buf, sizeof(buf)),
			 HL_ESTORE);
	raw_exec(f->dir, "PRAGMA ignore_check_constraints = ON;"
		 " UPDATE items SET encoded = x'01', hash = x'01'");
	assert_int_equal(hl_store_get_item(f->st, p, HL_DIR_OUT, 1, &row, buf, sizeof(buf)),
			 HL_ESTORE);
	assert_int_equal(hl_store_chain_head(f->st, p, HL_DIR_OUT, &h), HL_ESTORE);
	raw_exec(f->dir, "PRAGMA ignore_check_constraints = ON; UPDATE items SET seq = -5");
	assert_int_equal(hl_store_chain_head(f->st, p, HL_DIR_OUT, &h), HL_ESTORE);

	/* hl_store_verify notices a derived value gone wrong. */
	raw_exec(f->dir, "PRAGMA ignore_check_constraints = ON; UPDATE items SET seq = 1,"
		 " hash = zeroblob(32); UPDATE peers SET in_contig = 7");
	assert_int_equal(hl_store_verify(f->st), HL_ESTORE);
	assert_non_null(strstr(hl_store_errmsg(f->st), "contiguity"));
	raw_exec(f->dir, "UPDATE peers SET in_contig = 0, in_bytes = 3");
	assert_int_equal(hl_store_verify(f->st), HL_ESTORE);
	assert_non_null(strstr(hl_store_errmsg(f->st), "quota"));
}

/* ---- the email fallback's queries (daemon/failover.c) ---- */

/* ---- retention and restores (schema version 5) ---- */

static void test_purge_and_restore_flags(void **state)
{
	struct fx *f = *state;
	uint8_t out1[HL_MSG_ID_LEN], out2[HL_MSG_ID_LEN], in1[HL_MSG_ID_LEN];
	const int64_t T = 1795000000000; /* the fixture's sent_at */
	struct hl_purge_stats ps;
	struct hl_msg_row m;
	uint64_t usage = 0;
	char **paths = NULL;
	size_t n = 0;
	int64_t p = add_peer(f->st, 1);
	make_id(out1, 1);
	make_id(out2, 2);
	make_id(in1, 3);
	put_msg(f->st, p, 1, HL_DIR_OUT, 1, out1, HL_PREC_ROUTINE, 1, "ours", "body", 2);
	put_msg(f->st, p, 1, HL_DIR_OUT, 2, out2, HL_PREC_ROUTINE, 2, "queued", "body", 0);
	put_msg(f->st, p, 1, HL_DIR_IN, 1, in1, HL_PREC_ROUTINE, 1, "theirs", NULL, 2);
	assert_int_equal(hl_store_set_body(f->st, in1, (const uint8_t *)"abcd", 4), 0);
	assert_int_equal(hl_store_set_state(f->st, out1, HL_MSG_DELIVERED, NULL, T + 100), 0);
	assert_int_equal(hl_store_peer_usage(f->st, p, &usage), 0);
	/* The IN message's item, row (subject "theirs", body 4, a directory)
	 * and two attachments (a block each): docs/messages.md section 4. */
	int64_t ilen = raw_int(f->dir, "SELECT length(encoded) FROM items WHERE dir = 1");
	assert_int_equal(usage, (HL_STORE_ROW_COST + ilen) +
				(HL_STORE_ROW_COST + 6 + 4 + HL_STORE_BLOCK_COST) +
				2 * (HL_STORE_ROW_COST + HL_STORE_BLOCK_COST));
	/* Still arriving: kept, whatever its age. */
	assert_int_equal(hl_store_purge_count(f->st, 0, INT64_MAX, &ps), 0);
	assert_int_equal(ps.messages, 1);
	assert_int_equal(hl_store_set_state(f->st, in1, HL_MSG_COMPLETE, NULL, T + 300), 0);
	/* Done before T+200: out1 (its receipt at T+100); in1 came at T+300. */
	assert_int_equal(hl_store_purge_count(f->st, 0, T + 200, &ps), 0);
	assert_int_equal(ps.messages, 1);
	/* out1: subject "ours", body 4, its directory and two file blocks */
	assert_int_equal(ps.bytes, 4 + 4 + 3 * HL_STORE_BLOCK_COST);
	assert_int_equal(hl_store_purge(f->st, 0, INT64_MAX, 5000, 1, &ps), 0);
	assert_int_equal(ps.messages, 1);     /* the limit */
	assert_int_equal(ps.files, 2);
	assert_int_equal(hl_store_purge(f->st, p, INT64_MAX, 5000, 10, &ps), 0);
	assert_int_equal(ps.messages, 1);     /* the rest: queued out2 is not done */
	/* (the fixture gives both messages the same file paths: queued once) */
	assert_int_equal(hl_store_get_message_by_id(f->st, in1, &m), 0);
	assert_null(m.body);
	assert_string_equal(m.subject, "");
	assert_int_equal(m.purged_at, 5000);
	assert_int_equal(m.n_att, 2);         /* names, sizes and hashes stay */
	hl_msg_row_clear(&m);
	assert_int_equal(hl_store_get_message_by_id(f->st, out2, &m), 0);
	assert_int_equal(m.purged_at, 0);
	hl_msg_row_clear(&m);
	/* The peer's bytes left its quota, but for the rows that stay (the
	 * item, the message's and its attachments'); the invariants hold. */
	assert_int_equal(hl_store_peer_usage(f->st, p, &usage), 0);
	assert_int_equal(usage, (HL_STORE_ROW_COST + ilen) + HL_STORE_ROW_COST +
				2 * HL_STORE_ROW_COST);
	assert_int_equal(hl_store_verify(f->st), 0);
	assert_int_equal(hl_store_unlink_pending(f->st, 100, &paths, &n), 0);
	assert_int_equal(n, 2);
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(hl_store_unlink_done(f->st, paths[i]), 0);
		free(paths[i]);
	}
	free(paths);
	assert_int_equal(hl_store_unlink_pending(f->st, 100, &paths, &n), 0);
	assert_int_equal(n, 0);
	free(paths);
	/* A freed_bytes that lies is caught (invariant 2: the quota's measure
	 * against a recount). */
	int64_t freed = raw_int(f->dir, "SELECT freed_bytes FROM peers");
	assert_int_equal(freed, 6 + 4 + 3 * HL_STORE_BLOCK_COST);
	raw_exec(f->dir, "UPDATE peers SET freed_bytes = 1");
	assert_int_equal(hl_store_verify(f->st), HL_ESTORE);
	assert_non_null(strstr(hl_store_errmsg(f->st), "less freed_bytes"));
	char fix[64];
	snprintf(fix, sizeof(fix), "UPDATE peers SET freed_bytes = %lld", (long long)freed);
	raw_exec(f->dir, fix);
	assert_int_equal(hl_store_verify(f->st), 0);

	/* Restored: nothing new of ours goes in until the flag goes; an
	 * acknowledged (recovered) item does. */
	bool pending = false;
	assert_int_equal(hl_store_mark_restored(f->st), 0);
	assert_int_equal(hl_store_resync_pending(f->st, p, &pending), 0);
	assert_true(pending);
	assert_int_equal(put_item(f->st, p, 1, HL_DIR_OUT, 3, NULL, 0, NULL), HL_ESTORE);
	assert_non_null(strstr(hl_store_errmsg(f->st), "restored from a backup"));
	struct built b;
	build(&b, 1, HL_DIR_OUT, 3, NULL, 0, 0);
	struct hl_item_row row = {
		.peer_id = p, .dir = HL_DIR_OUT, .seq = 3, .kind = HL_ITEM_RECEIPT,
		.encoded = b.enc, .encoded_len = b.len, .precedence = HL_PREC_FLASH, .acked = true,
	};
	memcpy(row.hash, b.hash, HL_HASH_LEN);
	assert_int_equal(hl_store_insert_item(f->st, &row), 0);
	assert_int_equal(hl_store_resync_done(f->st, p), 0);
	assert_int_equal(put_item(f->st, p, 1, HL_DIR_OUT, 4, NULL, 0, NULL), 0);
	/* The hold of the peer's chain we sign never goes back. */
	struct hl_chain_head h;
	uint8_t claimed[HL_HASH_LEN];
	memset(claimed, 0x42, sizeof(claimed));
	assert_int_equal(hl_store_claim_hold(f->st, p, 9, claimed), 0);
	assert_int_equal(hl_store_signing_head(f->st, p, &h), 0);
	assert_int_equal(h.seq, 9);
	assert_memory_equal(h.hash, claimed, HL_HASH_LEN);
	assert_int_equal(hl_store_in_contiguous(f->st, p, &h), 0);
	assert_int_equal(h.seq, 1);
	/* The peer's ACK leaves out acknowledged items of ours: unacked again. */
	uint64_t lost = 0;
	const uint64_t ranges[1][2] = { { 4, 4 } };
	assert_int_equal(hl_store_ack_range(f->st, p, 1, 4), 0);
	assert_int_equal(hl_store_unack_lost(f->st, p, 1, ranges, 1, 100, &lost), 0);
	assert_int_equal(lost, 2);            /* 2 and 3; 4 is in the range */
}

static void test_out_summary_and_readonly(void **state)
{
	struct fx *f = *state;
	uint8_t id[HL_MSG_ID_LEN];
	struct hl_out_summary s;
	hl_store *ro = NULL;
	int64_t p = add_peer(f->st, 1), q = add_peer(f->st, 2);
	assert_int_equal(hl_store_out_summary(f->st, p, 0, &s), 0);
	assert_int_equal(s.unacked + s.max_seq + s.after + s.flash_after, 0);
	/* seq 1 routine, 2 receipt (flash), 3 routine, 4 flash message */
	const int prec[] = { -1, HL_PREC_ROUTINE, -1, HL_PREC_ROUTINE, HL_PREC_FLASH };
	for (uint64_t n = 1; n <= 4; n++) {
		make_id(id, (unsigned)n);
		assert_int_equal(put_item(f->st, p, 1, HL_DIR_OUT, n, prec[n] < 0 ? NULL : id,
					  prec[n] < 0 ? 0 : (unsigned)prec[n], NULL), 0);
	}
	assert_int_equal(put_item(f->st, q, 2, HL_DIR_OUT, 1, NULL, 0, NULL), 0);
	assert_int_equal(put_item(f->st, p, 1, HL_DIR_IN, 1, NULL, 0, NULL), 0);
	assert_int_equal(hl_store_out_summary(f->st, p, 0, &s), 0);
	assert_int_equal(s.unacked, 4);
	assert_int_equal(s.max_seq, 4);
	assert_int_equal(s.after, 4);
	assert_int_equal(s.flash_after, 2);
	assert_int_equal(hl_store_out_summary(f->st, p, 2, &s), 0);
	assert_int_equal(s.after, 2);
	assert_int_equal(s.flash_after, 1);
	assert_int_equal(hl_store_out_summary(f->st, p, 4, &s), 0);
	assert_int_equal(s.after + s.flash_after, 0);
	assert_int_equal(hl_store_ack_range(f->st, p, 3, 4), 0);
	assert_int_equal(hl_store_out_summary(f->st, p, 1, &s), 0);
	assert_int_equal(s.unacked, 2);
	assert_int_equal(s.max_seq, 2);
	assert_int_equal(s.after, 1);
	assert_int_equal(s.flash_after, 1);
	assert_int_equal(hl_store_out_summary(f->st, p, UINT64_MAX, &s), 0);
	assert_int_equal(s.after, 0);

	/* read-only: it sees the same, and cannot write */
	assert_int_equal(hl_store_open_readonly(f->dir, &ro), 0);
	assert_int_equal(hl_store_out_summary(ro, q, 0, &s), 0);
	assert_int_equal(s.unacked, 1);
	assert_true(hl_store_ack_range(ro, q, 1, 1) < 0);
	hl_store_close(ro);
	assert_int_equal(hl_store_open_readonly("/nonexistent-hotline-dir", &ro), HL_ESTORE);
	assert_null(ro);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
		T(test_open_create_reopen),
		T(test_migration_from_v1),
		T(test_future_version_refused),
		T(test_peers_upsert),
		T(test_chain_items),
		T(test_duplicate_insert),
		T(test_ack_and_unacked_order),
		T(test_in_contiguous_and_ranges),
		T(test_in_contiguous_model),
		T(test_in_contiguous_100k),
		T(test_messages_get),
		T(test_each_message),
		T(test_state_read_body_parts_usage),
		T(test_rollback_leaves_nothing),
		T(test_concurrent_writers),
		T(test_changed_and_durable_reopen),
		T(test_disk_full),
		T(test_corrupt_rows),
		T(test_purge_and_restore_flags),
		T(test_out_summary_and_readonly),
#undef T
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
