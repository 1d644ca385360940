/* daemon/control_send.c — the control request "send" (docs/protocol.md
 * section 6): `hotline send` hands a text message to the running daemon,
 * which has the station's configuration, identity and store open already.
 * The message is queued inside the burst's transaction (commit.c's group
 * commit) and answered once that commit is durable; then it goes out at
 * once.  A command run without a daemon, or with attachments, writes the
 * store itself (cmd/send.c): this is only the quick way in.
 *
 * The client names the message (a random id): should the answer be lost,
 * the client looks for that id in the store and queues it itself only if
 * it is not there; ids are unique, so the message is never queued twice.
 * Every "ok": false answer means nothing was queued. */
#include <stdio.h>
#include <string.h>

#include "daemon/commit.h"
#include "station/control_proto.h"
#include "daemon/daemon_int.h"
#include "chain/queue.h"
#include "util/err.h"

/* REQ's fields are checked (control_proto.c), P is the peer it names,
 * with an engine (control.c's table). */
json_t *hl_send_control(struct hl_daemon *d, const struct hl_ctl_request *req, struct hl_peer *p,
			struct hl_control_client *cl)
{
	const struct hl_ctl_send *s = &req->u.send;
	struct hl_outgoing o = {
		.precedence = s->precedence, .subject = s->subject ? s->subject : "",
		.body = s->body, .body_len = s->body_len, .id = s->id,
	};
	char err[512], msg[700];

	/* Inside the burst: a savepoint, so that a failure here undoes this
	 * message only, never the packets the burst holds. */
	int ret = hl_commit_join(d);
	if (ret == 0)
		ret = hl_store_savepoint(d->store);
	if (ret < 0) {
		snprintf(msg, sizeof(msg), "store: %s", hl_store_errmsg(d->store));
		return hl_ctl_error(msg);
	}
	uint8_t got[HL_MSG_ID_LEN];
	ret = hl_msg_queue_text(d->store, d->id, &p->conf, &o, got, err, sizeof(err));
	if (ret == 0 && (ret = hl_store_release(d->store)) < 0)
		snprintf(err, sizeof(err), "store: %s", hl_store_errmsg(d->store));
	if (ret < 0) {
		hl_store_rollback_to(d->store);
		return hl_ctl_error(err);
	}
	hl_control_wait_commit(cl, s->hex, s->wait);
	return NULL;
}
