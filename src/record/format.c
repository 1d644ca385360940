/* record/format.c — the record file's parser and writer (format.h,
 * docs/record.md).  The two mirror each other section by section; the
 * writer refuses what the parser would refuse, so an exporter cannot emit
 * a record that does not parse.  The parser reads through record/reader.h
 * (bounded memory, one pass). */
#include "record/format.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "record/reader.h"
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
	struct hl_rrd r;
	crypto_generichash_state hs;   /* every byte before the seal */
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

/* A read that failed for another reason than the end of the input. */
static int io_bad(struct parser *p, int err)
{
	return bad(p, err, "cannot read the record: %s", hl_strerror(err));
}

/* "washington's chain" once the cards are known. */
static const char *chain_name(const struct parser *p, unsigned c)
{
	return p->rec->card[c].name[0] ? p->rec->card[c].name : (c ? "card 1" : "card 0");
}

static int parse_header(struct parser *p)
{
	uint8_t magic[HL_RECORD_MAGIC_LEN];
	hl_rrd_bytes(&p->r, magic, sizeof(magic));
	if (p->r.err || memcmp(magic, HL_RECORD_MAGIC, HL_RECORD_MAGIC_LEN) != 0)
		return p->r.err && p->r.err != HL_ETRUNC
			       ? io_bad(p, p->r.err)
			       : bad(p, HL_EINVAL, "not a hotline record (no \"%s\" at the start)",
				     HL_RECORD_MAGIC);
	uint8_t version = hl_rrd_u8(&p->r);
	uint8_t flags = hl_rrd_u8(&p->r);
	p->rec->exported_at = hl_rrd_u64(&p->r);
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
		uint16_t len = hl_rrd_u16(&p->r);
		if (!p->r.err && (len == 0 || len > HL_CARD_MAX_BYTES))
			return bad(p, HL_EINVAL, "card %u: length %u (1 to %d)", c, len,
				   HL_CARD_MAX_BYTES);
		hl_rrd_bytes(&p->r, p->rec->card_text[c], len);
		if (p->r.err)
			return bad(p, HL_ETRUNC, "card %u: cut short", c);
		if (hl_card_parse(p->rec->card_text[c], len, c ? "card 1" : "card 0",
				  &p->rec->card[c], err) < 0)
			return bad(p, HL_EINVAL, "%s", err);
		p->rec->card_len[c] = len;
	}
	if (memcmp(p->rec->card[0].signing_key, p->rec->card[1].signing_key, 32) == 0)
		return bad(p, HL_EINVAL, "both cards have the same SigningKey");
	return 0;
}

static int parse_chain(struct parser *p, unsigned c)
{
	struct hl_record *rec = p->rec;
	uint8_t type = 0;
	rec->chain_off[c] = p->r.off;
	uint32_t count = hl_rrd_u32(&p->r);
	if (p->r.err)
		return bad(p, HL_ETRUNC, "%s's chain: cut short before its count", chain_name(p, c));
	/* Every entry takes at least one byte: a count beyond the bytes left
	 * is a lie, caught before anything is done for it. */
	if (count > HL_RECORD_MAX_ENTRIES || count > hl_rrd_left(&p->r))
		return bad(p, HL_ETOOBIG, "%s's chain: %u entries (at most %u, and the file is "
			   "too short for them)", chain_name(p, c), count, HL_RECORD_MAX_ENTRIES);
	for (uint32_t i = 0; i < count; i++) {
		hl_record_index_add(rec->priv, c, i + 1, p->r.off);
		rec->n[c] = i + 1;
		type = hl_rrd_u8(&p->r);
		switch (type) {
		case HL_RECORD_ITEM: {
			uint16_t len = hl_rrd_u16(&p->r);
			if (!p->r.err && (len == 0 || len > HL_ITEM_MAX))
				return bad(p, HL_EINVAL, "%s's chain, entry %u: item of %u bytes (1 to %d)",
					   chain_name(p, c), i + 1, len, HL_ITEM_MAX);
			(void)hl_rrd_take(&p->r, len);
			break;
		}
		case HL_RECORD_REFUSED:
		case HL_RECORD_ABSENT:
			/* A station holds every item it authored: only its
			 * peer's chain can have refused or missing positions. */
			if (c != HL_RECORD_PEER)
				return bad(p, HL_EINVAL, "%s's chain, entry %u: a %s position in the "
					   "exporter's own chain", chain_name(p, c), i + 1,
					   type == HL_RECORD_REFUSED ? "refused" : "missing");
			if (type == HL_RECORD_REFUSED) {
				(void)hl_rrd_take(&p->r, HL_HASH_LEN);
				uint8_t code = hl_rrd_u8(&p->r);
				if (!p->r.err && code == 0)
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
				   chain_name(p, c), i + 1, type);
		}
		if (p->r.err)
			return p->r.err != HL_ETRUNC ? io_bad(p, p->r.err)
				: bad(p, HL_ETRUNC, "%s's chain, entry %u: cut short",
				      chain_name(p, c), i + 1);
	}
	/* The chain's length is its last entry's seq, which must be known. */
	if (count && type == HL_RECORD_ABSENT)
		return bad(p, HL_EINVAL, "%s's chain ends with a missing position",
			   chain_name(p, c));
	return 0;
}

