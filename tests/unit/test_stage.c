/* test_stage.c — staging (deliver/stage.c, wire/msgproto.c): the STAGE
 * and STAGED packets encode and decode (and refuse what is malformed); a
 * file being written is staged in whole MiBs and never to its last byte;
 * the counterpart's staging file, taken, holds exactly the bytes sent and
 * a hash state that continues them; every staged part is answered. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <sodium.h>

#include "wire/msgproto.h"
#include "deliver/stage.h"
#include "msg/item.h"
#include "util/dio.h"
#include "util/err.h"
#include "util/fsutil.h"
#include "util/mem.h"
#include "wire/packet.h"

static void test_stage_packet(void **state)
{
	(void)state;
	uint8_t id[16], buf[HL_STAGE_HDR_LEN + 3];
	for (int i = 0; i < 16; i++)
		id[i] = (uint8_t)(i * 7);
	hl_pkt_stage_header(id, 5, 0x0102030405060708ull, buf);
	memcpy(buf + HL_STAGE_HDR_LEN, "abc", 3);
	struct hl_pkt_stage r;
	assert_int_equal(hl_pkt_stage_decode(buf, sizeof(buf), &r), 0);
	assert_memory_equal(r.id, id, 16);
	assert_int_equal(r.part, 5);
	assert_true(r.offset == 0x0102030405060708ull);
	assert_int_equal(r.data_len, 3);
	assert_memory_equal(r.data, "abc", 3);
	/* no data, part 0, part 65, an offset that wraps, too short */
	assert_int_equal(hl_pkt_stage_decode(buf, HL_STAGE_HDR_LEN, &r), HL_EINVAL);
	hl_pkt_stage_header(id, 0, 0, buf);
	assert_int_equal(hl_pkt_stage_decode(buf, sizeof(buf), &r), HL_EINVAL);
	hl_pkt_stage_header(id, 65, 0, buf);
	assert_int_equal(hl_pkt_stage_decode(buf, sizeof(buf), &r), HL_EINVAL);
	hl_pkt_stage_header(id, 1, UINT64_MAX - 1, buf);
	assert_int_equal(hl_pkt_stage_decode(buf, sizeof(buf), &r), HL_EINVAL);
	assert_int_equal(hl_pkt_stage_decode(buf, 10, &r), HL_ETRUNC);
}

static void test_staged_packet(void **state)
{
	(void)state;
	struct hl_pkt_staged in = { .seq = 42, .part = 64, .offset = 123456789 }, out;
	uint8_t buf[HL_STAGED_LEN + 1];
	hl_pkt_staged_encode(&in, buf);
	assert_int_equal(hl_pkt_staged_decode(buf, HL_STAGED_LEN, &out), 0);
	assert_true(out.seq == 42 && out.part == 64 && out.offset == 123456789);
	assert_int_equal(hl_pkt_staged_decode(buf, HL_STAGED_LEN - 1, &out), HL_ETRUNC);
	assert_int_equal(hl_pkt_staged_decode(buf, HL_STAGED_LEN + 1, &out), HL_EINVAL);
	in.seq = 0;
	hl_pkt_staged_encode(&in, buf);
	assert_int_equal(hl_pkt_staged_decode(buf, HL_STAGED_LEN, &out), HL_EINVAL);
	in.seq = 1;
	in.part = 0;
	hl_pkt_staged_encode(&in, buf);
	assert_int_equal(hl_pkt_staged_decode(buf, HL_STAGED_LEN, &out), HL_EINVAL);
}

static char *make_dir(void)
{
	char *d = xstrdup("/var/tmp/hl-test-stage.XXXXXX");
	assert_non_null(mkdtemp(d));
	return d;
}

