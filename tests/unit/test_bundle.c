/* tests/unit/test_bundle.c — courier bundles (docs/bundle.md): sealing and
 * opening round trips, every byte flipped and every truncation refused, a
 * bundle for another station or from an unpinned one refused, and the
 * rules of the plaintext packet stream (bundle/format.h), each broken once. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "bundle/format.h"
#include "bundle/seal.h"
#include "wire/msgproto.h"
#include "msg/message.h"
#include "util/err.h"
#include "wire/packet.h"

static hl_signer *ida, *idb, *idc;

struct buf {
	uint8_t *p;
	size_t n, cap;
};

static int buf_sink(void *arg, const void *p, size_t n)
{
	struct buf *b = arg;
	if (b->n + n > b->cap) {
		b->cap = (b->n + n) * 2;
		b->p = realloc(b->p, b->cap);
	}
	memcpy(b->p + b->n, p, n);
	b->n += n;
	return 0;
}

struct rec {
	uint8_t type;
	uint8_t *body;
	size_t len;
};

static struct rec recs[16];
static size_t nrecs;
static uint8_t att[100000];

static void rec_add(uint8_t type, const uint8_t *body, size_t len)
{
	recs[nrecs].type = type;
	recs[nrecs].body = malloc(len ? len : 1);
	memcpy(recs[nrecs].body, body, len);
	recs[nrecs].len = len;
	nrecs++;
}

/* An ITEM packet: a message from AUTHOR to B, seq SEQ, with an attachment
 * of ATTLEN bytes of att[] (0: none), signed by AUTHOR, or, when FORGER is
 * not NULL, re-signed by FORGER (a forgery). */
static void add_message_by(uint64_t seq, size_t attlen, const hl_signer *author,
			   const hl_signer *forger)
{
	static const uint8_t name[] = "att.bin";
	struct hl_item it;
	uint8_t rec[HL_PACKET_BODY_MAX];
	const char *subject = "subject", *body = "hello";
	struct hl_msg_content c = {
		.subject = (const uint8_t *)subject, .subject_len = strlen(subject),
		.inline_body = 1, .body = (const uint8_t *)body, .body_len = strlen(body),
	};
	size_t len, clen;
	randombytes_buf(c.salt, sizeof(c.salt));
	memset(&it, 0, sizeof(it));
	it.kind = HL_ITEM_MESSAGE;
	memcpy(it.author, hl_signer_sign_pk(author), 32);
	memcpy(it.counterpart, hl_signer_sign_pk(idb), 32);
	it.seq = seq;
	if (seq > 1)
		memset(it.prev, 0x11, 32);
	randombytes_buf(it.u.msg.id, sizeof(it.u.msg.id));
	it.u.msg.class_seq = seq;
	hl_salted_hash(c.salt, HL_LABEL_SUBJECT, c.subject, c.subject_len, it.u.msg.subject_hash);
	hl_salted_hash(c.salt, HL_LABEL_BODY, c.body, c.body_len, it.u.msg.body_hash);
	it.u.msg.body_size = c.body_len;
	if (attlen) {
		it.u.msg.n_attachments = 1;
		it.u.msg.att[0].name = name;
		it.u.msg.att[0].name_len = sizeof(name) - 1;
		it.u.msg.att[0].size = attlen;
		hl_doc_hash(att, attlen, it.u.msg.att[0].hash);
	}
	assert_int_equal(hl_item_encode_sign(&it, author, rec + 2, HL_ITEM_MAX, &len), 0);
	if (forger)
		assert_int_equal(hl_signer_sign(forger, HL_CTX_MESSAGE, rec + 2, len - 64,
						rec + 2 + len - 64), 0);
	rec[0] = (uint8_t)(len >> 8);
	rec[1] = (uint8_t)len;
	assert_int_equal(hl_msg_content_encode(&c, rec + 2 + len, sizeof(rec) - 2 - len, &clen), 0);
	rec_add(HL_PKT_ITEM, rec, 2 + len + clen);
}

static void add_message(uint64_t seq, size_t attlen)
{
	add_message_by(seq, attlen, ida, NULL);
}

static void add_chunk(uint64_t seq, uint8_t part, uint64_t off, size_t n)
{
	uint8_t rec[HL_PACKET_BODY_MAX];
	hl_pkt_chunk_header(seq, part, off, rec);
	memcpy(rec + HL_CHUNK_HDR_LEN, att + off, n);
	rec_add(HL_PKT_CHUNK, rec, HL_CHUNK_HDR_LEN + n);
}

