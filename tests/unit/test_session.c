/* test_session.c — the session state machine (session/session.c) driven without
 * sockets: two sessions wired back to back with a simulated clock, and a "raw"
 * peer built straight from the Noise API (crypto/noise.h) that can send
 * whatever a misbehaving station might. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "crypto/noise.h"
#include "session/backoff.h"
#include "session/session.h"
#include "util/err.h"
#include "crypto/secpool.h"
#include "util/mem.h"
#include "wire/frame.h"
#include "wire/packet.h"

#include "test_signer_fixture.h"

/* ---- harness ---- */

/* A station's static key: its signer (test_signer_fixture.h) and public
 * half. */
struct keypair {
	hl_signer *sg;
	uint8_t pub[32];
};

static void keypair(struct keypair *k)
{
	k->sg = test_signer(NULL);
	memcpy(k->pub, hl_signer_noise_pub(k->sg), 32);
}

struct side {
	hl_session *l;
	bool accept;             /* what authorize answers */
	int authorized, confirmed, closed, writable, packets, admitted, accepted;
	uint8_t auth_key[32];
	uint8_t rec_type;
	uint8_t *rec_body;
	size_t rec_len;
	bool refuse_admit;       /* what admit answers, negated */
	bool close_in_accepted;
	struct hl_replay_window own_window;
	struct hl_replay_window *window;   /* the key's, shared by sessions; NULL: own_window */
};

static struct hl_replay_window *cb_authorize(void *user, hl_session *l, const uint8_t key[static 32])
{
	struct side *s = user;
	(void)l;
	s->authorized++;
	memcpy(s->auth_key, key, 32);
	if (!s->accept)
		return NULL;
	return s->window ? s->window : &s->own_window;
}

static bool cb_admit(void *user, hl_session *l)
{
	struct side *s = user;
	assert_int_equal(hl_session_state(l), HL_SESSION_R_MSG1);
	s->admitted++;
	return !s->refuse_admit;
}

static void cb_accepted(void *user, hl_session *l)
{
	struct side *s = user;
	assert_int_equal(hl_session_state(l), HL_SESSION_R_MSG1);
	s->accepted++;
	if (s->close_in_accepted)
		hl_session_close(l, HL_CLOSE_SHUTDOWN, NULL);
}

static void cb_confirmed(void *user, hl_session *l)
{
	struct side *s = user;
	assert_int_equal(hl_session_state(l), HL_SESSION_OPEN);
	s->confirmed++;
}

static void cb_record(void *user, hl_session *l, uint8_t type, const uint8_t *body, size_t len)
{
	struct side *s = user;
	(void)l;
	s->packets++;
	s->rec_type = type;
	free(s->rec_body);
	s->rec_body = xmalloc(len + 1);
	memcpy(s->rec_body, body, len);
	s->rec_len = len;
}

static void cb_writable(void *user, hl_session *l)
{
	struct side *s = user;
	assert_true(hl_session_writable(l));
	s->writable++;
}

