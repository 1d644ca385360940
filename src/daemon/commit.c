/* daemon/commit.c — the group commit: the daemon's store, the one shared
 * transaction, and the pass that commits it at the end of each turn of the
 * event loop.  No other file opens, commits or rolls back the daemon's
 * transaction.
 *
 * A turn.  Whatever the daemon writes while it handles one turn's input —
 * the packets the delivery engines store, a line check made or decided, a
 * call's item, a message queued by the control request "send" — goes into
 * one transaction: a writer joins it (hl_commit_join; the engines through
 * hl_commit_txn) and the pass becomes due.  A uv_check handle, which runs
 * right after the loop has polled for I/O, then runs the pass:
 *
 *   1. the services' before_commit hooks (delivery: the packets its engines
 *      held back are handled, and each engine authors its receipts);
 *   2. one commit — one fsync for the whole burst — or, when a hook failed,
 *      a rollback; after a commit, the key holder's word that what it
 *      signed for the burst is durable too (durable(): the holder handed
 *      its journal's records to the disk before the commit's fdatasync
 *      began, which flushed them too, or its own fdatasync says so);
 *   3. the callbacks given to hl_commit_defer() in this turn (the "send"
 *      requests are answered: their messages are durable);
 *   4. the services' after_commit hooks (alarms are acted on; the engines
 *      send the ACKs, REFUSEs and receipts that acknowledge what is now on
 *      disk).
 * Nothing that acknowledges a write leaves before step 2 made it durable.
 * A failed commit (a full disk, an I/O error) rolls back; steps 3 and 4 are
 * told so: nothing was acknowledged, the delivery engines drop what they
 * held in memory of it and close the sessions, the peers resend, and
 * delivery resumes by itself when the store can write again.
 *
 * A pass also runs at once (hl_commit_flush) when something must start
 * from what is durable — a new session, a new or removed peer's engine —
 * and a last time when the daemon stops.
 *
 * When the key holder cannot say that what it signed is durable, the
 * pass is held: no pass runs again, nothing more is answered or sent,
 * and the daemon stops at the end of the turn (the STOP it was given).
 *
 * Invariants: the transaction is open only between a join and the next
 * pass's step 2; a deferred callback runs once, in the first pass after it
 * was given, in order; a pass never runs inside another (a hook that
 * flushes finds nothing to do: the transaction is closed by step 3). */
#include "daemon/commit.h"

#include <stdio.h>

#include "daemon/daemon_int.h"
#include "daemon/service.h"
#include "holder/client.h"
#include "util/err.h"
#include "util/log.h"
#include "util/mem.h"

struct deferred {
	hl_commit_fn *fn;
	void *arg;
	struct deferred *next;
};

struct hl_commit {
	struct hl_txn txn;            /* the shared transaction on d->store */
	bool due;                     /* the pass runs at the end of this turn */
	uv_check_t check;
	struct deferred *deferred, **deferred_tail;
	char error[HL_ERRTEXT_LEN];   /* why the last commit failed; "" */
	bool held;                    /* the key holder's journal failed: no more passes */
	bool stop_due;                /* held: the daemon stops at the end of this turn */
	void (*stop)(struct hl_daemon *d);
};

/* What the key holder signed since the last call is durable in its
 * journal (holder/client.h, hl_keys_sync); otherwise the pass is held and
 * the daemon stops at the end of the turn. */
static int durable(struct hl_daemon *d)
{
	struct hl_commit *k = d->commit;
	int ret = d->keys ? hl_keys_sync(d->keys) : 0;
	if (ret == 0 || (k && k->held))
		return ret;
	if (ret != HL_ECRYPTO) {
		/* no answer at all: the holder died (killed, or crashed) */
		hl_error(HL_HOLDER_GONE, (long)d->holder_pid, "");
		d->holder_died = true;
	} else {
		hl_error("the key holder cannot make what it signed durable: stopping, with "
			 "nothing it signed since sent (start the station again once its disk "
			 "is sound)");
	}
	d->failed = true;
	if (k) {
		snprintf(k->error, sizeof(k->error), "%s", "the key holder failed: stopping");
		k->held = k->stop_due = true;
	}
	return ret;
}

static void run_deferred(struct hl_daemon *d, bool committed)
{
	struct hl_commit *k = d->commit;
	struct deferred *q = k->deferred;
	k->deferred = NULL;
	k->deferred_tail = &k->deferred;
	while (q) {
		struct deferred *next = q->next;
		q->fn(d, committed, q->arg);
		free(q);
		q = next;
	}
}

