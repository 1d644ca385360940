/* tests/unit/test_rotation_engine.c — key rotation between two real
 * stores (docs/rotation.md): washington (A) rotates (deliver/rotate.c on
 * its store), and its items reach pyongyang's (B) delivery engine as ITEM
 * packets, the way a session or a bundle brings them.  B takes the
 * rotation and checks what follows with the new key; refuses, and
 * alarms, a rotation to keys A never committed to; refuses for now an
 * item signed with a key it cannot know yet (out of order) and takes it
 * once the rotation is in; sees a second rotation at the same position as
 * equivocation; ignores a replay.  On A's side, a process still holding
 * the old key cannot sign after the rotation (HL_EKEYS). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chain/queue.h"
#include "deliver/engine.h"
#include "deliver/rotate.h"
#include "deliver/send.h"
#include "msg/message.h"
#include "util/err.h"
#include "util/mem.h"
#include "wire/msgproto.h"
#include "wire/packet.h"

struct station {
	char dir[64];
	hl_store *st;
	hl_signer *id;
	hl_peer_conf peer;             /* the other one, as pinned here */
	int64_t peer_id;
};

static struct station A, B;
static struct hl_txn txn;          /* B's */
static hl_engine *eng;             /* B's, for A */
static unsigned ev_count[16];
static uint64_t ev_seq[16];
static uint8_t ev_id[16][32];

static void on_event(void *user, const char *peer, const struct hl_engine_evinfo *ev)
{
	(void)user;
	(void)peer;
	ev_count[ev->ev]++;
	ev_seq[ev->ev] = ev->seq;
	memcpy(ev_id[ev->ev], ev->id, 32);
}

static void station_up(struct station *s, const char *tag)
{
	snprintf(s->dir, sizeof(s->dir), "/tmp/hl-rotate-%s-XXXXXX", tag);
	assert_non_null(mkdtemp(s->dir));
	assert_int_equal(hl_store_open(s->dir, &s->st), 0);
	assert_int_equal(hl_signer_generate(&s->id), 0);
}

static void pin(struct station *s, const struct station *o, const char *name)
{
	memset(&s->peer, 0, sizeof(s->peer));
	snprintf(s->peer.name, sizeof(s->peer.name), "%s", name);
	memcpy(s->peer.noise_key, hl_signer_noise_pub(o->id), 32);
	memcpy(s->peer.signing_key, hl_signer_sign_pk(o->id), 32);
	s->peer.has_next = hl_signer_next_hash(o->id, s->peer.next_hash) == 0;
	hl_fingerprint_next(s->peer.noise_key, s->peer.signing_key, s->peer.next_hash,
			    s->peer.fingerprint);
	assert_int_equal(hl_store_peer(s->st, s->peer.signing_key, s->peer.noise_key, name,
				       &s->peer_id), 0);
}

static int setup(void **state)
{
	(void)state;
	if (sodium_init() < 0)
		return -1;
	station_up(&A, "a");
	station_up(&B, "b");
	pin(&A, &B, "pyongyang");
	pin(&B, &A, "washington");
	txn.store = B.st;
	struct hl_engine_env env = { .dir = B.dir, .txn = &txn, .me = B.id, .on_event = on_event };
	assert_int_equal(hl_engine_new(&eng, &env, &B.peer), 0);
	memset(ev_count, 0, sizeof(ev_count));
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	hl_engine_free(eng);
	for (struct station *s = &A; s; s = s == &A ? &B : NULL) {
		hl_store_close(s->st);
		hl_signer_free(s->id);
		char *cmd = xasprintf("rm -rf '%s'", s->dir);
		assert_int_equal(system(cmd), 0);
		free(cmd);
	}
	return 0;
}

/* A queues a text message to B signed by ME; returns its seq. */
static uint64_t a_message(const hl_signer *me, const char *text, int want)
{
	struct hl_outgoing o = { .precedence = HL_PREC_ROUTINE, .subject = text,
				 .body = (const uint8_t *)text, .body_len = strlen(text) };
	uint8_t id[HL_MSG_ID_LEN];
	char err[256];
	struct hl_chain_head h;
	assert_int_equal(hl_store_begin(A.st), 0);
	int ret = hl_msg_queue_text(A.st, me, &A.peer, &o, id, err, sizeof(err));
	if (ret != want)
		fail_msg("queue: %d, want %d (%s)", ret, want, err);
	if (ret == 0)
		assert_int_equal(hl_store_commit(A.st), 0);
	else
		hl_store_rollback(A.st);
	assert_int_equal(hl_store_chain_head(A.st, A.peer_id, HL_DIR_OUT, &h), 0);
	return h.seq;
}

