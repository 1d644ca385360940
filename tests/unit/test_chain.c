/* tests/unit/test_chain.c — the chain rules (chain/accept.h): each rule
 * holds for what fits and fails, with its verdict and a reason naming the
 * values, for what does not.  The engine and `record verify` call these
 * very functions; tests/integration/test_chain_rules.py drives both. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "chain/accept.h"

static void hashof(uint8_t h[HL_HASH_LEN], int v)
{
	memset(h, v, HL_HASH_LEN);
}

static struct hl_chain_ref item_ref(int hash, int prev)
{
	struct hl_chain_ref r = { .held = true, .item = true, .kind = HL_ITEM_MESSAGE };
	hashof(r.hash, hash);
	hashof(r.prev, prev);
	return r;
}

static void test_window(void **state)
{
	(void)state;
	struct hl_chain_why w;
	hl_chain_why_init(&w, NULL, NULL);
	assert_int_equal(hl_chain_window(1, 0, &w), HL_CHAIN_OK);
	assert_int_equal(hl_chain_window(HL_CHAIN_WINDOW, 0, &w), HL_CHAIN_OK);
	assert_int_equal(hl_chain_window(HL_CHAIN_WINDOW + 1, 0, &w), HL_CHAIN_LATER);
	assert_non_null(strstr(w.text, "seq 65537 is more than 65536 past the contiguous head 0"));
	assert_int_equal(hl_chain_window(UINT64_C(1) << 40, 5, &w), HL_CHAIN_LATER);
	assert_int_equal(hl_chain_window(3, 10, &w), HL_CHAIN_OK);   /* behind: a resend */
	assert_int_equal(hl_chain_window(UINT64_MAX, UINT64_MAX - 1, &w), HL_CHAIN_OK);
}

static void test_links(void **state)
{
	(void)state;
	struct hl_chain_why w;
	struct hl_item it = { .kind = HL_ITEM_MESSAGE, .seq = 5 };
	uint8_t h[HL_HASH_LEN];
	hashof(it.prev, 4);
	hashof(h, 5);
	hl_chain_why_init(&w, NULL, NULL);
	struct hl_chain_ref before = item_ref(4, 3), after = item_ref(6, 5), none = { 0 };
	assert_int_equal(hl_chain_links(&it, h, &before, &after, &w), HL_CHAIN_OK);
	assert_int_equal(hl_chain_links(&it, h, &none, &none, &w), HL_CHAIN_OK);
	assert_int_equal(hl_chain_links(&it, h, NULL, NULL, &w), HL_CHAIN_OK);
	/* a prev that names another item 4 than the signed one held: a fork */
	hashof(it.prev, 0x44);
	assert_int_equal(hl_chain_links(&it, h, &before, NULL, &w), HL_CHAIN_FORK);
	assert_non_null(strstr(w.text, "does not link to entry 4 (its prev is 4444"));
	assert_int_equal(w.against, 4);   /* the evidence's other half */
	/* over a tombstone it proves nothing: refused */
	before.item = false;
	assert_int_equal(hl_chain_links(&it, h, &before, NULL, &w), HL_CHAIN_REFUSE);
	/* the item after it commits to another item 5 */
	hashof(it.prev, 4);
	after.prev[0] ^= 1;
	assert_int_equal(hl_chain_links(&it, h, NULL, &after, &w), HL_CHAIN_FORK);
	assert_non_null(strstr(w.text, "entry 6 does not link to it"));
	assert_int_equal(w.against, 6);
	/* seq 1 has no link to check */
	struct hl_item first = { .kind = HL_ITEM_MESSAGE, .seq = 1 };
	assert_int_equal(hl_chain_links(&first, h, &before, NULL, &w), HL_CHAIN_OK);
}

