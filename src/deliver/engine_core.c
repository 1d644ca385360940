/* deliver/engine_core.c — the messages protocol for one peer (engine.h,
 * docs/messages.md): the engine itself.  It owns the engine's life (new,
 * free, a session attached and detached, with the state a session starts
 * by sending: ACK, RESUME and the REFUSEs owed), the packets that arrive
 * (held for the verifier, then dispatched by type) and the group commit's
 * hooks (precommit authors the receipts for what became visible,
 * postcommit tells the operator and sends what is owed, abort forgets).
 * The rest is split by the direction of data, in files that share
 * engine_int.h (the engine's state and the eng_ functions) and call one
 * another downwards only, in this order from the top (this file calls
 * them all; none calls it).  No file is named engine.c, so that engine.h,
 * the API, stands below them all, engine_int.h included:
 *
 *   send.c      SENDING: the four precedence queues, the pump, the ITEM
 *               and CHUNK packets (one builder of the ITEM packet, which
 *               bundle export uses too, deliver/send.h), and what the peer
 *               says about our items (ACK, RESUME, REFUSE, CREDIT, STAGED).
 *   recv.c      RECEIVING an item: opened and checked (its signature, the
 *               chain rules of chain/accept.h against what the store
 *               holds), equivocation evidence, each item whole or not at
 *               all.
 *   items.c     what each kind of item does once accepted: a message's
 *               rows, receipts, checks, answers, agreements.
 *   staging.c   the engine's side of staging (deliver/stage.h), both ways.
 *   restore.c   RECLAIM and RETURN: resynchronising after a restore.
 *   parts.c     messages being received: their parts (CHUNKs, the part
 *               writer) and the order in which they become visible.
 *   refuse.c    refusing the peer's items, for good or for now; the
 *               peer's quota and the disk reserve.
 *   keys.c      the keys of both chains: the cards, the peer's
 *               rotations (docs/rotation.md).
 *   credit.c    the flow window (deliver/flow.h) and CREDIT.
 *   base.c      the transaction and the chain cache, errors, events, the
 *               ACK and REFUSEs owed, and the invariants I1-I4 with their
 *               check.
 *   verifier.c  held ITEMs' signatures, checked on a second thread. */
#include "deliver/engine.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chain/ours.h"
#include "deliver/engine_int.h"
#include "msg/message.h"
#include "util/err.h"
#include "util/log.h"
#include "util/mem.h"
#include "util/timefmt.h"

#define HOLD_MAX (4u << 20)          /* held packets (env.defer_items): drained past this */
/* A drain stops after the packets that raised this many events (the rest
 * wait for the next turn): one turn must not flood `watch` clients, which
 * the daemon drops when they fall 1 MiB behind. */
#define DRAIN_EVENTS_MAX 1024

const char *hl_engine_error(const hl_engine *e)
{
	return e->error;
}

/* ---- packets in ---- */

static int dispatch(hl_engine *e, uint8_t type, const uint8_t *body, size_t len, uint64_t now)
{
	int ret;
	/* Restored and not yet resynchronised: nothing of the peer's is
	 * taken (it would call for receipts we may not sign yet); it comes
	 * again in the session after the resync. */
	if (e->resync && (type == HL_PKT_ITEM || type == HL_PKT_CHUNK ||
			  type == HL_PKT_STAGE || type == HL_PKT_STAGED))
		return 0;
	e->now = now;
	switch (type) {
	case HL_PKT_ITEM: ret = eng_on_item(e, body, len, now); break;
	case HL_PKT_CHUNK:
		e->pushed_now = 0;
		ret = eng_on_chunk(e, body, len);
		if (ret == 0 && len > HL_CHUNK_HDR_LEN) {
			e->taken += len - HL_CHUNK_HDR_LEN;
			e->pushed_pw += e->pushed_now;
			eng_credit_maybe(e, now, false);
		}
		break;
	case HL_PKT_CREDIT: ret = eng_on_credit(e, body, len, now); break;
	case HL_PKT_ACK: ret = eng_on_ack(e, body, len); break;
	case HL_PKT_RESUME: ret = eng_on_resume(e, body, len); break;
	case HL_PKT_REFUSE: ret = eng_on_refuse(e, body, len, now); break;
	case HL_PKT_STAGE:
		/* STAGE data counts for CREDIT as CHUNK data does */
		e->pushed_now = 0;
		ret = eng_on_stage(e, body, len);
		if (ret == 0 && len > HL_STAGE_HDR_LEN) {
			e->taken += len - HL_STAGE_HDR_LEN;
			e->pushed_pw += e->pushed_now;
			eng_credit_maybe(e, now, false);
		}
		break;
	case HL_PKT_STAGED: ret = eng_on_staged(e, body, len); break;
	case HL_PKT_RECLAIM: ret = eng_on_reclaim(e, body, len); break;
	case HL_PKT_RETURN: ret = eng_on_return(e, body, len); break;
	default:
		return 0; /* other application packets are not ours */
	}
	if (ret < 0 && !e->error[0])
		eng_set_error(e, "%s", hl_strerror(ret));
	eng_assert_invariants(e);
	return ret;
}

