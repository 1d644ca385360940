/* voice/stream.h — the framing of a call's audio stream between a handset
 * (`hotline call`) and the daemon, on the control socket after the answer
 * line (docs/voice.md section 6): 1 type byte, 2 bytes of length
 * (big-endian), the payload.  A pure parser over (buf, len), fuzzed by
 * fuzz/fuzz_voice_stream.c; each side passes its own cap on a payload. */
#ifndef HL_VOICE_STREAM_H
#define HL_VOICE_STREAM_H

#include <stddef.h>
#include <stdint.h>

#define HL_STREAM_HDR 3
#define HL_STREAM_AUDIO 'A'    /* 20 ms of 16 kHz mono s16le PCM */
#define HL_STREAM_EVENT 'E'    /* daemon to handset: one JSON event */
#define HL_STREAM_HANGUP 'H'   /* handset to daemon: hang up (empty) */

/* The first frame of BUF (LEN bytes): 1 with *TYPE, *PAYLOAD, *N and
 * *USED (header and payload) set; 0 when more bytes are needed;
 * HL_ETOOBIG when its length is over MAX. */
int hl_stream_next(const uint8_t *buf, size_t len, size_t max, uint8_t *type,
		   const uint8_t **payload, size_t *n, size_t *used);

/* The header of a frame of TYPE with N (at most 65535) bytes. */
void hl_stream_header(uint8_t out[static HL_STREAM_HDR], uint8_t type, size_t n);

#endif