static void cb_closed(void *user, hl_session *l)
{
	struct side *s = user;
	assert_int_equal(hl_session_state(l), HL_SESSION_CLOSED);
	s->closed++;
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

static const struct hl_session_params params = {
	.keepalive_ms = 1000,
	.keepalive_timeout_ms = 3000,
	.handshake_timeout_ms = 5000,
	.max_age_ms = 0,
	.hello_flags = HL_HELLO_FLAG_CREDIT,
};

/* Moves everything FROM has queued into TO; returns the byte count. */
static size_t move(struct side *from, struct side *to, uint64_t now)
{
	const uint8_t *p = NULL;
	assert_int_equal(hl_session_validate_invariants(from->l), 0);
	if (to)
		assert_int_equal(hl_session_validate_invariants(to->l), 0);
	size_t n = hl_session_output(from->l, &p);
	if (n == 0)
		return 0;
	uint8_t *copy = xmalloc(n);
	memcpy(copy, p, n);
	hl_session_output_taken(from->l, n);
	hl_session_output_done(from->l, n);
	if (to)
		hl_session_recv(to->l, copy, n, now);
	free(copy);
	return n;
}

static void pump(struct side *a, struct side *b, uint64_t now)
{
	while (move(a, b, now) + move(b, a, now) > 0)
		;
}

struct pair {
	struct keypair ik, rk;
	struct side i, r;
};

static void pair_new(struct pair *p, uint64_t now)
{
	memset(p, 0, sizeof(*p));
	keypair(&p->ik);
	keypair(&p->rk);
	p->r.accept = true;
	assert_int_equal(hl_session_new(&p->i.l, HL_SESSION_INITIATOR, p->ik.sg, p->rk.pub, &params,
				     &ops, &p->i, now), 0);
	assert_int_equal(hl_session_new(&p->r.l, HL_SESSION_RESPONDER, p->rk.sg, NULL, &params, &ops,
				     &p->r, now), 0);
}

static void side_free(struct side *s)
{
	hl_session_free(s->l);
	free(s->rec_body);
	s->l = NULL;
	s->rec_body = NULL;
}

static void pair_free(struct pair *p)
{
	side_free(&p->i);
	side_free(&p->r);
}

/* ---- a raw peer, from the Noise API ---- */

struct raw {
	hl_noise_hs *hs;
	hl_cipher_state send, recv;
	struct hl_frame_reader *reader;
};

static void raw_frame_into(struct side *to, const uint8_t *msg, size_t len, uint64_t now)
{
	uint8_t *f = xmalloc(len + 2);
	size_t n = 0;
	assert_int_equal(hl_frame_write(msg, len, f, len + 2, &n), 0);
	hl_session_recv(to->l, f, n, now);
	free(f);
}

/* A raw initiator runs the handshake against responder session R (with
 * PROLOGUE); returns 0 once split, or the responder did not answer. */
static int raw_initiate(struct raw *w, const struct keypair *me, const uint8_t rs[32],
			const char *prologue, struct side *r, uint64_t now)
{
	uint8_t msg[256];
	size_t n = 0;
	memset(w, 0, sizeof(*w));
	w->reader = xmalloc(sizeof(*w->reader));
	hl_frame_reader_init(w->reader);
	assert_int_equal(hl_noise_hs_new(&w->hs, HL_SESSION_PROTOCOL, true), 0);
	assert_int_equal(hl_noise_hs_set_prologue(w->hs, (const uint8_t *)prologue,
						  strlen(prologue)), 0);
	assert_int_equal(hl_noise_hs_set_s(w->hs, me->sg), 0);
	assert_int_equal(hl_noise_hs_set_rs(w->hs, rs), 0);
	assert_int_equal(hl_noise_hs_start(w->hs), 0);
	assert_int_equal(hl_noise_hs_write(w->hs, NULL, 0, msg, sizeof(msg), &n), 0);
	assert_int_equal(n, 96);
	raw_frame_into(r, msg, n, now);
	const uint8_t *p = NULL;
	size_t out = hl_session_output(r->l, &p);
	if (out == 0)
		return -1;
	assert_int_equal(out, 2 + 48);
	assert_int_equal(p[0], 0);
	assert_int_equal(p[1], 48);
	uint8_t payload[64];
	size_t plen = 0;
	assert_int_equal(hl_noise_hs_read(w->hs, p + 2, 48, payload, sizeof(payload), &plen), 0);
	assert_int_equal(plen, 0);
	hl_session_output_taken(r->l, out);
	hl_session_output_done(r->l, out);
	assert_int_equal(hl_noise_hs_split(w->hs, &w->send, &w->recv), 0);
	return 0;
}

static void raw_free(struct raw *w)
{
	hl_noise_hs_free(w->hs);
	hl_cs_clear(&w->send);
	hl_cs_clear(&w->recv);
	free(w->reader);
}

/* Encrypts PT as one transport message and frames it into BUF at *OFF. */
static void raw_seal(struct raw *w, const uint8_t *pt, size_t ptlen, uint8_t *buf, size_t *off)
{
	size_t n = 0;
	assert_int_equal(hl_cs_encrypt(&w->send, NULL, 0, pt, ptlen, buf + *off + 2, 65535, &n), 0);
	assert_int_equal(hl_frame_header(n, buf + *off), 0);
	*off += n + 2;
}

static void raw_send(struct raw *w, struct side *to, uint8_t version, uint8_t type,
		     const void *body, size_t blen, uint64_t now)
{
	uint8_t *pt = xmalloc(blen + 2), *buf = xmalloc(blen + 2 + 16 + 2);
	size_t off = 0;
	pt[0] = version;
	pt[1] = type;
	if (blen)
		memcpy(pt + 2, body, blen);
	raw_seal(w, pt, blen + 2, buf, &off);
	hl_session_recv(to->l, buf, off, now);
	free(pt);
	free(buf);
}

/* Decrypts the next packet the session sent; returns its type (-1: none).
 * BODY (if not NULL) gets up to 256 bytes of it. */
static int raw_recv(struct raw *w, struct side *from, uint8_t *body, size_t *blen)
{
	const uint8_t *p = NULL;
	size_t n = hl_session_output(from->l, &p);
	size_t used = 0, flen = 0;
	const uint8_t *frame = NULL;
	int ret = hl_frame_read(w->reader, p, n, &used, &frame, &flen);
	if (ret != 1)
		return -1;
	uint8_t pt[65535];
	size_t ptlen = 0;
	assert_int_equal(hl_cs_decrypt(&w->recv, NULL, 0, frame, flen, pt, sizeof(pt), &ptlen), 0);
	hl_session_output_taken(from->l, used);
	hl_session_output_done(from->l, used);
	assert_true(ptlen >= 2);
	assert_int_equal(pt[0], 1);
	if (body) {
		*blen = ptlen - 2 < 256 ? ptlen - 2 : 256;
		memcpy(body, pt + 2, *blen);
	}
	return pt[1];
}

static const uint8_t hello_body[6] = { 1, 1, 0, 0, 0x03, 0xe8 };

/* ---- tests ---- */

static void test_handshake_confirms_both(void **state)
{
	(void)state;
	struct pair p;
	pair_new(&p, 1000);
	assert_int_equal(hl_session_state(p.i.l), HL_SESSION_I_MSG2);
	assert_int_equal(hl_session_state(p.r.l), HL_SESSION_R_MSG1);
	assert_null(hl_session_remote_key(p.r.l));
	assert_memory_equal(hl_session_remote_key(p.i.l), p.rk.pub, 32);

	/* Message 1 alone: the responder answers but confirms nothing. */
	move(&p.i, &p.r, 1000);
	assert_int_equal(p.r.authorized, 1);
	assert_memory_equal(p.r.auth_key, p.ik.pub, 32);
	assert_int_equal(hl_session_state(p.r.l), HL_SESSION_R_HELLO);
	assert_int_equal(p.r.confirmed, 0);
	/* Message 2: the initiator splits and sends HELLO, still unconfirmed. */
	move(&p.r, &p.i, 1001);
	assert_int_equal(hl_session_state(p.i.l), HL_SESSION_I_HELLO);
	assert_int_equal(p.i.confirmed, 0);
	/* HELLO: the responder confirms, replies; then the initiator. */
	move(&p.i, &p.r, 1002);
	assert_int_equal(p.r.confirmed, 1);
	assert_int_equal(hl_session_state(p.r.l), HL_SESSION_OPEN);
	move(&p.r, &p.i, 1003);
	assert_int_equal(p.i.confirmed, 1);
	assert_int_equal(hl_session_state(p.i.l), HL_SESSION_OPEN);
	assert_int_equal(hl_session_peer_keepalive_ms(p.i.l), 1000);
	assert_int_equal(hl_session_peer_keepalive_ms(p.r.l), 1000);
	assert_int_equal(hl_session_peer_flags(p.i.l), HL_HELLO_FLAG_CREDIT);
	assert_int_equal(hl_session_peer_flags(p.r.l), HL_HELLO_FLAG_CREDIT);
	assert_int_equal(hl_session_opened_at(p.r.l), 1002);
	assert_int_equal(hl_session_opened_at(p.i.l), 1003);
	/* Each side sent a PING on opening; the PONGs give round-trip times. */
	assert_int_equal(hl_session_rtt_ms(p.r.l), -1);
	pump(&p.i, &p.r, 1010);
	assert_int_equal(hl_session_rtt_ms(p.r.l), 8);    /* PING at 1002, PONG at 1010 */
	assert_int_equal(hl_session_rtt_ms(p.i.l), 7);    /* PING at 1003 */
	assert_int_equal(p.i.closed + p.r.closed, 0);
	pair_free(&p);
}

/* Both sides with their signers (as the daemon has): the handshake's
 * secure slots all come back, after success and after a message 1 that
 * fails to authenticate (the initiator pinned another key). */
static void test_secure_slots_given_back(void **state)
{
	struct keypair ik, rk, other;
	struct side i, r;
	size_t base = hl_secmem_in_use();
	(void)state;

	keypair(&ik);
	keypair(&rk);
	keypair(&other);
	for (int wrong = 0; wrong < 2; wrong++) {
		memset(&i, 0, sizeof(i));
		memset(&r, 0, sizeof(r));
		r.accept = true;
		assert_int_equal(hl_session_new(&i.l, HL_SESSION_INITIATOR, ik.sg,
					     wrong ? other.pub : rk.pub, &params, &ops, &i, 0), 0);
		assert_int_equal(hl_session_new(&r.l, HL_SESSION_RESPONDER, rk.sg, NULL, &params, &ops,
					     &r, 0), 0);
		/* A handshake state each. */
		assert_int_equal(hl_secmem_in_use(), base + 2);
		pump(&i, &r, 1);
		if (!wrong) {
			assert_int_equal(i.confirmed + r.confirmed, 2);
			assert_memory_equal(r.auth_key, ik.pub, 32);
			/* Handshake states given back; one slot of keys each. */
			assert_int_equal(hl_secmem_in_use(), base + 2);
		} else {
			/* Message 1 fails to authenticate: no reply. */
			assert_int_equal(r.authorized, 0);
			assert_int_equal(r.accepted, 0);
			assert_int_equal(r.closed, 1);
			assert_int_equal(hl_session_state(r.l), HL_SESSION_CLOSED);
			assert_int_equal(hl_session_error(r.l), HL_EAUTH);
			assert_int_equal(i.confirmed + r.confirmed, 0);
			assert_int_equal(hl_secmem_in_use(), base + 1);  /* the initiator's */
		}
		side_free(&i);
		side_free(&r);
		assert_int_equal(hl_secmem_in_use(), base);
	}
}

static void test_unpinned_initiator_gets_no_reply(void **state)
{
	(void)state;
	struct pair p;
	pair_new(&p, 0);
	p.r.accept = false;
	move(&p.i, &p.r, 0);
	const uint8_t *out = NULL;
	assert_int_equal(hl_session_output(p.r.l, &out), 0);
	assert_int_equal(hl_session_state(p.r.l), HL_SESSION_CLOSED);
	assert_int_equal(hl_session_error(p.r.l), HL_EPEER);
	assert_int_equal(p.r.closed, 1);
	/* The key is there to log. */
	assert_memory_equal(hl_session_remote_key(p.r.l), p.ik.pub, 32);
	/* Later bytes are ignored. */
	assert_int_equal(hl_session_recv(p.r.l, (const uint8_t *)"\x00\x01x", 3, 1), 0);
	assert_int_equal(p.r.closed, 1);
	pair_free(&p);
}

static void test_close_from_on_accepted(void **state)
{
	(void)state;
	struct pair p;
	pair_new(&p, 0);
	p.r.close_in_accepted = true;
	move(&p.i, &p.r, 0);
	const uint8_t *out = NULL;
	assert_int_equal(p.r.accepted, 1);
	assert_int_equal(hl_session_state(p.r.l), HL_SESSION_CLOSED);
	assert_int_equal(hl_session_output(p.r.l, &out), 0);
	assert_int_equal(p.r.closed, 0);   /* a local close: no callback */
	pair_free(&p);
}

static void test_wrong_responder_key_or_prologue(void **state)
{
	(void)state;
	struct keypair ik, rk, other;
	struct side r = { .accept = true };
	struct raw w;
	keypair(&ik);
	keypair(&rk);
	keypair(&other);

	/* The initiator thinks the responder's key is OTHER. */
	assert_int_equal(hl_session_new(&r.l, HL_SESSION_RESPONDER, rk.sg, NULL, &params, &ops, &r, 0),
			 0);
	assert_int_equal(raw_initiate(&w, &ik, other.pub, HL_SESSION_PROLOGUE, &r, 0), -1);
	assert_int_equal(hl_session_state(r.l), HL_SESSION_CLOSED);
	assert_int_equal(hl_session_error(r.l), HL_EAUTH);
	assert_int_equal(r.authorized, 0);
	raw_free(&w);
	side_free(&r);

	/* Another prologue: message 1 does not authenticate. */
	r = (struct side){ .accept = true };
	assert_int_equal(hl_session_new(&r.l, HL_SESSION_RESPONDER, rk.sg, NULL, &params, &ops, &r, 0),
			 0);
	assert_int_equal(raw_initiate(&w, &ik, rk.pub, "hotline/2", &r, 0), -1);
	assert_int_equal(hl_session_error(r.l), HL_EAUTH);
	raw_free(&w);
	side_free(&r);

	/* And the right prologue works, as a control. */
	r = (struct side){ .accept = true };
	assert_int_equal(hl_session_new(&r.l, HL_SESSION_RESPONDER, rk.sg, NULL, &params, &ops, &r, 0),
			 0);
	assert_int_equal(raw_initiate(&w, &ik, rk.pub, HL_SESSION_PROLOGUE, &r, 0), 0);
	assert_int_equal(hl_session_state(r.l), HL_SESSION_R_HELLO);
	raw_free(&w);
	side_free(&r);
}

/* After a key rotation (docs/rotation.md section 4) a responder given its
 * previous static key (params.local_prev) answers a message 1 made to it,
 * and to its current key as before; without it, one made to the old key
 * fails as any wrong key does; a key it never held fails either way. */
static void test_responder_answers_its_previous_key(void **state)
{
	(void)state;
	struct keypair ik, old, cur, other;
	struct raw w;
	keypair(&ik);
	keypair(&old);
	keypair(&cur);
	keypair(&other);
	struct hl_session_params pp = params;
	pp.local_prev = old.sg;
	const uint8_t *to[] = { old.pub, cur.pub, other.pub };
	const int want[] = { 0, 0, -1 };
	for (int i = 0; i < 3; i++) {
		struct side r = { .accept = true };
		assert_int_equal(hl_session_new(&r.l, HL_SESSION_RESPONDER, cur.sg, NULL, &pp, &ops, &r,
					     0), 0);
		assert_int_equal(raw_initiate(&w, &ik, to[i], HL_SESSION_PROLOGUE, &r, 0), want[i]);
		assert_int_equal(hl_session_state(r.l), want[i] ? HL_SESSION_CLOSED : HL_SESSION_R_HELLO);
		assert_int_equal(r.authorized, want[i] ? 0 : 1);
		raw_free(&w);
		side_free(&r);
	}
	/* without the previous key: the old key is any wrong key */
	struct side r = { .accept = true };
	assert_int_equal(hl_session_new(&r.l, HL_SESSION_RESPONDER, cur.sg, NULL, &params, &ops, &r, 0),
			 0);
	assert_int_equal(raw_initiate(&w, &ik, old.pub, HL_SESSION_PROLOGUE, &r, 0), -1);
	assert_int_equal(hl_session_error(r.l), HL_EAUTH);
	raw_free(&w);
	side_free(&r);
}

/* ---- message 1's timestamp (docs/protocol.md section 2.1) ---- */

/* Message 1 from KEY to RS with PAYLOAD, framed into BUF (*N bytes). */
static void msg1_with(const struct keypair *me, const uint8_t rs[32], const uint8_t *payload,
		      size_t plen, uint8_t *buf, size_t cap, size_t *n)
{
	hl_noise_hs *hs = NULL;
	size_t len = 0;
	assert_int_equal(hl_noise_hs_new(&hs, HL_SESSION_PROTOCOL, true), 0);
	assert_int_equal(hl_noise_hs_set_prologue(hs, (const uint8_t *)HL_SESSION_PROLOGUE,
						  strlen(HL_SESSION_PROLOGUE)), 0);
	assert_int_equal(hl_noise_hs_set_s(hs, me->sg), 0);
	assert_int_equal(hl_noise_hs_set_rs(hs, rs), 0);
	assert_int_equal(hl_noise_hs_start(hs), 0);
	assert_int_equal(hl_noise_hs_write(hs, payload, plen, buf + 2, cap - 2, &len), 0);
	assert_int_equal(hl_frame_header(len, buf), 0);
	*n = len + 2;
	hl_noise_hs_free(hs);
}

static void stamped_msg1(const struct keypair *me, const uint8_t rs[32], uint64_t unix_s,
			 uint8_t *buf, size_t cap, size_t *n)
{
	struct hl_stamp st;
	hl_stamp_from_unix_ns(unix_s * 1000000000u, &st);
	msg1_with(me, rs, st.b, sizeof(st.b), buf, cap, n);
}

/* A responder session on R with WINDOW (the key's, shared) and SEEN fed MSG;
 * returns its state afterwards. */
static enum hl_session_state responder_reads(struct side *r, const struct keypair *rk,
					  struct hl_replay_window *window, hl_replay_cache *seen,
					  const uint8_t *msg, size_t n)
{
	struct hl_session_params rp = params;
	bool accept = r->accept, refuse = r->refuse_admit;
	*r = (struct side){ .accept = accept, .refuse_admit = refuse, .window = window };
	rp.seen = seen;
	assert_int_equal(hl_session_new(&r->l, HL_SESSION_RESPONDER, rk->sg, NULL, &rp, &ops, r, 0), 0);
	hl_session_recv(r->l, msg, n, 1);
	assert_int_equal(hl_session_validate_invariants(r->l), 0);
	return hl_session_state(r->l);
}

/* R refused its message 1 with ERR and answered nothing. */
static void assert_refused(struct side *r, int err)
{
	const uint8_t *out = NULL;
	assert_int_equal(hl_session_state(r->l), HL_SESSION_CLOSED);
	assert_int_equal(hl_session_error(r->l), err);
	assert_int_equal(hl_session_output(r->l, &out), 0);
	assert_int_equal(r->accepted, 0);
}

static void test_initiator_sends_timestamp(void **state)
{
	(void)state;
	struct keypair ik, rk;
	struct side i = { 0 }, r = { .accept = true };
	struct hl_session_params ip = params;
	struct hl_stamp sent, got, last = { { 0 } };
	keypair(&ik);
	keypair(&rk);
	hl_stamp_next(&last, 1700000000ull * 1000000000u, &sent);
	ip.msg1_stamp = &sent;
	assert_int_equal(hl_session_new(&i.l, HL_SESSION_INITIATOR, ik.sg, rk.pub, &ip, &ops, &i, 0), 0);
	const uint8_t *m1 = NULL;
	assert_int_equal(hl_session_output(i.l, &m1), 2 + 96 + HL_TAI64N_LEN);
	assert_int_equal(hl_session_new(&r.l, HL_SESSION_RESPONDER, rk.sg, NULL, &params, &ops, &r, 0),
			 0);
	assert_false(hl_session_msg1_stamp(r.l, &got));
	pump(&i, &r, 1);
	assert_int_equal(i.confirmed + r.confirmed, 2);
	assert_true(hl_session_msg1_stamp(r.l, &got));
	assert_memory_equal(got.b, sent.b, HL_TAI64N_LEN);
	assert_true(r.own_window.any);
	assert_memory_equal(r.own_window.greatest.b, sent.b, HL_TAI64N_LEN);
	side_free(&i);
	side_free(&r);
}

static void test_timestamp_rule(void **state)
{
	(void)state;
	struct keypair ik, rk;
	struct hl_replay_window w = { 0 };
	struct side r1 = { .accept = true }, r2 = { .accept = true }, r3 = { .accept = true };
	struct side plain = { .accept = true }, plain2 = { .accept = true };
	uint8_t m[512], m2[512];
	size_t n = 0, n2 = 0;
	keypair(&ik);
	keypair(&rk);

	/* The first, at T = 1000 s: accepted, and the window moves to it. */
	stamped_msg1(&ik, rk.pub, 1000, m, sizeof(m), &n);
	assert_int_equal(responder_reads(&r1, &rk, &w, NULL, m, n), HL_SESSION_R_HELLO);
	assert_int_equal(r1.accepted, 1);
	struct hl_stamp t1 = w.greatest;
	assert_true(w.any);
	/* The same bytes again (a replay the cache did not catch): refused,
	 * without a reply, after the key was asked about. */
	assert_int_equal(responder_reads(&r2, &rk, &w, NULL, m, n), HL_SESSION_CLOSED);
	assert_refused(&r2, HL_EREPLAY);
	assert_int_equal(r2.authorized, 1);
	assert_memory_equal(w.greatest.b, t1.b, HL_TAI64N_LEN);
	side_free(&r2);
	/* Another message (a fresh ephemeral key) with the same timestamp: the
	 * greatest is not "newer", so it is refused too; an older one also. */
	for (uint64_t t = 1000; t >= 999; t--) {
		stamped_msg1(&ik, rk.pub, t, m2, sizeof(m2), &n2);
		assert_int_equal(responder_reads(&r2, &rk, &w, NULL, m2, n2), HL_SESSION_CLOSED);
		assert_refused(&r2, HL_EREPLAY);
		assert_true(strstr(hl_session_error_text(r2.l), "is not newer than the last accepted"));
		side_free(&r2);
	}
	/* A newer one is accepted and supersedes the first, not the reverse. */
	stamped_msg1(&ik, rk.pub, 1001, m2, sizeof(m2), &n2);
	assert_int_equal(responder_reads(&r3, &rk, &w, NULL, m2, n2), HL_SESSION_R_HELLO);
	assert_true(hl_stamp_cmp(&w.greatest, &t1) > 0);
	assert_true(hl_session_supersedes(r3.l, r1.l));
	assert_false(hl_session_supersedes(r1.l, r3.l));
	/* An empty payload (a station from before timestamps): accepted, the
	 * window untouched; it supersedes nothing, and a timestamped one
	 * supersedes it. */
	struct hl_stamp before = w.greatest, none;
	msg1_with(&ik, rk.pub, NULL, 0, m2, sizeof(m2), &n2);
	assert_int_equal(responder_reads(&plain, &rk, &w, NULL, m2, n2), HL_SESSION_R_HELLO);
	msg1_with(&ik, rk.pub, NULL, 0, m2, sizeof(m2), &n2);
	assert_int_equal(responder_reads(&plain2, &rk, &w, NULL, m2, n2), HL_SESSION_R_HELLO);
	assert_false(hl_session_msg1_stamp(plain.l, &none));
	assert_memory_equal(w.greatest.b, before.b, HL_TAI64N_LEN);
	assert_false(hl_session_supersedes(plain.l, r3.l));
	assert_false(hl_session_supersedes(plain.l, plain2.l));
	assert_true(hl_session_supersedes(r3.l, plain.l));
	/* The same empty-payload bytes again are accepted too (nothing tells
	 * them apart): that is why they never supersede. */
	side_free(&plain2);
	assert_int_equal(responder_reads(&plain2, &rk, &w, NULL, m2, n2), HL_SESSION_R_HELLO);
	side_free(&plain2);
	side_free(&plain);
	side_free(&r3);
	side_free(&r1);
}

static void test_seen_ephemeral_refused_before_any_work(void **state)
{
	(void)state;
	struct keypair ik, rk, mallory;
	struct hl_replay_window w = { 0 };
	struct side r = { .accept = true };
	hl_replay_cache *seen = hl_replay_cache_new(64), *fresh = hl_replay_cache_new(64);
	uint8_t m[512], forged[512];
	size_t n = 0;
	keypair(&ik);
	keypair(&rk);
	keypair(&mallory);

	stamped_msg1(&ik, rk.pub, 2000, m, sizeof(m), &n);
	assert_int_equal(responder_reads(&r, &rk, &w, seen, m, n), HL_SESSION_R_HELLO);
	assert_true(hl_replay_cache_seen(seen, m + 2));
	side_free(&r);
	/* The replay: refused before admit, before authorize, before any DH. */
	assert_int_equal(responder_reads(&r, &rk, &w, seen, m, n), HL_SESSION_CLOSED);
	assert_refused(&r, HL_EREPLAY);
	assert_int_equal(r.admitted + r.authorized, 0);
	side_free(&r);
	/* A copy with one payload byte changed fails to authenticate and does
	 * not mark its ephemeral key: the real message still gets through. */
	memcpy(forged, m, n);
	forged[n - 1] ^= 1;
	assert_int_equal(responder_reads(&r, &rk, &w, fresh, forged, n), HL_SESSION_CLOSED);
	assert_refused(&r, HL_EAUTH);
	assert_false(hl_replay_cache_seen(fresh, m + 2));
	side_free(&r);
	struct hl_replay_window w2 = { 0 };
	assert_int_equal(responder_reads(&r, &rk, &w2, fresh, m, n), HL_SESSION_R_HELLO);
	side_free(&r);
	/* An unpinned key is asked about once, before the ss DH; its replay
	 * is then refused without asking again. */
	stamped_msg1(&mallory, rk.pub, 2000, m, sizeof(m), &n);
	r.accept = false;
	assert_int_equal(responder_reads(&r, &rk, &w, seen, m, n), HL_SESSION_CLOSED);
	assert_refused(&r, HL_EPEER);
	assert_int_equal(r.authorized, 1);
	assert_memory_equal(hl_session_remote_key(r.l), mallory.pub, 32);
	side_free(&r);
	assert_int_equal(responder_reads(&r, &rk, &w, seen, m, n), HL_SESSION_CLOSED);
	assert_refused(&r, HL_EREPLAY);
	assert_int_equal(r.authorized, 0);
	side_free(&r);
	hl_replay_cache_free(seen);
	hl_replay_cache_free(fresh);
}

static void test_msg1_cheap_checks_and_payloads(void **state)
{
	(void)state;
	struct keypair ik, rk;
	struct hl_replay_window w = { 0 };
	struct side r = { .accept = true };
	uint8_t m[512], pl[300];
	size_t n = 0;
	keypair(&ik);
	keypair(&rk);

	/* Over the budget: closed before any DH, the key never asked about. */
	stamped_msg1(&ik, rk.pub, 3000, m, sizeof(m), &n);
	r.refuse_admit = true;
	assert_int_equal(responder_reads(&r, &rk, &w, NULL, m, n), HL_SESSION_CLOSED);
	assert_refused(&r, HL_EBUSY);
	assert_int_equal(r.admitted, 1);
	assert_int_equal(r.authorized, 0);
	assert_false(w.any);
	side_free(&r);
	r.refuse_admit = false;
	/* Too short to be message 1: nothing asked. */
	assert_int_equal(responder_reads(&r, &rk, &w, NULL, m, 2 + 95), HL_SESSION_R_MSG1);
	side_free(&r);
	m[1] = 95;
	assert_int_equal(responder_reads(&r, &rk, &w, NULL, m, 2 + 95), HL_SESSION_CLOSED);
	assert_refused(&r, HL_ETRUNC);
	assert_int_equal(r.admitted, 0);
	side_free(&r);
	/* A header that announces more than message 1 may be: closed on the
	 * header alone. */
	const uint8_t big[2] = { (96 + HL_MSG1_PAYLOAD_MAX + 1) >> 8,
				 (96 + HL_MSG1_PAYLOAD_MAX + 1) & 0xff };
	assert_int_equal(responder_reads(&r, &rk, &w, NULL, big, 2), HL_SESSION_CLOSED);
	assert_refused(&r, HL_ETOOBIG);
	assert_int_equal(r.admitted, 0);
	side_free(&r);

	/* Payloads that are not a timestamp: refused (after the DHs that
	 * decrypt them; they come from the key's holder). */
	struct { size_t len; uint8_t first, nano0; int err; } bad[] = {
		{ 11, 0x40, 0, HL_ETRUNC },      /* short */
		{ 12, 0xc0, 0, HL_EINVAL },      /* a reserved TAI64 label */
		{ 12, 0x40, 0x3c, HL_EINVAL },   /* nanoseconds 0x3c000000 >= 10^9 */
	};
	for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
		memset(pl, 0, sizeof(pl));
		pl[0] = bad[k].first;
		pl[8] = bad[k].nano0;
		msg1_with(&ik, rk.pub, pl, bad[k].len, m, sizeof(m), &n);
		assert_int_equal(responder_reads(&r, &rk, &w, NULL, m, n), HL_SESSION_CLOSED);
		assert_refused(&r, bad[k].err);
		side_free(&r);
	}
	assert_false(w.any);
	/* A timestamp and as much after it as allowed (ignored): accepted. */
	struct hl_stamp st;
	hl_stamp_from_unix_ns(3001ull * 1000000000u, &st);
	memset(pl, 0x55, sizeof(pl));
	memcpy(pl, st.b, HL_TAI64N_LEN);
	msg1_with(&ik, rk.pub, pl, HL_MSG1_PAYLOAD_MAX, m, sizeof(m), &n);
	assert_int_equal(responder_reads(&r, &rk, &w, NULL, m, n), HL_SESSION_R_HELLO);
	assert_memory_equal(w.greatest.b, st.b, HL_TAI64N_LEN);
	side_free(&r);
}

