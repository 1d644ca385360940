/* deliver/items.c — what each kind of item from the peer does once it is
 * accepted (recv.c), for the engine (engine_core.c; docs/items.md section 2):
 * a message is stored (and its parts received, parts.c), a receipt moves
 * our messages to delivered, a check is answered by the station, an
 * answer settles one of our checks, an agreement is recorded and a
 * countersign signs one of ours. */
#include "deliver/engine_int.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chain/queue.h"
#include "deliver/author.h"
#include "msg/message.h"
#include "util/err.h"
#include "util/log.h"
#include "util/mem.h"
#include "util/timefmt.h"

#define MAX_PARTIAL_IN 256           /* incoming messages in progress per peer */
/* Bodies sent in CHUNKs are kept in memory until whole (up to 16 MiB
 * each): at most this much per peer at once, or 256 of them would take
 * 4 GiB.  A message past it is refused for now. */
#define BODY_MEM_MAX (64u << 20)

/* ---- messages and receipts ---- */

/* The rules a message's content and attachments keep: one broken refuses
 * it for good (a tombstone) and sets *STOP.  C gets the content. */
static int message_rules(hl_engine *e, const struct hl_item *it, const uint8_t hash[static 32],
			 const uint8_t *rest, size_t rest_len, struct hl_msg_content *c,
			 bool *stop)
{
	const struct hl_item_message *m = &it->u.msg;
	int ret;
	*stop = true;

	/* the same id under another item: refuse */
	bool used;
	if ((ret = hl_store_message_exists(e->env.txn->store, m->id, &used)) < 0)
		return ret;
	if (used)
		return eng_tombstone(e, it->seq, hash, HL_REFUSE_ID_REUSED, "message id already used");
	if (hl_msg_content_decode(rest, rest_len, c) < 0)
		return eng_tombstone(e, it->seq, hash, HL_REFUSE_MALFORMED, "message content malformed");
	if (hl_msg_content_verify(m, c) < 0)
		return eng_tombstone(e, it->seq, hash, HL_REFUSE_CONTENT, "subject or body hash mismatch");

	uint64_t max_att = e->env.max_attachment ? e->env.max_attachment : HL_DEFAULT_MAX_ATTACHMENT;
	for (unsigned i = 0; i < m->n_attachments; i++) {
		if (m->att[i].size > max_att) {
			char text[128];
			snprintf(text, sizeof(text), "attachment of %llu bytes; the limit is %llu",
				 (unsigned long long)m->att[i].size, (unsigned long long)max_att);
			return eng_tombstone(e, it->seq, hash, HL_REFUSE_TOO_LARGE, text);
		}
	}
	*stop = false;
	return 0;
}

/* Quota and reserve: temporary refusals, nothing stored, retried by
 * the sender in its next session (*STOP).  *TOTAL: what the message
 * costs the peer's quota. */
static int message_quota(hl_engine *e, const struct hl_item *it, const uint8_t hash[static 32],
			 size_t enc_len, const struct hl_msg_content *c, uint64_t *total,
			 bool *stop)
{
	const struct hl_item_message *m = &it->u.msg;
	int ret;
	*stop = false;
	*total = eng_message_charge(m, enc_len, c->subject_len);
	bool over;
	if ((ret = eng_over_limits(e, *total, &over)) < 0)
		return ret;
	if (!c->inline_body) {
		uint64_t held = m->body_size;
		for (const struct in_msg *w = e->in; w; w = w->next)
			held += w->body ? w->body_size : 0;
		over = over || held > BODY_MEM_MAX;
	}
	if (over || e->nin >= MAX_PARTIAL_IN) {
		eng_set_error(e, "message %llu of %llu bytes waits: over the peer's quota or the disk reserve (free space or raise PeerQuota)",
			      (unsigned long long)it->seq, (unsigned long long)*total);
		eng_refuse_later(e, it->seq, hash, "over quota or disk reserve");
		*stop = true;
	}
	return 0;
}

/* The message's rows: its item, the message (COMPLETE at once when
 * VISIBLE, else PARTIAL) and its attachments (under in/IDHEX/). */
