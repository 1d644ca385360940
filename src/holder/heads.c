/* holder/heads.c — the key holder's journal of chain heads (see heads.h,
 * docs/keyholder.md section 5).
 *
 * A journal segment is "HLHEADS1" and then records, appended:
 *
 *   u32 body_len | body | 16-byte BLAKE2b of (body_len, body)
 *   body: u8 kind (1 item, 2 head only) | peer[32] | u64 seq | hash[32]
 *         | u64 time_ms | kind 1: u32 item_len, item, u32 note_len, note
 *
 * and then zeros: the file is written ZEROS_AHEAD past its records, so
 * that a request's records overwrite bytes that are already there and the
 * fdatasync that makes them durable writes data alone — no new length, no
 * new block to record (an append made every fdatasync write the inode too,
 * and the key holder's sits on the FLASH path, docs/keyholder.md 5).  The
 * zeros are renewed one ZEROS_AHEAD at a time, by the write that would pass
 * them.
 *
 * Replaying the records in order gives each chain's head: the record of
 * highest seq.  A request's records are written with one pwrite(), handed
 * to the disk by the next hl_heads_push (sync_file_range: no new length or
 * block to write, thanks to the zeros, so the asker's own fdatasync that
 * follows makes them durable) or made durable by the next hl_heads_sync
 * (one fdatasync); a record that does not
 * check ends the journal: zeros (the clean end), or a torn write (the
 * machine stopped before that fdatasync returned, so no signature of it
 * left the station).  Opening cuts a segment back to its last good record
 * when anything but zeros follows it (a torn write, or what a failed write
 * left), so that past the records there is nothing but zeros.
 *
 * Two segments: the current one (HL_HEADS_FILE) and the one before it
 * (HL_HEADS_FILE.old).  When the current one passes HL_HEADS_SEGMENT_BYTES
 * it becomes the old one (rename, replacing the one before) and a new one
 * starts with a head-only record per chain (fsync'd, the directory too).
 * Nothing is rewritten: a rotation costs a rename and a few records, and
 * the items of the last segment and a half stay for taking back
 * (chain/adopt.h), far more than a transaction signs.  A rotation that a
 * crash cut between its rename and its new segment is finished at open.
 *
 * In memory (PATH NULL) the same bytes live in buffers, so that tests and
 * the fuzz target run exactly this code. */
#include "holder/heads.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "holder/proto.h"
#include "util/bytes.h"
#include "util/err.h"
#include "util/fsutil.h"
#include "util/mem.h"

#define MAGIC "HLHEADS1"
#define MAGIC_LEN 8
#define CHECK_LEN 16
#define KIND_ITEM 1
#define KIND_HEAD 2
#define FIXED_LEN (1 + 32 + 8 + 32 + 8)
#define BODY_MAX (FIXED_LEN + 8 + HL_ITEM_MAX + HL_HOLD_NOTE_MAX)
/* What a segment may hold when it is read: past its size by at most one
 * request's records. */
#define ZEROS_AHEAD ((size_t)1 << 20)
#define IMAGE_MAX ((size_t)HL_HEADS_SEGMENT_BYTES + 2 * HL_HOLD_FRAME_MAX + ZEROS_AHEAD)

struct chain {
	uint8_t peer[32];
	uint64_t seq;
	uint8_t hash[32];
};

/* In memory, a segment's bytes. */
struct seg {
	uint8_t *p;
	size_t len;
};

struct hl_heads {
	char *path, *old_path;        /* NULL: in memory */
	int fd;
	struct seg mem[2];            /* in memory: [0] the old segment, [1] the current */
	size_t size;                  /* the current segment's records: where the next goes */
	size_t alloc;                 /* its file's length: size, then zeros to here */
	bool cut;                     /* a failed write may have left bytes past
	                               * size, and cutting them off failed too */
	uint64_t appended, synced;    /* appends made; of them, known durable (the
	                               * rest came after the last fdatasync) */
	uint64_t pushed;              /* of them, on the disk (written out and waited
	                               * for, hl_heads_push), maybe in its cache */
	bool grown;                   /* the file's length or blocks changed since
	                               * the last fdatasync */
	struct chain *c;
	size_t nc, capc;
};

