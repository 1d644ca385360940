/* test_wire.c — the frame reader/writer and the packet codecs (wire/). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "util/err.h"
#include "util/mem.h"
#include "wire/frame.h"
#include "wire/packet.h"

/* Splits STREAM into pieces of the sizes in CUTS (cycled) and collects
 * every frame the reader yields, concatenated, with their lengths. */
struct collected {
	uint8_t data[4 * 65537];
	size_t data_len;
	size_t lens[64];
	size_t nframes;
	int error;
};

static void feed_pieces(struct hl_frame_reader *r, const uint8_t *stream, size_t len,
			const size_t *cuts, size_t ncuts, struct collected *c)
{
	size_t pos = 0, ci = 0;
	c->error = 0;
	while (pos < len) {
		size_t piece = cuts[ci++ % ncuts];
		if (piece > len - pos)
			piece = len - pos;
		const uint8_t *p = stream + pos;
		size_t left = piece;
		while (left > 0) {
			size_t used = 0, flen = 0;
			const uint8_t *frame = NULL;
			int ret = hl_frame_read(r, p, left, &used, &frame, &flen);
			assert_true(used <= left);
			p += used;
			left -= used;
			if (ret < 0) {
				c->error = ret;
				return;
			}
			if (ret == 1) {
				memcpy(c->data + c->data_len, frame, flen);
				c->data_len += flen;
				c->lens[c->nframes++] = flen;
			} else {
				assert_int_equal(left, 0);
			}
		}
		pos += piece;
	}
}

static size_t put_frame(uint8_t *out, const uint8_t *msg, size_t len)
{
	size_t n = 0;
	assert_int_equal(hl_frame_write(msg, len, out, len + 2, &n), 0);
	assert_int_equal(n, len + 2);
	return n;
}

static void test_frame_roundtrip_any_split(void **state)
{
	(void)state;
	static uint8_t stream[3 * 65537 + 16];
	static struct collected c;
	struct hl_frame_reader *r = xmalloc(sizeof(*r));
	uint8_t *big = xmalloc(HL_FRAME_MAX);
	for (size_t i = 0; i < HL_FRAME_MAX; i++)
		big[i] = (uint8_t)(i * 7 + 3);
	const uint8_t one = 0x5a;
	size_t len = 0;
	len += put_frame(stream + len, &one, 1);
	len += put_frame(stream + len, big, HL_FRAME_MAX);
	len += put_frame(stream + len, big + 100, 300);
	len += put_frame(stream + len, big + 5, 2);

	const size_t splits[][3] = { { 1, 1, 1 }, { 2, 3, 5 }, { 7, 65536, 1 },
				     { sizeof(stream), 1, 1 }, { 65537, 2, 1 } };
	for (size_t s = 0; s < sizeof(splits) / sizeof(splits[0]); s++) {
		hl_frame_reader_init(r);
		memset(&c, 0, sizeof(c));
		feed_pieces(r, stream, len, splits[s], 3, &c);
		assert_int_equal(c.error, 0);
		assert_int_equal(c.nframes, 4);
		assert_int_equal(c.lens[0], 1);
		assert_int_equal(c.lens[1], HL_FRAME_MAX);
		assert_int_equal(c.lens[2], 300);
		assert_int_equal(c.lens[3], 2);
		assert_int_equal(c.data[0], 0x5a);
		assert_memory_equal(c.data + 1, big, HL_FRAME_MAX);
		assert_memory_equal(c.data + 1 + HL_FRAME_MAX, big + 100, 300);
		assert_memory_equal(c.data + 1 + HL_FRAME_MAX + 300, big + 5, 2);
		assert_true(hl_frame_reader_idle(r));
	}
	free(big);
	free(r);
}

