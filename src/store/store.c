/* store/store.c — the station's SQLite store (interface in store.h): the
 * schema, its migrations, and every query hotline makes.  No other module
 * contains SQL.
 *
 * FILE AND CONNECTION
 *   DIR/store.db, created mode 0600 (SQLite gives its -wal and -shm files the
 *   same mode).  Every connection sets journal_mode=WAL, synchronous=FULL
 *   (a commit that returns has been fsynced: the product's durability
 *   promise rests on it), foreign_keys=ON, trusted_schema=OFF, the
 *   defensive flag, and a 10 s busy timeout (busy_wait: short retries) so
 *   the CLI and the daemon can both write.  Connections are opened
 *   NOMUTEX: each is used by one thread at a time.  Writers take the lock
 *   at once (BEGIN IMMEDIATE), so a transaction never fails half-way
 *   because another writer got in first.
 *   The file carries application_id 0x686f746c ("hotl").
 *
 * SCHEMA (version 5; PRAGMA user_version; version 3 adds checks,
 *   agreements and equivocations, version 4 counts every row and file in
 *   the quota, version 5 retention: described with their queries)
 *   peers        id INTEGER PK; signing_key BLOB(32) UNIQUE; noise_key
 *                BLOB(32); name TEXT; created_at ms;
 *                in_contig: the highest S such that IN items 1..S are all
 *                present (tombstones count) — kept up to date by every IN
 *                insert, so hl_store_in_contiguous() is one row read;
 *                in_bytes: the bytes stored on this peer's behalf, for the
 *                quota (version 4: every row and file, see MIGRATION_4) —
 *                kept by triggers.  Peers are never deleted.
 *   items        rowid; (peer_id, dir, seq) UNIQUE; kind 0 tombstone, 1
 *                message, 2 receipt; hash BLOB(32); encoded BLOB (NULL
 *                exactly for tombstones, which are IN only); precedence 0..3
 *                (FLASH for non-messages); acked 0/1 (OUT); stored_at ms;
 *                refused: a tombstone's REFUSE code.
 *                Index items_unacked (peer_id, precedence DESC, seq) WHERE
 *                dir = 0 AND acked = 0: the send queue, which shrinks as
 *                ACKs come in.  Rows are up to 16 KiB, so this is a rowid
 *                table (WITHOUT ROWID suits small rows only).
 *   messages     n INTEGER PK (insertion order; the outbox order); id
 *                BLOB(16) UNIQUE (ids are unique across directions: the same
 *                id names the message at both stations); peer_id, dir, seq
 *                -> items (the message's signed item must be stored first);
 *                precedence; class_seq (UNIQUE per peer, dir, precedence);
 *                salt BLOB(32); subject TEXT (as the author gave it:
 *                sanitising is the display's job); body BLOB, NULL while not
 *                yet received, else exactly body_size bytes; body_done;
 *                n_att; sent_at, received_at, delivered_at ms; state (OUT
 *                0..3, IN 10..11, checked against dir); reason; unread.
 *                Index messages_inbox (dir, received_at, seq): the inbox
 *                order.
 *   attachments  (msg_id -> messages.id, idx 0..63) PK; name; size; hash
 *                BLOB(32); path; done <= size.  WITHOUT ROWID (small rows).
 *
 * INVARIANTS (checked by hl_store_verify)
 *   1. peers.in_contig = max S with IN items 1..S all present, else 0.
 *   2. peers.in_bytes - peers.freed_bytes = USAGE_NOW_OF(the peer): what
 *      its rows and files cost (MIGRATION_4) less what purges freed
 *      (version 5: a purged message keeps its rows only), saturating at
 *      INT64_MAX.
 *   3. Every message has its item; every attachment its message (FKs).
 *   4. Message states only move forward: queued -> sent -> delivered, or
 *      -> refused; partial -> complete, or -> refused (IN).  A request to move back (a stale
 *      "sent" after "delivered") changes nothing.
 *   5. Every integer the interface calls uint64_t is stored in 0..INT64_MAX;
 *      larger values are refused on write (HL_EINVAL), and a negative or
 *      ill-typed value on read is corruption (HL_ESTORE).
 *   6. The quota counts in_bytes - freed_bytes: freed_bytes is what purges
 *      of the peer's IN messages gave back (PURGE_BYTES; version 5,
 *      "retention" at the end).
 *   Reads check every blob's length and every text's length against the
 *   struct it fills: a corrupt row is an error, never an overflow.
 *
 * MIGRATIONS
 *   migrations[v] takes a store from version v-1 to v.  Each runs in its own
 *   BEGIN IMMEDIATE transaction that re-reads user_version under the lock
 *   (another process may have migrated meanwhile) and sets it last, so a
 *   crash leaves the store at a whole version.  A store newer than this
 *   code is refused, never touched.
 *
 * ERRORS
 *   A UNIQUE/PRIMARY KEY violation is HL_EEXIST (the delivery engine tells
 *   "already stored" from failure), a FOREIGN KEY violation HL_ENOTFOUND
 *   (no such peer or item); every other SQLite error, including SQLITE_FULL
 *   and SQLITE_IOERR, is HL_ESTORE.  The SQLite text is copied at once into
 *   the handle for hl_store_errmsg(), before a rollback can overwrite it.
 *   An API call that makes several writes runs them in a savepoint (or its
 *   own transaction when none is open), so a failed call changes nothing.
 *
 * STATEMENTS
 *   Every query is prepared once per handle, on first use, and reset and
 *   rebound afterwards.  A statement already in use (a callback that calls
 *   back into the store) gets a one-off copy, so iteration is re-entrant. */
#include "store/store.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "util/err.h"
#include "util/fsutil.h"
#include "util/mem.h"

#define APP_ID 0x686f746c /* "hotl" */
#define BUSY_TIMEOUT_MS 10000
#define I64MAX ((uint64_t)INT64_MAX)

/* ---- schema ---- */

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

/* Version 3: line checks, agreements and equivocation evidence (see the
 * block "checks and agreements" at the end of this file), and items of
 * kinds 3 to 63.  SQLite cannot change a CHECK constraint in place, so the
 * items table is rebuilt, by SQLite's procedure: with foreign keys off
 * (migrate_step) and legacy_alter_table on, renaming it away leaves the
 * messages table's reference naming "items", which the new table then is;
 * the copy keeps every rowid.  All of it in the one transaction. */
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
#define STR_(x) #x
#define STR(x) STR_(x)
#define ROW_COST STR(HL_STORE_ROW_COST)
#define BLOCK_COST STR(HL_STORE_BLOCK_COST)
#define I64MAX_SQL "9223372036854775807"
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

/* Version 5: retention (the block "retention" at the end of this file).
 * A purged message keeps its row and its signed item; its body and subject
 * go, purged_at says when.  freed_bytes is what purges gave back to the
 * peer's quota; unlink_queue lists the files of purged messages still to
 * be removed (written in the purge's transaction, emptied after the
 * unlink: a crash between the two leaves the names, not orphan files).
 * The partial index finds OUT messages not yet purged by age.
 * And restores (the block "retention" at the end): peers.resync is 1 in a
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
	" BEGIN SELECT RAISE(ABORT, 'this station was restored from a backup and signs nothing"
	" new for this peer until the peer has said how much of our chain it holds (the"
	" daemon asks it once the link is up)'); END;";

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

/* migrations[v] takes the store from version v - 1 to v. */
static const char *const migrations[] = { NULL, MIGRATION_1, MIGRATION_2, MIGRATION_3,
					  MIGRATION_4, MIGRATION_5 };
_Static_assert(sizeof(migrations) / sizeof(migrations[0]) == HL_STORE_SCHEMA_VERSION + 1,
	       "HL_STORE_SCHEMA_VERSION must name the last migration");

/* ---- statements ---- */

#define MSG_COLS \
	"m.id, m.peer_id, p.name, m.dir, m.seq, m.precedence, m.class_seq, m.salt," \
	" m.subject, m.body, m.body_size, m.sent_at, m.received_at, m.delivered_at," \
	" m.state, m.reason, m.unread, m.n_att, m.body_done, m.purged_at"

#define MSG_NCOLS 20 /* the columns of MSG_COLS */

enum stmt_id {
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
	S_PEER_UPSERT,
	S_PEER_BY_KEY,
	S_CHAIN_HEAD,
	S_IN_CONTIG,
	S_IN_ADVANCE,
	S_NEXT_CLASS_SEQ,
	S_ITEM_INSERT,
	S_ITEM_GET,
	S_ACK_RANGE,
	S_UNACKED,
	S_IN_ABOVE,
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
	S_PEER_USAGE,
	S_ACK_MSGS,
	S_MSG_BY_SEQ,
	S_OUT_SEND,
	S_OUT_AFTER,
	S_OUT_WITH_PARTS,
	S_IN_BY_STATE,
	S_IN_CLASS_STATE,
	S_MSG_EXISTS,
	S_MARK_DELIVERED,
	/* the chain rules' lookups (chain/accept.h) */
	S_CLASS_BELOW,
	S_CLASS_ABOVE,
	S_HEAD_BELOW,
	S_HEAD_ABOVE,
	S_OUT_ENTRY,
	S_COUNT
};

static const char *const stmt_sql[S_COUNT] = {
	[S_BEGIN] = "BEGIN IMMEDIATE",
	[S_COMMIT] = "COMMIT",
	[S_ROLLBACK] = "ROLLBACK",
	[S_SAVEPOINT] = "SAVEPOINT hl_op",
	[S_RELEASE] = "RELEASE hl_op",
	[S_ROLLBACK_TO] = "ROLLBACK TO hl_op",
	[S_CALLER_SAVEPOINT] = "SAVEPOINT hl_caller",
	[S_CALLER_RELEASE] = "RELEASE hl_caller",
	[S_CALLER_ROLLBACK_TO] = "ROLLBACK TO hl_caller",
	[S_DATA_VERSION] = "PRAGMA data_version",
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
	[S_NEXT_CLASS_SEQ] = "SELECT max(class_seq) FROM messages"
			     " WHERE peer_id = ?1 AND dir = 0 AND precedence = ?2",
	[S_ITEM_INSERT] = "INSERT INTO items (peer_id, dir, seq, kind, hash, encoded,"
			  " precedence, acked, stored_at, refused)"
			  " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
	[S_ITEM_GET] = "SELECT kind, hash, encoded, precedence, acked, stored_at FROM items"
		       " WHERE peer_id = ?1 AND dir = ?2 AND seq = ?3",
	[S_ACK_RANGE] = "UPDATE items SET acked = 1 WHERE peer_id = ?1 AND dir = 0"
			" AND seq BETWEEN ?2 AND ?3 AND acked = 0",
	[S_UNACKED] = "SELECT seq, kind, hash, encoded, precedence, stored_at FROM items"
		      " WHERE peer_id = ?1 AND dir = 0 AND acked = 0"
		      " ORDER BY precedence DESC, seq LIMIT ?2",
	[S_IN_ABOVE] = "SELECT seq FROM items WHERE peer_id = ?1 AND dir = 1 AND seq > ?2"
		       " ORDER BY seq",
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
	/* What purges freed (invariant 6) no longer counts. */
	[S_PEER_USAGE] = "SELECT max(in_bytes - freed_bytes, 0) FROM peers WHERE id = ?1",
	/* The delivery engine's queries (store.h, "for the delivery engine"). */
	[S_ACK_MSGS] = "UPDATE messages SET state = 1 WHERE peer_id = ?1 AND dir = 0"
		       " AND seq BETWEEN ?2 AND ?3 AND state = 0",
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
	[S_OUT_AFTER] = "SELECT seq, kind, hash, encoded, precedence, stored_at FROM items"
			" WHERE peer_id = ?1 AND dir = 0 AND seq > ?2 AND acked = 0"
			" ORDER BY seq LIMIT ?3",
	[S_OUT_WITH_PARTS] = "SELECT " MSG_COLS " FROM messages m JOIN peers p ON p.id = m.peer_id"
			     " WHERE m.peer_id = ?1 AND m.dir = 0 AND m.state = 1"
			     " AND (m.n_att > 0 OR m.body_size > ?2) ORDER BY m.seq",
	[S_IN_BY_STATE] = "SELECT " MSG_COLS " FROM messages m JOIN peers p ON p.id = m.peer_id"
			  " WHERE m.peer_id = ?1 AND m.dir = 1 AND m.state = ?2 ORDER BY m.seq",
	[S_MSG_EXISTS] = "SELECT 1 FROM messages WHERE id = ?1",
	/* HL_MSG_DELIVERED (2) from queued (0) or sent (1): invariant 4 */
	[S_MARK_DELIVERED] = "UPDATE messages SET state = 2, delivered_at = CASE WHEN"
			     " delivered_at = 0 THEN ?3 ELSE delivered_at END"
			     " WHERE peer_id = ?1 AND dir = 0 AND seq = ?2 AND state IN (0, 1)"
			     " AND EXISTS (SELECT 1 FROM items WHERE peer_id = ?1 AND dir = 0"
			     " AND seq = ?2 AND hash = ?4)"
			     " RETURNING id",
	[S_IN_CLASS_STATE] = "SELECT state FROM messages WHERE peer_id = ?1 AND dir = 1"
			     " AND precedence = ?2 AND class_seq = ?3",
	/* The chain rules' lookups.  The class neighbours walk the UNIQUE
	 * (peer_id, dir, precedence, class_seq) index one step each way. */
	[S_CLASS_BELOW] = "SELECT seq, class_seq FROM messages WHERE peer_id = ?1 AND dir = 1"
			  " AND precedence = ?2 AND class_seq < ?3 ORDER BY class_seq DESC LIMIT 1",
	[S_CLASS_ABOVE] = "SELECT seq, class_seq FROM messages WHERE peer_id = ?1 AND dir = 1"
			  " AND precedence = ?2 AND class_seq >= ?3 ORDER BY class_seq LIMIT 1",
	/* The nearest items that record the other chain's head (receipts,
	 * checks, answers: kinds 2 to 4) walk the (peer_id, dir, seq) index
	 * from SEQ until one is found: items usually arrive in order, so the
	 * walk above stops at once and the one below at the last receipt. */
	[S_HEAD_BELOW] = "SELECT seq, encoded FROM items WHERE peer_id = ?1 AND dir = ?2"
			 " AND seq < ?3 AND kind BETWEEN 2 AND 4 ORDER BY seq DESC LIMIT 1",
	[S_HEAD_ABOVE] = "SELECT seq, encoded FROM items WHERE peer_id = ?1 AND dir = ?2"
			 " AND seq > ?3 AND kind BETWEEN 2 AND 4 ORDER BY seq LIMIT 1",
	[S_OUT_ENTRY] = "SELECT i.kind, i.hash, m.state FROM items i LEFT JOIN messages m"
			" ON m.peer_id = i.peer_id AND m.dir = 0 AND m.seq = i.seq"
			" WHERE i.peer_id = ?1 AND i.dir = 0 AND i.seq = ?2",
};

struct hl_store {
	sqlite3 *db;
	sqlite3_stmt *stmt[S_COUNT];
	bool busy[S_COUNT];
	int64_t data_version;
	int64_t busy_since_us;   /* when the current wait for a lock began */
	char errmsg[512];
};

static _Thread_local char open_err[640];

/* ---- errors ---- */

