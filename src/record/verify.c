/* record/verify.c — the record's verifier (verify.h, docs/record.md).
 *
 * The signatures of the chains' items, nine tenths of the work, are
 * checked ahead of the rules, on every core (util/pfor.h): the chain's
 * cursor is read a batch at a time (at most BATCH_ENTRIES entries and
 * BATCH_BYTES of items, so memory stays bounded whatever the record), the
 * batch's signatures are checked in parallel, and the pass over the chain
 * then takes each item's verdict, in order, as hl_item_open would have
 * given it, so the report is the same as one thread's.
 *
 * Keys (docs/rotation.md).  Each chain starts with the keys of its
 * station's card; a rotation item that the chain rules accept
 * (hl_chain_rotation) moves them, and each later item is checked with
 * the new SigningKey.  A batch's signatures are checked with the key
 * current when it was read; an item after a rotation in the same batch is
 * checked again, with its key.  The positions of chain 1's rotations are
 * kept (at most HL_CHAIN_MAX_ROTATIONS), for the evidence; the seal is
 * checked with chain 0's key at its end. */
#include "record/verify.h"

#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wire/msgproto.h"
#include "msg/item.h"
#include "chain/accept.h"
#include "record/kinds.h"
#include "util/err.h"
#include "util/mem.h"
#include "util/pfor.h"
#include "util/text.h"
#include "util/timefmt.h"

struct batch;

/* Where a chain's keys changed: its rotations, in order. */
struct rotations {
	uint64_t seq[HL_CHAIN_MAX_ROTATIONS];
	uint8_t sign[HL_CHAIN_MAX_ROTATIONS][32];
	size_t n;
};

struct vctx {
	const struct hl_record *rec;
	const uint8_t *key[2];          /* SigningKeys by chain, from the cards given:
					 * the stations' names in the items */
	struct hl_chain_keys card[2];   /* by chain: the keys of the cards given */
	struct hl_chain_keys keys[2];   /* by chain: its keys at the entry being read */
	struct rotations *rot[2];
	const char *name[2];            /* names by chain, from the cards given */
	hl_record_note_fn note;
	void *arg;
	struct hl_record_verdict *v;
	struct hl_item *it;
	hl_record_cursor *contents, *atts;   /* in step with the chains (file order) */
	struct hl_item *scratch;        /* another entry, decoded */
	hl_record_cursor *purged;       /* version 2: in step with the chains */
	uint64_t purged_first, purged_last;  /* the purges' times, for one note */
	struct batch *ahead;            /* the chain's entries read ahead, signatures checked */
};

/* ---- a chain read ahead, its signatures checked on every core ---- */

#define BATCH_ENTRIES HL_RECORD_VERIFY_BATCH
#define BATCH_BYTES (1024u * 1024)   /* items' bytes; a whole item always fits */

uint32_t hl_record_verify_batch = BATCH_ENTRIES;

struct batch {
	hl_record_cursor *cur;
	const uint8_t *key;             /* the chain's SigningKey now (vctx.keys) */
	uint8_t filled_key[32];         /* ... when the batch was read */
	struct hl_record_entry e[BATCH_ENTRIES];
	uint32_t at[BATCH_ENTRIES];     /* where each ITEM's bytes are in BYTES */
	bool sig_ok[BATCH_ENTRIES];
	uint8_t *bytes;                 /* BATCH_BYTES */
	size_t n, next;
	int end;                        /* the cursor's last answer once it stopped: 0, < 0 */
	bool stopped;
};

static void batch_open(struct batch *b, const struct hl_record *rec, unsigned c,
		       const uint8_t *key)
{
	(void)hl_record_chain_open(rec, c, &b->cur);
	b->key = key;
	b->n = b->next = 0;
	b->end = 0;
	b->stopped = false;
}

static void batch_sig(void *arg, size_t i)
{
	struct batch *b = arg;
	const struct hl_record_entry *e = &b->e[i];
	b->sig_ok[i] = e->type == HL_RECORD_ITEM &&
		       hl_item_sig_ok(b->bytes + b->at[i], e->len, b->filled_key);
}

