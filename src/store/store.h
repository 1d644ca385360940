/* store/store.h — the station's SQLite store: the only module that touches
 * SQL.  One file, DIR/store.db, in WAL mode with synchronous=FULL, so a
 * commit that returns is on disk: nothing is acknowledged (to the operator
 * or to a peer) before the commit that makes it durable.
 *
 * What it holds (the schema, its version and migrations: schema.c):
 *   peers        one row per counterpart ever known, keyed by SigningKey
 *   items        both chains of every link: the items we authored (dir OUT)
 *                and those our peers authored (dir IN), as encoded bytes,
 *                with their hashes; OUT items carry an `acked` flag; IN
 *                positions may be tombstones (refused items)
 *   messages     one row per message, either direction: metadata, salt,
 *                subject, body, state
 *   attachments  one row per attachment: name, size, hash, file path,
 *                and `done` (bytes durable at the receiver)
 *
 * Its files, each owning one concern and saying so at its top:
 *   handle.c     the handle: transactions and savepoints, errors, the
 *                statement cache, the column readers
 *   open.c       the file and the connection: opening (read-only too) and
 *                its settings
 *   schema.c     the schema: its tables, their invariants and migrations,
 *                and hl_store_verify, which checks the invariants
 *   peers.c      one row per counterpart ever known; the quota's usage
 *   items.c      both chains of every link: items and tombstones, chain
 *                heads and contiguity, acknowledgements and the send
 *                queue, the chain rules' lookups, equivocation evidence
 *   messages.c   messages and attachments: rows, states, parts, and the
 *                delivery engine's and the chain rules' queries over them
 *   checks.c     line checks and agreements
 *   purge.c      retention: the purge of old messages and the unlink queue
 *   restore.c    backup, and what a restored store does until the peer
 *                has said how much of our chain it holds
 *   keys.c       key rotation: the station's keys as its chains know them,
 *                its card on each link, each chain's rotations
 *   store_int.h  what they share (nothing outside src/store/ includes it)
 *
 * Concurrency: the CLI and the daemon open the store at once; writers use
 * BEGIN IMMEDIATE and a busy timeout.  Every function returns 0 or a
 * negative HL_E* code (HL_ESTORE with the SQLite message kept for
 * hl_store_errmsg()).  Inserting what is already there (the same item
 * position, message id or class_seq) is HL_EEXIST and changes nothing; a
 * row that names a missing peer or item is HL_ENOTFOUND.  A call that
 * fails changes nothing, inside a transaction or not.  A handle belongs to
 * one thread at a time; callbacks may call back into the store. */
#ifndef HL_STORE_STORE_H
#define HL_STORE_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "item/types.h"

/* The store's file in the station directory. */
#define HL_STORE_FILE "store.db"

typedef struct hl_store hl_store;

enum hl_dir { HL_DIR_OUT = 0, HL_DIR_IN = 1 };

/* Message states.  OUT: queued -> sent -> delivered, or refused.
 * IN: partial (parts still arriving) -> complete (visible in the inbox). */
enum hl_msg_state {
	HL_MSG_QUEUED = 0,
	HL_MSG_SENT = 1,
	HL_MSG_DELIVERED = 2,
	HL_MSG_REFUSED = 3,
	HL_MSG_PARTIAL = 10,
	HL_MSG_COMPLETE = 11,
	HL_MSG_REFUSED_IN = 12,  /* IN: refused after it was stored (a part failed its hash) */
};
const char *hl_msg_state_name(enum hl_msg_state s); /* "queued", ... */

int hl_store_open(const char *dir, hl_store **out);
void hl_store_close(hl_store *st);
/* The last SQLite error text, for the one line the edge prints. */
const char *hl_store_errmsg(const hl_store *st);

/* Transactions.  begin() is BEGIN IMMEDIATE (the writer lock at once). */
int hl_store_begin(hl_store *st);
int hl_store_commit(hl_store *st);
void hl_store_rollback(hl_store *st);
/* The transaction hl_store_begin opened has changed rows: its commit will
 * write them and fdatasync the store (synchronous=FULL). */
bool hl_store_txn_wrote(hl_store *st);
/* A savepoint inside the caller's transaction, so that several calls can
 * be undone together without undoing the rest of it: hl_store_release()
 * keeps what was written since, hl_store_rollback_to() undoes it (and
 * ends the savepoint). */
