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
	o->have_author = false;
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

/* IT's author: our SigningKey as the peer pinned it (a rotation keeps our
 * name on the link), and the store's word that the key to sign IT is the
 * chain's (store.h, hl_store_author_keys: HL_EKEYS when this process read
 * the keys before a rotation, or a rotation the chains were not told of
 * yet).  A rotation item is signed by the key before it. */
static int author_of(struct hl_ours *o, const struct hl_item *it, uint8_t author[static 32])
{
	const uint8_t *prev = hl_signer_prev_sign_pk(o->me);
	bool rot = it->kind == HL_ITEM_ROTATION;
	const uint8_t *key = rot ? prev : hl_signer_sign_pk(o->me);
	int ret = 0;
	if (!rot && o->have_author) {
		memcpy(author, o->author, 32);
		return 0;
	}
	if (!key)
		return HL_ESTATE; /* a rotation item, and the keys never rotated */
	if ((ret = hl_store_author_keys(o->st, o->peer_id, key, prev, author)) < 0) {
		o->store_failed = true;
		return ret;
	}
	if (!rot) {
		memcpy(o->author, author, 32);
		o->have_author = true;
	}
	return 0;
}

int hl_ours_add_noted(struct hl_ours *o, struct hl_item *it, unsigned precedence,
		      const uint8_t *note, size_t note_len, hl_ours_stored_fn stored, void *arg)
{
	uint8_t author[32];
	int ret;
	if ((ret = hl_ours_begin(o)) < 0 || (ret = author_of(o, it, author)) < 0)
		return ret;
	if (o->n == o->cap) {
		o->cap = o->cap ? 2 * o->cap : 8;
		o->q = xrealloc(o->q, o->cap * sizeof(*o->q));
	}
	memcpy(it->author, author, 32);
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

/* Entry E, signed (ENC, LEN: its bytes), gets its row, then its caller's. */
static int insert_entry(struct hl_ours *o, struct hl_ours_entry *e, const uint8_t *enc,
			size_t len, const uint8_t hash[static HL_HASH_LEN])
{
	struct hl_item *it = e->it;
	int ret;
	struct hl_item_row row = {
		.peer_id = o->peer_id, .dir = HL_DIR_OUT, .seq = it->seq, .kind = it->kind,
		.encoded = enc, .encoded_len = len, .precedence = e->precedence,
		.stored_at = hl_now_ms(),
	};
	memcpy(row.hash, hash, HL_HASH_LEN);
	o->store_failed = true;
	if ((ret = hl_store_insert_item(o->st, &row)) < 0)
		return ret;
	if (e->stored && (ret = e->stored(e->arg, it, hash)) < 0)
		return ret;
	o->store_failed = false;
	return 0;
}

/* A plain signer (tests, benchmarks): here, one by one. */
static int flush_here(struct hl_ours *o)
{
	uint8_t *enc = xmalloc(HL_ITEM_MAX), hash[HL_HASH_LEN];
	int ret = 0;
	for (size_t i = 0; i < o->n && ret == 0; i++) {
		struct hl_item *it = o->q[i].it;
		size_t len;
		memcpy(it->prev, o->signed_head.hash, HL_HASH_LEN);
		if ((ret = hl_item_encode_sign(it, o->me, enc, HL_ITEM_MAX, &len)) < 0)
			break;
		hl_item_hash(enc, len, hash);
		o->signed_head.seq = it->seq;
		memcpy(o->signed_head.hash, hash, HL_HASH_LEN);
		ret = insert_entry(o, &o->q[i], enc, len, hash);
	}
	free(enc);
	return ret;
}

/* One run of the key holder's: the entries [FROM, FROM + N) of O's queue,
 * its request out while the rows of the run before go in. */
struct run {
	hl_keys_call *call;
	size_t from, n;
	uint8_t *sigs;
	uint8_t **enc;                /* once signed: each item's bytes */
	size_t *len;
	uint8_t (*hash)[HL_HASH_LEN];
};

static void run_start(struct hl_ours *o, hl_keys *k, struct run *r, size_t from, size_t n)
{
	struct hl_item **its = xcalloc(n, sizeof(*its));
	struct hl_hold_blob *notes = xcalloc(n, sizeof(*notes));
	*r = (struct run){ .from = from, .n = n, .sigs = xmalloc(n * 64),
			   .enc = xcalloc(n, sizeof(*r->enc)), .len = xcalloc(n, sizeof(*r->len)),
			   .hash = xcalloc(n, sizeof(*r->hash)) };
	for (size_t i = 0; i < n; i++) {
		its[i] = o->q[from + i].it;
		notes[i] = o->q[from + i].note;
	}
	memcpy(its[0]->prev, o->signed_head.hash, HL_HASH_LEN);
	hl_keys_sign_start(k, its, n, notes, &r->call);
	free(notes);
	free(its);
}

/* The run's signatures in its items, each prev the hash of the one before;
 * the signed head moves to its last. */
static int run_finish(struct hl_ours *o, hl_keys *k, struct run *r)
{
	uint8_t *one = xmalloc(HL_ITEM_MAX);
	int ret = hl_keys_sign_finish(k, r->call, r->sigs, o->why, sizeof(o->why));
	for (size_t i = 0; i < r->n && ret == 0; i++) {
		struct hl_item *it = o->q[r->from + i].it;
		memcpy(it->prev, o->signed_head.hash, HL_HASH_LEN);
		memcpy(it->sig, r->sigs + i * 64, 64);
		if ((ret = hl_item_encode(it, one, HL_ITEM_MAX, &r->len[i])) < 0)
			break;
		r->enc[i] = xmalloc(r->len[i]);
		memcpy(r->enc[i], one, r->len[i]);
		hl_item_hash(one, r->len[i], r->hash[i]);
		o->signed_head.seq = it->seq;
		memcpy(o->signed_head.hash, r->hash[i], HL_HASH_LEN);
	}
	free(one);
	return ret;
}

static int run_insert(struct hl_ours *o, struct run *r)
{
	int ret = 0;
	for (size_t i = 0; i < r->n && ret == 0; i++)
		ret = insert_entry(o, &o->q[r->from + i], r->enc[i], r->len[i], r->hash[i]);
	return ret;
}

static void run_free(struct run *r)
{
	for (size_t i = 0; r->enc && i < r->n; i++)
		free(r->enc[i]);
	free(r->enc);
	free(r->len);
	free(r->hash);
	free(r->sigs);
	memset(r, 0, sizeof(*r));
}

/* The key holder signs the queue a run at a time; while it signs one, the
 * rows of the one before go into the store (a run's first prev is the hash
 * of the run before as signed, known once its answer is in).  A long queue
 * goes in runs of PIPE_RUN, so that most of the signing overlaps the
 * store's work: `send --lines` spends as long as before the holder. */
#define PIPE_RUN 256
static int flush_holder(struct hl_ours *o, hl_keys *k)
{
	size_t size = o->n >= 2 * PIPE_RUN ? PIPE_RUN : HL_HOLD_RUN_MAX;
	struct run done = { 0 }, next;
	int ret = 0;
	for (size_t from = 0; from < o->n && ret == 0; from += next.n) {
		size_t n = o->n - from < size ? o->n - from : size;
		run_start(o, k, &next, from, n);
		ret = run_insert(o, &done);              /* the holder signs meanwhile */
		int fin = run_finish(o, k, &next);       /* always: it ends the request */
		ret = ret < 0 ? ret : fin;
		run_free(&done);
		done = next;
	}
	if (ret == 0)
		ret = run_insert(o, &done);
	run_free(&done);
	return ret;
}

int hl_ours_flush(struct hl_ours *o)
{
	hl_keys *k = hl_keys_of(o->me);
	int ret;
	o->store_failed = false;
	o->why[0] = '\0';
	ret = k ? flush_holder(o, k) : flush_here(o);
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
