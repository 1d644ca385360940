/* voice/oggopus.c — Ogg Opus reading through libopusfile; see oggopus.h. */
#include <opusfile.h>
#include <stdio.h>

#include "util/err.h"
#include "voice/oggopus.h"

#define CHUNK 5760   /* 120 ms at 48 kHz: libopusfile's largest packet */

static OggOpusFile *open_mem(const uint8_t *buf, size_t len, int *ret)
{
	*ret = 0;
	if (len > HL_OGGOPUS_MAX) {
		*ret = HL_ETOOBIG;
		return NULL;
	}
	int err = 0;
	OggOpusFile *of = op_open_memory(buf, len, &err);
	if (!of)
		*ret = HL_EINVAL;
	return of;
}

int hl_oggopus_info(const uint8_t *buf, size_t len, struct hl_oggopus_info *info)
{
	int ret;
	OggOpusFile *of = open_mem(buf, len, &ret);
	if (!of)
		return ret;
	ogg_int64_t total = op_pcm_total(of, -1);
	info->channels = op_channel_count(of, -1);
	if (total < 0) {
		ret = HL_EINVAL;
	} else if (total > (ogg_int64_t)HL_OGGOPUS_SECONDS_MAX * HL_OGGOPUS_RATE) {
		ret = HL_ETOOBIG;
	} else {
		info->duration_ms = (uint64_t)total * 1000 / HL_OGGOPUS_RATE;
	}
	op_free(of);
	return ret;
}

int hl_oggopus_decode(const uint8_t *buf, size_t len, hl_pcm_sink sink, void *arg)
{
	int ret;
	OggOpusFile *of = open_mem(buf, len, &ret);
	if (!of)
		return ret;
	opus_int16 st[2 * CHUNK];
	int16_t mono[CHUNK];
	uint64_t done = 0;
	for (;;) {
		int n = op_read_stereo(of, st, 2 * CHUNK);
		if (n == OP_HOLE)
			continue;   /* a lost page: go on after it */
		if (n <= 0)
			break;      /* the end, or damage we cannot pass */
		for (int i = 0; i < n; i++)
			mono[i] = (int16_t)(((int32_t)st[2 * i] + st[2 * i + 1]) / 2);
		done += (uint64_t)n;
		if (done > (uint64_t)HL_OGGOPUS_SECONDS_MAX * HL_OGGOPUS_RATE) {
			ret = HL_ETOOBIG;
			break;
		}
		ret = sink(arg, mono, (size_t)n);
		if (ret != 0)
			break;
	}
	op_free(of);
	return ret;
}

void hl_duration_str(uint64_t ms, char *out, size_t cap)
{
	uint64_t s = (ms + 500) / 1000;
	if (s >= 3600)
		snprintf(out, cap, "%llu:%02u:%02u", (unsigned long long)(s / 3600),
			 (unsigned)(s / 60 % 60), (unsigned)(s % 60));
	else
		snprintf(out, cap, "%u:%02u", (unsigned)(s / 60), (unsigned)(s % 60));
}
