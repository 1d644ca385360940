/* voice/wav.c — RIFF WAVE (16-bit PCM) parsing and writing; see wav.h.
 * WAV is little-endian throughout, unlike hotline's own formats, so this
 * file has its own two readers rather than util/bytes.h's. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/err.h"
#include "util/fsutil.h"
#include "voice/wav.h"

#define FMT_PCM 1
#define FMT_EXTENSIBLE 0xFFFE

static uint16_t le16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static void put32(uint8_t *p, uint32_t v)
{
	put16(p, (uint16_t)v);
	put16(p + 2, (uint16_t)(v >> 16));
}

/* The "fmt " chunk body C (N bytes). */
static int parse_fmt(const uint8_t *c, size_t n, struct hl_wav *w)
{
	if (n < 16)
		return HL_EINVAL;
	uint16_t tag = le16(c);
	uint16_t bits = le16(c + 14);
	w->channels = le16(c + 2);
	w->rate = le32(c + 4);
	if (tag == FMT_EXTENSIBLE) {
		/* cbSize, valid bits, channel mask, then the sub-format GUID
		 * whose first two bytes are the format tag. */
		if (n < 40)
			return HL_EINVAL;
		tag = le16(c + 24);
	}
	if (tag != FMT_PCM || bits != 16)
		return HL_EUNSUPP;
	if (w->channels < 1 || w->channels > 2)
		return HL_EUNSUPP;
	if (w->rate < HL_WAV_RATE_MIN || w->rate > HL_WAV_RATE_MAX)
		return HL_EUNSUPP;
	if (le16(c + 12) != 2 * w->channels)   /* block align */
		return HL_EINVAL;
	return 0;
}

int hl_wav_parse(const uint8_t *buf, size_t len, struct hl_wav *w)
{
	memset(w, 0, sizeof(*w));
	if (len < 12)
		return HL_ETRUNC;
	if (memcmp(buf, "RIFF", 4) != 0 || memcmp(buf + 8, "WAVE", 4) != 0)
		return HL_EINVAL;
	size_t off = 12;
	int have_fmt = 0;
	for (int i = 0; i < HL_WAV_CHUNKS_MAX; i++) {
		if (len - off < 8)
			return HL_ETRUNC;
		const uint8_t *c = buf + off;
		uint32_t csize = le32(c + 4);
		off += 8;
		size_t avail = len - off;
		if (memcmp(c, "data", 4) == 0) {
			if (!have_fmt)
				return HL_EINVAL;
			size_t n = csize < avail ? csize : avail;
			w->data = buf + off;
			w->frames = n / (2u * w->channels);
			return 0;
		}
		if (csize > avail)
			return HL_ETRUNC;
		if (memcmp(c, "fmt ", 4) == 0) {
			int ret = parse_fmt(buf + off, csize, w);
			if (ret < 0)
				return ret;
			have_fmt = 1;
		}
		/* Chunks are padded to an even size. */
		size_t step = (size_t)csize + (csize & 1);
		if (step > avail)
			return HL_ETRUNC;
		off += step;
	}
	return HL_EINVAL;
}

void hl_wav_header(uint8_t out[static HL_WAV_HDR_LEN], uint32_t rate, uint16_t channels,
		   uint32_t frames)
{
	uint32_t bytes = frames * 2u * channels;
	memcpy(out, "RIFF", 4);
	put32(out + 4, 36 + bytes);
	memcpy(out + 8, "WAVEfmt ", 8);
	put32(out + 16, 16);
	put16(out + 20, FMT_PCM);
	put16(out + 22, channels);
	put32(out + 24, rate);
	put32(out + 28, rate * 2u * channels);
	put16(out + 32, (uint16_t)(2 * channels));
	put16(out + 34, 16);
	memcpy(out + 36, "data", 4);
	put32(out + 40, bytes);
}

static int write_all(int fd, const void *p, size_t n)
{
	const uint8_t *b = p;
	while (n > 0) {
		ssize_t k = write(fd, b, n);
		if (k < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		b += k;
		n -= (size_t)k;
	}
	return 0;
}

int hl_wav_create(struct hl_wav_writer *w, const char *path, uint32_t rate, uint16_t channels,
		  int overwrite)
{
	memset(w, 0, sizeof(*w));
	w->rate = rate;
	w->channels = channels;
	if (strcmp(path, "-") == 0) {
		w->fd = STDOUT_FILENO;
	} else {
		int flags = O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW |
			    (overwrite ? O_TRUNC : O_EXCL);
		w->fd = open(path, flags, 0644);
		if (w->fd < 0)
			return -errno;
	}
	/* The sizes say "as long as possible" until close fixes them. */
	uint8_t hdr[HL_WAV_HDR_LEN];
	hl_wav_header(hdr, rate, channels, 0);
	put32(hdr + 4, 0xFFFFFFFFu);
	put32(hdr + 40, 0xFFFFFFFFu);
	int ret = write_all(w->fd, hdr, sizeof(hdr));
	if (ret < 0 && w->fd != STDOUT_FILENO) {
		close(w->fd);
		w->fd = -1;
	}
	return ret;
}

int hl_wav_write(struct hl_wav_writer *w, const int16_t *pcm, size_t frames)
{
	/* s16 samples in host order; every supported host is little-endian. */
	int ret = write_all(w->fd, pcm, frames * 2u * w->channels);
	if (ret == 0)
		w->frames += frames;
	return ret;
}

int hl_wav_close(struct hl_wav_writer *w)
{
	int ret = 0;
	if (w->fd < 0)
		return 0;
	if (w->fd != STDOUT_FILENO) {
		uint64_t max = (0xFFFFFFFFu - 36u) / (2u * w->channels);
		uint8_t hdr[HL_WAV_HDR_LEN];
		hl_wav_header(hdr, w->rate, w->channels,
			      (uint32_t)(w->frames < max ? w->frames : max));
		if (pwrite(w->fd, hdr, sizeof(hdr), 0) != (ssize_t)sizeof(hdr))
			ret = -errno;
		if (ret == 0 && fsync(w->fd) < 0)
			ret = -errno;
		if (close(w->fd) < 0 && ret == 0)
			ret = -errno;
	}
	w->fd = -1;
	return ret;
}

int hl_wav_load(const char *path, size_t max, uint8_t **mem, struct hl_wav *w)
{
	char *buf = NULL;
	size_t len = 0;
	*mem = NULL;
	int ret = hl_read_file(path, max, &buf, &len);
	if (ret < 0)
		return ret;
	ret = hl_wav_parse((const uint8_t *)buf, len, w);
	if (ret < 0) {
		free(buf);
		return ret;
	}
	*mem = (uint8_t *)buf;
	return 0;
}

int16_t hl_wav_mono(const struct hl_wav *w, size_t i)
{
	const uint8_t *p = w->data + i * 2u * w->channels;
	if (w->channels == 1)
		return (int16_t)le16(p);
	return (int16_t)(((int32_t)(int16_t)le16(p) + (int16_t)le16(p + 2)) / 2);
}
