/* record/show.c — the record for people (show.h).
 *
 * In bounded memory, like the verifier: each chain is read through a
 * cursor, the two merged by time as they go.  What the other chain says
 * about an entry (the receipt of a message, the answers to a check, the
 * countersign of an agreement) comes from a scan of the other chain, kept
 * for a window of positions at a time: a window ends after REFS_WINDOW
 * entries that can be answered (messages, checks, agreements), found by a
 * look-ahead cursor, and the next window is indexed when the display gets
 * there.  A record of up to REFS_WINDOW such entries per chain is indexed
 * once; a larger one costs one more scan of the other chain per window. */
#include "record/show.h"

#include <stdlib.h>
#include <string.h>

#include "crypto/keys.h"
#include "wire/msgproto.h"
#include "record/kinds.h"
#include "record/verify.h"
#include "util/mem.h"
#include "util/text.h"
#include "util/timefmt.h"

#define BLANK_TIME "                        " /* as wide as an RFC 3339 time */
#define REFS_WINDOW (1u << 16)

size_t hl_record_show_window = REFS_WINDOW;

static bool referenced(const struct hl_record_entry *e, const uint8_t *item, struct hl_item *it)
{
	const struct hl_record_kind *kind;
	return e->type == HL_RECORD_ITEM && hl_item_decode(item, e->len, it) == 0 &&
	       (kind = hl_record_kind_find(it->kind)) && kind->referenced;
}

/* Indexes the window of chain C that begins at LO: its answerable entries
 * (up to REFS_WINDOW of them), then one scan of the other chain through
 * the kinds' index functions. */
static void index_window(struct hl_record_show *s, unsigned c, uint64_t lo, struct hl_item *it)
{
	struct hl_record_refs *r = s->refs[c];
	struct hl_record_entry e;
	const uint8_t *item;
	r->lo = lo;
	r->n = 0;
	if (!r->v) {
		/* no more slots than the chain has entries */
		size_t w = hl_record_show_window ? hl_record_show_window : 1;
		r->cap = s->rec->n[c] < w ? (size_t)s->rec->n[c] : w;
		r->v = xcalloc(r->cap ? r->cap : 1, sizeof(*r->v));
		r->pos = xcalloc(r->cap ? r->cap : 1, sizeof(*r->pos));
	}
	while (r->ahead_seq + 1 < lo && hl_record_chain_next(r->ahead, &e, &item) == 1)
		r->ahead_seq++;
	while (r->n < r->cap && hl_record_chain_next(r->ahead, &e, &item) == 1) {
		r->ahead_seq++;
		if (referenced(&e, item, it))
			r->pos[r->n++] = r->ahead_seq;
	}
	/* A full window ends after its last answerable entry. */
	r->hi = r->n == r->cap ? r->ahead_seq + 1 : s->rec->n[c] + 1;
	memset(r->v, 0, r->n * sizeof(*r->v));
	hl_record_cursor *other;
	(void)hl_record_chain_open(s->rec, 1 - c, &other);
	for (uint64_t k = 1; hl_record_chain_next(other, &e, &item) == 1; k++) {
		const struct hl_record_kind *kind;
		if (e.type == HL_RECORD_ITEM && hl_item_decode(item, e.len, it) == 0 &&
		    (kind = hl_record_kind_find(it->kind)) && kind->index)
			kind->index(s, 1 - c, k, it);
	}
	hl_record_cursor_free(other);
}

static void header(const struct hl_record *rec, struct hl_record_show *s, int ret,
		   const struct hl_record_verdict *v)
{
	char when[HL_RFC3339_LEN], fp[HL_FP_TEXT_LEN];
	uint8_t fpb[HL_FP_LEN];
	FILE *f = s->out;
	hl_rfc3339((int64_t)rec->exported_at, when);
	fprintf(f, "Record of the link between %s and %s\n", s->name[0], s->name[1]);
	fprintf(f, "  Exported by %s at %s (its clock)\n", s->name[0], when);
	for (unsigned c = 0; c < 2; c++) {
		hl_card_fingerprint(&rec->card[c], fpb);
		hl_fingerprint_text(fpb, fp);
		fprintf(f, "  %-12s fingerprint %s\n", s->name[c], fp);
	}
	if (ret == 0) {
		fprintf(f, "  Checked against the two cards inside it: every signature, link and "
			   "reference holds.\n"
			   "  It comes from these stations only if the fingerprints above are theirs;\n"
			   "  'hotline record verify FILE --card A --card B' checks it against cards you trust.\n");
	} else {
		char why[sizeof(v->why) * 3];
		hl_sanitize(v->why, strlen(v->why), why, sizeof(why), 0);
		fprintf(f, "  WARNING: this record does NOT verify: %s\n", why);
	}
	fprintf(f, "  %s: %llu entries; %s: %llu entries (%zu refused, %zu not received)\n",
		s->name[0], (unsigned long long)rec->n[0], s->name[1], (unsigned long long)rec->n[1],
		v->refused[1], v->absent[1]);
	if (ret == 0)
		fprintf(f, "  Messages: %zu disclosed, %zu withheld (%zu of them purged by %s); "
			"%zu attachment(s) included%s\n", v->disclosed, v->withheld, v->purged,
			s->name[0], v->attachments,
			v->equivocations ? "; EQUIVOCATION proven (run verify for details)" : "");
	fprintf(f, "  Times are each station's own clock.\n\n");
}

/* One chain as the display reads it: the next entry, decoded, with its
 * time (an entry without one sorts with the one before). */
struct lane {
	hl_record_cursor *cur, *contents, *atts, *purged;
	bool have, done;
	uint64_t k, time;
	struct hl_record_entry e;
	const uint8_t *item;
	struct hl_item *it;
	bool decoded;
};

