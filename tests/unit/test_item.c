/* tests/unit/test_item.c — signed items (docs/items.md): round trips, the
 * byte layout, forgeries and corruptions that must fail. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <sodium.h>
#include <string.h>

#include "msg/item.h"
#include "util/err.h"

static hl_signer *sg_a, *sg_b;
static uint8_t pk_a[32], pk_b[32];

static int setup(void **state)
{
	(void)state;
	uint8_t seed[32];
	if (sodium_init() < 0)
		return -1;
	memset(seed, 0xa1, sizeof(seed));
	if (hl_signer_from_raw_for_tests(&sg_a, NULL, seed) < 0)
		return -1;
	memset(seed, 0xb2, sizeof(seed));
	if (hl_signer_from_raw_for_tests(&sg_b, NULL, seed) < 0)
		return -1;
	memcpy(pk_a, hl_signer_sign_pk(sg_a), 32);
	memcpy(pk_b, hl_signer_sign_pk(sg_b), 32);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	hl_signer_free(sg_a);
	hl_signer_free(sg_b);
	return 0;
}

static void make_message(struct hl_item *it, uint64_t seq)
{
	static const uint8_t name0[] = "treaty.pdf";
	static const uint8_t name1[] = "annex b.txt";
	memset(it, 0, sizeof(*it));
	it->kind = HL_ITEM_MESSAGE;
	memcpy(it->author, pk_a, 32);
	memcpy(it->counterpart, pk_b, 32);
	it->seq = seq;
	if (seq > 1)
		memset(it->prev, 0x77, 32);
	it->time_ms = 1795000000000ull;
	struct hl_item_message *m = &it->u.msg;
	memset(m->id, 0x42, sizeof(m->id));
	m->precedence = HL_PREC_FLASH;
	m->class_seq = 9;
	uint8_t salt[HL_SALT_LEN];
	memset(salt, 0x5a, sizeof(salt));
	hl_salted_hash(salt, HL_LABEL_SUBJECT, (const uint8_t *)"hello", 5, m->subject_hash);
	hl_salted_hash(salt, HL_LABEL_BODY, (const uint8_t *)"body", 4, m->body_hash);
	m->body_size = 4;
	m->n_attachments = 2;
	m->att[0].name = name0;
	m->att[0].name_len = sizeof(name0) - 1;
	m->att[0].size = 123456789;
	memset(m->att[0].hash, 0x11, 32);
	m->att[1].name = name1;
	m->att[1].name_len = sizeof(name1) - 1;
	m->att[1].size = 0;
	memset(m->att[1].hash, 0x22, 32);
}

static void test_message_round_trip(void **state)
{
	(void)state;
	struct hl_item it, back;
	uint8_t buf[HL_ITEM_MAX], again[HL_ITEM_MAX];
	size_t len, len2;
	make_message(&it, 5);
	assert_int_equal(hl_item_encode_sign(&it, sg_a, buf, sizeof(buf), &len), 0);
	/* context+NUL, keys, seq, prev, time, id, prec, class_seq, 2 hashes,
	 * body_size, n, 2 attachments, signature */
	size_t want = 18 + 32 + 32 + 8 + 32 + 8 + 16 + 1 + 8 + 32 + 32 + 8 + 1 +
		      (1 + 10 + 8 + 32) + (1 + 11 + 8 + 32) + 64;
	assert_int_equal(len, want);
	assert_memory_equal(buf, "hotline/1 message\0", 18);
	assert_int_equal(hl_item_open(buf, len, pk_a, pk_b, &back), 0);
	assert_int_equal(back.kind, HL_ITEM_MESSAGE);
	assert_int_equal(back.seq, 5);
	assert_int_equal(back.u.msg.class_seq, 9);
	assert_int_equal(back.u.msg.precedence, HL_PREC_FLASH);
	assert_int_equal(back.u.msg.n_attachments, 2);
	assert_int_equal(back.u.msg.att[0].size, 123456789);
	assert_memory_equal(back.u.msg.att[1].name, "annex b.txt", 11);
	assert_int_equal(hl_item_encode(&back, again, sizeof(again), &len2), 0);
	assert_int_equal(len2, len);
	assert_memory_equal(again, buf, len);
}

