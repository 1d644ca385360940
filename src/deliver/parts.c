/* deliver/parts.c — RECEIVING a message's parts, for the engine (engine_core.c;
 * docs/messages.md).
 *
 * A message is stored at once with its state PARTIAL (items.c), its parts
 * are written to files as CHUNKs arrive (part 0, a large body, is kept in
 * memory), each part's hash is checked when it completes, and the message
 * becomes visible (COMPLETE) once its parts are whole and the message
 * before it in the same precedence is visible or refused.  The receipts
 * for what became visible are authored in precommit() (engine_core.c), inside
 * the same transaction, and go out with the ACK after the commit.  The
 * parts keep invariant I4 (base.c). */
#include "deliver/engine_int.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "msg/message.h"
#include "util/err.h"
#include "util/fsutil.h"
#include "util/log.h"
#include "util/mem.h"
#include "util/timefmt.h"

/* Part progress is made durable every size/64 bytes, between 1 and 8 MiB:
 * a broken transfer resends at most about that much. */
#define SYNC_MIN (1u << 20)
#define SYNC_MAX (8u << 20)
/* Parts with at least this much left to receive are hashed and written on
 * a worker thread (deliver/partwriter.h). */
#define WORKER_MIN (8u << 20)
/* Part files open for writing at once, per peer: each holds 1 to 4 MiB of
 * buffers, and a peer could interleave chunks of thousands of parts. */
#define WRITERS_MAX 8

/* ---- messages in progress ---- */

struct in_msg *eng_in_find(hl_engine *e, uint64_t seq)
{
	for (struct in_msg *m = e->in; m; m = m->next)
		if (m->seq == seq)
			return m;
	return NULL;
}

void eng_in_msg_free(struct in_msg *m)
{
	if (!m)
		return;
	for (unsigned i = 0; i < NPARTS_MAX; i++) {
		hl_partwriter_abort(m->parts[i].pw);
		hl_dio_close(&m->parts[i].w);
		free(m->parts[i].path);
	}
	free(m->body);
	free(m);
}

void eng_in_unlink(hl_engine *e, struct in_msg *m)
{
	for (struct in_msg **pp = &e->in; *pp; pp = &(*pp)->next) {
		if (*pp == m) {
			*pp = m->next;
			e->nin--;
			return;
		}
	}
}

void eng_in_clear(hl_engine *e)
{
	while (e->in) {
		struct in_msg *m = e->in;
		e->in = m->next;
		eng_in_msg_free(m);
	}
	e->nin = 0;
	e->in_loaded = false;
}

struct in_msg *eng_in_msg_new(void)
{
	struct in_msg *m = xcalloc(1, sizeof(*m));
	for (unsigned i = 0; i < NPARTS_MAX; i++)
		m->parts[i].w.fd = -1;
	return m;
}

void eng_in_add(hl_engine *e, struct in_msg *m)
{
	m->next = e->in;
	e->in = m;
	e->nin++;
}

/* Creates the directories of an incoming part, in/ and in/<id>/, each
 * made durable in its parent when new (the file's own fsync and its
 * directory's come when the part is complete). */
int eng_make_part_dir(const hl_engine *e, const char *relpath)
{
	int ret = 0;
	char *in = hl_path_join(e->env.dir, "in");
	char *msgdir = hl_path_join(e->env.dir, relpath);
	*strrchr(msgdir, '/') = '\0';
	if (mkdir(in, 0700) == 0)
		ret = hl_fsync_parent(in);
	else if (errno != EEXIST)
		ret = -errno;
	if (ret == 0) {
		if (mkdir(msgdir, 0700) == 0)
			ret = hl_fsync_parent(msgdir);
		else if (errno != EEXIST)
			ret = -errno;
	}
	free(in);
	free(msgdir);
	return ret;
}

/* An empty attachment P: its file, created whole and made durable
 * before the receipt, like any other part. */
