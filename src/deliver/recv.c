/* deliver/recv.c — RECEIVING an item, for the engine (engine_core.c;
 * docs/messages.md section 4, docs/items.md section 3).
 *
 * Items are opened (signature checked) before anything else; then the
 * chain rules (chain/accept.h) are applied against what the store holds
 * of both chains, looked up here and cached for the transaction.  An item
 * that breaks a rule is refused for good (a tombstone at its position);
 * one that the peer's quota, the disk reserve or the window cannot take
 * now is refused for now (nothing stored); one that contradicts another
 * item the peer signed is kept as evidence of equivocation.  What an
 * accepted item does depends on its kind (items.c).  Each item is stored
 * whole or not at all (a savepoint around it). */
#include "deliver/engine_int.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/err.h"
#include "util/log.h"
#include "util/mem.h"
#include "util/timefmt.h"

/* Equivocation evidence kept per peer: one piece per position of its
 * chain, at most this many in all; one proves the fork. */
#define EVIDENCE_MAX 8

/* ---- the chain rules on arrival (chain/accept.h) ---- */

/* The peer's entry at SEQ as held (e->itembuf is overwritten). */
static int chain_ref(hl_engine *e, uint64_t seq, struct hl_chain_ref *ref)
{
	struct hl_item_row row;
	memset(ref, 0, sizeof(*ref));
	if (seq == 0 || seq > e->in_top)
		return 0;
	int ret = hl_store_get_item(e->env.txn->store, e->peer_id, HL_DIR_IN, seq, &row,
				    e->itembuf, HL_ITEM_MAX);
	if (ret == HL_ENOTFOUND)
		return 0;
	if (ret < 0)
		return ret;
	ref->held = true;
	ref->item = row.kind != 0;
	ref->kind = row.kind;
	memcpy(ref->hash, row.hash, HL_HASH_LEN);
	if (ref->item && hl_item_decode(row.encoded, row.encoded_len, e->scratch) == 0)
		memcpy(ref->prev, e->scratch->prev, HL_HASH_LEN);
	return 0;
}

static int class_rule(hl_engine *e, const struct hl_item *it, struct hl_chain_why *w)
{
	const struct hl_item_message *m = &it->u.msg;
	hl_store *st = e->env.txn->store;
	unsigned p = m->precedence;
	struct hl_class_pos b, a;
	int ret;
	if (!e->class_known[p]) {
		if ((ret = hl_store_in_class_near(st, e->peer_id, p, (uint64_t)INT64_MAX, &b,
						  &a)) < 0)
			return ret;
		e->class_top[p] = (struct hl_chain_class_ref){ b.found, b.seq, b.class_seq };
		e->class_known[p] = true;
	}
	/* The common case, the next message of its precedence: the highest
	 * held is the one below it, and none is above. */
	struct hl_chain_class_ref below = e->class_top[p], above = { 0 };
	if (below.held && below.class_seq >= m->class_seq) {
		if ((ret = hl_store_in_class_near(st, e->peer_id, p, m->class_seq, &b, &a)) < 0)
			return ret;
		below = (struct hl_chain_class_ref){ b.found, b.seq, b.class_seq };
		above = (struct hl_chain_class_ref){ a.found, a.seq, a.class_seq };
	}
	return hl_chain_class(m, it->seq, &below, &above, w);
}

/* The nearest held item of the peer's chain, below or above SEQ, that
 * records our chain's head. */
static int head_near(hl_engine *e, uint64_t seq, bool above, struct hl_chain_head_ref *ref)
{
	struct hl_item_row row;
	uint64_t ps;
	const uint8_t *ph;
	memset(ref, 0, sizeof(*ref));
	if (above && seq >= e->in_top)
		return 0;
	int ret = hl_store_head_item_near(e->env.txn->store, e->peer_id, HL_DIR_IN, seq, above,
					  &row, e->itembuf, HL_ITEM_MAX);
	if (ret == HL_ENOTFOUND)
		return 0;
	if (ret < 0)
		return ret;
	if (hl_item_decode(row.encoded, row.encoded_len, e->scratch) == 0 &&
	    hl_chain_item_head(e->scratch, &ps, &ph))
		*ref = (struct hl_chain_head_ref){ true, row.seq, ps };
	return 0;
}

