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
 * same way. */
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cmd/cmd.h"
#include "conf/config.h"
#include "crypto/signer.h"
#include "daemon/control_client.h"
#include "daemon/control_proto.h"
#include "store/store.h"
#include "util/err.h"
#include "util/fsutil.h"
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

/* Peer text (names, errors) is shown sanitised even though the daemon
 * sanitised it: the terminal is ours to protect. */
static const char *clean(const char *s, char *buf, size_t cap)
{
	if (!s)
		return "-";
	hl_sanitize(s, strlen(s), buf, cap, 0);
	return buf;
}

static const char *jstr(json_t *obj, const char *key)
{
	json_t *v = json_object_get(obj, key);
	return json_is_string(v) ? json_string_value(v) : NULL;
}

/* "12:03:04 (5m ago)" for an RFC 3339 time; "-" for none. */
static void fmt_since(const char *rfc, char *out, size_t cap)
{
	time_t t;
	if (!rfc || hl_rfc3339_parse(rfc, &t) < 0) {
		snprintf(out, cap, "-");
		return;
	}
	long ago = (long)(time(NULL) - t);
	if (ago < 0)
		ago = 0;
	char when[32];
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(when, sizeof(when), ago < 86400 ? "%H:%M:%SZ" : "%Y-%m-%d %H:%MZ", &tm);
	if (ago < 60)
		snprintf(out, cap, "%s (%lds ago)", when, ago);
	else if (ago < 3600)
		snprintf(out, cap, "%s (%ldm ago)", when, ago / 60);
	else if (ago < 86400)
		snprintf(out, cap, "%s (%ldh ago)", when, ago / 3600);
	else
		snprintf(out, cap, "%s (%ldd ago)", when, ago / 86400);
}

static void print_delivery(json_t *dl);
static void print_check(json_t *ck);
static void print_paths(json_t *paths);

/* A peer that rotated its keys (docs/rotation.md): its fingerprint now. */
static void print_keys(json_t *keys)
{
	char a[200];
	const char *fp = json_string_value(json_object_get(keys, "fingerprint"));
	json_t *seq = json_object_get(keys, "rotated_at_seq");
	const char *why = json_string_value(json_object_get(keys, "reason"));
	if (!fp)
		return;
	printf("  keys   rotated at position %lld of its chain%s; fingerprint now %s\n",
	       json_is_integer(seq) ? (long long)json_integer_value(seq) : -1LL,
	       why && strcmp(why, "compromise") == 0 ? " (it suspected a compromise)" : "",
	       clean(fp, a, sizeof(a)));
}

/* The mail pickup, when it has something to say (docs/bundle.md 8). */
static void print_pickup(json_t *em)
{
	char a[400], when[64];
	json_t *q = json_object_get(em, "quarantined");
	if (jstr(em, "state") && strcmp(jstr(em, "state"), "failing") == 0) {
		fmt_since(jstr(em, "retry_at"), when, sizeof(when));
		printf("mail pickup FAILING: %s; next try %s\n",
		       jstr(em, "last_error") ? clean(jstr(em, "last_error"), a, sizeof(a)) : "?", when);
	}
	if (json_is_integer(q) && json_integer_value(q) > 0)
		printf("mail pickup: %lld entr%s of Maildir/new moved to the quarantine since the daemon "
		       "started (each has a .why file)\n", (long long)json_integer_value(q),
		       json_integer_value(q) == 1 ? "y" : "ies");
}

/* The call on the line (docs/voice.md): one line, or nothing. */
static void print_call(json_t *call)
{
	char peer[96], prec[16] = "";
	const char *state = jstr(call, "state"), *p = jstr(call, "precedence");
	if (!json_is_object(call) || !state || !p)
		return;
	clean(jstr(call, "peer") ? jstr(call, "peer") : "?", peer, sizeof(peer));
	for (size_t i = 0; p[i] && i < sizeof(prec) - 1; i++)
		prec[i] = (char)(p[i] >= 'a' && p[i] <= 'z' ? p[i] - 32 : p[i]);
	if (strcmp(state, "ringing_in") == 0)
		printf("call: %s call from %s ringing (hotline call answer %s)\n", prec, peer, peer);
	else if (strcmp(state, "ringing_out") == 0)
		printf("call: calling %s (%s)\n", peer, prec);
	else
		printf("call: %s call %s %s, media over %s\n", prec,
		       strcmp(jstr(call, "direction") ? jstr(call, "direction") : "", "in") == 0 ? "from" : "to",
		       peer, jstr(call, "path") ? jstr(call, "path") : "udp");
}

