/* session/session.c — one peer session's state machine (the API is in session.h; the
 * wire format is docs/protocol.md sections 1-4).
 *
 * A session is one TCP connection's worth of protocol: the Noise IK handshake,
 * key confirmation, keepalives and the close.  It has no socket and no
 * clock.  The daemon feeds it bytes (hl_session_recv) and time (hl_session_tick,
 * at hl_session_deadline), and moves the bytes it queues to the socket.
 *
 * STATES
 *
 *       initiator (dialed)                     responder (accepted)
 *
 *   hl_session_new: write message 1           hl_session_new
 *              |                                   |
 *              v                                   v
 *         +---------+                         +---------+
 *         | I_MSG2  |                         | R_MSG1  |
 *         +---------+                         +---------+
 *              | read message 2                    | read message 1 (read_msg1:
 *              | Split(), send HELLO               | cheap checks, then es, the
 *              |                                   | key authorized, ss, the
 *              |                                   | timestamp newer): write
 *              v                                   v message 2, Split()
 *         +---------+                         +---------+
 *         | I_HELLO |                         | R_HELLO |
 *         +---------+                         +---------+
 *              | read the responder's HELLO        | read the initiator's HELLO
 *              | send PING                         | send HELLO, PING
 *              +----------------+  +---------------+
 *                               v  v
 *                            +--------+
 *                            |  OPEN  |  on_confirmed(); packets flow;
 *                            +--------+  PING/PONG keepalive
 *                                |
 *   every state: a malformed      |
 *   frame, a failed handshake     v
 *   or MAC, a timeout, the    +--------+
 *   peer's CLOSE, or          | CLOSED |  keys wiped; nothing more is read
 *   hl_session_close()  ------>  +--------+  or written (a CLOSE may still sit
 *                                         in the output queue)
 *
 * Transitions are made by: hl_session_new (to I_MSG2 or R_MSG1), read_msg1 (to
 * R_HELLO), read_msg2 (to I_HELLO), on_first_hello (to OPEN), and
 * session_fail / close_internal (to CLOSED), reached from hl_session_recv,
 * hl_session_tick and hl_session_close.
 *
 * Why the responder waits for a HELLO: message 1 can be replayed by anyone
 * who saw it, and reading it proves nothing about who sent it.  Only a
 * transport message that decrypts under the new keys proves the initiator
 * holds them, so a session is "confirmed" (on_confirmed, eligible to replace
 * another session) only then.  The initiator likewise waits for the
 * responder's HELLO, so that each side confirms after the other has taken
 * the session as real; the daemon's duplicate rule then sees the same
 * sessions on both sides.
 *
 * Why message 1 carries a timestamp (docs/protocol.md section 2.1): a
 * replay must not even take the place of a real handshake waiting for its
 * HELLO.  The initiator puts a TAI64N timestamp, strictly increasing per
 * peer, in message 1's payload (params.msg1_stamp); the responder accepts a
 * timestamped message 1 only when it is newer than every one accepted from
 * that key (the owner's hl_replay_window, found by authorize), and refuses
 * before any DH one whose ephemeral key it has seen (params.seen).  So a
 * replay is refused, and an accepted timestamped message 1 is the peer's own
 * latest: the owner lets it supersede older pending handshakes
 * (hl_session_supersedes).  An empty payload (a station from before) is still
 * accepted, but supersedes nothing.
 *
 * What message 1 costs (read_msg1), cheapest first, so that unauthenticated
 * bytes buy as little work as possible: the length and the cache of seen
 * ephemeral keys (nothing); the owner's budget (admit); the es DH and the
 * static key's decryption (after a key rotation, when it fails, once more
 * with the previous static key, params.local_prev: a peer that has not
 * taken the rotation still writes to that one); the key checked against
 * the pinned ones
 * (authorize, from inside hl_noise_hs_read before the ss DH, so an unpinned
 * key costs one DH); the ss DH and the payload; the timestamp rule; and only
 * then message 2's three X25519 operations.
 *
 * Timers, all derived from the fields below (hl_session_deadline):
 *   - handshake: created_ms + handshake_timeout_ms, in every state but OPEN;
 *   - keepalive (OPEN): a PING when nothing was sent or nothing was
 *     received for keepalive_ms (one PING outstanding at a time, renewed
 *     after keepalive_ms); dead when nothing was received for
 *     keepalive_timeout_ms;
 *   - expiry (OPEN): CLOSE (expired) once max_age_ms after opening.
 *
 * INVARIANTS (checked by assert_session_state() on entry to and exit from
 * every public function in debug builds, and available to tests and
 * fuzzers in every build as hl_session_validate_invariants())
 *   1. hs != NULL exactly in I_MSG2 and R_MSG1.
 *   2. send_cs and recv_cs are both allocated and keyed exactly in I_HELLO,
 *      R_HELLO and OPEN; otherwise both are NULL (wiped and freed).
 *   3. An initiator only visits I_MSG2, I_HELLO, OPEN, CLOSED; a responder
 *      only R_MSG1, R_HELLO, OPEN, CLOSED.
 *   4. remote_known holds in every state except R_MSG1 (and CLOSED reached
 *      from R_MSG1 before message 1 was read).
 *   5. confirmed is false before OPEN and true in OPEN (and stays true in
 *      a CLOSED reached from OPEN).
 *   6. ping_outstanding and want_writable imply confirmed.
 *   7. out_head <= out_len <= out_cap.
 *   8. On return from a public function, a session that is not CLOSED has at
 *      most HL_SESSION_HARD_CAP bytes queued and in flight.
 *   9. Once CLOSED, nothing is appended to the output queue.
 *  10. window is NULL (it is set only inside read_msg1, for the key that
 *      message 1 names).
 *  11. stamped holds only for a responder that knows its peer's key
 *      (remote_known): set when message 1's timestamp is accepted.
 */
