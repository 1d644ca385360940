/* daemon/peer.c — one record per pinned peer: when to dial it (backoff,
 * re-handshake), which of its sessions to keep (docs/protocol.md section 4),
 * and the state `hotline status` shows.
 *
 * Dialing.  A peer with an Address is dialed whenever it has no session
 * and no dial in progress: at once when it is added, then after each
 * failure or lost session with backoff (session/backoff.h), reset when a
 * session is confirmed.  The dialer of a session dials a fresh one when
 * the session is 9/10 of Rehandshake old; the duplicate rule (rule 1) then
 * lets the new session replace the old one.  One timer per peer serves
 * both purposes: when it fires, on_dial_timer() looks at what is there and
 * decides.
 *
 * Peer states for status: connected (a confirmed session), handshaking (a
 * connection to or from the peer is in its handshake), connecting (a dial
 * is resolving or connecting, or waiting for its backoff), idle (nothing:
 * no Address and the peer has not called).
 *
 * Lookup by NoiseKey.  Every incoming handshake names its initiator's key,
 * and a hub pins thousands of peers: d->by_key indexes them (open
 * addressing, linear probing, at most half full, SipHash of the key with a
 * seed of this process, so that keys chosen to collide cost nothing more
 * than a probe sequence of the few pinned keys that share a slot).  A key
 * that is not pinned is looked up like any other: its probe ends at an
 * empty slot. */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "station/control_proto.h"
#include "daemon/daemon_int.h"
#include "daemon/service.h"
#include "station/status.h"
#include "util/mem.h"

const char *hl_peer_state_name(enum hl_peer_state s)
{
	switch (s) {
	case HL_PEER_IDLE:
		return "idle";
	case HL_PEER_CONNECTING:
		return "connecting";
	case HL_PEER_HANDSHAKING:
		return "handshaking";
	case HL_PEER_CONNECTED:
		return "connected";
	}
	return "?";
}

void hl_peer_update_state(struct hl_peer *p)
{
	enum hl_peer_state s = HL_PEER_IDLE;
	if (p->removed)
		return;
	if (p->session) {
		s = HL_PEER_CONNECTED;
	} else {
		for (struct hl_conn *c = p->d->conns; c; c = c->next) {
			if (c->peer != p || c->phase == HL_CONN_CLOSING)
				continue;
			if (c->phase == HL_CONN_ACTIVE)
				s = HL_PEER_HANDSHAKING;
			else if (s == HL_PEER_IDLE)
				s = HL_PEER_CONNECTING;
		}
		if (s == HL_PEER_IDLE && p->dial_timer_armed && p->conf.address[0])
			s = HL_PEER_CONNECTING;
	}
	if (s != p->state) {
		hl_debug("%s: %s -> %s", p->conf.name, hl_peer_state_name(p->state),
			 hl_peer_state_name(s));
		p->state = s;
		p->since_wall_ms = hl_wall_ms();
	}
}

void hl_peer_set_error(struct hl_peer *p, const char *text)
{
	snprintf(p->last_error, sizeof(p->last_error), "%s", text);
	p->last_error_wall_ms = hl_wall_ms();
}

static void on_dial_timer(uv_timer_t *t)
{
	struct hl_peer *p = t->data;
	struct hl_daemon *d = p->d;
	p->dial_timer_armed = false;
	if (p->removed || d->stopping || p->dial || !p->conf.address[0])
		goto out;
	if (p->session) {
		/* Only the dialer of a session renews it. */
		if (!p->session->outbound)
			goto out;
		uint64_t now = uv_now(&d->loop);
		uint64_t opened = hl_session_opened_at(p->session->machine);
		uint64_t due = (uint64_t)d->conf->rehandshake_ms * 9 / 10;
		if (now - opened < due) {
			hl_peer_schedule_dial(p, due - (now - opened));
			goto out;
		}
		hl_debug("%s: session is %llu ms old: re-handshaking", p->conf.name,
			 (unsigned long long)(now - opened));
	}
	hl_conn_dial(d, p);
out:
	hl_peer_update_state(p);
}

void hl_peer_schedule_dial(struct hl_peer *p, uint64_t delay_ms)
{
	if (p->removed || p->d->stopping)
		return;
	uv_timer_start(&p->dial_timer, on_dial_timer, delay_ms, 0);
	p->dial_timer_armed = true;
}

static void cancel_dial_timer(struct hl_peer *p)
{
	uv_timer_stop(&p->dial_timer);
	p->dial_timer_armed = false;
}

static size_t key_slot(const struct hl_daemon *d, const uint8_t key[static HL_KEY_LEN])
{
	uint8_t h[crypto_shorthash_BYTES];
	uint64_t v = 0;
	crypto_shorthash(h, key, HL_KEY_LEN, d->by_key_seed);
	memcpy(&v, h, sizeof(v));
	return (size_t)(v & (d->by_key_cap - 1));
}

static void index_put(struct hl_daemon *d, struct hl_peer *p)
{
	size_t i = key_slot(d, p->noise_now);
	while (d->by_key[i])
		i = (i + 1) & (d->by_key_cap - 1);
	d->by_key[i] = p;
}

