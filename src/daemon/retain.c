/* daemon/retain.c — the daemon applies `Retain` by itself (msg/retain.h,
 * docs/retention.md): while station.conf sets a Retain anywhere, it runs
 * `hotline -d DIR purge --yes` as a child process shortly after it starts
 * and after each reload of station.conf (so a new Retain is applied within
 * seconds), then every hour; the child's report goes to the daemon's log.
 *
 * Why a child, as for the mail pickup (mailpoll.c): a purge that has a
 * year of attachments to remove must not stall the loop that carries
 * FLASH traffic, and the command is the same code the operator runs, with
 * its own store connection and short transactions (one per batch of
 * messages), so the daemon's commits only ever wait for one batch.
 *
 * States: IDLE (timer armed) -> RUNNING (child alive; a tick or a kick
 * then only asks for another run when it ends) -> IDLE.  Stopping: the
 * timer is closed, a running child gets SIGTERM (a purge killed between
 * batches has committed whole batches; its files stay queued for the next
 * run), the struct is freed once both handles have closed. */
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <unistd.h>

#include "daemon/daemon_int.h"
#include "daemon/service.h"
#include "util/log.h"
#include "util/mem.h"

#define FIRST_MS 2000                 /* after the start, and after a reload */
#define EVERY_MS (3600u * 1000)

struct hl_retainer {
	struct hl_daemon *d;
	uv_timer_t timer;
	uv_process_t proc;
	bool running, again, stopping;
	int open_handles;             /* freed at 0, once stopping */
	char *self;                   /* this program, to run as the child */
};

static void maybe_free(struct hl_retainer *r)
{
	if (r->stopping && r->open_handles == 0) {
		free(r->self);
		free(r);
	}
}

static void on_closed(uv_handle_t *h)
{
	struct hl_retainer *r = h->data;
	r->open_handles--;
	maybe_free(r);
}

/* Some Retain is set: there is something to apply. */
static bool configured(const hl_station_conf *conf)
{
	if (conf->retain_ms)
		return true;
	for (size_t i = 0; i < conf->npeers; i++)
		if (hl_conf_retain_ms(conf, &conf->peers[i]))
			return true;
	return false;
}

static void on_tick(uv_timer_t *t);

static void on_exit_cb(uv_process_t *proc, int64_t status, int term_signal)
{
	struct hl_retainer *r = proc->data;
	if (status != 0 || term_signal != 0)
		hl_warn("retention: the purge exited with status %lld%s", (long long)status,
			term_signal ? " (killed by a signal)" : "");
	r->running = false;
	uv_close((uv_handle_t *)proc, on_closed);
	if (!r->stopping && r->again) {
		r->again = false;
		uv_timer_start(&r->timer, on_tick, FIRST_MS, EVERY_MS);
	}
}

static void on_tick(uv_timer_t *t)
{
	struct hl_retainer *r = t->data;
	struct hl_daemon *d = r->d;
	if (r->stopping || d->stopping || !configured(d->conf))
		return;
	if (r->running) {
		r->again = true;
		return;
	}
	char *args[] = { r->self, "-d", d->dir, "purge", "--yes", NULL };
	uv_stdio_container_t stdio[3] = {
		{ .flags = UV_IGNORE },
		{ .flags = UV_INHERIT_FD, .data.fd = 2 },  /* its report goes to our log */
		{ .flags = UV_INHERIT_FD, .data.fd = 2 },
	};
	uv_process_options_t opt = {
		.exit_cb = on_exit_cb, .file = r->self, .args = args,
		.stdio_count = 3, .stdio = stdio,
	};
	r->proc.data = r;
	int ret = uv_spawn(&d->loop, &r->proc, &opt);
	r->open_handles++;
	if (ret < 0) {
		hl_error("retention: cannot run %s purge: %s", r->self, uv_strerror(ret));
		uv_close((uv_handle_t *)&r->proc, on_closed);
		return;
	}
	r->running = true;
	hl_debug("retention: purge started (pid %d)", r->proc.pid);
}

static int retainer_start(struct hl_daemon *d, char *err, size_t errlen)
{
	char self[4096];
	(void)err;
	(void)errlen;
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n <= 0) {
		hl_warn("cannot find this program's path: Retain is applied only by "
			"'hotline purge'");
		return 0;
	}
	self[n] = '\0';
	struct hl_retainer *r = xcalloc(1, sizeof(*r));
	r->d = d;
	r->self = xstrdup(self);
	uv_timer_init(&d->loop, &r->timer);
	r->timer.data = r;
	r->open_handles = 1;
	uv_timer_start(&r->timer, on_tick, FIRST_MS, EVERY_MS);
	d->retainer = r;
	return 0;
}

/* station.conf was read again: a new Retain applies within seconds. */
static void retainer_reloaded(struct hl_daemon *d)
{
	struct hl_retainer *r = d->retainer;
	if (r && !r->stopping)
		uv_timer_start(&r->timer, on_tick, FIRST_MS, EVERY_MS);
}

static void retainer_stop(struct hl_daemon *d)
{
	struct hl_retainer *r = d->retainer;
	if (!r)
		return;
	d->retainer = NULL;
	r->stopping = true;
	uv_timer_stop(&r->timer);
	uv_close((uv_handle_t *)&r->timer, on_closed);
	if (r->running)
		uv_process_kill(&r->proc, SIGTERM);
}

const struct hl_service hl_retention_service = {
	.name = "retention",
	.start = retainer_start,
	.stop = retainer_stop,
	.reloaded = retainer_reloaded,
};