static void lane_fill(struct lane *l)
{
	if (l->have || l->done)
		return;
	if (hl_record_chain_next(l->cur, &l->e, &l->item) != 1) {
		l->done = true;
		return;
	}
	l->have = true;
	l->k++;
	l->decoded = l->e.type == HL_RECORD_ITEM && hl_item_decode(l->item, l->e.len, l->it) == 0;
	if (l->decoded)
		l->time = l->it->time_ms;
}

/* Prints the entry L holds (for an absent run, all of it). */
static void show_entry(struct hl_record_show *s, unsigned c, struct lane *l, struct hl_item *tmp)
{
	FILE *f = s->out;
	char when[HL_RFC3339_LEN], hex[65];
	uint64_t k = l->k;
	struct hl_record_content ct;
	struct hl_record_purged pg;
	l->have = false;
	if (l->e.type == HL_RECORD_ABSENT) {
		uint64_t end = k;
		for (lane_fill(l); l->have && l->e.type == HL_RECORD_ABSENT; lane_fill(l)) {
			end = l->k;
			l->have = false;
		}
		fprintf(f, "%s  %s -> %s  #%llu", BLANK_TIME, s->name[c], s->name[1 - c],
			(unsigned long long)k);
		if (end > k)
			fprintf(f, "-#%llu", (unsigned long long)end);
		fprintf(f, "  not received by %s when it exported\n", s->name[1 - c]);
		return;
	}
	if (l->e.type == HL_RECORD_REFUSED) {
		hl_hex(l->e.hash, HL_HASH_LEN, hex);
		fprintf(f, "%s  %s -> %s  #%llu  refused by %s (code %u: %s)\n"
			   "    Not in the record; its hash was %s\n",
			BLANK_TIME, s->name[c], s->name[1 - c], (unsigned long long)k, s->name[1 - c],
			l->e.code, hl_refuse_code_str(l->e.code), hex);
		return;
	}
	const struct hl_record_kind *kind = l->decoded ? hl_record_kind_find(l->it->kind) : NULL;
	if (!kind) {
		fprintf(f, "%s  %s -> %s  #%llu  an item this hotline cannot read\n", BLANK_TIME,
			s->name[c], s->name[1 - c], (unsigned long long)k);
		return;
	}
	if (k >= s->refs[c]->hi)
		index_window(s, c, k, tmp);
	s->content = hl_record_content_for(l->contents, c, k, &ct) == 1 ? &ct : NULL;
	s->purged = !s->content && hl_record_purged_for(l->purged, c, k, &pg) == 1 ? &pg : NULL;
	s->att_included = 0;
	struct hl_record_att a;
	while (s->content && hl_record_att_for(l->atts, c, k, &a) == 1)
		s->att_included |= UINT64_C(1) << (a.index & 63);
	hl_rfc3339((int64_t)l->it->time_ms, when);
	fprintf(f, "%-24s  %s -> %s  #%llu  ", when, s->name[c], s->name[1 - c],
		(unsigned long long)k);
	if (kind->show)
		kind->show(s, c, k, &l->e, l->it);
	else
		fprintf(f, "%s\n", kind->name);
	s->content = NULL;
	s->purged = NULL;
}

int hl_record_show(const struct hl_record *rec, FILE *out)
{
	struct hl_record_show s = { .rec = rec, .out = out };
	struct hl_record_verdict v;
	struct hl_record_refs refs[2];
	struct lane lane[2];
	char names[2][HL_NAME_MAX * 3 + 1];
	for (unsigned c = 0; c < 2; c++) {
		hl_sanitize(rec->card[c].name, strlen(rec->card[c].name), names[c],
			    sizeof(names[c]), 0);
		s.name[c] = names[c];
	}
	int ret = hl_record_verify(rec, &rec->card[0], &rec->card[1], NULL, NULL, &v);
	header(rec, &s, ret, &v);

	struct hl_item *tmp = xmalloc(sizeof(*tmp));
	s.scratch = xmalloc(sizeof(*s.scratch));
	s.itembuf = xmalloc(HL_ITEM_MAX);
	memset(refs, 0, sizeof(refs));
	memset(lane, 0, sizeof(lane));
	for (unsigned c = 0; c < 2; c++) {
		(void)hl_record_chain_open(rec, c, &refs[c].ahead);
		s.refs[c] = &refs[c];
		(void)hl_record_chain_open(rec, c, &lane[c].cur);
		(void)hl_record_contents_open(rec, c, &lane[c].contents);
		(void)hl_record_atts_open(rec, c, &lane[c].atts);
		(void)hl_record_purged_open(rec, c, &lane[c].purged);
		lane[c].it = xmalloc(sizeof(*lane[c].it));
	}
	/* Merge the chains by time, each in its own order. */
	for (;;) {
		lane_fill(&lane[0]);
		lane_fill(&lane[1]);
		if (!lane[0].have && !lane[1].have)
			break;
		unsigned c = !lane[0].have ? 1 : !lane[1].have ? 0
			     : lane[1].time < lane[0].time ? 1 : 0;
		show_entry(&s, c, &lane[c], tmp);
	}
	if (rec->n[0] == 0 && rec->n[1] == 0)
		fprintf(out, "(no entries: the two stations have exchanged nothing)\n");
	for (unsigned c = 0; c < 2; c++) {
		hl_record_cursor_free(lane[c].cur);
		hl_record_cursor_free(lane[c].contents);
		hl_record_cursor_free(lane[c].atts);
		hl_record_cursor_free(lane[c].purged);
		hl_record_cursor_free(refs[c].ahead);
		free(lane[c].it);
		free(refs[c].v);
		free(refs[c].pos);
	}
	free(tmp);
	free(s.scratch);
	free(s.itembuf);
	return ret;
}
