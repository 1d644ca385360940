/* session/session.h — one peer session's state machine, free of sockets and
 * clocks: the daemon feeds it the bytes that arrived and the current time
 * (milliseconds on a monotonic clock), and it produces the bytes to send
 * and calls back with events.  The state machine is documented at the top
 * of session.c.
 *
 * Layering.  The session owns the Noise handshake (Noise_IK_25519_ChaChaPoly_
 * BLAKE2b, prologue "hotline/1"), key confirmation (HELLO), keepalives
 * (PING/PONG), timeouts and CLOSE.  Everything else travels as application
 * packets: the layer above calls hl_session_send() with a packet type in
 * 0x10-0x3f and a body, and gets on_packet() for each one received.
 *
 * Output and backpressure.  Frames to send accumulate in the session's output
 * queue.  The owner moves them to the socket: hl_session_output() shows the
 * pending bytes, hl_session_output_taken() says how many it took (they are then
 * "in flight"), hl_session_output_done() says how many of those the socket
 * finished writing.  While queued + in-flight bytes exceed a high-water
 * mark, hl_session_send() refuses application packets with -EAGAIN; once they
 * fall under the low-water mark the session calls on_writable().  Session
 * packets (PONG, ...) are never refused; a peer that makes the queue pass a
 * hard cap by not reading is disconnected.
 *
 * Callbacks are made only at points where the session is consistent; inside
 * one, the owner may call hl_session_send() and hl_session_close() on any session,
 * but must not free the session that called it (nor close it from authorize,
 * which runs in the middle of reading message 1). */
#ifndef HL_SESSION_SESSION_H
#define HL_SESSION_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "crypto/signer.h"
#include "session/replay.h"

#define HL_SESSION_PROTOCOL "Noise_IK_25519_ChaChaPoly_BLAKE2b"
#define HL_SESSION_PROLOGUE "hotline/1"
#define HL_SESSION_KEYLEN 32

#define HL_SESSION_HIGH_WATER (256u * 1024)   /* refuse application packets above */
#define HL_SESSION_LOW_WATER (64u * 1024)     /* on_writable() again below */
#define HL_SESSION_HARD_CAP (4u * 1024 * 1024) /* a peer that lets more pile up is dropped */

typedef struct hl_session hl_session;

enum hl_session_role { HL_SESSION_INITIATOR, HL_SESSION_RESPONDER };

enum hl_session_state {
	HL_SESSION_I_MSG2,    /* initiator: message 1 sent, waiting for message 2 */
	HL_SESSION_I_HELLO,   /* initiator: split, HELLO sent, waiting for the responder's HELLO */
	HL_SESSION_R_MSG1,    /* responder: waiting for message 1 */
	HL_SESSION_R_HELLO,   /* responder: message 2 sent, waiting for the initiator's HELLO */
	HL_SESSION_OPEN,      /* confirmed both ways: packets flow */
	HL_SESSION_CLOSED,    /* terminal */
};

struct hl_session_params {
	uint32_t keepalive_ms;          /* PING after this long without sending or receiving */
	uint32_t keepalive_timeout_ms;  /* dead after this long without receiving */
	uint32_t handshake_timeout_ms;  /* from creation until OPEN */
	uint64_t max_age_ms;            /* CLOSE (expired) after this long OPEN; 0: never */
	/* HL_HELLO_FLAG_* this side announces in its HELLO (wire/packet.h):
	 * what the layer above the session speaks. */
	uint8_t hello_flags;
	/* Initiator: the timestamp message 1 carries (read only by
	 * hl_session_new); NULL sends an empty payload, as stations did before
	 * timestamps.  The caller keeps it strictly increasing per peer
	 * (hl_stamp_next). */
	const struct hl_stamp *msg1_stamp;
	/* Responder: the ephemeral keys of recent messages 1, shared by every
	 * responder session of the station (NULL: none remembered). */
	hl_replay_cache *seen;
	/* Responder: the station's previous static key, after it rotated its
	 * keys (docs/rotation.md section 4): a message 1 whose static key does
	 * not decrypt with the current key is read again with this one, for a
	 * peer that has not taken the rotation yet.  NULL: none. */
	const hl_signer *local_prev;
};

