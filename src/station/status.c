/* station/status.c — the status structure (status.h): filled without a
 * daemon, turned into JSON and back, and written for people. */
#include "station/status.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "crypto/keys.h"
#include "util/mem.h"
#include "util/text.h"
#include "util/timefmt.h"

/* ---- the structure ---- */

void hl_status_init(struct hl_status *s, bool daemon)
{
	memset(s, 0, sizeof(*s));
	s->daemon = daemon;
	s->more = json_object();
}

struct hl_status_peer *hl_status_add_peer(struct hl_status *s)
{
	s->peers = xrealloc(s->peers, (s->npeers + 1) * sizeof(*s->peers));
	struct hl_status_peer *e = &s->peers[s->npeers++];
	memset(e, 0, sizeof(*e));
	e->rtt_ms = -1;
	e->more = json_object();
	return e;
}

void hl_status_set(char **field, const char *v)
{
	free(*field);
	*field = v ? xstrdup(v) : NULL;
}

static void peer_free(struct hl_status_peer *e)
{
	char **strs[] = { &e->name, &e->fingerprint, &e->address, &e->state, &e->since,
			  &e->dialed_by, &e->last_error, &e->last_error_at, &e->session_since };
	for (size_t i = 0; i < sizeof(strs) / sizeof(strs[0]); i++)
		free(*strs[i]);
	json_decref(e->more);
}

void hl_status_free(struct hl_status *s)
{
	for (size_t i = 0; i < s->npeers; i++)
		peer_free(&s->peers[i]);
	free(s->peers);
	free(s->name);
	free(s->fingerprint);
	free(s->listen);
	free(s->started_at);
	json_decref(s->more);
	memset(s, 0, sizeof(*s));
}

/* ---- JSON, both ways ---- */

static json_t *str_or_null(const char *s)
{
	return s ? json_string(s) : json_null();
}

/* Appends MORE's keys to O, in their order. */
static json_t *with_more(json_t *o, json_t *more)
{
	const char *k;
	json_t *v;
	json_object_foreach(more, k, v)
		json_object_set(o, k, v);
	return o;
}

static json_t *peer_json(const struct hl_status *s, const struct hl_status_peer *e)
{
	json_t *o = json_pack("{s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o}",
			      "name", str_or_null(e->name),
			      "fingerprint", str_or_null(e->fingerprint),
			      "address", str_or_null(e->address),
			      "state", str_or_null(e->state),
			      "since", str_or_null(e->since),
			      "dialed_by", str_or_null(e->dialed_by),
			      "last_error", str_or_null(e->last_error),
			      "last_error_at", str_or_null(e->last_error_at),
			      "rtt_ms", e->rtt_ms >= 0 ? json_integer(e->rtt_ms) : json_null());
	if (s->daemon) {
		json_object_set_new(o, "sessions", json_integer(e->sessions));
		json_object_set_new(o, "session_since", str_or_null(e->session_since));
	}
	return with_more(o, e->more);
}

json_t *hl_status_json(const struct hl_status *s, bool answer)
{
	json_t *peers = json_array();
	for (size_t i = 0; i < s->npeers; i++)
		json_array_append_new(peers, peer_json(s, &s->peers[i]));
	json_t *station = json_pack("{s:o, s:o, s:o, s:o, s:o}",
				    "name", str_or_null(s->name),
				    "fingerprint", str_or_null(s->fingerprint),
				    "listen", str_or_null(s->listen),
				    "pid", s->pid ? json_integer(s->pid) : json_null(),
				    "started_at", str_or_null(s->started_at));
	with_more(station, s->more);
	return json_pack("{s:b, s:o, s:o}", answer ? "ok" : "daemon", answer ? 1 : s->daemon,
			 "station", station, "peers", peers);
}

static const char *jstr(json_t *obj, const char *key)
{
	json_t *v = json_object_get(obj, key);
	return json_is_string(v) ? json_string_value(v) : NULL;
}

static json_int_t jint(json_t *obj, const char *key, json_int_t dflt)
{
	json_t *v = json_object_get(obj, key);
	return json_is_integer(v) ? json_integer_value(v) : dflt;
}

/* Every key of O not among CORE (NULL-terminated) into MORE. */
static void keep_more(json_t *o, const char *const *core, json_t *more)
{
	const char *k;
	json_t *v;
	json_object_foreach(o, k, v) {
		size_t i = 0;
		while (core[i] && strcmp(core[i], k) != 0)
			i++;
		if (!core[i])
			json_object_set(more, k, v);
	}
}

static void peer_from_json(json_t *p, struct hl_status_peer *e)
{
	static const char *const core[] = { "name", "fingerprint", "address", "state", "since",
					    "dialed_by", "last_error", "last_error_at", "rtt_ms",
					    "sessions", "session_since", NULL };
	hl_status_set(&e->name, jstr(p, "name"));
	hl_status_set(&e->fingerprint, jstr(p, "fingerprint"));
	hl_status_set(&e->address, jstr(p, "address"));
	hl_status_set(&e->state, jstr(p, "state"));
	hl_status_set(&e->since, jstr(p, "since"));
	hl_status_set(&e->dialed_by, jstr(p, "dialed_by"));
	hl_status_set(&e->last_error, jstr(p, "last_error"));
	hl_status_set(&e->last_error_at, jstr(p, "last_error_at"));
	hl_status_set(&e->session_since, jstr(p, "session_since"));
	e->rtt_ms = jint(p, "rtt_ms", -1);
	e->sessions = jint(p, "sessions", 0);
	keep_more(p, core, e->more);
}

