/* msg/retain.h — retention: purging the contents of old messages while the
 * signed record of them stays (docs/retention.md).
 *
 * A purge drops a message's body and subject and removes its attachment
 * files; its row (id, sizes, states, attachment names and hashes) and its
 * signed item stay, so the chains, `record export` and `record verify` are
 * unchanged, a message is never taken twice, and the record says which
 * messages were purged and when.  What an incoming message held is freed
 * from the peer's quota.  Only messages that are done are purged (ours
 * delivered or refused, the peer's complete or refused), by their age at
 * this station; nothing still to send or still arriving is touched.
 *
 * Order, for crashes: the store commit (contents dropped, files queued in
 * the store's unlink queue) comes first, the unlinks after; a crash between
 * leaves queued names that the next purge removes, never a message whose
 * file vanished while its row still promised it.  A backup holds
 * HL_FILES_LOCK (shared) while it copies files; the unlinks take it
 * exclusively without waiting, and leave the files queued when a backup
 * runs.  The daemon applies `Retain` on its own (daemon/retain.c);
 * `hotline purge` does the same, or purges up to a date. */
#ifndef HL_MSG_RETAIN_H
#define HL_MSG_RETAIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "conf/config.h"
#include "store/store.h"

#define HL_FILES_LOCK "files.lock"

struct hl_retain_result {
	uint64_t messages;            /* messages whose contents were purged */
	uint64_t bytes;               /* their body and attachment bytes */
	uint64_t files;               /* attachment files removed */
	uint64_t files_left;          /* still queued (a backup was copying files) */
	uint64_t mails;               /* Maildir files removed (cur/ and the quarantine) */
	bool more;                    /* MAX_BATCHES ran out: call again */
};

/* Purges the messages of PEER_ID (every peer when 0) done before BEFORE_MS,
 * at most MAX_BATCHES transactions of HL_PURGE_BATCH_MAX, then removes the
 * queued files.  DRY_RUN: counts what would be purged, changes nothing.
 * R accumulates (zero it first).  0, or a negative code with ERR. */
int hl_retain_purge(const char *dir, hl_store *st, int64_t peer_id, int64_t before_ms,
		    int64_t now_ms, size_t max_batches, bool dry_run,
		    struct hl_retain_result *r, char *err, size_t errlen);

/* What `Retain` asks for at NOW_MS: every peer the store knows by its own
 * Retain, else the station's (removed peers: the station's), then the
 * Maildir's cur/ and quarantine by the station's Retain.  R accumulates.
 * DRY_RUN: counts the messages, changes nothing (and leaves mail alone). */
int hl_retain_apply(const char *dir, hl_store *st, const hl_station_conf *conf, int64_t now_ms,
		    size_t max_batches, bool dry_run, struct hl_retain_result *r, char *err,
		    size_t errlen);

/* Removes the files the store queued, unless a backup holds HL_FILES_LOCK
 * (then they stay queued: R->files_left). */
int hl_retain_unlink(const char *dir, hl_store *st, struct hl_retain_result *r, char *err,
		     size_t errlen);

#endif
