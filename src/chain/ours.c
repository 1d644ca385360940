/* chain/ours.c — appending to our chain with a peer (see ours.h): the
 * position, the signature, the row, in that order and in one place.
 *
 * Signing goes to the key holder (holder/client.h) when the signer is its
 * face: a flush is one request per run of HL_HOLD_RUN_MAX items, which the
 * holder answers after one fsync of its journal.  Before the first
 * position is given out, the items the holder signed after the store's
 * head are taken back (chain/adopt.h).  A plain signer (tests, fuzzing,
 * benchmarks that make one from raw keys) signs here, item by item. */
#include "chain/ours.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chain/adopt.h"
#include "holder/client.h"
#include "util/err.h"
#include "util/mem.h"
#include "util/timefmt.h"

struct hl_ours_entry {
	struct hl_item *it;
	unsigned precedence;
	hl_ours_stored_fn stored;
	void *arg;
	struct hl_hold_blob note;
};

void hl_ours_init(struct hl_ours *o, hl_store *st, const hl_signer *me, int64_t peer_id,
		  const uint8_t peer_sign[static 32])
{
	memset(o, 0, sizeof(*o));
	o->st = st;
	o->me = me;
	o->peer_id = peer_id;
	memcpy(o->peer_sign, peer_sign, 32);
}

void hl_ours_drop(struct hl_ours *o)
{
	free(o->q);
	o->q = NULL;
	o->n = o->cap = 0;
	o->have_head = false;
}

int hl_ours_begin(struct hl_ours *o)
{
	hl_keys *k = hl_keys_of(o->me);
	int ret;
	if (o->have_head)
		return 0;
	if ((ret = hl_store_chain_head(o->st, o->peer_id, HL_DIR_OUT, &o->head)) < 0 ||
	    (ret = hl_store_may_sign(o->st, o->peer_id)) < 0) {
		o->store_failed = true;
		return ret;
	}
	/* Asked once per chain (holder/client.h, hl_keys_head_is), and again
	 * whenever the store is not where the holder was last seen. */
	if (k && !hl_keys_head_is(k, o->peer_sign, o->head.seq) &&
	    (ret = hl_adopt_pending(o->st, k, o->peer_id, o->peer_sign, &o->head)) < 0)
		return ret;
	o->signed_head = o->head;
	o->have_head = true;
	return 0;
}

int hl_ours_add_noted(struct hl_ours *o, struct hl_item *it, unsigned precedence,
		      const uint8_t *note, size_t note_len, hl_ours_stored_fn stored, void *arg)
{
	int ret;
	if ((ret = hl_ours_begin(o)) < 0)
		return ret;
	if (o->n == o->cap) {
		o->cap = o->cap ? 2 * o->cap : 8;
		o->q = xrealloc(o->q, o->cap * sizeof(*o->q));
	}
	memcpy(it->author, hl_signer_sign_pk(o->me), 32);
	memcpy(it->counterpart, o->peer_sign, 32);
	it->seq = o->head.seq + 1;
	if (it->time_ms == 0)
		it->time_ms = (uint64_t)hl_now_ms();
	o->head.seq = it->seq;
	o->q[o->n++] = (struct hl_ours_entry){ it, precedence, stored, arg, { note, note_len } };
	return 0;
}

int hl_ours_add(struct hl_ours *o, struct hl_item *it, unsigned precedence,
		hl_ours_stored_fn stored, void *arg)
{
	return hl_ours_add_noted(o, it, precedence, NULL, 0, stored, arg);
}

/* Entry E, signed (its prev our signed head, its signature in it), into
 * its row; the signed head moves to it. */
static int store_entry(struct hl_ours *o, struct hl_ours_entry *e, uint8_t *enc)
{
	struct hl_item *it = e->it;
	size_t len;
	int ret;
	if ((ret = hl_item_encode(it, enc, HL_ITEM_MAX, &len)) < 0)
		return ret;
	struct hl_item_row row = {
		.peer_id = o->peer_id, .dir = HL_DIR_OUT, .seq = it->seq, .kind = it->kind,
		.encoded = enc, .encoded_len = len, .precedence = e->precedence,
		.stored_at = hl_now_ms(),
	};
	hl_item_hash(enc, len, row.hash);
	o->store_failed = true;
	if ((ret = hl_store_insert_item(o->st, &row)) < 0)
		return ret;
	o->signed_head.seq = it->seq;
	memcpy(o->signed_head.hash, row.hash, HL_HASH_LEN);
	if (e->stored && (ret = e->stored(e->arg, it, row.hash)) < 0)
		return ret;
	o->store_failed = false;
	return 0;
}

/* Entries Q[0..N) signed by the key holder K in one request, then stored
 * in order, each prev the hash of the one before. */
static int flush_run(struct hl_ours *o, hl_keys *k, struct hl_ours_entry *q, size_t n,
		     uint8_t *enc)
{
	struct hl_item **its = xcalloc(n, sizeof(*its));
	struct hl_hold_blob *notes = xcalloc(n, sizeof(*notes));
	uint8_t *sigs = xmalloc(n * 64);
	int ret;
	for (size_t i = 0; i < n; i++) {
		its[i] = q[i].it;
		notes[i] = q[i].note;
	}
	memcpy(its[0]->prev, o->signed_head.hash, HL_HASH_LEN);
	ret = hl_keys_sign_run(k, its, n, notes, sigs, o->why, sizeof(o->why));
	for (size_t i = 0; i < n && ret == 0; i++) {
		memcpy(its[i]->prev, o->signed_head.hash, HL_HASH_LEN);
		memcpy(its[i]->sig, sigs + i * 64, 64);
		ret = store_entry(o, &q[i], enc);
	}
	free(sigs);
	free(notes);
	free(its);
	return ret;
}

int hl_ours_flush(struct hl_ours *o)
{
	uint8_t *enc = xmalloc(HL_ITEM_MAX);
	hl_keys *k = hl_keys_of(o->me);
	int ret = 0;
	o->store_failed = false;
	o->why[0] = '\0';
	for (size_t i = 0; i < o->n && ret == 0;) {
		size_t n = o->n - i;
		if (!k) {
			/* a plain signer: here, one by one */
			struct hl_item *it = o->q[i].it;
			size_t len;
			memcpy(it->prev, o->signed_head.hash, HL_HASH_LEN);
			ret = hl_item_encode_sign(it, o->me, enc, HL_ITEM_MAX, &len);
			if (ret == 0)
				ret = store_entry(o, &o->q[i], enc);
			i++;
			continue;
		}
		if (n > HL_HOLD_RUN_MAX)
			n = HL_HOLD_RUN_MAX;
		ret = flush_run(o, k, &o->q[i], n, enc);
		i += n;
	}
	free(enc);
	o->n = 0;
	if (ret == 0)
		memcpy(o->head.hash, o->signed_head.hash, HL_HASH_LEN);
	return ret;
}

int hl_ours_append(hl_store *st, const hl_signer *me, int64_t peer_id,
		   const uint8_t peer_sign[static 32], struct hl_item *it, unsigned precedence,
		   uint8_t hash[HL_HASH_LEN])
{
	struct hl_ours o;
	int ret;
	hl_ours_init(&o, st, me, peer_id, peer_sign);
	if ((ret = hl_ours_add(&o, it, precedence, NULL, NULL)) == 0 &&
	    (ret = hl_ours_flush(&o)) == 0 && hash)
		memcpy(hash, o.signed_head.hash, HL_HASH_LEN);
	hl_ours_drop(&o);
	return ret;
}
