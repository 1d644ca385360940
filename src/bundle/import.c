/* bundle/import.c — `bundle import`: a courier bundle into the store
 * (courier.h, docs/bundle.md section 6).
 *
 * Two passes over the same bytes.  The first decrypts every frame and
 * checks every packet (bundle/format.h: items verify, parts match their
 * hashes, END is last) and touches nothing.  Only when all of it holds
 * does the second pass decrypt again and hand each packet to the delivery
 * engine's receive path (hl_engine_on_packet with no link), checking
 * again as it goes, inside one store transaction, which commits only when
 * the second pass ends clean.  So a corrupt, truncated or forged bundle
 * leaves nothing behind, and a good one is stored exactly once: the engine
 * keeps each item once by (peer, seq) and each message once by id, so a
 * second import of the same bundle (or copies that came by the link) adds
 * nothing. */
#include "bundle/courier.h"

#include <stdio.h>
#include <string.h>

#include "bundle/format.h"
#include "deliver/engine.h"
#include "deliver/rotate.h"
#include "wire/msgproto.h"
#include "util/err.h"
#include "util/mem.h"
#include "util/timefmt.h"
#include "wire/packet.h"

struct importer {
	const hl_station_conf *conf;
	hl_store *st;
	const hl_signer *me;
	const hl_signer *opener;      /* the key the bundle is sealed to (me or my previous) */
	int64_t peer_id;              /* the sender's row; 0: none yet */
	const hl_peer_conf *peer;     /* the sender, from the handshake */
	struct hl_bundle_validator validator;
	hl_engine *engine;            /* the second pass only */
	uint64_t now;
	struct hl_bundle_import_stats *stats;
	char err[256];
};

/* The pinned peer whose NoiseKey is NOISE_PUB now: its card's, or the one
 * its last rotation gave (docs/rotation.md); *ID its row (0: none yet). */
static const hl_peer_conf *peer_by_noise(struct importer *im, const uint8_t noise_pub[static 32],
					 int64_t *id)
{
	for (size_t i = 0; i < im->conf->npeers; i++) {
		const hl_peer_conf *p = &im->conf->peers[i];
		struct hl_own_keys k;
		if (hl_store_peer_find(im->st, p->signing_key, id) < 0)
			*id = 0;
		if (hl_rotate_peer_keys(im->st, *id, p, INT64_MAX, &k, NULL) == 0 &&
		    sodium_memcmp(k.noise, noise_pub, 32) == 0)
			return p;
	}
	return NULL;
}

/* The key of the sender's item at SEQ: its chain's as we hold it. */
static int sender_key_at(void *arg, uint64_t seq, uint8_t key[static 32])
{
	struct importer *im = arg;
	struct hl_own_keys k;
	int ret = hl_rotate_peer_keys(im->st, im->peer_id, im->peer, seq, &k, NULL);
	if (ret == 0)
		memcpy(key, k.sign, 32);
	return ret;
}

static int on_sender(void *arg, const uint8_t noise_pub[static 32])
{
	struct importer *im = arg;
	int64_t id = 0;
	struct hl_own_keys ours;
	const hl_peer_conf *p = peer_by_noise(im, noise_pub, &id);
	if (!p)
		return HL_EPEER;
	if (im->peer && im->peer != p)
		return HL_EPEER; /* the file changed between the passes */
	im->peer = p;
	im->peer_id = id;
	/* addressed to us as the sender pinned us (our card on the link) */
	bool card = id && hl_store_own_card(im->st, id, &ours) == 0;
	hl_bundle_validator_init(&im->validator, p->signing_key,
				 card ? ours.sign : hl_signer_sign_pk(im->me));
	im->validator.key_at = sender_key_at;
	im->validator.key_arg = im;
	return 0;
}

static int on_packet(void *arg, const uint8_t *rec, size_t len)
{
	struct importer *im = arg;
	int ret = hl_bundle_validate_packet(&im->validator, rec, len);
	if (ret < 0) {
		snprintf(im->err, sizeof(im->err), "%s", im->validator.err);
		return ret;
	}
	if (!im->engine || rec[1] == HL_PKT_BUNDLE_END)
		return 0;
	/* checked above: a version 1 packet of ITEM, CHUNK or ACK */
	ret = hl_engine_on_packet(im->engine, rec[1], rec + HL_PACKET_HDR_LEN,
				  len - HL_PACKET_HDR_LEN, im->now);
	if (ret < 0)
		snprintf(im->err, sizeof(im->err), "cannot store it: %s", hl_engine_error(im->engine));
	return ret;
}

/* The engine's key_taken (docs/rotation.md section 3): KEY is this
 * station's, or pinned for a peer other than PEER. */
