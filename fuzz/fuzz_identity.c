/* fuzz_identity.c — libFuzzer target for hl_identity_parse.  An accepted
 * identity must hold consistent key pairs (the public keys derive from the
 * private ones). */
#include <sodium.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/keys.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	if (sodium_init() < 0)
		abort();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	hl_identity *id = NULL;
	if (hl_identity_parse((const char *)data, size, &id) < 0) {
		if (id)
			abort();
		return 0;
	}
	uint8_t pub[32], pk[32], sk[64];
	if (crypto_scalarmult_base(pub, id->noise_priv) != 0 ||
	    memcmp(pub, id->noise_pub, 32) != 0)
		abort();
	crypto_sign_seed_keypair(pk, sk, id->sign_sk);
	if (memcmp(pk, id->sign_pk, 32) != 0 || memcmp(sk, id->sign_sk, 64) != 0)
		abort();
	sodium_memzero(sk, sizeof(sk));
	hl_identity_free(id);
	return 0;
}
