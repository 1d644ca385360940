/* tests/unit/test_rotation.c — key rotation (docs/rotation.md): the chain
 * rule that accepts a rotation (chain/accept.c, hl_chain_rotation and
 * hl_chain_rotation_place), and `record verify` following a chain across
 * one and two rotations with nothing but the original cards; hostile
 * records: a rotation to keys nobody committed to (signed with the real
 * current key), items after a rotation signed with the old key, a
 * rotation without the new key's signature, a commitment taken away from
 * the card, evidence checked with the key of its position.
 *
 * HOTLINE_WRITE_SEED=FILE makes this program write the record of
 * rotated_history() to FILE (the fuzz_record_file seed "rotations") and
 * exit. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "chain/accept.h"
#include "test_record_fixture.h"
#include "util/err.h"

static int setup(void **state)
{
	(void)state;
	if (sodium_init() < 0)
		return -1;
	fx_rotating = true;
	fx_keys();
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	for (int i = 0; i < 3; i++)
		hl_signer_free(fx_signer[i]);
	return 0;
}

/* ---- the rule ---- */

/* A decoded rotation of station 0 by SIGNER R (rotated from station 0). */
static void rotation_of(const hl_signer *r, struct hl_item *it)
{
	memset(it, 0, sizeof(*it));
	it->kind = HL_ITEM_ROTATION;
	it->seq = 3;
	memcpy(it->author, fx_pk[0], 32);
	memcpy(it->counterpart, fx_pk[1], 32);
	memcpy(it->u.rot.noise_key, hl_signer_noise_pub(r), 32);
	memcpy(it->u.rot.signing_key, hl_signer_sign_pk(r), 32);
	assert_int_equal(hl_signer_next_hash(r, it->u.rot.next_hash), 0);
}

static void card_keys(int i, struct hl_chain_keys *k)
{
	uint8_t h[32];
	bool next = hl_signer_next_hash(fx_signer[i], h) == 0;
	hl_chain_keys_init(k, fx_nk[i], fx_pk[i], next ? h : NULL);
}

static void test_rule_committed_keys_only(void **state)
{
	(void)state;
	struct hl_chain_keys cur, theirs, after;
	struct hl_chain_why w;
	struct hl_item it;
	hl_signer *r = NULL, *rr = NULL;
	card_keys(0, &cur);
	card_keys(1, &theirs);
	hl_chain_why_init(&w, "washington's", "pyongyang's");
	assert_int_equal(hl_signer_rotated_for_tests(fx_signer[0], 1, &r), 0);
	rotation_of(r, &it);
	assert_int_equal(hl_chain_rotation(&it, &cur, &theirs, &w), HL_CHAIN_OK);
	hl_chain_keys_after(&it, &after);
	assert_memory_equal(after.sign, hl_signer_sign_pk(r), 32);
	assert_memory_equal(after.noise, hl_signer_noise_pub(r), 32);
	assert_true(after.has_next);

	/* the same rotation again, against the keys it made: its keys are not
	 * the new commitment (a replay moves nothing) */
	assert_int_equal(hl_chain_rotation(&it, &after, &theirs, &w), HL_CHAIN_REFUSE);
	assert_non_null(strstr(w.text, "not committed"));
	/* the second rotation meets the first one's commitment */
	assert_int_equal(hl_signer_rotated_for_tests(r, 2, &rr), 0);
	struct hl_item it2;
	rotation_of(rr, &it2);
	assert_int_equal(hl_chain_rotation(&it2, &after, &theirs, &w), HL_CHAIN_OK);
	/* ... but not the card's */
	assert_int_equal(hl_chain_rotation(&it2, &cur, &theirs, &w), HL_CHAIN_REFUSE);

	/* keys nobody committed to: refused, whoever signed it */
	it.u.rot.signing_key[5] ^= 1;
	assert_int_equal(hl_chain_rotation(&it, &cur, &theirs, &w), HL_CHAIN_REFUSE);
	assert_non_null(strstr(w.text, "rotates to keys that were not committed to"));
	it.u.rot.signing_key[5] ^= 1;
	it.u.rot.noise_key[0] ^= 1;
	assert_int_equal(hl_chain_rotation(&it, &cur, &theirs, &w), HL_CHAIN_REFUSE);
	it.u.rot.noise_key[0] ^= 1;
	/* a card without NextKeyHash: nothing to reveal */
	struct hl_chain_keys bare;
	hl_chain_keys_init(&bare, fx_nk[0], fx_pk[0], NULL);
	assert_int_equal(hl_chain_rotation(&it, &bare, &theirs, &w), HL_CHAIN_REFUSE);
	assert_non_null(strstr(w.text, "washington's card committed to no next keys"));
	/* to a key it has, or to the other station's: refused even when
	 * committed (the card's commitment is made to match here) */
	struct hl_chain_keys odd = cur;
	memcpy(it.u.rot.signing_key, cur.sign, 32);
	hl_next_hash(it.u.rot.noise_key, it.u.rot.signing_key, odd.next_hash);
	assert_int_equal(hl_chain_rotation(&it, &odd, &theirs, &w), HL_CHAIN_REFUSE);
	assert_non_null(strstr(w.text, "a key it has already"));
	memcpy(it.u.rot.signing_key, theirs.sign, 32);
	hl_next_hash(it.u.rot.noise_key, it.u.rot.signing_key, odd.next_hash);
	assert_int_equal(hl_chain_rotation(&it, &odd, &theirs, &w), HL_CHAIN_REFUSE);
	assert_non_null(strstr(w.text, "a key of pyongyang's station"));
	hl_signer_free(rr);
	hl_signer_free(r);
}

