/* holder/client.h — the station's keys as the rest of hotline reaches
 * them (docs/keyholder.md section 3): a handle (hl_keys) on a key-holder
 * process, over a socket; the holder's code run in this process
 * (hl_keys_in_memory) is for tests and benchmarks alone.
 *
 * Who holds what.  While the daemon runs, the key-holder process that
 * `hotline run` started is the only one that reads identity.key; the
 * daemon, the mail pickup and every command reach it over a Unix socket
 * in the station directory (the daemon over a socketpair of its own).
 * Without a daemon, a command starts a key holder of its own — the same
 * process code (holder/proc.h), over the same journal, under the journal's
 * lock file (HL_HOLDER_LOCK) — and talks to it over a socketpair as the
 * daemon does, so that no command process ever reads identity.key (the
 * commands that parse what comes from outside then enter a sandbox) and
 * the rule "never two items at one position" holds either way.
 *
 * The rest of the code keeps its hl_signer: hl_keys_signer() gives one
 * whose DH and record seal go to the holder and which refuses to sign
 * anything else; items of ours are signed through hl_keys_sign_run, which
 * chain/ours.c alone calls. */
#ifndef HL_HOLDER_CLIENT_H
#define HL_HOLDER_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "crypto/signer.h"
#include "holder/proto.h"
#include "msg/item.h"

#define HL_HOLDER_SOCKET "keyholder.sock"
#define HL_HOLDER_LOCK "keyholder.lock"
#define HL_KEYS_ERR_LEN 300

typedef struct hl_keys hl_keys;

enum hl_keys_need {
	HL_KEYS_PUBLIC,   /* the public keys only (card, status) */
	HL_KEYS_SIGN,     /* signing, DH, seals */
};

/* A command's keys for station DIR: the daemon's key holder if one
 * listens, else a holder of the command's own (hl_holder_spawn_own; it
 * waits, up to a minute, for another command's holder to finish).  The
 * handle ends it (hl_keys_free).  Call it before a sandbox and before any
 * thread starts: it forks.
 * HL_KEYS_PUBLIC: the handle asks for nothing but the public keys.  ERR
 * gets one line. */
int hl_keys_open(const char *dir, enum hl_keys_need need, hl_keys **out,
		 char err[static HL_KEYS_ERR_LEN]);
/* The daemon's: the key holder over FD (a connected stream socket,
 * taken), asked for the public keys at once. */
int hl_keys_over_fd(int fd, hl_keys **out, char err[static HL_KEYS_ERR_LEN]);
/* In-process over the keys SIGNER (taken) and a journal in memory: tests
 * and benchmarks. */
hl_keys *hl_keys_in_memory(hl_signer *signer);
void hl_keys_free(hl_keys *k);

/* The signer face of K: public keys, DH and seals through the holder;
 * valid while K lives. */
const hl_signer *hl_keys_signer(const hl_keys *k);
/* The keys behind a signer from hl_keys_signer; NULL for another signer. */
hl_keys *hl_keys_of(const hl_signer *s);
/* True when K talks to a key-holder process. */
bool hl_keys_remote(const hl_keys *k);

/* The DH of our static key with a key for which IS_STATIC(USER, PUB) is
 * true — a pinned peer's NoiseKey, the same at every handshake with it —
 * is asked of the holder once and then remembered (in locked memory, wiped
 * at hl_keys_free), which halves the daemon's requests per handshake.  It
 * lets nothing more out than the holder's DH answers already do: with it,
 * and without a private key, no session opens (docs/keyholder.md 4). */
void hl_keys_remember_statics(hl_keys *k, bool (*is_static)(void *user, const uint8_t pub[static 32]),
			      void *user);

/* Rotates the station's keys to the next ones (docs/rotation.md): the
 * holder replaces identity.key and takes the new keys; K's signer face
 * follows (its public keys, previous keys, next-key hash), and the DHs it
 * remembered go.  Only the daemon's handle, or a command's in-process one,
 * may (HL_EAUTH otherwise: the holder refuses); HL_ECRYPTO when the holder
 * could not (its log line says why: no next keys, say). */
int hl_keys_rotate(hl_keys *k);

/* FN(USER, TEXT) is called when the holder refuses to sign (TEXT its
 * reason): the daemon raises its alarm. */
void hl_keys_on_refusal(hl_keys *k, void (*fn)(void *user, const char *text), void *user);

