/* wire/packet.c — packet header and session packet bodies (see packet.h and
 * docs/protocol.md section 3). */
#include "wire/packet.h"

#include <string.h>

#include "util/err.h"

enum hl_packet_class hl_packet_classify(uint8_t type)
{
	switch (type) {
	case HL_PKT_HELLO:
	case HL_PKT_PING:
	case HL_PKT_PONG:
	case HL_PKT_CLOSE:
		return HL_PKTCLASS_SESSION;
	default:
		break;
	}
	if (type >= HL_PKT_APP_FIRST && type <= HL_PKT_APP_LAST)
		return HL_PKTCLASS_APP;
	return type < HL_PKT_CRITICAL ? HL_PKTCLASS_IGNORE : HL_PKTCLASS_FATAL;
}

int hl_packet_encode(uint8_t type, const uint8_t *body, size_t blen,
		     uint8_t *out, size_t cap, size_t *outlen)
{
	if (blen > HL_PACKET_BODY_MAX || cap < HL_PACKET_HDR_LEN ||
	    cap - HL_PACKET_HDR_LEN < blen)
		return HL_ETOOBIG;
	out[0] = HL_WIRE_VERSION;
	out[1] = type;
	if (blen)
		memmove(out + HL_PACKET_HDR_LEN, body, blen);
	*outlen = blen + HL_PACKET_HDR_LEN;
	return 0;
}

int hl_packet_decode(const uint8_t *buf, size_t len, struct hl_packet *rec)
{
	memset(rec, 0, sizeof(*rec));
	if (len < HL_PACKET_HDR_LEN)
		return HL_ETRUNC;
	if (len > HL_PACKET_MAX)
		return HL_ETOOBIG;
	rec->version = buf[0];
	rec->type = buf[1];
	if (rec->version != HL_WIRE_VERSION)
		return HL_EUNSUPP;
	rec->body = buf + HL_PACKET_HDR_LEN;
	rec->body_len = len - HL_PACKET_HDR_LEN;
	return 0;
}

void hl_hello_encode(const struct hl_hello *h, uint8_t out[static HL_HELLO_LEN])
{
	out[0] = h->min_version;
	out[1] = h->max_version;
	out[2] = (uint8_t)(h->keepalive_ms >> 24);
	out[3] = (uint8_t)(h->keepalive_ms >> 16);
	out[4] = (uint8_t)(h->keepalive_ms >> 8);
	out[5] = (uint8_t)h->keepalive_ms;
	out[6] = h->flags;
}

int hl_hello_decode(const uint8_t *buf, size_t len, struct hl_hello *h)
{
	memset(h, 0, sizeof(*h));
	if (len < HL_HELLO_MIN_LEN)
		return HL_EINVAL;
	if (len > HL_PACKET_BODY_MAX)
		return HL_ETOOBIG;
	h->min_version = buf[0];
	h->max_version = buf[1];
	h->keepalive_ms = (uint32_t)buf[2] << 24 | (uint32_t)buf[3] << 16 |
			  (uint32_t)buf[4] << 8 | buf[5];
	h->flags = len > HL_HELLO_MIN_LEN ? buf[6] : 0;
	if (h->min_version > h->max_version)
		return HL_EINVAL;
	if (h->min_version > HL_WIRE_VERSION || h->max_version < HL_WIRE_VERSION)
		return HL_EUNSUPP;
	return 0;
}

int hl_ping_decode(const uint8_t *buf, size_t len, uint8_t value[static HL_PING_LEN])
{
	if (len != HL_PING_LEN)
		return HL_EINVAL;
	memcpy(value, buf, HL_PING_LEN);
	return 0;
}

int hl_close_encode(uint8_t reason, const char *text, uint8_t *out, size_t cap, size_t *outlen)
{
	size_t tlen = text ? strlen(text) : 0;
	if (tlen > HL_CLOSE_TEXT_MAX) {
		tlen = HL_CLOSE_TEXT_MAX;
		/* Do not cut a UTF-8 sequence: back up over continuation bytes. */
		while (tlen > 0 && ((unsigned char)text[tlen] & 0xc0) == 0x80)
			tlen--;
	}
	if (cap < 1 + tlen)
		return HL_ETOOBIG;
	out[0] = reason;
	if (tlen)
		memcpy(out + 1, text, tlen);
	*outlen = 1 + tlen;
	return 0;
}

int hl_close_decode(const uint8_t *buf, size_t len, struct hl_close *c)
{
	memset(c, 0, sizeof(*c));
	if (len < 1)
		return HL_EINVAL;
	if (len - 1 > HL_CLOSE_TEXT_MAX)
		return HL_EINVAL;
	c->reason = buf[0];
	c->text = buf + 1;
	c->text_len = len - 1;
	return 0;
}

const char *hl_close_reason_str(uint8_t reason)
{
	switch (reason) {
	case HL_CLOSE_SHUTDOWN:
		return "shutdown";
	case HL_CLOSE_REPLACED:
		return "replaced by a newer session";
	case HL_CLOSE_REMOVED:
		return "peer removed";
	case HL_CLOSE_PROTOCOL:
		return "protocol error";
	case HL_CLOSE_EXPIRED:
		return "session expired";
	default:
		return "unknown reason";
	}
}