static int store_message(hl_engine *e, const struct hl_item *it, const uint8_t *enc,
			 size_t enc_len, const uint8_t hash[static 32],
			 const struct hl_msg_content *c, const char *idhex, bool visible)
{
	hl_store *st = e->env.txn->store;
	const struct hl_item_message *m = &it->u.msg;
	int ret;
	struct hl_att_row *att = xcalloc(m->n_attachments ? m->n_attachments : 1, sizeof(*att));
	for (unsigned i = 0; i < m->n_attachments; i++) {
		att[i].idx = i;
		memcpy(att[i].name, m->att[i].name, m->att[i].name_len);
		att[i].name[m->att[i].name_len] = '\0';
		att[i].size = m->att[i].size;
		memcpy(att[i].hash, m->att[i].hash, HL_HASH_LEN);
		snprintf(att[i].path, sizeof(att[i].path), "in/%s/%u", idhex, i);
	}
	char *subject = xstrndup((const char *)c->subject, c->subject_len);
	struct hl_msg_row row = {
		.peer_id = e->peer_id, .dir = HL_DIR_IN, .seq = it->seq,
		.precedence = m->precedence, .class_seq = m->class_seq,
		.subject = subject, .body = c->inline_body ? (uint8_t *)c->body : NULL,
		.body_size = m->body_size, .sent_at = (int64_t)it->time_ms,
		.state = HL_MSG_PARTIAL, .unread = true,
		.n_att = m->n_attachments, .att = att,
	};
	memcpy(row.id, m->id, HL_MSG_ID_LEN);
	memcpy(row.salt, c->salt, HL_SALT_LEN);
	if (visible) {
		row.state = HL_MSG_COMPLETE;
		row.received_at = hl_now_ms();
	}
	struct hl_item_row irow = {
		.peer_id = e->peer_id, .dir = HL_DIR_IN, .seq = it->seq,
		.kind = HL_ITEM_MESSAGE, .encoded = enc, .encoded_len = enc_len,
		.precedence = m->precedence, .stored_at = hl_now_ms(),
	};
	memcpy(irow.hash, hash, HL_HASH_LEN);
	ret = hl_store_insert_item(st, &irow);
	if (ret == 0)
		ret = hl_store_insert_message(st, &row);
	free(subject);
	free(att);
	return ret;
}

/* The message in memory, to receive its parts (parts.c). */
static struct in_msg *message_in(const struct hl_item *it, const uint8_t hash[static 32],
				 const struct hl_msg_content *c, const char *idhex)
{
	const struct hl_item_message *m = &it->u.msg;
	struct in_msg *im = eng_in_msg_new();
	im->seq = it->seq;
	memcpy(im->id, m->id, HL_MSG_ID_LEN);
	memcpy(im->item_hash, hash, HL_HASH_LEN);
	im->prec = m->precedence;
	im->class_seq = m->class_seq;
	memcpy(im->salt, c->salt, HL_SALT_LEN);
	memcpy(im->body_hash, m->body_hash, HL_HASH_LEN);
	im->body_size = m->body_size;
	if (!c->inline_body) {
		struct in_part *p = &im->parts[0];
		p->present = true;
		p->size = m->body_size;
		im->body = xmalloc(m->body_size);
		hl_parthash_body(&p->hs, im->salt);
	}
	for (unsigned i = 0; i < m->n_attachments; i++) {
		struct in_part *p = &im->parts[i + 1];
		p->present = true;
		p->size = m->att[i].size;
		memcpy(p->hash, m->att[i].hash, HL_HASH_LEN);
		p->path = xasprintf("in/%s/%u", idhex, i);
		hl_parthash_doc(&p->hs);
		p->hashed = true;
	}
	return im;
}

/* A message from the peer, its item accepted: the rules for its content,
 * the limits, its rows; whole on arrival, it is visible at once,
 * otherwise it waits in memory for its parts. */
