/* store/schema.c — what the store's file holds: the schema, its
 * invariants, the migrations from every earlier version, and
 * hl_store_verify, which checks the invariants against a recount.  The
 * queries over each table live in the file named beside it.
 *
 * SCHEMA (version 6; PRAGMA user_version; application_id 0x686f746c)
 *   peers        (peers.c) id INTEGER PK; signing_key BLOB(32) UNIQUE;
 *                noise_key BLOB(32); name TEXT; created_at ms;
 *                in_contig: the highest S such that IN items 1..S are all
 *                present (tombstones count) — kept up to date by every IN
 *                insert, so hl_store_in_contiguous() is one row read;
 *                in_bytes: the bytes stored on this peer's behalf, for the
 *                quota (version 4: every row and file, see MIGRATION_4) —
 *                kept by triggers; freed_bytes: what purges of its messages
 *                gave back (version 5); resync, claimed_seq, claimed_hash:
 *                a restored store's state (version 5, restore.c).  Peers
 *                are never deleted.
 *   items        (items.c) rowid; (peer_id, dir, seq) UNIQUE; kind 0
 *                tombstone, else the item's kind (item/types.h; 0..63 since
 *                version 3); hash BLOB(32); encoded BLOB (NULL exactly for
 *                tombstones, which are IN only); precedence 0..3 (FLASH for
 *                non-messages); acked 0/1 (OUT); stored_at ms; refused: a
 *                tombstone's REFUSE code.
 *                Index items_unacked (peer_id, precedence DESC, seq) WHERE
 *                dir = 0 AND acked = 0: the send queue, which shrinks as
 *                ACKs come in.  Rows are up to 16 KiB, so this is a rowid
 *                table (WITHOUT ROWID suits small rows only).
 *   messages     (messages.c) n INTEGER PK (insertion order; the outbox
 *                order); id BLOB(16) UNIQUE (ids are unique across
 *                directions: the same id names the message at both
 *                stations); peer_id, dir, seq -> items (the message's
 *                signed item must be stored first); precedence; class_seq
 *                (UNIQUE per peer, dir, precedence); salt BLOB(32); subject
 *                TEXT (as the author gave it: sanitising is the display's
 *                job); body BLOB, NULL while not yet received, else exactly
 *                body_size bytes; body_done; n_att; sent_at, received_at,
 *                delivered_at ms; state (OUT 0..3, IN 10..12, checked
 *                against dir); reason; unread; purged_at ms, 0 until
 *                retention purged its body and subject (version 5).
 *                Index messages_inbox (dir, received_at, seq): the inbox
 *                order; messages_retain (dir, sent_at) WHERE purged_at = 0.
 *   attachments  (messages.c) (msg_id -> messages.id, idx 0..63) PK; name;
 *                size; hash BLOB(32); path; done <= size.  WITHOUT ROWID
 *                (small rows).
 *   checks       (checks.c, version 3) (peer_id, dir, id BLOB(16)) PK; seq
 *                -> the CHECK item; mode; link; manual; created_at,
 *                deadline, station_at, person_at, no_person_at ms; result.
 *   agreements   (checks.c, version 3) id BLOB(32) PK, the AGREEMENT
 *                item's hash; peer_id, dir, seq -> that item; name; size;
 *                doc_hash; msg_id; proposed_at, signed_at ms; sign_seq,
 *                the COUNTERSIGN's position or 0.
 *   equivocations (items.c, version 3) (peer_id, seq, second_hash) PK;
 *                first_hash, first_item, second_hash, second_item: two
 *                items the peer signed at SEQ, kept whole; detected_at ms.
 *   unlink_queue (purge.c, version 5) path PK: files of purged messages
 *                still to remove.
 *   recovered_acks (restore.c, version 5) (peer_id, seq) PK: positions of
 *                the peer's chain that receipts of ours, recovered after a
 *                restore, acknowledge.
 *   own_keys     (keys.c, version 6) one row, id 1, once the station has
 *                rotated its keys (docs/rotation.md): the station's keys as
 *                its chains know them (noise_key, signing_key, next_hash).
 *                With version 6, peers gain next_hash (the peer card's
 *                commitment) and own_noise, own_sign, own_next: this
 *                station's card as that peer pinned it, which names us on
 *                the link (NULL until the first rotation fills them; a row
 *                made after it takes own_keys: trigger peers_own_card).
 *                Index items_rotations
 *                (peer_id, dir, seq) WHERE kind = 8: each chain's keys.
 *
 * INVARIANTS (checked by hl_store_verify)
 *   1. peers.in_contig = max S with IN items 1..S all present, else 0.
 *   2. peers.in_bytes - peers.freed_bytes = USAGE_NOW_OF(the peer): what
 *      its rows and files cost (MIGRATION_4) less what purges freed
 *      (version 5: a purged message keeps its rows only), saturating at
 *      INT64_MAX.
 *   3. Every message has its item; every attachment its message (FKs).
 *   4. Message states only move forward: queued -> sent -> delivered, or
 *      -> refused; partial -> complete, or -> refused (IN).  A request to
 *      move back (a stale "sent" after "delivered") changes nothing.
 *   5. Every integer the interface calls uint64_t is stored in 0..INT64_MAX;
 *      larger values are refused on write (HL_EINVAL), and a negative or
 *      ill-typed value on read is corruption (HL_ESTORE).
 *   6. The quota counts in_bytes - freed_bytes: freed_bytes is what purges
 *      of the peer's IN messages gave back (PURGE_BYTES in purge.c;
 *      version 5).
 *   Reads check every blob's length and every text's length against the
 *   struct it fills: a corrupt row is an error, never an overflow.
 *
 * MIGRATIONS
 *   migrations[v] takes a store from version v-1 to v.  Each runs in its own
 *   BEGIN IMMEDIATE transaction that re-reads user_version under the lock
 *   (another process may have migrated meanwhile) and sets it last, so a
 *   crash leaves the store at a whole version.  A store newer than this
 *   code is refused, never touched. */