/* Reads the next entries from the cursor and checks their signatures. */
static void batch_fill(struct batch *b)
{
	size_t used = 0, most = hl_record_verify_batch;
	const uint8_t *item;
	if (most < 1 || most > BATCH_ENTRIES)
		most = BATCH_ENTRIES;
	b->n = b->next = 0;
	memcpy(b->filled_key, b->key, 32);
	while (b->n < most && used + HL_ITEM_MAX <= BATCH_BYTES) {
		struct hl_record_entry *e = &b->e[b->n];
		int ret = hl_record_chain_next(b->cur, e, &item);
		if (ret == 1 && e->type == HL_RECORD_ITEM && e->len > HL_ITEM_MAX)
			ret = HL_EINVAL;   /* the parser refused such a record: it changed */
		if (ret != 1) {
			b->end = ret;
			b->stopped = true;
			break;
		}
		b->at[b->n] = (uint32_t)used;
		if (e->type == HL_RECORD_ITEM) {
			memcpy(b->bytes + used, item, e->len);
			used += e->len;
		}
		b->n++;
	}
	hl_pfor(b->n, batch_sig, b);
}

/* As hl_record_chain_next, with the item's signature verdict. */
static int batch_next(struct batch *b, struct hl_record_entry *e, const uint8_t **item,
		      bool *sig_ok)
{
	if (b->next == b->n) {
		if (b->stopped)
			return b->end;
		batch_fill(b);
		if (b->n == 0)
			return b->end;
	}
	size_t i = b->next++;
	*e = b->e[i];
	*item = b->bytes + b->at[i];
	*sig_ok = b->sig_ok[i];
	/* a rotation earlier in this batch changed the chain's key */
	if (e->type == HL_RECORD_ITEM && sodium_memcmp(b->filled_key, b->key, 32) != 0)
		*sig_ok = hl_item_sig_ok(*item, e->len, b->key);
	return 1;
}

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

/* The same keys, and the same commitment to next keys (or none). */
static bool same_keys(const hl_card *x, const hl_card *y)
{
	return memcmp(x->noise_key, y->noise_key, HL_KEY_LEN) == 0 &&
	       memcmp(x->signing_key, y->signing_key, HL_KEY_LEN) == 0 &&
	       x->has_next == y->has_next &&
	       (!x->has_next || memcmp(x->next_hash, y->next_hash, HL_KEY_LEN) == 0);
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
		const hl_card *k = by_chain[c];
		x->key[c] = k->signing_key;
		x->name[c] = k->name;
		hl_chain_keys_init(&x->card[c], k->noise_key, k->signing_key,
				   k->has_next ? k->next_hash : NULL);
		x->keys[c] = x->card[c];
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
		if (x->it->kind == HL_ITEM_ROTATION && x->it->bad)
			return failv(x, HL_EAUTH, "%s: %s", where, x->it->bad);
		if (x->rot[chain]->n)
			return failv(x, HL_EAUTH, "%s: the signature does not verify with %s's "
				     "SigningKey since its rotation at entry %llu", where,
				     x->name[chain],
				     (unsigned long long)x->rot[chain]->seq[x->rot[chain]->n - 1]);
		return failv(x, HL_EAUTH, "%s: the signature does not verify with %s's SigningKey",
			     where, x->name[chain]);
	default:
		/* the decoder names the rule broken (docs/items.md) */
		return failv(x, HL_EAUTH, "%s: malformed item: %s", where,
			     x->it->bad ? x->it->bad : hl_strerror(ret));
	}
}

/* A failure to read the file (I/O, or it changed under us). */
static int read_failed(struct vctx *x, int ret)
{
	return failv(x, ret, "cannot read the record: %s", hl_strerror(ret));
}