int hl_store_savepoint(hl_store *st);
int hl_store_release(hl_store *st);
void hl_store_rollback_to(hl_store *st);
/* Changes made by other connections since the last call (PRAGMA
 * data_version): the daemon's cheap poll for work the CLI queued. */
bool hl_store_changed(hl_store *st);

/* The peer row for SIGNING_KEY, created if new (NAME and NOISE_KEY are
 * refreshed). */
int hl_store_peer(hl_store *st, const uint8_t signing_key[static 32],
		  const uint8_t noise_key[static 32], const char *name, int64_t *peer_id);

/* ---- chains ---- */

struct hl_chain_head {
	uint64_t seq;                 /* 0 when the chain is empty */
	uint8_t hash[HL_HASH_LEN];    /* zeros when empty */
};
int hl_store_chain_head(hl_store *st, int64_t peer_id, enum hl_dir dir,
			struct hl_chain_head *head);
/* The highest seq S of the IN chain such that 1..S are all present
 * (tombstones count): what an ACK's `base` and a receipt's peer_seq say. */
int hl_store_in_contiguous(hl_store *st, int64_t peer_id, struct hl_chain_head *head);
/* The next class_seq for a message of PREC that we author to PEER. */
int hl_store_next_class_seq(hl_store *st, int64_t peer_id, unsigned prec, uint64_t *out);

struct hl_item_row {
	int64_t peer_id;
	enum hl_dir dir;
	uint64_t seq;
	enum hl_item_kind kind;       /* 0 for a tombstone */
	uint8_t hash[HL_HASH_LEN];
	const uint8_t *encoded;       /* borrowed; valid during a callback only */
	size_t encoded_len;
	unsigned precedence;          /* of the message, FLASH for other kinds */
	bool acked;                   /* OUT only */
	int64_t stored_at;            /* ms, local clock */
};
int hl_store_insert_item(hl_store *st, const struct hl_item_row *row);
/* HL_ENOTFOUND when absent.  The row's encoded bytes are copied into BUF
 * (capacity CAP, HL_ITEM_MAX suffices). */
int hl_store_get_item(hl_store *st, int64_t peer_id, enum hl_dir dir, uint64_t seq,
		      struct hl_item_row *row, uint8_t *buf, size_t cap);
/* IN: a tombstone at SEQ for an item refused with CODE (HASH is the
 * refused item's hash). */
int hl_store_insert_tombstone(hl_store *st, int64_t peer_id, uint64_t seq,
			      const uint8_t hash[static HL_HASH_LEN], unsigned code);
/* OUT: mark [FIRST, LAST] acknowledged by the peer (seqs we never
 * authored are ignored). */
int hl_store_ack_range(hl_store *st, int64_t peer_id, uint64_t first, uint64_t last);
/* OUT items not yet acknowledged, ordered by precedence (most urgent
 * first) then seq; at most LIMIT rows; FN returns nonzero to stop. */
int hl_store_each_unacked(hl_store *st, int64_t peer_id, size_t limit,
			  int (*fn)(void *arg, const struct hl_item_row *row), void *arg);
/* IN items present above BASE, as ranges, for an ACK (at most MAX). */
int hl_store_in_ranges(hl_store *st, int64_t peer_id, uint64_t base,
		       uint64_t (*ranges)[2], size_t max, size_t *n);

/* ---- messages ---- */

struct hl_att_row {
	unsigned idx;
	char name[256];
	uint64_t size;
	uint8_t hash[HL_HASH_LEN];
	char path[512];               /* relative to the station directory */
	uint64_t done;                /* IN: bytes durable; OUT: unused */
};

struct hl_msg_row {
	uint8_t id[HL_MSG_ID_LEN];
	int64_t peer_id;
	char peer_name[64];           /* filled by reads */
	enum hl_dir dir;
	uint64_t seq;                 /* the item's position in its chain */
	unsigned precedence;
	uint64_t class_seq;
	uint8_t salt[HL_SALT_LEN];
	char *subject;                /* NUL-terminated, xmalloc'd on reads */
	uint8_t *body;                /* xmalloc'd on reads; NULL while partial */
	uint64_t body_size;
	int64_t sent_at;              /* ms: the item's time */
	int64_t received_at;          /* ms, IN: when it became visible; 0 if not */
	int64_t delivered_at;         /* ms, OUT: when the receipt came; 0 if not */
	enum hl_msg_state state;
	char *reason;                 /* refusal reason or NULL, xmalloc'd */
	bool unread;                  /* IN */
	unsigned n_att;
	struct hl_att_row *att;       /* xmalloc'd array of n_att */
	uint64_t body_done;           /* IN: bytes of a chunked body (part 0)
	                               * durable so far; body_size once set */
	int64_t purged_at;            /* ms: when retention purged its contents
	                               * (body, subject, attachment files); 0 never.
	                               * A purged message has body NULL and subject "" */
};
/* Frees what a read allocated inside ROW (not ROW itself). */
void hl_msg_row_clear(struct hl_msg_row *row);

