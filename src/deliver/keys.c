/* deliver/keys.c — the keys of a link's two chains, for the engine
 * (docs/rotation.md, docs/items.md section 3 rule 5).
 *
 * The peer's chain starts with the keys of the card we pinned (its
 * [Peer] section) and takes each rotation we accept; our chain starts
 * with the card of ours the peer pinned (the store's peers.own_*, or our
 * signer's keys before any rotation).  The engine checks every item of
 * the peer's with the peer's key at the item's position: the current one,
 * since a rotation is accepted only right after the contiguous head
 * (hl_chain_rotation_place), so every position not held lies after the
 * last rotation held.  A held position before it (equivocation evidence,
 * an item of ours given back after a restore) is looked up. */
#include "deliver/engine_int.h"

#include <string.h>

#include "crypto/keys.h"
#include "util/err.h"

int eng_keys_init(hl_engine *e, const hl_peer_conf *peer)
{
	hl_chain_keys_init(&e->peer_card, peer->noise_key, peer->signing_key,
			   peer->has_next ? peer->next_hash : NULL);
	e->peer_keys = e->peer_card;
	return hl_store_set_peer_next(e->env.txn->store, e->peer_id,
				      peer->has_next ? peer->next_hash : NULL);
}

/* The rotation ROW (bytes in e->itembuf) decoded into e->scratch. */
static int decode_rotation(hl_engine *e, const struct hl_item_row *row)
{
	if (hl_item_decode(row->encoded, row->encoded_len, e->scratch) < 0 ||
	    e->scratch->kind != HL_ITEM_ROTATION)
		return HL_ESTORE; /* the store holds only items it checked */
	return 0;
}

int eng_keys_load(hl_engine *e)
{
	if (e->keys_ok)
		return 0;
	hl_store *st = e->env.txn->store;
	struct hl_item_row row;
	struct hl_own_keys own;
	int ret = hl_store_rotation_before(st, e->peer_id, HL_DIR_IN, INT64_MAX, &row,
					   e->itembuf, HL_ITEM_MAX);
	e->peer_keys = e->peer_card;
	e->peer_rot_seq = 0;
	if (ret == 0 && (ret = decode_rotation(e, &row)) == 0) {
		hl_chain_keys_after(e->scratch, &e->peer_keys);
		e->peer_rot_seq = row.seq;
	}
	if (ret < 0 && ret != HL_ENOTFOUND)
		return ret;
	if ((ret = hl_store_rotation_count(st, e->peer_id, HL_DIR_IN, &e->peer_rotations)) < 0)
		return ret;
	/* ours: the card the peer pinned, or (never rotated) the signer's */
	if ((ret = hl_store_own_card(st, e->peer_id, &own)) == 0) {
		hl_chain_keys_init(&e->me_card, own.noise, own.sign,
				   own.has_next ? own.next_hash : NULL);
	} else if (ret == HL_ENOTFOUND) {
		uint8_t nh[32];
		bool next = hl_signer_next_hash(e->env.me, nh) == 0;
		hl_chain_keys_init(&e->me_card, hl_signer_noise_pub(e->env.me),
				   hl_signer_sign_pk(e->env.me), next ? nh : NULL);
	} else {
		return ret;
	}
	e->keys_ok = true;
	return 0;
}

/* The key of chain DIR at position SEQ: its last rotation's before SEQ,
 * else CARD's. */
static int key_at(hl_engine *e, enum hl_dir dir, uint64_t seq, const uint8_t card[static 32],
		  uint8_t key[static 32])
{
	struct hl_item_row row;
	int ret = hl_store_rotation_before(e->env.txn->store, e->peer_id, dir, seq, &row,
					   e->itembuf, HL_ITEM_MAX);
	if (ret == HL_ENOTFOUND) {
		memcpy(key, card, 32);
		return 0;
	}
	if (ret == 0 && (ret = decode_rotation(e, &row)) == 0)
		memcpy(key, e->scratch->u.rot.signing_key, 32);
	return ret;
}

int eng_peer_key_at(hl_engine *e, uint64_t seq, uint8_t key[static 32])
{
	int ret = eng_keys_load(e);
	if (ret == 0 && seq > e->peer_rot_seq) {
		memcpy(key, e->peer_keys.sign, 32);
		return 0;
	}
	return ret < 0 ? ret : key_at(e, HL_DIR_IN, seq, e->peer_card.sign, key);
}

int eng_our_key_at(hl_engine *e, uint64_t seq, uint8_t key[static 32])
{
	int ret = eng_keys_load(e);
	return ret < 0 ? ret : key_at(e, HL_DIR_OUT, seq, e->me_card.sign, key);
}

int eng_rotation_rules(hl_engine *e, const struct hl_item *it, struct hl_chain_why *w)
{
	struct hl_chain_head contig;
	int ret;
	/* the place: right after the contiguous head, nothing held after it */
	if ((ret = hl_store_in_contiguous(e->env.txn->store, e->peer_id, &contig)) < 0)
		return ret;
	e->contig = contig.seq;
	ret = hl_chain_rotation_place(it->seq, e->contig, e->in_top, e->peer_rotations, w);
	if (ret != HL_CHAIN_OK)
		return ret;
	/* the keys: committed to, new, not ours */
	if ((ret = hl_chain_rotation(it, &e->peer_keys, &e->me_card, w)) != HL_CHAIN_OK)
		return ret;
	/* and not pinned for another of our peers: one key, one station */
	const struct hl_item_rotation *r = &it->u.rot;
	if (e->env.key_taken && (e->env.key_taken(e->env.user, e->peer_name, r->noise_key) ||
				 e->env.key_taken(e->env.user, e->peer_name, r->signing_key))) {
		snprintf(w->text, sizeof(w->text), "rotates to a key pinned for another peer");
		return HL_CHAIN_REFUSE;
	}
	return HL_CHAIN_OK;
}

void eng_rotation_taken(hl_engine *e, const struct hl_item *it)
{
	uint8_t fp[HL_FP_LEN];
	hl_chain_keys_after(it, &e->peer_keys);
	e->peer_rot_seq = it->seq;
	e->peer_rotations++;
	hl_fingerprint_next(e->peer_keys.noise, e->peer_keys.sign, e->peer_keys.next_hash, fp);
	event_t *ev = eng_add_event_info(e, HL_EV_ROTATED, fp, HL_FP_LEN);
	ev->seq = it->seq;
	hl_info("peer %s: rotated its keys at position %llu of its chain%s; pinned its new "
		"keys", e->peer_name, (unsigned long long)it->seq,
		it->u.rot.reason == HL_ROTATE_COMPROMISE ? " (it suspects a compromise)" : "");
}
