/* deliver/engine_int.h — what the files of the delivery engine share, and
 * nothing outside src/deliver/ includes: the engine's state (struct
 * hl_engine, the queues of what it sends and the messages it receives),
 * the limits more than one file needs, and the functions one file calls in
 * another, grouped by the file that defines them.  Their names start with
 * eng_.  engine_core.c's opening comment says which file owns what;
 * engine.h is the engine's API. */
#ifndef HL_DELIVER_ENGINE_INT_H
#define HL_DELIVER_ENGINE_INT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "chain/accept.h"
#include "deliver/engine.h"
#include "deliver/flow.h"
#include "deliver/partwriter.h"
#include "deliver/stage.h"
#include "msg/item.h"
#include "util/dio.h"
#include "util/log.h"
#include "wire/msgproto.h"
#include "wire/packet.h"

#define OUT_WINDOW 4096
#define CHUNK_DATA_MAX (HL_PACKET_BODY_MAX - HL_CHUNK_HDR_LEN)
/* CREDIT (docs/messages.md): CHUNK data in flight per session, sent but
 * not yet taken in by the receiver's loop.  The sender's window is sized
 * in time (deliver/flow.h): 5/4 of the path's bandwidth-delay product
 * (twice, while the rate still grows), so that on a loopback it bounds
 * what sits in the receiver's socket (what a FLASH packet queues behind)
 * and on a long fat path it keeps the pipe full.  Behind the loop, a large part's worker
 * hashes and writes: its ring may hold RING_SPARE bytes more, credited as
 * soon as the loop has taken them, so the worker has work while the loop
 * waits for a commit's fsync.  What a ring holds beyond RING_SPARE is
 * credited only as the worker takes it.  The receiver credits each time
 * CREDIT_STEP is due within a read burst and, at the end of each burst
 * (the pump after its commit), all it has taken: a sender whose window is
 * smaller than the step (a slow link) is never left waiting. */
#define CREDIT_WINDOW HL_CREDIT_WINDOW
#define CREDIT_STEP (CREDIT_WINDOW / 4)
#define RING_SPARE ((uint64_t)HL_PARTWRITER_SLOTS * CHUNK_DATA_MAX - CREDIT_WINDOW)
_Static_assert(CREDIT_WINDOW == 8u * CHUNK_DATA_MAX, "as engine.h says");
_Static_assert(CREDIT_WINDOW < HL_PARTWRITER_SLOTS * CHUNK_DATA_MAX,
	       "a part's worker ring holds the window and more");
#define NPARTS_MAX (HL_MAX_ATTACHMENTS + 1)
/* Free space and the peer's usage are asked of the kernel and the store
 * at most this often (refuse.c eng_free_bytes, staging.c eng_on_stage). */
#define FREE_CACHE_MS 100

/* ---- state ---- */

struct out_part {
	uint64_t size;
	uint64_t offset;        /* next byte to send */
	char *path;             /* attachments: relative to the station dir */
	struct hl_dio_reader r; /* open while the part is being sent */
};

struct out_entry {
	uint64_t seq;
	enum hl_item_kind kind;
	unsigned prec;
	bool acked;             /* the peer holds the item durably */
	bool item_sent;         /* sent in this session (or needs no sending) */
	bool parts_known;
	uint64_t retry_at;      /* refused for now (quota): not before this time */
	unsigned nparts, cur;   /* parts[cur..] still to send */
	struct out_part *parts; /* index = part number; NULL when none */
	uint8_t *body;          /* part 0 when the body is not inline */
	/* Parts staged in this session (bit p: part p): their CHUNKs wait
	 * for the peer's STAGED, until stage_wait_until at most. */
	uint64_t stage_wait, stage_wait_until;
	struct out_entry *next;
};

struct out_queue {
	struct out_entry *head, *tail;
	struct out_entry *cursor;   /* first entry not done; NULL: none */
	size_t n;
};

struct in_part {
	bool present, complete;
	uint64_t size, done, durable;
	uint8_t hash[HL_HASH_LEN];  /* attachments: the signed hash */
	char *path;                 /* attachments: final path, relative */
	bool hashed;                /* hs covers the first `done` bytes */
	struct hl_dio_writer w;     /* the .part file, open while arriving */
	hl_partwriter *pw;          /* when set, it owns w and hs */
	hl_parthash hs;             /* the body's salted hash, an attachment's SHA-256 */
};

