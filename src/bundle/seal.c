/* bundle/seal.c — sealing and opening bundles with Noise_X (seal.h). */
#include "bundle/seal.h"

#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "bundle/format.h"
#include "crypto/noise.h"
#include "util/err.h"
#include "util/mem.h"
#include "util/text.h"
#include "wire/frame.h"
#include "wire/packet.h"

struct hl_bundle_sealer {
	hl_cipher_state *cs;          /* sodium_malloc: the bundle key */
	hl_bundle_sink sink;
	void *arg;
	uint64_t packets;
	bool ended;
	uint8_t pt[HL_PACKET_MAX];
	uint8_t out[HL_FRAME_HDR_LEN + HL_FRAME_MAX];
};

/* The handshake of a bundle: ME's static key (for the sealer, the
 * initiator) and the peer's (the recipient's, for the sealer), the header
 * as prologue, so that a changed header fails the handshake. */
static int hs_new(hl_noise_hs **out, bool initiator, const hl_signer *me,
		  const uint8_t *recipient, const uint8_t hdr[static HL_BUNDLE_HDR_LEN])
{
	hl_noise_hs *hs = NULL;
	int ret = hl_noise_hs_new(&hs, HL_BUNDLE_PROTOCOL, initiator);
	if (ret == 0)
		ret = hl_noise_hs_set_prologue(hs, hdr, HL_BUNDLE_HDR_LEN);
	if (ret == 0)
		ret = hl_noise_hs_set_s(hs, me);
	if (ret == 0 && recipient)
		ret = hl_noise_hs_set_rs(hs, recipient);
	if (ret == 0)
		ret = hl_noise_hs_start(hs);
	if (ret < 0) {
		hl_noise_hs_free(hs);
		return ret;
	}
	*out = hs;
	return 0;
}

static int emit_frame(hl_bundle_sealer *s, size_t mlen)
{
	int ret = hl_frame_header(mlen, s->out);
	return ret < 0 ? ret : s->sink(s->arg, s->out, HL_FRAME_HDR_LEN + mlen);
}

int hl_bundle_seal_begin(hl_bundle_sealer **out, const hl_signer *me,
			 const uint8_t recipient_noise[static 32], hl_bundle_sink sink, void *arg)
{
	uint8_t hdr[HL_BUNDLE_HDR_LEN];
	hl_noise_hs *hs = NULL;
	hl_cipher_state unused;
	size_t mlen;
	hl_bundle_sealer *s = xcalloc(1, sizeof(*s));
	s->sink = sink;
	s->arg = arg;
	s->cs = sodium_malloc(sizeof(*s->cs));
	if (!s->cs)
		abort();
	memset(s->cs, 0, sizeof(*s->cs));
	memset(&unused, 0, sizeof(unused));
	hl_bundle_header(recipient_noise, hdr);
	int ret = hs_new(&hs, true, me, recipient_noise, hdr);
	if (ret == 0)
		ret = sink(arg, hdr, sizeof(hdr));
	if (ret == 0)
		ret = hl_noise_hs_write(hs, NULL, 0, s->out + HL_FRAME_HDR_LEN, HL_FRAME_MAX, &mlen);
	if (ret == 0)
		ret = hl_noise_hs_split(hs, s->cs, &unused);
	if (ret == 0)
		ret = emit_frame(s, mlen);
	hl_noise_hs_free(hs);
	hl_cs_clear(&unused);
	if (ret < 0) {
		hl_bundle_sealer_free(s);
		return ret;
	}
	*out = s;
	return 0;
}

static int seal(hl_bundle_sealer *s, uint8_t type, const uint8_t *body, size_t blen)
{
	size_t ptlen, ctlen;
	if (s->ended)
		return HL_ESTATE;
	int ret = hl_packet_encode(type, body, blen, s->pt, sizeof(s->pt), &ptlen);
	if (ret == 0)
		ret = hl_cs_encrypt(s->cs, NULL, 0, s->pt, ptlen, s->out + HL_FRAME_HDR_LEN,
				    HL_FRAME_MAX, &ctlen);
	if (ret == 0)
		ret = emit_frame(s, ctlen);
	return ret;
}

int hl_bundle_seal_packet(hl_bundle_sealer *s, uint8_t type, const uint8_t *body, size_t blen)
{
	if (type == HL_PKT_BUNDLE_END)
		return HL_EINVAL;
	if (s->packets >= HL_BUNDLE_MAX_PACKETS)
		return HL_ETOOBIG;
	int ret = seal(s, type, body, blen);
	if (ret == 0)
		s->packets++;
	return ret;
}

int hl_bundle_seal_end(hl_bundle_sealer *s)
{
	uint8_t n[HL_BUNDLE_END_LEN];
	for (unsigned i = 0; i < 8; i++)
		n[i] = (uint8_t)(s->packets >> (56 - 8 * i));
	int ret = seal(s, HL_PKT_BUNDLE_END, n, sizeof(n));
	s->ended = true;
	return ret;
}

uint64_t hl_bundle_sealer_packets(const hl_bundle_sealer *s)
{
	return s->packets;
}