/* The message's item (peer_id, dir, seq) must be stored first.  IN
 * messages start unread, OUT ones read (ROW's unread is ignored); att[i]
 * is stored as attachment i (its idx is ignored); body NULL with a
 * body_size means "not received yet". */
int hl_store_insert_message(hl_store *st, const struct hl_msg_row *row);
/* HL_ENOTFOUND when absent.  ID_PREFIX_HEX may be a unique prefix of at
 * least 8 hex digits (HL_EEXIST when it is ambiguous). */
int hl_store_get_message(hl_store *st, const char *id_prefix_hex, struct hl_msg_row *row);
int hl_store_get_message_by_id(hl_store *st, const uint8_t id[static HL_MSG_ID_LEN],
			       struct hl_msg_row *row);
/* Whether a message with this id exists (either direction): a cheap
 * lookup of the id index, for the receiver's check of every message. */
int hl_store_message_exists(hl_store *st, const uint8_t id[static HL_MSG_ID_LEN], bool *exists);

struct hl_msg_filter {
	enum hl_dir dir;
	int64_t peer_id;              /* 0: every peer */
	bool unread_only;
	bool visible_only;            /* IN: complete messages only */
};
/* Messages in order (IN: received_at then seq; OUT: the order they were
 * stored, which is seq order for each peer), FN per row (the row's
 * allocations are freed after FN returns).  FN returns nonzero to stop; a
 * negative value is returned. */
int hl_store_each_message(hl_store *st, const struct hl_msg_filter *f,
			  int (*fn)(void *arg, const struct hl_msg_row *row), void *arg);

/* States only move forward (queued -> sent -> delivered | refused;
 * partial -> complete | refused).  AT_MS becomes delivered_at (DELIVERED)
 * or received_at (COMPLETE) the first time; REASON, when not NULL, is kept.
 * A state the message has already passed (a late "sent" after
 * "delivered") changes nothing and returns 0; a state of the other
 * direction is HL_EINVAL. */
int hl_store_set_state(hl_store *st, const uint8_t id[static HL_MSG_ID_LEN],
		       enum hl_msg_state state, const char *reason, int64_t at_ms);
int hl_store_mark_read(hl_store *st, const uint8_t id[static HL_MSG_ID_LEN]);
/* IN: record a completed body (part 0; LEN must equal body_size) and
 * attachment progress: IDX is the attachment's index (hl_att_row.idx,
 * 0-based; part IDX + 1 on the wire), DONE at most its size. */
int hl_store_set_body(hl_store *st, const uint8_t id[static HL_MSG_ID_LEN],
		      const uint8_t *body, size_t len);
int hl_store_set_part_done(hl_store *st, const uint8_t id[static HL_MSG_ID_LEN],
			   unsigned idx, uint64_t done);

/* ---- for the delivery engine ---- */

/* The message at position SEQ of a chain (HL_ENOTFOUND when that item is
 * not a message or is absent). */
int hl_store_get_message_by_seq(hl_store *st, int64_t peer_id, enum hl_dir dir, uint64_t seq,
				struct hl_msg_row *row);
/* The OUT item at SEQ (as hl_store_get_item) and, when it is a message,
 * its row in MROW (*HAS_MSG set; clear it with hl_msg_row_clear): what the
 * engine sends, in one statement.  HL_ENOTFOUND when there is no item. */
int hl_store_get_out_item(hl_store *st, int64_t peer_id, uint64_t seq,
			  struct hl_item_row *irow, uint8_t *buf, size_t cap,
			  struct hl_msg_row *mrow, bool *has_msg);
/* A receipt covers the OUT item at SEQ whose hash is HASH: when that item
 * is ours (the hash matches) and a message that is queued or sent, it
 * becomes delivered (delivered_at AT_MS), *MOVED is set and ID gets its
 * id; otherwise nothing changes and *MOVED is false.  One statement, where
 * checking the item, reading the row and setting the state took three. */