#include "session/session.h"

#include <assert.h>
#include <errno.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "crypto/noise.h"
#include "crypto/secpool.h"
#include "util/err.h"
#include "util/log.h"
#include "util/mem.h"
#include "util/text.h"
#include "util/timefmt.h"
#include "wire/frame.h"
#include "wire/packet.h"

#define ERROR_TEXT_LEN 320

struct hl_session {
	enum hl_session_role role;
	enum hl_session_state state;
	struct hl_session_params params;
	struct hl_session_ops ops;
	void *user;

	hl_noise_hs *hs;               /* during the handshake */
	hl_cipher_state *send_cs;      /* after Split(): one secure slot holds */
	hl_cipher_state *recv_cs;      /* both (send_cs[0], recv_cs == send_cs + 1) */
	uint8_t remote_key[HL_SESSION_KEYLEN];
	bool remote_known;
	bool confirmed;

	struct hl_frame_reader *reader;
	uint8_t *scratch;              /* one packet's plaintext; wiped after use */
	size_t scratch_used;           /* the most of it ever written: what a close wipes */

	uint8_t *out;                  /* output queue: out[out_head..out_len) pending */
	size_t out_head, out_len, out_cap;
	size_t inflight;               /* taken by the owner, not yet written */
	bool want_writable;

	uint64_t created_ms, opened_ms, last_send_ms, last_recv_ms;
	bool ping_outstanding;
	uint8_t ping_value[HL_PING_LEN];
	uint64_t ping_sent_ms;
	int64_t rtt_ms;
	uint32_t peer_keepalive_ms;
	uint8_t peer_flags;

	struct hl_replay_window *window; /* read_msg1 only: the named key's */
	struct hl_stamp stamp;         /* responder: message 1's timestamp ... */
	bool stamped;                  /* ... when it had one and was accepted */

	int error;
	uint8_t peer_close_reason;
	char error_text[ERROR_TEXT_LEN];
	struct hl_ratelimit ignored_rl;
};

#define SCRATCH_LEN HL_PACKET_MAX
#define KEYS_SIZE (2 * sizeof(hl_cipher_state))   /* send_cs and recv_cs */
/* Room for one handshake message we write: IK makes 96 bytes and the
 * payload for message 1 (a 12-byte timestamp: 108), 48 for message 2;
 * hl_noise_hs_write checks the room.  Reserving the Noise maximum (65535)
 * instead grew every session's output queue to 128 KiB before its first byte
 * was sent. */
#define HS_MSG_MAX 128
/* Message 1 as a responder takes it: e (32), s encrypted (48), the payload
 * encrypted (its tag 16, and at most HL_MSG1_PAYLOAD_MAX bytes). */
#define MSG1_MIN (32 + 48 + 16)
#define MSG1_MAX (MSG1_MIN + HL_MSG1_PAYLOAD_MAX)

static size_t queued(const hl_session *s)
{
	return (s->out_len - s->out_head) + s->inflight;
}

static bool in_handshake(enum hl_session_state st)
{
	return st == HL_SESSION_I_MSG2 || st == HL_SESSION_R_MSG1;
}

static bool has_keys(enum hl_session_state st)
{
	return st == HL_SESSION_I_HELLO || st == HL_SESSION_R_HELLO || st == HL_SESSION_OPEN;
}

/* The number of the first invariant (see the top of this file) that L
 * violates, or 0. */
static int broken_invariant(const hl_session *s)
{
	enum hl_session_state st = s->state;
	bool initiator = s->role == HL_SESSION_INITIATOR;
	if ((s->hs != NULL) != in_handshake(st))
		return 1;
	if ((s->send_cs != NULL) != has_keys(st) || (s->recv_cs != NULL) != has_keys(st) ||
	    (s->send_cs && (!s->send_cs->has_key || !s->recv_cs->has_key)))
		return 2;
	if (initiator && st != HL_SESSION_I_MSG2 && st != HL_SESSION_I_HELLO && st != HL_SESSION_OPEN &&
	    st != HL_SESSION_CLOSED)
		return 3;
	if (!initiator && st != HL_SESSION_R_MSG1 && st != HL_SESSION_R_HELLO && st != HL_SESSION_OPEN &&
	    st != HL_SESSION_CLOSED)
		return 3;
	if ((st != HL_SESSION_R_MSG1 && st != HL_SESSION_CLOSED && !s->remote_known) ||
	    (initiator && !s->remote_known))
		return 4;
	if ((st == HL_SESSION_OPEN && !s->confirmed) ||
	    (st != HL_SESSION_OPEN && st != HL_SESSION_CLOSED && s->confirmed))
		return 5;
	if ((s->ping_outstanding || s->want_writable) && !s->confirmed)
		return 6;
	if (s->out_head > s->out_len || s->out_len > s->out_cap)
		return 7;
	if (s->window)
		return 10;
	if (s->stamped && (initiator || !s->remote_known))
		return 11;
	return 0;
}

int hl_session_validate_invariants(const hl_session *s)
{
	int bad = broken_invariant(s);
	if (bad == 0 && s->state != HL_SESSION_CLOSED && queued(s) > HL_SESSION_HARD_CAP)
		bad = 8;
	return bad;
}

static void assert_session_state(const hl_session *s)
{
#ifndef NDEBUG
	int bad = broken_invariant(s);
	if (bad) {
		fprintf(stderr, "link: invariant %d violated in state %s\n", bad,
			hl_session_state_name(s->state));
		abort();
	}
#else
	(void)s;
#endif
}

