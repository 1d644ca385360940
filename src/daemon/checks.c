/* daemon/checks.c — line checks in the daemon: the schedule (CheckEvery,
 * CheckAt), deciding each check at its deadline, the station's "no person"
 * answers in operator mode, alarms (log, `watch`, AlarmCommand), the
 * control request "check" (`hotline check PEER`), and what `status` shows.
 *
 * One timer serves every peer: it is armed for the earliest of the peers'
 * next scheduled checks and the open checks' deadlines (at most
 * MAX_SLEEP_MS away, so a wall clock that jumps is noticed).  When it
 * fires, tick() makes the checks that are due and decides the ones whose
 * deadline passed, writing in the daemon's shared transaction; the group
 * commit (commit.c) then commits, and only after that commit are alarms
 * acted on (alarm.c, hl_alarm_after_commit): nothing is alarmed that is not recorded.
 *
 * THE LIFE OF ONE OF OUR CHECKS (a checks row, dir OUT)
 *   made      a CHECK item (link = 1 when a session was up), stored,
 *             sent by the delivery engine like any item;
 *   answered  the engine records the peer's ANSWER: in machine mode the
 *             station's answer decides it (ok); in operator mode only a
 *             person's does (ok), or a "no person" answer (no_person);
 *   deadline  still pending at created_at + CheckTimeout: no_person when
 *             the station answered (operator mode), else no_answer when a
 *             session with the peer is up now, else no_connection.  Each of
 *             the three raises an alarm (a manual check's outcome goes to
 *             the `hotline check` that asked, without an alarm).
 * A late answer is still recorded (its time in the row), the result stays.
 *
 * THE PEER'S CHECKS (dir IN): the engine answers at once for the station.
 * In operator mode the check then waits for a person (`hotline answer`,
 * which writes the store itself); at its deadline the daemon answers
 * "no person" instead, unless a person's answer is in the store.
 *
 *   `status` shows a peer's alarm from the store: its last scheduled
 *   check's failure, or any equivocation evidence. */
#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon/alarm.h"
#include "daemon/commit.h"
#include "station/control_proto.h"
#include "daemon/daemon_int.h"
#include "daemon/schedule.h"
#include "daemon/service.h"
#include "deliver/author.h"
#include "util/err.h"
#include "util/log.h"
#include "util/mem.h"
#include "util/text.h"
#include "util/timefmt.h"

#define MAX_SLEEP_MS 60000
#define CHECK_LOG_BURST 10            /* lines about a peer's operator checks, then ... */
#define CHECK_LOG_PER_MINUTE 10       /* ... this many a minute */

static void arm(struct hl_daemon *d);

static void id_hex(const uint8_t id[static 16], char out[static 33])
{
	hl_hex(id, 16, out);
}

static struct hl_peer *peer_by_id(struct hl_daemon *d, int64_t peer_id)
{
	for (struct hl_peer *p = d->peers; p; p = p->next)
		if (p->engine && hl_engine_peer_id(p->engine) == peer_id)
			return p;
	return NULL;
}

static struct hl_author_link link_of(struct hl_peer *p)
{
	struct hl_author_link l = {
		.st = p->d->store, .me = p->d->id, .peer_id = hl_engine_peer_id(p->engine),
	};
	memcpy(l.peer_sign, p->conf.signing_key, 32);
	return l;
}

/* ---- the watch events and the "check" request's answer ---- */

static json_t *check_json(struct hl_peer *p, const struct hl_check_row *c)
{
	char hex[33], at[HL_RFC3339_LEN];
	id_hex(c->id, hex);
	hl_rfc3339(c->created_at, at);
	json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:b}", "id", hex, "peer", p->conf.name,
			      "at", at, "mode", c->mode ? "operator" : "machine",
			      "result", hl_check_result_name(c->result), "manual", c->manual);
	int64_t answered = c->mode ? c->person_at : c->station_at;
	if (c->result == HL_CHECK_OK && answered)
		json_object_set_new(o, "rtt_ms", json_integer(answered - c->created_at));
	if (c->station_at)
		json_object_set_new(o, "station_rtt_ms", json_integer(c->station_at - c->created_at));
	return o;
}