static int fail(hl_store *st, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int fail(hl_store *st, int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(st->errmsg, sizeof(st->errmsg), fmt, ap);
	va_end(ap);
	return code;
}

/* Records SQLite's text for RC (from the last call on the handle) and maps
 * RC to a hotline code. */
static int sqlerr(hl_store *st, int rc)
{
	snprintf(st->errmsg, sizeof(st->errmsg), "%s", sqlite3_errmsg(st->db));
	switch (rc) {
	case SQLITE_CONSTRAINT_UNIQUE:
	case SQLITE_CONSTRAINT_PRIMARYKEY:
		return HL_EEXIST;
	case SQLITE_CONSTRAINT_FOREIGNKEY:
		return HL_ENOTFOUND;
	default:
		return HL_ESTORE;
	}
}

static int corrupt(hl_store *st, const char *what, const char *why)
{
	return fail(st, HL_ESTORE, "corrupt store: %s %s", what, why);
}

const char *hl_store_errmsg(const hl_store *st)
{
	if (!st)
		return "no store";
	return st->errmsg[0] ? st->errmsg : "no error";
}

const char *hl_store_open_errmsg(void)
{
	return open_err[0] ? open_err : "no error";
}

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

/* ---- statement cache ---- */

static sqlite3_stmt *stmt_get(hl_store *st, enum stmt_id id, int *ret)
{
	sqlite3_stmt *s = NULL;
	int rc;
	if (st->busy[id]) {
		/* Re-entered from a callback: a private copy, finalized by put. */
		rc = sqlite3_prepare_v2(st->db, stmt_sql[id], -1, &s, NULL);
		if (rc != SQLITE_OK) {
			*ret = sqlerr(st, rc);
			return NULL;
		}
		return s;
	}
	if (!st->stmt[id]) {
		rc = sqlite3_prepare_v3(st->db, stmt_sql[id], -1, SQLITE_PREPARE_PERSISTENT,
					&st->stmt[id], NULL);
		if (rc != SQLITE_OK) {
			*ret = sqlerr(st, rc);
			sqlite3_finalize(st->stmt[id]);
			st->stmt[id] = NULL;
			return NULL;
		}
	}
	st->busy[id] = true;
	return st->stmt[id];
}

static void stmt_put(hl_store *st, enum stmt_id id, sqlite3_stmt *s)
{
	if (!s)
		return;
	if (s != st->stmt[id]) {
		sqlite3_finalize(s);
		return;
	}
	/* Reset at once: an unreset SELECT would hold its read transaction
	 * (and block checkpoints) until the next use. */
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	st->busy[id] = false;
}

/* Steps S expecting completion: 0 or an error. */
static int step_done(hl_store *st, sqlite3_stmt *s)
{
	int rc = sqlite3_step(s);
	return rc == SQLITE_DONE ? 0 : sqlerr(st, rc);
}

/* Steps S: 1 for a row, 0 when done, or an error. */
static int step_row(hl_store *st, sqlite3_stmt *s)
{
	int rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		return 1;
	return rc == SQLITE_DONE ? 0 : sqlerr(st, rc);
}

/* Runs a cached statement with no parameters and no result. */
static int exec_cached(hl_store *st, enum stmt_id id)
{
	int ret = 0;
	sqlite3_stmt *s = stmt_get(st, id, &ret);
	if (!s)
		return ret;
	ret = step_done(st, s);
	stmt_put(st, id, s);
	return ret;
}

/* Binding: RC collects the first failure so a statement's parameters can
 * be bound in a row and checked once. */
#define BIND(call)                        \
	do {                              \
		if (rc == SQLITE_OK)      \
			rc = (call);      \
	} while (0)

/* ---- column readers (each checks type and range: invariant 5) ---- */

static int col_item(hl_store *st, sqlite3_stmt *s, int col, const uint8_t **p, size_t *len,
		    const char *what);
static int adhoc(hl_store *st, const char *sql, sqlite3_stmt **s);

static int col_int(hl_store *st, sqlite3_stmt *s, int col, int64_t lo, int64_t hi,
		   int64_t *out, const char *what)
{
	/* *OUT is set on every path: optimising compilers cannot always see
	 * that callers read it only on success (-Wmaybe-uninitialized). */
	*out = 0;
	if (sqlite3_column_type(s, col) != SQLITE_INTEGER)
		return corrupt(st, what, "is not an integer");
	int64_t v = sqlite3_column_int64(s, col);
	if (v < lo || v > hi)
		return corrupt(st, what, "is out of range");
	*out = v;
	return 0;
}

static int col_u64(hl_store *st, sqlite3_stmt *s, int col, uint64_t *out, const char *what)
{
	int64_t v = 0;
	int ret = col_int(st, s, col, 0, INT64_MAX, &v, what);
	if (ret == 0)
		*out = (uint64_t)v;
	return ret;
}

static int col_blob(hl_store *st, sqlite3_stmt *s, int col, void *out, size_t len,
		    const char *what)
{
	if (sqlite3_column_type(s, col) != SQLITE_BLOB)
		return corrupt(st, what, "is not a blob");
	const void *p = sqlite3_column_blob(s, col);
	int n = sqlite3_column_bytes(s, col);
	if (n < 0 || (size_t)n != len)
		return corrupt(st, what, "has the wrong length");
	if (!p)
		return sqlerr(st, sqlite3_errcode(st->db));
	memcpy(out, p, len);
	return 0;
}

/* A TEXT column into a fixed buffer, NUL-terminated. */
static int col_text(hl_store *st, sqlite3_stmt *s, int col, char *out, size_t cap,
		    const char *what)
{
	if (sqlite3_column_type(s, col) != SQLITE_TEXT)
		return corrupt(st, what, "is not text");
	const unsigned char *p = sqlite3_column_text(s, col);
	int n = sqlite3_column_bytes(s, col);
	if (!p)
		return sqlerr(st, sqlite3_errcode(st->db));
	if (n < 0 || (size_t)n >= cap)
		return corrupt(st, what, "is too long");
	memcpy(out, p, (size_t)n);
	out[n] = '\0';
	return 0;
}

/* A TEXT column (or NULL, when NULLABLE) into an xmalloc'd string. */
static int col_text_dup(hl_store *st, sqlite3_stmt *s, int col, bool nullable, char **out,
			const char *what)
{
	int type = sqlite3_column_type(s, col);
	*out = NULL;
	if (type == SQLITE_NULL && nullable)
		return 0;
	if (type != SQLITE_TEXT)
		return corrupt(st, what, "is not text");
	const unsigned char *p = sqlite3_column_text(s, col);
	int n = sqlite3_column_bytes(s, col);
	if (!p || n < 0)
		return sqlerr(st, sqlite3_errcode(st->db));
	*out = xmalloc((size_t)n + 1);
	memcpy(*out, p, (size_t)n);
	(*out)[n] = '\0';
	return 0;
}

/* ---- opening and migrating ---- */

static int open_fail(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int open_fail(int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(open_err, sizeof(open_err), fmt, ap);
	va_end(ap);
	return code;
}

static int pragma_int(sqlite3 *db, const char *sql, int64_t *out)
{
	sqlite3_stmt *s = NULL;
	int rc = sqlite3_prepare_v2(db, sql, -1, &s, NULL);
	if (rc == SQLITE_OK) {
		rc = sqlite3_step(s);
		if (rc == SQLITE_ROW) {
			*out = sqlite3_column_int64(s, 0);
			rc = SQLITE_OK;
		}
	}
	sqlite3_finalize(s);
	return rc;
}

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
	if ((rc = pragma_int(db, "PRAGMA user_version", &v)) != SQLITE_OK ||
	    (rc = pragma_int(db, "PRAGMA application_id", &app)) != SQLITE_OK ||
	    (rc = pragma_int(db, "SELECT count(*) FROM sqlite_schema", &objects)) != SQLITE_OK)
		goto sqlfail;
	if (v > HL_STORE_SCHEMA_VERSION) {
		ret = open_fail(HL_EUNSUPP, "%s: schema version %" PRId64 " is newer than this "
				"hotline knows (%d); use a newer hotline", path, v,
				HL_STORE_SCHEMA_VERSION);
		goto out;
	}
	if (app != APP_ID && (app != 0 || v != 0 || objects != 0)) {
		ret = open_fail(HL_EINVAL, "%s: not a hotline store (application_id %" PRId64 ")",
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
	if ((rc = pragma_int(db, "SELECT count(*) FROM pragma_foreign_key_check", &dangling)) !=
	    SQLITE_OK)
		goto sqlfail;
	if (dangling) {
		ret = open_fail(HL_ESTORE, "%s: migrating from schema version %" PRId64 ": %" PRId64
				" dangling references", path, v, dangling);
		goto out;
	}
	rc = sqlite3_exec(db, "COMMIT", NULL, NULL, &err);
	if (rc != SQLITE_OK)
		goto sqlfail;
	*ver = v + 1;
	goto out;
sqlfail:
	ret = open_fail(HL_ESTORE, "%s: migrating from schema version %" PRId64 ": %s", path,
			v, err ? err : sqlite3_errmsg(db));
out:
	sqlite3_free(err);
	if (!sqlite3_get_autocommit(db))
		sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
	sqlite3_exec(db, "PRAGMA legacy_alter_table = OFF; PRAGMA foreign_keys = ON", NULL, NULL,
		     NULL);
	return ret;
}

static int migrate(sqlite3 *db, const char *path, int target)
{
	int64_t ver = 0;
	int rc = pragma_int(db, "PRAGMA user_version", &ver);
	if (rc != SQLITE_OK)
		return open_fail(HL_ESTORE, "%s: %s", path, sqlite3_errmsg(db));
	if (ver > HL_STORE_SCHEMA_VERSION)
		return open_fail(HL_EUNSUPP, "%s: schema version %" PRId64 " is newer than "
				 "this hotline knows (%d); use a newer hotline", path, ver,
				 HL_STORE_SCHEMA_VERSION);
	while (ver < target) {
		int ret = migrate_step(db, path, &ver);
		if (ret < 0)
			return ret;
	}
	return 0;
}

static int64_t mono_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* SQLite's own busy handler (sqlite3_busy_timeout) sleeps 1 ms, then 2,
 * 5, 10 ... while another connection holds the lock; but the lock is held
 * for one commit, which takes about one fsync (a fraction of a
 * millisecond), and the CLI and the daemon meet at it on every message.
 * This one retries after 50 us at first, backing off to 2 ms, and gives
 * up after BUSY_TIMEOUT_MS as before. */
static int busy_wait(void *arg, int count)
{
	hl_store *st = arg;
	int64_t now = mono_us();
	if (count == 0)
		st->busy_since_us = now;
	if (now - st->busy_since_us >= (int64_t)BUSY_TIMEOUT_MS * 1000)
		return 0;
	long us = count < 40 ? 50 : count < 100 ? 500 : 2000;
	struct timespec ts = { 0, us * 1000 };
	nanosleep(&ts, NULL);
	return 1;
}

/* Creates the database file with mode 0600 when it is missing (SQLite
 * would use 0644), making its directory entry durable. */
static int create_file(const char *path)
{
	int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd >= 0) {
		close(fd);
		int ret = hl_fsync_parent(path);
		if (ret < 0)
			return open_fail(ret, "%s: fsync of its directory: %s", path,
					 strerror(-ret));
		return 0;
	}
	if (errno != EEXIST)
		return open_fail(-errno, "%s: %s", path, strerror(errno));
	struct stat sb;
	if (lstat(path, &sb) < 0)
		return open_fail(-errno, "%s: %s", path, strerror(errno));
	if (!S_ISREG(sb.st_mode))
		return open_fail(HL_EINVAL, "%s: not a regular file", path);
	return 0;
}

int hl_store_open_version(const char *dir, int version, hl_store **out)
{
	int ret;
	char *path = NULL;
	hl_store *st = NULL;
	open_err[0] = '\0';
	*out = NULL;
	if (!dir || version < 1 || version > HL_STORE_SCHEMA_VERSION)
		return open_fail(HL_EINVAL, "store: bad directory or version %d", version);
	path = hl_path_join(dir, HL_STORE_FILE);
	if ((ret = create_file(path)) < 0)
		goto out;
	st = xcalloc(1, sizeof(*st));
	/* NOMUTEX: a store handle is only ever used by one thread at a time
	 * (the daemon's loop, or a command), so SQLite's per-call mutexes
	 * are pure cost (about 5-9% of a daemon streaming messages). */
	int rc = sqlite3_open_v2(path, &st->db,
				 SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOFOLLOW | SQLITE_OPEN_NOMUTEX,
				 NULL);
	if (rc != SQLITE_OK) {
		ret = open_fail(HL_ESTORE, "%s: %s", path,
				st->db ? sqlite3_errmsg(st->db) : sqlite3_errstr(rc));
		goto out;
	}
	sqlite3_extended_result_codes(st->db, 1);
	sqlite3_busy_handler(st->db, busy_wait, st);
	sqlite3_db_config(st->db, SQLITE_DBCONFIG_DEFENSIVE, 1, NULL);
	sqlite3_db_config(st->db, SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0, NULL);
	/* journal_mode answers with the mode in force; anything but "wal"
	 * (say, a read-only directory) would silently lose our guarantees. */
	sqlite3_stmt *s = NULL;
	rc = sqlite3_prepare_v2(st->db, "PRAGMA journal_mode = WAL", -1, &s, NULL);
	if (rc == SQLITE_OK && (rc = sqlite3_step(s)) == SQLITE_ROW) {
		const char *mode = (const char *)sqlite3_column_text(s, 0);
		rc = mode && strcmp(mode, "wal") == 0 ? SQLITE_OK : SQLITE_CANTOPEN;
		if (rc != SQLITE_OK) {
			ret = open_fail(HL_ESTORE, "%s: cannot use WAL mode (journal_mode %s)",
					path, mode ? mode : "?");
			sqlite3_finalize(s);
			goto out;
		}
	}
	sqlite3_finalize(s);
	if (rc == SQLITE_OK)
		/* A 16 MiB page cache: a burst of thousands of messages in one
		 * group commit must not spill pages to the WAL mid-transaction.
		 * Statement journals (the savepoints of the multi-row calls, the
		 * quota triggers) in memory: in a file they cost a page write
		 * each time a row lands on a page the transaction had not yet
		 * changed in that statement (about 10% of a receiver's time). */
		rc = sqlite3_exec(st->db, "PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;"
				  " PRAGMA cache_size = -16384; PRAGMA temp_store = MEMORY", NULL, NULL, NULL);
	if (rc != SQLITE_OK) {
		ret = open_fail(HL_ESTORE, "%s: %s", path, sqlite3_errmsg(st->db));
		goto out;
	}
	if ((ret = migrate(st->db, path, version)) < 0)
		goto out;
	if (pragma_int(st->db, "PRAGMA data_version", &st->data_version) != SQLITE_OK) {
		ret = open_fail(HL_ESTORE, "%s: %s", path, sqlite3_errmsg(st->db));
		goto out;
	}
	*out = st;
	st = NULL;
	ret = 0;
out:
	hl_store_close(st);
	free(path);
	return ret;
}

int hl_store_open(const char *dir, hl_store **out)
{
	return hl_store_open_version(dir, HL_STORE_SCHEMA_VERSION, out);
}

void hl_store_close(hl_store *st)
{
	if (!st)
		return;
	for (int i = 0; i < S_COUNT; i++)
		sqlite3_finalize(st->stmt[i]);
	/* An open transaction is rolled back by the close. */
	sqlite3_close_v2(st->db);
	free(st);
}

/* ---- transactions ---- */

int hl_store_begin(hl_store *st)
{
	if (!sqlite3_get_autocommit(st->db))
		return fail(st, HL_ESTATE, "a transaction is already open");
	return exec_cached(st, S_BEGIN);
}

int hl_store_commit(hl_store *st)
{
	if (sqlite3_get_autocommit(st->db))
		return fail(st, HL_ESTATE, "no transaction is open (an earlier error may "
			    "have rolled it back)");
	int ret = exec_cached(st, S_COMMIT);
	/* A failed COMMIT (disk full, I/O error) may leave the transaction
	 * open; end it so the handle stays usable.  The error text was
	 * already kept. */
	if (ret < 0 && !sqlite3_get_autocommit(st->db))
		sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
	return ret;
}

void hl_store_rollback(hl_store *st)
{
	if (!st || sqlite3_get_autocommit(st->db))
		return;
	char keep[sizeof(st->errmsg)];
	memcpy(keep, st->errmsg, sizeof(keep));
	if (exec_cached(st, S_ROLLBACK) < 0 && !sqlite3_get_autocommit(st->db))
		sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
	/* The error that led here matters more than the rollback's. */
	memcpy(st->errmsg, keep, sizeof(keep));
}

/* The savepoint has its own name: the store's functions use "hl_op"
 * inside it.  Cached statements: the delivery engine takes one around
 * every item it receives. */
int hl_store_savepoint(hl_store *st)
{
	if (sqlite3_get_autocommit(st->db))
		return fail(st, HL_ESTATE, "no transaction is open for a savepoint");
	return exec_cached(st, S_CALLER_SAVEPOINT);
}

int hl_store_release(hl_store *st)
{
	return exec_cached(st, S_CALLER_RELEASE);
}

void hl_store_rollback_to(hl_store *st)
{
	if (!st || sqlite3_get_autocommit(st->db))
		return; /* SQLite rolled back the whole transaction already */
	char keep[sizeof(st->errmsg)];
	memcpy(keep, st->errmsg, sizeof(keep));
	if (exec_cached(st, S_CALLER_ROLLBACK_TO) == 0)
		exec_cached(st, S_CALLER_RELEASE);
	memcpy(st->errmsg, keep, sizeof(keep));
}

bool hl_store_changed(hl_store *st)
{
	int ret = 0;
	int64_t v = 0;
	sqlite3_stmt *s = stmt_get(st, S_DATA_VERSION, &ret);
	if (!s)
		return true; /* when in doubt, have the caller look */
	bool changed = true;
	if (step_row(st, s) == 1) {
		v = sqlite3_column_int64(s, 0);
		changed = v != st->data_version;
		st->data_version = v;
	}
	stmt_put(st, S_DATA_VERSION, s);
	return changed;
}

/* Several writes as one: a savepoint inside the caller's transaction, or a
 * transaction of our own in autocommit mode. */
struct op {
	bool own_txn;
};

static int op_begin(hl_store *st, struct op *op)
{
	op->own_txn = sqlite3_get_autocommit(st->db);
	return exec_cached(st, op->own_txn ? S_BEGIN : S_SAVEPOINT);
}

static int op_end(hl_store *st, struct op *op, int ret)
{
	if (ret == 0) {
		ret = op->own_txn ? hl_store_commit(st) : exec_cached(st, S_RELEASE);
		if (ret == 0 || op->own_txn) /* a failed commit rolled back */
			return ret;
	}
	char keep[sizeof(st->errmsg)];
	memcpy(keep, st->errmsg, sizeof(keep));
	if (op->own_txn) {
		hl_store_rollback(st);
	} else if (!sqlite3_get_autocommit(st->db)) {
		/* Unless SQLite already rolled back the whole transaction (it
		 * does after some I/O errors; the caller's commit then reports
		 * it), undo just this call. */
		exec_cached(st, S_ROLLBACK_TO);
		exec_cached(st, S_RELEASE);
	}
	memcpy(st->errmsg, keep, sizeof(keep));
	return ret;
}

/* ---- peers ---- */

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int peer_by_key(hl_store *st, const uint8_t signing_key[static 32], int64_t *id)
{
	int ret = 0;
	sqlite3_stmt *s = stmt_get(st, S_PEER_BY_KEY, &ret);
	if (!s)
		return ret;
	int rc = sqlite3_bind_blob(s, 1, signing_key, 32, SQLITE_STATIC);
	if (rc != SQLITE_OK)
		ret = sqlerr(st, rc);
	else if ((ret = step_row(st, s)) == 0)
		ret = fail(st, HL_ENOTFOUND, "no peer with that signing key");
	else if (ret > 0)
		ret = col_int(st, s, 0, 1, INT64_MAX, id, "peers.id");
	stmt_put(st, S_PEER_BY_KEY, s);
	return ret;
}

int hl_store_peer(hl_store *st, const uint8_t signing_key[static 32],
		  const uint8_t noise_key[static 32], const char *name, int64_t *peer_id)
{
	int ret = 0, rc = SQLITE_OK;
	int64_t id = 0;
	bool returned = false;
	if (!name)
		return fail(st, HL_EINVAL, "peer name missing");
	size_t name_len = strlen(name);
	if (name_len >= sizeof(((struct hl_msg_row *)0)->peer_name))
		return fail(st, HL_ETOOBIG, "peer name of %zu bytes", name_len);
	sqlite3_stmt *s = stmt_get(st, S_PEER_UPSERT, &ret);
	if (!s)
		return ret;
	BIND(sqlite3_bind_blob(s, 1, signing_key, 32, SQLITE_STATIC));
	BIND(sqlite3_bind_blob(s, 2, noise_key, 32, SQLITE_STATIC));
	BIND(sqlite3_bind_text(s, 3, name, (int)name_len, SQLITE_STATIC));
	BIND(sqlite3_bind_int64(s, 4, now_ms()));
	if (rc != SQLITE_OK) {
		ret = sqlerr(st, rc);
		goto out;
	}
	if ((ret = step_row(st, s)) > 0) {
		returned = true;
		/* A RETURNING statement completes its write when stepped to
		 * the end. */
		if ((ret = col_int(st, s, 0, 1, INT64_MAX, &id, "peers.id")) == 0)
			ret = step_done(st, s);
	}
out:
	stmt_put(st, S_PEER_UPSERT, s);
	/* No row: the peer exists unchanged, and nothing was written. */
	if (ret == 0 && !returned)
		ret = peer_by_key(st, signing_key, &id);
	if (ret == 0 && peer_id)
		*peer_id = id;
	return ret;
}

int hl_store_peer_usage(hl_store *st, int64_t peer_id, uint64_t *bytes)
{
	int ret = 0;
	sqlite3_stmt *s = stmt_get(st, S_PEER_USAGE, &ret);
	if (!s)
		return ret;
	int rc = sqlite3_bind_int64(s, 1, peer_id);
	if (rc != SQLITE_OK)
		ret = sqlerr(st, rc);
	else if ((ret = step_row(st, s)) == 0)
		ret = fail(st, HL_ENOTFOUND, "no peer %" PRId64, peer_id);
	else if (ret > 0)
		ret = col_u64(st, s, 0, bytes, "peers.in_bytes");
	stmt_put(st, S_PEER_USAGE, s);
	return ret;
}

/* ---- chains ---- */

static bool dir_ok(enum hl_dir dir)
{
	return dir == HL_DIR_OUT || dir == HL_DIR_IN;
}

int hl_store_chain_head(hl_store *st, int64_t peer_id, enum hl_dir dir,
			struct hl_chain_head *head)
{
	int ret = 0, rc = SQLITE_OK;
	memset(head, 0, sizeof(*head));
	if (!dir_ok(dir))
		return fail(st, HL_EINVAL, "bad direction %d", (int)dir);
	sqlite3_stmt *s = stmt_get(st, S_CHAIN_HEAD, &ret);
	if (!s)
		return ret;
	BIND(sqlite3_bind_int64(s, 1, peer_id));
	BIND(sqlite3_bind_int(s, 2, (int)dir));
	if (rc != SQLITE_OK)
		ret = sqlerr(st, rc);
	else if ((ret = step_row(st, s)) > 0 &&
		 (ret = col_u64(st, s, 0, &head->seq, "items.seq")) == 0)
		ret = col_blob(st, s, 1, head->hash, HL_HASH_LEN, "items.hash");
	stmt_put(st, S_CHAIN_HEAD, s);
	if (ret < 0)
		memset(head, 0, sizeof(*head));
	return ret < 0 ? ret : 0;
}

int hl_store_in_contiguous(hl_store *st, int64_t peer_id, struct hl_chain_head *head)
{
	int ret = 0;
	memset(head, 0, sizeof(*head));
	sqlite3_stmt *s = stmt_get(st, S_IN_CONTIG, &ret);
	if (!s)
		return ret;
	int rc = sqlite3_bind_int64(s, 1, peer_id);
	if (rc != SQLITE_OK) {
		ret = sqlerr(st, rc);
		goto out;
	}
	if ((ret = step_row(st, s)) == 0)
		ret = fail(st, HL_ENOTFOUND, "no peer %" PRId64, peer_id);
	if (ret < 0)
		goto out;
	if ((ret = col_u64(st, s, 0, &head->seq, "peers.in_contig")) < 0)
		goto out;
	if (head->seq > 0)
		ret = col_blob(st, s, 1, head->hash, HL_HASH_LEN, "the hash at peers.in_contig");
out:
	stmt_put(st, S_IN_CONTIG, s);
	if (ret < 0)
		memset(head, 0, sizeof(*head));
	return ret < 0 ? ret : 0;
}

int hl_store_next_class_seq(hl_store *st, int64_t peer_id, unsigned prec, uint64_t *out)
{
	int ret = 0, rc = SQLITE_OK;
	if (prec >= HL_PREC_COUNT)
		return fail(st, HL_EINVAL, "bad precedence %u", prec);
	sqlite3_stmt *s = stmt_get(st, S_NEXT_CLASS_SEQ, &ret);
	if (!s)
		return ret;
	BIND(sqlite3_bind_int64(s, 1, peer_id));
	BIND(sqlite3_bind_int(s, 2, (int)prec));
	uint64_t last = 0;
	if (rc != SQLITE_OK)
		ret = sqlerr(st, rc);
	else if ((ret = step_row(st, s)) > 0 && sqlite3_column_type(s, 0) != SQLITE_NULL)
		ret = col_u64(st, s, 0, &last, "messages.class_seq");
	stmt_put(st, S_NEXT_CLASS_SEQ, s);
	if (ret < 0)
		return ret;
	if (last >= I64MAX)
		return fail(st, HL_ETOOBIG, "class_seq exhausted");
	*out = last + 1;
	return 0;
}

/* After an IN item or tombstone landed at SEQ: when it extends the
 * contiguous prefix, move the mark to the end of the run it joins. */
static int in_advance(hl_store *st, int64_t peer_id, uint64_t seq)
{
	int ret = 0, rc = SQLITE_OK;
	sqlite3_stmt *s = stmt_get(st, S_IN_ADVANCE, &ret);
	if (!s)
		return ret;
	BIND(sqlite3_bind_int64(s, 1, peer_id));
	BIND(sqlite3_bind_int64(s, 2, (int64_t)seq));
	/* The item was just inserted, so the run is never empty (a NULL
	 * would fail the column's NOT NULL: an error, not a silent reset). */
	ret = rc != SQLITE_OK ? sqlerr(st, rc) : step_done(st, s);
	stmt_put(st, S_IN_ADVANCE, s);
	return ret;
}

/* Inserts one items row; ENCODED NULL makes a tombstone. */
static int item_insert(hl_store *st, const struct hl_item_row *row, int refused)
{
	int ret = 0, rc = SQLITE_OK;
	sqlite3_stmt *s = stmt_get(st, S_ITEM_INSERT, &ret);
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
	ret = rc != SQLITE_OK ? sqlerr(st, rc) : step_done(st, s);
	stmt_put(st, S_ITEM_INSERT, s);
	return ret;
}

int hl_store_insert_item(hl_store *st, const struct hl_item_row *row)
{
	if (!dir_ok(row->dir) || row->seq < 1 || row->seq > I64MAX ||
	    row->kind < HL_ITEM_MESSAGE || row->kind > HL_ITEM_KIND_MAX ||
	    row->precedence >= HL_PREC_COUNT)
		return fail(st, HL_EINVAL, "bad item row (dir %d, seq %" PRIu64 ", kind %d, "
			    "precedence %u)", (int)row->dir, row->seq, (int)row->kind,
			    row->precedence);
	if (!row->encoded || row->encoded_len == 0 || row->encoded_len > HL_ITEM_MAX)
		return fail(st, HL_ETOOBIG, "item of %zu bytes", row->encoded_len);
	if (row->dir == HL_DIR_OUT)
		return item_insert(st, row, -1); /* one statement: atomic alone */
	struct op op;
	int ret = op_begin(st, &op);
	if (ret < 0)
		return ret;
	ret = item_insert(st, row, -1);
	if (ret == 0)
		ret = in_advance(st, row->peer_id, row->seq);
	return op_end(st, &op, ret);
}

int hl_store_insert_tombstone(hl_store *st, int64_t peer_id, uint64_t seq,
			      const uint8_t hash[static HL_HASH_LEN], unsigned code)
{
	if (seq < 1 || seq > I64MAX || code > 255)
		return fail(st, HL_EINVAL, "bad tombstone (seq %" PRIu64 ", code %u)", seq, code);
	struct hl_item_row row = {
		.peer_id = peer_id,
		.dir = HL_DIR_IN,
		.seq = seq,
		.kind = 0,
		.precedence = HL_PREC_FLASH,
		.stored_at = now_ms(),
	};
	memcpy(row.hash, hash, HL_HASH_LEN);
	struct op op;
	int ret = op_begin(st, &op);
	if (ret < 0)
		return ret;
	ret = item_insert(st, &row, (int)code);
	if (ret == 0)
		ret = in_advance(st, peer_id, seq);
	return op_end(st, &op, ret);
}

/* Fills ROW from an items SELECT whose columns start at COL with
 * kind, hash, encoded, precedence (then acked, stored_at when WITH_ACKED,
 * else stored_at).  ENCODED stays borrowed from the statement. */
static int read_item(hl_store *st, sqlite3_stmt *s, int col, bool with_acked,
		     struct hl_item_row *row)
{
	int64_t v;
	int ret;
	if ((ret = col_int(st, s, col, 0, HL_ITEM_KIND_MAX, &v, "items.kind")) < 0)
		return ret;
	row->kind = (enum hl_item_kind)v;
	if ((ret = col_blob(st, s, col + 1, row->hash, HL_HASH_LEN, "items.hash")) < 0)
		return ret;
	row->encoded = NULL;
	row->encoded_len = 0;
	int type = sqlite3_column_type(s, col + 2);
	if (row->kind == 0 ? type != SQLITE_NULL : type != SQLITE_BLOB)
		return corrupt(st, "items.encoded", "does not match the item's kind");
	if (row->kind != 0) {
		const uint8_t *p = sqlite3_column_blob(s, col + 2);
		int n = sqlite3_column_bytes(s, col + 2);
		if (n <= 0 || n > HL_ITEM_MAX)
			return corrupt(st, "items.encoded", "has a bad length");
		if (!p)
			return sqlerr(st, sqlite3_errcode(st->db));
		row->encoded = p;
		row->encoded_len = (size_t)n;
	}
	if ((ret = col_int(st, s, col + 3, 0, HL_PREC_COUNT - 1, &v, "items.precedence")) < 0)
		return ret;
	row->precedence = (unsigned)v;
	int next = col + 4;
	row->acked = false;
	if (with_acked) {
		if ((ret = col_int(st, s, next++, 0, 1, &v, "items.acked")) < 0)
			return ret;
		row->acked = v != 0;
	}
	return col_int(st, s, next, INT64_MIN, INT64_MAX, &row->stored_at, "items.stored_at");
}

int hl_store_get_item(hl_store *st, int64_t peer_id, enum hl_dir dir, uint64_t seq,
		      struct hl_item_row *row, uint8_t *buf, size_t cap)
{
	int ret = 0, rc = SQLITE_OK;
	memset(row, 0, sizeof(*row));
	if (!dir_ok(dir))
		return fail(st, HL_EINVAL, "bad direction %d", (int)dir);
	if (seq < 1 || seq > I64MAX)
		return fail(st, HL_ENOTFOUND, "no item %" PRIu64, seq);
	sqlite3_stmt *s = stmt_get(st, S_ITEM_GET, &ret);
	if (!s)
		return ret;
	BIND(sqlite3_bind_int64(s, 1, peer_id));
	BIND(sqlite3_bind_int(s, 2, (int)dir));
	BIND(sqlite3_bind_int64(s, 3, (int64_t)seq));
	if (rc != SQLITE_OK) {
		ret = sqlerr(st, rc);
		goto out;
	}
	if ((ret = step_row(st, s)) == 0)
		ret = fail(st, HL_ENOTFOUND, "no %s item %" PRIu64 " of peer %" PRId64,
			   dir == HL_DIR_IN ? "IN" : "OUT", seq, peer_id);
	if (ret < 0 || (ret = read_item(st, s, 0, true, row)) < 0)
		goto out;
	row->peer_id = peer_id;
	row->dir = dir;
	row->seq = seq;
	if (row->encoded) {
		if (row->encoded_len > cap) {
			ret = fail(st, HL_ETOOBIG, "item of %zu bytes, buffer of %zu",
				   row->encoded_len, cap);
			goto out;
		}
		memcpy(buf, row->encoded, row->encoded_len);
		row->encoded = buf;
	}
out:
	stmt_put(st, S_ITEM_GET, s);
	if (ret < 0)
		memset(row, 0, sizeof(*row));
	return ret < 0 ? ret : 0;
}

int hl_store_ack_range(hl_store *st, int64_t peer_id, uint64_t first, uint64_t last)
{
	int ret = 0, rc = SQLITE_OK;
	if (first > last)
		return fail(st, HL_EINVAL, "ack range %" PRIu64 "-%" PRIu64, first, last);
	if (first > I64MAX) /* no item can be there: nothing to mark */
		return 0;
	if (last > I64MAX)
		last = I64MAX;
	sqlite3_stmt *s = stmt_get(st, S_ACK_RANGE, &ret);
	if (!s)
		return ret;
	BIND(sqlite3_bind_int64(s, 1, peer_id));
	BIND(sqlite3_bind_int64(s, 2, (int64_t)first));
	BIND(sqlite3_bind_int64(s, 3, (int64_t)last));
	ret = rc != SQLITE_OK ? sqlerr(st, rc) : step_done(st, s);
	stmt_put(st, S_ACK_RANGE, s);
	if (ret < 0)
		return ret;
	/* The messages among them are now held by the peer: queued -> sent. */
	if (!(s = stmt_get(st, S_ACK_MSGS, &ret)))
		return ret;
	BIND(sqlite3_bind_int64(s, 1, peer_id));
	BIND(sqlite3_bind_int64(s, 2, (int64_t)first));
	BIND(sqlite3_bind_int64(s, 3, (int64_t)last));
	ret = rc != SQLITE_OK ? sqlerr(st, rc) : step_done(st, s);
	stmt_put(st, S_ACK_MSGS, s);
	return ret;
}

/* Steps S (bound by the caller) over OUT item rows: seq, then the columns
 * read_item() reads; FN per row. */
static int step_out_items(hl_store *st, sqlite3_stmt *s, int64_t peer_id,
			  int (*fn)(void *arg, const struct hl_item_row *row), void *arg)
{
	int ret;
	while ((ret = step_row(st, s)) > 0) {
		struct hl_item_row row = { .peer_id = peer_id, .dir = HL_DIR_OUT };
		if ((ret = col_u64(st, s, 0, &row.seq, "items.seq")) < 0 ||
		    (ret = read_item(st, s, 1, false, &row)) < 0)
			break;
		if (row.kind == 0) {
			ret = corrupt(st, "items", "has an OUT tombstone");
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
	sqlite3_stmt *s = stmt_get(st, S_UNACKED, &ret);
	if (!s)
		return ret;
	BIND(sqlite3_bind_int64(s, 1, peer_id));
	BIND(sqlite3_bind_int64(s, 2, limit > I64MAX ? -1 : (int64_t)limit));
	ret = rc != SQLITE_OK ? sqlerr(st, rc) : step_out_items(st, s, peer_id, fn, arg);
	stmt_put(st, S_UNACKED, s);
	return ret;
}

int hl_store_in_ranges(hl_store *st, int64_t peer_id, uint64_t base,
		       uint64_t (*ranges)[2], size_t max, size_t *n)
{
	int ret = 0, rc = SQLITE_OK;
	*n = 0;
	if (max == 0 || base >= I64MAX)
		return 0;
	sqlite3_stmt *s = stmt_get(st, S_IN_ABOVE, &ret);
	if (!s)
		return ret;
	BIND(sqlite3_bind_int64(s, 1, peer_id));
	BIND(sqlite3_bind_int64(s, 2, (int64_t)base));
	if (rc != SQLITE_OK) {
		ret = sqlerr(st, rc);
		goto out;
	}
	/* Coalesce in C and stop at MAX ranges: only the rows the answer
	 * needs are read. */
	size_t k = 0;
	while ((ret = step_row(st, s)) > 0) {
		uint64_t seq = 0;
		if ((ret = col_u64(st, s, 0, &seq, "items.seq")) < 0)
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
	stmt_put(st, S_IN_ABOVE, s);
	return ret;
}

/* ---- messages ---- */

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

static int att_insert(hl_store *st, const uint8_t id[static HL_MSG_ID_LEN], unsigned idx,
		      const struct hl_att_row *a)
{
	int ret = 0, rc = SQLITE_OK;
	size_t name_len = strnlen(a->name, sizeof(a->name));
	size_t path_len = strnlen(a->path, sizeof(a->path));
	if (name_len == 0 || name_len == sizeof(a->name) || path_len == sizeof(a->path) ||
	    a->size > I64MAX || a->done > a->size)
		return fail(st, HL_EINVAL, "bad attachment %u", idx);
	sqlite3_stmt *s = stmt_get(st, S_ATT_INSERT, &ret);
	if (!s)
		return ret;
	BIND(sqlite3_bind_blob(s, 1, id, HL_MSG_ID_LEN, SQLITE_STATIC));
	BIND(sqlite3_bind_int(s, 2, (int)idx));
	BIND(sqlite3_bind_text(s, 3, a->name, (int)name_len, SQLITE_STATIC));
	BIND(sqlite3_bind_int64(s, 4, (int64_t)a->size));
	BIND(sqlite3_bind_blob(s, 5, a->hash, HL_HASH_LEN, SQLITE_STATIC));
	BIND(sqlite3_bind_text(s, 6, a->path, (int)path_len, SQLITE_STATIC));
	BIND(sqlite3_bind_int64(s, 7, (int64_t)a->done));
	ret = rc != SQLITE_OK ? sqlerr(st, rc) : step_done(st, s);
	stmt_put(st, S_ATT_INSERT, s);
	return ret;
}

static int msg_insert(hl_store *st, const struct hl_msg_row *row)
{
	int ret = 0, rc = SQLITE_OK;
	const char *subject = row->subject ? row->subject : "";
	size_t subject_len = strlen(subject);
	uint64_t body_done = row->body ? row->body_size : row->body_done;
	if (subject_len > HL_SUBJECT_MAX)
		return fail(st, HL_ETOOBIG, "subject of %zu bytes", subject_len);
	if (row->body_size > HL_BODY_MAX)
		return fail(st, HL_ETOOBIG, "body of %" PRIu64 " bytes", row->body_size);
	if (body_done > row->body_size)
		return fail(st, HL_EINVAL, "body_done %" PRIu64 " over body_size %" PRIu64,
			    body_done, row->body_size);
	sqlite3_stmt *s = stmt_get(st, S_MSG_INSERT, &ret);
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
	ret = rc != SQLITE_OK ? sqlerr(st, rc) : step_done(st, s);
	stmt_put(st, S_MSG_INSERT, s);
	return ret;
}

int hl_store_insert_message(hl_store *st, const struct hl_msg_row *row)
{
	if (!dir_ok(row->dir) || !state_ok(row->dir, (int)row->state) || row->seq < 1 ||
	    row->seq > I64MAX || row->precedence >= HL_PREC_COUNT || row->class_seq < 1 ||
	    row->class_seq > I64MAX || row->n_att > HL_MAX_ATTACHMENTS ||
	    (row->n_att > 0 && !row->att))
		return fail(st, HL_EINVAL, "bad message row (dir %d, state %d, seq %" PRIu64
			    ", precedence %u, class_seq %" PRIu64 ", %u attachments)",
			    (int)row->dir, (int)row->state, row->seq, row->precedence,
			    row->class_seq, row->n_att);
	/* Without attachments it is one INSERT (its quota trigger included),
	 * which SQLite applies whole or not at all: no savepoint needed (its
	 * two extra statements were ~7% of a receiver's time). */
	if (row->n_att == 0)
		return msg_insert(st, row);
	struct op op;
	int ret = op_begin(st, &op);
	if (ret < 0)
		return ret;
	ret = msg_insert(st, row);
	/* Attachment i is the item's i-th: its position is its index. */
	for (unsigned i = 0; ret == 0 && i < row->n_att; i++)
		ret = att_insert(st, row->id, i, &row->att[i]);
	return op_end(st, &op, ret);
}

/* Reads the attachments of ROW (N_ATT expected) from the store. */
static int read_atts(hl_store *st, struct hl_msg_row *row, unsigned n_att)
{
	int ret = 0;
	if (n_att == 0)
		return 0;
	sqlite3_stmt *s = stmt_get(st, S_ATT_BY_MSG, &ret);
	if (!s)
		return ret;
	int rc = sqlite3_bind_blob(s, 1, row->id, HL_MSG_ID_LEN, SQLITE_STATIC);
	if (rc != SQLITE_OK) {
		ret = sqlerr(st, rc);
		goto out;
	}
	row->att = xcalloc(n_att, sizeof(*row->att));
	unsigned k = 0;
	while ((ret = step_row(st, s)) > 0) {
		struct hl_att_row *a = &row->att[k];
		int64_t idx;
		if (k == n_att) {
			ret = corrupt(st, "attachments", "has more rows than messages.n_att");
			break;
		}
		if ((ret = col_int(st, s, 0, k, k, &idx, "attachments.idx")) < 0 ||
		    (ret = col_text(st, s, 1, a->name, sizeof(a->name), "attachments.name")) < 0 ||
		    (ret = col_u64(st, s, 2, &a->size, "attachments.size")) < 0 ||
		    (ret = col_blob(st, s, 3, a->hash, HL_HASH_LEN, "attachments.hash")) < 0 ||
		    (ret = col_text(st, s, 4, a->path, sizeof(a->path), "attachments.path")) < 0 ||
		    (ret = col_u64(st, s, 5, &a->done, "attachments.done")) < 0)
			break;
		a->idx = (unsigned)idx;
		k++;
	}
	if (ret == 0 && k != n_att)
		ret = corrupt(st, "attachments", "has fewer rows than messages.n_att");
	if (ret == 0)
		row->n_att = n_att;
out:
	stmt_put(st, S_ATT_BY_MSG, s);
	return ret;
}

/* Fills ROW (zeroed first) from a MSG_COLS row of S, attachments included.
 * On error ROW holds no allocation. */
static int read_msg(hl_store *st, sqlite3_stmt *s, struct hl_msg_row *row)
{
	int ret;
	int64_t v;
	memset(row, 0, sizeof(*row));
	if ((ret = col_blob(st, s, 0, row->id, HL_MSG_ID_LEN, "messages.id")) < 0 ||
	    (ret = col_int(st, s, 1, 1, INT64_MAX, &row->peer_id, "messages.peer_id")) < 0 ||
	    (ret = col_text(st, s, 2, row->peer_name, sizeof(row->peer_name), "peers.name")) < 0 ||
	    (ret = col_int(st, s, 3, 0, 1, &v, "messages.dir")) < 0)
		goto out;
	row->dir = (enum hl_dir)v;
	if ((ret = col_u64(st, s, 4, &row->seq, "messages.seq")) < 0 ||
	    (ret = col_int(st, s, 5, 0, HL_PREC_COUNT - 1, &v, "messages.precedence")) < 0)
		goto out;
	row->precedence = (unsigned)v;
	if ((ret = col_u64(st, s, 6, &row->class_seq, "messages.class_seq")) < 0 ||
	    (ret = col_blob(st, s, 7, row->salt, HL_SALT_LEN, "messages.salt")) < 0 ||
	    (ret = col_text_dup(st, s, 8, false, &row->subject, "messages.subject")) < 0 ||
	    (ret = col_u64(st, s, 10, &row->body_size, "messages.body_size")) < 0)
		goto out;
	int type = sqlite3_column_type(s, 9);
	if (type == SQLITE_BLOB) {
		const void *p = sqlite3_column_blob(s, 9);
		int n = sqlite3_column_bytes(s, 9);
		if (n < 0 || (uint64_t)n != row->body_size) {
			ret = corrupt(st, "messages.body", "does not match body_size");
			goto out;
		}
		if (!p && n > 0) {
			ret = sqlerr(st, sqlite3_errcode(st->db));
			goto out;
		}
		row->body = xmalloc((size_t)n);
		if (n > 0)
			memcpy(row->body, p, (size_t)n);
	} else if (type != SQLITE_NULL) {
		ret = corrupt(st, "messages.body", "is not a blob");
		goto out;
	}
	if ((ret = col_int(st, s, 11, INT64_MIN, INT64_MAX, &row->sent_at, "messages.sent_at")) < 0 ||
	    (ret = col_int(st, s, 12, INT64_MIN, INT64_MAX, &row->received_at,
			   "messages.received_at")) < 0 ||
	    (ret = col_int(st, s, 13, INT64_MIN, INT64_MAX, &row->delivered_at,
			   "messages.delivered_at")) < 0 ||
	    (ret = col_int(st, s, 14, 0, HL_MSG_REFUSED_IN, &v, "messages.state")) < 0)
		goto out;
	if (!state_ok(row->dir, (int)v)) {
		ret = corrupt(st, "messages.state", "does not fit the direction");
		goto out;
	}
	row->state = (enum hl_msg_state)v;
	if ((ret = col_text_dup(st, s, 15, true, &row->reason, "messages.reason")) < 0 ||
	    (ret = col_int(st, s, 16, 0, 1, &v, "messages.unread")) < 0)
		goto out;
	row->unread = v != 0;
	int64_t n_att;
	if ((ret = col_int(st, s, 17, 0, HL_MAX_ATTACHMENTS, &n_att, "messages.n_att")) < 0 ||
	    (ret = col_u64(st, s, 18, &row->body_done, "messages.body_done")) < 0)
		goto out;
	if (row->body_done > row->body_size) {
		ret = corrupt(st, "messages.body_done", "is over body_size");
		goto out;
	}
	if ((ret = col_int(st, s, 19, 0, INT64_MAX, &row->purged_at, "messages.purged_at")) < 0)
		goto out;
	ret = read_atts(st, row, (unsigned)n_att);
out:
	if (ret < 0) {
		hl_msg_row_clear(row);
		memset(row, 0, sizeof(*row));
	}
	return ret;
}

int hl_store_get_message_by_id(hl_store *st, const uint8_t id[static HL_MSG_ID_LEN],
			       struct hl_msg_row *row)
{
	int ret = 0;
	memset(row, 0, sizeof(*row));
	sqlite3_stmt *s = stmt_get(st, S_MSG_BY_ID, &ret);
	if (!s)
		return ret;
	int rc = sqlite3_bind_blob(s, 1, id, HL_MSG_ID_LEN, SQLITE_STATIC);
	if (rc != SQLITE_OK)
		ret = sqlerr(st, rc);
	else if ((ret = step_row(st, s)) == 0)
		ret = fail(st, HL_ENOTFOUND, "no such message");
	else if (ret > 0)
		ret = read_msg(st, s, row);
	stmt_put(st, S_MSG_BY_ID, s);
	return ret;
}

int hl_store_message_exists(hl_store *st, const uint8_t id[static HL_MSG_ID_LEN], bool *exists)
{
	int ret = 0;
	*exists = false;
	sqlite3_stmt *s = stmt_get(st, S_MSG_EXISTS, &ret);
	if (!s)
		return ret;
	int rc = sqlite3_bind_blob(s, 1, id, HL_MSG_ID_LEN, SQLITE_STATIC);
	if (rc != SQLITE_OK)
		ret = sqlerr(st, rc);
	else if ((ret = step_row(st, s)) > 0)
		*exists = true;
	stmt_put(st, S_MSG_EXISTS, s);
	return ret < 0 ? ret : 0;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int hl_store_get_message(hl_store *st, const char *id_prefix_hex, struct hl_msg_row *row)
{
	int ret = 0, rc = SQLITE_OK;
	uint8_t lo[HL_MSG_ID_LEN], hi[HL_MSG_ID_LEN], id[HL_MSG_ID_LEN];
	memset(row, 0, sizeof(*row));
	size_t len = id_prefix_hex ? strnlen(id_prefix_hex, 2 * HL_MSG_ID_LEN + 1) : 0;
	if (len < 8 || len > 2 * HL_MSG_ID_LEN)
		return fail(st, HL_EINVAL, "a message id is 8 to 32 hex digits");
	/* The ids that start with the prefix are exactly those between the
	 * prefix padded with 0 digits and the prefix padded with f digits. */
	memset(lo, 0x00, sizeof(lo));
	memset(hi, 0xff, sizeof(hi));
	for (size_t i = 0; i < len; i++) {
		int v = hexval(id_prefix_hex[i]);
		if (v < 0)
			return fail(st, HL_EINVAL, "a message id is hex digits");
		uint8_t shift = i % 2 ? 0 : 4;
		lo[i / 2] = (uint8_t)((lo[i / 2] & ~(0x0f << shift)) | (v << shift));
		hi[i / 2] = (uint8_t)((hi[i / 2] & ~(0x0f << shift)) | (v << shift));
	}
	sqlite3_stmt *s = stmt_get(st, S_MSG_PREFIX, &ret);
	if (!s)
		return ret;
	BIND(sqlite3_bind_blob(s, 1, lo, sizeof(lo), SQLITE_STATIC));
	BIND(sqlite3_bind_blob(s, 2, hi, sizeof(hi), SQLITE_STATIC));
	if (rc != SQLITE_OK) {
		ret = sqlerr(st, rc);
		goto out;
	}
	if ((ret = step_row(st, s)) == 0)
		ret = fail(st, HL_ENOTFOUND, "no message %s", id_prefix_hex);
	if (ret < 0 || (ret = col_blob(st, s, 0, id, sizeof(id), "messages.id")) < 0)
		goto out;
	if ((ret = step_row(st, s)) > 0)
		ret = fail(st, HL_EEXIST, "message id %s is ambiguous", id_prefix_hex);
out:
	stmt_put(st, S_MSG_PREFIX, s);
	if (ret < 0)
		return ret;
	return hl_store_get_message_by_id(st, id, row);
}

int hl_store_each_message(hl_store *st, const struct hl_msg_filter *f,
			  int (*fn)(void *arg, const struct hl_msg_row *row), void *arg)
{
	int ret = 0, rc = SQLITE_OK;
	if (!dir_ok(f->dir))
		return fail(st, HL_EINVAL, "bad direction %d", (int)f->dir);
	enum stmt_id sid = f->dir == HL_DIR_IN ? S_EACH_IN : S_EACH_OUT;
	sqlite3_stmt *s = stmt_get(st, sid, &ret);
	if (!s)
		return ret;
	BIND(sqlite3_bind_int64(s, 1, f->peer_id));
	BIND(sqlite3_bind_int(s, 2, f->unread_only));
	if (f->dir == HL_DIR_IN)
		BIND(sqlite3_bind_int(s, 3, f->visible_only));
	if (rc != SQLITE_OK) {
		ret = sqlerr(st, rc);
		goto out;
	}
	while ((ret = step_row(st, s)) > 0) {
		struct hl_msg_row row;
		if ((ret = read_msg(st, s, &row)) < 0)
			break;
		ret = fn(arg, &row);
		hl_msg_row_clear(&row);
		if (ret != 0)
			break;
	}
	if (ret > 0)
		ret = 0;
out:
	stmt_put(st, sid, s);
	return ret;
}

/* Why an UPDATE keyed by message id changed nothing: HL_ENOTFOUND, or 0
 * with the message's direction, state and body size. */
static int msg_lookup(hl_store *st, const uint8_t id[static HL_MSG_ID_LEN], int64_t *dir,
		      int64_t *state, uint64_t *body_size)
{
	int ret = 0;
	sqlite3_stmt *s = stmt_get(st, S_MSG_LOOKUP, &ret);
	if (!s)
		return ret;
	int rc = sqlite3_bind_blob(s, 1, id, HL_MSG_ID_LEN, SQLITE_STATIC);
	if (rc != SQLITE_OK)
		ret = sqlerr(st, rc);
	else if ((ret = step_row(st, s)) == 0)
		ret = fail(st, HL_ENOTFOUND, "no such message");
	else if (ret > 0 && (ret = col_int(st, s, 0, 0, 1, dir, "messages.dir")) == 0 &&
		 (ret = col_int(st, s, 1, 0, HL_MSG_REFUSED_IN, state, "messages.state")) == 0)
		ret = col_u64(st, s, 2, body_size, "messages.body_size");
	stmt_put(st, S_MSG_LOOKUP, s);
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
		return fail(st, HL_EINVAL, "bad message state %d", (int)state);
	sqlite3_stmt *s = stmt_get(st, S_SET_STATE, &ret);
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
	ret = rc != SQLITE_OK ? sqlerr(st, rc) : step_done(st, s);
	int64_t changed = sqlite3_changes64(st->db);
	stmt_put(st, S_SET_STATE, s);
	if (ret < 0 || changed > 0)
		return ret;
	/* Nothing moved: no such message, the wrong direction, or a state the
	 * message already passed (a no-op, invariant 4). */
	int64_t dir, cur;
	uint64_t size;
	if ((ret = msg_lookup(st, id, &dir, &cur, &size)) < 0)
		return ret;
	if (!state_ok((enum hl_dir)dir, (int)state))
		return fail(st, HL_EINVAL, "state %s does not fit a%s message",
			    hl_msg_state_name(state), dir == HL_DIR_IN ? "n IN" : "n OUT");
	return 0;
}

int hl_store_mark_read(hl_store *st, const uint8_t id[static HL_MSG_ID_LEN])
{
	int ret = 0;
	sqlite3_stmt *s = stmt_get(st, S_MARK_READ, &ret);
	if (!s)
		return ret;
	int rc = sqlite3_bind_blob(s, 1, id, HL_MSG_ID_LEN, SQLITE_STATIC);
	ret = rc != SQLITE_OK ? sqlerr(st, rc) : step_done(st, s);
	int64_t changed = sqlite3_changes64(st->db);
	stmt_put(st, S_MARK_READ, s);
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
		return fail(st, HL_EINVAL, "bad body of %zu bytes", len);
	sqlite3_stmt *s = stmt_get(st, S_SET_BODY, &ret);
	if (!s)
		return ret;
	BIND(sqlite3_bind_blob(s, 1, id, HL_MSG_ID_LEN, SQLITE_STATIC));
	if (len == 0)
		BIND(sqlite3_bind_zeroblob(s, 2, 0));
	else
		BIND(sqlite3_bind_blob64(s, 2, body, len, SQLITE_STATIC));
	BIND(sqlite3_bind_int64(s, 3, (int64_t)len));
	ret = rc != SQLITE_OK ? sqlerr(st, rc) : step_done(st, s);
	int64_t changed = sqlite3_changes64(st->db);
	stmt_put(st, S_SET_BODY, s);
	if (ret < 0 || changed > 0)
		return ret;
	int64_t dir, cur;
	uint64_t size;
	if ((ret = msg_lookup(st, id, &dir, &cur, &size)) < 0)
		return ret;
	return fail(st, HL_EINVAL, "body of %zu bytes, the item says %" PRIu64, len, size);
}

int hl_store_set_body_done(hl_store *st, const uint8_t id[static HL_MSG_ID_LEN],
			   uint64_t done)
{
	int ret = 0, rc = SQLITE_OK;
	if (done > I64MAX)
		return fail(st, HL_EINVAL, "body_done %" PRIu64, done);
	sqlite3_stmt *s = stmt_get(st, S_SET_BODY_DONE, &ret);
	if (!s)
		return ret;
	BIND(sqlite3_bind_blob(s, 1, id, HL_MSG_ID_LEN, SQLITE_STATIC));
	BIND(sqlite3_bind_int64(s, 2, (int64_t)done));
	ret = rc != SQLITE_OK ? sqlerr(st, rc) : step_done(st, s);
	int64_t changed = sqlite3_changes64(st->db);
	stmt_put(st, S_SET_BODY_DONE, s);
	if (ret < 0 || changed > 0)
		return ret;
	int64_t dir, cur;
	uint64_t size;
	if ((ret = msg_lookup(st, id, &dir, &cur, &size)) < 0)
		return ret;
	return fail(st, HL_EINVAL, "body_done %" PRIu64 " over body_size %" PRIu64, done, size);
}

int hl_store_set_part_done(hl_store *st, const uint8_t id[static HL_MSG_ID_LEN],
			   unsigned idx, uint64_t done)
{
	int ret = 0, rc = SQLITE_OK;
	if (idx >= HL_MAX_ATTACHMENTS || done > I64MAX)
		return fail(st, HL_EINVAL, "attachment %u, done %" PRIu64, idx, done);
	sqlite3_stmt *s = stmt_get(st, S_SET_PART_DONE, &ret);
	if (!s)
		return ret;
	BIND(sqlite3_bind_blob(s, 1, id, HL_MSG_ID_LEN, SQLITE_STATIC));
	BIND(sqlite3_bind_int(s, 2, (int)idx));
	BIND(sqlite3_bind_int64(s, 3, (int64_t)done));
	ret = rc != SQLITE_OK ? sqlerr(st, rc) : step_done(st, s);
	int64_t changed = sqlite3_changes64(st->db);
	stmt_put(st, S_SET_PART_DONE, s);
	if (ret < 0 || changed > 0)
		return ret;
	/* Nothing changed: no such attachment, or DONE over its size. */
	if (!(s = stmt_get(st, S_ATT_LOOKUP, &ret)))
		return ret;
	BIND(sqlite3_bind_blob(s, 1, id, HL_MSG_ID_LEN, SQLITE_STATIC));
	BIND(sqlite3_bind_int(s, 2, (int)idx));
	uint64_t size = 0;
	if (rc != SQLITE_OK)
		ret = sqlerr(st, rc);
	else if ((ret = step_row(st, s)) == 0)
		ret = fail(st, HL_ENOTFOUND, "no attachment %u of that message", idx);
	else if (ret > 0 && (ret = col_u64(st, s, 0, &size, "attachments.size")) == 0)
		ret = fail(st, HL_EINVAL, "attachment %u: %" PRIu64 " bytes done of %" PRIu64,
			   idx, done, size);
	stmt_put(st, S_ATT_LOOKUP, s);
	return ret;
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
		return sqlerr(st, rc);
	ret = step_row(st, s);
	if (ret > 0) {
		const unsigned char *t = sqlite3_column_text(s, 0);
		ret = fail(st, HL_ESTORE, "store check failed: %s (%s)", what,
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
		return sqlerr(st, rc);
	ret = step_row(st, s);
	if (ret > 0) {
		const unsigned char *t = sqlite3_column_text(s, 0);
		if (!t || strcmp((const char *)t, "ok") != 0)
			ret = fail(st, HL_ESTORE, "store check failed: %s", t ? (const char *)t : "?");
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

/* ---- the delivery engine's queries ---- */

int hl_store_get_message_by_seq(hl_store *st, int64_t peer_id, enum hl_dir dir, uint64_t seq,
				struct hl_msg_row *row)
{
	int ret = 0, rc = SQLITE_OK;
	memset(row, 0, sizeof(*row));
	if (!dir_ok(dir) || seq > I64MAX)
		return fail(st, HL_ENOTFOUND, "no message at seq %" PRIu64, seq);
	sqlite3_stmt *s = stmt_get(st, S_MSG_BY_SEQ, &ret);
	if (!s)
		return ret;
	BIND(sqlite3_bind_int64(s, 1, peer_id));
	BIND(sqlite3_bind_int(s, 2, (int)dir));
	BIND(sqlite3_bind_int64(s, 3, (int64_t)seq));
	if (rc != SQLITE_OK)
		ret = sqlerr(st, rc);
	else if ((ret = step_row(st, s)) == 0)
		ret = fail(st, HL_ENOTFOUND, "no message at seq %" PRIu64, seq);
	else if (ret > 0)
		ret = read_msg(st, s, row);
	stmt_put(st, S_MSG_BY_SEQ, s);
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
		return fail(st, HL_ENOTFOUND, "no item %" PRIu64, seq);
	sqlite3_stmt *s = stmt_get(st, S_OUT_SEND, &ret);
	if (!s)
		return ret;
	BIND(sqlite3_bind_int64(s, 1, peer_id));
	BIND(sqlite3_bind_int64(s, 2, (int64_t)seq));
	if (rc != SQLITE_OK) {
		ret = sqlerr(st, rc);
		goto out;
	}
	if ((ret = step_row(st, s)) == 0)
		ret = fail(st, HL_ENOTFOUND, "no OUT item %" PRIu64 " of peer %" PRId64, seq,
			   peer_id);
	if (ret < 0 || (ret = read_item(st, s, MSG_NCOLS, true, irow)) < 0)
		goto out;
	irow->peer_id = peer_id;
	irow->dir = HL_DIR_OUT;
	irow->seq = seq;
	if (irow->encoded) {
		if (irow->encoded_len > cap) {
			ret = fail(st, HL_ETOOBIG, "item of %zu bytes, buffer of %zu",
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
	stmt_put(st, S_OUT_SEND, s);
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
		return fail(st, HL_EINVAL, "bad seq %" PRIu64, seq);
	sqlite3_stmt *s = stmt_get(st, S_MARK_DELIVERED, &ret);
	if (!s)
		return ret;
	BIND(sqlite3_bind_int64(s, 1, peer_id));
	BIND(sqlite3_bind_int64(s, 2, (int64_t)seq));
	BIND(sqlite3_bind_int64(s, 3, at_ms));
	BIND(sqlite3_bind_blob(s, 4, hash, HL_HASH_LEN, SQLITE_STATIC));
	if (rc != SQLITE_OK) {
		ret = sqlerr(st, rc);
	} else if ((ret = step_row(st, s)) > 0) {
		/* a RETURNING statement completes its write when stepped to the end */
		if ((ret = col_blob(st, s, 0, id, HL_MSG_ID_LEN, "messages.id")) == 0 &&
		    (ret = step_done(st, s)) == 0)
			*moved = true;
	}
	stmt_put(st, S_MARK_DELIVERED, s);
	return ret < 0 ? ret : 0;
}

int hl_store_each_out_after(hl_store *st, int64_t peer_id, uint64_t after, size_t limit,
			    int (*fn)(void *arg, const struct hl_item_row *row), void *arg)
{
	int ret = 0, rc = SQLITE_OK;
	if (after >= I64MAX)
		return 0;
	sqlite3_stmt *s = stmt_get(st, S_OUT_AFTER, &ret);
	if (!s)
		return ret;
	BIND(sqlite3_bind_int64(s, 1, peer_id));
	BIND(sqlite3_bind_int64(s, 2, (int64_t)after));
	BIND(sqlite3_bind_int64(s, 3, limit > I64MAX ? -1 : (int64_t)limit));
	ret = rc != SQLITE_OK ? sqlerr(st, rc) : step_out_items(st, s, peer_id, fn, arg);
	stmt_put(st, S_OUT_AFTER, s);
	return ret;
}

/* Runs statement ID (bound by the caller to ?1 peer, and ?2) and calls FN
 * with each message row. */
static int each_msg_rows(hl_store *st, enum stmt_id id, int64_t peer_id, int64_t p2,
			 int (*fn)(void *arg, const struct hl_msg_row *row), void *arg)
{
	int ret = 0, rc = SQLITE_OK;
	sqlite3_stmt *s = stmt_get(st, id, &ret);
	if (!s)
		return ret;
	BIND(sqlite3_bind_int64(s, 1, peer_id));
	BIND(sqlite3_bind_int64(s, 2, p2));
	if (rc != SQLITE_OK) {
		ret = sqlerr(st, rc);
		goto out;
	}
	while ((ret = step_row(st, s)) > 0) {
		struct hl_msg_row row;
		if ((ret = read_msg(st, s, &row)) < 0)
			break;
		ret = fn(arg, &row);
		hl_msg_row_clear(&row);
		if (ret != 0)
			break;
	}
	if (ret > 0)
		ret = 0;
out:
	stmt_put(st, id, s);
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
		return fail(st, HL_EINVAL, "class_seq %" PRIu64, class_seq);
	sqlite3_stmt *s = stmt_get(st, S_IN_CLASS_STATE, &ret);
	if (!s)
		return ret;
	BIND(sqlite3_bind_int64(s, 1, peer_id));
	BIND(sqlite3_bind_int(s, 2, (int)prec));
	BIND(sqlite3_bind_int64(s, 3, (int64_t)class_seq));
	if (rc != SQLITE_OK) {
		ret = sqlerr(st, rc);
	} else if ((ret = step_row(st, s)) > 0) {
		int64_t v;
		ret = col_int(st, s, 0, 0, HL_MSG_REFUSED_IN, &v, "messages.state");
		if (ret == 0)
			*state = (int)v;
	}
	stmt_put(st, S_IN_CLASS_STATE, s);
	return ret < 0 ? ret : 0;
}

/* ---- the chain rules' lookups ---- */

static int class_near(hl_store *st, enum stmt_id id, int64_t peer_id, unsigned prec,
		      uint64_t class_seq, struct hl_class_pos *out)
{
	int ret = 0, rc = SQLITE_OK;
	memset(out, 0, sizeof(*out));
	sqlite3_stmt *s = stmt_get(st, id, &ret);
	if (!s)
		return ret;
	BIND(sqlite3_bind_int64(s, 1, peer_id));
	BIND(sqlite3_bind_int(s, 2, (int)prec));
	BIND(sqlite3_bind_int64(s, 3, (int64_t)class_seq));
	if (rc != SQLITE_OK)
		ret = sqlerr(st, rc);
	else if ((ret = step_row(st, s)) > 0 &&
		 (ret = col_u64(st, s, 0, &out->seq, "messages.seq")) == 0 &&
		 (ret = col_u64(st, s, 1, &out->class_seq, "messages.class_seq")) == 0)
		out->found = true;
	stmt_put(st, id, s);
	return ret < 0 ? ret : 0;
}

int hl_store_in_class_near(hl_store *st, int64_t peer_id, unsigned prec, uint64_t class_seq,
			   struct hl_class_pos *below, struct hl_class_pos *above)
{
	if (prec >= HL_PREC_COUNT || class_seq > I64MAX)
		return fail(st, HL_EINVAL, "bad class (precedence %u, class_seq %" PRIu64 ")",
			    prec, class_seq);
	int ret = class_near(st, S_CLASS_BELOW, peer_id, prec, class_seq, below);
	return ret < 0 ? ret : class_near(st, S_CLASS_ABOVE, peer_id, prec, class_seq, above);
}

int hl_store_head_item_near(hl_store *st, int64_t peer_id, enum hl_dir dir, uint64_t seq,
			    bool above, struct hl_item_row *row, uint8_t *buf, size_t cap)
{
	int ret = 0, rc = SQLITE_OK;
	enum stmt_id id = above ? S_HEAD_ABOVE : S_HEAD_BELOW;
	memset(row, 0, sizeof(*row));
	if (!dir_ok(dir) || seq > I64MAX)
		return fail(st, HL_EINVAL, "bad position (dir %d, seq %" PRIu64 ")", (int)dir, seq);
	sqlite3_stmt *s = stmt_get(st, id, &ret);
	if (!s)
		return ret;
	BIND(sqlite3_bind_int64(s, 1, peer_id));
	BIND(sqlite3_bind_int(s, 2, (int)dir));
	BIND(sqlite3_bind_int64(s, 3, (int64_t)seq));
	const uint8_t *p = NULL;
	size_t n = 0;
	if (rc != SQLITE_OK)
		ret = sqlerr(st, rc);
	else if ((ret = step_row(st, s)) == 0)
		ret = HL_ENOTFOUND;
	else if (ret > 0 && (ret = col_u64(st, s, 0, &row->seq, "items.seq")) == 0 &&
		 (ret = col_item(st, s, 1, &p, &n, "items.encoded")) == 0) {
		if (n > cap) {
			ret = fail(st, HL_ETOOBIG, "item of %zu bytes", n);
		} else {
			memcpy(buf, p, n);
			row->encoded = buf;
			row->encoded_len = n;
			row->peer_id = peer_id;
			row->dir = dir;
		}
	}
	stmt_put(st, id, s);
	return ret < 0 ? ret : 0;
}

int hl_store_out_entry(hl_store *st, int64_t peer_id, uint64_t seq, enum hl_item_kind *kind,
		       uint8_t hash[static HL_HASH_LEN], int *msg_state)
{
	int ret = 0, rc = SQLITE_OK;
	*msg_state = -1;
	if (seq < 1 || seq > I64MAX)
		return HL_ENOTFOUND;
	sqlite3_stmt *s = stmt_get(st, S_OUT_ENTRY, &ret);
	if (!s)
		return ret;
	BIND(sqlite3_bind_int64(s, 1, peer_id));
	BIND(sqlite3_bind_int64(s, 2, (int64_t)seq));
	int64_t v;
	if (rc != SQLITE_OK)
		ret = sqlerr(st, rc);
	else if ((ret = step_row(st, s)) == 0)
		ret = HL_ENOTFOUND;
	else if (ret > 0 && (ret = col_int(st, s, 0, 0, HL_ITEM_KIND_MAX, &v, "items.kind")) == 0 &&
		 (ret = col_blob(st, s, 1, hash, HL_HASH_LEN, "items.hash")) == 0) {
		*kind = (enum hl_item_kind)v;
		if (sqlite3_column_type(s, 2) != SQLITE_NULL &&
		    (ret = col_int(st, s, 2, 0, HL_MSG_REFUSED_IN, &v, "messages.state")) == 0)
			*msg_state = (int)v;
	}
	stmt_put(st, S_OUT_ENTRY, s);
	return ret < 0 ? ret : 0;
}

int hl_store_count_tombstones(hl_store *st, int64_t peer_id, uint64_t *n)
{
	sqlite3_stmt *s = NULL;
	int ret;
	*n = 0;
	if ((ret = adhoc(st, "SELECT count(*) FROM items WHERE peer_id = ?1 AND dir = 1"
			 " AND kind = 0", &s)) < 0)
		return ret;
	int rc = sqlite3_bind_int64(s, 1, peer_id);
	if (rc != SQLITE_OK)
		ret = sqlerr(st, rc);
	else if ((ret = step_row(st, s)) > 0)
		ret = col_u64(st, s, 0, n, "count");
	sqlite3_finalize(s);
	return ret < 0 ? ret : 0;
}

/* ---- checks and agreements ---- */

/* These queries are rare (a check every few minutes, an agreement now and
 * then), so each is prepared when called rather than cached. */
static int adhoc(hl_store *st, const char *sql, sqlite3_stmt **s)
{
	int rc = sqlite3_prepare_v2(st->db, sql, -1, s, NULL);
	return rc == SQLITE_OK ? 0 : sqlerr(st, rc);
}

/* Runs SQL (a pragma: its rows, if any, are read and dropped). */
static int adhoc_exec(hl_store *st, const char *sql)
{
	int rc = sqlite3_exec(st->db, sql, NULL, NULL, NULL);
	return rc == SQLITE_OK ? 0 : sqlerr(st, rc);
}

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
	if ((ret = col_blob(st, s, 0, row->id, HL_CHECK_ID_LEN, "checks.id")) < 0 ||
	    (ret = col_int(st, s, 1, 1, INT64_MAX, &row->peer_id, "checks.peer_id")) < 0 ||
	    (ret = col_text(st, s, 2, row->peer_name, sizeof(row->peer_name), "peers.name")) < 0 ||
	    (ret = col_int(st, s, 3, 0, 1, &v, "checks.dir")) < 0)
		return ret;
	row->dir = (enum hl_dir)v;
	if ((ret = col_u64(st, s, 4, &row->seq, "checks.seq")) < 0 ||
	    (ret = col_int(st, s, 5, 0, 1, &v, "checks.mode")) < 0)
		return ret;
	row->mode = (unsigned)v;
	if ((ret = col_int(st, s, 6, 0, 1, &v, "checks.link")) < 0)
		return ret;
	row->link = v != 0;
	if ((ret = col_int(st, s, 7, 0, 1, &v, "checks.manual")) < 0)
		return ret;
	row->manual = v != 0;
	if ((ret = col_int(st, s, 8, INT64_MIN, INT64_MAX, &row->created_at, "checks.created_at")) < 0 ||
	    (ret = col_int(st, s, 9, INT64_MIN, INT64_MAX, &row->deadline, "checks.deadline")) < 0 ||
	    (ret = col_int(st, s, 10, 0, INT64_MAX, &row->station_at, "checks.station_at")) < 0 ||
	    (ret = col_int(st, s, 11, 0, INT64_MAX, &row->person_at, "checks.person_at")) < 0 ||
	    (ret = col_int(st, s, 12, 0, INT64_MAX, &row->no_person_at, "checks.no_person_at")) < 0 ||
	    (ret = col_int(st, s, 13, 0, HL_CHECK_NO_PERSON, &v, "checks.result")) < 0)
		return ret;
	row->result = (int)v;
	return 0;
}

int hl_store_insert_check(hl_store *st, const struct hl_check_row *row)
{
	sqlite3_stmt *s = NULL;
	int rc = SQLITE_OK, ret;
	if (!dir_ok(row->dir) || row->seq < 1 || row->seq > I64MAX || row->mode > 1 ||
	    !hl_check_result_name(row->result))
		return fail(st, HL_EINVAL, "bad check row (dir %d, seq %" PRIu64 ", mode %u)",
			    (int)row->dir, row->seq, row->mode);
	if ((ret = adhoc(st, "INSERT INTO checks (id, peer_id, dir, seq, mode, link, manual,"
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
	ret = rc != SQLITE_OK ? sqlerr(st, rc) : step_done(st, s);
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
	if (!dir_ok(dir) || seq > I64MAX)
		return fail(st, HL_ENOTFOUND, "no such check");
	snprintf(sql, sizeof(sql), "SELECT " CHECK_COLS " FROM checks c JOIN peers p"
		 " ON p.id = c.peer_id WHERE c.peer_id = ?1 AND c.dir = ?2 AND %s", where);
	if ((ret = adhoc(st, sql, &s)) < 0)
		return ret;
	BIND(sqlite3_bind_int64(s, 1, peer_id));
	BIND(sqlite3_bind_int(s, 2, (int)dir));
	if (id)
		BIND(sqlite3_bind_blob(s, 3, id, HL_CHECK_ID_LEN, SQLITE_STATIC));
	else
		BIND(sqlite3_bind_int64(s, 3, (int64_t)seq));
	if (rc != SQLITE_OK)
		ret = sqlerr(st, rc);
	else if ((ret = step_row(st, s)) == 0)
		ret = fail(st, HL_ENOTFOUND, "no such check");
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
	if (!hl_check_result_name(row->result) || !dir_ok(row->dir))
		return fail(st, HL_EINVAL, "bad check result %d", row->result);
	if ((ret = adhoc(st, "UPDATE checks SET station_at = ?4, person_at = ?5,"
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
	ret = rc != SQLITE_OK ? sqlerr(st, rc) : step_done(st, s);
	if (ret == 0 && sqlite3_changes64(st->db) == 0)
		ret = fail(st, HL_ENOTFOUND, "no such check");
	sqlite3_finalize(s);
	return ret;
}

int hl_store_each_check(hl_store *st, const struct hl_check_filter *f,
			int (*fn)(void *arg, const struct hl_check_row *row), void *arg)
{
	sqlite3_stmt *s = NULL;
	int rc = SQLITE_OK, ret;
	if (!dir_ok(f->dir))
		return fail(st, HL_EINVAL, "bad direction %d", (int)f->dir);
	if ((ret = adhoc(st, f->newest_first
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
		ret = sqlerr(st, rc);
		goto out;
	}
	while ((ret = step_row(st, s)) > 0) {
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

#define AGREEMENT_COLS \
	"a.id, a.peer_id, p.name, a.dir, a.seq, a.name, a.size, a.doc_hash, a.msg_id," \
	" a.proposed_at, a.signed_at, a.sign_seq"

static int read_agreement(hl_store *st, sqlite3_stmt *s, struct hl_agreement_row *row)
{
	int64_t v;
	int ret;
	memset(row, 0, sizeof(*row));
	if ((ret = col_blob(st, s, 0, row->id, HL_HASH_LEN, "agreements.id")) < 0 ||
	    (ret = col_int(st, s, 1, 1, INT64_MAX, &row->peer_id, "agreements.peer_id")) < 0 ||
	    (ret = col_text(st, s, 2, row->peer_name, sizeof(row->peer_name), "peers.name")) < 0 ||
	    (ret = col_int(st, s, 3, 0, 1, &v, "agreements.dir")) < 0)
		return ret;
	row->dir = (enum hl_dir)v;
	if ((ret = col_u64(st, s, 4, &row->seq, "agreements.seq")) < 0 ||
	    (ret = col_text(st, s, 5, row->name, sizeof(row->name), "agreements.name")) < 0 ||
	    (ret = col_u64(st, s, 6, &row->size, "agreements.size")) < 0 ||
	    (ret = col_blob(st, s, 7, row->doc_hash, HL_HASH_LEN, "agreements.doc_hash")) < 0 ||
	    (ret = col_blob(st, s, 8, row->msg_id, HL_MSG_ID_LEN, "agreements.msg_id")) < 0 ||
	    (ret = col_int(st, s, 9, INT64_MIN, INT64_MAX, &row->proposed_at,
			   "agreements.proposed_at")) < 0 ||
	    (ret = col_int(st, s, 10, 0, INT64_MAX, &row->signed_at, "agreements.signed_at")) < 0 ||
	    (ret = col_u64(st, s, 11, &row->sign_seq, "agreements.sign_seq")) < 0)
		return ret;
	return 0;
}

int hl_store_insert_agreement(hl_store *st, const struct hl_agreement_row *row)
{
	sqlite3_stmt *s = NULL;
	int rc = SQLITE_OK, ret;
	size_t name_len = strnlen(row->name, sizeof(row->name));
	if (!dir_ok(row->dir) || row->seq < 1 || row->seq > I64MAX || name_len == 0 ||
	    name_len == sizeof(row->name) || row->size > I64MAX)
		return fail(st, HL_EINVAL, "bad agreement row (dir %d, seq %" PRIu64 ")",
			    (int)row->dir, row->seq);
	if ((ret = adhoc(st, "INSERT INTO agreements (id, peer_id, dir, seq, name, size,"
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
	ret = rc != SQLITE_OK ? sqlerr(st, rc) : step_done(st, s);
	sqlite3_finalize(s);
	return ret;
}

int hl_store_get_agreement_by_id(hl_store *st, const uint8_t id[static HL_HASH_LEN],
				 struct hl_agreement_row *row)
{
	sqlite3_stmt *s = NULL;
	int ret;
	memset(row, 0, sizeof(*row));
	if ((ret = adhoc(st, "SELECT " AGREEMENT_COLS " FROM agreements a JOIN peers p"
			 " ON p.id = a.peer_id WHERE a.id = ?1", &s)) < 0)
		return ret;
	int rc = sqlite3_bind_blob(s, 1, id, HL_HASH_LEN, SQLITE_STATIC);
	if (rc != SQLITE_OK)
		ret = sqlerr(st, rc);
	else if ((ret = step_row(st, s)) == 0)
		ret = fail(st, HL_ENOTFOUND, "no such agreement");
	else if (ret > 0)
		ret = read_agreement(st, s, row);
	sqlite3_finalize(s);
	return ret < 0 ? ret : 0;
}

int hl_store_get_agreement(hl_store *st, const char *id_prefix_hex,
			   struct hl_agreement_row *row)
{
	uint8_t lo[HL_HASH_LEN], hi[HL_HASH_LEN], id[HL_HASH_LEN];
	sqlite3_stmt *s = NULL;
	int rc = SQLITE_OK, ret;
	size_t len = id_prefix_hex ? strnlen(id_prefix_hex, 2 * HL_HASH_LEN + 1) : 0;
	memset(row, 0, sizeof(*row));
	if (len < 8 || len > 2 * HL_HASH_LEN)
		return fail(st, HL_EINVAL, "an agreement id is 8 to 64 hex digits");
	/* As for message ids: the ids with this prefix lie between the prefix
	 * padded with 0 digits and the prefix padded with f digits. */
	memset(lo, 0x00, sizeof(lo));
	memset(hi, 0xff, sizeof(hi));
	for (size_t i = 0; i < len; i++) {
		int v = hexval(id_prefix_hex[i]);
		if (v < 0)
			return fail(st, HL_EINVAL, "an agreement id is hex digits");
		uint8_t shift = i % 2 ? 0 : 4;
		lo[i / 2] = (uint8_t)((lo[i / 2] & ~(0x0f << shift)) | (v << shift));
		hi[i / 2] = (uint8_t)((hi[i / 2] & ~(0x0f << shift)) | (v << shift));
	}
	if ((ret = adhoc(st, "SELECT id FROM agreements WHERE id BETWEEN ?1 AND ?2 LIMIT 2",
			 &s)) < 0)
		return ret;
	BIND(sqlite3_bind_blob(s, 1, lo, sizeof(lo), SQLITE_STATIC));
	BIND(sqlite3_bind_blob(s, 2, hi, sizeof(hi), SQLITE_STATIC));
	if (rc != SQLITE_OK) {
		ret = sqlerr(st, rc);
		goto out;
	}
	if ((ret = step_row(st, s)) == 0)
		ret = fail(st, HL_ENOTFOUND, "no agreement %s", id_prefix_hex);
	if (ret < 0 || (ret = col_blob(st, s, 0, id, sizeof(id), "agreements.id")) < 0)
		goto out;
	if ((ret = step_row(st, s)) > 0)
		ret = fail(st, HL_EEXIST, "agreement id %s is ambiguous", id_prefix_hex);
out:
	sqlite3_finalize(s);
	if (ret < 0)
		return ret;
	return hl_store_get_agreement_by_id(st, id, row);
}

int hl_store_set_agreement_signed(hl_store *st, const uint8_t id[static HL_HASH_LEN],
				  uint64_t sign_seq, int64_t at_ms)
{
	sqlite3_stmt *s = NULL;
	int rc = SQLITE_OK, ret;
	if (sign_seq < 1 || sign_seq > I64MAX)
		return fail(st, HL_EINVAL, "bad countersign seq %" PRIu64, sign_seq);
	if ((ret = adhoc(st, "UPDATE agreements SET signed_at = ?2, sign_seq = ?3"
			 " WHERE id = ?1 AND sign_seq = 0", &s)) < 0)
		return ret;
	BIND(sqlite3_bind_blob(s, 1, id, HL_HASH_LEN, SQLITE_STATIC));
	BIND(sqlite3_bind_int64(s, 2, at_ms));
	BIND(sqlite3_bind_int64(s, 3, (int64_t)sign_seq));
	ret = rc != SQLITE_OK ? sqlerr(st, rc) : step_done(st, s);
	sqlite3_finalize(s);
	return ret;
}

int hl_store_each_agreement(hl_store *st, int64_t peer_id,
			    int (*fn)(void *arg, const struct hl_agreement_row *row), void *arg)
{
	sqlite3_stmt *s = NULL;
	int ret;
	if ((ret = adhoc(st, "SELECT " AGREEMENT_COLS " FROM agreements a JOIN peers p"
			 " ON p.id = a.peer_id WHERE ?1 = 0 OR a.peer_id = ?1"
			 " ORDER BY a.proposed_at, a.rowid", &s)) < 0)
		return ret;
	int rc = sqlite3_bind_int64(s, 1, peer_id);
	if (rc != SQLITE_OK) {
		ret = sqlerr(st, rc);
		goto out;
	}
	while ((ret = step_row(st, s)) > 0) {
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

int hl_store_insert_equivocation(hl_store *st, const struct hl_equivocation_row *row)
{
	sqlite3_stmt *s = NULL;
	int rc = SQLITE_OK, ret;
	if (row->seq < 1 || row->seq > I64MAX || !row->first_item || !row->second_item ||
	    row->first_len == 0 || row->first_len > HL_ITEM_MAX || row->second_len == 0 ||
	    row->second_len > HL_ITEM_MAX)
		return fail(st, HL_EINVAL, "bad equivocation row (seq %" PRIu64 ")", row->seq);
	if ((ret = adhoc(st, "INSERT INTO equivocations (peer_id, seq, first_hash, first_item,"
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
	ret = rc != SQLITE_OK ? sqlerr(st, rc) : step_done(st, s);
	sqlite3_finalize(s);
	return ret;
}

/* A blob column borrowed from S (1..HL_ITEM_MAX bytes). */
static int col_item(hl_store *st, sqlite3_stmt *s, int col, const uint8_t **p, size_t *len,
		    const char *what)
{
	if (sqlite3_column_type(s, col) != SQLITE_BLOB)
		return corrupt(st, what, "is not a blob");
	const uint8_t *b = sqlite3_column_blob(s, col);
	int n = sqlite3_column_bytes(s, col);
	if (n <= 0 || n > HL_ITEM_MAX)
		return corrupt(st, what, "has a bad length");
	if (!b)
		return sqlerr(st, sqlite3_errcode(st->db));
	*p = b;
	*len = (size_t)n;
	return 0;
}

int hl_store_each_equivocation(hl_store *st, int64_t peer_id,
			       int (*fn)(void *arg, const struct hl_equivocation_row *row),
			       void *arg)
{
	sqlite3_stmt *s = NULL;
	int ret;
	if ((ret = adhoc(st, "SELECT peer_id, seq, first_hash, first_item, second_hash,"
			 " second_item, detected_at FROM equivocations"
			 " WHERE ?1 = 0 OR peer_id = ?1 ORDER BY peer_id, seq, detected_at", &s)) < 0)
		return ret;
	int rc = sqlite3_bind_int64(s, 1, peer_id);
	if (rc != SQLITE_OK) {
		ret = sqlerr(st, rc);
		goto out;
	}
	while ((ret = step_row(st, s)) > 0) {
		struct hl_equivocation_row row = { 0 };
		if ((ret = col_int(st, s, 0, 1, INT64_MAX, &row.peer_id, "equivocations.peer_id")) < 0 ||
		    (ret = col_u64(st, s, 1, &row.seq, "equivocations.seq")) < 0 ||
		    (ret = col_blob(st, s, 2, row.first_hash, HL_HASH_LEN, "equivocations.first_hash")) < 0 ||
		    (ret = col_item(st, s, 3, &row.first_item, &row.first_len, "equivocations.first_item")) < 0 ||
		    (ret = col_blob(st, s, 4, row.second_hash, HL_HASH_LEN, "equivocations.second_hash")) < 0 ||
		    (ret = col_item(st, s, 5, &row.second_item, &row.second_len, "equivocations.second_item")) < 0 ||
		    (ret = col_int(st, s, 6, INT64_MIN, INT64_MAX, &row.detected_at,
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
	sqlite3_stmt *s = NULL;
	int ret;
	*n = 0;
	if ((ret = adhoc(st, "SELECT count(*) FROM equivocations WHERE ?1 = 0 OR peer_id = ?1",
			 &s)) < 0)
		return ret;
	int rc = sqlite3_bind_int64(s, 1, peer_id);
	if (rc != SQLITE_OK)
		ret = sqlerr(st, rc);
	else if ((ret = step_row(st, s)) > 0)
		ret = col_u64(st, s, 0, n, "count");
	sqlite3_finalize(s);
	return ret < 0 ? ret : 0;
}

/* ---- record export ---- */

/* These queries run once per export, so they are prepared per call rather
 * than kept in the statement cache. */

int hl_store_peer_find(hl_store *st, const uint8_t signing_key[static 32], int64_t *peer_id)
{
	return peer_by_key(st, signing_key, peer_id);
}

int hl_store_begin_read(hl_store *st)
{
	if (!sqlite3_get_autocommit(st->db))
		return fail(st, HL_ESTATE, "a transaction is already open");
	int rc = sqlite3_exec(st->db, "BEGIN DEFERRED", NULL, NULL, NULL);
	return rc == SQLITE_OK ? 0 : sqlerr(st, rc);
}

static int chain_row(hl_store *st, sqlite3_stmt *s, struct hl_chain_row *row)
{
	int64_t kind = 0, refused = 0;
	int ret;
	memset(row, 0, sizeof(*row));
	if ((ret = col_u64(st, s, 0, &row->seq, "items.seq")) < 0 ||
	    (ret = col_int(st, s, 1, 0, 255, &kind, "items.kind")) < 0 ||
	    (ret = col_blob(st, s, 2, row->hash, HL_HASH_LEN, "items.hash")) < 0)
		return ret;
	row->kind = (enum hl_item_kind)kind;
	if (kind == 0) {
		if (sqlite3_column_type(s, 3) != SQLITE_NULL)
			return corrupt(st, "items.encoded", "is set for a tombstone");
		if ((ret = col_int(st, s, 4, 1, 255, &refused, "items.refused")) < 0)
			return ret;
		row->refused = (unsigned)refused;
		return 0;
	}
	if (sqlite3_column_type(s, 3) != SQLITE_BLOB)
		return corrupt(st, "items.encoded", "is not a blob");
	row->encoded = sqlite3_column_blob(s, 3);
	int n = sqlite3_column_bytes(s, 3);
	if (n <= 0 || n > HL_ITEM_MAX || !row->encoded)
		return corrupt(st, "items.encoded", "has a bad length");
	row->encoded_len = (size_t)n;
	return 0;
}

int hl_store_each_chain_item(hl_store *st, int64_t peer_id, enum hl_dir dir,
			     int (*fn)(void *arg, const struct hl_chain_row *row), void *arg)
{
	sqlite3_stmt *s = NULL;
	int ret = 0, rc;
	if (!dir_ok(dir))
		return fail(st, HL_EINVAL, "bad direction %d", (int)dir);
	rc = sqlite3_prepare_v2(st->db, "SELECT seq, kind, hash, encoded, refused FROM items"
				" WHERE peer_id = ?1 AND dir = ?2 ORDER BY seq", -1, &s, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int64(s, 1, peer_id);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int(s, 2, (int)dir);
	if (rc != SQLITE_OK) {
		ret = sqlerr(st, rc);
		goto out;
	}
	while ((ret = step_row(st, s)) > 0) {
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
		ret = sqlerr(st, rc);
		goto out;
	}
	while ((ret = step_row(st, s)) > 0) {
		struct hl_link_msg m;
		int64_t dir = 0;
		memset(&m, 0, sizeof(m));
		if ((ret = col_int(st, s, 0, 0, 1, &dir, "messages.dir")) < 0 ||
		    (ret = col_u64(st, s, 1, &m.seq, "messages.seq")) < 0 ||
		    (ret = col_blob(st, s, 2, m.id, HL_MSG_ID_LEN, "messages.id")) < 0)
			break;
		m.dir = (enum hl_dir)dir;
		m.has_body = sqlite3_column_int(s, 3) != 0;
		if ((ret = col_int(st, s, 4, 0, INT64_MAX, &m.purged_at, "messages.purged_at")) < 0)
			break;
		if ((ret = fn(arg, &m)) != 0)
			break;
	}
out:
	sqlite3_finalize(s);
	return ret < 0 ? ret : 0;
}

int hl_store_out_summary(hl_store *st, int64_t peer_id, uint64_t after,
			 struct hl_out_summary *out)
{
	sqlite3_stmt *s = NULL;
	int ret = 0, rc;
	memset(out, 0, sizeof(*out));
	/* The partial index items_unacked holds exactly these rows. */
	rc = sqlite3_prepare_v2(st->db, "SELECT count(*), coalesce(max(seq), 0),"
				" coalesce(sum(seq > ?2), 0),"
				" coalesce(sum(seq > ?2 AND precedence = 3), 0) FROM items"
				" WHERE peer_id = ?1 AND dir = 0 AND acked = 0", -1, &s, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int64(s, 1, peer_id);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int64(s, 2, (int64_t)(after > INT64_MAX ? INT64_MAX : after));
	if (rc != SQLITE_OK) {
		ret = sqlerr(st, rc);
		goto out;
	}
	if ((ret = step_row(st, s)) <= 0) {
		ret = ret < 0 ? ret : HL_ESTORE;
		goto out;
	}
	if ((ret = col_u64(st, s, 0, &out->unacked, "count")) < 0 ||
	    (ret = col_u64(st, s, 1, &out->max_seq, "items.seq")) < 0 ||
	    (ret = col_u64(st, s, 2, &out->after, "count")) < 0 ||
	    (ret = col_u64(st, s, 3, &out->flash_after, "count")) < 0)
		goto out;
	ret = 0;
out:
	sqlite3_finalize(s);
	return ret;
}

int hl_store_open_readonly(const char *dir, hl_store **out)
{
	char *path = hl_path_join(dir, HL_STORE_FILE);
	hl_store *st = xcalloc(1, sizeof(*st));
	int64_t ver = 0;
	int ret = HL_ESTORE;
	*out = NULL;
	/* Read-only: no migration, no journal_mode change, and no checkpoint
	 * when it closes, so it never holds a lock a starting daemon needs. */
	int rc = sqlite3_open_v2(path, &st->db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOFOLLOW |
				 SQLITE_OPEN_NOMUTEX, NULL);
	if (rc == SQLITE_OK) {
		sqlite3_extended_result_codes(st->db, 1);
		sqlite3_busy_timeout(st->db, BUSY_TIMEOUT_MS);
		rc = pragma_int(st->db, "PRAGMA user_version", &ver);
	}
	if (rc == SQLITE_OK && ver == HL_STORE_SCHEMA_VERSION) {
		*out = st;
		st = NULL;
		ret = 0;
	}
	hl_store_close(st);
	free(path);
	return ret;
}

/* ---- retention (schema version 5) ----
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


/* ?1 peer (0: every peer), ?2 the cut-off (ms), ?3 a row limit. */
/* What a purge frees of a message's charge (version 4's accounting, less
 * what stays: the rows): its subject, body, directory and file blocks. */
#define PURGE_BYTES \
	"CAST(min(length(CAST(m.subject AS BLOB)) + m.body_size + (m.n_att > 0) * " BLOCK_COST \
	" + (SELECT total(max(" BLOCK_COST ", (a.size + " BLOCK_COST " - 1) / " BLOCK_COST " * " \
	BLOCK_COST ")) FROM attachments a WHERE a.msg_id = m.id)," \
	" 9223372036854775807.0) AS INTEGER)"
/* Which messages of a direction may be purged ("m": messages). */
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
	ret = adhoc(st, sql, &s);
	free(sql);
	if (ret < 0)
		return ret;
	BIND(sqlite3_bind_int64(s, 1, peer_id));
	BIND(sqlite3_bind_int64(s, 2, before_ms));
	BIND(sqlite3_bind_int64(s, 3, (int64_t)(limit - *n)));
	if (rc != SQLITE_OK) {
		ret = sqlerr(st, rc);
		goto out;
	}
	while (*n < limit && (ret = step_row(st, s)) > 0) {
		struct purge_cand *p = &c[*n];
		int64_t d;
		if ((ret = col_blob(st, s, 0, p->id, HL_MSG_ID_LEN, "messages.id")) < 0 ||
		    (ret = col_int(st, s, 1, 1, INT64_MAX, &p->peer_id, "messages.peer_id")) < 0 ||
		    (ret = col_int(st, s, 2, 0, 1, &d, "messages.dir")) < 0 ||
		    (ret = col_u64(st, s, 3, &p->bytes, "message size")) < 0)
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
	if ((ret = adhoc(st, sql, &s)) < 0)
		return ret;
	BIND(sqlite3_bind_blob(s, 1, id, HL_MSG_ID_LEN, SQLITE_STATIC));
	BIND(sqlite3_bind_int64(s, 2, v));
	ret = rc != SQLITE_OK ? sqlerr(st, rc) : step_done(st, s);
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
		if ((ret = adhoc(st, "UPDATE peers SET freed_bytes = min(freed_bytes + ?2,"
				 " 9223372036854775807) WHERE id = ?1", &s)) < 0)
			return ret;
		BIND(sqlite3_bind_int64(s, 1, c->peer_id));
		BIND(sqlite3_bind_int64(s, 2, (int64_t)c->bytes));
		ret = rc != SQLITE_OK ? sqlerr(st, rc) : step_done(st, s);
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
		int rc = SQLITE_OK, ret = adhoc(st, sql, &s);
		free(sql);
		if (ret < 0)
			return ret;
		BIND(sqlite3_bind_int64(s, 1, peer_id));
		BIND(sqlite3_bind_int64(s, 2, before_ms));
		uint64_t n = 0, b = 0;
		if (rc != SQLITE_OK)
			ret = sqlerr(st, rc);
		else if ((ret = step_row(st, s)) > 0 &&
			 (ret = col_u64(st, s, 0, &n, "count")) == 0)
			ret = col_u64(st, s, 1, &b, "total");
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
	struct op op = { 0 };
	bool begun = false;
	int ret;
	memset(stats, 0, sizeof(*stats));
	if (limit == 0 || limit > HL_PURGE_BATCH_MAX || at_ms <= 0)
		return fail(st, HL_EINVAL, "bad purge (limit %zu)", limit);
	if (!sqlite3_get_autocommit(st->db))
		return fail(st, HL_ESTATE, "a purge is its own transaction");
	c = xcalloc(limit, sizeof(*c));
	/* secure_delete: the freed pages are zeroed, not kept as free pages
	 * that still hold the text (a per-connection setting: set and reset
	 * around the transaction). */
	if ((ret = adhoc_exec(st, "PRAGMA secure_delete = ON")) < 0)
		goto out;
	if ((ret = op_begin(st, &op)) < 0)
		goto out;
	begun = true;
	if ((ret = purge_collect(st, HL_DIR_OUT, peer_id, before_ms, c, limit, &n)) < 0 ||
	    (ret = purge_collect(st, HL_DIR_IN, peer_id, before_ms, c, limit, &n)) < 0)
		goto out;
	for (size_t i = 0; i < n && ret == 0; i++)
		ret = purge_one(st, &c[i], at_ms, stats);
out:
	if (begun)
		ret = op_end(st, &op, ret);
	adhoc_exec(st, "PRAGMA secure_delete = OFF");
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
	if ((ret = adhoc(st, "SELECT path FROM unlink_queue ORDER BY path LIMIT ?1", &s)) < 0)
		return ret;
	int rc = sqlite3_bind_int64(s, 1, limit > I64MAX ? -1 : (int64_t)limit);
	if (rc != SQLITE_OK) {
		ret = sqlerr(st, rc);
		goto out;
	}
	while ((ret = step_row(st, s)) > 0) {
		char *path = NULL;
		if ((ret = col_text_dup(st, s, 0, false, &path, "unlink_queue.path")) < 0)
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

/* Runs SQL (one statement, no result) with ?1 bound to TEXT. */
static int exec_text(hl_store *st, const char *sql, const char *text)
{
	sqlite3_stmt *s = NULL;
	int ret;
	if ((ret = adhoc(st, sql, &s)) < 0)
		return ret;
	int rc = sqlite3_bind_text(s, 1, text, -1, SQLITE_STATIC);
	ret = rc != SQLITE_OK ? sqlerr(st, rc) : step_done(st, s);
	sqlite3_finalize(s);
	return ret;
}

int hl_store_unlink_done(hl_store *st, const char *path)
{
	return exec_text(st, "DELETE FROM unlink_queue WHERE path = ?1", path);
}

int hl_store_checkpoint(hl_store *st)
{
	return adhoc_exec(st, "PRAGMA wal_checkpoint(TRUNCATE)");
}

/* ---- restores ---- */

int hl_store_mark_restored(hl_store *st)
{
	return adhoc_exec(st, "UPDATE peers SET resync = 1");
}

int hl_store_resync_pending(hl_store *st, int64_t peer_id, bool *pending)
{
	sqlite3_stmt *s = NULL;
	int64_t v = 0;
	int ret;
	*pending = false;
	if ((ret = adhoc(st, "SELECT resync FROM peers WHERE id = ?1", &s)) < 0)
		return ret;
	int rc = sqlite3_bind_int64(s, 1, peer_id);
	if (rc != SQLITE_OK)
		ret = sqlerr(st, rc);
	else if ((ret = step_row(st, s)) > 0 &&
		 (ret = col_int(st, s, 0, 0, 1, &v, "peers.resync")) == 0)
		*pending = v != 0;
	sqlite3_finalize(s);
	return ret < 0 ? ret : 0;
}

int hl_store_resync_done(hl_store *st, int64_t peer_id)
{
	sqlite3_stmt *s = NULL;
	int ret;
	if ((ret = adhoc(st, "UPDATE peers SET resync = 0 WHERE id = ?1", &s)) < 0)
		return ret;
	int rc = sqlite3_bind_int64(s, 1, peer_id);
	ret = rc != SQLITE_OK ? sqlerr(st, rc) : step_done(st, s);
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
	if ((ret = adhoc(st, sql, &s)) < 0)
		return ret;
	BIND(sqlite3_bind_int64(s, 1, peer_id));
	BIND(sqlite3_bind_int64(s, 2, (int64_t)seq));
	if (rc != SQLITE_OK)
		ret = sqlerr(st, rc);
	else if (yes)
		ret = step_row(st, s);
	else
		ret = step_done(st, s);
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
	if ((ret = adhoc(st, "UPDATE peers SET claimed_seq = ?2, claimed_hash = ?3"
			 " WHERE id = ?1 AND claimed_seq < ?2", &s)) < 0)
		return ret;
	BIND(sqlite3_bind_int64(s, 1, peer_id));
	BIND(sqlite3_bind_int64(s, 2, (int64_t)seq));
	BIND(sqlite3_bind_blob(s, 3, hash, HL_HASH_LEN, SQLITE_STATIC));
	ret = rc != SQLITE_OK ? sqlerr(st, rc) : step_done(st, s);
	sqlite3_finalize(s);
	return ret;
}

int hl_store_signing_head(hl_store *st, int64_t peer_id, struct hl_chain_head *head)
{
	sqlite3_stmt *s = NULL;
	int ret = hl_store_in_contiguous(st, peer_id, head);
	if (ret < 0)
		return ret;
	if ((ret = adhoc(st, "SELECT claimed_seq, claimed_hash FROM peers WHERE id = ?1"
			 " AND claimed_seq > ?2", &s)) < 0)
		return ret;
	int rc = SQLITE_OK;
	BIND(sqlite3_bind_int64(s, 1, peer_id));
	BIND(sqlite3_bind_int64(s, 2, (int64_t)head->seq));
	uint64_t seq = 0;
	if (rc != SQLITE_OK)
		ret = sqlerr(st, rc);
	else if ((ret = step_row(st, s)) > 0 &&
		 (ret = col_u64(st, s, 0, &seq, "peers.claimed_seq")) == 0 &&
		 (ret = col_blob(st, s, 1, head->hash, HL_HASH_LEN, "peers.claimed_hash")) == 0)
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
	if ((ret = adhoc(st, "SELECT seq FROM items WHERE peer_id = ?1 AND dir = 0 AND acked = 1"
			 " AND seq > ?2 ORDER BY seq", &s)) < 0)
		return ret;
	BIND(sqlite3_bind_int64(s, 1, peer_id));
	BIND(sqlite3_bind_int64(s, 2, (int64_t)base));
	if (rc != SQLITE_OK)
		ret = sqlerr(st, rc);
	lost = xcalloc(max ? max : 1, sizeof(*lost));
	/* Rows in seq order, ranges in increasing order: one merge pass. */
	size_t r = 0;
	while (ret == 0 && nlost < max && (ret = step_row(st, s)) > 0) {
		uint64_t seq = 0;
		if ((ret = col_u64(st, s, 0, &seq, "items.seq")) < 0)
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
	if ((ret = adhoc(st, "UPDATE items SET acked = 0 WHERE peer_id = ?1 AND dir = 0"
			 " AND seq = ?2", &s)) < 0)
		goto out;
	for (size_t i = 0; i < nlost && ret == 0; i++) {
		rc = SQLITE_OK;
		BIND(sqlite3_bind_int64(s, 1, peer_id));
		BIND(sqlite3_bind_int64(s, 2, (int64_t)lost[i]));
		ret = rc != SQLITE_OK ? sqlerr(st, rc) : step_done(st, s);
		sqlite3_reset(s);
	}
	if (ret == 0)
		*count = nlost;
out:
	sqlite3_finalize(s);
	free(lost);
	return ret < 0 ? ret : 0;
}

/* ---- every peer ever known (removed ones too: peers are never deleted) ---- */

int hl_store_each_peer(hl_store *st, int (*fn)(void *arg, const struct hl_peer_row *row),
		       void *arg)
{
	sqlite3_stmt *s = NULL;
	int ret;
	if ((ret = adhoc(st, "SELECT id, name, signing_key, noise_key, created_at FROM peers"
			 " ORDER BY id", &s)) < 0)
		return ret;
	while ((ret = step_row(st, s)) > 0) {
		struct hl_peer_row row;
		memset(&row, 0, sizeof(row));
		if ((ret = col_int(st, s, 0, 1, INT64_MAX, &row.id, "peers.id")) < 0 ||
		    (ret = col_text(st, s, 1, row.name, sizeof(row.name), "peers.name")) < 0 ||
		    (ret = col_blob(st, s, 2, row.signing_key, 32, "peers.signing_key")) < 0 ||
		    (ret = col_blob(st, s, 3, row.noise_key, 32, "peers.noise_key")) < 0 ||
		    (ret = col_int(st, s, 4, INT64_MIN, INT64_MAX, &row.created_at,
				   "peers.created_at")) < 0 ||
		    (ret = fn(arg, &row)) != 0)
			break;
	}
	sqlite3_finalize(s);
	return ret < 0 ? ret : 0;
}

/* ---- backup ---- */

int hl_store_each_att_file(hl_store *st,
			   int (*fn)(void *arg, const struct hl_att_file *f), void *arg)
{
	sqlite3_stmt *s = NULL;
	int ret;
	if ((ret = adhoc(st, "SELECT a.path, a.size, a.done, m.dir, m.state FROM attachments a"
			 " JOIN messages m ON m.id = a.msg_id WHERE m.purged_at = 0"
			 " ORDER BY a.path", &s)) < 0)
		return ret;
	while ((ret = step_row(st, s)) > 0) {
		struct hl_att_file f;
		int64_t dir = 0, state = 0;
		memset(&f, 0, sizeof(f));
		if ((ret = col_text(st, s, 0, f.path, sizeof(f.path), "attachments.path")) < 0 ||
		    (ret = col_u64(st, s, 1, &f.size, "attachments.size")) < 0 ||
		    (ret = col_u64(st, s, 2, &f.done, "attachments.done")) < 0 ||
		    (ret = col_int(st, s, 3, 0, 1, &dir, "messages.dir")) < 0 ||
		    (ret = col_int(st, s, 4, 0, HL_MSG_REFUSED_IN, &state, "messages.state")) < 0)
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
		return fail(st, HL_ESTATE, "a backup cannot run inside a transaction");
	/* VACUUM INTO reads one snapshot (WAL: writers go on meanwhile) and
	 * writes only live pages: what a purge freed is not copied.  PATH
	 * must be absent or empty; it keeps the mode its creator gave it. */
	return exec_text(st, "VACUUM INTO ?1", path);
}
