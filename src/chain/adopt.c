/* chain/adopt.c — taking back the items of ours the key holder kept
 * after the store's head (see adopt.h). */
#include "chain/adopt.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chain/accept.h"
#include "util/bytes.h"
#include "util/err.h"
#include "util/log.h"
#include "util/mem.h"
#include "util/timefmt.h"

#define NOTE_VERSION 1

void hl_adopt_message_note(const uint8_t salt[static HL_SALT_LEN], const char *subject,
			   const uint8_t *body, size_t body_len, uint8_t **note, size_t *len)
{
	size_t slen = strlen(subject);
	size_t cap = 1 + HL_SALT_LEN + 2 + slen + 4 + body_len;
	struct hl_wbuf w;
	hl_wbuf_init(&w, xmalloc(cap), cap);
	hl_w_u8(&w, NOTE_VERSION);
	hl_w_bytes(&w, salt, HL_SALT_LEN);
	hl_w_u16(&w, (uint16_t)slen);
	hl_w_bytes(&w, subject, slen);
	hl_w_u32(&w, (uint32_t)body_len);
	hl_w_bytes(&w, body, body_len);
	*note = w.p;
	*len = w.len;
}

int hl_adopt_message_note_parse(const uint8_t *note, size_t len, uint8_t salt[static HL_SALT_LEN],
				const uint8_t **subject, size_t *subject_len, const uint8_t **body,
				size_t *body_len)
{
	struct hl_rbuf r;
	hl_rbuf_init(&r, note, len);
	if (hl_r_u8(&r) != NOTE_VERSION)
		return HL_EINVAL;
	hl_r_bytes(&r, salt, HL_SALT_LEN);
	*subject_len = hl_r_u16(&r);
	*subject = hl_r_take(&r, *subject_len);
	*body_len = hl_r_u32(&r);
	*body = hl_r_take(&r, *body_len);
	if (r.err || hl_r_left(&r) != 0 || *subject_len > HL_SUBJECT_MAX || *body_len > HL_BODY_MAX)
		return HL_EINVAL;
	return 0;
}

struct hl_att_row *hl_adopt_att_rows(const struct hl_item_message *m)
{
	char idhex[33];
	struct hl_att_row *rows = xcalloc(m->n_attachments ? m->n_attachments : 1, sizeof(*rows));
	sodium_bin2hex(idhex, sizeof(idhex), m->id, HL_MSG_ID_LEN);
	for (unsigned i = 0; i < m->n_attachments; i++) {
		memcpy(rows[i].name, m->att[i].name, m->att[i].name_len);
		rows[i].size = m->att[i].size;
		memcpy(rows[i].hash, m->att[i].hash, HL_HASH_LEN);
		snprintf(rows[i].path, sizeof(rows[i].path), "out/%s/%u", idhex, i);
	}
	return rows;
}

struct adopt {
	hl_store *st;
	int64_t peer_id;
	const hl_signer *me;          /* our keys (the holder's face) */
	const uint8_t *peer_sign;
	struct hl_chain_head *head;
	struct hl_item it;
	int error;
};

/* The messages row of IT from its note: queued, as it was to be; without
 * a note that reads, the row says what the item says, purged (its text is
 * lost, as after a restore: docs/retention.md). */
static int message_row(struct adopt *a, const uint8_t *note, size_t note_len)
{
	const struct hl_item_message *m = &a->it.u.msg;
	const uint8_t *subject = NULL, *body = NULL;
	size_t subject_len = 0, body_len = 0;
	char idhex[33];
	struct hl_msg_row row = {
		.peer_id = a->peer_id, .dir = HL_DIR_OUT, .seq = a->it.seq,
		.precedence = m->precedence, .class_seq = m->class_seq,
		.body_size = m->body_size, .sent_at = (int64_t)a->it.time_ms,
		.state = HL_MSG_QUEUED, .n_att = m->n_attachments,
	};
	bool whole = hl_adopt_message_note_parse(note, note_len, row.salt, &subject, &subject_len,
						 &body, &body_len) == 0 &&
		     body_len == m->body_size;
	memcpy(row.id, m->id, HL_MSG_ID_LEN);
	sodium_bin2hex(idhex, sizeof(idhex), m->id, HL_MSG_ID_LEN);
	row.subject = whole ? xstrndup((const char *)subject, subject_len) : xstrdup("");
	row.body = whole ? xmalloc(body_len + 1) : NULL;
	if (whole && body_len)
		memcpy(row.body, body, body_len);
	row.att = hl_adopt_att_rows(m);
	int ret = hl_store_insert_message(a->st, &row);
	if (ret == 0 && !whole) {
		hl_error("message %s of ours came back from the key holder without its text: it "
			 "is kept as purged", idhex);
		ret = hl_store_set_purged(a->st, m->id, hl_now_ms());
	}
	sodium_memzero(row.salt, sizeof(row.salt));
	free(row.subject);
	free(row.body);
	free(row.att);
	return ret;
}

