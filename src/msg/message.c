/* msg/message.c — composing outgoing messages and checking incoming
 * content (see message.h). */
#include "msg/message.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/bytes.h"
#include "util/dio.h"
#include "util/err.h"
#include "util/fsutil.h"
#include "util/mem.h"
#include "util/text.h"
#include "util/timefmt.h"

void hl_msg_id_hex(const uint8_t id[static HL_MSG_ID_LEN], char out[static 33])
{
	sodium_bin2hex(out, 33, id, HL_MSG_ID_LEN);
}

static int seterr(char *err, size_t errlen, int code, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static int seterr(char *err, size_t errlen, int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return code;
}

/* Copies SRC to DST (created O_EXCL, 0600), hashing as it goes, and fsyncs
 * DST.  The copy is what travels: the operator may change SRC afterwards.
 * DST is written with O_DIRECT where the file system allows (util/dio.h):
 * through the page cache the copy alone would cost more CPU than the
 * whole transfer. */
static int copy_and_hash(const char *src, const char *dst, uint64_t max,
			 uint64_t *size, uint8_t hash[static HL_HASH_LEN],
			 const struct hl_outgoing *o, unsigned idx, const char *relpath)
{
	int ret = 0;
	int in = -1;
	struct hl_dio_writer w = { .fd = -1 };
	hl_sha256_state hs;
	struct stat stbuf;

	in = open(src, O_RDONLY | O_CLOEXEC);
	if (in < 0)
		return -errno;
	if (fstat(in, &stbuf) < 0) {
		ret = -errno;
		goto out;
	}
	if (!S_ISREG(stbuf.st_mode)) {
		ret = HL_EINVAL;
		goto out;
	}
	if ((uint64_t)stbuf.st_size > max) {
		ret = HL_ETOOBIG;
		goto out;
	}
	if ((ret = hl_dio_open(&w, dst, O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600, 0)) < 0)
		goto out;
	if (o->on_copy)
		o->on_copy(o->copy_user, idx, (uint64_t)stbuf.st_size, relpath);
	posix_fadvise(in, 0, 0, POSIX_FADV_SEQUENTIAL);
	hl_sha256_init(&hs);
	uint64_t total = 0;
	for (;;) {
		/* read straight into the writer's staging buffer: no copy */
		size_t room;
		uint8_t *p = hl_dio_space(&w, &room);
		ssize_t n = read(in, p, room);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			ret = -errno;
			goto out;
		}
		if (n == 0)
			break;
		total += (uint64_t)n;
		if (total > max) {
			ret = HL_ETOOBIG;
			goto out;
		}
		hl_sha256_update(&hs, p, (size_t)n);
		if ((ret = hl_dio_commit(&w, (size_t)n)) < 0)
			goto out;
	}
	if ((ret = hl_dio_finish(&w)) < 0)
		goto out;
	hl_sha256_final(&hs, hash);
	*size = total;
out:
	if (in >= 0)
		close(in);
	/* hl_dio_finish() made the copy durable: a late close error changes
	 * nothing. */
	bool created = w.fd >= 0;
	hl_dio_close(&w);
	if (ret < 0 && created)
		unlink(dst);
	return ret;
}

static const char *base_name(const char *path)
{
	const char *slash = strrchr(path, '/');
	return slash ? slash + 1 : path;
}

/* Removes DIR/out/<hex> and what copy_and_hash put there. */
static void remove_copies(const char *msgdir, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		char *p = xasprintf("%s/%u", msgdir, i);
		unlink(p);
		free(p);
	}
	rmdir(msgdir);
}

