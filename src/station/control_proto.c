/* station/control_proto.c — the control socket's protocol (control_proto.h):
 * addressing, each request's fields parsed from JSON and written back to
 * it, the answers' common shapes.  Every error text names the field and is
 * safe to send back (the JSON encoder escapes what it quotes).  No I/O. */
#include "station/control_proto.h"

#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "msg/item.h"
#include "util/err.h"
#include "util/text.h"

int hl_control_sockaddr(int dirfd, struct sockaddr_un *sa)
{
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	int n = snprintf(sa->sun_path, sizeof(sa->sun_path), "/proc/self/fd/%d/control.sock", dirfd);
	if (dirfd < 0 || n < 0 || (size_t)n >= sizeof(sa->sun_path))
		return HL_EINVAL;
	return 0;
}

/* ---- the fields ---- */

#define MANUAL_TIMEOUT_MAX_MS 3600000u

static int fail(char err[static HL_CONTROL_ERR_LEN], const char *text)
{
	snprintf(err, HL_CONTROL_ERR_LEN, "%s", text);
	return HL_EINVAL;
}

/* "id": 32 hex digits, kept as given (HEX) and decoded (ID). */
static int get_id(json_t *o, char hex[static 2 * HL_MSG_ID_LEN + 1], uint8_t id[static HL_MSG_ID_LEN],
		  char err[static HL_CONTROL_ERR_LEN])
{
	const char *s = json_string_value(json_object_get(o, "id"));
	size_t n = 0;
	if (!s || strlen(s) != 2 * HL_MSG_ID_LEN ||
	    sodium_hex2bin(id, HL_MSG_ID_LEN, s, 2 * HL_MSG_ID_LEN, NULL, &n, NULL) != 0 ||
	    n != HL_MSG_ID_LEN)
		return fail(err, "\"id\" (32 hex digits) is required");
	memcpy(hex, s, 2 * HL_MSG_ID_LEN + 1);
	return 0;
}

/* "precedence", optional: a name (msg/item.h); STRICT refuses a value that
 * is not a string, else such a value counts as absent. */
static int get_precedence(json_t *o, bool strict, enum hl_precedence *out,
			  char err[static HL_CONTROL_ERR_LEN])
{
	json_t *j = json_object_get(o, "precedence");
	*out = HL_PREC_ROUTINE;
	if (!j || (!strict && !json_is_string(j)))
		return 0;
	if (json_is_string(j) && hl_precedence_parse(json_string_value(j), out) == 0)
		return 0;
	if (!strict) {
		snprintf(err, HL_CONTROL_ERR_LEN, "unknown precedence '%.32s'", json_string_value(j));
		return HL_EINVAL;
	}
	return fail(err, "\"precedence\" is flash, immediate, priority or routine");
}

static int parse_send(json_t *o, struct hl_ctl_request *r, char err[static HL_CONTROL_ERR_LEN])
{
	struct hl_ctl_send *s = &r->u.send;
	json_t *jbody = json_object_get(o, "body");
	json_t *jwait = json_object_get(o, "wait");
	json_t *jsubj = json_object_get(o, "subject");
	int ret;
	if (!r->peer)
		return fail(err, "\"peer\" (a string) is required");
	if ((ret = get_id(o, s->hex, s->id, err)) < 0)
		return ret;
	if (!json_is_string(jbody))
		return fail(err, "\"body\" (a string) is required");
	if (jwait && !json_is_boolean(jwait))
		return fail(err, "\"wait\" is true or false");
	if ((ret = get_precedence(o, true, &s->precedence, err)) < 0)
		return ret;
	/* The subject travels as a C string: no NUL inside. */
	if (jsubj && (!json_is_string(jsubj) ||
		      strlen(json_string_value(jsubj)) != json_string_length(jsubj)))
		return fail(err, "\"subject\" is a string without NUL");
	s->subject = json_string_value(jsubj);
	s->body = (const uint8_t *)json_string_value(jbody);
	s->body_len = json_string_length(jbody);
	s->wait = json_is_true(jwait);
	return 0;
}

static int parse_check(json_t *o, struct hl_ctl_request *r, char err[static HL_CONTROL_ERR_LEN])
{
	struct hl_ctl_check *c = &r->u.check;
	json_t *jt = json_object_get(o, "timeout_ms");
	const char *mode = json_string_value(json_object_get(o, "mode"));
	if (!r->peer)
		return fail(err, "\"peer\" (a string) is required");
	c->timeout_ms = 0;
	if (jt) {
		if (!json_is_integer(jt) || json_integer_value(jt) < 1 ||
		    json_integer_value(jt) > (json_int_t)MANUAL_TIMEOUT_MAX_MS)
			return fail(err, "\"timeout_ms\" must be 1 to 3600000");
		c->timeout_ms = (uint32_t)json_integer_value(jt);
	}
	/* No "mode" (or not a string): the peer's CheckMode. */
	c->mode = -1;
	if (mode && strcmp(mode, "operator") == 0)
		c->mode = HL_CHECK_OPERATOR;
	else if (mode && strcmp(mode, "machine") == 0)
		c->mode = HL_CHECK_MACHINE;
	else if (mode)
		return fail(err, "\"mode\" is machine or operator");
	return 0;
}