/* Its kind's rows, as far as the item and its note say them. */
static int kind_rows(struct adopt *a, const uint8_t *note, size_t note_len)
{
	const struct hl_item *it = &a->it;
	const uint8_t *hash;
	uint64_t seq;
	int ret = 0;
	if (it->kind == HL_ITEM_MESSAGE)
		return message_row(a, note, note_len);
	/* What a receipt acknowledged is acknowledged for good: the copies
	 * the peer sends again get no second receipt. */
	for (unsigned i = 0; it->kind == HL_ITEM_RECEIPT && ret == 0 && i < it->u.rcpt.count; i++)
		ret = hl_store_recovered_ack_add(a->st, a->peer_id, it->u.rcpt.entries[i].seq);
	/* How much of the peer's chain it said we held: never less again. */
	if (ret == 0 && hl_chain_item_head(it, &seq, &hash))
		ret = hl_store_claim_hold(a->st, a->peer_id, seq, hash);
	if (ret == 0 && it->kind != HL_ITEM_RECEIPT)
		hl_warn("our %s at position %llu came back from the key holder: the rows "
			"beside it were lost with the transaction that signed it",
			hl_item_kind_name(it->kind), (unsigned long long)it->seq);
	return ret;
}

/* Our item as the holder kept it: signed by our key now or, when it was
 * signed before a rotation (or is the rotation's item), by the previous
 * one.  Its author is our name on the link, which a rotation keeps: the
 * prev that must be our head's binds it to the chain. */
static int open_ours(struct adopt *a, const uint8_t *item, size_t len)
{
	const uint8_t *prev = hl_signer_prev_sign_pk(a->me);
	int ret = hl_item_open_key(item, len, NULL, a->peer_sign, hl_signer_sign_pk(a->me), &a->it);
	if (ret == HL_EAUTH && prev)
		ret = hl_item_open_key(item, len, NULL, a->peer_sign, prev, &a->it);
	return ret;
}

static int adopt_one(void *arg, const uint8_t *item, size_t len, const uint8_t *note,
		     size_t note_len)
{
	struct adopt *a = arg;
	struct hl_item_row row;
	int ret = open_ours(a, item, len);
	if (ret == 0 && (a->it.seq != a->head->seq + 1 ||
			 sodium_memcmp(a->it.prev, a->head->hash, HL_HASH_LEN) != 0))
		ret = HL_EINVAL;
	if (ret < 0) {
		a->error = ret;
		return ret;
	}
	row = (struct hl_item_row){
		.peer_id = a->peer_id, .dir = HL_DIR_OUT, .seq = a->it.seq, .kind = a->it.kind,
		.encoded = item, .encoded_len = len, .stored_at = hl_now_ms(),
		.precedence = a->it.kind == HL_ITEM_MESSAGE ? a->it.u.msg.precedence : HL_PREC_FLASH,
	};
	hl_item_hash(item, len, row.hash);
	if ((ret = hl_store_insert_item(a->st, &row)) < 0 || (ret = kind_rows(a, note, note_len)) < 0)
		return ret;
	a->head->seq = row.seq;
	memcpy(a->head->hash, row.hash, HL_HASH_LEN);
	return 0;
}

int hl_adopt_pending(hl_store *st, hl_keys *k, int64_t peer_id,
		     const uint8_t peer_sign[static 32], struct hl_chain_head *head)
{
	struct adopt *a = xcalloc(1, sizeof(*a));
	uint64_t from = head->seq, holder = 0;
	*a = (struct adopt){
		.st = st, .peer_id = peer_id, .me = hl_keys_signer(k),
		.peer_sign = peer_sign, .head = head,
	};
	int ret = hl_keys_pending(k, peer_sign, head->seq, &holder, adopt_one, a);
	if (ret == 0 && head->seq > from)
		hl_warn("took back our items %llu-%llu from the key holder: signed, then lost "
			"before the store kept them", (unsigned long long)from + 1,
			(unsigned long long)head->seq);
	if (ret == 0 && holder > head->seq) {
		hl_error("the key holder signed our chain up to position %llu and no longer keeps "
			 "the items after %llu: nothing new can be signed for this peer",
			 (unsigned long long)holder, (unsigned long long)head->seq);
		ret = HL_ESTATE;
	} else if (a->error) {
		hl_error("an item the key holder kept does not follow our chain at %llu (%s)",
			 (unsigned long long)head->seq, hl_strerror(a->error));
	}
	/* The holder is at our head now: until another process moves it, the
	 * next transactions need not ask (holder/client.h).  A transaction that
	 * rolls back after this leaves the store behind the holder, and the
	 * next run is refused, which makes the next transaction ask again. */
	if (ret == 0 && holder <= head->seq)
		hl_keys_know_head(k, peer_sign, head->seq);
	free(a);
	return ret;
}