static void test_receipt_round_trip(void **state)
{
	(void)state;
	struct hl_item it, back;
	uint8_t buf[HL_ITEM_MAX];
	size_t len;
	memset(&it, 0, sizeof(it));
	it.kind = HL_ITEM_RECEIPT;
	memcpy(it.author, pk_b, 32);
	memcpy(it.counterpart, pk_a, 32);
	it.seq = 1;
	it.u.rcpt.peer_seq = 7;
	memset(it.u.rcpt.peer_hash, 0x33, 32);
	it.u.rcpt.count = HL_MAX_RECEIPT_ENTRIES;
	for (unsigned i = 0; i < it.u.rcpt.count; i++) {
		it.u.rcpt.entries[i].seq = i + 1;
		memset(it.u.rcpt.entries[i].hash, (int)i, 32);
	}
	assert_int_equal(hl_item_encode_sign(&it, sg_b, buf, sizeof(buf), &len), 0);
	assert_int_equal(hl_item_open(buf, len, pk_b, pk_a, &back), 0);
	assert_int_equal(back.kind, HL_ITEM_RECEIPT);
	assert_int_equal(back.u.rcpt.count, HL_MAX_RECEIPT_ENTRIES);
	assert_int_equal(back.u.rcpt.entries[255].seq, 256);
	assert_int_equal(back.u.rcpt.peer_seq, 7);
}

/* Every single-byte change of an encoded item makes it fail to open. */
static void test_every_byte_flip_fails(void **state)
{
	(void)state;
	struct hl_item it, back;
	uint8_t buf[HL_ITEM_MAX];
	size_t len;
	make_message(&it, 3);
	assert_int_equal(hl_item_encode_sign(&it, sg_a, buf, sizeof(buf), &len), 0);
	for (size_t i = 0; i < len; i++) {
		buf[i] ^= 0x01;
		assert_int_not_equal(hl_item_open(buf, len, pk_a, pk_b, &back), 0);
		buf[i] ^= 0x01;
	}
	assert_int_equal(hl_item_open(buf, len, pk_a, pk_b, &back), 0);
}

static void test_truncation_and_trailing(void **state)
{
	(void)state;
	struct hl_item it, back;
	uint8_t buf[HL_ITEM_MAX + 1];
	size_t len;
	make_message(&it, 3);
	assert_int_equal(hl_item_encode_sign(&it, sg_a, buf, sizeof(buf), &len), 0);
	for (size_t n = 0; n < len; n++)
		assert_true(hl_item_decode(buf, n, &back) < 0);
	buf[len] = 0;
	assert_int_equal(hl_item_decode(buf, len + 1, &back), HL_EINVAL);
}

static void test_wrong_keys(void **state)
{
	(void)state;
	struct hl_item it, back;
	uint8_t buf[HL_ITEM_MAX];
	size_t len;
	make_message(&it, 3);
	/* Signed by a key that is not the author's: it does not open as the
	 * author's (whose key signs is the chain's business: a rotation
	 * changes it, docs/items.md section 3). */
	assert_int_equal(hl_item_encode_sign(&it, sg_b, buf, sizeof(buf), &len), 0);
	assert_int_equal(hl_item_open(buf, len, pk_a, pk_b, &back), HL_EAUTH);
	assert_int_equal(hl_item_open_key(buf, len, pk_a, pk_b, pk_b, &back), 0);
	assert_int_equal(hl_item_encode_sign(&it, sg_a, buf, sizeof(buf), &len), 0);
	assert_int_equal(hl_item_open(buf, len, pk_b, pk_a, &back), HL_EPEER);
	assert_int_equal(hl_item_open(buf, len, pk_a, pk_a, &back), HL_EPEER);
	/* A forgery: the same item claimed by B, signed by A. */
	memcpy(buf + 18, pk_b, 32);
	assert_int_equal(hl_item_open(buf, len, NULL, NULL, &back), HL_EAUTH);
}

