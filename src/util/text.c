/* util/text.c — base64/hex wrappers over libsodium and the text sanitizer. */
#include "util/text.h"

#include <sodium.h>
#include <string.h>

#include "util/err.h"

void hl_b64_key(const uint8_t key[static 32], char out[static HL_KEY_B64_LEN])
{
	sodium_bin2base64(out, HL_KEY_B64_LEN, key, 32, sodium_base64_VARIANT_ORIGINAL);
}

int hl_b64_key_parse(const char *s, size_t len, uint8_t key[static 32])
{
	size_t bin_len = 0;
	const char *end = NULL;
	if (len != HL_KEY_B64_LEN - 1)
		return HL_EINVAL;
	if (sodium_base642bin(key, 32, s, len, NULL, &bin_len, &end,
			      sodium_base64_VARIANT_ORIGINAL) != 0 ||
	    bin_len != 32 || end != s + len) {
		sodium_memzero(key, 32);
		return HL_EINVAL;
	}
	/* Canonical: re-encoding gives back the same text (rejects stray low
	 * bits in the last character). */
	char again[HL_KEY_B64_LEN];
	hl_b64_key(key, again);
	int same = memcmp(again, s, len) == 0;
	/* the text may be a private key's */
	sodium_memzero(again, sizeof(again));
	if (!same) {
		sodium_memzero(key, 32);
		return HL_EINVAL;
	}
	return 0;
}

void hl_hex(const uint8_t *bin, size_t n, char *out)
{
	sodium_bin2hex(out, 2 * n + 1, bin, n);
}

/* Length of a valid UTF-8 sequence at P (at most LEFT bytes), 0 if invalid. */
static size_t utf8_len(const unsigned char *p, size_t left, uint32_t *cp)
{
	unsigned char c = p[0];
	size_t n;
	uint32_t v, min;
	if (c < 0x80) {
		*cp = c;
		return 1;
	} else if ((c & 0xe0) == 0xc0) {
		n = 2; v = c & 0x1f; min = 0x80;
	} else if ((c & 0xf0) == 0xe0) {
		n = 3; v = c & 0x0f; min = 0x800;
	} else if ((c & 0xf8) == 0xf0) {
		n = 4; v = c & 0x07; min = 0x10000;
	} else {
		return 0;
	}
	if (left < n)
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		v = (v << 6) | (p[i] & 0x3f);
	}
	if (v < min || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
		return 0;
	*cp = v;
	return n;
}

int hl_utf8_text_valid(const uint8_t *p, size_t len)
{
	uint32_t cp;
	for (size_t i = 0; i < len;) {
		size_t n = utf8_len(p + i, len - i, &cp);
		if (n == 0 || cp == 0)
			return 0;
		i += n;
	}
	return 1;
}

/* Characters that change how text around them is shown, or show as
 * nothing: Unicode's format characters (category Cf: bidirectional
 * embeddings, overrides, isolates and marks, zero-width spaces and
 * joiners, the BOM, tags, ...; Unicode 15), the line and paragraph
 * separators (Zl, Zp), and the invisible fillers and joiner that are
 * letters or marks by category. */
static const uint32_t hidden[][2] = {
	{ 0x00ad, 0x00ad }, { 0x034f, 0x034f }, { 0x0600, 0x0605 }, { 0x061c, 0x061c },
	{ 0x06dd, 0x06dd }, { 0x070f, 0x070f }, { 0x0890, 0x0891 }, { 0x08e2, 0x08e2 },
	{ 0x115f, 0x1160 }, { 0x180e, 0x180e }, { 0x200b, 0x200f }, { 0x2028, 0x202e },
	{ 0x2060, 0x2064 }, { 0x2066, 0x206f }, { 0x3164, 0x3164 }, { 0xfeff, 0xfeff },
	{ 0xffa0, 0xffa0 }, { 0xfff9, 0xfffb }, { 0x110bd, 0x110bd }, { 0x110cd, 0x110cd },
	{ 0x13430, 0x1343f }, { 0x1bca0, 0x1bca3 }, { 0x1d173, 0x1d17a }, { 0xe0001, 0xe0001 },
	{ 0xe0020, 0xe007f },
};

int hl_text_hidden(uint32_t cp)
{
	if (cp < 0xad)
		return 0;
	for (size_t i = 0; i < sizeof(hidden) / sizeof(hidden[0]); i++)
		if (cp >= hidden[i][0] && cp <= hidden[i][1])
			return 1;
	return 0;
}

size_t hl_sanitize(const char *in, size_t len, char *out, size_t cap, int keep_newlines)
{
	const unsigned char *p = (const unsigned char *)in;
	size_t i = 0, o = 0;
	if (cap == 0)
		return 0;
	while (i < len) {
		uint32_t cp;
		size_t n = utf8_len(p + i, len - i, &cp);
		if (n == 0) {
			/* U+FFFD for one invalid byte */
			if (o + 3 >= cap)
				break;
			memcpy(out + o, "\xef\xbf\xbd", 3);
			o += 3;
			i++;
			continue;
		}
		if (cp == 0x1b) {
			/* ESC: skip a CSI/OSC/other sequence wholesale. */
			i++;
			if (i < len && p[i] == '[') {
				i++;
				while (i < len && !(p[i] >= 0x40 && p[i] <= 0x7e))
					i++;
				if (i < len)
					i++;
			} else if (i < len && p[i] == ']') {
				i++;
				while (i < len && p[i] != 0x07 &&
				       !(p[i] == 0x1b && i + 1 < len && p[i + 1] == '\\'))
					i++;
				if (i < len)
					i += (p[i] == 0x07) ? 1 : 2;
			} else if (i < len) {
				i++;
			}
			continue;
		}
		int keep = !(cp < 0x20 || cp == 0x7f || (cp >= 0x80 && cp < 0xa0));
		if (keep_newlines && (cp == '\n' || cp == '\t'))
			keep = 1;
		if (hl_text_hidden(cp)) {
			/* Shown, as U+FFFD: dropping it could join what it
			 * separated into something else.  Never longer than
			 * the 2 to 4 bytes it replaces by more than half. */
			if (o + 3 >= cap)
				break;
			memcpy(out + o, "\xef\xbf\xbd", 3);
			o += 3;
			i += n;
			continue;
		}
		if (keep) {
			if (o + n >= cap)
				break;
			memcpy(out + o, p + i, n);
			o += n;
		}
		i += n;
	}
	out[o] = '\0';
	return o;
}
