/* bundle/export.c — `bundle export`: everything a peer has not yet
 * acknowledged, sealed for it (courier.h, docs/bundle.md section 5).
 *
 * The packets are the link's own (docs/messages.md), built from the store
 * as the delivery engine builds them for a session: an ITEM carries a
 * message's content, its parts follow as CHUNKs from offset 0.  The whole
 * export reads one snapshot of the store (a read transaction).  An
 * incremental export (AFTER > 0: what an earlier mail did not carry, see
 * daemon/failover.c) takes only the unacknowledged items above AFTER, and
 * a FLASH-only one (a mail before the fallback) only FLASH items. */
#include "bundle/courier.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bundle/format.h"
#include "deliver/rotate.h"
#include "deliver/send.h"
#include "wire/msgproto.h"
#include "msg/message.h"
#include "util/dio.h"
#include "util/err.h"
#include "util/fsutil.h"
#include "util/mem.h"
#include "wire/packet.h"

#define CHUNK_DATA_MAX (HL_PACKET_BODY_MAX - HL_CHUNK_HDR_LEN)

struct seqs {
	uint64_t *v;
	size_t n, cap;
	size_t limit;
	bool more;                    /* rows past the limit */
	bool flash_only;              /* take FLASH items only */
};

static void seqs_push(struct seqs *s, uint64_t seq)
{
	if (s->n == s->cap) {
		s->cap = s->cap ? 2 * s->cap : 64;
		s->v = xrealloc(s->v, s->cap * sizeof(*s->v));
	}
	s->v[s->n++] = seq;
}

static int collect_unacked(void *arg, const struct hl_item_row *row)
{
	struct seqs *s = arg;
	if (s->flash_only && row->precedence != HL_PREC_FLASH)
		return 0;
	if (s->n >= s->limit) {
		s->more = true;
		return 1;
	}
	seqs_push(s, row->seq);
	return 0;
}

