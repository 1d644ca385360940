/* record/kinds.h — what the record knows about each kind of item: one table
 * row per kind, with the kind's cross-checks (for `record verify`) and its
 * lines for people (for `record show`).
 *
 * Every item is first verified generically by record/verify.c (decoded,
 * signed by its chain's author for its counterpart, at its position, linked
 * to the entry before it); then its row's `check` runs the kind-specific
 * checks.  A new kind of item (line checks, answers, agreements) is one
 * more row in kinds.c: the verifier and the display dispatch only through
 * hl_record_kind_find().  An item of a kind with no row fails verification,
 * naming the entry, so an older verifier never passes what it cannot
 * check. */
#ifndef HL_RECORD_KINDS_H
#define HL_RECORD_KINDS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "chain/accept.h"
#include "msg/item.h"
#include "record/format.h"

/* Running state of one chain during verification, for checks that
 * compare an item with the earlier ones of its chain.  Kinds add fields. */
struct hl_record_chain_state {
	/* messages: the chain's last message of each precedence */
	struct hl_chain_class_ref last_msg[HL_PREC_COUNT];
	/* receipts, checks, answers: the last that recorded the other head */
	struct hl_chain_head_ref last_head;
	/* receipts: the other chain's positions acknowledged so far, one bit
	 * each (the verifier allocates it, n[other] bits) */
	uint8_t *acked;
};

/* What a kind's check sees.  WHY receives the reason when it fails. */
struct hl_record_check {
	const struct hl_record *rec;
	unsigned chain;                      /* the item's chain */
	uint64_t seq;                        /* its position (= its seq) */
	const struct hl_record_entry *entry;
	const struct hl_item *it;            /* decoded, signature verified */
	struct hl_record_chain_state *state; /* of the item's chain */
	struct hl_item *scratch;             /* for decoding another entry */
	const char *name[2];                 /* station names by chain, for WHY */
	char *why;
	size_t whylen;
};

/* A check's result.  SELF: the item contradicts itself, its own chain or
 * what was disclosed with it.  CROSS: a reference into the other chain does
 * not hold (the item may be fine and the other chain altered; the verifier
 * reports a SELF failure first if there is one anywhere). */
enum { HL_RECORD_CHECK_OK = 0, HL_RECORD_BAD_SELF = 1, HL_RECORD_BAD_CROSS = 2 };

/* For `record show`: the chains' station names, what the other chain
 * says about each position (filled by the kinds' index functions), and
 * where to print. */
struct hl_record_show {
	const struct hl_record *rec;
	const char *name[2];                 /* sanitised station names, by chain */
	/* [chain][seq-1]: the seq of the other chain's item that answers this
	 * one, 0 none.  FIRST: the receipt of a message, the station's answer to
	 * a check, the countersign of an agreement; SECOND: the person's (or
	 * no person's) answer to an operator check. */
	uint64_t *first_ref[2];
	uint64_t *second_ref[2];
	uint64_t *time[2];                   /* [chain][seq-1]: the item's time, 0 none */
	struct hl_item *scratch;             /* for a kind that decodes another item */
	FILE *out;
};

struct hl_record_kind {
	enum hl_item_kind kind;
	const char *name;                    /* "message", "receipt" */
	bool has_content;                    /* may carry disclosed content and attachments */
	int (*check)(struct hl_record_check *c);
	/* Show: note what this item says about the other chain (receipts:
	 * which items they acknowledge), before anything is printed. */
	void (*index)(struct hl_record_show *s, unsigned chain, uint64_t seq,
		      const struct hl_item *it);
	/* Show: the item's lines, after the common prefix (time, direction). */
	void (*show)(struct hl_record_show *s, unsigned chain, uint64_t seq,
		     const struct hl_record_entry *e, const struct hl_item *it);
};

/* Entry SEQ of chain CHAIN as the chain rules (chain/accept.h) see it:
 * held unless the record marks it ABSENT or has no such entry (SCRATCH
 * decodes the item for its kind and prev). */
void hl_record_chain_ref(const struct hl_record *rec, unsigned chain, uint64_t seq,
			 struct hl_item *scratch, struct hl_chain_ref *ref);
/* W for a rule about an item of OWN_STATION's chain: its texts name both
 * stations ("pyongyang's entry 2"). */
void hl_record_why_init(struct hl_chain_why *w, const char *own_station,
			const char *other_station);

/* The row for KIND, or NULL when the record does not know it. */
const struct hl_record_kind *hl_record_kind_find(enum hl_item_kind kind);

#endif