#include "store/store_int.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "util/err.h"

#define APP_ID 0x686f746c /* "hotl" */

static const char MIGRATION_1[] =
	"CREATE TABLE peers ("
	" id INTEGER PRIMARY KEY,"
	" signing_key BLOB NOT NULL UNIQUE CHECK (length(signing_key) = 32),"
	" noise_key BLOB NOT NULL CHECK (length(noise_key) = 32),"
	" name TEXT NOT NULL,"
	" created_at INTEGER NOT NULL);"
	"CREATE TABLE items ("
	" peer_id INTEGER NOT NULL REFERENCES peers (id),"
	" dir INTEGER NOT NULL CHECK (dir IN (0, 1)),"
	" seq INTEGER NOT NULL CHECK (seq >= 1),"
	" kind INTEGER NOT NULL CHECK (kind IN (0, 1, 2)),"
	" hash BLOB NOT NULL CHECK (length(hash) = 32),"
	" encoded BLOB CHECK ((kind = 0) = (encoded IS NULL)),"
	" precedence INTEGER NOT NULL CHECK (precedence BETWEEN 0 AND 3),"
	" acked INTEGER NOT NULL DEFAULT 0 CHECK (acked IN (0, 1)),"
	" stored_at INTEGER NOT NULL,"
	" refused INTEGER,"
	" CHECK (kind <> 0 OR dir = 1),"
	" UNIQUE (peer_id, dir, seq));"
	"CREATE INDEX items_unacked ON items (peer_id, precedence DESC, seq)"
	" WHERE dir = 0 AND acked = 0;"
	"CREATE TABLE messages ("
	" n INTEGER PRIMARY KEY,"
	" id BLOB NOT NULL UNIQUE CHECK (length(id) = 16),"
	" peer_id INTEGER NOT NULL REFERENCES peers (id),"
	" dir INTEGER NOT NULL CHECK (dir IN (0, 1)),"
	" seq INTEGER NOT NULL,"
	" precedence INTEGER NOT NULL CHECK (precedence BETWEEN 0 AND 3),"
	" class_seq INTEGER NOT NULL CHECK (class_seq >= 1),"
	" salt BLOB NOT NULL CHECK (length(salt) = 32),"
	" subject TEXT NOT NULL,"
	" body BLOB,"
	" body_size INTEGER NOT NULL CHECK (body_size >= 0),"
	" body_done INTEGER NOT NULL DEFAULT 0 CHECK (body_done BETWEEN 0 AND body_size),"
	" n_att INTEGER NOT NULL CHECK (n_att BETWEEN 0 AND 64),"
	" sent_at INTEGER NOT NULL,"
	" received_at INTEGER NOT NULL DEFAULT 0,"
	" delivered_at INTEGER NOT NULL DEFAULT 0,"
	" state INTEGER NOT NULL CHECK (state IN (0, 1, 2, 3, 10, 11, 12)"
	"  AND (state >= 10) = (dir = 1)),"
	" reason TEXT,"
	" unread INTEGER NOT NULL DEFAULT 0 CHECK (unread IN (0, 1)),"
	" CHECK (body IS NULL OR length(body) = body_size),"
	" UNIQUE (peer_id, dir, seq),"
	" UNIQUE (peer_id, dir, precedence, class_seq),"
	" FOREIGN KEY (peer_id, dir, seq) REFERENCES items (peer_id, dir, seq));"
	"CREATE INDEX messages_inbox ON messages (dir, received_at, seq);"
	"CREATE TABLE attachments ("
	" msg_id BLOB NOT NULL REFERENCES messages (id),"
	" idx INTEGER NOT NULL CHECK (idx BETWEEN 0 AND 63),"
	" name TEXT NOT NULL,"
	" size INTEGER NOT NULL CHECK (size >= 0),"
	" hash BLOB NOT NULL CHECK (length(hash) = 32),"
	" path TEXT NOT NULL,"
	" done INTEGER NOT NULL DEFAULT 0 CHECK (done BETWEEN 0 AND size),"
	" PRIMARY KEY (msg_id, idx)) WITHOUT ROWID;";