/* Checks what the operator gave, before anything is written. */
static int validate(const struct hl_outgoing *o, char *err, size_t errlen)
{
	size_t subject_len = strlen(o->subject);
	if (o->precedence >= HL_PREC_COUNT)
		return seterr(err, errlen, HL_EINVAL, "bad precedence %u", o->precedence);
	if (subject_len > HL_SUBJECT_MAX)
		return seterr(err, errlen, HL_ETOOBIG, "subject is %zu bytes; the limit is %d",
			      subject_len, HL_SUBJECT_MAX);
	if (!hl_utf8_text_valid((const uint8_t *)o->subject, subject_len))
		return seterr(err, errlen, HL_EINVAL, "subject is not UTF-8 text");
	if (o->body_len > HL_BODY_MAX)
		return seterr(err, errlen, HL_ETOOBIG,
			      "body is %zu bytes; the limit is %u (send larger content as an attachment with -a)",
			      o->body_len, HL_BODY_MAX);
	if (!hl_utf8_text_valid(o->body, o->body_len))
		return seterr(err, errlen, HL_EINVAL,
			      "body is not UTF-8 text (send binary content as an attachment with -a)");
	if (o->n_attachments > HL_MAX_ATTACHMENTS)
		return seterr(err, errlen, HL_ETOOBIG, "%u attachments; the limit is %d",
			      o->n_attachments, HL_MAX_ATTACHMENTS);
	for (unsigned i = 0; i < o->n_attachments; i++) {
		const char *name = base_name(o->attachments[i]);
		if (!hl_attachment_name_valid((const uint8_t *)name, strlen(name)) ||
		    !hl_utf8_text_valid((const uint8_t *)name, strlen(name)))
			return seterr(err, errlen, HL_EINVAL,
				      "attachment '%s': its name cannot be sent (use a plain file name)",
				      o->attachments[i]);
	}
	return 0;
}

/* Copies and hashes the attachments into DIR/out/<idhex>/, outside any
 * transaction: a 1 GiB file must not hold the store's writer lock.
 * *COPIED counts the files made, for clean-up. */
static int copy_attachments(const char *dir, const struct hl_outgoing *o, const char *idhex,
			    struct hl_att_row *att, char **msgdir_out, unsigned *copied,
			    char *err, size_t errlen)
{
	int ret = 0;
	uint64_t max = o->max_attachment ? o->max_attachment : HL_DEFAULT_MAX_ATTACHMENT;
	char *outdir = hl_path_join(dir, "out");
	char *msgdir = hl_path_join(outdir, idhex);

	if (mkdir(outdir, 0700) < 0 && errno != EEXIST) {
		ret = seterr(err, errlen, -errno, "cannot create %s: %s", outdir, strerror(errno));
		goto out;
	}
	if (mkdir(msgdir, 0700) < 0) {
		ret = seterr(err, errlen, -errno, "cannot create %s: %s", msgdir, strerror(errno));
		goto out;
	}
	*msgdir_out = msgdir;
	for (unsigned i = 0; i < o->n_attachments; i++) {
		struct hl_att_row *a = &att[i];
		char *dst = xasprintf("%s/%u", msgdir, i);
		a->idx = i;
		snprintf(a->name, sizeof(a->name), "%s", base_name(o->attachments[i]));
		snprintf(a->path, sizeof(a->path), "out/%s/%u", idhex, i);
		ret = copy_and_hash(o->attachments[i], dst, max, &a->size, a->hash, o, i, a->path);
		free(dst);
		if (ret == HL_ETOOBIG) {
			seterr(err, errlen, ret, "attachment '%s' is larger than the limit of %llu bytes",
			       o->attachments[i], (unsigned long long)max);
			goto out;
		} else if (ret == HL_EINVAL) {
			seterr(err, errlen, ret, "attachment '%s' is not a regular file",
			       o->attachments[i]);
			goto out;
		} else if (ret < 0) {
			seterr(err, errlen, ret, "attachment '%s': %s", o->attachments[i],
			       hl_strerror(ret));
			goto out;
		}
		*copied = i + 1;
	}
	if ((ret = hl_fsync_parent(msgdir)) < 0 || (ret = hl_fsync_parent(outdir)) < 0)
		seterr(err, errlen, ret, "cannot sync %s: %s", msgdir, hl_strerror(ret));
out:
	if (*msgdir_out != msgdir)
		free(msgdir);
	free(outdir);
	return ret;
}

