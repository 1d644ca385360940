/* daemon/commit.h — the daemon's group commit: the one shared store
 * transaction that everything the daemon writes in a turn of the event
 * loop joins, committed once at the end of the turn, and what must wait
 * until that commit is durable.  commit.c explains it. */
#ifndef HL_DAEMON_COMMIT_H
#define HL_DAEMON_COMMIT_H

#include <stdbool.h>
#include <stddef.h>

struct hl_daemon;
struct hl_txn;

/* Opens the station's store (d->store) and arms the end-of-turn pass;
 * STOP stops the daemon (from the end of a turn) when the key holder
 * cannot make what it signed durable. */
int hl_commit_start(struct hl_daemon *d, void (*stop)(struct hl_daemon *d), char *err,
		    size_t errlen);
/* The daemon stops: the last pass runs now (what was written is committed,
 * and its after-commit work done), then the pass is disarmed. */
void hl_commit_stop(struct hl_daemon *d);
/* What the key holder signed for the daemon since the last call is
 * durable in its journal: called after every commit of the store, before
 * anything written in it leaves (the pass does it after its own commit;
 * key rotation after its own transactions).  On failure (logged,
 * d->failed) nothing signed since may leave: no pass runs again and the
 * daemon stops at the end of the turn. */
int hl_commit_durable(struct hl_daemon *d);
/* After the loop has ended: anything still open is rolled back, the store
 * closed. */
void hl_commit_close(struct hl_daemon *d);

/* Writes now go into the shared transaction (opened if need be), which the
 * pass commits at the end of this turn. */
int hl_commit_join(struct hl_daemon *d);
/* The pass is due at the end of this turn, though nothing may have joined
 * yet: packets arrived, which the engines store (they join by themselves,
 * through hl_commit_txn). */
void hl_commit_due(struct hl_daemon *d);
/* True while the shared transaction is open: what was written in it is
 * not durable yet. */
bool hl_commit_open(const struct hl_daemon *d);
/* When the shared transaction is open, the pass runs now: for what must
 * start from what is durable (a session replacing another, a delivery
 * engine writing its own row). */
void hl_commit_flush(struct hl_daemon *d);
/* The shared transaction, for the delivery engines (deliver/engine.h). */
struct hl_txn *hl_commit_txn(struct hl_daemon *d);
/* Why the last commit failed, for the peers' "last error"; "" when it did
 * not. */
const char *hl_commit_error(const struct hl_daemon *d);

/* FN(D, COMMITTED, ARG) runs once, after the next commit (COMMITTED) or
 * rollback, before the services' after_commit hooks: it answers what was
 * asked in this turn.  Callbacks run in the order they were given. */
typedef void hl_commit_fn(struct hl_daemon *d, bool committed, void *arg);
void hl_commit_defer(struct hl_daemon *d, hl_commit_fn *fn, void *arg);

#endif
