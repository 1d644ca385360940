/* daemon/schedule.c — the next scheduled check (schedule.h).
 *
 * Local time in a zone comes from the zone's TZif file, read by
 * util/tzif.c: never from TZ and the C library's localtime/mktime, because
 * setting TZ while the daemon's worker threads run is undefined behaviour
 * (and gave another thread's zone in practice).  The zone file is read at
 * each computation (a few KiB, at most a few times a day per peer), so a
 * tzdata update applies at the next check. */
#include "daemon/schedule.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/err.h"
#include "util/log.h"
#include "util/tzif.h"

#define DAY_S 86400

/* The next of PC's CheckAt times after NOW_MS, in ZONE (NULL: UTC). */
static int64_t at_next_in(const hl_peer_conf *pc, const struct hl_tz *zone, int64_t now_ms)
{
	int64_t now = now_ms / 1000;
	int64_t today = (now + (zone ? hl_tz_offset(zone, now, NULL) : 0)) / DAY_S;
	int64_t best = 0;
	/* Yesterday to the day after tomorrow: wide enough for any offset and
	 * any DST shift around midnight. */
	for (int64_t d = today - 1; d <= today + 2; d++) {
		for (unsigned i = 0; i < pc->n_check_at; i++) {
			int64_t local = d * DAY_S + (int64_t)pc->check_at[i] * 60;
			int64_t t = zone ? hl_tz_local_to_utc(zone, local) : local;
			int64_t ms = t * 1000;
			if (ms > now_ms && (best == 0 || ms < best))
				best = ms;
		}
	}
	return best;
}

static int64_t at_next(const hl_peer_conf *pc, int64_t now_ms)
{
	struct hl_tz *zone = NULL;
	if (pc->check_zone[0]) {
		int ret = hl_tz_load(pc->check_zone, &zone);
		if (ret < 0)
			/* The zone was there when the configuration was read;
			 * like the C library, fall back to UTC, and say so. */
			hl_warn("CheckZone %s: cannot read its zone file (%s); using UTC",
				pc->check_zone, ret == HL_ENOTFOUND ? "not found" : "not a zone file");
	}
	int64_t next = at_next_in(pc, zone, now_ms);
	free(zone);
	return next;
}

int64_t hl_check_next(const hl_peer_conf *pc, int64_t last_ms, int64_t now_ms)
{
	if (pc->check_every_ms) {
		int64_t every = (int64_t)pc->check_every_ms;
		if (last_ms > 0 && last_ms + every > now_ms)
			return last_ms + every;
		return now_ms + every;
	}
	if (pc->n_check_at)
		return at_next(pc, now_ms);
	return 0;
}

void hl_check_schedule_text(const hl_peer_conf *pc, char *out, size_t cap)
{
	size_t n = 0;
	out[0] = '\0';
	if (pc->check_every_ms) {
		uint32_t ms = pc->check_every_ms;
		if (ms % 3600000 == 0)
			snprintf(out, cap, "every %uh", ms / 3600000);
		else if (ms % 60000 == 0)
			snprintf(out, cap, "every %um", ms / 60000);
		else if (ms % 1000 == 0)
			snprintf(out, cap, "every %us", ms / 1000);
		else
			snprintf(out, cap, "every %ums", ms);
		return;
	}
	if (!pc->n_check_at)
		return;
	n = (size_t)snprintf(out, cap, "at");
	for (unsigned i = 0; i < pc->n_check_at && n < cap; i++)
		n += (size_t)snprintf(out + n, cap - n, "%s%02u:%02u", i ? "," : " ",
				      pc->check_at[i] / 60u, pc->check_at[i] % 60u);
	if (n < cap)
		snprintf(out + n, cap - n, " %s", pc->check_zone[0] ? pc->check_zone : "UTC");
}