static void test_proves_fork(void **state)
{
	(void)state;
	struct hl_chain_why w;
	struct hl_item it = { .kind = HL_ITEM_MESSAGE, .seq = 5 };
	uint8_t h[HL_HASH_LEN];
	hashof(it.prev, 4);
	hashof(h, 0x55);
	hl_chain_why_init(&w, "pyongyang's", NULL);
	struct hl_chain_ref at = item_ref(5, 4), before = item_ref(4, 3), after = item_ref(6, 5);
	assert_true(hl_chain_proves_fork(&it, h, &at, &before, &after, &w));
	assert_non_null(strstr(w.text, "two different items as number 5"));
	assert_int_equal(w.against, 5);
	/* the same item proves nothing */
	hashof(h, 5);
	assert_false(hl_chain_proves_fork(&it, h, &at, &before, &after, &w));
	assert_non_null(strstr(w.text, "the same item as pyongyang's entry 5"));
	/* position open, but its prev contradicts the signed item before */
	struct hl_chain_ref none = { 0 };
	hashof(it.prev, 0x44);
	assert_true(hl_chain_proves_fork(&it, h, &none, &before, NULL, &w));
	assert_non_null(strstr(w.text, "as number 4"));
	assert_int_equal(w.against, 4);
	/* ... or the item after does not link to it */
	hashof(it.prev, 4);
	hashof(h, 0x55);
	assert_true(hl_chain_proves_fork(&it, h, &none, &before, &after, &w));
	assert_int_equal(w.against, 6);
	/* a tombstone's hash alone proves nothing; confirmed by the next link
	 * it does */
	struct hl_chain_ref tomb = { .held = true };
	hashof(tomb.hash, 9);
	hashof(h, 0x55);
	struct hl_chain_ref next = item_ref(6, 0x66);
	assert_false(hl_chain_proves_fork(&it, h, &tomb, &before, &next, &w) &&
		     memcmp(next.prev, h, HL_HASH_LEN) == 0);
	hashof(next.prev, 9);
	assert_true(hl_chain_proves_fork(&it, h, &tomb, NULL, &next, &w));
}

static void test_class(void **state)
{
	(void)state;
	struct hl_chain_why w;
	struct hl_item_message m = { .precedence = HL_PREC_ROUTINE, .class_seq = 5 };
	hl_chain_why_init(&w, NULL, NULL);
	struct hl_chain_class_ref below = { true, 3, 4 }, above = { true, 9, 7 };
	assert_int_equal(hl_chain_class(&m, 6, &below, &above, &w), HL_CHAIN_OK);
	assert_int_equal(hl_chain_class(&m, 6, NULL, NULL, &w), HL_CHAIN_OK);
	/* gaps allowed */
	below.class_seq = 1;
	assert_int_equal(hl_chain_class(&m, 6, &below, NULL, &w), HL_CHAIN_OK);
	/* a repeat */
	below.class_seq = 5;
	assert_int_equal(hl_chain_class(&m, 6, &below, NULL, &w), HL_CHAIN_REFUSE);
	assert_non_null(strstr(w.text, "routine message number 5 comes after number 5"));
	/* a step back */
	below.class_seq = 8;
	assert_int_equal(hl_chain_class(&m, 6, &below, NULL, &w), HL_CHAIN_REFUSE);
	/* the highest lower class_seq sits at a later position */
	below = (struct hl_chain_class_ref){ true, 8, 4 };
	assert_int_equal(hl_chain_class(&m, 6, &below, NULL, &w), HL_CHAIN_REFUSE);
	/* the lowest higher-or-equal one sits before it, or is the same */
	below.held = false;
	above = (struct hl_chain_class_ref){ true, 2, 7 };
	assert_int_equal(hl_chain_class(&m, 6, &below, &above, &w), HL_CHAIN_REFUSE);
	above = (struct hl_chain_class_ref){ true, 9, 5 };
	assert_int_equal(hl_chain_class(&m, 6, &below, &above, &w), HL_CHAIN_REFUSE);
}

