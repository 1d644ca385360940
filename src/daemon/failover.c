/* daemon/failover.c — the email fallback (docs/bundle.md, "By email"):
 * while the direct link to a peer is down, the daemon mails the peer what
 * it has not acknowledged, by running `hotline -d DIR bundle mail PEER` as
 * a child process (at most one per peer; its output goes to the log), and
 * the per-path view of `status`.
 *
 * A peer takes part when station.conf has an [Email] section and the
 * peer's Email is set.  Its link is *down* while it has no confirmed
 * session; an *outage* starts when the daemon starts or a session is lost,
 * and ends when a session is confirmed (TCP then carries everything still
 * unacknowledged, as always: no mail goes out while a session is up).
 *
 * The rules, looked at every TICK_MS and right after the mail pickup ran
 * (first match wins; nothing happens in the first min(FallbackAfter, 5 s)
 * of an outage, so a restart or a dropped connection that comes straight
 * back sends no mail):
 *
 *   1. Fallback.  Once the outage is FallbackAfter old, the first mail
 *      carries everything unacknowledged (a full bundle).
 *   2. Urgent.  A FLASH item (a FLASH message, or a receipt, check, answer
 *      or agreement, which all travel as FLASH) queued since the last mail
 *      (or during the outage) is mailed at once: FLASH goes on every path,
 *      and receipts for what came in by mail go back by mail within about
 *      a second.  Before the fallback such a mail carries FLASH items only
 *      (`--flash-only`, above FLASH_MARK); after it, everything new.
 *   3. Acknowledge.  When the peer's chain grew here since the last mail
 *      (a bundle imported from mail or a courier), a mail carries the ACK
 *      even without items, so that the peer stops resending, and the new
 *      items rule 2 (before the fallback) or 4 (after it) would send.  An
 *      ACK-only bundle makes the peer store nothing new, so it causes no
 *      reply: mails do not ping-pong.
 *   4. New items.  After the fallback, anything queued since the last mail
 *      is mailed (an incremental bundle: `--after MARK`, only the items
 *      above the last mail's mark).  Before it, items below FLASH wait: an
 *      outage shorter than FallbackAfter sends them by TCP alone.
 *   5. Resend.  After the fallback, while items stay unacknowledged, all of
 *      them are mailed again FallbackAfter after the last mail, then after
 *      twice that, and so on up to RESEND_MAX_MS; the interval returns to
 *      FallbackAfter when the peer acknowledges something.
 *
 * A mail that fails (hotline-mail or the SMTP server) is retried after
 * FAIL_MIN_MS, doubling up to FAIL_MAX_MS.  The marks live in memory: a
 * restarted daemon starts a new outage, whose fallback mail is full.
 *
 * States per peer: UP (a session) -> DOWN (outage; children may run) ->
 * UP.  Invariants: at most one child per peer; a child's result changes
 * the marks only if it exited 0; a removed peer's child is sent SIGTERM
 * and its record freed once the child's handles have closed. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon/commit.h"
#include "daemon/daemon_int.h"
#include "daemon/service.h"
#include "daemon/spawn.h"
#include "store/store.h"
#include "util/mem.h"
#include "util/text.h"
#include "util/timefmt.h"

#define TICK_MS 1000
#define DOWN_GRACE_MS 5000
#define RESEND_MAX_MS (3600u * 1000)
#define FAIL_MIN_MS 5000
#define FAIL_MAX_MS (300u * 1000)
#define OUTPUT_MAX 1024              /* of a child's output kept for the error */

struct hl_failover {
	struct hl_daemon *d;
	uv_timer_t timer;
};