int eng_on_message_item(hl_engine *e, const struct hl_item *it, const uint8_t *enc,
			size_t enc_len, const uint8_t hash[static 32],
			const uint8_t *rest, size_t rest_len)
{
	const struct hl_item_message *m = &it->u.msg;
	struct hl_msg_content c;
	uint64_t total;
	bool stop;
	int ret;

	if ((ret = message_rules(e, it, hash, rest, rest_len, &c, &stop)) < 0 || stop)
		return ret;
	if ((ret = message_quota(e, it, hash, enc_len, &c, &total, &stop)) < 0 || stop)
		return ret;

	if (e->free_cache != UINT64_MAX)
		e->free_cache = e->free_cache > total ? e->free_cache - total : 0;
	char idhex[33];
	hl_msg_id_hex(m->id, idhex);
	/* A message whole on arrival (its body inline, no attachment) whose
	 * predecessor allows is stored visible at once: one UPDATE less per
	 * message of a stream. */
	bool visible = false;
	if (c.inline_body && m->n_attachments == 0 &&
	    (ret = eng_predecessor_done(e, m->precedence, m->class_seq, it->seq, &visible)) < 0)
		return ret;
	if ((ret = store_message(e, it, enc, enc_len, hash, &c, idhex, visible)) < 0)
		return ret;
	eng_cache_note(e, it->seq);
	eng_class_note(e, m->precedence, it->seq, m->class_seq);
	e->need_ack = true;
	if (visible) {
		eng_add_event(e, HL_EV_ARRIVED, m->id);
		eng_add_receipt(e, it->seq, hash);
		return 0;
	}

	struct in_msg *im = message_in(it, hash, &c, idhex);
	eng_in_add(e, im);
	if ((ret = eng_stage_adopt(e, im)) < 0)
		return ret;
	/* zero-length attachments are complete at once */
	for (unsigned i = 1; i <= m->n_attachments; i++) {
		if (im->parts[i].size == 0) {
			uint8_t empty[HL_HASH_LEN];
			hl_doc_hash(NULL, 0, empty);
			if (sodium_memcmp(empty, im->parts[i].hash, HL_HASH_LEN) != 0)
				return eng_refuse_stored(e, im, HL_REFUSE_ATTACHMENT, "empty attachment hash mismatch");
			if ((ret = eng_part_empty(e, &im->parts[i])) < 0)
				return ret;
			im->parts[i].complete = true;
		}
	}
	im->ready = eng_in_all_complete(im);
	if (im->ready)
		return eng_try_visible(e, im, 0);
	return 0;
}

int eng_on_receipt_item(hl_engine *e, const struct hl_item *it, const uint8_t *enc,
			size_t enc_len, const uint8_t hash[static 32])
{
	hl_store *st = e->env.txn->store;
	struct hl_item_row irow = {
		.peer_id = e->peer_id, .dir = HL_DIR_IN, .seq = it->seq,
		.kind = HL_ITEM_RECEIPT, .encoded = enc, .encoded_len = enc_len,
		.precedence = HL_PREC_FLASH, .stored_at = hl_now_ms(),
	};
	memcpy(irow.hash, hash, HL_HASH_LEN);
	int ret = hl_store_insert_item(st, &irow);
	if (ret < 0)
		return ret;
	eng_cache_note(e, it->seq);
	e->need_ack = true;
	int64_t now = hl_now_ms();
	/* The chain rules (recv.c) made sure each entry names a message
	 * of ours, with its hash, not acknowledged before: each moves. */
	for (unsigned i = 0; i < it->u.rcpt.count; i++) {
		const struct hl_receipt_entry *r = &it->u.rcpt.entries[i];
		uint8_t id[HL_MSG_ID_LEN];
		bool moved;
		if ((ret = hl_store_mark_delivered(st, e->peer_id, r->seq, r->hash, now, id,
						   &moved)) < 0)
			return ret;
		if (moved)
			eng_add_event(e, HL_EV_DELIVERED, id);
	}
	return 0;
}

/* ---- checks, answers, agreements ---- */

static struct hl_author_link author_link(const hl_engine *e)
{
	struct hl_author_link l = {
		.st = e->env.txn->store, .me = e->env.me, .peer_id = e->peer_id,
	};
	memcpy(l.peer_sign, e->peer_sign, 32);
	return l;
}

