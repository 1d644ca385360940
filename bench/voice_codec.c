/* bench/voice_codec.c — the call's codec path without a network: a WAV
 * (16 kHz mono) is encoded frame by frame (voice/codec.c), packets are
 * lost at random or in Gilbert–Elliott bursts (seeded), the rest go
 * through the jitter buffer on an ideal clock and are decoded with FEC and
 * concealment, and the result is written as a WAV.  `make bench` and the
 * tests compare the two with STOI (tests/integration/stoi.py) to see what
 * the codec settings can reach before any network is involved.
 *
 *   bench_voice_codec IN.wav OUT.wav [LOSS [BURST [BITRATE [SEED]]]]
 *
 * LOSS: the mean loss rate (0..1); BURST: the mean burst length in
 * packets (1: independent losses; more: Gilbert–Elliott with loss in the
 * bad state only). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "voice/codec.h"
#include "voice/jitter.h"
#include "voice/wav.h"

static uint64_t rng = 88172645463325252ull;

static double uniform(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (double)(rng >> 11) / 9007199254740992.0;
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: bench_voice_codec IN.wav OUT.wav [LOSS [BURST [BITRATE [SEED]]]]\n");
		return 2;
	}
	double loss = argc > 3 ? atof(argv[3]) : 0, burst = argc > 4 ? atof(argv[4]) : 1;
	int bitrate = argc > 5 ? atoi(argv[5]) : 0;
	if (argc > 6)
		rng ^= strtoull(argv[6], NULL, 10) * 0x9E3779B97F4A7C15ull;
	uint8_t *mem;
	struct hl_wav w;
	if (hl_wav_load(argv[1], 1u << 30, &mem, &w) < 0 || w.rate != HL_CODEC_RATE) {
		fprintf(stderr, "bench_voice_codec: %s: want a 16 kHz 16-bit WAV\n", argv[1]);
		return 1;
	}
	struct hl_codec *enc, *dec;
	if (hl_codec_new(&enc, bitrate, -1) < 0 || hl_codec_new(&dec, bitrate, -1) < 0)
		return 1;
	struct hl_wav_writer out;
	if (hl_wav_create(&out, argv[2], HL_CODEC_RATE, 1, 1) < 0)
		return 1;
	static struct hl_jb jb;
	hl_jb_init(&jb, HL_CODEC_FRAME);
	/* Gilbert–Elliott: P(good->bad) and P(bad->good) for the mean loss
	 * and mean burst length, every packet lost while bad. */
	double p_bg = 1.0 / burst, p_gb = loss * p_bg / (1.0 - loss);
	int bad = 0;
	size_t frames = w.frames / HL_CODEC_FRAME, lost = 0, bytes = 0;
	int16_t pcm[HL_CODEC_FRAME];
	uint8_t pkt[256];
	for (size_t i = 0; i < frames + 3; i++) {
		if (i < frames) {
			for (int k = 0; k < HL_CODEC_FRAME; k++)
				pcm[k] = hl_wav_mono(&w, i * HL_CODEC_FRAME + (size_t)k);
			int n = hl_codec_encode(enc, pcm, pkt, sizeof(pkt));
			bytes += (size_t)n;
			bad = burst <= 1 ? uniform() < loss : bad ? uniform() >= p_bg : uniform() < p_gb;
			if (bad)
				lost++;
			else
				hl_jb_put(&jb, i, (int64_t)i * 20 + 5, pkt, (size_t)n);
		}
		const uint8_t *d;
		size_t dl;
		enum hl_jb_action a = hl_jb_get(&jb, (int64_t)i * 20 + 10, &d, &dl);
		hl_codec_decode(dec, a, d, dl, pcm);
		hl_wav_write(&out, pcm, HL_CODEC_FRAME);
	}
	hl_wav_close(&out);
	printf("{\"frames\": %zu, \"lost\": %zu, \"bytes_per_frame\": %.1f, \"fec\": %llu, "
	       "\"concealed\": %llu}\n", frames, lost, frames ? (double)bytes / (double)frames : 0,
	       (unsigned long long)jb.st.fecPacketsReceived,
	       (unsigned long long)jb.st.concealedSamples / HL_CODEC_FRAME);
	hl_codec_free(enc);
	hl_codec_free(dec);
	free(mem);
	return 0;
}
