/* voice/wav.h — RIFF WAVE files of 16-bit PCM: the header parser (a pure
 * function over (buf, len), fuzzed by fuzz/fuzz_voice_wav.c) and the writer
 * that the voice commands use for --output and `voice play -o`.
 *
 * What is accepted: format tag 1 (PCM) or 0xFFFE (WAVE_FORMAT_EXTENSIBLE
 * with the PCM sub-format), 16 bits per sample, 1 or 2 channels, 8000 to
 * 48000 samples per second.  Anything else is refused with HL_EUNSUPP, a
 * broken structure with HL_EINVAL.  Chunks other than "fmt " and "data"
 * are skipped.  A data chunk whose size runs past the end of the buffer
 * (a file still being written, or cut short) is taken up to the end. */
#ifndef HL_VOICE_WAV_H
#define HL_VOICE_WAV_H

#include <stddef.h>
#include <stdint.h>

#define HL_WAV_RATE_MIN 8000
#define HL_WAV_RATE_MAX 48000
#define HL_WAV_HDR_LEN 44        /* what hl_wav_header() writes */
#define HL_WAV_CHUNKS_MAX 64     /* chunks looked at before "data" */

struct hl_wav {
	uint32_t rate;
	uint16_t channels;
	const uint8_t *data;     /* interleaved s16le frames, into the buffer */
	size_t frames;           /* sample frames in DATA */
};

int hl_wav_parse(const uint8_t *buf, size_t len, struct hl_wav *w);

/* The 44-byte header of a mono or stereo s16le file of FRAMES frames. */
void hl_wav_header(uint8_t out[static HL_WAV_HDR_LEN], uint32_t rate, uint16_t channels,
		   uint32_t frames);

/* A WAV file written as audio arrives: the header first (sizes fixed up at
 * close, so a file cut short still parses: see above). */
struct hl_wav_writer {
	int fd;
	uint32_t rate;
	uint16_t channels;
	uint64_t frames;
};
/* Creates PATH (O_EXCL unless OVERWRITE; "-" is standard output, whose
 * sizes are never fixed up). */
int hl_wav_create(struct hl_wav_writer *w, const char *path, uint32_t rate, uint16_t channels,
		  int overwrite);
int hl_wav_write(struct hl_wav_writer *w, const int16_t *pcm, size_t frames);
/* Fixes the sizes, syncs and closes; the writer is unusable after. */
int hl_wav_close(struct hl_wav_writer *w);

/* Reads the file PATH whole (at most MAX bytes) and parses it; *MEM is the
 * buffer W points into (free() it). */
int hl_wav_load(const char *path, size_t max, uint8_t **mem, struct hl_wav *w);

/* Sample I of channel 0..channels-1 averaged: the mono signal. */
int16_t hl_wav_mono(const struct hl_wav *w, size_t i);

#endif
