/* wire/frame.h — TCP framing (docs/protocol.md section 1): every Noise
 * message travels as a 2-byte big-endian length (1..65535) and that many
 * bytes.  Pure functions over (buf, len); no I/O.
 *
 * The reader is incremental: the caller feeds whatever bytes arrived, in
 * pieces of any size, and gets complete frames out one at a time.  A frame
 * of length 0 is malformed; no larger frame than 65535 can be expressed, so
 * that cap is inherent. */
#ifndef HL_WIRE_FRAME_H
#define HL_WIRE_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HL_FRAME_HDR_LEN 2
#define HL_FRAME_MAX 65535

struct hl_frame_reader {
	size_t need;            /* body length of the current frame; 0 while in the header */
	size_t have;            /* bytes of the header or body gathered so far */
	bool failed;            /* a malformed frame was seen: the stream is dead */
	uint8_t hdr[HL_FRAME_HDR_LEN];
	uint8_t body[HL_FRAME_MAX];
};

void hl_frame_reader_init(struct hl_frame_reader *r);

/* Consumes bytes of BUF (LEN of them) until one frame is complete.
 * *USED is set to the number of bytes consumed.  Returns:
 *   1  a frame is complete: *FRAME and *FLEN describe it; the pointer is
 *      valid until the next call (it may point into BUF or into R);
 *   0  all LEN bytes were consumed and no frame is complete yet;
 *   HL_EINVAL  a frame of length 0: the reader is failed and every later
 *      call returns HL_EINVAL.
 * Call again with the remaining bytes (BUF + *USED) while it returns 1. */
int hl_frame_read(struct hl_frame_reader *r, const uint8_t *buf, size_t len,
		  size_t *used, const uint8_t **frame, size_t *flen);

/* True when no partial frame is buffered (a clean point to stop). */
bool hl_frame_reader_idle(const struct hl_frame_reader *r);

/* The 2-byte header for a message of LEN bytes; HL_EINVAL for 0,
 * HL_ETOOBIG above 65535. */
int hl_frame_header(size_t len, uint8_t hdr[static HL_FRAME_HDR_LEN]);

/* Writes the frame (header and MSG) to OUT (capacity CAP); *OUTLEN = LEN + 2.
 * HL_EINVAL for an empty message, HL_ETOOBIG when it does not fit. */
int hl_frame_write(const uint8_t *msg, size_t len, uint8_t *out, size_t cap, size_t *outlen);

#endif
