/* record/reader.c — a record file read in bounded memory: sources, buffered
 * readers, the sparse index and the entry cache, and the cursors
 * (reader.h, format.h). */
#include "record/reader.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/err.h"
#include "util/mem.h"

uint32_t hl_record_ckpt_max = HL_RECORD_CKPT_MAX;
uint32_t hl_record_cache_max = HL_RECORD_CACHE_SLOTS;

/* ---- sources and readers ---- */

static int src_read(const struct hl_rsrc *s, uint64_t off, uint8_t *p, size_t n)
{
	if (off > s->len || n > s->len - off)
		return HL_ETRUNC;
	if (!s->mem) {
		size_t done = 0;
		while (done < n) {
			ssize_t r = pread(s->fd, p + done, n - done, (off_t)(off + done));
			if (r < 0 && errno == EINTR)
				continue;
			if (r < 0)
				return -errno;
			if (r == 0)
				return HL_ETRUNC;   /* shorter than when it was parsed */
			done += (size_t)r;
		}
		return 0;
	}
	memcpy(p, s->mem + off, n);
	return 0;
}

void hl_rrd_init(struct hl_rrd *r, const struct hl_rsrc *src, uint64_t off)
{
	memset(r, 0, sizeof(*r));
	r->src = src;
	r->off = off;
	if (src->mem) {
		r->win = src->mem;
		r->win_len = (size_t)src->len;
	} else {
		r->buf = xmalloc(HL_RRD_BUF);
	}
}

void hl_rrd_free(struct hl_rrd *r)
{
	free(r->buf);
	r->buf = NULL;
}

uint64_t hl_rrd_left(const struct hl_rrd *r)
{
	return r->err || r->off > r->src->len ? 0 : r->src->len - r->off;
}

/* Makes the window hold [off, off + n) (n <= HL_RRD_MAX_TAKE). */
static int refill(struct hl_rrd *r, size_t n)
{
	uint64_t left = r->src->len - r->off;
	size_t want = left < HL_RRD_BUF ? (size_t)left : HL_RRD_BUF;
	(void)n;
	int ret = src_read(r->src, r->off, r->buf, want);
	if (ret < 0)
		return ret;
	r->win = r->buf;
	r->win_off = r->off;
	r->win_len = want;
	return 0;
}

const uint8_t *hl_rrd_take(struct hl_rrd *r, size_t n)
{
	if (r->err)
		return NULL;
	if (n > hl_rrd_left(r)) {
		r->err = HL_ETRUNC;
		return NULL;
	}
	if (!r->src->mem && (r->win == NULL || r->off < r->win_off ||
			     r->off + n > r->win_off + r->win_len)) {
		int ret = refill(r, n);
		if (ret < 0) {
			r->err = ret;
			return NULL;
		}
	}
	const uint8_t *p = r->win + (r->off - r->win_off);
	if (r->hs && n)
		crypto_generichash_update(r->hs, p, n);
	r->off += n;
	return p;
}

void hl_rrd_bytes(struct hl_rrd *r, void *dst, size_t n)
{
	const uint8_t *p = hl_rrd_take(r, n);
	if (p)
		memcpy(dst, p, n);
	else
		memset(dst, 0, n);
}

uint8_t hl_rrd_u8(struct hl_rrd *r)
{
	const uint8_t *p = hl_rrd_take(r, 1);
	return p ? p[0] : 0;
}

uint16_t hl_rrd_u16(struct hl_rrd *r)
{
	const uint8_t *p = hl_rrd_take(r, 2);
	return p ? (uint16_t)(p[0] << 8 | p[1]) : 0;
}

uint32_t hl_rrd_u32(struct hl_rrd *r)
{
	const uint8_t *p = hl_rrd_take(r, 4);
	return p ? (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3] : 0;
}

uint64_t hl_rrd_u64(struct hl_rrd *r)
{
	uint64_t hi = hl_rrd_u32(r);
	return hi << 32 | hl_rrd_u32(r);
}