/* Our item at SEQ, for the rules that look into our chain. */
static int our_ref(hl_engine *e, uint64_t seq, struct hl_chain_ref *ref, int *msg_state)
{
	memset(ref, 0, sizeof(*ref));
	int ret = hl_store_out_entry(e->env.txn->store, e->peer_id, seq, &ref->kind, ref->hash,
				     msg_state);
	if (ret == HL_ENOTFOUND)
		return 0;
	ref->held = ref->item = ret == 0;
	return ret;
}

static int head_rule(hl_engine *e, const struct hl_item *it, struct hl_chain_why *w)
{
	uint64_t ps;
	const uint8_t *ph;
	struct hl_chain_head_ref below, above;
	struct hl_chain_ref target = { 0 };
	int state, ret;
	if (!hl_chain_item_head(it, &ps, &ph))
		return HL_CHAIN_OK;
	if ((ret = head_near(e, it->seq, false, &below)) < 0 ||
	    (ret = head_near(e, it->seq, true, &above)) < 0 ||
	    (ps && (ret = our_ref(e, ps, &target, &state)) < 0))
		return ret;
	return hl_chain_head(it->seq, ps, ph, &below, &above, &target, w);
}

/* The receipt rule's lookups into our chain; the last answer is kept, as
 * the rule asks for the same seq twice. */
struct rcpt_look {
	hl_engine *e;
	uint64_t seq;
	int state;
};

static int rcpt_other(void *arg, uint64_t seq, struct hl_chain_ref *ref)
{
	struct rcpt_look *l = arg;
	l->seq = seq;
	return our_ref(l->e, seq, ref, &l->state);
}

/* Acknowledged already: delivered (a receipt moved it), or refused by the
 * peer, which a receipt can no longer move (so a second receipt for it
 * would go unseen here, and be seen by `record verify`). */
static int rcpt_acked(void *arg, uint64_t seq, bool *yes)
{
	struct rcpt_look *l = arg;
	(void)seq;
	*yes = l->state == HL_MSG_DELIVERED || l->state == HL_MSG_REFUSED;
	return 0;
}

/* Every rule the peer's item IT (hash HASH), decoded and signed, must
 * satisfy given what we hold.  A verdict, or a negative code. */
static int chain_rules(hl_engine *e, const struct hl_item *it, const uint8_t hash[static 32],
		       struct hl_chain_why *w)
{
	struct hl_chain_ref before, after;
	int ret;
	if ((ret = chain_ref(e, it->seq - 1, &before)) < 0 ||
	    (ret = chain_ref(e, it->seq + 1, &after)) < 0)
		return ret;
	if ((ret = hl_chain_links(it, hash, &before, &after, w)) != HL_CHAIN_OK)
		return ret;
	if (it->kind == HL_ITEM_ROTATION)
		return eng_rotation_rules(e, it, w);
	if (it->kind == HL_ITEM_MESSAGE && (ret = class_rule(e, it, w)) != HL_CHAIN_OK)
		return ret;
	if ((ret = head_rule(e, it, w)) != HL_CHAIN_OK)
		return ret;
	if (it->kind == HL_ITEM_RECEIPT) {
		struct rcpt_look l = { .e = e };
		struct hl_chain_lookup look = { .arg = &l, .other = rcpt_other, .acked = rcpt_acked };
		return hl_chain_receipt(&it->u.rcpt, &look, w);
	}
	return HL_CHAIN_OK;
}

struct evidence_scan {
	uint64_t seq;
	size_t n;
	bool here;
};