struct hl_failover_peer {
	struct hl_daemon *d;
	struct hl_peer *p;               /* NULL once the peer is removed */
	/* the outage */
	uint64_t down_since;             /* loop ms; 0 while a session is up */
	uint64_t down_wall_ms, up_wall_ms;  /* the outage began; the link was last up */
	uint64_t up_since_wall_ms;       /* the current session period began */
	uint64_t outage;                 /* counts outages: a child's marks apply to its own */
	bool full_done;                  /* the fallback's full mail went out */
	uint64_t mark;                   /* unacked OUT items above this are unmailed */
	uint64_t flash_mark;             /* unacked FLASH items above this are unmailed (>= mark) */
	uint64_t in_contig, in_head;     /* the peer's chain here, as last mailed */
	uint64_t last_mail;              /* loop ms of the last mail; 0 none */
	uint64_t resend_ms;
	uint64_t last_unacked;
	uint64_t retry_at;               /* after a failure */
	uint32_t fail_delay_ms;
	/* the child: RUNNING from the spawn until it has exited (CHILD_DONE)
	 * and its output pipe reached EOF (PIPE_DONE) */
	bool running, child_done, pipe_done;
	int64_t exit_status;
	int term_signal;
	int open_handles;                /* the child counts, until its exit */
	struct hl_child child;           /* run by the spawner (daemon/spawn.h) */
	uv_pipe_t out;
	char output[OUTPUT_MAX + 1];
	size_t output_len;
	char line[256];
	size_t line_len;
	uint64_t pend_mark, pend_contig, pend_head, pend_outage;
	bool pend_full, pend_flash_only;
	/* for status */
	uint64_t mails;
	uint64_t last_sent_wall_ms, last_attempt_wall_ms;
	char last_error[HL_ERRTEXT_LEN];
	uint64_t last_error_wall_ms;
	bool last_failed;
};

static bool email_on(const struct hl_peer *p)
{
	return p->d->conf->email.line && p->conf.email[0];
}

/* The peer's chain as held here: contiguous head and highest seq. */
static int in_state(struct hl_peer *p, uint64_t *contig, uint64_t *head)
{
	struct hl_chain_head c, h;
	int64_t id = hl_engine_peer_id(p->engine);
	int ret = hl_store_in_contiguous(p->d->store, id, &c);
	if (ret == 0)
		ret = hl_store_chain_head(p->d->store, id, HL_DIR_IN, &h);
	if (ret == 0) {
		*contig = c.seq;
		*head = h.seq;
	}
	return ret;
}

/* A new outage: what is queued now belongs to TCP until the fallback. */
static void outage_begin(struct hl_failover_peer *fo)
{
	struct hl_peer *p = fo->p;
	struct hl_out_summary s;
	fo->down_since = uv_now(&p->d->loop);
	if (!fo->down_since)
		fo->down_since = 1;
	fo->down_wall_ms = hl_wall_ms();
	fo->outage++;
	fo->full_done = false;
	fo->last_mail = 0;
	fo->resend_ms = p->d->conf->fallback_after_ms;
	fo->mark = fo->flash_mark = 0;
	fo->in_contig = fo->in_head = 0;
	if (!p->engine)
		return;
	if (hl_store_out_summary(p->d->store, hl_engine_peer_id(p->engine), 0, &s) == 0) {
		fo->mark = fo->flash_mark = s.max_seq;
		fo->last_unacked = s.unacked;
	}
	(void)in_state(p, &fo->in_contig, &fo->in_head);
}

static void maybe_free(struct hl_failover_peer *fo)
{
	if (!fo->p && fo->open_handles == 0 && !fo->running)
		free(fo);
}

static void on_handle_closed(uv_handle_t *h)
{
	struct hl_failover_peer *fo = h->data;
	fo->open_handles--;
	maybe_free(fo);
}

static void keep_output(struct hl_failover_peer *fo, const char *text, size_t n)
{
	char clean[sizeof(fo->line) * 3 + 1];
	hl_sanitize(text, n, clean, sizeof(clean), 0);
	if (fo->p)
		hl_info("%s: mail: %s", fo->p->conf.name, clean);
	size_t len = strlen(clean);
	if (fo->output_len && fo->output_len + 2 < OUTPUT_MAX) {
		memcpy(fo->output + fo->output_len, "; ", 2);
		fo->output_len += 2;
	}
	if (len > OUTPUT_MAX - fo->output_len)
		len = OUTPUT_MAX - fo->output_len;
	memcpy(fo->output + fo->output_len, clean, len);
	fo->output_len += len;
	fo->output[fo->output_len] = '\0';
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	static char scratch[4096];   /* the loop's thread only; copied out at once */
	(void)h;
	(void)suggested;
	*buf = uv_buf_init(scratch, sizeof(scratch));
}

