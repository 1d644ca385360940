/* test_voice_media.c — media packets, their keys and replay window
 * (voice/media.c), and the jitter buffer (voice/jitter.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "util/err.h"
#include "voice/jitter.h"
#include "voice/media.h"

struct pair {
	struct hl_media_keys *a, *b;   /* caller, callee */
};

static void make_pair(struct pair *p)
{
	uint8_t id[HL_CALL_ID_LEN], apk[32], ask[32], bpk[32], bsk[32];
	randombytes_buf(id, sizeof(id));
	hl_media_keypair(apk, ask);
	hl_media_keypair(bpk, bsk);
	assert_int_equal(hl_media_keys_new(&p->a, true, id, apk, ask, bpk, 111, 222), 0);
	assert_int_equal(hl_media_keys_new(&p->b, false, id, bpk, bsk, apk, 222, 111), 0);
}

static void free_pair(struct pair *p)
{
	hl_media_keys_free(p->a);
	hl_media_keys_free(p->b);
}

static void frame_of(struct hl_media_frame *f, uint8_t v, uint8_t len)
{
	memset(f, 0, sizeof(*f));
	f->flags = HL_MEDIA_F_HEAR_UDP;
	f->len = len;
	memset(f->opus, v, len < HL_MEDIA_OPUS_MAX ? len : HL_MEDIA_OPUS_MAX);
}

static void test_roundtrip_both_ways(void **state)
{
	(void)state;
	struct pair p;
	make_pair(&p);
	uint8_t pkt[HL_MEDIA_PACKET_LEN];
	struct hl_media_frame f, g;
	uint64_t c;
	for (int i = 0; i < 5; i++) {
		frame_of(&f, (uint8_t)i, (uint8_t)(i * 10));
		assert_int_equal(hl_media_seal(p.a, &f, pkt), 0);
		assert_int_equal(hl_media_open(p.b, pkt, sizeof(pkt), &g, &c), 0);
		assert_int_equal(c, (uint64_t)(2 * i));
		assert_int_equal(g.len, f.len);
		assert_memory_equal(g.opus, f.opus, f.len);
		assert_int_equal(g.flags, HL_MEDIA_F_HEAR_UDP);
		/* the other way */
		assert_int_equal(hl_media_seal(p.b, &f, pkt), 0);
		assert_int_equal(hl_media_open(p.a, pkt, sizeof(pkt), &g, &c), 0);
		/* a direction's packets do not open in the other direction */
		assert_int_equal(hl_media_seal(p.a, &f, pkt), 0);
		assert_int_not_equal(hl_media_open(p.a, pkt, sizeof(pkt), &g, &c), 0);
		assert_int_equal(hl_media_open(p.b, pkt, sizeof(pkt), &g, &c), 0);
	}
	free_pair(&p);
}

static void test_one_size_whatever_the_frame(void **state)
{
	(void)state;
	struct pair p;
	make_pair(&p);
	uint8_t a[HL_MEDIA_PACKET_LEN], b[HL_MEDIA_PACKET_LEN];
	struct hl_media_frame f;
	frame_of(&f, 1, 0);
	assert_int_equal(hl_media_seal(p.a, &f, a), 0);
	frame_of(&f, 1, HL_MEDIA_OPUS_MAX);
	assert_int_equal(hl_media_seal(p.a, &f, b), 0);
	assert_int_equal(sizeof(a), 128);   /* the only size on the wire */
	frame_of(&f, 1, HL_MEDIA_OPUS_MAX + 1);
	assert_int_equal(hl_media_seal(p.a, &f, b), HL_ESTATE);
	free_pair(&p);
}