static int note_refused(struct vctx *x, unsigned c, uint64_t k, const struct hl_record_entry *e)
{
	const struct hl_record *rec = x->rec;
	struct hl_record_entry next = { 0 };
	char h[17];
	int ret = k < rec->n[c] ? hl_record_entry_get(rec, c, k + 1, &next) : 0;
	if (ret < 0)
		return read_failed(x, ret);
	short_hash(e->hash, h);
	notef(x, "%s's entry %llu: refused by %s (code %u, %s); its bytes are not in the "
	      "record, so its signature cannot be checked (hash %s...%s)", x->name[c],
	      (unsigned long long)k, x->name[1 - c], e->code, hl_refuse_code_str(e->code), h,
	      k < rec->n[c] && next.type == HL_RECORD_ITEM
		      ? "; the next entry's link covers that hash" : "");
	return 0;
}

/* The rules' texts name the stations (chain C is the item's). */
static void why_names(const struct vctx *x, unsigned c, struct hl_chain_why *w)
{
	hl_record_why_init(w, x->name[c], x->name[1 - c]);
}

/* Entry E (at a position before the one being checked) as the chain rules
 * see a neighbour: links compare hashes only. */
static void ref_of(const struct hl_record_entry *e, struct hl_chain_ref *ref)
{
	memset(ref, 0, sizeof(*ref));
	if (e->type == 0 || e->type == HL_RECORD_ABSENT)
		return;
	ref->held = true;
	ref->item = e->type == HL_RECORD_ITEM;
	memcpy(ref->hash, e->hash, HL_HASH_LEN);
}

/* One note for every purge (a record may hold thousands): how many, when. */
static void note_purged(struct vctx *x)
{
	uint64_t first = x->purged_first, last = x->purged_last;
	char a[HL_RFC3339_LEN], b[HL_RFC3339_LEN];
	if (x->v->purged == 0)
		return;
	hl_rfc3339((int64_t)(first > INT64_MAX ? INT64_MAX : first), a);
	hl_rfc3339((int64_t)(last > INT64_MAX ? INT64_MAX : last), b);
	notef(x, "%zu message(s): contents purged by %s under its retention (%s%s%s, its clock); "
	      "their signed items are here and checked (sizes, hashes, attachment names), their "
	      "texts and files are gone", x->v->purged, x->name[0], a, first == last ? "" : " to ",
	      first == last ? "" : b);
}

/* The rotation IT at position K of chain C (WHERE names it): the chain
 * rules, then its keys are the chain's. */
static int take_rotation(struct vctx *x, unsigned c, uint64_t k, const struct hl_item *it,
			 const char *where)
{
	struct hl_chain_why w;
	struct rotations *r = x->rot[c];
	why_names(x, c, &w);
	if (hl_chain_rotation(it, &x->keys[c], &x->card[1 - c], &w) != HL_CHAIN_OK)
		return failv(x, HL_EAUTH, "%s: %s", where, w.text);
	if (r->n == HL_CHAIN_MAX_ROTATIONS)
		return failv(x, HL_EAUTH, "%s: more than %u rotations in one chain", where,
			     (unsigned)HL_CHAIN_MAX_ROTATIONS);
	r->seq[r->n] = k;
	memcpy(r->sign[r->n++], it->u.rot.signing_key, 32);
	hl_chain_keys_after(it, &x->keys[c]);
	uint8_t fp[HL_FP_LEN];
	char text[HL_FP_TEXT_LEN];
	hl_fingerprint_next(x->keys[c].noise, x->keys[c].sign, x->keys[c].next_hash, fp);
	hl_fingerprint_text(fp, text);
	notef(x, "%s's entry %llu: %s rotated its keys%s; from here on its items are signed with "
	      "the new key (fingerprint %s)", x->name[c], (unsigned long long)k, x->name[c],
	      it->u.rot.reason == HL_ROTATE_COMPROMISE ? " (compromise suspected)" : "", text);
	return 0;
}

/* Chain C's SigningKey at position K: its card's, or its last rotation's
 * before K. */
static const uint8_t *key_at(const struct vctx *x, unsigned c, uint64_t k)
{
	const struct rotations *r = x->rot[c];
	for (size_t i = r->n; i > 0; i--)
		if (r->seq[i - 1] < k)
			return r->sign[i - 1];
	return x->card[c].sign;
}