/* Invariant 8 holds only between calls; checked on the way out. */
static void assert_session_exit(const hl_session *s)
{
	assert_session_state(s);
	assert(hl_session_validate_invariants(s) == 0);
}

static void set_error_text(hl_session *s, const char *fmt, va_list ap)
	__attribute__((format(printf, 2, 0)));
static void set_error_text(hl_session *s, const char *fmt, va_list ap)
{
	char raw[ERROR_TEXT_LEN];
	int n = vsnprintf(raw, sizeof(raw), fmt, ap);
	if (n < 0)
		n = 0;
	if ((size_t)n >= sizeof(raw))
		n = sizeof(raw) - 1;
	hl_sanitize(raw, (size_t)n, s->error_text, sizeof(s->error_text), 0);
}

/* N bytes of scratch were written (the functions that write it set their
 * length output to what they wrote, 0 when they fail). */
static void scratch_note(hl_session *s, size_t n)
{
	if (n > s->scratch_used)
		s->scratch_used = n;
}

/* Wipes the keys and the handshake; the session is CLOSED from here on. */
static void close_internal(hl_session *s)
{
	hl_noise_hs_free(s->hs);
	s->hs = NULL;
	/* Both cipher states share one slot; giving it back wipes them (after
	 * each has freed its EVP context, if it made one). */
	hl_cs_clear(s->send_cs);
	hl_cs_clear(s->recv_cs);
	hl_secmem_free(s->send_cs, KEYS_SIZE);
	s->send_cs = s->recv_cs = NULL;
	/* Every use wipes its own bytes; this is the safety net.  Only what
	 * was ever written: wiping all 64 KiB cost each handshake a pass over
	 * memory that the session never touched. */
	if (s->scratch)
		sodium_memzero(s->scratch, s->scratch_used);
	s->ping_outstanding = false;
	s->want_writable = false;
	s->state = HL_SESSION_CLOSED;
}

/* Makes room for N more bytes at the end of the output queue. */
static uint8_t *out_reserve(hl_session *s, size_t n)
{
	if (s->out_head > 0 && s->out_head == s->out_len) {
		s->out_head = s->out_len = 0;
	} else if (s->out_head > 0 && s->out_cap - s->out_len < n) {
		memmove(s->out, s->out + s->out_head, s->out_len - s->out_head);
		s->out_len -= s->out_head;
		s->out_head = 0;
	}
	if (s->out_cap - s->out_len < n) {
		size_t cap = s->out_cap ? s->out_cap : 4096;
		while (cap - s->out_len < n)
			cap *= 2;
		s->out = xrealloc(s->out, cap);
		s->out_cap = cap;
	}
	return s->out + s->out_len;
}

/* Encrypts one packet and queues it as a frame. */
static int send_packet(hl_session *s, uint8_t type, const uint8_t *body, size_t blen, uint64_t now)
{
	size_t ptlen = 0, ctlen = 0;
	int ret;

	assert(s->send_cs && s->state != HL_SESSION_CLOSED);
	ret = hl_packet_encode(type, body, blen, s->scratch, SCRATCH_LEN, &ptlen);
	scratch_note(s, ptlen);
	if (ret < 0)
		goto out;
	uint8_t *dst = out_reserve(s, HL_FRAME_HDR_LEN + ptlen + HL_TRANSPORT_TAG_LEN);
	ret = hl_cs_encrypt(s->send_cs, NULL, 0, s->scratch, ptlen, dst + HL_FRAME_HDR_LEN,
			    HL_FRAME_MAX, &ctlen);
	if (ret < 0)
		goto out;
	ret = hl_frame_header(ctlen, dst);
	if (ret < 0)
		goto out;
	s->out_len += HL_FRAME_HDR_LEN + ctlen;
	s->last_send_ms = now;
out:
	sodium_memzero(s->scratch, ptlen);
	return ret;
}

/* Closes because of ERR.  SEND_CLOSE queues a CLOSE (protocol error) when
 * the session is OPEN.  Calls on_closed.  Returns ERR. */
static int session_fail(hl_session *s, int err, bool send_close, uint64_t now, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));
static int session_fail(hl_session *s, int err, bool send_close, uint64_t now, const char *fmt, ...)
{
	va_list ap;
	if (s->state == HL_SESSION_CLOSED)
		return err;
	va_start(ap, fmt);
	set_error_text(s, fmt, ap);
	va_end(ap);
	s->error = err;
	if (send_close && s->state == HL_SESSION_OPEN) {
		uint8_t body[1 + HL_CLOSE_TEXT_MAX];
		size_t blen = 0;
		if (hl_close_encode(HL_CLOSE_PROTOCOL, s->error_text, body, sizeof(body), &blen) == 0)
			(void)send_packet(s, HL_PKT_CLOSE, body, blen, now);
	}
	close_internal(s);
	if (s->ops.on_closed)
		s->ops.on_closed(s->user, s);
	return err;
}

static int send_hello(hl_session *s, uint64_t now)
{
	struct hl_hello h = { HL_WIRE_VERSION, HL_WIRE_VERSION, s->params.keepalive_ms,
			      s->params.hello_flags };
	uint8_t body[HL_HELLO_LEN];
	hl_hello_encode(&h, body);
	return send_packet(s, HL_PKT_HELLO, body, sizeof(body), now);
}

static int send_ping(hl_session *s, uint64_t now)
{
	randombytes_buf(s->ping_value, sizeof(s->ping_value));
	int ret = send_packet(s, HL_PKT_PING, s->ping_value, sizeof(s->ping_value), now);
	if (ret == 0) {
		s->ping_outstanding = true;
		s->ping_sent_ms = now;
	}
	return ret;
}