static void test_stamp_codec(void **state)
{
	(void)state;
	struct hl_stamp s, last = { { 0 } }, a, b;
	bool has = true;
	static const uint8_t epoch[12] = { 0x40, 0, 0, 0, 0, 0, 0, 0x0a, 0, 0, 0, 0 };

	hl_stamp_from_unix_ns(0, &s);
	assert_memory_equal(s.b, epoch, 12);
	/* Nanoseconds are rounded down to a multiple of 2^24. */
	hl_stamp_from_unix_ns(1500000123ull, &s);
	assert_int_equal(hl_stamp_unix_ns(&s), 1000000000ull + 29ull * (1u << 24));
	/* A peer's absurd timestamp saturates rather than wraps. */
	memset(s.b, 0xff, 8);
	s.b[0] = 0x7f;
	assert_int_equal(hl_stamp_unix_ns(&s), UINT64_MAX);
	/* The next stamp for a peer: now, or one nanosecond after the last. */
	hl_stamp_next(&last, 5000000000ull, &a);
	hl_stamp_next(&last, 5000000000ull, &b);
	assert_true(hl_stamp_cmp(&b, &a) > 0);
	assert_int_equal(hl_stamp_unix_ns(&b), hl_stamp_unix_ns(&a) + 1);
	hl_stamp_next(&last, 4000000000ull, &b);   /* the clock went back */
	assert_int_equal(hl_stamp_unix_ns(&b), hl_stamp_unix_ns(&a) + 2);
	/* ... carrying into the seconds. */
	hl_stamp_from_unix_ns(0, &last);
	last.b[8] = 0x3b;
	last.b[9] = 0x9a;
	last.b[10] = 0xc9;
	last.b[11] = 0xff;   /* 999999999 ns */
	hl_stamp_next(&last, 0, &b);
	assert_int_equal(hl_stamp_unix_ns(&b), 1000000000ull);
	/* Decoding: empty, a timestamp with more after it, and the bad ones. */
	assert_int_equal(hl_msg1_payload_decode(NULL, 0, &s, &has), 0);
	assert_false(has);
	uint8_t buf[HL_MSG1_PAYLOAD_MAX + 1];
	memset(buf, 0xaa, sizeof(buf));
	memcpy(buf, a.b, 12);
	assert_int_equal(hl_msg1_payload_decode(buf, 40, &s, &has), 0);
	assert_true(has);
	assert_int_equal(hl_stamp_cmp(&s, &a), 0);
	assert_int_equal(hl_msg1_payload_decode(buf, 11, &s, &has), HL_ETRUNC);
	assert_int_equal(hl_msg1_payload_decode(buf, sizeof(buf), &s, &has), HL_ETOOBIG);
	/* The window: newer only. */
	struct hl_replay_window w = { 0 };
	assert_int_equal(hl_replay_window_accept(&w, &a), 0);
	assert_int_equal(hl_replay_window_accept(&w, &a), HL_EREPLAY);
	assert_int_equal(hl_replay_window_accept(&w, &b), HL_EREPLAY);  /* 1 s < a */
	hl_stamp_next(&last, 9000000000ull, &b);
	assert_int_equal(hl_replay_window_accept(&w, &b), 0);
}

