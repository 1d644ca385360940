/* voice/media.c — media packets, their keys and the replay window; the
 * format and the key schedule are in media.h and docs/voice.md.  Every
 * primitive is libsodium's: crypto_kx for the exchange, BLAKE2b
 * (crypto_generichash) and crypto_kdf for derivation, ChaCha20-Poly1305
 * IETF for the packets. */
#include <sodium.h>
#include <string.h>

#include "util/err.h"
#include "voice/media.h"

#define CTX_MEDIA "hotline/1 call media"
#define KDF_RATCHET "hlratchet"   /* crypto_kdf contexts are 8 bytes */

static void put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void put64(uint8_t *p, uint64_t v)
{
	put32(p, (uint32_t)(v >> 32));
	put32(p + 4, (uint32_t)v);
}

static uint64_t get64(const uint8_t *p)
{
	return (uint64_t)get32(p) << 32 | get32(p + 4);
}

void hl_media_keypair(uint8_t pk[static HL_CALL_PUB_LEN], uint8_t sk[static 32])
{
	crypto_kx_keypair(pk, sk);
}

/* The epoch-0 key of a direction: BLAKE2b keyed with the kx key K over
 * the context string and the call id. */
static void root_key(uint8_t out[static 32], const uint8_t k[static 32],
		     const uint8_t call_id[static HL_CALL_ID_LEN])
{
	crypto_generichash_state st;
	crypto_generichash_init(&st, k, 32, 32);
	crypto_generichash_update(&st, (const uint8_t *)CTX_MEDIA, sizeof(CTX_MEDIA));
	crypto_generichash_update(&st, call_id, HL_CALL_ID_LEN);
	crypto_generichash_final(&st, out, 32);
	sodium_memzero(&st, sizeof(st));
}

static void ratchet(uint8_t out[static 32], const uint8_t in[static 32])
{
	uint8_t next[32];
	crypto_kdf_derive_from_key(next, sizeof(next), 1, KDF_RATCHET, in);
	memcpy(out, next, 32);
	sodium_memzero(next, sizeof(next));
}

int hl_media_keys_new(struct hl_media_keys **out, bool caller,
		      const uint8_t call_id[static HL_CALL_ID_LEN],
		      const uint8_t our_pk[static 32], const uint8_t our_sk[static 32],
		      const uint8_t peer_pk[static 32], uint32_t our_tag, uint32_t peer_tag)
{
	uint8_t rx[32], tx[32];
	int r = caller ? crypto_kx_client_session_keys(rx, tx, our_pk, our_sk, peer_pk)
		       : crypto_kx_server_session_keys(rx, tx, our_pk, our_sk, peer_pk);
	*out = NULL;
	if (r != 0)
		return HL_ECRYPTO;
	struct hl_media_keys *k = sodium_malloc(sizeof(*k));
	if (!k) {
		sodium_memzero(rx, sizeof(rx));
		sodium_memzero(tx, sizeof(tx));
		return -12; /* -ENOMEM */
	}
	memset(k, 0, sizeof(*k));
	root_key(k->rx.key, rx, call_id);
	root_key(k->tx.key, tx, call_id);
	sodium_memzero(rx, sizeof(rx));
	sodium_memzero(tx, sizeof(tx));
	k->rx_tag = our_tag;
	k->tx_tag = peer_tag;
	*out = k;
	return 0;
}

void hl_media_keys_free(struct hl_media_keys *k)
{
	if (k)
		sodium_free(k);   /* wipes */
}

static void nonce_of(uint8_t n[static crypto_aead_chacha20poly1305_IETF_NPUBBYTES], uint64_t c)
{
	memset(n, 0, 4);
	put64(n + 4, c);
}

int hl_media_seal(struct hl_media_keys *k, const struct hl_media_frame *f,
		  uint8_t out[static HL_MEDIA_PACKET_LEN])
{
	if (k->tx_counter >= HL_MEDIA_COUNTER_MAX || f->len > HL_MEDIA_OPUS_MAX)
		return HL_ESTATE;
	uint64_t c = k->tx_counter++;
	uint64_t epoch = c / HL_MEDIA_EPOCH_PKTS;
	while (k->tx.epoch < epoch) {   /* the sender never looks back */
		ratchet(k->tx.key, k->tx.key);
		k->tx.epoch++;
	}
	uint8_t pt[HL_MEDIA_PT_LEN] = { f->flags, f->len };
	memcpy(pt + 2, f->opus, f->len);
	out[0] = HL_MEDIA_TYPE;
	out[1] = out[2] = out[3] = 0;
	put32(out + 4, k->tx_tag);
	put64(out + 8, c);
	uint8_t nonce[crypto_aead_chacha20poly1305_IETF_NPUBBYTES];
	nonce_of(nonce, c);
	crypto_aead_chacha20poly1305_ietf_encrypt(out + HL_MEDIA_HDR_LEN, NULL, pt, sizeof(pt),
						  out, HL_MEDIA_HDR_LEN, NULL, nonce, k->tx.key);
	sodium_memzero(pt, sizeof(pt));
	return 0;
}

