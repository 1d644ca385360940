/* daemon/mailpoll.c — the daemon's pickup of incoming mail (docs/bundle.md,
 * "By email"): while station.conf has an [Email] section, every POLL_MS it
 * looks whether the Maildir's new/ holds anything and, if so, runs
 * `hotline -d DIR bundle import --maildir` as a child process (one at a
 * time; the spawner runs it, daemon/spawn.h, and the child enters the
 * pickup's sandbox, daemon/sandbox.h).  The child's report lines (one per mail, then a summary) come
 * back through a pipe and go to the log; the summary's counts go to
 * `status`.
 *
 * Why a child and not a call: an import can take seconds (a bundle with a
 * large document is checked whole before the commit) and must not stall
 * the event loop that carries FLASH traffic; and the command is the one
 * path already proven safe beside a running daemon (its own store
 * connection and transaction; it pokes the daemon afterwards, so receipts
 * go out on whatever path is up).  A child killed mid-import (the daemon
 * stopping, or the timeout) commits nothing and leaves the mail in new/
 * for the next run.
 *
 * What lands in new/ is not to be trusted (anyone who can send mail, or
 * write into the Maildir, puts it there): the child opens each entry
 * without blocking and without following links, and quarantines what is
 * not a readable regular file (mail/pickup.c).  Should a child hang
 * anyway, it is killed after PICKUP_TIMEOUT_MS.  A run that fails (killed,
 * or mail left in new/) makes the next one wait BACKOFF_MIN_MS, doubling
 * up to BACKOFF_MAX_MS, so that one bad entry cannot rerun the pickup (and
 * its log lines) every second; `status` shows the trouble.
 *
 * States: IDLE (timer armed) -> RUNNING (from the spawn until the child
 * has exited and its output reached EOF; ticks do nothing) -> IDLE.
 * Stopping: the timers are closed, a running child gets SIGTERM, and the
 * struct is freed once every handle has closed. */
#include <dirent.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon/daemon_int.h"
#include "daemon/service.h"
#include "daemon/spawn.h"
#include "util/log.h"
#include "util/mem.h"
#include "util/text.h"
#include "util/timefmt.h"

#define POLL_MS 1000
#define PICKUP_TIMEOUT_MS (120u * 1000)   /* HOTLINE_PICKUP_TIMEOUT_MS overrides (tests) */
#define BACKOFF_MIN_MS 2000
#define BACKOFF_MAX_MS (300u * 1000)
#define LINE_MAX_LEN 1024                /* of a report line; longer ones are cut */

struct hl_mailpoll {
	struct hl_daemon *d;
	uv_timer_t timer;
	uv_timer_t kill_timer;       /* the running child's timeout */
	struct hl_child child;       /* run by the spawner (daemon/spawn.h) */
	uv_pipe_t out;
	bool running;                /* from the spawn until CHILD_DONE and PIPE_DONE */
	bool child_done, pipe_done, timed_out;
	bool stopping;
	int open_handles;            /* freed at 0, once stopping (the child counts) */
	uint32_t timeout_ms;
	int64_t exit_status;
	int term_signal;
	char line[LINE_MAX_LEN + 1];
	size_t line_len;
	unsigned run_quarantined, run_left;   /* from the run's summary line */
	/* for status */
	uint64_t last_run_wall_ms, last_ok_wall_ms;
	uint64_t quarantined;        /* since the daemon started */
	unsigned left;               /* left in new/ by the last run */
	unsigned failures;           /* runs failed in a row */
	uint64_t retry_at;           /* loop ms before which no run starts; 0 none */
	uint64_t retry_wall_ms;
	char last_error[160];
};

static void maybe_free(struct hl_mailpoll *m)
{
	if (m->stopping && m->open_handles == 0)
		free(m);
}

static void on_closed(uv_handle_t *h)
{
	struct hl_mailpoll *m = h->data;
	m->open_handles--;
	maybe_free(m);
}

/* True when DIR/new holds an entry not starting with '.'. */
static bool has_new_mail(const char *maildir)
{
	char *path = xasprintf("%s/new", maildir);
	DIR *dir = opendir(path);
	bool found = false;
	free(path);
	if (!dir)
		return false;
	struct dirent *de;
	while (!found && (de = readdir(dir)))
		found = de->d_name[0] != '.';
	closedir(dir);
	return found;
}

