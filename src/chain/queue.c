/* chain/queue.c — queueing an outgoing message (see queue.h): the
 * operator's input checked, attachments copied and hashed outside any
 * transaction, then the item appended to our chain (chain/ours.c) and the
 * message's rows stored once it is signed. */
#include "chain/queue.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "chain/adopt.h"
#include "msg/message.h"
#include "util/dio.h"
#include "util/err.h"
#include "util/fsutil.h"
#include "util/mem.h"
#include "util/text.h"

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

/* One message added to a batch, waiting for its signature: the item and
 * what its messages row needs (copies: `send --lines` reuses its line
 * buffer for the next message). */
struct hl_msg_pending {
	struct hl_msg_batch *b;
	struct hl_item it;
	uint8_t id[HL_MSG_ID_LEN];
	uint8_t salt[HL_SALT_LEN];
	unsigned precedence;
	uint64_t class_seq;
	char *subject;
	uint8_t *body;
	size_t body_len;
	uint8_t *note;                /* for the key holder's journal (chain/adopt.h) */
	size_t note_len;
	struct hl_att_row *att;       /* borrowed from the caller (one-message batches) */
	unsigned n_att;
};

void hl_msg_batch_init(struct hl_msg_batch *b)
{
	memset(b, 0, sizeof(*b));
}

static void pending_clear(struct hl_msg_pending *p)
{
	sodium_memzero(p->salt, sizeof(p->salt));
	free(p->subject);
	free(p->body);
	if (p->note)
		sodium_memzero(p->note, p->note_len);
	free(p->note);
	p->subject = NULL;
	p->body = NULL;
	p->note = NULL;
}

void hl_msg_batch_drop(struct hl_msg_batch *b)
{
	for (size_t i = 0; i < b->n; i++)
		pending_clear(b->p[i]);
	for (size_t i = 0; i < b->cap; i++)
		free(b->p[i]);
	free(b->p);
	hl_ours_drop(&b->ours);
	memset(b, 0, sizeof(*b));
}

/* The message row, once the item's row is in (chain/ours.h). */
static int store_message_row(void *arg, const struct hl_item *it,
			     const uint8_t hash[static HL_HASH_LEN])
{
	struct hl_msg_pending *p = arg;
	(void)hash;
	struct hl_msg_row mrow = {
		.peer_id = p->b->peer_id, .dir = HL_DIR_OUT, .seq = it->seq,
		.precedence = p->precedence, .class_seq = p->class_seq,
		.subject = p->subject, .body = p->body,
		.body_size = p->body_len, .sent_at = (int64_t)it->time_ms,
		.state = HL_MSG_QUEUED, .n_att = p->n_att, .att = p->att,
	};
	memcpy(mrow.id, p->id, HL_MSG_ID_LEN);
	memcpy(mrow.salt, p->salt, HL_SALT_LEN);
	return hl_store_insert_message(p->b->ours.st, &mrow);
}

int hl_msg_batch_flush(struct hl_msg_batch *b, char *err, size_t errlen)
{
	int ret = b->n ? hl_ours_flush(&b->ours) : 0;
	for (size_t i = 0; i < b->n; i++)
		pending_clear(b->p[i]);
	b->n = 0;
	if (ret < 0 && b->ours.store_failed)
		seterr(err, errlen, ret, "store: %s", hl_store_errmsg(b->ours.st));
	else if (ret < 0 && b->ours.why[0])
		seterr(err, errlen, ret, "%s", b->ours.why);
	else if (ret < 0)
		seterr(err, errlen, ret, "cannot encode the message: %s", hl_strerror(ret));
	return ret;
}

/* The peer's row and our chain's appender, looked up once per batch. */
static int batch_peer(struct hl_msg_batch *b, hl_store *st, const hl_signer *me,
		      const hl_peer_conf *peer, char *err, size_t errlen)
{
	int ret;
	if (b->valid && memcmp(b->peer_key, peer->signing_key, 32) == 0)
		return 0;
	if (b->n && (ret = hl_msg_batch_flush(b, err, errlen)) < 0)
		return ret;
	hl_ours_drop(&b->ours);
	memset(b->class_known, 0, sizeof(b->class_known));
	if ((ret = hl_store_peer(st, peer->signing_key, peer->noise_key, peer->name,
				 &b->peer_id)) < 0 ||
	    (ret = hl_store_set_peer_next(st, b->peer_id,
					  peer->has_next ? peer->next_hash : NULL)) < 0)
		return seterr(err, errlen, ret, "store: %s", hl_store_errmsg(st));
	hl_ours_init(&b->ours, st, me, b->peer_id, peer->signing_key);
	/* Before the class_seqs are read: taking back what the key holder
	 * signed may add messages. */
	if ((ret = hl_ours_begin(&b->ours)) < 0)
		return seterr(err, errlen, ret, "%s", b->ours.store_failed
			      ? hl_store_errmsg(st) : "the key holder's items could not be taken back");
	memcpy(b->peer_key, peer->signing_key, 32);
	b->valid = true;
	return 0;
}

