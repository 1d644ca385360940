/* voice/voicemsg.c — recognising and describing voice messages; see
 * voicemsg.h. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/fsutil.h"
#include "util/mem.h"
#include "voice/oggopus.h"
#include "voice/voicemsg.h"

bool hl_voice_name(const char *name)
{
	size_t n = strlen(name), p = strlen(HL_VOICE_PREFIX), s = strlen(HL_VOICE_SUFFIX);
	return n > p + s && memcmp(name, HL_VOICE_PREFIX, p) == 0 &&
	       memcmp(name + n - s, HL_VOICE_SUFFIX, s) == 0;
}

enum hl_voice_kind hl_voice_where(const char *station, const struct hl_msg_row *row,
				  char **path)
{
	*path = NULL;
	if (row->n_att != 1 || !hl_voice_name(row->att[0].name))
		return HL_VOICE_NOT;
	const struct hl_att_row *a = &row->att[0];
	if (row->purged_at)
		return HL_VOICE_PURGED;
	if ((row->dir == HL_DIR_IN && a->done < a->size) || !a->path[0])
		return HL_VOICE_PARTIAL;
	*path = hl_path_join(station, a->path);
	return HL_VOICE_READY;
}

enum hl_voice_kind hl_voice_msg(const char *station, const struct hl_msg_row *row,
				uint64_t *ms, char **path)
{
	char *full;
	*ms = 0;
	if (path)
		*path = NULL;
	enum hl_voice_kind kind = hl_voice_where(station, row, &full);
	if (kind != HL_VOICE_READY)
		return kind;
	char *buf = NULL;
	size_t len = 0;
	struct hl_oggopus_info info;
	kind = HL_VOICE_BROKEN;
	if (hl_read_file(full, HL_OGGOPUS_MAX, &buf, &len) == 0 &&
	    hl_oggopus_info((const uint8_t *)buf, len, &info) == 0) {
		kind = HL_VOICE_READY;
		*ms = info.duration_ms;
	}
	free(buf);
	if (kind == HL_VOICE_READY && path)
		*path = full;
	else
		free(full);
	return kind;
}

void hl_voice_label(const char *station, const struct hl_msg_row *row, char *out, size_t cap)
{
	uint64_t ms;
	char d[32];
	switch (hl_voice_msg(station, row, &ms, NULL)) {
	case HL_VOICE_READY:
		hl_duration_str(ms, d, sizeof(d));
		snprintf(out, cap, "voice %s", d);
		break;
	case HL_VOICE_PARTIAL:
		snprintf(out, cap, "voice (arriving)");
		break;
	case HL_VOICE_BROKEN:
		snprintf(out, cap, "voice (unreadable)");
		break;
	case HL_VOICE_PURGED:
		snprintf(out, cap, "voice (purged)");
		break;
	default:
		if (cap)
			out[0] = '\0';
	}
}

json_t *hl_voice_json(const char *station, const struct hl_msg_row *row)
{
	uint64_t ms;
	static const char *const names[] = { NULL, "ready", "arriving", "unreadable",
						     "purged" };
	enum hl_voice_kind k = hl_voice_msg(station, row, &ms, NULL);
	if (k == HL_VOICE_NOT)
		return NULL;
	return json_pack("{s:s,s:o}", "state", names[k], "duration_ms",
			 k == HL_VOICE_READY ? json_integer((json_int_t)ms) : json_null());
}