/* ---- held packets (env.defer_items; verifier.c checks their ITEMs) ---- */

static void held_drop(hl_engine *e)
{
	e->nheld = 0;
	e->hlen = 0;
	if (e->hcap > HOLD_MAX + HL_PACKET_BODY_MAX) {
		free(e->hbuf);
		e->hbuf = NULL;
		e->hcap = 0;
	}
}

int hl_engine_drain(hl_engine *e, uint64_t now)
{
	if (e->nheld == 0)
		return 0;
	eng_verify_held(e);
	int ret = 0;
	size_t i;
	for (i = 0; i < e->nheld && ret == 0; i++) {
		if (i > 0 && e->nev >= DRAIN_EVENTS_MAX)
			break;
		const struct held *h = &e->held[i];
		e->cur_verdict = h->verdict;
		ret = dispatch(e, h->type, e->hbuf + h->off, h->len, now);
	}
	e->cur_verdict = -1;
	if (ret == 0 && i < e->nheld) {
		/* the rest, for the next turn (their bytes stay where they are) */
		memmove(e->held, e->held + i, (e->nheld - i) * sizeof(*e->held));
		e->nheld -= i;
		return 0;
	}
	held_drop(e);
	return ret;
}

bool hl_engine_holding(const hl_engine *e)
{
	return e->nheld > 0;
}

int hl_engine_on_packet(hl_engine *e, uint8_t type, const uint8_t *body, size_t len,
			uint64_t now)
{
	bool ours = type == HL_PKT_ITEM || type == HL_PKT_CHUNK || type == HL_PKT_ACK ||
		    type == HL_PKT_RESUME || type == HL_PKT_REFUSE;
	if (!e->env.defer_items || !ours || (type != HL_PKT_ITEM && e->nheld == 0))
		return dispatch(e, type, body, len, now);
	/* Held, in order, with everything after it: a CHUNK must not pass
	 * the ITEM of its message. */
	if (e->nheld == e->capheld) {
		e->capheld = e->capheld ? 2 * e->capheld : 256;
		e->held = xrealloc(e->held, e->capheld * sizeof(*e->held));
	}
	if (e->hlen + len > e->hcap) {
		while (e->hlen + len > e->hcap)
			e->hcap = e->hcap ? 2 * e->hcap : 256 * 1024;
		e->hbuf = xrealloc(e->hbuf, e->hcap);
	}
	memcpy(e->hbuf + e->hlen, body, len);
	e->held[e->nheld++] = (struct held){ .type = type, .verdict = -1, .off = e->hlen,
					     .len = len };
	e->hlen += len;
	return e->hlen >= HOLD_MAX ? hl_engine_drain(e, now) : 0;
}

/* ---- state at the start of a session ---- */

static int refused_row(void *arg, const struct hl_msg_row *row)
{
	hl_engine *e = arg;
	struct hl_item_row irow;
	if (hl_store_get_item(e->env.txn->store, e->peer_id, HL_DIR_IN, row->seq, &irow,
			      e->itembuf, HL_ITEM_MAX) == 0)
		eng_queue_refusal(e, row->seq, irow.hash, HL_REFUSE_ATTACHMENT,
				  row->reason ? row->reason : "refused");
	return 0;
}

