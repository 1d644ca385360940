/* deliver/send.c — SENDING, for the engine (engine_core.c; docs/messages.md).
 *
 * The engine keeps, per session, a window of at most OUT_WINDOW
 * OUT entries loaded from the store: items the peer has not acknowledged,
 * and acknowledged messages whose parts (a large body, attachments) the
 * peer still lacks.  Entries sit in four queues, one per precedence, in
 * seq order; each queue has a cursor at its first entry not yet done (item
 * sent and every part sent).  pump() repeatedly takes the most urgent
 * queue whose cursor is not at the end and sends that entry's ITEM or its
 * next CHUNK, until the session refuses more or, with CREDIT, the chunk
 * would take the data in flight past the window or the session's queue past
 * what may wait ahead (both sized in time by deliver/flow.h, which also
 * sizes the chunks).  So a FLASH message waits for at most that, and
 * within a precedence messages go strictly one after another.
 *
 * Here too: the ITEM and CHUNK packets of our items, built one way for a
 * session and for bundle export (send.h), and what the peer says about our
 * items (ACK, RESUME, REFUSE, CREDIT, STAGED).  The window and CREDIT are
 * credit.c's.  The queues keep invariants I1 and I2 (base.c). */
#include "deliver/send.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "deliver/engine_int.h"
#include "msg/message.h"
#include "util/err.h"
#include "util/fsutil.h"
#include "util/log.h"
#include "util/mem.h"
#include "util/text.h"
#include "util/timefmt.h"

#define QUOTA_RETRY_MS 5000          /* an item refused for now is offered again after this */

/* ---- out entries ---- */

static bool entry_done(const struct out_entry *x)
{
	return x->item_sent && x->cur >= x->nparts;
}

/* Forgets X's parts and how far they were sent: send_item() loads them
 * again.  An item refused for now (quota) is offered again whole: the
 * receiver dropped the chunks that followed it the first time. */
static void entry_reset_parts(struct out_entry *x)
{
	for (unsigned i = 0; x->parts && i < x->nparts; i++) {
		hl_dio_rclose(&x->parts[i].r);
		free(x->parts[i].path);
	}
	free(x->parts);
	free(x->body);
	x->parts = NULL;
	x->body = NULL;
	x->nparts = x->cur = 0;
	x->parts_known = false;
}

static void entry_free(struct out_entry *x)
{
	if (!x)
		return;
	entry_reset_parts(x);
	free(x);
}

static void queue_fix_cursor(struct out_queue *q)
{
	if (!q->cursor)
		q->cursor = q->head;
	while (q->cursor && entry_done(q->cursor))
		q->cursor = q->cursor->next;
}

static void queue_append(hl_engine *e, struct out_entry *x)
{
	struct out_queue *q = &e->q[x->prec];
	x->next = NULL;
	if (q->tail)
		q->tail->next = x;
	else
		q->head = x;
	q->tail = x;
	q->n++;
	e->nloaded++;
	if (!q->cursor && !entry_done(x))
		q->cursor = x;
}

/* Drops entries that are done and acknowledged. */
static void queue_prune(hl_engine *e, struct out_queue *q)
{
	struct out_entry **pp = &q->head, *prev = NULL;
	while (*pp) {
		struct out_entry *x = *pp;
		if (x->acked && entry_done(x) && x != q->cursor) {
			*pp = x->next;
			if (q->tail == x)
				q->tail = prev;
			q->n--;
			e->nloaded--;
			entry_free(x);
		} else {
			prev = x;
			pp = &x->next;
		}
	}
}

void eng_queues_clear(hl_engine *e)
{
	for (unsigned p = 0; p < HL_PREC_COUNT; p++) {
		struct out_entry *x = e->q[p].head;
		while (x) {
			struct out_entry *next = x->next;
			entry_free(x);
			x = next;
		}
		memset(&e->q[p], 0, sizeof(e->q[p]));
	}
	e->nloaded = 0;
	e->loaded_upto = 0;
}

static struct out_entry *entry_new(uint64_t seq, enum hl_item_kind kind, unsigned prec)
{
	struct out_entry *x = xcalloc(1, sizeof(*x));
	x->seq = seq;
	x->kind = kind;
	x->prec = eng_prec_valid(prec) ? prec : HL_PREC_FLASH;
	return x;
}

