/* chain/ours.h — our chain with a peer: the one path by which an item of
 * this station is given its place (seq, prev), its time, its signature
 * and its row in the store.
 *
 * Every item we author goes through here: messages (chain/queue.c),
 * receipts (the delivery engine's precommit), checks, answers, agreements
 * and countersigns (deliver/author.c), call items (daemon/calls.c via
 * author.c).  Nobody else reads our head to compute a position, so no two
 * writers can disagree about it, and the signer behind this (in-process,
 * or the key holder, docs/keyholder.md) sees every item of ours in order.
 *
 * An appender (struct hl_ours) lives inside one store transaction that the
 * caller holds: it reads our head once, gives each added item the next
 * position, and signs what was added when flushed, in order, then stores
 * the rows.  A transaction holds the store's write lock, so nobody else
 * extends the chain meanwhile.  Adding several items and flushing once is
 * how `send --lines` signs a whole transaction's messages in one request.
 *
 * Items' borrowed fields (attachment names, an agreement's name) must live
 * until the flush.  The caller's rows that refer to the item (a message
 * row, a check row) go in from its STORED callback, after the item's row:
 * the store's foreign keys want that order. */
#ifndef HL_CHAIN_OURS_H
#define HL_CHAIN_OURS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "crypto/signer.h"
#include "msg/item.h"
#include "store/store.h"

/* Called once the item IT (complete: position, signature) has its row;
 * HASH is its hash.  A negative return stops the flush with that error. */
typedef int (*hl_ours_stored_fn)(void *arg, const struct hl_item *it,
				 const uint8_t hash[static HL_HASH_LEN]);

struct hl_ours_entry;

struct hl_ours {
	hl_store *st;
	const hl_signer *me;
	int64_t peer_id;
	uint8_t peer_sign[32];
	bool have_head;
	struct hl_chain_head head;    /* the last position given (signed or not) */
	struct hl_chain_head signed_head; /* the last item signed and stored */
	bool have_author;
	uint8_t author[32];           /* our name on the link (chain/ours.c, author_of) */
	struct hl_ours_entry *q;      /* added, not yet flushed */
	size_t n, cap;
	bool store_failed;            /* the last call failed in the store (its
	                               * errmsg says why), not in signing */
	char why[300];                /* a refusal of the key holder, else "" */
};

/* An appender for our chain with the peer PEER_ID (signing key PEER_SIGN),
 * signing with ME.  Nothing is read until the first add. */
void hl_ours_init(struct hl_ours *o, hl_store *st, const hl_signer *me, int64_t peer_id,
		  const uint8_t peer_sign[static 32]);
/* Reads our head (once per appender): the store's, after taking back what
 * the key holder signed beyond it (chain/adopt.h).  HL_ESTATE (with the
 * store's message) when the store must sign nothing new for this peer (a
 * restore's resync, store.h).  hl_ours_add calls it; a caller that reads
 * rows that taking back may write (the next class_seq) calls it first. */
int hl_ours_begin(struct hl_ours *o);
/* Gives IT the next position: author, counterpart, seq, time (when 0: now);
 * its prev and signature come at the flush.  IT's kind and kind fields
 * are the caller's; IT itself must live until the flush, which completes
 * it.  PRECEDENCE is the row's (a message's, else FLASH).  STORED (may be
 * NULL) is called at the flush.  HL_ESTATE when the store must sign
 * nothing new for this peer (a restore's resync, store.h). */
int hl_ours_add(struct hl_ours *o, struct hl_item *it, unsigned precedence,
		hl_ours_stored_fn stored, void *arg);
/* hl_ours_add with a NOTE (NOTE_LEN bytes, living until the flush) that
 * the key holder keeps beside the signed item, for taking it back
 * (chain/adopt.h: a message's text). */
int hl_ours_add_noted(struct hl_ours *o, struct hl_item *it, unsigned precedence,
		      const uint8_t *note, size_t note_len, hl_ours_stored_fn stored, void *arg);
/* Signs every item added since the last flush, in order, and stores each
 * row then calls its STORED.  On failure the caller rolls its transaction
 * back and drops the appender. */
int hl_ours_flush(struct hl_ours *o);
/* Forgets what was added and not flushed. */
void hl_ours_drop(struct hl_ours *o);

/* The common case: one item, added and flushed.  HASH (may be NULL) gets
 * its hash. */
int hl_ours_append(hl_store *st, const hl_signer *me, int64_t peer_id,
		   const uint8_t peer_sign[static 32], struct hl_item *it, unsigned precedence,
		   uint8_t hash[HL_HASH_LEN]);

#endif