static struct chain *find(const hl_heads *h, const uint8_t peer[static 32])
{
	for (size_t i = 0; i < h->nc; i++)
		if (memcmp(h->c[i].peer, peer, 32) == 0)
			return &h->c[i];
	return NULL;
}

static void note_head(hl_heads *h, const uint8_t peer[static 32], uint64_t seq,
		      const uint8_t hash[static 32])
{
	struct chain *c = find(h, peer);
	if (!c) {
		if (h->nc == h->capc) {
			h->capc = h->capc ? 2 * h->capc : 16;
			h->c = xrealloc(h->c, h->capc * sizeof(*h->c));
		}
		c = &h->c[h->nc++];
		memcpy(c->peer, peer, 32);
		c->seq = 0;
	}
	if (seq >= c->seq) {
		c->seq = seq;
		memcpy(c->hash, hash, 32);
	}
}

bool hl_heads_get(const hl_heads *h, const uint8_t peer[static 32], uint64_t *seq,
		  uint8_t hash[static 32])
{
	const struct chain *c = find(h, peer);
	if (!c)
		return false;
	*seq = c->seq;
	memcpy(hash, c->hash, 32);
	return true;
}

/* ---- records ---- */

static size_t rec_len(const struct hl_heads_rec *r)
{
	return 4 + FIXED_LEN + (r->item ? 8 + r->item_len + r->note_len : 0) + CHECK_LEN;
}

static void rec_put(struct hl_wbuf *w, const struct hl_heads_rec *r)
{
	size_t start = w->len;
	hl_w_u32(w, (uint32_t)(rec_len(r) - 4 - CHECK_LEN));
	hl_w_u8(w, r->item ? KIND_ITEM : KIND_HEAD);
	hl_w_bytes(w, r->peer, 32);
	hl_w_u64(w, r->seq);
	hl_w_bytes(w, r->hash, 32);
	hl_w_u64(w, r->time_ms);
	if (r->item) {
		hl_w_u32(w, (uint32_t)r->item_len);
		hl_w_bytes(w, r->item, r->item_len);
		hl_w_u32(w, (uint32_t)r->note_len);
		hl_w_bytes(w, r->note, r->note_len);
	}
	uint8_t *check = hl_w_reserve(w, CHECK_LEN);
	if (check)
		crypto_generichash(check, CHECK_LEN, w->p + start, w->len - start - CHECK_LEN,
				   NULL, 0);
}

/* The record at R's position: 1 and *OUT, 0 at a clean end, negative for
 * a record that does not check (a torn tail). */
static int rec_take(struct hl_rbuf *r, struct hl_heads_rec *out)
{
	if (hl_r_left(r) == 0)
		return 0;
	const uint8_t *start = r->p + r->off;
	uint32_t blen = hl_r_u32(r);
	if (r->err || blen < FIXED_LEN || blen > BODY_MAX)
		return HL_EINVAL;
	struct hl_rbuf b;
	const uint8_t *body = hl_r_take(r, blen);
	const uint8_t *check = hl_r_take(r, CHECK_LEN);
	uint8_t want[CHECK_LEN];
	if (!body || !check)
		return HL_ETRUNC;
	hl_rbuf_init(&b, body, blen);
	crypto_generichash(want, CHECK_LEN, start, 4 + blen, NULL, 0);
	if (sodium_memcmp(want, check, CHECK_LEN) != 0)
		return HL_EAUTH;
	memset(out, 0, sizeof(*out));
	uint8_t kind = hl_r_u8(&b);
	hl_r_bytes(&b, out->peer, 32);
	out->seq = hl_r_u64(&b);
	hl_r_bytes(&b, out->hash, 32);
	out->time_ms = hl_r_u64(&b);
	if (kind == KIND_ITEM) {
		out->item_len = hl_r_u32(&b);
		out->item = out->item_len <= HL_ITEM_MAX ? hl_r_take(&b, out->item_len) : NULL;
		out->note_len = hl_r_u32(&b);
		out->note = out->note_len <= HL_HOLD_NOTE_MAX ? hl_r_take(&b, out->note_len) : NULL;
		if (!out->item || out->item_len == 0 || (!out->note && out->note_len))
			return HL_EINVAL;
	} else if (kind != KIND_HEAD) {
		return HL_EINVAL;
	}
	if (b.err || hl_r_left(&b) != 0 || out->seq == 0)
		return HL_EINVAL;
	return 1;
}