static int send_resume(hl_engine *e, uint64_t now)
{
	struct hl_pkt_resume *r = xcalloc(1, sizeof(*r));
	size_t len;
	for (struct in_msg *m = e->in; m && r->n < HL_RESUME_MAX; m = m->next) {
		for (unsigned i = 0; i < NPARTS_MAX && r->n < HL_RESUME_MAX; i++) {
			const struct in_part *p = &m->parts[i];
			if (!p->present)
				continue;
			r->e[r->n].seq = m->seq;
			r->e[r->n].part = (uint8_t)i;
			r->e[r->n].offset = p->complete ? p->size : p->durable;
			r->n++;
		}
		/* a message with no parts left still needs listing: its
		 * sender must not take it for whole */
		if (!m->parts[0].present && r->n < HL_RESUME_MAX) {
			bool any = false;
			for (unsigned i = 1; i < NPARTS_MAX; i++)
				any = any || m->parts[i].present;
			if (!any) {
				r->e[r->n].seq = m->seq;
				r->e[r->n].part = 0;
				r->e[r->n].offset = 0;
				r->n++;
			}
		}
	}
	int ret = hl_pkt_resume_encode(r, e->rec, HL_PACKET_BODY_MAX, &len);
	if (ret == 0)
		ret = eng_send_pkt(e, HL_PKT_RESUME, e->rec, len, now);
	free(r);
	return ret;
}

void hl_engine_attach(hl_engine *e, hl_session *session, uint64_t now)
{
	held_drop(e); /* an earlier session's: never acknowledged, resent */
	hl_stage_reset(e->stage);
	e->session = session;
	e->synced = false;
	e->error[0] = '\0';
	eng_queues_clear(e);
	/* Durable state only: what an earlier session left in memory may be
	 * ahead of the store. */
	eng_in_clear(e);
	e->nref = 0;
	if (e->env.txn->open) {
		/* The caller attaches between commits; be safe. */
		hl_warn("peer %s: session opened inside a transaction", e->peer_name);
	}
	/* eng_in_clear() stopped the parts' workers: the counters are ours. */
	e->credit_on = (hl_session_own_flags(session) & hl_session_peer_flags(session) &
			HL_HELLO_FLAG_CREDIT) != 0;
	e->chunk_sent = e->chunk_credit = e->taken = e->pushed_pw = e->credit_sent = 0;
	atomic_store(&e->done_pw, 0);
	free(e->flow);   /* each session measures its path afresh */
	e->flow = NULL;
	e->stage_on = (hl_session_peer_flags(session) & HL_HELLO_FLAG_STAGE) != 0;
	e->first_ack = true;
	e->restart = false;
	e->resync_hold = 0;
	e->reclaims = 0;
	e->reclaim_pending = e->return_pending = 0;
	if (hl_store_resync_pending(e->env.txn->store, e->peer_id, &e->resync) < 0)
		e->resync = true; /* in doubt, sign nothing new (the store refuses it anyway) */
	if (e->resync) {
		eng_set_error(e, "restored from a backup: signing nothing new for %s until it says how "
			      "much of our chain it holds", e->peer_name);
		hl_warn("peer %s: this station was %s", e->peer_name, e->error);
	}
	if (eng_load_in(e) < 0) {
		hl_warn("peer %s: cannot load incoming state: %s", e->peer_name, e->error);
		return;
	}
	/* What we hold of each part is what the store says is durable. */
	for (struct in_msg *m = e->in; m; m = m->next)
		for (unsigned i = 0; i < NPARTS_MAX; i++)
			if (m->parts[i].present && !m->parts[i].complete && m->parts[i].done != m->parts[i].durable)
				m->parts[i].done = m->parts[i].durable;
	/* ACK, RESUME, then the REFUSEs of messages refused after they were
	 * stored (repeated each session). */
	e->ack_owed = true;
	eng_send_owed(e, now);
	if (send_resume(e, now) < 0)
		hl_warn("peer %s: cannot send session state", e->peer_name);
	if (hl_store_each_in_refused(e->env.txn->store, e->peer_id, refused_row, e) < 0)
		hl_warn("peer %s: cannot load refused messages: %s", e->peer_name,
			hl_store_errmsg(e->env.txn->store));
	eng_send_owed(e, now);
}

void hl_engine_detach(hl_engine *e)
{
	held_drop(e);
	hl_stage_reset(e->stage);
	e->session = NULL;
	e->synced = false;
	eng_queues_clear(e);
	free(e->flow);
	e->flow = NULL;
	free(e->resume.e);
	e->resume.e = NULL;
	e->resume.n = 0;
}

/* ---- around the commit ---- */

