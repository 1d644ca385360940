/* crypto/aead.c — ChaCha20-Poly1305 through libcrypto's EVP (aead.h).
 *
 * The cipher is fetched once per process (an implicit fetch at every
 * EVP_*Init would look it up in the provider's tables each time).  Sealing
 * and opening follow EVP's AEAD sequence: nonce, tag (opening), associated
 * data, text, final; opening compares the tag in constant time in its final
 * call, and on a mismatch the plaintext it wrote is wiped before the
 * caller hears of it. */
#include "crypto/aead.h"

#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>

#include "util/err.h"

struct hl_aead {
	EVP_CIPHER_CTX *ctx;
	bool encrypt;
};

static EVP_CIPHER *cipher;
static pthread_once_t cipher_once = PTHREAD_ONCE_INIT;

static void fatal(const char *what)
{
	/* Only a broken libcrypto or no memory gets here: util/mem.h's policy. */
	fprintf(stderr, "hotline: libcrypto: %s failed\n", what);
	abort();
}

static void cipher_fetch(void)
{
	cipher = EVP_CIPHER_fetch(NULL, "ChaCha20-Poly1305", NULL);
	if (!cipher)
		fatal("fetching ChaCha20-Poly1305");
}

static void aead_key(struct hl_aead *a, const uint8_t key[static HL_NOISE_KEYLEN], bool encrypt)
{
	if (EVP_CipherInit_ex2(a->ctx, cipher, key, NULL, encrypt ? 1 : 0, NULL) != 1)
		fatal("EVP_CipherInit_ex2");
	a->encrypt = encrypt;
}

static struct hl_aead *aead_new(const uint8_t key[static HL_NOISE_KEYLEN], bool encrypt)
{
	pthread_once(&cipher_once, cipher_fetch);
	struct hl_aead *a = OPENSSL_zalloc(sizeof(*a));
	if (!a || !(a->ctx = EVP_CIPHER_CTX_new()))
		fatal("allocating a cipher context");
	aead_key(a, key, encrypt);
	return a;
}

static void aead_free(struct hl_aead *a)
{
	if (!a)
		return;
	EVP_CIPHER_CTX_free(a->ctx);  /* cleanses the key schedule */
	OPENSSL_clear_free(a, sizeof(*a));
}

static bool aead_encrypting(const struct hl_aead *a)
{
	return a->encrypt;
}

static int aead_seal(struct hl_aead *a, const uint8_t nonce[static 12], const uint8_t *ad,
		     size_t adlen, const uint8_t *pt, size_t ptlen, uint8_t *out)
{
	int n = 0, fin = 0;
	if (!a->encrypt || ptlen > HL_NOISE_MAX_MSG || adlen > INT_MAX)
		return HL_EINVAL;
	if (EVP_CipherInit_ex2(a->ctx, NULL, NULL, nonce, 1, NULL) != 1 ||
	    (adlen && EVP_CipherUpdate(a->ctx, NULL, &n, ad, (int)adlen) != 1) ||
	    (ptlen && EVP_CipherUpdate(a->ctx, out, &n, pt, (int)ptlen) != 1) ||
	    EVP_CipherFinal_ex(a->ctx, out + ptlen, &fin) != 1 ||
	    EVP_CIPHER_CTX_ctrl(a->ctx, EVP_CTRL_AEAD_GET_TAG, HL_NOISE_TAGLEN, out + ptlen) != 1) {
		ERR_clear_error();
		OPENSSL_cleanse(out, ptlen + HL_NOISE_TAGLEN);
		return HL_ECRYPTO;
	}
	return 0;
}

static int aead_open(struct hl_aead *a, const uint8_t nonce[static 12], const uint8_t *ad,
		     size_t adlen, const uint8_t *ct, size_t ptlen, uint8_t *out)
{
	uint8_t tag[HL_NOISE_TAGLEN];
	int n = 0, fin = 0;
	if (a->encrypt || ptlen > HL_NOISE_MAX_MSG || adlen > INT_MAX)
		return HL_EINVAL;
	/* Copied first: OUT may be CT, and the tag sits right after it. */
	memcpy(tag, ct + ptlen, sizeof(tag));
	if (EVP_CipherInit_ex2(a->ctx, NULL, NULL, nonce, 0, NULL) != 1 ||
	    EVP_CIPHER_CTX_ctrl(a->ctx, EVP_CTRL_AEAD_SET_TAG, HL_NOISE_TAGLEN, tag) != 1 ||
	    (adlen && EVP_CipherUpdate(a->ctx, NULL, &n, ad, (int)adlen) != 1) ||
	    (ptlen && EVP_CipherUpdate(a->ctx, out, &n, ct, (int)ptlen) != 1) ||
	    EVP_CipherFinal_ex(a->ctx, out + ptlen, &fin) != 1) {
		/* The tag is compared (in constant time) by the final call: what
		 * was decrypted before it is not released. */
		ERR_clear_error();
		OPENSSL_cleanse(out, ptlen);
		return HL_EAUTH;
	}
	return 0;
}

const struct hl_aead_impl hl_aead_evp = {
	.name = "libcrypto EVP",
	.make = aead_new,
	.rekey = aead_key,
	.free = aead_free,
	.encrypting = aead_encrypting,
	.seal = aead_seal,
	.open = aead_open,
};
