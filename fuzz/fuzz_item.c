/* fuzz/fuzz_item.c — libFuzzer target for the item decoder (msg/item.c)
 * and the chain rules over what it decodes (chain/accept.c).
 * Whatever decodes must re-encode to exactly the same bytes: one encoding
 * per item, hence one hash per item; whatever does not decode names the
 * rule it breaks.  A decoded item is then put through every chain rule
 * against neighbours made from its own fields (so that the rules' "fits"
 * cases are reached, not only their refusals): an item always links to a
 * neighbour built to fit it, and never proves a fork against itself.
 * Seeds cover every kind: message, receipt, check, answer, agreement,
 * countersign, call, rotation (whose rule is met by a chain that committed
 * to its keys and refused by one that did not). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "chain/accept.h"
#include "crypto/keys.h"
#include "msg/item.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int other(void *arg, uint64_t seq, struct hl_chain_ref *ref)
{
	const struct hl_item *it = arg;
	memset(ref, 0, sizeof(*ref));
	ref->held = seq % 3 != 0;
	ref->item = seq % 5 != 0;
	ref->kind = (enum hl_item_kind)(1 + seq % HL_ITEM_KIND_MAX);
	memcpy(ref->hash, it->prev, HL_HASH_LEN);
	return 0;
}

static int acked(void *arg, uint64_t seq, bool *yes)
{
	(void)arg;
	*yes = seq % 7 == 0;
	return 0;
}

/* A chain at other keys that committed to a rotation's keys accepts it;
 * one that committed to anything else, or to nothing, does not. */
static void rotation_rules(const struct hl_item *it, struct hl_chain_why *w)
{
	struct hl_chain_keys cur, after;
	uint8_t h[32], k1[32], k2[32];
	memset(k1, 0x11, sizeof(k1));
	memset(k2, 0x22, sizeof(k2));
	hl_next_hash(it->u.rot.noise_key, it->u.rot.signing_key, h);
	hl_chain_keys_init(&cur, k1, k2, h);
	int v = hl_chain_rotation(it, &cur, NULL, w);
	bool own_keys = memcmp(it->u.rot.noise_key, k1, 32) == 0 ||
			memcmp(it->u.rot.signing_key, k2, 32) == 0;
	if (v != (own_keys ? HL_CHAIN_REFUSE : HL_CHAIN_OK))
		abort();
	hl_chain_keys_after(it, &after);
	if (memcmp(after.sign, it->u.rot.signing_key, 32) != 0 || !after.has_next)
		abort();
	cur.next_hash[0] ^= 1;
	if (hl_chain_rotation(it, &cur, NULL, w) != HL_CHAIN_REFUSE)
		abort();
	cur.has_next = false;
	if (hl_chain_rotation(it, &cur, NULL, w) != HL_CHAIN_REFUSE)
		abort();
	if (hl_chain_rotation_place(it->seq, it->seq - 1, it->seq - 1, 0, w) != HL_CHAIN_OK ||
	    hl_chain_rotation_place(it->seq, it->seq - 1, it->seq + 1, 0, w) !=
		    HL_CHAIN_REFUSE)
		abort();
}

static void rules(const struct hl_item *it, const uint8_t *data, size_t size)
{
	uint8_t hash[HL_HASH_LEN];
	struct hl_chain_why w;
	hl_item_hash(data, size, hash);
	hl_chain_why_init(&w, "a's", "b's");
	/* neighbours that fit */
	struct hl_chain_ref before = { .held = true, .item = true }, after = before, at = before;
	memcpy(before.hash, it->prev, HL_HASH_LEN);
	memcpy(after.prev, hash, HL_HASH_LEN);
	memcpy(at.hash, hash, HL_HASH_LEN);
	if (hl_chain_links(it, hash, &before, &after, &w) != HL_CHAIN_OK)
		abort();
	if (hl_chain_proves_fork(it, hash, &at, &before, &after, &w))
		abort();
	/* and one that does not */
	before.hash[0] ^= 1;
	int v = hl_chain_links(it, hash, &before, NULL, &w);
	if ((it->seq > 1) != (v == HL_CHAIN_FORK))
		abort();
	(void)hl_chain_window(it->seq, it->time_ms, &w);
	if (it->kind == HL_ITEM_MESSAGE) {
		struct hl_chain_class_ref below = { true, it->seq - 1, it->u.msg.class_seq - 1 };
		if (hl_chain_class(&it->u.msg, it->seq, &below, NULL, &w) != HL_CHAIN_OK)
			abort();
		below.class_seq = it->u.msg.class_seq;
		if (hl_chain_class(&it->u.msg, it->seq, &below, NULL, &w) != HL_CHAIN_REFUSE)
			abort();
	}
	uint64_t ps;
	const uint8_t *ph;
	if (hl_chain_item_head(it, &ps, &ph)) {
		struct hl_chain_ref target = { .held = true, .item = true };
		memcpy(target.hash, ph, HL_HASH_LEN);
		struct hl_chain_head_ref below = { true, it->seq - 1, ps };
		if (hl_chain_head(it->seq, ps, ph, &below, NULL, &target, &w) != HL_CHAIN_OK)
			abort();
	}
	if (it->kind == HL_ITEM_RECEIPT) {
		struct hl_chain_lookup look = { .arg = (void *)it, .other = other, .acked = acked };
		(void)hl_chain_receipt(&it->u.rcpt, &look, &w);
	}
	if (it->kind == HL_ITEM_ROTATION)
		rotation_rules(it, &w);
	if (memchr(w.text, '\0', sizeof(w.text)) == NULL)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct hl_item it;
	static uint8_t again[HL_ITEM_MAX];
	size_t len;
	if (hl_item_decode(data, size, &it) != 0) {
		if (!it.bad)
			abort(); /* every refusal names its rule */
		return 0;
	}
	if (!hl_item_kind_name(it.kind))
		abort();
	if (hl_item_encode(&it, again, sizeof(again), &len) != 0 || len != size ||
	    memcmp(again, data, size) != 0)
		abort();
	rules(&it, data, size);
	(void)hl_item_open(data, size, NULL, NULL, &it);
	return 0;
}
