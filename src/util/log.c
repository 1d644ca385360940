/* util/log.c — stderr logging and the log rate limiter (see log.h). */
#include "util/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <time.h>

static enum hl_log_level min_level = HL_LOG_INFO;
static bool level_forced;   /* by the command line */

void hl_log_set_level(enum hl_log_level level)
{
	min_level = level;
	level_forced = true;
}

void hl_log_set_default_level(enum hl_log_level level)
{
	if (!level_forced)
		min_level = level;
}

void hl_log(enum hl_log_level level, const char *fmt, ...)
{
	static const char *names[] = { "debug", "info", "warn", "error" };
	if (level < min_level)
		return;
	struct timespec ts;
	struct tm tm;
	char stamp[32];
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);

	char line[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	fprintf(stderr, "%s.%03ldZ %s: %s\n", stamp, ts.tv_nsec / 1000000L,
		names[level], line);
}

bool hl_ratelimit_allow(struct hl_ratelimit *rl, uint64_t now_ms)
{
	if (rl->last_ms == 0)
		rl->last_ms = now_ms;
	double elapsed_min = (double)(now_ms - rl->last_ms) / 60000.0;
	rl->last_ms = now_ms;
	rl->tokens += elapsed_min * rl->per_minute;
	if (rl->tokens > rl->burst)
		rl->tokens = rl->burst;
	if (rl->tokens < 1.0) {
		rl->suppressed++;
		return false;
	}
	rl->tokens -= 1.0;
	if (rl->suppressed) {
		hl_warn("(%llu similar log lines suppressed)",
			(unsigned long long)rl->suppressed);
		rl->suppressed = 0;
	}
	return true;
}