static void test_seen_cache_is_bounded(void **state)
{
	(void)state;
	hl_replay_cache *c = hl_replay_cache_new(64);
	uint8_t e[32] = { 0 }, first[32] = { 0 };
	assert_false(hl_replay_cache_seen(c, first));
	hl_replay_cache_add(c, first);
	assert_true(hl_replay_cache_seen(c, first));
	hl_replay_cache_add(c, first);   /* again: no second entry */
	/* Thousands more push it out, and every recent one is still there. */
	for (uint32_t k = 1; k <= 4096; k++) {
		memcpy(e, &k, sizeof(k));
		hl_replay_cache_add(c, e);
		assert_true(hl_replay_cache_seen(c, e));
	}
	assert_false(hl_replay_cache_seen(c, first));
	hl_replay_cache_free(c);
	hl_replay_cache_free(NULL);
}

static void test_replayed_message1_never_confirms(void **state)
{
	(void)state;
	struct pair p;
	struct side replay = { .accept = true };
	pair_new(&p, 0);
	const uint8_t *m1 = NULL;
	size_t n = hl_session_output(p.i.l, &m1);
	assert_int_equal(n, 98);
	assert_int_equal(hl_session_new(&replay.l, HL_SESSION_RESPONDER, p.rk.sg, NULL, &params, &ops,
				     &replay, 0), 0);
	hl_session_recv(replay.l, m1, n, 0);
	assert_int_equal(hl_session_state(replay.l), HL_SESSION_R_HELLO);
	/* The replayer cannot read message 2 nor produce a HELLO: time passes. */
	assert_int_equal(hl_session_deadline(replay.l), 5000);
	hl_session_tick(replay.l, 4999);
	assert_int_equal(hl_session_state(replay.l), HL_SESSION_R_HELLO);
	hl_session_tick(replay.l, 5000);
	assert_int_equal(hl_session_state(replay.l), HL_SESSION_CLOSED);
	assert_int_equal(hl_session_error(replay.l), HL_ETIMEOUT);
	assert_int_equal(replay.confirmed, 0);
	assert_int_equal(replay.closed, 1);
	assert_int_equal(hl_session_deadline(replay.l), UINT64_MAX);
	/* The genuine session is unaffected. */
	pump(&p.i, &p.r, 10);
	assert_int_equal(p.i.confirmed + p.r.confirmed, 2);
	side_free(&replay);
	pair_free(&p);
}

