/* deliver/engine.h — the messages protocol (docs/messages.md) for one
 * peer: what to send, in which order, and what to do with what arrives.
 * It sits between a session (session/session.h: an authenticated connection that
 * carries packets) and the store, and knows nothing of sockets or the event
 * loop: the daemon calls it when a session opens or closes, when a packet
 * arrives, when the session can take more bytes, and around each commit.
 *
 * Group commit.  Everything the engines of all peers write while the
 * daemon handles one burst of input goes into one store transaction (struct
 * hl_txn, shared).  Then the daemon calls hl_engine_precommit() on each
 * engine (it authors the receipts for what became visible), commits once,
 * and calls hl_engine_postcommit() (ACKs, REFUSEs and the new receipts go
 * out).  Nothing is acknowledged before that commit.  When the commit
 * fails, hl_engine_abort() forgets what the transaction held and the
 * daemon closes the sessions; they resume from the durable state. */
#ifndef HL_DELIVER_ENGINE_H
#define HL_DELIVER_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "conf/config.h"
#include "crypto/signer.h"
#include "session/session.h"
#include "store/store.h"

/* The receiver's unit of CREDIT (docs/messages.md): it credits every
 * quarter of this within a read burst, and everything at the burst's end;
 * and the part of a worker's ring it credits early (see engine_int.h).  The
 * sender's window is sized in time (deliver/flow.h). */
#define HL_CREDIT_WINDOW (8u * 65500u)

/* The transaction the engines share. */
struct hl_txn {
	hl_store *store;
	bool open;
};
/* Opens the shared transaction unless it is open already. */
int hl_txn_need(struct hl_txn *t);

/* What the engine tells the operator about, after the commit that made it
 * so (hl_engine_postcommit). */
enum hl_engine_event {
	HL_EV_ARRIVED,     /* a message from the peer is in the inbox */
	HL_EV_DELIVERED,   /* the peer's receipt for one of ours came */
	HL_EV_REFUSED,     /* the peer refused one of ours */
	HL_EV_REFUSED_IN,  /* we refused one of the peer's */
	HL_EV_CHECK_IN,    /* the peer checked the line (the station answered) */
	HL_EV_ANSWER,      /* the peer answered one of our checks */
	HL_EV_PROPOSAL,    /* the peer proposed an agreement */
	HL_EV_SIGNED,      /* the peer countersigned one of our agreements */
	HL_EV_EQUIVOCATION, /* the peer signed two items at one position */
	HL_EV_ROTATED,     /* the peer rotated its keys (id: its new fingerprint) */
	HL_EV_ROTATION_REFUSED, /* we refused the peer's rotation (id: its hash) */
};

struct hl_engine_evinfo {
	enum hl_engine_event ev;
	/* message id (16 bytes), check id (16) or agreement id (32) */
	uint8_t id[32];
	uint64_t seq;      /* HL_EV_EQUIVOCATION, HL_EV_ROTATED, _REFUSED: the position */
	unsigned by;       /* HL_EV_ANSWER: enum hl_answer_by; HL_EV_CHECK_IN: the mode */
};

struct hl_engine_env {
	const char *dir;              /* the station directory */
	struct hl_txn *txn;
	const hl_signer *me;
	uint64_t max_attachment;      /* refuse larger attachments (0: 4 GiB) */
	uint64_t quota_bytes;         /* per peer (0: no quota) */
	uint64_t reserve_bytes;       /* free disk space kept (0: none) */
	unsigned reserve_pct;         /* or N% of the file system (conf/config.h) */
	/* ITEM packets, and every packet after one, are held (copied) until
	 * hl_engine_drain(), which checks the signatures of all of them on
	 * two threads first: the daemon's bursts of thousands of messages
	 * are otherwise bound by one core's Ed25519. */
	bool defer_items;
	/* Optional: whether KEY (a NoiseKey or SigningKey a peer rotates to)
	 * is pinned for a peer other than PEER: such a rotation is refused
	 * (one key, one station: docs/rotation.md). */
	bool (*key_taken)(void *user, const char *peer, const uint8_t key[static 32]);
	/* Optional: called from hl_engine_postcommit() for each event. */
	void (*on_event)(void *user, const char *peer, const struct hl_engine_evinfo *ev);
	/* Optional: called on a part's worker thread when it has taken in
	 * incoming data; the caller then has its loop call hl_engine_credit()
	 * (uv_async_send, say).  Without it, CREDIT counts a part's data as
	 * taken when it is handed to the worker. */
	void (*wake)(void *user);
	/* Optional: a monotonic clock in microseconds, for flow control's
	 * round trips (deliver/flow.h); without it, the NOW_MS given to the
	 * calls, which rounds a loopback's round trip to nothing. */
	uint64_t (*clock_us)(void);
	void *user;
};

typedef struct hl_engine hl_engine;

int hl_engine_new(hl_engine **out, const struct hl_engine_env *env, const hl_peer_conf *peer);
void hl_engine_free(hl_engine *e);

/* A session with the peer is OPEN: sends this side's state (ACK, RESUME,
 * outstanding REFUSEs); sending starts when the peer's RESUME arrives. */