/* Tells watchers, and a `hotline check` waiting for it, how check C ended. */
static void decided(struct hl_peer *p, const struct hl_check_row *c)
{
	struct hl_daemon *d = p->d;
	json_t *ev = check_json(p, c);
	char at[HL_RFC3339_LEN];
	hl_rfc3339(hl_now_ms(), at);
	json_object_set_new(ev, "event", json_string("check"));
	json_object_set_new(ev, "at", json_string(at));
	hl_control_emit(d, ev);
	json_decref(ev);
	if (!c->manual)
		return;
	json_t *resp = check_json(p, c);
	if (c->result == HL_CHECK_OK) {
		json_object_set_new(resp, "ok", json_true());
	} else {
		char msg[256];
		if (c->result == HL_CHECK_NO_CONNECTION)
			snprintf(msg, sizeof(msg), "no connection to %s: the check waits to be sent",
				 p->conf.name);
		else if (c->result == HL_CHECK_NO_PERSON)
			snprintf(msg, sizeof(msg), "%s's station answered, no person did",
				 p->conf.name);
		else
			snprintf(msg, sizeof(msg), "no answer from %s: the line is up, but the station did not answer in time",
				 p->conf.name);
		json_object_set_new(resp, "ok", json_false());
		json_object_set_new(resp, "error", json_string(msg));
	}
	hl_control_reply_check(d, c->id, resp);
}

/* ---- making and deciding checks ---- */

static int make_check(struct hl_peer *p, bool manual, enum hl_check_mode mode,
		      uint32_t timeout_ms, struct hl_check_row *row)
{
	struct hl_daemon *d = p->d;
	int ret = hl_commit_join(d);
	if (ret < 0)
		return ret;
	struct hl_author_link l = link_of(p);
	ret = hl_author_check(&l, mode, p->session != NULL, timeout_ms, manual, hl_now_ms(), row);
	if (ret < 0) {
		hl_error("%s: cannot make a line check: %s", p->conf.name, hl_store_errmsg(d->store));
		return ret;
	}
	char hex[33];
	id_hex(row->id, hex);
	hl_info("%s: line check %s%s%s", p->conf.name, hex, manual ? " (asked for)" : "",
		p->session ? "" : "; no connection: it waits to be sent");
	return 0;
}

/* Decides our check C, whose deadline passed. */
static int decide(struct hl_peer *p, struct hl_check_row *c)
{
	char hex[33], detail[512];
	id_hex(c->id, hex);
	if (c->mode == HL_CHECK_OPERATOR && c->station_at) {
		c->result = HL_CHECK_NO_PERSON;
		snprintf(detail, sizeof(detail), "check %s: %s's station answered, no person did within %lld s",
			 hex, p->conf.name, (long long)((c->deadline - c->created_at) / 1000));
	} else if (p->session) {
		c->result = HL_CHECK_NO_ANSWER;
		snprintf(detail, sizeof(detail), "check %s: connected, but %s did not answer within %lld s",
			 hex, p->conf.name, (long long)((c->deadline - c->created_at) / 1000));
	} else {
		/* The last error stays out of the detail: it may quote the
		 * peer's CLOSE text, and the detail reaches AlarmCommand. */
		c->result = HL_CHECK_NO_CONNECTION;
		snprintf(detail, sizeof(detail), "check %s: no connection to %s (%s)", hex,
			 p->conf.name, hl_peer_state_name(p->state));
	}
	int ret = hl_store_update_check(p->d->store, c);
	if (ret < 0)
		return ret;
	if (!c->manual) {
		struct hl_alarm *a = hl_alarm_new(hl_check_result_name(c->result), p->conf.name, hex,
					       c->mode, 0, detail);
		if (c->result == HL_CHECK_NO_CONNECTION)
			snprintf(a->context, sizeof(a->context), "%s", p->last_error);
		hl_alarm_after_commit(p->d, a);
	} else {
		hl_warn("%s: %s%s%s", p->conf.name, detail, p->last_error[0] ? ": " : "",
			p->last_error);
	}
	decided(p, c);
	return 0;
}

struct due_ctx {
	struct hl_daemon *d;
	int64_t now;
	int64_t next;     /* the earliest deadline still ahead */
	int ret;
};

static void note_next(struct due_ctx *x, int64_t t)
{
	if (t > x->now && (x->next == 0 || t < x->next))
		x->next = t;
}

static int due_out(void *arg, const struct hl_check_row *row)
{
	struct due_ctx *x = arg;
	if (row->deadline > x->now) {
		note_next(x, row->deadline);
		return 0;
	}
	struct hl_peer *p = peer_by_id(x->d, row->peer_id);
	if (!p)
		return 0;   /* a removed peer's check stays open */
	struct hl_check_row c = *row;
	if ((x->ret = decide(p, &c)) < 0)
		return 1;
	return 0;
}