static int evidence_row(void *arg, const struct hl_equivocation_row *row)
{
	struct evidence_scan *x = arg;
	x->n++;
	x->here = x->here || row->seq == x->seq;
	return 0;
}

/* ITEM (decoded as IT, hash HASH), signed by the peer, contradicts the
 * item we hold at FIRST_SEQ (its own position, or the neighbour whose link
 * it breaks): keep the pair as evidence, once per position and at most
 * EVIDENCE_MAX per peer, and tell the operator once for each kept. */
static int keep_evidence(hl_engine *e, const struct hl_item *it, const uint8_t *item, size_t len,
			 const uint8_t hash[static 32], uint64_t first_seq)
{
	hl_store *st = e->env.txn->store;
	struct evidence_scan x = { .seq = it->seq };
	struct hl_item_row first;
	int ret = hl_store_each_equivocation(st, e->peer_id, evidence_row, &x);
	if (ret < 0)
		return ret;
	if (x.here || x.n >= EVIDENCE_MAX) {
		eng_refuse_log(e, "another item that contradicts its chain at %llu (evidence kept "
			       "already)", (unsigned long long)it->seq);
		return 0;
	}
	if ((ret = hl_store_get_item(st, e->peer_id, HL_DIR_IN, first_seq, &first, e->itembuf,
				     HL_ITEM_MAX)) < 0)
		return ret;
	struct hl_equivocation_row row = {
		.peer_id = e->peer_id, .seq = it->seq,
		.first_item = first.encoded, .first_len = first.encoded_len,
		.second_item = item, .second_len = len, .detected_at = hl_now_ms(),
	};
	memcpy(row.first_hash, first.hash, HL_HASH_LEN);
	memcpy(row.second_hash, hash, HL_HASH_LEN);
	ret = hl_store_insert_equivocation(st, &row);
	if (ret == HL_EEXIST)
		return 0;
	if (ret < 0)
		return ret;
	hl_error("peer %s: EQUIVOCATION: it signed two different items as number %llu of its "
		 "chain; both kept as evidence", e->peer_name,
		 (unsigned long long)(first_seq < it->seq ? first_seq : it->seq));
	event_t *ev = eng_add_event_info(e, HL_EV_EQUIVOCATION, hash, HL_HASH_LEN);
	ev->seq = it->seq;
	return 0;
}

/* ---- an item arrives ---- */

/* A second, different item at a position of the peer's chain we hold
 * (HAVE).  When it verifies as the peer's, the pair proves the peer signed
 * both: keep it (keep_evidence) and tell the operator.  Our chain copy
 * keeps the first. */
static int on_equivocation(hl_engine *e, const struct hl_item_row *have, const uint8_t *item,
			   size_t len, const uint8_t hash[static 32])
{
	struct hl_item *it = xcalloc(1, sizeof(*it));
	uint8_t key[32];
	int ret = eng_peer_key_at(e, have->seq, key);
	if (ret < 0) {
		free(it);
		return ret;
	}
	if (have->kind == 0 ||
	    hl_item_open_key(item, len, e->peer_sign, e->me_card.sign, key, it) < 0)
		eng_refuse_log(e, "a different item at seq %llu that proves nothing (ignored)",
			       (unsigned long long)have->seq);
	else
		ret = keep_evidence(e, it, item, len, hash, have->seq);
	free(it);
	return ret;
}

/* An item at SEQ (hash HASH) whose signature does not verify with the
 * peer's keys as we know them.  Past a position we do not hold, a rotation
 * there may have changed the keys: refused for now, offered again by its
 * author once the positions before it are in (docs/items.md section 3,
 * rule 5).  Otherwise refused for good. */
static int bad_signature(hl_engine *e, uint64_t seq, const uint8_t hash[static 32])
{
	struct hl_chain_head h;
	int ret = hl_store_in_contiguous(e->env.txn->store, e->peer_id, &h);
	if (ret < 0)
		return ret;
	e->contig = h.seq;
	if (seq > e->contig + 1) {
		eng_refuse_later(e, seq, hash, "its signature does not verify with the keys known, "
				 "and a position before it is not held yet (a rotation there may "
				 "have changed the keys)");
		return 0;
	}
	return eng_tombstone(e, seq, hash, HL_REFUSE_SIGNATURE, "signature does not verify");
}

