/* voice/voicemsg.h — what makes a message a voice message, and how the
 * message commands show one (docs/voice.md section 1).
 *
 * A voice message is an ordinary message (docs/items.md) with exactly one
 * attachment whose name is "voice-*.opus" and whose bytes are an Ogg Opus
 * stream: nothing new on the wire or in the chain, so precedence, receipts,
 * the record and every path (link, email, courier) carry it as they carry
 * any document.  Its duration is read from the recording itself when it is
 * shown, never taken from the sender's text. */
#ifndef HL_VOICE_VOICEMSG_H
#define HL_VOICE_VOICEMSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

#define HL_VOICE_PREFIX "voice-"
#define HL_VOICE_SUFFIX ".opus"

/* True for "voice-*.opus". */
bool hl_voice_name(const char *name);

enum hl_voice_kind {
	HL_VOICE_NOT = 0,       /* not a voice message */
	HL_VOICE_READY = 1,     /* a voice message, its recording complete and readable */
	HL_VOICE_PARTIAL = 2,   /* named as one, but not all of it is here yet */
	HL_VOICE_BROKEN = 3,    /* named as one, complete, but not Ogg Opus */
	HL_VOICE_PURGED = 4,    /* one, whose recording retention or purge removed */
};

/* Classifies ROW from the store alone, reading nothing of the recording:
 * READY means complete, not yet checked; *PATH (xmalloc'd) is then its
 * path under STATION, else NULL.  For `voice play`, which parses the
 * recording in a sandbox. */
enum hl_voice_kind hl_voice_where(const char *station, const struct hl_msg_row *row,
				  char **path);

/* Classifies ROW; for READY, *MS is the duration and *PATH (when not NULL)
 * the recording's path under STATION (xmalloc'd). */
enum hl_voice_kind hl_voice_msg(const char *station, const struct hl_msg_row *row,
				uint64_t *ms, char **path);

/* "voice 0:42", "voice (arriving)", "voice (unreadable)", "voice (purged)",
 * or "" for a message that is not one. */
void hl_voice_label(const char *station, const struct hl_msg_row *row, char *out, size_t cap);

/* For --json output: {"state": "ready"|"arriving"|"unreadable"|"purged",
 * "duration_ms": N or null}, or NULL for a message that is not one. */
typedef struct json_t json_t;
json_t *hl_voice_json(const char *station, const struct hl_msg_row *row);

#endif