int hl_store_mark_delivered(hl_store *st, int64_t peer_id, uint64_t seq,
			    const uint8_t hash[static HL_HASH_LEN], int64_t at_ms,
			    uint8_t id[static HL_MSG_ID_LEN], bool *moved);
/* Unacknowledged OUT items with seq > AFTER, in seq order, at most LIMIT. */
int hl_store_each_out_after(hl_store *st, int64_t peer_id, uint64_t after, size_t limit,
			    int (*fn)(void *arg, const struct hl_item_row *row), void *arg);
/* OUT messages in state SENT that have parts to transfer (attachments, or
 * a body too large to travel inline), in seq order; rows without bodies. */
int hl_store_each_out_with_parts(hl_store *st, int64_t peer_id,
				 int (*fn)(void *arg, const struct hl_msg_row *row), void *arg);
/* IN messages in state PARTIAL (parts arriving, or waiting for the message
 * before them), in seq order, with their attachment rows. */
int hl_store_each_in_partial(hl_store *st, int64_t peer_id,
			     int (*fn)(void *arg, const struct hl_msg_row *row), void *arg);
/* IN messages in state REFUSED (their REFUSE is repeated each session). */
int hl_store_each_in_refused(hl_store *st, int64_t peer_id,
			     int (*fn)(void *arg, const struct hl_msg_row *row), void *arg);
/* The state of the IN message of PEER with PREC and CLASS_SEQ in *STATE,
 * or -1 when there is none; class_seq 0 counts as COMPLETE. */
int hl_store_in_class_state(hl_store *st, int64_t peer_id, unsigned prec,
			    uint64_t class_seq, int *state);

/* ---- the chain rules' lookups (chain/accept.h) ---- */

struct hl_class_pos {
	bool found;
	uint64_t seq;
	uint64_t class_seq;
};
/* Of PEER's IN messages of PREC: the one with the highest class_seq below
 * CLASS_SEQ (BELOW) and the one with the lowest at or above it (ABOVE). */
int hl_store_in_class_near(hl_store *st, int64_t peer_id, unsigned prec, uint64_t class_seq,
			   struct hl_class_pos *below, struct hl_class_pos *above);
/* The nearest item of the chain (PEER, DIR) below SEQ (or above it, with
 * ABOVE) that records the other chain's head (a receipt, check or answer):
 * its seq and encoded bytes (copied into BUF of CAP bytes).  HL_ENOTFOUND
 * when there is none. */
int hl_store_head_item_near(hl_store *st, int64_t peer_id, enum hl_dir dir, uint64_t seq,
			    bool above, struct hl_item_row *row, uint8_t *buf, size_t cap);
/* Our (OUT) item at SEQ: its kind and hash, and when it is a message its
 * state (else -1).  HL_ENOTFOUND when we authored nothing there. */
int hl_store_out_entry(hl_store *st, int64_t peer_id, uint64_t seq, enum hl_item_kind *kind,
		       uint8_t hash[static HL_HASH_LEN], int *msg_state);
/* How many of PEER's positions hold a tombstone (a full scan of its IN
 * items: the engine counts it once, then keeps the count). */
int hl_store_count_tombstones(hl_store *st, int64_t peer_id, uint64_t *n);

/* Bytes stored on PEER's behalf, for the quota: every row kept for it
 * costs HL_STORE_ROW_COST bytes plus its variable bytes (its items and
 * tombstones, the receipts and answers we author because of it, its
 * messages' subjects and declared bodies, its checks, agreements and the
 * evidence against it), and every file at least HL_STORE_BLOCK_COST
 * (attachments by their declared sizes rounded up to it, so space a
 * partial message will need counts from the start; a message with
 * attachments one more, for its directory). */
#define HL_STORE_ROW_COST 256
#define HL_STORE_BLOCK_COST 4096
int hl_store_peer_usage(hl_store *st, int64_t peer_id, uint64_t *bytes);

/* ---- additions made while implementing the store ---- */

/* The schema version this code writes.  hl_store_open() migrates an older
 * store to it, one step per transaction, and refuses a newer one
 * (HL_EUNSUPP). */
#define HL_STORE_SCHEMA_VERSION 6