static void test_rule_place(void **state)
{
	(void)state;
	struct hl_chain_why w;
	hl_chain_why_init(&w, NULL, NULL);
	assert_int_equal(hl_chain_rotation_place(5, 4, 4, 0, &w), HL_CHAIN_OK);
	assert_int_equal(hl_chain_rotation_place(5, 4, 5, 0, &w), HL_CHAIN_OK); /* itself */
	/* a gap before it: another rotation may be there */
	assert_int_equal(hl_chain_rotation_place(5, 3, 3, 0, &w), HL_CHAIN_LATER);
	/* items held after it were signed with the keys it replaces */
	assert_int_equal(hl_chain_rotation_place(5, 4, 9, 0, &w), HL_CHAIN_REFUSE);
	assert_non_null(strstr(w.text, "items after it (up to 9)"));
	assert_int_equal(hl_chain_rotation_place(5, 3, 9, 0, &w), HL_CHAIN_REFUSE);
	assert_int_equal(hl_chain_rotation_place(5, 4, 4, HL_CHAIN_MAX_ROTATIONS, &w),
			 HL_CHAIN_REFUSE);
}

/* ---- record verify across rotations ---- */

/* Verifies BUF with the original cards of stations 0 and 1. */
static int verify(const uint8_t *buf, size_t len, char *why, size_t whylen)
{
	return fx_check(buf, len, 0, 1, why, whylen);
}

/* H, written, fails to verify with a reason that contains NEEDLE; H is
 * freed. */
static void expect_refused(struct fx_hist *h, const char *needle)
{
	uint8_t *buf;
	size_t len;
	char why[640];
	fx_write(h, NULL, &buf, &len);
	assert_true(verify(buf, len, why, sizeof(why)) < 0);
	if (!strstr(why, needle))
		fail_msg("refused for '%s', not '%s'", why, needle);
	free(buf);
	fx_free(h);
}

static void note_cat(void *arg, const char *line)
{
	char *notes = arg;
	strncat(notes, line, 4000 - strlen(notes) - 2);
	strcat(notes, "\n");
}

/* A history: both stations talk, pyongyang (chain 1) rotates twice and
 * washington (chain 0, the exporter) once, with messages and receipts
 * before, between and after. */
static struct fx_hist *rotated_history(void)
{
	struct fx_hist *h = fx_new();
	uint64_t m1 = fx_message(h, 1, HL_PREC_ROUTINE, "before", "before any rotation", 0, true);
	fx_message(h, 0, HL_PREC_FLASH, "w1", "from washington", 0, true);
	fx_receipt(h, 0, &m1, 1);
	fx_rotation(h, 1, HL_ROTATE_ROUTINE);
	uint64_t m2 = fx_message(h, 1, HL_PREC_FLASH, "between", "after the first", 0, true);
	fx_receipt(h, 0, &m2, 1);
	fx_rotation(h, 0, HL_ROTATE_COMPROMISE);
	uint64_t w2 = fx_message(h, 0, HL_PREC_ROUTINE, "w2", "washington's new key", 0, true);
	fx_receipt(h, 1, &w2, 1);
	fx_rotation(h, 1, HL_ROTATE_ROUTINE);
	uint64_t m3 = fx_message(h, 1, HL_PREC_ROUTINE, "after", "after the second", 0, true);
	fx_receipt(h, 0, &m3, 1);
	return h;
}