static void test_frame_zero_length_is_fatal(void **state)
{
	(void)state;
	struct hl_frame_reader *r = xmalloc(sizeof(*r));
	const uint8_t good_then_zero[] = { 0x00, 0x01, 0xaa, 0x00, 0x00, 0x00, 0x01, 0xbb };
	size_t used = 0, flen = 0;
	const uint8_t *frame = NULL;

	hl_frame_reader_init(r);
	assert_int_equal(hl_frame_read(r, good_then_zero, sizeof(good_then_zero), &used, &frame,
				       &flen), 1);
	assert_int_equal(used, 3);
	assert_int_equal(flen, 1);
	assert_int_equal(frame[0], 0xaa);
	assert_int_equal(hl_frame_read(r, good_then_zero + 3, sizeof(good_then_zero) - 3, &used,
				       &frame, &flen), HL_EINVAL);
	assert_int_equal(used, 2);
	/* Dead for good: a valid frame after it is refused too. */
	assert_int_equal(hl_frame_read(r, good_then_zero + 5, 3, &used, &frame, &flen), HL_EINVAL);
	assert_int_equal(used, 0);
	assert_false(hl_frame_reader_idle(r));

	/* A zero header split across two feeds. */
	hl_frame_reader_init(r);
	assert_int_equal(hl_frame_read(r, good_then_zero + 3, 1, &used, &frame, &flen), 0);
	assert_false(hl_frame_reader_idle(r));
	assert_int_equal(hl_frame_read(r, good_then_zero + 4, 1, &used, &frame, &flen), HL_EINVAL);
	free(r);
}

static void test_frame_partial_is_not_a_frame(void **state)
{
	(void)state;
	struct hl_frame_reader *r = xmalloc(sizeof(*r));
	const uint8_t part[] = { 0x01, 0x00, 1, 2, 3 }; /* promises 256 bytes */
	size_t used = 0, flen = 0;
	const uint8_t *frame = NULL;
	hl_frame_reader_init(r);
	assert_int_equal(hl_frame_read(r, part, sizeof(part), &used, &frame, &flen), 0);
	assert_int_equal(used, sizeof(part));
	assert_false(hl_frame_reader_idle(r));
	assert_int_equal(hl_frame_read(r, part, 0, &used, &frame, &flen), 0);
	free(r);
}

static void test_frame_writer_limits(void **state)
{
	(void)state;
	uint8_t *buf = xmalloc(HL_FRAME_MAX + 3);
	uint8_t hdr[2];
	size_t n = 0;
	memset(buf, 0x11, HL_FRAME_MAX + 3);
	assert_int_equal(hl_frame_header(0, hdr), HL_EINVAL);
	assert_int_equal(hl_frame_header(HL_FRAME_MAX + 1, hdr), HL_ETOOBIG);
	assert_int_equal(hl_frame_header(HL_FRAME_MAX, hdr), 0);
	assert_int_equal(hdr[0], 0xff);
	assert_int_equal(hdr[1], 0xff);
	assert_int_equal(hl_frame_header(258, hdr), 0);
	assert_int_equal(hdr[0], 0x01);
	assert_int_equal(hdr[1], 0x02);
	assert_int_equal(hl_frame_write(buf, 0, buf, 10, &n), HL_EINVAL);
	assert_int_equal(hl_frame_write(buf, 9, buf, 10, &n), HL_ETOOBIG);
	assert_int_equal(hl_frame_write(buf, HL_FRAME_MAX + 1, buf, HL_FRAME_MAX + 3, &n),
			 HL_ETOOBIG);
	/* In place: the message already sits after the header's room. */
	memcpy(buf + 2, "abc", 3);
	assert_int_equal(hl_frame_write(buf + 2, 3, buf, 5, &n), 0);
	assert_memory_equal(buf, "\x00\x03" "abc", 5);
	free(buf);
}