/* Version 2 adds the two derived per-peer values that make the hot queries
 * O(1): the IN contiguity mark and the quota usage, and backfills them from
 * the rows already there.  The sums saturate rather than overflow (sum()
 * would raise an error, and "+" would turn into a float). */
#define CONTIG_OF(peer) \
	"coalesce((SELECT a.seq FROM items a WHERE a.peer_id = " peer " AND a.dir = 1" \
	" AND NOT EXISTS (SELECT 1 FROM items b WHERE b.peer_id = a.peer_id" \
	" AND b.dir = 1 AND b.seq = a.seq + 1) ORDER BY a.seq LIMIT 1), 0)" \
	" * EXISTS (SELECT 1 FROM items c WHERE c.peer_id = " peer \
	" AND c.dir = 1 AND c.seq = 1)"
#define USAGE_OF(peer) \
	"CAST(min((SELECT total(body_size) FROM messages WHERE peer_id = " peer \
	" AND dir = 1) + (SELECT total(a.size) FROM attachments a JOIN messages m" \
	" ON m.id = a.msg_id WHERE m.peer_id = " peer " AND m.dir = 1)," \
	" 9223372036854775807.0) AS INTEGER)"

static const char MIGRATION_2[] =
	"ALTER TABLE peers ADD COLUMN in_contig INTEGER NOT NULL DEFAULT 0;"
	"ALTER TABLE peers ADD COLUMN in_bytes INTEGER NOT NULL DEFAULT 0;"
	"UPDATE peers SET in_contig = " CONTIG_OF("peers.id") ","
	" in_bytes = " USAGE_OF("peers.id") ";"
	"CREATE TRIGGER messages_in_bytes AFTER INSERT ON messages WHEN NEW.dir = 1"
	" BEGIN UPDATE peers SET in_bytes = min(in_bytes + NEW.body_size,"
	" 9223372036854775807) WHERE id = NEW.peer_id; END;"
	"CREATE TRIGGER attachments_in_bytes AFTER INSERT ON attachments"
	" BEGIN UPDATE peers SET in_bytes = min(in_bytes + NEW.size,"
	" 9223372036854775807) WHERE id ="
	" (SELECT peer_id FROM messages WHERE id = NEW.msg_id AND dir = 1); END;";

/* Version 3: line checks, agreements and equivocation evidence (their
 * queries: checks.c and items.c), and items of kinds 3 to 63.  SQLite
 * cannot change a CHECK constraint in place, so the items table is
 * rebuilt, by SQLite's procedure: with foreign keys off (migrate_step) and
 * legacy_alter_table on, renaming it away leaves the messages table's
 * reference naming "items", which the new table then is; the copy keeps
 * every rowid.  All of it in the one transaction. */
