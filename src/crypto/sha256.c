/* crypto/sha256.c — SHA-256 from libcrypto's SHA256_* (sha256.h says why
 * not EVP). */
#define OPENSSL_SUPPRESS_DEPRECATED 1

#include "crypto/sha256.h"

#include <openssl/crypto.h>
#include <openssl/sha.h>

_Static_assert(sizeof(SHA256_CTX) <= sizeof(((hl_sha256_state *)0)->opaque),
	       "hl_sha256_state holds a SHA256_CTX");
_Static_assert(_Alignof(SHA256_CTX) <= 8, "and is aligned for it");
_Static_assert(HL_SHA256_LEN == SHA256_DIGEST_LENGTH, "SHA-256 is 32 bytes");

void hl_sha256_init(hl_sha256_state *s)
{
	SHA256_Init((SHA256_CTX *)s->opaque);
}

void hl_sha256_update(hl_sha256_state *s, const uint8_t *data, size_t len)
{
	if (len)
		SHA256_Update((SHA256_CTX *)s->opaque, data, len);
}

void hl_sha256_final(hl_sha256_state *s, uint8_t out[static HL_SHA256_LEN])
{
	SHA256_Final(out, (SHA256_CTX *)s->opaque);
	OPENSSL_cleanse(s, sizeof(*s));
}

void hl_sha256(const uint8_t *data, size_t len, uint8_t out[static HL_SHA256_LEN])
{
	hl_sha256_state s;
	hl_sha256_init(&s);
	hl_sha256_update(&s, data, len);
	hl_sha256_final(&s, out);
}
