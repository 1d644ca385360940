/* daemon/daemon_int.h — the daemon's internal data model, shared by its
 * files.  The daemon is a small core and a table of services (service.h).
 *
 * The core: daemon.c (start and stop, the services' table), reload.c
 * (station.conf read again), peer.c (one record per pinned peer: dialing,
 * the one-session rule, state for `status`), conn.c (TCP connections, each
 * driving one session; guard.c bounds the unauthenticated ones), commit.c
 * (the store and the group commit), control.c (the control socket and its
 * table of requests; clients.c its connections), service.c (the walks of
 * the services' hooks).  The services, in the table's order: alarm.c,
 * delivery.c, control_stage.c (staging), failover.c, checks.c, mailpoll.c,
 * retain.c, calls.c; control_send.c answers the request "send".
 *
 * Who writes what.  struct hl_daemon's fields above "the services" are the
 * core's; each service keeps its state behind one pointer that only its
 * own file writes (NULL while it does not run), and the per-peer fields
 * say whose they are.  A service never calls another: the core walks the
 * hooks (service.h), and the few calls a service makes into the core are
 * declared below, by file.
 *
 * Ownership.  The daemon owns the peers and the connections.  A connection
 * points at its peer once message 1 named the peer's key (or from the
 * start, when we dialed); a peer points at its confirmed session and at
 * the dial in progress.  Closing a connection detaches it from its peer at
 * once; the memory goes when libuv has closed its handles (refs == 0).
 * A removed peer likewise lingers, detached, until its timer is closed.
 *
 * Everything runs on the loop's thread. */
#ifndef HL_DAEMON_INT_H
#define HL_DAEMON_INT_H

#include <jansson.h>
#include <sodium.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "conf/config.h"
#include "crypto/signer.h"
#include "deliver/engine.h"
#include "session/backoff.h"
#include "session/session.h"
#include "session/replay.h"
#include "util/log.h"
#include "wire/packet.h"

#define HL_MAX_UNAUTH 64              /* inbound connections before message 1 */
#define HL_MAX_PENDING_PER_PEER 8     /* unconfirmed inbound per peer, empty payloads */
#define HL_SEEN_EPHEMERALS 4096       /* message 1 ephemeral keys remembered */
#define HL_SESSION_MAX_AGE_MS (HL_DEFAULT_REHANDSHAKE_MS + 5 * 60 * 1000)
#define HL_ERRTEXT_LEN 400

struct hl_daemon;
struct hl_peer;
struct hl_guard;

/* A source of connections (guard.c): an IPv4 address (as ::ffff:a.b.c.d),
 * or an IPv6 /64. */
struct hl_source {
	uint8_t addr[16];
};

/* A token bucket (guard.c): full at first. */
struct hl_bucket {
	double tokens;
	uint64_t last_ms;
	bool init;
};

enum hl_conn_phase {
	HL_CONN_RESOLVING,   /* outbound: looking up the host name */
	HL_CONN_CONNECTING,  /* outbound: TCP connect in progress */
	HL_CONN_ACTIVE,      /* TCP up: the session runs */
	HL_CONN_CLOSING,     /* handles closing; detached from everything */
};

struct hl_conn {
	struct hl_daemon *d;
	struct hl_peer *peer;        /* NULL while inbound and unauthenticated */
	hl_session *machine;          /* the session state machine (session/session.h) */
	bool outbound;
	enum hl_conn_phase phase;
	uint64_t id;                 /* for log lines */
	char remote[HL_ADDR_MAX + 1]; /* "ip:port" or the dialed address */
	int refs;                    /* handles and requests that will call back */
	bool gai_pending;
	uv_tcp_t tcp;
	uv_timer_t timer;
	uv_connect_t connect_req;
	uv_getaddrinfo_t gai_req;
	struct hl_conn *prev, *next;             /* d->conns */
	struct hl_conn *uprev, *unext;           /* d->unauth (inbound, before message 1) */
	bool in_unauth;
	bool flushing;               /* inside hl_conn_flush (conn.c) */
	struct hl_source src;        /* guard.c: inbound, where from; outbound, where to */
	int guard_slot;              /* guard.c: its source's entry while in_unauth */
	bool spent, spent_all;       /* guard.c: budget tokens spent on its message 1 */
	struct hl_peer *named;       /* the peer message 1 named, while it is read */
};

enum hl_peer_state { HL_PEER_IDLE, HL_PEER_CONNECTING, HL_PEER_HANDSHAKING, HL_PEER_CONNECTED };

