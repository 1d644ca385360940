/* bundle/format.h — the courier bundle (docs/bundle.md): its clear header,
 * and the validation of its decrypted packet stream.  Pure functions over
 * (buf, len): every length capped, no I/O, a fuzz target (fuzz_bundle).
 *
 * A bundle is a 24-byte header (magic, the recipient's key id), then
 * frames as on the wire (2-byte big-endian length, one Noise message):
 * one Noise_X handshake message, then transport messages, each the
 * ciphertext of one packet (version, type, body) as on the link.  The last
 * packet is END.  bundle/seal.h encrypts and decrypts; this file says what
 * a well-formed plaintext stream is. */
#ifndef HL_BUNDLE_FORMAT_H
#define HL_BUNDLE_FORMAT_H

#include <sodium.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "msg/item.h"

#define HL_BUNDLE_MAGIC "hotline/1 bundle"   /* 16 bytes, no NUL in the file */
#define HL_BUNDLE_MAGIC_LEN 16
#define HL_BUNDLE_KEYID_LEN 8
#define HL_BUNDLE_HDR_LEN (HL_BUNDLE_MAGIC_LEN + HL_BUNDLE_KEYID_LEN)
#define HL_BUNDLE_PROTOCOL "Noise_X_25519_ChaChaPoly_BLAKE2b"
/* The packet that ends a bundle: only ever inside a bundle, never on a
 * link.  Body: 8 bytes, the number of packets before it. */
#define HL_PKT_BUNDLE_END 0x3f
#define HL_BUNDLE_END_LEN 8
/* At most this many packets in one bundle (a 64 GiB bundle of full
 * chunks); far below the 2^64 nonces of one cipher state. */
#define HL_BUNDLE_MAX_PACKETS (UINT64_C(1) << 20)

/* The short key id of a NoiseKey: the first 8 bytes of
 * BLAKE2b-256(NoiseKey), as docs/protocol.md logs unknown keys. */
void hl_bundle_key_id(const uint8_t noise_pub[static 32], uint8_t id[static HL_BUNDLE_KEYID_LEN]);

/* The header for a bundle to RECIPIENT_NOISE. */
void hl_bundle_header(const uint8_t recipient_noise[static 32], uint8_t out[static HL_BUNDLE_HDR_LEN]);
/* Checks the magic and gives the key id.  HL_ETRUNC when shorter than a
 * header, HL_EINVAL when the magic is wrong. */
int hl_bundle_header_parse(const uint8_t *buf, size_t len, uint8_t keyid[static HL_BUNDLE_KEYID_LEN]);

/* The validation of a bundle's plaintext packets, one at a time, in order.
 * Rules (docs/bundle.md section 4): packets are version 1 of type ITEM,
 * CHUNK, ACK or END; every item opens (decodes, its signature verifies)
 * with AUTHOR as author and COUNTERPART as counterpart; a message's
 * content matches its item; a message's CHUNKs follow its ITEM, part by
 * part in increasing order, each part from offset 0 without gaps, and
 * every part is whole (its hash verified) before the next ITEM or END;
 * END comes last, counts the packets before it, and nothing follows it. */
struct hl_bundle_validator {
	uint8_t author[32], counterpart[32];
	uint64_t packets;           /* packets seen, END excluded */
	uint64_t items, messages, chunks, acks;
	bool ended;
	/* the message whose chunks may follow */
	bool in_msg;
	uint64_t seq;
	unsigned nparts;            /* 1 + attachments */
	uint64_t part_size[HL_MAX_ATTACHMENTS + 1];
	uint8_t part_hash[HL_MAX_ATTACHMENTS + 1][HL_HASH_LEN];
	bool part_salted[HL_MAX_ATTACHMENTS + 1];  /* part 0: the body hash, keyed; else SHA-256 */
	uint8_t salt[HL_SALT_LEN];
	unsigned part;              /* the part in progress (or next) */
	uint64_t offset;            /* bytes of it seen */
	hl_parthash hs;
	char err[160];              /* why the last call failed */
	/* Keys (docs/rotation.md): KEY_AT gives the key that signs the
	 * author's item at SEQ (the caller knows the chain's rotations held);
	 * NULL: the author's.  A rotation in the bundle gives the key of the
	 * items after it (the engine checks that it was committed to). */
	int (*key_at)(void *arg, uint64_t seq, uint8_t key[static 32]);
	void *key_arg;
	uint64_t rot_seq;           /* the last rotation in the bundle; 0 none */
	uint8_t rot_key[32];
};

void hl_bundle_validator_init(struct hl_bundle_validator *c, const uint8_t author[static 32],
			      const uint8_t counterpart[static 32]);
/* One decrypted packet.  0, or a negative code with C->err saying why
 * (HL_EAUTH for a signature or hash that fails, HL_EINVAL otherwise). */
int hl_bundle_validate_packet(struct hl_bundle_validator *c, const uint8_t *rec, size_t len);
/* After the last packet: HL_ETRUNC when END never came. */
int hl_bundle_validator_finish(struct hl_bundle_validator *c);

#endif