static int due_in(void *arg, const struct hl_check_row *row)
{
	struct due_ctx *x = arg;
	if (row->mode != HL_CHECK_OPERATOR)
		return 0;
	if (row->deadline > x->now) {
		note_next(x, row->deadline);
		return 0;
	}
	struct hl_peer *p = peer_by_id(x->d, row->peer_id);
	if (!p)
		return 0;
	struct hl_check_row c = *row;
	struct hl_author_link l = link_of(p);
	if ((x->ret = hl_author_answer(&l, &c, HL_ANSWER_NO_PERSON, x->now)) < 0)
		return 1;
	char hex[33], at[HL_RFC3339_LEN];
	id_hex(c.id, hex);
	hl_warn("%s: nobody answered its check %s in time; the station recorded \"no person\"",
		p->conf.name, hex);
	hl_rfc3339(x->now, at);
	json_t *ev = json_pack("{s:s, s:s, s:s, s:s, s:s}", "event", "check_in", "at", at,
			       "peer", p->conf.name, "id", hex, "answer", "no_person");
	hl_control_emit(x->d, ev);
	json_decref(ev);
	return 0;
}

static void tick(struct hl_daemon *d)
{
	int64_t now = hl_now_ms();
	struct due_ctx x = { .d = d, .now = now };
	int ret = hl_commit_join(d);
	if (ret < 0) {
		hl_error("line checks: store: %s", hl_store_errmsg(d->store));
		return;
	}
	for (struct hl_peer *p = d->peers; p; p = p->next) {
		if (!p->engine || !p->next_check_ms || now < p->next_check_ms)
			continue;
		struct hl_check_row row;
		if (make_check(p, false, p->conf.check_mode, p->conf.check_timeout_ms, &row) == 0)
			p->last_sched_ms = now;
		p->next_check_ms = hl_check_next(&p->conf, p->last_sched_ms, now);
	}
	struct hl_check_filter f = { .dir = HL_DIR_OUT, .open_only = true };
	if ((ret = hl_store_each_check(d->store, &f, due_out, &x)) == 0 && x.ret == 0) {
		f.dir = HL_DIR_IN;
		ret = hl_store_each_check(d->store, &f, due_in, &x);
	}
	if (ret < 0 || x.ret < 0)
		hl_error("line checks: store: %s", hl_store_errmsg(d->store));
}

static void on_timer(uv_timer_t *t)
{
	struct hl_daemon *d = t->data;
	if (d->stopping)
		return;
	tick(d);
	arm(d);
}

static int earliest_open(void *arg, const struct hl_check_row *row)
{
	struct due_ctx *x = arg;
	if (row->dir == HL_DIR_OUT || row->mode == HL_CHECK_OPERATOR) {
		if (row->deadline <= x->now)
			x->next = x->now;   /* due now: wake at once */
		else
			note_next(x, row->deadline);
	}
	return 0;
}

/* Arms the timer for the earliest scheduled check or open deadline. */
static void arm(struct hl_daemon *d)
{
	if (!d->check_timer || d->stopping)
		return;
	int64_t now = hl_now_ms();
	struct due_ctx x = { .d = d, .now = now };
	for (struct hl_peer *p = d->peers; p; p = p->next)
		if (p->engine && p->next_check_ms)
			note_next(&x, p->next_check_ms <= now ? now + 1 : p->next_check_ms);
	struct hl_check_filter f = { .dir = HL_DIR_OUT, .open_only = true };
	if (hl_store_each_check(d->store, &f, earliest_open, &x) == 0) {
		f.dir = HL_DIR_IN;
		(void)hl_store_each_check(d->store, &f, earliest_open, &x);
	}
	int64_t delay = x.next ? x.next - now : MAX_SLEEP_MS;
	if (delay < 0)
		delay = 0;
	if (delay > MAX_SLEEP_MS)
		delay = MAX_SLEEP_MS;
	uv_timer_start(d->check_timer, on_timer, (uint64_t)delay, 0);
}

/* ---- life ---- */

static int last_scheduled(void *arg, const struct hl_check_row *row)
{
	int64_t *last = arg;
	if (!row->manual) {
		*last = row->created_at;
		return 1;
	}
	return 0;
}