/* The next chain position, the signed item, the message row: stored
 * before the item can ever be sent.  The caller holds the transaction. */
static int queue_locked(hl_store *st, const hl_signer *me, const hl_peer_conf *peer,
			const struct hl_outgoing *o, struct hl_att_row *att,
			struct hl_msg_batch *batch, const uint8_t id[static HL_MSG_ID_LEN],
			char *err, size_t errlen)
{
	int ret;
	int64_t peer_id;
	struct hl_chain_head head;
	uint64_t class_seq;
	size_t subject_len = strlen(o->subject);
	struct hl_item *it = xcalloc(1, sizeof(*it));
	uint8_t *enc = xmalloc(HL_ITEM_MAX);
	uint8_t salt[HL_SALT_LEN];

	if (batch && batch->valid && memcmp(batch->peer_key, peer->signing_key, 32) == 0 &&
	    batch->precedence == (unsigned)o->precedence) {
		/* the previous message of this transaction left these */
		peer_id = batch->peer_id;
		head = batch->head;
		class_seq = batch->class_seq + 1;
	} else if ((ret = hl_store_peer(st, peer->signing_key, peer->noise_key, peer->name,
					&peer_id)) < 0 ||
		   (ret = hl_store_set_peer_next(st, peer_id,
						 peer->has_next ? peer->next_hash : NULL)) < 0 ||
		   (ret = hl_store_chain_head(st, peer_id, HL_DIR_OUT, &head)) < 0 ||
		   (ret = hl_store_next_class_seq(st, peer_id, o->precedence, &class_seq)) < 0) {
		goto store_err;
	}
	/* as whom, and whether the chain's key is ours (a rotation since we
	 * read identity.key: HL_EKEYS, sign nothing) */
	if ((ret = hl_store_author_keys(st, peer_id, hl_signer_sign_pk(me), hl_signer_prev_sign_pk(me),
					it->author)) < 0)
		goto store_err;
	if (batch)
		batch->valid = false; /* until this message is in */

	randombytes_buf(salt, sizeof(salt));
	it->kind = HL_ITEM_MESSAGE;
	memcpy(it->counterpart, peer->signing_key, 32);
	it->seq = head.seq + 1;
	memcpy(it->prev, head.hash, HL_HASH_LEN);
	it->time_ms = (uint64_t)hl_now_ms();
	struct hl_item_message *m = &it->u.msg;
	memcpy(m->id, id, HL_MSG_ID_LEN);
	m->precedence = (uint8_t)o->precedence;
	m->class_seq = class_seq;
	hl_salted_hash(salt, HL_LABEL_SUBJECT, (const uint8_t *)o->subject, subject_len,
		       m->subject_hash);
	hl_salted_hash(salt, HL_LABEL_BODY, o->body, o->body_len, m->body_hash);
	m->body_size = o->body_len;
	m->n_attachments = (uint8_t)o->n_attachments;
	for (unsigned i = 0; i < o->n_attachments; i++) {
		m->att[i].name = (const uint8_t *)att[i].name;
		m->att[i].name_len = (uint8_t)strlen(att[i].name);
		m->att[i].size = att[i].size;
		memcpy(m->att[i].hash, att[i].hash, HL_HASH_LEN);
	}
	size_t enc_len;
	if ((ret = hl_item_encode_sign(it, me, enc, HL_ITEM_MAX, &enc_len)) < 0) {
		seterr(err, errlen, ret, "cannot encode the message: %s", hl_strerror(ret));
		goto out;
	}

	struct hl_item_row irow = {
		.peer_id = peer_id, .dir = HL_DIR_OUT, .seq = it->seq,
		.kind = HL_ITEM_MESSAGE, .encoded = enc, .encoded_len = enc_len,
		.precedence = o->precedence, .acked = false, .stored_at = hl_now_ms(),
	};
	hl_item_hash(enc, enc_len, irow.hash);
	struct hl_msg_row mrow = {
		.peer_id = peer_id, .dir = HL_DIR_OUT, .seq = it->seq,
		.precedence = o->precedence, .class_seq = class_seq,
		.subject = (char *)o->subject, .body = (uint8_t *)o->body,
		.body_size = o->body_len, .sent_at = (int64_t)it->time_ms,
		.state = HL_MSG_QUEUED, .n_att = o->n_attachments, .att = att,
	};
	memcpy(mrow.id, id, HL_MSG_ID_LEN);
	memcpy(mrow.salt, salt, HL_SALT_LEN);
	if ((ret = hl_store_insert_item(st, &irow)) < 0 ||
	    (ret = hl_store_insert_message(st, &mrow)) < 0)
		goto store_err;
	if (batch) {
		batch->valid = true;
		memcpy(batch->peer_key, peer->signing_key, 32);
		batch->peer_id = peer_id;
		batch->head.seq = it->seq;
		memcpy(batch->head.hash, irow.hash, HL_HASH_LEN);
		batch->precedence = (unsigned)o->precedence;
		batch->class_seq = class_seq;
	}
	ret = 0;
	goto out;
store_err:
	seterr(err, errlen, ret, "store: %s", hl_store_errmsg(st));
out:
	sodium_memzero(salt, sizeof(salt));
	free(enc);
	free(it);
	return ret;
}

