/* crypto/noise.c — the Noise Protocol Framework, revision 34, on libsodium
 * (interface and supported names in noise.h).
 *
 * This file owns the three Noise objects: the CipherState (section 5.1),
 * the SymmetricState (5.2) and the HandshakeState (5.3), for the single
 * suite 25519_ChaChaPoly_BLAKE2b.  Every primitive is libsodium's, except
 * that the transport's long records may go to another implementation of
 * the same cipher (noise.h: hl_noise_set_bulk_aead; the daemon uses
 * libcrypto's, crypto/aead.h); what is composed here is only what the
 * specification itself composes: HMAC (RFC 2104) over BLAKE2b, and HKDF
 * (section 4.3) over that HMAC.
 *
 * Handshake patterns are data.  The table below holds each fundamental
 * pattern's pre-messages and message tokens exactly as section 7 writes them;
 * psk modifiers (section 9) are applied to a copy of the tokens when the
 * protocol name is parsed, so one interpreter runs every pattern.
 *
 * The HandshakeState's life (hl_noise_hs.state):
 *
 *   hl_noise_hs_new --> SETUP --start--> RUNNING --last message--> DONE --split--> SPLIT
 *                   (setters,              |  (write / read)
 *                    prologue, psks)       +--any error from the message--> FAILED
 *
 * Setters work only in SETUP; write and read only in RUNNING and in turn.
 *
 * Invariants (checked by hs_check()):
 *   1. msg_index <= nmsgs; msg_index == 0 in SETUP; msg_index == nmsgs in
 *      DONE and SPLIT.
 *   2. psk_next <= npsk <= psk_needed <= HS_MAX_PSKS; psk_next == 0 in SETUP.
 *   3. A CipherState without a key has n == 0 (InitializeKey resets n).
 *   4. FAILED and SPLIT hold no private key, psk, chaining key or cipher
 *      key, nor the signer: they are wiped on entry, so a spent handshake
 *      leaks nothing and can use the static key no more.
 *
 * Errors caused by the caller's buffers (too small) or by calling out of
 * turn are reported without changing the state, so the caller may retry.
 * Errors caused by the message itself (truncated, forged, a bad public key)
 * or by a primitive kill the handshake: FAILED is final, and every later call
 * returns HL_ESTATE.  The specification leaves recovery to the
 * application; after a failure the transcript hash is half-updated, so the
 * only safe thing is to make the state dead explicitly. */
#include "crypto/noise.h"

#include <assert.h>
#include <string.h>

#include <sodium.h>

#include "crypto/secpool.h"
#include "crypto/signer.h"
#include "util/err.h"

#define HS_MAX_MSGS 3     /* XN, XK and XX have three messages */
#define HS_MAX_TOKENS 8   /* IX's second message (5), psk0 and one pskN */
#define HS_MAX_PSKS (HS_MAX_MSGS + 1)  /* psk0 .. psk3 */
#define HS_MAX_NAME 255   /* section 8: protocol names are at most 255 bytes */

static const char suite_suffix[] = "_25519_ChaChaPoly_BLAKE2b";

/* ------------------------------------------------------------------------
 * Handshake patterns (section 7.4 and 7.5)
 */

enum token { TOK_END = 0, TOK_E, TOK_S, TOK_EE, TOK_ES, TOK_SE, TOK_SS, TOK_PSK };

struct pattern {
	const char *name;
	bool pre_init_s;   /* "-> s" before the "..." */
	bool pre_resp_s;   /* "<- s" before the "..." */
	uint8_t msgs[HS_MAX_MSGS][HS_MAX_TOKENS - 2];  /* TOK_END-terminated */
};

#define E TOK_E
#define S TOK_S
#define EE TOK_EE
#define ES TOK_ES
#define SE TOK_SE
#define SS TOK_SS
/* Messages alternate: the first is the initiator's, the second the
 * responder's, and so on.  None of the supported patterns has an 'e' in a
 * pre-message, so the table only records pre-message statics. */
static const struct pattern patterns[] = {
	/* one-way (7.4) */
	{ "N", false, true, { { E, ES } } },
	{ "K", true, true, { { E, ES, SS } } },
	{ "X", false, true, { { E, ES, S, SS } } },
	/* interactive (7.5) */
	{ "NN", false, false, { { E }, { E, EE } } },
	{ "NK", false, true, { { E, ES }, { E, EE } } },
	{ "NX", false, false, { { E }, { E, EE, S, ES } } },
	{ "KN", true, false, { { E }, { E, EE, SE } } },
	{ "KK", true, true, { { E, ES, SS }, { E, EE, SE } } },
	{ "KX", true, false, { { E }, { E, EE, SE, S, ES } } },
	{ "XN", false, false, { { E }, { E, EE }, { S, SE } } },
	{ "XK", false, true, { { E, ES }, { E, EE }, { S, SE } } },
	{ "XX", false, false, { { E }, { E, EE, S, ES }, { S, SE } } },
	{ "IN", false, false, { { E, S }, { E, EE, SE } } },
	{ "IK", false, true, { { E, ES, S, SS }, { E, EE, SE } } },
	{ "IX", false, false, { { E, S }, { E, EE, SE, S, ES } } },
};
#undef E
#undef S
#undef EE
#undef ES
#undef SE
#undef SS

/* ------------------------------------------------------------------------
 * The HandshakeState, with its SymmetricState inline
 */

