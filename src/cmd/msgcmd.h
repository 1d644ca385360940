/* cmd/msgcmd.h — what the message commands (send, inbox, outbox, read)
 * share: opening the station (configuration, identity, store), printing
 * messages for people and as JSON, waiting for a receipt, telling a running
 * daemon that there is new work. */
#ifndef HL_CMD_MSGCMD_H
#define HL_CMD_MSGCMD_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cmd/cmd.h"
#include "conf/config.h"
#include "crypto/signer.h"
#include "holder/client.h"
#include "station/queue.h"
#include "msg/message.h"
#include "station/station.h"
#include "store/store.h"

/* Opens the station in CTX->dir for command NAME (hl_station_open: the
 * store, and the keys to sign with NEED_IDENTITY); on failure prints one
 * line and returns HL_EXIT_FAIL. */
int hl_msgcmd_open(struct hl_ctx *ctx, const char *name, struct hl_station *mc,
		   bool need_identity);
void hl_msgcmd_close(struct hl_station *mc);

/* The peer NAME as a command may act on it: pinned (its [Peer] section),
 * else one that was removed, rebuilt from the store (name and keys, no
 * address; *REMOVED set).  NAME may also be a removed peer's fingerprint,
 * for two removed peers of one name.  On failure prints one line and
 * returns HL_EXIT_FAIL. */
int hl_msgcmd_peer(struct hl_station *mc, const char *cmd, const char *name, hl_peer_conf *out,
		   bool *removed);

void hl_msgcmd_print_ids(const uint8_t (*ids)[16], size_t n);

/* Best effort: asks a running daemon to look at the store now
 * (hl_control_poke). */
void hl_msgcmd_poke_daemon(struct hl_ctx *ctx);

/* Waits until message ID is delivered (HL_EXIT_OK, after printing the line
 * "delivered to PEER at TIME (...)"), refused or timed out (HL_EXIT_FAIL
 * with one line on stderr).  WATCH_FD: an event stream (closed here) from
 * hl_station_queue with HL_QUEUE_WAIT (SUBSCRIBED: the daemon queued the
 * message, and confirmed the subscription before), else -1 to subscribe
 * now.  MC's store is opened if needed. */
int hl_msgcmd_wait_delivered(struct hl_ctx *ctx, struct hl_station *mc,
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
