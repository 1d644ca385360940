/* daemon/schedule.c — the next scheduled check (schedule.h).
 *
 * Local time in a zone comes from the C library: TZ is set to the zone for
 * the computation and put back afterwards (the daemon is one thread, and
 * nothing else in it reads local time: logs and RFC 3339 times are UTC). */
#include "daemon/schedule.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util/mem.h"

static int64_t at_next(const hl_peer_conf *pc, int64_t now_ms)
{
	bool zoned = pc->check_zone[0] != '\0';
	char *old_tz = NULL;
	if (zoned) {
		const char *t = getenv("TZ");
		old_tz = t ? xstrdup(t) : NULL;
		setenv("TZ", pc->check_zone, 1);
		tzset();
	}
	time_t now = (time_t)(now_ms / 1000);
	struct tm today;
	if (zoned)
		localtime_r(&now, &today);
	else
		gmtime_r(&now, &today);
	int64_t best = 0;
	/* Yesterday to the day after tomorrow: wide enough for any offset and
	 * any DST shift around midnight. */
	for (int d = -1; d <= 2; d++) {
		for (unsigned i = 0; i < pc->n_check_at; i++) {
			struct tm t = { 0 };
			t.tm_year = today.tm_year;
			t.tm_mon = today.tm_mon;
			t.tm_mday = today.tm_mday + d;
			t.tm_hour = pc->check_at[i] / 60;
			t.tm_min = pc->check_at[i] % 60;
			t.tm_isdst = -1;
			time_t x = zoned ? mktime(&t) : timegm(&t);
			if (x == (time_t)-1)
				continue;
			int64_t ms = (int64_t)x * 1000;
			if (ms > now_ms && (best == 0 || ms < best))
				best = ms;
		}
	}
	if (zoned) {
		if (old_tz)
			setenv("TZ", old_tz, 1);
		else
			unsetenv("TZ");
		tzset();
		free(old_tz);
	}
	return best;
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