static const struct hl_resume_entry *resume_find(const hl_engine *e, uint64_t seq, unsigned part)
{
	for (size_t i = 0; i < e->resume.n; i++)
		if (e->resume.e[i].seq == seq && e->resume.e[i].part == part)
			return &e->resume.e[i];
	return NULL;
}

static bool resume_has(const hl_engine *e, uint64_t seq)
{
	for (size_t i = 0; i < e->resume.n; i++)
		if (e->resume.e[i].seq == seq)
			return true;
	return false;
}

/* Fills X's parts from its message row: part 0 when the body does not
 * travel inline, part i+1 for attachment i; offsets from the peer's
 * RESUME (else 0). */
static void entry_set_parts(hl_engine *e, struct out_entry *x, const struct hl_msg_row *row)
{
	x->parts_known = true;
	x->nparts = 1 + row->n_att;
	x->parts = xcalloc(x->nparts, sizeof(*x->parts));
	for (unsigned i = 0; i < x->nparts; i++)
		x->parts[i].r.fd = -1;
	if (row->body_size > HL_INLINE_BODY_MAX) {
		x->parts[0].size = row->body_size;
		if (row->body) {
			x->body = xmalloc(row->body_size);
			memcpy(x->body, row->body, row->body_size);
		}
	}
	for (unsigned i = 0; i < row->n_att; i++) {
		x->parts[i + 1].size = row->att[i].size;
		x->parts[i + 1].path = xstrdup(row->att[i].path);
	}
	for (unsigned i = 0; i < x->nparts; i++) {
		const struct hl_resume_entry *r = resume_find(e, x->seq, i);
		if (r)
			x->parts[i].offset = r->offset < x->parts[i].size ? r->offset : x->parts[i].size;
	}
	x->cur = 0;
	while (x->cur < x->nparts && x->parts[x->cur].offset >= x->parts[x->cur].size)
		x->cur++;
}

/* ---- loading the window ---- */

struct load_ctx {
	hl_engine *e;
	struct out_entry **arr;
	size_t n, cap;
};

static void load_push(struct load_ctx *lc, struct out_entry *x)
{
	if (lc->n == lc->cap) {
		lc->cap = lc->cap ? 2 * lc->cap : 64;
		lc->arr = xrealloc(lc->arr, lc->cap * sizeof(*lc->arr));
	}
	lc->arr[lc->n++] = x;
}

/* An acknowledged message whose parts the peer may lack. */
static int load_with_parts(void *arg, const struct hl_msg_row *row)
{
	struct load_ctx *lc = arg;
	hl_engine *e = lc->e;
	/* Not in the peer's RESUME: it holds the message whole (or refused
	 * it): nothing to send. */
	if (!resume_has(e, row->seq))
		return 0;
	struct out_entry *x = entry_new(row->seq, HL_ITEM_MESSAGE, row->precedence);
	x->acked = true;
	x->item_sent = true;
	entry_set_parts(e, x, row);
	if (x->parts[0].size && !x->body) {
		/* the row came without its body: fetch it */
		struct hl_msg_row full = { 0 };
		if (hl_store_get_message_by_seq(e->env.txn->store, e->peer_id, HL_DIR_OUT,
						row->seq, &full) == 0 && full.body) {
			x->body = xmalloc(full.body_size);
			memcpy(x->body, full.body, full.body_size);
		}
		hl_msg_row_clear(&full);
		if (!x->body) {
			entry_free(x);
			return 0;
		}
	}
	load_push(lc, x);
	return 0;
}

/* Messages of ours the peer receipted and still lists in its RESUME:
 * it was restored from a backup taken while they were arriving (the
 * original receipted them afterwards: docs/messages.md section 7).  Their
 * parts go again; the receipt the copy got back keeps it from signing a
 * second one.  A peer that lies about it only gets its own messages again:
 * at most REDELIVER_MAX a session (a receiver holds no more in progress,
 * deliver/items.c) and REDELIVER_BODY_MAX of bodies held for it. */
#define REDELIVER_MAX 256
#define REDELIVER_BODY_MAX (64u << 20)

