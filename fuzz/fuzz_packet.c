/* fuzz_packet.c — the packet header decoder and the session packet body
 * decoders (HELLO, PING/PONG, CLOSE) on arbitrary plaintexts.
 *
 * Oracles: whatever decodes re-encodes to the same bytes (for HELLO, the
 * first six), and decoded lengths stay inside the input and under the caps. */
#include <stdlib.h>
#include <stdint.h>
#include <string.h>

#include "util/err.h"
#include "util/text.h"
#include "wire/packet.h"

/* The fuzz build defines NDEBUG; oracles must hold there too. */
#define CHECK(x) do { if (!(x)) abort(); } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t again[HL_PACKET_MAX];
	struct hl_packet rec;
	size_t n = 0;

	int ret = hl_packet_decode(data, size, &rec);
	if (ret < 0) {
		CHECK(ret == HL_ETRUNC || ret == HL_ETOOBIG || ret == HL_EUNSUPP);
		return 0;
	}
	CHECK(rec.version == HL_WIRE_VERSION);
	CHECK(rec.body == data + 2 && rec.body_len == size - 2);
	CHECK(rec.body_len <= HL_PACKET_BODY_MAX);
	CHECK(hl_packet_encode(rec.type, rec.body, rec.body_len, again, sizeof(again), &n) == 0);
	CHECK(n == size && memcmp(again, data, size) == 0);
	(void)hl_packet_classify(rec.type);

	/* Every body decoder on every body, whatever the type says. */
	struct hl_hello h;
	if (hl_hello_decode(rec.body, rec.body_len, &h) == 0) {
		uint8_t enc[HL_HELLO_LEN];
		hl_hello_encode(&h, enc);
		/* A 6-byte HELLO (no flags byte) reads as flags 0. */
		size_t cmp = rec.body_len < HL_HELLO_LEN ? rec.body_len : HL_HELLO_LEN;
		CHECK(memcmp(enc, rec.body, cmp) == 0);
		CHECK(cmp == HL_HELLO_LEN || h.flags == 0);
		CHECK(h.min_version <= HL_WIRE_VERSION && h.max_version >= HL_WIRE_VERSION);
	}
	uint8_t value[HL_PING_LEN];
	if (hl_ping_decode(rec.body, rec.body_len, value) == 0)
		CHECK(rec.body_len == HL_PING_LEN && memcmp(value, rec.body, HL_PING_LEN) == 0);
	struct hl_close c;
	if (hl_close_decode(rec.body, rec.body_len, &c) == 0) {
		CHECK(c.text_len <= HL_CLOSE_TEXT_MAX && c.text == rec.body + 1);
		char text[HL_CLOSE_TEXT_MAX * 3 + 1];
		size_t tl = hl_sanitize((const char *)c.text, c.text_len, text, sizeof(text), 0);
		CHECK(tl < sizeof(text) && text[tl] == 0);
		(void)hl_close_reason_str(c.reason);
	}
	return 0;
}