struct in_msg {
	uint64_t seq;
	uint8_t id[HL_MSG_ID_LEN];
	uint8_t item_hash[HL_HASH_LEN];
	unsigned prec;
	uint64_t class_seq;
	uint8_t salt[HL_SALT_LEN];
	uint8_t body_hash[HL_HASH_LEN];
	uint64_t body_size;
	uint8_t *body;               /* part 0 being received */
	struct in_part parts[NPARTS_MAX];
	bool ready;                  /* every part complete */
	struct in_msg *next;
};

struct seq_hash {
	uint64_t seq;
	uint8_t hash[HL_HASH_LEN];
};

struct refusal {
	uint64_t seq;
	uint8_t hash[HL_HASH_LEN];
	uint8_t code;
	char text[HL_REFUSE_TEXT_MAX + 1];
};

typedef struct hl_engine_evinfo event_t;

/* A packet held until hl_engine_drain() (env.defer_items). */
struct held {
	uint8_t type;
	bool checked;                /* verdict set */
	int8_t verdict;              /* ITEM: 1 signature good, 0 bad, -1 not known */
	size_t off, len;             /* in hbuf */
};

struct resume_map {
	struct hl_resume_entry *e;
	size_t n;
};

struct hl_engine {
	struct hl_engine_env env;
	int64_t peer_id;
	uint8_t peer_sign[32];
	uint8_t peer_noise[32];
	char peer_name[HL_NAME_MAX + 1];

	hl_session *session;
	bool synced;                 /* the peer's RESUME of this session arrived */
	struct resume_map resume;

	/* CREDIT, per session (both sides announced it in their HELLOs) */
	bool credit_on;
	uint64_t chunk_sent;         /* CHUNK data bytes sent */
	uint64_t chunk_credit;       /* the peer's last CREDIT */
	uint64_t taken;              /* CHUNK data bytes read and handled */
	uint64_t pushed_pw;          /* ... of which handed to parts' workers */
	_Atomic uint64_t done_pw;    /* ... of which the workers are done with */
	uint64_t credit_sent;        /* the last CREDIT we sent */
	size_t pushed_now;           /* the CHUNK in hand went to a worker */
	struct hl_flow *flow;        /* the window sized in time; made at the first data sent */

	struct out_queue q[HL_PREC_COUNT];
	size_t nloaded;
	uint64_t loaded_upto;        /* highest unacked seq loaded */
	uint64_t acked_base;         /* every seq up to here is acked in the store */

	struct in_msg *in;           /* incoming messages in progress */
	size_t nin;
	bool in_loaded;

	struct seq_hash *rcpt;       /* became visible in this transaction */
	size_t nrcpt, caprcpt;
	struct refusal *refusals;    /* to send after the commit */
	size_t nref, capref;
	bool need_ack;               /* stored something: ACK after the commit */
	bool ack_owed;               /* an ACK the session could not take yet */
	event_t *events;             /* for the operator, after the commit */
	size_t nev, capev;

	struct held *held;           /* env.defer_items: packets of this burst */
	size_t nheld, capheld;
	uint8_t *hbuf;
	size_t hlen, hcap;
	int cur_verdict;             /* the ITEM being handled: its held verdict */

	uint64_t free_cache;         /* eng_free_bytes() */
	uint64_t reserve_cache;      /* eng_reserve_bytes() */
	int64_t free_at;

	/* The chain rules on arrival (chain/accept.h).  What the current
	 * transaction knows of the peer's chain, loaded at the first item and
	 * forgotten at its end (another process may write between two). */
	bool cache_ok;
	uint64_t in_top;             /* the highest position held */
	uint64_t contig;             /* the contiguous head as last read (only grows) */
	struct hl_chain_class_ref class_top[HL_PREC_COUNT]; /* highest class_seq held */
	bool class_known[HL_PREC_COUNT];
	struct hl_item *scratch;     /* a neighbour item, decoded (shared) */
	uint64_t tombs;              /* tombstones held (tombs_known) */
	bool tombs_known;
	struct hl_ratelimit refuse_log; /* warnings about refused items */
	char refusing[160];          /* why the peer's items are refused for now; "" none */
	/* Restores (restore.c), per session where it says so. */
	bool resync;                 /* the store's peers.resync: our chain may be behind */
	bool first_ack;              /* this session's first ACK is still to come */
	bool restart;                /* resynchronised: end this session */
	uint64_t resync_hold;        /* how far the peer holds our chain */
	uint64_t resync_from;        /* the first of ours it gives back */
	size_t reclaims;             /* RECLAIMs answered in this session */
	uint64_t reclaim_pending;    /* a RECLAIM to send (pump), 0 none */
	uint64_t return_pending;     /* a RETURN to send (pump), 0 none */
	bool recovered_acks;         /* receipts of ours came back: filter new receipts */
	uint64_t now;                /* the packet in hand's time, for what it sends */