/* An item that does not decode: refused at the position its common
 * header claims (the link is authenticated: only the peer can make that
 * claim, and only against its own chain).  Without even a seq, the
 * session ends. */
static int on_bad_item(hl_engine *e, const struct hl_pkt_item *r, const struct hl_item *it,
		       const uint8_t hash[static 32])
{
	uint64_t seq;
	struct hl_item_row have;
	struct hl_chain_why w;
	hl_chain_why_init(&w, NULL, "our chain's");
	int ret;
	if (hl_item_peek_seq(r->item, r->item_len, &seq) < 0) {
		eng_set_error(e, "undecodable item");
		return HL_EINVAL;
	}
	if ((ret = hl_txn_need(e->env.txn)) < 0 || (ret = eng_load_in(e)) < 0 ||
	    (ret = eng_cache_load(e)) < 0 || (ret = eng_keys_load(e)) < 0)
		return ret;
	if (hl_chain_window(seq, e->contig, &w) != HL_CHAIN_OK) {
		eng_refuse_later(e, seq, hash, w.text);
		return 0;
	}
	ret = hl_store_get_item(e->env.txn->store, e->peer_id, HL_DIR_IN, seq, &have,
				e->itembuf, HL_ITEM_MAX);
	if (ret == 0) {
		e->need_ack = true; /* that position is settled already */
		return 0;
	}
	if (ret != HL_ENOTFOUND)
		return ret;
	/* an unheld position: after the last rotation held (keys.c) */
	bool signed_by_peer = crypto_sign_verify_detached(
		r->item + r->item_len - HL_SIG_LEN, r->item, r->item_len - HL_SIG_LEN,
		e->peer_keys.sign) == 0;
	if (!signed_by_peer)
		return bad_signature(e, seq, hash);
	char text[HL_REFUSE_TEXT_MAX + 1];
	snprintf(text, sizeof(text), "malformed item: %.150s", it->bad ? it->bad : "does not decode");
	return eng_tombstone(e, seq, hash, HL_REFUSE_MALFORMED, text);
}

/* Is the contiguous head (which only grows in a transaction) too far
 * behind SEQ?  Read again only when the known one says so. */
static bool too_far(hl_engine *e, uint64_t seq, struct hl_chain_why *w)
{
	if (hl_chain_window(seq, e->contig, w) == HL_CHAIN_OK)
		return false;
	struct hl_chain_head h;
	if (hl_store_in_contiguous(e->env.txn->store, e->peer_id, &h) == 0)
		e->contig = h.seq;
	return hl_chain_window(seq, e->contig, w) != HL_CHAIN_OK;
}

/* The peer's rotation IT (hash HASH) is refused (WHY): the chain keeps
 * its keys, and the operator is alarmed after the commit that records the
 * tombstone (docs/rotation.md section 3). */
static void rotation_refused(hl_engine *e, const struct hl_item *it, const uint8_t hash[static 32],
			     const char *why)
{
	hl_error("peer %s: REFUSED its key rotation at position %llu of its chain: %s; it keeps "
		 "its pinned keys", e->peer_name, (unsigned long long)it->seq, why);
	event_t *ev = eng_add_event_info(e, HL_EV_ROTATION_REFUSED, hash, HL_HASH_LEN);
	ev->seq = it->seq;
}