int hl_media_peek(const uint8_t *buf, size_t len, uint32_t *tag, uint64_t *counter)
{
	if (len != HL_MEDIA_PACKET_LEN || buf[0] != HL_MEDIA_TYPE || buf[1] || buf[2] || buf[3])
		return HL_EINVAL;
	*tag = get32(buf + 4);
	*counter = get64(buf + 8);
	if (*counter >= HL_MEDIA_COUNTER_MAX)
		return HL_EINVAL;
	return 0;
}

int hl_replay_verify(struct hl_replay *r, uint64_t c, bool mark)
{
	/* RFC 6479: a ring of W words; a counter's bit lives in word c / 64.
	 * The window is the W words up to the newest counter's, so at least
	 * HL_MEDIA_REPLAY_WINDOW - 63 counters behind it are told apart. */
	const uint64_t W = HL_MEDIA_REPLAY_WINDOW / 64;
	if (c < r->top) {
		if (c / 64 + W <= (r->top - 1) / 64)
			return HL_EEXIST;   /* its word was reused: too old */
	} else {
		if (!mark)
			return 0;
		uint64_t to = c / 64;
		uint64_t from = r->top ? (r->top - 1) / 64 + 1 : 0;
		if (r->top == 0 || to - from + 1 >= W)
			memset(r->bits, 0, sizeof(r->bits));
		else
			for (uint64_t w = from; w <= to; w++)
				r->bits[w % W] = 0;
		r->top = c + 1;
	}
	uint64_t *word = &r->bits[(c / 64) % W];
	uint64_t bit = UINT64_C(1) << (c % 64);
	if (*word & bit)
		return HL_EEXIST;
	if (mark)
		*word |= bit;
	return 0;
}

/* The key for EPOCH into KEY, without changing D: the current or previous
 * one, or the current one ratcheted forward (at most MAX_EPOCH_JUMP). */
static int key_for(const struct hl_media_dir *d, uint64_t epoch, uint8_t key[static 32])
{
	if (epoch == d->epoch) {
		memcpy(key, d->key, 32);
		return 0;
	}
	if (epoch + 1 == d->epoch && d->have_prev) {
		memcpy(key, d->prev, 32);
		return 0;
	}
	if (epoch < d->epoch)
		return HL_EEXIST;   /* its key is gone: forward secrecy */
	if (epoch - d->epoch > HL_MEDIA_MAX_EPOCH_JUMP)
		return HL_ETOOBIG;
	memcpy(key, d->key, 32);
	for (uint64_t e = d->epoch; e < epoch; e++)
		ratchet(key, key);
	return 0;
}

/* A packet of EPOCH decrypted: move D forward to it, keeping the key of
 * the epoch before for the stragglers. */
static void advance(struct hl_media_dir *d, uint64_t epoch, const uint8_t key[static 32])
{
	if (epoch <= d->epoch)
		return;
	if (epoch == d->epoch + 1) {
		memcpy(d->prev, d->key, 32);
		d->have_prev = true;
	} else {
		/* Skipped epochs: the one just before EPOCH is derivable, but
		 * nothing of it arrived in time; keep none. */
		sodium_memzero(d->prev, 32);
		d->have_prev = false;
	}
	memcpy(d->key, key, 32);
	d->epoch = epoch;
}

int hl_media_open(struct hl_media_keys *k, const uint8_t *buf, size_t len,
		  struct hl_media_frame *frame, uint64_t *counter)
{
	uint32_t tag;
	uint64_t c;
	if (hl_media_peek(buf, len, &tag, &c) < 0 || tag != k->rx_tag)
		return HL_EINVAL;
	int ret = hl_replay_verify(&k->replay, c, false);
	if (ret < 0)
		return ret;
	uint64_t epoch = c / HL_MEDIA_EPOCH_PKTS;
	uint8_t key[32], pt[HL_MEDIA_PT_LEN], nonce[crypto_aead_chacha20poly1305_IETF_NPUBBYTES];
	if ((ret = key_for(&k->rx, epoch, key)) < 0)
		return ret;
	nonce_of(nonce, c);
	if (crypto_aead_chacha20poly1305_ietf_decrypt(pt, NULL, NULL, buf + HL_MEDIA_HDR_LEN,
						      HL_MEDIA_PT_LEN + HL_MEDIA_TAG_LEN, buf,
						      HL_MEDIA_HDR_LEN, nonce, key) != 0) {
		ret = HL_EAUTH;
		goto out;
	}
	if (pt[1] > HL_MEDIA_OPUS_MAX) {
		ret = HL_EINVAL;   /* authentic, but the peer broke the format */
		goto out;
	}
	advance(&k->rx, epoch, key);
	(void)hl_replay_verify(&k->replay, c, true);
	frame->flags = pt[0];
	frame->len = pt[1];
	memcpy(frame->opus, pt + 2, pt[1]);
	*counter = c;
out:
	sodium_memzero(key, sizeof(key));
	sodium_memzero(pt, sizeof(pt));
	return ret;
}