/* One item (entry E at position K of chain C, its bytes ITEM, SIG_OK
 * whether its signature verifies, after entry PREV): the generic checks,
 * then its kind's.  Returns 0, a negative code (a failure, in why), or
 * HL_RECORD_BAD_CROSS (in CROSS_WHY). */
static int check_item(struct vctx *x, unsigned c, uint64_t k, const struct hl_record_entry *e,
		      const uint8_t *item, bool sig_ok, const struct hl_record_entry *prev,
		      struct hl_record_chain_state *state, char *cross_why, size_t cross_len)
{
	const struct hl_record *rec = x->rec;
	struct hl_item *it = x->it;
	struct hl_record_content ct;
	char where[96];
	snprintf(where, sizeof(where), "%s's entry %llu", x->name[c], (unsigned long long)k);

	int ret = hl_item_open_with_verdict(item, e->len, x->key[c], x->key[1 - c], sig_ok, it);
	if (ret < 0)
		return item_error(x, ret, where, item, e->len, c);
	if (it->seq != k)
		return failv(x, HL_EAUTH, "%s: the item says it is number %llu of its chain",
			     where, (unsigned long long)it->seq);
	struct hl_chain_ref before;
	struct hl_chain_why w;
	why_names(x, c, &w);
	ref_of(prev, &before);
	if (hl_chain_links(it, e->hash, &before, NULL, &w) != HL_CHAIN_OK)
		return failv(x, HL_EAUTH, "%s: %s", where, w.text);
	const struct hl_record_kind *kind = hl_record_kind_find(it->kind);
	if (!kind)
		return failv(x, HL_EUNSUPP, "%s: an item of kind %d, which this hotline cannot "
			     "check", where, (int)it->kind);
	snprintf(where, sizeof(where), "%s's entry %llu (%s)", x->name[c],
		 (unsigned long long)k, kind->name);
	if (it->kind == HL_ITEM_ROTATION && (ret = take_rotation(x, c, k, it, where)) < 0)
		return ret;
	if ((ret = hl_record_content_for(x->contents, c, k, &ct)) < 0)
		return read_failed(x, ret);
	bool disclosed = ret == 1;
	if (disclosed && !kind->has_content)
		return failv(x, HL_EAUTH, "%s: contents are given for it, but a %s has none",
			     where, kind->name);
	struct hl_record_purged pg;
	if ((ret = hl_record_purged_for(x->purged, c, k, &pg)) < 0)
		return read_failed(x, ret);
	bool purged = ret == 1;
	if (purged && !kind->has_content)
		return failv(x, HL_EAUTH, "%s: the record says its contents were purged, but a %s "
			     "has none", where, kind->name);
	if (kind->has_content) {
		if (disclosed)
			x->v->disclosed++;
		else
			x->v->withheld++;
		if (purged) {
			x->v->purged++;
			if (pg.purged_at < x->purged_first)
				x->purged_first = pg.purged_at;
			if (pg.purged_at > x->purged_last)
				x->purged_last = pg.purged_at;
		}
	}
	char why[512] = "";
	struct hl_record_verify_ctx chk = {
		.rec = rec, .chain = c, .seq = k, .entry = e, .content = disclosed ? &ct : NULL,
		.atts = x->atts, .it = it, .state = state, .scratch = x->scratch,
		.name = { x->name[0], x->name[1] }, .why = why, .whylen = sizeof(why),
	};
	ret = kind->verify ? kind->verify(&chk) : HL_RECORD_VERIFIED;
	if (ret == HL_RECORD_BAD_SELF)
		return failv(x, HL_EAUTH, "%s: %s", where, why);
	if (ret == HL_RECORD_BAD_CROSS) {
		snprintf(cross_why, cross_len, "%s: %s", where, why);
		return HL_RECORD_BAD_CROSS;
	}
	x->v->items[c]++;
	return 0;
}

