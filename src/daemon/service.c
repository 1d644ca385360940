/* daemon/service.c — the core's walks of the services' table: each hook in
 * order or in reverse, as service.h says, and the packet dispatch.  It
 * names no service: the table comes from daemon.c. */
#include "daemon/service.h"

#include "daemon/daemon_int.h"

#define EACH(d, s) \
	for (size_t i_ = 0; i_ < (d)->n_services && ((s) = (d)->services[i_], 1); i_++)
#define EACH_REVERSE(d, s) \
	for (size_t i_ = (d)->n_services; i_-- > 0 && ((s) = (d)->services[i_], 1);)

void hl_services_set(struct hl_daemon *d, const struct hl_service *const *table, size_t n)
{
	d->services = table;
	d->n_services = n;
	d->n_started = 0;
	/* Each packet type to the narrowest range that holds it. */
	for (unsigned t = 0; t < 256; t++) {
		const struct hl_service *best = NULL;
		for (size_t i = 0; i < n; i++) {
			const struct hl_service *s = table[i];
			if (!s->packet || t < s->pkt_first || t > s->pkt_last)
				continue;
			if (!best || s->pkt_last - s->pkt_first < best->pkt_last - best->pkt_first)
				best = s;
		}
		d->rec_owner[t] = best;
	}
}

int hl_services_start(struct hl_daemon *d, char *err, size_t errlen)
{
	for (; d->n_started < d->n_services; d->n_started++) {
		const struct hl_service *s = d->services[d->n_started];
		int ret = s->start ? s->start(d, err, errlen) : 0;
		if (ret < 0)
			return ret;
	}
	return 0;
}

void hl_services_stop(struct hl_daemon *d)
{
	for (size_t i = d->n_started; i-- > 0;)
		if (d->services[i]->stop)
			d->services[i]->stop(d);
}

void hl_services_release(struct hl_daemon *d)
{
	for (size_t i = d->n_started; i-- > 0;)
		if (d->services[i]->release)
			d->services[i]->release(d);
	d->n_started = 0;
}

void hl_services_peer_added(struct hl_peer *p)
{
	const struct hl_service *s;
	EACH(p->d, s)
		if (s->peer_added)
			s->peer_added(p);
}

void hl_services_peer_changed(struct hl_peer *p, const hl_peer_conf *old)
{
	const struct hl_service *s;
	EACH(p->d, s)
		if (s->peer_changed)
			s->peer_changed(p, old);
}

void hl_services_peer_removed(struct hl_peer *p)
{
	const struct hl_service *s;
	EACH_REVERSE(p->d, s)
		if (s->peer_removed)
			s->peer_removed(p);
}

void hl_services_session_up(struct hl_peer *p, struct hl_conn *c, bool replaced)
{
	const struct hl_service *s;
	EACH(p->d, s)
		if (s->session_up)
			s->session_up(p, c, replaced);
}

void hl_services_session_down(struct hl_peer *p)
{
	const struct hl_service *s;
	EACH_REVERSE(p->d, s)
		if (s->session_down)
			s->session_down(p);
}

void hl_services_packet(struct hl_conn *c, uint8_t type, const uint8_t *body, size_t len)
{
	const struct hl_service *s = c->d->rec_owner[type];
	if (s)
		s->packet(c, type, body, len);
}

void hl_services_writable(struct hl_conn *c)
{
	const struct hl_service *s;
	EACH(c->d, s)
		if (s->writable)
			s->writable(c);
}

int hl_services_before_commit(struct hl_daemon *d, uint64_t now)
{
	const struct hl_service *s;
	EACH(d, s)
		if (s->before_commit) {
			int ret = s->before_commit(d, now);
			if (ret < 0)
				return ret;
		}
	return 0;
}

void hl_services_after_commit(struct hl_daemon *d, bool committed)
{
	const struct hl_service *s;
	EACH(d, s)
		if (s->after_commit)
			s->after_commit(d, committed);
}

void hl_services_engine_event(struct hl_peer *p, const struct hl_engine_evinfo *ev)
{
	const struct hl_service *s;
	EACH(p->d, s)
		if (s->engine_event)
			s->engine_event(p, ev);
}

void hl_services_imported(struct hl_daemon *d)
{
	const struct hl_service *s;
	EACH(d, s)
		if (s->imported)
			s->imported(d);
}

void hl_services_reloaded(struct hl_daemon *d)
{
	const struct hl_service *s;
	EACH(d, s)
		if (s->reloaded)
			s->reloaded(d);
}

void hl_services_station_status(struct hl_daemon *d, json_t *station)
{
	const struct hl_service *s;
	EACH(d, s)
		if (s->station_status)
			s->station_status(d, station);
}

void hl_services_peer_status(struct hl_peer *p, json_t *peer)
{
	const struct hl_service *s;
	EACH(p->d, s)
		if (s->peer_status)
			s->peer_status(p, peer);
}
