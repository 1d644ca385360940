/* deliver/author.c — signing and storing our own checks, answers,
 * agreement proposals and countersigns (see author.h). */
#include "deliver/author.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chain/ours.h"
#include "util/err.h"
#include "util/mem.h"
#include "util/timefmt.h"

int hl_author_item(const struct hl_author_link *l, struct hl_item *it,
		   uint8_t hash[static HL_HASH_LEN])
{
	return hl_ours_append(l->st, l->me, l->peer_id, l->peer_sign, it, HL_PREC_FLASH, hash);
}

/* The counterpart's chain head as we hold it (contiguously; after a
 * restore, never less than our chain stated before: store.h). */
static int peer_head(const struct hl_author_link *l, uint64_t *seq, uint8_t hash[static 32])
{
	struct hl_chain_head h;
	int ret = hl_store_signing_head(l->st, l->peer_id, &h);
	if (ret == 0) {
		*seq = h.seq;
		memcpy(hash, h.hash, HL_HASH_LEN);
	}
	return ret;
}

int hl_author_check(const struct hl_author_link *l, enum hl_check_mode mode, bool link,
		    uint32_t timeout_ms, bool manual, int64_t now_ms, struct hl_check_row *out)
{
	struct hl_item *it = xcalloc(1, sizeof(*it));
	uint8_t hash[HL_HASH_LEN];
	int ret;
	it->kind = HL_ITEM_CHECK;
	it->time_ms = (uint64_t)now_ms;
	randombytes_buf(it->u.chk.id, HL_CHECK_ID_LEN);
	it->u.chk.mode = (uint8_t)mode;
	it->u.chk.link = link ? 1 : 0;
	it->u.chk.timeout_ms = timeout_ms;
	if ((ret = peer_head(l, &it->u.chk.peer_seq, it->u.chk.peer_hash)) < 0 ||
	    (ret = hl_author_item(l, it, hash)) < 0)
		goto out;
	memset(out, 0, sizeof(*out));
	memcpy(out->id, it->u.chk.id, HL_CHECK_ID_LEN);
	out->peer_id = l->peer_id;
	out->dir = HL_DIR_OUT;
	out->seq = it->seq;
	out->mode = mode;
	out->link = link;
	out->manual = manual;
	out->created_at = now_ms;
	out->deadline = now_ms + (int64_t)timeout_ms;
	out->result = HL_CHECK_PENDING;
	ret = hl_store_insert_check(l->st, out);
out:
	free(it);
	return ret;
}

int hl_author_answer(const struct hl_author_link *l, struct hl_check_row *chk,
		     enum hl_answer_by by, int64_t now_ms)
{
	struct hl_item *it = xcalloc(1, sizeof(*it));
	struct hl_item_row irow;
	uint8_t hash[HL_HASH_LEN];
	uint8_t *buf = xmalloc(HL_ITEM_MAX);
	int ret;
	if (chk->dir != HL_DIR_IN) {
		ret = HL_EINVAL;
		goto out;
	}
	/* The answer names the check by position and hash, as a receipt does. */
	if ((ret = hl_store_get_item(l->st, l->peer_id, HL_DIR_IN, chk->seq, &irow, buf,
				     HL_ITEM_MAX)) < 0)
		goto out;
	it->kind = HL_ITEM_ANSWER;
	it->time_ms = (uint64_t)now_ms;
	it->u.ans.check_seq = chk->seq;
	memcpy(it->u.ans.check_hash, irow.hash, HL_HASH_LEN);
	it->u.ans.by = (uint8_t)by;
	if ((ret = peer_head(l, &it->u.ans.peer_seq, it->u.ans.peer_hash)) < 0 ||
	    (ret = hl_author_item(l, it, hash)) < 0)
		goto out;
	switch (by) {
	case HL_ANSWER_STATION:
		chk->station_at = now_ms;
		if (chk->mode == HL_CHECK_MACHINE)
			chk->result = HL_CHECK_OK;
		break;
	case HL_ANSWER_PERSON:
		chk->person_at = now_ms;
		chk->result = HL_CHECK_OK;
		break;
	case HL_ANSWER_NO_PERSON:
		chk->no_person_at = now_ms;
		chk->result = HL_CHECK_NO_PERSON;
		break;
	}
	ret = hl_store_update_check(l->st, chk);
out:
	free(buf);
	free(it);
	return ret;
}

int hl_author_agreement(const struct hl_author_link *l, const char *name, uint64_t size,
			const uint8_t doc_hash[static HL_HASH_LEN],
			const uint8_t msg_id[static HL_MSG_ID_LEN], int64_t now_ms,
			uint8_t id[static HL_HASH_LEN])
{
	struct hl_item *it = xcalloc(1, sizeof(*it));
	struct hl_agreement_row row = { 0 };
	size_t name_len = strlen(name);
	int ret;
	if (name_len >= sizeof(row.name)) {
		ret = HL_ETOOBIG;
		goto out;
	}
	it->kind = HL_ITEM_AGREEMENT;
	it->time_ms = (uint64_t)now_ms;
	it->u.agr.name = (const uint8_t *)name;
	it->u.agr.name_len = (uint8_t)name_len;
	it->u.agr.size = size;
	memcpy(it->u.agr.doc_hash, doc_hash, HL_HASH_LEN);
	memcpy(it->u.agr.msg_id, msg_id, HL_MSG_ID_LEN);
	if ((ret = hl_author_item(l, it, id)) < 0)
		goto out;
	memcpy(row.id, id, HL_HASH_LEN);
	row.peer_id = l->peer_id;
	row.dir = HL_DIR_OUT;
	row.seq = it->seq;
	memcpy(row.name, name, name_len + 1);
	row.size = size;
	memcpy(row.doc_hash, doc_hash, HL_HASH_LEN);
	memcpy(row.msg_id, msg_id, HL_MSG_ID_LEN);
	row.proposed_at = now_ms;
	ret = hl_store_insert_agreement(l->st, &row);
out:
	free(it);
	return ret;
}

int hl_author_countersign(const struct hl_author_link *l, struct hl_agreement_row *ag,
			  int64_t now_ms)
{
	struct hl_item *it;
	uint8_t hash[HL_HASH_LEN];
	int ret;
	if (ag->dir != HL_DIR_IN)
		return HL_EINVAL;
	if (ag->sign_seq != 0)
		return HL_EEXIST;
	it = xcalloc(1, sizeof(*it));
	it->kind = HL_ITEM_COUNTERSIGN;
	it->time_ms = (uint64_t)now_ms;
	it->u.csig.proposal_seq = ag->seq;
	memcpy(it->u.csig.agreement_id, ag->id, HL_HASH_LEN);
	memcpy(it->u.csig.doc_hash, ag->doc_hash, HL_HASH_LEN);
	if ((ret = hl_author_item(l, it, hash)) == 0 &&
	    (ret = hl_store_set_agreement_signed(l->st, ag->id, it->seq, now_ms)) == 0) {
		ag->sign_seq = it->seq;
		ag->signed_at = now_ms;
	}
	free(it);
	return ret;
}
