/* chain/queue.h — the one entry point to queue an outgoing message:
 * check what the operator gave, hash and copy its attachments into the
 * station directory, append its signed item to our chain with the peer
 * (chain/ours.h) and store its rows, in the caller's transaction or in one
 * of its own.  A command queues through station/queue.h, which hands a
 * text message to a running daemon when it can (ending up here too, in
 * the daemon) and comes here directly otherwise.
 *
 * Outgoing attachment copies live in DIR/out/<id-hex>/<index> until the
 * message is delivered: the operator may move or change the original file
 * the moment `send` returns. */
#ifndef HL_CHAIN_QUEUE_H
#define HL_CHAIN_QUEUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "chain/ours.h"
#include "conf/config.h"
#include "crypto/signer.h"
#include "msg/item.h"
#include "store/store.h"

#define HL_DEFAULT_MAX_ATTACHMENT (UINT64_C(4) << 30)

struct hl_outgoing {
	unsigned precedence;
	const char *subject;          /* NUL-terminated, at most HL_SUBJECT_MAX bytes */
	const uint8_t *body;
	size_t body_len;              /* at most HL_BODY_MAX */
	const char *const *attachments; /* paths, n_attachments of them */
	unsigned n_attachments;
	uint64_t max_attachment;      /* bytes; 0 means the default */
	/* NULL: a new random id.  Else the id to use (HL_MSG_ID_LEN bytes):
	 * `send` names its message before handing it to the daemon, so that
	 * an answer lost on the way cannot make it queue the message twice
	 * (ids are unique in the store). */
	const uint8_t *id;
	/* Optional: called when the copy of attachment IDX (SIZE bytes, as
	 * the source is now) into PATH (relative to the station directory)
	 * has begun; `send` tells the daemon, which streams the copy's bytes
	 * to the peer as they are written (deliver/stage.h). */
	void (*on_copy)(void *user, unsigned idx, uint64_t size, const char *path);
	void *copy_user;
};

/* Queues one message to PEER: durable when it returns 0, with its id in
 * ID.  ERR gets one line naming the bad value on failure. */
int hl_msg_send(const char *dir, hl_store *st, const hl_signer *me,
		const hl_peer_conf *peer, const struct hl_outgoing *out,
		uint8_t id[static HL_MSG_ID_LEN], char *err, size_t errlen);

/* hl_msg_send inside a transaction the caller holds (the daemon's, for a
 * call's recording: daemon/calls.c); durable once the caller commits.
 * The attachments are copied first, as hl_msg_send does. */
int hl_msg_queue_in_txn(const char *dir, hl_store *st, const hl_signer *me,
			const hl_peer_conf *peer, const struct hl_outgoing *o,
			uint8_t id[static HL_MSG_ID_LEN], char *err, size_t errlen);

/* The same for a message without attachments, inside a transaction the
 * caller holds (hl_store_begin/commit): `send --lines` queues many messages
 * per commit.  Durable only once the caller commits. */
int hl_msg_queue_text(hl_store *st, const hl_signer *me, const hl_peer_conf *peer,
		      const struct hl_outgoing *o, uint8_t id[static HL_MSG_ID_LEN],
		      char *err, size_t errlen);

/* Many text messages to one peer inside one transaction the caller holds
 * (`send --lines`): the peer's row, the chain's appender and the next
 * class_seq of each precedence are looked up once, and the items are
 * signed at each HL_MSG_BATCH_RUN messages and at hl_msg_batch_flush, so
 * that a whole run costs one request to the key holder.  Init it after
 * every hl_store_begin, flush it before the commit, drop it after the
 * commit or the rollback. */
#define HL_MSG_BATCH_RUN 1024
struct hl_msg_pending;
struct hl_msg_batch {
	bool valid;
	uint8_t peer_key[32];
	int64_t peer_id;
	struct hl_ours ours;
	bool class_known[4];
	uint64_t class_next[4];
	struct hl_msg_pending **p;    /* added, not signed: the first N of CAP slots */
	size_t n, cap;                /* CAP grows up to HL_MSG_BATCH_RUN */
};
void hl_msg_batch_init(struct hl_msg_batch *b);
/* Queues O (no attachments) into B: its id is in ID at once, its rows are
 * written at the next flush (a run's end, or hl_msg_batch_flush). */
int hl_msg_queue_text_batch(hl_store *st, const hl_signer *me, const hl_peer_conf *peer,
			    const struct hl_outgoing *o, struct hl_msg_batch *b,
			    uint8_t id[static HL_MSG_ID_LEN], char *err, size_t errlen);
/* Signs and stores what B holds.  ERR as above. */
int hl_msg_batch_flush(struct hl_msg_batch *b, char *err, size_t errlen);
void hl_msg_batch_drop(struct hl_msg_batch *b);

#endif
