/* deliver/restore.c — RESTORES, for the engine (engine_core.c;
 * docs/messages.md section 7).
 *
 * A station restored from a backup
 * may hold less of either chain than its peer knows.  Its own chain: while
 * the store says "resync" for the peer, the engine takes nothing from the
 * peer but ACK, RESUME, CREDIT and RETURN; the session's first ACK says how
 * much of our chain the peer holds; what it holds beyond our head comes
 * back one item at a time (RECLAIM, RETURN), checked like any item of ours
 * (our signature, its seq, its link to our head) and stored as
 * acknowledged; then the flag goes and the session is ended (restart) so
 * the next one starts clean.  Until then the store refuses every new item
 * of ours on the link, so we never sign a second item at a position the
 * peer holds.  The peer's chain: on either side, a session's first ACK
 * that leaves out items of ours the store had as acknowledged means the
 * peer lost them: they are marked unacknowledged and sent again. */
#include "deliver/engine_int.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chain/adopt.h"
#include "msg/message.h"
#include "util/err.h"
#include "util/log.h"
#include "util/mem.h"
#include "util/timefmt.h"

/* The peer's first ACK leaves out items of ours the store had as
 * acknowledged: it lost them (restored from a backup).  They are sent
 * again (*LOST of them: the caller loads them into the window); a peer
 * that lies about it only makes us send our own items twice, at most a
 * window's worth per session. */
int eng_peer_lost(hl_engine *e, const struct hl_pkt_ack *a, uint64_t *lost)
{
	uint64_t n = 0;
	int ret = hl_store_unack_lost(e->env.txn->store, e->peer_id, a->base,
				      (const uint64_t (*)[2])a->ranges, a->n, OUT_WINDOW, &n);
	*lost = ret == 0 ? n : 0;
	if (ret < 0 || n == 0)
		return ret;
	hl_warn("peer %s no longer holds %llu item(s) of ours it had acknowledged (restored "
		"from a backup?): sending them again", e->peer_name, (unsigned long long)n);
	if (a->base < e->acked_base)
		e->acked_base = a->base;
	return 0;
}

/* RECLAIM and RETURN go out first in pump(): a busy session (chunks of a
 * document) only delays them. */
static int send_reclaim(hl_engine *e, uint64_t seq)
{
	e->reclaim_pending = seq;
	return 0;
}

void eng_resync_send(hl_engine *e, uint64_t now)
{
	struct hl_item_row row;
	if (e->reclaim_pending) {
		uint8_t body[HL_RECLAIM_LEN];
		hl_pkt_credit_encode(e->reclaim_pending, body); /* the shape: one 8-byte integer */
		if (eng_send_pkt(e, HL_PKT_RECLAIM, body, sizeof(body), now) == 0)
			e->reclaim_pending = 0;
	}
	if (!e->return_pending)
		return;
	int ret = hl_store_get_item(e->env.txn->store, e->peer_id, HL_DIR_IN, e->return_pending,
				    &row, e->itembuf, HL_ITEM_MAX);
	if (ret == HL_ENOTFOUND || (ret == 0 && !row.encoded)) {
		hl_warn("peer %s asks for its item %llu back, which this station %s", e->peer_name,
			(unsigned long long)e->return_pending,
			ret == 0 ? "refused (no bytes kept)" : "does not hold");
		e->return_pending = 0;
		return;
	}
	if (ret < 0)
		return;
	size_t len;
	if (hl_pkt_item_encode(row.encoded, row.encoded_len, e->rec, HL_PACKET_BODY_MAX,
			       &len) == 0 &&
	    eng_send_pkt(e, HL_PKT_RETURN, e->rec, len, now) == 0)
		e->return_pending = 0;
}

/* Resynchronised: the flag goes (in the burst's transaction), and the
 * session ends after the commit so that the next starts clean. */
