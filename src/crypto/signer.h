/* crypto/signer.h — the only holder of a station's private keys.
 *
 * A station has two secret keys: the X25519 half of its NoiseKey (the
 * link's and the bundles' static key) and the Ed25519 half of its
 * SigningKey (items, the record seal).  They live in one opaque hl_signer,
 * read from identity.key (or made by hl_signer_generate), and never leave
 * it: the rest of hotline gets the public keys, signatures and
 * Diffie-Hellman results, never the secret bytes.  crypto/signer.c is the
 * one source file that sees them.
 *
 * The signer is not a signing oracle.  hl_signer_sign() signs only a
 * message that begins with one of the context strings in its fixed table
 * (the item kinds of docs/items.md and the record seal of docs/record.md)
 * followed by a NUL, and the caller names that context: anything else is
 * refused, so no caller can obtain a signature over bytes that do not say
 * what they are.  hl_signer_dh() computes X25519 with the static key for
 * the Noise handshake (crypto/noise.c keeps only the per-handshake
 * ephemeral key).
 *
 * This interface is the seam for a key-holding process: a signer made by
 * hl_signer_remote() forwards these calls to the key holder
 * (holder/client.h, docs/keyholder.md) without any caller changing.
 *
 * Key rotation (docs/rotation.md).  Beside its current keys an identity
 * holds its NEXT keys (pre-rotation: the card commits to their hash) and,
 * after a rotation, its PREVIOUS keys.  hl_signer_load() keeps only the
 * hash of the next keys and wipes their private halves at once: no
 * long-lived process holds them.  hl_signer_rotate() reads them back from
 * the file when the station rotates.  The signer chooses the key from the
 * context, never the caller: the outer signature of a rotation item
 * ("hotline/1 rotation") is by the previous SigningKey (the chain's key
 * before the rotation), everything else by the current one.
 *
 * Memory: the secret keys are in sodium_malloc() memory (locked, guarded,
 * left out of core dumps), read-only once made, and wiped by
 * hl_signer_free().  The operations only read the signer, so several
 * threads may use one at once; hl_signer_rotate() changes it, and its
 * caller makes sure no other thread uses it meanwhile. */
#ifndef HL_CRYPTO_SIGNER_H
#define HL_CRYPTO_SIGNER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "crypto/keys.h"

#define HL_IDENTITY_MAX_BYTES 4096 /* an identity file is about 190 bytes */
#define HL_SIGNER_SIG_LEN 64
/* The longest message hl_signer_sign() takes: items are at most 16 KiB
 * (HL_ITEM_MAX), the record seal's message 54 bytes. */
#define HL_SIGNER_MSG_MAX 16384

typedef struct hl_signer hl_signer;

/* How long after a rotation the previous NoiseKey still opens bundles
 * and mail sealed to it (docs/rotation.md section 4). */
#define HL_ROTATION_GRACE_MS (30ull * 24 * 3600 * 1000)

/* A new random identity, with its next keys. */
int hl_signer_generate(hl_signer **out);
/* Loads an identity file; checks nothing about the station directory (the
 * caller did, conf/perms.h).  The read buffer is sodium_malloc() memory,
 * wiped.  A file that group or others may read or write still loads (as
 * wireguard's genkey, it only warns: refusing would stop a station over a
 * chmod), but a warning naming it goes to stderr.  A symlink is refused
 * (O_NOFOLLOW). */
int hl_signer_load(const char *path, hl_signer **out);
/* Parses identity file text (BUF, LEN), for hl_signer_load and fuzzing;
 * the signer it makes keeps the next private keys (hl_signer_load drops
 * them).  HL_EINVAL, HL_ETRUNC (a key missing) or HL_ETOOBIG; the error
 * never quotes the text. */
int hl_signer_parse(const char *buf, size_t len, hl_signer **out);
/* Writes S as a new identity file: O_CREAT|O_EXCL|O_NOFOLLOW, mode 0600,
 * fsync'd.  -EEXIST when the file exists: an identity is never
 * overwritten (only hl_signer_rotate replaces it).  HL_ESTATE when S
 * commits to next keys it no longer holds (a loaded signer). */
int hl_signer_write_new(const char *path, const hl_signer *s);
/* Rotates S, which was loaded from PATH, in place (a remote signer: in
 * the key holder, which does all of this; PATH NULL: in memory, from the
 * next keys S kept, for the tests and the in-memory holder): reads PATH (its current
 * keys must be S's: HL_EKEYS otherwise, another process rotated), makes the
 * next keys current, the current ones previous (rotated at NOW_MS) and new
 * next keys, writes that identity to PATH atomically (a new file created
 * exclusively beside it, fsync'd, renamed over it, the directory
 * fsync'd: a crash leaves the old identity or the new one), then takes it.
 * HL_EUNSUPP when the identity has no next keys (made before rotation
 * existed).  On any error S and PATH are as they were. */
int hl_signer_rotate(hl_signer *s, const char *path, int64_t now_ms);
/* Wipes and frees.  NULL-safe. */
void hl_signer_free(hl_signer *s);