/* The peer was added, or its schedule changed: (re)compute it. */
static void checks_peer_added(struct hl_peer *p)
{
	struct hl_daemon *d = p->d;
	int64_t now = hl_now_ms();
	if (!p->engine) {
		p->next_check_ms = 0;
		return;
	}
	if (!p->last_sched_ms) {
		/* after a restart, CheckEvery counts from the last check made */
		struct hl_check_filter f = { .peer_id = hl_engine_peer_id(p->engine),
					     .dir = HL_DIR_OUT, .newest_first = true, .limit = 16 };
		(void)hl_store_each_check(d->store, &f, last_scheduled, &p->last_sched_ms);
	}
	p->next_check_ms = hl_check_next(&p->conf, p->last_sched_ms, now);
	if (p->next_check_ms) {
		char when[HL_RFC3339_LEN], sched[128];
		hl_rfc3339(p->next_check_ms, when);
		hl_check_schedule_text(&p->conf, sched, sizeof(sched));
		hl_debug("%s: line checks %s; next at %s", p->conf.name, sched, when);
	}
	arm(d);
}

static void checks_peer_changed(struct hl_peer *p, const hl_peer_conf *old)
{
	const hl_peer_conf *pc = &p->conf;
	if (old->check_every_ms != pc->check_every_ms || old->n_check_at != pc->n_check_at ||
	    memcmp(old->check_at, pc->check_at, sizeof(pc->check_at)) != 0 ||
	    strcmp(old->check_zone, pc->check_zone) != 0)
		checks_peer_added(p);
}

static int checks_start(struct hl_daemon *d, char *err, size_t errlen)
{
	(void)err;
	(void)errlen;
	d->check_timer = xcalloc(1, sizeof(*d->check_timer));
	uv_timer_init(&d->loop, d->check_timer);
	d->check_timer->data = d;
	arm(d);
	return 0;
}

static void on_timer_closed(uv_handle_t *h)
{
	free(h);
}

/* No checks are made or decided any more (the alarms of the last commit
 * are still acted on: alarm.c). */
static void checks_stop(struct hl_daemon *d)
{
	uv_timer_t *t = d->check_timer;
	d->check_timer = NULL;
	uv_close((uv_handle_t *)t, on_timer_closed);
}

/* ---- engine events ---- */

