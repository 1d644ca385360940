/* holder/heads.c — the key holder's journal of chain heads (see heads.h,
 * docs/keyholder.md section 5).
 *
 * The file is "HLHEADS1" and then records, appended:
 *
 *   u32 body_len | body | 16-byte BLAKE2b of (body_len, body)
 *   body: u8 kind (1 item, 2 head only) | peer[32] | u64 seq | hash[32]
 *         | u64 time_ms | kind 1: u32 item_len, item, u32 note_len, note
 *
 * Replaying the records in order gives each chain's head: the record of
 * highest seq.  A request's records are written with one write() and one
 * fdatasync(); a record that does not check (a torn write: the machine
 * stopped before that fdatasync returned, so nobody got its signature)
 * ends the journal, and opening cuts it off there.
 *
 * Compaction, when the file passes HL_HEADS_COMPACT_BYTES: a new file (via
 * a temporary, fsync'd and renamed over, util/fsutil.h) with a head-only
 * record per chain and the items signed in the last HL_HEADS_KEEP_MS.
 *
 * In memory (PATH NULL) the same bytes live in a buffer, so that tests and
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
/* What a journal may hold when it is read: past the compaction size by at
 * most one request's records. */
#define IMAGE_MAX ((size_t)HL_HEADS_COMPACT_BYTES + 2 * HL_HOLD_FRAME_MAX)

struct chain {
	uint8_t peer[32];
	uint64_t seq;
	uint8_t hash[32];
};

