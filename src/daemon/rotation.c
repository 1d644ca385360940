/* daemon/rotation.c — key rotation in the daemon (docs/rotation.md), the
 * service "rotation" (service.h):
 *
 *   ours     At start, before any peer is added, a rotation that a crash
 *            left half done (identity.key rotated, the chains not told) is
 *            completed (deliver/rotate.h), so every engine starts from
 *            the chains' keys.  The control request "rotate" (`hotline key
 *            rotate` while the daemon runs) has the key holder rotate
 *            identity.key (holder/client.h, hl_keys_rotate: the holder
 *            alone writes it; the network process, sandboxed, never opens
 *            it), after which d->id — the holder's face — gives the new
 *            keys to every engine and session, and its remembered DHs are
 *            gone; then the rotation items are appended through
 *            chain/ours.c in a transaction of its own, the group commit
 *            flushed first, and delivery sends them.
 *   static   Which of our static keys a handshake (or bundle) to a peer
 *            uses: the previous one until the peer has acknowledged our
 *            rotation item (it pins the old one until it has taken it),
 *            the current one after (conn.c, deliver/rotate.h); a responder
 *            session also tries the previous key (session.h params.local_prev).
 *            This file keeps d->id_prev for them.
 *   theirs   A peer's rotation, taken by its engine: its NoiseKey (the
 *            handshake index, peer.c) follows, the operator is told (the
 *            log, the alarm "rotated" with the new fingerprint, `status`);
 *            a refused one raises the alarm "rotation_refused".
 *
 * The previous keys' faces (their DH asked of the holder) handed to sessions
 * are kept until the daemon
 * ends (a rotation makes a new one): a session made before a rotation may
 * still hold the one before. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/alarm.h"
#include "daemon/commit.h"
#include "station/control_proto.h"
#include "daemon/daemon_int.h"
#include "daemon/service.h"
#include "deliver/rotate.h"
#include "holder/client.h"
#include "msg/item.h"
#include "util/err.h"
#include "util/fsutil.h"
#include "util/log.h"
#include "util/mem.h"
#include "util/timefmt.h"

#define RETIRED_MAX 16

struct hl_rotation {
	hl_signer *retired[RETIRED_MAX];   /* previous-key signers sessions may hold */
	size_t nretired;
};

/* d->id_prev anew from d->id (NULL when it has no previous keys); the one
 * before is kept for the sessions that hold it. */
static void previous_view(struct hl_daemon *d)
{
	struct hl_rotation *k = d->rotation;
	if (d->id_prev && k->nretired < RETIRED_MAX)
		k->retired[k->nretired++] = d->id_prev;
	else
		hl_signer_free(d->id_prev); /* 16 rotations in one run: no session is that old */
	d->id_prev = NULL;
	(void)hl_signer_previous(d->id, &d->id_prev);
}

/* Completes a rotation of ours on the chains (REASON), in a transaction of
 * its own: *CHAINS rotated. */
static int complete(struct hl_daemon *d, unsigned reason, size_t *chains)
{
	int ret = hl_store_begin(d->store);
	if (ret == 0)
		ret = hl_rotate_chains(d->store, d->id, d->conf, reason, chains);
	if (ret == 0)
		ret = hl_store_commit(d->store);
	else
		hl_store_rollback(d->store);
	return ret == 0 ? hl_commit_durable(d) : ret;
}

static const char *keys_error(struct hl_daemon *d, int ret)
{
	return ret == HL_EKEYS ? "the store's chains are at keys that are neither the identity's "
				 "current nor its previous ones"
			       : ret == HL_ESTORE ? hl_store_errmsg(d->store) : hl_strerror(ret);
}

static int keys_start(struct hl_daemon *d, char *err, size_t errlen)
{
	size_t n = 0;
	d->rotation = xcalloc(1, sizeof(*d->rotation));
	previous_view(d);
	int ret = complete(d, HL_ROTATE_ROUTINE, &n);
	if (ret < 0) {
		snprintf(err, errlen, "completing a key rotation: %s", keys_error(d, ret));
		return ret;
	}
	if (n)
		hl_info("completed the key rotation of %s: rotation items on %zu chain(s)",
			d->conf->name, n);
	return 0;
}

static void keys_release(struct hl_daemon *d)
{
	struct hl_rotation *k = d->rotation;
	if (!k)
		return;
	for (size_t i = 0; i < k->nretired; i++)
		hl_signer_free(k->retired[i]);
	free(k);
	d->rotation = NULL;
}

/* P's keys now (its card's, or its last rotation's at *SEQ; 0: none). */
static int peer_keys(struct hl_peer *p, struct hl_own_keys *k, uint64_t *seq, int64_t *id)
{
	int ret = hl_store_peer_find(p->d->store, p->conf.signing_key, id);
	if (ret == HL_ENOTFOUND)
		*id = 0;
	else if (ret < 0)
		return ret;
	return hl_rotate_peer_keys(p->d->store, *id, &p->conf, INT64_MAX, k, seq);
}

/* P's NoiseKey from the store: its last rotation's. */
static void keys_peer_added(struct hl_peer *p)
{
	struct hl_own_keys k;
	uint64_t seq;
	int64_t id;
	if (peer_keys(p, &k, &seq, &id) == 0)
		hl_peer_rekey(p, k.noise);
}