enum hs_state { HS_SETUP, HS_RUNNING, HS_DONE, HS_SPLIT, HS_FAILED };

struct keypair {
	uint8_t priv[HL_NOISE_DHLEN];
	uint8_t pub[HL_NOISE_DHLEN];
	bool set;
};

struct hl_noise_hs {
	/* SymmetricState */
	hl_cipher_state cs;
	uint8_t ck[HL_NOISE_HASHLEN];
	uint8_t h[HL_NOISE_HASHLEN];

	/* The local static key: its public half, and the signer that holds the
	 * private half and does its DHs (crypto/signer.h).  Only the
	 * ephemeral private key, made for this handshake, is kept here. */
	const hl_signer *s;
	uint8_t spub[HL_NOISE_DHLEN];
	struct keypair e;
	uint8_t rs[HL_NOISE_DHLEN];
	uint8_t re[HL_NOISE_DHLEN];
	bool has_rs, has_re;
	uint8_t psk[HS_MAX_PSKS][32];
	uint8_t npsk, psk_next, psk_needed;
	hl_noise_rs_authorize rs_authorize;   /* NULL: every remote static is read on */
	void *rs_authorize_user;

	/* The pattern with its psk modifiers applied. */
	const struct pattern *pat;
	uint8_t msgs[HS_MAX_MSGS][HS_MAX_TOKENS];
	uint8_t nmsgs, msg_index;
	bool psk_mode;
	bool initiator;
	bool prologue_mixed;
	enum hs_state state;
};

static void hs_check(const hl_noise_hs *hs)
{
	assert(hs->state <= HS_FAILED);
	assert(hs->nmsgs >= 1 && hs->nmsgs <= HS_MAX_MSGS);
	assert(hs->msg_index <= hs->nmsgs);
	assert(hs->state != HS_SETUP || (hs->msg_index == 0 && hs->psk_next == 0));
	assert((hs->state != HS_DONE && hs->state != HS_SPLIT) || hs->msg_index == hs->nmsgs);
	assert(hs->psk_next <= hs->npsk && hs->npsk <= hs->psk_needed);
	assert(hs->psk_needed <= HS_MAX_PSKS);
	assert(hs->cs.has_key || hs->cs.n == 0);
	assert((hs->state != HS_FAILED && hs->state != HS_SPLIT) ||
	       (!hs->cs.has_key && sodium_is_zero(hs->ck, sizeof hs->ck) &&
		sodium_is_zero(hs->e.priv, sizeof hs->e.priv) && !hs->s &&
		sodium_is_zero(&hs->psk[0][0], sizeof hs->psk)));
	(void)hs;
}

/* ------------------------------------------------------------------------
 * CipherState (section 5.1)
 */

static void make_nonce(uint8_t nonce[static crypto_aead_chacha20poly1305_ietf_NPUBBYTES], uint64_t n)
{
	/* Section 12.3: 32 bits of zeros, then n as 64-bit little-endian. */
	memset(nonce, 0, 4);
	for (int i = 0; i < 8; i++)
		nonce[4 + i] = (uint8_t)(n >> (8 * i));
}

void hl_cs_init(hl_cipher_state *cs, const uint8_t k[static HL_NOISE_KEYLEN])
{
	memcpy(cs->k, k, HL_NOISE_KEYLEN);
	cs->n = 0;
	cs->has_key = true;
	cs->bulk = false;
	cs->aead = NULL;
}

static const struct hl_aead_impl *bulk_impl;

const struct hl_aead_impl *hl_noise_set_bulk_aead(const struct hl_aead_impl *impl)
{
	const struct hl_aead_impl *old = bulk_impl;
	bulk_impl = impl;
	return old;
}

const struct hl_aead_impl *hl_noise_bulk_aead(void)
{
	return bulk_impl;
}

void hl_cs_clear(hl_cipher_state *cs)
{
	if (!cs)
		return;
	if (cs->aead)
		bulk_impl->free(cs->aead);
	sodium_memzero(cs, sizeof *cs);
}

/* The bulk context for a long record in direction ENCRYPT, made at the
 * first one; NULL (libsodium then) when CS is not bulk, the record is short
 * or no bulk implementation is set. */
static struct hl_aead *cs_aead(hl_cipher_state *cs, size_t ptlen, bool encrypt)
{
	if (!cs->bulk || ptlen < HL_NOISE_BULK_MIN || !bulk_impl)
		return NULL;
	if (!cs->aead)
		cs->aead = bulk_impl->make(cs->k, encrypt);
	else if (bulk_impl->encrypting(cs->aead) != encrypt)
		bulk_impl->rekey(cs->aead, cs->k, encrypt);
	return cs->aead;
}