int eng_part_empty(hl_engine *e, const struct in_part *p)
{
	char *fin = hl_path_join(e->env.dir, p->path);
	int ret = eng_make_part_dir(e, p->path);
	int fd = ret < 0 ? -1
			 : open(fin, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (ret == 0 && fd < 0)
		ret = -errno;
	/* durable before the receipt, like any other part */
	if (fd >= 0 && fsync(fd) < 0)
		ret = -errno;
	if (fd >= 0)
		close(fd);
	if (ret == 0)
		ret = hl_fsync_parent(fin);
	free(fin);
	if (ret < 0)
		eng_set_error(e, "cannot store attachment %s: %s", p->path, hl_strerror(ret));
	return ret;
}

char *eng_part_tmp_path(const hl_engine *e, const struct in_part *p)
{
	return xasprintf("%s/%s.part", e->env.dir, p->path);
}

bool eng_in_all_complete(const struct in_msg *m)
{
	for (unsigned i = 0; i < NPARTS_MAX; i++)
		if (m->parts[i].present && !m->parts[i].complete)
			return false;
	return true;
}

/* May M (every part whole) become visible?  When the message before it in
 * its precedence is visible or refused; or when that message is not here
 * at all but everything before M in the peer's chain is (stored or
 * refused): then it was refused before anything of it could be trusted
 * (a bad signature), and waiting for it would wait for ever. */
int eng_predecessor_done(hl_engine *e, unsigned prec, uint64_t class_seq, uint64_t seq,
			 bool *ok)
{
	hl_store *st = e->env.txn->store;
	int state;
	int ret = hl_store_in_class_state(st, e->peer_id, prec, class_seq - 1, &state);
	if (ret < 0)
		return ret;
	*ok = state == HL_MSG_COMPLETE || state == HL_MSG_REFUSED_IN;
	if (state == -1) {
		struct hl_chain_head head;
		if ((ret = hl_store_in_contiguous(st, e->peer_id, &head)) < 0)
			return ret;
		*ok = head.seq + 1 >= seq;
	}
	return 0;
}

/* The message at SEQ became visible: its receipt goes in the precommit. */
void eng_add_receipt(hl_engine *e, uint64_t seq, const uint8_t hash[static HL_HASH_LEN])
{
	if (e->nrcpt == e->caprcpt) {
		e->caprcpt = e->caprcpt ? 2 * e->caprcpt : 64;
		e->rcpt = xrealloc(e->rcpt, e->caprcpt * sizeof(*e->rcpt));
	}
	e->rcpt[e->nrcpt].seq = seq;
	memcpy(e->rcpt[e->nrcpt].hash, hash, HL_HASH_LEN);
	e->nrcpt++;
}

/* Makes M visible if the message before it allows (eng_predecessor_done),
 * then tries the messages that were waiting for it. */
int eng_try_visible(hl_engine *e, struct in_msg *m, uint64_t now)
{
	hl_store *st = e->env.txn->store;
	while (m) {
		bool prev_ok;
		int ret = eng_predecessor_done(e, m->prec, m->class_seq, m->seq, &prev_ok);
		if (ret < 0)
			return ret;
		if (!prev_ok)
			return 0;
		/* Visible already (a bundle imported beside this daemon made it
		 * so, and authored its receipt): a receipt acknowledges a
		 * message once (docs/items.md 2.2). */
		int state;
		if ((ret = hl_store_in_class_state(st, e->peer_id, m->prec, m->class_seq,
						   &state)) < 0)
			return ret;
		if (state != HL_MSG_COMPLETE) {
			if ((ret = hl_store_set_state(st, m->id, HL_MSG_COMPLETE, NULL,
						      hl_now_ms())) < 0)
				return ret;
			eng_add_event(e, HL_EV_ARRIVED, m->id);
			eng_add_receipt(e, m->seq, m->item_hash);
		}
		unsigned prec = m->prec;
		uint64_t next_class = m->class_seq + 1;
		eng_in_unlink(e, m);
		eng_in_msg_free(m);
		/* the next one of this precedence may have been waiting */
		m = NULL;
		for (struct in_msg *w = e->in; w; w = w->next) {
			if (w->ready && w->prec == prec && w->class_seq == next_class) {
				m = w;
				break;
			}
		}
	}
	(void)now;
	return 0;
}

/* Refuses an incoming message that was already stored (a part failed its
 * hash): its state becomes REFUSED, its files go, a REFUSE follows the
 * commit. */
int eng_refuse_stored(hl_engine *e, struct in_msg *m, uint8_t code, const char *text)
{
	hl_store *st = e->env.txn->store;
	char reason[256];
	snprintf(reason, sizeof(reason), "%s: %s", hl_refuse_code_str(code), text);
	hl_warn("peer %s: refused message seq %llu: %s", e->peer_name,
		(unsigned long long)m->seq, reason);
	int ret = hl_store_set_state(st, m->id, HL_MSG_REFUSED_IN, reason, hl_now_ms());
	if (ret < 0)
		return ret;
	eng_add_event(e, HL_EV_REFUSED_IN, m->id);
	for (unsigned i = 1; i < NPARTS_MAX; i++) {
		struct in_part *p = &m->parts[i];
		if (!p->present)
			continue;
		char *tmp = eng_part_tmp_path(e, p), *fin = hl_path_join(e->env.dir, p->path);
		unlink(tmp);
		unlink(fin);
		free(tmp);
		free(fin);
	}
	eng_queue_refusal(e, m->seq, m->item_hash, code, text);
	/* A refused message no longer holds back the one after it. */
	unsigned prec = m->prec;
	uint64_t next_class = m->class_seq + 1;
	eng_in_unlink(e, m);
	eng_in_msg_free(m);
	for (struct in_msg *w = e->in; w; w = w->next)
		if (w->ready && w->prec == prec && w->class_seq == next_class)
			return eng_try_visible(e, w, 0);
	return 0;
}

/* Makes the hash state of a part file's first DONE bytes (after a
 * restart, or after a failure) from the file itself. */
static int part_rehash(hl_engine *e, struct in_part *p)
{
	char *tmp = eng_part_tmp_path(e, p);
	int ret = 0;
	uint8_t *buf = NULL;
	struct hl_dio_reader r = { .fd = -1 };
	struct stat sb;
	if (stat(tmp, &sb) < 0) {
		if (errno != ENOENT) {
			ret = -errno;
			goto out;
		}
		sb.st_size = 0;
	}
	if ((uint64_t)sb.st_size < p->done)
		p->done = p->durable = 0; /* shorter than recorded: start over */
	hl_parthash_doc(&p->hs);
	if (p->done > 0) {
		if ((ret = hl_dio_ropen(&r, tmp, O_CLOEXEC | O_NOFOLLOW)) < 0)
			goto out;
		buf = xmalloc(HL_DIO_BUF);
		for (uint64_t off = 0; off < p->done;) {
			size_t want = p->done - off < HL_DIO_BUF ? (size_t)(p->done - off) : HL_DIO_BUF;
			if ((ret = hl_dio_read(&r, off, buf, want)) < 0)
				goto out;
			hl_parthash_update(&p->hs, buf, want);
			off += want;
		}
	}
	p->hashed = true;
out:
	hl_dio_rclose(&r);
	free(buf);
	free(tmp);
	return ret;
}

/* Closes the writer of part IDX of M for now (another part needs the
 * room): what it holds is made durable and recorded, and the hash state
 * stays, so the part goes on where it stopped. */
static void part_park(hl_engine *e, struct in_msg *m, unsigned idx)
{
	struct in_part *p = &m->parts[idx];
	int ret = 0;
	if (p->pw) {
		ret = hl_partwriter_finish(p->pw);
		p->pw = NULL;
	}
	if (ret == 0)
		ret = hl_dio_sync(&p->w);
	hl_dio_close(&p->w);
	if (ret == 0 && p->done > p->durable &&
	    hl_store_set_part_done(e->env.txn->store, m->id, idx - 1, p->done) == 0)
		p->durable = p->done;
	if (ret < 0) {
		/* back to what is known durable; rehashed when reopened */
		p->done = p->durable;
		p->hashed = false;
	}
}

/* Opens part P's file for appending at p->done (cutting anything past
 * it), parking another part's writer when WRITERS_MAX are open. */
static int part_open_writer(hl_engine *e, struct in_part *p)
{
	unsigned open_now = 0;
	struct in_msg *vm = NULL;
	unsigned vidx = 0;
	for (struct in_msg *m = e->in; m; m = m->next)
		for (unsigned i = 1; i < NPARTS_MAX; i++)
			if (m->parts[i].w.fd >= 0) {
				open_now++;
				vm = m;
				vidx = i;
			}
	if (open_now >= WRITERS_MAX && vm)
		part_park(e, vm, vidx);
	int ret = p->hashed ? 0 : part_rehash(e, p);
	if (ret == 0) {
		char *tmp = eng_part_tmp_path(e, p);
		ret = hl_dio_open(&p->w, tmp, O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600, p->done);
		free(tmp);
	}
	return ret;
}

static int load_partial(void *arg, const struct hl_msg_row *row)
{
	hl_engine *e = arg;
	struct in_msg *m = eng_in_msg_new();
	struct hl_item_row irow;
	m->seq = row->seq;
	memcpy(m->id, row->id, HL_MSG_ID_LEN);
	m->prec = row->precedence;
	m->class_seq = row->class_seq;
	memcpy(m->salt, row->salt, HL_SALT_LEN);
	m->body_size = row->body_size;
	/* the signed item gives the hashes */
	struct hl_item *it = xcalloc(1, sizeof(*it));
	int ret = hl_store_get_item(e->env.txn->store, e->peer_id, HL_DIR_IN, row->seq, &irow,
				    e->itembuf, HL_ITEM_MAX);
	if (ret == 0)
		ret = hl_item_decode(e->itembuf, irow.encoded_len, it);
	if (ret < 0) {
		free(it);
		eng_in_msg_free(m);
		return 0; /* leave it; logged by the caller's count */
	}
	memcpy(m->item_hash, irow.hash, HL_HASH_LEN);
	memcpy(m->body_hash, it->u.msg.body_hash, HL_HASH_LEN);
	free(it);
	if (!row->body && row->body_size > HL_INLINE_BODY_MAX) {
		m->parts[0].present = true;
		m->parts[0].size = row->body_size;
		m->body = xmalloc(row->body_size);
		hl_parthash_body(&m->parts[0].hs, m->salt);
	}
	for (unsigned i = 0; i < row->n_att; i++) {
		struct in_part *p = &m->parts[i + 1];
		p->present = true;
		p->size = row->att[i].size;
		p->done = p->durable = row->att[i].done;
		memcpy(p->hash, row->att[i].hash, HL_HASH_LEN);
		p->path = xstrdup(row->att[i].path);
		if (p->done >= p->size) {
			p->complete = true;
		} else if (part_rehash(e, p) < 0) {
			hl_warn("peer %s: cannot reopen %s; receiving it again", e->peer_name, p->path);
			p->done = p->durable = 0;
		}
	}
	m->ready = eng_in_all_complete(m);
	eng_in_add(e, m);
	return 0;
}

int eng_load_in(hl_engine *e)
{
	if (e->in_loaded)
		return 0;
	int ret = hl_store_each_in_partial(e->env.txn->store, e->peer_id, load_partial, e);
	if (ret < 0) {
		eng_set_error(e, "store: %s", hl_store_errmsg(e->env.txn->store));
		eng_in_clear(e);
		return ret;
	}
	e->in_loaded = true;
	return 0;
}

/* An item that arrived (or was refused) may let a message that waits for
 * its predecessor go (see eng_predecessor_done). */
int eng_retry_waiting(hl_engine *e)
{
	bool progress = true;
	while (progress) {
		progress = false;
		for (struct in_msg *w = e->in; w; w = w->next) {
			if (!w->ready)
				continue;
			size_t before = e->nin;
			int ret = eng_try_visible(e, w, 0);
			if (ret < 0)
				return ret;
			if (e->nin != before) {
				progress = true; /* the list changed under us */
				break;
			}
		}
	}
	return 0;
}

static int complete_part(hl_engine *e, struct in_msg *m, unsigned idx)
{
	hl_store *st = e->env.txn->store;
	struct in_part *p = &m->parts[idx];
	uint8_t h[HL_HASH_LEN];
	int ret;

	if (p->pw) {
		ret = hl_partwriter_finish(p->pw);
		p->pw = NULL;
		if (ret < 0) {
			eng_set_error(e, "cannot write %s.part: %s", p->path, hl_strerror(ret));
			return ret;
		}
	}
	hl_parthash_final(&p->hs, h);
	if (idx == 0) {
		if (sodium_memcmp(h, m->body_hash, HL_HASH_LEN) != 0)
			return eng_refuse_stored(e, m, HL_REFUSE_CONTENT, "body does not match its hash");
		if ((ret = hl_store_set_body(st, m->id, m->body, m->body_size)) < 0)
			return ret;
		free(m->body);
		m->body = NULL;
	} else {
		if (sodium_memcmp(h, p->hash, HL_HASH_LEN) != 0)
			return eng_refuse_stored(e, m, HL_REFUSE_ATTACHMENT,
						 "attachment does not match its hash");
		/* fsync, rename into place, fsync the directory: then, and
		 * only then, the store may say it is whole. */
		char *tmp = eng_part_tmp_path(e, p), *fin = hl_path_join(e->env.dir, p->path);
		ret = 0;
		ret = hl_dio_finish(&p->w);
		if (ret == 0 && rename(tmp, fin) < 0)
			ret = -errno;
		hl_dio_close(&p->w);
		if (ret == 0)
			ret = hl_fsync_parent(fin);
		free(tmp);
		free(fin);
		if (ret < 0) {
			eng_set_error(e, "cannot store attachment %s: %s", p->path, hl_strerror(ret));
			return ret;
		}
		if ((ret = hl_store_set_part_done(st, m->id, idx - 1, p->size)) < 0)
			return ret;
		p->durable = p->done;
	}
	p->complete = true;
	m->ready = eng_in_all_complete(m);
	if (m->ready)
		return eng_try_visible(e, m, 0);
	return 0;
}

/* What a part's worker made durable goes into the store (here, and at
 * each precommit). */
int eng_note_synced(hl_engine *e, struct in_msg *m, unsigned idx)
{
	struct in_part *p = &m->parts[idx];
	uint64_t synced = hl_partwriter_synced(p->pw);
	if (synced <= p->durable)
		return 0;
	int ret = hl_store_set_part_done(e->env.txn->store, m->id, idx - 1, synced);
	if (ret == 0)
		p->durable = synced;
	return ret;
}

/* A part's worker took in data (on its thread): the daemon's loop calls
 * hl_engine_credit(). */
void eng_worker_wake(void *arg)
{
	hl_engine *e = arg;
	e->env.wake(e->env.user);
}

int eng_on_chunk(hl_engine *e, const uint8_t *body, size_t len)
{
	struct hl_pkt_chunk c;
	int ret;
	if ((ret = hl_pkt_chunk_decode(body, len, &c)) < 0) {
		eng_set_error(e, "malformed CHUNK record");
		return ret;
	}
	if ((ret = hl_txn_need(e->env.txn)) < 0 || (ret = eng_load_in(e)) < 0)
		return ret;
	struct in_msg *m = eng_in_find(e, c.seq);
	if (!m)
		return 0; /* complete, refused or unknown: a late resend */
	struct in_part *p = &m->parts[c.part];
	if (!p->present || p->complete ||
	    (c.offset < p->done && p->done - c.offset >= c.data_len))
		return 0; /* a resend of what we hold */
	if (c.offset < p->done) {
		/* A resend that overlaps what we hold: keep its new tail.  A
		 * courier bundle cuts its chunks from offset 0, which need not
		 * line up with where a session left a part. */
		size_t skip = (size_t)(p->done - c.offset);
		c.data += skip;
		c.data_len -= skip;
		c.offset = p->done;
	}
	if (c.offset > p->done || c.data_len > p->size - p->done) {
		eng_set_error(e, "CHUNK of message %llu part %u at offset %llu; expected %llu",
			      (unsigned long long)c.seq, c.part, (unsigned long long)c.offset,
			      (unsigned long long)p->done);
		return HL_EINVAL;
	}
	e->stats.chunks_in++;
	uint64_t every = p->size / 64;
	every = every < SYNC_MIN ? SYNC_MIN : every > SYNC_MAX ? SYNC_MAX : every;
	if (c.part == 0) {
		memcpy(m->body + p->done, c.data, c.data_len);
	} else {
		if (p->w.fd < 0) {
			if ((ret = eng_make_part_dir(e, p->path)) < 0 || (ret = part_open_writer(e, p)) < 0) {
				hl_dio_close(&p->w);
				eng_set_error(e, "cannot open %s.part: %s", p->path, hl_strerror(ret));
				return ret;
			}
		}
		struct hl_partwriter_progress progress = {
			.taken = e->env.wake ? &e->done_pw : NULL,
			.wake = e->env.wake ? eng_worker_wake : NULL,
			.arg = e,
			.step = CREDIT_STEP,
		};
		if (!p->pw && p->size - p->done >= WORKER_MIN &&
		    hl_partwriter_start(&p->pw, &p->w, &p->hs, p->done, every, &progress) < 0)
			p->pw = NULL; /* no thread: the same work, here */
		/* On an error the session ends; the next one starts again
		 * from what the store says is durable (and cuts the rest). */
		ret = p->pw ? hl_partwriter_push(p->pw, c.data, c.data_len)
			    : hl_dio_write(&p->w, c.data, c.data_len);
		if (p->pw && e->env.wake)
			e->pushed_now = c.data_len; /* the worker counts it taken */
		if (ret < 0) {
			eng_set_error(e, "cannot write %s.part: %s", p->path, hl_strerror(ret));
			return ret;
		}
	}
	if (!p->pw)
		hl_parthash_update(&p->hs, c.data, c.data_len);
	p->done += c.data_len;
	if (p->done == p->size)
		return complete_part(e, m, c.part);
	if (p->pw)
		return eng_note_synced(e, m, c.part); /* the worker syncs */
	if (c.part > 0 && p->done - p->durable >= every) {
		if ((ret = hl_dio_sync(&p->w)) < 0) {
			eng_set_error(e, "cannot sync %s.part: %s", p->path, hl_strerror(ret));
			return ret;
		}
		if ((ret = hl_store_set_part_done(e->env.txn->store, m->id, c.part - 1, p->done)) < 0)
			return ret;
		p->durable = p->done;
	}
	return 0;
}
