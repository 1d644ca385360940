/* fuzz_text.c — libFuzzer target for hl_sanitize (util/text.c), the one
 * door peer text goes through to people.
 *
 * Oracles: the output is valid UTF-8 within 3 bytes per input byte, and
 * holds no control character (but newline and tab when asked), no ESC, and
 * no character hl_text_hidden() names (bidirectional controls, zero-width
 * and other format characters). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util/text.h"

#define CHECK(x) do { if (!(x)) abort(); } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The code point at P (valid UTF-8, as CHECKed before). */
static size_t next_cp(const uint8_t *p, uint32_t *cp)
{
	if (p[0] < 0x80) {
		*cp = p[0];
		return 1;
	}
	size_t n = p[0] >= 0xf0 ? 4 : p[0] >= 0xe0 ? 3 : 2;
	uint32_t v = p[0] & (0x7f >> n);
	for (size_t i = 1; i < n; i++)
		v = (v << 6) | (p[i] & 0x3f);
	*cp = v;
	return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 4096)
		return 0;
	char *out = malloc(size * 3 + 1);
	for (int keep = 0; keep <= 1; keep++) {
		size_t n = hl_sanitize((const char *)data, size, out, size * 3 + 1, keep);
		CHECK(n <= size * 3 && out[n] == '\0' && strlen(out) == n);
		CHECK(hl_utf8_text_valid((const uint8_t *)out, n));
		for (size_t i = 0; i < n;) {
			uint32_t cp;
			i += next_cp((const uint8_t *)out + i, &cp);
			CHECK(!hl_text_hidden(cp));
			CHECK(cp >= 0x20 || (keep && (cp == '\n' || cp == '\t')));
			CHECK(cp != 0x7f && !(cp >= 0x80 && cp < 0xa0));
		}
	}
	free(out);
	return 0;
}