static void rm_rf(const char *dir)
{
	char *cmd = xasprintf("rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
	free(cmd);
}

/* Writes N bytes of DATA at the end of PATH's file (created). */
static void append(const char *path, const uint8_t *data, size_t n)
{
	FILE *f = fopen(path, "ab");
	assert_non_null(f);
	assert_int_equal(fwrite(data, 1, n, f), n);
	assert_int_equal(fclose(f), 0);
}

/* Everything the author's side will send now, fed to the counterpart's. */
static size_t relay(hl_stage *out, hl_stage *in, uint8_t *rec, uint64_t now)
{
	size_t len, total = 0;
	unsigned token;
	size_t pushed;
	while (hl_stage_out_next(out, -1, 0, rec, &len, &token, now) == 1) {
		struct hl_pkt_stage r;
		assert_int_equal(hl_pkt_stage_decode(rec, len, &r), 0);
		assert_int_equal(hl_stage_in_data(in, &r, UINT64_MAX, UINT64_MAX, &pushed), 0);
		hl_stage_out_sent(out, token, r.data_len);
		total += r.data_len;
	}
	return total;
}

static void test_stage_roundtrip(void **state)
{
	(void)state;
	char *adir = make_dir(), *bdir = make_dir();
	uint8_t id[16];
	randombytes_buf(id, sizeof(id));
	char hex[33];
	sodium_bin2hex(hex, sizeof(hex), id, sizeof(id));
	char *rel = xasprintf("out/%s/0", hex);
	char *outdir = xasprintf("%s/out/%s", adir, hex), *outdir0 = xasprintf("%s/out", adir);
	assert_int_equal(mkdir(outdir0, 0700), 0);
	assert_int_equal(mkdir(outdir, 0700), 0);
	char *path = hl_path_join(adir, rel);
	size_t size = 3 * HL_DIO_BUF + 777;
	uint8_t *data = xmalloc(size), *rec = xmalloc(HL_PACKET_BODY_MAX);
	randombytes_buf(data, size);

	hl_stage *a = hl_stage_new(adir, 1, NULL), *b = hl_stage_new(bdir, 2, NULL);
	assert_int_equal(hl_stage_out_add(a, id, 1, HL_PREC_ROUTINE, rel, size, 0), 0);
	assert_int_equal(hl_stage_out_add(a, id, 1, HL_PREC_ROUTINE, rel, size, 0), HL_EEXIST);
	assert_true(hl_stage_out_active(a));
	/* not written yet: nothing to send */
	assert_int_equal(relay(a, b, rec, 1), 0);
	/* half a MiB: still nothing (whole MiBs only) */
	append(path, data, HL_DIO_BUF / 2);
	assert_int_equal(relay(a, b, rec, 2), 0);
	append(path, data + HL_DIO_BUF / 2, 2 * HL_DIO_BUF - HL_DIO_BUF / 2);
	assert_int_equal(relay(a, b, rec, 3), 2 * HL_DIO_BUF);
	/* a FLASH-only window passes a routine part over */
	append(path, data + 2 * HL_DIO_BUF, size - 2 * HL_DIO_BUF);
	size_t len;
	unsigned token;
	assert_int_equal(hl_stage_out_next(a, HL_PREC_IMMEDIATE, 0, rec, &len, &token, 4), 0);
	/* the whole file is there, a MiB multiple short of its size: one more
	 * MiB, never the tail */
	assert_int_equal(relay(a, b, rec, 5), HL_DIO_BUF);
	assert_int_equal(hl_stage_in_bytes(b), 3 * HL_DIO_BUF);

	/* the ITEM goes out: part 1 was staged */
	assert_true(hl_stage_out_take(a, id) == 1);
	assert_false(hl_stage_out_active(a));

	/* the counterpart takes the file: exactly the bytes, and a hash
	 * state that goes on to the whole part's hash */
	hl_parthash hs;
	uint64_t done = 0;
	char *staged = NULL;
	assert_int_equal(hl_stage_in_take(b, id, 2, size, &hs, &done, &staged), 0);
	assert_int_equal(hl_stage_in_take(b, id, 1, size, &hs, &done, &staged), 1);
	assert_int_equal(done, 3 * HL_DIO_BUF);
	char *sp = hl_path_join(bdir, staged);
	struct stat sb;
	assert_int_equal(stat(sp, &sb), 0);
	assert_true((uint64_t)sb.st_size >= done);
	FILE *f = fopen(sp, "rb");
	uint8_t *got = xmalloc(done);
	assert_int_equal(fread(got, 1, done, f), done);
	fclose(f);
	assert_memory_equal(got, data, done);
	hl_parthash_update(&hs, data + done, size - done);
	uint8_t h1[32], h2[32];
	hl_parthash_final(&hs, h1);
	hl_doc_hash(data, size, h2);
	assert_memory_equal(h1, h2, 32);

	/* answered: STAGED(seq 9, part 1, done) */
	hl_stage_in_resolve(b, id, 9);
	const struct hl_pkt_staged *s = hl_stage_staged_peek(b);
	assert_non_null(s);
	assert_true(s->seq == 9 && s->part == 1 && s->offset == done);
	hl_stage_staged_pop(b);
	assert_null(hl_stage_staged_peek(b));
	struct hl_stage_stats st;
	hl_stage_stats(b, &st);
	assert_true(st.adopted_bytes == done && st.in_bytes == done);

	free(got);
	free(sp);
	free(staged);
	hl_stage_free(a);
	hl_stage_free(b);
	free(data);
	free(rec);
	free(path);
	free(outdir);
	free(outdir0);
	free(rel);
	rm_rf(adir);
	rm_rf(bdir);
	free(adir);
	free(bdir);
}

/* A gap, an over-size part, a session's end: the staging is dropped, its
 * file removed, and the ITEM is still answered, with offset 0. */
static void test_stage_dropped(void **state)
{
	(void)state;
	char *bdir = make_dir();
	hl_stage *b = hl_stage_new(bdir, 3, NULL);
	uint8_t id[16], id2[16], data[1000];
	randombytes_buf(id, sizeof(id));
	randombytes_buf(id2, sizeof(id2));
	randombytes_buf(data, sizeof(data));
	size_t pushed;
	struct hl_pkt_stage r = { .part = 1, .offset = 0, .data = data, .data_len = sizeof(data) };
	memcpy(r.id, id, 16);
	assert_int_equal(hl_stage_in_data(b, &r, UINT64_MAX, UINT64_MAX, &pushed), 0);
	assert_int_equal(hl_stage_in_bytes(b), 1000);
	r.offset = 5000;   /* a gap */
	assert_int_equal(hl_stage_in_data(b, &r, UINT64_MAX, UINT64_MAX, &pushed), 0);
	assert_int_equal(hl_stage_in_bytes(b), 0);
	/* over the part limit */
	memcpy(r.id, id2, 16);
	r.offset = 0;
	assert_int_equal(hl_stage_in_data(b, &r, UINT64_MAX, 999, &pushed), 0);
	assert_int_equal(hl_stage_in_bytes(b), 0);
	hl_parthash hs;
	uint64_t done;
	char *p = NULL;
	assert_int_equal(hl_stage_in_take(b, id, 1, 100000, &hs, &done, &p), 0);
	hl_stage_in_resolve(b, id, 4);
	const struct hl_pkt_staged *s = hl_stage_staged_peek(b);
	assert_non_null(s);
	assert_true(s->seq == 4 && s->part == 1 && s->offset == 0);
	/* a live staging file goes with the session */
	r.part = 2;
	assert_int_equal(hl_stage_in_data(b, &r, UINT64_MAX, UINT64_MAX, &pushed), 0);
	char *sd = hl_path_join(bdir, HL_STAGE_DIR);
	char *cmd = xasprintf("test $(ls '%s' | wc -l) -eq 1", sd);
	assert_int_equal(system(cmd), 0);
	free(cmd);
	hl_stage_reset(b);
	cmd = xasprintf("test $(ls '%s' | wc -l) -eq 0", sd);
	assert_int_equal(system(cmd), 0);
	free(cmd);
	assert_null(hl_stage_staged_peek(b));
	hl_stage_clean_dir(bdir);
	struct stat sb;
	assert_int_equal(stat(sd, &sb), -1);
	free(sd);
	hl_stage_free(b);
	rm_rf(bdir);
	free(bdir);
}

int main(void)
{
	if (sodium_init() < 0)
		return 1;
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_stage_packet),
		cmocka_unit_test(test_staged_packet),
		cmocka_unit_test(test_stage_roundtrip),
		cmocka_unit_test(test_stage_dropped),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