/* The message's item, with its next place in our chain and its class. */
static void fill_item(struct hl_msg_pending *p, const struct hl_outgoing *o)
{
	struct hl_item_message *m = &p->it.u.msg;
	size_t subject_len = strlen(o->subject);
	memset(&p->it, 0, sizeof(p->it));
	p->it.kind = HL_ITEM_MESSAGE;
	memcpy(m->id, p->id, HL_MSG_ID_LEN);
	m->precedence = (uint8_t)o->precedence;
	m->class_seq = p->class_seq;
	hl_salted_hash(p->salt, HL_LABEL_SUBJECT, (const uint8_t *)o->subject, subject_len,
		       m->subject_hash);
	hl_salted_hash(p->salt, HL_LABEL_BODY, o->body, o->body_len, m->body_hash);
	m->body_size = o->body_len;
	m->n_attachments = (uint8_t)p->n_att;
	for (unsigned i = 0; i < p->n_att; i++) {
		m->att[i].name = (const uint8_t *)p->att[i].name;
		m->att[i].name_len = (uint8_t)strlen(p->att[i].name);
		m->att[i].size = p->att[i].size;
		memcpy(m->att[i].hash, p->att[i].hash, HL_HASH_LEN);
	}
}

/* Adds message O (its attachments already copied: ATT, O's count of them)
 * to B under id ID.  The caller holds the transaction. */
static int batch_add(struct hl_msg_batch *b, hl_store *st, const hl_signer *me,
		     const hl_peer_conf *peer, const struct hl_outgoing *o,
		     struct hl_att_row *att, const uint8_t id[static HL_MSG_ID_LEN],
		     char *err, size_t errlen)
{
	int ret;
	unsigned prec = o->precedence;
	if ((ret = batch_peer(b, st, me, peer, err, errlen)) < 0)
		return ret;
	if (b->n == HL_MSG_BATCH_RUN && (ret = hl_msg_batch_flush(b, err, errlen)) < 0)
		return ret;
	if (!b->class_known[prec]) {
		if ((ret = hl_store_next_class_seq(st, b->peer_id, prec, &b->class_next[prec])) < 0)
			return seterr(err, errlen, ret, "store: %s", hl_store_errmsg(st));
		b->class_known[prec] = true;
	}
	/* Slots as they are needed: one is some 10 KiB (an item's largest
	 * form), and a daemon's batch holds one message.  A slot stays where
	 * it is (the chain's queue points into it) until the batch is dropped. */
	if (b->n == b->cap) {
		size_t cap = b->cap ? 2 * b->cap : 1;
		cap = cap > HL_MSG_BATCH_RUN ? HL_MSG_BATCH_RUN : cap;
		b->p = xrealloc(b->p, cap * sizeof(*b->p));
		for (size_t i = b->cap; i < cap; i++)
			b->p[i] = xmalloc(sizeof(**b->p));
		b->cap = cap;
	}
	struct hl_msg_pending *p = b->p[b->n];
	memset(p, 0, sizeof(*p));
	p->b = b;
	memcpy(p->id, id, HL_MSG_ID_LEN);
	randombytes_buf(p->salt, sizeof(p->salt));
	p->precedence = prec;
	p->class_seq = b->class_next[prec];
	p->subject = xstrdup(o->subject);
	/* never NULL: a NULL body is an incoming one not received yet */
	p->body = xmalloc(o->body_len ? o->body_len : 1);
	if (o->body_len)
		memcpy(p->body, o->body, o->body_len);
	p->body_len = o->body_len;
	p->att = att;
	p->n_att = o->n_attachments;
	fill_item(p, o);
	hl_adopt_message_note(p->salt, p->subject, p->body, p->body_len, &p->note, &p->note_len);
	if ((ret = hl_ours_add_noted(&b->ours, &p->it, prec, p->note, p->note_len,
				     store_message_row, p)) < 0) {
		pending_clear(p);
		return seterr(err, errlen, ret, "store: %s", hl_store_errmsg(st));
	}
	b->class_next[prec]++;
	b->n++;
	return 0;
}

/* One message, signed and stored in the caller's transaction. */
static int queue_locked(hl_store *st, const hl_signer *me, const hl_peer_conf *peer,
			const struct hl_outgoing *o, struct hl_att_row *att,
			const uint8_t id[static HL_MSG_ID_LEN], char *err, size_t errlen)
{
	struct hl_msg_batch b;
	hl_msg_batch_init(&b);
	int ret = batch_add(&b, st, me, peer, o, att, id, err, errlen);
	if (ret == 0)
		ret = hl_msg_batch_flush(&b, err, errlen);
	hl_msg_batch_drop(&b);
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
	if ((ret = queue_locked(st, me, peer, o, att, id, err, errlen)) < 0) {
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
		ret = queue_locked(st, me, peer, o, att, id, err, errlen);
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
	struct hl_msg_batch b;
	hl_msg_batch_init(&b);
	int ret = hl_msg_queue_text_batch(st, me, peer, o, &b, id, err, errlen);
	if (ret == 0)
		ret = hl_msg_batch_flush(&b, err, errlen);
	hl_msg_batch_drop(&b);
	return ret;
}

int hl_msg_queue_text_batch(hl_store *st, const hl_signer *me, const hl_peer_conf *peer,
			    const struct hl_outgoing *o, struct hl_msg_batch *b,
			    uint8_t id[static HL_MSG_ID_LEN], char *err, size_t errlen)
{
	int ret;
	if (o->n_attachments)
		return seterr(err, errlen, HL_EINVAL, "attachments need hl_msg_send");
	if ((ret = validate(o, err, errlen)) < 0)
		return ret;
	new_id(o, id);
	return batch_add(b, st, me, peer, o, NULL, id, err, errlen);
}