	hl_stage *stage;             /* staging (deliver/stage.h) */
	bool stage_on;               /* the peer's HELLO says it handles STAGE */
	uint64_t stage_usage;        /* the peer's usage, asked every FREE_CACHE_MS */
	int64_t stage_usage_at;
	uint8_t *rec;                /* packet buffer, HL_PACKET_BODY_MAX */
	uint8_t *itembuf;            /* HL_ITEM_MAX */
	/* Keys (keys.c, docs/rotation.md): the peer's card as pinned, and
	 * its chain's keys now (its last accepted rotation's), reloaded with
	 * the chain cache (keys_ok) but kept between transactions for the
	 * verifier; ours on this link as the peer pinned them. */
	bool keys_ok;
	struct hl_chain_keys peer_card, peer_keys, me_card;
	uint64_t peer_rot_seq;       /* the peer's last rotation; 0 none */
	uint64_t peer_rotations;
	uint8_t verify_key[32];      /* the key the held ITEMs were checked with */
	char error[256];
	struct hl_engine_stats stats;
};

/* The eng_ functions, by the file that defines them, from the bottom up:
 * each file calls only those of the files listed before it (and its own),
 * except engine_core.c, above them all. */

/* ---- base.c: the transaction, errors, events, what is owed, the invariants ---- */

