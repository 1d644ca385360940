/* fuzz_identity.c — libFuzzer target for hl_signer_parse (the identity
 * file).  An accepted identity must hold consistent key pairs: its DH
 * agrees with one made from its public NoiseKey, and what it signs
 * verifies with its public SigningKey; its next keys, rotated to, hash to
 * the commitment it shows, and its previous keys sign a rotation. */
#include <sodium.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/keys.h"
#include "crypto/signer.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint8_t peer[32], peer_pub[32];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	if (sodium_init() < 0)
		abort();
	memset(peer, 0x77, sizeof(peer));
	if (crypto_scalarmult_base(peer_pub, peer) != 0)
		abort();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint8_t msg[] = "hotline/1 check\0fuzz";
	hl_signer *id = NULL;
	uint8_t ours[32], theirs[32], sig[64];
	if (hl_signer_parse((const char *)data, size, &id) < 0) {
		if (id)
			abort();
		return 0;
	}
	if (hl_signer_dh(id, peer_pub, ours) != 0 ||
	    crypto_scalarmult(theirs, peer, hl_signer_noise_pub(id)) != 0 ||
	    memcmp(ours, theirs, 32) != 0)
		abort();
	if (hl_signer_sign(id, "hotline/1 check", msg, sizeof(msg), sig) != 0 ||
	    crypto_sign_verify_detached(sig, msg, sizeof(msg), hl_signer_sign_pk(id)) != 0)
		abort();
	uint8_t commit[32], h[32];
	hl_signer *r = NULL;
	if (hl_signer_next_hash(id, commit) == 0) {
		static const uint8_t rmsg[] = "hotline/1 rotation\0fuzz";
		if (hl_signer_rotated_for_tests(id, 1, &r) != 0)
			abort();
		hl_next_hash(hl_signer_noise_pub(r), hl_signer_sign_pk(r), h);
		if (memcmp(h, commit, 32) != 0 ||
		    hl_signer_sign(r, "hotline/1 rotation", rmsg, sizeof(rmsg), sig) != 0 ||
		    crypto_sign_verify_detached(sig, rmsg, sizeof(rmsg), hl_signer_sign_pk(id)) != 0)
			abort();
		hl_signer_free(r);
	} else if (hl_signer_rotated_for_tests(id, 1, &r) == 0) {
		abort(); /* nothing committed: no rotation */
	}
	hl_signer *prev = NULL;
	if (hl_signer_prev_noise_pub(id)) {
		if (hl_signer_previous(id, &prev) != 0 || hl_signer_dh(prev, peer_pub, ours) != 0 ||
		    crypto_scalarmult(theirs, peer, hl_signer_prev_noise_pub(id)) != 0 ||
		    memcmp(ours, theirs, 32) != 0)
			abort();
		hl_signer_free(prev);
	}
	hl_signer_free(id);
	return 0;
}
