/* deliver/base.c — what every file of the engine uses, at the bottom of
 * them (engine_int.h): the shared transaction and what this engine knows
 * of the peer's chain within it (the cache the chain rules read, moved by
 * every position stored); the last error; the events for the operator;
 * the ACK and REFUSEs owed to the peer, sent between transactions;
 * sending a packet; and the engine's invariants, checked by
 * eng_assert_invariants() in debug builds:
 *
 *   I1. Every queue is in increasing seq order; every entry before a
 *       queue's cursor is done (send.c).
 *   I2. nloaded equals the number of entries in the four queues, and is at
 *       most OUT_WINDOW plus the acknowledged-with-parts entries (send.c).
 *   I3. Nothing is sent unless the session is attached and the peer's RESUME
 *       arrived (synced), and no ACK, REFUSE or receipt is sent while the
 *       shared transaction holds writes this engine made (they go out in
 *       postcommit()).
 *   I4. An incoming part's `durable` never exceeds its `done`, and what the
 *       store records for it is `durable` (parts.c). */
#include "deliver/engine_int.h"

#include <assert.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/err.h"
#include "util/log.h"
#include "util/mem.h"
#include "util/text.h"

/* REFUSEs waiting for the session to take them, per peer. */
#define REFUSALS_OWED_MAX 4096

/* ---- the transaction ---- */

int hl_txn_need(struct hl_txn *t)
{
	if (t->open)
		return 0;
	int ret = hl_store_begin(t->store);
	if (ret == 0)
		t->open = true;
	return ret;
}

/* What this transaction knows of the peer's chain (e->cache_ok): loaded
 * at its first item, kept up to date by every insert, forgotten when the
 * transaction ends (eng_cache_forget, from postcommit and abort). */
int eng_cache_load(hl_engine *e)
{
	if (e->cache_ok)
		return 0;
	hl_store *st = e->env.txn->store;
	struct hl_chain_head top, contig;
	int ret = hl_store_chain_head(st, e->peer_id, HL_DIR_IN, &top);
	if (ret == 0)
		ret = hl_store_in_contiguous(st, e->peer_id, &contig);
	if (ret < 0)
		return ret;
	e->in_top = top.seq;
	e->contig = contig.seq;
	memset(e->class_known, 0, sizeof(e->class_known));
	e->cache_ok = true;
	return 0;
}

void eng_cache_forget(hl_engine *e)
{
	e->cache_ok = false;
	e->keys_ok = false;
}

/* An item or tombstone was stored at SEQ. */
void eng_cache_note(hl_engine *e, uint64_t seq)
{
	if (e->cache_ok && seq > e->in_top)
		e->in_top = seq;
}

/* A message at SEQ with CLASS_SEQ was stored. */
void eng_class_note(hl_engine *e, unsigned prec, uint64_t seq, uint64_t class_seq)
{
	if (e->class_known[prec] && (!e->class_top[prec].held ||
				     class_seq > e->class_top[prec].class_seq))
		e->class_top[prec] = (struct hl_chain_class_ref){ true, seq, class_seq };
}

/* ---- errors, events, the invariants ---- */

void eng_set_error(hl_engine *e, const char *fmt, ...)
{
	char raw[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(raw, sizeof(raw), fmt, ap);
	va_end(ap);
	hl_sanitize(raw, strlen(raw), e->error, sizeof(e->error), 0);
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
void eng_assert_invariants(const hl_engine *e)
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

int eng_send_pkt(hl_engine *e, uint8_t type, const uint8_t *body, size_t len, uint64_t now)
{
	return hl_session_send(e->session, type, body, len, now);
}

static int send_ack(hl_engine *e, uint64_t now)
{
	hl_store *st = e->env.txn->store;
	struct hl_chain_head head;
	struct hl_pkt_ack *a = xcalloc(1, sizeof(*a));
	size_t n = 0, len;
	int ret = hl_store_in_contiguous(st, e->peer_id, &head);
	if (ret == 0)
		ret = hl_store_in_ranges(st, e->peer_id, head.seq, a->ranges, HL_ACK_MAX_RANGES, &n);
	if (ret == 0) {
		a->base = head.seq;
		a->n = (uint16_t)n;
		ret = hl_pkt_ack_encode(a, e->rec, HL_PACKET_BODY_MAX, &len);
	}
	if (ret == 0)
		ret = eng_send_pkt(e, HL_PKT_ACK, e->rec, len, now);
	free(a);
	return ret;
}

/* What the peer must be told and the session could not take yet (its output
 * above the high-water mark): the ACK (made afresh when sent, so it says
 * everything committed by then) and the REFUSEs, in order.  The session calls
 * on_writable once it drains, and the pump sends them first.  Only between
 * transactions: inside one, the store's view includes writes not yet
 * committed, which must not be acknowledged (invariant I3). */
void eng_send_owed(hl_engine *e, uint64_t now)
{
	if (!e->session || hl_session_state(e->session) != HL_SESSION_OPEN || e->env.txn->open)
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
		if (hl_pkt_refuse_encode(r->seq, r->hash, r->code, r->text, e->rec,
					 HL_PACKET_BODY_MAX, &len) == 0 &&
		    eng_send_pkt(e, HL_PKT_REFUSE, e->rec, len, now) == -EAGAIN)
			break;
	}
	if (i > 0 && i < e->nref)
		memmove(e->refusals, e->refusals + i, (e->nref - i) * sizeof(*e->refusals));
	e->nref -= i;
}
