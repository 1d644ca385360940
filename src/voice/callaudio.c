/* voice/callaudio.c — decoding call audio; see callaudio.h. */
#include <string.h>

#include "util/err.h"
#include "voice/callaudio.h"
#include "voice/codec.h"

int hl_callaudio_decode(const uint8_t *buf, size_t len, hl_pcm_sink sink, void *arg)
{
	if (len > HL_CALLAUDIO_MAX)
		return HL_ETOOBIG;
	struct hl_codec *c;
	int ret = hl_codec_new(&c, 0, -1);
	if (ret < 0)
		return ret;
	int16_t pcm[HL_CODEC_FRAME];
	size_t off = 0;
	while (off < len && ret == 0) {
		size_t n = buf[off];
		if (len - off - 1 < n) {
			ret = HL_ETRUNC;
			break;
		}
		hl_codec_decode(c, n ? HL_JB_FRAME : HL_JB_CONCEAL, buf + off + 1, n, pcm);
		off += 1 + n;
		ret = sink(arg, pcm, HL_CODEC_FRAME);
	}
	hl_codec_free(c);
	return ret;
}

int hl_callaudio_name(const char *name)
{
	size_t n = strlen(name);
	return n > 9 && memcmp(name, "call-", 5) == 0 && strcmp(name + n - 4, ".hla") == 0;
}