static const char MIGRATION_3[] =
	"PRAGMA legacy_alter_table = ON;"
	"ALTER TABLE items RENAME TO items_v2;"
	"CREATE TABLE items ("
	" peer_id INTEGER NOT NULL REFERENCES peers (id),"
	" dir INTEGER NOT NULL CHECK (dir IN (0, 1)),"
	" seq INTEGER NOT NULL CHECK (seq >= 1),"
	" kind INTEGER NOT NULL CHECK (kind BETWEEN 0 AND 63),"
	" hash BLOB NOT NULL CHECK (length(hash) = 32),"
	" encoded BLOB CHECK ((kind = 0) = (encoded IS NULL)),"
	" precedence INTEGER NOT NULL CHECK (precedence BETWEEN 0 AND 3),"
	" acked INTEGER NOT NULL DEFAULT 0 CHECK (acked IN (0, 1)),"
	" stored_at INTEGER NOT NULL,"
	" refused INTEGER,"
	" CHECK (kind <> 0 OR dir = 1),"
	" UNIQUE (peer_id, dir, seq));"
	"INSERT INTO items (rowid, peer_id, dir, seq, kind, hash, encoded, precedence, acked,"
	" stored_at, refused) SELECT rowid, peer_id, dir, seq, kind, hash, encoded, precedence,"
	" acked, stored_at, refused FROM items_v2;"
	"DROP TABLE items_v2;"
	"PRAGMA legacy_alter_table = OFF;"
	"CREATE INDEX items_unacked ON items (peer_id, precedence DESC, seq)"
	" WHERE dir = 0 AND acked = 0;"
	"CREATE TABLE checks ("
	" id BLOB NOT NULL CHECK (length(id) = 16),"
	" peer_id INTEGER NOT NULL REFERENCES peers (id),"
	" dir INTEGER NOT NULL CHECK (dir IN (0, 1)),"
	" seq INTEGER NOT NULL CHECK (seq >= 1),"
	" mode INTEGER NOT NULL CHECK (mode IN (0, 1)),"
	" link INTEGER NOT NULL CHECK (link IN (0, 1)),"
	" manual INTEGER NOT NULL DEFAULT 0 CHECK (manual IN (0, 1)),"
	" created_at INTEGER NOT NULL,"
	" deadline INTEGER NOT NULL,"
	" station_at INTEGER NOT NULL DEFAULT 0,"
	" person_at INTEGER NOT NULL DEFAULT 0,"
	" no_person_at INTEGER NOT NULL DEFAULT 0,"
	" result INTEGER NOT NULL DEFAULT 0 CHECK (result BETWEEN 0 AND 5),"
	" PRIMARY KEY (peer_id, dir, id),"
	" FOREIGN KEY (peer_id, dir, seq) REFERENCES items (peer_id, dir, seq));"
	"CREATE INDEX checks_open ON checks (peer_id, dir, result);"
	"CREATE TABLE agreements ("
	" id BLOB PRIMARY KEY CHECK (length(id) = 32),"
	" peer_id INTEGER NOT NULL REFERENCES peers (id),"
	" dir INTEGER NOT NULL CHECK (dir IN (0, 1)),"
	" seq INTEGER NOT NULL CHECK (seq >= 1),"
	" name TEXT NOT NULL,"
	" size INTEGER NOT NULL CHECK (size >= 0),"
	" doc_hash BLOB NOT NULL CHECK (length(doc_hash) = 32),"
	" msg_id BLOB NOT NULL CHECK (length(msg_id) = 16),"
	" proposed_at INTEGER NOT NULL,"
	" signed_at INTEGER NOT NULL DEFAULT 0,"
	" sign_seq INTEGER NOT NULL DEFAULT 0,"
	" FOREIGN KEY (peer_id, dir, seq) REFERENCES items (peer_id, dir, seq));"
	"CREATE TABLE equivocations ("
	" peer_id INTEGER NOT NULL REFERENCES peers (id),"
	" seq INTEGER NOT NULL CHECK (seq >= 1),"
	" first_hash BLOB NOT NULL CHECK (length(first_hash) = 32),"
	" first_item BLOB NOT NULL,"
	" second_hash BLOB NOT NULL CHECK (length(second_hash) = 32),"
	" second_item BLOB NOT NULL,"
	" detected_at INTEGER NOT NULL,"
	" PRIMARY KEY (peer_id, seq, second_hash));";

