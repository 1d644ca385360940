/* daemon/delivery.c — the service of message delivery (service.h): one
 * delivery engine per peer (deliver/engine.h), its part in the group
 * commit, and noticing what the commands queued.
 *
 * Group commit (commit.c).  Packets that arrive in one turn of the event
 * loop are all handled inside the daemon's one store transaction (the
 * engines join it when they first write).  At the end of the turn, before
 * the commit, every engine handles the packets it held back and authors
 * its receipts (before_commit); once the commit is durable the engines
 * send their ACKs, REFUSEs and receipts (after_commit).  After a failed
 * commit they drop what they held in memory of it and the sessions close:
 * nothing was acknowledged, the peers resend, and delivery resumes by
 * itself when the store can write again.
 *
 * New outgoing work.  `hotline send` writes the store directly.  The daemon
 * looks at the store's data_version every POLL_MS, and at once when a
 * command pokes it over the control socket. */
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "daemon/commit.h"
#include "daemon/daemon_int.h"
#include "daemon/service.h"
#include "wire/msgproto.h"
#include "msg/message.h"
#include "util/err.h"
#include "util/mem.h"
#include "util/text.h"
#include "util/timefmt.h"

#define POLL_MS 200
/* Keep little unsent data in the kernel, so that an urgent packet is not
 * queued behind megabytes of a document already handed to the socket: what
 * flow control lets wait at this end (hl_engine_ahead, sized in time),
 * set again when it changes by a quarter or more. */
#define LOWAT_MIN 4096

struct hl_delivery {
	bool running;                /* from start to stop */
	uv_idle_t drain_idle;        /* active while engines hold packets */
	uv_timer_t poll_timer;
	uv_async_t credit_wake;      /* parts' workers took in data */
	int closing;                 /* handles closed whose callback is still to come */
};

static const char *event_name(enum hl_engine_event ev)
{
	switch (ev) {
	case HL_EV_ARRIVED: return "arrived";
	case HL_EV_DELIVERED: return "delivered";
	case HL_EV_REFUSED: return "refused";
	case HL_EV_REFUSED_IN: return "refused_in";
	default: return NULL;
	}
}

static void on_engine_event(void *user, const char *peer, const struct hl_engine_evinfo *info)
{
	struct hl_daemon *d = user;
	char hex[33], at[HL_RFC3339_LEN];
	struct hl_msg_row row = { 0 };
	const char *name = event_name(info->ev);
	if (!name) {
		/* checks, agreements, equivocation: another service's */
		struct hl_peer *p = hl_peer_named(d, peer);
		if (p && p->engine)
			hl_services_engine_event(p, info);
		return;
	}
	hl_msg_id_hex(info->id, hex);
	if (info->ev == HL_EV_ARRIVED)
		hl_debug("%s: message %s arrived", peer, hex);   /* one line per message: debug */
	else if (info->ev == HL_EV_REFUSED || info->ev == HL_EV_REFUSED_IN)
		hl_warn("%s: message %s %s", peer, hex,
			info->ev == HL_EV_REFUSED ? "refused by the peer" : "refused");
	/* The store lookup and the JSON are for watchers only: at 100,000
	 * messages a second nobody should pay for them unwatched. */
	if (!hl_control_watching(d))
		return;
	hl_rfc3339(hl_now_ms(), at);
	json_t *o = json_pack("{s:s, s:s, s:s, s:s}", "event", name, "at", at,
			      "peer", peer, "id", hex);
	if (hl_store_get_message_by_id(d->store, info->id, &row) == 0) {
		json_object_set_new(o, "precedence", json_string(hl_precedence_name(row.precedence)));
		/* Peer text: the watcher's JSON encoder escapes it; people see
		 * it through `watch` without --json, which sanitises. */
		json_t *subj = json_string(row.subject ? row.subject : "");
		json_object_set_new(o, "subject", subj ? subj : json_string(""));
		if (row.reason)
			json_object_set_new(o, "reason", json_string(row.reason));
		/* "at" of a delivery is the time the store keeps for it, so
		 * that `send --wait` can say when without opening the store */
		if (info->ev == HL_EV_DELIVERED && row.delivered_at > 0) {
			hl_rfc3339(row.delivered_at, at);
			json_object_set_new(o, "at", json_string(at));
		}
	}
	hl_msg_row_clear(&row);
	hl_control_emit(d, o);
	json_decref(o);
}

