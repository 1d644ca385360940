/* crypto/keys.h — a station's public keys and their fingerprint.
 *
 * A station has an X25519 key pair (its NoiseKey, for the link) and an
 * Ed25519 key pair (its SigningKey, for signed structures).  The private
 * halves live only in the signer (crypto/signer.h) and in identity.key;
 * this header is about the public ones.
 *
 * Fingerprint: BLAKE2b-256("hotline/1 fingerprint" || NoiseKey ||
 * SigningKey [|| NextKeyHash]): the card's commitment to its next keys is
 * covered when the card has one (docs/cards.md), so whoever changes a card
 * on its way cannot swap it.  Shown as 8 groups of 5 decimal digits (each
 * group is a 32-bit big-endian word of the hash mod 100000: 8 x 16.6 =
 * 132.9 bits), so that two people who share no language can read it over
 * a telephone.
 *
 * Next-key hash (pre-rotation, docs/rotation.md): BLAKE2b-256("hotline/1
 * next keys" || NoiseKey' || SigningKey') of the keys a station will
 * rotate to. */
#ifndef HL_CRYPTO_KEYS_H
#define HL_CRYPTO_KEYS_H

#include <stddef.h>
#include <stdint.h>

#define HL_KEY_LEN 32
#define HL_FP_LEN 32
#define HL_FP_CONTEXT "hotline/1 fingerprint"
#define HL_NEXT_CONTEXT "hotline/1 next keys"
#define HL_FP_TEXT_LEN 48 /* "12345 67890 ... 12345" and a NUL */

void hl_fingerprint(const uint8_t noise_pub[static HL_KEY_LEN],
		    const uint8_t sign_pk[static HL_KEY_LEN], uint8_t fp[static HL_FP_LEN]);
/* The fingerprint of a card that commits to its next keys (NEXT_HASH;
 * NULL: a card without NextKeyHash, the same as hl_fingerprint). */
void hl_fingerprint_next(const uint8_t noise_pub[static HL_KEY_LEN],
			 const uint8_t sign_pk[static HL_KEY_LEN], const uint8_t *next_hash,
			 uint8_t fp[static HL_FP_LEN]);
/* The commitment to the keys NOISE_PUB and SIGN_PK (see top). */
void hl_next_hash(const uint8_t noise_pub[static HL_KEY_LEN],
		  const uint8_t sign_pk[static HL_KEY_LEN], uint8_t out[static HL_KEY_LEN]);
/* 1 when KEY is a usable X25519 public key (not of small order), else 0. */
int hl_noise_key_usable(const uint8_t key[static HL_KEY_LEN]);
/* 1 when KEY is a canonical Ed25519 point of the main subgroup, else 0. */
int hl_signing_key_usable(const uint8_t key[static HL_KEY_LEN]);
void hl_fingerprint_text(const uint8_t fp[static HL_FP_LEN], char out[static HL_FP_TEXT_LEN]);
/* Compares text an operator typed (spaces and dashes ignored) with FP in
 * constant time: 1 on a match, 0 on a mismatch, HL_EINVAL when TEXT is not
 * 40 digits. */
int hl_fingerprint_matches(const char *text, const uint8_t fp[static HL_FP_LEN]);

#endif