/* The peer checked the line: record it, and the station answers at once
 * (a second answer, by a person or "no person", follows in operator mode:
 * the daemon's business). */
static int count_row(void *arg, const struct hl_check_row *row)
{
	(void)row;
	(*(size_t *)arg)++;
	return 0;
}

/* A check of the peer: the station answers at once.  In operator mode it
 * then waits for a person, unless HL_CHECKS_WAITING_MAX of the peer's
 * checks already do: then it is decided "no person" at once, with no
 * answer beyond the station's (docs/items.md 2.4), so that a peer cannot
 * pile up checks for `status` to list and `hotline answer` to sign. */
static int on_check_item(hl_engine *e, const struct hl_item *it)
{
	hl_store *st = e->env.txn->store;
	const struct hl_item_check *c = &it->u.chk;
	int64_t now = hl_now_ms();
	struct hl_check_row row = {
		.peer_id = e->peer_id, .dir = HL_DIR_IN, .seq = it->seq, .mode = c->mode,
		.link = c->link, .created_at = now, .deadline = now + (int64_t)c->timeout_ms,
		.result = HL_CHECK_PENDING,
	};
	size_t waiting = 0;
	int ret;
	memcpy(row.id, c->id, HL_CHECK_ID_LEN);
	if (c->mode == HL_CHECK_OPERATOR) {
		/* Only operator checks stay open once the station answered. */
		struct hl_check_filter f = { .peer_id = e->peer_id, .dir = HL_DIR_IN,
					     .open_only = true, .limit = HL_CHECKS_WAITING_MAX };
		if ((ret = hl_store_each_check(st, &f, count_row, &waiting)) < 0)
			return ret;
	}
	ret = hl_store_insert_check(st, &row);
	if (ret == HL_EEXIST) {
		/* The same id under another item: kept in the chain, not answered. */
		hl_warn("peer %s: check item %llu reuses a check id; not answered", e->peer_name,
			(unsigned long long)it->seq);
		return 0;
	}
	struct hl_author_link l = author_link(e);
	if (ret < 0 || (ret = hl_author_answer(&l, &row, HL_ANSWER_STATION, now)) < 0)
		return ret;
	if (c->mode == HL_CHECK_OPERATOR && waiting >= HL_CHECKS_WAITING_MAX) {
		row.result = HL_CHECK_NO_PERSON;   /* no_person_at 0: not offered */
		if ((ret = hl_store_update_check(st, &row)) < 0)
			return ret;
	}
	event_t *ev = eng_add_event_info(e, HL_EV_CHECK_IN, c->id, HL_CHECK_ID_LEN);
	ev->by = c->mode;
	return 0;
}

/* The peer answered one of our checks. */
static int on_answer_item(hl_engine *e, const struct hl_item *it)
{
	hl_store *st = e->env.txn->store;
	const struct hl_item_answer *a = &it->u.ans;
	struct hl_item_row ours;
	struct hl_check_row row;
	int ret = hl_store_get_item(st, e->peer_id, HL_DIR_OUT, a->check_seq, &ours, e->itembuf,
				    HL_ITEM_MAX);
	if (ret == 0 && (ours.kind != HL_ITEM_CHECK ||
			 sodium_memcmp(ours.hash, a->check_hash, HL_HASH_LEN) != 0))
		ret = HL_ENOTFOUND;
	if (ret == 0)
		ret = hl_store_get_check_by_seq(st, e->peer_id, HL_DIR_OUT, a->check_seq, &row);
	if (ret == HL_ENOTFOUND) {
		hl_warn("peer %s: answer %llu names item %llu, not a check of ours", e->peer_name,
			(unsigned long long)it->seq, (unsigned long long)a->check_seq);
		return 0;
	}
	if (ret < 0)
		return ret;
	int64_t now = hl_now_ms();
	switch (a->by) {
	case HL_ANSWER_STATION:
		if (!row.station_at)
			row.station_at = now;
		if (row.mode == HL_CHECK_MACHINE && row.result == HL_CHECK_PENDING)
			row.result = HL_CHECK_OK;
		break;
	case HL_ANSWER_PERSON:
		if (!row.person_at)
			row.person_at = now;
		if (row.result == HL_CHECK_PENDING)
			row.result = HL_CHECK_OK;
		break;
	default:
		if (!row.no_person_at)
			row.no_person_at = now;
		if (row.result == HL_CHECK_PENDING)
			row.result = HL_CHECK_NO_PERSON;
		break;
	}
	if ((ret = hl_store_update_check(st, &row)) < 0)
		return ret;
	event_t *ev = eng_add_event_info(e, HL_EV_ANSWER, row.id, HL_CHECK_ID_LEN);
	ev->by = a->by;
	return 0;
}