static void on_drain_idle(uv_idle_t *h)
{
	(void)h; /* its being active keeps the loop from blocking: the pass drains */
}

/* The packets the engines held (defer_items) are handled first.  An engine
 * that stops early (so as not to flood watchers with events) still holds
 * some: the loop then turns again without waiting for input. */
static void drain_held(struct hl_daemon *d, uint64_t now)
{
	bool more = false;
	for (struct hl_peer *p = d->peers; p; p = p->next) {
		if (!p->engine)
			continue;
		if (hl_engine_drain(p->engine, now) < 0 && p->session) {
			char text[HL_ERRTEXT_LEN];
			snprintf(text, sizeof(text), "delivery: %s", hl_engine_error(p->engine));
			hl_warn("%s: %s; closing the session", p->conf.name, text);
			hl_conn_close(p->session, HL_CLOSE_PROTOCOL, text);
		}
		more = more || hl_engine_holding(p->engine);
	}
	struct hl_delivery *dl = d->delivery;
	if (!dl || !dl->running)
		return;
	if (more) {
		hl_commit_due(d);
		uv_idle_start(&dl->drain_idle, on_drain_idle);
	} else {
		uv_idle_stop(&dl->drain_idle);
	}
}

/* Before the group commit: the held packets, then the receipts. */
static int delivery_before_commit(struct hl_daemon *d, uint64_t now)
{
	int ret = 0;
	drain_held(d, now);
	if (!hl_commit_open(d))
		return 0;
	for (struct hl_peer *p = d->peers; p && ret == 0; p = p->next)
		if (p->engine)
			ret = hl_engine_precommit(p->engine, now);
	return ret;
}

/* After it: what acknowledges the burst goes out, or, when it failed,
 * nothing does and the sessions close. */
static void delivery_after_commit(struct hl_daemon *d, bool committed)
{
	uint64_t now = uv_now(&d->loop);
	if (!committed) {
		const char *text = hl_commit_error(d);
		for (struct hl_peer *p = d->peers; p; p = p->next) {
			if (!p->engine)
				continue;
			hl_engine_abort(p->engine);
			hl_peer_set_error(p, text);
			if (p->session)
				hl_conn_close(p->session, 0, text);
		}
		return;
	}
	for (struct hl_peer *p = d->peers; p; p = p->next) {
		if (!p->engine)
			continue;
		hl_engine_postcommit(p->engine, now);
		if (p->session && hl_engine_restart(p->engine))
			hl_conn_close(p->session, HL_CLOSE_REPLACED,
				      "resynchronised after a restore: starting a new session");
		else if (p->session)
			hl_conn_flush(p->session);
	}
}

void hl_delivery_poke(struct hl_daemon *d)
{
	uint64_t now = uv_now(&d->loop);
	for (struct hl_peer *p = d->peers; p; p = p->next) {
		if (!p->engine || !p->session)
			continue;
		hl_engine_refresh(p->engine);
		hl_engine_pump(p->engine, now);
		hl_conn_flush(p->session);
	}
}

static void on_poll(uv_timer_t *t)
{
	struct hl_daemon *d = t->data;
	if (hl_commit_open(d))
		return;
	if (hl_store_changed(d->store)) {
		hl_delivery_poke(d);
		return;
	}
	/* Items refused for now (quota) are offered again on a timer. */
	uint64_t now = uv_now(&d->loop);
	for (struct hl_peer *p = d->peers; p; p = p->next) {
		if (!p->engine || !p->session)
			continue;
		hl_engine_pump(p->engine, now);
		hl_conn_flush(p->session);
	}
}

/* A part's worker took in data (deliver/partwriter.h): the engines send
 * CREDIT for it.  Worker threads only call uv_async_send. */
static void on_credit_wake(uv_async_t *h)
{
	struct hl_daemon *d = h->data;
	uint64_t now = uv_now(&d->loop);
	for (struct hl_peer *p = d->peers; p; p = p->next) {
		if (!p->engine || !p->session)
			continue;
		hl_engine_credit(p->engine, now);
		hl_conn_flush(p->session);
	}
}

static void engine_wake(void *user)
{
	struct hl_daemon *d = user;
	uv_async_send(&d->delivery->credit_wake);
}