int hl_engine_precommit(hl_engine *e, uint64_t now)
{
	hl_store *st = e->env.txn->store;
	int ret;
	(void)now;
	for (struct in_msg *m = e->in; m; m = m->next)
		for (unsigned i = 1; i < NPARTS_MAX; i++)
			if (m->parts[i].pw && (ret = eng_note_synced(e, m, i)) < 0)
				return ret;
	if (e->nrcpt == 0)
		return 0;
	struct hl_ours o;
	hl_ours_init(&o, st, e->env.me, e->peer_id, e->peer_sign);
	/* First take back what the key holder signed and the store lost with
	 * its transaction (chain/adopt.c): a receipt among those acknowledged
	 * for good what it lists, so it must be known before ours are made
	 * (a second receipt for a message is refused by the peer). */
	if ((ret = hl_ours_begin(&o)) < 0) {
		hl_ours_drop(&o);
		return ret;
	}
	if (!e->recovered_acks &&
	    hl_store_recovered_acks_any(st, e->peer_id, &e->recovered_acks) < 0)
		e->recovered_acks = true;   /* in doubt, look each time */
	/* After a restore or a key holder's crash: what our recovered
	 * receipts acknowledged already gets no second receipt. */
	if (e->recovered_acks) {
		size_t keep = 0;
		for (size_t i = 0; i < e->nrcpt; i++) {
			bool done;
			if ((ret = hl_store_recovered_ack_has(st, e->peer_id, e->rcpt[i].seq, &done)) < 0) {
				hl_ours_drop(&o);
				return ret;
			}
			if (!done)
				e->rcpt[keep++] = e->rcpt[i];
		}
		e->nrcpt = keep;
	}
	struct hl_chain_head peer_head;
	if (e->nrcpt == 0 || (ret = hl_store_signing_head(st, e->peer_id, &peer_head)) < 0) {
		hl_ours_drop(&o);
		return e->nrcpt == 0 ? 0 : ret;
	}
	/* One receipt item per HL_MAX_RECEIPT_ENTRIES entries, all signed in
	 * one run (chain/ours.h). */
	size_t nitems = (e->nrcpt + HL_MAX_RECEIPT_ENTRIES - 1) / HL_MAX_RECEIPT_ENTRIES;
	struct hl_item *items = xcalloc(nitems, sizeof(*items));
	ret = 0;
	for (size_t k = 0, done = 0; k < nitems && ret == 0; k++) {
		struct hl_item *it = &items[k];
		size_t n = e->nrcpt - done;
		if (n > HL_MAX_RECEIPT_ENTRIES)
			n = HL_MAX_RECEIPT_ENTRIES;
		it->kind = HL_ITEM_RECEIPT;
		it->u.rcpt.peer_seq = peer_head.seq;
		memcpy(it->u.rcpt.peer_hash, peer_head.hash, HL_HASH_LEN);
		it->u.rcpt.count = (uint16_t)n;
		for (size_t i = 0; i < n; i++) {
			it->u.rcpt.entries[i].seq = e->rcpt[done + i].seq;
			memcpy(it->u.rcpt.entries[i].hash, e->rcpt[done + i].hash, HL_HASH_LEN);
		}
		ret = hl_ours_add(&o, it, HL_PREC_FLASH, NULL, NULL);
		done += n;
	}
	if (ret == 0)
		ret = hl_ours_flush(&o);
	hl_ours_drop(&o);
	free(items);
	if (ret == 0)
		e->nrcpt = 0;
	return ret;
}

void hl_engine_postcommit(hl_engine *e, uint64_t now)
{
	eng_cache_forget(e);
	for (size_t i = 0; i < e->nev; i++)
		e->env.on_event(e->env.user, e->peer_name, &e->events[i]);
	e->nev = 0;
	if (e->session && hl_session_state(e->session) == HL_SESSION_OPEN) {
		e->ack_owed = e->ack_owed || e->need_ack;
		hl_engine_refresh(e);
		hl_engine_pump(e, now); /* what is owed first */
	} else {
		e->nref = 0; /* no session: the peer offers the items again */
	}
	e->need_ack = false;
}

void hl_engine_abort(hl_engine *e)
{
	held_drop(e);
	eng_cache_forget(e);
	e->tombs_known = false;
	e->nev = 0;
	e->nrcpt = 0;
	e->nref = 0;
	e->need_ack = false;
	eng_in_clear(e);
}