/* Version 4: the quota counts everything a peer makes the station store
 * (docs/messages.md section 4), not only the declared sizes of its
 * messages: each row kept on its behalf costs ROW_COST bytes plus its
 * variable bytes (its items, tombstones included, and the receipts and
 * answers we author because of it; its messages' subjects and bodies; its
 * checks and agreements; evidence against it), and each file at least a
 * block (attachments rounded up to BLOCK_COST, a message's directory one
 * block).  Triggers keep peers.in_bytes; the backfill and hl_store_verify's
 * recount use USAGE_V4_OF.  Sums saturate at INT64_MAX. */
#define CHARGE(peer_expr, amount) \
	" BEGIN UPDATE peers SET in_bytes = min(in_bytes + (" amount "), " I64MAX_SQL ")" \
	" WHERE id = " peer_expr "; END;"
#define ITEM_CHARGE(r) ROW_COST " + coalesce(length(" r "encoded), 0)"
#define MSG_CHARGE(r) \
	ROW_COST " + length(CAST(" r "subject AS BLOB)) + " r "body_size + (" r "n_att > 0) * " BLOCK_COST
#define ATT_CHARGE(r) \
	ROW_COST " + max(" BLOCK_COST ", (" r "size + " BLOCK_COST " - 1) / " BLOCK_COST " * " \
	BLOCK_COST ")"
#define AGR_CHARGE(r) ROW_COST " + length(CAST(" r "name AS BLOB))"
#define EQV_CHARGE(r) ROW_COST " + length(" r "first_item) + length(" r "second_item)"
#define USAGE_V4_OF(peer) \
	"CAST(min((SELECT total(" ITEM_CHARGE("") ") FROM items WHERE peer_id = " peer \
	" AND (dir = 1 OR kind IN (2, 4)))" \
	" + (SELECT total(" MSG_CHARGE("") ") FROM messages WHERE peer_id = " peer " AND dir = 1)" \
	" + (SELECT total(" ATT_CHARGE("a.") ") FROM attachments a JOIN messages m" \
	" ON m.id = a.msg_id WHERE m.peer_id = " peer " AND m.dir = 1)" \
	" + (SELECT total(" ROW_COST ") FROM checks WHERE peer_id = " peer " AND dir = 1)" \
	" + (SELECT total(" AGR_CHARGE("") ") FROM agreements WHERE peer_id = " peer " AND dir = 1)" \
	" + (SELECT total(" EQV_CHARGE("") ") FROM equivocations WHERE peer_id = " peer ")," \
	" 9223372036854775807.0) AS INTEGER)"

static const char MIGRATION_4[] =
	"DROP TRIGGER messages_in_bytes;"
	"DROP TRIGGER attachments_in_bytes;"
	"CREATE TRIGGER items_usage AFTER INSERT ON items WHEN NEW.dir = 1 OR NEW.kind IN (2, 4)"
	CHARGE("NEW.peer_id", ITEM_CHARGE("NEW."))
	"CREATE TRIGGER messages_usage AFTER INSERT ON messages WHEN NEW.dir = 1"
	CHARGE("NEW.peer_id", MSG_CHARGE("NEW."))
	"CREATE TRIGGER attachments_usage AFTER INSERT ON attachments"
	CHARGE("(SELECT peer_id FROM messages WHERE id = NEW.msg_id AND dir = 1)",
	       ATT_CHARGE("NEW."))
	"CREATE TRIGGER checks_usage AFTER INSERT ON checks WHEN NEW.dir = 1"
	CHARGE("NEW.peer_id", ROW_COST)
	"CREATE TRIGGER agreements_usage AFTER INSERT ON agreements WHEN NEW.dir = 1"
	CHARGE("NEW.peer_id", AGR_CHARGE("NEW."))
	"CREATE TRIGGER equivocations_usage AFTER INSERT ON equivocations"
	CHARGE("NEW.peer_id", EQV_CHARGE("NEW."))
	"UPDATE peers SET in_bytes = " USAGE_V4_OF("peers.id") ";";