static void add_ack(uint64_t base)
{
	struct hl_pkt_ack a = { .base = base };
	uint8_t rec[64];
	size_t len;
	assert_int_equal(hl_pkt_ack_encode(&a, rec, sizeof(rec), &len), 0);
	rec_add(HL_PKT_ACK, rec, len);
}

static void recs_clear(void)
{
	for (size_t i = 0; i < nrecs; i++)
		free(recs[i].body);
	nrecs = 0;
}

/* A message with a 100000-byte attachment in two chunks, an ACK, and a
 * plain message. */
static void standard_records(void)
{
	recs_clear();
	add_ack(3);
	add_message(1, sizeof(att));
	add_chunk(1, 1, 0, 60000);
	add_chunk(1, 1, 60000, sizeof(att) - 60000);
	add_message(2, 0);
}

static void seal_all(struct buf *out, bool end)
{
	hl_bundle_sealer *s;
	memset(out, 0, sizeof(*out));
	assert_int_equal(hl_bundle_seal_begin(&s, ida, hl_signer_noise_pub(idb), buf_sink, out), 0);
	for (size_t i = 0; i < nrecs; i++)
		assert_int_equal(hl_bundle_seal_packet(s, recs[i].type, recs[i].body, recs[i].len), 0);
	if (end)
		assert_int_equal(hl_bundle_seal_end(s), 0);
	hl_bundle_sealer_free(s);
}

struct opened {
	const hl_signer *pinned;    /* the one sender accepted */
	struct hl_bundle_validator validator;
	size_t n;
	bool match;                   /* every packet as sealed */
};

static int cb_sender(void *arg, const uint8_t noise_pub[static 32])
{
	struct opened *o = arg;
	if (memcmp(noise_pub, hl_signer_noise_pub(o->pinned), 32) != 0)
		return HL_EPEER;
	hl_bundle_validator_init(&o->validator, hl_signer_sign_pk(o->pinned), hl_signer_sign_pk(idb));
	return 0;
}

static int cb_packet(void *arg, const uint8_t *rec, size_t len)
{
	struct opened *o = arg;
	int ret = hl_bundle_validate_packet(&o->validator, rec, len);
	if (ret < 0)
		return ret;
	if (o->n < nrecs && (len != 2 + recs[o->n].len || rec[1] != recs[o->n].type ||
			     memcmp(rec + 2, recs[o->n].body, recs[o->n].len) != 0))
		o->match = false;
	o->n++;
	return 0;
}

/* Opens BUF as B and checks it whole: 0 or the first error. */
static int open_check(const uint8_t *p, size_t n, const hl_signer *me, struct opened *o)
{
	char err[256];
	struct hl_bundle_open_cb cb = { .sender = cb_sender, .packet = cb_packet, .arg = o };
	memset(&o->validator, 0, sizeof(o->validator));
	o->n = 0;
	o->match = true;
	if (!o->pinned)
		o->pinned = ida;
	int ret = hl_bundle_open(p, n, me, &cb, err, sizeof(err));
	if (ret == 0)
		ret = hl_bundle_validator_finish(&o->validator);
	return ret;
}

static int setup(void **state)
{
	(void)state;
	if (sodium_init() < 0)
		return -1;
	randombytes_buf(att, sizeof(att));
	if (hl_signer_generate(&ida) < 0 || hl_signer_generate(&idb) < 0 ||
	    hl_signer_generate(&idc) < 0)
		return -1;
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	recs_clear();
	hl_signer_free(ida);
	hl_signer_free(idb);
	hl_signer_free(idc);
	return 0;
}