/* A receipt's signature cannot pass for a message's: the context differs. */
static void test_context_separation(void **state)
{
	(void)state;
	struct hl_item it, back;
	uint8_t buf[HL_ITEM_MAX];
	size_t len;
	make_message(&it, 3);
	assert_int_equal(hl_item_encode_sign(&it, sg_a, buf, sizeof(buf), &len), 0);
	memcpy(buf, "hotline/1 receipt", 17);
	assert_true(hl_item_open(buf, len, NULL, NULL, &back) < 0);
	memcpy(buf, "hotline/1 xxxxxxx", 17);
	assert_int_equal(hl_item_decode(buf, len, &back), HL_EUNSUPP);
}

static void test_forbidden_values(void **state)
{
	(void)state;
	struct hl_item it;
	uint8_t buf[HL_ITEM_MAX];
	size_t len;
	static const uint8_t dotdot[] = "..";
	static const uint8_t slash[] = "a/b";

	make_message(&it, 0);
	assert_int_equal(hl_item_encode_sign(&it, sg_a, buf, sizeof(buf), &len), HL_EINVAL);
	make_message(&it, 1);
	memset(it.prev, 1, 32);
	assert_int_equal(hl_item_encode_sign(&it, sg_a, buf, sizeof(buf), &len), HL_EINVAL);
	make_message(&it, 2);
	it.u.msg.precedence = 4;
	assert_int_equal(hl_item_encode_sign(&it, sg_a, buf, sizeof(buf), &len), HL_EINVAL);
	make_message(&it, 2);
	it.u.msg.att[0].name = dotdot;
	it.u.msg.att[0].name_len = 2;
	assert_int_equal(hl_item_encode_sign(&it, sg_a, buf, sizeof(buf), &len), HL_EINVAL);
	it.u.msg.att[0].name = slash;
	it.u.msg.att[0].name_len = 3;
	assert_int_equal(hl_item_encode_sign(&it, sg_a, buf, sizeof(buf), &len), HL_EINVAL);
	make_message(&it, 2);
	assert_int_equal(hl_item_encode_sign(&it, sg_a, buf, 100, &len), HL_ETOOBIG);
}

/* The salted commitments differ by salt and by label. */
static void test_salted_hash(void **state)
{
	(void)state;
	uint8_t s1[HL_SALT_LEN], s2[HL_SALT_LEN], h1[32], h2[32], h3[32];
	memset(s1, 1, sizeof(s1));
	memset(s2, 2, sizeof(s2));
	hl_salted_hash(s1, HL_LABEL_BODY, (const uint8_t *)"yes", 3, h1);
	hl_salted_hash(s2, HL_LABEL_BODY, (const uint8_t *)"yes", 3, h2);
	hl_salted_hash(s1, HL_LABEL_SUBJECT, (const uint8_t *)"yes", 3, h3);
	assert_memory_not_equal(h1, h2, 32);
	assert_memory_not_equal(h1, h3, 32);
}

static void test_precedence_names(void **state)
{
	(void)state;
	enum hl_precedence p;
	assert_int_equal(hl_precedence_parse("FLASH", &p), 0);
	assert_int_equal(p, HL_PREC_FLASH);
	assert_int_equal(hl_precedence_parse("r", &p), 0);
	assert_int_equal(p, HL_PREC_ROUTINE);
	assert_int_equal(hl_precedence_parse("urgent", &p), HL_EINVAL);
	assert_string_equal(hl_precedence_name(HL_PREC_IMMEDIATE), "immediate");
	assert_null(hl_precedence_name(4));
}

/* ---- checks, answers, agreements, countersigns ---- */