/* After the last handshake message: the two cipher states. */
static int split(hl_session *s)
{
	/* One slot of the shared secure pool (crypto/secpool.h) for both:
	 * 96 bytes of locked memory per session instead of two mappings of
	 * their own (16 KiB resident, ten system calls each way). */
	s->send_cs = hl_secmem_alloc(KEYS_SIZE);
	s->recv_cs = s->send_cs + 1;
	int ret = hl_noise_hs_split(s->hs, s->send_cs, s->recv_cs);
	hl_noise_hs_free(s->hs);
	s->hs = NULL;
	return ret;
}

/* Called by hl_noise_hs_read once message 1 has named its static key,
 * before the ss DH: an unpinned key costs one DH, not two.  The key is
 * not proven yet (the ss DH would prove it). */
static int msg1_key_authorize(void *user, const uint8_t rs[static HL_NOISE_DHLEN])
{
	hl_session *s = user;
	memcpy(s->remote_key, rs, HL_SESSION_KEYLEN);
	s->remote_known = true;
	s->window = s->ops.authorize ? s->ops.authorize(s->user, s, s->remote_key) : NULL;
	assert(s->state == HL_SESSION_R_MSG1 && s->hs);   /* authorize must not close the session */
	return s->window ? 0 : HL_EPEER;
}

/* The handshake state, s->hs, with LOCAL's static key: an initiator's
 * knowing REMOTE_PUB, a responder's checking the key message 1 names. */
static int hs_begin(hl_session *s, const hl_signer *local, const uint8_t *remote_pub)
{
	bool initiator = s->role == HL_SESSION_INITIATOR;
	int ret = hl_noise_hs_new(&s->hs, HL_SESSION_PROTOCOL, initiator);
	if (ret < 0)
		return ret;
	ret = hl_noise_hs_set_prologue(s->hs, (const uint8_t *)HL_SESSION_PROLOGUE,
				       strlen(HL_SESSION_PROLOGUE));
	if (ret == 0)
		ret = hl_noise_hs_set_s(s->hs, local);
	if (ret == 0 && initiator) {
		memcpy(s->remote_key, remote_pub, HL_SESSION_KEYLEN);
		s->remote_known = true;
		ret = hl_noise_hs_set_rs(s->hs, remote_pub);
	} else if (ret == 0) {
		ret = hl_noise_hs_set_rs_authorize(s->hs, msg1_key_authorize, s);
	}
	return ret == 0 ? hl_noise_hs_start(s->hs) : ret;
}

/* Message 1's timestamp against the key's window (the rule of
 * docs/protocol.md section 2.1).  W is the window authorize returned. */
static int check_stamp(hl_session *s, struct hl_replay_window *w, const struct hl_stamp *stamp,
		       uint64_t now)
{
	char got[HL_RFC3339_LEN], last[HL_RFC3339_LEN];
	if (hl_replay_window_accept(w, stamp) == 0) {
		s->stamp = *stamp;
		s->stamped = true;
		return 0;
	}
	hl_rfc3339(hl_stamp_unix_ns(stamp) / 1000000, got);
	hl_rfc3339(hl_stamp_unix_ns(&w->greatest) / 1000000, last);
	return session_fail(s, HL_EREPLAY, false, now,
			 "handshake message 1 timestamped %s is not newer than the last accepted "
			 "from this key (%s): a replay, or the peer's clock went back", got, last);
}

/* The cheap checks of message 1, before anything is computed. */
static int precheck_msg1(hl_session *s, const uint8_t *msg, size_t mlen, uint64_t now)
{
	if (mlen < MSG1_MIN || mlen > MSG1_MAX)
		return session_fail(s, mlen > MSG1_MAX ? HL_ETOOBIG : HL_ETRUNC, false, now,
				 "handshake message 1 of %zu bytes (%u to %u expected)", mlen,
				 MSG1_MIN, MSG1_MAX);
	if (s->params.seen && hl_replay_cache_seen(s->params.seen, msg))
		return session_fail(s, HL_EREPLAY, false, now,
				 "handshake message 1 replayed (its ephemeral key was seen before)");
	if (s->ops.admit && !s->ops.admit(s->user, s))
		return session_fail(s, HL_EBUSY, false, now,
				 "handshake message 1 not read: the budget for unauthenticated "
				 "handshakes is spent");
	return 0;
}