static int parse_stage(json_t *o, struct hl_ctl_request *r, char err[static HL_CONTROL_ERR_LEN])
{
	struct hl_ctl_stage *s = &r->u.stage;
	json_t *jpart = json_object_get(o, "part");
	json_t *jsize = json_object_get(o, "size");
	char expect[64];
	int ret;
	s->path = json_string_value(json_object_get(o, "path"));
	if (!r->peer || !s->path)
		return fail(err, "\"peer\" and \"path\" (strings) are required");
	if ((ret = get_id(o, s->hex, s->id, err)) < 0)
		return ret;
	if (!json_is_integer(jpart) || json_integer_value(jpart) < 1 ||
	    json_integer_value(jpart) > HL_MAX_ATTACHMENTS)
		return fail(err, "\"part\" is 1 to 64");
	if (!json_is_integer(jsize) || json_integer_value(jsize) < 2)
		return fail(err, "\"size\" is a byte count");
	if ((ret = get_precedence(o, true, &s->precedence, err)) < 0)
		return ret;
	s->part = (unsigned)json_integer_value(jpart);
	s->size = (uint64_t)json_integer_value(jsize);
	/* Only the file the command writes for this very message and part. */
	snprintf(expect, sizeof(expect), "out/%s/%u", s->hex, s->part - 1);
	if (strcmp(s->path, expect) != 0)
		return fail(err, "\"path\" is not out/<id>/<part - 1>");
	return 0;
}

static int parse_call(json_t *o, struct hl_ctl_request *r, char err[static HL_CONTROL_ERR_LEN])
{
	struct hl_ctl_call *c = &r->u.call;
	json_t *jt = json_object_get(o, "ring_timeout_ms");
	if (!r->peer)
		return fail(err, "call: no peer");
	c->ring_timeout_ms = 0;
	if (json_is_integer(jt) && json_integer_value(jt) > 0)
		c->ring_timeout_ms = (uint64_t)json_integer_value(jt);
	return get_precedence(o, false, &c->precedence, err);
}

/* "reason": "routine" (the default) or "compromise" (msg/item.h). */
static int parse_rotate(json_t *o, struct hl_ctl_request *r, char err[static HL_CONTROL_ERR_LEN])
{
	const char *reason = json_string_value(json_object_get(o, "reason"));
	r->u.rotate.reason = 0;
	if (reason && strcmp(reason, "compromise") == 0)
		r->u.rotate.reason = 1;
	else if (reason && strcmp(reason, "routine") != 0)
		return fail(err, "\"reason\" is routine or compromise");
	return 0;
}

typedef int parse_fn(json_t *o, struct hl_ctl_request *r, char err[static HL_CONTROL_ERR_LEN]);

/* The protocol's table: each request's name and the parser of its fields
 * (none: it has no fields, or only an optional "peer"). */
static const struct {
	const char *name;
	parse_fn *parse;
} requests[HL_CTL_COUNT] = {
	[HL_CTL_STATUS] = { "status", NULL },
	[HL_CTL_RELOAD] = { "reload", NULL },
	[HL_CTL_POKE] = { "poke", NULL },
	[HL_CTL_WATCH] = { "watch", NULL },
	[HL_CTL_SEND] = { "send", parse_send },
	[HL_CTL_CHECK] = { "check", parse_check },
	[HL_CTL_STAGE] = { "stage", parse_stage },
	[HL_CTL_CALL] = { "call", parse_call },
	[HL_CTL_CALL_ANSWER] = { "call_answer", NULL },
	[HL_CTL_CALL_HANGUP] = { "call_hangup", NULL },
	[HL_CTL_ROTATE] = { "rotate", parse_rotate },
};

const char *hl_ctl_cmd_name(enum hl_ctl_cmd cmd)
{
	return (unsigned)cmd < HL_CTL_COUNT ? requests[cmd].name : NULL;
}

/* ---- the line ---- */

/* The envelope: one line, a JSON object, a "cmd" string of 1 to 32 bytes. */
static int parse_envelope(const char *buf, size_t len, json_t **out,
			  char err[static HL_CONTROL_ERR_LEN])
{
	json_error_t jerr;
	json_t *root = NULL;
	if (len > 0 && buf[len - 1] == '\n')
		len--;
	if (len >= HL_CONTROL_MAX_LINE) {
		snprintf(err, HL_CONTROL_ERR_LEN, "request longer than %d bytes", HL_CONTROL_MAX_LINE);
		return HL_ETOOBIG;
	}
	if (memchr(buf, '\n', len))
		return fail(err, "request spans more than one line");
	root = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!root) {
		/* jansson's message names a position, never echoes the input. */
		char clean[HL_CONTROL_ERR_LEN - 32];
		hl_sanitize(jerr.text, strnlen(jerr.text, sizeof(jerr.text)), clean, sizeof(clean), 0);
		snprintf(err, HL_CONTROL_ERR_LEN, "request is not JSON: %s", clean);
		return HL_EINVAL;
	}
	*out = root;
	if (!json_is_object(root))
		return fail(err, "request is not a JSON object");
	json_t *c = json_object_get(root, "cmd");
	if (!json_is_string(c))
		return fail(err, "request has no \"cmd\" string");
	size_t slen = json_string_length(c);
	if (slen == 0 || slen > HL_CONTROL_CMD_MAX || strlen(json_string_value(c)) != slen) {
		snprintf(err, HL_CONTROL_ERR_LEN, "\"cmd\" must be 1 to %d characters",
			 HL_CONTROL_CMD_MAX);
		return HL_EINVAL;
	}
	return 0;
}

