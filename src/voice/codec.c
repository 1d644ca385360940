/* voice/codec.c — the call's Opus encoder and decoder; see codec.h. */
#include <opus.h>
#include <stdlib.h>
#include <string.h>

#include "util/err.h"
#include "voice/codec.h"

struct hl_codec {
	OpusEncoder *enc;
	OpusDecoder *dec;
};

int hl_codec_new(struct hl_codec **out, int bitrate, int loss_perc)
{
	int err = 0;
	struct hl_codec *c = calloc(1, sizeof(*c));
	*out = NULL;
	if (!c)
		return -12;
	c->enc = opus_encoder_create(HL_CODEC_RATE, 1, OPUS_APPLICATION_VOIP, &err);
	if (c->enc)
		c->dec = opus_decoder_create(HL_CODEC_RATE, 1, &err);
	if (!c->enc || !c->dec) {
		hl_codec_free(c);
		return HL_EINVAL;
	}
	opus_encoder_ctl(c->enc, OPUS_SET_BITRATE(bitrate > 0 ? bitrate : HL_CODEC_BITRATE));
	opus_encoder_ctl(c->enc, OPUS_SET_VBR(0));
	opus_encoder_ctl(c->enc, OPUS_SET_SIGNAL(OPUS_SIGNAL_VOICE));
	opus_encoder_ctl(c->enc, OPUS_SET_INBAND_FEC(1));
	opus_encoder_ctl(c->enc, OPUS_SET_PACKET_LOSS_PERC(loss_perc >= 0 ? loss_perc
									  : HL_CODEC_LOSS_PERC));
	opus_encoder_ctl(c->enc, OPUS_SET_DTX(0));      /* silence is sent as sound */
	opus_encoder_ctl(c->enc, OPUS_SET_COMPLEXITY(HL_CODEC_COMPLEXITY));
	*out = c;
	return 0;
}

void hl_codec_free(struct hl_codec *c)
{
	if (!c)
		return;
	if (c->enc)
		opus_encoder_destroy(c->enc);
	if (c->dec)
		opus_decoder_destroy(c->dec);
	free(c);
}

int hl_codec_encode(struct hl_codec *c, const int16_t pcm[static HL_CODEC_FRAME],
		    uint8_t *out, size_t cap)
{
	opus_int32 n = opus_encode(c->enc, pcm, HL_CODEC_FRAME, out, (opus_int32)cap);
	return n < 0 ? HL_EINVAL : (int)n;
}

void hl_codec_decode(struct hl_codec *c, enum hl_jb_action a, const uint8_t *data, size_t len,
		     int16_t pcm[static HL_CODEC_FRAME])
{
	int n = -1;
	switch (a) {
	case HL_JB_WAIT:
		memset(pcm, 0, HL_CODEC_FRAME * sizeof(pcm[0]));
		return;
	case HL_JB_FRAME:
		n = opus_decode(c->dec, data, (opus_int32)len, pcm, HL_CODEC_FRAME, 0);
		break;
	case HL_JB_FEC:
		n = opus_decode(c->dec, data, (opus_int32)len, pcm, HL_CODEC_FRAME, 1);
		break;
	case HL_JB_CONCEAL:
		break;
	}
	if (n != HL_CODEC_FRAME)
		n = opus_decode(c->dec, NULL, 0, pcm, HL_CODEC_FRAME, 0);
	if (n != HL_CODEC_FRAME)
		memset(pcm, 0, HL_CODEC_FRAME * sizeof(pcm[0]));
}