static void checks_engine_event(struct hl_peer *p, const struct hl_engine_evinfo *ev)
{
	struct hl_daemon *d = p->d;
	char at[HL_RFC3339_LEN], hex[65];
	hl_rfc3339(hl_now_ms(), at);
	int64_t peer_id = hl_engine_peer_id(p->engine);
	switch (ev->ev) {
	case HL_EV_ANSWER: {
		struct hl_check_row c;
		if (hl_store_get_check(d->store, peer_id, HL_DIR_OUT, ev->id, &c) < 0)
			return;
		id_hex(c.id, hex);
		const char *by = ev->by == HL_ANSWER_STATION ? "station"
				 : ev->by == HL_ANSWER_PERSON ? "person" : "no_person";
		hl_info("%s: answer to check %s by %s", p->conf.name, hex,
			ev->by == HL_ANSWER_STATION ? "the station"
			: ev->by == HL_ANSWER_PERSON ? "a person" : "the station: no person answered");
		json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:s}", "event", "answer", "at", at,
				      "peer", p->conf.name, "id", hex, "by", by);
		hl_control_emit(d, o);
		json_decref(o);
		/* Decided by this answer: ok, or "no person" before our own
		 * deadline decided it (then the alarm is raised here, after the
		 * commit that recorded it: this runs in postcommit). */
		bool ok_now = c.result == HL_CHECK_OK &&
			      ((c.mode == HL_CHECK_MACHINE && ev->by == HL_ANSWER_STATION) ||
			       (c.mode == HL_CHECK_OPERATOR && ev->by == HL_ANSWER_PERSON));
		bool np_now = ev->by == HL_ANSWER_NO_PERSON && c.result == HL_CHECK_NO_PERSON &&
			      c.no_person_at <= c.deadline;
		if (np_now && !c.manual) {
			char detail[256], cid[33];
			memcpy(cid, hex, 32);
			cid[32] = '\0';
			snprintf(detail, sizeof(detail), "check %s: %s's station answered, no person did",
				 cid, p->conf.name);
			hl_alarm_act(d, hl_alarm_new("no_person", p->conf.name, cid, c.mode, 0, detail));
		}
		if (ok_now || np_now)
			decided(p, &c);
		arm(d);
		return;
	}
	case HL_EV_CHECK_IN: {
		id_hex(ev->id, hex);
		bool op = ev->by == HL_CHECK_OPERATOR;
		struct hl_check_row row;
		/* Decided "no person" on arrival: too many already wait. */
		bool offered = !op || hl_store_get_check(d->store, peer_id, HL_DIR_IN, ev->id, &row) < 0 ||
			       row.result == HL_CHECK_PENDING;
		if (!p->rl_checks_in.burst)
			p->rl_checks_in = (struct hl_ratelimit)HL_RATELIMIT_INIT(CHECK_LOG_BURST,
										 CHECK_LOG_PER_MINUTE);
		bool say = op && hl_ratelimit_allow(&p->rl_checks_in, hl_mono_ms());
		if (op && !offered && say)
			hl_warn("%s: line check %s not offered to a person: %d of its checks already "
				"wait for one (the station answered it)", p->conf.name, hex,
				HL_CHECKS_WAITING_MAX);
		else if (op && say)
			hl_warn("%s: LINE CHECK %s waits for a person: answer with 'hotline answer'",
				p->conf.name, hex);
		else if (!op)
			hl_debug("%s: line check %s answered", p->conf.name, hex);
		json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:b}", "event", "check_in",
				      "at", at, "peer", p->conf.name, "id", hex,
				      "mode", op ? "operator" : "machine", "waiting_for_person",
				      op && offered);
		hl_control_emit(d, o);
		json_decref(o);
		if (op)
			arm(d);
		return;
	}
	case HL_EV_PROPOSAL:
	case HL_EV_SIGNED: {
		struct hl_agreement_row g;
		hl_hex(ev->id, 32, hex);
		json_t *o = json_pack("{s:s, s:s, s:s, s:s}", "event",
				      ev->ev == HL_EV_PROPOSAL ? "agreement_proposed" : "agreement_signed",
				      "at", at, "peer", p->conf.name, "id", hex);
		if (hl_store_get_agreement_by_id(d->store, ev->id, &g) == 0)
			json_object_set_new(o, "name", json_string(g.name));
		hl_info("%s: agreement %.16s %s", p->conf.name, hex,
			ev->ev == HL_EV_PROPOSAL ? "proposed: sign it with 'hotline agree sign'"
						 : "countersigned: signed by both");
		hl_control_emit(d, o);
		json_decref(o);
		return;
	}
	case HL_EV_EQUIVOCATION: {
		char detail[256];
		snprintf(detail, sizeof(detail), "%s signed two different items at position %llu of its chain; both are kept as evidence",
			 p->conf.name, (unsigned long long)ev->seq);
		hl_alarm_act(d, hl_alarm_new("equivocation", p->conf.name, NULL, 0, ev->seq, detail));
		return;
	}
	default:
		return;
	}
}

/* ---- the control request "check" ---- */

/* REQ's fields are checked (control_proto.c, the timeout at most an hour);
 * P is the peer it names, with an engine (control.c's table). */
json_t *hl_checks_control(struct hl_daemon *d, const struct hl_ctl_request *req, struct hl_peer *p,
			  struct hl_control_client *cl)
{
	const struct hl_ctl_check *q = &req->u.check;
	char msg[700];
	uint32_t timeout = q->timeout_ms ? q->timeout_ms : p->conf.check_timeout_ms;
	/* No "mode": the peer's CheckMode, as for a scheduled check. */
	enum hl_check_mode m = (enum hl_check_mode)(q->mode >= 0 ? (unsigned)q->mode
								 : p->conf.check_mode);
	struct hl_check_row row;
	if (make_check(p, true, m, timeout, &row) < 0)
		return hl_ctl_error("cannot record the check (see the log)");
	if (!p->session) {
		/* Recorded, and sent when the link comes up; decided now. */
		row.deadline = row.created_at;
		row.result = HL_CHECK_NO_CONNECTION;
		if (hl_store_update_check(d->store, &row) < 0)
			hl_error("%s: store: %s", p->conf.name, hl_store_errmsg(d->store));
		json_t *r = check_json(p, &row);
		snprintf(msg, sizeof(msg), "no connection to %s (%s%s%s); the check is recorded and waits to be sent",
			 p->conf.name, hl_peer_state_name(p->state), p->last_error[0] ? ": " : "",
			 p->last_error);
		json_object_set_new(r, "ok", json_false());
		json_object_set_new(r, "error", json_string(msg));
		return r;
	}
	hl_control_wait_check(cl, row.id);
	arm(d);
	return NULL;
}

/* ---- status ---- */

struct status_ctx {
	json_t *arr;
	struct hl_peer *p;
	bool more;                    /* more wait than the list shows */
};

