/* util/timefmt.c — clocks and RFC 3339 formatting. */
#include "util/timefmt.h"

#include <stdio.h>
#include <string.h>

#include "util/err.h"
#include <time.h>

int64_t hl_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

uint64_t hl_mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

uint64_t hl_mono_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

void hl_rfc3339(int64_t ms, char out[static HL_RFC3339_LEN])
{
	time_t secs = (time_t)(ms / 1000);
	struct tm tm;
	gmtime_r(&secs, &tm);
	size_t n = strftime(out, HL_RFC3339_LEN, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(out + n, HL_RFC3339_LEN - n, ".%03dZ", (int)(ms % 1000));
}

int hl_rfc3339_parse(const char *s, time_t *out)
{
	struct tm tm;
	int n = 0;
	memset(&tm, 0, sizeof(tm));
	if (!s || sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
			 &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &n) != 6)
		return HL_EINVAL;
	s += n;
	if (*s == '.') {
		s++;
		while (*s >= '0' && *s <= '9')
			s++;
	}
	if (strcmp(s, "Z") != 0)
		return HL_EINVAL;
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	*out = timegm(&tm);
	return 0;
}

uint64_t hl_wall_ms(void)
{
	return (uint64_t)hl_now_ms();
}