static void keys_engine_event(struct hl_peer *p, const struct hl_engine_evinfo *ev)
{
	char detail[512], fp[HL_FP_TEXT_LEN];
	if (ev->ev == HL_EV_ROTATED) {
		keys_peer_added(p); /* its NoiseKey now */
		hl_fingerprint_text(ev->id, fp);
		snprintf(detail, sizeof(detail), "%s rotated its keys at position %llu of its chain, "
			 "to keys its card committed to; its new fingerprint is %s", p->conf.name,
			 (unsigned long long)ev->seq, fp);
		hl_alarm_act(p->d, hl_alarm_new("rotated", p->conf.name, NULL, 0, ev->seq, detail));
	} else if (ev->ev == HL_EV_ROTATION_REFUSED) {
		snprintf(detail, sizeof(detail), "%s's key rotation at position %llu of its chain was "
			 "refused (keys it never committed to, or out of place: see the log); its "
			 "pinned keys stay", p->conf.name, (unsigned long long)ev->seq);
		hl_alarm_act(p->d, hl_alarm_new("rotation_refused", p->conf.name, NULL, 0, ev->seq,
						detail));
	}
}

/* `status`: the peer's keys now, when it rotated. */
static void keys_peer_status(struct hl_peer *p, json_t *o)
{
	struct hl_own_keys k;
	uint64_t seq = 0;
	int64_t id;
	uint8_t fp[HL_FP_LEN];
	char text[HL_FP_TEXT_LEN];
	struct hl_item_row row;
	uint8_t *buf;
	if (peer_keys(p, &k, &seq, &id) < 0 || seq == 0)
		return;
	hl_fingerprint_next(k.noise, k.sign, k.has_next ? k.next_hash : NULL, fp);
	hl_fingerprint_text(fp, text);
	/* the reason is the rotation item's */
	buf = xmalloc(HL_ITEM_MAX);
	struct hl_item *it = xmalloc(sizeof(*it));
	bool compromise = hl_store_get_item(p->d->store, id, HL_DIR_IN, seq, &row, buf,
					    HL_ITEM_MAX) == 0 &&
			  hl_item_decode(row.encoded, row.encoded_len, it) == 0 &&
			  it->kind == HL_ITEM_ROTATION && it->u.rot.reason == HL_ROTATE_COMPROMISE;
	free(it);
	free(buf);
	json_object_set_new(o, "keys", json_pack("{s:s, s:I, s:s}", "fingerprint", text,
						 "rotated_at_seq", (json_int_t)seq, "reason",
						 compromise ? "compromise" : "routine"));
}

static void keys_station_status(struct hl_daemon *d, json_t *station)
{
	char at[HL_RFC3339_LEN];
	int64_t when = hl_signer_rotated_at(d->id);
	if (!when)
		return;
	hl_rfc3339(when, at);
	json_object_set_new(station, "rotated_at", json_string(at));
}

json_t *hl_rotation_control(struct hl_daemon *d, const struct hl_ctl_request *req, struct hl_peer *p,
			struct hl_control_client *cl)
{
	char msg[600], fp[HL_FP_TEXT_LEN];
	size_t n = 0;
	(void)p, (void)cl;
	/* from what is durable; nothing of ours is signed in between */
	hl_commit_flush(d);
	/* The store's write lock before the holder rotates: a command that
	 * signs with the keys it read before (over keyholder.sock) either
	 * commits first, with the old key, or finds the store's keys moved on
	 * (HL_EKEYS) — never an item signed by the new key ahead of its
	 * chain's rotation item. */
	int ret = hl_store_begin(d->store);
	if (ret < 0)
		return hl_ctl_error(hl_store_errmsg(d->store));
	/* the key holder rotates identity.key; d->id follows */
	if ((ret = hl_keys_rotate(d->keys)) < 0) {
		hl_store_rollback(d->store);
		snprintf(msg, sizeof(msg), "cannot rotate %s: %s", HL_IDENTITY_FILE,
			 ret == HL_EAUTH ? "the key holder refused (see its log)"
					 : "the key holder could not (see its log: an identity made "
					   "before key rotation existed has no next keys)");
		return hl_ctl_error(msg);
	}
	hl_signer_fingerprint(d->id, d->fingerprint);
	previous_view(d);
	ret = hl_rotate_chains(d->store, d->id, d->conf, req->u.rotate.reason, &n);
	if (ret == 0)
		ret = hl_store_commit(d->store);
	else
		hl_store_rollback(d->store);
	if (ret == 0 && hl_commit_durable(d) < 0)
		return hl_ctl_error("the key holder cannot make the rotation durable: the "
				    "daemon stops (see its log)");
	if (ret < 0) {
		snprintf(msg, sizeof(msg), "%s holds the new keys, but the chains could not be "
			 "told (%s): restart the daemon to complete the rotation",
			 HL_IDENTITY_FILE, keys_error(d, ret));
		hl_error("key rotation: %s", msg);
		return hl_ctl_error(msg);
	}
	hl_fingerprint_text(d->fingerprint, fp);
	hl_info("rotated the station's keys: rotation items on %zu chain(s); new fingerprint %s",
		n, fp);
	hl_delivery_poke(d);
	return json_pack("{s:b, s:s, s:I}", "ok", 1, "fingerprint", fp, "chains", (json_int_t)n);
}

const struct hl_service hl_rotation_service = {
	.name = "rotation",
	.start = keys_start,
	.release = keys_release,
	.peer_added = keys_peer_added,
	.engine_event = keys_engine_event,
	.peer_status = keys_peer_status,
	.station_status = keys_station_status,
};
