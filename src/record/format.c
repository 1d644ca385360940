/* record/format.c — the record file's parser and writer (format.h,
 * docs/record.md).  The two mirror each other section by section; the
 * writer refuses what the parser would refuse, so an exporter cannot emit
 * a record that does not parse. */
#include "record/format.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/bytes.h"
#include "util/err.h"
#include "util/mem.h"

/* Smallest encodings, to check a declared count against the bytes left
 * before allocating anything for it. */
#define MIN_CONTENT (1 + 8 + HL_SALT_LEN + 2 + 4)
#define MIN_ATT (1 + 8 + 1 + 8)
#define MIN_EVIDENCE (1 + 2 + 1)
#define MIN_PURGED (1 + 8 + 8)

/* ---- parser ---- */

struct parser {
	struct hl_rbuf r;
	struct hl_record *rec;
	char *why;
	size_t whylen;
	size_t absent;
};

static int bad(struct parser *p, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int bad(struct parser *p, int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(p->why, p->whylen, fmt, ap);
	va_end(ap);
	return code;
}

/* "washington's chain" once the cards are known. */
static const char *chain_name(const struct parser *p, unsigned c)
{
	return p->rec->card[c].name[0] ? p->rec->card[c].name : (c ? "card 1" : "card 0");
}

static int parse_header(struct parser *p)
{
	const uint8_t *magic = hl_r_take(&p->r, HL_RECORD_MAGIC_LEN);
	if (!magic || memcmp(magic, HL_RECORD_MAGIC, HL_RECORD_MAGIC_LEN) != 0)
		return bad(p, HL_EINVAL, "not a hotline record (no \"%s\" at the start)",
			   HL_RECORD_MAGIC);
	uint8_t version = hl_r_u8(&p->r);
	uint8_t flags = hl_r_u8(&p->r);
	p->rec->exported_at = hl_r_u64(&p->r);
	if (p->r.err)
		return bad(p, HL_ETRUNC, "header: cut short");
	if (version != HL_RECORD_VERSION && version != HL_RECORD_VERSION_PURGED)
		return bad(p, HL_EUNSUPP, "header: record version %u; this hotline reads versions "
			   "%d and %d", version, HL_RECORD_VERSION, HL_RECORD_VERSION_PURGED);
	p->rec->version = version;
	if (flags != 0)
		return bad(p, HL_EINVAL, "header: unknown flags 0x%02x", flags);
	return 0;
}

static int parse_cards(struct parser *p)
{
	char err[HL_CONF_ERR_LEN];
	for (unsigned c = 0; c < 2; c++) {
		uint16_t len = hl_r_u16(&p->r);
		const uint8_t *text = hl_r_take(&p->r, len);
		if (p->r.err)
			return bad(p, HL_ETRUNC, "card %u: cut short", c);
		if (len == 0 || len > HL_CARD_MAX_BYTES)
			return bad(p, HL_EINVAL, "card %u: length %u (1 to %d)", c, len,
				   HL_CARD_MAX_BYTES);
		if (hl_card_parse((const char *)text, len, c ? "card 1" : "card 0",
				  &p->rec->card[c], err) < 0)
			return bad(p, HL_EINVAL, "%s", err);
		p->rec->card_text[c] = (const char *)text;
		p->rec->card_len[c] = len;
	}
	if (memcmp(p->rec->card[0].signing_key, p->rec->card[1].signing_key, 32) == 0)
		return bad(p, HL_EINVAL, "both cards have the same SigningKey");
	return 0;
}

static int parse_chain(struct parser *p, unsigned c)
{
	struct hl_record *rec = p->rec;
	rec->chain_off[c] = p->r.off;
	uint32_t count = hl_r_u32(&p->r);
	if (p->r.err)
		return bad(p, HL_ETRUNC, "%s's chain: cut short before its count", chain_name(p, c));
	/* Every entry takes at least one byte: a count beyond the bytes left
	 * is a lie, caught before any allocation. */
	if (count > HL_RECORD_MAX_ENTRIES || count > hl_r_left(&p->r))
		return bad(p, HL_ETOOBIG, "%s's chain: %u entries (at most %u, and the file is "
			   "too short for them)", chain_name(p, c), count, HL_RECORD_MAX_ENTRIES);
	size_t cap = count < 1024 ? count : 1024;
	rec->entries[c] = xcalloc(cap ? cap : 1, sizeof(*rec->entries[c]));
	for (uint32_t i = 0; i < count; i++) {
		if (i == cap) {
			cap = cap * 2 < count ? cap * 2 : count;
			rec->entries[c] = xrealloc(rec->entries[c], cap * sizeof(*rec->entries[c]));
		}
		struct hl_record_entry *e = &rec->entries[c][i];
		memset(e, 0, sizeof(*e));
		e->content = -1;
		e->first_att = -1;
		e->purged = -1;
		e->off = p->r.off;
		rec->n[c] = i + 1;
		e->type = hl_r_u8(&p->r);
		switch (e->type) {
		case HL_RECORD_ITEM:
			e->len = hl_r_u16(&p->r);
			e->item = hl_r_take(&p->r, e->len);
			if (p->r.err)
				break;
			if (e->len == 0 || e->len > HL_ITEM_MAX)
				return bad(p, HL_EINVAL, "%s's chain, entry %u: item of %u bytes (1 to %d)",
					   chain_name(p, c), i + 1, e->len, HL_ITEM_MAX);
			hl_item_hash(e->item, e->len, e->hash);
			break;
		case HL_RECORD_REFUSED:
		case HL_RECORD_ABSENT:
			/* A station holds every item it authored: only its
			 * peer's chain can have refused or missing positions. */
			if (c != HL_RECORD_PEER)
				return bad(p, HL_EINVAL, "%s's chain, entry %u: a %s position in the "
					   "exporter's own chain", chain_name(p, c), i + 1,
					   e->type == HL_RECORD_REFUSED ? "refused" : "missing");
			if (e->type == HL_RECORD_REFUSED) {
				hl_r_bytes(&p->r, e->hash, HL_HASH_LEN);
				e->code = hl_r_u8(&p->r);
				if (!p->r.err && e->code == 0)
					return bad(p, HL_EINVAL, "%s's chain, entry %u: refusal code 0",
						   chain_name(p, c), i + 1);
			} else if (++p->absent > HL_RECORD_MAX_ABSENT) {
				return bad(p, HL_ETOOBIG, "more than %u missing positions",
					   HL_RECORD_MAX_ABSENT);
			}
			break;
		default:
			if (p->r.err)
				break;
			return bad(p, HL_EINVAL, "%s's chain, entry %u: unknown entry type %u",
				   chain_name(p, c), i + 1, e->type);
		}
		if (p->r.err)
			return bad(p, HL_ETRUNC, "%s's chain, entry %u: cut short", chain_name(p, c),
				   i + 1);
	}
	/* The chain's length is its last entry's seq, which must be known. */
	if (count && rec->entries[c][count - 1].type == HL_RECORD_ABSENT)
		return bad(p, HL_EINVAL, "%s's chain ends with a missing position",
			   chain_name(p, c));
	return 0;
}

/* Reads a (chain, seq) reference and checks that it names an item. */
static int parse_ref(struct parser *p, const char *what, size_t i, uint8_t *chain,
		     uint64_t *seq)
{
	*chain = hl_r_u8(&p->r);
	*seq = hl_r_u64(&p->r);
	if (p->r.err)
		return bad(p, HL_ETRUNC, "%s %zu: cut short", what, i + 1);
	if (*chain > 1)
		return bad(p, HL_EINVAL, "%s %zu: chain %u (0 or 1)", what, i + 1, *chain);
	if (*seq == 0 || *seq > p->rec->n[*chain])
		return bad(p, HL_EINVAL, "%s %zu: %s's entry %llu, which the record does not have",
			   what, i + 1, chain_name(p, *chain), (unsigned long long)*seq);
	if (p->rec->entries[*chain][*seq - 1].type != HL_RECORD_ITEM)
		return bad(p, HL_EINVAL, "%s %zu: %s's entry %llu is not an item", what, i + 1,
			   chain_name(p, *chain), (unsigned long long)*seq);
	return 0;
}

static int parse_contents(struct parser *p)
{
	struct hl_record *rec = p->rec;
	uint32_t count = hl_r_u32(&p->r);
	if (p->r.err)
		return bad(p, HL_ETRUNC, "contents: cut short before the count");
	if (count > HL_RECORD_MAX_CONTENTS || count > hl_r_left(&p->r) / MIN_CONTENT)
		return bad(p, HL_ETOOBIG, "contents: %u of them (at most %u, and the file is too "
			   "short for them)", count, HL_RECORD_MAX_CONTENTS);
	rec->contents = xcalloc(count ? count : 1, sizeof(*rec->contents));
	for (uint32_t i = 0; i < count; i++) {
		struct hl_record_content *ct = &rec->contents[i];
		int ret = parse_ref(p, "content", i, &ct->chain, &ct->seq);
		if (ret < 0)
			return ret;
		if (i > 0 && (ct->chain < rec->contents[i - 1].chain ||
			      (ct->chain == rec->contents[i - 1].chain &&
			       ct->seq <= rec->contents[i - 1].seq)))
			return bad(p, HL_EINVAL, "content %u: out of order (by chain, then entry)",
				   i + 1);
		ct->salt = hl_r_take(&p->r, HL_SALT_LEN);
		ct->subject_len = hl_r_u16(&p->r);
		ct->subject = hl_r_take(&p->r, ct->subject_len);
		if (!p->r.err && ct->subject_len > HL_SUBJECT_MAX)
			return bad(p, HL_ETOOBIG, "content %u: subject of %u bytes (at most %d)",
				   i + 1, ct->subject_len, HL_SUBJECT_MAX);
		ct->body_len = hl_r_u32(&p->r);
		if (!p->r.err && ct->body_len > HL_BODY_MAX)
			return bad(p, HL_ETOOBIG, "content %u: body of %u bytes (at most %u)", i + 1,
				   ct->body_len, HL_BODY_MAX);
		ct->body = hl_r_take(&p->r, ct->body_len);
		if (p->r.err)
			return bad(p, HL_ETRUNC, "content %u: cut short", i + 1);
		rec->entries[ct->chain][ct->seq - 1].content = (int32_t)i;
		rec->ncontents = i + 1;
	}
	return 0;
}

static int parse_atts(struct parser *p)
{
	struct hl_record *rec = p->rec;
	uint32_t count = hl_r_u32(&p->r);
	if (p->r.err)
		return bad(p, HL_ETRUNC, "attachments: cut short before the count");
	if (count > HL_RECORD_MAX_ATTACHMENTS || count > hl_r_left(&p->r) / MIN_ATT)
		return bad(p, HL_ETOOBIG, "attachments: %u of them (at most %u, and the file is "
			   "too short for them)", count, HL_RECORD_MAX_ATTACHMENTS);
	rec->atts = xcalloc(count ? count : 1, sizeof(*rec->atts));
	for (uint32_t i = 0; i < count; i++) {
		struct hl_record_att *a = &rec->atts[i];
		int ret = parse_ref(p, "attachment", i, &a->chain, &a->seq);
		if (ret < 0)
			return ret;
		a->index = hl_r_u8(&p->r);
		a->size = hl_r_u64(&p->r);
		if (p->r.err)
			return bad(p, HL_ETRUNC, "attachment %u: cut short", i + 1);
		if (a->index >= HL_MAX_ATTACHMENTS)
			return bad(p, HL_EINVAL, "attachment %u: index %u (0 to %d)", i + 1, a->index,
				   HL_MAX_ATTACHMENTS - 1);
		if (i > 0) {
			const struct hl_record_att *b = &rec->atts[i - 1];
			if (a->chain < b->chain || (a->chain == b->chain && a->seq < b->seq) ||
			    (a->chain == b->chain && a->seq == b->seq && a->index <= b->index))
				return bad(p, HL_EINVAL, "attachment %u: out of order (by chain, entry, "
					   "then index)", i + 1);
		}
		struct hl_record_entry *e = &rec->entries[a->chain][a->seq - 1];
		/* Attachments go only with a disclosed message: withheld
		 * means nothing beyond the signed item. */
		if (e->content < 0)
			return bad(p, HL_EINVAL, "attachment %u: %s's entry %llu has no disclosed "
				   "content", i + 1, chain_name(p, a->chain),
				   (unsigned long long)a->seq);
		if (a->size > HL_RECORD_MAX_ATT_SIZE || a->size > hl_r_left(&p->r))
			return bad(p, HL_ETRUNC, "attachment %u: %llu bytes, more than the file holds",
				   i + 1, (unsigned long long)a->size);
		a->data = hl_r_take(&p->r, (size_t)a->size);
		if (e->first_att < 0)
			e->first_att = (int32_t)i;
		rec->natts = i + 1;
	}
	return 0;
}

static int parse_evidence(struct parser *p)
{
	struct hl_record *rec = p->rec;
	uint32_t count = hl_r_u32(&p->r);
	if (p->r.err)
		return bad(p, HL_ETRUNC, "evidence: cut short before the count");
	if (count > HL_RECORD_MAX_EVIDENCE || count > hl_r_left(&p->r) / MIN_EVIDENCE)
		return bad(p, HL_ETOOBIG, "evidence: %u items (at most %d, and the file is too "
			   "short for them)", count, HL_RECORD_MAX_EVIDENCE);
	rec->evidence = xcalloc(count ? count : 1, sizeof(*rec->evidence));
	for (uint32_t i = 0; i < count; i++) {
		struct hl_record_evidence *ev = &rec->evidence[i];
		ev->chain = hl_r_u8(&p->r);
		ev->len = hl_r_u16(&p->r);
		ev->item = hl_r_take(&p->r, ev->len);
		if (p->r.err)
			return bad(p, HL_ETRUNC, "evidence %u: cut short", i + 1);
		if (ev->chain > 1)
			return bad(p, HL_EINVAL, "evidence %u: chain %u (0 or 1)", i + 1, ev->chain);
		if (ev->len == 0 || ev->len > HL_ITEM_MAX)
			return bad(p, HL_EINVAL, "evidence %u: item of %u bytes (1 to %d)", i + 1,
				   ev->len, HL_ITEM_MAX);
		hl_item_hash(ev->item, ev->len, ev->hash);
		rec->nevidence = i + 1;
	}
	return 0;
}

/* Version 2: the messages the exporter purged.  Each names a message
 * ITEM (its kind is the verifier's to check) that has no content: what
 * was purged cannot be disclosed. */
static int parse_purged(struct parser *p)
{
	struct hl_record *rec = p->rec;
	uint32_t count = hl_r_u32(&p->r);
	if (p->r.err)
		return bad(p, HL_ETRUNC, "purged: cut short before the count");
	if (count > HL_RECORD_MAX_PURGED || count > hl_r_left(&p->r) / MIN_PURGED)
		return bad(p, HL_ETOOBIG, "purged: %u of them (at most %u, and the file is too "
			   "short for them)", count, HL_RECORD_MAX_PURGED);
	rec->purged = xcalloc(count ? count : 1, sizeof(*rec->purged));
	for (uint32_t i = 0; i < count; i++) {
		struct hl_record_purged *g = &rec->purged[i];
		int ret = parse_ref(p, "purged", i, &g->chain, &g->seq);
		if (ret < 0)
			return ret;
		g->purged_at = hl_r_u64(&p->r);
		if (p->r.err)
			return bad(p, HL_ETRUNC, "purged %u: cut short", i + 1);
		if (i > 0 && (g->chain < rec->purged[i - 1].chain ||
			      (g->chain == rec->purged[i - 1].chain && g->seq <= rec->purged[i - 1].seq)))
			return bad(p, HL_EINVAL, "purged %u: out of order (by chain, then entry)",
				   i + 1);
		struct hl_record_entry *e = &rec->entries[g->chain][g->seq - 1];
		if (e->content >= 0)
			return bad(p, HL_EINVAL, "purged %u: %s's entry %llu is disclosed in the record",
				   i + 1, chain_name(p, g->chain), (unsigned long long)g->seq);
		e->purged = (int32_t)i;
		rec->npurged = i + 1;
	}
	return 0;
}

int hl_record_parse(const uint8_t *buf, size_t len, struct hl_record **out,
		    char *why, size_t whylen)
{
	struct parser p = { .why = why, .whylen = whylen };
	int ret;
	*out = NULL;
	if (whylen)
		why[0] = '\0';
	p.rec = xcalloc(1, sizeof(*p.rec));
	p.rec->buf = buf;
	p.rec->len = len;
	hl_rbuf_init(&p.r, buf, len);
	if ((ret = parse_header(&p)) < 0 || (ret = parse_cards(&p)) < 0 ||
	    (ret = parse_chain(&p, 0)) < 0 || (ret = parse_chain(&p, 1)) < 0 ||
	    (ret = parse_contents(&p)) < 0 || (ret = parse_atts(&p)) < 0 ||
	    (ret = parse_evidence(&p)) < 0 ||
	    (p.rec->version == HL_RECORD_VERSION_PURGED && (ret = parse_purged(&p)) < 0))
		goto out;
	size_t left = hl_r_left(&p.r);
	if (left != HL_RECORD_SIG_LEN) {
		ret = left < HL_RECORD_SIG_LEN
			      ? bad(&p, HL_ETRUNC, "the seal is missing or cut short")
			      : bad(&p, HL_EINVAL, "%zu unexpected bytes before the seal",
				    left - HL_RECORD_SIG_LEN);
		goto out;
	}
	p.rec->signed_len = p.r.off;
	p.rec->sig = buf + p.r.off;
	*out = p.rec;
	p.rec = NULL;
	ret = 0;
out:
	hl_record_free(p.rec);
	return ret;
}

void hl_record_free(struct hl_record *rec)
{
	if (!rec)
		return;
	free(rec->entries[0]);
	free(rec->entries[1]);
	free(rec->contents);
	free(rec->atts);
	free(rec->evidence);
	free(rec->purged);
	free(rec);
}

void hl_record_seal_msg(const uint8_t file_hash[static HL_HASH_LEN],
			uint8_t out[static HL_RECORD_SEAL_MSG_LEN])
{
	memcpy(out, HL_RECORD_SEAL_CTX, sizeof(HL_RECORD_SEAL_CTX)); /* with its NUL */
	memcpy(out + sizeof(HL_RECORD_SEAL_CTX), file_hash, HL_HASH_LEN);
}

/* ---- writer ---- */

enum {
	W_HEADER, W_CARD0, W_CARD1, W_CHAIN0_COUNT, W_CHAIN0, W_CHAIN1_COUNT, W_CHAIN1,
	W_CONTENTS_COUNT, W_CONTENTS, W_ATTS_COUNT, W_ATTS, W_EVIDENCE_COUNT, W_EVIDENCE,
	W_PURGED_COUNT, W_PURGED, W_SEAL, W_DONE,
};

void hl_record_writer_init(struct hl_record_writer *w, hl_record_sink sink, void *arg)
{
	memset(w, 0, sizeof(*w));
	w->sink = sink;
	w->arg = arg;
	crypto_generichash_init(&w->hs, NULL, 0, HL_HASH_LEN);
	w->section = W_HEADER;
}

static int fail(struct hl_record_writer *w, int code)
{
	if (!w->err)
		w->err = code;
	return w->err;
}

/* Appends P to the file and to the hash the seal signs. */
static void put(struct hl_record_writer *w, const void *p, size_t n)
{
	if (w->err || n == 0)
		return;
	crypto_generichash_update(&w->hs, p, n);
	int ret = w->sink(w->arg, p, n);
	if (ret < 0)
		fail(w, ret);
	else
		w->written += n;
}

static void put_u8(struct hl_record_writer *w, uint8_t v)
{
	put(w, &v, 1);
}

static void put_u16(struct hl_record_writer *w, uint16_t v)
{
	uint8_t b[2] = { (uint8_t)(v >> 8), (uint8_t)v };
	put(w, b, 2);
}

static void put_u32(struct hl_record_writer *w, uint32_t v)
{
	uint8_t b[4] = { (uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v };
	put(w, b, 4);
}

static void put_u64(struct hl_record_writer *w, uint64_t v)
{
	put_u32(w, (uint32_t)(v >> 32));
	put_u32(w, (uint32_t)v);
}

/* Requires section S (and, for element sections, an element still
 * expected). */
static int expect(struct hl_record_writer *w, int s)
{
	if (w->err)
		return w->err;
	if (w->section != s)
		return fail(w, HL_ESTATE);
	return 0;
}

/* Moves past a section of COUNT elements: to ELEMENTS, or straight to the
 * section after it when COUNT is 0. */
static void open_section(struct hl_record_writer *w, uint32_t count, int elements)
{
	w->left = count;
	w->section = count ? elements : elements + 1;
}

/* One element of the current section done. */
static void element_done(struct hl_record_writer *w)
{
	if (--w->left == 0)
		w->section++;
}

int hl_record_write_header(struct hl_record_writer *w, uint64_t exported_at)
{
	return hl_record_write_header_version(w, exported_at, HL_RECORD_VERSION);
}

int hl_record_write_header_version(struct hl_record_writer *w, uint64_t exported_at,
				   unsigned version)
{
	if (expect(w, W_HEADER) < 0)
		return w->err;
	if (version != HL_RECORD_VERSION && version != HL_RECORD_VERSION_PURGED)
		return fail(w, HL_EINVAL);
	w->version = (uint8_t)version;
	put(w, HL_RECORD_MAGIC, HL_RECORD_MAGIC_LEN);
	put_u8(w, (uint8_t)version);
	put_u8(w, 0);
	put_u64(w, exported_at);
	w->section = W_CARD0;
	return w->err;
}

int hl_record_write_card(struct hl_record_writer *w, const char *text, size_t len)
{
	if (w->section != W_CARD1 && expect(w, W_CARD0) < 0)
		return w->err;
	if (len == 0 || len > HL_CARD_MAX_BYTES)
		return fail(w, HL_EINVAL);
	put_u16(w, (uint16_t)len);
	put(w, text, len);
	w->section++;
	return w->err;
}

int hl_record_write_chain(struct hl_record_writer *w, uint32_t count)
{
	int s = w->section == W_CHAIN1_COUNT ? W_CHAIN1_COUNT : W_CHAIN0_COUNT;
	if (expect(w, s) < 0)
		return w->err;
	if (count > HL_RECORD_MAX_ENTRIES)
		return fail(w, HL_ETOOBIG);
	put_u32(w, count);
	open_section(w, count, s + 1);
	return w->err;
}

static int expect_entry(struct hl_record_writer *w, bool peer_only)
{
	if (w->err)
		return w->err;
	if (w->section == W_CHAIN1 || (w->section == W_CHAIN0 && !peer_only))
		return 0;
	return fail(w, w->section == W_CHAIN0 ? HL_EINVAL : HL_ESTATE);
}

int hl_record_write_item(struct hl_record_writer *w, const uint8_t *item, size_t len)
{
	if (expect_entry(w, false) < 0)
		return w->err;
	if (len == 0 || len > HL_ITEM_MAX)
		return fail(w, HL_EINVAL);
	put_u8(w, HL_RECORD_ITEM);
	put_u16(w, (uint16_t)len);
	put(w, item, len);
	element_done(w);
	return w->err;
}

int hl_record_write_refused(struct hl_record_writer *w, const uint8_t hash[static HL_HASH_LEN],
			    uint8_t code)
{
	if (expect_entry(w, true) < 0)
		return w->err;
	if (code == 0)
		return fail(w, HL_EINVAL);
	put_u8(w, HL_RECORD_REFUSED);
	put(w, hash, HL_HASH_LEN);
	put_u8(w, code);
	element_done(w);
	return w->err;
}

int hl_record_write_absent(struct hl_record_writer *w)
{
	if (expect_entry(w, true) < 0)
		return w->err;
	if (w->left == 1) /* a chain cannot end with a missing position */
		return fail(w, HL_EINVAL);
	put_u8(w, HL_RECORD_ABSENT);
	element_done(w);
	return w->err;
}

int hl_record_write_contents(struct hl_record_writer *w, uint32_t count)
{
	if (expect(w, W_CONTENTS_COUNT) < 0)
		return w->err;
	if (count > HL_RECORD_MAX_CONTENTS)
		return fail(w, HL_ETOOBIG);
	put_u32(w, count);
	open_section(w, count, W_CONTENTS);
	return w->err;
}

int hl_record_write_content(struct hl_record_writer *w, unsigned chain, uint64_t seq,
			    const uint8_t salt[static HL_SALT_LEN], const uint8_t *subject,
			    size_t subject_len, const uint8_t *body, size_t body_len)
{
	if (expect(w, W_CONTENTS) < 0)
		return w->err;
	if (chain > 1 || seq == 0 || subject_len > HL_SUBJECT_MAX || body_len > HL_BODY_MAX)
		return fail(w, HL_EINVAL);
	put_u8(w, (uint8_t)chain);
	put_u64(w, seq);
	put(w, salt, HL_SALT_LEN);
	put_u16(w, (uint16_t)subject_len);
	put(w, subject, subject_len);
	put_u32(w, (uint32_t)body_len);
	put(w, body, body_len);
	element_done(w);
	return w->err;
}

int hl_record_write_attachments(struct hl_record_writer *w, uint32_t count)
{
	if (expect(w, W_ATTS_COUNT) < 0)
		return w->err;
	if (count > HL_RECORD_MAX_ATTACHMENTS)
		return fail(w, HL_ETOOBIG);
	put_u32(w, count);
	open_section(w, count, W_ATTS);
	return w->err;
}

int hl_record_write_att_begin(struct hl_record_writer *w, unsigned chain, uint64_t seq,
			      unsigned index, uint64_t size)
{
	if (expect(w, W_ATTS) < 0)
		return w->err;
	if (w->att_left)
		return fail(w, HL_ESTATE);
	if (chain > 1 || seq == 0 || index >= HL_MAX_ATTACHMENTS || size > HL_RECORD_MAX_ATT_SIZE)
		return fail(w, HL_EINVAL);
	put_u8(w, (uint8_t)chain);
	put_u64(w, seq);
	put_u8(w, (uint8_t)index);
	put_u64(w, size);
	w->att_left = size;
	if (size == 0)
		element_done(w);
	return w->err;
}

int hl_record_write_att_data(struct hl_record_writer *w, const void *p, size_t n)
{
	if (expect(w, W_ATTS) < 0)
		return w->err;
	if (n > w->att_left)
		return fail(w, HL_EINVAL);
	put(w, p, n);
	w->att_left -= n;
	if (n && w->att_left == 0)
		element_done(w);
	return w->err;
}

int hl_record_write_evidence(struct hl_record_writer *w, uint32_t count)
{
	if (expect(w, W_EVIDENCE_COUNT) < 0)
		return w->err;
	if (count > HL_RECORD_MAX_EVIDENCE)
		return fail(w, HL_ETOOBIG);
	put_u32(w, count);
	open_section(w, count, W_EVIDENCE);
	return w->err;
}

int hl_record_write_evidence_item(struct hl_record_writer *w, unsigned chain,
				  const uint8_t *item, size_t len)
{
	if (expect(w, W_EVIDENCE) < 0)
		return w->err;
	if (chain > 1 || len == 0 || len > HL_ITEM_MAX)
		return fail(w, HL_EINVAL);
	put_u8(w, (uint8_t)chain);
	put_u16(w, (uint16_t)len);
	put(w, item, len);
	element_done(w);
	return w->err;
}

int hl_record_write_purged(struct hl_record_writer *w, uint32_t count)
{
	if (expect(w, W_PURGED_COUNT) < 0)
		return w->err;
	if (w->version != HL_RECORD_VERSION_PURGED)
		return fail(w, HL_ESTATE);
	if (count > HL_RECORD_MAX_PURGED)
		return fail(w, HL_ETOOBIG);
	put_u32(w, count);
	open_section(w, count, W_PURGED);
	return w->err;
}

int hl_record_write_purged_entry(struct hl_record_writer *w, unsigned chain, uint64_t seq,
				 uint64_t purged_at)
{
	if (expect(w, W_PURGED) < 0)
		return w->err;
	if (chain > 1 || seq == 0)
		return fail(w, HL_EINVAL);
	put_u8(w, (uint8_t)chain);
	put_u64(w, seq);
	put_u64(w, purged_at);
	element_done(w);
	return w->err;
}

int hl_record_write_seal(struct hl_record_writer *w, const uint8_t sign_sk[static 64])
{
	uint8_t h[HL_HASH_LEN], msg[HL_RECORD_SEAL_MSG_LEN], sig[HL_RECORD_SIG_LEN];
	/* Version 1 has no purged section. */
	if (!w->err && w->version == HL_RECORD_VERSION && w->section == W_PURGED_COUNT)
		w->section = W_SEAL;
	if (expect(w, W_SEAL) < 0)
		return w->err;
	crypto_generichash_final(&w->hs, h, HL_HASH_LEN);
	hl_record_seal_msg(h, msg);
	crypto_sign_detached(sig, NULL, msg, sizeof(msg), sign_sk);
	/* The signature is not part of what it signs. */
	int ret = w->sink(w->arg, sig, sizeof(sig));
	if (ret < 0)
		return fail(w, ret);
	w->written += sizeof(sig);
	w->section = W_DONE;
	return 0;
}

void hl_record_reseal(uint8_t *buf, size_t len, const uint8_t sign_sk[static 64])
{
	uint8_t h[HL_HASH_LEN], msg[HL_RECORD_SEAL_MSG_LEN];
	if (len < HL_RECORD_SIG_LEN)
		return;
	crypto_generichash(h, HL_HASH_LEN, buf, len - HL_RECORD_SIG_LEN, NULL, 0);
	hl_record_seal_msg(h, msg);
	crypto_sign_detached(buf + len - HL_RECORD_SIG_LEN, NULL, msg, sizeof(msg), sign_sk);
}
