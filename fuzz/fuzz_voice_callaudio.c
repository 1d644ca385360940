/* fuzz_voice_callaudio.c — call audio (voice/callaudio.c) from arbitrary
 * bytes: a disclosed recording is a peer's file.  Oracles: no crash, and
 * the frames decoded never exceed the frames the input can hold. */
#include <stdint.h>
#include <stdlib.h>

#include "voice/callaudio.h"

#define CHECK(x) do { if (!(x)) abort(); } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int count(void *arg, const int16_t *pcm, size_t frames)
{
	(void)pcm;
	*(size_t *)arg += frames / 320;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t n = 0;
	(void)hl_callaudio_decode(data, size, count, &n);
	CHECK(n <= size);
	return 0;
}