/* Makes the index anew for the peers in d->peers, with room for EXTRA
 * more (at most half full). */
static void index_rebuild(struct hl_daemon *d, size_t extra)
{
	size_t n = extra;
	for (struct hl_peer *p = d->peers; p; p = p->next)
		n++;
	if (!d->by_key)
		randombytes_buf(d->by_key_seed, sizeof(d->by_key_seed));
	size_t cap = 16;
	while (cap < 2 * n)
		cap *= 2;
	free(d->by_key);
	d->by_key = xcalloc(cap, sizeof(*d->by_key));
	d->by_key_cap = cap;
	for (struct hl_peer *p = d->peers; p; p = p->next)
		index_put(d, p);
}

void hl_peer_index_free(struct hl_daemon *d)
{
	free(d->by_key);
	d->by_key = NULL;
	d->by_key_cap = 0;
}

struct hl_peer *hl_peer_add(struct hl_daemon *d, const hl_peer_conf *pc)
{
	struct hl_peer *p = xcalloc(1, sizeof(*p));
	p->d = d;
	p->conf = *pc;
	memcpy(p->noise_now, pc->noise_key, HL_KEY_LEN);   /* keys.c may know better */
	hl_backoff_reset(&p->backoff);
	uv_timer_init(&d->loop, &p->dial_timer);
	p->dial_timer.data = p;
	p->state = HL_PEER_IDLE;
	p->since_wall_ms = hl_wall_ms();
	struct hl_peer **tail = &d->peers;
	size_t n = 0;
	for (; *tail; n++)
		tail = &(*tail)->next;
	if (2 * (n + 1) > d->by_key_cap)
		index_rebuild(d, 1);
	*tail = p;
	index_put(d, p);
	hl_services_peer_added(p);
	if (p->conf.address[0])
		hl_peer_schedule_dial(p, 0);
	hl_peer_update_state(p);
	return p;
}

static void on_peer_timer_closed(uv_handle_t *h)
{
	free(h->data);
}

void hl_peer_remove(struct hl_peer *p)
{
	struct hl_daemon *d = p->d;
	struct hl_peer **pp = &d->peers;
	while (*pp && *pp != p)
		pp = &(*pp)->next;
	if (*pp)
		*pp = p->next;
	p->next = NULL;
	p->removed = true;
	index_rebuild(d, 0);
	for (struct hl_conn *c = d->conns; c; c = c->next)
		if (c->peer == p)
			hl_conn_close(c, HL_CLOSE_REMOVED, NULL);
	p->session = p->dial = NULL;
	hl_services_peer_removed(p);
	cancel_dial_timer(p);
	uv_close((uv_handle_t *)&p->dial_timer, on_peer_timer_closed);
}

void hl_peer_update(struct hl_peer *p, const hl_peer_conf *pc)
{
	bool addr_changed = strcmp(p->conf.address, pc->address) != 0;
	hl_peer_conf old = p->conf;
	p->conf = *pc;
	hl_services_peer_changed(p, &old);
	if (!addr_changed)
		return;
	hl_info("%s: address is now %s", p->conf.name,
		p->conf.address[0] ? p->conf.address : "(none)");
	if (p->dial)
		hl_conn_close(p->dial, 0, NULL);
	hl_backoff_reset(&p->backoff);
	if (!p->session) {
		if (p->conf.address[0])
			hl_peer_schedule_dial(p, 0);
		else
			cancel_dial_timer(p);
	}
	hl_peer_update_state(p);
}

struct hl_peer *hl_peer_named(struct hl_daemon *d, const char *name)
{
	for (struct hl_peer *p = d->peers; name && p; p = p->next)
		if (strcmp(p->conf.name, name) == 0)
			return p;
	return NULL;
}

struct hl_peer *hl_peer_by_key(struct hl_daemon *d, const uint8_t key[static HL_KEY_LEN])
{
	if (!d->by_key)
		return NULL;
	for (size_t i = key_slot(d, key); d->by_key[i]; i = (i + 1) & (d->by_key_cap - 1))
		if (memcmp(d->by_key[i]->noise_now, key, HL_KEY_LEN) == 0)
			return d->by_key[i];
	return NULL;
}

void hl_peer_rekey(struct hl_peer *p, const uint8_t noise[static HL_KEY_LEN])
{
	if (memcmp(p->noise_now, noise, HL_KEY_LEN) == 0)
		return;
	memcpy(p->noise_now, noise, HL_KEY_LEN);
	index_rebuild(p->d, 0);
}