/* One line of the child's report: logged; the summary is counted. */
static void on_line(struct hl_mailpoll *m)
{
	char clean[sizeof(m->line) * 3];
	unsigned seen, imported, quarantined, left;
	m->line[m->line_len] = '\0';
	if (sscanf(m->line, "%u mail(s): %u imported, %u quarantined, %u left;", &seen, &imported,
		   &quarantined, &left) == 4) {
		m->run_quarantined = quarantined;
		m->run_left = left;
	}
	hl_sanitize(m->line, m->line_len, clean, sizeof(clean), 0);
	hl_info("mail pickup: %s", clean);
	m->line_len = 0;
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	static char scratch[4096];   /* the loop's thread only; copied out at once */
	(void)h;
	(void)suggested;
	*buf = uv_buf_init(scratch, sizeof(scratch));
}

static void finish(struct hl_mailpoll *m);

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
	struct hl_mailpoll *m = s->data;
	if (nread < 0) {
		if (m->line_len)
			on_line(m);
		uv_close((uv_handle_t *)s, on_closed);
		m->pipe_done = true;
		finish(m);
		return;
	}
	for (ssize_t i = 0; i < nread; i++) {
		if (buf->base[i] == '\n')
			on_line(m);
		else if (m->line_len < LINE_MAX_LEN)
			m->line[m->line_len++] = buf->base[i];
	}
}

static void on_exit_cb(struct hl_child *c, int64_t status, int term_signal)
{
	struct hl_mailpoll *m = c->data;
	m->exit_status = status;
	m->term_signal = term_signal;
	m->child_done = true;
	uv_timer_stop(&m->kill_timer);
	finish(m);
	m->open_handles--;
	maybe_free(m);
}

static void on_timeout(uv_timer_t *t)
{
	struct hl_mailpoll *m = t->data;
	if (!m->running || m->child_done)
		return;
	m->timed_out = true;
	hl_warn("mail pickup (pid %d) still running after %u s: stopping it", m->child.pid,
		m->timeout_ms / 1000);
	hl_child_kill(m->d, &m->child, SIGKILL);
}

/* The run is over (exited, output read): its result and the next run. */
static void finish(struct hl_mailpoll *m)
{
	if (!m->running || !m->child_done || !m->pipe_done)
		return;
	m->running = false;
	if (m->stopping)
		return;
	struct hl_daemon *d = m->d;
	bool ok = m->exit_status == 0 && m->term_signal == 0 && !m->timed_out;
	m->quarantined += m->run_quarantined;
	m->left = m->run_left;
	if (ok) {
		m->last_ok_wall_ms = hl_wall_ms();
		m->failures = 0;
		m->retry_at = m->retry_wall_ms = 0;
		m->last_error[0] = '\0';
	} else {
		if (m->timed_out)
			snprintf(m->last_error, sizeof(m->last_error),
				 "the pickup took longer than %u s and was stopped", m->timeout_ms / 1000);
		else if (m->term_signal == SIGSYS)
			snprintf(m->last_error, sizeof(m->last_error),
				 "the pickup was stopped by its sandbox (SIGSYS: a system call it "
				 "may not make; the log says which, docs/sandbox.md)");
		else if (m->term_signal)
			snprintf(m->last_error, sizeof(m->last_error), "the pickup was killed (signal %d)",
				 m->term_signal);
		else if (m->run_left)
			snprintf(m->last_error, sizeof(m->last_error),
				 "the pickup left %u mail(s) in new/ (see the log)", m->run_left);
		else
			snprintf(m->last_error, sizeof(m->last_error), "the pickup exited with status %lld",
				 (long long)m->exit_status);
		uint64_t delay = BACKOFF_MIN_MS;
		for (unsigned i = 1; i < m->failures + 1 && delay < BACKOFF_MAX_MS; i++)
			delay *= 2;
		if (delay > BACKOFF_MAX_MS)
			delay = BACKOFF_MAX_MS;
		m->failures++;
		m->retry_at = uv_now(&d->loop) + delay;
		m->retry_wall_ms = hl_wall_ms() + delay;
		hl_warn("%s; the next pickup in %llu s", m->last_error,
			(unsigned long long)(delay / 1000));
	}
	/* What came in may call for receipts by mail at once (failover.c). */
	hl_services_imported(d);
}