static void make_kind(struct hl_item *it, enum hl_item_kind kind)
{
	static const uint8_t name[] = "treaty.pdf";
	memset(it, 0, sizeof(*it));
	it->kind = kind;
	memcpy(it->author, pk_a, 32);
	memcpy(it->counterpart, pk_b, 32);
	it->seq = 4;
	memset(it->prev, 0x44, 32);
	it->time_ms = 1795000000000ull;
	switch (kind) {
	case HL_ITEM_CHECK:
		memset(it->u.chk.id, 0xc1, HL_CHECK_ID_LEN);
		it->u.chk.mode = HL_CHECK_OPERATOR;
		it->u.chk.link = 1;
		it->u.chk.timeout_ms = 30000;
		it->u.chk.peer_seq = 12;
		memset(it->u.chk.peer_hash, 0x12, 32);
		break;
	case HL_ITEM_ANSWER:
		it->u.ans.check_seq = 3;
		memset(it->u.ans.check_hash, 0x33, 32);
		it->u.ans.by = HL_ANSWER_NO_PERSON;
		it->u.ans.peer_seq = 3;
		memset(it->u.ans.peer_hash, 0x34, 32);
		break;
	case HL_ITEM_AGREEMENT:
		it->u.agr.name = name;
		it->u.agr.name_len = sizeof(name) - 1;
		it->u.agr.size = 99999;
		memset(it->u.agr.doc_hash, 0xd0, 32);
		memset(it->u.agr.msg_id, 0x1d, HL_MSG_ID_LEN);
		break;
	case HL_ITEM_COUNTERSIGN:
		it->u.csig.proposal_seq = 8;
		memset(it->u.csig.agreement_id, 0xa9, 32);
		memset(it->u.csig.doc_hash, 0xd0, 32);
		break;
	default:
		break;
	}
}

/* BUF (LEN bytes, A's item for B) re-encodes to itself once decoded,
 * and fails to open with any one byte flipped or cut short. */
static void assert_one_encoding_every_flip_fails(uint8_t *buf, size_t len)
{
	struct hl_item back;
	uint8_t again[HL_ITEM_MAX];
	size_t len2;
	assert_int_equal(hl_item_open(buf, len, pk_a, pk_b, &back), 0);
	assert_int_equal(hl_item_encode(&back, again, sizeof(again), &len2), 0);
	assert_int_equal(len2, len);
	assert_memory_equal(again, buf, len);
	for (size_t i = 0; i < len; i++) {
		buf[i] ^= 0x80;
		assert_int_not_equal(hl_item_open(buf, len, pk_a, pk_b, &back), 0);
		buf[i] ^= 0x80;
	}
	for (size_t n = 0; n < len; n++)
		assert_true(hl_item_decode(buf, n, &back) < 0);
}

/* The byte layout (docs/items.md 2.3-2.6), a round trip, and every single
 * byte flipped failing to open, for each new kind. */
static void test_new_kinds(void **state)
{
	(void)state;
	static const struct {
		enum hl_item_kind kind;
		const char *ctx;
		size_t body;   /* the kind's fields */
	} kinds[] = {
		{ HL_ITEM_CHECK, "hotline/1 check", 16 + 1 + 1 + 4 + 8 + 32 },
		{ HL_ITEM_ANSWER, "hotline/1 answer", 8 + 32 + 1 + 8 + 32 },
		{ HL_ITEM_AGREEMENT, "hotline/1 agreement", 1 + 10 + 8 + 32 + 16 },
		{ HL_ITEM_COUNTERSIGN, "hotline/1 countersign", 8 + 32 + 32 },
	};
	for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) {
		struct hl_item it, back;
		uint8_t buf[HL_ITEM_MAX];
		size_t len, clen = strlen(kinds[k].ctx) + 1;
		make_kind(&it, kinds[k].kind);
		assert_int_equal(hl_item_encode_sign(&it, sg_a, buf, sizeof(buf), &len), 0);
		assert_int_equal(len, clen + 32 + 32 + 8 + 32 + 8 + kinds[k].body + 64);
		assert_memory_equal(buf, kinds[k].ctx, clen);
		assert_int_equal(hl_item_open(buf, len, pk_a, pk_b, &back), 0);
		assert_int_equal(back.kind, kinds[k].kind);
		assert_string_equal(hl_item_kind_name(back.kind), kinds[k].ctx + 10);
		assert_one_encoding_every_flip_fails(buf, len);
	}
	struct hl_item back;
	uint8_t buf[HL_ITEM_MAX];
	size_t len;
	struct hl_item it;
	make_kind(&it, HL_ITEM_CHECK);
	assert_int_equal(hl_item_encode_sign(&it, sg_a, buf, sizeof(buf), &len), 0);
	assert_int_equal(hl_item_open(buf, len, pk_a, pk_b, &back), 0);
	assert_memory_equal(back.u.chk.id, it.u.chk.id, HL_CHECK_ID_LEN);
	assert_int_equal(back.u.chk.timeout_ms, 30000);
	assert_int_equal(back.u.chk.peer_seq, 12);
	make_kind(&it, HL_ITEM_AGREEMENT);
	assert_int_equal(hl_item_encode_sign(&it, sg_a, buf, sizeof(buf), &len), 0);
	assert_int_equal(hl_item_open(buf, len, pk_a, pk_b, &back), 0);
	assert_memory_equal(back.u.agr.name, "treaty.pdf", 10);
	assert_int_equal(back.u.agr.size, 99999);
}

