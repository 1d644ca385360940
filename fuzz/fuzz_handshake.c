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
 *
 * Besides memory errors, the target aborts when the API breaks a promise:
 * a failed handshake that is not dead, a payload longer than its message, a
 * completed handshake that will not split.  The keys are fixed (and are in
 * no way secret) so that committed seeds with valid messages stay valid. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "crypto/noise.h"
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

static hl_noise_hs *make(bool initiator)
{
	uint8_t s[32], e[32], rs_priv[32], rs[32];
	hl_noise_hs *hs = NULL;

	check(hl_noise_hs_new(&hs, NAME, initiator) == 0);
	check(hl_noise_hs_set_prologue(hs, prologue, sizeof prologue - 1) == 0);
	fixed_key(s, initiator ? 0x10 : 0x20);
	fixed_key(e, initiator ? 0x30 : 0x40);
	check(hl_noise_hs_set_s(hs, s) == 0);
	check(hl_noise_hs_set_e(hs, e) == 0);
	if (initiator) {
		fixed_key(rs_priv, 0x20);
		check(crypto_scalarmult_base(rs, rs_priv) == 0);
		check(hl_noise_hs_set_rs(hs, rs) == 0);
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
	bool initiator;
	int rc;

	if (!inited) {
		check(sodium_init() >= 0);
		inited = true;
	}
	if (size < 1)
		return 0;
	initiator = data[0] & 1;
	data++;
	size--;
	if (!next_frame(&data, &size, &frame, &flen))
		return 0;

	hs = make(initiator);
	if (initiator)
		check(hl_noise_hs_write(hs, NULL, 0, msgbuf, sizeof msgbuf, &len) == 0 && len == 96);

	rc = hl_noise_hs_read(hs, frame, flen, ptbuf, sizeof ptbuf, &n);
	if (rc < 0) {
		check(rc == HL_ETRUNC || rc == HL_EAUTH || rc == HL_ECRYPTO || rc == HL_EINVAL);
		check(hl_noise_hs_read(hs, frame, flen, ptbuf, sizeof ptbuf, &n) == HL_ESTATE);
		check(!hl_noise_hs_my_turn(hs) && !hl_noise_hs_done(hs));
		check(hl_noise_hs_remote_static(hs) == NULL);
		goto out;
	}
	check(n + (initiator ? 48 : 96) == flen);
	if (!initiator) {
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