static void flush_line(struct hl_failover_peer *fo)
{
	if (fo->line_len)
		keep_output(fo, fo->line, fo->line_len);
	fo->line_len = 0;
}

static void finish(struct hl_failover_peer *fo);

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
	struct hl_failover_peer *fo = s->data;
	if (nread < 0) {
		/* EOF: the child and hotline-mail have closed their ends. */
		flush_line(fo);
		uv_close((uv_handle_t *)s, on_handle_closed);
		fo->pipe_done = true;
		finish(fo);
		return;
	}
	for (ssize_t i = 0; i < nread; i++) {
		char c = buf->base[i];
		if (c == '\n') {
			flush_line(fo);
		} else {
			if (fo->line_len == sizeof(fo->line))
				flush_line(fo);   /* a long line is logged in pieces */
			fo->line[fo->line_len++] = c;
		}
	}
}

static void on_child_exit(struct hl_child *c, int64_t status, int term_signal)
{
	struct hl_failover_peer *fo = c->data;
	fo->exit_status = status;
	fo->term_signal = term_signal;
	fo->child_done = true;
	finish(fo);   /* the child still counts: nothing is freed in there */
	fo->open_handles--;
	maybe_free(fo);
}

/* Once the child has exited and its output is read: the attempt's result. */
static void finish(struct hl_failover_peer *fo)
{
	struct hl_daemon *d = fo->d;
	if (!fo->running || !fo->child_done || !fo->pipe_done)
		return;
	fo->running = false;
	if (!fo->p || d->stopping) {
		maybe_free(fo);
		return;
	}
	struct hl_peer *p = fo->p;
	uint64_t now = uv_now(&d->loop);
	if (fo->exit_status == 0 && fo->term_signal == 0) {
		bool nothing = strstr(fo->output, "nothing to send") != NULL;
		/* A mail of an earlier outage (the link came and went while it
		 * ran) says nothing about what this one has carried. */
		if (fo->pend_outage == fo->outage && fo->down_since) {
			/* A FLASH-only mail carried the FLASH items up to its
			 * mark, not the others. */
			if (!fo->pend_flash_only && fo->pend_mark > fo->mark)
				fo->mark = fo->pend_mark;
			if (fo->pend_mark > fo->flash_mark)
				fo->flash_mark = fo->pend_mark;
			fo->in_contig = fo->pend_contig;
			fo->in_head = fo->pend_head;
			if (fo->pend_full)
				fo->full_done = true;
			fo->last_mail = now;
		}
		fo->fail_delay_ms = 0;
		fo->retry_at = 0;
		fo->last_failed = false;
		if (!nothing) {
			fo->mails++;
			fo->last_sent_wall_ms = hl_wall_ms();
		}
		return;
	}
	char text[HL_ERRTEXT_LEN];
	if (fo->term_signal)
		snprintf(text, sizeof(text), "bundle mail killed by signal %d", fo->term_signal);
	else if (!fo->output_len)
		snprintf(text, sizeof(text), "bundle mail exited with status %lld",
			 (long long)fo->exit_status);
	else {
		/* The last lines say why (hotline-mail's, then ours). */
		size_t n = fo->output_len < sizeof(text) - 1 ? fo->output_len : sizeof(text) - 1;
		memcpy(text, fo->output + fo->output_len - n, n);
		text[n] = '\0';
	}
	snprintf(fo->last_error, sizeof(fo->last_error), "%s", text);
	fo->last_error_wall_ms = hl_wall_ms();
	fo->last_failed = true;
	fo->fail_delay_ms = fo->fail_delay_ms ? fo->fail_delay_ms * 2 : FAIL_MIN_MS;
	if (fo->fail_delay_ms > FAIL_MAX_MS)
		fo->fail_delay_ms = FAIL_MAX_MS;
	fo->retry_at = now + fo->fail_delay_ms;
	hl_warn("%s: mailing failed (retrying in %u s): %s", p->conf.name,
		fo->fail_delay_ms / 1000, text);
}