int hl_ctl_request_parse(const char *buf, size_t len, struct hl_ctl_request *req,
			 char err[static HL_CONTROL_ERR_LEN])
{
	json_t *root = NULL;
	memset(req, 0, sizeof(*req));
	err[0] = 0;
	int ret = parse_envelope(buf, len, &root, err);
	if (ret < 0)
		goto out;
	const char *name = json_string_value(json_object_get(root, "cmd"));
	unsigned i = 0;
	while (i < HL_CTL_COUNT && strcmp(requests[i].name, name) != 0)
		i++;
	if (i == HL_CTL_COUNT) {
		/* NAME: at most 32 bytes of UTF-8 without NUL; the answer's
		 * JSON escapes it. */
		snprintf(err, HL_CONTROL_ERR_LEN, "unknown command '%s'", name);
		ret = HL_EUNSUPP;
		goto out;
	}
	req->cmd = (enum hl_ctl_cmd)i;
	req->peer = json_string_value(json_object_get(root, "peer"));
	if (requests[i].parse && (ret = requests[i].parse(root, req, err)) < 0)
		goto out;
	req->json = root;
	return 0;
out:
	json_decref(root);
	memset(req, 0, sizeof(*req));
	return ret;
}

void hl_ctl_request_clear(struct hl_ctl_request *req)
{
	json_decref(req->json);
	memset(req, 0, sizeof(*req));
}

/* ---- building ---- */

/* Sets KEY to V (taken); false when V is NULL (a string not UTF-8). */
static bool put(json_t *o, const char *key, json_t *v)
{
	return v && json_object_set_new(o, key, v) == 0;
}

static bool build_fields(json_t *o, const struct hl_ctl_request *r)
{
	switch (r->cmd) {
	case HL_CTL_SEND: {
		const struct hl_ctl_send *s = &r->u.send;
		return put(o, "id", json_string(s->hex)) &&
		       put(o, "precedence", json_string(hl_precedence_name(s->precedence))) &&
		       (!s->subject || put(o, "subject", json_string(s->subject))) &&
		       put(o, "body", json_stringn((const char *)s->body, s->body_len)) &&
		       put(o, "wait", json_boolean(s->wait));
	}
	case HL_CTL_CHECK: {
		const struct hl_ctl_check *c = &r->u.check;
		return (!c->timeout_ms || put(o, "timeout_ms", json_integer(c->timeout_ms))) &&
		       (c->mode < 0 ||
			put(o, "mode", json_string(c->mode == HL_CHECK_OPERATOR ? "operator" : "machine")));
	}
	case HL_CTL_STAGE: {
		const struct hl_ctl_stage *s = &r->u.stage;
		return put(o, "id", json_string(s->hex)) &&
		       put(o, "precedence", json_string(hl_precedence_name(s->precedence))) &&
		       put(o, "part", json_integer(s->part)) &&
		       put(o, "size", json_integer((json_int_t)s->size)) &&
		       put(o, "path", json_string(s->path));
	}
	case HL_CTL_CALL: {
		const struct hl_ctl_call *c = &r->u.call;
		return put(o, "precedence", json_string(hl_precedence_name(c->precedence))) &&
		       (!c->ring_timeout_ms ||
			put(o, "ring_timeout_ms", json_integer((json_int_t)c->ring_timeout_ms)));
	}
	case HL_CTL_ROTATE:
		return put(o, "reason", json_string(r->u.rotate.reason ? "compromise" : "routine"));
	default:
		return true;
	}
}

json_t *hl_ctl_request_json(const struct hl_ctl_request *req)
{
	const char *name = hl_ctl_cmd_name(req->cmd);
	json_t *o = name ? json_pack("{s:s}", "cmd", name) : NULL;
	if (o && req->peer && !put(o, "peer", json_string(req->peer)))
		goto fail;
	if (o && !build_fields(o, req))
		goto fail;
	return o;
fail:
	json_decref(o);
	return NULL;
}

/* ---- answers ---- */

json_t *hl_ctl_ok(void)
{
	return json_pack("{s:b}", "ok", 1);
}

json_t *hl_ctl_ok_id(const char *id)
{
	return json_pack("{s:b, s:s}", "ok", 1, "id", id);
}

json_t *hl_ctl_error(const char *text)
{
	json_t *o = json_pack("{s:b, s:s}", "ok", 0, "error", text);
	/* Text that is not UTF-8 (it should never be): still an error. */
	return o ? o : json_pack("{s:b, s:s}", "ok", 0, "error", "(unprintable error)");
}