static int read_msg1(hl_session *s, const uint8_t *msg, size_t mlen, uint64_t now)
{
	size_t plen = 0, outlen = 0;
	struct hl_stamp stamp;
	bool stamped = false;
	int ret = precheck_msg1(s, msg, mlen, now);
	if (ret < 0)
		return ret;
	ret = hl_noise_hs_read(s->hs, msg, mlen, s->scratch, SCRATCH_LEN, &plen);
	if (ret < 0 && ret != HL_EPEER && !s->remote_known && s->params.local_prev) {
		/* The static key did not decrypt: perhaps made to the key we
		 * rotated away from. */
		hl_noise_hs_free(s->hs);
		s->hs = NULL;
		if ((ret = hs_begin(s, s->params.local_prev, NULL)) == 0)
			ret = hl_noise_hs_read(s->hs, msg, mlen, s->scratch, SCRATCH_LEN, &plen);
	}
	scratch_note(s, plen);
	struct hl_replay_window *w = s->window;
	s->window = NULL;
	/* Only a message whose static key decrypted (so whose sender held e's
	 * private key) marks e as seen: a forged copy of a live message must
	 * not get the real one refused. */
	if (s->params.seen && (ret == 0 || ret == HL_EPEER))
		hl_replay_cache_add(s->params.seen, msg);
	if (ret == 0)
		ret = hl_msg1_payload_decode(s->scratch, plen, &stamp, &stamped);
	sodium_memzero(s->scratch, plen);
	if (ret == HL_EPEER)
		return session_fail(s, ret, false, now, "initiator's static key is not pinned");
	if (ret < 0)
		return session_fail(s, ret, false, now, "handshake message 1 (%zu bytes) rejected: %s",
				 mlen, hl_strerror(ret));
	assert(w && s->remote_known);
	if (stamped && check_stamp(s, w, &stamp, now) < 0)
		return HL_EREPLAY;
	if (s->ops.on_accepted)
		s->ops.on_accepted(s->user, s);
	if (s->state == HL_SESSION_CLOSED)
		return 0;   /* the owner closed it */

	uint8_t *dst = out_reserve(s, HL_FRAME_HDR_LEN + HS_MSG_MAX);
	ret = hl_noise_hs_write(s->hs, NULL, 0, dst + HL_FRAME_HDR_LEN, HS_MSG_MAX, &outlen);
	if (ret == 0)
		ret = hl_frame_header(outlen, dst);
	if (ret < 0)
		return session_fail(s, ret, false, now, "writing handshake message 2: %s", hl_strerror(ret));
	s->out_len += HL_FRAME_HDR_LEN + outlen;
	s->last_send_ms = now;
	ret = split(s);
	s->state = HL_SESSION_R_HELLO;
	if (ret < 0)
		return session_fail(s, ret, false, now, "Split(): %s", hl_strerror(ret));
	return 0;
}

static int read_msg2(hl_session *s, const uint8_t *msg, size_t mlen, uint64_t now)
{
	size_t plen = 0;
	int ret = hl_noise_hs_read(s->hs, msg, mlen, s->scratch, SCRATCH_LEN, &plen);
	scratch_note(s, plen);
	sodium_memzero(s->scratch, plen);
	if (ret < 0)
		return session_fail(s, ret, false, now, "handshake message 2 (%zu bytes) rejected: %s",
				 mlen, hl_strerror(ret));
	ret = split(s);
	s->state = HL_SESSION_I_HELLO;
	if (ret == 0)
		ret = send_hello(s, now);
	if (ret < 0)
		return session_fail(s, ret, false, now, "after handshake message 2: %s", hl_strerror(ret));
	return 0;
}

/* I_HELLO or R_HELLO: the first transport message must be the peer's HELLO. */
static int on_first_hello(hl_session *s, const struct hl_packet *rec, uint64_t now)
{
	struct hl_hello h;
	int ret;
	if (rec->type != HL_PKT_HELLO)
		return session_fail(s, HL_EINVAL, false, now,
				 "first transport record is type 0x%02x, not HELLO", rec->type);
	ret = hl_hello_decode(rec->body, rec->body_len, &h);
	if (ret < 0)
		return session_fail(s, ret, false, now, "bad HELLO (%zu bytes, versions %u-%u): %s",
				 rec->body_len, h.min_version, h.max_version, hl_strerror(ret));
	s->peer_keepalive_ms = h.keepalive_ms;
	s->peer_flags = h.flags;
	if (s->role == HL_SESSION_RESPONDER) {
		ret = send_hello(s, now);
		if (ret < 0)
			return session_fail(s, ret, false, now, "sending HELLO: %s", hl_strerror(ret));
	}
	s->state = HL_SESSION_OPEN;
	s->confirmed = true;
	s->opened_ms = now;
	/* An early PING gives a round-trip time at once. */
	ret = send_ping(s, now);
	if (ret < 0)
		return session_fail(s, ret, false, now, "sending PING: %s", hl_strerror(ret));
	if (s->ops.on_confirmed)
		s->ops.on_confirmed(s->user, s);
	return 0;
}

static int on_session_packet(hl_session *s, const struct hl_packet *rec, uint64_t now)
{
	uint8_t value[HL_PING_LEN];
	struct hl_close c;
	int ret;

	switch (rec->type) {
	case HL_PKT_HELLO:
		return session_fail(s, HL_EINVAL, true, now, "second HELLO");
	case HL_PKT_PING:
		if (hl_ping_decode(rec->body, rec->body_len, value) < 0)
			return session_fail(s, HL_EINVAL, true, now, "PING of %zu bytes", rec->body_len);
		ret = send_packet(s, HL_PKT_PONG, value, sizeof(value), now);
		if (ret < 0)
			return session_fail(s, ret, false, now, "sending PONG: %s", hl_strerror(ret));
		return 0;
	case HL_PKT_PONG:
		if (hl_ping_decode(rec->body, rec->body_len, value) < 0)
			return session_fail(s, HL_EINVAL, true, now, "PONG of %zu bytes", rec->body_len);
		/* A PONG for an older PING is harmless: ignored. */
		if (s->ping_outstanding && sodium_memcmp(value, s->ping_value, sizeof(value)) == 0) {
			s->ping_outstanding = false;
			s->rtt_ms = (int64_t)(now >= s->ping_sent_ms ? now - s->ping_sent_ms : 0);
		}
		return 0;
	case HL_PKT_CLOSE:
		if (hl_close_decode(rec->body, rec->body_len, &c) < 0)
			return session_fail(s, HL_EINVAL, false, now, "malformed CLOSE (%zu bytes)",
					 rec->body_len);
		s->peer_close_reason = c.reason;
		char text[HL_CLOSE_TEXT_MAX * 3 + 1];
		hl_sanitize((const char *)c.text, c.text_len, text, sizeof(text), 0);
		session_fail(s, 0, false, now, "peer closed the session: %s%s%s%s",
			  hl_close_reason_str(c.reason), text[0] ? " (" : "", text,
			  text[0] ? ")" : "");
		return 0;
	default:
		return session_fail(s, HL_EINVAL, true, now, "unexpected record type 0x%02x", rec->type);
	}
}