static void test_packet_codec(void **state)
{
	(void)state;
	uint8_t *buf = xmalloc(HL_PACKET_MAX + 1);
	uint8_t *body = xcalloc(1, HL_PACKET_BODY_MAX + 1);
	struct hl_packet rec;
	size_t n = 0;

	assert_int_equal(hl_packet_encode(0x12, (const uint8_t *)"xyz", 3, buf, 16, &n), 0);
	assert_int_equal(n, 5);
	assert_memory_equal(buf, "\x01\x12xyz", 5);
	assert_int_equal(hl_packet_decode(buf, n, &rec), 0);
	assert_int_equal(rec.version, 1);
	assert_int_equal(rec.type, 0x12);
	assert_int_equal(rec.body_len, 3);
	assert_memory_equal(rec.body, "xyz", 3);

	/* Empty body, largest body, one byte too many. */
	assert_int_equal(hl_packet_encode(0x02, NULL, 0, buf, 2, &n), 0);
	assert_int_equal(hl_packet_decode(buf, n, &rec), 0);
	assert_int_equal(rec.body_len, 0);
	assert_int_equal(hl_packet_encode(0x10, body, HL_PACKET_BODY_MAX, buf, HL_PACKET_MAX, &n), 0);
	assert_int_equal(n, HL_PACKET_MAX);
	assert_int_equal(hl_packet_decode(buf, n, &rec), 0);
	assert_int_equal(hl_packet_encode(0x10, body, HL_PACKET_BODY_MAX + 1, buf,
					  HL_PACKET_MAX + 1, &n), HL_ETOOBIG);
	assert_int_equal(hl_packet_encode(0x10, body, 10, buf, 11, &n), HL_ETOOBIG);
	assert_int_equal(hl_packet_decode(buf, HL_PACKET_MAX + 1, &rec), HL_ETOOBIG);

	/* Short and wrong-version packets. */
	assert_int_equal(hl_packet_decode(buf, 1, &rec), HL_ETRUNC);
	assert_int_equal(hl_packet_decode(buf, 0, &rec), HL_ETRUNC);
	const uint8_t v2[] = { 2, 1, 0, 0 };
	assert_int_equal(hl_packet_decode(v2, sizeof(v2), &rec), HL_EUNSUPP);
	assert_int_equal(rec.version, 2);
	const uint8_t v0[] = { 0, 1 };
	assert_int_equal(hl_packet_decode(v0, sizeof(v0), &rec), HL_EUNSUPP);
	free(buf);
	free(body);
}

static void test_packet_classes(void **state)
{
	(void)state;
	assert_int_equal(hl_packet_classify(0x01), HL_PKTCLASS_SESSION);
	assert_int_equal(hl_packet_classify(0x04), HL_PKTCLASS_SESSION);
	assert_int_equal(hl_packet_classify(0x00), HL_PKTCLASS_IGNORE);
	assert_int_equal(hl_packet_classify(0x05), HL_PKTCLASS_IGNORE);
	assert_int_equal(hl_packet_classify(0x0f), HL_PKTCLASS_IGNORE);
	assert_int_equal(hl_packet_classify(0x10), HL_PKTCLASS_APP);
	assert_int_equal(hl_packet_classify(0x3f), HL_PKTCLASS_APP);
	assert_int_equal(hl_packet_classify(0x40), HL_PKTCLASS_IGNORE);
	assert_int_equal(hl_packet_classify(0x7f), HL_PKTCLASS_IGNORE);
	assert_int_equal(hl_packet_classify(0x80), HL_PKTCLASS_FATAL);
	assert_int_equal(hl_packet_classify(0xff), HL_PKTCLASS_FATAL);
}

static void test_hello(void **state)
{
	(void)state;
	struct hl_hello h = { 1, 1, 25000, HL_HELLO_FLAG_CREDIT }, got;
	uint8_t buf[16];
	hl_hello_encode(&h, buf);
	assert_memory_equal(buf, "\x01\x01\x00\x00\x61\xa8\x01", 7);
	assert_int_equal(hl_hello_decode(buf, 7, &got), 0);
	assert_int_equal(got.min_version, 1);
	assert_int_equal(got.max_version, 1);
	assert_int_equal(got.keepalive_ms, 25000);
	assert_int_equal(got.flags, HL_HELLO_FLAG_CREDIT);
	/* A station that predates the flags byte sends 6 bytes: flags 0. */
	assert_int_equal(hl_hello_decode(buf, 6, &got), 0);
	assert_int_equal(got.keepalive_ms, 25000);
	assert_int_equal(got.flags, 0);
	/* Trailing bytes are room for later fields. */
	memset(buf + 7, 0xee, 9);
	assert_int_equal(hl_hello_decode(buf, 16, &got), 0);
	assert_int_equal(got.keepalive_ms, 25000);
	assert_int_equal(got.flags, HL_HELLO_FLAG_CREDIT);
	assert_int_equal(hl_hello_decode(buf, 5, &got), HL_EINVAL);
	assert_int_equal(hl_hello_decode(buf, 0, &got), HL_EINVAL);
	/* A later station speaking 1..3 still talks to us. */
	const uint8_t range[] = { 1, 3, 0, 0, 0, 1 };
	assert_int_equal(hl_hello_decode(range, 6, &got), 0);
	const uint8_t only2[] = { 2, 3, 0, 0, 0, 1 };
	assert_int_equal(hl_hello_decode(only2, 6, &got), HL_EUNSUPP);
	const uint8_t inverted[] = { 2, 1, 0, 0, 0, 1 };
	assert_int_equal(hl_hello_decode(inverted, 6, &got), HL_EINVAL);
	const uint8_t zero[] = { 0, 0, 0, 0, 0, 1 };
	assert_int_equal(hl_hello_decode(zero, 6, &got), HL_EUNSUPP);
}

