/* crypto/noise.h — the Noise Protocol Framework, revision 34, on libsodium.
 *
 * Supported: DH 25519 (crypto_scalarmult), cipher ChaChaPoly (libsodium's
 * IETF ChaCha20-Poly1305, nonce = 32 zero bits || 64-bit little-endian n),
 * hash BLAKE2b (HASHLEN 64, BLOCKLEN 128; HMAC per RFC 2104 composed from
 * crypto_generichash, HKDF per section 4.3 of the specification).  Patterns:
 * the one-way N, K, X and the fundamental interactive NN, NK, NX, KN, KK, KX,
 * XN, XK, XX, IN, IK, IX, each with the pskN modifiers.  Anything else is
 * HL_EUNSUPP.
 *
 * Everything secret (the handshake state, cipher keys) lives in secure
 * memory (sodium_malloc() chunks shared through crypto/secpool.h) and is
 * wiped when freed.  The local static private key is not among them: the
 * signer holds it and computes its DHs.  Functions return 0 or a
 * negative HL_E* code; a handshake that fails is dead and must be freed. */
#ifndef HL_CRYPTO_NOISE_H
#define HL_CRYPTO_NOISE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "crypto/signer.h"

#define HL_NOISE_DHLEN 32
#define HL_NOISE_HASHLEN 64
#define HL_NOISE_KEYLEN 32
#define HL_NOISE_TAGLEN 16
#define HL_NOISE_MAX_MSG 65535  /* spec: a Noise message is at most 65535 bytes */

/* A CipherState (section 5.1).  Keep it in secure memory (sodium_malloc,
 * or hl_secmem_alloc) when it holds a session key; hl_cs_clear() wipes it.
 *
 * The CipherStates that Split() makes carry the transport's bulk data.
 * When a bulk implementation is set (hl_noise_set_bulk_aead below), their
 * records of HL_NOISE_BULK_MIN bytes or more go through it, with one
 * context made at the first such record and kept until hl_cs_clear(), which
 * frees it: a used bulk CipherState must be cleared, not only wiped.  The
 * handshake's own CipherState always uses libsodium. */
struct hl_aead;
typedef struct hl_cipher_state {
	uint8_t k[HL_NOISE_KEYLEN];
	uint64_t n;
	bool has_key;
	bool bulk;               /* made by Split() */
	struct hl_aead *aead;    /* the bulk context; NULL until a long record */
} hl_cipher_state;

/* Records this long or longer use the bulk implementation; shorter ones
 * libsodium, which costs the same there (EVP's set-up per record dominates
 * below about 1 KiB, measured) and needs no context: a session that only
 * sends short records (a handshake, an idle link) never makes one. */
#define HL_NOISE_BULK_MIN 1024

/* Another implementation of ChaCha20-Poly1305 (IETF) for long transport
 * records: the same bytes as libsodium's, faster (crypto/aead.h).  MAKE
 * keys a context for one direction; REKEY re-keys it (and may turn it);
 * SEAL writes PTLEN bytes and the 16-byte tag; OPEN checks the tag after
 * CT's PTLEN bytes and writes the plaintext, wiping OUT and returning
 * HL_EAUTH on a bad tag. */
struct hl_aead_impl {
	const char *name;
	struct hl_aead *(*make)(const uint8_t key[static HL_NOISE_KEYLEN], bool encrypt);
	void (*rekey)(struct hl_aead *a, const uint8_t key[static HL_NOISE_KEYLEN], bool encrypt);
	void (*free)(struct hl_aead *a);
	bool (*encrypting)(const struct hl_aead *a);
	int (*seal)(struct hl_aead *a, const uint8_t nonce[static 12], const uint8_t *ad,
		    size_t adlen, const uint8_t *pt, size_t ptlen, uint8_t *out);
	int (*open)(struct hl_aead *a, const uint8_t nonce[static 12], const uint8_t *ad,
		    size_t adlen, const uint8_t *ct, size_t ptlen, uint8_t *out);
};

/* Sets the bulk implementation for the whole process, once, before any
 * CipherState is made (the daemon binary does it at start); NULL, the
 * default, keeps libsodium for everything.  Returns the previous one. */
const struct hl_aead_impl *hl_noise_set_bulk_aead(const struct hl_aead_impl *impl);
/* The one in use: NULL for libsodium. */
const struct hl_aead_impl *hl_noise_bulk_aead(void);

/* InitializeKey(k) on a state that holds no bulk context (never used, or
 * cleared): the result is not bulk. */
void hl_cs_init(hl_cipher_state *cs, const uint8_t k[static HL_NOISE_KEYLEN]);
/* Wipes CS and frees its bulk context; NULL is fine. */
void hl_cs_clear(hl_cipher_state *cs);
/* EncryptWithAd: writes ptlen + 16 bytes (or ptlen without a key) to OUT,
 * which must hold that many (OUTCAP).  HL_ETOOBIG when it does not fit or
 * the result would exceed 65535 bytes; HL_ESTATE when n is exhausted. */
