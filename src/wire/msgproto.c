/* wire/msgproto.c — encoders and decoders of the messages protocol's
 * packets (see msgproto.h and docs/messages.md). */
#include "wire/msgproto.h"

#include <string.h>

#include "util/bytes.h"
#include "util/err.h"

const char *hl_refuse_code_str(unsigned code)
{
	switch (code) {
	case HL_REFUSE_SIGNATURE: return "bad signature";
	case HL_REFUSE_RECIPIENT: return "wrong recipient";
	case HL_REFUSE_ID_REUSED: return "message id reused with different content";
	case HL_REFUSE_CONTENT: return "subject or body does not match its hash";
	case HL_REFUSE_ATTACHMENT: return "attachment does not match its hash";
	case HL_REFUSE_TOO_LARGE: return "too large";
	case HL_REFUSE_QUOTA: return "over the receiver's storage quota";
	case HL_REFUSE_MALFORMED: return "malformed";
	}
	return "unknown reason";
}

int hl_pkt_item_decode(const uint8_t *buf, size_t len, struct hl_pkt_item *r)
{
	struct hl_rbuf rb;
	hl_rbuf_init(&rb, buf, len);
	r->item_len = hl_r_u16(&rb);
	r->item = hl_r_take(&rb, r->item_len);
	if (rb.err)
		return HL_ETRUNC;
	if (r->item_len == 0)
		return HL_EINVAL;
	r->rest_len = hl_r_left(&rb);
	r->rest = buf + rb.off;
	return 0;
}

int hl_pkt_item_encode(const uint8_t *item, size_t item_len, uint8_t *out, size_t cap,
		       size_t *len)
{
	struct hl_wbuf w;
	if (item_len == 0 || item_len > UINT16_MAX)
		return item_len ? HL_ETOOBIG : HL_EINVAL;
	hl_wbuf_init(&w, out, cap);
	hl_w_u16(&w, (uint16_t)item_len);
	hl_w_bytes(&w, item, item_len);
	if (w.err)
		return HL_ETOOBIG;
	*len = w.len;
	return 0;
}

int hl_pkt_chunk_decode(const uint8_t *buf, size_t len, struct hl_pkt_chunk *r)
{
	struct hl_rbuf rb;
	hl_rbuf_init(&rb, buf, len);
	r->seq = hl_r_u64(&rb);
	r->part = hl_r_u8(&rb);
	r->offset = hl_r_u64(&rb);
	if (rb.err)
		return HL_ETRUNC;
	r->data_len = hl_r_left(&rb);
	r->data = buf + rb.off;
	if (r->data_len == 0 || r->seq == 0 || r->part > 64 ||
	    r->offset > UINT64_MAX - r->data_len)
		return HL_EINVAL;
	return 0;
}

void hl_pkt_chunk_header(uint64_t seq, uint8_t part, uint64_t offset,
			 uint8_t out[static HL_CHUNK_HDR_LEN])
{
	struct hl_wbuf w;
	hl_wbuf_init(&w, out, HL_CHUNK_HDR_LEN);
	hl_w_u64(&w, seq);
	hl_w_u8(&w, part);
	hl_w_u64(&w, offset);
}

int hl_pkt_ack_decode(const uint8_t *buf, size_t len, struct hl_pkt_ack *r)
{
	struct hl_rbuf rb;
	hl_rbuf_init(&rb, buf, len);
	r->base = hl_r_u64(&rb);
	r->n = hl_r_u16(&rb);
	if (rb.err)
		return HL_ETRUNC;
	if (r->n > HL_ACK_MAX_RANGES)
		return HL_ETOOBIG;
	uint64_t floor = r->base;
	for (unsigned i = 0; i < r->n; i++) {
		r->ranges[i][0] = hl_r_u64(&rb);
		r->ranges[i][1] = hl_r_u64(&rb);
		if (rb.err)
			return HL_ETRUNC;
		/* increasing, disjoint, above base (and above the last range + 1,
		 * so that adjacent ranges are merged by the sender) */
		if (r->ranges[i][0] <= floor || r->ranges[i][0] > r->ranges[i][1] ||
		    r->ranges[i][1] == UINT64_MAX)
			return HL_EINVAL;
		floor = r->ranges[i][1] + 1;
	}
	return hl_r_left(&rb) ? HL_EINVAL : 0;
}

int hl_pkt_ack_encode(const struct hl_pkt_ack *r, uint8_t *out, size_t cap, size_t *len)
{
	struct hl_wbuf w;
	if (r->n > HL_ACK_MAX_RANGES)
		return HL_ETOOBIG;
	hl_wbuf_init(&w, out, cap);
	hl_w_u64(&w, r->base);
	hl_w_u16(&w, r->n);
	for (unsigned i = 0; i < r->n; i++) {
		hl_w_u64(&w, r->ranges[i][0]);
		hl_w_u64(&w, r->ranges[i][1]);
	}
	if (w.err)
		return HL_ETOOBIG;
	*len = w.len;
	return 0;
}

int hl_pkt_resume_decode(const uint8_t *buf, size_t len, struct hl_pkt_resume *r)
{
	struct hl_rbuf rb;
	hl_rbuf_init(&rb, buf, len);
	r->n = hl_r_u16(&rb);
	if (rb.err)
		return HL_ETRUNC;
	if (r->n > HL_RESUME_MAX)
		return HL_ETOOBIG;
	for (unsigned i = 0; i < r->n; i++) {
		r->e[i].seq = hl_r_u64(&rb);
		r->e[i].part = hl_r_u8(&rb);
		r->e[i].offset = hl_r_u64(&rb);
		if (rb.err)
			return HL_ETRUNC;
		if (r->e[i].seq == 0 || r->e[i].part > 64)
			return HL_EINVAL;
	}
	return hl_r_left(&rb) ? HL_EINVAL : 0;
}