static void spawn(struct hl_mailpoll *m)
{
	struct hl_daemon *d = m->d;
	char err[HL_SPAWN_TEXT_MAX];
	uv_file fds[2];
	int ret = uv_pipe(fds, UV_NONBLOCK_PIPE, 0);
	if (ret < 0) {
		hl_error("cannot run the mail pickup: pipe: %s", uv_strerror(ret));
		return;
	}
	/* hotline -d DIR bundle import --maildir; its report, line by line,
	 * on the pipe, its errors to our log */
	struct hl_spawn_req req = { .kind = HL_SPAWN_PICKUP, .out_fd = fds[1] };
	m->child.data = m;
	m->child.exit_cb = on_exit_cb;
	ret = hl_spawn(d, &m->child, &req, err, sizeof(err));
	close(fds[1]);
	if (ret < 0) {
		close(fds[0]);
		hl_error("cannot run the mail pickup: %s", err);
		return;
	}
	m->open_handles++;
	m->running = true;
	m->child_done = m->pipe_done = m->timed_out = false;
	m->line_len = 0;
	m->run_quarantined = m->run_left = 0;
	m->last_run_wall_ms = hl_wall_ms();
	uv_pipe_init(&d->loop, &m->out, 0);
	m->out.data = m;
	m->open_handles++;
	if (uv_pipe_open(&m->out, fds[0]) < 0 ||
	    uv_read_start((uv_stream_t *)&m->out, on_alloc, on_read) < 0) {
		hl_warn("the mail pickup's report is lost");
		uv_close((uv_handle_t *)&m->out, on_closed);
		m->pipe_done = true;
	}
	uv_timer_start(&m->kill_timer, on_timeout, m->timeout_ms, 0);
	hl_debug("mail pickup started (pid %d)", m->child.pid);
}

static void on_tick(uv_timer_t *t)
{
	struct hl_mailpoll *m = t->data;
	struct hl_daemon *d = m->d;
	if (m->stopping || m->running || d->stopping || !d->conf->email.line ||
	    (m->retry_at && uv_now(&d->loop) < m->retry_at) ||
	    !has_new_mail(d->conf->email.maildir))
		return;
	spawn(m);
}

static int mailpoll_start(struct hl_daemon *d, char *err, size_t errlen)
{
	(void)err;
	(void)errlen;
	struct hl_mailpoll *m = xcalloc(1, sizeof(*m));
	m->d = d;
	m->timeout_ms = PICKUP_TIMEOUT_MS;
	const char *t = getenv("HOTLINE_PICKUP_TIMEOUT_MS");
	if (t && atol(t) >= 100 && atol(t) <= (long)PICKUP_TIMEOUT_MS)
		m->timeout_ms = (uint32_t)atol(t);
	uv_timer_init(&d->loop, &m->timer);
	uv_timer_init(&d->loop, &m->kill_timer);
	m->timer.data = m->kill_timer.data = m;
	m->open_handles = 2;
	uv_timer_start(&m->timer, on_tick, POLL_MS, POLL_MS);
	d->mailpoll = m;
	return 0;
}

static void mailpoll_stop(struct hl_daemon *d)
{
	struct hl_mailpoll *m = d->mailpoll;
	if (!m)
		return;
	d->mailpoll = NULL;
	m->stopping = true;
	uv_timer_stop(&m->timer);
	uv_close((uv_handle_t *)&m->timer, on_closed);
	uv_close((uv_handle_t *)&m->kill_timer, on_closed);
	if (m->running && !m->child_done)
		hl_child_kill(d, &m->child, SIGTERM);
	if (m->running && !m->pipe_done) {
		/* Not waiting for EOF: a child stopped by someone never sends it. */
		uv_close((uv_handle_t *)&m->out, on_closed);
		m->pipe_done = true;
	}
}

static json_t *time_or_null(uint64_t wall_ms)
{
	char t[HL_RFC3339_LEN];
	if (!wall_ms)
		return json_null();
	hl_rfc3339((int64_t)wall_ms, t);
	return json_string(t);
}

/* The pickup as `status` shows it (the station's "email"). */
static json_t *status_json(struct hl_daemon *d)
{
	struct hl_mailpoll *m = d->mailpoll;
	if (!d->conf->email.line)
		return json_pack("{s:b}", "configured", 0);
	return json_pack("{s:b, s:s, s:s, s:b, s:o, s:o, s:I, s:i, s:i, s:o, s:o}",
			 "configured", 1,
			 "maildir", d->conf->email.maildir,
			 "state", m && m->failures ? "failing" : "ok",
			 "running", m && m->running,
			 "last_pickup", time_or_null(m ? m->last_run_wall_ms : 0),
			 "last_import_ok", time_or_null(m ? m->last_ok_wall_ms : 0),
			 "quarantined", (json_int_t)(m ? m->quarantined : 0),
			 "left", m ? (int)m->left : 0,
			 "failures", m ? (int)m->failures : 0,
			 "retry_at", time_or_null(m && m->failures ? m->retry_wall_ms : 0),
			 "last_error", m && m->last_error[0] ? json_string(m->last_error)
							     : json_null());
}

static void mailpoll_station_status(struct hl_daemon *d, json_t *station)
{
	json_object_set_new(station, "email", status_json(d));
}

const struct hl_service hl_mailpoll_service = {
	.name = "mailpoll",
	.start = mailpoll_start,
	.stop = mailpoll_stop,
	.station_status = mailpoll_station_status,
};