static int load_redelivered(struct load_ctx *lc)
{
	hl_engine *e = lc->e;
	hl_store *st = e->env.txn->store;
	size_t n = 0, purged = 0;
	uint64_t bodies = 0;
	bool more = false;
	int ret = 0;
	for (size_t i = 0; i < e->resume.n && ret == 0 && !more; i++) {
		uint64_t seq = e->resume.e[i].seq;
		bool seen = false;
		for (size_t j = 0; j < i && !seen; j++)
			seen = e->resume.e[j].seq == seq;
		if (seen)
			continue;
		struct hl_msg_row row = { 0 };
		ret = hl_store_get_message_by_seq(st, e->peer_id, HL_DIR_OUT, seq, &row);
		if (ret == HL_ENOTFOUND) {
			ret = 0;
			continue;
		}
		uint64_t body = row.body_size > HL_INLINE_BODY_MAX ? row.body_size : 0;
		if (ret < 0 || row.state != HL_MSG_DELIVERED || (row.n_att == 0 && !body))
			; /* not receipted, or nothing to send but the item */
		else if (row.purged_at)
			purged++;
		else if (n >= REDELIVER_MAX || bodies + body > REDELIVER_BODY_MAX)
			more = true;
		else {
			n++;
			bodies += body;
			ret = load_with_parts(lc, &row);
		}
		hl_msg_row_clear(&row);
	}
	if (n)
		hl_warn("peer %s lists %zu message(s) of ours it receipted as incomplete (restored "
			"from a backup?): sending their parts again%s", e->peer_name, n,
			more ? "; more than a session sends again: the rest wait for the next" : "");
	if (purged)
		hl_warn("peer %s lists %zu message(s) of ours it receipted as incomplete, purged "
			"here since: they cannot be sent again", e->peer_name, purged);
	return ret;
}

static int load_unacked(void *arg, const struct hl_item_row *row)
{
	struct load_ctx *lc = arg;
	load_push(lc, entry_new(row->seq, row->kind, row->precedence));
	if (row->seq > lc->e->loaded_upto)
		lc->e->loaded_upto = row->seq;
	return 0;
}

static int cmp_entry(const void *a, const void *b)
{
	const struct out_entry *x = *(const struct out_entry *const *)a;
	const struct out_entry *y = *(const struct out_entry *const *)b;
	if (x->seq != y->seq)
		return x->seq < y->seq ? -1 : 1;
	/* the same message unacknowledged (the peer lost its item) and
	 * listed in RESUME: the unacknowledged entry first, and kept */
	return (int)x->acked - (int)y->acked;
}

static int load_initial(hl_engine *e)
{
	struct load_ctx lc = { .e = e };
	hl_store *st = e->env.txn->store;
	int ret = hl_store_each_out_with_parts(st, e->peer_id, load_with_parts, &lc);
	if (ret == 0)
		ret = load_redelivered(&lc);
	if (ret == 0)
		ret = hl_store_each_out_after(st, e->peer_id, 0, OUT_WINDOW, load_unacked, &lc);
	if (ret < 0) {
		for (size_t i = 0; i < lc.n; i++)
			entry_free(lc.arr[i]);
		free(lc.arr);
		eng_set_error(e, "store: %s", hl_store_errmsg(st));
		return ret;
	}
	if (lc.n)
		qsort(lc.arr, lc.n, sizeof(*lc.arr), cmp_entry);
	for (size_t i = 0; i < lc.n; i++) {
		/* an acked-with-parts message is never also unacked */
		if (i > 0 && lc.arr[i]->seq == lc.arr[i - 1]->seq) {
			entry_free(lc.arr[i]);
			continue;
		}
		queue_append(e, lc.arr[i]);
	}
	free(lc.arr);
	return 0;
}

void hl_engine_refresh(hl_engine *e)
{
	if (!e->synced || e->nloaded >= OUT_WINDOW)
		return;
	struct load_ctx lc = { .e = e };
	hl_store *st = e->env.txn->store;
	if (hl_store_each_out_after(st, e->peer_id, e->loaded_upto, OUT_WINDOW - e->nloaded,
				    load_unacked, &lc) < 0) {
		eng_set_error(e, "store: %s", hl_store_errmsg(st));
	}
	/* Rows come in seq order above everything loaded: appending keeps
	 * every queue in order. */
	for (size_t i = 0; i < lc.n; i++)
		queue_append(e, lc.arr[i]);
	free(lc.arr);
	eng_assert_invariants(e);
}

