/* deliver/rotate.c — a key rotation on this station's chains (rotate.h,
 * docs/rotation.md section 2).
 *
 * The store knows the station's keys as its chains do: the own_keys row,
 * none before the first rotation (store/keys.c).  A rotation is pending
 * when the signer's previous keys are those (or, before the first one,
 * when there is no row): then each chain still at the previous key gets
 * its rotation item, signed by the previous key and the new one
 * (deliver/author.c, crypto/signer.c's table), and the row takes the new
 * keys — in one transaction, so a crash leaves every chain rotated or
 * none.  A chain already at the new key (a row made since) is left
 * alone; one at any other key is an error, and nothing is written. */
#include "deliver/rotate.h"

#include <stdlib.h>
#include <string.h>

#include "deliver/author.h"
#include "util/err.h"
#include "util/mem.h"
#include "util/timefmt.h"

static bool same(const uint8_t *a, const uint8_t *b)
{
	return memcmp(a, b, 32) == 0;
}

static void keys_of(const uint8_t *noise, const uint8_t *sign, const uint8_t *next,
		    struct hl_own_keys *k)
{
	memset(k, 0, sizeof(*k));
	memcpy(k->noise, noise, 32);
	memcpy(k->sign, sign, 32);
	k->has_next = next != NULL;
	if (next)
		memcpy(k->next_hash, next, 32);
}

/* The keys the chains have before this rotation into BEFORE; *DONE when
 * there is nothing to do (never rotated, or rotated already). */
static int keys_before(hl_store *st, const hl_signer *me, struct hl_own_keys *before, bool *done)
{
	const uint8_t *cur = hl_signer_sign_pk(me), *prev = hl_signer_prev_sign_pk(me);
	uint8_t committed[32];
	struct hl_own_keys own;
	int ret = hl_store_own_keys(st, &own);
	*done = false;
	if (ret < 0 && ret != HL_ENOTFOUND)
		return ret;
	if (ret == 0 && same(own.sign, cur)) {
		*done = true;
		return 0;
	}
	if (!prev) {
		*done = ret == HL_ENOTFOUND; /* never rotated */
		return *done ? 0 : HL_EKEYS;
	}
	if (ret == 0 && !same(own.sign, prev))
		return HL_EKEYS;
	/* Before the first rotation the chains are at the previous keys,
	 * whose commitment is to the current ones. */
	hl_next_hash(hl_signer_noise_pub(me), cur, committed);
	if (ret == HL_ENOTFOUND)
		keys_of(hl_signer_prev_noise_pub(me), prev, committed, before);
	else
		*before = own;
	if (!before->has_next || !same(before->next_hash, committed))
		return HL_EKEYS;
	return 0;
}

int hl_rotate_pending(hl_store *st, const hl_signer *me, bool *pending)
{
	struct hl_own_keys before;
	bool done;
	int ret = keys_before(st, me, &before, &done);
	*pending = ret == 0 && !done;
	return ret;
}

struct peer_ids {
	int64_t *id;
	uint8_t (*sign)[32];
	size_t n, cap;
};

static int collect(void *arg, const struct hl_peer_row *row)
{
	struct peer_ids *p = arg;
	if (p->n == p->cap) {
		p->cap = p->cap ? 2 * p->cap : 16;
		p->id = xrealloc(p->id, p->cap * sizeof(*p->id));
		p->sign = xrealloc(p->sign, p->cap * sizeof(*p->sign));
	}
	p->id[p->n] = row->id;
	memcpy(p->sign[p->n++], row->signing_key, 32);
	return 0;
}

/* Our chain's key on link ID now: its last rotation's, else our card's
 * there, else BEFORE's (the card the peer pinned: before any rotation). */
static int chain_key(hl_store *st, int64_t id, const struct hl_own_keys *before,
		     uint8_t key[static 32])
{
	struct hl_item_row row;
	struct hl_item *it = xmalloc(sizeof(*it));
	uint8_t *buf = xmalloc(HL_ITEM_MAX);
	struct hl_own_keys card;
	int ret = hl_store_rotation_before(st, id, HL_DIR_OUT, INT64_MAX, &row, buf, HL_ITEM_MAX);
	if (ret == 0)
		ret = hl_item_decode(row.encoded, row.encoded_len, it) < 0 ? HL_ESTORE : 0;
	if (ret == 0) {
		memcpy(key, it->u.rot.signing_key, 32);
	} else if (ret == HL_ENOTFOUND) {
		ret = hl_store_own_card(st, id, &card);
		if (ret == 0)
			memcpy(key, card.sign, 32);
		else if (ret == HL_ENOTFOUND)
			memcpy(key, before->sign, 32);
		ret = ret == HL_ENOTFOUND ? 0 : ret;
	}
	free(buf);
	free(it);
	return ret;
}