struct hl_peer {
	struct hl_daemon *d;
	hl_peer_conf conf;
	/* The NoiseKey the peer's handshakes use now: its card's, or its last
	 * key rotation's (keys.c); the by_key index is on it. */
	uint8_t noise_now[HL_KEY_LEN];
	struct hl_conn *session;     /* the confirmed session, at most one */
	struct hl_conn *dial;        /* our outbound attempt in progress */
	uv_timer_t dial_timer;       /* next dial, or the re-handshake */
	bool dial_timer_armed;
	struct hl_backoff backoff;
	bool removed;
	enum hl_peer_state state;
	uint64_t since_wall_ms;
	char last_error[HL_ERRTEXT_LEN];   /* "" when none */
	uint64_t last_error_wall_ms;
	uint64_t sessions;           /* sessions confirmed since the daemon started */
	uint64_t session_wall_ms;    /* when the current session was confirmed */
	char last_dial_error[HL_ERRTEXT_LEN]; /* to log a repeated failure once */
	hl_engine *engine;           /* delivery.c's (others read it); NULL: no delivery */
	int lowat;                   /* the session socket's TCP_NOTSENT_LOWAT (delivery.c) */
	int64_t next_check_ms;       /* checks.c: the next scheduled check, wall ms; 0 none */
	int64_t last_sched_ms;       /* when the last scheduled check was made */
	struct hl_ratelimit rl_checks_in; /* checks.c: log lines about the peer's checks */
	struct hl_failover_peer *failover; /* failover.c */
	/* The handshake (conn.c, guard.c): the greatest message 1 timestamp
	 * accepted from the peer, the last one we sent it, and the budget of
	 * its accepted messages 1.  Kept across connections and reloads. */
	struct hl_replay_window replay;
	struct hl_stamp last_stamp;
	struct hl_bucket hs_budget;
	struct hl_peer *next;        /* d->peers, in station.conf order */
};

struct hl_control;
struct hl_clients;
struct hl_keys;
struct hl_reload;
struct hl_control_client;
struct hl_service;
struct hl_alarms;

struct hl_daemon {
	uv_loop_t loop;
	bool loop_inited;
	char *dir;
	int dirfd;                   /* O_PATH: control socket, lock, stale socket */
	int lockfd;
	/* After a key rotation (rotation.c, docs/rotation.md): the previous keys,
	 * for the handshakes and bundles of peers that still pin them; NULL
	 * when the station never rotated. */
	hl_signer *id_prev;
	const hl_signer *id;         /* the key holder's face (keys.c) */
	struct hl_keys *keys;
	pid_t holder_pid;
	int holder_fd;               /* the socketpair to it, owned by keys */
	uv_poll_t holder_poll;
	void (*holder_gone)(struct hl_daemon *d);  /* daemon.c's stop */
	bool holder_watched, holder_died;
	hl_station_conf *conf;
	uint8_t fingerprint[HL_FP_LEN];
	struct hl_peer *peers;
	/* The peers by NoiseKey (peer.c): each handshake looks its initiator
	 * up, and a hub pins thousands.  Open addressing, at most half full. */
	struct hl_peer **by_key;
	size_t by_key_cap;
	uint8_t by_key_seed[crypto_shorthash_KEYBYTES];
	struct hl_conn *conns;
	const struct hl_conn_events *conn_events;   /* peer.c's, for conn.c */
	struct hl_conn *unauth_head, *unauth_tail;
	size_t n_unauth;
	uv_tcp_t *listener;          /* NULL when not listening */
	char listen_addr[HL_ADDR_MAX + 1];
	struct hl_control *control;          /* control.c: the socket */
	struct hl_clients *clients;          /* clients.c: its connections */
	uv_signal_t sigterm, sigint;
	bool signals_inited;
	struct hl_reload *reload;            /* reload.c: the directory watched */
	struct hl_spawner *spawner;          /* spawn.c: runs the children (spawn.h) */
	bool stopping;
	bool failed;                         /* stopped for an error, not asked to */
	uint64_t started_wall_ms;
	uint64_t next_conn_id;
	struct hl_ratelimit rl_unauth;       /* lines an unauthenticated party can cause */
	struct hl_ratelimit rl_unknown_key;
	struct hl_ratelimit rl_accept;
	struct hl_guard *guard;              /* guard.c: unauthenticated connections */
	hl_replay_cache *seen;               /* message 1 ephemeral keys seen (conn.c) */
	uint8_t recent_unknown[16][8];       /* ids of unknown keys logged lately */
	uint64_t recent_unknown_ms[16];
	unsigned recent_unknown_next;
	/* The store: opened and closed by commit.c, which alone commits its
	 * one shared transaction (the group commit); everyone writes inside. */
	hl_store *store;
	struct hl_commit *commit;
	/* The services (service.h): the table, how many have started, and
	 * which one each packet type of the messages protocol goes to. */
	const struct hl_service *const *services;
	size_t n_services, n_started;
	const struct hl_service *rec_owner[256];