static void test_round_trip(void **state)
{
	(void)state;
	struct buf b;
	struct opened o = { 0 };
	standard_records();
	seal_all(&b, true);
	assert_memory_equal(b.p, HL_BUNDLE_MAGIC, HL_BUNDLE_MAGIC_LEN);
	uint8_t kid[8], want[8];
	assert_int_equal(hl_bundle_header_parse(b.p, b.n, kid), 0);
	hl_bundle_key_id(hl_signer_noise_pub(idb), want);
	assert_memory_equal(kid, want, 8);
	/* nothing of the attachment in clear */
	assert_null(memmem(b.p, b.n, att, 32));
	assert_int_equal(open_check(b.p, b.n, idb, &o), 0);
	assert_int_equal(o.n, nrecs + 1); /* and END */
	assert_true(o.match);
	assert_int_equal(o.validator.items, 2);
	assert_int_equal(o.validator.messages, 2);
	assert_int_equal(o.validator.chunks, 2);
	assert_int_equal(o.validator.acks, 1);
	/* two bundles of the same packets differ (fresh ephemeral key) */
	struct buf b2;
	seal_all(&b2, true);
	assert_int_equal(b.n, b2.n);
	assert_memory_not_equal(b.p, b2.p, b.n);
	free(b.p);
	free(b2.p);
}

static void test_every_byte_flip_fails(void **state)
{
	(void)state;
	struct buf b;
	struct opened o = { 0 };
	recs_clear();
	add_ack(1);
	add_message(1, 0);
	seal_all(&b, true);
	for (size_t i = 0; i < b.n; i++) {
		for (unsigned bit = 0; bit < 8; bit += 3) {
			b.p[i] ^= (uint8_t)(1u << bit);
			assert_int_not_equal(open_check(b.p, b.n, idb, &o), 0);
			b.p[i] ^= (uint8_t)(1u << bit);
		}
	}
	assert_int_equal(open_check(b.p, b.n, idb, &o), 0);
	free(b.p);
}

static void test_every_truncation_fails(void **state)
{
	(void)state;
	struct buf b;
	struct opened o = { 0 };
	standard_records();
	seal_all(&b, true);
	for (size_t n = 0; n < b.n; n += (n < 400 ? 1 : 997))
		assert_int_not_equal(open_check(b.p, n, idb, &o), 0);
	assert_int_not_equal(open_check(b.p, b.n - 1, idb, &o), 0);
	/* trailing bytes after END */
	uint8_t *more = malloc(b.n + 3);
	memcpy(more, b.p, b.n);
	memcpy(more + b.n, "\x00\x01\x00", 3);
	assert_int_not_equal(open_check(more, b.n + 3, idb, &o), 0);
	free(more);
	free(b.p);
	/* without END, every frame intact: truncated */
	seal_all(&b, false);
	assert_int_equal(open_check(b.p, b.n, idb, &o), HL_ETRUNC);
	free(b.p);
}

static void test_wrong_station(void **state)
{
	(void)state;
	struct buf b;
	struct opened o = { 0 };
	standard_records();
	seal_all(&b, true);
	/* C is not the recipient */
	assert_int_equal(open_check(b.p, b.n, idc, &o), HL_EPEER);
	/* the key id rewritten to C's: the handshake no longer authenticates */
	hl_bundle_key_id(hl_signer_noise_pub(idc), b.p + HL_BUNDLE_MAGIC_LEN);
	assert_int_equal(open_check(b.p, b.n, idc, &o), HL_EAUTH);
	free(b.p);
	/* sealed by A, but only C is pinned */
	seal_all(&b, true);
	o.pinned = idc;
	assert_int_equal(open_check(b.p, b.n, idb, &o), HL_EPEER);
	free(b.p);
}

/* Runs the checker alone over the current packets (and END with COUNT
 * when END_AT is nonzero). */
static int check_records(uint64_t end_count, bool end)
{
	struct hl_bundle_validator c;
	uint8_t rec[HL_PACKET_MAX];
	size_t len;
	int ret = 0;
	hl_bundle_validator_init(&c, hl_signer_sign_pk(ida), hl_signer_sign_pk(idb));
	for (size_t i = 0; i < nrecs && ret == 0; i++) {
		assert_int_equal(hl_packet_encode(recs[i].type, recs[i].body, recs[i].len, rec,
						  sizeof(rec), &len), 0);
		ret = hl_bundle_validate_packet(&c, rec, len);
	}
	if (ret == 0 && end) {
		uint8_t n[8];
		for (unsigned i = 0; i < 8; i++)
			n[i] = (uint8_t)(end_count >> (56 - 8 * i));
		assert_int_equal(hl_packet_encode(HL_PKT_BUNDLE_END, n, 8, rec, sizeof(rec), &len), 0);
		ret = hl_bundle_validate_packet(&c, rec, len);
	}
	if (ret == 0)
		ret = hl_bundle_validator_finish(&c);
	return ret;
}