/* Reads a (chain, seq) reference and checks that it names an item. */
static int parse_ref(struct parser *p, const char *what, size_t i, uint8_t *chain,
		     uint64_t *seq)
{
	struct hl_record_entry e;
	*chain = hl_rrd_u8(&p->r);
	*seq = hl_rrd_u64(&p->r);
	if (p->r.err)
		return bad(p, HL_ETRUNC, "%s %zu: cut short", what, i + 1);
	if (*chain > 1)
		return bad(p, HL_EINVAL, "%s %zu: chain %u (0 or 1)", what, i + 1, *chain);
	if (*seq == 0 || *seq > p->rec->n[*chain])
		return bad(p, HL_EINVAL, "%s %zu: %s's entry %llu, which the record does not have",
			   what, i + 1, chain_name(p, *chain), (unsigned long long)*seq);
	int ret = hl_record_locate(p->rec, *chain, *seq, false, &e);
	if (ret < 0)
		return io_bad(p, ret);
	if (e.type != HL_RECORD_ITEM)
		return bad(p, HL_EINVAL, "%s %zu: %s's entry %llu is not an item", what, i + 1,
			   chain_name(p, *chain), (unsigned long long)*seq);
	return 0;
}

/* Notes where the elements of chain 1 begin in a section (contents or
 * attachments): element I, of COUNT, at OFF. */
static void note_chain1(uint64_t *off1, uint64_t *left1, bool *seen, unsigned chain, uint64_t off,
			uint32_t i, uint32_t count)
{
	if (chain == 1 && !*seen) {
		*seen = true;
		*off1 = off;
		*left1 = count - i;
	}
}

static int parse_contents(struct parser *p)
{
	struct hl_record *rec = p->rec;
	struct hl_record_priv *pv = rec->priv;
	uint8_t last_chain = 0;
	uint64_t last_seq = 0;
	bool seen1 = false;
	uint32_t count = hl_rrd_u32(&p->r);
	if (p->r.err)
		return bad(p, HL_ETRUNC, "contents: cut short before the count");
	if (count > HL_RECORD_MAX_CONTENTS || count > hl_rrd_left(&p->r) / MIN_CONTENT)
		return bad(p, HL_ETOOBIG, "contents: %u of them (at most %u, and the file is too "
			   "short for them)", count, HL_RECORD_MAX_CONTENTS);
	pv->contents_off[0] = p->r.off;
	pv->contents_left[0] = count;
	for (uint32_t i = 0; i < count; i++) {
		uint8_t chain;
		uint64_t seq, off = p->r.off;
		int ret = parse_ref(p, "content", i, &chain, &seq);
		if (ret < 0)
			return ret;
		if (i > 0 && (chain < last_chain || (chain == last_chain && seq <= last_seq)))
			return bad(p, HL_EINVAL, "content %u: out of order (by chain, then entry)",
				   i + 1);
		note_chain1(&pv->contents_off[1], &pv->contents_left[1], &seen1, chain, off, i, count);
		last_chain = chain;
		last_seq = seq;
		(void)hl_rrd_take(&p->r, HL_SALT_LEN);
		uint16_t subject_len = hl_rrd_u16(&p->r);
		if (!p->r.err && subject_len > HL_SUBJECT_MAX)
			return bad(p, HL_ETOOBIG, "content %u: subject of %u bytes (at most %d)",
				   i + 1, subject_len, HL_SUBJECT_MAX);
		(void)hl_rrd_take(&p->r, subject_len);
		uint32_t body_len = hl_rrd_u32(&p->r);
		if (!p->r.err && body_len > HL_BODY_MAX)
			return bad(p, HL_ETOOBIG, "content %u: body of %u bytes (at most %u)", i + 1,
				   body_len, HL_BODY_MAX);
		hl_rrd_skip(&p->r, body_len);
		if (p->r.err)
			return p->r.err != HL_ETRUNC ? io_bad(p, p->r.err)
				: bad(p, HL_ETRUNC, "content %u: cut short", i + 1);
		rec->ncontents = i + 1;
	}
	if (!seen1)
		pv->contents_off[1] = p->r.off;
	return 0;
}