/* A check's signature cannot pass for an answer's, nor a proposal's for a
 * countersign's: each kind has its own context. */
static void test_new_kinds_context_separation(void **state)
{
	(void)state;
	struct hl_item it, back;
	uint8_t buf[HL_ITEM_MAX];
	size_t len;
	make_kind(&it, HL_ITEM_CHECK);
	assert_int_equal(hl_item_encode_sign(&it, sg_a, buf, sizeof(buf), &len), 0);
	/* "hotline/1 check\0" -> "hotline/1 answer" shifts every field: a
	 * different structure whose signature cannot verify */
	uint8_t other[HL_ITEM_MAX];
	memcpy(other, "hotline/1 answer", 17);
	memcpy(other + 17, buf + 16, len - 16);
	assert_true(hl_item_open(other, len + 1, NULL, NULL, &back) < 0);
	assert_false(hl_item_kind_valid(0));
	assert_false(hl_item_kind_valid(HL_ITEM_KIND_MAX + 1));
	assert_null(hl_item_kind_name(99));
}

static void test_new_kinds_forbidden_values(void **state)
{
	(void)state;
	struct hl_item it;
	uint8_t buf[HL_ITEM_MAX];
	size_t len;
	static const uint8_t bad_name[] = "../x";

	make_kind(&it, HL_ITEM_CHECK);
	it.u.chk.mode = 2;
	assert_int_equal(hl_item_encode_sign(&it, sg_a, buf, sizeof(buf), &len), HL_EINVAL);
	make_kind(&it, HL_ITEM_CHECK);
	it.u.chk.link = 2;
	assert_int_equal(hl_item_encode_sign(&it, sg_a, buf, sizeof(buf), &len), HL_EINVAL);
	make_kind(&it, HL_ITEM_CHECK);
	it.u.chk.timeout_ms = 0;
	assert_int_equal(hl_item_encode_sign(&it, sg_a, buf, sizeof(buf), &len), HL_EINVAL);
	it.u.chk.timeout_ms = HL_CHECK_TIMEOUT_MAX + 1;
	assert_int_equal(hl_item_encode_sign(&it, sg_a, buf, sizeof(buf), &len), HL_EINVAL);
	make_kind(&it, HL_ITEM_CHECK);
	it.u.chk.peer_seq = 0;   /* an empty head with a non-zero hash */
	assert_int_equal(hl_item_encode_sign(&it, sg_a, buf, sizeof(buf), &len), HL_EINVAL);
	memset(it.u.chk.peer_hash, 0, 32);
	assert_int_equal(hl_item_encode_sign(&it, sg_a, buf, sizeof(buf), &len), 0);
	make_kind(&it, HL_ITEM_ANSWER);
	it.u.ans.by = 3;
	assert_int_equal(hl_item_encode_sign(&it, sg_a, buf, sizeof(buf), &len), HL_EINVAL);
	make_kind(&it, HL_ITEM_ANSWER);
	it.u.ans.check_seq = 0;
	assert_int_equal(hl_item_encode_sign(&it, sg_a, buf, sizeof(buf), &len), HL_EINVAL);
	make_kind(&it, HL_ITEM_AGREEMENT);
	it.u.agr.name = bad_name;
	it.u.agr.name_len = 4;
	assert_int_equal(hl_item_encode_sign(&it, sg_a, buf, sizeof(buf), &len), HL_EINVAL);
	it.u.agr.name_len = 0;
	assert_int_equal(hl_item_encode_sign(&it, sg_a, buf, sizeof(buf), &len), HL_EINVAL);
	make_kind(&it, HL_ITEM_AGREEMENT);
	it.u.agr.size = (UINT64_C(1) << 62) + 1;
	assert_int_equal(hl_item_encode_sign(&it, sg_a, buf, sizeof(buf), &len), HL_EINVAL);
	make_kind(&it, HL_ITEM_COUNTERSIGN);
	it.u.csig.proposal_seq = 0;
	assert_int_equal(hl_item_encode_sign(&it, sg_a, buf, sizeof(buf), &len), HL_EINVAL);
}

