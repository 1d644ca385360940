/* chain/accept.h — the rules an item must satisfy, given what its reader
 * already holds of the two chains of a link (docs/items.md section 3).
 *
 * One home for the chain rules, so that the station that receives an item
 * (deliver/recv.c, on every path: link, bundle, mail) and the third
 * party that verifies a record (record/verify.c, record/kinds.c) apply the
 * very same ones and cannot drift apart.  Each rule is a pure function
 * over a decoded item (msg/item.h) and the few neighbouring entries its
 * caller looked up: the engine asks its store, the verifier indexes the
 * record.  No I/O, no SQL, no allocation.
 *
 * "The item's chain" is the chain of its author on the link; "the other
 * chain" is its counterpart's.  A reader holds an entry of a chain as an
 * item (the signed bytes, and so their hash and kind) or as a tombstone
 * (only a hash: an item it refused), or does not hold it.
 *
 * Verdicts:
 *   OK      the item may be stored at its position.
 *   LATER   not now (the receiver's bound, not a fault of the item): store
 *           nothing, refuse for now; the author offers it again later.
 *   REFUSE  the item breaks a rule: refused whole (a tombstone).
 *   FORK    the item, signed by its author, contradicts another item the
 *           same author signed: proof of equivocation.  Kept as evidence,
 *           never stored in the chain; its position stays open.
 * A record verifier treats anything but OK as a failure of the record. */
#ifndef HL_CHAIN_ACCEPT_H
#define HL_CHAIN_ACCEPT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "msg/item.h"

/* A receiver stores an item of the peer's chain only at most this many
 * positions past the contiguous head it holds (docs/messages.md section
 * 4); farther items are refused for now.  So positions not held, which a
 * record exports as ABSENT, number fewer than this (the record allows
 * 2^20). */
#define HL_CHAIN_WINDOW (UINT64_C(1) << 16)

enum hl_chain_verdict {
	HL_CHAIN_OK = 0,
	HL_CHAIN_LATER = 1,
	HL_CHAIN_REFUSE = 2,
	HL_CHAIN_FORK = 3,
};

/* Why a rule failed: one line for logs, REFUSE texts and `record verify`.
 * CROSS: the fault is in a reference into the other chain (a verifier
 * reports it only when no item fails by itself). */
struct hl_chain_why {
	char text[200];
	bool cross;
	/* Set by the caller before a call, or empty: how the texts name the
	 * item's own chain and the other one ("pyongyang's"); by default
	 * "its chain's" and "the other chain's". */
	char own[40], other[40];
	/* FORK (hl_chain_links, hl_chain_proves_fork): the position of the
	 * held item this one contradicts, its own or the neighbour whose link
	 * it breaks: the other half of the evidence. */
	uint64_t against;
};

/* Empties W and names the chains in its texts, as possessives ("our",
 * "pyongyang's"; NULL: the defaults).  Every rule's W starts here. */
void hl_chain_why_init(struct hl_chain_why *w, const char *own, const char *other);

/* One entry of a chain as its reader holds it. */
struct hl_chain_ref {
	bool held;                    /* an item or a tombstone is there */
	bool item;                    /* an item (else a tombstone) */
	enum hl_item_kind kind;       /* items only */
	uint8_t hash[HL_HASH_LEN];    /* the item's hash, or the tombstone's */
	uint8_t prev[HL_HASH_LEN];    /* items only: its prev */
};

/* ---- position ---- */

/* SEQ against the contiguous head CONTIG of its chain: LATER beyond the
 * window. */
int hl_chain_window(uint64_t seq, uint64_t contig, struct hl_chain_why *w);

/* ---- links ---- */

/* The item IT (hash HASH) against the entries of its own chain at seq - 1
 * (BEFORE) and seq + 1 (AFTER; NULL when not looked at).  Its prev must be
 * BEFORE's hash, and its hash AFTER's prev.  When the entry that does not
 * match is a signed item, the two items prove a fork (FORK); over a
 * tombstone the link proves nothing (REFUSE). */
int hl_chain_links(const struct hl_item *it, const uint8_t hash[static HL_HASH_LEN],
		   const struct hl_chain_ref *before, const struct hl_chain_ref *after,
		   struct hl_chain_why *w);

/* Whether ITEM (decoded as IT, hash HASH), signed by the author of a chain,
 * proves that author equivocated against what the reader holds at its
 * position (AT), before it (BEFORE) and after it (AFTER): it is not the
 * item held at its position, or it does not link with a held neighbour
 * item.  A tombstone's hash proves nothing by itself: AT counts only when
 * it is an item, or a tombstone confirmed by the link of the item after
 * it.  Returns true with the reason in W. */
bool hl_chain_proves_fork(const struct hl_item *it, const uint8_t hash[static HL_HASH_LEN],
			  const struct hl_chain_ref *at, const struct hl_chain_ref *before,
			  const struct hl_chain_ref *after, struct hl_chain_why *w);