static int on_packet(hl_session *s, const struct hl_packet *rec, uint64_t now)
{
	if (s->state != HL_SESSION_OPEN)
		return on_first_hello(s, rec, now);
	switch (hl_packet_classify(rec->type)) {
	case HL_PKTCLASS_SESSION:
		return on_session_packet(s, rec, now);
	case HL_PKTCLASS_APP:
		if (s->ops.on_packet)
			s->ops.on_packet(s->user, s, rec->type, rec->body, rec->body_len);
		return 0;
	case HL_PKTCLASS_IGNORE:
		if (hl_ratelimit_allow(&s->ignored_rl, now))
			hl_info("ignoring a record of unknown type 0x%02x (%zu bytes)", rec->type,
				rec->body_len);
		return 0;
	case HL_PKTCLASS_FATAL:
	default:
		return session_fail(s, HL_EUNSUPP, true, now, "unknown critical record type 0x%02x",
				 rec->type);
	}
}

static int read_transport(hl_session *s, const uint8_t *msg, size_t mlen, uint64_t now)
{
	size_t ptlen = 0;
	struct hl_packet rec;
	int ret = hl_cs_decrypt(s->recv_cs, NULL, 0, msg, mlen, s->scratch, SCRATCH_LEN, &ptlen);
	scratch_note(s, ptlen);
	if (ret < 0)
		return session_fail(s, ret, s->state == HL_SESSION_OPEN, now,
				 "transport message (%zu bytes) failed to decrypt: %s", mlen,
				 hl_strerror(ret));
	s->last_recv_ms = now;
	ret = hl_packet_decode(s->scratch, ptlen, &rec);
	if (ret == HL_EUNSUPP)
		ret = session_fail(s, ret, true, now, "record version %u not supported", rec.version);
	else if (ret < 0)
		ret = session_fail(s, ret, true, now, "malformed record (%zu bytes): %s", ptlen,
				hl_strerror(ret));
	else
		ret = on_packet(s, &rec, now);
	/* The session may be closed and its scratch already wiped; wiping twice is fine. */
	sodium_memzero(s->scratch, ptlen);
	return ret;
}

static int on_frame(hl_session *s, const uint8_t *msg, size_t mlen, uint64_t now)
{
	switch (s->state) {
	case HL_SESSION_R_MSG1:
		return read_msg1(s, msg, mlen, now);
	case HL_SESSION_I_MSG2:
		return read_msg2(s, msg, mlen, now);
	case HL_SESSION_I_HELLO:
	case HL_SESSION_R_HELLO:
	case HL_SESSION_OPEN:
		return read_transport(s, msg, mlen, now);
	case HL_SESSION_CLOSED:
	default:
		return 0;
	}
}

int hl_session_new(hl_session **out, enum hl_session_role role, const hl_signer *local,
		const uint8_t *remote_pub,
		const struct hl_session_params *params, const struct hl_session_ops *ops,
		void *user, uint64_t now_ms)
{
	hl_session *s = xcalloc(1, sizeof(*s));
	bool initiator = role == HL_SESSION_INITIATOR;
	size_t mlen = 0;
	int ret;

	*out = NULL;
	if (initiator && !remote_pub) {
		ret = HL_EINVAL;
		goto out;
	}
	s->role = role;
	s->state = initiator ? HL_SESSION_I_MSG2 : HL_SESSION_R_MSG1;
	s->params = *params;
	/* The caller's pointers: used below, not kept. */
	s->params.msg1_stamp = NULL;
	/* Guard the timers against nonsense (0 would make them spin). */
	if (s->params.keepalive_ms < 100)
		s->params.keepalive_ms = 100;
	if (s->params.keepalive_timeout_ms < s->params.keepalive_ms)
		s->params.keepalive_timeout_ms = s->params.keepalive_ms;
	if (s->params.handshake_timeout_ms < 100)
		s->params.handshake_timeout_ms = 100;
	if (ops)
		s->ops = *ops;
	s->user = user;
	s->rtt_ms = -1;
	s->created_ms = s->last_send_ms = s->last_recv_ms = now_ms;
	s->ignored_rl = (struct hl_ratelimit)HL_RATELIMIT_INIT(5, 10);
	s->reader = xmalloc(sizeof(*s->reader));
	hl_frame_reader_init(s->reader);
	s->scratch = xmalloc(SCRATCH_LEN);
	snprintf(s->error_text, sizeof(s->error_text), "no error");

	if ((ret = hs_begin(s, local, initiator ? remote_pub : NULL)) < 0)
		goto out;
	if (initiator) {
		const struct hl_stamp *stamp = params->msg1_stamp;
		uint8_t *dst = out_reserve(s, HL_FRAME_HDR_LEN + HS_MSG_MAX);
		ret = hl_noise_hs_write(s->hs, stamp ? stamp->b : NULL, stamp ? HL_TAI64N_LEN : 0,
					dst + HL_FRAME_HDR_LEN, HS_MSG_MAX, &mlen);
		if (ret == 0)
			ret = hl_frame_header(mlen, dst);
		if (ret < 0)
			goto out;
		s->out_len += HL_FRAME_HDR_LEN + mlen;
	}
	assert_session_exit(s);
	*out = s;
	s = NULL;
out:
	hl_session_free(s);
	return ret;
}