/* ---- rotation (docs/items.md 2.8) ---- */

/* A's rotation: A with next keys, rotated (so its previous key is A's
 * first); the item names A by that first key. */
static hl_signer *rotated_a(hl_signer **first)
{
	uint8_t seed[32];
	hl_signer *r = NULL;
	memset(seed, 0xa1, sizeof(seed));
	assert_int_equal(hl_signer_with_next_for_tests(first, NULL, seed, NULL, NULL), 0);
	assert_int_equal(hl_signer_rotated_for_tests(*first, 1795000000000ll, &r), 0);
	return r;
}

static void make_rotation(struct hl_item *it, const hl_signer *r)
{
	memset(it, 0, sizeof(*it));
	it->kind = HL_ITEM_ROTATION;
	memcpy(it->author, pk_a, 32);
	memcpy(it->counterpart, pk_b, 32);
	it->seq = 5;
	memset(it->prev, 0x77, 32);
	it->time_ms = 1795000000000ull;
	memcpy(it->u.rot.noise_key, hl_signer_noise_pub(r), 32);
	memcpy(it->u.rot.signing_key, hl_signer_sign_pk(r), 32);
	assert_int_equal(hl_signer_next_hash(r, it->u.rot.next_hash), 0);
	it->u.rot.reason = HL_ROTATE_COMPROMISE;
}

static void test_rotation_layout(void **state)
{
	(void)state;
	hl_signer *first = NULL, *r = rotated_a(&first);
	struct hl_item it, back;
	uint8_t buf[HL_ITEM_MAX];
	size_t len;
	make_rotation(&it, r);
	assert_memory_equal(hl_signer_sign_pk(first), pk_a, 32);
	assert_int_equal(hl_item_encode_sign(&it, r, buf, sizeof(buf), &len), 0);
	size_t clen = sizeof(HL_CTX_ROTATION);
	assert_int_equal(len, clen + 32 + 32 + 8 + 32 + 8 + (32 + 32 + 32 + 1 + 64) + 64);
	assert_memory_equal(buf, "hotline/1 rotation", clen);
	/* the fields at their offsets */
	size_t f = clen + 112;
	assert_memory_equal(buf + f, hl_signer_noise_pub(r), 32);
	assert_memory_equal(buf + f + 32, hl_signer_sign_pk(r), 32);
	assert_memory_equal(buf + f + 64, it.u.rot.next_hash, 32);
	assert_int_equal(buf[f + 96], 1);
	/* new_sig: the new key over its context, NUL, and the bytes before it */
	uint8_t msg[512];
	memcpy(msg, "hotline/1 rotation new key", 27);
	memcpy(msg + 27, buf, f + 97);
	assert_int_equal(crypto_sign_verify_detached(buf + f + 97, msg, 27 + f + 97,
						     hl_signer_sign_pk(r)), 0);
	/* sig: the old key (the chain's before the rotation) over the rest */
	assert_int_equal(crypto_sign_verify_detached(buf + len - 64, buf, len - 64, pk_a), 0);
	/* it opens under the old key, not the new one */
	assert_int_equal(hl_item_open(buf, len, pk_a, pk_b, &back), 0);
	assert_int_equal(hl_item_open_key(buf, len, pk_a, pk_b, hl_signer_sign_pk(r), &back),
			 HL_EAUTH);
	assert_string_equal(hl_item_kind_name(back.kind), "rotation");
	assert_one_encoding_every_flip_fails(buf, len);
	hl_signer_free(r);
	hl_signer_free(first);
}

/* A rotation signed only by the old key (its new_sig not the new key's)
 * does not open: whoever holds the current key alone cannot vouch for
 * keys it does not hold. */