int hl_heads_replay(hl_heads *h, const uint8_t *buf, size_t len, size_t *good)
{
	struct hl_rbuf r;
	struct hl_heads_rec rec;
	*good = 0;
	if (len < MAGIC_LEN || memcmp(buf, MAGIC, MAGIC_LEN) != 0)
		return HL_EINVAL;
	hl_rbuf_init(&r, buf, len);
	hl_r_take(&r, MAGIC_LEN);
	*good = MAGIC_LEN;
	for (;;) {
		int ret = rec_take(&r, &rec);
		if (ret <= 0)
			return 0; /* the end, or a torn tail cut off at *GOOD */
		note_head(h, rec.peer, rec.seq, rec.hash);
		*good = r.off;
	}
}

/* ---- segments ---- */

static int pwrite_all(int fd, const uint8_t *p, size_t len, size_t off)
{
	while (len > 0) {
		ssize_t n = pwrite(fd, p, len, (off_t)off);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += n;
		off += (size_t)n;
		len -= (size_t)n;
	}
	return 0;
}

/* Segment I's bytes (0 the old one, 1 the current): in memory, or read
 * from its file (*FREE_ME); an old segment that is not there is empty. */
static int image(hl_heads *h, int i, const uint8_t **buf, size_t *len, uint8_t **free_me)
{
	*free_me = NULL;
	if (!h->path) {
		*buf = h->mem[i].p;
		*len = h->mem[i].len;
		return 0;
	}
	char *b;
	int ret = hl_read_file(i ? h->path : h->old_path, IMAGE_MAX, &b, len);
	if (ret == -ENOENT && i == 0) {
		*buf = NULL;
		*len = 0;
		return 0;
	}
	if (ret < 0)
		return ret;
	*buf = (const uint8_t *)b;
	*free_me = (uint8_t *)b;
	return 0;
}

static void image_free(uint8_t *p, size_t len)
{
	if (p) {
		sodium_memzero(p, len); /* notes hold a message's text */
		free(p);
	}
}

/* A new segment's first bytes: the magic, a head record per chain. */
static uint8_t *heads_only(const hl_heads *h, uint64_t now_ms, size_t *len)
{
	size_t cap = MAGIC_LEN + h->nc * (4 + FIXED_LEN + CHECK_LEN);
	struct hl_wbuf w;
	hl_wbuf_init(&w, xmalloc(cap), cap);
	hl_w_bytes(&w, MAGIC, MAGIC_LEN);
	for (size_t i = 0; i < h->nc; i++) {
		struct hl_heads_rec r = { .seq = h->c[i].seq, .time_ms = now_ms };
		memcpy(r.peer, h->c[i].peer, 32);
		memcpy(r.hash, h->c[i].hash, 32);
		rec_put(&w, &r);
	}
	*len = w.len;
	return w.p;
}

/* The current segment starts (anew): the heads and zeros ahead of them,
 * durably, then it is open for writing. */
