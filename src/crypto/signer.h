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
 * Memory: the secret keys are in sodium_malloc() memory (locked, guarded,
 * left out of core dumps), read-only once made, and wiped by
 * hl_signer_free().  The operations only read the signer, so several
 * threads may use one at once. */
#ifndef HL_CRYPTO_SIGNER_H
#define HL_CRYPTO_SIGNER_H

#include <stddef.h>
#include <stdint.h>

#include "crypto/keys.h"

#define HL_IDENTITY_MAX_BYTES 4096 /* an identity file is about 190 bytes */
#define HL_SIGNER_SIG_LEN 64
/* The longest message hl_signer_sign() takes: items are at most 16 KiB
 * (HL_ITEM_MAX), the record seal's message 54 bytes. */
#define HL_SIGNER_MSG_MAX 16384

typedef struct hl_signer hl_signer;

/* A new random identity. */
int hl_signer_generate(hl_signer **out);
/* Loads an identity file; checks nothing about the station directory (the
 * caller did, conf/perms.h).  The read buffer is sodium_malloc() memory,
 * wiped.  A file that group or others may read or write still loads (as
 * wireguard's genkey, it only warns: refusing would stop a station over a
 * chmod), but a warning naming it goes to stderr.  A symlink is refused
 * (O_NOFOLLOW). */
int hl_signer_load(const char *path, hl_signer **out);
/* Parses identity file text (BUF, LEN), for hl_signer_load and fuzzing.
 * HL_EINVAL, HL_ETRUNC (a key missing) or HL_ETOOBIG; the error never
 * quotes the text. */
int hl_signer_parse(const char *buf, size_t len, hl_signer **out);
/* Writes S as a new identity file: O_CREAT|O_EXCL|O_NOFOLLOW, mode 0600,
 * fsync'd.  -EEXIST when the file exists: an identity is never
 * overwritten. */
int hl_signer_write_new(const char *path, const hl_signer *s);
/* Wipes and frees.  NULL-safe. */
void hl_signer_free(hl_signer *s);

/* The public keys (HL_KEY_LEN bytes each, valid while S lives). */
const uint8_t *hl_signer_noise_pub(const hl_signer *s);
const uint8_t *hl_signer_sign_pk(const hl_signer *s);
void hl_signer_fingerprint(const hl_signer *s, uint8_t fp[static HL_FP_LEN]);

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

/* A signer that holds no secret: the public keys NOISE_PUB and SIGN_PK,
 * and its signatures and DH done by OPS with USER (a key-holding process:
 * holder/client.h).  hl_signer_sign checks its context and the message's
 * start as for any signer before it asks OPS.  OPS and USER must outlive
 * it. */
struct hl_signer_ops {
	int (*sign)(void *user, const char *context, const uint8_t *msg, size_t len,
		    uint8_t sig[static HL_SIGNER_SIG_LEN]);
	int (*dh)(void *user, const uint8_t their_pub[static HL_KEY_LEN],
		  uint8_t out[static HL_KEY_LEN]);
};
hl_signer *hl_signer_remote(const struct hl_signer_ops *ops, void *user,
			    const uint8_t noise_pub[static HL_KEY_LEN],
			    const uint8_t sign_pk[static HL_KEY_LEN]);
/* USER, when S was made by hl_signer_remote with OPS; else NULL. */
void *hl_signer_remote_user(const hl_signer *s, const struct hl_signer_ops *ops);

/* Tests, fuzz targets and the benchmarks only: a signer from raw keys.
 * X25519 is the 32-byte X25519 private key, ED25519_SEED the 32-byte
 * Ed25519 seed; NULL makes that one at random.  No station code calls
 * this: a station's keys come from identity.key. */
int hl_signer_from_raw_for_tests(hl_signer **out, const uint8_t *x25519,
				 const uint8_t *ed25519_seed);

#endif