static void test_packet_rules(void **state)
{
	(void)state;
	standard_records();
	assert_int_equal(check_records(nrecs, true), 0);
	assert_int_equal(check_records(nrecs - 1, true), HL_EINVAL);   /* END miscounts */
	assert_int_equal(check_records(nrecs, false), HL_ETRUNC);      /* no END */

	/* an item signed by C, claiming A as author */
	recs_clear();
	add_message_by(1, 0, ida, idc);
	assert_int_equal(check_records(nrecs, true), HL_EAUTH);
	/* an item by C for B, properly signed: not the sender's */
	recs_clear();
	add_message_by(1, 0, idc, NULL);
	assert_int_equal(check_records(nrecs, true), HL_EAUTH);

	/* chunks out of order, a gap, missing, too many, the wrong part */
	recs_clear();
	add_message(1, sizeof(att));
	add_chunk(1, 1, 60000, sizeof(att) - 60000);
	add_chunk(1, 1, 0, 60000);
	assert_int_equal(check_records(nrecs, true), HL_EINVAL);
	recs_clear();
	add_message(1, sizeof(att));
	add_chunk(1, 1, 0, 60000);
	assert_int_equal(check_records(nrecs, true), HL_EINVAL);
	recs_clear();
	add_message(1, sizeof(att));
	add_chunk(1, 1, 0, 60000);
	add_message(2, 0);
	assert_int_equal(check_records(nrecs, true), HL_EINVAL);
	recs_clear();
	add_message(1, 0);
	add_chunk(1, 1, 0, 10);
	assert_int_equal(check_records(nrecs, true), HL_EINVAL);
	recs_clear();
	add_chunk(1, 1, 0, 10);
	assert_int_equal(check_records(nrecs, true), HL_EINVAL);

	/* an attachment whose bytes do not match its signed hash */
	recs_clear();
	add_message(1, sizeof(att));
	add_chunk(1, 1, 0, 60000);
	add_chunk(1, 1, 60000, sizeof(att) - 60000);
	recs[2].body[HL_CHUNK_HDR_LEN + 5] ^= 1;
	assert_int_equal(check_records(nrecs, true), HL_EAUTH);

	/* packets that have no place in a bundle */
	recs_clear();
	uint8_t resume[2] = { 0, 0 };
	rec_add(HL_PKT_RESUME, resume, sizeof(resume));
	assert_int_equal(check_records(nrecs, true), HL_EINVAL);
	recs_clear();
	rec_add(HL_PKT_HELLO, (const uint8_t *)"\x01\x01\x00\x00\x00\x00", 6);
	assert_int_equal(check_records(nrecs, true), HL_EINVAL);

	/* anything after END */
	struct hl_bundle_validator c;
	uint8_t rec[32];
	size_t len;
	hl_bundle_validator_init(&c, hl_signer_sign_pk(ida), hl_signer_sign_pk(idb));
	static const uint8_t zero[8];
	assert_int_equal(hl_packet_encode(HL_PKT_BUNDLE_END, zero, 8, rec, sizeof(rec), &len), 0);
	assert_int_equal(hl_bundle_validate_packet(&c, rec, len), 0);
	assert_int_equal(hl_bundle_validate_packet(&c, rec, len), HL_EINVAL);
	/* a wrong version */
	hl_bundle_validator_init(&c, hl_signer_sign_pk(ida), hl_signer_sign_pk(idb));
	rec[0] = 2;
	assert_int_equal(hl_bundle_validate_packet(&c, rec, len), HL_EINVAL);
	recs_clear();
}

static void test_header(void **state)
{
	(void)state;
	uint8_t kid[8], hdr[HL_BUNDLE_HDR_LEN];
	hl_bundle_header(hl_signer_noise_pub(idb), hdr);
	assert_int_equal(hl_bundle_header_parse(hdr, sizeof(hdr), kid), 0);
	assert_int_equal(hl_bundle_header_parse(hdr, sizeof(hdr) - 1, kid), HL_ETRUNC);
	hdr[3] ^= 0x20;
	assert_int_equal(hl_bundle_header_parse(hdr, sizeof(hdr), kid), HL_EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_every_byte_flip_fails),
		cmocka_unit_test(test_every_truncation_fails),
		cmocka_unit_test(test_wrong_station),
		cmocka_unit_test(test_packet_rules),
		cmocka_unit_test(test_header),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
