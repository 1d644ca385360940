/* record/kinds.h — what the record knows about each kind of item: one table
 * row per kind, with the kind's cross-checks (for `record verify`) and its
 * lines for people (for `record show`).
 *
 * Every item is first verified generically by record/verify.c (decoded,
 * signed by its chain's author for its counterpart, at its position, linked
 * to the entry before it); then its row's `verify` runs the kind-specific
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

/* What a kind's verification sees.  WHY receives the reason when it fails. */
struct hl_record_verify_ctx {
	const struct hl_record *rec;
	unsigned chain;                      /* the item's chain */
	uint64_t seq;                        /* its position (= its seq) */
	const struct hl_record_entry *entry;
	const struct hl_record_content *content;  /* disclosed with it, or NULL */
	hl_record_cursor *atts;              /* its attachments: hl_record_att_for() */
	const struct hl_item *it;            /* decoded, signature verified */
	struct hl_record_chain_state *state; /* of the item's chain */
	struct hl_item *scratch;             /* for decoding another entry */
	const char *name[2];                 /* station names by chain, for WHY */
	char *why;
	size_t whylen;
};

/* A verification's result.  SELF: the item contradicts itself, its own chain or
 * what was disclosed with it.  CROSS: a reference into the other chain does
 * not hold (the item may be fine and the other chain altered; the verifier
 * reports a SELF failure first if there is one anywhere). */
enum { HL_RECORD_VERIFIED = 0, HL_RECORD_BAD_SELF = 1, HL_RECORD_BAD_CROSS = 2 };

/* For `record show`: the chains' station names, what the other chain
 * says about the positions being shown (show.c keeps it for a window of
 * positions at a time; the kinds' index functions fill it through
 * hl_record_show_ref_set), the entry being shown, and where to print. */
struct hl_record_ref {
	uint64_t seq[2], time[2];            /* [0]: first, [1]: second; seq 0: none */
};

/* The references into the answerable entries at positions [lo, hi) of
 * one chain: their positions in increasing order, and what was found
 * (show.c fills POS and clears V window by window). */
struct hl_record_refs {
	uint64_t lo, hi;
	uint64_t *pos;                       /* CAP */
	struct hl_record_ref *v;             /* CAP */
	size_t n, cap;
	hl_record_cursor *ahead;             /* finds the next window's entries */
	uint64_t ahead_seq;                  /* entries it has read */
};

struct hl_record_show {
	const struct hl_record *rec;
	const char *name[2];                 /* sanitised station names, by chain */
	struct hl_record_refs *refs[2];      /* show.c */
	const struct hl_record_content *content;  /* the entry being shown: its content or NULL */
	uint64_t att_included;               /* ... and the attachments included, as bits */
	const struct hl_record_purged *purged;    /* ... or its purge (version 2), or NULL */
	struct hl_item *scratch;             /* for a kind that decodes another item */
	uint8_t *itembuf;                    /* HL_ITEM_MAX, for that item's bytes */
	FILE *out;
};

/* What the other chain's item REF (of time TIME) says about position SEQ
 * of chain C: FIRST is the receipt of a message, the station's answer to a
 * check, the countersign of an agreement; the other (SECOND) a person's or
 * no person's answer to an operator check.  The first one set stays.
 * _wants says whether SEQ is in the positions being indexed. */
bool hl_record_show_wants(const struct hl_record_show *s, unsigned c, uint64_t seq);
void hl_record_show_ref_set(struct hl_record_show *s, unsigned c, uint64_t seq, bool first,
			    uint64_t ref, uint64_t time);
/* 0 when none; else the REF (and *TIME). */
uint64_t hl_record_show_ref(const struct hl_record_show *s, unsigned c, uint64_t seq, bool first,
			    uint64_t *time);

struct hl_record_kind {
	enum hl_item_kind kind;
	const char *name;                    /* "message", "receipt" */
	bool has_content;                    /* may carry disclosed content and attachments */
	bool referenced;                     /* the other chain may answer it (show's index) */
	int (*verify)(struct hl_record_verify_ctx *c);
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
 * decodes the item for its kind and prev).  Reads the file: 0, or a
 * negative code when it cannot be read. */
int hl_record_chain_ref(const struct hl_record *rec, unsigned chain, uint64_t seq,
			struct hl_item *scratch, struct hl_chain_ref *ref);
/* W for a rule about an item of OWN_STATION's chain: its texts name both
 * stations ("pyongyang's entry 2"). */
void hl_record_why_init(struct hl_chain_why *w, const char *own_station,
			const char *other_station);

/* The row for KIND, or NULL when the record does not know it. */
const struct hl_record_kind *hl_record_kind_find(enum hl_item_kind kind);

#endif
