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
#define HL_CODEC_BITRATE 36000                /* 90 bytes a frame: STOI 0.95 at 20 % loss (bench_voice_codec) */
/* The loss the in-band FEC is sized for.  The FEC copy is there whatever
 * the figure; a higher one spends more of the frame's fixed 90 bytes on
 * it.  Measured (bench_voice_codec, 60 s of speech, 3 seeds, complexity
 * 5), STOI clean / 20 % random / 10 % in bursts of 3: sized for 20 %
 * 0.974 / 0.951 / 0.925; for 10 % 0.983 / 0.958 / 0.933; for 5 % 0.987 /
 * 0.958 / 0.936; for 1 % 0.991 / 0.953 / 0.936. */
#define HL_CODEC_LOSS_PERC 10
/* The encoder's effort (0-10).  Measured as above, sized for 10 %: 5
 * takes 1.9 % of a core (encoding and decoding one direction), 3 takes
 * 1.5 % for 0.977 / 0.951 / 0.929 (delayed-decision quantizing with two
 * states, as 5, without its noise-shaping refinements), 1 takes 0.7 % for
 * 0.959 / 0.936 / 0.913 (measured at 20 %). */
#define HL_CODEC_COMPLEXITY 3

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