static int resync_done(hl_engine *e, const char *how)
{
	int ret = hl_store_resync_done(e->env.txn->store, e->peer_id);
	if (ret < 0)
		return ret;
	hl_info("peer %s: resynchronised after a restore: %s", e->peer_name, how);
	e->resync = false;
	e->restart = e->session != NULL;
	return 0;
}

/* Restored: how far does the peer hold our chain?  Not beyond our head:
 * nothing was lost.  Beyond: reclaim the items after our head. */
int eng_resync_verify(hl_engine *e, const struct hl_pkt_ack *a)
{
	struct hl_chain_head head;
	char how[160];
	if (!e->resync)
		return 0;
	uint64_t hold = a->base;
	for (unsigned i = 0; i < a->n; i++)
		hold = a->ranges[i][1] > hold ? a->ranges[i][1] : hold;
	int ret = hl_store_chain_head(e->env.txn->store, e->peer_id, HL_DIR_OUT, &head);
	if (ret < 0)
		return ret;
	if (hold <= head.seq) {
		snprintf(how, sizeof(how), "it holds our chain up to %llu, we hold %llu",
			 (unsigned long long)hold, (unsigned long long)head.seq);
		return resync_done(e, how);
	}
	if (!e->session) {
		/* A bundle's ACK: the items come back over a session only. */
		hl_warn("peer %s holds our chain up to %llu, this store only up to %llu (restored "
			"from an older backup): the daemon gets them back once the link is up",
			e->peer_name, (unsigned long long)hold, (unsigned long long)head.seq);
		return 0;
	}
	e->resync_hold = hold;
	e->resync_from = head.seq + 1;
	hl_warn("peer %s holds our chain up to %llu, this store only up to %llu (restored from "
		"an older backup): getting items %llu-%llu back from it", e->peer_name,
		(unsigned long long)hold, (unsigned long long)head.seq,
		(unsigned long long)head.seq + 1, (unsigned long long)hold);
	return send_reclaim(e, head.seq + 1);
}

/* The peer asks for the item of its own chain at SEQ: ours to give back
 * if we hold it (a tombstone has no bytes to give).  At most a window's
 * worth per session: a request costs the peer a round trip, and us a
 * read. */
int eng_on_reclaim(hl_engine *e, const uint8_t *body, size_t len)
{
	uint64_t seq;
	int ret = hl_pkt_reclaim_decode(body, len, &seq);
	if (ret < 0) {
		eng_set_error(e, "malformed RECLAIM record");
		return ret;
	}
	/* One answer pending at a time: an honest peer asks for the next
	 * only once it has the last. */
	if (e->session && ++e->reclaims <= OUT_WINDOW)
		e->return_pending = seq;
	return 0;
}

/* A message of ours that came back as its signed item only: its row
 * says what the item says (id, precedence, class_seq, sizes, attachment
 * names and hashes), so the next message takes the next class_seq and the
 * peer's receipt finds it; its contents stayed at the peer, so the row is
 * purged (docs/retention.md). */
static int recovered_message(hl_engine *e, const struct hl_item *it)
{
	const struct hl_item_message *m = &it->u.msg;
	struct hl_msg_row row = {
		.peer_id = e->peer_id, .dir = HL_DIR_OUT, .seq = it->seq,
		.precedence = m->precedence, .class_seq = m->class_seq, .subject = "",
		.body_size = m->body_size, .sent_at = (int64_t)it->time_ms,
		.state = HL_MSG_SENT, .n_att = m->n_attachments,
	};
	memcpy(row.id, m->id, HL_MSG_ID_LEN);
	row.att = hl_adopt_att_rows(m);
	int ret = hl_store_insert_message(e->env.txn->store, &row);
	if (ret == 0)
		ret = hl_store_set_purged(e->env.txn->store, m->id, hl_now_ms());
	free(row.att);
	return ret;
}

/* A receipt, check or answer of ours back from the peer states how much of
 * its chain we held: our next ones may not state less (store.h,
 * hl_store_signing_head). */