/* A run of ABSENT entries from K to END: counted, and one note. */
static void note_absent(struct vctx *x, unsigned c, uint64_t k, uint64_t end)
{
	x->v->absent[c] += end - k + 1;
	if (end == k)
		notef(x, "%s's entry %llu: not received by %s when it exported; nothing to check",
		      x->name[c], (unsigned long long)k, x->name[1 - c]);
	else
		notef(x, "%s's entries %llu-%llu: not received by %s when it exported; nothing to "
		      "check", x->name[c], (unsigned long long)k, (unsigned long long)end,
		      x->name[1 - c]);
}

/* Both chains in file order, read through one cursor each.  A failed
 * reference into the other chain is kept while the pass goes on, so that
 * when an item was altered the report names that item (its signature
 * fails) rather than an earlier receipt whose reference to it no longer
 * matches. */
static int check_chains(struct vctx *x)
{
	const struct hl_record *rec = x->rec;
	struct hl_record_chain_state state[2];
	char cross_why[sizeof(x->v->why)] = "";
	bool cross = false;
	int ret = 0;
	memset(state, 0, sizeof(state));
	/* receipts: which of the other chain's positions were acknowledged
	 * (one bit each: 2 MiB for the largest record) */
	for (unsigned c = 0; c < 2; c++)
		state[c].acked = xcalloc(rec->n[1 - c] / 8 + 1, 1);
	for (unsigned c = 0; c < 2 && ret >= 0; c++) {
		struct hl_record_entry e, prev = { 0 };
		const uint8_t *item = NULL;
		bool sig_ok = false;
		uint64_t k = 0, absent_from = 0;
		batch_open(x->ahead, rec, c, x->keys[c].sign);
		while ((ret = batch_next(x->ahead, &e, &item, &sig_ok)) == 1) {
			k++;
			if (e.type != HL_RECORD_ABSENT && absent_from) {
				note_absent(x, c, absent_from, k - 1);
				absent_from = 0;
			}
			if (e.type == HL_RECORD_REFUSED) {
				x->v->refused[c]++;
				ret = note_refused(x, c, k, &e);
			} else if (e.type == HL_RECORD_ABSENT) {
				if (!absent_from)
					absent_from = k;
			} else {
				char why[sizeof(cross_why)];
				ret = check_item(x, c, k, &e, item, sig_ok, &prev, &state[c], why,
						 sizeof(why));
				if (ret == HL_RECORD_BAD_CROSS && !cross) {
					memcpy(cross_why, why, sizeof(why));
					cross = true;
				}
			}
			if (ret < 0)
				break;
			prev = e;
		}
		if (ret == 0 && absent_from)
			note_absent(x, c, absent_from, k);
		if (ret < 0 && !x->v->why[0])
			ret = read_failed(x, ret);
		hl_record_cursor_free(x->ahead->cur);
	}
	for (unsigned c = 0; c < 2; c++)
		free(state[c].acked);
	if (ret < 0)
		return ret;
	if (cross) {
		snprintf(x->v->why, sizeof(x->v->why), "%s", cross_why);
		return HL_EAUTH;
	}
	note_purged(x);
	return 0;
}

/* Each piece of evidence must prove, by the chain rules, that chain 1's
 * author signed something its chain contradicts (chain/accept.h).  An
 * exporter keeps evidence only against its peer; the same item given
 * twice counts once (the hashes seen are kept: at most
 * HL_RECORD_MAX_EVIDENCE of them). */