static void test_verify_across_rotations(void **state)
{
	(void)state;
	struct fx_hist *h = rotated_history();
	uint8_t *buf;
	size_t len;
	char why[640], notes[4000] = "";
	fx_write(h, NULL, &buf, &len);
	assert_int_equal(verify(buf, len, why, sizeof(why)), 0);
	/* the notes name each rotation and the new fingerprint */
	struct hl_record *rec = NULL;
	struct hl_record_verdict v;
	hl_card a, b;
	fx_card(0, &a);
	fx_card(1, &b);
	assert_int_equal(hl_record_parse(buf, len, &rec, why, sizeof(why)), 0);
	assert_int_equal(hl_record_verify(rec, &a, &b, note_cat, notes, &v), 0);
	assert_non_null(strstr(notes, "pyongyang's entry 2: pyongyang rotated its keys;"));
	assert_non_null(strstr(notes, "washington rotated its keys (compromise suspected)"));
	assert_non_null(strstr(notes, "pyongyang's entry 5: pyongyang rotated its keys"));
	assert_int_equal(v.items[0], h->n[0]);
	assert_int_equal(v.items[1], h->n[1]);
	hl_record_free(rec);
	free(buf);

	/* read in small batches too: a rotation inside a batch re-checks the
	 * items after it with the new key */
	for (uint32_t batch = 1; batch <= 3; batch++) {
		hl_record_verify_batch = batch;
		fx_write(h, NULL, &buf, &len);
		if (verify(buf, len, why, sizeof(why)) != 0)
			fail_msg("batch %u: %s", batch, why);
		free(buf);
	}
	hl_record_verify_batch = HL_RECORD_VERIFY_BATCH;

	/* sealed with washington's key before its rotation: the seal is
	 * checked with the key at the end of its chain */
	hl_signer *now = h->key[0];
	h->key[0] = NULL; /* fx_key: washington's card's signer */
	fx_write(h, NULL, &buf, &len);
	h->key[0] = now;
	assert_true(verify(buf, len, why, sizeof(why)) < 0);
	assert_non_null(strstr(why, "seal does not verify with washington's SigningKey (its key "
				    "since its last rotation)"));
	free(buf);
	fx_free(h);
}

/* A thief with pyongyang's current key (not its next keys) rotates it to
 * keys of its own: the verifier refuses the record at that entry. */
static void test_verify_refuses_uncommitted_rotation(void **state)
{
	(void)state;
	struct fx_hist *h = fx_new();
	fx_message(h, 1, HL_PREC_ROUTINE, "before", "x", 0, true);
	fx_rotation_forged(h, 1);
	expect_refused(h, "pyongyang's entry 2 (rotation): rotates to keys that were not "
		       "committed to");
}

/* After the rotation, an item signed with the old key (a thief's, or the
 * owner's mistake) fails: the chain's key moved. */
static void test_verify_refuses_old_key_after_rotation(void **state)
{
	(void)state;
	struct fx_hist *h = fx_new();
	fx_message(h, 1, HL_PREC_ROUTINE, "before", "x", 0, true);
	fx_rotation(h, 1, HL_ROTATE_ROUTINE);
	fx_message(h, 1, HL_PREC_ROUTINE, "good", "new key", 0, true);
	/* the next one with the old key, by hand */
	hl_signer *saved = h->key[1];
	h->key[1] = NULL; /* fx_key: the card's signer */
	fx_message(h, 1, HL_PREC_ROUTINE, "bad", "old key", 0, true);
	h->key[1] = saved;
	expect_refused(h, "pyongyang's entry 4: the signature does not verify with pyongyang's "
		       "SigningKey since its rotation at entry 2");
}

/* A rotation whose new key did not sign it (new_sig by the old key) is
 * refused, and so is a record whose cards lost their commitment. */