/* The signed item IT, new at its position: the chain rules, then its kind. */
static int on_new_item(hl_engine *e, const struct hl_item *it, const struct hl_pkt_item *r,
		       const uint8_t hash[static 32])
{
	struct hl_chain_why w;
	hl_chain_why_init(&w, NULL, "our chain's");
	int v = chain_rules(e, it, hash, &w);
	if (v < 0)
		return v;
	if (v == HL_CHAIN_LATER) {
		eng_refuse_later(e, it->seq, hash, w.text);
		return 0;
	}
	if (v == HL_CHAIN_REFUSE) {
		char text[HL_REFUSE_TEXT_MAX + 1];
		snprintf(text, sizeof(text), "%s %.180s", hl_item_kind_name((int)it->kind), w.text);
		if (it->kind == HL_ITEM_ROTATION)
			rotation_refused(e, it, hash, w.text);
		return eng_tombstone(e, it->seq, hash, HL_REFUSE_MALFORMED, text);
	}
	if (v == HL_CHAIN_FORK) {
		/* Its position stays open (no tombstone, no ACK) for the item
		 * that does fit. */
		eng_refuse_log(e, "item %llu %s", (unsigned long long)it->seq, w.text);
		eng_queue_refusal(e, it->seq, hash, HL_REFUSE_MALFORMED, w.text);
		return keep_evidence(e, it, r->item, r->item_len, hash, w.against);
	}
	int ret;
	if (it->kind != HL_ITEM_MESSAGE) {
		/* its row and bytes, and what it makes us store and author (a
		 * check's record and our answer, an agreement's record) */
		bool over;
		if ((ret = eng_over_limits(e, 3 * HL_STORE_ROW_COST + r->item_len + HL_ITEM_MAX / 32,
					   &over)) < 0)
			return ret;
		if (over) {
			eng_refuse_later(e, it->seq, hash, "over quota or disk reserve");
			return 0;
		}
	}
	e->stats.items_in++;
	e->refusing[0] = '\0';
	switch (it->kind) {
	case HL_ITEM_MESSAGE:
		ret = eng_on_message_item(e, it, r->item, r->item_len, hash, r->rest, r->rest_len);
		break;
	case HL_ITEM_RECEIPT:
		ret = eng_on_receipt_item(e, it, r->item, r->item_len, hash);
		break;
	default:
		ret = eng_on_signed_item(e, it, r->item, r->item_len, hash);
		if (ret == 0 && it->kind == HL_ITEM_ROTATION)
			eng_rotation_taken(e, it);
		break;
	}
	return ret;
}

/* Checks the decoded item IT against the link: seen before, signed, ours.
 * Handles it; HL_EAGAIN-free: 0 or a negative code. */
static int on_decoded_item(hl_engine *e, struct hl_item *it, const struct hl_pkt_item *r,
			   const uint8_t hash[static 32])
{
	struct hl_item_row have;
	struct hl_chain_why w;
	hl_chain_why_init(&w, NULL, "our chain's");
	int ret;
	if ((ret = hl_txn_need(e->env.txn)) < 0 || (ret = eng_load_in(e)) < 0 ||
	    (ret = eng_cache_load(e)) < 0 || (ret = eng_keys_load(e)) < 0)
		return ret;
	if (too_far(e, it->seq, &w)) {
		eng_refuse_later(e, it->seq, hash, w.text);
		return 0;
	}
	/* Seen before? */
	ret = hl_store_get_item(e->env.txn->store, e->peer_id, HL_DIR_IN, it->seq, &have,
				e->itembuf, HL_ITEM_MAX);
	if (ret == 0) {
		if (sodium_memcmp(have.hash, hash, HL_HASH_LEN) != 0)
			ret = on_equivocation(e, &have, r->item, r->item_len, hash);
		e->need_ack = true; /* a resend: acknowledge again */
		return ret;
	}
	if (ret != HL_ENOTFOUND)
		return ret;

	/* A held ITEM's signature was checked in hl_engine_drain() (IT is
	 * decoded from the same bytes above), with the peer's key as it was
	 * then: a rotation since, in this burst, has it checked again.  The
	 * key is the one current on the peer's chain: every position not held
	 * is after its last rotation held (keys.c). */
	if (e->cur_verdict >= 0 && sodium_memcmp(e->verify_key, e->peer_keys.sign, 32) == 0) {
		ret = e->cur_verdict ? 0 : HL_EAUTH;
		if (ret == 0 && it->kind == HL_ITEM_ROTATION &&
		    !hl_item_rotation_sig_ok(r->item, r->item_len, it))
			ret = HL_EAUTH;
	} else {
		ret = hl_item_open_key(r->item, r->item_len, NULL, NULL, e->peer_keys.sign, it);
	}
	if (ret == HL_EAUTH)
		return bad_signature(e, it->seq, hash);
	if (ret < 0)
		return eng_tombstone(e, it->seq, hash, HL_REFUSE_MALFORMED, "malformed item");
	if (sodium_memcmp(it->author, e->peer_sign, 32) != 0)
		return eng_tombstone(e, it->seq, hash, HL_REFUSE_SIGNATURE, "signed by another station");
	if (sodium_memcmp(it->counterpart, e->me_card.sign, 32) != 0)
		return eng_tombstone(e, it->seq, hash, HL_REFUSE_RECIPIENT, "addressed to another station");
	return on_new_item(e, it, r, hash);
}

