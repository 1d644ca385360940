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
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "daemon/commit.h"
#include "daemon/daemon_int.h"
#include "msg/message.h"
#include "util/err.h"
#include "util/text.h"

static json_t *refuse(const char *msg)
{
	return json_pack("{s:b, s:s}", "ok", 0, "error", msg);
}

json_t *hl_send_control(struct hl_daemon *d, json_t *req, struct hl_control_client *cl)
{
	const char *name = json_string_value(json_object_get(req, "peer"));
	const char *hex = json_string_value(json_object_get(req, "id"));
	json_t *jprec = json_object_get(req, "precedence");
	json_t *jsubj = json_object_get(req, "subject");
	json_t *jbody = json_object_get(req, "body");
	json_t *jwait = json_object_get(req, "wait");
	struct hl_outgoing o = { .precedence = HL_PREC_ROUTINE, .subject = "" };
	uint8_t id[HL_MSG_ID_LEN];
	size_t id_len = 0;
	char err[512], msg[700];
	struct hl_peer *p;

	if (!name)
		return refuse("\"peer\" (a string) is required");
	if (!hex || strlen(hex) != 2 * HL_MSG_ID_LEN ||
	    sodium_hex2bin(id, sizeof(id), hex, strlen(hex), NULL, &id_len, NULL) != 0 ||
	    id_len != HL_MSG_ID_LEN)
		return refuse("\"id\" (32 hex digits) is required");
	if (!json_is_string(jbody))
		return refuse("\"body\" (a string) is required");
	if (jwait && !json_is_boolean(jwait))
		return refuse("\"wait\" is true or false");
	if (jprec) {
		enum hl_precedence prec;
		if (!json_is_string(jprec) || hl_precedence_parse(json_string_value(jprec), &prec) < 0)
			return refuse("\"precedence\" is flash, immediate, priority or routine");
		o.precedence = prec;
	}
	if (jsubj) {
		/* The subject travels as a C string: no NUL inside. */
		if (!json_is_string(jsubj) ||
		    strlen(json_string_value(jsubj)) != json_string_length(jsubj))
			return refuse("\"subject\" is a string without NUL");
		o.subject = json_string_value(jsubj);
	}
	o.body = (const uint8_t *)json_string_value(jbody);
	o.body_len = json_string_length(jbody);
	o.id = id;
	for (p = d->peers; p && strcmp(p->conf.name, name) != 0; p = p->next)
		;
	if (!p) {
		char clean[80];
		hl_sanitize(name, strnlen(name, 64), clean, sizeof(clean), 0);
		snprintf(msg, sizeof(msg), "no peer named '%s'", clean);
		return refuse(msg);
	}
	if (!p->engine || !d->store)
		return refuse("delivery is not running for this peer");

	/* Inside the burst: a savepoint, so that a failure here undoes this
	 * message only, never the records the burst holds. */
	int ret = hl_commit_join(d);
	if (ret == 0)
		ret = hl_store_savepoint(d->store);
	if (ret < 0) {
		snprintf(msg, sizeof(msg), "store: %s", hl_store_errmsg(d->store));
		return refuse(msg);
	}
	uint8_t got[HL_MSG_ID_LEN];
	ret = hl_msg_queue_text(d->store, d->id, &p->conf, &o, got, err, sizeof(err));
	if (ret == 0 && (ret = hl_store_release(d->store)) < 0)
		snprintf(err, sizeof(err), "store: %s", hl_store_errmsg(d->store));
	if (ret < 0) {
		hl_store_rollback_to(d->store);
		return refuse(err);
	}
	hl_control_wait_commit(cl, hex, json_is_true(jwait));
	return NULL;
}