void hl_rrd_skip(struct hl_rrd *r, uint64_t n)
{
	if (r->err)
		return;
	if (n > hl_rrd_left(r)) {
		r->err = HL_ETRUNC;
		return;
	}
	if (!r->hs) {
		r->off += n;
		return;
	}
	/* hashing: every byte passes through */
	while (n && !r->err) {
		size_t k = n < HL_RRD_MAX_TAKE ? (size_t)n : HL_RRD_MAX_TAKE;
		(void)hl_rrd_take(r, k);
		n -= k;
	}
}

void hl_rrd_seek(struct hl_rrd *r, uint64_t off)
{
	r->off = off;
	r->err = off > r->src->len ? HL_ETRUNC : 0;
}

/* ---- the index and the cache ---- */

struct hl_record_priv *hl_record_priv_new(int fd, const uint8_t *mem, uint64_t len)
{
	struct hl_record_priv *p = xcalloc(1, sizeof(*p));
	p->src.fd = fd;
	p->src.mem = mem;
	p->src.len = len;
	randombytes_buf(p->cache_key, sizeof(p->cache_key));
	for (unsigned c = 0; c < 2; c++) {
		p->idx[c].step_e = 8;
		p->idx[c].step_b = 2048;
		hl_rrd_init(&p->look[c], &p->src, 0);
	}
	hl_rrd_init(&p->scratch, &p->src, 0);
	p->item = xmalloc(HL_ITEM_MAX);
	return p;
}

void hl_record_priv_free(struct hl_record_priv *p)
{
	if (!p)
		return;
	for (unsigned c = 0; c < 2; c++) {
		free(p->idx[c].ck);
		hl_rrd_free(&p->look[c]);
	}
	hl_rrd_free(&p->scratch);
	free(p->cache);
	free(p->item);
	if (p->src.fd >= 0)
		close(p->src.fd);
	free(p);
}

void hl_record_index_add(struct hl_record_priv *p, unsigned c, uint64_t seq, uint64_t off)
{
	struct hl_record_index *ix = &p->idx[c];
	for (;;) {
		if (ix->n && seq - ix->ck[ix->n - 1].seq < ix->step_e &&
		    off - ix->ck[ix->n - 1].off < ix->step_b)
			return;
		if (ix->n < hl_record_ckpt_max)
			break;
		/* Full: keep every other checkpoint, twice as far apart. */
		for (size_t i = 0; i < ix->n / 2; i++)
			ix->ck[i] = ix->ck[2 * i];
		ix->n /= 2;
		ix->step_e *= 2;
		ix->step_b *= 2;
	}
	if (ix->n == ix->cap) {
		ix->cap = ix->cap ? ix->cap * 2 : 256;
		ix->ck = xrealloc(ix->ck, ix->cap * sizeof(*ix->ck));
	}
	ix->ck[ix->n].seq = seq;
	ix->ck[ix->n].off = off;
	ix->n++;
}

/* The cache, made on first use: as many slots as the record has entries
 * (a power of two), at most HL_RECORD_CACHE_SLOTS. */
static void cache_make(struct hl_record_priv *p, uint64_t entries)
{
	p->nslots = 1;
	while (p->nslots < entries && p->nslots < hl_record_cache_max && p->nslots < (1u << 30))
		p->nslots *= 2;
	p->cache = xcalloc(p->nslots, sizeof(*p->cache));
}

static struct hl_record_slot *slot_of(struct hl_record_priv *p, uint64_t key)
{
	uint8_t k[8], h[crypto_shorthash_BYTES];
	for (int i = 0; i < 8; i++)
		k[i] = (uint8_t)(key >> (8 * i));
	crypto_shorthash(h, k, sizeof(k), p->cache_key);
	uint32_t v = (uint32_t)h[0] | (uint32_t)h[1] << 8 | (uint32_t)h[2] << 16;
	return &p->cache[v & (p->nslots - 1)];
}