int hl_cs_encrypt(hl_cipher_state *cs, const uint8_t *ad, size_t adlen,
		  const uint8_t *pt, size_t ptlen, uint8_t *out, size_t outcap,
		  size_t *outlen);
/* DecryptWithAd: HL_EAUTH on a bad tag, and n is not advanced then.  No
 * unauthenticated byte reaches OUT's user: libsodium (short records, the
 * handshake) checks the tag before writing OUT and leaves OUT as it was;
 * the bulk implementation (long records) decrypts and checks in one pass
 * and wipes OUT (zeros) on a bad tag. */
int hl_cs_decrypt(hl_cipher_state *cs, const uint8_t *ad, size_t adlen,
		  const uint8_t *ct, size_t ctlen, uint8_t *out, size_t outcap,
		  size_t *outlen);
/* Rekey(): k = ENCRYPT(k, 2^64-1, zerolen, zeros)[0:32]. */
void hl_cs_rekey(hl_cipher_state *cs);

typedef struct hl_noise_hs hl_noise_hs;

/* Creates a HandshakeState for PROTOCOL_NAME (e.g.
 * "Noise_IK_25519_ChaChaPoly_BLAKE2b"), as initiator or responder.  Keys
 * are given with the setters below, then hl_noise_hs_start() runs
 * Initialize() (prologue, pre-messages). */
int hl_noise_hs_new(hl_noise_hs **out, const char *protocol_name, bool initiator);
void hl_noise_hs_free(hl_noise_hs *hs);

int hl_noise_hs_set_prologue(hl_noise_hs *hs, const uint8_t *prologue, size_t len);
/* The local static key: S holds its private half and does the DHs with it
 * (crypto/signer.h); its public half is taken from S, not derived again.
 * S must outlive the handshake (until it is split, fails or is freed). */
int hl_noise_hs_set_s(hl_noise_hs *hs, const hl_signer *s);
/* Local ephemeral private key: only tests use this; otherwise a fresh one
 * is generated when the pattern sends 'e'. */
int hl_noise_hs_set_e(hl_noise_hs *hs, const uint8_t priv[static HL_NOISE_DHLEN]);
int hl_noise_hs_set_rs(hl_noise_hs *hs, const uint8_t pub[static HL_NOISE_DHLEN]);
int hl_noise_hs_set_re(hl_noise_hs *hs, const uint8_t pub[static HL_NOISE_DHLEN]);
/* An authorization of the remote static key, called by hl_noise_hs_read as soon as
 * a message's 's' token has been decrypted, before the DH tokens after it:
 * a responder can refuse an unknown initiator without spending them (in
 * IK's message 1 that saves the 'ss' DH).  A negative return fails the read
 * with that code (the handshake is then dead).  The function must not free
 * or otherwise touch the handshake. */
typedef int (*hl_noise_rs_authorize)(void *user, const uint8_t rs[static HL_NOISE_DHLEN]);
int hl_noise_hs_set_rs_authorize(hl_noise_hs *hs, hl_noise_rs_authorize authorize, void *user);
/* Appends a pre-shared key; psk modifiers consume them in order. */
int hl_noise_hs_add_psk(hl_noise_hs *hs, const uint8_t psk[static 32]);
/* Checks that the keys the pattern needs are present; Initialize(). */
int hl_noise_hs_start(hl_noise_hs *hs);

/* True when the next handshake message is ours to write. */
bool hl_noise_hs_my_turn(const hl_noise_hs *hs);
/* True when every message of the pattern has been written or read. */
bool hl_noise_hs_done(const hl_noise_hs *hs);

/* WriteMessage / ReadMessage.  OUT/PAYLOAD capacities are checked; the
 * message length is capped at 65535.  A too-small OUT/PAYLOAD (HL_ETOOBIG)
 * or a call out of turn (HL_ESTATE) leaves the handshake as it was; any
 * other error (a truncated, forged or malformed message, a bad public key)
 * kills it. */
int hl_noise_hs_write(hl_noise_hs *hs, const uint8_t *payload, size_t plen,
		      uint8_t *out, size_t outcap, size_t *outlen);
int hl_noise_hs_read(hl_noise_hs *hs, const uint8_t *msg, size_t mlen,
		     uint8_t *payload, size_t pcap, size_t *plen);

/* After done: Split(), once.  SEND is the initiator's c1 for an initiator
 * and c2 for a responder; RECV the other.  One-way patterns carry only c1
 * (initiator to responder): the initiator's RECV and the responder's SEND
 * are left unkeyed.  SEND and RECV are outputs (whatever they held is
 * overwritten: clear a used one first); both are bulk CipherStates. */
int hl_noise_hs_split(hl_noise_hs *hs, hl_cipher_state *send, hl_cipher_state *recv);

/* The remote static public key, once known (else NULL). */
const uint8_t *hl_noise_hs_remote_static(const hl_noise_hs *hs);
/* The handshake hash h (channel binding), HASHLEN bytes. */
void hl_noise_hs_hash(const hl_noise_hs *hs, uint8_t h[static HL_NOISE_HASHLEN]);

#endif