/* Why the last hl_store_open() in this thread failed: one line naming the
 * file and the cause (for example a schema newer than this hotline). */
const char *hl_store_open_errmsg(void);

/* hl_store_open(), migrating only up to VERSION (1..HL_STORE_SCHEMA_VERSION):
 * for migration tests.  Below the current version only the queries the
 * older schema can answer work. */
int hl_store_open_version(const char *dir, int version, hl_store **out);

/* IN: bytes of a body sent in CHUNKs (part 0) durable so far, for RESUME
 * (attachments use hl_store_set_part_done). */
int hl_store_set_body_done(hl_store *st, const uint8_t id[static HL_MSG_ID_LEN],
			   uint64_t done);

/* Checks the store's invariants: SQLite's quick_check, foreign keys, and the
 * per-peer derived values (IN contiguity, quota usage) against a recount.
 * 0, or HL_ESTORE with the first violation in hl_store_errmsg().  Reads
 * every row: for tests, crash checks and diagnostics, not the hot path. */
int hl_store_verify(hl_store *st);


/* ---- checks and agreements ---- */

/* Line checks (docs/items.md 2.3-2.4), both ours (OUT: we checked the
 * peer) and the peer's (IN: the peer checked us), keyed by (peer, dir, id).
 * A row names its CHECK item (peer_id, dir, seq), stored first. */
enum hl_check_result {
	HL_CHECK_PENDING = 0,      /* waiting for an answer (OUT) or a person (IN) */
	HL_CHECK_OK = 1,           /* answered (by a person, in operator mode) */
	HL_CHECK_NO_CONNECTION = 2, /* OUT: no session with the peer at the deadline */
	HL_CHECK_NO_ANSWER = 3,    /* OUT: the link was up, nobody answered */
	HL_CHECK_NO_PERSON = 4,    /* the station answered, no person did */
};
/* "pending", "ok", "no_connection", "no_answer", "no_person". */
const char *hl_check_result_name(int result);

struct hl_check_row {
	uint8_t id[HL_CHECK_ID_LEN];
	int64_t peer_id;
	char peer_name[64];           /* filled by reads */
	enum hl_dir dir;
	uint64_t seq;                 /* the CHECK item's position */
	unsigned mode;                /* enum hl_check_mode */
	bool link;                    /* a session was up when it was made */
	bool manual;                  /* OUT: `hotline check`, not the schedule */
	int64_t created_at;           /* ms: authored (OUT) or received (IN) */
	int64_t deadline;             /* ms: when it is decided */
	int64_t station_at;           /* ms: the station's answer came (OUT) or went (IN); 0 none */
	int64_t person_at;            /* ms: a person's answer; 0 none */
	int64_t no_person_at;         /* ms: the no-person answer; 0 none */
	int result;                   /* enum hl_check_result */
};
int hl_store_insert_check(hl_store *st, const struct hl_check_row *row);
/* HL_ENOTFOUND when absent. */
int hl_store_get_check(hl_store *st, int64_t peer_id, enum hl_dir dir,
		       const uint8_t id[static HL_CHECK_ID_LEN], struct hl_check_row *row);
/* The check whose CHECK item is at SEQ of that chain. */
int hl_store_get_check_by_seq(hl_store *st, int64_t peer_id, enum hl_dir dir, uint64_t seq,
			      struct hl_check_row *row);
/* Writes ROW's station_at, person_at, no_person_at and result. */
int hl_store_update_check(hl_store *st, const struct hl_check_row *row);

struct hl_check_filter {
	int64_t peer_id;              /* 0: every peer */
	enum hl_dir dir;
	bool open_only;               /* result PENDING only */
	bool newest_first;            /* else oldest first (by created_at) */
	size_t limit;                 /* 0: no limit */
};
int hl_store_each_check(hl_store *st, const struct hl_check_filter *f,
			int (*fn)(void *arg, const struct hl_check_row *row), void *arg);

/* Agreements (docs/items.md 2.5-2.6).  id is the AGREEMENT item's hash;
 * dir OUT: we proposed it.  signed_at is when the countersign was made
 * (we signed) or arrived (they signed); 0 while only proposed. */