/* Steps 1 to 4 (the top of this file). */
static void pass(struct hl_daemon *d)
{
	struct hl_commit *k = d->commit;
	bool committed = true;
	if (k->held)
		return;
	int ret = hl_services_before_commit(d, uv_now(&d->loop));
	if (k->txn.open) {
		if (ret == 0) {
			/* a commit that writes rows fdatasyncs the store: what
			 * the holder has on the disk now is durable after it */
			if (d->keys && hl_store_txn_wrote(d->store))
				hl_keys_flush_begins(d->keys);
			ret = hl_store_commit(d->store);
		} else {
			hl_store_rollback(d->store);
		}
		k->txn.open = false;
		k->error[0] = '\0';
		if (ret == 0 && durable(d) < 0) {
			/* Committed, but its signatures may not leave: nothing
			 * is answered or sent, and the daemon stops. */
			run_deferred(d, false);
			hl_services_after_commit(d, false);
			return;
		}
		if (ret < 0) {
			committed = false;
			snprintf(k->error, sizeof(k->error),
				 "store: %s (nothing was acknowledged; retrying)",
				 hl_store_errmsg(d->store));
			hl_error("%s", k->error);
		}
	}
	run_deferred(d, committed);
	hl_services_after_commit(d, committed);
}

static void on_check(uv_check_t *h)
{
	struct hl_daemon *d = h->data;
	struct hl_commit *k = d->commit;
	if (k->due) {
		k->due = false;
		pass(d);
	}
	if (k->stop_due) {
		k->stop_due = false;
		k->stop(d);
	}
}

int hl_commit_durable(struct hl_daemon *d)
{
	return durable(d);
}

int hl_commit_start(struct hl_daemon *d, void (*stop)(struct hl_daemon *d), char *err,
		    size_t errlen)
{
	int ret = hl_store_open(d->dir, &d->store);
	if (ret < 0) {
		snprintf(err, errlen, "cannot open the store in %s: %s", d->dir,
			 hl_store_open_errmsg());
		return ret;
	}
	struct hl_commit *k = xcalloc(1, sizeof(*k));
	k->txn.store = d->store;
	k->stop = stop;
	k->deferred_tail = &k->deferred;
	uv_check_init(&d->loop, &k->check);
	k->check.data = d;
	uv_check_start(&k->check, on_check);
	d->commit = k;
	return 0;
}

static void on_check_closed(uv_handle_t *h)
{
	(void)h;
}

void hl_commit_stop(struct hl_daemon *d)
{
	struct hl_commit *k = d->commit;
	if (!k || !uv_is_active((uv_handle_t *)&k->check))
		return;
	/* What arrived in this last turn is stored and acknowledged as usual
	 * (the ACKs may not make it out; the peer resends, harmlessly). */
	pass(d);
	uv_close((uv_handle_t *)&k->check, on_check_closed);
}

void hl_commit_close(struct hl_daemon *d)
{
	struct hl_commit *k = d->commit;
	if (k && k->txn.open) {
		hl_store_rollback(d->store);
		k->txn.open = false;
	}
	/* The last pass (hl_commit_stop) ran every callback: none is left
	 * unless the daemon failed to start, and then nobody waits. */
	while (k && k->deferred) {
		struct deferred *q = k->deferred;
		k->deferred = q->next;
		free(q);
	}
	hl_store_close(d->store);
	d->store = NULL;
	free(k);
	d->commit = NULL;
}

int hl_commit_join(struct hl_daemon *d)
{
	struct hl_commit *k = d->commit;
	if (!k)
		return HL_ESTATE;
	int ret = hl_txn_need(&k->txn);
	if (ret == 0)
		k->due = true;
	return ret;
}

void hl_commit_due(struct hl_daemon *d)
{
	if (d->commit)
		d->commit->due = true;
}

bool hl_commit_open(const struct hl_daemon *d)
{
	return d->commit && d->commit->txn.open;
}

void hl_commit_flush(struct hl_daemon *d)
{
	if (hl_commit_open(d))
		pass(d);
}

struct hl_txn *hl_commit_txn(struct hl_daemon *d)
{
	return d->commit ? &d->commit->txn : NULL;
}

const char *hl_commit_error(const struct hl_daemon *d)
{
	return d->commit ? d->commit->error : "";
}

void hl_commit_defer(struct hl_daemon *d, hl_commit_fn *fn, void *arg)
{
	struct hl_commit *k = d->commit;
	struct deferred *q = xcalloc(1, sizeof(*q));
	q->fn = fn;
	q->arg = arg;
	*k->deferred_tail = q;
	k->deferred_tail = &q->next;
	k->due = true;
}