struct hl_session_ops {
	/* Responder: message 1 named static key KEY (before the DH that proves
	 * it).  Return the key's replay window (the greatest timestamp accepted
	 * from it, kept by the owner across connections) when the key is
	 * pinned; NULL closes the connection without a reply.  Must not close
	 * or free SESSION (the handshake is being read). */
	struct hl_replay_window *(*authorize)(void *user, hl_session *session,
					      const uint8_t key[static HL_SESSION_KEYLEN]);
	/* The session is confirmed (the peer's HELLO arrived): OPEN. */
	void (*on_confirmed)(void *user, hl_session *session);
	/* An application packet (type 0x10-0x3f) arrived on an OPEN session.
	 * BODY is valid only during the call. */
	void (*on_packet)(void *user, hl_session *session, uint8_t type, const uint8_t *body, size_t len);
	/* The queue fell under the low-water mark after a refused send. */
	void (*on_writable)(void *user, hl_session *session);
	/* The session closed by itself (peer CLOSE, bad input, timeout).  Not
	 * called for hl_session_close().  The output may still hold a CLOSE to
	 * send before the connection is closed. */
	void (*on_closed)(void *user, hl_session *session);
	/* Responder: a message 1 of plausible length, not a known replay,
	 * arrived; nothing has been computed yet.  Return false to close
	 * without a reply before any DH (the owner's budget for
	 * unauthenticated work is spent).  NULL admits every one. */
	bool (*admit)(void *user, hl_session *session);
	/* Responder: message 1 was accepted (pinned key, and a timestamp newer
	 * than any before, or none); message 2 follows unless the owner closes
	 * SESSION here, as it may (and may close other sessions: handshakes this one
	 * supersedes, hl_session_supersedes). */
	void (*on_accepted)(void *user, hl_session *session);
};

/* Creates a session.  LOCAL is this station's signer, which holds its X25519
 * private key and does the handshake's DHs with it; it must outlive the
 * session.  An initiator gives REMOTE_PUB (the peer's NoiseKey) and its
 * message 1 is in the output on return.  OPS members may be NULL
 * (authorize NULL accepts nobody). */
int hl_session_new(hl_session **out, enum hl_session_role role, const hl_signer *local,
		const uint8_t *remote_pub,
		const struct hl_session_params *params, const struct hl_session_ops *ops,
		void *user, uint64_t now_ms);
/* Wipes and frees.  NULL-safe. */
void hl_session_free(hl_session *session);

/* Bytes that arrived.  Returns 0, or the negative code of the error that
 * closed the session (on_closed was called).  Bytes after a close are ignored. */
int hl_session_recv(hl_session *session, const uint8_t *buf, size_t len, uint64_t now_ms);
/* Time passed: timeouts, keepalives, expiry.  Call at hl_session_deadline(). */
void hl_session_tick(hl_session *session, uint64_t now_ms);
/* When hl_session_tick() next has work; UINT64_MAX when never (CLOSED). */
uint64_t hl_session_deadline(const hl_session *session);

/* Sends an application packet (type 0x10-0x3f, body at most
 * HL_PACKET_BODY_MAX).  HL_ESTATE unless OPEN, HL_EINVAL for another type,
 * HL_ETOOBIG for a long body, -EAGAIN while not writable. */
int hl_session_send(hl_session *session, uint8_t type, const uint8_t *body, size_t len, uint64_t now_ms);
/* The same for a small real-time packet (at most HL_SESSION_URGENT_MAX bytes:
 * call signalling and media, daemon/calls.c), which the high-water mark
 * does not hold back — only half the hard cap does — so a call can ring
 * while a document fills the queue.  The caller bounds how many it sends
 * (calls: a few packets a call, and 50 media packets a second at most). */