struct hl_agreement_row {
	uint8_t id[HL_HASH_LEN];
	int64_t peer_id;
	char peer_name[64];           /* filled by reads */
	enum hl_dir dir;
	uint64_t seq;                 /* the AGREEMENT item's position */
	char name[256];
	uint64_t size;
	uint8_t doc_hash[HL_HASH_LEN];
	uint8_t msg_id[HL_MSG_ID_LEN];
	int64_t proposed_at;
	int64_t signed_at;
	uint64_t sign_seq;            /* the COUNTERSIGN item's position; 0 none */
};
int hl_store_insert_agreement(hl_store *st, const struct hl_agreement_row *row);
/* By a unique prefix of at least 8 hex digits (HL_EEXIST when ambiguous). */
int hl_store_get_agreement(hl_store *st, const char *id_prefix_hex,
			   struct hl_agreement_row *row);
int hl_store_get_agreement_by_id(hl_store *st, const uint8_t id[static HL_HASH_LEN],
				 struct hl_agreement_row *row);
/* Records the countersign at SIGN_SEQ (of the signer's chain) at AT_MS;
 * a second countersign changes nothing. */
int hl_store_set_agreement_signed(hl_store *st, const uint8_t id[static HL_HASH_LEN],
				  uint64_t sign_seq, int64_t at_ms);
/* Every agreement (of PEER_ID, or all when 0), oldest first. */
int hl_store_each_agreement(hl_store *st, int64_t peer_id,
			    int (*fn)(void *arg, const struct hl_agreement_row *row), void *arg);

/* Equivocation evidence: the peer signed two different items at SEQ of its
 * chain on this link.  FIRST is the one in the items table, SECOND the one
 * that came later; both verified under the peer's SigningKey.  Both
 * encodings are kept here whole, so the pair is a self-contained proof. */
struct hl_equivocation_row {
	int64_t peer_id;
	uint64_t seq;
	uint8_t first_hash[HL_HASH_LEN];
	const uint8_t *first_item;    /* borrowed: valid during a callback only */
	size_t first_len;
	uint8_t second_hash[HL_HASH_LEN];
	const uint8_t *second_item;
	size_t second_len;
	int64_t detected_at;          /* ms, local clock */
};
/* HL_EEXIST when this pair is already known. */
int hl_store_insert_equivocation(hl_store *st, const struct hl_equivocation_row *row);
/* For the record exporter: every piece of equivocation evidence against
 * PEER_ID (every peer when 0), by seq.  FN returns nonzero to stop. */
int hl_store_each_equivocation(hl_store *st, int64_t peer_id,
			       int (*fn)(void *arg, const struct hl_equivocation_row *row),
			       void *arg);
int hl_store_count_equivocations(hl_store *st, int64_t peer_id, uint64_t *n);

/* ---- record export ---- */

/* The peer row for SIGNING_KEY, without creating one: HL_ENOTFOUND when
 * this store has never known that peer. */
int hl_store_peer_find(hl_store *st, const uint8_t signing_key[static 32], int64_t *peer_id);

/* A read transaction (BEGIN DEFERRED): every read until hl_store_commit()
 * or hl_store_rollback() sees one snapshot, while writers carry on (WAL).
 * `record export` reads both chains and the messages in one. */
int hl_store_begin_read(hl_store *st);

struct hl_chain_row {
	uint64_t seq;
	enum hl_item_kind kind;       /* 0 for a tombstone */
	uint8_t hash[HL_HASH_LEN];
	const uint8_t *encoded;       /* NULL for a tombstone; valid during the callback */
	size_t encoded_len;
	unsigned refused;             /* a tombstone's REFUSE code, else 0 */
};
/* Every item (and tombstone) of one chain with PEER, in seq order.  FN
 * returns nonzero to stop; a negative value is returned. */
int hl_store_each_chain_item(hl_store *st, int64_t peer_id, enum hl_dir dir,
			     int (*fn)(void *arg, const struct hl_chain_row *row), void *arg);

struct hl_link_msg {
	enum hl_dir dir;
	uint64_t seq;
	uint8_t id[HL_MSG_ID_LEN];
	bool has_body;                /* the body is stored (IN: it has arrived) */
	int64_t purged_at;            /* ms: retention purged its contents; 0 never */
};
/* Every message with PEER, both directions: OUT first, each in seq order. */
int hl_store_each_link_message(hl_store *st, int64_t peer_id,
			       int (*fn)(void *arg, const struct hl_link_msg *m), void *arg);

/* ---- the email fallback (daemon/failover.c) ---- */

