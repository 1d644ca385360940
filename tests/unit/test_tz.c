/* tests/unit/test_tz.c — zone times without the environment: the TZif
 * reader and POSIX TZ rules (util/tzif.h) against the C library's own
 * answers for every zone of this machine, changes of offset, and what the
 * parsers refuse.  (test_checks.c computes the schedule from several
 * threads at once.) */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <ftw.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "conf/config.h"
#include "util/err.h"
#include "util/tzif.h"

static int64_t utc(int y, int mo, int d, int h, int mi)
{
	struct tm t = { .tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d, .tm_hour = h,
			.tm_min = mi };
	return (int64_t)timegm(&t) * 1000;
}

static bool have_zones(void)
{
	if (hl_zone_exists("Asia/Seoul") && hl_zone_exists("America/New_York"))
		return true;
	fprintf(stderr, "SKIPPED: the zoneinfo files (tzdata) are not installed\n");
	return false;
}

/* ---- the TZif reader against the C library ---- */

static long zones_checked, instants_checked, locals_checked;

static void set_tz(const char *zone)
{
	setenv("TZ", zone, 1);
	tzset();
}

/* Offsets at every transition (and around it) and daily from 2030 to
 * 2060, past the end of the tables, where the footer's rule applies. */
static void compare_offsets(const char *zone, const struct hl_tz *tz)
{
	int64_t probe[4] = { -3601, -1, 0, 3600 };
	for (uint32_t i = 0; i <= tz->ntimes; i++) {
		for (int j = 0; j < 4; j++) {
			int64_t t = i < tz->ntimes ? tz->times[i] + probe[j]
						   : (int64_t)utc(2030, 1, 1, 0, 0) / 1000 + j;
			if (i == tz->ntimes && j)
				break;
			time_t tt = (time_t)t;
			struct tm lt;
			if (!localtime_r(&tt, &lt))
				continue;
			int32_t off = hl_tz_offset(tz, t, NULL);
			if (off != lt.tm_gmtoff)
				fail_msg("%s at %lld: offset %d, the C library says %ld", zone,
					 (long long)t, off, lt.tm_gmtoff);
			instants_checked++;
		}
	}
	for (int64_t t = utc(2030, 1, 1, 0, 0) / 1000; t < utc(2060, 1, 1, 0, 0) / 1000;
	     t += 86400 + 3 * 3600) {
		time_t tt = (time_t)t;
		struct tm lt;
		localtime_r(&tt, &lt);
		if (hl_tz_offset(tz, t, NULL) != lt.tm_gmtoff)
			fail_msg("%s at %lld: offset %d, the C library says %ld", zone,
				 (long long)t, hl_tz_offset(tz, t, NULL), lt.tm_gmtoff);
		instants_checked++;
	}
}

/* Local to UTC where the answer is unique (no change within two days):
 * the same as mktime's. */
static void compare_locals(const char *zone, const struct hl_tz *tz)
{
	for (int64_t local = utc(2020, 1, 1, 9, 0) / 1000; local < utc(2050, 1, 1, 0, 0) / 1000;
	     local += 86400 * 5 + 1800) {
		if (hl_tz_offset(tz, local - 2 * 86400, NULL) !=
		    hl_tz_offset(tz, local + 2 * 86400, NULL))
			continue;
		time_t lt = (time_t)local;
		struct tm tm;
		gmtime_r(&lt, &tm);
		tm.tm_isdst = -1;
		time_t want = mktime(&tm);
		int64_t got = hl_tz_local_to_utc(tz, local);
		if (got != (int64_t)want)
			fail_msg("%s: local %lld is %lld UTC, the C library says %lld", zone,
				 (long long)local, (long long)got, (long long)want);
		locals_checked++;
	}
}

static const char *zoneinfo_base;

static int each_zone(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
	(void)sb;
	(void)ftw;
	if (type != FTW_F)
		return 0;
	const char *zone = path + strlen(zoneinfo_base) + 1;
	/* right/: leap seconds, which hotline ignores (tzif.h); posix/ is a copy */
	if (strncmp(zone, "right/", 6) == 0 || strncmp(zone, "posix/", 6) == 0 ||
	    strchr(zone, '.') || strcmp(zone, "Factory") == 0)
		return 0;
	struct hl_tz *tz;
	if (hl_tz_load(zone, &tz) < 0)
		return 0;   /* zone1970.tab, leapseconds and the like */
	set_tz(zone);
	compare_offsets(zone, tz);
	compare_locals(zone, tz);
	free(tz);
	zones_checked++;
	return 0;
}

static void test_every_zone_like_the_c_library(void **state)
{
	(void)state;
	if (!have_zones())
		skip();
	zoneinfo_base = getenv("TZDIR") ? getenv("TZDIR") : "/usr/share/zoneinfo";
	assert_int_equal(nftw(zoneinfo_base, each_zone, 16, FTW_PHYS), 0);
	unsetenv("TZ");
	tzset();
	fprintf(stderr, "%ld zones: %ld instants and %ld local times as the C library has them\n",
		zones_checked, instants_checked, locals_checked);
	assert_true(zones_checked > 300);
}

/* Clocks going back and forward: the first of a time shown twice, and a
 * skipped time the gap's length later. */
