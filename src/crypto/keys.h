/* crypto/keys.h — a station's public keys and their fingerprint.
 *
 * A station has an X25519 key pair (its NoiseKey, for the link) and an
 * Ed25519 key pair (its SigningKey, for signed structures).  The private
 * halves live only in the signer (crypto/signer.h) and in identity.key;
 * this header is about the public ones.
 *
 * Fingerprint: BLAKE2b-256("hotline/1 fingerprint" || NoiseKey ||
 * SigningKey).  Shown as 8 groups of 5 decimal digits (each group is a
 * 32-bit big-endian word of the hash mod 100000: 8 x 16.6 = 132.9 bits), so
 * that two people who share no language can read it over a telephone. */
#ifndef HL_CRYPTO_KEYS_H
#define HL_CRYPTO_KEYS_H

#include <stddef.h>
#include <stdint.h>

#define HL_KEY_LEN 32
#define HL_FP_LEN 32
#define HL_FP_CONTEXT "hotline/1 fingerprint"
#define HL_FP_TEXT_LEN 48 /* "12345 67890 ... 12345" and a NUL */

void hl_fingerprint(const uint8_t noise_pub[static HL_KEY_LEN],
		    const uint8_t sign_pk[static HL_KEY_LEN], uint8_t fp[static HL_FP_LEN]);
void hl_fingerprint_text(const uint8_t fp[static HL_FP_LEN], char out[static HL_FP_TEXT_LEN]);
/* Compares text an operator typed (spaces and dashes ignored) with FP in
 * constant time: 1 on a match, 0 on a mismatch, HL_EINVAL when TEXT is not
 * 40 digits. */
int hl_fingerprint_matches(const char *text, const uint8_t fp[static HL_FP_LEN]);

#endif
