/* crypto/keys.c — fingerprints of a station's public keys.  Contract in
 * keys.h; the private keys and the identity file are crypto/signer.c's. */
#include "crypto/keys.h"

#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "util/err.h"

/* BLAKE2b-256 of CONTEXT (without its NUL) and the keys, then EXTRA when
 * given (the fingerprint's next-key hash). */
static void keys_hash(const char *context, const uint8_t *noise_pub, const uint8_t *sign_pk,
		      const uint8_t *extra, uint8_t out[static 32])
{
	crypto_generichash_state st;
	crypto_generichash_init(&st, NULL, 0, 32);
	crypto_generichash_update(&st, (const uint8_t *)context, strlen(context));
	crypto_generichash_update(&st, noise_pub, HL_KEY_LEN);
	crypto_generichash_update(&st, sign_pk, HL_KEY_LEN);
	if (extra)
		crypto_generichash_update(&st, extra, HL_KEY_LEN);
	crypto_generichash_final(&st, out, 32);
}

void hl_fingerprint(const uint8_t noise_pub[static HL_KEY_LEN],
		    const uint8_t sign_pk[static HL_KEY_LEN], uint8_t fp[static HL_FP_LEN])
{
	keys_hash(HL_FP_CONTEXT, noise_pub, sign_pk, NULL, fp);
}

void hl_fingerprint_next(const uint8_t noise_pub[static HL_KEY_LEN],
			 const uint8_t sign_pk[static HL_KEY_LEN], const uint8_t *next_hash,
			 uint8_t fp[static HL_FP_LEN])
{
	keys_hash(HL_FP_CONTEXT, noise_pub, sign_pk, next_hash, fp);
}

void hl_next_hash(const uint8_t noise_pub[static HL_KEY_LEN],
		  const uint8_t sign_pk[static HL_KEY_LEN], uint8_t out[static HL_KEY_LEN])
{
	keys_hash(HL_NEXT_CONTEXT, noise_pub, sign_pk, NULL, out);
}

/* X25519 with any clamped scalar is zero exactly for the points of small
 * order, and crypto_scalarmult refuses exactly those. */
int hl_noise_key_usable(const uint8_t key[static HL_KEY_LEN])
{
	uint8_t scalar[crypto_scalarmult_SCALARBYTES], q[crypto_scalarmult_BYTES];
	memset(scalar, 0x42, sizeof(scalar));
	int ok = crypto_scalarmult(q, scalar, key) == 0;
	sodium_memzero(q, sizeof(q));
	return ok;
}

int hl_signing_key_usable(const uint8_t key[static HL_KEY_LEN])
{
	return crypto_core_ed25519_is_valid_point(key) == 1;
}

void hl_fingerprint_text(const uint8_t fp[static HL_FP_LEN], char out[static HL_FP_TEXT_LEN])
{
	size_t o = 0;
	for (int i = 0; i < 8; i++) {
		uint32_t w = (uint32_t)fp[4 * i] << 24 | (uint32_t)fp[4 * i + 1] << 16 |
			     (uint32_t)fp[4 * i + 2] << 8 | (uint32_t)fp[4 * i + 3];
		o += (size_t)snprintf(out + o, HL_FP_TEXT_LEN - o, i ? " %05u" : "%05u",
				      (unsigned)(w % 100000u));
	}
}

int hl_fingerprint_matches(const char *text, const uint8_t fp[static HL_FP_LEN])
{
	char given[40], want[40], shown[HL_FP_TEXT_LEN];
	size_t n = 0;
	for (const char *p = text; *p; p++) {
		if (*p == ' ' || *p == '-')
			continue;
		if (*p < '0' || *p > '9' || n == sizeof(given))
			return HL_EINVAL;
		given[n++] = *p;
	}
	if (n != sizeof(given))
		return HL_EINVAL;
	hl_fingerprint_text(fp, shown);
	n = 0;
	for (const char *p = shown; *p; p++)
		if (*p != ' ')
			want[n++] = *p;
	return sodium_memcmp(given, want, sizeof(want)) == 0;
}
