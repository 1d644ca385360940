/* record/export.c — a station's record of one link (export.h). */
#include "record/export.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "msg/message.h"
#include "util/err.h"
#include "util/fsutil.h"
#include "util/mem.h"
#include "util/text.h"
#include "util/timefmt.h"

#define COPY_BUF (1u << 20)

struct msg_ref {
	uint8_t chain;
	uint64_t seq;
	uint8_t id[HL_MSG_ID_LEN];
	bool has_body;
	bool disclose;
	int64_t purged_at;      /* retention purged its contents; 0 never */
};

struct att_ref {
	uint8_t chain;
	uint64_t seq;
	unsigned index;
	uint64_t size;
	uint8_t hash[HL_HASH_LEN];
	char *path;
	char idhex[33];
};

struct evidence {
	uint8_t *item;
	size_t len;
};

struct ex {
	const struct hl_record_export *o;
	struct hl_record_writer *w;
	struct hl_record_export_stats *stats;
	char *err;
	size_t errlen;
	int64_t peer_id;
	uint64_t expect;               /* the next seq of the chain being written */
	struct msg_ref *msgs;
	size_t nmsgs, capmsgs;
	struct att_ref *atts;
	size_t natts, capatts;
	struct evidence *ev;
	size_t nev, capev;
	size_t npurged;
};

