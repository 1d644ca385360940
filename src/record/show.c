/* record/show.c — the record for people (show.h). */
#include "record/show.h"

#include <stdlib.h>
#include <string.h>

#include "crypto/keys.h"
#include "deliver/records.h"
#include "record/kinds.h"
#include "record/verify.h"
#include "util/mem.h"
#include "util/text.h"
#include "util/timefmt.h"

#define BLANK_TIME "                        " /* as wide as an RFC 3339 time */

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
		hl_fingerprint(rec->card[c].noise_key, rec->card[c].signing_key, fpb);
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
	fprintf(f, "  %s: %zu entries; %s: %zu entries (%zu refused, %zu not received)\n",
		s->name[0], rec->n[0], s->name[1], rec->n[1], v->refused[1], v->absent[1]);
	if (ret == 0)
		fprintf(f, "  Messages: %zu disclosed, %zu withheld (%zu of them purged by %s); "
			"%zu attachment(s) included%s\n", v->disclosed, v->withheld, v->purged,
			s->name[0], v->attachments,
			v->equivocations ? "; EQUIVOCATION proven (run verify for details)" : "");
	fprintf(f, "  Times are each station's own clock.\n\n");
}

/* Decodes every item once for times and receipts (the kinds' index). */
static void index_all(struct hl_record_show *s, struct hl_item *it)
{
	const struct hl_record *rec = s->rec;
	for (unsigned c = 0; c < 2; c++) {
		s->first_ref[c] = xcalloc(rec->n[c] ? rec->n[c] : 1, sizeof(uint64_t));
		s->second_ref[c] = xcalloc(rec->n[c] ? rec->n[c] : 1, sizeof(uint64_t));
		s->time[c] = xcalloc(rec->n[c] ? rec->n[c] : 1, sizeof(uint64_t));
	}
	for (unsigned c = 0; c < 2; c++) {
		uint64_t last = 0;
		for (size_t k = 1; k <= rec->n[c]; k++) {
			const struct hl_record_entry *e = &rec->entries[c][k - 1];
			const struct hl_record_kind *kind;
			/* Entries without a time sort with the one before. */
			s->time[c][k - 1] = last;
			if (e->type != HL_RECORD_ITEM || hl_item_decode(e->item, e->len, it) < 0)
				continue;
			s->time[c][k - 1] = last = it->time_ms;
			if ((kind = hl_record_kind_find(it->kind)) && kind->index)
				kind->index(s, c, k, it);
		}
	}
}

/* Prints entry K of chain C (for an absent run, entries K..END); returns
 * the last position printed. */
static size_t show_entry(struct hl_record_show *s, unsigned c, size_t k, struct hl_item *it)
{
	const struct hl_record *rec = s->rec;
	const struct hl_record_entry *e = &rec->entries[c][k - 1];
	FILE *f = s->out;
	char when[HL_RFC3339_LEN], hex[65];
	if (e->type == HL_RECORD_ABSENT) {
		size_t end = k;
		while (end < rec->n[c] && rec->entries[c][end].type == HL_RECORD_ABSENT)
			end++;
		fprintf(f, "%s  %s -> %s  #%zu", BLANK_TIME, s->name[c], s->name[1 - c], k);
		if (end > k)
			fprintf(f, "-#%zu", end);
		fprintf(f, "  not received by %s when it exported\n", s->name[1 - c]);
		return end;
	}
	if (e->type == HL_RECORD_REFUSED) {
		hl_hex(e->hash, HL_HASH_LEN, hex);
		fprintf(f, "%s  %s -> %s  #%zu  refused by %s (code %u: %s)\n"
			   "    Not in the record; its hash was %s\n",
			BLANK_TIME, s->name[c], s->name[1 - c], k, s->name[1 - c], e->code,
			hl_refuse_code_str(e->code), hex);
		return k;
	}
	const struct hl_record_kind *kind = NULL;
	if (hl_item_decode(e->item, e->len, it) == 0)
		kind = hl_record_kind_find(it->kind);
	if (!kind) {
		fprintf(f, "%s  %s -> %s  #%zu  an item this hotline cannot read\n", BLANK_TIME,
			s->name[c], s->name[1 - c], k);
		return k;
	}
	hl_rfc3339((int64_t)it->time_ms, when);
	fprintf(f, "%-24s  %s -> %s  #%zu  ", when, s->name[c], s->name[1 - c], k);
	if (kind->show)
		kind->show(s, c, k, e, it);
	else
		fprintf(f, "%s\n", kind->name);
	return k;
}

int hl_record_show(const struct hl_record *rec, FILE *out)
{
	struct hl_record_show s = { .rec = rec, .out = out };
	struct hl_record_verdict v;
	char names[2][HL_NAME_MAX * 3 + 1];
	for (unsigned c = 0; c < 2; c++) {
		hl_sanitize(rec->card[c].name, strlen(rec->card[c].name), names[c],
			    sizeof(names[c]), 0);
		s.name[c] = names[c];
	}
	int ret = hl_record_verify(rec, &rec->card[0], &rec->card[1], NULL, NULL, &v);
	header(rec, &s, ret, &v);

	struct hl_item *it = xmalloc(sizeof(*it));
	s.scratch = xmalloc(sizeof(*s.scratch));
	index_all(&s, it);
	/* Merge the chains by time, each in its own order. */
	size_t k[2] = { 1, 1 };
	while (k[0] <= rec->n[0] || k[1] <= rec->n[1]) {
		unsigned c;
		if (k[0] > rec->n[0])
			c = 1;
		else if (k[1] > rec->n[1])
			c = 0;
		else
			c = s.time[1][k[1] - 1] < s.time[0][k[0] - 1] ? 1 : 0;
		k[c] = show_entry(&s, c, k[c], it) + 1;
	}
	if (rec->n[0] == 0 && rec->n[1] == 0)
		fprintf(out, "(no entries: the two stations have exchanged nothing)\n");
	free(it);
	free(s.scratch);
	for (unsigned c = 0; c < 2; c++) {
		free(s.first_ref[c]);
		free(s.second_ref[c]);
		free(s.time[c]);
	}
	return ret;
}