	/* The services' own states, each written by its file alone; NULL
	 * while it does not run. */
	struct hl_alarms *alarms;            /* alarm.c */
	struct hl_delivery *delivery;        /* delivery.c */
	uv_timer_t *stage_timer;             /* control_stage.c: staged files grow */
	struct hl_failover *failover;        /* failover.c */
	uv_timer_t *check_timer;             /* checks.c: the next check or deadline */
	struct hl_mailpoll *mailpoll;        /* mailpoll.c */
	struct hl_retainer *retainer;        /* retain.c */
	struct hl_calls *calls;              /* calls.c */
	struct hl_rotation *rotation;        /* rotation.c */
};

/* daemon.c */
void hl_daemon_stop(struct hl_daemon *d);

/* The log line when the key holder has died (pid, and "" or why it is
 * thought so): keys.c's watch or the group commit's sync, whichever
 * notices first. */
#define HL_HOLDER_GONE "the key holder (pid %ld) is gone%s: stopping (nothing acknowledged " \
		       "is lost; start the station again)"

/* keys.c: the key holder started (before the network; d->id, d->keys,
 * the fingerprint), watched from the loop (GONE runs when it dies), and
 * ended with the daemon. */
int hl_keys_start(struct hl_daemon *d, char *err, size_t errlen);
void hl_keys_watch(struct hl_daemon *d, void (*gone)(struct hl_daemon *d));
void hl_keys_unwatch(struct hl_daemon *d);
void hl_keys_end(struct hl_daemon *d);

/* reload.c: station.conf read again (ERR: why not, when not). */
int hl_daemon_reload(struct hl_daemon *d, char *err, size_t errlen);
/* Reloads when the station directory changes, until unwatched. */
void hl_reload_watch(struct hl_daemon *d);
void hl_reload_unwatch(struct hl_daemon *d);

/* peer.c */
struct hl_peer *hl_peer_add(struct hl_daemon *d, const hl_peer_conf *pc);
void hl_peer_remove(struct hl_peer *p);
void hl_peer_update(struct hl_peer *p, const hl_peer_conf *pc);
/* The peer of that Name; NULL when none (NAME may be NULL). */
struct hl_peer *hl_peer_named(struct hl_daemon *d, const char *name);
/* Frees the index hl_peer_by_key uses (when the daemon ends). */
void hl_peer_index_free(struct hl_daemon *d);
void hl_peer_schedule_dial(struct hl_peer *p, uint64_t delay_ms);
void hl_peer_set_error(struct hl_peer *p, const char *text);
/* P's core fields of `status` (station/status.h) into E. */
struct hl_status_peer;
void hl_peer_status(struct hl_peer *p, struct hl_status_peer *e);
const char *hl_peer_state_name(enum hl_peer_state s);
/* What the connections tell the peers (conn.c's struct hl_conn_events),
 * and the table of them that d->conn_events points at. */
struct hl_peer *hl_peer_by_key(struct hl_daemon *d, const uint8_t key[static HL_KEY_LEN]);
/* P's NoiseKey is now NOISE (the peer rotated its keys): the index follows. */
void hl_peer_rekey(struct hl_peer *p, const uint8_t noise[static HL_KEY_LEN]);
/* Whether KEY is this station's, or pinned (as a NoiseKey or SigningKey)
 * for a peer other than the one named PEER (USER: the daemon): the
 * engines' env.key_taken (docs/rotation.md section 3). */
bool hl_peer_key_taken(void *user, const char *peer, const uint8_t key[static 32]);
void hl_peer_update_state(struct hl_peer *p);
void hl_peer_session_confirmed(struct hl_peer *p, struct hl_conn *c);
void hl_peer_conn_gone(struct hl_peer *p, struct hl_conn *c, bool was_session, bool was_dial,
		       const char *errtext);
extern const struct hl_conn_events hl_peer_conn_events;

/* guard.c (docs/protocol.md section 5) */
struct hl_guard *hl_guard_new(void);
void hl_guard_free(struct hl_guard *g);
void hl_source_of(const struct sockaddr *sa, struct hl_source *out);
/* C (inbound, C->src set) was accepted: true when it may stay (it is then
 * on the unauthenticated list, and *EVICT, when not NULL, is to be closed to
 * make room for it), false to close it at once. */
bool hl_guard_accept(struct hl_daemon *d, struct hl_conn *c, struct hl_conn **evict);
/* Takes C off the unauthenticated list (message 1 accepted, or closing). */
void hl_guard_unauth_remove(struct hl_daemon *d, struct hl_conn *c);
/* Before C's message 1 costs a DH: spends its source's budget (and the
 * station's, for an unknown source); false when there is none. */
