/* tests/unit/test_record_reader.c — the record read in bounded memory
 * (record/reader.h): a long two-chain history (messages, receipts that
 * acknowledge out of order, line checks and answers, a refused and a
 * missing position) verified and shown with the default index and cache,
 * then again with a two-checkpoint index (thinned over and over), a
 * one-slot cache and a one-entry reference window: the verdict and every
 * line of `show` must be the same; and every entry looked up by position,
 * in a random order, is the one the in-order cursor reads.  Verify checks
 * signatures a batch of entries ahead (record/verify.h): with batches of
 * 1 and 7 entries the verdict is the same, and a bad signature on either
 * side of a batch's edge is reported as the same entry with the same
 * words. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "record/reader.h"
#include "record/show.h"
#include "record/verify.h"
#include "test_record_fixture.h"

enum { W = 0, P = 1, MSGS = 600 };

static struct fx_hist *long_history(void)
{
	struct fx_hist *h = fx_new();
	uint64_t acks[4];
	unsigned na = 0;
	char subject[32], body[64];
	for (unsigned i = 0; i < MSGS; i++) {
		snprintf(subject, sizeof(subject), "note %u", i);
		snprintf(body, sizeof(body), "line one of %u\nline two", i);
		uint64_t seq = fx_message(h, W, i % HL_PREC_COUNT, subject, body, i % 97 == 0,
					  i % 3 != 0);
		/* receipts come late and out of order: every fourth, backwards */
		acks[3 - na++] = seq;
		if (na == 4) {
			fx_receipt(h, P, acks, 4);
			na = 0;
		}
		if (i % 50 == 10) {
			uint64_t chk = fx_line_check(h, W, i % 100 == 10, true);
			fx_answer(h, P, chk, 0);
			if (i % 100 == 10)
				fx_answer(h, P, chk, 1);
		}
		if (i % 40 == 5) {
			uint64_t m = fx_message(h, P, HL_PREC_FLASH, "reply", "noted", 0, true);
			fx_receipt(h, W, &m, 1);
		}
		if (i == 300)
			fx_missing(h, P, 4);
	}
	return h;
}

static char *show_text(const uint8_t *buf, size_t len, int *verdict)
{
	struct hl_record *rec;
	char why[640], *text = NULL;
	size_t tlen = 0;
	assert_int_equal(hl_record_parse(buf, len, &rec, why, sizeof(why)), 0);
	FILE *f = open_memstream(&text, &tlen);
	*verdict = hl_record_show(rec, f);
	fclose(f);
	hl_record_free(rec);
	return text;
}

/* Entries looked up by position, in a scrambled order, against the cursor. */
static void lookups_match_the_cursor(const uint8_t *buf, size_t len)
{
	struct hl_record *rec;
	char why[640];
	assert_int_equal(hl_record_parse(buf, len, &rec, why, sizeof(why)), 0);
	for (unsigned c = 0; c < 2; c++) {
		size_t n = rec->n[c];
		struct hl_record_entry *all = xcalloc(n + 1, sizeof(*all)), e;
		const uint8_t *item;
		hl_record_cursor *cur;
		assert_int_equal(hl_record_chain_open(rec, c, &cur), 0);
		for (size_t k = 1; hl_record_chain_next(cur, &all[k], &item) == 1; k++)
			;
		hl_record_cursor_free(cur);
		for (size_t i = 0; i < 3 * n; i++) {
			uint64_t k = 1 + (i * 7919 + (i >> 3) * 104729) % n;
			assert_int_equal(hl_record_entry_get(rec, c, k, &e), 0);
			if (memcmp(&e, &all[k], sizeof(e)) != 0)
				fail_msg("chain %u entry %llu: looked up, not as read in order", c,
					 (unsigned long long)k);
		}
		free(all);
	}
	hl_record_free(rec);
}

