/* test_voice_wav.c — the WAV parser and writer (voice/wav.c) and the Ogg
 * Opus reader's refusals (voice/oggopus.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "util/err.h"
#include "util/fsutil.h"
#include "voice/oggopus.h"
#include "voice/wav.h"

/* A mono 8 kHz file of 3 samples, written by hand from the RIFF spec. */
static const uint8_t golden[] = {
	'R', 'I', 'F', 'F', 42, 0, 0, 0, 'W', 'A', 'V', 'E',
	'f', 'm', 't', ' ', 16, 0, 0, 0, 1, 0, 1, 0, 0x40, 0x1f, 0, 0,
	0x80, 0x3e, 0, 0, 2, 0, 16, 0,
	'd', 'a', 't', 'a', 6, 0, 0, 0, 1, 0, 0xff, 0xff, 0, 0x80,
};

static void test_golden(void **state)
{
	(void)state;
	struct hl_wav w;
	assert_int_equal(hl_wav_parse(golden, sizeof(golden), &w), 0);
	assert_int_equal(w.rate, 8000);
	assert_int_equal(w.channels, 1);
	assert_int_equal(w.frames, 3);
	assert_int_equal(hl_wav_mono(&w, 0), 1);
	assert_int_equal(hl_wav_mono(&w, 1), -1);
	assert_int_equal(hl_wav_mono(&w, 2), -32768);
	/* the writer's header is the golden one */
	uint8_t hdr[HL_WAV_HDR_LEN];
	hl_wav_header(hdr, 8000, 1, 3);
	assert_memory_equal(hdr, golden, HL_WAV_HDR_LEN);
}

static void test_refusals(void **state)
{
	(void)state;
	struct hl_wav w;
	uint8_t b[sizeof(golden)];
	/* cut anywhere in the header: refused, never read past the end */
	for (size_t n = 0; n < 44; n++)
		assert_true(hl_wav_parse(golden, n, &w) < 0);
	/* a data chunk longer than the file: taken up to the end */
	assert_int_equal(hl_wav_parse(golden, sizeof(golden) - 1, &w), 0);
	assert_int_equal(w.frames, 2);
	/* 8-bit, 3 channels, 4 kHz, float: unsupported */
	memcpy(b, golden, sizeof(b));
	b[34] = 8;
	assert_int_equal(hl_wav_parse(b, sizeof(b), &w), HL_EUNSUPP);
	memcpy(b, golden, sizeof(b));
	b[22] = 3;
	assert_int_equal(hl_wav_parse(b, sizeof(b), &w), HL_EUNSUPP);
	memcpy(b, golden, sizeof(b));
	b[24] = 0xa0, b[25] = 0x0f;
	assert_int_equal(hl_wav_parse(b, sizeof(b), &w), HL_EUNSUPP);
	memcpy(b, golden, sizeof(b));
	b[20] = 3;
	assert_int_equal(hl_wav_parse(b, sizeof(b), &w), HL_EUNSUPP);
	/* a fmt chunk that claims more than the file holds */
	memcpy(b, golden, sizeof(b));
	b[16] = 0xff, b[17] = 0xff;
	assert_int_equal(hl_wav_parse(b, sizeof(b), &w), HL_ETRUNC);
	/* data before fmt; not RIFF */
	memcpy(b, golden, sizeof(b));
	memcpy(b + 12, "data", 4);
	assert_int_equal(hl_wav_parse(b, sizeof(b), &w), HL_EINVAL);
	memcpy(b, golden, sizeof(b));
	b[0] = 'X';
	assert_int_equal(hl_wav_parse(b, sizeof(b), &w), HL_EINVAL);
}

static void test_many_chunks_capped(void **state)
{
	(void)state;
	/* RIFF WAVE then HL_WAV_CHUNKS_MAX + 1 empty "junk" chunks: refused
	 * after the cap, not walked for ever */
	size_t n = 12 + 8 * (HL_WAV_CHUNKS_MAX + 1);
	uint8_t *b = calloc(1, n);
	memcpy(b, "RIFF\0\0\0\0WAVE", 12);
	for (size_t i = 0; i <= HL_WAV_CHUNKS_MAX; i++)
		memcpy(b + 12 + 8 * i, "junk", 4);
	struct hl_wav w;
	assert_int_equal(hl_wav_parse(b, n, &w), HL_EINVAL);
	free(b);
}

static void test_writer_roundtrip(void **state)
{
	(void)state;
	char path[] = "/tmp/hl-wav-XXXXXX";
	int fd = mkstemp(path);
	close(fd);
	struct hl_wav_writer wr;
	assert_int_equal(hl_wav_create(&wr, path, 16000, 1, 0), -17 /* -EEXIST: never overwrites */);
	assert_int_equal(hl_wav_create(&wr, path, 16000, 1, 1), 0);
	int16_t pcm[320];
	for (int i = 0; i < 320; i++)
		pcm[i] = (int16_t)(i * 100 - 16000);
	assert_int_equal(hl_wav_write(&wr, pcm, 320), 0);
	assert_int_equal(hl_wav_write(&wr, pcm, 100), 0);
	assert_int_equal(hl_wav_close(&wr), 0);
	uint8_t *mem;
	struct hl_wav w;
	assert_int_equal(hl_wav_load(path, 1 << 20, &mem, &w), 0);
	assert_int_equal(w.rate, 16000);
	assert_int_equal(w.frames, 420);
	assert_int_equal(hl_wav_mono(&w, 319), pcm[319]);
	assert_int_equal(hl_wav_mono(&w, 320), pcm[0]);
	free(mem);
	unlink(path);
}

static void test_oggopus_refusals(void **state)
{
	(void)state;
	struct hl_oggopus_info info;
	uint8_t junk[200];
	memset(junk, 0x4f, sizeof(junk));
	assert_int_equal(hl_oggopus_info(junk, sizeof(junk), &info), HL_EINVAL);
	assert_int_equal(hl_oggopus_info(junk, 0, &info), HL_EINVAL);
	assert_int_equal(hl_oggopus_info(junk, (size_t)HL_OGGOPUS_MAX + 1, &info), HL_ETOOBIG);
	char d[32];
	hl_duration_str(42400, d, sizeof(d));
	assert_string_equal(d, "0:42");
	hl_duration_str(3723000, d, sizeof(d));
	assert_string_equal(d, "1:02:03");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_golden),
		cmocka_unit_test(test_refusals),
		cmocka_unit_test(test_many_chunks_capped),
		cmocka_unit_test(test_writer_roundtrip),
		cmocka_unit_test(test_oggopus_refusals),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
