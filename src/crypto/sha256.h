/* crypto/sha256.h — SHA-256 (FIPS 180-4), the hash of a document (an
 * attachment, an agreement's document: docs/items.md), from OpenSSL's
 * libcrypto: with the processor's SHA extensions it runs about twice as
 * fast as BLAKE2b here, and a third party checks a document with
 * `sha256sum`.  Every other hash stays libsodium's BLAKE2b.
 *
 * Only libcrypto's low-level SHA256_* functions are used, never EVP: they
 * need no provider, so a binary that hashes links a few kilobytes of
 * libcrypto, not its algorithm tables (which would cost every command
 * relocations at start-up).  Deprecated since OpenSSL 3.0 in favour of
 * EVP_MD_CTX but kept and maintained, running the same code; and the state
 * is a plain value, which the part hashes of deliver/ copy and drop with the
 * structures that hold them, with no allocation per document. */
#ifndef HL_CRYPTO_SHA256_H
#define HL_CRYPTO_SHA256_H

#include <stddef.h>
#include <stdint.h>

#define HL_SHA256_LEN 32

/* Big enough for libcrypto's SHA256_CTX (checked in sha256.c). */
typedef struct hl_sha256_state {
	_Alignas(8) uint8_t opaque[128];
} hl_sha256_state;

void hl_sha256_init(hl_sha256_state *s);
void hl_sha256_update(hl_sha256_state *s, const uint8_t *data, size_t len);
/* Writes the digest and wipes the state. */
void hl_sha256_final(hl_sha256_state *s, uint8_t out[static HL_SHA256_LEN]);
void hl_sha256(const uint8_t *data, size_t len, uint8_t out[static HL_SHA256_LEN]);

#endif