static int parse_atts(struct parser *p)
{
	struct hl_record *rec = p->rec;
	struct hl_record_priv *pv = rec->priv;
	struct hl_record_content ct;
	hl_record_cursor *contents = NULL;
	uint8_t last_chain = 0, last_index = 0;
	uint64_t last_seq = 0;
	bool seen1 = false, disclosed = false;
	int ret;
	uint32_t count = hl_rrd_u32(&p->r);
	if (p->r.err)
		return bad(p, HL_ETRUNC, "attachments: cut short before the count");
	if (count > HL_RECORD_MAX_ATTACHMENTS || count > hl_rrd_left(&p->r) / MIN_ATT)
		return bad(p, HL_ETOOBIG, "attachments: %u of them (at most %u, and the file is "
			   "too short for them)", count, HL_RECORD_MAX_ATTACHMENTS);
	pv->atts_off[0] = p->r.off;
	pv->atts_left[0] = count;
	(void)hl_record_contents_open(rec, 0, &contents);
	for (uint32_t i = 0; i < count; i++) {
		uint8_t chain;
		uint64_t seq, off = p->r.off;
		if ((ret = parse_ref(p, "attachment", i, &chain, &seq)) < 0)
			goto out;
		uint8_t index = hl_rrd_u8(&p->r);
		uint64_t size = hl_rrd_u64(&p->r);
		if (p->r.err) {
			ret = bad(p, HL_ETRUNC, "attachment %u: cut short", i + 1);
			goto out;
		}
		if (index >= HL_MAX_ATTACHMENTS) {
			ret = bad(p, HL_EINVAL, "attachment %u: index %u (0 to %d)", i + 1, index,
				  HL_MAX_ATTACHMENTS - 1);
			goto out;
		}
		bool same = i > 0 && chain == last_chain && seq == last_seq;
		if (i > 0 && (chain < last_chain || (chain == last_chain && seq < last_seq) ||
			      (same && index <= last_index))) {
			ret = bad(p, HL_EINVAL, "attachment %u: out of order (by chain, entry, "
				  "then index)", i + 1);
			goto out;
		}
		note_chain1(&pv->atts_off[1], &pv->atts_left[1], &seen1, chain, off, i, count);
		last_chain = chain;
		last_seq = seq;
		last_index = index;
		/* Attachments go only with a disclosed message: withheld
		 * means nothing beyond the signed item. */
		if (!same) {
			if ((ret = hl_record_content_for(contents, chain, seq, &ct)) < 0) {
				ret = io_bad(p, ret);
				goto out;
			}
			disclosed = ret == 1;
		}
		if (!disclosed) {
			ret = bad(p, HL_EINVAL, "attachment %u: %s's entry %llu has no disclosed "
				  "content", i + 1, chain_name(p, chain), (unsigned long long)seq);
			goto out;
		}
		if (size > HL_RECORD_MAX_ATT_SIZE || size > hl_rrd_left(&p->r)) {
			ret = bad(p, HL_ETRUNC, "attachment %u: %llu bytes, more than the file holds",
				  i + 1, (unsigned long long)size);
			goto out;
		}
		hl_rrd_skip(&p->r, size);
		if (p->r.err) {
			ret = io_bad(p, p->r.err);
			goto out;
		}
		rec->natts = i + 1;
	}
	if (!seen1)
		pv->atts_off[1] = p->r.off;
	ret = 0;
out:
	hl_record_cursor_free(contents);
	return ret;
}

