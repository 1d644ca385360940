/* util/timefmt.h — time as hotline shows it: milliseconds since the Unix
 * epoch inside, RFC 3339 in UTC outside. */
#ifndef HL_UTIL_TIMEFMT_H
#define HL_UTIL_TIMEFMT_H

#include <stdint.h>
#include <time.h>

#define HL_RFC3339_LEN 32

int64_t hl_now_ms(void);
/* Monotonic milliseconds, for timeouts. */
uint64_t hl_mono_ms(void);
/* The same clock in microseconds. */
uint64_t hl_mono_us(void);
/* "2026-11-27T22:43:49.123Z" (milliseconds kept). */
void hl_rfc3339(int64_t ms, char out[static HL_RFC3339_LEN]);
/* Parses that form (UTC, "Z", optional fraction); HL_EINVAL otherwise. */
int hl_rfc3339_parse(const char *s, time_t *out);
/* Now, in milliseconds since the epoch, unsigned (the daemon's habit). */
uint64_t hl_wall_ms(void);

#endif