static int check_evidence(struct vctx *x)
{
	const struct hl_record *rec = x->rec;
	char where[64];
	struct hl_record_evidence ev;
	hl_record_cursor *cur;
	uint8_t (*seen)[HL_HASH_LEN] = xcalloc(rec->nevidence ? rec->nevidence : 1, HL_HASH_LEN);
	size_t nseen = 0;
	int ret;
	(void)hl_record_evidence_open(rec, &cur);
	for (size_t i = 0; (ret = hl_record_evidence_next(cur, &ev)) == 1; i++) {
		unsigned c = ev.chain;
		snprintf(where, sizeof(where), "evidence %zu", i + 1);
		if (c != HL_RECORD_PEER) {
			ret = failv(x, HL_EAUTH, "%s: evidence against %s, the exporter: an exporter "
				    "keeps evidence only against its peer", where, x->name[c]);
			break;
		}
		ret = hl_item_decode(ev.item, ev.len, x->it);
		if (ret == 0)
			ret = hl_item_open_key(ev.item, ev.len, x->key[c], x->key[1 - c],
					       key_at(x, c, x->it->seq), x->it);
		if (ret < 0) {
			ret = item_error(x, ret, where, ev.item, ev.len, c);
			break;
		}
		uint64_t k = x->it->seq;
		if (k > rec->n[c] + 1) {
			ret = failv(x, HL_EAUTH, "%s: %s's item number %llu, beyond the %llu entries "
				    "of its chain in the record", where, x->name[c],
				    (unsigned long long)k, (unsigned long long)rec->n[c]);
			break;
		}
		bool again = false;
		for (size_t j = 0; j < nseen && !again; j++)
			again = sodium_memcmp(seen[j], ev.hash, HL_HASH_LEN) == 0;
		if (again) {
			notef(x, "%s: the same item as an earlier piece of evidence (counted once)",
			      where);
			continue;
		}
		if (nseen < rec->nevidence)
			memcpy(seen[nseen++], ev.hash, HL_HASH_LEN);
		struct hl_chain_ref at, before, after;
		struct hl_chain_why w;
		why_names(x, c, &w);
		if ((ret = hl_record_chain_ref(rec, c, k, x->scratch, &at)) < 0 ||
		    (ret = hl_record_chain_ref(rec, c, k - 1, x->scratch, &before)) < 0 ||
		    (ret = hl_record_chain_ref(rec, c, k + 1, x->scratch, &after)) < 0)
			break;
		if (!hl_chain_proves_fork(x->it, ev.hash, &at, &before, &after, &w)) {
			ret = failv(x, HL_EAUTH, "%s: %s", where, w.text);
			break;
		}
		x->v->equivocations++;
		notef(x, "EQUIVOCATION: %s signed %s (%s)", x->name[c], w.text, where);
	}
	hl_record_cursor_free(cur);
	free(seen);
	if (ret < 0 && !x->v->why[0])
		ret = read_failed(x, ret);
	return ret < 0 ? ret : 0;
}

static int check_seal(struct vctx *x)
{
	const struct hl_record *rec = x->rec;
	uint8_t msg[HL_RECORD_SEAL_MSG_LEN];
	hl_record_seal_msg(rec->signed_hash, msg);
	/* the exporter's key when it exported: its chain's last */
	if (crypto_sign_verify_detached(rec->sig, msg, sizeof(msg), x->keys[0].sign) != 0)
		return failv(x, HL_EAUTH, "the seal does not verify with %s's SigningKey%s: the file "
			     "was changed after %s exported it, or %s did not export it",
			     x->name[0], x->rot[0]->n ? " (its key since its last rotation)" : "",
			     x->name[0], x->name[0]);
	/* What was checked was read twice (the parse, then the checks): the
	 * file must be the one the seal covers. */
	if (hl_record_unchanged(rec) < 0)
		return failv(x, HL_ESTATE, "the file changed while it was being verified");
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
	x.scratch = xmalloc(sizeof(*x.scratch));
	x.ahead = xmalloc(sizeof(*x.ahead));
	x.ahead->bytes = xmalloc(BATCH_BYTES);
	for (unsigned c = 0; c < 2; c++)
		x.rot[c] = xcalloc(1, sizeof(*x.rot[c]));
	(void)hl_record_contents_open(rec, 0, &x.contents);
	(void)hl_record_atts_open(rec, 0, &x.atts);
	(void)hl_record_purged_open(rec, 0, &x.purged);
	x.purged_first = UINT64_MAX;
	if ((ret = check_chains(&x)) == 0 && (ret = check_evidence(&x)) == 0)
		ret = check_seal(&x);
	hl_record_cursor_free(x.contents);
	hl_record_cursor_free(x.atts);
	hl_record_cursor_free(x.purged);
	free(x.ahead->bytes);
	free(x.ahead);
	free(x.rot[0]);
	free(x.rot[1]);
	free(x.it);
	free(x.scratch);
	return ret;
}