static void spawn(struct hl_failover_peer *fo, uint64_t after, bool flash_only, bool if_items,
		  const char *why)
{
	struct hl_peer *p = fo->p;
	struct hl_daemon *d = p->d;
	char err[HL_SPAWN_TEXT_MAX];
	uv_file fds[2];
	int ret = uv_pipe(fds, UV_NONBLOCK_PIPE, 0);
	if (ret < 0) {
		hl_error("%s: cannot mail: pipe: %s", p->conf.name, uv_strerror(ret));
		fo->retry_at = uv_now(&d->loop) + FAIL_MIN_MS;
		return;
	}
	/* hotline -d DIR bundle mail PEER [--after MARK] [--flash-only]
	 * [--if-items], in a session of its own (stopping it stops
	 * hotline-mail too); its output, both streams, on the pipe */
	struct hl_spawn_req req = { .kind = HL_SPAWN_MAIL, .peer = p->conf.name, .after = after,
				    .flash_only = flash_only, .if_items = if_items,
				    .out_fd = fds[1], .err_to_out = true };
	fo->output_len = 0;
	fo->output[0] = '\0';
	fo->line_len = 0;
	fo->child.data = fo;
	fo->child.exit_cb = on_child_exit;
	ret = hl_spawn(d, &fo->child, &req, err, sizeof(err));
	close(fds[1]);
	fo->last_attempt_wall_ms = hl_wall_ms();
	if (ret < 0) {
		close(fds[0]);
		hl_error("%s: cannot run bundle mail: %s", p->conf.name, err);
		fo->retry_at = uv_now(&d->loop) + FAIL_MIN_MS;
		return;
	}
	fo->open_handles++;
	fo->running = true;
	fo->child_done = fo->pipe_done = false;
	uv_pipe_init(&d->loop, &fo->out, 0);
	fo->out.data = fo;
	fo->open_handles++;
	if (uv_pipe_open(&fo->out, fds[0]) < 0 ||
	    uv_read_start((uv_stream_t *)&fo->out, on_alloc, on_read) < 0) {
		hl_warn("%s: the mail child's output is lost", p->conf.name);
		uv_close((uv_handle_t *)&fo->out, on_handle_closed);
		fo->pipe_done = true;
	}
	hl_info("%s: mailing a bundle (%s%s%s)", p->conf.name, why, after ? "; new items only" : "",
		flash_only ? "; FLASH only, before the fallback" : "");
}