void hl_bundle_sealer_free(hl_bundle_sealer *s)
{
	if (!s)
		return;
	if (s->cs) {
		hl_cs_clear(s->cs);
		sodium_free(s->cs);
	}
	sodium_memzero(s->pt, sizeof(s->pt));
	free(s);
}

/* ---- opening ---- */

/* The next frame at *POS of BUF: HL_ETRUNC when the file ends inside it,
 * HL_EINVAL for an empty frame. */
static int next_frame(const uint8_t *buf, size_t len, size_t *pos, const uint8_t **msg,
		      size_t *mlen)
{
	if (len - *pos < HL_FRAME_HDR_LEN)
		return HL_ETRUNC;
	size_t n = (size_t)buf[*pos] << 8 | buf[*pos + 1];
	if (n == 0)
		return HL_EINVAL;
	if (len - *pos - HL_FRAME_HDR_LEN < n)
		return HL_ETRUNC;
	*msg = buf + *pos + HL_FRAME_HDR_LEN;
	*mlen = n;
	*pos += HL_FRAME_HDR_LEN + n;
	return 0;
}

int hl_bundle_open(const uint8_t *buf, size_t len, const hl_signer *me,
		   const struct hl_bundle_open_cb *cb, char *err, size_t errlen)
{
	uint8_t keyid[HL_BUNDLE_KEYID_LEN], mine[HL_BUNDLE_KEYID_LEN];
	char hex[2 * HL_BUNDLE_KEYID_LEN + 1];
	hl_noise_hs *hs = NULL;
	hl_cipher_state *cs = NULL, unused;
	uint8_t *pt = xmalloc(HL_FRAME_MAX);
	const uint8_t *msg;
	size_t pos = HL_BUNDLE_HDR_LEN, mlen, ptlen;
	uint64_t frame = 1;
	int ret;

	memset(&unused, 0, sizeof(unused));
	if ((ret = hl_bundle_header_parse(buf, len, keyid)) < 0) {
		snprintf(err, errlen, "not a hotline bundle (%s)",
			 ret == HL_ETRUNC ? "shorter than its header" : "no bundle magic");
		goto out;
	}
	hl_bundle_key_id(hl_signer_noise_pub(me), mine);
	if (sodium_memcmp(keyid, mine, sizeof(mine)) != 0) {
		hl_hex(keyid, sizeof(keyid), hex);
		snprintf(err, errlen, "addressed to another station (key id %s)", hex);
		ret = HL_EPEER;
		goto out;
	}
	if ((ret = next_frame(buf, len, &pos, &msg, &mlen)) < 0) {
		snprintf(err, errlen, "no handshake message (truncated)");
		goto out;
	}
	cs = sodium_malloc(sizeof(*cs));
	if (!cs)
		abort();
	memset(cs, 0, sizeof(*cs));
	if ((ret = hs_new(&hs, false, me, NULL, buf)) < 0) {
		snprintf(err, errlen, "handshake: %s", hl_strerror(ret));
		goto out;
	}
	ret = hl_noise_hs_read(hs, msg, mlen, pt, HL_FRAME_MAX, &ptlen);
	if (ret == 0)
		ret = hl_noise_hs_split(hs, &unused, cs);
	if (ret < 0) {
		snprintf(err, errlen, "the handshake does not authenticate (corrupt, or not sealed for this station)");
		ret = HL_EAUTH;
		goto out;
	}
	if (cb->sender && (ret = cb->sender(cb->arg, hl_noise_hs_remote_static(hs))) < 0) {
		char b64[HL_KEY_B64_LEN];
		uint8_t sid[HL_BUNDLE_KEYID_LEN];
		hl_bundle_key_id(hl_noise_hs_remote_static(hs), sid);
		hl_hex(sid, sizeof(sid), hex);
		hl_b64_key(hl_noise_hs_remote_static(hs), b64);
		snprintf(err, errlen, "sealed by a station that is not pinned (NoiseKey %s, key id %s)",
			 b64, hex);
		goto out;
	}
	while (pos < len) {
		ret = next_frame(buf, len, &pos, &msg, &mlen);
		if (ret < 0) {
			snprintf(err, errlen, "frame %llu: %s", (unsigned long long)frame,
				 ret == HL_ETRUNC ? "the file ends inside it (truncated)" : "empty");
			goto out;
		}
		if ((ret = hl_cs_decrypt(cs, NULL, 0, msg, mlen, pt, HL_FRAME_MAX, &ptlen)) < 0) {
			snprintf(err, errlen, "frame %llu does not authenticate (corrupt or altered)",
				 (unsigned long long)frame);
			ret = HL_EAUTH;
			goto out;
		}
		if ((ret = cb->packet(cb->arg, pt, ptlen)) < 0) {
			snprintf(err, errlen, "frame %llu: refused", (unsigned long long)frame);
			goto out;
		}
		frame++;
	}
	ret = 0;
out:
	hl_noise_hs_free(hs);
	if (cs) {
		hl_cs_clear(cs);
		sodium_free(cs);
	}
	hl_cs_clear(&unused);
	sodium_memzero(pt, HL_FRAME_MAX);
	free(pt);
	return ret;
}