/* A rotates: in memory (the identity file is crypto/signer.c's, tested
 * apart), then its chains. */
static void a_rotates(void)
{
	hl_signer *r = NULL;
	size_t n = 0;
	assert_int_equal(hl_signer_rotated_for_tests(A.id, 1767225600000ll, &r), 0);
	hl_signer_free(A.id);
	A.id = r;
	assert_int_equal(hl_store_begin(A.st), 0);
	assert_int_equal(hl_rotate_chains(A.st, A.id, NULL, HL_ROTATE_ROUTINE, &n), 0);
	assert_int_equal(hl_store_commit(A.st), 0);
	assert_int_equal(n, 1);
}

/* A's item at SEQ as an ITEM packet, into B's engine, committed. */
static void deliver(uint64_t seq)
{
	static uint8_t rec[HL_PACKET_BODY_MAX], itembuf[HL_ITEM_MAX];
	struct hl_item_row irow;
	struct hl_msg_row row;
	size_t len;
	char err[256];
	memset(&row, 0, sizeof(row));
	assert_int_equal(hl_send_item_packet(A.st, A.peer_id, seq, itembuf, rec, &len, &irow, &row,
					     err, sizeof(err)), 0);
	hl_msg_row_clear(&row);
	assert_int_equal(hl_engine_on_packet(eng, HL_PKT_ITEM, rec, len, 1000), 0);
	assert_int_equal(hl_txn_need(&txn), 0);
	assert_int_equal(hl_engine_precommit(eng, 1000), 0);
	assert_int_equal(hl_store_commit(B.st), 0);
	txn.open = false;
	hl_engine_postcommit(eng, 1000);
}

/* Raw bytes of an ITEM packet for item BUF (LEN), no content. */
static void deliver_raw(const uint8_t *buf, size_t len)
{
	static uint8_t rec[HL_ITEM_MAX + 2];
	rec[0] = (uint8_t)(len >> 8);
	rec[1] = (uint8_t)len;
	memcpy(rec + 2, buf, len);
	assert_int_equal(hl_engine_on_packet(eng, HL_PKT_ITEM, rec, len + 2, 1000), 0);
	assert_int_equal(hl_txn_need(&txn), 0);
	assert_int_equal(hl_engine_precommit(eng, 1000), 0);
	assert_int_equal(hl_store_commit(B.st), 0);
	txn.open = false;
	hl_engine_postcommit(eng, 1000);
}

/* What B holds at position SEQ of A's chain: -1 nothing, 0 a tombstone,
 * else the item's kind. */
static int b_holds(uint64_t seq)
{
	struct hl_item_row row;
	static uint8_t buf[HL_ITEM_MAX];
	int ret = hl_store_get_item(B.st, B.peer_id, HL_DIR_IN, seq, &row, buf, sizeof(buf));
	if (ret == HL_ENOTFOUND)
		return -1;
	assert_int_equal(ret, 0);
	return (int)row.kind;
}

/* A's item at SEQ, bytes into BUF. */
static size_t a_item(uint64_t seq, uint8_t *buf)
{
	struct hl_item_row row;
	assert_int_equal(hl_store_get_item(A.st, A.peer_id, HL_DIR_OUT, seq, &row, buf,
					   HL_ITEM_MAX), 0);
	return row.encoded_len;
}

/* Before, during and after: B follows A's rotation, its next message is
 * checked with the new key, its items still name A by its card's key. */
