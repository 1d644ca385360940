/* daemon/service.h — the daemon's services, and the hooks through which the
 * core tells them what happens.
 *
 * The daemon is a small core — its life (daemon.c), the peers (peer.c) and
 * their connections (conn.c), the group commit (commit.c), the control
 * socket (control.c) — and a table of services, each in its own file, that
 * the core walks in order.  A service never calls another: what one must
 * learn of another's doings reaches it through a hook of this table,
 * walked by the core (an engine's event about a check, a mail pickup that
 * imported items), or through a small interface of the core's (alarm.h:
 * checks and calls raise alarms, the alarms service acts on them).
 *
 * THE TABLE (daemon.c, `services`), in order:
 *   alarms     acting on alarms: log, `watch`, AlarmCommand (alarm.c)
 *   keys       key rotation: ours (completed at start, `key rotate`), the
 *              peers' (their NoiseKeys, status, alarms) (keys.c)
 *   delivery   one delivery engine per peer, new work in the store (delivery.c)
 *   staging    attachments streamed while `send -a` copies them (control_stage.c)
 *   failover   the email fallback while a link is down (failover.c)
 *   checks     line checks and their alarms (checks.c)
 *   mailpoll   the pickup of incoming mail (mailpoll.c)
 *   retention  `purge` as station.conf's Retain asks (retain.c)
 *   calls      live calls (calls.c)
 * The order is what the hooks need: the alarms run before anyone raises
 * one and are released last; an engine exists before failover and checks
 * look at it (peer_added); the "delivery", "paths" and "check" of a peer's
 * status, the "email" and "call" of the station's, come in that order; and
 * calls, which still records an item as it stops, stops first.
 *
 * THE HOOKS.  Any may be NULL.  "In order" is the table's order, "in
 * reverse" the opposite; everything runs on the loop's thread.
 *   start(d)            in order, once, before any peer is added.  A failure
 *                       (an error in ERR) stops the daemon: the services
 *                       started are stopped and released in reverse.
 *   peer_added(p)       in order, for each peer of station.conf once every
 *                       service has started, and for each one a reload adds.
 *   peer_changed(p, old) in order: a reload changed P's configuration (OLD is
 *                       what it was; P's NoiseKey is the same).
 *   session_up(p, c, replaced) in order: C is now P's confirmed session —
 *                       the link came up, or (REPLACED) a new session took
 *                       over from the one before without the link going down.
 *   session_down(p)     in reverse: P's session is gone and none replaced it
 *                       (also while the daemon stops).
 *   peer_removed(p)     in reverse: P leaves (a reload, or the daemon stops);
 *                       its connections are closed already.
 *   packet(c, ...)      a packet of the messages protocol's range arrived on
 *                       C, a confirmed session: to the one service whose
 *                       [pkt_first, pkt_last] holds its type, the narrowest
 *                       range when two do (calls' packets lie inside
 *                       delivery's range).
 *   writable(c)         in order: C's socket took what was queued.
 *   before_commit(d, now) in order, at the end of a turn, before the group
 *                       commit (commit.c): write what belongs in it.  A
 *                       failure (negative) rolls the transaction back.
 *   after_commit(d, ok) in order, right after the group commit (OK) or its
 *                       rollback: what was to wait until it is durable.
 *   engine_event(p, ev) in order: a delivery engine's event that is not
 *                       about a message (checks, agreements, equivocation).
 *   imported(d)         in order: a bundle import (the mail pickup) ran; the
 *                       store may hold what a peer sent by mail.
 *   reloaded(d)         in order: station.conf was read again.
 *   station_status(d, o), peer_status(p, o)  in order: each service sets
 *                       its keys of `status` (docs/protocol.md section 6)
 *                       in O, the MORE of station/status.h's structure.
 *   stop(d)             in reverse, once, when the daemon stops: start no
 *                       new work.  A service may still write into the
 *                       group commit here (calls records the call it ends);
 *                       the last commit and its after_commit hooks follow.
 *   release(d)          in reverse, after every peer is gone: let go of what
 *                       the peers' parts used (a handle their threads wake).
 *
 * INVARIANTS
 *   1. peer_added ran for every service before any other hook names P, and
 *      peer_removed runs once for each, after P's last session_down.
 *   2. session_up and session_down alternate for a peer, beginning with up
 *      (a replaced session brings a session_up with REPLACED and no down).
 *   3. stop and release run only for the services whose start ran, each at
 *      most once, in reverse.  After stop a service still gets what the
 *      last commit brings (before_commit, after_commit, engine_event) and
 *      the peers leaving (session_down, peer_removed); after release,
 *      nothing. */
