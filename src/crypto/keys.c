/* crypto/keys.c — fingerprints of a station's public keys.  Contract in
 * keys.h; the private keys and the identity file are crypto/signer.c's. */
#include "crypto/keys.h"

#include <sodium.h>
#include <stdio.h>

#include "util/err.h"

void hl_fingerprint(const uint8_t noise_pub[static HL_KEY_LEN],
		    const uint8_t sign_pk[static HL_KEY_LEN], uint8_t fp[static HL_FP_LEN])
{
	crypto_generichash_state st;
	crypto_generichash_init(&st, NULL, 0, HL_FP_LEN);
	crypto_generichash_update(&st, (const uint8_t *)HL_FP_CONTEXT,
				  sizeof(HL_FP_CONTEXT) - 1);
	crypto_generichash_update(&st, noise_pub, HL_KEY_LEN);
	crypto_generichash_update(&st, sign_pk, HL_KEY_LEN);
	crypto_generichash_final(&st, fp, HL_FP_LEN);
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