int hl_pkt_resume_encode(const struct hl_pkt_resume *r, uint8_t *out, size_t cap, size_t *len)
{
	struct hl_wbuf w;
	if (r->n > HL_RESUME_MAX)
		return HL_ETOOBIG;
	hl_wbuf_init(&w, out, cap);
	hl_w_u16(&w, r->n);
	for (unsigned i = 0; i < r->n; i++) {
		hl_w_u64(&w, r->e[i].seq);
		hl_w_u8(&w, r->e[i].part);
		hl_w_u64(&w, r->e[i].offset);
	}
	if (w.err)
		return HL_ETOOBIG;
	*len = w.len;
	return 0;
}

int hl_pkt_refuse_decode(const uint8_t *buf, size_t len, struct hl_pkt_refuse *r)
{
	struct hl_rbuf rb;
	hl_rbuf_init(&rb, buf, len);
	r->seq = hl_r_u64(&rb);
	hl_r_bytes(&rb, r->hash, 32);
	r->code = hl_r_u8(&rb);
	if (rb.err)
		return HL_ETRUNC;
	r->text_len = hl_r_left(&rb);
	r->text = buf + rb.off;
	if (r->seq == 0 || r->text_len > HL_REFUSE_TEXT_MAX)
		return HL_EINVAL;
	return 0;
}

int hl_pkt_refuse_encode(uint64_t seq, const uint8_t hash[static 32], uint8_t code,
			 const char *text, uint8_t *out, size_t cap, size_t *len)
{
	struct hl_wbuf w;
	size_t tlen = strlen(text);
	if (tlen > HL_REFUSE_TEXT_MAX)
		tlen = HL_REFUSE_TEXT_MAX;
	hl_wbuf_init(&w, out, cap);
	hl_w_u64(&w, seq);
	hl_w_bytes(&w, hash, 32);
	hl_w_u8(&w, code);
	hl_w_bytes(&w, text, tlen);
	if (w.err)
		return HL_ETOOBIG;
	*len = w.len;
	return 0;
}

int hl_pkt_stage_decode(const uint8_t *buf, size_t len, struct hl_pkt_stage *r)
{
	struct hl_rbuf rb;
	hl_rbuf_init(&rb, buf, len);
	hl_r_bytes(&rb, r->id, sizeof(r->id));
	r->part = hl_r_u8(&rb);
	r->offset = hl_r_u64(&rb);
	if (rb.err)
		return HL_ETRUNC;
	r->data_len = hl_r_left(&rb);
	r->data = buf + rb.off;
	if (r->data_len == 0 || r->part == 0 || r->part > 64 ||
	    r->offset > UINT64_MAX - r->data_len)
		return HL_EINVAL;
	return 0;
}

void hl_pkt_stage_header(const uint8_t id[static 16], uint8_t part, uint64_t offset,
			 uint8_t out[static HL_STAGE_HDR_LEN])
{
	struct hl_wbuf w;
	hl_wbuf_init(&w, out, HL_STAGE_HDR_LEN);
	hl_w_bytes(&w, id, 16);
	hl_w_u8(&w, part);
	hl_w_u64(&w, offset);
}

int hl_pkt_staged_decode(const uint8_t *buf, size_t len, struct hl_pkt_staged *r)
{
	struct hl_rbuf rb;
	if (len != HL_STAGED_LEN)
		return len < HL_STAGED_LEN ? HL_ETRUNC : HL_EINVAL;
	hl_rbuf_init(&rb, buf, len);
	r->seq = hl_r_u64(&rb);
	r->part = hl_r_u8(&rb);
	r->offset = hl_r_u64(&rb);
	if (rb.err)
		return HL_ETRUNC;
	if (r->seq == 0 || r->part == 0 || r->part > 64)
		return HL_EINVAL;
	return 0;
}

void hl_pkt_staged_encode(const struct hl_pkt_staged *r, uint8_t out[static HL_STAGED_LEN])
{
	struct hl_wbuf w;
	hl_wbuf_init(&w, out, HL_STAGED_LEN);
	hl_w_u64(&w, r->seq);
	hl_w_u8(&w, r->part);
	hl_w_u64(&w, r->offset);
}

int hl_pkt_credit_decode(const uint8_t *buf, size_t len, uint64_t *taken)
{
	struct hl_rbuf rb;
	if (len != HL_CREDIT_LEN)
		return HL_EINVAL;
	hl_rbuf_init(&rb, buf, len);
	*taken = hl_r_u64(&rb);
	return rb.err ? HL_ETRUNC : 0;
}

void hl_pkt_credit_encode(uint64_t taken, uint8_t out[static HL_CREDIT_LEN])
{
	struct hl_wbuf w;
	hl_wbuf_init(&w, out, HL_CREDIT_LEN);
	hl_w_u64(&w, taken);
}

int hl_pkt_reclaim_decode(const uint8_t *buf, size_t len, uint64_t *seq)
{
	/* The shape of a CREDIT body: one 8-byte integer. */
	int ret = hl_pkt_credit_decode(buf, len, seq);
	return ret < 0 ? ret : *seq == 0 ? HL_EINVAL : 0;
}

int hl_pkt_return_decode(const uint8_t *buf, size_t len, struct hl_pkt_item *r)
{
	int ret = hl_pkt_item_decode(buf, len, r);
	if (ret == 0 && r->rest_len != 0)
		ret = HL_EINVAL;
	return ret;
}
