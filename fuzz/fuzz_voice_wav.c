/* fuzz_voice_wav.c — the WAV header parser (voice/wav.c) on arbitrary
 * files.  Oracles: what parses lies inside the input, with a supported
 * format, and every sample can be read. */
#include <stdint.h>
#include <stdlib.h>

#include "voice/wav.h"

#define CHECK(x) do { if (!(x)) abort(); } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct hl_wav w;
	if (hl_wav_parse(data, size, &w) < 0)
		return 0;
	CHECK(w.channels == 1 || w.channels == 2);
	CHECK(w.rate >= HL_WAV_RATE_MIN && w.rate <= HL_WAV_RATE_MAX);
	CHECK(w.data >= data && w.data + w.frames * 2u * w.channels <= data + size);
	int32_t sum = 0;
	for (size_t i = 0; i < w.frames; i++)
		sum += hl_wav_mono(&w, i);
	(void)sum;
	return 0;
}