static void test_verify_refuses_rotation_without_new_key_and_bare_cards(void **state)
{
	(void)state;
	struct fx_hist *h = fx_new();
	uint8_t *buf;
	size_t len;
	char why[640];
	fx_message(h, 1, HL_PREC_ROUTINE, "before", "x", 0, true);
	uint64_t r = fx_rotation(h, 1, HL_ROTATE_ROUTINE);
	struct fx_ent *e = &h->e[1][r - 1];
	/* new_sig re-made by the old key, the item re-signed by it */
	uint8_t msg[512];
	size_t body = e->len - 128;
	memcpy(msg, HL_CTX_ROTATION_NEW, sizeof(HL_CTX_ROTATION_NEW));
	memcpy(msg + sizeof(HL_CTX_ROTATION_NEW), e->item, body);
	crypto_sign_detached(e->item + body, NULL, msg, sizeof(HL_CTX_ROTATION_NEW) + body,
			     fx_sk[1]);
	crypto_sign_detached(e->item + e->len - 64, NULL, e->item, e->len - 64, fx_sk[1]);
	hl_item_hash(e->item, e->len, e->hash);
	expect_refused(h, "pyongyang's entry 2: the rotation's signature by its new key does not "
		       "verify");

	/* the honest rotation, verified against cards without NextKeyHash:
	 * the cards do not match the record's (the commitment is part of the
	 * card), and a record whose cards have none cannot rotate */
	h = fx_new();
	fx_message(h, 1, HL_PREC_ROUTINE, "before", "x", 0, true);
	fx_rotation(h, 1, HL_ROTATE_ROUTINE);
	fx_write(h, NULL, &buf, &len);
	struct hl_record *rec = NULL;
	struct hl_record_verdict v;
	hl_card a, b;
	fx_card(0, &a);
	fx_card(1, &b);
	b.has_next = false;
	assert_int_equal(hl_record_parse(buf, len, &rec, why, sizeof(why)), 0);
	assert_int_equal(hl_record_verify(rec, &a, &b, NULL, NULL, &v), HL_EPEER);
	hl_record_free(rec);
	free(buf);
	fx_free(h);
}

/* Evidence is checked with the key of its position: a second item at a
 * position after the rotation, signed with the new key, proves a fork;
 * the same made with the old key proves nothing and fails the record. */
static void test_evidence_after_rotation(void **state)
{
	(void)state;
	struct fx_hist *h = fx_new();
	uint8_t *buf;
	size_t len;
	char why[640];
	fx_message(h, 1, HL_PREC_ROUTINE, "before", "x", 0, true);
	fx_rotation(h, 1, HL_ROTATE_ROUTINE);
	fx_message(h, 1, HL_PREC_ROUTINE, "one", "the one in the chain", 0, true);
	/* the second item at position 3: made in a scratch history */
	struct fx_hist *g = fx_new();
	memcpy(g->e[1], h->e[1], sizeof(h->e[1][0]) * 2);
	g->n[1] = 2;
	g->t = h->t + 5;
	g->class_seq[1][HL_PREC_ROUTINE] = 1;
	g->key[1] = h->key[1];
	fx_message(g, 1, HL_PREC_ROUTINE, "two", "another at 3", 0, true);
	g->key[1] = NULL;
	h->ev[0] = g->e[1][2];
	h->ev_chain[0] = 1;
	h->nev = 1;
	fx_write(h, NULL, &buf, &len);
	if (verify(buf, len, why, sizeof(why)) != 0)
		fail_msg("%s", why);
	free(buf);
	/* with the old key */
	g->n[1] = 2;
	g->class_seq[1][HL_PREC_ROUTINE] = 1;
	fx_message(g, 1, HL_PREC_ROUTINE, "two", "another at 3", 0, true);
	h->ev[0] = g->e[1][2];
	fx_write(h, NULL, &buf, &len);
	assert_true(verify(buf, len, why, sizeof(why)) < 0);
	assert_non_null(strstr(why, "evidence 1"));
	free(buf);
	free(g);
	fx_free(h);
}

/* The seed of fuzz/corpus/fuzz_record_file/rotations. */
static int write_seed(const char *path)
{
	struct fx_hist *h = rotated_history();
	uint8_t *buf;
	size_t len;
	fx_write(h, NULL, &buf, &len);
	FILE *f = fopen(path, "wb");
	int ret = f && fwrite(buf, 1, len, f) == len ? 0 : 1;
	if (f && fclose(f) != 0)
		ret = 1;
	free(buf);
	fx_free(h);
	return ret;
}

int main(void)
{
	const char *seed = getenv("HOTLINE_WRITE_SEED");
	if (seed && *seed) {
		int r = setup(NULL) < 0 ? 1 : write_seed(seed);
		teardown(NULL);
		return r;
	}
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rule_committed_keys_only),
		cmocka_unit_test(test_rule_place),
		cmocka_unit_test(test_verify_across_rotations),
		cmocka_unit_test(test_verify_refuses_uncommitted_rotation),
		cmocka_unit_test(test_verify_refuses_old_key_after_rotation),
		cmocka_unit_test(test_verify_refuses_rotation_without_new_key_and_bare_cards),
		cmocka_unit_test(test_evidence_after_rotation),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