static bool key_taken(void *user, const char *peer, const uint8_t key[static 32])
{
	struct importer *im = user;
	if (memcmp(hl_signer_noise_pub(im->me), key, 32) == 0 ||
	    memcmp(hl_signer_sign_pk(im->me), key, 32) == 0)
		return true;
	for (size_t i = 0; i < im->conf->npeers; i++) {
		const hl_peer_conf *p = &im->conf->peers[i];
		if (strcmp(p->name, peer) != 0 && (memcmp(p->noise_key, key, 32) == 0 ||
						   memcmp(p->signing_key, key, 32) == 0))
			return true;
	}
	return false;
}

static void on_event(void *user, const char *peer, const struct hl_engine_evinfo *ev)
{
	struct importer *im = user;
	(void)peer;
	if (ev->ev == HL_EV_ARRIVED)
		im->stats->arrived++;
	else if (ev->ev == HL_EV_DELIVERED)
		im->stats->delivered++;
}

/* Our previous keys when the bundle in BUF is sealed to them and the
 * rotation is at most HL_ROTATION_GRACE_MS old (docs/rotation.md section
 * 4: mail and couriers in flight); NULL otherwise. */
static hl_signer *previous_for(const hl_signer *me, const uint8_t *buf, size_t len, uint64_t now)
{
	uint8_t keyid[HL_BUNDLE_KEYID_LEN], prev_id[HL_BUNDLE_KEYID_LEN];
	const uint8_t *prev = hl_signer_prev_noise_pub(me);
	hl_signer *view = NULL;
	if (!prev || hl_bundle_header_parse(buf, len, keyid) < 0 ||
	    now > (uint64_t)hl_signer_rotated_at(me) + HL_ROTATION_GRACE_MS)
		return NULL;
	hl_bundle_key_id(prev, prev_id);
	if (sodium_memcmp(keyid, prev_id, sizeof(keyid)) == 0)
		(void)hl_signer_previous(me, &view);
	return view;
}

/* One pass over the bundle; the validation is whole only at its end. */
static int pass(struct importer *im, const uint8_t *buf, size_t len, char *err, size_t errlen)
{
	struct hl_bundle_open_cb cb = { .sender = on_sender, .packet = on_packet, .arg = im };
	im->err[0] = '\0';
	int ret = hl_bundle_open(buf, len, im->opener, &cb, err, errlen);
	if (ret < 0 && im->err[0])
		snprintf(err, errlen, "%s", im->err);
	if (ret == 0 && (ret = hl_bundle_validator_finish(&im->validator)) < 0)
		snprintf(err, errlen, "%s", im->validator.err);
	return ret;
}

int hl_bundle_import(const char *dir, hl_store *st, const hl_signer *me,
		     const hl_station_conf *conf, const uint8_t *buf, size_t len,
		     struct hl_bundle_import_stats *stats, char *err, size_t errlen)
{
	struct importer *im = xcalloc(1, sizeof(*im));
	struct hl_txn txn = { .store = st };
	int ret;
	memset(stats, 0, sizeof(*stats));
	im->conf = conf;
	im->st = st;
	im->me = me;
	im->stats = stats;
	im->now = (uint64_t)hl_now_ms();
	hl_signer *prev = previous_for(me, buf, len, im->now);
	im->opener = prev ? prev : me;

	/* 1: verify everything, store nothing */
	if ((ret = pass(im, buf, len, err, errlen)) < 0)
		goto out;
	snprintf(stats->peer, sizeof(stats->peer), "%s", im->peer->name);
	stats->items = im->validator.items;
	stats->messages = im->validator.messages;
	stats->chunks = im->validator.chunks;
	stats->acks = im->validator.acks;

	/* 2: the same packets through the engine, in one transaction */
	struct hl_engine_env env = {
		.dir = dir, .txn = &txn, .me = me, .max_attachment = conf->max_attachment,
		.quota_bytes = conf->quota_bytes, .reserve_bytes = conf->reserve_bytes,
		.reserve_pct = conf->reserve_pct,
		.on_event = on_event, .key_taken = key_taken, .user = im,
	};
	if ((ret = hl_engine_new(&im->engine, &env, im->peer)) < 0) {
		snprintf(err, errlen, "store: %s", hl_store_errmsg(st));
		goto out;
	}
	if ((ret = pass(im, buf, len, err, errlen)) < 0)
		goto out;
	if ((ret = hl_txn_need(&txn)) < 0 ||
	    (ret = hl_engine_precommit(im->engine, im->now)) < 0 ||
	    (ret = hl_store_commit(st)) < 0) {
		snprintf(err, errlen, "store: %s", hl_store_errmsg(st));
		goto out;
	}
	txn.open = false;
	hl_engine_postcommit(im->engine, im->now);
out:
	if (txn.open) {
		hl_store_rollback(st);
		hl_engine_abort(im->engine);
	}
	hl_engine_free(im->engine);
	if (im->opener != me)
		hl_signer_free((hl_signer *)im->opener);
	sodium_memzero(im, sizeof(*im));
	free(im);
	return ret;
}