static int append_rotation(hl_store *st, const hl_signer *me, int64_t id,
			   const uint8_t peer_sign[static 32], unsigned reason)
{
	struct hl_author_link l = { .st = st, .me = me, .peer_id = id };
	struct hl_item *it = xcalloc(1, sizeof(*it));
	uint8_t hash[HL_HASH_LEN];
	memcpy(l.peer_sign, peer_sign, 32);
	it->kind = HL_ITEM_ROTATION;
	it->time_ms = (uint64_t)hl_now_ms();
	memcpy(it->u.rot.noise_key, hl_signer_noise_pub(me), 32);
	memcpy(it->u.rot.signing_key, hl_signer_sign_pk(me), 32);
	int ret = hl_signer_next_hash(me, it->u.rot.next_hash) < 0 ? HL_EUNSUPP : 0;
	it->u.rot.reason = (uint8_t)reason;
	if (ret == 0)
		ret = hl_author_item(&l, it, hash);
	free(it);
	return ret;
}

int hl_rotate_chains(hl_store *st, const hl_signer *me, const hl_station_conf *conf,
		     unsigned reason, size_t *chains)
{
	struct hl_own_keys before, now;
	struct peer_ids p = { 0 };
	uint8_t key[32], nh[32];
	bool done;
	int ret = keys_before(st, me, &before, &done);
	*chains = 0;
	if (ret < 0 || done)
		return ret;
	/* every pinned peer has a chain to rotate, talked to yet or not */
	for (size_t i = 0; ret == 0 && conf && i < conf->npeers; i++) {
		const hl_peer_conf *pc = &conf->peers[i];
		int64_t id;
		if ((ret = hl_store_peer(st, pc->signing_key, pc->noise_key, pc->name, &id)) == 0)
			ret = hl_store_set_peer_next(st, id, pc->has_next ? pc->next_hash : NULL);
	}
	if (ret == 0)
		ret = hl_store_each_peer(st, collect, &p);
	for (size_t i = 0; ret == 0 && i < p.n; i++) {
		if ((ret = chain_key(st, p.id[i], &before, key)) < 0)
			break;
		if (same(key, hl_signer_sign_pk(me)))
			continue; /* rotated already */
		if (!same(key, before.sign)) {
			ret = HL_EKEYS;
			break;
		}
		if ((ret = append_rotation(st, me, p.id[i], p.sign[i], reason)) == 0)
			(*chains)++;
	}
	bool next = hl_signer_next_hash(me, nh) == 0;
	keys_of(hl_signer_noise_pub(me), hl_signer_sign_pk(me), next ? nh : NULL, &now);
	if (ret == 0)
		ret = hl_store_set_own_keys(st, &before, &now);
	free(p.id);
	free(p.sign);
	return ret;
}

int hl_rotate_peer_keys(hl_store *st, int64_t peer_id, const hl_peer_conf *peer, uint64_t seq,
			struct hl_own_keys *out, uint64_t *seq_at)
{
	struct hl_item_row row;
	struct hl_item *it = xmalloc(sizeof(*it));
	uint8_t *buf = xmalloc(HL_ITEM_MAX);
	int ret = peer_id ? hl_store_rotation_before(st, peer_id, HL_DIR_IN, seq, &row, buf,
						     HL_ITEM_MAX)
			  : HL_ENOTFOUND;
	if (ret == 0 && hl_item_decode(row.encoded, row.encoded_len, it) < 0)
		ret = HL_ESTORE;
	if (ret == 0) {
		keys_of(it->u.rot.noise_key, it->u.rot.signing_key, it->u.rot.next_hash, out);
	} else if (ret == HL_ENOTFOUND) {
		keys_of(peer->noise_key, peer->signing_key, peer->has_next ? peer->next_hash : NULL,
			out);
		row.seq = 0;
		ret = 0;
	}
	if (ret == 0 && seq_at)
		*seq_at = row.seq;
	free(buf);
	free(it);
	return ret;
}

bool hl_rotate_peer_pins_previous(hl_store *st, int64_t peer_id, const hl_signer *me)
{
	struct hl_item_row row;
	uint8_t *buf = xmalloc(HL_ITEM_MAX);
	bool prev = false;
	if (hl_signer_prev_sign_pk(me) && peer_id &&
	    hl_store_rotation_before(st, peer_id, HL_DIR_OUT, INT64_MAX, &row, buf,
				     HL_ITEM_MAX) == 0 &&
	    hl_store_get_item(st, peer_id, HL_DIR_OUT, row.seq, &row, buf, HL_ITEM_MAX) == 0)
		prev = !row.acked;
	free(buf);
	return prev;
}