int hl_cs_encrypt(hl_cipher_state *cs, const uint8_t *ad, size_t adlen,
		  const uint8_t *pt, size_t ptlen, uint8_t *out, size_t outcap,
		  size_t *outlen)
{
	static const uint8_t none[1];
	uint8_t nonce[crypto_aead_chacha20poly1305_ietf_NPUBBYTES];
	unsigned long long clen = 0;

	if (!cs || !out || !outlen || (!pt && ptlen) || (!ad && adlen))
		return HL_EINVAL;
	*outlen = 0;
	if (ptlen > HL_NOISE_MAX_MSG)
		return HL_ETOOBIG;
	if (!cs->has_key) {
		/* Without a key EncryptWithAd returns the plaintext. */
		if (ptlen > outcap)
			return HL_ETOOBIG;
		if (ptlen)
			memmove(out, pt, ptlen);
		*outlen = ptlen;
		return 0;
	}
	if (ptlen + HL_NOISE_TAGLEN > HL_NOISE_MAX_MSG || ptlen + HL_NOISE_TAGLEN > outcap)
		return HL_ETOOBIG;
	/* n = 2^64-1 is reserved for Rekey (section 5.1). */
	if (cs->n == UINT64_MAX)
		return HL_ESTATE;
	make_nonce(nonce, cs->n);
	struct hl_aead *aead = cs_aead(cs, ptlen, true);
	if (aead) {
		int rc = bulk_impl->seal(aead, nonce, ad, adlen, pt, ptlen, out);
		if (rc < 0)
			return rc;
		clen = ptlen + HL_NOISE_TAGLEN;
	} else {
		crypto_aead_chacha20poly1305_ietf_encrypt(out, &clen, pt ? pt : none, ptlen,
							  ad, adlen, NULL, nonce, cs->k);
	}
	cs->n++;
	*outlen = (size_t)clen;
	return 0;
}

int hl_cs_decrypt(hl_cipher_state *cs, const uint8_t *ad, size_t adlen,
		  const uint8_t *ct, size_t ctlen, uint8_t *out, size_t outcap,
		  size_t *outlen)
{
	uint8_t nonce[crypto_aead_chacha20poly1305_ietf_NPUBBYTES];
	size_t ptlen;

	if (!cs || !outlen || (!ct && ctlen) || (!out && outcap) || (!ad && adlen))
		return HL_EINVAL;
	*outlen = 0;
	if (ctlen > HL_NOISE_MAX_MSG)
		return HL_ETOOBIG;
	if (!cs->has_key) {
		if (ctlen > outcap)
			return HL_ETOOBIG;
		if (ctlen)
			memmove(out, ct, ctlen);
		*outlen = ctlen;
		return 0;
	}
	if (ctlen < HL_NOISE_TAGLEN)
		return HL_ETRUNC;
	ptlen = ctlen - HL_NOISE_TAGLEN;
	if (ptlen > outcap)
		return HL_ETOOBIG;
	if (cs->n == UINT64_MAX)
		return HL_ESTATE;
	make_nonce(nonce, cs->n);
	struct hl_aead *aead = cs_aead(cs, ptlen, false);
	if (aead) {
		/* One pass; OUT is wiped on a bad tag (noise.h). */
		if (bulk_impl->open(aead, nonce, ad, adlen, ct, ptlen, out) < 0)
			return HL_EAUTH;
		cs->n++;
		*outlen = ptlen;
		return 0;
	}
	/* libsodium's detached decryption with a NULL message only verifies the
	 * tag; on failure it would otherwise zero OUT.  Verifying first keeps
	 * OUT untouched for a forgery, as noise.h promises. */
	if (crypto_aead_chacha20poly1305_ietf_decrypt_detached(NULL, NULL, ct, ptlen,
								ct + ptlen, ad, adlen,
								nonce, cs->k) != 0)
		return HL_EAUTH;
	if (ptlen &&
	    crypto_aead_chacha20poly1305_ietf_decrypt_detached(out, NULL, ct, ptlen,
								ct + ptlen, ad, adlen,
								nonce, cs->k) != 0)
		return HL_EAUTH;
	cs->n++;
	*outlen = ptlen;
	return 0;
}

void hl_cs_rekey(hl_cipher_state *cs)
{
	static const uint8_t zeros[HL_NOISE_KEYLEN];
	uint8_t nonce[crypto_aead_chacha20poly1305_ietf_NPUBBYTES];
	uint8_t tmp[HL_NOISE_KEYLEN + HL_NOISE_TAGLEN];
	unsigned long long clen;

	if (!cs || !cs->has_key)
		return;
	/* Section 4.2: REKEY(k) = ENCRYPT(k, maxnonce, zerolen, zeros)[0:32];
	 * n is left as it is. */
	make_nonce(nonce, UINT64_MAX);
	crypto_aead_chacha20poly1305_ietf_encrypt(tmp, &clen, zeros, sizeof zeros,
						  NULL, 0, NULL, nonce, cs->k);
	memcpy(cs->k, tmp, HL_NOISE_KEYLEN);
	sodium_memzero(tmp, sizeof tmp);
	if (cs->aead)
		bulk_impl->rekey(cs->aead, cs->k, bulk_impl->encrypting(cs->aead));
}

/* ------------------------------------------------------------------------
 * Hash, HMAC and HKDF over BLAKE2b (section 4.3)
 */

#define BLAKE2B_BLOCKLEN 128

static void hash2(uint8_t out[static HL_NOISE_HASHLEN], const uint8_t *a, size_t alen,
		  const uint8_t *b, size_t blen)
{
	crypto_generichash_state st;

	crypto_generichash_init(&st, NULL, 0, HL_NOISE_HASHLEN);
	crypto_generichash_update(&st, a, alen);
	crypto_generichash_update(&st, b, blen);
	crypto_generichash_final(&st, out, HL_NOISE_HASHLEN);
	sodium_memzero(&st, sizeof st);
}

/* HMAC-BLAKE2b (RFC 2104) of D1 || D2 under a HASHLEN-byte key.  libsodium's
 * keyed BLAKE2b is a different MAC, so Noise's HMAC is built here from the
 * unkeyed hash, as the specification defines it. */
