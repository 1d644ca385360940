/* fuzz/fuzz_record_file.c — libFuzzer target for the record file
 * (record/format.c), and, for what parses, the verifier and the display
 * (record/verify.c, record/kinds.c, record/show.c) against the record's own
 * cards.
 *
 * Oracles: everything the readers hand out lies inside the signed bytes,
 * the seal is the last 64 bytes, counts agree with what the cursors read,
 * an entry read in order is the same looked up by position (the sparse
 * index and the cache), and verify and show run to completion (the
 * sanitizers watch their memory). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "record/format.h"
#include "record/show.h"
#include "record/verify.h"

/* The fuzz build defines NDEBUG; oracles must hold there too. */
#define CHECK(x) do { if (!(x)) abort(); } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void note(void *arg, const char *line)
{
	(void)arg;
	CHECK(strlen(line) < 512);
}

/* Every entry of chain C read in order agrees with the same entry looked
 * up by position (the index and the cache), and lies inside the input. */
static void check_chain(const struct hl_record *rec, unsigned c)
{
	hl_record_cursor *cur;
	struct hl_record_entry e, again;
	const uint8_t *item;
	uint64_t k = 0;
	CHECK(hl_record_chain_open(rec, c, &cur) == 0);
	while (hl_record_chain_next(cur, &e, &item) == 1) {
		k++;
		CHECK(e.off < rec->signed_len);
		if (e.type == HL_RECORD_ITEM)
			CHECK(e.item_off + e.len <= rec->signed_len && item != NULL);
		/* out of order on purpose: a position behind, then this one */
		if (k > 1)
			CHECK(hl_record_entry_get(rec, c, k - 1, &again) == 0);
		CHECK(hl_record_entry_get(rec, c, k, &again) == 0);
		CHECK(memcmp(&e, &again, sizeof(e)) == 0);
	}
	CHECK(k == rec->n[c]);
	hl_record_cursor_free(cur);
}

static void check_sections(const struct hl_record *rec)
{
	hl_record_cursor *cur;
	struct hl_record_content ct;
	struct hl_record_att a;
	struct hl_record_evidence ev;
	uint64_t n = 0;
	CHECK(hl_record_contents_open(rec, 0, &cur) == 0);
	for (unsigned c = 0; c < 2; c++)
		for (uint64_t k = 1; k <= rec->n[c]; k++)
			if (hl_record_content_for(cur, c, k, &ct) == 1) {
				CHECK(ct.body_off + ct.body_len <= rec->signed_len);
				n++;
			}
	CHECK(n == rec->ncontents);
	hl_record_cursor_free(cur);
	n = 0;
	CHECK(hl_record_atts_open(rec, 0, &cur) == 0);
	for (unsigned c = 0; c < 2; c++)
		for (uint64_t k = 1; k <= rec->n[c]; k++)
			while (hl_record_att_for(cur, c, k, &a) == 1) {
				CHECK(a.data_off + a.size <= rec->signed_len);
				n++;
			}
	CHECK(n == rec->natts);
	hl_record_cursor_free(cur);
	n = 0;
	CHECK(hl_record_evidence_open(rec, &cur) == 0);
	while (hl_record_evidence_next(cur, &ev) == 1)
		n++;
	CHECK(n == rec->nevidence);
	hl_record_cursor_free(cur);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static FILE *devnull;
	struct hl_record *rec = NULL;
	char why[512];
	if (!devnull)
		devnull = fopen("/dev/null", "w");
	if (hl_record_parse(data, size, &rec, why, sizeof(why)) != 0) {
		CHECK(rec == NULL && why[0] != '\0');
		return 0;
	}
	CHECK(rec->signed_len + HL_RECORD_SIG_LEN == size);
	CHECK(memcmp(rec->sig, data + rec->signed_len, HL_RECORD_SIG_LEN) == 0);
	for (unsigned c = 0; c < 2; c++) {
		CHECK(rec->card_len[c] >= 1 && rec->card_len[c] <= HL_CARD_MAX_BYTES);
		check_chain(rec, c);
	}
	check_sections(rec);

	struct hl_record_verdict v;
	int ret = hl_record_verify(rec, &rec->card[0], &rec->card[1], note, NULL, &v);
	CHECK(ret == 0 || v.why[0] != '\0');
	if (devnull)
		CHECK((hl_record_show(rec, devnull) == 0) == (ret == 0));
	hl_record_free(rec);
	return 0;
}