struct hl_heads {
	char *path;                   /* NULL: in memory */
	int fd;
	uint8_t *mem;                 /* in memory: the journal's bytes */
	size_t size;                  /* the journal's length */
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

/* ---- the file ---- */

static int write_all(int fd, const uint8_t *p, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* The journal's bytes: in memory, or read from the file (*FREE_ME). */
static int image(hl_heads *h, const uint8_t **buf, size_t *len, uint8_t **free_me)
{
	*free_me = NULL;
	if (!h->path) {
		*buf = h->mem;
		*len = h->size;
		return 0;
	}
	char *b;
	int ret = hl_read_file(h->path, IMAGE_MAX, &b, len);
	if (ret < 0)
		return ret;
	*buf = (const uint8_t *)b;
	*free_me = (uint8_t *)b;
	return 0;
}

static int open_file(hl_heads *h, char *err, size_t errlen)
{
	const uint8_t *buf;
	uint8_t *free_me = NULL;
	size_t len, good;
	int ret;
	h->fd = open(h->path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (h->fd < 0) {
		ret = -errno;
		snprintf(err, errlen, "cannot open %s: %s", h->path, strerror(errno));
		return ret;
	}
	struct stat st;
	if (fstat(h->fd, &st) < 0 || st.st_size == 0) {
		if ((ret = write_all(h->fd, (const uint8_t *)MAGIC, MAGIC_LEN)) < 0 ||
		    (fsync(h->fd) < 0 && (ret = -errno)) || (ret = hl_fsync_parent(h->path)) < 0) {
			snprintf(err, errlen, "cannot write %s: %s", h->path, hl_strerror(ret));
			return ret;
		}
		h->size = MAGIC_LEN;
		return 0;
	}
	if ((ret = image(h, &buf, &len, &free_me)) < 0 ||
	    (ret = hl_heads_replay(h, buf, len, &good)) < 0) {
		snprintf(err, errlen, "%s is not a key holder's journal (%s): it is left as it is",
			 h->path, hl_strerror(ret));
		free(free_me);
		return ret;
	}
	free(free_me);
	if (good < len && (ftruncate(h->fd, (off_t)good) < 0 || fsync(h->fd) < 0)) {
		ret = -errno;
		snprintf(err, errlen, "cannot cut the torn end off %s: %s", h->path, strerror(errno));
		return ret;
	}
	h->size = good;
	return lseek(h->fd, (off_t)good, SEEK_SET) < 0 ? -errno : 0;
}

int hl_heads_open(const char *path, hl_heads **out, char *err, size_t errlen)
{
	hl_heads *h = xcalloc(1, sizeof(*h));
	int ret = 0;
	h->fd = -1;
	*out = NULL;
	if (path) {
		h->path = xstrdup(path);
		ret = open_file(h, err, errlen);
	} else {
		h->mem = xmalloc(MAGIC_LEN);
		memcpy(h->mem, MAGIC, MAGIC_LEN);
		h->size = MAGIC_LEN;
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
	if (h->mem)
		sodium_memzero(h->mem, h->size); /* notes may hold a message's text */
	free(h->mem);
	free(h->c);
	free(h);
}

/* Appends LEN bytes durably; on failure the journal is cut back to where
 * it was, so that a half-written request leaves nothing. */
static int put(hl_heads *h, const uint8_t *buf, size_t len)
{
	if (!h->path) {
		h->mem = xrealloc(h->mem, h->size + len);
		memcpy(h->mem + h->size, buf, len);
		h->size += len;
		return 0;
	}
	int ret = write_all(h->fd, buf, len);
	if (ret == 0 && fdatasync(h->fd) < 0)
		ret = -errno;
	if (ret < 0) {
		if (ftruncate(h->fd, (off_t)h->size) == 0)
			(void)lseek(h->fd, (off_t)h->size, SEEK_SET);
		return ret;
	}
	h->size += len;
	return 0;
}

/* ---- compaction ---- */

static bool keep(const hl_heads *h, const struct hl_heads_rec *r, uint64_t now_ms)
{
	const struct chain *c = find(h, r->peer);
	return r->item && c && r->time_ms + HL_HEADS_KEEP_MS >= now_ms &&
	       r->seq + HL_HEADS_KEEP_ITEMS > c->seq;
}

/* The compacted journal's bytes from the old ones. */
static void compacted(const hl_heads *h, const uint8_t *buf, size_t len, uint64_t now_ms,
		      struct hl_wbuf *w)
{
	struct hl_rbuf r;
	struct hl_heads_rec rec;
	hl_w_bytes(w, MAGIC, MAGIC_LEN);
	for (size_t i = 0; i < h->nc; i++) {
		struct hl_heads_rec head = { .seq = h->c[i].seq, .time_ms = now_ms };
		memcpy(head.peer, h->c[i].peer, 32);
		memcpy(head.hash, h->c[i].hash, 32);
		rec_put(w, &head);
	}
	hl_rbuf_init(&r, buf, len);
	hl_r_take(&r, MAGIC_LEN);
	while (rec_take(&r, &rec) > 0)
		if (keep(h, &rec, now_ms))
			rec_put(w, &rec);
}

static int compact(hl_heads *h, uint64_t now_ms)
{
	const uint8_t *buf;
	uint8_t *free_me = NULL;
	size_t len;
	struct hl_wbuf w;
	int ret = image(h, &buf, &len, &free_me);
	if (ret < 0)
		return ret;
	hl_wbuf_init(&w, xmalloc(len + h->nc * 128 + MAGIC_LEN), len + h->nc * 128 + MAGIC_LEN);
	compacted(h, buf, len, now_ms, &w);
	if (!h->path) {
		free(h->mem);
		h->mem = w.p;
		h->size = w.len;
		return 0;
	}
	free(free_me);
	if (!w.err && (ret = hl_write_file_atomic(h->path, w.p, w.len, 0600)) == 0) {
		int fd = open(h->path, O_RDWR | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0 || lseek(fd, 0, SEEK_END) < 0) {
			ret = -errno;
			if (fd >= 0)
				close(fd);
		} else {
			close(h->fd);
			h->fd = fd;
			h->size = w.len;
		}
	}
	sodium_memzero(w.p, w.len);
	free(w.p);
	return w.err ? HL_ETOOBIG : ret;
}

int hl_heads_append(hl_heads *h, const struct hl_heads_rec *r, size_t n, uint64_t now_ms)
{
	size_t len = 0;
	struct hl_wbuf w;
	int ret;
	/* A failed compaction leaves the old journal, whole: carry on. */
	if (h->size > HL_HEADS_COMPACT_BYTES)
		(void)compact(h, now_ms);
	for (size_t i = 0; i < n; i++)
		len += rec_len(&r[i]);
	hl_wbuf_init(&w, xmalloc(len), len);
	for (size_t i = 0; i < n; i++)
		rec_put(&w, &r[i]);
	ret = w.err ? HL_ETOOBIG : put(h, w.p, w.len);
	sodium_memzero(w.p, len);
	free(w.p);
	if (ret < 0)
		return ret;
	for (size_t i = 0; i < n; i++)
		note_head(h, r[i].peer, r[i].seq, r[i].hash);
	return 0;
}

/* ---- the items kept ---- */

int hl_heads_each(hl_heads *h, const uint8_t peer[static 32], uint64_t after,
		  int (*fn)(void *arg, const struct hl_heads_rec *r), void *arg)
{
	const struct chain *c = find(h, peer);
	const uint8_t *buf;
	uint8_t *free_me = NULL;
	size_t len;
	struct hl_rbuf r;
	struct hl_heads_rec rec;
	uint64_t next = after + 1;
	int ret;
	if (!c || c->seq <= after)
		return 0; /* the common case: nothing to read */
	if ((ret = image(h, &buf, &len, &free_me)) < 0)
		return ret;
	/* Records of one chain are in order of seq, but a compaction's head
	 * record comes first: take each item in turn from NEXT on. */
	hl_rbuf_init(&r, buf, len);
	hl_r_take(&r, MAGIC_LEN);
	while (ret == 0 && rec_take(&r, &rec) > 0) {
		if (!rec.item || rec.seq != next || memcmp(rec.peer, peer, 32) != 0)
			continue;
		ret = fn(arg, &rec);
		next++;
	}
	if (free_me) {
		sodium_memzero(free_me, len);
		free(free_me);
	}
	return ret;
}
