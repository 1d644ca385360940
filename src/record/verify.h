/* record/verify.h — what `record verify` concludes from a parsed record and
 * two cards (docs/record.md, section 5).
 *
 * The cards given are the only trust: the record's embedded cards must
 * carry exactly their keys (in either order), and every signature is
 * checked against the given keys.  Then, in one pass over both chains in
 * file order, each item is decoded and verified (its author is its chain's
 * station, its counterpart the other one, its signature holds, its seq is
 * its position, its prev is the hash of the entry before it), and its
 * kind's checks run (record/kinds.h).  Then the evidence of equivocation,
 * then the seal over every byte before it.
 *
 * Each chain is read once, in order, through a cursor: each item is hashed
 * and its signature checked once, its content and attachments come from
 * cursors that move with it; a reference into the other chain is a
 * look-up by position (record/reader.h: a fixed-size index and cache, so
 * the memory used does not grow with the file).  The signatures are
 * checked a batch of entries ahead of the rules, on every core, and each
 * verdict is taken in order: the report is the one a single thread gives. */
#ifndef HL_RECORD_VERIFY_H
#define HL_RECORD_VERIFY_H

#include <stddef.h>
#include <stdint.h>

#include "conf/config.h"
#include "record/format.h"

struct hl_record_verdict {
	char why[640];                 /* the first failure, naming its entry */
	unsigned exporter;             /* which card given exported it: 0 (A) or 1 (B) */
	size_t items[2];               /* by chain: items verified */
	size_t refused[2];             /* positions refused by the exporter (not checkable) */
	size_t absent[2];              /* positions the exporter did not hold */
	size_t disclosed;              /* messages whose contents are in the record */
	size_t withheld;               /* messages proven by their salted hashes only */
	size_t purged;                 /* of those, purged by the exporter (version 2) */
	size_t attachments;            /* attachments included (hash-checked) */
	size_t equivocations;          /* proven */
};

/* Entries read ahead per batch (at most HL_RECORD_VERIFY_BATCH, at least
 * 1): a test knob, so that small records cross batch boundaries
 * (tests/unit/test_record_reader.c); hotline itself never changes it. */
#define HL_RECORD_VERIFY_BATCH 4096u
extern uint32_t hl_record_verify_batch;

/* Notes for people about what holds but cannot be checked (refused and
 * missing positions) and about equivocation proven; one line each. */
typedef void (*hl_record_note_fn)(void *arg, const char *line);

/* 0 when everything holds; otherwise a negative code (HL_EPEER: the cards
 * do not match; HL_EAUTH: a signature, link, hash or reference fails;
 * HL_EUNSUPP: an item of a kind this hotline does not know) with V->why.
 * NOTE may be NULL. */
int hl_record_verify(const struct hl_record *rec, const hl_card *a, const hl_card *b,
		     hl_record_note_fn note, void *arg, struct hl_record_verdict *v);

#endif