static void cache_put(struct hl_record_priv *p, unsigned c, uint64_t seq,
		      const struct hl_record_entry *e, bool hashed)
{
	uint64_t key = (uint64_t)c << 62 | seq;
	if (!p->cache)
		cache_make(p, p->entries);
	struct hl_record_slot *s = slot_of(p, key);
	s->key = key;
	s->e = *e;
	s->hashed = hashed;
}

/* One entry at R (positioned at its start): its header, and with ITEM its
 * item's bytes in *ITEM.  0 or the reader's error. */
static int read_entry(struct hl_rrd *r, struct hl_record_entry *e, const uint8_t **item)
{
	memset(e, 0, sizeof(*e));
	e->off = r->off;
	e->type = hl_rrd_u8(r);
	*item = NULL;
	switch (e->type) {
	case HL_RECORD_ITEM:
		e->len = hl_rrd_u16(r);
		e->item_off = r->off;
		*item = hl_rrd_take(r, e->len);
		break;
	case HL_RECORD_REFUSED:
		hl_rrd_bytes(r, e->hash, HL_HASH_LEN);
		e->code = hl_rrd_u8(r);
		break;
	default:
		break;
	}
	return r->err;
}

/* Skips the entry at R without reading an item's bytes. */
static int skip_entry(struct hl_rrd *r)
{
	uint8_t type = hl_rrd_u8(r);
	if (type == HL_RECORD_ITEM)
		hl_rrd_skip(r, hl_rrd_u16(r));
	else if (type == HL_RECORD_REFUSED)
		hl_rrd_skip(r, HL_HASH_LEN + 1);
	return r->err;
}

int hl_record_locate(const struct hl_record *rec, unsigned c, uint64_t seq, bool want_hash,
		     struct hl_record_entry *e)
{
	struct hl_record_priv *p = rec->priv;
	if (c > 1 || seq == 0 || seq > rec->n[c])
		return HL_EINVAL;
	uint64_t key = (uint64_t)c << 62 | seq;
	if (!p->cache)
		cache_make(p, rec->n[0] + rec->n[1]);
	p->entries = rec->n[0] + rec->n[1];
	struct hl_record_slot *s = slot_of(p, key);
	if (s->key == key && (s->hashed || !want_hash || s->e.type != HL_RECORD_ITEM)) {
		*e = s->e;
		return 0;
	}
	/* From the checkpoint at or before SEQ, or from where the last
	 * look-up in this chain stopped when that is between the two. */
	struct hl_record_index *ix = &p->idx[c];
	size_t lo = 0, hi = ix->n - 1;   /* ck[0] is entry 1 */
	while (lo < hi) {
		size_t mid = lo + (hi - lo + 1) / 2;
		if (ix->ck[mid].seq <= seq)
			lo = mid;
		else
			hi = mid - 1;
	}
	struct hl_rrd *r = &p->look[c];
	if (!(p->look_seq[c] && p->look_seq[c] <= seq && p->look_seq[c] >= ix->ck[lo].seq &&
	      !r->err)) {
		hl_rrd_seek(r, ix->ck[lo].off);
		p->look_seq[c] = ix->ck[lo].seq;
	}
	int ret = 0;
	while (p->look_seq[c] < seq && (ret = skip_entry(r)) == 0)
		p->look_seq[c]++;
	const uint8_t *item;
	if (ret == 0)
		ret = read_entry(r, e, &item);
	if (ret < 0) {
		p->look_seq[c] = 0;
		return ret;
	}
	p->look_seq[c] = seq + 1;
	if (e->type == HL_RECORD_ITEM && want_hash)
		hl_item_hash(item, e->len, e->hash);
	cache_put(p, c, seq, e, want_hash);
	return 0;
}

/* ---- reading what was parsed (format.h) ---- */

int hl_record_entry_get(const struct hl_record *rec, unsigned c, uint64_t seq,
			struct hl_record_entry *e)
{
	return hl_record_locate(rec, c, seq, true, e);
}

