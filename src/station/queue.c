/* station/queue.c — queueing a command's messages: through the running
 * daemon, else directly into the store (see queue.h). */
#include "station/queue.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "msg/message.h"
#include "station/control_client.h"
#include "station/control_proto.h"
#include "util/err.h"
#include "util/mem.h"
#include "util/timefmt.h"

/* The daemon's road: the running daemon queues O (control request "send")
 * under its id.  1: it is durable; with WAIT, *STREAM is then the daemon's
 * event stream.  0: not queued (no daemon, attachments, too large, or the
 * daemon refused): queue it directly.  -1: asked, but no answer came: it
 * may be queued. */
static int hand_to_daemon(const char *dir, const char *peer, const struct hl_outgoing *o,
			  bool wait, int *stream)
{
	char hex[33];
	int fd = -1, ret = 0;
	json_t *req = NULL, *resp = NULL;
	/* What does not fit in one request line takes the direct road. */
	if (o->n_attachments || o->body_len + strlen(o->subject) > HL_CONTROL_MAX_LINE / 2)
		return 0;
	hl_msg_id_hex(o->id, hex);
	struct hl_ctl_request sr = { .cmd = HL_CTL_SEND, .peer = peer };
	memcpy(sr.u.send.hex, hex, sizeof(hex));
	sr.u.send.precedence = (enum hl_precedence)o->precedence;
	sr.u.send.subject = o->subject;
	sr.u.send.body = o->body;
	sr.u.send.body_len = o->body_len;
	sr.u.send.wait = wait;
	req = hl_ctl_request_json(&sr);
	if (!req)
		return 0; /* not UTF-8: the direct road says what is wrong */
	/* A failed hl_control_send sent no whole request: nothing queued. */
	if (hl_control_send(dir, req, 1000, &fd) < 0)
		goto out;
	int r = hl_control_read_line(fd, hl_mono_ms() + HL_CONTROL_TIMEOUT_MS, &resp);
	if (r <= 0) {
		ret = -1; /* asked, but no answer: it may or may not be queued */
		goto out;
	}
	if (!json_is_true(json_object_get(resp, "ok")))
		goto out; /* refused, and so not queued: the direct road says why */
	const char *got = json_string_value(json_object_get(resp, "id"));
	if (!got || strcmp(got, hex) != 0) {
		ret = -1;
		goto out;
	}
	ret = 1;
	if (wait) {
		*stream = fd;
		fd = -1;
	}
out:
	if (fd >= 0)
		close(fd);
	json_decref(resp);
	json_decref(req);
	return ret;
}

static bool in_store(hl_store *st, const uint8_t id[static HL_MSG_ID_LEN])
{
	struct hl_msg_row row = { 0 };
	bool found = hl_store_get_message_by_id(st, id, &row) == 0;
	hl_msg_row_clear(&row);
	return found;
}

/* ST opened (if it was not) and the peer NAME in *PC. */
static int open_for(struct hl_station *st, const char *dir, const char *name,
		    const hl_peer_conf **pc, char *err)
{
	int ret;
	if (!st->conf && (ret = hl_station_open(st, dir, HL_OPEN_SIGN | HL_OPEN_STORE, err)) < 0)
		return ret;
	if (!(*pc = hl_conf_peer_by_name(st->conf, name))) {
		snprintf(err, HL_STATION_ERR_LEN, "no peer named '%s' (hotline peer list)", name);
		return HL_EINVAL;
	}
	return 0;
}

/* The direct road for one message.  ASKED: the daemon was asked and did
 * not answer, so it may have queued it. */
static int queue_direct(struct hl_station *st, const char *dir, struct hl_queue *q, bool asked,
			char *err)
{
	const hl_peer_conf *pc = NULL;
	int ret;
	if ((ret = open_for(st, dir, q->peer, &pc, err)) < 0)
		return ret;
	if (asked && in_store(st->store, q->msg->id))
		return 0;
	/* Subscribed first, so that the daemon's answer comes while the
	 * commit waits for the disk. */
	if ((q->flags & HL_QUEUE_WAIT) && q->stream < 0)
		q->stream = hl_control_watch(dir);
	ret = hl_msg_send(dir, st->store, st->me, pc, q->msg, q->id, err, HL_STATION_ERR_LEN);
	/* The daemon's late commit got there first: queued all the same. */
	if (ret == HL_EEXIST && q->msg->id && in_store(st->store, q->msg->id))
		return 0;
	return ret;
}

