/* record/show.h — `record show`: a record as people read it.
 *
 * The two chains are merged by their items' times (each chain kept in its
 * own order; times are each station's clock, a claim).  Each entry gives
 * its time, who to whom (by the names on the record's cards), and its
 * kind's lines (record/kinds.h): for a message its precedence, subject or
 * "(withheld)", the receipt that acknowledged it, attachments and body.
 * Text from the record is sanitised (util/text.h) before it is printed.
 *
 * Show trusts nothing: it verifies the record against the cards inside it
 * and says so at the top, with the fingerprints a reader must compare
 * with the stations' own (only `record verify` with trusted cards proves
 * who made it). */
#ifndef HL_RECORD_SHOW_H
#define HL_RECORD_SHOW_H

#include <stdio.h>

#include "record/format.h"

/* Prints REC to OUT.  Returns 0 when the record verifies against its own
 * cards, else the verifier's negative code (the history is printed
 * anyway, under a warning). */
int hl_record_show(const struct hl_record *rec, FILE *out);

/* Test knob: answerable entries per window of the reference index
 * (show.c); tests make it small to reach several windows. */
extern size_t hl_record_show_window;

#endif