int hl_record_item(const struct hl_record *rec, const struct hl_record_entry *e, uint8_t *buf)
{
	if (e->type != HL_RECORD_ITEM || e->len > HL_ITEM_MAX)
		return HL_EINVAL;
	return src_read(&rec->priv->src, e->item_off, buf, e->len);
}

int hl_record_read(const struct hl_record *rec, uint64_t off, void *p, size_t n)
{
	return src_read(&rec->priv->src, off, p, n);
}

int hl_record_hash_range(const struct hl_record *rec, uint64_t off, uint64_t n,
			 crypto_generichash_state *hs)
{
	struct hl_rrd *r = &rec->priv->scratch;
	hl_rrd_seek(r, off);
	while (n && !r->err) {
		size_t k = n < HL_RRD_MAX_TAKE ? (size_t)n : HL_RRD_MAX_TAKE;
		const uint8_t *p = hl_rrd_take(r, k);
		if (p)
			crypto_generichash_update(hs, p, k);
		n -= k;
	}
	return r->err;
}

/* ---- cursors ---- */

enum { CUR_CHAIN, CUR_CONTENTS, CUR_ATTS, CUR_EVIDENCE };

struct hl_record_cursor {
	const struct hl_record *rec;
	int kind;
	unsigned chain;
	struct hl_rrd r;
	uint64_t left;                 /* elements still to read */
	uint64_t seq;                  /* CHAIN: entries read */
	bool have;                     /* CONTENTS, ATTS: PEND holds the next one */
	struct hl_record_content ct;
	struct hl_record_att att;
};

static hl_record_cursor *cursor_new(const struct hl_record *rec, int kind, unsigned c,
				    uint64_t off, uint64_t left)
{
	hl_record_cursor *cur = xcalloc(1, sizeof(*cur));
	cur->rec = rec;
	cur->kind = kind;
	cur->chain = c;
	cur->left = left;
	hl_rrd_init(&cur->r, &rec->priv->src, off);
	return cur;
}

void hl_record_cursor_free(hl_record_cursor *cur)
{
	if (!cur)
		return;
	hl_rrd_free(&cur->r);
	free(cur);
}

int hl_record_chain_open(const struct hl_record *rec, unsigned c, hl_record_cursor **out)
{
	if (c > 1)
		return HL_EINVAL;
	*out = cursor_new(rec, CUR_CHAIN, c, rec->chain_off[c] + 4, rec->n[c]);
	rec->priv->entries = rec->n[0] + rec->n[1];
	return 0;
}

int hl_record_chain_next(hl_record_cursor *cur, struct hl_record_entry *e, const uint8_t **item)
{
	if (cur->kind != CUR_CHAIN)
		return HL_EINVAL;
	if (cur->left == 0)
		return 0;
	int ret = read_entry(&cur->r, e, item);
	if (ret < 0)
		return ret;
	cur->left--;
	cur->seq++;
	if (e->type == HL_RECORD_ITEM)
		hl_item_hash(*item, e->len, e->hash);
	cache_put(cur->rec->priv, cur->chain, cur->seq, e, true);
	return 1;
}

int hl_record_contents_open(const struct hl_record *rec, unsigned c, hl_record_cursor **out)
{
	if (c > 1)
		return HL_EINVAL;
	*out = cursor_new(rec, CUR_CONTENTS, c, rec->priv->contents_off[c],
			  rec->priv->contents_left[c]);
	return 0;
}

/* Reads the next content into CT, the body skipped. */
static int next_content(hl_record_cursor *cur, struct hl_record_content *ct)
{
	struct hl_rrd *r = &cur->r;
	ct->chain = hl_rrd_u8(r);
	ct->seq = hl_rrd_u64(r);
	hl_rrd_bytes(r, ct->salt, HL_SALT_LEN);
	ct->subject_len = hl_rrd_u16(r);
	if (!r->err && ct->subject_len > HL_SUBJECT_MAX)
		return HL_EINVAL;   /* the parser refused such a record */
	hl_rrd_bytes(r, ct->subject, ct->subject_len);
	ct->body_len = hl_rrd_u32(r);
	ct->body_off = r->off;
	hl_rrd_skip(r, ct->body_len);
	return r->err;
}

