/* daemon/schedule.h — when the next scheduled line check is due, for a
 * peer's CheckEvery or CheckAt/CheckZone (conf/config.h).  Pure functions
 * of their arguments, the clock passed in, so tests can drive them. */
#ifndef HL_DAEMON_SCHEDULE_H
#define HL_DAEMON_SCHEDULE_H

#include <stdint.h>

#include "conf/config.h"

/* The next check time (ms since the epoch) strictly after NOW_MS, or 0
 * when PC schedules no checks.  For CheckEvery, LAST_MS is when the last
 * scheduled check was made (0: none): the next is LAST_MS + CheckEvery,
 * or NOW_MS + CheckEvery when that has passed (a check missed while the
 * daemon was down is not made up).  For CheckAt, the next of the listed
 * times of day in CheckZone (UTC when none), by the zone's file under
 * $TZDIR or /usr/share/zoneinfo (util/tzif.h), so daylight saving time is
 * followed; a time shown twice on a day (clocks going back) is its first
 * occurrence, and a time skipped (clocks going forward) falls the length
 * of the gap later.  Safe to call from any thread: it reads no global
 * state and never touches the environment. */
int64_t hl_check_next(const hl_peer_conf *pc, int64_t last_ms, int64_t now_ms);

/* "every 5m", "at 09:00,17:00 Asia/Seoul" (CAP bytes); "" when none. */
void hl_check_schedule_text(const hl_peer_conf *pc, char *out, size_t cap);

#endif
