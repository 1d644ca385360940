/* chain/ours.c — appending to our chain with a peer (see ours.h): the
 * position, the signature, the row, in that order and in one place. */
#include "chain/ours.h"

#include <stdlib.h>
#include <string.h>

#include "util/err.h"
#include "util/mem.h"
#include "util/timefmt.h"

struct hl_ours_entry {
	struct hl_item *it;
	unsigned precedence;
	hl_ours_stored_fn stored;
	void *arg;
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

int hl_ours_add(struct hl_ours *o, struct hl_item *it, unsigned precedence,
		hl_ours_stored_fn stored, void *arg)
{
	int ret;
	if (!o->have_head) {
		if ((ret = hl_store_chain_head(o->st, o->peer_id, HL_DIR_OUT, &o->head)) < 0)
			return ret;
		o->signed_head = o->head;
		o->have_head = true;
	}
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
	o->q[o->n++] = (struct hl_ours_entry){ it, precedence, stored, arg };
	return 0;
}

/* Signs entry E, whose prev is our signed head, into ENC; its row goes in
 * and the signed head moves to it. */
static int sign_and_store(struct hl_ours *o, struct hl_ours_entry *e, uint8_t *enc)
{
	struct hl_item *it = e->it;
	size_t len;
	int ret;
	memcpy(it->prev, o->signed_head.hash, HL_HASH_LEN);
	if ((ret = hl_item_encode_sign(it, o->me, enc, HL_ITEM_MAX, &len)) < 0)
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

int hl_ours_flush(struct hl_ours *o)
{
	uint8_t *enc = xmalloc(HL_ITEM_MAX);
	int ret = 0;
	o->store_failed = false;
	for (size_t i = 0; i < o->n && ret == 0; i++)
		ret = sign_and_store(o, &o->q[i], enc);
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