/* Before (C, SEQ)? */
static bool before(unsigned c1, uint64_t s1, unsigned c2, uint64_t s2)
{
	return c1 < c2 || (c1 == c2 && s1 < s2);
}

/* Reads the next attachment's header into the cursor, its data skipped. */
static int next_att(hl_record_cursor *cur, struct hl_record_att *a)
{
	struct hl_rrd *r = &cur->r;
	a->chain = hl_rrd_u8(r);
	a->seq = hl_rrd_u64(r);
	a->index = hl_rrd_u8(r);
	a->size = hl_rrd_u64(r);
	a->data_off = r->off;
	hl_rrd_skip(r, a->size);
	return r->err;
}

/* Moves a CONTENTS or ATTS cursor to its first element at or after (C,
 * SEQ), read but not consumed: 1 when that element is (C, SEQ), 0 when
 * there is none. */
static int seek_to(hl_record_cursor *cur, unsigned c, uint64_t seq)
{
	for (;;) {
		if (!cur->have) {
			if (cur->left == 0)
				return 0;
			int ret = cur->kind == CUR_CONTENTS ? next_content(cur, &cur->ct)
							    : next_att(cur, &cur->att);
			if (ret < 0)
				return ret;
			cur->left--;
			cur->have = true;
		}
		unsigned pc = cur->kind == CUR_CONTENTS ? cur->ct.chain : cur->att.chain;
		uint64_t ps = cur->kind == CUR_CONTENTS ? cur->ct.seq : cur->att.seq;
		if (!before(pc, ps, c, seq))
			return pc == c && ps == seq;
		cur->have = false;
	}
}

int hl_record_content_for(hl_record_cursor *cur, unsigned c, uint64_t seq,
			  struct hl_record_content *ct)
{
	if (cur->kind != CUR_CONTENTS)
		return HL_EINVAL;
	int ret = seek_to(cur, c, seq);
	if (ret == 1) {
		*ct = cur->ct;
		cur->have = false;
	}
	return ret;
}

int hl_record_atts_open(const struct hl_record *rec, unsigned c, hl_record_cursor **out)
{
	if (c > 1)
		return HL_EINVAL;
	*out = cursor_new(rec, CUR_ATTS, c, rec->priv->atts_off[c], rec->priv->atts_left[c]);
	return 0;
}

int hl_record_att_for(hl_record_cursor *cur, unsigned c, uint64_t seq, struct hl_record_att *a)
{
	if (cur->kind != CUR_ATTS)
		return HL_EINVAL;
	int ret = seek_to(cur, c, seq);
	if (ret == 1) {
		*a = cur->att;
		cur->have = false;
	}
	return ret;
}

int hl_record_evidence_open(const struct hl_record *rec, hl_record_cursor **out)
{
	*out = cursor_new(rec, CUR_EVIDENCE, 0, rec->priv->evidence_off, rec->nevidence);
	return 0;
}

int hl_record_evidence_next(hl_record_cursor *cur, struct hl_record_evidence *ev)
{
	struct hl_rrd *r = &cur->r;
	if (cur->kind != CUR_EVIDENCE)
		return HL_EINVAL;
	if (cur->left == 0)
		return 0;
	ev->chain = hl_rrd_u8(r);
	ev->len = hl_rrd_u16(r);
	ev->item = hl_rrd_take(r, ev->len);
	if (r->err)
		return r->err;
	if (ev->len > HL_ITEM_MAX)
		return HL_EINVAL;
	hl_item_hash(ev->item, ev->len, ev->hash);
	cur->left--;
	return 1;
}
