/* holder/serve.h — what the key holder does with a request: the one
 * place that decides what gets signed with the station's keys
 * (docs/keyholder.md section 4).  Used by the key-holder process for every
 * asker and, in-process, by a command while no daemon runs, so both follow
 * the same rules over the same journal of heads.
 *
 * The rules, for a run of items to sign (HL_HOLD_SIGN):
 *   1. Each item decodes as an item (msg/item.h), carries an all-zero
 *      signature, is authored by this station, and re-encodes to exactly
 *      the bytes asked (one encoding per item): the holder signs only what
 *      it encodes itself.
 *   2. The run is consecutive positions of one chain (one counterpart);
 *      every item after the first has an all-zero prev, which the holder
 *      fills with the hash of the item it just signed.
 *   3. Against the chain's head (seq H, hash X) in the journal: a run that
 *      starts at H+1 must have X as its prev; one that starts at or below H
 *      must reach H and give, at H, exactly the item signed there (the same
 *      bytes are signed again: the same signature, no second item); a run
 *      that starts past H+1 is signed (those positions were never signed
 *      here) and the gap logged.  Anything else is refused, logged, and
 *      answered HL_HOLD_R_SIGNED with the head, for the asker's alarm.
 *   4. The new positions are written to the journal before the answer,
 *      and handed to the disk right after it (hl_holder_push), while the
 *      asker commits its store; SYNC is answered once they are durable
 *      (hl_holder_settle), and the asker releases nothing signed before
 *      that answer, or before its own fdatasync, begun after the push
 *      ended, has returned.  A journal that cannot be made durable stops
 *      all signing (FAILED).
 *   5. An item authored by a key the holder does not hold (after a key
 *      rotation, our name on a link pinned before it is the card's key)
 *      only continues a chain the holder has signed (rule 3's H+1 or the
 *      same items again).  A rotation item (docs/rotation.md) announces
 *      exactly the keys the holder holds now — the ones the station
 *      committed to before it rotated — and the next-key hash it holds;
 *      the holder makes its new_sig with the new key and signs it with
 *      the previous one.  Anything else is refused (HL_HOLD_R_ROTATION).
 * The station's keys rotate only on HL_HOLD_ROTATE from the daemon, or
 * in-process from a command while no daemon runs.
 * The holder has no request that signs other bytes; the record seal signs
 * its own structure (context, NUL, the record's hash). */
#ifndef HL_HOLDER_SERVE_H
#define HL_HOLDER_SERVE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "crypto/signer.h"
#include "holder/heads.h"

struct hl_holder;

/* A holder over KEYS (the real keys, loaded from identity.key) and HEADS,
 * both taken. */
struct hl_holder *hl_holder_new(hl_signer *keys, hl_heads *heads);
void hl_holder_free(struct hl_holder *h);
/* The identity file KEYS came from, which a rotation replaces (NULL: none;
 * the keys rotate in memory, from next keys they kept: tests). */
void hl_holder_set_identity(struct hl_holder *h, const char *path);

/* Answers the request body (REQ, LEN) from WHO (for the log: "the
 * daemon", "pid 4242") with a new answer body in *RESP (*RESP_LEN bytes).
 * MAY_ROTATE: WHO is the daemon, or the command holding the keys
 * in-process, which alone may rotate them.
 * Bad requests get an answer that says so; the holder carries on. */
void hl_holder_answer(struct hl_holder *h, const uint8_t *req, size_t len, const char *who,
		      bool may_rotate, uint8_t **resp, size_t *resp_len);

/* The journal records it wrote made durable (one fdatasync, none when it
 * wrote none): a SYNC, or an in-process holder after each answer.  A
 * failure is kept: every later SIGN, ROTATE and SYNC is answered FAILED. */
int hl_holder_settle(struct hl_holder *h);
/* After each answer has gone out, in the holder process: the records
 * handed to the disk (hl_heads_push), for its starter's own fdatasync to
 * make durable; a failure is kept as hl_holder_settle's. */
int hl_holder_push(struct hl_holder *h);

/* The journal's appends (*WRITTEN), how many of them are on the disk
 * (*PUSHED) and how many are durable (*DURABLE); the last two stop moving
 * once a settle or push failed.  The process publishes them to its starter
 * (holder/proc.h, struct hl_holder_marks). */
void hl_holder_journal_marks(const struct hl_holder *h, uint64_t *written, uint64_t *pushed,
			     uint64_t *durable);

/* Requests refused since the holder started (a network process that asked
 * for what it must not have). */
uint64_t hl_holder_refusals(const struct hl_holder *h);

/* The seal's context: record/format.h's HL_RECORD_SEAL_CTX, which the
 * holder cannot include (it is a lower layer). */
#define HL_HOLD_SEAL_CTX "hotline/1 record seal"

#endif
