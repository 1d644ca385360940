/* voice/media.h — a call's data plane (docs/voice.md section 3): the media
 * packet, its encryption, the replay window and the key schedule.  Pure
 * functions and small state, no socket and no clock; the daemon's call
 * code (daemon/calls.c) moves the packets over UDP or the link.
 *
 * Packet (HL_MEDIA_PACKET_LEN bytes, always):
 *
 *   0   1  type, 0x4d ('M')
 *   1   3  zero
 *   4   4  the receiver's call tag (big-endian), chosen by the receiver
 *   8   8  counter (big-endian): packet number in this direction, from 0
 *   16  HL_MEDIA_PT_LEN + 16  ChaCha20-Poly1305 (IETF) of the plaintext,
 *      key: the direction's key for epoch counter / HL_MEDIA_EPOCH_PKTS,
 *      nonce: 4 zero bytes then the counter (big-endian), AD: bytes 0..15
 *
 * Plaintext (HL_MEDIA_PT_LEN bytes, always):
 *   0   1  flags (HL_MEDIA_F_*)
 *   1   1  length L of the Opus frame, 0..HL_MEDIA_OPUS_MAX
 *   2   L  one 20 ms Opus frame; then zeros to the end
 *
 * One packet every 20 ms whether anyone speaks or not, all of one size:
 * the counter is also the frame's timestamp (counter * 20 ms).
 *
 * Keys.  Each side makes a fresh X25519 key pair for the call; the public
 * halves travel in the RING and ANSWER packets over the authenticated
 * link.  libsodium's crypto_kx gives each side a receive and a transmit
 * key; each becomes the epoch-0 key of its direction through BLAKE2b
 * keyed with it over "hotline/1 call media" and the call id.  Every
 * HL_MEDIA_EPOCH_PKTS packets (30 s) a direction moves to the next key,
 * K(e+1) = crypto_kdf(K(e), subkey 1, "hlratchet"), and forgets the old
 * one once the previous epoch's stragglers are past: what is recorded off
 * the wire cannot be opened with keys taken from a station later in the
 * call (forward secrecy per call, and per epoch inside it). */
#ifndef HL_VOICE_MEDIA_H
#define HL_VOICE_MEDIA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HL_MEDIA_TYPE 0x4d
#define HL_MEDIA_HDR_LEN 16
#define HL_MEDIA_TAG_LEN 16
#define HL_MEDIA_PT_LEN 96
#define HL_MEDIA_OPUS_MAX (HL_MEDIA_PT_LEN - 2)
#define HL_MEDIA_PACKET_LEN (HL_MEDIA_HDR_LEN + HL_MEDIA_PT_LEN + HL_MEDIA_TAG_LEN) /* 128 */
#define HL_MEDIA_FRAME_MS 20
#define HL_MEDIA_EPOCH_PKTS 1500u              /* 30 s of packets per key */
#define HL_MEDIA_MAX_EPOCH_JUMP 8              /* epochs a packet may skip ahead */
#define HL_MEDIA_COUNTER_MAX (UINT64_C(1) << 40) /* ~700 years of 20 ms: never */
#define HL_MEDIA_REPLAY_WINDOW 1024            /* packets behind the newest */
#define HL_CALL_ID_LEN 16
#define HL_CALL_PUB_LEN 32

/* Plaintext flags. */
#define HL_MEDIA_F_HEAR_UDP 0x01   /* the sender receives our UDP packets */

struct hl_media_frame {
	uint8_t flags;
	uint8_t len;
	uint8_t opus[HL_MEDIA_OPUS_MAX];
};

/* One direction's key schedule.  Secret: sodium_malloc'd by the owner
 * (struct hl_media_keys), wiped by hl_media_keys_free. */
struct hl_media_dir {
	uint8_t key[32];       /* for epoch EPOCH */
	uint8_t prev[32];      /* for EPOCH - 1, while HAVE_PREV */
	uint64_t epoch;
	bool have_prev;
};

/* The replay window of the receiving direction (RFC 6479's bitmap). */
struct hl_replay {
	uint64_t top;          /* the highest counter accepted + 1; 0 before any */
	uint64_t bits[HL_MEDIA_REPLAY_WINDOW / 64];
};

struct hl_media_keys {
	struct hl_media_dir tx, rx;
	uint32_t tx_tag, rx_tag;   /* the peer's tag (on what we send), ours */
	uint64_t tx_counter;
	struct hl_replay replay;
};

/* A fresh ephemeral key pair for one call: PK public, SK secret. */
void hl_media_keypair(uint8_t pk[static HL_CALL_PUB_LEN], uint8_t sk[static 32]);

/* Derives both directions' epoch-0 keys into *OUT (sodium_malloc'd; free
 * with hl_media_keys_free).  CALLER: whether we rang.  OUR_SK / OUR_PK:
 * our ephemeral pair; PEER_PK: theirs; TAGS: ours (what the peer puts on
 * packets to us) and the peer's.  HL_ECRYPTO for a bad public key. */
int hl_media_keys_new(struct hl_media_keys **out, bool caller,
		      const uint8_t call_id[static HL_CALL_ID_LEN],
		      const uint8_t our_pk[static 32], const uint8_t our_sk[static 32],
		      const uint8_t peer_pk[static 32], uint32_t our_tag, uint32_t peer_tag);
void hl_media_keys_free(struct hl_media_keys *k);

/* Seals FRAME as the next packet into OUT.  HL_ESTATE when the counter is
 * spent (HL_MEDIA_COUNTER_MAX). */
int hl_media_seal(struct hl_media_keys *k, const struct hl_media_frame *f,
		  uint8_t out[static HL_MEDIA_PACKET_LEN]);

/* Opens a packet that arrived (BUF, LEN: anything at all).  On success
 * FRAME and COUNTER are set and the counter is marked seen.  HL_EINVAL:
 * wrong size, type or tag; HL_EAUTH: does not decrypt (the window and the
 * keys are untouched); HL_EEXIST: a replay or older than the window;
 * HL_ETOOBIG: further ahead than HL_MEDIA_MAX_EPOCH_JUMP epochs. */
int hl_media_open(struct hl_media_keys *k, const uint8_t *buf, size_t len,
		  struct hl_media_frame *frame, uint64_t *counter);

/* The header fields of a packet without opening it (for the fuzz target
 * and diagnostics): HL_EINVAL when it is not a media packet. */
int hl_media_peek(const uint8_t *buf, size_t len, uint32_t *tag, uint64_t *counter);

/* The replay window on its own: 0 when COUNTER is new (and then marks it
 * when MARK), HL_EEXIST when seen or too old. */
int hl_replay_verify(struct hl_replay *r, uint64_t counter, bool mark);

#endif