void hl_status_from_json(json_t *resp, struct hl_status *s)
{
	static const char *const core[] = { "name", "fingerprint", "listen", "pid", "started_at",
					    NULL };
	json_t *st = json_object_get(resp, "station");
	size_t i;
	json_t *p;
	hl_status_init(s, true);
	hl_status_set(&s->name, jstr(st, "name"));
	hl_status_set(&s->fingerprint, jstr(st, "fingerprint"));
	hl_status_set(&s->listen, jstr(st, "listen"));
	hl_status_set(&s->started_at, jstr(st, "started_at"));
	s->pid = jint(st, "pid", 0);
	if (json_is_object(st))
		keep_more(st, core, s->more);
	json_array_foreach(json_object_get(resp, "peers"), i, p)
		peer_from_json(p, hl_status_add_peer(s));
}

/* ---- without a daemon ---- */

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

void hl_status_offline(const struct hl_station *st, struct hl_status *s)
{
	const hl_station_conf *conf = st->conf;
	char fp[HL_FP_TEXT_LEN];
	hl_status_init(s, false);
	hl_status_set(&s->name, conf->name);
	if (st->me) {
		uint8_t f[HL_FP_LEN];
		hl_signer_fingerprint(st->me, f);
		hl_fingerprint_text(f, fp);
		hl_status_set(&s->fingerprint, fp);
	}
	hl_status_set(&s->listen, conf->listen[0] ? conf->listen : NULL);
	for (size_t i = 0; i < conf->npeers; i++) {
		const hl_peer_conf *pc = &conf->peers[i];
		struct hl_status_peer *e = hl_status_add_peer(s);
		hl_fingerprint_text(pc->fingerprint, fp);
		hl_status_set(&e->name, pc->name);
		hl_status_set(&e->fingerprint, fp);
		hl_status_set(&e->address, pc->address[0] ? pc->address : NULL);
		json_object_set_new(e->more, "paths", offline_paths(conf, pc, st->store));
	}
}

/* ---- for people ---- */

/* Peer text (names, errors) is shown sanitised even though the daemon
 * sanitised it: the terminal is ours to protect. */
static const char *clean(const char *s, char *buf, size_t cap)
{
	if (!s)
		return "-";
	hl_sanitize(s, strlen(s), buf, cap, 0);
	return buf;
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

/* With the daemon: the station, then a line or more per peer. */
static void print_daemon(const struct hl_status *s)
{
	char a[400], b[400], since[64], rtt[32];

	printf("station %s: daemon running (pid %lld), listening on %s\n",
	       clean(s->name, a, sizeof(a)), s->pid ? (long long)s->pid : -1LL,
	       s->listen ? clean(s->listen, b, sizeof(b)) : "nothing");
	printf("fingerprint %s\n", clean(s->fingerprint, a, sizeof(a)));
	print_pickup(json_object_get(s->more, "email"));
	print_call(json_object_get(s->more, "call"));
	if (s->npeers == 0) {
		printf("no peers pinned (add one with 'hotline peer add')\n");
		return;
	}
	printf("%-20s %-12s %-22s %-8s %s\n", "PEER", "STATE", "SINCE", "RTT", "LAST ERROR");
	for (size_t i = 0; i < s->npeers; i++) {
		const struct hl_status_peer *p = &s->peers[i];
		if (p->rtt_ms >= 0)
			snprintf(rtt, sizeof(rtt), p->rtt_ms < 1 ? "<1 ms" : "%lld ms",
				 (long long)p->rtt_ms);
		else
			snprintf(rtt, sizeof(rtt), "-");
		fmt_since(p->since, since, sizeof(since));
		char err[512] = "-";
		if (p->last_error) {
			char at[64];
			fmt_since(p->last_error_at, at, sizeof(at));
			snprintf(err, sizeof(err), "%s, at %s", clean(p->last_error, b, sizeof(b)), at);
		}
		printf("%-20s %-12s %-22s %-8s %s\n", clean(p->name, a, sizeof(a)),
		       p->state ? p->state : "?", since, rtt, err);
		print_delivery(json_object_get(p->more, "delivery"));
		print_paths(json_object_get(p->more, "paths"));
		print_keys(json_object_get(p->more, "keys"));
		print_check(json_object_get(p->more, "check"));
	}
}

/* Without it: what station.conf and the store say. */
static void print_offline(const struct hl_status *s)
{
	char a[400];
	printf("station %s: daemon not running\n", clean(s->name, a, sizeof(a)));
	printf("fingerprint %s\n", s->fingerprint ? s->fingerprint : "- (identity.key does not load)");
	for (size_t i = 0; i < s->npeers; i++) {
		printf("%-20s daemon not running\n", clean(s->peers[i].name, a, sizeof(a)));
		json_t *paths = json_object_get(s->peers[i].more, "paths");
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

void hl_status_print(const struct hl_status *s, bool json)
{
	if (json) {
		json_t *out = hl_status_json(s, false);
		char *text = json_dumps(out, JSON_INDENT(2) | JSON_ENSURE_ASCII);
		printf("%s\n", text);
		free(text);
		json_decref(out);
	} else if (s->daemon) {
		print_daemon(s);
	} else {
		print_offline(s);
	}
}
