/* wire/packet.h — the plaintext inside a transport message (docs/protocol.md
 * section 3): the packet header (version, type) and the bodies of the
 * session packets HELLO, PING, PONG and CLOSE.  Pure functions over
 * (buf, len); every length is capped; no I/O.
 *
 * Decoded packets point into the caller's buffer (no copies). */
#ifndef HL_WIRE_PACKET_H
#define HL_WIRE_PACKET_H

#include <stddef.h>
#include <stdint.h>

#include "wire/frame.h"

#define HL_WIRE_VERSION 1
#define HL_PACKET_HDR_LEN 2
#define HL_TRANSPORT_TAG_LEN 16
/* A packet must fit one Noise transport message with its 16-byte tag. */
#define HL_PACKET_MAX (HL_FRAME_MAX - HL_TRANSPORT_TAG_LEN)          /* 65519 */
#define HL_PACKET_BODY_MAX (HL_PACKET_MAX - HL_PACKET_HDR_LEN)       /* 65517 */

enum hl_packet_type {
	HL_PKT_HELLO = 0x01,
	HL_PKT_PING = 0x02,
	HL_PKT_PONG = 0x03,
	HL_PKT_CLOSE = 0x04,
	HL_PKT_APP_FIRST = 0x10,   /* 0x10-0x3f: messages and receipts */
	HL_PKT_APP_LAST = 0x3f,
	HL_PKT_CRITICAL = 0x80,    /* unknown types from here on are fatal */
};

/* What a receiver does with a packet type. */
enum hl_packet_class {
	HL_PKTCLASS_SESSION,   /* HELLO, PING, PONG, CLOSE: the link handles it */
	HL_PKTCLASS_APP,       /* 0x10-0x3f: handed to the layer above the link */
	HL_PKTCLASS_IGNORE,    /* unknown, below 0x80: ignored (logged) */
	HL_PKTCLASS_FATAL,     /* unknown, 0x80 or above: closes the connection */
};
enum hl_packet_class hl_packet_classify(uint8_t type);

struct hl_packet {
	uint8_t version;
	uint8_t type;
	const uint8_t *body;   /* points into the decoded buffer */
	size_t body_len;
};

/* Header and BODY into OUT (capacity CAP).  HL_ETOOBIG when BLEN exceeds
 * HL_PACKET_BODY_MAX or the packet does not fit CAP. */
int hl_packet_encode(uint8_t type, const uint8_t *body, size_t blen,
		     uint8_t *out, size_t cap, size_t *outlen);
/* HL_ETRUNC under 2 bytes, HL_ETOOBIG over HL_PACKET_MAX, HL_EUNSUPP when
 * the version is not 1 (REC->version is still set then). */
int hl_packet_decode(const uint8_t *buf, size_t len, struct hl_packet *rec);

/* HELLO body: 6 bytes, then (since the CREDIT packet) a flags byte.  A
 * 6-byte HELLO, from a station that predates the flags, means flags 0. */
#define HL_HELLO_LEN 7
#define HL_HELLO_MIN_LEN 6
/* The sender speaks CREDIT (docs/messages.md): it sends CREDIT packets
 * for the CHUNK data it has taken in, and keeps its own CHUNK data in
 * flight within the window when the peer sets this flag too. */
#define HL_HELLO_FLAG_CREDIT 0x01
/* The sender handles STAGE and answers with STAGED (docs/messages.md
 * section 6): the peer may stage attachments to it. */
#define HL_HELLO_FLAG_STAGE 0x02
struct hl_hello {
	uint8_t min_version;
	uint8_t max_version;
	uint32_t keepalive_ms;
	uint8_t flags;
};
void hl_hello_encode(const struct hl_hello *h, uint8_t out[static HL_HELLO_LEN]);
/* HL_EINVAL under 6 bytes or when min_version > max_version; HL_EUNSUPP
 * when the range does not include HL_WIRE_VERSION.  Unknown flags and the
 * bytes after the seventh are ignored (room for later fields). */
int hl_hello_decode(const uint8_t *buf, size_t len, struct hl_hello *h);

/* PING and PONG bodies: exactly 8 opaque bytes (HL_EINVAL otherwise). */
#define HL_PING_LEN 8
int hl_ping_decode(const uint8_t *buf, size_t len, uint8_t value[static HL_PING_LEN]);

/* CLOSE body: a reason byte and up to 200 bytes of UTF-8 text. */
#define HL_CLOSE_TEXT_MAX 200
enum hl_close_reason {
	HL_CLOSE_SHUTDOWN = 1,
	HL_CLOSE_REPLACED = 2,
	HL_CLOSE_REMOVED = 3,
	HL_CLOSE_PROTOCOL = 4,
	HL_CLOSE_EXPIRED = 5,
};
struct hl_close {
	uint8_t reason;
	const uint8_t *text;   /* raw peer bytes: sanitise before showing */
	size_t text_len;
};
/* Text longer than 200 bytes is cut at 200 (at a UTF-8 boundary). */
int hl_close_encode(uint8_t reason, const char *text, uint8_t *out, size_t cap, size_t *outlen);
/* HL_EINVAL when empty or when the text exceeds 200 bytes. */
int hl_close_decode(const uint8_t *buf, size_t len, struct hl_close *c);
/* "shutdown", "replaced by a newer session", ... or "unknown reason". */
const char *hl_close_reason_str(uint8_t reason);

#endif