/* ---- sending ---- */

int hl_send_item_packet(hl_store *st, int64_t peer_id, uint64_t seq, uint8_t *itembuf,
			uint8_t *rec, size_t *len, struct hl_item_row *irow,
			struct hl_msg_row *row, char *err, size_t errlen)
{
	bool has_msg;
	/* The item and its message row in one read (see hl_store_get_out_item). */
	int ret = hl_store_get_out_item(st, peer_id, seq, irow, itembuf, HL_ITEM_MAX, row,
					&has_msg);
	if (ret < 0) {
		snprintf(err, errlen, "store: item %llu: %s", (unsigned long long)seq,
			 hl_store_errmsg(st));
		return ret;
	}
	if ((ret = hl_pkt_item_encode(itembuf, irow->encoded_len, rec, HL_PACKET_BODY_MAX,
				      len)) < 0) {
		snprintf(err, errlen, "item %llu does not fit a record", (unsigned long long)seq);
		return ret;
	}
	if (irow->kind != HL_ITEM_MESSAGE)
		return 0;
	if (!has_msg) {
		snprintf(err, errlen, "store: message %llu: no message at that seq",
			 (unsigned long long)seq);
		return HL_ENOTFOUND;
	}
	/* A purged message (retention; docs/retention.md) has no
	 * contents to send (and no body to read): pump() skips it for
	 * this session, a bundle export fails. */
	if (row->purged_at || (!row->body && row->body_size <= HL_INLINE_BODY_MAX)) {
		snprintf(err, errlen, "message %llu was purged here: it cannot be sent again",
			 (unsigned long long)seq);
		return HL_ESTATE;
	}
	struct hl_msg_content c = {
		.subject = (const uint8_t *)row->subject,
		.subject_len = strlen(row->subject),
		.inline_body = row->body_size <= HL_INLINE_BODY_MAX,
	};
	memcpy(c.salt, row->salt, HL_SALT_LEN);
	if (c.inline_body) {
		c.body = row->body;
		c.body_len = row->body_size;
	}
	size_t clen;
	ret = hl_msg_content_encode(&c, rec + *len, HL_PACKET_BODY_MAX - *len, &clen);
	if (ret < 0) {
		snprintf(err, errlen, "message %llu does not fit a record", (unsigned long long)seq);
		return ret;
	}
	*len += clen;
	return 0;
}

static int send_item(hl_engine *e, struct out_entry *x, uint64_t now)
{
	struct hl_item_row irow;
	struct hl_msg_row row = { 0 };
	char err[sizeof(e->error)];
	size_t len;
	int ret = hl_send_item_packet(e->env.txn->store, e->peer_id, x->seq, e->itembuf, e->rec,
				      &len, &irow, &row, err, sizeof(err));
	if (ret < 0) {
		eng_set_error(e, "%s", err);
		goto out;
	}
	if (x->kind == HL_ITEM_MESSAGE && !x->parts_known)
		entry_set_parts(e, x, &row);
	ret = eng_send_pkt(e, HL_PKT_ITEM, e->rec, len, now);
	if (ret == 0) {
		x->item_sent = true;
		e->stats.items_out++;
		if (x->kind == HL_ITEM_MESSAGE)
			eng_stage_item_sent(e, x, row.id, now);
	}
out:
	hl_msg_row_clear(&row);
	return ret;
}

int hl_send_chunk_packet(uint64_t seq, unsigned part, uint64_t offset, size_t n,
			 const uint8_t *body, struct hl_dio_reader *r, uint8_t *rec)
{
	uint8_t *data = rec + HL_CHUNK_HDR_LEN;
	if (part == 0) {
		memcpy(data, body + offset, n);
	} else {
		int ret = hl_dio_read(r, offset, data, n);
		if (ret < 0)
			return ret;
	}
	hl_pkt_chunk_header(seq, (uint8_t)part, offset, rec);
	return 0;
}

