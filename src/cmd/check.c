/* cmd/check.c — `hotline check PEER`: test the line now.
 *
 * SYNOPSIS
 *   hotline [-d DIR] check PEER [--operator] [--timeout SECONDS] [--json]
 *
 * Asks the daemon (a control request "check") to make a line check to PEER
 * at once and waits until it is decided: the peer station's signed answer
 * came (exit 0, with the round-trip time: our check stored, sent, stored
 * and answered there, the answer stored here), or the timeout passed (exit
 * 1, saying whether the link was up).  The check is recorded in both
 * chains like a scheduled one, but raises no alarm: the operator asking is
 * watching.  Needs the daemon.  The timeout is PEER's CheckTimeout unless
 * given, and the mode PEER's CheckMode: with `CheckMode = operator` (or
 * --operator) the check asks for a person at the peer (decided by
 * `hotline answer` there, or "no person" at the timeout); --machine asks
 * only for the station's answer whatever CheckMode says. */
#include <getopt.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/cmd.h"
#include "conf/config.h"
#include "station/control_client.h"
#include "station/control_proto.h"
#include "msg/item.h"
#include "util/err.h"
#include "util/text.h"

static void usage(FILE *f)
{
	fprintf(f, "usage: hotline [-d DIR] check PEER [--operator | --machine] [--timeout SECONDS] [--json]\n\n"
		   "Test the line to PEER now: a signed check, answered by the peer station\n"
		   "and, when PEER's CheckMode is operator, by a person there.\n"
		   "Prints the round-trip time; exit 1 when no answer came in time.\n\n"
		   "  -o, --operator   wait for a person at PEER to answer ('hotline answer'),\n"
		   "                   whatever PEER's CheckMode says\n"
		   "  -m, --machine    the station's answer is enough, whatever CheckMode says\n"
		   "  -t, --timeout S  how long to wait (default: the peer's CheckTimeout)\n"
		   "      --json       the outcome as one JSON object\n"
		   "  -h, --help       this text\n");
}

static const char *jstr(json_t *o, const char *k)
{
	const char *s = json_string_value(json_object_get(o, k));
	return s ? s : "";
}

/* check's options and operand (parse_args). */
struct check_args {
	bool json;
	int mode;               /* -1: the peer's CheckMode */
	long timeout_s;         /* 0: the peer's CheckTimeout */
	const char *peer;
};

/* Parses ARGV into A: -1 to go on, else the exit status (--help: 0). */
static int parse_args(int argc, char **argv, struct check_args *a)
{
	static const struct option opts[] = {
		{ "timeout", required_argument, NULL, 't' },
		{ "operator", no_argument, NULL, 'o' },
		{ "machine", no_argument, NULL, 'm' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	while ((c = getopt_long(argc, argv, "t:omh", opts, NULL)) != -1) {
		switch (c) {
		case 'o':
		case 'm':
			if (a->mode >= 0 && a->mode != (c == 'o' ? HL_CHECK_OPERATOR : HL_CHECK_MACHINE))
				return hl_usage_error("check", "--operator and --machine exclude each other");
			a->mode = c == 'o' ? HL_CHECK_OPERATOR : HL_CHECK_MACHINE;
			break;
		case 't': {
			char *end;
			a->timeout_s = strtol(optarg, &end, 10);
			if (!*optarg || *end || a->timeout_s < 1 || a->timeout_s > 3600)
				return hl_usage_error("check", "bad --timeout '%s' (seconds, 1 to 3600)",
						      optarg);
			break;
		}
		case 'j':
			a->json = true;
			break;
		case 'h':
			usage(stdout);
			return HL_EXIT_OK;
		default:
			return hl_usage_error("check", "bad option");
		}
	}
	if (optind >= argc)
		return hl_usage_error("check", "which peer? (hotline peer list)");
	if (optind + 1 < argc)
		return hl_usage_error("check", "unexpected argument '%s'", argv[optind + 1]);
	a->peer = argv[optind];
	return -1;
}

/* --json: the daemon's answer RESP as the outcome, its error kept only when
 * the check failed. */
static void print_json(json_t *resp)
{
	json_t *o = json_deep_copy(resp);
	json_object_del(o, "ok");
	json_object_del(o, "error");
	if (!json_is_true(json_object_get(resp, "ok")) && json_object_get(resp, "error"))
		json_object_set(o, "error", json_object_get(resp, "error"));
	char *text = json_dumps(o, JSON_INDENT(2) | JSON_ENSURE_ASCII);
	printf("%s\n", text);
	free(text);
	json_decref(o);
}

int check_main(struct hl_ctx *ctx, int argc, char **argv)
{
	struct check_args a = { .mode = -1 };
	int ret;
	char cerr[HL_CONF_ERR_LEN];
	hl_station_conf *conf = NULL;
	json_t *req = NULL, *resp = NULL;

	if ((ret = parse_args(argc, argv, &a)) >= 0)
		return ret;
	if ((ret = hl_need_station(ctx, "check")) != HL_EXIT_OK)
		return ret;

	if (hl_conf_load(ctx->dir, &conf, cerr) < 0)
		return hl_fail("check", "%s", cerr);
	const hl_peer_conf *pc = hl_conf_peer_by_name(conf, a.peer);
	if (!pc) {
		char q[100];
		hl_sanitize(a.peer, strlen(a.peer), q, sizeof(q), 0);
		ret = hl_fail("check", "no peer named '%s' (hotline peer list)", q);
		goto out;
	}
	uint64_t timeout_ms = a.timeout_s ? (uint64_t)a.timeout_s * 1000 : pc->check_timeout_ms;
	bool operator = (a.mode < 0 ? (int)pc->check_mode : a.mode) == HL_CHECK_OPERATOR;
	struct hl_ctl_request r = { .cmd = HL_CTL_CHECK, .peer = a.peer };
	r.u.check.timeout_ms = (uint32_t)timeout_ms;
	r.u.check.mode = operator ? HL_CHECK_OPERATOR : HL_CHECK_MACHINE;
	req = hl_ctl_request_json(&r);
	/* The daemon answers when the check is decided: its timeout, plus a
	 * margin for the commit and the reply. */
	ret = hl_control_call(ctx->dir, req, (int)(timeout_ms + 5000), &resp);
	if (ret == HL_ENODAEMON) {
		ret = hl_fail("check", "the daemon of %s is not running (start it with 'hotline run'): a line check needs it",
			      ctx->dir);
		goto out;
	}
	if (ret < 0) {
		ret = hl_fail("check", "asking the daemon: %s", hl_strerror(ret));
		goto out;
	}
	if (a.json)
		print_json(resp);
	if (!json_is_true(json_object_get(resp, "ok"))) {
		char e[512];
		hl_sanitize(jstr(resp, "error"), strlen(jstr(resp, "error")), e, sizeof(e), 0);
		ret = hl_fail("check", "%s", e[0] ? e : "the check failed");
		goto out;
	}
	if (!a.json) {
		json_t *rtt = json_object_get(resp, "rtt_ms");
		printf("%s%s answered in %lld ms (check %s)\n", operator ? "a person at " : "",
		       pc->name,
		       json_is_integer(rtt) ? (long long)json_integer_value(rtt) : -1LL,
		       jstr(resp, "id"));
	}
	ret = HL_EXIT_OK;
out:
	json_decref(req);
	json_decref(resp);
	hl_conf_free(conf);
	return ret;
}