/* Version 5: retention (purge.c).  A purged message keeps its row and its
 * signed item; its body and subject go, purged_at says when.  freed_bytes
 * is what purges gave back to the peer's quota; unlink_queue lists the
 * files of purged messages still to be removed (written in the purge's
 * transaction, emptied after the unlink: a crash between the two leaves
 * the names, not orphan files).  The partial index finds OUT messages not
 * yet purged by age.  And restores (restore.c): peers.resync is 1 in a
 * store that `backup` copied, until the peer told us how much of our
 * chain it holds (docs/messages.md section 7); meanwhile the trigger
 * refuses every new item of ours on that link (an acknowledged one, an
 * item recovered from the peer, goes in), so a restored station never
 * signs a second item at a position its peer already holds.  claimed_seq
 * and claimed_hash: the highest hold of the peer's chain that items of
 * ours recovered that way state (their peer_seq, peer_hash); until we hold
 * that much again, what we sign states it too, so it never goes back. */
static const char MIGRATION_5[] =
	"ALTER TABLE messages ADD COLUMN purged_at INTEGER NOT NULL DEFAULT 0;"
	"ALTER TABLE peers ADD COLUMN freed_bytes INTEGER NOT NULL DEFAULT 0;"
	"ALTER TABLE peers ADD COLUMN resync INTEGER NOT NULL DEFAULT 0"
	" CHECK (resync IN (0, 1));"
	"ALTER TABLE peers ADD COLUMN claimed_seq INTEGER NOT NULL DEFAULT 0;"
	"ALTER TABLE peers ADD COLUMN claimed_hash BLOB"
	" CHECK (claimed_hash IS NULL OR length(claimed_hash) = 32);"
	"CREATE TABLE unlink_queue (path TEXT PRIMARY KEY) WITHOUT ROWID;"
	/* positions of the peer's chain that receipts of ours recovered after
	 * a restore acknowledge: never acknowledged a second time */
	"CREATE TABLE recovered_acks (peer_id INTEGER NOT NULL, seq INTEGER NOT NULL,"
	" PRIMARY KEY (peer_id, seq)) WITHOUT ROWID;"
	"CREATE INDEX messages_retain ON messages (dir, sent_at) WHERE purged_at = 0;"
	"CREATE TRIGGER items_resync BEFORE INSERT ON items WHEN NEW.dir = 0 AND NEW.acked = 0"
	" AND (SELECT resync FROM peers WHERE id = NEW.peer_id) = 1"
	" BEGIN SELECT RAISE(ABORT, '" ST_RESYNC_TEXT "'); END;";

/* A peer's usage now (invariant 2): what USAGE_V4_OF counts, less what
 * purges freed (version 5): a purged message keeps its row and its
 * attachments' rows, not its subject, body, files or directory.  So
 * in_bytes - freed_bytes, the quota's measure, equals it. */
#define MSG_CHARGE_NOW(r) \
	ROW_COST " + (" r "purged_at = 0) * (length(CAST(" r "subject AS BLOB)) + " r "body_size + (" \
	r "n_att > 0) * " BLOCK_COST ")"
#define ATT_CHARGE_NOW(a, m) \
	ROW_COST " + (" m "purged_at = 0) * max(" BLOCK_COST ", (" a "size + " BLOCK_COST " - 1) / " \
	BLOCK_COST " * " BLOCK_COST ")"
#define USAGE_NOW_OF(peer) \
	"CAST(min((SELECT total(" ITEM_CHARGE("") ") FROM items WHERE peer_id = " peer \
	" AND (dir = 1 OR kind IN (2, 4)))" \
	" + (SELECT total(" MSG_CHARGE_NOW("") ") FROM messages WHERE peer_id = " peer " AND dir = 1)" \
	" + (SELECT total(" ATT_CHARGE_NOW("a.", "m.") ") FROM attachments a JOIN messages m" \
	" ON m.id = a.msg_id WHERE m.peer_id = " peer " AND m.dir = 1)" \
	" + (SELECT total(" ROW_COST ") FROM checks WHERE peer_id = " peer " AND dir = 1)" \
	" + (SELECT total(" AGR_CHARGE("") ") FROM agreements WHERE peer_id = " peer " AND dir = 1)" \
	" + (SELECT total(" EQV_CHARGE("") ") FROM equivocations WHERE peer_id = " peer ")," \
	" 9223372036854775807.0) AS INTEGER)"