static void test_first_packet_must_be_hello(void **state)
{
	(void)state;
	struct keypair ik, rk;
	struct side r = { .accept = true };
	struct raw w;
	keypair(&ik);
	keypair(&rk);
	const uint8_t ping[8] = { 1, 2, 3, 4, 5, 6, 7, 8 };

	assert_int_equal(hl_session_new(&r.l, HL_SESSION_RESPONDER, rk.sg, NULL, &params, &ops, &r, 0),
			 0);
	assert_int_equal(raw_initiate(&w, &ik, rk.pub, HL_SESSION_PROLOGUE, &r, 0), 0);
	raw_send(&w, &r, 1, HL_PKT_PING, ping, sizeof(ping), 1);
	assert_int_equal(hl_session_state(r.l), HL_SESSION_CLOSED);
	assert_int_equal(r.confirmed, 0);
	assert_int_equal(hl_session_error(r.l), HL_EINVAL);
	const uint8_t *out = NULL;
	assert_int_equal(hl_session_output(r.l, &out), 0);   /* not confirmed: no CLOSE */
	raw_free(&w);
	side_free(&r);

	/* A HELLO whose versions exclude 1. */
	r = (struct side){ .accept = true };
	assert_int_equal(hl_session_new(&r.l, HL_SESSION_RESPONDER, rk.sg, NULL, &params, &ops, &r, 0),
			 0);
	assert_int_equal(raw_initiate(&w, &ik, rk.pub, HL_SESSION_PROLOGUE, &r, 0), 0);
	const uint8_t v2[6] = { 2, 3, 0, 0, 0, 1 };
	raw_send(&w, &r, 1, HL_PKT_HELLO, v2, sizeof(v2), 1);
	assert_int_equal(hl_session_error(r.l), HL_EUNSUPP);
	assert_int_equal(r.confirmed, 0);
	raw_free(&w);
	side_free(&r);

	/* A short HELLO. */
	r = (struct side){ .accept = true };
	assert_int_equal(hl_session_new(&r.l, HL_SESSION_RESPONDER, rk.sg, NULL, &params, &ops, &r, 0),
			 0);
	assert_int_equal(raw_initiate(&w, &ik, rk.pub, HL_SESSION_PROLOGUE, &r, 0), 0);
	raw_send(&w, &r, 1, HL_PKT_HELLO, hello_body, 5, 1);
	assert_int_equal(hl_session_error(r.l), HL_EINVAL);
	raw_free(&w);
	side_free(&r);
}

