/* fuzz_voice_media.c — media packets (voice/media.c) and the jitter buffer
 * (voice/jitter.c) driven by a script of operations: open raw bytes as a
 * packet, seal a frame after skipping counters and open it, replay the
 * last packet, and feed what opened into the jitter buffer at times the
 * input chooses, asking it what to play.
 *
 * Oracles: raw bytes never open (the fuzzer cannot forge a tag); a sealed
 * packet opens with its frame intact unless the window or the epoch limit
 * refuses it; a replay never opens; the jitter buffer's answers point
 * inside its slots and its counters stay consistent. */
#include <sodium.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util/err.h"
#include "voice/jitter.h"
#include "voice/media.h"

#define CHECK(x) do { if (!(x)) abort(); } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct hl_media_keys *tx, *rx;

static void setup(void)
{
	uint8_t id[HL_CALL_ID_LEN] = { 1 }, apk[32], ask[32], bpk[32], bsk[32];
	if (sodium_init() < 0)
		abort();
	memset(ask, 7, sizeof(ask));
	memset(bsk, 9, sizeof(bsk));
	crypto_scalarmult_base(apk, ask);
	crypto_scalarmult_base(bpk, bsk);
	CHECK(hl_media_keys_new(&tx, true, id, apk, ask, bpk, 1, 2) == 0);
	CHECK(hl_media_keys_new(&rx, false, id, bpk, bsk, apk, 2, 1) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* fresh keys, counters and window each run (the same keys: fixed
	 * secrets, so a crash reproduces) */
	hl_media_keys_free(tx);
	hl_media_keys_free(rx);
	tx = rx = NULL;
	setup();
	static struct hl_jb jb;
	hl_jb_init(&jb, 320);
	uint8_t last[HL_MEDIA_PACKET_LEN];
	bool have_last = false;
	int64_t now = 0;
	size_t i = 0;
	while (i < size) {
		uint8_t op = data[i++];
		struct hl_media_frame f, g;
		uint64_t c;
		switch (op % 5) {
		case 0: {   /* raw bytes as a packet */
			size_t n = i < size ? data[i++] : 0;
			if (n > size - i)
				n = size - i;
			CHECK(hl_media_open(rx, data + i, n, &g, &c) < 0);
			i += n;
			break;
		}
		case 1: {   /* seal after a skip, open */
			if (size - i < 2)
				return 0;
			uint64_t skip = (uint64_t)data[i] << (data[i + 1] % 16);
			uint8_t len = data[i + 1] % (HL_MEDIA_OPUS_MAX + 1);
			i += 2;
			if (tx->tx_counter + skip >= HL_MEDIA_COUNTER_MAX)
				break;
			tx->tx_counter += skip;
			memset(&f, 0, sizeof(f));
			f.len = len;
			memset(f.opus, 0xa5, len);
			if (hl_media_seal(tx, &f, last) < 0)
				break;
			have_last = true;
			int r = hl_media_open(rx, last, sizeof(last), &g, &c);
			CHECK(r == 0 || r == HL_EEXIST || r == HL_ETOOBIG);
			if (r == 0) {
				CHECK(g.len == len && (len == 0 || g.opus[len - 1] == 0xa5));
				int p = hl_jb_put(&jb, c, now, g.opus, g.len);
				CHECK(p == 0 || p == 1);
			}
			break;
		}
		case 2:     /* a replay never opens */
			if (have_last)
				CHECK(hl_media_open(rx, last, sizeof(last), &g, &c) < 0);
			break;
		case 3: {   /* time passes; play */
			now += i < size ? data[i++] : 20;
			const uint8_t *d;
			size_t n;
			enum hl_jb_action a = hl_jb_get(&jb, now, &d, &n);
			if (a == HL_JB_FRAME || a == HL_JB_FEC)
				CHECK(d && n <= HL_JB_FRAME_MAX);
			else
				CHECK(!d && n == 0);
			CHECK(jb.st.jitterBufferEmittedCount ==
			      jb.st.totalSamplesReceived);
			break;
		}
		default: {  /* a bit flipped in the last packet */
			if (!have_last || i >= size)
				break;
			uint8_t bad[HL_MEDIA_PACKET_LEN];
			memcpy(bad, last, sizeof(bad));
			bad[data[i] % sizeof(bad)] ^= (uint8_t)(1u << (data[i] % 8));
			i++;
			CHECK(hl_media_open(rx, bad, sizeof(bad), &g, &c) < 0);
		}
		}
	}
	return 0;
}