static void test_peer_takes_the_rotation(void **state)
{
	(void)state;
	uint8_t first_sign[32], buf[HL_ITEM_MAX];
	memcpy(first_sign, hl_signer_sign_pk(A.id), 32);
	uint64_t m1 = a_message(A.id, "before", 0);
	deliver(m1);
	assert_int_equal(b_holds(m1), HL_ITEM_MESSAGE);

	/* identity.key rotated, the chains not told yet (a crash between the
	 * two): nothing is signed with the new key before they are */
	hl_signer *early = NULL;
	assert_int_equal(hl_signer_rotated_for_tests(A.id, 1, &early), 0);
	a_message(early, "too soon", HL_EKEYS);
	hl_signer_free(early);

	a_rotates();
	uint64_t r = m1 + 1;
	struct hl_item it;
	size_t len = a_item(r, buf);
	assert_int_equal(hl_item_decode(buf, len, &it), 0);
	assert_int_equal(it.kind, HL_ITEM_ROTATION);
	assert_memory_equal(it.author, first_sign, 32);   /* the name on the link */
	uint64_t m2 = a_message(A.id, "after", 0);
	len = a_item(m2, buf);
	assert_int_equal(hl_item_decode(buf, len, &it), 0);
	assert_memory_equal(it.author, first_sign, 32);
	assert_int_equal(crypto_sign_verify_detached(it.sig, buf, len - 64, hl_signer_sign_pk(A.id)),
			 0);

	/* out of order: the message after the rotation first — B cannot know
	 * its key yet: refused for now, nothing stored */
	deliver(m2);
	assert_int_equal(b_holds(m2), -1);
	assert_int_equal(ev_count[HL_EV_ARRIVED], 1);
	deliver(r);
	assert_int_equal(b_holds(r), HL_ITEM_ROTATION);
	assert_int_equal(ev_count[HL_EV_ROTATED], 1);
	assert_int_equal(ev_seq[HL_EV_ROTATED], r);
	uint8_t fp[32];
	hl_signer_fingerprint(A.id, fp);
	assert_memory_equal(ev_id[HL_EV_ROTATED], fp, 32);   /* the new fingerprint */
	deliver(m2);
	assert_int_equal(b_holds(m2), HL_ITEM_MESSAGE);
	assert_int_equal(ev_count[HL_EV_ARRIVED], 2);

	/* a replay of the rotation changes nothing */
	deliver(r);
	assert_int_equal(ev_count[HL_EV_ROTATED], 1);
	assert_int_equal(ev_count[HL_EV_EQUIVOCATION], 0);
	/* nor does A completing again */
	size_t n = 9;
	assert_int_equal(hl_store_begin(A.st), 0);
	assert_int_equal(hl_rotate_chains(A.st, A.id, NULL, 0, &n), 0);
	assert_int_equal(hl_store_commit(A.st), 0);
	assert_int_equal(n, 0);
}

/* A process of A's that read identity.key before the rotation cannot
 * append an item signed with the old key after it. */
static void test_old_key_cannot_sign_after_rotation(void **state)
{
	(void)state;
	/* R1 is A rotated once more; A.id, kept, is what a process that read
	 * identity.key before that holds.  The store rotates to R1. */
	hl_signer *r1 = NULL;
	assert_int_equal(hl_signer_rotated_for_tests(A.id, 5, &r1), 0);
	size_t n = 0;
	assert_int_equal(hl_store_begin(A.st), 0);
	assert_int_equal(hl_rotate_chains(A.st, r1, NULL, 0, &n), 0);
	assert_int_equal(hl_store_commit(A.st), 0);
	assert_int_equal(n, 1);
	a_message(A.id, "stale", HL_EKEYS);
	hl_signer_free(A.id);
	A.id = r1;
	uint64_t r = a_message(A.id, "fresh", 0) - 1;
	deliver(r);
	deliver(r + 1);
	assert_int_equal(ev_count[HL_EV_ROTATED], 2);
	assert_int_equal(b_holds(r + 1), HL_ITEM_MESSAGE);
}

/* A second, different rotation at the same position, signed by A's keys
 * (the owner equivocating): evidence, not a second key change. */