void hl_session_free(hl_session *s)
{
	if (!s)
		return;
	close_internal(s);
	free(s->reader);
	free(s->scratch);
	if (s->out)
		sodium_memzero(s->out, s->out_cap);
	free(s->out);
	sodium_memzero(s, sizeof(*s));
	free(s);
}

int hl_session_recv(hl_session *s, const uint8_t *buf, size_t len, uint64_t now_ms)
{
	size_t pos = 0;
	int ret = 0;

	assert_session_state(s);
	while (pos < len && s->state != HL_SESSION_CLOSED) {
		const uint8_t *frame = NULL;
		size_t used = 0, flen = 0;
		int r = hl_frame_read(s->reader, buf + pos, len - pos, &used, &frame, &flen);
		pos += used;
		if (r < 0) {
			ret = session_fail(s, r, true, now_ms, "malformed frame (length 0)");
			break;
		}
		if (r == 0 && s->state == HL_SESSION_R_MSG1 && s->reader->need > MSG1_MAX) {
			/* No need to wait for the rest of a first frame that cannot
			 * be message 1. */
			ret = session_fail(s, HL_ETOOBIG, false, now_ms,
					"a first frame of %zu bytes is no handshake message 1",
					s->reader->need);
			break;
		}
		if (r == 0)
			break;
		ret = on_frame(s, frame, flen, now_ms);
		if (ret < 0)
			break;
		if (s->state != HL_SESSION_CLOSED && queued(s) > HL_SESSION_HARD_CAP) {
			ret = session_fail(s, HL_ETOOBIG, false, now_ms,
					"peer is not reading: %zu bytes queued", queued(s));
			break;
		}
	}
	assert_session_exit(s);
	return ret;
}

uint64_t hl_session_deadline(const hl_session *s)
{
	const struct hl_session_params *p = &s->params;
	if (s->state == HL_SESSION_CLOSED)
		return UINT64_MAX;
	if (s->state != HL_SESSION_OPEN)
		return s->created_ms + p->handshake_timeout_ms;
	uint64_t idle = s->last_send_ms < s->last_recv_ms ? s->last_send_ms : s->last_recv_ms;
	uint64_t ping = idle + p->keepalive_ms;
	if (s->ping_outstanding && ping < s->ping_sent_ms + p->keepalive_ms)
		ping = s->ping_sent_ms + p->keepalive_ms;
	uint64_t t = s->last_recv_ms + p->keepalive_timeout_ms;
	if (ping < t)
		t = ping;
	if (p->max_age_ms && s->opened_ms + p->max_age_ms < t)
		t = s->opened_ms + p->max_age_ms;
	return t;
}

void hl_session_tick(hl_session *s, uint64_t now)
{
	const struct hl_session_params *p = &s->params;
	assert_session_state(s);
	if (s->state == HL_SESSION_CLOSED)
		goto out;
	if (s->state != HL_SESSION_OPEN) {
		if (now >= s->created_ms + p->handshake_timeout_ms)
			session_fail(s, HL_ETIMEOUT, false, now, "handshake timed out after %u ms (%s)",
				  p->handshake_timeout_ms, hl_session_state_name(s->state));
		goto out;
	}
	if (p->max_age_ms && now >= s->opened_ms + p->max_age_ms) {
		uint8_t body[1 + HL_CLOSE_TEXT_MAX];
		size_t blen = 0;
		if (hl_close_encode(HL_CLOSE_EXPIRED, "session too old", body, sizeof(body),
				    &blen) == 0)
			(void)send_packet(s, HL_PKT_CLOSE, body, blen, now);
		session_fail(s, HL_ETIMEOUT, false, now, "session expired after %llu ms",
			  (unsigned long long)p->max_age_ms);
		goto out;
	}
	if (now >= s->last_recv_ms + p->keepalive_timeout_ms) {
		session_fail(s, HL_ETIMEOUT, false, now, "keepalive timeout: nothing received for %llu ms",
			  (unsigned long long)(now - s->last_recv_ms));
		goto out;
	}
	bool idle = now >= s->last_send_ms + p->keepalive_ms ||
		    now >= s->last_recv_ms + p->keepalive_ms;
	bool fresh_ping = s->ping_outstanding && now < s->ping_sent_ms + p->keepalive_ms;
	if (idle && !fresh_ping) {
		int ret = send_ping(s, now);
		if (ret < 0)
			session_fail(s, ret, false, now, "sending PING: %s", hl_strerror(ret));
	}
out:
	assert_session_exit(s);
}

static int session_send(hl_session *s, uint8_t type, const uint8_t *body, size_t len, uint64_t now_ms,
		     bool urgent);

int hl_session_send(hl_session *s, uint8_t type, const uint8_t *body, size_t len, uint64_t now_ms)
{
	return session_send(s, type, body, len, now_ms, false);
}

int hl_session_send_urgent(hl_session *s, uint8_t type, const uint8_t *body, size_t len,
			uint64_t now_ms)
{
	if (len > HL_SESSION_URGENT_MAX)
		return HL_ETOOBIG;
	return session_send(s, type, body, len, now_ms, true);
}

static int session_send(hl_session *s, uint8_t type, const uint8_t *body, size_t len, uint64_t now_ms,
		     bool urgent)
{
	int ret;
	assert_session_state(s);
	if (s->state != HL_SESSION_OPEN) {
		ret = HL_ESTATE;
		goto out;
	}
	if (hl_packet_classify(type) == HL_PKTCLASS_SESSION) {
		ret = HL_EINVAL;
		goto out;
	}
	if (len > HL_PACKET_BODY_MAX) {
		ret = HL_ETOOBIG;
		goto out;
	}
	if (queued(s) >= (urgent ? HL_SESSION_HARD_CAP / 2 : HL_SESSION_HIGH_WATER)) {
		s->want_writable = true;
		ret = -EAGAIN;
		goto out;
	}
	ret = send_packet(s, type, body, len, now_ms);
	if (ret < 0)
		session_fail(s, ret, false, now_ms, "sending record type 0x%02x: %s", type,
			  hl_strerror(ret));
out:
	assert_session_exit(s);
	return ret;
}

