/* util/tzif.h — local time in an IANA time zone without the C library's
 * global state: the zone's TZif file (RFC 8536, the files under
 * /usr/share/zoneinfo) read by hotline itself, and the POSIX TZ rule in its
 * footer for times past its last transition.
 *
 * Why not localtime_r/mktime: those read the zone from the environment
 * (TZ), and changing TZ while other threads run (the daemon's workers) is
 * undefined behaviour, and gave wrong times in practice.  Nothing here
 * touches the environment or any global; a struct hl_tz is read-only once
 * loaded and may be shared between threads.
 *
 * Leap-second zones ("right/...") are read, their leap records ignored:
 * times are POSIX times, as everywhere else in hotline. */
#ifndef HL_UTIL_TZIF_H
#define HL_UTIL_TZIF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HL_TZIF_MAX_BYTES (256 * 1024)   /* the largest zone file read */
#define HL_TZIF_MAX_TIMES 4096           /* transitions (tzdata's most: ~250) */
#define HL_TZIF_MAX_TYPES 256            /* local time types (the format's cap) */
#define HL_TZ_RULE_MAX 128               /* bytes of a POSIX TZ rule */

/* One end of daylight saving time in a POSIX TZ rule. */
struct hl_tz_date {
	char form;                   /* 'J' (Jn: 1-365, no Feb 29), 'D' (n: 0-365), 'M' (Mm.w.d) */
	uint16_t day;                /* J and D */
	uint8_t mon, week, wday;     /* M: month 1-12, week 1-5 (5: the last), weekday 0-6 (Sunday 0) */
	int32_t time;                /* seconds after local midnight, -167h to 167h */
};

struct hl_tz_rule {
	int32_t std_off, dst_off;    /* UTC offsets, seconds east of Greenwich */
	bool has_dst;
	struct hl_tz_date start, end;   /* DST starts (in standard time), ends (in DST) */
};

struct hl_tz {
	uint32_t ntimes, ntypes;
	int64_t times[HL_TZIF_MAX_TIMES];   /* transitions, UTC seconds, increasing */
	uint8_t idx[HL_TZIF_MAX_TIMES];     /* the type from each transition on */
	int32_t utoff[HL_TZIF_MAX_TYPES];
	uint8_t isdst[HL_TZIF_MAX_TYPES];
	bool has_rule;                      /* the footer: after the last transition */
	struct hl_tz_rule rule;
};

/* Parses a TZif file of any version (1 to 4; the 64-bit data and the
 * footer of version 2 and later are used when present).  No I/O.  0, or
 * HL_EINVAL (not TZif, a count over its cap or past the end, a bad index
 * or footer). */
int hl_tzif_parse(const uint8_t *buf, size_t len, struct hl_tz *tz);

/* Parses a POSIX TZ rule such as "EST5EDT,M3.2.0,M11.1.0" or
 * "<+1030>-10:30<+11>-11,M10.1.0,M4.1.0" (RFC 8536 section 3.3, with its
 * extensions: hours to 167 in rule times, negative rule times).  LEN bytes,
 * no NUL needed.  0 or HL_EINVAL. */
int hl_tz_rule_parse(const char *s, size_t len, struct hl_tz_rule *r);

/* Reads and parses ZONE (a name hl_zone_name_valid accepts) from $TZDIR or
 * /usr/share/zoneinfo.  Allocates *OUT (free()).  0, HL_ENOTFOUND, HL_EINVAL
 * or a negative errno. */
int hl_tz_load(const char *zone, struct hl_tz **out);

/* The UTC offset (seconds east) in effect at UTC second T; *ISDST (may be
 * NULL) says whether it is daylight saving time. */
int32_t hl_tz_offset(const struct hl_tz *tz, int64_t t, bool *isdst);

/* The UTC second at which the zone's clocks show LOCAL (seconds since the
 * epoch as read on a local clock, i.e. as if local time were UTC).  A time
 * shown twice (clocks going back) is its first occurrence; a time skipped
 * (clocks going forward) falls the length of the gap later, as with the
 * offset in effect before the change (02:30 on a day clocks go from 02:00
 * to 03:00 is 03:30). */
int64_t hl_tz_local_to_utc(const struct hl_tz *tz, int64_t local);

/* Days since 1970-01-01 of a proleptic Gregorian date (any month and day,
 * normalised: month 13 is January of the next year, day 0 the last of the
 * month before), and back. */
int64_t hl_days_from_civil(int64_t y, int64_t m, int64_t d);
void hl_civil_from_days(int64_t days, int64_t *y, unsigned *m, unsigned *d);

#endif
