/* voice/oggopus.h — reading Ogg Opus files (RFC 7845), the format of voice
 * messages, with libopusfile: what a file holds (duration, channels) and
 * its audio decoded to mono 16-bit PCM at 48 kHz.
 *
 * The bytes are a peer's (a received attachment): every call takes
 * (buf, len), caps LEN at HL_OGGOPUS_MAX and the decoded length at
 * HL_OGGOPUS_SECONDS_MAX; libopusfile parses; fuzz/fuzz_voice_ogg.c drives
 * both.  Writing Ogg Opus is the helper's (tools/hotline-voice.c, with
 * libopusenc, which Debian ships without a static archive). */
#ifndef HL_VOICE_OGGOPUS_H
#define HL_VOICE_OGGOPUS_H

#include <stddef.h>
#include <stdint.h>

#define HL_OGGOPUS_MAX (64u << 20)          /* bytes of a voice file */
#define HL_OGGOPUS_SECONDS_MAX (4 * 3600)   /* decoded audio */
#define HL_OGGOPUS_RATE 48000

struct hl_oggopus_info {
	uint64_t duration_ms;
	int channels;
};

/* HL_EINVAL when BUF is not an Ogg Opus stream, HL_ETOOBIG over the caps. */
int hl_oggopus_info(const uint8_t *buf, size_t len, struct hl_oggopus_info *info);

/* Decodes BUF to mono s16 at 48 kHz, calling SINK with each piece
 * (a non-zero return stops and is returned).  A stream damaged part way
 * (a hole in the middle, a cut end) decodes as far as it can. */
typedef int (*hl_pcm_sink)(void *arg, const int16_t *pcm, size_t frames);
int hl_oggopus_decode(const uint8_t *buf, size_t len, hl_pcm_sink sink, void *arg);

/* "M:SS" (or "H:MM:SS") into OUT. */
void hl_duration_str(uint64_t ms, char *out, size_t cap);

#endif
