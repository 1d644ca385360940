/* wire/msgproto.h — the packets of the messages protocol
 * (docs/messages.md): ITEM, CHUNK, ACK, RESUME, REFUSE and CREDIT bodies.  Pure
 * functions over (buf, len), every count and length capped, no I/O;
 * decoded bodies borrow from the input buffer. */
#ifndef HL_WIRE_MSGPROTO_H
#define HL_WIRE_MSGPROTO_H

#include <stddef.h>
#include <stdint.h>

enum {
	HL_PKT_ITEM = 0x10,
	HL_PKT_CHUNK = 0x11,
	HL_PKT_ACK = 0x12,
	HL_PKT_RESUME = 0x13,
	HL_PKT_REFUSE = 0x14,
	HL_PKT_CREDIT = 0x15,
	HL_PKT_STAGE = 0x16,
	HL_PKT_STAGED = 0x17,
	HL_PKT_RECLAIM = 0x18,     /* author -> counterpart: 8 seq (section 7) */
	HL_PKT_RETURN = 0x19,      /* counterpart -> author: 2 item_len, the item */
};

#define HL_CHUNK_HDR_LEN 17
#define HL_ACK_MAX_RANGES 256
#define HL_RESUME_MAX 1024
#define HL_REFUSE_TEXT_MAX 200

enum hl_refuse_code {
	HL_REFUSE_SIGNATURE = 1,
	HL_REFUSE_RECIPIENT = 2,
	HL_REFUSE_ID_REUSED = 3,
	HL_REFUSE_CONTENT = 4,
	HL_REFUSE_ATTACHMENT = 5,
	HL_REFUSE_TOO_LARGE = 6,
	HL_REFUSE_QUOTA = 7,       /* temporary: retried next session */
	HL_REFUSE_MALFORMED = 8,
};
const char *hl_refuse_code_str(unsigned code);

/* ITEM: 2 item_len, the item, then the rest (a message's content). */
struct hl_pkt_item {
	const uint8_t *item;
	size_t item_len;
	const uint8_t *rest;
	size_t rest_len;
};
int hl_pkt_item_decode(const uint8_t *buf, size_t len, struct hl_pkt_item *r);
/* Writes 2 item_len and the item (1 to 65535 bytes) into OUT (CAP bytes):
 * an ITEM packet's head, or a whole RETURN packet; the caller appends the
 * rest of an ITEM.  HL_EINVAL for an empty item, HL_ETOOBIG past CAP. */
int hl_pkt_item_encode(const uint8_t *item, size_t item_len, uint8_t *out, size_t cap,
		       size_t *len);

struct hl_pkt_chunk {
	uint64_t seq;
	uint8_t part;
	uint64_t offset;
	const uint8_t *data;
	size_t data_len;         /* at least 1 */
};
int hl_pkt_chunk_decode(const uint8_t *buf, size_t len, struct hl_pkt_chunk *r);
/* Writes the 17-byte header; the caller appends the data. */
void hl_pkt_chunk_header(uint64_t seq, uint8_t part, uint64_t offset,
			 uint8_t out[static HL_CHUNK_HDR_LEN]);

struct hl_pkt_ack {
	uint64_t base;
	uint16_t n;
	uint64_t ranges[HL_ACK_MAX_RANGES][2];
};
/* Ranges must be well-formed: first <= last, all above base, increasing
 * and disjoint. */
int hl_pkt_ack_decode(const uint8_t *buf, size_t len, struct hl_pkt_ack *r);
int hl_pkt_ack_encode(const struct hl_pkt_ack *r, uint8_t *out, size_t cap, size_t *len);

struct hl_resume_entry {
	uint64_t seq;
	uint8_t part;
	uint64_t offset;
};
struct hl_pkt_resume {
	uint16_t n;
	struct hl_resume_entry e[HL_RESUME_MAX];
};
int hl_pkt_resume_decode(const uint8_t *buf, size_t len, struct hl_pkt_resume *r);
int hl_pkt_resume_encode(const struct hl_pkt_resume *r, uint8_t *out, size_t cap, size_t *len);

struct hl_pkt_refuse {
	uint64_t seq;
	uint8_t hash[32];
	uint8_t code;
	const uint8_t *text;     /* raw peer bytes: sanitise before showing */
	size_t text_len;
};
int hl_pkt_refuse_decode(const uint8_t *buf, size_t len, struct hl_pkt_refuse *r);
int hl_pkt_refuse_encode(uint64_t seq, const uint8_t hash[static 32], uint8_t code,
			 const char *text, uint8_t *out, size_t cap, size_t *len);

/* STAGE (author -> counterpart): bytes of attachment PART (1..64) of the
 * message named ID, whose ITEM the author has not stored yet (it is still
 * being copied), from OFFSET; contiguous per (id, part) within a session. */
#define HL_STAGE_HDR_LEN 25
struct hl_pkt_stage {
	uint8_t id[16];
	uint8_t part;
	uint64_t offset;
	const uint8_t *data;
	size_t data_len;         /* at least 1 */
};
int hl_pkt_stage_decode(const uint8_t *buf, size_t len, struct hl_pkt_stage *r);
/* Writes the 25-byte header; the caller appends the data. */
void hl_pkt_stage_header(const uint8_t id[static 16], uint8_t part, uint64_t offset,
			 uint8_t out[static HL_STAGE_HDR_LEN]);

/* STAGED (counterpart -> author), after the ITEM of a message it had
 * staged parts of: it holds the first OFFSET bytes of part PART of the
 * message at SEQ; CHUNKs may start there. */
#define HL_STAGED_LEN 17
struct hl_pkt_staged {
	uint64_t seq;
	uint8_t part;
	uint64_t offset;
};
int hl_pkt_staged_decode(const uint8_t *buf, size_t len, struct hl_pkt_staged *r);
void hl_pkt_staged_encode(const struct hl_pkt_staged *r, uint8_t out[static HL_STAGED_LEN]);
/* CREDIT: 8 bytes, the CHUNK data taken in this session (cumulative).
 * HL_EINVAL for any other length. */
#define HL_CREDIT_LEN 8
int hl_pkt_credit_decode(const uint8_t *buf, size_t len, uint64_t *taken);
void hl_pkt_credit_encode(uint64_t taken, uint8_t out[static HL_CREDIT_LEN]);

/* RECLAIM (docs/messages.md section 7): "send me back the item of my own
 * chain at SEQ": exactly 8 bytes, SEQ at least 1.  RETURN is an ITEM body
 * with nothing after the item (hl_pkt_return_decode checks that). */
#define HL_RECLAIM_LEN 8
int hl_pkt_reclaim_decode(const uint8_t *buf, size_t len, uint64_t *seq);
int hl_pkt_return_decode(const uint8_t *buf, size_t len, struct hl_pkt_item *r);

#endif