static void test_tamper_replay_tag(void **state)
{
	(void)state;
	struct pair p;
	make_pair(&p);
	uint8_t pkt[HL_MEDIA_PACKET_LEN], bad[HL_MEDIA_PACKET_LEN];
	struct hl_media_frame f, g;
	uint64_t c;
	frame_of(&f, 7, 40);
	assert_int_equal(hl_media_seal(p.a, &f, pkt), 0);
	/* every byte flipped: refused, and nothing changes in the receiver */
	for (size_t i = 0; i < sizeof(pkt); i++) {
		memcpy(bad, pkt, sizeof(pkt));
		bad[i] ^= 0x01;
		int r = hl_media_open(p.b, bad, sizeof(bad), &g, &c);
		assert_true(r == HL_EAUTH || r == HL_EINVAL || r == HL_ETOOBIG);
	}
	assert_int_equal(hl_media_open(p.b, pkt, sizeof(pkt) - 1, &g, &c), HL_EINVAL);
	assert_int_equal(hl_media_open(p.b, pkt, sizeof(pkt), &g, &c), 0);
	assert_int_equal(hl_media_open(p.b, pkt, sizeof(pkt), &g, &c), HL_EEXIST);
	free_pair(&p);
}

static void test_epochs_and_forward_secrecy(void **state)
{
	(void)state;
	struct pair p;
	make_pair(&p);
	struct hl_media_frame f, g;
	uint64_t c;
	uint64_t n = 2 * HL_MEDIA_EPOCH_PKTS + 10;
	uint8_t (*pk)[HL_MEDIA_PACKET_LEN] = malloc(n * HL_MEDIA_PACKET_LEN);
	frame_of(&f, 3, 30);
	for (uint64_t i = 0; i < n; i++)
		assert_int_equal(hl_media_seal(p.a, &f, pk[i]), 0);
	/* epoch 0's packets, then epoch 1's; epoch 0's straggler still opens */
	uint64_t e1 = HL_MEDIA_EPOCH_PKTS;
	uint8_t k0[32];
	memcpy(k0, p.b->rx.key, 32);
	assert_int_equal(hl_media_open(p.b, pk[0], HL_MEDIA_PACKET_LEN, &g, &c), 0);
	assert_int_equal(hl_media_open(p.b, pk[e1 + 5], HL_MEDIA_PACKET_LEN, &g, &c), 0);
	assert_int_equal(hl_media_open(p.b, pk[e1 - 3], HL_MEDIA_PACKET_LEN, &g, &c), 0);
	assert_memory_equal(p.b->rx.prev, k0, 32);
	/* epoch 2: epoch 1's stragglers open, epoch 0's key is gone from
	 * memory (what a station holds later cannot open epoch 0's packets) */
	assert_int_equal(hl_media_open(p.b, pk[2 * e1], HL_MEDIA_PACKET_LEN, &g, &c), 0);
	assert_int_equal(hl_media_open(p.b, pk[2 * e1 - 10], HL_MEDIA_PACKET_LEN, &g, &c), 0);
	assert_memory_not_equal(p.b->rx.prev, k0, 32);
	assert_memory_not_equal(p.b->rx.key, k0, 32);
	assert_int_equal(hl_media_open(p.b, pk[e1 - 2], HL_MEDIA_PACKET_LEN, &g, &c), HL_EEXIST);
	free(pk);
	free_pair(&p);
}

static void test_forged_jump_does_not_move_keys(void **state)
{
	(void)state;
	struct pair p;
	make_pair(&p);
	struct hl_media_frame f, g;
	uint64_t c;
	uint8_t pkt[HL_MEDIA_PACKET_LEN], forged[HL_MEDIA_PACKET_LEN];
	frame_of(&f, 3, 30);
	assert_int_equal(hl_media_seal(p.a, &f, pkt), 0);
	/* a forged packet 5 epochs ahead: fails its tag, and the real packet
	 * 0 still opens afterwards (neither key nor window moved) */
	memcpy(forged, pkt, sizeof(pkt));
	forged[15] = 0;
	forged[14] = 0x40;   /* counter 16384: epoch 10, over the jump limit */
	assert_int_equal(hl_media_open(p.b, forged, sizeof(forged), &g, &c), HL_ETOOBIG);
	forged[14] = 0x1d;   /* counter 7424: epoch 4 */
	assert_int_equal(hl_media_open(p.b, forged, sizeof(forged), &g, &c), HL_EAUTH);
	assert_int_equal(hl_media_open(p.b, pkt, sizeof(pkt), &g, &c), 0);
	assert_int_equal(c, 0);
	free_pair(&p);
}