void hl_engine_attach(hl_engine *e, hl_session *session, uint64_t now_ms);
/* The session is gone (closed or replaced). */
void hl_engine_detach(hl_engine *e);

/* A packet of the messages protocol arrived.  A negative return is a
 * protocol violation or a local failure that ends the session: the caller
 * closes the session (hl_engine_error() says why).
 *
 * Also called with no session attached, by `bundle import` (bundle/import.c):
 * ITEM, CHUNK and ACK packets from a courier bundle go through this same
 * receive path, so a message is stored once by (peer, seq) and id whatever
 * path brought it.  Nothing is sent then: postcommit() sends only on an
 * attached session, and the receipts precommit() authors wait in the store
 * for the next session or bundle. */
int hl_engine_on_packet(hl_engine *e, uint8_t type, const uint8_t *body, size_t len,
			uint64_t now_ms);

/* With env.defer_items: handles the packets held since the last call, in
 * order (the daemon calls it once per burst, before the precommit; it is
 * also called by hl_engine_on_packet when 4 MiB are held).  A negative
 * return ends the session, as for hl_engine_on_packet.  Packets held when
 * a session opens, closes or the transaction aborts are dropped: none was
 * acknowledged, and the peer sends them again. */
int hl_engine_drain(hl_engine *e, uint64_t now_ms);
/* Packets are still held after hl_engine_drain(): it stops once the
 * packets it handled raised 1,024 events, and the daemon drains the rest
 * in the next turn of its loop. */
bool hl_engine_holding(const hl_engine *e);

/* After the postcommit: the session should end now (the engine
 * resynchronised after a restore, docs/messages.md section 7); the next
 * session starts clean.  Reading it clears it. */
bool hl_engine_restart(hl_engine *e);

/* Sends what the session will take now. */
void hl_engine_pump(hl_engine *e, uint64_t now_ms);
/* After env.wake: sends CREDIT for what the parts' workers took in, when
 * due (docs/messages.md, CREDIT). */
void hl_engine_credit(hl_engine *e, uint64_t now_ms);
/* The bytes that may wait at this end ahead of an urgent packet (flow
 * control, deliver/flow.h): the daemon keeps the socket's unsent bytes to
 * about this (TCP_NOTSENT_LOWAT). */
uint64_t hl_engine_ahead(const hl_engine *e);
/* Other processes changed the store (new messages queued): look again. */
void hl_engine_refresh(hl_engine *e);

/* Around the daemon's commit of the shared transaction (see top). */
int hl_engine_precommit(hl_engine *e, uint64_t now_ms);
void hl_engine_postcommit(hl_engine *e, uint64_t now_ms);
void hl_engine_abort(hl_engine *e);

/* Staging (deliver/stage.h): part PART of message ID (not stored yet), of
 * SIZE bytes, is being copied to PATH (relative to the station directory)
 * at precedence PREC; its bytes go ahead of its ITEM during this session.
 * HL_EEXIST, HL_ETOOBIG (enough staged), HL_ESTATE (no session),
 * HL_EUNSUPP (the peer's HELLO lacks the STAGE flag). */
int hl_engine_stage(hl_engine *e, const uint8_t id[static 16], unsigned part, unsigned prec,
		    const char *path, uint64_t size, uint64_t now_ms);
/* Staged parts wait for their files to grow: pump again soon. */
bool hl_engine_staging(const hl_engine *e);

/* The peer's row in the store. */
int64_t hl_engine_peer_id(const hl_engine *e);

/* The last error (sanitised), "" when none. */
const char *hl_engine_error(const hl_engine *e);

struct hl_engine_stats {
	size_t queued[4];             /* OUT entries loaded, by precedence */
	size_t partial_in;            /* incoming messages still arriving */
	uint64_t items_in, items_out, chunks_in, chunks_out;
	/* staging (deliver/stage.h): bytes sent, received, adopted as parts */
	uint64_t stage_out_bytes, stage_in_bytes, stage_adopted_bytes;
	uint64_t window_waits;        /* a CHUNK waited for the peer's CREDIT */
	/* CREDIT, this session: CHUNK data bytes sent, and credited by the
	 * peer; with credit_on the difference never exceeds the window. */
	bool credit_on;
	uint64_t chunk_data_sent, chunk_data_credited;
	/* flow control (deliver/flow.h), once data was sent: the window, what
	 * may wait ahead, the measured rate (bytes/s) and round trip */
	uint64_t flow_window, flow_ahead, flow_rate, flow_rtt_us;
	/* The peer's items refused since the daemon started: for good (a
	 * tombstone) and for now (nothing stored: too far ahead, over quota
	 * or the disk reserve, too many refusals kept); REFUSING says why the
	 * last was refused for now, "" once an item is accepted again. */
	uint64_t refused_items, refused_later;
	uint64_t refusals_dropped;    /* REFUSEs dropped: the peer read none */
	const char *refusing;
};
void hl_engine_stats(const hl_engine *e, struct hl_engine_stats *s);

#endif