static int on_agreement_item(hl_engine *e, const struct hl_item *it, const uint8_t hash[static 32])
{
	const struct hl_item_agreement *g = &it->u.agr;
	struct hl_agreement_row row = {
		.peer_id = e->peer_id, .dir = HL_DIR_IN, .seq = it->seq, .size = g->size,
		.proposed_at = (int64_t)it->time_ms,
	};
	memcpy(row.id, hash, HL_HASH_LEN);
	memcpy(row.name, g->name, g->name_len);
	row.name[g->name_len] = '\0';
	memcpy(row.doc_hash, g->doc_hash, HL_HASH_LEN);
	memcpy(row.msg_id, g->msg_id, HL_MSG_ID_LEN);
	int ret = hl_store_insert_agreement(e->env.txn->store, &row);
	if (ret < 0)
		return ret;
	(void)eng_add_event_info(e, HL_EV_PROPOSAL, hash, HL_HASH_LEN);
	return 0;
}

static int on_countersign_item(hl_engine *e, const struct hl_item *it)
{
	hl_store *st = e->env.txn->store;
	const struct hl_item_countersign *c = &it->u.csig;
	struct hl_agreement_row row;
	int ret = hl_store_get_agreement_by_id(st, c->agreement_id, &row);
	if (ret == 0 && (row.dir != HL_DIR_OUT || row.peer_id != e->peer_id ||
			 row.seq != c->proposal_seq ||
			 sodium_memcmp(row.doc_hash, c->doc_hash, HL_HASH_LEN) != 0))
		ret = HL_ENOTFOUND;
	if (ret == HL_ENOTFOUND) {
		hl_warn("peer %s: countersign %llu names no agreement of ours", e->peer_name,
			(unsigned long long)it->seq);
		return 0;
	}
	if (ret < 0 || (ret = hl_store_set_agreement_signed(st, row.id, it->seq, hl_now_ms())) < 0)
		return ret;
	(void)eng_add_event_info(e, HL_EV_SIGNED, row.id, HL_HASH_LEN);
	return 0;
}

/* Items other than messages and receipts: stored in the chain like a
 * receipt, then handled by kind. */
int eng_on_signed_item(hl_engine *e, const struct hl_item *it, const uint8_t *enc,
		       size_t enc_len, const uint8_t hash[static 32])
{
	struct hl_item_row irow = {
		.peer_id = e->peer_id, .dir = HL_DIR_IN, .seq = it->seq,
		.kind = it->kind, .encoded = enc, .encoded_len = enc_len,
		.precedence = HL_PREC_FLASH, .stored_at = hl_now_ms(),
	};
	memcpy(irow.hash, hash, HL_HASH_LEN);
	int ret = hl_store_insert_item(e->env.txn->store, &irow);
	if (ret < 0)
		return ret;
	eng_cache_note(e, it->seq);
	e->need_ack = true;
	switch (it->kind) {
	case HL_ITEM_CHECK: return on_check_item(e, it);
	case HL_ITEM_ANSWER: return on_answer_item(e, it);
	case HL_ITEM_AGREEMENT: return on_agreement_item(e, it, hash);
	case HL_ITEM_COUNTERSIGN: return on_countersign_item(e, it);
	default: return 0;
	}
}
