/* voice/callaudio.h — reading hotline's call audio format (voice/callrec.h,
 * docs/voice.md section 5): length-prefixed 20 ms Opus frames at 16 kHz
 * mono, as a station recorded what it sent in a call.  A pure parser over
 * (buf, len) with the decode, fuzzed by fuzz/fuzz_voice_callaudio.c. */
#ifndef HL_VOICE_CALLAUDIO_H
#define HL_VOICE_CALLAUDIO_H

#include <stddef.h>
#include <stdint.h>

#include "voice/oggopus.h"

#define HL_CALLAUDIO_MAX (256u << 20)   /* 16 hours at 36 kb/s */

/* Decodes BUF to 16 kHz mono PCM through SINK, one 20 ms frame at a time
 * (an empty frame is concealed).  HL_ETRUNC when the last frame is cut,
 * HL_ETOOBIG over HL_CALLAUDIO_MAX; frames Opus refuses are concealed. */
int hl_callaudio_decode(const uint8_t *buf, size_t len, hl_pcm_sink sink, void *arg);

/* True for "call-*.hla", the recording's attachment name. */
int hl_callaudio_name(const char *name);

#endif
