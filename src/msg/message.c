/* msg/message.c — a message's content beside its item: encoding,
 * decoding, checking it against the signed item (see message.h).  Queueing
 * an outgoing message is chain/queue.c's. */
#include "msg/message.h"

#include <sodium.h>
#include <string.h>

#include "util/bytes.h"
#include "util/err.h"

void hl_msg_id_hex(const uint8_t id[static HL_MSG_ID_LEN], char out[static 33])
{
	sodium_bin2hex(out, 33, id, HL_MSG_ID_LEN);
}

int hl_msg_content_decode(const uint8_t *buf, size_t len, struct hl_msg_content *c)
{
	struct hl_rbuf r;
	hl_rbuf_init(&r, buf, len);
	memset(c, 0, sizeof(*c));
	hl_r_bytes(&r, c->salt, HL_SALT_LEN);
	c->subject_len = hl_r_u16(&r);
	if (c->subject_len > HL_SUBJECT_MAX)
		return HL_ETOOBIG;
	c->subject = hl_r_take(&r, c->subject_len);
	uint8_t flag = hl_r_u8(&r);
	if (r.err)
		return HL_ETRUNC;
	if (flag > 1)
		return HL_EINVAL;
	c->inline_body = flag;
	c->body_len = hl_r_left(&r);
	if (!flag && c->body_len)
		return HL_EINVAL;
	if (c->body_len > HL_INLINE_BODY_MAX)
		return HL_ETOOBIG;
	c->body = hl_r_take(&r, c->body_len);
	return 0;
}

int hl_msg_content_encode(const struct hl_msg_content *c, uint8_t *out, size_t cap,
			  size_t *len)
{
	struct hl_wbuf w;
	if (c->subject_len > HL_SUBJECT_MAX ||
	    (c->inline_body && c->body_len > HL_INLINE_BODY_MAX) ||
	    (!c->inline_body && c->body_len))
		return HL_EINVAL;
	hl_wbuf_init(&w, out, cap);
	hl_w_bytes(&w, c->salt, HL_SALT_LEN);
	hl_w_u16(&w, (uint16_t)c->subject_len);
	hl_w_bytes(&w, c->subject, c->subject_len);
	hl_w_u8(&w, c->inline_body ? 1 : 0);
	if (c->inline_body)
		hl_w_bytes(&w, c->body, c->body_len);
	if (w.err)
		return HL_ETOOBIG;
	*len = w.len;
	return 0;
}

int hl_msg_content_verify(const struct hl_item_message *m, const struct hl_msg_content *c)
{
	uint8_t h[HL_HASH_LEN];
	hl_salted_hash(c->salt, HL_LABEL_SUBJECT, c->subject, c->subject_len, h);
	if (sodium_memcmp(h, m->subject_hash, HL_HASH_LEN) != 0)
		return HL_EAUTH;
	/* A body that fits inline must travel inline: one encoding per message. */
	if ((m->body_size <= HL_INLINE_BODY_MAX) != (c->inline_body != 0))
		return HL_EINVAL;
	if (c->inline_body) {
		if (c->body_len != m->body_size)
			return HL_EAUTH;
		hl_salted_hash(c->salt, HL_LABEL_BODY, c->body, c->body_len, h);
		if (sodium_memcmp(h, m->body_hash, HL_HASH_LEN) != 0)
			return HL_EAUTH;
	}
	return 0;
}