/* The message's id: the one the caller chose, else a random one. */
static void new_id(const struct hl_outgoing *o, uint8_t id[static HL_MSG_ID_LEN])
{
	if (o->id)
		memcpy(id, o->id, HL_MSG_ID_LEN);
	else
		randombytes_buf(id, HL_MSG_ID_LEN);
}

int hl_msg_send(const char *dir, hl_store *st, const hl_signer *me,
		const hl_peer_conf *peer, const struct hl_outgoing *o,
		uint8_t id[static HL_MSG_ID_LEN], char *err, size_t errlen)
{
	int ret;
	unsigned copied = 0;
	char idhex[33];
	char *msgdir = NULL;
	struct hl_att_row *att = NULL;

	if ((ret = validate(o, err, errlen)) < 0)
		return ret;
	att = xcalloc(o->n_attachments ? o->n_attachments : 1, sizeof(*att));
	new_id(o, id);
	hl_msg_id_hex(id, idhex);
	if (o->n_attachments &&
	    (ret = copy_attachments(dir, o, idhex, att, &msgdir, &copied, err, errlen)) < 0)
		goto out;
	if ((ret = hl_store_begin(st)) < 0) {
		seterr(err, errlen, ret, "store: %s", hl_store_errmsg(st));
		goto out;
	}
	if ((ret = queue_locked(st, me, peer, o, att, NULL, id, err, errlen)) < 0) {
		hl_store_rollback(st);
		goto out;
	}
	if ((ret = hl_store_commit(st)) < 0)
		seterr(err, errlen, ret, "store: %s", hl_store_errmsg(st));
out:
	if (ret < 0 && msgdir)
		remove_copies(msgdir, copied);
	free(att);
	free(msgdir);
	return ret;
}

int hl_msg_queue_in_txn(const char *dir, hl_store *st, const hl_signer *me,
			const hl_peer_conf *peer, const struct hl_outgoing *o,
			uint8_t id[static HL_MSG_ID_LEN], char *err, size_t errlen)
{
	unsigned copied = 0;
	char idhex[33], *msgdir = NULL;
	int ret = validate(o, err, errlen);
	if (ret < 0)
		return ret;
	struct hl_att_row *att = xcalloc(o->n_attachments ? o->n_attachments : 1, sizeof(*att));
	new_id(o, id);
	hl_msg_id_hex(id, idhex);
	if (o->n_attachments)
		ret = copy_attachments(dir, o, idhex, att, &msgdir, &copied, err, errlen);
	if (ret == 0)
		ret = queue_locked(st, me, peer, o, att, NULL, id, err, errlen);
	if (ret < 0 && msgdir)
		remove_copies(msgdir, copied);
	free(att);
	free(msgdir);
	return ret;
}

