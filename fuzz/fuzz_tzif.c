/* fuzz_tzif.c — libFuzzer target for the TZif reader and the POSIX TZ rule
 * parser (util/tzif.c).  The input is tried as a TZif file and as a rule.
 *
 * Oracles: an accepted zone answers every offset within 25 hours of UTC,
 * and a local time converts to a UTC time within that reach of it; an
 * accepted rule gives offsets that are its own two. */
#include <stdint.h>
#include <stdlib.h>

#include "util/tzif.h"

#define CHECK(x) do { if (!(x)) abort(); } while (0)
#define REACH (26 * 3600)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const int64_t probes[] = {
	INT64_MIN / 4, -2208988800LL, -1, 0, 1700000000, 2147483647LL, 2147483648LL,
	4102444800LL, 32503680000LL, INT64_MAX / 4,
};

static void probe(const struct hl_tz *tz)
{
	for (size_t i = 0; i < sizeof(probes) / sizeof(probes[0]); i++) {
		int32_t off = hl_tz_offset(tz, probes[i], NULL);
		CHECK(off >= -REACH && off <= REACH);
		int64_t t = hl_tz_local_to_utc(tz, probes[i]);
		CHECK(t - probes[i] >= -REACH && t - probes[i] <= REACH);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct hl_tz tz;
	if (hl_tzif_parse(data, size, &tz) == 0) {
		CHECK(tz.ntypes >= 1 && tz.ntypes <= HL_TZIF_MAX_TYPES);
		CHECK(tz.ntimes <= HL_TZIF_MAX_TIMES);
		probe(&tz);
	}
	struct hl_tz_rule r;
	if (hl_tz_rule_parse((const char *)data, size, &r) == 0) {
		struct hl_tz z = { .ntypes = 1, .has_rule = true, .rule = r };
		for (size_t i = 0; i < sizeof(probes) / sizeof(probes[0]); i++) {
			int32_t off = hl_tz_offset(&z, probes[i], NULL);
			CHECK(off == r.std_off || off == r.dst_off);
		}
		probe(&z);
	}
	return 0;
}