static int parse_evidence(struct parser *p)
{
	struct hl_record *rec = p->rec;
	uint32_t count = hl_rrd_u32(&p->r);
	if (p->r.err)
		return bad(p, HL_ETRUNC, "evidence: cut short before the count");
	if (count > HL_RECORD_MAX_EVIDENCE || count > hl_rrd_left(&p->r) / MIN_EVIDENCE)
		return bad(p, HL_ETOOBIG, "evidence: %u items (at most %d, and the file is too "
			   "short for them)", count, HL_RECORD_MAX_EVIDENCE);
	rec->priv->evidence_off = p->r.off;
	for (uint32_t i = 0; i < count; i++) {
		uint8_t chain = hl_rrd_u8(&p->r);
		uint16_t len = hl_rrd_u16(&p->r);
		if (!p->r.err && chain > 1)
			return bad(p, HL_EINVAL, "evidence %u: chain %u (0 or 1)", i + 1, chain);
		if (!p->r.err && (len == 0 || len > HL_ITEM_MAX))
			return bad(p, HL_EINVAL, "evidence %u: item of %u bytes (1 to %d)", i + 1,
				   len, HL_ITEM_MAX);
		(void)hl_rrd_take(&p->r, len);
		if (p->r.err)
			return p->r.err != HL_ETRUNC ? io_bad(p, p->r.err)
				: bad(p, HL_ETRUNC, "evidence %u: cut short", i + 1);
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
	struct hl_record_priv *pv = rec->priv;
	struct hl_record_content ct;
	hl_record_cursor *contents = NULL;
	uint8_t last_chain = 0;
	uint64_t last_seq = 0;
	bool seen1 = false;
	int ret = 0;
	uint32_t count = hl_rrd_u32(&p->r);
	if (p->r.err)
		return bad(p, HL_ETRUNC, "purged: cut short before the count");
	if (count > HL_RECORD_MAX_PURGED || count > hl_rrd_left(&p->r) / MIN_PURGED)
		return bad(p, HL_ETOOBIG, "purged: %u of them (at most %u, and the file is too "
			   "short for them)", count, HL_RECORD_MAX_PURGED);
	pv->purged_off[0] = p->r.off;
	pv->purged_left[0] = count;
	(void)hl_record_contents_open(rec, 0, &contents);
	for (uint32_t i = 0; i < count; i++) {
		uint8_t chain;
		uint64_t seq, off = p->r.off;
		if ((ret = parse_ref(p, "purged", i, &chain, &seq)) < 0)
			goto out;
		(void)hl_rrd_u64(&p->r);   /* purged_at: the exporter's claim */
		if (p->r.err) {
			ret = bad(p, HL_ETRUNC, "purged %u: cut short", i + 1);
			goto out;
		}
		if (i > 0 && (chain < last_chain || (chain == last_chain && seq <= last_seq))) {
			ret = bad(p, HL_EINVAL, "purged %u: out of order (by chain, then entry)", i + 1);
			goto out;
		}
		note_chain1(&pv->purged_off[1], &pv->purged_left[1], &seen1, chain, off, i, count);
		last_chain = chain;
		last_seq = seq;
		if ((ret = hl_record_content_for(contents, chain, seq, &ct)) < 0) {
			ret = io_bad(p, ret);
			goto out;
		}
		if (ret == 1) {
			ret = bad(p, HL_EINVAL, "purged %u: %s's entry %llu is disclosed in the record",
				  i + 1, chain_name(p, chain), (unsigned long long)seq);
			goto out;
		}
		rec->npurged = i + 1;
	}
	if (!seen1)
		pv->purged_off[1] = p->r.off;
	ret = 0;
out:
	hl_record_cursor_free(contents);
	return ret;
}

/* The whole parse, over P->rec's source. */
static int parse(struct parser *p)
{
	int ret;
	if ((ret = parse_header(p)) < 0 || (ret = parse_cards(p)) < 0 ||
	    (ret = parse_chain(p, 0)) < 0 || (ret = parse_chain(p, 1)) < 0 ||
	    (ret = parse_contents(p)) < 0 || (ret = parse_atts(p)) < 0 ||
	    (ret = parse_evidence(p)) < 0 ||
	    (p->rec->version == HL_RECORD_VERSION_PURGED && (ret = parse_purged(p)) < 0))
		return ret;
	uint64_t left = hl_rrd_left(&p->r);
	if (left != HL_RECORD_SIG_LEN)
		return left < HL_RECORD_SIG_LEN
			       ? bad(p, HL_ETRUNC, "the seal is missing or cut short")
			       : bad(p, HL_EINVAL, "%llu unexpected bytes before the seal",
				     (unsigned long long)(left - HL_RECORD_SIG_LEN));
	p->rec->signed_len = p->r.off;
	crypto_generichash_final(&p->hs, p->rec->signed_hash, HL_HASH_LEN);
	p->r.hs = NULL;
	hl_rrd_bytes(&p->r, p->rec->sig, HL_RECORD_SIG_LEN);
	return p->r.err ? io_bad(p, p->r.err) : 0;
}

static int parse_source(struct hl_record_priv *priv, struct hl_record **out, char *why,
			size_t whylen)
{
	struct parser p = { .why = why, .whylen = whylen };
	int ret;
	*out = NULL;
	if (whylen)
		why[0] = '\0';
	p.rec = xcalloc(1, sizeof(*p.rec));
	p.rec->priv = priv;
	p.rec->len = priv->src.len;
	crypto_generichash_init(&p.hs, NULL, 0, HL_HASH_LEN);
	hl_rrd_init(&p.r, &priv->src, 0);
	p.r.hs = &p.hs;
	if ((ret = parse(&p)) == 0) {
		*out = p.rec;
		p.rec = NULL;
	}
	hl_rrd_free(&p.r);
	hl_record_free(p.rec);
	return ret;
}

int hl_record_parse(const uint8_t *buf, size_t len, struct hl_record **out,
		    char *why, size_t whylen)
{
	return parse_source(hl_record_priv_new(-1, buf, len), out, why, whylen);
}

int hl_record_open(int fd, struct hl_record **out, char *why, size_t whylen)
{
	struct stat st;
	*out = NULL;
	if (fstat(fd, &st) < 0) {
		snprintf(why, whylen, "%s", strerror(errno));
		return -errno;
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(why, whylen, "not a regular file");
		return HL_EINVAL;
	}
	int copy = fcntl(fd, F_DUPFD_CLOEXEC, 0);
	if (copy < 0) {
		snprintf(why, whylen, "%s", strerror(errno));
		return -errno;
	}
	struct hl_record_priv *priv = hl_record_priv_new(copy, NULL, (uint64_t)st.st_size);
	priv->st = st;
	return parse_source(priv, out, why, whylen);
}

int hl_record_unchanged(const struct hl_record *rec)
{
	const struct hl_record_priv *p = rec->priv;
	struct stat st;
	if (p->src.fd < 0)
		return 0;
	if (fstat(p->src.fd, &st) < 0 || st.st_size != p->st.st_size || st.st_ino != p->st.st_ino ||
	    st.st_dev != p->st.st_dev || st.st_ctim.tv_sec != p->st.st_ctim.tv_sec ||
	    st.st_ctim.tv_nsec != p->st.st_ctim.tv_nsec)
		return HL_ESTATE;
	return 0;
}

void hl_record_free(struct hl_record *rec)
{
	if (!rec)
		return;
	hl_record_priv_free(rec->priv);
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

int hl_record_write_seal(struct hl_record_writer *w, const hl_signer *signer)
{
	uint8_t h[HL_HASH_LEN], msg[HL_RECORD_SEAL_MSG_LEN], sig[HL_RECORD_SIG_LEN];
	/* Version 1 has no purged section. */
	if (!w->err && w->version == HL_RECORD_VERSION && w->section == W_PURGED_COUNT)
		w->section = W_SEAL;
	if (expect(w, W_SEAL) < 0)
		return w->err;
	crypto_generichash_final(&w->hs, h, HL_HASH_LEN);
	hl_record_seal_msg(h, msg);
	int ret = hl_signer_sign(signer, HL_RECORD_SEAL_CTX, msg, sizeof(msg), sig);
	if (ret < 0)
		return fail(w, ret);
	/* The signature is not part of what it signs. */
	ret = w->sink(w->arg, sig, sizeof(sig));
	if (ret < 0)
		return fail(w, ret);
	w->written += sizeof(sig);
	w->section = W_DONE;
	return 0;
}

int hl_record_reseal(uint8_t *buf, size_t len, const hl_signer *signer)
{
	uint8_t h[HL_HASH_LEN], msg[HL_RECORD_SEAL_MSG_LEN];
	if (len < HL_RECORD_SIG_LEN)
		return HL_ETRUNC;
	crypto_generichash(h, HL_HASH_LEN, buf, len - HL_RECORD_SIG_LEN, NULL, 0);
	hl_record_seal_msg(h, msg);
	return hl_signer_sign(signer, HL_RECORD_SEAL_CTX, msg, sizeof(msg),
			      buf + len - HL_RECORD_SIG_LEN);
}
