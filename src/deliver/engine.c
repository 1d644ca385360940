/* deliver/engine.c — the messages protocol for one peer (engine.h,
 * docs/messages.md): the engine's core.  It owns the engine's life (new,
 * free, a session attached and detached, with the state a session starts
 * by sending: ACK, RESUME and the REFUSEs owed), the records that arrive
 * (held for the verifier, then dispatched by type), the group commit's
 * hooks (precommit authors the receipts for what became visible,
 * postcommit tells the operator and sends what is owed, abort forgets),
 * and the invariants below.  The rest is split by the direction of data,
 * sharing deliver/engine_int.h (the engine's state and the eng_ functions):
 *
 *   send.c      SENDING: the four precedence queues, the pump, CREDIT and
 *               the flow window, the ITEM and CHUNK records (the ITEM
 *               record is built by one function, used by bundle export
 *               too), and what the peer says about ours (ACK, RESUME,
 *               REFUSE, CREDIT).
 *   recv.c      RECEIVING an item: opened and checked (signature, the
 *               chain rules of chain/accept.h against what the store
 *               holds), refused (tombstones, refused for now), equivocation
 *               evidence, the peer's quota and the disk reserve.
 *   items.c     what each kind of item does once accepted: a message's
 *               rows, receipts, checks, answers, agreements.
 *   parts.c     messages being received: their parts (CHUNKs, the part
 *               writer), and the order in which they become visible.
 *   staging.c   the engine's side of staging (deliver/stage.h), both ways.
 *   restore.c   RECLAIM and RETURN: resynchronising after a restore.
 *   verifier.c  held ITEMs' signatures, checked on a second thread.
 *
 * Invariants (checked by eng_check_invariants() in debug builds):
 *   I1. Every queue is in increasing seq order; every entry before a
 *       queue's cursor is done (send.c).
 *   I2. nloaded equals the number of entries in the four queues, and is at
 *       most OUT_WINDOW plus the acknowledged-with-parts entries (send.c).
 *   I3. Nothing is sent unless the link is attached and the peer's RESUME
 *       arrived (synced), and no ACK, REFUSE or receipt is sent while the
 *       shared transaction holds writes this engine made (they go out in
 *       postcommit()).
 *   I4. An incoming part's `durable` never exceeds its `done`, and what the
 *       store records for it is `durable` (parts.c). */
#include "deliver/engine.h"

#include <assert.h>
#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "deliver/engine_int.h"
#include "msg/message.h"
#include "util/err.h"
#include "util/log.h"
#include "util/mem.h"
#include "util/text.h"
#include "util/timefmt.h"

#define HOLD_MAX (4u << 20)          /* held records (env.defer_items): drained past this */
/* REFUSEs waiting for the link to take them, per peer. */
#define REFUSALS_OWED_MAX 4096
/* A drain stops after the records that raised this many events (the rest
 * wait for the next turn): one turn must not flood `watch` clients, which
 * the daemon drops when they fall 1 MiB behind. */
#define DRAIN_EVENTS_MAX 1024

int hl_txn_need(struct hl_txn *t)
{
	if (t->open)
		return 0;
	int ret = hl_store_begin(t->store);
	if (ret == 0)
		t->open = true;
	return ret;
}