static void hmac(uint8_t out[static HL_NOISE_HASHLEN], const uint8_t key[static HL_NOISE_HASHLEN],
		 const uint8_t *d1, size_t l1, const uint8_t *d2, size_t l2)
{
	crypto_generichash_state st;
	uint8_t pad[BLAKE2B_BLOCKLEN];
	uint8_t inner[HL_NOISE_HASHLEN];

	memset(pad, 0, sizeof pad);
	memcpy(pad, key, HL_NOISE_HASHLEN);
	for (size_t i = 0; i < sizeof pad; i++)
		pad[i] ^= 0x36;
	crypto_generichash_init(&st, NULL, 0, HL_NOISE_HASHLEN);
	crypto_generichash_update(&st, pad, sizeof pad);
	crypto_generichash_update(&st, d1, l1);
	crypto_generichash_update(&st, d2, l2);
	crypto_generichash_final(&st, inner, sizeof inner);

	for (size_t i = 0; i < sizeof pad; i++)
		pad[i] ^= 0x36 ^ 0x5c;
	crypto_generichash_init(&st, NULL, 0, HL_NOISE_HASHLEN);
	crypto_generichash_update(&st, pad, sizeof pad);
	crypto_generichash_update(&st, inner, sizeof inner);
	crypto_generichash_final(&st, out, HL_NOISE_HASHLEN);

	sodium_memzero(&st, sizeof st);
	sodium_memzero(pad, sizeof pad);
	sodium_memzero(inner, sizeof inner);
}

/* HKDF(chaining_key, input_key_material, num_outputs) with 2 outputs, or 3
 * when OUT3 is not NULL.  The outputs may alias CK. */
static void hkdf(const uint8_t ck[static HL_NOISE_HASHLEN], const uint8_t *ikm, size_t ikmlen,
		 uint8_t *out1, uint8_t *out2, uint8_t *out3)
{
	uint8_t temp_key[HL_NOISE_HASHLEN];
	uint8_t o1[HL_NOISE_HASHLEN], o2[HL_NOISE_HASHLEN], o3[HL_NOISE_HASHLEN];
	const uint8_t b1 = 0x01, b2 = 0x02, b3 = 0x03;

	hmac(temp_key, ck, ikm, ikmlen, NULL, 0);
	hmac(o1, temp_key, &b1, 1, NULL, 0);
	hmac(o2, temp_key, o1, sizeof o1, &b2, 1);
	if (out3)
		hmac(o3, temp_key, o2, sizeof o2, &b3, 1);
	memcpy(out1, o1, HL_NOISE_HASHLEN);
	memcpy(out2, o2, HL_NOISE_HASHLEN);
	if (out3)
		memcpy(out3, o3, HL_NOISE_HASHLEN);
	sodium_memzero(temp_key, sizeof temp_key);
	sodium_memzero(o1, sizeof o1);
	sodium_memzero(o2, sizeof o2);
	sodium_memzero(o3, sizeof o3);
}

/* ------------------------------------------------------------------------
 * SymmetricState (section 5.2)
 */

static void mix_hash(hl_noise_hs *hs, const uint8_t *data, size_t len)
{
	hash2(hs->h, hs->h, sizeof hs->h, data, len);
}

static void mix_key(hl_noise_hs *hs, const uint8_t *ikm, size_t len)
{
	uint8_t temp_k[HL_NOISE_HASHLEN];

	hkdf(hs->ck, ikm, len, hs->ck, temp_k, NULL);
	hl_cs_init(&hs->cs, temp_k);  /* truncated to 32 bytes (HASHLEN 64) */
	sodium_memzero(temp_k, sizeof temp_k);
}

static void mix_key_and_hash(hl_noise_hs *hs, const uint8_t *ikm, size_t len)
{
	uint8_t temp_h[HL_NOISE_HASHLEN], temp_k[HL_NOISE_HASHLEN];

	hkdf(hs->ck, ikm, len, hs->ck, temp_h, temp_k);
	mix_hash(hs, temp_h, sizeof temp_h);
	hl_cs_init(&hs->cs, temp_k);
	sodium_memzero(temp_h, sizeof temp_h);
	sodium_memzero(temp_k, sizeof temp_k);
}

static int encrypt_and_hash(hl_noise_hs *hs, const uint8_t *pt, size_t ptlen,
			    uint8_t *out, size_t outcap, size_t *outlen)
{
	int rc = hl_cs_encrypt(&hs->cs, hs->h, sizeof hs->h, pt, ptlen, out, outcap, outlen);
	if (rc == 0)
		mix_hash(hs, out, *outlen);
	return rc;
}

static int decrypt_and_hash(hl_noise_hs *hs, const uint8_t *ct, size_t ctlen,
			    uint8_t *out, size_t outcap, size_t *outlen)
{
	int rc = hl_cs_decrypt(&hs->cs, hs->h, sizeof hs->h, ct, ctlen, out, outcap, outlen);
	if (rc == 0)
		mix_hash(hs, ct, ctlen);
	return rc;
}

/* ------------------------------------------------------------------------
 * DH 25519
 */

static int keypair_from_priv(struct keypair *kp, const uint8_t priv[static HL_NOISE_DHLEN])
{
	memcpy(kp->priv, priv, HL_NOISE_DHLEN);
	if (crypto_scalarmult_base(kp->pub, kp->priv) != 0) {
		sodium_memzero(kp, sizeof *kp);
		return HL_ECRYPTO;
	}
	kp->set = true;
	return 0;
}

