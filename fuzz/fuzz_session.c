/* fuzz_session.c — the session state machine (session/session.c), two sessions back to
 * back, driven by a program the fuzzer writes: deliver some bytes either
 * way, corrupt them, inject arbitrary frames, let time pass, send packets,
 * close.  Oracles: the state machine's invariants after every step
 * (hl_session_validate_invariants, which works in this NDEBUG build), deadlines
 * that move forward, callbacks only in the states that allow them, and
 * packets arriving intact when nothing was corrupted.
 *
 * Message 1 carries a timestamp (docs/protocol.md section 2.1) unless the
 * first byte of the input has its top bit set (then an empty payload, as
 * from a station that predates timestamps); the responder keeps a window
 * and a cache of seen ephemeral keys, made fresh for every input, and the
 * callbacks check what the timestamp rule promises.
 *
 * Randomness (ephemeral keys, PING values) comes from a deterministic
 * generator reset for every input, so each input replays exactly. */
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "session/session.h"
#include "util/err.h"
#include "wire/packet.h"

#define CHECK(x) do { if (!(x)) abort(); } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* ---- deterministic randombytes ---- */

static uint8_t rng_seed[randombytes_SEEDBYTES];
static uint64_t rng_counter;

static const char *rng_name(void)
{
	return "fuzz";
}

static void rng_buf(void *buf, size_t n)
{
	uint8_t seed[randombytes_SEEDBYTES];
	memcpy(seed, rng_seed, sizeof(seed));
	memcpy(seed, &rng_counter, sizeof(rng_counter));
	rng_counter++;
	randombytes_buf_deterministic(buf, n, seed);
}

static uint32_t rng_random(void)
{
	uint32_t v;
	rng_buf(&v, sizeof(v));
	return v;
}

static struct randombytes_implementation rng_impl = {
	.implementation_name = rng_name,
	.random = rng_random,
	.stir = NULL,
	.uniform = NULL,
	.buf = rng_buf,
	.close = NULL,
};

/* ---- the two sides ---- */

struct side {
	hl_session *l;
	int confirmed, closed, packets;
	size_t inflight;          /* taken, not yet reported done */
	uint8_t sent_type;        /* the other side's last packet, for the intact check */
	uint16_t sent_len;
};

static bool tampered;
static struct side sides[2];
static struct hl_replay_window window;
static bool stamped;                /* the initiator's message 1 has a timestamp */
static int accepted;

static struct hl_replay_window *cb_authorize(void *user, hl_session *l, const uint8_t key[static 32])
{
	(void)user;
	(void)key;
	CHECK(hl_session_state(l) == HL_SESSION_R_MSG1);
	return &window;
}

static bool cb_admit(void *user, hl_session *l)
{
	(void)user;
	CHECK(hl_session_state(l) == HL_SESSION_R_MSG1);
	return true;
}

static void cb_accepted(void *user, hl_session *l)
{
	struct hl_stamp st;
	(void)user;
	CHECK(hl_session_state(l) == HL_SESSION_R_MSG1);
	/* One responder session: at most one message 1 is ever accepted, and an
	 * accepted timestamp is the window's greatest. */
	CHECK(++accepted == 1);
	if (hl_session_msg1_stamp(l, &st))
		CHECK(window.any && hl_stamp_cmp(&st, &window.greatest) == 0);
	else
		CHECK(tampered || !stamped);
}

static void cb_confirmed(void *user, hl_session *l)
{
	struct side *s = user;
	CHECK(hl_session_state(l) == HL_SESSION_OPEN);
	s->confirmed++;
	CHECK(s->confirmed == 1);
}

static void cb_record(void *user, hl_session *l, uint8_t type, const uint8_t *body, size_t len)
{
	struct side *s = user;
	struct side *other = s == &sides[0] ? &sides[1] : &sides[0];
	CHECK(hl_session_state(l) == HL_SESSION_OPEN);
	CHECK(hl_packet_classify(type) == HL_PKTCLASS_APP);
	CHECK(len <= HL_PACKET_BODY_MAX);
	if (!tampered) {
		/* Bodies are filled with the type byte: intact means all of them. */
		CHECK(type == other->sent_type && len == other->sent_len);
		for (size_t i = 0; i < len; i++)
			CHECK(body[i] == type);
	}
	s->packets++;
}

static void cb_writable(void *user, hl_session *l)
{
	(void)user;
	CHECK(hl_session_writable(l));
}

static void cb_closed(void *user, hl_session *l)
{
	struct side *s = user;
	CHECK(hl_session_state(l) == HL_SESSION_CLOSED);
	s->closed++;
	CHECK(s->closed == 1);
}

static const struct hl_session_ops ops = {
	.authorize = cb_authorize,
	.on_confirmed = cb_confirmed,
	.on_packet = cb_record,
	.on_writable = cb_writable,
	.on_closed = cb_closed,
	.admit = cb_admit,
	.on_accepted = cb_accepted,
};

static void check(const struct side *s, uint64_t now)
{
	CHECK(hl_session_validate_invariants(s->l) == 0);
	uint64_t d = hl_session_deadline(s->l);
	CHECK(d == UINT64_MAX || hl_session_state(s->l) != HL_SESSION_CLOSED);
	(void)now;
}

