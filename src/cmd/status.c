/* cmd/status.c — `hotline status`: each link's state.
 *
 * SYNOPSIS
 *   hotline [-d DIR] status [--json]
 *
 * With the daemon running, asks it over the control socket and prints the
 * station's name and fingerprint, then one line per peer: name, state,
 * since when, round-trip time, last error.  Without it, says so and lists
 * the configured peers as "daemon not running", and exits 3 (as an LSB
 * init script's status does for "not running"), so a monitor can tell a
 * station whose daemon is down from one that is up (0) and from a failure
 * (1).  --json prints the control response's station and peers, with
 * "daemon": true or false (see docs/protocol.md section 6), and exits the
 * same way.  The status is one structure (station/status.h), filled by the
 * daemon or here from the station, and written by hl_status_print. */
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cmd/cmd.h"
#include "station/control_client.h"
#include "station/control_proto.h"
#include "station/station.h"
#include "station/status.h"
#include "util/err.h"
#include "util/text.h"

static void usage(FILE *f)
{
	fprintf(f, "usage: hotline [-d DIR] status [--json]\n\n"
		   "Shows this station's fingerprint and each peer link's state, as the\n"
		   "running daemon sees it; without a daemon, what station.conf and the store\n"
		   "say.\n\n"
		   "  --json      one JSON object: \"daemon\", \"station\", \"peers\"\n"
		   "  -h, --help  this text\n\n"
		   "Exit status: 0 the daemon runs, 3 it does not (the status is printed all\n"
		   "the same), 1 failure, 2 usage error.\n");
}

/* No daemon: what station.conf, the keys and the store say. */
static int offline(struct hl_ctx *ctx, bool json)
{
	char err[HL_STATION_ERR_LEN];
	struct hl_station st;
	struct hl_status s;
	/* A station whose identity or store does not open (or a busy store)
	 * still gets its status. */
	if (hl_station_open(&st, ctx->dir, HL_OPEN_PUBLIC | HL_OPEN_STORE_RO | HL_OPEN_BEST_EFFORT,
			    err) < 0) {
		hl_station_close(&st);
		return hl_fail("status", "the daemon is not running, and %s", err);
	}
	hl_status_offline(&st, &s);
	hl_status_print(&s, json);
	hl_status_free(&s);
	hl_station_close(&st);
	return HL_EXIT_NOT_RUNNING;
}

int status_main(struct hl_ctx *ctx, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	bool json = false;
	json_t *req = NULL, *resp = NULL;
	int c, ret;

	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'j':
			json = true;
			break;
		case 'h':
			usage(stdout);
			return HL_EXIT_OK;
		default:
			return hl_usage_error("status", "unknown option");
		}
	}
	if ((ret = hl_args_done(ctx, "status", argc, argv)) != HL_EXIT_OK)
		return ret;

	req = hl_ctl_request_json(&(struct hl_ctl_request){ .cmd = HL_CTL_STATUS });
	ret = hl_control_call(ctx->dir, req, HL_CONTROL_TIMEOUT_MS, &resp);
	json_decref(req);
	if (ret == HL_ENODAEMON)
		return offline(ctx, json);
	if (ret < 0)
		return hl_fail("status", "asking the daemon of '%s': %s", ctx->dir,
			       ret > -HL_E_BASE ? strerror(-ret) : hl_strerror(ret));
	if (!json_is_true(json_object_get(resp, "ok"))) {
		char e[400];
		const char *msg = json_string_value(json_object_get(resp, "error"));
		msg = msg ? msg : "-";
		hl_sanitize(msg, strlen(msg), e, sizeof(e), 0);
		ret = hl_fail("status", "the daemon refused: %s", e);
		json_decref(resp);
		return ret;
	}
	struct hl_status s;
	hl_status_from_json(resp, &s);
	json_decref(resp);
	hl_status_print(&s, json);
	hl_status_free(&s);
	return HL_EXIT_OK;
}
