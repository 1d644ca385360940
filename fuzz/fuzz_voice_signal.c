/* fuzz_voice_signal.c — the call signalling packet bodies (voice/signal.c)
 * on arbitrary bytes: the first byte picks the packet type.  Oracles: what
 * decodes re-encodes to the same first bytes, and its values are in range. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util/err.h"
#include "voice/signal.h"

#define CHECK(x) do { if (!(x)) abort(); } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	const uint8_t *b = data + 1;
	size_t n = size - 1;
	uint8_t out[HL_CALL_RING_LEN];
	switch (data[0] % 4) {
	case 0: {
		struct hl_call_ring r;
		if (hl_call_ring_decode(b, n, &r) == 0) {
			CHECK(r.precedence <= 3 && n >= HL_CALL_RING_LEN && n <= HL_CALL_REC_MAX);
			hl_call_ring_encode(&r, out);
			CHECK(memcmp(out, b, HL_CALL_RING_LEN) == 0);
		}
		break;
	}
	case 1: {
		struct hl_call_answer a;
		if (hl_call_answer_decode(b, n, &a) == 0) {
			hl_call_answer_encode(&a, out);
			CHECK(memcmp(out, b, HL_CALL_ANSWER_LEN) == 0);
		}
		break;
	}
	case 2: {
		struct hl_call_endrec e;
		if (hl_call_end_decode(b, n, &e) == 0) {
			CHECK(e.reason >= 1 && e.reason <= HL_CALL_END_MAX);
			CHECK(strcmp(hl_call_end_name(e.reason), "unknown") != 0);
			hl_call_end_encode(&e, out);
			CHECK(memcmp(out, b, HL_CALL_END_LEN) == 0);
		}
		break;
	}
	default: {
		uint8_t id[HL_CALL_ID_LEN];
		if (hl_call_ringing_decode(b, n, id) == 0)
			CHECK(memcmp(id, b, HL_CALL_ID_LEN) == 0);
	}
	}
	return 0;
}
