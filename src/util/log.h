/* util/log.h — the daemon's log: one line per event on stderr, with a UTC
 * timestamp and a level.  Text that came from a peer must go through
 * hl_sanitize() (util/text.h) before it is logged.
 *
 * hl_ratelimit guards log lines that an unauthenticated party can trigger
 * (a flood of bad connections must not fill the disk): a token bucket, and a
 * "suppressed N messages" line when logging resumes. */
#ifndef HL_UTIL_LOG_H
#define HL_UTIL_LOG_H

#include <stdbool.h>
#include <stdint.h>

enum hl_log_level { HL_LOG_DEBUG, HL_LOG_INFO, HL_LOG_WARN, HL_LOG_ERROR };

/* The level chosen on the command line (`run -v`, `-q`): it wins over
 * hl_log_set_default_level, which station.conf's LogLevel calls. */
void hl_log_set_level(enum hl_log_level level);
void hl_log_set_default_level(enum hl_log_level level);
void hl_log(enum hl_log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#define hl_debug(...) hl_log(HL_LOG_DEBUG, __VA_ARGS__)
#define hl_info(...) hl_log(HL_LOG_INFO, __VA_ARGS__)
#define hl_warn(...) hl_log(HL_LOG_WARN, __VA_ARGS__)
#define hl_error(...) hl_log(HL_LOG_ERROR, __VA_ARGS__)

struct hl_ratelimit {
	uint32_t burst;        /* bucket size */
	uint32_t per_minute;   /* refill rate */
	double tokens;
	uint64_t last_ms;
	uint64_t suppressed;
};

#define HL_RATELIMIT_INIT(burst, per_minute) { (burst), (per_minute), (burst), 0, 0 }

/* True when a line may be logged now.  When lines were suppressed since the
 * last one allowed, logs how many first. */
bool hl_ratelimit_allow(struct hl_ratelimit *rl, uint64_t now_ms);

#endif