static void test_ping_close(void **state)
{
	(void)state;
	uint8_t v[HL_PING_LEN];
	const uint8_t nine[9] = { 1, 2, 3, 4, 5, 6, 7, 8, 9 };
	assert_int_equal(hl_ping_decode(nine, 8, v), 0);
	assert_memory_equal(v, nine, 8);
	assert_int_equal(hl_ping_decode(nine, 7, v), HL_EINVAL);
	assert_int_equal(hl_ping_decode(nine, 9, v), HL_EINVAL);

	uint8_t buf[1 + HL_CLOSE_TEXT_MAX + 8];
	size_t n = 0;
	struct hl_close c;
	assert_int_equal(hl_close_encode(HL_CLOSE_REMOVED, "bye", buf, sizeof(buf), &n), 0);
	assert_int_equal(n, 4);
	assert_int_equal(hl_close_decode(buf, n, &c), 0);
	assert_int_equal(c.reason, 3);
	assert_int_equal(c.text_len, 3);
	assert_memory_equal(c.text, "bye", 3);
	assert_int_equal(hl_close_encode(HL_CLOSE_SHUTDOWN, NULL, buf, sizeof(buf), &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(hl_close_decode(buf, n, &c), 0);
	assert_int_equal(c.text_len, 0);
	assert_int_equal(hl_close_decode(buf, 0, &c), HL_EINVAL);
	assert_int_equal(hl_close_decode(buf, 1 + HL_CLOSE_TEXT_MAX + 1, &c), HL_EINVAL);
	assert_int_equal(hl_close_decode(buf, 1 + HL_CLOSE_TEXT_MAX, &c), 0);

	/* Long text is cut at 200 bytes without splitting a UTF-8 sequence:
	 * 199 ASCII bytes then "é" (2 bytes) must drop the whole "é". */
	char text[260];
	memset(text, 'a', 199);
	memcpy(text + 199, "\xc3\xa9zz", 5);
	assert_int_equal(hl_close_encode(HL_CLOSE_PROTOCOL, text, buf, sizeof(buf), &n), 0);
	assert_int_equal(n, 1 + 199);
	assert_int_equal(hl_close_decode(buf, n, &c), 0);
	memset(text, 'b', 250);
	text[250] = 0;
	assert_int_equal(hl_close_encode(HL_CLOSE_PROTOCOL, text, buf, sizeof(buf), &n), 0);
	assert_int_equal(n, 1 + HL_CLOSE_TEXT_MAX);
	assert_int_equal(hl_close_encode(HL_CLOSE_PROTOCOL, "abc", buf, 3, &n), HL_ETOOBIG);

	assert_string_equal(hl_close_reason_str(2), "replaced by a newer session");
	assert_string_equal(hl_close_reason_str(200), "unknown reason");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_frame_roundtrip_any_split),
		cmocka_unit_test(test_frame_zero_length_is_fatal),
		cmocka_unit_test(test_frame_partial_is_not_a_frame),
		cmocka_unit_test(test_frame_writer_limits),
		cmocka_unit_test(test_packet_codec),
		cmocka_unit_test(test_packet_classes),
		cmocka_unit_test(test_hello),
		cmocka_unit_test(test_ping_close),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