/* ---- life ---- */

/* Scratch for building and reading packets, and for decoding a neighbour
 * item (a struct hl_item is 10 KiB).  Every engine runs on the daemon's
 * one thread and uses them only within one call, so all engines share
 * them: a station with a thousand linked peers does not keep 90 KiB of
 * scratch per peer. */
static uint8_t *shared_rec, *shared_item;
static struct hl_item *shared_decoded;
static size_t shared_users;

static void shared_bufs_get(hl_engine *e)
{
	if (shared_users++ == 0) {
		shared_rec = xmalloc(HL_PACKET_BODY_MAX);
		shared_item = xmalloc(HL_ITEM_MAX);
		shared_decoded = xmalloc(sizeof(*shared_decoded));
	}
	e->rec = shared_rec;
	e->itembuf = shared_item;
	e->scratch = shared_decoded;
}

static void shared_bufs_put(void)
{
	if (--shared_users == 0) {
		eng_verifier_stop();
		free(shared_rec);
		free(shared_item);
		free(shared_decoded);
		shared_rec = shared_item = NULL;
		shared_decoded = NULL;
	}
}

int hl_engine_new(hl_engine **out, const struct hl_engine_env *env, const hl_peer_conf *peer)
{
	hl_engine *e = xcalloc(1, sizeof(*e));
	int ret;
	e->env = *env;
	memcpy(e->peer_sign, peer->signing_key, 32);
	memcpy(e->peer_noise, peer->noise_key, 32);
	snprintf(e->peer_name, sizeof(e->peer_name), "%s", peer->name);
	if ((ret = hl_store_peer(env->txn->store, peer->signing_key, peer->noise_key, peer->name,
				 &e->peer_id)) < 0 ||
	    (ret = eng_keys_init(e, peer)) < 0) {
		free(e);
		return ret;
	}
	shared_bufs_get(e);
	/* Staging files' workers report progress for CREDIT, as parts' do. */
	struct hl_partwriter_progress progress = {
		.taken = e->env.wake ? &e->done_pw : NULL,
		.wake = e->env.wake ? eng_worker_wake : NULL,
		.arg = e,
		.step = CREDIT_STEP,
	};
	e->stage = hl_stage_new(env->dir, e->peer_id, &progress);
	e->cur_verdict = -1;
	e->refuse_log = (struct hl_ratelimit)HL_RATELIMIT_INIT(20, 60);
	/* A bundle's engine (no session) sees the peer's ACK too. */
	e->first_ack = true;
	if (hl_store_resync_pending(env->txn->store, e->peer_id, &e->resync) < 0)
		e->resync = true;
	if (hl_store_recovered_acks_any(env->txn->store, e->peer_id, &e->recovered_acks) < 0)
		e->recovered_acks = true;   /* in doubt, look each time */
	*out = e;
	return 0;
}

void hl_engine_free(hl_engine *e)
{
	if (!e)
		return;
	eng_queues_clear(e);
	eng_in_clear(e);
	hl_stage_free(e->stage);
	free(e->flow);
	free(e->resume.e);
	free(e->rcpt);
	free(e->refusals);
	free(e->events);
	free(e->held);
	free(e->hbuf);
	shared_bufs_put();
	free(e);
}

int64_t hl_engine_peer_id(const hl_engine *e)
{
	return e->peer_id;
}

void hl_engine_stats(const hl_engine *e, struct hl_engine_stats *s)
{
	*s = e->stats;
	for (unsigned p = 0; p < HL_PREC_COUNT; p++)
		s->queued[p] = e->q[p].n;
	s->partial_in = e->nin;
	struct hl_stage_stats ss;
	hl_stage_stats(e->stage, &ss);
	s->stage_out_bytes = ss.out_bytes;
	s->stage_in_bytes = ss.in_bytes;
	s->stage_adopted_bytes = ss.adopted_bytes;
	s->credit_on = e->credit_on;
	s->refusing = e->refusing;
	s->chunk_data_sent = e->chunk_sent;
	s->chunk_data_credited = e->chunk_credit;
	if (e->credit_on && e->flow) {
		s->flow_window = hl_flow_window(e->flow);
		s->flow_ahead = hl_flow_ahead(e->flow);
		s->flow_rate = (uint64_t)e->flow->rate;
		s->flow_rtt_us = e->flow->rtt_us;
	}
}
