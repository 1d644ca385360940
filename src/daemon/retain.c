/* daemon/retain.c — the daemon applies `Retain` by itself (msg/retain.h,
 * docs/retention.md): while station.conf sets a Retain anywhere, it runs
 * `hotline -d DIR purge --yes` as a child process (the spawner runs it,
 * daemon/spawn.h) shortly after it starts
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
#include "daemon/spawn.h"
#include "util/log.h"
#include "util/mem.h"

#define FIRST_MS 2000                 /* after the start, and after a reload */
#define EVERY_MS (3600u * 1000)

struct hl_retainer {
	struct hl_daemon *d;
	uv_timer_t timer;
	struct hl_child child;        /* run by the spawner (daemon/spawn.h) */
	bool running, again, stopping;
	int open_handles;             /* freed at 0, once stopping (the child counts) */
};

static void maybe_free(struct hl_retainer *r)
{
	if (r->stopping && r->open_handles == 0)
		free(r);
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

static void on_exit_cb(struct hl_child *c, int64_t status, int term_signal)
{
	struct hl_retainer *r = c->data;
	if (status != 0 || term_signal != 0)
		hl_warn("retention: the purge exited with status %lld%s", (long long)status,
			term_signal ? " (killed by a signal)" : "");
	r->running = false;
	if (!r->stopping && r->again) {
		r->again = false;
		uv_timer_start(&r->timer, on_tick, FIRST_MS, EVERY_MS);
	}
	r->open_handles--;
	maybe_free(r);
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
	/* hotline -d DIR purge --yes; its report goes to our log */
	struct hl_spawn_req req = { .kind = HL_SPAWN_PURGE, .out_fd = STDERR_FILENO,
				    .err_to_out = true };
	char err[HL_SPAWN_TEXT_MAX];
	r->child.data = r;
	r->child.exit_cb = on_exit_cb;
	if (hl_spawn(d, &r->child, &req, err, sizeof(err)) < 0) {
		hl_error("retention: cannot run purge: %s", err);
		return;
	}
	r->open_handles++;
	r->running = true;
	hl_debug("retention: purge started (pid %d)", r->child.pid);
}

static int retainer_start(struct hl_daemon *d, char *err, size_t errlen)
{
	(void)err;
	(void)errlen;
	struct hl_retainer *r = xcalloc(1, sizeof(*r));
	r->d = d;
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
		hl_child_kill(d, &r->child, SIGTERM);
}

const struct hl_service hl_retention_service = {
	.name = "retention",
	.start = retainer_start,
	.stop = retainer_stop,
	.reloaded = retainer_reloaded,
};
