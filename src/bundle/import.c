/* bundle/import.c — `bundle import`: a courier bundle into the store
 * (bundle.h, docs/bundle.md section 6).
 *
 * Two passes over the same bytes.  The first decrypts every frame and
 * checks every record (bundle/format.h: items verify, parts match their
 * hashes, END is last) and touches nothing.  Only when all of it holds
 * does the second pass decrypt again and hand each record to the delivery
 * engine's receive path (hl_engine_on_record with no link), checking
 * again as it goes, inside one store transaction, which commits only when
 * the second pass ends clean.  So a corrupt, truncated or forged bundle
 * leaves nothing behind, and a good one is stored exactly once: the engine
 * keeps each item once by (peer, seq) and each message once by id, so a
 * second import of the same bundle (or copies that came by the link) adds
 * nothing. */
#include "bundle/bundle.h"

#include <stdio.h>
#include <string.h>

#include "bundle/format.h"
#include "deliver/engine.h"
#include "wire/msgproto.h"
#include "util/err.h"
#include "util/mem.h"
#include "util/timefmt.h"
#include "wire/record.h"

struct importer {
	const hl_station_conf *conf;
	const hl_signer *me;
	const hl_peer_conf *peer;     /* the sender, from the handshake */
	struct hl_bundle_check check;
	hl_engine *engine;            /* the second pass only */
	uint64_t now;
	struct hl_bundle_import_stats *stats;
	char err[256];
};

static int on_sender(void *arg, const uint8_t noise_pub[static 32])
{
	struct importer *im = arg;
	const hl_peer_conf *p = hl_conf_peer_by_noise_key(im->conf, noise_pub);
	if (!p)
		return HL_EPEER;
	if (im->peer && im->peer != p)
		return HL_EPEER; /* the file changed between the passes */
	im->peer = p;
	hl_bundle_check_init(&im->check, p->signing_key, hl_signer_sign_pk(im->me));
	return 0;
}

static int on_record(void *arg, const uint8_t *rec, size_t len)
{
	struct importer *im = arg;
	int ret = hl_bundle_check_record(&im->check, rec, len);
	if (ret < 0) {
		snprintf(im->err, sizeof(im->err), "%s", im->check.err);
		return ret;
	}
	if (!im->engine || rec[1] == HL_REC_BUNDLE_END)
		return 0;
	/* checked above: a version 1 record of ITEM, CHUNK or ACK */
	ret = hl_engine_on_record(im->engine, rec[1], rec + HL_RECORD_HDR_LEN,
				  len - HL_RECORD_HDR_LEN, im->now);
	if (ret < 0)
		snprintf(im->err, sizeof(im->err), "cannot store it: %s", hl_engine_error(im->engine));
	return ret;
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

/* One pass over the bundle; the check is whole only at its end. */
static int pass(struct importer *im, const uint8_t *buf, size_t len, char *err, size_t errlen)
{
	struct hl_bundle_open_cb cb = { .sender = on_sender, .record = on_record, .arg = im };
	im->err[0] = '\0';
	int ret = hl_bundle_open(buf, len, im->me, &cb, err, errlen);
	if (ret < 0 && im->err[0])
		snprintf(err, errlen, "%s", im->err);
	if (ret == 0 && (ret = hl_bundle_check_finish(&im->check)) < 0)
		snprintf(err, errlen, "%s", im->check.err);
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
	im->me = me;
	im->stats = stats;
	im->now = (uint64_t)hl_now_ms();

	/* 1: verify everything, store nothing */
	if ((ret = pass(im, buf, len, err, errlen)) < 0)
		goto out;
	snprintf(stats->peer, sizeof(stats->peer), "%s", im->peer->name);
	stats->items = im->check.items;
	stats->messages = im->check.messages;
	stats->chunks = im->check.chunks;
	stats->acks = im->check.acks;

	/* 2: the same records through the engine, in one transaction */
	struct hl_engine_env env = {
		.dir = dir, .txn = &txn, .me = me, .max_attachment = conf->max_attachment,
		.quota_bytes = conf->quota_bytes, .reserve_bytes = conf->reserve_bytes,
		.reserve_pct = conf->reserve_pct,
		.on_event = on_event, .user = im,
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
	sodium_memzero(im, sizeof(*im));
	free(im);
	return ret;
}
