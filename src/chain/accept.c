/* chain/accept.c — the chain rules (accept.h, docs/items.md section 3):
 * pure functions over decoded items and the entries their caller looked
 * up.  Every failure names the field and the values that disagree. */
#include "chain/accept.h"

#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/keys.h"
#include "util/text.h"

static int say(struct hl_chain_why *w, int verdict, bool cross, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static int say(struct hl_chain_why *w, int verdict, bool cross, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(w->text, sizeof(w->text), fmt, ap);
	va_end(ap);
	w->cross = cross;
	return verdict;
}

void hl_chain_why_init(struct hl_chain_why *w, const char *own_chain, const char *other_chain)
{
	memset(w, 0, sizeof(*w));
	if (own_chain)
		snprintf(w->own, sizeof(w->own), "%.36s", own_chain);
	if (other_chain)
		snprintf(w->other, sizeof(w->other), "%.36s", other_chain);
}

static const char *own(const struct hl_chain_why *w)
{
	return w->own[0] ? w->own : "its chain's";
}

static const char *other(const struct hl_chain_why *w)
{
	return w->other[0] ? w->other : "the other chain's";
}

static int ok(struct hl_chain_why *w)
{
	w->text[0] = '\0';
	w->cross = false;
	return HL_CHAIN_OK;
}

/* The first 8 bytes of a hash in hex: enough for people to tell two apart. */
static void short_hash(const uint8_t *h, char out[17])
{
	hl_hex(h, 8, out);
}

static bool same(const uint8_t *a, const uint8_t *b)
{
	return sodium_memcmp(a, b, HL_HASH_LEN) == 0;
}

int hl_chain_window(uint64_t seq, uint64_t contig, struct hl_chain_why *w)
{
	if (seq > contig && seq - contig > HL_CHAIN_WINDOW)
		return say(w, HL_CHAIN_LATER, false, "seq %llu is more than %llu past the "
			   "contiguous head %llu: offer it later", (unsigned long long)seq,
			   (unsigned long long)HL_CHAIN_WINDOW, (unsigned long long)contig);
	return ok(w);
}

int hl_chain_links(const struct hl_item *it, const uint8_t hash[static HL_HASH_LEN],
		   const struct hl_chain_ref *before, const struct hl_chain_ref *after,
		   struct hl_chain_why *w)
{
	char h1[17], h2[17];
	if (it->seq > 1 && before && before->held && !same(it->prev, before->hash)) {
		short_hash(it->prev, h1);
		short_hash(before->hash, h2);
		w->against = it->seq - 1;
		return say(w, before->item ? HL_CHAIN_FORK : HL_CHAIN_REFUSE, false,
			   "does not link to entry %llu (its prev is %s..., entry %llu's hash is "
			   "%s...)", (unsigned long long)(it->seq - 1), h1,
			   (unsigned long long)(it->seq - 1), h2);
	}
	if (after && after->held && after->item && !same(after->prev, hash)) {
		short_hash(hash, h1);
		short_hash(after->prev, h2);
		w->against = it->seq + 1;
		return say(w, HL_CHAIN_FORK, false, "entry %llu does not link to it (its hash is "
			   "%s..., entry %llu's prev is %s...)", (unsigned long long)(it->seq + 1),
			   h1, (unsigned long long)(it->seq + 1), h2);
	}
	return ok(w);
}

bool hl_chain_proves_fork(const struct hl_item *it, const uint8_t hash[static HL_HASH_LEN],
			  const struct hl_chain_ref *at, const struct hl_chain_ref *before,
			  const struct hl_chain_ref *after, struct hl_chain_why *w)
{
	char h1[17], h2[17];
	/* A tombstone's hash is its author's only through the next item's
	 * link. */
	bool at_ok = at && at->held &&
		     (at->item || (after && after->held && after->item && same(after->prev, at->hash)));
	if (at_ok && !same(at->hash, hash)) {
		short_hash(at->hash, h1);
		short_hash(hash, h2);
		w->against = it->seq;
		say(w, HL_CHAIN_FORK, false, "two different items as number %llu (hash %s... in "
		    "the chain, hash %s... in evidence)", (unsigned long long)it->seq, h1, h2);
		return true;
	}
	bool is_at = at_ok;
	if (it->seq > 1 && before && before->held && before->item && !same(it->prev, before->hash)) {
		short_hash(before->hash, h1);
		short_hash(it->prev, h2);
		w->against = it->seq - 1;
		say(w, HL_CHAIN_FORK, false, "two different items as number %llu (hash %s... in "
		    "the chain, %s... in the prev of evidence number %llu)",
		    (unsigned long long)(it->seq - 1), h1, h2, (unsigned long long)it->seq);
		return true;
	}
	if (after && after->held && after->item && !same(after->prev, hash)) {
		short_hash(after->prev, h1);
		short_hash(hash, h2);
		w->against = it->seq + 1;
		say(w, HL_CHAIN_FORK, false, "two different items as number %llu (hash %s... in "
		    "the prev of entry %llu, hash %s... in evidence)", (unsigned long long)it->seq,
		    h1, (unsigned long long)(it->seq + 1), h2);
		return true;
	}
	if (is_at)
		say(w, HL_CHAIN_REFUSE, false, "the same item as %s entry %llu", own(w),
		    (unsigned long long)it->seq);
	else
		say(w, HL_CHAIN_REFUSE, false, "%s entry %llu cannot be compared with it, and it "
		    "links with its neighbours", own(w), (unsigned long long)it->seq);
	return false;
}

int hl_chain_class(const struct hl_item_message *m, uint64_t seq,
		   const struct hl_chain_class_ref *below, const struct hl_chain_class_ref *above,
		   struct hl_chain_why *w)
{
	const char *p = hl_precedence_name(m->precedence);
	unsigned long long c = (unsigned long long)m->class_seq;
	if (below && below->held && below->seq < seq && below->class_seq >= m->class_seq)
		return say(w, HL_CHAIN_REFUSE, false, "%s message number %llu comes after number "
			   "%llu (entry %llu)", p, c, (unsigned long long)below->class_seq,
			   (unsigned long long)below->seq);
	if (below && below->held && below->seq >= seq)
		return say(w, HL_CHAIN_REFUSE, false, "%s message number %llu comes before number "
			   "%llu, which is at a later entry (%llu)", p, c,
			   (unsigned long long)below->class_seq, (unsigned long long)below->seq);
	if (above && above->held && (above->seq <= seq || above->class_seq <= m->class_seq))
		return say(w, HL_CHAIN_REFUSE, false, "%s message number %llu at entry %llu, but "
			   "number %llu is at entry %llu", p, c, (unsigned long long)seq,
			   (unsigned long long)above->class_seq, (unsigned long long)above->seq);
	return ok(w);
}

int hl_chain_head(uint64_t seq, uint64_t peer_seq, const uint8_t peer_hash[static HL_HASH_LEN],
		  const struct hl_chain_head_ref *below, const struct hl_chain_head_ref *above,
		  const struct hl_chain_ref *target, struct hl_chain_why *w)
{
	char h1[17], h2[17];
	unsigned long long ps = (unsigned long long)peer_seq;
	if (below && below->held && below->seq < seq && peer_seq < below->peer_seq)
		return say(w, HL_CHAIN_REFUSE, false, "says it holds %s chain up to %llu, after an "
			   "earlier item said %llu", other(w), ps,
			   (unsigned long long)below->peer_seq);
	if (above && above->held && above->seq > seq && peer_seq > above->peer_seq)
		return say(w, HL_CHAIN_REFUSE, false, "says it holds %s chain up to %llu, but a "
			   "later item says %llu", other(w), ps, (unsigned long long)above->peer_seq);
	if (peer_seq == 0)
		return ok(w);
	if (!target || !target->held)
		return say(w, HL_CHAIN_REFUSE, true, "says it holds %s chain up to %llu, but "
			   "that entry is not there", other(w), ps);
	if (!same(target->hash, peer_hash)) {
		short_hash(peer_hash, h1);
		short_hash(target->hash, h2);
		return say(w, HL_CHAIN_REFUSE, true, "names %s entry %llu with hash %s..., but "
			   "that entry has hash %s...", other(w), ps, h1, h2);
	}
	return ok(w);
}

bool hl_chain_item_head(const struct hl_item *it, uint64_t *peer_seq, const uint8_t **peer_hash)
{
	switch (it->kind) {
	case HL_ITEM_RECEIPT:
		*peer_seq = it->u.rcpt.peer_seq;
		*peer_hash = it->u.rcpt.peer_hash;
		return true;
	case HL_ITEM_CHECK:
		*peer_seq = it->u.chk.peer_seq;
		*peer_hash = it->u.chk.peer_hash;
		return true;
	case HL_ITEM_ANSWER:
		*peer_seq = it->u.ans.peer_seq;
		*peer_hash = it->u.ans.peer_hash;
		return true;
	default:
		return false;
	}
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* No seq twice in one receipt (sorted copy: at most 256 entries). */
static int receipt_repeats(const struct hl_item_receipt *r, struct hl_chain_why *w)
{
	uint64_t seqs[HL_MAX_RECEIPT_ENTRIES];
	for (unsigned i = 0; i < r->count; i++)
		seqs[i] = r->entries[i].seq;
	qsort(seqs, r->count, sizeof(seqs[0]), cmp_u64);
	for (unsigned i = 1; i < r->count; i++)
		if (seqs[i] == seqs[i - 1])
			return say(w, HL_CHAIN_REFUSE, false, "acknowledges %s entry %llu twice",
				   other(w), (unsigned long long)seqs[i]);
	return ok(w);
}

int hl_chain_receipt(const struct hl_item_receipt *r, const struct hl_chain_lookup *look,
		     struct hl_chain_why *w)
{
	char h1[17], h2[17];
	int ret = receipt_repeats(r, w);
	if (ret != HL_CHAIN_OK)
		return ret;
	for (unsigned i = 0; i < r->count; i++) {
		const struct hl_receipt_entry *e = &r->entries[i];
		struct hl_chain_ref ref;
		unsigned long long s = (unsigned long long)e->seq;
		memset(&ref, 0, sizeof(ref));
		if ((ret = look->other(look->arg, e->seq, &ref)) < 0)
			return ret;
		if (!ref.held)
			return say(w, HL_CHAIN_REFUSE, true, "acknowledges %s entry %llu, which is "
				   "not there", other(w), s);
		if (!ref.item)
			return say(w, HL_CHAIN_REFUSE, true, "acknowledges %s entry %llu, which was "
				   "refused", other(w), s);
		if (!same(ref.hash, e->hash)) {
			short_hash(e->hash, h1);
			short_hash(ref.hash, h2);
			return say(w, HL_CHAIN_REFUSE, true, "acknowledges %s entry %llu with hash "
				   "%s..., but that entry has hash %s...", other(w), s, h1, h2);
		}
		if (ref.kind != HL_ITEM_MESSAGE)
			return say(w, HL_CHAIN_REFUSE, true, "acknowledges %s entry %llu, a %s: a "
				   "receipt acknowledges messages only", other(w), s,
				   hl_item_kind_name((int)ref.kind) ? hl_item_kind_name((int)ref.kind)
								    : "item of unknown kind");
		bool twice = false;
		if ((ret = look->acked(look->arg, e->seq, &twice)) < 0)
			return ret;
		if (twice)
			return say(w, HL_CHAIN_REFUSE, true, "acknowledges %s message %llu, which is "
				   "acknowledged already", other(w), s);
	}
	return ok(w);
}

void hl_chain_keys_init(struct hl_chain_keys *k, const uint8_t noise[static 32],
			const uint8_t sign[static 32], const uint8_t *next_hash)
{
	memset(k, 0, sizeof(*k));
	memcpy(k->noise, noise, 32);
	memcpy(k->sign, sign, 32);
	k->has_next = next_hash != NULL;
	if (next_hash)
		memcpy(k->next_hash, next_hash, 32);
}

void hl_chain_keys_after(const struct hl_item *it, struct hl_chain_keys *k)
{
	const struct hl_item_rotation *r = &it->u.rot;
	hl_chain_keys_init(k, r->noise_key, r->signing_key, r->next_hash);
}

int hl_chain_rotation(const struct hl_item *it, const struct hl_chain_keys *cur,
		      const struct hl_chain_keys *theirs, struct hl_chain_why *w)
{
	const struct hl_item_rotation *r = &it->u.rot;
	uint8_t h[HL_HASH_LEN];
	char h1[17], h2[17];
	if (!cur->has_next)
		return say(w, HL_CHAIN_REFUSE, false, "a rotation, but %s card committed to no "
			   "next keys (it has no NextKeyHash)", own(w));
	hl_next_hash(r->noise_key, r->signing_key, h);
	if (!same(h, cur->next_hash)) {
		short_hash(h, h1);
		short_hash(cur->next_hash, h2);
		return say(w, HL_CHAIN_REFUSE, false, "rotates to keys that were not committed to "
			   "(their hash is %s..., the commitment %s...)", h1, h2);
	}
	if (same(r->signing_key, cur->sign) || same(r->noise_key, cur->noise))
		return say(w, HL_CHAIN_REFUSE, false, "rotates to a key it has already");
	if (theirs && (same(r->signing_key, theirs->sign) || same(r->noise_key, theirs->noise)))
		return say(w, HL_CHAIN_REFUSE, false, "rotates to a key of %s station", other(w));
	return ok(w);
}

int hl_chain_rotation_place(uint64_t seq, uint64_t contig, uint64_t top, uint64_t rotations,
			    struct hl_chain_why *w)
{
	if (top > seq)
		return say(w, HL_CHAIN_REFUSE, false, "a rotation at %llu, but items after it (up "
			   "to %llu) were signed with the keys it replaces",
			   (unsigned long long)seq, (unsigned long long)top);
	if (seq != contig + 1)
		return say(w, HL_CHAIN_LATER, false, "a rotation at %llu before every entry up to "
			   "it is held (the contiguous head is %llu)", (unsigned long long)seq,
			   (unsigned long long)contig);
	if (rotations >= HL_CHAIN_MAX_ROTATIONS)
		return say(w, HL_CHAIN_REFUSE, false, "more than %u rotations in one chain",
			   (unsigned)HL_CHAIN_MAX_ROTATIONS);
	return ok(w);
}