/* An open responder session and a raw initiator talking to it. */
static void open_raw(struct side *r, struct raw *w, uint64_t now)
{
	struct keypair ik, rk;
	keypair(&ik);
	keypair(&rk);
	*r = (struct side){ .accept = true };
	assert_int_equal(hl_session_new(&r->l, HL_SESSION_RESPONDER, rk.sg, NULL, &params, &ops, r,
				     now), 0);
	assert_int_equal(raw_initiate(w, &ik, rk.pub, HL_SESSION_PROLOGUE, r, now), 0);
	raw_send(w, r, 1, HL_PKT_HELLO, hello_body, sizeof(hello_body), now);
	assert_int_equal(r->confirmed, 1);
	uint8_t body[256];
	size_t blen = 0;
	assert_int_equal(raw_recv(w, r, body, &blen), HL_PKT_HELLO);
	assert_int_equal(blen, HL_HELLO_LEN);
	assert_int_equal(body[0], 1);
	assert_int_equal(body[1], 1);
	assert_int_equal(body[6], params.hello_flags);
	/* the raw side's 6-byte HELLO, as from a station without flags */
	assert_int_equal(hl_session_peer_flags(r->l), 0);
	assert_int_equal(hl_session_own_flags(r->l), params.hello_flags);
	assert_int_equal(raw_recv(w, r, body, &blen), HL_PKT_PING);
	assert_int_equal(raw_recv(w, r, NULL, NULL), -1);
}

static void test_ping_pong_and_bad_packets(void **state)
{
	(void)state;
	struct side r;
	struct raw w;
	uint8_t body[256];
	size_t blen = 0;
	const uint8_t value[8] = { 9, 8, 7, 6, 5, 4, 3, 2 };

	open_raw(&r, &w, 0);
	raw_send(&w, &r, 1, HL_PKT_PING, value, 8, 1);
	assert_int_equal(raw_recv(&w, &r, body, &blen), HL_PKT_PONG);
	assert_int_equal(blen, 8);
	assert_memory_equal(body, value, 8);
	/* A PONG that answers nothing is ignored. */
	raw_send(&w, &r, 1, HL_PKT_PONG, value, 8, 2);
	assert_int_equal(hl_session_state(r.l), HL_SESSION_OPEN);
	assert_int_equal(hl_session_rtt_ms(r.l), -1);
	/* Optional unknown types are ignored; application types delivered. */
	raw_send(&w, &r, 1, 0x55, "x", 1, 3);
	raw_send(&w, &r, 1, 0x07, NULL, 0, 3);
	assert_int_equal(hl_session_state(r.l), HL_SESSION_OPEN);
	assert_int_equal(r.packets, 0);
	raw_send(&w, &r, 1, 0x10, "note", 4, 3);
	assert_int_equal(r.packets, 1);
	assert_int_equal(r.rec_type, 0x10);
	assert_int_equal(r.rec_len, 4);
	assert_memory_equal(r.rec_body, "note", 4);
	/* A PING of 7 bytes is a protocol error: CLOSE(4), then closed. */
	raw_send(&w, &r, 1, HL_PKT_PING, value, 7, 4);
	assert_int_equal(hl_session_state(r.l), HL_SESSION_CLOSED);
	assert_int_equal(r.closed, 1);
	assert_int_equal(raw_recv(&w, &r, body, &blen), HL_PKT_CLOSE);
	assert_int_equal(body[0], HL_CLOSE_PROTOCOL);
	assert_non_null(memmem(body + 1, blen - 1, "PING", 4));
	raw_free(&w);
	side_free(&r);

	/* A critical unknown type closes. */
	open_raw(&r, &w, 0);
	raw_send(&w, &r, 1, 0x80, NULL, 0, 1);
	assert_int_equal(hl_session_error(r.l), HL_EUNSUPP);
	assert_int_equal(raw_recv(&w, &r, body, &blen), HL_PKT_CLOSE);
	raw_free(&w);
	side_free(&r);

	/* Another packet version closes. */
	open_raw(&r, &w, 0);
	raw_send(&w, &r, 2, HL_PKT_PING, value, 8, 1);
	assert_int_equal(hl_session_error(r.l), HL_EUNSUPP);
	assert_int_equal(raw_recv(&w, &r, body, &blen), HL_PKT_CLOSE);
	raw_free(&w);
	side_free(&r);

	/* A second HELLO closes. */
	open_raw(&r, &w, 0);
	raw_send(&w, &r, 1, HL_PKT_HELLO, hello_body, 6, 1);
	assert_int_equal(hl_session_state(r.l), HL_SESSION_CLOSED);
	raw_free(&w);
	side_free(&r);

	/* A one-byte packet (no type) closes. */
	open_raw(&r, &w, 0);
	uint8_t buf[64];
	size_t off = 0;
	raw_seal(&w, (const uint8_t *)"\x01", 1, buf, &off);
	hl_session_recv(r.l, buf, off, 1);
	assert_int_equal(hl_session_error(r.l), HL_ETRUNC);
	raw_free(&w);
	side_free(&r);
}

static void test_peer_close_text_is_sanitised(void **state)
{
	(void)state;
	struct side r;
	struct raw w;
	open_raw(&r, &w, 0);
	const char body[] = "\x03" "bye\x1b[31m red\x07\nnext";
	raw_send(&w, &r, 1, HL_PKT_CLOSE, body, sizeof(body) - 1, 1);
	assert_int_equal(hl_session_state(r.l), HL_SESSION_CLOSED);
	assert_int_equal(r.closed, 1);
	assert_int_equal(hl_session_error(r.l), 0);
	assert_int_equal(hl_session_peer_close_reason(r.l), HL_CLOSE_REMOVED);
	const char *t = hl_session_error_text(r.l);
	assert_non_null(strstr(t, "peer removed"));
	assert_non_null(strstr(t, "bye red"));
	assert_null(strchr(t, '\x1b'));
	assert_null(strchr(t, '\n'));
	assert_null(strchr(t, '\x07'));
	const uint8_t *out = NULL;
	assert_int_equal(hl_session_output(r.l, &out), 0);   /* no CLOSE back */
	raw_free(&w);
	side_free(&r);

	/* A CLOSE with 201 bytes of text is malformed, and still closes. */
	open_raw(&r, &w, 0);
	uint8_t longc[202];
	memset(longc, 'a', sizeof(longc));
	longc[0] = 1;
	raw_send(&w, &r, 1, HL_PKT_CLOSE, longc, sizeof(longc), 1);
	assert_int_equal(hl_session_state(r.l), HL_SESSION_CLOSED);
	assert_int_equal(hl_session_error(r.l), HL_EINVAL);
	raw_free(&w);
	side_free(&r);
}