static int send_chunk(hl_engine *e, struct out_entry *x, uint64_t now)
{
	struct out_part *p = &x->parts[x->cur];
	uint64_t left = p->size - p->offset;
	size_t max = eng_data_max(e, CHUNK_DATA_MAX);
	size_t n = left < max ? (size_t)left : max;
	int ret;

	if (x->cur > 0 && p->r.fd < 0) {
		char *path = hl_path_join(e->env.dir, p->path);
		ret = hl_dio_ropen(&p->r, path, O_CLOEXEC | O_NOFOLLOW);
		if (ret < 0) {
			eng_set_error(e, "cannot open %s: %s", path, hl_strerror(ret));
			free(path);
			return ret;
		}
		free(path);
	}
	if ((ret = hl_send_chunk_packet(x->seq, x->cur, p->offset, n, x->body, &p->r,
					e->rec)) < 0) {
		eng_set_error(e, "cannot read attachment %s: %s", p->path,
			      ret == HL_ETRUNC ? "file shorter than recorded" : hl_strerror(ret));
		return ret;
	}
	ret = eng_send_pkt(e, HL_PKT_CHUNK, e->rec, HL_CHUNK_HDR_LEN + n, now);
	if (ret < 0)
		return ret;
	e->stats.chunks_out++;
	eng_flow_sent(e, n, now);
	p->offset += n;
	if (p->offset == p->size) {
		hl_dio_rclose(&p->r);
		do
			x->cur++;
		while (x->cur < x->nparts && x->parts[x->cur].offset >= x->parts[x->cur].size);
		if (x->cur >= x->nparts) {
			free(x->body);
			x->body = NULL;
		}
	}
	return 0;
}

/* CREDIT: X's next CHUNK must wait (eng_flow_holds). */
static bool window_full(hl_engine *e, const struct out_entry *x)
{
	if (!e->credit_on || !x->item_sent || x->cur >= x->nparts)
		return false;
	const struct out_part *p = &x->parts[x->cur];
	uint64_t left = p->size - p->offset, max = eng_data_max(e, CHUNK_DATA_MAX);
	return eng_flow_holds(e, left < max ? left : max);
}

/* The entry to work on: the most urgent queue's cursor (a queue whose
 * cursor waits for a retry is passed over). */
static struct out_entry *pick(hl_engine *e, struct out_queue **qout, uint64_t now)
{
	for (int p = HL_PREC_COUNT - 1; p >= 0; p--) {
		struct out_queue *q = &e->q[p];
		queue_fix_cursor(q);
		if (q->cursor && q->cursor->retry_at <= now && !eng_stage_waiting(q->cursor, now)) {
			*qout = q;
			return q->cursor;
		}
	}
	return NULL;
}

void hl_engine_pump(hl_engine *e, uint64_t now)
{
	if (!e->session || hl_session_state(e->session) != HL_SESSION_OPEN)
		return;
	eng_send_owed(e, now);
	if (e->reclaim_pending || e->return_pending)
		eng_resync_send(e, now);
	if (!e->synced)
		return;
	if (e->nloaded < OUT_WINDOW / 2)
		hl_engine_refresh(e);
	/* All taken so far: the pump after a burst's commit ends the burst
	 * (and a CREDIT the session refused before goes now). */
	eng_credit_maybe(e, now, true);
	eng_stage_send_staged(e, now);
	while (hl_session_writable_or_notify(e->session)) {
		struct out_queue *q = NULL;
		struct out_entry *x = pick(e, &q, now);
		/* Staged bytes go when nothing as urgent waits. */
		int sret = eng_stage_pump(e, x ? (int)x->prec : -1, now);
		if (sret < 0)
			break;
		if (sret > 0)
			continue;
		if (!x)
			break;
		if (window_full(e, x)) {
			/* the peer's next CREDIT pumps again */
			e->stats.window_waits++;
			break;
		}
		int ret = x->item_sent ? send_chunk(e, x, now) : send_item(e, x, now);
		if (ret == -EAGAIN)
			break;
		if (ret < 0) {
			/* A local failure (a file gone, a store error): skip the
			 * entry for this session rather than spin on it. */
			hl_warn("peer %s: cannot send item %llu: %s", e->peer_name,
				(unsigned long long)x->seq, e->error);
			x->item_sent = true;
			x->cur = x->nparts;
		}
		if (entry_done(x))
			queue_fix_cursor(q);
	}
	eng_assert_invariants(e);
}

