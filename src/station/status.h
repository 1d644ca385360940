/* station/status.h — `hotline status` as one structure: the station and one
 * entry per peer, filled either by the running daemon (its control request
 * "status": daemon/control.c, the core's fields, then each service's
 * status hooks, daemon/service.h) or without a daemon from station.conf,
 * the keys and the store (hl_status_offline), and written, as text or as
 * JSON, by hl_status_print alone.
 *
 * The core fields are typed; what the services add (the station's "email"
 * and "call", a peer's "delivery", "paths" and "check") stays JSON, in the
 * order they set it, in MORE.  The same structure crosses the control
 * socket as JSON (hl_status_json, hl_status_from_json: docs/protocol.md
 * section 6, every field in docs/json.md); a key this code does not know
 * is kept in MORE, so that `status --json` prints the daemon's answer as
 * it came. */
#ifndef HL_STATION_STATUS_H
#define HL_STATION_STATUS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "station/station.h"

/* The strings are owned (hl_status_set), NULL for JSON null; times are
 * RFC 3339 text as the daemon wrote them. */
struct hl_status_peer {
	char *name, *fingerprint, *address;
	char *state;                  /* connected, handshaking, ...; NULL without a daemon */
	char *since, *dialed_by, *last_error, *last_error_at;
	int64_t rtt_ms;               /* -1: none */
	int64_t sessions;             /* the daemon's only, as is SESSION_SINCE */
	char *session_since;
	json_t *more;                 /* the services' keys: "delivery", "paths", "check" */
};

struct hl_status {
	bool daemon;                  /* filled by a running daemon */
	char *name, *fingerprint, *listen, *started_at;
	int64_t pid;                  /* 0: none */
	json_t *more;                 /* the services' keys: "email", "call" */
	struct hl_status_peer *peers;
	size_t npeers;
};

/* An empty status (DAEMON: the daemon fills it). */
void hl_status_init(struct hl_status *s, bool daemon);
/* A new entry at the end of S's peers, empty (rtt -1, MORE an object). */
struct hl_status_peer *hl_status_add_peer(struct hl_status *s);
/* *FIELD = a copy of V (NULL for none), freeing what it held. */
void hl_status_set(char **field, const char *v);
void hl_status_free(struct hl_status *s);

/* Without a daemon: the station and its peers as ST says (station.conf;
 * the fingerprint when the keys opened, the items waiting for each peer
 * when the store did). */
void hl_status_offline(const struct hl_station *st, struct hl_status *s);

/* S as JSON.  ANSWER: the control response {"ok":true,"station",
 * "peers"}; else `status --json`'s {"daemon","station","peers"}. */
json_t *hl_status_json(const struct hl_status *s, bool answer);
/* The daemon's answer RESP into S (initialised here, DAEMON set). */
void hl_status_from_json(json_t *resp, struct hl_status *s);

/* `hotline status`'s output on stdout: one JSON object (JSON), else the
 * text for people, peer text sanitised. */
void hl_status_print(const struct hl_status *s, bool json);

#endif