/* What eng_on_item added to the engine's memory, undone when the store's
 * savepoint is rolled back: nothing of a failed item may be half kept. */
struct item_mark {
	size_t nrcpt, nev, nref;
	bool need_ack;
};

static void item_undo(hl_engine *e, const struct item_mark *m, uint64_t seq)
{
	e->nrcpt = m->nrcpt;
	e->nev = m->nev;
	e->nref = m->nref;
	e->need_ack = m->need_ack;
	struct in_msg *im = eng_in_find(e, seq);
	if (im) {
		eng_in_unlink(e, im);
		eng_in_msg_free(im);
	}
	eng_cache_forget(e);
	e->tombs_known = false;
}

int eng_on_item(hl_engine *e, const uint8_t *body, size_t len, uint64_t now)
{
	struct hl_pkt_item r;
	uint8_t hash[HL_HASH_LEN];
	int ret;
	(void)now;

	if ((ret = hl_pkt_item_decode(body, len, &r)) < 0) {
		eng_set_error(e, "malformed ITEM record");
		return ret;
	}
	if (r.item_len > HL_ITEM_MAX) {
		eng_set_error(e, "ITEM of %zu bytes", r.item_len);
		return HL_ETOOBIG;
	}
	hl_item_hash(r.item, r.item_len, hash);
	struct hl_item *it = xcalloc(1, sizeof(*it));
	bool decoded = hl_item_decode(r.item, r.item_len, it) == 0;
	/* One savepoint around everything this item writes: an item is
	 * stored whole or not at all, even when a write fails half-way (the
	 * burst's other items still commit). */
	struct item_mark mark = { e->nrcpt, e->nev, e->nref, e->need_ack };
	bool sp = false;
	if ((ret = hl_txn_need(e->env.txn)) == 0 && (ret = hl_store_savepoint(e->env.txn->store)) == 0)
		sp = true;
	if (ret == 0)
		ret = decoded ? on_decoded_item(e, it, &r, hash) : on_bad_item(e, &r, it, hash);
	if (ret < 0 && !e->error[0])
		eng_set_error(e, "store: %s", hl_store_errmsg(e->env.txn->store));
	if (ret == 0 && e->in_loaded)
		ret = eng_retry_waiting(e);
	if (sp && ret == 0 && (ret = hl_store_release(e->env.txn->store)) < 0)
		eng_set_error(e, "store: %s", hl_store_errmsg(e->env.txn->store));
	if (sp && ret < 0) {
		hl_store_rollback_to(e->env.txn->store);
		item_undo(e, &mark, it->seq);
	}
	if (decoded && it->kind == HL_ITEM_MESSAGE)
		hl_stage_in_resolve(e->stage, it->u.msg.id, it->seq);
	free(it);
	return ret;
}