#define HL_SESSION_URGENT_MAX 256
int hl_session_send_urgent(hl_session *session, uint8_t type, const uint8_t *body, size_t len,
			uint64_t now_ms);
bool hl_session_writable(const hl_session *session);
/* Bytes queued and in flight (see above): what waits at this end. */
size_t hl_session_queued(const hl_session *session);
/* Asks for on_writable() at the next write that completes below the
 * low-water mark, as a refused send does (the caller holds back data
 * of its own accord: flow control). */
void hl_session_notify_writable(hl_session *session);
/* The same, but when the session is OPEN and not writable, it will call
 * on_writable() once the queue drains, as after a refused send: for a
 * sender that checks before it does the work of building a packet. */
bool hl_session_writable_or_notify(hl_session *session);

/* Closes on purpose: queues CLOSE(REASON, TEXT) when OPEN and REASON is not
 * 0 (0: the connection is already gone, send nothing), wipes the keys, goes
 * CLOSED.  Does not call on_closed.  No-op when already CLOSED. */
void hl_session_close(hl_session *session, uint8_t reason, const char *text);

/* Output queue (see the top of this file). */
size_t hl_session_output(const hl_session *session, const uint8_t **p);
void hl_session_output_taken(hl_session *session, size_t n);
void hl_session_output_done(hl_session *session, size_t n);

enum hl_session_state hl_session_state(const hl_session *session);
enum hl_session_role hl_session_role(const hl_session *session);
const char *hl_session_state_name(enum hl_session_state state);
/* The peer's static key once known (initiator: always), else NULL.  A
 * responder closed with HL_EPEER knows the key message 1 claimed, which
 * nothing proved. */
const uint8_t *hl_session_remote_key(const hl_session *session);
/* Responder: the timestamp of the message 1 it accepted; false when that
 * had none (an empty payload) or none was accepted. */
bool hl_session_msg1_stamp(const hl_session *session, struct hl_stamp *out);
/* Whether accepting NEWER's message 1 ends OLDER, another responder session
 * of the same peer still waiting for its HELLO (docs/protocol.md section
 * 2.1): only a timestamped message 1 supersedes, and only a handshake with
 * an older timestamp or none; an empty payload supersedes nothing. */
bool hl_session_supersedes(const hl_session *newer, const hl_session *older);
/* The last PING round trip in ms, or -1 before the first PONG. */
int64_t hl_session_rtt_ms(const hl_session *session);
/* When the session went OPEN (0 before). */
uint64_t hl_session_opened_at(const hl_session *session);
/* The peer's keepalive interval from its HELLO (0 before). */
uint32_t hl_session_peer_keepalive_ms(const hl_session *session);
/* The flags of the peer's HELLO (0 before, and from a station that
 * predates them), and of this side's (params.hello_flags). */
uint8_t hl_session_peer_flags(const hl_session *session);
uint8_t hl_session_own_flags(const hl_session *session);
/* After a close: the error that caused it (0 for a local hl_session_close or a
 * peer's CLOSE), and a description ("keepalive timeout: ...", "peer sent
 * CLOSE: shutdown", ...), sanitised, never NULL. */
int hl_session_error(const hl_session *session);
const char *hl_session_error_text(const hl_session *session);
/* The reason of a CLOSE the peer sent, 0 when none arrived. */
uint8_t hl_session_peer_close_reason(const hl_session *session);

/* For tests and fuzzers: the number of the first invariant of the state
 * machine (listed at the top of session.c) that SESSION violates, or 0. */
int hl_session_validate_invariants(const hl_session *session);

/* The duplicate-session rule (docs/protocol.md section 4).  OLD and NEW are
 * two confirmed sessions with the same peer; *_BY_US tells whether this
 * station dialed each one.  Returns true when NEW is kept (OLD dropped). */
bool hl_session_keep_new(bool old_by_us, bool new_by_us,
		      const uint8_t our_key[static HL_SESSION_KEYLEN],
		      const uint8_t peer_key[static HL_SESSION_KEYLEN]);

#endif
