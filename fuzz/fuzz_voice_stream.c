/* fuzz_voice_stream.c — the handset stream framing (voice/stream.c) on
 * arbitrary bytes, with the daemon's cap (one PCM frame) and the
 * handset's (65535).  Oracles: every frame lies inside the input, under
 * its cap, and the frames tile the bytes consumed. */
#include <stdint.h>
#include <stdlib.h>

#include "util/err.h"
#include "voice/stream.h"

#define CHECK(x) do { if (!(x)) abort(); } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const size_t caps[] = { 640, 65535 };
	for (int c = 0; c < 2; c++) {
		size_t off = 0;
		for (;;) {
			uint8_t type;
			const uint8_t *p;
			size_t n, used;
			int r = hl_stream_next(data + off, size - off, caps[c], &type, &p, &n, &used);
			if (r <= 0) {
				CHECK(r == 0 || r == HL_ETOOBIG);
				break;
			}
			CHECK(n <= caps[c] && used == n + HL_STREAM_HDR && off + used <= size);
			CHECK(p == data + off + HL_STREAM_HDR && type == data[off]);
			uint8_t h[HL_STREAM_HDR];
			hl_stream_header(h, type, n);
			CHECK(h[0] == data[off] && h[1] == data[off + 1] && h[2] == data[off + 2]);
			off += used;
		}
	}
	return 0;
}
