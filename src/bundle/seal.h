/* bundle/seal.h — sealing and opening courier bundles (docs/bundle.md):
 * Noise_X_25519_ChaChaPoly_BLAKE2b from the sender's static key to the
 * recipient's NoiseKey, the 24-byte clear header as prologue, one packet
 * per transport message, END last.
 *
 * The sealer streams: each packet is encrypted and handed to a sink at
 * once, so a bundle with a large attachment never sits in memory.  The
 * opener works on the whole file in memory (mapped by the caller) and
 * hands each decrypted packet to a callback; it reports who sealed the
 * bundle and lets the caller refuse an unpinned sender before any packet
 * is decrypted. */
#ifndef HL_BUNDLE_SEAL_H
#define HL_BUNDLE_SEAL_H

#include <stddef.h>
#include <stdint.h>

#include "crypto/signer.h"

typedef int (*hl_bundle_sink)(void *arg, const void *buf, size_t len);

typedef struct hl_bundle_sealer hl_bundle_sealer;

/* Writes the header and the handshake message to SINK.  ME seals (its
 * NoiseKey is the static key the recipient learns), RECIPIENT_NOISE is
 * the peer's NoiseKey. */
int hl_bundle_seal_begin(hl_bundle_sealer **out, const hl_signer *me,
			 const uint8_t recipient_noise[static 32], hl_bundle_sink sink, void *arg);
/* One packet (version 1, TYPE, BODY); BLEN at most HL_PACKET_BODY_MAX. */
int hl_bundle_seal_packet(hl_bundle_sealer *s, uint8_t type, const uint8_t *body, size_t blen);
/* The END packet; nothing may follow. */
int hl_bundle_seal_end(hl_bundle_sealer *s);
/* Packets written so far (END excluded). */
uint64_t hl_bundle_sealer_packets(const hl_bundle_sealer *s);
void hl_bundle_sealer_free(hl_bundle_sealer *s);

struct hl_bundle_open_cb {
	/* The sender's static key, learned from the handshake: return 0 to go
	 * on, negative to refuse the bundle (an unpinned key). */
	int (*sender)(void *arg, const uint8_t noise_pub[static 32]);
	/* One decrypted packet, END included; negative stops. */
	int (*packet)(void *arg, const uint8_t *rec, size_t len);
	void *arg;
};

/* Opens BUF (LEN bytes) with ME's NoiseKey: checks the header names ME
 * (HL_EPEER otherwise), reads the handshake (HL_EAUTH when it does not
 * authenticate), then decrypts every frame in order (HL_EAUTH on the first
 * that fails, HL_ETRUNC when the file ends inside a frame).  ERR gets one
 * line on failure.  Whether END came last is the packet callback's
 * business (bundle/format.h). */
int hl_bundle_open(const uint8_t *buf, size_t len, const hl_signer *me,
		   const struct hl_bundle_open_cb *cb, char *err, size_t errlen);

#endif