static void test_head(void **state)
{
	(void)state;
	struct hl_chain_why w;
	uint8_t ph[HL_HASH_LEN], zero[HL_HASH_LEN] = { 0 };
	hashof(ph, 7);
	hl_chain_why_init(&w, NULL, "washington's");
	struct hl_chain_head_ref below = { true, 3, 5 }, above = { true, 9, 8 };
	struct hl_chain_ref target = item_ref(7, 6), none = { 0 };
	assert_int_equal(hl_chain_head(6, 7, ph, &below, &above, &target, &w), HL_CHAIN_OK);
	assert_int_equal(hl_chain_head(6, 0, zero, NULL, NULL, NULL, &w), HL_CHAIN_OK);
	/* backwards, after an earlier item */
	assert_int_equal(hl_chain_head(6, 4, ph, &below, NULL, &target, &w), HL_CHAIN_REFUSE);
	assert_non_null(strstr(w.text, "says it holds washington's chain up to 4, after an "
				       "earlier item said 5"));
	assert_false(w.cross);
	/* ahead of a later item */
	assert_int_equal(hl_chain_head(6, 9, ph, NULL, &above, &target, &w), HL_CHAIN_REFUSE);
	/* a position not held, or another hash: a reference into the other chain */
	assert_int_equal(hl_chain_head(6, 7, ph, NULL, NULL, &none, &w), HL_CHAIN_REFUSE);
	assert_true(w.cross);
	hashof(target.hash, 8);
	assert_int_equal(hl_chain_head(6, 7, ph, NULL, NULL, &target, &w), HL_CHAIN_REFUSE);
	assert_non_null(strstr(w.text, "names washington's entry 7 with hash 0707"));
}

/* The other chain for the receipt rule: positions 1..4, kinds by position,
 * hash = position, position 2 acknowledged already. */
static int other(void *arg, uint64_t seq, struct hl_chain_ref *ref)
{
	(void)arg;
	memset(ref, 0, sizeof(*ref));
	if (seq == 0 || seq > 4)
		return 0;
	ref->held = true;
	ref->item = seq != 4;
	ref->kind = seq == 3 ? HL_ITEM_RECEIPT : HL_ITEM_MESSAGE;
	hashof(ref->hash, (int)seq);
	return 0;
}

static int acked(void *arg, uint64_t seq, bool *yes)
{
	(void)arg;
	*yes = seq == 2;
	return 0;
}

static void test_receipt(void **state)
{
	(void)state;
	struct hl_chain_why w;
	struct hl_chain_lookup look = { .other = other, .acked = acked };
	struct hl_item_receipt r = { .count = 1 };
	hl_chain_why_init(&w, NULL, NULL);
	r.entries[0].seq = 1;
	hashof(r.entries[0].hash, 1);
	assert_int_equal(hl_chain_receipt(&r, &look, &w), HL_CHAIN_OK);
	/* wrong hash */
	hashof(r.entries[0].hash, 9);
	assert_int_equal(hl_chain_receipt(&r, &look, &w), HL_CHAIN_REFUSE);
	assert_non_null(strstr(w.text, "acknowledges the other chain's entry 1 with hash 0909"));
	/* acknowledged already */
	r.entries[0].seq = 2;
	hashof(r.entries[0].hash, 2);
	assert_int_equal(hl_chain_receipt(&r, &look, &w), HL_CHAIN_REFUSE);
	assert_non_null(strstr(w.text, "acknowledged already"));
	/* not a message */
	r.entries[0].seq = 3;
	hashof(r.entries[0].hash, 3);
	assert_int_equal(hl_chain_receipt(&r, &look, &w), HL_CHAIN_REFUSE);
	assert_non_null(strstr(w.text, "a receipt: a receipt acknowledges messages only"));
	/* refused, and not there */
	r.entries[0].seq = 4;
	assert_int_equal(hl_chain_receipt(&r, &look, &w), HL_CHAIN_REFUSE);
	r.entries[0].seq = 5;
	assert_int_equal(hl_chain_receipt(&r, &look, &w), HL_CHAIN_REFUSE);
	/* twice in one receipt */
	r.count = 2;
	r.entries[0].seq = r.entries[1].seq = 1;
	hashof(r.entries[0].hash, 1);
	hashof(r.entries[1].hash, 1);
	assert_int_equal(hl_chain_receipt(&r, &look, &w), HL_CHAIN_REFUSE);
	assert_non_null(strstr(w.text, "entry 1 twice"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_window),
		cmocka_unit_test(test_links),
		cmocka_unit_test(test_proves_fork),
		cmocka_unit_test(test_class),
		cmocka_unit_test(test_head),
		cmocka_unit_test(test_receipt),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