static int keypair_generate(struct keypair *kp)
{
	uint8_t priv[HL_NOISE_DHLEN];
	int rc;

	randombytes_buf(priv, sizeof priv);
	rc = keypair_from_priv(kp, priv);
	sodium_memzero(priv, sizeof priv);
	return rc;
}

/* DH(priv, pub) per section 4.1; an all-zero result (a low-order public
 * key) is refused.  libsodium already returns -1 for it; checking the output
 * too keeps the promise independent of the library version. */
static int dh(uint8_t out[static HL_NOISE_DHLEN], const uint8_t priv[static HL_NOISE_DHLEN],
	      const uint8_t pub[static HL_NOISE_DHLEN])
{
	if (crypto_scalarmult(out, priv, pub) != 0 || sodium_is_zero(out, HL_NOISE_DHLEN)) {
		sodium_memzero(out, HL_NOISE_DHLEN);
		return HL_ECRYPTO;
	}
	return 0;
}

/* ------------------------------------------------------------------------
 * Protocol names
 */

/* Parses "psk<N>" modifiers joined by '+' (section 9.1: psk0 puts a "psk"
 * token at the start of the first message, pskN at the end of message N) and
 * sets bit N of *MASK for each.  Repeated or out-of-range modifiers, and
 * every other modifier (fallback, deferred ...), are unsupported. */
static int parse_modifiers(const char *p, size_t len, size_t nmsgs, unsigned *mask)
{
	size_t i = 0;

	*mask = 0;
	while (i < len) {
		unsigned n = 0;
		size_t digits = 0;

		if (len - i < 4 || memcmp(p + i, "psk", 3) != 0)
			return HL_EUNSUPP;
		i += 3;
		while (i < len && p[i] >= '0' && p[i] <= '9' && digits < 2) {
			n = n * 10 + (unsigned)(p[i] - '0');
			i++;
			digits++;
		}
		/* No leading zeros ("psk01"), no three-digit numbers. */
		if (digits == 0 || (digits == 2 && p[i - 2] == '0'))
			return HL_EUNSUPP;
		if (n > nmsgs || (*mask & (1u << n)))
			return HL_EUNSUPP;
		*mask |= 1u << n;
		if (i < len) {
			if (p[i] != '+' || i + 1 == len)
				return HL_EUNSUPP;
			i++;
		}
	}
	return 0;
}

/* Fills HS's pattern fields from the part of the protocol name between
 * "Noise_" and the suite: a fundamental pattern name and its modifiers. */
static int parse_pattern(hl_noise_hs *hs, const char *p, size_t len)
{
	const struct pattern *pat = NULL;
	size_t base = 0, nmsgs = 0;
	unsigned mask;
	int rc;

	while (base < len && ((p[base] >= 'A' && p[base] <= 'Z') || (p[base] >= '0' && p[base] <= '9')))
		base++;
	for (size_t i = 0; i < sizeof patterns / sizeof patterns[0]; i++) {
		if (strlen(patterns[i].name) == base && memcmp(patterns[i].name, p, base) == 0) {
			pat = &patterns[i];
			break;
		}
	}
	if (!pat)
		return HL_EUNSUPP;
	while (nmsgs < HS_MAX_MSGS && pat->msgs[nmsgs][0] != TOK_END)
		nmsgs++;
	rc = parse_modifiers(p + base, len - base, nmsgs, &mask);
	if (rc < 0)
		return rc;

	hs->pat = pat;
	hs->nmsgs = (uint8_t)nmsgs;
	hs->psk_mode = mask != 0;
	hs->psk_needed = 0;
	for (size_t m = 0; m < nmsgs; m++) {
		size_t t = 0;
		if (m == 0 && (mask & 1u)) {
			hs->msgs[m][t++] = TOK_PSK;
			hs->psk_needed++;
		}
		for (size_t j = 0; pat->msgs[m][j] != TOK_END; j++)
			hs->msgs[m][t++] = pat->msgs[m][j];
		if (mask & (1u << (m + 1))) {
			hs->msgs[m][t++] = TOK_PSK;
			hs->psk_needed++;
		}
		assert(t < HS_MAX_TOKENS);
		hs->msgs[m][t] = TOK_END;
	}
	return 0;
}

/* ------------------------------------------------------------------------
 * HandshakeState (section 5.3)
 */

/* Wipes every secret and makes the handshake dead. */
static int hs_fail(hl_noise_hs *hs, int rc)
{
	hl_cs_clear(&hs->cs);
	sodium_memzero(hs->ck, sizeof hs->ck);
	hs->s = NULL;
	sodium_memzero(&hs->e, sizeof hs->e);
	sodium_memzero(hs->psk, sizeof hs->psk);
	hs->state = HS_FAILED;
	hs_check(hs);
	return rc;
}