bool hl_session_writable(const hl_session *s)
{
	return s->state == HL_SESSION_OPEN && queued(s) < HL_SESSION_HIGH_WATER;
}

size_t hl_session_queued(const hl_session *s)
{
	return queued(s);
}

void hl_session_notify_writable(hl_session *s)
{
	if (s->state == HL_SESSION_OPEN)
		s->want_writable = true;
}

bool hl_session_writable_or_notify(hl_session *s)
{
	if (hl_session_writable(s))
		return true;
	/* The same promise as a refused send: on_writable comes when it drains. */
	if (s->state == HL_SESSION_OPEN)
		s->want_writable = true;
	return false;
}

void hl_session_close(hl_session *s, uint8_t reason, const char *text)
{
	assert_session_state(s);
	if (s->state == HL_SESSION_CLOSED)
		goto out;
	if (s->state == HL_SESSION_OPEN && reason != 0) {
		uint8_t body[1 + HL_CLOSE_TEXT_MAX];
		size_t blen = 0;
		if (hl_close_encode(reason, text, body, sizeof(body), &blen) == 0)
			(void)send_packet(s, HL_PKT_CLOSE, body, blen, s->last_send_ms);
	}
	s->error = 0;
	snprintf(s->error_text, sizeof(s->error_text), "closed here: %s",
		 reason ? hl_close_reason_str(reason) : "connection lost");
	close_internal(s);
out:
	assert_session_exit(s);
}

size_t hl_session_output(const hl_session *s, const uint8_t **p)
{
	/* A responder has queued nothing yet: no buffer (and no pointer
	 * arithmetic on NULL). */
	*p = s->out ? s->out + s->out_head : NULL;
	return s->out_len - s->out_head;
}

void hl_session_output_taken(hl_session *s, size_t n)
{
	assert(n <= s->out_len - s->out_head);
	if (n > s->out_len - s->out_head)
		n = s->out_len - s->out_head;
	s->out_head += n;
	s->inflight += n;
	if (s->out_head == s->out_len)
		s->out_head = s->out_len = 0;
}

void hl_session_output_done(hl_session *s, size_t n)
{
	assert(n <= s->inflight);
	s->inflight -= n <= s->inflight ? n : s->inflight;
	if (s->want_writable && s->state == HL_SESSION_OPEN && queued(s) < HL_SESSION_LOW_WATER) {
		s->want_writable = false;
		if (s->ops.on_writable)
			s->ops.on_writable(s->user, s);
	}
}

enum hl_session_state hl_session_state(const hl_session *s)
{
	return s->state;
}

enum hl_session_role hl_session_role(const hl_session *s)
{
	return s->role;
}

const char *hl_session_state_name(enum hl_session_state st)
{
	switch (st) {
	case HL_SESSION_I_MSG2:
		return "waiting for handshake message 2";
	case HL_SESSION_I_HELLO:
		return "waiting for the responder's HELLO";
	case HL_SESSION_R_MSG1:
		return "waiting for handshake message 1";
	case HL_SESSION_R_HELLO:
		return "waiting for the initiator's HELLO";
	case HL_SESSION_OPEN:
		return "open";
	case HL_SESSION_CLOSED:
		return "closed";
	}
	return "?";
}

const uint8_t *hl_session_remote_key(const hl_session *s)
{
	return s->remote_known ? s->remote_key : NULL;
}

bool hl_session_msg1_stamp(const hl_session *s, struct hl_stamp *out)
{
	if (s->stamped)
		*out = s->stamp;
	return s->stamped;
}

bool hl_session_supersedes(const hl_session *newer, const hl_session *older)
{
	if (!newer->stamped)
		return false;
	return !older->stamped || hl_stamp_cmp(&older->stamp, &newer->stamp) < 0;
}

int64_t hl_session_rtt_ms(const hl_session *s)
{
	return s->rtt_ms;
}

uint64_t hl_session_opened_at(const hl_session *s)
{
	return s->confirmed ? s->opened_ms : 0;
}

uint32_t hl_session_peer_keepalive_ms(const hl_session *s)
{
	return s->peer_keepalive_ms;
}

uint8_t hl_session_peer_flags(const hl_session *s)
{
	return s->peer_flags;
}

uint8_t hl_session_own_flags(const hl_session *s)
{
	return s->params.hello_flags;
}

int hl_session_error(const hl_session *s)
{
	return s->error;
}

const char *hl_session_error_text(const hl_session *s)
{
	return s->error_text;
}

uint8_t hl_session_peer_close_reason(const hl_session *s)
{
	return s->peer_close_reason;
}

bool hl_session_keep_new(bool old_by_us, bool new_by_us,
		      const uint8_t our_key[static HL_SESSION_KEYLEN],
		      const uint8_t peer_key[static HL_SESSION_KEYLEN])
{
	/* Rule 1: the same station dialed both: the newer one wins. */
	if (old_by_us == new_by_us)
		return true;
	/* Rule 2: keep the one dialed by the station with the lower NoiseKey. */
	bool we_are_lower = memcmp(our_key, peer_key, HL_SESSION_KEYLEN) < 0;
	return new_by_us == we_are_lower;
}
