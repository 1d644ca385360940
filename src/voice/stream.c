/* voice/stream.c — a call's handset stream framing; see stream.h. */
#include "util/err.h"
#include "voice/stream.h"

int hl_stream_next(const uint8_t *buf, size_t len, size_t max, uint8_t *type,
		   const uint8_t **payload, size_t *n, size_t *used)
{
	if (len < HL_STREAM_HDR)
		return 0;
	size_t k = (size_t)buf[1] << 8 | buf[2];
	if (k > max)
		return HL_ETOOBIG;
	if (len - HL_STREAM_HDR < k)
		return 0;
	*type = buf[0];
	*payload = buf + HL_STREAM_HDR;
	*n = k;
	*used = HL_STREAM_HDR + k;
	return 1;
}

void hl_stream_header(uint8_t out[static HL_STREAM_HDR], uint8_t type, size_t n)
{
	out[0] = type;
	out[1] = (uint8_t)(n >> 8);
	out[2] = (uint8_t)n;
}