int hl_noise_hs_new(hl_noise_hs **out, const char *protocol_name, bool initiator)
{
	static const char prefix[] = "Noise_";
	const size_t plen = sizeof prefix - 1, slen = sizeof suite_suffix - 1;
	hl_noise_hs *hs = NULL;
	size_t len;
	int rc;

	if (!out)
		return HL_EINVAL;
	*out = NULL;
	if (!protocol_name)
		return HL_EINVAL;
	len = strnlen(protocol_name, HS_MAX_NAME + 1);
	if (len > HS_MAX_NAME || len < plen || memcmp(protocol_name, prefix, plen) != 0)
		return HL_EINVAL;
	if (len < plen + slen || memcmp(protocol_name + len - slen, suite_suffix, slen) != 0)
		return HL_EUNSUPP;
	if (sodium_init() < 0)
		return HL_ECRYPTO;

	/* Secure memory from the shared pool (crypto/secpool.h), zeroed: a
	 * fresh sodium_malloc() mapping for each handshake cost more than the
	 * handshake's hashing. */
	hs = hl_secmem_alloc(sizeof *hs);
	hs->initiator = initiator;
	hs->state = HS_SETUP;
	rc = parse_pattern(hs, protocol_name + plen, len - plen - slen);
	if (rc < 0)
		goto out;

	/* InitializeSymmetric(protocol_name): h is the name padded with zeros
	 * when it fits in HASHLEN, else its hash; ck = h. */
	if (len <= HL_NOISE_HASHLEN)
		memcpy(hs->h, protocol_name, len);
	else
		hash2(hs->h, (const uint8_t *)protocol_name, len, NULL, 0);
	memcpy(hs->ck, hs->h, sizeof hs->ck);
	hs_check(hs);
	*out = hs;
	hs = NULL;
out:
	hl_noise_hs_free(hs);
	return rc;
}

void hl_noise_hs_free(hl_noise_hs *hs)
{
	if (!hs)
		return;
	hl_secmem_free(hs, sizeof *hs);   /* wipes */
}

int hl_noise_hs_set_prologue(hl_noise_hs *hs, const uint8_t *prologue, size_t len)
{
	if (!hs || (!prologue && len))
		return HL_EINVAL;
	if (hs->state != HS_SETUP || hs->prologue_mixed)
		return HL_ESTATE;
	mix_hash(hs, prologue, len);
	hs->prologue_mixed = true;
	return 0;
}

int hl_noise_hs_set_s(hl_noise_hs *hs, const hl_signer *s)
{
	if (!hs || !s)
		return HL_EINVAL;
	if (hs->state != HS_SETUP)
		return HL_ESTATE;
	hs->s = s;
	memcpy(hs->spub, hl_signer_noise_pub(s), HL_NOISE_DHLEN);
	return 0;
}

int hl_noise_hs_set_e(hl_noise_hs *hs, const uint8_t priv[static HL_NOISE_DHLEN])
{
	if (!hs || !priv)
		return HL_EINVAL;
	if (hs->state != HS_SETUP)
		return HL_ESTATE;
	return keypair_from_priv(&hs->e, priv);
}

int hl_noise_hs_set_rs(hl_noise_hs *hs, const uint8_t pub[static HL_NOISE_DHLEN])
{
	if (!hs || !pub)
		return HL_EINVAL;
	if (hs->state != HS_SETUP)
		return HL_ESTATE;
	memcpy(hs->rs, pub, HL_NOISE_DHLEN);
	hs->has_rs = true;
	return 0;
}

int hl_noise_hs_set_re(hl_noise_hs *hs, const uint8_t pub[static HL_NOISE_DHLEN])
{
	if (!hs || !pub)
		return HL_EINVAL;
	if (hs->state != HS_SETUP)
		return HL_ESTATE;
	/* Only the fallback patterns have an ephemeral pre-message. */
	return HL_EUNSUPP;
}

int hl_noise_hs_set_rs_authorize(hl_noise_hs *hs, hl_noise_rs_authorize authorize, void *user)
{
	if (!hs)
		return HL_EINVAL;
	if (hs->state != HS_SETUP)
		return HL_ESTATE;
	hs->rs_authorize = authorize;
	hs->rs_authorize_user = user;
	return 0;
}

int hl_noise_hs_add_psk(hl_noise_hs *hs, const uint8_t psk[static 32])
{
	if (!hs || !psk)
		return HL_EINVAL;
	if (hs->state != HS_SETUP)
		return HL_ESTATE;
	if (hs->npsk >= hs->psk_needed)
		return HL_EINVAL;  /* more keys than the pattern has psk tokens */
	memcpy(hs->psk[hs->npsk++], psk, 32);
	return 0;
}

static bool sends_token(const hl_noise_hs *hs, enum token tok)
{
	for (size_t m = hs->initiator ? 0 : 1; m < hs->nmsgs; m += 2)
		for (size_t t = 0; hs->msgs[m][t] != TOK_END; t++)
			if (hs->msgs[m][t] == tok)
				return true;
	return false;
}