static int seterr(struct ex *x, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int seterr(struct ex *x, int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(x->err, x->errlen, fmt, ap);
	va_end(ap);
	return code;
}

static void warnf(struct ex *x, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void warnf(struct ex *x, const char *fmt, ...)
{
	char line[512];
	va_list ap;
	if (!x->o->warn)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	x->o->warn(x->o->warn_arg, line);
}

static int store_err(struct ex *x, int ret)
{
	return seterr(x, ret, "store: %s", hl_store_errmsg(x->o->store));
}

static int writer_err(struct ex *x)
{
	return seterr(x, x->w->err, "writing the record: %s", hl_strerror(x->w->err));
}

static unsigned chain_of(enum hl_dir dir)
{
	return dir == HL_DIR_OUT ? HL_RECORD_EXPORTER : HL_RECORD_PEER;
}

/* ---- cards ---- */

/* Our card as the peer pinned it (the store keeps it once the station has
 * rotated: docs/rotation.md), else our signer's keys now; and the seal's
 * key must be our chain's last: HL_EKEYS when a rotation is not yet on the
 * chains, or this process holds keys from before one. */
static int our_card(struct ex *x, hl_card *c)
{
	const struct hl_record_export *o = x->o;
	struct hl_own_keys own;
	uint8_t author[32];
	int ret = x->peer_id ? hl_store_own_card(o->store, x->peer_id, &own) : HL_ENOTFOUND;
	if (ret == 0) {
		memcpy(c->noise_key, own.noise, HL_KEY_LEN);
		memcpy(c->signing_key, own.sign, HL_KEY_LEN);
		c->has_next = own.has_next;
		memcpy(c->next_hash, own.next_hash, HL_KEY_LEN);
	} else if (ret == HL_ENOTFOUND) {
		memcpy(c->noise_key, hl_signer_noise_pub(o->me), HL_KEY_LEN);
		memcpy(c->signing_key, hl_signer_sign_pk(o->me), HL_KEY_LEN);
		c->has_next = hl_signer_next_hash(o->me, c->next_hash) == 0;
		ret = x->peer_id && hl_signer_prev_sign_pk(o->me) ? HL_EKEYS : 0;
	}
	if (ret == 0 && x->peer_id)
		ret = hl_store_author_keys(o->store, x->peer_id, hl_signer_sign_pk(o->me),
					   hl_signer_prev_sign_pk(o->me), author);
	if (ret == HL_EKEYS)
		return seterr(x, ret, "this station's keys were rotated, and its chains do not say "
			      "so yet: start the daemon, or run 'hotline key rotate', to complete "
			      "the rotation first");
	return ret < 0 ? store_err(x, ret) : 0;
}

static int write_cards(struct ex *x)
{
	const struct hl_record_export *o = x->o;
	hl_card cards[2];
	int ret;
	memset(cards, 0, sizeof(cards));
	memcpy(cards[0].name, o->conf->name, sizeof(cards[0].name));
	if ((ret = our_card(x, &cards[0])) < 0)
		return ret;
	memcpy(cards[0].address, o->conf->address, sizeof(cards[0].address));
	memcpy(cards[1].name, o->peer->name, sizeof(cards[1].name));
	memcpy(cards[1].noise_key, o->peer->noise_key, HL_KEY_LEN);
	memcpy(cards[1].signing_key, o->peer->signing_key, HL_KEY_LEN);
	cards[1].has_next = o->peer->has_next;
	memcpy(cards[1].next_hash, o->peer->next_hash, HL_KEY_LEN);
	memcpy(cards[1].address, o->peer->address, sizeof(cards[1].address));
	for (unsigned c = 0; c < 2; c++) {
		char *text = hl_card_format(&cards[c]);
		hl_record_write_card(x->w, text, strlen(text));
		free(text);
	}
	return x->w->err ? writer_err(x) : 0;
}

/* ---- chains ---- */

static int out_row(void *arg, const struct hl_chain_row *row)
{
	struct ex *x = arg;
	/* Our own chain has every position: we store before we send. */
	if (row->seq != x->expect || !row->encoded)
		return seterr(x, HL_ESTORE, "store: our chain with %s has no item at seq %llu",
			      x->o->peer->name, (unsigned long long)x->expect);
	if (hl_record_write_item(x->w, row->encoded, row->encoded_len) < 0)
		return writer_err(x);
	x->stats->entries[0]++;
	x->expect++;
	return 0;
}

static int in_row(void *arg, const struct hl_chain_row *row)
{
	struct ex *x = arg;
	if (row->seq < x->expect)
		return seterr(x, HL_ESTORE, "store: %s's chain repeats seq %llu", x->o->peer->name,
			      (unsigned long long)row->seq);
	for (; x->expect < row->seq; x->expect++) {
		if (hl_record_write_absent(x->w) < 0)
			return writer_err(x);
		x->stats->absent++;
		x->stats->entries[1]++;
	}
	if (row->encoded)
		hl_record_write_item(x->w, row->encoded, row->encoded_len);
	else
		hl_record_write_refused(x->w, row->hash, (uint8_t)row->refused);
	if (x->w->err)
		return writer_err(x);
	if (!row->encoded)
		x->stats->refused++;
	x->stats->entries[1]++;
	x->expect++;
	return 0;
}

static int write_chains(struct ex *x)
{
	struct hl_chain_head head[2];
	memset(head, 0, sizeof(head));
	int ret;
	for (unsigned c = 0; c < 2; c++) {
		enum hl_dir dir = c == HL_RECORD_EXPORTER ? HL_DIR_OUT : HL_DIR_IN;
		if (x->peer_id &&
		    (ret = hl_store_chain_head(x->o->store, x->peer_id, dir, &head[c])) < 0)
			return store_err(x, ret);
		if (head[c].seq > HL_RECORD_MAX_ENTRIES)
			return seterr(x, HL_ETOOBIG, "the chain has %llu entries; a record holds at "
				      "most %u", (unsigned long long)head[c].seq, HL_RECORD_MAX_ENTRIES);
		if (hl_record_write_chain(x->w, (uint32_t)head[c].seq) < 0)
			return writer_err(x);
		x->expect = 1;
		if (x->peer_id &&
		    (ret = hl_store_each_chain_item(x->o->store, x->peer_id, dir,
						    c == HL_RECORD_EXPORTER ? out_row : in_row,
						    x)) < 0)
			return x->err[0] ? ret : store_err(x, ret);
		if (x->expect != head[c].seq + 1)
			return seterr(x, HL_ESTORE, "store: a chain ended at %llu, its head is %llu",
				      (unsigned long long)(x->expect - 1),
				      (unsigned long long)head[c].seq);
	}
	return 0;
}

/* ---- which messages are disclosed ---- */

static int collect_msg(void *arg, const struct hl_link_msg *m)
{
	struct ex *x = arg;
	if (x->nmsgs == x->capmsgs) {
		x->capmsgs = x->capmsgs ? x->capmsgs * 2 : 64;
		x->msgs = xrealloc(x->msgs, x->capmsgs * sizeof(*x->msgs));
	}
	struct msg_ref *r = &x->msgs[x->nmsgs++];
	memset(r, 0, sizeof(*r));
	r->chain = (uint8_t)chain_of(m->dir);
	r->seq = m->seq;
	memcpy(r->id, m->id, HL_MSG_ID_LEN);
	r->has_body = m->has_body;
	r->purged_at = m->purged_at;
	x->npurged += m->purged_at > 0;
	return 0;
}

static int cmp_ref(const void *a, const void *b)
{
	const struct msg_ref *x = a, *y = b;
	if (x->chain != y->chain)
		return x->chain < y->chain ? -1 : 1;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static int choose(struct ex *x)
{
	const struct hl_record_export *o = x->o;
	int ret;
	if (x->peer_id &&
	    (ret = hl_store_each_link_message(o->store, x->peer_id, collect_msg, x)) < 0)
		return store_err(x, ret);
	char hex[33];
	if (!o->only) {
		for (size_t i = 0; i < x->nmsgs; i++) {
			x->msgs[i].disclose = x->msgs[i].has_body;
			if (!x->msgs[i].has_body && !x->msgs[i].purged_at) {
				hl_msg_id_hex(x->msgs[i].id, hex);
				warnf(x, "message %s is still arriving; its contents are withheld", hex);
			}
		}
		return 0;
	}
	for (size_t i = 0; i < o->nids; i++) {
		struct hl_msg_row row = { 0 };
		char q[80];
		hl_sanitize(o->ids[i], strlen(o->ids[i]), q, sizeof(q), 0);
		ret = hl_store_get_message(o->store, o->ids[i], &row);
		struct msg_ref key = { .chain = (uint8_t)chain_of(row.dir), .seq = row.seq };
		hl_msg_row_clear(&row);
		if (ret == HL_ENOTFOUND)
			return seterr(x, ret, "no message with id '%s'", q);
		if (ret == HL_EEXIST)
			return seterr(x, ret, "'%s' matches more than one message; give more digits", q);
		if (ret == HL_EINVAL)
			return seterr(x, ret, "'%s' is not a message id (8 to 32 hex digits)", q);
		if (ret < 0)
			return store_err(x, ret);
		if (row.peer_id != x->peer_id)
			return seterr(x, HL_ENOTFOUND, "message '%s' is not on the link with %s", q,
				      o->peer->name);
		struct msg_ref *r = x->nmsgs ? bsearch(&key, x->msgs, x->nmsgs, sizeof(*x->msgs),
						      cmp_ref) : NULL;
		if (!r)
			return seterr(x, HL_ENOTFOUND, "message '%s' is not on the link with %s", q,
				      o->peer->name);
		if (r->purged_at)
			return seterr(x, HL_ESTATE, "message '%s' was purged (retention): its "
				      "contents are gone; the record carries its signed item", q);
		if (!r->has_body)
			return seterr(x, HL_ESTATE, "message '%s' is still arriving; its contents "
				      "cannot be disclosed yet", q);
		r->disclose = true;
	}
	return 0;
}

/* ---- contents ---- */

static void add_att(struct ex *x, const struct msg_ref *r, const struct hl_msg_row *row,
		    const struct hl_att_row *a)
{
	char hex[33];
	struct stat sb;
	hl_msg_id_hex(row->id, hex);
	char *path = hl_path_join(x->o->dir, a->path);
	/* An incoming attachment counts once every byte is durable; ours
	 * from the start. */
	bool whole = row->dir == HL_DIR_OUT || a->done == a->size;
	if (!whole || lstat(path, &sb) < 0 || !S_ISREG(sb.st_mode) ||
	    (uint64_t)sb.st_size != a->size) {
		warnf(x, "attachment %u of message %s is not %s here; left out", a->idx, hex,
		      whole ? "available" : "complete");
		free(path);
		return;
	}
	if (x->natts == x->capatts) {
		x->capatts = x->capatts ? x->capatts * 2 : 16;
		x->atts = xrealloc(x->atts, x->capatts * sizeof(*x->atts));
	}
	struct att_ref *t = &x->atts[x->natts++];
	t->chain = r->chain;
	t->seq = r->seq;
	t->index = a->idx;
	t->size = a->size;
	memcpy(t->hash, a->hash, HL_HASH_LEN);
	t->path = path;
	memcpy(t->idhex, hex, sizeof(hex));
}

static int write_contents(struct ex *x)
{
	uint32_t count = 0;
	int ret;
	for (size_t i = 0; i < x->nmsgs; i++)
		count += x->msgs[i].disclose;
	if (hl_record_write_contents(x->w, count) < 0)
		return writer_err(x);
	for (size_t i = 0; i < x->nmsgs; i++) {
		const struct msg_ref *r = &x->msgs[i];
		if (!r->disclose) {
			x->stats->withheld++;
			continue;
		}
		struct hl_msg_row row = { 0 };
		enum hl_dir dir = r->chain == HL_RECORD_EXPORTER ? HL_DIR_OUT : HL_DIR_IN;
		if ((ret = hl_store_get_message_by_seq(x->o->store, x->peer_id, dir, r->seq,
						       &row)) < 0) {
			hl_msg_row_clear(&row);
			return store_err(x, ret);
		}
		const char *subject = row.subject ? row.subject : "";
		hl_record_write_content(x->w, r->chain, r->seq, row.salt, (const uint8_t *)subject,
					strlen(subject), row.body, row.body ? row.body_size : 0);
		if (x->o->with_attachments)
			for (unsigned a = 0; a < row.n_att; a++)
				add_att(x, r, &row, &row.att[a]);
		hl_msg_row_clear(&row);
		if (x->w->err)
			return writer_err(x);
		x->stats->disclosed++;
	}
	return 0;
}

/* ---- evidence of equivocation ---- */

/* The store keeps the item of the chain (first) and the other one the peer
 * signed at the same position (second): the record carries the second. */
static int collect_evidence(void *arg, const struct hl_equivocation_row *row)
{
	struct ex *x = arg;
	if (x->nev == HL_RECORD_MAX_EVIDENCE) {
		warnf(x, "more than %d pieces of evidence of equivocation; the record carries "
		      "the first %d", HL_RECORD_MAX_EVIDENCE, HL_RECORD_MAX_EVIDENCE);
		return 1;
	}
	if (row->second_len == 0 || row->second_len > HL_ITEM_MAX)
		return seterr(x, HL_ESTORE, "store: evidence at seq %llu has a bad item",
			      (unsigned long long)row->seq);
	if (x->nev == x->capev) {
		x->capev = x->capev ? x->capev * 2 : 4;
		x->ev = xrealloc(x->ev, x->capev * sizeof(*x->ev));
	}
	x->ev[x->nev].item = xmalloc(row->second_len);
	memcpy(x->ev[x->nev].item, row->second_item, row->second_len);
	x->ev[x->nev].len = row->second_len;
	x->nev++;
	return 0;
}

static int read_evidence(struct ex *x)
{
	int ret;
	/* Peer id 0 would mean every peer to the store. */
	if (x->peer_id == 0)
		return 0;
	ret = hl_store_each_equivocation(x->o->store, x->peer_id, collect_evidence, x);
	if (ret < 0)
		return x->err[0] ? ret : store_err(x, ret);
	return 0;
}

/* Version 2 only: which messages retention purged, and when. */
static int write_purged(struct ex *x)
{
	if (!x->npurged)
		return 0;
	if (hl_record_write_purged(x->w, (uint32_t)x->npurged) < 0)
		return writer_err(x);
	for (size_t i = 0; i < x->nmsgs; i++)
		if (x->msgs[i].purged_at > 0 &&
		    hl_record_write_purged_entry(x->w, x->msgs[i].chain, x->msgs[i].seq,
						 (uint64_t)x->msgs[i].purged_at) < 0)
			return writer_err(x);
	x->stats->purged = x->npurged;
	return 0;
}

static int write_evidence(struct ex *x)
{
	if (hl_record_write_evidence(x->w, (uint32_t)x->nev) < 0)
		return writer_err(x);
	for (size_t i = 0; i < x->nev; i++)
		if (hl_record_write_evidence_item(x->w, HL_RECORD_PEER, x->ev[i].item,
						  x->ev[i].len) < 0)
			return writer_err(x);
	x->stats->evidence = x->nev;
	return 0;
}

/* ---- attachments ---- */

static int copy_att(struct ex *x, const struct att_ref *t, uint8_t *buf)
{
	int ret = 0, fd = open(t->path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	hl_sha256_state hs;
	uint8_t h[HL_HASH_LEN];
	uint64_t left = t->size;
	struct stat sb;
	if (fd < 0 || fstat(fd, &sb) < 0 || (uint64_t)sb.st_size != t->size) {
		ret = seterr(x, fd < 0 ? -errno : HL_ESTATE, "%s: %s", t->path,
			     fd < 0 ? strerror(errno) : "changed while the record was written");
		goto out;
	}
	hl_sha256_init(&hs);
	if (hl_record_write_att_begin(x->w, t->chain, t->seq, t->index, t->size) < 0) {
		ret = writer_err(x);
		goto out;
	}
	while (left > 0) {
		ssize_t n = read(fd, buf, left < COPY_BUF ? (size_t)left : COPY_BUF);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			ret = seterr(x, n < 0 ? -errno : HL_ETRUNC, "%s: %s", t->path,
				     n < 0 ? strerror(errno) : "shorter than its size");
			goto out;
		}
		hl_sha256_update(&hs, buf, (size_t)n);
		if (hl_record_write_att_data(x->w, buf, (size_t)n) < 0) {
			ret = writer_err(x);
			goto out;
		}
		left -= (uint64_t)n;
	}
	hl_sha256_final(&hs, h);
	/* The verifier would refuse the record; say so now, naming it. */
	if (sodium_memcmp(h, t->hash, HL_HASH_LEN) != 0)
		ret = seterr(x, HL_EAUTH, "attachment %u of message %s (%s) does not match its "
			     "signed hash", t->index, t->idhex, t->path);
	else
		x->stats->attachments++;
out:
	if (fd >= 0)
		close(fd);
	return ret;
}

static int write_atts(struct ex *x)
{
	int ret = 0;
	if (hl_record_write_attachments(x->w, (uint32_t)x->natts) < 0)
		return writer_err(x);
	uint8_t *buf = x->natts ? xmalloc(COPY_BUF) : NULL;
	for (size_t i = 0; i < x->natts && ret == 0; i++)
		ret = copy_att(x, &x->atts[i], buf);
	free(buf);
	return ret;
}

int hl_record_export(const struct hl_record_export *o, struct hl_record_writer *w,
		     struct hl_record_export_stats *stats, char *err, size_t errlen)
{
	struct ex x = { .o = o, .w = w, .stats = stats, .err = err, .errlen = errlen };
	bool in_txn = false;
	int ret;
	memset(stats, 0, sizeof(*stats));
	err[0] = '\0';
	ret = hl_store_peer_find(o->store, o->peer->signing_key, &x.peer_id);
	if (ret == HL_ENOTFOUND)
		x.peer_id = 0; /* never exchanged anything: two empty chains */
	else if (ret < 0)
		goto store_fail;
	if ((ret = hl_store_begin_read(o->store)) < 0)
		goto store_fail;
	in_txn = true;
	if ((ret = choose(&x)) < 0)
		goto out;
	if (x.npurged > HL_RECORD_MAX_PURGED) {
		ret = seterr(&x, HL_ETOOBIG, "%zu purged messages; a record holds at most %u",
			     x.npurged, HL_RECORD_MAX_PURGED);
		goto out;
	}
	/* Version 1 unless something was purged: readers of version 1 read
	 * every record without purges. */
	if (hl_record_write_header_version(w, o->exported_at ? o->exported_at : hl_wall_ms(),
					   x.npurged ? HL_RECORD_VERSION_PURGED
						     : HL_RECORD_VERSION) < 0) {
		ret = writer_err(&x);
		goto out;
	}
	if ((ret = write_cards(&x)) < 0 || (ret = write_chains(&x)) < 0 ||
	    (ret = write_contents(&x)) < 0 || (ret = read_evidence(&x)) < 0)
		goto out;
	/* Everything from the store is read; the attachment files of a
	 * complete message never change. */
	hl_store_rollback(o->store);
	in_txn = false;
	if ((ret = write_atts(&x)) < 0)
		goto out;
	if ((ret = write_evidence(&x)) < 0 || (ret = write_purged(&x)) < 0)
		goto out;
	if (hl_record_write_seal(w, o->me) < 0) {
		ret = writer_err(&x);
		goto out;
	}
	ret = 0;
	goto out;
store_fail:
	store_err(&x, ret);
out:
	if (in_txn)
		hl_store_rollback(o->store);
	for (size_t i = 0; i < x.natts; i++)
		free(x.atts[i].path);
	free(x.atts);
	for (size_t i = 0; i < x.nev; i++)
		free(x.ev[i].item);
	free(x.ev);
	free(x.msgs);
	return ret;
}