bool hl_guard_spend(struct hl_daemon *d, struct hl_conn *c);
/* C's message 1 proved to be a pinned peer's own: the budget back. */
void hl_guard_refund(struct hl_daemon *d, struct hl_conn *c);
/* P's accepted messages 1, bounded: false when it has too many. */
bool hl_guard_peer_handshake(struct hl_daemon *d, struct hl_peer *p);
/* A session from or to SRC was confirmed: a known source from now on. */
void hl_guard_known(struct hl_daemon *d, const struct hl_source *src);

/* conn.c */
/* What conn.c tells about its connections (peer.c answers: the table
 * hl_peer_conn_events, in d->conn_events). */
struct hl_conn_events {
	/* Message 1 names KEY: its pinned peer, or NULL to refuse it. */
	struct hl_peer *(*peer_of)(struct hl_daemon *d, const uint8_t key[static HL_KEY_LEN]);
	/* A connection of P moved on (connected, or its message 1 accepted). */
	void (*progress)(struct hl_peer *p);
	/* C's handshake is confirmed: a session of P. */
	void (*confirmed)(struct hl_peer *p, struct hl_conn *c);
	/* C, which belonged to P, is closed: ERRTEXT NULL when it was no error. */
	void (*gone)(struct hl_peer *p, struct hl_conn *c, bool was_session, bool was_dial,
		     const char *errtext);
};
/* The session's parameters from station.conf (for each new connection). */
void hl_daemon_session_params(const struct hl_daemon *d, struct hl_session_params *p);
int hl_listen_start(struct hl_daemon *d, const char *addr, char *err, size_t errlen);
void hl_listen_stop(struct hl_daemon *d);
struct hl_conn *hl_conn_dial(struct hl_daemon *d, struct hl_peer *p);
/* Closes C: a CLOSE with REASON when the session is open and REASON != 0;
 * ERRTEXT (NULL: not an error) becomes the peer's last error. */
void hl_conn_close(struct hl_conn *c, uint8_t reason, const char *errtext);
/* Sends the session's pending output now. */
void hl_conn_flush(struct hl_conn *c);

/* control.c: the control socket and its table of requests. */
int hl_control_start(struct hl_daemon *d, char *err, size_t errlen);
void hl_control_stop(struct hl_daemon *d);

/* clients.c: how the services answer the control socket's clients. */
/* Sends EV (not consumed) to every `watch` client. */
void hl_control_emit(struct hl_daemon *d, json_t *ev);
/* True when some client is watching (events are worth building). */
bool hl_control_watching(const struct hl_daemon *d);
/* A client waiting for the outcome of check ID (a "check" request) gets
 * RESP (consumed) and is closed; nothing happens when none waits. */
void hl_control_wait_check(struct hl_control_client *cl, const uint8_t id[static 16]);
void hl_control_reply_check(struct hl_daemon *d, const uint8_t id[static 16], json_t *resp);
/* A "send" request queued message HEX in the burst: the client is answered
 * right after the commit (commit.h, hl_commit_defer), and then, with
 * THEN_WATCH, gets the event stream as `watch` does. */
void hl_control_wait_commit(struct hl_control_client *cl, const char *hex, bool then_watch);
/* Hands the connection of CL over to the caller (calls.c: a call's audio
 * stream): a duplicate of its socket, or -1; CL is closed without an
 * answer. */
int hl_control_take(struct hl_control_client *cl);

/* The services' control requests, in control.c's table: REQ parsed
 * (control_proto.h), P the peer it names when the table says so, CL the
 * client.  The answer, or NULL when the handler arranged it. */
struct hl_ctl_request;
typedef json_t *hl_request_fn(struct hl_daemon *d, const struct hl_ctl_request *req,
			      struct hl_peer *p, struct hl_control_client *cl);
hl_request_fn hl_send_control;    /* control_send.c: "send", after the commit */
hl_request_fn hl_stage_control;   /* control_stage.c: "stage" */
hl_request_fn hl_checks_control;  /* checks.c: "check", when it is decided */
hl_request_fn hl_calls_control;   /* calls.c: "call", "call_answer", "call_hangup" */
hl_request_fn hl_rotation_control; /* rotation.c: "rotate" */
/* delivery.c: the request "poke": the store has new work. */
void hl_delivery_poke(struct hl_daemon *d);

/* Opaque states of the services (service.h), each its file's own. */
struct hl_delivery;
struct hl_mailpoll;
struct hl_retainer;
struct hl_failover;
struct hl_failover_peer;

#endif
