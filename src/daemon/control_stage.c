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
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "daemon/daemon_int.h"
#include "daemon/service.h"
#include "deliver/stage.h"
#include "msg/message.h"
#include "util/err.h"

/* How often staged files are looked at while the command writes them
 * (it writes a MiB in about 1.5 ms; a look costs one fstat). */
#define STAGE_POLL_MS 5

static json_t *answer(const char *err)
{
	return err ? json_pack("{s:b, s:s}", "ok", 0, "error", err) : json_pack("{s:b}", "ok", 1);
}

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
		uv_timer_stop(&d->stage_timer);
}

json_t *hl_stage_control(struct hl_daemon *d, json_t *req)
{
	const char *name = json_string_value(json_object_get(req, "peer"));
	const char *hex = json_string_value(json_object_get(req, "id"));
	const char *path = json_string_value(json_object_get(req, "path"));
	json_t *jprec = json_object_get(req, "precedence");
	json_t *jpart = json_object_get(req, "part");
	json_t *jsize = json_object_get(req, "size");
	uint8_t id[HL_MSG_ID_LEN];
	size_t id_len = 0;
	enum hl_precedence prec = HL_PREC_ROUTINE;
	struct hl_peer *p;
	char expect[64];

	if (!name || !path)
		return answer("\"peer\" and \"path\" (strings) are required");
	if (!hex || strlen(hex) != 2 * HL_MSG_ID_LEN ||
	    sodium_hex2bin(id, sizeof(id), hex, strlen(hex), NULL, &id_len, NULL) != 0 ||
	    id_len != HL_MSG_ID_LEN)
		return answer("\"id\" (32 hex digits) is required");
	if (!json_is_integer(jpart) || json_integer_value(jpart) < 1 ||
	    json_integer_value(jpart) > HL_MAX_ATTACHMENTS)
		return answer("\"part\" is 1 to 64");
	if (!json_is_integer(jsize) || json_integer_value(jsize) < 2)
		return answer("\"size\" is a byte count");
	if (jprec && (!json_is_string(jprec) ||
		      hl_precedence_parse(json_string_value(jprec), &prec) < 0))
		return answer("\"precedence\" is flash, immediate, priority or routine");
	/* Only the file the command writes for this very message and part. */
	snprintf(expect, sizeof(expect), "out/%s/%d", hex, (int)json_integer_value(jpart) - 1);
	if (strcmp(path, expect) != 0)
		return answer("\"path\" is not out/<id>/<part - 1>");
	for (p = d->peers; p && strcmp(p->conf.name, name) != 0; p = p->next)
		;
	if (!p || !p->engine || !p->session || !d->store)
		return answer("no session with that peer");
	/* Its ITEM may be stored already (a small file copies fast): then
	 * it goes the usual way. */
	bool used = false;
	if (hl_store_message_exists(d->store, id, &used) < 0 || used)
		return answer("already queued");
	uint64_t now = uv_now(&d->loop);
	int ret = hl_engine_stage(p->engine, id, (unsigned)json_integer_value(jpart), prec, path,
				  (uint64_t)json_integer_value(jsize), now);
	if (ret < 0)
		return answer(hl_strerror(ret));
	if (!uv_is_active((uv_handle_t *)&d->stage_timer))
		uv_timer_start(&d->stage_timer, on_stage_timer, STAGE_POLL_MS, STAGE_POLL_MS);
	hl_engine_pump(p->engine, now);
	hl_conn_flush(p->session);
	return answer(NULL);
}

static void on_closed(uv_handle_t *h)
{
	(void)h;
}

static int stage_start(struct hl_daemon *d, char *err, size_t errlen)
{
	(void)err;
	(void)errlen;
	/* Never acknowledged, so never needed: a staging file outlives only
	 * a daemon that died. */
	hl_stage_clean_dir(d->dir);
	uv_timer_init(&d->loop, &d->stage_timer);
	d->stage_timer.data = d;
	return 0;
}

static void stage_stop(struct hl_daemon *d)
{
	uv_timer_stop(&d->stage_timer);
	uv_close((uv_handle_t *)&d->stage_timer, on_closed);
}

const struct hl_service hl_stage_service = {
	.name = "staging",
	.start = stage_start,
	.stop = stage_stop,
};