static int recovered_hold(hl_engine *e, const struct hl_item *it)
{
	const uint8_t *hash;
	uint64_t seq;
	if (!hl_chain_item_head(it, &seq, &hash))
		return 0;
	return hl_store_claim_hold(e->env.txn->store, e->peer_id, seq, hash);
}

/* An item of our own chain back from the peer: it must be ours (our
 * signature, for this peer), the next position, linked to our head; it
 * is stored as acknowledged (the peer holds it: the store's trigger lets
 * exactly that in during a resync). */
int eng_on_return(hl_engine *e, const uint8_t *body, size_t len)
{
	struct hl_pkt_item r;
	struct hl_chain_head head;
	hl_store *st = e->env.txn->store;
	int ret = hl_pkt_return_decode(body, len, &r);
	if (ret < 0 || r.item_len > HL_ITEM_MAX) {
		eng_set_error(e, "malformed RETURN record");
		return ret < 0 ? ret : HL_ETOOBIG;
	}
	if (!e->resync || !e->resync_hold)
		return 0; /* not asked for */
	struct hl_item *it = xcalloc(1, sizeof(*it));
	uint8_t key[32];
	/* ours, at the next position of our chain: signed with our key there
	 * (a rotation of ours comes back like any item) */
	if ((ret = hl_store_chain_head(st, e->peer_id, HL_DIR_OUT, &head)) < 0 ||
	    (ret = eng_our_key_at(e, head.seq + 1, key)) < 0 ||
	    (ret = hl_item_open_key(r.item, r.item_len, e->me_card.sign, e->peer_sign, key, it)) < 0)
		goto bad;
	if (it->seq != head.seq + 1 || sodium_memcmp(it->prev, head.hash, HL_HASH_LEN) != 0) {
		ret = HL_EAUTH;
		goto bad;
	}
	struct hl_item_row row = {
		.peer_id = e->peer_id, .dir = HL_DIR_OUT, .seq = it->seq, .kind = it->kind,
		.encoded = r.item, .encoded_len = r.item_len, .acked = true,
		.precedence = it->kind == HL_ITEM_MESSAGE ? it->u.msg.precedence : HL_PREC_FLASH,
		.stored_at = hl_now_ms(),
	};
	hl_item_hash(r.item, r.item_len, row.hash);
	if ((ret = hl_txn_need(e->env.txn)) == 0 && (ret = hl_store_insert_item(st, &row)) == 0)
		ret = it->kind == HL_ITEM_MESSAGE ? recovered_message(e, it) : recovered_hold(e, it);
	/* What it acknowledged is acknowledged for good: the copy that gets
	 * those messages again must not receipt them a second time. */
	for (unsigned i = 0; ret == 0 && it->kind == HL_ITEM_RECEIPT && i < it->u.rcpt.count; i++) {
		ret = hl_store_recovered_ack_add(st, e->peer_id, it->u.rcpt.entries[i].seq);
		e->recovered_acks = true;
	}
	free(it);
	if (ret < 0)
		return ret;
	if (row.seq < e->resync_hold)
		return send_reclaim(e, row.seq + 1);
	char how[160];
	snprintf(how, sizeof(how), "got our items %llu-%llu back from it",
		 (unsigned long long)e->resync_from, (unsigned long long)row.seq);
	return resync_done(e, how);
bad:
	free(it);
	/* Not what we asked for: say so, and stay held (the operator sees
	 * it in the log and in status). */
	eng_set_error(e, "the item of ours that %s sent back does not verify (%s): this station "
		      "stays unable to sign for it", e->peer_name, hl_strerror(ret));
	hl_warn("peer %s: %s", e->peer_name, e->error);
	return 0;
}

bool hl_engine_restart(hl_engine *e)
{
	bool r = e->restart;
	e->restart = false;
	return r;
}