#ifndef HL_DAEMON_SERVICE_H
#define HL_DAEMON_SERVICE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "conf/config.h"

struct hl_daemon;
struct hl_peer;
struct hl_conn;
struct hl_engine_evinfo;

struct hl_service {
	const char *name;
	int (*start)(struct hl_daemon *d, char *err, size_t errlen);
	void (*stop)(struct hl_daemon *d);
	void (*release)(struct hl_daemon *d);
	void (*peer_added)(struct hl_peer *p);
	void (*peer_changed)(struct hl_peer *p, const hl_peer_conf *old);
	void (*peer_removed)(struct hl_peer *p);
	void (*session_up)(struct hl_peer *p, struct hl_conn *c, bool replaced);
	void (*session_down)(struct hl_peer *p);
	uint8_t pkt_first, pkt_last;   /* packet: both 0 when none */
	void (*packet)(struct hl_conn *c, uint8_t type, const uint8_t *body, size_t len);
	void (*writable)(struct hl_conn *c);
	int (*before_commit)(struct hl_daemon *d, uint64_t now);
	void (*after_commit)(struct hl_daemon *d, bool committed);
	void (*engine_event)(struct hl_peer *p, const struct hl_engine_evinfo *ev);
	void (*imported)(struct hl_daemon *d);
	void (*reloaded)(struct hl_daemon *d);
	void (*station_status)(struct hl_daemon *d, json_t *station);
	void (*peer_status)(struct hl_peer *p, json_t *peer);
};

/* The services, each defined in its own file. */
extern const struct hl_service hl_alarm_service;
extern const struct hl_service hl_rotation_service;
extern const struct hl_service hl_delivery_service;
extern const struct hl_service hl_stage_service;
extern const struct hl_service hl_failover_service;
extern const struct hl_service hl_checks_service;
extern const struct hl_service hl_mailpoll_service;
extern const struct hl_service hl_retention_service;
extern const struct hl_service hl_calls_service;

/* The core's walks (service.c).  hl_services_set() takes the table (N
 * entries, kept, not copied) before anything else. */
void hl_services_set(struct hl_daemon *d, const struct hl_service *const *table, size_t n);
int hl_services_start(struct hl_daemon *d, char *err, size_t errlen);
void hl_services_stop(struct hl_daemon *d);
void hl_services_release(struct hl_daemon *d);
void hl_services_peer_added(struct hl_peer *p);
void hl_services_peer_changed(struct hl_peer *p, const hl_peer_conf *old);
void hl_services_peer_removed(struct hl_peer *p);
void hl_services_session_up(struct hl_peer *p, struct hl_conn *c, bool replaced);
void hl_services_session_down(struct hl_peer *p);
void hl_services_packet(struct hl_conn *c, uint8_t type, const uint8_t *body, size_t len);
void hl_services_writable(struct hl_conn *c);
int hl_services_before_commit(struct hl_daemon *d, uint64_t now);
void hl_services_after_commit(struct hl_daemon *d, bool committed);
void hl_services_engine_event(struct hl_peer *p, const struct hl_engine_evinfo *ev);
void hl_services_imported(struct hl_daemon *d);
void hl_services_reloaded(struct hl_daemon *d);
void hl_services_station_status(struct hl_daemon *d, json_t *station);
void hl_services_peer_status(struct hl_peer *p, json_t *peer);

#endif