/* Applies the rules (top of the file) to one peer. */
static void consider(struct hl_failover_peer *fo, uint64_t now)
{
	struct hl_peer *p = fo->p;
	struct hl_daemon *d = fo->d;
	struct hl_out_summary s;
	uint64_t contig = 0, head = 0;
	if (!p || p->removed || p->session || fo->running || !p->engine || !email_on(p) ||
	    hl_commit_open(d) || !d->failover)
		return;
	if (!fo->down_since)
		outage_begin(fo);
	uint64_t fb = d->conf->fallback_after_ms;
	uint64_t grace = fb < DOWN_GRACE_MS ? fb : DOWN_GRACE_MS;
	uint64_t down = now - fo->down_since;
	if (down < grace || (fo->retry_at && now < fo->retry_at))
		return;
	bool active = down >= fb;
	/* Before the fallback only FLASH items go, so what is new is counted
	 * above the FLASH mark. */
	uint64_t base = active ? fo->mark : fo->flash_mark;
	if (hl_store_out_summary(d->store, hl_engine_peer_id(p->engine), base, &s) < 0 ||
	    in_state(p, &contig, &head) < 0) {
		hl_debug("%s: fallback: store: %s", p->conf.name, hl_store_errmsg(d->store));
		return;
	}
	bool in_changed = contig != fo->in_contig || head != fo->in_head;
	if (s.unacked < fo->last_unacked)
		fo->resend_ms = fb;   /* the peer acknowledged something */
	fo->last_unacked = s.unacked;

	uint64_t after = base;
	bool if_items = true, flash_only = !active;
	const char *why;
	if (active && !fo->full_done && (s.unacked || in_changed)) {
		after = 0;
		if_items = !in_changed;
		why = "the link is down: everything unacknowledged";
	} else if (s.flash_after) {
		why = "FLASH items or receipts while the link is down";
	} else if (in_changed) {
		if_items = false;
		why = "acknowledging what came in";
	} else if (active && s.after) {
		why = "new items while the link is down";
	} else if (active && s.unacked && fo->last_mail && now - fo->last_mail >= fo->resend_ms) {
		after = 0;
		why = "resending what is still unacknowledged";
		fo->resend_ms = fo->resend_ms * 2 > RESEND_MAX_MS ? RESEND_MAX_MS : fo->resend_ms * 2;
	} else {
		return;
	}
	fo->pend_mark = s.max_seq;
	fo->pend_contig = contig;
	fo->pend_head = head;
	fo->pend_full = after == 0 && !flash_only;
	fo->pend_flash_only = flash_only;
	fo->pend_outage = fo->outage;
	spawn(fo, after, flash_only, if_items, why);
}

static void on_tick(uv_timer_t *t)
{
	struct hl_failover *f = t->data;
	struct hl_daemon *d = f->d;
	uint64_t now = uv_now(&d->loop);
	if (d->stopping)
		return;
	for (struct hl_peer *p = d->peers; p; p = p->next)
		if (p->failover)
			consider(p->failover, now);
}

/* A mail pickup ran: receipts for what came in go by mail at once. */
static void failover_imported(struct hl_daemon *d)
{
	if (d->failover && !d->stopping)
		on_tick(&d->failover->timer);
}

static int failover_start(struct hl_daemon *d, char *err, size_t errlen)
{
	(void)err;
	(void)errlen;
	struct hl_failover *f = xcalloc(1, sizeof(*f));
	f->d = d;
	uv_timer_init(&d->loop, &f->timer);
	f->timer.data = f;
	uv_timer_start(&f->timer, on_tick, TICK_MS, TICK_MS);
	d->failover = f;
	return 0;
}

static void on_timer_closed(uv_handle_t *h)
{
	free(h->data);
}

static void failover_stop(struct hl_daemon *d)
{
	struct hl_failover *f = d->failover;
	if (!f)
		return;
	d->failover = NULL;
	uv_timer_stop(&f->timer);
	uv_close((uv_handle_t *)&f->timer, on_timer_closed);
}

static void failover_peer_added(struct hl_peer *p)
{
	struct hl_failover_peer *fo = xcalloc(1, sizeof(*fo));
	fo->d = p->d;
	fo->p = p;
	p->failover = fo;
	if (!p->session)
		outage_begin(fo);
}

static void failover_peer_removed(struct hl_peer *p)
{
	struct hl_failover_peer *fo = p->failover;
	if (!fo)
		return;
	p->failover = NULL;
	fo->p = NULL;
	if (fo->running) {
		if (!fo->child_done)
			hl_child_kill(fo->d, &fo->child, SIGTERM);   /* its group */
		if (!fo->pipe_done) {
			/* Not waiting for EOF: a grandchild could hold the pipe. */
			uv_close((uv_handle_t *)&fo->out, on_handle_closed);
			fo->pipe_done = true;
		}
		finish(fo);
	}
	maybe_free(fo);
}

static void failover_session_up(struct hl_peer *p, struct hl_conn *c, bool replaced)
{
	struct hl_failover_peer *fo = p->failover;
	(void)c;
	if (!fo || replaced)
		return;   /* a new session for one that was up: no outage */
	if (fo->down_since && fo->mails)
		hl_info("%s: link back: traffic returns to TCP", p->conf.name);
	fo->down_since = 0;
	fo->up_wall_ms = fo->up_since_wall_ms = hl_wall_ms();
}