static void test_replay_window(void **state)
{
	(void)state;
	struct hl_replay r;
	memset(&r, 0, sizeof(r));
	assert_int_equal(hl_replay_verify(&r, 5, true), 0);
	assert_int_equal(hl_replay_verify(&r, 5, true), HL_EEXIST);
	assert_int_equal(hl_replay_verify(&r, 3, true), 0);     /* reordered */
	assert_int_equal(hl_replay_verify(&r, 3, true), HL_EEXIST);
	assert_int_equal(hl_replay_verify(&r, 4000, true), 0);  /* a jump */
	assert_int_equal(hl_replay_verify(&r, 4000 - 900, false), 0);
	assert_int_equal(hl_replay_verify(&r, 5, true), HL_EEXIST);      /* far too old */
	assert_int_equal(hl_replay_verify(&r, 4000 - 2000, true), HL_EEXIST);
	/* every counter in order, each replay refused at once */
	for (uint64_t i = 4001; i < 9000; i++) {
		assert_int_equal(hl_replay_verify(&r, i, true), 0);
		assert_int_equal(hl_replay_verify(&r, i, true), HL_EEXIST);
	}
	/* a counter skipped long ago, still inside the window, is new once */
	memset(&r, 0, sizeof(r));
	for (uint64_t i = 0; i < 2000; i++)
		if (i != 1500)
			assert_int_equal(hl_replay_verify(&r, i, true), 0);
	assert_int_equal(hl_replay_verify(&r, 1500, true), 0);
	assert_int_equal(hl_replay_verify(&r, 1500, true), HL_EEXIST);
}

/* ---- jitter buffer ---- */

static enum hl_jb_action get(struct hl_jb *jb, int64_t now)
{
	const uint8_t *d;
	size_t n;
	return hl_jb_get(jb, now, &d, &n);
}

static void test_jb_steady_path_stays_small(void **state)
{
	(void)state;
	struct hl_jb jb;
	hl_jb_init(&jb, 320);
	uint8_t data[40] = { 0 };
	int frames = 0;
	/* packets every 20 ms with 50 ms of constant transit; the player
	 * ticks every 20 ms, 7 ms after each arrival */
	for (int64_t i = 0; i < 500; i++) {
		assert_int_equal(hl_jb_put(&jb, (uint64_t)i, 1000 + 50 + i * 20, data, sizeof(data)), 1);
		enum hl_jb_action a = get(&jb, 1000 + 57 + i * 20);
		if (i > 10)
			assert_int_not_equal(a, HL_JB_WAIT);
		frames += a == HL_JB_FRAME;
	}
	assert_true(frames > 480);
	assert_true(hl_jb_target_ms(&jb) <= 30);
	double avg = jb.st.jitterBufferDelay / (double)jb.st.jitterBufferEmittedCount;
	assert_true(avg < 0.045);
	assert_int_equal(jb.st.packetsLost, 0);
	assert_true(jb.st.jitter < 0.001);
}

static void test_jb_fec_then_concealment(void **state)
{
	(void)state;
	struct hl_jb jb;
	hl_jb_init(&jb, 320);
	uint8_t data[40];
	int fec = 0, conceal = 0;
	for (int64_t i = 0; i < 200; i++) {
		/* lose 50: concealed (a clean path keeps no look-ahead), which
		 * makes the buffer keep a frame in hand from then on; then 100-101
		 * (100 concealed, 101 from 102's FEC) and 150 (from 151's FEC) */
		memset(data, (int)i, sizeof(data));
		if (i != 50 && i != 100 && i != 101 && i != 150)
			hl_jb_put(&jb, (uint64_t)i, 50 + i * 20, data, sizeof(data));
		const uint8_t *d;
		size_t n;
		enum hl_jb_action a = hl_jb_get(&jb, 50 + 5 + i * 20, &d, &n);
		if (a == HL_JB_FEC) {
			fec++;
			assert_true(d[0] == 102 || d[0] == 151);   /* the next packet's data */
		}
		conceal += a == HL_JB_CONCEAL;
	}
	assert_int_equal(jb.st.fecPacketsReceived, 2);
	assert_int_equal(fec, 2);
	assert_true(conceal >= 1);
	assert_int_equal(jb.st.concealmentEvents >= 1, 1);
	assert_int_equal(jb.st.packetsLost, 4);
}