static void test_changes_of_offset(void **state)
{
	(void)state;
	if (!have_zones())
		skip();
	struct hl_tz *ny, *lh;
	assert_int_equal(hl_tz_load("America/New_York", &ny), 0);
	assert_int_equal(hl_tz_load("Australia/Lord_Howe", &lh), 0);
	/* 2026-11-01 01:30 New York: EDT (05:30Z) first, then EST (06:30Z) */
	assert_int_equal(hl_tz_local_to_utc(ny, utc(2026, 11, 1, 1, 30) / 1000),
			 utc(2026, 11, 1, 5, 30) / 1000);
	/* 2026-03-08 02:30 does not exist: 03:30 EDT (07:30Z) */
	assert_int_equal(hl_tz_local_to_utc(ny, utc(2026, 3, 8, 2, 30) / 1000),
			 utc(2026, 3, 8, 7, 30) / 1000);
	/* the same in 2050, from the footer's rule */
	assert_int_equal(hl_tz_local_to_utc(ny, utc(2050, 11, 6, 1, 30) / 1000),
			 utc(2050, 11, 6, 5, 30) / 1000);
	assert_int_equal(hl_tz_local_to_utc(ny, utc(2050, 3, 13, 2, 30) / 1000),
			 utc(2050, 3, 13, 7, 30) / 1000);
	/* Lord Howe moves by half an hour: 2026-04-05 01:45 is +11 first */
	assert_int_equal(hl_tz_local_to_utc(lh, utc(2026, 4, 5, 1, 45) / 1000),
			 utc(2026, 4, 4, 14, 45) / 1000);
	assert_int_equal(hl_tz_local_to_utc(lh, utc(2026, 10, 4, 2, 15) / 1000),
			 utc(2026, 10, 3, 15, 45) / 1000);
	free(ny);
	free(lh);
}

static void test_rules(void **state)
{
	(void)state;
	struct hl_tz_rule r;
	static const struct { const char *rule; int ret; } cases[] = {
		{ "UTC0", 0 }, { "EST5EDT,M3.2.0,M11.1.0", 0 },
		{ "<+1030>-10:30<+11>-11,M10.1.0,M4.1.0", 0 }, { "IST-2IDT,M3.4.4/26,M10.5.0", 0 },
		{ "EST5EDT,0/0,J365/25", 0 }, { "<-03>3<-02>,M3.5.0/-2,M10.5.0/-1", 0 },
		{ "CET-1CEST,M3.5.0,M10.5.0/3", 0 }, { "AAA3BBB", 0 }, { "<+00>0", 0 },
		{ "", HL_EINVAL }, { "E5", HL_EINVAL }, { "EST", HL_EINVAL }, { "EST25", HL_EINVAL },
		{ "EST5EDT,M13.1.0,M11.1.0", HL_EINVAL }, { "EST5EDT,M3.6.0,M11.1.0", HL_EINVAL },
		{ "EST5EDT,M3.2.7,M11.1.0", HL_EINVAL }, { "EST5EDT,J0,J365", HL_EINVAL },
		{ "EST5EDT,M3.2.0", HL_EINVAL }, { "EST5EDT,M3.2.0/168,M11.1.0", HL_EINVAL },
		{ "<+1030-10:30", HL_EINVAL }, { "EST5EDT,M3.2.0,M11.1.0x", HL_EINVAL },
		{ "EST5:60", HL_EINVAL },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		if (hl_tz_rule_parse(cases[i].rule, strlen(cases[i].rule), &r) != cases[i].ret)
			fail_msg("the rule '%s': want %d", cases[i].rule, cases[i].ret);
	/* All year DST (RFC 8536 3.3.1's example) */
	assert_int_equal(hl_tz_rule_parse("EST5EDT,0/0,J365/25", 19, &r), 0);
	struct hl_tz tz = { .has_rule = true, .rule = r, .ntypes = 1 };
	bool dst;
	assert_int_equal(hl_tz_offset(&tz, utc(2030, 7, 1, 0, 0) / 1000, &dst), -4 * 3600);
	assert_true(dst);
	assert_int_equal(hl_tz_offset(&tz, utc(2030, 1, 1, 6, 0) / 1000, &dst), -4 * 3600);
	assert_true(dst);
}

static void test_tzif_refuses(void **state)
{
	(void)state;
	struct hl_tz *tz = malloc(sizeof(*tz));
	assert_int_equal(hl_tzif_parse((const uint8_t *)"TZif", 4, tz), HL_EINVAL);
	assert_int_equal(hl_tzif_parse((const uint8_t *)"nope", 4, tz), HL_EINVAL);
	/* a version 1 file: one type, no transitions */
	uint8_t v1[44 + 6 + 4] = "TZif";
	v1[20 + 4 * 4 + 3] = 1;   /* typecnt */
	v1[20 + 5 * 4 + 3] = 4;   /* charcnt */
	memcpy(v1 + 44 + 6, "UTC", 4);
	assert_int_equal(hl_tzif_parse(v1, sizeof(v1), tz), 0);
	assert_int_equal(hl_tz_offset(tz, 0, NULL), 0);
	assert_int_equal(hl_tzif_parse(v1, sizeof(v1) - 1, tz), HL_EINVAL);
	v1[20 + 3 * 4 + 3] = 1;   /* a transition the file does not hold */
	assert_int_equal(hl_tzif_parse(v1, sizeof(v1), tz), HL_EINVAL);
	free(tz);
	assert_int_equal(hl_tz_load("No/Such_Zone", &tz), HL_ENOTFOUND);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_zone_like_the_c_library),
		cmocka_unit_test(test_changes_of_offset),
		cmocka_unit_test(test_rules),
		cmocka_unit_test(test_tzif_refuses),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