static void print_human(json_t *resp)
{
	json_t *st = json_object_get(resp, "station");
	json_t *peers = json_object_get(resp, "peers");
	char a[400], b[400], since[64], rtt[32];
	json_t *pid = json_object_get(st, "pid");

	printf("station %s: daemon running (pid %lld), listening on %s\n",
	       clean(jstr(st, "name"), a, sizeof(a)),
	       json_is_integer(pid) ? (long long)json_integer_value(pid) : -1LL,
	       jstr(st, "listen") ? clean(jstr(st, "listen"), b, sizeof(b)) : "nothing");
	printf("fingerprint %s\n", clean(jstr(st, "fingerprint"), a, sizeof(a)));
	print_pickup(json_object_get(st, "email"));
	print_call(json_object_get(st, "call"));
	if (json_array_size(peers) == 0) {
		printf("no peers pinned (add one with 'hotline peer add')\n");
		return;
	}
	printf("%-20s %-12s %-22s %-8s %s\n", "PEER", "STATE", "SINCE", "RTT", "LAST ERROR");
	size_t i;
	json_t *p;
	json_array_foreach(peers, i, p) {
		json_t *r = json_object_get(p, "rtt_ms");
		if (json_is_integer(r))
			snprintf(rtt, sizeof(rtt), json_integer_value(r) < 1 ? "<1 ms" : "%lld ms",
				 (long long)json_integer_value(r));
		else
			snprintf(rtt, sizeof(rtt), "-");
		fmt_since(jstr(p, "since"), since, sizeof(since));
		char err[512] = "-";
		if (jstr(p, "last_error")) {
			char at[64];
			fmt_since(jstr(p, "last_error_at"), at, sizeof(at));
			snprintf(err, sizeof(err), "%s, at %s", clean(jstr(p, "last_error"), b, sizeof(b)),
				 at);
		}
		printf("%-20s %-12s %-22s %-8s %s\n", clean(jstr(p, "name"), a, sizeof(a)),
		       jstr(p, "state") ? jstr(p, "state") : "?", since, rtt, err);
		print_delivery(json_object_get(p, "delivery"));
		print_paths(json_object_get(p, "paths"));
		print_keys(json_object_get(p, "keys"));
		print_check(json_object_get(p, "check"));
	}
}

static json_int_t jint(json_t *obj, const char *key, json_int_t dflt)
{
	json_t *v = json_object_get(obj, key);
	return json_is_integer(v) ? json_integer_value(v) : dflt;
}

/* One line per path: tcp and email (docs/bundle.md, "By email"). */
static void print_paths(json_t *paths)
{
	char when[64], b[400];
	if (!json_is_object(paths))
		return;
	json_t *tcp = json_object_get(paths, "tcp");
	json_t *em = json_object_get(paths, "email");
	json_int_t queued = jint(tcp, "queued", -1);
	if (json_is_object(tcp)) {
		const char *st = jstr(tcp, "state");
		fmt_since(jstr(tcp, "since"), when, sizeof(when));
		printf("  tcp    %-4s since %s", st ? st : "?", when);
		if (queued >= 0)
			printf(", %lld unacknowledged", (long long)queued);
		if (st && strcmp(st, "down") == 0) {
			fmt_since(jstr(tcp, "last_success"), when, sizeof(when));
			printf(", last up %s", when);
		}
		printf("\n");
	}
	if (!json_is_object(em))
		return;
	if (!json_is_true(json_object_get(em, "configured"))) {
		printf("  email  off (no [Email] section, or no Email for this peer)\n");
		return;
	}
	const char *st = jstr(em, "state");
	printf("  email  %s", st ? st : "?");
	if (json_is_true(json_object_get(em, "active")))
		printf(" (fallback active)");
	if (json_is_true(json_object_get(em, "mailing")))
		printf(" (mailing now)");
	fmt_since(jstr(em, "last_success"), when, sizeof(when));
	printf(", %lld mail%s sent, last %s", (long long)jint(em, "mails", 0),
	       jint(em, "mails", 0) == 1 ? "" : "s", when);
	json_int_t unmailed = jint(em, "unmailed", -1);
	if (unmailed >= 0)
		printf(", %lld unmailed", (long long)unmailed);
	if (jstr(em, "last_error")) {
		fmt_since(jstr(em, "last_error_at"), when, sizeof(when));
		printf("; last error at %s: %s", when, clean(jstr(em, "last_error"), b, sizeof(b)));
	}
	printf("\n");
}

/* Line checks: the schedule, the last check, an alarm, and the peer's
 * checks that wait for a person here. */
