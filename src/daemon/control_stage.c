/* daemon/control_stage.c — the control request "stage" (docs/protocol.md
 * section 6) and the timer that follows staged files as they grow.
 *
 * `hotline send -a FILE` tells the running daemon, before it copies FILE
 * into out/<id>/<i>, which peer the message is for and at which
 * precedence: the daemon then streams the copy's bytes to the peer while
 * the command is still copying and hashing (deliver/stage.h).  The request
 * is a hint: the command does not wait for the answer, and whatever goes
 * wrong (no session, too many staged, the command dies) the message is
 * delivered as without it once its ITEM is stored. */
#include <stdio.h>
#include <string.h>

#include "station/control_proto.h"
#include "daemon/daemon_int.h"
#include "daemon/service.h"
#include "deliver/stage.h"
#include "msg/message.h"
#include "util/err.h"
#include "util/mem.h"

/* How often staged files are looked at while the command writes them
 * (it writes a MiB in about 1.5 ms; a look costs one fstat). */
#define STAGE_POLL_MS 5

static void on_stage_timer(uv_timer_t *t)
{
	struct hl_daemon *d = t->data;
	bool any = false;
	uint64_t now = uv_now(&d->loop);
	for (struct hl_peer *p = d->peers; p; p = p->next) {
		if (!p->engine || !p->session || !hl_engine_staging(p->engine))
			continue;
		any = true;
		hl_engine_pump(p->engine, now);
		hl_conn_flush(p->session);
	}
	if (!any)
		uv_timer_stop(d->stage_timer);
}

/* REQ's fields are checked (control_proto.c: the path is the one the
 * command writes for this very message and part); the peer is looked up
 * here: without a session with it the hint is simply not taken. */
json_t *hl_stage_control(struct hl_daemon *d, const struct hl_ctl_request *req,
			 struct hl_peer *unused, struct hl_control_client *cl)
{
	const struct hl_ctl_stage *s = &req->u.stage;
	struct hl_peer *p = hl_peer_named(d, req->peer);
	(void)unused;
	(void)cl;
	if (!p || !p->engine || !p->session || !d->store)
		return hl_ctl_error("no session with that peer");
	/* Its ITEM may be stored already (a small file copies fast): then
	 * it goes the usual way. */
	bool used = false;
	if (hl_store_message_exists(d->store, s->id, &used) < 0 || used)
		return hl_ctl_error("already queued");
	uint64_t now = uv_now(&d->loop);
	int ret = hl_engine_stage(p->engine, s->id, s->part, s->precedence, s->path, s->size, now);
	if (ret < 0)
		return hl_ctl_error(hl_strerror(ret));
	if (d->stage_timer && !uv_is_active((uv_handle_t *)d->stage_timer))
		uv_timer_start(d->stage_timer, on_stage_timer, STAGE_POLL_MS, STAGE_POLL_MS);
	hl_engine_pump(p->engine, now);
	hl_conn_flush(p->session);
	return hl_ctl_ok();
}

static void on_closed(uv_handle_t *h)
{
	free(h);
}

static int stage_start(struct hl_daemon *d, char *err, size_t errlen)
{
	(void)err;
	(void)errlen;
	/* Never acknowledged, so never needed: a staging file outlives only
	 * a daemon that died. */
	hl_stage_clean_dir(d->dir);
	d->stage_timer = xcalloc(1, sizeof(*d->stage_timer));
	uv_timer_init(&d->loop, d->stage_timer);
	d->stage_timer->data = d;
	return 0;
}

static void stage_stop(struct hl_daemon *d)
{
	uv_timer_t *t = d->stage_timer;
	d->stage_timer = NULL;
	uv_close((uv_handle_t *)t, on_closed);
}

const struct hl_service hl_stage_service = {
	.name = "staging",
	.start = stage_start,
	.stop = stage_stop,
};