/* Version 6: key rotation (docs/rotation.md, keys.c). */
#define KEY_COL(c) " BLOB CHECK (" c " IS NULL OR length(" c ") = 32)"
static const char MIGRATION_6[] =
	"CREATE TABLE own_keys (id INTEGER PRIMARY KEY CHECK (id = 1),"
	" noise_key BLOB NOT NULL CHECK (length(noise_key) = 32),"
	" signing_key BLOB NOT NULL CHECK (length(signing_key) = 32),"
	" next_hash" KEY_COL("next_hash") ");"
	"ALTER TABLE peers ADD COLUMN next_hash" KEY_COL("next_hash") ";"
	"ALTER TABLE peers ADD COLUMN own_noise" KEY_COL("own_noise") ";"
	"ALTER TABLE peers ADD COLUMN own_sign" KEY_COL("own_sign") ";"
	"ALTER TABLE peers ADD COLUMN own_next" KEY_COL("own_next") ";"
	"CREATE INDEX items_rotations ON items (peer_id, dir, seq) WHERE kind = 8;"
	/* a row made after a rotation takes the station's keys then: the
	 * card the new peer pinned */
	"CREATE TRIGGER peers_own_card AFTER INSERT ON peers"
	" WHEN EXISTS (SELECT 1 FROM own_keys) BEGIN UPDATE peers SET"
	" own_noise = (SELECT noise_key FROM own_keys),"
	" own_sign = (SELECT signing_key FROM own_keys),"
	" own_next = (SELECT next_hash FROM own_keys) WHERE id = NEW.id; END;";

/* migrations[v] takes the store from version v - 1 to v. */
static const char *const migrations[] = { NULL, MIGRATION_1, MIGRATION_2, MIGRATION_3,
					  MIGRATION_4, MIGRATION_5, MIGRATION_6 };
_Static_assert(sizeof(migrations) / sizeof(migrations[0]) == HL_STORE_SCHEMA_VERSION + 1,
	       "HL_STORE_SCHEMA_VERSION must name the last migration");

/* ---- migrating ---- */

/* Runs one migration step under the write lock.  *VER is the version seen
 * before; it is re-read under the lock, since another process may have
 * migrated the store meanwhile. */
static int migrate_step(sqlite3 *db, const char *path, int64_t *ver)
{
	char *err = NULL;
	int64_t v = 0, app = 0, objects = 0, dangling = 0;
	int ret = 0;
	/* Foreign keys are off while a step runs, as SQLite's procedure for
	 * rebuilding a table asks (the pragma is a no-op inside a transaction,
	 * so it comes first); foreign_key_check before the commit keeps the
	 * guarantee they give. */
	int rc = sqlite3_exec(db, "PRAGMA foreign_keys = OFF; BEGIN IMMEDIATE", NULL, NULL, &err);
	if (rc != SQLITE_OK)
		goto sqlfail;
	if ((rc = st_pragma_int(db, "PRAGMA user_version", &v)) != SQLITE_OK ||
	    (rc = st_pragma_int(db, "PRAGMA application_id", &app)) != SQLITE_OK ||
	    (rc = st_pragma_int(db, "SELECT count(*) FROM sqlite_schema", &objects)) != SQLITE_OK)
		goto sqlfail;
	if (v > HL_STORE_SCHEMA_VERSION) {
		ret = st_open_fail(HL_EUNSUPP, "%s: schema version %" PRId64 " is newer than this "
				   "hotline knows (%d); use a newer hotline", path, v,
				   HL_STORE_SCHEMA_VERSION);
		goto out;
	}
	if (app != APP_ID && (app != 0 || v != 0 || objects != 0)) {
		ret = st_open_fail(HL_EINVAL, "%s: not a hotline store (application_id %" PRId64 ")",
				   path, app);
		goto out;
	}
	if (v != *ver) {
		/* Another process migrated meanwhile: look again. */
		*ver = v;
		goto out;
	}
	rc = sqlite3_exec(db, migrations[v + 1], NULL, NULL, &err);
	if (rc != SQLITE_OK)
		goto sqlfail;
	char sql[96];
	snprintf(sql, sizeof(sql), "PRAGMA user_version = %d; PRAGMA application_id = %d",
		 (int)v + 1, APP_ID);
	rc = sqlite3_exec(db, sql, NULL, NULL, &err);
	if (rc != SQLITE_OK)
		goto sqlfail;
	if ((rc = st_pragma_int(db, "SELECT count(*) FROM pragma_foreign_key_check", &dangling)) !=
	    SQLITE_OK)
		goto sqlfail;
	if (dangling) {
		ret = st_open_fail(HL_ESTORE, "%s: migrating from schema version %" PRId64 ": %" PRId64
				   " dangling references", path, v, dangling);
		goto out;
	}
	rc = sqlite3_exec(db, "COMMIT", NULL, NULL, &err);
	if (rc != SQLITE_OK)
		goto sqlfail;
	*ver = v + 1;
	goto out;
sqlfail:
	ret = st_open_fail(HL_ESTORE, "%s: migrating from schema version %" PRId64 ": %s", path,
			   v, err ? err : sqlite3_errmsg(db));
out:
	sqlite3_free(err);
	if (!sqlite3_get_autocommit(db))
		sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
	sqlite3_exec(db, "PRAGMA legacy_alter_table = OFF; PRAGMA foreign_keys = ON", NULL, NULL,
		     NULL);
	return ret;
}