/* Moves up to N output bytes of FROM to TO, flipping bit FLIP (if >= 0). */
static void deliver(struct side *from, struct side *to, size_t n, long flip, uint64_t now)
{
	const uint8_t *p = NULL;
	size_t avail = hl_session_output(from->l, &p);
	if (n > avail)
		n = avail;
	if (n == 0)
		return;
	uint8_t *copy = malloc(n);
	memcpy(copy, p, n);
	hl_session_output_taken(from->l, n);
	hl_session_output_done(from->l, n);
	if (flip >= 0) {
		copy[((size_t)flip / 8) % n] ^= (uint8_t)(1u << (flip % 8));
		tampered = true;
	}
	hl_session_recv(to->l, copy, n, now);
	free(copy);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static bool inited;
	static hl_signer *ikey, *rkey;
	static uint8_t *body;
	struct hl_session_params params = { .keepalive_ms = 1000, .keepalive_timeout_ms = 3000,
					 .handshake_timeout_ms = 5000, .max_age_ms = 20000,
					 .hello_flags = HL_HELLO_FLAG_CREDIT };
	uint8_t key[32];
	struct hl_stamp stamp, last = { { 0 } };
	uint64_t now = 1;
	size_t pos = 0;

	if (!inited) {
		randombytes_set_implementation(&rng_impl);
		if (sodium_init() < 0)
			abort();
		memset(key, 0x41, 32);
		if (hl_signer_from_raw_for_tests(&ikey, key, key) < 0)
			abort();
		memset(key, 0x52, 32);
		if (hl_signer_from_raw_for_tests(&rkey, key, key) < 0)
			abort();
		body = malloc(HL_PACKET_BODY_MAX);
		inited = true;
	}
	memset(rng_seed, 0x5a, sizeof(rng_seed));
	rng_counter = 0;
	tampered = false;
	accepted = 0;
	memset(sides, 0, sizeof(sides));
	memset(&window, 0, sizeof(window));
	stamped = !(size > 0 && (data[0] & 0x80));
	hl_stamp_next(&last, 1700000000000000000ull, &stamp);
	params.msg1_stamp = stamped ? &stamp : NULL;
	params.seen = hl_replay_cache_new(64);
	CHECK(hl_session_new(&sides[0].l, HL_SESSION_INITIATOR, ikey, hl_signer_noise_pub(rkey), &params,
			  &ops, &sides[0], now) == 0);
	CHECK(hl_session_new(&sides[1].l, HL_SESSION_RESPONDER, rkey, NULL, &params, &ops, &sides[1],
			  now) == 0);

#define NEXT() (pos < size ? data[pos++] : 0)
	while (pos < size) {
		uint8_t op = NEXT();
		struct side *a = &sides[op & 1], *b = &sides[!(op & 1)];
		switch ((op >> 1) % 8) {
		case 0:   /* deliver some bytes */
			deliver(a, b, (size_t)NEXT() * 4 + 1, -1, now);
			break;
		case 1:   /* deliver everything both ways until quiet */
			for (int k = 0; k < 8; k++) {
				deliver(a, b, SIZE_MAX, -1, now);
				deliver(b, a, SIZE_MAX, -1, now);
			}
			break;
		case 2: { /* deliver with one bit flipped */
			long hi = NEXT();
			long flip = hi << 8 | NEXT();
			deliver(a, b, SIZE_MAX, flip, now);
			break;
		}
		case 3: { /* arbitrary bytes straight in */
			size_t n = NEXT();
			if (n > size - pos)
				n = size - pos;
			hl_session_recv(b->l, data + pos, n, now);
			pos += n;
			tampered = true;
			break;
		}
		case 4: { /* time passes */
			now += (uint64_t)NEXT() * 50;
			hl_session_tick(a->l, now);
			hl_session_tick(b->l, now);
			break;
		}
		case 5: { /* an application packet */
			uint8_t type = NEXT();
			size_t hi = NEXT();
			size_t len = (hi << 8 | NEXT()) % (HL_PACKET_BODY_MAX + 2);
			if (len <= HL_PACKET_BODY_MAX)
				memset(body, type, len);
			int ret = hl_session_send(a->l, type, body, len, now);
			if (ret == 0) {
				CHECK(hl_session_state(a->l) == HL_SESSION_OPEN);
				a->sent_type = type;
				a->sent_len = (uint16_t)len;
				/* One packet in flight at a time keeps the intact check exact. */
				deliver(a, b, SIZE_MAX, -1, now);
			}
			break;
		}
		case 6:   /* close on purpose */
			hl_session_close(a->l, NEXT() % 7, "fuzz");
			break;
		case 7: { /* take output without writing it, or finish writing */
			const uint8_t *p = NULL;
			size_t n = hl_session_output(a->l, &p);
			if (NEXT() & 1) {
				hl_session_output_taken(a->l, n);
				a->inflight += n;
			} else {
				hl_session_output_done(a->l, a->inflight);
				a->inflight = 0;
			}
			break;
		}
		}
		check(a, now);
		check(b, now);
	}
#undef NEXT
	hl_session_free(sides[0].l);
	hl_session_free(sides[1].l);
	hl_replay_cache_free(params.seen);
	return 0;
}
