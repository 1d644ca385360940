/* chain/adopt.h — items of ours that the key holder signed but the store
 * does not hold, taken back before our chain is extended
 * (docs/keyholder.md section 6).
 *
 * The holder records a position before it answers with its signature; the
 * asker stores the item in its transaction afterwards.  Should the asker
 * die, or its transaction roll back, between the two, the holder holds a
 * position the store lacks, and will never sign another item there.  So
 * before chain/ours.c gives out a position, it asks the holder for its head
 * and takes back, as they were signed, the items the holder kept after the
 * store's head: their rows are rebuilt from each item and the note its
 * asker gave (a message's salt, subject and body), and they go out like
 * any unsent item.  Nothing is signed twice, and no position stays unused.
 *
 * What a taken-back item cannot bring back is said in the log: the rows
 * other than the message's and the item's own (a check's row, an
 * agreement's, a countersign's mark) were in the transaction that was
 * lost; a receipt's acknowledgements stand (the peer sends those items
 * again and they get no second receipt, as after a restore). */
#ifndef HL_CHAIN_ADOPT_H
#define HL_CHAIN_ADOPT_H

#include <stddef.h>
#include <stdint.h>

#include "holder/client.h"
#include "store/store.h"

/* Takes back what the holder K kept of our chain with PEER_ID (signing
 * key PEER_SIGN) after *HEAD, which moves to the last item taken.  The
 * caller holds the store's transaction.  HL_ESTATE when the holder has
 * signed further than it still keeps (the log says so). */
int hl_adopt_pending(hl_store *st, hl_keys *k, int64_t peer_id,
		     const uint8_t peer_sign[static 32], struct hl_chain_head *head);

/* The attachment rows of our message M as its item names them, its copies
 * where queueing put them (out/<id>/<index>): xmalloc'd, M's count of them
 * (at least one slot). */
struct hl_att_row *hl_adopt_att_rows(const struct hl_item_message *m);

/* A message's note (salt, subject, body) for the holder's journal, and
 * back.  The note is xmalloc'd; the parts it gives back borrow from it. */
void hl_adopt_message_note(const uint8_t salt[static HL_SALT_LEN], const char *subject,
			   const uint8_t *body, size_t body_len, uint8_t **note, size_t *len);
int hl_adopt_message_note_parse(const uint8_t *note, size_t len, uint8_t salt[static HL_SALT_LEN],
				const uint8_t **subject, size_t *subject_len, const uint8_t **body,
				size_t *body_len);

#endif
