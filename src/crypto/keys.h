/* crypto/keys.h — a station's identity (its two key pairs), the identity
 * file, and fingerprints.
 *
 * A station has an X25519 key pair (its NoiseKey, for the link) and an
 * Ed25519 key pair (its SigningKey, for signed structures).  The private
 * halves live only in sodium_malloc() memory and in identity.key (mode 0600,
 * created with O_EXCL|O_NOFOLLOW); they are never printed.
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
#define HL_IDENTITY_MAX_BYTES 4096 /* an identity file is about 190 bytes */

typedef struct hl_identity {
	uint8_t noise_priv[HL_KEY_LEN];
	uint8_t noise_pub[HL_KEY_LEN];
	uint8_t sign_sk[64];          /* libsodium's seed || public key form */
	uint8_t sign_pk[HL_KEY_LEN];
} hl_identity;

/* New random identity in sodium_malloc memory. */
int hl_identity_generate(hl_identity **out);
/* Writes a new identity file: O_CREAT|O_EXCL|O_NOFOLLOW, mode 0600, fsync'd.
 * HL_EEXIST (as -EEXIST) when the file exists: an identity is never
 * overwritten. */
int hl_identity_write_new(const char *path, const hl_identity *id);
/* Loads an identity file into sodium_malloc memory; checks that the public
 * keys match the private ones.  The read buffer is wiped.  A file that group
 * or others may read or write still loads (as wireguard's genkey, it only
 * warns: refusing would stop a station over a chmod), but a warning naming it
 * goes to stderr.  A symlink is refused (O_NOFOLLOW). */
int hl_identity_load(const char *path, hl_identity **out);
/* Parses identity file text (BUF, LEN), for hl_identity_load and fuzzing.
 * HL_EINVAL, HL_ETRUNC (a key missing) or HL_ETOOBIG; the error never
 * quotes the text. */
int hl_identity_parse(const char *buf, size_t len, hl_identity **out);
void hl_identity_free(hl_identity *id);

void hl_fingerprint(const uint8_t noise_pub[static HL_KEY_LEN],
		    const uint8_t sign_pk[static HL_KEY_LEN], uint8_t fp[static HL_FP_LEN]);
void hl_fingerprint_text(const uint8_t fp[static HL_FP_LEN], char out[static HL_FP_TEXT_LEN]);
/* Compares text an operator typed (spaces and dashes ignored) with FP in
 * constant time: 1 on a match, 0 on a mismatch, HL_EINVAL when TEXT is not
 * 40 digits. */
int hl_fingerprint_matches(const char *text, const uint8_t fp[static HL_FP_LEN]);

#endif