/* ---- messages ---- */

/* A message of the same author and precedence that the reader holds: its
 * position and class_seq. */
struct hl_chain_class_ref {
	bool held;
	uint64_t seq;
	uint64_t class_seq;
};

/* class_seq numbers the messages of one precedence in chain order, gaps
 * allowed: the message M at SEQ must come after BELOW (a held message of
 * its precedence that comes before it: lower seq and lower class_seq) and
 * before ABOVE (one that comes after it), so that seq order and class_seq
 * order agree.  The engine passes the held messages whose class_seq is
 * nearest below and at-or-above M's; a verifier reading in order passes
 * the chain's previous message of that precedence. */
int hl_chain_class(const struct hl_item_message *m, uint64_t seq,
		   const struct hl_chain_class_ref *below, const struct hl_chain_class_ref *above,
		   struct hl_chain_why *w);

/* ---- the other chain's head (receipts, checks, answers) ---- */

/* A held item of the same chain that records the other chain's head. */
struct hl_chain_head_ref {
	bool held;
	uint64_t seq;
	uint64_t peer_seq;
};

/* PEER_SEQ/PEER_HASH of an item at SEQ: the other chain's contiguous head
 * as the author held it.  It never decreases along the chain (BELOW and
 * ABOVE: the nearest held items that record it, before and after), and
 * unless it is 0, the other chain holds an entry there (TARGET) with that
 * hash. */
int hl_chain_head(uint64_t seq, uint64_t peer_seq, const uint8_t peer_hash[static HL_HASH_LEN],
		  const struct hl_chain_head_ref *below, const struct hl_chain_head_ref *above,
		  const struct hl_chain_ref *target, struct hl_chain_why *w);

/* The peer_seq and peer_hash that IT records, or false for a kind that
 * records none. */
bool hl_chain_item_head(const struct hl_item *it, uint64_t *peer_seq, const uint8_t **peer_hash);

/* ---- receipts ---- */

/* What a receipt's reader looks up in the other chain. */
struct hl_chain_lookup {
	void *arg;
	/* The other chain's entry at SEQ into REF (REF->held false when it is
	 * not held).  0, or a negative code. */
	int (*other)(void *arg, uint64_t seq, struct hl_chain_ref *ref);
	/* Whether an earlier receipt of this chain acknowledged the other
	 * chain's message at SEQ.  0, or a negative code. */
	int (*acked)(void *arg, uint64_t seq, bool *yes);
};

/* A receipt acknowledges messages only, each by its seq and hash, each
 * once: not twice in one receipt, nor one an earlier receipt of its chain
 * acknowledged.  Returns a verdict, or a negative code from a lookup. */
int hl_chain_receipt(const struct hl_item_receipt *r, const struct hl_chain_lookup *look,
		     struct hl_chain_why *w);

/* ---- keys (rule 5, docs/rotation.md) ---- */

/* A chain's keys at a position: those of the card its reader pinned, then
 * of each rotation the chain accepted. */
struct hl_chain_keys {
	uint8_t noise[32];
	uint8_t sign[32];
	bool has_next;                /* a commitment to next keys (none: cannot rotate) */
	uint8_t next_hash[32];
};

/* At most this many rotations in one chain: a receiver refuses more, and
 * so does `record verify` (which keeps each one's position). */
#define HL_CHAIN_MAX_ROTATIONS 4096

/* The keys a card gives: NOISE, SIGN and NEXT_HASH (NULL: none). */
void hl_chain_keys_init(struct hl_chain_keys *k, const uint8_t noise[static 32],
			const uint8_t sign[static 32], const uint8_t *next_hash);
/* The keys the rotation IT moves its chain to. */
void hl_chain_keys_after(const struct hl_item *it, struct hl_chain_keys *k);

/* The rotation IT (decoded, its signature by CUR's SigningKey and its
 * new_sig verified), against its chain's keys CUR and THEIRS, the card of
 * the other station (NULL: not looked at): REFUSE when its keys do not
 * hash to CUR's next-key hash (or CUR has none), when they are CUR's own,
 * or THEIRS'. */
int hl_chain_rotation(const struct hl_item *it, const struct hl_chain_keys *cur,
		      const struct hl_chain_keys *theirs, struct hl_chain_why *w);

/* Where a receiver may take a rotation at SEQ of a chain whose contiguous
 * head is CONTIG, whose highest held position is TOP, and which has
 * accepted ROTATIONS rotations: right after the contiguous head (else
 * LATER: a position before it may hold another rotation), never with items
 * held after it (REFUSE: they were signed with the old keys past the
 * rotation), and not past HL_CHAIN_MAX_ROTATIONS (REFUSE). */
int hl_chain_rotation_place(uint64_t seq, uint64_t contig, uint64_t top, uint64_t rotations,
			    struct hl_chain_why *w);

#endif