int hl_noise_hs_start(hl_noise_hs *hs)
{
	bool local_pre, remote_pre;

	if (!hs)
		return HL_EINVAL;
	hs_check(hs);
	if (hs->state != HS_SETUP)
		return HL_ESTATE;
	local_pre = hs->initiator ? hs->pat->pre_init_s : hs->pat->pre_resp_s;
	remote_pre = hs->initiator ? hs->pat->pre_resp_s : hs->pat->pre_init_s;
	if ((local_pre || sends_token(hs, TOK_S)) && !hs->s)
		return HL_ESTATE;
	if (remote_pre && !hs->has_rs)
		return HL_ESTATE;
	/* A remote static the pattern transmits (or never uses) would be
	 * silently replaced or ignored; refuse it so that nobody believes a
	 * pinned key is being enforced when it is not. */
	if (!remote_pre && hs->has_rs)
		return HL_EINVAL;
	if (hs->npsk != hs->psk_needed)
		return HL_ESTATE;

	/* Initialize(): the prologue (empty unless set), then the pre-message
	 * public keys, the initiator's first (section 5.3). */
	if (!hs->prologue_mixed) {
		mix_hash(hs, NULL, 0);
		hs->prologue_mixed = true;
	}
	if (hs->pat->pre_init_s)
		mix_hash(hs, hs->initiator ? hs->spub : hs->rs, HL_NOISE_DHLEN);
	if (hs->pat->pre_resp_s)
		mix_hash(hs, hs->initiator ? hs->rs : hs->spub, HL_NOISE_DHLEN);
	hs->state = HS_RUNNING;
	hs_check(hs);
	return 0;
}

bool hl_noise_hs_my_turn(const hl_noise_hs *hs)
{
	return hs && hs->state == HS_RUNNING && ((hs->msg_index % 2 == 0) == hs->initiator);
}

bool hl_noise_hs_done(const hl_noise_hs *hs)
{
	return hs && (hs->state == HS_DONE || hs->state == HS_SPLIT);
}

/* The bytes message TOKS carries besides its payload, walked from the
 * current key state; *KEYED tells whether the payload will be encrypted. */
static size_t msg_overhead(const hl_noise_hs *hs, const uint8_t *toks, bool *keyed)
{
	bool k = hs->cs.has_key;
	size_t n = 0;

	for (; *toks != TOK_END; toks++) {
		switch (*toks) {
		case TOK_E:
			n += HL_NOISE_DHLEN;
			if (hs->psk_mode)
				k = true;
			break;
		case TOK_S:
			n += HL_NOISE_DHLEN + (k ? HL_NOISE_TAGLEN : 0);
			break;
		default:  /* DH tokens and psk call MixKey */
			k = true;
			break;
		}
	}
	*keyed = k;
	return n;
}

/* MixKey(DH(...)) for a DH token, choosing the keys by role (section 5.3).
 * A DH with our static key is the signer's; with our ephemeral, ours. */
static int mix_dh(hl_noise_hs *hs, enum token tok)
{
	bool local_s;
	const uint8_t *remote;
	bool has_remote;
	uint8_t shared[HL_NOISE_DHLEN];
	int rc;

	switch (tok) {
	case TOK_EE: local_s = false; remote = hs->re; has_remote = hs->has_re; break;
	case TOK_ES:
		local_s = !hs->initiator;
		remote = hs->initiator ? hs->rs : hs->re;
		has_remote = hs->initiator ? hs->has_rs : hs->has_re;
		break;
	case TOK_SE:
		local_s = hs->initiator;
		remote = hs->initiator ? hs->re : hs->rs;
		has_remote = hs->initiator ? hs->has_re : hs->has_rs;
		break;
	case TOK_SS: local_s = true; remote = hs->rs; has_remote = hs->has_rs; break;
	default: return HL_ESTATE;
	}
	/* hl_noise_hs_start() checked the keys the pattern needs; this guards
	 * the table itself. */
	if ((local_s ? !hs->s : !hs->e.set) || !has_remote)
		return HL_ESTATE;
	rc = local_s ? hl_signer_dh(hs->s, remote, shared) : dh(shared, hs->e.priv, remote);
	if (rc == 0)
		mix_key(hs, shared, sizeof shared);
	sodium_memzero(shared, sizeof shared);
	return rc;
}

static void advance(hl_noise_hs *hs)
{
	hs->msg_index++;
	if (hs->msg_index == hs->nmsgs)
		hs->state = HS_DONE;
	hs_check(hs);
}

int hl_noise_hs_write(hl_noise_hs *hs, const uint8_t *payload, size_t plen,
		      uint8_t *out, size_t outcap, size_t *outlen)
{
	const uint8_t *toks;
	size_t need, pos = 0, n;
	bool keyed;
	int rc = 0;

	if (!hs || !out || !outlen || (!payload && plen))
		return HL_EINVAL;
	*outlen = 0;
	hs_check(hs);
	if (!hl_noise_hs_my_turn(hs))
		return HL_ESTATE;
	toks = hs->msgs[hs->msg_index];
	if (plen > HL_NOISE_MAX_MSG)
		return HL_ETOOBIG;
	need = msg_overhead(hs, toks, &keyed) + plen + (keyed ? HL_NOISE_TAGLEN : 0);
	if (need > HL_NOISE_MAX_MSG || need > outcap)
		return HL_ETOOBIG;

	for (; *toks != TOK_END; toks++) {
		switch (*toks) {
		case TOK_E:
			if (!hs->e.set && (rc = keypair_generate(&hs->e)) < 0)
				goto out;
			memcpy(out + pos, hs->e.pub, HL_NOISE_DHLEN);
			pos += HL_NOISE_DHLEN;
			mix_hash(hs, hs->e.pub, HL_NOISE_DHLEN);
			if (hs->psk_mode)
				mix_key(hs, hs->e.pub, HL_NOISE_DHLEN);
			break;
		case TOK_S:
			rc = encrypt_and_hash(hs, hs->spub, HL_NOISE_DHLEN, out + pos, outcap - pos, &n);
			if (rc < 0)
				goto out;
			pos += n;
			break;
		case TOK_PSK:
			mix_key_and_hash(hs, hs->psk[hs->psk_next++], 32);
			break;
		default:
			if ((rc = mix_dh(hs, *toks)) < 0)
				goto out;
			break;
		}
	}
	rc = encrypt_and_hash(hs, payload, plen, out + pos, outcap - pos, &n);
	if (rc < 0)
		goto out;
	pos += n;
	assert(pos == need);
	*outlen = pos;
	advance(hs);
out:
	if (rc < 0)
		return hs_fail(hs, rc);
	return 0;
}