struct hl_out_summary {
	uint64_t unacked;             /* OUT items the peer has not acknowledged */
	uint64_t max_seq;             /* the highest of them; 0 when none */
	uint64_t after;               /* of them, those with seq > AFTER */
	uint64_t flash_after;         /* of those, FLASH (messages, receipts, checks...) */
};
/* Opens DIR's store read-only for a look (status without a daemon):
 * HL_ESTORE when it is absent, busy or of another schema version. */
int hl_store_open_readonly(const char *dir, hl_store **out);
/* One indexed query over PEER's send queue. */
int hl_store_out_summary(hl_store *st, int64_t peer_id, uint64_t after,
			 struct hl_out_summary *out);

/* ---- retention (msg/retain.h drives it) ---- */

#define HL_PURGE_BATCH_MAX 1000

struct hl_purge_stats {
	uint64_t messages;            /* messages whose contents were purged */
	uint64_t bytes;               /* their body and attachment bytes */
	uint64_t files;               /* attachment files queued for removal */
};
/* In one transaction of its own, purges at most LIMIT (1..HL_PURGE_BATCH_MAX)
 * messages of PEER_ID (every peer when 0) that are done (OUT delivered or
 * refused, IN complete or refused) and older than BEFORE_MS at this station
 * (OUT: when the receipt came; IN: when it became visible): body NULL,
 * subject "", purged_at AT_MS; their attachment files go into the unlink
 * queue; an IN message's bytes are freed from the peer's quota.  Rows and
 * signed items stay.  Fewer than LIMIT purged means none are left. */
int hl_store_purge(hl_store *st, int64_t peer_id, int64_t before_ms, int64_t at_ms,
		   size_t limit, struct hl_purge_stats *stats);
/* What hl_store_purge would purge, all of it (STATS->files stays 0). */
int hl_store_purge_count(hl_store *st, int64_t peer_id, int64_t before_ms,
			 struct hl_purge_stats *stats);
/* Marks message ID purged at AT_MS (its body and subject dropped), with no
 * file to remove: a message of ours that a restore got back from the peer
 * as its signed item alone. */
int hl_store_set_purged(hl_store *st, const uint8_t id[static HL_MSG_ID_LEN], int64_t at_ms);
/* Files of purged messages still to remove (paths relative to the station
 * directory, xmalloc'd array of xmalloc'd strings), at most LIMIT. */
int hl_store_unlink_pending(hl_store *st, size_t limit, char ***paths, size_t *n);
/* PATH is gone: take it off the queue. */
int hl_store_unlink_done(hl_store *st, const char *path);
/* Best effort: moves the WAL into the database file and truncates it (after
 * a purge, so purged text leaves the -wal file too). */
int hl_store_checkpoint(hl_store *st);

/* Restores (docs/messages.md section 7).  mark_restored: every peer of
 * a store just copied by `backup` is to be resynchronised; until then the
 * store refuses every new (unacknowledged) OUT item on that link. */
int hl_store_mark_restored(hl_store *st);
int hl_store_resync_pending(hl_store *st, int64_t peer_id, bool *pending);
int hl_store_resync_done(hl_store *st, int64_t peer_id);
/* 0 when a new item of ours may be signed for PEER_ID; HL_ESTATE, with
 * the same message as the insert the store would refuse, while a resync
 * is pending: asked before signing, so that the key holder never signs
 * a position the store will not take (chain/ours.c). */
int hl_store_may_sign(hl_store *st, int64_t peer_id);
/* Receipts of ours recovered after a restore acknowledge these positions
 * of the peer's chain: the station never acknowledges them again (the
 * peer refuses a second receipt for a message).  ack_has: whether SEQ is
 * one; acks_any: whether the peer has any. */
int hl_store_recovered_ack_add(hl_store *st, int64_t peer_id, uint64_t seq);
int hl_store_recovered_ack_has(hl_store *st, int64_t peer_id, uint64_t seq, bool *yes);
int hl_store_recovered_acks_any(hl_store *st, int64_t peer_id, bool *yes);
/* An item of ours recovered after a restore states that we held the
 * peer's chain up to SEQ (hash HASH): remembered, the highest only. */
int hl_store_claim_hold(hl_store *st, int64_t peer_id, uint64_t seq,
			const uint8_t hash[static HL_HASH_LEN]);
/* The peer's chain head that a new item of ours states (receipts, checks,
 * answers: their peer_seq and peer_hash): what we hold contiguously
 * (hl_store_in_contiguous), or, after a restore and until we hold that
 * much again, the hold our recovered items stated, so it never goes back
 * along our chain. */