static void failover_session_down(struct hl_peer *p)
{
	struct hl_failover_peer *fo = p->failover;
	if (!fo || p->removed || p->d->stopping)
		return;
	fo->up_wall_ms = hl_wall_ms();   /* the link worked until now */
	outage_begin(fo);
}

static json_t *time_or_null(uint64_t wall_ms)
{
	char t[HL_RFC3339_LEN];
	if (!wall_ms)
		return json_null();
	hl_rfc3339((int64_t)wall_ms, t);
	return json_string(t);
}

/* {"tcp": {...}, "email": {...}} for P (docs/protocol.md section 6). */
static json_t *paths_json(struct hl_peer *p)
{
	struct hl_failover_peer *fo = p->failover;
	struct hl_daemon *d = p->d;
	struct hl_out_summary s = { 0 };
	json_t *queued = json_null(), *unmailed = json_null();
	if (!fo)
		return json_null();
	/* Inside a burst this reads its uncommitted rows too: fine for a look. */
	if (p->engine &&
	    hl_store_out_summary(d->store, hl_engine_peer_id(p->engine), fo->mark, &s) == 0) {
		queued = json_integer((json_int_t)s.unacked);
		uint64_t n = fo->down_since ? s.after : s.unacked;
		/* Before the full mail, FLASH items up to the FLASH mark went
		 * by mail, the others above the mark did not. */
		struct hl_out_summary f;
		if (fo->down_since && !fo->full_done && fo->flash_mark > fo->mark &&
		    hl_store_out_summary(d->store, hl_engine_peer_id(p->engine), fo->flash_mark,
					 &f) == 0)
			n = s.after - s.flash_after + f.flash_after;
		if (email_on(p))
			unmailed = json_integer((json_int_t)n);
	}
	uint64_t now = uv_now(&d->loop);
	bool down = !p->session;
	bool active = down && fo->down_since && email_on(p) &&
		      now - fo->down_since >= d->conf->fallback_after_ms;
	json_t *tcp = json_pack("{s:s, s:o, s:o, s:O, s:o, s:o}",
				"state", down ? "down" : "up",
				"since", time_or_null(down ? fo->down_wall_ms : fo->up_since_wall_ms),
				"last_success", time_or_null(down ? fo->up_wall_ms : hl_wall_ms()),
				"queued", queued,
				"last_error", p->last_error[0] ? json_string(p->last_error) : json_null(),
				"last_error_at", time_or_null(p->last_error[0] ? p->last_error_wall_ms
									       : 0));
	json_t *email = json_pack("{s:b, s:s, s:b, s:b, s:I, s:o, s:o, s:O, s:o, s:o, s:o, s:I}",
				  "configured", email_on(p),
				  "state", !email_on(p) ? "off" : fo->last_failed ? "down" : "up",
				  "active", active,
				  "mailing", fo->running,
				  "fallback_after_ms", (json_int_t)d->conf->fallback_after_ms,
				  "last_success", time_or_null(fo->last_sent_wall_ms),
				  "last_attempt", time_or_null(fo->last_attempt_wall_ms),
				  "queued", queued,
				  "unmailed", unmailed,
				  "last_error", fo->last_error[0] ? json_string(fo->last_error)
								  : json_null(),
				  "last_error_at", time_or_null(fo->last_error[0] ? fo->last_error_wall_ms
										  : 0),
				  "mails", (json_int_t)fo->mails);
	json_decref(queued);
	return json_pack("{s:o, s:o}", "tcp", tcp, "email", email);
}

static void failover_peer_status(struct hl_peer *p, json_t *o)
{
	json_object_set_new(o, "paths", paths_json(p));
}

const struct hl_service hl_failover_service = {
	.name = "failover",
	.start = failover_start,
	.stop = failover_stop,
	.peer_added = failover_peer_added,
	.peer_removed = failover_peer_removed,
	.session_up = failover_session_up,
	.session_down = failover_session_down,
	.imported = failover_imported,
	.peer_status = failover_peer_status,
};