static int delivery_start(struct hl_daemon *d, char *err, size_t errlen)
{
	struct hl_delivery *dl = xcalloc(1, sizeof(*dl));
	int ret = uv_async_init(&d->loop, &dl->credit_wake, on_credit_wake);
	if (ret < 0) {
		snprintf(err, errlen, "cannot set up the event loop: %s", uv_strerror(ret));
		free(dl);
		return ret;
	}
	dl->credit_wake.data = d;
	uv_idle_init(&d->loop, &dl->drain_idle);
	uv_timer_init(&d->loop, &dl->poll_timer);
	dl->poll_timer.data = d;
	uv_timer_start(&dl->poll_timer, on_poll, POLL_MS, POLL_MS);
	dl->running = true;
	d->delivery = dl;
	return 0;
}

/* The state goes with the last of its three handles: libuv finishes the
 * closes of one turn last-closed first, so freeing it with credit_wake,
 * closed last, freed the other two before their closes had finished (a
 * use after free that a stop, whose release comes in the same turn, hit
 * as soon as the memory was used again). */
static void on_closed(uv_handle_t *h)
{
	struct hl_delivery *dl = h->data;
	if (--dl->closing == 0)
		free(dl);
}

static void delivery_stop(struct hl_daemon *d)
{
	struct hl_delivery *dl = d->delivery;
	dl->running = false;
	dl->drain_idle.data = dl->poll_timer.data = dl;
	dl->closing += 2;
	uv_close((uv_handle_t *)&dl->drain_idle, on_closed);
	uv_close((uv_handle_t *)&dl->poll_timer, on_closed);
}

/* The handle the engines' workers wake: closed once the peers, and so
 * the engines and their workers, are gone; the state goes with it. */
static void delivery_release(struct hl_daemon *d)
{
	struct hl_delivery *dl = d->delivery;
	d->delivery = NULL;
	dl->credit_wake.data = dl;
	dl->closing++;
	uv_close((uv_handle_t *)&dl->credit_wake, on_closed);
}

static void delivery_peer_added(struct hl_peer *p)
{
	struct hl_daemon *d = p->d;
	if (!d->store)
		return;
	struct hl_engine_env env = {
		.dir = d->dir, .txn = hl_commit_txn(d), .me = d->id,
		.max_attachment = d->conf->max_attachment,
		.quota_bytes = d->conf->quota_bytes,
		.reserve_bytes = d->conf->reserve_bytes,
		.reserve_pct = d->conf->reserve_pct,
		.defer_items = true,
		.on_event = on_engine_event, .wake = engine_wake, .user = d,
		.key_taken = hl_peer_key_taken,
		.clock_us = hl_mono_us,
	};
	/* hl_engine_new writes the peer's row: not inside a burst. */
	hl_commit_flush(d);
	int ret = hl_engine_new(&p->engine, &env, &p->conf);
	if (ret < 0) {
		char text[HL_ERRTEXT_LEN];
		snprintf(text, sizeof(text), "cannot set up delivery: %s", hl_store_errmsg(d->store));
		hl_error("%s: %s", p->conf.name, text);
		hl_peer_set_error(p, text);
		p->engine = NULL;
	}
}

static void delivery_peer_removed(struct hl_peer *p)
{
	if (p->engine)
		hl_commit_flush(p->d);
	hl_engine_free(p->engine);
	p->engine = NULL;
}

/* The session socket's TCP_NOTSENT_LOWAT follows flow control's figure
 * for what may wait at this end. */
static void apply_lowat(struct hl_peer *p, struct hl_conn *c)
{
	int fd, want = (int)hl_engine_ahead(p->engine);
	if (want < LOWAT_MIN)
		want = LOWAT_MIN;
	if (!c || (p->lowat && want > p->lowat * 3 / 4 && want < p->lowat * 5 / 4))
		return;
	if (uv_fileno((uv_handle_t *)&c->tcp, &fd) < 0)
		return;
	if (setsockopt(fd, IPPROTO_TCP, TCP_NOTSENT_LOWAT, &want, sizeof(want)) < 0)
		hl_debug("%s: TCP_NOTSENT_LOWAT not set", p->conf.name);
	p->lowat = want;
}

static void delivery_session_up(struct hl_peer *p, struct hl_conn *c, bool replaced)
{
	struct hl_daemon *d = p->d;
	(void)replaced;   /* the engine follows the session, new or not */
	if (!p->engine)
		return;
	/* The new session starts from what is durable: finish the burst (it
	 * may hold this peer's last packets from the session just replaced). */
	hl_commit_flush(d);
	p->lowat = 0;
	hl_engine_attach(p->engine, c->machine, uv_now(&d->loop));
	apply_lowat(p, c);
}