void eng_set_error(hl_engine *e, const char *fmt, ...)
{
	char raw[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(raw, sizeof(raw), fmt, ap);
	va_end(ap);
	hl_sanitize(raw, strlen(raw), e->error, sizeof(e->error), 0);
}

const char *hl_engine_error(const hl_engine *e)
{
	return e->error;
}

event_t *eng_add_event_info(hl_engine *e, enum hl_engine_event ev, const uint8_t *id,
			    size_t idlen)
{
	static event_t discard;
	if (!e->env.on_event)
		return &discard;
	if (e->nev == e->capev) {
		e->capev = e->capev ? 2 * e->capev : 16;
		e->events = xrealloc(e->events, e->capev * sizeof(*e->events));
	}
	event_t *x = &e->events[e->nev++];
	memset(x, 0, sizeof(*x));
	x->ev = ev;
	memcpy(x->id, id, idlen);
	return x;
}

void eng_add_event(hl_engine *e, enum hl_engine_event ev, const uint8_t id[static 16])
{
	(void)eng_add_event_info(e, ev, id, HL_MSG_ID_LEN);
}

bool eng_prec_valid(unsigned p)
{
	return p < HL_PREC_COUNT;
}

#ifndef NDEBUG
void eng_check_invariants(const hl_engine *e)
{
	size_t total = 0;
	for (unsigned p = 0; p < HL_PREC_COUNT; p++) {
		const struct out_queue *q = &e->q[p];
		uint64_t last = 0;
		bool before_cursor = q->cursor != NULL;
		size_t n = 0;
		for (const struct out_entry *x = q->head; x; x = x->next) {
			assert(x->seq > last);                          /* I1 */
			last = x->seq;
			if (x == q->cursor)
				before_cursor = false;
			if (before_cursor)
				assert(x->item_sent && x->cur >= x->nparts); /* I1 */
			n++;
		}
		assert(n == q->n);
		total += n;
	}
	assert(total == e->nloaded);                                    /* I2 */
	for (const struct in_msg *m = e->in; m; m = m->next)
		for (unsigned i = 0; i < NPARTS_MAX; i++)
			assert(m->parts[i].durable <= m->parts[i].done); /* I4 */
}
#endif

/* ---- what the peer is told after the commit ---- */

void eng_queue_refusal(hl_engine *e, uint64_t seq, const uint8_t hash[static 32],
		       uint8_t code, const char *text)
{
	if (e->nref >= REFUSALS_OWED_MAX) {
		/* A peer that sends what we refuse and reads nothing of what
		 * we say: the oldest REFUSE goes (its position is settled and
		 * acknowledged, or offered again and refused again). */
		memmove(e->refusals, e->refusals + 1, (e->nref - 1) * sizeof(*e->refusals));
		e->nref--;
		e->stats.refusals_dropped++;
	}
	if (e->nref == e->capref) {
		e->capref = e->capref ? 2 * e->capref : 8;
		e->refusals = xrealloc(e->refusals, e->capref * sizeof(*e->refusals));
	}
	struct refusal *r = &e->refusals[e->nref++];
	r->seq = seq;
	memcpy(r->hash, hash, 32);
	r->code = code;
	snprintf(r->text, sizeof(r->text), "%s", text);
}

/* ---- records in ---- */

static int dispatch(hl_engine *e, uint8_t type, const uint8_t *body, size_t len, uint64_t now)
{
	int ret;
	/* Restored and not yet resynchronised: nothing of the peer's is
	 * taken (it would call for receipts we may not sign yet); it comes
	 * again in the session after the resync. */
	if (e->resync && (type == HL_REC_ITEM || type == HL_REC_CHUNK ||
			  type == HL_REC_STAGE || type == HL_REC_STAGED))
		return 0;
	e->now = now;
	switch (type) {
	case HL_REC_ITEM: ret = eng_on_item(e, body, len, now); break;
	case HL_REC_CHUNK:
		e->pushed_now = 0;
		ret = eng_on_chunk(e, body, len);
		if (ret == 0 && len > HL_CHUNK_HDR_LEN) {
			e->taken += len - HL_CHUNK_HDR_LEN;
			e->pushed_pw += e->pushed_now;
			eng_credit_maybe(e, now, false);
		}
		break;
	case HL_REC_CREDIT: ret = eng_on_credit(e, body, len, now); break;
	case HL_REC_ACK: ret = eng_on_ack(e, body, len); break;
	case HL_REC_RESUME: ret = eng_on_resume(e, body, len); break;
	case HL_REC_REFUSE: ret = eng_on_refuse(e, body, len, now); break;
	case HL_REC_STAGE:
		/* STAGE data counts for CREDIT as CHUNK data does */
		e->pushed_now = 0;
		ret = eng_on_stage(e, body, len);
		if (ret == 0 && len > HL_STAGE_HDR_LEN) {
			e->taken += len - HL_STAGE_HDR_LEN;
			e->pushed_pw += e->pushed_now;
			eng_credit_maybe(e, now, false);
		}
		break;
	case HL_REC_STAGED: ret = eng_on_staged(e, body, len); break;
	case HL_REC_RECLAIM: ret = eng_on_reclaim(e, body, len); break;
	case HL_REC_RETURN: ret = eng_on_return(e, body, len); break;
	default:
		return 0; /* other application records are not ours */
	}
	if (ret < 0 && !e->error[0])
		eng_set_error(e, "%s", hl_strerror(ret));
	eng_check_invariants(e);
	return ret;
}

/* ---- held records (env.defer_items; verifier.c checks their ITEMs) ---- */

static void held_drop(hl_engine *e)
{
	e->nheld = 0;
	e->hlen = 0;
	if (e->hcap > HOLD_MAX + HL_RECORD_BODY_MAX) {
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

int hl_engine_on_record(hl_engine *e, uint8_t type, const uint8_t *body, size_t len,
			uint64_t now)
{
	bool ours = type == HL_REC_ITEM || type == HL_REC_CHUNK || type == HL_REC_ACK ||
		    type == HL_REC_RESUME || type == HL_REC_REFUSE;
	if (!e->env.defer_items || !ours || (type != HL_REC_ITEM && e->nheld == 0))
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

static int send_ack(hl_engine *e, uint64_t now)
{
	hl_store *st = e->env.txn->store;
	struct hl_chain_head head;
	struct hl_rec_ack *a = xcalloc(1, sizeof(*a));
	size_t n = 0, len;
	int ret = hl_store_in_contiguous(st, e->peer_id, &head);
	if (ret == 0)
		ret = hl_store_in_ranges(st, e->peer_id, head.seq, a->ranges, HL_ACK_MAX_RANGES, &n);
	if (ret == 0) {
		a->base = head.seq;
		a->n = (uint16_t)n;
		ret = hl_rec_ack_encode(a, e->rec, HL_RECORD_BODY_MAX, &len);
	}
	if (ret == 0)
		ret = eng_send_rec(e, HL_REC_ACK, e->rec, len, now);
	free(a);
	return ret;
}

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

/* What the peer must be told and the link could not take yet (its output
 * above the high-water mark): the ACK (made afresh when sent, so it says
 * everything committed by then) and the REFUSEs, in order.  The link calls
 * on_writable once it drains, and the pump sends them first.  Only between
 * transactions: inside one, the store's view includes writes not yet
 * committed, which must not be acknowledged (invariant I3). */
void eng_send_owed(hl_engine *e, uint64_t now)
{
	if (!e->link || hl_link_state(e->link) != HL_LINK_OPEN || e->env.txn->open)
		return;
	if (e->ack_owed) {
		int ret = send_ack(e, now);
		if (ret == -EAGAIN)
			return;
		if (ret < 0)
			hl_warn("peer %s: cannot send an ACK: %s", e->peer_name, hl_strerror(ret));
		e->ack_owed = false;
	}
	size_t i = 0;
	for (; i < e->nref; i++) {
		size_t len;
		struct refusal *r = &e->refusals[i];
		if (hl_rec_refuse_encode(r->seq, r->hash, r->code, r->text, e->rec,
					 HL_RECORD_BODY_MAX, &len) == 0 &&
		    eng_send_rec(e, HL_REC_REFUSE, e->rec, len, now) == -EAGAIN)
			break;
	}
	if (i > 0 && i < e->nref)
		memmove(e->refusals, e->refusals + i, (e->nref - i) * sizeof(*e->refusals));
	e->nref -= i;
}

static int send_resume(hl_engine *e, uint64_t now)
{
	struct hl_rec_resume *r = xcalloc(1, sizeof(*r));
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
	int ret = hl_rec_resume_encode(r, e->rec, HL_RECORD_BODY_MAX, &len);
	if (ret == 0)
		ret = eng_send_rec(e, HL_REC_RESUME, e->rec, len, now);
	free(r);
	return ret;
}

void hl_engine_attach(hl_engine *e, hl_link *link, uint64_t now)
{
	held_drop(e); /* an earlier session's: never acknowledged, resent */
	hl_stage_reset(e->stage);
	e->link = link;
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
	e->credit_on = (hl_link_own_flags(link) & hl_link_peer_flags(link) &
			HL_HELLO_FLAG_CREDIT) != 0;
	e->chunk_sent = e->chunk_credit = e->taken = e->pushed_pw = e->credit_sent = 0;
	atomic_store(&e->done_pw, 0);
	free(e->flow);   /* each session measures its path afresh */
	e->flow = NULL;
	e->stage_on = (hl_link_peer_flags(link) & HL_HELLO_FLAG_STAGE) != 0;
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
	e->link = NULL;
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
	/* After a restore: what our recovered receipts acknowledged already
	 * gets no second receipt. */
	if (e->recovered_acks) {
		size_t keep = 0;
		for (size_t i = 0; i < e->nrcpt; i++) {
			bool done;
			if ((ret = hl_store_recovered_ack_has(st, e->peer_id, e->rcpt[i].seq, &done)) < 0)
				return ret;
			if (!done)
				e->rcpt[keep++] = e->rcpt[i];
		}
		e->nrcpt = keep;
	}
	if (e->nrcpt == 0)
		return 0;
	struct hl_chain_head head, peer_head;
	if ((ret = hl_store_chain_head(st, e->peer_id, HL_DIR_OUT, &head)) < 0 ||
	    (ret = hl_store_signing_head(st, e->peer_id, &peer_head)) < 0)
		return ret;
	struct hl_item *it = xcalloc(1, sizeof(*it));
	for (size_t done = 0; done < e->nrcpt;) {
		size_t n = e->nrcpt - done;
		if (n > HL_MAX_RECEIPT_ENTRIES)
			n = HL_MAX_RECEIPT_ENTRIES;
		memset(it, 0, sizeof(*it));
		it->kind = HL_ITEM_RECEIPT;
		memcpy(it->author, e->env.me->sign_pk, 32);
		memcpy(it->counterpart, e->peer_sign, 32);
		it->seq = head.seq + 1;
		memcpy(it->prev, head.hash, HL_HASH_LEN);
		it->time_ms = (uint64_t)hl_now_ms();
		it->u.rcpt.peer_seq = peer_head.seq;
		memcpy(it->u.rcpt.peer_hash, peer_head.hash, HL_HASH_LEN);
		it->u.rcpt.count = (uint16_t)n;
		for (size_t i = 0; i < n; i++) {
			it->u.rcpt.entries[i].seq = e->rcpt[done + i].seq;
			memcpy(it->u.rcpt.entries[i].hash, e->rcpt[done + i].hash, HL_HASH_LEN);
		}
		size_t len;
		if ((ret = hl_item_encode_sign(it, e->env.me->sign_sk, e->itembuf, HL_ITEM_MAX, &len)) < 0)
			break;
		struct hl_item_row row = {
			.peer_id = e->peer_id, .dir = HL_DIR_OUT, .seq = it->seq,
			.kind = HL_ITEM_RECEIPT, .encoded = e->itembuf, .encoded_len = len,
			.precedence = HL_PREC_FLASH, .stored_at = hl_now_ms(),
		};
		hl_item_hash(e->itembuf, len, row.hash);
		if ((ret = hl_store_insert_item(st, &row)) < 0)
			break;
		head.seq = it->seq;
		memcpy(head.hash, row.hash, HL_HASH_LEN);
		done += n;
	}
	free(it);
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
	if (e->link && hl_link_state(e->link) == HL_LINK_OPEN) {
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

/* Scratch buffers for building and reading records.  Every engine runs on
 * the daemon's one thread and uses them only within one call, so all
 * engines share one pair: a station with a thousand pinned peers does not
 * keep 80 KiB of scratch per peer. */
static uint8_t *shared_rec, *shared_item;
static size_t shared_users;

static void shared_bufs_get(uint8_t **rec, uint8_t **item)
{
	if (shared_users++ == 0) {
		shared_rec = xmalloc(HL_RECORD_BODY_MAX);
		shared_item = xmalloc(HL_ITEM_MAX);
	}
	*rec = shared_rec;
	*item = shared_item;
}

static void shared_bufs_put(void)
{
	if (--shared_users == 0) {
		eng_verifier_stop();
		free(shared_rec);
		free(shared_item);
		shared_rec = shared_item = NULL;
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
				 &e->peer_id)) < 0) {
		free(e);
		return ret;
	}
	shared_bufs_get(&e->rec, &e->itembuf);
	/* Staging files' workers report progress for CREDIT, as parts' do. */
	struct hl_partwriter_progress progress = {
		.taken = e->env.wake ? &e->done_pw : NULL,
		.wake = e->env.wake ? eng_worker_wake : NULL,
		.arg = e,
		.step = CREDIT_STEP,
	};
	e->stage = hl_stage_new(env->dir, e->peer_id, &progress);
	e->cur_verdict = -1;
	e->scratch = xmalloc(sizeof(*e->scratch));
	e->refuse_log = (struct hl_ratelimit)HL_RATELIMIT_INIT(20, 60);
	/* A bundle's engine (no link) sees the peer's ACK too. */
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
	free(e->scratch);
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