static void test_rotation_needs_the_new_key(void **state)
{
	(void)state;
	hl_signer *first = NULL, *r = rotated_a(&first);
	struct hl_item it, back;
	uint8_t buf[HL_ITEM_MAX], msg[512];
	size_t len;
	make_rotation(&it, r);
	assert_int_equal(hl_item_encode_sign(&it, r, buf, sizeof(buf), &len), 0);
	size_t f = sizeof(HL_CTX_ROTATION) + 112;
	/* new_sig by the old key (under the right context), then the whole
	 * re-signed by the old key, as a thief with only it would */
	uint8_t seed[32], pk[32], sk[64];
	memset(seed, 0xa1, sizeof(seed));
	crypto_sign_seed_keypair(pk, sk, seed);
	assert_memory_equal(pk, pk_a, 32);
	memcpy(msg, "hotline/1 rotation new key", 27);
	memcpy(msg + 27, buf, f + 97);
	crypto_sign_detached(buf + f + 97, NULL, msg, 27 + f + 97, sk);
	crypto_sign_detached(buf + len - 64, NULL, buf, len - 64, sk);
	assert_int_equal(hl_item_decode(buf, len, &back), 0);
	assert_int_equal(crypto_sign_verify_detached(buf + len - 64, buf, len - 64, pk_a), 0);
	assert_int_equal(hl_item_open(buf, len, pk_a, pk_b, &back), HL_EAUTH);
	assert_false(hl_item_rotation_sig_ok(buf, len, &back));
	/* nor a new_sig made without its context string */
	crypto_sign_detached(buf + f + 97, NULL, buf, f + 97, sk);
	crypto_sign_detached(buf + len - 64, NULL, buf, len - 64, sk);
	assert_int_equal(hl_item_open(buf, len, pk_a, pk_b, &back), HL_EAUTH);
	sodium_memzero(sk, sizeof(sk));
	hl_signer_free(r);
	hl_signer_free(first);
}

static void test_rotation_forbidden_values(void **state)
{
	(void)state;
	hl_signer *first = NULL, *r = rotated_a(&first);
	struct hl_item it;
	uint8_t buf[HL_ITEM_MAX];
	size_t len;
	make_rotation(&it, r);
	it.u.rot.reason = 2;
	assert_int_equal(hl_item_encode_sign(&it, r, buf, sizeof(buf), &len), HL_EINVAL);
	make_rotation(&it, r);
	memset(it.u.rot.next_hash, 0, 32);
	assert_int_equal(hl_item_encode_sign(&it, r, buf, sizeof(buf), &len), HL_EINVAL);
	make_rotation(&it, r);
	memset(it.u.rot.noise_key, 0, 32);       /* small order */
	assert_int_equal(hl_item_encode_sign(&it, r, buf, sizeof(buf), &len), HL_EINVAL);
	make_rotation(&it, r);
	memset(it.u.rot.signing_key, 0, 32);
	it.u.rot.signing_key[0] = 1;              /* the neutral element */
	assert_int_equal(hl_item_encode_sign(&it, r, buf, sizeof(buf), &len), HL_EINVAL);
	/* a signer that never rotated has no previous key to sign with */
	make_rotation(&it, r);
	assert_int_equal(hl_item_encode_sign(&it, first, buf, sizeof(buf), &len), HL_ESTATE);
	hl_signer_free(r);
	hl_signer_free(first);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_message_round_trip),
		cmocka_unit_test(test_receipt_round_trip),
		cmocka_unit_test(test_every_byte_flip_fails),
		cmocka_unit_test(test_truncation_and_trailing),
		cmocka_unit_test(test_wrong_keys),
		cmocka_unit_test(test_context_separation),
		cmocka_unit_test(test_forbidden_values),
		cmocka_unit_test(test_salted_hash),
		cmocka_unit_test(test_precedence_names),
		cmocka_unit_test(test_new_kinds),
		cmocka_unit_test(test_new_kinds_context_separation),
		cmocka_unit_test(test_new_kinds_forbidden_values),
		cmocka_unit_test(test_rotation_layout),
		cmocka_unit_test(test_rotation_needs_the_new_key),
		cmocka_unit_test(test_rotation_forbidden_values),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