static void print_check(json_t *ck)
{
	char b[400], when[64], line[700];
	size_t n = 0;
	if (!json_is_object(ck))
		return;
	json_t *alarm = json_object_get(ck, "alarm");
	if (json_is_object(alarm)) {
		const char *kind = jstr(alarm, "alarm");
		if (kind && strcmp(kind, "equivocation") == 0) {
			printf("  ALARM equivocation: the peer signed two different items at one position "
			       "(%lld case%s kept as evidence)\n",
			       (long long)json_integer_value(json_object_get(alarm, "count")),
			       json_integer_value(json_object_get(alarm, "count")) == 1 ? "" : "s");
		} else {
			fmt_since(jstr(alarm, "at"), when, sizeof(when));
			printf("  ALARM %s: %s at %s (check %s)\n", kind ? kind : "?",
			       kind && strcmp(kind, "no_connection") == 0 ? "no connection"
			       : kind && strcmp(kind, "no_person") == 0 ? "the station answered, no person did"
			       : "connected, but no answer", when, clean(jstr(alarm, "id"), b, sizeof(b)));
		}
	}
	const char *sched = jstr(ck, "schedule");
	json_t *last = json_object_get(ck, "last");
	if (sched)
		n += (size_t)snprintf(line + n, sizeof(line) - n, "  checks %s (%s)", sched,
				      jstr(ck, "mode") ? jstr(ck, "mode") : "?");
	if (json_is_object(last) && n < sizeof(line)) {
		json_t *rtt = json_object_get(last, "rtt_ms");
		char r[32] = "";
		if (json_is_integer(rtt))
			snprintf(r, sizeof(r), ", %lld ms", (long long)json_integer_value(rtt));
		fmt_since(jstr(last, "at"), when, sizeof(when));
		n += (size_t)snprintf(line + n, sizeof(line) - n, "%slast check %s: %s%s",
				      n ? "; " : "  ", when, jstr(last, "result") ? jstr(last, "result") : "?", r);
	}
	if (sched && jstr(ck, "next") && n < sizeof(line)) {
		fmt_since(jstr(ck, "next"), when, sizeof(when));
		/* "(0s ago)" reads oddly for a future time: keep the clock part */
		char *paren = strchr(when, ' ');
		if (paren)
			*paren = '\0';
		n += (size_t)snprintf(line + n, sizeof(line) - n, "; next %s", when);
	}
	if (n)
		printf("%s\n", line);
	size_t i;
	json_t *pc;
	json_array_foreach(json_object_get(ck, "pending_answer"), i, pc) {
		fmt_since(jstr(pc, "at"), when, sizeof(when));
		printf("  LINE CHECK %s waits for a person since %s: answer with 'hotline answer'\n",
		       clean(jstr(pc, "id"), b, sizeof(b)), when);
	}
	if (json_is_true(json_object_get(ck, "pending_more")))
		printf("  (more of its checks wait for a person: 'hotline answer' lists them all)\n");
}

/* A second line for a peer with traffic in progress or a delivery problem. */
static void print_delivery(json_t *dl)
{
	static const char *const precs[] = { "flash", "immediate", "priority", "routine" };
	char line[512] = "", b[400];
	size_t n = 0;
	if (!json_is_object(dl))
		return;
	json_t *q = json_object_get(dl, "queued");
	for (size_t i = 0; i < 4; i++) {
		json_int_t v = json_integer_value(json_object_get(q, precs[i]));
		if (v > 0)
			n += (size_t)snprintf(line + n, sizeof(line) - n, "%s%lld %s",
					      n ? ", " : "  sending: ", (long long)v, precs[i]);
	}
	json_int_t partial = json_integer_value(json_object_get(dl, "incoming_partial"));
	if (partial > 0 && n < sizeof(line))
		n += (size_t)snprintf(line + n, sizeof(line) - n, "%s%lld message%s arriving",
				      n ? "; " : "  ", (long long)partial, partial > 1 ? "s" : "");
	const char *err = json_string_value(json_object_get(dl, "error"));
	if (err && n < sizeof(line))
		n += (size_t)snprintf(line + n, sizeof(line) - n, "%sdelivery: %s", n ? "; " : "  ",
				      clean(err, b, sizeof(b)));
	/* the peer's items being refused for now (messages.md section 4) */
	const char *refusing = json_string_value(json_object_get(dl, "refusing"));
	if (refusing && n < sizeof(line))
		n += (size_t)snprintf(line + n, sizeof(line) - n, "%srefusing its items for now: %s",
				      n ? "; " : "  ", clean(refusing, b, sizeof(b)));
	if (n)
		printf("%s\n", line);
}

/* No daemon: the paths as the store tells them (what waits for the peer),
 * the runtime fields null. */
