/* fuzz_control.c — the control socket's requests and RFC 3339 times
 * (station/control_proto.c) on arbitrary input.
 *
 * Oracles: a parsed request is one of the table's commands and its
 * "cmd" names it; written back to JSON (what the commands send) and
 * parsed again, it is the same request, field for field; a refused line
 * gets an error that JSON can carry back, on one line unless it quotes an
 * unknown command (the answer's encoder escapes that); a parsed time
 * formats and parses back to itself. */
#include <stdlib.h>
#include <string.h>

#include "station/control_proto.h"
#include "util/err.h"

#define CHECK(x) do { if (!(x)) abort(); } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool same_str(const char *a, const char *b)
{
	return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

static bool same(const struct hl_ctl_request *a, const struct hl_ctl_request *b)
{
	if (a->cmd != b->cmd || !same_str(a->peer, b->peer))
		return false;
	switch (a->cmd) {
	case HL_CTL_SEND: {
		const struct hl_ctl_send *x = &a->u.send, *y = &b->u.send;
		return strcmp(x->hex, y->hex) == 0 && memcmp(x->id, y->id, sizeof(x->id)) == 0 &&
		       x->precedence == y->precedence && same_str(x->subject, y->subject) &&
		       x->body_len == y->body_len && memcmp(x->body, y->body, x->body_len) == 0 &&
		       x->wait == y->wait;
	}
	case HL_CTL_CHECK:
		return a->u.check.timeout_ms == b->u.check.timeout_ms &&
		       a->u.check.mode == b->u.check.mode;
	case HL_CTL_STAGE: {
		const struct hl_ctl_stage *x = &a->u.stage, *y = &b->u.stage;
		return strcmp(x->hex, y->hex) == 0 && memcmp(x->id, y->id, sizeof(x->id)) == 0 &&
		       x->part == y->part && x->size == y->size &&
		       x->precedence == y->precedence && same_str(x->path, y->path);
	}
	case HL_CTL_CALL:
		return a->u.call.precedence == b->u.call.precedence &&
		       a->u.call.ring_timeout_ms == b->u.call.ring_timeout_ms;
	default:
		return true;
	}
}

static void request(const uint8_t *data, size_t size)
{
	char err[HL_CONTROL_ERR_LEN];
	struct hl_ctl_request req, again;
	int ret = hl_ctl_request_parse((const char *)data, size, &req, err);
	if (ret < 0) {
		CHECK(req.json == NULL);
		CHECK(err[0] != 0);
		json_t *e = json_string(err);
		CHECK(e);
		json_decref(e);
		CHECK(!strchr(err, '\n') || strncmp(err, "unknown command '", 17) == 0);
		return;
	}
	const char *name = hl_ctl_cmd_name(req.cmd);
	CHECK(name && json_is_object(req.json));
	CHECK(strcmp(json_string_value(json_object_get(req.json, "cmd")), name) == 0);
	json_t *o = hl_ctl_request_json(&req);
	CHECK(o);   /* what was parsed from JSON is JSON again */
	char *line = json_dumps(o, JSON_COMPACT);
	CHECK(line);
	json_decref(o);
	CHECK(hl_ctl_request_parse(line, strlen(line), &again, err) == 0);
	CHECK(same(&req, &again));
	hl_ctl_request_clear(&again);
	hl_ctl_request_clear(&req);
	free(line);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	request(data, size);

	char *s = malloc(size + 1);
	memcpy(s, data, size);
	s[size] = 0;
	time_t t;
	if (hl_rfc3339_parse(s, &t) == 0 && t >= 0 && t < (time_t)253402300799) {
		char again[HL_RFC3339_LEN];
		time_t t2;
		hl_rfc3339((uint64_t)t * 1000, again);
		CHECK(hl_rfc3339_parse(again, &t2) == 0 && t2 == t);
	}
	free(s);
	return 0;
}