static void test_bad_mac_and_zero_frame(void **state)
{
	(void)state;
	struct pair p;
	pair_new(&p, 0);
	pump(&p.i, &p.r, 0);
	assert_int_equal(hl_session_send(p.i.l, 0x10, (const uint8_t *)"hello", 5, 1), 0);
	const uint8_t *out = NULL;
	size_t n = hl_session_output(p.i.l, &out);
	uint8_t *copy = xmalloc(n);
	memcpy(copy, out, n);
	hl_session_output_taken(p.i.l, n);
	hl_session_output_done(p.i.l, n);
	copy[n - 1] ^= 0x01;   /* the tag */
	hl_session_recv(p.r.l, copy, n, 1);
	assert_int_equal(hl_session_state(p.r.l), HL_SESSION_CLOSED);
	assert_int_equal(hl_session_error(p.r.l), HL_EAUTH);
	assert_int_equal(p.r.packets, 0);
	/* The responder told the initiator why (CLOSE, protocol error). */
	move(&p.r, &p.i, 2);
	assert_int_equal(hl_session_state(p.i.l), HL_SESSION_CLOSED);
	assert_int_equal(hl_session_peer_close_reason(p.i.l), HL_CLOSE_PROTOCOL);
	free(copy);
	pair_free(&p);

	pair_new(&p, 0);
	pump(&p.i, &p.r, 0);
	hl_session_recv(p.r.l, (const uint8_t *)"\x00\x00", 2, 1);
	assert_int_equal(hl_session_state(p.r.l), HL_SESSION_CLOSED);
	assert_int_equal(hl_session_error(p.r.l), HL_EINVAL);
	pair_free(&p);

	/* Garbage instead of message 2. */
	pair_new(&p, 0);
	move(&p.i, NULL, 0);
	uint8_t junk[50] = { 0, 48 };
	hl_session_recv(p.i.l, junk, sizeof(junk), 1);
	assert_int_equal(hl_session_state(p.i.l), HL_SESSION_CLOSED);
	assert_int_equal(p.i.closed, 1);
	pair_free(&p);
}

static void test_application_packets(void **state)
{
	(void)state;
	struct pair p;
	pair_new(&p, 0);
	assert_int_equal(hl_session_send(p.i.l, 0x10, (const uint8_t *)"x", 1, 0), HL_ESTATE);
	pump(&p.i, &p.r, 0);
	assert_int_equal(hl_session_send(p.i.l, HL_PKT_PING, (const uint8_t *)"12345678", 8, 0),
			 HL_EINVAL);
	uint8_t *big = xcalloc(1, HL_PACKET_BODY_MAX + 1);
	assert_int_equal(hl_session_send(p.i.l, 0x11, big, HL_PACKET_BODY_MAX + 1, 0), HL_ETOOBIG);
	big[0] = 0xab;
	big[HL_PACKET_BODY_MAX - 1] = 0xcd;
	assert_int_equal(hl_session_send(p.i.l, 0x11, big, HL_PACKET_BODY_MAX, 0), 0);
	pump(&p.i, &p.r, 0);
	assert_int_equal(p.r.packets, 1);
	assert_int_equal(p.r.rec_type, 0x11);
	assert_int_equal(p.r.rec_len, HL_PACKET_BODY_MAX);
	assert_memory_equal(p.r.rec_body, big, HL_PACKET_BODY_MAX);
	assert_int_equal(hl_session_send(p.r.l, 0x3f, NULL, 0, 0), 0);
	pump(&p.i, &p.r, 0);
	assert_int_equal(p.i.packets, 1);
	assert_int_equal(p.i.rec_type, 0x3f);
	assert_int_equal(p.i.rec_len, 0);
	free(big);
	pair_free(&p);
}

static void test_backpressure(void **state)
{
	(void)state;
	struct pair p;
	uint8_t *body = xcalloc(1, 60000);
	pair_new(&p, 0);
	pump(&p.i, &p.r, 0);
	int sent = 0, ret;
	while ((ret = hl_session_send(p.i.l, 0x10, body, 60000, 0)) == 0)
		sent++;
	assert_int_equal(ret, -EAGAIN);
	assert_int_equal(sent, (HL_SESSION_HIGH_WATER + 60017) / 60020);
	assert_false(hl_session_writable(p.i.l));
	/* A small urgent packet (a call's) still goes, a large one never. */
	assert_int_equal(hl_session_send_urgent(p.i.l, 0x30, body, 56, 0), 0);
	assert_int_equal(hl_session_send_urgent(p.i.l, 0x30, body, HL_SESSION_URGENT_MAX + 1, 0),
			 HL_ETOOBIG);
	sent++;
	/* Taken but not yet written still counts. */
	const uint8_t *out = NULL;
	size_t n = hl_session_output(p.i.l, &out);
	uint8_t *copy = xmalloc(n);
	memcpy(copy, out, n);
	hl_session_output_taken(p.i.l, n);
	assert_false(hl_session_writable(p.i.l));
	assert_int_equal(p.i.writable, 0);
	hl_session_output_done(p.i.l, n - HL_SESSION_LOW_WATER);
	assert_int_equal(p.i.writable, 0);              /* exactly at low water: not yet */
	hl_session_output_done(p.i.l, HL_SESSION_LOW_WATER);
	assert_int_equal(p.i.writable, 1);
	assert_true(hl_session_writable(p.i.l));
	hl_session_recv(p.r.l, copy, n, 0);
	assert_int_equal(p.r.packets, sent);
	free(copy);
	free(body);
	pair_free(&p);
}

static void test_peer_not_reading_is_dropped(void **state)
{
	(void)state;
	struct side r;
	struct raw w;
	open_raw(&r, &w, 0);
	/* PINGs whose PONGs the peer never reads: past the hard cap, closed. */
	size_t count = HL_SESSION_HARD_CAP / (2 + 2 + 8 + 16) + 10;
	size_t cap = count * (2 + 2 + 8 + 16), off = 0;
	uint8_t *buf = xmalloc(cap);
	const uint8_t ping[10] = { 1, HL_PKT_PING, 1, 2, 3, 4, 5, 6, 7, 8 };
	for (size_t i = 0; i < count; i++)
		raw_seal(&w, ping, sizeof(ping), buf, &off);
	hl_session_recv(r.l, buf, off, 1);
	assert_int_equal(hl_session_state(r.l), HL_SESSION_CLOSED);
	assert_int_equal(hl_session_error(r.l), HL_ETOOBIG);
	free(buf);
	raw_free(&w);
	side_free(&r);
}

static void test_keepalive(void **state)
{
	(void)state;
	struct pair p;
	pair_new(&p, 0);
	pump(&p.i, &p.r, 0);
	/* Traffic flowing: the session stays up through 60 simulated seconds. */
	uint64_t now = 0;
	for (int step = 0; step < 200 && now < 60000; step++) {
		uint64_t di = hl_session_deadline(p.i.l), dr = hl_session_deadline(p.r.l);
		uint64_t next = di < dr ? di : dr;
		assert_true(next > now);
		now = next;
		hl_session_tick(p.i.l, now);
		hl_session_tick(p.r.l, now);
		pump(&p.i, &p.r, now + 5);
	}
	assert_true(now >= 60000);
	assert_int_equal(hl_session_state(p.i.l), HL_SESSION_OPEN);
	assert_int_equal(hl_session_state(p.r.l), HL_SESSION_OPEN);
	assert_int_equal(hl_session_rtt_ms(p.i.l), 5);

	/* Now the wire goes silent: a PING at 1 s of quiet, dead at 3 s. */
	uint64_t quiet = now + 5;
	assert_true(hl_session_deadline(p.i.l) <= quiet + 1000);
	hl_session_tick(p.i.l, quiet + 2999);
	assert_int_equal(hl_session_state(p.i.l), HL_SESSION_OPEN);
	const uint8_t *out = NULL;
	assert_true(hl_session_output(p.i.l, &out) > 0);   /* a PING went out */
	move(&p.i, NULL, quiet + 2999);
	assert_int_equal(hl_session_deadline(p.i.l), quiet + 3000);
	hl_session_tick(p.i.l, quiet + 3000);
	assert_int_equal(hl_session_state(p.i.l), HL_SESSION_CLOSED);
	assert_int_equal(hl_session_error(p.i.l), HL_ETIMEOUT);
	assert_non_null(strstr(hl_session_error_text(p.i.l), "keepalive"));
	assert_int_equal(p.i.closed, 1);
	pair_free(&p);
}

