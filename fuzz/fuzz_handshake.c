/* fuzz/fuzz_handshake.c — libFuzzer target for crypto/noise.c's handshake
 * reader, as hotline uses it: Noise_IK_25519_ChaChaPoly_BLAKE2b with the
 * prologue "hotline/1" and fixed keys.
 *
 * Input: one mode byte, then frames as on the wire (docs/protocol.md: a
 * 2-byte big-endian length, then that many bytes).  The first frame is the
 * handshake message under test; every later frame is a transport message,
 * tried only if the handshake completed.
 *
 *   mode bit 0 clear: a responder reads the frame as message 1, and if it is
 *     accepted writes message 2, splits, and decrypts the transport frames
 *     with its receiving CipherState (the initiator's c1).
 *   mode bit 0 set: an initiator writes message 1, reads the frame as
 *     message 2, splits, and decrypts the transport frames with c2.
 *   mode bit 1 set: the frame is message 1's payload, decoded as session.c
 *     decodes it (hl_msg1_payload_decode, session/replay.h) and put to the
 *     timestamp rule; nothing else.
 *   mode bit 2 set (responder): the static key message 1 names is refused
 *     as session.c refuses an unpinned one, from the hook that runs before the
 *     ss DH (hl_noise_hs_set_rs_authorize).
 *
 * A message 1 the responder accepts has its payload decoded too.
 * Besides memory errors, the target aborts when the API breaks a promise:
 * a failed handshake that is not dead, a payload longer than its message, a
 * completed handshake that will not split.  The keys are fixed (and are in
 * no way secret) so that committed seeds with valid messages stay valid:
 * resp_msg1_stamp and resp_msg1_key_refused hold the message 1 these keys
 * make (ephemeral 0x30) with the timestamp of 1700000000 s as its payload,
 * for modes 0 and 4; payload_* are payloads for mode 2. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "crypto/noise.h"
#include "session/replay.h"
#include "util/err.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NAME "Noise_IK_25519_ChaChaPoly_BLAKE2b"
static const uint8_t prologue[] = "hotline/1";

/* Key bytes: a simple pattern per key, reproduced by the seed generator. */
static void fixed_key(uint8_t k[32], uint8_t tag)
{
	for (int i = 0; i < 32; i++)
		k[i] = (uint8_t)(tag + i * 3);
}

static uint8_t msgbuf[HL_NOISE_MAX_MSG], ptbuf[HL_NOISE_MAX_MSG];

static void check(bool ok)
{
	if (!ok)
		abort();
}

/* The next frame of IN, or false at the end (or at a frame that runs past
 * the end of the input, which is simply where the input stops). */
static bool next_frame(const uint8_t **in, size_t *left, const uint8_t **frame, size_t *flen)
{
	size_t len;

	if (*left < 2)
		return false;
	len = ((size_t)(*in)[0] << 8) | (*in)[1];
	if (len > *left - 2)
		return false;
	*frame = *in + 2;
	*flen = len;
	*in += 2 + len;
	*left -= 2 + len;
	return true;
}

static int key_checks;

static int refuse_key(void *user, const uint8_t rs[static 32])
{
	(void)user;
	(void)rs;
	key_checks++;
	return HL_EPEER;
}

static int accept_key(void *user, const uint8_t rs[static 32])
{
	(void)user;
	(void)rs;
	key_checks++;
	return 0;
}

/* The payload decoder's promises, and the rule on what it decoded. */
static void payload(const uint8_t *p, size_t len)
{
	struct hl_stamp st, again;
	struct hl_replay_window w = { 0 };
	bool has = true;
	int rc = hl_msg1_payload_decode(p, len, &st, &has);
	if (rc < 0) {
		check(!has && len > 0);
		check(rc == HL_ETRUNC || rc == HL_ETOOBIG || rc == HL_EINVAL);
		check(rc != HL_ETRUNC || len < HL_TAI64N_LEN);
		check(rc != HL_ETOOBIG || len > HL_MSG1_PAYLOAD_MAX);
		return;
	}
	check(has == (len > 0));
	if (!has)
		return;
	check(len >= HL_TAI64N_LEN && len <= HL_MSG1_PAYLOAD_MAX);
	check(memcmp(st.b, p, HL_TAI64N_LEN) == 0 && !(p[0] & 0x80));
	/* Newer than nothing; not newer than itself. */
	check(hl_replay_window_accept(&w, &st) == 0);
	again = st;
	check(hl_replay_window_accept(&w, &again) == HL_EREPLAY);
	check(hl_stamp_cmp(&w.greatest, &st) == 0);
}

