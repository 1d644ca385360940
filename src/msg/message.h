/* msg/message.h — a message's content as it travels beside its signed
 * item: encoding, decoding and checking it against the item.  Composing
 * and queueing an outgoing message is chain/queue.h's. */
#ifndef HL_MSG_MESSAGE_H
#define HL_MSG_MESSAGE_H

#include <stddef.h>
#include <stdint.h>

#include "msg/item.h"

/* The content that travels beside a message item in an ITEM packet
 * (docs/messages.md): salt, subject and, when inline, the body. */
struct hl_msg_content {
	uint8_t salt[HL_SALT_LEN];
	const uint8_t *subject;       /* borrowed */
	size_t subject_len;
	int inline_body;
	const uint8_t *body;          /* borrowed, when inline_body */
	size_t body_len;
};
int hl_msg_content_decode(const uint8_t *buf, size_t len, struct hl_msg_content *c);
/* Encodes content (for ITEM packets and bundles); HL_ETOOBIG over CAP. */
int hl_msg_content_encode(const struct hl_msg_content *c, uint8_t *out, size_t cap,
			  size_t *len);
/* Checks C against the signed message M: the subject hash, and the body's
 * when it is inline (size too).  HL_EAUTH on a mismatch. */
int hl_msg_content_verify(const struct hl_item_message *m, const struct hl_msg_content *c);

/* Lowercase hex of an id (33 bytes with the NUL). */
void hl_msg_id_hex(const uint8_t id[static HL_MSG_ID_LEN], char out[static 33]);

#endif