static void test_small_index_and_cache_change_nothing(void **state)
{
	(void)state;
	struct fx_hist *h = long_history();
	uint8_t *buf;
	size_t len;
	fx_write(h, NULL, &buf, &len);
	char why[640];
	assert_int_equal(fx_check(buf, len, 0, 1, why, sizeof(why)), 0);
	int v0, v1;
	char *want = show_text(buf, len, &v0);
	lookups_match_the_cursor(buf, len);
	assert_int_equal(v0, 0);
	assert_non_null(strstr(want, "Receipt:  pyongyang's #"));
	assert_non_null(strstr(want, "Person:   pyongyang's #"));

	hl_record_ckpt_max = 2;
	hl_record_cache_max = 1;
	hl_record_show_window = 1;
	hl_record_verify_batch = 7;
	assert_int_equal(fx_check(buf, len, 0, 1, why, sizeof(why)), 0);
	hl_record_verify_batch = 1;
	assert_int_equal(fx_check(buf, len, 0, 1, why, sizeof(why)), 0);
	char *got = show_text(buf, len, &v1);
	lookups_match_the_cursor(buf, len);
	hl_record_ckpt_max = HL_RECORD_CKPT_MAX;
	hl_record_cache_max = HL_RECORD_CACHE_SLOTS;
	hl_record_show_window = 1u << 16;
	hl_record_verify_batch = HL_RECORD_VERIFY_BATCH;
	assert_int_equal(v1, v0);
	if (strcmp(want, got) != 0) {
		size_t i = 0;
		while (want[i] == got[i])
			i++;
		fail_msg("show differs at byte %zu: '%.80s' vs '%.80s'", i, want + i, got + i);
	}
	/* a forged byte still fails the same way with either */
	buf[len / 2] ^= 1;
	char why2[640];
	int r1 = fx_check(buf, len, 0, 1, why, sizeof(why));
	hl_record_ckpt_max = 2;
	hl_record_cache_max = 1;
	int r2 = fx_check(buf, len, 0, 1, why2, sizeof(why2));
	hl_record_ckpt_max = HL_RECORD_CKPT_MAX;
	hl_record_cache_max = HL_RECORD_CACHE_SLOTS;
	assert_int_not_equal(r1, 0);
	assert_int_equal(r1, r2);
	assert_string_equal(why, why2);
	free(want);
	free(got);
	free(buf);
	free(h);
}

/* The byte offset of chain C's entry K's signature in the record BUF. */
static size_t sig_offset(const uint8_t *buf, size_t len, unsigned c, uint64_t k)
{
	struct hl_record *rec;
	struct hl_record_entry e;
	char why[640];
	assert_int_equal(hl_record_parse(buf, len, &rec, why, sizeof(why)), 0);
	assert_int_equal(hl_record_entry_get(rec, c, k, &e), 0);
	assert_int_equal(e.type, HL_RECORD_ITEM);
	hl_record_free(rec);
	return (size_t)(e.item_off + e.len - HL_SIG_LEN);
}

static void test_bad_signature_at_batch_edges(void **state)
{
	(void)state;
	struct fx_hist *h = long_history();
	uint8_t *buf;
	size_t len;
	fx_write(h, NULL, &buf, &len);
	struct { unsigned c; uint64_t k; } at[] = {
		{ W, 1 }, { W, 6 }, { W, 7 }, { W, 8 }, { W, 14 }, { W, 15 },
		{ W, h->n[W] }, { P, 1 }, { P, 7 }, { P, 8 }, { P, h->n[P] },
	};
	for (size_t i = 0; i < sizeof(at) / sizeof(at[0]); i++) {
		uint8_t *bad = xmalloc(len);
		memcpy(bad, buf, len);
		bad[sig_offset(buf, len, at[i].c, at[i].k) + 5] ^= 0x20;
		assert_int_equal(hl_record_reseal(bad, len, fx_signer[W]), 0); /* the seal holds: the item fails */
		char want[96], why[3][640];
		int r[3];
		uint32_t batch[3] = { HL_RECORD_VERIFY_BATCH, 7, 1 };
		for (int b = 0; b < 3; b++) {
			hl_record_verify_batch = batch[b];
			r[b] = fx_check(bad, len, 0, 1, why[b], sizeof(why[b]));
		}
		hl_record_verify_batch = HL_RECORD_VERIFY_BATCH;
		snprintf(want, sizeof(want), "%s's entry %llu: the signature does not verify",
			 fx_names[at[i].c], (unsigned long long)at[i].k);
		if (strstr(why[0], want) != why[0])
			fail_msg("chain %u entry %llu: '%s', not '%s...'", at[i].c,
				 (unsigned long long)at[i].k, why[0], want);
		for (int b = 1; b < 3; b++) {
			assert_int_equal(r[b], r[0]);
			assert_string_equal(why[b], why[0]);
		}
		free(bad);
	}
	free(buf);
	free(h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_small_index_and_cache_change_nothing),
		cmocka_unit_test(test_bad_signature_at_batch_edges),
	};
	if (sodium_init() < 0)
		return 1;
	fx_keys();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