int eng_cache_load(hl_engine *e);
void eng_cache_forget(hl_engine *e);
void eng_cache_note(hl_engine *e, uint64_t seq);
void eng_class_note(hl_engine *e, unsigned prec, uint64_t seq, uint64_t class_seq);
void eng_set_error(hl_engine *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
event_t *eng_add_event_info(hl_engine *e, enum hl_engine_event ev, const uint8_t *id,
			    size_t idlen);
void eng_add_event(hl_engine *e, enum hl_engine_event ev, const uint8_t id[static 16]);
bool eng_prec_valid(unsigned p);
#ifndef NDEBUG
void eng_assert_invariants(const hl_engine *e);
#else
static inline void eng_assert_invariants(const hl_engine *e)
{
	(void)e;
}
#endif
void eng_queue_refusal(hl_engine *e, uint64_t seq, const uint8_t hash[static 32],
		       uint8_t code, const char *text);
int eng_send_pkt(hl_engine *e, uint8_t type, const uint8_t *body, size_t len, uint64_t now);
void eng_send_owed(hl_engine *e, uint64_t now);

/* ---- credit.c: the flow window and CREDIT ---- */

void eng_credit_maybe(hl_engine *e, uint64_t now, bool all);
uint64_t eng_flow_us(const hl_engine *e, uint64_t now_ms);
size_t eng_data_max(const hl_engine *e, size_t max);
void eng_flow_sent(hl_engine *e, size_t n, uint64_t now);
bool eng_flow_holds(hl_engine *e, uint64_t n);

/* ---- keys.c: the keys of both chains (docs/rotation.md) ---- */

int eng_keys_init(hl_engine *e, const hl_peer_conf *peer);
int eng_keys_load(hl_engine *e);
int eng_peer_key_at(hl_engine *e, uint64_t seq, uint8_t key[static 32]);
int eng_our_key_at(hl_engine *e, uint64_t seq, uint8_t key[static 32]);
int eng_rotation_rules(hl_engine *e, const struct hl_item *it, struct hl_chain_why *w);
void eng_rotation_taken(hl_engine *e, const struct hl_item *it);

/* ---- refuse.c: refusals, tombstones, quota and disk reserve ---- */

void eng_refuse_log(hl_engine *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void eng_refuse_later(hl_engine *e, uint64_t seq, const uint8_t *hash, const char *text);
int eng_tombstone(hl_engine *e, uint64_t seq, const uint8_t *hash, uint8_t code,
		  const char *text);
uint64_t eng_free_bytes(hl_engine *e);
uint64_t eng_reserve_bytes(hl_engine *e);
uint64_t eng_message_charge(const struct hl_item_message *m, size_t enc_len,
			    size_t subject_len);
int eng_over_limits(hl_engine *e, uint64_t charge, bool *over);

/* ---- parts.c: messages being received, their parts, visibility order ---- */

struct in_msg *eng_in_find(hl_engine *e, uint64_t seq);
void eng_in_msg_free(struct in_msg *m);
void eng_in_unlink(hl_engine *e, struct in_msg *m);
void eng_in_clear(hl_engine *e);
struct in_msg *eng_in_msg_new(void);
void eng_in_add(hl_engine *e, struct in_msg *m);
int eng_make_part_dir(const hl_engine *e, const char *relpath);
int eng_part_empty(hl_engine *e, const struct in_part *p);
char *eng_part_tmp_path(const hl_engine *e, const struct in_part *p);
bool eng_in_all_complete(const struct in_msg *m);
int eng_predecessor_done(hl_engine *e, unsigned prec, uint64_t class_seq, uint64_t seq,
			 bool *ok);
void eng_add_receipt(hl_engine *e, uint64_t seq, const uint8_t hash[static HL_HASH_LEN]);
int eng_try_visible(hl_engine *e, struct in_msg *m, uint64_t now);
int eng_refuse_stored(hl_engine *e, struct in_msg *m, uint8_t code, const char *text);
int eng_load_in(hl_engine *e);
int eng_retry_waiting(hl_engine *e);
int eng_note_synced(hl_engine *e, struct in_msg *m, unsigned idx);
void eng_worker_wake(void *arg);
int eng_on_chunk(hl_engine *e, const uint8_t *body, size_t len);

/* ---- restore.c: RECLAIM, RETURN, resynchronising after a restore ---- */

int eng_peer_lost(hl_engine *e, const struct hl_pkt_ack *a, uint64_t *lost);
void eng_resync_send(hl_engine *e, uint64_t now);
int eng_resync_verify(hl_engine *e, const struct hl_pkt_ack *a);
int eng_on_reclaim(hl_engine *e, const uint8_t *body, size_t len);
int eng_on_return(hl_engine *e, const uint8_t *body, size_t len);

/* ---- staging.c: the engine's side of staging ---- */

void eng_stage_item_sent(hl_engine *e, struct out_entry *x, const uint8_t id[static 16],
			 uint64_t now);
bool eng_stage_waiting(const struct out_entry *x, uint64_t now);
int eng_stage_pump(hl_engine *e, int above, uint64_t now);
void eng_stage_send_staged(hl_engine *e, uint64_t now);
int eng_stage_adopt(hl_engine *e, struct in_msg *m);
int eng_on_stage(hl_engine *e, const uint8_t *body, size_t len);

/* ---- items.c: what each kind of item does once accepted ---- */

int eng_on_message_item(hl_engine *e, const struct hl_item *it, const uint8_t *enc,
			size_t enc_len, const uint8_t hash[static 32],
			const uint8_t *rest, size_t rest_len);
int eng_on_receipt_item(hl_engine *e, const struct hl_item *it, const uint8_t *enc,
			size_t enc_len, const uint8_t hash[static 32]);
int eng_on_signed_item(hl_engine *e, const struct hl_item *it, const uint8_t *enc,
		       size_t enc_len, const uint8_t hash[static 32]);

/* ---- recv.c: an item arrives (the checks, the chain rules, evidence) ---- */

int eng_on_item(hl_engine *e, const uint8_t *body, size_t len, uint64_t now);

/* ---- send.c: the queues, the pump, what the peer says of our items ---- */

void eng_queues_clear(hl_engine *e);
int eng_on_ack(hl_engine *e, const uint8_t *body, size_t len);
int eng_on_resume(hl_engine *e, const uint8_t *body, size_t len);
int eng_on_refuse(hl_engine *e, const uint8_t *body, size_t len, uint64_t now);
int eng_on_credit(hl_engine *e, const uint8_t *body, size_t len, uint64_t now);
int eng_on_staged(hl_engine *e, const uint8_t *body, size_t len);

/* ---- verifier.c: held ITEMs' signatures, on a second thread ---- */
/* (with e->peer_keys.sign, which it copies to e->verify_key) */

void eng_verifier_stop(void);
void eng_verify_held(hl_engine *e);

#endif
