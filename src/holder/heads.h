/* holder/heads.h — the heads of our chains as the key holder signed them,
 * kept in a journal file in the station directory (docs/keyholder.md
 * section 5): for each chain (a peer's signing key), the last position
 * signed and the hash of the item signed there, and the items signed
 * lately with the notes their askers gave.
 *
 * hl_heads_append writes a request's records (the page cache has them:
 * the holder process may die, they stay); hl_heads_push hands them to the
 * disk (written out and waited for, without a flush of the disk's cache);
 * hl_heads_sync makes them durable (fdatasync).  The holder answers with
 * the signatures, then pushes at once, while its asker commits its own
 * store; the asker releases nothing signed before the journal is durable:
 * a SYNC answer says so, or its own store's fdatasync began after the push
 * ended (docs/keyholder.md section 5).  So whatever happens next (the asker dies
 * before its store commits, the machine loses power), no signature that
 * left the station is missing from the journal, and the holder never signs
 * another item at its position.
 * The items kept let an asker that lost them take them back (chain/ours.c)
 * instead of being stuck at a position it can no longer fill.
 *
 * Only its holder writes the journal: the key-holder process, or a command
 * that holds the station's keys in-process while no daemon runs; both hold
 * the lock file beside it (holder/client.h).  No SQL here: the holder
 * never opens the store. */
#ifndef HL_HOLDER_HEADS_H
#define HL_HOLDER_HEADS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HL_HEADS_FILE "keyholder.heads"        /* the current segment */
/* When the current segment passes this, it becomes HL_HEADS_FILE.old (the
 * one before goes) and a new one starts with the heads alone: the items of
 * the last one to two segments are kept (some 16,000 messages or more;
 * a transaction signs at most 2,000). */
#define HL_HEADS_SEGMENT_BYTES (8u << 20)

typedef struct hl_heads hl_heads;

struct hl_heads_rec {
	uint8_t peer[32];             /* the chain's counterpart */
	uint64_t seq;
	uint8_t hash[32];             /* of the item as signed */
	uint64_t time_ms;             /* when it was signed (wall clock) */
	const uint8_t *item;          /* the signed item; NULL in a head-only record */
	size_t item_len;
	const uint8_t *note;
	size_t note_len;
};

/* Opens the journal at PATH (and PATH.old; created, mode 0600, if absent),
 * replays it, cuts off a torn last record (one whose fdatasync never
 * returned, so whose signatures never left the station) and makes the rest
 * durable.  PATH NULL: a journal in memory only
 * (tests, fuzzing).  ERR gets one line. */
int hl_heads_open(const char *path, hl_heads **out, char *err, size_t errlen);
void hl_heads_free(hl_heads *h);

/* The head of the chain with PEER: true and SEQ, HASH when the holder has
 * signed on it. */
bool hl_heads_get(const hl_heads *h, const uint8_t peer[static 32], uint64_t *seq,
		  uint8_t hash[static 32]);

/* Records N signed items (items, not head-only), written but not yet
 * durable; the heads move to them.  The caller checked that they extend
 * their chains.  A write that fails is cut back: nothing recorded. */
int hl_heads_append(hl_heads *h, const struct hl_heads_rec *r, size_t n, uint64_t now_ms);
/* Makes every record appended so far durable (one fdatasync; nothing when
 * nothing was appended since the last).  A failure leaves them in doubt:
 * the caller gives out no signature after it. */
int hl_heads_sync(hl_heads *h);
/* Hands the appended records to the disk: written out and waited for
 * (sync_file_range), so that an fdatasync of any file of this filesystem
 * that begins after it makes them durable too, as it flushes the disk's
 * cache — they overwrite the zeros ahead, so no length or block of the
 * file is outstanding.  When one is (the zeros were renewed, or a write cut
 * back), an fdatasync instead (hl_heads_sync).  A failure leaves them in
 * doubt, as hl_heads_sync's. */
int hl_heads_push(hl_heads *h);
/* How many appends were made (*WRITTEN), how many of them are on the disk
 * (*PUSHED: before the last push or sync that succeeded) and how many are
 * known durable (*DURABLE: before the last hl_heads_sync that succeeded). */
void hl_heads_marks(const hl_heads *h, uint64_t *written, uint64_t *pushed, uint64_t *durable);

/* Calls FN for each item kept of the chain with PEER whose seq is above
 * AFTER, in order of seq, until FN returns non-zero (returned). */
int hl_heads_each(hl_heads *h, const uint8_t peer[static 32], uint64_t after,
		  int (*fn)(void *arg, const struct hl_heads_rec *r), void *arg);

/* Replays journal bytes (BUF, LEN) into H's heads; *GOOD gets the length
 * of the whole, well-formed records at their start (the rest is a torn
 * tail).  For hl_heads_open and fuzzing. */
int hl_heads_replay(hl_heads *h, const uint8_t *buf, size_t len, size_t *good);

#endif
