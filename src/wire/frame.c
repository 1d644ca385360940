/* wire/frame.c — the incremental frame reader and the frame writer (see
 * frame.h and docs/protocol.md section 1). */
#include "wire/frame.h"

#include <string.h>

#include "util/err.h"

void hl_frame_reader_init(struct hl_frame_reader *r)
{
	r->need = 0;
	r->have = 0;
	r->failed = false;
}

bool hl_frame_reader_idle(const struct hl_frame_reader *r)
{
	return !r->failed && r->need == 0 && r->have == 0;
}

int hl_frame_read(struct hl_frame_reader *r, const uint8_t *buf, size_t len,
		  size_t *used, const uint8_t **frame, size_t *flen)
{
	size_t pos = 0;

	*used = 0;
	if (r->failed)
		return HL_EINVAL;
	while (pos < len) {
		if (r->need == 0) {
			/* Header.  Both bytes at once is the common case. */
			r->hdr[r->have++] = buf[pos++];
			if (r->have < HL_FRAME_HDR_LEN)
				continue;
			r->need = ((size_t)r->hdr[0] << 8) | r->hdr[1];
			r->have = 0;
			if (r->need == 0) {
				r->failed = true;
				*used = pos;
				return HL_EINVAL;
			}
			/* Zero copy when the whole body is already in BUF. */
			if (len - pos >= r->need) {
				*frame = buf + pos;
				*flen = r->need;
				pos += r->need;
				r->need = 0;
				*used = pos;
				return 1;
			}
			continue;
		}
		size_t take = r->need - r->have;
		if (take > len - pos)
			take = len - pos;
		memcpy(r->body + r->have, buf + pos, take);
		r->have += take;
		pos += take;
		if (r->have == r->need) {
			*frame = r->body;
			*flen = r->need;
			r->need = 0;
			r->have = 0;
			*used = pos;
			return 1;
		}
	}
	*used = pos;
	return 0;
}

int hl_frame_header(size_t len, uint8_t hdr[static HL_FRAME_HDR_LEN])
{
	if (len == 0)
		return HL_EINVAL;
	if (len > HL_FRAME_MAX)
		return HL_ETOOBIG;
	hdr[0] = (uint8_t)(len >> 8);
	hdr[1] = (uint8_t)len;
	return 0;
}

int hl_frame_write(const uint8_t *msg, size_t len, uint8_t *out, size_t cap, size_t *outlen)
{
	uint8_t hdr[HL_FRAME_HDR_LEN];
	int ret = hl_frame_header(len, hdr);
	if (ret < 0)
		return ret;
	if (cap < HL_FRAME_HDR_LEN || cap - HL_FRAME_HDR_LEN < len)
		return HL_ETOOBIG;
	/* memmove: MSG may already sit at OUT + 2 (framing in place). */
	memmove(out + HL_FRAME_HDR_LEN, msg, len);
	memcpy(out, hdr, HL_FRAME_HDR_LEN);
	*outlen = len + HL_FRAME_HDR_LEN;
	return 0;
}