/* ---- what the peer says about our items ---- */

int eng_on_ack(hl_engine *e, const uint8_t *body, size_t len)
{
	struct hl_pkt_ack *a = xmalloc(sizeof(*a));
	hl_store *st = e->env.txn->store;
	int ret = hl_pkt_ack_decode(body, len, a);
	if (ret < 0) {
		eng_set_error(e, "malformed ACK record");
		goto out;
	}
	if ((ret = hl_txn_need(e->env.txn)) < 0)
		goto out;
	if (e->first_ack) {
		e->first_ack = false;
		uint64_t lost = 0;
		if (e->session && (ret = eng_peer_lost(e, a, &lost)) < 0)
			goto out;
		if (lost && e->synced) {
			/* The window was loaded already: load it again, with them. */
			eng_queues_clear(e);
			if ((ret = load_initial(e)) < 0)
				goto out;
		}
		if ((ret = eng_resync_verify(e, a)) < 0)
			goto out;
	}
	if (a->base > e->acked_base) {
		if ((ret = hl_store_ack_range(st, e->peer_id, e->acked_base + 1, a->base)) < 0)
			goto out;
		e->acked_base = a->base;
	}
	for (unsigned p = 0; p < HL_PREC_COUNT; p++) {
		for (struct out_entry *x = e->q[p].head; x; x = x->next) {
			if (x->acked)
				continue;
			bool in = x->seq <= a->base;
			for (unsigned i = 0; !in && i < a->n; i++)
				in = x->seq >= a->ranges[i][0] && x->seq <= a->ranges[i][1];
			if (!in)
				continue;
			if (x->seq > a->base &&
			    (ret = hl_store_ack_range(st, e->peer_id, x->seq, x->seq)) < 0)
				goto out;
			x->acked = true;
		}
		queue_prune(e, &e->q[p]);
	}
	ret = 0;
out:
	free(a);
	return ret;
}

int eng_on_resume(hl_engine *e, const uint8_t *body, size_t len)
{
	struct hl_pkt_resume *r = xmalloc(sizeof(*r));
	int ret = hl_pkt_resume_decode(body, len, r);
	if (ret < 0) {
		eng_set_error(e, "malformed RESUME record");
		free(r);
		return ret;
	}
	if (e->synced) {
		free(r);
		return 0; /* only the session's first one matters */
	}
	e->resume.e = xrealloc(e->resume.e, (r->n ? r->n : 1) * sizeof(*e->resume.e));
	memcpy(e->resume.e, r->e, r->n * sizeof(*r->e));
	e->resume.n = r->n;
	free(r);
	eng_queues_clear(e);
	if ((ret = load_initial(e)) < 0)
		return ret;
	e->synced = true;
	eng_assert_invariants(e);
	return 0;
}