static void delivery_session_down(struct hl_peer *p)
{
	if (p->engine)
		hl_engine_detach(p->engine);
}

static void delivery_packet(struct hl_conn *c, uint8_t type, const uint8_t *body, size_t len)
{
	struct hl_peer *p = c->peer;
	struct hl_daemon *d = c->d;
	if (!p || p->session != c || !p->engine)
		return;
	/* A CREDIT (flow control, thousands a second under a document)
	 * stores nothing: no group commit for it; the engine pumps. */
	if (type != HL_PKT_CREDIT)
		hl_commit_due(d);
	int ret = hl_engine_on_packet(p->engine, type, body, len, uv_now(&d->loop));
	if (type == HL_PKT_CREDIT)
		apply_lowat(p, c);
	if (ret < 0) {
		char text[HL_ERRTEXT_LEN];
		snprintf(text, sizeof(text), "delivery: %s", hl_engine_error(p->engine));
		hl_warn("%s: %s; closing the session", p->conf.name, text);
		hl_conn_close(c, HL_CLOSE_PROTOCOL, text);
	}
}

static void delivery_writable(struct hl_conn *c)
{
	struct hl_peer *p = c->peer;
	if (!p || p->session != c || !p->engine || hl_commit_open(c->d))
		return; /* inside a burst: the commit pumps afterwards */
	hl_engine_pump(p->engine, uv_now(&c->d->loop));
	/* Called when a write completed: nothing else will flush. */
	hl_conn_flush(c);
}

static json_t *status_json(struct hl_peer *p)
{
	if (!p->engine)
		return json_null();
	struct hl_engine_stats s;
	hl_engine_stats(p->engine, &s);
	const char *err = hl_engine_error(p->engine);
	return json_pack("{s:{s:I, s:I, s:I, s:I}, s:I, s:I, s:I, s:{s:I, s:I, s:I},"
			 " s:{s:I, s:I, s:I, s:I}, s:o, s:I, s:I, s:o}",
			 "queued",
			 "flash", (json_int_t)s.queued[HL_PREC_FLASH],
			 "immediate", (json_int_t)s.queued[HL_PREC_IMMEDIATE],
			 "priority", (json_int_t)s.queued[HL_PREC_PRIORITY],
			 "routine", (json_int_t)s.queued[HL_PREC_ROUTINE],
			 "incoming_partial", (json_int_t)s.partial_in,
			 "items_in", (json_int_t)s.items_in,
			 "items_out", (json_int_t)s.items_out,
			 "staged",
			 "out_bytes", (json_int_t)s.stage_out_bytes,
			 "in_bytes", (json_int_t)s.stage_in_bytes,
			 "adopted_bytes", (json_int_t)s.stage_adopted_bytes,
			 "flow",
			 "window", (json_int_t)s.flow_window,
			 "ahead", (json_int_t)s.flow_ahead,
			 "rate", (json_int_t)s.flow_rate,
			 "rtt_us", (json_int_t)s.flow_rtt_us,
			 "error", err[0] ? json_string(err) : json_null(),
			 /* the peer's items refused since the daemon started: for
			  * good (a tombstone) and for now (nothing stored); why
			  * the last was refused for now, null once one is taken */
			 "refused_items", (json_int_t)s.refused_items,
			 "refused_for_now", (json_int_t)s.refused_later,
			 "refusing", s.refusing && s.refusing[0] ? json_string(s.refusing)
								 : json_null());
}

static void delivery_peer_status(struct hl_peer *p, json_t *o)
{
	json_object_set_new(o, "delivery", status_json(p));
}

const struct hl_service hl_delivery_service = {
	.name = "delivery",
	.start = delivery_start,
	.stop = delivery_stop,
	.release = delivery_release,
	.peer_added = delivery_peer_added,
	.peer_removed = delivery_peer_removed,
	.session_up = delivery_session_up,
	.session_down = delivery_session_down,
	.pkt_first = HL_PKT_APP_FIRST,
	.pkt_last = HL_PKT_APP_LAST,
	.packet = delivery_packet,
	.writable = delivery_writable,
	.before_commit = delivery_before_commit,
	.after_commit = delivery_after_commit,
	.peer_status = delivery_peer_status,
};
