/* deliver/author.h — authoring this station's own items other than
 * messages and receipts: line checks, answers, agreement proposals and
 * countersigns (docs/items.md section 2).  Each call signs the next item of
 * our chain on the link, stores it (unacknowledged, so the delivery engine
 * sends it), and records it in the store's checks or agreements table —
 * all inside the transaction the caller holds, so the item is durable
 * before it can be sent (docs/messages.md principle 2) and the two rows
 * never disagree.  The daemon calls these from its loop (scheduled checks,
 * the station's answers); the commands `answer` and `agree` call them
 * with the daemon running or not. */
#ifndef HL_DELIVER_AUTHOR_H
#define HL_DELIVER_AUTHOR_H

#include <stdbool.h>
#include <stdint.h>

#include "crypto/signer.h"
#include "msg/item.h"
#include "store/store.h"

/* At most this many of a peer's operator checks wait for a person at
 * once; a further one is answered by the station only and decided "no
 * person" at once (docs/items.md 2.4). */
#define HL_CHECKS_WAITING_MAX 8

/* The link an item is authored on: our identity and the peer's row. */
struct hl_author_link {
	hl_store *st;
	const hl_signer *me;
	int64_t peer_id;
	uint8_t peer_sign[32];
};

/* Fills IT's common fields (author, counterpart, the next seq and its
 * prev, time), signs it, stores it.  IT's kind and kind fields are the
 * caller's.  HASH gets the item's hash. */
int hl_author_item(const struct hl_author_link *l, struct hl_item *it,
		   uint8_t hash[static HL_HASH_LEN]);

/* A CHECK (random id) in MODE; LINK says whether a session was up; the
 * checks row (OUT, pending, deadline NOW + TIMEOUT_MS) goes in as well. */
int hl_author_check(const struct hl_author_link *l, enum hl_check_mode mode, bool link,
		    uint32_t timeout_ms, bool manual, int64_t now_ms, struct hl_check_row *out);

/* An ANSWER to the peer's check CHK (an IN row) by BY; CHK's row is
 * updated (station_at, person_at or no_person_at, and its result) and
 * written back. */
int hl_author_answer(const struct hl_author_link *l, struct hl_check_row *chk,
		     enum hl_answer_by by, int64_t now_ms);

/* An AGREEMENT over the document NAME (SIZE bytes, DOC_HASH) carried by
 * message MSG_ID; the agreements row (OUT) goes in too.  ID gets the
 * agreement's id, the item's hash. */
int hl_author_agreement(const struct hl_author_link *l, const char *name, uint64_t size,
			const uint8_t doc_hash[static HL_HASH_LEN],
			const uint8_t msg_id[static HL_MSG_ID_LEN], int64_t now_ms,
			uint8_t id[static HL_HASH_LEN]);

/* A COUNTERSIGN of the peer's agreement AG (an IN row), recorded in its
 * row.  HL_EEXIST when it is signed already. */
int hl_author_countersign(const struct hl_author_link *l, struct hl_agreement_row *ag,
			  int64_t now_ms);

#endif
