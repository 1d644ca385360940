/* voice/codec.h — Opus for calls: 16 kHz mono, 20 ms frames, constant
 * bit rate (every frame the same size, so the packets of docs/voice.md
 * section 3 carry no talk-spurt pattern even before padding), in-band FEC
 * on, tuned for speech; decoding a frame, the next frame's FEC copy of a
 * lost one, or concealment. */
#ifndef HL_VOICE_CODEC_H
#define HL_VOICE_CODEC_H

#include <stddef.h>
#include <stdint.h>

#include "voice/jitter.h"

#define HL_CODEC_RATE 16000
#define HL_CODEC_FRAME (HL_CODEC_RATE / 50)   /* 320 samples, 20 ms */
#define HL_CODEC_BITRATE 36000                /* 90 bytes a frame: STOI 0.96 at 20 % loss (bench_voice_codec) */
#define HL_CODEC_LOSS_PERC 20                 /* what FEC is sized for */

struct hl_codec;

/* BITRATE in b/s (0: HL_CODEC_BITRATE), LOSS_PERC the expected loss for
 * the FEC (negative: HL_CODEC_LOSS_PERC). */
int hl_codec_new(struct hl_codec **out, int bitrate, int loss_perc);
void hl_codec_free(struct hl_codec *c);

/* One frame of PCM into OUT (CAP bytes): its length, or a negative code. */
int hl_codec_encode(struct hl_codec *c, const int16_t pcm[static HL_CODEC_FRAME],
		    uint8_t *out, size_t cap);

/* One frame of output for jitter-buffer action A: DATA / LEN are the
 * frame (FRAME) or the next one (FEC), unused for CONCEAL; WAIT gives
 * silence.  A frame that does not decode is concealed instead. */
void hl_codec_decode(struct hl_codec *c, enum hl_jb_action a, const uint8_t *data, size_t len,
		     int16_t pcm[static HL_CODEC_FRAME]);

#endif
