/* msg/callitem.c — the call item's fields; see callitem.h and
 * docs/items.md section 2.7. */
#include "msg/callitem.h"
#include "util/err.h"

void hl_item_call_write(struct hl_wbuf *w, const struct hl_item_call *c)
{
	hl_w_bytes(w, c->id, HL_CALL_ITEM_ID_LEN);
	hl_w_u8(w, c->role);
	hl_w_u8(w, c->precedence);
	hl_w_u64(w, c->rang_at);
	hl_w_u64(w, c->answered_at);
	hl_w_u64(w, c->ended_at);
	hl_w_u8(w, c->reason);
	hl_w_u8(w, c->ended_by);
	hl_w_u64(w, c->audio_size);
	hl_w_bytes(w, c->audio_hash, 32);
	hl_w_bytes(w, c->recording, 16);
	hl_w_u64(w, c->packets_sent);
	hl_w_u64(w, c->packets_received);
	hl_w_u64(w, c->packets_lost);
	hl_w_u64(w, c->concealed_samples);
	hl_w_u64(w, c->fec_recovered);
	hl_w_u32(w, c->jitter_us);
	hl_w_u32(w, c->buffer_delay_us);
	hl_w_u32(w, c->first_audio_ms);
	hl_w_u8(w, c->paths);
}

void hl_item_call_read(struct hl_rbuf *r, struct hl_item_call *c)
{
	hl_r_bytes(r, c->id, HL_CALL_ITEM_ID_LEN);
	c->role = hl_r_u8(r);
	c->precedence = hl_r_u8(r);
	c->rang_at = hl_r_u64(r);
	c->answered_at = hl_r_u64(r);
	c->ended_at = hl_r_u64(r);
	c->reason = hl_r_u8(r);
	c->ended_by = hl_r_u8(r);
	c->audio_size = hl_r_u64(r);
	hl_r_bytes(r, c->audio_hash, 32);
	hl_r_bytes(r, c->recording, 16);
	c->packets_sent = hl_r_u64(r);
	c->packets_received = hl_r_u64(r);
	c->packets_lost = hl_r_u64(r);
	c->concealed_samples = hl_r_u64(r);
	c->fec_recovered = hl_r_u64(r);
	c->jitter_us = hl_r_u32(r);
	c->buffer_delay_us = hl_r_u32(r);
	c->first_audio_ms = hl_r_u32(r);
	c->paths = hl_r_u8(r);
}

const char *hl_item_call_validate(const struct hl_item_call *c)
{
	if (c->role > HL_CALL_ROLE_CALLEE)
		return "a call with an unknown role";
	if (c->precedence > 3)
		return "a call with an unknown precedence";
	if (c->reason < 1 || c->reason > 6)
		return "a call with an unknown end reason";
	if (c->ended_by > 1)
		return "a call ended by neither side";
	if (c->paths & ~(HL_CALL_PATH_UDP | HL_CALL_PATH_LINK))
		return "a call over an unknown media path";
	if (c->ended_at < c->rang_at)
		return "a call that ended before it rang";
	if (c->answered_at && (c->answered_at < c->rang_at || c->answered_at > c->ended_at))
		return "a call answered outside its ringing and end";
	/* A call never answered carries no audio and no recording. */
	if (!c->answered_at) {
		uint8_t acc = 0;
		for (int i = 0; i < 32; i++)
			acc |= c->audio_hash[i];
		for (int i = 0; i < 16; i++)
			acc |= c->recording[i];
		if (acc || c->audio_size)
			return "an unanswered call with audio or a recording";
	}
	return NULL;
}