void hl_peer_session_confirmed(struct hl_peer *p, struct hl_conn *c)
{
	struct hl_daemon *d = p->d;
	struct hl_conn *old = p->session;
	const char *by = c->outbound ? "us" : "them";

	if (p->dial == c)
		p->dial = NULL;
	if (old) {
		if (!hl_session_keep_new(old->outbound, c->outbound, hl_signer_noise_pub(d->id),
				      p->noise_now)) {
			hl_debug("%s: keeping the session dialed by %s; dropping the one dialed by %s",
				 p->conf.name, old->outbound ? "us" : "them", by);
			hl_conn_close(c, HL_CLOSE_REPLACED, NULL);
			hl_peer_update_state(p);
			return;
		}
		p->session = c;
		hl_conn_close(old, HL_CLOSE_REPLACED, NULL);
		hl_info("%s: new session (dialed by %s) replaces the previous one", p->conf.name, by);
	} else {
		p->session = c;
		hl_info("%s: link up (dialed by %s, connection #%llu)", p->conf.name, by,
			(unsigned long long)c->id);
	}
	p->sessions++;
	p->session_wall_ms = hl_wall_ms();
	p->last_dial_error[0] = 0;
	hl_backoff_reset(&p->backoff);
	hl_services_session_up(p, c, old != NULL);
	if (c->outbound && p->conf.address[0])
		hl_peer_schedule_dial(p, (uint64_t)d->conf->rehandshake_ms * 9 / 10);
	else if (!p->dial)
		cancel_dial_timer(p);
	hl_peer_update_state(p);
}

void hl_peer_conn_gone(struct hl_peer *p, struct hl_conn *c, bool was_session, bool was_dial,
		       const char *errtext)
{
	struct hl_daemon *d = p->d;
	(void)c;
	if (was_session && !p->session)
		hl_services_session_down(p);
	if (p->removed || d->stopping)
		return;
	if (errtext)
		hl_peer_set_error(p, errtext);
	if (was_session && !p->session) {
		if (errtext)
			hl_warn("%s: link down: %s", p->conf.name, errtext);
		else
			hl_info("%s: session closed", p->conf.name);
	} else if (was_dial && errtext) {
		/* Log a failure once, not at every retry. */
		if (strcmp(errtext, p->last_dial_error) != 0)
			hl_info("%s: %s (retrying with backoff)", p->conf.name, errtext);
		else
			hl_debug("%s: %s", p->conf.name, errtext);
		snprintf(p->last_dial_error, sizeof(p->last_dial_error), "%s", errtext);
	} else if (errtext) {
		/* An inbound handshake that failed: anyone replaying the peer's
		 * message 1 can cause this, so the line is rate-limited. */
		if (hl_ratelimit_allow(&d->rl_unauth, uv_now(&d->loop)))
			hl_info("%s: inbound handshake failed: %s", p->conf.name, errtext);
	}

	if (p->conf.address[0] && !p->dial) {
		uint32_t delay = hl_backoff_next(&p->backoff, randombytes_random());
		if (was_session && !p->session)
			hl_peer_schedule_dial(p, delay);      /* replaces a re-handshake timer */
		else if (was_dial || !p->dial_timer_armed)
			hl_peer_schedule_dial(p, delay);
	}
	hl_peer_update_state(p);
}

/* *FIELD = the RFC 3339 text of WALL_MS, or none for 0. */
static void set_time(char **field, uint64_t wall_ms)
{
	char t[HL_RFC3339_LEN];
	if (wall_ms)
		hl_rfc3339(wall_ms, t);
	hl_status_set(field, wall_ms ? t : NULL);
}

void hl_peer_status(struct hl_peer *p, struct hl_status_peer *e)
{
	char fp[HL_FP_TEXT_LEN];
	struct hl_conn *s = p->session;

	hl_peer_update_state(p);
	hl_fingerprint_text(p->conf.fingerprint, fp);
	hl_status_set(&e->name, p->conf.name);
	hl_status_set(&e->fingerprint, fp);
	hl_status_set(&e->address, p->conf.address[0] ? p->conf.address : NULL);
	hl_status_set(&e->state, hl_peer_state_name(p->state));
	set_time(&e->since, p->since_wall_ms);
	hl_status_set(&e->dialed_by, s ? (s->outbound ? "us" : "them") : NULL);
	hl_status_set(&e->last_error, p->last_error[0] ? p->last_error : NULL);
	set_time(&e->last_error_at, p->last_error[0] ? p->last_error_wall_ms : 0);
	e->rtt_ms = s ? hl_session_rtt_ms(s->machine) : -1;
	e->sessions = (int64_t)p->sessions;
	set_time(&e->session_since, s ? p->session_wall_ms : 0);
}

const struct hl_conn_events hl_peer_conn_events = {
	.peer_of = hl_peer_by_key,
	.progress = hl_peer_update_state,
	.confirmed = hl_peer_session_confirmed,
	.gone = hl_peer_conn_gone,
};

bool hl_peer_key_taken(void *user, const char *peer, const uint8_t key[static 32])
{
	struct hl_daemon *d = user;
	if (memcmp(hl_signer_noise_pub(d->id), key, 32) == 0 ||
	    memcmp(hl_signer_sign_pk(d->id), key, 32) == 0)
		return true;
	for (struct hl_peer *p = d->peers; p; p = p->next)
		if (strcmp(p->conf.name, peer) != 0 &&
		    (memcmp(p->noise_now, key, 32) == 0 || memcmp(p->conf.noise_key, key, 32) == 0 ||
		     memcmp(p->conf.signing_key, key, 32) == 0))
			return true;
	return false;
}