int st_migrate(sqlite3 *db, const char *path, int target)
{
	int64_t ver = 0;
	int rc = st_pragma_int(db, "PRAGMA user_version", &ver);
	if (rc != SQLITE_OK)
		return st_open_fail(HL_ESTORE, "%s: %s", path, sqlite3_errmsg(db));
	if (ver > HL_STORE_SCHEMA_VERSION)
		return st_open_fail(HL_EUNSUPP, "%s: schema version %" PRId64 " is newer than "
				    "this hotline knows (%d); use a newer hotline", path, ver,
				    HL_STORE_SCHEMA_VERSION);
	while (ver < target) {
		int ret = migrate_step(db, path, &ver);
		if (ret < 0)
			return ret;
	}
	return 0;
}

/* ---- verification ---- */

/* Runs SQL (ad hoc: not a hot path) and requires it to return no row; a
 * row is a violation described by WHAT and the row's first column. */
static int verify_none(hl_store *st, const char *sql, const char *what)
{
	sqlite3_stmt *s = NULL;
	int rc = sqlite3_prepare_v2(st->db, sql, -1, &s, NULL);
	int ret = 0;
	if (rc != SQLITE_OK)
		return st_sqlerr(st, rc);
	ret = st_step_row(st, s);
	if (ret > 0) {
		const unsigned char *t = sqlite3_column_text(s, 0);
		ret = st_fail(st, HL_ESTORE, "store check failed: %s (%s)", what,
			      t ? (const char *)t : "?");
	}
	sqlite3_finalize(s);
	return ret;
}

int hl_store_verify(hl_store *st)
{
	int ret;
	sqlite3_stmt *s = NULL;
	int rc = sqlite3_prepare_v2(st->db, "PRAGMA quick_check", -1, &s, NULL);
	if (rc != SQLITE_OK)
		return st_sqlerr(st, rc);
	ret = st_step_row(st, s);
	if (ret > 0) {
		const unsigned char *t = sqlite3_column_text(s, 0);
		if (!t || strcmp((const char *)t, "ok") != 0)
			ret = st_fail(st, HL_ESTORE, "store check failed: %s", t ? (const char *)t : "?");
		else
			ret = 0;
	}
	sqlite3_finalize(s);
	if (ret < 0)
		return ret;
	if ((ret = verify_none(st, "PRAGMA foreign_key_check", "a dangling reference in")) < 0)
		return ret;
	if ((ret = verify_none(st, "SELECT 'peer ' || id || ': in_contig ' || in_contig ||"
			       " ', recount ' || (" CONTIG_OF("p.id") ") FROM peers p"
			       " WHERE in_contig IS NOT (" CONTIG_OF("p.id") ")",
			       "IN contiguity mark")) < 0)
		return ret;
	return verify_none(st, "SELECT 'peer ' || id || ': in_bytes ' || in_bytes ||"
			   " ' less freed_bytes ' || freed_bytes ||"
			   " ', recount ' || (" USAGE_NOW_OF("p.id") ") FROM peers p"
			   " WHERE in_bytes - freed_bytes IS NOT (" USAGE_NOW_OF("p.id") ")",
			   "quota usage");
}