/* The static key of each side (fixed, as the seeds were made with), made
 * once: a signer per input would cost more than the handshake. */
static const hl_signer *static_key(bool initiator)
{
	static hl_signer *keys[2];
	uint8_t s[32];
	if (!keys[initiator]) {
		fixed_key(s, initiator ? 0x10 : 0x20);
		check(hl_signer_from_raw_for_tests(&keys[initiator], s, NULL) == 0);
	}
	return keys[initiator];
}

static hl_noise_hs *make(bool initiator, hl_noise_rs_authorize hook)
{
	uint8_t e[32], rs_priv[32], rs[32];
	hl_noise_hs *hs = NULL;

	check(hl_noise_hs_new(&hs, NAME, initiator) == 0);
	check(hl_noise_hs_set_prologue(hs, prologue, sizeof prologue - 1) == 0);
	fixed_key(e, initiator ? 0x30 : 0x40);
	check(hl_noise_hs_set_s(hs, static_key(initiator)) == 0);
	check(hl_noise_hs_set_e(hs, e) == 0);
	if (initiator) {
		fixed_key(rs_priv, 0x20);
		check(crypto_scalarmult_base(rs, rs_priv) == 0);
		check(hl_noise_hs_set_rs(hs, rs) == 0);
	} else {
		check(hl_noise_hs_set_rs_authorize(hs, hook, NULL) == 0);
	}
	check(hl_noise_hs_start(hs) == 0);
	return hs;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static bool inited;
	hl_noise_hs *hs = NULL;
	hl_cipher_state send, recv;
	const uint8_t *frame;
	size_t flen, n, len;
	bool initiator, refuse, only_payload;
	int rc;

	if (!inited) {
		check(sodium_init() >= 0);
		inited = true;
	}
	if (size < 1)
		return 0;
	initiator = data[0] & 1;
	refuse = !initiator && (data[0] & 4);
	only_payload = data[0] & 2;
	data++;
	size--;
	if (!next_frame(&data, &size, &frame, &flen))
		return 0;
	if (only_payload) {
		payload(frame, flen);
		return 0;
	}

	hs = make(initiator, refuse ? refuse_key : accept_key);
	key_checks = 0;
	if (initiator)
		check(hl_noise_hs_write(hs, NULL, 0, msgbuf, sizeof msgbuf, &len) == 0 && len == 96);
	else
		check(hl_noise_hs_set_rs_authorize(hs, refuse ? refuse_key : accept_key, NULL) ==
		      HL_ESTATE);   /* only before start */

	rc = hl_noise_hs_read(hs, frame, flen, ptbuf, sizeof ptbuf, &n);
	/* The hook ran at most once, and only a responder's. */
	check(key_checks <= (initiator ? 0 : 1));
	if (rc < 0) {
		check(rc == HL_ETRUNC || rc == HL_EAUTH || rc == HL_ECRYPTO || rc == HL_EINVAL ||
		      (refuse && rc == HL_EPEER && key_checks == 1));
		check(hl_noise_hs_read(hs, frame, flen, ptbuf, sizeof ptbuf, &n) == HL_ESTATE);
		check(!hl_noise_hs_my_turn(hs) && !hl_noise_hs_done(hs));
		check(hl_noise_hs_remote_static(hs) == NULL);
		goto out;
	}
	check(n + (initiator ? 48 : 96) == flen);
	if (!initiator) {
		check(!refuse && key_checks == 1);
		payload(ptbuf, n);
		check(hl_noise_hs_remote_static(hs) != NULL);
		check(hl_noise_hs_write(hs, NULL, 0, msgbuf, sizeof msgbuf, &len) == 0 && len == 48);
	}
	check(hl_noise_hs_done(hs));
	check(hl_noise_hs_split(hs, &send, &recv) == 0);

	while (next_frame(&data, &size, &frame, &flen)) {
		uint64_t before = recv.n;
		rc = hl_cs_decrypt(&recv, NULL, 0, frame, flen, ptbuf, sizeof ptbuf, &n);
		if (rc == 0)
			check(n + HL_NOISE_TAGLEN == flen && recv.n == before + 1);
		else
			check(recv.n == before && (rc == HL_EAUTH || rc == HL_ETRUNC));
	}
	hl_cs_clear(&send);
	hl_cs_clear(&recv);
out:
	hl_noise_hs_free(hs);
	return 0;
}