/* The public keys (HL_KEY_LEN bytes each, valid while S lives). */
const uint8_t *hl_signer_noise_pub(const hl_signer *s);
const uint8_t *hl_signer_sign_pk(const hl_signer *s);
/* The hash of the next keys (crypto/keys.h): 0, or HL_ENOTFOUND for an
 * identity without next keys. */
int hl_signer_next_hash(const hl_signer *s, uint8_t out[static HL_KEY_LEN]);
/* The fingerprint of the station's card now (covering the next-key hash). */
void hl_signer_fingerprint(const hl_signer *s, uint8_t fp[static HL_FP_LEN]);
/* The previous keys, after a rotation: NULL when there are none. */
const uint8_t *hl_signer_prev_noise_pub(const hl_signer *s);
const uint8_t *hl_signer_prev_sign_pk(const hl_signer *s);
/* When the last rotation happened (ms since the epoch); 0 when none. */
int64_t hl_signer_rotated_at(const hl_signer *s);
/* A signer whose keys are S's previous ones, for the handshakes and
 * bundles of a peer that still pins them (docs/rotation.md section 4): it
 * does DH with the previous NoiseKey and signs nothing.  HL_ENOTFOUND
 * when S has no previous keys. */
int hl_signer_previous(const hl_signer *s, hl_signer **out);

/* True when CONTEXT is in the signer's table. */
int hl_signer_context_known(const char *context);
/* Ed25519 signature of MSG (LEN bytes), which must begin with CONTEXT and
 * a NUL, CONTEXT being one of the table's.  HL_EINVAL for an empty or
 * unknown context, a message that does not begin with it, or LEN over
 * HL_SIGNER_MSG_MAX; SIG is zeroed then. */
int hl_signer_sign(const hl_signer *s, const char *context, const uint8_t *msg, size_t len,
		   uint8_t sig[static HL_SIGNER_SIG_LEN]);
/* X25519 of the static private key and THEIR_PUB.  HL_ECRYPTO (and OUT
 * zeroed) when the result is all zero: a low-order public key. */
int hl_signer_dh(const hl_signer *s, const uint8_t their_pub[static HL_KEY_LEN],
		 uint8_t out[static HL_KEY_LEN]);

/* The public half of a signer: what a signer that holds no secret (the
 * key holder's face, hl_signer_remote) knows of the keys. */
struct hl_signer_public {
	uint8_t noise_pub[HL_KEY_LEN];
	uint8_t sign_pk[HL_KEY_LEN];
	bool has_next;                /* the identity commits to next keys */
	uint8_t next_hash[HL_KEY_LEN];
	bool has_prev;                /* it rotated: the keys it rotated away from */
	uint8_t prev_noise[HL_KEY_LEN];
	uint8_t prev_sign[HL_KEY_LEN];
	int64_t rotated_at;
};
void hl_signer_public(const hl_signer *s, struct hl_signer_public *out);

/* A signer that holds no secret: the public keys PUB, and its signatures,
 * DHs and rotation done by OPS with USER (a key-holding process:
 * holder/client.h).  hl_signer_sign checks its context and the message's
 * start as for any signer before it asks OPS; hl_signer_previous of it
 * makes a face whose DH is OPS->dh_previous; hl_signer_rotate asks
 * OPS->rotate (the holder reads its own identity.key and clock) and takes
 * the keys it answers.  OPS and USER must outlive it. */
struct hl_signer_ops {
	int (*sign)(void *user, const char *context, const uint8_t *msg, size_t len,
		    uint8_t sig[static HL_SIGNER_SIG_LEN]);
	int (*dh)(void *user, const uint8_t their_pub[static HL_KEY_LEN],
		  uint8_t out[static HL_KEY_LEN]);
	int (*dh_previous)(void *user, const uint8_t their_pub[static HL_KEY_LEN],
			   uint8_t out[static HL_KEY_LEN]);
	int (*rotate)(void *user, struct hl_signer_public *now);
};
hl_signer *hl_signer_remote(const struct hl_signer_ops *ops, void *user,
			    const struct hl_signer_public *pub);
/* USER, when S was made by hl_signer_remote with OPS (not its previous
 * keys' face); else NULL. */
void *hl_signer_remote_user(const hl_signer *s, const struct hl_signer_ops *ops);

/* Tests, fuzz targets and the benchmarks only: a signer from raw keys.
 * X25519 is the 32-byte X25519 private key, ED25519_SEED the 32-byte
 * Ed25519 seed; NULL makes that one at random.  No station code calls
 * this: a station's keys come from identity.key.  The first has no next
 * keys; the second has (NEXT_X25519, NEXT_SEED; NULL: random). */
int hl_signer_from_raw_for_tests(hl_signer **out, const uint8_t *x25519,
				 const uint8_t *ed25519_seed);
int hl_signer_with_next_for_tests(hl_signer **out, const uint8_t *x25519,
				  const uint8_t *ed25519_seed, const uint8_t *next_x25519,
				  const uint8_t *next_seed);
/* Tests only: S rotated in memory (as hl_signer_rotate, without a file):
 * a new signer.  HL_EUNSUPP when S holds no next private keys. */
int hl_signer_rotated_for_tests(const hl_signer *s, int64_t now_ms, hl_signer **out);

#endif