int eng_on_refuse(hl_engine *e, const uint8_t *body, size_t len, uint64_t now)
{
	struct hl_pkt_refuse r;
	hl_store *st = e->env.txn->store;
	struct hl_item_row ours;
	int ret = hl_pkt_refuse_decode(body, len, &r);
	if (ret < 0) {
		eng_set_error(e, "malformed REFUSE record");
		return ret;
	}
	ret = hl_store_get_item(st, e->peer_id, HL_DIR_OUT, r.seq, &ours, e->itembuf, HL_ITEM_MAX);
	if (ret == HL_ENOTFOUND || (ret == 0 && sodium_memcmp(ours.hash, r.hash, 32) != 0))
		return 0; /* not about anything we sent */
	if (ret < 0)
		return ret;
	char text[HL_REFUSE_TEXT_MAX + 1], reason[300];
	hl_sanitize((const char *)r.text, r.text_len, text, sizeof(text), 0);
	snprintf(reason, sizeof(reason), "%s: %s", hl_refuse_code_str(r.code), text);
	hl_warn("peer %s refused item %llu: %s", e->peer_name, (unsigned long long)r.seq, reason);
	for (unsigned p = 0; p < HL_PREC_COUNT; p++) {
		for (struct out_entry *x = e->q[p].head; x; x = x->next) {
			if (x->seq != r.seq)
				continue;
			if (r.code == HL_REFUSE_QUOTA) {
				/* Temporary: send the item again later.  Its
				 * precedence waits (order within it is kept);
				 * the others go on. */
				x->item_sent = false;
				x->retry_at = now + QUOTA_RETRY_MS;
				entry_reset_parts(x);
			} else {
				/* final: off the queue */
				x->item_sent = true;
				x->cur = x->nparts;
				x->acked = true;
			}
		}
		queue_fix_cursor(&e->q[p]);
		queue_prune(e, &e->q[p]);
	}
	if (r.code == HL_REFUSE_QUOTA) {
		eng_set_error(e, "peer refused item %llu for now (retrying): %s",
			      (unsigned long long)r.seq, reason);
		return 0;
	}
	if ((ret = hl_txn_need(e->env.txn)) < 0)
		return ret;
	if ((ret = hl_store_ack_range(st, e->peer_id, r.seq, r.seq)) < 0)
		return ret;
	struct hl_msg_row row = { 0 };
	ret = hl_store_get_message_by_seq(st, e->peer_id, HL_DIR_OUT, r.seq, &row);
	if (ret == 0) {
		ret = hl_store_set_state(st, row.id, HL_MSG_REFUSED, reason, hl_now_ms());
		eng_add_event(e, HL_EV_REFUSED, row.id);
	}
	hl_msg_row_clear(&row);
	return ret == HL_ENOTFOUND ? 0 : ret;
}

int eng_on_credit(hl_engine *e, const uint8_t *body, size_t len, uint64_t now)
{
	uint64_t taken;
	if (hl_pkt_credit_decode(body, len, &taken) < 0) {
		eng_set_error(e, "malformed CREDIT record (%zu bytes)", len);
		return HL_EINVAL;
	}
	if (!e->credit_on)
		return 0; /* not agreed in the HELLOs: nothing waits for it */
	if (taken < e->chunk_credit || taken > e->chunk_sent) {
		eng_set_error(e, "CREDIT for %llu bytes of CHUNK data; %llu sent, %llu credited before",
			      (unsigned long long)taken, (unsigned long long)e->chunk_sent,
			      (unsigned long long)e->chunk_credit);
		return HL_EINVAL;
	}
	e->chunk_credit = taken;
	if (e->flow)
		hl_flow_credited(e->flow, taken, eng_flow_us(e, now));
	/* Inside a transaction, the postcommit pumps; otherwise now (a CREDIT
	 * alone needs no commit: the daemon does none for it). */
	if (!e->env.txn->open)
		hl_engine_pump(e, now);
	return 0;
}

int eng_on_staged(hl_engine *e, const uint8_t *body, size_t len)
{
	struct hl_pkt_staged r;
	int ret = hl_pkt_staged_decode(body, len, &r);
	if (ret < 0) {
		eng_set_error(e, "malformed STAGED record");
		return ret;
	}
	for (unsigned q = 0; q < HL_PREC_COUNT; q++) {
		for (struct out_entry *x = e->q[q].head; x; x = x->next) {
			if (x->seq != r.seq || !x->parts_known || r.part >= x->nparts)
				continue;
			struct out_part *p = &x->parts[r.part];
			/* The peer holds the first r.offset bytes: CHUNKs from
			 * there (never backwards: what went since is held). */
			if (r.offset > p->offset && r.offset <= p->size)
				p->offset = r.offset;
			x->stage_wait &= ~(UINT64_C(1) << (r.part - 1));
			x->cur = 0;
			while (x->cur < x->nparts && x->parts[x->cur].offset >= x->parts[x->cur].size)
				x->cur++;
			if (x->cur >= x->nparts) {
				hl_dio_rclose(&p->r);
				free(x->body);
				x->body = NULL;
			}
			queue_fix_cursor(&e->q[q]);
			return 0;
		}
	}
	return 0; /* about nothing we hold: a late answer */
}