/* Signs what B holds (BATCH messages) and commits.  HL_EINVAL: nothing
 * signed, the transaction still open for the caller to roll back;
 * HL_ESTORE: the commit failed. */
static int commit_batch(hl_store *store, struct hl_msg_batch *b, unsigned long batch,
			char *err)
{
	char why[256];
	if (hl_msg_batch_flush(b, why, sizeof(why)) < 0) {
		snprintf(err, HL_STATION_ERR_LEN,
			 "%s (the %lu message(s) of this batch were not queued)", why, batch);
		return HL_EINVAL;
	}
	hl_msg_batch_drop(b);
	if (hl_store_commit(store) < 0) {
		snprintf(err, HL_STATION_ERR_LEN, "store: %s", hl_store_errmsg(store));
		return HL_ESTORE;
	}
	return 0;
}

/* Many messages, the bodies from Q->next, HL_QUEUE_PER_COMMIT to a
 * commit: a run of them is signed at once (chain/queue.h's batch). */
static int queue_many(struct hl_station *st, const hl_peer_conf *pc, struct hl_queue *q,
		      char *err)
{
	char why[256];
	struct hl_outgoing o = *q->msg;
	unsigned long n = 0, batch = 0;
	uint8_t (*ids)[HL_MSG_ID_LEN] = xmalloc(HL_QUEUE_PER_COMMIT * sizeof(*ids));
	bool in_tx = false;
	struct hl_msg_batch chain;
	int ret = 0;

	hl_msg_batch_init(&chain);
	while (q->next(q->user, &o) == 1) {
		n++;
		if (!in_tx) {
			if (hl_store_begin(st->store) < 0) {
				snprintf(err, HL_STATION_ERR_LEN, "store: %s", hl_store_errmsg(st->store));
				ret = HL_ESTORE;
				goto out;
			}
			in_tx = true;
			hl_msg_batch_init(&chain); /* valid for one transaction */
		}
		if (hl_msg_queue_text_batch(st->store, st->me, pc, &o, &chain, ids[batch], why,
					    sizeof(why)) < 0) {
			snprintf(err, HL_STATION_ERR_LEN,
				 "line %lu: %s (the %lu message(s) of this batch were not queued)", n,
				 why, batch);
			ret = HL_EINVAL;
			goto out;
		}
		if (++batch < HL_QUEUE_PER_COMMIT)
			continue;
		in_tx = false;
		if ((ret = commit_batch(st->store, &chain, batch, err)) < 0) {
			in_tx = ret == HL_EINVAL;  /* not committed: rolled back below */
			goto out;
		}
		q->queued(q->user, ids, batch);
		batch = 0;
		/* The daemon sends this batch while we sign the next (else it
		 * waits for its store poll, or for the end). */
		if (!(q->flags & HL_QUEUE_QUIET))
			hl_control_poke(st->dir);
	}
	if (in_tx) {
		in_tx = false;
		if ((ret = commit_batch(st->store, &chain, batch, err)) < 0) {
			in_tx = ret == HL_EINVAL;
			goto out;
		}
		q->queued(q->user, ids, batch);
	}
out:
	if (in_tx)
		hl_store_rollback(st->store);
	hl_msg_batch_drop(&chain);
	free(ids);
	return ret;
}

int hl_station_queue(struct hl_station *st, const char *dir, struct hl_queue *q, char *err)
{
	int ret, by = 0;
	q->stream = -1;
	q->by_daemon = false;
	if (q->next) {
		const hl_peer_conf *pc = NULL;
		if ((ret = open_for(st, dir, q->peer, &pc, err)) < 0)
			return ret;
		ret = queue_many(st, pc, q, err);
	} else {
		if ((q->flags & HL_QUEUE_DAEMON) && q->msg->id)
			by = hand_to_daemon(dir, q->peer, q->msg, q->flags & HL_QUEUE_WAIT, &q->stream);
		q->by_daemon = by == 1;
		ret = q->by_daemon ? 0 : queue_direct(st, dir, q, by < 0, err);
		if (ret == 0 && q->msg->id)
			memcpy(q->id, q->msg->id, HL_MSG_ID_LEN);
		if (q->by_daemon)
			return 0;
	}
	if (!(q->flags & HL_QUEUE_QUIET))
		hl_control_poke(dir);
	return ret;
}
