/* msg/message.h — messages as the operator sees them, built on items:
 * composing an outgoing message (hash and copy its attachments into the
 * station directory, sign its item, store both in one commit) and checking
 * an incoming message's content against its signed item.
 *
 * Outgoing attachment copies live in DIR/out/<id-hex>/<index> until the
 * message is delivered: the operator may move or change the original file
 * the moment `send` returns. */
#ifndef HL_MSG_MESSAGE_H
#define HL_MSG_MESSAGE_H

#include <stddef.h>
#include <stdint.h>

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

/* What hl_msg_queue_text_batch remembers between the messages of one
 * transaction: the peer's row, the OUT chain's head and the last class_seq
 * used, which the store would otherwise be asked for again per message.
 * Valid only while the caller's transaction lasts (BEGIN IMMEDIATE holds
 * the write lock, so no one else can extend the chain meanwhile): zero it
 * at every hl_store_begin. */
struct hl_msg_batch {
	bool valid;
	uint8_t peer_key[32];
	int64_t peer_id;
	struct hl_chain_head head;
	unsigned precedence;
	uint64_t class_seq;
};
/* hl_msg_queue_text, reusing (and updating) BATCH; NULL: no batch. */
int hl_msg_queue_text_batch(hl_store *st, const hl_signer *me, const hl_peer_conf *peer,
			    const struct hl_outgoing *o, struct hl_msg_batch *batch,
			    uint8_t id[static HL_MSG_ID_LEN], char *err, size_t errlen);

/* The content that travels beside a message item in an ITEM record
 * (docs/messages.md): salt, subject and, when inline, the body. */
struct hl_msg_content {
	uint8_t salt[HL_SALT_LEN];
	const uint8_t *subject;       /* borrowed */
	size_t subject_len;
	int inline_body;
	const uint8_t *body;          /* borrowed, when inline_body */
	size_t body_len;
};
int hl_msg_content_decode(const uint8_t *buf, size_t len, struct hl_msg_content *c);
/* Encodes content (for ITEM records and bundles); HL_ETOOBIG over CAP. */
int hl_msg_content_encode(const struct hl_msg_content *c, uint8_t *out, size_t cap,
			  size_t *len);
/* Checks C against the signed message M: the subject hash, and the body's
 * when it is inline (size too).  HL_EAUTH on a mismatch. */
int hl_msg_content_check(const struct hl_item_message *m, const struct hl_msg_content *c);

/* Lowercase hex of an id (33 bytes with the NUL). */
void hl_msg_id_hex(const uint8_t id[static HL_MSG_ID_LEN], char out[static 33]);

#endif