static void test_jb_adapts_to_jitter_and_discards_late(void **state)
{
	(void)state;
	struct hl_jb jb;
	hl_jb_init(&jb, 320);
	uint8_t data[40] = { 0 };
	uint32_t x = 12345;
	int64_t t = 0;
	for (int64_t i = 0; i < 1000; i++) {
		x = x * 1103515245u + 12345u;
		int64_t jitter = (int64_t)((x >> 16) % 41);   /* 0..40 ms */
		hl_jb_put(&jb, (uint64_t)i, 50 + i * 20 + jitter, data, sizeof(data));
		t = 50 + i * 20 + 10;
		get(&jb, t);
	}
	int tgt = hl_jb_target_ms(&jb);
	assert_true(tgt >= 40 && tgt <= 80);
	/* with the target grown, nearly nothing is late */
	assert_true(jb.st.packetsDiscarded < 30);
	/* a packet for a frame already played is discarded, not played */
	assert_int_equal(hl_jb_put(&jb, 3, t, data, sizeof(data)), 0);
	/* a packet far ahead restarts the buffer there */
	assert_int_equal(hl_jb_put(&jb, 5000, t, data, sizeof(data)), 1);
	assert_int_equal(jb.next, 5000);
	/* and a frame too large for a slot is refused */
	uint8_t big[HL_JB_FRAME_MAX + 1] = { 0 };
	assert_int_equal(hl_jb_put(&jb, 5001, t, big, sizeof(big)), HL_EINVAL);
}

/* The sender's clock steps back by half a second (it lost time and went
 * on from the present, not from its packet count): every packet is now
 * "late" against the playout point, and after a few the buffer starts
 * again and plays them, instead of discarding them for ever. */
static void test_jb_resyncs_after_a_clock_step(void **state)
{
	(void)state;
	struct hl_jb jb;
	hl_jb_init(&jb, 320);
	uint8_t data[40] = { 0 };
	int frames_late = 0;
	/* time in ms, one step at a time: packet I arrives at 50 + 20 I, and
	 * from packet 200 on 500 ms later (the sender stalled, then went on
	 * from the present); the player takes a frame every 20 ms at 5 past */
	int64_t i = 0;
	for (int64_t t = 0; t < 14000; t++) {
		while (i < 600 && 50 + i * 20 + (i >= 200 ? 500 : 0) == t)
			hl_jb_put(&jb, (uint64_t)i++, t, data, sizeof(data));
		if (t % 20 == 5) {
			enum hl_jb_action a = get(&jb, t);
			frames_late += t > 9000 && a == HL_JB_FRAME;
		}
	}
	assert_int_equal(jb.st.resyncs, 1);
	assert_true(jb.st.packetsDiscarded < 2 * HL_JB_RESYNC);
	assert_true(frames_late > 150);   /* the stream plays again (177 frames are due) */
}

int main(void)
{
	if (sodium_init() < 0)
		return 1;
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_roundtrip_both_ways),
		cmocka_unit_test(test_one_size_whatever_the_frame),
		cmocka_unit_test(test_tamper_replay_tag),
		cmocka_unit_test(test_epochs_and_forward_secrecy),
		cmocka_unit_test(test_forged_jump_does_not_move_keys),
		cmocka_unit_test(test_replay_window),
		cmocka_unit_test(test_jb_steady_path_stays_small),
		cmocka_unit_test(test_jb_fec_then_concealment),
		cmocka_unit_test(test_jb_adapts_to_jitter_and_discards_late),
		cmocka_unit_test(test_jb_resyncs_after_a_clock_step),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
