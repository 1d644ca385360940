/* voice/signal.c — call signalling packet bodies; see signal.h. */
#include <string.h>

#include "util/bytes.h"
#include "util/err.h"
#include "voice/signal.h"

const char *hl_call_end_name(unsigned reason)
{
	static const char *const names[] = { NULL, "hangup", "busy", "no_answer",
					     "preempted", "lost", "failed" };
	return reason >= 1 && reason <= HL_CALL_END_MAX ? names[reason] : "unknown";
}

static int check_len(size_t len, size_t want)
{
	if (len > HL_CALL_REC_MAX)
		return HL_ETOOBIG;
	return len < want ? HL_ETRUNC : 0;
}

static int zero32(const uint8_t *p)
{
	uint8_t acc = 0;
	for (int i = 0; i < 32; i++)
		acc |= p[i];
	return acc == 0;
}

void hl_call_ring_encode(const struct hl_call_ring *r, uint8_t out[static HL_CALL_RING_LEN])
{
	struct hl_wbuf w;
	hl_wbuf_init(&w, out, HL_CALL_RING_LEN);
	hl_w_bytes(&w, r->id, HL_CALL_ID_LEN);
	hl_w_u8(&w, r->precedence);
	hl_w_u8(&w, r->flags);
	hl_w_bytes(&w, r->pub, HL_CALL_PUB_LEN);
	hl_w_u32(&w, r->tag);
	hl_w_u16(&w, r->port);
}

int hl_call_ring_decode(const uint8_t *buf, size_t len, struct hl_call_ring *r)
{
	int ret = check_len(len, HL_CALL_RING_LEN);
	if (ret < 0)
		return ret;
	struct hl_rbuf rb;
	hl_rbuf_init(&rb, buf, len);
	hl_r_bytes(&rb, r->id, HL_CALL_ID_LEN);
	r->precedence = hl_r_u8(&rb);
	r->flags = hl_r_u8(&rb);
	hl_r_bytes(&rb, r->pub, HL_CALL_PUB_LEN);
	r->tag = hl_r_u32(&rb);
	r->port = hl_r_u16(&rb);
	if (r->precedence > 3 || zero32(r->pub))
		return HL_EINVAL;
	return 0;
}

int hl_call_ringing_decode(const uint8_t *buf, size_t len, uint8_t id[static HL_CALL_ID_LEN])
{
	int ret = check_len(len, HL_CALL_RINGING_LEN);
	if (ret == 0)
		memcpy(id, buf, HL_CALL_ID_LEN);
	return ret;
}

void hl_call_answer_encode(const struct hl_call_answer *a,
			   uint8_t out[static HL_CALL_ANSWER_LEN])
{
	struct hl_wbuf w;
	hl_wbuf_init(&w, out, HL_CALL_ANSWER_LEN);
	hl_w_bytes(&w, a->id, HL_CALL_ID_LEN);
	hl_w_bytes(&w, a->pub, HL_CALL_PUB_LEN);
	hl_w_u32(&w, a->tag);
	hl_w_u16(&w, a->port);
}

int hl_call_answer_decode(const uint8_t *buf, size_t len, struct hl_call_answer *a)
{
	int ret = check_len(len, HL_CALL_ANSWER_LEN);
	if (ret < 0)
		return ret;
	struct hl_rbuf rb;
	hl_rbuf_init(&rb, buf, len);
	hl_r_bytes(&rb, a->id, HL_CALL_ID_LEN);
	hl_r_bytes(&rb, a->pub, HL_CALL_PUB_LEN);
	a->tag = hl_r_u32(&rb);
	a->port = hl_r_u16(&rb);
	return zero32(a->pub) ? HL_EINVAL : 0;
}

void hl_call_end_encode(const struct hl_call_endrec *e, uint8_t out[static HL_CALL_END_LEN])
{
	memcpy(out, e->id, HL_CALL_ID_LEN);
	out[HL_CALL_ID_LEN] = e->reason;
}

int hl_call_end_decode(const uint8_t *buf, size_t len, struct hl_call_endrec *e)
{
	int ret = check_len(len, HL_CALL_END_LEN);
	if (ret < 0)
		return ret;
	memcpy(e->id, buf, HL_CALL_ID_LEN);
	e->reason = buf[HL_CALL_ID_LEN];
	return e->reason >= 1 && e->reason <= HL_CALL_END_MAX ? 0 : HL_EINVAL;
}