static int start_segment(hl_heads *h, uint64_t now_ms)
{
	size_t len;
	uint8_t *buf = heads_only(h, now_ms, &len);
	int ret = 0;
	if (!h->path) {
		free(h->mem[1].p);
		h->mem[1] = (struct seg){ buf, len };
		h->size = len;
		return 0;
	}
	uint8_t *file = xcalloc(1, len + ZEROS_AHEAD);
	memcpy(file, buf, len);
	free(buf);
	ret = hl_write_file_atomic(h->path, file, len + ZEROS_AHEAD, 0600);
	free(file);
	if (ret < 0)
		return ret;
	int fd = open(h->path, O_WRONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (h->fd >= 0)
		close(h->fd);
	h->fd = fd;
	h->size = len;
	h->alloc = len + ZEROS_AHEAD;
	h->cut = false;
	return 0;
}

/* The current segment becomes the old one (durable first); a new one
 * starts. */
static int rotate(hl_heads *h, uint64_t now_ms)
{
	int ret = hl_heads_sync(h);
	if (ret < 0)
		return ret;
	if (!h->path) {
		image_free(h->mem[0].p, h->mem[0].len);
		h->mem[0] = h->mem[1];
		h->mem[1] = (struct seg){ NULL, 0 };
	} else if (rename(h->path, h->old_path) < 0) {
		return -errno;
	}
	return start_segment(h, now_ms);
}

static bool all_zero(const uint8_t *p, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (p[i])
			return false;
	return true;
}

/* Replays segment I; past the current one's records, anything but zeros
 * (a torn tail) is cut off. */
static int replay_file(hl_heads *h, int i, char *err, size_t errlen)
{
	const uint8_t *buf;
	uint8_t *free_me;
	size_t len = 0, good = 0;
	bool zeros = true;
	int ret = image(h, i, &buf, &len, &free_me);
	if (ret == 0 && buf) {
		ret = hl_heads_replay(h, buf, len, &good);
		zeros = ret == 0 && all_zero(buf + good, len - good);
	}
	image_free(free_me, len);
	if (ret < 0) {
		snprintf(err, errlen, "%s is not a key holder's journal (%s): it is left as it is",
			 i ? h->path : h->old_path, hl_strerror(ret));
		return ret;
	}
	if (i != 1)
		return 0;
	if (!zeros && truncate(h->path, (off_t)good) < 0) {
		ret = -errno;
		snprintf(err, errlen, "cannot cut the torn end off %s: %s", h->path, strerror(errno));
	}
	h->size = good;
	h->alloc = zeros ? len : good;
	return ret;
}

static int open_files(hl_heads *h, char *err, size_t errlen)
{
	struct stat st;
	int ret;
	if ((ret = replay_file(h, 0, err, errlen)) < 0)
		return ret;
	if (stat(h->path, &st) < 0 || st.st_size == 0) {
		/* new, or a rotation cut after its rename: a segment of heads */
		if ((ret = start_segment(h, 0)) < 0)
			snprintf(err, errlen, "cannot write %s: %s", h->path, hl_strerror(ret));
		return ret;
	}
	if ((ret = replay_file(h, 1, err, errlen)) < 0)
		return ret;
	h->fd = open(h->path, O_WRONLY | O_NOFOLLOW | O_CLOEXEC);
	if (h->fd < 0 || fsync(h->fd) < 0) {
		ret = -errno;
		snprintf(err, errlen, "cannot open %s: %s", h->path, strerror(errno));
	}
	return ret;
}

int hl_heads_open(const char *path, hl_heads **out, char *err, size_t errlen)
{
	hl_heads *h = xcalloc(1, sizeof(*h));
	int ret = 0;
	h->fd = -1;
	*out = NULL;
	if (path) {
		h->path = xstrdup(path);
		h->old_path = xasprintf("%s.old", path);
		ret = open_files(h, err, errlen);
	} else {
		ret = start_segment(h, 0);
	}
	if (ret < 0) {
		hl_heads_free(h);
		return ret;
	}
	*out = h;
	return 0;
}

void hl_heads_free(hl_heads *h)
{
	if (!h)
		return;
	if (h->fd >= 0)
		close(h->fd);
	free(h->path);
	free(h->old_path);
	for (int i = 0; i < 2; i++)
		image_free(h->mem[i].p, h->mem[i].len);
	free(h->c);
	free(h);
}

/* Appends LEN bytes (hl_heads_sync makes them durable): over the zeros
 * ahead, or past them with new zeros after.  On failure the segment is cut
 * back to its records, so that a half-written request leaves nothing (the
 * next write tries again if that failed too). */
static int put(hl_heads *h, const uint8_t *buf, size_t len)
{
	if (!h->path) {
		struct seg *s = &h->mem[1];
		s->p = xrealloc(s->p, s->len + len);
		memcpy(s->p + s->len, buf, len);
		s->len += len;
		h->size = s->len;
		h->appended++;
		return 0;
	}
	int ret = 0;
	if (h->cut) {
		if (ftruncate(h->fd, (off_t)h->size) < 0)
			return -errno;
		h->grown = true;
		h->cut = false;
		h->alloc = h->size;
	}
	if ((ret = pwrite_all(h->fd, buf, len, h->size)) == 0 && h->size + len > h->alloc) {
		static const uint8_t zeros[64 << 10];
		size_t end = h->size + len;
		h->grown = true;
		for (size_t off = 0; ret == 0 && off < ZEROS_AHEAD; off += sizeof(zeros))
			ret = pwrite_all(h->fd, zeros, sizeof(zeros), end + off);
		if (ret == 0)
			h->alloc = end + ZEROS_AHEAD;
	}
	if (ret < 0) {
		h->grown = true;
		h->cut = ftruncate(h->fd, (off_t)h->size) < 0;
		if (!h->cut)
			h->alloc = h->size;
		return ret;
	}
	h->size += len;
	h->appended++;
	return 0;
}

int hl_heads_sync(hl_heads *h)
{
	if (h->synced != h->appended && h->path && fdatasync(h->fd) < 0)
		return -errno;
	h->synced = h->pushed = h->appended;
	h->grown = false;
	return 0;
}

int hl_heads_push(hl_heads *h)
{
	if (h->pushed == h->appended)
		return 0;
	/* a new length or new blocks: only an fdatasync of this file writes
	 * them */
	if (h->grown || !h->path)
		return hl_heads_sync(h);
	if (sync_file_range(h->fd, 0, 0,
			    SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE |
				    SYNC_FILE_RANGE_WAIT_AFTER) < 0)
		return -errno;
	h->pushed = h->appended;
	return 0;
}

void hl_heads_marks(const hl_heads *h, uint64_t *written, uint64_t *pushed, uint64_t *durable)
{
	*written = h->appended;
	*pushed = h->pushed;
	*durable = h->synced;
}

int hl_heads_append(hl_heads *h, const struct hl_heads_rec *r, size_t n, uint64_t now_ms)
{
	size_t len = 0;
	struct hl_wbuf w;
	int ret;
	/* A failed rotation leaves the current segment as it was: carry on. */
	if (h->size > HL_HEADS_SEGMENT_BYTES)
		(void)rotate(h, now_ms);
	for (size_t i = 0; i < n; i++)
		len += rec_len(&r[i]);
	hl_wbuf_init(&w, xmalloc(len), len);
	for (size_t i = 0; i < n; i++)
		rec_put(&w, &r[i]);
	ret = w.err ? HL_ETOOBIG : put(h, w.p, w.len);
	image_free(w.p, len);
	if (ret < 0)
		return ret;
	for (size_t i = 0; i < n; i++)
		note_head(h, r[i].peer, r[i].seq, r[i].hash);
	return 0;
}

/* ---- the items kept ---- */

struct walk {
	const uint8_t *peer;
	uint64_t next;
	int (*fn)(void *arg, const struct hl_heads_rec *r);
	void *arg;
};

/* Each item of W's chain from W->next on, in segment I. */
static int walk_segment(hl_heads *h, int i, struct walk *w)
{
	const uint8_t *buf;
	uint8_t *free_me;
	size_t len;
	struct hl_rbuf r;
	struct hl_heads_rec rec;
	int ret = image(h, i, &buf, &len, &free_me);
	if (ret < 0 || !buf || len < MAGIC_LEN)
		return ret;
	hl_rbuf_init(&r, buf, len);
	hl_r_take(&r, MAGIC_LEN);
	while (ret == 0 && rec_take(&r, &rec) > 0) {
		if (!rec.item || rec.seq != w->next || memcmp(rec.peer, w->peer, 32) != 0)
			continue;
		ret = w->fn(w->arg, &rec);
		w->next++;
	}
	image_free(free_me, len);
	return ret;
}

int hl_heads_each(hl_heads *h, const uint8_t peer[static 32], uint64_t after,
		  int (*fn)(void *arg, const struct hl_heads_rec *r), void *arg)
{
	const struct chain *c = find(h, peer);
	struct walk w = { peer, after + 1, fn, arg };
	int ret;
	if (!c || c->seq <= after)
		return 0; /* the common case: nothing to read */
	/* A chain's items are in order of seq, the old segment's first. */
	if ((ret = walk_segment(h, 0, &w)) != 0)
		return ret;
	return walk_segment(h, 1, &w);
}
