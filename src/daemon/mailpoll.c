/* daemon/mailpoll.c — the daemon's pickup of incoming mail (docs/bundle.md,
 * "By email"): while station.conf has an [Email] section, every POLL_MS it
 * looks whether the Maildir's new/ holds anything and, if so, runs
 * `hotline -d DIR bundle import --maildir` as a child process (one at a
 * time), its output going to the daemon's log.
 *
 * Why a child and not a call: an import can take seconds (a bundle with a
 * large document is checked whole before the commit) and must not stall
 * the event loop that carries FLASH traffic; and the command is the one
 * path already proven safe beside a running daemon (its own store
 * connection and transaction; it pokes the daemon afterwards, so receipts
 * go out on whatever path is up).  A child killed mid-import (the daemon
 * stopping) commits nothing and leaves the mail in new/ for the next run.
 *
 * States: IDLE (timer armed) -> RUNNING (child alive; ticks do nothing)
 * -> IDLE when it exits.  Stopping: the timer is closed, a running child
 * gets SIGTERM, and the struct is freed once both handles have closed. */
#include <dirent.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon/daemon_int.h"
#include "util/log.h"
#include "util/mem.h"
#include "util/timefmt.h"

#define POLL_MS 1000

struct hl_mailpoll {
	struct hl_daemon *d;
	uv_timer_t timer;
	uv_process_t proc;
	bool running;                /* the child is alive */
	bool stopping;
	int open_handles;            /* freed at 0, once stopping */
	char *self;                  /* this program, to run as the child */
	uint64_t last_run_wall_ms, last_ok_wall_ms;   /* for status */
	int64_t last_status;
};

static void maybe_free(struct hl_mailpoll *m)
{
	if (m->stopping && m->open_handles == 0) {
		free(m->self);
		free(m);
	}
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

static void on_exit_cb(uv_process_t *proc, int64_t status, int term_signal)
{
	struct hl_mailpoll *m = proc->data;
	if (status != 0 || term_signal != 0)
		hl_warn("mail pickup exited with status %lld%s", (long long)status,
			term_signal ? " (killed by a signal)" : "");
	m->running = false;
	m->last_status = term_signal ? -1 : status;
	if (status == 0 && term_signal == 0)
		m->last_ok_wall_ms = hl_wall_ms();
	uv_close((uv_handle_t *)proc, on_closed);
	/* What came in may call for receipts by mail at once (failover.c). */
	if (!m->stopping)
		hl_failover_kick(m->d);
}

static void on_tick(uv_timer_t *t)
{
	struct hl_mailpoll *m = t->data;
	struct hl_daemon *d = m->d;
	if (m->stopping || m->running || d->stopping || !d->conf->email.line ||
	    !has_new_mail(d->conf->email.maildir))
		return;
	char *args[] = { m->self, "-d", d->dir, "bundle", "import", "--maildir", NULL };
	uv_stdio_container_t stdio[3] = {
		{ .flags = UV_IGNORE },
		{ .flags = UV_INHERIT_FD, .data.fd = 2 },  /* its report goes to our log */
		{ .flags = UV_INHERIT_FD, .data.fd = 2 },
	};
	uv_process_options_t opt = {
		.exit_cb = on_exit_cb, .file = m->self, .args = args,
		.stdio_count = 3, .stdio = stdio,
	};
	m->proc.data = m;
	int ret = uv_spawn(&d->loop, &m->proc, &opt);
	m->open_handles++;
	if (ret < 0) {
		hl_error("cannot run the mail pickup %s: %s", m->self, uv_strerror(ret));
		uv_close((uv_handle_t *)&m->proc, on_closed);
		return;
	}
	m->running = true;
	m->last_run_wall_ms = hl_wall_ms();
	hl_debug("mail pickup started (pid %d)", m->proc.pid);
}

void hl_mailpoll_start(struct hl_daemon *d)
{
	char self[4096];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n <= 0) {
		hl_warn("cannot find this program's path: no mail pickup by the daemon");
		return;
	}
	self[n] = '\0';
	struct hl_mailpoll *m = xcalloc(1, sizeof(*m));
	m->d = d;
	m->self = xstrdup(self);
	uv_timer_init(&d->loop, &m->timer);
	m->timer.data = m;
	m->open_handles = 1;
	uv_timer_start(&m->timer, on_tick, POLL_MS, POLL_MS);
	d->mailpoll = m;
}

void hl_mailpoll_stop(struct hl_daemon *d)
{
	struct hl_mailpoll *m = d->mailpoll;
	if (!m)
		return;
	d->mailpoll = NULL;
	m->stopping = true;
	uv_timer_stop(&m->timer);
	uv_close((uv_handle_t *)&m->timer, on_closed);
	if (m->running)
		uv_process_kill(&m->proc, SIGTERM);
}

static json_t *time_or_null(uint64_t wall_ms)
{
	char t[HL_RFC3339_LEN];
	if (!wall_ms)
		return json_null();
	hl_rfc3339((int64_t)wall_ms, t);
	return json_string(t);
}

json_t *hl_mailpoll_status_json(struct hl_daemon *d)
{
	struct hl_mailpoll *m = d->mailpoll;
	if (!d->conf->email.line)
		return json_pack("{s:b}", "configured", 0);
	return json_pack("{s:b, s:s, s:o, s:o, s:o}", "configured", 1,
			 "maildir", d->conf->email.maildir,
			 "last_pickup", time_or_null(m ? m->last_run_wall_ms : 0),
			 "last_import_ok", time_or_null(m ? m->last_ok_wall_ms : 0),
			 "last_error", m && m->last_run_wall_ms && m->last_status != 0 && !m->running
				 ? json_string(m->last_status < 0 ? "the pickup was killed"
						  : "the pickup left mail in new/ (see the log)")
				 : json_null());
}
