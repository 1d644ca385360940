/* fuzz_frame.c — the incremental frame reader on arbitrary byte streams fed
 * in pieces of arbitrary sizes.
 *
 * Input: 4 bytes seed the piece sizes, the rest is the stream.  Oracle: the
 * frames (and the error, if any) must be exactly those that reading the
 * whole stream in one piece gives, and those must match a direct walk of
 * the length prefixes. */
#include <stdlib.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util/err.h"
#include "wire/frame.h"

/* The fuzz build defines NDEBUG; oracles must hold there too. */
#define CHECK(x) do { if (!(x)) abort(); } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct result {
	uint8_t *bytes;      /* frames' contents, concatenated */
	size_t nbytes;
	size_t nframes;
	int error;
};

static void run(struct hl_frame_reader *r, const uint8_t *s, size_t len, uint32_t seed,
		struct result *out)
{
	size_t pos = 0;
	hl_frame_reader_init(r);
	while (pos < len && !out->error) {
		size_t piece = len - pos;
		if (seed) {
			/* xorshift32: piece sizes from 1 to 512, now and then large. */
			seed ^= seed << 13;
			seed ^= seed >> 17;
			seed ^= seed << 5;
			piece = (seed & 7) == 0 ? 70000 : 1 + (seed >> 8) % 512;
			if (piece > len - pos)
				piece = len - pos;
		}
		const uint8_t *p = s + pos;
		size_t left = piece;
		for (;;) {
			size_t used = 0, flen = 0;
			const uint8_t *frame = NULL;
			int ret = hl_frame_read(r, p, left, &used, &frame, &flen);
			CHECK(used <= left);
			p += used;
			left -= used;
			if (ret < 0) {
				CHECK(ret == HL_EINVAL);
				out->error = ret;
				break;
			}
			if (ret == 0) {
				CHECK(left == 0);
				break;
			}
			CHECK(flen >= 1 && flen <= HL_FRAME_MAX);
			memcpy(out->bytes + out->nbytes, frame, flen);
			out->nbytes += flen;
			out->nframes++;
		}
		pos += piece;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct hl_frame_reader reader;
	if (size < 4)
		return 0;
	uint32_t seed = (uint32_t)data[0] << 24 | (uint32_t)data[1] << 16 |
			(uint32_t)data[2] << 8 | data[3];
	const uint8_t *s = data + 4;
	size_t len = size - 4;
	struct result whole = { malloc(len + 1), 0, 0, 0 };
	struct result pieces = { malloc(len + 1), 0, 0, 0 };

	run(&reader, s, len, 0, &whole);
	run(&reader, s, len, seed | 1, &pieces);
	CHECK(whole.error == pieces.error);
	CHECK(whole.nframes == pieces.nframes);
	CHECK(whole.nbytes == pieces.nbytes);
	CHECK(memcmp(whole.bytes, pieces.bytes, whole.nbytes) == 0);

	/* A direct walk of the length prefixes agrees. */
	size_t pos = 0, nframes = 0, nbytes = 0;
	int error = 0;
	while (len - pos >= 2) {
		size_t flen = (size_t)s[pos] << 8 | s[pos + 1];
		if (flen == 0) {
			error = HL_EINVAL;
			break;
		}
		if (len - pos - 2 < flen)
			break;
		CHECK(memcmp(whole.bytes + nbytes, s + pos + 2, flen) == 0);
		nbytes += flen;
		nframes++;
		pos += 2 + flen;
	}
	CHECK(error == whole.error);
	CHECK(nframes == whole.nframes);
	CHECK(nbytes == whole.nbytes);
	free(whole.bytes);
	free(pieces.bytes);
	return 0;
}