static void test_handshake_timeout(void **state)
{
	(void)state;
	struct pair p;
	pair_new(&p, 100);
	assert_int_equal(hl_session_deadline(p.i.l), 5100);
	hl_session_tick(p.i.l, 5099);
	assert_int_equal(hl_session_state(p.i.l), HL_SESSION_I_MSG2);
	hl_session_tick(p.i.l, 5100);
	assert_int_equal(hl_session_state(p.i.l), HL_SESSION_CLOSED);
	assert_int_equal(hl_session_error(p.i.l), HL_ETIMEOUT);
	assert_int_equal(p.i.closed, 1);
	pair_free(&p);
}

static void test_local_close_and_expiry(void **state)
{
	(void)state;
	struct pair p;
	pair_new(&p, 0);
	pump(&p.i, &p.r, 0);
	hl_session_close(p.i.l, HL_CLOSE_SHUTDOWN, "going away");
	assert_int_equal(hl_session_state(p.i.l), HL_SESSION_CLOSED);
	assert_int_equal(p.i.closed, 0);
	hl_session_close(p.i.l, HL_CLOSE_SHUTDOWN, NULL);   /* twice is fine */
	move(&p.i, &p.r, 1);
	assert_int_equal(hl_session_state(p.r.l), HL_SESSION_CLOSED);
	assert_int_equal(hl_session_peer_close_reason(p.r.l), HL_CLOSE_SHUTDOWN);
	assert_non_null(strstr(hl_session_error_text(p.r.l), "going away"));
	assert_int_equal(hl_session_send(p.i.l, 0x10, NULL, 0, 2), HL_ESTATE);
	pair_free(&p);

	/* Reason 0: no CLOSE at all. */
	pair_new(&p, 0);
	pump(&p.i, &p.r, 0);
	hl_session_close(p.i.l, 0, NULL);
	const uint8_t *out = NULL;
	assert_int_equal(hl_session_output(p.i.l, &out), 0);
	pair_free(&p);

	/* Expiry. */
	struct hl_session_params short_life = params;
	short_life.max_age_ms = 2500;
	struct keypair ik, rk;
	struct side i = { 0 }, r = { .accept = true };
	keypair(&ik);
	keypair(&rk);
	assert_int_equal(hl_session_new(&i.l, HL_SESSION_INITIATOR, ik.sg, rk.pub, &short_life, &ops,
				     &i, 0), 0);
	assert_int_equal(hl_session_new(&r.l, HL_SESSION_RESPONDER, rk.sg, NULL, &params, &ops, &r, 0),
			 0);
	pump(&i, &r, 0);
	uint64_t now = 0;
	while (hl_session_state(i.l) == HL_SESSION_OPEN && now < 10000) {
		now = hl_session_deadline(i.l);
		hl_session_tick(i.l, now);
		hl_session_tick(r.l, now);
		pump(&i, &r, now);
	}
	assert_int_equal(now, 2500);
	assert_int_equal(hl_session_peer_close_reason(r.l), HL_CLOSE_EXPIRED);
	side_free(&i);
	side_free(&r);
}

static void test_pieces(void **state)
{
	(void)state;
	/* The whole handshake and a packet, delivered one byte at a time. */
	struct pair p;
	pair_new(&p, 0);
	for (int round = 0; round < 6; round++) {
		struct side *from = round % 2 ? &p.r : &p.i, *to = round % 2 ? &p.i : &p.r;
		const uint8_t *out = NULL;
		size_t n = hl_session_output(from->l, &out);
		uint8_t *copy = xmalloc(n + 1);
		memcpy(copy, out, n);
		hl_session_output_taken(from->l, n);
		hl_session_output_done(from->l, n);
		for (size_t k = 0; k < n; k++)
			hl_session_recv(to->l, copy + k, 1, 0);
		free(copy);
	}
	assert_int_equal(p.i.confirmed + p.r.confirmed, 2);
	pair_free(&p);
}

static void test_duplicate_rule(void **state)
{
	(void)state;
	uint8_t low[32], high[32];
	memset(low, 0x11, 32);
	memset(high, 0x11, 32);
	high[31] = 0x12;
	/* Rule 1: the same dialer: newer wins, whoever we are. */
	assert_true(hl_session_keep_new(true, true, low, high));
	assert_true(hl_session_keep_new(false, false, low, high));
	assert_true(hl_session_keep_new(true, true, high, low));
	/* Rule 2: keep what the lower key dialed. */
	assert_true(hl_session_keep_new(false, true, low, high));    /* we are low, new is ours */
	assert_false(hl_session_keep_new(true, false, low, high));   /* old is ours: keep it */
	assert_true(hl_session_keep_new(true, false, high, low));    /* they are low, new is theirs */
	assert_false(hl_session_keep_new(false, true, high, low));
	/* Both stations reach the same decision about the same two sessions:
	 * session X dialed by LOW, Y dialed by HIGH, in either order. */
	for (int order = 0; order < 2; order++) {
		bool x_first = order == 0;
		/* At LOW: X is "by us". */
		bool low_keeps_x = x_first ? !hl_session_keep_new(true, false, low, high)
					   : hl_session_keep_new(false, true, low, high);
		/* At HIGH: X is "by them"; HIGH may see them in the other order. */
		bool high_keeps_x = !x_first ? !hl_session_keep_new(false, true, high, low)
					     : hl_session_keep_new(true, false, high, low);
		assert_true(low_keeps_x);
		assert_true(high_keeps_x);
	}
}

static void test_backoff(void **state)
{
	(void)state;
	struct hl_backoff b;
	hl_backoff_reset(&b);
	/* RANDOM = 0: the low end, 0.75 x. */
	assert_int_equal(hl_backoff_next(&b, 0), 375);
	assert_int_equal(hl_backoff_next(&b, 0), 750);
	assert_int_equal(hl_backoff_next(&b, 0), 1500);
	hl_backoff_reset(&b);
	/* The top end, just under 1.25 x; the middle, 1 x. */
	assert_int_equal(hl_backoff_next(&b, UINT32_MAX), 624);
	assert_int_equal(hl_backoff_next(&b, 1u << 31), 1000);
	/* Doubling stops at 60 s. */
	uint32_t d = 0;
	for (int k = 0; k < 20; k++)
		d = hl_backoff_next(&b, 1u << 31);
	assert_int_equal(d, 60000);
	assert_int_equal(hl_backoff_next(&b, 0), 45000);
	assert_int_equal(hl_backoff_next(&b, UINT32_MAX), 74999);
	hl_backoff_reset(&b);
	assert_int_equal(hl_backoff_next(&b, 1u << 31), 500);
}

int main(void)
{
	if (sodium_init() < 0)
		return 1;
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_handshake_confirms_both),
		cmocka_unit_test(test_secure_slots_given_back),
		cmocka_unit_test(test_unpinned_initiator_gets_no_reply),
		cmocka_unit_test(test_close_from_on_accepted),
		cmocka_unit_test(test_wrong_responder_key_or_prologue),
		cmocka_unit_test(test_responder_answers_its_previous_key),
		cmocka_unit_test(test_replayed_message1_never_confirms),
		cmocka_unit_test(test_initiator_sends_timestamp),
		cmocka_unit_test(test_timestamp_rule),
		cmocka_unit_test(test_seen_ephemeral_refused_before_any_work),
		cmocka_unit_test(test_msg1_cheap_checks_and_payloads),
		cmocka_unit_test(test_stamp_codec),
		cmocka_unit_test(test_seen_cache_is_bounded),
		cmocka_unit_test(test_first_packet_must_be_hello),
		cmocka_unit_test(test_ping_pong_and_bad_packets),
		cmocka_unit_test(test_peer_close_text_is_sanitised),
		cmocka_unit_test(test_bad_mac_and_zero_frame),
		cmocka_unit_test(test_application_packets),
		cmocka_unit_test(test_backpressure),
		cmocka_unit_test(test_peer_not_reading_is_dropped),
		cmocka_unit_test(test_keepalive),
		cmocka_unit_test(test_handshake_timeout),
		cmocka_unit_test(test_local_close_and_expiry),
		cmocka_unit_test(test_pieces),
		cmocka_unit_test(test_duplicate_rule),
		cmocka_unit_test(test_backoff),
	};
	int failed = cmocka_run_group_tests(tests, NULL, NULL);
	test_signers_free();
	return failed;
}