static int pending_in(void *arg, const struct hl_check_row *row)
{
	struct status_ctx *x = arg;
	if (row->mode != HL_CHECK_OPERATOR)
		return 0;
	if (json_array_size(x->arr) == HL_CHECKS_WAITING_MAX) {
		x->more = true;
		return 1;
	}
	char hex[33], at[HL_RFC3339_LEN], dl[HL_RFC3339_LEN];
	id_hex(row->id, hex);
	hl_rfc3339(row->created_at, at);
	hl_rfc3339(row->deadline, dl);
	json_array_append_new(x->arr, json_pack("{s:s, s:s, s:s}", "id", hex, "at", at,
						"deadline", dl));
	return 0;
}

static int last_scheduled_decided(void *arg, const struct hl_check_row *row)
{
	struct hl_check_row *out = arg;
	if (row->manual || row->result == HL_CHECK_PENDING)
		return 0;
	*out = *row;
	return 1;
}

static int take_last(void *arg, const struct hl_check_row *row)
{
	struct hl_check_row *out = arg;
	*out = *row;
	return 1;
}

static void checks_peer_status(struct hl_peer *p, json_t *out)
{
	struct hl_daemon *d = p->d;
	char sched[160], when[HL_RFC3339_LEN];
	hl_check_schedule_text(&p->conf, sched, sizeof(sched));
	json_t *o = json_pack("{s:o, s:s, s:I}", "schedule", sched[0] ? json_string(sched) : json_null(),
			      "mode", p->conf.check_mode ? "operator" : "machine",
			      "timeout_ms", (json_int_t)p->conf.check_timeout_ms);
	if (p->next_check_ms) {
		hl_rfc3339(p->next_check_ms, when);
		json_object_set_new(o, "next", json_string(when));
	} else {
		json_object_set_new(o, "next", json_null());
	}
	json_t *last = json_null(), *alarm = json_null();
	json_t *pend = json_array();
	uint64_t neq = 0;
	bool more = false;
	if (p->engine) {
		int64_t peer_id = hl_engine_peer_id(p->engine);
		struct hl_check_row c;
		memset(&c, 0, sizeof(c));
		struct hl_check_filter f = { .peer_id = peer_id, .dir = HL_DIR_OUT,
					     .newest_first = true, .limit = 1 };
		if (hl_store_each_check(d->store, &f, take_last, &c) == 0 && c.seq) {
			json_decref(last);
			last = check_json(p, &c);
		}
		/* The alarm: the last decided scheduled check, when it failed. */
		f.limit = 64;
		struct hl_check_row found;
		memset(&found, 0, sizeof(found));
		(void)hl_store_each_check(d->store, &f, last_scheduled_decided, &found);
		if (found.seq && found.result != HL_CHECK_OK) {
			char hex[33];
			id_hex(found.id, hex);
			hl_rfc3339(found.deadline, when);
			json_decref(alarm);
			alarm = json_pack("{s:s, s:s, s:s}", "alarm", hl_check_result_name(found.result),
					  "at", when, "id", hex);
		}
		/* At most HL_CHECKS_WAITING_MAX wait (on_check_item); a store
		 * from before that bound may hold more: the oldest are listed. */
		struct status_ctx x = { .arr = pend, .p = p };
		struct hl_check_filter fi = { .peer_id = peer_id, .dir = HL_DIR_IN, .open_only = true,
					      .limit = HL_CHECKS_WAITING_MAX + 1 };
		(void)hl_store_each_check(d->store, &fi, pending_in, &x);
		more = x.more;
		(void)hl_store_count_equivocations(d->store, peer_id, &neq);
		if (neq) {
			json_decref(alarm);
			alarm = json_pack("{s:s, s:I}", "alarm", "equivocation", "count", (json_int_t)neq);
		}
	}
	json_object_set_new(o, "last", last);
	json_object_set_new(o, "alarm", alarm);
	json_object_set_new(o, "pending_answer", pend);
	json_object_set_new(o, "pending_more", json_boolean(more));
	json_object_set_new(o, "equivocations", json_integer((json_int_t)neq));
	json_object_set_new(out, "check", o);
}

const struct hl_service hl_checks_service = {
	.name = "checks",
	.start = checks_start,
	.stop = checks_stop,
	.peer_added = checks_peer_added,
	.peer_changed = checks_peer_changed,
	.engine_event = checks_engine_event,
	.peer_status = checks_peer_status,
};