int hl_noise_hs_read(hl_noise_hs *hs, const uint8_t *msg, size_t mlen,
		     uint8_t *payload, size_t pcap, size_t *plen)
{
	const uint8_t *toks;
	size_t fixed, pos = 0, ctlen, n;
	bool keyed;
	int rc = 0;

	if (!hs || (!msg && mlen) || (!payload && pcap) || !plen)
		return HL_EINVAL;
	*plen = 0;
	hs_check(hs);
	if (hs->state != HS_RUNNING || hl_noise_hs_my_turn(hs))
		return HL_ESTATE;
	toks = hs->msgs[hs->msg_index];
	if (mlen > HL_NOISE_MAX_MSG) {
		rc = HL_ETOOBIG;
		goto out;
	}
	fixed = msg_overhead(hs, toks, &keyed) + (keyed ? HL_NOISE_TAGLEN : 0);
	if (mlen < fixed) {
		rc = HL_ETRUNC;
		goto out;
	}
	/* The payload buffer is the caller's: too small is not the peer's
	 * fault, so the handshake stays alive for a retry. */
	if (mlen - fixed > pcap)
		return HL_ETOOBIG;

	for (; *toks != TOK_END; toks++) {
		switch (*toks) {
		case TOK_E:
			memcpy(hs->re, msg + pos, HL_NOISE_DHLEN);
			hs->has_re = true;
			pos += HL_NOISE_DHLEN;
			mix_hash(hs, hs->re, HL_NOISE_DHLEN);
			if (hs->psk_mode)
				mix_key(hs, hs->re, HL_NOISE_DHLEN);
			break;
		case TOK_S:
			ctlen = HL_NOISE_DHLEN + (hs->cs.has_key ? HL_NOISE_TAGLEN : 0);
			rc = decrypt_and_hash(hs, msg + pos, ctlen, hs->rs, sizeof hs->rs, &n);
			if (rc < 0)
				goto out;
			hs->has_rs = true;
			pos += ctlen;
			/* Before the DHs that use it: the caller may refuse the key. */
			if (hs->rs_authorize && (rc = hs->rs_authorize(hs->rs_authorize_user, hs->rs)) < 0)
				goto out;
			break;
		case TOK_PSK:
			mix_key_and_hash(hs, hs->psk[hs->psk_next++], 32);
			break;
		default:
			if ((rc = mix_dh(hs, *toks)) < 0)
				goto out;
			break;
		}
	}
	rc = decrypt_and_hash(hs, msg + pos, mlen - pos, payload, pcap, plen);
	if (rc < 0)
		goto out;
	advance(hs);
out:
	if (rc < 0)
		return hs_fail(hs, rc);
	return 0;
}

int hl_noise_hs_split(hl_noise_hs *hs, hl_cipher_state *send, hl_cipher_state *recv)
{
	uint8_t k1[HL_NOISE_HASHLEN], k2[HL_NOISE_HASHLEN];
	bool one_way;

	if (!hs || !send || !recv || send == recv)
		return HL_EINVAL;
	hs_check(hs);
	if (hs->state != HS_DONE)
		return HL_ESTATE;
	hkdf(hs->ck, NULL, 0, k1, k2, NULL);
	/* One-way patterns only ever carry traffic from the initiator (c1). */
	one_way = hs->nmsgs == 1;
	/* Outputs: never freed here (a caller's fresh state may hold garbage). */
	sodium_memzero(send, sizeof *send);
	sodium_memzero(recv, sizeof *recv);
	if (hs->initiator) {
		hl_cs_init(send, k1);
		if (!one_way)
			hl_cs_init(recv, k2);
	} else {
		hl_cs_init(recv, k1);
		if (!one_way)
			hl_cs_init(send, k2);
	}
	send->bulk = recv->bulk = true;
	sodium_memzero(k1, sizeof k1);
	sodium_memzero(k2, sizeof k2);

	/* The transcript hash and the remote static stay for the caller. */
	hl_cs_clear(&hs->cs);
	sodium_memzero(hs->ck, sizeof hs->ck);
	hs->s = NULL;
	sodium_memzero(&hs->e, sizeof hs->e);
	sodium_memzero(hs->psk, sizeof hs->psk);
	hs->state = HS_SPLIT;
	hs_check(hs);
	return 0;
}

const uint8_t *hl_noise_hs_remote_static(const hl_noise_hs *hs)
{
	/* A failed handshake's remote static was never authenticated. */
	if (!hs || !hs->has_rs || hs->state == HS_FAILED)
		return NULL;
	return hs->rs;
}

void hl_noise_hs_hash(const hl_noise_hs *hs, uint8_t h[static HL_NOISE_HASHLEN])
{
	if (!hs) {
		memset(h, 0, HL_NOISE_HASHLEN);
		return;
	}
	memcpy(h, hs->h, HL_NOISE_HASHLEN);
}
