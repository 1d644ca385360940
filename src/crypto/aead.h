/* crypto/aead.h — ChaCha20-Poly1305 (IETF, RFC 8439) from OpenSSL's
 * libcrypto through EVP, for the Noise transport's long records: with
 * AVX-512 it runs about three times as fast as libsodium's here
 * (docs/PERFORMANCE.md keeps both limits side by side), and its bytes are
 * the same (tests/unit/test_aead.c checks them against libsodium's).
 *
 * Only the daemon binary uses it (hotline-daemon: main.c hands
 * hl_aead_evp to crypto/noise.h's hl_noise_set_bulk_aead()).  EVP brings
 * libcrypto's provider with its algorithm tables, hundreds of kilobytes of
 * pointers that a static PIE relocates at every start: the `hotline`
 * commands, which start once per message, do not link it.
 *
 * An hl_aead is one EVP_CIPHER_CTX, made once per cipher state (not per
 * record) and keyed for one direction; a record only sets the nonce.  It
 * holds the key on the ordinary heap (OpenSSL's allocation), and freeing it
 * cleanses it.  Out of memory is fatal (util/mem.h). */
#ifndef HL_CRYPTO_AEAD_H
#define HL_CRYPTO_AEAD_H

#include "crypto/noise.h"

/* The implementation, for hl_noise_set_bulk_aead(). */
extern const struct hl_aead_impl hl_aead_evp;

#endif
