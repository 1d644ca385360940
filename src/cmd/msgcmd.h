/* cmd/msgcmd.h — what the message commands (send, inbox, outbox, read)
 * share: opening the station (configuration, identity, store), printing
 * messages for people and as JSON, waiting for a receipt, telling a running
 * daemon that there is new work. */
#ifndef HL_CMD_MSGCMD_H
#define HL_CMD_MSGCMD_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "cmd/cmd.h"
#include "conf/config.h"
#include "crypto/signer.h"
#include "holder/client.h"
#include "chain/queue.h"
#include "msg/message.h"
#include "store/store.h"

struct hl_msgcmd {
	hl_station_conf *conf;
	const hl_signer *me; /* only when opened with need_identity: the keys' face */
	hl_keys *keys;       /* the key holder, or the keys in-process (holder/client.h) */
	hl_store *store;
};

/* Opens the station in CTX->dir for command NAME; on failure prints one
 * line and returns HL_EXIT_FAIL. */
int hl_msgcmd_open(struct hl_ctx *ctx, const char *name, struct hl_msgcmd *mc,
		   bool need_identity);
void hl_msgcmd_close(struct hl_msgcmd *mc);

/* The peer NAME as a command may act on it: pinned (its [Peer] section),
 * else one that was removed, rebuilt from the store (name and keys, no
 * address; *REMOVED set).  NAME may also be a removed peer's fingerprint,
 * for two removed peers of one name.  On failure prints one line and
 * returns HL_EXIT_FAIL. */
int hl_msgcmd_peer(struct hl_msgcmd *mc, const char *cmd, const char *name, hl_peer_conf *out,
		   bool *removed);

void hl_msgcmd_print_ids(const uint8_t (*ids)[16], size_t n);

/* Best effort: asks a running daemon to look at the store now.  Without a
 * daemon, nothing happens (it reads the store when it starts). */
void hl_msgcmd_poke_daemon(struct hl_ctx *ctx);

/* Subscribes to a running daemon's event stream ("watch"): the socket,
 * or -1 without a daemon.  Done before the message is committed, the
 * daemon's answer arrives while the commit's fsync runs. */
int hl_msgcmd_watch_start(struct hl_ctx *ctx);

/* The quick way to queue a text message: the running daemon queues it
 * (control request "send") under id ID, which the caller chose.  1: it is
 * durable; with WAIT, *STREAM is then the daemon's event stream for
 * hl_msgcmd_wait_delivered.  0: not queued (no daemon, attachments, too
 * large, or the daemon refused): queue it directly.  -1: asked, but no
 * answer came: it may be queued; queue it directly under the same id
 * unless the store has it (ids are unique, so it cannot be queued twice). */
int hl_msgcmd_daemon_send(struct hl_ctx *ctx, const char *peer, const struct hl_outgoing *o,
			  bool wait, const uint8_t id[static 16], int *stream);

/* Waits until message ID is delivered (HL_EXIT_OK, after printing the line
 * "delivered to PEER at TIME (...)"), refused or timed out (HL_EXIT_FAIL
 * with one line on stderr).  WATCH_FD: an event stream
 * (closed here) from hl_msgcmd_watch_start, or from
 * hl_msgcmd_daemon_send (SUBSCRIBED: confirmed before the message was
 * queued), else -1 to subscribe now.  MC's store is opened if needed. */
int hl_msgcmd_wait_delivered(struct hl_ctx *ctx, struct hl_msgcmd *mc,
			     const uint8_t id[static 16], uint64_t timeout_ms, int watch_fd,
			     bool subscribed);

/* The JSON object of a message (docs/json.md, "Messages"); text from
 * peers is included as it is (JSON escapes it), bodies as UTF-8 strings. */
json_t *hl_msgcmd_json(const struct hl_msg_row *row);

/* inbox and outbox: every message of DIR, as a table or one JSON array;
 * hl_msgcmd_box parses their options. */
int hl_msgcmd_list(struct hl_ctx *ctx, const char *name, enum hl_dir dir, bool json,
		   bool unread_only);
int hl_msgcmd_box(struct hl_ctx *ctx, int argc, char **argv, enum hl_dir dir);

#endif