static void test_double_rotation_is_equivocation(void **state)
{
	(void)state;
	uint8_t buf[HL_ITEM_MAX], enc[HL_ITEM_MAX];
	struct hl_chain_head h;
	assert_int_equal(hl_store_chain_head(A.st, A.peer_id, HL_DIR_OUT, &h), 0);
	uint64_t r = h.seq; /* A's last rotation (the previous test) */
	size_t len = a_item(r, buf);
	struct hl_item it;
	assert_int_equal(hl_item_decode(buf, len, &it), 0);
	if (it.kind != HL_ITEM_ROTATION) {
		r--;
		len = a_item(r, buf);
		assert_int_equal(hl_item_decode(buf, len, &it), 0);
	}
	assert_int_equal(it.kind, HL_ITEM_ROTATION);
	/* the same keys, another reason: a different item at the same place */
	it.u.rot.reason = HL_ROTATE_COMPROMISE;
	size_t elen;
	assert_int_equal(hl_item_encode_sign(&it, A.id, enc, sizeof(enc), &elen), 0);
	unsigned before = ev_count[HL_EV_EQUIVOCATION];
	deliver_raw(enc, elen);
	assert_int_equal(ev_count[HL_EV_EQUIVOCATION], before + 1);
	assert_int_equal(ev_count[HL_EV_ROTATED], 2);
	assert_int_equal(b_holds(r), HL_ITEM_ROTATION);
}

/* A thief with A's current key (not its next keys) rotates A to keys of
 * its own: refused (a tombstone), alarmed; the chain keeps A's key. */
static void test_uncommitted_rotation_refused_and_alarmed(void **state)
{
	(void)state;
	struct hl_chain_head h;
	uint8_t enc[HL_ITEM_MAX], buf[HL_ITEM_MAX];
	assert_int_equal(hl_store_chain_head(A.st, A.peer_id, HL_DIR_OUT, &h), 0);
	struct hl_item it;
	size_t len = a_item(h.seq, buf);
	assert_int_equal(hl_item_decode(buf, len, &it), 0);
	struct hl_item rot;
	memset(&rot, 0, sizeof(rot));
	rot.kind = HL_ITEM_ROTATION;
	memcpy(rot.author, it.author, 32);
	memcpy(rot.counterpart, it.counterpart, 32);
	rot.seq = h.seq + 1;
	hl_item_hash(buf, len, rot.prev);
	rot.time_ms = 99;
	/* the thief's keys: a signer whose previous key is A's current one
	 * is what the thief cannot have; build the item by hand instead */
	hl_signer *thief = NULL;
	assert_int_equal(hl_signer_generate(&thief), 0);
	memcpy(rot.u.rot.noise_key, hl_signer_noise_pub(thief), 32);
	memcpy(rot.u.rot.signing_key, hl_signer_sign_pk(thief), 32);
	assert_int_equal(hl_signer_next_hash(thief, rot.u.rot.next_hash), 0);
	assert_int_equal(hl_item_encode(&rot, enc, sizeof(enc), &len), 0);
	uint8_t msg[512];
	size_t body = len - 128;
	memcpy(msg, HL_CTX_ROTATION_NEW, sizeof(HL_CTX_ROTATION_NEW));
	memcpy(msg + sizeof(HL_CTX_ROTATION_NEW), enc, body);
	assert_int_equal(hl_signer_sign(thief, HL_CTX_ROTATION_NEW, msg,
					sizeof(HL_CTX_ROTATION_NEW) + body, enc + body), 0);
	/* the outer signature by A's real current key: a message-shaped
	 * signature is all the signer gives, so use the rotation context of
	 * a signer whose previous key is A's current one: A rotated once more
	 * in memory (A itself is not changed) */
	hl_signer *a_next = NULL;
	assert_int_equal(hl_signer_rotated_for_tests(A.id, 7, &a_next), 0);
	assert_int_equal(hl_signer_sign(a_next, HL_CTX_ROTATION, enc, len - 64, enc + len - 64), 0);
	assert_int_equal(crypto_sign_verify_detached(enc + len - 64, enc, len - 64,
						     hl_signer_sign_pk(A.id)), 0);
	unsigned refused = ev_count[HL_EV_ROTATION_REFUSED];
	deliver_raw(enc, len);
	assert_int_equal(ev_count[HL_EV_ROTATION_REFUSED], refused + 1);
	assert_int_equal(ev_seq[HL_EV_ROTATION_REFUSED], rot.seq);
	assert_int_equal(b_holds(rot.seq), 0);   /* a tombstone */
	assert_int_equal(ev_count[HL_EV_ROTATED], 2);
	hl_signer_free(a_next);
	hl_signer_free(thief);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_peer_takes_the_rotation),
		cmocka_unit_test(test_old_key_cannot_sign_after_rotation),
		cmocka_unit_test(test_double_rotation_is_equivocation),
		cmocka_unit_test(test_uncommitted_rotation_refused_and_alarmed),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