static int collect_with_parts(void *arg, const struct hl_msg_row *row)
{
	seqs_push(arg, row->seq);
	return 0;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

struct exporter {
	const char *dir;
	hl_store *st;
	int64_t peer_id;
	hl_bundle_sealer *s;
	uint8_t *rec;                 /* HL_PACKET_BODY_MAX */
	uint8_t *item;                /* HL_ITEM_MAX */
	struct hl_bundle_export_stats *stats;
	char *err;
	size_t errlen;
};

static int put(struct exporter *x, uint8_t type, size_t len)
{
	int ret = hl_bundle_seal_packet(x->s, type, x->rec, len);
	if (ret < 0)
		snprintf(x->err, x->errlen, "cannot write the bundle: %s", hl_strerror(ret));
	return ret;
}

/* The ACK of what this station durably holds of the peer's chain, so the
 * peer stops offering it (as a session's first ACK). */
static int put_ack(struct exporter *x)
{
	struct hl_chain_head head;
	struct hl_pkt_ack *a = xcalloc(1, sizeof(*a));
	size_t n = 0, len;
	int ret = hl_store_in_contiguous(x->st, x->peer_id, &head);
	if (ret == 0)
		ret = hl_store_in_ranges(x->st, x->peer_id, head.seq, a->ranges, HL_ACK_MAX_RANGES, &n);
	if (ret == 0) {
		a->base = head.seq;
		a->n = (uint16_t)n;
		ret = hl_pkt_ack_encode(a, x->rec, HL_PACKET_BODY_MAX, &len);
		if (ret < 0)
			snprintf(x->err, x->errlen, "cannot encode the ACK: %s", hl_strerror(ret));
		else
			ret = put(x, HL_PKT_ACK, len);
	} else {
		snprintf(x->err, x->errlen, "store: %s", hl_store_errmsg(x->st));
	}
	free(a);
	return ret;
}

/* Part PART of the message at SEQ, SIZE bytes, as CHUNKs from offset 0
 * (built as a session builds them, deliver/send.h): part 0 from BODY, an
 * attachment from its file ATT (relative to the station directory). */
static int put_chunks(struct exporter *x, uint64_t seq, unsigned part, uint64_t size,
		      const uint8_t *body, const struct hl_att_row *att)
{
	struct hl_dio_reader r = { .fd = -1 };
	char *path = att ? hl_path_join(x->dir, att->path) : NULL;
	int ret = 0;
	if (path && (ret = hl_dio_ropen(&r, path, O_CLOEXEC | O_NOFOLLOW)) < 0) {
		snprintf(x->err, x->errlen, "cannot open attachment %s: %s", path,
			 strerror(-ret));
		goto out;
	}
	for (uint64_t off = 0; off < size;) {
		size_t n = size - off < CHUNK_DATA_MAX ? (size_t)(size - off) : CHUNK_DATA_MAX;
		if ((ret = hl_send_chunk_packet(seq, part, off, n, body, &r, x->rec)) < 0) {
			snprintf(x->err, x->errlen, "cannot read attachment %s: %s", path,
				 ret == HL_ETRUNC ? "file shorter than recorded" : strerror(-ret));
			goto out;
		}
		if ((ret = put(x, HL_PKT_CHUNK, HL_CHUNK_HDR_LEN + n)) < 0)
			goto out;
		x->stats->chunks++;
		off += n;
	}
out:
	hl_dio_rclose(&r);
	free(path);
	return ret;
}

/* One OUT item as an ITEM packet (built as a session builds it,
 * deliver/send.h); a message with its content, then its parts. */
static int put_item(struct exporter *x, uint64_t seq)
{
	struct hl_item_row irow;
	struct hl_msg_row row = { 0 };
	size_t len;
	int ret = hl_send_item_packet(x->st, x->peer_id, seq, x->item, x->rec, &len, &irow, &row,
				      x->err, x->errlen);
	if (ret < 0)
		goto out;
	if ((ret = put(x, HL_PKT_ITEM, len)) < 0)
		goto out;
	x->stats->items++;
	if (irow.kind != HL_ITEM_MESSAGE)
		goto out;
	x->stats->messages++;
	if (row.body_size > HL_INLINE_BODY_MAX) {
		if (!row.body) {
			ret = HL_ENOTFOUND;
			snprintf(x->err, x->errlen, "message %llu: body missing from the store",
				 (unsigned long long)seq);
			goto out;
		}
		if ((ret = put_chunks(x, seq, 0, row.body_size, row.body, NULL)) < 0)
			goto out;
	}
	for (unsigned i = 0; i < row.n_att; i++)
		if (row.att[i].size &&
		    (ret = put_chunks(x, seq, i + 1, row.att[i].size, NULL, &row.att[i])) < 0)
			goto out;
out:
	hl_msg_row_clear(&row);
	return ret;
}

int hl_bundle_export(const char *dir, hl_store *st, const hl_signer *me,
		     const hl_peer_conf *peer, hl_bundle_sink sink, void *arg,
		     struct hl_bundle_export_stats *stats, char *err, size_t errlen)
{
	return hl_bundle_export_after(dir, st, me, peer, 0, false, sink, arg, stats, err, errlen);
}

int hl_bundle_export_after(const char *dir, hl_store *st, const hl_signer *me,
			   const hl_peer_conf *peer, uint64_t after, bool flash_only,
			   hl_bundle_sink sink, void *arg, struct hl_bundle_export_stats *stats,
			   char *err, size_t errlen)
{
	struct seqs seqs = { .limit = HL_BUNDLE_MAX_ITEMS, .flash_only = flash_only };
	struct exporter x = {
		.dir = dir, .st = st, .stats = stats, .err = err, .errlen = errlen,
		.rec = xmalloc(HL_PACKET_BODY_MAX), .item = xmalloc(HL_ITEM_MAX),
	};
	bool reading = false, known;
	hl_signer *prev = NULL;
	int ret;
	memset(stats, 0, sizeof(*stats));
	if ((ret = hl_store_begin_read(st)) < 0) {
		snprintf(err, errlen, "store: %s", hl_store_errmsg(st));
		goto out;
	}
	reading = true;
	ret = hl_store_peer_find(st, peer->signing_key, &x.peer_id);
	if (ret < 0 && ret != HL_ENOTFOUND) {
		snprintf(err, errlen, "store: %s", hl_store_errmsg(st));
		goto out;
	}
	known = ret == 0;
	/* sealed to the peer's NoiseKey now, with ours as it pins it: the
	 * previous one until it has taken our rotation (docs/rotation.md) */
	struct hl_own_keys theirs;
	if ((ret = hl_rotate_peer_keys(st, known ? x.peer_id : 0, peer, INT64_MAX, &theirs,
				       NULL)) < 0) {
		snprintf(err, errlen, "store: %s", hl_store_errmsg(st));
		goto out;
	}
	if (known && hl_rotate_peer_pins_previous(st, x.peer_id, me) &&
	    hl_signer_previous(me, &prev) == 0)
		me = prev;
	if ((ret = hl_bundle_seal_begin(&x.s, me, theirs.noise, sink, arg)) < 0) {
		snprintf(err, errlen, "cannot write the bundle: %s", hl_strerror(ret));
		goto out;
	}
	if (known) {
		/* What we authored and the peer lacks: unacknowledged items,
		 * and acknowledged messages whose parts may not all be there
		 * (over a link the peer's RESUME would say; a courier cannot
		 * ask, so the whole message goes again; the peer keeps what
		 * it holds). */
		if ((ret = hl_store_each_out_after(st, x.peer_id, after, HL_BUNDLE_MAX_ITEMS + 1,
						   collect_unacked, &seqs)) < 0 ||
		    (after == 0 && !flash_only &&
		     (ret = hl_store_each_out_with_parts(st, x.peer_id, collect_with_parts,
							 &seqs)) < 0)) {
			snprintf(err, errlen, "store: %s", hl_store_errmsg(st));
			goto out;
		}
		if (seqs.n)
			qsort(seqs.v, seqs.n, sizeof(*seqs.v), cmp_u64);
		if ((ret = put_ack(&x)) < 0)
			goto out;
		for (size_t i = 0; i < seqs.n; i++) {
			if (i > 0 && seqs.v[i] == seqs.v[i - 1])
				continue;
			if ((ret = put_item(&x, seqs.v[i])) < 0)
				goto out;
		}
		stats->left = seqs.more; /* at least one; the count needs another query */
	}
	if ((ret = hl_bundle_seal_end(x.s)) < 0) {
		snprintf(err, errlen, "cannot write the bundle: %s", hl_strerror(ret));
		goto out;
	}
	stats->packets = hl_bundle_sealer_packets(x.s);
out:
	if (reading)
		hl_store_rollback(st);
	hl_bundle_sealer_free(x.s);
	hl_signer_free(prev);
	free(seqs.v);
	free(x.rec);
	free(x.item);
	return ret;
}
