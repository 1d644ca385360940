/* fuzz/fuzz_record_file.c — libFuzzer target for the record file
 * (record/format.c), and, for what parses, the verifier and the display
 * (record/verify.c, record/kinds.c, record/show.c) against the record's own
 * cards.
 *
 * Oracles: everything the parser hands out lies inside the input, the seal
 * is the last 64 bytes, counts agree with the entries, and verify and show
 * run to completion (the sanitizers watch their memory). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "record/format.h"
#include "record/show.h"
#include "record/verify.h"

/* The fuzz build defines NDEBUG; oracles must hold there too. */
#define CHECK(x) do { if (!(x)) abort(); } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int inside(const uint8_t *data, size_t size, const uint8_t *p, uint64_t n)
{
	return p >= data && (uint64_t)(p - data) <= size && n <= size - (size_t)(p - data);
}

static void note(void *arg, const char *line)
{
	(void)arg;
	CHECK(strlen(line) < 512);
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
	CHECK(rec->sig == data + rec->signed_len);
	for (unsigned c = 0; c < 2; c++) {
		CHECK(inside(data, size, (const uint8_t *)rec->card_text[c], rec->card_len[c]));
		for (size_t i = 0; i < rec->n[c]; i++) {
			const struct hl_record_entry *e = &rec->entries[c][i];
			CHECK(e->off < rec->signed_len);
			if (e->type == HL_RECORD_ITEM)
				CHECK(inside(data, rec->signed_len, e->item, e->len));
			if (e->content >= 0)
				CHECK((size_t)e->content < rec->ncontents);
		}
	}
	for (size_t i = 0; i < rec->ncontents; i++) {
		const struct hl_record_content *ct = &rec->contents[i];
		CHECK(ct->seq >= 1 && ct->seq <= rec->n[ct->chain]);
		CHECK(inside(data, rec->signed_len, ct->subject, ct->subject_len));
		CHECK(inside(data, rec->signed_len, ct->body, ct->body_len));
	}
	for (size_t i = 0; i < rec->natts; i++)
		CHECK(inside(data, rec->signed_len, rec->atts[i].data, rec->atts[i].size));
	for (size_t i = 0; i < rec->nevidence; i++)
		CHECK(inside(data, rec->signed_len, rec->evidence[i].item, rec->evidence[i].len));

	struct hl_record_verdict v;
	int ret = hl_record_verify(rec, &rec->card[0], &rec->card[1], note, NULL, &v);
	CHECK(ret == 0 || v.why[0] != '\0');
	if (devnull)
		CHECK((hl_record_show(rec, devnull) == 0) == (ret == 0));
	hl_record_free(rec);
	return 0;
}