static json_t *offline_paths(const hl_station_conf *conf, const hl_peer_conf *pc, hl_store *st)
{
	struct hl_out_summary s;
	int64_t id;
	bool email = conf->email.line && pc->email[0];
	json_t *queued = json_null();
	if (st && hl_store_peer_find(st, pc->signing_key, &id) == 0 &&
	    hl_store_out_summary(st, id, 0, &s) == 0)
		queued = json_integer((json_int_t)s.unacked);
	else if (st)
		queued = json_integer(0);   /* never exchanged anything */
	json_t *tcp = json_pack("{s:n, s:n, s:n, s:O, s:n, s:n}", "state", "since", "last_success",
				"queued", queued, "last_error", "last_error_at");
	json_t *em = json_pack("{s:b, s:n, s:O}", "configured", email, "state", "queued", queued);
	json_decref(queued);
	return json_pack("{s:o, s:o}", "tcp", tcp, "email", em);
}

/* No daemon: what station.conf says, every peer "daemon not running". */
static int offline(struct hl_ctx *ctx, bool json)
{
	char cerr[HL_CONF_ERR_LEN] = "", fp[HL_FP_TEXT_LEN];
	hl_station_conf *conf = NULL;
	hl_signer *id = NULL;
	hl_store *store = NULL;
	json_t *out = NULL;
	int ret = HL_EXIT_FAIL;

	if (hl_conf_load(ctx->dir, &conf, cerr) < 0) {
		ret = hl_fail("status", "the daemon is not running, and %s",
			      cerr[0] ? cerr : "station.conf does not load");
		goto out;
	}
	char *path = hl_path_join(ctx->dir, HL_IDENTITY_FILE);
	json_t *station_fp = json_null();
	if (hl_signer_load(path, &id) == 0) {
		uint8_t f[HL_FP_LEN];
		hl_signer_fingerprint(id, f);
		hl_fingerprint_text(f, fp);
		station_fp = json_string(fp);
	}
	free(path);
	/* The store answers what waits for each peer; a station without one
	 * (or a busy one) still gets its status. */
	if (hl_store_open_readonly(ctx->dir, &store) < 0)
		store = NULL;
	json_t *peers = json_array();
	for (size_t i = 0; i < conf->npeers; i++) {
		const hl_peer_conf *pc = &conf->peers[i];
		hl_fingerprint_text(pc->fingerprint, fp);
		json_array_append_new(peers, json_pack(
			"{s:s, s:s, s:o, s:n, s:n, s:n, s:n, s:n, s:n, s:o}",
			"name", pc->name, "fingerprint", fp,
			"address", pc->address[0] ? json_string(pc->address) : json_null(),
			"state", "since", "dialed_by", "last_error", "last_error_at", "rtt_ms",
			"paths", offline_paths(conf, pc, store)));
	}
	out = json_pack("{s:b, s:{s:s, s:o, s:o, s:n, s:n}, s:o}", "daemon", 0,
			"station", "name", conf->name, "fingerprint", station_fp,
			"listen", conf->listen[0] ? json_string(conf->listen) : json_null(),
			"pid", "started_at", "peers", peers);
	if (json) {
		char *text = json_dumps(out, JSON_INDENT(2) | JSON_ENSURE_ASCII);
		printf("%s\n", text);
		free(text);
	} else {
		char a[400];
		printf("station %s: daemon not running\n", clean(conf->name, a, sizeof(a)));
		printf("fingerprint %s\n", json_is_string(station_fp) ? json_string_value(station_fp)
								  : "- (identity.key does not load)");
		for (size_t i = 0; i < conf->npeers; i++) {
			printf("%-20s daemon not running\n", clean(conf->peers[i].name, a, sizeof(a)));
			json_t *paths = json_object_get(json_array_get(peers, i), "paths");
			json_int_t q = jint(json_object_get(paths, "tcp"), "queued", -1);
			json_t *em = json_object_get(paths, "email");
			if (q >= 0)
				printf("  %lld item%s unacknowledged (they go by TCP, or by email when the\n"
				       "  link stays down, once the daemon runs)\n", (long long)q,
				       q == 1 ? "" : "s");
			printf("  email  %s\n", json_is_true(json_object_get(em, "configured"))
						  ? "configured" : "off");
		}
	}
	ret = HL_EXIT_NOT_RUNNING;
out:
	json_decref(out);
	hl_store_close(store);
	hl_signer_free(id);
	hl_conf_free(conf);
	return ret;
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
		const char *msg = jstr(resp, "error");
		ret = hl_fail("status", "the daemon refused: %s", clean(msg, e, sizeof(e)));
		json_decref(resp);
		return ret;
	}
	if (json) {
		json_t *out = json_pack("{s:b, s:O, s:O}", "daemon", 1,
					"station", json_object_get(resp, "station"),
					"peers", json_object_get(resp, "peers"));
		char *text = json_dumps(out, JSON_INDENT(2) | JSON_ENSURE_ASCII);
		printf("%s\n", text);
		free(text);
		json_decref(out);
	} else {
		print_human(resp);
	}
	json_decref(resp);
	return HL_EXIT_OK;
}
