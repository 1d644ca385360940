/* daemon/reload.c — station.conf read again while the daemon runs: when
 * the station directory changes (the file is replaced by rename, so the
 * directory is watched, not the file) and on the control request
 * "reload", each time logged.  A bad file, or a station that someone else
 * could now change, is logged and the running configuration kept.  User
 * takes effect at the next start; LogLevel at once (unless `run -v` or
 * `-q` chose the level).  Peers are matched by Name: one that is gone or
 * whose NoiseKey changed is removed (its sessions get CLOSE "peer
 * removed"), a new one is added and dialed, an Address change redirects
 * the dialing, and the services hear of each (service.h: peer_added,
 * peer_changed, peer_removed, then reloaded).  Keepalive and timeouts
 * apply to sessions made after the reload. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/daemon_int.h"
#include "daemon/service.h"
#include "daemon/spawn.h"
#include "util/err.h"
#include "util/mem.h"

#define RELOAD_DEBOUNCE_MS 100

struct hl_reload {
	uv_fs_event_t watch;
	uv_timer_t timer;            /* the debounce: one read for a burst of events */
	int open_handles;
};

static void apply_conf(struct hl_daemon *d, hl_station_conf *nc)
{
	/* Peers gone, re-keyed or changed. */
	struct hl_peer *next;
	for (struct hl_peer *p = d->peers; p; p = next) {
		next = p->next;
		const hl_peer_conf *np = hl_conf_peer_by_name(nc, p->conf.name);
		if (!np || memcmp(np->noise_key, p->conf.noise_key, HL_KEY_LEN) != 0) {
			hl_info("%s: %s: closing its sessions", p->conf.name,
				np ? "its NoiseKey changed" : "removed from station.conf");
			hl_peer_remove(p);
		}
	}
	hl_station_conf *old = d->conf;
	d->conf = nc;
	for (size_t i = 0; i < nc->npeers; i++) {
		const hl_peer_conf *np = &nc->peers[i];
		struct hl_peer *p = d->peers;
		while (p && strcmp(p->conf.name, np->name) != 0)
			p = p->next;
		if (p) {
			hl_peer_update(p, np);
		} else {
			hl_info("%s: added", np->name);
			hl_peer_add(d, np);
		}
	}
	/* Keep the list in the file's order, for status. */
	struct hl_peer *sorted = NULL, **tail = &sorted;
	for (size_t i = 0; i < nc->npeers; i++) {
		struct hl_peer **pp = &d->peers;
		while (*pp && strcmp((*pp)->conf.name, nc->peers[i].name) != 0)
			pp = &(*pp)->next;
		if (*pp) {
			struct hl_peer *p = *pp;
			*pp = p->next;
			p->next = NULL;
			*tail = p;
			tail = &p->next;
		}
	}
	*tail = d->peers;   /* nothing should be left; keep it if there is */
	d->peers = sorted;

	if (strcmp(old->listen, nc->listen) != 0) {
		char err[HL_CONF_ERR_LEN];
		if (!nc->listen[0]) {
			hl_listen_stop(d);
			hl_info("no longer listening");
		} else if (hl_listen_start(d, nc->listen, err, sizeof(err)) < 0) {
			hl_error("%s; still listening on %s", err,
				 d->listen_addr[0] ? d->listen_addr : "nothing");
		}
	}
	hl_conf_free(old);
}

int hl_daemon_reload(struct hl_daemon *d, char *err, size_t errlen)
{
	char cerr[HL_CONF_ERR_LEN] = "";
	hl_station_conf *nc = NULL;
	if (d->stopping) {
		snprintf(err, errlen, "the daemon is shutting down");
		return HL_ESTATE;
	}
	/* Through the spawner: the sandbox keeps station.conf out of reach. */
	int ret = hl_spawner_conf_load(d, &nc, cerr);
	if (ret < 0) {
		snprintf(err, errlen, "%s", cerr[0] ? cerr : hl_strerror(ret));
		hl_error("station.conf not reloaded, keeping the running configuration: %s", err);
		return ret;
	}
	hl_info("station.conf reloaded: %zu peer%s", nc->npeers, nc->npeers == 1 ? "" : "s");
	if (strcmp(nc->email.maildir, d->conf->email.maildir) != 0 && d->conf->sandbox)
		hl_warn("station.conf: Maildir changed to '%s': the daemon watches it once it is "
			"next started (its sandbox lets it see the Maildir it started with)",
			nc->email.maildir);
	if (strcmp(nc->user, d->conf->user) != 0)
		hl_warn("station.conf: User changed to '%s': that takes effect when the daemon is "
			"next started", nc->user);
	if (nc->log_level)
		hl_log_set_default_level((enum hl_log_level)(nc->log_level - 1));
	apply_conf(d, nc);
	hl_services_reloaded(d);
	return 0;
}

static void on_reload_timer(uv_timer_t *t)
{
	struct hl_daemon *d = t->data;
	char err[HL_CONF_ERR_LEN];
	(void)hl_daemon_reload(d, err, sizeof(err));
}

static void on_dir_event(uv_fs_event_t *h, const char *filename, int events, int status)
{
	struct hl_daemon *d = h->data;
	(void)events;
	if (status < 0) {
		hl_warn("watching %s: %s", d->dir, uv_strerror(status));
		return;
	}
	/* A NULL name means "something in the directory": check anyway. */
	if (filename && strcmp(filename, HL_CONF_FILE) != 0)
		return;
	/* Several events come for one edit: re-read once they settle. */
	if (!d->stopping)
		uv_timer_start(&d->reload->timer, on_reload_timer, RELOAD_DEBOUNCE_MS, 0);
}

static void on_closed(uv_handle_t *h)
{
	struct hl_reload *r = h->data;
	if (--r->open_handles == 0)
		free(r);
}

void hl_reload_watch(struct hl_daemon *d)
{
	struct hl_reload *r = xcalloc(1, sizeof(*r));
	uv_timer_init(&d->loop, &r->timer);
	r->timer.data = d;
	r->open_handles = 2;
	uv_fs_event_init(&d->loop, &r->watch);
	r->watch.data = d;
	d->reload = r;
	int ret = uv_fs_event_start(&r->watch, on_dir_event, d->dir, 0);
	if (ret < 0)
		/* Not fatal: "reload" on the control socket still works. */
		hl_warn("cannot watch %s for changes (%s): run 'hotline' commands or send "
			"\"reload\" to apply changes", d->dir, uv_strerror(ret));
}

void hl_reload_unwatch(struct hl_daemon *d)
{
	struct hl_reload *r = d->reload;
	if (!r)
		return;
	d->reload = NULL;
	r->timer.data = r->watch.data = r;
	uv_close((uv_handle_t *)&r->watch, on_closed);
	uv_close((uv_handle_t *)&r->timer, on_closed);
}