int hl_store_signing_head(hl_store *st, int64_t peer_id, struct hl_chain_head *head);
/* The peer's ACK (BASE and its RANGES, in increasing order) leaves out
 * items of ours the store has as acknowledged: the peer lost them (it was
 * restored from a backup).  Marks at most MAX of them unacknowledged, so
 * they are sent again; *COUNT says how many. */
int hl_store_unack_lost(hl_store *st, int64_t peer_id, uint64_t base,
			const uint64_t (*ranges)[2], size_t n, size_t max, uint64_t *count);

/* Every peer this store ever knew, pinned or since removed (peers rows are
 * never deleted), by id.  FN returns nonzero to stop. */
struct hl_peer_row {
	int64_t id;
	char name[64];
	uint8_t signing_key[32];
	uint8_t noise_key[32];
	bool has_next;                /* its card's NextKeyHash, when known */
	uint8_t next_hash[32];
	int64_t created_at;           /* ms: first pinned or seen */
};
int hl_store_each_peer(hl_store *st, int (*fn)(void *arg, const struct hl_peer_row *row),
		       void *arg);

/* A consistent copy of the whole store (one snapshot; writers go on) into
 * PATH, which must not exist or be empty; the caller fsyncs it. */
int hl_store_backup(hl_store *st, const char *path);
/* Every attachment file the store's messages need (purged ones excluded),
 * by path: for `backup`, which copies exactly what its copy of the store
 * names.  DONE: an IN part's durable bytes (its file is PATH.part until
 * the part is whole). */
struct hl_att_file {
	char path[512];
	uint64_t size, done;
	enum hl_dir dir;
	enum hl_msg_state state;
};
int hl_store_each_att_file(hl_store *st,
			   int (*fn)(void *arg, const struct hl_att_file *f), void *arg);

/* ---- key rotation (keys.c, docs/rotation.md) ---- */

/* A station's public keys: its NoiseKey, SigningKey and next-key hash. */
struct hl_own_keys {
	uint8_t noise[32];
	uint8_t sign[32];
	bool has_next;
	uint8_t next_hash[32];
};

/* The station's keys as its chains know them: HL_ENOTFOUND before its
 * first rotation (its keys are then its signer's). */
int hl_store_own_keys(hl_store *st, struct hl_own_keys *out);
/* A rotation, in the transaction that appends its items: every peer row
 * that has no card of ours yet gets BEFORE (the keys it pinned), then the
 * station's keys are NOW. */
int hl_store_set_own_keys(hl_store *st, const struct hl_own_keys *before,
			  const struct hl_own_keys *now);
/* Our card on PEER_ID's link, as that peer pinned it: HL_ENOTFOUND when
 * the station has not rotated since the row was made (the signer's keys
 * then). */
int hl_store_own_card(hl_store *st, int64_t peer_id, struct hl_own_keys *out);
/* The `author` of an item we make on PEER_ID's link (our SigningKey as the
 * peer pinned it) when KEY is to sign it; PREV: the key the signer's
 * identity rotated away from (NULL: it never rotated).  HL_EKEYS when the
 * store's chains are at another key than KEY: a process that read
 * identity.key before a rotation, or a rotation the chains have not been
 * told of (before the store's first: PREV set, KEY not it — only the
 * rotation items that complete it are signed by PREV; docs/rotation.md). */
int hl_store_author_keys(hl_store *st, int64_t peer_id, const uint8_t key[static 32],
			 const uint8_t *prev, uint8_t author[static 32]);
/* The last rotation item of PEER_ID's chain DIR at a position below SEQ
 * (ROW->encoded in BUF, CAP bytes): HL_ENOTFOUND when none. */
int hl_store_rotation_before(hl_store *st, int64_t peer_id, enum hl_dir dir, uint64_t seq,
			     struct hl_item_row *row, uint8_t *buf, size_t cap);
/* How many rotation items PEER_ID's chain DIR holds. */
int hl_store_rotation_count(hl_store *st, int64_t peer_id, enum hl_dir dir, uint64_t *n);
/* The peer card's NextKeyHash (NULL: none), kept for the record of a peer
 * removed later. */
int hl_store_set_peer_next(hl_store *st, int64_t peer_id, const uint8_t *next_hash);

#endif
