/* record/verify.c — the record's verifier (verify.h, docs/record.md). */
#include "record/verify.h"

#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "deliver/records.h"
#include "msg/item.h"
#include "record/kinds.h"
#include "util/err.h"
#include "util/mem.h"
#include "util/text.h"
#include "util/timefmt.h"

struct vctx {
	const struct hl_record *rec;
	const uint8_t *key[2];          /* SigningKeys by chain, from the cards given */
	const char *name[2];            /* names by chain, from the cards given */
	hl_record_note_fn note;
	void *arg;
	struct hl_record_verdict *v;
	struct hl_item *it;
};

static int failv(struct vctx *x, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int failv(struct vctx *x, int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(x->v->why, sizeof(x->v->why), fmt, ap);
	va_end(ap);
	return code;
}

static void notef(struct vctx *x, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void notef(struct vctx *x, const char *fmt, ...)
{
	char line[512];
	va_list ap;
	if (!x->note)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	x->note(x->arg, line);
}

static void short_hash(const uint8_t *h, char out[17])
{
	hl_hex(h, 8, out);
}

static bool same_keys(const hl_card *x, const hl_card *y)
{
	return memcmp(x->noise_key, y->noise_key, HL_KEY_LEN) == 0 &&
	       memcmp(x->signing_key, y->signing_key, HL_KEY_LEN) == 0;
}

static int match_cards(struct vctx *x, const hl_card *a, const hl_card *b)
{
	const struct hl_record *rec = x->rec;
	if (memcmp(a->signing_key, b->signing_key, HL_KEY_LEN) == 0)
		return failv(x, HL_EPEER, "the two cards given are the same station (%s)", a->name);
	const hl_card *by_chain[2];
	if (same_keys(&rec->card[0], a) && same_keys(&rec->card[1], b)) {
		by_chain[0] = a;
		by_chain[1] = b;
		x->v->exporter = 0;
	} else if (same_keys(&rec->card[0], b) && same_keys(&rec->card[1], a)) {
		by_chain[0] = b;
		by_chain[1] = a;
		x->v->exporter = 1;
	} else {
		for (unsigned c = 0; c < 2; c++)
			if (!same_keys(&rec->card[c], a) && !same_keys(&rec->card[c], b))
				return failv(x, HL_EPEER, "the record's card %u (\"%s\") has keys that "
					     "match neither card given (%s, %s)", c,
					     rec->card[c].name, a->name, b->name);
		return failv(x, HL_EPEER, "the cards given do not match the record's two stations");
	}
	for (unsigned c = 0; c < 2; c++) {
		x->key[c] = by_chain[c]->signing_key;
		x->name[c] = by_chain[c]->name;
	}
	return 0;
}

/* Why hl_item_open refused an item, for people. */
static int item_error(struct vctx *x, int ret, const char *where, const uint8_t *item,
		      size_t len, unsigned chain)
{
	switch (ret) {
	case HL_EUNSUPP: {
		/* The context string names the kind; show it, made safe. */
		char ctx[64 * 3 + 1];
		const uint8_t *nul = memchr(item, 0, len < 64 ? len : 64);
		hl_sanitize((const char *)item, nul ? (size_t)(nul - item) : (len < 64 ? len : 64),
			    ctx, sizeof(ctx), 0);
		return failv(x, HL_EUNSUPP, "%s: an item of a kind this hotline does not know "
			     "(\"%s\")", where, ctx);
	}
	case HL_EPEER:
		return failv(x, HL_EAUTH, "%s: not an item of %s for %s", where, x->name[chain],
			     x->name[1 - chain]);
	case HL_EAUTH:
		return failv(x, HL_EAUTH, "%s: the signature does not verify with %s's SigningKey",
			     where, x->name[chain]);
	default:
		return failv(x, HL_EAUTH, "%s: malformed item (%s)", where, hl_strerror(ret));
	}
}

static void note_refused(struct vctx *x, unsigned c, uint64_t k)
{
	const struct hl_record *rec = x->rec;
	const struct hl_record_entry *e = &rec->entries[c][k - 1];
	char h[17];
	short_hash(e->hash, h);
	notef(x, "%s's entry %llu: refused by %s (code %u, %s); its bytes are not in the "
	      "record, so its signature cannot be checked (hash %s...%s)", x->name[c],
	      (unsigned long long)k, x->name[1 - c], e->code, hl_refuse_code_str(e->code), h,
	      k < rec->n[c] && rec->entries[c][k].type == HL_RECORD_ITEM
		      ? "; the next entry's link covers that hash" : "");
}

/* One note for every purge (a record may hold thousands): how many, when. */
static void note_purged(struct vctx *x)
{
	const struct hl_record *rec = x->rec;
	uint64_t first = UINT64_MAX, last = 0;
	char a[HL_RFC3339_LEN], b[HL_RFC3339_LEN];
	if (rec->npurged == 0)
		return;
	for (size_t i = 0; i < rec->npurged; i++) {
		first = rec->purged[i].purged_at < first ? rec->purged[i].purged_at : first;
		last = rec->purged[i].purged_at > last ? rec->purged[i].purged_at : last;
	}
	hl_rfc3339((int64_t)(first > INT64_MAX ? INT64_MAX : first), a);
	hl_rfc3339((int64_t)(last > INT64_MAX ? INT64_MAX : last), b);
	notef(x, "%zu message(s): contents purged by %s under its retention (%s%s%s, its clock); "
	      "their signed items are here and checked (sizes, hashes, attachment names), their "
	      "texts and files are gone", rec->npurged, x->name[0], a, first == last ? "" : " to ",
	      first == last ? "" : b);
}

/* One item: the generic checks, then its kind's.  Returns 0, a negative
 * code (a failure, in why), or HL_RECORD_BAD_CROSS (in CROSS_WHY). */
static int check_item(struct vctx *x, unsigned c, uint64_t k,
		      struct hl_record_chain_state *state, char *cross_why, size_t cross_len)
{
	const struct hl_record *rec = x->rec;
	const struct hl_record_entry *e = &rec->entries[c][k - 1];
	struct hl_item *it = x->it;
	char where[96], h1[17], h2[17];
	snprintf(where, sizeof(where), "%s's entry %llu", x->name[c], (unsigned long long)k);

	int ret = hl_item_open(e->item, e->len, x->key[c], x->key[1 - c], it);
	if (ret < 0)
		return item_error(x, ret, where, e->item, e->len, c);
	if (it->seq != k)
		return failv(x, HL_EAUTH, "%s: the item says it is number %llu of its chain",
			     where, (unsigned long long)it->seq);
	if (k > 1) {
		const struct hl_record_entry *p = &rec->entries[c][k - 2];
		if (p->type != HL_RECORD_ABSENT &&
		    sodium_memcmp(it->prev, p->hash, HL_HASH_LEN) != 0) {
			short_hash(it->prev, h1);
			short_hash(p->hash, h2);
			return failv(x, HL_EAUTH, "%s: does not link to entry %llu (its prev is %s..., "
				     "entry %llu's hash is %s...)", where, (unsigned long long)(k - 1),
				     h1, (unsigned long long)(k - 1), h2);
		}
	}
	const struct hl_record_kind *kind = hl_record_kind_find(it->kind);
	if (!kind)
		return failv(x, HL_EUNSUPP, "%s: an item of kind %d, which this hotline cannot "
			     "check", where, (int)it->kind);
	snprintf(where, sizeof(where), "%s's entry %llu (%s)", x->name[c],
		 (unsigned long long)k, kind->name);
	if (e->content >= 0 && !kind->has_content)
		return failv(x, HL_EAUTH, "%s: contents are given for it, but a %s has none",
			     where, kind->name);
	if (e->purged >= 0 && !kind->has_content)
		return failv(x, HL_EAUTH, "%s: the record says its contents were purged, but a %s "
			     "has none", where, kind->name);
	if (kind->has_content) {
		if (e->content >= 0)
			x->v->disclosed++;
		else
			x->v->withheld++;
		if (e->purged >= 0)
			x->v->purged++;
	}
	char why[512] = "";
	struct hl_record_check chk = {
		.rec = rec, .chain = c, .seq = k, .entry = e, .it = it, .state = state,
		.name = { x->name[0], x->name[1] }, .why = why, .whylen = sizeof(why),
	};
	ret = kind->check ? kind->check(&chk) : HL_RECORD_CHECK_OK;
	if (ret == HL_RECORD_BAD_SELF)
		return failv(x, HL_EAUTH, "%s: %s", where, why);
	if (ret == HL_RECORD_BAD_CROSS) {
		snprintf(cross_why, cross_len, "%s: %s", where, why);
		return HL_RECORD_BAD_CROSS;
	}
	x->v->items[c]++;
	return 0;
}

/* Both chains in file order.  A failed reference into the other chain is
 * kept while the pass goes on, so that when an item was altered the
 * report names that item (its signature fails) rather than an earlier
 * receipt whose reference to it no longer matches. */
static int check_chains(struct vctx *x)
{
	const struct hl_record *rec = x->rec;
	struct hl_record_chain_state state[2];
	char cross_why[sizeof(x->v->why)] = "";
	bool cross = false;
	memset(state, 0, sizeof(state));
	for (unsigned c = 0; c < 2; c++) {
		for (uint64_t k = 1; k <= rec->n[c]; k++) {
			const struct hl_record_entry *e = &rec->entries[c][k - 1];
			if (e->type == HL_RECORD_REFUSED) {
				x->v->refused[c]++;
				note_refused(x, c, k);
				continue;
			}
			if (e->type == HL_RECORD_ABSENT) {
				uint64_t end = k;
				while (end < rec->n[c] && rec->entries[c][end].type == HL_RECORD_ABSENT)
					end++;
				x->v->absent[c] += end - k + 1;
				if (end == k)
					notef(x, "%s's entry %llu: not received by %s when it exported; "
					      "nothing to check", x->name[c], (unsigned long long)k,
					      x->name[1 - c]);
				else
					notef(x, "%s's entries %llu-%llu: not received by %s when it "
					      "exported; nothing to check", x->name[c],
					      (unsigned long long)k, (unsigned long long)end,
					      x->name[1 - c]);
				k = end;
				continue;
			}
			char why[sizeof(cross_why)];
			int ret = check_item(x, c, k, &state[c], why, sizeof(why));
			if (ret < 0)
				return ret;
			if (ret == HL_RECORD_BAD_CROSS && !cross) {
				memcpy(cross_why, why, sizeof(why));
				cross = true;
			}
		}
	}
	if (cross) {
		snprintf(x->v->why, sizeof(x->v->why), "%s", cross_why);
		return HL_EAUTH;
	}
	note_purged(x);
	return 0;
}

static int check_evidence(struct vctx *x)
{
	const struct hl_record *rec = x->rec;
	char where[64], h1[17], h2[17];
	for (size_t i = 0; i < rec->nevidence; i++) {
		const struct hl_record_evidence *ev = &rec->evidence[i];
		unsigned c = ev->chain;
		snprintf(where, sizeof(where), "evidence %zu", i + 1);
		int ret = hl_item_open(ev->item, ev->len, x->key[c], x->key[1 - c], x->it);
		if (ret < 0)
			return item_error(x, ret, where, ev->item, ev->len, c);
		uint64_t k = x->it->seq;
		if (k > rec->n[c])
			return failv(x, HL_EAUTH, "%s: %s's item number %llu, beyond the %zu entries "
				     "of its chain in the record", where, x->name[c],
				     (unsigned long long)k, rec->n[c]);
		const struct hl_record_entry *e = &rec->entries[c][k - 1];
		/* A refused position's hash is the author's only through the
		 * link of the item after it. */
		bool comparable = e->type == HL_RECORD_ITEM ||
				  (e->type == HL_RECORD_REFUSED && k < rec->n[c] &&
				   rec->entries[c][k].type == HL_RECORD_ITEM);
		if (!comparable)
			return failv(x, HL_EAUTH, "%s: %s's entry %llu cannot be compared with it",
				     where, x->name[c], (unsigned long long)k);
		if (sodium_memcmp(e->hash, ev->hash, HL_HASH_LEN) == 0)
			return failv(x, HL_EAUTH, "%s: the same item as %s's entry %llu", where,
				     x->name[c], (unsigned long long)k);
		x->v->equivocations++;
		short_hash(e->hash, h1);
		short_hash(ev->hash, h2);
		notef(x, "EQUIVOCATION: %s signed two different items as number %llu of its chain "
		      "(hash %s... in the chain, hash %s... in evidence %zu)", x->name[c],
		      (unsigned long long)k, h1, h2, i + 1);
	}
	return 0;
}

static int check_seal(struct vctx *x)
{
	const struct hl_record *rec = x->rec;
	uint8_t h[HL_HASH_LEN], msg[HL_RECORD_SEAL_MSG_LEN];
	crypto_generichash(h, HL_HASH_LEN, rec->buf, rec->signed_len, NULL, 0);
	hl_record_seal_msg(h, msg);
	if (crypto_sign_verify_detached(rec->sig, msg, sizeof(msg), x->key[0]) != 0)
		return failv(x, HL_EAUTH, "the seal does not verify with %s's SigningKey: the file "
			     "was changed after %s exported it, or %s did not export it",
			     x->name[0], x->name[0], x->name[0]);
	return 0;
}

int hl_record_verify(const struct hl_record *rec, const hl_card *a, const hl_card *b,
		     hl_record_note_fn note, void *arg, struct hl_record_verdict *v)
{
	struct vctx x = { .rec = rec, .note = note, .arg = arg, .v = v };
	int ret;
	memset(v, 0, sizeof(*v));
	if ((ret = match_cards(&x, a, b)) < 0)
		return ret;
	v->attachments = rec->natts;
	x.it = xmalloc(sizeof(*x.it));
	if ((ret = check_chains(&x)) == 0 && (ret = check_evidence(&x)) == 0)
		ret = check_seal(&x);
	free(x.it);
	return ret;
}
