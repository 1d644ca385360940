/* station/queue.h — the one entry point by which a command queues
 * messages: `send`, `send --lines`, `voice send` and `agree propose` all
 * call hl_station_queue.  With HL_QUEUE_DAEMON it first hands a text
 * message to the running daemon (control request "send": the daemon
 * queues it in its group commit, daemon/control_send.c); otherwise, or
 * when that cannot be done, it opens the station (station.h) and queues
 * directly: chain/queue.h appends each signed item to our chain with the
 * peer through chain/ours.c, whichever road is taken.  Then it tells a
 * running daemon that there is new work (hl_control_poke).
 *
 * A message handed to the daemon is named first (its id in O->id): if the
 * daemon's answer is lost, the direct road queues it under the same id
 * unless the store has it already, so it is never queued twice. */
#ifndef HL_STATION_QUEUE_H
#define HL_STATION_QUEUE_H

#include <stdbool.h>
#include <stdint.h>

#include "chain/queue.h"
#include "station/station.h"

enum {
	/* Hand a text message to the running daemon, if one runs and the
	 * message fits in one request line (no attachments). */
	HL_QUEUE_DAEMON = 1u << 0,
	/* Subscribe to the daemon's events before the message is durable
	 * (for `send --wait`): the stream in STREAM. */
	HL_QUEUE_WAIT = 1u << 1,
	/* No poke: the caller writes more before the daemon should look
	 * (agree propose: its agreement item follows the message). */
	HL_QUEUE_QUIET = 1u << 2,
};

/* Messages per transaction when there are many. */
#define HL_QUEUE_PER_COMMIT 2000

struct hl_queue {
	const char *peer;             /* the peer's name */
	unsigned flags;
	/* One message; or, with NEXT, the template of many (precedence,
	 * subject) to which NEXT(USER, O) gives each body in turn: 1, or 0
	 * at the end.  Many go directly, HL_QUEUE_PER_COMMIT to a commit, and
	 * QUEUED(USER, IDS, N) hears of each commit's ids once durable. */
	const struct hl_outgoing *msg;
	int (*next)(void *user, struct hl_outgoing *o);
	void (*queued)(void *user, const uint8_t (*ids)[HL_MSG_ID_LEN], size_t n);
	void *user;
	/* Out. */
	uint8_t id[HL_MSG_ID_LEN];    /* the one message's id */
	bool by_daemon;               /* the daemon queued it */
	int stream;                   /* HL_QUEUE_WAIT: the event stream, or -1 */
};

/* Queues what Q says to the peer Q->peer of the station in DIR.  ST: the
 * station opened with HL_OPEN_SIGN and HL_OPEN_STORE, or zeroed to be
 * opened here only when the direct road is taken (the caller closes it
 * either way).  0 once durable; else a negative error and one line in
 * ERR (HL_STATION_ERR_LEN bytes) naming what is wrong.  Q->stream is set
 * (-1 or a stream the caller closes) on every return. */
int hl_station_queue(struct hl_station *st, const char *dir, struct hl_queue *q, char *err);

#endif