/* Signs the items IT[0..N) (N at most HL_HOLD_RUN_MAX), consecutive
 * positions of one chain of ours, IT[0] with its prev: SIGS gets N × 64
 * bytes.  The items are unchanged (every prev after the first is, for the
 * holder, the hash of the item before it as signed: the caller sets it).
 * NOTES (N of them, or NULL) travel to the holder's journal.  HL_ESTATE
 * when the holder refuses; WHY (WHYLEN bytes) gets its reason. */
int hl_keys_sign_run(hl_keys *k, struct hl_item *const *it, size_t n,
		     const struct hl_hold_blob *notes, uint8_t *sigs, char *why, size_t whylen);

/* Whether the holder's head of our chain with PEER is known to be SEQ: this
 * handle's last request on that chain (a run signed, or a PENDING answered)
 * left it there, and no refusal since.  Then the store's head at SEQ leaves
 * nothing to take back and no PENDING need be asked: the daemon asks once
 * per chain, not once per item.  (Another process that signs on the chain
 * moves the store's head too; one that died after signing makes the next
 * run refused, which forgets what is known.) */
bool hl_keys_head_is(hl_keys *k, const uint8_t peer[static 32], uint64_t seq);
/* What chain/adopt.c learnt: the holder's head of that chain is SEQ. */
void hl_keys_know_head(hl_keys *k, const uint8_t peer[static 32], uint64_t seq);

/* Durability.  The holder answers a signing request once its journal has
 * the new positions written, and hands them to the disk right after (its
 * own holder process; an in-process one makes them durable), while the
 * asker commits its store; hl_keys_sync asks it (SYNC)
 * whether everything it signed for this handle is durable, and returns 0
 * once it is (at once when nothing was signed since the last).  Nothing
 * signed may leave the station before: a machine that lost power would
 * come back with a journal that lacks it, and a holder that could sign
 * another item there (docs/keyholder.md section 5).  A handle syncs inside
 * each hl_keys_sign_finish, unless its owner called hl_keys_defer_sync: the
 * daemon does, and syncs in its group commit, after the store's own commit
 * (daemon/commit.c).  A failure means the holder signs nothing more. */
void hl_keys_defer_sync(hl_keys *k);
int hl_keys_sync(hl_keys *k);
/* The page of marks of the holder K talks to, which its starter shares
 * (holder/proc.h; taken: unmapped with K): hl_keys_sync then asks no SYNC
 * when the page says that the journal is durable past K's last signature.
 * The daemon gives its holder's. */
struct hl_holder_marks;
void hl_keys_share_marks(hl_keys *k, struct hl_holder_marks *m);
/* The owner's store is on the journal's filesystem (the daemon checks), so
 * that an fdatasync of it flushes the disk's cache over the journal's
 * records too: hl_keys_flush_begins, called right before such an fdatasync
 * begins, notes the marks' ON_DISK, and the hl_keys_sync after it asks no
 * SYNC when that reached K's last signature (docs/keyholder.md 5). */
void hl_keys_ride_flush(hl_keys *k);
void hl_keys_flush_begins(hl_keys *k);
/* The syncs hl_keys_sync asked of the holder, and those the marks spared. */
void hl_keys_sync_counts(const hl_keys *k, uint64_t *asked, uint64_t *spared);

/* hl_keys_sign_run in two halves, so that the caller works while the
 * holder signs: start sends the request (the handle is the caller's until
 * finish, which must follow, whatever start returned), finish reads the
 * answer and frees CALL. */
typedef struct hl_keys_call hl_keys_call;
int hl_keys_sign_start(hl_keys *k, struct hl_item *const *it, size_t n,
		       const struct hl_hold_blob *notes, hl_keys_call **call);
int hl_keys_sign_finish(hl_keys *k, hl_keys_call *call, uint8_t *sigs, char *why,
			size_t whylen);

/* The holder's head of our chain with PEER (*HEAD_SEQ, 0 for none), and
 * the items it kept after AFTER, in order, each to FN with its note (FN's
 * non-zero return stops, and is returned). */
typedef int hl_keys_pending_fn(void *arg, const uint8_t *item, size_t len, const uint8_t *note,
			       size_t note_len);
int hl_keys_pending(hl_keys *k, const uint8_t peer[static 32], uint64_t after,
		    uint64_t *head_seq, hl_keys_pending_fn *fn, void *arg);

#endif