int hl_msg_queue_text(hl_store *st, const hl_signer *me, const hl_peer_conf *peer,
		      const struct hl_outgoing *o, uint8_t id[static HL_MSG_ID_LEN],
		      char *err, size_t errlen)
{
	return hl_msg_queue_text_batch(st, me, peer, o, NULL, id, err, errlen);
}

int hl_msg_queue_text_batch(hl_store *st, const hl_signer *me, const hl_peer_conf *peer,
			    const struct hl_outgoing *o, struct hl_msg_batch *batch,
			    uint8_t id[static HL_MSG_ID_LEN], char *err, size_t errlen)
{
	struct hl_att_row none;
	int ret;
	if (o->n_attachments)
		return seterr(err, errlen, HL_EINVAL, "attachments need hl_msg_send");
	if ((ret = validate(o, err, errlen)) < 0)
		return ret;
	new_id(o, id);
	return queue_locked(st, me, peer, o, &none, batch, id, err, errlen);
}

int hl_msg_content_decode(const uint8_t *buf, size_t len, struct hl_msg_content *c)
{
	struct hl_rbuf r;
	hl_rbuf_init(&r, buf, len);
	memset(c, 0, sizeof(*c));
	hl_r_bytes(&r, c->salt, HL_SALT_LEN);
	c->subject_len = hl_r_u16(&r);
	if (c->subject_len > HL_SUBJECT_MAX)
		return HL_ETOOBIG;
	c->subject = hl_r_take(&r, c->subject_len);
	uint8_t flag = hl_r_u8(&r);
	if (r.err)
		return HL_ETRUNC;
	if (flag > 1)
		return HL_EINVAL;
	c->inline_body = flag;
	c->body_len = hl_r_left(&r);
	if (!flag && c->body_len)
		return HL_EINVAL;
	if (c->body_len > HL_INLINE_BODY_MAX)
		return HL_ETOOBIG;
	c->body = hl_r_take(&r, c->body_len);
	return 0;
}

int hl_msg_content_encode(const struct hl_msg_content *c, uint8_t *out, size_t cap,
			  size_t *len)
{
	struct hl_wbuf w;
	if (c->subject_len > HL_SUBJECT_MAX ||
	    (c->inline_body && c->body_len > HL_INLINE_BODY_MAX) ||
	    (!c->inline_body && c->body_len))
		return HL_EINVAL;
	hl_wbuf_init(&w, out, cap);
	hl_w_bytes(&w, c->salt, HL_SALT_LEN);
	hl_w_u16(&w, (uint16_t)c->subject_len);
	hl_w_bytes(&w, c->subject, c->subject_len);
	hl_w_u8(&w, c->inline_body ? 1 : 0);
	if (c->inline_body)
		hl_w_bytes(&w, c->body, c->body_len);
	if (w.err)
		return HL_ETOOBIG;
	*len = w.len;
	return 0;
}

int hl_msg_content_check(const struct hl_item_message *m, const struct hl_msg_content *c)
{
	uint8_t h[HL_HASH_LEN];
	hl_salted_hash(c->salt, HL_LABEL_SUBJECT, c->subject, c->subject_len, h);
	if (sodium_memcmp(h, m->subject_hash, HL_HASH_LEN) != 0)
		return HL_EAUTH;
	/* A body that fits inline must travel inline: one encoding per message. */
	if ((m->body_size <= HL_INLINE_BODY_MAX) != (c->inline_body != 0))
		return HL_EINVAL;
	if (c->inline_body) {
		if (c->body_len != m->body_size)
			return HL_EAUTH;
		hl_salted_hash(c->salt, HL_LABEL_BODY, c->body, c->body_len, h);
		if (sodium_memcmp(h, m->body_hash, HL_HASH_LEN) != 0)
			return HL_EAUTH;
	}
	return 0;
}
